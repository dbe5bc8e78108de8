//! The file under the redb database, as redb's [`StorageBackend`]: the real file, optionally
//! with its writes kept in memory (inspection never changes a byte on disk) or with faults
//! injected (a full disk, a failing `fsync`) for the tests of the fault model.
//!
//! Locks always go to the real file, so an inspection of a log a daemon has open is refused
//! the same way a second daemon is.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use redb::backends::FileBackend;
use redb::{BackendError, StorageBackend};

/// Bytes of one block of the in-memory write overlay.
const BLOCK: u64 = 4096;

/// Faults a test injects into the medium, shared with the test that flips them.
#[derive(Debug, Default)]
pub struct Faults {
    /// Which fault is on: one of the `FAULT_*` values.
    mode: AtomicU8,
    /// Writes and syncs that failed because of it.
    failed: AtomicU64,
}

const FAULT_NONE: u8 = 0;
const FAULT_FULL: u8 = 1;
const FAULT_SYNC: u8 = 2;

impl Faults {
    pub fn new() -> Arc<Faults> {
        Arc::new(Faults::default())
    }

    /// Every write that would grow or change the file fails with "no space left on device"
    /// (ENOSPC), as on a full disk; syncs of what was written before still succeed.
    pub fn disk_full(&self) {
        self.mode.store(FAULT_FULL, Ordering::SeqCst);
    }

    /// Every `fsync` fails with an I/O error (EIO), as on a failing device.
    pub fn sync_fails(&self) {
        self.mode.store(FAULT_SYNC, Ordering::SeqCst);
    }

    /// The medium works again (space was freed, the device came back).
    pub fn clear(&self) {
        self.mode.store(FAULT_NONE, Ordering::SeqCst);
    }

    /// How many operations failed because of an injected fault.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::SeqCst)
    }

    fn check(&self, sync: bool) -> io::Result<()> {
        let error = match self.mode.load(Ordering::SeqCst) {
            FAULT_FULL if !sync => io::Error::from_raw_os_error(28), // ENOSPC
            FAULT_SYNC if sync => io::Error::from_raw_os_error(5),   // EIO
            _ => return Ok(()),
        };
        self.failed.fetch_add(1, Ordering::SeqCst);
        Err(error)
    }
}

/// Writes kept in memory, by block: what the database would have written.
#[derive(Debug, Default)]
struct Overlay {
    blocks: BTreeMap<u64, Vec<u8>>,
    /// The length the database set, if it set one.
    len: Option<u64>,
}

/// The redb file, as redb's storage backend.
#[derive(Debug)]
pub struct Medium {
    file: FileBackend,
    /// Keep writes in memory instead of writing them (inspection).
    overlay: Option<Mutex<Overlay>>,
    faults: Option<Arc<Faults>>,
}

/// How a log file is opened.
#[derive(Clone, Debug, Default)]
pub enum Access {
    /// The daemon's log: read and written.
    #[default]
    Write,
    /// Inspection (`replay`, `log export`, `log salvage`): nothing is ever written to the file.
    /// A repair redb would make (after an unclean shutdown) happens in memory only.
    Inspect,
    /// Written, through injected faults (tests).
    Faulty(Arc<Faults>),
}

impl Medium {
    /// The file at `path` (created when writing and missing). The file is opened for writing
    /// even to inspect it, because the locks that keep a daemon and an inspection apart are
    /// write locks; an inspection never writes through it.
    pub fn open(path: &Path, access: &Access) -> io::Result<Medium> {
        let create = !matches!(access, Access::Inspect);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(path)
            .or_else(|e| match (access, e.kind()) {
                // A read-only copy (a mounted backup, a file of another user) can still be
                // inspected, only without the lock.
                (Access::Inspect, io::ErrorKind::PermissionDenied) => File::open(path),
                _ => Err(e),
            })?;
        let file = FileBackend::new(file).map_err(io::Error::other)?;
        Ok(Medium {
            file,
            overlay: matches!(access, Access::Inspect).then(Mutex::default),
            faults: match access {
                Access::Faulty(faults) => Some(faults.clone()),
                _ => None,
            },
        })
    }

    fn check(&self, sync: bool) -> io::Result<()> {
        match &self.faults {
            Some(faults) => faults.check(sync),
            None => Ok(()),
        }
    }
}

fn overlay_lock(overlay: &Mutex<Overlay>) -> io::Result<std::sync::MutexGuard<'_, Overlay>> {
    overlay
        .lock()
        .map_err(|_| io::Error::other("inspection overlay poisoned by a panic"))
}

impl StorageBackend for Medium {
    fn len(&self) -> io::Result<u64> {
        if let Some(overlay) = &self.overlay {
            if let Some(len) = overlay_lock(overlay)?.len {
                return Ok(len);
            }
        }
        self.file.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let Some(overlay) = &self.overlay else {
            return self.file.read(offset, out);
        };
        let overlay = overlay_lock(overlay)?;
        let file_len = self.file.len()?;
        let end = offset + out.len() as u64;
        if end > overlay.len.unwrap_or(file_len) {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("read of {}..{end} past the end", offset),
            ));
        }
        // The part the file still has, then the blocks written since on top of it.
        let from_file = file_len.min(end).saturating_sub(offset) as usize;
        if from_file > 0 {
            self.file.read(offset, &mut out[..from_file])?;
        }
        out[from_file..].fill(0);
        let first_block = offset / BLOCK * BLOCK;
        for (start, block) in overlay.blocks.range(first_block..end) {
            let lo = (*start).max(offset);
            let hi = (start + BLOCK).min(end);
            out[(lo - offset) as usize..(hi - offset) as usize]
                .copy_from_slice(&block[(lo - start) as usize..(hi - start) as usize]);
        }
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let Some(overlay) = &self.overlay else {
            if len > self.file.len()? {
                self.check(false)?;
            }
            return self.file.set_len(len);
        };
        let mut overlay = overlay_lock(overlay)?;
        overlay.blocks.retain(|start, _| *start < len);
        let tail = len / BLOCK * BLOCK;
        if let Some(block) = overlay.blocks.get_mut(&tail) {
            block[(len - tail) as usize..].fill(0);
        }
        overlay.len = Some(len);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        if self.overlay.is_some() {
            return Ok(());
        }
        self.check(true)?;
        self.file.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let Some(overlay) = &self.overlay else {
            self.check(false)?;
            return self.file.write(offset, data);
        };
        let file_len = self.file.len()?;
        let mut overlay = overlay_lock(overlay)?;
        let end = offset + data.len() as u64;
        let mut start = offset / BLOCK * BLOCK;
        while start < end {
            if !overlay.blocks.contains_key(&start) {
                // A block starts as what the file holds there (zeros past its end).
                let mut block = vec![0; BLOCK as usize];
                let have = file_len.min(start + BLOCK).saturating_sub(start) as usize;
                if have > 0 && overlay.len.is_none_or(|len| start < len) {
                    self.file.read(start, &mut block[..have])?;
                }
                overlay.blocks.insert(start, block);
            }
            let block = overlay.blocks.get_mut(&start).expect("just inserted");
            let lo = start.max(offset);
            let hi = (start + BLOCK).min(end);
            block[(lo - start) as usize..(hi - start) as usize]
                .copy_from_slice(&data[(lo - offset) as usize..(hi - offset) as usize]);
            start += BLOCK;
        }
        if overlay.len.unwrap_or(file_len) < end {
            overlay.len = Some(end);
        }
        Ok(())
    }

    fn close(&self) -> io::Result<()> {
        self.file.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.file.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.query_lock_range(start, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inspection_reads_its_own_writes_and_leaves_the_file_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![7u8; 10_000]).unwrap();
        let medium = Medium::open(&path, &Access::Inspect).unwrap();
        medium.write(4090, &[1; 20]).unwrap();
        medium.write(12_000, &[2; 5]).unwrap();
        assert_eq!(medium.len().unwrap(), 12_005);
        let mut out = vec![0; 12_005];
        medium.read(0, &mut out).unwrap();
        assert!(out[..4090].iter().all(|b| *b == 7));
        assert!(out[4090..4110].iter().all(|b| *b == 1));
        assert!(out[4110..10_000].iter().all(|b| *b == 7));
        assert!(out[10_000..12_000].iter().all(|b| *b == 0));
        assert!(out[12_000..].iter().all(|b| *b == 2));
        medium.set_len(4100).unwrap();
        assert_eq!(medium.len().unwrap(), 4100);
        assert!(medium.read(4000, &mut [0; 200]).is_err());
        medium.sync_data().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), vec![7u8; 10_000]);
    }

    #[test]
    fn injected_faults_fail_writes_or_syncs_until_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let faults = Faults::new();
        let medium = Medium::open(&dir.path().join("f"), &Access::Faulty(faults.clone())).unwrap();
        medium.write(0, b"ok").unwrap();
        faults.disk_full();
        let full = medium.write(2, b"no").unwrap_err();
        assert_eq!(full.raw_os_error(), Some(28));
        medium.sync_data().unwrap();
        faults.sync_fails();
        medium.write(2, b"ok").unwrap();
        assert_eq!(medium.sync_data().unwrap_err().raw_os_error(), Some(5));
        faults.clear();
        medium.sync_data().unwrap();
        assert_eq!(faults.failed(), 2);
    }
}
