//! Events of the observed cluster: what meshplane's Kubernetes watchers saw. They are facts
//! about the world, not intent: meshplane never projects them back. Each kind has one stream
//! (`cluster/{kind}`), written by that kind's watcher only.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Event, ResourceKey};

pub const OBJECT_OBSERVED: &str = "cluster.object_observed";
pub const OBJECT_GONE: &str = "cluster.object_gone";

/// The stream of every observation of one kind.
pub fn stream_of(kind: &str) -> String {
    format!("cluster/{kind}")
}

/// An owner reference as the cluster reported it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Owner {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub uid: String,
    pub controller: bool,
}

/// An object appeared in the cluster or its observed content changed. Carries only the fields
/// meshplane reads (a Pod keeps its IP and node, not its whole status), so a change to anything
/// else is not an event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectObserved {
    pub key: ResourceKey,
    pub api_version: String,
    /// The object's uid: owner references and Events on it need it.
    pub uid: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub owners: Vec<Owner>,
    /// Canonical JSON (sorted keys, no whitespace) of the observed body fields:
    /// `{"spec": ...}`, `{"subsets": ...}`, `{"spec":{"nodeName":..},"status":{"podIP":..}}`.
    pub body: String,
}

/// An object meshplane had observed is no longer in the cluster (deleted, or absent from a
/// complete relist).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectGone {
    pub key: ResourceKey,
    /// The uid of the incarnation that went away.
    pub uid: String,
}

pub(super) fn samples() -> Vec<Event> {
    let key = ResourceKey::new("Pod", "shop", "web-7d4b9-x2x7k");
    vec![
        Event::ObjectObserved(ObjectObserved {
            key: key.clone(),
            api_version: "v1".into(),
            uid: "0b6f1c52-4c1e-4f5a-9d38-3f8f0c7a1e21".into(),
            labels: BTreeMap::from([("app".into(), "web".into())]),
            annotations: BTreeMap::new(),
            owners: vec![Owner {
                api_version: "apps/v1".into(),
                kind: "ReplicaSet".into(),
                name: "web-7d4b9".into(),
                uid: "6a1e0a55-93c2-4d8e-8d0e-3c0f0f7a9b10".into(),
                controller: true,
            }],
            body: r#"{"spec":{"nodeName":"edge-1"},"status":{"podIP":"10.0.3.7"}}"#.into(),
        }),
        Event::ObjectGone(ObjectGone {
            key,
            uid: "0b6f1c52-4c1e-4f5a-9d38-3f8f0c7a1e21".into(),
        }),
    ]
}
