//! What every access-log source hands the intake: one HTTP access-log entry reduced to the
//! fields dependency learning needs, whatever protocol it arrived by (Envoy's gRPC Access Log
//! Service, or JSON lines over HTTP), and the counters every source shares.

use std::sync::atomic::{AtomicU64, Ordering};

pub use actors::fence::attribution::AccessLogEntry;

/// Name of the request header a caller (or an Envoy filter) may set to name the source
/// service explicitly, `namespace/service`.
pub const SOURCE_HEADER: &str = "x-meshplane-source";

/// Counters shared by every intake path, exported as metrics and by the intake's status.
#[derive(Debug, Default)]
pub struct IntakeCounters {
    /// Entries received (all protocols).
    pub received: AtomicU64,
    /// Entries that could not be read at all (missing request, bad JSON line, ...).
    pub malformed: AtomicU64,
    /// Entries skipped because they are not the global sidecar's inbound log.
    pub not_inbound: AtomicU64,
    /// Entries whose caller could not be attributed to a known service.
    pub unknown_source: AtomicU64,
    /// Entries whose destination is not a host we can learn (IP literal, `unknown`, ...).
    pub unknown_destination: AtomicU64,
    /// Entries whose caller has no enabled fence.
    pub unfenced_source: AtomicU64,
    /// Entries that named a dependency already known and fresh (no event needed).
    pub fresh: AtomicU64,
    /// Sightings handed to the fence actor (new dependencies or refreshes).
    pub sightings: AtomicU64,
}

impl IntakeCounters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// A plain copy, for reports and tests.
    pub fn snapshot(&self) -> IntakeCounts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        IntakeCounts {
            received: get(&self.received),
            malformed: get(&self.malformed),
            not_inbound: get(&self.not_inbound),
            unknown_source: get(&self.unknown_source),
            unknown_destination: get(&self.unknown_destination),
            unfenced_source: get(&self.unfenced_source),
            fresh: get(&self.fresh),
            sightings: get(&self.sightings),
        }
    }
}

/// A point-in-time copy of [`IntakeCounters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct IntakeCounts {
    pub received: u64,
    pub malformed: u64,
    pub not_inbound: u64,
    pub unknown_source: u64,
    pub unknown_destination: u64,
    pub unfenced_source: u64,
    pub fresh: u64,
    pub sightings: u64,
}

/// Where sources send entries: a bounded channel of batches, so a slow intake pushes back on
/// the senders instead of buffering without limit.
pub type EntrySender = tokio::sync::mpsc::Sender<Vec<AccessLogEntry>>;
pub type EntryReceiver = tokio::sync::mpsc::Receiver<Vec<AccessLogEntry>>;
