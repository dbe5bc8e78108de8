//! The contract every mesh concept implements, on top of [`Decider`].
//!
//! A concept declares, next to its own logic, everything the hubs need to host it: its name,
//! the Kubernetes kinds it owns, which events it folds (its own, and those of other concepts it
//! keeps a view of, declared by the reader the way linkerd2's indexes declare the kinds they
//! index), how an undone event's stream version is kept, and what its timers decide. The hubs (the mesh, the daemon's
//! dispatcher and monitors, the simulator) loop over the registry ([`crate::registry`]) and
//! never name a concept.

use events::Event;
use serde::Serialize;

use crate::decider::{Decider, Meta};
use crate::kinds::KindSpec;

/// A mesh concept: a pure decider plus what the hubs need to host it.
pub trait Concept:
    Decider<
        State: Clone + PartialEq + std::fmt::Debug + Serialize + Send + Sync + Unpin + 'static,
        Command: Clone + std::fmt::Debug + Send + 'static,
    > + Sized
    + 'static
{
    /// The concept's name in digests, metrics and logs (`fence`).
    const NAME: &'static str;

    /// How often the daemon runs the concept's timers ([`Concept::due`]), in milliseconds;
    /// 0 when it has none. Bounds how late a due transition is noticed.
    const TICK_MS: u64 = 0;

    /// Due commands per atomic append.
    const DUE_BATCH: usize = 512;

    /// The Kubernetes kinds the concept owns, with everything meshplane does with each (see
    /// [`crate::kinds`], the table assembled from every concept's). Empty for a concept that
    /// reads or writes no Kubernetes object.
    const KINDS: &'static [KindSpec] = &[];

    /// Whether the concept takes the declarative documents no other concept takes (the generic
    /// resources, which refuse what is no known kind, naming the field). One concept does.
    const TAKES_OTHER_DOCUMENTS: bool = false;

    /// The apply command for a declarative document (`meshplane apply`, `/api/v1/apply`) when
    /// it is this concept's (EaseMesh's `mesh.megaease.com` group is the service concept's),
    /// `None` otherwise.
    fn document(_document: &serde_json::Value) -> Option<Result<Self::Command, crate::Rejection>> {
        None
    }

    /// The concept's own kinds of objects that are not Kubernetes objects (`Tenant`,
    /// `ServiceInstance`), as `meshplane history` names them.
    const OBJECT_KINDS: &'static [&'static str] = &[];

    /// What the daemon keeps for this concept in memory beside the log, never in it (heartbeats,
    /// the address table of callers): rebuilt from the state at every start and rollback, kept
    /// in step with the log by [`Concept::remember`]. `()` for most concepts.
    type Memory: Send + Sync + 'static;

    /// Whether the concept folds `event`: its own events, and the events of other concepts it
    /// keeps a view of. Decides the fold's routing; must be cheap (it runs for every event).
    fn folds(event: &Event) -> bool;

    /// Record that the stream of one of its own events reached `version`, without folding the
    /// event's content (an event a rollback undid: its stream version stays a fact of the log,
    /// so the next append expects it). Returns whether the event is the concept's own.
    fn note_version(state: &mut Self::State, event: &Event, version: u64) -> bool;

    /// The memory for `mesh` after a start (or rollback) at `now_ms`, keeping what `previous`
    /// knew that still holds (a rollback must not silence a live sidecar).
    fn recall(mesh: &crate::Mesh, previous: Option<Self::Memory>, now_ms: i64) -> Self::Memory;

    /// Follow the log: called with every durable event, in order, after the state folded it.
    fn remember(_memory: &mut Self::Memory, _event: &Event, _meta: &Meta) {}

    /// The commands the concept's timers produce at `now_ms` (liveness transitions, ageing),
    /// in a defined order. Each returned command is marked pending in the memory until
    /// [`Concept::settle`], so one transition is not decided twice. By default, what
    /// [`Concept::due_in_memory`] says.
    fn due(_state: &Self::State, memory: &mut Self::Memory, now_ms: i64) -> Vec<Self::Command> {
        Self::due_in_memory(memory, now_ms).unwrap_or_default()
    }

    /// The due commands when the memory alone decides them (liveness from heartbeats), or
    /// `None` when they need the state ([`Concept::due`]). The daemon judges these without a
    /// round trip to the concept's actor, so a burst of events waiting in its mailbox (100,000
    /// instances going silent at once) never delays the next deadline.
    fn due_in_memory(_memory: &mut Self::Memory, _now_ms: i64) -> Option<Vec<Self::Command>> {
        None
    }

    /// The due commands were executed (or abandoned): judge them again from now on.
    fn settle(_memory: &mut Self::Memory, _done: &[Self::Command]) {}

    /// The streams of this concept that hold (part of) the history of `object` (none when the
    /// concept keeps nothing of it); a refusal when the name is malformed for the kind.
    fn history(
        _object: &crate::history::ObjectName,
    ) -> Result<Vec<crate::history::HistorySource>, crate::Rejection> {
        Ok(Vec::new())
    }

    /// The hex SHA-256 the replay digest and the simulator's trace record for this state.
    fn digest(state: &Self::State) -> String {
        crate::mesh::digest_of(state)
    }
}
