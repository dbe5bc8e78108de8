//! One etcd request: bounded by a deadline and with its error mapped to [`Error::Etcd`].

use std::future::Future;
use std::time::Duration;

use crate::error::Error;

/// Deadline of one request. The client's own per-request timeout only starts once a connection
/// is ready; while etcd is down a request waits for one, so the whole call is bounded here, or
/// a sync during an outage would hang instead of failing and being retried.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

pub async fn call<T>(
    what: &str,
    request: impl Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, Error> {
    match tokio::time::timeout(REQUEST_TIMEOUT, request).await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(e)) => Err(Error::Etcd(format!("{what}: {e}"))),
        Err(_) => Err(Error::Etcd(format!(
            "{what}: no answer within {REQUEST_TIMEOUT:?}"
        ))),
    }
}
