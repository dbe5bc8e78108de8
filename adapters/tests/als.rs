//! The Envoy Access Log Service intake end to end: a real tonic server on 127.0.0.1:0, real
//! protobuf messages streamed by the generated client.
// The throughput measurement reads the wall clock.
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use adapters::concepts::fence::als::client::{self, http_entry, timestamp};
use adapters::concepts::fence::als::proto::StreamAccessLogsResponse;
use adapters::concepts::fence::{als, AccessLogEntry, EntryReceiver, IntakeCounters, IntakeCounts};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

struct Server {
    addr: SocketAddr,
    entries: EntryReceiver,
    counters: Arc<IntakeCounters>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), adapters::Error>>,
}

async fn start(capacity: usize) -> Server {
    start_with_token(capacity, None).await
}

/// A server that requires `authorization: Bearer <token>` when `token` is given.
async fn start_with_token(capacity: usize, token: Option<&str>) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (sink, entries) = mpsc::channel(capacity);
    let counters = Arc::new(IntakeCounters::default());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(als::serve_with_token(
        listener,
        sink,
        counters.clone(),
        token.map(str::to_owned),
        async {
            let _ = stopped.await;
        },
    ));
    Server {
        addr,
        entries,
        counters,
        stop: Some(stop),
        task,
    }
}

impl Server {
    async fn next_batch(&mut self) -> Vec<AccessLogEntry> {
        tokio::time::timeout(Duration::from_secs(10), self.entries.recv())
            .await
            .expect("a batch within 10s")
            .expect("the intake is open")
    }

    async fn shutdown(mut self) -> IntakeCounts {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the server stops within 10s")
            .unwrap()
            .unwrap();
        self.counters.snapshot()
    }
}

/// Stream `messages` on one stream and wait for the server's answer.
async fn stream(
    addr: SocketAddr,
    messages: Vec<client::StreamAccessLogsMessage>,
) -> Result<StreamAccessLogsResponse, tonic::Status> {
    let mut client = client::connect(addr).await.unwrap();
    client
        .stream_access_logs(futures::stream::iter(messages))
        .await
        .map(tonic::Response::into_inner)
}

/// Stream `messages` with `authorization` metadata set to `authorization` (none when `None`).
async fn stream_with_authorization(
    addr: SocketAddr,
    authorization: Option<&str>,
    messages: Vec<client::StreamAccessLogsMessage>,
) -> Result<StreamAccessLogsResponse, tonic::Status> {
    let mut client = client::connect(addr).await.unwrap();
    let mut request = tonic::Request::new(futures::stream::iter(messages));
    if let Some(value) = authorization {
        request
            .metadata_mut()
            .insert("authorization", value.parse().unwrap());
    }
    client
        .stream_access_logs(request)
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn a_token_server_refuses_streams_without_the_bearer_token_and_accepts_it() {
    let mut server = start_with_token(16, Some("s3cret")).await;
    let messages = || vec![client::message(&[("10.0.0.1", "inbound|80||", "a", None)])];

    for (authorization, message) in [
        (
            None,
            "access logs need `authorization: Bearer <token>` metadata",
        ),
        (Some("Bearer wrong"), "the bearer token is not valid"),
        (Some("Bearer s3cre"), "the bearer token is not valid"),
        (Some("Bearer s3cretX"), "the bearer token is not valid"),
        (
            Some("s3cret"),
            "access logs need `authorization: Bearer <token>` metadata",
        ),
        (
            Some("Basic s3cret"),
            "access logs need `authorization: Bearer <token>` metadata",
        ),
    ] {
        let status = stream_with_authorization(server.addr, authorization, messages())
            .await
            .unwrap_err();
        assert_eq!(
            status.code(),
            tonic::Code::Unauthenticated,
            "{authorization:?}: {status:?}"
        );
        assert_eq!(status.message(), message, "{authorization:?}");
    }
    // Refused streams deliver and count nothing.
    assert!(server.entries.try_recv().is_err());
    assert_eq!(server.counters.snapshot(), IntakeCounts::default());

    stream_with_authorization(server.addr, Some("Bearer s3cret"), messages())
        .await
        .unwrap();
    let batch = server.next_batch().await;
    assert_eq!(batch.len(), 1);
    assert_eq!(batch[0].authority, "a");
    let counts = server.shutdown().await;
    assert_eq!((counts.received, counts.malformed), (1, 0));
}

#[tokio::test]
async fn without_a_token_no_metadata_is_needed() {
    let mut server = start_with_token(16, None).await;
    stream_with_authorization(
        server.addr,
        Some("Bearer anything"),
        vec![client::message(&[("10.0.0.1", "inbound|80||", "a", None)])],
    )
    .await
    .unwrap();
    assert_eq!(server.next_batch().await.len(), 1);
    assert_eq!(server.shutdown().await.received, 1);
}

#[tokio::test]
async fn entries_arrive_with_ip_fallback_source_header_and_start_time() {
    let mut server = start(16).await;

    let mut timed = http_entry("10.0.0.7", "inbound|9080||", "details:9080", None);
    timed.common_properties.as_mut().unwrap().start_time = Some(timestamp(1_767_323_045_678));
    let mut forwarded_only = http_entry("", "inbound|9080||", "reviews", None);
    forwarded_only
        .common_properties
        .as_mut()
        .unwrap()
        .downstream_remote_address = Some(client::socket("10.0.0.9", 1234));
    let first = client::with_identifier(
        client::http_message(vec![timed, forwarded_only]),
        "sidecar~10.0.0.2~global-sidecar.mesh~mesh.svc.cluster.local",
        "global-sidecar.mesh",
        "fence",
    );
    let second = client::message(&[
        (
            "10.0.0.8",
            "inbound|80||",
            "ratings",
            Some("default/productpage"),
        ),
        ("", "outbound|80||ratings", "ratings", None),
    ]);
    stream(server.addr, vec![first, second]).await.unwrap();

    assert_eq!(
        server.next_batch().await,
        vec![
            AccessLogEntry {
                downstream_ip: "10.0.0.7".into(),
                upstream_cluster: "inbound|9080||".into(),
                authority: "details:9080".into(),
                source: None,
                start_time_ms: 1_767_323_045_678,
            },
            AccessLogEntry {
                downstream_ip: "10.0.0.9".into(),
                upstream_cluster: "inbound|9080||".into(),
                authority: "reviews".into(),
                source: None,
                start_time_ms: 0,
            },
        ]
    );
    assert_eq!(
        server.next_batch().await,
        vec![
            AccessLogEntry {
                downstream_ip: "10.0.0.8".into(),
                upstream_cluster: "inbound|80||".into(),
                authority: "ratings".into(),
                source: Some("default/productpage".into()),
                start_time_ms: 0,
            },
            AccessLogEntry {
                downstream_ip: String::new(),
                upstream_cluster: "outbound|80||ratings".into(),
                authority: "ratings".into(),
                source: None,
                start_time_ms: 0,
            },
        ]
    );
    let counts = server.shutdown().await;
    assert_eq!((counts.received, counts.malformed), (4, 0));
}

#[tokio::test]
async fn a_malformed_entry_is_counted_and_the_rest_delivered() {
    let mut server = start(16).await;

    let mut no_request = http_entry("10.0.0.1", "inbound|80||", "lost", None);
    no_request.request = None;
    let mut no_common = http_entry("10.0.0.1", "inbound|80||", "lost", None);
    no_common.common_properties = None;
    let messages = vec![
        client::http_message(vec![
            http_entry("10.0.0.1", "inbound|80||", "a", None),
            no_request,
            http_entry("10.0.0.1", "inbound|80||", "b", None),
        ]),
        // All bad: nothing is sent for it, and the stream goes on.
        client::http_message(vec![no_common]),
        client::message(&[("10.0.0.1", "inbound|80||", "c", None)]),
    ];
    stream(server.addr, messages).await.unwrap();

    let authorities = |batch: Vec<AccessLogEntry>| -> Vec<String> {
        batch.into_iter().map(|e| e.authority).collect()
    };
    assert_eq!(authorities(server.next_batch().await), ["a", "b"]);
    assert_eq!(authorities(server.next_batch().await), ["c"]);
    let counts = server.shutdown().await;
    assert_eq!(
        (counts.received, counts.malformed, counts.not_inbound),
        (5, 2, 0)
    );
}

#[tokio::test]
async fn tcp_only_messages_produce_nothing() {
    let mut server = start(16).await;
    stream(
        server.addr,
        vec![
            client::with_identifier(client::tcp_message(3), "node", "cluster", "tcp"),
            client::tcp_message(2),
        ],
    )
    .await
    .unwrap();
    // The stream was answered, so every message was handled: nothing was sent.
    assert!(server.entries.try_recv().is_err());
    let counts = server.shutdown().await;
    assert_eq!(
        (counts.received, counts.malformed, counts.not_inbound),
        (5, 0, 5)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_streams_all_deliver() {
    const STREAMS: usize = 8;
    const MESSAGES: usize = 50;
    const PER_MESSAGE: usize = 20;
    // A small channel: the streams wait for room rather than failing.
    let mut server = start(2).await;
    let addr = server.addr;
    let clients: Vec<_> = (0..STREAMS)
        .map(|s| {
            tokio::spawn(async move {
                let authority = format!("svc-{s}");
                let ip = format!("10.0.1.{s}");
                let entry = (ip.as_str(), "inbound|80||", authority.as_str(), None);
                let messages = (0..MESSAGES)
                    .map(|_| client::message(&[entry; PER_MESSAGE]))
                    .collect();
                stream(addr, messages).await.unwrap();
            })
        })
        .collect();

    let mut per_stream = [0usize; STREAMS];
    let mut total = 0;
    while total < STREAMS * MESSAGES * PER_MESSAGE {
        let batch = server.next_batch().await;
        assert_eq!(batch.len(), PER_MESSAGE, "one batch per message");
        for entry in batch {
            let s: usize = entry.authority["svc-".len()..].parse().unwrap();
            assert_eq!(entry.downstream_ip, format!("10.0.1.{s}"));
            per_stream[s] += 1;
            total += 1;
        }
    }
    for client in clients {
        client.await.unwrap();
    }
    assert_eq!(per_stream, [MESSAGES * PER_MESSAGE; STREAMS]);
    let counts = server.shutdown().await;
    assert_eq!(counts.received, (STREAMS * MESSAGES * PER_MESSAGE) as u64);
    assert_eq!(counts.malformed, 0);
}

/// A message whose field 1 (`identifier`, a message) arrives as a varint: not decodable as a
/// `StreamAccessLogsMessage`.
#[derive(Clone, PartialEq, prost::Message)]
struct Undecodable {
    #[prost(uint64, tag = "1")]
    identifier: u64,
}

#[tokio::test]
async fn an_undecodable_message_ends_only_its_own_stream() {
    let mut server = start(16).await;

    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut raw = tonic::client::Grpc::new(channel);
    raw.ready().await.unwrap();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(
        "/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs",
    );
    let codec = tonic_prost::ProstCodec::<Undecodable, StreamAccessLogsResponse>::default();
    let status = raw
        .client_streaming(
            tonic::Request::new(futures::stream::iter(vec![Undecodable { identifier: 7 }])),
            path,
            codec,
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Internal);

    // The server and other streams are unaffected.
    stream(
        server.addr,
        vec![client::message(&[("10.0.0.1", "inbound|80||", "a", None)])],
    )
    .await
    .unwrap();
    assert_eq!(server.next_batch().await.len(), 1);
    let counts = server.shutdown().await;
    assert_eq!((counts.received, counts.malformed), (2, 1));
}

#[tokio::test]
async fn shutdown_answers_open_streams() {
    let mut server = start(16).await;
    let (tx, rx) = mpsc::channel(4);
    let addr = server.addr;
    let envoy = tokio::spawn(async move {
        let mut client = client::connect(addr).await.unwrap();
        client
            .stream_access_logs(tokio_stream_from(rx))
            .await
            .map(tonic::Response::into_inner)
    });
    tx.send(client::message(&[("10.0.0.1", "inbound|80||", "a", None)]))
        .await
        .unwrap();
    assert_eq!(server.next_batch().await.len(), 1);

    // The stream is still open (`tx` is alive): shutting down must not wait for it.
    let counts = server.shutdown().await;
    assert_eq!(counts.received, 1);
    let answer = tokio::time::timeout(Duration::from_secs(10), envoy)
        .await
        .unwrap()
        .unwrap();
    assert!(answer.is_ok(), "{answer:?}");
    drop(tx);
}

/// A stream of what `rx` receives, ending when every sender is gone.
fn tokio_stream_from<T: Send + 'static>(
    rx: mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|t| (t, rx)) })
}

#[tokio::test]
async fn a_stopped_intake_ends_the_stream() {
    let server = start(1).await;
    let Server {
        addr,
        entries,
        stop,
        task,
        ..
    } = server;
    drop(entries);
    let status = stream(
        addr,
        vec![client::message(&[("10.0.0.1", "inbound|80||", "a", None)])],
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable);
    let _ = stop.unwrap().send(());
    task.await.unwrap().unwrap();
}

/// Throughput through the whole endpoint (client encode, HTTP/2, decode, conversion, channel).
/// Run in release: `cargo test --release -p adapters --test als -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, run in release by hand"]
async fn throughput() {
    const STREAMS: usize = 4;
    const MESSAGES: usize = 2_000;
    const PER_MESSAGE: usize = 100;
    let mut server = start(64).await;
    let addr = server.addr;
    // Built before the clock starts; realistic entries (addresses, headers, start time).
    let streams: Vec<Vec<_>> = (0..STREAMS)
        .map(|s| {
            (0..MESSAGES)
                .map(|m| {
                    client::http_message(
                        (0..PER_MESSAGE)
                            .map(|i| {
                                let mut e = http_entry(
                                    &format!("10.{s}.{}.{}", m % 256, i),
                                    "inbound|9080||",
                                    &format!("svc-{}.default.svc.cluster.local:9080", i % 50),
                                    (i % 3 == 0).then_some("default/productpage"),
                                );
                                let common = e.common_properties.as_mut().unwrap();
                                common.start_time = Some(timestamp(1_767_323_045_678));
                                let request = e.request.as_mut().unwrap();
                                request.user_agent = "Envoy/HC".into();
                                request.request_id = "3f2a9c0e-8d1b-4a6e-9f7c-2b5d8e1a4c3f".into();
                                request.path = "/api/v1/products/42".into();
                                e
                            })
                            .collect(),
                    )
                })
                .collect()
        })
        .collect();
    let total = STREAMS * MESSAGES * PER_MESSAGE;
    let started = std::time::Instant::now();
    let clients: Vec<_> = streams
        .into_iter()
        .map(|messages| tokio::spawn(async move { stream(addr, messages).await.unwrap() }))
        .collect();
    let mut seen = 0;
    while seen < total {
        seen += server.next_batch().await.len();
    }
    let elapsed = started.elapsed();
    for client in clients {
        client.await.unwrap();
    }
    println!(
        "{total} entries over {STREAMS} streams in {elapsed:?}: {:.0} entries/s",
        total as f64 / elapsed.as_secs_f64()
    );
    server.shutdown().await;
}
