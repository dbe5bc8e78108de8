//! The etcd projection target: makes etcd hold exactly the key/values the daemon's folded state
//! asks for, under the key prefixes meshplane owns (e.g. `/mesh/` for EaseMesh's registry layout
//! and `/meshplane/resources/`), and records the log position it reflects in a checkpoint key.
//!
//! - [`prefixes`]: which keys the target owns, and the key ranges to read them;
//! - [`checkpoint`]: the checkpoint value and the compare that fences every transaction on it;
//! - [`plan`]: the puts and deletes that turn what etcd holds into what is desired, cut into
//!   transactions that etcd accepts;
//! - [`snapshot`]: reading back what etcd holds under the owned prefixes, paginated, at one
//!   revision;
//! - [`target`]: [`EtcdTarget`], the connection and the sync loop over all of the above;
//! - [`projector`]: [`EtcdProjector`], the daemon's loop from delivered state to the target.
//!
//! Values are never logged (they may later hold secrets): logs carry key counts and positions.

mod call;
pub mod checkpoint;
pub mod plan;
pub mod prefixes;
pub mod projector;
pub mod snapshot;
pub mod target;

pub use checkpoint::CHECKPOINT_KEY;
pub use projector::EtcdProjector;
pub use target::{EtcdTarget, SyncReport};
