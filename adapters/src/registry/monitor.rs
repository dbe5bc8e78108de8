//! The liveness monitor: on every tick, ask the tracker which transitions are due and execute
//! them as commands (in batches, each one atomic append), so they become events with their
//! evidence.

use std::sync::Arc;
use std::time::Duration;

use actors::MeshCommand;
use futures::StreamExt;

use super::LivenessTracker;
use crate::clock;
use crate::host::{DispatchError, Dispatcher};

/// Transitions per append: one durable write for many instances going silent at once.
const BATCH: usize = 4096;
/// Batches in flight at once: while one waits for its fsync the next is decided, and the log's
/// group commit makes them share durable writes (a partition silencing 100,000 instances at
/// once must still be marked within a second of the deadline).
const IN_FLIGHT: usize = 8;

/// What one tick did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MonitorReport {
    pub executed: usize,
    /// Transitions the decider refused (the instance changed in between); judged again later.
    pub refused: usize,
}

/// Run the monitor until the dispatcher stops. `tick` bounds how late a transition is noticed.
pub async fn run_monitor(dispatcher: Dispatcher, tracker: Arc<LivenessTracker>, tick: Duration) {
    let mut interval = actix_rt::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        match tick_once(&dispatcher, &tracker, clock::now_ms()).await {
            Ok(report) if report.executed + report.refused > 0 => {
                tracing::info!(
                    executed = report.executed,
                    refused = report.refused,
                    "liveness transitions"
                );
            }
            Ok(_) => {}
            Err(DispatchError::Stopped(why)) => {
                tracing::warn!(%why, "liveness monitor stopping");
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "liveness transitions failed; retrying next tick")
            }
        }
    }
}

/// Execute every transition due at `now_ms`.
pub async fn tick_once(
    dispatcher: &Dispatcher,
    tracker: &LivenessTracker,
    now_ms: i64,
) -> Result<MonitorReport, DispatchError> {
    let due = tracker.due(now_ms);
    let results: Vec<Result<MonitorReport, DispatchError>> =
        futures::stream::iter(due.chunks(BATCH).map(|chunk| async move {
            let mut report = MonitorReport::default();
            let result = execute_batch(dispatcher, chunk, &mut report).await;
            tracker.settle(chunk.iter().map(|c| c.key()));
            result.map(|()| report)
        }))
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let mut total = MonitorReport::default();
    for result in results {
        let report = result?;
        total.executed += report.executed;
        total.refused += report.refused;
    }
    Ok(total)
}

/// Execute a batch atomically; a refused command is dropped from it and the rest retried (an
/// instance deregistered between the verdict and the decision, say).
async fn execute_batch(
    dispatcher: &Dispatcher,
    batch: &[actors::instance::InstanceCommand],
    report: &mut MonitorReport,
) -> Result<(), DispatchError> {
    let mut commands: Vec<MeshCommand> = batch.iter().cloned().map(MeshCommand::Instance).collect();
    while !commands.is_empty() {
        match dispatcher.execute_all(commands.clone()).await {
            Ok(done) => {
                report.executed += done.iter().filter(|e| e.position.is_some()).count();
                return Ok(());
            }
            Err(DispatchError::Rejected { index, rejection }) => {
                tracing::debug!(%rejection, "liveness transition refused");
                report.refused += 1;
                commands.remove(index);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
