//! The fence API against a real dispatcher, actors and access-log intake over an in-memory log:
//! validation of the fence's inputs, the JSON-lines intake, fences and their Sidecars, learning,
//! ageing through the monitor, and Prometheus mode against a fake Prometheus.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{test, web, App};
use actors::fence::Fences;
use adapters::api::{self, ApiState, Auth};
use adapters::clock::rfc3339;
use adapters::concepts::fence::intake::Intake;
use adapters::concepts::fence::monitor::run_monitor;
use adapters::concepts::fence::prometheus::fake::FakePrometheus;
use adapters::daemon::start_host;
use adapters::host::timers::tick_once;
use adapters::metrics::Metrics;
use events::backend::memory::MemoryBackend;
use events::schema::Via;
use events::{Event, EventStore, Log};
use serde_json::{json, Value};

struct Fixture {
    store: Arc<dyn EventStore>,
    state: web::Data<ApiState>,
    intake: Arc<Intake>,
}

/// A dispatcher over an in-memory log with the access-log intake running (inside the test's
/// actix system).
fn fixture(token: Option<&str>, max_body_bytes: usize) -> Fixture {
    let store: Arc<dyn EventStore> = Arc::new(Log::open(MemoryBackend::new()).unwrap());
    let metrics = Arc::new(Metrics::default());
    let host = start_host(store.clone(), metrics.clone(), None).unwrap();
    let (fence_io, intake, _task) = adapters::concepts::fence::start_intake(&host.dispatcher);
    let mut io = adapters::concepts::IoData::default();
    io.insert(fence_io);
    let state = web::Data::new(ApiState {
        dispatcher: host.dispatcher,
        metrics,
        auth: Auth::new(token.map(str::to_string)),
        max_body_bytes,
        http: Default::default(),
        io,
        snapshots: None,
        past: Default::default(),
    });
    Fixture {
        store,
        state,
        intake,
    }
}

macro_rules! app {
    ($f:expr) => {
        test::init_service(App::new().configure(api::configure($f.state.clone()))).await
    };
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

/// The intake's counters.
async fn counts<S>(app: &S) -> Value
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
    >,
{
    let (status, body) = call(app, get("/api/v1/accesslog")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn apply(docs: Value) -> test::TestRequest {
    test::TestRequest::post()
        .uri("/api/v1/apply")
        .set_json(docs)
}

fn lines(body: &str) -> test::TestRequest {
    test::TestRequest::post()
        .uri("/api/v1/accesslog")
        .insert_header(("content-type", "application/x-ndjson"))
        .set_payload(body.to_string())
}

fn get(uri: &str) -> test::TestRequest {
    test::TestRequest::get().uri(uri)
}

/// Poll `check` every 10 ms until it holds; panic after 10 s.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let polled = tokio::time::timeout(Duration::from_secs(10), async {
        while !check().await {
            actix_rt::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(polled.is_ok(), "timed out waiting for {what}");
}

fn namespace(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "labels": labels}})
}

fn service(ns: &str, name: &str, selector: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "spec": {"selector": selector, "ports": [{"name": "http", "port": 9080}]}})
}

fn endpoints(ns: &str, name: &str, ip: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name, "namespace": ns},
        "subsets": [{"addresses": [{"ip": ip}], "ports": [{"port": 9080}]}]})
}

fn fence(ns: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": "microservice.slime.io/v1alpha1", "kind": "ServiceFence",
        "metadata": {"name": name, "namespace": ns}, "spec": spec})
}

/// A SlimeBoot with one lazyload module; `metric` is the module's `metric` section (or null).
fn slimeboot(general: Value, metric: Value) -> Value {
    let mut module = json!({"name": "lazyload", "kind": "lazyload", "enable": true,
        "general": general});
    if !metric.is_null() {
        module["metric"] = metric;
    }
    json!({"apiVersion": "config.netease.com/v1alpha1", "kind": "SlimeBoot",
        "metadata": {"name": "lazyload", "namespace": "mesh-operator"},
        "spec": {"module": [module]}})
}

/// productpage (10.1.0.1) and details in `default`, productpage fenced by hand.
fn bookinfo(general: Value) -> Value {
    json!([
        slimeboot(general, Value::Null),
        namespace("default", json!({})),
        service("default", "productpage", json!({"app": "productpage"})),
        service("default", "details", json!({"app": "details"})),
        endpoints("default", "productpage", "10.1.0.1"),
        fence(
            "default",
            "productpage",
            json!({"enable": true, "workloadSelector": {"fromService": true}})
        ),
    ])
}

const FENCE: &str = "/api/v1/fences/default/productpage";
const DETAILS: &str = "details.default.svc.cluster.local";

fn egress(fence: &Value) -> Vec<String> {
    fence["sidecar"]["spec"]["egress"][0]["hosts"]
        .as_array()
        .unwrap_or_else(|| panic!("no egress hosts in {fence}"))
        .iter()
        .map(|h| h.as_str().unwrap().to_string())
        .collect()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Every event in the log after `after`, decoded, with its type.
fn events_after(store: &dyn EventStore, after: u64) -> Vec<(String, Event)> {
    store
        .read_from(after + 1, 10_000)
        .unwrap()
        .into_iter()
        .map(|e| (e.event_type.clone(), e.decode().unwrap()))
        .collect()
}

#[actix_web::test]
async fn bad_fence_input_is_refused_naming_the_field_and_appends_nothing() {
    let f = fixture(None, 1 << 20);
    let app = app!(f);
    let (status, body) = call(&app, apply(json!(namespace("default", json!({}))))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(f.store.head(), 1);

    let bad_alias = slimeboot(
        json!({"domainAliases": [
            {"pattern": "^(?P<name>[^.]+)\\.(?P<ns>[^.]+)\\.svc\\.cluster\\.local$",
             "templates": ["$name.$ns"]},
            {"pattern": "(?P<unclosed", "templates": ["$unclosed"]},
        ]}),
        Value::Null,
    );
    let cases = [
        (
            fence(
                "default",
                "a",
                json!({"enable": true, "namespaceSelector": ["foo"]}),
            ),
            "spec.namespaceSelector",
            "not supported",
        ),
        (
            fence(
                "default",
                "b",
                json!({"enable": true, "host": {
                    "reviews.default.svc.cluster.local": {"auto": {"duration": {"seconds": 60}}}}}),
            ),
            "spec.host.reviews.default.svc.cluster.local.auto",
            "not supported",
        ),
        (
            fence(
                "default",
                "c",
                json!({"enable": true, "host": {"details.default.svc.cluster.local:9080": {}}}),
            ),
            "spec.host.details.default.svc.cluster.local:9080",
            "hosts carry no port",
        ),
        (
            bad_alias,
            "spec.module[0].general.domainAliases[1]",
            "(?P<unclosed",
        ),
        (
            json!({"apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
                "metadata": {"name": "reviews", "namespace": "default"},
                "spec": {"http": [{"route": [{"destination": {"host": "reviews"}}]}]}}),
            "spec.hosts",
            "a non-empty list of hosts",
        ),
    ];
    for (doc, field, message) in cases {
        let (status, body) = call(&app, apply(doc.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{doc}: {body}");
        assert_eq!(body["code"], 400, "{body}");
        assert_eq!(body["field"], format!("documents[0].{field}"), "{body}");
        assert!(
            body["message"].as_str().unwrap().contains(message),
            "{message:?} not in {body}"
        );
        assert_eq!(f.store.head(), 1, "a refused {field} appends nothing");
    }
    let (status, body) = call(&app, get("/api/v1/fences")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["items"], json!([]), "no fence came of it");
}

#[actix_web::test]
async fn accesslog_lines_are_counted_and_bad_bodies_refused() {
    let f = fixture(None, 1024);
    let app = app!(f);
    // Two good lines (no such caller), a line that is not JSON, one without authority, blanks.
    let body = "{\"downstream_ip\":\"10.9.9.9\",\"authority\":\"details:9080\"}\n\
                not json\n\
                \n\
                {\"downstream_ip\":\"10.9.9.9\"}\r\n\
                {\"source_ip\":\"10.9.9.8\",\"host\":\"reviews\",\"start_time\":1767323045678}\n";
    let (status, answer) = call(&app, lines(body)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer, json!({"accepted": 2, "malformed": 2}));
    let c = counts(&app).await;
    assert_eq!((&c["received"], &c["malformed"]), (&json!(4), &json!(2)));
    eventually("the intake to attribute the good lines", || async {
        counts(&app).await["unknown_source"] == 2
    })
    .await;
    // Counted once, by the JSON-lines source, not again by the intake.
    let c = counts(&app).await;
    assert_eq!(
        (&c["received"], &c["malformed"], &c["sightings"]),
        (&json!(4), &json!(2), &json!(0)),
        "{c}"
    );

    // An empty body: accepted, nothing in it.
    let (status, answer) = call(&app, lines("")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer, json!({"accepted": 0, "malformed": 0}));
    let (status, answer) = call(&app, lines("\n\n")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer, json!({"accepted": 0, "malformed": 0}));

    // Over the limit: 413, not read, nothing counted.
    let line = "{\"downstream_ip\":\"10.9.9.9\",\"authority\":\"details:9080\"}\n";
    let big = line.repeat(1025 / line.len() + 1);
    assert!(big.len() > 1024);
    let (status, answer) = call(&app, lines(&big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert_eq!(answer["code"], 413);
    let c = counts(&app).await;
    assert_eq!((&c["received"], &c["malformed"]), (&json!(4), &json!(2)));
    assert_eq!(
        f.store.head(),
        0,
        "the intake never writes for unknown callers"
    );
}

#[actix_web::test]
async fn accesslog_needs_the_token_when_one_is_configured() {
    let f = fixture(Some("s3cret"), 1 << 20);
    let app = app!(f);
    let line = "{\"downstream_ip\":\"10.9.9.9\",\"authority\":\"details:9080\"}\n";

    let (status, body) = call(&app, lines(line)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["code"], 401);
    let (status, body) = call(
        &app,
        lines(line).insert_header(("authorization", "Bearer wrong")),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    // Reading the counters changes nothing: no token needed.
    let c = counts(&app).await;
    assert_eq!(c["received"], 0, "refused bodies are not counted");
    assert_eq!(c["malformed"], 0);

    let (status, body) = call(
        &app,
        lines(line).insert_header(("authorization", "Bearer s3cret")),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body, json!({"accepted": 1, "malformed": 0}));
    let c = counts(&app).await;
    assert_eq!(c["received"], 1);
}

#[actix_web::test]
async fn the_intake_routes_answer_503_when_it_is_not_running() {
    let mut f = fixture(None, 1 << 20);
    let state = f.state.clone();
    f.state = web::Data::new(ApiState {
        dispatcher: state.dispatcher.clone(),
        metrics: state.metrics.clone(),
        auth: Auth::new(None),
        max_body_bytes: 1 << 20,
        http: Default::default(),
        io: Default::default(),
        snapshots: None,
        past: Default::default(),
    });
    let app = app!(f);
    let (status, body) = call(&app, get("/api/v1/accesslog")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let (status, body) = call(&app, lines("{\"authority\":\"a\"}\n")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
}

#[actix_web::test]
async fn a_missing_fence_is_404_and_an_auto_created_one_shows_origin_label_and_sidecar() {
    let f = fixture(None, 1 << 20);
    let app = app!(f);
    let (status, body) = call(&app, get("/api/v1/fences/shop/web")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["reason"], "NotFound");
    let (status, _) = call(&app, get("/api/v1/fences/shop/web/explain")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let mut headless = service("shop", "headless", json!({}));
    headless["spec"].as_object_mut().unwrap().remove("selector");
    let (status, body) = call(
        &app,
        apply(json!([
            slimeboot(
                json!({"autoFence": true, "defaultFence": true}),
                Value::Null
            ),
            namespace("shop", json!({})),
            service("shop", "web", json!({"app": "web", "version": "v1"})),
            headless,
        ])),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, body) = call(&app, get("/api/v1/fences/shop/web")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["origin"],
        json!({"kind": "auto", "reason": "defaultFence"})
    );
    let sf = &body["serviceFence"];
    assert_eq!(sf["kind"], "ServiceFence");
    assert_eq!(sf["apiVersion"], "microservice.slime.io/v1alpha1");
    assert_eq!(
        sf["metadata"]["labels"]["app.kubernetes.io/created-by"],
        "fence-controller"
    );
    assert_eq!(
        sf["spec"],
        json!({"enable": true, "workloadSelector": {"fromService": true}})
    );
    let sidecar = &body["sidecar"];
    assert_eq!(sidecar["kind"], "Sidecar");
    assert_eq!(sidecar["metadata"]["name"], "web");
    assert_eq!(sidecar["metadata"]["namespace"], "shop");
    assert_eq!(
        sidecar["metadata"]["ownerReferences"][0]["kind"],
        "ServiceFence"
    );
    assert_eq!(
        sidecar["spec"]["workloadSelector"]["labels"],
        json!({"app": "web", "version": "v1"}),
        "the service's selector (fromService)"
    );
    assert_eq!(
        egress(&body),
        strings(&["istio-system/*", "mesh-operator/*"])
    );

    // A service without a selector is never auto-fenced.
    let (status, _) = call(&app, get("/api/v1/fences/shop/headless")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, list) = call(&app, get("/api/v1/fences")).await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    assert_eq!(
        (
            &items[0]["namespace"],
            &items[0]["name"],
            &items[0]["sidecar"]
        ),
        (&json!("shop"), &json!("web"), &json!(true))
    );
}

#[actix_web::test]
async fn json_lines_teach_the_fence_and_repeats_within_the_window_append_nothing() {
    let f = fixture(None, 1 << 20);
    let app = app!(f);
    let (status, body) = call(
        &app,
        apply(bookinfo(
            json!({"refreshWindow": "1m", "dependencyTtl": "1h"}),
        )),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, before) = call(&app, get(FENCE)).await;
    assert_eq!(
        egress(&before),
        strings(&["istio-system/*", "mesh-operator/*"])
    );
    let applied = f.store.head();

    let body = "{\"downstream_ip\":\"10.1.0.1\",\"authority\":\"details:9080\"}\n\
                {\"downstream_ip\":\"10.1.0.1\",\"authority\":\"ratings.default.svc.cluster.local\"}\n";
    let (status, answer) = call(&app, lines(body)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer, json!({"accepted": 2, "malformed": 0}));
    let want = strings(&[
        "*/details.default.svc.cluster.local",
        "*/ratings.default.svc.cluster.local",
        "istio-system/*",
        "mesh-operator/*",
    ]);
    eventually("the learned hosts in the Sidecar", || async {
        egress(&call(&app, get(FENCE)).await.1) == want
    })
    .await;
    let (_, fence) = call(&app, get(FENCE)).await;
    assert_eq!(
        fence["serviceFence"]["status"]["metricStatus"],
        json!({
            "{destination_service=\"details.default.svc.cluster.local\"}": "1",
            "{destination_service=\"ratings.default.svc.cluster.local\"}": "1",
        })
    );
    let learned = events_after(f.store.as_ref(), applied);
    assert_eq!(learned.len(), 2, "one event per new dependency");
    for (event_type, event) in &learned {
        assert_eq!(event_type, "fence.dependency_learned");
        let Event::DependencyLearned(e) = event else {
            panic!("{event:?}")
        };
        assert_eq!(e.via, Via::AccessLog);
        assert_eq!(e.fence.to_string(), "default/productpage");
        assert_eq!(e.source, "10.1.0.1 → default/productpage");
    }
    let head = f.store.head();
    let c = counts(&app).await;
    assert_eq!((&c["sightings"], &c["fresh"]), (&json!(2), &json!(0)));

    // The same calls again inside the refresh window: counted fresh, no event.
    let (status, answer) = call(&app, lines(body)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    eventually("the repeats counted as fresh", || async {
        counts(&app).await["fresh"] == 2
    })
    .await;
    let c = counts(&app).await;
    assert_eq!(c["sightings"], 2, "{c}");
    assert_eq!(f.store.head(), head, "repeats append nothing");
    let (_, after) = call(&app, get(FENCE)).await;
    assert_eq!(egress(&after), want);
}

#[actix_web::test]
async fn the_monitor_ages_a_learned_dependency_idle_then_forgotten() {
    let f = fixture(None, 1 << 20);
    let app = app!(f);
    let dispatcher = f.state.dispatcher.clone();
    let (status, body) = call(
        &app,
        apply(bookinfo(json!({
            "dependencyTtl": "200ms", "idleGrace": "200ms", "refreshWindow": "50ms"
        }))),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let applied = f.store.head();

    let line = "{\"downstream_ip\":\"10.1.0.1\",\"authority\":\"details:9080\"}\n";
    let (status, _) = call(&app, lines(line)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    eventually("the dependency learned", || async {
        f.store.head() > applied
    })
    .await;
    let learned = events_after(f.store.as_ref(), applied);
    let [(_, Event::DependencyLearned(e))] = learned.as_slice() else {
        panic!("{learned:?}")
    };
    let seen = e.seen_at_ms;
    let head = f.store.head();

    // Not yet due: nothing swept, nothing appended.
    assert_eq!(
        tick_once::<Fences>(&dispatcher, seen + 199)
            .await
            .unwrap()
            .due,
        0
    );
    assert_eq!(f.store.head(), head);

    // Unseen for the TTL: idle (EXPIREWAIT), still in the Sidecar.
    assert_eq!(
        tick_once::<Fences>(&dispatcher, seen + 200)
            .await
            .unwrap()
            .due,
        1
    );
    let idle = events_after(f.store.as_ref(), head);
    let [(event_type, Event::DependencyIdle(e))] = idle.as_slice() else {
        panic!("{idle:?}")
    };
    assert_eq!(event_type, "fence.dependency_idle");
    assert_eq!(e.host, DETAILS);
    assert_eq!(
        (
            e.ageing.last_seen_ms,
            e.ageing.deadline_ms,
            e.ageing.detected_at_ms
        ),
        (seen, seen + 200, seen + 200)
    );
    let (_, fence) = call(&app, get(FENCE)).await;
    assert_eq!(
        fence["serviceFence"]["status"]["domains"][DETAILS],
        json!({"hosts": [DETAILS], "status": "EXPIREWAIT"})
    );
    assert_eq!(
        egress(&fence),
        strings(&[
            "*/details.default.svc.cluster.local",
            "istio-system/*",
            "mesh-operator/*"
        ])
    );
    // Idle, not yet forgotten: sweeping again changes nothing.
    let head = f.store.head();
    assert_eq!(
        tick_once::<Fences>(&dispatcher, seen + 399)
            .await
            .unwrap()
            .due,
        0
    );
    assert_eq!(f.store.head(), head);

    // Unseen for the grace as well: forgotten, out of the status and the Sidecar.
    assert_eq!(
        tick_once::<Fences>(&dispatcher, seen + 400)
            .await
            .unwrap()
            .due,
        1
    );
    let forgotten = events_after(f.store.as_ref(), head);
    let [(event_type, Event::DependencyForgotten(e))] = forgotten.as_slice() else {
        panic!("{forgotten:?}")
    };
    assert_eq!(event_type, "fence.dependency_forgotten");
    assert_eq!(
        (e.ageing.deadline_ms, e.ageing.detected_at_ms),
        (seen + 400, seen + 400)
    );
    let (_, fence) = call(&app, get(FENCE)).await;
    assert_eq!(fence["serviceFence"]["status"], json!({}));
    assert_eq!(
        egress(&fence),
        strings(&["istio-system/*", "mesh-operator/*"])
    );
    assert_eq!(
        tick_once::<Fences>(&dispatcher, seen + 10_000)
            .await
            .unwrap()
            .due,
        0
    );

    // The fence's history tells the whole story, with the evidence.
    let (status, history) = call(
        &app,
        get("/api/v1/history?kind=ServiceFence&name=productpage&namespace=default"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{history}");
    let items = history["items"].as_array().unwrap();
    let events: Vec<&str> = items.iter().map(|i| i["event"].as_str().unwrap()).collect();
    assert_eq!(
        events,
        [
            "resource.applied",
            "fence.dependency_learned",
            "fence.dependency_idle",
            "fence.dependency_forgotten"
        ]
    );
    let summaries: Vec<&str> = items
        .iter()
        .map(|i| i["summary"].as_str().unwrap())
        .collect();
    assert_eq!(
        summaries[1],
        format!(
            "learned dependency {DETAILS} (seen as details:9080) from accesslog at {}, caller 10.1.0.1 → default/productpage",
            rfc3339(seen)
        )
    );
    assert_eq!(
        summaries[2],
        format!(
            "dependency {DETAILS} idle (EXPIREWAIT): last seen {}, deadline {}, noticed {}",
            rfc3339(seen),
            rfc3339(seen + 200),
            rfc3339(seen + 200)
        )
    );
    assert_eq!(
        summaries[3],
        format!(
            "dependency {DETAILS} forgotten: last seen {}, deadline {}, noticed {}",
            rfc3339(seen),
            rfc3339(seen + 400),
            rfc3339(seen + 400)
        )
    );
}

#[actix_web::test]
async fn prometheus_mode_learns_what_prometheus_reports() {
    let sample = |host: &str, value: &str| json!({"metric": {"destination_service": host}, "value": [1_767_323_045.678, value]});
    let answer = json!({"status": "success", "data": {"resultType": "vector", "result": [
        sample("details.default.svc.cluster.local:9080", "12"),
        sample("reviews.default.svc.cluster.local", "3"),
        sample("unknown", "5"),
        sample("ratings.default.svc.cluster.local", "0"),
    ]}})
    .to_string();
    let prometheus = FakePrometheus::start(move |_| (200, answer.clone()));
    let f = fixture(None, 1 << 20);
    let app = app!(f);
    let query = "sum(istio_requests_total{source_app=\"$source_app\",namespace=\"$namespace\"})by(destination_service)";
    let (status, body) = call(
        &app,
        apply(json!([
            slimeboot(
                json!({"metricSourceType": "prometheus"}),
                json!({"prometheus": {"address": prometheus.address,
                    "handlers": {"destination": {"query": query}}}}),
            ),
            service("default", "productpage", json!({"app": "productpage"})),
            fence(
                "default",
                "productpage",
                json!({"enable": true, "workloadSelector": {"fromService": true}})
            ),
        ])),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let applied = f.store.head();

    let monitor = actix_rt::spawn(run_monitor(
        f.state.dispatcher.clone(),
        f.intake.clone(),
        Duration::from_millis(20),
    ));
    let want = strings(&[
        "*/details.default.svc.cluster.local",
        "*/reviews.default.svc.cluster.local",
        "istio-system/*",
        "mesh-operator/*",
    ]);
    eventually("the hosts Prometheus reported in the Sidecar", || async {
        egress(&call(&app, get(FENCE)).await.1) == want
    })
    .await;
    monitor.abort();

    let learned = events_after(f.store.as_ref(), applied);
    let hosts: Vec<(&str, &str, Via, &str)> = learned
        .iter()
        .map(|(event_type, event)| match event {
            Event::DependencyLearned(e) => (
                event_type.as_str(),
                e.host.as_str(),
                e.via,
                e.source.as_str(),
            ),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        hosts,
        [
            (
                "fence.dependency_learned",
                "details.default.svc.cluster.local",
                Via::Prometheus,
                "prometheus"
            ),
            (
                "fence.dependency_learned",
                "reviews.default.svc.cluster.local",
                Via::Prometheus,
                "prometheus"
            ),
        ]
    );
    let queries = prometheus.queries();
    assert!(!queries.is_empty());
    assert_eq!(
        queries[0],
        "sum(istio_requests_total{source_app=\"productpage\",namespace=\"default\"})by(destination_service)"
    );
    let (_, fence) = call(&app, get(FENCE)).await;
    assert_eq!(
        fence["serviceFence"]["status"]["metricStatus"],
        json!({
            "{destination_service=\"details.default.svc.cluster.local\"}": "1",
            "{destination_service=\"reviews.default.svc.cluster.local\"}": "1",
        })
    );
}
