//! What a rollback would change: the desired objects now versus at the target position.

use serde::Serialize;

use crate::desired::desired;
use crate::plan::plan;
use actors::Mesh;

/// One object a rollback creates, changes or deletes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    /// `create`, `update` or `delete`.
    pub action: &'static str,
    /// `kubernetes` or `etcd`.
    pub target: &'static str,
    /// `Kind/namespace/name`, or the etcd key.
    pub object: String,
}

/// The changes that take the world from the desired objects of `now` to those of `then`, in
/// a fixed order (Kubernetes objects, then etcd keys; creates, updates, deletes; by key).
pub fn rollback_plan(now: &Mesh, then: &Mesh) -> Vec<Change> {
    let (now, then) = (desired(now), desired(then));
    let mut out = Vec::new();
    let kube = plan(&then.kube, &now.kube);
    let etcd = plan(&then.etcd, &now.etcd);
    let mut push = |action, target, object: String| {
        out.push(Change {
            action,
            target,
            object,
        })
    };
    for (k, _) in &kube.creates {
        push("create", "kubernetes", k.to_string());
    }
    for (k, _) in &kube.updates {
        push("update", "kubernetes", k.to_string());
    }
    for k in &kube.deletes {
        push("delete", "kubernetes", k.to_string());
    }
    for (k, _) in &etcd.creates {
        push("create", "etcd", k.clone());
    }
    for (k, _) in &etcd.updates {
        push("update", "etcd", k.clone());
    }
    for k in &etcd.deletes {
        push("delete", "etcd", k.clone());
    }
    out
}
