//! The one table of Kubernetes kinds: every kind meshplane accepts, watches, writes or needs
//! permissions on, with everything any part of meshplane needs to know about it.
//!
//! Each concept declares the kinds it owns next to its logic ([`Concept::KINDS`]: the generic
//! resources in `resource/kinds.rs`, the fence's in `fence/kinds.rs`, the observed cluster's
//! in `cluster/kinds.rs`), and meshplane's own machinery its Events and Lease
//! ([`machinery`]). The table is assembled from the registry ([`crate::with_concepts!`]), so a
//! new concept brings its kinds with it and no hub lists kinds by hand.
//!
//! Everything that needs to know about kinds reads this table: validation of applied objects
//! and the CLI's names ([`KindSpec`]), the watchers and what they keep ([`Observe`]), the
//! applier's write order ([`Phase`]), the install manifest's RBAC ([`rbac`]), the typed
//! projections, `meshplane get`'s columns. Code tied to a technology stays in the crate that
//! depends on it, keyed by this table (kube's `ApiResource` in `adapters::kube::kinds`).
//!
//! Pure: constants and lookups, in table order (registry order, each concept's kinds in the
//! order it declares them, then the machinery's).
//!
//! [`Concept::KINDS`]: crate::Concept::KINDS

pub mod machinery;
pub mod rbac;
mod spec;
#[cfg(test)]
mod tests;
pub mod validate;

pub use validate::names::NameRule;

pub use spec::{
    group_of, Column, Definition, Grant, KindSpec, Observe, Phase, Projection, Reach, Scope,
    Validate, Write,
};

use crate::concept::Concept;

/// Generates [`BY_CONCEPT`] from the registry's list.
macro_rules! kind_table {
    ($($variant:ident $field:ident: $ty:ty,)+) => {
        /// Each concept's kinds, in registry order.
        const BY_CONCEPT: &[&[KindSpec]] = &[$(<$ty as Concept>::KINDS,)+];
    };
}

crate::with_concepts!(kind_table);

/// Every kind, in table order.
pub fn all() -> impl Iterator<Item = &'static KindSpec> {
    BY_CONCEPT
        .iter()
        .copied()
        .chain([machinery::KINDS])
        .flatten()
}

/// The kind named exactly `kind` (`ConfigMap`).
pub fn get(kind: &str) -> Option<&'static KindSpec> {
    all().find(|k| k.kind == kind)
}

/// The kinds `apply` accepts.
pub fn applied() -> impl Iterator<Item = &'static KindSpec> {
    all().filter(|k| k.is_applied())
}

/// The kinds the watchers observe, in the order they start.
pub fn watched() -> impl Iterator<Item = &'static KindSpec> {
    all().filter(|k| k.is_watched())
}

/// The kinds the applier writes (what the projections may desire).
pub fn written() -> impl Iterator<Item = &'static KindSpec> {
    all().filter(|k| k.is_written())
}
