//! The kinds no concept owns: those meshplane's own machinery uses in the cluster.

use super::spec::{KindSpec, Reach, Scope};

/// core/v1 Events: the applier reports each streak of failed writes as a `Warning` Event on
/// the source object (created, then patched to count repeats).
pub const EVENT: KindSpec = KindSpec::new("Event", &["v1"], "events", Scope::Namespaced)
    .granted(&["create", "patch"], Reach::Cluster);

/// The leader Lease: only its holder writes to the cluster. Granted in meshplane's own
/// namespace only.
pub const LEASE: KindSpec = KindSpec::new(
    "Lease",
    &["coordination.k8s.io/v1"],
    "leases",
    Scope::Namespaced,
)
.granted(
    &["get", "list", "watch", "create", "update", "patch"],
    Reach::OwnNamespace,
);

/// The machinery's kinds, after every concept's in the table.
pub const KINDS: &[KindSpec] = &[EVENT, LEASE];
