//! Folding a log into the mesh with no adapters attached, and the replay report.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use actors::timeline::{self, Envelopes, EventSource, Remembering};
use actors::{Mesh, Meta};
use events::{Envelope, Event, EventStore, StoreError};
use projections::MeshDigest;

/// Wraps an event source to report progress: the highest position read so far (and the
/// position of the snapshot the fold starts from), and which snapshot that was.
pub struct Watched<'f, S> {
    inner: S,
    on_position: &'f mut dyn FnMut(u64),
    furthest: u64,
    /// The position of the first base (snapshot) the fold started from, if any.
    pub base: Option<u64>,
}

impl<'f, S> Watched<'f, S> {
    pub fn new(inner: S, on_position: &'f mut dyn FnMut(u64)) -> Self {
        Watched {
            inner,
            on_position,
            furthest: 0,
            base: None,
        }
    }

    fn saw(&mut self, position: u64) {
        if position > self.furthest {
            self.furthest = position;
            (self.on_position)(position);
        }
    }
}

impl<S: EventSource> EventSource for Watched<'_, S> {
    type Error = S::Error;

    fn read(&mut self, from: u64, to: u64) -> Result<Vec<(Event, Meta)>, S::Error> {
        let batch = self.inner.read(from, to)?;
        if let Some((_, meta)) = batch.last() {
            self.saw(meta.position);
        }
        Ok(batch)
    }

    fn base_at_or_before(&mut self, position: u64) -> Option<Mesh> {
        let base = self.inner.base_at_or_before(position)?;
        if self.base.is_none() {
            self.base = Some(base.position);
        }
        self.saw(base.position);
        Some(base)
    }
}

/// The result of a replay.
pub struct Replay {
    pub events: u64,
    pub mesh: Mesh,
    /// The position of the snapshot the fold started from (none: from the start of the log).
    pub snapshot: Option<u64>,
}

impl Replay {
    /// Fold envelopes (in position order, dense from 1) into a fresh mesh, up to position `to`
    /// inclusive (all of them when `None`), honouring rollbacks.
    pub fn from_envelopes<'a>(
        envelopes: impl IntoIterator<Item = &'a Envelope>,
        to: Option<u64>,
    ) -> Result<Self, StoreError> {
        let all: Vec<&Envelope> = envelopes.into_iter().collect();
        for (i, e) in all.iter().enumerate() {
            if e.position != i as u64 + 1 {
                return Err(StoreError::Corrupt {
                    position: e.position,
                    reason: format!("positions must be dense: expected {}", i + 1),
                });
            }
        }
        let end = to.unwrap_or(all.len() as u64).min(all.len() as u64);
        let mesh = timeline::state_at(&mut Remembering::new(Envelopes { items: &all }), end)?;
        Ok(Replay {
            events: mesh.position,
            mesh,
            snapshot: None,
        })
    }

    /// Fold the durable events of a store up to position `to` inclusive (all of them when
    /// `None`), honouring rollbacks: from the newest valid snapshot at or before it in
    /// `snapshots` when given, else from the start. `on_position` hears the furthest position
    /// read so far (for a progress bar).
    pub fn from_store(
        store: &dyn EventStore,
        snapshots: Option<&Path>,
        to: Option<u64>,
        on_position: &mut dyn FnMut(u64),
    ) -> Result<Self, StoreError> {
        let end = to.unwrap_or(u64::MAX).min(store.head());
        let mut source = Remembering::new(Watched::new(
            adapters::host::StoreSource::new(store, snapshots),
            on_position,
        ));
        let mesh = timeline::state_at(&mut source, end)?;
        Ok(Replay {
            events: mesh.position,
            mesh,
            snapshot: source.inner.base,
        })
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
        if let Some(at) = self.snapshot {
            let _ = writeln!(out, "started from the snapshot at position {at}");
        }
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
        let from_store = Replay::from_store(&store, None, None, &mut |_| {}).unwrap();
        assert_eq!(from_store.events, 4);
        // Up to a position: the same state as the prefix of the log.
        let to_three = Replay::from_store(&store, None, Some(3), &mut |_| {}).unwrap();
        assert_eq!(to_three.mesh.position, 3);
        assert_eq!(
            to_three.digest(),
            Replay::from_envelopes(&log()[..3], None).unwrap().digest()
        );
        assert_eq!(
            Replay::from_envelopes(&log(), Some(3)).unwrap().digest(),
            to_three.digest()
        );
        assert_eq!(
            Replay::from_store(&store, None, Some(0), &mut |_| {})
                .unwrap()
                .events,
            0
        );
        assert_eq!(
            from_store.digest(),
            Replay::from_envelopes(&log(), None).unwrap().digest()
        );
    }
}
