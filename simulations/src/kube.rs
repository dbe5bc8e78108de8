//! A simulated Kubernetes API server, and the simulated cluster adapter that reconciles
//! `projections::desired_kube` against it.
//!
//! The server keeps objects with resource versions and a bounded watch history. Writes carry
//! preconditions (create: must not exist; update and delete: the resource version the writer
//! saw), so a stale writer gets 409 Conflict. Resuming a watch from a compacted resource
//! version gets 410 Gone and forces a relist. Slow writes land later, with the precondition
//! they were sent with.
//!
//! The adapter keeps a cache fed by list + watch, plans with `projections::plan` against it,
//! and writes with injected faults: 409 (refresh that object, retry next round), 500 (back off
//! in virtual time), slow writes (outcome unknown until the watch shows it).

use std::collections::{BTreeMap, VecDeque};

use projections::{KubeObject, ObjectRef};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::faults::{FaultCounts, FaultKind, FaultRates};

/// Watch events kept for resuming (older ones are compacted).
const HISTORY: usize = 512;
/// Writes per reconcile round (the rest wait for the next round).
const WRITES_PER_ROUND: usize = 32;

#[derive(Clone, Debug, PartialEq)]
pub struct Stored {
    pub object: KubeObject,
    pub rv: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct WatchEvent {
    pub rv: u64,
    pub key: ObjectRef,
    /// `None`: deleted.
    pub object: Option<KubeObject>,
}

/// A write, with its precondition.
#[derive(Clone, Debug, PartialEq)]
pub enum Write {
    Create(ObjectRef, KubeObject),
    Update(ObjectRef, KubeObject, u64),
    Delete(ObjectRef, u64),
}

impl Write {
    fn key(&self) -> &ObjectRef {
        match self {
            Write::Create(k, _) | Write::Update(k, _, _) | Write::Delete(k, _) => k,
        }
    }
}

/// 410 Gone: the resource version to resume from was compacted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gone;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KubeError {
    Conflict,
    NotFound,
}

/// The simulated API server.
#[derive(Clone, Debug, Default)]
pub struct SimKube {
    pub objects: BTreeMap<ObjectRef, Stored>,
    pub rv: u64,
    history: VecDeque<WatchEvent>,
    /// Watch events at or below this resource version are gone.
    compacted_rv: u64,
    /// Slow writes in flight: (lands at, write).
    pub in_flight: Vec<(i64, Write)>,
    pub writes: u64,
}

impl SimKube {
    fn record(&mut self, key: ObjectRef, object: Option<KubeObject>) -> u64 {
        self.rv += 1;
        self.history.push_back(WatchEvent {
            rv: self.rv,
            key,
            object,
        });
        if self.history.len() > HISTORY {
            if let Some(old) = self.history.pop_front() {
                self.compacted_rv = old.rv;
            }
        }
        self.rv
    }

    /// Apply a write now, checking its precondition.
    pub fn write(&mut self, write: Write) -> Result<u64, KubeError> {
        self.writes += 1;
        match write {
            Write::Create(key, object) => {
                if self.objects.contains_key(&key) {
                    return Err(KubeError::Conflict);
                }
                let rv = self.record(key.clone(), Some(object.clone()));
                self.objects.insert(key, Stored { object, rv });
                Ok(rv)
            }
            Write::Update(key, object, expected) => match self.objects.get(&key) {
                None => Err(KubeError::NotFound),
                Some(s) if s.rv != expected => Err(KubeError::Conflict),
                Some(_) => {
                    let rv = self.record(key.clone(), Some(object.clone()));
                    self.objects.insert(key, Stored { object, rv });
                    Ok(rv)
                }
            },
            Write::Delete(key, expected) => match self.objects.get(&key) {
                None => Err(KubeError::NotFound),
                Some(s) if s.rv != expected => Err(KubeError::Conflict),
                Some(_) => {
                    self.objects.remove(&key);
                    Ok(self.record(key, None))
                }
            },
        }
    }

    /// Another writer changes a stored object (or deletes it): drift the adapter must undo.
    pub fn drift(&mut self, rng: &mut ChaCha8Rng) -> Option<String> {
        if self.objects.is_empty() {
            return None;
        }
        let i = rng.random_range(0..self.objects.len());
        let (key, stored) = self.objects.iter().nth(i)?;
        let key = key.clone();
        if rng.random_bool(0.5) {
            let rv = stored.rv;
            self.write(Write::Delete(key.clone(), rv)).ok()?;
            return Some(format!("delete {key}"));
        }
        let mut value = stored.object.to_value();
        value["metadata"]["annotations"]["drift.example.com/touched"] =
            serde_json::Value::String(self.rv.to_string());
        let object = KubeObject::from_value(&key.kind, value).ok()?;
        let rv = stored.rv;
        self.write(Write::Update(key.clone(), object, rv)).ok()?;
        Some(format!("touch {key}"))
    }

    /// Compact the watch history: resuming from before now gets 410 Gone.
    pub fn compact(&mut self) {
        self.history.clear();
        self.compacted_rv = self.rv;
    }

    /// Watch events after `rv`, or 410 Gone.
    pub fn watch_from(&self, rv: u64) -> Result<Vec<WatchEvent>, Gone> {
        if rv < self.compacted_rv {
            return Err(Gone);
        }
        Ok(self.history.iter().filter(|e| e.rv > rv).cloned().collect())
    }

    /// Land the slow writes due by `now_ms` (a refused one is dropped: its writer timed out).
    pub fn land(&mut self, now_ms: i64) -> usize {
        if self.in_flight.is_empty() {
            return 0;
        }
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.in_flight)
            .into_iter()
            .partition(|(at, _)| *at <= now_ms);
        self.in_flight = later;
        let n = due.len();
        for (_, write) in due {
            let _ = self.write(write);
        }
        n
    }

    /// The stored objects, as the plan compares them.
    pub fn snapshot(&self) -> BTreeMap<ObjectRef, KubeObject> {
        self.objects
            .iter()
            .map(|(k, s)| (k.clone(), s.object.clone()))
            .collect()
    }
}

/// The cluster adapter of the simulated daemon: lives and dies with it.
#[derive(Clone, Debug, Default)]
pub struct KubeAdapter {
    /// The objects as last seen, in the form `plan` compares (no copy per round).
    cache: BTreeMap<ObjectRef, KubeObject>,
    /// Their resource versions.
    rvs: BTreeMap<ObjectRef, u64>,
    listed: bool,
    watch_rv: u64,
    watch_alive: bool,
    backoff_until_ms: i64,
    /// Something may need doing (a watch event, a refused write, a backoff).
    pub dirty: bool,
}

/// What one reconcile round did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Round {
    pub writes: usize,
    pub note: String,
}

impl KubeAdapter {
    pub fn drop_watch(&mut self) {
        self.watch_alive = false;
        self.dirty = true;
    }

    fn relist(&mut self, server: &SimKube) {
        self.cache.clear();
        self.rvs.clear();
        for (k, s) in &server.objects {
            self.put(k.clone(), s.object.clone(), s.rv);
        }
        self.watch_rv = server.rv;
        self.listed = true;
        self.watch_alive = true;
    }

    fn apply_watch(&mut self, events: Vec<WatchEvent>) {
        for e in events {
            self.watch_rv = self.watch_rv.max(e.rv);
            let newer = self.rvs.get(&e.key).is_none_or(|rv| *rv < e.rv);
            match e.object {
                Some(object) if newer => self.put(e.key, object, e.rv),
                None if newer => self.forget(&e.key),
                _ => {}
            }
            self.dirty = true;
        }
    }

    /// Follow the server: list once, then watch; a dropped watch resumes, or relists on 410.
    fn follow(&mut self, server: &SimKube, counts: &mut FaultCounts, note: &mut String) {
        if !self.listed {
            self.relist(server);
            note.push_str(" list");
            self.dirty = true;
            return;
        }
        match server.watch_from(self.watch_rv) {
            Ok(events) => {
                if !self.watch_alive {
                    note.push_str(" watch-resumed");
                    self.watch_alive = true;
                }
                if !events.is_empty() {
                    self.apply_watch(events);
                }
            }
            Err(Gone) => {
                counts.add(FaultKind::KubeGone);
                note.push_str(" 410-relist");
                self.relist(server);
                self.dirty = true;
            }
        }
    }

    /// One reconcile round at `now_ms` against `desired`.
    #[allow(clippy::too_many_arguments)]
    pub fn round(
        &mut self,
        server: &mut SimKube,
        desired: &BTreeMap<ObjectRef, KubeObject>,
        desired_changed: bool,
        now_ms: i64,
        rng: &mut ChaCha8Rng,
        rates: &FaultRates,
        counts: &mut FaultCounts,
    ) -> Option<Round> {
        let mut note = String::new();
        // The watch delivers whenever it is alive; a dead one waits for the next round.
        if self.watch_alive || !self.listed {
            self.follow(server, counts, &mut note);
        }
        if !(self.dirty || desired_changed) || now_ms < self.backoff_until_ms {
            return (!note.is_empty()).then_some(Round { writes: 0, note });
        }
        if !self.watch_alive {
            self.follow(server, counts, &mut note);
        }
        let plan = projections::plan(desired, &self.cache);
        self.dirty = false;
        if plan.is_empty() {
            return (!note.is_empty()).then_some(Round { writes: 0, note });
        }
        let writes: Vec<Write> = plan
            .creates
            .into_iter()
            .map(|(k, o)| Write::Create(k, o))
            .chain(plan.updates.into_iter().map(|(k, o)| {
                let rv = self.rvs.get(&k).copied().unwrap_or(0);
                Write::Update(k, o, rv)
            }))
            .chain(plan.deletes.into_iter().map(|k| {
                let rv = self.rvs.get(&k).copied().unwrap_or(0);
                Write::Delete(k, rv)
            }))
            .collect();
        let mut done = 0;
        for (i, write) in writes.into_iter().enumerate() {
            if i >= WRITES_PER_ROUND {
                self.dirty = true;
                break;
            }
            done += 1;
            let key = write.key().clone();
            if rng.random_bool(rates.kube_error) {
                counts.add(FaultKind::KubeError);
                self.backoff_until_ms = now_ms + rng.random_range(50..1000);
                note.push_str(&format!(" 500:{key}"));
                self.dirty = true;
                break;
            }
            if rng.random_bool(rates.kube_conflict) {
                counts.add(FaultKind::KubeConflict);
                note.push_str(&format!(" 409:{key}"));
                self.refresh(server, &key);
                continue;
            }
            if rng.random_bool(rates.kube_slow) {
                counts.add(FaultKind::KubeSlow);
                note.push_str(&format!(" slow:{key}"));
                let lands = now_ms + rng.random_range(100..3000);
                server.in_flight.push((lands, write));
                // The writer timed out: it will know from the watch; try again after a while.
                self.backoff_until_ms = now_ms + rng.random_range(100..500);
                self.dirty = true;
                continue;
            }
            match server.write(write.clone()) {
                Ok(rv) => match write {
                    Write::Create(k, o) | Write::Update(k, o, _) => self.put(k, o, rv),
                    Write::Delete(k, _) => self.forget(&k),
                },
                Err(KubeError::NotFound) if matches!(write, Write::Delete(..)) => {
                    self.forget(&key);
                }
                Err(_) => {
                    note.push_str(&format!(" conflict:{key}"));
                    self.refresh(server, &key);
                }
            }
        }
        note.push_str(&format!(" wrote={done}"));
        Some(Round { writes: done, note })
    }

    fn put(&mut self, key: ObjectRef, object: KubeObject, rv: u64) {
        self.rvs.insert(key.clone(), rv);
        self.cache.insert(key, object);
    }

    fn forget(&mut self, key: &ObjectRef) {
        self.rvs.remove(key);
        self.cache.remove(key);
    }

    /// Re-read one object (after a 409) and retry next round.
    fn refresh(&mut self, server: &SimKube, key: &ObjectRef) {
        match server.objects.get(key) {
            Some(s) => self.put(key.clone(), s.object.clone(), s.rv),
            None => self.forget(key),
        }
        self.dirty = true;
    }

    /// Heal: make sure the next round looks again.
    pub fn poke(&mut self) {
        self.dirty = true;
        self.backoff_until_ms = 0;
    }
}
