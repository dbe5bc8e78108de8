//! Server-side apply of the desired objects.
//!
//! Each pass walks the desired objects (see [`crate::desired`]) and sends only what changed:
//! every object's digest *as sent* (owner uids filled in) is remembered after a successful
//! apply, and an object whose digest is unchanged is not sent again. After a start, or after
//! leadership was regained, the first pass compares against what the cluster holds instead (a
//! list of meshplane's objects by their `app.kubernetes.io/managed-by` label): an object the
//! cluster already matches is not written, so an unchanged restart writes nothing.
//!
//! Objects meshplane manages and no longer desires are deleted; they are known by the label
//! (listed at the start) or because this applier created them, never by name. Writes run with
//! bounded concurrency; a failing object backs off exponentially on its own (the others go on),
//! its failure is counted, logged and recorded as a Kubernetes Event on its source object. A
//! crash between an apply and the next pass is harmless: applies are idempotent, and the next
//! start compares against the cluster.
//!
//! Only the lease holder writes: leadership is checked before every request, so a daemon
//! that loses the lease sends nothing more.

pub mod compare;
pub mod report;
pub mod write;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actors::kinds::Phase;
use events::schema::ResourceKey;
use futures::StreamExt;
use kube::api::{Api, DynamicObject, ListParams};
use kube::Client;
use projections::ObjectRef;
use serde_json::Value;

use self::compare::{covers, digest, fill_owner_uids, uid_lookup, ObjectDigest, UnknownOwner};
use self::write::{perform, Done, Failed, Op};
use crate::desired::{ChunkSink, DesiredItem};
use crate::error::Error;
use crate::kube::kinds;
use crate::kube::lease::Leadership;
use crate::metrics::Metrics;

/// How the applier paces itself.
#[derive(Clone, Debug)]
pub struct ApplyConfig {
    /// Requests in flight at once.
    pub concurrency: usize,
    /// The first retry delay of a failing object; doubled per failure up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Page size of the start-up listing.
    pub list_page: u32,
}

impl Default for ApplyConfig {
    fn default() -> Self {
        ApplyConfig {
            concurrency: 16,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(300),
            list_page: 500,
        }
    }
}

/// What one pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Desired objects and statuses the pass saw.
    pub desired: usize,
    /// Objects found already as desired in the cluster (the first pass after a start).
    pub matched: usize,
    pub applied: usize,
    pub status_applied: usize,
    pub deleted: usize,
    pub failed: usize,
    /// Objects still waiting for their backoff to pass.
    pub backing_off: usize,
    /// Objects listed from the cluster before the pass (0 unless it was a first pass).
    pub listed: usize,
    /// Writes the pass did not send because this daemon is not (or no longer) the leader.
    pub not_leader: bool,
    /// When the earliest backing-off object may be retried.
    pub next_retry: Option<Instant>,
}

impl SyncReport {
    pub fn writes(&self) -> usize {
        self.applied + self.status_applied + self.deleted
    }
}

#[derive(Clone, Debug)]
struct Failure {
    attempts: u32,
    next_at: Instant,
    last_message: String,
}

/// What the cluster held of meshplane's objects when the applier (re)started.
#[derive(Default)]
struct Baseline {
    objects: HashMap<ObjectRef, Value>,
    /// Status of every ServiceFence (meshplane writes the status of ones it does not own).
    statuses: HashMap<ObjectRef, Value>,
}

/// The Kubernetes projection target.
pub struct Applier {
    client: Client,
    leadership: Leadership,
    metrics: Arc<Metrics>,
    config: ApplyConfig,
    /// Digest of each object (and status) as last applied or found in the cluster.
    applied: HashMap<ObjectRef, ObjectDigest>,
    status_applied: HashMap<ObjectRef, ObjectDigest>,
    /// meshplane's objects in the cluster as far as this applier knows, with their uids.
    managed: BTreeMap<ObjectRef, Option<String>>,
    /// uids of meshplane's own objects, for owner references.
    uids: HashMap<ResourceKey, String>,
    failures: HashMap<ObjectRef, Failure>,
    /// Set until a pass has compared against a fresh listing of the cluster.
    baseline: Option<Baseline>,
    needs_listing: bool,
}

impl Applier {
    pub fn new(
        client: Client,
        leadership: Leadership,
        metrics: Arc<Metrics>,
        config: ApplyConfig,
    ) -> Self {
        Applier {
            client,
            leadership,
            metrics,
            config,
            applied: HashMap::new(),
            status_applied: HashMap::new(),
            managed: BTreeMap::new(),
            uids: HashMap::new(),
            failures: HashMap::new(),
            baseline: None,
            needs_listing: true,
        }
    }

    /// Start a pass (then give it the observed owners' uids with
    /// [`ApplyPass::set_observed_uids`], add the desired items, and finish it). When this
    /// daemon is not the leader, the pass sends nothing, and the next pass as leader starts
    /// from a fresh listing.
    pub async fn begin(&mut self) -> Result<ApplyPass<'_>, Error> {
        let mut report = SyncReport::default();
        if !self.leadership.is_leader() {
            self.needs_listing = true;
            report.not_leader = true;
        } else if self.needs_listing {
            let baseline = self.list_cluster().await?;
            report.listed = baseline.objects.len();
            self.managed = baseline
                .objects
                .iter()
                .map(|(r, v)| (r.clone(), compare::uid_of(v)))
                .collect();
            // Owners among meshplane's own objects are known by uid before any is compared,
            // whatever order the walk renders them in.
            self.uids = self
                .managed
                .iter()
                .filter_map(|(r, uid)| {
                    Some((
                        ResourceKey::new(&r.kind, &r.namespace, &r.name),
                        uid.clone()?,
                    ))
                })
                .collect();
            self.applied.clear();
            self.status_applied.clear();
            self.baseline = Some(baseline);
            self.needs_listing = false;
        }
        Ok(ApplyPass {
            applier: self,
            observed_uids: HashMap::new(),
            ops: Vec::new(),
            seen: BTreeSet::new(),
            report,
        })
    }

    /// meshplane's objects in the cluster (by label) and every ServiceFence's status.
    async fn list_cluster(&self) -> Result<Baseline, Error> {
        let mut baseline = Baseline::default();
        let selector = format!(
            "{}={}",
            projections::object::MANAGED_BY_LABEL,
            projections::object::MANAGER
        );
        for kind in kinds::written_kinds() {
            // meshplane writes the status of objects of these kinds that it does not own.
            let status_too = kind.writes_status();
            let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &kind.api_resource());
            let mut params = ListParams::default().limit(self.config.list_page);
            if !status_too {
                params = params.labels(&selector);
            }
            loop {
                let page = match api.list(&params).await {
                    Ok(page) => page,
                    Err(kube::Error::Api(s)) if s.code == 404 => {
                        tracing::warn!(
                            kind = kind.kind,
                            "kind not served by the cluster; nothing of it to compare"
                        );
                        break;
                    }
                    Err(e) => return Err(Error::Kube(format!("listing {}: {e}", kind.plural))),
                };
                for item in page.items {
                    let mut value = serde_json::to_value(&item)
                        .map_err(|e| Error::Kube(format!("listing {}: {e}", kind.plural)))?;
                    // Listed at one version, rendered at another (a VirtualService): the same
                    // object, keyed and compared at the version the projections render.
                    value["apiVersion"] = kind.render_version().into();
                    let r = ObjectRef {
                        api_version: kind.render_version().to_string(),
                        kind: kind.kind.to_string(),
                        namespace: item.metadata.namespace.clone().unwrap_or_default(),
                        name: item.metadata.name.clone().unwrap_or_default(),
                    };
                    let managed = item
                        .metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get(projections::object::MANAGED_BY_LABEL))
                        .is_some_and(|v| v == projections::object::MANAGER);
                    if status_too {
                        if let Some(status) = value.get("status") {
                            baseline.statuses.insert(r.clone(), status.clone());
                        }
                    }
                    if managed {
                        baseline.objects.insert(r, value);
                    }
                }
                match page.metadata.continue_.filter(|c| !c.is_empty()) {
                    Some(token) => params = params.continue_token(&token),
                    None => break,
                }
            }
        }
        Ok(baseline)
    }

    fn backoff(&self, attempts: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(20));
        self.config
            .backoff_base
            .saturating_mul(factor)
            .min(self.config.backoff_max)
    }
}

/// One pass in progress: desired items go in chunk by chunk; `finish` sends the writes.
pub struct ApplyPass<'a> {
    applier: &'a mut Applier,
    observed_uids: HashMap<ResourceKey, String>,
    /// Writes in the order they will be sent (see [`phase`]).
    ops: Vec<(Op, Option<ObjectDigest>)>,
    seen: BTreeSet<ObjectRef>,
    report: SyncReport,
}

/// The order of writes within a pass, as the kind table says: objects others live in or are
/// owned by go first (namespaces, then ServiceFences, whose uids fill the Sidecars' owner
/// references), then everything else, and statuses last (their objects must exist).
fn phase(op: &Op) -> Phase {
    match op {
        Op::Status { .. } => Phase::Statuses,
        _ => kinds::written(&op.object().kind)
            .and_then(|k| k.write)
            .map_or(Phase::Objects, |w| w.phase),
    }
}

/// Take `status` out of an object, as a status-subresource apply body of its own (apiVersion,
/// kind, name, namespace and the status).
fn split_status(object: &mut Value) -> Option<Value> {
    let status = object.as_object_mut()?.remove("status")?;
    if status.is_null() {
        return None;
    }
    let mut metadata = serde_json::Map::new();
    for field in ["name", "namespace"] {
        if let Some(v) = object["metadata"].get(field) {
            metadata.insert(field.into(), v.clone());
        }
    }
    Some(serde_json::json!({
        "apiVersion": object["apiVersion"],
        "kind": object["kind"],
        "metadata": metadata,
        "status": status,
    }))
}

impl ApplyPass<'_> {
    /// The uids of observed objects that generated objects may be owned by (ServiceFences
    /// written by others), for the objects added from now on.
    pub fn set_observed_uids(&mut self, observed_uids: HashMap<ResourceKey, String>) {
        self.observed_uids = observed_uids;
    }

    /// Compare a chunk of desired items and queue what must be written.
    pub fn add(&mut self, items: Vec<DesiredItem>) {
        for item in items {
            self.report.desired += 1;
            match item {
                DesiredItem::Object(r, object) => {
                    let mut value = object.to_value();
                    self.seen.insert(r.clone());
                    // A ServiceFence's status is a subresource: the API server ignores a status
                    // sent with the object, so it is applied on its own.
                    let status = kinds::written(&r.kind)
                        .is_some_and(|k| k.writes_status())
                        .then(|| split_status(&mut value))
                        .flatten();
                    self.consider(r.clone(), value, false);
                    if let Some(status) = status {
                        self.consider(r, status, true);
                    }
                }
                DesiredItem::Status(r, value) => self.consider(r, value, true),
                // Reported by the walk; never written.
                DesiredItem::Unprojectable(..) => self.report.desired -= 1,
            }
        }
    }

    fn consider(&mut self, r: ObjectRef, mut value: Value, status: bool) {
        let applier = &mut *self.applier;
        if !status {
            fill_owner_uids(
                &mut value,
                &uid_lookup(&applier.uids, &self.observed_uids),
                UnknownOwner::Keep,
            );
        }
        let d = digest(&value);
        let known = if status {
            applier.status_applied.get(&r)
        } else {
            applier.applied.get(&r)
        };
        if known == Some(&d) {
            return;
        }
        if let Some(baseline) = &applier.baseline {
            let matched = if status {
                baseline
                    .statuses
                    .get(&r)
                    .is_some_and(|have| covers(have, &value["status"]))
            } else {
                baseline
                    .objects
                    .get(&r)
                    .is_some_and(|have| covers(have, &value))
            };
            if matched {
                self.report.matched += 1;
                if status {
                    applier.status_applied.insert(r, d);
                } else {
                    if let Some(uid) = baseline.objects.get(&r).and_then(compare::uid_of) {
                        applier
                            .uids
                            .insert(ResourceKey::new(&r.kind, &r.namespace, &r.name), uid);
                    }
                    applier.applied.insert(r, d);
                }
                return;
            }
        }
        if applier
            .failures
            .get(&r)
            .is_some_and(|f| f.next_at > Instant::now())
        {
            self.report.backing_off += 1;
            return;
        }
        let op = if status {
            Op::Status { object: r, value }
        } else {
            Op::Apply { object: r, value }
        };
        self.ops.push((op, Some(d)));
    }

    /// Send the queued writes and the deletes of objects no longer desired. Call only after
    /// every desired item was added (an incomplete pass must not delete anything).
    pub async fn finish(mut self) -> SyncReport {
        let applier = &mut *self.applier;
        applier.baseline = None;
        let deletes: Vec<(Op, Option<ObjectDigest>)> = applier
            .managed
            .iter()
            .filter(|(r, _)| !self.seen.contains(*r))
            .filter(|(r, _)| {
                applier
                    .failures
                    .get(*r)
                    .is_none_or(|f| f.next_at <= Instant::now())
            })
            .map(|(r, uid)| {
                (
                    Op::Delete {
                        object: r.clone(),
                        uid: uid.clone(),
                    },
                    None,
                )
            })
            .collect();
        if self.report.not_leader {
            return self.report;
        }
        let mut ops = std::mem::take(&mut self.ops);
        ops.sort_by_key(|(op, _)| phase(op));
        let mut start = 0;
        while start < ops.len() {
            let p = phase(&ops[start].0);
            let end = ops[start..]
                .iter()
                .position(|(op, _)| phase(op) != p)
                .map_or(ops.len(), |n| start + n);
            let mut batch: Vec<(Op, Option<ObjectDigest>)> = ops[start..end].to_vec();
            // Owners applied in the earlier phases now have uids; references to owners still
            // unknown are left out.
            for (op, d) in batch.iter_mut() {
                if let Op::Apply { value, .. } = op {
                    fill_owner_uids(
                        value,
                        &uid_lookup(&applier.uids, &self.observed_uids),
                        UnknownOwner::Drop,
                    );
                    *d = Some(digest(value));
                }
            }
            if !run_batch(applier, batch, &mut self.report).await {
                self.report.not_leader = true;
                return self.report;
            }
            start = end;
        }
        if !run_batch(applier, deletes, &mut self.report).await {
            self.report.not_leader = true;
        }
        self.report.next_retry = applier.failures.values().map(|f| f.next_at).min();
        self.report
    }
}

impl ChunkSink for ApplyPass<'_> {
    async fn take(&mut self, chunk: Vec<DesiredItem>) -> Result<(), String> {
        self.add(chunk);
        Ok(())
    }
}

/// Send a batch of writes with bounded concurrency. Returns false when leadership was lost
/// (the writes not yet sent are dropped; they stay pending for the next leader pass).
async fn run_batch(
    applier: &mut Applier,
    batch: Vec<(Op, Option<ObjectDigest>)>,
    report: &mut SyncReport,
) -> bool {
    if batch.is_empty() {
        return true;
    }
    let client = applier.client.clone();
    let leadership = applier.leadership.clone();
    // Each write with its digest and result (`None`: not sent, leadership was lost).
    type Sent = (Op, Option<ObjectDigest>, Option<Result<Done, Failed>>);
    let results: Vec<Sent> = futures::stream::iter(batch)
        .map(|(op, d)| {
            let client = client.clone();
            let leadership = leadership.clone();
            async move {
                // Checked right before each request: a lost lease stops writes at once.
                if !leadership.is_leader() {
                    return (op, d, None);
                }
                let result = perform(&client, &op).await;
                (op, d, Some(result))
            }
        })
        .buffer_unordered(applier.config.concurrency.max(1))
        .collect()
        .await;
    let mut leader = true;
    let mut warnings = Vec::new();
    for (op, d, result) in results {
        let Some(result) = result else {
            leader = false;
            continue;
        };
        let r = op.object().clone();
        match result {
            Ok(done) => {
                applier.failures.remove(&r);
                let key = ResourceKey::new(&r.kind, &r.namespace, &r.name);
                match (&op, done) {
                    (Op::Apply { .. }, Done::Applied { uid }) => {
                        report.applied += 1;
                        applier.metrics.kube_applies.fetch_add(1, Ordering::Relaxed);
                        if let Some(uid) = &uid {
                            applier.uids.insert(key, uid.clone());
                        }
                        applier.managed.insert(r.clone(), uid);
                        if let Some(d) = d {
                            applier.applied.insert(r, d);
                        }
                    }
                    (Op::Status { .. }, _) => {
                        report.status_applied += 1;
                        applier
                            .metrics
                            .kube_status_applies
                            .fetch_add(1, Ordering::Relaxed);
                        if let Some(d) = d {
                            applier.status_applied.insert(r, d);
                        }
                    }
                    (Op::Delete { .. }, _) | (_, Done::Deleted) => {
                        report.deleted += 1;
                        applier.metrics.kube_deletes.fetch_add(1, Ordering::Relaxed);
                        applier.managed.remove(&r);
                        applier.applied.remove(&r);
                        applier.uids.remove(&key);
                    }
                }
            }
            Err(failure) => {
                report.failed += 1;
                applier
                    .metrics
                    .kube_apply_errors
                    .fetch_add(1, Ordering::Relaxed);
                if failure.conflicted {
                    applier
                        .metrics
                        .kube_conflicts
                        .fetch_add(1, Ordering::Relaxed);
                }
                let message = format!("meshplane could not {} {r}: {failure}", op.verb());
                let previous = applier.failures.get(&r).cloned();
                let attempts = previous.as_ref().map_or(1, |f| f.attempts + 1);
                let delay = applier.backoff(attempts);
                tracing::warn!(object = %r, attempts, retry_in = ?delay, error = %failure, "kubernetes write failed");
                // One Event per streak of the same failure, not one per retry.
                if previous.as_ref().is_none_or(|f| f.last_message != message) {
                    let value = match &op {
                        Op::Apply { value, .. } | Op::Status { value, .. } => Some(value.clone()),
                        Op::Delete { .. } => None,
                    };
                    warnings.push((report::source_of(value.as_ref(), &r), message.clone()));
                }
                applier.failures.insert(
                    r,
                    Failure {
                        attempts,
                        next_at: Instant::now() + delay,
                        last_message: message,
                    },
                );
            }
        }
    }
    for (about, message) in warnings {
        if !applier.leadership.is_leader() {
            break;
        }
        applier.metrics.kube_events.fetch_add(1, Ordering::Relaxed);
        report::warn(&applier.client, about, "ApplyFailed", message).await;
    }
    leader
}
