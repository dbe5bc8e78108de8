//! redb backend: the embedded default store of the daemon.
//!
//! | table          | key                 | value                                       |
//! |----------------|---------------------|---------------------------------------------|
//! | `events`       | position `u64`      | the frame ([`crate::frame`])                |
//! | `meta`         | `"head"`            | last committed position                     |
//! | `meta`         | `"indexed"`         | last position whose index entries are below |
//! | `stream_heads` | stream `&str`       | current stream version `u64`                |
//! | `stream_index` | `(stream, version)` | position `u64`                              |
//! | `event_ids`    | event id `u128`     | position `u64`                              |
//!
//! **Commit** writes the frames of a batch and `meta.head` in one write transaction with redb's
//! default durability: one fsync per batch, shared by every transaction the group-commit writer
//! put in it. The index entries of the batch go to an in-memory overlay ([`Staged`]) that every
//! reader consults, and are written to the index tables in bulk, sorted, once
//! [`CHECKPOINT_EVENTS`] have accumulated. This is measured, not guessed (BENCHMARKS.md): a
//! commit that also updated the indexes dirtied one B-tree page per random event id and one per
//! stream, which made redb 3x slower than this with 1000-event batches of random ids, and
//! capped 64 concurrent single-event appenders at the throughput of redb alone. The overlay is
//! derived data: the frames carry stream, version and id, so on open the overlay is rebuilt
//! from the records after `meta.indexed` (at most one checkpoint's worth). The bulk write uses
//! redb's non-durable commit for the same reason; the next batch's fsync makes it durable, and
//! if a crash loses it, the open rebuilds it.
//!
//! redb's own commit protocol already makes a torn write impossible, but the log keeps its
//! framing on top so a damaged record (a bad sector, a file edited by hand, a bug in an older
//! build) is detected the same way in every backend: [`Backend::recover`] cuts a corrupt tail on
//! open, and a read that meets a corrupt record in the middle fails with
//! [`StoreError::Corrupt`] instead of returning it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use redb::{
    Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition,
    WriteTransaction,
};
use uuid::Uuid;

use super::{Backend, BackendRead, PreparedRecord};
use crate::envelope::Envelope;
use crate::error::StoreError;
use crate::frame;
use crate::store::{LogRead, Recovery};

const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const STREAM_HEADS: TableDefinition<&str, u64> = TableDefinition::new("stream_heads");
const STREAM_INDEX: TableDefinition<(&str, u64), u64> = TableDefinition::new("stream_index");
const EVENT_IDS: TableDefinition<u128, u64> = TableDefinition::new("event_ids");

const META_HEAD: &str = "head";
const META_INDEXED: &str = "indexed";

/// How many events' index entries the overlay collects before they are written to the index
/// tables. Larger amortizes the random pages of the id index over more ids, at the cost of
/// memory (~100 bytes per event) and of the records to decode when opening after a crash.
pub const CHECKPOINT_EVENTS: usize = 65_536;

/// Wrap a redb error with what we were doing, so a storage failure says where it happened.
fn storage<E: std::fmt::Display>(context: &'static str) -> impl FnOnce(E) -> StoreError {
    move |e| StoreError::Storage(format!("redb: {context}: {e}"))
}

/// One stream's index entries that are not in the index tables yet.
#[derive(Default)]
struct StagedStream {
    /// Version of the first entry in `positions`.
    first_version: u64,
    /// Positions of consecutive versions from `first_version`.
    positions: Vec<u64>,
}

impl StagedStream {
    fn last_version(&self) -> u64 {
        self.first_version + self.positions.len() as u64 - 1
    }
}

/// Index entries of committed records that are not in the index tables yet.
///
/// Readers take the lock *before* their read transaction and the writer empties the overlay only
/// *after* the transaction that wrote its entries committed, so a reader always finds an entry
/// in the overlay, in its snapshot of the tables, or in both (which the reads tolerate).
#[derive(Default)]
// Point lookups only; the checkpoint sorts what it writes, so iteration order never matters.
#[allow(clippy::disallowed_types)]
struct Staged {
    ids: std::collections::HashMap<u128, u64>,
    streams: std::collections::HashMap<String, StagedStream>,
}

impl Staged {
    fn add(&mut self, envelope: &Envelope) {
        self.ids
            .insert(envelope.event_id.as_u128(), envelope.position);
        match self.streams.get_mut(envelope.stream.as_str()) {
            Some(s) => s.positions.push(envelope.position),
            None => {
                let staged = StagedStream {
                    first_version: envelope.stream_version,
                    positions: vec![envelope.position],
                };
                self.streams.insert(envelope.stream.clone(), staged);
            }
        }
    }

    fn len(&self) -> usize {
        self.ids.len()
    }
}

fn read_lock(staged: &RwLock<Staged>) -> Result<RwLockReadGuard<'_, Staged>, StoreError> {
    staged
        .read()
        .map_err(|_| StoreError::Storage("redb: index overlay poisoned by a panic".into()))
}

fn write_lock(staged: &RwLock<Staged>) -> Result<RwLockWriteGuard<'_, Staged>, StoreError> {
    staged
        .write()
        .map_err(|_| StoreError::Storage("redb: index overlay poisoned by a panic".into()))
}

/// The redb backend. Owns the write side; readers share the database through [`RedbReader`].
pub struct RedbBackend {
    db: Arc<Database>,
    staged: Arc<RwLock<Staged>>,
    /// Last stored position, so a commit that does not continue the log is refused instead of
    /// silently overwriting records (redb's `insert` replaces an existing key).
    head: u64,
    /// Whether [`Backend::recover`] ran: until then the overlay is not loaded, and neither a
    /// commit nor a checkpoint may write.
    recovered: bool,
}

impl RedbBackend {
    /// Open the log at `path`, creating the file (and its directory) if missing.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = open_database(path)?;
        let head = last_position(&db.begin_read().map_err(storage("begin read"))?)?;
        Ok(RedbBackend {
            db: Arc::new(db),
            staged: Arc::default(),
            head,
            recovered: false,
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

    /// Write the overlay's entries to the index tables now, sorted so each B-tree page is
    /// touched once, then empty the overlay. Commits do this by themselves every
    /// [`CHECKPOINT_EVENTS`]; call it before copying the file to shorten the next open.
    pub fn checkpoint(&mut self) -> Result<(), StoreError> {
        self.check_recovered()?;
        let (mut ids, mut streams) = {
            let staged = read_lock(&self.staged)?;
            let ids: Vec<(u128, u64)> = staged.ids.iter().map(|(id, p)| (*id, *p)).collect();
            let streams: Vec<(String, u64, Vec<u64>)> = staged
                .streams
                .iter()
                .map(|(name, s)| (name.clone(), s.first_version, s.positions.clone()))
                .collect();
            (ids, streams)
        };
        ids.sort_unstable();
        streams.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut txn = self
            .db
            .begin_write()
            .map_err(storage("begin index checkpoint"))?;
        // Derived data: made durable by the next batch's fsync, rebuilt on open if lost.
        txn.set_durability(Durability::None)
            .map_err(storage("set checkpoint durability"))?;
        {
            let mut table = txn
                .open_table(EVENT_IDS)
                .map_err(storage("open table event_ids"))?;
            for (id, position) in &ids {
                table
                    .insert(id, position)
                    .map_err(storage("insert event id"))?;
            }
            let mut index = txn
                .open_table(STREAM_INDEX)
                .map_err(storage("open table stream_index"))?;
            let mut heads = txn
                .open_table(STREAM_HEADS)
                .map_err(storage("open table stream_heads"))?;
            for (stream, first_version, positions) in &streams {
                for (version, position) in (*first_version..).zip(positions) {
                    index
                        .insert((stream.as_str(), version), position)
                        .map_err(storage("insert stream index"))?;
                }
                let last = first_version + positions.len() as u64 - 1;
                heads
                    .insert(stream.as_str(), last)
                    .map_err(storage("insert stream head"))?;
            }
            let mut meta = txn.open_table(META).map_err(storage("open table meta"))?;
            meta.insert(META_INDEXED, self.head)
                .map_err(storage("write meta"))?;
        }
        txn.commit().map_err(storage("commit index checkpoint"))?;
        *write_lock(&self.staged)? = Staged::default();
        Ok(())
    }
}

impl RedbBackend {
    fn check_recovered(&self) -> Result<(), StoreError> {
        if self.recovered {
            Ok(())
        } else {
            Err(StoreError::Storage(
                "redb: the log must be recovered (opened through Log/SyncLog) before it is written"
                    .into(),
            ))
        }
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
        txn.open_table(META).map_err(storage("create table meta"))?;
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

    /// Walk back from the end of `events` and cut every record that is not a good committed
    /// record: one beyond `meta.head` (raw bytes that landed after the log, e.g. at a gap
    /// `head + 5`), or one whose frame fails to decode at its key. Only the tail is examined,
    /// so opening a large log stays cheap; damage further back is reported by the read that
    /// meets it. Then rebuild the index overlay from the records after `meta.indexed`.
    fn recover(&mut self) -> Result<Recovery, StoreError> {
        let txn = self.db.begin_write().map_err(storage("begin recovery"))?;
        let mut cut: Vec<(u64, usize)> = Vec::new();
        let mut reason = None;
        let mut head = 0;
        let (committed, indexed) = {
            let meta = txn.open_table(META).map_err(storage("open table meta"))?;
            let get = |key: &str| -> Result<u64, StoreError> {
                Ok(meta
                    .get(key)
                    .map_err(storage("read meta"))?
                    .map_or(0, |v| v.value()))
            };
            (get(META_HEAD)?, get(META_INDEXED)?)
        };
        {
            let events = txn
                .open_table(EVENTS)
                .map_err(storage("open table events"))?;
            for entry in events.iter().map_err(storage("scan events"))?.rev() {
                let (key, value) = entry.map_err(storage("scan events"))?;
                let position = key.value();
                let bytes = value.value();
                // A damaged frame reports why it is damaged; a good one past `meta.head` was
                // never committed (raw bytes, or a frame copied there).
                let verdict = match frame::decode(position, bytes) {
                    Err(e) => Err(e.to_string()),
                    Ok(_) if position > committed => Err(format!(
                        "record at position {position} is beyond the last committed position {committed}"
                    )),
                    Ok(_) => Ok(()),
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
        let indexed_before = indexed;
        let indexed = indexed.min(head);
        if cut.is_empty() && head == committed {
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
                let mut meta = txn.open_table(META).map_err(storage("open table meta"))?;
                meta.insert(META_HEAD, head)
                    .map_err(storage("write meta"))?;
                meta.insert(META_INDEXED, indexed)
                    .map_err(storage("write meta"))?;
            }
            if indexed_before > head {
                scrub_indexes(&txn, head)?;
            }
            txn.commit().map_err(storage("commit recovery"))?;
        }
        self.head = head;
        // Rebuild the overlay from the records the index tables do not cover. A damaged record
        // among them fails the open: without it the stream index would have a hole, and
        // cutting it would throw away committed events after it.
        let mut staged = Staged::default();
        let mut from = indexed + 1;
        let reader = self.reader();
        while from <= head {
            let batch = reader.read_from(from, 4096).map_err(|e| match e {
                StoreError::Corrupt { position, reason } => StoreError::Corrupt {
                    position,
                    reason: format!(
                        "{reason} (a record not yet in the index tables, needed to open the log)"
                    ),
                },
                other => other,
            })?;
            let Some(last) = batch.last() else { break };
            from = last.position + 1;
            batch.iter().for_each(|e| staged.add(e));
        }
        *write_lock(&self.staged)? = staged;
        self.recovered = true;
        Ok(recovery)
    }

    fn reader(&self) -> RedbReader {
        RedbReader {
            db: self.db.clone(),
            staged: self.staged.clone(),
        }
    }

    fn commit(&mut self, records: &[PreparedRecord]) -> Result<(), StoreError> {
        self.check_recovered()?;
        check_continues(self.head, records)?;
        // Checkpoint before the batch rather than after it: a failure then fails this commit
        // before anything is written, instead of reporting a durable batch as failed.
        if read_lock(&self.staged)?.len() >= CHECKPOINT_EVENTS {
            self.checkpoint()?;
        }
        let Some(last) = records.last() else {
            return Ok(());
        };
        let txn = self.db.begin_write().map_err(storage("begin commit"))?;
        {
            let mut events = txn
                .open_table(EVENTS)
                .map_err(storage("open table events"))?;
            for record in records {
                events
                    .insert(record.envelope.position, record.frame.as_slice())
                    .map_err(storage("insert event"))?;
            }
            let mut meta = txn.open_table(META).map_err(storage("open table meta"))?;
            meta.insert(META_HEAD, last.envelope.position)
                .map_err(storage("write meta"))?;
        }
        // Default durability: the commit returns after the fsync, so the whole batch (every
        // transaction the group-commit writer accepted) shares one.
        txn.commit().map_err(storage("commit"))?;
        self.head = last.envelope.position;
        let mut staged = write_lock(&self.staged)?;
        for record in records {
            staged.add(&record.envelope);
        }
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
/// heads back to what is still stored. A cut record may have been indexed already (a damaged
/// record before the last checkpoint), and a stale entry would make a later append see a
/// version or an id that is no longer in the log. Scans both indexes, which is acceptable on
/// this rare path only.
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
/// committed state of the database (plus the index overlay, see [`Staged`]).
#[derive(Clone)]
pub struct RedbReader {
    db: Arc<Database>,
    staged: Arc<RwLock<Staged>>,
}

impl RedbReader {
    fn begin(&self) -> Result<ReadTransaction, StoreError> {
        self.db.begin_read().map_err(storage("begin read"))
    }
}

fn decode_stream_entry(
    events: &redb::ReadOnlyTable<u64, &[u8]>,
    stream: &str,
    version: u64,
    position: u64,
) -> Result<Envelope, StoreError> {
    let bytes = events.get(position).map_err(storage("read event"))?;
    let Some(bytes) = bytes else {
        return Err(StoreError::Corrupt {
            position,
            reason: format!("stream `{stream}` version {version} points at a missing record"),
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
    Ok(envelope)
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
        let staged = read_lock(&self.staged)?;
        if let Some(s) = staged.streams.get(stream) {
            return Ok(s.last_version());
        }
        let txn = self.begin()?;
        let heads = txn
            .open_table(STREAM_HEADS)
            .map_err(storage("open table stream_heads"))?;
        let version = heads.get(stream).map_err(storage("read stream head"))?;
        Ok(version.map_or(0, |v| v.value()))
    }

    fn positions_of(&self, event_ids: &[Uuid]) -> Result<Vec<Option<u64>>, StoreError> {
        let staged = read_lock(&self.staged)?;
        let txn = self.begin()?;
        let ids = txn
            .open_table(EVENT_IDS)
            .map_err(storage("open table event_ids"))?;
        event_ids
            .iter()
            .map(|id| {
                let id = id.as_u128();
                if let Some(position) = staged.ids.get(&id) {
                    return Ok(Some(*position));
                }
                let position = ids.get(id).map_err(storage("read event id"))?;
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
        let staged = read_lock(&self.staged)?;
        let txn = self.begin()?;
        let index = txn
            .open_table(STREAM_INDEX)
            .map_err(storage("open table stream_index"))?;
        let events = txn
            .open_table(EVENTS)
            .map_err(storage("open table events"))?;
        let mut out = Vec::with_capacity(max.min(1024));
        let mut next = from_version.max(1);
        let range = (stream, next)..=(stream, u64::MAX);
        for entry in index
            .range(range)
            .map_err(storage("read stream index"))?
            .take(max)
        {
            let (key, position) = entry.map_err(storage("read stream index"))?;
            let (_, version) = key.value();
            out.push(decode_stream_entry(
                &events,
                stream,
                version,
                position.value(),
            )?);
            next = version + 1;
        }
        // The newest versions may only be in the overlay (an entry in both is read once).
        if let Some(s) = staged.streams.get(stream) {
            let versions = s.first_version..;
            for (version, position) in versions.zip(&s.positions) {
                if out.len() >= max {
                    break;
                }
                if version >= next {
                    out.push(decode_stream_entry(&events, stream, version, *position)?);
                }
            }
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
