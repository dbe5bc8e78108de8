//! The typed check of an applied built-in object.
//!
//! The whole object is deserialized into its typed Kubernetes struct (k8s-openapi), so a wrong
//! type is reported with the path of the field, and the input is compared with the typed round
//! trip, so an unknown (misspelt) field is reported instead of being silently dropped.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::decider::Rejection;

/// Validate `object` as a `T` (a [`super::Validate`] for a built-in kind: `typed::<Service>`).
pub fn typed<T: DeserializeOwned + Serialize>(object: &Value) -> Result<(), Rejection> {
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
