//! Reducing a watched object to what meshplane reads (pure), as the kind table says per kind
//! ([`actors::kinds::Observe`]).
//!
//! Every observation becomes a log event, so what is kept decides both the size of the log and
//! of the observed-cluster state (10,000 Pods of ~4 KB each reduce to ~0.3 KB each) and what
//! counts as a change: only the kept fields can make an event. Server bookkeeping that changes
//! on every write or resync (`resourceVersion`, `managedFields`, `generation`, timestamps,
//! status conditions) is never kept, so a relist of unchanged objects reduces to the same bytes
//! and appends nothing.

use std::collections::BTreeMap;

use actors::cluster::Observation;
use actors::kinds::Observe;
use events::schema::{Owner, ResourceKey};
use kube::api::DynamicObject;
use projections::object::{MANAGED_BY_LABEL, MANAGER};
use serde_json::{Map, Value};

use crate::kube::kinds::ApiKind;

/// Written by `kubectl apply`: a second copy of the whole object, never read by meshplane.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The key of a watched object: its kind (from the table, as list items carry none), its
/// namespace for namespaced kinds, and its name. `None` for an object without a name.
pub fn key_of(kind: &ApiKind, object: &DynamicObject) -> Option<ResourceKey> {
    let name = object.metadata.name.as_deref().filter(|n| !n.is_empty())?;
    let namespace = if kind.namespaced {
        object.metadata.namespace.as_deref().unwrap_or_default()
    } else {
        ""
    };
    Some(ResourceKey::new(kind.kind, namespace, name))
}

/// Whether the object is one of meshplane's own projections (labelled
/// `app.kubernetes.io/managed-by: meshplane`). Those are not observed: their content follows
/// from the log already, and recording them would echo each of meshplane's writes back into
/// the log as an observation (a feedback loop of events). That holds for ServiceFences too: an
/// auto-fence or a fence applied through meshplane observed back would be read by the fence
/// concept as a user's manual fence, outliving the auto-fence that made it. A user's
/// ServiceFence (without the label) is observed like any input.
pub fn is_meshplane_projection(object: &DynamicObject) -> bool {
    object
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(MANAGED_BY_LABEL))
        .is_some_and(|v| v == MANAGER)
}

/// What meshplane records of a watched object: key, uid, labels, annotations (without
/// `kubectl.kubernetes.io/last-applied-configuration`), owners, and the body fields the kind
/// table keeps for its kind ([`Observe`]) as canonical JSON. `None` for an object without a name and for meshplane's own projections
/// (see [`is_meshplane_projection`]).
pub fn observation(kind: &ApiKind, object: &DynamicObject) -> Option<Observation> {
    let key = key_of(kind, object)?;
    if is_meshplane_projection(object) {
        return None;
    }
    let metadata = &object.metadata;
    let labels: BTreeMap<String, String> = metadata.labels.clone().unwrap_or_default();
    let annotations: BTreeMap<String, String> = metadata
        .annotations
        .iter()
        .flatten()
        .filter(|(k, _)| k.as_str() != LAST_APPLIED_ANNOTATION)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let owners = metadata
        .owner_references
        .iter()
        .flatten()
        .map(|r| Owner {
            api_version: r.api_version.clone(),
            kind: r.kind.clone(),
            name: r.name.clone(),
            uid: r.uid.clone(),
            controller: r.controller.unwrap_or(false),
        })
        .collect();
    // What the table says to keep; a kind the table does not watch keeps its spec, like a
    // custom resource.
    let keep = kind.observe.unwrap_or(Observe::SPEC);
    let mut body = reduced_body(keep.keep, &object.data);
    if keep.drop_target_ref_versions {
        strip_target_ref_versions(&mut body);
    }
    Some(Observation {
        key,
        // The table's version: list items carry no apiVersion, watch events do; using the
        // table's keeps a listed and a watched copy of one object equal.
        api_version: kind.api_version().to_string(),
        uid: metadata.uid.clone().unwrap_or_default(),
        labels,
        annotations,
        owners,
        body: canonical_json(&body),
    })
}

/// The kept fields of `data` (the object without apiVersion, kind and metadata), at their
/// original paths. Absent and null fields are left out.
fn reduced_body(keep: &[&[&str]], data: &Value) -> Value {
    let mut out = Value::Object(Map::new());
    for path in keep {
        let Some(value) = path.iter().try_fold(data, |v, segment| v.get(*segment)) else {
            continue;
        };
        if value.is_null() {
            continue;
        }
        let (last, parents) = path.split_last().expect("paths are not empty");
        let mut at = &mut out;
        for segment in parents {
            at = at
                .as_object_mut()
                .expect("only objects are created on the way")
                .entry(*segment)
                .or_insert_with(|| Value::Object(Map::new()));
        }
        if let Some(map) = at.as_object_mut() {
            map.insert((*last).to_string(), value.clone());
        }
    }
    out
}

/// Drop `targetRef.resourceVersion` everywhere (see [`Observe::drop_target_ref_versions`]): the
/// addresses alone decide whether an Endpoints or EndpointSlice changed.
fn strip_target_ref_versions(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Object(target)) = map.get_mut("targetRef") {
                target.remove("resourceVersion");
            }
            map.values_mut().for_each(strip_target_ref_versions);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_target_ref_versions),
        _ => {}
    }
}

/// JSON with object keys sorted and no whitespace, so equal content is always equal bytes
/// (whatever order the server or a map implementation produced the keys in): the decider
/// compares observations by these bytes.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(value, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::kube::kinds::ApiKind;

    /// The table's kinds, as the watchers hold them.
    mod kinds {
        use super::ApiKind;
        use actors::{
            cluster::kinds as cluster, fence::kinds as fence, resource::kinds as resource,
        };

        pub const POD: ApiKind = ApiKind::new(&cluster::POD);
        pub const NODE: ApiKind = ApiKind::new(&cluster::NODE);
        pub const ENDPOINT_SLICE: ApiKind = ApiKind::new(&cluster::ENDPOINT_SLICE);
        pub const NAMESPACE: ApiKind = ApiKind::new(&resource::NAMESPACE);
        pub const SERVICE: ApiKind = ApiKind::new(&resource::SERVICE);
        pub const ENDPOINTS: ApiKind = ApiKind::new(&resource::ENDPOINTS);
        pub const DEPLOYMENT: ApiKind = ApiKind::new(&resource::DEPLOYMENT);
        pub const STATEFUL_SET: ApiKind = ApiKind::new(&resource::STATEFUL_SET);
        pub const VIRTUAL_SERVICE: ApiKind = ApiKind::new(&fence::VIRTUAL_SERVICE);
        pub const SERVICE_FENCE: ApiKind = ApiKind::new(&fence::SERVICE_FENCE);
        pub const SLIME_BOOT: ApiKind = ApiKind::new(&fence::SLIME_BOOT);
    }

    fn object(value: Value) -> DynamicObject {
        serde_json::from_value(value).expect("a Kubernetes object")
    }

    fn body(o: &Observation) -> Value {
        serde_json::from_str(&o.body).unwrap()
    }

    fn pod(resource_version: &str, condition_time: &str) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": "web-1", "namespace": "shop", "uid": "u-1",
                "resourceVersion": resource_version, "generation": 3,
                "creationTimestamp": "2026-11-24T12:00:00Z",
                "labels": {"app": "web"},
                "annotations": {
                    "sidecar.istio.io/inject": "true",
                    LAST_APPLIED_ANNOTATION: "{\"huge\": true}",
                },
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "name": "web-7d4b9", "uid": "rs-1", "controller": true}],
                "managedFields": [{"manager": "kubelet", "operation": "Update"}],
            },
            "spec": {"nodeName": "edge-1", "containers": [{"name": "web", "image": "web:1"}]},
            "status": {
                "phase": "Running", "podIP": "10.0.3.7", "podIPs": [{"ip": "10.0.3.7"}],
                "conditions": [{"type": "Ready", "status": "True",
                    "lastTransitionTime": condition_time}],
            },
        })
    }

    #[test]
    fn a_pod_keeps_its_node_addresses_and_phase_only() {
        let o = observation(&kinds::POD, &object(pod("7", "2026-11-24T12:00:01Z"))).unwrap();
        assert_eq!(o.key, ResourceKey::new("Pod", "shop", "web-1"));
        assert_eq!((o.api_version.as_str(), o.uid.as_str()), ("v1", "u-1"));
        assert_eq!(
            o.body,
            r#"{"spec":{"nodeName":"edge-1"},"status":{"phase":"Running","podIP":"10.0.3.7","podIPs":[{"ip":"10.0.3.7"}]}}"#
        );
        assert_eq!(o.labels, BTreeMap::from([("app".into(), "web".into())]));
        assert_eq!(
            o.annotations,
            BTreeMap::from([("sidecar.istio.io/inject".into(), "true".into())])
        );
        assert_eq!(
            o.owners,
            vec![Owner {
                api_version: "apps/v1".into(),
                kind: "ReplicaSet".into(),
                name: "web-7d4b9".into(),
                uid: "rs-1".into(),
                controller: true,
            }]
        );
    }

    #[test]
    fn server_bookkeeping_never_makes_a_change() {
        let a = observation(&kinds::POD, &object(pod("7", "2026-11-24T12:00:01Z"))).unwrap();
        let b = observation(&kinds::POD, &object(pod("8", "2026-11-24T12:09:00Z"))).unwrap();
        assert_eq!(a, b);
        let mut moved = pod("9", "2026-11-24T12:09:00Z");
        moved["status"]["podIP"] = json!("10.0.3.8");
        let c = observation(&kinds::POD, &object(moved)).unwrap();
        assert_ne!(a.body, c.body);
    }

    #[test]
    fn a_namespace_keeps_labels_and_phase() {
        let ns = object(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "shop", "uid": "n-1", "labels": {"istio-injection": "enabled"}},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}));
        let o = observation(&kinds::NAMESPACE, &ns).unwrap();
        assert_eq!(o.key, ResourceKey::new("Namespace", "", "shop"));
        assert_eq!(o.body, r#"{"status":{"phase":"Active"}}"#);
        assert_eq!(o.labels["istio-injection"], "enabled");
        let bare = object(json!({"metadata": {"name": "empty"}}));
        assert_eq!(observation(&kinds::NAMESPACE, &bare).unwrap().body, "{}");
    }

    #[test]
    fn cluster_scoped_kinds_have_no_namespace_in_their_key() {
        let node = object(
            json!({"metadata": {"name": "edge-1", "namespace": "ignored"},
            "spec": {"unschedulable": true, "podCIDR": "10.0.3.0/24"},
            "status": {"addresses": [{"type": "InternalIP", "address": "192.168.1.5"}],
                "conditions": [{"type": "Ready"}], "nodeInfo": {"kernelVersion": "6.1"}}}),
        );
        let o = observation(&kinds::NODE, &node).unwrap();
        assert_eq!(o.key, ResourceKey::new("Node", "", "edge-1"));
        assert_eq!(
            body(&o),
            json!({"spec": {"unschedulable": true},
                "status": {"addresses": [{"type": "InternalIP", "address": "192.168.1.5"}]}})
        );
    }

    #[test]
    fn workloads_keep_replicas_selector_and_template_metadata() {
        let deployment = object(json!({"metadata": {"name": "web", "namespace": "shop"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"type": "RollingUpdate"},
                "template": {"metadata": {"labels": {"app": "web"}, "creationTimestamp": null,
                    "annotations": {"sidecar.istio.io/inject": "true"}},
                    "spec": {"containers": [{"name": "web"}]}}},
            "status": {"readyReplicas": 3, "observedGeneration": 9}}));
        for kind in [&kinds::DEPLOYMENT, &kinds::STATEFUL_SET] {
            let o = observation(kind, &deployment).unwrap();
            assert_eq!(
                body(&o),
                json!({"spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"},
                        "annotations": {"sidecar.istio.io/inject": "true"}}}}})
            );
        }
    }

    #[test]
    fn endpoints_and_slices_drop_the_pod_versions_of_their_target_refs() {
        let target = |rv: &str| {
            json!({"kind": "Pod", "name": "web-1", "namespace": "shop", "uid": "u-1",
                "resourceVersion": rv})
        };
        let endpoints = |rv: &str| {
            object(
                json!({"metadata": {"name": "web", "namespace": "shop", "resourceVersion": rv},
                "subsets": [{"addresses": [{"ip": "10.0.3.7", "targetRef": target(rv)}],
                    "ports": [{"port": 8080, "protocol": "TCP"}]}]}),
            )
        };
        let a = observation(&kinds::ENDPOINTS, &endpoints("1")).unwrap();
        let b = observation(&kinds::ENDPOINTS, &endpoints("2")).unwrap();
        assert_eq!(a.body, b.body);
        assert!(!a.body.contains("resourceVersion"), "{}", a.body);
        assert!(a.body.contains("10.0.3.7"));

        let slice = object(json!({"metadata": {"name": "web-x1", "namespace": "shop",
                "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.0.3.7"], "conditions": {"ready": true},
                "targetRef": target("5")}],
            "ports": [{"name": "http", "port": 8080}]}));
        let o = observation(&kinds::ENDPOINT_SLICE, &slice).unwrap();
        let b = body(&o);
        assert_eq!(b["addressType"], "IPv4");
        assert_eq!(b["endpoints"][0]["addresses"][0], "10.0.3.7");
        assert!(b["endpoints"][0]["targetRef"]
            .get("resourceVersion")
            .is_none());
        assert_eq!(b["ports"][0]["port"], 8080);
    }

    #[test]
    fn custom_resources_keep_their_spec_and_never_their_status() {
        let resource = |labels: Value| {
            object(
                json!({"metadata": {"name": "web", "namespace": "shop", "labels": labels},
                "spec": {"enable": true}, "status": {"domains": {"a": {}}}}),
            )
        };
        for kind in [
            &kinds::VIRTUAL_SERVICE,
            &kinds::SERVICE_FENCE,
            &kinds::SLIME_BOOT,
        ] {
            let o = observation(kind, &resource(json!({}))).unwrap();
            assert_eq!(o.body, r#"{"spec":{"enable":true}}"#, "{}", kind.kind);
        }
        // meshplane's own (auto-fences, fences applied through meshplane) are not: the fence
        // concept would take them for a user's.
        let own = resource(json!({MANAGED_BY_LABEL: MANAGER}));
        assert_eq!(observation(&kinds::SERVICE_FENCE, &own), None);
        assert_eq!(observation(&kinds::VIRTUAL_SERVICE, &own), None);
    }

    #[test]
    fn meshplane_projections_and_nameless_objects_are_not_observed() {
        let service = object(json!({"metadata": {"name": "web", "namespace": "shop",
            "labels": {MANAGED_BY_LABEL: MANAGER}}, "spec": {"ports": []}}));
        assert!(is_meshplane_projection(&service));
        assert_eq!(observation(&kinds::SERVICE, &service), None);
        // Its key is still known, so the watcher can say it is not (or no longer) observed.
        assert_eq!(
            key_of(&kinds::SERVICE, &service),
            Some(ResourceKey::new("Service", "shop", "web"))
        );
        let other = object(json!({"metadata": {"name": "web", "namespace": "shop",
            "labels": {MANAGED_BY_LABEL: "helm"}}, "spec": {"ports": []}}));
        assert!(observation(&kinds::SERVICE, &other).is_some());
        let nameless = object(json!({"metadata": {"namespace": "shop"}}));
        assert_eq!(key_of(&kinds::SERVICE, &nameless), None);
        assert_eq!(observation(&kinds::SERVICE, &nameless), None);
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let a: Value =
            serde_json::from_str(r#"{"b":{"y":1,"x":[{"d":2,"c":"é\""}]},"a":null}"#).unwrap();
        assert_eq!(
            canonical_json(&a),
            r#"{"a":null,"b":{"x":[{"c":"é\"","d":2}],"y":1}}"#
        );
        let mut reordered = Map::new();
        reordered.insert("z".into(), json!(1.5));
        reordered.insert("a".into(), json!(true));
        assert_eq!(
            canonical_json(&Value::Object(reordered)),
            r#"{"a":true,"z":1.5}"#
        );
    }
}
