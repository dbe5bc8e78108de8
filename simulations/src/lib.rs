//! Deterministic simulation of meshplane's real actors and projections.
//!
//! This crate depends only on the pure crates (`events`, `actors`, `projections`): the simulator
//! drives the same deciders the daemon hosts, on a virtual clock, from one seed. The seeded
//! world, fault injection and invariant checking are built under the simulation issue; today
//! the crate provides the deterministic fold helpers both the simulator and its tests build on.
#![forbid(unsafe_code)]
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]

use actors::Mesh;
use events::{Envelope, StoreError};

/// Fold envelopes, in order, into a fresh mesh.
pub fn fold<'a>(envelopes: impl IntoIterator<Item = &'a Envelope>) -> Result<Mesh, StoreError> {
    let mut mesh = Mesh::default();
    for e in envelopes {
        if e.position != mesh.position + 1 {
            return Err(StoreError::Corrupt {
                position: e.position,
                reason: format!("expected position {} next", mesh.position + 1),
            });
        }
        mesh.apply(e)?;
    }
    Ok(mesh)
}
