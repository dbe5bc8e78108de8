//! Why each egress host of a fence's Sidecar is there: for every host, the inputs that put it
//! there, each with the log position (and time, for learned dependencies) of its evidence.

use events::schema::FenceKey;
use serde::Serialize;

use super::cluster::ObjectKey;
use super::domains::DomainSource;
use super::{FenceState, Origin};

/// One reason for an egress host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// The istio or slime namespace: always present.
    MeshNamespace { namespace: String },
    /// `stableHost` in the lazyload configuration.
    StableHost,
    /// The global sidecar's service (namespace mode, or a separate cluster gs namespace).
    GlobalSidecar,
    /// A `spec.host` entry (or a `<ns>/*` key) of the ServiceFence, last changed at `position`
    /// (0 for an auto-created fence).
    Static { host: String, position: u64 },
    /// A service matched `spec.labelSelector[index]`; the service last changed at `position`.
    Selector {
        index: usize,
        service: String,
        position: u64,
    },
    /// A dependency learned from traffic.
    Learned {
        host: String,
        via: String,
        source: String,
        raw: String,
        learned_position: u64,
        first_seen_ms: i64,
        last_position: u64,
        last_seen_ms: i64,
        refreshes: u64,
        /// EXPIREWAIT: the position of the event that made it idle.
        idle_position: Option<u64>,
    },
    /// The name is an alias (`domainAliases`) of `of`.
    Alias { of: String },
    /// A VirtualService routes `host` here; it last changed at `position`.
    VirtualService {
        host: String,
        virtual_service: String,
        position: u64,
    },
}

/// The reasons for one egress host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EgressHost {
    pub host: String,
    pub reasons: Vec<Reason>,
}

/// Explain every egress host of a fence's Sidecar; `None` when the fence does not exist.
pub fn explain(state: &FenceState, key: &FenceKey) -> Option<Vec<EgressHost>> {
    let view = state.fences.get(key)?;
    let config = &state.config;
    let fence_position = match view.origin {
        Origin::Manual { position } => position,
        Origin::Auto { .. } => 0,
    };
    let hosts = state.egress_hosts(key)?;
    let mut out = Vec::with_capacity(hosts.len());
    for host in hosts {
        let mut reasons = Vec::new();
        for ns in [&config.istio_namespace, &config.slime_namespace] {
            if host == format!("{ns}/*") {
                reasons.push(Reason::MeshNamespace {
                    namespace: ns.clone(),
                });
            }
        }
        if config
            .stable_hosts
            .iter()
            .any(|s| *s == host || format!("*/{s}") == host)
        {
            reasons.push(Reason::StableHost);
        }
        if host.starts_with("*/global-sidecar.") {
            reasons.push(Reason::GlobalSidecar);
        }
        let bare = host.strip_prefix("*/");
        for (name, domain) in &view.domains {
            if !domain.status.in_sidecar() {
                continue;
            }
            let is_key = name == &host && name.ends_with("/*");
            let is_name = bare == Some(name.as_str());
            let via_vs = bare.filter(|b| !is_name && domain.hosts.iter().any(|h| h == b));
            if !(is_key || is_name || via_vs.is_some()) {
                continue;
            }
            let source = source_reason(state, key, &domain.source, fence_position);
            if is_key || is_name {
                if let Some(of) = &domain.alias_of {
                    reasons.push(Reason::Alias { of: of.clone() });
                }
                reasons.push(source);
            } else if let Some(dest) = via_vs {
                let routes = state.cluster.destinations(name);
                for vs in routes.get(dest).into_iter().flatten() {
                    reasons.push(vs_reason(state, name, vs));
                }
                reasons.push(source);
            }
        }
        reasons.dedup();
        out.push(EgressHost { host, reasons });
    }
    Some(out)
}

fn source_reason(
    state: &FenceState,
    key: &FenceKey,
    source: &DomainSource,
    fence_position: u64,
) -> Reason {
    match source {
        DomainSource::Static { host } => Reason::Static {
            host: host.clone(),
            position: fence_position,
        },
        DomainSource::Namespace { namespace } => Reason::Static {
            host: format!("{namespace}/*"),
            position: fence_position,
        },
        DomainSource::Selector { index, service } => Reason::Selector {
            index: *index,
            service: format!("{}/{}", service.0, service.1),
            position: state
                .cluster
                .services
                .get(service)
                .map(|s| s.position)
                .unwrap_or(0),
        },
        DomainSource::Learned { host } => match state.learned.get(key).and_then(|m| m.get(host)) {
            Some(l) => Reason::Learned {
                host: host.clone(),
                via: l.via.as_str().to_string(),
                source: l.source.clone(),
                raw: l.raw.clone(),
                learned_position: l.learned_position,
                first_seen_ms: l.first_seen_ms,
                last_position: l.last_position,
                last_seen_ms: l.last_seen_ms,
                refreshes: l.refreshes,
                idle_position: l.idle.as_ref().map(|(_, p)| *p),
            },
            None => Reason::Static {
                host: host.clone(),
                position: 0,
            },
        },
    }
}

fn vs_reason(state: &FenceState, host: &str, vs: &ObjectKey) -> Reason {
    Reason::VirtualService {
        host: host.to_string(),
        virtual_service: format!("{}/{}", vs.0, vs.1),
        position: state
            .cluster
            .virtual_services
            .get(vs)
            .map(|v| v.position)
            .unwrap_or(0),
    }
}
