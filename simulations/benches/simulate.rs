//! Simulation speed (issue 6): simulated events per second on one core, and the wall time of a
//! 200-seed × 5,000-step swarm, with a same-run baseline (a plain fold of the same events).
//! Linear growth (issue 13): one seed of the combined scenario for 10,000, 100,000 and
//! 1,000,000 steps, each size's cost per step against the smallest's, measured in the same run
//! (target: 1,000,000 steps within 60 s on one core).
//!
//! `cargo bench -p simulations --bench simulate` runs all three; `-- one-core`, `-- swarm` or
//! `-- linear` one of them. SIM_SEEDS / SIM_STEPS override the swarm; SIM_LINEAR (e.g.
//! `10000,100000`, a short sample) the sizes of the linear run, SIM_LINEAR_SEED its seed.
#![allow(clippy::disallowed_methods, reason = "a benchmark measures wall time")]

#[path = "../../adapters/benches/common/machine.rs"]
mod machine;

use std::time::{Duration, Instant};

use simulations::{run, run_keeping_world, FaultLevel, ScenarioKind, SimConfig};

fn config(seed: u64, scenario: ScenarioKind, faults: FaultLevel, steps: u64) -> SimConfig {
    SimConfig {
        steps,
        scenario,
        faults,
        ..SimConfig::new(seed)
    }
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU time of the calling thread (Linux), so figures on a shared machine can be read apart
/// from the wall time other processes took.
fn thread_cpu() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

fn per_sec(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn one_core() {
    println!("== one core, 5,000 steps per seed, 10 seeds per row ==");
    println!(
        "{:<9} {:<7} {:>10} {:>12} {:>12} {:>12} {:>14} {:>14}",
        "scenario",
        "faults",
        "steps/s",
        "log ev/s",
        "actions/s",
        "sim ev/s",
        "sim ev/CPU s",
        "fold ev/s"
    );
    for scenario in ScenarioKind::ALL {
        for faults in [FaultLevel::None, FaultLevel::Medium, FaultLevel::Swarm] {
            let (mut steps, mut events, mut actions) = (0, 0, 0);
            let mut elapsed = Duration::ZERO;
            let mut cpu = Duration::ZERO;
            let mut fold_events = 0;
            let mut fold_time = Duration::ZERO;
            for seed in 0..10 {
                let started = Instant::now();
                let cpu_start = thread_cpu();
                let (report, world) = run_keeping_world(config(seed, *scenario, faults, 5_000));
                elapsed += started.elapsed();
                if let (Some(a), Some(b)) = (cpu_start, thread_cpu()) {
                    cpu += b - a;
                }
                assert!(report.passed(), "{}", report.summary());
                steps += report.steps;
                events += report.events;
                actions += report.actions;
                // Baseline: a plain fold of the same log.
                let started = Instant::now();
                let mesh = simulations::fold(world.log.records()).expect("folds");
                fold_time += started.elapsed();
                fold_events += mesh.position;
            }
            println!(
                "{:<9} {:<7} {:>10.0} {:>12.0} {:>12.0} {:>12.0} {:>14.0} {:>14.0}",
                scenario.name(),
                faults.name(),
                per_sec(steps, elapsed),
                per_sec(events, elapsed),
                per_sec(actions, elapsed),
                per_sec(events + actions, elapsed),
                per_sec(events + actions, cpu),
                per_sec(fold_events, fold_time),
            );
        }
    }
}

fn swarm() {
    let seeds = env("SIM_SEEDS", 200);
    let steps = env("SIM_STEPS", 5_000);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    println!("== swarm: {seeds} seeds x {steps} steps, scenario all, faults swarm ==");
    for workers in [1, threads] {
        let started = Instant::now();
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                std::thread::spawn(move || {
                    let cpu_start = thread_cpu();
                    let (mut n, mut events, mut failed) = (0u64, 0u64, 0u64);
                    for seed in (w..seeds).step_by(workers as usize) {
                        let r = run(config(seed, ScenarioKind::All, FaultLevel::Swarm, steps));
                        n += r.steps;
                        events += r.events + r.actions;
                        failed += u64::from(!r.passed());
                    }
                    let cpu = cpu_start
                        .zip(thread_cpu())
                        .map_or(Duration::ZERO, |(a, b)| b - a);
                    (n, events, failed, cpu)
                })
            })
            .collect();
        let (mut n, mut events, mut failed, mut cpu) = (0, 0, 0, Duration::ZERO);
        for h in handles {
            let (a, b, c, d) = h.join().expect("worker");
            n += a;
            events += b;
            failed += c;
            cpu += d;
        }
        let elapsed = started.elapsed();
        println!(
            "{workers} thread(s): {:.1} s wall, {:.1} s CPU, {:.0} steps/s, {:.0} simulated events/s ({:.0} per CPU second), {failed} failed",
            elapsed.as_secs_f64(),
            cpu.as_secs_f64(),
            per_sec(n, elapsed),
            per_sec(events, elapsed),
            per_sec(events, cpu)
        );
        if workers == threads {
            break;
        }
    }
}

/// The sizes of the linear run.
fn linear_sizes() -> Vec<u64> {
    std::env::var("SIM_LINEAR")
        .ok()
        .map(|v| {
            v.split(',')
                .filter_map(|n| n.trim().replace('_', "").parse().ok())
                .collect::<Vec<u64>>()
        })
        .filter(|sizes| !sizes.is_empty())
        .unwrap_or_else(|| vec![10_000, 100_000, 1_000_000])
}

/// The target of issue 13: this many steps of one seed of `all`...
const LINEAR_TARGET_STEPS: u64 = 1_000_000;
/// ...within this many seconds on one core.
const LINEAR_TARGET_S: f64 = 60.0;

/// Issue 13: a step costs the same however long the history behind it. One seed of the
/// combined scenario (faults medium, as `meshplane simulate --seed N --steps N`) per size; the
/// baseline is the smallest size's cost per step, in the same run. A plain fold of each run's
/// log from position 1 (which the run itself does once, at its end) is timed beside it.
fn linear() {
    let seed = env("SIM_LINEAR_SEED", 3);
    let sizes = linear_sizes();
    println!("== linear growth: seed {seed}, scenario all, faults medium, one core ==");
    println!(
        "{:>9} {:>8} {:>8} {:>10} {:>8} {:>6} {:>8} {:>8} {:>8} {:>9} {:>10} {:>9} {:>8}",
        "steps",
        "wall s",
        "CPU s",
        "steps/s",
        "µs/step",
        "ratio",
        "events",
        "log",
        "crashes",
        "rollbacks",
        "state KiB",
        "fold ms",
        "RSS MiB"
    );
    let mut baseline: Option<f64> = None;
    let mut rows = Vec::new();
    for steps in sizes {
        let started = Instant::now();
        let cpu_start = thread_cpu();
        let (report, world) =
            run_keeping_world(config(seed, ScenarioKind::All, FaultLevel::Medium, steps));
        let wall = started.elapsed();
        let cpu = cpu_start.zip(thread_cpu()).map_or(wall, |(a, b)| b - a);
        assert!(report.passed(), "{}", report.summary());
        // The same-run baseline of the fold: the whole log from position 1.
        let fold_started = Instant::now();
        let mesh = simulations::fold(world.log.records()).expect("folds");
        let fold = fold_started.elapsed();
        // The size of the concepts' state (its debug text, without the timeline, which lists
        // every rollback): it must not grow with the history.
        let concepts = actors::Mesh {
            timeline: Default::default(),
            ..mesh.clone()
        };
        let state = format!("{concepts:?}").len();
        let per_step = cpu.as_secs_f64() / report.steps as f64;
        let ratio = per_step / *baseline.get_or_insert(per_step);
        println!(
            "{:>9} {:>8.2} {:>8.2} {:>10.0} {:>8.2} {:>6.2} {:>8} {:>8} {:>8} {:>9} {:>10.1} {:>9.1} {:>8.0}",
            report.steps,
            wall.as_secs_f64(),
            cpu.as_secs_f64(),
            per_sec(report.steps, cpu),
            per_step * 1e6,
            ratio,
            report.events,
            report.log_head,
            report.crashes,
            mesh.timeline.rollbacks.len(),
            state as f64 / 1024.0,
            fold.as_secs_f64() * 1e3,
            machine::rss_mib().0
        );
        rows.push((steps, cpu.as_secs_f64(), ratio));
    }
    let worst = rows.iter().map(|r| r.2).fold(0.0, f64::max);
    println!(
        "ratio = CPU time per step against the first row's (1.00: linear); worst {worst:.2}; load average {}",
        machine::loadavg()
    );
    if let Some((steps, cpu, _)) = rows.iter().find(|r| r.0 >= LINEAR_TARGET_STEPS) {
        println!(
            "target: {LINEAR_TARGET_STEPS} steps within {LINEAR_TARGET_S:.0} s on one core: {} ({steps} steps in {cpu:.1} s of CPU)",
            if *cpu <= LINEAR_TARGET_S { "met" } else { "NOT met" }
        );
    }
}

fn main() {
    println!("machine: {}", machine::describe());
    let only = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let run = |part: &str| only.as_deref().is_none_or(|o| o == part);
    if run("one-core") {
        one_core();
    }
    if run("swarm") {
        swarm();
    }
    if run("linear") {
        linear();
    }
}
