//! The simulated event log: the real envelopes and framing, in memory, with a durable watermark.
//!
//! An append checks every stream's [`ExpectedVersion`] like the real stores and lands in the
//! unsynced tail; [`SimLog::sync`] makes the tail durable, and only then is it acknowledged. A
//! crash keeps the durable prefix, plus a random prefix of the unsynced tail (writes reach the
//! disk in order), and may leave the next record torn: the first bytes of its real frame, or
//! the whole frame with a flipped bit. Recovery must detect and cut those bytes with the real
//! frame decoder, never read them as a record (FoundationDB's `AsyncFileNonDurable`).

use std::collections::BTreeMap;

use actors::Meta;
use events::{frame, Envelope, Event, ExpectedVersion, NewEvent, StoreError};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use uuid::Uuid;

/// What a crash did to the log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CrashDamage {
    /// Unsynced records that never reached the disk.
    pub lost: usize,
    /// Unsynced records that did reach it (durable now, though never acknowledged).
    pub survived: usize,
    /// A torn record was left after the last whole one.
    pub torn: bool,
}

/// What recovery found at the end of the log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    pub head: u64,
    pub cut_bytes: usize,
    /// Why the torn bytes were rejected.
    pub reason: Option<String>,
}

/// The torn bytes a crash left, and the id of the record they came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    pub bytes: Vec<u8>,
    /// The record the bytes were meant to be (only the deliberate `TrustTornTail` bug reads
    /// it back).
    pub original: Envelope,
}

/// An in-memory log of real envelopes.
#[derive(Clone, Debug, Default)]
pub struct SimLog {
    records: Vec<Envelope>,
    /// Records `[..durable]` are on disk.
    durable: usize,
    streams: BTreeMap<String, u64>,
    /// Bytes after the last whole record, left by a crash.
    pub torn: Option<TornTail>,
}

impl SimLog {
    pub fn head(&self) -> u64 {
        self.records.len() as u64
    }

    pub fn durable(&self) -> u64 {
        self.durable as u64
    }

    pub fn records(&self) -> &[Envelope] {
        &self.records
    }

    /// The record at a (1-based) position.
    pub fn at(&self, position: u64) -> Option<&Envelope> {
        position
            .checked_sub(1)
            .and_then(|i| self.records.get(i as usize))
    }

    pub fn stream_version(&self, stream: &str) -> u64 {
        self.streams.get(stream).copied().unwrap_or(0)
    }

    /// Append one decision's events to one stream, unsynced. Returns each event's metadata.
    pub fn append(
        &mut self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[Event],
        ids: &[Uuid],
        recorded_at_ms: i64,
    ) -> Result<Vec<Meta>, StoreError> {
        if events.is_empty() || stream.is_empty() {
            return Err(StoreError::InvalidAppend(
                "empty stream or no events".into(),
            ));
        }
        let actual = self.stream_version(stream);
        if !expected.admits(actual) {
            return Err(StoreError::WrongExpectedVersion {
                stream: stream.to_string(),
                expected: expected.to_string(),
                actual,
            });
        }
        let mut metas = Vec::with_capacity(events.len());
        for (i, (event, id)) in events.iter().zip(ids).enumerate() {
            let new = NewEvent::encode(event, *id, recorded_at_ms)?;
            let meta = Meta {
                position: self.head() + 1,
                stream_version: actual + 1 + i as u64,
                recorded_at_ms,
            };
            self.records.push(Envelope {
                position: meta.position,
                stream: stream.to_string(),
                stream_version: meta.stream_version,
                event_id: new.event_id,
                recorded_at_ms,
                event_type: new.event_type,
                schema_version: new.schema_version,
                payload: new.payload,
            });
            metas.push(meta);
        }
        self.streams
            .insert(stream.to_string(), actual + events.len() as u64);
        Ok(metas)
    }

    /// Make the unsynced tail durable. Returns the range of positions newly acknowledged.
    pub fn sync(&mut self) -> std::ops::Range<usize> {
        let from = self.durable;
        self.durable = self.records.len();
        from..self.durable
    }

    /// The daemon loses power: keep the durable prefix and a random prefix of the unsynced
    /// tail; maybe leave the next record torn.
    pub fn crash(&mut self, rng: &mut ChaCha8Rng, torn_rate: f64) -> CrashDamage {
        let unsynced = self.records.len() - self.durable;
        let survived = if unsynced == 0 {
            0
        } else {
            rng.random_range(0..=unsynced)
        };
        let keep = self.durable + survived;
        let mut damage = CrashDamage {
            lost: unsynced - survived,
            survived,
            torn: false,
        };
        if keep < self.records.len() && rng.random_bool(torn_rate) {
            let record = &self.records[keep];
            let whole = frame::encode(record).expect("stored envelopes encode");
            let bytes = if rng.random_bool(0.5) {
                let cut = rng.random_range(0..whole.len());
                whole[..cut].to_vec()
            } else {
                let mut flipped = whole;
                let at = rng.random_range(0..flipped.len());
                flipped[at] ^= 1 << rng.random_range(0..8);
                flipped
            };
            self.torn = Some(TornTail {
                bytes,
                original: record.clone(),
            });
            damage.torn = true;
        }
        self.records.truncate(keep);
        self.durable = keep;
        damage
    }

    /// Open the log after a crash: cut any torn bytes after the last whole record (they must
    /// not decode as a record), rebuild the stream versions. With `trust_torn` (a deliberate
    /// bug, for the invariant tests) a torn record is read back as if it were whole.
    pub fn recover(&mut self, trust_torn: bool) -> Result<Recovered, String> {
        let mut out = Recovered::default();
        if let Some(torn) = self.torn.take() {
            match frame::decode_prefix(&torn.bytes) {
                Ok((envelope, _)) if !trust_torn => {
                    return Err(format!(
                        "torn bytes after position {} decoded as the record at position {}",
                        self.head(),
                        envelope.position
                    ));
                }
                Ok((envelope, _)) => self.records.push(envelope),
                // The bug: read the record anyway, whatever the checksum says.
                Err(_) if trust_torn => self.records.push(torn.original),
                Err(reason) => {
                    out.cut_bytes = torn.bytes.len();
                    out.reason = Some(reason);
                }
            }
        }
        self.durable = self.records.len();
        self.streams.clear();
        for r in &self.records {
            self.streams.insert(r.stream.clone(), r.stream_version);
        }
        out.head = self.head();
        Ok(out)
    }

    /// For tests: drop the record at `position` and everything after it, durable or not.
    pub fn truncate_for_test(&mut self, position: u64) {
        let keep = position.saturating_sub(1) as usize;
        self.records.truncate(keep);
        self.durable = self.durable.min(keep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use events::schema::{InstanceDeregistered, InstanceKey};
    use rand::SeedableRng;

    fn event(i: u32) -> Event {
        Event::InstanceDeregistered(InstanceDeregistered {
            key: InstanceKey::new("s", format!("i{i}")),
        })
    }

    #[test]
    fn versions_are_checked_and_torn_tails_cut() {
        let mut log = SimLog::default();
        let id = |n: u128| Uuid::from_u128(n);
        log.append("a", ExpectedVersion::NoStream, &[event(1)], &[id(1)], 5)
            .unwrap();
        assert!(log
            .append("a", ExpectedVersion::NoStream, &[event(2)], &[id(2)], 5)
            .is_err());
        log.append("a", ExpectedVersion::Exact(1), &[event(2)], &[id(2)], 5)
            .unwrap();
        assert_eq!(log.sync(), 0..2);
        for n in 3..10 {
            log.append("b", ExpectedVersion::Any, &[event(n)], &[id(n as u128)], 5)
                .unwrap();
        }
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let damage = log.crash(&mut rng, 1.0);
        assert_eq!(damage.lost + damage.survived, 7);
        let recovered = log.recover(false).unwrap();
        assert_eq!(recovered.head, 2 + damage.survived as u64);
        if damage.lost > 0 {
            assert!(recovered.cut_bytes > 0 || recovered.reason.is_none());
        }
        assert_eq!(log.stream_version("a"), 2);
        assert_eq!(log.durable(), log.head());
    }
}
