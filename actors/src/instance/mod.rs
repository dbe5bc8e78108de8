//! The instance concept: service instances registering, heartbeating, going silent, coming
//! back, taken offline by an operator, and removed (EaseMesh's registry semantics).
//!
//! An instance is `UP` when it is neither silent nor offline, else `OUT_OF_SERVICE`. The two
//! causes are kept apart on purpose: EaseMesh stores one status, so its admin "offline" is
//! undone by the next heartbeat check; here an operator's offline sticks until an operator
//! brings the instance back, whatever its heartbeats say.
//!
//! Heartbeats are not events. The daemon tracks them in memory and turns only transitions into
//! commands ([`liveness`]), each carrying its evidence, which [`Instances::decide`] checks
//! against the same rules before accepting it.

pub mod heartbeats;
pub mod liveness;
pub mod query;
pub mod registration;

use std::collections::BTreeMap;

use events::schema::{
    InstanceBroughtOnline, InstanceDeregistered, InstanceExpired, InstanceKey,
    InstanceOutOfService, InstanceRecovered, InstanceRegistered, InstanceTakenOffline, Silence,
};
use events::{Event, ExpectedVersion};
use serde::{Deserialize, Serialize};

use crate::ctx::Ctx;
use crate::decider::{expect_version, Decider, Decision, Meta, Outcome, Rejection};
use crate::service::spec::{DEFAULT_DEAD_RECORD_MS, DEFAULT_HEARTBEAT_INTERVAL_MS};
use liveness::Limits;
pub use registration::Registration;

/// EaseMesh's two statuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Status {
    Up,
    OutOfService,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Up => "UP",
            Status::OutOfService => "OUT_OF_SERVICE",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        match text.to_ascii_uppercase().as_str() {
            "UP" => Some(Status::Up),
            "OUT_OF_SERVICE" => Some(Status::OutOfService),
            _ => None,
        }
    }
}

/// One registered instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub ip: String,
    pub port: u16,
    pub labels: BTreeMap<String, String>,
    pub agent_type: String,
    pub registry_time_ms: i64,
    /// The last heartbeat the log knows of (registration, recovery, or the evidence of a
    /// silence). Heartbeats between transitions live only in the daemon's memory.
    pub last_heartbeat_ms: i64,
    /// Set while the instance is out of service for silence: the evidence.
    pub silence: Option<Silence>,
    /// Set while an operator has the instance offline: the reason given.
    pub offline: Option<String>,
    /// Version of the instance's stream.
    pub version: u64,
    pub updated_position: u64,
}

impl Instance {
    pub fn status(&self) -> Status {
        if self.silence.is_some() || self.offline.is_some() {
            Status::OutOfService
        } else {
            Status::Up
        }
    }
}

/// State of the instance concept: the instances, plus the part of the catalog it needs (which
/// services exist and their tenants, the liveness limits), folded from the catalog's events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceState {
    pub instances: BTreeMap<InstanceKey, Instance>,
    /// Service name → tenant.
    pub services: BTreeMap<String, String>,
    pub heartbeat_interval_ms: u64,
    pub dead_record_ms: u64,
    /// The mesh controller's name (EaseMesh's `registryName` of mesh instances).
    pub registry_name: String,
}

impl Default for InstanceState {
    fn default() -> Self {
        InstanceState {
            instances: BTreeMap::new(),
            services: BTreeMap::new(),
            heartbeat_interval_ms: DEFAULT_HEARTBEAT_INTERVAL_MS,
            dead_record_ms: DEFAULT_DEAD_RECORD_MS,
            registry_name: String::new(),
        }
    }
}

impl InstanceState {
    /// Record a stream version reached by an undone event (see `Mesh::note_stream_version`).
    /// An instance absent here appends with any version, so only present ones need it.
    pub fn note_version(&mut self, key: &InstanceKey, version: u64) {
        if let Some(i) = self.instances.get_mut(key) {
            i.version = version;
        }
    }

    pub fn limits(&self) -> Limits {
        Limits {
            heartbeat_interval_ms: self.heartbeat_interval_ms,
            dead_record_ms: self.dead_record_ms,
        }
    }

    pub fn get(&self, key: &InstanceKey) -> Option<&Instance> {
        self.instances.get(key)
    }

    /// The tenant of an instance's service ("" when the service is gone).
    pub fn tenant_of(&self, key: &InstanceKey) -> &str {
        self.services.get(&key.service).map_or("", String::as_str)
    }

    /// The expectation for appending to an instance's stream. A registered instance's stream
    /// must still be at the version the decision saw. An absent one takes any version: it may
    /// never have existed or have been removed, and remembering the stream version of every
    /// pod that ever registered would grow the state without bound; two racing registrations
    /// of the same new instance both land, the later one winning, which is what a
    /// re-registration does anyway.
    fn expectation(&self, key: &InstanceKey) -> ExpectedVersion {
        match self.instances.get(key) {
            Some(i) => expect_version(i.version),
            None => ExpectedVersion::Any,
        }
    }
}

/// Commands of the instance concept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InstanceCommand {
    /// Register (or re-register with a changed address, labels or agent). The time is the
    /// decision's: EaseMesh's `registryTime` is set by the server.
    Register(Registration),
    Deregister(InstanceKey),
    /// From the liveness monitor: silent for 2 × the heartbeat interval.
    MarkOutOfService {
        key: InstanceKey,
        silence: Silence,
    },
    /// From the liveness monitor: a heartbeat arrived after the instance went silent.
    MarkRecovered {
        key: InstanceKey,
        heartbeat_ms: i64,
    },
    /// From the liveness monitor: silent for the dead-record time.
    Expire {
        key: InstanceKey,
        silence: Silence,
    },
    /// An operator takes the instance out of service until brought back.
    TakeOffline {
        key: InstanceKey,
        reason: String,
    },
    BringOnline(InstanceKey),
}

impl InstanceCommand {
    pub fn key(&self) -> &InstanceKey {
        match self {
            InstanceCommand::Register(r) => &r.key,
            InstanceCommand::Deregister(key)
            | InstanceCommand::MarkOutOfService { key, .. }
            | InstanceCommand::MarkRecovered { key, .. }
            | InstanceCommand::Expire { key, .. }
            | InstanceCommand::TakeOffline { key, .. }
            | InstanceCommand::BringOnline(key) => key,
        }
    }
}

/// The instance decider.
pub struct Instances;

fn decision(
    state: &InstanceState,
    key: &InstanceKey,
    events: Vec<Event>,
    outcome: Outcome,
) -> Decision {
    Decision {
        stream: key.stream(),
        expected: state.expectation(key),
        events,
        outcome,
        item_outcomes: Vec::new(),
    }
}

fn unchanged(state: &InstanceState, key: &InstanceKey) -> Decision {
    decision(state, key, Vec::new(), Outcome::Unchanged)
}

/// The evidence of a silence must follow from the rules and from what the log knows.
fn check_silence(
    instance: &Instance,
    silence: &Silence,
    deadline_ms: i64,
    what: &str,
) -> Result<(), Rejection> {
    if silence.deadline_ms != deadline_ms {
        return Err(Rejection::invalid(
            "silence.deadlineMs",
            format!(
                "{what}: the deadline {} does not follow from the last heartbeat {} and the limits in force (expected {deadline_ms})",
                silence.deadline_ms, silence.last_heartbeat_ms
            ),
        ));
    }
    if silence.detected_at_ms < silence.deadline_ms {
        return Err(Rejection::invalid(
            "silence.detectedAtMs",
            format!("{what}: detected before the deadline passed"),
        ));
    }
    if silence.last_heartbeat_ms < instance.last_heartbeat_ms {
        return Err(Rejection::invalid(
            "silence.lastHeartbeatMs",
            format!(
                "{what}: the evidence predates the instance's last known heartbeat ({})",
                instance.last_heartbeat_ms
            ),
        ));
    }
    Ok(())
}

impl crate::Concept for Instances {
    const NAME: &'static str = "instance";
    /// The liveness monitor's tick: bounds how late an instance is marked out of service
    /// (2 × the heartbeat interval + this).
    const TICK_MS: u64 = 100;
    /// One durable write for many instances going silent at once.
    const DUE_BATCH: usize = 4096;
    type Memory = heartbeats::Heartbeats;

    /// Its own events, and the catalog's services and liveness limits.
    fn folds(event: &Event) -> bool {
        matches!(
            event,
            Event::InstanceRegistered(_)
                | Event::InstanceDeregistered(_)
                | Event::InstanceOutOfService(_)
                | Event::InstanceRecovered(_)
                | Event::InstanceExpired(_)
                | Event::InstanceTakenOffline(_)
                | Event::InstanceBroughtOnline(_)
                | Event::ServiceApplied(_)
                | Event::ServiceDeleted(_)
                | Event::MeshControllerApplied(_)
        )
    }

    fn note_version(state: &mut InstanceState, event: &Event, version: u64) -> bool {
        let key = match event {
            Event::InstanceRegistered(e) => &e.key,
            Event::InstanceDeregistered(e) => &e.key,
            Event::InstanceOutOfService(e) => &e.key,
            Event::InstanceRecovered(e) => &e.key,
            Event::InstanceExpired(e) => &e.key,
            Event::InstanceTakenOffline(e) => &e.key,
            Event::InstanceBroughtOnline(e) => &e.key,
            _ => return false,
        };
        state.note_version(key, version);
        true
    }

    const OBJECT_KINDS: &'static [&'static str] = &["ServiceInstance"];

    /// A service instance (named `SERVICE/INSTANCE_ID`): its own stream.
    fn history(
        object: &crate::history::ObjectName,
    ) -> Result<Vec<crate::history::HistorySource>, Rejection> {
        if object.kind != "ServiceInstance" {
            return Ok(Vec::new());
        }
        let (service, id) = object.name.split_once('/').ok_or_else(|| {
            Rejection::invalid("name", "a service instance is named SERVICE/INSTANCE_ID")
        })?;
        let key = InstanceKey::new(service, id);
        Ok(vec![crate::history::HistorySource::whole(key.stream())])
    }

    fn recall(
        mesh: &crate::Mesh,
        previous: Option<heartbeats::Heartbeats>,
        now_ms: i64,
    ) -> heartbeats::Heartbeats {
        match previous {
            Some(previous) => previous.rebuild(&mesh.instances, now_ms),
            None => heartbeats::Heartbeats::new(&mesh.instances, now_ms),
        }
    }

    fn remember(memory: &mut heartbeats::Heartbeats, event: &Event, _: &Meta) {
        memory.follow(event);
    }

    fn due_in_memory(
        memory: &mut heartbeats::Heartbeats,
        now_ms: i64,
    ) -> Option<Vec<InstanceCommand>> {
        Some(memory.due(now_ms))
    }

    fn settle(memory: &mut heartbeats::Heartbeats, done: &[InstanceCommand]) {
        memory.settle(done.iter().map(InstanceCommand::key));
    }
}

impl Decider for Instances {
    type State = InstanceState;
    type Command = InstanceCommand;

    fn decide(
        state: &InstanceState,
        command: InstanceCommand,
        ctx: &mut Ctx,
    ) -> Result<Decision, Rejection> {
        if let InstanceCommand::Register(r) = command {
            return register(state, r, ctx.now_ms());
        }
        let key = command.key().clone();
        let Some(instance) = state.get(&key) else {
            return Err(Rejection::not_found(format!(
                "service instance {key} not found"
            )));
        };
        let limits = state.limits();
        let event = match command {
            InstanceCommand::Register(_) => unreachable!("handled above"),
            InstanceCommand::Deregister(key) => {
                let event = Event::InstanceDeregistered(InstanceDeregistered { key: key.clone() });
                return Ok(decision(state, &key, vec![event], Outcome::Deleted));
            }
            InstanceCommand::MarkOutOfService { key, silence } => {
                if instance.silence.is_some() {
                    return Ok(unchanged(state, &key));
                }
                let deadline = limits.out_of_service_deadline(silence.last_heartbeat_ms);
                check_silence(instance, &silence, deadline, "out of service")?;
                Event::InstanceOutOfService(InstanceOutOfService { key, silence })
            }
            InstanceCommand::MarkRecovered { key, heartbeat_ms } => {
                let Some(silence) = &instance.silence else {
                    return Ok(unchanged(state, &key));
                };
                if heartbeat_ms <= silence.last_heartbeat_ms {
                    return Err(Rejection::invalid(
                        "heartbeatMs",
                        format!(
                            "a recovery needs a heartbeat after the silence began ({})",
                            silence.last_heartbeat_ms
                        ),
                    ));
                }
                Event::InstanceRecovered(InstanceRecovered { key, heartbeat_ms })
            }
            InstanceCommand::Expire { key, silence } => {
                let deadline = limits.expiry_deadline(silence.last_heartbeat_ms);
                check_silence(instance, &silence, deadline, "expiry")?;
                let event = Event::InstanceExpired(InstanceExpired {
                    key: key.clone(),
                    silence,
                });
                return Ok(decision(state, &key, vec![event], Outcome::Deleted));
            }
            InstanceCommand::TakeOffline { key, reason } => {
                if instance.offline.is_some() {
                    return Ok(unchanged(state, &key));
                }
                Event::InstanceTakenOffline(InstanceTakenOffline { key, reason })
            }
            InstanceCommand::BringOnline(key) => {
                if instance.offline.is_none() {
                    return Ok(unchanged(state, &key));
                }
                Event::InstanceBroughtOnline(InstanceBroughtOnline { key })
            }
        };
        Ok(decision(state, &key, vec![event], Outcome::Configured))
    }

    fn evolve(state: &mut InstanceState, event: Event, meta: &Meta) {
        match event {
            Event::ServiceApplied(e) => {
                state.services.insert(e.name, e.tenant);
            }
            Event::ServiceDeleted(e) => {
                state.services.remove(&e.name);
            }
            Event::MeshControllerApplied(e) => {
                state.heartbeat_interval_ms = e.heartbeat_interval_ms;
                state.dead_record_ms = e.dead_record_ms;
                state.registry_name = e.name;
            }
            Event::InstanceRegistered(e) => {
                let instance = state.instances.entry(e.key).or_insert_with(|| Instance {
                    ip: String::new(),
                    port: 0,
                    labels: BTreeMap::new(),
                    agent_type: String::new(),
                    registry_time_ms: 0,
                    last_heartbeat_ms: 0,
                    silence: None,
                    offline: None,
                    version: 0,
                    updated_position: 0,
                });
                instance.ip = e.ip;
                instance.port = e.port;
                instance.labels = e.labels;
                instance.agent_type = e.agent_type;
                instance.registry_time_ms = e.registry_time_ms;
                // A registration is a heartbeat; an operator's offline survives it.
                instance.last_heartbeat_ms = instance.last_heartbeat_ms.max(e.registry_time_ms);
                instance.silence = None;
                touch(instance, meta);
            }
            Event::InstanceDeregistered(InstanceDeregistered { key })
            | Event::InstanceExpired(InstanceExpired { key, .. }) => remove(state, key),
            Event::InstanceOutOfService(e) => {
                if let Some(i) = state.instances.get_mut(&e.key) {
                    if e.silence.heartbeat_seen {
                        i.last_heartbeat_ms = i.last_heartbeat_ms.max(e.silence.last_heartbeat_ms);
                    }
                    i.silence = Some(e.silence);
                    touch(i, meta);
                }
            }
            Event::InstanceRecovered(e) => {
                if let Some(i) = state.instances.get_mut(&e.key) {
                    i.last_heartbeat_ms = i.last_heartbeat_ms.max(e.heartbeat_ms);
                    i.silence = None;
                    touch(i, meta);
                }
            }
            Event::InstanceTakenOffline(e) => {
                if let Some(i) = state.instances.get_mut(&e.key) {
                    i.offline = Some(e.reason);
                    touch(i, meta);
                }
            }
            Event::InstanceBroughtOnline(e) => {
                if let Some(i) = state.instances.get_mut(&e.key) {
                    i.offline = None;
                    touch(i, meta);
                }
            }
            _ => {}
        }
    }
}

fn remove(state: &mut InstanceState, key: InstanceKey) {
    state.instances.remove(&key);
}

fn touch(instance: &mut Instance, meta: &Meta) {
    instance.version = meta.stream_version;
    instance.updated_position = meta.position;
}

fn register(state: &InstanceState, r: Registration, now_ms: i64) -> Result<Decision, Rejection> {
    if !state.services.contains_key(&r.key.service) {
        return Err(Rejection::not_found(format!(
            "service `{}` not found; create the service before registering its instances",
            r.key.service
        )));
    }
    let existing = state.get(&r.key);
    if existing.is_some_and(|i| {
        i.ip == r.ip && i.port == r.port && i.labels == r.labels && i.agent_type == r.agent_type
    }) {
        return Ok(unchanged(state, &r.key));
    }
    let outcome = if existing.is_some() {
        Outcome::Configured
    } else {
        Outcome::Created
    };
    let key = r.key.clone();
    let event = Event::InstanceRegistered(InstanceRegistered {
        key: r.key,
        ip: r.ip,
        port: r.port,
        labels: r.labels,
        registry_time_ms: now_ms,
        agent_type: r.agent_type,
    });
    Ok(decision(state, &key, vec![event], outcome))
}

#[cfg(test)]
mod tests;
