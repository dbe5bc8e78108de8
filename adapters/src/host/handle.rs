//! One concept's actor behind a handle that does not name its type, so the dispatcher holds
//! every concept's actor in one table built from the registry and loops over it.

use std::any::Any;
use std::sync::Arc;

use actix::{Actor, Addr, MailboxError};
use actors::registry::{for_each_concept, ConceptVisitor};
use actors::{ConceptId, Decision, Mesh, MeshCommand, Meta, Registered, Rejection};
use events::Event;
use futures::future::BoxFuture;

use super::actor::{ConceptActor, DecideAll, Deliver, Read, Replace, Sync};

/// Moves one concept's state into a mesh being assembled.
pub type StateInto = Box<dyn FnOnce(&mut Mesh) + Send>;

/// What the dispatcher does with any concept's actor.
pub trait Handle: Send + std::marker::Sync {
    fn id(&self) -> ConceptId;
    /// Decide a run of this concept's commands in one mailbox round trip.
    fn decide_all(
        &self,
        commands: &[MeshCommand],
        now_ms: i64,
        seed: u64,
    ) -> BoxFuture<'static, Result<Vec<Result<Decision, Rejection>>, MailboxError>>;
    /// Fold one durable event (the delivery loop only, in log order).
    fn deliver(&self, event: Arc<Event>, meta: Meta);
    /// Answers once every earlier message is handled; the actor's position passes `position`.
    fn sync(&self, position: u64) -> BoxFuture<'static, Result<u64, MailboxError>>;
    /// Replace the state with this concept's part of `mesh` (taken out of it): a rollback.
    fn replace(&self, mesh: &mut Mesh, position: u64);
    /// A copy of the state and the position it reflects.
    fn snapshot(&self) -> BoxFuture<'static, Result<(StateInto, u64), MailboxError>>;
    fn as_any(&self) -> &dyn Any;
}

/// The handle of concept `C`'s actor.
pub struct ActorHandle<C: Registered> {
    pub addr: Addr<ConceptActor<C>>,
}

impl<C: Registered> Handle for ActorHandle<C> {
    fn id(&self) -> ConceptId {
        C::ID
    }

    fn decide_all(
        &self,
        commands: &[MeshCommand],
        now_ms: i64,
        seed: u64,
    ) -> BoxFuture<'static, Result<Vec<Result<Decision, Rejection>>, MailboxError>> {
        let commands = commands
            .iter()
            .map(|c| C::unwrap(c.clone()).expect("a run holds commands of one concept"))
            .collect();
        let sent = self.addr.send(DecideAll {
            commands,
            now_ms,
            seed,
        });
        Box::pin(sent)
    }

    fn deliver(&self, event: Arc<Event>, meta: Meta) {
        self.addr.do_send(Deliver { event, meta });
    }

    fn sync(&self, position: u64) -> BoxFuture<'static, Result<u64, MailboxError>> {
        Box::pin(self.addr.send(Sync(position)))
    }

    fn replace(&self, mesh: &mut Mesh, position: u64) {
        let state = std::mem::take(C::state_mut(mesh));
        self.addr.do_send(Replace { state, position });
    }

    fn snapshot(&self) -> BoxFuture<'static, Result<(StateInto, u64), MailboxError>> {
        let read = self.addr.send(Read(Box::new(|state: &C::State, position| {
            let state = state.clone();
            let into: StateInto = Box::new(move |mesh: &mut Mesh| *C::state_mut(mesh) = state);
            (into, position)
        })));
        Box::pin(read)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Start one actor per registered concept from the folded `mesh` (its states are moved out).
pub fn start_all(mesh: &mut Mesh) -> Vec<Arc<dyn Handle>> {
    struct Start<'a> {
        mesh: &'a mut Mesh,
        handles: Vec<Arc<dyn Handle>>,
    }
    impl ConceptVisitor for Start<'_> {
        fn visit<C: Registered>(&mut self) {
            let state = std::mem::take(C::state_mut(self.mesh));
            let addr = ConceptActor::<C>::new(state, self.mesh.position).start();
            self.handles.push(Arc::new(ActorHandle::<C> { addr }));
        }
    }
    let mut start = Start {
        mesh,
        handles: Vec::new(),
    };
    for_each_concept(&mut start);
    start.handles
}
