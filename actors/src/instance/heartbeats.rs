//! The heartbeat table: what the daemon knows of every registered instance's heartbeats, kept
//! in memory beside the log (heartbeats never touch it) as the instance concept's
//! [`Memory`](crate::Concept::Memory).
//!
//! Pure and ordered: the daemon holds it behind a lock and feeds it the wall clock; the
//! simulator feeds it a virtual clock. Both run this one copy, and the same `judge` rules the
//! decider checks transitions against.

use std::collections::BTreeMap;

use events::schema::InstanceKey;
use events::Event;

use super::liveness::{judge, Limits, Seen, Verdict};
use super::{InstanceCommand, InstanceState};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Tracked {
    seen: Seen,
    /// Set while the log has the instance out of service for silence: the last heartbeat that
    /// silence began after (a recovery needs a later one).
    silent: Option<i64>,
    /// A transition for it is being executed; do not decide another.
    pending: bool,
}

/// Heartbeats of every registered instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Heartbeats {
    entries: BTreeMap<InstanceKey, Tracked>,
    limits: Limits,
    /// No verdict can be due before this instant without new input: a lower bound on every
    /// entry's next deadline, found by the last scan. Heartbeats only push deadlines later, so
    /// it stays a bound; any input that could bring a verdict sooner (a registration, a
    /// heartbeat of a silent instance, new limits, a settled transition) resets it to
    /// `i64::MIN`. With 100,000 instances heartbeating every 5 s, [`Heartbeats::due`] then scans
    /// the table about once per interval instead of on every tick.
    earliest: i64,
}

impl Tracked {
    /// The first instant its verdict can change without new input (see `judge`).
    fn next_check(&self, limits: Limits) -> i64 {
        let expiry = limits.expiry_deadline(self.seen.last_heartbeat_ms);
        match self.silent {
            None => expiry.min(limits.out_of_service_deadline(self.seen.last_heartbeat_ms)),
            // A real heartbeat after the silence began: a recovery may be due now.
            Some(since) if self.seen.heartbeat_seen && self.seen.last_heartbeat_ms > since => {
                i64::MIN
            }
            Some(_) => expiry,
        }
    }
}

/// What a heartbeat found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Beat {
    /// Recorded.
    Known,
    /// No such instance is registered (the sidecar should register again).
    Unknown,
}

impl Heartbeats {
    /// A table for the instances of `state`, watched from `started_ms`: every instance that is
    /// not silent gets the grace of a heartbeat at start-up, so nothing is marked out of
    /// service before 2 × the heartbeat interval has passed since the daemon started. Silent
    /// instances keep the evidence of their silence, so restarts never postpone their expiry.
    pub fn new(state: &InstanceState, started_ms: i64) -> Self {
        let entries = state
            .instances
            .iter()
            .map(|(key, instance)| {
                let seen = match &instance.silence {
                    Some(silence) => Seen {
                        last_heartbeat_ms: silence.last_heartbeat_ms,
                        heartbeat_seen: silence.heartbeat_seen,
                    },
                    None => Seen {
                        last_heartbeat_ms: started_ms.max(instance.last_heartbeat_ms),
                        heartbeat_seen: false,
                    },
                };
                let tracked = Tracked {
                    seen,
                    silent: instance.silence.as_ref().map(|s| s.last_heartbeat_ms),
                    pending: false,
                };
                (key.clone(), tracked)
            })
            .collect();
        Heartbeats {
            entries,
            limits: state.limits(),
            earliest: i64::MIN,
        }
    }

    /// After a rollback: the table for the restored instances, keeping the heartbeats already
    /// received from those still registered (a rollback does not silence a live sidecar).
    pub fn rebuild(self, state: &InstanceState, now_ms: i64) -> Self {
        let mut fresh = Heartbeats::new(state, now_ms);
        for (key, tracked) in fresh.entries.iter_mut() {
            if let Some(old) = self.entries.get(key) {
                if old.seen.heartbeat_seen
                    && old.seen.last_heartbeat_ms >= tracked.seen.last_heartbeat_ms
                {
                    tracked.seen = old.seen;
                }
            }
        }
        fresh
    }

    /// Record a heartbeat of `service/instance_id` at `now_ms`.
    pub fn heartbeat(&mut self, service: &str, instance_id: &str, now_ms: i64) -> Beat {
        if self.heartbeats([(service, instance_id)], now_ms).is_empty() {
            Beat::Known
        } else {
            Beat::Unknown
        }
    }

    /// Record many heartbeats; answers which were unknown.
    pub fn heartbeats<'a>(
        &mut self,
        beats: impl IntoIterator<Item = (&'a str, &'a str)>,
        now_ms: i64,
    ) -> Vec<InstanceKey> {
        let mut unknown = Vec::new();
        for (service, instance_id) in beats {
            let key = InstanceKey::new(service, instance_id);
            match self.entries.get_mut(&key) {
                Some(t) => {
                    t.seen = Seen {
                        last_heartbeat_ms: t.seen.last_heartbeat_ms.max(now_ms),
                        heartbeat_seen: true,
                    };
                    if t.silent.is_some() {
                        // May recover: judge at the next tick.
                        self.earliest = i64::MIN;
                    }
                }
                None => unknown.push(key),
            }
        }
        unknown
    }

    /// The last heartbeat seen of an instance (real or the start-up grace), if registered.
    pub fn last_seen(&self, key: &InstanceKey) -> Option<Seen> {
        self.entries.get(key).map(|t| t.seen)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Follow the log (called for every durable event, in order).
    pub fn follow(&mut self, event: &Event) {
        if matches!(
            event,
            Event::InstanceRegistered(_)
                | Event::InstanceOutOfService(_)
                | Event::InstanceRecovered(_)
                | Event::MeshControllerApplied(_)
        ) {
            // A new deadline, or new limits: scan at the next tick.
            self.earliest = i64::MIN;
        }
        match event {
            Event::InstanceRegistered(e) => {
                let seen = Seen {
                    last_heartbeat_ms: e.registry_time_ms,
                    heartbeat_seen: true,
                };
                let entry = self.entries.entry(e.key.clone()).or_insert(Tracked {
                    seen,
                    silent: None,
                    pending: false,
                });
                if seen.last_heartbeat_ms >= entry.seen.last_heartbeat_ms {
                    entry.seen = seen;
                }
                entry.silent = None;
            }
            Event::InstanceDeregistered(e) => {
                self.entries.remove(&e.key);
            }
            Event::InstanceExpired(e) => {
                self.entries.remove(&e.key);
            }
            Event::InstanceOutOfService(e) => {
                if let Some(t) = self.entries.get_mut(&e.key) {
                    t.silent = Some(e.silence.last_heartbeat_ms);
                }
            }
            Event::InstanceRecovered(e) => {
                if let Some(t) = self.entries.get_mut(&e.key) {
                    t.silent = None;
                }
            }
            Event::MeshControllerApplied(e) => {
                self.limits = Limits {
                    heartbeat_interval_ms: e.heartbeat_interval_ms,
                    dead_record_ms: e.dead_record_ms,
                };
            }
            _ => {}
        }
    }

    /// The transitions due at `now_ms`, in key order, each marked pending until
    /// [`Heartbeats::settle`] so one transition is not decided twice.
    pub fn due(&mut self, now_ms: i64) -> Vec<InstanceCommand> {
        if now_ms < self.earliest {
            return Vec::new();
        }
        let limits = self.limits;
        let mut due: Vec<InstanceCommand> = Vec::new();
        let mut earliest = i64::MAX;
        for (key, t) in self.entries.iter_mut() {
            if t.pending {
                continue;
            }
            let Some(verdict) = judge(t.seen, t.silent, now_ms, limits) else {
                earliest = earliest.min(t.next_check(limits));
                continue;
            };
            t.pending = true;
            let key = key.clone();
            due.push(match verdict {
                Verdict::OutOfService(silence) => {
                    InstanceCommand::MarkOutOfService { key, silence }
                }
                Verdict::Expired(silence) => InstanceCommand::Expire { key, silence },
                Verdict::Recovered { heartbeat_ms } => {
                    InstanceCommand::MarkRecovered { key, heartbeat_ms }
                }
            });
        }
        self.earliest = earliest;
        due
    }

    /// The transitions for these instances are done (or abandoned): judge them again.
    pub fn settle<'a>(&mut self, keys: impl IntoIterator<Item = &'a InstanceKey>) {
        self.earliest = i64::MIN;
        for key in keys {
            if let Some(t) = self.entries.get_mut(key) {
                t.pending = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instance::{Registration, Status};
    use crate::{Ctx, Mesh, MeshCommand, Meta};
    use serde_json::json;

    const T0: i64 = 1_795_305_600_000;

    /// A mesh with one service and instances a, b registered at T0; interval 1 s.
    fn mesh() -> Mesh {
        let mut mesh = Mesh::default();
        let mut ctx = Ctx::new(T0, 1);
        mesh.apply_documents(
            &[
                json!({"apiVersion": "mesh.megaease.com/v2alpha1", "kind": "MeshController",
                       "metadata": {"name": "mc"}, "heartbeatInterval": "1s", "registryType": "eureka",
                       "deadRecordTime": "30s"}),
                json!({"apiVersion": "mesh.megaease.com/v2alpha1", "kind": "Tenant", "metadata": {"name": "t"}}),
                json!({"apiVersion": "mesh.megaease.com/v2alpha1", "kind": "Service", "metadata": {"name": "s"},
                       "spec": {"registerTenant": "t"}}),
            ],
            &mut ctx,
        )
        .unwrap();
        for id in ["a", "b"] {
            let r = Registration::from_value(&json!({"serviceName": "s", "instanceID": id,
                "ip": "10.0.0.1", "port": 13001}))
            .unwrap();
            mesh.execute(
                MeshCommand::Instance(InstanceCommand::Register(r)),
                &mut ctx,
            )
            .unwrap();
        }
        mesh
    }

    /// Execute the due commands at `now` against the mesh, feeding the events back to the
    /// tracker as the dispatcher's delivery would.
    fn run(tracker: &mut Heartbeats, mesh: &mut Mesh, now: i64) -> Vec<String> {
        let mut ctx = Ctx::new(now, 2);
        let due = tracker.due(now);
        let mut done = Vec::new();
        for command in due {
            let key = command.key().clone();
            let before = mesh.position;
            let d = mesh
                .execute(MeshCommand::Instance(command), &mut ctx)
                .unwrap();
            for (i, e) in d.events.iter().enumerate() {
                let meta = Meta {
                    position: before + 1 + i as u64,
                    stream_version: 0,
                    recorded_at_ms: now,
                };
                let _ = meta;
                tracker.follow(e);
                done.push(format!("{} {key}", e.event_type()));
            }
            tracker.settle([&key]);
        }
        done
    }

    #[test]
    fn timing_with_a_controlled_clock() {
        let mut mesh = mesh();
        let mut tracker = Heartbeats::new(&mesh.instances, T0);
        // a heartbeats every second; b goes silent after T0.
        let mut t = T0;
        let mut trail = Vec::new();
        while t <= T0 + 3_000 {
            tracker.heartbeat("s", "a", t);
            trail.extend(
                run(&mut tracker, &mut mesh, t)
                    .into_iter()
                    .map(|e| format!("{t} {e}")),
            );
            t += 250;
        }
        // b: last heartbeat T0 (grace), deadline T0 + 2 s: marked exactly at the first tick
        // at or after it, never before.
        assert_eq!(
            trail,
            [format!("{} instance.out_of_service s/b", T0 + 2_000)]
        );
        let status = |mesh: &Mesh, id: &str| {
            mesh.instances
                .get(&InstanceKey::new("s", id))
                .unwrap()
                .status()
        };
        assert_eq!(
            (status(&mesh, "a"), status(&mesh, "b")),
            (Status::Up, Status::OutOfService)
        );
        // b's heartbeats resume: back up at the next tick.
        tracker.heartbeat("s", "b", T0 + 3_100);
        assert_eq!(
            run(&mut tracker, &mut mesh, T0 + 3_250),
            ["instance.recovered s/b"]
        );
        assert_eq!(status(&mesh, "b"), Status::Up);
        // Nothing is decided twice while nothing changes.
        tracker.heartbeat("s", "a", T0 + 3_500);
        tracker.heartbeat("s", "b", T0 + 3_500);
        assert!(run(&mut tracker, &mut mesh, T0 + 3_600).is_empty());
    }

    #[test]
    fn offline_sticks_through_heartbeats() {
        let mut mesh = mesh();
        let mut tracker = Heartbeats::new(&mesh.instances, T0);
        let mut ctx = Ctx::new(T0, 3);
        let key = InstanceKey::new("s", "a");
        let d = mesh
            .execute(
                MeshCommand::Instance(InstanceCommand::TakeOffline {
                    key: key.clone(),
                    reason: "drain".into(),
                }),
                &mut ctx,
            )
            .unwrap();
        for e in &d.events {
            tracker.follow(e);
        }
        for step in 1..=40 {
            let now = T0 + step * 500;
            tracker.heartbeat("s", "a", now);
            tracker.heartbeat("s", "b", now);
            assert!(run(&mut tracker, &mut mesh, now).is_empty(), "step {step}");
            assert_eq!(
                mesh.instances.get(&key).unwrap().status(),
                Status::OutOfService
            );
        }
    }

    #[test]
    fn a_restart_keeps_the_evidence_of_silent_instances() {
        let mut mesh = mesh();
        let mut tracker = Heartbeats::new(&mesh.instances, T0);
        tracker.heartbeat("s", "a", T0 + 20_000);
        // b goes silent at T0 and is marked out of service.
        assert_eq!(
            run(&mut tracker, &mut mesh, T0 + 2_000),
            ["instance.out_of_service s/b"]
        );
        // The daemon restarts 25 s later: a (up) gets the start-up grace, b keeps its silence,
        // so it still expires 30 s after its last heartbeat, not 30 s after the restart.
        let mut restarted = Heartbeats::new(&mesh.instances, T0 + 25_000);
        assert!(run(&mut restarted, &mut mesh, T0 + 26_000).is_empty());
        restarted.heartbeat("s", "a", T0 + 29_500);
        assert_eq!(
            run(&mut restarted, &mut mesh, T0 + 30_000),
            ["instance.expired s/b"]
        );
    }

    #[test]
    fn expired_instances_leave_the_table_and_unknown_heartbeats_are_reported() {
        let mut mesh = mesh();
        let mut tracker = Heartbeats::new(&mesh.instances, T0);
        run(&mut tracker, &mut mesh, T0 + 2_000);
        assert_eq!(
            run(&mut tracker, &mut mesh, T0 + 30_000),
            ["instance.expired s/a", "instance.expired s/b"]
        );
        assert!(tracker.is_empty());
        assert!(mesh.instances.instances.is_empty());
        assert_eq!(tracker.heartbeat("s", "a", T0 + 30_001), Beat::Unknown);
        let unknown = tracker.heartbeats([("s", "a"), ("s", "zz")], T0);
        assert_eq!(unknown.len(), 2);
    }

    /// The skip is exact: at every tick, `due` answers what a full scan answers.
    #[test]
    fn skipping_the_scan_until_the_earliest_deadline_changes_no_verdict() {
        let mut mesh = mesh();
        let mut ctx = Ctx::new(T0, 9);
        for i in 0..40 {
            let r = Registration::from_value(&json!({"serviceName": "s",
                "instanceID": format!("i{i}"), "ip": "10.0.0.2", "port": 13001}))
            .unwrap();
            mesh.execute(
                MeshCommand::Instance(InstanceCommand::Register(r)),
                &mut ctx,
            )
            .unwrap();
        }
        let mut skipping = Heartbeats::new(&mesh.instances, T0);
        let mut scanning = skipping.clone();
        let mut scanned_mesh = mesh.clone();
        // A fixed pseudo-random schedule: each instance beats, pauses, comes back.
        let mut seed: u64 = 7;
        let mut draw = |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        let mut t = T0;
        let mut transitions = Vec::new();
        while t <= T0 + 40_000 {
            for i in 0..40 {
                if draw(10) < 3 {
                    let id = format!("i{i}");
                    skipping.heartbeat("s", &id, t);
                    scanning.heartbeat("s", &id, t);
                }
            }
            scanning.earliest = i64::MIN;
            let a = run(&mut skipping, &mut mesh, t);
            let b = run(&mut scanning, &mut scanned_mesh, t);
            assert_eq!(a, b, "at t={}", t - T0);
            transitions.extend(
                a.into_iter()
                    .map(|e| e.split(' ').next().unwrap().to_string()),
            );
            t += 100 + draw(200) as i64;
        }
        assert_eq!(mesh.instances, scanned_mesh.instances);
        // The schedule did exercise silences and recoveries.
        assert!(transitions.iter().any(|e| e == "instance.out_of_service"));
        assert!(transitions.iter().any(|e| e == "instance.recovered"));
    }
}
