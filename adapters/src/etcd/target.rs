//! [`EtcdTarget`]: makes etcd hold exactly the desired key/values under the owned prefixes and
//! records the log position they reflect.
//!
//! The target keeps what etcd holds (as last read or written) and writes only the differences.
//! Every transaction is fenced by a compare on the checkpoint key, so a write computed against a
//! picture of etcd that another writer has since changed is refused rather than applied. After
//! any error the picture is no longer trusted: the next [`EtcdTarget::sync`] reconnects and
//! re-reads etcd before it writes (no separate call is needed; the daemon just calls `sync`
//! again, with backoff).

use std::collections::BTreeMap;
use std::time::Duration;

use etcd_client::{Client, Compare, ConnectOptions, KvClient, Txn, TxnOp};
use futures::{StreamExt, TryStreamExt};

use super::call::{call, REQUEST_TIMEOUT};
use super::checkpoint::{Checkpoint, CHECKPOINT_KEY};
use super::plan::{self, Op, MAX_TXN_BYTES, MAX_TXN_OPS};
use super::prefixes::OwnedPrefixes;
use super::snapshot;
use crate::error::Error;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Data transactions of one large sync in flight at once: enough to hide the round trip and
/// etcd's fsync behind each other (etcd batches concurrent proposals into one disk write),
/// few enough not to queue up behind each other in etcd.
const MAX_IN_FLIGHT: usize = 8;

/// A page of [`snapshot::PAGE_SIZE`] keys is larger than tonic's default 4 MiB response limit
/// once values pass ~400 bytes; etcd itself caps a value at 1.5 MiB.
const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;

/// What one sync did. `puts` and `deletes` count data keys (the checkpoint write is not
/// counted); `transactions` counts every transaction sent, the checkpoint's included;
/// `resynced` says etcd was re-read first (after an error, or because another writer moved the
/// checkpoint).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub puts: usize,
    pub deletes: usize,
    pub transactions: usize,
    pub resynced: bool,
}

/// The etcd projection target.
pub struct EtcdTarget {
    endpoints: Vec<String>,
    prefixes: OwnedPrefixes,
    // Kept although only `kv` is used: the client owns the sender side of the balanced
    // channel's endpoint list.
    _client: Client,
    kv: KvClient,
    /// Every owned key etcd holds, as last read or written by this target.
    held: BTreeMap<Vec<u8>, Vec<u8>>,
    /// The checkpoint key as last read or written by this target.
    checkpoint: Checkpoint,
    /// Set by any failure: `held` and `checkpoint` may no longer match etcd.
    stale: bool,
}

impl EtcdTarget {
    /// Connect (with a timeout) to these endpoints, e.g. `["http://127.0.0.1:2379"]`, and read
    /// what etcd holds under `owned_prefixes` and the checkpoint, so the first sync writes only
    /// what differs. Fails on an invalid prefix set (empty, an empty prefix, or one covering
    /// [`CHECKPOINT_KEY`]) and when etcd cannot be reached.
    pub async fn connect(endpoints: &[String], owned_prefixes: Vec<String>) -> Result<Self, Error> {
        let prefixes = OwnedPrefixes::new(owned_prefixes)?;
        let (client, kv) = open(endpoints).await?;
        claim(&kv).await?;
        let snapshot = snapshot::read(&kv, &prefixes).await?;
        tracing::info!(
            keys = snapshot.keys.len(),
            position = ?snapshot.checkpoint.position(),
            prefixes = ?prefixes.as_slice(),
            "connected to etcd"
        );
        Ok(EtcdTarget {
            endpoints: endpoints.to_vec(),
            prefixes,
            _client: client,
            kv,
            held: snapshot.keys,
            checkpoint: snapshot.checkpoint,
            stale: false,
        })
    }

    /// The log position etcd is known to reflect (from the checkpoint key), if any.
    pub fn checkpoint(&self) -> Option<u64> {
        self.checkpoint.position()
    }

    /// The owned prefixes, normalised (sorted, nested ones dropped).
    pub fn owned_prefixes(&self) -> &[String] {
        self.prefixes.as_slice()
    }

    /// Reconnect and re-read what etcd holds. [`EtcdTarget::sync`] does this by itself after
    /// an error; callers only need it to re-read on their own schedule (e.g. after an etcd
    /// restore from backup, which no compare can detect).
    pub async fn reconnect(&mut self) -> Result<(), Error> {
        self.stale = true;
        let (client, kv) = open(&self.endpoints).await?;
        claim(&kv).await?;
        let snapshot = snapshot::read(&kv, &self.prefixes).await?;
        tracing::info!(
            keys = snapshot.keys.len(),
            position = ?snapshot.checkpoint.position(),
            "re-read etcd"
        );
        self._client = client;
        self.kv = kv;
        self.held = snapshot.keys;
        self.checkpoint = snapshot.checkpoint;
        self.stale = false;
        Ok(())
    }

    /// Make etcd hold exactly `desired` under the owned prefixes (puts for new and changed
    /// values, deletes for owned keys not desired; keys outside the owned prefixes are never
    /// touched), and record `position` as the checkpoint. Only differences are written.
    ///
    /// A desired key outside the owned prefixes fails the sync before anything is written.
    /// After a failed sync the next one re-reads etcd first. When a transaction finds the
    /// checkpoint moved by another writer, the sync re-reads etcd and retries once.
    pub async fn sync(
        &mut self,
        desired: &BTreeMap<String, String>,
        position: u64,
    ) -> Result<SyncReport, Error> {
        self.prefixes.check_desired(desired)?;
        let mut resynced = false;
        if self.stale {
            self.reconnect().await?;
            resynced = true;
        }
        let mut result = self.write(desired, position).await;
        if let Err(Error::EtcdFenced(reason)) = &result {
            if !resynced {
                tracing::warn!(%reason, position, "etcd checkpoint moved by another writer; re-reading etcd");
                self.reconnect().await?;
                resynced = true;
                result = self.write(desired, position).await;
            }
        }
        match result {
            Ok(mut report) => {
                report.resynced = resynced;
                Ok(report)
            }
            Err(e) => {
                self.stale = true;
                tracing::warn!(error = %e, position, "etcd sync failed; etcd will be re-read");
                Err(e)
            }
        }
    }

    /// Write the difference between `held` and `desired`, and the checkpoint.
    async fn write(
        &mut self,
        desired: &BTreeMap<String, String>,
        position: u64,
    ) -> Result<SyncReport, Error> {
        let ops = plan::diff(desired, &self.held);
        let next = self.checkpoint.advanced(position);
        if ops.is_empty() && self.checkpoint == next {
            tracing::debug!(position, keys = desired.len(), "etcd already up to date");
            return Ok(SyncReport::default());
        }
        let puts = ops.iter().filter(|op| matches!(op, Op::Put { .. })).count();
        let deletes = ops.len() - puts;
        let fence = self.checkpoint.fence();
        let next_raw = next
            .raw()
            .expect("a written checkpoint has a value")
            .to_vec();
        let checkpoint_put = TxnOp::put(CHECKPOINT_KEY, next_raw.clone(), None);
        let batches = plan::batches(ops, MAX_TXN_OPS, MAX_TXN_BYTES);

        let single = match batches.as_slice() {
            [] => true,
            [only] => plan::fits_one_more(
                only,
                CHECKPOINT_KEY.len() + next_raw.len(),
                MAX_TXN_OPS,
                MAX_TXN_BYTES,
            ),
            _ => false,
        };
        let transactions = if single {
            // Data and checkpoint land together or not at all.
            let mut txn_ops: Vec<TxnOp> = batches
                .first()
                .map(|b| b.iter().map(Op::to_txn_op).collect())
                .unwrap_or_default();
            txn_ops.push(checkpoint_put);
            commit(self.kv.clone(), fence, txn_ops).await?;
            1
        } else {
            // Data first, several transactions in flight, none moving the checkpoint; then the
            // checkpoint. A crash in between leaves the old checkpoint and some new data: the
            // next start diffs against what etcd really holds, so that is harmless.
            let kv = self.kv.clone();
            futures::stream::iter(batches.iter().map(|batch| {
                commit(
                    kv.clone(),
                    fence.clone(),
                    batch.iter().map(Op::to_txn_op).collect(),
                )
            }))
            .buffer_unordered(MAX_IN_FLIGHT)
            .try_collect::<()>()
            .await?;
            commit(self.kv.clone(), fence, vec![checkpoint_put]).await?;
            batches.len() + 1
        };

        for op in batches.into_iter().flatten() {
            match op {
                Op::Put { key, value } => {
                    self.held
                        .insert(key.as_bytes().to_vec(), value.as_bytes().to_vec());
                }
                Op::Delete { key } => {
                    self.held.remove(&key);
                }
            }
        }
        self.checkpoint = next;
        tracing::info!(
            position,
            puts,
            deletes,
            transactions,
            keys = self.held.len(),
            "synced etcd"
        );
        Ok(SyncReport {
            puts,
            deletes,
            transactions,
            resynced: false,
        })
    }
}

/// Start a new epoch: swap the checkpoint for the same position with a fresh epoch, guarded by
/// its current value. Transactions sent before (fenced on the old value) can then no longer
/// land, so the read that follows sees everything that ever will. An absent checkpoint needs
/// no swap: the first checkpoint written fences the old "absent" compare the same way.
async fn claim(kv: &KvClient) -> Result<(), Error> {
    let mut kv = kv.clone();
    for _ in 0..3 {
        let mut response = call("read checkpoint", kv.get(CHECKPOINT_KEY, None)).await?;
        let Some(raw) = response
            .take_kvs()
            .into_iter()
            .next()
            .map(|kv| kv.into_key_value().1)
        else {
            return Ok(());
        };
        let current = Checkpoint::from_raw(Some(raw));
        let next = current.renewed(crate::clock::fresh_seed());
        let put = TxnOp::put(
            CHECKPOINT_KEY,
            next.raw()
                .expect("a renewed checkpoint has a value")
                .to_vec(),
            None,
        );
        match commit(kv.clone(), current.fence(), vec![put]).await {
            Ok(()) => return Ok(()),
            // Another writer moved it between our read and our swap: read again.
            Err(Error::EtcdFenced(_)) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::EtcdFenced(
        "the checkpoint kept changing while starting a new epoch".into(),
    ))
}

async fn open(endpoints: &[String]) -> Result<(Client, KvClient), Error> {
    let options = ConnectOptions::new()
        .with_connect_timeout(CONNECT_TIMEOUT)
        .with_timeout(REQUEST_TIMEOUT)
        // Notice a peer that vanished without closing the connection (a killed etcd host).
        .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5));
    let client = call("connect", Client::connect(endpoints, Some(options))).await?;
    let kv = client
        .kv_client()
        .max_decoding_message_size(MAX_RESPONSE_BYTES);
    Ok((client, kv))
}

/// One transaction guarded by `fence`; a failed compare is [`Error::EtcdFenced`].
async fn commit(mut kv: KvClient, fence: Compare, ops: Vec<TxnOp>) -> Result<(), Error> {
    let count = ops.len();
    let txn = Txn::new().when([fence]).and_then(ops);
    let response = call("transaction", kv.txn(txn)).await?;
    if response.succeeded() {
        Ok(())
    } else {
        Err(Error::EtcdFenced(format!(
            "a transaction of {count} operations was refused"
        )))
    }
}
