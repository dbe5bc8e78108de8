//! The conformance suite every backend passes: one set of behaviours, checked through the log
//! ([`Log`], the group-commit writer, and [`SyncLog`]) exactly as the daemon uses it.
//!
//! A backend's tests implement [`Harness`] (how to open the backend over the same storage again,
//! and how to put garbage at the end of it) and run every case, either with
//! [`conformance_tests!`](crate::conformance_tests), which makes one `#[test]` per case, or with
//! [`run_all`]. Each case panics with a message on the first violation.
//!
//! Ids and times are deterministic (no clock, no randomness), so a failure reproduces.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use uuid::Uuid;

use crate::backend::memory::{MemoryBackend, MemoryDisk};
use crate::backend::Backend;
use crate::envelope::{
    AppendResult, Envelope, ExpectedVersion, NewEvent, StreamAppend, Transaction,
};
use crate::error::StoreError;
use crate::frame;
use crate::jsonl;
use crate::log::{Log, SyncLog};
use crate::schema::Event;
use crate::store::EventStore;

/// How the suite reaches one backend's storage.
pub trait Harness {
    type B: Backend;

    /// Open a backend over this harness's storage. Every call opens the same storage, as a
    /// restarted daemon reopens its files; the suite has dropped the previous log first.
    fn open(&self) -> Self::B;

    /// With no log open, store `bytes` as one raw record right after the last stored one: a
    /// torn write, or garbage that landed at the end of the log.
    fn write_garbage(&self, bytes: &[u8]);

    /// Whether damage at the end of this backend's log can be a torn write, which recovery cuts.
    /// A backend whose commits are atomic (redb) can never hold a torn record: damage there is
    /// the medium's or a bug's, and the open refuses it with a report instead.
    fn cuts_damaged_tail(&self) -> bool {
        true
    }
}

/// The in-memory backend over a [`MemoryDisk`] that outlives each backend opened on it.
#[derive(Default)]
pub struct MemoryHarness {
    pub disk: MemoryDisk,
}

impl Harness for MemoryHarness {
    type B = MemoryBackend;

    fn open(&self) -> MemoryBackend {
        MemoryBackend::open(self.disk.clone())
    }

    fn write_garbage(&self, bytes: &[u8]) {
        self.disk.write_garbage(bytes);
    }
}

/// Run every case, each on a fresh harness from `new`.
pub fn run_all<H: Harness>(new: impl Fn() -> H) {
    append_and_read(&new());
    read_stream(&new());
    expected_version(&new());
    invalid_appends(&new());
    transaction_atomicity(&new());
    batch_overlay(&new());
    idempotent_retry(&new());
    duplicate_id_in_one_transaction(&new());
    reopen(&new());
    corrupt_tail(&new());
    subscription(&new());
    subscription_never_passes_durable_head(&new());
    concurrent_appenders(&new());
    concurrent_exact_one_stream(&new());
    jsonl_round_trip(&new(), &new());
}

/// One `#[test]` per conformance case. `$new` is an expression callable with no arguments that
/// returns a fresh [`Harness`] (a function path or a closure).
#[macro_export]
macro_rules! conformance_tests {
    (@cases $new:expr; $($case:ident),+) => {
        $(
            #[test]
            fn $case() {
                $crate::conformance::$case(&($new)());
            }
        )+
    };
    ($new:expr) => {
        $crate::conformance_tests!(@cases $new;
            append_and_read, read_stream, expected_version, invalid_appends,
            transaction_atomicity, batch_overlay, idempotent_retry,
            duplicate_id_in_one_transaction, reopen, corrupt_tail, subscription,
            subscription_never_passes_durable_head, concurrent_appenders,
            concurrent_exact_one_stream);
        #[test]
        fn jsonl_round_trip() {
            $crate::conformance::jsonl_round_trip(&($new)(), &($new)());
        }
    };
}

/// Deterministic, unique event ids: a fixed high half, a counter in the low half.
#[derive(Default)]
struct Ids(AtomicU64);

impl Ids {
    fn next(&self) -> Uuid {
        Uuid::from_u64_pair(
            0x6d65_7368_706c_616e,
            self.0.fetch_add(1, Ordering::Relaxed) + 1,
        )
    }
}

/// A well-formed event: the schema's samples in turn, with a distinct id and time.
fn event(id: Uuid, n: u64) -> NewEvent {
    let samples = Event::samples();
    let sample = &samples[n as usize % samples.len()];
    NewEvent::encode(sample, id, 1_700_000_000_000 + n as i64).expect("samples encode")
}

fn events(ids: &Ids, count: usize) -> Vec<NewEvent> {
    (0..count)
        .map(|_| {
            let id = ids.next();
            event(id, id.as_u64_pair().1)
        })
        .collect()
}

fn open_log<H: Harness>(h: &H) -> Log<H::B> {
    Log::open(h.open()).expect("open Log")
}

fn open_sync<H: Harness>(h: &H) -> SyncLog<H::B> {
    SyncLog::open(h.open()).expect("open SyncLog")
}

fn all(store: &dyn EventStore) -> Vec<Envelope> {
    store.read_from(1, usize::MAX).expect("read the whole log")
}

/// The stored envelope for `event` appended at `position` as version `version` of `stream`.
fn stored(event: &NewEvent, position: u64, stream: &str, version: u64) -> Envelope {
    Envelope {
        position,
        stream: stream.to_string(),
        stream_version: version,
        event_id: event.event_id,
        recorded_at_ms: event.recorded_at_ms,
        event_type: event.event_type.clone(),
        schema_version: event.schema_version,
        payload: event.payload.clone(),
    }
}

fn assert_wrong_version(result: Result<AppendResult, StoreError>, stream: &str, actual: u64) {
    match result {
        Err(StoreError::WrongExpectedVersion {
            stream: s,
            actual: a,
            ..
        }) => {
            assert_eq!(
                (s.as_str(), a),
                (stream, actual),
                "wrong-version error names the stream and its version"
            )
        }
        other => panic!("expected WrongExpectedVersion for `{stream}` at {actual}, got {other:?}"),
    }
}

fn assert_idempotency_conflict(result: Result<AppendResult, StoreError>, what: &str) {
    match result {
        Err(StoreError::IdempotencyConflict { .. }) => {}
        other => panic!("{what}: expected IdempotencyConflict, got {other:?}"),
    }
}

fn assert_invalid(result: Result<AppendResult, StoreError>, what: &str) {
    match result {
        Err(StoreError::InvalidAppend(_)) => {}
        other => panic!("{what}: expected InvalidAppend, got {other:?}"),
    }
}

/// Appends get dense 1-based positions in commit order, and reads return exactly what was
/// appended. Checked through [`Log`], then through [`SyncLog`] over the same storage.
pub fn append_and_read<H: Harness>(h: &H) {
    let ids = Ids::default();
    let mut expected = Vec::new();
    {
        let log = open_log(h);
        assert_eq!(log.head(), 0, "a new log is empty");
        assert!(log.read_from(1, 10).unwrap().is_empty());
        assert_eq!(log.stream_version("a").unwrap(), 0);
        append_and_check(&log, &ids, &mut expected);
    }
    let log = open_sync(h);
    assert_eq!(all(&log), expected, "reopened through SyncLog");
    append_and_check(&log, &ids, &mut expected);
}

fn append_and_check(store: &dyn EventStore, ids: &Ids, expected: &mut Vec<Envelope>) {
    let base = store.head();
    assert_eq!(base, expected.len() as u64);
    let a_base = store.stream_version("a").unwrap();
    let b_base = store.stream_version("b").unwrap();
    let plan: [(&str, usize); 3] = [("a", 3), ("b", 2), ("a", 1)];
    let mut position = base;
    let mut versions = [a_base, b_base];
    for (stream, count) in plan {
        let batch = events(ids, count);
        let result = store
            .append(stream, ExpectedVersion::Any, batch.clone())
            .unwrap();
        let slot = usize::from(stream == "b");
        assert_eq!(
            result.first_position,
            position + 1,
            "positions continue densely"
        );
        assert_eq!(result.last_position, position + count as u64);
        assert_eq!(result.stream_versions, vec![versions[slot] + count as u64]);
        assert!(!result.duplicate);
        assert!(
            store.head() >= result.last_position,
            "acknowledged means readable"
        );
        for e in &batch {
            position += 1;
            versions[slot] += 1;
            expected.push(stored(e, position, stream, versions[slot]));
        }
    }
    assert_eq!(store.head(), position);
    assert_eq!(
        all(store),
        *expected,
        "read_from(1) returns every event in position order"
    );
    let middle = store.read_from(base + 3, 2).unwrap();
    assert_eq!(
        middle,
        expected[base as usize + 2..base as usize + 4].to_vec(),
        "read_from(from, max)"
    );
    assert_eq!(
        store.read_from(0, 1).unwrap(),
        expected[..1].to_vec(),
        "position 0 reads from the start"
    );
    assert!(
        store.read_from(position + 1, 10).unwrap().is_empty(),
        "nothing past the head"
    );
    assert!(
        store.read_from(base + 1, 0).unwrap().is_empty(),
        "max 0 reads nothing"
    );
    assert_eq!(store.stream_version("a").unwrap(), versions[0]);
    assert_eq!(store.stream_version("b").unwrap(), versions[1]);
}

/// Streams read back in version order, from any version, bounded by `max`.
pub fn read_stream<H: Harness>(h: &H) {
    let ids = Ids::default();
    let log = open_log(h);
    let mut by_stream: std::collections::BTreeMap<&str, Vec<Envelope>> = Default::default();
    for round in 0..4 {
        for stream in ["s/one", "s/two", "s/three"] {
            let count = 1 + (round % 2);
            let batch = events(&ids, count);
            let r = log
                .append(stream, ExpectedVersion::Any, batch.clone())
                .unwrap();
            let list = by_stream.entry(stream).or_default();
            for (i, e) in batch.iter().enumerate() {
                let version = list.len() as u64 + 1;
                list.push(stored(e, r.first_position + i as u64, stream, version));
            }
        }
    }
    for (stream, list) in &by_stream {
        assert_eq!(
            log.read_stream(stream, 1, usize::MAX).unwrap(),
            *list,
            "whole stream `{stream}`"
        );
        assert_eq!(
            log.read_stream(stream, 0, usize::MAX).unwrap(),
            *list,
            "version 0 reads from the start"
        );
        assert_eq!(
            log.read_stream(stream, 2, 3).unwrap(),
            list[1..4].to_vec(),
            "from version 2, max 3"
        );
        let len = list.len() as u64;
        assert_eq!(
            log.read_stream(stream, len, 10).unwrap(),
            list[list.len() - 1..].to_vec()
        );
        assert!(log.read_stream(stream, len + 1, 10).unwrap().is_empty());
        assert_eq!(log.stream_version(stream).unwrap(), len);
    }
    assert!(log.read_stream("s/none", 1, 10).unwrap().is_empty());
    // A stream whose name is a prefix of another's must not see the other's events.
    log.append("s/on", ExpectedVersion::NoStream, events(&ids, 1))
        .unwrap();
    assert_eq!(log.read_stream("s/on", 1, 10).unwrap().len(), 1);
    assert_eq!(
        log.read_stream("s/one", 1, usize::MAX).unwrap(),
        by_stream["s/one"]
    );
}

/// `Any`, `NoStream` and `Exact(n)`; a rejected append stores nothing, not even its ids.
pub fn expected_version<H: Harness>(h: &H) {
    let ids = Ids::default();
    let log = open_log(h);
    let first = log
        .append("x", ExpectedVersion::NoStream, events(&ids, 2))
        .unwrap();
    assert_eq!(first.stream_versions, vec![2]);
    assert_wrong_version(
        log.append("x", ExpectedVersion::NoStream, events(&ids, 1)),
        "x",
        2,
    );
    assert_wrong_version(
        log.append("x", ExpectedVersion::Exact(1), events(&ids, 1)),
        "x",
        2,
    );
    assert_wrong_version(
        log.append("x", ExpectedVersion::Exact(3), events(&ids, 1)),
        "x",
        2,
    );
    assert_wrong_version(
        log.append("new", ExpectedVersion::Exact(1), events(&ids, 1)),
        "new",
        0,
    );
    assert_eq!(log.head(), 2, "rejected appends store nothing");
    assert_eq!(log.stream_version("x").unwrap(), 2);
    assert_eq!(
        log.stream_version("new").unwrap(),
        0,
        "a rejected append does not create its stream"
    );

    let rejected = events(&ids, 1);
    assert_wrong_version(
        log.append("x", ExpectedVersion::Exact(7), rejected.clone()),
        "x",
        2,
    );
    // The rejected id was not stored: appending it now is a new event, not a retry.
    let r = log
        .append("x", ExpectedVersion::Exact(2), rejected)
        .unwrap();
    assert_eq!(
        (r.first_position, r.stream_versions.clone(), r.duplicate),
        (3, vec![3], false)
    );
    let r = log
        .append("x", ExpectedVersion::Any, events(&ids, 1))
        .unwrap();
    assert_eq!(r.stream_versions, vec![4]);
    let r = log
        .append("y", ExpectedVersion::Exact(0), events(&ids, 1))
        .unwrap();
    assert_eq!(
        r.stream_versions,
        vec![1],
        "Exact(0) on a missing stream is NoStream"
    );
    assert_eq!(log.head(), 5);
    assert_eq!(all(&log).len(), 5);
}

/// Malformed requests are refused before anything is stored.
pub fn invalid_appends<H: Harness>(h: &H) {
    let ids = Ids::default();
    let log = open_log(h);
    assert_invalid(
        log.commit(Transaction::default()),
        "a transaction without appends",
    );
    assert_invalid(
        log.append("s", ExpectedVersion::Any, Vec::new()),
        "an append without events",
    );
    assert_invalid(
        log.append("", ExpectedVersion::Any, events(&ids, 1)),
        "an empty stream name",
    );
    let mut mixed = Transaction::single("s", ExpectedVersion::Any, events(&ids, 1));
    mixed.appends.push(StreamAppend {
        stream: "t".into(),
        expected: ExpectedVersion::Any,
        events: Vec::new(),
    });
    assert_invalid(log.commit(mixed), "one stream append without events");
    assert_eq!(log.head(), 0);
    assert!(all(&log).is_empty());
}

/// A transaction over several streams is stored entirely or not at all.
pub fn transaction_atomicity<H: Harness>(h: &H) {
    let ids = Ids::default();
    let log = open_log(h);
    log.append("y", ExpectedVersion::Any, events(&ids, 2))
        .unwrap();

    let doomed_events = events(&ids, 2);
    let doomed = Transaction {
        appends: vec![
            StreamAppend {
                stream: "x".into(),
                expected: ExpectedVersion::Any,
                events: doomed_events[..1].to_vec(),
            },
            StreamAppend {
                stream: "y".into(),
                expected: ExpectedVersion::Exact(5),
                events: doomed_events[1..].to_vec(),
            },
        ],
    };
    assert_wrong_version(log.commit(doomed), "y", 2);
    assert_eq!(log.head(), 2, "nothing of a failed transaction is stored");
    assert_eq!(log.stream_version("x").unwrap(), 0);
    assert!(log.read_stream("x", 1, 10).unwrap().is_empty());

    // Several appends, including two to the same stream: the second sees the first.
    let (a, b, c) = (events(&ids, 2), events(&ids, 1), events(&ids, 3));
    let txn = Transaction {
        appends: vec![
            StreamAppend {
                stream: "x".into(),
                expected: ExpectedVersion::NoStream,
                events: a.clone(),
            },
            StreamAppend {
                stream: "y".into(),
                expected: ExpectedVersion::Exact(2),
                events: b.clone(),
            },
            StreamAppend {
                stream: "x".into(),
                expected: ExpectedVersion::Exact(2),
                events: c.clone(),
            },
        ],
    };
    let r = log.commit(txn).unwrap();
    assert_eq!((r.first_position, r.last_position), (3, 8));
    assert_eq!(r.stream_versions, vec![2, 3, 5]);
    let mut expected = vec![
        stored(&a[0], 3, "x", 1),
        stored(&a[1], 4, "x", 2),
        stored(&b[0], 5, "y", 3),
    ];
    for (i, e) in c.iter().enumerate() {
        expected.push(stored(e, 6 + i as u64, "x", 3 + i as u64));
    }
    assert_eq!(log.read_from(3, 100).unwrap(), expected);
    assert_eq!(log.stream_version("x").unwrap(), 5);
    assert_eq!(log.stream_version("y").unwrap(), 3);

    // The same stream twice in one transaction, the second expectation wrong: nothing stored.
    let txn = Transaction {
        appends: vec![
            StreamAppend {
                stream: "z".into(),
                expected: ExpectedVersion::NoStream,
                events: events(&ids, 1),
            },
            StreamAppend {
                stream: "z".into(),
                expected: ExpectedVersion::NoStream,
                events: events(&ids, 1),
            },
        ],
    };
    assert_wrong_version(log.commit(txn), "z", 1);
    assert_eq!(log.head(), 8);
    assert_eq!(log.stream_version("z").unwrap(), 0);
}

/// Several transactions committed as one batch (what the group-commit writer does): each is
/// judged on its own against the stored log plus the transactions accepted before it.
pub fn batch_overlay<H: Harness>(h: &H) {
    let ids = Ids::default();
    let log = open_sync(h);
    let first = events(&ids, 2);
    let results = log.commit_batch(vec![
        Transaction::single("p", ExpectedVersion::NoStream, first.clone()),
        Transaction::single("p", ExpectedVersion::NoStream, events(&ids, 1)),
        Transaction::single("p", ExpectedVersion::Exact(2), events(&ids, 1)),
        Transaction::single("p", ExpectedVersion::NoStream, first.clone()),
        Transaction::single("q", ExpectedVersion::Any, vec![first[0].clone()]),
    ]);
    let mut results = results.into_iter();
    let r = results.next().unwrap().unwrap();
    assert_eq!(
        (r.first_position, r.last_position, r.duplicate),
        (1, 2, false)
    );
    assert_wrong_version(results.next().unwrap(), "p", 2);
    let r = results.next().unwrap().unwrap();
    assert_eq!(
        (r.first_position, r.stream_versions.clone()),
        (3, vec![3]),
        "sees the batch's own appends"
    );
    let r = results.next().unwrap().unwrap();
    assert_eq!(
        (r.first_position, r.last_position, r.duplicate),
        (1, 2, true),
        "a retry inside the same batch is acknowledged with the original positions"
    );
    assert_idempotency_conflict(
        results.next().unwrap(),
        "an id of this batch reused in another stream",
    );
    assert_eq!(log.head(), 3);
    assert_eq!(all(&log).len(), 3);
    drop(log);
    let log = open_log(h);
    assert_eq!(log.head(), 3);
    assert_eq!(log.stream_version("p").unwrap(), 3);
    assert_eq!(log.stream_version("q").unwrap(), 0);
}

/// Retrying a stored transaction is acknowledged with its original positions and stores
/// nothing; a retry that mixes stored and new ids, or moves an id to another stream, fails.
pub fn idempotent_retry<H: Harness>(h: &H) {
    let ids = Ids::default();
    let log = open_log(h);
    log.append("before", ExpectedVersion::Any, events(&ids, 1))
        .unwrap();
    let txn = Transaction {
        appends: vec![
            StreamAppend {
                stream: "s".into(),
                expected: ExpectedVersion::NoStream,
                events: events(&ids, 2),
            },
            StreamAppend {
                stream: "t".into(),
                expected: ExpectedVersion::NoStream,
                events: events(&ids, 1),
            },
        ],
    };
    let original = log.commit(txn.clone()).unwrap();
    assert_eq!((original.first_position, original.last_position), (2, 4));
    log.append("s", ExpectedVersion::Any, events(&ids, 1))
        .unwrap();
    let contents = all(&log);

    // The expectations no longer hold (s is at 3), but the ids say it is a retry.
    let retry = log.commit(txn.clone()).unwrap();
    assert!(retry.duplicate, "a retry is marked duplicate");
    assert_eq!(
        (
            retry.first_position,
            retry.last_position,
            retry.stream_versions.clone()
        ),
        (
            original.first_position,
            original.last_position,
            original.stream_versions.clone()
        ),
        "a retry is acknowledged with the original positions and versions"
    );
    assert_eq!(all(&log), contents, "a retry stores nothing");

    let mut partial = txn.clone();
    partial.appends[1].events = events(&ids, 1);
    assert_idempotency_conflict(log.commit(partial), "a retry with some new ids");
    let mut reordered = txn.clone();
    reordered.appends.swap(0, 1);
    assert_idempotency_conflict(log.commit(reordered), "a retry in another order");
    let moved = Transaction::single(
        "elsewhere",
        ExpectedVersion::Any,
        vec![txn.appends[1].events[0].clone()],
    );
    assert_idempotency_conflict(log.commit(moved), "an id reused in another stream");
    assert_eq!(all(&log), contents, "failed retries store nothing");
    assert_eq!(log.stream_version("elsewhere").unwrap(), 0);
}

/// The same id twice in one transaction is a malformed request.
pub fn duplicate_id_in_one_transaction<H: Harness>(h: &H) {
    let ids = Ids::default();
    let log = open_log(h);
    let e = events(&ids, 1).remove(0);
    assert_invalid(
        log.append("s", ExpectedVersion::Any, vec![e.clone(), e.clone()]),
        "one id twice in one stream append",
    );
    let txn = Transaction {
        appends: vec![
            StreamAppend {
                stream: "s".into(),
                expected: ExpectedVersion::Any,
                events: vec![e.clone()],
            },
            StreamAppend {
                stream: "t".into(),
                expected: ExpectedVersion::Any,
                events: vec![e.clone()],
            },
        ],
    };
    assert_invalid(log.commit(txn), "one id in two stream appends");
    assert_eq!(log.head(), 0);
    let r = log.append("s", ExpectedVersion::NoStream, vec![e]).unwrap();
    assert_eq!(
        (r.first_position, r.duplicate),
        (1, false),
        "the id was never stored"
    );
}

/// Everything survives a reopen: events, stream versions, the id index; appends continue.
pub fn reopen<H: Harness>(h: &H) {
    let ids = Ids::default();
    let first = Transaction::single("r/a", ExpectedVersion::NoStream, events(&ids, 3));
    let (before, first_result) = {
        let log = open_log(h);
        let r = log.commit(first.clone()).unwrap();
        log.append("r/b", ExpectedVersion::NoStream, events(&ids, 2))
            .unwrap();
        log.append("r/a", ExpectedVersion::Exact(3), events(&ids, 1))
            .unwrap();
        (all(&log), r)
    };
    assert_eq!(before.len(), 6);
    {
        let log = open_log(h);
        let recovery = log.recovery();
        assert!(
            recovery.is_clean(),
            "a cleanly closed log needs no cut: {recovery}"
        );
        assert_eq!(recovery.head, 6);
        assert_eq!(log.head(), 6);
        assert_eq!(all(&log), before);
        assert_eq!(log.stream_version("r/a").unwrap(), 4);
        assert_eq!(log.stream_version("r/b").unwrap(), 2);
        assert_eq!(log.read_stream("r/a", 1, 10).unwrap().len(), 4);
        let retry = log.commit(first.clone()).unwrap();
        assert!(retry.duplicate, "the id index survives a reopen");
        assert_eq!(
            (retry.first_position, retry.last_position),
            (first_result.first_position, first_result.last_position)
        );
        assert_wrong_version(
            log.append("r/a", ExpectedVersion::Exact(3), events(&ids, 1)),
            "r/a",
            4,
        );
        let r = log
            .append("r/a", ExpectedVersion::Exact(4), events(&ids, 1))
            .unwrap();
        assert_eq!((r.first_position, r.stream_versions.clone()), (7, vec![5]));
    }
    let log = open_sync(h);
    assert_eq!(log.head(), 7);
    assert_eq!(all(&log)[..6], before[..]);
    assert_eq!(log.stream_version("r/a").unwrap(), 5);
    let r = log
        .append("r/c", ExpectedVersion::NoStream, events(&ids, 1))
        .unwrap();
    assert_eq!(r.first_position, 8);
}

/// A backend that never tears a write refuses a damaged record at the end: the open fails with
/// a report naming the position and what is intact, and changes nothing (it fails again).
fn refuses_damaged_tail<H: Harness>(h: &H, next_frame: impl Fn(u64) -> Vec<u8>) {
    let good = all(&open_sync(h));
    let head = good.len() as u64;
    let mut damaged = next_frame(head + 1);
    let last = damaged.len() - 1;
    damaged[last] ^= 0x10;
    h.write_garbage(&damaged);
    for attempt in 0..2 {
        match SyncLog::open(h.open()) {
            Err(StoreError::Damaged(damage)) => {
                assert_eq!(damage.first_bad, head + 1, "attempt {attempt}: {damage}");
                let report = damage.to_string();
                assert!(report.contains("checksum mismatch"), "{report}");
                assert!(
                    report.contains(&format!("Positions 1 to {head} are intact")),
                    "{report}"
                );
            }
            Err(other) => panic!("attempt {attempt}: expected a damage report, got {other}"),
            Ok(log) => panic!(
                "attempt {attempt}: a damaged log was opened, head {}",
                log.head()
            ),
        }
    }
}

/// A torn or corrupt record at the end is cut on open and reported; the good events stay
/// readable, and appends continue after them and survive another reopen.
pub fn corrupt_tail<H: Harness>(h: &H) {
    let ids = Ids::default();
    {
        let log = open_log(h);
        for i in 0..5 {
            log.append(
                &format!("c/{}", i % 2),
                ExpectedVersion::Any,
                events(&ids, 2),
            )
            .unwrap();
        }
    }
    // What could land after the last good record: each kind, then two at once.
    let next_frame = |position: u64| {
        let e = event(
            Uuid::from_u128(u128::from(position) << 64 | 0xbad),
            position,
        );
        frame::encode(&stored(&e, position, "c/0", 99)).expect("frame encodes")
    };
    if !h.cuts_damaged_tail() {
        return refuses_damaged_tail(h, next_frame);
    }
    type Damage = Box<dyn Fn(u64) -> Vec<Vec<u8>>>;
    let kinds: Vec<(&str, Damage)> = vec![
        (
            "bytes that are no frame",
            Box::new(|_| vec![b"\x13\x00\x00\x00garbage".to_vec()]),
        ),
        (
            "a torn frame (first half written)",
            Box::new(move |p| {
                let f = next_frame(p);
                vec![f[..f.len() / 2].to_vec()]
            }),
        ),
        (
            "a frame with a flipped bit",
            Box::new(move |p| {
                let mut f = next_frame(p);
                let last = f.len() - 1;
                f[last] ^= 0x10;
                vec![f]
            }),
        ),
        (
            "a frame claiming another position",
            Box::new(move |p| vec![next_frame(p + 1)]),
        ),
        (
            "a torn frame followed by garbage",
            Box::new(move |p| {
                let f = next_frame(p);
                vec![f[..f.len() - 3].to_vec(), vec![0xff; 40]]
            }),
        ),
    ];
    for (round, (kind, damage)) in kinds.iter().enumerate() {
        let (good, versions) = {
            let log = open_sync(h);
            (
                all(&log),
                (
                    log.stream_version("c/0").unwrap(),
                    log.stream_version("c/1").unwrap(),
                ),
            )
        };
        let head = good.len() as u64;
        let garbage = damage(head + 1);
        for bytes in &garbage {
            h.write_garbage(bytes);
        }
        let log = open_log(h);
        let recovery = log.recovery();
        assert_eq!(
            recovery.cut_records,
            garbage.len() as u64,
            "{kind}: cut every damaged record ({recovery})"
        );
        assert_eq!(
            recovery.cut_bytes,
            garbage.iter().map(|g| g.len() as u64).sum::<u64>(),
            "{kind}: cut bytes"
        );
        assert_eq!(
            recovery.head, head,
            "{kind}: recovery keeps every good record"
        );
        let reason = recovery.reason.clone().unwrap_or_default();
        assert!(!reason.is_empty(), "{kind}: recovery gives a reason");
        if kind.starts_with("a torn frame") {
            assert!(
                reason.contains("cut short"),
                "{kind}: the reason is the first cut record's: {reason}"
            );
        }
        assert_eq!(log.head(), head, "{kind}");
        assert_eq!(
            all(&log),
            good,
            "{kind}: the good events read back unchanged"
        );
        assert_eq!(
            (
                log.stream_version("c/0").unwrap(),
                log.stream_version("c/1").unwrap()
            ),
            versions,
            "{kind}: stream versions unchanged"
        );
        let stream = format!("c/{}", round % 2);
        let version = log.stream_version(&stream).unwrap();
        let r = log
            .append(&stream, ExpectedVersion::Exact(version), events(&ids, 1))
            .unwrap();
        assert_eq!(
            r.first_position,
            head + 1,
            "{kind}: appends continue after the good records"
        );
    }
    let expected = 10 + kinds.len();
    let log = open_log(h);
    assert!(
        log.recovery().is_clean(),
        "appends after a cut survive a reopen: {}",
        log.recovery()
    );
    let stored = all(&log);
    assert_eq!(stored.len(), expected);
    assert!(stored
        .iter()
        .enumerate()
        .all(|(i, e)| e.position == i as u64 + 1));
}

/// A subscription returns the existing events from its position, then new ones, in order.
pub fn subscription<H: Harness>(h: &H) {
    let ids = Ids::default();
    let log = Arc::new(open_log(h));
    for _ in 0..5 {
        log.append("sub", ExpectedVersion::Any, events(&ids, 1))
            .unwrap();
    }
    let positions = |batch: Vec<Envelope>| batch.iter().map(|e| e.position).collect::<Vec<_>>();
    let mut sub = log.subscribe(3);
    assert_eq!(sub.position(), 3);
    assert_eq!(
        positions(sub.poll(2).unwrap()),
        vec![3, 4],
        "bounded by max"
    );
    assert_eq!(positions(sub.poll(100).unwrap()), vec![5]);
    assert!(sub.poll(100).unwrap().is_empty(), "caught up");
    assert_eq!(sub.position(), 6);
    log.append("sub", ExpectedVersion::Any, events(&ids, 3))
        .unwrap();
    assert_eq!(positions(sub.poll(100).unwrap()), vec![6, 7, 8]);

    let mut from_start = log.subscribe(0);
    assert_eq!(
        positions(from_start.poll(100).unwrap()),
        (1..=8).collect::<Vec<_>>()
    );
    let mut ahead = log.subscribe(10);
    assert!(
        ahead.poll(100).unwrap().is_empty(),
        "nothing before the subscription's position"
    );

    // Blocking waits wake up on a new durable event.
    let writer = {
        let log = log.clone();
        let batch = events(&ids, 2);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            log.append("sub", ExpectedVersion::Exact(8), batch).unwrap();
        })
    };
    let mut got = Vec::new();
    while got.len() < 2 {
        let batch = sub
            .next_batch_blocking(100, Duration::from_secs(10))
            .unwrap();
        assert!(!batch.is_empty(), "a blocking wait returns the new events");
        got.extend(positions(batch));
    }
    writer.join().unwrap();
    assert_eq!(got, vec![9, 10]);
    log.append("sub", ExpectedVersion::Any, events(&ids, 1))
        .unwrap();
    assert_eq!(positions(ahead.poll(100).unwrap()), vec![10, 11]);
    assert!(
        sub.next_batch_blocking(100, Duration::from_millis(20))
            .unwrap()
            .len()
            == 1
    );
    assert!(
        sub.next_batch_blocking(100, Duration::from_millis(20))
            .unwrap()
            .is_empty(),
        "times out empty"
    );
}

/// While appenders run, a subscriber sees every event exactly once, in order, and never a
/// position beyond the durable head.
pub fn subscription_never_passes_durable_head<H: Harness>(h: &H) {
    const THREADS: u64 = 4;
    const PER_THREAD: u64 = 100;
    let ids = Arc::new(Ids::default());
    let log = Arc::new(open_log(h));
    let mut sub = log.subscribe(1);
    let appenders: Vec<_> = (0..THREADS)
        .map(|t| {
            let (log, ids) = (log.clone(), ids.clone());
            std::thread::spawn(move || {
                for _ in 0..PER_THREAD {
                    let r = log
                        .append(&format!("d/{t}"), ExpectedVersion::Any, events(&ids, 1))
                        .unwrap();
                    assert!(
                        log.head() >= r.last_position,
                        "acknowledged before the head moved"
                    );
                }
            })
        })
        .collect();
    let mut next = 1;
    while next <= THREADS * PER_THREAD {
        let batch = sub.next_batch_blocking(7, Duration::from_secs(30)).unwrap();
        assert!(!batch.is_empty(), "the subscriber stalled at {next}");
        let head = log.head();
        for e in batch {
            assert_eq!(e.position, next, "in order, without gaps or repeats");
            assert!(
                e.position <= head,
                "position {} seen beyond the durable head {head}",
                e.position
            );
            next += 1;
        }
    }
    for a in appenders {
        a.join().unwrap();
    }
    assert!(sub.poll(100).unwrap().is_empty());
}

/// Many threads appending through the group-commit writer: every append is acknowledged, and
/// positions are dense and unique across all of them.
pub fn concurrent_appenders<H: Harness>(h: &H) {
    const THREADS: usize = 16;
    const PER_THREAD: usize = 200;
    let ids = Arc::new(Ids::default());
    let log = Arc::new(open_log(h));
    let start = Arc::new(Barrier::new(THREADS));
    let acks = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (log, ids, start, acks) = (log.clone(), ids.clone(), start.clone(), acks.clone());
            std::thread::spawn(move || {
                let stream = format!("t/{t}");
                start.wait();
                let mut mine = Vec::with_capacity(PER_THREAD);
                for i in 0..PER_THREAD {
                    let batch = events(&ids, 1);
                    let r = log
                        .append(&stream, ExpectedVersion::Any, batch.clone())
                        .unwrap();
                    assert_eq!(r.first_position, r.last_position);
                    assert_eq!(
                        r.stream_versions,
                        vec![i as u64 + 1],
                        "each thread's stream grows by one"
                    );
                    mine.push(stored(&batch[0], r.first_position, &stream, i as u64 + 1));
                }
                acks.lock().unwrap().extend(mine);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut acked = std::mem::take(&mut *acks.lock().unwrap());
    acked.sort_by_key(|e| e.position);
    let total = (THREADS * PER_THREAD) as u64;
    assert_eq!(acked.len() as u64, total);
    assert!(
        acked
            .iter()
            .enumerate()
            .all(|(i, e)| e.position == i as u64 + 1),
        "positions are dense and unique"
    );
    assert_eq!(log.head(), total);
    assert_eq!(
        all(&*log),
        acked,
        "the log holds exactly what was acknowledged, where it was acknowledged"
    );
    drop(log);
    let log = open_sync(h);
    assert_eq!(all(&log), acked, "and keeps it across a reopen");
}

/// Many threads appending to one stream with `Exact` expectations: for each version exactly
/// one append wins, the rest fail with a wrong-version error.
pub fn concurrent_exact_one_stream<H: Harness>(h: &H) {
    const THREADS: usize = 8;
    const VERSIONS: u64 = 40;
    let ids = Arc::new(Ids::default());
    let log = Arc::new(open_log(h));
    let start = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let (log, ids, start) = (log.clone(), ids.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                let mut won = Vec::new();
                // Before the attempt at `Exact(k)` the stream is at k or beyond (the previous
                // attempt either won k or lost to someone who did), so every version is won by
                // exactly one thread.
                for k in 0..VERSIONS {
                    match log.append("contended", ExpectedVersion::Exact(k), events(&ids, 1)) {
                        Ok(r) => {
                            assert_eq!(r.stream_versions, vec![k + 1]);
                            won.push(k + 1);
                        }
                        Err(StoreError::WrongExpectedVersion { actual, .. }) => {
                            assert!(actual > k, "lost to a later version, not an earlier one")
                        }
                        Err(e) => panic!("unexpected error: {e}"),
                    }
                }
                won
            })
        })
        .collect();
    let mut won: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    won.sort_unstable();
    assert_eq!(
        won,
        (1..=VERSIONS).collect::<Vec<_>>(),
        "exactly one winner per version"
    );
    assert_eq!(log.stream_version("contended").unwrap(), VERSIONS);
    assert_eq!(log.head(), VERSIONS);
    let stream = log.read_stream("contended", 1, usize::MAX).unwrap();
    assert!(stream
        .iter()
        .enumerate()
        .all(|(i, e)| e.stream_version == i as u64 + 1));
}

/// Export to JSON Lines and import into a fresh log reproduces identical envelopes.
pub fn jsonl_round_trip<H: Harness>(source: &H, target: &H) {
    let ids = Ids::default();
    let src = open_log(source);
    for (i, sample) in Event::samples().iter().enumerate() {
        let e = NewEvent::encode(sample, ids.next(), 1_700_000_000_000 + i as i64).unwrap();
        src.append(&sample.stream(), ExpectedVersion::Any, vec![e])
            .unwrap();
    }
    let txn = Transaction {
        appends: vec![
            StreamAppend {
                stream: "j/a".into(),
                expected: ExpectedVersion::NoStream,
                events: events(&ids, 3),
            },
            StreamAppend {
                stream: "j/b".into(),
                expected: ExpectedVersion::NoStream,
                events: events(&ids, 2),
            },
        ],
    };
    src.commit(txn).unwrap();
    src.append("j/a", ExpectedVersion::Exact(3), events(&ids, 2))
        .unwrap();
    let mut exported = Vec::new();
    let count = jsonl::export(&src, &mut exported).unwrap();
    assert_eq!(count, src.head());
    let text = String::from_utf8(exported.clone()).unwrap();
    assert_eq!(text.lines().count() as u64, count, "one event per line");

    let dst = open_log(target);
    let parsed = jsonl::parse(&mut exported.as_slice()).unwrap();
    assert_eq!(jsonl::import(&dst, parsed).unwrap(), count);
    assert_eq!(
        all(&dst),
        all(&src),
        "an import reproduces identical envelopes"
    );
    let mut again = Vec::new();
    jsonl::export(&dst, &mut again).unwrap();
    assert_eq!(again, exported, "and exports to the same bytes");
    let distinct: BTreeSet<Uuid> = all(&dst).iter().map(|e| e.event_id).collect();
    assert_eq!(distinct.len() as u64, count);
    drop(dst);
    let dst = open_sync(target);
    assert_eq!(all(&dst), all(&src), "the import is durable");
}
