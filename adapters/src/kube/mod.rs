//! The Kubernetes adapter (`meshplane run --kubeconfig PATH`, or in-cluster config).
//!
//! Three independent loops, each a thin shell of I/O around pure code elsewhere:
//! - [`observe`]: kube-runtime watchers per kind; each object reduced to the fields meshplane
//!   reads and sent to the observed-cluster concept (`actors::cluster`), which appends an event
//!   only for a real change: a relist of unchanged objects appends nothing, and objects vanish
//!   only on a seen delete or from a complete relist.
//! - [`apply`]: server-side apply (field manager `meshplane`) of what the projections desire,
//!   only for objects whose content changed since their last successful apply; deletes of
//!   objects labelled `app.kubernetes.io/managed-by: meshplane` that are no longer desired;
//!   after a restart, compares against the cluster before writing anything.
//! - [`lease`]: a `coordination.k8s.io` Lease; only its holder applies. Another holder's
//!   record counts as expired only after staying unchanged for its duration on our own
//!   monotonic clock (no trust in its renewTime), and our leadership ends on a deadline
//!   (`lease_duration - renew_every` after the last successful write) that `is_leader` checks.
//!
//! The API resource table ([`kinds`]) maps every kind meshplane reads or writes to its group,
//! version, plural and scope.

pub mod apply;
pub mod client;
pub mod kinds;
pub mod lease;
pub mod observe;
pub mod project;
