//! Inputs the Kubernetes API server refuses are refused by the running daemon too (issue 14,
//! item 7): each one gets a 4xx naming the field and the problem, never echoes a huge value,
//! and appends nothing (the next accepted change lands right after the last one).
//!
//! The rules themselves are unit-tested next to them (`actors/src/kinds/validate/`) and
//! checked against `kubernetes-validate` in `tests/validation_differential.rs`; this test is
//! about the path from the HTTP body to the log.

mod support;

use serde_json::Value;
use support::{raw_request, Daemon, Sandbox};

fn service(ports: &str) -> String {
    format!("apiVersion: v1\nkind: Service\nmetadata: {{name: web}}\nspec:\n  ports: {ports}\n")
}

fn deployment(replicas: &str, selector: &str, containers: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n  replicas: {replicas}\n  \
         selector: {{matchLabels: {selector}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    \
         spec: {{containers: {containers}}}\n"
    )
}

fn named(kind: &str, name: &str) -> String {
    format!("apiVersion: v1\nkind: {kind}\nmetadata: {{name: {name:?}}}\nspec: {{ports: [{{port: 80}}]}}\n")
}

/// As JSON: YAML caps implicit keys at 1024 characters, and a key may be longer here.
fn config_map_key(key: &str) -> String {
    serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
        "data": {key: "v"}})
    .to_string()
}

/// (what, YAML or JSON body, the field the error must name, a part of the message).
fn refused() -> Vec<(&'static str, String, &'static str, &'static str)> {
    let web = "[{name: web, image: nginx}]";
    let huge = "a".repeat(900_000);
    vec![
        (
            "port .inf",
            service("[{port: .inf}]"),
            "documents[0]",
            "a number must be finite",
        ),
        (
            "port .nan",
            service("[{port: .nan}]"),
            "documents[0]",
            "a number must be finite",
        ),
        (
            "port null",
            service("[{port: null}]"),
            "spec.ports[0].port",
            "Invalid value: 0: must be between 1 and 65535, inclusive",
        ),
        (
            "port -1",
            service("[{port: -1}]"),
            "spec.ports[0].port",
            "Invalid value: -1: must be between 1 and 65535, inclusive",
        ),
        (
            "port 0",
            service("[{port: 0}]"),
            "spec.ports[0].port",
            "must be between 1 and 65535",
        ),
        (
            "port 65536",
            service("[{port: 65536}]"),
            "spec.ports[0].port",
            "Invalid value: 65536: must be between 1 and 65535, inclusive",
        ),
        (
            "duplicate ports",
            service("[{name: a, port: 80}, {name: b, port: 80}]"),
            "spec.ports[1]",
            "Duplicate value",
        ),
        (
            "replicas -1",
            deployment("-1", "{app: web}", web),
            "spec.replicas",
            "must be greater than or equal to 0",
        ),
        (
            "selector not matching",
            deployment("1", "{app: api}", web),
            "spec.template.metadata.labels",
            "`selector` does not match template `labels`",
        ),
        (
            "no containers",
            deployment("1", "{app: web}", "[]"),
            "spec.template.spec.containers",
            "Required value",
        ),
        (
            "namespace UPPER",
            named("Namespace", "UPPER").replace("spec: {ports: [{port: 80}]}\n", ""),
            "metadata.name",
            "RFC 1123 label",
        ),
        (
            "namespace a_b",
            named("Namespace", "a_b").replace("spec: {ports: [{port: 80}]}\n", ""),
            "metadata.name",
            "RFC 1123 label",
        ),
        (
            "namespace a.b",
            named("Namespace", "a.b").replace("spec: {ports: [{port: 80}]}\n", ""),
            "metadata.name",
            "RFC 1123 label",
        ),
        (
            "service a.b",
            named("Service", "a.b"),
            "metadata.name",
            "DNS-1035 label",
        ),
        (
            "service 1abc",
            named("Service", "1abc"),
            "metadata.name",
            "DNS-1035 label",
        ),
        (
            "config key a/b",
            config_map_key("a/b"),
            "data[a/b]",
            "a valid config key",
        ),
        (
            "config key 900 KB",
            config_map_key(&huge),
            "data[aaaa",
            "must be no more than 253 characters",
        ),
        (
            "name 900 KB",
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {huge}}}\n"),
            "metadata.name",
            "must be no more than 253 characters",
        ),
        (
            "duplicate YAML key",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: '1', k: '2'}\n"
                .to_string(),
            "documents[0]",
            "duplicate key \"k\" at data.k",
        ),
        (
            "metadata.bogus",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, bogus: x}\n".to_string(),
            "metadata.bogus",
            "unknown field",
        ),
    ]
}

fn post(port: u16, content_type: &str, body: &str) -> (u16, String) {
    raw_request(
        port,
        "POST",
        "/api/v1/apply",
        &[("Content-Type", content_type)],
        body.as_bytes().to_vec(),
    )
}

fn position_of_apply(port: u16, name: &str) -> u64 {
    let body =
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata: {{k: v}}\n");
    let (status, answer) = post(port, "application/yaml", &body);
    assert_eq!(status, 200, "{answer}");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    answer["results"][0]["position"].as_u64().unwrap()
}

#[test]
fn inputs_kubernetes_refuses_get_a_4xx_and_append_nothing() {
    let sandbox = Sandbox::new();
    let data = sandbox.path("data");
    let manifests = sandbox.path("manifests");
    let daemon = Daemon::start(&sandbox, &data, &manifests);
    let before = position_of_apply(daemon.port, "before");

    for (what, body, field, message) in refused() {
        let content_type = if body.starts_with('{') {
            "application/json"
        } else {
            "application/yaml"
        };
        let (status, answer) = post(daemon.port, content_type, &body);
        assert!((400..500).contains(&status), "{what}: {status} {answer}");
        assert!(
            answer.len() < 2_000,
            "{what}: a {} byte answer",
            answer.len()
        );
        let answer: Value = serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{what}: {e}"));
        let text = answer["message"].as_str().unwrap_or_default();
        assert!(
            text.contains(field),
            "{what}: the answer names {field}: {answer}"
        );
        assert!(
            text.contains(message),
            "{what}: the answer says {message:?}: {answer}"
        );
    }

    // Duplicate keys in a JSON body too.
    let (status, answer) = post(
        daemon.port,
        "application/json",
        r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "name": "b"}}"#,
    );
    assert_eq!(status, 400, "{answer}");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert!(
        answer["message"]
            .as_str()
            .is_some_and(|m| m.contains("duplicate key \"name\" at metadata.name")),
        "{answer}"
    );

    assert_eq!(
        position_of_apply(daemon.port, "after"),
        before + 1,
        "a refused request appends nothing"
    );
}
