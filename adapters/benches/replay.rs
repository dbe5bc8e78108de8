//! Replay benchmark: fold a 1,000,000-event log into the actors, as the daemon does on start
//! and `meshplane replay` does on a recorded log.
//!
//! `cargo bench -p adapters --bench replay` (env `MESHPLANE_BENCH_EVENTS` to change the size).
//! Prints, in one run: the time to write the log (redb, batches of 1000), the full replay from
//! redb (read + frame check + decode + evolve), and the in-memory part alone (decode + evolve of
//! already-read envelopes), against the target of 1.5 s for 1M events.

#![allow(clippy::disallowed_methods)]

// The daemon and the CLI use mimalloc too: replay is allocation-bound.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::time::Instant;

mod common;
#[path = "common/machine.rs"]
mod machine;

use actors::Mesh;
use adapters::host::fold;
use common::configmap_event;
use events::backend::redb::RedbBackend;
use events::{EventStore, ExpectedVersion, Log, NewEvent, StreamAppend, Transaction};
use machine::cpu_model;

const TARGET_SECONDS: f64 = 1.5;

fn main() {
    let total: u64 = std::env::var("MESHPLANE_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let objects = 10_000.min(total.max(1));
    std::fs::create_dir_all("target").ok();
    let dir = tempfile::tempdir_in("target").expect("temp dir on the build disk");
    let path = dir.path().join("events.redb");
    println!(
        "replay benchmark: {total} events over {objects} objects, redb at {}",
        path.display()
    );
    println!(
        "machine: {} cores, {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        cpu_model()
    );

    let store = Log::open(RedbBackend::open(&path).unwrap()).unwrap();
    let started = Instant::now();
    let mut payload_bytes = 0usize;
    let mut i = 0;
    while i < total {
        let mut txn = Transaction::default();
        for _ in 0..1000.min(total - i) {
            let e = configmap_event(i, objects);
            let new = NewEvent::encode(
                &e,
                uuid::Uuid::from_u128(i as u128 + 1),
                1_700_000_000_000 + i as i64,
            )
            .unwrap();
            payload_bytes += new.payload.len();
            txn.appends.push(StreamAppend {
                stream: e.stream(),
                expected: ExpectedVersion::Any,
                events: vec![new],
            });
            i += 1;
        }
        store.commit(txn).unwrap();
    }
    let write = started.elapsed().as_secs_f64();
    println!(
        "write: {total} events (avg payload {} B) in {write:.2} s = {:.0} events/s",
        payload_bytes as u64 / total.max(1),
        total as f64 / write
    );
    drop(store);

    // Full replay from a freshly opened store, as at daemon start.
    let store = Log::open(RedbBackend::open(&path).unwrap()).unwrap();
    let started = Instant::now();
    let mesh = fold(&store, None).unwrap();
    let full = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let warm_mesh = fold(&store, None).unwrap();
    let warm = started.elapsed().as_secs_f64();
    assert_eq!(warm_mesh, mesh);
    assert_eq!(mesh.position, total);
    assert_eq!(mesh.resources.resources.len() as u64, objects);

    // The actors' share: decode + evolve of envelopes already in memory.
    let started = Instant::now();
    let mut next = 1;
    let mut n = 0;
    loop {
        let b = store.read_from(next, 4096).unwrap();
        let Some(l) = b.last() else { break };
        next = l.position + 1;
        n += b.len();
    }
    assert_eq!(n as u64, total);
    println!(
        "  batched reads of 4096 only:                       {:.3} s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let envelopes = store.read_from(1, total as usize).unwrap();
    let read_only = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut again = Mesh::default();
    for e in &envelopes {
        again.apply(e).unwrap();
    }
    let fold_only = started.elapsed().as_secs_f64();
    assert_eq!(again, mesh, "two replays of one log give one state");

    println!(
        "replay from redb (read + verify + decode + evolve): {full:.3} s = {:.0} events/s",
        total as f64 / full
    );
    println!(
        "  the same replay again (store caches warm):        {warm:.3} s = {:.0} events/s",
        total as f64 / warm
    );
    println!(
        "  reading + verifying all envelopes in one call:    {read_only:.3} s = {:.0} events/s",
        total as f64 / read_only
    );
    println!(
        "  of which decode + evolve in the actors:           {fold_only:.3} s = {:.0} events/s",
        total as f64 / fold_only
    );
    let scaled = full * 1_000_000.0 / total as f64;
    println!(
        "target: 1M events replayed in <= {TARGET_SECONDS} s; measured {scaled:.3} s per 1M -> {}",
        if scaled <= TARGET_SECONDS {
            "MET"
        } else {
            "MISSED"
        }
    );
}
