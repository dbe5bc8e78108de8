//! The schema of every stored event.
//!
//! Each event type has a name (`resource.applied`) and a schema version. The payload is the
//! postcard encoding of that version's struct. Old versions are upcast to the current in-memory
//! type on read; stored history is never rewritten. Every (type, version) pair listed in
//! [`STORED_TYPES`] has a checked-in golden fixture under `events/tests/golden/`.
//!
//! Rules for stored types: plain structs and enums only, fields in a fixed order, no
//! `serde(flatten|tag|untagged|skip)`, maps as `BTreeMap` so encoding is deterministic.

pub mod cluster;
pub mod fence;
pub mod instance;
pub mod mesh;
pub mod resource;
pub mod service;

use serde::{Deserialize, Serialize};

use crate::error::StoreError;

pub use cluster::{ObjectGone, ObjectObserved, Owner};
pub use fence::{
    Ageing, DependencyForgotten, DependencyIdle, DependencyLearned, DependencySeen, FenceKey,
    HostDeadlinePassed, Via,
};
pub use instance::{
    InstanceBroughtOnline, InstanceDeregistered, InstanceExpired, InstanceKey,
    InstanceOutOfService, InstanceRecovered, InstanceRegistered, InstanceTakenOffline, Silence,
};
pub use mesh::{RolledBack, ROLLBACK_STREAM};
pub use resource::{ResourceApplied, ResourceDeleted, ResourceKey};
pub use service::{
    MeshControllerApplied, ServiceApplied, ServiceDeleted, TenantApplied, TenantDeleted,
    CATALOG_STREAM,
};

/// Lists every stored event type once: variant, payload struct, type name and the schema
/// version new events are written with. Generates [`Event`], [`STORED_TYPES`] and the codec,
/// so adding a type is one line here plus its golden fixture. An upcast of an old version gets
/// its own arm in [`Event::decode_old`].
macro_rules! stored_events {
    ($($variant:ident($payload:ty) = ($name:expr, $version:literal),)*) => {
        /// Every (event type, schema version) this build can read.
        pub const STORED_TYPES: &[(&str, u16)] = &[$(($name, $version)),*];

        /// An event in its current in-memory form.
        #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
        pub enum Event {
            $($variant($payload),)*
        }

        impl Event {
            /// The stored type name.
            pub fn event_type(&self) -> &'static str {
                match self {
                    $(Event::$variant(_) => $name,)*
                }
            }

            /// The schema version new events of this type are written with.
            pub fn schema_version(&self) -> u16 {
                match self {
                    $(Event::$variant(_) => $version,)*
                }
            }

            /// postcard-encode the payload at the current schema version.
            pub fn encode(&self) -> Result<Vec<u8>, StoreError> {
                let result = match self {
                    $(Event::$variant(e) => postcard::to_stdvec(e),)*
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
                $(
                    if event_type == $name && schema_version == $version {
                        return Ok(Event::$variant(postcard::from_bytes(payload).map_err(codec)?));
                    }
                )*
                Self::decode_old(event_type, schema_version, payload)
            }

            /// The payload as JSON, at its *stored* version (for export; no upcasting, so an
            /// import reproduces the stored bytes exactly).
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
                $(
                    if event_type == $name && schema_version == $version {
                        return conv::<$payload>(payload)
                            .map_err(|reason| codec_error(event_type, schema_version, reason));
                    }
                )*
                Err(unknown(event_type, schema_version))
            }

            /// The inverse of [`Event::payload_to_json`]: encode a JSON payload at the given
            /// version.
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
                $(
                    if event_type == $name && schema_version == $version {
                        return conv::<$payload>(json)
                            .map_err(|reason| codec_error(event_type, schema_version, reason));
                    }
                )*
                Err(unknown(event_type, schema_version))
            }
        }
    };
}

stored_events! {
    ResourceApplied(ResourceApplied) = (resource::APPLIED, 1),
    ResourceDeleted(ResourceDeleted) = (resource::DELETED, 1),
    TenantApplied(TenantApplied) = (service::TENANT_APPLIED, 1),
    TenantDeleted(TenantDeleted) = (service::TENANT_DELETED, 1),
    ServiceApplied(ServiceApplied) = (service::SERVICE_APPLIED, 1),
    ServiceDeleted(ServiceDeleted) = (service::SERVICE_DELETED, 1),
    MeshControllerApplied(MeshControllerApplied) = (service::MESH_CONTROLLER_APPLIED, 1),
    InstanceRegistered(InstanceRegistered) = (instance::REGISTERED, 1),
    InstanceDeregistered(InstanceDeregistered) = (instance::DEREGISTERED, 1),
    InstanceOutOfService(InstanceOutOfService) = (instance::OUT_OF_SERVICE, 1),
    InstanceRecovered(InstanceRecovered) = (instance::RECOVERED, 1),
    InstanceExpired(InstanceExpired) = (instance::EXPIRED, 1),
    InstanceTakenOffline(InstanceTakenOffline) = (instance::TAKEN_OFFLINE, 1),
    InstanceBroughtOnline(InstanceBroughtOnline) = (instance::BROUGHT_ONLINE, 1),
    DependencyLearned(DependencyLearned) = (fence::DEPENDENCY_LEARNED, 1),
    DependencySeen(DependencySeen) = (fence::DEPENDENCY_SEEN, 1),
    DependencyIdle(DependencyIdle) = (fence::DEPENDENCY_IDLE, 1),
    DependencyForgotten(DependencyForgotten) = (fence::DEPENDENCY_FORGOTTEN, 1),
    HostDeadlinePassed(HostDeadlinePassed) = (fence::HOST_DEADLINE_PASSED, 1),
    RolledBack(RolledBack) = (mesh::ROLLED_BACK, 1),
    ObjectObserved(ObjectObserved) = (cluster::OBJECT_OBSERVED, 1),
    ObjectGone(ObjectGone) = (cluster::OBJECT_GONE, 1),
}

impl Event {
    /// The stream this event belongs to.
    pub fn stream(&self) -> String {
        match self {
            Event::ResourceApplied(e) => e.key.stream(),
            Event::ResourceDeleted(e) => e.key.stream(),
            Event::TenantApplied(_)
            | Event::TenantDeleted(_)
            | Event::ServiceApplied(_)
            | Event::ServiceDeleted(_)
            | Event::MeshControllerApplied(_) => CATALOG_STREAM.to_string(),
            Event::InstanceRegistered(e) => e.key.stream(),
            Event::InstanceDeregistered(e) => e.key.stream(),
            Event::InstanceOutOfService(e) => e.key.stream(),
            Event::InstanceRecovered(e) => e.key.stream(),
            Event::InstanceExpired(e) => e.key.stream(),
            Event::InstanceTakenOffline(e) => e.key.stream(),
            Event::InstanceBroughtOnline(e) => e.key.stream(),
            Event::DependencyLearned(e) => e.fence.stream(),
            Event::DependencySeen(e) => e.fence.stream(),
            Event::DependencyIdle(e) => e.fence.stream(),
            Event::DependencyForgotten(e) => e.fence.stream(),
            Event::HostDeadlinePassed(e) => e.fence.stream(),
            Event::RolledBack(_) => ROLLBACK_STREAM.to_string(),
            Event::ObjectObserved(e) => cluster::stream_of(&e.key.kind),
            Event::ObjectGone(e) => cluster::stream_of(&e.key.kind),
        }
    }

    /// Decode a version older than the current one of its type. No type has an old version
    /// yet; each upcast becomes an arm here.
    fn decode_old(
        event_type: &str,
        schema_version: u16,
        _payload: &[u8],
    ) -> Result<Event, StoreError> {
        Err(unknown(event_type, schema_version))
    }

    /// One representative value per current event type; the golden fixtures are their bytes.
    pub fn samples() -> Vec<Event> {
        let mut samples = resource::samples();
        samples.extend(service::samples());
        samples.extend(instance::samples());
        samples.extend(fence::samples());
        samples.extend(mesh::samples());
        samples.extend(cluster::samples());
        samples
    }

    fn codec_error(&self, reason: String) -> StoreError {
        codec_error(self.event_type(), self.schema_version(), reason)
    }
}

fn codec_error(event_type: &str, schema_version: u16, reason: String) -> StoreError {
    StoreError::Codec {
        event_type: event_type.to_string(),
        schema_version,
        reason,
    }
}

fn unknown(event_type: &str, schema_version: u16) -> StoreError {
    StoreError::UnknownEventType {
        event_type: event_type.to_string(),
        schema_version,
    }
}
