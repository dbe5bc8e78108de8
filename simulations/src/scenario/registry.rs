//! The registry: instances registering, heartbeating, going silent (briefly, long enough to be
//! out of service, long enough to expire), coming back, deregistering, re-registering with new
//! labels, and an operator taking one offline and bringing it back.

use std::collections::BTreeMap;

use actors::instance::heartbeats::Beat;
use actors::instance::{InstanceCommand, Instances, Registration};
use actors::{Mesh, MeshCommand};
use events::schema::InstanceKey;
use rand::Rng;
use serde_json::json;

use super::{apply_documents, Scenario};
use crate::world::{Failure, World};

/// The heartbeat interval (out of service after 2 ×) and the dead-record time of the scenario.
pub const HEARTBEAT_INTERVAL_MS: i64 = 1_000;
pub const DEAD_RECORD_MS: i64 = 30_000;
/// Chance per step of a disruption (a silence, a stop, an operator's action, new labels).
const DISRUPTION: f64 = 0.03;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Life {
    Running,
    Silent { until_ms: i64 },
    Stopped { until_ms: i64 },
}

#[derive(Clone, Debug)]
struct SimInstance {
    key: InstanceKey,
    ip: String,
    version: u32,
    life: Life,
    next_beat_ms: i64,
}

pub struct RegistryScenario {
    instances: Vec<SimInstance>,
    /// When the daemon last heard from each instance (heartbeat or registration): the world's
    /// truth the liveness invariant compares the log with.
    contact: BTreeMap<InstanceKey, i64>,
}

impl RegistryScenario {
    pub fn new() -> RegistryScenario {
        let mut instances = Vec::new();
        for (service, n) in [("order", 3), ("delivery", 2), ("restaurant", 3)] {
            for i in 0..n {
                instances.push(SimInstance {
                    key: InstanceKey::new(service, format!("{service}-{i}")),
                    ip: format!("10.0.{}.{}", instances.len(), 10 + i),
                    version: 1,
                    life: Life::Running,
                    next_beat_ms: 0,
                });
            }
        }
        RegistryScenario {
            instances,
            contact: BTreeMap::new(),
        }
    }

    fn register(&mut self, world: &mut World, i: usize) {
        let inst = &self.instances[i];
        let registration = Registration {
            key: inst.key.clone(),
            ip: inst.ip.clone(),
            port: 13001,
            labels: BTreeMap::from([("version".to_string(), format!("v{}", inst.version))]),
            agent_type: "None".into(),
        };
        let command = MeshCommand::Instance(InstanceCommand::Register(registration));
        let key = inst.key.clone();
        if world.execute(command).is_ok() {
            self.contact.insert(key, world.now_ms);
        }
    }

    fn beat(&mut self, world: &mut World, i: usize) {
        let key = self.instances[i].key.clone();
        // The daemon does not know it (expired, or its registration was lost in a crash):
        // the sidecar registers again, as EaseMesh's do.
        if heartbeat(world, &mut self.contact, &key) == Some(false) {
            world.note(&format!("unknown:{key}"));
            self.register(world, i);
        }
        let jitter = world.rng.random_range(0..150);
        self.instances[i].next_beat_ms = world.now_ms + HEARTBEAT_INTERVAL_MS - jitter;
    }

    fn disrupt(&mut self, world: &mut World) {
        let i = world.rng.random_range(0..self.instances.len());
        let now = world.now_ms;
        let key = self.instances[i].key.clone();
        match world.rng.random_range(0..6) {
            0 => {
                let until_ms = now + world.rng.random_range(300..1_500);
                self.instances[i].life = Life::Silent { until_ms };
                world.note(&format!("silent-short:{key}"));
            }
            1 => {
                let until_ms = now + world.rng.random_range(2_500..12_000);
                self.instances[i].life = Life::Silent { until_ms };
                world.note(&format!("silent:{key}"));
            }
            2 => {
                let until_ms = now + world.rng.random_range(DEAD_RECORD_MS + 500..45_000);
                self.instances[i].life = Life::Silent { until_ms };
                world.note(&format!("silent-long:{key}"));
            }
            3 if self.instances[i].life == Life::Running => {
                let command = MeshCommand::Instance(InstanceCommand::Deregister(key.clone()));
                let _ = world.execute(command);
                let until_ms = now + world.rng.random_range(1_000..10_000);
                self.instances[i].life = Life::Stopped { until_ms };
                world.note(&format!("stop:{key}"));
            }
            4 => {
                let offline = world
                    .mesh()
                    .and_then(|m| m.instances.get(&key))
                    .map(|inst| inst.offline.is_some());
                let command = match offline {
                    Some(true) => InstanceCommand::BringOnline(key.clone()),
                    _ => InstanceCommand::TakeOffline {
                        key: key.clone(),
                        reason: "maintenance".into(),
                    },
                };
                world.note(&format!("operator:{key}"));
                let _ = world.execute(MeshCommand::Instance(command));
            }
            _ if self.instances[i].life == Life::Running => {
                self.instances[i].version += 1;
                world.note(&format!("relabel:{key}"));
                self.register(world, i);
            }
            _ => {}
        }
    }
}

impl Default for RegistryScenario {
    fn default() -> Self {
        RegistryScenario::new()
    }
}

impl Scenario for RegistryScenario {
    fn check(&mut self, world: &mut World) -> Result<(), Failure> {
        let Some(daemon) = world.daemon.as_ref() else {
            return Ok(());
        };
        let Some(tick) = daemon.last_tick_ms else {
            return Ok(());
        };
        instance_up_has_heartbeat(&self.contact, &daemon.mesh, daemon.started_ms, tick)
    }

    fn name(&self) -> &'static str {
        "registry"
    }

    fn setup(&mut self, world: &mut World) -> Result<(), Failure> {
        let mut docs = vec![
            json!({"apiVersion": "mesh.megaease.com/v2alpha1", "kind": "MeshController",
                   "metadata": {"name": "easemesh-controller"}, "heartbeatInterval": "1s",
                   "registryType": "eureka", "deadRecordTime": "30s"}),
            json!({"apiVersion": "mesh.megaease.com/v2alpha1", "kind": "Tenant",
                   "metadata": {"name": "takeaway"}, "spec": {"description": "simulated"}}),
        ];
        for service in ["order", "delivery", "restaurant"] {
            docs.push(
                json!({"apiVersion": "mesh.megaease.com/v2alpha1", "kind": "Service",
                "metadata": {"name": service}, "spec": {"registerTenant": "takeaway"}}),
            );
        }
        apply_documents(world, &docs)?;
        for i in 0..self.instances.len() {
            self.register(world, i);
            self.instances[i].next_beat_ms = world.now_ms + HEARTBEAT_INTERVAL_MS;
        }
        Ok(())
    }

    fn act(&mut self, world: &mut World, healing: bool) {
        let now = world.now_ms;
        for i in 0..self.instances.len() {
            match self.instances[i].life {
                Life::Running if now >= self.instances[i].next_beat_ms => self.beat(world, i),
                Life::Running => {}
                Life::Silent { until_ms } if now >= until_ms => {
                    self.instances[i].life = Life::Running;
                    self.beat(world, i);
                }
                Life::Stopped { until_ms } if now >= until_ms => {
                    self.instances[i].life = Life::Running;
                    self.instances[i].ip = format!("10.1.{i}.{}", world.rng.random_range(1..250));
                    self.register(world, i);
                    self.instances[i].next_beat_ms = now + HEARTBEAT_INTERVAL_MS;
                }
                Life::Silent { .. } | Life::Stopped { .. } => {}
            }
        }
        if !healing && world.rng.random_bool(DISRUPTION) {
            self.disrupt(world);
        }
    }
}

/// A sidecar's heartbeat, into the daemon's real heartbeat table (never through the log);
/// false when the daemon does not know the instance, `None` while it is down.
fn heartbeat(
    world: &mut World,
    contact: &mut BTreeMap<InstanceKey, i64>,
    key: &InstanceKey,
) -> Option<bool> {
    let now = world.now_ms;
    let beat = world
        .memory_mut::<Instances>()?
        .heartbeat(&key.service, &key.instance_id, now);
    world.actions += 1;
    let known = beat == Beat::Known;
    if known {
        contact.insert(key.clone(), now);
    }
    Some(known)
}

/// `instance_up_has_heartbeat`: no instance is UP unless the daemon heard from it (or
/// started) within 2 × the heartbeat interval before the timers' last tick.
fn instance_up_has_heartbeat(
    contact: &BTreeMap<InstanceKey, i64>,
    mesh: &Mesh,
    started_ms: i64,
    tick_ms: i64,
) -> Result<(), Failure> {
    let timeout = 2 * mesh.instances.heartbeat_interval_ms as i64;
    for (key, instance) in &mesh.instances.instances {
        if instance.silence.is_some() || instance.offline.is_some() {
            continue;
        }
        let heard = contact.get(key).copied().unwrap_or(i64::MIN);
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
