//! The registry's I/O side: heartbeats tracked in memory, and the monitor that turns the
//! liveness rules' verdicts into commands. The rules themselves are pure
//! (`actors::instance::liveness`); this module only keeps the table and the clock.

pub mod liveness;
pub mod monitor;

pub use liveness::LivenessTracker;
pub use monitor::{run_monitor, MonitorReport};
