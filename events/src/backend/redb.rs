//! redb backend: the embedded default store of the daemon.
//!
//! Four tables, all written by the one write transaction of a [`Backend::commit`], so a batch
//! and its indexes become durable together with one fsync (redb's default durability):
//!
//! | table          | key                 | value                         |
//! |----------------|---------------------|-------------------------------|
//! | `events`       | position `u64`      | the frame ([`crate::frame`])  |
//! | `stream_heads` | stream `&str`       | current stream version `u64`  |
//! | `stream_index` | `(stream, version)` | position `u64`                |
//! | `event_ids`    | event id `u128`     | position `u64`                |
//!
//! redb's own commit protocol already makes a torn write impossible, but the log keeps its
//! framing on top so a damaged record (a bad sector, a file edited by hand, a bug in an older
//! build) is detected the same way in every backend: [`Backend::recover`] cuts a corrupt tail on
//! open, and a read that meets a corrupt record in the middle fails with
//! [`StoreError::Corrupt`] instead of returning it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use redb::{
    Database, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction,
};
use uuid::Uuid;

use super::{Backend, BackendRead, PreparedRecord};
use crate::envelope::Envelope;
use crate::error::StoreError;
use crate::frame;
use crate::store::{LogRead, Recovery};

const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
const STREAM_HEADS: TableDefinition<&str, u64> = TableDefinition::new("stream_heads");
const STREAM_INDEX: TableDefinition<(&str, u64), u64> = TableDefinition::new("stream_index");
const EVENT_IDS: TableDefinition<u128, u64> = TableDefinition::new("event_ids");

/// Wrap a redb error with what we were doing, so a storage failure says where it happened.
fn storage<E: std::fmt::Display>(context: &'static str) -> impl FnOnce(E) -> StoreError {
    move |e| StoreError::Storage(format!("redb: {context}: {e}"))
}

/// The redb backend. Owns the write side; readers share the database through [`RedbReader`].
pub struct RedbBackend {
    db: Arc<Database>,
    /// Last stored position, so a commit that does not continue the log is refused instead of
    /// silently overwriting records (redb's `insert` replaces an existing key).
    head: u64,
}

impl RedbBackend {
    /// Open the log at `path`, creating the file (and its directory) if missing.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = open_database(path)?;
        let head = last_position(&db.begin_read().map_err(storage("begin read"))?)?;
        Ok(RedbBackend {
            db: Arc::new(db),
            head,
        })
    }

    /// Insert raw bytes as the record right after the last stored one, as if garbage had
    /// landed at the end of the log. For tests of recovery; the database must not be open.
    /// Returns the position written.
    pub fn write_garbage_record(path: &Path, bytes: &[u8]) -> Result<u64, StoreError> {
        let db = open_database(path)?;
        let position = last_position(&db.begin_read().map_err(storage("begin read"))?)? + 1;
        write_raw(&db, position, bytes)?;
        Ok(position)
    }

    /// Insert (or overwrite) raw bytes at any position, bypassing the indexes: a gap after the
    /// end of the log, or a damaged last record. For tests of recovery; the database must not
    /// be open.
    pub fn write_raw_record(path: &Path, position: u64, bytes: &[u8]) -> Result<(), StoreError> {
        write_raw(&open_database(path)?, position, bytes)
    }
}

fn open_database(path: &Path) -> Result<Database, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let db = Database::create(path)
        .map_err(|e| StoreError::Storage(format!("redb: open {}: {e}", path.display())))?;
    // Create every table up front so read transactions never meet a missing table.
    let txn = db.begin_write().map_err(storage("begin write"))?;
    {
        txn.open_table(EVENTS)
            .map_err(storage("create table events"))?;
        txn.open_table(STREAM_HEADS)
            .map_err(storage("create table stream_heads"))?;
        txn.open_table(STREAM_INDEX)
            .map_err(storage("create table stream_index"))?;
        txn.open_table(EVENT_IDS)
            .map_err(storage("create table event_ids"))?;
    }
    txn.commit().map_err(storage("commit table creation"))?;
    Ok(db)
}

fn write_raw(db: &Database, position: u64, bytes: &[u8]) -> Result<(), StoreError> {
    let txn = db.begin_write().map_err(storage("begin write"))?;
    txn.open_table(EVENTS)
        .map_err(storage("open table events"))?
        .insert(position, bytes)
        .map_err(storage("insert raw record"))?;
    txn.commit().map_err(storage("commit raw record"))
}

fn last_position(txn: &ReadTransaction) -> Result<u64, StoreError> {
    let events = txn
        .open_table(EVENTS)
        .map_err(storage("open table events"))?;
    let last = events.last().map_err(storage("read last event"))?;
    Ok(last.map_or(0, |(k, _)| k.value()))
}

impl Backend for RedbBackend {
    type Reader = RedbReader;

    /// Walk back from the end of `events` and cut every record that is not a good record
    /// written by a commit: one whose frame fails to decode at its key, or that the event-id
    /// index does not point at (raw bytes that landed after the log, e.g. at a gap `head + 5`).
    /// Only the tail is examined, so opening a large log stays cheap; damage further back is
    /// reported by the read that meets it.
    fn recover(&mut self) -> Result<Recovery, StoreError> {
        let txn = self.db.begin_write().map_err(storage("begin recovery"))?;
        let mut cut: Vec<(u64, usize)> = Vec::new();
        let mut reason = None;
        let mut head = 0;
        {
            let events = txn
                .open_table(EVENTS)
                .map_err(storage("open table events"))?;
            let ids = txn
                .open_table(EVENT_IDS)
                .map_err(storage("open table event_ids"))?;
            for entry in events.iter().map_err(storage("scan events"))?.rev() {
                let (key, value) = entry.map_err(storage("scan events"))?;
                let position = key.value();
                let bytes = value.value();
                let verdict = match frame::decode(position, bytes) {
                    Ok(envelope) => {
                        let indexed = ids
                            .get(envelope.event_id.as_u128())
                            .map_err(storage("read event_ids"))?
                            .map(|p| p.value());
                        if indexed == Some(position) {
                            Ok(())
                        } else {
                            Err(format!(
                                "record at position {position} is not in the event-id index, so no commit wrote it"
                            ))
                        }
                    }
                    Err(e) => Err(e.to_string()),
                };
                match verdict {
                    Ok(()) => {
                        head = position;
                        break;
                    }
                    Err(why) => {
                        // Walking backwards: the last reason kept is the first cut record's.
                        reason = Some(why);
                        cut.push((position, bytes.len()));
                    }
                }
            }
        }
        let recovery = Recovery {
            cut_records: cut.len() as u64,
            cut_bytes: cut.iter().map(|(_, len)| *len as u64).sum(),
            reason,
            head,
        };
        if cut.is_empty() {
            txn.abort().map_err(storage("end recovery"))?;
        } else {
            {
                let mut events = txn
                    .open_table(EVENTS)
                    .map_err(storage("open table events"))?;
                for (position, _) in &cut {
                    events
                        .remove(position)
                        .map_err(storage("cut corrupt record"))?;
                }
            }
            scrub_indexes(&txn, head)?;
            txn.commit().map_err(storage("commit recovery"))?;
        }
        self.head = head;
        Ok(recovery)
    }

    fn reader(&self) -> RedbReader {
        RedbReader {
            db: self.db.clone(),
        }
    }

    fn commit(&mut self, records: &[PreparedRecord]) -> Result<(), StoreError> {
        check_continues(self.head, records)?;
        let txn = self.db.begin_write().map_err(storage("begin commit"))?;
        {
            let mut events = txn
                .open_table(EVENTS)
                .map_err(storage("open table events"))?;
            let mut index = txn
                .open_table(STREAM_INDEX)
                .map_err(storage("open table stream_index"))?;
            let mut ids = txn
                .open_table(EVENT_IDS)
                .map_err(storage("open table event_ids"))?;
            let mut heads = txn
                .open_table(STREAM_HEADS)
                .map_err(storage("open table stream_heads"))?;
            // A batch often appends several events to one stream: write its head once.
            let mut last_versions: BTreeMap<&str, u64> = BTreeMap::new();
            for record in records {
                let e = &record.envelope;
                events
                    .insert(e.position, record.frame.as_slice())
                    .map_err(storage("insert event"))?;
                index
                    .insert((e.stream.as_str(), e.stream_version), e.position)
                    .map_err(storage("insert stream index"))?;
                ids.insert(e.event_id.as_u128(), e.position)
                    .map_err(storage("insert event id"))?;
                last_versions.insert(e.stream.as_str(), e.stream_version);
            }
            for (stream, version) in last_versions {
                heads
                    .insert(stream, version)
                    .map_err(storage("insert stream head"))?;
            }
        }
        // Default durability: the commit returns after the fsync, so the whole batch (every
        // transaction the group-commit writer accepted) shares one.
        txn.commit().map_err(storage("commit"))?;
        self.head += records.len() as u64;
        Ok(())
    }
}

/// Refuse a batch that does not continue the log densely from `head`.
fn check_continues(head: u64, records: &[PreparedRecord]) -> Result<(), StoreError> {
    for (i, record) in records.iter().enumerate() {
        let expected = head + 1 + i as u64;
        if record.envelope.position != expected {
            return Err(StoreError::Storage(format!(
                "refusing to store position {} where position {expected} comes next",
                record.envelope.position
            )));
        }
    }
    Ok(())
}

/// After records were cut, drop every index entry that points past `head`, and move stream
/// heads back to what is still stored. A cut record may have been written by a commit (a damaged
/// last record), and a stale entry would make a later append see a version or an id that is no
/// longer in the log. Scans both indexes, which is acceptable on this rare path only.
fn scrub_indexes(txn: &WriteTransaction, head: u64) -> Result<(), StoreError> {
    let mut ids = txn
        .open_table(EVENT_IDS)
        .map_err(storage("open table event_ids"))?;
    let mut stale_ids = Vec::new();
    for entry in ids.iter().map_err(storage("scan event_ids"))? {
        let (id, position) = entry.map_err(storage("scan event_ids"))?;
        if position.value() > head {
            stale_ids.push(id.value());
        }
    }
    for id in stale_ids {
        ids.remove(id).map_err(storage("remove stale event id"))?;
    }
    let mut index = txn
        .open_table(STREAM_INDEX)
        .map_err(storage("open table stream_index"))?;
    let mut stale_entries: Vec<(String, u64)> = Vec::new();
    for entry in index.iter().map_err(storage("scan stream_index"))? {
        let (key, position) = entry.map_err(storage("scan stream_index"))?;
        if position.value() > head {
            let (stream, version) = key.value();
            stale_entries.push((stream.to_string(), version));
        }
    }
    let mut heads = txn
        .open_table(STREAM_HEADS)
        .map_err(storage("open table stream_heads"))?;
    let mut affected: BTreeMap<String, u64> = BTreeMap::new();
    for (stream, version) in stale_entries {
        index
            .remove((stream.as_str(), version))
            .map_err(storage("remove stale stream index entry"))?;
        let lowest = affected.entry(stream).or_insert(version);
        *lowest = (*lowest).min(version);
    }
    // Versions are dense, so a stream whose entries from version v on were cut is at v - 1.
    for (stream, lowest_cut) in affected {
        if lowest_cut <= 1 {
            heads
                .remove(stream.as_str())
                .map_err(storage("remove stream head"))?;
        } else {
            heads
                .insert(stream.as_str(), lowest_cut - 1)
                .map_err(storage("reset stream head"))?;
        }
    }
    Ok(())
}

/// Read handle of the redb backend. Every read runs in one read transaction, so it sees one
/// committed state of the database.
#[derive(Clone)]
pub struct RedbReader {
    db: Arc<Database>,
}

impl RedbReader {
    fn begin(&self) -> Result<ReadTransaction, StoreError> {
        self.db.begin_read().map_err(storage("begin read"))
    }
}

impl LogRead for RedbReader {
    fn read_from(&self, from: u64, max: usize) -> Result<Vec<Envelope>, StoreError> {
        let from = from.max(1);
        let txn = self.begin()?;
        let events = txn
            .open_table(EVENTS)
            .map_err(storage("open table events"))?;
        let mut out = Vec::with_capacity(max.min(1024));
        let entries = events.range(from..).map_err(storage("read events"))?;
        // Positions are dense: the n-th entry read must be the record at `from + n`.
        for (expected, entry) in (from..).zip(entries.take(max)) {
            let (key, value) = entry.map_err(storage("read events"))?;
            if key.value() != expected {
                return Err(StoreError::Corrupt {
                    position: expected,
                    reason: format!(
                        "record missing: the next stored record is at {}",
                        key.value()
                    ),
                });
            }
            out.push(frame::decode(expected, value.value())?);
        }
        Ok(out)
    }
}

impl BackendRead for RedbReader {
    fn head(&self) -> Result<u64, StoreError> {
        last_position(&self.begin()?)
    }

    fn stream_version(&self, stream: &str) -> Result<u64, StoreError> {
        let txn = self.begin()?;
        let heads = txn
            .open_table(STREAM_HEADS)
            .map_err(storage("open table stream_heads"))?;
        let version = heads.get(stream).map_err(storage("read stream head"))?;
        Ok(version.map_or(0, |v| v.value()))
    }

    fn positions_of(&self, event_ids: &[Uuid]) -> Result<Vec<Option<u64>>, StoreError> {
        let txn = self.begin()?;
        let ids = txn
            .open_table(EVENT_IDS)
            .map_err(storage("open table event_ids"))?;
        event_ids
            .iter()
            .map(|id| {
                let position = ids.get(id.as_u128()).map_err(storage("read event id"))?;
                Ok(position.map(|p| p.value()))
            })
            .collect()
    }

    fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        max: usize,
    ) -> Result<Vec<Envelope>, StoreError> {
        let txn = self.begin()?;
        let index = txn
            .open_table(STREAM_INDEX)
            .map_err(storage("open table stream_index"))?;
        let events = txn
            .open_table(EVENTS)
            .map_err(storage("open table events"))?;
        let mut out = Vec::with_capacity(max.min(1024));
        let range = (stream, from_version.max(1))..=(stream, u64::MAX);
        for entry in index
            .range(range)
            .map_err(storage("read stream index"))?
            .take(max)
        {
            let (key, position) = entry.map_err(storage("read stream index"))?;
            let (_, version) = key.value();
            let position = position.value();
            let bytes = events.get(position).map_err(storage("read event"))?;
            let Some(bytes) = bytes else {
                return Err(StoreError::Corrupt {
                    position,
                    reason: format!(
                        "stream `{stream}` version {version} points at a missing record"
                    ),
                });
            };
            let envelope = frame::decode(position, bytes.value())?;
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
        let txn = self.begin()?;
        let events = txn
            .open_table(EVENTS)
            .map_err(storage("open table events"))?;
        let bytes = events.get(position).map_err(storage("read event"))?;
        bytes
            .map(|b| frame::decode(position, b.value()))
            .transpose()
    }
}
