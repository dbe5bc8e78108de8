//! End-to-end: the registry through the `meshplane` binary — EaseMesh manifests applied with
//! `meshplane apply`, instances registered and heartbeating over HTTP, liveness transitions
//! in the running daemon, the CLI's tables and filters, and replay after a restart.

#![allow(
    clippy::disallowed_methods,
    reason = "end-to-end tests time the running daemon on the real clock"
)]

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{eventually, raw_request, Daemon, Sandbox};

const CATALOG: &str = "\
apiVersion: mesh.megaease.com/v2alpha1
kind: MeshController
metadata:
  name: easemesh-controller
heartbeatInterval: 500ms
registryType: eureka
deadRecordTime: 1h
---
apiVersion: mesh.megaease.com/v1alpha1
kind: Tenant
metadata:
  name: takeaway
spec:
  description: the takeaway demo
---
apiVersion: mesh.megaease.com/v1alpha1
kind: Service
metadata:
  name: order
spec:
  registerTenant: takeaway
  loadBalance:
    policy: roundRobin
  sidecar:
    discoveryType: eureka
    address: 127.0.0.1
    ingressPort: 13001
    ingressProtocol: http
    egressPort: 13002
    egressProtocol: http
";

fn call(daemon: &Daemon, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    let (status, text) = raw_request(
        daemon.port,
        method,
        path,
        &[("Content-Type", "application/json")],
        bytes,
    );
    let value = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, value)
}

fn register(daemon: &Daemon, id: &str, version: &str) {
    let (status, body) = call(
        daemon,
        "POST",
        "/api/v1/registry/instances",
        Some(
            json!({"serviceName": "order", "instanceID": id, "ip": "10.0.0.7", "port": 13001,
                    "labels": {"version": version}}),
        ),
    );
    assert_eq!(status, 201, "{body}");
}

fn heartbeat(daemon: &Daemon, ids: &[&str]) {
    let beats: Vec<Value> = ids
        .iter()
        .map(|id| json!({"serviceName": "order", "instanceID": id}))
        .collect();
    let (status, body) = call(
        daemon,
        "POST",
        "/api/v1/registry/heartbeats",
        Some(json!({ "heartbeats": beats })),
    );
    assert_eq!(status, 200, "{body}");
}

fn status_of(daemon: &Daemon, id: &str) -> String {
    let (_, body) = call(
        daemon,
        "GET",
        &format!("/api/v1/registry/instances/order/{id}"),
        None,
    );
    body["status"].as_str().unwrap_or_default().to_string()
}

#[test]
fn registry_lifecycle_through_the_daemon_and_the_cli() {
    let sandbox = Sandbox::new();
    let data = sandbox.path("data");
    let daemon = Daemon::start(&sandbox, &data, &sandbox.path("manifests"));
    let server = daemon.url.clone();
    let file = sandbox.write("catalog.yaml", CATALOG);
    let out = sandbox.run(&["apply", "-f", file.to_str().unwrap(), "--server", &server]);
    assert_eq!(
        out.ok(),
        "meshcontroller/easemesh-controller created\ntenant/takeaway created\nservice/order created\n"
    );

    register(&daemon, "order-a", "v1");
    register(&daemon, "order-b", "v2");
    let table = sandbox
        .run(&["get", "serviceinstances", "--server", &server])
        .ok()
        .to_string();
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].split_whitespace().collect::<Vec<_>>()
            == [
                "SERVICE",
                "TENANT",
                "INSTANCE",
                "LABELS",
                "IP",
                "PORT",
                "STATUS",
                "LAST",
                "HEARTBEAT"
            ],
        "{table}"
    );
    assert!(
        lines[1].starts_with("order")
            && lines[1].contains("takeaway")
            && lines[1].contains("order-a")
    );
    assert!(
        lines[1].contains("version=v1")
            && lines[1].contains("10.0.0.7")
            && lines[1].contains("13001")
    );

    // a keeps heartbeating; b goes silent: out of service no later than 2 x 500 ms + a tick.
    heartbeat(&daemon, &["order-a", "order-b"]);
    let silent_since = Instant::now();
    let mut b_out = None;
    while silent_since.elapsed() < Duration::from_secs(5) {
        heartbeat(&daemon, &["order-a"]);
        if b_out.is_none() && status_of(&daemon, "order-b") == "OUT_OF_SERVICE" {
            b_out = Some(silent_since.elapsed());
        }
        if b_out.is_some_and(|t| silent_since.elapsed() > t + Duration::from_millis(500)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let b_out = b_out.expect("order-b marked out of service");
    assert!(b_out >= Duration::from_millis(900), "too early: {b_out:?}");
    assert!(b_out <= Duration::from_millis(4_000), "too late: {b_out:?}");
    assert_eq!(status_of(&daemon, "order-a"), "UP");

    // The filters.
    let out = sandbox.run(&[
        "get",
        "si",
        "--status",
        "OUT_OF_SERVICE",
        "--server",
        &server,
    ]);
    let ids: Vec<String> = out
        .ok()
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().nth(2).unwrap().to_string())
        .collect();
    assert_eq!(ids, ["order-b"]);
    let out = sandbox.run(&[
        "get",
        "si",
        "--label",
        "version=v1",
        "--tenant",
        "takeaway",
        "-o",
        "json",
        "--server",
        &server,
    ]);
    let items = out.json()["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["instanceID"], "order-a");

    // b comes back.
    heartbeat(&daemon, &["order-b"]);
    eventually(Duration::from_secs(5), "order-b back up", || {
        status_of(&daemon, "order-b") == "UP"
    });

    // emctl's delete of an instance takes it offline, and heartbeats do not undo it.
    let out = sandbox.run(&[
        "delete",
        "serviceinstance",
        "order/order-a",
        "--server",
        &server,
    ]);
    assert_eq!(out.ok(), "serviceinstance/order/order-a taken offline\n");
    for _ in 0..15 {
        heartbeat(&daemon, &["order-a", "order-b"]);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(status_of(&daemon, "order-a"), "OUT_OF_SERVICE");
    let (status, _) = call(
        &daemon,
        "POST",
        "/api/v1/registry/instances/order/order-a/online",
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(status_of(&daemon, "order-a"), "UP");

    // The catalog in tables and YAML.
    let tenants = sandbox
        .run(&["get", "tenants", "--server", &server])
        .ok()
        .to_string();
    assert!(
        tenants.contains("takeaway")
            && tenants.contains("order")
            && tenants.contains("the takeaway demo"),
        "{tenants}"
    );
    let yaml = sandbox
        .run(&[
            "get", "services", "order", "-o", "yaml", "--server", &server,
        ])
        .ok()
        .to_string();
    assert!(
        yaml.contains("kind: Service") && yaml.contains("registerTenant: takeaway"),
        "{yaml}"
    );
    let svc_rejected = sandbox.run(&["delete", "tenant", "takeaway", "--server", &server]);
    assert!(svc_rejected.fails().contains("still has services (order)"));

    // The history of b: why it went out of service, and when it came back.
    let history = sandbox
        .run(&["history", "si", "order/order-b", "--server", &server])
        .ok()
        .to_string();
    let events: Vec<&str> = history
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().nth(2).unwrap())
        .collect();
    assert_eq!(
        events,
        [
            "instance.registered",
            "instance.out_of_service",
            "instance.recovered"
        ],
        "{history}"
    );
    assert!(
        history.contains("out of service: last heartbeat "),
        "{history}"
    );
    let tenant = sandbox
        .run(&[
            "history", "tenant", "takeaway", "-o", "json", "--server", &server,
        ])
        .json();
    assert_eq!(tenant["items"].as_array().unwrap().len(), 2, "{tenant}");
    let missing = sandbox
        .run(&["history", "si", "order/nobody", "--server", &server])
        .fails()
        .to_string();
    assert!(missing.contains("no history"), "{missing}");

    // `services` is the mesh's; with a namespace the user meant Kubernetes Services.
    let err = sandbox
        .run(&["get", "services", "-n", "shop", "--server", &server])
        .fails()
        .to_string();
    assert!(err.contains("use `svc`"), "{err}");

    // Bad input: a service of a missing tenant is refused, naming the document and field.
    let bad = sandbox.write("bad.yaml", "apiVersion: mesh.megaease.com/v2alpha1\nkind: Service\nmetadata:\n  name: pay\nspec:\n  registerTenant: bank\n");
    let err = sandbox
        .run(&["apply", "-f", bad.to_str().unwrap(), "--server", &server])
        .fails()
        .to_string();
    assert!(
        err.contains("spec.registerTenant") && err.contains("tenant `bank` does not exist"),
        "{err}"
    );

    // Replay reproduces what the daemon decided. (Fresh heartbeats first, so both instances
    // are UP when the daemon stops.)
    heartbeat(&daemon, &["order-a", "order-b"]);
    assert_eq!(
        (status_of(&daemon, "order-a"), status_of(&daemon, "order-b")),
        ("UP".into(), "UP".into())
    );
    let mut daemon = daemon;
    daemon.terminate();
    let replay = sandbox
        .run(&["replay", "--data", data.to_str().unwrap()])
        .ok()
        .to_string();
    assert!(
        replay.contains("state.service ") && replay.contains("state.instance "),
        "{replay}"
    );
    let again = sandbox
        .run(&["replay", "--data", data.to_str().unwrap(), "--digest"])
        .ok()
        .to_string();
    assert_eq!(replay.lines().last(), again.lines().last());
    // Time travel: the state right after the catalog was applied (positions 1-3) has the
    // catalog and no instance; a position past the end is refused.
    let at_three = sandbox
        .run(&["replay", "--data", data.to_str().unwrap(), "--to", "3"])
        .ok()
        .to_string();
    assert!(
        at_three.contains("events folded 3") && at_three.contains("services 1"),
        "{at_three}"
    );
    assert!(
        at_three.contains("instances 0 (up 0, out of service 0)"),
        "{at_three}"
    );
    assert_ne!(at_three.lines().last(), replay.lines().last());
    let past = sandbox
        .run(&["replay", "--data", data.to_str().unwrap(), "--to", "999999"])
        .fails()
        .to_string();
    assert!(past.contains("past the end of the log"), "{past}");

    // After a restart the instances are still registered, with a grace before silence counts.
    let daemon = Daemon::start(&sandbox, &data, &sandbox.path("manifests"));
    assert_eq!(status_of(&daemon, "order-a"), "UP");
    assert_eq!(status_of(&daemon, "order-b"), "UP");

    // The README's deletes: EaseMesh answers 200 with an empty body, which the CLI accepts.
    let server = daemon.url.clone();
    let out = sandbox.run(&["delete", "service", "order", "--server", &server]);
    assert_eq!(out.ok(), "service/order deleted\n");
    let out = sandbox.run(&["delete", "tenant", "takeaway", "--server", &server]);
    assert_eq!(out.ok(), "tenant/takeaway deleted\n");
}

#[test]
fn snapshots_speed_up_start_up_and_a_bad_one_is_ignored() {
    let sandbox = Sandbox::new();
    let data = sandbox.path("data");
    let manifests = sandbox.path("manifests");
    let flags = [
        "--manifests",
        manifests.to_str().unwrap(),
        "--snapshot-every",
        "3",
    ];
    let mut daemon = Daemon::start_with(&sandbox, &data, &flags, "127.0.0.1");
    sandbox.apply("catalog.yaml", CATALOG, &daemon.url);
    for id in ["s1", "s2", "s3"] {
        register(&daemon, id, "v1");
    }
    let snapshots = data.join("snapshots");
    eventually(Duration::from_secs(10), "a snapshot", || {
        std::fs::read_dir(&snapshots).is_ok_and(|d| d.count() > 0)
    });
    daemon.terminate();
    let digest = |sandbox: &Sandbox| {
        sandbox
            .run(&["replay", "--data", data.to_str().unwrap(), "--digest"])
            .ok()
            .lines()
            .last()
            .unwrap()
            .to_string()
    };
    let before = digest(&sandbox);

    // Restart: the state comes from the snapshot plus the tail, and is the same.
    let mut daemon = Daemon::start_with(&sandbox, &data, &flags, "127.0.0.1");
    assert!(
        daemon.log_text().contains("loaded a snapshot"),
        "{}",
        daemon.log_text()
    );
    assert_eq!(status_of(&daemon, "s3"), "UP");
    daemon.terminate();
    assert_eq!(digest(&sandbox), before);

    // Every snapshot damaged: ignored with a warning, the full log replayed.
    for entry in std::fs::read_dir(&snapshots).unwrap() {
        let path = entry.unwrap().path();
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();
    }
    let daemon = Daemon::start_with(&sandbox, &data, &flags, "127.0.0.1");
    assert!(
        daemon.log_text().contains("ignoring a snapshot"),
        "{}",
        daemon.log_text()
    );
    assert_eq!(status_of(&daemon, "s3"), "UP");
}
