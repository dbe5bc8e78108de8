//! The envelope every stored event carries, and the shapes of an append request.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::StoreError;
use crate::schema::Event;

/// Version of the envelope layout inside a frame. Bumped only with an upcast path for old frames.
pub const ENVELOPE_VERSION: u8 = 1;

/// One stored event, as read back from the log.
///
/// Positions and stream versions are 1-based: the first event in the log has position 1, the
/// first event of a stream has stream version 1, and a position or version of 0 means "nothing".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Global position in the log (1-based, dense, strictly increasing).
    pub position: u64,
    /// The stream (one per aggregate instance, e.g. `resource/ConfigMap/default/web`).
    pub stream: String,
    /// Version of the stream after this event (1-based).
    pub stream_version: u64,
    /// Unique id of the event; retrying an append with the same ids is idempotent.
    pub event_id: Uuid,
    /// When the event was recorded, milliseconds since the Unix epoch. Set by whoever built the
    /// event (the daemon's clock, or a simulation's virtual clock), never by the store.
    pub recorded_at_ms: i64,
    /// Event type name, e.g. `resource.applied`.
    pub event_type: String,
    /// Schema version of the payload for this event type.
    pub schema_version: u16,
    /// postcard-encoded payload of `event_type` at `schema_version`. Read as one byte string
    /// (postcard's wire format for bytes and for a sequence of u8 is the same, so this changes
    /// no stored frame, only the decoding speed).
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
}

impl Envelope {
    /// Decode the payload into the current in-memory event type, upcasting old versions.
    pub fn decode(&self) -> Result<Event, StoreError> {
        Event::decode(&self.event_type, self.schema_version, &self.payload)
    }
}

/// An event to append: everything but the position and stream version, which the store assigns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    pub event_id: Uuid,
    pub recorded_at_ms: i64,
    pub event_type: String,
    pub schema_version: u16,
    pub payload: Vec<u8>,
}

impl NewEvent {
    /// Encode a typed event into an appendable record.
    pub fn encode(event: &Event, event_id: Uuid, recorded_at_ms: i64) -> Result<Self, StoreError> {
        Ok(NewEvent {
            event_id,
            recorded_at_ms,
            event_type: event.event_type().to_string(),
            schema_version: event.schema_version(),
            payload: event.encode()?,
        })
    }
}

/// Optimistic concurrency expectation for one stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpectedVersion {
    /// Append whatever the stream's version is.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream's last event must have exactly this version.
    Exact(u64),
}

impl ExpectedVersion {
    /// Whether a stream currently at `actual` (0 = no stream) satisfies the expectation.
    pub fn admits(self, actual: u64) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => actual == 0,
            ExpectedVersion::Exact(n) => actual == n,
        }
    }
}

impl std::fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExpectedVersion::Any => write!(f, "any"),
            ExpectedVersion::NoStream => write!(f, "no stream"),
            ExpectedVersion::Exact(n) => write!(f, "{n}"),
        }
    }
}

/// Events for one stream, with the version the stream is expected to be at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamAppend {
    pub stream: String,
    pub expected: ExpectedVersion,
    pub events: Vec<NewEvent>,
}

/// One or more stream appends committed atomically: all of them are stored, or none.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Transaction {
    pub appends: Vec<StreamAppend>,
}

impl Transaction {
    pub fn single(
        stream: impl Into<String>,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Self {
        Transaction {
            appends: vec![StreamAppend {
                stream: stream.into(),
                expected,
                events,
            }],
        }
    }

    pub fn event_count(&self) -> usize {
        self.appends.iter().map(|a| a.events.len()).sum()
    }
}

/// What an acknowledged append returns. Acknowledged means durable (fsynced).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendResult {
    /// Position of the first event of the transaction.
    pub first_position: u64,
    /// Position of the last event of the transaction.
    pub last_position: u64,
    /// The version each stream is at after the append, in the order of `Transaction::appends`.
    pub stream_versions: Vec<u64>,
    /// True when every event was already stored (an idempotent retry); nothing was written.
    pub duplicate: bool,
}
