//! `meshplane simulate`: run the deterministic simulator (the real actors and projections on a
//! virtual clock against a simulated cluster, etcd and log, with faults) for one seed or a
//! swarm of seeds.

use anyhow::{bail, Context};
use clap::Args;
use simulations::{Bug, FaultLevel, ScenarioKind, SimConfig, SimReport};

/// Arguments of `meshplane simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// The seed of one run (same seed, same trace hash).
    #[arg(long, conflicts_with = "seeds", value_name = "N")]
    pub seed: Option<u64>,

    /// A swarm: every seed of the range `A..B` (B excluded), one line each.
    #[arg(long, value_name = "A..B", value_parser = parse_range)]
    pub seeds: Option<(u64, u64)>,

    /// Steps of the fault phase of each run (the liveness phase follows).
    #[arg(long, default_value_t = 2_000)]
    pub steps: u64,

    /// `registry`, `fence` or `all`.
    #[arg(long, default_value = "all", value_parser = parse_scenario)]
    pub scenario: ScenarioKind,

    /// `none`, `low`, `medium`, `high`, or `swarm` (each seed draws its own rates). A swarm
    /// (`--seeds`) defaults to `swarm`, one seed to `medium`.
    #[arg(long, value_parser = parse_faults)]
    pub faults: Option<FaultLevel>,

    /// Trace lines to print when an invariant fails.
    #[arg(long, default_value_t = 40)]
    pub trail: usize,

    /// Run a deliberately broken daemon (tests of the invariants themselves).
    #[arg(long, hide = true, value_parser = parse_bug)]
    pub inject_bug: Option<Bug>,
}

fn parse_bug(text: &str) -> Result<Bug, String> {
    Ok(match text {
        "ack-before-sync" => Bug::AckBeforeSync,
        "trust-torn-tail" => Bug::TrustTornTail,
        "skip-liveness" => Bug::SkipLiveness,
        "skip-sweep" => Bug::SkipSweep,
        "etcd-trusts-cache" => Bug::EtcdTrustsCache,
        other => return Err(format!("unknown bug `{other}`")),
    })
}

fn parse_range(text: &str) -> Result<(u64, u64), String> {
    let (a, b) = text
        .split_once("..")
        .ok_or_else(|| format!("`{text}` is not a range A..B"))?;
    let a: u64 = a.trim().parse().map_err(|e| format!("`{a}`: {e}"))?;
    let b: u64 = b.trim().parse().map_err(|e| format!("`{b}`: {e}"))?;
    if b <= a {
        return Err(format!("`{text}` is empty"));
    }
    Ok((a, b))
}

fn parse_scenario(text: &str) -> Result<ScenarioKind, String> {
    ScenarioKind::parse(text).ok_or_else(|| format!("`{text}`: expected registry, fence or all"))
}

fn parse_faults(text: &str) -> Result<FaultLevel, String> {
    FaultLevel::parse(text)
        .ok_or_else(|| format!("`{text}`: expected none, low, medium, high or swarm"))
}

pub fn run(args: SimulateArgs) -> anyhow::Result<()> {
    let config = |seed, faults| SimConfig {
        steps: args.steps,
        scenario: args.scenario,
        faults,
        trail: args.trail,
        bug: args.inject_bug,
        ..SimConfig::new(seed)
    };
    match (args.seed, args.seeds) {
        (_, Some((a, b))) => swarm(a, b, |seed| {
            config(seed, args.faults.unwrap_or(FaultLevel::Swarm))
        }),
        (seed, None) => {
            let seed = seed.context("give --seed N or --seeds A..B")?;
            let report = simulations::run(config(seed, args.faults.unwrap_or(FaultLevel::Medium)));
            single(&report)
        }
    }
}

fn single(report: &SimReport) -> anyhow::Result<()> {
    let mut out = format!(
        "trace {}\n{}\nrates: {}\n",
        report.trace_hash,
        report.summary(),
        report.rates.describe()
    );
    if let Some(v) = &report.violation {
        out.push_str(&v.to_string());
        out.push_str(&format!(
            "reproduce: meshplane simulate --seed {} --steps {} --scenario {} --faults {}\n",
            report.seed,
            report.steps.min(v.step),
            report.scenario.name(),
            report.level.name()
        ));
        super::print(&out)?;
        bail!(
            "seed {} violated {} at step {}",
            v.seed,
            v.invariant,
            v.step
        );
    }
    super::print(&out)
}

fn swarm(from: u64, to: u64, config: impl Fn(u64) -> SimConfig) -> anyhow::Result<()> {
    let mut failed = Vec::new();
    let (mut steps, mut events, mut crashes) = (0u64, 0u64, 0u64);
    let mut faults = simulations::FaultCounts::default();
    let bar = super::progress_bar(
        to - from,
        "simulate {wide_bar} {pos}/{len} seeds, eta {eta}",
    );
    for seed in from..to {
        let report = simulations::run(config(seed));
        bar.inc(1);
        steps += report.steps;
        events += report.events;
        crashes += report.crashes;
        faults.merge(&report.faults);
        let mut line = report.summary();
        line.push('\n');
        if let Some(v) = &report.violation {
            line.push_str(&v.to_string());
            failed.push((seed, v.invariant, v.step));
        }
        bar.suspend(|| super::print(&line))?;
    }
    bar.finish_and_clear();
    let injected: Vec<String> = faults
        .nonzero()
        .into_iter()
        .map(|(k, n)| format!("{k}={n}"))
        .collect();
    super::print(&format!(
        "total: seeds={} passed={} failed={} steps={steps} events={events} crashes={crashes} injected[{}]\n",
        to - from,
        (to - from) as usize - failed.len(),
        failed.len(),
        injected.join(" ")
    ))?;
    if !failed.is_empty() {
        let list: Vec<String> = failed
            .iter()
            .map(|(seed, invariant, step)| format!("{seed} ({invariant} at step {step})"))
            .collect();
        bail!("failing seeds: {}", list.join(", "));
    }
    Ok(())
}
