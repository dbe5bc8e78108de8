//! The whole mesh: every concept's state, the routing of commands and events to concepts, and
//! the fold of a log into state with a stable digest.

use events::{Envelope, Event, ExpectedVersion, StoreError};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::ctx::Ctx;
use crate::decider::{Decider, Decision, Meta, Rejection};
use crate::resource::{ResourceCommand, ResourceManifest, ResourceState, Resources};

/// The mesh concepts. Each runs as its own actor in the daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Concept {
    Resource,
}

impl Concept {
    pub const ALL: &'static [Concept] = &[Concept::Resource];

    pub fn name(self) -> &'static str {
        match self {
            Concept::Resource => "resource",
        }
    }

    /// The concepts that fold this event (one owner today; observations may fan out later).
    pub fn of(event: &Event) -> &'static [Concept] {
        match event {
            Event::ResourceApplied(_) | Event::ResourceDeleted(_) => &[Concept::Resource],
        }
    }
}

/// A command for any concept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MeshCommand {
    Resource(ResourceCommand),
}

impl MeshCommand {
    pub fn concept(&self) -> Concept {
        match self {
            MeshCommand::Resource(_) => Concept::Resource,
        }
    }
}

/// Every concept's state, folded from the log up to `position`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Mesh {
    /// The last log position folded in (0 = nothing).
    pub position: u64,
    pub resources: ResourceState,
}

impl Mesh {
    /// Decide a command against the current state.
    pub fn decide(&self, command: MeshCommand, ctx: &mut Ctx) -> Result<Decision, Rejection> {
        match command {
            MeshCommand::Resource(c) => Resources::decide(&self.resources, c, ctx),
        }
    }

    /// Fold one decoded event into every concept that owns it.
    pub fn evolve(&mut self, event: Event, meta: &Meta) {
        let concepts = Concept::of(&event);
        if let Some((last, others)) = concepts.split_last() {
            for concept in others {
                self.evolve_concept(*concept, event.clone(), meta);
            }
            self.evolve_concept(*last, event, meta);
        }
        self.position = meta.position;
    }

    fn evolve_concept(&mut self, concept: Concept, event: Event, meta: &Meta) {
        match concept {
            Concept::Resource => Resources::evolve(&mut self.resources, event, meta),
        }
    }

    /// Decode and fold one stored event. Positions must arrive in order.
    pub fn apply(&mut self, envelope: &Envelope) -> Result<(), StoreError> {
        let event = envelope.decode()?;
        self.evolve(event, &meta_of(envelope));
        Ok(())
    }

    /// Decide and fold `apply` commands for declarative documents, one after another, as the
    /// daemon would, with log positions continuing from `self.position`. For building states in
    /// tests, scenarios and tools without a log. Stops at the first rejected document.
    pub fn apply_documents(
        &mut self,
        documents: &[serde_json::Value],
        ctx: &mut Ctx,
    ) -> Result<(), Rejection> {
        for (i, document) in documents.iter().enumerate() {
            let manifest = ResourceManifest::from_value(document)
                .map_err(|r| r.within(&format!("documents[{i}]")))?;
            let decision =
                self.decide(MeshCommand::Resource(ResourceCommand::Apply(manifest)), ctx)?;
            let base = match decision.expected {
                ExpectedVersion::Exact(n) => n,
                ExpectedVersion::NoStream | ExpectedVersion::Any => 0,
            };
            for (stream_version, event) in (base + 1..).zip(decision.events) {
                let meta = Meta {
                    position: self.position + 1,
                    stream_version,
                    recorded_at_ms: ctx.now_ms(),
                };
                self.evolve(event, &meta);
            }
        }
        Ok(())
    }

    /// A hex SHA-256 of each concept's state, in concept order.
    pub fn concept_digests(&self) -> Vec<(&'static str, String)> {
        Concept::ALL
            .iter()
            .map(|c| {
                let digest = match c {
                    Concept::Resource => digest_of(&self.resources),
                };
                (c.name(), digest)
            })
            .collect()
    }
}

/// The position metadata of a stored event.
pub fn meta_of(envelope: &Envelope) -> Meta {
    Meta {
        position: envelope.position,
        stream_version: envelope.stream_version,
        recorded_at_ms: envelope.recorded_at_ms,
    }
}

/// Hex SHA-256 of a value's postcard encoding. Every state type keeps its maps ordered, so the
/// encoding, and therefore the digest, depends only on the value.
pub fn digest_of<T: Serialize>(value: &T) -> String {
    let bytes = postcard::to_stdvec(value).expect("state types always encode");
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::ResourceManifest;
    use serde_json::json;

    #[test]
    fn digest_depends_on_state_not_on_history_shape() {
        let m = ResourceManifest::from_value(&json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a"}, "data": {"x": "1"}}))
        .unwrap();
        let mut ctx = Ctx::new(5, 9);
        let mut mesh = Mesh::default();
        let d = mesh
            .decide(MeshCommand::Resource(ResourceCommand::Apply(m)), &mut ctx)
            .unwrap();
        let meta = Meta {
            position: 1,
            stream_version: 1,
            recorded_at_ms: 5,
        };
        mesh.evolve(d.events[0].clone(), &meta);
        let mut again = Mesh::default();
        again.evolve(d.events[0].clone(), &meta);
        assert_eq!(mesh.concept_digests(), again.concept_digests());
        assert_ne!(mesh.concept_digests(), Mesh::default().concept_digests());
    }
}
