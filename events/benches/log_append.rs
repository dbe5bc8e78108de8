//! Durable append throughput of the event log backends against the physical ceiling.
//!
//! `cargo bench -p events --all-features --bench log_append`
//!
//! 1. Batched: `MESHPLANE_BENCH_EVENTS` events (default 1,000,000) with ~200-byte payloads, in
//!    durable batches of 1000, to (a) a plain append-only file of frames with one `sync_data`
//!    per batch (the ceiling), (b) `Log<RedbBackend>`, (c) `Log<SledBackend>`; each batch is one
//!    `Transaction` committed with `commit`.
//! 2. Concurrent: 64 threads each committing single-event transactions (own stream,
//!    `ExpectedVersion::Any`), `MESHPLANE_BENCH_PER_THREAD` each (default 1000), through the
//!    group-commit writer; total acknowledged (durable) events per second.
//!
//! The plain file and redb run `MESHPLANE_BENCH_REPEAT` times (default 3), alternately, and
//! the best run of each counts (the machine is shared with other builds); sled runs once.
//! `MESHPLANE_BENCH_IDS=v7` uses time-ordered ids instead of random v4 ones, and
//! `MESHPLANE_BENCH_ONLY=file,redb,sled,redb64,sled64` runs a subset (for profiling).
//!
//! Files go under cargo's target tmp dir, on the same disk as the workspace (not a tmpfs).
// Measuring wall time is the point of a benchmark; the workspace bans the clock for the pure
// crates' determinism, which does not apply here.
#![allow(clippy::disallowed_methods)]

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use events::backend::redb::RedbBackend;
use events::backend::sled::SledBackend;
use events::backend::{Backend, PreparedRecord};
use events::store::Recovery;
use events::{
    frame, Envelope, EventStore, ExpectedVersion, Log, NewEvent, StoreError, StreamAppend,
    Transaction,
};
use uuid::Uuid;

const BATCH: usize = 1000;
const STREAMS_PER_BATCH: usize = 10;
const STREAM_POOL: usize = 10_000;
const PAYLOAD: usize = 200;
const THREADS: usize = 64;

fn env_count(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a count")),
        Err(_) => default,
    }
}

/// `MESHPLANE_BENCH_IDS=v7`: time-ordered ids instead of random v4 ones.
fn time_ordered_ids() -> bool {
    std::env::var("MESHPLANE_BENCH_IDS").is_ok_and(|v| v == "v7")
}

/// splitmix64: deterministic pseudo-random ids shaped like v4 uuids, so the id index sees the
/// random insertion order real v4 ids give it.
struct Ids(u64, u64);

impl Ids {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn next(&mut self) -> Uuid {
        let bytes = (u128::from(self.next_u64()) << 64 | u128::from(self.next_u64())).to_be_bytes();
        if time_ordered_ids() {
            // v7 layout: a rising 48-bit "millisecond" prefix, then random bits.
            self.1 += 1;
            let mut tail = [0u8; 10];
            tail.copy_from_slice(&bytes[6..]);
            return uuid::Builder::from_unix_timestamp_millis(1_700_000_000_000 + self.1, &tail)
                .into_uuid();
        }
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }
}

fn payload(n: u64) -> Vec<u8> {
    (0..PAYLOAD)
        .map(|i| (n as usize).wrapping_mul(31).wrapping_add(i) as u8)
        .collect()
}

fn new_event(ids: &mut Ids, n: u64) -> NewEvent {
    NewEvent {
        event_id: ids.next(),
        recorded_at_ms: 1_700_000_000_000 + n as i64,
        event_type: "resource.applied".into(),
        schema_version: 1,
        payload: payload(n),
    }
}

fn stream_name(k: usize) -> String {
    format!("resource/ConfigMap/bench/stream-{k:05}")
}

/// Batch `b`: `STREAMS_PER_BATCH` streams from the pool, `BATCH / STREAMS_PER_BATCH` events each.
fn batch_txn(ids: &mut Ids, b: usize) -> Transaction {
    let per_stream = BATCH / STREAMS_PER_BATCH;
    let appends = (0..STREAMS_PER_BATCH)
        .map(|j| StreamAppend {
            stream: stream_name((b * STREAMS_PER_BATCH + j) % STREAM_POOL),
            expected: ExpectedVersion::Any,
            events: (0..per_stream)
                .map(|i| new_event(ids, (b * BATCH + j * per_stream + i) as u64))
                .collect(),
        })
        .collect();
    Transaction { appends }
}

fn dir_size(path: &Path) -> u64 {
    let meta = std::fs::metadata(path)
        .map(|m| (m.is_dir(), m.len()))
        .unwrap_or((false, 0));
    if !meta.0 {
        return meta.1;
    }
    std::fs::read_dir(path)
        .map(|entries| entries.flatten().map(|e| dir_size(&e.path())).sum())
        .unwrap_or(0)
}

fn rate(events: usize, elapsed: Duration) -> f64 {
    events as f64 / elapsed.as_secs_f64()
}

/// (a) The ceiling: frames appended to one file, one `sync_data` per batch. Builds the same
/// envelopes and frames the log does, with positions and stream versions, but no indexes.
fn plain_file(dir: &Path, total: usize) -> (Duration, u64) {
    let path = dir.join("plain.log");
    let mut file = File::create(&path).unwrap();
    let mut ids = Ids(1, 0);
    let mut versions = vec![0u64; STREAM_POOL];
    let mut position = 0;
    let mut buf = Vec::with_capacity(BATCH * 400);
    let start = Instant::now();
    for b in 0..total / BATCH {
        buf.clear();
        for (j, append) in batch_txn(&mut ids, b).appends.into_iter().enumerate() {
            let k = (b * STREAMS_PER_BATCH + j) % STREAM_POOL;
            for event in append.events {
                position += 1;
                versions[k] += 1;
                let envelope = Envelope {
                    position,
                    stream: append.stream.clone(),
                    stream_version: versions[k],
                    event_id: event.event_id,
                    recorded_at_ms: event.recorded_at_ms,
                    event_type: event.event_type,
                    schema_version: event.schema_version,
                    payload: event.payload,
                };
                buf.extend_from_slice(&frame::encode(&envelope).unwrap());
            }
        }
        file.write_all(&buf).unwrap();
        file.sync_data().unwrap();
    }
    let elapsed = start.elapsed();
    drop(file);
    (elapsed, dir_size(&path))
}

/// Counts the durable commits a backend makes, to show how many transactions share one.
struct Counting<B> {
    inner: B,
    commits: Arc<AtomicU64>,
}

impl<B: Backend> Backend for Counting<B> {
    type Reader = B::Reader;

    fn recover(&mut self) -> Result<Recovery, StoreError> {
        self.inner.recover()
    }

    fn reader(&self) -> B::Reader {
        self.inner.reader()
    }

    fn commit(&mut self, records: &[PreparedRecord]) -> Result<(), StoreError> {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.inner.commit(records)
    }
}

struct Batched {
    elapsed: Duration,
    bytes: u64,
    scan: Duration,
}

fn batched<B: Backend>(open: impl Fn() -> B, path: &Path, total: usize) -> Batched {
    let mut ids = Ids(1, 0);
    let log = Log::open(open()).unwrap();
    let start = Instant::now();
    for b in 0..total / BATCH {
        let txn = batch_txn(&mut ids, b);
        let r = log.commit(txn).unwrap();
        assert_eq!(r.last_position, ((b + 1) * BATCH) as u64);
    }
    let elapsed = start.elapsed();
    let scan_start = Instant::now();
    let mut next = 1;
    loop {
        let batch = log.read_from(next, 4096).unwrap();
        let Some(last) = batch.last() else { break };
        next = last.position + 1;
    }
    let scan = scan_start.elapsed();
    assert_eq!(
        next - 1,
        (total / BATCH * BATCH) as u64,
        "full scan reads every event"
    );
    drop(log);
    Batched {
        elapsed,
        bytes: dir_size(path),
        scan,
    }
}

struct Concurrent {
    elapsed: Duration,
    commits: u64,
}

fn concurrent<B: Backend>(open: impl Fn() -> B, per_thread: usize) -> Concurrent {
    let commits = Arc::new(AtomicU64::new(0));
    let log = Arc::new(
        Log::open(Counting {
            inner: open(),
            commits: commits.clone(),
        })
        .unwrap(),
    );
    let barrier = Arc::new(Barrier::new(THREADS + 1));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (log, barrier) = (log.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut ids = Ids(1_000_000 + t as u64, (t as u64) << 40);
                let stream = format!("resource/ConfigMap/concurrent/appender-{t:02}");
                barrier.wait();
                for i in 0..per_thread {
                    let event = new_event(&mut ids, (t * per_thread + i) as u64);
                    log.append(&stream, ExpectedVersion::Any, vec![event])
                        .unwrap();
                }
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for t in threads {
        t.join().unwrap();
    }
    let elapsed = start.elapsed();
    assert_eq!(log.head(), (THREADS * per_thread) as u64);
    Concurrent {
        elapsed,
        commits: commits.load(Ordering::Relaxed),
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn main() {
    // `cargo bench` passes `--bench`; a plain `cargo test --benches` run passes nothing and
    // should not spend minutes here.
    if !std::env::args().any(|a| a == "--bench") {
        println!("log_append: run with `cargo bench -p events --all-features --bench log_append`");
        return;
    }
    let total = env_count("MESHPLANE_BENCH_EVENTS", 1_000_000) / BATCH * BATCH;
    let per_thread = env_count("MESHPLANE_BENCH_PER_THREAD", 1000);
    let repeat = env_count("MESHPLANE_BENCH_REPEAT", 3).max(1);
    assert!(
        total >= BATCH,
        "MESHPLANE_BENCH_EVENTS must be at least {BATCH}"
    );
    // A comma-separated subset of `file,redb,sled,redb64,sled64`, for profiling one part.
    let only = std::env::var("MESHPLANE_BENCH_ONLY").unwrap_or_default();
    let run = |part: &str| only.is_empty() || only.split(',').any(|p| p == part);

    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("machine: {cpus} cpus, {}", cpu_model());
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(root).unwrap();
    let dir = tempfile::tempdir_in(root).unwrap();
    println!("files under {}", dir.path().display());
    println!(
        "\nbatched: {total} events, {PAYLOAD}-byte payloads, durable batches of {BATCH} \
         ({STREAMS_PER_BATCH} streams x {} events), {} ids",
        BATCH / STREAMS_PER_BATCH,
        if time_ordered_ids() {
            "time-ordered v7"
        } else {
            "random v4"
        }
    );
    let mb = |bytes: u64| bytes as f64 / 1e6;

    // The machine is shared (other builds run beside this one), so the plain file and redb run
    // alternately, `repeat` times each, and the best run of each counts. sled is much slower,
    // so it runs once.
    let mut best_plain: Option<(Duration, u64)> = None;
    let mut best_redb: Option<Batched> = None;
    for round in 1..=repeat {
        if run("file") {
            let round_dir = tempfile::tempdir_in(dir.path()).unwrap();
            let (elapsed, bytes) = plain_file(round_dir.path(), total);
            println!(
                "  round {round}  plain file + sync_data  {:>10.0} events/s  {:>6.2} s  {:>7.1} MB",
                rate(total, elapsed),
                elapsed.as_secs_f64(),
                mb(bytes)
            );
            if best_plain.is_none_or(|(b, _)| elapsed < b) {
                best_plain = Some((elapsed, bytes));
            }
        }
        if run("redb") {
            let path = tempfile::tempdir_in(dir.path())
                .unwrap()
                .keep()
                .join("batched.redb");
            let b = batched(|| RedbBackend::open(&path).unwrap(), &path, total);
            println!(
                "  round {round}  redb Log::commit        {:>10.0} events/s  {:>6.2} s  {:>7.1} MB  full scan {:.2} s",
                rate(total, b.elapsed),
                b.elapsed.as_secs_f64(),
                mb(b.bytes),
                b.scan.as_secs_f64()
            );
            std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
            if best_redb.as_ref().is_none_or(|r| b.elapsed < r.elapsed) {
                best_redb = Some(b);
            }
        }
    }
    let ceiling = best_plain.map(|(elapsed, _)| rate(total, elapsed));
    let share = |r: f64| {
        ceiling.map_or(String::new(), |c| {
            format!("{:>5.1}% of the plain file", 100.0 * r / c)
        })
    };
    println!("  best of {repeat}:");
    if let Some((elapsed, bytes)) = best_plain {
        println!(
            "    plain file + sync_data  {:>10.0} events/s  {:>6.2} s  {:>7.1} MB  (ceiling)",
            rate(total, elapsed),
            elapsed.as_secs_f64(),
            mb(bytes)
        );
    }
    let redb_rate = best_redb.as_ref().map(|b| rate(total, b.elapsed));
    if let (Some(b), Some(r)) = (&best_redb, redb_rate) {
        println!(
            "    redb  Log::commit       {:>10.0} events/s  {:>6.2} s  {:>7.1} MB  {}  full scan {:.2} s",
            r,
            b.elapsed.as_secs_f64(),
            mb(b.bytes),
            share(r),
            b.scan.as_secs_f64()
        );
    }
    if run("sled") {
        let path = dir.path().join("batched.sled");
        let b = batched(|| SledBackend::open(&path).unwrap(), &path, total);
        let r = rate(total, b.elapsed);
        println!(
            "    sled  Log::commit       {:>10.0} events/s  {:>6.2} s  {:>7.1} MB  {}  full scan {:.2} s  (one run)",
            r,
            b.elapsed.as_secs_f64(),
            mb(b.bytes),
            share(r),
            b.scan.as_secs_f64()
        );
        std::fs::remove_dir_all(&path).unwrap();
    }

    let concurrent_total = THREADS * per_thread;
    println!(
        "\nconcurrent: {THREADS} threads x {per_thread} single-event transactions (own stream, \
         ExpectedVersion::Any), group commit"
    );
    let report_concurrent = |name: &str, c: &Concurrent| {
        let r = rate(concurrent_total, c.elapsed);
        println!(
            "  {name:<12} {:>10.0} acked durable events/s  {:>6.2} s  {} commits, {:.1} events per commit",
            r,
            c.elapsed.as_secs_f64(),
            c.commits,
            concurrent_total as f64 / c.commits.max(1) as f64
        );
        r
    };
    let mut redb_concurrent: Option<f64> = None;
    if run("redb64") {
        for round in 1..=repeat {
            let path = dir.path().join(format!("concurrent-{round}.redb"));
            let c = concurrent(|| RedbBackend::open(&path).unwrap(), per_thread);
            let r = report_concurrent(&format!("redb round {round}"), &c);
            redb_concurrent = Some(redb_concurrent.map_or(r, |best| best.max(r)));
        }
    }
    if run("sled64") {
        let path = dir.path().join("concurrent.sled");
        let c = concurrent(|| SledBackend::open(&path).unwrap(), per_thread);
        report_concurrent("sled", &c);
    }

    let verdict = |ok: Option<bool>| match ok {
        Some(true) => "met",
        Some(false) => "MISSED",
        None => "not run",
    };
    let batched_ok = redb_rate.zip(ceiling).map(|(r, c)| r >= 0.25 * c);
    let concurrent_ok = redb_concurrent.map(|r| r >= 20_000.0);
    println!(
        "\ntargets (best runs): redb batched >= 25% of the plain file: {}; redb 64 concurrent \
         appenders >= 20,000/s: {}",
        verdict(batched_ok),
        verdict(concurrent_ok)
    );
}
