//! Deterministic simulation of meshplane's real actors and projections.
//!
//! This crate depends only on the pure crates (`events`, `actors`, `projections`): the simulator
//! drives the same deciders the daemon hosts, on a virtual clock, from one seed, against a
//! simulated log ([`log`]), Kubernetes API ([`kube`]) and etcd ([`etcd`]), with injected
//! faults ([`faults`]) and a daemon that crashes and restarts from its log ([`world`]).
//! Scenarios are code ([`scenario`]); invariants are checked after every step
//! ([`invariants`]). A run is a safety phase under faults, then a liveness phase (VOPR): the
//! faults heal and the world must converge within a bounded number of steps.
//!
//! Same seed, same trace hash: there is no clock, no ambient randomness, no I/O and no hash-map
//! iteration here; every random draw comes from one `ChaCha8Rng` seeded with the seed.
//!
//! A step costs the same at any length of history (issue 13): folds start from snapshots
//! ([`log::Snapshots`]; the daemon restarts from one, as with `--snapshot-every`), the
//! simulator checks each record once as it becomes durable ([`invariants::Checker`]), crashes
//! and recoveries touch the unsynced tail only, and the whole log is folded from position 1
//! once per run, at the end.
#![forbid(unsafe_code)]
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]

pub mod etcd;
pub mod faults;
pub mod invariants;
pub mod kube;
pub mod log;
pub mod memory;
pub mod scenario;
pub mod world;

use actors::Mesh;
use events::{Envelope, StoreError};
use rand::Rng;

pub use faults::{FaultCounts, FaultKind, FaultLevel, FaultRates};
use scenario::Scenario;
use world::World;

/// Steps the liveness phase may take to converge (~25 s of virtual time at most).
pub const CONVERGENCE_STEPS: u64 = 400;
/// The daemon's state is compared with the checker's independent fold of the log this often;
/// at the end of the liveness phase with a fold of the whole log from position 1.
pub const REFOLD_EVERY: u64 = 500;

/// Fold envelopes, in order, into a fresh mesh, honouring rollbacks: from position 1, with
/// nothing but the envelopes. A rollback rebuilds the state it names from a snapshot this fold
/// took of itself on the way (the state at a position is the fold of the records up to it), so
/// a long log with many rollbacks folds in time linear in its length.
pub fn fold(envelopes: &[Envelope]) -> Result<Mesh, StoreError> {
    log::fold_onto(
        Mesh::default(),
        envelopes,
        envelopes.len() as u64,
        &mut log::Snapshots::default(),
    )
}

/// Which scenarios run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScenarioKind {
    Registry,
    Fence,
    /// Both, in one world.
    All,
}

impl ScenarioKind {
    pub const ALL: &'static [ScenarioKind] = &[
        ScenarioKind::Registry,
        ScenarioKind::Fence,
        ScenarioKind::All,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ScenarioKind::Registry => "registry",
            ScenarioKind::Fence => "fence",
            ScenarioKind::All => "all",
        }
    }

    pub fn parse(text: &str) -> Option<ScenarioKind> {
        ScenarioKind::ALL.iter().copied().find(|s| s.name() == text)
    }

    fn build(self) -> Vec<Box<dyn Scenario>> {
        let registry =
            || Box::new(scenario::registry::RegistryScenario::new()) as Box<dyn Scenario>;
        let fence = || Box::new(scenario::fence::FenceScenario::new()) as Box<dyn Scenario>;
        match self {
            ScenarioKind::Registry => vec![registry()],
            ScenarioKind::Fence => vec![fence()],
            ScenarioKind::All => vec![registry(), fence()],
        }
    }
}

/// A deliberate bug in the simulated daemon, so the tests can show each invariant fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bug {
    /// Acknowledge appends before they are synced (a crash then loses acknowledged events).
    AckBeforeSync,
    /// Read a torn record back as data at recovery.
    TrustTornTail,
    /// The liveness monitor never marks anything.
    SkipLiveness,
    /// The fence monitor never sweeps.
    SkipSweep,
    /// The etcd adapter trusts what it believes etcd holds forever: it never reads again
    /// (not after a lost connection, not to catch another writer's changes).
    EtcdTrustsCache,
}

impl Bug {
    /// Whether this bug turns off the timers of concept `id`.
    pub fn skips_timers_of(self, id: actors::ConceptId) -> bool {
        matches!(
            (self, id),
            (Bug::SkipLiveness, actors::ConceptId::Instance)
                | (Bug::SkipSweep, actors::ConceptId::Fence)
        )
    }
}

/// One simulation run.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub seed: u64,
    /// Steps of the safety phase (the liveness phase adds up to [`CONVERGENCE_STEPS`]).
    pub steps: u64,
    pub scenario: ScenarioKind,
    pub faults: FaultLevel,
    /// Trace lines kept for a violation report.
    pub trail: usize,
    /// A deliberate bug (tests only).
    pub bug: Option<Bug>,
}

impl SimConfig {
    pub fn new(seed: u64) -> SimConfig {
        SimConfig {
            seed,
            steps: 2_000,
            scenario: ScenarioKind::All,
            faults: FaultLevel::Medium,
            trail: 40,
            bug: None,
        }
    }
}

/// An invariant that failed, with what is needed to reproduce and understand it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub seed: u64,
    pub step: u64,
    pub invariant: &'static str,
    pub message: String,
    /// The last trace lines, oldest first.
    pub trail: Vec<String>,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "VIOLATION seed={} step={} invariant={}: {}",
            self.seed, self.step, self.invariant, self.message
        )?;
        writeln!(f, "trail (last {} steps):", self.trail.len())?;
        for line in &self.trail {
            writeln!(f, "  {line}")?;
        }
        Ok(())
    }
}

/// What a run did.
#[derive(Clone, Debug)]
pub struct SimReport {
    pub seed: u64,
    pub scenario: ScenarioKind,
    pub level: FaultLevel,
    pub rates: FaultRates,
    pub trace_hash: String,
    /// Steps taken (safety phase plus liveness phase).
    pub steps: u64,
    /// Events appended (including ones a crash then lost).
    pub events: u64,
    /// Events in the log at the end.
    pub log_head: u64,
    /// Simulated actions: heartbeats, sightings, commands, writes.
    pub actions: u64,
    pub refused: u64,
    pub crashes: u64,
    pub faults: FaultCounts,
    /// Steps the liveness phase took to converge.
    pub converged_after: Option<u64>,
    pub virtual_ms: i64,
    pub violation: Option<Violation>,
}

impl SimReport {
    pub fn passed(&self) -> bool {
        self.violation.is_none()
    }

    /// The one-line summary.
    pub fn summary(&self) -> String {
        let faults: Vec<String> = self
            .faults
            .nonzero()
            .into_iter()
            .map(|(k, n)| format!("{k}={n}"))
            .collect();
        format!(
            "seed={} scenario={} faults={} {} steps={} virtual={:.1}s events={} log={} actions={} refused={} crashes={} converged_after={} injected[{}] trace={}",
            self.seed,
            self.scenario.name(),
            self.level.name(),
            if self.passed() { "ok" } else { "FAILED" },
            self.steps,
            self.virtual_ms as f64 / 1000.0,
            self.events,
            self.log_head,
            self.actions,
            self.refused,
            self.crashes,
            self.converged_after.map_or("-".to_string(), |n| n.to_string()),
            faults.join(" "),
            self.trace_hash
        )
    }
}

/// Run one simulation.
pub fn run(config: SimConfig) -> SimReport {
    run_keeping_world(config).0
}

/// Run one simulation and keep the world (its log, cluster and etcd) for inspection.
pub fn run_keeping_world(config: SimConfig) -> (SimReport, World) {
    // One generator for everything: the fault rates are its first draws.
    let mut world = World::new(config.seed, FaultRates::default(), config.bug, config.trail);
    let rates = FaultRates::for_level(config.faults, &mut world.rng);
    world.rates = rates;
    let mut scenarios = config.scenario.build();
    let mut converged_after = None;
    let violation = drive(&config, &mut world, &mut scenarios, &mut converged_after).err();
    world.finish();
    let violation = violation.map(|f| Violation {
        seed: config.seed,
        step: world.step,
        invariant: f.invariant,
        message: f.message,
        trail: world.trail(),
    });
    let report = SimReport {
        seed: config.seed,
        scenario: config.scenario,
        level: config.faults,
        rates,
        trace_hash: world.trace_hash(),
        steps: world.step,
        events: world.events,
        log_head: world.log.head(),
        actions: world.actions,
        refused: world.refused,
        crashes: world.crashes,
        faults: world.counts.clone(),
        converged_after,
        virtual_ms: world.now_ms - world::T0_MS,
        violation,
    };
    (report, world)
}

/// Chance per step that an operator rolls the mesh back (`meshplane rollback`).
const ROLLBACK: f64 = 0.002;
/// How far back, at most, in events.
const ROLLBACK_REACH: u64 = 200;
// Every rollback in reach has its snapshot: a rollback into it folds from one, never through
// the rollbacks before it again (see `log::Snapshots`).
const _: () = assert!(ROLLBACK_REACH + log::SNAPSHOT_EVERY < log::RECENT_SPAN / 2);

/// Now and then an operator rolls back to a recent position (never before the scenario's set-up,
/// which would take away the services it runs on); refusals (a position already undone) are part
/// of the test.
fn operator_rollback(world: &mut World, set_up: u64) {
    if !world.up() || !world.rng.random_bool(ROLLBACK) {
        return;
    }
    let head = world.log.head();
    let from = set_up.max(head.saturating_sub(ROLLBACK_REACH)).max(1);
    if from >= head {
        return;
    }
    let to = world.rng.random_range(from..head);
    let outcome = match world.roll_back(to) {
        Ok(()) => "ok",
        Err(Some(_)) => "refused",
        Err(None) => "down",
    };
    world.note(&format!("ROLLBACK to={to} {outcome}"));
}

/// The checks after every step: every concept's, then each scenario's own.
fn after_step(
    world: &mut World,
    scenarios: &mut [Box<dyn Scenario>],
) -> Result<(), world::Failure> {
    invariants::after_step(world)?;
    for s in scenarios.iter_mut() {
        s.check(world)?;
    }
    Ok(())
}

fn drive(
    config: &SimConfig,
    world: &mut World,
    scenarios: &mut [Box<dyn Scenario>],
    converged_after: &mut Option<u64>,
) -> Result<(), world::Failure> {
    for s in scenarios.iter_mut() {
        s.setup(world)?;
    }
    world.sync();
    let set_up = world.log.head();
    // Safety: faults on, invariants after every step.
    for _ in 0..config.steps {
        world.step(scenarios, false);
        operator_rollback(world, set_up);
        after_step(world, scenarios)?;
        if world.step.is_multiple_of(REFOLD_EVERY) {
            invariants::refold_equals_state(world)?;
        }
    }
    // Liveness: heal, then the world must converge.
    world.heal();
    let mut last = String::new();
    for n in 1..=CONVERGENCE_STEPS {
        world.step(scenarios, true);
        after_step(world, scenarios)?;
        match invariants::converged(world) {
            Ok(()) => {
                *converged_after = Some(n);
                invariants::refold_equals_state(world)?;
                // Once per run, the whole log: folded from position 1 (the state, and what
                // the cluster and etcd hold), and every acknowledged id.
                let folded = invariants::refold_from_scratch(world)?;
                invariants::converged_to(world, &folded)
                    .map_err(|why| world::Failure::new("converged", why))?;
                return invariants::acknowledged_durable(world);
            }
            Err(why) => last = why,
        }
    }
    Err(world::Failure::new(
        "converged",
        format!("no convergence within {CONVERGENCE_STEPS} steps after healing: {last}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(seed: u64, scenario: ScenarioKind, faults: FaultLevel, steps: u64) -> SimConfig {
        SimConfig {
            steps,
            scenario,
            faults,
            ..SimConfig::new(seed)
        }
    }

    fn with_bug(mut c: SimConfig, bug: Bug) -> SimConfig {
        c.bug = Some(bug);
        c
    }

    /// The first violation over a few seeds of a configuration.
    fn first_violation(make: impl Fn(u64) -> SimConfig) -> Violation {
        for seed in 1..=20 {
            if let Some(v) = run(make(seed)).violation {
                return v;
            }
        }
        panic!("no seed found a violation");
    }

    #[test]
    fn same_seed_same_trace_hash_different_seeds_different_hashes() {
        for scenario in ScenarioKind::ALL {
            let a = run(config(7, *scenario, FaultLevel::High, 600));
            let b = run(config(7, *scenario, FaultLevel::High, 600));
            let c = run(config(8, *scenario, FaultLevel::High, 600));
            assert!(a.passed(), "{:?}", a.violation);
            assert_eq!(a.trace_hash, b.trace_hash, "{}", scenario.name());
            assert_eq!(a.events, b.events);
            assert_ne!(a.trace_hash, c.trace_hash, "{}", scenario.name());
        }
    }

    /// Coverage probes: a plain run reaches every transition the scenarios are about.
    #[test]
    fn the_scenarios_reach_every_transition() {
        let (report, world) =
            run_keeping_world(config(11, ScenarioKind::All, FaultLevel::Low, 6_000));
        assert!(report.passed(), "{}", report.violation.unwrap());
        let types: std::collections::BTreeSet<&str> = world
            .log
            .records()
            .iter()
            .map(|r| r.event_type.as_str())
            .collect();
        for wanted in [
            "instance.registered",
            "instance.deregistered",
            "instance.out_of_service",
            "instance.recovered",
            "instance.expired",
            "instance.taken_offline",
            "instance.brought_online",
            "fence.dependency_learned",
            "fence.dependency_seen",
            "fence.dependency_idle",
            "fence.dependency_forgotten",
            "resource.applied",
            "mesh.rolled_back",
        ] {
            assert!(types.contains(wanted), "no {wanted} in {types:?}");
        }
        assert!(world.kube.objects.keys().any(|k| k.kind == "Sidecar"));
        assert!(world
            .etcd
            .kv
            .keys()
            .any(|k| k.starts_with("/mesh/service-instances/spec/")));
    }

    #[test]
    fn clean_and_faulty_runs_pass_and_converge() {
        for faults in FaultLevel::ALL {
            let r = run(config(3, ScenarioKind::All, *faults, 800));
            assert!(r.passed(), "{}", r.violation.unwrap());
            assert!(r.converged_after.is_some());
            assert!(r.events > 50, "{}", r.summary());
        }
        let high = run(config(3, ScenarioKind::All, FaultLevel::High, 800));
        assert!(high.crashes > 0 && high.faults.total() > high.crashes);
    }

    #[test]
    fn a_crash_never_loses_an_acknowledged_event() {
        // Many crashes, torn tails and delayed syncs: every acknowledged event survives.
        let mut crashes = 0;
        let mut lost = 0;
        for seed in 1..=6 {
            let r = run(config(seed, ScenarioKind::All, FaultLevel::High, 1_000));
            assert!(r.passed(), "{}", r.violation.unwrap());
            crashes += r.crashes;
            lost += r.faults.get(FaultKind::UnsyncedLost);
        }
        assert!(crashes > 10 && lost > 0, "crashes={crashes} lost={lost}");
    }

    #[test]
    fn acknowledging_before_sync_is_caught() {
        let v = first_violation(|seed| {
            with_bug(
                config(seed, ScenarioKind::All, FaultLevel::High, 2_000),
                Bug::AckBeforeSync,
            )
        });
        assert_eq!(v.invariant, "acknowledged_durable", "{v}");
        assert!(!v.trail.is_empty());
        assert!(v.trail.iter().any(|l| l.contains("CRASH")), "{v}");
    }

    #[test]
    fn reading_a_torn_tail_is_caught() {
        let v = first_violation(|seed| {
            with_bug(
                config(seed, ScenarioKind::All, FaultLevel::High, 2_000),
                Bug::TrustTornTail,
            )
        });
        assert_eq!(v.invariant, "torn_tail_cut", "{v}");
    }

    #[test]
    fn a_monitor_that_never_marks_is_caught() {
        let v = first_violation(|seed| {
            with_bug(
                config(seed, ScenarioKind::Registry, FaultLevel::None, 2_000),
                Bug::SkipLiveness,
            )
        });
        assert_eq!(v.invariant, "instance_up_has_heartbeat", "{v}");
    }

    #[test]
    fn a_monitor_that_never_sweeps_is_caught() {
        let v = first_violation(|seed| {
            with_bug(
                config(seed, ScenarioKind::Fence, FaultLevel::None, 2_000),
                Bug::SkipSweep,
            )
        });
        assert_eq!(v.invariant, "no_stale_learned_dependency", "{v}");
    }

    #[test]
    fn an_adapter_that_trusts_its_cache_does_not_converge() {
        let v = first_violation(|seed| {
            with_bug(
                config(seed, ScenarioKind::Registry, FaultLevel::Low, 2_000),
                Bug::EtcdTrustsCache,
            )
        });
        assert_eq!(v.invariant, "converged", "{v}");
        assert!(v.message.contains("etcd differs"), "{v}");
    }

    /// A world after a short clean run of both scenarios, for tampering.
    fn settled_world() -> World {
        let mut world = World::new(5, FaultRates::default(), None, 10);
        let mut scenarios = ScenarioKind::All.build();
        for s in scenarios.iter_mut() {
            s.setup(&mut world).unwrap();
        }
        for _ in 0..400 {
            world.step(&mut scenarios, false);
            invariants::after_step(&mut world).unwrap();
        }
        world
    }

    #[test]
    fn a_state_that_differs_from_its_log_is_caught() {
        let mut world = settled_world();
        invariants::refold_equals_state(&world).unwrap();
        world
            .daemon
            .as_mut()
            .unwrap()
            .mesh
            .instances
            .heartbeat_interval_ms += 1;
        let f = invariants::refold_equals_state(&world).unwrap_err();
        assert_eq!(f.invariant, "refold_equals_state");
        assert!(f.message.contains("instance"), "{}", f.message);
    }

    #[test]
    fn an_egress_host_without_its_evidence_is_caught() {
        let mut world = settled_world();
        let mesh = world.daemon.as_ref().unwrap().mesh.clone();
        scenario::fence::invariants::egress_explainable(&world, &mesh).unwrap();
        // Point a learned dependency at an event that did not learn it.
        let mut tampered = mesh.clone();
        let deps = tampered
            .fences
            .learned
            .values_mut()
            .next()
            .expect("learned");
        deps.values_mut().next().unwrap().learned_position = 1;
        let f = scenario::fence::invariants::egress_explainable(&world, &tampered).unwrap_err();
        assert_eq!(f.invariant, "egress_explainable", "{}", f.message);
        // A log that lost the learning event.
        world.log.truncate_for_test(2);
        assert!(scenario::fence::invariants::egress_explainable(&world, &mesh).is_err());
    }

    /// A chain of rollbacks, each to the one before (every one rebuilds a state that contains
    /// all the earlier ones): folding it was exponential in their number. Now the daemon, the
    /// checker and a fold from position 1 all rebuild each from a snapshot, and agree.
    #[test]
    fn chained_rollbacks_fold_in_linear_time() {
        let mut world = settled_world();
        world.sync();
        for i in 0..400 {
            // One event, then a rollback to just before it: to the previous rollback.
            let before = world.log.head();
            let document = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "chain", "namespace": "default"},
                "data": {"i": i.to_string()}});
            scenario::apply_documents(&mut world, &[document]).unwrap();
            assert_eq!(world.log.head(), before + 1);
            world.roll_back(before).unwrap();
            if i % 2 == 0 {
                world.sync();
            }
            invariants::after_step(&mut world).unwrap();
        }
        world.sync();
        let rollbacks = world.mesh().unwrap().timeline.rollbacks.len();
        assert!(rollbacks >= 400, "{rollbacks}");
        invariants::refold_equals_state(&world).unwrap();
        let folded = invariants::refold_from_scratch(&world).unwrap();
        assert_eq!(&folded, world.mesh().unwrap());
        assert_eq!(&folded, world.checker.mesh());
        // A restart folds from the daemon's newest snapshot.
        world.daemon = None;
        world.restart();
        invariants::after_step(&mut world).unwrap();
        assert_eq!(&folded, world.mesh().unwrap());
    }

    #[test]
    fn a_log_with_a_gap_is_caught() {
        let mut world = settled_world();
        invariants::after_restart(&mut world).unwrap();
        world.acked.push(uuid::Uuid::from_u128(1));
        assert_eq!(
            invariants::after_restart(&mut world).unwrap_err().invariant,
            "acknowledged_durable"
        );
    }

    #[test]
    fn drifted_projections_are_not_converged() {
        let mut world = settled_world();
        world.heal();
        let mut scenarios = ScenarioKind::All.build();
        let mut steps = 0;
        while invariants::converged(&world).is_err() {
            world.step(&mut scenarios, true);
            steps += 1;
            assert!(steps < CONVERGENCE_STEPS, "no convergence");
        }
        world.etcd.drift(&mut world.rng).unwrap();
        assert!(invariants::converged(&world)
            .unwrap_err()
            .contains("etcd differs"));
        let key = world.kube.objects.keys().next().unwrap().clone();
        world.kube.objects.remove(&key);
        world.etcd = etcd::SimEtcd::default();
        assert!(invariants::converged(&world)
            .unwrap_err()
            .contains("kube differs"));
    }
}
