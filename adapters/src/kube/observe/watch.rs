//! The watcher tasks: one per kind, `kube::runtime::watcher` over a dynamic `Api` of all
//! namespaces, with the runtime's default backoff after errors.
//!
//! Runtime events become commands of the observed-cluster concept:
//!
//! | watcher event | command |
//! |---|---|
//! | `Init` (a list starts: at start-up, and after the watch expired, e.g. `410 Gone`) | start collecting the keys present |
//! | `InitApply(o)` (an item of that list) | `Observe` (batched), key added to the present set |
//! | `InitDone` (the list is complete) | flush, then `Relisted { present }` |
//! | `Apply(o)` | `Observe` |
//! | `Delete(o)` | `Gone` |
//!
//! Deletions therefore come only from a seen delete or a complete list: a list that fails
//! halfway restarts with a new `Init` and its partial present set is discarded, and the decider
//! appends nothing for unchanged objects, so a relist costs no events.
//!
//! Consecutive events that the stream has ready are batched (up to [`BATCH`] objects per
//! command; a list page arrives at once), without waiting for more. A batch's commands keep the
//! order of the events: observations and deletions never overtake each other.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use actors::cluster::{ClusterCommand, Observation};
use actors::MeshCommand;
use events::schema::cluster::stream_of;
use events::schema::ResourceKey;
use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;

use super::reduce::{key_of, observation};
use crate::host::{DispatchError, Dispatcher};
use crate::kube::kinds::ApiKind;
use crate::metrics::Metrics;

/// Most objects per `Observe` or `Gone` command (one log transaction).
pub const BATCH: usize = 1000;
/// Objects per list page (`limit`), as client-go pages.
pub const PAGE_SIZE: u32 = 500;
/// First wait before a failed command is sent again; doubles up to [`RETRY_MAX`].
const RETRY_BASE: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(10);
/// A command the decider rejects is sent this many times, then dropped (a rejection is about
/// the command's content, so it will not pass later; the next relist observes again).
const REJECTED_ATTEMPTS: u32 = 3;

/// Start one watcher task per kind on the current actix/tokio local runtime. The tasks run
/// until aborted; errors are counted, logged and retried, never fatal.
pub fn spawn_watchers(
    client: kube::Client,
    dispatcher: Dispatcher,
    metrics: Arc<Metrics>,
    kinds: &[ApiKind],
) -> Vec<tokio::task::JoinHandle<()>> {
    kinds
        .iter()
        .map(|kind| {
            actix_rt::spawn(watch_kind(
                client.clone(),
                dispatcher.clone(),
                metrics.clone(),
                *kind,
            ))
        })
        .collect()
}

/// Watch one kind in every namespace, forever.
async fn watch_kind(
    client: kube::Client,
    dispatcher: Dispatcher,
    metrics: Arc<Metrics>,
    kind: ApiKind,
) {
    let api = Api::<DynamicObject>::all_with(client, &kind.api_resource());
    let config = watcher::Config::default().page_size(PAGE_SIZE);
    let events = watcher::watcher(api, config)
        .default_backoff()
        .ready_chunks(BATCH);
    let mut events = std::pin::pin!(events);
    let mut recorder = Recorder::new(dispatcher, metrics.clone(), kind);
    tracing::info!(kind = kind.kind, "watching");
    while let Some(ready) = events.next().await {
        for event in ready {
            match event {
                Ok(event) => recorder.record(event).await,
                Err(error) => {
                    metrics.kube_watch_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(kind = kind.kind, %error, "watch failed; the watcher retries with backoff");
                }
            }
        }
        recorder.flush().await;
    }
    // The runtime's watcher never ends; say so if it ever does.
    tracing::error!(kind = kind.kind, "watch stream ended");
}

/// Turns one kind's watcher events into observed-cluster commands.
struct Recorder {
    dispatcher: Dispatcher,
    metrics: Arc<Metrics>,
    kind: ApiKind,
    /// The kind's stream (`cluster/{kind}`) and its version as last seen: this watcher is its
    /// only writer, so the version's growth is the number of events its commands appended.
    stream: String,
    stream_version: u64,
    /// While a list is in progress: the keys it has held so far.
    listing: Option<BTreeSet<ResourceKey>>,
    /// Observations not yet sent (never both non-empty: a switch flushes).
    observed: Vec<Observation>,
    gone: Vec<ResourceKey>,
}

impl Recorder {
    fn new(dispatcher: Dispatcher, metrics: Arc<Metrics>, kind: ApiKind) -> Self {
        let stream = stream_of(kind.kind);
        let stream_version = dispatcher.store().stream_version(&stream).unwrap_or(0);
        Recorder {
            dispatcher,
            metrics,
            kind,
            stream,
            stream_version,
            listing: None,
            observed: Vec::new(),
            gone: Vec::new(),
        }
    }

    async fn record(&mut self, event: Event<DynamicObject>) {
        match event {
            Event::Init => {
                self.flush().await;
                if self.listing.is_some() {
                    tracing::info!(
                        kind = self.kind.kind,
                        "list restarted; the partial list removes nothing"
                    );
                }
                self.listing = Some(BTreeSet::new());
            }
            Event::InitApply(object) => self.seen(&object).await,
            Event::Apply(object) => self.seen(&object).await,
            Event::Delete(object) => {
                if let Some(key) = key_of(&self.kind, &object) {
                    self.push_gone(key).await;
                }
            }
            Event::InitDone => {
                self.flush().await;
                match self.listing.take() {
                    Some(present) => {
                        let listed = present.len();
                        self.dispatch(ClusterCommand::Relisted {
                            kind: self.kind.kind.to_string(),
                            present,
                        })
                        .await;
                        self.metrics.kube_relists.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(kind = self.kind.kind, listed, "list complete");
                    }
                    None => tracing::warn!(
                        kind = self.kind.kind,
                        "a list ended that never started; nothing removed"
                    ),
                }
            }
        }
    }

    /// An object added, updated or listed.
    async fn seen(&mut self, object: &DynamicObject) {
        self.metrics
            .kube_observations
            .fetch_add(1, Ordering::Relaxed);
        match observation(&self.kind, object) {
            Some(o) => {
                if let Some(present) = &mut self.listing {
                    present.insert(o.key.clone());
                }
                self.push_observed(o).await;
            }
            // Not observed (one of meshplane's own projections). While listing it is simply
            // not present; on a live update it is reported gone, which appends nothing unless
            // an earlier copy (from before meshplane took it over) had been observed.
            None if self.listing.is_none() => {
                if let Some(key) = key_of(&self.kind, object) {
                    self.push_gone(key).await;
                }
            }
            None => {}
        }
    }

    async fn push_observed(&mut self, o: Observation) {
        if !self.gone.is_empty() {
            self.flush().await;
        }
        self.observed.push(o);
        if self.observed.len() >= BATCH {
            self.flush().await;
        }
    }

    async fn push_gone(&mut self, key: ResourceKey) {
        if !self.observed.is_empty() {
            self.flush().await;
        }
        self.gone.push(key);
        if self.gone.len() >= BATCH {
            self.flush().await;
        }
    }

    /// Send what is pending.
    async fn flush(&mut self) {
        let kind = self.kind.kind.to_string();
        if !self.observed.is_empty() {
            let objects = std::mem::take(&mut self.observed);
            self.dispatch(ClusterCommand::Observe { kind, objects })
                .await;
        } else if !self.gone.is_empty() {
            let keys = std::mem::take(&mut self.gone);
            self.dispatch(ClusterCommand::Gone { kind, keys }).await;
        }
    }

    /// Execute a command, retrying with backoff until it is durable. Only a command the
    /// decider rejects is given up on (after [`REJECTED_ATTEMPTS`]).
    async fn dispatch(&mut self, command: ClusterCommand) {
        let mut wait = RETRY_BASE;
        let mut rejected = 0;
        loop {
            match self
                .dispatcher
                .execute(MeshCommand::Cluster(command.clone()))
                .await
            {
                Ok(executed) => {
                    if executed.position.is_some() {
                        self.count_appended();
                    }
                    return;
                }
                Err(error) => {
                    if matches!(error, DispatchError::Rejected { .. }) {
                        rejected += 1;
                        if rejected >= REJECTED_ATTEMPTS {
                            tracing::error!(kind = self.kind.kind, %error, "observation rejected; dropped");
                            return;
                        }
                    }
                    tracing::warn!(kind = self.kind.kind, %error, retry_in = ?wait, "recording an observation failed; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(RETRY_MAX);
                }
            }
        }
    }

    /// Count the events the last command appended (the growth of this kind's stream).
    fn count_appended(&mut self) {
        match self.dispatcher.store().stream_version(&self.stream) {
            Ok(version) => {
                let appended = version.saturating_sub(self.stream_version);
                self.stream_version = version;
                self.metrics
                    .kube_observed_events
                    .fetch_add(appended, Ordering::Relaxed);
            }
            Err(error) => {
                tracing::warn!(stream = %self.stream, %error, "reading the stream version failed")
            }
        }
    }
}
