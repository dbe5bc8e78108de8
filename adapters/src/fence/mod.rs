//! The fence's I/O side: access-log intake (Envoy ALS over gRPC, JSON lines over HTTP),
//! Prometheus polling, attribution of callers to services, and the monitor that turns idle
//! dependencies and passed deadlines into commands. The rules are pure (`actors::fence`).

pub mod als;
pub mod attribution;
pub mod entry;
pub mod intake;
pub mod jsonl;
pub mod monitor;
pub mod prometheus;

pub use entry::{AccessLogEntry, EntryReceiver, EntrySender, IntakeCounters, IntakeCounts};
