//! The dispatcher: command → decision (in the concept's actor) → durable append → delivery of
//! the appended events to every actor in log order → answer. And the start-up fold.

use std::sync::{Arc, Mutex};

use actix::MailboxError;
use actors::mesh::meta_of;
use actors::registry::ConceptSet;
use actors::timeline::{self, Timeline};
use actors::{Decision, Mesh, MeshCommand, Meta, Outcome, Registered, Rejection};
use events::schema::RolledBack;
use events::{Event, EventStore, NewEvent, StoreError, StreamAppend, Transaction};
use tokio::sync::{oneshot, watch};
use uuid::Uuid;

use super::actor::Read;
use super::fold::{fold, StoreSource};
use super::handle::{start_all, ActorHandle, Handle};
use super::memory::{Memories, Memory};
use crate::clock;
use crate::error::Error;
use crate::metrics::Metrics;

/// How often a command is re-decided after losing an optimistic-concurrency race.
const MAX_ATTEMPTS: usize = 10;
/// Events read from the log per delivery step.
const DELIVERY_BATCH: usize = 1024;

/// The outcome of one accepted command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Executed {
    pub outcome: Outcome,
    /// Position of the command's last event; `None` when it appended nothing.
    pub position: Option<u64>,
    /// Per-item outcomes of a multi-item command (see `Decision::item_outcomes`).
    pub item_outcomes: Vec<Outcome>,
}

/// Sees every durable event, in log order, as it is delivered to the actors: for adapters that
/// keep an in-memory index in step with the log (the liveness monitor, caller attribution).
/// Runs on the delivery task, so it must be quick and must not block.
pub trait Observer: Send + std::marker::Sync {
    fn observe(&self, event: &Event, meta: &Meta);
    /// The whole state was replaced (a rollback): rebuild the index from it.
    fn reset(&self, mesh: &Mesh);
}

/// Why a command did not go through.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// The decider refused command number `index` of the request.
    #[error("{rejection}")]
    Rejected { index: usize, rejection: Rejection },
    /// Commands `first` and `index` of the request target the same object.
    #[error("command {index} names the same object as command {first}")]
    Duplicate { index: usize, first: usize },
    /// The log refused or failed the append.
    #[error("event log: {0}")]
    Store(#[from] StoreError),
    /// Lost the optimistic-concurrency race on every attempt.
    #[error("the object kept changing concurrently; gave up after {MAX_ATTEMPTS} attempts")]
    Contended,
    /// An actor or the delivery loop is gone.
    #[error("actor host stopped: {0}")]
    Stopped(String),
}

impl From<MailboxError> for DispatchError {
    fn from(e: MailboxError) -> Self {
        DispatchError::Stopped(e.to_string())
    }
}

/// The running host: concept actors plus the loop that delivers durable events to them.
/// Cheap to clone; every clone drives the same actors.
#[derive(Clone)]
pub struct Dispatcher {
    store: Arc<dyn EventStore>,
    /// Every concept's actor, in registry order (indexed by `ConceptId`).
    actors: Arc<[Arc<dyn Handle>]>,
    /// Every concept's memory beside the log.
    memories: Memories,
    observers: Arc<[Arc<dyn Observer>]>,
    /// The rollbacks that shaped the delivered state.
    timeline: Arc<Mutex<Timeline>>,
    delivered: watch::Receiver<u64>,
    failure: Arc<Mutex<Option<String>>>,
    metrics: Arc<Metrics>,
    /// Held by commands re-deciding after a conflict, so retriers take turns instead of
    /// starving each other on a hot object; first attempts stay fully concurrent.
    retry_turn: Arc<tokio::sync::Mutex<()>>,
}

impl Dispatcher {
    /// Fold the whole log, start one actor per concept from the folded state, and start the
    /// delivery loop from the log's head. Must run inside an actix `System`.
    pub fn start(store: Arc<dyn EventStore>, metrics: Arc<Metrics>) -> Result<Dispatcher, Error> {
        let mesh = fold(store.as_ref(), None)?;
        Self::start_from(store, metrics, mesh, Vec::new())
    }

    /// Start from a mesh already folded from `store` up to `mesh.position`, with every
    /// concept's memory recalled from it at `now_ms`, and observers of every event delivered
    /// after that. Must run inside an actix `System`.
    pub fn start_from(
        store: Arc<dyn EventStore>,
        metrics: Arc<Metrics>,
        mut mesh: Mesh,
        observers: Vec<Arc<dyn Observer>>,
    ) -> Result<Dispatcher, Error> {
        let position = mesh.position;
        let timeline = Arc::new(Mutex::new(mesh.timeline.clone()));
        tracing::info!(position, "folded the event log");
        // The start-up grace of the memories counts from now, after the fold: a long fold
        // must not eat into the time sidecars have to send their first heartbeat.
        let memories = Memories::recall(&mesh, clock::now_ms());
        let actors = start_all(&mut mesh).into();
        let (delivered_tx, delivered) = watch::channel(position);
        let failure = Arc::new(Mutex::new(None));
        metrics
            .delivered
            .store(position, std::sync::atomic::Ordering::Relaxed);
        metrics
            .log_head
            .store(store.head(), std::sync::atomic::Ordering::Relaxed);
        let dispatcher = Dispatcher {
            store,
            actors,
            memories,
            observers: observers.into(),
            timeline,
            delivered,
            failure,
            metrics,
            retry_turn: Arc::default(),
        };
        let delivery = dispatcher.clone();
        actix_rt::spawn(async move {
            if let Err(e) = delivery.deliver_forever(position + 1, delivered_tx).await {
                tracing::error!(error = %e, "event delivery stopped; the daemon is no longer ready");
                *delivery.failure.lock().expect("failure lock") = Some(e.to_string());
            }
        });
        Ok(dispatcher)
    }

    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }

    /// The last position folded into every actor.
    pub fn delivered(&self) -> u64 {
        *self.delivered.borrow()
    }

    /// A receiver that changes whenever delivery advances.
    pub fn watch_delivered(&self) -> watch::Receiver<u64> {
        self.delivered.clone()
    }

    /// Why delivery stopped, if it did (the daemon is then not ready).
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().expect("failure lock").clone()
    }

    /// The rollbacks that shaped the delivered state.
    pub fn timeline(&self) -> Timeline {
        self.timeline.lock().expect("timeline lock").clone()
    }

    /// Roll every concept back to its state at position `to`: appends the rollback event and
    /// answers once the actors hold the restored state. Refused (nothing appended) when `to`
    /// is not before the end of the log or was undone by an earlier rollback.
    pub async fn roll_back(&self, to: u64, reason: String) -> Result<Executed, DispatchError> {
        // Decide against everything appended so far.
        self.wait_delivered(self.store.head()).await?;
        let end = self.delivered();
        let decision =
            timeline::decide_rollback(&self.timeline(), end, to, reason).map_err(|rejection| {
                DispatchError::Rejected {
                    index: 0,
                    rejection,
                }
            })?;
        let txn = transaction(std::slice::from_ref(&decision), clock::now_ms())?;
        let (tx, rx) = oneshot::channel();
        self.store.submit(txn, Box::new(move |r| drop(tx.send(r))));
        let appended = rx
            .await
            .map_err(|_| DispatchError::Stopped("the log writer dropped an append".into()))??;
        self.wait_delivered(appended.last_position).await?;
        Ok(self.finish(&[decision], appended.first_position).remove(0))
    }

    /// Execute one command.
    pub async fn execute(&self, command: MeshCommand) -> Result<Executed, DispatchError> {
        let mut done = self.execute_all(vec![command]).await?;
        Ok(done.pop().expect("one result per command"))
    }

    /// Decide every command, then append all their events in one atomic transaction: either
    /// every command takes effect or none does. Answers once the events are durable and folded
    /// into the actors, so a read after the answer sees them.
    pub async fn execute_all(
        &self,
        commands: Vec<MeshCommand>,
    ) -> Result<Vec<Executed>, DispatchError> {
        let mut turn = None;
        for attempt in 1..=MAX_ATTEMPTS {
            let now_ms = clock::now_ms();
            let mut decisions = Vec::with_capacity(commands.len());
            for (index, result) in self
                .decide_all(&commands, now_ms)
                .await?
                .into_iter()
                .enumerate()
            {
                match result {
                    Ok(d) => decisions.push(d),
                    Err(rejection) => {
                        self.metrics.command("rejected");
                        return Err(DispatchError::Rejected { index, rejection });
                    }
                }
            }
            reject_duplicate_targets(&decisions)?;
            let txn = transaction(&decisions, now_ms)?;
            if txn.appends.is_empty() {
                return Ok(self.finish(&decisions, 0));
            }
            let (tx, rx) = oneshot::channel();
            self.store.submit(txn, Box::new(move |r| drop(tx.send(r))));
            let result = rx
                .await
                .map_err(|_| DispatchError::Stopped("the log writer dropped an append".into()))?;
            match result {
                Ok(appended) => {
                    self.metrics
                        .log_head
                        .fetch_max(appended.last_position, std::sync::atomic::Ordering::Relaxed);
                    self.wait_delivered(appended.last_position).await?;
                    return Ok(self.finish(&decisions, appended.first_position));
                }
                Err(StoreError::WrongExpectedVersion { stream, .. }) if attempt < MAX_ATTEMPTS => {
                    // Someone else changed the object between our decision and our append:
                    // wait until their events are folded, then decide again.
                    self.metrics
                        .conflict_retries
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::debug!(%stream, attempt, "optimistic-concurrency conflict; deciding again");
                    if turn.is_none() {
                        turn = Some(self.retry_turn.lock().await);
                    }
                    self.wait_delivered(self.store.head()).await?;
                }
                Err(StoreError::WrongExpectedVersion { .. }) => {
                    return Err(DispatchError::Contended)
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(DispatchError::Contended)
    }

    /// Assemble a consistent view of every concept's state: every actor is read at the same
    /// delivered position (delivery is paused between batches only, so the reads are retried
    /// until they agree).
    pub async fn mesh(&self) -> Result<Mesh, DispatchError> {
        loop {
            let mut mesh = Mesh::default();
            let mut positions = Vec::with_capacity(self.actors.len());
            for actor in self.actors.iter() {
                let (into, position) = actor.snapshot().await?;
                into(&mut mesh);
                positions.push(position);
            }
            if positions.windows(2).all(|w| w[0] == w[1]) {
                mesh.position = positions.first().copied().unwrap_or(0);
                mesh.timeline = self.timeline();
                return Ok(mesh);
            }
        }
    }

    /// Run a read-only query on concept `C`'s state and the position it reflects.
    pub async fn read<C: Registered, R: Send + 'static>(
        &self,
        query: impl FnOnce(&C::State, u64) -> R + Send + 'static,
    ) -> Result<R, DispatchError> {
        let handle = self.actors[C::ID as usize].as_any();
        let handle = handle
            .downcast_ref::<ActorHandle<C>>()
            .unwrap_or_else(|| unreachable!("the actor of {} has its type", C::NAME));
        Ok(handle.addr.send(Read(Box::new(query))).await?)
    }

    /// Concept `C`'s memory beside the log.
    pub fn memory<C: Registered>(&self) -> Arc<Memory<C>> {
        self.memories.of::<C>()
    }

    /// Decide commands in order: each run of commands for one concept goes to its actor in
    /// one message. Stops at the first rejection (the answer then ends with it).
    async fn decide_all(
        &self,
        commands: &[MeshCommand],
        now_ms: i64,
    ) -> Result<Vec<Result<Decision, Rejection>>, DispatchError> {
        let mut out = Vec::with_capacity(commands.len());
        let mut rest = commands;
        while let Some(first) = rest.first() {
            let run = rest
                .iter()
                .take_while(|c| c.concept() == first.concept())
                .count();
            let (this, next) = rest.split_at(run);
            rest = next;
            let seed = clock::fresh_seed();
            let actor = &self.actors[first.concept() as usize];
            let answers = actor.decide_all(this, now_ms, seed).await?;
            let rejected = answers.last().is_some_and(Result::is_err);
            out.extend(answers);
            if rejected {
                break;
            }
        }
        Ok(out)
    }

    fn finish(&self, decisions: &[Decision], first_position: u64) -> Vec<Executed> {
        let mut next = first_position;
        decisions
            .iter()
            .map(|d| {
                self.metrics.command(d.outcome.as_str());
                let position = if d.events.is_empty() {
                    None
                } else {
                    next += d.events.len() as u64;
                    Some(next - 1)
                };
                Executed {
                    outcome: d.outcome,
                    position,
                    item_outcomes: d.item_outcomes.clone(),
                }
            })
            .collect()
    }

    async fn wait_delivered(&self, position: u64) -> Result<(), DispatchError> {
        let mut delivered = self.delivered.clone();
        let waited = delivered.wait_for(|p| *p >= position).await;
        waited.map(|_| ()).map_err(|_| {
            DispatchError::Stopped(
                self.failure()
                    .unwrap_or_else(|| "event delivery stopped".into()),
            )
        })
    }

    /// Feed every durable event, in log order, to the actors that fold it.
    async fn deliver_forever(&self, from: u64, delivered: watch::Sender<u64>) -> Result<(), Error> {
        let mut subscription = self.store.subscribe(from);
        loop {
            let batch = subscription.next_batch(DELIVERY_BATCH).await?;
            let Some(last) = batch.last().map(|e| e.position) else {
                continue;
            };
            let mut remembered = Vec::with_capacity(batch.len());
            for envelope in &batch {
                let event = envelope.decode()?;
                let meta = meta_of(envelope);
                if let Event::RolledBack(r) = &event {
                    self.memories.remember(&std::mem::take(&mut remembered));
                    self.deliver_rollback(r.clone(), meta).await?;
                    continue;
                }
                let event = Arc::new(event);
                for observer in self.observers.iter() {
                    observer.observe(&event, &meta);
                }
                for id in ConceptSet::folding(&event).iter() {
                    self.actors[id as usize].deliver(event.clone(), meta);
                }
                remembered.push((event, meta));
            }
            self.memories.remember(&remembered);
            drop(remembered);
            // Mailboxes are FIFO: once each actor answers Sync it has folded the whole batch.
            // Actors that folded nothing of the batch still advance their position.
            let host = |e: MailboxError| Error::Host(e.to_string());
            for actor in self.actors.iter() {
                actor.sync(last).await.map_err(host)?;
            }
            self.metrics
                .delivered
                .store(last, std::sync::atomic::Ordering::Relaxed);
            self.metrics
                .log_head
                .fetch_max(last, std::sync::atomic::Ordering::Relaxed);
            if delivered.send(last).is_err() {
                return Ok(());
            }
        }
    }
}

impl Dispatcher {
    /// A rollback event: rebuild the state it names from the log, and hand it to every actor
    /// and observer. Mailboxes are FIFO, so the events delivered before it are folded first.
    async fn deliver_rollback(&self, r: RolledBack, meta: Meta) -> Result<(), Error> {
        let store = self.store.clone();
        let mesh = tokio::task::spawn_blocking(move || {
            let mut source = timeline::Remembering::new(StoreSource::new(store.as_ref(), None));
            timeline::roll_back(&mut source, &r, &meta)
        })
        .await
        .map_err(|e| Error::Host(format!("rollback task failed: {e}")))??;
        tracing::info!(
            at = meta.position,
            to = mesh.timeline.rollbacks.last().map(|r| r.to),
            "rolled back"
        );
        for observer in self.observers.iter() {
            observer.reset(&mesh);
        }
        self.memories.reset(&mesh, clock::now_ms());
        *self.timeline.lock().expect("timeline lock") = mesh.timeline.clone();
        let position = mesh.position;
        let mut mesh = mesh;
        for actor in self.actors.iter() {
            actor.replace(&mut mesh, position);
        }
        Ok(())
    }
}

fn reject_duplicate_targets(decisions: &[Decision]) -> Result<(), DispatchError> {
    let mut seen = std::collections::BTreeMap::new();
    for (index, d) in decisions.iter().enumerate() {
        if let Some(first) = seen.insert(d.stream.as_str(), index) {
            return Err(DispatchError::Duplicate { index, first });
        }
    }
    Ok(())
}

fn transaction(decisions: &[Decision], now_ms: i64) -> Result<Transaction, StoreError> {
    let mut txn = Transaction::default();
    for d in decisions.iter().filter(|d| !d.events.is_empty()) {
        let events = d
            .events
            .iter()
            .map(|e| NewEvent::encode(e, Uuid::now_v7(), now_ms))
            .collect::<Result<Vec<_>, _>>()?;
        txn.appends.push(StreamAppend {
            stream: d.stream.clone(),
            expected: d.expected,
            events,
        });
    }
    Ok(txn)
}
