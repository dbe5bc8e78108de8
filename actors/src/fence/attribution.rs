//! Who called, and what: the access-log attribution of the fence concept.
//!
//! The caller's address → the services whose Endpoints list it (ready or not: calls made while
//! a pod starts count too, Slime #420), kept as the fence's [`Memory`](crate::Concept::Memory)
//! in step with the log; and the destination normalised by Slime's rules (short names complete
//! with the caller's namespace). Pure: the daemon's intake and the simulator run this one copy.

use std::collections::BTreeMap;
use std::net::IpAddr;

use events::schema::{FenceKey, ResourceKey};
use events::Event;
use serde_json::Value;

use super::cluster::service_host;
use super::spec::check_host;
use crate::Mesh;

/// `namespace/name` of a service.
pub type ServiceKey = (String, String);

/// One HTTP access-log entry, as the intake needs it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AccessLogEntry {
    /// The caller's address (Envoy's `downstream_direct_remote_address`, falling back to
    /// `downstream_remote_address`), without the port. Empty when the entry had none.
    pub downstream_ip: String,
    /// Envoy's upstream cluster, e.g. `inbound|9080||` for the global sidecar's inbound log.
    pub upstream_cluster: String,
    /// The request's `:authority` (Host), possibly with a port: `details:9080`.
    pub authority: String,
    /// An explicit caller, `namespace/service`, when the source named one (request header
    /// `x-meshplane-source`, or the JSON field `source`). It wins over address attribution.
    pub source: Option<String>,
    /// When the request started, in Unix milliseconds (0 when the source did not say).
    pub start_time_ms: i64,
}

/// The address → service table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attribution {
    /// ip → services listing it.
    by_ip: BTreeMap<String, Vec<ServiceKey>>,
    /// Endpoints object → the ips it lists (to undo on change).
    listed: BTreeMap<ServiceKey, Vec<String>>,
}

impl Attribution {
    /// Build from every Endpoints of a folded state: applied through meshplane, or observed
    /// in the cluster.
    pub fn from_mesh(mesh: &Mesh) -> Self {
        let mut me = Attribution::default();
        for (key, r) in mesh.resources.list("Endpoints", None) {
            let body: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
            me.set(key, &body);
        }
        for (key, o) in mesh.cluster.of_kind("Endpoints") {
            let body: Value = serde_json::from_str(&o.body).unwrap_or(Value::Null);
            me.set(key, &body);
        }
        me
    }

    /// Follow one durable event.
    pub fn follow(&mut self, event: &Event) {
        match event {
            Event::ResourceApplied(e) if e.key.kind == "Endpoints" => {
                let body: Value = serde_json::from_str(&e.body).unwrap_or(Value::Null);
                self.set(&e.key, &body);
            }
            Event::ResourceDeleted(e) if e.key.kind == "Endpoints" => self.remove(&e.key),
            Event::ObjectObserved(e) if e.key.kind == "Endpoints" => {
                let body: Value = serde_json::from_str(&e.body).unwrap_or(Value::Null);
                self.set(&e.key, &body);
            }
            Event::ObjectGone(e) if e.key.kind == "Endpoints" => self.remove(&e.key),
            _ => {}
        }
    }

    fn set(&mut self, key: &ResourceKey, body: &Value) {
        let service = (key.namespace.clone(), key.name.clone());
        let mut ips: Vec<String> = body["subsets"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|s| {
                let ready = s["addresses"].as_array().into_iter().flatten();
                let not_ready = s["notReadyAddresses"].as_array().into_iter().flatten();
                ready.chain(not_ready)
            })
            .filter_map(|a| a["ip"].as_str().map(str::to_string))
            .collect();
        ips.sort();
        ips.dedup();
        self.unlist(&service);
        for ip in &ips {
            let services = self.by_ip.entry(ip.clone()).or_default();
            services.push(service.clone());
            services.sort();
        }
        self.listed.insert(service, ips);
    }

    fn remove(&mut self, key: &ResourceKey) {
        let service = (key.namespace.clone(), key.name.clone());
        self.unlist(&service);
        self.listed.remove(&service);
    }

    fn unlist(&mut self, service: &ServiceKey) {
        let Some(ips) = self.listed.get(service).cloned() else {
            return;
        };
        for ip in ips {
            if let Some(services) = self.by_ip.get_mut(&ip) {
                services.retain(|s| s != service);
                if services.is_empty() {
                    self.by_ip.remove(&ip);
                }
            }
        }
    }
}

/// Read access to the table.
pub trait Lookup {
    /// The services an address belongs to, in key order.
    fn services_of(&self, ip: &str) -> &[ServiceKey];
    /// Whether the service `namespace/name` has Endpoints (completes `name.namespace`).
    fn has_service(&self, namespace: &str, name: &str) -> bool;
}

impl Lookup for Attribution {
    fn services_of(&self, ip: &str) -> &[ServiceKey] {
        self.by_ip.get(ip).map(Vec::as_slice).unwrap_or(&[])
    }

    fn has_service(&self, namespace: &str, name: &str) -> bool {
        // Endpoints keys are few compared with entries; a temporary key per lookup is cheap.
        self.listed
            .contains_key(&(namespace.to_string(), name.to_string()))
    }
}

/// Where a sighting goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attributed {
    pub fence: FenceKey,
    pub host: String,
    /// How the caller was identified (`10.0.0.1 → default/productpage`, `header → ...`).
    pub source: String,
    /// The destination as reported (`details:9080`).
    pub raw: String,
}

/// Why an entry yields no sighting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    NotInbound,
    UnknownSource,
    UnknownDestination,
}

/// Attribute one entry: the fences of its callers and the destination host for each (short
/// names complete with the caller's namespace, so callers in two namespaces can differ).
pub fn attribute(
    entry: &AccessLogEntry,
    lookup: &dyn Lookup,
    out: &mut Vec<Attributed>,
) -> Result<(), Skip> {
    let mut parts = entry.upstream_cluster.split('|');
    let direction = parts.next();
    if direction != Some("inbound") || parts.count() != 3 {
        return Err(Skip::NotInbound);
    }
    let authority = entry.authority.trim();
    let host = strip_port(authority).to_ascii_lowercase();
    if host.is_empty() || host.parse::<IpAddr>().is_ok() {
        return Err(Skip::UnknownDestination);
    }
    let explicit;
    let (callers, how): (&[(String, String)], String) = match entry.source.as_deref() {
        Some(source) => {
            let Some((ns, name)) = source.split_once('/') else {
                return Err(Skip::UnknownSource);
            };
            explicit = [(ns.to_string(), name.to_string())];
            (&explicit, "header".to_string())
        }
        None => {
            let callers = lookup.services_of(&entry.downstream_ip);
            (callers, entry.downstream_ip.clone())
        }
    };
    if callers.is_empty() {
        return Err(Skip::UnknownSource);
    }
    let start = out.len();
    for (ns, name) in callers {
        let Some(full) = normalise(&host, ns, lookup) else {
            continue;
        };
        out.push(Attributed {
            fence: FenceKey::new(ns, name),
            host: full,
            source: format!("{how} → {ns}/{name}"),
            raw: authority.to_string(),
        });
    }
    if out.len() == start {
        return Err(Skip::UnknownDestination);
    }
    Ok(())
}

/// `details:9080` → `details`; `[::1]:80` → `::1`.
fn strip_port(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => authority,
    }
}

/// Slime's normalisation by label count, then the host checks (no `unknown`, no global
/// sidecar: it is in every Sidecar already).
fn normalise(host: &str, caller_ns: &str, lookup: &dyn Lookup) -> Option<String> {
    // The placeholder `unknown` (Istio's; Slime's `isValidHost` refuses it): checked before a
    // short name is completed, which would make it `unknown.<ns>.svc.cluster.local`, a host
    // `check_host` accepts.
    if host == "unknown" {
        return None;
    }
    let labels: Vec<&str> = host.split('.').collect();
    let full = match labels.as_slice() {
        [name] => service_host(caller_ns, name),
        [name, ns] | [name, ns, "svc"] if lookup.has_service(ns, name) => service_host(ns, name),
        _ => host.to_string(),
    };
    if check_host(&full).is_err() || full.starts_with("global-sidecar.") {
        return None;
    }
    Some(full)
}

#[cfg(test)]
mod tests {
    use super::*;
    use events::schema::ResourceApplied;

    fn lookup() -> Attribution {
        let mut a = Attribution::default();
        for (ns, name, ip) in [
            ("default", "productpage", "10.0.0.1"),
            ("default", "details", "10.0.0.2"),
            ("prod", "productpage", "10.0.0.1"),
        ] {
            let body = serde_json::json!({"subsets": [{"addresses": [{"ip": ip}]}]});
            a.follow(&Event::ResourceApplied(ResourceApplied {
                key: ResourceKey::new("Endpoints", ns, name),
                api_version: "v1".into(),
                labels: Default::default(),
                annotations: Default::default(),
                body: body.to_string(),
            }));
        }
        a
    }

    fn entry(ip: &str, cluster: &str, authority: &str) -> AccessLogEntry {
        AccessLogEntry {
            downstream_ip: ip.into(),
            upstream_cluster: cluster.into(),
            authority: authority.into(),
            source: None,
            start_time_ms: 0,
        }
    }

    fn run(e: &AccessLogEntry) -> Result<Vec<(String, String)>, Skip> {
        let a = lookup();
        let mut out = Vec::new();
        attribute(e, &a, &mut out)?;
        Ok(out
            .into_iter()
            .map(|a| (a.fence.to_string(), a.host))
            .collect())
    }

    #[test]
    fn short_names_complete_with_each_callers_namespace() {
        let got = run(&entry("10.0.0.1", "inbound|9080||", "details:9080")).unwrap();
        assert_eq!(
            got,
            vec![
                (
                    "default/productpage".into(),
                    "details.default.svc.cluster.local".into()
                ),
                (
                    "prod/productpage".into(),
                    "details.prod.svc.cluster.local".into()
                ),
            ]
        );
    }

    #[test]
    fn two_and_three_label_names_complete_only_for_known_services() {
        let got = run(&entry("10.0.0.2", "inbound|80||", "details.default")).unwrap();
        assert_eq!(got[0].1, "details.default.svc.cluster.local");
        let got = run(&entry("10.0.0.2", "inbound|80||", "details.default.svc:80")).unwrap();
        assert_eq!(got[0].1, "details.default.svc.cluster.local");
        let got = run(&entry("10.0.0.2", "inbound|80||", "example.com")).unwrap();
        assert_eq!(got[0].1, "example.com");
    }

    #[test]
    fn skips_are_classified() {
        assert_eq!(
            run(&entry("10.0.0.1", "outbound|9080||details", "details")),
            Err(Skip::NotInbound)
        );
        assert_eq!(
            run(&entry("10.0.0.1", "inbound|9080", "details")),
            Err(Skip::NotInbound)
        );
        assert_eq!(
            run(&entry("10.9.9.9", "inbound|9080||", "details")),
            Err(Skip::UnknownSource)
        );
        assert_eq!(
            run(&entry("10.0.0.1", "inbound|9080||", "10.0.0.2:9080")),
            Err(Skip::UnknownDestination)
        );
        assert_eq!(
            run(&entry("10.0.0.1", "inbound|9080||", "unknown")),
            Err(Skip::UnknownDestination)
        );
        assert_eq!(
            run(&entry("10.0.0.1", "inbound|9080||", "")),
            Err(Skip::UnknownDestination)
        );
        assert_eq!(
            run(&entry(
                "10.0.0.1",
                "inbound|9080||",
                "global-sidecar.mesh-operator.svc.cluster.local"
            )),
            Err(Skip::UnknownDestination)
        );
    }

    #[test]
    fn an_explicit_source_wins_over_the_address() {
        let mut e = entry("10.9.9.9", "inbound|9080||", "reviews:9080");
        e.source = Some("shop/cart".into());
        assert_eq!(
            run(&e).unwrap(),
            vec![("shop/cart".into(), "reviews.shop.svc.cluster.local".into())]
        );
        e.source = Some("no-slash".into());
        assert_eq!(run(&e), Err(Skip::UnknownSource));
    }
}
