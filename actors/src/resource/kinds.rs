//! The kinds the declarative-resource concept owns (the built-in ones meshplane applies as
//! given), and the lookups of every kind `apply` accepts.
//!
//! Each owned kind is validated as the API server validates it: its typed Kubernetes struct
//! (k8s-openapi), then the rules the API server adds (see [`crate::kinds::validate`]). The kinds other concepts own and accept through `apply` (a
//! ServiceFence, a SlimeBoot) are declared by those concepts; [`find`] sees them all through
//! the one kind table ([`crate::kinds`]).

use crate::kinds::{validate, NameRule, Observe, Phase, Scope};
pub use crate::kinds::{KindSpec, Projection};

use super::columns;

pub const NAMESPACE: KindSpec = KindSpec::new("Namespace", &["v1"], "namespaces", Scope::Cluster)
    .aliases(&["ns", "namespace"])
    .named(NameRule::Dns1123Label)
    .applied(Projection::AsApplied, validate::namespace)
    // Namespaces matter for their labels (metadata); the phase tells a terminating one.
    .observed(Observe::keep(&[&["status", "phase"]]))
    .written(Phase::Namespaces);

pub const CONFIG_MAP: KindSpec =
    KindSpec::new("ConfigMap", &["v1"], "configmaps", Scope::Namespaced)
        .aliases(&["cm", "configmap"])
        .applied(Projection::AsApplied, validate::config_map)
        .written(Phase::Objects)
        .columns(columns::CONFIG_MAP);

pub const SERVICE: KindSpec = KindSpec::new("Service", &["v1"], "services", Scope::Namespaced)
    .aliases(&["svc", "service"])
    .named(NameRule::Dns1035Label)
    .applied(Projection::AsApplied, validate::service)
    .observed(Observe::keep(&[&["spec"]]))
    .written(Phase::Objects)
    .columns(columns::SERVICE);

/// A workload's shape, not its rollout status.
const WORKLOAD: Observe = Observe::keep(&[
    &["spec", "replicas"],
    &["spec", "selector"],
    &["spec", "template", "metadata", "labels"],
    &["spec", "template", "metadata", "annotations"],
]);

pub const DEPLOYMENT: KindSpec =
    KindSpec::new("Deployment", &["apps/v1"], "deployments", Scope::Namespaced)
        .aliases(&["deploy", "deployment"])
        .applied(Projection::AsApplied, validate::deployment)
        .observed(WORKLOAD)
        .written(Phase::Objects)
        .columns(columns::WORKLOAD);

pub const STATEFUL_SET: KindSpec = KindSpec::new(
    "StatefulSet",
    &["apps/v1"],
    "statefulsets",
    Scope::Namespaced,
)
.aliases(&["sts", "statefulset"])
.applied(Projection::AsApplied, validate::stateful_set)
.observed(WORKLOAD)
.written(Phase::Objects)
.columns(columns::WORKLOAD);

pub const ENDPOINTS: KindSpec = KindSpec::new("Endpoints", &["v1"], "endpoints", Scope::Namespaced)
    .aliases(&["ep"])
    .applied(Projection::AsApplied, validate::endpoints)
    .observed(Observe::keep(&[&["subsets"]]).dropping_target_ref_versions())
    .written(Phase::Objects);

/// The resource concept's kinds, in the order `apply` lists them.
pub const KINDS: &[KindSpec] = &[
    NAMESPACE,
    CONFIG_MAP,
    SERVICE,
    DEPLOYMENT,
    STATEFUL_SET,
    ENDPOINTS,
];

/// The kind `apply` accepts by its name, plural or alias (case-insensitive).
pub fn find(name: &str) -> Option<&'static KindSpec> {
    crate::kinds::applied().find(|k| k.matches(name))
}

/// The kinds `apply` accepts, for error messages.
pub fn known_kinds() -> String {
    crate::kinds::applied()
        .map(|k| k.kind)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_kinds_by_any_name() {
        assert_eq!(find("cm").unwrap().kind, "ConfigMap");
        assert_eq!(find("Deployments").unwrap().kind, "Deployment");
        assert_eq!(find("deployment").unwrap().kind, "Deployment");
        assert_eq!(find("svf").unwrap().kind, "ServiceFence");
        assert!(find("Widget").is_none());
        // Watched and generated kinds exist, but `apply` does not take them.
        assert!(find("Pod").is_none());
        assert!(find("sidecars").is_none());
    }

    #[test]
    fn known_kinds_are_the_applied_ones_in_table_order() {
        assert_eq!(
            known_kinds(),
            "Namespace, ConfigMap, Service, Deployment, StatefulSet, Endpoints, ServiceFence, \
             VirtualService, SlimeBoot"
        );
    }

    #[test]
    fn wrong_type_names_the_field_path() {
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
            "spec": {"ports": [{"port": "eighty"}]}});
        let err = find("Service").unwrap().validate(&svc).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("spec.ports[0].port"), "{err}");
    }

    #[test]
    fn unknown_field_is_reported() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
            "data": {"a": "b"}, "dat": {"x": "y"}});
        let err = find("ConfigMap").unwrap().validate(&cm).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("dat"));
        assert_eq!(err.message, "unknown field");
        let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "c", "imagee": "x"}]}}}});
        let err = find("Deployment").unwrap().validate(&deploy).unwrap_err();
        assert_eq!(
            err.field.as_deref(),
            Some("spec.template.spec.containers[0].imagee")
        );
    }

    #[test]
    fn valid_objects_pass() {
        let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "d"}},
                "template": {"metadata": {"labels": {"app": "d"}},
                    "spec": {"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}]}]}}}});
        find("Deployment").unwrap().validate(&deploy).unwrap();
    }
}
