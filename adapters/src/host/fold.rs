//! Replay: fold a stored log into the mesh state, with no adapters attached.
//!
//! The fold is the pure `Mesh::evolve`, in log order, exactly as in the daemon and the
//! simulator; reading and decoding overlap with it on a second thread.

use std::sync::mpsc;

use std::path::Path;

use actors::mesh::meta_of;
use actors::timeline::{self, EventSource, Remembering};
use actors::{Mesh, Meta};
use events::{Event, EventStore, StoreError};

/// Events read and decoded per hand-over between the two threads.
const BATCH: usize = 4096;
/// Decoded batches in flight: bounds the memory a replay holds beyond the state.
const IN_FLIGHT: usize = 4;

/// Fold a log, up to position `to` inclusive (the whole log when `None`), into a fresh mesh.
///
/// One thread reads, verifies and decodes; the caller's thread folds. With glibc's allocator
/// the hand-over of every decoded string between threads made this slower than one thread, so
/// the binary and the benchmarks run on mimalloc, whose cross-thread frees are cheap.
pub fn fold(store: &dyn EventStore, to: Option<u64>) -> Result<Mesh, StoreError> {
    fold_onto(store, Mesh::default(), to)
}

/// Fold the events after `mesh.position` (a snapshot's) onto it, up to `to` inclusive.
pub fn fold_onto(store: &dyn EventStore, mesh: Mesh, to: Option<u64>) -> Result<Mesh, StoreError> {
    let end = to.unwrap_or(u64::MAX).min(store.head());
    let start = mesh.position + 1;
    let (tx, rx) = mpsc::sync_channel::<Result<Vec<(Event, Meta)>, StoreError>>(IN_FLIGHT);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let mut next = start;
            while next <= end {
                let decoded = read_decoded(store, next, BATCH.min((end - next + 1) as usize));
                if let Ok(batch) = &decoded {
                    next += batch.len() as u64;
                }
                let failed = decoded.is_err();
                if tx.send(decoded).is_err() || failed {
                    return;
                }
            }
        });
        let mut mesh = mesh;
        // One source for every rollback of the fold: each starts from the state after the
        // previous one, never from position 1 again (chained rollbacks stay linear).
        let mut rollbacks = Remembering::new(StoreSource::new(store, None));
        for batch in rx {
            for (event, meta) in batch? {
                mesh = match event {
                    // Rare: rebuild the state it names by reading the log again.
                    Event::RolledBack(r) => timeline::roll_back(&mut rollbacks, &r, &meta)?,
                    event => {
                        mesh.evolve(event, &meta);
                        mesh
                    }
                };
            }
        }
        Ok(mesh)
    })
}

/// The log (and, when given, its snapshot directory) as the timeline's event source.
pub struct StoreSource<'a> {
    store: &'a dyn EventStore,
    snapshots: Option<&'a Path>,
}

impl<'a> StoreSource<'a> {
    pub fn new(store: &'a dyn EventStore, snapshots: Option<&'a Path>) -> Self {
        StoreSource { store, snapshots }
    }
}

impl EventSource for StoreSource<'_> {
    type Error = StoreError;

    fn read(&mut self, from: u64, to: u64) -> Result<Vec<(Event, Meta)>, StoreError> {
        let end = to.min(self.store.head());
        if from > end {
            return Ok(Vec::new());
        }
        read_decoded(
            self.store,
            from,
            (end - from + 1).min(BATCH as u64) as usize,
        )
    }

    fn base_at_or_before(&mut self, position: u64) -> Option<Mesh> {
        let dir = self.snapshots?;
        crate::snapshot::load_at_or_before(dir, self.store, position)
    }
}

/// The state as of `position`, from the newest snapshot at or before it (when `snapshots` is
/// given) plus the log, honouring rollbacks.
pub fn state_at(
    store: &dyn EventStore,
    snapshots: Option<&Path>,
    position: u64,
) -> Result<Mesh, StoreError> {
    timeline::state_at(
        &mut Remembering::new(StoreSource::new(store, snapshots)),
        position,
    )
}

fn read_decoded(
    store: &dyn EventStore,
    from: u64,
    max: usize,
) -> Result<Vec<(Event, Meta)>, StoreError> {
    let batch = store.read_from(from, max)?;
    if batch.is_empty() {
        return Err(StoreError::Corrupt {
            position: from,
            reason: "the log ends before its head".into(),
        });
    }
    batch
        .iter()
        .map(|e| Ok((e.decode()?, meta_of(e))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use events::backend::memory::MemoryBackend;
    use events::schema::{ResourceDeleted, ResourceKey};
    use events::{ExpectedVersion, NewEvent, SyncLog};

    #[test]
    fn folds_everything_or_up_to_a_position() {
        let store = SyncLog::open(MemoryBackend::new()).unwrap();
        let key = ResourceKey::new("ConfigMap", "default", "a");
        for i in 0..10_000u64 {
            // Deletes of a missing resource still fold (evolve is total).
            let e = Event::ResourceDeleted(ResourceDeleted { key: key.clone() });
            store
                .append(
                    &key.stream(),
                    ExpectedVersion::Any,
                    vec![NewEvent::encode(&e, uuid::Uuid::from_u128(i as u128 + 1), 0).unwrap()],
                )
                .unwrap();
        }
        assert_eq!(fold(&store, None).unwrap().position, 10_000);
        assert_eq!(fold(&store, Some(4_097)).unwrap().position, 4_097);
        assert_eq!(fold(&store, Some(0)).unwrap().position, 0);
        assert_eq!(fold(&store, Some(99_999)).unwrap().position, 10_000);
    }
}
