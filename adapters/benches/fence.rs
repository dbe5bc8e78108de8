//! Fence benchmark (issue 4): the three targets of the Slime lazyload port, each printed with a
//! baseline measured in the same run.
//!
//! `cargo bench -p adapters --bench fence`. Knobs (environment variables):
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `MESHPLANE_BENCH_ENTRIES` | 3000000 | access-log entries per intake round (part 1) |
//! | `MESHPLANE_BENCH_PROBES` | 500 | latency probes per condition (part 2) |
//! | `MESHPLANE_BENCH_LOAD_RATE` | 100000 | background entries/s while probing under load |
//! | `MESHPLANE_BENCH_SERVICES` | 10000 | services (= fences) in part 3 |
//! | `MESHPLANE_BENCH_DEPS` | 10 | learned dependencies per fence in part 3 |
//! | `MESHPLANE_BENCH_ONLY` | all | subset of `intake,latency,scale` |
//!
//! 1. **intake**: the real daemon core (redb log with fsync, actor host, access-log intake, fence
//!    monitor, manifest projector) with `als::serve` on 127.0.0.1; 100 fenced callers (one Endpoints IP
//!    each) calling a fixed set of 5 of 20 destinations each (500 pairs). 4 concurrent gRPC
//!    streams send messages of 200 Envoy-shaped HTTP entries. Measured: entries/s until every
//!    entry has been attributed and dropped as fresh or recorded (end to end), events appended.
//!    Baseline: the same streams into `als::serve` whose channel receiver drops every batch
//!    (gRPC + protobuf decode ceiling on the same thread).
//! 2. **latency**: from sending one ALS message naming a never-seen destination to the fence's
//!    desired Sidecar (`projections::fence::sidecar` over the fence actor's state) listing it;
//!    idle and under a background stream of fresh entries. Baseline: `dispatcher.execute` of a
//!    ConfigMap apply (one durable append + delivery).
//! 3. **scale**: 10,000 services, fences and 100,000 learned dependencies built through the pure
//!    deciders (`Mesh::execute`): `FenceState::rebuild_all` in place, every Sidecar, the
//!    incremental cost of a new dependency and of a VirtualService change, RSS. Baselines:
//!    cloning what `rebuild_all` produces (every fence's rendered view: the floor of allocating
//!    that much state) and a naive full recompute per event. Runs in child processes of this
//!    binary so each RSS figure is that part's own; the last child starts a real host from a
//!    redb log of the same state and measures its RSS, one projection pass as the daemon runs
//!    it, and new dependencies through ALS without and with the manifest projector running.
//!
//! The daemon's threads (the actix system thread with the gRPC server, intake and actors; the
//! log writer) and the load generator share the machine's cores; CPU time per thread is printed
//! so the split is visible.

// Benchmarks measure wall-clock time.
#![allow(clippy::disallowed_methods)]

#[path = "common/machine.rs"]
mod machine;

use machine::{describe, loadavg, reset_peak, rss_mib};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// The daemon runs on mimalloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use actors::fence::{FenceCommand, Sighting};
use actors::{Ctx, Decision, Mesh, MeshCommand};
use adapters::concepts::fence::als::client::{self, HttpAccessLogEntry};
use adapters::concepts::fence::CONFIG_TICK as FENCE_TICK;
use adapters::concepts::fence::{als, IntakeCounters, IntakeCounts};
use adapters::daemon::start_host;
use adapters::host::Dispatcher;
use adapters::manifests::ManifestDir;
use adapters::metrics::Metrics;
use adapters::storage::{open_store, StoreKind};
use bytes::Bytes;
use events::schema::{FenceKey, Via};
use events::{EventStore, ExpectedVersion, NewEvent, StreamAppend, Transaction};
use futures::SinkExt;
use prost::Message as _;
use serde_json::{json, Value};
use tokio::sync::watch;

const PART_ENV: &str = "MESHPLANE_BENCH_FENCE_PART";
const LOG_ENV: &str = "MESHPLANE_BENCH_FENCE_LOG";
/// `start_time` of the generated entries (the intake times sightings by its own clock).
const ENTRY_TIME_MS: i64 = 1_795_305_600_000;

const INTAKE_TARGET: f64 = 200_000.0;
const LATENCY_TARGET_MS: f64 = 50.0;
const RECOMPUTE_TARGET_S: f64 = 1.0;
const MEMORY_TARGET_MB: f64 = 500.0;

/// Part 1/2 topology.
const NAMESPACE: &str = "bench";
const CALLERS: usize = 100;
const DESTINATIONS: usize = 20;
const CALLS_PER_CALLER: usize = 5;
const PER_MESSAGE: usize = 200;
const STREAMS: usize = 4;
/// Distinct pre-encoded messages each stream cycles through.
const DISTINCT_MESSAGES: usize = 100;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn wanted(part: &str) -> bool {
    std::env::var("MESHPLANE_BENCH_ONLY")
        .map(|only| only.split(',').any(|p| p.trim() == part))
        .unwrap_or(true)
}

fn main() {
    match std::env::var(PART_ENV).as_deref() {
        Ok("scale") => return scale::pure(),
        Ok("scale-log") => return scale::write_log(),
        Ok("scale-host") => return scale::host(),
        _ => {}
    }
    println!("fence benchmark (issue 4)");
    println!("machine: {}", describe());
    if wanted("intake") || wanted("latency") {
        daemon::run();
    }
    if wanted("scale") {
        scale::run_children();
    }
    println!("load average at the end: {}", loadavg());
}

// ---------------------------------------------------------------------------------------------
// Measurement helpers.

fn rss_line(what: &str) {
    let (rss, hwm) = rss_mib();
    println!(
        "    RSS {what}: {rss:.1} MiB ({:.1} MB), peak {hwm:.1} MiB",
        rss * 1.048_576
    );
}

/// Clock ticks per second of `/proc/*/stat` times.
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime, in seconds, of a `/proc/.../stat` file.
fn cpu_seconds(stat_path: &str) -> f64 {
    let stat = std::fs::read_to_string(stat_path).unwrap_or_default();
    // Fields after the command name (which may contain spaces) start at field 3.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    (ticks(11).unwrap_or(0.0) + ticks(12).unwrap_or(0.0)) / clock_ticks_cached()
}

fn clock_ticks_cached() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(clock_ticks)
}

/// CPU seconds of the whole process, of the main (actix system) thread, of the calling thread.
fn process_cpu() -> f64 {
    cpu_seconds("/proc/self/stat")
}
fn main_thread_cpu() -> f64 {
    cpu_seconds(&format!("/proc/self/task/{}/stat", std::process::id()))
}
fn this_thread_cpu() -> f64 {
    cpu_seconds("/proc/thread-self/stat")
}

#[derive(Clone, Copy)]
struct Cpu {
    process: f64,
    daemon_thread: f64,
}

impl Cpu {
    fn now() -> Cpu {
        Cpu {
            process: process_cpu(),
            daemon_thread: main_thread_cpu(),
        }
    }
}

/// Percentiles of durations, in milliseconds.
struct Latencies(Vec<f64>);

impl Latencies {
    fn new(mut ms: Vec<f64>) -> Self {
        ms.sort_by(f64::total_cmp);
        Latencies(ms)
    }

    fn pct(&self, p: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        let i = ((self.0.len() as f64 * p).ceil() as usize).clamp(1, self.0.len()) - 1;
        self.0[i]
    }

    fn mean(&self) -> f64 {
        self.0.iter().sum::<f64>() / self.0.len().max(1) as f64
    }

    fn line(&self) -> String {
        format!(
            "n={} p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms, mean {:.2} ms",
            self.0.len(),
            self.pct(0.50),
            self.pct(0.90),
            self.pct(0.99),
            self.0.last().copied().unwrap_or(f64::NAN),
            self.mean()
        )
    }
}

fn verdict(met: bool) -> &'static str {
    if met {
        "MET"
    } else {
        "MISSED"
    }
}

// ---------------------------------------------------------------------------------------------
// The load generator: pre-encoded `StreamAccessLogsMessage`s sent as they are, so the client
// spends no time in protobuf encoding (it shares the cores with the daemon).

mod raw {
    use std::net::SocketAddr;

    use bytes::{Buf, BufMut, Bytes};
    use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
    use tonic::codegen::http::uri::PathAndQuery;
    use tonic::Status;

    const PATH: &str = "/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs";

    /// Sends already-encoded messages; ignores the (empty) response.
    #[derive(Clone, Copy, Default)]
    pub struct RawCodec;
    pub struct RawEncoder;
    pub struct DiscardDecoder;

    impl Encoder for RawEncoder {
        type Item = Bytes;
        type Error = Status;
        fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
            dst.put_slice(&item);
            Ok(())
        }
    }

    impl Decoder for DiscardDecoder {
        type Item = ();
        type Error = Status;
        fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<()>, Status> {
            let n = src.remaining();
            src.advance(n);
            Ok(Some(()))
        }
    }

    impl Codec for RawCodec {
        type Encode = Bytes;
        type Decode = ();
        type Encoder = RawEncoder;
        type Decoder = DiscardDecoder;
        fn encoder(&mut self) -> RawEncoder {
            RawEncoder
        }
        fn decoder(&mut self) -> DiscardDecoder {
            DiscardDecoder
        }
    }

    /// One `StreamAccessLogs` call on its own connection, sending `messages`; returns when the
    /// server has answered (it answers once it has read the whole stream).
    pub async fn stream<S>(addr: SocketAddr, messages: S) -> Result<(), Status>
    where
        S: futures::Stream<Item = Bytes> + Send + 'static,
    {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .expect("endpoint")
            .tcp_nodelay(true)
            .connect()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let mut grpc = tonic::client::Grpc::new(channel);
        grpc.ready()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        grpc.client_streaming(
            tonic::Request::new(messages),
            PathAndQuery::from_static(PATH),
            RawCodec,
        )
        .await?;
        Ok(())
    }
}

fn caller_name(c: usize) -> String {
    format!("caller-{c}")
}
fn caller_ip(c: usize) -> String {
    format!("10.1.{}.{}", c / 250, c % 250 + 1)
}
fn destination_name(d: usize) -> String {
    format!("dest-{d}")
}

/// An HTTP entry shaped like what the global sidecar's Envoy logs for an inbound request.
fn envoy_entry(caller_ip: &str, authority: &str, n: u64) -> HttpAccessLogEntry {
    let mut e = client::http_entry(caller_ip, "inbound|9080||", authority, None);
    let common = e.common_properties.as_mut().expect("common");
    common.start_time = Some(client::timestamp(ENTRY_TIME_MS + n as i64));
    common.downstream_local_address = Some(client::socket("10.200.0.10", 9080));
    common.upstream_remote_address = Some(client::socket("10.3.0.7", 9080));
    let request = e.request.as_mut().expect("request");
    request.path = format!("/api/v1/items/{}?page={}", n % 997, n % 7);
    request.user_agent = "python-requests/2.31.0".into();
    request.request_id = format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        n as u32,
        (n >> 8) as u16,
        n % 4096,
        (n >> 4) % 4096,
        n.wrapping_mul(0x9e37_79b9)
    );
    request.request_headers_bytes = 412;
    let response = e.response.as_mut().expect("response");
    response.response_headers_bytes = 180;
    response.response_body_bytes = 1024 + n % 300;
    response.response_code_details = "via_upstream".into();
    e
}

/// The destination caller `c` calls in its `k`-th call.
fn callee(c: usize, k: usize) -> usize {
    (c + k * 3) % DESTINATIONS
}

/// `DISTINCT_MESSAGES` encoded messages of `PER_MESSAGE` entries that together cover every
/// (caller, destination) pair, each caller calling its fixed `CALLS_PER_CALLER` destinations.
fn steady_messages() -> Vec<Bytes> {
    (0..DISTINCT_MESSAGES)
        .map(|m| {
            let entries = (0..PER_MESSAGE)
                .map(|j| {
                    let g = m * PER_MESSAGE + j;
                    let c = g % CALLERS;
                    let k = (g / CALLERS) % CALLS_PER_CALLER;
                    let authority = format!("{}:9080", destination_name(callee(c, k)));
                    envoy_entry(&caller_ip(c), &authority, g as u64)
                })
                .collect();
            Bytes::from(client::http_message(entries).encode_to_vec())
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Parts 1 and 2: the running daemon core.

mod daemon {
    use super::*;

    /// Entries the intake has finished with: dropped as fresh, recorded, or skipped.
    pub fn processed(c: &IntakeCounts) -> u64 {
        c.fresh
            + c.sightings
            + c.unfenced_source
            + c.not_inbound
            + c.unknown_source
            + c.unknown_destination
    }

    fn documents() -> Vec<Value> {
        let mut docs = vec![
            json!({"apiVersion": "config.netease.com/v1alpha1", "kind": "SlimeBoot",
                "metadata": {"name": "lazyload", "namespace": "mesh-operator"},
                "spec": {"module": [{"name": "lazyload", "kind": "lazyload", "enable": true,
                    "general": {"wormholePort": ["9080"], "refreshWindow": "60s",
                        "dependencyTtl": "24h"},
                    "global": {"misc": {"metricSourceType": "accesslog"}}}]}}),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}),
        ];
        let service = |name: &str, ip: &str| {
            [
                json!({"apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": name}},
                    "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 9080}]}}),
                json!({"apiVersion": "v1", "kind": "Endpoints",
                    "metadata": {"name": name, "namespace": NAMESPACE},
                    "subsets": [{"addresses": [{"ip": ip}], "ports": [{"port": 9080}]}]}),
            ]
        };
        for c in 0..CALLERS {
            let name = caller_name(c);
            docs.extend(service(&name, &caller_ip(c)));
            docs.push(
                json!({"apiVersion": "microservice.slime.io/v1alpha1", "kind": "ServiceFence",
                "metadata": {"name": name, "namespace": NAMESPACE},
                "spec": {"enable": true, "workloadSelector": {"fromService": true}}}),
            );
        }
        for d in 0..DESTINATIONS {
            docs.extend(service(&destination_name(d), &format!("10.2.0.{}", d + 1)));
        }
        docs
    }

    /// The daemon's manifest projector (as `daemon::project_forever`): on every delivery, one
    /// pass of `daemon::project_manifests` (a chunk of objects at a time); publishes the
    /// position each pass covered.
    pub async fn project_forever(
        dispatcher: Dispatcher,
        dir: ManifestDir,
        projected: watch::Sender<u64>,
    ) {
        let manifests = Arc::new(Mutex::new(dir));
        let mut delivered = dispatcher.watch_delivered();
        loop {
            delivered.borrow_and_update();
            if let Ok(pass) = adapters::daemon::project_manifests(&dispatcher, &manifests).await {
                projected.send_replace(pass.position);
            }
            if delivered.changed().await.is_err() {
                return;
            }
            actix_rt::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// What the driver thread needs.
    struct Rig {
        dispatcher: Dispatcher,
        store: Arc<dyn EventStore>,
        real: SocketAddr,
        counters: Arc<IntakeCounters>,
        baseline: SocketAddr,
        dropped: Arc<AtomicU64>,
        projected: watch::Receiver<u64>,
    }

    pub fn run() {
        std::fs::create_dir_all(env!("CARGO_TARGET_TMPDIR")).ok();
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
        let store = open_store(&dir.path().join("data"), StoreKind::Redb).expect("redb log");
        let manifests = ManifestDir::open(&dir.path().join("manifests")).expect("manifests");
        println!(
            "\ndaemon core: redb log and manifest directory under {}",
            dir.path().display()
        );
        let system = actix_rt::System::new();
        system.block_on(async move {
            let metrics = Arc::new(Metrics::default());
            let host = start_host(store.clone(), metrics, None).expect("host");
            let (fence_io, intake, _intake_task) =
                adapters::concepts::fence::start_intake(&host.dispatcher);
            let _timers = adapters::host::timers::spawn_all(&host.dispatcher);
            let dispatcher = host.dispatcher.clone();
            actix_rt::spawn(adapters::concepts::fence::monitor::run_monitor(
                dispatcher.clone(),
                intake,
                FENCE_TICK,
            ));
            let (projected_tx, projected) = watch::channel(0);
            actix_rt::spawn(project_forever(dispatcher.clone(), manifests, projected_tx));

            let docs = documents();
            let commands: Vec<MeshCommand> = docs
                .iter()
                .map(|d| actors::mesh::document_command(d).expect("document"))
                .collect();
            for chunk in commands.chunks(64) {
                dispatcher
                    .execute_all(chunk.to_vec())
                    .await
                    .expect("apply the cluster");
            }
            println!(
                "applied {} documents: SlimeBoot (refreshWindow 60s), {CALLERS} fenced callers with one Endpoints IP each, {DESTINATIONS} destinations; log head {}",
                docs.len(),
                store.head()
            );

            // The real endpoint, as `meshplane run --als-listen` serves it.
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let real = listener.local_addr().unwrap();
            actix_rt::spawn(als::serve(
                listener,
                fence_io.entries.clone(),
                fence_io.counters.clone(),
                std::future::pending(),
            ));
            // The baseline: the same server and channel, a receiver that drops every batch.
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let baseline = listener.local_addr().unwrap();
            let (sink, mut drain): (adapters::concepts::fence::EntrySender, _) =
                tokio::sync::mpsc::channel(256);
            let dropped = Arc::new(AtomicU64::new(0));
            let counted = dropped.clone();
            actix_rt::spawn(async move {
                while let Some(batch) = drain.recv().await {
                    counted.fetch_add(batch.len() as u64, Ordering::Relaxed);
                }
            });
            actix_rt::spawn(als::serve(
                listener,
                sink,
                Arc::new(IntakeCounters::default()),
                std::future::pending(),
            ));

            let rig = Rig {
                dispatcher,
                store,
                real,
                counters: fence_io.counters.clone(),
                baseline,
                dropped,
                projected,
            };
            let (done_tx, done_rx) = tokio::sync::oneshot::channel();
            std::thread::Builder::new()
                .name("load-generator".into())
                .spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    runtime.block_on(drive(rig));
                    let _ = done_tx.send(());
                })
                .unwrap();
            done_rx.await.expect("the driver finished");
            drop(fence_io);
        });
        drop(dir);
    }

    async fn drive(rig: Rig) {
        let messages = steady_messages();
        let bytes: usize = messages.iter().map(Bytes::len).sum();
        println!(
            "load generator: {STREAMS} concurrent gRPC streams, messages of {PER_MESSAGE} entries ({:.0} bytes per entry encoded), {} distinct (caller, destination) pairs",
            bytes as f64 / (messages.len() * PER_MESSAGE) as f64,
            CALLERS * CALLS_PER_CALLER
        );
        if wanted("intake") {
            intake_rounds(&rig, &messages).await;
        }
        if wanted("latency") {
            latency(&rig, &messages).await;
        }
    }

    /// Send `total` entries on `STREAMS` streams as fast as they go; returns when every stream
    /// has been answered.
    async fn blast(addr: SocketAddr, messages: &[Bytes], total: usize) {
        let per_stream = total / PER_MESSAGE / STREAMS;
        let streams: Vec<_> = (0..STREAMS)
            .map(|s| {
                let messages = messages.to_vec();
                let offset = s * DISTINCT_MESSAGES / STREAMS;
                let items = futures::stream::iter(
                    (0..per_stream).map(move |i| messages[(offset + i) % messages.len()].clone()),
                );
                tokio::spawn(raw::stream(addr, items))
            })
            .collect();
        for s in streams {
            s.await.expect("stream task").expect("stream answered");
        }
    }

    struct Round {
        entries: u64,
        secs: f64,
        events: u64,
        daemon_thread: f64,
        client_thread: f64,
        others: f64,
    }

    impl Round {
        fn rate(&self) -> f64 {
            self.entries as f64 / self.secs
        }
        /// Entries per second of CPU time of the thread that runs the gRPC server and the
        /// intake: what one uncontended core would sustain.
        fn per_cpu(&self) -> f64 {
            self.entries as f64 / self.daemon_thread
        }
        fn print(&self, what: &str) {
            println!(
                "  {what}: {} entries in {:.3} s = {:.0} entries/s ({:.0} per CPU-second of the daemon thread); events appended {}; CPU: daemon thread {:.2} cores, load generator {:.2}, other threads (log writer, projector) {:.2}",
                self.entries,
                self.secs,
                self.rate(),
                self.per_cpu(),
                self.events,
                self.daemon_thread / self.secs,
                self.client_thread / self.secs,
                self.others / self.secs
            );
        }
    }

    async fn timed_round(rig: &Rig, messages: &[Bytes], total: u64, real: bool) -> Round {
        let total = total / (PER_MESSAGE * STREAMS) as u64 * (PER_MESSAGE * STREAMS) as u64;
        let before = processed(&rig.counters.snapshot());
        let dropped_before = rig.dropped.load(Ordering::Relaxed);
        let head = rig.store.head();
        let cpu = Cpu::now();
        let client_cpu = this_thread_cpu();
        let started = Instant::now();
        blast(
            if real { rig.real } else { rig.baseline },
            messages,
            total as usize,
        )
        .await;
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let done = if real {
                processed(&rig.counters.snapshot()) - before
            } else {
                rig.dropped.load(Ordering::Relaxed) - dropped_before
            };
            if done >= total {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the intake finished {done} of {total} entries"
            );
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        let secs = started.elapsed().as_secs_f64();
        let client_thread = this_thread_cpu() - client_cpu;
        let after = Cpu::now();
        let daemon_thread = after.daemon_thread - cpu.daemon_thread;
        Round {
            entries: total,
            secs,
            events: rig.store.head() - head,
            daemon_thread,
            client_thread,
            others: (after.process - cpu.process - daemon_thread - client_thread).max(0.0),
        }
    }

    async fn intake_rounds(rig: &Rig, messages: &[Bytes]) {
        let total: u64 = env_or("MESHPLANE_BENCH_ENTRIES", 3_000_000);
        println!("\n1. access-log intake through the gRPC endpoint ({total} entries per round)");
        let base1 = timed_round(rig, messages, total, false).await;
        base1.print("baseline: als::serve, receiver drops the batches");
        let counts0 = rig.counters.snapshot();
        let learn = timed_round(rig, messages, total, true).await;
        learn.print("intake, first round (learns the pairs)");
        let steady = timed_round(rig, messages, total, true).await;
        steady.print("intake, second round (every pair known)");
        let base2 = timed_round(rig, messages, total, false).await;
        base2.print("baseline again");
        let counts = rig.counters.snapshot();
        println!(
            "  intake counters over both rounds: received {} for {} entries sent, fresh {}, sightings {}, skipped {}",
            counts.received - counts0.received,
            learn.entries + steady.entries,
            counts.fresh - counts0.fresh,
            counts.sightings - counts0.sightings,
            counts.not_inbound + counts.unknown_source + counts.unknown_destination
                + counts.unfenced_source
                - counts0.not_inbound
                - counts0.unknown_source
                - counts0.unknown_destination
                - counts0.unfenced_source
        );
        let ceiling = base1.rate().max(base2.rate());
        let worst = learn.rate().min(steady.rate());
        println!(
            "  intake / baseline: {:.0}% (first round), {:.0}% (second round); per daemon-thread CPU-second: {:.0}% and {:.0}%",
            100.0 * learn.rate() / ceiling,
            100.0 * steady.rate() / ceiling,
            100.0 * learn.per_cpu() / base1.per_cpu().max(base2.per_cpu()),
            100.0 * steady.per_cpu() / base1.per_cpu().max(base2.per_cpu())
        );
        println!(
            "  events: {} for {} entries (one per distinct pair learned, none once known)",
            learn.events + steady.events,
            learn.entries + steady.entries
        );
        println!(
            "target: >= {INTAKE_TARGET:.0} entries/s sustained; measured {worst:.0} entries/s (the slower round) -> {}",
            verdict(worst >= INTAKE_TARGET)
        );
    }

    async fn sidecar_lists(dispatcher: &Dispatcher, key: FenceKey, want: String) -> bool {
        dispatcher
            .read::<actors::fence::Fences, _>(move |s, _| {
                projections::fence::sidecar(s, &key)
                    .is_some_and(|sc| sc.spec.egress.iter().any(|e| e.hosts.contains(&want)))
            })
            .await
            .unwrap_or(false)
    }

    /// `n` probes: send a message naming a new destination, wait until the desired Sidecar
    /// lists it (and until the manifest projector has covered that position). Returns the two
    /// latency series in milliseconds.
    pub async fn probes(
        dispatcher: &Dispatcher,
        projected: Option<&watch::Receiver<u64>>,
        addr: SocketAddr,
        tag: &str,
        n: usize,
        callers: usize,
        namespace_of: impl Fn(usize) -> (String, String, String),
    ) -> (Latencies, Latencies) {
        let (mut tx, rx) = futures::channel::mpsc::channel::<Bytes>(16);
        let stream = tokio::spawn(raw::stream(addr, rx));
        let mut delivered = dispatcher.watch_delivered();
        let mut to_sidecar = Vec::with_capacity(n);
        let mut to_manifest = Vec::with_capacity(n);
        for i in 0..n {
            let c = (i * 37) % callers;
            let (namespace, name, ip) = namespace_of(c);
            let short = format!("{tag}-{i}");
            let want = format!("*/{short}.{namespace}.svc.cluster.local");
            let key = FenceKey::new(&namespace, &name);
            let entry = envoy_entry(&ip, &format!("{short}:9080"), i as u64);
            let message = Bytes::from(client::http_message(vec![entry]).encode_to_vec());
            delivered.borrow_and_update();
            let started = Instant::now();
            tx.send(message).await.expect("probe stream open");
            let deadline = started + Duration::from_secs(10);
            loop {
                if sidecar_lists(dispatcher, key.clone(), want.clone()).await {
                    break;
                }
                let left = deadline.saturating_duration_since(Instant::now());
                match tokio::time::timeout(left, delivered.changed()).await {
                    Ok(Ok(())) => {}
                    _ => panic!("probe {i}: {want} not in the Sidecar of {key} within 10 s"),
                }
            }
            to_sidecar.push(started.elapsed().as_secs_f64() * 1e3);
            if let Some(projected) = projected {
                let position = *delivered.borrow();
                let mut projected = projected.clone();
                let _ = tokio::time::timeout(
                    Duration::from_secs(10),
                    projected.wait_for(|p| *p >= position),
                )
                .await;
                to_manifest.push(started.elapsed().as_secs_f64() * 1e3);
            }
            tokio::time::sleep(Duration::from_millis(2 + (i % 3) as u64)).await;
        }
        drop(tx);
        let _ = stream.await;
        (Latencies::new(to_sidecar), Latencies::new(to_manifest))
    }

    /// `n` ConfigMap applies through the dispatcher: one durable append and its delivery each.
    pub async fn plain_executes(dispatcher: &Dispatcher, tag: &str, n: usize) -> Latencies {
        let mut ms = Vec::with_capacity(n);
        for i in 0..n {
            let doc = json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": format!("probe-{tag}"), "namespace": NAMESPACE},
                "data": {"n": i.to_string()}});
            let command = actors::mesh::document_command(&doc).expect("configmap");
            let started = Instant::now();
            dispatcher.execute(command).await.expect("apply");
            ms.push(started.elapsed().as_secs_f64() * 1e3);
            tokio::time::sleep(Duration::from_millis(2 + (i % 3) as u64)).await;
        }
        Latencies::new(ms)
    }

    fn local_caller(c: usize) -> (String, String, String) {
        (NAMESPACE.to_string(), caller_name(c), caller_ip(c))
    }

    async fn latency(rig: &Rig, messages: &[Bytes]) {
        let n: usize = env_or("MESHPLANE_BENCH_PROBES", 500);
        println!("\n2. first entry of a new dependency -> the desired Sidecar lists it ({n} probes per condition)");
        let (idle, idle_manifest) = probes(
            &rig.dispatcher,
            Some(&rig.projected),
            rig.real,
            "idle",
            n,
            CALLERS,
            local_caller,
        )
        .await;
        let idle_base = plain_executes(&rig.dispatcher, "idle", n).await;
        println!("  idle, to the desired Sidecar:         {}", idle.line());
        println!(
            "  idle, to the manifest directory:      {}",
            idle_manifest.line()
        );
        println!(
            "  baseline, idle: execute of a ConfigMap apply: {}",
            idle_base.line()
        );

        // Background load: fresh entries at a fixed rate on STREAMS streams, from another
        // thread (a second load generator, as a second Envoy would be).
        let rate: f64 = env_or("MESHPLANE_BENCH_LOAD_RATE", 100_000.0);
        let stop = Arc::new(AtomicBool::new(false));
        let background = {
            let stop = stop.clone();
            let messages = messages.to_vec();
            let addr = rig.real;
            std::thread::Builder::new()
                .name("background-load".into())
                .spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    runtime.block_on(paced(addr, messages, rate, stop))
                })
                .unwrap()
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        let before = processed(&rig.counters.snapshot());
        let head = rig.store.head();
        let started = Instant::now();
        let (loaded, loaded_manifest) = probes(
            &rig.dispatcher,
            Some(&rig.projected),
            rig.real,
            "loaded",
            n,
            CALLERS,
            local_caller,
        )
        .await;
        let loaded_base = plain_executes(&rig.dispatcher, "loaded", n).await;
        let secs = started.elapsed().as_secs_f64();
        let handled = processed(&rig.counters.snapshot()) - before;
        let events = rig.store.head() - head;
        stop.store(true, Ordering::Relaxed);
        let sent = background.join().expect("background load");
        println!(
            "  background load: {:.0} entries/s handled by the intake while probing ({sent} sent in total), {events} events appended meanwhile (the probes' and the baseline's)",
            handled as f64 / secs
        );
        println!("  loaded, to the desired Sidecar:       {}", loaded.line());
        println!(
            "  loaded, to the manifest directory:    {}",
            loaded_manifest.line()
        );
        println!(
            "  baseline, loaded: execute of a ConfigMap apply: {}",
            loaded_base.line()
        );
        let worst = idle.pct(0.99).max(loaded.pct(0.99));
        println!(
            "target: p99 <= {LATENCY_TARGET_MS} ms to the desired Sidecar; measured p99 {:.2} ms idle, {:.2} ms under {rate:.0} entries/s -> {}",
            idle.pct(0.99),
            loaded.pct(0.99),
            verdict(worst <= LATENCY_TARGET_MS)
        );
    }

    /// Stream fresh entries at `rate` entries/s on `STREAMS` streams until `stop`; returns how
    /// many entries were sent.
    async fn paced(
        addr: SocketAddr,
        messages: Vec<Bytes>,
        rate: f64,
        stop: Arc<AtomicBool>,
    ) -> u64 {
        let period = Duration::from_secs_f64((STREAMS * PER_MESSAGE) as f64 / rate);
        let sent = Arc::new(AtomicU64::new(0));
        let streams: Vec<_> = (0..STREAMS)
            .map(|s| {
                let messages = messages.clone();
                let stop = stop.clone();
                let sent = sent.clone();
                let interval = tokio::time::interval(period);
                let items = futures::stream::unfold((s * 7, interval), move |(i, mut interval)| {
                    let messages = messages.clone();
                    let stop = stop.clone();
                    let sent = sent.clone();
                    async move {
                        interval.tick().await;
                        if stop.load(Ordering::Relaxed) {
                            return None;
                        }
                        sent.fetch_add(PER_MESSAGE as u64, Ordering::Relaxed);
                        Some((messages[i % messages.len()].clone(), (i + 1, interval)))
                    }
                });
                tokio::spawn(raw::stream(addr, items))
            })
            .collect();
        for s in streams {
            s.await.expect("stream task").expect("stream answered");
        }
        sent.load(Ordering::Relaxed)
    }
}

// ---------------------------------------------------------------------------------------------
// Part 3: 10,000 services and fences, 100,000 learned dependencies.

mod scale {
    use super::*;

    const POPULAR: usize = 10;
    const REBUILD_STEP: &str = "FenceState::rebuild_all (every fence, from scratch)";
    const SIDECARS_STEP: &str = "every desired Sidecar (projections::fence::sidecar)";
    const OBJECTS_STEP: &str = "fence::desired_objects (+ ServiceFences with status)";
    const KUBE_STEP: &str = "desired_kube (every Kubernetes object of the mesh)";
    const CLONE_VIEWS_STEP: &str = "baseline: clone of the rendered views (FenceState.fences)";
    const CLONE_STATE_STEP: &str = "baseline: FenceState::clone (everything)";
    const PER_NAMESPACE: usize = 100;
    const VS_EVERY: usize = 10;

    struct Size {
        services: usize,
        deps: usize,
    }

    fn size() -> Size {
        Size {
            services: env_or("MESHPLANE_BENCH_SERVICES", 10_000),
            deps: env_or("MESHPLANE_BENCH_DEPS", 10),
        }
    }

    fn service_ns(s: usize) -> (String, String) {
        (
            format!("ns-{}", s / PER_NAMESPACE),
            format!("svc-{}", s % PER_NAMESPACE),
        )
    }

    fn host_of(s: usize) -> String {
        let (ns, name) = service_ns(s);
        format!("{name}.{ns}.svc.cluster.local")
    }

    fn ip_of(s: usize) -> String {
        format!("10.{}.{}.{}", 64 + s / 65_536, (s / 256) % 256, s % 256)
    }

    fn fence_key(s: usize) -> FenceKey {
        let (ns, name) = service_ns(s);
        FenceKey::new(ns, name)
    }

    /// Learned host `k` of fence `i`: one of the `POPULAR` services first (each popular host is
    /// learned by a tenth of the fences), then distinct other services.
    fn dependency(size: &Size, i: usize, k: usize) -> usize {
        if k == 0 {
            i % POPULAR
        } else {
            POPULAR + (i + k * 1013) % (size.services - POPULAR)
        }
    }

    fn virtual_service(s: usize, extra: &str) -> Value {
        let (ns, name) = service_ns(s);
        let mut routes = vec![
            json!({"destination": {"host": name}, "weight": 90}),
            json!({"destination": {"host": format!("{name}-v2")}, "weight": 10}),
        ];
        if !extra.is_empty() {
            routes.push(json!({"destination": {"host": extra}}));
        }
        json!({"apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"hosts": [name], "http": [{"route": routes}]}})
    }

    fn documents(size: &Size) -> Vec<Value> {
        let mut docs = vec![
            json!({"apiVersion": "config.netease.com/v1alpha1", "kind": "SlimeBoot",
            "metadata": {"name": "lazyload", "namespace": "mesh-operator"},
            "spec": {"module": [{"name": "lazyload", "kind": "lazyload", "enable": true,
                "general": {"wormholePort": ["9080"], "refreshWindow": "60s",
                    "domainAliases": [{
                        "pattern": "(?P<service>[^\\.]+)\\.(?P<namespace>[^\\.]+)\\.svc\\.cluster\\.local$",
                        "templates": ["$namespace.$service.mailsaas"]}]},
                "global": {"misc": {"metricSourceType": "accesslog"}}}]}}),
        ];
        for n in 0..size.services.div_ceil(PER_NAMESPACE) {
            docs.push(json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": format!("ns-{n}"), "labels": {"team": format!("team-{}", n % 7)}}}));
        }
        for s in 0..size.services {
            let (ns, name) = service_ns(s);
            docs.push(json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": name, "namespace": ns, "labels": {"app": name, "tier": "backend"}},
                "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 9080}]}}));
            docs.push(json!({"apiVersion": "v1", "kind": "Endpoints",
                "metadata": {"name": name, "namespace": ns},
                "subsets": [{"addresses": [{"ip": ip_of(s)}], "ports": [{"port": 9080}]}]}));
            if s % VS_EVERY == 0 {
                docs.push(virtual_service(s, ""));
            }
            docs.push(
                json!({"apiVersion": "microservice.slime.io/v1alpha1", "kind": "ServiceFence",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"enable": true, "workloadSelector": {"fromService": true}}}),
            );
        }
        docs
    }

    fn observe(fence: FenceKey, hosts: impl IntoIterator<Item = String>, at: i64) -> MeshCommand {
        MeshCommand::Fence(FenceCommand::Observe {
            fence,
            via: Via::AccessLog,
            sightings: hosts
                .into_iter()
                .map(|host| Sighting {
                    raw: host.clone(),
                    host,
                    seen_at_ms: at,
                    source: "bench".into(),
                })
                .collect(),
        })
    }

    /// Appends decisions' events to a log in transactions of about 1000 events.
    struct LogSink {
        store: Arc<dyn EventStore>,
        txn: Transaction,
        pending: usize,
        next_id: u128,
        t0: i64,
    }

    impl LogSink {
        fn push(&mut self, d: &Decision) {
            if d.events.is_empty() {
                return;
            }
            let events = d
                .events
                .iter()
                .map(|e| {
                    self.next_id += 1;
                    NewEvent::encode(e, uuid::Uuid::from_u128(self.next_id), self.t0).unwrap()
                })
                .collect::<Vec<_>>();
            self.pending += events.len();
            self.txn.appends.push(StreamAppend {
                stream: d.stream.clone(),
                expected: ExpectedVersion::Any,
                events,
            });
            if self.pending >= 1000 {
                self.flush();
            }
        }

        fn flush(&mut self) {
            if self.pending > 0 {
                self.store
                    .commit(std::mem::take(&mut self.txn))
                    .expect("commit");
                self.pending = 0;
            }
        }
    }

    /// Build the state through the deciders (as the daemon would, one command at a time).
    fn build(size: &Size, t0: i64, mut sink: Option<&mut LogSink>) -> (Mesh, f64, f64) {
        let mut mesh = Mesh::default();
        let mut ctx = Ctx::new(t0, 1);
        let started = Instant::now();
        for doc in documents(size) {
            let command = actors::mesh::document_command(&doc).expect("document");
            let d = mesh.execute(command, &mut ctx).expect("apply");
            if let Some(sink) = sink.as_deref_mut() {
                sink.push(&d);
            }
        }
        let cluster = started.elapsed().as_secs_f64();
        let started = Instant::now();
        for i in 0..size.services {
            let hosts = (0..size.deps).map(|k| host_of(dependency(size, i, k)));
            let d = mesh
                .execute(observe(fence_key(i), hosts, t0), &mut ctx)
                .expect("observe");
            if let Some(sink) = sink.as_deref_mut() {
                sink.push(&d);
            }
        }
        let learned = started.elapsed().as_secs_f64();
        if let Some(sink) = sink {
            sink.flush();
        }
        (mesh, cluster, learned)
    }

    fn sidecars(state: &actors::fence::FenceState) -> (usize, usize) {
        let mut n = 0;
        let mut hosts = 0;
        for key in state.fences.keys() {
            if let Some(s) = projections::fence::sidecar(state, key) {
                n += 1;
                hosts += s.spec.egress.iter().map(|e| e.hosts.len()).sum::<usize>();
            }
        }
        (n, hosts)
    }

    fn secs(started: Instant) -> f64 {
        started.elapsed().as_secs_f64()
    }

    /// Child process: the pure part.
    pub fn pure() {
        let size = size();
        rss_line("at start");
        let t0 = adapters::clock::now_ms();
        let (mut mesh, cluster_s, learned_s) = build(&size, t0, None);
        let learned: usize = mesh.fences.learned.values().map(BTreeMap::len).sum();
        println!(
            "  built through Mesh::execute: {} resources ({} services, {} fences, {} VirtualServices) in {cluster_s:.2} s; {learned} learned dependencies in {learned_s:.2} s (position {})",
            mesh.resources.resources.len(),
            mesh.fences.cluster.services.len(),
            mesh.fences.fences.len(),
            size.services.div_ceil(VS_EVERY),
            mesh.position
        );
        rss_line("after building (whole Mesh: resources with their bodies + fence state)");

        // Each step is timed, and the process's peak RSS taken over it (reset before it). The
        // steps the target is about come first, on the state itself, so that no earlier step's
        // freed-but-retained memory is in their figures: rebuild_all in place (what the fence
        // actor does when the configuration changes), then every Sidecar.
        let state_rss = rss_mib().0;
        let peaks = std::cell::RefCell::new(BTreeMap::<&str, f64>::new());
        let step = |what: &'static str, f: &mut dyn FnMut() -> String| {
            reset_peak();
            let started = Instant::now();
            let detail = f();
            let s = secs(started);
            let (_, peak) = rss_mib();
            peaks.borrow_mut().insert(what, peak);
            println!("  {what:<58} {s:>7.3} s  peak RSS {peak:>6.1} MiB  {detail}");
            s
        };
        let rebuild_s = step(REBUILD_STEP, &mut || {
            mesh.fences.rebuild_all();
            String::new()
        });
        let sidecars_s = step(SIDECARS_STEP, &mut || {
            let (n, hosts) = sidecars(&mesh.fences);
            format!("{n} Sidecars, {hosts} egress hosts")
        });
        let objects_s = step(OBJECTS_STEP, &mut || {
            let mut objects = BTreeMap::new();
            projections::fence::desired_objects(&mesh.fences, &mut objects);
            format!("{} objects", objects.len())
        });
        step(KUBE_STEP, &mut || {
            let desired = projections::desired_kube(&mesh);
            format!("{} objects", desired.kube.len())
        });
        // Baselines: cloning what rebuild_all produces (every fence's rendered view: the floor
        // of allocating and copying that much state), and cloning the whole FenceState.
        let clone_views_s = step(CLONE_VIEWS_STEP, &mut || {
            let copy = mesh.fences.fences.clone();
            format!("{} views", copy.len())
        });
        let clone_state_s = step(CLONE_STATE_STEP, &mut || {
            drop(mesh.fences.clone());
            String::new()
        });
        println!(
            "    rebuild_all = {:.1}x the clone of its output, {:.1}x the clone of the whole state",
            rebuild_s / clone_views_s,
            rebuild_s / clone_state_s
        );
        let full = rebuild_s + sidecars_s;
        println!(
            "target: recompute every Sidecar <= {RECOMPUTE_TARGET_S} s: rebuild_all + every Sidecar = {full:.3} s -> {} (rebuild_all + Sidecars + ServiceFence statuses: {:.3} s)",
            verdict(full <= RECOMPUTE_TARGET_S),
            rebuild_s + objects_s,
        );

        // Incremental: one new dependency (Observe → DependencyLearned → one fence re-rendered).
        let mut ctx = Ctx::new(t0 + 1000, 2);
        let mut ms = Vec::new();
        for j in 0..1000 {
            let i = (j * 7919) % size.services;
            let host = format!("new-{j}.{}.svc.cluster.local", service_ns(i).0);
            let command = observe(fence_key(i), [host], t0 + 1000);
            let started = Instant::now();
            let d = mesh.execute(command, &mut ctx).expect("observe");
            ms.push(secs(started) * 1e3);
            assert_eq!(d.events.len(), 1);
        }
        let one_dep = Latencies::new(ms);
        println!(
            "  one new dependency (decide + evolve, one fence re-rendered): {}",
            one_dep.line()
        );

        // Incremental: a VirtualService change on a popular host (learned by many fences).
        let mut ms = Vec::new();
        let mut touched = Vec::new();
        for round in 0..20 {
            let s = round % POPULAR;
            let host = host_of(s);
            let extra = format!("{}-canary-{round}", service_ns(s).1);
            let command = actors::mesh::document_command(&virtual_service(s, &extra)).unwrap();
            let started = Instant::now();
            mesh.execute(command, &mut ctx).expect("vs");
            ms.push(secs(started) * 1e3);
            let want = format!("{extra}.{}.svc.cluster.local", service_ns(s).0);
            let n = mesh
                .fences
                .fences
                .values()
                .filter(|v| {
                    v.domains
                        .get(&host)
                        .is_some_and(|d| d.hosts.contains(&want))
                })
                .count();
            touched.push(n);
        }
        let vs_popular = Latencies::new(ms);
        println!(
            "  one VirtualService change on a popular host ({}..{} fences re-rendered): {}",
            touched.iter().min().unwrap(),
            touched.iter().max().unwrap(),
            vs_popular.line()
        );
        let mut ms = Vec::new();
        for round in 0..100 {
            // A service with a VirtualService that is not one of the popular ones.
            let s = VS_EVERY * (1 + (round * 37) % (size.services / VS_EVERY - 1));
            let extra = format!("{}-canary", service_ns(s).1);
            let command = actors::mesh::document_command(&virtual_service(s, &extra)).unwrap();
            let started = Instant::now();
            mesh.execute(command, &mut ctx).expect("vs");
            ms.push(secs(started) * 1e3);
        }
        let vs_plain = Latencies::new(ms);
        println!(
            "  one VirtualService change on an ordinary host (~{} fences): {}",
            size.deps - 1,
            vs_plain.line()
        );
        let naive = rebuild_s + sidecars_s;
        println!(
            "  baseline: naive full recompute per event (rebuild_all + every Sidecar) {:.1} ms: a new dependency is {:.0}x cheaper incrementally, a popular VirtualService change {:.0}x",
            naive * 1e3,
            naive * 1e3 / one_dep.mean(),
            naive * 1e3 / vs_popular.mean()
        );
        // Cross-check: the incrementally maintained state (after all the changes above) equals
        // a rebuild from scratch.
        let mut copy = mesh.fences.clone();
        copy.rebuild_all();
        assert_eq!(
            copy, mesh.fences,
            "rebuild_all agrees with the incrementally maintained state"
        );
        drop(copy);
        rss_line("at the end");
        let mb = |mib: f64| mib * 1.048_576;
        let peaks = peaks.into_inner();
        let peak_of = |what: &str| peaks.get(what).copied().unwrap_or(f64::NAN);
        let sidecar_peak = peak_of(REBUILD_STEP).max(peak_of(SIDECARS_STEP));
        println!(
            "target: memory <= {MEMORY_TARGET_MB} MB (pure state): the state (process RSS after building) {:.0} MB -> {}; peak while recomputing every Sidecar {:.0} MB -> {}; peak of fence::desired_objects {:.0} MB, of a whole desired_kube {:.0} MB (after the earlier steps)",
            mb(state_rss),
            verdict(mb(state_rss) <= MEMORY_TARGET_MB),
            mb(sidecar_peak),
            verdict(mb(sidecar_peak) <= MEMORY_TARGET_MB),
            mb(peak_of(OBJECTS_STEP)),
            mb(peak_of(KUBE_STEP)),
        );
    }

    /// Child process: write the same state's events to a redb log.
    pub fn write_log() {
        let size = size();
        let dir = std::env::var(LOG_ENV).expect("log dir");
        let store = open_store(Path::new(&dir), StoreKind::Redb).expect("redb");
        // Learned now, as the host that reads this log will see it: its monitor ages
        // dependencies by the real clock.
        let t0 = adapters::clock::now_ms();
        let mut sink = LogSink {
            store: store.clone(),
            txn: Transaction::default(),
            pending: 0,
            next_id: 0,
            t0,
        };
        let started = Instant::now();
        let (mesh, _, _) = build(&size, t0, Some(&mut sink));
        assert_eq!(store.head(), mesh.position, "every event written");
        println!(
            "  wrote the same state's {} events to a redb log in {:.2} s",
            store.head(),
            secs(started)
        );
    }

    /// Child process: start a real host from that log (as the daemon does at start), read the
    /// projection sources and compute every desired object once, measure RSS, and time new
    /// dependencies through the ALS endpoint.
    pub fn host() {
        let size = size();
        let dir = std::env::var(LOG_ENV).expect("log dir");
        rss_line("at start");
        let store = open_store(Path::new(&dir), StoreKind::Redb).expect("redb");
        let system = actix_rt::System::new();
        system.block_on(async move {
            let started = Instant::now();
            let host = start_host(store.clone(), Arc::new(Metrics::default()), None).expect("host");
            println!(
                "  start_host (fold {} events from redb, attribution table): {:.2} s",
                store.head(),
                secs(started)
            );
            let (fence_io, intake, _intake_task) =
                adapters::concepts::fence::start_intake(&host.dispatcher);
            let _timers = adapters::host::timers::spawn_all(&host.dispatcher);
            let dispatcher = host.dispatcher.clone();
            actix_rt::spawn(adapters::concepts::fence::monitor::run_monitor(
                dispatcher.clone(),
                intake,
                FENCE_TICK,
            ));
            let head = store.head();
            tokio::time::sleep(Duration::from_millis(1500)).await;
            rss_line("of the running host (actors' state, redb cache, attribution table)");
            let steady = rss_mib().0;
            let before = reset_peak();
            let started = Instant::now();
            let scratch = tempfile::tempdir().expect("tempdir");
            let scratch_dir = Arc::new(Mutex::new(
                ManifestDir::open(scratch.path()).expect("manifest dir"),
            ));
            let pass = adapters::daemon::project_manifests(&dispatcher, &scratch_dir)
                .await
                .expect("projection pass");
            let read_s = secs(started);
            println!(
                "  one projection pass as the daemon runs it (project_manifests, a first pass: every file written): {read_s:.3} s, {} objects, {} written",
                pass.objects, pass.written
            );
            let started = Instant::now();
            let again = adapters::daemon::project_manifests(&dispatcher, &scratch_dir)
                .await
                .expect("projection pass");
            println!(
                "  a pass with nothing changed: {:.3} s, {} written",
                secs(started),
                again.written
            );
            let pass_peak = rss_mib().1;
            println!(
                "    peak RSS during the pass {:.1} MiB ({:.0} MB): +{:.0} MiB over the running host (memory freed after it is returned to the OS later)",
                rss_mib().1,
                rss_mib().1 * 1.048_576,
                rss_mib().1 - before
            );
            rss_line("after the projection pass");
            // Where a projection pass's read goes: the two clones, timed inside the actors.
            let (resources_clone, resources) = dispatcher
                .read::<actors::resource::Resources, _>(|s, _| {
                    let started = Instant::now();
                    let copy = s.clone();
                    (secs(started), copy)
                })
                .await
                .expect("read");
            let (fences_clone, fences) = dispatcher
                .read::<actors::fence::Fences, _>(|s, _| {
                    let started = Instant::now();
                    let copy = s.clone();
                    (secs(started), copy)
                })
                .await
                .expect("read");
            println!(
                "    of which the clones inside the actors (the actix thread is busy meanwhile): ResourceState {resources_clone:.3} s, FenceState {fences_clone:.3} s"
            );
            drop((resources, fences));

            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            actix_rt::spawn(als::serve(
                listener,
                fence_io.entries.clone(),
                fence_io.counters.clone(),
                std::future::pending(),
            ));
            let probes = 200;
            let services = size.services;
            let (done_tx, done_rx) = tokio::sync::oneshot::channel();
            let probing = dispatcher.clone();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let (lat, _) = runtime.block_on(daemon::probes(
                    &probing,
                    None,
                    addr,
                    "scale",
                    probes,
                    services,
                    |c| {
                        let (ns, name) = service_ns(c);
                        (ns, name, ip_of(c))
                    },
                ));
                let _ = done_tx.send(lat);
            });
            let lat = done_rx.await.unwrap();
            println!(
                "  new dependency through ALS -> desired Sidecar with {services} fences: {}",
                lat.line()
            );
            rss_line("after the probes");

            // The same with the daemon's manifest projector running, as in `meshplane run`:
            // every delivery starts a pass (read both states, desired_kube, sync the directory).
            let manifests_dir = Path::new(&dir).with_file_name("manifests");
            let manifests = ManifestDir::open(&manifests_dir).expect("manifests");
            let (projected_tx, mut projected) = watch::channel(0);
            let before = reset_peak();
            let started = Instant::now();
            actix_rt::spawn(daemon::project_forever(
                dispatcher.clone(),
                manifests,
                projected_tx,
            ));
            let position = dispatcher.delivered();
            projected
                .wait_for(|p| *p >= position)
                .await
                .expect("projector");
            let first_pass_peak = rss_mib().1;
            println!(
                "  manifest projector started: first pass (writes every object) {:.2} s, peak RSS {:.1} MiB (+{:.0})",
                secs(started),
                rss_mib().1,
                rss_mib().1 - before
            );
            let probes_with = 100;
            let (done_tx, done_rx) = tokio::sync::oneshot::channel();
            let probing = dispatcher.clone();
            let watching = projected.clone();
            let before = reset_peak();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let lat = runtime.block_on(daemon::probes(
                    &probing,
                    Some(&watching),
                    addr,
                    "projected",
                    probes_with,
                    services,
                    |c| {
                        let (ns, name) = service_ns(c);
                        (ns, name, ip_of(c))
                    },
                ));
                let _ = done_tx.send(lat);
            });
            let (lat, manifest) = done_rx.await.unwrap();
            println!(
                "  with the projector: new dependency -> desired Sidecar: {}",
                lat.line()
            );
            println!(
                "  with the projector: new dependency -> manifest directory: {}",
                manifest.line()
            );
            println!(
                "    peak RSS while probing with the projector {:.1} MiB ({:.0} MB), +{:.0} MiB",
                rss_mib().1,
                rss_mib().1 * 1.048_576,
                rss_mib().1 - before
            );
            let projector_peak = rss_mib().1.max(first_pass_peak);
            rss_line("at the end");
            println!(
                "  events appended while the host ran: {} (the {} probes; no ageing was due)",
                store.head() - head,
                probes + probes_with
            );
            let mb = |mib: f64| mib * 1.048_576;
            println!(
                "target: memory <= {MEMORY_TARGET_MB} MB (running daemon): steady RSS {:.0} MB -> {}; peak during one projection pass {:.0} MB -> {}; peak with the manifest projector running {:.0} MB -> {}",
                mb(steady),
                verdict(mb(steady) <= MEMORY_TARGET_MB),
                mb(pass_peak),
                verdict(mb(pass_peak) <= MEMORY_TARGET_MB),
                mb(projector_peak),
                verdict(mb(projector_peak) <= MEMORY_TARGET_MB),
            );
            drop(fence_io);
        });
    }

    /// Run the three children in order: pure measurements, log writing, host.
    pub fn run_children() {
        let size = size();
        println!(
            "\n3. {} services and fences, {} learned dependencies (each in its own process)",
            size.services,
            size.services * size.deps
        );
        let exe = std::env::current_exe().expect("own executable");
        std::fs::create_dir_all(env!("CARGO_TARGET_TMPDIR")).ok();
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
        for part in ["scale", "scale-log", "scale-host"] {
            let status = std::process::Command::new(&exe)
                .env(PART_ENV, part)
                .env(LOG_ENV, dir.path().join("data"))
                .status()
                .expect("child");
            assert!(status.success(), "part {part} failed");
        }
    }
}
