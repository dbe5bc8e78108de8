//! Events of the service concept: EaseMesh's tenants, services and the mesh controller's
//! settings. They all live on one stream, [`CATALOG_STREAM`]: catalog changes are operator
//! actions (rare), and one stream makes every rule that spans objects (a service's tenant must
//! exist, a tenant with services cannot be deleted) safe under concurrency with a single
//! optimistic-concurrency check.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Event;

pub const TENANT_APPLIED: &str = "tenant.applied";
pub const TENANT_DELETED: &str = "tenant.deleted";
pub const SERVICE_APPLIED: &str = "service.applied";
pub const SERVICE_DELETED: &str = "service.deleted";
pub const MESH_CONTROLLER_APPLIED: &str = "mesh_controller.applied";

/// The one stream holding every tenant, service and mesh-controller event.
pub const CATALOG_STREAM: &str = "service/catalog";

/// A tenant was created or changed. Its service list is not stored: it is derived from the
/// services' `registerTenant`, so it can never disagree with them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantApplied {
    pub name: String,
    pub api_version: String,
    pub labels: BTreeMap<String, String>,
    pub description: String,
}

/// A tenant (with no services left) was deleted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantDeleted {
    pub name: String,
}

/// A mesh service was created or changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceApplied {
    pub name: String,
    pub api_version: String,
    pub labels: BTreeMap<String, String>,
    /// `spec.registerTenant`.
    pub tenant: String,
    /// Canonical JSON (sorted keys, no whitespace) of the whole validated `spec`, defaults
    /// filled in (e.g. the sidecar ports), `registerTenant` included.
    pub spec: String,
}

/// A mesh service was deleted. Its instances stay registered (as in EaseMesh) but are no longer
/// visible through it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceDeleted {
    pub name: String,
}

/// The mesh controller's settings were applied. There is one mesh controller per mesh.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeshControllerApplied {
    pub name: String,
    pub api_version: String,
    pub labels: BTreeMap<String, String>,
    /// `heartbeatInterval`, in milliseconds.
    pub heartbeat_interval_ms: u64,
    /// How long an instance may stay silent before its record is removed (`deadRecordTime`,
    /// a meshplane extension; EaseMesh hard-codes 20 minutes).
    pub dead_record_ms: u64,
    /// `eureka`, `consul` or `nacos`.
    pub registry_type: String,
    /// Canonical JSON of the whole validated spec.
    pub spec: String,
}

pub(super) fn samples() -> Vec<Event> {
    vec![
        Event::TenantApplied(TenantApplied {
            name: "takeaway".into(),
            api_version: "mesh.megaease.com/v2alpha1".into(),
            labels: BTreeMap::from([("team".into(), "food".into())]),
            description: "the takeaway demo".into(),
        }),
        Event::TenantDeleted(TenantDeleted {
            name: "takeaway".into(),
        }),
        Event::ServiceApplied(ServiceApplied {
            name: "order".into(),
            api_version: "mesh.megaease.com/v2alpha1".into(),
            labels: BTreeMap::new(),
            tenant: "takeaway".into(),
            spec: r#"{"loadBalance":{"policy":"roundRobin"},"registerTenant":"takeaway"}"#.into(),
        }),
        Event::ServiceDeleted(ServiceDeleted {
            name: "order".into(),
        }),
        Event::MeshControllerApplied(MeshControllerApplied {
            name: "easemesh-controller".into(),
            api_version: "mesh.megaease.com/v2alpha1".into(),
            labels: BTreeMap::new(),
            heartbeat_interval_ms: 5_000,
            dead_record_ms: 1_200_000,
            registry_type: "eureka".into(),
            spec: r#"{"heartbeatInterval":"5s","registryType":"eureka"}"#.into(),
        }),
    ]
}
