//! Every concept's timers: on each tick of a concept with [`Concept::TICK_MS`] > 0, ask it
//! which commands are due ([`Concept::due`], pure, over its state and memory) and execute them
//! in batches, each one atomic append, so liveness transitions, ageing and deadlines become
//! events with their evidence. One loop for every concept; none is named here.
//!
//! [`Concept::TICK_MS`]: actors::Concept::TICK_MS
//! [`Concept::due`]: actors::Concept::due

use std::time::Duration;

use actors::registry::{for_each_concept, ConceptVisitor};
use actors::Registered;
use futures::StreamExt;

use super::dispatcher::{DispatchError, Dispatcher};
use crate::clock;

/// Batches in flight at once: while one waits for its fsync the next is decided, and the log's
/// group commit makes them share durable writes (a partition silencing 100,000 instances at
/// once must still be marked within a second of the deadline).
const IN_FLIGHT: usize = 8;

/// What one tick did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Commands found due.
    pub due: usize,
    /// Commands that appended events.
    pub executed: usize,
    /// Commands the decider refused (the object changed in between); judged again later.
    pub refused: usize,
}

/// Start the timer loop of every concept that has timers.
pub fn spawn_all(dispatcher: &Dispatcher) -> Vec<tokio::task::JoinHandle<()>> {
    struct Spawn<'a> {
        dispatcher: &'a Dispatcher,
        tasks: Vec<tokio::task::JoinHandle<()>>,
    }
    impl ConceptVisitor for Spawn<'_> {
        fn visit<C: Registered>(&mut self) {
            if C::TICK_MS > 0 {
                let tick = Duration::from_millis(C::TICK_MS);
                self.tasks
                    .push(actix_rt::spawn(run::<C>(self.dispatcher.clone(), tick)));
            }
        }
    }
    let mut spawn = Spawn {
        dispatcher,
        tasks: Vec::new(),
    };
    for_each_concept(&mut spawn);
    spawn.tasks
}

/// Run concept `C`'s timers every `tick` until the dispatcher stops.
pub async fn run<C: Registered>(dispatcher: Dispatcher, tick: Duration) {
    let mut interval = actix_rt::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        match tick_once::<C>(&dispatcher, clock::now_ms()).await {
            Ok(report) if report.executed + report.refused > 0 => {
                tracing::info!(
                    concept = C::NAME,
                    executed = report.executed,
                    refused = report.refused,
                    "timers fired"
                );
            }
            Ok(_) => {}
            Err(DispatchError::Stopped(why)) => {
                tracing::warn!(concept = C::NAME, %why, "timers stopping");
                return;
            }
            Err(e) => {
                tracing::error!(concept = C::NAME, error = %e, "timers failed; retrying next tick")
            }
        }
    }
}

/// Execute every command of concept `C` due at `now_ms`.
pub async fn tick_once<C: Registered>(
    dispatcher: &Dispatcher,
    now_ms: i64,
) -> Result<TickReport, DispatchError> {
    let memory = dispatcher.memory::<C>();
    let due = match memory.write(|m| C::due_in_memory(m, now_ms)) {
        Some(due) => due,
        None => {
            let judged = memory.clone();
            dispatcher
                .read::<C, _>(move |state, _| judged.write(|m| C::due(state, m, now_ms)))
                .await?
        }
    };
    let results: Vec<Result<TickReport, DispatchError>> =
        futures::stream::iter(due.chunks(C::DUE_BATCH.max(1)).map(|chunk| {
            let memory = memory.clone();
            async move {
                let mut report = TickReport::default();
                let result = execute_batch::<C>(dispatcher, chunk, &mut report).await;
                memory.write(|m| C::settle(m, chunk));
                result.map(|()| report)
            }
        }))
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let mut total = TickReport {
        due: due.len(),
        ..TickReport::default()
    };
    for result in results {
        let report = result?;
        total.executed += report.executed;
        total.refused += report.refused;
    }
    Ok(total)
}

/// Execute a batch atomically; a refused command is dropped from it and the rest retried (an
/// instance deregistered between the verdict and the decision, say).
async fn execute_batch<C: Registered>(
    dispatcher: &Dispatcher,
    batch: &[C::Command],
    report: &mut TickReport,
) -> Result<(), DispatchError> {
    let mut commands: Vec<_> = batch.iter().cloned().map(C::wrap).collect();
    while !commands.is_empty() {
        match dispatcher.execute_all(commands.clone()).await {
            Ok(done) => {
                report.executed += done.iter().filter(|e| e.position.is_some()).count();
                return Ok(());
            }
            Err(DispatchError::Rejected { index, rejection }) => {
                tracing::debug!(concept = C::NAME, %rejection, "due command refused");
                report.refused += 1;
                commands.remove(index);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
