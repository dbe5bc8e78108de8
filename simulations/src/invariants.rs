//! The invariants, checked after every step (the cheap ones), as records become durable, after
//! every restart, every few hundred steps (the refold), and in the liveness phase
//! (convergence, then a fold of the whole log from position 1).
//!
//! - `acknowledged_durable`: a crash never loses an acknowledged event (its id is still at its
//!   position in the log).
//! - `torn_tail_cut`: a torn record is cut at recovery, never read back as data.
//! - `log_well_formed`: positions are dense and each stream's versions count up from 1.
//! - `refold_equals_state`: the daemon's incrementally evolved state equals an independent
//!   fold of the log: the [`Checker`]'s, every few hundred steps and after every restart, and
//!   one from position 1 at the end of the run.
//! - `converged`: once faults heal, the simulated cluster holds `desired_kube(fold(log))` and
//!   the simulated etcd `desired_etcd(fold(log))`.
//!
//! Each costs what changed since it last ran, never the whole history: the [`Checker`] folds
//! each record once, when it becomes durable, and checks it then (well-formed, not a torn
//! record); a restart compares the acknowledged ids with the records a crash may have cut
//! (and those only). The full checks of the whole log run once, at the end.
//!
//! These hold for every concept. A concept's own invariants (an UP instance has a recent
//! heartbeat, a learned dependency is forgotten in time, every egress host is explained) live
//! with its scenario, which holds the world's truth they compare against
//! ([`crate::scenario::Scenario::check`]).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use actors::Mesh;
use events::StoreError;
use uuid::Uuid;

use crate::log::{fold_onto, fold_tail, SimLog, Snapshots};
use crate::world::{Failure, World};

/// An independent fold of the durable log, kept by the simulator beside the daemon: every
/// record is checked and folded (by the real `Mesh::evolve` and timeline) once, when it becomes
/// durable, from the checker's own snapshots, never the daemon's. The daemon's state is
/// compared with it; a restart checks what recovery read back against it.
#[derive(Debug, Default)]
pub struct Checker {
    mesh: Mesh,
    /// The checker's own states at some durable positions, for the rollbacks it folds.
    snapshots: Snapshots,
    /// Each stream's version, as the checked records count it.
    versions: BTreeMap<String, u64>,
    /// Ids of records torn by crashes: recovery must never read one back.
    torn: BTreeSet<Uuid>,
}

impl Checker {
    /// The last durable position checked and folded.
    pub fn position(&self) -> u64 {
        self.mesh.position
    }

    /// The fold of the durable log.
    pub fn mesh(&self) -> &Mesh {
        &self.mesh
    }

    /// A crash tore the record of event `id`.
    pub fn torn(&mut self, id: Uuid) {
        self.torn.insert(id);
    }

    /// Check and fold the records that became durable since the last call.
    pub fn advance(&mut self, log: &SimLog) -> Result<(), Failure> {
        let durable = log.durable();
        if durable < self.mesh.position {
            return Err(Failure::new(
                "log_well_formed",
                format!(
                    "the log's durable records end at position {durable}, but position {} was durable before",
                    self.mesh.position
                ),
            ));
        }
        let records = log.records();
        for r in &records[self.mesh.position as usize..durable as usize] {
            if self.torn.contains(&r.event_id) {
                return Err(Failure::new(
                    "torn_tail_cut",
                    format!(
                        "the torn record of event {} was read back as position {}",
                        r.event_id, r.position
                    ),
                ));
            }
            if r.position != self.mesh.position + 1 {
                return Err(Failure::new(
                    "log_well_formed",
                    format!(
                        "record {} claims position {}",
                        self.mesh.position + 1,
                        r.position
                    ),
                ));
            }
            let v = self.versions.get(r.stream.as_str()).copied().unwrap_or(0);
            if r.stream_version != v + 1 {
                return Err(Failure::new(
                    "log_well_formed",
                    format!(
                        "position {}: stream {} jumps from version {v} to {}",
                        r.position, r.stream, r.stream_version
                    ),
                ));
            }
            match self.versions.get_mut(r.stream.as_str()) {
                Some(v) => *v = r.stream_version,
                None => {
                    self.versions.insert(r.stream.clone(), r.stream_version);
                }
            }
            let mesh = std::mem::take(&mut self.mesh);
            self.mesh = fold_onto(mesh, records, r.position, &mut self.snapshots).map_err(|e| {
                Failure::new(
                    "log_readable",
                    format!(
                        "the durable log does not fold at position {}: {e}",
                        r.position
                    ),
                )
            })?;
        }
        Ok(())
    }

    /// The fold of the whole log: the durable prefix's, then the unsynced tail folded onto a
    /// copy of it.
    pub fn state_at_head<'a>(&'a self, log: &SimLog) -> Result<Cow<'a, Mesh>, StoreError> {
        if log.head() == self.mesh.position {
            return Ok(Cow::Borrowed(&self.mesh));
        }
        // The tail's states are not durable: keep no snapshot of them.
        fold_tail(
            self.mesh.clone(),
            log.records(),
            log.head(),
            &self.snapshots,
        )
        .map(Cow::Owned)
    }
}

/// The checks after every step.
pub fn after_step(world: &mut World) -> Result<(), Failure> {
    if let Some(f) = world.failure.take() {
        return Err(f);
    }
    acknowledged_durable_cheap(world)?;
    Ok(())
}

/// The checks after a restart, before the acknowledged watermark moves: nothing acknowledged
/// was lost, and what recovery read back (now durable) is well formed and not a torn record.
pub fn after_restart(world: &mut World) -> Result<(), Failure> {
    acknowledged_durable_since_checked(world)?;
    world.checker.advance(&world.log)
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
            first_difference(world, 0) + 1
        ),
    )
}

/// The first index from `from` where the acknowledged ids and the log differ.
fn first_difference(world: &World, from: usize) -> usize {
    let records = world.log.records();
    let from = from.min(records.len()).min(world.acked.len());
    world.acked[from..]
        .iter()
        .zip(&records[from..])
        .position(|(id, r)| *id != r.event_id)
        .map_or(records.len().min(world.acked.len()), |i| from + i)
}

/// Every acknowledged event is still at its position (the whole log: at the end of a run).
pub fn acknowledged_durable(world: &World) -> Result<(), Failure> {
    let n = world.acked.len();
    if (world.log.head() as usize) < n || first_difference(world, 0) < n {
        return Err(lost(world, n));
    }
    Ok(())
}

/// Every acknowledged event is still at its position, looking only at the records the log
/// changed (cut) since this last passed: the ones before were compared then, or acknowledged
/// from the log as it still is.
pub fn acknowledged_durable_since_checked(world: &mut World) -> Result<(), Failure> {
    let n = world.acked.len();
    if (world.log.head() as usize) < n || first_difference(world, world.log.unchanged()) < n {
        return Err(lost(world, n));
    }
    world.log.mark();
    Ok(())
}

/// The daemon's state equals the [`Checker`]'s independent fold of the log.
pub fn refold_equals_state(world: &World) -> Result<(), Failure> {
    let Some(daemon) = world.daemon.as_ref() else {
        return Ok(());
    };
    let folded = world
        .checker
        .state_at_head(&world.log)
        .map_err(|e| Failure::new("refold_equals_state", format!("the log does not fold: {e}")))?;
    same_state(
        &daemon.mesh,
        &folded,
        "the daemon's state",
        "a fold of the log",
    )
}

/// A fold of the whole log from position 1 equals the daemon's state and the [`Checker`]'s.
/// Once per run (it costs the whole log); returns the fold.
pub fn refold_from_scratch(world: &World) -> Result<Mesh, Failure> {
    let folded = crate::fold(world.log.records())
        .map_err(|e| Failure::new("refold_equals_state", format!("the log does not fold: {e}")))?;
    if let Some(daemon) = world.daemon.as_ref() {
        same_state(
            &daemon.mesh,
            &folded,
            "the daemon's state",
            "a fold of the log from position 1",
        )?;
    }
    let checked = world
        .checker
        .state_at_head(&world.log)
        .map_err(|e| Failure::new("refold_equals_state", format!("the log does not fold: {e}")))?;
    same_state(
        &checked,
        &folded,
        "the checker's fold of the log",
        "a fold of the log from position 1",
    )?;
    Ok(folded)
}

fn same_state(ours: &Mesh, theirs: &Mesh, what: &str, against: &str) -> Result<(), Failure> {
    if ours == theirs {
        return Ok(());
    }
    let a = ours.concept_digests();
    let b = theirs.concept_digests();
    let differ: Vec<&str> = a
        .iter()
        .zip(&b)
        .filter(|(a, b)| a.1 != b.1)
        .map(|(a, _)| a.0)
        .collect();
    Err(Failure::new(
        "refold_equals_state",
        format!(
            "{what} at position {} differs from {against} at {} (concepts: {})",
            ours.position,
            theirs.position,
            if differ.is_empty() {
                "position or timeline only".to_string()
            } else {
                differ.join(", ")
            }
        ),
    ))
}

/// Whether the cluster and etcd hold what a fold of the log says they should (the
/// [`Checker`]'s fold).
pub fn converged(world: &World) -> Result<(), String> {
    let mesh = world
        .checker
        .state_at_head(&world.log)
        .map_err(|e| e.to_string())?;
    converged_to(world, &mesh)
}

/// Whether the cluster and etcd hold what `mesh` projects.
pub fn converged_to(world: &World, mesh: &Mesh) -> Result<(), String> {
    let want_kube = projections::desired_kube(mesh).kube;
    let have_kube = world.kube.snapshot();
    if want_kube != have_kube {
        let plan = projections::plan(&want_kube, &have_kube);
        return Err(format!(
            "kube differs from desired_kube(fold(log)): {}",
            plan.to_string().trim_end().replace('\n', "; ")
        ));
    }
    let want_etcd = projections::desired_etcd(mesh);
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
