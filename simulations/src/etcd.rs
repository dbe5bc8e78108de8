//! A simulated etcd, and the simulated etcd adapter that writes `projections::desired_etcd`
//! diffs to it.
//!
//! The store keeps key/values with a revision; a transaction applies all its operations or
//! none. It can be unavailable for a window of virtual time (every request fails), and a
//! connection can be lost around a transaction: the transaction may or may not have committed,
//! and the adapter cannot tell, so it forgets what it believes is stored and reads again.

use std::collections::BTreeMap;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::faults::{FaultCounts, FaultKind, FaultRates};

/// Operations per transaction (etcd's default limit is 128).
const OPS_PER_TXN: usize = 64;
/// The adapter re-reads everything this often, to catch drift.
pub const RESYNC_MS: i64 = 5_000;

#[derive(Clone, Debug, Default)]
pub struct SimEtcd {
    pub kv: BTreeMap<String, (String, u64)>,
    pub revision: u64,
    pub down_until_ms: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unavailable;

impl SimEtcd {
    pub fn available(&self, now_ms: i64) -> bool {
        now_ms >= self.down_until_ms
    }

    /// Apply `ops` (key → `Some(value)` to put, `None` to delete) atomically.
    pub fn txn(
        &mut self,
        ops: &[(String, Option<String>)],
        now_ms: i64,
    ) -> Result<u64, Unavailable> {
        if !self.available(now_ms) {
            return Err(Unavailable);
        }
        self.revision += 1;
        for (k, v) in ops {
            match v {
                Some(v) => {
                    self.kv.insert(k.clone(), (v.clone(), self.revision));
                }
                None => {
                    self.kv.remove(k);
                }
            }
        }
        Ok(self.revision)
    }

    pub fn range_all(&self, now_ms: i64) -> Result<BTreeMap<String, String>, Unavailable> {
        if !self.available(now_ms) {
            return Err(Unavailable);
        }
        Ok(self.snapshot())
    }

    pub fn snapshot(&self) -> BTreeMap<String, String> {
        self.kv
            .iter()
            .map(|(k, (v, _))| (k.clone(), v.clone()))
            .collect()
    }

    /// Another writer changes or deletes a key.
    pub fn drift(&mut self, rng: &mut ChaCha8Rng) -> Option<String> {
        if self.kv.is_empty() {
            return None;
        }
        let i = rng.random_range(0..self.kv.len());
        let key = self.kv.keys().nth(i)?.clone();
        self.revision += 1;
        if rng.random_bool(0.5) {
            self.kv.remove(&key);
            Some(format!("delete {key}"))
        } else {
            self.kv
                .insert(key.clone(), ("{\"drift\":true}".into(), self.revision));
            Some(format!("overwrite {key}"))
        }
    }
}

/// The etcd adapter of the simulated daemon.
#[derive(Clone, Debug, Default)]
pub struct EtcdAdapter {
    /// What it believes etcd holds; `None`: it does not know (start, lost connection).
    known: Option<BTreeMap<String, String>>,
    next_resync_ms: i64,
    backoff_until_ms: i64,
    /// A deliberate bug (for the invariant tests): once read, never read again.
    pub trust_cache: bool,
}

impl EtcdAdapter {
    /// One round at `now_ms`: read if it does not know, then write the diff.
    #[allow(clippy::too_many_arguments)]
    pub fn round(
        &mut self,
        etcd: &mut SimEtcd,
        desired: &BTreeMap<String, String>,
        desired_changed: bool,
        now_ms: i64,
        rng: &mut ChaCha8Rng,
        rates: &FaultRates,
        counts: &mut FaultCounts,
    ) -> Option<String> {
        if now_ms < self.backoff_until_ms {
            return None;
        }
        let mut note = String::new();
        let resync = now_ms >= self.next_resync_ms && !self.trust_cache;
        if self.known.is_none() || resync {
            match etcd.range_all(now_ms) {
                Ok(all) => {
                    self.known = Some(all);
                    self.next_resync_ms = now_ms + RESYNC_MS;
                    note.push_str(" read");
                }
                Err(Unavailable) => {
                    counts.add(FaultKind::EtcdUnavailable);
                    self.backoff_until_ms = now_ms + rng.random_range(100..1000);
                    return Some(" read:unavailable".into());
                }
            }
        } else if !desired_changed {
            return None;
        }
        let known = self.known.as_mut().expect("read above");
        let plan = projections::plan(desired, known);
        if plan.is_empty() {
            return (!note.is_empty()).then_some(note);
        }
        let ops: Vec<(String, Option<String>)> = plan
            .creates
            .into_iter()
            .chain(plan.updates)
            .map(|(k, v)| (k, Some(v)))
            .chain(plan.deletes.into_iter().map(|k| (k, None)))
            .collect();
        if ops.is_empty() {
            return (!note.is_empty()).then_some(note);
        }
        for chunk in ops.chunks(OPS_PER_TXN) {
            if rng.random_bool(rates.etcd_lost) {
                counts.add(FaultKind::EtcdLost);
                // Lost before or after the commit: either way the adapter cannot know.
                if rng.random_bool(0.5) {
                    let _ = etcd.txn(chunk, now_ms);
                }
                if !self.trust_cache {
                    self.known = None;
                }
                self.backoff_until_ms = now_ms + rng.random_range(50..500);
                note.push_str(" txn:lost");
                return Some(note);
            }
            match etcd.txn(chunk, now_ms) {
                Ok(_) => {
                    let known = self.known.as_mut().expect("known");
                    for (k, v) in chunk {
                        match v {
                            Some(v) => {
                                known.insert(k.clone(), v.clone());
                            }
                            None => {
                                known.remove(k);
                            }
                        }
                    }
                    note.push_str(&format!(" txn:{}", chunk.len()));
                }
                Err(Unavailable) => {
                    counts.add(FaultKind::EtcdUnavailable);
                    self.backoff_until_ms = now_ms + rng.random_range(100..1000);
                    note.push_str(" txn:unavailable");
                    return Some(note);
                }
            }
        }
        Some(note)
    }

    /// Heal: read again at the next round.
    pub fn poke(&mut self) {
        if !self.trust_cache {
            self.known = None;
        }
        self.backoff_until_ms = 0;
    }
}
