//! Opt-in tests against a real cluster, through the daemon's own wiring (`start_kube`):
//!
//! ```sh
//! KUBECONFIG=~/.kube/config cargo test -p adapters --test kube_cluster -- --ignored
//! ```
//!
//! They need Istio's CRDs (the Sidecar kind) and rights to install CRDs; they install
//! meshplane's CRDs (`meshplane crds`), work in a fresh namespace `meshplane-e2e-*` and delete
//! it at the end. Without `KUBECONFIG` they pass without doing anything, so `--ignored` runs on
//! a machine without a cluster stay green.

// Waiting on a real cluster needs the clock.
#![allow(clippy::disallowed_methods)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actors::{fence::kinds as fence, resource::kinds as resource};
use adapters::daemon::{start_host, start_kube, KubeSettings};
use adapters::kube::kinds::ApiKind;
use adapters::kube::lease::LeaseConfig;
use adapters::metrics::Metrics;
use events::backend::memory::MemoryBackend;
use events::{EventStore, Log};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(90);
const MANAGER: &str = "meshplane-e2e";

/// The cluster of `KUBECONFIG`, or `None` (the test then does nothing).
async fn cluster() -> Option<(kube::Client, PathBuf)> {
    let Some(path) = std::env::var_os("KUBECONFIG").map(PathBuf::from) else {
        eprintln!("KUBECONFIG is not set: skipping the real-cluster test");
        return None;
    };
    let client = kube::Client::try_default()
        .await
        .expect("a client for KUBECONFIG");
    Some((client, path))
}

fn dynamic(client: &kube::Client, kind: &ApiKind, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), ns, &kind.api_resource())
}

/// Apply an object as another field manager would (a user with kubectl).
async fn apply_as_user(api: &Api<DynamicObject>, name: &str, object: serde_json::Value) {
    let object: DynamicObject = serde_json::from_value(object).unwrap();
    api.patch(
        name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&object),
    )
    .await
    .unwrap_or_else(|e| panic!("applying {name}: {e}"));
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + WAIT;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn prepare(client: &kube::Client) -> String {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    assert!(
        crds.get_opt("sidecars.networking.istio.io")
            .await
            .unwrap()
            .is_some(),
        "the cluster needs Istio's CRDs (sidecars.networking.istio.io)"
    );
    for crd in projections::crds::crds() {
        let name = crd.metadata.name.clone().unwrap();
        crds.patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&crd),
        )
        .await
        .unwrap_or_else(|e| panic!("installing {name}: {e}"));
    }
    let ns = format!(
        "meshplane-e2e-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let namespaces = Api::<DynamicObject>::all_with(
        client.clone(),
        &ApiKind::new(&resource::NAMESPACE).api_resource(),
    );
    apply_as_user(
        &namespaces,
        &ns,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
    )
    .await;
    ns
}

async fn cleanup(client: &kube::Client, ns: &str) {
    let namespaces = Api::<DynamicObject>::all_with(
        client.clone(),
        &ApiKind::new(&resource::NAMESPACE).api_resource(),
    );
    let _ = namespaces.delete(ns, &DeleteParams::default()).await;
}

#[actix_rt::test]
#[ignore = "needs a real cluster: KUBECONFIG=... cargo test -p adapters --test kube_cluster -- --ignored"]
async fn a_servicefence_gets_its_sidecar_and_status_and_takes_it_away() {
    let Some((client, kubeconfig)) = cluster().await else {
        return;
    };
    let ns = prepare(&client).await;
    apply_as_user(
        &dynamic(&client, &ApiKind::new(&resource::SERVICE), &ns),
        "web",
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": ns, "labels": {"app": "web"}},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80}]}}),
    )
    .await;
    let fences = dynamic(&client, &ApiKind::new(&fence::SERVICE_FENCE), &ns);
    apply_as_user(
        &fences,
        "web",
        json!({"apiVersion": "microservice.slime.io/v1alpha1", "kind": "ServiceFence",
            "metadata": {"name": "web", "namespace": ns},
            "spec": {"enable": true, "workloadSelector": {"fromService": true}}}),
    )
    .await;
    let fence_uid = fences.get("web").await.unwrap().metadata.uid.unwrap();

    let store: Arc<dyn EventStore> = Arc::new(Log::open(MemoryBackend::new()).unwrap());
    let metrics = Arc::new(Metrics::default());
    let host = start_host(store, metrics.clone(), None).unwrap();
    let settings = KubeSettings {
        kubeconfig: Some(kubeconfig),
        lease: Some(LeaseConfig::new(
            ns.clone(),
            "meshplane-leader".into(),
            "e2e-daemon".into(),
        )),
    };
    let adapter = start_kube(
        &settings,
        &host.dispatcher,
        &metrics,
        host.kube_changes.clone(),
    )
    .await
    .expect("the adapter starts");

    let sidecars = dynamic(&client, &ApiKind::new(&fence::SIDECAR), &ns);
    eventually("the Sidecar", || async {
        sidecars.get_opt("web").await.unwrap().is_some()
    })
    .await;
    let sidecar = sidecars.get("web").await.unwrap();
    let labels = sidecar.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels
            .get("app.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("meshplane")
    );
    let owner = &sidecar.metadata.owner_references.clone().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("ServiceFence", fence_uid.as_str())
    );
    assert_eq!(
        sidecar.data["spec"]["workloadSelector"]["labels"]["app"],
        "web"
    );
    eventually("the fence status", || async {
        let fence = fences.get("web").await.unwrap();
        fence.data["status"]
            .as_object()
            .is_some_and(|s| !s.is_empty())
    })
    .await;

    // The fence deleted by its user: the Sidecar goes (by meshplane, or by the garbage
    // collector through the owner reference, whichever comes first).
    fences
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the Sidecar deleted", || async {
        sidecars.get_opt("web").await.unwrap().is_none()
    })
    .await;

    adapter.stop().await;
    cleanup(&client, &ns).await;
}
