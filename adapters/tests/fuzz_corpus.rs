//! CI's short fuzzing run (issue 14), on stable Rust: every fuzz target's body
//! (`adapters::fuzzing`) over every file of its checked-in corpus (`fuzz/corpus/<target>/`),
//! then over a few thousand deterministic, seeded mutations of those files. The long runs are
//! `scripts/fuzz` (cargo-fuzz, nightly).
//!
//! `cargo test -p adapters --test fuzz_corpus -- --ignored write_seeds` adds the seed inputs
//! the corpus was grown from (real inputs of the repository: the recorded log's events and
//! frames, the deploy manifests and the docs' examples, EaseMesh and registry bodies, access-log
//! lines and ALS messages as the tests send them); `cargo fuzz cmin` minimized the result.

// A test may read the clock (to report how long the run took).
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use adapters::concepts::fence::als::client;
use prost::Message;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

type Body = fn(&[u8]);

const TARGETS: &[(&str, Body)] = &[
    ("manifest", adapters::fuzzing::manifest),
    ("easemesh_body", adapters::fuzzing::easemesh_body),
    ("access_log_line", adapters::fuzzing::access_log_line),
    ("access_log_grpc", adapters::fuzzing::access_log_grpc),
    ("frame", adapters::fuzzing::frame),
];

/// Mutations per target (spread over its corpus).
const MUTATIONS: usize = 4000;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = root().join("fuzz/corpus").join(target);
    let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).expect("a corpus file reads");
            (p, bytes)
        })
        .collect();
    files.sort();
    files
}

/// SplitMix64: deterministic, seeded, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Bytes that are interesting to the decoders: JSON/YAML structure, numbers at limits.
const TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b":",
    b",",
    b"\n",
    b"---\n",
    b"null",
    b"-1",
    b"0",
    b"1e999",
    b"65536",
    b"4294967296",
    b"18446744073709551616",
    b".inf",
    b".nan",
    b"\\u0000",
    b"\xff",
    b"&a",
    b"*a",
    b"!!binary",
    b"~",
    b"\"\":",
    b"9223372036854775807",
    b"\x80\x80\x80\x80",
];

/// One mutation of `input`, possibly splicing in part of `other`.
fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(3) {
        let at = rng.below(out.len() + 1);
        match rng.below(8) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] = rng.next() as u8;
            }
            2 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                out.splice(at..at, token.iter().copied());
            }
            3 if !out.is_empty() => {
                let len = rng.below(out.len() - at.min(out.len()) + 1).min(16);
                out.drain(at.min(out.len())..(at + len).min(out.len()));
            }
            4 => out.truncate(at),
            5 if !other.is_empty() => {
                let from = rng.below(other.len());
                let len = rng.below(other.len() - from + 1).min(64);
                out.splice(at..at, other[from..from + len].iter().copied());
            }
            6 if !out.is_empty() => {
                let from = rng.below(out.len());
                let len = rng.below(out.len() - from + 1).min(32);
                let chunk = out[from..from + len].to_vec();
                out.splice(at..at, chunk);
            }
            _ if !out.is_empty() => {
                // A digit changed, to reach numeric edges.
                let i = rng.below(out.len());
                if out[i].is_ascii_digit() {
                    out[i] = b'0' + rng.below(10) as u8;
                } else {
                    out[i] = out[i].wrapping_add(1);
                }
            }
            _ => out.push(rng.next() as u8),
        }
    }
    out
}

fn run_one(target: &str, body: Body, input: &[u8], what: &str) {
    let outcome = std::panic::catch_unwind(|| body(input));
    if let Err(panic) = outcome {
        let reason = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        let dir = std::env::temp_dir()
            .join("meshplane-fuzz-failures")
            .join(target);
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join(hex::encode(&Sha256::digest(input)[..8]));
        let _ = std::fs::write(&path, input);
        panic!(
            "fuzz target `{target}` failed on {what} (input saved to {}; reproduce with \
             `cargo +nightly fuzz run {target} {}` in fuzz/): {reason}",
            path.display(),
            path.display()
        );
    }
}

#[test]
fn every_target_passes_its_corpus_and_seeded_mutations() {
    let started = Instant::now();
    for (index, &(target, body)) in TARGETS.iter().enumerate() {
        let files = corpus(target);
        assert!(!files.is_empty(), "fuzz/corpus/{target} is empty");
        for (path, bytes) in &files {
            run_one(target, body, bytes, &path.display().to_string());
        }
        let mut rng = Rng(0x6d65_7368_706c_616e ^ index as u64);
        for n in 0..MUTATIONS {
            let (_, input) = &files[rng.below(files.len())];
            let (_, other) = &files[rng.below(files.len())];
            let mutated = mutate(&mut rng, input, other);
            run_one(target, body, &mutated, &format!("mutation {n}"));
        }
        eprintln!(
            "{target}: {} corpus files and {MUTATIONS} mutations, {:.1}s so far",
            files.len(),
            started.elapsed().as_secs_f64()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Seeds.

fn write(target: &str, selector: Option<u8>, bytes: &[u8]) {
    let mut input = Vec::with_capacity(bytes.len() + 1);
    input.extend(selector);
    input.extend_from_slice(bytes);
    let dir = root().join("fuzz/corpus").join(target);
    std::fs::create_dir_all(&dir).expect("the seeds directory");
    let name = hex::encode(&Sha256::digest(&input)[..10]);
    std::fs::write(dir.join(name), input).expect("a seed writes");
}

fn recorded() -> Vec<Value> {
    let text = std::fs::read_to_string(root().join("tests/fixtures/recorded/rich-run.jsonl"))
        .expect("the recorded log");
    text.lines()
        .map(|l| serde_json::from_str(l).expect("a recorded line"))
        .collect()
}

/// The manifest a `resource.applied` event's data was applied from.
fn manifest_of(data: &Value) -> Value {
    let key = &data["key"];
    let mut object: serde_json::Map<String, Value> =
        serde_json::from_str(data["body"].as_str().unwrap_or("{}")).unwrap_or_default();
    let mut metadata = json!({"name": key["name"]});
    if key["namespace"].as_str().is_some_and(|n| !n.is_empty()) {
        metadata["namespace"] = key["namespace"].clone();
    }
    for field in ["labels", "annotations"] {
        if data[field].as_object().is_some_and(|m| !m.is_empty()) {
            metadata[field] = data[field].clone();
        }
    }
    object.insert("apiVersion".into(), data["api_version"].clone());
    object.insert("kind".into(), key["kind"].clone());
    object.insert("metadata".into(), metadata);
    Value::Object(object)
}

fn yaml_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match &mut current {
            None if line.trim_start().starts_with("```yaml") => current = Some(String::new()),
            Some(block) if line.trim_start().starts_with("```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None => {}
        }
    }
    blocks
}

#[test]
#[ignore = "writes seeds into fuzz/corpus/; run by hand, then `cargo fuzz cmin`"]
fn write_seeds() {
    let events = recorded();
    // manifest: selector 1 is application/json, 2 application/yaml (see CONTENT_TYPES).
    let mut manifests = Vec::new();
    for e in &events {
        let data = &e["data"];
        match e["event_type"].as_str().unwrap_or("") {
            "resource.applied" => manifests.push(manifest_of(data)),
            kind @ ("service.applied" | "tenant.applied" | "mesh_controller.applied") => {
                let kind = match kind {
                    "service.applied" => "Service",
                    "tenant.applied" => "Tenant",
                    _ => "MeshController",
                };
                let mut spec: Value = data["spec"]
                    .as_str()
                    .and_then(|s| serde_json::from_str(s).ok())
                    .unwrap_or(json!({}));
                if let Some(d) = data.get("description") {
                    spec["description"] = d.clone();
                }
                manifests.push(json!({"apiVersion": data["api_version"], "kind": kind,
                    "metadata": {"name": data["name"], "labels": data["labels"]}, "spec": spec}));
            }
            _ => {}
        }
    }
    manifests.sort_by_key(|m| m.to_string());
    manifests.dedup();
    for m in &manifests {
        write("manifest", Some(1), m.to_string().as_bytes());
        write(
            "manifest",
            Some(2),
            serde_norway::to_string(m).unwrap().as_bytes(),
        );
    }
    write(
        "manifest",
        Some(1),
        Value::Array(manifests[..manifests.len().min(6)].to_vec())
            .to_string()
            .as_bytes(),
    );
    for file in ["deploy/install.yaml", "deploy/crds.yaml"] {
        let text = std::fs::read(root().join(file)).unwrap();
        write("manifest", Some(2), &text);
    }
    for file in ["README.md", "docs/api.md"] {
        let text = std::fs::read_to_string(root().join(file)).unwrap();
        for block in yaml_blocks(&text) {
            write("manifest", Some(2), block.as_bytes());
        }
    }

    // easemesh_body: 0 tenant, 1 service, 2 registration, 3 heartbeats and offline,
    // 4 Prometheus answer, 5.. the parts in ServicePart::ALL order.
    for e in &events {
        let data = &e["data"];
        match e["event_type"].as_str().unwrap_or("") {
            "tenant.applied" => {
                let body = json!({"name": data["name"], "description": data["description"]});
                write("easemesh_body", Some(0), body.to_string().as_bytes());
            }
            "service.applied" => {
                let mut body: Value = serde_json::from_str(data["spec"].as_str().unwrap()).unwrap();
                body["name"] = data["name"].clone();
                write("easemesh_body", Some(1), body.to_string().as_bytes());
                for (i, part) in [
                    "loadBalance",
                    "resilience",
                    "mock",
                    "observability",
                    "observability",
                    "observability",
                ]
                .iter()
                .enumerate()
                {
                    if let Some(p) = body.get(*part) {
                        write("easemesh_body", Some(5 + i as u8), p.to_string().as_bytes());
                    }
                }
            }
            "instance.registered" => {
                let body = json!({"serviceName": data["key"]["service"],
                    "instanceID": data["key"]["instance_id"], "ip": data["ip"], "port": data["port"],
                    "labels": data["labels"], "agentType": data["agent_type"]});
                write("easemesh_body", Some(2), body.to_string().as_bytes());
            }
            _ => {}
        }
    }
    write(
        "easemesh_body",
        Some(3),
        br#"{"heartbeats":[{"serviceName":"order","instanceID":"order-1"},{"serviceName":"order","instanceID":"order-2"}]}"#,
    );
    write("easemesh_body", Some(3), br#"{"reason":"maintenance"}"#);
    for part in [
        json!({"policy": "roundRobin"}),
        json!({"policy": "ipHash", "headerHashKey": "X-User"}),
        json!({"circuitBreaker": {"slidingWindowType": "COUNT_BASED", "failureRateThreshold": 50}}),
        json!({"rules": [{"code": 200, "path": "/mock", "body": "hello"}]}),
        json!({"enabled": true, "sampleByQPS": 10}),
    ] {
        for i in 0..6u8 {
            write("easemesh_body", Some(5 + i), part.to_string().as_bytes());
        }
    }
    for body in [
        json!({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"destination_service": "details.default.svc.cluster.local"}, "value": [1, "3"]},
            {"metric": {"request_host": "ratings:9080"}, "value": [1.5, "0"]},
            {"metric": {}, "value": [1, "1"]}]}}),
        json!({"status": "success", "data": {"resultType": "matrix", "result": []}}),
        json!({"status": "error", "errorType": "timeout", "error": "query timed out"}),
    ] {
        write("easemesh_body", Some(4), body.to_string().as_bytes());
    }

    // access_log_line: the intake's documented lines, and the recorded run's learned calls.
    write(
        "access_log_line",
        None,
        b"{\"downstream_ip\":\"10.0.0.7\",\"authority\":\"details:9080\",\"start_time\":\"2026-01-02T03:04:05.678Z\"}\n\
          {\"source_ip\":\"10.0.0.8\",\"host\":\"reviews\",\"upstream_cluster\":\"inbound|9080||\",\"start_time\":1767323045678}\n\
          {\"authority\":\"ratings.default.svc.cluster.local\",\"source\":\"default/productpage\"}\n",
    );
    write(
        "access_log_line",
        None,
        b"{\"downstream_ip\":\"10.1.0.1\",\"authority\":\"ratings:9080\"}\nnot json\n",
    );
    write(
        "access_log_line",
        None,
        b"{\"source\":\"legacy/old\",\"authority\":\"web.shop.svc.cluster.local:80\"}\r\n",
    );
    let mut lines = String::new();
    for e in &events {
        if e["event_type"] == "fence.dependency_learned" {
            let data = &e["data"];
            let ip = data["source"]
                .as_str()
                .and_then(|s| s.split(' ').next())
                .unwrap_or("");
            let line = json!({"downstream_ip": ip, "upstream_cluster": "inbound|9080||",
                "authority": data["raw"], "start_time": data["seen_at_ms"]});
            lines.push_str(&line.to_string());
            lines.push('\n');
        }
    }
    write("access_log_line", None, lines.as_bytes());
    write(
        "access_log_line",
        None,
        b"{\"downstream_ip\":\"10.1.0.1\",\"upstream_cluster\":\"inbound|80||\",\"authority\":\"[::1]:80\",\"start_time\":\"2024-02-29T23:59:60.123456+05:30\"}\n",
    );

    // access_log_grpc: ALS messages as the tests build them.
    let messages = [
        client::message(&[
            ("10.1.0.1", "inbound|9080||", "details:9080", None),
            (
                "10.1.0.1",
                "inbound|9080||",
                "reviews",
                Some("default/productpage"),
            ),
        ]),
        client::message(&[("10.9.9.9", "outbound|9080||details", "details:9080", None)]),
        client::tcp_message(3),
        client::with_identifier(
            client::message(&[("10.1.0.1", "inbound|9080||", "ratings.default:9080", None)]),
            "sidecar~10.1.0.1~productpage.default~default.svc.cluster.local",
            "productpage",
            "als",
        ),
        client::http_message(vec![
            client::http_entry("10.1.0.1", "inbound|9080||", "details:9080", None),
            client::HttpAccessLogEntry::default(),
        ]),
    ];
    for m in messages {
        write("access_log_grpc", None, &m.encode_to_vec());
    }

    // frame: 0 frames as a log file holds them, 1 record bodies, 2 JSON Lines.
    let text =
        std::fs::read_to_string(root().join("tests/fixtures/recorded/rich-run.jsonl")).unwrap();
    let envelopes = events::jsonl::parse(&mut text.as_bytes()).expect("the recorded log parses");
    let mut seen_types = std::collections::BTreeSet::new();
    let mut run = Vec::new();
    for (i, e) in envelopes.iter().enumerate() {
        let framed = events::frame::encode(e).unwrap();
        if i < 8 {
            run.extend_from_slice(&framed);
        }
        if seen_types.insert(e.event_type.clone()) {
            write("frame", Some(0), &framed);
            write("frame", Some(1), &framed[events::frame::HEADER_LEN..]);
        }
    }
    write("frame", Some(0), &run);
    let head: String = text.lines().take(12).map(|l| format!("{l}\n")).collect();
    write("frame", Some(2), head.as_bytes());
    let one: String = text.lines().take(1).map(|l| format!("{l}\n")).collect();
    write("frame", Some(2), one.as_bytes());
}
