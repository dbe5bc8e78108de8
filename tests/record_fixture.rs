//! Records the fixture `tests/fixtures/recorded/rich-run.jsonl` (and its replay report
//! `rich-run.replay.txt`) that `tests/recorded_log.rs` replays: one daemon run with
//! `--kubeconfig` against the in-process API server, through generic resources, the EaseMesh
//! registry (liveness transitions included), Slime lazyload fences (learning, refreshing,
//! ageing, a passed deadline), Kubernetes observations, and a rollback in the middle.
//!
//! Ignored: run it only to re-record, with the binary of the commit whose history is to be
//! kept (`MESHPLANE_BIN`, default the one cargo built; `MESHPLANE_FIXTURE_ROOT`, default this
//! package, receives `tests/fixtures/recorded/`):
//!
//! ```sh
//! cargo test --all-features --test record_fixture -- --ignored --nocapture
//! ```
//!
//! Never re-record to make `recorded_log` pass: the fixture is the history that must not change.

#![allow(
    clippy::disallowed_methods,
    reason = "the recording drives the running daemon on the real clock"
)]

#[allow(dead_code, reason = "the recording only seeds and changes the cluster")]
#[path = "support/fake_apiserver.rs"]
mod fake_apiserver;
mod support;

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fake_apiserver::FakeApiServer;
use serde_json::{json, Value};
use support::{eventually, free_port, raw_request, Output, Sandbox};

const WAIT: Duration = Duration::from_secs(30);
const WEB_PODS: usize = 16;
const CART_PODS: usize = 8;
const DB_PODS: usize = 3;
const CONFIGMAPS: usize = 24;
/// `ext-00`.. in bookinfo: destinations to learn.
const EXTERNALS: usize = 12;
const FIXTURE: &str = "tests/fixtures/recorded/rich-run.jsonl";
const REPORT: &str = "tests/fixtures/recorded/rich-run.replay.txt";

/// The daemon under recording, started from `MESHPLANE_BIN`; killed if the recording fails.
struct Recorder {
    sandbox: Sandbox,
    bin: PathBuf,
    child: Option<Child>,
    url: String,
    port: u16,
    alive: Arc<Mutex<BTreeSet<(String, String)>>>,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Recorder {
    fn command(&self) -> Command {
        self.sandbox.command_of(&self.bin)
    }

    fn cli(&self, args: &[&str]) -> Output {
        self.sandbox.run_with(self.command().args(args), None)
    }

    /// A client command against the daemon; must succeed.
    fn client(&self, args: &[&str]) -> String {
        let out = self.cli(&[args, &["--server", &self.url]].concat());
        out.ok().to_string()
    }

    fn apply(&self, name: &str, yaml: &str) -> String {
        let file = self.sandbox.write(name, yaml);
        self.client(&["apply", "-f", file.to_str().unwrap()])
    }

    fn http(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let (status, text) = raw_request(
            self.port,
            method,
            path,
            &[("Content-Type", "application/json")],
            bytes,
        );
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    fn accesslog(&self, entries: &[Value]) {
        let lines: String = entries.iter().map(|e| format!("{e}\n")).collect();
        let (status, body) = raw_request(
            self.port,
            "POST",
            "/api/v1/accesslog",
            &[("content-type", "application/x-ndjson")],
            lines.into_bytes(),
        );
        assert_eq!(status, 202, "{body}");
    }

    /// The event types in an object's history (empty when nothing touched it).
    fn history(&self, kind: &str, namespace: &str, name: &str) -> Vec<String> {
        let path = format!("/api/v1/history?kind={kind}&name={name}&namespace={namespace}");
        let (status, body) = self.http("GET", &path, None);
        if status != 200 {
            return Vec::new();
        }
        body["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|i| i["event"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    fn wait_history(&self, kind: &str, namespace: &str, name: &str, want: &[&str]) {
        eventually(
            WAIT,
            &format!("{kind} {namespace}/{name} with {want:?}"),
            || {
                let seen = self.history(kind, namespace, name);
                want.iter()
                    .all(|w| seen.iter().filter(|s| s == w).count() >= count(want, w))
            },
        );
    }

    fn head(&self) -> u64 {
        let (_, text) = raw_request(self.port, "GET", "/metrics", &[], Vec::new());
        text.lines()
            .find_map(|l| l.strip_prefix("meshplane_log_head_position "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .expect("meshplane_log_head_position") as u64
    }

    /// Wait until the log head stays put for a while.
    fn settle(&self) -> u64 {
        let mut last = self.head();
        loop {
            std::thread::sleep(Duration::from_millis(1500));
            let now = self.head();
            if now == last {
                return now;
            }
            last = now;
        }
    }

    fn status(&self, service: &str, id: &str) -> Option<String> {
        let (code, body) = self.http(
            "GET",
            &format!("/api/v1/registry/instances/{service}/{id}"),
            None,
        );
        (code == 200).then(|| body["status"].as_str().unwrap_or_default().to_string())
    }

    fn wait_status(&self, service: &str, id: &str, want: Option<&str>) {
        eventually(WAIT, &format!("{service}/{id} {want:?}"), || {
            self.status(service, id).as_deref() == want
        });
    }

    fn register(&self, service: &str, id: &str, ip: &str, version: &str) {
        let (code, body) = self.http(
            "POST",
            "/api/v1/registry/instances",
            Some(
                json!({"serviceName": service, "instanceID": id, "ip": ip, "port": 13001,
                "labels": {"version": version}}),
            ),
        );
        assert!(code == 201 || code == 200, "{code} {body}");
        self.beat(service, id, true);
    }

    /// Whether the heartbeat thread keeps `service/id` alive.
    fn beat(&self, service: &str, id: &str, on: bool) {
        let key = (service.to_string(), id.to_string());
        let mut alive = self.alive.lock().unwrap();
        if on {
            alive.insert(key);
        } else {
            alive.remove(&key);
        }
    }
}

fn count(want: &[&str], w: &str) -> usize {
    want.iter().filter(|x| **x == w).count()
}

// ---- the cluster as others wrote it --------------------------------------------------------

fn pod(name: &str, app: &str, owner: (&str, &str), node: &str, ip: Option<&str>) -> Value {
    let mut status = json!({"phase": "Pending"});
    if let Some(ip) = ip {
        status = json!({"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]});
    }
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "shop", "labels": {"app": app},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": owner.0, "name": owner.1,
                "uid": format!("uid-{}", owner.1), "controller": true}]},
        "spec": {"nodeName": node, "containers": [{"name": app, "image": format!("{app}:1")}]},
        "status": status})
}

/// One of the shop's pods.
struct ShopPod {
    name: String,
    app: &'static str,
    owner: (&'static str, &'static str),
    node: String,
    ip: String,
}

impl ShopPod {
    fn path(&self) -> String {
        format!("/api/v1/namespaces/shop/pods/{}", self.name)
    }

    fn object(&self, running: bool) -> Value {
        let ip = running.then_some(self.ip.as_str());
        pod(&self.name, self.app, self.owner, &self.node, ip)
    }
}

/// The shop's pods: web's and cart's (ReplicaSets), db's (a StatefulSet), over two nodes.
fn pods() -> Vec<ShopPod> {
    let sets = [
        ("web", ("ReplicaSet", "web-6b7f9"), WEB_PODS, 0),
        ("cart", ("ReplicaSet", "cart-5c8d"), CART_PODS, 1),
        ("db", ("StatefulSet", "db"), DB_PODS, 2),
    ];
    sets.into_iter()
        .flat_map(|(app, owner, count, subnet)| {
            (0..count).map(move |i| ShopPod {
                name: format!("{}-{i}", owner.1),
                app,
                owner,
                node: format!("node-{}", i % 2),
                ip: format!("10.1.{subnet}.{}", i + 1),
            })
        })
        .collect()
}

fn seed_cluster(api: &FakeApiServer) {
    api.put(
        "/api/v1/namespaces/shop",
        json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "shop", "labels": {"team": "shop"}},
            "status": {"phase": "Active"}}),
    );
    for node in ["node-0", "node-1"] {
        api.put(
            &format!("/api/v1/nodes/{node}"),
            json!({"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": node, "labels": {"kubernetes.io/hostname": node}}}),
        );
    }
    for (app, port) in [("web", 80), ("cart", 80), ("db", 5432)] {
        api.put(
            &format!("/api/v1/namespaces/shop/services/{app}"),
            json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": app, "namespace": "shop", "labels": {"app": app}},
                "spec": {"selector": {"app": app}, "ports": [{"name": "tcp", "port": port}]}}),
        );
    }
    api.put(
        "/apis/apps/v1/namespaces/shop/deployments/web",
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
            "spec": {"replicas": 8, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "web:1"}]}}}}),
    );
    api.put(
        "/apis/apps/v1/namespaces/shop/statefulsets/db",
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": "shop", "labels": {"app": "db"}},
            "spec": {"replicas": 2, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                "template": {"metadata": {"labels": {"app": "db"}},
                    "spec": {"containers": [{"name": "db", "image": "db:1"}]}}}}),
    );
    api.put(
        "/apis/networking.istio.io/v1beta1/namespaces/shop/virtualservices/cart",
        json!({"apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
            "metadata": {"name": "cart", "namespace": "shop"},
            "spec": {"hosts": ["cart"], "http": [{"route": [{"destination": {"host": "cart"}}]}]}}),
    );
    api.put(
        "/apis/microservice.slime.io/v1alpha1/namespaces/shop/servicefences/web",
        json!({"apiVersion": "microservice.slime.io/v1alpha1", "kind": "ServiceFence",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"enable": true, "workloadSelector": {"fromService": true}}}),
    );
    for pod in pods() {
        api.put(&pod.path(), pod.object(false));
    }
}

/// The shop's pods are running: their addresses, the Endpoints and an EndpointSlice.
fn pods_running(api: &FakeApiServer) {
    for pod in pods() {
        api.put(&pod.path(), pod.object(true));
    }
    put_endpoints(
        api,
        "web",
        &(1..=WEB_PODS)
            .map(|i| format!("10.1.0.{i}"))
            .collect::<Vec<_>>(),
    );
    put_endpoints(
        api,
        "cart",
        &(1..=CART_PODS)
            .map(|i| format!("10.1.1.{i}"))
            .collect::<Vec<_>>(),
    );
    api.put(
        "/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices/web-x7k2p",
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "web-x7k2p", "namespace": "shop",
                "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "Endpoints": (1..=WEB_PODS).map(|i| json!({"addresses": [format!("10.1.0.{i}")]}))
                .collect::<Vec<_>>(),
            "ports": [{"name": "tcp", "port": 80}]}),
    );
}

fn put_endpoints(api: &FakeApiServer, name: &str, ips: &[String]) {
    let addresses: Vec<Value> = ips.iter().map(|ip| json!({"ip": ip})).collect();
    api.put(
        &format!("/api/v1/namespaces/shop/endpoints/{name}"),
        json!({"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": name, "namespace": "shop"},
            "subsets": [{"addresses": addresses, "ports": [{"port": 80}]}]}),
    );
}

// ---- what is applied through meshplane ----------------------------------------------------

fn configmaps(version: &str, names: std::ops::Range<usize>) -> String {
    names
        .map(|i| {
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg-{i:02}\n  namespace: app\n  labels: {{app: web}}\ndata:\n  version: \"{version}\"\n  index: \"{i}\"\n"
            )
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

fn app_workload(replicas: u32, image: &str, port: u16) -> String {
    format!(
        "\
apiVersion: v1
kind: Namespace
metadata: {{name: app, labels: {{team: app}}}}
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: app, labels: {{app: web}}}}
spec:
  selector: {{app: web}}
  ports: [{{name: http, port: {port}, targetPort: 8080}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: app}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - name: web
        image: {image}
        ports: [{{containerPort: 8080}}]
"
    )
}

const CATALOG: &str = "\
apiVersion: mesh.megaease.com/v2alpha1
kind: MeshController
metadata: {name: easemesh-controller}
heartbeatInterval: 1s
registryType: eureka
deadRecordTime: 5s
---
apiVersion: mesh.megaease.com/v1alpha1
kind: Tenant
metadata: {name: takeaway}
spec: {description: the takeaway demo}
---
apiVersion: mesh.megaease.com/v1alpha1
kind: Tenant
metadata: {name: bank}
spec: {description: payments backend}
---
apiVersion: mesh.megaease.com/v1alpha1
kind: Service
metadata: {name: order}
spec:
  registerTenant: takeaway
  loadBalance: {policy: roundRobin}
  sidecar: {discoveryType: eureka, address: 127.0.0.1, ingressPort: 13001,
    ingressProtocol: http, egressPort: 13002, egressProtocol: http}
---
apiVersion: mesh.megaease.com/v1alpha1
kind: Service
metadata: {name: payment}
spec: {registerTenant: takeaway}
---
apiVersion: mesh.megaease.com/v1alpha1
kind: Service
metadata: {name: delivery}
spec:
  registerTenant: takeaway
  resilience:
    retry: {maxAttempts: 3, waitDuration: 500ms}
---
apiVersion: mesh.megaease.com/v1alpha1
kind: Service
metadata: {name: fraud}
spec: {registerTenant: bank}
";

const PARTS: &str = "\
apiVersion: mesh.megaease.com/v2alpha1
kind: LoadBalance
metadata: {name: payment}
spec: {policy: headerHash, headerHashKey: X-User}
---
apiVersion: mesh.megaease.com/v2alpha1
kind: Resilience
metadata: {name: order}
spec:
  circuitBreaker: {slidingWindowType: COUNT_BASED, failureRateThreshold: 50, slidingWindowSize: 100}
  failureCodes: [500, 503]
---
apiVersion: mesh.megaease.com/v1alpha1
kind: Tenant
metadata: {name: takeaway}
spec: {description: 'the takeaway demo, now with payments'}
";

fn slimeboot(ttl: &str, grace: &str) -> String {
    format!(
        "\
apiVersion: config.netease.com/v1alpha1
kind: SlimeBoot
metadata: {{name: lazyload, namespace: mesh-operator}}
spec:
  module:
  - name: lazyload
    kind: lazyload
    enable: true
    general:
      wormholePort: ['9080', '80']
      dependencyTtl: {ttl}
      idleGrace: {grace}
      refreshWindow: 1s
    global:
      misc: {{metricSourceType: accesslog}}
"
    )
}

fn bookinfo(deadline: u64) -> String {
    let mut yaml = String::from(
        "\
apiVersion: v1
kind: Namespace
metadata: {name: bookinfo}
---
apiVersion: v1
kind: Endpoints
metadata: {name: productpage, namespace: bookinfo}
subsets: [{addresses: [{ip: 10.2.0.1}], ports: [{port: 9080}]}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: reviews, namespace: bookinfo}
subsets: [{addresses: [{ip: 10.2.0.2}, {ip: 10.2.0.3}], ports: [{port: 9080}]}]
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: reviews, namespace: bookinfo}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews-v2}
---
apiVersion: microservice.slime.io/v1alpha1
kind: ServiceFence
metadata: {name: productpage, namespace: bookinfo}
spec:
  enable: true
  workloadSelector: {fromService: true}
---
apiVersion: microservice.slime.io/v1alpha1
kind: ServiceFence
metadata: {name: reviews, namespace: bookinfo}
spec:
  enable: true
  workloadSelector: {fromService: true}
  host:
    mysql.db.svc.cluster.local: {stable: {}}
",
    );
    yaml.push_str(&format!(
        "    www.example.com: {{deadline: {{expire: {{seconds: {deadline}}}}}}}\n"
    ));
    for name in bookinfo_services() {
        yaml.push_str(&format!(
            "---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: bookinfo, labels: {{app: {name}}}}}\nspec: {{selector: {{app: {name}}}, ports: [{{name: http, port: 9080}}]}}\n"
        ));
    }
    yaml
}

/// The bookinfo Services: the app's, and the destinations to learn.
fn bookinfo_services() -> Vec<String> {
    let app = ["productpage", "details", "reviews", "reviews-v2", "ratings"];
    app.iter()
        .map(|s| s.to_string())
        .chain((0..EXTERNALS).map(|i| format!("ext-{i:02}")))
        .collect()
}

fn call(from: &str, to: &str) -> Value {
    let port = if from.starts_with("10.1.") { 80 } else { 9080 };
    json!({"downstream_ip": from, "upstream_cluster": format!("inbound|{port}||"),
        "authority": format!("{to}:{port}")})
}

// ---- the recording -------------------------------------------------------------------------

#[test]
#[ignore = "records the fixture of tests/recorded_log.rs; run by hand with the binary to keep"]
fn record_a_rich_run() {
    let bin = std::env::var_os("MESHPLANE_BIN")
        .map_or_else(|| PathBuf::from(support::BIN), PathBuf::from);
    let root = std::env::var_os("MESHPLANE_FIXTURE_ROOT")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    eprintln!("recording with {} into {}", bin.display(), root.display());

    let sandbox = Sandbox::new();
    let api = FakeApiServer::start();
    seed_cluster(&api);
    let data = sandbox.path("data");
    let kubeconfig = sandbox.write("fake.kubeconfig", &api.kubeconfig("recorder"));
    let port = free_port("127.0.0.1");
    let mut rec = Recorder {
        sandbox,
        bin,
        child: None,
        url: format!("http://127.0.0.1:{port}"),
        port,
        alive: Arc::default(),
    };
    let log = rec.sandbox.path("daemon.log");
    let out = File::create(&log).unwrap();
    let child = rec
        .command()
        .args(["run", "--data", data.to_str().unwrap()])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--kubeconfig", kubeconfig.to_str().unwrap(), "--no-lease"])
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("spawn meshplane run");
    rec.child = Some(child);
    eventually(Duration::from_secs(60), "the daemon ready", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            && raw_request(port, "GET", "/readyz", &[], Vec::new()).0 == 200
    });

    // The heartbeats of every live instance, all along.
    let stop = Arc::new(AtomicBool::new(false));
    let beater = {
        let (alive, stop, url) = (rec.alive.clone(), stop.clone(), rec.url.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let beats: Vec<Value> = alive
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|(s, i)| json!({"serviceName": s, "instanceID": i}))
                    .collect();
                if !beats.is_empty() {
                    // Errors ignored: the daemon may be stopping.
                    let _ = ureq::post(&format!("{url}/api/v1/registry/heartbeats"))
                        .send_json(json!({ "heartbeats": beats }));
                }
                std::thread::sleep(Duration::from_millis(150));
            }
        })
    };

    // 1. The cluster as observed: every seeded object, then the pods running.
    for pod in pods() {
        rec.wait_history("Pod", "shop", &pod.name, &["cluster.object_observed"]);
    }
    for (kind, ns, name) in [
        ("Namespace", "", "shop"),
        ("Node", "", "node-1"),
        ("Service", "shop", "db"),
        ("Deployment", "shop", "web"),
        ("StatefulSet", "shop", "db"),
        ("VirtualService", "shop", "cart"),
        ("ServiceFence", "shop", "web"),
    ] {
        rec.wait_history(kind, ns, name, &["cluster.object_observed"]);
    }
    pods_running(&api);
    for pod in pods() {
        let twice = ["cluster.object_observed", "cluster.object_observed"];
        rec.wait_history("Pod", "shop", &pod.name, &twice);
    }
    rec.wait_history("Endpoints", "shop", "cart", &["cluster.object_observed"]);
    rec.wait_history(
        "EndpointSlice",
        "shop",
        "web-x7k2p",
        &["cluster.object_observed"],
    );

    // 2. Generic resources: applied, re-applied changed, one re-applied unchanged, deleted.
    rec.apply("app.yaml", &app_workload(2, "web:1.0", 80));
    rec.apply("cfg-v1.yaml", &configmaps("1", 0..CONFIGMAPS));
    rec.apply("cfg-v2.yaml", &configmaps("2", 0..CONFIGMAPS));
    rec.apply("app-v2.yaml", &app_workload(3, "web:1.1", 8080));
    let unchanged = rec.apply("cfg-again.yaml", &configmaps("2", 0..2));
    assert!(unchanged.contains("unchanged"), "{unchanged}");
    rec.client(&["delete", "cm", "cfg-23", "-n", "app"]);
    rec.client(&["delete", "cm", "cfg-22", "-n", "app"]);

    // 3. The registry: catalog, parts, instances and their liveness.
    rec.apply("catalog.yaml", CATALOG);
    rec.apply("parts.yaml", PARTS);
    let instances = [("order", 6), ("payment", 4), ("delivery", 4), ("fraud", 2)];
    for (n, (service, count)) in instances.iter().enumerate() {
        for i in 1..=*count {
            let ip = format!("10.0.{n}.{i}");
            rec.register(service, &format!("{service}-{i}"), &ip, "v1");
        }
    }
    // order-2 and payment-2 go silent, out of service, and recover.
    for (service, id) in [("order", "order-2"), ("payment", "payment-2")] {
        rec.beat(service, id, false);
    }
    for (service, id) in [("order", "order-2"), ("payment", "payment-2")] {
        rec.wait_status(service, id, Some("OUT_OF_SERVICE"));
    }
    for (service, id) in [("order", "order-2"), ("payment", "payment-2")] {
        rec.beat(service, id, true);
    }
    for (service, id) in [("order", "order-2"), ("payment", "payment-2")] {
        rec.wait_status(service, id, Some("UP"));
    }
    // order-3 is taken offline by an operator (emctl's delete) and brought back.
    rec.client(&["delete", "serviceinstance", "order/order-3"]);
    rec.wait_status("order", "order-3", Some("OUT_OF_SERVICE"));
    std::thread::sleep(Duration::from_millis(500));
    let online = "/api/v1/registry/instances/order/order-3/online";
    let (code, body) = rec.http("POST", online, None);
    assert_eq!(code, 200, "{body}");
    // payment-1 re-registers with new labels; payment-4 deregisters.
    rec.register("payment", "payment-1", "10.0.1.1", "v2");
    let gone = "/api/v1/registry/instances/payment/payment-4";
    let (code, body) = rec.http("DELETE", gone, None);
    assert_eq!(code, 200, "{body}");
    rec.beat("payment", "payment-4", false);
    // delivery-3 goes silent for good: out of service, then expired.
    rec.beat("delivery", "delivery-3", false);
    rec.wait_status("delivery", "delivery-3", Some("OUT_OF_SERVICE"));
    rec.wait_status("delivery", "delivery-3", None);
    let expired = ["instance.expired"];
    rec.wait_history("ServiceInstance", "", "delivery/delivery-3", &expired);

    // 4. Fences, with a short TTL: learned, seen again, idle, forgotten; a deadline passes.
    rec.apply("slimeboot-short.yaml", &slimeboot("4s", "2s"));
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    rec.apply("bookinfo.yaml", &bookinfo(now.as_secs() + 8));
    eventually(WAIT, "the bookinfo fences", || {
        let (_, body) = rec.http("GET", "/api/v1/fences", None);
        body["items"].as_array().is_some_and(|i| i.len() == 3)
    });
    let productpage: Vec<String> = ["details", "reviews", "ratings"]
        .iter()
        .map(|s| s.to_string())
        .chain((0..10).map(|i| format!("ext-{i:02}")))
        .collect();
    let explicit = "ext-10.bookinfo.svc.cluster.local:9080";
    let first: Vec<Value> = productpage
        .iter()
        .map(|to| call("10.2.0.1", to))
        .chain([
            call("10.2.0.2", "ratings"),
            call("10.2.0.3", "details"),
            json!({"source": "bookinfo/reviews", "authority": explicit}),
            call("10.1.0.1", "cart"),
            call("10.1.0.2", "db"),
        ])
        .collect();
    rec.accesslog(&first);
    let learned = "fence.dependency_learned";
    rec.wait_history("ServiceFence", "bookinfo", "productpage", &[learned; 13]);
    rec.wait_history("ServiceFence", "bookinfo", "reviews", &[learned; 3]);
    rec.wait_history("ServiceFence", "shop", "web", &[learned; 2]);
    // Past the refresh window: sightings of known dependencies are refreshes.
    std::thread::sleep(Duration::from_millis(1500));
    rec.accesslog(&[
        call("10.2.0.1", "details"),
        call("10.2.0.1", "reviews"),
        call("10.2.0.2", "ratings"),
        call("10.1.0.3", "cart"),
    ]);
    let seen = "fence.dependency_seen";
    rec.wait_history("ServiceFence", "bookinfo", "productpage", &[seen; 2]);
    rec.wait_history("ServiceFence", "bookinfo", "reviews", &[seen]);
    rec.wait_history("ServiceFence", "shop", "web", &[seen]);
    // Nothing more: every dependency goes idle, then is forgotten; the deadline passes.
    let forgotten = "fence.dependency_forgotten";
    rec.wait_history("ServiceFence", "bookinfo", "productpage", &[forgotten; 13]);
    rec.wait_history("ServiceFence", "bookinfo", "reviews", &[forgotten; 3]);
    rec.wait_history("ServiceFence", "shop", "web", &[forgotten; 2]);
    let deadline = ["fence.host_deadline_passed"];
    rec.wait_history("ServiceFence", "bookinfo", "reviews", &deadline);

    // 5. A long TTL from now on; dependencies learned again stay.
    rec.apply("slimeboot-long.yaml", &slimeboot("1h", "10m"));
    rec.accesslog(&[
        call("10.2.0.1", "details"),
        call("10.2.0.1", "reviews"),
        call("10.2.0.2", "ratings"),
        call("10.1.0.4", "cart"),
    ]);
    rec.wait_history("ServiceFence", "bookinfo", "productpage", &[learned; 15]);
    rec.wait_history("ServiceFence", "bookinfo", "reviews", &[learned; 4]);
    rec.wait_history("ServiceFence", "shop", "web", &[learned; 3]);

    // 6. Changes, then a rollback that undoes them.
    let before = rec.settle();
    eprintln!("rollback target: position {before}");
    rec.apply("cfg-v3.yaml", &configmaps("3", 0..8));
    rec.client(&["delete", "svc", "web", "-n", "app"]);
    rec.apply(
        "tenant-experiment.yaml",
        "apiVersion: mesh.megaease.com/v1alpha1\nkind: Tenant\nmetadata: {name: takeaway}\nspec: {description: an experiment}\n",
    );
    rec.register("order", "order-9", "10.0.9.9", "canary");
    rec.accesslog(&[call("10.2.0.1", "ext-10")]);
    rec.wait_history("ServiceFence", "bookinfo", "productpage", &[learned; 16]);
    rec.client(&["rollback", "--to", &before.to_string(), "--dry-run"]);
    rec.beat("order", "order-9", false);
    let done = rec.client(&[
        "rollback",
        "--to",
        &before.to_string(),
        "--reason",
        "undo the experiment",
    ]);
    assert!(done.contains("rolled back"), "{done}");
    let cfg = "/api/v1/resources/cm/cfg-00?namespace=app";
    let cfg = rec.http("GET", cfg, None).1;
    assert_eq!(cfg["data"]["version"], "2", "{cfg}");

    // 7. Life after the rollback.
    rec.apply("cfg-v4.yaml", &configmaps("4", 0..6));
    rec.apply(
        "cfg-30.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg-30, namespace: app}\ndata: {after: rollback}\n",
    );
    rec.client(&["delete", "deployment", "web", "-n", "app"]);
    for id in ["fraud-1", "fraud-2"] {
        let path = format!("/api/v1/registry/instances/fraud/{id}");
        let (code, body) = rec.http("DELETE", &path, None);
        assert_eq!(code, 200, "{body}");
        rec.beat("fraud", id, false);
    }
    // EaseMesh's paths (`meshplane delete service|tenant` reads their empty answer as an error).
    for path in ["/apis/v2/mesh/services/fraud", "/apis/v2/mesh/tenants/bank"] {
        let (code, body) = rec.http("DELETE", path, None);
        assert_eq!(code, 200, "{path}: {body}");
    }
    rec.register("delivery", "delivery-5", "10.0.2.5", "v1");
    rec.accesslog(&[call("10.2.0.1", "ext-11"), call("10.1.0.5", "db")]);
    rec.wait_history("ServiceFence", "bookinfo", "productpage", &[learned; 17]);
    rec.wait_history("ServiceFence", "shop", "web", &[learned; 4]);
    // The cluster changes: two pods go, one comes, the Endpoints follow, the namespace relabelled.
    let gone = [WEB_PODS - 2, WEB_PODS - 1].map(|i| format!("web-6b7f9-{i}"));
    for name in &gone {
        api.delete(&format!("/api/v1/namespaces/shop/pods/{name}"));
    }
    let new = format!("web-6b7f9-{WEB_PODS}");
    let new_ip = format!("10.1.0.{}", WEB_PODS + 1);
    let owner = ("ReplicaSet", "web-6b7f9");
    let path = format!("/api/v1/namespaces/shop/pods/{new}");
    api.put(&path, pod(&new, "web", owner, "node-1", Some(&new_ip)));
    let ips: Vec<String> = (1..=WEB_PODS - 2)
        .map(|i| format!("10.1.0.{i}"))
        .chain([new_ip])
        .collect();
    put_endpoints(&api, "web", &ips);
    api.put(
        "/api/v1/namespaces/shop",
        json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "shop", "labels": {"team": "shop", "tier": "front"}},
            "status": {"phase": "Active"}}),
    );
    for name in &gone {
        rec.wait_history("Pod", "shop", name, &["cluster.object_gone"]);
    }
    let observed = "cluster.object_observed";
    rec.wait_history("Pod", "shop", &new, &[observed]);
    rec.wait_history("Endpoints", "shop", "web", &[observed; 2]);
    rec.wait_history("Namespace", "", "shop", &[observed; 2]);

    // Stop while every live instance still beats.
    let end = rec.settle();
    eprintln!("log head before stopping: {end}");
    let mut child = rec.child.take().unwrap();
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    beater.join().unwrap();
    assert!(
        status.success(),
        "{status}:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );

    // Export, replay, check, write.
    std::fs::create_dir_all(root.join("tests/fixtures/recorded")).unwrap();
    let fixture = root.join(FIXTURE);
    rec.cli(&[
        "log",
        "export",
        "--data",
        data.to_str().unwrap(),
        "-o",
        fixture.to_str().unwrap(),
    ])
    .ok();
    let replay = |dir: &Path, args: &[&str]| {
        let mut command = rec.command();
        command.current_dir(dir).args(args);
        rec.sandbox.run_with(&mut command, None).ok().to_string()
    };
    let report = replay(&root, &["replay", "--log", FIXTURE]);
    assert_eq!(
        report,
        replay(&root, &["replay", "--log", FIXTURE]),
        "deterministic"
    );
    let digest = replay(
        &root,
        &["replay", "--data", data.to_str().unwrap(), "--digest"],
    );
    assert!(report.ends_with(&digest), "{report}\n---\n{digest}");
    std::fs::write(root.join(REPORT), &report).unwrap();

    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for line in std::fs::read_to_string(&fixture).unwrap().lines() {
        let event: Value = serde_json::from_str(line).unwrap();
        *counts
            .entry(event["event_type"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    println!("{report}");
    for (kind, n) in &counts {
        println!("{n:5} {kind}");
    }
    println!("{:5} events", counts.values().sum::<usize>());
    // Every type, as many times as the run above makes it (a different count means a stall
    // turned a live instance silent, or the run changed: update this table with it).
    let expected: BTreeMap<String, usize> = [
        ("cluster.object_gone", 2),
        ("cluster.object_observed", 70),
        ("fence.dependency_forgotten", 18),
        ("fence.dependency_idle", 18),
        ("fence.dependency_learned", 25),
        ("fence.dependency_seen", 4),
        ("fence.host_deadline_passed", 1),
        ("instance.brought_online", 1),
        ("instance.deregistered", 3),
        ("instance.expired", 1),
        ("instance.out_of_service", 3),
        ("instance.recovered", 2),
        ("instance.registered", 19),
        ("instance.taken_offline", 1),
        ("mesh.rolled_back", 1),
        ("mesh_controller.applied", 1),
        ("resource.applied", 93),
        ("resource.deleted", 4),
        ("service.applied", 6),
        ("service.deleted", 1),
        ("tenant.applied", 4),
        ("tenant.deleted", 1),
    ]
    .into_iter()
    .map(|(t, n)| (t.to_string(), n))
    .collect();
    assert_eq!(counts, expected);
    assert!(
        report.contains(&format!("\nevents folded {end}\n")),
        "events were appended while the daemon stopped:\n{report}"
    );
}
