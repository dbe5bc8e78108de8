//! Events of the fence concept (Slime lazyload): dependencies a fenced service was seen
//! calling, and their ageing out.
//!
//! ServiceFences, the lazyload configuration and the cluster objects the fence reads
//! (namespaces, services, VirtualServices) are resources (`resource.applied`); the events here
//! are what the fence learns on its own. A sighting that repeats a fresh dependency is not an
//! event: only the first sighting, a refresh once the last one is older than the refresh
//! window, and the transitions of ageing (idle → forgotten) are, each with its evidence.

use serde::{Deserialize, Serialize};

use super::Event;

pub const DEPENDENCY_LEARNED: &str = "fence.dependency_learned";
pub const DEPENDENCY_SEEN: &str = "fence.dependency_seen";
pub const DEPENDENCY_IDLE: &str = "fence.dependency_idle";
pub const DEPENDENCY_FORGOTTEN: &str = "fence.dependency_forgotten";
pub const HOST_DEADLINE_PASSED: &str = "fence.host_deadline_passed";

/// Identity of a ServiceFence (and of its Sidecar): namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FenceKey {
    pub namespace: String,
    pub name: String,
}

impl FenceKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        FenceKey {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The log stream that holds what this fence learned.
    pub fn stream(&self) -> String {
        format!("fence/{}/{}", self.namespace, self.name)
    }
}

impl std::fmt::Display for FenceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Where a sighting came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Via {
    /// The global sidecar's access log (Envoy ALS, or JSON lines).
    AccessLog,
    /// A Prometheus query.
    Prometheus,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::AccessLog => "accesslog",
            Via::Prometheus => "prometheus",
        }
    }
}

/// A fenced service was seen calling `host` for the first time (or again after it was
/// forgotten).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DependencyLearned {
    pub fence: FenceKey,
    /// The normalised destination host (`details.default.svc.cluster.local`).
    pub host: String,
    pub seen_at_ms: i64,
    pub via: Via,
    /// How the caller was identified: `10.1.2.3 → default/productpage`, `header`, or the
    /// Prometheus handler's name.
    pub source: String,
    /// The destination as the source reported it (`details:9080`).
    pub raw: String,
}

/// A known dependency was seen again after its last sighting fell out of the refresh window,
/// or while it was idle (which makes it active again).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DependencySeen {
    pub fence: FenceKey,
    pub host: String,
    pub seen_at_ms: i64,
    pub via: Via,
}

/// Why a dependency moved on: its last sighting, the deadline that passed, and when that was
/// noticed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ageing {
    pub last_seen_ms: i64,
    pub deadline_ms: i64,
    pub detected_at_ms: i64,
}

/// Unseen for the dependency TTL: the dependency waits (still in the Sidecar) for the grace
/// period before it is forgotten (Slime's EXPIREWAIT).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DependencyIdle {
    pub fence: FenceKey,
    pub host: String,
    pub ageing: Ageing,
}

/// Still unseen after the grace period: removed from the fence and its Sidecar.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DependencyForgotten {
    pub fence: FenceKey,
    pub host: String,
    pub ageing: Ageing,
}

/// A static `spec.host` entry with a `deadline` strategy passed its deadline (status EXPIRE).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostDeadlinePassed {
    pub fence: FenceKey,
    pub host: String,
    pub deadline_ms: i64,
    pub detected_at_ms: i64,
}

pub(super) fn samples() -> Vec<Event> {
    let fence = FenceKey::new("default", "productpage");
    let ageing = Ageing {
        last_seen_ms: 1_795_305_600_000,
        deadline_ms: 1_795_392_000_000,
        detected_at_ms: 1_795_392_000_400,
    };
    vec![
        Event::DependencyLearned(DependencyLearned {
            fence: fence.clone(),
            host: "details.default.svc.cluster.local".into(),
            seen_at_ms: 1_795_305_600_000,
            via: Via::AccessLog,
            source: "10.1.2.3 → default/productpage".into(),
            raw: "details:9080".into(),
        }),
        Event::DependencySeen(DependencySeen {
            fence: fence.clone(),
            host: "details.default.svc.cluster.local".into(),
            seen_at_ms: 1_795_305_660_000,
            via: Via::Prometheus,
        }),
        Event::DependencyIdle(DependencyIdle {
            fence: fence.clone(),
            host: "details.default.svc.cluster.local".into(),
            ageing: ageing.clone(),
        }),
        Event::DependencyForgotten(DependencyForgotten {
            fence: fence.clone(),
            host: "details.default.svc.cluster.local".into(),
            ageing,
        }),
        Event::HostDeadlinePassed(HostDeadlinePassed {
            fence,
            host: "www.example.com".into(),
            deadline_ms: 1_782_433_233_000,
            detected_at_ms: 1_782_433_233_120,
        }),
    ]
}
