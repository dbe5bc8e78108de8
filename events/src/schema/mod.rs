//! The schema of every stored event.
//!
//! Each event type has a name (`resource.applied`) and a schema version. The payload is the
//! postcard encoding of that version's struct. Old versions are upcast to the current in-memory
//! type on read; stored history is never rewritten. Every (type, version) pair listed in
//! [`STORED_TYPES`] has a checked-in golden fixture under `events/tests/golden/`.
//!
//! Rules for stored types: plain structs and enums only, fields in a fixed order, no
//! `serde(flatten|tag|untagged|skip)`, maps as `BTreeMap` so encoding is deterministic.

pub mod resource;

use serde::{Deserialize, Serialize};

use crate::error::StoreError;

pub use resource::{ResourceApplied, ResourceDeleted, ResourceKey};

/// Every (event type, schema version) this build can read.
pub const STORED_TYPES: &[(&str, u16)] = &[(resource::APPLIED, 1), (resource::DELETED, 1)];

/// An event in its current in-memory form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    ResourceApplied(ResourceApplied),
    ResourceDeleted(ResourceDeleted),
}

impl Event {
    /// The stored type name.
    pub fn event_type(&self) -> &'static str {
        match self {
            Event::ResourceApplied(_) => resource::APPLIED,
            Event::ResourceDeleted(_) => resource::DELETED,
        }
    }

    /// The schema version new events of this type are written with.
    pub fn schema_version(&self) -> u16 {
        match self {
            Event::ResourceApplied(_) | Event::ResourceDeleted(_) => 1,
        }
    }

    /// The stream this event belongs to.
    pub fn stream(&self) -> String {
        match self {
            Event::ResourceApplied(e) => e.key.stream(),
            Event::ResourceDeleted(e) => e.key.stream(),
        }
    }

    /// postcard-encode the payload at the current schema version.
    pub fn encode(&self) -> Result<Vec<u8>, StoreError> {
        let result = match self {
            Event::ResourceApplied(e) => postcard::to_stdvec(e),
            Event::ResourceDeleted(e) => postcard::to_stdvec(e),
        };
        result.map_err(|e| self.codec_error(e.to_string()))
    }

    /// Decode a stored payload, upcasting old schema versions to the current form.
    pub fn decode(
        event_type: &str,
        schema_version: u16,
        payload: &[u8],
    ) -> Result<Event, StoreError> {
        let codec = |e: postcard::Error| StoreError::Codec {
            event_type: event_type.to_string(),
            schema_version,
            reason: e.to_string(),
        };
        match (event_type, schema_version) {
            (resource::APPLIED, 1) => Ok(Event::ResourceApplied(
                postcard::from_bytes(payload).map_err(codec)?,
            )),
            (resource::DELETED, 1) => Ok(Event::ResourceDeleted(
                postcard::from_bytes(payload).map_err(codec)?,
            )),
            _ => Err(StoreError::UnknownEventType {
                event_type: event_type.to_string(),
                schema_version,
            }),
        }
    }

    /// The payload as JSON, at its *stored* version (for export; no upcasting, so an import
    /// reproduces the stored bytes exactly).
    pub fn payload_to_json(
        event_type: &str,
        schema_version: u16,
        payload: &[u8],
    ) -> Result<serde_json::Value, StoreError> {
        fn conv<T: serde::de::DeserializeOwned + Serialize>(
            payload: &[u8],
        ) -> Result<serde_json::Value, String> {
            let v: T = postcard::from_bytes(payload).map_err(|e| e.to_string())?;
            serde_json::to_value(v).map_err(|e| e.to_string())
        }
        let result = match (event_type, schema_version) {
            (resource::APPLIED, 1) => conv::<ResourceApplied>(payload),
            (resource::DELETED, 1) => conv::<ResourceDeleted>(payload),
            _ => {
                return Err(StoreError::UnknownEventType {
                    event_type: event_type.to_string(),
                    schema_version,
                })
            }
        };
        result.map_err(|reason| StoreError::Codec {
            event_type: event_type.to_string(),
            schema_version,
            reason,
        })
    }

    /// The inverse of [`Event::payload_to_json`]: encode a JSON payload at the given version.
    pub fn payload_from_json(
        event_type: &str,
        schema_version: u16,
        json: serde_json::Value,
    ) -> Result<Vec<u8>, StoreError> {
        fn conv<T: serde::de::DeserializeOwned + Serialize>(
            json: serde_json::Value,
        ) -> Result<Vec<u8>, String> {
            let v: T = serde_json::from_value(json).map_err(|e| e.to_string())?;
            postcard::to_stdvec(&v).map_err(|e| e.to_string())
        }
        let result = match (event_type, schema_version) {
            (resource::APPLIED, 1) => conv::<ResourceApplied>(json),
            (resource::DELETED, 1) => conv::<ResourceDeleted>(json),
            _ => {
                return Err(StoreError::UnknownEventType {
                    event_type: event_type.to_string(),
                    schema_version,
                })
            }
        };
        result.map_err(|reason| StoreError::Codec {
            event_type: event_type.to_string(),
            schema_version,
            reason,
        })
    }

    /// One representative value per current event type; the golden fixtures are their bytes.
    pub fn samples() -> Vec<Event> {
        resource::samples()
    }

    fn codec_error(&self, reason: String) -> StoreError {
        StoreError::Codec {
            event_type: self.event_type().to_string(),
            schema_version: self.schema_version(),
            reason,
        }
    }
}
