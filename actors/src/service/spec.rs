//! The validated shapes of EaseMesh's Service and MeshController specs.
//!
//! Parsed with serde into typed structs that deny unknown fields, so a misspelt field is
//! reported by name instead of silently dropped, and a wrong type names its path
//! (`spec.sidecar.ingressPort`). Defaults are filled in here, so what is stored (and projected
//! into etcd) is the complete spec a sidecar reads.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::decider::Rejection;

/// Default sidecar ports and address, as EaseMesh's `emctl` and sidecar use them.
pub const DEFAULT_INGRESS_PORT: u16 = 13001;
pub const DEFAULT_EGRESS_PORT: u16 = 13002;
pub const DEFAULT_API_PORT: u16 = 13009;
pub const DEFAULT_MESH_INGRESS_PORT: u16 = 13010;
/// EaseMesh's default heartbeat interval.
pub const DEFAULT_HEARTBEAT_INTERVAL_MS: u64 = 5_000;
/// EaseMesh's `defaultDeadRecordExistTime`.
pub const DEFAULT_DEAD_RECORD_MS: u64 = 20 * 60 * 1000;
/// The shortest heartbeat interval accepted.
pub const MIN_HEARTBEAT_INTERVAL_MS: u64 = 100;

pub const REGISTRY_TYPES: &[&str] = &["eureka", "consul", "nacos"];
pub const LOAD_BALANCE_POLICIES: &[&str] = &[
    "roundRobin",
    "random",
    "weightedRandom",
    "ipHash",
    "headerHash",
];
const PROTOCOLS: &[&str] = &["http", "https"];

/// `Service.spec`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceSpec {
    pub register_tenant: String,
    #[serde(default)]
    pub sidecar: Sidecar,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balance: Option<LoadBalance>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resilience: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mock: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observability: Option<Map<String, Value>>,
}

/// `Service.spec.sidecar`: how the service's sidecar listens.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Sidecar {
    #[serde(default = "default_discovery")]
    pub discovery_type: String,
    #[serde(default = "default_address")]
    pub address: String,
    #[serde(default = "default_ingress_port")]
    pub ingress_port: u16,
    #[serde(default = "default_protocol")]
    pub ingress_protocol: String,
    #[serde(default = "default_egress_port")]
    pub egress_port: u16,
    #[serde(default = "default_protocol")]
    pub egress_protocol: String,
}

impl Default for Sidecar {
    fn default() -> Self {
        Sidecar {
            discovery_type: default_discovery(),
            address: default_address(),
            ingress_port: DEFAULT_INGRESS_PORT,
            ingress_protocol: default_protocol(),
            egress_port: DEFAULT_EGRESS_PORT,
            egress_protocol: default_protocol(),
        }
    }
}

fn default_discovery() -> String {
    "eureka".into()
}
fn default_address() -> String {
    "127.0.0.1".into()
}
fn default_ingress_port() -> u16 {
    DEFAULT_INGRESS_PORT
}
fn default_egress_port() -> u16 {
    DEFAULT_EGRESS_PORT
}
fn default_protocol() -> String {
    "http".into()
}

/// `Service.spec.loadBalance`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoadBalance {
    pub policy: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_hash_key: Option<String>,
}

/// Known top-level fields of the parts kept as free-form objects (their inner shapes are the
/// sidecar's business; a misspelt top-level field is still caught).
const RESILIENCE_FIELDS: &[&str] = &[
    "rateLimiter",
    "circuitBreaker",
    "retry",
    "timeLimiter",
    "failureCodes",
];
const MOCK_FIELDS: &[&str] = &["enabled", "rules"];
const OBSERVABILITY_FIELDS: &[&str] = &["outputServer", "tracings", "metrics"];

impl ServiceSpec {
    /// Parse and check `spec` (the field path prefix is `spec`).
    pub fn parse(spec: &Value) -> Result<ServiceSpec, Rejection> {
        let parsed: ServiceSpec = typed(spec, "spec")?;
        parsed.check()?;
        Ok(parsed)
    }

    fn check(&self) -> Result<(), Rejection> {
        if self.register_tenant.is_empty() {
            return Err(Rejection::invalid(
                "spec.registerTenant",
                "must not be empty",
            ));
        }
        one_of(
            "spec.sidecar.discoveryType",
            &self.sidecar.discovery_type,
            REGISTRY_TYPES,
        )?;
        one_of(
            "spec.sidecar.ingressProtocol",
            &self.sidecar.ingress_protocol,
            PROTOCOLS,
        )?;
        one_of(
            "spec.sidecar.egressProtocol",
            &self.sidecar.egress_protocol,
            PROTOCOLS,
        )?;
        for (field, port) in [
            ("spec.sidecar.ingressPort", self.sidecar.ingress_port),
            ("spec.sidecar.egressPort", self.sidecar.egress_port),
        ] {
            if port == 0 {
                return Err(Rejection::invalid(field, "must be between 1 and 65535"));
            }
        }
        if self.sidecar.ingress_port == self.sidecar.egress_port {
            return Err(Rejection::invalid(
                "spec.sidecar.egressPort",
                format!(
                    "must differ from ingressPort ({})",
                    self.sidecar.ingress_port
                ),
            ));
        }
        if self.sidecar.address.parse::<std::net::IpAddr>().is_err() {
            return Err(Rejection::invalid(
                "spec.sidecar.address",
                format!("`{}` is not an IP address", self.sidecar.address),
            ));
        }
        if let Some(lb) = &self.load_balance {
            one_of("spec.loadBalance.policy", &lb.policy, LOAD_BALANCE_POLICIES)?;
            if lb.policy == "headerHash" && lb.header_hash_key.as_deref().is_none_or(str::is_empty)
            {
                return Err(Rejection::invalid(
                    "spec.loadBalance.headerHashKey",
                    "required when policy is headerHash",
                ));
            }
        }
        known_fields(
            "spec.resilience",
            self.resilience.as_ref(),
            RESILIENCE_FIELDS,
        )?;
        known_fields("spec.mock", self.mock.as_ref(), MOCK_FIELDS)?;
        known_fields(
            "spec.observability",
            self.observability.as_ref(),
            OBSERVABILITY_FIELDS,
        )?;
        if let Some(Value::Array(codes)) =
            self.resilience.as_ref().and_then(|r| r.get("failureCodes"))
        {
            for (i, code) in codes.iter().enumerate() {
                if !code.as_u64().is_some_and(|c| (100..600).contains(&c)) {
                    return Err(Rejection::invalid(
                        format!("spec.resilience.failureCodes[{i}]"),
                        format!("`{code}` is not an HTTP status code"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The mesh controller's settings (`MeshController`, inline or under `spec:`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MeshControllerSpec {
    pub heartbeat_interval: String,
    pub registry_type: String,
    #[serde(default = "default_api_port")]
    pub api_port: u16,
    #[serde(default = "default_mesh_ingress_port")]
    pub ingress_port: u16,
    /// meshplane extension: how long a silent instance's record is kept (default 20m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_record_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_service_registry: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clean_external_registry: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(rename = "imageRegistryURL")]
    pub image_registry_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sidecar_image_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_initializer_image_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log4j_config_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(rename = "monitorMTLS")]
    pub monitor_mtls: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_spec: Option<Map<String, Value>>,
    /// The seed's `spec:` form repeats the object's kind and name inside the spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

fn default_api_port() -> u16 {
    DEFAULT_API_PORT
}
fn default_mesh_ingress_port() -> u16 {
    DEFAULT_MESH_INGRESS_PORT
}

/// The checked numbers of a mesh controller spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControllerLimits {
    pub heartbeat_interval_ms: u64,
    pub dead_record_ms: u64,
}

impl MeshControllerSpec {
    /// Parse and check the fields (`prefix` is `spec` or empty for the inline form).
    pub fn parse(fields: &Value, prefix: &str) -> Result<(Self, ControllerLimits), Rejection> {
        let parsed: MeshControllerSpec = typed(fields, prefix)?;
        let at = |f: &str| join(prefix, f);
        if let Some(kind) = &parsed.kind {
            if kind != "MeshController" {
                return Err(Rejection::invalid(at("kind"), "must be MeshController"));
            }
        }
        let heartbeat_interval_ms = parse_duration(&parsed.heartbeat_interval)
            .map_err(|why| Rejection::invalid(at("heartbeatInterval"), why))?;
        if heartbeat_interval_ms < MIN_HEARTBEAT_INTERVAL_MS {
            return Err(Rejection::invalid(
                at("heartbeatInterval"),
                format!("must be at least {MIN_HEARTBEAT_INTERVAL_MS}ms"),
            ));
        }
        one_of(&at("registryType"), &parsed.registry_type, REGISTRY_TYPES)?;
        for (field, port) in [
            ("apiPort", parsed.api_port),
            ("ingressPort", parsed.ingress_port),
        ] {
            if port == 0 {
                return Err(Rejection::invalid(at(field), "must be between 1 and 65535"));
            }
        }
        let dead_record_ms = match &parsed.dead_record_time {
            None => DEFAULT_DEAD_RECORD_MS,
            Some(text) => {
                parse_duration(text).map_err(|why| Rejection::invalid(at("deadRecordTime"), why))?
            }
        };
        if dead_record_ms <= 2 * heartbeat_interval_ms {
            return Err(Rejection::invalid(
                at("deadRecordTime"),
                format!(
                    "must be longer than 2 x heartbeatInterval ({}ms), or instances would be removed before they are marked out of service",
                    2 * heartbeat_interval_ms
                ),
            ));
        }
        let limits = ControllerLimits {
            heartbeat_interval_ms,
            dead_record_ms,
        };
        Ok((parsed, limits))
    }
}

/// A Go-style duration (`5s`, `1m30s`, `500ms`, `1.5h`) in milliseconds. Sub-millisecond parts
/// are rounded down.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let bad = || format!("`{text}` is not a duration (e.g. 5s, 500ms, 1m30s)");
    if text.is_empty() {
        return Err(bad());
    }
    let mut total_ns: f64 = 0.0;
    let mut rest = text;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if number_end == 0 {
            return Err(bad());
        }
        let number: f64 = rest[..number_end].parse().map_err(|_| bad())?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total_ns += number * scale;
        rest = &rest[unit_end..];
    }
    if !total_ns.is_finite() || total_ns > 1e18 {
        return Err(bad());
    }
    Ok((total_ns / 1e6) as u64)
}

/// Deserialize `value` into `T`, naming the offending field (under `prefix`) on failure.
pub(crate) fn typed<T: serde::de::DeserializeOwned>(
    value: &Value,
    prefix: &str,
) -> Result<T, Rejection> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        // The path already ends with an unknown field's own name.
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        let field = if path == "." {
            prefix.to_string()
        } else {
            join(prefix, &path)
        };
        let field = if field.is_empty() {
            "(object)".to_string()
        } else {
            field
        };
        Rejection::invalid(field, message)
    })
}

fn join(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_string()
    } else {
        format!("{prefix}.{field}")
    }
}

fn one_of(field: &str, value: &str, allowed: &[&str]) -> Result<(), Rejection> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(Rejection::invalid(
            field,
            format!("`{value}` is not one of {}", allowed.join(", ")),
        ))
    }
}

fn known_fields(
    field: &str,
    object: Option<&Map<String, Value>>,
    known: &[&str],
) -> Result<(), Rejection> {
    for key in object.into_iter().flat_map(|o| o.keys()) {
        if !known.contains(&key.as_str()) {
            return Err(Rejection::invalid(
                format!("{field}.{key}"),
                format!("unknown field (known: {})", known.join(", ")),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(parse_duration("5s"), Ok(5_000));
        assert_eq!(parse_duration("500ms"), Ok(500));
        assert_eq!(parse_duration("1m30s"), Ok(90_000));
        assert_eq!(parse_duration("1.5h"), Ok(5_400_000));
        for bad in ["", "5", "s", "5 s", "5x", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn service_spec_fills_defaults_and_names_bad_fields() {
        let spec = ServiceSpec::parse(&json!({"registerTenant": "t"})).unwrap();
        assert_eq!(spec.sidecar.ingress_port, 13001);
        assert_eq!(spec.sidecar.egress_port, 13002);
        let err =
            ServiceSpec::parse(&json!({"registerTenant": "t", "sidecar": {"ingressPort": "x"}}))
                .unwrap_err();
        assert_eq!(
            err.field.as_deref(),
            Some("spec.sidecar.ingressPort"),
            "{err}"
        );
        let err =
            ServiceSpec::parse(&json!({"registerTenant": "t", "loadBalanse": {}})).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("spec.loadBalanse"), "{err}");
        let err = ServiceSpec::parse(
            &json!({"registerTenant": "t", "loadBalance": {"policy": "fastest"}}),
        )
        .unwrap_err();
        assert_eq!(
            err.field.as_deref(),
            Some("spec.loadBalance.policy"),
            "{err}"
        );
        let err = ServiceSpec::parse(
            &json!({"registerTenant": "t", "loadBalance": {"policy": "headerHash"}}),
        )
        .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("spec.loadBalance.headerHashKey"));
        let err =
            ServiceSpec::parse(&json!({"registerTenant": "t", "resilience": {"retryer": {}}}))
                .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("spec.resilience.retryer"));
        let err = ServiceSpec::parse(&json!({"sidecar": {}})).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("spec"), "{err}");
        assert!(err.message.contains("registerTenant"), "{err}");
    }

    #[test]
    fn mesh_controller_limits() {
        let (_, limits) = MeshControllerSpec::parse(
            &json!({"heartbeatInterval": "5s", "registryType": "consul"}),
            "spec",
        )
        .unwrap();
        assert_eq!(limits.heartbeat_interval_ms, 5_000);
        assert_eq!(limits.dead_record_ms, DEFAULT_DEAD_RECORD_MS);
        let err = MeshControllerSpec::parse(
            &json!({"heartbeatInterval": "5s", "registryType": "zookeeper"}),
            "spec",
        )
        .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("spec.registryType"));
        let err = MeshControllerSpec::parse(
            &json!({"heartbeatInterval": "10s", "registryType": "eureka", "deadRecordTime": "15s"}),
            "",
        )
        .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("deadRecordTime"));
    }
}
