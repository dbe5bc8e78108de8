//! redb backend: the embedded default store of the daemon.
//!
//! | table           | key                       | value                                        |
//! |-----------------|---------------------------|----------------------------------------------|
//! | `events`        | first position `u64`      | a chunk: frames of consecutive positions     |
//! | `meta`          | `"head"`                  | last committed position                      |
//! | `meta`          | `"indexed"`               | last position the index tables cover         |
//! | `stream_heads`  | stream `&str`             | current stream version `u64`                 |
//! | `stream_index`  | `(stream, first version)` | positions of consecutive versions (u64 LE)   |
//! | `event_id_runs` | `(run u64, first id u128)`| sorted (id `u128`, position `u64`) pairs, LE |
//!
//! Every record is a frame ([`crate::frame`]): length, checksum, envelope. A chunk is frames of
//! consecutive positions laid end to end, exactly as in a plain log file, up to
//! [`CHUNK_BYTES`]; a commit writes its records as new chunks (never into an older one).
//!
//! **Commit** writes the chunks of a batch and `meta.head` in one write transaction with redb's
//! default durability: one fsync per batch, shared by every transaction the group-commit writer
//! put in it. The index entries of the batch go to an in-memory overlay ([`Staged`]) that every
//! reader consults, and are written to the index tables in bulk, sorted, once
//! [`CHECKPOINT_EVENTS`] have accumulated. Both choices were measured (BENCHMARKS.md): with one
//! row per record and the indexes written in each commit, a 1000-event batch cost 4000 B-tree
//! inserts and dirtied one page per random event id and one per stream; redb ran at a fifth of
//! its speed with chunks and deferred indexes, and 64 concurrent single-event appenders were
//! capped below 20,000 events/s by the pages each commit dirtied. The overlay is derived data:
//! frames carry stream, version and id, so an open rebuilds it from the records after
//! `meta.indexed` (at most one checkpoint's worth). The bulk write uses redb's non-durable
//! commit for the same reason; the next batch's fsync makes it durable, and if a crash loses
//! it, the open rebuilds it.
//!
//! The id index is keyed by *run* first: each bulk write stores its ids as one sorted run under
//! the first position it covers, so it appends at the end of the key space instead of inserting
//! random ids all over an ever-growing B-tree. Keyed by id alone, every bulk write of random v4
//! ids rewrote most of the tree's leaf pages, and redb ran ~30% slower (BENCHMARKS.md). A run is
//! stored in blocks of `ID_BLOCK` sorted pairs, each under its first id, so a bulk write is a
//! few hundred inserts instead of one per id. An id is found through Bloom filters
//! (`IdFilters`), one over every stored id and one per run, so a lookup reads only the runs
//! whose filter matches, and a new id (almost every id looked up) reads none. Files of the older
//! layout (a table `event_ids` keyed by id alone) are refused on open with an error that says
//! so.
//!
//! redb's commit protocol already makes a torn write impossible, but the framing is checked
//! anyway, so a damaged record (a bad sector, a file edited by hand, a bug in an older build) is
//! detected the same way in every backend: [`Backend::recover`] cuts a corrupt tail on open,
//! and a read that meets a corrupt record in the middle fails with [`StoreError::Corrupt`]
//! instead of returning it.

mod acked;
mod medium;
mod open;
pub mod sweep;
mod verify;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub use medium::{Access, Faults};

use acked::{Acked, AckedFile};
use redb::{
    AccessGuard, Database, Durability, ReadOnlyTable, ReadTransaction, ReadableDatabase,
    ReadableTable, TableDefinition, TableHandle,
};
use uuid::Uuid;
use verify::Verified;

use super::{check_continues, Backend, BackendRead, PreparedRecord};
use crate::envelope::Envelope;
use crate::error::StoreError;
use crate::frame;
use crate::store::{LogRead, Recovery};

const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const STREAM_HEADS: TableDefinition<&str, u64> = TableDefinition::new("stream_heads");
const STREAM_INDEX: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("stream_index");
/// Event ids by run: a run is the ids of one bulk write, named by the first position it covers
/// (runs never share a name: each starts after the positions of the ones before), and stored as
/// blocks of (id, position) pairs sorted by id, each under `(run, its first id)`. The block that
/// may hold an id is the last one of its run whose key is at most `(run, id)`.
const EVENT_IDS: TableDefinition<IdBlockKey, &[u8]> = TableDefinition::new("event_id_runs");
/// The id index of the older layout (keyed by id alone); a file holding it is refused.
const OLD_EVENT_IDS: &str = "event_ids";

const META_HEAD: &str = "head";
const META_INDEXED: &str = "indexed";

/// A chunk is closed before it would grow past this many bytes (a single larger record gets a
/// chunk of its own). Reading one record reads its whole chunk, so chunks stay small enough for
/// point reads while a 1000-event batch still costs a handful of inserts instead of 1000.
pub const CHUNK_BYTES: usize = 64 * 1024;

/// How many events' index entries the overlay collects before they are written to the index
/// tables. Larger amortizes the random pages of the stream index over more events and makes
/// fewer id runs for a lookup to consider, at the cost of memory (~100 bytes per event) and of
/// the records to decode when opening.
pub const CHECKPOINT_EVENTS: usize = 65_536;

/// Most positions in one `stream_index` row.
const ROW_POSITIONS: usize = 1024;

/// Most (id, position) pairs in one `event_id_runs` block, and the bytes of one pair.
const ID_BLOCK: usize = 256;
const ID_PAIR: usize = 24;

/// The key of an `event_id_runs` block: its run and its first id.
type IdBlockKey = (u64, u128);

fn pack_ids(pairs: &[(u128, u64)]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(pairs.len() * ID_PAIR);
    for (id, position) in pairs {
        bytes.extend_from_slice(&id.to_le_bytes());
        bytes.extend_from_slice(&position.to_le_bytes());
    }
    bytes
}

/// The pairs of an `event_id_runs` block.
fn id_pairs(bytes: &[u8]) -> Result<impl Iterator<Item = (u128, u64)> + '_, StoreError> {
    if !bytes.len().is_multiple_of(ID_PAIR) {
        return Err(StoreError::Storage(format!(
            "redb: event id block of {} bytes is not whole (id, position) pairs",
            bytes.len()
        )));
    }
    Ok(bytes.chunks_exact(ID_PAIR).map(|pair| {
        let id = u128::from_le_bytes(pair[..16].try_into().expect("16 bytes"));
        let position = u64::from_le_bytes(pair[16..].try_into().expect("8 bytes"));
        (id, position)
    }))
}

/// Where a block (sorted by id) stores `id`: a binary search.
fn find_in_block(bytes: &[u8], id: u128) -> Result<Option<u64>, StoreError> {
    let pairs: Vec<(u128, u64)> = id_pairs(bytes)?.collect();
    Ok(pairs
        .binary_search_by_key(&id, |(id, _)| *id)
        .ok()
        .map(|i| pairs[i].1))
}

/// Wrap a redb error with what we were doing, so a storage failure says where it happened.
fn storage<E: std::fmt::Display>(context: &'static str) -> impl FnOnce(E) -> StoreError {
    move |e| StoreError::Storage(format!("redb: {context}: {e}"))
}

/// The frames of a chunk, found from their length fields alone (checksums are checked when a
/// frame is decoded).
struct Spans {
    /// Byte range of each whole frame, in order.
    frames: Vec<(usize, usize)>,
    /// Offset and reason of trailing bytes that do not form a whole frame.
    rest: Option<(usize, String)>,
}

impl Spans {
    fn of(bytes: &[u8]) -> Spans {
        let mut frames = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let left = &bytes[at..];
            if left.len() < frame::HEADER_LEN {
                return Spans {
                    frames,
                    rest: Some((
                        at,
                        format!("{} bytes, shorter than a frame header", left.len()),
                    )),
                };
            }
            let len = u32::from_le_bytes([left[0], left[1], left[2], left[3]]) as usize;
            if len > frame::MAX_BODY_LEN {
                let reason = format!("length field {len} exceeds the maximum record size");
                return Spans {
                    frames,
                    rest: Some((at, reason)),
                };
            }
            if left.len() < frame::HEADER_LEN + len {
                let reason = format!("record of {len} bytes is cut short");
                return Spans {
                    frames,
                    rest: Some((at, reason)),
                };
            }
            frames.push((at, at + frame::HEADER_LEN + len));
            at += frame::HEADER_LEN + len;
        }
        Spans { frames, rest: None }
    }

    /// Positions a chunk at `first` occupies; trailing garbage counts as one, so that a writer
    /// of raw test records never overwrites it.
    fn extent(&self) -> u64 {
        self.frames.len() as u64 + u64::from(self.rest.is_some())
    }
}

/// Decode the record at `position` from the chunk that starts at `first`.
fn decode_in_chunk(
    first: u64,
    bytes: &[u8],
    spans: &Spans,
    position: u64,
) -> Result<Envelope, StoreError> {
    let index = (position - first) as usize;
    match spans.frames.get(index) {
        Some(&(start, end)) => frame::decode(position, &bytes[start..end]),
        None => Err(StoreError::Corrupt {
            position,
            reason: match &spans.rest {
                Some((_, reason)) if index == spans.frames.len() => reason.clone(),
                _ => "record missing".to_string(),
            },
        }),
    }
}

/// One stream's index entries that are not in the index tables yet.
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
    ids: std::collections::HashMap<u128, u64, IdHash>,
    streams: std::collections::HashMap<String, StagedStream>,
    /// Which runs of the `event_id_runs` table may hold an id: see [`IdFilters`].
    filter: IdFilters,
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

    /// Forget the entries a checkpoint wrote to the tables, keeping the filter of those.
    fn clear_entries(&mut self) {
        self.ids = Default::default();
        self.streams = Default::default();
    }
}

/// Hashes event ids for the overlay's map. Ids are random (v4) or have random low bits (v7), so
/// mixing both halves with a per-process random key spreads them as well as SipHash does, at a
/// fraction of the cost (SipHash was ~5% of the writer in 1000-event batches). The random key
/// keeps crafted ids from colliding on purpose.
#[derive(Clone)]
struct IdHash {
    key: u64,
}

impl Default for IdHash {
    fn default() -> Self {
        use std::hash::BuildHasher;
        IdHash {
            key: std::collections::hash_map::RandomState::new().hash_one(0x6964_u64),
        }
    }
}

impl std::hash::BuildHasher for IdHash {
    type Hasher = IdHasher;

    fn build_hasher(&self) -> IdHasher {
        IdHasher { state: self.key }
    }
}

struct IdHasher {
    state: u64,
}

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.state
    }

    fn write_u128(&mut self, id: u128) {
        self.state = mix64((id >> 64) as u64 ^ mix64(id as u64 ^ self.state));
    }

    /// Not used for `u128` keys; kept correct for any other input.
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.state = mix64(self.state ^ u64::from(*byte));
        }
    }
}

/// splitmix64's finalizer: every input bit affects every output bit.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A Bloom filter over event ids. Almost every id the log looks up is new, and with random (v4)
/// ids each miss was a B-tree descent to a random leaf: measured, those lookups were a third of
/// the writer's time for 1000-event batches. A filter answers "not stored" for nearly all of
/// them from memory (about 1% false positives when full, which fall back to the table). It
/// never forgets an id, so it has no false negatives.
#[derive(Default)]
struct IdFilter {
    bits: Vec<u64>,
    /// Ids inserted, and how many fit before the false-positive rate climbs.
    count: usize,
    capacity: usize,
}

/// Probes per id and bits per id of capacity: ~1% false positives when full.
const FILTER_PROBES: u64 = 7;
const FILTER_BITS_PER_ID: usize = 10;

impl IdFilter {
    fn with_capacity(capacity: usize) -> Self {
        let words = (capacity * FILTER_BITS_PER_ID)
            .div_ceil(64)
            .next_power_of_two();
        IdFilter {
            bits: vec![0; words],
            count: 0,
            capacity,
        }
    }

    /// A filter of exactly these ids.
    fn of(ids: &[u128]) -> Self {
        let mut filter = IdFilter::with_capacity(ids.len());
        ids.iter().for_each(|id| filter.insert(*id));
        filter
    }

    /// The two hashes of an id, computed once for every filter probed: a mix of both halves,
    /// so both v4 ids and time-ordered v7 ids (whose high bits barely change) spread over the
    /// whole filter.
    fn hash(id: u128) -> (u64, u64) {
        let h1 = mix64((id >> 64) as u64 ^ mix64(id as u64));
        let h2 = mix64(h1 ^ 0x9e37_79b9_7f4a_7c15) | 1;
        (h1, h2)
    }

    /// Bit positions of an id's hashes: double hashing.
    fn probes(&self, (h1, h2): (u64, u64)) -> impl Iterator<Item = usize> {
        let mask = (self.bits.len() * 64 - 1) as u64;
        (0..FILTER_PROBES).map(move |i| (h1.wrapping_add(i.wrapping_mul(h2)) & mask) as usize)
    }

    fn insert(&mut self, id: u128) {
        self.insert_hashed(IdFilter::hash(id));
    }

    fn insert_hashed(&mut self, (h1, h2): (u64, u64)) {
        if self.bits.is_empty() {
            return;
        }
        let mask = (self.bits.len() * 64 - 1) as u64;
        for i in 0..FILTER_PROBES {
            let bit = (h1.wrapping_add(i.wrapping_mul(h2)) & mask) as usize;
            self.bits[bit / 64] |= 1 << (bit % 64);
        }
        self.count += 1;
    }

    /// False only if the id is certainly not in the set. An empty (never built) filter
    /// knows nothing, so it says true.
    #[cfg(test)]
    fn may_contain(&self, id: u128) -> bool {
        self.may_contain_hashed(IdFilter::hash(id))
    }

    fn may_contain_hashed(&self, hash: (u64, u64)) -> bool {
        self.bits.is_empty()
            || self
                .probes(hash)
                .all(|bit| self.bits[bit / 64] & (1 << (bit % 64)) != 0)
    }
}

/// Where an id may be in the `event_id_runs` table. `all` covers every stored id and answers
/// "stored nowhere" for nearly every new id with one probe; it is sized for twice the stored ids
/// and rebuilt, twice as large, when it fills up. For an id it lets through (a retry, or ~1% of
/// new ids), the filter of each run, sized exactly for it (~0.1% false positives), picks the few
/// runs to read. Both are built on open by one scan of the table (~0.1 s per million ids).
#[derive(Default)]
struct IdFilters {
    all: IdFilter,
    /// One filter per run, by run name, oldest first.
    runs: Vec<(u64, IdFilter)>,
    /// Whether the filters were built from the table: until then they know nothing, and a
    /// lookup has to scan the table.
    built: bool,
}

impl IdFilters {
    /// An empty filter with room for twice the ids in the table.
    fn sized_for(table: &ReadOnlyTable<IdBlockKey, &'static [u8]>) -> Result<IdFilter, StoreError> {
        let mut stored = 0;
        for entry in table.iter().map_err(storage("count event ids"))? {
            stored += entry.map_err(storage("count event ids"))?.1.value().len() / ID_PAIR;
        }
        Ok(IdFilter::with_capacity(
            (2 * stored).max(4 * CHECKPOINT_EVENTS),
        ))
    }

    /// Every filter, from the table.
    fn build(db: &Database) -> Result<Self, StoreError> {
        let txn = db.begin_read().map_err(storage("begin read"))?;
        let table = txn
            .open_table(EVENT_IDS)
            .map_err(storage("open table event_id_runs"))?;
        let mut all = IdFilters::sized_for(&table)?;
        let mut runs = Vec::new();
        // The run being read and its ids: keys come in order, so a run's ids are contiguous.
        let mut run: Option<(u64, Vec<u128>)> = None;
        for entry in table.iter().map_err(storage("scan event_id_runs"))? {
            let (key, block) = entry.map_err(storage("scan event_id_runs"))?;
            let name = key.value().0;
            if run.as_ref().is_none_or(|(current, _)| *current != name) {
                if let Some((done, ids)) = run.replace((name, Vec::new())) {
                    runs.push((done, IdFilter::of(&ids)));
                }
            }
            let ids = &mut run.as_mut().expect("just set").1;
            for (id, _) in id_pairs(block.value())? {
                all.insert(id);
                ids.push(id);
            }
        }
        if let Some((done, ids)) = run {
            runs.push((done, IdFilter::of(&ids)));
        }
        Ok(IdFilters {
            all,
            runs,
            built: true,
        })
    }

    /// The filter of every id in the table, with room for as many again (the per-run filters
    /// never fill up, so they need no rebuild).
    fn build_all(db: &Database) -> Result<IdFilter, StoreError> {
        let txn = db.begin_read().map_err(storage("begin read"))?;
        let table = txn
            .open_table(EVENT_IDS)
            .map_err(storage("open table event_id_runs"))?;
        let mut all = IdFilters::sized_for(&table)?;
        for entry in table.iter().map_err(storage("scan event_id_runs"))? {
            let (_, block) = entry.map_err(storage("scan event_id_runs"))?;
            id_pairs(block.value())?.for_each(|(id, _)| all.insert(id));
        }
        Ok(all)
    }

    /// Record a run just written to the table.
    fn add_run(&mut self, name: u64, ids: &[u128]) {
        let mut run = IdFilter::with_capacity(ids.len());
        for id in ids {
            let hash = IdFilter::hash(*id);
            self.all.insert_hashed(hash);
            run.insert_hashed(hash);
        }
        self.runs.push((name, run));
    }

    /// Where `id` is stored in the table, reading only the runs whose filter matches.
    fn find(
        &self,
        table: &ReadOnlyTable<IdBlockKey, &'static [u8]>,
        id: u128,
    ) -> Result<Option<u64>, StoreError> {
        if !self.built {
            for entry in table.iter().map_err(storage("scan event_id_runs"))? {
                let (_, block) = entry.map_err(storage("scan event_id_runs"))?;
                if let Some(position) = find_in_block(block.value(), id)? {
                    return Ok(Some(position));
                }
            }
            return Ok(None);
        }
        let hash = IdFilter::hash(id);
        if !self.all.may_contain_hashed(hash) {
            return Ok(None);
        }
        for (name, filter) in self.runs.iter().rev() {
            if !filter.may_contain_hashed(hash) {
                continue;
            }
            let mut blocks = table
                .range((*name, 0)..=(*name, id))
                .map_err(storage("read event id"))?;
            if let Some(entry) = blocks.next_back() {
                let (_, block) = entry.map_err(storage("read event id"))?;
                if let Some(position) = find_in_block(block.value(), id)? {
                    return Ok(Some(position));
                }
            }
        }
        Ok(None)
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

fn pack(positions: &[u64]) -> Vec<u8> {
    positions.iter().flat_map(|p| p.to_le_bytes()).collect()
}

fn unpack(bytes: &[u8]) -> Vec<u64> {
    bytes
        .chunks_exact(8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
        .collect()
}

/// The open database, replaced when the log reopens after a failed write. Readers take it
/// for one read transaction at a time, so a reopen only waits for reads in flight.
#[derive(Default)]
struct DbSlot(RwLock<Option<Arc<Database>>>);

impl DbSlot {
    fn get(&self) -> Result<Arc<Database>, StoreError> {
        self.0
            .read()
            .map_err(|_| StoreError::Storage("redb: database slot poisoned by a panic".into()))?
            .clone()
            .ok_or_else(|| StoreError::Unavailable("the event log is reopening".into()))
    }

    fn set(&self, db: Option<Database>) -> Result<(), StoreError> {
        *self
            .0
            .write()
            .map_err(|_| StoreError::Storage("redb: database slot poisoned by a panic".into()))? =
            db.map(Arc::new);
        Ok(())
    }
}

/// The redb backend. Owns the write side; readers share the database through [`RedbReader`].
pub struct RedbBackend {
    path: PathBuf,
    access: Access,
    slot: Arc<DbSlot>,
    staged: Arc<RwLock<Staged>>,
    /// Last stored position, so a commit that does not continue the log is refused instead of
    /// silently overwriting records (redb's `insert` replaces an existing key).
    head: u64,
    /// Whether [`Backend::recover`] ran: until then the overlay is not loaded, and neither a
    /// commit nor a checkpoint may write.
    recovered: bool,
    /// The acknowledgement record, written after every commit (not when inspecting).
    acked_file: Option<AckedFile>,
    /// What the open repaired or could not check, for the recovery report.
    notes: Vec<String>,
    /// Why the medium failed (a full disk, a failed fsync): until [`Backend::heal`] reopens the
    /// file, nothing is written (redb itself refuses every write after an I/O error).
    broken: Option<StoreError>,
}

impl RedbBackend {
    /// Open the log at `path` for writing, creating the file (and its directory) if missing. The
    /// file is opened and checked by [`Backend::recover`] (through [`crate::Log::open`]).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        RedbBackend::open_with(path, Access::Write)
    }

    /// Open the log at `path` to read it only: nothing is ever written to the file (a repair
    /// after an unclean shutdown is made in memory), and a damaged log is refused.
    pub fn inspect(path: &Path) -> Result<Self, StoreError> {
        RedbBackend::open_with(path, Access::Inspect)
    }

    pub fn open_with(path: &Path, access: Access) -> Result<Self, StoreError> {
        if !matches!(access, Access::Inspect) {
            create_parent(path)?;
            // The checks run on an inspection of the file, which needs one to exist.
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
        }
        Ok(RedbBackend {
            path: path.to_path_buf(),
            access,
            slot: Arc::default(),
            staged: Arc::default(),
            head: 0,
            recovered: false,
            acked_file: None,
            notes: Vec::new(),
            broken: None,
        })
    }

    /// Open the database, checked (see [`open`]), then load the index overlay: what
    /// [`Backend::recover`] and [`Backend::heal`] share. Returns the head.
    fn open_and_load(&mut self) -> Result<u64, StoreError> {
        let (acked, warning) = open::read_acked(&self.path);
        let opened = open::open_checked(&self.path, &self.access, acked)?;
        if prepare_tables(&opened.db, &self.path)? {
            // The file was just created: make its directory entry durable too.
            sync_parent(&self.path)?;
        }
        if !matches!(self.access, Access::Inspect) && self.acked_file.is_none() {
            self.acked_file = Some(AckedFile::open(&self.path)?);
        }
        self.notes = warning.into_iter().chain(opened.repaired).collect();
        self.slot.set(Some(opened.db))?;
        self.load(opened.verified)
    }

    fn database(&self) -> Result<Arc<Database>, StoreError> {
        self.slot.get()
    }

    /// The error of a failed write: a full medium or an I/O failure marks the backend broken,
    /// to be reopened by [`Backend::heal`].
    fn medium<E: Into<redb::Error>>(
        &self,
        context: &'static str,
    ) -> impl FnOnce(E) -> StoreError + use<'_, E> {
        move |e| classify(context, e.into())
    }

    /// Store raw bytes as a chunk right after the last stored one, as if garbage had landed at
    /// the end of the log. For tests of recovery; the database must not be open. Returns the
    /// position written.
    pub fn write_garbage_record(path: &Path, bytes: &[u8]) -> Result<u64, StoreError> {
        let db = raw_database(path)?;
        let position = {
            let txn = db.begin_read().map_err(storage("begin read"))?;
            let events = txn
                .open_table(EVENTS)
                .map_err(storage("open table events"))?;
            let last = events.last().map_err(storage("read last chunk"))?;
            last.map_or(1, |(k, v)| k.value() + Spans::of(v.value()).extent().max(1))
        };
        write_raw(&db, position, bytes)?;
        Ok(position)
    }

    /// Store (or overwrite) raw bytes as the chunk that starts at `position`, bypassing the
    /// indexes and every check: a gap after the end of the log, or a damaged record (each commit
    /// of one record writes a chunk of its own). For tests; the database must not be open.
    pub fn write_raw_record(path: &Path, position: u64, bytes: &[u8]) -> Result<(), StoreError> {
        write_raw(&raw_database(path)?, position, bytes)
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
        // The run's name: the first position it covers (the overlay holds the positions after
        // `meta.indexed`, so every run starts after the positions of the runs before it).
        let run = ids.iter().map(|(_, position)| *position).min();
        // A lookup reads the one block of a run that may hold an id, so two runs must never
        // share a name (their blocks would interleave).
        if let (Some(run), Some((last, _))) = (run, read_lock(&self.staged)?.filter.runs.last()) {
            if run <= *last {
                return Err(StoreError::Storage(format!(
                    "redb: refusing to write event id run {run} after run {last}"
                )));
            }
        }
        streams.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut txn = self
            .database()?
            .begin_write()
            .map_err(self.medium("begin index checkpoint"))?;
        // Derived data: made durable by the next batch's fsync, rebuilt on open if lost.
        txn.set_durability(Durability::None)
            .map_err(storage("set checkpoint durability"))?;
        {
            let mut table = txn
                .open_table(EVENT_IDS)
                .map_err(storage("open table event_id_runs"))?;
            if let Some(run) = run {
                for block in ids.chunks(ID_BLOCK) {
                    table
                        .insert((run, block[0].0), pack_ids(block).as_slice())
                        .map_err(storage("insert event id block"))?;
                }
            }
            let mut index = txn
                .open_table(STREAM_INDEX)
                .map_err(storage("open table stream_index"))?;
            let mut heads = txn
                .open_table(STREAM_HEADS)
                .map_err(storage("open table stream_heads"))?;
            for (stream, first_version, positions) in &streams {
                let rows = (*first_version..)
                    .step_by(ROW_POSITIONS)
                    .zip(positions.chunks(ROW_POSITIONS));
                for (version, row) in rows {
                    index
                        .insert((stream.as_str(), version), pack(row).as_slice())
                        .map_err(storage("insert stream index row"))?;
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
        txn.commit()
            .map_err(self.medium("commit index checkpoint"))?;
        // The table now holds the ids: add them to the filter (or rebuild a full one from the
        // table) in the same critical section that drops them from the overlay.
        let full = {
            let staged = read_lock(&self.staged)?;
            staged.filter.all.count + ids.len() > staged.filter.all.capacity
        };
        let rebuilt = if full {
            Some(IdFilters::build_all(&*self.slot.get()?)?)
        } else {
            None
        };
        let run_ids: Vec<u128> = ids.iter().map(|(id, _)| *id).collect();
        let mut staged = write_lock(&self.staged)?;
        match (rebuilt, run) {
            // The rebuilt filter has the run's ids already (the table had them).
            (Some(all), Some(run)) => {
                staged.filter.all = all;
                staged.filter.runs.push((run, IdFilter::of(&run_ids)));
            }
            (Some(all), None) => staged.filter.all = all,
            (None, Some(run)) => staged.filter.add_run(run, &run_ids),
            (None, None) => {}
        }
        staged.clear_entries();
        Ok(())
    }
    fn check_recovered(&self) -> Result<(), StoreError> {
        if !self.recovered {
            return Err(StoreError::Storage(
                "redb: the log must be recovered (opened through Log/SyncLog) before it is written"
                    .into(),
            ));
        }
        if matches!(self.access, Access::Inspect) {
            return Err(StoreError::Storage(
                "redb: the log was opened for inspection and is never written".into(),
            ));
        }
        match &self.broken {
            Some(e) => Err(e.again()),
            None => Ok(()),
        }
    }

    /// Verify the whole log and load the index overlay: what [`Backend::recover`] and
    /// [`Backend::heal`] share.
    fn load(&mut self, verified: Verified) -> Result<u64, StoreError> {
        let db = self.database()?;
        let head = verified.head;
        // Rebuild the overlay from the records the index tables do not cover (verified just
        // now, so a read failing here is a failure of the medium, not damage).
        let mut staged = Staged::default();
        let mut from = verified.indexed + 1;
        let reader = self.reader();
        while from <= head {
            let batch = reader.read_from(from, 4096)?;
            let Some(last) = batch.last() else { break };
            from = last.position + 1;
            batch.iter().for_each(|e| staged.add(e));
        }
        staged.filter = IdFilters::build(&db)?;
        *write_lock(&self.staged)? = staged;
        self.head = head;
        self.recovered = true;
        Ok(head)
    }
}

/// Sort a redb failure: a full medium (ENOSPC, EDQUOT) and other I/O failures are the medium's,
/// and recoverable by reopening; anything else is a storage error.
fn classify(context: &'static str, e: redb::Error) -> StoreError {
    match e {
        redb::Error::Io(io) if is_full(&io) => StoreError::Full(format!("{context}: {io}")),
        redb::Error::Io(io) => StoreError::Unavailable(format!("{context}: {io}")),
        redb::Error::PreviousIo => StoreError::Unavailable(format!(
            "{context}: an earlier write failed; the log reopens once the medium works"
        )),
        other => StoreError::Storage(format!("redb: {context}: {other}")),
    }
}

fn is_full(e: &std::io::Error) -> bool {
    // ENOSPC, EDQUOT
    matches!(e.raw_os_error(), Some(28) | Some(122)) || e.kind() == std::io::ErrorKind::StorageFull
}

fn create_parent(path: &Path) -> Result<(), StoreError> {
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    if dir.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    // The new directory entry must survive a crash like the records in it: fsync the directory
    // that holds it.
    if let Some(parent) = dir.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

/// fsync the directory holding `path`, so a file just created in it survives a crash.
fn sync_parent(path: &Path) -> Result<(), StoreError> {
    let dir = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => dir,
        None => Path::new("."),
    };
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// A database opened without any check, for the test helpers that damage a log on purpose.
fn raw_database(path: &Path) -> Result<Database, StoreError> {
    let db = redb::Builder::new()
        .create(path)
        .map_err(|e| StoreError::Storage(format!("redb: open {}: {e}", path.display())))?;
    prepare_tables(&db, path)?;
    Ok(db)
}

/// Refuse the older layout, and create every table up front so read transactions never meet
/// a missing table. Returns whether it created them (a new file).
fn prepare_tables(db: &Database, path: &Path) -> Result<bool, StoreError> {
    let tables: Vec<String> = db
        .begin_read()
        .map_err(storage("begin read"))?
        .list_tables()
        .map_err(storage("list tables"))?
        .map(|table| table.name().to_string())
        .collect();
    if tables.iter().any(|name| name == OLD_EVENT_IDS) {
        return Err(StoreError::Storage(format!(
            "redb: open {}: the file has the older event id index (table `{OLD_EVENT_IDS}`), \
             which this build does not read and cannot convert",
            path.display()
        )));
    }
    let wanted = [
        EVENTS.name(),
        META.name(),
        STREAM_HEADS.name(),
        STREAM_INDEX.name(),
        EVENT_IDS.name(),
    ];
    if wanted.iter().all(|name| tables.iter().any(|t| t == name)) {
        return Ok(false);
    }
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
            .map_err(storage("create table event_id_runs"))?;
    }
    txn.commit().map_err(storage("commit table creation"))?;
    Ok(true)
}

fn write_raw(db: &Database, position: u64, bytes: &[u8]) -> Result<(), StoreError> {
    let txn = db.begin_write().map_err(storage("begin write"))?;
    txn.open_table(EVENTS)
        .map_err(storage("open table events"))?
        .insert(position, bytes)
        .map_err(storage("insert raw record"))?;
    txn.commit().map_err(storage("commit raw record"))
}

impl Backend for RedbBackend {
    type Reader = RedbReader;

    /// Verify the whole log (see [`verify`]) and load the index overlay. Nothing is cut: redb
    /// commits are atomic, so a record can only be damaged by the medium or by a bug, never
    /// torn, and the only repair made (on open: rolling back a torn commit that was never
    /// acknowledged) is redb's own, decided in [`open`].
    fn recover(&mut self) -> Result<Recovery, StoreError> {
        let head = self.open_and_load()?;
        Ok(Recovery {
            head,
            notes: self.notes.clone(),
            ..Recovery::default()
        })
    }

    fn reader(&self) -> RedbReader {
        RedbReader {
            slot: self.slot.clone(),
            staged: self.staged.clone(),
        }
    }

    fn commit(&mut self, records: &[PreparedRecord]) -> Result<(), StoreError> {
        self.check_recovered()?;
        check_continues(self.head, records)?;
        let result = self.try_commit(records);
        if let Err(e) = &result {
            if e.is_medium_failure() {
                self.broken = Some(e.again());
            }
        }
        result
    }

    /// Close the database and open it again, checked, once the medium works: redb refuses every
    /// write after an I/O error until then. A commit that failed may have reached the file
    /// after all (a failed fsync says nothing about what was written); such records were never
    /// acknowledged, and come back as part of the log, where a retry with the same event ids
    /// finds them.
    fn heal(&mut self) -> Result<u64, StoreError> {
        if self.broken.is_none() {
            return Ok(self.head);
        }
        let acknowledged = self.head;
        self.slot.set(None)?;
        let head = match self.open_and_load() {
            Ok(head) => head,
            Err(StoreError::Storage(reason)) => return Err(StoreError::Unavailable(reason)),
            Err(other) => return Err(other),
        };
        if head < acknowledged {
            return Err(StoreError::Damaged(Box::new(crate::damage::Damage::new(
                self.path.display().to_string(),
                head + 1,
                format!(
                    "after reopening, the log ends at {head} but {acknowledged} was acknowledged"
                ),
            ))));
        }
        self.broken = None;
        Ok(head)
    }
}

impl RedbBackend {
    fn try_commit(&mut self, records: &[PreparedRecord]) -> Result<(), StoreError> {
        // Checkpoint before the batch rather than after it: a failure then fails this commit
        // before anything is written, instead of reporting a durable batch as failed.
        if read_lock(&self.staged)?.len() >= CHECKPOINT_EVENTS {
            self.checkpoint()?;
        }
        let Some(last) = records.last() else {
            return Ok(());
        };
        let db = self.database()?;
        let txn = db.begin_write().map_err(self.medium("begin commit"))?;
        {
            let mut events = txn
                .open_table(EVENTS)
                .map_err(self.medium("open table events"))?;
            let mut chunk: Vec<u8> = Vec::with_capacity(CHUNK_BYTES);
            let mut chunk_first = records[0].envelope.position;
            for record in records {
                if !chunk.is_empty() && chunk.len() + record.frame.len() > CHUNK_BYTES {
                    events
                        .insert(chunk_first, chunk.as_slice())
                        .map_err(self.medium("insert chunk"))?;
                    chunk.clear();
                    chunk_first = record.envelope.position;
                }
                chunk.extend_from_slice(&record.frame);
            }
            events
                .insert(chunk_first, chunk.as_slice())
                .map_err(self.medium("insert chunk"))?;
            let mut meta = txn
                .open_table(META)
                .map_err(self.medium("open table meta"))?;
            meta.insert(META_HEAD, last.envelope.position)
                .map_err(self.medium("write meta"))?;
        }
        // Default durability: the commit returns after the fsync, so the whole batch (every
        // transaction the group-commit writer accepted) shares one.
        txn.commit().map_err(self.medium("commit"))?;
        self.head = last.envelope.position;
        // Durable now: record it as acknowledged before any writer is told. A failure to record
        // it only weakens the next open's check (the record lags), so it fails nothing.
        if let Some(file) = &self.acked_file {
            let frame_crc =
                u32::from_le_bytes(last.frame[4..8].try_into().expect("a frame header"));
            let _ = file.record(Acked {
                head: last.envelope.position,
                frame_crc,
            });
        }
        let mut staged = write_lock(&self.staged)?;
        for record in records {
            staged.add(&record.envelope);
        }
        Ok(())
    }
}

/// Read handle of the redb backend. Every read runs in one read transaction, so it sees one
/// committed state of the database (plus the index overlay, see [`Staged`]).
#[derive(Clone)]
pub struct RedbReader {
    slot: Arc<DbSlot>,
    staged: Arc<RwLock<Staged>>,
}

impl RedbReader {
    fn begin(&self) -> Result<ReadTransaction, StoreError> {
        self.slot.get()?.begin_read().map_err(storage("begin read"))
    }
}

/// Point reads of records by position, keeping the last chunk read: the records of one stream
/// often sit in the same chunk.
struct ChunkReader<'t> {
    events: &'t ReadOnlyTable<u64, &'static [u8]>,
    current: Option<(u64, AccessGuard<'t, &'static [u8]>, Spans)>,
}

impl<'t> ChunkReader<'t> {
    fn new(events: &'t ReadOnlyTable<u64, &'static [u8]>) -> Self {
        ChunkReader {
            events,
            current: None,
        }
    }

    /// The record at `position`, or `None` when no chunk holds it.
    fn get(&mut self, position: u64) -> Result<Option<Envelope>, StoreError> {
        let covers = |c: &(u64, AccessGuard<'t, &'static [u8]>, Spans)| {
            c.0 <= position && position < c.0 + c.2.extent()
        };
        if !self.current.as_ref().is_some_and(covers) {
            let mut range = self
                .events
                .range(..=position)
                .map_err(storage("read chunk"))?;
            let Some(entry) = range.next_back() else {
                return Ok(None);
            };
            let (key, value) = entry.map_err(storage("read chunk"))?;
            let spans = Spans::of(value.value());
            self.current = Some((key.value(), value, spans));
        }
        let Some((first, bytes, spans)) = self.current.as_ref().filter(|c| covers(c)) else {
            return Ok(None);
        };
        decode_in_chunk(*first, bytes.value(), spans, position).map(Some)
    }

    /// The record of `stream` at `version`, which the stream index puts at `position`.
    fn stream_entry(
        &mut self,
        stream: &str,
        version: u64,
        position: u64,
    ) -> Result<Envelope, StoreError> {
        let Some(envelope) = self.get(position)? else {
            return Err(StoreError::Corrupt {
                position,
                reason: format!("stream `{stream}` version {version} points at a missing record"),
            });
        };
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
}

impl RedbReader {
    fn read_from_unguarded(&self, from: u64, max: usize) -> Result<Vec<Envelope>, StoreError> {
        let from = from.max(1);
        let txn = self.begin()?;
        let events = txn
            .open_table(EVENTS)
            .map_err(storage("open table events"))?;
        let mut out = Vec::with_capacity(max.min(1024));
        if max == 0 {
            return Ok(out);
        }
        // Start at the chunk that holds `from`: the last one starting at or before it.
        let start = {
            let mut before = events.range(..=from).map_err(storage("read events"))?;
            match before.next_back() {
                Some(entry) => entry.map_err(storage("read events"))?.0.value(),
                None => from,
            }
        };
        // Positions are dense: the n-th record returned must be at `from + n`.
        let mut want = from;
        for entry in events.range(start..).map_err(storage("read events"))? {
            let (key, value) = entry.map_err(storage("read events"))?;
            let (first, bytes) = (key.value(), value.value());
            let spans = Spans::of(bytes);
            for position in first.max(from)..first + spans.extent() {
                if position != want {
                    return Err(StoreError::Corrupt {
                        position: want,
                        reason: format!("record missing: the next stored record is at {position}"),
                    });
                }
                out.push(decode_in_chunk(first, bytes, &spans, position)?);
                want += 1;
                if out.len() >= max {
                    return Ok(out);
                }
            }
        }
        Ok(out)
    }
}

impl RedbReader {
    fn head_unguarded(&self) -> Result<u64, StoreError> {
        let txn = self.begin()?;
        let events = txn
            .open_table(EVENTS)
            .map_err(storage("open table events"))?;
        let last = events.last().map_err(storage("read last chunk"))?;
        let end = last.map_or(0, |(k, v)| {
            k.value() + Spans::of(v.value()).frames.len() as u64
        });
        Ok(end.saturating_sub(1))
    }

    fn stream_version_unguarded(&self, stream: &str) -> Result<u64, StoreError> {
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

    fn positions_of_unguarded(&self, event_ids: &[Uuid]) -> Result<Vec<Option<u64>>, StoreError> {
        let staged = read_lock(&self.staged)?;
        let txn = self.begin()?;
        let ids = txn
            .open_table(EVENT_IDS)
            .map_err(storage("open table event_id_runs"))?;
        event_ids
            .iter()
            .map(|id| {
                let id = id.as_u128();
                match staged.ids.get(&id) {
                    Some(position) => Ok(Some(*position)),
                    None => staged.filter.find(&ids, id),
                }
            })
            .collect()
    }

    fn read_stream_unguarded(
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
        let mut chunks = ChunkReader::new(&events);
        let mut out = Vec::with_capacity(max.min(1024));
        let mut next = from_version.max(1);
        // The row holding `next` is the last one starting at or before it.
        let start = {
            let mut before = index
                .range((stream, 0)..=(stream, next))
                .map_err(storage("read stream index"))?;
            match before.next_back() {
                Some(entry) => entry.map_err(storage("read stream index"))?.0.value().1,
                None => next,
            }
        };
        let rows = index
            .range((stream, start)..=(stream, u64::MAX))
            .map_err(storage("read stream index"))?;
        'rows: for entry in rows {
            let (key, row) = entry.map_err(storage("read stream index"))?;
            let first_version = key.value().1;
            for (version, position) in (first_version..).zip(unpack(row.value())) {
                if out.len() >= max {
                    break 'rows;
                }
                if version >= next {
                    out.push(chunks.stream_entry(stream, version, position)?);
                    next = version + 1;
                }
            }
        }
        // The newest versions may only be in the overlay (an entry in both is read once).
        if let Some(s) = staged.streams.get(stream) {
            for (version, position) in (s.first_version..).zip(&s.positions) {
                if out.len() >= max {
                    break;
                }
                if version >= next {
                    out.push(chunks.stream_entry(stream, version, *position)?);
                }
            }
        }
        Ok(out)
    }

    fn read_one_unguarded(&self, position: u64) -> Result<Option<Envelope>, StoreError> {
        let txn = self.begin()?;
        let events = txn
            .open_table(EVENTS)
            .map_err(storage("open table events"))?;
        let mut chunks = ChunkReader::new(&events);
        let envelope = chunks.get(position)?;
        Ok(envelope)
    }
}

/// redb verifies page checksums when the log is opened, not on every read: damage that appears
/// while the daemon runs (a failing disk) can make its B-tree code panic. A read that panics
/// fails with an error instead, which stops event delivery and readiness with a reason.
fn guarded<T>(
    what: &'static str,
    read: impl FnOnce() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(read)).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("no message");
        Err(StoreError::Storage(format!(
            "redb: {what}: the storage engine failed, the file may be damaged ({message}); \
             `meshplane log verify` checks it"
        )))
    })
}

impl LogRead for RedbReader {
    fn read_from(&self, from: u64, max: usize) -> Result<Vec<Envelope>, StoreError> {
        guarded("read", || self.read_from_unguarded(from, max))
    }
}

impl BackendRead for RedbReader {
    fn head(&self) -> Result<u64, StoreError> {
        guarded("read the head", || self.head_unguarded())
    }

    fn stream_version(&self, stream: &str) -> Result<u64, StoreError> {
        guarded("read a stream version", || {
            self.stream_version_unguarded(stream)
        })
    }

    fn positions_of(&self, event_ids: &[Uuid]) -> Result<Vec<Option<u64>>, StoreError> {
        guarded("look up event ids", || {
            self.positions_of_unguarded(event_ids)
        })
    }

    fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        max: usize,
    ) -> Result<Vec<Envelope>, StoreError> {
        guarded("read a stream", || {
            self.read_stream_unguarded(stream, from_version, max)
        })
    }

    fn read_one(&self, position: u64) -> Result<Option<Envelope>, StoreError> {
        guarded("read a record", || self.read_one_unguarded(position))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn splitmix(n: u64) -> u64 {
        let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    #[test]
    fn id_filter_has_no_false_negatives_and_few_false_positives() {
        let random = |n: u64| u128::from(splitmix(n)) << 64 | u128::from(splitmix(!n));
        // v7 layout: millisecond timestamp on top, random bits below.
        let time_ordered =
            |n: u64| u128::from(1_700_000_000_000 + n / 8) << 80 | u128::from(splitmix(n) >> 2);
        for id_of in [&random as &dyn Fn(u64) -> u128, &time_ordered] {
            let mut filter = IdFilter::with_capacity(100_000);
            (0..100_000).for_each(|n| filter.insert(id_of(n)));
            assert!((0..100_000).all(|n| filter.may_contain(id_of(n))));
            let false_positives = (100_000..200_000)
                .filter(|n| filter.may_contain(id_of(*n)))
                .count();
            assert!(
                false_positives < 2_000,
                "{false_positives} false positives in 100000"
            );
        }
        assert!(
            IdFilter::default().may_contain(1),
            "an unbuilt filter knows nothing"
        );
    }

    fn records(positions: std::ops::RangeInclusive<u64>) -> Vec<PreparedRecord> {
        positions
            .map(|position| {
                let envelope = Envelope {
                    position,
                    stream: format!("s/{}", position % 3),
                    stream_version: position.div_ceil(3),
                    event_id: Uuid::from_u128(
                        u128::from(splitmix(position)) << 64 | u128::from(splitmix(!position)),
                    ),
                    recorded_at_ms: 0,
                    event_type: "resource.deleted".into(),
                    schema_version: 1,
                    payload: vec![],
                };
                PreparedRecord {
                    frame: frame::encode(&envelope).unwrap(),
                    envelope,
                }
            })
            .collect()
    }

    #[test]
    fn ids_of_many_runs_are_found_across_reopen_and_cuts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.redb");
        let all = records(1..=3000);
        let ids: Vec<Uuid> = all.iter().map(|r| r.envelope.event_id).collect();
        let unknown: Vec<Uuid> = (0..2000u128).map(|n| Uuid::from_u128(n * 7919)).collect();
        // First position of the last commit, whose chunk the end of the test damages.
        let last_chunk;
        {
            let mut backend = RedbBackend::open(&path).unwrap();
            backend.recover().unwrap();
            // Runs of uneven sizes (1 to 299 ids), the last 100 records left in the overlay.
            let mut at = 0;
            for size in (1..).map(|n: usize| (n * 37) % 299 + 1) {
                let end = (at + size).min(all.len());
                backend.commit(&all[at..end]).unwrap();
                at = end;
                if at >= all.len() - 100 {
                    break;
                }
                backend.checkpoint().unwrap();
            }
            last_chunk = at as u64 + 1;
            backend.commit(&all[at..]).unwrap();
            let runs = read_lock(&backend.staged).unwrap().filter.runs.len();
            assert!(runs > 10, "{runs} runs");
            let found = backend.reader().positions_of(&ids).unwrap();
            assert_eq!(found, (1..=3000).map(Some).collect::<Vec<_>>());
        }
        for _ in 0..2 {
            let mut backend = RedbBackend::open(&path).unwrap();
            backend.recover().unwrap();
            {
                let staged = read_lock(&backend.staged).unwrap();
                let in_runs: usize = staged.filter.runs.iter().map(|(_, f)| f.count).sum();
                assert_eq!(staged.filter.all.count + staged.len(), 3000);
                assert_eq!(in_runs, staged.filter.all.count);
            }
            let found = backend.reader().positions_of(&ids).unwrap();
            assert_eq!(found, (1..=3000).map(Some).collect::<Vec<_>>());
            let missing = backend.reader().positions_of(&unknown).unwrap();
            assert!(missing.iter().all(Option::is_none));
            backend.checkpoint().unwrap();
        }
        // Damage the last chunk, whose ids are indexed by now: the open refuses the log and
        // names the first damaged position; nothing is cut, so the file still opens as damaged.
        RedbBackend::write_raw_record(&path, last_chunk, b"not a frame").unwrap();
        for _ in 0..2 {
            let mut backend = RedbBackend::open(&path).unwrap();
            match backend.recover() {
                Err(StoreError::Damaged(damage)) => assert_eq!(damage.first_bad, last_chunk),
                other => panic!("expected damage at {last_chunk}, got {other:?}"),
            }
        }
        // Put the records back: every id is found again.
        RedbBackend::write_raw_record(
            &path,
            last_chunk,
            &records(last_chunk..=3000)
                .iter()
                .flat_map(|r| r.frame.clone())
                .collect::<Vec<u8>>(),
        )
        .unwrap();
        let mut backend = RedbBackend::open(&path).unwrap();
        backend.recover().unwrap();
        let found = backend.reader().positions_of(&ids).unwrap();
        assert_eq!(found, (1..=3000).map(Some).collect::<Vec<_>>());
    }

    #[test]
    fn a_read_that_panics_fails_with_an_error() {
        let result: Result<(), StoreError> = guarded("read", || panic!("branch page overflow"));
        match result {
            Err(StoreError::Storage(msg)) => {
                assert!(msg.contains("branch page overflow"), "{msg}");
                assert!(msg.contains("log verify"), "{msg}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_file_with_the_older_id_index_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.redb");
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            let old: TableDefinition<u128, u64> = TableDefinition::new(OLD_EVENT_IDS);
            txn.open_table(old).unwrap().insert(1, 1).unwrap();
            txn.commit().unwrap();
        }
        match RedbBackend::open(&path).unwrap().recover() {
            Err(StoreError::Storage(msg)) => {
                assert!(msg.contains("older event id index"), "{msg}")
            }
            Err(other) => panic!("unexpected error: {other}"),
            Ok(_) => panic!("an old file was opened"),
        }
    }

    #[test]
    fn a_full_id_filter_is_rebuilt_at_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let mut backend = RedbBackend::open(&dir.path().join("f.redb")).unwrap();
        backend.recover().unwrap();
        write_lock(&backend.staged).unwrap().filter.all = IdFilter::with_capacity(8);
        let records = records(1..=100);
        backend.commit(&records).unwrap();
        backend.checkpoint().unwrap();
        let capacity = read_lock(&backend.staged).unwrap().filter.all.capacity;
        assert!(
            capacity >= 4 * CHECKPOINT_EVENTS,
            "rebuilt larger: {capacity}"
        );
        let ids: Vec<Uuid> = records.iter().map(|r| r.envelope.event_id).collect();
        let found = backend.reader().positions_of(&ids).unwrap();
        assert_eq!(found, (1..=100).map(Some).collect::<Vec<_>>());
        let unknown = backend
            .reader()
            .positions_of(&[Uuid::from_u128(7)])
            .unwrap();
        assert_eq!(unknown, vec![None]);
    }
}
