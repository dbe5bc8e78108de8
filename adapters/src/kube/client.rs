//! Connecting to the cluster: a kubeconfig file, or the in-cluster service account.

use std::path::Path;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::error::Error;

/// A client from a kubeconfig file (its current context), or, with `None`, from the
/// environment a pod runs in (service-account token, `KUBERNETES_SERVICE_HOST`).
pub async fn connect(kubeconfig: Option<&Path>) -> Result<Client, Error> {
    let config = match kubeconfig {
        Some(path) => {
            let file = Kubeconfig::read_from(path)
                .map_err(|e| Error::Config(format!("--kubeconfig {}: {e}", path.display())))?;
            Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
                .await
                .map_err(|e| Error::Config(format!("--kubeconfig {}: {e}", path.display())))?
        }
        None => Config::incluster().map_err(|e| {
            Error::Config(format!(
                "no --kubeconfig given and not running in a pod (in-cluster config: {e})"
            ))
        })?,
    };
    Client::try_from(config).map_err(|e| Error::Kube(format!("building the client: {e}")))
}
