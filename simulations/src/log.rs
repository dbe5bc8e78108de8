//! The simulated event log: the real envelopes and framing, in memory, with a durable watermark.
//!
//! An append checks every stream's [`ExpectedVersion`] like the real stores and lands in the
//! unsynced tail; [`SimLog::sync`] makes the tail durable, and only then is it acknowledged. A
//! crash keeps the durable prefix, plus a random prefix of the unsynced tail (writes reach the
//! disk in order), and may leave the next record torn: the first bytes of its real frame, or
//! the whole frame with a flipped bit. Recovery must detect and cut those bytes with the real
//! frame decoder, never read them as a record (FoundationDB's `AsyncFileNonDurable`).
//!
//! Nothing here costs more than the records it touches: a sync, a crash and a recovery work on
//! the unsynced tail only, and folds start from a [`Snapshots`] state instead of position 1
//! (what the daemon's `--snapshot-every` does), so a step costs the same at position 10 and at
//! position 10 million.

use std::collections::{BTreeMap, VecDeque};

use actors::timeline::{Envelopes, EventSource};
use actors::{Mesh, Meta};
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
    /// Each stream's version, over every record.
    streams: BTreeMap<String, u64>,
    /// Each stream's version over the durable records only (what a recovery reads back).
    durable_streams: BTreeMap<String, u64>,
    /// Records `[..unchanged]` are as they were at the last [`SimLog::mark`] (appends leave
    /// them alone; only a cut below the end lowers this).
    unchanged: usize,
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

    /// How many leading records are unchanged since the last [`SimLog::mark`]: a check of
    /// the records against what was acknowledged need only look from here.
    pub fn unchanged(&self) -> usize {
        self.unchanged
    }

    /// Every record as it is now has been checked.
    pub fn mark(&mut self) {
        self.unchanged = self.records.len();
    }

    /// Cut the records after `keep`.
    fn cut(&mut self, keep: usize) {
        self.records.truncate(keep);
        self.unchanged = self.unchanged.min(keep);
    }

    /// The records `[durable..upto]` reach the disk: follow their streams.
    fn make_durable(&mut self, upto: usize) {
        for r in &self.records[self.durable..upto] {
            match self.durable_streams.get_mut(r.stream.as_str()) {
                Some(v) => *v = r.stream_version,
                None => {
                    self.durable_streams
                        .insert(r.stream.clone(), r.stream_version);
                }
            }
        }
        self.durable = upto;
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
        self.records.reserve(events.len());
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
        let version = actual + events.len() as u64;
        match self.streams.get_mut(stream) {
            Some(v) => *v = version,
            None => {
                self.streams.insert(stream.to_string(), version);
            }
        }
        Ok(metas)
    }

    /// Make the unsynced tail durable. Returns the range of positions newly acknowledged.
    pub fn sync(&mut self) -> std::ops::Range<usize> {
        let from = self.durable;
        self.make_durable(self.records.len());
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
        self.cut(keep);
        self.make_durable(keep);
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
        // The stream versions as the disk has them: the durable prefix's (followed as it
        // became durable), then whatever was read back after it.
        self.make_durable(self.records.len());
        self.streams.clone_from(&self.durable_streams);
        out.head = self.head();
        Ok(out)
    }

    /// For tests: drop the record at `position` and everything after it, durable or not.
    pub fn truncate_for_test(&mut self, position: u64) {
        let keep = position.saturating_sub(1) as usize;
        self.cut(keep);
        // Follow the streams again from the start (a test helper need not be quick).
        let durable = self.durable.min(keep);
        self.durable = 0;
        self.durable_streams.clear();
        self.make_durable(durable);
        self.streams.clone_from(&self.durable_streams);
        for r in &self.records[durable..] {
            self.streams.insert(r.stream.clone(), r.stream_version);
        }
    }
}

/// A fold starts from the newest snapshot at or before the position it needs, not from
/// position 1: a daemon restart, a rollback, the simulator's own checks. One is taken every
/// this many positions, and at every rollback.
pub const SNAPSHOT_EVERY: u64 = 64;
/// Snapshots this close to the newest are all kept: more than a rollback reaches back (checked
/// against the simulated operator's reach in `lib.rs`).
pub const RECENT_SPAN: u64 = 1_024;
/// Older ones are kept one per this many positions, so a fold from anywhere stays bounded.
const SPARSE_EVERY: u64 = 65_536;

/// States of the log at some of its positions: every [`SNAPSHOT_EVERY`] positions and at every
/// rollback within the last [`RECENT_SPAN`], one per [`SPARSE_EVERY`] before that. A state at
/// position P is the fold of the records up to P, so it stays valid as long as they do: a
/// snapshot of a record a crash may still lose is forgotten with it ([`Snapshots::forget_after`]).
///
/// Why at every rollback: folding a rollback rebuilds the state it names, `state_at(to)`, from
/// the newest snapshot at or before `to`; every rollback between that snapshot and `to` is
/// rebuilt again inside it, and so on down, which is exponential in the rollbacks between two
/// snapshots. With a snapshot at each rollback none lies between, and a rollback costs a fold
/// of at most [`SNAPSHOT_EVERY`] events, plus reading the ones it undoes.
#[derive(Clone, Debug, Default)]
pub struct Snapshots {
    /// Ascending positions.
    recent: VecDeque<Mesh>,
    sparse: Vec<Mesh>,
}

impl Snapshots {
    /// The position of the newest snapshot (0: none).
    pub fn newest(&self) -> u64 {
        self.recent
            .back()
            .or(self.sparse.last())
            .map_or(0, |m| m.position)
    }

    /// Keep `mesh` (the state at its position) if it is [`SNAPSHOT_EVERY`] past the newest
    /// snapshot, or the state right after a rollback.
    pub fn offer(&mut self, mesh: &Mesh) -> bool {
        let newest = self.newest();
        let rolled_back = mesh
            .timeline
            .rollbacks
            .last()
            .is_some_and(|r| r.at == mesh.position);
        if mesh.position < newest + SNAPSHOT_EVERY && !(rolled_back && mesh.position > newest) {
            return false;
        }
        self.recent.push_back(mesh.clone());
        while self
            .recent
            .front()
            .is_some_and(|m| m.position + RECENT_SPAN < mesh.position)
        {
            let Some(old) = self.recent.pop_front() else {
                break;
            };
            let last_sparse = self.sparse.last().map(|m| m.position);
            if last_sparse.is_none_or(|p| old.position >= p + SPARSE_EVERY) {
                self.sparse.push(old);
            }
        }
        true
    }

    /// Forget the snapshots after `position` (a crash cut the log there).
    pub fn forget_after(&mut self, position: u64) {
        while self.recent.back().is_some_and(|m| m.position > position) {
            self.recent.pop_back();
        }
        while self.sparse.last().is_some_and(|m| m.position > position) {
            self.sparse.pop();
        }
    }

    /// The newest snapshot at or before `position`.
    pub fn at_or_before(&self, position: u64) -> Option<&Mesh> {
        let i = self.recent.partition_point(|m| m.position <= position);
        if i > 0 {
            return self.recent.get(i - 1);
        }
        let i = self.sparse.partition_point(|m| m.position <= position);
        i.checked_sub(1).and_then(|i| self.sparse.get(i))
    }

    /// How many are kept.
    pub fn len(&self) -> usize {
        self.recent.len() + self.sparse.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The log's records as an [`EventSource`] for the real timeline, starting every fold at the
/// newest snapshot at or before where it must begin.
pub struct LogSource<'a> {
    pub records: &'a [Envelope],
    pub snapshots: &'a Snapshots,
}

impl EventSource for LogSource<'_> {
    type Error = StoreError;

    fn read(&mut self, from: u64, to: u64) -> Result<Vec<(Event, Meta)>, StoreError> {
        Envelopes {
            items: self.records,
        }
        .read(from, to)
    }

    fn base_at_or_before(&mut self, position: u64) -> Option<Mesh> {
        self.snapshots.at_or_before(position).cloned()
    }
}

/// Fold `records[mesh.position..upto]` onto `mesh` through the real timeline (a rollback
/// rebuilds the state it names from `snapshots`), checking positions are dense, and offer each
/// state reached to `snapshots` (for records no crash can take back: durable ones, or a log
/// that no longer changes).
pub fn fold_onto(
    mut mesh: Mesh,
    records: &[Envelope],
    upto: u64,
    snapshots: &mut Snapshots,
) -> Result<Mesh, StoreError> {
    for r in range(&mesh, records, upto) {
        mesh = fold_one(mesh, r, records, snapshots)?;
        snapshots.offer(&mesh);
    }
    Ok(mesh)
}

/// As [`fold_onto`], keeping no snapshot (records that may not be durable).
pub fn fold_tail(
    mut mesh: Mesh,
    records: &[Envelope],
    upto: u64,
    snapshots: &Snapshots,
) -> Result<Mesh, StoreError> {
    for r in range(&mesh, records, upto) {
        mesh = fold_one(mesh, r, records, snapshots)?;
    }
    Ok(mesh)
}

fn range<'a>(mesh: &Mesh, records: &'a [Envelope], upto: u64) -> &'a [Envelope] {
    let from = mesh.position as usize;
    let upto = (upto as usize).min(records.len());
    records.get(from..upto).unwrap_or_default()
}

fn fold_one(
    mesh: Mesh,
    r: &Envelope,
    records: &[Envelope],
    snapshots: &Snapshots,
) -> Result<Mesh, StoreError> {
    if r.position != mesh.position + 1 {
        return Err(StoreError::Corrupt {
            position: r.position,
            reason: format!("expected position {} next", mesh.position + 1),
        });
    }
    let event = r.decode()?;
    let meta = actors::mesh::meta_of(r);
    let mut source = LogSource { records, snapshots };
    actors::timeline::step(&mut source, mesh, event, &meta)
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
        assert_eq!(log.stream_version("b"), damage.survived as u64);
        assert_eq!(log.durable(), log.head());
        // Only what the crash cut is unchecked.
        assert!(log.unchanged() <= 2 + damage.survived);
        log.mark();
        assert_eq!(log.unchanged(), log.head() as usize);
    }

    #[test]
    fn snapshots_keep_the_recent_ones_and_every_rollback_and_forget_what_a_crash_cut() {
        let at = |position: u64| Mesh {
            position,
            ..Mesh::default()
        };
        let mut snapshots = Snapshots::default();
        assert!(snapshots.at_or_before(1_000).is_none());
        let mut kept = 0;
        for p in 1..=200_000 {
            kept += usize::from(snapshots.offer(&at(p)));
        }
        assert_eq!(kept, 200_000 / SNAPSHOT_EVERY as usize);
        // The last RECENT_SPAN at the stride, a few sparse ones before.
        let recent = (RECENT_SPAN / SNAPSHOT_EVERY) as usize + 1;
        assert!(snapshots.len() <= recent + 4, "{}", snapshots.len());
        assert_eq!(snapshots.at_or_before(199_999).unwrap().position, 199_936);
        assert_eq!(snapshots.at_or_before(64).unwrap().position, 64);
        assert!(snapshots.at_or_before(63).is_none());
        let far = snapshots.at_or_before(100_000).unwrap().position;
        assert!(far <= 100_000 && far + SPARSE_EVERY > 100_000, "{far}");
        // A rollback's state is kept whatever the stride.
        let mut rolled = at(200_001);
        rolled.timeline.rollbacks.push(actors::timeline::Rollback {
            at: 200_001,
            to: 199_990,
        });
        assert!(snapshots.offer(&rolled));
        assert!(!snapshots.offer(&at(200_002)));
        snapshots.forget_after(199_999);
        assert_eq!(snapshots.newest(), 199_936);
    }
}
