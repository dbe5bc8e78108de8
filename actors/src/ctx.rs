//! The decision context: the only way time, ids and randomness reach a decider.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use uuid::Uuid;

/// Everything non-deterministic a decision may use. The daemon fills it from the wall clock and
/// the OS's randomness; the simulator from its virtual clock and seed; replay never needs one
/// (it only evolves stored events).
pub struct Ctx {
    now_ms: i64,
    rng: ChaCha8Rng,
}

impl Ctx {
    /// A context at `now_ms` (milliseconds since the Unix epoch) whose ids and random draws
    /// all come from `seed`.
    pub fn new(now_ms: i64, seed: u64) -> Self {
        Ctx {
            now_ms,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// The current time, milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }

    /// A fresh event id (a version-4 uuid drawn from the seeded generator).
    pub fn next_id(&mut self) -> Uuid {
        let mut bytes = [0u8; 16];
        self.rng.fill_bytes(&mut bytes);
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }

    /// The seeded random generator, for decisions that need a random choice.
    pub fn rng(&mut self) -> &mut impl RngCore {
        &mut self.rng
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_gives_same_ids() {
        let mut a = Ctx::new(0, 42);
        let mut b = Ctx::new(0, 42);
        let ids_a: Vec<_> = (0..3).map(|_| a.next_id()).collect();
        let ids_b: Vec<_> = (0..3).map(|_| b.next_id()).collect();
        assert_eq!(ids_a, ids_b);
        assert_ne!(ids_a[0], ids_a[1]);
        assert_eq!(ids_a[0].get_version_num(), 4);
        assert_ne!(Ctx::new(0, 43).next_id(), ids_a[0]);
    }
}
