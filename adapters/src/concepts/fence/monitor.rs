//! The fence's configuration follower: keeps the intake's refresh window and the Prometheus
//! poller in step with the lazyload configuration in force. (Ageing and deadlines are the
//! fence's timers, run by the host's generic timer loop like every concept's.)

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actors::fence::config::{FenceConfig, MetricSource};
use actors::fence::Sighting;
use events::schema::{FenceKey, Via};

use super::intake::Intake;
use super::prometheus::{run_poller, FenceHosts, PrometheusSource};
use crate::clock;
use crate::host::{DispatchError, Dispatcher};

/// How often the Prometheus source is queried (Slime's ticker).
pub const PROMETHEUS_INTERVAL: Duration = Duration::from_secs(10);

/// Run the monitor until the dispatcher stops.
pub async fn run_monitor(dispatcher: Dispatcher, intake: Arc<Intake>, tick: Duration) {
    let mut interval = actix_rt::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let fences: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let mut poller: Option<(FenceConfig, actix_rt::task::JoinHandle<()>)> = None;
    loop {
        interval.tick().await;
        let read = dispatcher
            .read::<actors::fence::Fences, _>(|s, _| {
                let enabled = s
                    .fences
                    .iter()
                    .filter(|(_, v)| v.spec.enable)
                    .map(|(k, _)| (k.namespace.clone(), k.name.clone()))
                    .collect::<Vec<_>>();
                (s.config.clone(), enabled)
            })
            .await;
        let (config, enabled) = match read {
            Ok(read) => read,
            Err(DispatchError::Stopped(why)) => {
                tracing::warn!(%why, "fence configuration follower stopping");
                return;
            }
            Err(_) => continue,
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
