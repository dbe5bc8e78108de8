//! Every object meshplane generates is valid for Kubernetes.
//!
//! A mesh exercising every projection (a resource of every kind `apply` accepts, a manual fence
//! with static, deadline, namespace and selector domains plus learned ones, auto-created fences,
//! a SlimeBoot so the fallback EnvoyFilter renders, and the EaseMesh registry) is projected;
//! every desired Kubernetes object, the CRDs (`meshplane crds`) and the installation
//! (`meshplane install --print`) are written to a temporary directory and checked:
//!
//! - built-in kinds (and the CRDs themselves) with `kubernetes-validate --strict` against
//!   Kubernetes 1.37 (k8s-openapi's `latest`) and 1.33 (the oldest k8s-openapi 0.29 supports);
//! - ServiceFence against the openAPIV3Schema of meshplane's own CRD
//!   (`scripts/validate-custom-resources.py`, strict: unknown fields are errors);
//! - Istio's Sidecar and EnvoyFilter against a minimal schema written here from Istio's API
//!   reference (the fields meshplane writes, enums included); Istio's real CRDs are not
//!   available offline. An applied VirtualService is the user's input passed through and is
//!   not validated (Istio validates it).
//!
//! The tool comes from `scripts/setup` (a venv in `.tools/`); `MESHPLANE_KUBERNETES_VALIDATE`
//! names another one. A missing tool fails the test: it is part of the test command.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use actors::fence::{FenceCommand, Sighting};
use actors::{Ctx, Mesh, MeshCommand};
use events::schema::{FenceKey, Via};
use projections::KubeObject;
use serde_json::{json, Value};

const T0: i64 = 1_795_305_600_000;

fn documents() -> Vec<Value> {
    let svc = |ns: &str, name: &str, labels: Value| {
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 9080, "targetPort": 9080}]}})
    };
    let pod_template = |app: &str| {
        json!({"metadata": {"labels": {"app": app}},
            "spec": {"containers": [{"name": app, "image": format!("example/{app}:1"),
                "ports": [{"containerPort": 9080}]}]}})
    };
    vec![
        json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "shop", "labels": {"slime.io/serviceFenced": "true"}}}),
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "web-config", "namespace": "shop"}, "data": {"level": "info"}}),
        svc("default", "productpage", json!({})),
        svc("default", "details", json!({"tier": "backend"})),
        svc("default", "reviews", json!({})),
        svc("shop", "cart", json!({})),
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "details", "namespace": "default"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "details"}},
                "template": pod_template("details")}}),
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": "shop"},
            "spec": {"serviceName": "db", "replicas": 1, "selector": {"matchLabels": {"app": "db"}},
                "template": pod_template("db")}}),
        json!({"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "legacy", "namespace": "default"},
            "subsets": [{"addresses": [{"ip": "192.0.2.10"}], "ports": [{"name": "http", "port": 80}]}]}),
        json!({"apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
            "metadata": {"name": "reviews", "namespace": "default"},
            "spec": {"hosts": ["reviews"], "http": [{"route": [
                {"destination": {"host": "reviews-v2"}},
                {"destination": {"host": "ratings.prod.svc.cluster.local"}}]}]}}),
        json!({"apiVersion": "config.netease.com/v1alpha1", "kind": "SlimeBoot",
            "metadata": {"name": "lazyload", "namespace": "mesh-operator"},
            "spec": {"module": [{"name": "lazyload", "kind": "lazyload", "enable": true,
                "general": {"wormholePort": ["9080", "80"], "autoFence": true,
                    "dispatches": [{"name": "external", "domains": ["www.example.com"],
                        "cluster": "PassthroughCluster"}]},
                "global": {"misc": {"metricSourceType": "accesslog"}}}]}}),
        json!({"apiVersion": "microservice.slime.io/v1alpha1", "kind": "ServiceFence",
            "metadata": {"name": "productpage", "namespace": "default"},
            "spec": {"enable": true,
                "host": {
                    "reviews.default.svc.cluster.local": {"stable": {}},
                    "www.example.com": {"deadline": {"expire": {"seconds": 1_700_000_000}}},
                    "api.example.com": {"deadline": {"expire": {"seconds": 1_900_000_000, "nanos": 5}}},
                    "shop/*": {},
                    "ratings.default.svc.cluster.local": null},
                "labelSelector": [{"selector": {"tier": "backend"}}],
                "workloadSelector": {"labels": {"app": "productpage"}}}}),
        // The registry (EaseMesh's catalog): projected into etcd, not Kubernetes.
        json!({"apiVersion": "mesh.megaease.com/v1alpha1", "kind": "Tenant",
            "metadata": {"name": "takeaway"}, "spec": {"description": "demo"}}),
        json!({"apiVersion": "mesh.megaease.com/v1alpha1", "kind": "Service",
            "metadata": {"name": "order"}, "spec": {"registerTenant": "takeaway"}}),
    ]
}

fn mesh() -> Mesh {
    let docs = documents();
    for kind in actors::kinds::applied() {
        assert!(
            docs.iter().any(|d| d["kind"] == kind.kind
                && kind
                    .api_versions
                    .contains(&d["apiVersion"].as_str().unwrap_or(""))),
            "the schema test covers no {} resource: add one",
            kind.kind
        );
    }
    let mut mesh = Mesh::default();
    mesh.apply_documents(&docs, &mut Ctx::new(T0, 1))
        .expect("the documents apply");
    let sightings = [
        "details.default.svc.cluster.local",
        "cart.shop.svc.cluster.local",
    ]
    .iter()
    .map(|h| Sighting {
        host: h.to_string(),
        seen_at_ms: T0 + 1_000,
        source: "192.0.2.1 → default/productpage".into(),
        raw: h.to_string(),
    })
    .collect();
    mesh.execute(
        MeshCommand::Fence(FenceCommand::Observe {
            fence: FenceKey::new("default", "productpage"),
            via: Via::AccessLog,
            sightings,
        }),
        &mut Ctx::new(T0 + 1_000, 1),
    )
    .expect("the fence learns");
    // Deadlines are aged by the sweep: `www.example.com`'s has passed, so it is EXPIRE.
    mesh.execute(
        MeshCommand::Fence(FenceCommand::Sweep {
            fence: FenceKey::new("default", "productpage"),
            now_ms: T0 + 2_000,
        }),
        &mut Ctx::new(T0 + 2_000, 1),
    )
    .expect("the fence sweeps");
    mesh
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

/// The Python that has the tool's packages (jsonschema, PyYAML): the venv's, beside the tool.
fn python(tool: &Path) -> PathBuf {
    match tool.parent().map(|d| d.join("python")) {
        Some(p) if p.exists() => p,
        _ => "python3".into(),
    }
}

fn run(command: &mut Command) -> (bool, String) {
    let out = command.output().unwrap_or_else(|e| {
        panic!("{command:?} could not run ({e}): run scripts/setup, which installs kubernetes-validate")
    });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn write_yaml(path: &Path, objects: &[Value]) {
    let mut text = String::new();
    for o in objects {
        text.push_str("---\n");
        text.push_str(&serde_norway::to_string(o).unwrap());
    }
    std::fs::write(path, text).unwrap();
}

fn binary_output(args: &[&str]) -> String {
    let out = Command::new(support::BIN).args(args).output().unwrap();
    assert!(out.status.success(), "meshplane {args:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// Istio's Sidecar and EnvoyFilter, as far as meshplane writes them (Istio's API reference:
/// networking/v1beta1 Sidecar, networking/v1alpha3 EnvoyFilter), as CRDs for the validator.
fn istio_minimal_crds() -> Vec<Value> {
    let string_map = json!({"type": "object", "additionalProperties": {"type": "string"}});
    let sidecar = json!({"type": "object", "required": ["spec"], "properties": {"spec": {
        "type": "object",
        "properties": {
            "workloadSelector": {"type": "object", "properties": {"labels": string_map}},
            "egress": {"type": "array", "items": {"type": "object", "required": ["hosts"],
                "properties": {
                    "bind": {"type": "string"},
                    "captureMode": {"type": "string", "enum": ["DEFAULT", "IPTABLES", "NONE"]},
                    "port": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    // `namespace/dnsName`, `*` or `.` or `~` for the namespace.
                    "hosts": {"type": "array", "minItems": 1,
                        "items": {"type": "string", "pattern": "^[^/]+/[^/]+$"}}}}},
            "ingress": {"type": "array", "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
            "outboundTrafficPolicy": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}});
    let envoy_filter = json!({"type": "object", "required": ["spec"], "properties": {"spec": {
        "type": "object",
        "properties": {
            "workloadSelector": {"type": "object", "properties": {"labels": string_map}},
            "priority": {"type": "integer"},
            "configPatches": {"type": "array", "items": {"type": "object",
                "required": ["applyTo", "patch"],
                "properties": {
                    "applyTo": {"type": "string", "enum": ["INVALID", "LISTENER", "FILTER_CHAIN",
                        "NETWORK_FILTER", "HTTP_FILTER", "ROUTE_CONFIGURATION", "VIRTUAL_HOST",
                        "HTTP_ROUTE", "CLUSTER", "EXTENSION_CONFIG", "BOOTSTRAP", "LISTENER_FILTER"]},
                    "match": {"type": "object", "properties": {
                        "context": {"type": "string", "enum": ["ANY", "SIDECAR_INBOUND",
                            "SIDECAR_OUTBOUND", "GATEWAY"]},
                        "proxy": {"type": "object", "properties": {
                            "proxyVersion": {"type": "string"}, "metadata": string_map}},
                        "listener": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "routeConfiguration": {"type": "object", "properties": {
                            "portNumber": {"type": "integer"}, "portName": {"type": "string"},
                            "gateway": {"type": "string"}, "name": {"type": "string"},
                            "vhost": {"type": "object", "properties": {
                                "name": {"type": "string"},
                                "route": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}},
                        "cluster": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}},
                    "patch": {"type": "object", "required": ["operation"], "properties": {
                        "operation": {"type": "string", "enum": ["INVALID", "MERGE", "ADD", "REMOVE",
                            "INSERT_BEFORE", "INSERT_AFTER", "INSERT_FIRST", "REPLACE"]},
                        "value": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "filterClass": {"type": "string"}}}}}}}}}});
    let crd = |kind: &str, plural: &str, version: &str, schema: Value| {
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": format!("{plural}.networking.istio.io")},
            "spec": {"group": "networking.istio.io", "scope": "Namespaced",
                "names": {"kind": kind, "plural": plural},
                "versions": [{"name": version, "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": schema}}]}})
    };
    vec![
        crd("Sidecar", "sidecars", "v1beta1", sidecar),
        crd("EnvoyFilter", "envoyfilters", "v1alpha3", envoy_filter),
    ]
}

/// The objects the Kubernetes adapter itself writes: the Warning Event about a failed write
/// (on the fence that owns the Sidecar), and the leader Lease.
fn adapter_objects() -> Vec<Value> {
    use adapters::kube::apply::report;
    let now = k8s_openapi::jiff::Timestamp::from_millisecond(T0).unwrap();
    let sidecar = json!({"metadata": {"ownerReferences": [{"apiVersion": "microservice.slime.io/v1alpha1",
        "kind": "ServiceFence", "name": "productpage", "uid": "3f1c6a0e-0000-4000-8000-00000000fe11",
        "controller": true}]}});
    let object = projections::ObjectRef {
        api_version: "networking.istio.io/v1beta1".into(),
        kind: "Sidecar".into(),
        namespace: "default".into(),
        name: "productpage".into(),
    };
    let event = report::warning_event(
        report::source_of(Some(&sidecar), &object),
        "ApplyFailed",
        "apply of Sidecar default/productpage failed: 500 Internal Server Error".into(),
        now,
    );
    let mut event = serde_json::to_value(event).unwrap();
    // The API server names it from generateName; the validator needs a name.
    let generated = format!(
        "{}x7k2q",
        event["metadata"]["generateName"].as_str().unwrap()
    );
    event["metadata"]["name"] = generated.into();
    let lease = adapters::kube::lease::LeaseConfig::new(
        "meshplane".into(),
        adapters::kube::lease::DEFAULT_LEASE_NAME.into(),
        "meshplane-5d8f7-abc12-1f2e3d4c".into(),
    )
    .new_lease(now);
    let lease = serde_json::to_value(lease).unwrap();
    assert_eq!(lease["kind"], "Lease");
    vec![event, lease]
}

#[test]
fn every_generated_object_is_valid_for_kubernetes() {
    let desired = projections::desired_kube(&mesh());
    assert!(desired.errors.is_empty(), "{:?}", desired.errors);

    // The mesh exercises what it claims to.
    let count = |kind: &str| desired.kube.keys().filter(|r| r.kind == kind).count();
    for kind in [
        "Namespace",
        "ConfigMap",
        "Service",
        "Deployment",
        "StatefulSet",
        "Endpoints",
        "VirtualService",
        "ServiceFence",
        "Sidecar",
        "EnvoyFilter",
    ] {
        assert!(count(kind) > 0, "no {kind} was projected");
    }
    assert!(count("ServiceFence") > 1, "auto-created fences too");
    let fence = desired
        .kube
        .values()
        .find_map(|o| match o {
            KubeObject::ServiceFence(f) if f.metadata.name.as_deref() == Some("productpage") => {
                Some(serde_json::to_value(f).unwrap())
            }
            _ => None,
        })
        .expect("the manual fence");
    let domains = &fence["status"]["domains"];
    for key in [
        "reviews.default.svc.cluster.local", // static
        "www.example.com",                   // expired deadline
        "shop/*",                            // namespace
        "details.default.svc.cluster.local", // selector and learned
        "cart.shop.svc.cluster.local",       // learned
    ] {
        assert!(domains.get(key).is_some(), "domain {key}: {fence}");
    }
    assert_eq!(domains["www.example.com"]["status"], "EXPIRE", "{fence}");
    assert!(fence["status"]["metricStatus"]
        .as_object()
        .is_some_and(|m| m.len() == 2));

    let dir = tempfile::tempdir().unwrap();
    let (core_dir, custom_dir) = (dir.path().join("core"), dir.path().join("custom"));
    std::fs::create_dir_all(&core_dir).unwrap();
    std::fs::create_dir_all(&custom_dir).unwrap();
    let (mut core_files, mut custom_files) = (Vec::new(), Vec::new());
    for (r, object) in &desired.kube {
        let custom = matches!(
            object,
            KubeObject::ServiceFence(_) | KubeObject::Sidecar(_) | KubeObject::Custom(_)
        );
        let file = format!(
            "{}.{}.{}.yaml",
            r.kind,
            if r.namespace.is_empty() {
                "_cluster"
            } else {
                &r.namespace
            },
            r.name
        );
        let path = if custom { &custom_dir } else { &core_dir }.join(file);
        write_yaml(&path, &[object.to_value()]);
        if custom {
            &mut custom_files
        } else {
            &mut core_files
        }
        .push(path);
    }
    let crds = dir.path().join("crds.yaml");
    std::fs::write(&crds, binary_output(&["crds"])).unwrap();
    let install = dir.path().join("install.yaml");
    std::fs::write(&install, binary_output(&["install", "--print"])).unwrap();
    core_files.push(crds.clone());
    core_files.push(install);
    // What the Kubernetes adapter writes besides the projections.
    // As JSON documents, which is what the API server receives: a YAML writer leaves
    // timestamps unquoted and the validator's YAML reader would turn them into dates.
    let adapter = dir.path().join("adapter.yaml");
    let text: String = adapter_objects()
        .iter()
        .map(|o| format!("---\n{o}\n"))
        .collect();
    std::fs::write(&adapter, text).unwrap();
    core_files.push(adapter);
    let istio = dir.path().join("istio-minimal-crds.yaml");
    write_yaml(&istio, &istio_minimal_crds());

    let tool = tool();
    for version in ["1.37.0", "1.33.0"] {
        let (ok, text) = run(Command::new(&tool)
            .args(["--strict", "-k", version])
            .args(&core_files));
        assert!(ok, "kubernetes-validate {version} failed:\n{text}");
        // Every document was known to the tool (it only warns about an unknown kind).
        assert!(!text.contains("Couldn't find schema"), "{text}");
        let documents = core_files
            .iter()
            .map(|f| {
                let text = std::fs::read_to_string(f).unwrap();
                text.lines().filter(|l| *l == "---").count()
            })
            .sum::<usize>();
        assert_eq!(
            text.lines().filter(|l| l.contains(" passed ")).count(),
            documents,
            "one pass per document:\n{text}"
        );
    }

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/validate-custom-resources.py");
    let (ok, text) = run(Command::new(python(&tool))
        .arg(script)
        .arg("--crds")
        .arg(&crds)
        .arg("--crds")
        .arg(&istio)
        .args(["--skip", "VirtualService"])
        .args(&custom_files));
    assert!(ok, "custom resources failed:\n{text}");
    let passed = text.lines().filter(|l| l.starts_with("INFO ")).count();
    assert_eq!(
        passed + 1, // the applied VirtualService is skipped
        custom_files.len(),
        "{text}"
    );
}

/// The validators do catch mistakes: an unknown field in a ServiceFence and a malformed
/// Sidecar host are rejected.
#[test]
fn the_validators_reject_invalid_objects() {
    let dir = tempfile::tempdir().unwrap();
    let crds = dir.path().join("crds.yaml");
    std::fs::write(&crds, binary_output(&["crds"])).unwrap();
    let istio = dir.path().join("istio.yaml");
    write_yaml(&istio, &istio_minimal_crds());
    let bad = dir.path().join("bad.yaml");
    write_yaml(
        &bad,
        &[
            json!({"apiVersion": "microservice.slime.io/v1alpha1", "kind": "ServiceFence",
                "metadata": {"name": "a"}, "spec": {"enabled": true}}),
            json!({"apiVersion": "networking.istio.io/v1beta1", "kind": "Sidecar",
                "metadata": {"name": "a"}, "spec": {"egress": [{"hosts": ["no-namespace"]}]}}),
        ],
    );
    let tool = tool();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/validate-custom-resources.py");
    let (ok, text) = run(Command::new(python(&tool))
        .arg(script)
        .arg("--crds")
        .arg(&crds)
        .arg("--crds")
        .arg(&istio)
        .arg(&bad));
    assert!(!ok, "{text}");
    assert!(text.contains("'enabled' was unexpected"), "{text}");
    assert!(text.contains("does not match"), "{text}");

    let bad_core = dir.path().join("bad-core.yaml");
    write_yaml(
        &bad_core,
        &[
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": 1}}),
        ],
    );
    let (ok, text) = run(Command::new(&tool).arg("--strict").arg(&bad_core));
    assert!(!ok, "{text}");
}
