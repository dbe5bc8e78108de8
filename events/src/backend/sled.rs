//! sled backend, kept as an option beside redb.
//!
//! Four trees with the same roles as the redb tables; integers are stored big-endian so that
//! sled's byte order is numeric order:
//!
//! | tree           | key                               | value                        |
//! |----------------|-----------------------------------|------------------------------|
//! | `events`       | position                          | the frame ([`crate::frame`]) |
//! | `stream_heads` | stream                            | current stream version       |
//! | `stream_index` | stream, `0xFF`, version           | position                     |
//! | `event_ids`    | event id (16 bytes)               | position                     |
//!
//! `0xFF` never occurs in UTF-8, so it ends the stream name unambiguously and a prefix scan over
//! `stream ++ 0xFF` sees exactly one stream.
//!
//! sled acknowledges writes before they are durable (it fsyncs in the background every 500 ms
//! by default), so [`Backend::commit`] flushes explicitly before it returns.

use std::collections::BTreeMap;
use std::path::Path;

use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::{Db, Transactional, Tree};
use uuid::Uuid;

use super::{check_continues, Backend, BackendRead, PreparedRecord};
use crate::envelope::Envelope;
use crate::error::StoreError;
use crate::frame;
use crate::store::{LogRead, Recovery};

const EVENTS: &str = "events";
const STREAM_HEADS: &str = "stream_heads";
const STREAM_INDEX: &str = "stream_index";
const EVENT_IDS: &str = "event_ids";
/// Ends the stream name in `stream_index` keys; never part of UTF-8 text.
const STREAM_END: u8 = 0xFF;

/// Wrap a sled error with what we were doing, so a storage failure says where it happened.
fn storage<E: std::fmt::Display>(context: &'static str) -> impl FnOnce(E) -> StoreError {
    move |e| StoreError::Storage(format!("sled: {context}: {e}"))
}

fn index_key(stream: &str, version: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(stream.len() + 9);
    key.extend_from_slice(stream.as_bytes());
    key.push(STREAM_END);
    key.extend_from_slice(&version.to_be_bytes());
    key
}

/// Split a `stream_index` key into stream and version; `None` for a malformed key.
fn split_index_key(key: &[u8]) -> Option<(&[u8], u64)> {
    let (stream, rest) = key.split_at(key.len().checked_sub(9)?);
    if rest[0] != STREAM_END {
        return None;
    }
    Some((stream, u64::from_be_bytes(rest[1..].try_into().ok()?)))
}

fn decode_u64(bytes: &[u8], what: &str) -> Result<u64, StoreError> {
    let raw: [u8; 8] = bytes.try_into().map_err(|_| {
        StoreError::Storage(format!("sled: {what} is {} bytes, not 8", bytes.len()))
    })?;
    Ok(u64::from_be_bytes(raw))
}

/// The trees of one log.
#[derive(Clone)]
struct Trees {
    db: Db,
    events: Tree,
    heads: Tree,
    index: Tree,
    ids: Tree,
}

impl Trees {
    fn open(path: &Path) -> Result<Self, StoreError> {
        // sled's background I/O threads keep the file lock for a moment after the last handle
        // is dropped (sled's own tests block on the lock for this reason), so a reopen right
        // after a close may find it taken: wait for it, within a bound, before giving up.
        let deadline = std::time::Duration::from_secs(5);
        let pause = std::time::Duration::from_millis(10);
        let mut waited = std::time::Duration::ZERO;
        let db = loop {
            match sled::Config::new().path(path).open() {
                Err(sled::Error::Io(e))
                    if e.to_string().contains("could not acquire lock") && waited < deadline =>
                {
                    std::thread::sleep(pause);
                    waited += pause;
                }
                result => {
                    break result.map_err(|e| {
                        StoreError::Storage(format!("sled: open {}: {e}", path.display()))
                    })?
                }
            }
        };
        Ok(Trees {
            events: db.open_tree(EVENTS).map_err(storage("open tree events"))?,
            heads: db
                .open_tree(STREAM_HEADS)
                .map_err(storage("open tree stream_heads"))?,
            index: db
                .open_tree(STREAM_INDEX)
                .map_err(storage("open tree stream_index"))?,
            ids: db
                .open_tree(EVENT_IDS)
                .map_err(storage("open tree event_ids"))?,
            db,
        })
    }

    fn last_position(&self) -> Result<u64, StoreError> {
        match self.events.last().map_err(storage("read last event"))? {
            Some((key, _)) => decode_u64(&key, "event key"),
            None => Ok(0),
        }
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(storage("flush"))?;
        Ok(())
    }
}

/// The sled backend. Owns the write side; readers share the trees through [`SledReader`].
pub struct SledBackend {
    trees: Trees,
    /// The directory, for reports.
    path: std::path::PathBuf,
    /// Last stored position, so a commit that does not continue the log is refused instead of
    /// silently overwriting records.
    head: u64,
}

impl SledBackend {
    /// Open the log in the directory `path`, creating it if missing.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let trees = Trees::open(path)?;
        let head = trees.last_position()?;
        Ok(SledBackend {
            trees,
            path: path.to_path_buf(),
            head,
        })
    }

    /// Insert raw bytes as the record right after the last stored one, as if garbage had
    /// landed at the end of the log. For tests of recovery; the database must not be open.
    /// Returns the position written.
    pub fn write_garbage_record(path: &Path, bytes: &[u8]) -> Result<u64, StoreError> {
        let trees = Trees::open(path)?;
        let position = trees.last_position()? + 1;
        write_raw(&trees, position, bytes)?;
        Ok(position)
    }

    /// Insert (or overwrite) raw bytes at any position, bypassing the indexes: a gap after the
    /// end of the log, or a damaged last record. For tests of recovery; the database must not
    /// be open.
    pub fn write_raw_record(path: &Path, position: u64, bytes: &[u8]) -> Result<(), StoreError> {
        write_raw(&Trees::open(path)?, position, bytes)
    }
}

fn write_raw(trees: &Trees, position: u64, bytes: &[u8]) -> Result<(), StoreError> {
    trees
        .events
        .insert(position.to_be_bytes(), bytes)
        .map_err(storage("insert raw record"))?;
    trees.flush()
}

impl Backend for SledBackend {
    type Reader = SledReader;

    /// Check the whole log: every record decodes at its key, positions are dense from 1, and
    /// the last record is one a commit wrote (the event-id index points at it). Nothing is cut:
    /// a sled batch is atomic, so damage is never a torn write; it is refused with a report
    /// naming the first bad position and the intact records after it (ARCHITECTURE.md, "Storage
    /// faults").
    fn recover(&mut self) -> Result<Recovery, StoreError> {
        let file = format!("{} (sled)", self.path.display());
        let mut next = 1u64;
        let mut last: Option<Envelope> = None;
        let mut damage: Option<crate::damage::Damage> = None;
        let (mut intact_after, mut last_intact) = (0u64, 0u64);
        for entry in self.trees.events.iter() {
            let (key, bytes) = entry.map_err(storage("scan events"))?;
            let decoded = decode_u64(&key, "event key")
                .map_err(|e| (next, e.to_string()))
                .and_then(|position| {
                    frame::decode(position, &bytes).map_err(|e| (position, e.to_string()))
                });
            match (decoded, &damage) {
                (Ok(envelope), Some(_)) => {
                    intact_after += 1;
                    last_intact = last_intact.max(envelope.position);
                }
                (Ok(envelope), None) if envelope.position == next => {
                    next += 1;
                    last = Some(envelope);
                }
                (Ok(envelope), None) => {
                    damage = Some(crate::damage::Damage::new(
                        &file,
                        next,
                        format!(
                            "record missing: the next stored record is at {}",
                            envelope.position
                        ),
                    ));
                    intact_after += 1;
                    last_intact = envelope.position;
                }
                (Err((position, reason)), None) => {
                    damage = Some(crate::damage::Damage::new(
                        &file,
                        position.min(next),
                        reason,
                    ));
                }
                (Err(_), Some(_)) => {}
            }
        }
        if let Some(damage) = damage {
            return Err(StoreError::Damaged(Box::new(
                damage.with_intact_after(intact_after, last_intact),
            )));
        }
        if let Some(last) = &last {
            let indexed = self
                .trees
                .ids
                .get(last.event_id.as_u128().to_be_bytes())
                .map_err(storage("read event_ids"))?;
            let by_commit = match indexed {
                Some(p) => decode_u64(&p, "event id position")? == last.position,
                None => false,
            };
            if !by_commit {
                return Err(StoreError::Damaged(Box::new(crate::damage::Damage::new(
                    &file,
                    last.position,
                    "the record is not in the event-id index, so no commit wrote it",
                ))));
            }
        }
        self.head = next - 1;
        Ok(Recovery {
            head: self.head,
            ..Recovery::default()
        })
    }

    fn reader(&self) -> SledReader {
        SledReader {
            trees: self.trees.clone(),
        }
    }

    fn commit(&mut self, records: &[PreparedRecord]) -> Result<(), StoreError> {
        check_continues(self.head, records)?;
        // A batch often appends several events to one stream: write its head once.
        let mut last_versions: BTreeMap<&str, u64> = BTreeMap::new();
        for record in records {
            last_versions.insert(
                record.envelope.stream.as_str(),
                record.envelope.stream_version,
            );
        }
        let trees = &self.trees;
        // `events` goes first: sled applies the trees of a transaction in order, and a reader
        // that finds an index entry must find its record (plain sled reads are not snapshots).
        (&trees.events, &trees.index, &trees.ids, &trees.heads)
            .transaction(|(events, index, ids, heads)| {
                for record in records {
                    let e = &record.envelope;
                    let position = e.position.to_be_bytes();
                    events.insert(&position, record.frame.as_slice())?;
                    index.insert(index_key(&e.stream, e.stream_version), &position)?;
                    ids.insert(&e.event_id.as_u128().to_be_bytes(), &position)?;
                }
                for (stream, version) in &last_versions {
                    heads.insert(stream.as_bytes(), &version.to_be_bytes())?;
                }
                Ok::<(), ConflictableTransactionError<StoreError>>(())
            })
            .map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(e) => StoreError::Storage(format!("sled: commit: {e}")),
            })?;
        // The transaction is only in memory and sled's log buffer until this returns.
        self.trees.flush()?;
        self.head += records.len() as u64;
        Ok(())
    }
}

/// Read handle of the sled backend.
///
/// sled has no read snapshots across trees; consistency comes from the write order (records
/// before their index entries) and from the log, which never reads past its durable head.
#[derive(Clone)]
pub struct SledReader {
    trees: Trees,
}

impl LogRead for SledReader {
    fn read_from(&self, from: u64, max: usize) -> Result<Vec<Envelope>, StoreError> {
        let from = from.max(1);
        let mut out = Vec::with_capacity(max.min(1024));
        let entries = self.trees.events.range(from.to_be_bytes()..).take(max);
        // Positions are dense: the n-th entry read must be the record at `from + n`.
        for (expected, entry) in (from..).zip(entries) {
            let (key, bytes) = entry.map_err(storage("read events"))?;
            let position = decode_u64(&key, "event key")?;
            if position != expected {
                return Err(StoreError::Corrupt {
                    position: expected,
                    reason: format!("record missing: the next stored record is at {position}"),
                });
            }
            out.push(frame::decode(expected, &bytes)?);
        }
        Ok(out)
    }
}

impl BackendRead for SledReader {
    fn head(&self) -> Result<u64, StoreError> {
        self.trees.last_position()
    }

    fn stream_version(&self, stream: &str) -> Result<u64, StoreError> {
        match self
            .trees
            .heads
            .get(stream)
            .map_err(storage("read stream head"))?
        {
            Some(v) => decode_u64(&v, "stream head"),
            None => Ok(0),
        }
    }

    fn positions_of(&self, event_ids: &[Uuid]) -> Result<Vec<Option<u64>>, StoreError> {
        event_ids
            .iter()
            .map(|id| {
                let position = self
                    .trees
                    .ids
                    .get(id.as_u128().to_be_bytes())
                    .map_err(storage("read event id"))?;
                position
                    .map(|p| decode_u64(&p, "event id position"))
                    .transpose()
            })
            .collect()
    }

    fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        max: usize,
    ) -> Result<Vec<Envelope>, StoreError> {
        let start = index_key(stream, from_version.max(1));
        let end = index_key(stream, u64::MAX);
        let mut out = Vec::with_capacity(max.min(1024));
        for entry in self.trees.index.range(start..=end).take(max) {
            let (key, position) = entry.map_err(storage("read stream index"))?;
            let position = decode_u64(&position, "stream index position")?;
            let version = split_index_key(&key).map_or(0, |(_, v)| v);
            let bytes = self
                .trees
                .events
                .get(position.to_be_bytes())
                .map_err(storage("read event"))?;
            let Some(bytes) = bytes else {
                return Err(StoreError::Corrupt {
                    position,
                    reason: format!(
                        "stream `{stream}` version {version} points at a missing record"
                    ),
                });
            };
            let envelope = frame::decode(position, &bytes)?;
            if envelope.stream != stream || envelope.stream_version != version {
                return Err(StoreError::Corrupt {
                    position,
                    reason: format!(
                        "stream index says `{stream}` v{version}, the record is `{}` v{}",
                        envelope.stream, envelope.stream_version
                    ),
                });
            }
            out.push(envelope);
        }
        Ok(out)
    }

    fn read_one(&self, position: u64) -> Result<Option<Envelope>, StoreError> {
        let bytes = self
            .trees
            .events
            .get(position.to_be_bytes())
            .map_err(storage("read event"))?;
        bytes.map(|b| frame::decode(position, &b)).transpose()
    }
}
