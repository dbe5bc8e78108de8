//! The access-log intake: entries from every source → the caller's fence and the normalised
//! destination (Slime's rules, §2.1 of the reference; the pure `actors::fence::attribution`,
//! which the simulator runs too) → sightings for the fence actor.
//!
//! Only sightings that may matter reach the actor: a (fence, host) pair forwarded within the
//! refresh window is counted as fresh and dropped here, so a steady stream of calls to known
//! dependencies costs no actor round trip and no event. The actor still decides: it learns new
//! dependencies, refreshes old ones, and refuses fences that do not exist.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use actors::fence::attribution::{attribute, AccessLogEntry, Skip};
use actors::fence::config::DEFAULT_REFRESH_WINDOW_MS;
use actors::fence::{FenceCommand, Fences, Sighting};
use actors::{MeshCommand, RejectionKind};
use events::schema::{FenceKey, Via};
use tokio::sync::Semaphore;

use super::entry::{EntryReceiver, IntakeCounters};
use crate::clock;
use crate::host::{DispatchError, Dispatcher, Memory};

/// Fence commands in flight at once.
const IN_FLIGHT: usize = 64;
/// Entries drained from the channel per pass (several batches share one grouping).
const MAX_PASS: usize = 16_384;

/// The running intake.
pub struct Intake {
    dispatcher: Dispatcher,
    attribution: Arc<Memory<Fences>>,
    counters: Arc<IntakeCounters>,
    /// (fence, host) → when it was last forwarded.
    recent: Mutex<HashMap<(FenceKey, String), i64>>,
    window_ms: AtomicI64,
    in_flight: Arc<Semaphore>,
}

impl Intake {
    pub fn new(dispatcher: Dispatcher, counters: Arc<IntakeCounters>) -> Arc<Self> {
        Arc::new(Intake {
            attribution: dispatcher.memory::<Fences>(),
            dispatcher,
            counters,
            recent: Mutex::new(HashMap::new()),
            window_ms: AtomicI64::new(DEFAULT_REFRESH_WINDOW_MS),
            in_flight: Arc::new(Semaphore::new(IN_FLIGHT)),
        })
    }

    pub fn counters(&self) -> &Arc<IntakeCounters> {
        &self.counters
    }

    /// Follow the configuration's refresh window (and forget forwarded pairs older than it).
    pub fn set_window(&self, window_ms: i64) {
        self.window_ms.store(window_ms, Ordering::Relaxed);
        let now = clock::now_ms();
        self.recent
            .lock()
            .expect("recent lock")
            .retain(|_, at| now - *at < window_ms);
    }

    /// Consume entries until every sender is gone.
    pub async fn run(self: Arc<Self>, mut entries: EntryReceiver) {
        let mut pass = Vec::new();
        while let Some(batch) = entries.recv().await {
            pass.extend(batch);
            while pass.len() < MAX_PASS {
                match entries.try_recv() {
                    Ok(more) => pass.extend(more),
                    Err(_) => break,
                }
            }
            let per_fence = self.sort(std::mem::take(&mut pass));
            for (fence, sightings) in per_fence {
                let permit = self
                    .in_flight
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("the semaphore is never closed");
                let me = self.clone();
                actix_rt::spawn(async move {
                    me.forward(fence, Via::AccessLog, sightings).await;
                    drop(permit);
                });
            }
        }
    }

    /// Attribute a pass of entries and keep the sightings not forwarded within the window,
    /// grouped by fence.
    fn sort(&self, entries: Vec<AccessLogEntry>) -> BTreeMap<FenceKey, Vec<Sighting>> {
        let now = clock::now_ms();
        let window = self.window_ms.load(Ordering::Relaxed);
        // `received` and `malformed` are counted by the sources, which see every entry.
        let c = &self.counters;
        let mut attributed = Vec::new();
        let (mut not_inbound, mut unknown_source, mut unknown_destination) = (0, 0, 0);
        self.attribution.read(|lookup| {
            for entry in &entries {
                match attribute(entry, lookup, &mut attributed) {
                    Ok(()) => {}
                    Err(Skip::NotInbound) => not_inbound += 1,
                    Err(Skip::UnknownSource) => unknown_source += 1,
                    Err(Skip::UnknownDestination) => unknown_destination += 1,
                }
            }
        });
        IntakeCounters::add(&c.not_inbound, not_inbound);
        IntakeCounters::add(&c.unknown_source, unknown_source);
        IntakeCounters::add(&c.unknown_destination, unknown_destination);
        let mut out: BTreeMap<FenceKey, Vec<Sighting>> = BTreeMap::new();
        let mut fresh = 0;
        let mut recent = self.recent.lock().expect("recent lock");
        for a in attributed {
            let pair = (a.fence, a.host);
            match recent.get(&pair) {
                Some(at) if now - *at < window => fresh += 1,
                _ => {
                    let sighting = Sighting {
                        host: pair.1.clone(),
                        seen_at_ms: now,
                        source: a.source,
                        raw: a.raw,
                    };
                    recent.insert(pair.clone(), now);
                    out.entry(pair.0).or_default().push(sighting);
                }
            }
        }
        IntakeCounters::add(&c.fresh, fresh);
        out
    }

    /// Hand one fence's sightings to the actor.
    pub async fn forward(&self, fence: FenceKey, via: Via, sightings: Vec<Sighting>) {
        let n = sightings.len() as u64;
        let hosts: Vec<String> = sightings.iter().map(|s| s.host.clone()).collect();
        let command = MeshCommand::Fence(FenceCommand::Observe {
            fence: fence.clone(),
            via,
            sightings,
        });
        match self.dispatcher.execute(command).await {
            Ok(_) => IntakeCounters::add(&self.counters.sightings, n),
            Err(DispatchError::Rejected { rejection, .. })
                if rejection.kind == RejectionKind::NotFound =>
            {
                IntakeCounters::add(&self.counters.unfenced_source, n)
            }
            Err(e) => {
                // Not recorded: let the next sighting through instead of waiting a window.
                tracing::warn!(fence = %fence, error = %e, "cannot record sightings");
                let mut recent = self.recent.lock().expect("recent lock");
                for host in hosts {
                    recent.remove(&(fence.clone(), host));
                }
            }
        }
    }
}
