//! The generic declarative-resource concept: apply and delete named, optionally namespaced
//! objects with a kind, labels and a body. Later concepts build on it (their kinds register in
//! [`kinds`]) and read its state.

pub mod columns;
pub mod kinds;
pub mod manifest;

use std::collections::BTreeMap;

use events::schema::{ResourceApplied, ResourceDeleted, ResourceKey};
use events::{Event, ExpectedVersion};
use serde::{Deserialize, Serialize};

use crate::ctx::Ctx;
use crate::decider::{expect_version, Decider, Decision, Meta, Outcome, Rejection};
pub use manifest::ResourceManifest;

/// One stored resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResource {
    pub api_version: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// Canonical JSON of the body fields (`spec`, `data`, ...).
    pub body: String,
    /// Version of the resource's stream after its last event (for optimistic concurrency).
    pub version: u64,
    /// Log position and time of the event that created it (this incarnation).
    pub created_position: u64,
    pub created_at_ms: i64,
    /// Log position and time of its last change.
    pub updated_position: u64,
    pub updated_at_ms: i64,
}

impl StoredResource {
    /// The object as a JSON value, in Kubernetes shape.
    pub fn to_object(&self, key: &ResourceKey) -> serde_json::Value {
        let mut object = match serde_json::from_str::<serde_json::Value>(&self.body) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        let mut metadata = serde_json::Map::new();
        metadata.insert("name".into(), key.name.clone().into());
        if !key.namespace.is_empty() {
            metadata.insert("namespace".into(), key.namespace.clone().into());
        }
        if !self.labels.is_empty() {
            metadata.insert(
                "labels".into(),
                serde_json::to_value(&self.labels).unwrap_or_default(),
            );
        }
        if !self.annotations.is_empty() {
            metadata.insert(
                "annotations".into(),
                serde_json::to_value(&self.annotations).unwrap_or_default(),
            );
        }
        object.insert("apiVersion".into(), self.api_version.clone().into());
        object.insert("kind".into(), key.kind.clone().into());
        object.insert("metadata".into(), serde_json::Value::Object(metadata));
        serde_json::Value::Object(object)
    }

    fn same_content(&self, m: &ResourceManifest) -> bool {
        self.api_version == m.api_version
            && self.labels == m.labels
            && self.annotations == m.annotations
            && self.body == m.body
    }
}

/// State of the resource concept: every live resource, plus the stream version of deleted
/// ones so a re-creation still appends with an exact expectation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceState {
    pub resources: BTreeMap<ResourceKey, StoredResource>,
    pub deleted: BTreeMap<ResourceKey, u64>,
}

impl ResourceState {
    pub fn get(&self, key: &ResourceKey) -> Option<&StoredResource> {
        self.resources.get(key)
    }

    /// Resources of one kind, optionally in one namespace, in key order.
    pub fn list<'a>(
        &'a self,
        kind: &'a str,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a ResourceKey, &'a StoredResource)> + 'a {
        self.resources
            .iter()
            .filter(move |(k, _)| k.kind == kind && namespace.is_none_or(|ns| k.namespace == ns))
    }

    /// Record a stream version reached by an undone event (see `Mesh::note_stream_version`).
    pub fn note_version(&mut self, key: &ResourceKey, version: u64) {
        match self.resources.get_mut(key) {
            Some(r) => r.version = version,
            None => {
                self.deleted.insert(key.clone(), version);
            }
        }
    }

    fn stream_version(&self, key: &ResourceKey) -> u64 {
        self.resources
            .get(key)
            .map(|r| r.version)
            .or_else(|| self.deleted.get(key).copied())
            .unwrap_or(0)
    }
}

/// Commands of the resource concept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResourceCommand {
    /// Create or replace a resource. Applying identical content changes nothing.
    Apply(ResourceManifest),
    /// Delete a resource; it must exist.
    Delete(ResourceKey),
}

/// The resource decider.
pub struct Resources;

impl crate::Concept for Resources {
    const NAME: &'static str = "resource";
    const TAKES_OTHER_DOCUMENTS: bool = true;
    const KINDS: &'static [crate::kinds::KindSpec] = kinds::KINDS;
    type Memory = ();

    fn folds(event: &Event) -> bool {
        matches!(event, Event::ResourceApplied(_) | Event::ResourceDeleted(_))
    }

    fn note_version(state: &mut ResourceState, event: &Event, version: u64) -> bool {
        match event {
            Event::ResourceApplied(e) => state.note_version(&e.key, version),
            Event::ResourceDeleted(e) => state.note_version(&e.key, version),
            _ => return false,
        }
        true
    }

    fn recall(_: &crate::Mesh, _: Option<()>, _: i64) {}

    /// Any Kubernetes object no other concept takes, validated against the kind table.
    fn document(document: &serde_json::Value) -> Option<Result<ResourceCommand, Rejection>> {
        Some(ResourceManifest::from_value(document).map(ResourceCommand::Apply))
    }

    /// An applied kind's object: its own stream.
    fn history(
        object: &crate::history::ObjectName,
    ) -> Result<Vec<crate::history::HistorySource>, Rejection> {
        let applied = crate::kinds::get(&object.kind).is_some_and(|k| k.is_applied());
        Ok(applied
            .then(|| {
                let key = ResourceKey::new(&object.kind, &object.namespace, &object.name);
                crate::history::HistorySource::whole(key.stream())
            })
            .into_iter()
            .collect())
    }
}

impl Decider for Resources {
    type State = ResourceState;
    type Command = ResourceCommand;

    fn decide(
        state: &ResourceState,
        command: ResourceCommand,
        _ctx: &mut Ctx,
    ) -> Result<Decision, Rejection> {
        match command {
            ResourceCommand::Apply(manifest) => {
                let version = state.stream_version(&manifest.key);
                let stream = manifest.key.stream();
                let existing = state.get(&manifest.key);
                if existing.is_some_and(|r| r.same_content(&manifest)) {
                    return Ok(Decision {
                        stream,
                        expected: expect_version(version),
                        events: Vec::new(),
                        outcome: Outcome::Unchanged,
                        item_outcomes: Vec::new(),
                    });
                }
                let outcome = if existing.is_some() {
                    Outcome::Configured
                } else {
                    Outcome::Created
                };
                Ok(Decision {
                    stream,
                    expected: expect_version(version),
                    events: vec![Event::ResourceApplied(ResourceApplied {
                        key: manifest.key,
                        api_version: manifest.api_version,
                        labels: manifest.labels,
                        annotations: manifest.annotations,
                        body: manifest.body,
                    })],
                    outcome,
                    item_outcomes: Vec::new(),
                })
            }
            ResourceCommand::Delete(key) => {
                let Some(existing) = state.get(&key) else {
                    return Err(Rejection::not_found(format!("{key} not found")));
                };
                Ok(Decision {
                    stream: key.stream(),
                    expected: ExpectedVersion::Exact(existing.version),
                    events: vec![Event::ResourceDeleted(ResourceDeleted { key })],
                    outcome: Outcome::Deleted,
                    item_outcomes: Vec::new(),
                })
            }
        }
    }

    fn evolve(state: &mut ResourceState, event: Event, meta: &Meta) {
        match event {
            Event::ResourceApplied(e) => {
                if !state.deleted.is_empty() {
                    state.deleted.remove(&e.key);
                }
                // Update in place when the resource exists: a replay is mostly updates, and
                // this keeps the key (and its allocation) that is already in the map.
                if let Some(r) = state.resources.get_mut(&e.key) {
                    r.api_version = e.api_version;
                    r.labels = e.labels;
                    r.annotations = e.annotations;
                    r.body = e.body;
                    r.version = meta.stream_version;
                    r.updated_position = meta.position;
                    r.updated_at_ms = meta.recorded_at_ms;
                    return;
                }
                state.resources.insert(
                    e.key,
                    StoredResource {
                        api_version: e.api_version,
                        labels: e.labels,
                        annotations: e.annotations,
                        body: e.body,
                        version: meta.stream_version,
                        created_position: meta.position,
                        created_at_ms: meta.recorded_at_ms,
                        updated_position: meta.position,
                        updated_at_ms: meta.recorded_at_ms,
                    },
                );
            }
            Event::ResourceDeleted(e) => {
                state.resources.remove(&e.key);
                state.deleted.insert(e.key, meta.stream_version);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decider::RejectionKind;
    use serde_json::json;

    /// given(events) → when(command) → then(events or rejection)
    fn given(history: &[Event]) -> ResourceState {
        let mut state = ResourceState::default();
        let mut versions: BTreeMap<String, u64> = BTreeMap::new();
        for (i, e) in history.iter().enumerate() {
            let v = versions.entry(e.stream()).or_default();
            *v += 1;
            let meta = Meta {
                position: i as u64 + 1,
                stream_version: *v,
                recorded_at_ms: 1000 * i as i64,
            };
            Resources::evolve(&mut state, e.clone(), &meta);
        }
        state
    }

    fn when(state: &ResourceState, command: ResourceCommand) -> Result<Decision, Rejection> {
        Resources::decide(state, command, &mut Ctx::new(0, 1))
    }

    fn manifest(data: serde_json::Value) -> ResourceManifest {
        ResourceManifest::from_value(&json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "web", "namespace": "shop"}, "data": data}))
        .unwrap()
    }

    fn applied(m: &ResourceManifest) -> Event {
        Event::ResourceApplied(ResourceApplied {
            key: m.key.clone(),
            api_version: m.api_version.clone(),
            labels: m.labels.clone(),
            annotations: m.annotations.clone(),
            body: m.body.clone(),
        })
    }

    #[test]
    fn applying_a_new_resource_creates_it_on_a_new_stream() {
        let m = manifest(json!({"a": "1"}));
        let d = when(&given(&[]), ResourceCommand::Apply(m.clone())).unwrap();
        assert_eq!(d.outcome, Outcome::Created);
        assert_eq!(d.expected, ExpectedVersion::NoStream);
        assert_eq!(d.stream, "resource/ConfigMap/shop/web");
        assert_eq!(d.events, vec![applied(&m)]);
    }

    #[test]
    fn applying_identical_content_appends_nothing() {
        let m = manifest(json!({"a": "1"}));
        let d = when(&given(&[applied(&m)]), ResourceCommand::Apply(m)).unwrap();
        assert_eq!(d.outcome, Outcome::Unchanged);
        assert!(d.events.is_empty());
    }

    #[test]
    fn changing_a_resource_expects_its_current_version() {
        let old = manifest(json!({"a": "1"}));
        let new = manifest(json!({"a": "2"}));
        let d = when(
            &given(&[applied(&old)]),
            ResourceCommand::Apply(new.clone()),
        )
        .unwrap();
        assert_eq!(d.outcome, Outcome::Configured);
        assert_eq!(d.expected, ExpectedVersion::Exact(1));
        assert_eq!(d.events, vec![applied(&new)]);
    }

    #[test]
    fn deleting_a_missing_resource_is_rejected() {
        let err = when(
            &given(&[]),
            ResourceCommand::Delete(ResourceKey::new("ConfigMap", "shop", "web")),
        )
        .unwrap_err();
        assert_eq!(err.kind, RejectionKind::NotFound);
        assert!(
            err.message.contains("ConfigMap/shop/web not found"),
            "{err}"
        );
    }

    #[test]
    fn recreating_after_delete_continues_the_stream() {
        let m = manifest(json!({"a": "1"}));
        let deleted = Event::ResourceDeleted(ResourceDeleted { key: m.key.clone() });
        let state = given(&[applied(&m), deleted]);
        assert!(state.get(&m.key).is_none());
        let d = when(&state, ResourceCommand::Apply(m)).unwrap();
        assert_eq!(
            (d.outcome, d.expected),
            (Outcome::Created, ExpectedVersion::Exact(2))
        );
    }

    #[test]
    fn evolve_tracks_creation_and_update_positions() {
        let a = manifest(json!({"a": "1"}));
        let b = manifest(json!({"a": "2"}));
        let state = given(&[applied(&a), applied(&b)]);
        let r = state.get(&a.key).unwrap();
        assert_eq!(
            (r.version, r.created_position, r.updated_position),
            (2, 1, 2)
        );
        assert_eq!(r.to_object(&a.key)["data"]["a"], "2");
        assert_eq!(r.to_object(&a.key)["metadata"]["namespace"], "shop");
    }
}
