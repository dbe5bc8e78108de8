//! The log's timeline: rollbacks, and the fold that honours them.
//!
//! A rollback to position P is an event (`mesh.rolled_back`) at some later position R. After it
//! every concept holds its state as of P, and new events continue from R. The undone events
//! (P+1 .. R-1) stay in the log as history; they are never folded into content again, but the
//! stream versions they reached are facts of the log, so they are carried over (a decision after
//! the rollback must still append at each stream's real version).
//!
//! The fold needs the log to roll back (the state at P is itself a fold of the prefix, which may
//! contain earlier rollbacks), so it reads through an [`EventSource`]: the store in the daemon
//! and in `replay`, a slice of envelopes in tools and the simulator. Nothing here does I/O.

use events::schema::{RolledBack, ROLLBACK_STREAM};
use events::{Event, ExpectedVersion};
use serde::{Deserialize, Serialize};

use crate::decider::{Decision, Meta, Outcome, Rejection};
use crate::mesh::Mesh;

/// One rollback in the effective history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollback {
    /// Position of the rollback event.
    pub at: u64,
    /// The position whose state it restored.
    pub to: u64,
}

impl Rollback {
    /// Whether this rollback undid `position`.
    pub fn undid(&self, position: u64) -> bool {
        self.to < position && position < self.at
    }
}

/// The rollbacks that shaped the current state, oldest first, and the version of the rollback
/// stream.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeline {
    pub rollbacks: Vec<Rollback>,
    pub version: u64,
}

impl Timeline {
    /// The rollback that undid `position`, if one did.
    pub fn undone_by(&self, position: u64) -> Option<&Rollback> {
        self.rollbacks.iter().rev().find(|r| r.undid(position))
    }
}

/// Reads decoded events of the log, `from..=to` (fewer at the end of the log).
pub trait EventSource {
    type Error;
    fn read(&mut self, from: u64, to: u64) -> Result<Vec<(Event, Meta)>, Self::Error>;

    /// A state to start folding from for a position at or after it (a snapshot), if any.
    fn base_at_or_before(&mut self, _position: u64) -> Option<Mesh> {
        None
    }

    /// The state right after a rollback, which a later rollback in the same fold may start
    /// from (see [`Remembering`]). Ignored by default.
    fn remember(&mut self, _mesh: &Mesh) {}
}

/// Rollback states remembered per fold.
const REMEMBERED: usize = 16;

/// Wraps a source to remember the state right after each rollback it folds, and to offer the
/// newest one at or before a position as a base. Without it, a rollback to P refolds from
/// position 1 (or the nearest snapshot), and every earlier rollback in that prefix refolds its
/// own prefix again: chained rollbacks cost exponential time. With it, a rollback folds only
/// from the previous rollback's state. Keeps the newest [`REMEMBERED`] states.
pub struct Remembering<S> {
    pub inner: S,
    states: Vec<Mesh>,
}

impl<S> Remembering<S> {
    pub fn new(inner: S) -> Self {
        Remembering {
            inner,
            states: Vec::new(),
        }
    }
}

impl<S: EventSource> EventSource for Remembering<S> {
    type Error = S::Error;

    fn read(&mut self, from: u64, to: u64) -> Result<Vec<(Event, Meta)>, S::Error> {
        self.inner.read(from, to)
    }

    fn base_at_or_before(&mut self, position: u64) -> Option<Mesh> {
        let remembered = self
            .states
            .iter()
            .filter(|m| m.position <= position)
            .max_by_key(|m| m.position);
        let base = self.inner.base_at_or_before(position);
        match (base, remembered) {
            (Some(b), Some(r)) if r.position > b.position => Some(r.clone()),
            (Some(b), _) => Some(b),
            (None, r) => r.cloned(),
        }
    }

    fn remember(&mut self, mesh: &Mesh) {
        if self.states.len() == REMEMBERED {
            self.states.remove(0);
        }
        self.states.push(mesh.clone());
        self.inner.remember(mesh);
    }
}

/// Events read per step.
const BATCH: u64 = 4096;

/// The state as of `position` (which must not be past the log's end).
pub fn state_at<S: EventSource>(source: &mut S, position: u64) -> Result<Mesh, S::Error> {
    let base = source
        .base_at_or_before(position)
        .filter(|m| m.position <= position)
        .unwrap_or_default();
    fold_range(source, base, position)
}

/// Fold the events after `mesh.position` up to `to` inclusive (or the log's end), honouring
/// rollbacks.
pub fn fold_range<S: EventSource>(
    source: &mut S,
    mut mesh: Mesh,
    to: u64,
) -> Result<Mesh, S::Error> {
    let mut next = mesh.position + 1;
    while next <= to {
        let batch = source.read(next, to.min(next.saturating_add(BATCH - 1)))?;
        if batch.is_empty() {
            break;
        }
        next += batch.len() as u64;
        for (event, meta) in batch {
            mesh = step(source, mesh, event, &meta)?;
        }
    }
    Ok(mesh)
}

/// Fold one event; a rollback reads the log to rebuild the state it returns to.
pub fn step<S: EventSource>(
    source: &mut S,
    mut mesh: Mesh,
    event: Event,
    meta: &Meta,
) -> Result<Mesh, S::Error> {
    match event {
        Event::RolledBack(r) => roll_back(source, &r, meta),
        event => {
            mesh.evolve(event, meta);
            Ok(mesh)
        }
    }
}

/// The state after the rollback event `r` at `meta`.
pub fn roll_back<S: EventSource>(
    source: &mut S,
    r: &RolledBack,
    meta: &Meta,
) -> Result<Mesh, S::Error> {
    let mut mesh = state_at(source, r.to)?;
    let mut next = r.to + 1;
    while next < meta.position {
        let batch = source.read(
            next,
            (meta.position - 1).min(next.saturating_add(BATCH - 1)),
        )?;
        if batch.is_empty() {
            break;
        }
        next += batch.len() as u64;
        for (event, m) in &batch {
            mesh.note_stream_version(event, m);
        }
    }
    mesh.timeline.rollbacks.push(Rollback {
        at: meta.position,
        to: r.to,
    });
    mesh.timeline.version = meta.stream_version;
    mesh.position = meta.position;
    source.remember(&mesh);
    Ok(mesh)
}

/// Decide a rollback to `to` of a log that ends at `end`, with this timeline.
pub fn decide_rollback(
    timeline: &Timeline,
    end: u64,
    to: u64,
    reason: String,
) -> Result<Decision, Rejection> {
    if to >= end {
        return Err(Rejection::invalid(
            "to",
            format!("position {to} is not before the end of the log ({end}): nothing to roll back"),
        ));
    }
    if let Some(r) = timeline.undone_by(to) {
        return Err(Rejection::conflict(format!(
            "position {to} was undone by the rollback at position {} (to {}); roll back to {} or \
             earlier, or to a position after {}",
            r.at, r.to, r.to, r.at
        )));
    }
    Ok(Decision {
        stream: ROLLBACK_STREAM.to_string(),
        expected: ExpectedVersion::Any,
        events: vec![Event::RolledBack(RolledBack { to, reason })],
        outcome: Outcome::Configured,
        item_outcomes: Vec::new(),
    })
}

/// An [`EventSource`] over stored envelopes in memory (positions dense from 1), decoding as it
/// reads: a JSON Lines log, the simulator's log.
pub struct Envelopes<'a, E> {
    pub items: &'a [E],
}

impl<E: std::borrow::Borrow<events::Envelope>> EventSource for Envelopes<'_, E> {
    type Error = events::StoreError;

    fn read(&mut self, from: u64, to: u64) -> Result<Vec<(Event, Meta)>, Self::Error> {
        let len = self.items.len() as u64;
        if from == 0 || from > len || to < from {
            return Ok(Vec::new());
        }
        self.items[(from - 1) as usize..to.min(len) as usize]
            .iter()
            .map(|e| {
                let e = e.borrow();
                Ok((e.decode()?, crate::mesh::meta_of(e)))
            })
            .collect()
    }
}

/// An [`EventSource`] over decoded events in memory (positions dense from 1).
pub struct InMemory<'a> {
    pub events: &'a [(Event, Meta)],
}

impl EventSource for InMemory<'_> {
    type Error = std::convert::Infallible;

    fn read(&mut self, from: u64, to: u64) -> Result<Vec<(Event, Meta)>, Self::Error> {
        let len = self.events.len() as u64;
        if from == 0 || from > len || to < from {
            return Ok(Vec::new());
        }
        let end = to.min(len);
        Ok(self.events[(from - 1) as usize..end as usize].to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::{ResourceCommand, ResourceManifest};
    use crate::{Ctx, MeshCommand};
    use serde_json::json;

    /// A log built by deciding commands, as the daemon would.
    #[derive(Default)]
    struct Log {
        events: Vec<(Event, Meta)>,
        versions: std::collections::BTreeMap<String, u64>,
    }

    impl Log {
        fn mesh(&self) -> Mesh {
            state_at(
                &mut Remembering::new(InMemory {
                    events: &self.events,
                }),
                self.events.len() as u64,
            )
            .unwrap()
        }

        fn append(&mut self, decision: Decision) {
            let actual = self.versions.get(&decision.stream).copied().unwrap_or(0);
            match decision.expected {
                ExpectedVersion::Exact(v) => assert_eq!(v, actual, "{}", decision.stream),
                ExpectedVersion::NoStream => assert_eq!(actual, 0, "{}", decision.stream),
                ExpectedVersion::Any => {}
            }
            for event in decision.events {
                let v = self.versions.entry(event.stream()).or_default();
                *v += 1;
                let meta = Meta {
                    position: self.events.len() as u64 + 1,
                    stream_version: *v,
                    recorded_at_ms: 1000 * self.events.len() as i64,
                };
                self.events.push((event, meta));
            }
        }

        fn apply(&mut self, name: &str, value: &str) {
            let m = ResourceManifest::from_value(&json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": "shop"}, "data": {"v": value}}))
            .unwrap();
            let d = self
                .mesh()
                .decide(
                    MeshCommand::Resource(ResourceCommand::Apply(m)),
                    &mut Ctx::new(0, 1),
                )
                .unwrap();
            self.append(d);
        }

        fn roll_back(&mut self, to: u64) -> Result<(), Rejection> {
            let mesh = self.mesh();
            let d = decide_rollback(&mesh.timeline, mesh.position, to, "test".into())?;
            self.append(d);
            Ok(())
        }

        fn data(&self, name: &str) -> Option<String> {
            let key = events::schema::ResourceKey::new("ConfigMap", "shop", name);
            self.mesh().resources.get(&key).map(|r| r.body.clone())
        }
    }

    /// Counts the events a fold reads.
    struct Counting<'a> {
        inner: InMemory<'a>,
        read: u64,
    }

    impl EventSource for Counting<'_> {
        type Error = std::convert::Infallible;

        fn read(&mut self, from: u64, to: u64) -> Result<Vec<(Event, Meta)>, Self::Error> {
            let batch = self.inner.read(from, to)?;
            self.read += batch.len() as u64;
            Ok(batch)
        }
    }

    #[test]
    fn chained_rollbacks_fold_from_the_previous_rollback_not_from_the_start() {
        // Each rollback undoes the change just before it: a chain of 40.
        let mut log = Log::default();
        for i in 0..40 {
            log.apply("a", &format!("{i}"));
            log.apply("a", "undone");
            log.roll_back(log.events.len() as u64 - 1).unwrap();
        }
        let end = log.events.len() as u64;
        let mut remembering = Remembering::new(Counting {
            inner: InMemory {
                events: &log.events,
            },
            read: 0,
        });
        let mesh = state_at(&mut remembering, end).unwrap();
        assert_eq!(log.data("a").as_deref(), Some(r#"{"data":{"v":"39"}}"#));
        assert_eq!(mesh, log.mesh());
        // Linear: each event is read a small, bounded number of times (2^40 without memory).
        assert!(
            remembering.inner.read <= 4 * end,
            "{} reads for {end} events",
            remembering.inner.read
        );
        // The same state as the plain fold, on a short chain it can still afford.
        let short = &log.events[..30];
        let plain = state_at(&mut InMemory { events: short }, 30).unwrap();
        let remembered = state_at(&mut Remembering::new(InMemory { events: short }), 30).unwrap();
        assert_eq!(plain, remembered);
    }

    #[test]
    fn a_rollback_restores_the_state_at_its_position_and_keeps_stream_versions() {
        let mut log = Log::default();
        log.apply("a", "1"); // 1
        log.apply("a", "2"); // 2
        log.apply("b", "1"); // 3
        log.roll_back(1).unwrap(); // 4
        let mesh = log.mesh();
        assert_eq!(mesh.position, 4);
        assert!(log.data("a").unwrap().contains("\"1\""));
        assert_eq!(log.data("b"), None, "created after the rollback's position");
        // Decisions after the rollback append at the streams' real versions (the Log asserts).
        log.apply("a", "3"); // 5
        log.apply("b", "2"); // 6
        assert!(log.data("a").unwrap().contains("\"3\""));
        let digests = mesh.concept_digests();
        assert_eq!(digests, log.mesh_at(4).concept_digests());
    }

    #[test]
    fn positions_undone_by_a_rollback_cannot_be_rolled_back_to() {
        let mut log = Log::default();
        for v in ["1", "2", "3", "4"] {
            log.apply("a", v); // 1..4
        }
        log.roll_back(2).unwrap(); // 5 undoes 3 and 4
        let err = log.roll_back(3).unwrap_err();
        assert!(
            err.message
                .contains("undone by the rollback at position 5 (to 2)"),
            "{err}"
        );
        assert!(log
            .roll_back(9)
            .unwrap_err()
            .message
            .contains("nothing to roll back"));
        // To the rollback's own position, or before the undone range, is fine.
        log.apply("a", "6"); // 6
        log.roll_back(5).unwrap(); // 7
        assert!(log.data("a").unwrap().contains("\"2\""));
        log.roll_back(1).unwrap(); // 8
        assert!(log.data("a").unwrap().contains("\"1\""));
    }

    #[test]
    fn nested_rollbacks_replay_to_the_same_state() {
        let mut log = Log::default();
        log.apply("a", "1"); // 1
        log.apply("b", "1"); // 2
        log.roll_back(1).unwrap(); // 3
        log.apply("c", "1"); // 4
        log.roll_back(3).unwrap(); // 5: state at 3 (a only), c undone
        assert_eq!(log.data("c"), None);
        assert_eq!(log.data("b"), None);
        assert!(log.data("a").is_some());
        let mesh = log.mesh();
        assert_eq!(mesh.timeline.rollbacks.len(), 2, "{:?}", mesh.timeline);
        assert_eq!(mesh.timeline.rollbacks[1], Rollback { at: 5, to: 3 });
    }

    impl Log {
        fn mesh_at(&self, position: u64) -> Mesh {
            state_at(
                &mut InMemory {
                    events: &self.events,
                },
                position,
            )
            .unwrap()
        }
    }
}
