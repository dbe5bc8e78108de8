//! Learned dependencies and their ageing: a dependency is active while it keeps being seen;
//! unseen for the TTL it becomes idle (Slime's EXPIREWAIT, still in the Sidecar); unseen for
//! the grace period after that it is forgotten. Slime never ages access-log dependencies out.

use events::schema::{Ageing, Via};
use serde::{Deserialize, Serialize};

use super::config::FenceConfig;

/// One dependency a fence learned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Learned {
    pub first_seen_ms: i64,
    /// Log position of the event that learned it.
    pub learned_position: u64,
    pub last_seen_ms: i64,
    /// Log position of the last event that refreshed it (== learned_position if none).
    pub last_position: u64,
    pub via: Via,
    /// How the first sighting's caller was identified.
    pub source: String,
    /// The destination as first reported.
    pub raw: String,
    /// Refresh events since it was learned.
    pub refreshes: u64,
    /// Set while idle (EXPIREWAIT): the evidence it went idle on, and its position.
    pub idle: Option<(Ageing, u64)>,
}

/// What ageing is due for one dependency at `now_ms`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Due {
    Nothing,
    /// Active, unseen for the TTL.
    Idle(Ageing),
    /// Unseen for TTL + grace (idle already, or both at once after a long pause).
    Forget {
        idle: Option<Ageing>,
        forget: Ageing,
    },
}

/// The ageing rules.
pub fn judge(learned: &Learned, config: &FenceConfig, now_ms: i64) -> Due {
    let idle_at = learned
        .last_seen_ms
        .saturating_add(config.dependency_ttl_ms);
    let forget_at = idle_at.saturating_add(config.idle_grace_ms);
    let ageing = |deadline_ms| Ageing {
        last_seen_ms: learned.last_seen_ms,
        deadline_ms,
        detected_at_ms: now_ms,
    };
    if now_ms >= forget_at {
        let idle = learned.idle.is_none().then(|| ageing(idle_at));
        return Due::Forget {
            idle,
            forget: ageing(forget_at),
        };
    }
    if now_ms >= idle_at && learned.idle.is_none() {
        return Due::Idle(ageing(idle_at));
    }
    Due::Nothing
}

/// When the next ageing step of this dependency falls due.
pub fn next_due_ms(learned: &Learned, config: &FenceConfig) -> i64 {
    let idle_at = learned
        .last_seen_ms
        .saturating_add(config.dependency_ttl_ms);
    if learned.idle.is_none() {
        idle_at
    } else {
        idle_at.saturating_add(config.idle_grace_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn learned(last_seen_ms: i64) -> Learned {
        Learned {
            first_seen_ms: last_seen_ms,
            learned_position: 1,
            last_seen_ms,
            last_position: 1,
            via: Via::AccessLog,
            source: String::new(),
            raw: String::new(),
            refreshes: 0,
            idle: None,
        }
    }

    fn config() -> FenceConfig {
        FenceConfig {
            dependency_ttl_ms: 1000,
            idle_grace_ms: 500,
            ..FenceConfig::default()
        }
    }

    #[test]
    fn active_then_idle_then_forgotten() {
        let l = learned(10_000);
        assert_eq!(judge(&l, &config(), 10_999), Due::Nothing);
        let Due::Idle(a) = judge(&l, &config(), 11_000) else {
            panic!()
        };
        assert_eq!(
            (a.last_seen_ms, a.deadline_ms, a.detected_at_ms),
            (10_000, 11_000, 11_000)
        );
        let mut idle = l.clone();
        idle.idle = Some((a, 2));
        assert_eq!(judge(&idle, &config(), 11_499), Due::Nothing);
        assert_eq!(next_due_ms(&idle, &config()), 11_500);
        let Due::Forget { idle: None, forget } = judge(&idle, &config(), 11_500) else {
            panic!()
        };
        assert_eq!(forget.deadline_ms, 11_500);
    }

    #[test]
    fn a_long_pause_idles_and_forgets_at_once() {
        let due = judge(&learned(0), &config(), 60_000);
        let Due::Forget {
            idle: Some(i),
            forget,
        } = due
        else {
            panic!("{due:?}")
        };
        assert_eq!((i.deadline_ms, forget.deadline_ms), (1000, 1500));
    }
}
