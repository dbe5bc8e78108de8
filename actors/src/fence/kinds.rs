//! The kinds the fence concept owns: what it reads (ServiceFences, its SlimeBoot configuration,
//! VirtualServices) and what it renders (Sidecars, the fallback EnvoyFilter).

use serde_json::Value;

use crate::decider::Rejection;
use crate::kinds::{Definition, KindSpec, Observe, Phase, Projection, Scope};

/// Slime's ServiceFence: accepted through `apply`, observed when someone else applied it (its
/// spec only: meshplane writes its status), written by meshplane with its status. Written
/// before the rest: it owns the Sidecar rendered from it.
pub const SERVICE_FENCE: KindSpec = KindSpec::new(
    "ServiceFence",
    &["microservice.slime.io/v1alpha1"],
    "servicefences",
    Scope::Namespaced,
)
.aliases(&["svf", "servicefence"])
.defined_by(Definition::Meshplane)
.applied(Projection::ByConcept, super::spec::validate_object)
.observed(Observe::SPEC)
.written(Phase::Owners)
.with_status();

/// Istio's VirtualService: its routes' destinations are a fence's dependencies too. Applied
/// ones are projected at `v1`; the cluster's are listed and watched at `v1beta1`.
pub const VIRTUAL_SERVICE: KindSpec = KindSpec::new(
    "VirtualService",
    &[
        "networking.istio.io/v1",
        "networking.istio.io/v1beta1",
        "networking.istio.io/v1alpha3",
    ],
    "virtualservices",
    Scope::Namespaced,
)
.listed_at("networking.istio.io/v1beta1")
.aliases(&["vs", "virtualservice"])
.defined_by(Definition::Istio)
.applied(Projection::AsApplied, validate_virtual_service)
.observed(Observe::SPEC)
.written(Phase::Objects);

/// Slime's SlimeBoot: the lazyload configuration, read, never written.
pub const SLIME_BOOT: KindSpec = KindSpec::new(
    "SlimeBoot",
    &["config.netease.com/v1alpha1"],
    "slimeboots",
    Scope::Namespaced,
)
.aliases(&["slimeboot"])
.defined_by(Definition::Meshplane)
.applied(Projection::Configuration, super::config::validate_object)
.observed(Observe::SPEC);

/// Istio's Sidecar, one per enabled fence.
pub const SIDECAR: KindSpec = KindSpec::new(
    "Sidecar",
    &["networking.istio.io/v1beta1"],
    "sidecars",
    Scope::Namespaced,
)
.defined_by(Definition::Istio)
.written(Phase::Objects);

/// Istio's EnvoyFilter: the fallback to the global sidecar.
pub const ENVOY_FILTER: KindSpec = KindSpec::new(
    "EnvoyFilter",
    &["networking.istio.io/v1alpha3"],
    "envoyfilters",
    Scope::Namespaced,
)
.defined_by(Definition::Istio)
.written(Phase::Objects);

/// The fence's kinds, in the order `apply` lists them.
pub const KINDS: &[KindSpec] = &[
    SERVICE_FENCE,
    VIRTUAL_SERVICE,
    SLIME_BOOT,
    SIDECAR,
    ENVOY_FILTER,
];

/// A VirtualService is Istio's to validate in full; meshplane checks the fields it reads
/// (`spec.hosts`, `spec.http[].route[].destination.host`) and passes the rest through.
fn validate_virtual_service(object: &Value) -> Result<(), Rejection> {
    let spec = &object["spec"];
    if !spec.is_object() {
        return Err(Rejection::invalid("spec", "required"));
    }
    match &spec["hosts"] {
        Value::Array(hosts) if !hosts.is_empty() => {
            for (i, h) in hosts.iter().enumerate() {
                if h.as_str().is_none_or(str::is_empty) {
                    return Err(Rejection::invalid(
                        format!("spec.hosts[{i}]"),
                        "must be a non-empty string",
                    ));
                }
            }
        }
        _ => {
            return Err(Rejection::invalid(
                "spec.hosts",
                "a non-empty list of hosts",
            ))
        }
    }
    for (i, http) in spec["http"].as_array().into_iter().flatten().enumerate() {
        for (j, route) in http["route"].as_array().into_iter().flatten().enumerate() {
            if route["destination"]["host"]
                .as_str()
                .is_none_or(str::is_empty)
            {
                return Err(Rejection::invalid(
                    format!("spec.http[{i}].route[{j}].destination.host"),
                    "required",
                ));
            }
        }
    }
    Ok(())
}
