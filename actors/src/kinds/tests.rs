use std::any::TypeId;
use std::collections::BTreeSet;

use k8s_openapi::api::{apps::v1 as apps, coordination::v1 as coordination};
use k8s_openapi::api::{core::v1 as core, discovery::v1 as discovery};

use super::rbac::{self, Permission};
use super::*;

fn names(kind: &KindSpec) -> impl Iterator<Item = String> + '_ {
    [kind.kind, kind.plural]
        .into_iter()
        .chain(kind.aliases.iter().copied())
        .map(str::to_ascii_lowercase)
}

#[test]
fn every_name_plural_and_alias_names_one_kind() {
    let mut seen = std::collections::BTreeMap::new();
    for kind in all() {
        assert_eq!(
            kind.plural,
            kind.plural.to_ascii_lowercase(),
            "{}",
            kind.kind
        );
        for alias in kind.aliases {
            assert_eq!(*alias, alias.to_ascii_lowercase(), "{}", kind.kind);
        }
        for name in names(kind).collect::<BTreeSet<_>>() {
            if let Some(other) = seen.insert(name.clone(), kind.kind) {
                panic!("`{name}` names both {other} and {}", kind.kind);
            }
        }
    }
}

#[test]
fn the_table_holds_every_concepts_kinds_and_the_machinery_in_order() {
    let kinds: Vec<&str> = all().map(|k| k.kind).collect();
    assert_eq!(
        kinds,
        [
            "Namespace",
            "ConfigMap",
            "Service",
            "Deployment",
            "StatefulSet",
            "Endpoints",
            "ServiceFence",
            "VirtualService",
            "SlimeBoot",
            "Sidecar",
            "EnvoyFilter",
            "Pod",
            "Node",
            "EndpointSlice",
            "Event",
            "Lease",
        ]
    );
    assert_eq!(get("Sidecar").map(|k| k.plural), Some("sidecars"));
    assert!(get("sidecar").is_none(), "get takes the exact kind");
}

#[test]
fn every_kind_is_used_for_something() {
    for kind in all() {
        assert!(
            kind.is_applied() || kind.is_watched() || kind.is_written() || kind.grant.is_some(),
            "{} is in the table but meshplane does nothing with it",
            kind.kind
        );
    }
}

#[test]
fn applied_kinds_are_validated_and_projected_ones_can_be_written() {
    for kind in all() {
        assert_eq!(
            kind.is_applied(),
            kind.projection != Projection::NotApplied,
            "{}",
            kind.kind
        );
        match kind.projection {
            Projection::AsApplied | Projection::ByConcept => {
                assert!(
                    kind.is_written(),
                    "{} is projected but not writable",
                    kind.kind
                )
            }
            Projection::Configuration | Projection::NotApplied => {}
        }
    }
    let not_applied = KindSpec::new("Widget", &["v1"], "widgets", Scope::Namespaced);
    let err = not_applied
        .validate(&serde_json::json!({"kind": "Widget"}))
        .unwrap_err();
    assert_eq!(err.field.as_deref(), Some("kind"));
}

#[test]
fn every_watched_kind_has_a_reduce_rule() {
    for kind in watched() {
        let observe = kind.observe.expect("watched");
        assert!(!observe.keep.is_empty(), "{} keeps nothing", kind.kind);
        assert!(
            observe.keep.iter().all(|path| !path.is_empty()),
            "{}",
            kind.kind
        );
    }
    // Pods, Nodes and EndpointSlices are only watched; the rest of the watched kinds are
    // applied too.
    let only_watched: Vec<&str> = watched()
        .filter(|k| !k.is_applied())
        .map(|k| k.kind)
        .collect();
    assert_eq!(only_watched, ["Pod", "Node", "EndpointSlice"]);
}

#[test]
fn write_phases_put_owners_and_namespaces_first() {
    let phase = |kind: &str| get(kind).and_then(|k| k.write).map(|w| w.phase);
    assert_eq!(phase("Namespace"), Some(Phase::Namespaces));
    assert_eq!(phase("ServiceFence"), Some(Phase::Owners));
    assert_eq!(phase("Sidecar"), Some(Phase::Objects));
    assert_eq!(phase("Pod"), None);
    assert!(Phase::Namespaces < Phase::Owners && Phase::Owners < Phase::Objects);
    assert!(Phase::Objects < Phase::Statuses);
    let statuses: Vec<&str> = written()
        .filter(|k| k.writes_status())
        .map(|k| k.kind)
        .collect();
    assert_eq!(statuses, ["ServiceFence"]);
}

fn permission(kind: &KindSpec, resource: &str) -> Option<Permission> {
    rbac::permissions(kind)
        .into_iter()
        .find(|p| p.resource == resource)
}

#[test]
fn every_watched_or_written_kind_has_its_verbs() {
    for kind in all() {
        let verbs = permission(kind, kind.plural).map_or(&[][..], |p| p.verbs);
        if kind.is_watched() {
            for verb in ["get", "list", "watch"] {
                assert!(verbs.contains(&verb), "{verb} {}", kind.plural);
            }
        }
        if kind.is_written() {
            for verb in ["get", "list", "create", "patch", "delete"] {
                assert!(verbs.contains(&verb), "{verb} {}", kind.plural);
            }
        }
        if kind.writes_status() {
            let status = permission(kind, &format!("{}/status", kind.plural)).expect("status");
            assert!(status.verbs.contains(&"patch"), "{}", kind.kind);
        }
    }
    assert!(rbac::permissions(get("ConfigMap").unwrap())
        .iter()
        .all(|p| p.reach == Reach::Cluster));
    let lease = rbac::permissions(get("Lease").unwrap());
    assert_eq!(lease.len(), 1);
    assert_eq!(lease[0].reach, Reach::OwnNamespace);
}

#[test]
fn rules_grant_exactly_the_tables_permissions() {
    for reach in [Reach::Cluster, Reach::OwnNamespace] {
        let granted: BTreeSet<(&str, String, Vec<&str>)> = rbac::rules(reach)
            .into_iter()
            .flat_map(|r| {
                r.resources
                    .into_iter()
                    .map(move |x| (r.group, x, r.verbs.to_vec()))
            })
            .collect();
        let needed: BTreeSet<(&str, String, Vec<&str>)> = all()
            .flat_map(rbac::permissions)
            .filter(|p| p.reach == reach)
            .map(|p| (p.group, p.resource, p.verbs.to_vec()))
            .collect();
        assert_eq!(granted, needed);
    }
    let rules = rbac::rules(Reach::Cluster);
    let core_owned = rules
        .iter()
        .find(|r| r.group.is_empty() && r.verbs == rbac::OWN)
        .unwrap();
    assert_eq!(
        core_owned.resources,
        ["namespaces", "configmaps", "services", "endpoints"]
    );
}

#[test]
fn versions_and_groups() {
    let vs = get("VirtualService").unwrap();
    assert_eq!(vs.api_versions[0], "networking.istio.io/v1");
    assert_eq!(vs.api_version(), "networking.istio.io/v1beta1");
    assert_eq!(
        (vs.group(), vs.version()),
        ("networking.istio.io", "v1beta1")
    );
    let slice = get("EndpointSlice").unwrap();
    assert_eq!((slice.group(), slice.version()), ("discovery.k8s.io", "v1"));
    let service = get("Service").unwrap();
    assert_eq!((service.group(), service.version()), ("", "v1"));
    for kind in all() {
        assert!(
            kind.api_versions
                .iter()
                .all(|v| group_of(v) == kind.group()),
            "{}: every version is in one group",
            kind.kind
        );
    }
}

/// The table's built-in kinds name what Kubernetes serves: kind, apiVersion, plural and scope
/// as k8s-openapi has them.
#[test]
fn built_in_kinds_agree_with_k8s_openapi() {
    fn agrees<T: k8s_openapi::Resource>(checked: &mut BTreeSet<&'static str>)
    where
        T::Scope: 'static,
    {
        let kind = get(T::KIND).unwrap_or_else(|| panic!("{} is not in the table", T::KIND));
        assert_eq!(kind.api_versions[0], T::API_VERSION, "{}", T::KIND);
        assert_eq!(kind.plural, T::URL_PATH_SEGMENT, "{}", T::KIND);
        let namespaced =
            TypeId::of::<T::Scope>() == TypeId::of::<k8s_openapi::NamespaceResourceScope>();
        assert_eq!(kind.namespaced, namespaced, "{}", T::KIND);
        checked.insert(kind.kind);
    }
    let mut checked = BTreeSet::new();
    agrees::<core::Namespace>(&mut checked);
    agrees::<core::ConfigMap>(&mut checked);
    agrees::<core::Service>(&mut checked);
    agrees::<apps::Deployment>(&mut checked);
    agrees::<apps::StatefulSet>(&mut checked);
    agrees::<core::Endpoints>(&mut checked);
    agrees::<core::Pod>(&mut checked);
    agrees::<core::Node>(&mut checked);
    agrees::<discovery::EndpointSlice>(&mut checked);
    agrees::<core::Event>(&mut checked);
    agrees::<coordination::Lease>(&mut checked);
    let built_in: BTreeSet<&str> = all()
        .filter(|k| k.definition == Definition::BuiltIn)
        .map(|k| k.kind)
        .collect();
    assert_eq!(checked, built_in);
}
