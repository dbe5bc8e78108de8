//! The kinds only the observed cluster reads: watched into the log, never applied or written.
//! (The watchers also observe kinds other concepts own, as their owners declare.)

use crate::kinds::{KindSpec, Observe, Scope};

/// Where a Pod runs and its addresses: not its containers, volumes or conditions.
pub const POD: KindSpec =
    KindSpec::new("Pod", &["v1"], "pods", Scope::Namespaced).observed(Observe::keep(&[
        &["spec", "nodeName"],
        &["status", "podIP"],
        &["status", "podIPs"],
        &["status", "phase"],
    ]));

pub const NODE: KindSpec =
    KindSpec::new("Node", &["v1"], "nodes", Scope::Cluster).observed(Observe::keep(&[
        &["spec", "unschedulable"],
        &["status", "addresses"],
    ]));

pub const ENDPOINT_SLICE: KindSpec = KindSpec::new(
    "EndpointSlice",
    &["discovery.k8s.io/v1"],
    "endpointslices",
    Scope::Namespaced,
)
.observed(
    Observe::keep(&[&["addressType"], &["endpoints"], &["ports"]]).dropping_target_ref_versions(),
);

pub const KINDS: &[KindSpec] = &[POD, NODE, ENDPOINT_SLICE];
