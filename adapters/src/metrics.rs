//! Daemon metrics, rendered in the Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Counters and gauges of one daemon.
#[derive(Default)]
pub struct Metrics {
    pub log_head: AtomicU64,
    pub delivered: AtomicU64,
    pub projected: AtomicU64,
    pub desired_objects: AtomicU64,
    pub manifest_writes: AtomicU64,
    pub manifest_deletes: AtomicU64,
    pub projection_errors: AtomicU64,
    pub conflict_retries: AtomicU64,
    pub heartbeats: AtomicU64,
    pub heartbeats_unknown: AtomicU64,
    pub etcd_projected: AtomicU64,
    pub etcd_puts: AtomicU64,
    pub etcd_deletes: AtomicU64,
    pub etcd_errors: AtomicU64,
    pub kube_applies: AtomicU64,
    pub kube_status_applies: AtomicU64,
    pub kube_deletes: AtomicU64,
    pub kube_apply_errors: AtomicU64,
    pub kube_conflicts: AtomicU64,
    pub kube_events: AtomicU64,
    pub kube_leader: AtomicU64,
    pub kube_projected: AtomicU64,
    pub kube_observations: AtomicU64,
    pub kube_observed_events: AtomicU64,
    pub kube_relists: AtomicU64,
    pub kube_watch_errors: AtomicU64,
    pub kube_lease_transitions: AtomicU64,
    commands: Mutex<BTreeMap<&'static str, u64>>,
    requests: Mutex<BTreeMap<(String, u16), u64>>,
}

impl Metrics {
    pub fn command(&self, outcome: &'static str) {
        *self
            .commands
            .lock()
            .expect("metrics lock")
            .entry(outcome)
            .or_default() += 1;
    }

    pub fn request(&self, method: &str, status: u16) {
        *self
            .requests
            .lock()
            .expect("metrics lock")
            .entry((method.to_string(), status))
            .or_default() += 1;
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let gauge = |out: &mut String, name: &str, help: &str, kind: &str, v: &AtomicU64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        };
        gauge(
            &mut out,
            "meshplane_log_head_position",
            "Last durable position of the event log.",
            "gauge",
            &self.log_head,
        );
        gauge(
            &mut out,
            "meshplane_delivered_position",
            "Last log position folded into the actors.",
            "gauge",
            &self.delivered,
        );
        gauge(
            &mut out,
            "meshplane_projected_position",
            "Last log position whose desired objects were written out.",
            "gauge",
            &self.projected,
        );
        gauge(
            &mut out,
            "meshplane_desired_objects",
            "Desired Kubernetes objects at the projected position.",
            "gauge",
            &self.desired_objects,
        );
        gauge(
            &mut out,
            "meshplane_manifest_writes_total",
            "Manifest files written because their content changed.",
            "counter",
            &self.manifest_writes,
        );
        gauge(
            &mut out,
            "meshplane_manifest_deletes_total",
            "Manifest files removed because their object is no longer desired.",
            "counter",
            &self.manifest_deletes,
        );
        gauge(
            &mut out,
            "meshplane_projection_errors_total",
            "Projection runs that failed.",
            "counter",
            &self.projection_errors,
        );
        gauge(
            &mut out,
            "meshplane_conflict_retries_total",
            "Commands re-decided after an optimistic-concurrency conflict.",
            "counter",
            &self.conflict_retries,
        );
        for (name, help, value) in [
            (
                "meshplane_heartbeats_total",
                "Heartbeats recorded (in memory; never events).",
                &self.heartbeats,
            ),
            (
                "meshplane_heartbeats_unknown_total",
                "Heartbeats of instances that are not registered.",
                &self.heartbeats_unknown,
            ),
            (
                "meshplane_etcd_puts_total",
                "Keys written to etcd by the projection.",
                &self.etcd_puts,
            ),
            (
                "meshplane_etcd_deletes_total",
                "Keys deleted from etcd by the projection.",
                &self.etcd_deletes,
            ),
            (
                "meshplane_etcd_errors_total",
                "Failed etcd projection passes.",
                &self.etcd_errors,
            ),
            (
                "meshplane_kube_applies_total",
                "Objects server-side applied to Kubernetes because their content changed.",
                &self.kube_applies,
            ),
            (
                "meshplane_kube_status_applies_total",
                "Statuses applied to Kubernetes objects meshplane does not own.",
                &self.kube_status_applies,
            ),
            (
                "meshplane_kube_deletes_total",
                "Kubernetes objects meshplane created and deleted because they are no longer desired.",
                &self.kube_deletes,
            ),
            (
                "meshplane_kube_apply_errors_total",
                "Kubernetes writes that failed (each is retried with backoff).",
                &self.kube_apply_errors,
            ),
            (
                "meshplane_kube_conflicts_total",
                "Kubernetes writes that failed again after a 409 and a fresh read.",
                &self.kube_conflicts,
            ),
            (
                "meshplane_kube_events_total",
                "Kubernetes Events recorded about failed writes.",
                &self.kube_events,
            ),
            (
                "meshplane_kube_observations_total",
                "Objects the watchers saw (adds, updates, list items), changed or not.",
                &self.kube_observations,
            ),
            (
                "meshplane_kube_observed_events_total",
                "Observation events appended (objects whose observed fields changed or vanished).",
                &self.kube_observed_events,
            ),
            (
                "meshplane_kube_relists_total",
                "Complete lists the watchers finished (start-up, and after a watch expired).",
                &self.kube_relists,
            ),
            (
                "meshplane_kube_watch_errors_total",
                "Watch or list requests that failed (each is retried by the watcher with backoff).",
                &self.kube_watch_errors,
            ),
            (
                "meshplane_kube_lease_transitions_total",
                "Times this daemon took or lost the leader lease.",
                &self.kube_lease_transitions,
            ),
        ] {
            gauge(&mut out, name, help, "counter", value);
        }
        gauge(
            &mut out,
            "meshplane_etcd_projected_position",
            "Last log position whose etcd keys were written.",
            "gauge",
            &self.etcd_projected,
        );
        gauge(
            &mut out,
            "meshplane_kube_leader",
            "1 while this daemon holds the lease and may write to Kubernetes.",
            "gauge",
            &self.kube_leader,
        );
        gauge(
            &mut out,
            "meshplane_kube_projected_position",
            "Last log position whose desired objects were applied to Kubernetes.",
            "gauge",
            &self.kube_projected,
        );
        let _ = writeln!(out, "# HELP meshplane_commands_total Commands handled, by outcome.\n# TYPE meshplane_commands_total counter");
        for (outcome, n) in self.commands.lock().expect("metrics lock").iter() {
            let _ = writeln!(out, "meshplane_commands_total{{outcome=\"{outcome}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP meshplane_http_requests_total HTTP requests, by method and status.\n# TYPE meshplane_http_requests_total counter");
        for ((method, status), n) in self.requests.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                out,
                "meshplane_http_requests_total{{method=\"{method}\",code=\"{status}\"}} {n}"
            );
        }
        out
    }
}
