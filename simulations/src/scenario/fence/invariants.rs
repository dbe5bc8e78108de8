//! The fence's invariants, checked after every step of the fence scenario:
//!
//! - `no_stale_learned_dependency`: no learned dependency unseen for TTL + grace as of the
//!   timers' last tick is still in a fence (and so in its Sidecar).
//! - `egress_explainable`: every egress host of every Sidecar has a reason, and every reason's
//!   log position holds an event that says so (checked whenever the fence folded an event).

use actors::fence::explain::{explain, Reason};
use actors::fence::learned;
use actors::Mesh;
use events::schema::FenceKey;
use events::Event;

use crate::world::{Failure, World};

/// Both checks, as of the daemon's last tick.
pub fn check(world: &mut World) -> Result<(), Failure> {
    let Some(daemon) = world.daemon.as_ref() else {
        return Ok(());
    };
    let Some(tick) = daemon.last_tick_ms else {
        return Ok(());
    };
    no_stale_learned_dependency(&daemon.mesh, tick)?;
    if world.changed.contains(actors::ConceptId::Fence) {
        egress_explainable(world, &daemon.mesh)?;
        world.changed = world.changed.without(actors::ConceptId::Fence);
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
