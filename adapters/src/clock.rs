//! The wall clock and randomness the daemon feeds into decisions (the pure crates never read
//! them directly), and time formatting.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch: the system clock read once, at the first call, advanced
/// by the monotonic clock since. Liveness is judged on differences of these readings, so a step
/// of the system clock (an NTP correction, an operator's `date -s`) can neither mark every
/// instance out of service nor expire them all; the price is that a wrong system clock at
/// start-up stays wrong, by the same offset, until the daemon restarts.
pub fn now_ms() -> i64 {
    static ANCHOR: OnceLock<(i64, Instant)> = OnceLock::new();
    let (wall_ms, at) = ANCHOR.get_or_init(|| (system_ms(), Instant::now()));
    wall_ms + at.elapsed().as_millis() as i64
}

fn system_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A fresh seed for a decision context, from the OS's randomness.
pub fn fresh_seed() -> u64 {
    uuid::Uuid::new_v4().as_u64_pair().0
}

pub use projections::time::rfc3339;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_never_goes_back_and_starts_at_the_system_time() {
        let a = now_ms();
        let b = now_ms();
        assert!(b >= a);
        assert!(
            (a - system_ms()).abs() < 60_000,
            "anchored at the system time"
        );
    }
}
