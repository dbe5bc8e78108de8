//! The actix actor host.
//!
//! Each mesh concept runs in its own actix actor ([`ConceptActor`]) that owns the concept's
//! state and does nothing but call the concept's pure `decide` and `evolve`. The
//! [`Dispatcher`] turns an accepted command into durably appended events, and the delivery loop
//! feeds every durable event to the actors in log order — the only way their state changes.

mod actor;
mod dispatcher;
mod fold;
mod handle;
mod memory;
pub mod timers;

pub use actor::{ConceptActor, DecideAll, Deliver, Read, Replace, Sync};
pub use dispatcher::{DispatchError, Dispatcher, Executed, Observer};
pub use fold::{fold, fold_onto, state_at, StoreSource};
pub use handle::{ActorHandle, Handle};
pub use memory::{Memories, Memory};
