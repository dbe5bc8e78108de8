//! The full storage fault sweep (the CI test `events/tests/faults.rs` runs a sample): a log of
//! 1,000 events, one bit flipped at 16 offsets of every page (the page header's first bytes and
//! spots spread over the page), and the file cut at every page boundary and mid-page. Prints the
//! tally and every failure; exits non-zero on any panic, silent change, refused-but-changed file
//! or short salvage.
//!
//! `cargo bench -p events --features redb --bench fault_sweep [-- EVENTS OFFSETS]`

// A benchmark reads the wall clock to report how long the sweep took.
#![allow(clippy::disallowed_methods)]

use std::time::Instant;

use events::backend::redb::sweep::{self, PAGE};

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let events = args.first().copied().unwrap_or(1000);
    let offsets = args.get(1).copied().unwrap_or(16) as usize;
    let dir = tempfile::tempdir().expect("temp dir");
    let scratch = tempfile::tempdir().expect("temp dir");
    let (path, expected) = sweep::build_log(dir.path(), events).expect("build the log");
    let len = std::fs::metadata(&path).expect("log file").len() as usize;
    println!(
        "log: {events} events, {len} bytes, {} pages; {offsets} bit flips per page",
        len.div_ceil(PAGE)
    );
    let started = Instant::now();
    let flips = sweep::bit_flips(&path, &expected, &sweep::offsets(offsets), scratch.path());
    println!("bit flips: {flips} ({:.1?})", started.elapsed());
    let started = Instant::now();
    let lengths: Vec<usize> = (0..len / PAGE)
        .flat_map(|page| [page * PAGE, page * PAGE + PAGE / 2])
        .collect();
    let cuts = sweep::truncations(&path, &expected, &lengths, scratch.path());
    println!("truncations: {cuts} ({:.1?})", started.elapsed());
    for other in flips.refused_other.iter().chain(&cuts.refused_other) {
        println!("  refused with another error: {other}");
    }
    let failures: Vec<_> = flips.failures.iter().chain(&cuts.failures).collect();
    for (case, outcome) in &failures {
        println!("  FAILURE {case}: {outcome:?}");
    }
    if !failures.is_empty() {
        std::process::exit(1);
    }
}
