//! The registry: every mesh concept, listed once.
//!
//! [`with_concepts!`] is the one list. Everything that must know every concept is expanded
//! from it: [`Mesh`](crate::Mesh)'s fields, [`MeshCommand`](crate::MeshCommand)'s variants,
//! [`ConceptId`], the fold's routing, the digests, and (in other crates) the daemon's actors,
//! each concept's I/O and the simulator's timers. A concept left out of any of these is a
//! compile error, never a silent skip, because none of them lists concepts by hand.
//!
//! Adding a concept is adding one line here (see `ARCHITECTURE.md`, "Adding a concept").
//!
//! Code that runs per concept without a macro implements [`ConceptVisitor`] and calls
//! [`for_each_concept`], or matches on [`ConceptId`].

use crate::concept::Concept;

/// Expands `$callback! { Variant field: Decider, ... }` over every concept, in registry order:
/// the order of `Mesh`'s fields, of the digests and of the fold. Other crates use it to build
/// tables that must cover every concept (their own trait implemented for each decider type).
#[macro_export]
macro_rules! with_concepts {
    ($($callback:tt)+) => {
        $($callback)+! {
            Resource resources: $crate::resource::Resources,
            Service services: $crate::service::Services,
            Instance instances: $crate::instance::Instances,
            Fence fences: $crate::fence::Fences,
            Cluster cluster: $crate::cluster::Cluster,
        }
    };
}

/// A concept's place in the mesh: its id, and where its state and commands sit. Implemented
/// for every registered concept by the registry, never by hand.
pub trait Registered: Concept {
    const ID: ConceptId;
    fn state(mesh: &Mesh) -> &Self::State;
    fn state_mut(mesh: &mut Mesh) -> &mut Self::State;
    /// Wrap a command of this concept.
    fn wrap(command: Self::Command) -> MeshCommand;
    /// This concept's command, if `command` is one.
    fn unwrap(command: MeshCommand) -> Option<Self::Command>;
}

/// Code that runs once per concept, generic over it.
pub trait ConceptVisitor {
    fn visit<C: Registered>(&mut self);
}

/// Generates the registry's items from the list in [`with_concepts!`].
macro_rules! define_registry {
    ($($variant:ident $field:ident: $ty:ty,)+) => {
        /// The registered concepts, in registry order.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum ConceptId {
            $($variant,)+
        }

        impl ConceptId {
            /// Every concept, in registry order.
            pub const ALL: &'static [ConceptId] = &[$(ConceptId::$variant,)+];

            pub fn name(self) -> &'static str {
                match self {
                    $(ConceptId::$variant => <$ty as Concept>::NAME,)+
                }
            }

            /// Whether this concept folds `event` (see [`Concept::folds`]).
            pub fn folds(self, event: &events::Event) -> bool {
                match self {
                    $(ConceptId::$variant => <$ty as Concept>::folds(event),)+
                }
            }
        }

        /// Every concept's state, folded from the log up to `position`.
        #[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        pub struct Mesh {
            /// The last log position folded in (0 = nothing).
            pub position: u64,
            $(pub $field: <$ty as crate::decider::Decider>::State,)+
            /// The rollbacks that shaped this state.
            pub timeline: crate::timeline::Timeline,
        }

        /// A command for any concept.
        #[derive(Clone, Debug, PartialEq)]
        pub enum MeshCommand {
            $($variant(<$ty as crate::decider::Decider>::Command),)+
        }

        impl MeshCommand {
            pub fn concept(&self) -> ConceptId {
                match self {
                    $(MeshCommand::$variant(_) => ConceptId::$variant,)+
                }
            }
        }

        $(
            impl Registered for $ty {
                const ID: ConceptId = ConceptId::$variant;
                fn state(mesh: &Mesh) -> &Self::State {
                    &mesh.$field
                }
                fn state_mut(mesh: &mut Mesh) -> &mut Self::State {
                    &mut mesh.$field
                }
                fn wrap(command: Self::Command) -> MeshCommand {
                    MeshCommand::$variant(command)
                }
                fn unwrap(command: MeshCommand) -> Option<Self::Command> {
                    match command {
                        MeshCommand::$variant(c) => Some(c),
                        #[allow(unreachable_patterns)]
                        _ => None,
                    }
                }
            }
        )+

        /// Run `visitor` once per concept, in registry order.
        pub fn for_each_concept(visitor: &mut impl ConceptVisitor) {
            $(visitor.visit::<$ty>();)+
        }

        /// Run `visitor` for the concept `id` only.
        pub fn visit_concept(id: ConceptId, visitor: &mut impl ConceptVisitor) {
            match id {
                $(ConceptId::$variant => visitor.visit::<$ty>(),)+
            }
        }
    };
}

with_concepts!(define_registry);

/// A set of concepts, as a bit set in registry order (no allocation: the set of concepts that
/// fold an event is computed for every event of a replay).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConceptSet(u64);

impl ConceptSet {
    /// Every concept.
    pub fn all() -> ConceptSet {
        ConceptSet((1u64 << ConceptId::ALL.len()) - 1)
    }

    /// Both sets' concepts.
    pub fn union(self, other: ConceptSet) -> ConceptSet {
        ConceptSet(self.0 | other.0)
    }

    /// The concepts that fold `event`: its owner, plus those that keep a view of it.
    pub fn folding(event: &events::Event) -> ConceptSet {
        let mut bits = 0;
        for (i, id) in ConceptId::ALL.iter().enumerate() {
            if id.folds(event) {
                bits |= 1 << i;
            }
        }
        ConceptSet(bits)
    }

    /// The set without concept `id`.
    pub fn without(self, id: ConceptId) -> ConceptSet {
        ConceptSet(self.0 & !(1 << id as u32))
    }

    pub fn contains(self, id: ConceptId) -> bool {
        self.0 & (1 << id as u32) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// The concepts, in registry order.
    pub fn iter(self) -> impl Iterator<Item = ConceptId> {
        ConceptId::ALL
            .iter()
            .copied()
            .filter(move |id| self.contains(*id))
    }
}
