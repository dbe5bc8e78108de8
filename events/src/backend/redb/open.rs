//! Opening the redb file: never trusting it, never repairing what was acknowledged.
//!
//! Every open runs redb's integrity check (the checksum of every page of the committed trees;
//! a plain open may panic on a damaged file, a checked one reports it), then [`verify`] over
//! every record. What redb would repair on its own is decided here instead:
//!
//! - its allocator state (after any unclean shutdown): rebuilt, no data involved;
//! - a newest commit that fails its checksums: redb would fall back to the commit before. That
//!   is right for a commit torn by a crash before it was acknowledged, and silent data loss for
//!   one the medium damaged after it was. The fallback is first made in memory (the file is not
//!   touched) and compared with the acknowledgement record: only when every acknowledged record
//!   survives is it made for real; otherwise the open is refused with a report.
//!
//! An inspection ([`Access::Inspect`]) makes every repair in memory only.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use redb::{Database, DatabaseError, StorageError};

use super::acked::{self, Acked};
use super::medium::{Access, Medium};
use super::verify::{verify, Verified};
use crate::damage::Damage;
use crate::error::StoreError;
use crate::salvage;

/// redb's page cache. Its default (1 GiB) would let a long-running daemon's memory grow with
/// the log; the log is appended and read mostly in order, so a modest cache costs little.
const CACHE_BYTES: usize = 64 * 1024 * 1024;

/// A database that passed the checks, what they found, and what the open repaired.
pub(super) struct Opened {
    pub db: Database,
    pub verified: Verified,
    /// A repair made on open, for the recovery report.
    pub repaired: Option<String>,
}

/// Open the log file at `path` for `access`, checked. The acknowledgement record is `acked`.
///
/// The checks run on an inspection of the file (every write redb makes while opening, a
/// repair included, stays in memory), so a refused file is left exactly as it was. Only a
/// file that passed is then opened for writing.
pub(super) fn open_checked(
    path: &Path,
    access: &Access,
    acked: Option<Acked>,
) -> Result<Opened, StoreError> {
    let file = path.display().to_string();
    let primary_damaged = Arc::new(AtomicBool::new(false));
    let (inspected, repaired) =
        match open_database(path, &Access::Inspect, Some(primary_damaged.clone()), true) {
            Ok(db) => (db, None),
            Err(DatabaseError::RepairAborted) if primary_damaged.load(Ordering::SeqCst) => {
                // What the commit before holds.
                let fallback = open_database(path, &Access::Inspect, None, true)
                    .map_err(|e| refusal(path, &file, e))?;
                let held = verify(&fallback, &file, None)?.head;
                if let Some(acked) = acked.filter(|a| a.head > held) {
                    return Err(StoreError::Damaged(Box::new(Damage::new(
                        &file,
                        held + 1,
                        format!(
                            "the last commit fails its checksums (damaged on the medium) and held \
                         acknowledged positions up to {}; the commit before ends at {held}",
                            acked.head
                        ),
                    ))));
                }
                let note = format!(
                    "the last commit was torn before it was acknowledged and was rolled back to \
                 position {held}"
                );
                (fallback, Some(note))
            }
            Err(e) => return Err(refusal(path, &file, e)),
        };
    // A new file has no tables yet (the inspection creates them in memory).
    super::prepare_tables(&inspected, path)?;
    let verified = verify(&inspected, &file, acked)?;
    let db = match access {
        Access::Inspect => inspected,
        _ => {
            drop(inspected);
            // Just checked: the check runs again only to make the rollback decided above.
            open_database(path, access, None, repaired.is_some())
                .map_err(|e| refusal(path, &file, e))?
        }
    };
    Ok(Opened {
        db,
        verified,
        repaired,
    })
}

/// Open with redb's integrity check when `check`. With `primary_damaged`, a repair that would
/// roll back the newest commit is aborted and flagged there instead of made.
pub(super) fn open_database(
    path: &Path,
    access: &Access,
    primary_damaged: Option<Arc<AtomicBool>>,
    check: bool,
) -> Result<Database, DatabaseError> {
    let medium = Medium::open(path, access)?;
    let mut builder = redb::Builder::new();
    builder
        .set_cache_size(CACHE_BYTES)
        .set_check_integrity_on_open(check);
    if let Some(flag) = primary_damaged {
        // redb reports its repair's progress: 0.3 is reached only when the newest commit failed
        // its checksums and the commit before is about to replace it.
        builder.set_repair_callback(move |session| {
            if (session.progress() - 0.3).abs() < 0.01 {
                flag.store(true, Ordering::SeqCst);
                session.abort();
            }
        });
    }
    builder.create_with_backend(medium)
}

/// The error for a file that could not be opened: a damaged file gets the report (with what a
/// raw scan finds intact), a file in use says so.
pub(super) fn refusal(path: &Path, file: &str, error: DatabaseError) -> StoreError {
    match error {
        DatabaseError::DatabaseAlreadyOpen => StoreError::Storage(format!(
            "{file} is open in another process (a running daemon?): stop it first, or inspect an \
             exported or copied log"
        )),
        DatabaseError::Storage(StorageError::Io(e)) if super::is_full(&e) => {
            StoreError::Full(format!("open {file}: {e}"))
        }
        DatabaseError::Storage(StorageError::Corrupted(reason)) => {
            StoreError::Damaged(Box::new(damage_from_raw_scan(path, file, &reason)))
        }
        DatabaseError::UpgradeRequired(version) => StoreError::Storage(format!(
            "{file}: the file's header says redb format {version}, which this build does not \
             read (an older file, or a damaged header)"
        )),
        DatabaseError::Storage(StorageError::Io(e))
            if e.kind() == std::io::ErrorKind::InvalidData =>
        {
            StoreError::Damaged(Box::new(damage_from_raw_scan(path, file, &e.to_string())))
        }
        other => StoreError::Storage(format!("redb: open {file}: {other}")),
    }
}

/// The report for a file redb cannot read at all: the records a raw scan still finds.
fn damage_from_raw_scan(path: &Path, file: &str, reason: &str) -> Damage {
    let reason = format!("the database's own structure is damaged ({reason})");
    let Ok(bytes) = std::fs::read(path) else {
        return Damage::new(file, 1, reason);
    };
    let found = salvage::scan(&bytes);
    let dense = found.dense_prefix().len() as u64;
    let after = found.after_gap();
    let last = after.last().map_or(dense, |e| e.position);
    Damage::new(file, dense + 1, reason).with_intact_after(after.len() as u64, last)
}

/// The acknowledgement record of the log at `path`, and a warning when it is unreadable (it
/// only adds a check, so an unreadable one is not fatal).
pub(super) fn read_acked(path: &Path) -> (Option<Acked>, Option<String>) {
    match acked::read(path) {
        Ok(acked) => (acked, None),
        Err(reason) => (
            None,
            Some(format!(
                "the acknowledgement record is unreadable and was not used: {reason}"
            )),
        ),
    }
}
