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
