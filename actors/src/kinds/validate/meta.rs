//! An applied object's `metadata`, as the API server's `ValidateObjectMeta` checks it: the
//! whole of it typed as an `ObjectMeta` (so `metadata.bogus` is refused, not dropped), the name
//! by the kind's rule, `generateName`, the namespace, labels and annotations.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

use super::names::{self, NameRule};
use super::report::{self, check, invalid_str, required, too_long};
use crate::decider::Rejection;

/// The most bytes an object's annotations may hold, keys and values together.
pub const ANNOTATIONS_MAX_BYTES: usize = 256 * 1024;

/// Check an applied object's `metadata`. `namespaced`: whether the kind lives in a namespace
/// (a cluster-scoped object's namespace is ignored, as the API server clears it).
pub fn validate(metadata: &Value, rule: NameRule, namespaced: bool) -> Result<(), Rejection> {
    let meta: ObjectMeta = super::parse_at(metadata, "metadata")?;
    if let Some(generate) = meta.generate_name.as_deref().filter(|g| !g.is_empty()) {
        check(
            "metadata.generateName",
            generate,
            rule.problems(generate, true),
        )?;
    }
    match meta.name.as_deref() {
        None | Some("") => return Err(required("metadata.name", "name is required")),
        Some(name) => check("metadata.name", name, rule.problems(name, false))?,
    }
    if namespaced {
        if let Some(ns) = meta.namespace.as_deref().filter(|n| !n.is_empty()) {
            check("metadata.namespace", ns, names::is_dns1123_label(ns))?;
        }
    }
    labels(meta.labels.as_ref(), "metadata.labels")?;
    annotations(meta.annotations.as_ref(), "metadata.annotations")
}

/// Label keys are qualified names and values label values (`ValidateLabels`): object labels,
/// template labels, a Service's selector, a selector's `matchLabels`.
pub fn labels(labels: Option<&BTreeMap<String, String>>, field: &str) -> Result<(), Rejection> {
    for (key, value) in labels.into_iter().flatten() {
        check(field, key, names::is_qualified_name(key))?;
        check(field, value, names::is_label_value(value))?;
    }
    Ok(())
}

/// Annotation keys are qualified names, compared in lower case, and all of them together hold
/// at most 256 KiB (`ValidateAnnotations`).
pub fn annotations(
    annotations: Option<&BTreeMap<String, String>>,
    field: &str,
) -> Result<(), Rejection> {
    let mut total = 0usize;
    for (key, value) in annotations.into_iter().flatten() {
        let problems = names::is_qualified_name(&key.to_ascii_lowercase());
        if !problems.is_empty() {
            return Err(invalid_str(field, key, &problems.join("; ")));
        }
        total += key.len() + value.len();
    }
    if total > ANNOTATIONS_MAX_BYTES {
        return Err(too_long(field, ANNOTATIONS_MAX_BYTES));
    }
    Ok(())
}

/// The shown form of a label map for a message (`{"app": "web"}`), shortened when long.
pub fn shown_labels(labels: &BTreeMap<String, String>) -> String {
    let text = labels
        .iter()
        .map(|(k, v)| format!("{}: {}", report::shown(k), report::shown(v)))
        .collect::<Vec<_>>()
        .join(", ");
    report::clipped(format!("{{{text}}}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(metadata: Value, rule: NameRule) -> String {
        validate(&metadata, rule, true).unwrap_err().to_string()
    }

    #[test]
    fn names_follow_the_kinds_rule() {
        let sub = NameRule::Dns1123Subdomain;
        validate(&json!({"name": "a.b-c"}), sub, true).unwrap();
        assert!(err(json!({"name": "a_b"}), sub)
            .starts_with("metadata.name: Invalid value: \"a_b\": a lowercase RFC 1123 subdomain"));
        let ns = NameRule::Dns1123Label;
        for bad in ["UPPER", "a_b", "a.b"] {
            assert!(
                err(json!({"name": bad}), ns).contains("RFC 1123 label"),
                "{bad}"
            );
        }
        let svc = NameRule::Dns1035Label;
        for bad in ["a.b", "1abc"] {
            assert!(err(json!({"name": bad}), svc).contains("DNS-1035"), "{bad}");
        }
        assert_eq!(
            err(json!({"generateName": "web-"}), sub),
            "metadata.name: Required value: name is required"
        );
        assert!(err(json!({"name": "a", "generateName": "Web-"}), sub)
            .starts_with("metadata.generateName: Invalid value: \"Web-\""));
        validate(&json!({"name": "a", "generateName": "web-"}), sub, true).unwrap();
    }

    #[test]
    fn a_huge_name_is_not_echoed() {
        let name = "a".repeat(900_000);
        let e = err(json!({ "name": name }), NameRule::Dns1123Subdomain);
        assert!(e.len() < 400, "{e}");
        assert!(
            e.contains("(900000 bytes)") && e.contains("no more than 253"),
            "{e}"
        );
    }

    #[test]
    fn namespaces_are_dns_labels_and_ignored_on_cluster_scoped_kinds() {
        let sub = NameRule::Dns1123Subdomain;
        assert!(err(json!({"name": "a", "namespace": "Shop"}), sub)
            .starts_with("metadata.namespace: Invalid value: \"Shop\""));
        validate(
            &json!({"name": "a", "namespace": "Shop"}),
            NameRule::Dns1123Label,
            false,
        )
        .unwrap();
    }

    #[test]
    fn unknown_metadata_fields_are_refused() {
        assert_eq!(
            err(json!({"name": "a", "bogus": 1}), NameRule::Dns1123Subdomain),
            "metadata.bogus: unknown field"
        );
        // Unknown even when null (strict decoding refuses the name, whatever its value); a
        // known field may be null (unset).
        assert_eq!(
            err(
                json!({"name": "a", "bogus": null}),
                NameRule::Dns1123Subdomain
            ),
            "metadata.bogus: unknown field"
        );
        validate(
            &json!({"name": "a", "labels": null, "finalizers": null}),
            NameRule::Dns1123Subdomain,
            true,
        )
        .unwrap();
        // Fields a server sets are known, and typed.
        validate(
            &json!({"name": "a", "uid": "u", "resourceVersion": "1"}),
            NameRule::Dns1123Subdomain,
            true,
        )
        .unwrap();
        assert!(
            err(json!({"name": "a", "uid": 5}), NameRule::Dns1123Subdomain)
                .starts_with("metadata.uid:")
        );
    }

    #[test]
    fn labels_and_annotations() {
        let sub = NameRule::Dns1123Subdomain;
        assert!(err(json!({"name": "a", "labels": {"a/b/c": "x"}}), sub)
            .starts_with("metadata.labels: Invalid value: \"a/b/c\": a qualified name"));
        assert!(err(json!({"name": "a", "labels": {"app": "-x"}}), sub)
            .starts_with("metadata.labels: Invalid value: \"-x\": a valid label"));
        assert!(
            err(json!({"name": "a", "labels": {"app": "x".repeat(64)}}), sub)
                .contains("must be no more than 63 characters")
        );
        let long_prefix = format!("{}/a", "p".repeat(254));
        assert!(err(json!({"name": "a", "labels": {long_prefix: "x"}}), sub)
            .contains("prefix part must be no more than 253 characters"));
        // Annotation keys are compared in lower case; values are free.
        validate(
            &json!({"name": "a", "annotations": {"Example.COM/Key": "any value: at all"}}),
            sub,
            true,
        )
        .unwrap();
        assert!(err(json!({"name": "a", "annotations": {"a b": ""}}), sub)
            .starts_with("metadata.annotations: Invalid value: \"a b\""));
        let big = "v".repeat(ANNOTATIONS_MAX_BYTES);
        assert_eq!(
            err(json!({"name": "a", "annotations": {"k": big}}), sub),
            "metadata.annotations: Too long: may not be more than 262144 bytes"
        );
    }
}
