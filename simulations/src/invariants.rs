//! The invariants, checked after every step (the cheap ones), after every restart, every few
//! hundred steps (the refold), and in the liveness phase (convergence).
//!
//! - `acknowledged_durable`: a crash never loses an acknowledged event (its id is still at its
//!   position in the log).
//! - `torn_tail_cut`: a torn record is cut at recovery, never read back as data.
//! - `log_well_formed`: positions are dense and each stream's versions count up from 1.
//! - `refold_equals_state`: the daemon's incrementally evolved state equals an independent
//!   fold of the log.
//! - `instance_up_has_heartbeat`: no instance is UP unless the daemon heard from it (or
//!   started) within 2 × the heartbeat interval before the monitor's last tick.
//! - `no_stale_learned_dependency`: no learned dependency unseen for TTL + grace as of the
//!   monitor's last tick is still in a fence (and so in its Sidecar).
//! - `egress_explainable`: every egress host of every Sidecar has a reason, and every reason's
//!   log position holds an event that says so.
//! - `converged`: once faults heal, the simulated cluster holds `desired_kube(fold(log))` and
//!   the simulated etcd `desired_etcd(fold(log))`.

use std::collections::BTreeMap;

use actors::fence::explain::{explain, Reason};
use actors::fence::learned;
use actors::Mesh;
use events::schema::FenceKey;
use events::Event;

use crate::world::{Failure, World};

/// The checks after every step.
pub fn after_step(world: &mut World) -> Result<(), Failure> {
    if let Some(f) = world.failure.take() {
        return Err(f);
    }
    acknowledged_durable_cheap(world)?;
    let Some(daemon) = world.daemon.as_ref() else {
        return Ok(());
    };
    let Some(tick) = daemon.last_tick_ms else {
        return Ok(());
    };
    instance_up_has_heartbeat(world, &daemon.mesh, daemon.started_ms, tick)?;
    no_stale_learned_dependency(&daemon.mesh, tick)?;
    if world.changed.contains(actors::ConceptId::Fence) {
        egress_explainable(world, &daemon.mesh)?;
        world.changed = world.changed.without(actors::ConceptId::Fence);
    }
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

/// No instance is UP without a heartbeat within the timeout as of the monitor's last tick.
fn instance_up_has_heartbeat(
    world: &World,
    mesh: &Mesh,
    started_ms: i64,
    tick_ms: i64,
) -> Result<(), Failure> {
    let timeout = 2 * mesh.instances.heartbeat_interval_ms as i64;
    for (key, instance) in &mesh.instances.instances {
        if instance.silence.is_some() || instance.offline.is_some() {
            continue;
        }
        let heard = world.contact.get(key).copied().unwrap_or(i64::MIN);
        let last = heard.max(started_ms);
        if last + timeout <= tick_ms {
            return Err(Failure::new(
                "instance_up_has_heartbeat",
                format!(
                    "{key} is UP but the daemon last heard from it at t={} (started t={}), more than {timeout} ms before the monitor's tick at t={}",
                    last - crate::world::T0_MS,
                    started_ms - crate::world::T0_MS,
                    tick_ms - crate::world::T0_MS
                ),
            ));
        }
    }
    Ok(())
}

/// No learned dependency unseen for TTL + grace (as of the last tick) is still in a fence.
fn no_stale_learned_dependency(mesh: &Mesh, tick_ms: i64) -> Result<(), Failure> {
    let config = &mesh.fences.config;
    for (fence, deps) in &mesh.fences.learned {
        for (host, l) in deps {
            let forget_at = l.last_seen_ms + config.dependency_ttl_ms + config.idle_grace_ms;
            if forget_at <= tick_ms {
                let in_sidecar = mesh
                    .fences
                    .egress_hosts(fence)
                    .is_some_and(|h| h.contains(&format!("*/{host}")));
                return Err(Failure::new(
                    "no_stale_learned_dependency",
                    format!(
                        "{fence} still holds {host} (in its Sidecar: {in_sidecar}), last seen at t={}, due to be forgotten at t={} before the monitor's tick at t={} ({:?})",
                        l.last_seen_ms - crate::world::T0_MS,
                        forget_at - crate::world::T0_MS,
                        tick_ms - crate::world::T0_MS,
                        learned::judge(l, config, tick_ms)
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Every egress host of every fence has a reason, and each reason's position holds an event
/// that gives it.
pub fn egress_explainable(world: &World, mesh: &Mesh) -> Result<(), Failure> {
    for fence in mesh.fences.fences.keys() {
        let Some(hosts) = explain(&mesh.fences, fence) else {
            continue;
        };
        for egress in hosts {
            if egress.reasons.is_empty() {
                return Err(Failure::new(
                    "egress_explainable",
                    format!("{fence}: egress host {} has no reason", egress.host),
                ));
            }
            for reason in &egress.reasons {
                check_reason(world, fence, reason).map_err(|why| {
                    Failure::new(
                        "egress_explainable",
                        format!("{fence}: egress host {}: {why}", egress.host),
                    )
                })?;
            }
        }
    }
    Ok(())
}

fn event_at(world: &World, position: u64) -> Result<Event, String> {
    let record = world
        .log
        .at(position)
        .ok_or_else(|| format!("position {position} is not in the log"))?;
    record
        .decode()
        .map_err(|e| format!("position {position}: {e}"))
}

fn applied(world: &World, position: u64, kind: &str, name: Option<&str>) -> Result<(), String> {
    match event_at(world, position)? {
        Event::ResourceApplied(e) if e.key.kind == kind && name.is_none_or(|n| n == e.key.name) => {
            Ok(())
        }
        other => Err(format!(
            "position {position} should apply a {kind}, but holds {}",
            other.event_type()
        )),
    }
}

fn check_reason(world: &World, fence: &FenceKey, reason: &Reason) -> Result<(), String> {
    let ours = |f: &FenceKey, h: &str, host: &str| f == fence && h == host;
    match reason {
        Reason::Learned {
            host,
            learned_position,
            last_position,
            idle_position,
            ..
        } => {
            match event_at(world, *learned_position)? {
                Event::DependencyLearned(e) if ours(&e.fence, &e.host, host) => {}
                other => {
                    return Err(format!(
                        "learned at position {learned_position}, which holds {}",
                        other.event_type()
                    ))
                }
            }
            match event_at(world, *last_position)? {
                Event::DependencyLearned(e) if ours(&e.fence, &e.host, host) => {}
                Event::DependencySeen(e) if ours(&e.fence, &e.host, host) => {}
                other => {
                    return Err(format!(
                        "last seen at position {last_position}, which holds {}",
                        other.event_type()
                    ))
                }
            }
            if let Some(p) = idle_position {
                match event_at(world, *p)? {
                    Event::DependencyIdle(e) if ours(&e.fence, &e.host, host) => {}
                    other => {
                        return Err(format!(
                            "idle at position {p}, which holds {}",
                            other.event_type()
                        ))
                    }
                }
            }
            Ok(())
        }
        Reason::Static { position, .. } if *position > 0 => {
            applied(world, *position, "ServiceFence", Some(&fence.name))
        }
        Reason::Selector { position, .. } if *position > 0 => {
            applied(world, *position, "Service", None)
        }
        Reason::VirtualService { position, .. } => {
            applied(world, *position, "VirtualService", None)
        }
        _ => Ok(()),
    }
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
