//! Folding a log into the mesh with no adapters attached, and the replay report.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use actors::Mesh;
use events::{Envelope, EventStore, StoreError};
use projections::MeshDigest;

/// Envelopes read per batch from a store.
const BATCH: usize = 4096;

/// The result of a replay.
pub struct Replay {
    pub events: u64,
    pub mesh: Mesh,
}

impl Replay {
    /// Fold envelopes (in position order) into a fresh mesh, up to position `to` inclusive
    /// (all of them when `None`).
    pub fn from_envelopes<'a>(
        envelopes: impl IntoIterator<Item = &'a Envelope>,
        to: Option<u64>,
    ) -> Result<Self, StoreError> {
        let mut replay = Replay {
            events: 0,
            mesh: Mesh::default(),
        };
        for envelope in envelopes {
            if to.is_some_and(|to| envelope.position > to) {
                break;
            }
            replay.fold(envelope)?;
        }
        Ok(replay)
    }

    /// Fold the durable events of a store into a fresh mesh, up to position `to` inclusive
    /// (all of them when `None`).
    pub fn from_store(store: &dyn EventStore, to: Option<u64>) -> Result<Self, StoreError> {
        let mut replay = Replay {
            events: 0,
            mesh: Mesh::default(),
        };
        let end = to.unwrap_or(u64::MAX);
        let mut next = 1;
        while next <= end {
            let want = BATCH.min(usize::try_from(end - next + 1).unwrap_or(BATCH));
            let batch = store.read_from(next, want)?;
            let Some(last) = batch.last() else { break };
            next = last.position + 1;
            for envelope in batch.iter().filter(|e| e.position <= end) {
                replay.fold(envelope)?;
            }
        }
        Ok(replay)
    }

    fn fold(&mut self, envelope: &Envelope) -> Result<(), StoreError> {
        let expected = self.mesh.position + 1;
        if envelope.position != expected {
            return Err(StoreError::Corrupt {
                position: envelope.position,
                reason: format!("positions must be dense: expected {expected}"),
            });
        }
        self.mesh.apply(envelope)?;
        self.events += 1;
        Ok(())
    }

    /// Live resources per kind, in kind order.
    pub fn resources_per_kind(&self) -> BTreeMap<&str, usize> {
        let mut counts = BTreeMap::new();
        for key in self.mesh.resources.resources.keys() {
            *counts.entry(key.kind.as_str()).or_insert(0) += 1;
        }
        counts
    }

    pub fn digest(&self) -> MeshDigest {
        projections::mesh_digest(&self.mesh)
    }

    /// The full report: a summary, then the digest lines (the last is `digest <hex>`).
    pub fn report(&self, source: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "source {source}");
        let _ = writeln!(out, "events folded {}", self.events);
        let counts = self.resources_per_kind();
        let _ = writeln!(out, "resources {}", counts.values().sum::<usize>());
        for (kind, count) in counts {
            let _ = writeln!(out, "  {kind} {count}");
        }
        let registry = &self.mesh;
        let _ = writeln!(out, "tenants {}", registry.services.tenants.len());
        let _ = writeln!(out, "services {}", registry.services.services.len());
        let up = registry
            .instances
            .instances
            .values()
            .filter(|i| i.status() == actors::instance::Status::Up)
            .count();
        let total = registry.instances.instances.len();
        let _ = writeln!(
            out,
            "instances {total} (up {up}, out of service {})",
            total - up
        );
        let fences = &registry.fences;
        let learned: usize = fences.learned.values().map(|m| m.len()).sum();
        let sidecars = fences.fences.values().filter(|v| v.has_sidecar()).count();
        let _ = writeln!(
            out,
            "fences {} (sidecars {sidecars}, learned dependencies {learned})",
            fences.fences.len()
        );
        let _ = write!(out, "{}", self.digest());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use events::schema::{ResourceApplied, ResourceDeleted, ResourceKey};
    use events::Event;

    fn envelope(position: u64, stream_version: u64, event: Event) -> Envelope {
        Envelope {
            position,
            stream: event.stream(),
            stream_version,
            event_id: uuid::Uuid::from_u128(position as u128),
            recorded_at_ms: 1_000 * position as i64,
            event_type: event.event_type().to_string(),
            schema_version: event.schema_version(),
            payload: event.encode().unwrap(),
        }
    }

    fn applied(kind: &str, namespace: &str, name: &str) -> Event {
        Event::ResourceApplied(ResourceApplied {
            key: ResourceKey::new(kind, namespace, name),
            api_version: "v1".into(),
            labels: Default::default(),
            annotations: Default::default(),
            body: r#"{"data":{"a":"1"}}"#.into(),
        })
    }

    fn log() -> Vec<Envelope> {
        vec![
            envelope(1, 1, applied("ConfigMap", "default", "a")),
            envelope(2, 1, applied("ConfigMap", "default", "b")),
            envelope(3, 1, applied("Namespace", "", "shop")),
            envelope(
                4,
                2,
                Event::ResourceDeleted(ResourceDeleted {
                    key: ResourceKey::new("ConfigMap", "default", "b"),
                }),
            ),
        ]
    }

    #[test]
    fn report_counts_events_and_live_resources_and_ends_with_the_digest() {
        let replay = Replay::from_envelopes(&log(), None).unwrap();
        assert_eq!(replay.events, 4);
        let report = replay.report("test");
        assert!(report.contains("events folded 4\n"), "{report}");
        assert!(
            report.contains("  ConfigMap 1\n  Namespace 1\n"),
            "{report}"
        );
        assert!(report.contains("position 4\n"), "{report}");
        let last = report.lines().last().unwrap();
        assert_eq!(last, format!("digest {}", replay.digest().combined));
    }

    #[test]
    fn same_log_same_digest_and_a_different_log_differs() {
        let a = Replay::from_envelopes(&log(), None).unwrap().digest();
        let b = Replay::from_envelopes(&log(), None).unwrap().digest();
        assert_eq!(a, b);
        let shorter = Replay::from_envelopes(&log()[..3], None).unwrap().digest();
        assert_ne!(a.combined, shorter.combined);
    }

    #[test]
    fn a_gap_in_positions_is_an_error() {
        let mut log = log();
        log.remove(1);
        assert!(Replay::from_envelopes(&log, None).is_err());
    }

    #[test]
    fn store_and_envelopes_fold_alike() {
        let store = events::Log::open(events::backend::memory::MemoryBackend::default()).unwrap();
        events::jsonl::import(&store, log()).unwrap();
        let from_store = Replay::from_store(&store, None).unwrap();
        assert_eq!(from_store.events, 4);
        // Up to a position: the same state as the prefix of the log.
        let to_three = Replay::from_store(&store, Some(3)).unwrap();
        assert_eq!(to_three.mesh.position, 3);
        assert_eq!(
            to_three.digest(),
            Replay::from_envelopes(&log()[..3], None).unwrap().digest()
        );
        assert_eq!(
            Replay::from_envelopes(&log(), Some(3)).unwrap().digest(),
            to_three.digest()
        );
        assert_eq!(Replay::from_store(&store, Some(0)).unwrap().events, 0);
        assert_eq!(
            from_store.digest(),
            Replay::from_envelopes(&log(), None).unwrap().digest()
        );
    }
}
