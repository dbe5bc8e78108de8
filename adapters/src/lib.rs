//! All of meshplane's I/O.
//!
//! - [`host`]: the actix actor host — one actor per mesh concept, a shell around the pure
//!   deciders of `actors` — and the dispatcher that turns accepted commands into durable events
//!   and delivers them to the actors in log order;
//! - [`storage`]: opening the configured event store under the data directory;
//! - [`concepts`]: each concept's own I/O (routes, intakes, servers), one folder per concept;
//! - [`manifests`]: the manifest-directory adapter, the embedded default projection target;
//! - [`etcd`]: the etcd projection target (EaseMesh's registry keys and meshplane's own);
//! - [`kube`]: the Kubernetes adapter: watchers that record what the cluster holds, server-side
//!   apply of the desired objects, and the leader lease;
//! - [`api`]: the HTTP API on actix-web;
//! - [`daemon`]: wiring of all the above into `meshplane run`.
#![forbid(unsafe_code)]
// The clock and hash-map bans in clippy.toml guard the pure crates; this crate does I/O and may
// read the clock (for timeouts and recorded-at times) and use hash maps for lookups.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

pub mod api;
pub mod clock;
pub mod concepts;
pub mod daemon;
pub mod desired;
pub mod error;
pub mod etcd;
/// The bodies of the fuzz targets (`fuzz/`); not used by the daemon.
#[doc(hidden)]
pub mod fuzzing;
pub mod host;
pub mod kube;
pub mod manifests;
pub mod metrics;
pub mod snapshot;
pub mod storage;

pub use error::Error;
