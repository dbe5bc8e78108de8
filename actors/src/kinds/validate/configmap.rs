//! A ConfigMap's keys and size (`ValidateConfigMap`; a Secret's keys follow the same rule):
//! every key of `data` and `binaryData` is a valid file name (`[-._a-zA-Z0-9]+`, at most 253
//! characters, not `.`, `..` or starting with `..`), no key is in both, and the values hold at
//! most 1 MiB together.

use k8s_openapi::api::core::v1::ConfigMap;

use super::names;
use super::report::{self, invalid_str, too_long};
use crate::decider::Rejection;

/// The most bytes a ConfigMap's (or Secret's) values may hold together.
pub const MAX_BYTES: usize = 1024 * 1024;

pub fn validate(config_map: &ConfigMap) -> Result<(), Rejection> {
    let data = config_map.data.as_ref();
    let binary = config_map.binary_data.as_ref();
    let mut total = 0usize;
    for (key, value) in data.into_iter().flatten() {
        let field = report::key("data", key);
        let problems = names::is_config_map_key(key);
        if !problems.is_empty() {
            return Err(invalid_str(field, key, &problems.join("; ")));
        }
        if binary.is_some_and(|b| b.contains_key(key)) {
            return Err(invalid_str(
                field,
                key,
                "duplicate of key present in binaryData",
            ));
        }
        total += value.len();
    }
    for (key, value) in binary.into_iter().flatten() {
        let problems = names::is_config_map_key(key);
        if !problems.is_empty() {
            return Err(invalid_str(
                report::key("binaryData", key),
                key,
                &problems.join("; "),
            ));
        }
        total += value.0.len();
    }
    if total > MAX_BYTES {
        // The API server names no field: the limit is the whole object's.
        return Err(too_long("(object)", MAX_BYTES));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    fn config_map(body: Value) -> Result<(), String> {
        let mut object =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        object
            .as_object_mut()
            .unwrap()
            .extend(body.as_object().unwrap().clone());
        super::super::config_map(&object).map_err(|e| e.to_string())
    }

    #[test]
    fn keys_are_file_names() {
        config_map(json!({"data": {"app.properties": "x", "KEY_1": "y", ".hidden": ""}})).unwrap();
        assert!(config_map(json!({"data": {"a/b": "x"}}))
            .unwrap_err()
            .starts_with("data[a/b]: Invalid value: \"a/b\": a valid config key must consist of"));
        for bad in [".", "..", "..x"] {
            assert!(
                config_map(json!({"data": {bad: "x"}}))
                    .unwrap_err()
                    .contains("must not"),
                "{bad}"
            );
        }
        assert!(config_map(json!({"binaryData": {"a b": "eA=="}}))
            .unwrap_err()
            .starts_with("binaryData[a b]: Invalid value"));
    }

    #[test]
    fn a_huge_key_is_refused_without_being_echoed() {
        let key = "k".repeat(900_000);
        let e = config_map(json!({"data": {key: "x"}})).unwrap_err();
        assert!(e.len() < 400, "{e}");
        assert!(
            e.contains("(900000 bytes)") && e.contains("no more than 253 characters"),
            "{e}"
        );
    }

    #[test]
    fn no_key_in_both_and_at_most_one_mebibyte() {
        assert_eq!(
            config_map(json!({"data": {"a": "x"}, "binaryData": {"a": "eA=="}})).unwrap_err(),
            "data[a]: Invalid value: \"a\": duplicate of key present in binaryData"
        );
        let half = "v".repeat(super::MAX_BYTES / 2);
        config_map(json!({"data": {"a": half.clone(), "b": half.clone()}})).unwrap();
        assert_eq!(
            config_map(json!({"data": {"a": half.clone(), "b": half, "c": "x"}})).unwrap_err(),
            "(object): Too long: may not be more than 1048576 bytes"
        );
    }
}
