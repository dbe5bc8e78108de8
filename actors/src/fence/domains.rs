//! One fence's domains (Slime's `status.domains`), computed from its spec, the cluster view,
//! what it learned, and the configuration: a pure function of state.
//!
//! Precedence is defined, not first-writer-wins in map order as in Slime: static hosts that are
//! active, then `<ns>/*` keys, then label-selector matches, then learned dependencies, then
//! static hosts whose deadline passed (EXPIRE). Each name is the host plus its aliases; each
//! domain's hosts are its name plus the destinations VirtualServices route that name to.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::cluster::{namespace_of_host, service_host, ClusterView, ObjectKey};
use super::config::FenceConfig;
use super::learned::Learned;
use super::spec::{FenceSpec, Strategy};

/// Slime's domain status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DomainStatus {
    Active,
    Expire,
    ExpireWait,
}

impl DomainStatus {
    /// Slime's JSON name (ACTIVE is the zero value and omitted in its status).
    pub fn as_str(self) -> &'static str {
        match self {
            DomainStatus::Active => "ACTIVE",
            DomainStatus::Expire => "EXPIRE",
            DomainStatus::ExpireWait => "EXPIREWAIT",
        }
    }

    /// Whether the domain's hosts go into the Sidecar.
    pub fn in_sidecar(self) -> bool {
        self != DomainStatus::Expire
    }
}

/// Why a domain is in the fence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DomainSource {
    /// A `spec.host` entry.
    Static { host: String },
    /// A `<ns>/*` key of `spec.host`.
    Namespace { namespace: String },
    /// A service matched `spec.labelSelector[index]`.
    Selector { index: usize, service: ObjectKey },
    /// A dependency learned from traffic.
    Learned { host: String },
}

/// One entry of `status.domains`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Domain {
    /// The name itself first, then where VirtualServices route it (sorted).
    pub hosts: Vec<String>,
    pub status: DomainStatus,
    pub source: DomainSource,
    /// When this name is an alias (`domainAliases`), the host it was derived from.
    pub alias_of: Option<String>,
}

/// The inputs of one fence's computation.
pub struct Inputs<'a> {
    pub spec: &'a FenceSpec,
    pub config: &'a FenceConfig,
    pub cluster: &'a ClusterView,
    pub learned: Option<&'a BTreeMap<String, Learned>>,
    /// Static hosts whose (current) deadline has been recorded as passed.
    pub passed: Option<&'a BTreeMap<String, i64>>,
}

/// Compute the domains of one fence.
pub fn compute(inputs: &Inputs<'_>) -> BTreeMap<String, Domain> {
    let mut out = BTreeMap::new();
    let spec = inputs.spec;
    let expired = |host: &str, strategy: &Strategy| match strategy {
        Strategy::Stable => false,
        Strategy::Deadline { expire_ms } => inputs
            .passed
            .and_then(|p| p.get(host))
            .is_some_and(|d| d == expire_ms),
    };
    for (host, strategy) in &spec.hosts {
        if !expired(host, strategy) {
            let source = DomainSource::Static { host: host.clone() };
            add_named(&mut out, inputs, host, DomainStatus::Active, &source);
        }
    }
    for ns in &spec.namespaces {
        let key = format!("{ns}/*");
        out.entry(key).or_insert_with(|| Domain {
            hosts: namespace_hosts(inputs, ns),
            status: DomainStatus::Active,
            source: DomainSource::Namespace {
                namespace: ns.clone(),
            },
            alias_of: None,
        });
    }
    for (index, selector) in spec.label_selectors.iter().enumerate() {
        for service in inputs.cluster.select(selector) {
            let host = service_host(&service.0, &service.1);
            let source = DomainSource::Selector { index, service };
            add_named(&mut out, inputs, &host, DomainStatus::Active, &source);
        }
    }
    for (host, learned) in inputs.learned.into_iter().flatten() {
        let status = if learned.idle.is_some() {
            DomainStatus::ExpireWait
        } else {
            DomainStatus::Active
        };
        let source = DomainSource::Learned { host: host.clone() };
        add_named(&mut out, inputs, host, status, &source);
    }
    for (host, strategy) in &spec.hosts {
        if expired(host, strategy) {
            let source = DomainSource::Static { host: host.clone() };
            add_named(&mut out, inputs, host, DomainStatus::Expire, &source);
        }
    }
    out
}

/// Add `host` and each of its aliases, unless a name is already there (earlier inputs win).
fn add_named(
    out: &mut BTreeMap<String, Domain>,
    inputs: &Inputs<'_>,
    host: &str,
    status: DomainStatus,
    source: &DomainSource,
) {
    let aliases = inputs.config.domain_aliases.aliases(host);
    let names = std::iter::once((host.to_string(), None))
        .chain(aliases.into_iter().map(|a| (a, Some(host.to_string()))));
    for (name, alias_of) in names {
        if out.contains_key(&name) {
            continue;
        }
        let mut hosts = vec![name.clone()];
        hosts.extend(inputs.cluster.destinations(&name).into_keys());
        out.insert(
            name,
            Domain {
                hosts,
                status,
                source: source.clone(),
                alias_of,
            },
        );
    }
}

/// The hosts of a `<ns>/*` domain: where VirtualServices route the namespace's services (and
/// their aliases) to, outside the namespace (inside it, `<ns>/*` already covers them).
fn namespace_hosts(inputs: &Inputs<'_>, ns: &str) -> Vec<String> {
    let mut hosts = std::collections::BTreeSet::new();
    for (svc_ns, name) in inputs.cluster.services_in(ns) {
        let host = service_host(svc_ns, name);
        let aliases = inputs.config.domain_aliases.aliases(&host);
        for name in std::iter::once(host).chain(aliases) {
            for dest in inputs.cluster.destinations(&name).into_keys() {
                if namespace_of_host(&dest) != Some(ns) {
                    hosts.insert(dest);
                }
            }
        }
    }
    hosts.into_iter().collect()
}

/// The Sidecar's egress hosts for these domains (Slime's `newSidecar`): the istio and slime
/// namespaces, the configured stable hosts, every host of every domain still in the Sidecar,
/// and the global sidecar where the mode needs it; deduplicated and sorted bytewise.
pub fn egress_hosts(
    fence_namespace: &str,
    domains: &BTreeMap<String, Domain>,
    config: &FenceConfig,
) -> Vec<String> {
    let mut hosts = vec![
        format!("{}/*", config.istio_namespace),
        format!("{}/*", config.slime_namespace),
    ];
    for stable in &config.stable_hosts {
        if stable.ends_with("/*") {
            hosts.push(stable.clone());
        } else {
            hosts.push(format!("*/{stable}"));
        }
    }
    for (key, domain) in domains {
        if !domain.status.in_sidecar() {
            continue;
        }
        if key.ends_with("/*") {
            hosts.push(key.clone());
        }
        hosts.extend(domain.hosts.iter().map(|h| format!("*/{h}")));
    }
    if config.namespace_mode {
        hosts.push(format!(
            "*/{}",
            service_host(fence_namespace, "global-sidecar")
        ));
    } else if !config.cluster_gs_namespace.is_empty()
        && config.cluster_gs_namespace != config.slime_namespace
    {
        hosts.push(format!(
            "*/{}",
            service_host(&config.cluster_gs_namespace, "global-sidecar")
        ));
    }
    hosts.sort();
    hosts.dedup();
    hosts
}
