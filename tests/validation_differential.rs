//! meshplane validates applied objects as the Kubernetes API server does: a differential test
//! against `kubernetes-validate --strict` (the Kubernetes 1.37 OpenAPI schemas).
//!
//! Valid manifests of every built-in kind `apply` accepts are generated, then mutated (wrong
//! types, nulls, removed and unknown fields, non-finite numbers, out-of-range ports, bad names,
//! label keys and values, annotations, ConfigMap keys, empty lists, duplicated entries and keys,
//! huge strings, negative counts, mismatched selectors, unsupported enumerations),
//! deterministically from a seed. Each manifest is written as a file (JSON in YAML's flow
//! style, so YAML-only spellings such as `.inf` and duplicate keys can be written too), checked
//! by the tool in batches (it is slow: a Python process per batch), and decoded and validated
//! in process exactly as the apply API does it (`actors::decode`, then
//! `actors::mesh::document_command`). Then:
//!
//! - whatever the tool rejects, meshplane rejects;
//! - whatever meshplane rejects and the tool accepts is one of the API server's rules that the
//!   OpenAPI schema cannot express, named in [`SERVER_RULES`] (matched on the rejection); any
//!   other disagreement fails the test;
//! - every unmutated manifest is accepted by both.
//!
//! `MESHPLANE_DIFF_CASES` (default 300) and `MESHPLANE_DIFF_SEED` change the sweep
//! (`MESHPLANE_DIFF_CASES=20000` for a long one); `MESHPLANE_KUBERNETES_VALIDATE` names another
//! tool than the one `scripts/setup --tests` installs in `.tools/venv`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use actors::Rejection;
use serde_json::{json, Map, Value};

const DEFAULT_CASES: usize = 300;
const DEFAULT_SEED: u64 = 0x6d65_7368_706c_616e;
/// Files per invocation of the tool, and invocations at once.
const BATCH: usize = 125;
const PARALLEL: usize = 2;

// ---------------------------------------------------------------------------------------------
// A small deterministic generator (SplitMix64): the same seed gives the same cases everywhere.

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        assert!(!items.is_empty(), "nothing to pick from");
        &items[self.below(items.len())]
    }

    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }
}

// ---------------------------------------------------------------------------------------------
// Valid manifests.

const SYLLABLES: &[&str] = &[
    "web", "api", "db", "cart", "shop", "auth", "pay", "edge", "log",
];

/// A name valid under every kind's rule (a DNS-1035 label).
fn name(rng: &mut Rng) -> String {
    let mut n = rng.pick(SYLLABLES).to_string();
    if rng.chance(50) {
        n.push('-');
        let more: &&str = rng.pick(SYLLABLES);
        n.push_str(more);
    }
    if rng.chance(40) {
        n.push_str(&rng.range(0, 99).to_string());
    }
    n
}

fn label_value(rng: &mut Rng) -> String {
    rng.pick(&["v1", "Prod", "blue_green", "1.2.3", "a-b.c_D", "", "x"])
        .to_string()
}

fn labels(rng: &mut Rng, at_least: usize) -> Map<String, Value> {
    let keys = [
        "app",
        "tier",
        "version",
        "app.kubernetes.io/name",
        "example.com/Team",
        "k8s.io_x",
    ];
    let mut out = Map::new();
    while out.len() < at_least || (out.len() < 4 && rng.chance(40)) {
        out.insert(rng.pick(&keys).to_string(), json!(label_value(rng)));
    }
    out
}

fn metadata(rng: &mut Rng, namespaced: bool) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(name(rng)));
    if namespaced && rng.chance(60) {
        m.insert("namespace".into(), json!(name(rng)));
    }
    if rng.chance(60) {
        m.insert("labels".into(), Value::Object(labels(rng, 1)));
    }
    if rng.chance(30) {
        m.insert(
            "annotations".into(),
            json!({"example.com/Note": "free text: anything at all", "owner": name(rng)}),
        );
    }
    Value::Object(m)
}

fn ports_for_service(rng: &mut Rng) -> Vec<Value> {
    let count = rng.range(1, 3) as usize;
    let first = rng.range(1, 60000);
    (0..count)
        .map(|i| {
            let mut p = Map::new();
            p.insert("port".into(), json!(first + i as i64));
            if count > 1 || rng.chance(50) {
                p.insert(
                    "name".into(),
                    json!(format!("p{i}-{}", rng.pick(SYLLABLES))),
                );
            }
            if rng.chance(40) {
                p.insert("protocol".into(), json!(rng.pick(&["TCP", "UDP", "SCTP"])));
            }
            if rng.chance(60) {
                let target = if rng.chance(50) {
                    json!(rng.range(1, 65535))
                } else {
                    json!(rng.pick(&["http", "grpc", "metrics"]))
                };
                p.insert("targetPort".into(), target);
            }
            Value::Object(p)
        })
        .collect()
}

fn container(rng: &mut Rng, name: &str) -> Value {
    let mut c = json!({"name": name, "image": format!("example/{}:1.{}", rng.pick(SYLLABLES), rng.range(0, 9))});
    if rng.chance(70) {
        let count = rng.range(1, 2);
        let first = rng.range(1, 60000);
        c["ports"] = (0..count)
            .map(|i| {
                let mut p = json!({"containerPort": first + i});
                if rng.chance(50) {
                    p["name"] = json!(format!("c{i}{}", rng.pick(SYLLABLES)));
                }
                if rng.chance(20) {
                    p["protocol"] = json!(rng.pick(&["TCP", "UDP"]));
                }
                p
            })
            .collect();
    }
    if rng.chance(20) {
        c["imagePullPolicy"] = json!(rng.pick(&["Always", "IfNotPresent", "Never"]));
    }
    c
}

fn workload(rng: &mut Rng, kind: &str) -> Value {
    let template_labels = labels(rng, 1);
    // The selector is a part of the template's labels.
    let mut selector = Map::new();
    for (k, v) in &template_labels {
        if selector.is_empty() || rng.chance(50) {
            selector.insert(k.clone(), v.clone());
        }
    }
    let count = rng.range(1, 3);
    let containers: Vec<Value> = (0..count)
        .map(|i| {
            let name = format!("{}-{i}", rng.pick(SYLLABLES));
            container(rng, &name)
        })
        .collect();
    let mut spec = json!({
        "selector": {"matchLabels": selector},
        "template": {"metadata": {"labels": template_labels}, "spec": {"containers": containers}},
    });
    if rng.chance(80) {
        spec["replicas"] = json!(rng.range(0, 5));
    }
    if kind == "StatefulSet" && rng.chance(70) {
        spec["serviceName"] = json!(name(rng));
    }
    json!({"apiVersion": "apps/v1", "kind": kind, "metadata": metadata(rng, true), "spec": spec})
}

/// A valid manifest of `kind`, varied by `rng`.
fn valid(rng: &mut Rng, kind: &str) -> Value {
    match kind {
        "Namespace" => {
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": metadata(rng, false)})
        }
        "ConfigMap" => {
            let mut cm =
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata(rng, true)});
            let keys = ["app.properties", "KEY_1", "log-level", ".hidden", "a.b.c"];
            let mut data = Map::new();
            for _ in 0..rng.range(0, 4) {
                data.insert(
                    rng.pick(&keys).to_string(),
                    json!(format!("value {}", rng.next() % 1000)),
                );
            }
            cm["data"] = Value::Object(data);
            if rng.chance(30) {
                cm["binaryData"] = json!({"blob.bin": "AAEC"});
            }
            cm
        }
        "Service" => {
            let mut spec = json!({"selector": labels(rng, 1)});
            match rng.below(5) {
                0 => spec["clusterIP"] = json!("None"),
                1 => {
                    spec["type"] = json!("NodePort");
                    let mut ports = ports_for_service(rng);
                    let base = rng.range(30000, 32000);
                    for (i, p) in ports.iter_mut().enumerate() {
                        p["nodePort"] = json!(base + i as i64);
                    }
                    spec["ports"] = json!(ports);
                }
                _ => {
                    if rng.chance(30) {
                        spec["type"] = json!(rng.pick(&["ClusterIP", "LoadBalancer"]));
                    }
                    spec["ports"] = json!(ports_for_service(rng));
                }
            }
            json!({"apiVersion": "v1", "kind": "Service", "metadata": metadata(rng, true), "spec": spec})
        }
        "Deployment" | "StatefulSet" => workload(rng, kind),
        "Endpoints" => {
            let subsets: Vec<Value> = (0..rng.range(1, 2))
                .map(|_| {
                    let addresses: Vec<Value> = (0..rng.range(1, 3))
                        .map(|_| json!({"ip": format!("10.{}.{}.{}", rng.range(0, 255), rng.range(0, 255), rng.range(1, 254))}))
                        .collect();
                    let count = rng.range(1, 2);
                    let ports: Vec<Value> = (0..count)
                        .map(|i| {
                            let mut p = json!({"port": rng.range(1, 65535)});
                            if count > 1 || rng.chance(50) {
                                p["name"] = json!(format!("e{i}"));
                            }
                            p
                        })
                        .collect();
                    json!({"addresses": addresses, "ports": ports})
                })
                .collect();
            json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": metadata(rng, true), "subsets": subsets})
        }
        other => panic!("no generator for {other}: add one"),
    }
}

// ---------------------------------------------------------------------------------------------
// Mutations.

/// One step of a path into a document.
#[derive(Clone, Debug)]
enum Seg {
    Key(String),
    Index(usize),
}

/// Every path in `v` below the root (objects, lists and leaves), but never `apiVersion` or
/// `kind` (another kind is another test) nor into `status`.
fn paths(v: &Value, at: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                if at.is_empty() && matches!(k.as_str(), "apiVersion" | "kind" | "status") {
                    continue;
                }
                at.push(Seg::Key(k.clone()));
                out.push(at.clone());
                paths(child, at, out);
                at.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                at.push(Seg::Index(i));
                out.push(at.clone());
                paths(child, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

fn all_paths(v: &Value) -> Vec<Vec<Seg>> {
    let mut out = Vec::new();
    paths(v, &mut Vec::new(), &mut out);
    out
}

fn at<'a>(v: &'a Value, path: &[Seg]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, seg| match seg {
        Seg::Key(k) => v.get(k.as_str()),
        Seg::Index(i) => v.get(*i),
    })
}

fn at_mut<'a>(v: &'a mut Value, path: &[Seg]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |v, seg| match seg {
        Seg::Key(k) => v.get_mut(k.as_str()),
        Seg::Index(i) => v.get_mut(*i),
    })
}

/// Paths whose last key is one of `keys`.
fn paths_named(v: &Value, keys: &[&str]) -> Vec<Vec<Seg>> {
    all_paths(v)
        .into_iter()
        .filter(|p| matches!(p.last(), Some(Seg::Key(k)) if keys.contains(&k.as_str())))
        .collect()
}

/// Set a random one of `paths` to `value`; whether there was one.
fn set_one(doc: &mut Value, rng: &mut Rng, paths: Vec<Vec<Seg>>, value: Value) -> bool {
    if paths.is_empty() {
        return false;
    }
    let path = rng.pick(&paths).clone();
    *at_mut(doc, &path).expect("a path of the document") = value;
    true
}

/// Markers replaced in the rendered text by what JSON cannot say.
const INF: &str = "__meshplane_inf__";
const NEG_INF: &str = "__meshplane_neg_inf__";
const NAN: &str = "__meshplane_nan__";
const DUP: &str = "__meshplane_dup__";

const PORT_FIELDS: &[&str] = &[
    "port",
    "targetPort",
    "containerPort",
    "nodePort",
    "hostPort",
];

const MUTATIONS: &[&str] = &[
    "wrong-type",
    "null",
    "remove-field",
    "unknown-field",
    "non-finite",
    "port-out-of-range",
    "integer-spelt-as-float",
    "bad-name",
    "bad-namespace",
    "bad-label-key",
    "bad-label-value",
    "bad-annotation",
    "empty-list",
    "duplicate-entry",
    "duplicate-key",
    "huge-string",
    "negative-count",
    "selector-mismatch",
    "bad-config-key",
    "bad-enum",
    "bad-port-name",
];

/// Apply the mutation `which` to `doc`; false when it has nothing to act on in this document.
fn mutate(doc: &mut Value, rng: &mut Rng, which: &str) -> bool {
    match which {
        "wrong-type" => {
            let paths = all_paths(doc);
            if paths.is_empty() {
                return false;
            }
            let path = rng.pick(&paths).clone();
            let target = at_mut(doc, &path).unwrap();
            *target = match target {
                Value::String(_) => {
                    json!(rng.pick(&[json!(7), json!(true), json!(["x"]), json!({"a": "b"})]))
                }
                Value::Number(_) => {
                    json!(rng.pick(&[json!("80"), json!(true), json!([1]), json!(1.5)]))
                }
                Value::Bool(_) => json!("true"),
                Value::Array(_) => json!({"a": 1}),
                Value::Object(_) => json!(["a"]),
                Value::Null => json!(1),
            };
            true
        }
        "null" => {
            let paths = all_paths(doc);
            set_one(doc, rng, paths, Value::Null)
        }
        "remove-field" => {
            let paths: Vec<_> = all_paths(doc)
                .into_iter()
                .filter(|p| matches!(p.last(), Some(Seg::Key(_))))
                .collect();
            if paths.is_empty() {
                return false;
            }
            let path = rng.pick(&paths).clone();
            let (parent, Some(Seg::Key(k))) = (&path[..path.len() - 1], path.last()) else {
                unreachable!()
            };
            at_mut(doc, parent)
                .and_then(Value::as_object_mut)
                .map(|m| m.remove(k.as_str()))
                .is_some()
        }
        "unknown-field" => {
            let mut objects: Vec<_> = all_paths(doc)
                .into_iter()
                .filter(|p| at(doc, p).is_some_and(|v| v.is_object()))
                .collect();
            objects.push(Vec::new());
            let path = rng.pick(&objects).clone();
            let field = *rng.pick(&["bogus", "imagee", "replica", "Name", "labels_"]);
            match at_mut(doc, &path).and_then(Value::as_object_mut) {
                Some(m) if !m.contains_key(field) => {
                    m.insert(field.into(), json!("x"));
                    true
                }
                _ => false,
            }
        }
        "non-finite" => {
            let numbers: Vec<_> = all_paths(doc)
                .into_iter()
                .filter(|p| at(doc, p).is_some_and(|v| v.is_number() || v.is_string()))
                .collect();
            let marker = *rng.pick(&[INF, NEG_INF, NAN]);
            set_one(doc, rng, numbers, json!(marker))
        }
        "port-out-of-range" => {
            let value = *rng.pick(&[0i64, -1, 65536, 70000, 2_147_483_648, -2_147_483_649]);
            set_one(doc, rng, paths_named(doc, PORT_FIELDS), json!(value))
        }
        "integer-spelt-as-float" => {
            let numbers: Vec<_> = all_paths(doc)
                .into_iter()
                .filter(|p| at(doc, p).is_some_and(Value::is_i64))
                .collect();
            if numbers.is_empty() {
                return false;
            }
            let path = rng.pick(&numbers).clone();
            let target = at_mut(doc, &path).unwrap();
            *target = json!(target.as_i64().unwrap() as f64);
            true
        }
        "bad-name" => {
            let bad = bad_name(rng);
            let Some(metadata) = doc.get_mut("metadata").and_then(Value::as_object_mut) else {
                return false;
            };
            metadata.insert("name".into(), json!(bad));
            true
        }
        "bad-namespace" => {
            let bad = bad_name(rng);
            let Some(metadata) = doc.get_mut("metadata").and_then(Value::as_object_mut) else {
                return false;
            };
            metadata.insert("namespace".into(), json!(bad));
            true
        }
        "bad-label-key" | "bad-label-value" => {
            let maps = paths_named(doc, &["labels", "matchLabels", "selector"])
                .into_iter()
                .filter(|p| {
                    at(doc, p).is_some_and(|v| {
                        v.as_object()
                            .is_some_and(|m| m.values().all(Value::is_string))
                    })
                })
                .collect::<Vec<_>>();
            if maps.is_empty() {
                let Some(metadata) = doc.get_mut("metadata").and_then(Value::as_object_mut) else {
                    return false;
                };
                metadata.insert("labels".into(), json!({}));
                return mutate(doc, rng, which);
            }
            let path = rng.pick(&maps).clone();
            let map = at_mut(doc, &path).unwrap().as_object_mut().unwrap();
            if which == "bad-label-key" {
                let key = rng
                    .pick(&[
                        "a/b/c".to_string(),
                        "-app".to_string(),
                        "Example.COM/x".to_string(),
                        "/x".to_string(),
                        "x/".to_string(),
                        "a b".to_string(),
                        "k".repeat(64),
                        format!("{}/k", "p".repeat(254)),
                    ])
                    .clone();
                map.insert(key, json!("v"));
            } else {
                let value = rng
                    .pick(&[
                        "-v".to_string(),
                        "v_".to_string(),
                        "a b".to_string(),
                        "v".repeat(64),
                        "ü".to_string(),
                    ])
                    .clone();
                let key = map.keys().next().cloned().unwrap_or_else(|| "app".into());
                map.insert(key, json!(value));
            }
            true
        }
        "bad-annotation" => {
            let (key, value) = rng
                .pick(&[
                    ("a b".to_string(), "x".to_string()),
                    ("a/b/c".to_string(), "x".to_string()),
                    ("big".to_string(), "v".repeat(262_145)),
                ])
                .clone();
            let Some(metadata) = doc.get_mut("metadata").and_then(Value::as_object_mut) else {
                return false;
            };
            metadata.insert("annotations".into(), json!({ key: value }));
            true
        }
        "empty-list" => {
            let lists: Vec<_> = all_paths(doc)
                .into_iter()
                .filter(|p| at(doc, p).is_some_and(Value::is_array))
                .collect();
            set_one(doc, rng, lists, json!([]))
        }
        "duplicate-entry" => {
            let lists: Vec<_> = all_paths(doc)
                .into_iter()
                .filter(|p| at(doc, p).is_some_and(|v| v.as_array().is_some_and(|a| !a.is_empty())))
                .collect();
            if lists.is_empty() {
                return false;
            }
            let path = rng.pick(&lists).clone();
            let list = at_mut(doc, &path).unwrap().as_array_mut().unwrap();
            let item = rng.pick(list).clone();
            list.push(item);
            true
        }
        "duplicate-key" => {
            let mut objects: Vec<_> = all_paths(doc)
                .into_iter()
                .filter(|p| {
                    at(doc, p).is_some_and(|v| v.as_object().is_some_and(|m| !m.is_empty()))
                })
                .collect();
            objects.push(Vec::new());
            let path = rng.pick(&objects).clone();
            let map = at_mut(doc, &path).unwrap().as_object_mut().unwrap();
            let keys: Vec<String> = map.keys().cloned().collect();
            let key = rng.pick(&keys).clone();
            // Sometimes the same value twice (still refused, as kubectl's strict decoding does).
            let value = if rng.chance(50) {
                map[&key].clone()
            } else {
                json!("other")
            };
            map.insert(format!("{DUP}{key}"), value);
            true
        }
        "huge-string" => {
            let strings: Vec<_> = all_paths(doc)
                .into_iter()
                .filter(|p| at(doc, p).is_some_and(Value::is_string))
                .collect();
            let size = *rng.pick(&[300usize, 5_000, 70_000]);
            set_one(doc, rng, strings, json!("x".repeat(size)))
        }
        "negative-count" => set_one(
            doc,
            rng,
            paths_named(
                doc,
                &["replicas", "minReadySeconds", "revisionHistoryLimit"],
            ),
            json!(-1),
        ),
        "selector-mismatch" => {
            let Some(selector) = doc
                .pointer_mut("/spec/selector/matchLabels")
                .and_then(Value::as_object_mut)
            else {
                return false;
            };
            let key = selector
                .keys()
                .next()
                .cloned()
                .unwrap_or_else(|| "app".into());
            selector.insert(key, json!("elsewhere"));
            true
        }
        "bad-config-key" => {
            if doc["kind"] != "ConfigMap" {
                return false;
            }
            let key = rng
                .pick(&[
                    "a/b".to_string(),
                    ".".to_string(),
                    "..".to_string(),
                    "..a".to_string(),
                    "a b".to_string(),
                    "k".repeat(254),
                    String::new(),
                ])
                .clone();
            let bag = if rng.chance(70) { "data" } else { "binaryData" };
            let value = if bag == "data" {
                json!("v")
            } else {
                json!("AAEC")
            };
            match doc.get_mut(bag).and_then(Value::as_object_mut) {
                Some(m) => {
                    m.insert(key, value);
                }
                None => doc[bag] = json!({ key: value }),
            }
            true
        }
        "bad-enum" => {
            let fields = paths_named(
                doc,
                &[
                    "protocol",
                    "type",
                    "imagePullPolicy",
                    "restartPolicy",
                    "sessionAffinity",
                ],
            );
            let value = *rng.pick(&["tcp", "Foo", "ALWAYS", ""]);
            set_one(doc, rng, fields, json!(value))
        }
        "bad-port-name" => {
            let names: Vec<_> = paths_named(doc, &["name", "targetPort"])
                .into_iter()
                .filter(|p| p.iter().any(|s| matches!(s, Seg::Key(k) if k == "ports")))
                .collect();
            let value = *rng.pick(&[
                "HTTP",
                "a--b",
                "123",
                "averyveryverylongportname",
                "-a",
                "a_b",
            ]);
            set_one(doc, rng, names, json!(value))
        }
        other => panic!("unknown mutation {other}"),
    }
}

fn bad_name(rng: &mut Rng) -> String {
    rng.pick(&[
        "UPPER".to_string(),
        "a_b".to_string(),
        "a.b".to_string(),
        "1abc".to_string(),
        "-a".to_string(),
        "a-".to_string(),
        "a..b".to_string(),
        "é".to_string(),
        "a".repeat(64),
        "a".repeat(254),
        "b".repeat(70_000),
        String::new(),
    ])
    .clone()
}

/// The document as text: JSON in YAML's flow style, with the markers turned into what JSON
/// cannot say (`.inf`, `.nan`, a duplicate key).
fn render(doc: &Value) -> String {
    serde_json::to_string(doc)
        .unwrap()
        .replace(&format!("\"{INF}\""), ".inf")
        .replace(&format!("\"{NEG_INF}\""), "-.inf")
        .replace(&format!("\"{NAN}\""), ".nan")
        .replace(&format!("\"{DUP}"), "\"")
}

// ---------------------------------------------------------------------------------------------
// The API server's rules the OpenAPI schema cannot express: every rejection by meshplane alone
// must be one of them.

type Rule = (&'static str, fn(&str, &str) -> bool);

fn field_ends(field: &str, suffixes: &[&str]) -> bool {
    suffixes.iter().any(|s| field.ends_with(s))
}

const SERVER_RULES: &[Rule] = &[
    (
        "binaryData values are base64 (Go's []byte decoding)",
        |f, _| f.starts_with("binaryData."),
    ),
    (
        "a null list item is a zero-valued entry, which the API server's required fields refuse",
        |f, m| {
            f.ends_with(']')
                && m.starts_with("invalid type: null, expected")
                && !m.contains("expected a string")
        },
    ),
    ("strict decoding: a duplicate key", |_, m| {
        m.contains("duplicate key")
    }),
    ("JSON cannot carry a non-finite number", |_, m| {
        m.contains("a number must be finite")
    }),
    (
        "Go's JSON decoder: an integer field takes no decimal point and fits its type",
        |_, m| {
            m.contains("expected i32")
                || m.contains("expected i64")
                || m.contains("expected a 32-bit integer")
                || m.contains("floating point")
        },
    ),
    (
        "object names: DNS-1123 subdomain, DNS-1123 label (Namespace), DNS-1035 label (Service)",
        |f, m| {
            matches!(f, "metadata.name" | "metadata.generateName")
                && (m.contains("RFC 1123") || m.contains("DNS-1035") || m.contains("no more than"))
        },
    ),
    ("metadata.namespace: a DNS-1123 label", |f, _| {
        f == "metadata.namespace"
    }),
    ("metadata.name is required", |f, m| {
        f == "metadata.name" && m.starts_with("Required value")
    }),
    (
        "label keys are qualified names and values label values (ValidateLabels)",
        |f, m| {
            field_ends(f, &["labels", "selector", "matchLabels"]) && m.starts_with("Invalid value")
        },
    ),
    (
        "annotation keys are qualified names, 256 KiB in all (ValidateAnnotations)",
        |f, _| f.ends_with("annotations"),
    ),
    ("port numbers are 1-65535 (IsValidPortNum)", |_, m| {
        m.contains("must be between 1 and 65535, inclusive")
    }),
    (
        "port names are IANA service names (IsValidPortName)",
        |f, m| {
            (f.contains("ports[") || f.ends_with("targetPort"))
                && (m.contains("alpha-numeric")
                    || m.contains("at least one letter")
                    || m.contains("hyphen")
                    || m.contains("no more than 15"))
        },
    ),
    (
        "names of ports and containers are DNS-1123 labels",
        |f, m| {
            f.ends_with(".name") && (m.contains("RFC 1123 label") || m.contains("no more than 63"))
        },
    ),
    (
        "zero values the schema allows but the API server requires (Required value)",
        |_, m| m.starts_with("Required value"),
    ),
    (
        "unique ports, port names, container names, host ports (Duplicate value)",
        |_, m| m.starts_with("Duplicate value"),
    ),
    (
        "enumerations the schema does not list (Unsupported value)",
        |_, m| m.starts_with("Unsupported value"),
    ),
    ("replicas and counts are not negative", |_, m| {
        m.contains("must be greater than or equal to 0")
    }),
    (
        "a workload's selector is non-empty and matches its template's labels",
        |_, m| {
            m.contains("empty selector is invalid")
                || m.contains("does not match template `labels`")
        },
    ),
    (
        "ConfigMap keys are file names, 1 MiB in all (ValidateConfigMap)",
        |f, m| f.starts_with("data[") || f.starts_with("binaryData[") || m.starts_with("Too long"),
    ),
    ("Endpoints addresses are routable IP addresses", |f, _| {
        f.ends_with(".ip")
    }),
    (
        "nodePort only for NodePort and LoadBalancer Services (Forbidden)",
        |f, m| f.ends_with("nodePort") && m.starts_with("Forbidden"),
    ),
    (
        "selector operators and their values (ValidateLabelSelector)",
        |f, _| f.contains("matchExpressions"),
    ),
    ("container images have no surrounding whitespace", |_, m| {
        m.contains("leading or trailing whitespace")
    }),
];

/// Where meshplane knowingly refuses what the API server accepts. Go decodes a JSON null into a
/// string as "" (a label `app: null` is the label `app: ""`); meshplane's typed decoding
/// (k8s-openapi) refuses a null string inside a map or a list. Named here so that the test
/// keeps counting it, and fails on any other disagreement.
const KNOWN_DIVERGENCES: &[Rule] = &[(
    "DIVERGENCE: a null string in a map or list (Go reads \"\", meshplane refuses it)",
    |_, m| m.starts_with("invalid type: null, expected a string"),
)];

/// Where the tool rejects what the API server accepts, so meshplane rightly accepts it.
type Artifact = (&'static str, fn(&str) -> bool);

const TOOL_ARTIFACTS: &[Artifact] = &[(
    "TOOL: an int-or-string field set to null fails the schema's oneOf (null is both); the API \
     server reads it as unset",
    |says| says.contains("is valid under each of"),
)];

fn explain(rejection: &Rejection) -> Option<&'static str> {
    let field = rejection.field.as_deref().unwrap_or_default();
    let field = strip_document_prefix(field);
    SERVER_RULES
        .iter()
        .chain(KNOWN_DIVERGENCES)
        .find(|(_, applies)| applies(field, &rejection.message))
        .map(|(name, _)| *name)
}

fn strip_document_prefix(field: &str) -> &str {
    field
        .strip_prefix("documents[0].")
        .or_else(|| field.strip_prefix("documents[0]"))
        .unwrap_or(field)
}

// ---------------------------------------------------------------------------------------------
// The two validators.

/// meshplane's verdict, in process, decoded and validated as the apply API does.
fn meshplane(text: &str) -> Result<(), Rejection> {
    let mut values = Vec::new();
    for (i, doc) in serde_norway::Deserializer::from_str(text).enumerate() {
        let value = actors::decode::value(doc).map_err(|e| {
            Rejection::invalid(format!("documents[{i}]"), format!("malformed YAML: {e}"))
        })?;
        values.push(value);
    }
    for (i, value) in values.iter().enumerate() {
        actors::mesh::document_command(value).map_err(|r| r.within(&format!("documents[{i}]")))?;
    }
    Ok(())
}

fn tool() -> PathBuf {
    if let Some(path) = std::env::var_os("MESHPLANE_KUBERNETES_VALIDATE") {
        return path.into();
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/venv/bin/kubernetes-validate");
    if venv.exists() {
        return venv;
    }
    "kubernetes-validate".into()
}

/// The tool's verdict for each file (true: valid), by file name; a file the tool cannot read
/// at all is rejected by it.
fn kubernetes_validate(files: &[PathBuf]) -> BTreeMap<String, (bool, String)> {
    let tool = tool();
    let mut verdicts = BTreeMap::new();
    for group in files.chunks(BATCH * PARALLEL) {
        let children: Vec<_> = group
            .chunks(BATCH)
            .map(|batch| {
                Command::new(&tool)
                    .args(["--strict", "-k", "1.37.0", "--no-warn"])
                    .args(batch)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap_or_else(|e| {
                        panic!("{tool:?} could not run ({e}): run scripts/setup --tests, which installs kubernetes-validate")
                    })
            })
            .collect();
        for (child, batch) in children.into_iter().zip(group.chunks(BATCH)) {
            let out = child.wait_with_output().unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            for line in text.lines() {
                let mut words = line.split_whitespace();
                let (Some(level), Some(file)) = (words.next(), words.next()) else {
                    continue;
                };
                let name = Path::new(file)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                match level {
                    "INFO" if line.contains(" passed ") => {
                        verdicts.entry(name).or_insert((true, line.to_string()));
                    }
                    "ERROR" => {
                        verdicts.insert(name, (false, line.to_string()));
                    }
                    _ => {}
                }
            }
            // A file the tool could not parse stops its batch: judge the rest one by one.
            for file in batch {
                let name = file.file_name().unwrap().to_string_lossy().into_owned();
                if let std::collections::btree_map::Entry::Vacant(slot) = verdicts.entry(name) {
                    let out = Command::new(&tool)
                        .args(["--strict", "-k", "1.37.0", "--no-warn"])
                        .arg(file)
                        .output()
                        .unwrap();
                    let text = String::from_utf8_lossy(&out.stdout).into_owned()
                        + &String::from_utf8_lossy(&out.stderr);
                    let passed = out.status.success() && text.contains(" passed ");
                    slot.insert((passed, text.lines().next().unwrap_or("").to_string()));
                }
            }
        }
    }
    verdicts
}

// ---------------------------------------------------------------------------------------------

struct Case {
    kind: &'static str,
    mutations: Vec<&'static str>,
    text: String,
}

fn generate(count: usize, seed: u64, kinds: &[&'static str]) -> Vec<Case> {
    let mut rng = Rng(seed);
    (0..count)
        .map(|i| {
            let kind = kinds[i % kinds.len()];
            let mut doc = valid(&mut rng, kind);
            let mut mutations = Vec::new();
            // One case in eight stays valid: both must accept it.
            if i % 8 != 0 {
                let steps = if rng.chance(20) { 2 } else { 1 };
                while mutations.len() < steps {
                    let which = *rng.pick(MUTATIONS);
                    if mutate(&mut doc, &mut rng, which) {
                        mutations.push(which);
                    }
                }
            }
            Case {
                kind,
                mutations,
                text: render(&doc),
            }
        })
        .collect()
}

fn shorten(text: &str) -> String {
    if text.len() <= 600 {
        text.to_string()
    } else {
        let mut end = 600;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}… ({} bytes)", &text[..end], text.len())
    }
}

#[test]
fn meshplane_rejects_what_kubernetes_rejects_and_only_what_the_api_server_would() {
    let count = std::env::var("MESHPLANE_DIFF_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    let seed = std::env::var("MESHPLANE_DIFF_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_SEED);

    // Every built-in kind `apply` accepts has a generator (custom resources have no schema in
    // the tool: their validation is their concept's).
    let kinds: Vec<&'static str> = actors::kinds::applied()
        .filter(|k| k.definition == actors::kinds::Definition::BuiltIn)
        .map(|k| k.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            "Namespace",
            "ConfigMap",
            "Service",
            "Deployment",
            "StatefulSet",
            "Endpoints"
        ],
        "a new built-in kind is applied: add a generator for it"
    );

    let cases = generate(count, seed, &kinds);
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = cases
        .iter()
        .enumerate()
        .map(|(i, case)| {
            let path = dir.path().join(format!("case-{i:06}.yaml"));
            std::fs::write(&path, &case.text).unwrap();
            path
        })
        .collect();
    let tool = kubernetes_validate(&files);

    let mut problems = Vec::new();
    // (mutation, outcome) → count, for the summary.
    let mut tally: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut explained: BTreeMap<&'static str, usize> = BTreeMap::new();
    for (i, case) in cases.iter().enumerate() {
        let name = files[i].file_name().unwrap().to_string_lossy().into_owned();
        let (tool_ok, tool_says) = tool
            .get(&name)
            .cloned()
            .unwrap_or_else(|| panic!("kubernetes-validate said nothing about {name}"));
        let ours = meshplane(&case.text);
        let label = if case.mutations.is_empty() {
            "(valid)".to_string()
        } else {
            case.mutations.join("+")
        };
        let describe = |what: &str| {
            format!(
                "case {i} ({} {label}): {what}\n  kubernetes-validate: {}\n  meshplane: {}\n  manifest: {}",
                case.kind,
                shorten(&tool_says),
                match &ours {
                    Ok(()) => "accepted".to_string(),
                    Err(r) => shorten(&r.to_string()),
                },
                shorten(&case.text)
            )
        };
        let outcome = match (&ours, tool_ok) {
            (Ok(()), true) => "both accept".to_string(),
            (Err(_), false) => "both reject".to_string(),
            (Ok(()), false) => match TOOL_ARTIFACTS
                .iter()
                .find(|(_, applies)| applies(&tool_says))
            {
                Some((artifact, _)) => {
                    *explained.entry(artifact).or_default() += 1;
                    "only the tool rejects (its artifact)".to_string()
                }
                None => {
                    problems.push(describe(
                        "kubernetes-validate rejects it, meshplane accepts it",
                    ));
                    "DISAGREE: only the tool rejects".to_string()
                }
            },
            (Err(r), true) => match explain(r) {
                Some(rule) => {
                    *explained.entry(rule).or_default() += 1;
                    "meshplane alone rejects (an API-server rule)".to_string()
                }
                None => {
                    problems.push(describe(
                        "meshplane rejects it for no rule of the API server's",
                    ));
                    "DISAGREE: unexplained".to_string()
                }
            },
        };
        if case.mutations.is_empty() && outcome != "both accept" {
            problems.push(describe("an unmutated manifest must be valid for both"));
        }
        *tally.entry((label, outcome)).or_default() += 1;
    }

    println!("{count} cases from seed {seed}:");
    for ((mutation, outcome), n) in &tally {
        println!("  {n:5}  {mutation:32} {outcome}");
    }
    println!("disagreements, by the rule that explains them:");
    for (rule, n) in &explained {
        println!("  {n:5}  {rule}");
    }
    assert!(
        problems.is_empty(),
        "{} disagreements with kubernetes-validate:\n\n{}",
        problems.len(),
        problems
            .iter()
            .take(12)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n\n")
    );
}
