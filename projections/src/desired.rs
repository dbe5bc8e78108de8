//! State → desired objects.

use std::collections::BTreeMap;

use actors::resource::kinds;
use actors::resource::StoredResource;
use actors::Mesh;
use events::schema::ResourceKey;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::object::{KubeObject, ObjectRef, MANAGED_BY_LABEL, MANAGER};
use crate::{fence, registry};

/// Prefix of the etcd keys meshplane writes for generic resources.
pub const ETCD_RESOURCE_PREFIX: &str = "/meshplane/resources/";

/// Everything that should exist, derived from state alone.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Desired {
    pub kube: BTreeMap<ObjectRef, KubeObject>,
    /// etcd key → value (JSON text).
    pub etcd: BTreeMap<String, String>,
    /// Resources that could not be projected, with the reason (never expected: every resource
    /// was validated against the same types when it was applied).
    pub errors: Vec<(ObjectRef, String)>,
}

impl Desired {
    /// Kubernetes objects as JSON, keyed by identity: the form adapters compare and write.
    pub fn kube_values(&self) -> BTreeMap<ObjectRef, Value> {
        self.kube
            .iter()
            .map(|(k, o)| (k.clone(), o.to_value()))
            .collect()
    }

    /// Hex SHA-256 over every desired object and key, in key order.
    pub fn digest(&self) -> String {
        let mut hasher = Sha256::new();
        let mut buf = Vec::with_capacity(4096);
        for (r, object) in &self.kube {
            hasher.update(r.to_string().as_bytes());
            hasher.update([0]);
            buf.clear();
            object.write_json(&mut buf);
            hasher.update(&buf);
            hasher.update([0]);
        }
        hasher.update([1]);
        for (key, value) in &self.etcd {
            hasher.update(key.as_bytes());
            hasher.update([0]);
            hasher.update(value.as_bytes());
            hasher.update([0]);
        }
        hex::encode(hasher.finalize())
    }
}

/// What should exist for this mesh state: Kubernetes objects and etcd keys.
pub fn desired(mesh: &Mesh) -> Desired {
    let mut out = desired_kube(mesh);
    out.etcd = desired_etcd(mesh);
    out
}

/// Every etcd key that should exist: the generic resources under
/// [`ETCD_RESOURCE_PREFIX`] and the registry in EaseMesh's layout.
pub fn desired_etcd(mesh: &Mesh) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (key, resource) in &mesh.resources.resources {
        let mut object = resource.to_object(key);
        object["apiVersion"] = Value::String(served_api_version(&key.kind, &resource.api_version));
        let etcd_key = format!(
            "{ETCD_RESOURCE_PREFIX}{}/{}/{}",
            key.kind, key.namespace, key.name
        );
        out.insert(etcd_key, object.to_string());
    }
    registry::etcd_keys(&mesh.services, &mesh.instances, &mut out);
    out
}

/// Every etcd key prefix [`desired_etcd`] writes under: an etcd target owns these.
pub fn etcd_owned_prefixes() -> Vec<String> {
    std::iter::once(ETCD_RESOURCE_PREFIX)
        .chain(registry::OWNED_PREFIXES.iter().copied())
        .map(str::to_string)
        .collect()
}

fn served_api_version(kind: &str, applied: &str) -> String {
    kinds::find(kind)
        .filter(|k| k.kind == kind)
        .map(|k| k.api_versions[0].to_string())
        .unwrap_or_else(|| applied.to_string())
}

/// The Kubernetes objects that should exist (no etcd keys).
pub fn desired_kube(mesh: &Mesh) -> Desired {
    let mut out = Desired::default();
    for (key, resource) in &mesh.resources.resources {
        match resource_object(key, resource) {
            Some(Ok((r, o))) => {
                out.kube.insert(r, o);
            }
            Some(Err(e)) => out.errors.push(e),
            None => {}
        }
    }
    fence::desired_objects(&mesh.fences, &mesh.resources, &mut out.kube);
    out
}

/// The Kubernetes object one applied resource projects to: `None` when its kind is not
/// projected as applied (a ServiceFence is projected by the fence concept, a SlimeBoot not at
/// all). Lets an adapter project a few resources at a time.
#[allow(clippy::type_complexity)]
pub fn resource_object(
    key: &ResourceKey,
    resource: &StoredResource,
) -> Option<Result<(ObjectRef, KubeObject), (ObjectRef, String)>> {
    if !projected_as_applied(&key.kind) {
        return None;
    }
    let mut object = resource.to_object(key);
    let api_version = served_api_version(&key.kind, &resource.api_version);
    object["apiVersion"] = Value::String(api_version.clone());
    let r = ObjectRef {
        api_version,
        kind: key.kind.clone(),
        namespace: key.namespace.clone(),
        name: key.name.clone(),
    };
    // Ownership is marked on the Kubernetes object only: it is what the cluster adapter and
    // the manifest directory use to decide what they may delete.
    object["metadata"]["labels"][MANAGED_BY_LABEL] = Value::String(MANAGER.to_string());
    Some(match KubeObject::from_value(&key.kind, object) {
        Ok(o) => Ok((r, o)),
        Err(e) => Err((r, e)),
    })
}

/// Whether resources of `kind` are projected as applied (not by their concept, and not
/// configuration meshplane reads itself).
fn projected_as_applied(kind: &str) -> bool {
    kinds::find(kind)
        .filter(|k| k.kind == kind)
        .is_none_or(|k| k.projection == kinds::Projection::AsApplied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actors::Ctx;
    use serde_json::json;

    fn mesh_with(docs: &[Value]) -> Mesh {
        let mut mesh = Mesh::default();
        mesh.apply_documents(docs, &mut Ctx::new(0, 0)).unwrap();
        mesh
    }

    #[test]
    fn projects_typed_objects_with_the_managed_by_label() {
        let mesh = mesh_with(&[
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"app": "x"}}, "data": {"k": "v"}}),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}),
        ]);
        let d = desired(&mesh);
        assert!(d.errors.is_empty(), "{:?}", d.errors);
        let refs: Vec<String> = d.kube.keys().map(|r| r.to_string()).collect();
        assert_eq!(refs, ["ConfigMap/default/c", "Namespace/shop"]);
        let cm = d.kube.values().find_map(|o| match o {
            KubeObject::ConfigMap(c) => Some(c.clone()),
            _ => None,
        });
        let cm = cm.unwrap();
        let labels = cm.metadata.labels.unwrap();
        assert_eq!(
            labels.get(MANAGED_BY_LABEL).map(String::as_str),
            Some(MANAGER)
        );
        assert_eq!(labels.get("app").map(String::as_str), Some("x"));
        assert_eq!(cm.data.unwrap().get("k").map(String::as_str), Some("v"));
        assert_eq!(d.etcd.len(), 2);
        assert!(d
            .etcd
            .contains_key("/meshplane/resources/ConfigMap/default/c"));
    }

    #[test]
    fn digest_is_stable_and_content_sensitive() {
        let a = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}});
        let b = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "w"}});
        assert_eq!(
            desired(&mesh_with(std::slice::from_ref(&a))).digest(),
            desired(&mesh_with(&[a])).digest()
        );
        assert_ne!(
            desired(&mesh_with(&[b])).digest(),
            desired(&Mesh::default()).digest()
        );
    }
}
