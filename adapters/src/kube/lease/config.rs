//! Which Lease to contend for, as whom, and how fast; refused before start-up when it cannot
//! work (a name the API server would reject, a renewal slower than the lease).

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};

use crate::error::Error;

/// The Lease's name unless `--lease-name` says otherwise.
pub const DEFAULT_LEASE_NAME: &str = "meshplane-leader";
/// How long a holder's record stays valid without renewal, as written into the Lease
/// (`leaseDurationSeconds`; client-go's default as well).
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);
/// How often the holder renews.
pub const DEFAULT_RENEW_EVERY: Duration = Duration::from_secs(5);
/// How often a failed request is retried, and how often a follower looks at the Lease.
pub const DEFAULT_RETRY_EVERY: Duration = Duration::from_secs(2);
/// How long one request to the API server may take before it counts as failed.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// The leader election's settings.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    /// Namespace of the Lease (a DNS-1123 label).
    pub namespace: String,
    /// Name of the Lease (a DNS-1123 subdomain).
    pub name: String,
    /// Who we are in `holderIdentity`: unique per daemon.
    pub identity: String,
    /// Written as `leaseDurationSeconds` (rounded up to whole seconds). After a successful
    /// renewal sent at T, this daemon leads until `T + lease_duration - renew_every`, so it
    /// stops writing before any other daemon could judge the lease expired.
    pub lease_duration: Duration,
    /// Time between renewals while leading.
    pub renew_every: Duration,
    /// Time between retries after a failed request, and between looks at a Lease another
    /// daemon holds.
    pub retry_every: Duration,
    /// A request to the API server with no answer after this long counts as failed (a hung
    /// connection must not stall the election).
    pub request_timeout: Duration,
}

impl LeaseConfig {
    /// The default timings.
    pub fn new(namespace: String, name: String, identity: String) -> Self {
        LeaseConfig {
            namespace,
            name,
            identity,
            lease_duration: DEFAULT_LEASE_DURATION,
            renew_every: DEFAULT_RENEW_EVERY,
            retry_every: DEFAULT_RETRY_EVERY,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }

    /// Refuse settings the API server would reject or that cannot keep a leader: every error
    /// names the field at fault.
    pub fn validate(&self) -> Result<(), Error> {
        if let Err(why) = dns1123_label(&self.namespace) {
            return Err(invalid("namespace", &self.namespace, why));
        }
        if let Err(why) = dns1123_subdomain(&self.name) {
            return Err(invalid("name", &self.name, why));
        }
        if self.identity.trim().is_empty() {
            return Err(invalid("identity", &self.identity, "must not be empty"));
        }
        if self.lease_duration < Duration::from_secs(1) {
            return Err(Error::Config(format!(
                "lease: lease_duration {:?} must be at least 1s (the Lease holds whole seconds){}",
                self.lease_duration,
                flag("lease_duration")
            )));
        }
        if self.lease_duration_seconds().is_none() {
            return Err(Error::Config(format!(
                "lease: lease_duration {:?} is too long{}",
                self.lease_duration,
                flag("lease_duration")
            )));
        }
        for (field, value) in [
            ("renew_every", self.renew_every),
            ("retry_every", self.retry_every),
            ("request_timeout", self.request_timeout),
        ] {
            if value.is_zero() {
                return Err(Error::Config(format!(
                    "lease: {field} must be greater than 0"
                )));
            }
        }
        if self.renew_every >= self.lease_duration {
            return Err(Error::Config(format!(
                "lease: renew_every {:?} must be shorter than lease_duration {:?} (the holder leads only until lease_duration - renew_every after each renewal)",
                self.renew_every, self.lease_duration
            )));
        }
        Ok(())
    }

    /// `leaseDurationSeconds` as written: rounded up, so that others never wait less than we
    /// assume.
    pub(crate) fn lease_duration_seconds(&self) -> Option<i32> {
        let d = self.lease_duration;
        let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
        i32::try_from(secs).ok()
    }

    /// The Lease a first daemon creates, holding it from `now` (pure, so its shape is
    /// validated against the Kubernetes schemas in `tests/schemas.rs`).
    pub fn new_lease(&self, now: jiff::Timestamp) -> Lease {
        let now = MicroTime(now);
        Lease {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some(self.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.identity.clone()),
                lease_duration_seconds: self.lease_duration_seconds(),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        }
    }

    /// How long after a successful write sent at T we may still act as leader.
    pub(crate) fn leading_for(&self) -> Duration {
        self.lease_duration.saturating_sub(self.renew_every)
    }
}

fn invalid(field: &str, value: &str, why: &str) -> Error {
    Error::Config(format!("lease: {field} {value:?} {why}{}", flag(field)))
}

/// The `meshplane run` flag that sets a field, for errors an operator can act on.
fn flag(field: &str) -> &'static str {
    match field {
        "namespace" => " (--lease-namespace)",
        "name" => " (--lease-name)",
        "lease_duration" => " (--lease-duration)",
        _ => "",
    }
}

/// RFC 1123 label, as Kubernetes validates namespaces.
fn dns1123_label(value: &str) -> Result<(), &'static str> {
    if value.is_empty() {
        return Err("must not be empty");
    }
    if value.len() > 63 {
        return Err("must be at most 63 characters (a DNS-1123 label)");
    }
    label_chars(value)
}

/// RFC 1123 subdomain, as Kubernetes validates most object names: dot-separated labels.
fn dns1123_subdomain(value: &str) -> Result<(), &'static str> {
    if value.is_empty() {
        return Err("must not be empty");
    }
    if value.len() > 253 {
        return Err("must be at most 253 characters (a DNS-1123 subdomain)");
    }
    value.split('.').try_for_each(label_chars)
}

fn label_chars(label: &str) -> Result<(), &'static str> {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !label.chars().all(allowed) {
        return Err("must consist of lowercase letters, digits and '-' (DNS-1123)");
    }
    if !edge(label.chars().next()) || !edge(label.chars().next_back()) {
        return Err("must start and end with a lowercase letter or digit (DNS-1123)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_dns_1123() {
        assert!(dns1123_label("meshplane").is_ok());
        assert!(dns1123_label("a-1").is_ok());
        assert!(dns1123_label("a.b").is_err());
        assert!(dns1123_label("-a").is_err());
        assert!(dns1123_label("A").is_err());
        assert!(dns1123_label(&"a".repeat(64)).is_err());
        assert!(dns1123_subdomain("meshplane-leader").is_ok());
        assert!(dns1123_subdomain("leader.meshplane.io").is_ok());
        assert!(dns1123_subdomain("a..b").is_err());
        assert!(dns1123_subdomain("a.").is_err());
        assert!(dns1123_subdomain("a_b").is_err());
    }

    #[test]
    fn the_lease_duration_is_rounded_up() {
        let mut config = LeaseConfig::new("ns".into(), "n".into(), "me".into());
        config.lease_duration = Duration::from_millis(1500);
        assert_eq!(config.lease_duration_seconds(), Some(2));
        config.lease_duration = Duration::from_secs(15);
        assert_eq!(config.lease_duration_seconds(), Some(15));
    }
}
