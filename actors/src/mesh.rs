//! The whole mesh: every concept's state, the routing of commands and events to concepts, and
//! the fold of a log into state with a stable digest.

use events::{Envelope, Event, ExpectedVersion, StoreError};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::ctx::Ctx;
use crate::decider::{Decision, Meta, Rejection};
use crate::registry::{for_each_concept, visit_concept, ConceptSet, ConceptVisitor, Registered};

pub use crate::registry::{ConceptId, Mesh, MeshCommand};

impl Mesh {
    /// Decide a command against the current state.
    pub fn decide(&self, command: MeshCommand, ctx: &mut Ctx) -> Result<Decision, Rejection> {
        struct Decide<'a> {
            mesh: &'a Mesh,
            command: Option<MeshCommand>,
            ctx: &'a mut Ctx,
            out: Option<Result<Decision, Rejection>>,
        }
        impl ConceptVisitor for Decide<'_> {
            fn visit<C: Registered>(&mut self) {
                let command = self.command.take().and_then(C::unwrap);
                let command = command.expect("visited the command's own concept");
                self.out = Some(C::decide(C::state(self.mesh), command, self.ctx));
            }
        }
        let id = command.concept();
        let mut decide = Decide {
            mesh: self,
            command: Some(command),
            ctx,
            out: None,
        };
        visit_concept(id, &mut decide);
        decide.out.expect("the concept decided")
    }

    /// Fold one decoded event into every concept that owns it. A rollback is only recorded
    /// here: restoring the state it names needs the log, see [`crate::timeline::step`], which
    /// every fold of a log goes through.
    pub fn evolve(&mut self, event: Event, meta: &Meta) {
        if let Event::RolledBack(r) = &event {
            self.timeline.rollbacks.push(crate::timeline::Rollback {
                at: meta.position,
                to: r.to,
            });
            self.timeline.version = meta.stream_version;
        }
        let folders = ConceptSet::folding(&event);
        let mut left = folders.len();
        let mut event = Some(event);
        for id in folders.iter() {
            left -= 1;
            // Each folder takes the event by value: the last one gets the original.
            let this = if left == 0 {
                event.take().expect("one event per folder")
            } else {
                event.clone().expect("one event per folder")
            };
            self.evolve_concept(id, this, meta);
        }
        self.position = meta.position;
    }

    /// Record that `event`'s stream reached `meta.stream_version`, without folding its content
    /// (an event a rollback undid: its stream versions stay facts of the log).
    pub fn note_stream_version(&mut self, event: &Event, meta: &Meta) {
        struct Note<'a> {
            mesh: &'a mut Mesh,
            event: &'a Event,
            version: u64,
        }
        impl ConceptVisitor for Note<'_> {
            fn visit<C: Registered>(&mut self) {
                C::note_version(C::state_mut(self.mesh), self.event, self.version);
            }
        }
        if let Event::RolledBack(_) = event {
            self.timeline.version = meta.stream_version;
            return;
        }
        for_each_concept(&mut Note {
            mesh: self,
            event,
            version: meta.stream_version,
        });
    }

    fn evolve_concept(&mut self, id: ConceptId, event: Event, meta: &Meta) {
        struct Evolve<'a> {
            mesh: &'a mut Mesh,
            event: Option<Event>,
            meta: &'a Meta,
        }
        impl ConceptVisitor for Evolve<'_> {
            fn visit<C: Registered>(&mut self) {
                let event = self.event.take().expect("one event");
                C::evolve(C::state_mut(self.mesh), event, self.meta);
            }
        }
        visit_concept(
            id,
            &mut Evolve {
                mesh: self,
                event: Some(event),
                meta,
            },
        );
    }

    /// Decode and fold one stored event. Positions must arrive in order.
    pub fn apply(&mut self, envelope: &Envelope) -> Result<(), StoreError> {
        let event = envelope.decode()?;
        self.evolve(event, &meta_of(envelope));
        Ok(())
    }

    /// Decide and fold `apply` commands for declarative documents (Kubernetes objects and
    /// EaseMesh catalog objects), one after another, as the daemon would, with log positions
    /// continuing from `self.position`. For building states in tests, scenarios and tools
    /// without a log. Stops at the first rejected document.
    pub fn apply_documents(
        &mut self,
        documents: &[serde_json::Value],
        ctx: &mut Ctx,
    ) -> Result<(), Rejection> {
        for (i, document) in documents.iter().enumerate() {
            let command =
                document_command(document).map_err(|r| r.within(&format!("documents[{i}]")))?;
            self.execute(command, ctx)?;
        }
        Ok(())
    }

    /// Decide a command and fold its events at the next positions, as the daemon would. For
    /// tests, scenarios and tools that drive the mesh without a log. Without a log there are
    /// no stream versions to read: an append that expects any version (an instance registering
    /// again after its removal) is folded as a new stream's first event.
    pub fn execute(&mut self, command: MeshCommand, ctx: &mut Ctx) -> Result<Decision, Rejection> {
        let decision = self.decide(command, ctx)?;
        let base = match decision.expected {
            ExpectedVersion::Exact(n) => n,
            ExpectedVersion::NoStream | ExpectedVersion::Any => 0,
        };
        for (stream_version, event) in (base + 1..).zip(decision.events.iter().cloned()) {
            let meta = Meta {
                position: self.position + 1,
                stream_version,
                recorded_at_ms: ctx.now_ms(),
            };
            self.evolve(event, &meta);
        }
        Ok(decision)
    }

    /// A hex SHA-256 of each concept's state, in registry order.
    pub fn concept_digests(&self) -> Vec<(&'static str, String)> {
        struct Digests<'a> {
            mesh: &'a Mesh,
            out: Vec<(&'static str, String)>,
        }
        impl ConceptVisitor for Digests<'_> {
            fn visit<C: Registered>(&mut self) {
                self.out.push((C::NAME, C::digest(C::state(self.mesh))));
            }
        }
        let mut digests = Digests {
            mesh: self,
            out: Vec::new(),
        };
        for_each_concept(&mut digests);
        digests.out
    }
}

/// The apply command for one declarative document: the first concept, in registry order, that
/// takes it (`Concept::document`), else the concept that takes the others (the generic
/// resources).
pub fn document_command(document: &serde_json::Value) -> Result<MeshCommand, Rejection> {
    struct Take<'a> {
        document: &'a serde_json::Value,
        others: bool,
        out: Option<Result<MeshCommand, Rejection>>,
    }
    impl ConceptVisitor for Take<'_> {
        fn visit<C: Registered>(&mut self) {
            if self.out.is_none() && C::TAKES_OTHER_DOCUMENTS == self.others {
                self.out = C::document(self.document).map(|r| r.map(C::wrap));
            }
        }
    }
    let mut take = Take {
        document,
        others: false,
        out: None,
    };
    for_each_concept(&mut take);
    take.others = true;
    for_each_concept(&mut take);
    take.out
        .unwrap_or_else(|| Err(Rejection::invalid("kind", "no concept takes this document")))
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
    use crate::resource::{ResourceCommand, ResourceManifest};
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
