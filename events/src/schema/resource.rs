//! Events of the generic declarative-resource concept: a named, optionally namespaced object
//! with a kind, labels and a body, applied and deleted as a whole.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Event;

pub const APPLIED: &str = "resource.applied";
pub const DELETED: &str = "resource.deleted";

/// Identity of a declarative resource. `namespace` is empty for cluster-scoped kinds.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ResourceKey {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl ResourceKey {
    pub fn new(
        kind: impl Into<String>,
        namespace: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        ResourceKey {
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The log stream that holds this resource's history.
    pub fn stream(&self) -> String {
        format!("resource/{}/{}/{}", self.kind, self.namespace, self.name)
    }
}

impl std::fmt::Display for ResourceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{}/{}", self.kind, self.name)
        } else {
            write!(f, "{}/{}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// A resource was created or changed. Carries the whole resource, so a fold needs no history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceApplied {
    pub key: ResourceKey,
    /// The `apiVersion` the resource was applied with.
    pub api_version: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// Canonical JSON (sorted keys, no whitespace) of the object's top-level fields other than
    /// `apiVersion`, `kind`, `metadata` and `status`: `{"spec": ...}`, `{"data": ...}`, ...
    pub body: String,
}

/// A resource was deleted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceDeleted {
    pub key: ResourceKey,
}

pub(super) fn samples() -> Vec<Event> {
    let key = ResourceKey::new("ConfigMap", "default", "web-config");
    vec![
        Event::ResourceApplied(ResourceApplied {
            key: key.clone(),
            api_version: "v1".into(),
            labels: BTreeMap::from([("app".into(), "web".into())]),
            annotations: BTreeMap::from([("mesh.megaease.com/service-name".into(), "web".into())]),
            body: r#"{"data":{"greeting":"hello"}}"#.into(),
        }),
        Event::ResourceDeleted(ResourceDeleted { key }),
    ]
}
