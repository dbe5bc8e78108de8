//! The conformance suite ([`events::conformance`]) run against every backend built in, plus the
//! checks only the durable backends can have: raw records at arbitrary keys (a gap after the
//! log, a damaged last record) and a corrupt record in the middle of the log.

mod memory {
    use events::conformance::MemoryHarness;

    events::conformance_tests!(MemoryHarness::default);
}

/// Checks for backends that store records by key in a database file, where damage can also sit
/// at a key that is not right after the log, or on a record that a commit indexed.
#[cfg(any(feature = "redb", feature = "sled"))]
mod durable {
    use events::backend::{Backend, PreparedRecord};
    use events::conformance::Harness;
    use events::envelope::{Envelope, ExpectedVersion, NewEvent, Transaction};
    use events::{frame, Event, EventStore, Log, StoreError, SyncLog};
    use uuid::Uuid;

    pub trait RawAccess: Harness {
        /// With no log open, store raw bytes at `position`, bypassing the indexes.
        fn write_raw(&self, position: u64, bytes: &[u8]);
        /// With no log open, bring every index up to date on disk (for a backend that defers
        /// index writes), so that a damaged record is one the indexes already point at.
        fn settle(&self);
    }

    fn event(n: u64) -> NewEvent {
        let samples = Event::samples();
        NewEvent::encode(
            &samples[n as usize % samples.len()],
            Uuid::from_u128(0xd00d_0000 + u128::from(n)),
            n as i64,
        )
        .unwrap()
    }

    fn all(store: &dyn EventStore) -> Vec<Envelope> {
        store.read_from(1, usize::MAX).unwrap()
    }

    /// Open a damaged log that must be refused, and return the report.
    fn refused<H: Harness>(h: &H) -> events::damage::Damage {
        match h.open_log_result() {
            Err(StoreError::Damaged(damage)) => *damage,
            Err(other) => panic!("expected a damage report, got {other}"),
            Ok(head) => panic!("a damaged log was opened, head {head}"),
        }
    }

    /// Opening through the harness, with the open's error instead of a panic.
    pub trait OpenResult {
        fn open_log_result(&self) -> Result<u64, StoreError>;
    }

    impl<H: Harness> OpenResult for H {
        fn open_log_result(&self) -> Result<u64, StoreError> {
            SyncLog::open(self.open()).map(|log| log.head())
        }
    }

    /// A well-formed frame that no commit wrote, at a gap after the log, is cut like garbage.
    pub fn gap_after_the_log<H: RawAccess>(h: &H) {
        let before = {
            let log = Log::open(h.open()).unwrap();
            for n in 1..=4 {
                log.append("g", ExpectedVersion::Any, vec![event(n)])
                    .unwrap();
            }
            all(&log)
        };
        let mut orphan = before[3].clone();
        orphan.position = 9;
        orphan.event_id = Uuid::from_u128(0xfeed);
        let orphan = frame::encode(&orphan).unwrap();
        h.write_raw(9, &orphan);
        h.write_raw(12, b"trailing garbage");
        if !h.cuts_damaged_tail() {
            let damage = refused(h);
            assert_eq!(damage.first_bad, 5, "{damage}");
            assert!(
                damage.reason.contains("next stored record is at 9"),
                "{damage}"
            );
            assert_eq!(
                damage.intact_after,
                Some(1),
                "the orphan frame is intact: {damage}"
            );
            assert_eq!(refused(h), damage, "nothing was changed");
            return;
        }
        let log = Log::open(h.open()).unwrap();
        let recovery = log.recovery();
        assert_eq!((recovery.cut_records, recovery.head), (2, 4), "{recovery}");
        assert_eq!(recovery.cut_bytes, orphan.len() as u64 + 16);
        let reason = recovery.reason.unwrap();
        assert!(
            reason.contains("position 9"),
            "reason of the lowest cut record: {reason}"
        );
        assert_eq!(all(&log), before);
        let r = log
            .append("g", ExpectedVersion::Exact(4), vec![event(5)])
            .unwrap();
        assert_eq!(r.first_position, 5);
        drop(log);
        let log = SyncLog::open(h.open()).unwrap();
        assert!(log.recovery().is_clean());
        assert_eq!(log.head(), 5);
    }

    /// A damaged record that a commit wrote and indexed: cutting it must also take it out of the
    /// indexes, or its stream version and id would outlive it.
    pub fn damaged_last_record<H: RawAccess>(h: &H) {
        let t_txn = Transaction::single("t", ExpectedVersion::NoStream, vec![event(3)]);
        let s_txn = Transaction::single("s", ExpectedVersion::Exact(2), vec![event(4)]);
        {
            let log = Log::open(h.open()).unwrap();
            log.append("s", ExpectedVersion::NoStream, vec![event(1), event(2)])
                .unwrap();
            log.commit(t_txn.clone()).unwrap();
            log.commit(s_txn.clone()).unwrap();
        }
        h.write_raw(4, b"bit rot");
        if !h.cuts_damaged_tail() {
            let damage = refused(h);
            assert_eq!(
                (damage.first_bad, damage.intact_after),
                (4, Some(0)),
                "{damage}"
            );
            return;
        }
        {
            let log = Log::open(h.open()).unwrap();
            assert_eq!((log.recovery().cut_records, log.head()), (1, 3));
            assert_eq!(
                log.stream_version("s").unwrap(),
                2,
                "the stream head moved back"
            );
            assert_eq!(log.read_stream("s", 1, 10).unwrap().len(), 2);
            assert_eq!(log.stream_version("t").unwrap(), 1);
            let again = log.commit(s_txn.clone()).unwrap();
            assert!(!again.duplicate, "the cut event's id is no longer stored");
            assert_eq!((again.first_position, again.stream_versions), (4, vec![3]));
        }
        // Now cut records the indexes on disk already point at, one of them the only event
        // of its stream.
        h.settle();
        h.write_raw(3, b"bit rot");
        h.write_raw(4, b"more rot");
        let log = SyncLog::open(h.open()).unwrap();
        assert_eq!((log.recovery().cut_records, log.head()), (2, 2));
        assert_eq!(
            log.stream_version("t").unwrap(),
            0,
            "a stream whose only event was cut is gone"
        );
        assert_eq!(log.stream_version("s").unwrap(), 2);
        let r = log.commit(t_txn).unwrap();
        assert_eq!(
            (r.first_position, r.stream_versions, r.duplicate),
            (3, vec![1], false)
        );
    }

    /// A corrupt record in the middle is not the tail: open keeps it, and every read that meets
    /// it fails instead of returning it.
    pub fn corrupt_record_in_the_middle<H: RawAccess>(h: &H) {
        {
            let log = Log::open(h.open()).unwrap();
            for n in 1..=6 {
                log.append(
                    &format!("m/{}", n % 2),
                    ExpectedVersion::Any,
                    vec![event(n)],
                )
                .unwrap();
            }
        }
        let mut frame5 = {
            let log = SyncLog::open(h.open()).unwrap();
            frame::encode(&log.read_from(5, 1).unwrap()[0]).unwrap()
        };
        frame5[12] ^= 1;
        h.settle();
        h.write_raw(5, &frame5);
        if !h.cuts_damaged_tail() {
            // Verified on open: a hole in the middle is refused before any state is built on it.
            let damage = refused(h);
            assert_eq!(
                (damage.first_bad, damage.intact_after, damage.last_intact),
                (5, Some(1), Some(6)),
                "{damage}"
            );
            assert!(damage.reason.contains("checksum"), "{damage}");
            return;
        }
        let log = Log::open(h.open()).unwrap();
        assert!(log.recovery().is_clean(), "only the tail is cut on open");
        assert_eq!(log.head(), 6);
        assert_eq!(log.read_from(1, 4).unwrap().len(), 4);
        assert_eq!(log.read_from(6, 10).unwrap().len(), 1);
        for result in [
            log.read_from(1, 100),
            log.read_stream("m/1", 1, 100),
            log.subscribe(2).poll(10),
        ] {
            match result {
                Err(StoreError::Corrupt {
                    position: 5,
                    reason,
                }) => assert!(reason.contains("checksum"), "{reason}"),
                other => panic!("expected a corrupt record at 5, got {other:?}"),
            }
        }
        assert_eq!(
            log.read_stream("m/0", 1, 100).unwrap().len(),
            3,
            "other streams read fine"
        );
    }

    /// The backend refuses records that do not continue the log (they would overwrite).
    pub fn refuses_positions_that_do_not_continue<H: RawAccess>(h: &H) {
        let record = |position: u64| {
            let e = event(position);
            let envelope = Envelope {
                position,
                stream: "r".into(),
                stream_version: position,
                event_id: e.event_id,
                recorded_at_ms: e.recorded_at_ms,
                event_type: e.event_type,
                schema_version: e.schema_version,
                payload: e.payload,
            };
            PreparedRecord {
                frame: frame::encode(&envelope).unwrap(),
                envelope,
            }
        };
        let mut backend = h.open();
        assert!(backend.recover().unwrap().is_clean());
        backend.commit(&[record(1), record(2)]).unwrap();
        for bad in [vec![record(2)], vec![record(4)], vec![record(3), record(5)]] {
            match backend.commit(&bad) {
                Err(StoreError::Storage(msg)) => assert!(msg.contains("comes next"), "{msg}"),
                other => panic!("expected a refusal, got {other:?}"),
            }
        }
        drop(backend);
        let log = SyncLog::open(h.open()).unwrap();
        assert_eq!(log.head(), 2);
        assert_eq!(log.stream_version("r").unwrap(), 2);
    }

    macro_rules! durable_tests {
        ($new:expr; $($case:ident),+) => {
            $(
                #[test]
                fn $case() {
                    $crate::durable::$case(&($new)());
                }
            )+
        };
    }
    pub(crate) use durable_tests;
}

#[cfg(feature = "redb")]
mod redb {
    use std::path::PathBuf;

    use events::backend::redb::RedbBackend;
    use events::backend::Backend;
    use events::conformance::Harness;
    use tempfile::TempDir;

    use crate::durable::RawAccess;

    pub struct RedbHarness {
        dir: TempDir,
    }

    impl RedbHarness {
        pub fn new() -> Self {
            RedbHarness {
                dir: tempfile::tempdir().unwrap(),
            }
        }

        fn path(&self) -> PathBuf {
            // A directory that does not exist yet: open creates it.
            self.dir.path().join("data").join("log.redb")
        }
    }

    impl Harness for RedbHarness {
        type B = RedbBackend;

        fn open(&self) -> RedbBackend {
            RedbBackend::open(&self.path()).unwrap()
        }

        fn write_garbage(&self, bytes: &[u8]) {
            RedbBackend::write_garbage_record(&self.path(), bytes).unwrap();
        }

        fn cuts_damaged_tail(&self) -> bool {
            false
        }
    }

    impl RawAccess for RedbHarness {
        fn write_raw(&self, position: u64, bytes: &[u8]) {
            RedbBackend::write_raw_record(&self.path(), position, bytes).unwrap();
        }

        fn settle(&self) {
            let mut backend = self.open();
            backend.recover().unwrap();
            backend.checkpoint().unwrap();
        }
    }

    events::conformance_tests!(RedbHarness::new);
    crate::durable::durable_tests!(RedbHarness::new;
        gap_after_the_log, damaged_last_record, corrupt_record_in_the_middle,
        refuses_positions_that_do_not_continue);

    /// Index entries are written in bulk every CHECKPOINT_EVENTS; until then they live in an
    /// overlay rebuilt from the records on open. Cross the threshold and check that reads,
    /// retries and reopen see one consistent log on both sides of it.
    #[test]
    fn index_checkpoints_are_invisible() {
        use events::backend::redb::CHECKPOINT_EVENTS;
        use events::{EventStore, ExpectedVersion, Log, NewEvent, SyncLog, Transaction};
        let h = RedbHarness::new();
        let event = |n: u64| NewEvent {
            event_id: uuid::Uuid::from_u128(0x5eed_0000_0000 + u128::from(n)),
            recorded_at_ms: n as i64,
            event_type: "resource.deleted".into(),
            schema_version: 1,
            payload: vec![n as u8],
        };
        let per_txn = 1000;
        let txns = CHECKPOINT_EVENTS as u64 / per_txn + 2;
        let first = Transaction::single(
            "k/0",
            ExpectedVersion::NoStream,
            (1..=per_txn).map(event).collect(),
        );
        {
            let log = Log::open(h.open()).unwrap();
            log.commit(first.clone()).unwrap();
            for t in 1..txns {
                let stream = format!("k/{}", t % 3);
                let events = (t * per_txn + 1..=(t + 1) * per_txn).map(event).collect();
                log.append(&stream, ExpectedVersion::Any, events).unwrap();
            }
            // The first transaction was checkpointed long ago: still a retry.
            assert!(log.commit(first.clone()).unwrap().duplicate);
            assert_eq!(log.head(), txns * per_txn);
        }
        let log = SyncLog::open(h.open()).unwrap();
        assert!(log.recovery().is_clean());
        let mut total = 0;
        for k in 0..3 {
            let stream = format!("k/{k}");
            let events = log.read_stream(&stream, 1, usize::MAX).unwrap();
            assert!(events
                .iter()
                .enumerate()
                .all(|(i, e)| e.stream_version == i as u64 + 1));
            assert_eq!(log.stream_version(&stream).unwrap(), events.len() as u64);
            // Reading from a version in the middle crosses from the tables into the overlay.
            let tail = log
                .read_stream(&stream, events.len() as u64 - 1500, 2000)
                .unwrap();
            assert_eq!(tail, events[events.len() - 1501..].to_vec());
            total += events.len() as u64;
        }
        assert_eq!(total, txns * per_txn);
        // An id from the overlay, and one from the tables, reused in another stream.
        for n in [(txns - 1) * per_txn + 7, 5] {
            let reuse = Transaction::single("k/other", ExpectedVersion::Any, vec![event(n)]);
            match log.commit(reuse) {
                Err(events::StoreError::IdempotencyConflict { .. }) => {}
                other => panic!("id {n} reused in another stream: {other:?}"),
            }
        }
    }

    /// A damaged record in the middle of the log fails the open and is named, with the intact
    /// record after it; the committed events after it are never cut.
    #[test]
    fn a_damaged_unindexed_record_fails_the_open() {
        use events::{EventStore, ExpectedVersion, Log};
        let h = RedbHarness::new();
        let frame2 = {
            let log = Log::open(h.open()).unwrap();
            for n in 1..=3u64 {
                let e = events::NewEvent {
                    event_id: uuid::Uuid::from_u128(u128::from(n)),
                    recorded_at_ms: 0,
                    event_type: "resource.deleted".into(),
                    schema_version: 1,
                    payload: vec![],
                };
                log.append("u", ExpectedVersion::Any, vec![e]).unwrap();
            }
            events::frame::encode(&log.read_from(2, 1).unwrap()[0]).unwrap()
        };
        let mut bad = frame2;
        bad[10] ^= 4;
        h.write_raw(2, &bad);
        match Log::open(h.open()) {
            Err(events::StoreError::Damaged(damage)) => {
                assert_eq!(
                    (damage.first_bad, damage.intact_after, damage.last_intact),
                    (2, Some(1), Some(3)),
                    "{damage}"
                );
            }
            Err(e) => panic!("expected damage at 2, got {e}"),
            Ok(_) => panic!("the open must fail"),
        }
    }

    /// Records are stored in chunks of up to CHUNK_BYTES; reads must cross chunk boundaries
    /// and find records in the middle of a chunk.
    #[test]
    fn reads_cross_chunk_boundaries() {
        use events::backend::redb::CHUNK_BYTES;
        use events::{EventStore, ExpectedVersion, Log, NewEvent, SyncLog};
        let h = RedbHarness::new();
        let event = |n: u64| NewEvent {
            event_id: uuid::Uuid::from_u128(0x00c0_ffee_0000 + u128::from(n)),
            recorded_at_ms: n as i64,
            event_type: "resource.deleted".into(),
            schema_version: 1,
            payload: vec![n as u8; 700],
        };
        // Two batches, each several chunks long, over two interleaved streams.
        let per_batch = (3 * CHUNK_BYTES / 700) as u64;
        {
            let log = Log::open(h.open()).unwrap();
            for b in 0..2u64 {
                let mut txn = events::Transaction::default();
                for s in 0..2u64 {
                    txn.appends.push(events::StreamAppend {
                        stream: format!("c/{s}"),
                        expected: ExpectedVersion::Any,
                        events: (0..per_batch / 2)
                            .map(|i| event(b * per_batch + s * 1000 + i))
                            .collect(),
                    });
                }
                log.commit(txn).unwrap();
            }
        }
        let log = SyncLog::open(h.open()).unwrap();
        let all = log.read_from(1, usize::MAX).unwrap();
        assert_eq!(all.len() as u64, log.head());
        assert!(all
            .iter()
            .enumerate()
            .all(|(i, e)| e.position == i as u64 + 1));
        for from in [1, 2, 90, 91, 92, 93, 180, all.len() as u64] {
            let some = log.read_from(from, 7).unwrap();
            assert_eq!(
                some,
                all[from as usize - 1..(from as usize + 6).min(all.len())].to_vec(),
                "from {from}"
            );
        }
        for s in 0..2 {
            let stream = format!("c/{s}");
            let mine: Vec<_> = all.iter().filter(|e| e.stream == stream).cloned().collect();
            assert_eq!(log.read_stream(&stream, 1, usize::MAX).unwrap(), mine);
            assert_eq!(
                log.read_stream(&stream, 40, 50).unwrap(),
                mine[39..89].to_vec()
            );
        }
    }

    /// Damage inside a chunk of several records: the open is refused and names the damaged
    /// record; the intact one after it in the same chunk is counted, and nothing is cut.
    #[test]
    fn damage_inside_a_chunk_is_refused_and_named() {
        use events::{EventStore, ExpectedVersion, Log, NewEvent};
        let h = RedbHarness::new();
        let event = |n: u64| NewEvent {
            event_id: uuid::Uuid::from_u128(0xabc_0000 + u128::from(n)),
            recorded_at_ms: n as i64,
            event_type: "resource.deleted".into(),
            schema_version: 1,
            payload: vec![n as u8; 10],
        };
        let all = {
            let log = Log::open(h.open()).unwrap();
            log.append("d", ExpectedVersion::NoStream, (1..=5).map(event).collect())
                .unwrap();
            log.read_from(1, 10).unwrap()
        };
        let mut chunk = Vec::new();
        let mut fourth_at = 0;
        for e in &all {
            if e.position == 4 {
                fourth_at = chunk.len();
            }
            chunk.extend(events::frame::encode(e).unwrap());
        }
        chunk[fourth_at + 9] ^= 0x80;
        h.write_raw(1, &chunk);
        for _ in 0..2 {
            match Log::open(h.open()) {
                Err(events::StoreError::Damaged(damage)) => {
                    assert_eq!(
                        (damage.first_bad, damage.intact_after, damage.last_intact),
                        (4, Some(1), Some(5)),
                        "{damage}"
                    );
                    assert!(damage.reason.contains("checksum"), "{damage}");
                }
                Err(e) => panic!("expected damage at 4, got {e}"),
                Ok(_) => panic!("the open must fail"),
            }
        }
    }

    #[test]
    fn writes_need_recovery_first() {
        let h = RedbHarness::new();
        let mut backend = h.open();
        match backend.checkpoint() {
            Err(events::StoreError::Storage(msg)) => assert!(msg.contains("recovered"), "{msg}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_second_open_of_the_same_file_fails_cleanly() {
        let h = RedbHarness::new();
        let _first = events::SyncLog::open(h.open()).unwrap();
        match events::SyncLog::open(RedbBackend::open(&h.path()).unwrap()) {
            Err(events::StoreError::Storage(msg)) => {
                assert!(msg.contains("open in another process"), "{msg}")
            }
            Err(e) => panic!("expected a storage error, got {e}"),
            Ok(_) => panic!("the file is already open"),
        }
    }
}

#[cfg(feature = "sled")]
mod sled {
    use std::path::PathBuf;

    use events::backend::sled::SledBackend;
    use events::conformance::Harness;
    use tempfile::TempDir;

    use crate::durable::RawAccess;

    pub struct SledHarness {
        dir: TempDir,
    }

    impl SledHarness {
        pub fn new() -> Self {
            SledHarness {
                dir: tempfile::tempdir().unwrap(),
            }
        }

        fn path(&self) -> PathBuf {
            self.dir.path().join("log.sled")
        }
    }

    impl Harness for SledHarness {
        type B = SledBackend;

        fn open(&self) -> SledBackend {
            SledBackend::open(&self.path()).unwrap()
        }

        fn write_garbage(&self, bytes: &[u8]) {
            SledBackend::write_garbage_record(&self.path(), bytes).unwrap();
        }

        fn cuts_damaged_tail(&self) -> bool {
            false
        }
    }

    impl RawAccess for SledHarness {
        fn write_raw(&self, position: u64, bytes: &[u8]) {
            SledBackend::write_raw_record(&self.path(), position, bytes).unwrap();
        }

        /// sled writes its indexes in every commit.
        fn settle(&self) {}
    }

    events::conformance_tests!(SledHarness::new);
    crate::durable::durable_tests!(SledHarness::new;
        gap_after_the_log, damaged_last_record, corrupt_record_in_the_middle,
        refuses_positions_that_do_not_continue);
}

/// [`events::conformance::run_all`] is the entry point for backends outside this crate; make
/// sure it runs the whole suite.
#[test]
fn run_all_passes_for_memory() {
    events::conformance::run_all(events::conformance::MemoryHarness::default);
}
