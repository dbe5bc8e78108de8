//! The liveness rules, as pure functions: when a silent instance is out of service, when its
//! record expires, and when it has recovered. The daemon's monitor applies them to the
//! heartbeats it tracks in memory; the decider checks the evidence a transition carries against
//! the same rules; the simulator drives them on a virtual clock.

use events::schema::Silence;

/// The limits in force (from the mesh controller's settings).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub heartbeat_interval_ms: u64,
    pub dead_record_ms: u64,
}

impl Limits {
    /// An instance silent past this instant is out of service: 2 × the heartbeat interval
    /// after its last heartbeat, as in EaseMesh.
    pub fn out_of_service_deadline(&self, last_heartbeat_ms: i64) -> i64 {
        last_heartbeat_ms.saturating_add(2 * self.heartbeat_interval_ms as i64)
    }

    /// An instance silent past this instant is removed.
    pub fn expiry_deadline(&self, last_heartbeat_ms: i64) -> i64 {
        last_heartbeat_ms.saturating_add(self.dead_record_ms as i64)
    }
}

/// What the monitor knows of one instance's heartbeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen {
    /// The last heartbeat, or the moment the monitor started watching when it has seen none
    /// (after a restart every instance gets this grace: as if it had just sent a heartbeat).
    pub last_heartbeat_ms: i64,
    pub heartbeat_seen: bool,
}

/// A transition the rules call for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    OutOfService(Silence),
    Expired(Silence),
    Recovered { heartbeat_ms: i64 },
}

/// Judge one instance at `now_ms`. `silent_since` is the last heartbeat of the silence the log
/// already has it out of service for (`None` when it is not silent). Expiry wins over
/// out-of-service: an instance silent for the dead-record time is removed, whatever its
/// status. A recovery needs a real heartbeat after the silence began: a change of limits alone
/// (a longer interval) does not bring an instance back.
pub fn judge(
    seen: Seen,
    silent_since: Option<i64>,
    now_ms: i64,
    limits: Limits,
) -> Option<Verdict> {
    let silence = |deadline_ms: i64| Silence {
        last_heartbeat_ms: seen.last_heartbeat_ms,
        heartbeat_seen: seen.heartbeat_seen,
        deadline_ms,
        detected_at_ms: now_ms,
    };
    let expiry = limits.expiry_deadline(seen.last_heartbeat_ms);
    if now_ms >= expiry {
        return Some(Verdict::Expired(silence(expiry)));
    }
    let out = limits.out_of_service_deadline(seen.last_heartbeat_ms);
    match (silent_since, now_ms >= out) {
        (None, true) => Some(Verdict::OutOfService(silence(out))),
        (Some(since), false) if seen.heartbeat_seen && seen.last_heartbeat_ms > since => {
            Some(Verdict::Recovered {
                heartbeat_ms: seen.last_heartbeat_ms,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        heartbeat_interval_ms: 5_000,
        dead_record_ms: 1_200_000,
    };

    fn seen(at: i64) -> Seen {
        Seen {
            last_heartbeat_ms: at,
            heartbeat_seen: true,
        }
    }

    #[test]
    fn out_of_service_exactly_at_two_intervals() {
        assert_eq!(judge(seen(1_000), None, 10_999, LIMITS), None);
        match judge(seen(1_000), None, 11_000, LIMITS) {
            Some(Verdict::OutOfService(s)) => {
                assert_eq!((s.deadline_ms, s.detected_at_ms), (11_000, 11_000))
            }
            other => panic!("{other:?}"),
        }
        // Already out of service: nothing more until expiry.
        assert_eq!(judge(seen(1_000), Some(1_000), 11_000, LIMITS), None);
    }

    #[test]
    fn recovery_needs_a_fresh_real_heartbeat() {
        assert_eq!(
            judge(seen(20_000), Some(1_000), 20_100, LIMITS),
            Some(Verdict::Recovered {
                heartbeat_ms: 20_000
            })
        );
        let grace = Seen {
            last_heartbeat_ms: 20_000,
            heartbeat_seen: false,
        };
        assert_eq!(judge(grace, Some(1_000), 20_100, LIMITS), None);
        // A longer interval alone (the same last heartbeat, no longer past the deadline) is not
        // a recovery.
        let longer = Limits {
            heartbeat_interval_ms: 60_000,
            dead_record_ms: 1_200_000,
        };
        assert_eq!(judge(seen(1_000), Some(1_000), 20_100, longer), None);
    }

    #[test]
    fn expiry_after_the_dead_record_time() {
        match judge(seen(0), Some(0), 1_200_000, LIMITS) {
            Some(Verdict::Expired(s)) => assert_eq!(s.deadline_ms, 1_200_000),
            other => panic!("{other:?}"),
        }
    }
}
