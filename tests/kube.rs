//! End-to-end: `meshplane run --kubeconfig` against an in-process API server
//! (`support/fake_apiserver.rs`), through kube-rs and the real binary: a ServiceFence written
//! into the cluster by someone else is watched into the log, its Sidecar is server-side
//! applied with an owner reference to it and its status written; a restart writes nothing; a
//! fence deleted in the cluster takes its Sidecar with it; only the lease holder writes, a
//! follower takes over when the leader dies, and a clean shutdown frees the lease. Plus the refusals of bad settings.
//!
//! The real-cluster suite is `tests/kube_cluster.rs` (opt-in).

#![allow(
    clippy::disallowed_methods,
    reason = "end-to-end tests wait on the real clock"
)]

#[path = "support/fake_apiserver.rs"]
mod fake_apiserver;
mod support;

use std::time::Duration;

use fake_apiserver::FakeApiServer;
use serde_json::json;
use support::{eventually, raw_request, Daemon, Sandbox};

const SIDECAR: &str = "/apis/networking.istio.io/v1beta1/namespaces/shop/sidecars/web";
const FENCE: &str = "/apis/microservice.slime.io/v1alpha1/namespaces/shop/servicefences/web";
const WAIT: Duration = Duration::from_secs(30);

/// A namespace, two services, the Endpoints of one and its ServiceFence, as `kubectl apply`
/// would have left them.
fn seed_cluster(api: &FakeApiServer) -> String {
    api.put(
        "/api/v1/namespaces/shop",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}),
    );
    put_web_service(api, json!({"app": "web"}));
    api.put(
        "/api/v1/namespaces/shop/services/details",
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "details", "namespace": "shop"},
            "spec": {"selector": {"app": "details"}, "ports": [{"name": "http", "port": 80}]}}),
    );
    api.put(
        "/api/v1/namespaces/shop/endpoints/web",
        json!({"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "web", "namespace": "shop"},
            "subsets": [{"addresses": [{"ip": "10.1.0.1"}], "ports": [{"port": 80}]}]}),
    );
    let fence = api.put(
        FENCE,
        json!({"apiVersion": "microservice.slime.io/v1alpha1", "kind": "ServiceFence",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"enable": true, "workloadSelector": {"fromService": true}}}),
    );
    fence["metadata"]["uid"].as_str().unwrap().to_string()
}

/// The Service `shop/web` with this selector, as its user writes it.
fn put_web_service(api: &FakeApiServer, selector: serde_json::Value) {
    api.put(
        "/api/v1/namespaces/shop/services/web",
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
            "spec": {"selector": selector, "ports": [{"name": "http", "port": 80}]}}),
    );
}

fn kube_daemon(sandbox: &Sandbox, api: &FakeApiServer, name: &str, extra: &[&str]) -> Daemon {
    let kubeconfig = sandbox.write(&format!("{name}.kubeconfig"), &api.kubeconfig(name));
    let data = sandbox.path(&format!("{name}-data"));
    let manifests = sandbox.path(&format!("{name}-manifests"));
    let mut args = vec![
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--manifests",
        manifests.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    Daemon::start_with(sandbox, &data, &args, "127.0.0.1")
}

/// One metric of a daemon's /metrics.
fn metric(daemon: &Daemon, name: &str) -> Option<f64> {
    let text = ureq::get(&format!("{}/metrics", daemon.url))
        .call()
        .ok()?
        .into_string()
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Object writes a daemon sent (by its token), Leases excluded.
fn writes_by(api: &FakeApiServer, token: &str) -> Vec<String> {
    api.requests()
        .into_iter()
        .filter(|r| r.is_object_write() && r.token.as_deref() == Some(token))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

#[test]
fn a_bad_kubeconfig_is_refused_naming_the_flag() {
    let sandbox = Sandbox::new();
    let missing = sandbox.path("nowhere.kubeconfig");
    let data = sandbox.path("data");
    let mut daemon = Daemon::spawn(
        &sandbox,
        &data,
        "127.0.0.1:0",
        &["--kubeconfig", missing.to_str().unwrap()],
    );
    assert_eq!(daemon.wait_exit(Duration::from_secs(60)), Some(1));
    let log = daemon.log_text();
    assert!(log.contains("error: "), "{log}");
    assert!(
        log.contains("--kubeconfig") && log.contains("nowhere.kubeconfig"),
        "the error names the flag and the file:\n{log}"
    );

    let garbage = sandbox.write("garbage.kubeconfig", "clusters: [this is not a kubeconfig");
    let mut daemon = Daemon::spawn(
        &sandbox,
        &data,
        "127.0.0.1:0",
        &["--kubeconfig", garbage.to_str().unwrap()],
    );
    assert_eq!(daemon.wait_exit(Duration::from_secs(60)), Some(1));
    assert!(daemon.log_text().contains("--kubeconfig"));

    let kubeconfig = sandbox.write("fine.kubeconfig", &FakeApiServer::start().kubeconfig("x"));
    for (flag, value) in [
        ("--lease-duration", "0"),
        ("--lease-namespace", "Not_A_Namespace"),
    ] {
        let mut daemon = Daemon::spawn(
            &sandbox,
            &data,
            "127.0.0.1:0",
            &["--kubeconfig", kubeconfig.to_str().unwrap(), flag, value],
        );
        assert_eq!(daemon.wait_exit(Duration::from_secs(60)), Some(1));
        let log = daemon.log_text();
        assert!(
            log.contains("refusing to start") && log.contains(flag),
            "{log}"
        );
    }

    let both = sandbox.run(&[
        "run",
        "--kubeconfig",
        garbage.to_str().unwrap(),
        "--in-cluster",
    ]);
    assert_eq!(both.code, Some(2), "{both:?}");
    assert!(both.stderr.contains("--in-cluster"), "{}", both.stderr);
}

#[test]
fn a_fence_in_the_cluster_gets_its_sidecar_and_a_restart_writes_nothing() {
    let sandbox = Sandbox::new();
    let api = FakeApiServer::start();
    let fence_uid = seed_cluster(&api);
    let mut daemon = kube_daemon(&sandbox, &api, "a", &["--no-lease"]);

    // Owned by the observed fence. (A pass that read the observed uids just before the fence's
    // observation landed applies the Sidecar once without the owner; the next pass adds it.)
    eventually(WAIT, "the Sidecar applied with its owner", || {
        api.object(SIDECAR)
            .is_some_and(|s| s["metadata"]["ownerReferences"].is_array())
    });
    let apply = api
        .requests()
        .into_iter()
        .rfind(|r| r.method == "PATCH" && r.path == SIDECAR)
        .unwrap();
    assert_eq!(
        apply.content_type.as_deref(),
        Some("application/apply-patch+yaml")
    );
    assert_eq!(apply.query["fieldManager"], "meshplane");
    assert_eq!(apply.query["force"], "true", "meshplane owns its Sidecars");
    let sidecar = &apply.body;
    assert_eq!(sidecar["kind"], "Sidecar");
    assert_eq!(
        sidecar["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "meshplane"
    );
    let owner = &sidecar["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "ServiceFence");
    assert_eq!(owner["name"], "web");
    assert_eq!(owner["uid"], fence_uid.as_str(), "{sidecar}");
    assert_eq!(sidecar["spec"]["workloadSelector"]["labels"]["app"], "web");

    // The fence's status, without force: the ServiceFence belongs to whoever wrote it.
    // The fence's status, without force: the ServiceFence belongs to whoever wrote it.
    eventually(WAIT, "the fence status", || {
        api.requests()
            .iter()
            .any(|r| r.method == "PATCH" && r.path == format!("{FENCE}/status"))
    });
    let status = api
        .requests()
        .into_iter()
        .find(|r| r.method == "PATCH" && r.path == format!("{FENCE}/status"))
        .unwrap();
    assert_eq!(status.query["fieldManager"], "meshplane");
    assert!(!status.query.contains_key("force"), "{:?}", status.query);
    assert_eq!(status.body["kind"], "ServiceFence");
    assert!(status.body["status"].is_object(), "{}", status.body);
    assert!(status.body.get("spec").is_none(), "the spec is the user's");

    // A call from web's pod (its IP known from the observed Endpoints) to details: learned,
    // into the Sidecar and the fence status.
    let (code, body) = raw_request(
        daemon.port,
        "POST",
        "/api/v1/accesslog",
        &[("content-type", "application/x-ndjson")],
        br#"{"downstream_ip":"10.1.0.1","upstream_cluster":"inbound|80||","authority":"details:80"}"#
            .to_vec(),
    );
    assert_eq!(code, 202, "{body}");
    let host = "*/details.shop.svc.cluster.local";
    eventually(WAIT, "the learned host in the Sidecar", || {
        api.object(SIDECAR).is_some_and(|s| {
            s["spec"]["egress"][0]["hosts"]
                .as_array()
                .is_some_and(|h| h.iter().any(|x| x == host))
        })
    });
    eventually(WAIT, "the learned domain in the fence status", || {
        api.object(FENCE).is_some_and(|f| {
            f["status"]["domains"]
                .get("details.shop.svc.cluster.local")
                .is_some()
        })
    });

    // The cluster is the projection target: nothing in the manifest directory.
    let manifests = sandbox.path("a-manifests");
    assert!(
        std::fs::read_dir(&manifests).map_or(true, |mut d| d.next().is_none()),
        "the manifest directory was written"
    );

    // The observation is in the log: `history` shows it.
    let history = sandbox
        .run(&[
            "history",
            "servicefence",
            "web",
            "-n",
            "shop",
            "--server",
            &daemon.url,
        ])
        .ok()
        .to_string();
    assert!(history.contains("observed"), "{history}");

    // Restart: the first pass compares against the cluster and writes nothing.
    eventually(WAIT, "the writes to settle", || {
        let before = writes_by(&api, "a").len();
        std::thread::sleep(Duration::from_millis(700));
        writes_by(&api, "a").len() == before
    });
    daemon.kill();
    let before = writes_by(&api, "a");
    let daemon = kube_daemon(&sandbox, &api, "a", &["--no-lease"]);
    eventually(WAIT, "the first pass after the restart", || {
        metric(&daemon, "meshplane_kube_projected_position").is_some_and(|p| p > 0.0)
    });
    std::thread::sleep(Duration::from_secs(1));
    let after = writes_by(&api, "a");
    assert_eq!(
        &after[before.len()..],
        &[] as &[String],
        "a restart against an unchanged cluster writes nothing"
    );

    // The fence deleted in the cluster: its Sidecar goes, by the managed-by label and uid.
    api.delete(FENCE);
    eventually(WAIT, "the Sidecar deleted", || {
        api.object(SIDECAR).is_none()
    });
    assert!(writes_by(&api, "a").contains(&format!("DELETE {SIDECAR}")));
}

#[test]
fn only_the_lease_holder_writes_and_a_follower_takes_over() {
    let sandbox = Sandbox::new();
    let api = FakeApiServer::start();
    seed_cluster(&api);
    let lease = ["--lease-namespace", "mesh", "--lease-duration", "3"];
    let mut leader = kube_daemon(&sandbox, &api, "a", &lease);
    eventually(WAIT, "a's Sidecar", || api.object(SIDECAR).is_some());
    let held = api
        .object("/apis/coordination.k8s.io/v1/namespaces/mesh/leases/meshplane-leader")
        .expect("the lease");
    let holder = held["spec"]["holderIdentity"].as_str().unwrap().to_string();

    let mut follower = kube_daemon(&sandbox, &api, "b", &lease);
    eventually(WAIT, "b's watchers", || {
        metric(&follower, "meshplane_kube_relists_total").is_some_and(|n| n >= 5.0)
    });
    // A change in the cluster: both observe it, only the leader applies it.
    put_web_service(&api, json!({"app": "web", "tier": "front"}));
    eventually(WAIT, "a applied the new selector", || {
        api.object(SIDECAR)
            .is_some_and(|s| s["spec"]["workloadSelector"]["labels"]["tier"] == "front")
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(writes_by(&api, "b"), Vec::<String>::new(), "b follows");
    assert_eq!(metric(&follower, "meshplane_kube_leader"), Some(0.0));
    assert_eq!(metric(&leader, "meshplane_kube_leader"), Some(1.0));

    // The leader dies without releasing: after the lease duration the follower takes it.
    leader.kill();
    eventually(WAIT, "b takes the lease", || {
        metric(&follower, "meshplane_kube_leader") == Some(1.0)
    });
    let lease = api
        .object("/apis/coordination.k8s.io/v1/namespaces/mesh/leases/meshplane-leader")
        .unwrap();
    assert_ne!(
        lease["spec"]["holderIdentity"].as_str(),
        Some(holder.as_str())
    );
    put_web_service(&api, json!({"app": "web", "tier": "edge"}));
    eventually(WAIT, "b applied the change", || {
        api.object(SIDECAR)
            .is_some_and(|s| s["spec"]["workloadSelector"]["labels"]["tier"] == "edge")
    });
    assert!(writes_by(&api, "b").contains(&format!("PATCH {SIDECAR}")));

    // A clean shutdown hands the lease over at once: no holder left.
    assert_eq!(follower.terminate(), Some(0));
    let lease = api
        .object("/apis/coordination.k8s.io/v1/namespaces/mesh/leases/meshplane-leader")
        .unwrap();
    assert!(
        lease["spec"]["holderIdentity"]
            .as_str()
            .is_none_or(str::is_empty),
        "{lease}"
    );
}
