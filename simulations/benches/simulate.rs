//! Simulation speed (issue 6): simulated events per second on one core, and the wall time of a
//! 200-seed × 5,000-step swarm, with a same-run baseline (a plain fold of the same events).
//!
//! `cargo bench -p simulations --bench simulate` (SIM_SEEDS / SIM_STEPS override the swarm).
#![allow(clippy::disallowed_methods, reason = "a benchmark measures wall time")]

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

fn main() {
    let only = std::env::args().nth(1).filter(|a| !a.starts_with('-'));
    if only.as_deref() != Some("swarm") {
        one_core();
    }
    if only.as_deref() != Some("one-core") {
        swarm();
    }
}
