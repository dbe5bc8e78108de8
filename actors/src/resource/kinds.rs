//! The kinds the declarative-resource concept accepts, and how each is validated.
//!
//! Every kind is checked by deserializing the whole object into its typed Kubernetes struct
//! (k8s-openapi), so a wrong type is reported with the path of the field, and by comparing the
//! input with the typed round trip, so an unknown (misspelt) field is reported instead of being
//! silently dropped. Later concepts add their kinds here.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::decider::Rejection;
use crate::fence;

/// One accepted kind.
pub struct KindSpec {
    pub kind: &'static str,
    /// Accepted `apiVersion`s; the first is the one objects are projected with.
    pub api_versions: &'static [&'static str],
    pub namespaced: bool,
    /// Lower-case plural, as used in URLs and the CLI (`configmaps`).
    pub plural: &'static str,
    /// Other names the CLI accepts (`cm`, `configmap`).
    pub aliases: &'static [&'static str],
    /// How the projections treat resources of this kind.
    pub projection: Projection,
    validate: fn(&Value) -> Result<(), Rejection>,
}

/// How resources of a kind reach the outside world.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Projection {
    /// Projected as applied (the manifest directory, Kubernetes, etcd).
    AsApplied,
    /// Projected by the concept that reads it, which adds what it computed (a ServiceFence
    /// gets its status from the fence concept).
    ByConcept,
    /// Configuration meshplane itself reads; never projected (a SlimeBoot configures the fence
    /// concept; there is no slime-boot operator to hand it to).
    Configuration,
}

impl KindSpec {
    /// Validate a whole object (apiVersion, kind, metadata and body) of this kind.
    pub fn validate(&self, object: &Value) -> Result<(), Rejection> {
        (self.validate)(object)
    }

    /// Whether `name` (case-insensitive) refers to this kind.
    pub fn matches(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        name == self.kind.to_ascii_lowercase()
            || name == self.plural
            || self.aliases.contains(&name.as_str())
    }
}

use k8s_openapi::api::apps::v1 as apps;
use k8s_openapi::api::core::v1 as core;

/// Every kind this build accepts, in a fixed order.
pub const KINDS: &[KindSpec] = &[
    KindSpec {
        kind: "Namespace",
        api_versions: &["v1"],
        namespaced: false,
        plural: "namespaces",
        aliases: &["ns", "namespace"],
        projection: Projection::AsApplied,
        validate: typed::<core::Namespace>,
    },
    KindSpec {
        kind: "ConfigMap",
        api_versions: &["v1"],
        namespaced: true,
        plural: "configmaps",
        aliases: &["cm", "configmap"],
        projection: Projection::AsApplied,
        validate: typed::<core::ConfigMap>,
    },
    KindSpec {
        kind: "Service",
        api_versions: &["v1"],
        namespaced: true,
        plural: "services",
        aliases: &["svc", "service"],
        projection: Projection::AsApplied,
        validate: typed::<core::Service>,
    },
    KindSpec {
        kind: "Deployment",
        api_versions: &["apps/v1"],
        namespaced: true,
        plural: "deployments",
        aliases: &["deploy", "deployment"],
        projection: Projection::AsApplied,
        validate: typed::<apps::Deployment>,
    },
    KindSpec {
        kind: "StatefulSet",
        api_versions: &["apps/v1"],
        namespaced: true,
        plural: "statefulsets",
        aliases: &["sts", "statefulset"],
        projection: Projection::AsApplied,
        validate: typed::<apps::StatefulSet>,
    },
    KindSpec {
        kind: "Endpoints",
        api_versions: &["v1"],
        namespaced: true,
        plural: "endpoints",
        aliases: &["ep"],
        projection: Projection::AsApplied,
        validate: typed::<core::Endpoints>,
    },
    KindSpec {
        kind: fence::SERVICE_FENCE_KIND,
        api_versions: &["microservice.slime.io/v1alpha1"],
        namespaced: true,
        plural: "servicefences",
        aliases: &["svf", "servicefence"],
        projection: Projection::ByConcept,
        validate: fence::spec::validate_object,
    },
    KindSpec {
        kind: fence::VIRTUAL_SERVICE_KIND,
        api_versions: &[
            "networking.istio.io/v1",
            "networking.istio.io/v1beta1",
            "networking.istio.io/v1alpha3",
        ],
        namespaced: true,
        plural: "virtualservices",
        aliases: &["vs", "virtualservice"],
        projection: Projection::AsApplied,
        validate: validate_virtual_service,
    },
    KindSpec {
        kind: fence::SLIMEBOOT_KIND,
        api_versions: &["config.netease.com/v1alpha1"],
        namespaced: true,
        plural: "slimeboots",
        aliases: &["slimeboot"],
        projection: Projection::Configuration,
        validate: fence::config::validate_object,
    },
];

/// A VirtualService is Istio's to validate in full; meshplane checks the fields it reads
/// (`spec.hosts`, `spec.http[].route[].destination.host`) and passes the rest through.
fn validate_virtual_service(object: &Value) -> Result<(), Rejection> {
    let spec = &object["spec"];
    if !spec.is_object() {
        return Err(Rejection::invalid("spec", "required"));
    }
    match &spec["hosts"] {
        Value::Array(hosts) if !hosts.is_empty() => {
            for (i, h) in hosts.iter().enumerate() {
                if h.as_str().is_none_or(str::is_empty) {
                    return Err(Rejection::invalid(
                        format!("spec.hosts[{i}]"),
                        "must be a non-empty string",
                    ));
                }
            }
        }
        _ => {
            return Err(Rejection::invalid(
                "spec.hosts",
                "a non-empty list of hosts",
            ))
        }
    }
    for (i, http) in spec["http"].as_array().into_iter().flatten().enumerate() {
        for (j, route) in http["route"].as_array().into_iter().flatten().enumerate() {
            if route["destination"]["host"]
                .as_str()
                .is_none_or(str::is_empty)
            {
                return Err(Rejection::invalid(
                    format!("spec.http[{i}].route[{j}].destination.host"),
                    "required",
                ));
            }
        }
    }
    Ok(())
}

/// Look a kind up by its name, plural or alias.
pub fn find(name: &str) -> Option<&'static KindSpec> {
    KINDS.iter().find(|k| k.matches(name))
}

/// The list of kinds, for error messages.
pub fn known_kinds() -> String {
    KINDS.iter().map(|k| k.kind).collect::<Vec<_>>().join(", ")
}

fn typed<T: DeserializeOwned + Serialize>(object: &Value) -> Result<(), Rejection> {
    let parsed: T = serde_path_to_error::deserialize(object).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            "(object)".to_string()
        } else {
            path
        };
        Rejection::invalid(field, e.into_inner().to_string())
    })?;
    let round_trip =
        serde_json::to_value(&parsed).map_err(|e| Rejection::invalid("(object)", e.to_string()))?;
    match first_unknown_field(object, &round_trip, "") {
        Some(path) => Err(Rejection::invalid(path, "unknown field")),
        None => Ok(()),
    }
}

/// The first field present in `input` but dropped by the typed round trip. Null inputs are
/// fine (they mean "unset"); keys are visited in sorted order so the answer is deterministic.
fn first_unknown_field(input: &Value, typed: &Value, path: &str) -> Option<String> {
    match (input, typed) {
        (Value::Object(fields), Value::Object(known)) => {
            for (key, value) in fields {
                let here = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match known.get(key) {
                    Some(t) => {
                        if let Some(p) = first_unknown_field(value, t, &here) {
                            return Some(p);
                        }
                    }
                    None if value.is_null() => {}
                    None => return Some(here),
                }
            }
            None
        }
        (Value::Array(items), Value::Array(known)) => items
            .iter()
            .zip(known)
            .enumerate()
            .find_map(|(i, (v, t))| first_unknown_field(v, t, &format!("{path}[{i}]"))),
        _ => None,
    }
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
        assert!(find("Widget").is_none());
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
