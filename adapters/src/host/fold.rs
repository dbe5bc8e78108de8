//! Replay: fold a stored log into the mesh state, with no adapters attached.
//!
//! The fold is single-threaded on purpose. A reader thread decoding while the caller folds was
//! measured 3× slower (`cargo bench -p adapters --bench replay`): every string the decoder
//! allocates is freed by the folding thread, and the two contend on the allocator. The fold is
//! the pure `Mesh::evolve`, in log order, exactly as in the daemon and the simulator.

use actors::mesh::meta_of;
use actors::Mesh;
use events::{EventStore, StoreError};

/// Events read per call to the store.
const BATCH: usize = 4096;

/// Fold a log, up to position `to` inclusive (the whole log when `None`), into a fresh mesh.
pub fn fold(store: &dyn EventStore, to: Option<u64>) -> Result<Mesh, StoreError> {
    let end = to.unwrap_or(u64::MAX).min(store.head());
    let mut mesh = Mesh::default();
    while mesh.position < end {
        let next = mesh.position + 1;
        let batch = store.read_from(next, BATCH.min((end - mesh.position) as usize))?;
        if batch.is_empty() {
            return Err(StoreError::Corrupt {
                position: next,
                reason: "the log ends before its head".into(),
            });
        }
        for envelope in &batch {
            mesh.evolve(envelope.decode()?, &meta_of(envelope));
        }
    }
    Ok(mesh)
}

#[cfg(test)]
mod tests {
    use super::*;
    use events::backend::memory::MemoryBackend;
    use events::schema::{ResourceDeleted, ResourceKey};
    use events::{Event, ExpectedVersion, NewEvent, SyncLog};

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
