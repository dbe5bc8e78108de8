//! `microservice.slime.io` objects: Slime's ServiceFence, with the status meshplane computes.

use std::collections::BTreeMap;

use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

// `microservice.slime.io/v1alpha1` ServiceFence: the spec as Slime defines it
// (`service_fence.proto`), with the status meshplane computes. The derive generates the
// `ServiceFence` object type and its CRD (`ServiceFence::crd()`), namespaced, short name `svf`,
// with the status subresource. Every field is optional and omitted when absent, so an applied
// spec renders back as it was written (the fence concept validates it, with Slime's meaning,
// before it is accepted).
/// Which services one service depends on, and which workloads get the resulting Sidecar.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "microservice.slime.io",
    version = "v1alpha1",
    kind = "ServiceFence",
    plural = "servicefences",
    singular = "servicefence",
    namespaced,
    shortname = "svf",
    status = "ServiceFenceStatus",
    derive = "PartialEq",
    crates(kube_core = "::kube_core"),
    doc = "Slime's ServiceFence: lazy dependency discovery for one service, rendered as an Istio Sidecar."
)]
#[serde(rename_all = "camelCase")]
pub struct ServiceFenceSpec {
    /// Static dependencies: a full host name (or `<ns>/*`) and how long it stays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<BTreeMap<String, Option<RecyclingStrategy>>>,
    /// Whether the fence renders a Sidecar.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable: Option<bool>,
    /// Services matching any of these selectors are dependencies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<Vec<FenceSelector>>,
    /// Declared by Slime and never read; meshplane rejects a non-empty one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<Vec<String>>,
    /// The workloads the Sidecar applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_selector: Option<FenceWorkloadSelector>,
}

// Slime's `RecyclingStrategy`: `auto` and `RecentlyCalled` are in the schema, as in Slime, and
// rejected by meshplane's validation.
/// How long a static dependency stays: `stable` (always) or `deadline`; `auto` and
/// `RecentlyCalled` are deprecated and rejected.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RecyclingStrategy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable: Option<Stable>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Deadline>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto: Option<AutoStrategy>,
    #[serde(
        default,
        rename = "RecentlyCalled",
        skip_serializing_if = "Option::is_none"
    )]
    pub recently_called: Option<ProtoTime>,
}

/// Always active.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Stable {}

/// Active until `expire`, then EXPIRE.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Deadline {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire: Option<ProtoTime>,
}

/// Deprecated in Slime; rejected by meshplane.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AutoStrategy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<ProtoTime>,
}

/// A time as seconds since the Unix epoch and nanoseconds (a duration for `auto`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProtoTime {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nanos: Option<i32>,
}

/// One `labelSelector` entry: services with all of these labels.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FenceSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<BTreeMap<String, String>>,
}

/// `workloadSelector`: explicit labels, or the selector of the Service of the same name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FenceWorkloadSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_service: Option<bool>,
}

// Slime's `status`: domains (ACTIVE omitted, as Slime's jsonpb marshalling does) and the
// learned dependencies as `metricStatus` keys.
/// Written by meshplane: the fence's domains and the dependencies learned from traffic.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceFenceStatus {
    /// Every domain of the fence: from `spec.host`, `spec.labelSelector` and `metricStatus`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub domains: BTreeMap<String, Destinations>,
    /// Learned dependencies: `{destination_service="<host>"}` keys with a count.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metric_status: BTreeMap<String, String>,
}

/// One domain: its hosts, and its status (absent: ACTIVE).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Destinations {
    pub hosts: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<DestinationStatus>,
}

/// A domain's status (ACTIVE, the zero value, is omitted).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DestinationStatus {
    #[serde(rename = "ACTIVE")]
    Active,
    #[serde(rename = "EXPIRE")]
    Expire,
    #[serde(rename = "EXPIREWAIT")]
    ExpireWait,
}
