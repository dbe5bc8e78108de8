//! The one error type of the adapters crate.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error("event log: {0}")]
    Store(#[from] events::StoreError),
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("snapshot: {0}")]
    Snapshot(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("the actor host stopped: {0}")]
    Host(String),
    #[error("http server: {0}")]
    Server(std::io::Error),
    /// The fence's gRPC server (Envoy's Access Log Service) failed to serve.
    #[error("grpc server: {0}")]
    Grpc(tonic::transport::Error),
    /// etcd could not be reached or refused a request; the etcd target re-reads what etcd holds
    /// before its next write.
    #[error("etcd: {0}")]
    Etcd(String),
    /// The Kubernetes API could not be reached, refused a request, or answered something
    /// unexpected.
    #[error("kubernetes: {0}")]
    Kube(String),
    /// A transaction's compare on the checkpoint key failed: another writer moved it, so what
    /// this target believed etcd holds is no longer known to be true.
    #[error("etcd: fenced: the checkpoint key changed under us ({0})")]
    EtcdFenced(String),
    /// A desired etcd key lies outside the prefixes the target owns; nothing was written.
    #[error("etcd: desired key {key:?} is outside the owned prefixes {prefixes:?}")]
    EtcdKeyNotOwned { key: String, prefixes: Vec<String> },
    /// One Prometheus query of the fence's Prometheus mode failed: the server could not be
    /// reached, refused the query, or answered something that is not a query result.
    #[error("prometheus: fence {fence}, handler {handler:?}: {message}")]
    Prometheus {
        /// `namespace/name`.
        fence: String,
        handler: String,
        message: String,
    },
}

impl Error {
    pub fn io(path: impl Into<std::path::PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
