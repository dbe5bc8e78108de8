//! Opening a data directory's event log for the offline commands (`replay`, `log`).

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use events::EventStore;

use adapters::storage::{self, StoreKind};

/// Open an existing log; a data directory without one is an error, not a new empty log.
pub fn open_existing(data_dir: &Path, kind: StoreKind) -> Result<Arc<dyn EventStore>> {
    let path = storage::store_path(data_dir, kind);
    if !path.exists() {
        bail!(
            "no {kind} event log at {} (is --data right? a sled log needs --store sled)",
            path.display()
        );
    }
    open(data_dir, kind)
}

/// Open (creating if needed) the log of a data directory.
pub fn open(data_dir: &Path, kind: StoreKind) -> Result<Arc<dyn EventStore>> {
    storage::open_store(data_dir, kind).with_context(|| {
        format!(
            "cannot open the {kind} event log in {} (is the daemon running on it? stop it first, or use an exported log)",
            data_dir.display()
        )
    })
}
