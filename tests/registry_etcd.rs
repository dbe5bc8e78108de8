//! End-to-end: `meshplane run --etcd` projects the registry into a real etcd in EaseMesh's key
//! layout, converges after etcd is killed and restarted mid-stream (no lost, no stale keys),
//! and resumes from its checkpoint after the daemon is killed, writing nothing that is already
//! there.

#[path = "../adapters/tests/support/etcd_server.rs"]
mod etcd_server;
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use etcd_client::GetOptions;
use etcd_server::EtcdServer;
use serde_json::{json, Value};
use support::{eventually, raw_request, Daemon, Sandbox};

const CATALOG: &str = "\
apiVersion: mesh.megaease.com/v2alpha1
kind: MeshController
metadata:
  name: easemesh-controller
heartbeatInterval: 5s
registryType: eureka
---
apiVersion: mesh.megaease.com/v2alpha1
kind: Tenant
metadata:
  name: takeaway
---
apiVersion: mesh.megaease.com/v2alpha1
kind: Service
metadata:
  name: order
spec:
  registerTenant: takeaway
";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Every key under `/mesh/` and the checkpoint, as etcdctl would list them.
fn read_all(rt: &tokio::runtime::Runtime, etcd: &EtcdServer) -> BTreeMap<String, String> {
    rt.block_on(async {
        let mut client = etcd.client().await;
        let mut out = BTreeMap::new();
        for prefix in ["/mesh/", "/meshplane/checkpoints/"] {
            let resp = client
                .get(prefix, Some(GetOptions::new().with_prefix()))
                .await
                .unwrap();
            for kv in resp.kvs() {
                out.insert(
                    kv.key_str().unwrap().to_string(),
                    kv.value_str().unwrap().to_string(),
                );
            }
        }
        out
    })
}

fn call(daemon: &Daemon, method: &str, path: &str, body: Value) -> (u16, String) {
    raw_request(
        daemon.port,
        method,
        path,
        &[("Content-Type", "application/json")],
        body.to_string().into_bytes(),
    )
}

fn register(daemon: &Daemon, id: &str) {
    let (status, body) = call(
        daemon,
        "POST",
        "/api/v1/registry/instances",
        json!({"serviceName": "order", "instanceID": id, "ip": "10.0.0.7", "port": 13001}),
    );
    assert_eq!(status, 201, "{body}");
}

fn metric(daemon: &Daemon, name: &str) -> u64 {
    let (_, text) = raw_request(daemon.port, "GET", "/metrics", &[], Vec::new());
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no metric {name} in {text}"))
}

/// The instance keys present, as `service/id` → status.
fn instances(keys: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    keys.iter()
        .filter_map(|(k, v)| {
            let id = k.strip_prefix("/mesh/service-instances/spec/")?;
            let value: Value = serde_json::from_str(v).unwrap();
            Some((
                id.to_string(),
                value["status"].as_str().unwrap().to_string(),
            ))
        })
        .collect()
}

#[test]
fn registry_lands_in_etcd_and_survives_etcd_and_daemon_crashes() {
    let rt = runtime();
    let mut etcd = rt.block_on(EtcdServer::start());
    let sandbox = Sandbox::new();
    let data = sandbox.path("data");
    let manifests = sandbox.path("manifests");
    let etcd_flag = [
        "--etcd",
        &etcd.endpoint(),
        "--manifests",
        manifests.to_str().unwrap(),
    ];
    let mut daemon = Daemon::start_with(&sandbox, &data, &etcd_flag, "127.0.0.1");
    sandbox.apply("catalog.yaml", CATALOG, &daemon.url);
    register(&daemon, "order-1");
    register(&daemon, "order-2");

    // The layout, read back key by key.
    eventually(Duration::from_secs(10), "the registry in etcd", || {
        read_all(&rt, &etcd).len() == 7
    });
    let keys = read_all(&rt, &etcd);
    let tenant: Value = serde_json::from_str(&keys["/mesh/tenants/takeaway"]).unwrap();
    assert_eq!(tenant["services"], json!(["order"]));
    let spec: Value = serde_json::from_str(&keys["/mesh/service-spec/order"]).unwrap();
    assert_eq!(
        (spec["name"].as_str(), spec["registerTenant"].as_str()),
        (Some("order"), Some("takeaway"))
    );
    let instance: Value =
        serde_json::from_str(&keys["/mesh/service-instances/spec/order/order-1"]).unwrap();
    assert_eq!(instance["status"], "UP");
    assert_eq!(instance["registryName"], "easemesh-controller");
    assert_eq!(instance["port"], 13001);
    let status: Value =
        serde_json::from_str(&keys["/mesh/service-instances/status/order/order-2"]).unwrap();
    assert_eq!(status["instanceID"], "order-2");
    assert!(status["lastHeartbeatTime"].as_str().unwrap().ends_with('Z'));
    let checkpoint: Value = serde_json::from_str(&keys["/meshplane/checkpoints/etcd"]).unwrap();
    assert_eq!(
        checkpoint["position"],
        metric(&daemon, "meshplane_log_head_position")
    );

    // etcd dies; the registry keeps changing; etcd comes back: exactly the final state.
    etcd.kill();
    for id in ["order-3", "order-4", "order-5"] {
        register(&daemon, id);
    }
    let (status, _) = call(
        &daemon,
        "DELETE",
        "/api/v1/registry/instances/order/order-2",
        Value::Null,
    );
    assert_eq!(status, 200);
    let (status, _) = call(
        &daemon,
        "POST",
        "/api/v1/registry/instances/order/order-3/offline",
        json!({}),
    );
    assert_eq!(status, 200);
    std::thread::sleep(Duration::from_millis(500));
    rt.block_on(etcd.restart());
    let expected = BTreeMap::from(
        [
            ("order/order-1", "UP"),
            ("order/order-3", "OUT_OF_SERVICE"),
            ("order/order-4", "UP"),
            ("order/order-5", "UP"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    eventually(
        Duration::from_secs(20),
        "etcd to converge after its restart",
        || instances(&read_all(&rt, &etcd)) == expected,
    );
    let keys = read_all(&rt, &etcd);
    assert!(
        !keys.contains_key("/mesh/service-instances/status/order/order-2"),
        "stale status key"
    );
    assert_eq!(
        keys.len(),
        2 + 2 * 4 + 1,
        "{:?}",
        keys.keys().collect::<Vec<_>>()
    );
    let head = metric(&daemon, "meshplane_log_head_position");
    eventually(
        Duration::from_secs(10),
        "the checkpoint at the log head",
        || {
            let keys = read_all(&rt, &etcd);
            serde_json::from_str::<Value>(&keys["/meshplane/checkpoints/etcd"]).unwrap()["position"]
                == head
        },
    );

    // The daemon is killed and restarted: it resumes from what etcd holds and writes nothing.
    daemon.kill();
    let daemon = Daemon::start_with(&sandbox, &data, &etcd_flag, "127.0.0.1");
    eventually(
        Duration::from_secs(10),
        "the restarted daemon's first etcd pass",
        || metric(&daemon, "meshplane_etcd_projected_position") == head,
    );
    assert_eq!(metric(&daemon, "meshplane_etcd_puts_total"), 0);
    assert_eq!(metric(&daemon, "meshplane_etcd_deletes_total"), 0);
    // The data is untouched; the checkpoint keeps its position in a new epoch (the restarted
    // daemon's connection fences out anything the killed one still had in flight).
    let (mut now, mut before) = (read_all(&rt, &etcd), keys);
    let checkpoint = |keys: &mut BTreeMap<String, String>| -> Value {
        serde_json::from_str(&keys.remove("/meshplane/checkpoints/etcd").unwrap()).unwrap()
    };
    let (now_checkpoint, before_checkpoint) = (checkpoint(&mut now), checkpoint(&mut before));
    assert_eq!(now, before);
    assert_eq!(now_checkpoint["position"], before_checkpoint["position"]);
    assert_ne!(now_checkpoint["epoch"], before_checkpoint["epoch"]);
}
