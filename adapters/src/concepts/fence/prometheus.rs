//! Prometheus mode of dependency learning: ask Prometheus, per fence, which services the
//! fenced workload called, the way Slime lazyload's Prometheus source does (reference notes
//! G6, G22, F12, 2.2), and hand the hosts on.
//!
//! For every fence `(namespace, name)` and every handler, the handler's query template gets
//! `$namespace` → the fence's namespace and `$source_app` → the fence's name, and runs as an
//! instant query (`GET {address}/api/v1/query?query=...`). Each vector sample names a host in
//! its `destination_service` label, or else its `request_host` label; the `:port` is stripped.
//! Samples with neither label, with no requests (value 0), or with the host `unknown` (exact
//! match) are skipped and counted. Unlike Slime, a fence may have several handlers: their hosts
//! are unioned.
//!
//! A fence is reported with its hosts only when every one of its queries succeeded, so a
//! consumer that replaces a fence's learned dependencies with each result (as Slime replaces
//! `metricStatus`) never drops dependencies because of a failed query. Failures are reported
//! per fence and handler; one fence's failure does not stop the others.
//!
//! The HTTP client is `ureq` (blocking, plain `http://` only) run on tokio's blocking pool,
//! with at most [`PrometheusSource::max_in_flight`] queries at a time and a timeout on each.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::io::Read;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::error::Error;

/// The query Slime's sample configuration uses.
pub const DEFAULT_QUERY: &str = r#"sum(istio_requests_total{source_app="$source_app",reporter="destination"})by(destination_service)"#;
/// The name of the handler [`PrometheusSource::new`] configures.
pub const DEFAULT_HANDLER: &str = "destination";
/// The default timeout of one query, connection to last byte.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// The default bound on queries in flight at once.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 8;
/// Responses larger than this are refused (a query grouping by the wrong label can be huge).
const MAX_BODY_BYTES: u64 = 16 * 1024 * 1024;
/// The longest error body quoted in an error message.
const MAX_QUOTED: usize = 200;

/// Where and what to ask: the Prometheus server and the named query templates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrometheusSource {
    /// The server's base URL, e.g. `http://prometheus.istio-system:9090` (a trailing `/` is
    /// ignored). Only `http://` is supported.
    pub address: String,
    /// `(name, query template)` pairs; `$namespace` and `$source_app` are substituted. When
    /// empty, the default handler ([`DEFAULT_HANDLER`], [`DEFAULT_QUERY`]) is used.
    pub handlers: Vec<(String, String)>,
    /// The timeout of each query.
    pub timeout: Duration,
    /// At most this many queries in flight at once (0 counts as 1).
    pub max_in_flight: usize,
}

impl PrometheusSource {
    /// The default handler, timeout and concurrency, against `address`.
    pub fn new(address: impl Into<String>) -> Self {
        PrometheusSource {
            address: address.into(),
            handlers: vec![(DEFAULT_HANDLER.to_owned(), DEFAULT_QUERY.to_owned())],
            timeout: DEFAULT_TIMEOUT,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        }
    }

    /// The handlers to run: the configured ones, or the default one when none are.
    fn effective_handlers(&self) -> Vec<(String, String)> {
        if self.handlers.is_empty() {
            vec![(DEFAULT_HANDLER.to_owned(), DEFAULT_QUERY.to_owned())]
        } else {
            self.handlers.clone()
        }
    }
}

/// The hosts Prometheus says one fence's workload called, sorted and deduplicated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FenceHosts {
    pub namespace: String,
    pub name: String,
    pub hosts: Vec<String>,
}

/// Samples and results that named no learnable host.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SkipCounts {
    /// Samples with neither a `destination_service` nor a `request_host` label (or only
    /// empty ones).
    pub no_host_label: u64,
    /// Samples whose value is 0 (no requests), negative or NaN.
    pub zero_value: u64,
    /// Samples whose host is exactly `unknown`.
    pub unknown_host: u64,
    /// Samples that are not `{"metric": {...}, "value": [<ts>, "<number>"]}`.
    pub malformed: u64,
    /// Query results that are not instant vectors (matrix, scalar, string): no hosts.
    pub non_vector: u64,
}

impl SkipCounts {
    fn add(&mut self, other: SkipCounts) {
        self.no_host_label += other.no_host_label;
        self.zero_value += other.zero_value;
        self.unknown_host += other.unknown_host;
        self.malformed += other.malformed;
        self.non_vector += other.non_vector;
    }

    /// All skipped samples and results.
    pub fn total(&self) -> u64 {
        self.no_host_label + self.zero_value + self.unknown_host + self.malformed + self.non_vector
    }
}

/// What one poll learned.
#[derive(Debug, Default)]
pub struct PollReport {
    /// Fences whose every query succeeded, in the order they were given (duplicates once).
    pub fences: Vec<FenceHosts>,
    /// What was skipped, over all successful queries.
    pub skipped: SkipCounts,
    /// One [`Error::Prometheus`] per failed query, naming the fence and the handler. A fence
    /// listed here is absent from `fences`.
    pub errors: Vec<Error>,
}

/// The HTTP client the poller shares between queries (one connection pool).
#[derive(Clone, Debug)]
pub struct Client {
    agent: ureq::Agent,
}

impl Client {
    pub fn new() -> Self {
        Client {
            agent: ureq::AgentBuilder::new()
                .timeout(DEFAULT_TIMEOUT)
                .user_agent(concat!("meshplane/", env!("CARGO_PKG_VERSION")))
                .build(),
        }
    }

    /// One instant query, blocking: the response body, or why there is none.
    fn query_blocking(&self, url: &str, timeout: Duration) -> Result<Vec<u8>, String> {
        match self.agent.get(url).timeout(timeout).call() {
            Ok(response) => read_body(response),
            // Prometheus answers 400/422/503 with the usual JSON envelope, `status: error`.
            Err(ureq::Error::Status(code, response)) => {
                let body = read_body(response)?;
                Err(match api_error(&body) {
                    Some(message) => format!("HTTP {code}: {message}"),
                    None => format!("HTTP {code}: {}", quote(&body)),
                })
            }
            Err(ureq::Error::Transport(transport)) => Err(format!("request failed: {transport}")),
        }
    }
}

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}

fn read_body(response: ureq::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    response
        .into_reader()
        .take(MAX_BODY_BYTES + 1)
        .read_to_end(&mut body)
        .map_err(|e| format!("reading the response: {e}"))?;
    if body.len() as u64 > MAX_BODY_BYTES {
        return Err(format!("response larger than {MAX_BODY_BYTES} bytes"));
    }
    Ok(body)
}

fn quote(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(MAX_QUOTED) {
        Some((at, _)) => format!("{:?}...", &text[..at]),
        None => format!("{text:?}"),
    }
}

/// A handler's query for one fence: `$namespace` → `namespace`, `$source_app` → `name`.
pub fn render_query(template: &str, namespace: &str, name: &str) -> String {
    template
        .replace("$namespace", namespace)
        .replace("$source_app", name)
}

/// The instant-query URL for `query` against the server at `address`, query URL-encoded.
pub fn query_url(address: &str, query: &str) -> String {
    let encoded =
        serde_urlencoded::to_string([("query", query)]).expect("a string pair always encodes");
    format!("{}/api/v1/query?{encoded}", address.trim_end_matches('/'))
}

/// The Prometheus HTTP API envelope.
#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    #[serde(default)]
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct Sample {
    metric: BTreeMap<String, String>,
    value: (serde_json::Value, String),
}

/// The `errorType: error` of an error envelope, when `body` is one.
fn api_error(body: &[u8]) -> Option<String> {
    let envelope: Envelope = serde_json::from_slice(body).ok()?;
    (envelope.status == "error").then(|| describe_error(&envelope))
}

fn describe_error(envelope: &Envelope) -> String {
    format!(
        "{}: {}",
        envelope.error_type.as_deref().unwrap_or("error"),
        envelope.error.as_deref().unwrap_or("(no message)")
    )
}

/// The hosts named by an instant-query response, sorted and deduplicated, and what was
/// skipped; an error when the response is not a successful Prometheus answer.
pub fn hosts_from_response(body: &[u8]) -> Result<(Vec<String>, SkipCounts), String> {
    let envelope: Envelope = serde_json::from_slice(body)
        .map_err(|e| format!("not a Prometheus API response ({e}): {}", quote(body)))?;
    match envelope.status.as_str() {
        "success" => {}
        "error" => return Err(describe_error(&envelope)),
        other => return Err(format!("unexpected status {other:?}")),
    }
    let data = envelope
        .data
        .ok_or_else(|| "a success response without data".to_owned())?;
    let mut skipped = SkipCounts::default();
    if data.result_type != "vector" {
        skipped.non_vector += 1;
        return Ok((Vec::new(), skipped));
    }
    let samples = match data.result {
        serde_json::Value::Array(samples) => samples,
        serde_json::Value::Null => Vec::new(),
        other => return Err(format!("a vector result that is not an array: {other}")),
    };
    let mut hosts = BTreeSet::new();
    for sample in samples {
        let Ok(sample) = serde_json::from_value::<Sample>(sample) else {
            skipped.malformed += 1;
            continue;
        };
        let Some(host) = host_of(&sample.metric) else {
            skipped.no_host_label += 1;
            continue;
        };
        match sample.value.1.trim().parse::<f64>() {
            Ok(v) if v > 0.0 => {}
            Ok(_) => {
                skipped.zero_value += 1;
                continue;
            }
            Err(_) => {
                skipped.malformed += 1;
                continue;
            }
        }
        if host == "unknown" {
            skipped.unknown_host += 1;
            continue;
        }
        hosts.insert(host.to_owned());
    }
    Ok((hosts.into_iter().collect(), skipped))
}

/// The host a sample names: `destination_service`, else `request_host`, without `:port`.
fn host_of(metric: &BTreeMap<String, String>) -> Option<&str> {
    ["destination_service", "request_host"]
        .iter()
        .filter_map(|label| metric.get(*label))
        .map(|value| strip_port(value.trim()))
        .find(|host| !host.is_empty())
}

fn strip_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// Run every handler's query for every fence once, at most `source.max_in_flight` at a time.
pub async fn poll_once(
    client: &Client,
    source: &PrometheusSource,
    fences: &[(String, String)],
) -> PollReport {
    let mut seen = BTreeSet::new();
    let fences: Vec<&(String, String)> = fences.iter().filter(|f| seen.insert(*f)).collect();
    let handlers = source.effective_handlers();
    // Built up front: a lazy iterator borrowing `fences` here would make the future
    // lifetime-generic in a way `tokio::spawn` cannot accept.
    let mut jobs = Vec::with_capacity(fences.len() * handlers.len());
    for (index, (namespace, name)) in fences.iter().enumerate() {
        for (handler, template) in &handlers {
            let url = query_url(&source.address, &render_query(template, namespace, name));
            jobs.push((index, handler.clone(), url));
        }
    }
    let timeout = source.timeout;
    let results: Vec<_> = stream::iter(jobs)
        .map(|(index, handler, url)| {
            let client = client.clone();
            async move {
                let outcome = tokio::task::spawn_blocking(move || {
                    client
                        .query_blocking(&url, timeout)
                        .and_then(|body| hosts_from_response(&body))
                })
                .await
                .unwrap_or_else(|e| Err(format!("query task failed: {e}")));
                (index, handler, outcome)
            }
        })
        .buffer_unordered(source.max_in_flight.max(1))
        .collect()
        .await;

    let mut report = PollReport::default();
    let mut hosts: Vec<BTreeSet<String>> = vec![BTreeSet::new(); fences.len()];
    let mut failed = vec![false; fences.len()];
    let mut errors = Vec::new();
    for (index, handler, outcome) in results {
        match outcome {
            Ok((found, skipped)) => {
                hosts[index].extend(found);
                report.skipped.add(skipped);
            }
            Err(message) => {
                failed[index] = true;
                errors.push((index, handler, message));
            }
        }
    }
    // Errors in fence order, then handler name, whatever order the queries finished in.
    errors.sort();
    report.errors = errors
        .into_iter()
        .map(|(index, handler, message)| {
            let (namespace, name) = fences[index];
            Error::Prometheus {
                fence: format!("{namespace}/{name}"),
                handler,
                message,
            }
        })
        .collect();
    report.fences = fences
        .iter()
        .zip(hosts)
        .zip(failed)
        .filter(|(_, failed)| !failed)
        .map(|(((namespace, name), hosts), _)| FenceHosts {
            namespace: namespace.clone(),
            name: name.clone(),
            hosts: hosts.into_iter().collect(),
        })
        .collect();
    report
}

/// Poll every `interval` until `shutdown` completes or `out` is closed, sending each poll's
/// [`FenceHosts`] (when there are any) to `out`. Failed queries are logged; when every query of
/// a poll fails (Prometheus down), the wait before the next poll doubles, up to 8 × `interval`.
pub async fn run_poller(
    source: PrometheusSource,
    interval: Duration,
    fences: impl Fn() -> Vec<(String, String)> + Send + 'static,
    out: mpsc::Sender<Vec<FenceHosts>>,
    shutdown: impl Future<Output = ()> + Send,
) {
    let client = Client::new();
    let max_delay = interval.saturating_mul(8);
    let mut delay = interval;
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let list = fences();
        let report = tokio::select! {
            report = poll_once(&client, &source, &list) => report,
            () = &mut shutdown => return,
            () = out.closed() => return,
        };
        for error in &report.errors {
            tracing::warn!(error = %error, "prometheus query failed");
        }
        if report.skipped.total() > 0 {
            tracing::debug!(skipped = ?report.skipped, "prometheus samples skipped");
        }
        let all_failed = report.fences.is_empty() && !report.errors.is_empty();
        if all_failed {
            delay = delay.saturating_mul(2).min(max_delay).max(interval);
            tracing::warn!(
                address = %source.address,
                retry_in = ?delay,
                "every prometheus query failed; backing off"
            );
        } else {
            delay = interval;
        }
        if !report.fences.is_empty() {
            tokio::select! {
                sent = out.send(report.fences) => if sent.is_err() { return },
                () = &mut shutdown => return,
            }
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = &mut shutdown => return,
            () = out.closed() => return,
        }
    }
}

/// A fake Prometheus on 127.0.0.1:0, for tests here and in `adapters/tests`: answers
/// `/api/v1/query` with `answer(decoded query)` and records the raw (still encoded) query
/// strings it received.
#[doc(hidden)]
pub mod fake {
    use std::io::{BufRead, BufReader, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::{Arc, Mutex};

    use super::PrometheusSource;

    type Answer = Box<dyn Fn(&str) -> (u16, String) + Send + Sync>;

    pub struct FakePrometheus {
        pub address: String,
        received: Arc<Mutex<Vec<String>>>,
    }

    impl FakePrometheus {
        pub fn start(answer: impl Fn(&str) -> (u16, String) + Send + Sync + 'static) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
            let address = format!("http://{}", listener.local_addr().expect("local address"));
            let received = Arc::new(Mutex::new(Vec::new()));
            let answer: Arc<Answer> = Arc::new(Box::new(answer));
            let log = received.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(stream) = stream else { continue };
                    let (answer, log) = (answer.clone(), log.clone());
                    std::thread::spawn(move || serve(stream, &answer, &log));
                }
            });
            FakePrometheus { address, received }
        }

        pub fn source(&self) -> PrometheusSource {
            PrometheusSource::new(self.address.clone())
        }

        /// The raw query strings received, in order.
        pub fn received(&self) -> Vec<String> {
            self.received.lock().expect("fake prometheus log").clone()
        }

        /// The decoded `query` parameters received, in order.
        pub fn queries(&self) -> Vec<String> {
            self.received()
                .iter()
                .filter_map(|raw| {
                    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw).ok()?;
                    pairs
                        .into_iter()
                        .find(|(k, _)| k == "query")
                        .map(|(_, v)| v)
                })
                .collect()
        }
    }

    fn serve(stream: TcpStream, answer: &Answer, log: &Mutex<Vec<String>>) {
        let Ok(clone) = stream.try_clone() else {
            return;
        };
        let mut reader = BufReader::new(clone);
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).is_err() {
            return;
        }
        loop {
            let mut header = String::new();
            match reader.read_line(&mut header) {
                Ok(0) | Err(_) => break,
                Ok(_) if header == "\r\n" || header == "\n" => break,
                Ok(_) => {}
            }
        }
        let target = request_line.split(' ').nth(1).unwrap_or("");
        let (path, raw_query) = target.split_once('?').unwrap_or((target, ""));
        let (status, body) = if path == "/api/v1/query" {
            log.lock()
                .expect("fake prometheus log")
                .push(raw_query.to_owned());
            let pairs: Vec<(String, String)> =
                serde_urlencoded::from_str(raw_query).unwrap_or_default();
            let query = pairs
                .iter()
                .find(|(k, _)| k == "query")
                .map(|(_, v)| v.as_str())
                .unwrap_or("");
            answer(query)
        } else {
            (404, "not found".to_owned())
        };
        let mut stream = stream;
        let _ = write!(
            stream,
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::fake::FakePrometheus;
    use super::*;
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    fn vector(samples: &[(&[(&str, &str)], &str)]) -> String {
        let result: Vec<serde_json::Value> = samples
            .iter()
            .map(|(labels, value)| {
                let metric: BTreeMap<_, _> = labels.iter().copied().collect();
                serde_json::json!({"metric": metric, "value": [1_700_000_000.123, value]})
            })
            .collect();
        serde_json::json!({"status": "success", "data": {"resultType": "vector", "result": result}})
            .to_string()
    }

    fn fence(namespace: &str, name: &str) -> (String, String) {
        (namespace.to_owned(), name.to_owned())
    }

    fn hosts(report: &PollReport, namespace: &str, name: &str) -> Option<Vec<String>> {
        report
            .fences
            .iter()
            .find(|f| f.namespace == namespace && f.name == name)
            .map(|f| f.hosts.clone())
    }

    #[tokio::test]
    async fn prometheus_query_is_substituted_and_url_encoded() {
        let server = FakePrometheus::start(|_| (200, vector(&[])));
        let mut source = server.source();
        source.handlers = vec![(
            "ns".to_owned(),
            r#"sum(rate(istio_requests_total{source_app="$source_app",source_workload_namespace="$namespace"}[5m])) by (destination_service)"#
                .to_owned(),
        )];
        let report = poll_once(&Client::new(), &source, &[fence("shop", "reviews")]).await;
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert_eq!(hosts(&report, "shop", "reviews"), Some(vec![]));

        let received = server.received();
        assert_eq!(received.len(), 1);
        let raw = &received[0];
        // Nothing that must be escaped reaches the wire as is.
        for c in ['"', '{', '}', '[', ']', '(', ')', ' ', '=', ','] {
            assert!(
                !raw.trim_start_matches("query=").contains(c),
                "{c:?} in {raw}"
            );
        }
        let decoded: Vec<(String, String)> = serde_urlencoded::from_str(raw).unwrap();
        assert_eq!(
            decoded,
            vec![(
                "query".to_owned(),
                r#"sum(rate(istio_requests_total{source_app="reviews",source_workload_namespace="shop"}[5m])) by (destination_service)"#
                    .to_owned()
            )]
        );
    }

    #[tokio::test]
    async fn prometheus_default_query_names_the_fence() {
        let server = FakePrometheus::start(|_| (200, vector(&[])));
        poll_once(
            &Client::new(),
            &server.source(),
            &[fence("default", "productpage")],
        )
        .await;
        let decoded: Vec<(String, String)> =
            serde_urlencoded::from_str(&server.received()[0]).unwrap();
        assert_eq!(
            decoded[0].1,
            r#"sum(istio_requests_total{source_app="productpage",reporter="destination"})by(destination_service)"#
        );
    }

    #[tokio::test]
    async fn prometheus_hosts_extracted_with_fallback_ports_stripped_and_skips_counted() {
        let server = FakePrometheus::start(|_| {
            (
                200,
                vector(&[
                    (
                        &[("destination_service", "reviews.default.svc.cluster.local")],
                        "12",
                    ),
                    // request_host is the fallback; the port goes.
                    (&[("request_host", "www.example.com:8443")], "3"),
                    // destination_service wins over request_host.
                    (
                        &[
                            (
                                "destination_service",
                                "details.default.svc.cluster.local:9080",
                            ),
                            ("request_host", "details:9080"),
                        ],
                        "1.5",
                    ),
                    // A duplicate, once in the output.
                    (
                        &[("destination_service", "reviews.default.svc.cluster.local")],
                        "1",
                    ),
                    // Skipped: unknown (exact), zero requests, no host label.
                    (&[("destination_service", "unknown")], "7"),
                    (
                        &[("destination_service", "ratings.default.svc.cluster.local")],
                        "0",
                    ),
                    (&[("source_app", "productpage")], "4"),
                    // "unknown" is matched exactly, not as a substring.
                    (
                        &[(
                            "destination_service",
                            "unknown-service.default.svc.cluster.local",
                        )],
                        "2",
                    ),
                ]),
            )
        });
        let report = poll_once(
            &Client::new(),
            &server.source(),
            &[fence("default", "productpage")],
        )
        .await;
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert_eq!(
            hosts(&report, "default", "productpage").unwrap(),
            vec![
                "details.default.svc.cluster.local",
                "reviews.default.svc.cluster.local",
                "unknown-service.default.svc.cluster.local",
                "www.example.com",
            ]
        );
        assert_eq!(
            report.skipped,
            SkipCounts {
                no_host_label: 1,
                zero_value: 1,
                unknown_host: 1,
                malformed: 0,
                non_vector: 0,
            }
        );
    }

    #[tokio::test]
    async fn prometheus_hosts_union_over_handlers() {
        let server = FakePrometheus::start(|query| {
            let host = if query.starts_with("a:") {
                "a.default.svc.cluster.local"
            } else {
                "b.default.svc.cluster.local"
            };
            (
                200,
                vector(&[
                    (&[("destination_service", host)], "1"),
                    (
                        &[("destination_service", "common.default.svc.cluster.local")],
                        "1",
                    ),
                ]),
            )
        });
        let mut source = server.source();
        source.handlers = vec![
            ("a".to_owned(), "a:$source_app".to_owned()),
            ("b".to_owned(), "b:$source_app".to_owned()),
        ];
        let report = poll_once(&Client::new(), &source, &[fence("default", "web")]).await;
        assert_eq!(
            report.fences,
            vec![FenceHosts {
                namespace: "default".to_owned(),
                name: "web".to_owned(),
                hosts: vec![
                    "a.default.svc.cluster.local".to_owned(),
                    "b.default.svc.cluster.local".to_owned(),
                    "common.default.svc.cluster.local".to_owned(),
                ],
            }]
        );
    }

    #[tokio::test]
    async fn prometheus_error_status_reported_for_that_fence_only() {
        let server = FakePrometheus::start(|query| {
            if query.contains(r#"source_app="broken""#) {
                (
                    400,
                    serde_json::json!({
                        "status": "error",
                        "errorType": "bad_data",
                        "error": "invalid parameter \"query\": parse error"
                    })
                    .to_string(),
                )
            } else if query.contains(r#"source_app="odd""#) {
                // An error envelope with a 200, which Prometheus does not send, but still.
                (
                    200,
                    r#"{"status":"error","errorType":"timeout","error":"query timed out"}"#
                        .to_owned(),
                )
            } else {
                (
                    200,
                    vector(&[(
                        &[("destination_service", "ok.default.svc.cluster.local")],
                        "1",
                    )]),
                )
            }
        });
        let fences = [
            fence("default", "first"),
            fence("default", "broken"),
            fence("other", "odd"),
            fence("other", "last"),
        ];
        let report = poll_once(&Client::new(), &server.source(), &fences).await;
        let ok = vec!["ok.default.svc.cluster.local".to_owned()];
        assert_eq!(hosts(&report, "default", "first"), Some(ok.clone()));
        assert_eq!(hosts(&report, "other", "last"), Some(ok));
        assert_eq!(hosts(&report, "default", "broken"), None);
        assert_eq!(hosts(&report, "other", "odd"), None);
        assert_eq!(report.errors.len(), 2);
        match &report.errors[0] {
            Error::Prometheus {
                fence,
                handler,
                message,
            } => {
                assert_eq!(fence, "default/broken");
                assert_eq!(handler, DEFAULT_HANDLER);
                assert!(message.contains("bad_data"), "{message}");
                assert!(message.contains("parse error"), "{message}");
            }
            other => panic!("unexpected error {other:?}"),
        }
        let text = report.errors[1].to_string();
        assert!(text.contains("other/odd"), "{text}");
        assert!(text.contains(DEFAULT_HANDLER), "{text}");
        assert!(text.contains("timeout: query timed out"), "{text}");
    }

    #[tokio::test]
    async fn prometheus_server_down_is_an_error_not_a_panic() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let mut source = PrometheusSource::new(address);
        source.timeout = Duration::from_secs(2);
        let report = poll_once(
            &Client::new(),
            &source,
            &[fence("default", "a"), fence("default", "b")],
        )
        .await;
        assert!(report.fences.is_empty());
        assert_eq!(report.errors.len(), 2);
        let text = report.errors[0].to_string();
        assert!(text.contains("default/a"), "{text}");
        assert!(text.contains("request failed"), "{text}");
    }

    #[tokio::test]
    async fn prometheus_non_json_answer_is_an_error() {
        let server = FakePrometheus::start(|_| (502, "<html>bad gateway</html>".to_owned()));
        let report = poll_once(&Client::new(), &server.source(), &[fence("ns", "a")]).await;
        assert!(report.fences.is_empty());
        let text = report.errors[0].to_string();
        assert!(text.contains("HTTP 502"), "{text}");
        assert!(text.contains("bad gateway"), "{text}");
    }

    #[tokio::test]
    async fn prometheus_matrix_and_scalar_results_give_no_hosts() {
        let server = FakePrometheus::start(|query| {
            let body = if query.contains("matrix") {
                serde_json::json!({"status": "success", "data": {"resultType": "matrix", "result": [
                    {"metric": {"destination_service": "m.default.svc.cluster.local"},
                     "values": [[1.0, "1"], [2.0, "2"]]}
                ]}})
            } else {
                serde_json::json!({"status": "success", "data": {"resultType": "scalar",
                    "result": [1.0, "5"]}})
            };
            (200, body.to_string())
        });
        let mut source = server.source();
        source.handlers = vec![
            ("m".to_owned(), "matrix[$source_app]".to_owned()),
            ("s".to_owned(), "scalar($source_app)".to_owned()),
        ];
        let report = poll_once(&Client::new(), &source, &[fence("ns", "a")]).await;
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert_eq!(hosts(&report, "ns", "a"), Some(vec![]));
        assert_eq!(report.skipped.non_vector, 2);
    }

    #[tokio::test]
    async fn prometheus_concurrency_is_bounded_and_every_fence_answered() {
        let in_flight = Arc::new(Mutex::new((0usize, 0usize)));
        let counter = in_flight.clone();
        let server = FakePrometheus::start(move |query| {
            {
                let mut c = counter.lock().unwrap();
                c.0 += 1;
                c.1 = c.1.max(c.0);
            }
            std::thread::sleep(Duration::from_millis(20));
            counter.lock().unwrap().0 -= 1;
            let app = query.split('"').nth(1).unwrap_or("").to_owned();
            let host = format!("{app}-dep.default.svc.cluster.local");
            (
                200,
                vector(&[(&[("destination_service", host.as_str())], "1")]),
            )
        });
        let mut source = server.source();
        source.max_in_flight = 3;
        let fences: Vec<_> = (0..20)
            .map(|i| fence("default", &format!("s{i}")))
            .collect();
        let report = poll_once(&Client::new(), &source, &fences).await;
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert_eq!(report.fences.len(), 20);
        for (i, f) in report.fences.iter().enumerate() {
            assert_eq!(f.name, format!("s{i}"));
            assert_eq!(f.hosts, vec![format!("s{i}-dep.default.svc.cluster.local")]);
        }
        let max = in_flight.lock().unwrap().1;
        assert!((1..=3).contains(&max), "max in flight {max}");
    }

    #[test]
    fn prometheus_parse_edge_cases() {
        // An empty vector, a malformed sample and a non-numeric value.
        let body = serde_json::json!({"status": "success", "data": {"resultType": "vector",
        "result": [
            {"metric": {"destination_service": "a"}},
            {"metric": {"destination_service": "b"}, "value": [1.0, "NaN"]},
            {"metric": {"destination_service": "c"}, "value": [1.0, "many"]},
            {"metric": {"destination_service": "d:80"}, "value": [1.0, "1e-3"]},
            {"metric": {"destination_service": "", "request_host": "e"}, "value": [1.0, "2"]},
        ]}})
        .to_string();
        let (hosts, skipped) = hosts_from_response(body.as_bytes()).unwrap();
        assert_eq!(hosts, vec!["d", "e"]);
        assert_eq!(skipped.malformed, 2);
        assert_eq!(skipped.zero_value, 1);
        assert!(hosts_from_response(b"not json").is_err());
        assert!(hosts_from_response(br#"{"status":"success"}"#).is_err());
        assert_eq!(strip_port("host:9080"), "host");
        assert_eq!(strip_port("host"), "host");
        assert_eq!(
            query_url("http://p:9090/", "up"),
            "http://p:9090/api/v1/query?query=up"
        );
    }

    #[tokio::test]
    async fn prometheus_poller_sends_hosts_and_stops_on_shutdown() {
        let server = FakePrometheus::start(|_| {
            (
                200,
                vector(&[(
                    &[("destination_service", "x.default.svc.cluster.local")],
                    "1",
                )]),
            )
        });
        let (tx, mut rx) = mpsc::channel(4);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let poller = tokio::spawn(run_poller(
            server.source(),
            Duration::from_millis(10),
            || vec![fence("default", "web")],
            tx,
            async {
                let _ = stopped.await;
            },
        ));
        for _ in 0..2 {
            let got = tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(got[0].hosts, vec!["x.default.svc.cluster.local"]);
        }
        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), poller)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn prometheus_poller_survives_a_down_server_and_stops_when_out_closes() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let (tx, rx) = mpsc::channel(1);
        let poller = tokio::spawn(run_poller(
            PrometheusSource::new(address),
            Duration::from_millis(5),
            || vec![fence("default", "web")],
            tx,
            std::future::pending(),
        ));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!poller.is_finished());
        drop(rx);
        tokio::time::timeout(Duration::from_secs(5), poller)
            .await
            .unwrap()
            .unwrap();
    }
}
