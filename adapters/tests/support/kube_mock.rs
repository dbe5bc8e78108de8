//! A scripted Kubernetes API for the kube adapter's tests, in the style of kube-rs's
//! controller-rs: the test takes each request the adapter makes, asserts its method, path,
//! query and body, and answers it. A request that never comes fails the test after a timeout;
//! `expect_silence` asserts that none comes.
//!
//! Included with `#[path = "support/kube_mock.rs"] mod kube_mock;` by tests and benches.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::pin::Pin;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use serde_json::Value;
use tower_test::mock::{self, Handle, SendResponse};

/// How long an expected request may take to arrive.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);

/// The API server side of a mocked client.
pub struct ApiServer {
    handle: Pin<Box<Handle<Request<Body>, Response<Body>>>>,
    pub wait: Duration,
}

/// A kube client talking to a scripted [`ApiServer`] (default namespace `default`).
pub fn pair() -> (kube::Client, ApiServer) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    (
        kube::Client::new(service, "default"),
        ApiServer {
            handle: Box::pin(handle),
            wait: DEFAULT_WAIT,
        },
    )
}

/// One request the adapter made, with the means to answer it.
pub struct Exchange {
    pub method: Method,
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub content_type: Option<String>,
    /// The body as JSON (`Value::Null` when empty).
    pub body: Value,
    respond: Option<SendResponse<Response<Body>>>,
}

impl ApiServer {
    /// The next request, whatever it is; panics when none comes within `self.wait`.
    pub async fn next(&mut self) -> Exchange {
        let wait = self.wait;
        let next = tokio::time::timeout(wait, self.handle.as_mut().next_request()).await;
        let (request, respond) = match next {
            Ok(Some(r)) => r,
            Ok(None) => panic!("the client was dropped while a request was expected"),
            Err(_) => panic!("no request to the API server within {wait:?}"),
        };
        let (parts, body) = request.into_parts();
        let bytes = body.collect_bytes().await.expect("request body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!(
                    "request body is not JSON ({e}): {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        let query = parts
            .uri
            .query()
            .map(|q| {
                serde_urlencoded::from_str::<Vec<(String, String)>>(q)
                    .expect("query")
                    .into_iter()
                    .collect()
            })
            .unwrap_or_default();
        Exchange {
            method: parts.method,
            path: parts.uri.path().to_string(),
            query,
            content_type: parts
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            body,
            respond: Some(respond),
        }
    }

    /// The next request, asserted to be `method path`.
    pub async fn expect(&mut self, method: Method, path: &str) -> Exchange {
        let exchange = self.next().await;
        assert_eq!(
            (&exchange.method, exchange.path.as_str()),
            (&method, path),
            "unexpected request (query {:?}, body {})",
            exchange.query,
            exchange.body
        );
        exchange
    }

    /// Assert that no request arrives within `within`.
    pub async fn expect_silence(&mut self, within: Duration) {
        if let Ok(Some((request, _))) =
            tokio::time::timeout(within, self.handle.as_mut().next_request()).await
        {
            panic!(
                "expected no request, got {} {}",
                request.method(),
                request.uri()
            );
        }
    }
}

impl Exchange {
    /// Assert a query parameter's value.
    pub fn assert_query(&self, key: &str, value: &str) -> &Self {
        assert_eq!(
            self.query.get(key).map(String::as_str),
            Some(value),
            "query parameter {key} of {} {} (query {:?})",
            self.method,
            self.path,
            self.query
        );
        self
    }

    /// Answer with a status and a JSON body.
    pub fn respond(self, status: StatusCode, body: &Value) {
        let response = Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Body::from(serde_json::to_vec(body).expect("json")))
            .expect("response");
        self.send(response);
    }

    fn send(mut self, response: Response<Body>) {
        self.respond
            .take()
            .expect("answered once")
            .send_response(response);
    }

    /// Answer 200 with a JSON body.
    pub fn ok(self, body: &Value) {
        self.respond(StatusCode::OK, body)
    }

    /// Answer with raw bytes (a watch stream: one JSON event per line).
    pub fn respond_bytes(self, status: StatusCode, bytes: Vec<u8>) {
        let response = Response::builder()
            .status(status)
            .body(Body::from(bytes))
            .expect("response");
        self.send(response);
    }

    /// Answer 200 with shared bytes (a pre-encoded response served many times, as benches do).
    pub fn respond_shared(self, bytes: bytes::Bytes) {
        let response = Response::builder()
            .status(StatusCode::OK)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Body::from(bytes))
            .expect("response");
        self.send(response);
    }

    /// Answer with a Kubernetes `Status` error.
    pub fn fail(self, code: u16, reason: &str, message: &str) {
        let status = serde_json::json!({
            "apiVersion": "v1", "kind": "Status", "status": "Failure",
            "message": message, "reason": reason, "code": code,
        });
        self.respond(StatusCode::from_u16(code).expect("status code"), &status)
    }
}

/// A watch response body: each event as one JSON line.
pub fn watch_lines(events: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in events {
        serde_json::to_writer(&mut out, e).expect("json");
        out.push(b'\n');
    }
    out
}

/// A list response of `kind` (e.g. `PodList`) at `resource_version`.
pub fn list(
    kind_list: &str,
    api_version: &str,
    resource_version: &str,
    items: Vec<Value>,
) -> Value {
    serde_json::json!({
        "apiVersion": api_version,
        "kind": kind_list,
        "metadata": {"resourceVersion": resource_version},
        "items": items,
    })
}

/// One page of a paginated list (`limit`/`continue`): `continue_token` names the next page,
/// `None` on the last one.
pub fn list_page(
    kind_list: &str,
    api_version: &str,
    resource_version: &str,
    continue_token: Option<&str>,
    items: Vec<Value>,
) -> Value {
    let mut page = list(kind_list, api_version, resource_version, items);
    if let Some(token) = continue_token {
        page["metadata"]["continue"] = Value::from(token);
    }
    page
}

/// A watch event (`ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK`) for [`watch_lines`].
pub fn watch_event(event_type: &str, object: Value) -> Value {
    serde_json::json!({"type": event_type, "object": object})
}

/// An `ERROR` watch event carrying a `Status` with `code`; 410 is what the API server sends
/// when the watch's resource version is too old (the client must list again).
pub fn watch_error(code: u16) -> Value {
    let reason = if code == 410 {
        "Expired"
    } else {
        "InternalError"
    };
    watch_event(
        "ERROR",
        serde_json::json!({
            "apiVersion": "v1", "kind": "Status", "status": "Failure", "code": code,
            "reason": reason, "message": format!("watch failed with {code}"),
        }),
    )
}
