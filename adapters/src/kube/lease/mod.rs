//! The leader Lease (`coordination.k8s.io/v1`): only its holder writes to the cluster.
//!
//! Several daemons may run against one cluster; one of them holds the Lease and applies, the
//! others watch it and take over when the holder stops renewing. The election follows
//! client-go's leaderelection with two deliberate differences:
//! - another holder's record is judged expired by *observation* (unchanged for its
//!   `leaseDurationSeconds` of our monotonic clock), never by its `renewTime` against our wall
//!   clock, so clock skew between nodes cannot cause two leaders;
//! - our own leadership has a deadline, `lease_duration - renew_every` after the last
//!   successful write was sent, which [`Leadership::is_leader`] checks on every call: a stalled
//!   election task or a slow API server cannot keep this daemon writing after another could
//!   have taken over.
//!
//! Every write is guarded by the `resourceVersion` read (optimistic concurrency); a 409 means
//! someone else wrote first, and this daemon is not leader until a renewal succeeds. The wall
//! clock only fills the timestamps written into the Lease.
//!
//! - [`config`]: which Lease, as whom, how fast, and its validation;
//! - [`leadership`]: the handle the applier and projector read;
//! - [`elector`]: the loop that reads and writes the Lease.

pub mod config;
mod elector;
pub mod leadership;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::Api;

pub use self::config::{
    LeaseConfig, DEFAULT_LEASE_DURATION, DEFAULT_LEASE_NAME, DEFAULT_RENEW_EVERY,
    DEFAULT_REQUEST_TIMEOUT, DEFAULT_RETRY_EVERY,
};
pub use self::leadership::Leadership;

use self::elector::{describe, post_params, Elector};
use self::leadership::Seat;
use crate::error::Error;

/// Start contending for the lease. The returned leadership is false until the lease is held.
/// Aborting the task ends the leadership at once (then [`release`] hands the lease over).
pub fn spawn(
    client: kube::Client,
    config: LeaseConfig,
) -> (Leadership, tokio::task::JoinHandle<()>) {
    let (seat, leadership) = Seat::new();
    let task = tokio::spawn(Elector::new(client, config, seat).run());
    (leadership, task)
}

/// On a clean shutdown, after the task from [`spawn`] has been aborted: if this daemon holds
/// the lease, clear its `holderIdentity` (guarded by the resourceVersion read) so that another
/// daemon takes over at once instead of waiting for the lease to expire. A lease held by
/// another daemon, or absent, is left alone.
pub async fn release(client: &kube::Client, config: &LeaseConfig) -> Result<(), Error> {
    let api: Api<Lease> = Api::namespaced(client.clone(), &config.namespace);
    let limit = config.request_timeout;
    let timeout = || Error::Kube(format!("lease: releasing: no answer within {limit:?}"));
    // A renewal racing with the release (a 409) is re-read a few times, no more.
    for _ in 0..3 {
        let lease = tokio::time::timeout(limit, api.get_opt(&config.name))
            .await
            .map_err(|_| timeout())?
            .map_err(|e| describe("releasing", e))?;
        let Some(mut lease) = lease else {
            return Ok(());
        };
        let spec = lease.spec.get_or_insert_with(Default::default);
        if spec.holder_identity.as_deref() != Some(config.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(jiff::Timestamp::now()));
        match tokio::time::timeout(limit, api.replace(&config.name, &post_params(), &lease))
            .await
            .map_err(|_| timeout())?
        {
            Ok(_) => {
                tracing::info!(name = %config.name, "leader lease: released");
                return Ok(());
            }
            Err(kube::Error::Api(status)) if status.code == 409 => continue,
            Err(e) => return Err(describe("releasing", e)),
        }
    }
    Err(Error::Kube(
        "lease: releasing: the Lease kept changing (409)".to_string(),
    ))
}
