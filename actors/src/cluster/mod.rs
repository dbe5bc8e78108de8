//! The observed cluster: what meshplane's Kubernetes watchers saw, folded from
//! `cluster.object_observed` / `cluster.object_gone`.
//!
//! Watchers send what they see as commands; the decider turns only real changes into events, so
//! a relist of unchanged objects, a watch restart or a daemon restart appends nothing, and an
//! object disappears only when a delete was seen or a *complete* list no longer holds it (never
//! because a list is still in progress). Each kind has one stream, written by that kind's
//! watcher alone, so the optimistic check is per kind.
//!
//! Other concepts read observed objects as they read applied ones: the fence concept folds
//! observed Namespaces, Services, VirtualServices, ServiceFences and SlimeBoots.

use std::collections::{BTreeMap, BTreeSet};

use events::schema::cluster::stream_of;
use events::schema::{ObjectGone, ObjectObserved, Owner, ResourceKey};
use events::Event;
use serde::{Deserialize, Serialize};

use crate::ctx::Ctx;
use crate::decider::{expect_version, Decider, Decision, Meta, Outcome, Rejection};

pub mod kinds;
#[cfg(test)]
mod tests;

/// One observed object, as the log last recorded it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedObject {
    pub api_version: String,
    pub uid: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub owners: Vec<Owner>,
    /// Canonical JSON of the observed body fields.
    pub body: String,
    /// Log position and time of the observation that recorded this content.
    pub observed_position: u64,
    pub observed_at_ms: i64,
}

impl ObservedObject {
    fn same_content(&self, o: &Observation) -> bool {
        self.api_version == o.api_version
            && self.uid == o.uid
            && self.labels == o.labels
            && self.annotations == o.annotations
            && self.owners == o.owners
            && self.body == o.body
    }

    /// The object as JSON in Kubernetes shape (the observed fields only).
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
        metadata.insert("uid".into(), self.uid.clone().into());
        if !self.labels.is_empty() {
            metadata.insert("labels".into(), serde_json::json!(self.labels));
        }
        if !self.annotations.is_empty() {
            metadata.insert("annotations".into(), serde_json::json!(self.annotations));
        }
        if !self.owners.is_empty() {
            let owners: Vec<serde_json::Value> = self
                .owners
                .iter()
                .map(|o| {
                    serde_json::json!({"apiVersion": o.api_version, "kind": o.kind,
                        "name": o.name, "uid": o.uid, "controller": o.controller})
                })
                .collect();
            metadata.insert("ownerReferences".into(), owners.into());
        }
        object.insert("apiVersion".into(), self.api_version.clone().into());
        object.insert("kind".into(), key.kind.clone().into());
        object.insert("metadata".into(), serde_json::Value::Object(metadata));
        serde_json::Value::Object(object)
    }
}

/// What a watcher saw of one object: the fields meshplane reads, already reduced and
/// canonicalised by the watcher (see `adapters::kube::observe`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    pub key: ResourceKey,
    pub api_version: String,
    pub uid: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub owners: Vec<Owner>,
    pub body: String,
}

/// State of the observed cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterState {
    pub objects: BTreeMap<ResourceKey, ObservedObject>,
    /// Version of each kind's stream (`cluster/{kind}`).
    pub versions: BTreeMap<String, u64>,
}

impl ClusterState {
    pub fn get(&self, key: &ResourceKey) -> Option<&ObservedObject> {
        self.objects.get(key)
    }

    /// Observed objects of one kind, in key order.
    pub fn of_kind<'a>(
        &'a self,
        kind: &'a str,
    ) -> impl Iterator<Item = (&'a ResourceKey, &'a ObservedObject)> + 'a {
        let start = ResourceKey::new(kind, "", "");
        self.objects
            .range(start..)
            .take_while(move |(k, _)| k.kind == kind)
    }

    /// The uid of an observed object.
    pub fn uid_of(&self, key: &ResourceKey) -> Option<&str> {
        self.objects.get(key).map(|o| o.uid.as_str())
    }

    fn version(&self, kind: &str) -> u64 {
        self.versions.get(kind).copied().unwrap_or(0)
    }

    /// Record a stream version reached by an undone event (see `Mesh::note_stream_version`).
    pub fn note_version(&mut self, kind: &str, version: u64) {
        self.versions.insert(kind.to_string(), version);
    }
}

/// Commands of the observed cluster. Every command is about one kind (one stream).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterCommand {
    /// Objects seen (an add, an update, or an item of a list). Unchanged ones append nothing.
    Observe {
        kind: String,
        objects: Vec<Observation>,
    },
    /// Objects seen deleted. Ones never observed append nothing.
    Gone {
        kind: String,
        keys: Vec<ResourceKey>,
    },
    /// A complete list of `kind` ended and held exactly `present`: every object observed
    /// before and not in it is gone.
    Relisted {
        kind: String,
        present: BTreeSet<ResourceKey>,
    },
}

impl ClusterCommand {
    pub fn kind(&self) -> &str {
        match self {
            ClusterCommand::Observe { kind, .. }
            | ClusterCommand::Gone { kind, .. }
            | ClusterCommand::Relisted { kind, .. } => kind,
        }
    }
}

/// The observed-cluster decider.
pub struct Cluster;

impl crate::Concept for Cluster {
    const NAME: &'static str = "cluster";
    const KINDS: &'static [crate::kinds::KindSpec] = kinds::KINDS;
    type Memory = ();

    fn folds(event: &Event) -> bool {
        matches!(event, Event::ObjectObserved(_) | Event::ObjectGone(_))
    }

    fn note_version(state: &mut ClusterState, event: &Event, version: u64) -> bool {
        match event {
            Event::ObjectObserved(e) => state.note_version(&e.key.kind, version),
            Event::ObjectGone(e) => state.note_version(&e.key.kind, version),
            _ => return false,
        }
        true
    }

    fn recall(_: &crate::Mesh, _: Option<()>, _: i64) {}

    /// A watched kind's object: its observations, out of the kind's shared stream.
    fn history(
        object: &crate::history::ObjectName,
    ) -> Result<Vec<crate::history::HistorySource>, crate::Rejection> {
        fn concerns(event: &Event, object: &crate::history::ObjectName) -> bool {
            let key = match event {
                Event::ObjectObserved(e) => &e.key,
                Event::ObjectGone(e) => &e.key,
                _ => return false,
            };
            key.kind == object.kind && key.namespace == object.namespace && key.name == object.name
        }
        let watched = crate::kinds::get(&object.kind).is_some_and(|k| k.is_watched());
        Ok(watched
            .then(|| {
                crate::history::HistorySource::filtered(
                    events::schema::cluster::stream_of(&object.kind),
                    concerns,
                )
            })
            .into_iter()
            .collect())
    }
}

impl Decider for Cluster {
    type State = ClusterState;
    type Command = ClusterCommand;

    fn decide(
        state: &ClusterState,
        command: ClusterCommand,
        _ctx: &mut Ctx,
    ) -> Result<Decision, Rejection> {
        let kind = command.kind().to_string();
        if kind.is_empty() {
            return Err(Rejection::invalid("kind", "required"));
        }
        let mut events = Vec::new();
        match command {
            ClusterCommand::Observe { objects, .. } => {
                // The last observation of an object in one batch is the one that counts.
                let mut latest: BTreeMap<&ResourceKey, &Observation> = BTreeMap::new();
                for (i, o) in objects.iter().enumerate() {
                    if o.key.kind != kind {
                        return Err(Rejection::invalid(
                            format!("objects[{i}].key.kind"),
                            format!("is {:?}, the command is for {kind:?}", o.key.kind),
                        ));
                    }
                    if o.key.name.is_empty() {
                        return Err(Rejection::invalid(
                            format!("objects[{i}].key.name"),
                            "required",
                        ));
                    }
                    latest.insert(&o.key, o);
                }
                for o in objects.iter() {
                    if !std::ptr::eq(latest[&o.key], o) {
                        continue;
                    }
                    if state.get(&o.key).is_some_and(|s| s.same_content(o)) {
                        continue;
                    }
                    events.push(Event::ObjectObserved(ObjectObserved {
                        key: o.key.clone(),
                        api_version: o.api_version.clone(),
                        uid: o.uid.clone(),
                        labels: o.labels.clone(),
                        annotations: o.annotations.clone(),
                        owners: o.owners.clone(),
                        body: o.body.clone(),
                    }));
                }
            }
            ClusterCommand::Gone { keys, .. } => {
                let mut seen = BTreeSet::new();
                for (i, key) in keys.into_iter().enumerate() {
                    if key.kind != kind {
                        return Err(Rejection::invalid(
                            format!("keys[{i}].kind"),
                            format!("is {:?}, the command is for {kind:?}", key.kind),
                        ));
                    }
                    if let Some(o) = state.get(&key) {
                        if seen.insert(key.clone()) {
                            let uid = o.uid.clone();
                            events.push(Event::ObjectGone(ObjectGone { key, uid }));
                        }
                    }
                }
            }
            ClusterCommand::Relisted { present, .. } => {
                for (key, o) in state.of_kind(&kind) {
                    if !present.contains(key) {
                        events.push(Event::ObjectGone(ObjectGone {
                            key: key.clone(),
                            uid: o.uid.clone(),
                        }));
                    }
                }
            }
        }
        let outcome = if events.is_empty() {
            Outcome::Unchanged
        } else {
            Outcome::Configured
        };
        Ok(Decision {
            stream: stream_of(&kind),
            expected: expect_version(state.version(&kind)),
            events,
            outcome,
            item_outcomes: Vec::new(),
        })
    }

    fn evolve(state: &mut ClusterState, event: Event, meta: &Meta) {
        match event {
            Event::ObjectObserved(e) => {
                state
                    .versions
                    .insert(e.key.kind.clone(), meta.stream_version);
                let observed = ObservedObject {
                    api_version: e.api_version,
                    uid: e.uid,
                    labels: e.labels,
                    annotations: e.annotations,
                    owners: e.owners,
                    body: e.body,
                    observed_position: meta.position,
                    observed_at_ms: meta.recorded_at_ms,
                };
                match state.objects.get_mut(&e.key) {
                    Some(o) => *o = observed,
                    None => {
                        state.objects.insert(e.key, observed);
                    }
                }
            }
            Event::ObjectGone(e) => {
                state
                    .versions
                    .insert(e.key.kind.clone(), meta.stream_version);
                state.objects.remove(&e.key);
            }
            _ => {}
        }
    }
}
