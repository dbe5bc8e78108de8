//! Typed Kubernetes objects meshplane projects, and their identity.

use actors::{fence, kinds};
use k8s_openapi::api::apps::v1 as apps;
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::Resource;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The label that marks objects meshplane owns. Deletions only ever touch objects with it.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Its value, and meshplane's field manager name.
pub const MANAGER: &str = "meshplane";

/// Identity of a Kubernetes object. `namespace` is empty for cluster-scoped objects.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{}/{}", self.kind, self.name)
        } else {
            write!(f, "{}/{}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// A desired Kubernetes object, typed.
#[derive(Clone, Debug, PartialEq)]
pub enum KubeObject {
    Namespace(core::Namespace),
    ConfigMap(core::ConfigMap),
    Service(core::Service),
    Deployment(apps::Deployment),
    StatefulSet(apps::StatefulSet),
    Endpoints(core::Endpoints),
    Sidecar(Box<crate::objects::istio::Sidecar>),
    ServiceFence(Box<crate::objects::slime::ServiceFence>),
    /// A custom resource without a typed spec (EnvoyFilter, an applied VirtualService).
    Custom(Box<CustomObject>),
}

impl KubeObject {
    /// Build the typed object of `kind` from its JSON form. Every kind the kind table says
    /// meshplane writes has one: its k8s-openapi struct, meshplane's own type (Sidecar,
    /// ServiceFence), or, for a custom kind whose spec meshplane passes through (an
    /// EnvoyFilter, an applied VirtualService), a custom object.
    pub fn from_value(kind: &str, value: Value) -> Result<Self, String> {
        fn typed<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, String> {
            serde_json::from_value(value).map_err(|e| e.to_string())
        }
        Ok(match kind {
            <core::Namespace as Resource>::KIND => KubeObject::Namespace(typed(value)?),
            <core::ConfigMap as Resource>::KIND => KubeObject::ConfigMap(typed(value)?),
            <core::Service as Resource>::KIND => KubeObject::Service(typed(value)?),
            <apps::Deployment as Resource>::KIND => KubeObject::Deployment(typed(value)?),
            <apps::StatefulSet as Resource>::KIND => KubeObject::StatefulSet(typed(value)?),
            <core::Endpoints as Resource>::KIND => KubeObject::Endpoints(typed(value)?),
            fence::SIDECAR_KIND => KubeObject::Sidecar(Box::new(typed(value)?)),
            fence::SERVICE_FENCE_KIND => KubeObject::ServiceFence(Box::new(typed(value)?)),
            custom if kinds::get(custom).is_some_and(|k| k.is_written()) => {
                KubeObject::Custom(Box::new(typed(value)?))
            }
            other => return Err(format!("no typed projection for kind `{other}`")),
        })
    }

    /// The object's JSON text, written straight from the typed value (no intermediate JSON
    /// tree: the digest of 10,000 objects is computed on every `replay`).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        let result = match self {
            KubeObject::Namespace(o) => serde_json::to_writer(&mut *out, o),
            KubeObject::ConfigMap(o) => serde_json::to_writer(&mut *out, o),
            KubeObject::Service(o) => serde_json::to_writer(&mut *out, o),
            KubeObject::Deployment(o) => serde_json::to_writer(&mut *out, o),
            KubeObject::StatefulSet(o) => serde_json::to_writer(&mut *out, o),
            KubeObject::Endpoints(o) => serde_json::to_writer(&mut *out, o),
            KubeObject::Sidecar(o) => serde_json::to_writer(&mut *out, o),
            KubeObject::ServiceFence(o) => serde_json::to_writer(&mut *out, o),
            KubeObject::Custom(o) => serde_json::to_writer(&mut *out, o),
        };
        result.expect("typed objects always serialize");
    }

    /// The object as JSON, in the shape the API server takes (apiVersion and kind included).
    pub fn to_value(&self) -> Value {
        let result = match self {
            KubeObject::Namespace(o) => serde_json::to_value(o),
            KubeObject::ConfigMap(o) => serde_json::to_value(o),
            KubeObject::Service(o) => serde_json::to_value(o),
            KubeObject::Deployment(o) => serde_json::to_value(o),
            KubeObject::StatefulSet(o) => serde_json::to_value(o),
            KubeObject::Endpoints(o) => serde_json::to_value(o),
            KubeObject::Sidecar(o) => serde_json::to_value(o),
            KubeObject::ServiceFence(o) => serde_json::to_value(o),
            KubeObject::Custom(o) => serde_json::to_value(o),
        };
        result.expect("k8s-openapi types always serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Every kind the table says meshplane writes can be built, typed, and renders back as
    /// itself; nothing else can.
    #[test]
    fn every_written_kind_has_a_typed_object() {
        for kind in kinds::written() {
            // The least a Sidecar has (meshplane's type requires its egress).
            let spec = json!({"egress": []});
            let value = json!({"apiVersion": kind.api_versions[0], "kind": kind.kind,
                "metadata": {"name": "x"}, "spec": spec});
            let object = KubeObject::from_value(kind.kind, value)
                .unwrap_or_else(|e| panic!("{}: {e}", kind.kind));
            let back = object.to_value();
            assert_eq!(back["kind"], kind.kind);
            assert_eq!(back["apiVersion"], kind.api_versions[0]);
        }
        for kind in kinds::all().filter(|k| !k.is_written()) {
            let value = json!({"apiVersion": kind.api_versions[0], "kind": kind.kind,
                "metadata": {"name": "x"}});
            assert!(
                KubeObject::from_value(kind.kind, value).is_err(),
                "{}",
                kind.kind
            );
        }
    }
}

/// A custom resource meshplane passes through or renders without a typed spec (an
/// EnvoyFilter's patches, an applied VirtualService).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomObject {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    pub spec: Value,
}
