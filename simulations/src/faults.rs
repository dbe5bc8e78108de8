//! The fault model: which faults the simulated world injects, how often, and a count of each.
//!
//! Rates are probabilities per step (crashes, watch drops, compactions, drift, etcd outages) or
//! per operation (kube writes, etcd transactions, appends). A level fixes every rate; `swarm`
//! draws each rate from the seed (VOPR's `options_swarm`), switching some faults off entirely,
//! so each seed explores its own mix.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// How hostile the world is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultLevel {
    None,
    Low,
    Medium,
    High,
    /// Each seed draws its own rates (between none and high, some switched off).
    Swarm,
}

impl FaultLevel {
    pub const ALL: &'static [FaultLevel] = &[
        FaultLevel::None,
        FaultLevel::Low,
        FaultLevel::Medium,
        FaultLevel::High,
        FaultLevel::Swarm,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultLevel::None => "none",
            FaultLevel::Low => "low",
            FaultLevel::Medium => "medium",
            FaultLevel::High => "high",
            FaultLevel::Swarm => "swarm",
        }
    }

    pub fn parse(text: &str) -> Option<FaultLevel> {
        FaultLevel::ALL.iter().copied().find(|l| l.name() == text)
    }
}

/// Every fault rate. All zero: a perfect world.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FaultRates {
    /// Per step: the daemon crashes (and restarts a little later from its log).
    pub crash: f64,
    /// Per crash with an unsynced tail: the first lost record is torn (half-written).
    pub torn_tail: f64,
    /// Per step: the group commit holds the unsynced tail one more step (a crash window).
    pub sync_delay: f64,
    /// Per kube write: an injected 409 Conflict (another writer got there first).
    pub kube_conflict: f64,
    /// Per kube write: a 500 (the adapter backs off in virtual time).
    pub kube_error: f64,
    /// Per kube write: the write times out and lands later (or is refused when it lands).
    pub kube_slow: f64,
    /// Per step: the adapter's watch drops.
    pub kube_watch_drop: f64,
    /// Per step: the API server compacts its history (resuming a watch then gets 410 Gone).
    pub kube_compact: f64,
    /// Per step: another writer changes or deletes a managed object.
    pub kube_drift: f64,
    /// Per step: etcd becomes unavailable for a while.
    pub etcd_outage: f64,
    /// Per etcd transaction: the connection is lost (the transaction may or may not have
    /// committed).
    pub etcd_lost: f64,
    /// Per step: another writer changes or deletes a key meshplane owns.
    pub etcd_drift: f64,
}

impl FaultRates {
    /// The rates of a fixed level; `Swarm` draws them from `rng`.
    pub fn for_level(level: FaultLevel, rng: &mut ChaCha8Rng) -> FaultRates {
        let scaled = |k: f64| FaultRates {
            crash: 0.002 * k,
            torn_tail: (0.5 * k).min(0.9),
            sync_delay: (0.1 * k).min(0.6),
            kube_conflict: 0.02 * k,
            kube_error: 0.02 * k,
            kube_slow: 0.02 * k,
            kube_watch_drop: 0.003 * k,
            kube_compact: 0.002 * k,
            kube_drift: 0.002 * k,
            etcd_outage: 0.001 * k,
            etcd_lost: 0.01 * k,
            etcd_drift: 0.002 * k,
        };
        match level {
            FaultLevel::None => FaultRates::default(),
            FaultLevel::Low => scaled(1.0),
            FaultLevel::Medium => scaled(3.0),
            FaultLevel::High => scaled(8.0),
            FaultLevel::Swarm => {
                let high = scaled(8.0);
                let mut draw = |max: f64| {
                    if rng.random_bool(0.25) {
                        0.0
                    } else {
                        rng.random_range(0.0..=max)
                    }
                };
                FaultRates {
                    crash: draw(high.crash),
                    torn_tail: draw(high.torn_tail),
                    sync_delay: draw(high.sync_delay),
                    kube_conflict: draw(high.kube_conflict),
                    kube_error: draw(high.kube_error),
                    kube_slow: draw(high.kube_slow),
                    kube_watch_drop: draw(high.kube_watch_drop),
                    kube_compact: draw(high.kube_compact),
                    kube_drift: draw(high.kube_drift),
                    etcd_outage: draw(high.etcd_outage),
                    etcd_lost: draw(high.etcd_lost),
                    etcd_drift: draw(high.etcd_drift),
                }
            }
        }
    }

    /// One line, for the report and the trail.
    pub fn describe(&self) -> String {
        format!(
            "crash={:.4} torn={:.2} sync_delay={:.2} kube(conflict={:.3} error={:.3} slow={:.3} watch_drop={:.4} compact={:.4} drift={:.4}) etcd(outage={:.4} lost={:.3} drift={:.4})",
            self.crash,
            self.torn_tail,
            self.sync_delay,
            self.kube_conflict,
            self.kube_error,
            self.kube_slow,
            self.kube_watch_drop,
            self.kube_compact,
            self.kube_drift,
            self.etcd_outage,
            self.etcd_lost,
            self.etcd_drift
        )
    }
}

/// Kinds of injected faults (and of the recoveries they force), for the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FaultKind {
    Crash,
    TornTail,
    UnsyncedLost,
    SyncDelayed,
    KubeConflict,
    KubeError,
    KubeSlow,
    KubeWatchDrop,
    KubeCompact,
    KubeGone,
    KubeDrift,
    EtcdOutage,
    EtcdUnavailable,
    EtcdLost,
    EtcdDrift,
}

impl FaultKind {
    pub const ALL: &'static [FaultKind] = &[
        FaultKind::Crash,
        FaultKind::TornTail,
        FaultKind::UnsyncedLost,
        FaultKind::SyncDelayed,
        FaultKind::KubeConflict,
        FaultKind::KubeError,
        FaultKind::KubeSlow,
        FaultKind::KubeWatchDrop,
        FaultKind::KubeCompact,
        FaultKind::KubeGone,
        FaultKind::KubeDrift,
        FaultKind::EtcdOutage,
        FaultKind::EtcdUnavailable,
        FaultKind::EtcdLost,
        FaultKind::EtcdDrift,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Crash => "crash",
            FaultKind::TornTail => "torn_tail",
            FaultKind::UnsyncedLost => "unsynced_lost",
            FaultKind::SyncDelayed => "sync_delayed",
            FaultKind::KubeConflict => "kube_409",
            FaultKind::KubeError => "kube_500",
            FaultKind::KubeSlow => "kube_slow",
            FaultKind::KubeWatchDrop => "kube_watch_drop",
            FaultKind::KubeCompact => "kube_compact",
            FaultKind::KubeGone => "kube_410",
            FaultKind::KubeDrift => "kube_drift",
            FaultKind::EtcdOutage => "etcd_outage",
            FaultKind::EtcdUnavailable => "etcd_unavailable",
            FaultKind::EtcdLost => "etcd_lost",
            FaultKind::EtcdDrift => "etcd_drift",
        }
    }
}

/// How many of each fault were injected.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    counts: [u64; FaultKind::ALL.len()],
}

impl FaultCounts {
    pub fn add(&mut self, kind: FaultKind) {
        self.counts[kind as usize] += 1;
    }

    pub fn get(&self, kind: FaultKind) -> u64 {
        self.counts[kind as usize]
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Every kind with a non-zero count, in a fixed order.
    pub fn nonzero(&self) -> Vec<(&'static str, u64)> {
        FaultKind::ALL
            .iter()
            .filter(|k| self.get(**k) > 0)
            .map(|k| (k.name(), self.get(*k)))
            .collect()
    }

    pub fn merge(&mut self, other: &FaultCounts) {
        for (a, b) in self.counts.iter_mut().zip(other.counts) {
            *a += b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn levels_parse_and_swarm_draws_per_seed() {
        for level in FaultLevel::ALL {
            assert_eq!(FaultLevel::parse(level.name()), Some(*level));
        }
        let none = FaultRates::for_level(FaultLevel::None, &mut ChaCha8Rng::seed_from_u64(1));
        assert_eq!(none, FaultRates::default());
        let a = FaultRates::for_level(FaultLevel::Swarm, &mut ChaCha8Rng::seed_from_u64(1));
        let b = FaultRates::for_level(FaultLevel::Swarm, &mut ChaCha8Rng::seed_from_u64(2));
        let a2 = FaultRates::for_level(FaultLevel::Swarm, &mut ChaCha8Rng::seed_from_u64(1));
        assert_eq!(a, a2);
        assert_ne!(a, b);
    }
}
