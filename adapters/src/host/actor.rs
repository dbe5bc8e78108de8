//! One actix actor per concept: a shell around a pure decider.

use std::sync::Arc;

use actix::{Actor, Context, Handler, Message, MessageResult};
use actors::{Ctx, Decider, Decision, Meta, Rejection};
use events::Event;

/// Hosts the state of one concept. All logic is in `D`.
pub struct ConceptActor<D: Decider> {
    state: D::State,
    position: u64,
}

impl<D: Decider> ConceptActor<D> {
    /// Start from a state already folded up to `position` (the start-up replay).
    pub fn new(state: D::State, position: u64) -> Self {
        ConceptActor { state, position }
    }
}

impl<D> Actor for ConceptActor<D>
where
    D: Decider + 'static,
    D::State: Unpin + 'static,
{
    type Context = Context<Self>;
}

/// Decide commands against the current state, with the time and seed the caller gives, in one
/// mailbox round trip however many there are (a request's documents, a liveness monitor's
/// batch). Stops at the first rejection: the answer then ends with it.
pub struct DecideAll<C> {
    pub commands: Vec<C>,
    pub now_ms: i64,
    pub seed: u64,
}

impl<C: 'static> Message for DecideAll<C> {
    type Result = Vec<Result<Decision, Rejection>>;
}

impl<D> Handler<DecideAll<D::Command>> for ConceptActor<D>
where
    D: Decider + 'static,
    D::State: Unpin + 'static,
    D::Command: 'static,
{
    type Result = MessageResult<DecideAll<D::Command>>;

    fn handle(&mut self, msg: DecideAll<D::Command>, _: &mut Context<Self>) -> Self::Result {
        // One seeded context for the batch: its draws differ from command to command.
        let mut ctx = Ctx::new(msg.now_ms, msg.seed);
        let mut out = Vec::with_capacity(msg.commands.len());
        for command in msg.commands {
            let result = D::decide(&self.state, command, &mut ctx);
            let rejected = result.is_err();
            out.push(result);
            if rejected {
                break;
            }
        }
        MessageResult(out)
    }
}

/// Fold one durable event. Sent by the delivery loop only, in log order.
pub struct Deliver {
    pub event: Arc<Event>,
    pub meta: Meta,
}

impl Message for Deliver {
    type Result = ();
}

impl<D> Handler<Deliver> for ConceptActor<D>
where
    D: Decider + 'static,
    D::State: Unpin + 'static,
{
    type Result = ();

    fn handle(&mut self, msg: Deliver, _: &mut Context<Self>) {
        debug_assert!(
            msg.meta.position > self.position,
            "events must arrive in log order"
        );
        // The delivery loop has dropped its handle by now, so this rarely copies.
        D::evolve(&mut self.state, Arc::unwrap_or_clone(msg.event), &msg.meta);
        self.position = msg.meta.position;
    }
}

/// Replace the whole state (a rollback): the state as of the rollback's position.
pub struct Replace<S> {
    pub state: S,
    pub position: u64,
}

impl<S: 'static> Message for Replace<S> {
    type Result = ();
}

impl<D> Handler<Replace<D::State>> for ConceptActor<D>
where
    D: Decider + 'static,
    D::State: Unpin + 'static,
{
    type Result = ();

    fn handle(&mut self, msg: Replace<D::State>, _: &mut Context<Self>) {
        self.state = msg.state;
        self.position = msg.position;
    }
}

/// Marks that the actor has seen every event up to the given position (it folds only the
/// events of its concept, so this is how its position passes the others'); answers with that
/// position once every earlier message is handled.
pub struct Sync(pub u64);

impl Message for Sync {
    type Result = u64;
}

impl<D> Handler<Sync> for ConceptActor<D>
where
    D: Decider + 'static,
    D::State: Unpin + 'static,
{
    type Result = u64;

    fn handle(&mut self, msg: Sync, _: &mut Context<Self>) -> u64 {
        self.position = self.position.max(msg.0);
        self.position
    }
}

/// A read-only query over a concept's state and the log position that state reflects.
pub type Query<S, R> = Box<dyn FnOnce(&S, u64) -> R + Send>;

/// Run a read-only query over the state.
pub struct Read<S, R>(pub Query<S, R>);

impl<S: 'static, R: 'static> Message for Read<S, R> {
    type Result = R;
}

impl<D, R> Handler<Read<D::State, R>> for ConceptActor<D>
where
    D: Decider + 'static,
    D::State: Unpin + 'static,
    R: 'static,
{
    type Result = MessageResult<Read<D::State, R>>;

    fn handle(&mut self, msg: Read<D::State, R>, _: &mut Context<Self>) -> Self::Result {
        MessageResult((msg.0)(&self.state, self.position))
    }
}
