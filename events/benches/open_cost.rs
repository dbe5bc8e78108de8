//! What the checked open costs: a log of N events (default 500,000, ~120 MB of records) opened
//! through `Log::open` (redb's integrity check of every page on an inspection, the frame check
//! of every record, then the write open), against a baseline measured in the same run: redb's
//! plain open of the same file plus reading its last chunk (what an open cost before the checks).
//!
//! `cargo bench -p events --features redb --bench open_cost [-- EVENTS]`

// A benchmark reads the wall clock.
#![allow(clippy::disallowed_methods)]

use std::time::Instant;

use events::backend::redb::RedbBackend;
use events::{EventStore, ExpectedVersion, Log, NewEvent};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use uuid::Uuid;

const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");

fn main() {
    let n: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(500_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("events.redb");
    {
        let log = Log::open(RedbBackend::open(&path).expect("open")).expect("log");
        let mut next = 0u64;
        while next < n {
            let batch: Vec<NewEvent> = (next..(next + 1000).min(n))
                .map(|i| NewEvent {
                    event_id: Uuid::from_u128(0x0c05_7000_0000 + u128::from(i)),
                    recorded_at_ms: i as i64,
                    event_type: "resource.applied".into(),
                    schema_version: 1,
                    payload: vec![(i % 251) as u8; 200],
                })
                .collect();
            next += batch.len() as u64;
            log.append(&format!("s/{}", next % 100), ExpectedVersion::Any, batch)
                .expect("append");
        }
    }
    let bytes = std::fs::metadata(&path).expect("file").len();
    println!("log: {n} events, {:.0} MB file", bytes as f64 / 1e6);
    for round in 1..=3 {
        let started = Instant::now();
        {
            let db = redb::Builder::new()
                .set_cache_size(64 << 20)
                .create(&path)
                .expect("plain open");
            let txn = db.begin_read().expect("read");
            let table = txn.open_table(EVENTS).expect("events");
            let _ = table.last().expect("last chunk");
        }
        let baseline = started.elapsed();
        let started = Instant::now();
        let head = {
            let log = Log::open(RedbBackend::open(&path).expect("open")).expect("checked open");
            log.head()
        };
        let checked = started.elapsed();
        assert_eq!(head, n);
        println!(
            "round {round}: plain open (baseline) {:.3} s, checked open {:.3} s ({:.1} µs per event)",
            baseline.as_secs_f64(),
            checked.as_secs_f64(),
            checked.as_secs_f64() * 1e6 / n as f64
        );
    }
}
