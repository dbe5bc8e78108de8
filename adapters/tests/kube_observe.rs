//! The cluster watchers against a scripted API server (tower-test), recording into a real
//! dispatcher over an in-memory log: the paged initial list and the watch that follows it
//! (paths and queries), reduced bodies in the log, an update that changes nothing the
//! reduction keeps appending nothing, a delete, `410 Gone` relists that append nothing for
//! unchanged objects and exactly one `object_gone` for a vanished one, a list failing halfway
//! that removes nothing, and meshplane's own projections left unobserved.

#[path = "support/kube_mock.rs"]
mod kube_mock;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actors::cluster::{ClusterCommand, Observation};
use actors::MeshCommand;
use adapters::daemon::start_host;
use adapters::host::Dispatcher;
use adapters::kube::kinds::ApiKind;
use adapters::kube::observe::{self, canonical_json};
use adapters::metrics::Metrics;
use events::backend::memory::MemoryBackend;
use events::schema::ResourceKey;
use events::{Event, EventStore, Log};
use http::Method;
use kube_mock::{ApiServer, Exchange};
use serde_json::{json, Value};

const POD: ApiKind = ApiKind::new(&actors::cluster::kinds::POD);
const SERVICE: ApiKind = ApiKind::new(&actors::resource::kinds::SERVICE);

const PODS: &str = "/api/v1/pods";
const SERVICES: &str = "/api/v1/services";

/// A running watcher of some kinds over a fresh host; aborted when dropped.
struct Watching {
    dispatcher: Dispatcher,
    store: Arc<dyn EventStore>,
    metrics: Arc<Metrics>,
    server: ApiServer,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Watching {
    fn drop(&mut self) {
        self.tasks.iter().for_each(|t| t.abort());
    }
}

fn host() -> (Dispatcher, Arc<dyn EventStore>) {
    let store: Arc<dyn EventStore> = Arc::new(Log::open(MemoryBackend::new()).unwrap());
    let dispatcher = start_host(store.clone(), Arc::new(Metrics::default()), None)
        .unwrap()
        .dispatcher;
    (dispatcher, store)
}

fn watch(dispatcher: Dispatcher, store: Arc<dyn EventStore>, kinds: &[ApiKind]) -> Watching {
    let (client, server) = kube_mock::pair();
    let metrics = Arc::new(Metrics::default());
    let tasks = observe::spawn_watchers(client, dispatcher.clone(), metrics.clone(), kinds);
    Watching {
        dispatcher,
        store,
        metrics,
        server,
        tasks,
    }
}

/// A Pod as the API server returns it: containers, env, volumes, conditions, managedFields.
fn pod(name: &str, resource_version: &str, ip: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "namespace": "shop", "uid": format!("uid-{name}"),
            "resourceVersion": resource_version,
            "creationTimestamp": "2026-11-24T12:00:00Z",
            "labels": {"app": "web", "pod-template-hash": "7d4b9"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "name": "web-7d4b9", "uid": "rs-1", "controller": true, "blockOwnerDeletion": true}],
            "managedFields": [{"manager": "kubelet", "operation": "Update",
                "time": format!("2026-11-24T12:00:{:02}Z", resource_version.len())}],
        },
        "spec": {
            "nodeName": "edge-1",
            "containers": [{"name": "web", "image": "registry.local/web:1.4.2",
                "env": [{"name": "MODE", "value": "prod"}],
                "volumeMounts": [{"name": "token", "mountPath": "/var/run/secrets"}]}],
            "volumes": [{"name": "token", "projected": {"sources": []}}],
        },
        "status": {
            "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": "True",
                "lastTransitionTime": format!("2026-11-24T12:0{}:00Z", resource_version.len())}],
            "containerStatuses": [{"name": "web", "ready": true, "restartCount": 0}],
        },
    })
}

/// The same Pod with a new resourceVersion and new server bookkeeping, nothing else changed.
fn touched(pod: &Value, resource_version: &str) -> Value {
    let mut pod = pod.clone();
    pod["metadata"]["resourceVersion"] = json!(resource_version);
    pod["metadata"]["managedFields"][0]["time"] = json!("2026-11-24T13:00:00Z");
    pod["status"]["conditions"][0]["lastTransitionTime"] = json!("2026-11-24T13:00:00Z");
    pod
}

fn count(metric: &AtomicU64) -> u64 {
    metric.load(Ordering::Relaxed)
}

/// Wait (at most 10 s) until `done` holds.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let waited = tokio::time::timeout(Duration::from_secs(10), async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "timed out waiting until {what}");
}

/// Every event of one kind's stream, in order.
fn log_of(store: &Arc<dyn EventStore>, kind: &str) -> Vec<Event> {
    store
        .read_stream(&format!("cluster/{kind}"), 1, 100_000)
        .unwrap()
        .iter()
        .map(|e| e.decode().unwrap())
        .collect()
}

/// The keys of the `object_gone` events of one kind's stream.
fn gone_keys(store: &Arc<dyn EventStore>, kind: &str) -> Vec<ResourceKey> {
    log_of(store, kind)
        .into_iter()
        .filter_map(|e| match e {
            Event::ObjectGone(g) => Some(g.key),
            _ => None,
        })
        .collect()
}

fn pod_key(name: &str) -> ResourceKey {
    ResourceKey::new("Pod", "shop", name)
}

/// The next list request: a list (never a watch) of `path`, `limit=500`, with `continue` when
/// it asks for a later page.
async fn expect_list(server: &mut ApiServer, path: &str, continue_token: Option<&str>) -> Exchange {
    let list = server.expect(Method::GET, path).await;
    list.assert_query("limit", "500");
    assert!(!list.query.contains_key("watch"), "{:?}", list.query);
    assert_eq!(
        list.query.get("continue").map(String::as_str),
        continue_token,
        "{:?}",
        list.query
    );
    // The most recent state (a quorum read), not whatever a cache holds.
    assert!(
        !list.query.contains_key("resourceVersion"),
        "{:?}",
        list.query
    );
    list
}

/// The next watch request: `path` watched from `resource_version`, with bookmarks.
async fn expect_watch(server: &mut ApiServer, path: &str, resource_version: &str) -> Exchange {
    let watch = server.expect(Method::GET, path).await;
    watch
        .assert_query("watch", "true")
        .assert_query("resourceVersion", resource_version)
        .assert_query("allowWatchBookmarks", "true")
        .assert_query("timeoutSeconds", "290");
    assert!(!watch.query.contains_key("limit"), "{:?}", watch.query);
    assert!(
        !watch.query.contains_key("sendInitialEvents"),
        "{:?}",
        watch.query
    );
    watch
}

fn pod_page(resource_version: &str, continue_token: Option<&str>, items: Vec<Value>) -> Value {
    kube_mock::list_page("PodList", "v1", resource_version, continue_token, items)
}

/// Answer the initial list of Pods in two pages: `first` then `second` (at resourceVersion
/// 100), and return the watch request that follows it.
async fn initial_pod_list(w: &mut Watching, first: Vec<Value>, second: Vec<Value>) -> Exchange {
    expect_list(&mut w.server, PODS, None)
        .await
        .ok(&pod_page("100", Some("page-2"), first));
    expect_list(&mut w.server, PODS, Some("page-2"))
        .await
        .ok(&pod_page("100", None, second));
    expect_watch(&mut w.server, PODS, "100").await
}

#[actix_rt::test]
async fn the_initial_list_is_recorded_reduced_and_watch_changes_only_when_reduced_content_changes()
{
    let (dispatcher, store) = host();
    let mut w = watch(dispatcher, store, &[POD]);
    let (a, b, c) = (
        pod("web-a", "90", "10.0.3.1"),
        pod("web-b", "91", "10.0.3.2"),
        pod("web-c", "92", "10.0.3.3"),
    );
    let watch = initial_pod_list(&mut w, vec![a.clone(), b.clone()], vec![c.clone()]).await;
    until("the list is recorded", || {
        count(&w.metrics.kube_relists) == 1
    })
    .await;

    let recorded = log_of(&w.store, "Pod");
    assert_eq!(recorded.len(), 3, "{recorded:?}");
    let Event::ObjectObserved(first) = &recorded[0] else {
        panic!("{:?}", recorded[0])
    };
    assert_eq!(first.key, pod_key("web-a"));
    assert_eq!(
        (first.api_version.as_str(), first.uid.as_str()),
        ("v1", "uid-web-a")
    );
    assert_eq!(first.labels["app"], "web");
    assert_eq!(first.owners[0].kind, "ReplicaSet");
    assert!(first.owners[0].controller);
    let body: Value = serde_json::from_str(&first.body).unwrap();
    assert_eq!(
        body,
        json!({"spec": {"nodeName": "edge-1"},
            "status": {"phase": "Running", "podIP": "10.0.3.1", "podIPs": [{"ip": "10.0.3.1"}]}})
    );
    assert_eq!(first.body, canonical_json(&body));
    for absent in [
        "containers",
        "managedFields",
        "resourceVersion",
        "conditions",
        "creationTimestamp",
    ] {
        assert!(!first.body.contains(absent), "{absent} in {}", first.body);
    }
    assert_eq!(count(&w.metrics.kube_observations), 3);
    assert_eq!(count(&w.metrics.kube_observed_events), 3);
    let observed = w
        .dispatcher
        .read::<actors::cluster::Cluster, _>(|s, _| s.of_kind("Pod").count())
        .await
        .unwrap();
    assert_eq!(observed, 3, "the concept's state is the reflected store");

    // Over the watch: web-a only touched by the server (resourceVersion, managedFields,
    // condition time), web-b moved to a new IP, web-c deleted.
    let mut moved = touched(&b, "102");
    moved["status"]["podIP"] = json!("10.0.3.9");
    moved["status"]["podIPs"] = json!([{"ip": "10.0.3.9"}]);
    watch.respond_bytes(
        http::StatusCode::OK,
        kube_mock::watch_lines(&[
            kube_mock::watch_event("MODIFIED", touched(&a, "101")),
            kube_mock::watch_event("MODIFIED", moved),
            kube_mock::watch_event("DELETED", touched(&c, "103")),
        ]),
    );
    // The watch stream ended: it is resumed from the last version seen, without a list.
    let _watch = expect_watch(&mut w.server, PODS, "103").await;
    until("the watch events are recorded", || {
        count(&w.metrics.kube_observations) == 5 && count(&w.metrics.kube_observed_events) == 5
    })
    .await;
    let recorded = log_of(&w.store, "Pod");
    match &recorded[3] {
        Event::ObjectObserved(e) => {
            assert_eq!(e.key, pod_key("web-b"));
            assert!(e.body.contains("10.0.3.9"), "{}", e.body);
        }
        other => panic!("{other:?}"),
    }
    match &recorded[4] {
        Event::ObjectGone(e) => {
            assert_eq!((&e.key, e.uid.as_str()), (&pod_key("web-c"), "uid-web-c"))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(count(&w.metrics.kube_observed_events), 5);
    assert_eq!(count(&w.metrics.kube_relists), 1);
    assert_eq!(count(&w.metrics.kube_watch_errors), 0);
    w.server.expect_silence(Duration::from_millis(100)).await;
}

#[actix_rt::test]
async fn a_410_gone_relists_appending_nothing_for_unchanged_objects_and_one_gone_for_a_vanished_one(
) {
    let (dispatcher, store) = host();
    let mut w = watch(dispatcher, store, &[POD]);
    let (a, b) = (
        pod("web-a", "90", "10.0.3.1"),
        pod("web-b", "91", "10.0.3.2"),
    );
    let watch = initial_pod_list(&mut w, vec![a.clone()], vec![b.clone()]).await;
    until("the list is recorded", || {
        count(&w.metrics.kube_relists) == 1
    })
    .await;
    assert_eq!(log_of(&w.store, "Pod").len(), 2);

    // The watch's version is too old: the runtime lists everything again (after its backoff).
    // Same objects at newer resource versions: no event.
    watch.respond_bytes(
        http::StatusCode::OK,
        kube_mock::watch_lines(&[kube_mock::watch_error(410)]),
    );
    expect_list(&mut w.server, PODS, None).await.ok(&pod_page(
        "200",
        None,
        vec![touched(&a, "150"), touched(&b, "160")],
    ));
    let watch = expect_watch(&mut w.server, PODS, "200").await;
    until("the relist is recorded", || {
        count(&w.metrics.kube_relists) == 2
    })
    .await;
    assert_eq!(count(&w.metrics.kube_watch_errors), 1);
    assert_eq!(
        log_of(&w.store, "Pod").len(),
        2,
        "an unchanged relist appends nothing"
    );
    assert_eq!(count(&w.metrics.kube_observations), 4);
    assert_eq!(count(&w.metrics.kube_observed_events), 2);

    // Again, and web-b was deleted while the watch was down (its delete never seen): exactly
    // one object_gone for it, nothing for web-a.
    watch.respond_bytes(
        http::StatusCode::OK,
        kube_mock::watch_lines(&[kube_mock::watch_error(410)]),
    );
    expect_list(&mut w.server, PODS, None).await.ok(&pod_page(
        "300",
        None,
        vec![touched(&a, "250")],
    ));
    let _watch = expect_watch(&mut w.server, PODS, "300").await;
    until("the second relist is recorded", || {
        count(&w.metrics.kube_relists) == 3
    })
    .await;
    let recorded = log_of(&w.store, "Pod");
    assert_eq!(recorded.len(), 3, "{recorded:?}");
    assert_eq!(gone_keys(&w.store, "Pod"), vec![pod_key("web-b")]);
    assert_eq!(count(&w.metrics.kube_watch_errors), 2);
    assert_eq!(count(&w.metrics.kube_observed_events), 3);
    let observed = w
        .dispatcher
        .read::<actors::cluster::Cluster, _>(|s, _| {
            s.of_kind("Pod").map(|(k, _)| k.clone()).collect::<Vec<_>>()
        })
        .await
        .unwrap();
    assert_eq!(observed, vec![pod_key("web-a")]);
}

/// What an earlier run of the daemon recorded: three Pods.
async fn recorded_before(dispatcher: &Dispatcher, pods: &[&Value]) {
    let objects: Vec<Observation> = pods
        .iter()
        .map(|p| {
            let object = serde_json::from_value((*p).clone()).unwrap();
            observe::observation(&POD, &object).unwrap()
        })
        .collect();
    dispatcher
        .execute(MeshCommand::Cluster(ClusterCommand::Observe {
            kind: "Pod".into(),
            objects,
        }))
        .await
        .unwrap();
}

#[actix_rt::test]
async fn a_list_failing_halfway_removes_nothing_and_the_complete_relist_does() {
    let (dispatcher, store) = host();
    let (a, b, c) = (
        pod("web-a", "90", "10.0.3.1"),
        pod("web-b", "91", "10.0.3.2"),
        pod("web-c", "92", "10.0.3.3"),
    );
    // A restart: the log already holds web-a, web-b and web-c.
    recorded_before(&dispatcher, &[&a, &b, &c]).await;
    let mut w = watch(dispatcher, store, &[POD]);

    // The first page has web-a only; the second page fails (web-b and web-c would be in it).
    expect_list(&mut w.server, PODS, None).await.ok(&pod_page(
        "100",
        Some("page-2"),
        vec![touched(&a, "95")],
    ));
    expect_list(&mut w.server, PODS, Some("page-2")).await.fail(
        500,
        "InternalError",
        "etcdserver: request timed out",
    );

    // The runtime starts the list over (after its backoff). Nothing was removed meanwhile.
    let retry = expect_list(&mut w.server, PODS, None).await;
    assert_eq!(count(&w.metrics.kube_watch_errors), 1);
    assert_eq!(count(&w.metrics.kube_relists), 0);
    assert!(gone_keys(&w.store, "Pod").is_empty());
    assert_eq!(
        log_of(&w.store, "Pod").len(),
        3,
        "unchanged web-a appends nothing"
    );

    // The complete list: web-c is no longer there.
    retry.ok(&pod_page("110", Some("page-2"), vec![touched(&a, "95")]));
    expect_list(&mut w.server, PODS, Some("page-2"))
        .await
        .ok(&pod_page("110", None, vec![touched(&b, "96")]));
    let _watch = expect_watch(&mut w.server, PODS, "110").await;
    until("the list is recorded", || {
        count(&w.metrics.kube_relists) == 1
    })
    .await;
    assert_eq!(gone_keys(&w.store, "Pod"), vec![pod_key("web-c")]);
    assert_eq!(log_of(&w.store, "Pod").len(), 4);
    assert_eq!(count(&w.metrics.kube_observations), 3);
    assert_eq!(count(&w.metrics.kube_observed_events), 1);
}

fn service(name: &str, resource_version: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": "shop", "uid": format!("uid-{name}"),
            "resourceVersion": resource_version, "labels": labels},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}],
            "clusterIP": "10.96.0.10"},
    })
}

#[actix_rt::test]
async fn meshplane_projections_are_not_observed() {
    let (dispatcher, store) = host();
    let mut w = watch(dispatcher, store, &[SERVICE]);
    let managed = json!({"app.kubernetes.io/managed-by": "meshplane"});
    let list = kube_mock::list_page(
        "ServiceList",
        "v1",
        "100",
        None,
        vec![
            service("web", "90", json!({"app": "web"})),
            service("web-grid", "91", managed.clone()),
        ],
    );
    expect_list(&mut w.server, SERVICES, None).await.ok(&list);
    let watch = expect_watch(&mut w.server, SERVICES, "100").await;
    until("the list is recorded", || {
        count(&w.metrics.kube_relists) == 1
    })
    .await;
    let recorded = log_of(&w.store, "Service");
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    let Event::ObjectObserved(web) = &recorded[0] else {
        panic!("{:?}", recorded[0])
    };
    assert_eq!(web.key, ResourceKey::new("Service", "shop", "web"));
    assert_eq!(
        serde_json::from_str::<Value>(&web.body).unwrap(),
        json!({"spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}],
            "clusterIP": "10.96.0.10"}})
    );
    assert_eq!(count(&w.metrics.kube_observations), 2);

    // An update of meshplane's own Service appends nothing; a Service meshplane takes over
    // stops being observed (one object_gone).
    watch.respond_bytes(
        http::StatusCode::OK,
        kube_mock::watch_lines(&[
            kube_mock::watch_event("MODIFIED", service("web-grid", "101", managed.clone())),
            kube_mock::watch_event("MODIFIED", service("web", "102", managed.clone())),
        ]),
    );
    let _watch = expect_watch(&mut w.server, SERVICES, "102").await;
    until("the updates are seen", || {
        count(&w.metrics.kube_observations) == 4
    })
    .await;
    until("web is gone", || {
        count(&w.metrics.kube_observed_events) == 2
    })
    .await;
    assert_eq!(log_of(&w.store, "Service").len(), 2);
    assert_eq!(
        gone_keys(&w.store, "Service"),
        vec![ResourceKey::new("Service", "shop", "web")]
    );
}
