//! Given a manifest, when applied (decoded as the API decodes YAML, then the apply command of
//! the concept that takes it), then it is refused with this field and message: every input
//! issue 14 lists, and the valid manifests beside them still apply.

use crate::decider::Rejection;
use crate::mesh::document_command;
use crate::{Ctx, Mesh};

/// Decode `yaml` (or JSON) strictly and apply it to an empty mesh; the rejection, if any.
fn when_applied(yaml: &str) -> Result<(), Rejection> {
    // JSON as the API decodes an application/json body (YAML caps implicit keys at 1024
    // characters), YAML otherwise.
    let document = if yaml.starts_with('{') {
        crate::decode::json(yaml).map_err(|e| Rejection::invalid("(document)", e.to_string()))?
    } else {
        crate::decode::value(serde_norway::Deserializer::from_str(yaml))
            .map_err(|e| Rejection::invalid("(document)", e.to_string()))?
    };
    document_command(&document)?;
    let mut mesh = Mesh::default();
    mesh.apply_documents(&[document], &mut Ctx::new(0, 1))
        .map(|_| ())
}

fn then_refused(input: &str, field: &str, message: &str) {
    // Inputs may be 900 KB: failures show them shortened.
    let shown = super::report::clipped(input.to_string());
    let Err(rejection) = when_applied(input) else {
        panic!("{shown}: accepted");
    };
    let text = rejection.to_string();
    assert!(
        rejection
            .field
            .as_deref()
            .is_some_and(|f| f.ends_with(field)),
        "{shown}\nfield: want {field}, got {text}"
    );
    assert!(
        text.contains(message),
        "{shown}\nmessage: want {message:?}, got {text}"
    );
    assert!(text.len() < 1_000, "a {} byte error", text.len());
}

fn service(ports: &str) -> String {
    format!("apiVersion: v1\nkind: Service\nmetadata: {{name: web}}\nspec: {{ports: {ports}}}\n")
}

fn deployment(replicas: i64, selector: &str, containers: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n  replicas: {replicas}\n  \
         selector: {{matchLabels: {selector}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    \
         spec: {{containers: {containers}}}\n"
    )
}

fn named(kind: &str, name: &str) -> String {
    let spec = if kind == "Service" {
        "spec: {ports: [{port: 80}]}\n"
    } else {
        ""
    };
    format!("apiVersion: v1\nkind: {kind}\nmetadata: {{name: {name:?}}}\n{spec}")
}

const WEB: &str = "[{name: web, image: nginx}]";

#[test]
fn valid_manifests_apply() {
    for yaml in [
        service("[{port: 1}, {port: 65535, name: b, protocol: UDP}]").replace("{port: 1}", "{port: 1, name: a}"),
        deployment(0, "{app: web}", WEB),
        named("Namespace", "shop"),
        named("Service", "web-1"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a.b}\ndata: {app.properties: x, KEY_1: y}\n".into(),
    ] {
        when_applied(&yaml).unwrap_or_else(|r| panic!("{yaml}: {r}"));
    }
}

#[test]
fn service_ports_kubernetes_refuses() {
    let range = "must be between 1 and 65535, inclusive";
    then_refused(
        &service("[{port: .inf}]"),
        "(document)",
        "a number must be finite",
    );
    then_refused(
        &service("[{port: .nan}]"),
        "(document)",
        "a number must be finite",
    );
    then_refused(
        &service("[{port: null}]"),
        "spec.ports[0].port",
        &format!("Invalid value: 0: {range}"),
    );
    then_refused(
        &service("[{port: -1}]"),
        "spec.ports[0].port",
        &format!("Invalid value: -1: {range}"),
    );
    then_refused(
        &service("[{port: 0}]"),
        "spec.ports[0].port",
        &format!("Invalid value: 0: {range}"),
    );
    then_refused(
        &service("[{port: 65536}]"),
        "spec.ports[0].port",
        &format!("Invalid value: 65536: {range}"),
    );
    then_refused(
        &service("[{name: a, port: 80}, {name: b, port: 80}]"),
        "spec.ports[1]",
        "Duplicate value: {port: 80, protocol: \"TCP\"}",
    );
}

#[test]
fn workloads_kubernetes_refuses() {
    then_refused(
        &deployment(-1, "{app: web}", WEB),
        "spec.replicas",
        "Invalid value: -1: must be greater than or equal to 0",
    );
    then_refused(
        &deployment(1, "{app: api}", WEB),
        "spec.template.metadata.labels",
        "`selector` does not match template `labels`",
    );
    then_refused(
        &deployment(1, "{app: web}", "[]"),
        "spec.template.spec.containers",
        "Required value",
    );
}

#[test]
fn names_kubernetes_refuses() {
    for name in ["UPPER", "a_b", "a.b"] {
        then_refused(
            &named("Namespace", name),
            "metadata.name",
            "a lowercase RFC 1123 label must consist of",
        );
    }
    for name in ["a.b", "1abc"] {
        then_refused(
            &named("Service", name),
            "metadata.name",
            "a DNS-1035 label must consist of",
        );
    }
    let huge = "a".repeat(900_000);
    then_refused(
        &format!("{{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {{\"name\": \"{huge}\"}}}}"),
        "metadata.name",
        "\"… (900000 bytes): must be no more than 253 characters",
    );
}

#[test]
fn config_map_keys_kubernetes_refuses() {
    then_refused(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a/b: x}\n",
        "data[a/b]",
        "Invalid value: \"a/b\": a valid config key must consist of alphanumeric characters",
    );
    // As JSON: YAML caps implicit keys at 1024 characters.
    let key = "k".repeat(900_000);
    then_refused(
        &format!("{{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {{\"name\": \"c\"}}, \"data\": {{\"{key}\": \"x\"}}}}"),
        "… (900000 bytes)]",
        "must be no more than 253 characters",
    );
}

#[test]
fn duplicate_keys_and_unknown_metadata_kubernetes_refuses() {
    then_refused(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {k: '1', k: '2'}\n",
        "(document)",
        "duplicate key \"k\" at data.k",
    );
    then_refused(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, bogus: x}\n",
        "metadata.bogus",
        "unknown field",
    );
}
