//! The log above every backend: validation of appends (expected versions, idempotent retry),
//! position assignment, and group commit.
//!
//! [`Log`] runs one writer thread per log. Appenders queue transactions; the writer takes
//! everything queued, validates each transaction in order against the stored state plus the
//! transactions already accepted into the batch, commits the batch with one fsync, then
//! acknowledges every transaction in it. While one fsync runs, new requests queue up and share
//! the next one, so many concurrent small appends cost few fsyncs.
//!
//! [`SyncLog`] is the same logic without a thread, for tools, tests and simulation.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use uuid::Uuid;

use crate::backend::{Backend, BackendRead, PreparedRecord};
use crate::envelope::{AppendResult, Envelope, Transaction};
use crate::error::StoreError;
use crate::frame;
use crate::store::{Completion, EventStore, HeadWatch, LogRead, Recovery, Subscription};

/// The most events one group commit takes before it commits what it has.
pub const MAX_BATCH_EVENTS: usize = 16_384;

/// Validation and commit, shared by [`Log`] and [`SyncLog`].
struct Writer<B: Backend> {
    backend: B,
    reader: B::Reader,
    head: u64,
    /// Why the medium failed, while it does: every batch is refused until the backend heals.
    broken: Option<StoreError>,
    /// The same, for readers of [`EventStore::health`].
    health: Arc<Mutex<Option<StoreError>>>,
}

/// State of a batch under construction: what accepted-but-uncommitted transactions changed.
#[derive(Default)]
struct Overlay {
    streams: BTreeMap<String, u64>,
    ids: BTreeMap<Uuid, u64>,
    records: Vec<PreparedRecord>,
}

impl<B: Backend> Writer<B> {
    fn open(mut backend: B) -> Result<(Self, Recovery), StoreError> {
        let recovery = backend.recover()?;
        let reader = backend.reader();
        let head = reader.head()?;
        Ok((
            Writer {
                backend,
                reader,
                head,
                broken: None,
                health: Arc::default(),
            },
            recovery,
        ))
    }

    fn stream_version(&self, overlay: &Overlay, stream: &str) -> Result<u64, StoreError> {
        match overlay.streams.get(stream) {
            Some(v) => Ok(*v),
            None => self.reader.stream_version(stream),
        }
    }

    /// Where each id is stored (committed or accepted into this batch), looked up in one pass.
    fn locate_all(
        &self,
        overlay: &Overlay,
        ids: &[Uuid],
    ) -> Result<Vec<Option<Envelope>>, StoreError> {
        let stored = self.reader.positions_of(ids)?;
        let mut found = Vec::with_capacity(ids.len());
        for (id, stored) in ids.iter().zip(stored) {
            let envelope = if let Some(pos) = overlay.ids.get(id) {
                let index = (*pos - self.head - 1) as usize;
                Some(overlay.records[index].envelope.clone())
            } else if let Some(pos) = stored {
                self.reader.read_one(pos)?
            } else {
                None
            };
            found.push(envelope);
        }
        Ok(found)
    }

    /// Validate `txn` against stored state + `overlay`; on success add its records to the overlay.
    fn accept(&self, overlay: &mut Overlay, txn: Transaction) -> Result<AppendResult, StoreError> {
        if txn.appends.is_empty() || txn.appends.iter().any(|a| a.events.is_empty()) {
            return Err(StoreError::InvalidAppend(
                "a transaction needs at least one event per stream".into(),
            ));
        }
        if let Some(a) = txn.appends.iter().find(|a| a.stream.is_empty()) {
            return Err(StoreError::InvalidAppend(format!(
                "empty stream name ({} events)",
                a.events.len()
            )));
        }
        // Idempotent retry: every id already stored, in the same streams and order.
        let ids: Vec<Uuid> = txn
            .appends
            .iter()
            .flat_map(|a| a.events.iter().map(|e| e.event_id))
            .collect();
        let streams = txn
            .appends
            .iter()
            .flat_map(|a| a.events.iter().map(|_| a.stream.as_str()));
        let mut found = Vec::new();
        let mut missing = 0usize;
        for (stream, stored) in streams.zip(self.locate_all(overlay, &ids)?) {
            match stored {
                Some(stored) => found.push((stream, stored)),
                None => missing += 1,
            }
        }
        if !found.is_empty() {
            return self.acknowledge_retry(&txn, found, missing);
        }
        let mut seen = std::collections::BTreeSet::new();
        for event in txn.appends.iter().flat_map(|a| &a.events) {
            if !seen.insert(event.event_id) {
                return Err(StoreError::InvalidAppend(format!(
                    "event id {} appears twice",
                    event.event_id
                )));
            }
        }
        // Check every expectation before changing the overlay, so a failure leaves no trace.
        // The version each stream starts from, looked up once per stream (a read transaction
        // in the durable backends) and carried across appends to the same stream.
        let mut starts = Vec::with_capacity(txn.appends.len());
        let mut running: BTreeMap<&str, u64> = BTreeMap::new();
        for append in &txn.appends {
            let actual = match running.get(append.stream.as_str()) {
                Some(v) => *v,
                None => self.stream_version(overlay, &append.stream)?,
            };
            if !append.expected.admits(actual) {
                return Err(StoreError::WrongExpectedVersion {
                    stream: append.stream.clone(),
                    expected: append.expected.to_string(),
                    actual,
                });
            }
            starts.push(actual);
            running.insert(append.stream.as_str(), actual + append.events.len() as u64);
        }
        let first_position = self.head + overlay.records.len() as u64 + 1;
        let mut position = first_position;
        let mut stream_versions = Vec::with_capacity(txn.appends.len());
        let mut prepared = Vec::with_capacity(txn.event_count());
        for (append, start) in txn.appends.iter().zip(starts) {
            for (version, event) in (start + 1..).zip(&append.events) {
                let envelope = Envelope {
                    position,
                    stream: append.stream.clone(),
                    stream_version: version,
                    event_id: event.event_id,
                    recorded_at_ms: event.recorded_at_ms,
                    event_type: event.event_type.clone(),
                    schema_version: event.schema_version,
                    payload: event.payload.clone(),
                };
                let frame = frame::encode(&envelope)?;
                prepared.push(PreparedRecord { envelope, frame });
                position += 1;
            }
            stream_versions.push(start + append.events.len() as u64);
        }
        for record in prepared {
            overlay.streams.insert(
                record.envelope.stream.clone(),
                record.envelope.stream_version,
            );
            overlay
                .ids
                .insert(record.envelope.event_id, record.envelope.position);
            overlay.records.push(record);
        }
        Ok(AppendResult {
            first_position,
            last_position: position - 1,
            stream_versions,
            duplicate: false,
        })
    }

    fn acknowledge_retry(
        &self,
        txn: &Transaction,
        found: Vec<(&str, Envelope)>,
        missing: usize,
    ) -> Result<AppendResult, StoreError> {
        let (_, first) = &found[0];
        if missing > 0 {
            return Err(StoreError::IdempotencyConflict {
                event_id: first.event_id,
                position: first.position,
                reason: "the retry repeats only part of a stored transaction",
            });
        }
        for (i, (stream, stored)) in found.iter().enumerate() {
            let expected_position = first.position + i as u64;
            if stored.stream != *stream || stored.position != expected_position {
                return Err(StoreError::IdempotencyConflict {
                    event_id: stored.event_id,
                    position: stored.position,
                    reason: "the id is stored in another stream or order",
                });
            }
        }
        let mut stream_versions = Vec::new();
        let mut offset = 0;
        for append in &txn.appends {
            offset += append.events.len();
            stream_versions.push(found[offset - 1].1.stream_version);
        }
        Ok(AppendResult {
            first_position: first.position,
            last_position: found
                .last()
                .map(|(_, e)| e.position)
                .unwrap_or(first.position),
            stream_versions,
            duplicate: true,
        })
    }

    /// Validate and commit a batch: one durable commit for all accepted transactions.
    /// Try to get a broken medium writable again.
    fn heal(&mut self) {
        if self.broken.is_none() {
            return;
        }
        match self.backend.heal() {
            Ok(head) => {
                self.head = self.head.max(head);
                self.set_broken(None);
            }
            Err(e) => self.set_broken(Some(e)),
        }
    }

    fn set_broken(&mut self, broken: Option<StoreError>) {
        if let Ok(mut health) = self.health.lock() {
            *health = broken.as_ref().map(StoreError::again);
        }
        self.broken = broken;
    }

    fn commit_batch(&mut self, txns: Vec<Transaction>) -> Vec<Result<AppendResult, StoreError>> {
        self.heal();
        if let Some(broken) = &self.broken {
            return txns.iter().map(|_| Err(broken.again())).collect();
        }
        let mut overlay = Overlay::default();
        let mut results: Vec<Result<AppendResult, StoreError>> = txns
            .into_iter()
            .map(|txn| self.accept(&mut overlay, txn))
            .collect();
        if overlay.records.is_empty() {
            return results;
        }
        match self.backend.commit(&overlay.records) {
            Ok(()) => self.head += overlay.records.len() as u64,
            Err(e) => {
                let failed = |e: &StoreError| match e {
                    e if e.is_medium_failure() => e.again(),
                    other => StoreError::Storage(format!("commit failed: {other}")),
                };
                for result in results.iter_mut() {
                    if matches!(result, Ok(r) if !r.duplicate) {
                        *result = Err(failed(&e));
                    }
                }
                if e.is_medium_failure() {
                    self.set_broken(Some(e));
                }
            }
        }
        results
    }
}

struct Request {
    txn: Transaction,
    done: Completion,
}

struct Shared<R> {
    reader: R,
    head: Arc<HeadWatch>,
    recovery: Recovery,
    health: Arc<Mutex<Option<StoreError>>>,
}

/// How often a writer whose medium failed tries to reopen it, with no append waiting.
const HEAL_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// A log with a group-commit writer thread. Cloning shares the same log.
pub struct Log<B: Backend> {
    shared: Arc<Shared<B::Reader>>,
    sender: Mutex<Option<mpsc::Sender<Request>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl<B: Backend> Log<B> {
    /// Open a log over a backend: recover the tail, then start the writer.
    pub fn open(backend: B) -> Result<Self, StoreError> {
        let (mut writer, recovery) = Writer::open(backend)?;
        let head = Arc::new(HeadWatch::new(writer.head));
        let shared = Arc::new(Shared {
            reader: writer.reader.clone(),
            head: head.clone(),
            recovery,
            health: writer.health.clone(),
        });
        let (sender, receiver) = mpsc::channel::<Request>();
        let thread = std::thread::Builder::new()
            .name("meshplane-log-writer".into())
            .spawn(move || {
                loop {
                    // While the medium is broken, wake up to reopen it even when no append
                    // comes, so the log (and readiness) recovers by itself.
                    let first = if writer.broken.is_some() {
                        match receiver.recv_timeout(HEAL_EVERY) {
                            Ok(first) => first,
                            Err(mpsc::RecvTimeoutError::Timeout) => {
                                writer.heal();
                                head.advance(writer.head);
                                continue;
                            }
                            Err(mpsc::RecvTimeoutError::Disconnected) => break,
                        }
                    } else {
                        match receiver.recv() {
                            Ok(first) => first,
                            Err(_) => break,
                        }
                    };
                    let mut events = first.txn.event_count();
                    let mut batch = vec![first];
                    while events < MAX_BATCH_EVENTS {
                        match receiver.try_recv() {
                            Ok(next) => {
                                events += next.txn.event_count();
                                batch.push(next);
                            }
                            Err(_) => break,
                        }
                    }
                    let (txns, dones): (Vec<_>, Vec<_>) =
                        batch.into_iter().map(|r| (r.txn, r.done)).unzip();
                    let results = writer.commit_batch(txns);
                    head.advance(writer.head);
                    for (done, result) in dones.into_iter().zip(results) {
                        done(result);
                    }
                }
            })?;
        Ok(Log {
            shared,
            sender: Mutex::new(Some(sender)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Stop accepting appends and wait for the writer to finish what is queued.
    pub fn close(&self) {
        self.sender.lock().expect("log sender lock").take();
        if let Some(thread) = self.thread.lock().expect("log thread lock").take() {
            let _ = thread.join();
        }
    }
}

impl<B: Backend> Drop for Log<B> {
    fn drop(&mut self) {
        self.close();
    }
}

impl<B: Backend> EventStore for Log<B> {
    fn submit(&self, txn: Transaction, done: Completion) {
        let sender = self.sender.lock().expect("log sender lock").clone();
        match sender {
            Some(sender) => {
                if let Err(mpsc::SendError(request)) = sender.send(Request { txn, done }) {
                    (request.done)(Err(StoreError::Closed));
                }
            }
            None => done(Err(StoreError::Closed)),
        }
    }

    fn head(&self) -> u64 {
        self.shared.head.get()
    }

    fn read_from(&self, from: u64, max: usize) -> Result<Vec<Envelope>, StoreError> {
        read_durable(&self.shared.reader, self.head(), from, max)
    }

    fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        max: usize,
    ) -> Result<Vec<Envelope>, StoreError> {
        let head = self.head();
        let mut events = self.shared.reader.read_stream(stream, from_version, max)?;
        events.retain(|e| e.position <= head);
        Ok(events)
    }

    fn stream_version(&self, stream: &str) -> Result<u64, StoreError> {
        self.shared.reader.stream_version(stream)
    }

    fn subscribe(&self, from: u64) -> Subscription {
        let reader: Arc<dyn LogRead> = Arc::new(DurableReader {
            reader: self.shared.reader.clone(),
            head: self.shared.head.clone(),
        });
        Subscription::new(reader, self.shared.head.clone(), from)
    }

    fn recovery(&self) -> Recovery {
        self.shared.recovery.clone()
    }

    fn health(&self) -> Result<(), StoreError> {
        match self.shared.health.lock() {
            Ok(health) => health.as_ref().map_or(Ok(()), |e| Err(e.again())),
            Err(_) => Err(StoreError::Unavailable("the log writer panicked".into())),
        }
    }
}

/// Reads that never expose a position beyond the published durable head.
struct DurableReader<R> {
    reader: R,
    head: Arc<HeadWatch>,
}

impl<R: BackendRead> LogRead for DurableReader<R> {
    fn read_from(&self, from: u64, max: usize) -> Result<Vec<Envelope>, StoreError> {
        read_durable(&self.reader, self.head.get(), from, max)
    }
}

fn read_durable<R: BackendRead>(
    reader: &R,
    head: u64,
    from: u64,
    max: usize,
) -> Result<Vec<Envelope>, StoreError> {
    let from = from.max(1);
    if from > head {
        return Ok(Vec::new());
    }
    let max = max.min((head - from + 1) as usize);
    reader.read_from(from, max)
}

/// The same log rules without a writer thread: each submit commits at once, on the caller's
/// thread. For replay tools, imports, tests and the deterministic simulation.
pub struct SyncLog<B: Backend> {
    writer: Mutex<Writer<B>>,
    reader: B::Reader,
    head: Arc<HeadWatch>,
    recovery: Recovery,
}

impl<B: Backend> SyncLog<B> {
    pub fn open(backend: B) -> Result<Self, StoreError> {
        let (writer, recovery) = Writer::open(backend)?;
        let head = Arc::new(HeadWatch::new(writer.head));
        Ok(SyncLog {
            reader: writer.reader.clone(),
            writer: Mutex::new(writer),
            head,
            recovery,
        })
    }

    /// Commit several transactions as one durable batch (what the group-commit writer does).
    pub fn commit_batch(&self, txns: Vec<Transaction>) -> Vec<Result<AppendResult, StoreError>> {
        let mut writer = self.writer.lock().expect("sync log writer lock");
        let results = writer.commit_batch(txns);
        self.head.advance(writer.head);
        results
    }
}

impl<B: Backend> EventStore for SyncLog<B> {
    fn submit(&self, txn: Transaction, done: Completion) {
        let result = self
            .commit_batch(vec![txn])
            .pop()
            .expect("one result per transaction");
        done(result);
    }

    fn head(&self) -> u64 {
        self.head.get()
    }

    fn read_from(&self, from: u64, max: usize) -> Result<Vec<Envelope>, StoreError> {
        read_durable(&self.reader, self.head(), from, max)
    }

    fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        max: usize,
    ) -> Result<Vec<Envelope>, StoreError> {
        self.reader.read_stream(stream, from_version, max)
    }

    fn stream_version(&self, stream: &str) -> Result<u64, StoreError> {
        self.reader.stream_version(stream)
    }

    fn subscribe(&self, from: u64) -> Subscription {
        let reader: Arc<dyn LogRead> = Arc::new(DurableReader {
            reader: self.reader.clone(),
            head: self.head.clone(),
        });
        Subscription::new(reader, self.head.clone(), from)
    }

    fn recovery(&self) -> Recovery {
        self.recovery.clone()
    }

    fn health(&self) -> Result<(), StoreError> {
        match self.writer.lock() {
            Ok(writer) => writer.broken.as_ref().map_or(Ok(()), |e| Err(e.again())),
            Err(_) => Err(StoreError::Unavailable("the log writer panicked".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Barrier;
    use std::time::Duration;

    use super::*;
    use crate::backend::memory::{MemoryBackend, MemoryReader};
    use crate::envelope::{ExpectedVersion, NewEvent};

    /// The memory backend with a commit as slow as an fsync, counting commits.
    struct SlowDisk {
        inner: MemoryBackend,
        commits: Arc<AtomicUsize>,
    }

    impl Backend for SlowDisk {
        type Reader = MemoryReader;

        fn recover(&mut self) -> Result<Recovery, StoreError> {
            self.inner.recover()
        }

        fn reader(&self) -> MemoryReader {
            self.inner.reader()
        }

        fn commit(&mut self, records: &[PreparedRecord]) -> Result<(), StoreError> {
            std::thread::sleep(Duration::from_millis(5));
            self.commits.fetch_add(1, Ordering::SeqCst);
            self.inner.commit(records)
        }
    }

    fn event(n: u128) -> NewEvent {
        NewEvent {
            event_id: Uuid::from_u128(n),
            recorded_at_ms: 0,
            event_type: "test".into(),
            schema_version: 1,
            payload: vec![1, 2, 3],
        }
    }

    #[test]
    fn concurrent_appenders_share_commits() {
        const THREADS: usize = 32;
        const PER_THREAD: usize = 20;
        let commits = Arc::new(AtomicUsize::new(0));
        let log = Arc::new(
            Log::open(SlowDisk {
                inner: MemoryBackend::new(),
                commits: commits.clone(),
            })
            .unwrap(),
        );
        let start = Arc::new(Barrier::new(THREADS));
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                let (log, start) = (log.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    for i in 0..PER_THREAD {
                        let id = (t * PER_THREAD + i + 1) as u128;
                        log.append(&format!("s/{t}"), ExpectedVersion::Any, vec![event(id)])
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let appends = THREADS * PER_THREAD;
        let commits = commits.load(Ordering::SeqCst);
        assert_eq!(log.head(), appends as u64);
        // One append per thread is in flight at a time, so while one commit runs the others
        // queue and ride the next one: about PER_THREAD commits, far below one per append.
        assert!(
            commits * 4 <= appends,
            "{commits} commits for {appends} appends: group commit is not sharing fsyncs"
        );
    }

    #[test]
    fn a_failed_expectation_in_a_batch_leaves_the_others_alone() {
        let log = SyncLog::open(MemoryBackend::new()).unwrap();
        let txns = vec![
            Transaction::single("a", ExpectedVersion::NoStream, vec![event(1)]),
            Transaction::single("b", ExpectedVersion::Exact(3), vec![event(2)]),
            Transaction::single("a", ExpectedVersion::Exact(1), vec![event(3)]),
        ];
        let results = log.commit_batch(txns);
        assert_eq!(results[0].as_ref().unwrap().first_position, 1);
        assert!(matches!(
            results[1],
            Err(StoreError::WrongExpectedVersion { actual: 0, .. })
        ));
        assert_eq!(
            results[2].as_ref().unwrap().first_position,
            2,
            "sees the batch's own earlier append"
        );
        assert_eq!(log.head(), 2);
    }
}
