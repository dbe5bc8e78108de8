//! Opening the configured event store under the data directory.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use events::backend::redb::RedbBackend;
use events::{EventStore, Log};

use crate::error::Error;

/// Which storage engine holds the log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StoreKind {
    /// redb, one file `events.redb` in the data directory: the default.
    #[default]
    Redb,
    /// sled, a directory `sled/` in the data directory (build feature `sled`).
    Sled,
}

impl FromStr for StoreKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "redb" => Ok(StoreKind::Redb),
            "sled" => Ok(StoreKind::Sled),
            other => Err(format!("unknown store `{other}` (use redb or sled)")),
        }
    }
}

impl std::fmt::Display for StoreKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StoreKind::Redb => "redb",
            StoreKind::Sled => "sled",
        })
    }
}

/// Where the store of `kind` lives under `data_dir`.
pub fn store_path(data_dir: &Path, kind: StoreKind) -> PathBuf {
    match kind {
        StoreKind::Redb => data_dir.join("events.redb"),
        StoreKind::Sled => data_dir.join("sled"),
    }
}

/// Open (creating if needed) the event store under `data_dir`, with a group-commit writer.
/// The log is checked on open (ARCHITECTURE.md, "Storage faults"): a damaged one is refused
/// with a report; what the open repaired is reported through `EventStore::recovery`.
pub fn open_store(data_dir: &Path, kind: StoreKind) -> Result<Arc<dyn EventStore>, Error> {
    std::fs::create_dir_all(data_dir).map_err(|e| Error::io(data_dir, e))?;
    let path = store_path(data_dir, kind);
    let store: Arc<dyn EventStore> = match kind {
        StoreKind::Redb => Arc::new(Log::open(RedbBackend::open(&path)?)?),
        StoreKind::Sled => open_sled(&path)?,
    };
    let recovery = store.recovery();
    if !recovery.is_clean() {
        tracing::warn!(path = %path.display(), "{recovery}");
    }
    Ok(store)
}

/// Open the event store under `data_dir` to read it only (`replay`, `log export`, `log
/// verify`): nothing is written to the file, not even the repair redb makes after an unclean
/// shutdown (it is made in memory), and a damaged log is refused with a report. sled has no
/// such mode: its log is opened as the daemon opens it.
pub fn inspect_store(data_dir: &Path, kind: StoreKind) -> Result<Arc<dyn EventStore>, Error> {
    let path = store_path(data_dir, kind);
    match kind {
        StoreKind::Redb => Ok(Arc::new(Log::open(RedbBackend::inspect(&path)?)?)),
        StoreKind::Sled => open_sled(&path),
    }
}

#[cfg(feature = "sled")]
fn open_sled(path: &Path) -> Result<Arc<dyn EventStore>, Error> {
    Ok(Arc::new(Log::open(
        events::backend::sled::SledBackend::open(path)?,
    )?))
}

#[cfg(not(feature = "sled"))]
fn open_sled(_path: &Path) -> Result<Arc<dyn EventStore>, Error> {
    Err(Error::Config(
        "this build has no sled support (build with feature `sled`)".into(),
    ))
}
