//! Validation of applied objects, as the Kubernetes API server does it.
//!
//! Two layers, both run for every applied object:
//!
//! 1. **Typed**: the whole object is deserialized into its typed Kubernetes struct
//!    (k8s-openapi), so a wrong type is reported with the path of the field, and the input is
//!    compared with the typed round trip, so an unknown (misspelt) field is refused instead of
//!    being silently dropped. This is what the OpenAPI schema says (and what
//!    `kubernetes-validate --strict` checks).
//! 2. **Semantic**: the rules the API server adds in Go and no schema can express
//!    (`k8s.io/apimachinery` validation and `k8s.io/kubernetes/pkg/apis/*/validation`): names
//!    per kind ([`names`], [`meta`]), ports ([`ports`]), a Service's shape ([`service`]),
//!    workloads' replicas, selectors and containers ([`workloads`]), ConfigMap keys and size
//!    ([`configmap`]), Endpoints ([`endpoints`]). Messages are worded as the API server's
//!    ([`report`]) and never echo a long value whole.
//!
//! Rules are applied as the API server applies them after defaulting: an empty protocol is
//! TCP, a targetPort of 0 is the port, a missing restartPolicy is Always. Whatever the API
//! server accepts is accepted; `tests/validation_differential.rs` checks these rules against
//! `kubernetes-validate` over generated and mutated manifests.

pub mod configmap;
pub mod endpoints;
pub mod meta;
pub mod names;
pub mod ports;
pub mod report;
pub mod service;
pub mod workloads;

use k8s_openapi::api::apps::v1 as apps;
use k8s_openapi::api::core::v1 as core;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::decider::Rejection;

/// Validate `object` as a `T` (a [`super::Validate`] for a built-in kind: `typed::<Service>`).
pub fn typed<T: DeserializeOwned + Serialize>(object: &Value) -> Result<(), Rejection> {
    parse::<T>(object).map(|_| ())
}

/// `object` as a `T`, with every field known to `T` and of its type.
pub fn parse<T: DeserializeOwned + Serialize>(object: &Value) -> Result<T, Rejection> {
    parse_at(object, "")
}

/// [`parse`] for a part of an object at `at` (`metadata`), whose paths are prefixed with it.
pub fn parse_at<T: DeserializeOwned + Serialize>(object: &Value, at: &str) -> Result<T, Rejection> {
    let within = |path: String| match (at.is_empty(), path.as_str()) {
        (true, ".") => "(object)".to_string(),
        (true, _) => path,
        (false, ".") => at.to_string(),
        (false, _) => format!("{at}.{path}"),
    };
    let parsed: T = serde_path_to_error::deserialize(object).map_err(|e| {
        let field = within(e.path().to_string());
        Rejection::invalid(
            report::clipped(field),
            report::clipped(e.into_inner().to_string()),
        )
    })?;
    let round_trip =
        serde_json::to_value(&parsed).map_err(|e| Rejection::invalid("(object)", e.to_string()))?;
    match first_unknown_field(object, &round_trip, "") {
        Some(path) => Err(Rejection::invalid(
            report::clipped(within(path)),
            "unknown field",
        )),
        None => Ok(parsed),
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

/// A Namespace: typed (its name is checked with its metadata).
pub fn namespace(object: &Value) -> Result<(), Rejection> {
    typed::<core::Namespace>(object)
}

/// A ConfigMap: typed, then its keys and size.
pub fn config_map(object: &Value) -> Result<(), Rejection> {
    configmap::validate(&parse::<core::ConfigMap>(object)?)
}

/// A Service: typed, then its type, ports and selector.
pub fn service(object: &Value) -> Result<(), Rejection> {
    service::validate(&parse::<core::Service>(object)?)
}

/// A Deployment: typed, then replicas, selector and pod template.
pub fn deployment(object: &Value) -> Result<(), Rejection> {
    workloads::deployment(&parse::<apps::Deployment>(object)?)
}

/// A StatefulSet: typed, then replicas, selector, pod template and policies.
pub fn stateful_set(object: &Value) -> Result<(), Rejection> {
    workloads::stateful_set(&parse::<apps::StatefulSet>(object)?)
}

/// Endpoints: typed, then addresses and ports.
pub fn endpoints(object: &Value) -> Result<(), Rejection> {
    endpoints::validate(&parse::<core::Endpoints>(object)?)
}
