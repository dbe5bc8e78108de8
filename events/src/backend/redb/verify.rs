//! The check every open runs over the whole log: every chunk starts where the one before
//! ended, every frame verifies (length, checksum, the position it claims), the log ends where
//! `meta.head` says, and the acknowledgement record ([`super::acked`]) is covered.
//!
//! redb's integrity check, which the open runs first, has by then verified the checksum of every
//! page (so the index tables and the chunk keys are covered too); this check covers what redb's
//! checksums cannot see: records written wrongly, a hole, a head that disagrees with the records,
//! and an acknowledged commit that is gone. It reads every record once (measured: 1M records,
//! 235 MB, in ~0.1 s with the file cached), and stops nothing: past the first damage it goes on
//! counting the intact records, for the report.

use redb::{Database, ReadableDatabase, ReadableTable};

use super::acked::Acked;
use super::{storage, Spans, EVENTS, META, META_HEAD};
use crate::damage::Damage;
use crate::error::StoreError;
use crate::frame;

/// What the check found in a log that verifies.
#[derive(Clone, Copy, Debug)]
pub(super) struct Verified {
    pub head: u64,
    /// `meta.indexed`: the records after it are not in the index tables yet.
    pub indexed: u64,
}

/// The first damage met, and what was intact after it.
struct Finding {
    first_bad: u64,
    reason: String,
    intact_after: u64,
    last_intact: u64,
}

impl Finding {
    fn report(self, file: &str) -> StoreError {
        StoreError::Damaged(Box::new(
            Damage::new(file, self.first_bad, self.reason)
                .with_intact_after(self.intact_after, self.last_intact),
        ))
    }
}

/// Check the log in `db` (whose file is `file`, for the report) against `acked`.
pub(super) fn verify(
    db: &Database,
    file: &str,
    acked: Option<Acked>,
) -> Result<Verified, StoreError> {
    let txn = db.begin_read().map_err(storage("begin read"))?;
    let meta = txn.open_table(META).map_err(storage("open table meta"))?;
    let read_meta = |key: &str| -> Result<u64, StoreError> {
        Ok(meta
            .get(key)
            .map_err(storage("read meta"))?
            .map_or(0, |v| v.value()))
    };
    let committed = read_meta(META_HEAD)?;
    let indexed = read_meta(super::META_INDEXED)?;
    let events = txn
        .open_table(EVENTS)
        .map_err(storage("open table events"))?;
    let mut finding: Option<Finding> = None;
    let note = |finding: &mut Option<Finding>, position: u64, reason: String| {
        if finding.is_none() {
            *finding = Some(Finding {
                first_bad: position,
                reason,
                intact_after: 0,
                last_intact: 0,
            });
        }
    };
    // The next position a chunk must start at, and the checksum of the acknowledged record.
    let mut next = 1u64;
    let mut acked_crc = None;
    for entry in events.iter().map_err(storage("scan events"))? {
        let (key, value) = entry.map_err(storage("scan events"))?;
        let (first, bytes) = (key.value(), value.value());
        if first != next && finding.is_none() {
            let reason = if first > next {
                format!("record missing: the next stored record is at {first}")
            } else {
                format!("a chunk at {first} overlaps the records before it")
            };
            note(&mut finding, next, reason);
        }
        let spans = Spans::of(bytes);
        for (i, &(start, end)) in spans.frames.iter().enumerate() {
            let position = first + i as u64;
            match frame::verify(position, &bytes[start..end]) {
                Ok(crc) => match &mut finding {
                    Some(f) => {
                        f.intact_after += 1;
                        f.last_intact = f.last_intact.max(position);
                    }
                    None => {
                        if acked.is_some_and(|a| a.head == position) {
                            acked_crc = Some(crc);
                        }
                        next = position + 1;
                    }
                },
                Err(StoreError::Corrupt { reason, .. }) => note(&mut finding, position, reason),
                Err(other) => return Err(other),
            }
        }
        if let Some((_, reason)) = &spans.rest {
            let position = first + spans.frames.len() as u64;
            note(&mut finding, position, reason.clone());
        }
    }
    if let Some(finding) = finding {
        return Err(finding.report(file));
    }
    let head = next - 1;
    if committed != head {
        let reason = if committed > head {
            format!("the log's head says {committed}, but its records end at {head}")
        } else {
            format!(
                "records up to {head} are stored, but the last commit ended at {committed}: \
                 they were written outside a commit"
            )
        };
        let first_bad = committed.min(head) + 1;
        let intact_after = head.saturating_sub(committed);
        return Err(Finding {
            first_bad,
            reason,
            intact_after,
            last_intact: head,
        }
        .report(file));
    }
    if indexed > head {
        return Err(StoreError::Damaged(Box::new(Damage::new(
            file,
            head + 1,
            format!("the index tables cover positions up to {indexed}, past the head {head}"),
        ))));
    }
    if let Some(acked) = acked {
        if acked.head > head {
            return Err(StoreError::Damaged(Box::new(Damage::new(
                file,
                head + 1,
                format!(
                    "positions up to {} were acknowledged to writers, but the log ends at {head}: \
                     an acknowledged commit is gone (damaged on the medium, or the file was \
                     replaced by an older copy)",
                    acked.head
                ),
            ))));
        }
        if acked.head > 0 && acked_crc != Some(acked.frame_crc) {
            return Err(StoreError::Damaged(Box::new(Damage::new(
                file,
                acked.head,
                "the record differs from the one acknowledged (the file was replaced by another \
                 log?)",
            ))));
        }
    }
    Ok(Verified { head, indexed })
}
