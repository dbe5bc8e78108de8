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
#[cfg(test)]
mod tests;
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
    let mut dropped = Dropped::default();
    dropped.visit(object, &round_trip, &mut Vec::new());
    if let Some(path) = dropped.unknown {
        return Err(Rejection::invalid(
            report::clipped(within(path_text(&path))),
            "unknown field",
        ));
    }
    // A null the round trip dropped is an unset known field, or an unknown field set to null
    // (which strict decoding refuses as any unknown field): ask the type with a probe value.
    for path in dropped.nulls.iter().take(NULL_PROBES) {
        if !knows::<T>(object, path) {
            return Err(Rejection::invalid(
                report::clipped(within(path_text(path))),
                "unknown field",
            ));
        }
    }
    Ok(parsed)
}

/// How many null fields of one object are probed (each probe decodes the object again).
const NULL_PROBES: usize = 32;

/// One step into a JSON value.
#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Index(usize),
}

fn path_text(path: &[Step]) -> String {
    let mut text = String::new();
    for step in path {
        match step {
            Step::Key(k) if text.is_empty() => text.push_str(k),
            Step::Key(k) => {
                text.push('.');
                text.push_str(k);
            }
            Step::Index(i) => text.push_str(&format!("[{i}]")),
        }
    }
    text
}

fn step_into<'a>(value: &'a Value, step: &Step) -> Option<&'a Value> {
    match step {
        Step::Key(k) => value.get(k.as_str()),
        Step::Index(i) => value.get(*i),
    }
}

/// The fields present in an input but dropped by the typed round trip.
#[derive(Default)]
struct Dropped {
    /// The first non-null one: an unknown field.
    unknown: Option<Vec<Step>>,
    /// Null ones: unset known fields, or unknown fields set to null.
    nulls: Vec<Vec<Step>>,
}

impl Dropped {
    /// Keys are visited in sorted order so the answer is deterministic.
    fn visit(&mut self, input: &Value, typed: &Value, path: &mut Vec<Step>) {
        if self.unknown.is_some() {
            return;
        }
        match (input, typed) {
            (Value::Object(fields), Value::Object(known)) => {
                for (key, value) in fields {
                    path.push(Step::Key(key.clone()));
                    match known.get(key) {
                        Some(t) => self.visit(value, t, path),
                        None if value.is_null() => self.nulls.push(path.clone()),
                        None => self.unknown = Some(path.clone()),
                    }
                    path.pop();
                    if self.unknown.is_some() {
                        return;
                    }
                }
            }
            (Value::Array(items), Value::Array(known)) => {
                for (i, (v, t)) in items.iter().zip(known).enumerate() {
                    path.push(Step::Index(i));
                    self.visit(v, t, path);
                    path.pop();
                }
            }
            _ => {}
        }
    }
}

/// Whether `T` knows the field at `path` (null in `object`): set to `""`, a known field either
/// fails to decode (it is not a string) or survives the round trip; an unknown one is dropped.
fn knows<T: DeserializeOwned + Serialize>(object: &Value, path: &[Step]) -> bool {
    let mut probe = object.clone();
    let Some(slot) = path.iter().try_fold(&mut probe, |v, step| match step {
        Step::Key(k) => v.get_mut(k.as_str()),
        Step::Index(i) => v.get_mut(*i),
    }) else {
        return true;
    };
    *slot = Value::String(String::new());
    let Ok(parsed) = serde_json::from_value::<T>(probe) else {
        return true;
    };
    let Ok(round_trip) = serde_json::to_value(&parsed) else {
        return true;
    };
    path.iter()
        .try_fold(&round_trip, |v, step| step_into(v, step))
        .is_some()
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
