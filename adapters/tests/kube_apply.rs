//! The Kubernetes applier against a scripted API server (tower-test), driven by a real
//! dispatcher over an in-memory log: what it sends for a fence (server-side apply of the
//! Sidecar, the status of a ServiceFence it does not own), that an unchanged pass and an
//! unchanged restart send nothing, deletion, a 409 retried with fresh state, a 500 backing off
//! with an Event, and no writes once the lease is lost.

// Timing the backoff needs the clock.
#![allow(clippy::disallowed_methods)]

#[path = "support/kube_mock.rs"]
mod kube_mock;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actors::cluster::{ClusterCommand, Observation};
use actors::fence::kinds as fence;
use actors::MeshCommand;
use adapters::daemon::start_host;
use adapters::host::Dispatcher;
use adapters::kube::apply::{Applier, ApplyConfig, SyncReport};
use adapters::kube::kinds::{self, ApiKind};
use adapters::kube::lease::Leadership;
use adapters::kube::project::project_once;
use adapters::metrics::Metrics;
use events::backend::memory::MemoryBackend;
use events::schema::ResourceKey;
use events::{EventStore, Log};
use http::Method;
use kube_mock::{ApiServer, Exchange};
use serde_json::{json, Value};

const SIDECARS: &str = "/apis/networking.istio.io/v1beta1/namespaces/shop/sidecars";
const FENCES: &str = "/apis/microservice.slime.io/v1alpha1/namespaces/shop/servicefences";
const FENCE_UID: &str = "3f1c6a0e-0000-4000-8000-00000000fe11";

fn config() -> ApplyConfig {
    ApplyConfig {
        concurrency: 4,
        backoff_base: Duration::from_millis(300),
        backoff_max: Duration::from_secs(5),
        list_page: 500,
    }
}

fn dispatcher(store: Arc<dyn EventStore>) -> Dispatcher {
    start_host(store, Arc::new(Metrics::default()), None)
        .unwrap()
        .dispatcher
}

fn memory() -> Arc<dyn EventStore> {
    Arc::new(Log::open(MemoryBackend::new()).unwrap())
}

/// A ServiceFence someone else wrote in the cluster, as the watcher reports it.
async fn observe_fence(dispatcher: &Dispatcher, hosts: &[&str]) {
    let host: BTreeMap<&str, Value> = hosts.iter().map(|h| (*h, json!({"stable": {}}))).collect();
    let body = json!({"spec": {"enable": true, "host": host}}).to_string();
    let observation = Observation {
        key: ResourceKey::new("ServiceFence", "shop", "web"),
        api_version: "microservice.slime.io/v1alpha1".into(),
        uid: FENCE_UID.into(),
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
        owners: Vec::new(),
        body,
    };
    dispatcher
        .execute(MeshCommand::Cluster(ClusterCommand::Observe {
            kind: "ServiceFence".into(),
            objects: vec![observation],
        }))
        .await
        .unwrap();
}

async fn fence_gone(dispatcher: &Dispatcher) {
    dispatcher
        .execute(MeshCommand::Cluster(ClusterCommand::Gone {
            kind: "ServiceFence".into(),
            keys: vec![ResourceKey::new("ServiceFence", "shop", "web")],
        }))
        .await
        .unwrap();
}

/// Run one pass in the background while the test plays the API server.
fn pass(
    dispatcher: &Dispatcher,
    mut applier: Applier,
) -> actix_rt::task::JoinHandle<(Applier, SyncReport)> {
    let dispatcher = dispatcher.clone();
    actix_rt::spawn(async move {
        let (report, _) = project_once(&dispatcher, &mut applier).await.unwrap();
        (applier, report)
    })
}

/// Answer the start-up listing of every kind meshplane writes: `objects` holds what the
/// cluster has, by collection path. Asserts the label selector (all ServiceFences are listed,
/// for their status).
async fn answer_listing(server: &mut ApiServer, objects: &BTreeMap<&str, Vec<Value>>) {
    for kind in kinds::written_kinds() {
        let path = kind.collection_path(None);
        let exchange = server.expect(Method::GET, &path).await;
        if kind.writes_status() {
            assert!(!exchange.query.contains_key("labelSelector"));
        } else {
            exchange.assert_query("labelSelector", "app.kubernetes.io/managed-by=meshplane");
        }
        let items = objects.get(path.as_str()).cloned().unwrap_or_default();
        exchange.ok(&kube_mock::list(
            &format!("{}List", kind.kind),
            kind.api_version(),
            "1",
            items,
        ));
    }
}

/// The status apply of the observed ServiceFence, which comes last in a first pass.
async fn answer_status(server: &mut ApiServer) {
    let status = server
        .expect(Method::PATCH, &format!("{FENCES}/web/status"))
        .await;
    assert_server_side_apply(&status, false);
    let body = status.body.clone();
    status.ok(&body);
}

fn assert_server_side_apply(exchange: &Exchange, force: bool) {
    assert_eq!(
        exchange.content_type.as_deref(),
        Some("application/apply-patch+yaml")
    );
    exchange.assert_query("fieldManager", "meshplane");
    if force {
        exchange.assert_query("force", "true");
    } else {
        assert!(
            !exchange.query.contains_key("force"),
            "{:?}",
            exchange.query
        );
    }
}

/// The Sidecar as the server stores it after an apply (server-set fields added).
fn stored(body: &Value) -> Value {
    let mut object = body.clone();
    object["metadata"]["uid"] = json!("sidecar-uid-1");
    object["metadata"]["resourceVersion"] = json!("42");
    object["metadata"]["creationTimestamp"] = json!("2026-11-24T12:00:00Z");
    object["metadata"]["managedFields"] = json!([{"manager": "meshplane", "operation": "Apply"}]);
    object
}

/// The first pass for the fence: the Sidecar it generates (force, owner reference with the
/// fence's uid), then the status of the observed ServiceFence (no force: meshplane does not own
/// it; statuses go last, after the objects they belong to).
/// Returns the Sidecar as the server stored it.
async fn first_pass(server: &mut ApiServer) -> Value {
    answer_listing(server, &BTreeMap::new()).await;
    let sidecar = server
        .expect(Method::PATCH, &format!("{SIDECARS}/web"))
        .await;
    assert_server_side_apply(&sidecar, true);
    let body = sidecar.body.clone();
    assert_eq!(body["apiVersion"], "networking.istio.io/v1beta1");
    assert_eq!(body["kind"], "Sidecar");
    assert_eq!(
        body["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "meshplane"
    );
    let owner = &body["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "ServiceFence");
    assert_eq!(owner["uid"], FENCE_UID);
    let hosts = body["spec"]["egress"][0]["hosts"].as_array().unwrap();
    assert!(
        hosts.contains(&json!("*/reviews.shop.svc.cluster.local")),
        "{hosts:?}"
    );
    let object = stored(&body);
    sidecar.ok(&object);

    let status = server
        .expect(Method::PATCH, &format!("{FENCES}/web/status"))
        .await;
    assert_server_side_apply(&status, false);
    assert_eq!(status.body["kind"], "ServiceFence");
    assert!(status.body.get("spec").is_none(), "{}", status.body);
    assert!(status.body["status"].is_object(), "{}", status.body);
    let body = status.body.clone();
    status.ok(&body);
    object
}

#[actix_rt::test]
async fn a_fence_is_applied_once_and_an_unchanged_pass_writes_nothing() {
    let dispatcher = dispatcher(memory());
    observe_fence(&dispatcher, &["reviews.shop.svc.cluster.local"]).await;
    let (client, mut server) = kube_mock::pair();
    let (leadership, _lease) = Leadership::manual(true);
    let applier = Applier::new(client, leadership, Arc::new(Metrics::default()), config());

    let running = pass(&dispatcher, applier);
    first_pass(&mut server).await;
    let (applier, report) = running.await.unwrap();
    assert_eq!(
        (report.applied, report.status_applied),
        (1, 1),
        "{report:?}"
    );

    // Nothing changed: the next pass sends nothing, not even a listing.
    let running = pass(&dispatcher, applier);
    server.expect_silence(Duration::from_millis(300)).await;
    let (_, report) = running.await.unwrap();
    assert_eq!(report.writes(), 0, "{report:?}");
    assert_eq!(report.listed, 0);
}

#[actix_rt::test]
async fn a_restart_against_an_unchanged_cluster_writes_nothing_and_a_change_is_applied() {
    let dispatcher = dispatcher(memory());
    observe_fence(&dispatcher, &["reviews.shop.svc.cluster.local"]).await;
    let (client, mut server) = kube_mock::pair();
    let (leadership, _lease) = Leadership::manual(true);
    let applier = Applier::new(client, leadership, Arc::new(Metrics::default()), config());
    let running = pass(&dispatcher, applier);
    let sidecar = first_pass(&mut server).await;
    running.await.unwrap();

    // A new daemon (same log): it lists the cluster and finds everything as desired.
    let (client, mut server) = kube_mock::pair();
    let (leadership, _lease) = Leadership::manual(true);
    let applier = Applier::new(client, leadership, Arc::new(Metrics::default()), config());
    let running = pass(&dispatcher, applier);
    let status = dispatcher
        .read::<actors::fence::Fences, _>(|s, _| {
            let key = events::schema::FenceKey::new("shop", "web");
            serde_json::to_value(projections::fence::fence_status(s, &key, &s.fences[&key]))
                .unwrap()
        })
        .await
        .unwrap();
    let fence = json!({"apiVersion": "microservice.slime.io/v1alpha1", "kind": "ServiceFence",
        "metadata": {"name": "web", "namespace": "shop", "uid": FENCE_UID},
        "spec": {"enable": true}, "status": status});
    let listing = BTreeMap::from([
        (
            "/apis/networking.istio.io/v1beta1/sidecars",
            vec![sidecar.clone()],
        ),
        (
            "/apis/microservice.slime.io/v1alpha1/servicefences",
            vec![fence],
        ),
    ]);
    answer_listing(&mut server, &listing).await;
    server.expect_silence(Duration::from_millis(300)).await;
    let (applier, report) = running.await.unwrap();
    assert_eq!(report.writes(), 0, "{report:?}");
    assert_eq!((report.listed, report.matched), (1, 2), "{report:?}");

    // A new dependency: the fence's status and its Sidecar are applied again, nothing else.
    observe_fence(
        &dispatcher,
        &[
            "reviews.shop.svc.cluster.local",
            "ratings.shop.svc.cluster.local",
        ],
    )
    .await;
    let running = pass(&dispatcher, applier);
    let sidecar = server
        .expect(Method::PATCH, &format!("{SIDECARS}/web"))
        .await;
    let hosts = sidecar.body["spec"]["egress"][0]["hosts"].clone();
    assert!(hosts
        .as_array()
        .unwrap()
        .contains(&json!("*/ratings.shop.svc.cluster.local")));
    let body = stored(&sidecar.body);
    sidecar.ok(&body);
    let status = server
        .expect(Method::PATCH, &format!("{FENCES}/web/status"))
        .await;
    assert!(status.body["status"]["domains"]
        .get("ratings.shop.svc.cluster.local")
        .is_some());
    let body = status.body.clone();
    status.ok(&body);
    server.expect_silence(Duration::from_millis(200)).await;
    let (_, report) = running.await.unwrap();
    assert_eq!(
        (report.applied, report.status_applied),
        (1, 1),
        "{report:?}"
    );
}

#[actix_rt::test]
async fn an_object_no_longer_desired_is_deleted_by_uid() {
    let dispatcher = dispatcher(memory());
    observe_fence(&dispatcher, &["reviews.shop.svc.cluster.local"]).await;
    let (client, mut server) = kube_mock::pair();
    let (leadership, _lease) = Leadership::manual(true);
    let applier = Applier::new(client, leadership, Arc::new(Metrics::default()), config());
    let running = pass(&dispatcher, applier);
    first_pass(&mut server).await;
    let (applier, _) = running.await.unwrap();

    fence_gone(&dispatcher).await;
    let running = pass(&dispatcher, applier);
    let delete = server
        .expect(Method::DELETE, &format!("{SIDECARS}/web"))
        .await;
    assert_eq!(delete.body["propagationPolicy"], "Background");
    assert_eq!(delete.body["preconditions"]["uid"], "sidecar-uid-1");
    delete.ok(&json!({"apiVersion": "v1", "kind": "Status", "status": "Success"}));
    server.expect_silence(Duration::from_millis(200)).await;
    let (applier, report) = running.await.unwrap();
    assert_eq!(report.deleted, 1, "{report:?}");

    // Deleted once: the next pass has nothing to do.
    let running = pass(&dispatcher, applier);
    server.expect_silence(Duration::from_millis(200)).await;
    assert_eq!(running.await.unwrap().1.writes(), 0);
}

#[actix_rt::test]
async fn a_conflict_is_retried_after_reading_the_object_again() {
    let dispatcher = dispatcher(memory());
    observe_fence(&dispatcher, &["reviews.shop.svc.cluster.local"]).await;
    let (client, mut server) = kube_mock::pair();
    let (leadership, _lease) = Leadership::manual(true);
    let metrics = Arc::new(Metrics::default());
    let applier = Applier::new(client, leadership, metrics.clone(), config());
    let running = pass(&dispatcher, applier);
    answer_listing(&mut server, &BTreeMap::new()).await;
    server
        .expect(Method::PATCH, &format!("{SIDECARS}/web"))
        .await
        .fail(
            409,
            "Conflict",
            "Operation cannot be fulfilled on sidecars \"web\"",
        );
    // Fresh state, then the same apply again.
    let get = server.expect(Method::GET, &format!("{SIDECARS}/web")).await;
    get.ok(&json!({"apiVersion": "networking.istio.io/v1beta1", "kind": "Sidecar",
        "metadata": {"name": "web", "namespace": "shop", "uid": "sidecar-uid-0", "resourceVersion": "7"},
        "spec": {"egress": [{"hosts": ["istio-system/*"]}]}}));
    let again = server
        .expect(Method::PATCH, &format!("{SIDECARS}/web"))
        .await;
    assert_server_side_apply(&again, true);
    let body = stored(&again.body);
    again.ok(&body);
    answer_status(&mut server).await;
    let (_, report) = running.await.unwrap();
    assert_eq!((report.applied, report.failed), (1, 0), "{report:?}");
    assert_eq!(
        metrics
            .kube_apply_errors
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

#[actix_rt::test]
async fn a_server_error_backs_off_records_an_event_and_is_retried_later() {
    let dispatcher = dispatcher(memory());
    observe_fence(&dispatcher, &["reviews.shop.svc.cluster.local"]).await;
    let (client, mut server) = kube_mock::pair();
    let (leadership, _lease) = Leadership::manual(true);
    let metrics = Arc::new(Metrics::default());
    let applier = Applier::new(client, leadership, metrics.clone(), config());
    let running = pass(&dispatcher, applier);
    answer_listing(&mut server, &BTreeMap::new()).await;
    let failed_at = Instant::now();
    server
        .expect(Method::PATCH, &format!("{SIDECARS}/web"))
        .await
        .fail(500, "InternalError", "etcdserver: request timed out");
    // The failure is recorded on the source object: the Sidecar's ServiceFence.
    let event = server
        .expect(Method::POST, "/api/v1/namespaces/shop/events")
        .await;
    assert_eq!(event.body["type"], "Warning");
    assert_eq!(event.body["reason"], "ApplyFailed");
    assert_eq!(event.body["involvedObject"]["kind"], "ServiceFence");
    assert_eq!(event.body["involvedObject"]["uid"], FENCE_UID);
    let message = event.body["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("etcdserver: request timed out"),
        "{message}"
    );
    let body = event.body.clone();
    event.respond(http::StatusCode::CREATED, &body);
    answer_status(&mut server).await;
    let (applier, report) = running.await.unwrap();
    assert_eq!(report.failed, 1, "{report:?}");
    let retry = report.next_retry.expect("a retry is scheduled");
    assert!(
        retry >= failed_at + Duration::from_millis(250),
        "backoff too short"
    );

    // Before the backoff has passed, a pass leaves the object alone.
    let running = pass(&dispatcher, applier);
    server.expect_silence(Duration::from_millis(50)).await;
    let (applier, report) = running.await.unwrap();
    assert_eq!((report.writes(), report.backing_off), (0, 1), "{report:?}");

    // After it, the apply is sent again; a second identical failure records no second Event,
    // and the next delay doubles.
    tokio::time::sleep_until(retry.into()).await;
    let running = pass(&dispatcher, applier);
    let second_failure = Instant::now();
    server
        .expect(Method::PATCH, &format!("{SIDECARS}/web"))
        .await
        .fail(500, "InternalError", "etcdserver: request timed out");
    server.expect_silence(Duration::from_millis(100)).await;
    let (applier, report) = running.await.unwrap();
    let retry = report.next_retry.unwrap();
    assert!(
        retry >= second_failure + Duration::from_millis(550),
        "backoff did not double"
    );

    tokio::time::sleep_until(retry.into()).await;
    let running = pass(&dispatcher, applier);
    let sidecar = server
        .expect(Method::PATCH, &format!("{SIDECARS}/web"))
        .await;
    let body = stored(&sidecar.body);
    sidecar.ok(&body);
    let (_, report) = running.await.unwrap();
    assert_eq!(
        (report.applied, report.failed, report.next_retry),
        (1, 0, None)
    );
    assert_eq!(
        metrics
            .kube_apply_errors
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    assert_eq!(
        metrics
            .kube_events
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[actix_rt::test]
async fn once_the_lease_is_lost_nothing_more_is_written() {
    let dispatcher = dispatcher(memory());
    observe_fence(&dispatcher, &["reviews.shop.svc.cluster.local"]).await;
    let (client, mut server) = kube_mock::pair();
    let (leadership, lease) = Leadership::manual(true);
    let applier = Applier::new(client, leadership, Arc::new(Metrics::default()), config());
    let running = pass(&dispatcher, applier);
    first_pass(&mut server).await;
    let (applier, _) = running.await.unwrap();

    lease.send(false).unwrap();
    observe_fence(
        &dispatcher,
        &[
            "reviews.shop.svc.cluster.local",
            "ratings.shop.svc.cluster.local",
        ],
    )
    .await;
    fence_gone(&dispatcher).await;
    let running = pass(&dispatcher, applier);
    server.expect_silence(Duration::from_millis(300)).await;
    let (applier, report) = running.await.unwrap();
    assert!(report.not_leader);
    assert_eq!(report.writes(), 0);

    // Leading again, it starts from what the cluster holds (a fresh listing) before writing.
    lease.send(true).unwrap();
    let running = pass(&dispatcher, applier);
    answer_listing(&mut server, &BTreeMap::new()).await;
    server.expect_silence(Duration::from_millis(200)).await;
    let (_, report) = running.await.unwrap();
    assert_eq!(report.writes(), 0, "{report:?}");
}

/// A ServiceFence applied through meshplane is meshplane's own: on a first pass against an
/// empty cluster it is applied (force, without status: the API server ignores a status sent
/// with the object), then its Sidecar with an owner reference carrying the uid the server just
/// gave the fence, then the fence's status through the status subresource. A restart against
/// what the server stored writes nothing.
#[actix_rt::test]
async fn an_owned_fence_is_applied_before_its_sidecar_and_its_status_after() {
    let dispatcher = dispatcher(memory());
    let fence = json!({"apiVersion": "microservice.slime.io/v1alpha1", "kind": "ServiceFence",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"enable": true, "host": {"reviews.shop.svc.cluster.local": {"stable": {}}}}});
    dispatcher
        .execute(actors::mesh::document_command(&fence).unwrap())
        .await
        .unwrap();
    let (client, mut server) = kube_mock::pair();
    let (leadership, _lease) = Leadership::manual(true);
    let applier = Applier::new(client, leadership, Arc::new(Metrics::default()), config());
    let running = pass(&dispatcher, applier);
    answer_listing(&mut server, &BTreeMap::new()).await;

    let apply = server.expect(Method::PATCH, &format!("{FENCES}/web")).await;
    assert_server_side_apply(&apply, true);
    assert!(apply.body.get("status").is_none(), "{}", apply.body);
    assert_eq!(apply.body["spec"]["enable"], true);
    let mut stored_fence = stored(&apply.body);
    stored_fence["metadata"]["uid"] = json!("owned-fence-uid");
    apply.ok(&stored_fence);

    let sidecar = server
        .expect(Method::PATCH, &format!("{SIDECARS}/web"))
        .await;
    assert_eq!(
        sidecar.body["metadata"]["ownerReferences"][0]["uid"], "owned-fence-uid",
        "the owner's uid from the apply of this very pass"
    );
    let stored_sidecar = stored(&sidecar.body);
    sidecar.ok(&stored_sidecar);

    let status = server
        .expect(Method::PATCH, &format!("{FENCES}/web/status"))
        .await;
    assert_server_side_apply(&status, false);
    assert!(status.body.get("spec").is_none(), "{}", status.body);
    assert!(status.body["status"]["domains"]
        .get("reviews.shop.svc.cluster.local")
        .is_some());
    stored_fence["status"] = status.body["status"].clone();
    let body = status.body.clone();
    status.ok(&body);
    let (_, report) = running.await.unwrap();
    assert_eq!(
        (report.applied, report.status_applied, report.failed),
        (2, 1, 0),
        "{report:?}"
    );

    // Restart: what the server stored covers everything; nothing is written.
    let (client, mut server) = kube_mock::pair();
    let (leadership, _lease) = Leadership::manual(true);
    let applier = Applier::new(client, leadership, Arc::new(Metrics::default()), config());
    let running = pass(&dispatcher, applier);
    let (all_fences, all_sidecars) = (
        ApiKind::new(&fence::SERVICE_FENCE).collection_path(None),
        ApiKind::new(&fence::SIDECAR).collection_path(None),
    );
    let objects = BTreeMap::from([
        (all_fences.as_str(), vec![stored_fence]),
        (all_sidecars.as_str(), vec![stored_sidecar]),
    ]);
    answer_listing(&mut server, &objects).await;
    server.expect_silence(Duration::from_millis(200)).await;
    let (_, report) = running.await.unwrap();
    assert_eq!((report.writes(), report.matched), (0, 3), "{report:?}");
}

/// An applied VirtualService is rendered at `networking.istio.io/v1` but listed at `v1beta1`
/// (what every Istio serves): after a restart the listed object is the same object, compared
/// with the desired one, never deleted as undesired and re-applied.
#[actix_rt::test]
async fn a_restart_finds_an_object_listed_at_another_version_as_desired() {
    let dispatcher = dispatcher(memory());
    let vs = json!({"apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
        "metadata": {"name": "reviews", "namespace": "shop"},
        "spec": {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews-v2"}}]}]}});
    dispatcher
        .execute(actors::mesh::document_command(&vs).unwrap())
        .await
        .unwrap();
    let (client, mut server) = kube_mock::pair();
    let (leadership, _lease) = Leadership::manual(true);
    let applier = Applier::new(client, leadership, Arc::new(Metrics::default()), config());
    let running = pass(&dispatcher, applier);
    answer_listing(&mut server, &BTreeMap::new()).await;
    let applied = server
        .expect(
            Method::PATCH,
            "/apis/networking.istio.io/v1/namespaces/shop/virtualservices/reviews",
        )
        .await;
    let mut object = applied.body.clone();
    object["metadata"]["uid"] = json!("vs-uid-1");
    object["metadata"]["resourceVersion"] = json!("7");
    applied.ok(&object);
    server.expect_silence(Duration::from_millis(200)).await;
    running.await.unwrap();

    // A new daemon lists VirtualServices at v1beta1: the same object, at another version.
    let (client, mut server) = kube_mock::pair();
    let (leadership, _lease) = Leadership::manual(true);
    let applier = Applier::new(client, leadership, Arc::new(Metrics::default()), config());
    let running = pass(&dispatcher, applier);
    object["apiVersion"] = json!("networking.istio.io/v1beta1");
    let listing = BTreeMap::from([(
        "/apis/networking.istio.io/v1beta1/virtualservices",
        vec![object],
    )]);
    answer_listing(&mut server, &listing).await;
    server.expect_silence(Duration::from_millis(300)).await;
    let (_, report) = running.await.unwrap();
    assert_eq!((report.writes(), report.deleted), (0, 0), "{report:?}");
}
