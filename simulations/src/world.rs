//! The simulated world: a virtual clock, one seeded generator, the simulated log, the daemon
//! (which crashes and restarts from its log), the simulated Kubernetes API and etcd.
//!
//! Everything runs in one thread, one step at a time. A step advances the clock, lands slow
//! writes, rolls the faults, restarts a crashed daemon when its time comes, lets the scenario
//! act (heartbeats, traffic, operators), runs the daemon's monitors and adapters, and syncs the
//! log (the group commit). Every step appends one line to the trace: the step, the virtual
//! time, what happened and the events appended with their positions.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;

use actors::registry::{visit_concept, ConceptSet, ConceptVisitor};
use actors::{Ctx, Decision, Mesh, MeshCommand, Registered, Rejection};
use events::Event;
use projections::{KubeObject, ObjectRef};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::etcd::{EtcdAdapter, SimEtcd};
use crate::faults::{FaultCounts, FaultKind, FaultRates};
use crate::invariants::Checker;
use crate::kube::{KubeAdapter, SimKube};
use crate::log::{LogSource, SimLog, Snapshots};
use crate::memory::Memories;
use crate::Bug;

/// The virtual epoch: 2026-11-22T00:00:00Z.
pub const T0_MS: i64 = 1_795_305_600_000;
/// The daemon's timers (every concept's `due`) run this often.
pub const TICK_MS: i64 = 250;
/// The largest clock advance of one step.
pub const MAX_STEP_MS: i64 = 200;

/// The running daemon: what it holds in memory, lost at a crash.
#[derive(Debug)]
pub struct Daemon {
    /// Every concept's state, folded from the log (including its unsynced tail).
    pub mesh: Mesh,
    pub started_ms: i64,
    /// Every concept's memory beside the log (the real tables: heartbeats, callers).
    pub memories: Memories,
    pub next_tick_ms: i64,
    /// When the monitors last ran (None: not since the start).
    pub last_tick_ms: Option<i64>,
    pub kube: KubeAdapter,
    pub etcd: EtcdAdapter,
    /// The projections need recomputing (an event of a concept they read was folded).
    kube_stale: bool,
    etcd_stale: bool,
    desired_kube: BTreeMap<ObjectRef, KubeObject>,
    desired_etcd: BTreeMap<String, String>,
}

impl Daemon {
    fn start(mesh: Mesh, now_ms: i64, bug: Option<Bug>) -> Daemon {
        let memories = Memories::recall(&mesh, None, now_ms);
        let mut etcd = EtcdAdapter::default();
        etcd.trust_cache = bug == Some(Bug::EtcdTrustsCache);
        Daemon {
            mesh,
            started_ms: now_ms,
            memories,
            next_tick_ms: now_ms + TICK_MS,
            last_tick_ms: None,
            kube: KubeAdapter::default(),
            etcd,
            kube_stale: true,
            etcd_stale: true,
            desired_kube: BTreeMap::new(),
            desired_etcd: BTreeMap::new(),
        }
    }
}

/// An invariant that failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub invariant: &'static str,
    pub message: String,
}

impl Failure {
    pub fn new(invariant: &'static str, message: impl Into<String>) -> Failure {
        Failure {
            invariant,
            message: message.into(),
        }
    }
}

/// The whole simulated world.
pub struct World {
    pub seed: u64,
    pub rng: ChaCha8Rng,
    pub now_ms: i64,
    pub step: u64,
    pub rates: FaultRates,
    pub counts: FaultCounts,
    pub bug: Option<Bug>,
    pub log: SimLog,
    /// Ids of the acknowledged events, by position: a crash must never lose one.
    pub acked: Vec<Uuid>,
    /// The simulator's own fold of the durable log, record by record (never the daemon's).
    pub checker: Checker,
    /// The daemon's snapshots, on disk beside the log (they outlive a crash): its state at
    /// durable positions, which a restart and a rollback fold from, as `--snapshot-every`, and
    /// at each of its rollbacks (forgotten if a crash loses the rollback).
    pub snapshots: Snapshots,
    pub daemon: Option<Daemon>,
    pub restart_at_ms: i64,
    pub kube: SimKube,
    pub etcd: SimEtcd,
    pub crashes: u64,
    pub events: u64,
    /// Simulated actions: heartbeats, sightings, commands, writes, faults.
    pub actions: u64,
    pub refused: u64,
    /// A failure found while acting (a store error, a torn record read back).
    pub failure: Option<Failure>,
    /// The concepts that folded an event since the invariants last looked at them.
    pub changed: ConceptSet,
    line: String,
    trace: Sha256,
    trail: VecDeque<String>,
    trail_len: usize,
}

impl World {
    pub fn new(seed: u64, rates: FaultRates, bug: Option<Bug>, trail_len: usize) -> World {
        World {
            seed,
            rng: ChaCha8Rng::seed_from_u64(seed),
            now_ms: T0_MS,
            step: 0,
            rates,
            counts: FaultCounts::default(),
            bug,
            log: SimLog::default(),
            acked: Vec::new(),
            checker: Checker::default(),
            snapshots: Snapshots::default(),
            daemon: Some(Daemon::start(Mesh::default(), T0_MS, bug)),
            restart_at_ms: 0,
            kube: SimKube::default(),
            etcd: SimEtcd::default(),
            crashes: 0,
            events: 0,
            actions: 0,
            refused: 0,
            failure: None,
            changed: ConceptSet::all(),
            line: String::new(),
            trace: Sha256::new(),
            trail: VecDeque::new(),
            trail_len: trail_len.max(1),
        }
    }

    /// Add to this step's trace line.
    pub fn note(&mut self, text: &str) {
        self.line.push(' ');
        self.line.push_str(text);
    }

    pub fn up(&self) -> bool {
        self.daemon.is_some()
    }

    pub fn mesh(&self) -> Option<&Mesh> {
        self.daemon.as_ref().map(|d| &d.mesh)
    }

    /// Decide a command with the real decider at the virtual time, append its events to the
    /// log (checking the stream's expected version) and fold them. `Err` when the daemon is
    /// down (`None`) or the decider refused (`Some`).
    pub fn execute(&mut self, command: MeshCommand) -> Result<Decision, Option<Rejection>> {
        let seed = self.rng.next_u64();
        let Some(daemon) = self.daemon.as_mut() else {
            return Err(None);
        };
        self.actions += 1;
        let mut ctx = Ctx::new(self.now_ms, seed);
        let decision = match daemon.mesh.decide(command, &mut ctx) {
            Ok(d) => d,
            Err(r) => {
                self.refused += 1;
                return Err(Some(r));
            }
        };
        self.append_decided(decision, &mut ctx)
    }

    /// Append a decision's events (checking the stream's expected version) and fold them.
    fn append_decided(
        &mut self,
        decision: Decision,
        ctx: &mut Ctx,
    ) -> Result<Decision, Option<Rejection>> {
        let Some(daemon) = self.daemon.as_mut() else {
            return Err(None);
        };
        if decision.events.is_empty() {
            return Ok(decision);
        }
        let ids: Vec<Uuid> = decision.events.iter().map(|_| ctx.next_id()).collect();
        let metas = match self.log.append(
            &decision.stream,
            decision.expected,
            &decision.events,
            &ids,
            self.now_ms,
        ) {
            Ok(m) => m,
            Err(e) => {
                self.failure.get_or_insert(Failure::new(
                    "append_accepted",
                    format!("the log refused a decision of the daemon's own state: {e}"),
                ));
                return Ok(decision);
            }
        };
        for (event, meta) in decision.events.iter().zip(&metas) {
            let _ = write!(
                self.line,
                " +{}:{}@{}#{}",
                meta.position,
                event.event_type(),
                decision.stream,
                meta.stream_version
            );
            if let Event::RolledBack(r) = event {
                // As the daemon: rebuild the state it names from its newest snapshot at or
                // before it and the log after that, and start liveness afresh for the
                // restored instances (the grace of a start).
                let mut source = LogSource {
                    records: self.log.records(),
                    snapshots: &self.snapshots,
                };
                match actors::timeline::roll_back(&mut source, r, meta) {
                    Ok(mesh) => {
                        // As the daemon: every memory rebuilt from the restored state, keeping
                        // what still holds (heartbeats of instances still registered).
                        daemon.memories.rebuild(&mesh, self.now_ms);
                        daemon.started_ms = self.now_ms;
                        // The timers judge the restored state at their next tick.
                        daemon.last_tick_ms = None;
                        // The state at a rollback is a snapshot too (dropped if a crash
                        // loses the rollback): a later rollback into what follows folds from
                        // it, never through this one again.
                        self.snapshots.offer(&mesh);
                        daemon.mesh = mesh;
                        daemon.kube_stale = true;
                        daemon.etcd_stale = true;
                        self.changed = ConceptSet::all();
                    }
                    Err(e) => {
                        self.failure.get_or_insert(Failure::new(
                            "rollback_folds",
                            format!("the daemon cannot roll back: {e}"),
                        ));
                    }
                }
                continue;
            }
            let targets = projections::concept::targets_of(event);
            daemon.kube_stale |= targets.kube;
            daemon.etcd_stale |= targets.etcd;
            self.changed = self.changed.union(ConceptSet::folding(event));
            daemon.mesh.evolve(event.clone(), meta);
            daemon.memories.remember(event, meta);
        }
        self.events += metas.len() as u64;
        if self.bug == Some(Bug::AckBeforeSync) {
            self.acknowledge(self.log.head() as usize);
        }
        Ok(decision)
    }

    fn acknowledge(&mut self, upto: usize) {
        while self.acked.len() < upto {
            let id = self.log.records()[self.acked.len()].event_id;
            self.acked.push(id);
        }
    }

    /// An operator rolls everything back to `to`, as `meshplane rollback` does: decided by the
    /// real rule (refused for a position a later rollback undid), appended, and folded.
    pub fn roll_back(&mut self, to: u64) -> Result<(), Option<Rejection>> {
        let seed = self.rng.next_u64();
        let Some(daemon) = self.daemon.as_mut() else {
            return Err(None);
        };
        let decision = actors::timeline::decide_rollback(
            &daemon.mesh.timeline,
            daemon.mesh.position,
            to,
            format!("simulated operator, seed draw {seed}"),
        )
        .map_err(Some)?;
        self.actions += 1;
        let mut ctx = Ctx::new(self.now_ms, seed);
        self.append_decided(decision, &mut ctx).map(|_| ())
    }

    /// Concept `C`'s memory in the running daemon (none while it is down): what the world's
    /// actors (sidecars sending heartbeats) reach without going through the log.
    pub fn memory_mut<C: Registered>(&mut self) -> Option<&mut C::Memory> {
        Some(self.daemon.as_mut()?.memories.of_mut::<C>())
    }

    fn crash(&mut self) {
        self.daemon = None;
        self.crashes += 1;
        self.counts.add(FaultKind::Crash);
        let damage = self.log.crash(&mut self.rng, self.rates.torn_tail);
        self.snapshots.forget_after(self.log.durable());
        if damage.lost > 0 {
            self.counts.add(FaultKind::UnsyncedLost);
        }
        if let Some(torn) = &self.log.torn {
            self.counts.add(FaultKind::TornTail);
            self.checker.torn(torn.original.event_id);
        }
        self.restart_at_ms = self.now_ms + self.rng.random_range(200..3_000);
        let text = format!(
            "CRASH lost={} survived={} torn={}",
            damage.lost, damage.survived, damage.torn
        );
        self.note(&text);
    }

    /// Restart from the log: cut a torn tail, check nothing acknowledged was lost, fold (from
    /// the newest snapshot, as the daemon with `--snapshot-every`).
    pub fn restart(&mut self) {
        match self.log.recover(self.bug == Some(Bug::TrustTornTail)) {
            Ok(r) => {
                let text = format!("RESTART head={} cut={}", r.head, r.cut_bytes);
                self.note(&text);
            }
            Err(e) => {
                self.failure.get_or_insert(Failure::new("torn_tail_cut", e));
            }
        }
        if let Err(f) = crate::invariants::after_restart(self) {
            self.failure.get_or_insert(f);
        }
        self.acknowledge(self.log.durable() as usize);
        let mut source = LogSource {
            records: self.log.records(),
            snapshots: &self.snapshots,
        };
        match actors::timeline::state_at(&mut source, self.log.head()) {
            Ok(mesh) => {
                self.daemon = Some(Daemon::start(mesh, self.now_ms, self.bug));
                self.changed = ConceptSet::all();
                // What it restarted from (its snapshot, the log after it) folds to what the
                // checker folded.
                if let Err(f) = crate::invariants::refold_equals_state(self) {
                    self.failure.get_or_insert(f);
                }
            }
            Err(e) => {
                self.failure.get_or_insert(Failure::new(
                    "log_readable",
                    format!("the restarted daemon cannot fold its log: {e}"),
                ));
            }
        }
    }

    /// Heal every fault (the liveness phase): no more fault rolls, etcd back, the daemon up,
    /// its adapters looking again.
    pub fn heal(&mut self) {
        self.rates = FaultRates::default();
        self.etcd.down_until_ms = self.now_ms;
        if self.daemon.is_none() {
            self.restart();
        }
        if let Some(d) = self.daemon.as_mut() {
            d.kube.poke();
            d.etcd.poke();
        }
        self.note("HEAL");
    }

    /// One step. `healing`: no new faults, no new disruptions.
    pub fn step(&mut self, scenarios: &mut [Box<dyn crate::scenario::Scenario>], healing: bool) {
        self.step += 1;
        self.now_ms += self.rng.random_range(1..=MAX_STEP_MS);
        self.line.clear();
        let _ = write!(self.line, "{} t={}", self.step, self.now_ms - T0_MS);
        let landed = self.kube.land(self.now_ms);
        if landed > 0 {
            let text = format!("kube:landed={landed}");
            self.note(&text);
        }
        if !healing {
            self.roll_faults();
        }
        if self.daemon.is_none() && self.now_ms >= self.restart_at_ms {
            self.restart();
        }
        for scenario in scenarios.iter_mut() {
            scenario.act(self, healing);
        }
        self.run_daemon();
        // A crash between the appends and their fsync: the window the acknowledgement
        // contract is about (the crash roll above mostly finds the tail already synced).
        if !healing
            && self.daemon.is_some()
            && self.log.durable() < self.log.head()
            && self.rng.random_bool(self.rates.crash)
        {
            self.crash();
        }
        if self.log.durable() < self.log.head() {
            if !healing && self.rng.random_bool(self.rates.sync_delay) {
                self.counts.add(FaultKind::SyncDelayed);
                self.note("sync-delayed");
            } else {
                self.sync();
            }
        }
        self.trace.update(self.line.as_bytes());
        self.trace.update(b"\n");
        if self.trail.len() == self.trail_len {
            self.trail.pop_front();
        }
        self.trail.push_back(self.line.clone());
    }

    /// The group commit: the unsynced tail becomes durable, the checker checks and folds it, it
    /// is acknowledged, and the daemon snapshots its state when it is due.
    pub fn sync(&mut self) {
        self.log.sync();
        if let Err(f) = self.checker.advance(&self.log) {
            self.failure.get_or_insert(f);
        }
        self.acknowledge(self.log.durable() as usize);
        if let Some(daemon) = &self.daemon {
            if daemon.mesh.position == self.log.durable() {
                self.snapshots.offer(&daemon.mesh);
            }
        }
    }

    fn roll_faults(&mut self) {
        let r = self.rates;
        if self.daemon.is_some() && self.rng.random_bool(r.crash) {
            self.crash();
        }
        if self.rng.random_bool(r.kube_watch_drop) {
            if let Some(d) = self.daemon.as_mut() {
                d.kube.drop_watch();
                self.counts.add(FaultKind::KubeWatchDrop);
                self.note("watch-drop");
            }
        }
        if self.rng.random_bool(r.kube_compact) {
            self.kube.compact();
            self.counts.add(FaultKind::KubeCompact);
            self.note("kube-compact");
        }
        if self.rng.random_bool(r.kube_drift) {
            if let Some(what) = self.kube.drift(&mut self.rng) {
                self.counts.add(FaultKind::KubeDrift);
                let text = format!("kube-drift:{what}");
                self.note(&text);
            }
        }
        if self.rng.random_bool(r.etcd_outage) {
            self.etcd.down_until_ms = self.now_ms + self.rng.random_range(500..5_000);
            self.counts.add(FaultKind::EtcdOutage);
            self.note("etcd-outage");
        }
        if self.rng.random_bool(r.etcd_drift) {
            if let Some(what) = self.etcd.drift(&mut self.rng) {
                self.counts.add(FaultKind::EtcdDrift);
                let text = format!("etcd-drift:{what}");
                self.note(&text);
            }
        }
    }

    /// The daemon's own work: every concept's timers when their tick is due, then the
    /// adapters.
    fn run_daemon(&mut self) {
        let now = self.now_ms;
        let Some(daemon) = self.daemon.as_mut() else {
            return;
        };
        if now >= daemon.next_tick_ms {
            daemon.next_tick_ms = now + TICK_MS;
            daemon.last_tick_ms = Some(now);
            for id in Memories::timed() {
                if self.bug.is_some_and(|b| b.skips_timers_of(id)) {
                    continue;
                }
                visit_concept(id, &mut Tick { world: self, now });
            }
        }
        self.reconcile();
    }

    /// Project the durable state: only once every folded event is durable (readers never see
    /// a position before it is), as the daemon's projections do.
    fn reconcile(&mut self) {
        let now = self.now_ms;
        let Some(daemon) = self.daemon.as_mut() else {
            return;
        };
        if self.log.durable() < daemon.mesh.position {
            return;
        }
        let kube_changed = std::mem::take(&mut daemon.kube_stale);
        if kube_changed {
            daemon.desired_kube = projections::desired_kube(&daemon.mesh).kube;
        }
        let etcd_changed = std::mem::take(&mut daemon.etcd_stale);
        if etcd_changed {
            daemon.desired_etcd = projections::desired_etcd(&daemon.mesh);
        }
        let round = daemon.kube.round(
            &mut self.kube,
            &daemon.desired_kube,
            kube_changed,
            now,
            &mut self.rng,
            &self.rates,
            &mut self.counts,
        );
        if let Some(round) = round {
            self.actions += round.writes as u64;
            let _ = write!(self.line, " kube:{}", round.note.trim_start());
        }
        let note = daemon.etcd.round(
            &mut self.etcd,
            &daemon.desired_etcd,
            etcd_changed,
            now,
            &mut self.rng,
            &self.rates,
            &mut self.counts,
        );
        if let Some(note) = note {
            self.actions += 1;
            let _ = write!(self.line, " etcd:{}", note.trim_start());
        }
    }

    /// End the trace with the state it led to: each concept's digest of a fold of the log,
    /// and digests of what the cluster and etcd hold.
    pub fn finish(&mut self) {
        let mut line = String::from("end");
        if let Ok(mesh) = crate::fold(self.log.records()) {
            for (concept, digest) in mesh.concept_digests() {
                let _ = write!(line, " {concept}={digest}");
            }
        }
        let kube: Vec<(String, serde_json::Value)> = self
            .kube
            .objects
            .iter()
            .map(|(k, s)| (k.to_string(), s.object.to_value()))
            .collect();
        let kube = serde_json::to_vec(&kube).unwrap_or_default();
        let etcd = serde_json::to_vec(&self.etcd.snapshot()).unwrap_or_default();
        let _ = write!(
            line,
            " kube={} etcd={}",
            hex::encode(Sha256::digest(kube)),
            hex::encode(Sha256::digest(etcd))
        );
        self.trace.update(line.as_bytes());
        self.trace.update(b"\n");
    }

    /// The trace hash so far.
    pub fn trace_hash(&self) -> String {
        hex::encode(self.trace.clone().finalize())
    }

    /// The last lines of the trace.
    pub fn trail(&self) -> Vec<String> {
        self.trail.iter().cloned().collect()
    }
}

/// Runs one concept's timers in the simulated daemon, as `adapters::host::timers` does in the
/// real one: the due commands from the real `Concept::due`, each decided and appended, then
/// settled in the memory.
struct Tick<'a> {
    world: &'a mut World,
    now: i64,
}

impl ConceptVisitor for Tick<'_> {
    fn visit<C: Registered>(&mut self) {
        let Some(daemon) = self.world.daemon.as_mut() else {
            return;
        };
        let due = C::due(
            C::state(&daemon.mesh),
            daemon.memories.of_mut::<C>(),
            self.now,
        );
        for command in &due {
            let _ = self.world.execute(C::wrap(command.clone()));
        }
        if let Some(memory) = self.world.memory_mut::<C>() {
            C::settle(memory, &due);
        }
    }
}
