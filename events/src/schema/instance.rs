//! Events of the instance concept: service instances registering, going silent, coming back,
//! taken offline by an operator, and removed.
//!
//! Heartbeats themselves are not events (100,000 instances at a 5 s interval would be 20,000
//! events a second, forever): liveness is tracked in memory by the daemon, and only the
//! transitions it decides on become events, each carrying the evidence it was decided on, so a
//! replay reproduces every decision.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Event;

pub const REGISTERED: &str = "instance.registered";
pub const DEREGISTERED: &str = "instance.deregistered";
pub const OUT_OF_SERVICE: &str = "instance.out_of_service";
pub const RECOVERED: &str = "instance.recovered";
pub const EXPIRED: &str = "instance.expired";
pub const TAKEN_OFFLINE: &str = "instance.taken_offline";
pub const BROUGHT_ONLINE: &str = "instance.brought_online";

/// Identity of a service instance.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct InstanceKey {
    pub service: String,
    pub instance_id: String,
}

impl InstanceKey {
    pub fn new(service: impl Into<String>, instance_id: impl Into<String>) -> Self {
        InstanceKey {
            service: service.into(),
            instance_id: instance_id.into(),
        }
    }

    /// The log stream that holds this instance's history.
    pub fn stream(&self) -> String {
        format!("instance/{}/{}", self.service, self.instance_id)
    }
}

impl std::fmt::Display for InstanceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.service, self.instance_id)
    }
}

/// An instance registered, or registered again with a changed address or labels. A
/// registration counts as a heartbeat at `registry_time_ms`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceRegistered {
    pub key: InstanceKey,
    pub ip: String,
    pub port: u16,
    pub labels: BTreeMap<String, String>,
    pub registry_time_ms: i64,
    /// `EaseAgent`, `GoSDK` or `None`.
    pub agent_type: String,
}

/// The instance deregistered itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceDeregistered {
    pub key: InstanceKey,
}

/// Why an instance was judged silent: the evidence a liveness transition was decided on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    /// The last heartbeat the daemon saw, or, when it has seen none since it started watching,
    /// the time it started watching (see `heartbeat_seen`).
    pub last_heartbeat_ms: i64,
    /// Whether `last_heartbeat_ms` is a real heartbeat (false: the daemon's start-up grace).
    pub heartbeat_seen: bool,
    /// The deadline that passed: `last_heartbeat_ms` plus the limit in force.
    pub deadline_ms: i64,
    /// When the daemon noticed.
    pub detected_at_ms: i64,
}

/// No heartbeat arrived for 2 × the heartbeat interval: the instance is out of service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceOutOfService {
    pub key: InstanceKey,
    pub silence: Silence,
}

/// Heartbeats resumed after the instance was marked out of service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceRecovered {
    pub key: InstanceKey,
    /// The heartbeat that proved it alive again.
    pub heartbeat_ms: i64,
}

/// No heartbeat for the dead-record time: the instance's record is removed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceExpired {
    pub key: InstanceKey,
    pub silence: Silence,
}

/// An operator took the instance out of service. It stays out, whatever its heartbeats say,
/// until an operator brings it back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceTakenOffline {
    pub key: InstanceKey,
    pub reason: String,
}

/// An operator brought an instance taken offline back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceBroughtOnline {
    pub key: InstanceKey,
}

pub(super) fn samples() -> Vec<Event> {
    let key = InstanceKey::new("order", "order-7d9f-x2k4q");
    let silence = Silence {
        last_heartbeat_ms: 1_795_305_600_000,
        heartbeat_seen: true,
        deadline_ms: 1_795_305_610_000,
        detected_at_ms: 1_795_305_610_250,
    };
    vec![
        Event::InstanceRegistered(InstanceRegistered {
            key: key.clone(),
            ip: "10.0.3.7".into(),
            port: 13001,
            labels: BTreeMap::from([("version".into(), "v2".into())]),
            registry_time_ms: 1_795_305_590_000,
            agent_type: "EaseAgent".into(),
        }),
        Event::InstanceDeregistered(InstanceDeregistered { key: key.clone() }),
        Event::InstanceOutOfService(InstanceOutOfService {
            key: key.clone(),
            silence: silence.clone(),
        }),
        Event::InstanceRecovered(InstanceRecovered {
            key: key.clone(),
            heartbeat_ms: 1_795_305_615_000,
        }),
        Event::InstanceExpired(InstanceExpired {
            key: key.clone(),
            silence,
        }),
        Event::InstanceTakenOffline(InstanceTakenOffline {
            key: key.clone(),
            reason: "draining for maintenance".into(),
        }),
        Event::InstanceBroughtOnline(InstanceBroughtOnline { key }),
    ]
}
