//! Each concept's projection: the desired Kubernetes objects (in chunks, in key order) and etcd
//! keys its state alone yields, and which targets it writes.
//!
//! Replay, the digest, the simulator, the manifest directory and the Kubernetes projector all
//! go through [`Projection`], expanded over the registry (`actors::with_concepts!`), so a
//! concept without a projection does not compile and none is walked by hand.

use std::collections::BTreeMap;

use actors::registry::ConceptId;
use actors::Registered;
use serde_json::Value;

use crate::object::{KubeObject, ObjectRef};

/// One thing a projection target should make true.
#[derive(Clone, Debug, PartialEq)]
pub enum DesiredItem {
    /// An object meshplane owns, whole.
    Object(ObjectRef, Box<KubeObject>),
    /// The status of an object meshplane does not own (a ServiceFence written by someone
    /// else): apiVersion, kind, metadata name/namespace and `status`.
    Status(ObjectRef, Value),
    /// A state entry that could not be rendered, with why (never expected: every resource
    /// was validated against the same types when it was applied). Reported, never written.
    Unprojectable(ObjectRef, String),
}

/// Where a concept's desired state goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Targets {
    /// Kubernetes objects (the cluster, or the manifest directory without one).
    pub kube: bool,
    /// etcd keys.
    pub etcd: bool,
}

impl Targets {
    pub const NONE: Targets = Targets {
        kube: false,
        etcd: false,
    };
}

/// A concept's projection. Reads only the concept's own state.
pub trait Projection: Registered {
    /// The targets the concept writes.
    const TARGETS: Targets;

    /// Kinds of objects someone else applies whose uids the concept's objects name in their
    /// owner references (a Sidecar is owned by its ServiceFence): the Kubernetes projector reads
    /// their uids from what the watchers observed before each pass.
    const OWNER_KINDS: &'static [&'static str] = &[];

    /// A position in the concept's desired Kubernetes objects (the key of its state's map).
    type Cursor: Clone + Send + 'static;

    /// Up to `max` of the concept's state entries after `after` (from the start when `None`),
    /// rendered into `out`; returns the cursor of the last entry rendered, or `None` when there
    /// were none left (the walk is over). Bounded so an adapter holding the concept's actor
    /// never renders more than a chunk at a time.
    fn kube_chunk(
        _state: &Self::State,
        _after: Option<&Self::Cursor>,
        _max: usize,
        _out: &mut Vec<DesiredItem>,
    ) -> Option<Self::Cursor> {
        None
    }

    /// Every etcd key the concept's state yields.
    fn etcd_keys(_state: &Self::State, _out: &mut BTreeMap<String, String>) {}

    /// The etcd key prefixes [`Projection::etcd_keys`] writes under: an etcd target owns these.
    fn etcd_prefixes() -> &'static [&'static str] {
        &[]
    }
}

/// Code that runs once per concept's projection, generic over it.
pub trait ProjectionVisitor {
    fn visit<P: Projection>(&mut self);
}

/// Generates the projection table from the registry's list.
macro_rules! projection_table {
    ($($variant:ident $field:ident: $ty:ty,)+) => {
        /// Run `visitor` once per concept, in registry order.
        pub fn for_each_projection(visitor: &mut impl ProjectionVisitor) {
            $(visitor.visit::<$ty>();)+
        }

        /// Every kind some concept's objects may be owned by ([`Projection::OWNER_KINDS`]).
        pub fn owner_kinds() -> Vec<&'static str> {
            let mut kinds = Vec::new();
            $(kinds.extend(<$ty as Projection>::OWNER_KINDS);)+
            kinds
        }

        /// The targets concept `id` writes.
        pub fn targets(id: ConceptId) -> Targets {
            match id {
                $(ConceptId::$variant => <$ty as Projection>::TARGETS,)+
            }
        }
    };
}

actors::with_concepts!(projection_table);

/// The targets whose desired state `event` may change: those of every concept that folds it.
/// The projectors skip a pass otherwise (registry transitions at 100,000 instances never cost
/// a Kubernetes pass).
pub fn targets_of(event: &events::Event) -> Targets {
    actors::registry::ConceptSet::folding(event)
        .iter()
        .map(targets)
        .fold(Targets::NONE, |a, b| Targets {
            kube: a.kube || b.kube,
            etcd: a.etcd || b.etcd,
        })
}
