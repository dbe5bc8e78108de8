//! The ServiceFence spec (`microservice.slime.io/v1alpha1`), as Slime writes it, validated.
//!
//! Accepted unchanged: `enable`, `host` (service-level hosts with `stable` / `deadline`
//! strategies, and `<ns>/*` namespace keys), `labelSelector`, `workloadSelector`. Rejected with
//! a message where Slime silently ignores the input: `namespaceSelector` (declared, never read
//! by Slime) and the `auto` strategy (nothing ever sets `RecentlyCalled`, so it never expires).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::decider::Rejection;
use crate::service::spec::typed;

/// How long a static host stays in the fence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Strategy {
    /// `stable: {}` or `{}`: always active.
    Stable,
    /// `deadline: {expire: {seconds, nanos}}`: active until the deadline, then EXPIRE.
    Deadline { expire_ms: i64 },
}

/// The parsed spec of one ServiceFence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FenceSpec {
    pub enable: bool,
    /// Service-level hosts (full host names) and their strategies.
    pub hosts: BTreeMap<String, Strategy>,
    /// `<ns>/*` keys: every service of the namespace.
    pub namespaces: Vec<String>,
    /// OR across selectors, AND inside one. Empty selectors are dropped (they match nothing).
    pub label_selectors: Vec<BTreeMap<String, String>>,
    pub workload_labels: BTreeMap<String, String>,
    pub from_service: bool,
}

impl FenceSpec {
    /// The spec Slime gives a fence it creates automatically.
    pub fn auto() -> Self {
        FenceSpec {
            enable: true,
            hosts: BTreeMap::new(),
            namespaces: Vec::new(),
            label_selectors: Vec::new(),
            workload_labels: BTreeMap::new(),
            from_service: true,
        }
    }

    /// Parse the `spec` of a ServiceFence object.
    pub fn parse(spec: &Value) -> Result<FenceSpec, Rejection> {
        let raw: RawSpec = typed(spec, "spec")?;
        if raw
            .namespace_selector
            .as_ref()
            .is_some_and(|v| !v.is_empty())
        {
            return Err(Rejection::invalid(
                "spec.namespaceSelector",
                "not supported: Slime declares it but never reads it; list the namespaces as \
                 `<ns>/*` keys under spec.host instead",
            ));
        }
        let mut hosts = BTreeMap::new();
        let mut namespaces = Vec::new();
        for (host, strategy) in raw.host {
            let field = format!("spec.host.{host}");
            if let Some(ns) = host.strip_suffix("/*") {
                check_dns_label(ns).map_err(|m| Rejection::invalid(&field, m))?;
                namespaces.push(ns.to_string());
                continue;
            }
            check_host(&host).map_err(|m| Rejection::invalid(&field, m))?;
            let strategy = match strategy {
                None => Strategy::Stable,
                Some(s) => s.parse(&field)?,
            };
            hosts.insert(host, strategy);
        }
        let label_selectors = raw
            .label_selector
            .into_iter()
            .map(|s| s.selector)
            .filter(|s| !s.is_empty())
            .collect();
        let (workload_labels, from_service) = match raw.workload_selector {
            Some(w) => (w.labels, w.from_service),
            None => (BTreeMap::new(), false),
        };
        Ok(FenceSpec {
            enable: raw.enable,
            hosts,
            namespaces,
            label_selectors,
            workload_labels,
            from_service,
        })
    }
}

/// Validate a whole ServiceFence object (for the resource kind table).
pub fn validate_object(object: &Value) -> Result<(), Rejection> {
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    if name.is_empty() {
        return Err(Rejection::invalid("metadata.name", "required"));
    }
    FenceSpec::parse(object.get("spec").unwrap_or(&Value::Null)).map(|_| ())
}

/// A destination host: a DNS name, possibly a wildcard (`*.example.com`), never with a port,
/// never Slime's placeholder `unknown`.
pub fn check_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("empty host".into());
    }
    if host == "unknown" {
        return Err("`unknown` is not a host".into());
    }
    if host.contains(':') {
        return Err("hosts carry no port".into());
    }
    if host.len() > 253 {
        return Err("longer than 253 characters".into());
    }
    let body = host.strip_prefix("*.").unwrap_or(host);
    for label in body.split('.') {
        if label.is_empty()
            || label.len() > 63
            || !label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!("`{host}` is not a DNS name"));
        }
    }
    Ok(())
}

/// A Kubernetes namespace name (RFC 1123 label).
pub fn check_dns_label(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!("`{name}` is not a namespace name"))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawSpec {
    #[serde(default)]
    enable: bool,
    #[serde(default)]
    host: BTreeMap<String, Option<RawStrategy>>,
    #[serde(default)]
    label_selector: Vec<RawSelector>,
    #[serde(default)]
    namespace_selector: Option<Vec<String>>,
    #[serde(default)]
    workload_selector: Option<RawWorkloadSelector>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSelector {
    #[serde(default)]
    selector: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawWorkloadSelector {
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    from_service: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawStrategy {
    #[serde(default)]
    stable: Option<Value>,
    #[serde(default)]
    deadline: Option<RawDeadline>,
    #[serde(default)]
    auto: Option<Value>,
    #[serde(default, rename = "RecentlyCalled")]
    recently_called: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeadline {
    expire: RawTimestamp,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTimestamp {
    #[serde(default)]
    seconds: i64,
    #[serde(default)]
    nanos: i64,
}

impl RawStrategy {
    fn parse(self, field: &str) -> Result<Strategy, Rejection> {
        if self.auto.is_some() {
            return Err(Rejection::invalid(
                format!("{field}.auto"),
                "the `auto` strategy is not supported: Slime never expires it; use \
                 `deadline` for a fixed end, or let learned dependencies age out",
            ));
        }
        if self.recently_called.is_some() {
            return Err(Rejection::invalid(
                format!("{field}.RecentlyCalled"),
                "deprecated and never read; remove it",
            ));
        }
        match (self.stable, self.deadline) {
            (Some(_), Some(_)) => Err(Rejection::invalid(
                field,
                "give either `stable` or `deadline`, not both",
            )),
            (_, Some(d)) => {
                if !(0..1_000_000_000).contains(&d.expire.nanos) {
                    return Err(Rejection::invalid(
                        format!("{field}.deadline.expire.nanos"),
                        "must be in 0..1000000000",
                    ));
                }
                Ok(Strategy::Deadline {
                    expire_ms: d
                        .expire
                        .seconds
                        .saturating_mul(1000)
                        .saturating_add(d.expire.nanos / 1_000_000),
                })
            }
            _ => Ok(Strategy::Stable),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_slimes_documented_fence() {
        let spec = FenceSpec::parse(&json!({
            "enable": true,
            "host": {
                "reviews.default.svc.cluster.local": {"stable": {}},
                "www.example.com": {"deadline": {"expire": {"seconds": 1782433233}}},
                "test/*": {},
                "ratings.default.svc.cluster.local": null,
            },
            "labelSelector": [{"selector": {"app": "details"}}, {"selector": {}}],
            "workloadSelector": {"fromService": true},
        }))
        .unwrap();
        assert!(spec.enable);
        assert_eq!(spec.namespaces, vec!["test".to_string()]);
        assert_eq!(
            spec.hosts["www.example.com"],
            Strategy::Deadline {
                expire_ms: 1_782_433_233_000
            }
        );
        assert_eq!(
            spec.hosts["ratings.default.svc.cluster.local"],
            Strategy::Stable
        );
        assert_eq!(
            spec.label_selectors.len(),
            1,
            "empty selectors match nothing"
        );
        assert!(spec.from_service);
    }

    #[test]
    fn rejects_what_slime_silently_ignores() {
        let err = FenceSpec::parse(&json!({"namespaceSelector": ["foo"]})).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("spec.namespaceSelector"));
        let err =
            FenceSpec::parse(&json!({"host": {"a.b": {"auto": {"duration": {"seconds": 5}}}}}))
                .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("spec.host.a.b.auto"), "{err}");
        assert!(err.message.contains("not supported"));
    }

    #[test]
    fn rejects_bad_hosts_and_fields() {
        for (spec, field) in [
            (
                json!({"host": {"details:9080": {}}}),
                "spec.host.details:9080",
            ),
            (json!({"host": {"unknown": {}}}), "spec.host.unknown"),
            (json!({"host": {"Bad_NS/*": {}}}), "spec.host.Bad_NS/*"),
            (json!({"enabled": true}), "spec.enabled"),
            (json!({"enable": "yes"}), "spec.enable"),
        ] {
            let err = FenceSpec::parse(&spec).unwrap_err();
            assert_eq!(err.field.as_deref(), Some(field), "{spec}: {err}");
        }
    }
}
