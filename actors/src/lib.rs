//! meshplane's mesh concepts as pure deciders.
//!
//! Each concept is a decider: `decide(&State, Command, &mut Ctx) -> Result<Decision, Rejection>`
//! and `evolve(&mut State, &Event, &Meta)` (total, infallible). Time, ids and randomness enter
//! only through [`Ctx`] or as event fields; this crate reads no clock, does no I/O and iterates
//! only in a defined order, so the same log always folds to the same state and digest.
//!
//! The daemon hosts each concept in an actix actor (see `adapters::host`), which is a shell
//! around these functions and holds no logic of its own.
#![forbid(unsafe_code)]
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]

pub mod cluster;
pub mod concept;
pub mod ctx;
pub mod decider;
pub mod decode;
pub mod fence;
pub mod history;
pub mod instance;
pub mod kinds;
pub mod mesh;
pub mod registry;
pub mod resource;
pub mod service;
pub mod timeline;

pub use concept::Concept;
pub use ctx::Ctx;
pub use decider::{Decider, Decision, Meta, Outcome, Rejection, RejectionKind};
pub use mesh::{Mesh, MeshCommand};
pub use registry::{ConceptId, Registered};
