//! The one error type of the event log.

use thiserror::Error;

/// Everything that can go wrong appending to or reading from the log.
#[derive(Debug, Error)]
pub enum StoreError {
    /// Optimistic concurrency: the stream is not at the version the caller expected.
    #[error(
        "stream `{stream}`: expected version {expected}, but the stream is at version {actual}"
    )]
    WrongExpectedVersion {
        stream: String,
        expected: String,
        actual: u64,
    },
    /// A retry that repeats only part of an earlier append, or reuses an id in another stream.
    #[error("event id {event_id} is already stored at position {position} ({reason})")]
    IdempotencyConflict {
        event_id: uuid::Uuid,
        position: u64,
        reason: &'static str,
    },
    /// The request itself is malformed (empty stream name, no events, ...).
    #[error("invalid append: {0}")]
    InvalidAppend(String),
    /// A stored record failed its checksum or could not be decoded.
    #[error("corrupt record at position {position}: {reason}")]
    Corrupt { position: u64, reason: String },
    /// The payload of an event could not be encoded or decoded.
    #[error("event `{event_type}` v{schema_version}: {reason}")]
    Codec {
        event_type: String,
        schema_version: u16,
        reason: String,
    },
    /// The stored event type/version is not known to this build.
    #[error("unknown event type `{event_type}` v{schema_version}")]
    UnknownEventType {
        event_type: String,
        schema_version: u16,
    },
    /// The storage engine failed.
    #[error("storage: {0}")]
    Storage(String),
    /// The log is damaged and is not served: the report says where and what is intact.
    #[error("{0}")]
    Damaged(Box<crate::damage::Damage>),
    /// The medium is full: nothing was written, and the log reopens by itself once a write can
    /// succeed again.
    #[error("no space left for the event log: {0}")]
    Full(String),
    /// The log cannot write right now (a failed commit or fsync); nothing was acknowledged, and
    /// the log reopens by itself once the medium works again.
    #[error("the event log cannot write: {0}")]
    Unavailable(String),
    /// Filesystem I/O failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The log's writer has stopped (the store was closed or a commit failed fatally).
    #[error("the event log is closed")]
    Closed,
    /// A JSON Lines import/export line was malformed.
    #[error("line {line}: {reason}")]
    Jsonl { line: usize, reason: String },
}

impl StoreError {
    /// The same failure again, for every write refused while the log cannot write: a full
    /// medium stays "full", damage stays damage, anything else is "cannot write".
    pub fn again(&self) -> StoreError {
        match self {
            StoreError::Full(reason) => StoreError::Full(reason.clone()),
            StoreError::Damaged(damage) => StoreError::Damaged(damage.clone()),
            StoreError::Unavailable(reason) => StoreError::Unavailable(reason.clone()),
            other => StoreError::Unavailable(other.to_string()),
        }
    }

    /// Whether the medium failed (full, or an I/O failure) rather than the request or the data:
    /// the log stops writing and reopens by itself once the medium works.
    pub fn is_medium_failure(&self) -> bool {
        matches!(self, StoreError::Full(_) | StoreError::Unavailable(_))
    }
}
