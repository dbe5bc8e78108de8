//! Observation benchmark (issue 5): "Observation of 10,000 pods in the initial list turned into
//! events in ≤ 2 s, with memory for the reflector stores ≤ 200 MB."
//!
//! `cargo bench -p adapters --bench kube_observe`. Knob: `MESHPLANE_BENCH_PODS` (default
//! 10000).
//!
//! The real watcher (`observe::spawn_watchers`, kube-runtime's `watcher` over a kube client)
//! lists Pods from the scripted API server (`tests/support/kube_mock.rs`), which serves
//! pre-encoded pages of 500 realistic Pods (~4-5 KB each: containers, env, probes, volumes,
//! managedFields, status conditions) from the same actix thread. The dispatcher records into a
//! real redb log in a temp dir (fsync per commit, like the daemon).
//!
//! 1. **initial list**: wall time from starting the watcher to every Pod's event durable and
//!    folded (the `Relisted` that closes the list executed); RSS before, after and peak; the
//!    size of the reduced state (the observed-cluster concept's state is the reflector store).
//! 2. **relist**: the watch answered with `410 Gone`; the runtime lists the same unchanged
//!    Pods again. Time from the first list request to the relist done (the runtime's backoff
//!    before it is not counted), and events appended (must be 0).
//! 3. **baselines**, same run: decoding the pages to `DynamicObject` only; decoding and
//!    reducing; executing the pre-reduced observations (commands of 500, as the watcher sends
//!    them) into a fresh redb log.

// Benchmarks measure wall-clock time.
#![allow(clippy::disallowed_methods)]

#[path = "../tests/support/kube_mock.rs"]
mod kube_mock;

#[path = "common/machine.rs"]
mod machine;

use machine::{describe, loadavg, reset_peak, rss_mib};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

// The daemon runs on mimalloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use actors::cluster::{ClusterCommand, Observation};
use actors::MeshCommand;
use adapters::daemon::start_host;
use adapters::kube::kinds::ApiKind;
use adapters::kube::observe;
use adapters::metrics::Metrics;
use adapters::storage::{open_store, StoreKind};
use bytes::Bytes;
use http::Method;
use kube::api::DynamicObject;
use kube::core::ObjectList;
use kube_mock::ApiServer;
use serde_json::{json, Value};

/// The kind this benchmark watches.
const POD: ApiKind = ApiKind::new(&actors::cluster::kinds::POD);

const PODS: &str = "/api/v1/pods";
const PAGE: usize = observe::PAGE_SIZE as usize;
const TIME_TARGET_S: f64 = 2.0;
const MEMORY_TARGET_MB: f64 = 200.0;

fn main() {
    let pods: usize = std::env::var("MESHPLANE_BENCH_PODS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    println!("kube_observe benchmark (issue 5)");
    println!("machine: {}", describe());
    let pages = build_pages(pods);
    // Let the allocator return the memory of the JSON trees the pages were built from.
    std::thread::sleep(Duration::from_millis(500));
    let bytes: usize = pages.iter().map(Bytes::len).sum();
    println!(
        "{pods} Pods in {} pages of {PAGE}: {:.1} MB of JSON, {:.0} B per Pod",
        pages.len(),
        bytes as f64 / 1e6,
        bytes as f64 / pods as f64
    );
    let system = actix_rt::System::new();
    system.block_on(async move {
        observe_and_relist(&pages, pods).await;
        baselines(&pages).await;
    });
    println!("load average at the end: {}", loadavg());
}

// ---------------------------------------------------------------------------------------------
// 1 and 2: the watcher.

async fn observe_and_relist(pages: &[Bytes], pods: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open_store(&dir.path().join("data"), StoreKind::Redb).expect("redb log");
    let metrics = Arc::new(Metrics::default());
    let host = start_host(store.clone(), metrics.clone(), None).expect("host");
    let dispatcher = host.dispatcher.clone();
    let (client, mut server) = kube_mock::pair();
    server.wait = Duration::from_secs(60);

    println!("1. initial list of {pods} Pods → events (redb, durable)");
    let rss_before = reset_peak();
    let cpu_before = process_cpu();
    let started = Instant::now();
    let tasks = observe::spawn_watchers(client, dispatcher.clone(), metrics.clone(), &[POD]);
    serve_list(&mut server, pages).await;
    let watch = server.expect(Method::GET, PODS).await;
    watch.assert_query("watch", "true");
    until(&metrics.kube_relists, 1).await;
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = process_cpu() - cpu_before;
    let (rss_after, peak) = rss_mib();
    let appended = store.stream_version("cluster/Pod").expect("stream version");
    let (objects, state_bytes, body_bytes) = dispatcher
        .read::<actors::cluster::Cluster, _>(|s, _| {
            let mut total = 0usize;
            let mut bodies = 0usize;
            for (key, o) in s.of_kind("Pod") {
                bodies += o.body.len();
                total += key.kind.len() + key.namespace.len() + key.name.len();
                total += o.api_version.len() + o.uid.len() + o.body.len();
                total += o
                    .labels
                    .iter()
                    .map(|(k, v)| k.len() + v.len())
                    .sum::<usize>();
                total += o
                    .annotations
                    .iter()
                    .map(|(k, v)| k.len() + v.len())
                    .sum::<usize>();
                total += o
                    .owners
                    .iter()
                    .map(|w| w.api_version.len() + w.kind.len() + w.name.len() + w.uid.len())
                    .sum::<usize>();
            }
            (s.of_kind("Pod").count(), total, bodies)
        })
        .await
        .expect("read the state");
    assert_eq!(objects, pods, "every Pod observed");
    assert_eq!(appended, pods as u64, "one event per Pod");
    assert_eq!(count(&metrics.kube_observed_events), pods as u64);
    println!(
        "   {elapsed:.3} s wall ({:.0} Pods/s), {cpu:.2} s CPU (all threads); {appended} events",
        pods as f64 / elapsed
    );
    println!(
        "   target ≤ {TIME_TARGET_S} s: {}",
        verdict(elapsed <= TIME_TARGET_S)
    );
    let grown = rss_after - rss_before;
    let peak_grown = peak - rss_before;
    println!(
        "   RSS before {rss_before:.1} MiB (the pre-encoded pages included), after {rss_after:.1} MiB (+{grown:.1}), peak {peak:.1} MiB (+{peak_grown:.1})"
    );
    println!(
        "   reduced state: {objects} objects, {:.2} MB of strings ({:.0} B per Pod, body {:.0} B)",
        state_bytes as f64 / 1e6,
        state_bytes as f64 / objects as f64,
        body_bytes as f64 / objects as f64
    );
    println!(
        "   memory target ≤ {MEMORY_TARGET_MB} MB (peak growth {:.1} MB): {}",
        peak_grown * 1.048_576,
        verdict(peak_grown * 1.048_576 <= MEMORY_TARGET_MB)
    );

    println!("2. relist of the same {pods} unchanged Pods (watch answered 410 Gone)");
    let head = store.head();
    let events_before = count(&metrics.kube_observed_events);
    watch.respond_bytes(
        http::StatusCode::OK,
        kube_mock::watch_lines(&[kube_mock::watch_error(410)]),
    );
    let relist_started = serve_list(&mut server, pages).await;
    let _watch = server.expect(Method::GET, PODS).await;
    until(&metrics.kube_relists, 2).await;
    let relist = relist_started.elapsed().as_secs_f64();
    let appended = store.head() - head;
    assert_eq!(appended, 0, "an unchanged relist appends nothing");
    assert_eq!(count(&metrics.kube_observed_events), events_before);
    println!(
        "   {relist:.3} s from the first list request ({:.0} Pods/s), {appended} events appended",
        pods as f64 / relist
    );
    rss_line("after the relist");
    tasks.iter().for_each(|t| t.abort());
}

/// Answer the list requests for every page in turn (asserting `limit` and `continue`);
/// returns when the first request arrived.
async fn serve_list(server: &mut ApiServer, pages: &[Bytes]) -> Instant {
    let mut first = None;
    for (i, page) in pages.iter().enumerate() {
        let request = server.expect(Method::GET, PODS).await;
        first.get_or_insert_with(Instant::now);
        request.assert_query("limit", &PAGE.to_string());
        let token = (i > 0).then(|| format!("page-{i}"));
        assert_eq!(request.query.get("continue"), token.as_ref(), "page {i}");
        request.respond_shared(page.clone());
    }
    first.expect("at least one page")
}

/// Wait until a counter reaches `value` (polled every millisecond).
async fn until(counter: &AtomicU64, value: u64) {
    while count(counter) < value {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn count(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

// ---------------------------------------------------------------------------------------------
// 3: baselines.

async fn baselines(pages: &[Bytes]) {
    println!("3. baselines (same pages, same run)");
    let started = Instant::now();
    let mut decoded = 0;
    for page in pages {
        let list: ObjectList<DynamicObject> = serde_json::from_slice(page).expect("a PodList");
        decoded += list.items.len();
    }
    let decode = started.elapsed().as_secs_f64();
    println!("   decode the pages to DynamicObject only: {decode:.3} s ({decoded} objects)");

    let started = Instant::now();
    let mut observations: Vec<Observation> = Vec::with_capacity(decoded);
    for page in pages {
        let list: ObjectList<DynamicObject> = serde_json::from_slice(page).expect("a PodList");
        observations.extend(
            list.items
                .iter()
                .filter_map(|o| observe::observation(&POD, o)),
        );
    }
    let reduce = started.elapsed().as_secs_f64();
    println!(
        "   decode and reduce: {reduce:.3} s (reduction {:.3} s)",
        reduce - decode
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let store = open_store(&dir.path().join("data"), StoreKind::Redb).expect("redb log");
    let host = start_host(store.clone(), Arc::new(Metrics::default()), None).expect("host");
    let started = Instant::now();
    for chunk in observations.chunks(PAGE) {
        host.dispatcher
            .execute(MeshCommand::Cluster(ClusterCommand::Observe {
                kind: "Pod".into(),
                objects: chunk.to_vec(),
            }))
            .await
            .expect("recorded");
    }
    let execute = started.elapsed().as_secs_f64();
    assert_eq!(store.head(), observations.len() as u64);
    println!(
        "   execute the pre-reduced observations only (commands of {PAGE}, redb): {execute:.3} s"
    );
    println!(
        "   decode + reduce + execute, back to back: {:.3} s",
        reduce + execute
    );
}

// ---------------------------------------------------------------------------------------------
// The Pods.

/// Pages of a PodList, each pre-encoded, chained by `continue` tokens `page-1`, `page-2`, …
fn build_pages(pods: usize) -> Vec<Bytes> {
    let pages = pods.div_ceil(PAGE);
    (0..pages)
        .map(|p| {
            let items: Vec<Value> = (p * PAGE..((p + 1) * PAGE).min(pods)).map(pod).collect();
            let token = (p + 1 < pages).then(|| format!("page-{}", p + 1));
            let page = kube_mock::list_page("PodList", "v1", "123456", token.as_deref(), items);
            Bytes::from(serde_json::to_vec(&page).expect("json"))
        })
        .collect()
}

/// Pod `i`: a Deployment's replica with an Istio sidecar, as the API server returns it.
fn pod(i: usize) -> Value {
    let app = format!("app-{}", i % 400);
    let namespace = format!("team-{}", i % 50);
    let hash = format!("{:08x}", (i / 25) * 2_654_435_761 % 0xffff_ffff);
    let name = format!("{app}-{hash}-{:05x}", i);
    let ip = format!("10.{}.{}.{}", 1 + i / 65_536, (i / 256) % 256, i % 256);
    let node = format!("node-{}", i % 100);
    let uid = format!("{:08x}-0000-4000-8000-{:012x}", i, i * 7919);
    let time = "2026-11-24T12:00:00Z";
    let env: Vec<Value> = (0..4)
        .map(|e| json!({"name": format!("SETTING_{e}"), "value": format!("value-{e}-{app}")}))
        .collect();
    let conditions: Vec<Value> = [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled",
    ]
    .iter()
    .map(
        |c| json!({"type": c, "status": "True", "lastProbeTime": null, "lastTransitionTime": time}),
    )
    .collect();
    json!({
        "metadata": {
            "name": name, "generateName": format!("{app}-{hash}-"), "namespace": namespace,
            "uid": uid, "resourceVersion": format!("{}", 100_000 + i),
            "creationTimestamp": time,
            "labels": {"app": app, "version": "v1", "pod-template-hash": hash,
                "security.istio.io/tlsMode": "istio", "service.istio.io/canonical-name": app},
            "annotations": {
                "kubectl.kubernetes.io/default-container": "app",
                "prometheus.io/scrape": "true", "prometheus.io/port": "15020",
                "sidecar.istio.io/status": "{\"initContainers\":[\"istio-init\"],\"containers\":[\"istio-proxy\"],\"volumes\":[\"istio-envoy\",\"istio-data\",\"istio-podinfo\",\"istio-token\"],\"imagePullSecrets\":null}",
            },
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "name": format!("{app}-{hash}"), "uid": format!("rs-{uid}"),
                "controller": true, "blockOwnerDeletion": true}],
            "managedFields": [
                {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1",
                 "time": time, "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {
                    "f:generateName": {}, "f:labels": {".": {}, "f:app": {}, "f:pod-template-hash": {}},
                    "f:ownerReferences": {".": {}, "k:{\"uid\":\"x\"}": {}}},}},
                {"manager": "kubelet", "operation": "Update", "apiVersion": "v1", "time": time,
                 "fieldsType": "FieldsV1", "subresource": "status", "fieldsV1": {"f:status": {
                    "f:conditions": {"k:{\"type\":\"Ready\"}": {".": {}, "f:lastProbeTime": {},
                        "f:lastTransitionTime": {}, "f:status": {}, "f:type": {}}},
                    "f:containerStatuses": {}, "f:hostIP": {}, "f:phase": {}, "f:podIP": {},
                    "f:podIPs": {".": {}, "k:{\"ip\":\"x\"}": {".": {}, "f:ip": {}}}, "f:startTime": {}}}},
            ],
        },
        "spec": {
            "nodeName": node, "serviceAccountName": app, "restartPolicy": "Always",
            "dnsPolicy": "ClusterFirst", "schedulerName": "default-scheduler",
            "terminationGracePeriodSeconds": 30, "enableServiceLinks": true,
            "securityContext": {"fsGroup": 1337},
            "containers": [
                {"name": "app", "image": format!("registry.local/{app}:1.4.{}", i % 7),
                 "imagePullPolicy": "IfNotPresent", "env": env,
                 "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
                 "resources": {"limits": {"cpu": "500m", "memory": "256Mi"},
                    "requests": {"cpu": "100m", "memory": "128Mi"}},
                 "volumeMounts": [{"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}],
                 "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"},
                {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.24.2",
                 "args": ["proxy", "sidecar", "--domain", "$(POD_NAMESPACE).svc.cluster.local",
                    "--proxyLogLevel=warning", "--proxyComponentLogLevel=misc:error", "--log_output_level=default:info"],
                 "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
                    {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}},
                    {"name": "ISTIO_META_WORKLOAD_NAME", "value": app}],
                 "resources": {"limits": {"cpu": "2", "memory": "1Gi"}, "requests": {"cpu": "10m", "memory": "40Mi"}},
                 "volumeMounts": [{"name": "istio-envoy", "mountPath": "/etc/istio/proxy"},
                    {"name": "istio-token", "mountPath": "/var/run/secrets/tokens"}]},
            ],
            "volumes": [
                {"name": "istio-envoy", "emptyDir": {"medium": "Memory"}},
                {"name": "istio-token", "projected": {"sources": [{"serviceAccountToken": {
                    "audience": "istio-ca", "expirationSeconds": 43200, "path": "istio-token"}}]}},
                {"name": "kube-api-access", "projected": {"defaultMode": 420, "sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}]}},
            ],
        },
        "status": {
            "phase": "Running", "hostIP": format!("192.168.0.{}", i % 100 + 2),
            "podIP": ip, "podIPs": [{"ip": ip}], "startTime": time, "qosClass": "Burstable",
            "conditions": conditions,
            "containerStatuses": [
                {"name": "app", "ready": true, "restartCount": 0, "started": true,
                 "image": format!("registry.local/{app}:1.4.{}", i % 7),
                 "imageID": format!("registry.local/{app}@sha256:{:064x}", i),
                 "containerID": format!("containerd://{:064x}", i * 31),
                 "state": {"running": {"startedAt": time}}},
                {"name": "istio-proxy", "ready": true, "restartCount": 0, "started": true,
                 "image": "docker.io/istio/proxyv2:1.24.2",
                 "imageID": "docker.io/istio/proxyv2@sha256:0000000000000000000000000000000000000000000000000000000000000001",
                 "containerID": format!("containerd://{:064x}", i * 37),
                 "state": {"running": {"startedAt": time}}},
            ],
        },
    })
}

// ---------------------------------------------------------------------------------------------
// Measurement helpers.

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "NOT met"
    }
}

fn rss_line(what: &str) {
    let (rss, hwm) = rss_mib();
    println!("   RSS {what}: {rss:.1} MiB, peak {hwm:.1} MiB");
}

/// utime + stime of this process, in seconds (clock ticks of 1/100 s).
fn process_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}
