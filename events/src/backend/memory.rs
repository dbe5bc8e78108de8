//! In-memory backend, for tests and the deterministic simulation.
//!
//! The "disk" ([`MemoryDisk`]) is a list of frames that outlives the backend, so a test can
//! drop the log, damage the disk, and open a new backend over it exactly as it would reopen a
//! file: indexes are rebuilt from the frames and a corrupt tail is cut.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use uuid::Uuid;

use super::{Backend, BackendRead, PreparedRecord};
use crate::envelope::Envelope;
use crate::error::StoreError;
use crate::frame;
use crate::store::{LogRead, Recovery};

/// The stored frames, shared by every backend opened over it.
#[derive(Clone, Default)]
pub struct MemoryDisk {
    frames: Arc<RwLock<Vec<Vec<u8>>>>,
}

impl MemoryDisk {
    pub fn new() -> Self {
        Self::default()
    }

    /// Append raw bytes as if a write had been torn or garbage had landed after the log.
    pub fn write_garbage(&self, bytes: &[u8]) {
        self.frames
            .write()
            .expect("memory disk lock")
            .push(bytes.to_vec());
    }

    /// Number of stored frames (including garbage).
    pub fn len(&self) -> usize {
        self.frames.read().expect("memory disk lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drop every frame after the first `len` (a crash that lost unsynced writes).
    pub fn truncate(&self, len: usize) {
        self.frames.write().expect("memory disk lock").truncate(len);
    }
}

#[derive(Default)]
struct Indexes {
    streams: BTreeMap<String, Vec<u64>>,
    ids: BTreeMap<Uuid, u64>,
}

/// The in-memory backend.
pub struct MemoryBackend {
    disk: MemoryDisk,
    indexes: Arc<RwLock<Indexes>>,
}

impl MemoryBackend {
    /// A fresh, empty log.
    pub fn new() -> Self {
        Self::open(MemoryDisk::new())
    }

    /// Open over an existing disk; indexes are built by [`Backend::recover`].
    pub fn open(disk: MemoryDisk) -> Self {
        MemoryBackend {
            disk,
            indexes: Arc::default(),
        }
    }

    pub fn disk(&self) -> MemoryDisk {
        self.disk.clone()
    }
}

impl Default for MemoryBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl Backend for MemoryBackend {
    type Reader = MemoryReader;

    fn recover(&mut self) -> Result<Recovery, StoreError> {
        let mut frames = self.disk.frames.write().expect("memory disk lock");
        let mut indexes = Indexes::default();
        let mut good = 0usize;
        let mut reason = None;
        for (i, bytes) in frames.iter().enumerate() {
            let position = i as u64 + 1;
            match frame::decode(position, bytes) {
                Ok(e) => {
                    indexes.streams.entry(e.stream).or_default().push(position);
                    indexes.ids.insert(e.event_id, position);
                    good += 1;
                }
                Err(e) => {
                    reason = Some(e.to_string());
                    break;
                }
            }
        }
        let cut: Vec<Vec<u8>> = frames.drain(good..).collect();
        *self.indexes.write().expect("memory index lock") = indexes;
        Ok(Recovery {
            cut_records: cut.len() as u64,
            cut_bytes: cut.iter().map(|f| f.len() as u64).sum(),
            reason,
            head: good as u64,
            notes: Vec::new(),
        })
    }

    fn reader(&self) -> MemoryReader {
        MemoryReader {
            disk: self.disk.clone(),
            indexes: self.indexes.clone(),
        }
    }

    fn commit(&mut self, records: &[PreparedRecord]) -> Result<(), StoreError> {
        let mut frames = self.disk.frames.write().expect("memory disk lock");
        let mut indexes = self.indexes.write().expect("memory index lock");
        for record in records {
            let e = &record.envelope;
            debug_assert_eq!(e.position, frames.len() as u64 + 1);
            frames.push(record.frame.clone());
            indexes
                .streams
                .entry(e.stream.clone())
                .or_default()
                .push(e.position);
            indexes.ids.insert(e.event_id, e.position);
        }
        Ok(())
    }
}

/// Read handle of the in-memory backend.
#[derive(Clone)]
pub struct MemoryReader {
    disk: MemoryDisk,
    indexes: Arc<RwLock<Indexes>>,
}

impl LogRead for MemoryReader {
    fn read_from(&self, from: u64, max: usize) -> Result<Vec<Envelope>, StoreError> {
        let frames = self.disk.frames.read().expect("memory disk lock");
        let start = from.max(1) as usize - 1;
        frames
            .iter()
            .enumerate()
            .skip(start)
            .take(max)
            .map(|(i, bytes)| frame::decode(i as u64 + 1, bytes))
            .collect()
    }
}

impl BackendRead for MemoryReader {
    fn head(&self) -> Result<u64, StoreError> {
        Ok(self.disk.len() as u64)
    }

    fn stream_version(&self, stream: &str) -> Result<u64, StoreError> {
        let indexes = self.indexes.read().expect("memory index lock");
        Ok(indexes.streams.get(stream).map_or(0, |p| p.len() as u64))
    }

    fn positions_of(&self, event_ids: &[Uuid]) -> Result<Vec<Option<u64>>, StoreError> {
        let indexes = self.indexes.read().expect("memory index lock");
        Ok(event_ids
            .iter()
            .map(|id| indexes.ids.get(id).copied())
            .collect())
    }

    fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        max: usize,
    ) -> Result<Vec<Envelope>, StoreError> {
        let positions: Vec<u64> = {
            let indexes = self.indexes.read().expect("memory index lock");
            let Some(all) = indexes.streams.get(stream) else {
                return Ok(Vec::new());
            };
            all.iter()
                .skip(from_version.max(1) as usize - 1)
                .take(max)
                .copied()
                .collect()
        };
        let frames = self.disk.frames.read().expect("memory disk lock");
        positions
            .into_iter()
            .map(|p| frame::decode(p, &frames[p as usize - 1]))
            .collect()
    }
}
