//! The cluster projector loop: a pass of the [`Applier`] whenever an event changed a desired
//! Kubernetes object, when a failed object's backoff has passed, and when this daemon becomes
//! the leader.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use events::schema::ResourceKey;

use super::apply::{Applier, SyncReport};
use super::lease::Leadership;
use crate::desired;
use crate::desired::KubeChanges;
use crate::host::{DispatchError, Dispatcher};
use crate::metrics::Metrics;

/// Bursts of events coalesce into one pass.
const COALESCE: Duration = Duration::from_millis(10);
/// After a pass that could not complete (the API unreachable while listing), wait this long.
const RETRY_PASS: Duration = Duration::from_secs(2);

/// One pass: read the uids of observed owners, walk the desired objects into the applier, send
/// the writes. `Err` when the pass could not complete (nothing is deleted then).
pub async fn project_once(
    dispatcher: &Dispatcher,
    applier: &mut Applier,
) -> Result<(SyncReport, u64), String> {
    let mut pass = applier.begin().await.map_err(|e| e.to_string())?;
    // Read after the listing (which can take a while), right before the walk: an owner observed
    // meanwhile (a ServiceFence) then has its uid, and what it owns gets its owner reference in
    // this pass.
    pass.set_observed_uids(
        observed_owner_uids(dispatcher)
            .await
            .map_err(|e| e.to_string())?,
    );
    let position = desired::walk(dispatcher, &mut pass).await?;
    Ok((pass.finish().await, position))
}

/// The uids of the observed objects of every kind the projections' objects may be owned by
/// (`Projection::OWNER_KINDS`: a ServiceFence owns its Sidecar).
pub async fn observed_owner_uids(
    dispatcher: &Dispatcher,
) -> Result<HashMap<ResourceKey, String>, DispatchError> {
    let kinds = projections::concept::owner_kinds();
    dispatcher
        .read::<actors::cluster::Cluster, _>(move |s, _| {
            kinds
                .iter()
                .flat_map(|kind| s.of_kind(kind))
                .map(|(k, o)| (k.clone(), o.uid.clone()))
                .collect()
        })
        .await
}

/// Run passes forever.
pub async fn run_projector(
    dispatcher: Dispatcher,
    mut applier: Applier,
    leadership: Leadership,
    metrics: Arc<Metrics>,
    changes: Arc<KubeChanges>,
) {
    let mut delivered = dispatcher.watch_delivered();
    let mut leader = leadership.changes();
    let mut covered: Option<u64> = None;
    let mut retry_at: Option<Instant> = None;
    loop {
        let is_leader = *leader.borrow_and_update();
        metrics
            .kube_leader
            .store(u64::from(is_leader), Ordering::Relaxed);
        let wanted = changes.last();
        let retry_due = retry_at.is_some_and(|t| t <= Instant::now());
        if is_leader && (covered.is_none_or(|c| wanted > c) || retry_due) {
            match project_once(&dispatcher, &mut applier).await {
                Ok((report, position)) => {
                    retry_at = report.next_retry;
                    if !report.not_leader {
                        covered = Some(wanted);
                        metrics.kube_projected.store(position, Ordering::Relaxed);
                    }
                    if report.writes() + report.failed > 0 || report.listed > 0 {
                        tracing::info!(
                            position,
                            desired = report.desired,
                            listed = report.listed,
                            matched = report.matched,
                            applied = report.applied,
                            status_applied = report.status_applied,
                            deleted = report.deleted,
                            failed = report.failed,
                            "projected to the cluster"
                        );
                    }
                }
                Err(e) => {
                    metrics.projection_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, "projection to the cluster failed; retrying");
                    retry_at = Some(Instant::now() + RETRY_PASS);
                }
            }
        }
        if !is_leader {
            // The next time this daemon leads, it starts from what the cluster holds.
            covered = None;
            retry_at = None;
        }
        let retry = async {
            match retry_at {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            changed = delivered.changed() => if changed.is_err() { return },
            changed = leader.changed() => if changed.is_err() { return },
            _ = retry => {}
        }
        tokio::time::sleep(COALESCE).await;
    }
}
