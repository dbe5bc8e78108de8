//! Envoy's gRPC Access Log Service (ALS) as an access-log intake.
//!
//! Envoy (configured with an `envoy.access_loggers.http_grpc` logger pointing at this server)
//! opens one `StreamAccessLogs` stream per worker and sends batches of HTTP access-log entries
//! on it forever. Every message's HTTP entries become one batch of [`AccessLogEntry`] values,
//! sent into the intake's bounded channel; a full channel slows the stream down (HTTP/2 flow
//! control then pushes back on Envoy) instead of buffering without limit.
//!
//! What is counted in [`IntakeCounters`]:
//! - `received`: every entry of every message, HTTP or TCP;
//! - `malformed`: HTTP entries without `common_properties` or `request` (skipped), and messages
//!   that are not valid protobuf at all (one per message: its entries cannot be counted);
//! - `not_inbound`: TCP entries. They cannot be the global sidecar's HTTP inbound log the fence
//!   learns from, and they are well-formed, so counting them as malformed would mislead.
//!
//! A bad entry never ends a stream. A message that cannot be decoded does: tonic's stream
//! decoder stops at the first undecodable frame, so the handler answers `INTERNAL` and Envoy
//! reconnects.
//!
//! The generated code lives in [`proto`]; [`client`] has helpers to build real ALS messages for
//! tests and benchmarks.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status, Streaming};

use super::entry::{AccessLogEntry, EntrySender, IntakeCounters, SOURCE_HEADER};
use crate::Error;

use proto::stream_access_logs_message::LogEntries;
use proto::{address, AccessLogService, AccessLogServiceServer, Address, HttpAccessLogEntry};
use proto::{StreamAccessLogsMessage, StreamAccessLogsResponse};

/// Code generated from `adapters/proto` (a wire-compatible subset of Envoy's v3 API), in
/// modules that mirror the protobuf packages, with the types the intake uses re-exported here.
#[allow(clippy::all, clippy::pedantic, missing_docs, unreachable_pub)]
pub mod proto {
    pub mod envoy {
        pub mod config {
            pub mod core {
                pub mod v3 {
                    tonic::include_proto!("envoy.config.core.v3");
                }
            }
        }
        pub mod data {
            pub mod accesslog {
                pub mod v3 {
                    tonic::include_proto!("envoy.data.accesslog.v3");
                }
            }
        }
        pub mod service {
            pub mod accesslog {
                pub mod v3 {
                    tonic::include_proto!("envoy.service.accesslog.v3");
                }
            }
        }
    }

    pub use envoy::config::core::v3::{
        address, socket_address, Address, Node, RequestMethod, SocketAddress,
    };
    pub use envoy::data::accesslog::v3::{
        http_access_log_entry, AccessLogCommon, HttpAccessLogEntry, HttpRequestProperties,
        HttpResponseProperties, TcpAccessLogEntry,
    };
    pub use envoy::service::accesslog::v3::access_log_service_client::AccessLogServiceClient;
    pub use envoy::service::accesslog::v3::access_log_service_server::{
        AccessLogService, AccessLogServiceServer,
    };
    pub use envoy::service::accesslog::v3::{
        stream_access_logs_message, StreamAccessLogsMessage, StreamAccessLogsResponse,
    };
}

/// Serve Envoy's Access Log Service on `listener` until `shutdown` completes, sending every
/// message's HTTP entries into `sink` as one batch.
///
/// ALS streams never end on their own, so on shutdown every open stream is answered (an empty
/// `StreamAccessLogsResponse`) and the server then waits for the connections to close. A batch
/// waiting for room in `sink` at that moment is dropped.
pub async fn serve(
    listener: TcpListener,
    sink: EntrySender,
    counters: Arc<IntakeCounters>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    serve_with_token(listener, sink, counters, None, shutdown).await
}

/// [`serve`], requiring `authorization: Bearer <token>` metadata on every stream when `token`
/// is given (Envoy sends it with `grpc_service.initial_metadata`).
pub async fn serve_with_token(
    listener: TcpListener,
    sink: EntrySender,
    counters: Arc<IntakeCounters>,
    token: Option<String>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let intake = AccessLogIntake {
        sink,
        counters,
        stopping: stop_rx,
    };
    let signal = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    };
    tonic::transport::Server::builder()
        .add_service(AccessLogServiceServer::with_interceptor(
            intake,
            move |request: Request<()>| check_token(token.as_deref(), request),
        ))
        .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), signal)
        .await
        .map_err(Error::Grpc)
}

/// Refuse a stream without the expected bearer token (when one is configured).
fn check_token(token: Option<&str>, request: Request<()>) -> Result<Request<()>, Status> {
    let Some(expected) = token else {
        return Ok(request);
    };
    let presented = request
        .metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        Some(t)
            if t.len() == expected.len()
                && t.bytes()
                    .zip(expected.bytes())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0 =>
        {
            Ok(request)
        }
        Some(_) => Err(Status::unauthenticated("the bearer token is not valid")),
        None => Err(Status::unauthenticated(
            "access logs need `authorization: Bearer <token>` metadata",
        )),
    }
}

/// The `AccessLogService` implementation behind [`serve`].
struct AccessLogIntake {
    sink: EntrySender,
    counters: Arc<IntakeCounters>,
    /// Turns `true` when the server shuts down.
    stopping: watch::Receiver<bool>,
}

#[tonic::async_trait]
impl AccessLogService for AccessLogIntake {
    async fn stream_access_logs(
        &self,
        request: Request<Streaming<StreamAccessLogsMessage>>,
    ) -> Result<Response<StreamAccessLogsResponse>, Status> {
        let peer = request.remote_addr();
        let mut stream = request.into_inner();
        let mut stop = pin!(stopped(self.stopping.clone()));
        loop {
            let message = tokio::select! {
                biased;
                () = &mut stop => break,
                message = stream.message() => message,
            };
            let message = match message {
                Ok(Some(message)) => message,
                Ok(None) => break,
                Err(status) => {
                    if is_decode_error(&status) {
                        IntakeCounters::add(&self.counters.received, 1);
                        IntakeCounters::add(&self.counters.malformed, 1);
                        tracing::warn!(?peer, %status, "access-log stream: undecodable message");
                    } else {
                        tracing::debug!(?peer, %status, "access-log stream ended");
                    }
                    return Err(status);
                }
            };
            if let Some(identifier) = &message.identifier {
                let node = identifier.node.as_ref();
                tracing::debug!(
                    ?peer,
                    node = node.map_or("", |n| n.id.as_str()),
                    cluster = node.map_or("", |n| n.cluster.as_str()),
                    log_name = identifier.log_name.as_str(),
                    "access-log stream opened"
                );
            }
            let batch = convert_message(message, &self.counters);
            if batch.is_empty() {
                continue;
            }
            tokio::select! {
                biased;
                () = &mut stop => break,
                sent = self.sink.send(batch) => {
                    if sent.is_err() {
                        return Err(Status::unavailable("the access-log intake has stopped"));
                    }
                }
            }
        }
        Ok(Response::new(StreamAccessLogsResponse {}))
    }
}

/// Completes once `stopping` turns `true`; never if its sender is gone without having said so.
async fn stopped(mut stopping: watch::Receiver<bool>) {
    if stopping.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Whether a stream error is tonic's report of a frame that is not valid protobuf (as opposed
/// to the peer resetting the stream or the connection failing).
fn is_decode_error(status: &Status) -> bool {
    status.code() == tonic::Code::Internal
        && status
            .message()
            .contains("failed to decode Protobuf message")
}

/// One ALS message's HTTP entries as intake entries, counting what it held (see the module
/// documentation). Strings are moved out of the decoded message, not copied.
pub fn convert_message(
    message: StreamAccessLogsMessage,
    counters: &IntakeCounters,
) -> Vec<AccessLogEntry> {
    match message.log_entries {
        Some(LogEntries::HttpLogs(http)) => {
            let received = http.log_entry.len();
            let mut batch = Vec::with_capacity(received);
            batch.extend(http.log_entry.into_iter().filter_map(convert_entry));
            IntakeCounters::add(&counters.received, received as u64);
            let malformed = received - batch.len();
            if malformed > 0 {
                IntakeCounters::add(&counters.malformed, malformed as u64);
            }
            batch
        }
        Some(LogEntries::TcpLogs(tcp)) => {
            let received = tcp.log_entry.len() as u64;
            IntakeCounters::add(&counters.received, received);
            IntakeCounters::add(&counters.not_inbound, received);
            Vec::new()
        }
        // Upstream requires one of the two; a message with neither carries no entries.
        None => Vec::new(),
    }
}

/// One HTTP access-log entry as an intake entry; `None` when it lacks `common_properties` or
/// `request` (malformed).
///
/// - `downstream_ip`: `downstream_direct_remote_address`'s socket address, falling back to
///   `downstream_remote_address`; empty when neither is a (non-empty) socket address;
/// - `upstream_cluster`, `authority`: as logged;
/// - `source`: the request header [`SOURCE_HEADER`] when logged and not empty;
/// - `start_time_ms`: `start_time` in Unix milliseconds, 0 when absent.
pub fn convert_entry(entry: HttpAccessLogEntry) -> Option<AccessLogEntry> {
    let common = entry.common_properties?;
    let mut request = entry.request?;
    let downstream_ip = socket_ip(common.downstream_direct_remote_address)
        .or_else(|| socket_ip(common.downstream_remote_address))
        .unwrap_or_default();
    let source = request
        .request_headers
        .remove(SOURCE_HEADER)
        .filter(|source| !source.is_empty());
    let start_time_ms = common.start_time.map_or(0, |t| {
        t.seconds
            .saturating_mul(1000)
            .saturating_add(i64::from(t.nanos) / 1_000_000)
    });
    Some(AccessLogEntry {
        downstream_ip,
        upstream_cluster: common.upstream_cluster,
        authority: request.authority,
        source,
        start_time_ms,
    })
}

/// The IP of a socket address (moved out), `None` for other kinds of address or an empty one.
fn socket_ip(address: Option<Address>) -> Option<String> {
    match address?.address? {
        address::Address::SocketAddress(socket) if !socket.address.is_empty() => {
            Some(socket.address)
        }
        _ => None,
    }
}

/// Helpers to send real ALS messages, for tests and benchmarks (here and in other crates).
#[doc(hidden)]
pub mod client {
    use std::net::SocketAddr;

    use super::proto::stream_access_logs_message::{
        HttpAccessLogEntries, Identifier, LogEntries, TcpAccessLogEntries,
    };
    use super::proto::{
        address, http_access_log_entry::HttpVersion, socket_address, AccessLogCommon, Address,
        HttpRequestProperties, HttpResponseProperties, Node, RequestMethod, SocketAddress,
        TcpAccessLogEntry,
    };
    pub use super::proto::{AccessLogServiceClient, HttpAccessLogEntry, StreamAccessLogsMessage};
    use crate::concepts::fence::entry::SOURCE_HEADER;

    /// `(downstream_ip, upstream_cluster, authority, source)`.
    pub type SimpleEntry<'a> = (&'a str, &'a str, &'a str, Option<&'a str>);

    /// A client connected to an ALS server at `addr` (plain-text HTTP/2).
    pub async fn connect(
        addr: SocketAddr,
    ) -> Result<AccessLogServiceClient<tonic::transport::Channel>, tonic::transport::Error> {
        AccessLogServiceClient::connect(format!("http://{addr}")).await
    }

    /// A message carrying one HTTP entry per tuple (see [`http_entry`]).
    pub fn message(entries: &[SimpleEntry<'_>]) -> StreamAccessLogsMessage {
        http_message(
            entries
                .iter()
                .map(|&(ip, cluster, authority, source)| http_entry(ip, cluster, authority, source))
                .collect(),
        )
    }

    /// A message carrying these HTTP entries.
    pub fn http_message(entries: Vec<HttpAccessLogEntry>) -> StreamAccessLogsMessage {
        StreamAccessLogsMessage {
            identifier: None,
            log_entries: Some(LogEntries::HttpLogs(HttpAccessLogEntries {
                log_entry: entries,
            })),
        }
    }

    /// A message carrying `count` (empty) TCP entries.
    pub fn tcp_message(count: usize) -> StreamAccessLogsMessage {
        StreamAccessLogsMessage {
            identifier: None,
            log_entries: Some(LogEntries::TcpLogs(TcpAccessLogEntries {
                log_entry: vec![TcpAccessLogEntry::default(); count],
            })),
        }
    }

    /// `message` with the identifier Envoy sends in a stream's first message.
    pub fn with_identifier(
        mut message: StreamAccessLogsMessage,
        node_id: &str,
        cluster: &str,
        log_name: &str,
    ) -> StreamAccessLogsMessage {
        message.identifier = Some(Identifier {
            node: Some(Node {
                id: node_id.to_owned(),
                cluster: cluster.to_owned(),
                ..Node::default()
            }),
            log_name: log_name.to_owned(),
        });
        message
    }

    /// A socket address `ip:port`.
    pub fn socket(ip: &str, port: u32) -> Address {
        Address {
            address: Some(address::Address::SocketAddress(SocketAddress {
                address: ip.to_owned(),
                port_specifier: Some(socket_address::PortSpecifier::PortValue(port)),
                ..SocketAddress::default()
            })),
        }
    }

    /// A protobuf timestamp of Unix milliseconds.
    pub fn timestamp(ms: i64) -> prost_types::Timestamp {
        prost_types::Timestamp {
            seconds: ms.div_euclid(1000),
            nanos: i32::try_from(ms.rem_euclid(1000) * 1_000_000).unwrap_or_default(),
        }
    }

    /// An HTTP entry shaped like what Envoy logs for a `GET /` answered 200: the caller's
    /// address as both direct and (X-Forwarded-For) remote address (none when `downstream_ip`
    /// is empty), and `source`, if any, as the logged request header [`SOURCE_HEADER`]. No
    /// start time: set `common_properties.start_time` (see [`timestamp`]) when it matters.
    pub fn http_entry(
        downstream_ip: &str,
        upstream_cluster: &str,
        authority: &str,
        source: Option<&str>,
    ) -> HttpAccessLogEntry {
        let remote = (!downstream_ip.is_empty()).then(|| socket(downstream_ip, 45_678));
        HttpAccessLogEntry {
            common_properties: Some(AccessLogCommon {
                downstream_remote_address: remote.clone(),
                downstream_direct_remote_address: remote,
                upstream_cluster: upstream_cluster.to_owned(),
                ..AccessLogCommon::default()
            }),
            protocol_version: HttpVersion::Http11 as i32,
            request: Some(HttpRequestProperties {
                request_method: RequestMethod::Get as i32,
                scheme: "http".to_owned(),
                authority: authority.to_owned(),
                path: "/".to_owned(),
                request_headers: source
                    .map(|source| (SOURCE_HEADER.to_owned(), source.to_owned()))
                    .into_iter()
                    .collect(),
                ..HttpRequestProperties::default()
            }),
            response: Some(HttpResponseProperties {
                response_code: Some(200),
                ..HttpResponseProperties::default()
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::client::{http_entry, socket, timestamp};
    use super::*;

    #[test]
    fn converts_an_entry_moving_its_fields() {
        let mut entry = http_entry("10.0.0.7", "inbound|9080||", "details:9080", Some("ns/a"));
        entry.common_properties.as_mut().unwrap().start_time = Some(timestamp(1_700_000_000_123));
        assert_eq!(
            convert_entry(entry),
            Some(AccessLogEntry {
                downstream_ip: "10.0.0.7".into(),
                upstream_cluster: "inbound|9080||".into(),
                authority: "details:9080".into(),
                source: Some("ns/a".into()),
                start_time_ms: 1_700_000_000_123,
            })
        );
    }

    #[test]
    fn downstream_ip_falls_back_to_the_remote_address() {
        let mut entry = http_entry("", "inbound|80||", "a", None);
        let common = entry.common_properties.as_mut().unwrap();
        common.downstream_remote_address = Some(socket("10.1.1.1", 1));
        let converted = convert_entry(entry.clone()).unwrap();
        assert_eq!(converted.downstream_ip, "10.1.1.1");
        assert_eq!(converted.start_time_ms, 0);
        assert_eq!(converted.source, None);

        // A direct address that is not a socket address falls back too.
        let common = entry.common_properties.as_mut().unwrap();
        common.downstream_direct_remote_address = Some(Address {
            address: Some(address::Address::Pipe(
                proto::envoy::config::core::v3::Pipe {
                    path: "/sock".into(),
                    mode: 0,
                },
            )),
        });
        assert_eq!(
            convert_entry(entry.clone()).unwrap().downstream_ip,
            "10.1.1.1"
        );

        // Neither: empty.
        entry
            .common_properties
            .as_mut()
            .unwrap()
            .downstream_remote_address = None;
        assert_eq!(convert_entry(entry).unwrap().downstream_ip, "");
    }

    #[test]
    fn an_empty_source_header_names_no_source() {
        let entry = http_entry("10.0.0.1", "inbound|80||", "a", Some(""));
        assert_eq!(convert_entry(entry).unwrap().source, None);
    }

    #[test]
    fn counts_malformed_and_tcp_entries() {
        let counters = IntakeCounters::default();
        let mut no_request = http_entry("10.0.0.1", "inbound|80||", "a", None);
        no_request.request = None;
        let mut no_common = http_entry("10.0.0.1", "inbound|80||", "b", None);
        no_common.common_properties = None;
        let good = http_entry("10.0.0.1", "inbound|80||", "c", None);
        let batch = convert_message(
            client::http_message(vec![no_request, good, no_common]),
            &counters,
        );
        assert_eq!(batch.len(), 1);
        assert_eq!(batch[0].authority, "c");
        assert!(convert_message(client::tcp_message(3), &counters).is_empty());
        let counts = counters.snapshot();
        assert_eq!(
            (counts.received, counts.malformed, counts.not_inbound),
            (6, 2, 3)
        );
    }

    #[test]
    fn timestamps_round_to_milliseconds() {
        assert_eq!(timestamp(-1).seconds, -1);
        assert_eq!(timestamp(-1).nanos, 999_000_000);
        let mut entry = http_entry("10.0.0.1", "inbound|80||", "a", None);
        entry.common_properties.as_mut().unwrap().start_time = Some(prost_types::Timestamp {
            seconds: 12,
            nanos: 345_999_999,
        });
        assert_eq!(convert_entry(entry).unwrap().start_time_ms, 12_345);
    }
}
