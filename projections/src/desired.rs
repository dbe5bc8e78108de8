//! State → desired objects.

use std::collections::BTreeMap;

use std::ops::Bound::{Excluded, Unbounded};

use actors::resource::kinds;
use actors::resource::{ResourceState, Resources, StoredResource};
use actors::Mesh;
use events::schema::ResourceKey;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::concept::{for_each_projection, DesiredItem, Projection, ProjectionVisitor, Targets};
use crate::object::{KubeObject, ObjectRef, MANAGED_BY_LABEL, MANAGER};

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
            buf.clear();
            object.write_json(&mut buf);
            hash_object(&mut hasher, r, &buf);
        }
        hasher.update([1]);
        hash_etcd(&mut hasher, &self.etcd);
        hex::encode(hasher.finalize())
    }
}

/// What should exist for this mesh state: Kubernetes objects and etcd keys.
pub fn desired(mesh: &Mesh) -> Desired {
    let mut out = desired_kube(mesh);
    out.etcd = desired_etcd(mesh);
    out
}

/// Every etcd key that should exist: each concept's (the generic resources under
/// [`ETCD_RESOURCE_PREFIX`], the registry in EaseMesh's layout).
pub fn desired_etcd(mesh: &Mesh) -> BTreeMap<String, String> {
    struct Etcd<'a> {
        mesh: &'a Mesh,
        out: BTreeMap<String, String>,
    }
    impl ProjectionVisitor for Etcd<'_> {
        fn visit<P: Projection>(&mut self) {
            if P::TARGETS.etcd {
                P::etcd_keys(P::state(self.mesh), &mut self.out);
            }
        }
    }
    let mut etcd = Etcd {
        mesh,
        out: BTreeMap::new(),
    };
    for_each_projection(&mut etcd);
    etcd.out
}

/// Every etcd key prefix [`desired_etcd`] writes under: an etcd target owns these.
pub fn etcd_owned_prefixes() -> Vec<String> {
    struct Prefixes(Vec<String>);
    impl ProjectionVisitor for Prefixes {
        fn visit<P: Projection>(&mut self) {
            self.0
                .extend(P::etcd_prefixes().iter().map(|p| p.to_string()));
        }
    }
    let mut prefixes = Prefixes(Vec::new());
    for_each_projection(&mut prefixes);
    prefixes.0
}

/// Objects rendered per chunk when a whole state is walked at once.
const WALK_CHUNK: usize = 1024;

/// Walk every concept's desired Kubernetes objects, a chunk at a time, in registry order.
pub fn walk_kube(mesh: &Mesh, mut take: impl FnMut(Vec<DesiredItem>)) {
    struct Walk<'a, F> {
        mesh: &'a Mesh,
        take: &'a mut F,
    }
    impl<F: FnMut(Vec<DesiredItem>)> ProjectionVisitor for Walk<'_, F> {
        fn visit<P: Projection>(&mut self) {
            if !P::TARGETS.kube {
                return;
            }
            let state = P::state(self.mesh);
            let mut after = None;
            loop {
                let mut chunk = Vec::new();
                let last = P::kube_chunk(state, after.as_ref(), WALK_CHUNK, &mut chunk);
                (self.take)(chunk);
                match last {
                    Some(last) => after = Some(last),
                    None => break,
                }
            }
        }
    }
    for_each_projection(&mut Walk {
        mesh,
        take: &mut take,
    });
}

/// The Kubernetes objects that should exist (no etcd keys).
pub fn desired_kube(mesh: &Mesh) -> Desired {
    let mut out = Desired::default();
    walk_kube(mesh, |chunk| {
        for item in chunk {
            match item {
                DesiredItem::Object(r, o) => {
                    out.kube.insert(r, *o);
                }
                DesiredItem::Unprojectable(r, why) => out.errors.push((r, why)),
                // A status of an object someone else owns is not a desired object.
                DesiredItem::Status(..) => {}
            }
        }
    });
    out
}

/// The digest of [`desired`]`(mesh)` ([`Desired::digest`]), computed without holding every
/// typed object at once: each object is serialized as its chunk is rendered, and the etcd keys
/// are built only once the objects' part is hashed. A replay of 180,000 objects would
/// otherwise hold every typed object and every etcd value together.
pub fn desired_digest(mesh: &Mesh) -> String {
    let mut objects: BTreeMap<ObjectRef, Vec<u8>> = BTreeMap::new();
    walk_kube(mesh, |chunk| {
        for item in chunk {
            if let DesiredItem::Object(r, o) = item {
                let mut buf = Vec::new();
                o.write_json(&mut buf);
                objects.insert(r, buf);
            }
        }
    });
    let mut hasher = Sha256::new();
    for (r, json) in &objects {
        hash_object(&mut hasher, r, json);
    }
    drop(objects);
    hasher.update([1]);
    hash_etcd(&mut hasher, &desired_etcd(mesh));
    hex::encode(hasher.finalize())
}

/// One desired object's part of the digest: its identity and its JSON text.
fn hash_object(hasher: &mut Sha256, r: &ObjectRef, json: &[u8]) {
    hasher.update(r.to_string().as_bytes());
    hasher.update([0]);
    hasher.update(json);
    hasher.update([0]);
}

fn hash_etcd(hasher: &mut Sha256, etcd: &BTreeMap<String, String>) {
    for (key, value) in etcd {
        hasher.update(key.as_bytes());
        hasher.update([0]);
        hasher.update(value.as_bytes());
        hasher.update([0]);
    }
}

fn served_api_version(kind: &str, applied: &str) -> String {
    kinds::find(kind)
        .filter(|k| k.kind == kind)
        .map(|k| k.api_versions[0].to_string())
        .unwrap_or_else(|| applied.to_string())
}

/// The generic resources: projected as applied (to Kubernetes and, under
/// [`ETCD_RESOURCE_PREFIX`], to etcd), except the kinds a concept projects itself.
impl Projection for Resources {
    const TARGETS: Targets = Targets {
        kube: true,
        etcd: true,
    };
    type Cursor = ResourceKey;

    fn kube_chunk(
        state: &ResourceState,
        after: Option<&ResourceKey>,
        max: usize,
        out: &mut Vec<DesiredItem>,
    ) -> Option<ResourceKey> {
        let range = match after {
            Some(k) => state.resources.range((Excluded(k.clone()), Unbounded)),
            None => state.resources.range::<ResourceKey, _>(..),
        };
        let mut last = None;
        for (key, resource) in range.take(max) {
            last = Some(key);
            match resource_object(key, resource) {
                Some(Ok((r, o))) => out.push(DesiredItem::Object(r, Box::new(o))),
                Some(Err((r, why))) => out.push(DesiredItem::Unprojectable(r, why)),
                None => {}
            }
        }
        last.cloned()
    }

    fn etcd_keys(state: &ResourceState, out: &mut BTreeMap<String, String>) {
        for (key, resource) in &state.resources {
            let mut object = resource.to_object(key);
            object["apiVersion"] =
                Value::String(served_api_version(&key.kind, &resource.api_version));
            let etcd_key = format!(
                "{ETCD_RESOURCE_PREFIX}{}/{}/{}",
                key.kind, key.namespace, key.name
            );
            out.insert(etcd_key, object.to_string());
        }
    }

    fn etcd_prefixes() -> &'static [&'static str] {
        &[ETCD_RESOURCE_PREFIX]
    }
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
