//! Storage backends. Each stores framed records by position plus two indexes (stream →
//! positions, event id → position) and commits a batch of records durably in one step. The
//! concurrency and idempotency rules live once, in [`crate::log`], above every backend.

pub mod memory;
#[cfg(feature = "redb")]
pub mod redb;
#[cfg(feature = "sled")]
pub mod sled;

use uuid::Uuid;

use crate::envelope::Envelope;
use crate::error::StoreError;
use crate::store::{LogRead, Recovery};

/// A record ready to be stored: its envelope and the frame that encodes it.
#[derive(Clone, Debug)]
pub struct PreparedRecord {
    pub envelope: Envelope,
    pub frame: Vec<u8>,
}

/// A durable store of framed records, driven by one writer.
pub trait Backend: Send + 'static {
    /// Read handle shared with subscribers; sees only committed records.
    type Reader: BackendRead + Clone;

    /// Check the end of the log, cut torn or corrupt records, and report what was cut.
    fn recover(&mut self) -> Result<Recovery, StoreError>;

    fn reader(&self) -> Self::Reader;

    /// Store `records` (dense positions continuing the log) durably, all or nothing.
    fn commit(&mut self, records: &[PreparedRecord]) -> Result<(), StoreError>;

    /// After a commit failed with [`StoreError::Full`] or [`StoreError::Unavailable`]: get the
    /// storage writable again (reopen it, checked) and return the head it holds, which may be
    /// past the last acknowledged one when the failed commit reached the medium after all.
    /// Backends that cannot reopen keep failing.
    fn heal(&mut self) -> Result<u64, StoreError> {
        Err(StoreError::Unavailable(
            "this storage backend cannot reopen after a failure".into(),
        ))
    }
}

/// Reads every backend offers.
pub trait BackendRead: LogRead + Send + Sync + 'static {
    /// The last stored position (0 when empty).
    fn head(&self) -> Result<u64, StoreError>;
    /// The current version of a stream (0 when it does not exist).
    fn stream_version(&self, stream: &str) -> Result<u64, StoreError>;
    /// Where each event id is stored, if it is (one lookup pass for a whole batch).
    fn positions_of(&self, event_ids: &[Uuid]) -> Result<Vec<Option<u64>>, StoreError>;
    /// Up to `max` events of one stream from `from_version`, in order.
    fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        max: usize,
    ) -> Result<Vec<Envelope>, StoreError>;
    /// The event at one position.
    fn read_one(&self, position: u64) -> Result<Option<Envelope>, StoreError> {
        Ok(self
            .read_from(position, 1)?
            .into_iter()
            .find(|e| e.position == position))
    }
}

/// Refuse a batch that does not continue the log densely from `head`. (Used by the durable
/// backends, which are behind features: the pure crates build this crate without them.)
#[cfg(any(feature = "redb", feature = "sled"))]
pub(crate) fn check_continues(head: u64, records: &[PreparedRecord]) -> Result<(), StoreError> {
    for (i, record) in records.iter().enumerate() {
        let expected = head + 1 + i as u64;
        if record.envelope.position != expected {
            return Err(StoreError::Storage(format!(
                "refusing to store position {} where position {expected} comes next",
                record.envelope.position
            )));
        }
    }
    Ok(())
}
