//! The fence's Kubernetes objects: one Istio Sidecar per enabled fence (egress narrowed to what
//! the fence knows, owned by its ServiceFence), every ServiceFence with its status in Slime's
//! shape (manual ones as applied, auto-created ones generated with Slime's labels), and the
//! global-sidecar fallback EnvoyFilter rendered from `wormholePort` and `dispatches`.

use std::collections::BTreeMap;

use std::ops::Bound::{Excluded, Unbounded};

use actors::fence::kinds::{ENVOY_FILTER, SERVICE_FENCE, SIDECAR};
use actors::fence::{config::FenceConfig, FenceState, FenceView, Fences, Origin};
use actors::fence::{CREATED_BY_LABEL, CREATED_BY_VALUE, SERVICE_FENCE_KIND};
use events::schema::{FenceKey, ResourceKey};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde_json::{json, Value};

use crate::concept::{DesiredItem, Projection, Targets};
use crate::object::{CustomObject, KubeObject, ObjectRef, MANAGED_BY_LABEL, MANAGER};
pub use crate::objects::istio::*;
pub use crate::objects::slime::*;

/// The versions the fence's objects are rendered at (the kind table's).
pub const SIDECAR_API_VERSION: &str = SIDECAR.api_versions[0];
pub const ENVOY_FILTER_API_VERSION: &str = ENVOY_FILTER.api_versions[0];
pub const SERVICE_FENCE_API_VERSION: &str = SERVICE_FENCE.api_versions[0];
/// Name of the fallback EnvoyFilter (Slime's chart).
pub const FALLBACK_FILTER_NAME: &str = "to-global-sidecar";
/// Istio's passthrough cluster, and Slime's placeholder for the global sidecar's cluster.
pub const PASSTHROUGH_CLUSTER: &str = "PassthroughCluster";
pub const GLOBAL_SIDECAR_PLACEHOLDER: &str = "_GLOBAL_SIDECAR";

fn managed_meta(namespace: &str, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: Some(namespace.to_string()),
        labels: Some(BTreeMap::from([(
            MANAGED_BY_LABEL.to_string(),
            MANAGER.to_string(),
        )])),
        ..ObjectMeta::default()
    }
}

fn object_ref(api_version: &str, kind: &str, namespace: &str, name: &str) -> ObjectRef {
    ObjectRef {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
        namespace: namespace.to_string(),
        name: name.to_string(),
    }
}

/// The Sidecar of one fence, if it has one.
pub fn sidecar(state: &FenceState, key: &FenceKey) -> Option<Sidecar> {
    let view = state.fences.get(key)?;
    if !view.has_sidecar() {
        return None;
    }
    let mut metadata = managed_meta(&key.namespace, &key.name);
    // The uid is the cluster's: the Kubernetes adapter fills it in from the observed
    // ServiceFence before applying, so garbage collection removes the Sidecar with its fence.
    metadata.owner_references = Some(vec![OwnerReference {
        api_version: SERVICE_FENCE_API_VERSION.into(),
        kind: SERVICE_FENCE_KIND.into(),
        name: key.name.clone(),
        uid: String::new(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }]);
    Some(Sidecar {
        api_version: SIDECAR_API_VERSION.into(),
        kind: SIDECAR.kind.into(),
        metadata,
        spec: SidecarSpec {
            workload_selector: view
                .workload_selector
                .clone()
                .map(|labels| WorkloadSelector { labels }),
            egress: vec![EgressListener {
                hosts: state.egress_hosts(key).unwrap_or_default(),
            }],
        },
    })
}

/// A fence's status in Slime's shape.
pub fn fence_status(state: &FenceState, key: &FenceKey, view: &FenceView) -> ServiceFenceStatus {
    let domains = view
        .domains
        .iter()
        .map(|(name, d)| {
            let status = match d.status {
                actors::fence::DomainStatus::Active => None,
                actors::fence::DomainStatus::Expire => Some(DestinationStatus::Expire),
                actors::fence::DomainStatus::ExpireWait => Some(DestinationStatus::ExpireWait),
            };
            (
                name.clone(),
                Destinations {
                    hosts: d.hosts.clone(),
                    status,
                },
            )
        })
        .collect();
    let metric_status = state
        .learned
        .get(key)
        .into_iter()
        .flatten()
        .map(|(host, l)| {
            (
                format!("{{destination_service=\"{host}\"}}"),
                (l.refreshes + 1).to_string(),
            )
        })
        .collect();
    ServiceFenceStatus {
        domains,
        metric_status,
    }
}

/// The ServiceFence object of one fence: the applied one with its status, or Slime's
/// auto-created form.
pub fn service_fence(state: &FenceState, key: &FenceKey) -> Option<ServiceFence> {
    let view = state.fences.get(key)?;
    let status = fence_status(state, key, view);
    let (metadata, spec) = match view.origin {
        Origin::Manual { .. } => {
            let rkey = ResourceKey::new(SERVICE_FENCE_KIND, &key.namespace, &key.name);
            let resource = state.applied.get(key)?;
            let object = resource.to_object(&rkey);
            let mut metadata: ObjectMeta =
                serde_json::from_value(object["metadata"].clone()).unwrap_or_default();
            metadata
                .labels
                .get_or_insert_with(BTreeMap::new)
                .insert(MANAGED_BY_LABEL.into(), MANAGER.into());
            // Validated against the same fields when it was applied, so this parse succeeds.
            let spec = object
                .get("spec")
                .cloned()
                .and_then(|spec| serde_json::from_value(spec).ok())
                .unwrap_or_default();
            (metadata, spec)
        }
        Origin::Auto { .. } => {
            let mut metadata = managed_meta(&key.namespace, &key.name);
            metadata
                .labels
                .get_or_insert_with(BTreeMap::new)
                .insert(CREATED_BY_LABEL.into(), CREATED_BY_VALUE.into());
            let spec = ServiceFenceSpec {
                enable: Some(true),
                workload_selector: Some(FenceWorkloadSelector {
                    labels: None,
                    from_service: Some(true),
                }),
                ..ServiceFenceSpec::default()
            };
            (metadata, spec)
        }
    };
    Some(ServiceFence {
        metadata,
        spec,
        status: Some(status),
    })
}

/// The global-sidecar fallback EnvoyFilter (Slime's `to-global-sidecar`), when a lazyload
/// configuration is in force.
pub fn fallback_filter(config: &FenceConfig) -> Option<CustomObject> {
    if !config.configured {
        return None;
    }
    let gs_ns = config.gs_namespace();
    let mut patches = Vec::new();
    for port in config.fallback_ports() {
        let route_name = port.to_string();
        let gs_cluster = format!("outbound|{port}||global-sidecar.{gs_ns}.svc.cluster.local");
        let cluster_of = |c: &str| {
            if c == GLOBAL_SIDECAR_PLACEHOLDER {
                gs_cluster.clone()
            } else {
                c.to_string()
            }
        };
        let to_gs_headers = json!([
            {"header": {"key": "Slime-Orig-Dest", "value": "%DOWNSTREAM_LOCAL_ADDRESS%"}, "append": false},
            {"header": {"key": "Slime-Source-Ns", "value": "%ENVIRONMENT(POD_NAMESPACE)%"}, "append": false}
        ]);
        let route_to = |cluster: String, m: Value| {
            let mut route = json!({"match": m, "route": {"cluster": cluster, "timeout": "0s"}});
            if cluster == gs_cluster {
                route["request_headers_to_add"] = to_gs_headers.clone();
            }
            route
        };
        let mut virtual_hosts: Vec<Value> = config
            .dispatches
            .iter()
            .filter(|d| d.domain_regex.is_empty())
            .map(|d| {
                json!({"name": d.name, "domains": d.domains,
                    "routes": [route_to(cluster_of(&d.cluster), json!({"prefix": "/"}))]})
            })
            .collect();
        let mut routes: Vec<Value> = config
            .dispatches
            .iter()
            .filter(|d| !d.domain_regex.is_empty())
            .map(|d| {
                route_to(
                    cluster_of(&d.cluster),
                    json!({"prefix": "/", "headers": [{"name": ":authority",
                        "safe_regex_match": {"google_re2": {}, "regex": d.domain_regex}}]}),
                )
            })
            .collect();
        let default_cluster = if config.passthrough_by_default {
            PASSTHROUGH_CLUSTER.to_string()
        } else {
            gs_cluster.clone()
        };
        routes.push(route_to(default_cluster, json!({"prefix": "/"})));
        virtual_hosts.push(json!({"name": "allow_all", "domains": ["*"], "routes": routes}));
        let outbound = |extra: Value| {
            let mut m = json!({"context": "SIDECAR_OUTBOUND",
                "routeConfiguration": {"name": route_name}});
            if let Value::Object(extra) = extra {
                for (k, v) in extra {
                    m[k.as_str()] = v;
                }
            }
            m
        };
        let gs_proxy = json!({"proxy": {"metadata": {"SLIME_APP": "LAZYLOAD_GLOBAL_SIDECAR"}}});
        patches.push(json!({"applyTo": "VIRTUAL_HOST",
            "match": {"context": "SIDECAR_OUTBOUND",
                "routeConfiguration": {"name": route_name, "vhost": {"name": "allow_any"}}},
            "patch": {"operation": "REMOVE"}}));
        patches.push(json!({"applyTo": "ROUTE_CONFIGURATION",
            "match": outbound(json!({})),
            "patch": {"operation": "MERGE", "value": {"virtual_hosts": virtual_hosts}}}));
        // The global sidecar itself must not route to itself: undo the above for it.
        for vhost in config
            .dispatches
            .iter()
            .filter(|d| d.domain_regex.is_empty())
            .map(|d| d.name.as_str())
            .chain(["allow_all"])
        {
            patches.push(json!({"applyTo": "VIRTUAL_HOST",
                "match": {"context": "SIDECAR_OUTBOUND", "proxy": gs_proxy["proxy"],
                    "routeConfiguration": {"name": route_name, "vhost": {"name": vhost}}},
                "patch": {"operation": "REMOVE"}}));
        }
        patches.push(json!({"applyTo": "ROUTE_CONFIGURATION",
            "match": {"context": "SIDECAR_OUTBOUND", "proxy": gs_proxy["proxy"],
                "routeConfiguration": {"name": route_name}},
            "patch": {"operation": "MERGE", "value": {"virtual_hosts": [
                {"name": "allow_any_new", "domains": ["*"], "routes": [
                    {"match": {"prefix": "/"}, "route": {"cluster": PASSTHROUGH_CLUSTER, "timeout": "0s"}}]}]}}}));
    }
    Some(CustomObject {
        api_version: ENVOY_FILTER_API_VERSION.into(),
        kind: ENVOY_FILTER.kind.into(),
        metadata: managed_meta(&config.istio_namespace, FALLBACK_FILTER_NAME),
        spec: json!({"configPatches": patches}),
    })
}

/// The fences: one ServiceFence (Slime's auto-created ones, and meshplane's own applied ones
/// with their status), one Sidecar per fence, the status of fences someone else owns, and the
/// fallback EnvoyFilter after the last fence.
impl Projection for Fences {
    const TARGETS: Targets = Targets {
        kube: true,
        etcd: false,
    };
    const OWNER_KINDS: &'static [&'static str] = &[SERVICE_FENCE_KIND];
    type Cursor = FenceKey;

    fn kube_chunk(
        state: &FenceState,
        after: Option<&FenceKey>,
        max: usize,
        out: &mut Vec<DesiredItem>,
    ) -> Option<FenceKey> {
        let range = match after {
            Some(k) => state.fences.range((Excluded(k.clone()), Unbounded)),
            None => state.fences.range::<FenceKey, _>(..),
        };
        let mut objects = BTreeMap::new();
        let mut statuses = Vec::new();
        let mut last = None;
        for (key, _) in range.take(max) {
            last = Some(key.clone());
            fence_objects(state, key, &mut objects);
            if let Some((r, status)) = observed_fence_status(state, key) {
                statuses.push(DesiredItem::Status(r, status));
            }
        }
        if last.is_none() {
            objects.extend(fallback_object(state));
        }
        out.extend(
            objects
                .into_iter()
                .map(|(r, o)| DesiredItem::Object(r, Box::new(o))),
        );
        out.extend(statuses);
        last
    }
}

/// Every Kubernetes object of the fence concept.
pub fn desired_objects(state: &FenceState, out: &mut BTreeMap<ObjectRef, KubeObject>) {
    for key in state.fences.keys() {
        fence_objects(state, key, out);
    }
    if let Some((r, filter)) = fallback_object(state) {
        out.insert(r, filter);
    }
}

/// The objects of one fence (its ServiceFence and Sidecar): lets an adapter project a few
/// fences at a time.
pub fn fence_objects(
    state: &FenceState,
    key: &FenceKey,
    out: &mut BTreeMap<ObjectRef, KubeObject>,
) {
    if let Some(fence) = service_fence(state, key) {
        out.insert(
            object_ref(
                SERVICE_FENCE_API_VERSION,
                SERVICE_FENCE_KIND,
                &key.namespace,
                &key.name,
            ),
            KubeObject::ServiceFence(Box::new(fence)),
        );
    }
    if let Some(sidecar) = sidecar(state, key) {
        out.insert(
            object_ref(SIDECAR_API_VERSION, SIDECAR.kind, &key.namespace, &key.name),
            KubeObject::Sidecar(Box::new(sidecar)),
        );
    }
}

/// The status of a fence whose ServiceFence is not meshplane's (observed in the cluster,
/// written by someone else): what the Kubernetes adapter applies to its status subresource,
/// leaving the spec to its owner. `None` for fences meshplane owns (their whole object is in
/// [`fence_objects`]) and for auto fences.
pub fn observed_fence_status(state: &FenceState, key: &FenceKey) -> Option<(ObjectRef, Value)> {
    let view = state.fences.get(key)?;
    if !matches!(view.origin, Origin::Manual { .. }) || state.applied.contains_key(key) {
        return None;
    }
    let status = fence_status(state, key, view);
    Some((
        object_ref(
            SERVICE_FENCE_API_VERSION,
            SERVICE_FENCE_KIND,
            &key.namespace,
            &key.name,
        ),
        json!({
            "apiVersion": SERVICE_FENCE_API_VERSION,
            "kind": SERVICE_FENCE_KIND,
            "metadata": {"name": key.name, "namespace": key.namespace},
            "status": status,
        }),
    ))
}

/// The fallback EnvoyFilter with its identity, when a lazyload configuration is in force.
pub fn fallback_object(state: &FenceState) -> Option<(ObjectRef, KubeObject)> {
    let filter = fallback_filter(&state.config)?;
    Some((
        object_ref(
            ENVOY_FILTER_API_VERSION,
            ENVOY_FILTER.kind,
            &state.config.istio_namespace,
            FALLBACK_FILTER_NAME,
        ),
        KubeObject::Custom(Box::new(filter)),
    ))
}
