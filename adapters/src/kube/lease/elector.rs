//! The election loop: read the Lease, then create, renew or take it over with optimistic
//! concurrency (the `resourceVersion` read), or wait while another daemon holds it.
//!
//! Expiry of another holder's record is judged by observation, never by comparing its
//! `renewTime` with our wall clock (the clocks of two nodes may disagree): the record is
//! expired once it has stayed unchanged (holder, renewTime, resourceVersion) for its
//! `leaseDurationSeconds` of our own monotonic clock, counted from when we first saw it. Our
//! own leadership ends `lease_duration - renew_every` after the last successful write was
//! sent, strictly before anyone could count our record expired.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, PostParams};
use tokio::time::Instant;

use super::config::LeaseConfig;
use super::leadership::Seat;
use crate::error::Error;

/// The field manager of our writes to the Lease.
const FIELD_MANAGER: &str = "meshplane";

/// What the loop does after a round.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// We lead: renew after `renew_every`.
    Renew,
    /// Another daemon holds the lease: look again after `retry_every`.
    Watch,
    /// Our write lost a race (409): read the Lease again.
    Reread,
}

/// Another holder's record as first seen, and when (our monotonic clock).
#[derive(Debug)]
struct Sighting {
    holder: String,
    renew_time: Option<jiff::Timestamp>,
    resource_version: Option<String>,
    since: Instant,
}

impl Sighting {
    fn of(lease: &Lease, holder: &str, now: Instant) -> Sighting {
        Sighting {
            holder: holder.to_string(),
            renew_time: lease
                .spec
                .as_ref()
                .and_then(|s| s.renew_time.as_ref())
                .map(|t| t.0),
            resource_version: lease.metadata.resource_version.clone(),
            since: now,
        }
    }

    fn same_record(&self, other: &Sighting) -> bool {
        self.holder == other.holder
            && self.renew_time == other.renew_time
            && self.resource_version == other.resource_version
    }
}

pub(crate) struct Elector {
    api: Api<Lease>,
    config: LeaseConfig,
    seat: Seat,
    /// The Lease as our last successful write left it: the next renewal is sent from it
    /// without reading first (its resourceVersion guards the write all the same).
    written: Option<Lease>,
    /// Another holder's unchanged record, while we wait for it to expire.
    sighting: Option<Sighting>,
    /// 409s in a row: the first is re-read at once, later ones after `retry_every`.
    conflicts: u32,
}

impl Elector {
    pub(crate) fn new(client: kube::Client, config: LeaseConfig, seat: Seat) -> Elector {
        Elector {
            api: Api::namespaced(client, &config.namespace),
            config,
            seat,
            written: None,
            sighting: None,
            conflicts: 0,
        }
    }

    /// Contend for the lease until the task is aborted.
    pub(crate) async fn run(mut self) {
        loop {
            let pause = match self.round().await {
                Ok(Next::Renew) => {
                    self.conflicts = 0;
                    self.config.renew_every
                }
                Ok(Next::Watch) => {
                    self.conflicts = 0;
                    self.config.retry_every
                }
                Ok(Next::Reread) => {
                    self.conflicts += 1;
                    if self.conflicts == 1 {
                        Duration::ZERO
                    } else {
                        self.config.retry_every
                    }
                }
                Err(e) => {
                    self.written = None;
                    tracing::warn!(
                        namespace = %self.config.namespace,
                        name = %self.config.name,
                        error = %e,
                        leading = self.seat.deadline().is_some(),
                        "leader lease: request failed; retrying"
                    );
                    self.config.retry_every
                }
            };
            self.guarded(tokio::time::sleep(pause)).await;
        }
    }

    /// One read-and-write round.
    async fn round(&mut self) -> Result<Next, Error> {
        let lease = match self.written.take() {
            Some(lease) => lease,
            None => {
                let read = self.api.get_opt(&self.config.name);
                match self.guarded(self.timed(read)).await? {
                    Ok(Some(lease)) => lease,
                    Ok(None) => return self.create().await,
                    Err(e) => return Err(describe("reading", e)),
                }
            }
        };
        let holder = lease
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref())
            .filter(|h| !h.is_empty())
            .map(str::to_string);
        match holder {
            Some(holder) if holder == self.config.identity => self.write(lease, false).await,
            None => {
                tracing::info!(name = %self.config.name, "leader lease: free, taking it");
                self.write(lease, true).await
            }
            Some(holder) => {
                if self.seat.lose() {
                    tracing::warn!(name = %self.config.name, %holder, "leader lease: lost to another holder");
                }
                if self.expired(&lease, &holder) {
                    tracing::info!(name = %self.config.name, %holder, "leader lease: the holder stopped renewing, taking it over");
                    self.write(lease, true).await
                } else {
                    Ok(Next::Watch)
                }
            }
        }
    }

    /// Whether another holder's record has stayed unchanged for its lease duration, on our
    /// clock since we first saw it.
    fn expired(&mut self, lease: &Lease, holder: &str) -> bool {
        let seen = Sighting::of(lease, holder, Instant::now());
        let first = match self.sighting.take() {
            Some(first) if first.same_record(&seen) => first,
            _ => seen,
        };
        let their_duration = lease
            .spec
            .as_ref()
            .and_then(|s| s.lease_duration_seconds)
            .and_then(|s| u64::try_from(s).ok())
            .filter(|s| *s > 0)
            .map(Duration::from_secs)
            .unwrap_or(self.config.lease_duration);
        let expired = first.since.elapsed() >= their_duration;
        self.sighting = Some(first);
        expired
    }

    /// No Lease yet: create it holding it (POST). A 409 means another daemon created it first.
    async fn create(&mut self) -> Result<Next, Error> {
        let lease = self.config.new_lease(jiff::Timestamp::now());
        let sent = Instant::now();
        let params = post_params();
        let create = self.api.create(&params, &lease);
        let result = self.guarded(self.timed(create)).await?;
        self.written_or_conflict(result, sent, "creating")
    }

    /// Renew our record, or take the lease (`acquire`: a new holder, one more transition),
    /// guarded by the resourceVersion we read.
    async fn write(&mut self, mut lease: Lease, acquire: bool) -> Result<Next, Error> {
        let now = MicroTime(jiff::Timestamp::now());
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if acquire || spec.acquire_time.is_none() {
            spec.acquire_time = Some(now.clone());
        }
        if acquire {
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
        }
        spec.holder_identity = Some(self.config.identity.clone());
        spec.lease_duration_seconds = self.config.lease_duration_seconds();
        spec.renew_time = Some(now);
        let sent = Instant::now();
        let params = post_params();
        let replace = self.api.replace(&self.config.name, &params, &lease);
        let result = self.guarded(self.timed(replace)).await?;
        self.written_or_conflict(result, sent, if acquire { "taking" } else { "renewing" })
    }

    /// Lead after a successful write sent at `sent`; after a 409, stop leading and re-read.
    fn written_or_conflict(
        &mut self,
        result: Result<Lease, kube::Error>,
        sent: Instant,
        doing: &str,
    ) -> Result<Next, Error> {
        match result {
            Ok(written) => {
                self.sighting = None;
                self.written = Some(written);
                let deadline = sent + self.config.leading_for();
                if self.seat.lead(deadline) {
                    tracing::info!(name = %self.config.name, identity = %self.config.identity, "leader lease: acquired, now leading");
                } else {
                    tracing::debug!(name = %self.config.name, "leader lease: renewed");
                }
                Ok(Next::Renew)
            }
            Err(kube::Error::Api(status)) if status.code == 409 => {
                if self.seat.lose() {
                    tracing::warn!(name = %self.config.name, "leader lease: conflict while {doing}; not leading until renewed");
                } else {
                    tracing::debug!(name = %self.config.name, "leader lease: conflict while {doing}; reading again");
                }
                Ok(Next::Reread)
            }
            Err(e) => Err(describe(doing, e)),
        }
    }

    /// A request with the configured timeout: a timeout is an error like any other.
    async fn timed<T>(
        &self,
        request: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<Result<T, kube::Error>, Error> {
        let limit = self.config.request_timeout;
        tokio::time::timeout(limit, request)
            .await
            .map_err(|_| Error::Kube(format!("lease: no answer within {limit:?}")))
    }

    /// Await `work`, dropping leadership the moment its deadline passes meanwhile.
    async fn guarded<F: Future>(&self, work: F) -> F::Output {
        tokio::pin!(work);
        loop {
            let Some(deadline) = self.seat.deadline() else {
                return work.await;
            };
            tokio::select! {
                out = &mut work => return out,
                _ = tokio::time::sleep_until(deadline) => {
                    if self.seat.lose() {
                        tracing::warn!(name = %self.config.name, "leader lease: not renewed in time; stopped leading");
                    }
                }
            }
        }
    }
}

/// Our writes name their field manager.
pub(crate) fn post_params() -> PostParams {
    PostParams {
        dry_run: false,
        field_manager: Some(FIELD_MANAGER.to_string()),
    }
}

/// An API error as the crate's error (the message, never credentials).
pub(crate) fn describe(doing: &str, e: kube::Error) -> Error {
    match e {
        kube::Error::Api(status) => Error::Kube(format!(
            "lease: {doing}: {} {} ({})",
            status.code, status.reason, status.message
        )),
        other => Error::Kube(format!("lease: {doing}: {other}")),
    }
}
