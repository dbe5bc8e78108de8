//! A declarative document (as parsed from YAML or JSON) turned into a validated manifest.

use std::collections::BTreeMap;

use events::schema::ResourceKey;
use serde_json::{Map, Value};

use super::kinds::{self, KindSpec};
use crate::decider::Rejection;
use crate::kinds::validate::{meta, report::shown};

/// The namespace a namespaced object lands in when its document names none.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Top-level fields that are not part of the stored body.
const ENVELOPE_FIELDS: &[&str] = &["apiVersion", "kind", "metadata", "status"];
/// Metadata fields a client may set; the rest (uid, resourceVersion, ...) belong to a server.
const CLIENT_METADATA: &[&str] = &["name", "namespace", "labels", "annotations"];

/// A validated document: identity, labels, annotations and the canonical body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceManifest {
    pub key: ResourceKey,
    pub api_version: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// Canonical JSON of the top-level fields other than apiVersion/kind/metadata/status.
    pub body: String,
}

impl ResourceManifest {
    /// Validate a document. Every error names the field: `kind`, `metadata.name`,
    /// `metadata.labels.app`, `spec.ports[0].port`, ...
    pub fn from_value(document: &Value) -> Result<Self, Rejection> {
        let object = document.as_object().ok_or_else(|| {
            Rejection::invalid(
                "(document)",
                format!("expected a mapping, found {}", type_name(document)),
            )
        })?;
        let api_version = required_string(object, "apiVersion")?;
        let kind_name = required_string(object, "kind")?;
        let spec = kinds::find(kind_name)
            .filter(|k| k.kind == kind_name)
            .ok_or_else(|| {
                Rejection::invalid(
                    "kind",
                    format!(
                        "unknown kind {} (known kinds: {})",
                        quoted(kind_name),
                        kinds::known_kinds()
                    ),
                )
            })?;
        if !spec.api_versions.contains(&api_version) {
            return Err(Rejection::invalid(
                "apiVersion",
                format!(
                    "{} is not served for {} (use {})",
                    quoted(api_version),
                    spec.kind,
                    spec.api_versions.join(" or ")
                ),
            ));
        }
        let metadata = match object.get("metadata") {
            Some(Value::Object(m)) => m,
            Some(other) => {
                return Err(Rejection::invalid(
                    "metadata",
                    format!("expected a mapping, found {}", type_name(other)),
                ))
            }
            None => {
                return Err(Rejection::invalid(
                    "metadata",
                    "missing (an object needs metadata.name)",
                ))
            }
        };
        // The whole of metadata as the API server checks it (unknown fields, the kind's name
        // rule, namespace, labels, annotations); then the parts that are stored.
        meta::validate(
            &Value::Object(metadata.clone()),
            spec.name_rule,
            spec.namespaced,
        )?;
        let name = metadata
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let namespace = namespace_of(spec, metadata);
        let labels = string_map(metadata, "labels")?;
        let annotations = string_map(metadata, "annotations")?;

        // The typed check sees exactly what will be stored: client metadata and the body.
        let mut clean_metadata = Map::new();
        for field in CLIENT_METADATA {
            if let Some(v) = metadata.get(*field) {
                clean_metadata.insert((*field).to_string(), v.clone());
            }
        }
        let mut body = Map::new();
        for (k, v) in object {
            if !ENVELOPE_FIELDS.contains(&k.as_str()) {
                body.insert(k.clone(), v.clone());
            }
        }
        let mut typed = body.clone();
        typed.insert("apiVersion".into(), Value::String(api_version.to_string()));
        typed.insert("kind".into(), Value::String(spec.kind.to_string()));
        typed.insert("metadata".into(), Value::Object(clean_metadata));
        spec.validate(&Value::Object(typed))?;

        Ok(ResourceManifest {
            key: ResourceKey::new(spec.kind, namespace, name),
            api_version: api_version.to_string(),
            labels,
            annotations,
            body: Value::Object(body).to_string(),
        })
    }
}

/// The namespace an object lands in: the default one when a namespaced object names none. A
/// cluster-scoped object's namespace is ignored, as the API server clears it.
fn namespace_of(spec: &KindSpec, metadata: &Map<String, Value>) -> String {
    match metadata.get("namespace").and_then(Value::as_str) {
        _ if !spec.namespaced => String::new(),
        Some(ns) if !ns.is_empty() => ns.to_string(),
        _ => DEFAULT_NAMESPACE.to_string(),
    }
}

/// A name from the input in backquotes, or shortened when it is long: an error never echoes a
/// huge value whole.
fn quoted(value: &str) -> String {
    if value.len() <= 100 {
        format!("`{value}`")
    } else {
        shown(value)
    }
}

pub(crate) fn required_string<'a>(
    object: &'a Map<String, Value>,
    field: &str,
) -> Result<&'a str, Rejection> {
    match object.get(field) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(Value::String(_)) => Err(Rejection::invalid(field, "must not be empty")),
        Some(other) => Err(Rejection::invalid(
            field,
            format!("expected a string, found {}", type_name(other)),
        )),
        None => Err(Rejection::invalid(field, "missing")),
    }
}

pub(crate) fn string_map(
    metadata: &Map<String, Value>,
    field: &str,
) -> Result<BTreeMap<String, String>, Rejection> {
    let path = format!("metadata.{field}");
    match metadata.get(field) {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                other => Err(Rejection::invalid(
                    format!("{path}.{k}"),
                    format!("expected a string, found {}", type_name(other)),
                )),
            })
            .collect(),
        Some(other) => Err(Rejection::invalid(
            path,
            format!("expected a mapping, found {}", type_name(other)),
        )),
    }
}

/// A DNS-1123 subdomain: what Kubernetes requires of most object names.
pub fn validate_name(field: &str, name: &str) -> Result<(), Rejection> {
    if name.is_empty() {
        return Err(Rejection::invalid(field, "must not be empty"));
    }
    if name.len() > 253 {
        return Err(Rejection::invalid(
            field,
            format!("{} is longer than 253 characters", shown(name)),
        ));
    }
    let ok = name.split('.').all(|part| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !part.starts_with('-')
            && !part.ends_with('-')
    });
    if !ok {
        return Err(Rejection::invalid(
            field,
            format!("{} is not a valid name: use lower-case letters, digits, '-' and '.', starting and ending with a letter or digit", shown(name)),
        ));
    }
    Ok(())
}

pub(crate) fn validate_label_key(field: &str, key: &str) -> Result<(), Rejection> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        validate_name(field, prefix).map_err(|_| {
            Rejection::invalid(
                field,
                format!("key prefix {} is not a DNS subdomain", shown(prefix)),
            )
        })?;
    }
    validate_label_value_shape(field, name, false)
}

pub(crate) fn validate_label_value(field: &str, value: &str) -> Result<(), Rejection> {
    validate_label_value_shape(field, value, true)
}

/// Label names and values: at most 63 of [A-Za-z0-9-_.], alphanumeric at both ends.
fn validate_label_value_shape(field: &str, value: &str, empty_ok: bool) -> Result<(), Rejection> {
    if value.is_empty() {
        return if empty_ok {
            Ok(())
        } else {
            Err(Rejection::invalid(field, "must not be empty"))
        };
    }
    token_shape(field, value, 63)
}

/// At most `max` of [A-Za-z0-9-_.], alphanumeric at both ends: label names and values, and the
/// names of registry objects (which become etcd key segments, so never contain `/`).
pub(crate) fn token_shape(field: &str, value: &str, max: usize) -> Result<(), Rejection> {
    let bytes = value.as_bytes();
    if bytes.is_empty() {
        return Err(Rejection::invalid(field, "must not be empty"));
    }
    let valid = value.len() <= max
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric();
    if valid {
        Ok(())
    } else {
        Err(Rejection::invalid(
            field,
            format!("{} must be at most {max} characters of letters, digits, '-', '_' or '.', beginning and ending with a letter or digit", shown(value)),
        ))
    }
}

pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field_of(doc: Value) -> String {
        ResourceManifest::from_value(&doc)
            .unwrap_err()
            .field
            .unwrap()
    }

    #[test]
    fn parses_a_config_map_with_defaults() {
        let m = ResourceManifest::from_value(&json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "web", "labels": {"app": "web"}, "uid": "ignored"},
            "data": {"b": "2", "a": "1"}, "status": {"ignored": true}}))
        .unwrap();
        assert_eq!(m.key, ResourceKey::new("ConfigMap", "default", "web"));
        assert_eq!(
            m.body, r#"{"data":{"a":"1","b":"2"}}"#,
            "canonical: sorted keys, no status"
        );
        assert_eq!(m.labels.get("app").map(String::as_str), Some("web"));
    }

    #[test]
    fn every_error_names_its_field() {
        assert_eq!(
            field_of(json!({"kind": "ConfigMap", "metadata": {"name": "a"}})),
            "apiVersion"
        );
        assert_eq!(
            field_of(json!({"apiVersion": "v1", "kind": "Widget", "metadata": {"name": "a"}})),
            "kind"
        );
        assert_eq!(
            field_of(json!({"apiVersion": "v2", "kind": "ConfigMap", "metadata": {"name": "a"}})),
            "apiVersion"
        );
        assert_eq!(
            field_of(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}})),
            "metadata.name"
        );
        assert_eq!(
            field_of(json!({"apiVersion": "v1", "kind": "ConfigMap"})),
            "metadata"
        );
        assert_eq!(
            field_of(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": 5}})),
            "metadata.name"
        );
        assert_eq!(
            field_of(
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name"}})
            ),
            "metadata.name"
        );
        assert_eq!(
            field_of(
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "labels": {"app": 3}}})
            ),
            "metadata.labels.app"
        );
        // Label errors name the labels, and show the key or value at fault, as the API
        // server's do.
        assert_eq!(
            field_of(
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "labels": {"app": "-x"}}})
            ),
            "metadata.labels"
        );
        assert_eq!(
            field_of(
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "B"}})
            ),
            "metadata.namespace"
        );
        assert_eq!(
            field_of(
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": 1}})
            ),
            "data.k"
        );
        assert_eq!(field_of(json!(["not", "a", "mapping"])), "(document)");
        let huge = "K".repeat(900_000);
        let err = ResourceManifest::from_value(
            &json!({"apiVersion": "v1", "kind": huge, "metadata": {"name": "a"}}),
        )
        .unwrap_err();
        assert!(err.to_string().len() < 400, "{}", err.to_string().len());
    }
}
