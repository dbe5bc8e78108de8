//! Slime's documented behaviours, given/when/then, on the whole mesh (so the fan-out of
//! resource events to the fence concept is exercised too).

use std::collections::BTreeMap;

use events::schema::{FenceKey, Via};
use events::Event;
use serde_json::{json, Value};

use super::*;
use crate::decider::RejectionKind;
use crate::{Ctx, Mesh, MeshCommand};

const T0: i64 = 1_795_305_600_000;

fn ns(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})
}

fn svc(ns: &str, name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {"selector": {"app": name}, "ports": [{"port": 9080, "name": "http"}]}})
}

fn fence(ns: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": "microservice.slime.io/v1alpha1", "kind": "ServiceFence",
        "metadata": {"name": name, "namespace": ns}, "spec": spec})
}

fn slimeboot(general: Value) -> Value {
    json!({"apiVersion": "config.netease.com/v1alpha1", "kind": "SlimeBoot",
        "metadata": {"name": "lazyload", "namespace": "mesh-operator"},
        "spec": {"module": [{"name": "lazyload", "kind": "lazyload", "enable": true,
            "general": general, "global": {"misc": {"metricSourceType": "accesslog"}}}]}})
}

fn vs(ns: &str, name: &str, hosts: &[&str], dests: &[&str]) -> Value {
    let routes: Vec<Value> = dests
        .iter()
        .map(|d| json!({"destination": {"host": d}}))
        .collect();
    json!({"apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"hosts": hosts, "http": [{"route": routes}]}})
}

fn given(docs: &[Value]) -> Mesh {
    let mut mesh = Mesh::default();
    mesh.apply_documents(docs, &mut Ctx::new(T0, 1)).unwrap();
    mesh
}

fn apply(mesh: &mut Mesh, docs: &[Value]) {
    mesh.apply_documents(docs, &mut Ctx::new(T0, 1)).unwrap();
}

fn key(ns: &str, name: &str) -> FenceKey {
    FenceKey::new(ns, name)
}

fn sighting(host: &str, at: i64) -> Sighting {
    Sighting {
        host: host.into(),
        seen_at_ms: at,
        source: "10.0.0.1 → default/productpage".into(),
        raw: host.into(),
    }
}

fn observe(mesh: &mut Mesh, fence: &FenceKey, hosts: &[&str], at: i64) -> Vec<Event> {
    let command = FenceCommand::Observe {
        fence: fence.clone(),
        via: Via::AccessLog,
        sightings: hosts.iter().map(|h| sighting(h, at)).collect(),
    };
    mesh.execute(MeshCommand::Fence(command), &mut Ctx::new(at, 1))
        .unwrap()
        .events
}

fn sweep(mesh: &mut Mesh, fence: &FenceKey, now: i64) -> Vec<Event> {
    let command = FenceCommand::Sweep {
        fence: fence.clone(),
        now_ms: now,
    };
    mesh.execute(MeshCommand::Fence(command), &mut Ctx::new(now, 1))
        .unwrap()
        .events
}

fn egress(mesh: &Mesh, fence: &FenceKey) -> Vec<String> {
    mesh.fences.egress_hosts(fence).expect("the fence exists")
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// The incremental renderings must equal a full re-render.
fn assert_consistent(mesh: &Mesh) {
    let mut full = mesh.fences.clone();
    full.rebuild_all();
    assert_eq!(
        full.fences, mesh.fences.fences,
        "incremental != rebuild_all"
    );
    assert_eq!(full.index, mesh.fences.index, "indexes differ");
}

#[test]
fn a_static_host_goes_into_the_sidecar_with_the_mesh_namespaces() {
    let mesh = given(&[fence(
        "default",
        "ratings",
        json!({"enable": true, "host": {"reviews.default.svc.cluster.local": {"stable": {}}}}),
    )]);
    assert_eq!(
        egress(&mesh, &key("default", "ratings")),
        strings(&[
            "*/reviews.default.svc.cluster.local",
            "istio-system/*",
            "mesh-operator/*"
        ])
    );
    let view = mesh.fences.get(&key("default", "ratings")).unwrap();
    assert_eq!(
        view.workload_selector,
        Some(BTreeMap::from([("app".into(), "ratings".into())]))
    );
}

#[test]
fn a_namespace_key_adds_the_namespace_and_its_cross_namespace_routes() {
    let mesh = given(&[
        svc("test", "a", json!({})),
        vs(
            "test",
            "a-routes",
            &["a"],
            &["a", "b.prod.svc.cluster.local", "a-v2"],
        ),
        fence(
            "default",
            "ratings",
            json!({"enable": true, "host": {"test/*": {}}}),
        ),
    ]);
    assert_eq!(
        egress(&mesh, &key("default", "ratings")),
        strings(&[
            "*/b.prod.svc.cluster.local",
            "istio-system/*",
            "mesh-operator/*",
            "test/*"
        ])
    );
}

#[test]
fn label_selectors_or_across_and_within() {
    let mesh = given(&[
        svc("default", "details", json!({"app": "details"})),
        svc("test", "details", json!({"app": "details"})),
        svc(
            "default",
            "reviews",
            json!({"app": "reviews", "group": "default"}),
        ),
        svc("default", "other", json!({"app": "reviews"})),
        fence(
            "default",
            "productpage",
            json!({"enable": true, "labelSelector": [
                {"selector": {"app": "details"}},
                {"selector": {"app": "reviews", "group": "default"}}]}),
        ),
    ]);
    assert_eq!(
        egress(&mesh, &key("default", "productpage")),
        strings(&[
            "*/details.default.svc.cluster.local",
            "*/details.test.svc.cluster.local",
            "*/reviews.default.svc.cluster.local",
            "istio-system/*",
            "mesh-operator/*"
        ])
    );
}

#[test]
fn a_label_only_change_on_a_service_re_renders_selector_fences() {
    let mut mesh = given(&[
        svc("default", "details", json!({"app": "other"})),
        fence(
            "default",
            "productpage",
            json!({"enable": true, "labelSelector": [{"selector": {"app": "details"}}]}),
        ),
    ]);
    assert!(!egress(&mesh, &key("default", "productpage"))
        .contains(&"*/details.default.svc.cluster.local".to_string()));
    apply(
        &mut mesh,
        &[svc("default", "details", json!({"app": "details"}))],
    );
    assert!(egress(&mesh, &key("default", "productpage"))
        .contains(&"*/details.default.svc.cluster.local".to_string()));
    assert_consistent(&mesh);
}

#[test]
fn domain_aliases_follow_slimes_documented_example() {
    let mut mesh = given(&[
        slimeboot(json!({"domainAliases": [{
            "pattern": "(?P<service>[^\\.]+)\\.(?P<namespace>[^\\.]+)\\.svc\\.cluster\\.local$",
            "templates": ["$namespace.$service.mailsaas"]}]})),
        fence(
            "default",
            "ratings",
            json!({"enable": true, "host": {"details.default.svc.cluster.local": {"stable": {}}}}),
        ),
    ]);
    observe(
        &mut mesh,
        &key("default", "ratings"),
        &["productpage.default.svc.cluster.local"],
        T0,
    );
    assert_eq!(
        egress(&mesh, &key("default", "ratings")),
        strings(&[
            "*/default.details.mailsaas",
            "*/default.productpage.mailsaas",
            "*/details.default.svc.cluster.local",
            "*/productpage.default.svc.cluster.local",
            "istio-system/*",
            "mesh-operator/*"
        ])
    );
}

#[test]
fn auto_fence_hierarchy_service_over_namespace_over_default() {
    let general = json!({"autoFence": true, "defaultFence": true});
    let mut mesh = given(&[
        slimeboot(general),
        ns("testns", json!({})),
        svc("testns", "svc1", json!({"app": "svc1"})),
        svc("testns", "svc2", json!({"app": "svc2"})),
        svc("testns", "svc3", json!({"app": "svc3"})),
    ]);
    let fences = |m: &Mesh| {
        m.fences
            .fences
            .keys()
            .map(|k| k.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        fences(&mesh),
        strings(&["testns/svc1", "testns/svc2", "testns/svc3"])
    );
    assert!(matches!(
        mesh.fences.get(&key("testns", "svc1")).unwrap().origin,
        Origin::Auto {
            reason: AutoReason::DefaultFence
        }
    ));
    apply(&mut mesh, &[ns("testns", json!({FENCED_LABEL: "false"}))]);
    assert!(
        fences(&mesh).is_empty(),
        "the namespace label turns them all off"
    );
    apply(
        &mut mesh,
        &[svc(
            "testns",
            "svc1",
            json!({"app": "svc1", FENCED_LABEL: "true"}),
        )],
    );
    assert_eq!(fences(&mesh), strings(&["testns/svc1"]));
    apply(
        &mut mesh,
        &[
            ns("testns", json!({})),
            svc("testns", "svc1", json!({"app": "svc1"})),
        ],
    );
    assert_eq!(
        fences(&mesh),
        strings(&["testns/svc1", "testns/svc2", "testns/svc3"])
    );
    // Auto fences take the service's selector.
    assert_eq!(
        mesh.fences
            .get(&key("testns", "svc2"))
            .unwrap()
            .workload_selector,
        Some(BTreeMap::from([("app".into(), "svc2".into())]))
    );
    assert_consistent(&mesh);
}

#[test]
fn turning_auto_fence_off_removes_auto_fences_but_never_manual_ones() {
    let mut mesh = given(&[
        slimeboot(json!({"autoFence": true, "defaultFence": true})),
        svc("default", "a", json!({})),
        svc("default", "b", json!({})),
        fence(
            "default",
            "b",
            json!({"enable": true, "host": {"x.example.com": {}}}),
        ),
    ]);
    assert!(matches!(
        mesh.fences.get(&key("default", "b")).unwrap().origin,
        Origin::Manual { .. }
    ));
    apply(&mut mesh, &[slimeboot(json!({"autoFence": false}))]);
    assert!(mesh.fences.get(&key("default", "a")).is_none());
    assert!(
        mesh.fences.get(&key("default", "b")).is_some(),
        "manual fences stay"
    );
}

#[test]
fn services_without_selector_are_never_auto_fenced() {
    let mesh = given(&[
        slimeboot(json!({"autoFence": true, "defaultFence": true})),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext", "namespace": "default"},
            "spec": {"type": "ExternalName", "externalName": "example.com"}}),
    ]);
    assert!(mesh.fences.fences.is_empty());
}

#[test]
fn a_new_dependency_is_learned_once_and_repeats_inside_the_window_cost_nothing() {
    let mut mesh = given(&[
        slimeboot(json!({"refreshWindow": "10s", "dependencyTtl": "1m", "idleGrace": "30s"})),
        fence("default", "productpage", json!({"enable": true})),
    ]);
    let pp = key("default", "productpage");
    let events = observe(&mut mesh, &pp, &["details.default.svc.cluster.local"], T0);
    assert!(
        matches!(&events[..], [Event::DependencyLearned(e)] if e.host == "details.default.svc.cluster.local")
    );
    assert!(egress(&mesh, &pp).contains(&"*/details.default.svc.cluster.local".to_string()));
    assert!(observe(
        &mut mesh,
        &pp,
        &["details.default.svc.cluster.local"],
        T0 + 9_999
    )
    .is_empty());
    let events = observe(
        &mut mesh,
        &pp,
        &["details.default.svc.cluster.local"],
        T0 + 10_000,
    );
    assert!(matches!(&events[..], [Event::DependencySeen(_)]));
}

#[test]
fn learned_dependencies_go_idle_after_the_ttl_and_are_forgotten_after_the_grace() {
    let mut mesh = given(&[
        slimeboot(json!({"refreshWindow": "10s", "dependencyTtl": "1m", "idleGrace": "30s"})),
        fence("default", "productpage", json!({"enable": true})),
    ]);
    let pp = key("default", "productpage");
    let host = "details.default.svc.cluster.local";
    observe(&mut mesh, &pp, &[host], T0);
    assert!(sweep(&mut mesh, &pp, T0 + 59_999).is_empty());
    assert!(mesh.fences.due(T0 + 59_999).is_empty());
    assert_eq!(mesh.fences.due(T0 + 60_000), vec![pp.clone()]);
    let events = sweep(&mut mesh, &pp, T0 + 60_000);
    assert!(
        matches!(&events[..], [Event::DependencyIdle(e)] if e.ageing.deadline_ms == T0 + 60_000)
    );
    let view = mesh.fences.get(&pp).unwrap();
    assert_eq!(view.domains[host].status, DomainStatus::ExpireWait);
    assert!(
        egress(&mesh, &pp).contains(&format!("*/{host}")),
        "idle stays in the Sidecar"
    );
    let events = sweep(&mut mesh, &pp, T0 + 90_000);
    assert!(
        matches!(&events[..], [Event::DependencyForgotten(e)] if e.ageing.deadline_ms == T0 + 90_000)
    );
    assert!(!egress(&mesh, &pp).contains(&format!("*/{host}")));
    assert!(mesh.fences.learned.is_empty());
}

#[test]
fn a_sighting_while_idle_makes_the_dependency_active_again() {
    let mut mesh = given(&[
        slimeboot(json!({"refreshWindow": "10s", "dependencyTtl": "1m", "idleGrace": "30s"})),
        fence("default", "productpage", json!({"enable": true})),
    ]);
    let pp = key("default", "productpage");
    let host = "details.default.svc.cluster.local";
    observe(&mut mesh, &pp, &[host], T0);
    sweep(&mut mesh, &pp, T0 + 60_000);
    let events = observe(&mut mesh, &pp, &[host], T0 + 61_000);
    assert!(matches!(&events[..], [Event::DependencySeen(_)]));
    assert_eq!(
        mesh.fences.get(&pp).unwrap().domains[host].status,
        DomainStatus::Active
    );
    assert!(sweep(&mut mesh, &pp, T0 + 100_000).is_empty());
}

#[test]
fn virtual_service_destinations_expand_and_a_change_re_renders_dependents_only() {
    let mut mesh = given(&[
        fence("default", "a", json!({"enable": true})),
        fence(
            "default",
            "other",
            json!({"enable": true, "host": {"x.example.com": {}}}),
        ),
    ]);
    let a = key("default", "a");
    observe(&mut mesh, &a, &["c.default.svc.cluster.local"], T0);
    let other_before = mesh.fences.get(&key("default", "other")).cloned();
    // A short VirtualService host is normalised by the VirtualService's namespace (upstream
    // compares strings and never matches the FQDN).
    apply(&mut mesh, &[vs("default", "c", &["c"], &["d"])]);
    assert!(egress(&mesh, &a).contains(&"*/d.default.svc.cluster.local".to_string()));
    assert_eq!(
        mesh.fences.get(&key("default", "other")).cloned(),
        other_before
    );
    apply(&mut mesh, &[vs("default", "c", &["c"], &["e"])]);
    let hosts = egress(&mesh, &a);
    assert!(hosts.contains(&"*/e.default.svc.cluster.local".to_string()));
    assert!(!hosts.contains(&"*/d.default.svc.cluster.local".to_string()));
    assert_consistent(&mesh);
}

#[test]
fn precedence_static_stable_over_learned_over_expired_static() {
    let mut mesh = given(&[fence(
        "default",
        "a",
        json!({"enable": true, "host": {
            "old.example.com": {"deadline": {"expire": {"seconds": (T0 / 1000) + 10}}},
            "pinned.example.com": {"stable": {}}}}),
    )]);
    let a = key("default", "a");
    observe(&mut mesh, &a, &["pinned.example.com"], T0);
    let view = mesh.fences.get(&a).unwrap();
    assert!(matches!(
        view.domains["pinned.example.com"].source,
        DomainSource::Static { .. }
    ));
    let events = sweep(&mut mesh, &a, T0 + 10_000);
    assert!(matches!(&events[..], [Event::HostDeadlinePassed(e)] if e.host == "old.example.com"));
    assert_eq!(
        mesh.fences.get(&a).unwrap().domains["old.example.com"].status,
        DomainStatus::Expire
    );
    assert!(!egress(&mesh, &a).contains(&"*/old.example.com".to_string()));
    assert!(
        sweep(&mut mesh, &a, T0 + 20_000).is_empty(),
        "recorded once"
    );
    // Traffic to an expired static host is a real dependency: learned wins over expired.
    observe(&mut mesh, &a, &["old.example.com"], T0 + 21_000);
    let view = mesh.fences.get(&a).unwrap();
    assert_eq!(view.domains["old.example.com"].status, DomainStatus::Active);
    assert!(matches!(
        view.domains["old.example.com"].source,
        DomainSource::Learned { .. }
    ));
}

#[test]
fn sightings_for_missing_or_disabled_fences_are_rejected() {
    let mut mesh = given(&[fence("default", "off", json!({"enable": false}))]);
    for fence in [key("default", "none"), key("default", "off")] {
        let err = mesh
            .execute(
                MeshCommand::Fence(FenceCommand::Observe {
                    fence: fence.clone(),
                    via: Via::AccessLog,
                    sightings: vec![sighting("a.example.com", T0)],
                }),
                &mut Ctx::new(T0, 1),
            )
            .unwrap_err();
        assert_eq!(err.kind, RejectionKind::NotFound, "{err}");
    }
    assert!(mesh.fences.learned.is_empty());
    let view = mesh.fences.get(&key("default", "off")).unwrap();
    assert!(!view.has_sidecar(), "a disabled fence has no Sidecar");
}

#[test]
fn workload_selector_precedence() {
    let mesh = given(&[
        svc("default", "reviews", json!({})),
        fence(
            "default",
            "a",
            json!({"enable": true, "workloadSelector": {"labels": {"x": "y"}, "fromService": true}}),
        ),
        fence(
            "default",
            "reviews",
            json!({"enable": true, "workloadSelector": {"fromService": true}}),
        ),
        fence(
            "default",
            "gone",
            json!({"enable": true, "workloadSelector": {"fromService": true}}),
        ),
    ]);
    let ws = |n: &str| {
        mesh.fences
            .get(&key("default", n))
            .unwrap()
            .workload_selector
            .clone()
    };
    assert_eq!(ws("a"), Some(BTreeMap::from([("x".into(), "y".into())])));
    assert_eq!(
        ws("reviews"),
        Some(BTreeMap::from([("app".into(), "reviews".into())]))
    );
    assert_eq!(
        ws("gone"),
        None,
        "fromService without the service: no Sidecar"
    );
}

#[test]
fn explain_names_the_evidence_of_every_egress_host() {
    let mut mesh = given(&[
        svc("default", "details", json!({"app": "details"})),
        fence(
            "default",
            "productpage",
            json!({"enable": true, "host": {"reviews.default.svc.cluster.local": {}},
                "labelSelector": [{"selector": {"app": "details"}}]}),
        ),
        vs("default", "reviews", &["reviews"], &["reviews-v2"]),
    ]);
    let pp = key("default", "productpage");
    observe(
        &mut mesh,
        &pp,
        &["ratings.default.svc.cluster.local"],
        T0 + 5,
    );
    let explained = explain::explain(&mesh.fences, &pp).unwrap();
    let reasons = |host: &str| {
        explained
            .iter()
            .find(|e| e.host == host)
            .unwrap_or_else(|| panic!("{host} in {explained:?}"))
            .reasons
            .clone()
    };
    assert!(matches!(
        &reasons("istio-system/*")[..],
        [explain::Reason::MeshNamespace { .. }]
    ));
    assert!(matches!(
        &reasons("*/reviews.default.svc.cluster.local")[..],
        [explain::Reason::Static { position: 2, .. }]
    ));
    assert!(matches!(
        &reasons("*/details.default.svc.cluster.local")[..],
        [explain::Reason::Selector { position: 1, .. }]
    ));
    assert!(matches!(
        &reasons("*/reviews-v2.default.svc.cluster.local")[..],
        [
            explain::Reason::VirtualService { position: 3, .. },
            explain::Reason::Static { .. }
        ]
    ));
    assert!(matches!(
        &reasons("*/ratings.default.svc.cluster.local")[..],
        [explain::Reason::Learned { learned_position: 4, first_seen_ms, .. }] if *first_seen_ms == T0 + 5
    ));
}

/// Random sequences of every input kind: the incrementally maintained renderings always equal
/// a full re-render.
#[test]
fn incremental_rendering_matches_a_full_rebuild_on_random_histories() {
    use rand::{Rng, SeedableRng};
    for seed in 0..40u64 {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut mesh = Mesh::default();
        let names = ["a", "b", "c", "d"];
        let namespaces = ["default", "prod"];
        let mut now = T0;
        for _ in 0..60 {
            now += 1000;
            let n = names[rng.random_range(0..names.len())];
            let s = namespaces[rng.random_range(0..namespaces.len())];
            let doc = match rng.random_range(0..8) {
                0 => ns(
                    s,
                    if rng.random_bool(0.5) {
                        json!({FENCED_LABEL: "false"})
                    } else {
                        json!({})
                    },
                ),
                1 => svc(
                    s,
                    n,
                    json!({"app": names[rng.random_range(0..names.len())], "tier": "x"}),
                ),
                2 => vs(
                    s,
                    n,
                    &[n],
                    &[names[rng.random_range(0..names.len())], "ext.example.com"],
                ),
                3 => fence(
                    s,
                    n,
                    json!({"enable": true, "host": {"prod/*": {}},
                    "labelSelector": [{"selector": {"app": names[rng.random_range(0..names.len())]}}]}),
                ),
                4 => slimeboot(
                    json!({"autoFence": rng.random_bool(0.7), "defaultFence": true,
                    "dependencyTtl": "5s", "idleGrace": "2s", "refreshWindow": "1s"}),
                ),
                5 => {
                    let fences: Vec<FenceKey> = mesh.fences.fences.keys().cloned().collect();
                    if let Some(f) = fences.get(rng.random_range(0..fences.len().max(1))) {
                        let host =
                            format!("{}.{}.svc.cluster.local", names[rng.random_range(0..4)], s);
                        observe(&mut mesh, f, &[&host], now);
                    }
                    continue;
                }
                6 => {
                    for f in mesh.fences.due(now) {
                        sweep(&mut mesh, &f, now);
                    }
                    continue;
                }
                _ => {
                    // Delete something that exists.
                    let keys: Vec<_> = mesh.resources.resources.keys().cloned().collect();
                    if let Some(k) = keys.get(rng.random_range(0..keys.len().max(1))) {
                        mesh.execute(
                            MeshCommand::Resource(crate::resource::ResourceCommand::Delete(
                                k.clone(),
                            )),
                            &mut Ctx::new(now, 1),
                        )
                        .unwrap();
                    }
                    continue;
                }
            };
            mesh.apply_documents(&[doc], &mut Ctx::new(now, 1)).unwrap();
            assert_consistent(&mesh);
        }
    }
}
