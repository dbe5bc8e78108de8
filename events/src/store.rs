//! The contract every event log offers, and tail subscriptions.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use event_listener::Listener;

use crate::envelope::{AppendResult, Envelope, ExpectedVersion, NewEvent, Transaction};
use crate::error::StoreError;

/// Called once with the outcome of a submitted transaction.
pub type Completion = Box<dyn FnOnce(Result<AppendResult, StoreError>) + Send>;

/// The event log.
///
/// - **Optimistic concurrency**: each stream append carries an [`ExpectedVersion`]; a mismatch
///   fails the whole transaction with [`StoreError::WrongExpectedVersion`] and stores nothing.
/// - **Idempotent retry**: if every event id of a transaction is already stored (same streams,
///   same order), the original positions are acknowledged and nothing is written. A transaction
///   that repeats only some ids fails with [`StoreError::IdempotencyConflict`].
/// - **Durability**: an append is acknowledged only after it is durable (fsynced). Readers and
///   subscribers never see a position before every lower position is durable.
/// - **Atomicity**: a [`Transaction`] over several streams is stored entirely or not at all.
pub trait EventStore: Send + Sync {
    /// Queue a transaction; `done` is called once it is durable or has failed. Concurrent
    /// submissions are committed together (group commit) by stores that support it.
    fn submit(&self, txn: Transaction, done: Completion);

    /// The last durable position (0 for an empty log).
    fn head(&self) -> u64;

    /// Up to `max` events with positions `>= from`, in position order.
    fn read_from(&self, from: u64, max: usize) -> Result<Vec<Envelope>, StoreError>;

    /// Up to `max` events of one stream with stream versions `>= from_version`, in order.
    fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        max: usize,
    ) -> Result<Vec<Envelope>, StoreError>;

    /// The current version of a stream (0 when it does not exist).
    fn stream_version(&self, stream: &str) -> Result<u64, StoreError>;

    /// A cursor over the log from position `from`, that can wait for new events.
    fn subscribe(&self, from: u64) -> Subscription;

    /// What was found and cut at the end of the log when it was opened.
    fn recovery(&self) -> Recovery;

    /// Whether the log can write: `Err` while its medium is full or failing (it reopens by
    /// itself once the medium works) or after it found damage.
    fn health(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Commit a transaction and wait until it is durable.
    fn commit(&self, txn: Transaction) -> Result<AppendResult, StoreError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.submit(
            txn,
            Box::new(move |result| {
                let _ = tx.send(result);
            }),
        );
        rx.recv().unwrap_or(Err(StoreError::Closed))
    }

    /// Append events to one stream and wait until they are durable.
    fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        self.commit(Transaction::single(stream, expected, events))
    }
}

/// What recovery found at the end of the log on open.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Records (or unframed byte runs) cut from the end because they were torn or corrupt.
    pub cut_records: u64,
    /// Bytes cut.
    pub cut_bytes: u64,
    /// Why the first cut record was rejected.
    pub reason: Option<String>,
    /// The last good position kept.
    pub head: u64,
    /// What the open repaired without cutting a record (a torn, never acknowledged commit rolled
    /// back by the storage engine), or could not check.
    pub notes: Vec<String>,
}

impl Recovery {
    pub fn is_clean(&self) -> bool {
        self.cut_records == 0 && self.notes.is_empty()
    }
}

impl std::fmt::Display for Recovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_clean() {
            write!(f, "log is clean up to position {}", self.head)
        } else if self.cut_records == 0 {
            write!(
                f,
                "log verified up to position {}; {}",
                self.head,
                self.notes.join("; ")
            )
        } else {
            write!(
                f,
                "cut a corrupt tail of {} record(s), {} bytes after position {}: {}",
                self.cut_records,
                self.cut_bytes,
                self.head,
                self.reason.as_deref().unwrap_or("unknown")
            )
        }
    }
}

/// Read access to the durable part of a log; shared between the writer and subscribers.
pub trait LogRead: Send + Sync {
    fn read_from(&self, from: u64, max: usize) -> Result<Vec<Envelope>, StoreError>;
}

/// The durable head of a log, with a way to wait for it to move.
#[derive(Default)]
pub struct HeadWatch {
    head: AtomicU64,
    moved: event_listener::Event,
}

impl HeadWatch {
    pub fn new(head: u64) -> Self {
        HeadWatch {
            head: AtomicU64::new(head),
            moved: event_listener::Event::new(),
        }
    }

    pub fn get(&self) -> u64 {
        self.head.load(Ordering::Acquire)
    }

    /// Publish a new durable head and wake every waiter.
    pub fn advance(&self, head: u64) {
        self.head.fetch_max(head, Ordering::AcqRel);
        self.moved.notify(usize::MAX);
    }

    /// Block until the head is beyond `position`, or the timeout passes. Returns the head.
    pub fn wait_beyond(&self, position: u64, timeout: Duration) -> u64 {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let listener = self.moved.listen();
            let head = self.get();
            if head > position {
                return head;
            }
            if listener.wait_deadline(deadline).is_none() {
                return self.get();
            }
        }
    }

    /// Wait (async, runtime-agnostic) until the head is beyond `position`. Returns the head.
    pub async fn beyond(&self, position: u64) -> u64 {
        loop {
            let listener = self.moved.listen();
            let head = self.get();
            if head > position {
                return head;
            }
            listener.await;
        }
    }
}

/// A cursor over a log that can wait for more events.
pub struct Subscription {
    reader: Arc<dyn LogRead>,
    head: Arc<HeadWatch>,
    next: u64,
}

impl Subscription {
    pub fn new(reader: Arc<dyn LogRead>, head: Arc<HeadWatch>, from: u64) -> Self {
        Subscription {
            reader,
            head,
            next: from.max(1),
        }
    }

    /// The position the next returned event will have.
    pub fn position(&self) -> u64 {
        self.next
    }

    /// Up to `max` durable events from the cursor, without waiting (empty when caught up).
    pub fn poll(&mut self, max: usize) -> Result<Vec<Envelope>, StoreError> {
        if self.head.get() < self.next {
            return Ok(Vec::new());
        }
        let batch = self.reader.read_from(self.next, max)?;
        if let Some(last) = batch.last() {
            self.next = last.position + 1;
        }
        Ok(batch)
    }

    /// Wait until at least one event is available, then return up to `max` of them.
    pub async fn next_batch(&mut self, max: usize) -> Result<Vec<Envelope>, StoreError> {
        loop {
            let batch = self.poll(max)?;
            if !batch.is_empty() {
                return Ok(batch);
            }
            self.head.beyond(self.next - 1).await;
        }
    }

    /// Like [`Subscription::next_batch`] but blocking, giving up after `timeout` with an empty batch.
    pub fn next_batch_blocking(
        &mut self,
        max: usize,
        timeout: Duration,
    ) -> Result<Vec<Envelope>, StoreError> {
        let batch = self.poll(max)?;
        if !batch.is_empty() {
            return Ok(batch);
        }
        self.head.wait_beyond(self.next - 1, timeout);
        self.poll(max)
    }
}
