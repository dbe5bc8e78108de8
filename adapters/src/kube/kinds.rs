//! The kind table ([`actors::kinds`]) as the Kubernetes client needs it: kube's
//! `ApiResource` and the API server's paths, for the kinds meshplane watches and writes.
//! Nothing here lists kinds: which are watched, written, or have their status written is the
//! table's to say.

use std::ops::Deref;

use actors::kinds::{self, KindSpec};
use kube::api::ApiResource;
use kube::core::GroupVersionKind;

/// One kind of the table, at the version meshplane lists and watches it at.
#[derive(Clone, Copy, Debug)]
pub struct ApiKind(&'static KindSpec);

impl Deref for ApiKind {
    type Target = KindSpec;

    fn deref(&self) -> &KindSpec {
        self.0
    }
}

impl ApiKind {
    pub const fn new(spec: &'static KindSpec) -> Self {
        ApiKind(spec)
    }

    /// The table's kind named exactly `kind`.
    pub fn named(kind: &str) -> Option<Self> {
        kinds::get(kind).map(ApiKind)
    }

    pub fn spec(&self) -> &'static KindSpec {
        self.0
    }

    /// kube's description of the resource, for dynamic `Api`s.
    pub fn api_resource(&self) -> ApiResource {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(self.group(), self.version(), self.kind),
            self.plural,
        )
    }

    /// The collection path, as the API server serves it (`/api/v1/namespaces/ns/pods`,
    /// `/apis/apps/v1/deployments`).
    pub fn collection_path(&self, namespace: Option<&str>) -> String {
        let base = if self.group().is_empty() {
            format!("/api/{}", self.version())
        } else {
            format!("/apis/{}", self.api_version())
        };
        match namespace.filter(|_| self.namespaced) {
            Some(ns) => format!("{base}/namespaces/{ns}/{}", self.plural),
            None => format!("{base}/{}", self.plural),
        }
    }
}

/// The kinds the watchers observe, in the order they start.
pub fn watched() -> Vec<ApiKind> {
    kinds::watched().map(ApiKind).collect()
}

/// The kinds the projections can desire (what the applier may create, patch and delete).
pub fn written_kinds() -> impl Iterator<Item = ApiKind> {
    kinds::written().map(ApiKind)
}

/// The kind meshplane writes named exactly `kind`.
pub fn written(kind: &str) -> Option<ApiKind> {
    written_kinds().find(|k| k.kind == kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(name: &str) -> ApiKind {
        ApiKind::named(name).unwrap()
    }

    #[test]
    fn paths_follow_the_api_server_layout() {
        assert_eq!(
            kind("Pod").collection_path(Some("shop")),
            "/api/v1/namespaces/shop/pods"
        );
        assert_eq!(
            kind("Namespace").collection_path(Some("x")),
            "/api/v1/namespaces"
        );
        assert_eq!(
            kind("Sidecar").collection_path(Some("shop")),
            "/apis/networking.istio.io/v1beta1/namespaces/shop/sidecars"
        );
        assert_eq!(
            kind("Deployment").collection_path(None),
            "/apis/apps/v1/deployments"
        );
        // Listed and watched at the table's list version.
        assert_eq!(
            kind("VirtualService").collection_path(None),
            "/apis/networking.istio.io/v1beta1/virtualservices"
        );
        let resource = kind("EndpointSlice").api_resource();
        assert_eq!(
            (resource.group.as_str(), resource.version.as_str()),
            ("discovery.k8s.io", "v1")
        );
        assert_eq!(resource.plural, "endpointslices");
        assert_eq!(kind("Service").api_resource().api_version, "v1");
    }

    #[test]
    fn the_adapter_watches_and_writes_what_the_table_says() {
        let watched: Vec<&str> = watched().iter().map(|k| k.kind).collect();
        assert_eq!(
            watched,
            [
                "Namespace",
                "Service",
                "Deployment",
                "StatefulSet",
                "Endpoints",
                "ServiceFence",
                "VirtualService",
                "SlimeBoot",
                "Pod",
                "Node",
                "EndpointSlice"
            ]
        );
        let written: Vec<&str> = written_kinds().map(|k| k.kind).collect();
        assert_eq!(
            written,
            [
                "Namespace",
                "ConfigMap",
                "Service",
                "Deployment",
                "StatefulSet",
                "Endpoints",
                "ServiceFence",
                "VirtualService",
                "Sidecar",
                "EnvoyFilter"
            ]
        );
        assert!(super::written("SlimeBoot").is_none());
        assert!(super::written("Pod").is_none());
    }

    /// The install manifests grant exactly what the adapter does: every watched kind can be
    /// listed and watched, every written kind applied and deleted, ServiceFence status
    /// patched, Events created, Leases taken; and nothing is granted for a kind the adapter
    /// never touches.
    #[test]
    fn the_cluster_role_grants_what_the_adapter_uses() {
        let rules = projections::install::rules();
        let grants = |kind: &ApiKind, resource: &str, verb: &str| {
            rules.iter().any(|r| {
                r.api_groups.iter().flatten().any(|g| g == kind.group())
                    && r.resources.iter().flatten().any(|x| x == resource)
                    && r.verbs.iter().any(|v| v == verb)
            })
        };
        for kind in watched() {
            for verb in ["get", "list", "watch"] {
                assert!(grants(&kind, kind.plural, verb), "{verb} {}", kind.plural);
            }
        }
        for kind in written_kinds() {
            for verb in ["get", "list", "patch", "delete"] {
                assert!(grants(&kind, kind.plural, verb), "{verb} {}", kind.plural);
            }
        }
        assert!(grants(
            &kind("ServiceFence"),
            "servicefences/status",
            "patch"
        ));
        assert!(grants(&kind("Event"), "events", "create"));
        let lease = projections::install::lease_role("meshplane");
        let lease_rules = lease.rules.unwrap();
        for verb in ["get", "create", "update"] {
            assert!(
                lease_rules[0].verbs.iter().any(|v| v == verb),
                "{verb} leases"
            );
        }
        // Nothing beyond the table.
        for r in &rules {
            for resource in r.resources.iter().flatten() {
                let plural = resource.split('/').next().unwrap_or_default();
                assert!(
                    watched()
                        .into_iter()
                        .chain(written_kinds())
                        .chain([kind("Event")])
                        .any(|k| k.plural == plural),
                    "{resource} is granted but never used"
                );
            }
        }
    }
}
