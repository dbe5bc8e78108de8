//! The daemon's etcd projection loop: whenever delivery advances, compute the desired keys
//! from the folded state and let the [`EtcdTarget`] make etcd match. Bursts of events coalesce
//! into one pass; failures (etcd down, a lost connection, another writer) back off and retry,
//! and the target re-reads etcd before its next write, so an outage converges with no lost and
//! no stale keys.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::EtcdTarget;
use crate::host::Dispatcher;
use crate::metrics::Metrics;

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Events arriving within this window are projected together.
const COALESCE: Duration = Duration::from_millis(20);

/// Owns the connection between passes.
pub struct EtcdProjector {
    endpoints: Vec<String>,
    target: Option<EtcdTarget>,
    synced: Option<u64>,
    backoff: Duration,
    metrics: Arc<Metrics>,
}

impl EtcdProjector {
    pub fn new(endpoints: Vec<String>, metrics: Arc<Metrics>) -> Self {
        EtcdProjector {
            endpoints,
            target: None,
            synced: None,
            backoff: FIRST_BACKOFF,
            metrics,
        }
    }

    /// Project until the dispatcher stops.
    pub async fn run(mut self, dispatcher: Dispatcher) {
        let mut delivered = dispatcher.watch_delivered();
        loop {
            delivered.borrow_and_update();
            while !self.pass(&dispatcher).await {
                actix_rt::time::sleep(self.backoff).await;
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
            }
            self.backoff = FIRST_BACKOFF;
            if delivered.changed().await.is_err() {
                return;
            }
            actix_rt::time::sleep(COALESCE).await;
        }
    }

    /// One pass: make etcd reflect the current state. False when it failed (retry later).
    pub async fn pass(&mut self, dispatcher: &Dispatcher) -> bool {
        if self.target.is_none() {
            let prefixes = projections::desired::etcd_owned_prefixes();
            match EtcdTarget::connect(&self.endpoints, prefixes).await {
                Ok(target) => {
                    tracing::info!(
                        endpoints = ?self.endpoints,
                        checkpoint = ?target.checkpoint(),
                        "connected to etcd"
                    );
                    self.target = Some(target);
                }
                Err(e) => {
                    self.metrics.etcd_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, retry_in = ?self.backoff, "cannot reach etcd");
                    return false;
                }
            }
        }
        let mesh = match dispatcher.mesh().await {
            Ok(mesh) => mesh,
            Err(e) => {
                tracing::error!(error = %e, "cannot read state for the etcd projection");
                return false;
            }
        };
        let position = mesh.position;
        if self.synced == Some(position) {
            return true;
        }
        let desired =
            match tokio::task::spawn_blocking(move || projections::desired_etcd(&mesh)).await {
                Ok(desired) => desired,
                Err(e) => {
                    tracing::error!(error = %e, "etcd projection task failed");
                    return false;
                }
            };
        let target = self.target.as_mut().expect("connected above");
        match target.sync(&desired, position).await {
            Ok(report) => {
                self.synced = Some(position);
                self.metrics
                    .etcd_projected
                    .store(position, Ordering::Relaxed);
                self.metrics
                    .etcd_puts
                    .fetch_add(report.puts as u64, Ordering::Relaxed);
                self.metrics
                    .etcd_deletes
                    .fetch_add(report.deletes as u64, Ordering::Relaxed);
                if report.puts + report.deletes > 0 || report.resynced {
                    tracing::info!(
                        position,
                        puts = report.puts,
                        deletes = report.deletes,
                        transactions = report.transactions,
                        resynced = report.resynced,
                        "projected to etcd"
                    );
                }
                true
            }
            Err(e) => {
                self.metrics.etcd_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, position, retry_in = ?self.backoff, "etcd projection failed");
                false
            }
        }
    }
}
