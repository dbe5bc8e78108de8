//! Every Kubernetes kind meshplane reads or writes: group, version, plural and scope. The
//! RBAC rules of the install manifests are checked against this table (see `tests/deploy.rs`).

use kube::api::ApiResource;
use kube::core::GroupVersionKind;

/// One API kind at the version meshplane uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApiKind {
    /// `v1`, `apps/v1`, `networking.istio.io/v1beta1`.
    pub api_version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub namespaced: bool,
}

impl ApiKind {
    const fn new(
        api_version: &'static str,
        kind: &'static str,
        plural: &'static str,
        namespaced: bool,
    ) -> Self {
        ApiKind {
            api_version,
            kind,
            plural,
            namespaced,
        }
    }

    /// The API group (`""` for the core group).
    pub fn group(&self) -> &'static str {
        self.api_version
            .rsplit_once('/')
            .map_or("", |(group, _)| group)
    }

    pub fn version(&self) -> &'static str {
        self.api_version
            .rsplit_once('/')
            .map_or(self.api_version, |(_, version)| version)
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
            format!("/apis/{}", self.api_version)
        };
        match namespace.filter(|_| self.namespaced) {
            Some(ns) => format!("{base}/namespaces/{ns}/{}", self.plural),
            None => format!("{base}/{}", self.plural),
        }
    }
}

pub const NAMESPACE: ApiKind = ApiKind::new("v1", "Namespace", "namespaces", false);
pub const NODE: ApiKind = ApiKind::new("v1", "Node", "nodes", false);
pub const SERVICE: ApiKind = ApiKind::new("v1", "Service", "services", true);
pub const ENDPOINTS: ApiKind = ApiKind::new("v1", "Endpoints", "endpoints", true);
pub const ENDPOINT_SLICE: ApiKind = ApiKind::new(
    "discovery.k8s.io/v1",
    "EndpointSlice",
    "endpointslices",
    true,
);
pub const POD: ApiKind = ApiKind::new("v1", "Pod", "pods", true);
pub const CONFIG_MAP: ApiKind = ApiKind::new("v1", "ConfigMap", "configmaps", true);
pub const DEPLOYMENT: ApiKind = ApiKind::new("apps/v1", "Deployment", "deployments", true);
pub const STATEFUL_SET: ApiKind = ApiKind::new("apps/v1", "StatefulSet", "statefulsets", true);
pub const VIRTUAL_SERVICE: ApiKind = ApiKind::new(
    "networking.istio.io/v1beta1",
    "VirtualService",
    "virtualservices",
    true,
);
pub const SIDECAR: ApiKind =
    ApiKind::new("networking.istio.io/v1beta1", "Sidecar", "sidecars", true);
pub const ENVOY_FILTER: ApiKind = ApiKind::new(
    "networking.istio.io/v1alpha3",
    "EnvoyFilter",
    "envoyfilters",
    true,
);
pub const SERVICE_FENCE: ApiKind = ApiKind::new(
    "microservice.slime.io/v1alpha1",
    "ServiceFence",
    "servicefences",
    true,
);
pub const SLIME_BOOT: ApiKind = ApiKind::new(
    "config.netease.com/v1alpha1",
    "SlimeBoot",
    "slimeboots",
    true,
);
pub const EVENT: ApiKind = ApiKind::new("v1", "Event", "events", true);
pub const LEASE: ApiKind = ApiKind::new("coordination.k8s.io/v1", "Lease", "leases", true);

/// The kinds the watchers observe, in the order they start.
pub const WATCHED: &[ApiKind] = &[
    NAMESPACE,
    NODE,
    SERVICE,
    ENDPOINTS,
    ENDPOINT_SLICE,
    POD,
    DEPLOYMENT,
    STATEFUL_SET,
    VIRTUAL_SERVICE,
    SERVICE_FENCE,
    SLIME_BOOT,
];

/// The kinds the projections can desire (what the applier may create, patch and delete).
pub const WRITTEN: &[ApiKind] = &[
    NAMESPACE,
    CONFIG_MAP,
    SERVICE,
    ENDPOINTS,
    DEPLOYMENT,
    STATEFUL_SET,
    VIRTUAL_SERVICE,
    SIDECAR,
    ENVOY_FILTER,
    SERVICE_FENCE,
];

/// The table entry of a kind meshplane writes, by kind name (the version is meshplane's).
pub fn written(kind: &str) -> Option<&'static ApiKind> {
    WRITTEN.iter().find(|k| k.kind == kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_api_server_layout() {
        assert_eq!(
            POD.collection_path(Some("shop")),
            "/api/v1/namespaces/shop/pods"
        );
        assert_eq!(NAMESPACE.collection_path(Some("x")), "/api/v1/namespaces");
        assert_eq!(
            SIDECAR.collection_path(Some("shop")),
            "/apis/networking.istio.io/v1beta1/namespaces/shop/sidecars"
        );
        assert_eq!(
            DEPLOYMENT.collection_path(None),
            "/apis/apps/v1/deployments"
        );
        assert_eq!(ENDPOINT_SLICE.group(), "discovery.k8s.io");
        assert_eq!(ENDPOINT_SLICE.version(), "v1");
        assert_eq!(SERVICE.group(), "");
    }

    /// The install manifests grant exactly what the adapter does: every watched kind can be
    /// listed and watched, every written kind applied and deleted, Events created, Leases
    /// taken; and nothing is granted for a kind the adapter never touches.
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
        for kind in WATCHED {
            for verb in ["get", "list", "watch"] {
                assert!(grants(kind, kind.plural, verb), "{verb} {}", kind.plural);
            }
        }
        for kind in WRITTEN {
            for verb in ["get", "list", "patch", "delete"] {
                assert!(grants(kind, kind.plural, verb), "{verb} {}", kind.plural);
            }
        }
        assert!(grants(&SERVICE_FENCE, "servicefences/status", "patch"));
        assert!(grants(&EVENT, "events", "create"));
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
                    WATCHED
                        .iter()
                        .chain(WRITTEN)
                        .chain([&EVENT])
                        .any(|k| k.plural == plural),
                    "{resource} is granted but never used"
                );
            }
        }
    }

    #[test]
    fn every_projected_kind_can_be_written() {
        for kind in actors::resource::kinds::KINDS
            .iter()
            .filter(|k| k.projection != actors::resource::kinds::Projection::Configuration)
        {
            assert!(
                written(kind.kind).is_some(),
                "{} is not writable",
                kind.kind
            );
        }
        assert!(written("Sidecar").is_some());
        assert!(written("EnvoyFilter").is_some());
    }
}
