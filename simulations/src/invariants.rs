//! The invariants, checked after every step (the cheap ones), after every restart, every few
//! hundred steps (the refold), and in the liveness phase (convergence).
//!
//! - `acknowledged_durable`: a crash never loses an acknowledged event (its id is still at its
//!   position in the log).
//! - `torn_tail_cut`: a torn record is cut at recovery, never read back as data.
//! - `log_well_formed`: positions are dense and each stream's versions count up from 1.
//! - `refold_equals_state`: the daemon's incrementally evolved state equals an independent
//!   fold of the log.
//! - `converged`: once faults heal, the simulated cluster holds `desired_kube(fold(log))` and
//!   the simulated etcd `desired_etcd(fold(log))`.
//!
//! These hold for every concept. A concept's own invariants (an UP instance has a recent
//! heartbeat, a learned dependency is forgotten in time, every egress host is explained) live
//! with its scenario, which holds the world's truth they compare against
//! ([`crate::scenario::Scenario::check`]).

use std::collections::BTreeMap;

use crate::world::{Failure, World};

/// The checks after every step.
pub fn after_step(world: &mut World) -> Result<(), Failure> {
    if let Some(f) = world.failure.take() {
        return Err(f);
    }
    acknowledged_durable_cheap(world)?;
    Ok(())
}

/// The checks after a restart, before the acknowledged watermark moves.
pub fn after_restart(world: &World) -> Result<(), Failure> {
    acknowledged_durable(world)?;
    for id in &world.torn_ids {
        if let Some(r) = world.log.records().iter().find(|r| r.event_id == *id) {
            return Err(Failure::new(
                "torn_tail_cut",
                format!(
                    "the torn record of event {id} was read back as position {}",
                    r.position
                ),
            ));
        }
    }
    log_well_formed(world)
}

fn acknowledged_durable_cheap(world: &World) -> Result<(), Failure> {
    let n = world.acked.len();
    if (world.log.head() as usize) < n {
        return Err(lost(world, n));
    }
    if n > 0 && world.log.records()[n - 1].event_id != world.acked[n - 1] {
        return Err(lost(world, n));
    }
    Ok(())
}

fn lost(world: &World, n: usize) -> Failure {
    Failure::new(
        "acknowledged_durable",
        format!(
            "{n} events were acknowledged but the log holds {} (the first missing or different one is at position {})",
            world.log.head(),
            first_difference(world) + 1
        ),
    )
}

fn first_difference(world: &World) -> usize {
    world
        .acked
        .iter()
        .zip(world.log.records())
        .position(|(id, r)| *id != r.event_id)
        .unwrap_or(world.log.records().len().min(world.acked.len()))
}

/// Every acknowledged event is still at its position.
pub fn acknowledged_durable(world: &World) -> Result<(), Failure> {
    let n = world.acked.len();
    if (world.log.head() as usize) < n || first_difference(world) < n {
        return Err(lost(world, n));
    }
    Ok(())
}

/// Positions are dense from 1; each stream's versions count up by one.
pub fn log_well_formed(world: &World) -> Result<(), Failure> {
    let mut versions: BTreeMap<&str, u64> = BTreeMap::new();
    for (i, r) in world.log.records().iter().enumerate() {
        if r.position != i as u64 + 1 {
            return Err(Failure::new(
                "log_well_formed",
                format!("record {} claims position {}", i + 1, r.position),
            ));
        }
        let v = versions.entry(r.stream.as_str()).or_insert(0);
        if r.stream_version != *v + 1 {
            return Err(Failure::new(
                "log_well_formed",
                format!(
                    "position {}: stream {} jumps from version {} to {}",
                    r.position, r.stream, v, r.stream_version
                ),
            ));
        }
        *v = r.stream_version;
    }
    Ok(())
}

/// The daemon's state equals an independent fold of the log.
pub fn refold_equals_state(world: &World) -> Result<(), Failure> {
    let Some(daemon) = world.daemon.as_ref() else {
        return Ok(());
    };
    let folded = crate::fold(world.log.records())
        .map_err(|e| Failure::new("refold_equals_state", format!("the log does not fold: {e}")))?;
    if folded != daemon.mesh {
        let ours = daemon.mesh.concept_digests();
        let theirs = folded.concept_digests();
        let differ: Vec<&str> = ours
            .iter()
            .zip(&theirs)
            .filter(|(a, b)| a.1 != b.1)
            .map(|(a, _)| a.0)
            .collect();
        return Err(Failure::new(
            "refold_equals_state",
            format!(
                "the daemon's state at position {} differs from a fold of the log at {} (concepts: {})",
                daemon.mesh.position,
                folded.position,
                if differ.is_empty() { "position only".to_string() } else { differ.join(", ") }
            ),
        ));
    }
    Ok(())
}

/// Whether the cluster and etcd hold what a fold of the log says they should.
pub fn converged(world: &World) -> Result<(), String> {
    let mesh = crate::fold(world.log.records()).map_err(|e| e.to_string())?;
    let want_kube = projections::desired_kube(&mesh).kube;
    let have_kube = world.kube.snapshot();
    if want_kube != have_kube {
        let plan = projections::plan(&want_kube, &have_kube);
        return Err(format!(
            "kube differs from desired_kube(fold(log)): {}",
            plan.to_string().trim_end().replace('\n', "; ")
        ));
    }
    let want_etcd = projections::desired_etcd(&mesh);
    let have_etcd = world.etcd.snapshot();
    if want_etcd != have_etcd {
        let plan = projections::plan(&want_etcd, &have_etcd);
        return Err(format!(
            "etcd differs from desired_etcd(fold(log)): {}",
            plan.to_string().trim_end().replace('\n', "; ")
        ));
    }
    Ok(())
}
