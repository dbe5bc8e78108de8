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
    #[error("configuration: {0}")]
    Config(String),
    #[error("the actor host stopped: {0}")]
    Host(String),
    #[error("http server: {0}")]
    Server(std::io::Error),
}

impl Error {
    pub fn io(path: impl Into<std::path::PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
