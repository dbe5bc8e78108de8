//! The storage fault sweep: damage a real log file in every page, one bit at a time, and in
//! every length, and check what opening it does. The only acceptable outcomes are "unaffected"
//! (the same events read back), "repaired" (an unacknowledged torn commit rolled back, every
//! acknowledged event still there) and "refused" (an error, the file left byte for byte as it
//! was, and salvage still finding the intact records). A panic, a changed log served without a
//! word, or a refused file that was changed anyway is a failure.
//!
//! Used by the CI sample (`events/tests/faults.rs`) and the full sweep
//! (`cargo bench -p events --bench fault_sweep`).

use std::path::{Path, PathBuf};

use uuid::Uuid;

use super::RedbBackend;
use crate::backend::Backend;
use crate::envelope::{Envelope, ExpectedVersion, NewEvent};
use crate::error::StoreError;
use crate::log::{Log, SyncLog};
use crate::salvage;
use crate::store::EventStore;

/// redb's page size.
pub const PAGE: usize = 4096;

/// Write a log of `events` events to `dir/events.redb` the way the daemon does (group commits
/// of varied sizes over several streams, the index tables checkpointed half way), close it
/// cleanly, and return its path and events.
pub fn build_log(dir: &Path, events: u64) -> Result<(PathBuf, Vec<Envelope>), StoreError> {
    let path = dir.join("events.redb");
    let event = |n: u64| NewEvent {
        event_id: Uuid::from_u128(0x5eed_0000_0000_0000 + u128::from(n)),
        recorded_at_ms: 1_790_000_000_000 + n as i64,
        event_type: "resource.applied".into(),
        schema_version: 1,
        payload: (0..(n % 97 + 20)).map(|i| (n + i) as u8).collect(),
    };
    let append = |from: u64, to: u64| -> Result<(), StoreError> {
        let log = Log::open(RedbBackend::open(&path)?)?;
        let mut n = from;
        while n <= to {
            let size = (n % 7 + 1).min(to - n + 1);
            log.append(
                &format!("s/{}", n % 5),
                ExpectedVersion::Any,
                (n..n + size).map(event).collect(),
            )?;
            n += size;
        }
        Ok(())
    };
    append(1, events / 2)?;
    {
        let mut backend = RedbBackend::open(&path)?;
        backend.recover()?;
        backend.checkpoint()?;
    }
    append(events / 2 + 1, events)?;
    let all = SyncLog::open(RedbBackend::open(&path)?)?.read_from(1, usize::MAX)?;
    Ok((path, all))
}

/// What opening one damaged copy did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Unaffected,
    /// Opened with a note (a torn unacknowledged commit rolled back), every event intact.
    Repaired(String),
    /// Refused with a damage report.
    Refused,
    /// Refused with another error (named, so a vague one can be found and improved).
    RefusedOther(String),
    /// Failures:
    Panicked(String),
    SilentChange {
        head: u64,
    },
    ChangedOnRefusal,
    /// A refused file from which salvage finds fewer intact records than it should.
    SalvageShort {
        found: usize,
    },
}

impl Outcome {
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            Outcome::Panicked(_)
                | Outcome::SilentChange { .. }
                | Outcome::ChangedOnRefusal
                | Outcome::SalvageShort { .. }
        )
    }
}

/// Open the log at `path` and judge it against the `expected` events. When it is refused,
/// salvage must still find at least `salvage_floor` of them intact.
pub fn judge(path: &Path, expected: &[Envelope], salvage_floor: usize) -> Outcome {
    let before = std::fs::read(path).unwrap_or_default();
    let opened =
        std::panic::catch_unwind(|| -> Result<(Vec<Envelope>, Vec<String>), StoreError> {
            let log = SyncLog::open(RedbBackend::open(path)?)?;
            let events = log.read_from(1, usize::MAX)?;
            Ok((events, log.recovery().notes))
        });
    match opened {
        Err(panic) => Outcome::Panicked(
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default(),
        ),
        Ok(Ok((events, notes))) if events == expected => match notes.is_empty() {
            true => Outcome::Unaffected,
            false => Outcome::Repaired(notes.join("; ")),
        },
        Ok(Ok((events, _))) => Outcome::SilentChange {
            head: events.last().map_or(0, |e| e.position),
        },
        Ok(Err(error)) => {
            if std::fs::read(path).unwrap_or_default() != before {
                return Outcome::ChangedOnRefusal;
            }
            let found = salvage::scan(&before);
            let intact = expected
                .iter()
                .filter(|e| found.records.get(&e.position) == Some(e))
                .count();
            if intact < salvage_floor {
                return Outcome::SalvageShort { found: intact };
            }
            match error {
                StoreError::Damaged(_) => Outcome::Refused,
                other => Outcome::RefusedOther(other.to_string()),
            }
        }
    }
}

/// Tally of a sweep.
#[derive(Debug, Default)]
pub struct Tally {
    pub cases: usize,
    pub unaffected: usize,
    pub repaired: usize,
    pub refused: usize,
    pub refused_other: Vec<String>,
    /// Every failing case: what was done, and the outcome.
    pub failures: Vec<(String, Outcome)>,
}

impl Tally {
    fn add(&mut self, case: String, outcome: Outcome) {
        self.cases += 1;
        match &outcome {
            Outcome::Unaffected => self.unaffected += 1,
            Outcome::Repaired(_) => self.repaired += 1,
            Outcome::Refused => self.refused += 1,
            Outcome::RefusedOther(why) => self.refused_other.push(format!("{case}: {why}")),
            _ => self.failures.push((case, outcome)),
        }
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} cases: {} unaffected, {} repaired, {} refused with a report, {} refused with \
             another error, {} failures",
            self.cases,
            self.unaffected,
            self.repaired,
            self.refused,
            self.refused_other.len(),
            self.failures.len()
        )
    }
}

/// Flip one bit at each of `offsets` (within the page) of every page of the log at `path`,
/// each on a fresh copy in `scratch`, and judge every copy.
pub fn bit_flips(path: &Path, expected: &[Envelope], offsets: &[usize], scratch: &Path) -> Tally {
    let original = std::fs::read(path).expect("read the log");
    let acked = super::acked::path_of(path);
    let copy = scratch.join("events.redb");
    let mut tally = Tally::default();
    quiet_panics(|| {
        for page in 0..original.len().div_ceil(PAGE) {
            for (i, offset) in offsets.iter().enumerate() {
                let at = page * PAGE + offset % PAGE;
                if at >= original.len() {
                    continue;
                }
                let bit = (page + i) % 8;
                let mut damaged = original.clone();
                damaged[at] ^= 1 << bit;
                std::fs::write(&copy, &damaged).expect("write the copy");
                let _ = std::fs::copy(&acked, super::acked::path_of(&copy));
                let case = format!("page {page} byte {at} bit {bit}");
                // One flipped bit damages at most one record (older page copies may still hold
                // it): salvage must find every other one.
                let floor = expected.len().saturating_sub(1);
                tally.add(case, judge(&copy, expected, floor));
            }
        }
    });
    tally
}

/// Cut the log at `path` to each of `lengths`, each on a fresh copy in `scratch`.
pub fn truncations(path: &Path, expected: &[Envelope], lengths: &[usize], scratch: &Path) -> Tally {
    let original = std::fs::read(path).expect("read the log");
    let acked = super::acked::path_of(path);
    let copy = scratch.join("events.redb");
    let mut tally = Tally::default();
    quiet_panics(|| {
        for len in lengths.iter().filter(|l| **l < original.len()) {
            std::fs::write(&copy, &original[..*len]).expect("write the copy");
            let _ = std::fs::copy(&acked, super::acked::path_of(&copy));
            // What was cut off is gone: salvage has no floor here.
            tally.add(format!("cut to {len} bytes"), judge(&copy, expected, 0));
        }
    });
    tally
}

/// Run `f` with panic messages silenced (a sweep catches them and counts them as failures).
fn quiet_panics(f: impl FnOnce()) {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// The offsets within a page that a sweep flips: the page header's first bytes (page type,
/// entry counts, the region and commit headers on the first pages) and spots spread over the
/// rest of the page.
pub fn offsets(count: usize) -> Vec<usize> {
    let mut offsets = vec![0, 1, 2, 3, 4, 8, 16, 32, 64];
    let mut x: u64 = 0x9e37_79b9;
    while offsets.len() < count.max(offsets.len()) {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        offsets.push((x >> 33) as usize % PAGE);
    }
    offsets.truncate(count);
    offsets
}
