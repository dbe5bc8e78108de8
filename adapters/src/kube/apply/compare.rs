//! Pure helpers of the applier: the object actually sent (owner uids filled in), its digest,
//! and whether what the cluster holds already says everything meshplane wants to say.

use std::collections::HashMap;

use events::schema::ResourceKey;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A content digest of one object as sent.
pub type ObjectDigest = [u8; 32];

pub fn digest(value: &Value) -> ObjectDigest {
    let mut hasher = Sha256::new();
    // serde_json writes an object's keys in map order; the values compared here are always
    // built by the same code path, so equal content gives equal bytes.
    hasher.update(serde_json::to_vec(value).expect("JSON values always serialize"));
    hasher.finalize().into()
}

/// What to do with an owner reference whose owner's uid is not known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnknownOwner {
    /// Keep it with its empty uid: while comparing, when the owner may still be created by an
    /// earlier phase of the same pass (a Sidecar's ServiceFence on a first pass).
    Keep,
    /// Leave it out: right before sending (the API server refuses an owner reference without
    /// a uid); once the owner exists the object's content changes and it is applied again.
    Drop,
}

/// Fill the uids of the owner references the projections leave empty (a projection has no
/// cluster uids) from `uids`, keyed by the owner's kind, the object's namespace and the owner's
/// name.
pub fn fill_owner_uids(
    object: &mut Value,
    uids: &dyn Fn(&ResourceKey) -> Option<String>,
    unknown: UnknownOwner,
) {
    let namespace = object["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let Some(owners) = object["metadata"]
        .get_mut("ownerReferences")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    owners.retain_mut(|owner| {
        if owner["uid"].as_str().is_some_and(|u| !u.is_empty()) {
            return true;
        }
        let key = ResourceKey::new(
            owner["kind"].as_str().unwrap_or_default(),
            &namespace,
            owner["name"].as_str().unwrap_or_default(),
        );
        match uids(&key) {
            Some(uid) => {
                owner["uid"] = Value::String(uid);
                true
            }
            None => unknown == UnknownOwner::Keep,
        }
    });
    if owners.is_empty() {
        if let Some(metadata) = object["metadata"].as_object_mut() {
            metadata.remove("ownerReferences");
        }
    }
}

/// A lookup over two uid tables: meshplane's own objects first, then the observed cluster.
pub fn uid_lookup<'a>(
    own: &'a HashMap<ResourceKey, String>,
    observed: &'a HashMap<ResourceKey, String>,
) -> impl Fn(&ResourceKey) -> Option<String> + 'a {
    move |key| own.get(key).or_else(|| observed.get(key)).cloned()
}

/// Whether `observed` already holds everything `desired` says: every field of `desired` is in
/// `observed` with the same value; lists match element by element. Fields only the cluster sets
/// (defaults, uid, status, managedFields) do not matter. Used once after a restart, so that an
/// unchanged cluster gets no writes.
pub fn covers(observed: &Value, desired: &Value) -> bool {
    match (observed, desired) {
        (_, Value::Null) => true,
        (Value::Object(have), Value::Object(want)) => want.iter().all(|(k, w)| match have.get(k) {
            Some(h) => covers(h, w),
            None => w.is_null() || is_empty_collection(w),
        }),
        (Value::Array(have), Value::Array(want)) => {
            have.len() == want.len() && have.iter().zip(want).all(|(h, w)| covers(h, w))
        }
        (Value::Number(h), Value::Number(w)) => h.as_f64() == w.as_f64(),
        (h, w) => h == w,
    }
}

/// The API server drops empty maps and lists of optional fields; asking for one is satisfied
/// by its absence.
fn is_empty_collection(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// The uid in an object's metadata.
pub fn uid_of(object: &Value) -> Option<String> {
    object["metadata"]["uid"]
        .as_str()
        .filter(|u| !u.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn covers_ignores_what_only_the_cluster_sets() {
        let desired = json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
            "spec": {"ports": [{"port": 80}], "selector": {"app": "web"}}});
        let observed = json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "shop", "uid": "u1", "resourceVersion": "7",
                "labels": {"app": "web"}, "managedFields": []},
            "spec": {"ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
                "selector": {"app": "web"}, "clusterIP": "10.0.0.1", "type": "ClusterIP"},
            "status": {"loadBalancer": {}}});
        assert!(covers(&observed, &desired));
    }

    #[test]
    fn covers_notices_a_changed_missing_or_extra_item() {
        let desired = json!({"spec": {"egress": [{"hosts": ["a/*", "b/*"]}]}, "metadata": {"labels": {"x": "1"}}});
        let changed = json!({"spec": {"egress": [{"hosts": ["a/*", "c/*"]}]}, "metadata": {"labels": {"x": "1"}}});
        let missing =
            json!({"spec": {"egress": [{"hosts": ["a/*"]}]}, "metadata": {"labels": {"x": "1"}}});
        let extra = json!({"spec": {"egress": [{"hosts": ["a/*", "b/*", "c/*"]}]}, "metadata": {"labels": {"x": "1"}}});
        let label = json!({"spec": {"egress": [{"hosts": ["a/*", "b/*"]}]}, "metadata": {"labels": {"x": "2"}}});
        for observed in [changed, missing, extra, label] {
            assert!(!covers(&observed, &desired), "{observed}");
        }
        assert!(covers(&json!({"n": 1.0}), &json!({"n": 1})));
        assert!(covers(&json!({}), &json!({"labels": {}})));
        assert!(!covers(&json!({"n": "1"}), &json!({"n": 1})));
    }

    #[test]
    fn owner_uids_are_filled_or_the_reference_is_left_out() {
        let object = json!({"metadata": {"name": "web", "namespace": "shop", "ownerReferences": [
            {"apiVersion": "microservice.slime.io/v1alpha1", "kind": "ServiceFence", "name": "web", "uid": ""}]}});
        let known = |k: &ResourceKey| {
            (k == &ResourceKey::new("ServiceFence", "shop", "web")).then(|| "uid-1".to_string())
        };
        let mut filled = object.clone();
        fill_owner_uids(&mut filled, &known, UnknownOwner::Drop);
        assert_eq!(filled["metadata"]["ownerReferences"][0]["uid"], "uid-1");
        let mut kept = object.clone();
        fill_owner_uids(&mut kept, &|_| None, UnknownOwner::Keep);
        assert_eq!(kept, object, "kept as it was, for a later phase to fill");
        let mut unknown = object.clone();
        fill_owner_uids(&mut unknown, &|_| None, UnknownOwner::Drop);
        assert!(unknown["metadata"].get("ownerReferences").is_none());
        assert_ne!(digest(&filled), digest(&unknown));
        assert_eq!(digest(&filled), digest(&filled.clone()));
    }
}
