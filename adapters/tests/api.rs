//! The HTTP API against a real dispatcher and actors over an in-memory log.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{test, web, App};
use adapters::api::{self, ApiState, Auth};
use adapters::daemon::start_host;
use adapters::metrics::Metrics;
use events::backend::memory::MemoryBackend;
use events::{EventStore, Log};
use serde_json::{json, Value};

struct Fixture {
    store: Arc<dyn EventStore>,
    state: web::Data<ApiState>,
}

fn fixture(token: Option<&str>, max_body_bytes: usize) -> Fixture {
    let store: Arc<dyn EventStore> = Arc::new(Log::open(MemoryBackend::new()).unwrap());
    let metrics = Arc::new(Metrics::default());
    let host = start_host(store.clone(), metrics.clone(), None).unwrap();
    let state = web::Data::new(ApiState {
        dispatcher: host.dispatcher,
        metrics,
        auth: Auth::new(token.map(str::to_string)),
        max_body_bytes,
        http: Default::default(),
        io: Default::default(),
        snapshots: None,
        past: Default::default(),
    });
    Fixture { store, state }
}

macro_rules! app {
    ($f:expr) => {
        test::init_service(App::new().configure(api::configure($f.state.clone()))).await
    };
}

const CM_YAML: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n  namespace: shop\n  labels:\n    app: web\ndata:\n  greeting: hello\n";

fn post_yaml(body: &str) -> test::TestRequest {
    test::TestRequest::post()
        .uri("/api/v1/apply")
        .insert_header(("content-type", "application/yaml"))
        .set_payload(body.to_string())
}

async fn error_of(resp: actix_web::dev::ServiceResponse) -> (StatusCode, Value) {
    let status = resp.status();
    let ct = resp
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(ct, "application/json", "errors are JSON");
    let body: Value = test::read_body_json(resp).await;
    assert_eq!(body["code"], status.as_u16());
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    (status, body)
}

#[actix_web::test]
async fn apply_get_list_delete_round_trip() {
    let f = fixture(None, 1 << 20);
    let app = app!(f);

    let resp = test::call_service(&app, post_yaml(CM_YAML).to_request()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = test::read_body_json(resp).await;
    assert_eq!(body["results"][0]["outcome"], "created");
    assert_eq!(body["results"][0]["position"], 1);
    assert_eq!(f.store.head(), 1);

    // Identical content: unchanged, nothing appended.
    let body: Value = test::call_and_read_body_json(&app, post_yaml(CM_YAML).to_request()).await;
    assert_eq!(body["results"][0]["outcome"], "unchanged");
    assert_eq!(f.store.head(), 1);

    let obj: Value = test::call_and_read_body_json(
        &app,
        test::TestRequest::get()
            .uri("/api/v1/resources/cm/web?namespace=shop")
            .to_request(),
    )
    .await;
    assert_eq!(obj["data"]["greeting"], "hello");
    assert_eq!(obj["metadata"]["labels"]["app"], "web");
    assert_eq!(obj["metadata"]["resourceVersion"], "1");
    assert_eq!(obj["metadata"]["generation"], 1);

    let resp = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/api/v1/resources/configmaps/web?namespace=shop")
            .insert_header(("accept", "application/yaml"))
            .to_request(),
    )
    .await;
    assert_eq!(
        resp.headers().get("content-type").unwrap(),
        "application/yaml"
    );
    let text = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
    assert!(text.contains("greeting: hello"), "{text}");

    let list: Value = test::call_and_read_body_json(
        &app,
        test::TestRequest::get()
            .uri("/api/v1/resources/ConfigMap")
            .to_request(),
    )
    .await;
    assert_eq!(list["kind"], "List");
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let empty: Value = test::call_and_read_body_json(
        &app,
        test::TestRequest::get()
            .uri("/api/v1/resources/ConfigMap?namespace=other")
            .to_request(),
    )
    .await;
    assert_eq!(empty["items"].as_array().unwrap().len(), 0);

    let del: Value = test::call_and_read_body_json(
        &app,
        test::TestRequest::delete()
            .uri("/api/v1/resources/cm/web?namespace=shop")
            .to_request(),
    )
    .await;
    assert_eq!(del["outcome"], "deleted");
    assert_eq!(del["position"], 2);
    let resp = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/api/v1/resources/cm/web?namespace=shop")
            .to_request(),
    )
    .await;
    let (status, body) = error_of(resp).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["reason"], "NotFound");
}

#[actix_web::test]
async fn json_arrays_apply_atomically() {
    let f = fixture(None, 1 << 20);
    let app = app!(f);
    let good = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}});
    let bad = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"ports": [{"port": "eighty"}]}});
    let resp = test::call_service(
        &app,
        test::TestRequest::post()
            .uri("/api/v1/apply")
            .set_json(json!([good, bad]))
            .to_request(),
    )
    .await;
    let (status, body) = error_of(resp).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "documents[1].spec.ports[0].port");
    assert_eq!(f.store.head(), 0, "a rejected request appends nothing");

    let two =
        json!([good, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}]);
    let body: Value = test::call_and_read_body_json(
        &app,
        test::TestRequest::post()
            .uri("/api/v1/apply")
            .set_json(two)
            .to_request(),
    )
    .await;
    assert_eq!(body["results"][0]["position"], 1);
    assert_eq!(body["results"][1]["position"], 2);
    assert_eq!(body["results"][1]["namespace"], "");

    let dup = json!([good, good]);
    let resp = test::call_service(
        &app,
        test::TestRequest::post()
            .uri("/api/v1/apply")
            .set_json(dup)
            .to_request(),
    )
    .await;
    let (status, body) = error_of(resp).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "documents[1]");
    assert_eq!(
        body["message"],
        "documents[1]: names the same object as documents[0]"
    );
    assert_eq!(f.store.head(), 2);
}

#[actix_web::test]
async fn bad_input_gets_a_clear_error_and_appends_nothing() {
    let f = fixture(None, 4096);
    let app = app!(f);
    let cases: Vec<(test::TestRequest, StatusCode, &str)> = vec![
        (
            post_yaml("apiVersion: v1\nkind: ConfigMap\nmetadata: [unclosed\n"),
            StatusCode::BAD_REQUEST,
            "malformed YAML",
        ),
        (
            post_yaml("apiVersion: v1\nkind: Widget\nmetadata:\n  name: w\n"),
            StatusCode::BAD_REQUEST,
            "documents[0].kind: unknown kind `Widget`",
        ),
        (
            post_yaml("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels: {}\n"),
            StatusCode::BAD_REQUEST,
            "documents[0].metadata.name: Required value",
        ),
        (
            post_yaml("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  k: [1]\n"),
            StatusCode::BAD_REQUEST,
            "documents[0].data.k",
        ),
        (post_yaml(""), StatusCode::BAD_REQUEST, "no documents"),
        (
            test::TestRequest::post()
                .uri("/api/v1/apply")
                .insert_header(("content-type", "application/json"))
                .set_payload("{\"apiVersion\":"),
            StatusCode::BAD_REQUEST,
            "malformed JSON",
        ),
        (
            test::TestRequest::post()
                .uri("/api/v1/apply")
                .insert_header(("content-type", "text/html"))
                .set_payload("<p>"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "text/html",
        ),
        (
            post_yaml(&"#".repeat(5000)),
            StatusCode::PAYLOAD_TOO_LARGE,
            "4096 bytes",
        ),
        (
            test::TestRequest::get().uri("/api/v1/resources/widgets"),
            StatusCode::NOT_FOUND,
            "unknown kind `widgets`",
        ),
        (
            test::TestRequest::delete().uri("/api/v1/resources/cm/nope"),
            StatusCode::NOT_FOUND,
            "ConfigMap/default/nope not found",
        ),
        (
            test::TestRequest::patch().uri("/api/v1/resources/cm/nope"),
            StatusCode::METHOD_NOT_ALLOWED,
            "PATCH",
        ),
        (
            test::TestRequest::get().uri("/nowhere"),
            StatusCode::NOT_FOUND,
            "no route",
        ),
        (
            test::TestRequest::get().uri("/api/v1/resources/namespaces/shop?namespace=x"),
            StatusCode::BAD_REQUEST,
            "cluster-scoped",
        ),
    ];
    for (req, want_status, want_message) in cases {
        let resp = test::call_service(&app, req.to_request()).await;
        let (status, body) = error_of(resp).await;
        assert_eq!(status, want_status, "{body}");
        assert!(
            body["message"].as_str().unwrap().contains(want_message),
            "{body} lacks {want_message}"
        );
    }
    assert_eq!(f.store.head(), 0);
}

#[actix_web::test]
async fn put_must_match_its_path() {
    let f = fixture(None, 1 << 20);
    let app = app!(f);
    let resp = test::call_service(
        &app,
        test::TestRequest::put()
            .uri("/api/v1/resources/cm/other?namespace=shop")
            .insert_header(("content-type", "application/yaml"))
            .set_payload(CM_YAML)
            .to_request(),
    )
    .await;
    let (status, body) = error_of(resp).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("path names ConfigMap/shop/other"));
    let body: Value = test::call_and_read_body_json(
        &app,
        test::TestRequest::put()
            .uri("/api/v1/resources/cm/web?namespace=shop")
            .insert_header(("content-type", "application/yaml"))
            .set_payload(CM_YAML)
            .to_request(),
    )
    .await;
    assert_eq!(body["outcome"], "created");
}

#[actix_web::test]
async fn mutating_calls_need_the_token_when_one_is_set() {
    let f = fixture(Some("s3cret"), 1 << 20);
    let app = app!(f);
    let (status, _) =
        error_of(test::call_service(&app, post_yaml(CM_YAML).to_request()).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let wrong = post_yaml(CM_YAML)
        .insert_header(("authorization", "Bearer guess"))
        .to_request();
    let (status, _) = error_of(test::call_service(&app, wrong).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(f.store.head(), 0);
    let right = post_yaml(CM_YAML)
        .insert_header(("authorization", "Bearer s3cret"))
        .to_request();
    assert_eq!(
        test::call_service(&app, right).await.status(),
        StatusCode::OK
    );
    // Reads stay open.
    let resp = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/api/v1/resources/cm")
            .to_request(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
}

#[actix_web::test]
async fn concurrent_applies_to_one_object_all_land_in_order() {
    let f = fixture(None, 1 << 20);
    let dispatcher = f.state.dispatcher.clone();
    let mut tasks = Vec::new();
    for i in 0..50 {
        let d = dispatcher.clone();
        tasks.push(actix_rt::spawn(async move {
            let doc = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "hot"}, "data": {"n": i.to_string()}});
            let m = actors::resource::ResourceManifest::from_value(&doc).unwrap();
            d.execute(actors::MeshCommand::Resource(actors::resource::ResourceCommand::Apply(m))).await
        }));
    }
    for t in tasks {
        t.await.unwrap().expect("every apply eventually lands");
    }
    assert_eq!(f.store.head(), 50);
    assert_eq!(
        f.store
            .stream_version("resource/ConfigMap/default/hot")
            .unwrap(),
        50
    );
    let mesh = dispatcher.mesh().await.unwrap();
    assert_eq!(mesh.position, 50);
}

#[actix_web::test]
async fn health_ready_and_metrics() {
    let f = fixture(None, 1 << 20);
    let app = app!(f);
    assert_eq!(
        test::call_and_read_body(&app, test::TestRequest::get().uri("/healthz").to_request()).await,
        "ok"
    );
    assert_eq!(
        test::call_and_read_body(&app, test::TestRequest::get().uri("/readyz").to_request()).await,
        "ready"
    );
    test::call_service(&app, post_yaml(CM_YAML).to_request()).await;
    let resp =
        test::call_service(&app, test::TestRequest::get().uri("/metrics").to_request()).await;
    assert!(resp
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
    assert!(text.contains("meshplane_delivered_position 1"), "{text}");
    assert!(
        text.contains("meshplane_commands_total{outcome=\"created\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("meshplane_http_requests_total{method=\"POST\",code=\"200\"} 1"),
        "{text}"
    );
}

/// The history of an object the watchers observed: only its own observations, out of the
/// kind's shared stream; kinds meshplane only watches (Pods) are known too.
#[actix_web::test]
async fn history_of_an_observed_object() {
    use actors::cluster::{ClusterCommand, Observation};
    use events::schema::ResourceKey;
    let f = fixture(None, 1 << 20);
    let pod = |name: &str, ip: &str| Observation {
        key: ResourceKey::new("Pod", "shop", name),
        api_version: "v1".into(),
        uid: format!("uid-{name}"),
        labels: Default::default(),
        annotations: Default::default(),
        owners: Vec::new(),
        body: json!({"status": {"podIP": ip}}).to_string(),
    };
    let observe = |objects| {
        actors::MeshCommand::Cluster(ClusterCommand::Observe {
            kind: "Pod".into(),
            objects,
        })
    };
    let d = &f.state.dispatcher;
    d.execute(observe(vec![
        pod("web-1", "10.0.0.1"),
        pod("web-2", "10.0.0.2"),
    ]))
    .await
    .unwrap();
    d.execute(observe(vec![pod("web-1", "10.0.0.9")]))
        .await
        .unwrap();
    d.execute(actors::MeshCommand::Cluster(ClusterCommand::Gone {
        kind: "Pod".into(),
        keys: vec![ResourceKey::new("Pod", "shop", "web-1")],
    }))
    .await
    .unwrap();
    let app = app!(f);
    let resp = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/api/v1/history?kind=pod&name=web-1&namespace=shop")
            .to_request(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = test::read_body_json(resp).await;
    let events: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        [
            "cluster.object_observed",
            "cluster.object_observed",
            "cluster.object_gone"
        ]
    );
    let resp = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/api/v1/history?kind=pods&name=web-2&namespace=shop")
            .to_request(),
    )
    .await;
    let body: Value = test::read_body_json(resp).await;
    assert_eq!(body["items"].as_array().unwrap().len(), 1);
    let (status, error) = error_of(
        test::call_service(
            &app,
            test::TestRequest::get()
                .uri("/api/v1/history?kind=Gizmo&name=x")
                .to_request(),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error.to_string().contains("unknown kind `Gizmo`"),
        "{error}"
    );
}
