//! CI for the simulator: a fixed list of regression seeds, a batch of fresh seeds (different on
//! every run, printed so a failure reproduces), and the determinism self-check. Bounded to
//! roughly half a minute in a debug build.
// The fresh seeds come from the wall clock and the process id: allowed here, in a test, and
// printed; the simulator itself never reads either.
#![allow(
    clippy::disallowed_methods,
    reason = "fresh seeds for CI are drawn from the clock"
)]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use simulations::{run, FaultLevel, ScenarioKind, SimConfig};

/// Seeds that once found something, or cover a hard mix; always run.
const REGRESSION_SEEDS: &[u64] = &[1, 2, 3, 7, 42, 99, 1234, 31_337];
const STEPS: u64 = 1_000;
/// Wall-clock budget of the fresh batch.
const FRESH_BUDGET: Duration = Duration::from_secs(10);
const FRESH_MAX: u64 = 24;

fn check(seed: u64, scenario: ScenarioKind, faults: FaultLevel) {
    let report = run(SimConfig {
        steps: STEPS,
        scenario,
        faults,
        ..SimConfig::new(seed)
    });
    println!("{}", report.summary());
    if let Some(v) = report.violation {
        panic!(
            "{v}\nreproduce: meshplane simulate --seed {seed} --steps {STEPS} --scenario {} --faults {}",
            scenario.name(),
            faults.name()
        );
    }
    assert!(report.converged_after.is_some());
}

#[test]
fn regression_seeds() {
    for &seed in REGRESSION_SEEDS {
        check(seed, ScenarioKind::All, FaultLevel::Swarm);
        check(seed, ScenarioKind::All, FaultLevel::High);
    }
}

#[test]
fn fresh_seeds() {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_nanos() as u64;
    let base = now ^ (u64::from(std::process::id()) << 32);
    println!("fresh seeds from {base} (each seed: base + i)");
    let started = Instant::now();
    for i in 0..FRESH_MAX {
        if started.elapsed() > FRESH_BUDGET {
            break;
        }
        let seed = base.wrapping_add(i);
        let scenario = ScenarioKind::ALL[(i % 3) as usize];
        println!("fresh seed {seed} ({})", scenario.name());
        check(seed, scenario, FaultLevel::Swarm);
    }
}

#[test]
fn same_seed_same_trace() {
    for scenario in ScenarioKind::ALL {
        let config = || SimConfig {
            steps: 500,
            scenario: *scenario,
            faults: FaultLevel::High,
            ..SimConfig::new(20_261_124)
        };
        let (a, b) = (run(config()), run(config()));
        assert_eq!(a.trace_hash, b.trace_hash, "{}", scenario.name());
        assert_eq!(
            (a.steps, a.events, a.crashes),
            (b.steps, b.events, b.crashes)
        );
    }
}
