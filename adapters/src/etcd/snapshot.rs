//! Reading back what etcd holds: every key under the owned prefixes and the checkpoint, all at
//! one revision, so the result is a consistent picture even while others write.

use std::collections::BTreeMap;

use etcd_client::{GetOptions, KvClient};

use super::call::call;
use super::checkpoint::{Checkpoint, CHECKPOINT_KEY};
use super::prefixes::{range_end, OwnedPrefixes};
use crate::error::Error;

/// Keys per range request: large pages keep the number of round trips low, small enough that a
/// page of typical registry values stays a few MiB.
pub const PAGE_SIZE: i64 = 10_000;

/// What etcd held at one revision.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub keys: BTreeMap<Vec<u8>, Vec<u8>>,
    pub checkpoint: Checkpoint,
    pub revision: i64,
}

/// Read the checkpoint and every owned key. The checkpoint read fixes the revision; every page
/// is read at that revision (a compaction past it in the middle fails the read, and the caller
/// retries).
pub async fn read(kv: &KvClient, prefixes: &OwnedPrefixes) -> Result<Snapshot, Error> {
    let mut kv = kv.clone();
    let mut response = call("read checkpoint", kv.get(CHECKPOINT_KEY, None)).await?;
    let revision = response
        .header()
        .map(|h| h.revision())
        .ok_or_else(|| Error::Etcd("read checkpoint: response without header".into()))?;
    let checkpoint = Checkpoint::from_raw(
        response
            .take_kvs()
            .into_iter()
            .next()
            .map(|kv| kv.into_key_value().1),
    );

    let mut keys = BTreeMap::new();
    for prefix in prefixes.as_slice() {
        let end = range_end(prefix.as_bytes());
        let mut start = prefix.as_bytes().to_vec();
        loop {
            // Keys come back sorted ascending by key, etcd's default order for a range.
            let options = GetOptions::new()
                .with_range(end.clone())
                .with_limit(PAGE_SIZE)
                .with_revision(revision);
            let mut page = call("read owned keys", kv.get(start.clone(), Some(options))).await?;
            let more = page.more();
            let kvs = page.take_kvs();
            let Some(last) = kvs.last().map(|kv| kv.key().to_vec()) else {
                break;
            };
            keys.extend(kvs.into_iter().map(|kv| kv.into_key_value()));
            if !more {
                break;
            }
            // The smallest key after `last`.
            start = last;
            start.push(0);
        }
    }
    tracing::debug!(keys = keys.len(), revision, position = ?checkpoint.position(), "read etcd");
    Ok(Snapshot {
        keys,
        checkpoint,
        revision,
    })
}
