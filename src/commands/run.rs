//! `meshplane run`: the daemon.

use std::time::Duration;

use anyhow::{Context, Result};

use adapters::daemon::{self, DaemonConfig, KubeSettings};

use crate::cli::RunArgs;

pub fn run(args: RunArgs) -> Result<()> {
    let config = DaemonConfig {
        data_dir: args.data.dir,
        listen: args.listen,
        manifests_dir: args.manifests,
        token: crate::token::resolve(args.token, args.token_file.as_deref())?,
        max_body_bytes: args.max_body_bytes,
        allowed_hosts: args.allowed_host,
        http_limits: daemon::HttpLimits {
            header_timeout: Duration::from_secs(args.header_timeout),
            body_timeout: Duration::from_secs(args.body_timeout),
            max_connections: args.max_connections,
        },
        store: args.data.store.into(),
        etcd: args.etcd,
        snapshot_every: args.snapshot_every,
        snapshot_keep: args.snapshot_keep,
        als_listen: args.als_listen,
        kube: (args.kubeconfig.is_some() || args.in_cluster).then(|| KubeSettings {
            kubeconfig: args.kubeconfig,
            lease: (!args.no_lease).then(|| {
                let mut lease = adapters::kube::lease::LeaseConfig::new(
                    args.lease_namespace
                        .filter(|ns| !ns.is_empty())
                        .unwrap_or_else(|| "meshplane".to_string()),
                    args.lease_name,
                    lease_identity(),
                );
                lease.lease_duration = Duration::from_secs(args.lease_duration);
                lease.renew_every = lease.lease_duration / 3;
                lease.retry_every = lease.retry_every.min(lease.renew_every);
                lease
            }),
        }),
    };
    config.validate().context("refusing to start")?;
    tracing::info!(
        data = %config.data_dir.display(),
        listen = %config.listen,
        manifests = %config.manifests_dir().display(),
        kubernetes = config.kube.is_some(),
        "starting meshplane"
    );
    daemon::run(config).context("the daemon failed")
}

/// Who holds the lease: the pod (POD_NAME, set by the Deployment) or the host, plus a random
/// suffix so that two daemons on one host never share an identity.
#[allow(
    clippy::disallowed_methods,
    reason = "an identity unique to this process, outside any decision the log replays"
)]
fn lease_identity() -> String {
    let base = std::env::var("POD_NAME")
        .ok()
        .filter(|n| !n.is_empty())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "meshplane".to_string());
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{base}-{}", &suffix[..8])
}
