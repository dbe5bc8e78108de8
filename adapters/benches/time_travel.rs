//! Time-travel and rollback benchmarks (issue 6), each against a baseline measured in the same
//! run.
//!
//! `cargo bench -p adapters --bench time_travel`. Environment:
//! - `MESHPLANE_BENCH_EVENTS` (1000000): events in the log;
//! - `MESHPLANE_BENCH_SNAPSHOT_EVERY` (10000): a snapshot every this many events;
//! - `MESHPLANE_BENCH_POSITIONS` (20): random positions asked for;
//! - `MESHPLANE_BENCH_DIR` (`target`): where the data directory goes (DIR/events.redb and
//!   DIR/snapshots, the layout `meshplane replay --data DIR` reads; kept when
//!   `MESHPLANE_BENCH_KEEP=1`, so the binary can be timed on it too).
//!
//! 1. `replay --to POS`: the state at a random position from the newest snapshot at or before it
//!    plus the log after it (`adapters::host::state_at` with the snapshot directory, what
//!    `meshplane replay --data DIR --to POS` does), then its digest (`--digest`); baseline: the
//!    full fold from position 1 to POS without snapshots. Target ≤ 0.2 s per answer. The
//!    snapshot load (read + checksum + postcard decode) is timed on its own.
//! 2. Rollback of a state with 10,000 objects: the state at the target position plus
//!    `projections::rollback::rollback_plan(now, then)`; baseline: `desired(now)` once.
//!    Target ≤ 1 s.

#![allow(clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::time::Instant;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod common;

use actors::Mesh;
use adapters::host::state_at;
use adapters::snapshot;
use common::configmap_event;
use events::backend::redb::RedbBackend;
use events::schema::{ResourceApplied, ResourceDeleted, ResourceKey};
use events::{Event, EventStore, ExpectedVersion, Log, NewEvent, StreamAppend, Transaction};
use rand::{Rng, SeedableRng};

const REPLAY_TARGET: f64 = 0.2;
const ROLLBACK_TARGET: f64 = 1.0;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn commit(store: &Log<RedbBackend>, events: &[Event], first_id: u64) {
    let mut txn = Transaction::default();
    for (k, e) in events.iter().enumerate() {
        let id = first_id + k as u64;
        txn.appends.push(StreamAppend {
            stream: e.stream(),
            expected: ExpectedVersion::Any,
            events: vec![NewEvent::encode(
                e,
                uuid::Uuid::from_u128(id as u128),
                1_700_000_000_000 + id as i64,
            )
            .unwrap()],
        });
    }
    store.commit(txn).unwrap();
}

fn stats(mut times: Vec<f64>) -> (f64, f64, f64) {
    times.sort_by(f64::total_cmp);
    (times[0], times[times.len() / 2], times[times.len() - 1])
}

fn main() {
    let total = env("MESHPLANE_BENCH_EVENTS", 1_000_000);
    let every = env("MESHPLANE_BENCH_SNAPSHOT_EVERY", 10_000).max(1);
    let asked = env("MESHPLANE_BENCH_POSITIONS", 20).max(1);
    let base = std::env::var("MESHPLANE_BENCH_DIR").unwrap_or_else(|_| "target".into());
    std::fs::create_dir_all(&base).ok();
    let dir = tempfile::tempdir_in(&base).expect("a temporary directory");
    let data = dir.path();
    println!(
        "time-travel benchmark: {total} events over 10000 ConfigMaps, a snapshot every {every} \
         (all kept), data directory {}",
        data.display()
    );
    println!(
        "machine: {} cores, load average {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );

    // Write the log, folding as we go and writing a snapshot every `every` events (keep all).
    let snapshots = snapshot::dir(data);
    let store = Log::open(RedbBackend::open(&data.join("events.redb")).unwrap()).unwrap();
    let started = Instant::now();
    let mut mesh = Mesh::default();
    let mut snapshot_time = 0.0;
    let mut i = 0;
    while i < total {
        let n = 1000.min(total - i).min(every - i % every);
        let batch: Vec<Event> = (i..i + n).map(|k| configmap_event(k, 10_000)).collect();
        commit(&store, &batch, i + 1);
        for envelope in store.read_from(i + 1, n as usize).unwrap() {
            mesh.apply(&envelope).unwrap();
        }
        i += n;
        if i % every == 0 {
            let t = Instant::now();
            snapshot::write(&snapshots, &mesh, uuid::Uuid::from_u128(i as u128), 0).unwrap();
            snapshot_time += t.elapsed().as_secs_f64();
        }
    }
    let kept = snapshot::positions(&snapshots).len();
    let snapshot_bytes: u64 = std::fs::read_dir(&snapshots)
        .unwrap()
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    println!(
        "write: {total} events + {kept} snapshots ({:.1} MB each) in {:.1} s, of which snapshots \
         {snapshot_time:.1} s",
        snapshot_bytes as f64 / kept.max(1) as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    drop(store);
    let store = Log::open(RedbBackend::open(&data.join("events.redb")).unwrap()).unwrap();

    // 1. replay --to POS at random positions.
    let mut rng = rand::rngs::SmallRng::seed_from_u64(6);
    let positions: Vec<u64> = (0..asked).map(|_| rng.random_range(1..=total)).collect();
    let (mut with, mut with_digest, mut loads, mut full) = (vec![], vec![], vec![], vec![]);
    for &p in &positions {
        let t = Instant::now();
        let loaded = snapshot::load_at_or_before(&snapshots, &store, p);
        loads.push(t.elapsed().as_secs_f64());
        drop(loaded);

        let t = Instant::now();
        let fast = state_at(&store, Some(&snapshots), p).unwrap();
        let state = t.elapsed().as_secs_f64();
        let digest = projections::mesh_digest(&fast);
        with.push(state);
        with_digest.push(t.elapsed().as_secs_f64());

        let t = Instant::now();
        let slow = state_at(&store, None, p).unwrap();
        full.push(t.elapsed().as_secs_f64());
        assert_eq!(fast, slow, "snapshot + tail = full fold at {p}");
        assert_eq!(digest, projections::mesh_digest(&slow));
        println!(
            "  --to {p:>7}: from the snapshot at {:>7}: state {:.3} s, + digest {:.3} s; full \
             fold {:.3} s",
            p / every * every,
            state,
            with_digest.last().unwrap(),
            full.last().unwrap()
        );
    }
    let report = |name: &str, times: Vec<f64>| {
        let (min, med, max) = stats(times);
        println!("{name:<52} min {min:.3} s  median {med:.3} s  max {max:.3} s");
        max
    };
    println!("replay --to over {asked} random positions:");
    report(
        "  snapshot load alone (read + crc + postcard decode)",
        loads,
    );
    report("  state from the snapshot + tail", with);
    let worst = report(
        "  state + digest (what `replay --to --digest` does)",
        with_digest,
    );
    report("  baseline: full fold to the position, no snapshots", full);
    println!(
        "target: replay --to answers in <= {REPLAY_TARGET} s; worst {worst:.3} s -> {}",
        if worst <= REPLAY_TARGET {
            "MET"
        } else {
            "MISSED"
        }
    );
    drop(store);
    if std::env::var("MESHPLANE_BENCH_KEEP").is_ok_and(|v| v == "1") {
        println!("kept the data directory {}", dir.keep().display());
    }

    // 2. Rollback of a state with 10,000 objects.
    rollback(&base);
}

/// 7,500 ConfigMaps and 2,500 Services, then 10,000 changes (updates, deletes, new objects);
/// roll back to the position where all 10,000 first existed.
fn rollback(base: &str) {
    let dir = tempfile::tempdir_in(base).unwrap();
    let store = Log::open(RedbBackend::open(&dir.path().join("events.redb")).unwrap()).unwrap();
    let object = |n: u64, generation: u64| -> Event {
        let (kind, body) = if n % 4 == 3 {
            (
                "Service",
                format!(
                    r#"{{"spec":{{"selector":{{"app":"app-{n}"}},"ports":[{{"port":{},"targetPort":8080}}]}}}}"#,
                    80 + generation
                ),
            )
        } else {
            (
                "ConfigMap",
                format!(
                    r#"{{"data":{{"generation":"{generation}","payload":"{}"}}}}"#,
                    "y".repeat(60)
                ),
            )
        };
        Event::ResourceApplied(ResourceApplied {
            key: ResourceKey::new(kind, format!("team-{}", n % 50), format!("object-{n}")),
            api_version: "v1".into(),
            labels: BTreeMap::from([("app".into(), format!("app-{}", n % 300))]),
            annotations: BTreeMap::new(),
            body,
        })
    };
    let created: Vec<Event> = (0..10_000).map(|n| object(n, 0)).collect();
    let mut id = 1;
    for chunk in created.chunks(1000) {
        commit(&store, chunk, id);
        id += chunk.len() as u64;
    }
    let target = store.head();
    // Then: 5,000 updates, 2,500 deletes, 2,500 new objects.
    let mut changes: Vec<Event> = (0..5_000).map(|n| object(n * 2, 1)).collect();
    changes.extend((0..2_500).map(|n| {
        let n = n * 4 + 1;
        let kind = if n % 4 == 3 { "Service" } else { "ConfigMap" };
        Event::ResourceDeleted(ResourceDeleted {
            key: ResourceKey::new(kind, format!("team-{}", n % 50), format!("object-{n}")),
        })
    }));
    changes.extend((10_000..12_500).map(|n| object(n, 0)));
    for chunk in changes.chunks(1000) {
        commit(&store, chunk, id);
        id += chunk.len() as u64;
    }
    let now = state_at(&store, None, store.head()).unwrap();
    println!(
        "rollback: {} objects at the target position {target}, {} now at {}",
        10_000,
        now.resources.resources.len(),
        now.position
    );
    let mut baseline = vec![];
    let mut planned = vec![];
    let mut changes = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let d = projections::desired(&now);
        baseline.push(t.elapsed().as_secs_f64());
        assert_eq!(d.kube.len(), now.resources.resources.len());

        let t = Instant::now();
        let then = state_at(&store, None, target).unwrap();
        let plan = projections::rollback::rollback_plan(&now, &then);
        planned.push(t.elapsed().as_secs_f64());
        changes = plan.len();
    }
    let (bmin, bmed, bmax) = stats(baseline);
    let (min, med, max) = stats(planned);
    println!("  rollback plan ({changes} changes): state at the target + rollback_plan, 5 runs: min {min:.3} s  median {med:.3} s  max {max:.3} s");
    println!("  baseline: desired(now) once, 5 runs:                      min {bmin:.3} s  median {bmed:.3} s  max {bmax:.3} s");
    println!(
        "target: rollback plan of a 10,000-object state in <= {ROLLBACK_TARGET} s; worst {max:.3} s -> {}",
        if max <= ROLLBACK_TARGET { "MET" } else { "MISSED" }
    );
}
