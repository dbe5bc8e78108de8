//! Snapshots: a cache of the folded state, so start-up folds only the log's tail.
//!
//! A snapshot is only a cache: start-up loads the newest one that is valid for this log and
//! folds the events after it; anything wrong with a snapshot (unreadable, damaged, from an older
//! format, from another log) makes start-up ignore it, with a warning, and fall back to an older
//! one or to the full replay. State from snapshot + tail equals state from the full replay
//! (tested on random histories).
//!
//! File: `DATA/snapshots/snapshot-<position, 20 digits>.bin` =
//! `MAGIC | format u32 | position u64 | event id of the event at that position (16 bytes) |
//! crc32c u32 | body length u64 | body`, the body the postcard encoding of the whole mesh state,
//! all integers little-endian. Written to a temporary file, synced, then renamed.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use actors::Mesh;
use events::EventStore;
use uuid::Uuid;

use crate::error::Error;

const MAGIC: &[u8; 8] = b"MPSNAP\0\0";
/// Bumped whenever a state type changes shape: older snapshots are then ignored, not misread.
pub const FORMAT: u32 = 3;
const HEADER: usize = 8 + 4 + 8 + 16 + 4 + 8;
/// Snapshots the daemon keeps by default; older ones are removed after a new one is written.
pub const DEFAULT_KEEP: usize = 2;

/// Where snapshots live under a data directory.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("snapshots")
}

fn file_name(position: u64) -> String {
    format!("snapshot-{position:020}.bin")
}

/// Write a snapshot of `mesh` (folded up to `mesh.position`, whose event has `event_id`), and
/// remove all but the newest `keep` (0: keep every snapshot, e.g. for time travel with
/// `replay --to`).
pub fn write(dir: &Path, mesh: &Mesh, event_id: Uuid, keep: usize) -> Result<PathBuf, Error> {
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let body = postcard::to_stdvec(mesh)
        .map_err(|e| Error::Snapshot(format!("cannot encode the state: {e}")))?;
    let mut bytes = Vec::with_capacity(HEADER + body.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&FORMAT.to_le_bytes());
    bytes.extend_from_slice(&mesh.position.to_le_bytes());
    bytes.extend_from_slice(event_id.as_bytes());
    bytes.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
    bytes.extend_from_slice(&(body.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&body);
    let path = dir.join(file_name(mesh.position));
    let tmp = dir.join(format!("{}.tmp", file_name(mesh.position)));
    let mut file = fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    file.write_all(&bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io(&tmp, e))?;
    fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
    if keep > 0 {
        for old in list(dir).into_iter().skip(keep) {
            let _ = fs::remove_file(old);
        }
    }
    Ok(path)
}

/// The position a snapshot file is named after.
fn position_of(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    name.strip_prefix("snapshot-")?
        .split('.')
        .next()?
        .parse()
        .ok()
}

/// Positions of the snapshot files in `dir`, newest first (valid or not).
pub fn positions(dir: &Path) -> Vec<u64> {
    list(dir).iter().filter_map(|p| position_of(p)).collect()
}

/// Snapshot files, newest first.
fn list(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("snapshot-") && n.ends_with(".bin"))
        })
        .collect();
    files.sort();
    files.reverse();
    files
}

/// Read one snapshot and check it against the log; the reason when it cannot be used.
fn read(path: &Path, store: &dyn EventStore) -> Result<Mesh, String> {
    let bytes = fs::read(path).map_err(|e| format!("unreadable: {e}"))?;
    if bytes.len() < HEADER || &bytes[..8] != MAGIC {
        return Err("not a meshplane snapshot".into());
    }
    let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
    let u64_at = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
    let format = u32_at(8);
    if format != FORMAT {
        return Err(format!("format {format}, this build reads {FORMAT}"));
    }
    let position = u64_at(12);
    let event_id = Uuid::from_slice(&bytes[20..36]).map_err(|e| e.to_string())?;
    let crc = u32_at(36);
    let len = u64_at(40) as usize;
    let body = &bytes[HEADER..];
    if body.len() != len || crc32c::crc32c(body) != crc {
        return Err("damaged (length or checksum mismatch)".into());
    }
    if position > store.head() {
        return Err(format!(
            "taken at position {position}, past the log's head {}",
            store.head()
        ));
    }
    let at = store
        .read_from(position, 1)
        .map_err(|e| format!("cannot read the log at {position}: {e}"))?;
    if at.first().map(|e| e.event_id) != Some(event_id) {
        return Err(format!(
            "taken from another log (the event at position {position} differs)"
        ));
    }
    let mesh: Mesh = postcard::from_bytes(body).map_err(|e| format!("undecodable: {e}"))?;
    if mesh.position != position {
        return Err("its state is not at its position".into());
    }
    Ok(mesh)
}

/// The newest snapshot valid for this log, if any. Invalid ones are reported and skipped.
pub fn load_newest(dir: &Path, store: &dyn EventStore) -> Option<Mesh> {
    load_at_or_before(dir, store, u64::MAX)
}

/// The newest snapshot valid for this log taken at or before `position`, if any.
pub fn load_at_or_before(dir: &Path, store: &dyn EventStore, position: u64) -> Option<Mesh> {
    for path in list(dir)
        .into_iter()
        .filter(|p| position_of(p).is_some_and(|at| at <= position))
    {
        match read(&path, store) {
            Ok(mesh) => {
                tracing::info!(path = %path.display(), position = mesh.position, "loaded a snapshot");
                return Some(mesh);
            }
            Err(why) => {
                tracing::warn!(path = %path.display(), %why, "ignoring a snapshot; falling back to an older one or the full log")
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{fold, fold_onto};
    use actors::instance::{InstanceCommand, Registration};
    use actors::{Ctx, MeshCommand};
    use events::backend::memory::MemoryBackend;
    use events::{NewEvent, SyncLog};
    use rand::{Rng, SeedableRng};
    use serde_json::json;

    /// A random history of catalog, instance and resource changes, appended to a log.
    fn random_log(seed: u64, steps: usize) -> SyncLog<MemoryBackend> {
        let store = SyncLog::open(MemoryBackend::new()).unwrap();
        let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
        let mut mesh = Mesh::default();
        let mut ctx = Ctx::new(1_795_305_600_000, seed);
        let catalog = [
            json!({"apiVersion": "mesh.megaease.com/v2alpha1", "kind": "Tenant", "metadata": {"name": "t"}}),
            json!({"apiVersion": "mesh.megaease.com/v2alpha1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"registerTenant": "t"}}),
        ];
        let mut commands: Vec<MeshCommand> = catalog
            .iter()
            .map(|d| actors::mesh::document_command(d).unwrap())
            .collect();
        for _ in 0..steps {
            let id = format!("i{}", rng.random_range(0..8));
            let key = events::schema::InstanceKey::new("s", id.clone());
            commands.push(match rng.random_range(0..5) {
                0 | 1 => MeshCommand::Instance(InstanceCommand::Register(
                    Registration::from_value(&json!({"serviceName": "s", "instanceID": id,
                        "ip": format!("10.0.0.{}", rng.random_range(1..9)), "port": 13001}))
                    .unwrap(),
                )),
                2 => MeshCommand::Instance(InstanceCommand::TakeOffline {
                    key,
                    reason: "r".into(),
                }),
                3 => MeshCommand::Instance(InstanceCommand::Deregister(key)),
                _ => {
                    actors::mesh::document_command(&json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": format!("c{}", rng.random_range(0..4))},
                    "data": {"v": rng.random_range(0..100).to_string()}}))
                    .unwrap()
                }
            });
        }
        // Decide against the state folded from the log itself, as the daemon does.
        for command in commands {
            let Ok(decision) = mesh.decide(command, &mut ctx) else {
                continue;
            };
            if decision.events.is_empty() {
                continue;
            }
            let events = decision
                .events
                .iter()
                .map(|e| NewEvent::encode(e, ctx.next_id(), ctx.now_ms()).unwrap())
                .collect();
            let appended = store
                .append(&decision.stream, decision.expected, events)
                .unwrap();
            let count = (appended.last_position - appended.first_position + 1) as usize;
            for envelope in store.read_from(appended.first_position, count).unwrap() {
                mesh.apply(&envelope).unwrap();
            }
        }
        store
    }

    #[test]
    fn snapshot_plus_tail_equals_the_full_replay_on_random_histories() {
        for seed in 0..20 {
            let store = random_log(seed, 120);
            let head = store.head();
            let full = fold(&store, None).unwrap();
            let mut rng = rand::rngs::SmallRng::seed_from_u64(seed + 1000);
            let at = rng.random_range(0..=head);
            let dir = tempfile::tempdir().unwrap();
            let snapshot = fold(&store, Some(at)).unwrap();
            if at > 0 {
                let id = store.read_from(at, 1).unwrap()[0].event_id;
                write(dir.path(), &snapshot, id, DEFAULT_KEEP).unwrap();
                let loaded = load_newest(dir.path(), &store).expect("a valid snapshot");
                assert_eq!(loaded, snapshot, "seed {seed}");
                let resumed = fold_onto(&store, loaded, None).unwrap();
                assert_eq!(
                    resumed, full,
                    "seed {seed}: snapshot at {at} of {head} + tail"
                );
            }
        }
    }

    #[test]
    fn bad_snapshots_are_ignored() {
        let store = random_log(7, 60);
        let dir = tempfile::tempdir().unwrap();
        let mesh = fold(&store, Some(10)).unwrap();
        let id = store.read_from(10, 1).unwrap()[0].event_id;
        let path = write(dir.path(), &mesh, id, DEFAULT_KEEP).unwrap();
        assert!(load_newest(dir.path(), &store).is_some());
        // A flipped bit in the body.
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&path, &bytes).unwrap();
        assert!(load_newest(dir.path(), &store).is_none());
        // Another log's snapshot (its event at that position differs).
        write(dir.path(), &mesh, Uuid::from_u128(42), DEFAULT_KEEP).unwrap();
        assert!(load_newest(dir.path(), &store).is_none());
        // An older format.
        write(dir.path(), &mesh, id, DEFAULT_KEEP).unwrap();
        let mut bytes = fs::read(&path).unwrap();
        bytes[8] = 99;
        fs::write(&path, &bytes).unwrap();
        assert!(load_newest(dir.path(), &store).is_none());
        // A valid older snapshot is used when the newest is bad.
        let older = fold(&store, Some(5)).unwrap();
        let older_id = store.read_from(5, 1).unwrap()[0].event_id;
        write(dir.path(), &older, older_id, DEFAULT_KEEP).unwrap();
        assert_eq!(load_newest(dir.path(), &store).unwrap().position, 5);
    }

    #[test]
    fn keep_bounds_the_snapshots_and_zero_keeps_all() {
        let store = random_log(3, 60);
        let snap = |dir: &Path, at: u64, keep: usize| {
            let mesh = fold(&store, Some(at)).unwrap();
            let id = store.read_from(at, 1).unwrap()[0].event_id;
            write(dir, &mesh, id, keep).unwrap();
        };
        let dir = tempfile::tempdir().unwrap();
        for at in [5, 10, 15, 20] {
            snap(dir.path(), at, 2);
        }
        assert_eq!(positions(dir.path()), vec![20, 15]);
        let all = tempfile::tempdir().unwrap();
        for at in [5, 10, 15, 20] {
            snap(all.path(), at, 0);
        }
        assert_eq!(positions(all.path()), vec![20, 15, 10, 5]);
        assert_eq!(
            load_at_or_before(all.path(), &store, 12).unwrap().position,
            10
        );
        assert!(load_at_or_before(all.path(), &store, 4).is_none());
    }
}
