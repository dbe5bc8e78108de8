//! The registry's HTTP API (meshplane's own and EaseMesh's paths) against a real dispatcher,
//! actors and liveness table over an in-memory log.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{test, web, App};
use actors::instance::Instances;
use adapters::api::{self, ApiState, Auth};
use adapters::clock;
use adapters::daemon::start_host;
use adapters::host::timers::tick_once;
use adapters::metrics::Metrics;
use events::backend::memory::MemoryBackend;
use events::{EventStore, Log};
use serde_json::{json, Value};

struct Fixture {
    store: Arc<dyn EventStore>,
    state: web::Data<ApiState>,
}

fn fixture() -> Fixture {
    let store: Arc<dyn EventStore> = Arc::new(Log::open(MemoryBackend::new()).unwrap());
    let metrics = Arc::new(Metrics::default());
    let host = start_host(store.clone(), metrics.clone(), None).unwrap();
    let state = web::Data::new(ApiState {
        dispatcher: host.dispatcher,
        metrics,
        auth: Auth::new(None),
        max_body_bytes: 1 << 20,
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

fn post(uri: &str, body: Value) -> test::TestRequest {
    test::TestRequest::post().uri(uri).set_json(body)
}

fn put(uri: &str, body: Value) -> test::TestRequest {
    test::TestRequest::put().uri(uri).set_json(body)
}

/// Status and JSON body (Null when empty).
async fn call<S>(app: &S, req: test::TestRequest) -> (StatusCode, Value)
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
    >,
{
    let resp = test::call_service(app, req.to_request()).await;
    let status = resp.status();
    let bytes = test::read_body(resp).await;
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{e}: {bytes:?}"))
    };
    (status, body)
}

const TENANTS: &str = "/apis/v2/mesh/tenants";
const SERVICES: &str = "/apis/v2/mesh/services";

#[actix_web::test]
async fn easemesh_tenant_and_service_rules_with_its_status_codes() {
    let f = fixture();
    let app = app!(f);

    // A service whose tenant does not exist: 400, nothing appended.
    let (status, body) = call(
        &app,
        post(
            SERVICES,
            json!({"name": "order", "registerTenant": "takeaway"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], 400);
    assert_eq!(body["field"], "registerTenant");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("tenant `takeaway` does not exist"));
    assert_eq!(f.store.head(), 0);

    // A client may not set the tenant's service list.
    let (status, body) = call(
        &app,
        post(TENANTS, json!({"name": "takeaway", "services": ["x"]})),
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("services"))
    );
    assert_eq!(f.store.head(), 0);

    // Create: 201 with Location; again: 409.
    let resp = test::call_service(
        &app,
        post(TENANTS, json!({"name": "takeaway", "description": "demo"})).to_request(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(
        resp.headers().get("location").unwrap(),
        "/apis/v2/mesh/tenants/takeaway"
    );
    let (status, _) = call(&app, post(TENANTS, json!({"name": "takeaway"}))).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(f.store.head(), 1);

    let (status, _) = call(
        &app,
        post(
            SERVICES,
            json!({"name": "order", "registerTenant": "takeaway",
        "loadBalance": {"policy": "roundRobin"}}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = call(
        &app,
        post(
            SERVICES,
            json!({"name": "order", "registerTenant": "takeaway"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "duplicate service");

    // Wrong types and unknown fields: 400 naming the field, nothing appended.
    let head = f.store.head();
    for (body, field) in [
        (
            json!({"name": "pay", "registerTenant": "takeaway", "sidecar": {"ingressPort": "13001"}}),
            "sidecar.ingressPort",
        ),
        (
            json!({"name": "pay", "registerTenant": "takeaway", "loadBalanse": {}}),
            "loadBalanse",
        ),
        (json!({"name": 7, "registerTenant": "takeaway"}), "name"),
    ] {
        let (status, answer) = call(&app, post(SERVICES, body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(answer["field"], field, "{answer}");
    }
    let (status, answer) = call(
        &app,
        test::TestRequest::post()
            .uri(SERVICES)
            .insert_header(("content-type", "application/json"))
            .set_payload("{not json"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(f.store.head(), head);

    // Reads in EaseMesh's shapes: the tenant's service list is the server's.
    let (_, tenant) = call(
        &app,
        test::TestRequest::get().uri("/apis/v2/mesh/tenants/takeaway"),
    )
    .await;
    assert_eq!(tenant["services"], json!(["order"]));
    assert_eq!(tenant["description"], "demo");
    let (_, services) = call(&app, test::TestRequest::get().uri("/apis/v1/mesh/services")).await;
    assert_eq!(services[0]["name"], "order");
    assert_eq!(services[0]["sidecar"]["egressPort"], 13002);
    let (_, empty) = call(
        &app,
        test::TestRequest::get().uri("/apis/v2/mesh/serviceinstances"),
    )
    .await;
    assert_eq!(empty, json!([]), "empty lists are [], not null");

    // A tenant with services cannot be deleted.
    let (status, body) = call(
        &app,
        test::TestRequest::delete().uri("/apis/v2/mesh/tenants/takeaway"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("still has services (order)"),
        "{body}"
    );

    // PUT: the name must match the path; a missing object is 404.
    let (status, _) = call(
        &app,
        put(
            "/apis/v2/mesh/services/order",
            json!({"name": "other", "registerTenant": "takeaway"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = call(
        &app,
        put(
            "/apis/v2/mesh/services/ghost",
            json!({"registerTenant": "takeaway"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = call(
        &app,
        put(
            "/apis/v2/mesh/services/order",
            json!({"registerTenant": "takeaway",
        "loadBalance": {"policy": "random"}}),
        ),
    )
    .await;
    assert_eq!((status, body), (StatusCode::OK, Value::Null));

    // Delete the service, then the tenant.
    let (status, _) = call(
        &app,
        test::TestRequest::delete().uri("/apis/v2/mesh/services/order"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(
        &app,
        test::TestRequest::delete().uri("/apis/v2/mesh/tenants/takeaway"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(
        &app,
        test::TestRequest::get().uri("/apis/v2/mesh/tenants/takeaway"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn catalog<S>(app: &S)
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
    >,
{
    let yaml = "apiVersion: mesh.megaease.com/v2alpha1\nkind: MeshController\nmetadata:\n  name: easemesh-controller\nheartbeatInterval: 1s\nregistryType: eureka\ndeadRecordTime: 1m\n---\napiVersion: mesh.megaease.com/v2alpha1\nkind: Tenant\nmetadata:\n  name: takeaway\n---\napiVersion: mesh.megaease.com/v2alpha1\nkind: Service\nmetadata:\n  name: order\nspec:\n  registerTenant: takeaway\n";
    let (status, body) = call(
        app,
        test::TestRequest::post()
            .uri("/api/v1/apply")
            .insert_header(("content-type", "application/yaml"))
            .set_payload(yaml),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

fn registration(id: &str) -> Value {
    json!({"serviceName": "order", "instanceID": id, "ip": "10.0.0.7", "port": 13001,
           "labels": {"version": "v1"}})
}

#[actix_web::test]
async fn apply_mixes_kubernetes_and_easemesh_documents_and_names_the_bad_one() {
    let f = fixture();
    let app = app!(f);
    let ok = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n---\napiVersion: mesh.megaease.com/v2alpha1\nkind: Tenant\nmetadata:\n  name: takeaway\n---\napiVersion: mesh.megaease.com/v2alpha1\nkind: Service\nmetadata:\n  name: order\nspec:\n  registerTenant: takeaway\n";
    let apply = |body: &'static str| {
        test::TestRequest::post()
            .uri("/api/v1/apply")
            .insert_header(("content-type", "application/yaml"))
            .set_payload(body)
    };
    let (status, body) = call(&app, apply(ok)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let lines: Vec<String> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            format!(
                "{}/{} {}",
                l["kind"].as_str().unwrap(),
                l["name"].as_str().unwrap(),
                l["outcome"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            "Namespace/shop created",
            "Tenant/takeaway created",
            "Service/order created"
        ]
    );
    assert_eq!(f.store.head(), 3);
    let (_, body) = call(&app, apply(ok)).await;
    assert!(
        body["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["outcome"] == "unchanged"),
        "{body}"
    );

    // The third document names a missing tenant: the whole request is refused, naming it.
    let bad = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: other\n---\napiVersion: mesh.megaease.com/v2alpha1\nkind: Tenant\nmetadata:\n  name: t2\n---\napiVersion: mesh.megaease.com/v2alpha1\nkind: Service\nmetadata:\n  name: pay\nspec:\n  registerTenant: nope\n";
    let (status, body) = call(&app, apply(bad)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "documents[2].spec.registerTenant", "{body}");
    assert_eq!(f.store.head(), 3, "nothing appended");
}

#[actix_web::test]
async fn register_heartbeat_offline_online_deregister() {
    let f = fixture();
    let app = app!(f);
    catalog(&app).await;
    let head = f.store.head();

    // Malformed registrations: 4xx naming the field, nothing appended.
    for (body, status, field) in [
        (
            json!({"serviceName": "order", "instanceID": "a", "ip": "10.0.0.7", "port": "13001"}),
            400,
            "port",
        ),
        (
            json!({"serviceName": "order", "instanceID": "a", "ip": "nowhere", "port": 13001}),
            400,
            "ip",
        ),
        (
            json!({"serviceName": "order", "instanceID": "a/b", "ip": "10.0.0.7", "port": 13001}),
            400,
            "instanceID",
        ),
        (
            json!({"serviceName": "ghost", "instanceID": "a", "ip": "10.0.0.7", "port": 13001}),
            404,
            "",
        ),
    ] {
        let (s, answer) = call(&app, post("/api/v1/registry/instances", body.clone())).await;
        assert_eq!(s.as_u16(), status, "{body}: {answer}");
        if !field.is_empty() {
            assert_eq!(answer["field"], field, "{answer}");
        }
    }
    assert_eq!(f.store.head(), head);

    let (status, view) = call(&app, post("/api/v1/registry/instances", registration("a"))).await;
    assert_eq!(status, StatusCode::CREATED, "{view}");
    assert_eq!(
        (view["status"].as_str(), view["tenant"].as_str()),
        (Some("UP"), Some("takeaway"))
    );
    let (status, _) = call(&app, post("/api/v1/registry/instances", registration("a"))).await;
    assert_eq!(status, StatusCode::OK, "re-registering the same instance");
    call(&app, post("/api/v1/registry/instances", registration("b"))).await;
    let head = f.store.head();

    // Heartbeats: single and batched, never an event.
    let (status, _) = call(
        &app,
        test::TestRequest::put().uri("/api/v1/registry/instances/order/a/heartbeat"),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = call(
        &app,
        test::TestRequest::put().uri("/api/v1/registry/instances/order/zz/heartbeat"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, answer) = call(
        &app,
        post(
            "/api/v1/registry/heartbeats",
            json!({"heartbeats": [
        {"serviceName": "order", "instanceID": "a"}, {"serviceName": "order", "instanceID": "b"},
        {"serviceName": "order", "instanceID": "zz"}]}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        answer,
        json!({"accepted": 2, "unknown": [{"serviceName": "order", "instanceID": "zz"}]})
    );
    let (status, _) = call(
        &app,
        post("/api/v1/registry/heartbeats", json!({"beats": []})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(f.store.head(), head, "heartbeats append nothing");

    // Take a offline; heartbeats keep coming and the monitor runs: it stays out of service.
    let (status, view) = call(
        &app,
        post(
            "/api/v1/registry/instances/order/a/offline",
            json!({"reason": "drain"}),
        ),
    )
    .await;
    assert_eq!(
        (status, view["status"].as_str()),
        (StatusCode::OK, Some("OUT_OF_SERVICE"))
    );
    assert_eq!(view["offline"]["reason"], "drain");
    let dispatcher = f.state.dispatcher.clone();
    let tracker = f.state.dispatcher.memory::<Instances>();
    for _ in 0..3 {
        tracker.write(|h| h.heartbeat("order", "a", clock::now_ms()));
        tracker.write(|h| h.heartbeat("order", "b", clock::now_ms()));
        tick_once::<Instances>(&dispatcher, clock::now_ms())
            .await
            .unwrap();
    }
    let (_, list) = call(
        &app,
        test::TestRequest::get().uri("/api/v1/registry/instances?status=OUT_OF_SERVICE"),
    )
    .await;
    let ids: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["instanceID"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a"]);

    // b goes silent: 2 s (2 x 1 s) after its last heartbeat it is out of service.
    let silent_since = clock::now_ms();
    tracker.write(|h| h.heartbeat("order", "b", silent_since));
    tracker.write(|h| h.heartbeat("order", "a", silent_since + 1_500));
    let report = tick_once::<Instances>(&dispatcher, silent_since + 1_999)
        .await
        .unwrap();
    assert_eq!(report.executed, 0);
    let report = tick_once::<Instances>(&dispatcher, silent_since + 2_000)
        .await
        .unwrap();
    assert_eq!(report.executed, 1);
    let (_, b) = call(
        &app,
        test::TestRequest::get().uri("/api/v1/registry/instances/order/b"),
    )
    .await;
    assert_eq!(b["status"], "OUT_OF_SERVICE");
    assert!(b["silence"]["heartbeatSeen"].as_bool().unwrap());

    // Filters.
    let (status, _) = call(
        &app,
        test::TestRequest::get().uri("/api/v1/registry/instances?status=DOWN"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, list) = call(
        &app,
        test::TestRequest::get()
            .uri("/api/v1/registry/instances?service=order&tenant=takeaway&label=version=v1"),
    )
    .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    let (_, list) = call(
        &app,
        test::TestRequest::get().uri("/api/v1/registry/instances?label=version=v2"),
    )
    .await;
    assert!(list["items"].as_array().unwrap().is_empty());

    // EaseMesh's DELETE takes b offline (does not remove it); online brings a back.
    let (status, _) = call(
        &app,
        test::TestRequest::delete().uri("/apis/v2/mesh/serviceinstances/order/b"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, spec) = call(
        &app,
        test::TestRequest::get().uri("/apis/v2/mesh/serviceinstances/order/b"),
    )
    .await;
    assert_eq!(spec["status"], "OUT_OF_SERVICE");
    assert_eq!(spec["registryName"], "easemesh-controller");
    let (_, a) = call(
        &app,
        test::TestRequest::post().uri("/api/v1/registry/instances/order/a/online"),
    )
    .await;
    assert_eq!(a["status"], "UP");

    // Deregister.
    let (status, _) = call(
        &app,
        test::TestRequest::delete().uri("/api/v1/registry/instances/order/a"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(
        &app,
        test::TestRequest::get().uri("/api/v1/registry/instances/order/a"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(
        &app,
        test::TestRequest::delete().uri("/api/v1/registry/instances/order/a"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn catalog_reads_and_visibility() {
    let f = fixture();
    let app = app!(f);
    catalog(&app).await;
    let (_, list) = call(
        &app,
        test::TestRequest::get().uri("/api/v1/registry/services"),
    )
    .await;
    assert_eq!(list["items"][0]["kind"], "Service");
    assert_eq!(list["items"][0]["spec"]["registerTenant"], "takeaway");
    let (_, t) = call(
        &app,
        test::TestRequest::get().uri("/api/v1/registry/tenants/takeaway"),
    )
    .await;
    assert_eq!(t["spec"]["services"], json!(["order"]));
    let (_, mc) = call(
        &app,
        test::TestRequest::get().uri("/api/v1/registry/meshcontrollers"),
    )
    .await;
    assert_eq!(mc["items"][0]["spec"]["heartbeatInterval"], "1s");
    let (_, v) = call(
        &app,
        test::TestRequest::get().uri("/api/v1/registry/services/order/visible"),
    )
    .await;
    assert_eq!(v["visible"], json!(["order"]));
    let (status, _) = call(
        &app,
        test::TestRequest::get().uri("/api/v1/registry/widgets"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn service_parts_through_emctl_kinds_and_easemesh_paths() {
    let f = fixture();
    let app = app!(f);
    catalog(&app).await;
    // emctl's LoadBalance kind, named by its service.
    let yaml = "apiVersion: mesh.megaease.com/v2alpha1\nkind: LoadBalance\nmetadata:\n  name: order\nspec:\n  policy: headerHash\n  headerHashKey: X-User\n";
    let (status, body) = call(
        &app,
        test::TestRequest::post()
            .uri("/api/v1/apply")
            .insert_header(("content-type", "application/yaml"))
            .set_payload(yaml),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["results"][0]["kind"], "LoadBalance");
    assert_eq!(body["results"][0]["outcome"], "created");
    let (_, lb) = call(
        &app,
        test::TestRequest::get().uri("/apis/v2/mesh/services/order/loadbalance"),
    )
    .await;
    assert_eq!(
        lb,
        json!({"policy": "headerHash", "headerHashKey": "X-User"})
    );

    // EaseMesh's part paths: POST 201 / 409, PUT, GET, DELETE, 404 after.
    let uri = "/apis/v2/mesh/services/order/resilience";
    let (status, _) = call(&app, post(uri, json!({"retry": {"maxAttempts": 3}}))).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = call(&app, post(uri, json!({"retry": {"maxAttempts": 3}}))).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let head = f.store.head();
    let (status, body) = call(&app, put(uri, json!({"retryer": {}}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "retryer", "the body is the part itself");
    assert_eq!(f.store.head(), head);
    let (status, _) = call(&app, put(uri, json!({"failureCodes": [500, 503]}))).await;
    assert_eq!(status, StatusCode::OK);
    let (_, spec) = call(
        &app,
        test::TestRequest::get().uri("/apis/v2/mesh/services/order"),
    )
    .await;
    assert_eq!(spec["resilience"], json!({"failureCodes": [500, 503]}));
    assert_eq!(spec["loadBalance"]["policy"], "headerHash");
    let (status, _) = call(&app, test::TestRequest::delete().uri(uri)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(&app, test::TestRequest::get().uri(uri)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(
        &app,
        put(
            "/apis/v2/mesh/services/ghost/mock",
            json!({"enabled": true}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn an_easemesh_put_keeps_the_labels_and_api_version_of_the_manifest() {
    let f = fixture();
    let app = app!(f);
    let yaml = "apiVersion: mesh.megaease.com/v1alpha1\nkind: Tenant\nmetadata:\n  name: t\n---\napiVersion: mesh.megaease.com/v1alpha1\nkind: Service\nmetadata:\n  name: order\n  labels:\n    team: food\nspec:\n  registerTenant: t\n";
    let (status, body) = call(
        &app,
        test::TestRequest::post()
            .uri("/api/v1/apply")
            .insert_header(("content-type", "application/yaml"))
            .set_payload(yaml),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = call(
        &app,
        put(
            "/apis/v2/mesh/services/order",
            json!({"registerTenant": "t", "loadBalance": {"policy": "random"}}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, svc) = call(
        &app,
        test::TestRequest::get().uri("/api/v1/registry/services/order"),
    )
    .await;
    assert_eq!(svc["metadata"]["labels"]["team"], "food", "{svc}");
    assert_eq!(svc["apiVersion"], "mesh.megaease.com/v1alpha1");
    assert_eq!(svc["spec"]["loadBalance"]["policy"], "random");
}

#[actix_web::test]
async fn listings_page_with_limit_and_continue() {
    let f = fixture();
    let app = app!(f);
    catalog(&app).await;
    for i in 0..5 {
        let (status, _) = call(
            &app,
            post("/api/v1/registry/instances", registration(&format!("i{i}"))),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let mut seen = Vec::new();
    let mut uri = "/api/v1/registry/instances?limit=2&service=order".to_string();
    loop {
        let (status, page) = call(&app, test::TestRequest::get().uri(&uri)).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(
            items
                .iter()
                .map(|i| i["instanceID"].as_str().unwrap().to_string()),
        );
        match page["continue"].as_str() {
            Some(next) => {
                uri = format!("/api/v1/registry/instances?limit=2&service=order&continue={next}")
            }
            None => break,
        }
    }
    assert_eq!(seen, ["i0", "i1", "i2", "i3", "i4"]);
    for bad in ["limit=0", "limit=x", "continue=nokey"] {
        let (status, body) = call(
            &app,
            test::TestRequest::get().uri(&format!("/api/v1/registry/instances?{bad}")),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
}
