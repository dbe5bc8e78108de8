//! The acknowledgement record: a small file beside the log (`events.redb.acked`) that says how
//! far the log had been acknowledged to writers, and the checksum of that last record.
//!
//! redb keeps two commit slots, and when the newest commit does not verify on open it falls
//! back to the one before: right after a crash that tore an unacknowledged commit, and equally
//! when the medium damaged a commit that *was* acknowledged. Only a witness outside the database
//! tells the two apart, so every commit, after redb's fsync returned and before any writer is
//! told, writes its head here. The write is not fsynced of its own: it survives a process crash
//! (the page cache has it) and after a power loss it can only lag behind the log (it is written
//! after the log's fsync), so it never claims a record the log may not have. A torn or missing
//! record is ignored with a warning: it only ever adds a check.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 4] = b"MPAK";
const LEN: usize = 24;

/// What the record says: the last acknowledged position and its frame's checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Acked {
    pub head: u64,
    pub frame_crc: u32,
}

impl Acked {
    fn encode(&self) -> [u8; LEN] {
        let mut bytes = [0u8; LEN];
        bytes[..4].copy_from_slice(MAGIC);
        bytes[4..12].copy_from_slice(&self.head.to_le_bytes());
        bytes[12..16].copy_from_slice(&self.frame_crc.to_le_bytes());
        let crc = crc32c::crc32c(&bytes[..20]);
        bytes[20..].copy_from_slice(&crc.to_le_bytes());
        bytes
    }

    fn decode(bytes: &[u8]) -> Result<Acked, String> {
        if bytes.len() != LEN {
            return Err(format!("{} bytes, expected {LEN}", bytes.len()));
        }
        if &bytes[..4] != MAGIC {
            return Err("not an acknowledgement record".into());
        }
        let crc = u32::from_le_bytes(bytes[20..].try_into().expect("4 bytes"));
        if crc32c::crc32c(&bytes[..20]) != crc {
            return Err("checksum mismatch (a torn write)".into());
        }
        Ok(Acked {
            head: u64::from_le_bytes(bytes[4..12].try_into().expect("8 bytes")),
            frame_crc: u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes")),
        })
    }
}

/// Where the record of the log at `log` lives.
pub fn path_of(log: &Path) -> PathBuf {
    let mut name = log.file_name().unwrap_or_default().to_os_string();
    name.push(".acked");
    log.with_file_name(name)
}

/// Read the record of the log at `log`: `Ok(None)` when there is none (a log older than the
/// record, or a new one), `Err` with the reason when it is unreadable.
pub fn read(log: &Path) -> Result<Option<Acked>, String> {
    let path = path_of(log);
    let mut bytes = Vec::new();
    match File::open(&path) {
        Ok(mut file) => file
            .read_to_end(&mut bytes)
            .map_err(|e| format!("{}: {e}", path.display()))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    Acked::decode(&bytes)
        .map(Some)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The open record of a writing log.
#[derive(Debug)]
pub struct AckedFile {
    file: File,
}

impl AckedFile {
    pub fn open(log: &Path) -> io::Result<AckedFile> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path_of(log))?;
        Ok(AckedFile { file })
    }

    /// Record `acked` in place (one 24-byte write at offset 0, within one sector).
    pub fn record(&self, acked: Acked) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.file.write_all_at(&acked.encode(), 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_and_damage_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("events.redb");
        assert_eq!(read(&log), Ok(None));
        let file = AckedFile::open(&log).unwrap();
        let acked = Acked {
            head: 501,
            frame_crc: 0xdead_beef,
        };
        file.record(acked).unwrap();
        assert_eq!(read(&log), Ok(Some(acked)));
        let mut bytes = std::fs::read(path_of(&log)).unwrap();
        bytes[5] ^= 1;
        std::fs::write(path_of(&log), &bytes).unwrap();
        assert!(read(&log).unwrap_err().contains("torn"));
        std::fs::write(path_of(&log), b"short").unwrap();
        assert!(read(&log).unwrap_err().contains("expected 24"));
    }
}
