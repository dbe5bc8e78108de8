//! Opening a data directory's event log for the offline commands (`replay`, `log`).

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use events::EventStore;

use adapters::storage::{self, StoreKind};

/// Open an existing log to read it only; a data directory without one is an error, not a new
/// empty log. Never changes the file (see `storage::inspect_store`).
pub fn open_existing(data_dir: &Path, kind: StoreKind) -> Result<Arc<dyn EventStore>> {
    let path = storage::store_path(data_dir, kind);
    if !path.exists() {
        bail!(
            "no {kind} event log at {} (is --data right? a sled log needs --store sled)",
            path.display()
        );
    }
    // The error says why: the log is damaged (with the report), or in use by a daemon.
    storage::inspect_store(data_dir, kind)
        .with_context(|| format!("cannot read the {kind} event log in {}", data_dir.display()))
}

/// Open (creating if needed) the log of a data directory.
pub fn open(data_dir: &Path, kind: StoreKind) -> Result<Arc<dyn EventStore>> {
    storage::open_store(data_dir, kind)
        .with_context(|| format!("cannot open the {kind} event log in {}", data_dir.display()))
}
