//! meshplane's event log.
//!
//! Every change in meshplane is an event in one durable, append-only log. This crate owns:
//! - the schema of every stored event ([`schema`]) and its versioned payload codec;
//! - the envelope every stored record carries ([`envelope`]) and its on-disk framing
//!   (length + CRC32C, [`frame`]), so a torn tail is detected and cut, never read as data;
//! - the [`EventStore`] contract (optimistic concurrency, idempotent retry, durable
//!   acknowledgement, tail subscription) and its backends: in-memory, redb (feature `redb`,
//!   the default store of the daemon) and sled (feature `sled`);
//! - group commit ([`log::Log`]): concurrent appenders share one fsync;
//! - JSON Lines export and import ([`jsonl`]).
//!
//! The durable backends are behind cargo features so the pure crates that depend on the
//! schema (`actors`, `projections`) never link a storage engine.
#![forbid(unsafe_code)]
// The clock and hash-map bans in clippy.toml guard the pure crates; this crate does I/O and may
// read the clock (for timeouts and recorded-at times) and use hash maps for lookups.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

pub mod backend;
pub mod conformance;
pub mod damage;
pub mod envelope;
pub mod error;
pub mod frame;
pub mod jsonl;
pub mod log;
pub mod salvage;
pub mod schema;
pub mod store;

pub use envelope::{AppendResult, Envelope, ExpectedVersion, NewEvent, StreamAppend, Transaction};
pub use error::StoreError;
pub use log::{Log, SyncLog};
pub use schema::Event;
pub use store::{EventStore, Subscription};
