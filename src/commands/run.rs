//! `meshplane run`: the daemon.

use anyhow::{Context, Result};

use adapters::daemon::{self, DaemonConfig};

use crate::cli::RunArgs;

pub fn run(args: RunArgs) -> Result<()> {
    let config = DaemonConfig {
        data_dir: args.data.dir,
        listen: args.listen,
        manifests_dir: args.manifests,
        token: args.token.filter(|t| !t.trim().is_empty()),
        max_body_bytes: args.max_body_bytes,
        store: args.data.store.into(),
        etcd: args.etcd,
        snapshot_every: args.snapshot_every,
        snapshot_keep: args.snapshot_keep,
        als_listen: args.als_listen,
    };
    config.validate().context("refusing to start")?;
    tracing::info!(
        data = %config.data_dir.display(),
        listen = %config.listen,
        manifests = %config.manifests_dir().display(),
        "starting meshplane"
    );
    daemon::run(config).context("the daemon failed")
}
