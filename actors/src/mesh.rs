//! The whole mesh: every concept's state, the routing of commands and events to concepts, and
//! the fold of a log into state with a stable digest.

use events::{Envelope, Event, ExpectedVersion, StoreError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::cluster::{Cluster, ClusterCommand, ClusterState};
use crate::ctx::Ctx;
use crate::decider::{Decider, Decision, Meta, Rejection};
use crate::fence::{self, FenceCommand, FenceState, Fences};
use crate::instance::{InstanceCommand, InstanceState, Instances};
use crate::resource::{ResourceCommand, ResourceManifest, ResourceState, Resources};
use crate::service::{CatalogItem, ServiceCommand, ServiceState, Services};

/// The mesh concepts. Each runs as its own actor in the daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Concept {
    Resource,
    Service,
    Instance,
    Fence,
    Cluster,
}

impl Concept {
    pub const ALL: &'static [Concept] = &[
        Concept::Resource,
        Concept::Service,
        Concept::Instance,
        Concept::Fence,
        Concept::Cluster,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Concept::Resource => "resource",
            Concept::Service => "service",
            Concept::Instance => "instance",
            Concept::Fence => "fence",
            Concept::Cluster => "cluster",
        }
    }

    /// The concepts that fold this event: its owner, plus the concepts that keep a view of it
    /// (the instance concept folds the catalog's services and liveness limits; the fence
    /// concept folds the resources it reads: fences, its configuration, namespaces, services,
    /// VirtualServices).
    pub fn of(event: &Event) -> &'static [Concept] {
        match event {
            Event::ResourceApplied(e) if fence::reads_kind(&e.key.kind) => {
                &[Concept::Resource, Concept::Fence]
            }
            Event::ResourceDeleted(e) if fence::reads_kind(&e.key.kind) => {
                &[Concept::Resource, Concept::Fence]
            }
            Event::ResourceApplied(_) | Event::ResourceDeleted(_) => &[Concept::Resource],
            Event::ObjectObserved(e) if fence::reads_kind(&e.key.kind) => {
                &[Concept::Cluster, Concept::Fence]
            }
            Event::ObjectGone(e) if fence::reads_kind(&e.key.kind) => {
                &[Concept::Cluster, Concept::Fence]
            }
            Event::ObjectObserved(_) | Event::ObjectGone(_) => &[Concept::Cluster],
            Event::TenantApplied(_) | Event::TenantDeleted(_) => &[Concept::Service],
            Event::ServiceApplied(_)
            | Event::ServiceDeleted(_)
            | Event::MeshControllerApplied(_) => &[Concept::Service, Concept::Instance],
            Event::InstanceRegistered(_)
            | Event::InstanceDeregistered(_)
            | Event::InstanceOutOfService(_)
            | Event::InstanceRecovered(_)
            | Event::InstanceExpired(_)
            | Event::InstanceTakenOffline(_)
            | Event::InstanceBroughtOnline(_) => &[Concept::Instance],
            Event::DependencyLearned(_)
            | Event::DependencySeen(_)
            | Event::DependencyIdle(_)
            | Event::DependencyForgotten(_)
            | Event::HostDeadlinePassed(_) => &[Concept::Fence],
            // Folded by the timeline (it needs the log), not by a concept.
            Event::RolledBack(_) => &[],
        }
    }
}

/// A command for any concept.
#[derive(Clone, Debug, PartialEq)]
pub enum MeshCommand {
    Resource(ResourceCommand),
    Service(ServiceCommand),
    Instance(InstanceCommand),
    Fence(FenceCommand),
    Cluster(ClusterCommand),
}

impl MeshCommand {
    pub fn concept(&self) -> Concept {
        match self {
            MeshCommand::Resource(_) => Concept::Resource,
            MeshCommand::Service(_) => Concept::Service,
            MeshCommand::Instance(_) => Concept::Instance,
            MeshCommand::Fence(_) => Concept::Fence,
            MeshCommand::Cluster(_) => Concept::Cluster,
        }
    }
}

/// Every concept's state, folded from the log up to `position`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mesh {
    /// The last log position folded in (0 = nothing).
    pub position: u64,
    pub resources: ResourceState,
    pub services: ServiceState,
    pub instances: InstanceState,
    pub fences: FenceState,
    /// What the Kubernetes watchers observed.
    pub cluster: ClusterState,
    /// The rollbacks that shaped this state.
    pub timeline: crate::timeline::Timeline,
}

impl Mesh {
    /// Decide a command against the current state.
    pub fn decide(&self, command: MeshCommand, ctx: &mut Ctx) -> Result<Decision, Rejection> {
        match command {
            MeshCommand::Resource(c) => Resources::decide(&self.resources, c, ctx),
            MeshCommand::Service(c) => Services::decide(&self.services, c, ctx),
            MeshCommand::Instance(c) => Instances::decide(&self.instances, c, ctx),
            MeshCommand::Fence(c) => Fences::decide(&self.fences, c, ctx),
            MeshCommand::Cluster(c) => Cluster::decide(&self.cluster, c, ctx),
        }
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
        let concepts = Concept::of(&event);
        if let Some((last, others)) = concepts.split_last() {
            for concept in others {
                self.evolve_concept(*concept, event.clone(), meta);
            }
            self.evolve_concept(*last, event, meta);
        }
        self.position = meta.position;
    }

    /// Record that `event`'s stream reached `meta.stream_version`, without folding its content
    /// (an event a rollback undid: its stream versions stay facts of the log).
    pub fn note_stream_version(&mut self, event: &Event, meta: &Meta) {
        let v = meta.stream_version;
        match event {
            Event::ResourceApplied(e) => self.resources.note_version(&e.key, v),
            Event::ResourceDeleted(e) => self.resources.note_version(&e.key, v),
            Event::TenantApplied(_)
            | Event::TenantDeleted(_)
            | Event::ServiceApplied(_)
            | Event::ServiceDeleted(_)
            | Event::MeshControllerApplied(_) => self.services.version = v,
            Event::InstanceRegistered(e) => self.instances.note_version(&e.key, v),
            Event::InstanceDeregistered(e) => self.instances.note_version(&e.key, v),
            Event::InstanceOutOfService(e) => self.instances.note_version(&e.key, v),
            Event::InstanceRecovered(e) => self.instances.note_version(&e.key, v),
            Event::InstanceExpired(e) => self.instances.note_version(&e.key, v),
            Event::InstanceTakenOffline(e) => self.instances.note_version(&e.key, v),
            Event::InstanceBroughtOnline(e) => self.instances.note_version(&e.key, v),
            Event::DependencyLearned(e) => self.fences.note_version(&e.fence, v),
            Event::DependencySeen(e) => self.fences.note_version(&e.fence, v),
            Event::DependencyIdle(e) => self.fences.note_version(&e.fence, v),
            Event::DependencyForgotten(e) => self.fences.note_version(&e.fence, v),
            Event::HostDeadlinePassed(e) => self.fences.note_version(&e.fence, v),
            Event::RolledBack(_) => self.timeline.version = v,
            Event::ObjectObserved(e) => self.cluster.note_version(&e.key.kind, v),
            Event::ObjectGone(e) => self.cluster.note_version(&e.key.kind, v),
        }
    }

    fn evolve_concept(&mut self, concept: Concept, event: Event, meta: &Meta) {
        match concept {
            Concept::Resource => Resources::evolve(&mut self.resources, event, meta),
            Concept::Service => Services::evolve(&mut self.services, event, meta),
            Concept::Instance => Instances::evolve(&mut self.instances, event, meta),
            Concept::Fence => Fences::evolve(&mut self.fences, event, meta),
            Concept::Cluster => Cluster::evolve(&mut self.cluster, event, meta),
        }
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

    /// A hex SHA-256 of each concept's state, in concept order.
    pub fn concept_digests(&self) -> Vec<(&'static str, String)> {
        Concept::ALL
            .iter()
            .map(|c| {
                let digest = match c {
                    Concept::Resource => digest_of(&self.resources),
                    Concept::Service => digest_of(&self.services),
                    Concept::Instance => digest_of(&self.instances),
                    Concept::Fence => digest_of(&self.fences),
                    Concept::Cluster => digest_of(&self.cluster),
                };
                (c.name(), digest)
            })
            .collect()
    }
}

/// The apply command for one declarative document: EaseMesh's group goes to the service
/// concept, everything else to the declarative-resource concept.
pub fn document_command(document: &serde_json::Value) -> Result<MeshCommand, Rejection> {
    if CatalogItem::claims(document) {
        let item = CatalogItem::from_document(document)?;
        Ok(MeshCommand::Service(ServiceCommand::Apply(vec![item])))
    } else {
        let manifest = ResourceManifest::from_value(document)?;
        Ok(MeshCommand::Resource(ResourceCommand::Apply(manifest)))
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
