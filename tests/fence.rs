//! End-to-end: the fence through the `meshplane` binary — namespaces, services, endpoints, a
//! VirtualService, the lazyload configuration and a ServiceFence applied with `meshplane
//! apply`; real Envoy ALS protobuf messages streamed to the gRPC endpoint; the Sidecar and the
//! fence status written to the manifest directory; bad entries counted and skipped; `explain`.

#![allow(
    clippy::disallowed_methods,
    reason = "end-to-end tests time the running daemon on the real clock"
)]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use adapters::concepts::fence::als::client;
use serde_json::Value;
use support::{eventually, free_port, raw_request, Daemon, Sandbox};

const CLUSTER: &str = "\
apiVersion: v1
kind: Namespace
metadata:
  name: default
---
apiVersion: v1
kind: Service
metadata: {name: productpage, namespace: default, labels: {app: productpage}}
spec: {selector: {app: productpage}, ports: [{name: http, port: 9080}]}
---
apiVersion: v1
kind: Service
metadata: {name: details, namespace: default, labels: {app: details}}
spec: {selector: {app: details}, ports: [{name: http, port: 9080}]}
---
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default, labels: {app: reviews}}
spec: {selector: {app: reviews}, ports: [{name: http, port: 9080}]}
---
apiVersion: v1
kind: Endpoints
metadata: {name: productpage, namespace: default}
subsets: [{addresses: [{ip: 10.1.0.1}], ports: [{port: 9080}]}]
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews-v2}
---
apiVersion: config.netease.com/v1alpha1
kind: SlimeBoot
metadata: {name: lazyload, namespace: mesh-operator}
spec:
  module:
  - name: lazyload
    kind: lazyload
    enable: true
    general:
      wormholePort: ['9080']
      refreshWindow: 1s
      dependencyTtl: 1h
    global:
      misc: {metricSourceType: accesslog}
---
apiVersion: microservice.slime.io/v1alpha1
kind: ServiceFence
metadata: {name: productpage, namespace: default}
spec:
  enable: true
  workloadSelector: {fromService: true}
";

fn read_yaml(path: &std::path::Path) -> Option<Value> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_norway::from_str(&text).ok()
}

fn egress(sidecar: &Value) -> Vec<String> {
    sidecar["spec"]["egress"][0]["hosts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|h| h.as_str().map(str::to_string))
        .collect()
}

fn stream(addr: SocketAddr, messages: Vec<client::StreamAccessLogsMessage>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let mut als = client::connect(addr)
            .await
            .expect("connect to the ALS endpoint");
        als.stream_access_logs(futures::stream::iter(messages))
            .await
            .expect("the stream is accepted");
    });
}

#[test]
fn access_logs_streamed_over_grpc_narrow_the_sidecar() {
    let sandbox = Sandbox::new();
    let data = sandbox.path("data");
    let manifests = sandbox.path("manifests");
    let als_port = free_port("127.0.0.1");
    let als: SocketAddr = format!("127.0.0.1:{als_port}").parse().unwrap();
    let daemon = Daemon::start_with(
        &sandbox,
        &data,
        &[
            "--manifests",
            manifests.to_str().unwrap(),
            "--als-listen",
            &als.to_string(),
        ],
        "127.0.0.1",
    );
    let server = ["--server", daemon.url.as_str()];
    let file = sandbox.write("cluster.yaml", CLUSTER);
    sandbox
        .run(&[&["apply", "-f", file.to_str().unwrap()][..], &server].concat())
        .ok();

    let sidecar_file = manifests.join("default/sidecar.productpage.yaml");
    eventually(Duration::from_secs(10), "the fence's first Sidecar", || {
        read_yaml(&sidecar_file).is_some()
    });
    let sidecar = read_yaml(&sidecar_file).unwrap();
    assert_eq!(
        egress(&sidecar),
        vec!["istio-system/*", "mesh-operator/*"],
        "before any traffic only the mesh namespaces"
    );
    assert_eq!(
        sidecar["spec"]["workloadSelector"]["labels"]["app"],
        "productpage"
    );
    assert_eq!(
        sidecar["metadata"]["ownerReferences"][0]["kind"],
        "ServiceFence"
    );

    // The global sidecar's inbound log: productpage (10.1.0.1) calls details and reviews by
    // short name; plus entries that must be counted and skipped.
    let mut bad = client::http_entry("10.1.0.1", "inbound|9080||", "details:9080", None);
    bad.request = None;
    stream(
        als,
        vec![
            client::message(&[
                ("10.1.0.1", "inbound|9080||", "details:9080", None),
                ("10.1.0.1", "inbound|9080||", "reviews:9080", None),
                ("10.1.0.1", "inbound|9080||", "details:9080", None),
                ("10.9.9.9", "inbound|9080||", "ratings:9080", None),
                ("10.1.0.1", "inbound|9080||", "10.1.0.7:9080", None),
                (
                    "10.1.0.1",
                    "outbound|9080||details.default.svc.cluster.local",
                    "details",
                    None,
                ),
            ]),
            client::http_message(vec![bad]),
            client::tcp_message(2),
        ],
    );

    let want = [
        "*/details.default.svc.cluster.local",
        "*/reviews-v2.default.svc.cluster.local",
        "*/reviews.default.svc.cluster.local",
        "istio-system/*",
        "mesh-operator/*",
    ];
    eventually(
        Duration::from_secs(10),
        "the learned dependencies in the Sidecar",
        || read_yaml(&sidecar_file).is_some_and(|s| egress(&s) == want),
    );
    let fence = read_yaml(&manifests.join("default/servicefence.productpage.yaml")).unwrap();
    let status = &fence["status"];
    assert_eq!(
        status["metricStatus"]["{destination_service=\"details.default.svc.cluster.local\"}"],
        "1"
    );
    assert_eq!(
        status["domains"]["reviews.default.svc.cluster.local"]["hosts"],
        serde_json::json!([
            "reviews.default.svc.cluster.local",
            "reviews-v2.default.svc.cluster.local"
        ])
    );

    // Counted and skipped, never fatal: the stream above went on after each.
    let (code, body) = raw_request(daemon.port, "GET", "/api/v1/accesslog", &[], Vec::new());
    assert_eq!(code, 200, "{body}");
    let counts: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        counts["received"], 9,
        "6 + 1 HTTP entries and 2 TCP ones: {counts}"
    );
    assert_eq!(counts["malformed"], 1, "{counts}");
    assert_eq!(counts["unknown_source"], 1, "{counts}");
    assert_eq!(counts["unknown_destination"], 1, "{counts}");
    assert!(counts["not_inbound"].as_u64().unwrap() >= 1, "{counts}");
    assert_eq!(counts["sightings"], 2, "{counts}");

    // explain names the evidence.
    let out = sandbox.run(&[&["explain", "sidecar", "default/productpage"][..], &server].concat());
    let text = out.ok();
    assert!(
        text.contains(
            "learned from accesslog (details:9080, caller 10.1.0.1 → default/productpage)"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "VirtualService default/reviews routes reviews.default.svc.cluster.local here"
        ),
        "{text}"
    );
    assert!(text.contains("mesh namespace istio-system"), "{text}");

    // JSON lines over HTTP reach the same intake; malformed lines are counted.
    let lines = "{\"downstream_ip\":\"10.1.0.1\",\"authority\":\"ratings:9080\"}\nnot json\n";
    let (code, body) = raw_request(
        daemon.port,
        "POST",
        "/api/v1/accesslog",
        &[("content-type", "application/x-ndjson")],
        lines.as_bytes().to_vec(),
    );
    assert_eq!(code, 202, "{body}");
    assert!(body.contains("\"malformed\":1"), "{body}");
    eventually(Duration::from_secs(10), "ratings in the Sidecar", || {
        read_yaml(&sidecar_file).is_some_and(|s| {
            egress(&s).contains(&"*/ratings.default.svc.cluster.local".to_string())
        })
    });

    // The fence's history lists what it learned, with the evidence.
    let history = sandbox.run(&[&["history", "svf", "productpage"][..], &server].concat());
    assert!(
        history
            .ok()
            .contains("learned dependency details.default.svc.cluster.local"),
        "{}",
        history.ok()
    );
}

const AUTO_FENCED: &str = "\
apiVersion: config.netease.com/v1alpha1
kind: SlimeBoot
metadata: {name: lazyload, namespace: mesh-operator}
spec:
  module:
  - name: lazyload
    kind: lazyload
    enable: true
    general: {autoFence: true, defaultFence: true}
    global:
      misc: {metricSourceType: accesslog}
---
apiVersion: v1
kind: Namespace
metadata: {name: legacy, labels: {slime.io/serviceFenced: 'false'}}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Service
metadata: {name: old, namespace: legacy}
spec: {selector: {app: old}, ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: pinned, namespace: legacy, labels: {slime.io/serviceFenced: 'true'}}
spec: {selector: {app: pinned}, ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {selector: {app: web}, ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: cart, namespace: shop}
spec: {selector: {app: cart}, ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: shop, labels: {slime.io/serviceFenced: 'false'}}
spec: {selector: {app: db}, ports: [{name: tcp, port: 5432}]}
---
apiVersion: v1
kind: Service
metadata: {name: external, namespace: shop}
spec: {ports: [{name: http, port: 80}]}
";

/// The fence files (`servicefence.*`, `sidecar.*`) of a namespace's manifest directory, sorted.
fn fence_files(manifests: &std::path::Path, namespace: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(manifests.join(namespace))
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("servicefence.") || n.starts_with("sidecar."))
        .collect();
    names.sort();
    names
}

fn files_of(fences: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = fences
        .iter()
        .flat_map(|f| {
            [
                format!("servicefence.{f}.yaml"),
                format!("sidecar.{f}.yaml"),
            ]
        })
        .collect();
    names.sort();
    names
}

#[test]
fn auto_fencing_follows_the_labels_and_replays_deterministically() {
    let sandbox = Sandbox::new();
    let data = sandbox.path("data");
    let manifests = sandbox.path("manifests");
    let mut daemon = Daemon::start(&sandbox, &data, &manifests);
    let server = ["--server", daemon.url.as_str()];
    let apply = |name: &str, yaml: &str| {
        let file = sandbox.write(name, yaml);
        sandbox
            .run(&[&["apply", "-f", file.to_str().unwrap()][..], &server].concat())
            .ok();
    };
    apply("cluster.yaml", AUTO_FENCED);

    // defaultFence fences shop's services with a selector, except the one labelled "false";
    // legacy is labelled "false", so only its service labelled "true" is fenced.
    let expect = |namespace: &str, fences: &[&str]| {
        let want = files_of(fences);
        eventually(
            Duration::from_secs(10),
            &format!("fence files {want:?} in {namespace}"),
            || fence_files(&manifests, namespace) == want,
        );
    };
    expect("shop", &["cart", "web"]);
    expect("legacy", &["pinned"]);
    let web = read_yaml(&manifests.join("shop/servicefence.web.yaml")).unwrap();
    assert_eq!(
        web["metadata"]["labels"]["app.kubernetes.io/created-by"],
        "fence-controller"
    );
    assert_eq!(web["spec"]["workloadSelector"]["fromService"], true);
    let sidecar = read_yaml(&manifests.join("shop/sidecar.web.yaml")).unwrap();
    assert_eq!(
        sidecar["spec"]["workloadSelector"]["labels"],
        serde_json::json!({"app": "web"})
    );
    assert_eq!(egress(&sidecar), vec!["istio-system/*", "mesh-operator/*"]);

    // Relabel: legacy fenced, shop not; the service labels still win.
    apply(
        "relabel.yaml",
        "\
apiVersion: v1
kind: Namespace
metadata: {name: legacy, labels: {slime.io/serviceFenced: 'true'}}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {slime.io/serviceFenced: 'false'}}
",
    );
    expect("legacy", &["old", "pinned"]);
    expect("shop", &[]);

    // legacy/old learns a dependency (the caller named explicitly).
    let line = "{\"source\":\"legacy/old\",\"authority\":\"web.shop.svc.cluster.local:80\"}\n";
    let (code, body) = raw_request(
        daemon.port,
        "POST",
        "/api/v1/accesslog",
        &[("content-type", "application/x-ndjson")],
        line.as_bytes().to_vec(),
    );
    assert_eq!(code, 202, "{body}");
    let old = manifests.join("legacy/sidecar.old.yaml");
    eventually(Duration::from_secs(10), "web in old's Sidecar", || {
        read_yaml(&old).is_some_and(|s| {
            egress(&s)
                == [
                    "*/web.shop.svc.cluster.local",
                    "istio-system/*",
                    "mesh-operator/*",
                ]
        })
    });

    assert_eq!(
        daemon.terminate(),
        Some(0),
        "graceful shutdown:\n{}",
        daemon.log_text()
    );
    let data_arg = data.to_str().unwrap();
    let first = sandbox.run(&["replay", "--data", data_arg, "--digest"]);
    let second = sandbox.run(&["replay", "--data", data_arg, "--digest"]);
    let digest = first.ok().to_string();
    assert_eq!(digest, second.ok(), "replay is deterministic");
    let last = digest.lines().last().unwrap();
    assert!(
        last.starts_with("digest ") && last.len() == "digest ".len() + 64,
        "{digest}"
    );
    let report = sandbox.run(&["replay", "--data", data_arg]);
    let report = report.ok();
    assert!(
        report
            .lines()
            .any(|l| l == "fences 2 (sidecars 2, learned dependencies 1)"),
        "{report}"
    );
    assert!(report.ends_with(&digest), "{report}");
}
