//! What the fence reads from the cluster: namespaces and services (with their labels, for the
//! auto-fence hierarchy and label selectors) and VirtualServices (for destination expansion).
//! Folded from resource events; label-only changes count (Slime's informer dropped them).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `namespace/name` of a Kubernetes object.
pub type ObjectKey = (String, String);

/// The cluster-wide service domain suffix.
pub const CLUSTER_DOMAIN: &str = "svc.cluster.local";

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceInfo {
    pub labels: BTreeMap<String, String>,
    /// `spec.selector`: the pods it fronts (empty for selector-less services).
    pub selector: BTreeMap<String, String>,
    /// Log position of its last change (for `explain`).
    pub position: u64,
}

/// One VirtualService, normalised: `hosts` and route destinations as FQDNs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VirtualServiceInfo {
    pub hosts: Vec<String>,
    pub destinations: BTreeSet<String>,
    pub position: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterView {
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
    pub services: BTreeMap<ObjectKey, ServiceInfo>,
    /// label `k=v` → services carrying it.
    pub label_index: BTreeMap<(String, String), BTreeSet<ObjectKey>>,
    pub virtual_services: BTreeMap<ObjectKey, VirtualServiceInfo>,
    /// host → VirtualServices that list it in `spec.hosts`.
    pub vs_by_host: BTreeMap<String, BTreeSet<ObjectKey>>,
}

impl ClusterView {
    pub fn set_namespace(&mut self, name: &str, labels: BTreeMap<String, String>) {
        self.namespaces.insert(name.to_string(), labels);
    }

    pub fn remove_namespace(&mut self, name: &str) {
        self.namespaces.remove(name);
    }

    /// Record a service; returns the labels it had before (for re-evaluating selectors).
    pub fn set_service(&mut self, key: ObjectKey, info: ServiceInfo) -> BTreeMap<String, String> {
        let old = self.remove_service(&key);
        for pair in &info.labels {
            self.label_index
                .entry((pair.0.clone(), pair.1.clone()))
                .or_default()
                .insert(key.clone());
        }
        self.services.insert(key, info);
        old
    }

    pub fn remove_service(&mut self, key: &ObjectKey) -> BTreeMap<String, String> {
        let Some(old) = self.services.remove(key) else {
            return BTreeMap::new();
        };
        for (k, v) in &old.labels {
            let pair = (k.clone(), v.clone());
            if let Some(set) = self.label_index.get_mut(&pair) {
                set.remove(key);
                if set.is_empty() {
                    self.label_index.remove(&pair);
                }
            }
        }
        old.labels
    }

    /// Services carrying every label of `selector` (an empty selector matches nothing), in key
    /// order.
    pub fn select(&self, selector: &BTreeMap<String, String>) -> Vec<ObjectKey> {
        let mut sets = selector
            .iter()
            .map(|(k, v)| self.label_index.get(&(k.clone(), v.clone())));
        let Some(Some(first)) = sets.next() else {
            return Vec::new();
        };
        let rest: Option<Vec<_>> = sets.collect();
        let Some(rest) = rest else { return Vec::new() };
        first
            .iter()
            .filter(|key| rest.iter().all(|set| set.contains(*key)))
            .cloned()
            .collect()
    }

    /// Record a VirtualService; returns the hosts it had before and has now.
    pub fn set_virtual_service(
        &mut self,
        key: ObjectKey,
        info: VirtualServiceInfo,
    ) -> BTreeSet<String> {
        let mut touched = self.remove_virtual_service(&key);
        for host in &info.hosts {
            touched.insert(host.clone());
            self.vs_by_host
                .entry(host.clone())
                .or_default()
                .insert(key.clone());
        }
        self.virtual_services.insert(key, info);
        touched
    }

    pub fn remove_virtual_service(&mut self, key: &ObjectKey) -> BTreeSet<String> {
        let Some(old) = self.virtual_services.remove(key) else {
            return BTreeSet::new();
        };
        for host in &old.hosts {
            if let Some(set) = self.vs_by_host.get_mut(host) {
                set.remove(key);
                if set.is_empty() {
                    self.vs_by_host.remove(host);
                }
            }
        }
        old.hosts.into_iter().collect()
    }

    /// Where traffic for `host` may really go: the route destinations of every VirtualService
    /// listing it, minus the host itself, sorted. With the VirtualServices that say so.
    pub fn destinations(&self, host: &str) -> BTreeMap<String, Vec<ObjectKey>> {
        let mut out: BTreeMap<String, Vec<ObjectKey>> = BTreeMap::new();
        for vs in self.vs_by_host.get(host).into_iter().flatten() {
            if let Some(info) = self.virtual_services.get(vs) {
                for dest in info.destinations.iter().filter(|d| *d != host) {
                    out.entry(dest.clone()).or_default().push(vs.clone());
                }
            }
        }
        out
    }

    /// Services of one namespace, in name order.
    pub fn services_in<'a>(&'a self, ns: &'a str) -> impl Iterator<Item = &'a ObjectKey> + 'a {
        self.services
            .range((ns.to_string(), String::new())..)
            .take_while(move |(k, _)| k.0 == ns)
            .map(|(k, _)| k)
    }
}

/// The FQDN of a service.
pub fn service_host(ns: &str, name: &str) -> String {
    format!("{name}.{ns}.{CLUSTER_DOMAIN}")
}

/// The namespace of a `<svc>.<ns>.svc.cluster.local` host.
pub fn namespace_of_host(host: &str) -> Option<&str> {
    let rest = host.strip_suffix(CLUSTER_DOMAIN)?.strip_suffix('.')?;
    let (_, ns) = rest.split_once('.')?;
    (!ns.is_empty() && !ns.contains('.')).then_some(ns)
}

/// Normalise a host named in a VirtualService of namespace `ns` the way Istio reads it: a short
/// name is a service of that namespace, `a.b.svc` gets the cluster suffix, anything else is
/// already a full name.
pub fn normalise_vs_host(host: &str, ns: &str) -> String {
    if !host.contains('.') && host != "*" {
        service_host(ns, host)
    } else if host.ends_with(".svc") {
        format!("{host}.cluster.local")
    } else {
        host.to_string()
    }
}

/// Read a Service's body (`{"spec": ...}`).
pub fn service_info(labels: &BTreeMap<String, String>, body: &Value, position: u64) -> ServiceInfo {
    let selector = body["spec"]["selector"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default();
    ServiceInfo {
        labels: labels.clone(),
        selector,
        position,
    }
}

/// Read a VirtualService's body: `spec.hosts` and every `spec.http[].route[].destination.host`
/// (only HTTP routes, as Slime), normalised by the VirtualService's namespace.
pub fn virtual_service_info(ns: &str, body: &Value, position: u64) -> VirtualServiceInfo {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|h| normalise_vs_host(h, ns))
            .collect()
    };
    let mut hosts = strings(&body["spec"]["hosts"]);
    hosts.sort();
    hosts.dedup();
    let destinations = body["spec"]["http"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|http| http["route"].as_array().into_iter().flatten())
        .filter_map(|route| route["destination"]["host"].as_str())
        .map(|h| normalise_vs_host(h, ns))
        .collect();
    VirtualServiceInfo {
        hosts,
        destinations,
        position,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn virtual_service_hosts_are_normalised_by_its_namespace() {
        let vs = virtual_service_info(
            "default",
            &json!({"spec": {"hosts": ["reviews", "reviews.default.svc"],
                "http": [{"route": [{"destination": {"host": "reviews-v2"}},
                                    {"destination": {"host": "ratings.prod.svc.cluster.local"}}]}],
                "tcp": [{"route": [{"destination": {"host": "db"}}]}]}}),
            7,
        );
        assert_eq!(vs.hosts, vec!["reviews.default.svc.cluster.local"]);
        assert_eq!(
            vs.destinations.into_iter().collect::<Vec<_>>(),
            vec![
                "ratings.prod.svc.cluster.local".to_string(),
                "reviews-v2.default.svc.cluster.local".to_string()
            ]
        );
    }

    #[test]
    fn selectors_and_label_changes() {
        let mut view = ClusterView::default();
        let labels = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        let key = ("default".to_string(), "reviews".to_string());
        view.set_service(
            key.clone(),
            ServiceInfo {
                labels: labels(&[("app", "reviews"), ("group", "default")]),
                ..Default::default()
            },
        );
        assert_eq!(
            view.select(&labels(&[("app", "reviews"), ("group", "default")])),
            vec![key.clone()]
        );
        assert!(view
            .select(&labels(&[("app", "reviews"), ("group", "x")]))
            .is_empty());
        assert!(view.select(&BTreeMap::new()).is_empty());
        let old = view.set_service(
            key.clone(),
            ServiceInfo {
                labels: labels(&[("app", "reviews")]),
                ..Default::default()
            },
        );
        assert_eq!(old.len(), 2);
        assert!(view.select(&labels(&[("group", "default")])).is_empty());
        assert_eq!(
            namespace_of_host("reviews.default.svc.cluster.local"),
            Some("default")
        );
        assert_eq!(namespace_of_host("www.example.com"), None);
    }
}
