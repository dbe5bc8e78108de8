//! The fence's I/O side: access-log intake (Envoy ALS over gRPC, JSON lines over HTTP),
//! Prometheus polling, attribution of callers to services, and the monitor that turns idle
//! dependencies and passed deadlines into commands. The rules are pure (`actors::fence`).

pub mod als;
pub mod entry;
pub mod jsonl;

pub use entry::{AccessLogEntry, EntryReceiver, EntrySender, IntakeCounters, IntakeCounts};
