//! The API's guard and body limits wired into the real routes (issue 14, items 6 and 8): a
//! refused request reaches no handler and appends nothing; a body that never finishes gets 408.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{test, web, App};
use adapters::api::{self, AllowedHosts, ApiState, Auth, HttpRules};
use adapters::daemon::start_host;
use adapters::metrics::Metrics;
use events::backend::memory::MemoryBackend;
use events::{EventStore, Log};

const CM_JSON: &str = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"web","namespace":"shop"},"data":{"a":"b"}}"#;

fn fixture(body_timeout: Duration) -> (Arc<dyn EventStore>, web::Data<ApiState>) {
    let store: Arc<dyn EventStore> = Arc::new(Log::open(MemoryBackend::new()).unwrap());
    let metrics = Arc::new(Metrics::default());
    let host = start_host(store.clone(), metrics.clone(), None).unwrap();
    let state = web::Data::new(ApiState {
        dispatcher: host.dispatcher,
        metrics,
        auth: Auth::new(None),
        max_body_bytes: 1 << 20,
        http: HttpRules {
            hosts: AllowedHosts::new(Some("127.0.0.1".parse().unwrap()), &[]).unwrap(),
            body_timeout,
        },
        io: Default::default(),
        snapshots: None,
        past: Default::default(),
    });
    (store, state)
}

#[actix_web::test]
async fn refused_requests_reach_no_handler() {
    let (store, state) = fixture(Duration::from_secs(30));
    let app = test::init_service(App::new().configure(api::configure(state))).await;
    let post = |headers: &[(&'static str, &'static str)]| {
        let mut req = test::TestRequest::post()
            .uri("/api/v1/apply")
            .insert_header(("host", "127.0.0.1:7470"))
            .set_payload(CM_JSON);
        for h in headers {
            req = req.insert_header(*h);
        }
        req.to_request()
    };
    for (headers, status) in [
        (
            vec![
                ("origin", "http://evil.example"),
                ("content-type", "text/plain"),
            ],
            StatusCode::FORBIDDEN,
        ),
        (
            vec![("content-type", "text/plain")],
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (vec![], StatusCode::UNSUPPORTED_MEDIA_TYPE),
        (
            vec![("content-type", "application/x-www-form-urlencoded")],
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            vec![
                ("host", "evil.example"),
                ("content-type", "application/json"),
            ],
            StatusCode::FORBIDDEN,
        ),
    ] {
        let resp = test::call_service(&app, post(&headers)).await;
        assert_eq!(resp.status(), status, "{headers:?}");
    }
    assert_eq!(store.head(), 0, "a refused request appended an event");

    let read = test::TestRequest::get()
        .uri("/api/v1/resources/cm")
        .insert_header(("host", "evil.example:7470"))
        .to_request();
    assert_eq!(
        test::call_service(&app, read).await.status(),
        StatusCode::FORBIDDEN
    );

    let ok = test::call_service(&app, post(&[("content-type", "application/json")])).await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(store.head(), 1);
    // +json types are JSON to the documents endpoints.
    let merge = test::call_service(
        &app,
        post(&[("content-type", "application/merge-patch+json")]),
    )
    .await;
    assert_eq!(merge.status(), StatusCode::OK);
}

#[actix_web::test]
async fn a_body_that_never_finishes_gets_408() {
    let (store, state) = fixture(Duration::from_millis(300));
    let app = test::init_service(App::new().configure(api::configure(state))).await;
    // One chunk, then a stream that never ends.
    let (tx, rx) =
        futures::channel::mpsc::unbounded::<Result<web::Bytes, actix_web::error::PayloadError>>();
    tx.unbounded_send(Ok(web::Bytes::from_static(b"{")))
        .unwrap();
    let mut req = test::TestRequest::post()
        .uri("/api/v1/apply")
        .insert_header(("content-type", "application/json"))
        .insert_header(("content-length", "100"))
        .to_request();
    *req.payload() = actix_web::dev::Payload::Stream {
        payload: Box::pin(rx),
    };
    // Answered by the body timeout, well before this test's own limit.
    let resp = tokio::time::timeout(Duration::from_secs(5), test::call_service(&app, req))
        .await
        .expect("408 within the body timeout");
    assert_eq!(resp.status(), StatusCode::REQUEST_TIMEOUT);
    assert_eq!(resp.headers().get("connection").unwrap(), "close");
    let body = test::read_body(resp).await;
    assert!(
        String::from_utf8_lossy(&body).contains("--body-timeout"),
        "{body:?}"
    );
    drop(tx);
    assert_eq!(store.head(), 0);
}
