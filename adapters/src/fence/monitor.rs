//! The fence monitor: on every tick, find the fences with ageing or deadlines due and sweep
//! them, so idle dependencies, forgotten ones and passed deadlines become events with their
//! evidence. Also keeps the intake and the Prometheus poller in step with the configuration.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actors::fence::config::{FenceConfig, MetricSource};
use actors::fence::{FenceCommand, Sighting};
use actors::MeshCommand;
use events::schema::{FenceKey, Via};

use super::intake::Intake;
use super::prometheus::{run_poller, FenceHosts, PrometheusSource};
use crate::clock;
use crate::host::{DispatchError, Dispatcher};

/// Sweeps per atomic append.
const BATCH: usize = 512;
/// How often the Prometheus source is queried (Slime's ticker).
pub const PROMETHEUS_INTERVAL: Duration = Duration::from_secs(10);

/// Sweep every fence due at `now_ms`; returns how many were swept.
pub async fn sweep_due(dispatcher: &Dispatcher, now_ms: i64) -> Result<usize, DispatchError> {
    let due = dispatcher.read_fences(move |s, _| s.due(now_ms)).await?;
    for chunk in due.chunks(BATCH) {
        let commands = chunk
            .iter()
            .map(|fence| {
                MeshCommand::Fence(FenceCommand::Sweep {
                    fence: fence.clone(),
                    now_ms,
                })
            })
            .collect();
        dispatcher.execute_all(commands).await?;
    }
    Ok(due.len())
}

/// Run the monitor until the dispatcher stops.
pub async fn run_monitor(dispatcher: Dispatcher, intake: Arc<Intake>, tick: Duration) {
    let mut interval = actix_rt::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let fences: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let mut poller: Option<(FenceConfig, actix_rt::task::JoinHandle<()>)> = None;
    loop {
        interval.tick().await;
        match sweep_due(&dispatcher, clock::now_ms()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(fences = n, "aged learned dependencies"),
            Err(DispatchError::Stopped(why)) => {
                tracing::warn!(%why, "fence monitor stopping");
                return;
            }
            Err(e) => tracing::error!(error = %e, "fence sweep failed; retrying next tick"),
        }
        let read = dispatcher
            .read_fences(|s, _| {
                let enabled = s
                    .fences
                    .iter()
                    .filter(|(_, v)| v.spec.enable)
                    .map(|(k, _)| (k.namespace.clone(), k.name.clone()))
                    .collect::<Vec<_>>();
                (s.config.clone(), enabled)
            })
            .await;
        let Ok((config, enabled)) = read else {
            continue;
        };
        intake.set_window(config.refresh_window_ms);
        *fences.lock().expect("fence list lock") = enabled;
        let wanted = config.metric_source == MetricSource::Prometheus;
        let changed = poller.as_ref().is_none_or(|(c, _)| {
            c.prometheus_address != config.prometheus_address
                || c.prometheus_handlers != config.prometheus_handlers
        });
        if !wanted {
            if let Some((_, handle)) = poller.take() {
                handle.abort();
            }
        } else if changed {
            if let Some((_, handle)) = poller.take() {
                handle.abort();
            }
            let handle = start_poller(&config, fences.clone(), intake.clone());
            poller = Some((config, handle));
        }
    }
}

/// Query Prometheus on an interval and hand each fence's hosts to the actor.
fn start_poller(
    config: &FenceConfig,
    fences: Arc<Mutex<Vec<(String, String)>>>,
    intake: Arc<Intake>,
) -> actix_rt::task::JoinHandle<()> {
    let mut source = PrometheusSource::new(config.prometheus_address.clone());
    source.handlers = config
        .prometheus_handlers
        .iter()
        .map(|h| (h.name.clone(), h.query.clone()))
        .collect();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<FenceHosts>>(4);
    tracing::info!(address = %source.address, "polling Prometheus for dependencies");
    let list = move || fences.lock().expect("fence list lock").clone();
    let poll = actix_rt::spawn(run_poller(
        source,
        PROMETHEUS_INTERVAL,
        list,
        tx,
        std::future::pending::<()>(),
    ));
    actix_rt::spawn(async move {
        while let Some(results) = rx.recv().await {
            let now = clock::now_ms();
            for r in results {
                let sightings = r
                    .hosts
                    .into_iter()
                    .map(|host| Sighting {
                        raw: host.clone(),
                        host,
                        seen_at_ms: now,
                        source: "prometheus".into(),
                    })
                    .collect::<Vec<_>>();
                if sightings.is_empty() {
                    continue;
                }
                intake
                    .forward(
                        FenceKey::new(r.namespace, r.name),
                        Via::Prometheus,
                        sightings,
                    )
                    .await;
            }
        }
        poll.abort();
    })
}
