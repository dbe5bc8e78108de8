//! The storage fault model, tested on real files (see ARCHITECTURE.md, "Storage faults"): bit
//! flips in every page, truncations, a full disk, failing fsyncs, a torn commit after a crash.
//! Each outcome must be "unaffected", "repaired" (a never-acknowledged torn commit rolled back)
//! or "refused with a report, nothing changed": never a panic, never a silent change. The full
//! sweep is `cargo bench -p events --features redb --bench fault_sweep`.
#![cfg(feature = "redb")]
// The heal deadline (5 s) is measured on the wall clock.
#![allow(clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use events::backend::redb::sweep::{self, PAGE};

use events::backend::redb::{Access, Faults, RedbBackend};
use events::{EventStore, ExpectedVersion, Log, NewEvent, StoreError, SyncLog};
use uuid::Uuid;

fn event(n: u64) -> NewEvent {
    NewEvent {
        event_id: Uuid::from_u128(0xfa17_0000 + u128::from(n)),
        recorded_at_ms: n as i64,
        event_type: "resource.applied".into(),
        schema_version: 1,
        payload: vec![n as u8; 50],
    }
}

#[test]
fn a_bit_flip_in_any_page_is_refused_or_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let (path, expected) = sweep::build_log(dir.path(), 200).unwrap();
    let tally = sweep::bit_flips(&path, &expected, &sweep::offsets(3), scratch.path());
    println!("{tally}");
    for other in &tally.refused_other {
        println!("  refused with another error: {other}");
    }
    assert!(tally.failures.is_empty(), "{tally}: {:#?}", tally.failures);
    assert!(tally.refused > 0, "some flips must hit live pages: {tally}");
    assert!(
        tally.unaffected > 0,
        "some flips must hit free space: {tally}"
    );
}

#[test]
fn a_truncated_file_is_refused_or_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let (path, expected) = sweep::build_log(dir.path(), 200).unwrap();
    let len = std::fs::metadata(&path).unwrap().len() as usize;
    let lengths: Vec<usize> = (0..len / PAGE)
        .flat_map(|page| [page * PAGE, page * PAGE + PAGE / 2])
        .collect();
    let tally = sweep::truncations(&path, &expected, &lengths, scratch.path());
    println!("{tally}");
    assert!(tally.failures.is_empty(), "{tally}: {:#?}", tally.failures);
}

/// Until the medium works again every append fails with "full" and the log says it cannot
/// write; then it reopens by itself (no restart, no append needed), and every acknowledged
/// event is there.
#[test]
fn a_full_disk_is_recovered_from_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.redb");
    let faults = Faults::new();
    let log =
        Log::open(RedbBackend::open_with(&path, Access::Faulty(faults.clone())).unwrap()).unwrap();
    let mut acknowledged = Vec::new();
    for n in 1..=20 {
        log.append("d", ExpectedVersion::Any, vec![event(n)])
            .unwrap();
        acknowledged.push(n);
    }
    faults.disk_full();
    for n in 21..=25 {
        match log.append("d", ExpectedVersion::Any, vec![event(n)]) {
            Err(StoreError::Full(reason)) => assert!(reason.contains("No space left"), "{reason}"),
            other => panic!("append {n} on a full disk: {other:?}"),
        }
    }
    assert!(matches!(log.health(), Err(StoreError::Full(_))));
    assert!(faults.failed() > 0);
    faults.clear();
    let freed = Instant::now();
    while log.health().is_err() {
        assert!(
            freed.elapsed() < Duration::from_secs(5),
            "not healed within 5 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let healed_in = freed.elapsed();
    for n in 21..=25 {
        log.append("d", ExpectedVersion::Any, vec![event(n)])
            .unwrap();
        acknowledged.push(n);
    }
    println!("healed {healed_in:?} after the disk was freed");
    let ids: Vec<Uuid> = log
        .read_from(1, usize::MAX)
        .unwrap()
        .iter()
        .map(|e| e.event_id)
        .collect();
    for n in &acknowledged {
        assert!(
            ids.contains(&event(*n).event_id),
            "acknowledged event {n} lost"
        );
    }
    drop(log);
    let reopened = SyncLog::open(RedbBackend::open(&path).unwrap()).unwrap();
    assert!(reopened.recovery().is_clean(), "{}", reopened.recovery());
    assert_eq!(reopened.head(), ids.len() as u64);
}

/// A failing fsync: the append is not acknowledged, the log heals once the device works, and
/// a retry with the same event ids is recognised whether or not the failed commit landed.
#[test]
fn a_failed_fsync_is_never_acknowledged_and_a_retry_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.redb");
    let faults = Faults::new();
    let log =
        Log::open(RedbBackend::open_with(&path, Access::Faulty(faults.clone())).unwrap()).unwrap();
    log.append("f", ExpectedVersion::NoStream, vec![event(1)])
        .unwrap();
    faults.sync_fails();
    match log.append("f", ExpectedVersion::Exact(1), vec![event(2)]) {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("append with a failing fsync: {other:?}"),
    }
    assert!(matches!(log.health(), Err(StoreError::Unavailable(_))));
    faults.clear();
    let retried = Instant::now();
    let again = loop {
        match log.append("f", ExpectedVersion::Any, vec![event(2)]) {
            Ok(again) => break again,
            Err(e) if retried.elapsed() < Duration::from_secs(5) => {
                assert!(e.is_medium_failure(), "{e}");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("not healed within 5 s: {e}"),
        }
    };
    assert_eq!(again.first_position, 2);
    let stored = log.read_from(1, 10).unwrap();
    assert_eq!(stored.len(), 2, "event 2 is stored once");
}

/// After a crash, a newest commit that fails its checksums is rolled back when it was never
/// acknowledged, and refused when it was.
#[test]
fn a_damaged_last_commit_is_rolled_back_only_if_never_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.redb");
    let acked = dir.path().join("events.redb.acked");
    {
        let log = Log::open(RedbBackend::open(&path).unwrap()).unwrap();
        for n in 1..=10 {
            log.append("t", ExpectedVersion::Any, vec![event(n)])
                .unwrap();
        }
    }
    let before = std::fs::read(&path).unwrap();
    let acked_before = std::fs::read(&acked).unwrap();
    // The file as a crash right after the 11th commit leaves it (the log still open: its last
    // commit is redb's one-phase commit, which a failed checksum rolls back).
    let after = {
        let log = Log::open(RedbBackend::open(&path).unwrap()).unwrap();
        log.append("t", ExpectedVersion::Any, vec![event(11)])
            .unwrap();
        std::fs::read(&path).unwrap()
    };
    // Damage the page of the last commit that holds its record (a leaf page only that commit
    // wrote: the record is new).
    let record = events::frame::encode(
        &SyncLog::open(RedbBackend::open(&path).unwrap())
            .unwrap()
            .read_from(11, 1)
            .unwrap()[0],
    )
    .unwrap();
    let at = after
        .windows(record.len())
        .position(|w| w == record.as_slice())
        .expect("the record is in the file");
    assert_ne!(before.get(at..at + record.len()), Some(record.as_slice()));
    let mut damaged = after.clone();
    damaged[at + record.len() / 2] ^= 0x04;
    let scratch = tempfile::tempdir().unwrap();
    let copy = scratch.path().join("events.redb");
    let copy_acked = scratch.path().join("events.redb.acked");

    // Acknowledged (the record says 11): refused, file untouched.
    std::fs::write(&copy, &damaged).unwrap();
    std::fs::copy(&acked, &copy_acked).unwrap();
    match SyncLog::open(RedbBackend::open(&copy).unwrap()) {
        Err(StoreError::Damaged(damage)) => {
            assert_eq!(damage.first_bad, 11, "{damage}");
            assert!(damage.reason.contains("acknowledged"), "{damage}");
        }
        Err(other) => panic!("expected a damage report, got {other}"),
        Ok(log) => panic!("opened with head {}", log.head()),
    }
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        damaged,
        "a refusal changes nothing"
    );

    // Never acknowledged (the record still says 10, as after a crash before the ack): rolled
    // back and reported.
    std::fs::write(&copy, &damaged).unwrap();
    std::fs::write(&copy_acked, &acked_before).unwrap();
    let log = SyncLog::open(RedbBackend::open(&copy).unwrap()).unwrap();
    assert_eq!(log.head(), 10);
    let recovery = log.recovery();
    assert!(!recovery.is_clean());
    assert!(
        recovery.notes[0].contains("rolled back to position 10"),
        "{recovery}"
    );
}

/// An inspection never writes: not on a clean log, not on one left by a crash (which redb
/// would repair on open), not when asked to append.
#[test]
fn an_inspection_never_changes_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.redb");
    let log = Log::open(RedbBackend::open(&path).unwrap()).unwrap();
    for n in 1..=5 {
        log.append("i", ExpectedVersion::Any, vec![event(n)])
            .unwrap();
    }
    // A copy taken while the daemon runs is a log left by a crash.
    let scratch = tempfile::tempdir().unwrap();
    let crashed = scratch.path().join("events.redb");
    std::fs::copy(&path, &crashed).unwrap();
    drop(log);
    for file in [&path, &crashed] {
        let before = std::fs::read(file).unwrap();
        let inspected = SyncLog::open(RedbBackend::inspect(file).unwrap()).unwrap();
        assert_eq!(inspected.read_from(1, 10).unwrap().len(), 5);
        assert!(inspected
            .append("i", ExpectedVersion::Any, vec![event(6)])
            .is_err());
        drop(inspected);
        assert_eq!(std::fs::read(file).unwrap(), before, "{}", file.display());
    }
}

/// An inspection of a log a daemon has open is refused, naming the cause.
#[test]
fn an_inspection_of_a_log_in_use_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.redb");
    let _log = Log::open(RedbBackend::open(&path).unwrap()).unwrap();
    match SyncLog::open(RedbBackend::inspect(&path).unwrap()) {
        Err(StoreError::Storage(msg)) => assert!(msg.contains("another process"), "{msg}"),
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("opened a log in use"),
    }
}
