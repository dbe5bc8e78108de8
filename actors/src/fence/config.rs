//! The lazyload module's configuration, read from a SlimeBoot (`config.netease.com/v1alpha1`)
//! as Slime's users already write it: `spec.module[]` with `kind: lazyload`, its `general`,
//! `global` and `metric` sections. meshplane adds three fields to `general` for the ageing of
//! learned dependencies, which Slime never did: `dependencyTtl`, `idleGrace`, `refreshWindow`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::alias::{AliasRule, AliasRules};
use crate::decider::Rejection;
use crate::service::spec::{parse_duration, typed};

pub const DEFAULT_ISTIO_NAMESPACE: &str = "istio-system";
pub const DEFAULT_SLIME_NAMESPACE: &str = "mesh-operator";
/// A learned dependency unseen this long becomes idle (EXPIREWAIT).
pub const DEFAULT_DEPENDENCY_TTL_MS: i64 = 24 * 3600 * 1000;
/// An idle dependency unseen this much longer is forgotten.
pub const DEFAULT_IDLE_GRACE_MS: i64 = 3600 * 1000;
/// Sightings of a known dependency closer together than this produce no event.
pub const DEFAULT_REFRESH_WINDOW_MS: i64 = 60 * 1000;
/// Slime's sample Prometheus query.
pub const DEFAULT_PROMETHEUS_QUERY: &str =
    "sum(istio_requests_total{source_app=\"$source_app\",reporter=\"destination\"})by(destination_service)";

/// Where learned dependencies come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetricSource {
    AccessLog,
    Prometheus,
}

/// A custom fallback route (`dispatches[]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dispatch {
    pub name: String,
    pub domains: Vec<String>,
    /// `_GLOBAL_SIDECAR`, `PassthroughCluster`, or an Envoy cluster name.
    pub cluster: String,
    pub domain_regex: String,
}

/// A Prometheus handler: a named query template.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrometheusHandler {
    pub name: String,
    pub query: String,
}

/// The lazyload configuration in force.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FenceConfig {
    /// False when no SlimeBoot with a lazyload module was applied (the defaults below apply;
    /// fences still work, nothing is fenced automatically).
    pub configured: bool,
    pub wormhole_ports: Vec<u16>,
    pub auto_fence: bool,
    pub default_fence: bool,
    pub dispatches: Vec<Dispatch>,
    pub passthrough_by_default: bool,
    pub domain_aliases: AliasRules,
    pub stable_hosts: Vec<String>,
    pub metric_source: MetricSource,
    pub prometheus_address: String,
    pub prometheus_handlers: Vec<PrometheusHandler>,
    pub namespace_mode: bool,
    pub cluster_gs_namespace: String,
    pub istio_namespace: String,
    pub slime_namespace: String,
    /// The label that names a workload when a fence has no other selector (`global.service`).
    pub service_label: String,
    pub dependency_ttl_ms: i64,
    pub idle_grace_ms: i64,
    pub refresh_window_ms: i64,
}

impl Default for FenceConfig {
    fn default() -> Self {
        FenceConfig {
            configured: false,
            wormhole_ports: Vec::new(),
            auto_fence: false,
            default_fence: false,
            dispatches: Vec::new(),
            passthrough_by_default: false,
            domain_aliases: AliasRules::default(),
            stable_hosts: Vec::new(),
            metric_source: MetricSource::AccessLog,
            prometheus_address: String::new(),
            prometheus_handlers: Vec::new(),
            namespace_mode: false,
            cluster_gs_namespace: String::new(),
            istio_namespace: DEFAULT_ISTIO_NAMESPACE.into(),
            slime_namespace: DEFAULT_SLIME_NAMESPACE.into(),
            service_label: "app".into(),
            dependency_ttl_ms: DEFAULT_DEPENDENCY_TTL_MS,
            idle_grace_ms: DEFAULT_IDLE_GRACE_MS,
            refresh_window_ms: DEFAULT_REFRESH_WINDOW_MS,
        }
    }
}

impl FenceConfig {
    /// Read the lazyload module of a SlimeBoot's `spec`. `Ok(None)` when it has none (a
    /// SlimeBoot for other modules). Alias rules that do not compile are kept (and skipped);
    /// [`validate_object`] refuses them at apply time.
    pub fn from_slimeboot(spec: &Value) -> Result<Option<FenceConfig>, Rejection> {
        let modules = match spec.get("module") {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Array(m)) => m,
            Some(_) => return Err(Rejection::invalid("spec.module", "must be a list")),
        };
        let mut found = None;
        for (i, module) in modules.iter().enumerate() {
            let prefix = format!("spec.module[{i}]");
            let kind = module.get("kind").and_then(Value::as_str).unwrap_or("");
            let name = module.get("name").and_then(Value::as_str).unwrap_or("");
            if kind != "lazyload" && !(kind.is_empty() && name == "lazyload") {
                continue;
            }
            if module.get("enable").and_then(Value::as_bool) == Some(false) {
                continue;
            }
            if found.is_some() {
                return Err(Rejection::invalid(
                    prefix,
                    "a second enabled lazyload module; one SlimeBoot configures one",
                ));
            }
            let raw: RawModule = typed(module, &prefix)?;
            found = Some(raw.into_config(&prefix)?);
        }
        Ok(found)
    }

    /// The wormhole ports the fallback route is installed on (Slime's chart always adds 80).
    pub fn fallback_ports(&self) -> Vec<u16> {
        let mut ports = self.wormhole_ports.clone();
        ports.push(80);
        ports.sort_unstable();
        ports.dedup();
        ports
    }

    /// The global sidecar's namespace in cluster mode.
    pub fn gs_namespace(&self) -> &str {
        if self.cluster_gs_namespace.is_empty() {
            &self.slime_namespace
        } else {
            &self.cluster_gs_namespace
        }
    }
}

/// Validate a whole SlimeBoot object at apply time: the lazyload module must parse and every
/// alias rule must compile (each bad rule is named).
pub fn validate_object(object: &Value) -> Result<(), Rejection> {
    let spec = object.get("spec").unwrap_or(&Value::Null);
    let Some(config) = FenceConfig::from_slimeboot(spec)? else {
        return Ok(());
    };
    if let Some((i, problem)) = config.domain_aliases.problems().into_iter().next() {
        let index = module_index(spec).unwrap_or(0);
        return Err(Rejection::invalid(
            format!("spec.module[{index}].general.domainAliases[{i}]"),
            problem,
        ));
    }
    Ok(())
}

fn module_index(spec: &Value) -> Option<usize> {
    spec.get("module")?
        .as_array()?
        .iter()
        .position(|m| m.get("kind").and_then(Value::as_str) == Some("lazyload"))
}

#[derive(Deserialize)]
struct RawModule {
    #[serde(default)]
    #[allow(dead_code)]
    name: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    kind: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    enable: Option<bool>,
    #[serde(default)]
    general: RawGeneral,
    #[serde(default)]
    global: RawGlobal,
    #[serde(default)]
    metric: Option<RawMetric>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawGeneral {
    #[serde(default)]
    wormhole_port: Vec<String>,
    #[serde(default)]
    auto_fence: bool,
    #[serde(default)]
    default_fence: bool,
    #[serde(default)]
    dispatches: Vec<RawDispatch>,
    #[serde(default)]
    passthrough_by_default: bool,
    #[serde(default)]
    domain_aliases: Vec<RawAlias>,
    #[serde(default)]
    stable_host: Vec<String>,
    #[serde(default)]
    metric_source_type: Option<String>,
    #[serde(default)]
    global_sidecar_mode: Option<String>,
    #[serde(default)]
    namespace: Vec<String>,
    #[serde(default)]
    cluster_gs_namespace: Option<String>,
    #[serde(default)]
    dependency_ttl: Option<String>,
    #[serde(default)]
    idle_grace: Option<String>,
    #[serde(default)]
    refresh_window: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawDispatch {
    name: String,
    #[serde(default)]
    domains: Vec<String>,
    cluster: String,
    #[serde(default)]
    domain_regex: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlias {
    pattern: String,
    #[serde(default)]
    templates: Vec<String>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawGlobal {
    #[serde(default)]
    service: Option<String>,
    #[serde(default)]
    istio_namespace: Option<String>,
    #[serde(default)]
    slime_namespace: Option<String>,
    /// Free-form in Slime (`map<string,string>`); meshplane reads `metricSourceType` and
    /// `globalSidecarMode` from it.
    #[serde(default)]
    misc: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetric {
    prometheus: Option<RawPrometheus>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrometheus {
    #[serde(default)]
    address: String,
    #[serde(default)]
    handlers: BTreeMap<String, RawHandler>,
}

#[derive(Deserialize)]
struct RawHandler {
    query: String,
}

impl RawModule {
    fn into_config(self, prefix: &str) -> Result<FenceConfig, Rejection> {
        let general = self.general;
        let g = |field: &str| format!("{prefix}.general.{field}");
        let mut config = FenceConfig {
            configured: true,
            ..FenceConfig::default()
        };
        for (i, port) in general.wormhole_port.iter().enumerate() {
            let parsed: u16 = port.trim().parse().ok().filter(|p| *p > 0).ok_or_else(|| {
                Rejection::invalid(
                    format!("{}[{i}]", g("wormholePort")),
                    format!("`{port}` is not a port"),
                )
            })?;
            config.wormhole_ports.push(parsed);
        }
        config.wormhole_ports.sort_unstable();
        config.wormhole_ports.dedup();
        config.auto_fence = general.auto_fence;
        config.default_fence = general.default_fence;
        config.passthrough_by_default = general.passthrough_by_default;
        for (i, d) in general.dispatches.into_iter().enumerate() {
            if d.domains.is_empty() && d.domain_regex.is_empty() {
                return Err(Rejection::invalid(
                    format!("{}[{i}]", g("dispatches")),
                    "needs `domains` or `domainRegex`",
                ));
            }
            if !d.domain_regex.is_empty() {
                if let Err(e) = regex::Regex::new(&d.domain_regex) {
                    return Err(Rejection::invalid(
                        format!("{}[{i}].domainRegex", g("dispatches")),
                        format!("does not compile: {e}"),
                    ));
                }
            }
            config.dispatches.push(Dispatch {
                name: d.name,
                domains: d.domains,
                cluster: d.cluster,
                domain_regex: d.domain_regex,
            });
        }
        config.domain_aliases = AliasRules::new(
            general
                .domain_aliases
                .into_iter()
                .map(|a| AliasRule {
                    pattern: a.pattern,
                    templates: a.templates,
                })
                .collect(),
        );
        config.stable_hosts = general.stable_host;
        let misc = |key: &str| self.global.misc.get(key).and_then(Value::as_str);
        let source = general
            .metric_source_type
            .as_deref()
            .or(misc("metricSourceType"))
            .unwrap_or(if self.metric.is_some() {
                "prometheus"
            } else {
                "accesslog"
            });
        config.metric_source = match source {
            "accesslog" => MetricSource::AccessLog,
            "prometheus" => MetricSource::Prometheus,
            other => {
                return Err(Rejection::invalid(
                    g("metricSourceType"),
                    format!("`{other}` is not one of accesslog, prometheus"),
                ))
            }
        };
        if let Some(p) = self.metric.and_then(|m| m.prometheus) {
            config.prometheus_address = p.address;
            config.prometheus_handlers = p
                .handlers
                .into_iter()
                .map(|(name, h)| PrometheusHandler {
                    name,
                    query: h.query,
                })
                .collect();
        }
        if config.metric_source == MetricSource::Prometheus {
            if config.prometheus_address.is_empty() {
                return Err(Rejection::invalid(
                    format!("{prefix}.metric.prometheus.address"),
                    "required when metricSourceType is prometheus",
                ));
            }
            if config.prometheus_handlers.is_empty() {
                config.prometheus_handlers.push(PrometheusHandler {
                    name: "destination".into(),
                    query: DEFAULT_PROMETHEUS_QUERY.into(),
                });
            }
        }
        let mode = general
            .global_sidecar_mode
            .as_deref()
            .or(misc("globalSidecarMode"))
            .unwrap_or("cluster");
        config.namespace_mode = match mode {
            "cluster" => false,
            "namespace" => true,
            other => {
                return Err(Rejection::invalid(
                    g("globalSidecarMode"),
                    format!("`{other}` is not one of cluster, namespace"),
                ))
            }
        };
        let _ = general.namespace;
        config.cluster_gs_namespace = general.cluster_gs_namespace.unwrap_or_default();
        if let Some(ns) = self.global.istio_namespace {
            config.istio_namespace = ns;
        }
        if let Some(ns) = self.global.slime_namespace {
            config.slime_namespace = ns;
        }
        if let Some(label) = self.global.service {
            config.service_label = label;
        }
        let duration = |value: Option<String>, field: &str, default: i64| match value {
            None => Ok(default),
            Some(text) => parse_duration(&text)
                .map(|ms| ms as i64)
                .map_err(|m| Rejection::invalid(g(field), m)),
        };
        config.dependency_ttl_ms = duration(
            general.dependency_ttl,
            "dependencyTtl",
            DEFAULT_DEPENDENCY_TTL_MS,
        )?;
        config.idle_grace_ms = duration(general.idle_grace, "idleGrace", DEFAULT_IDLE_GRACE_MS)?;
        config.refresh_window_ms = duration(
            general.refresh_window,
            "refreshWindow",
            DEFAULT_REFRESH_WINDOW_MS,
        )?;
        if config.dependency_ttl_ms <= 0 {
            return Err(Rejection::invalid(g("dependencyTtl"), "must be positive"));
        }
        if config.refresh_window_ms >= config.dependency_ttl_ms {
            return Err(Rejection::invalid(
                g("refreshWindow"),
                "must be shorter than dependencyTtl (a dependency in use must be refreshed \
                 before it ages out)",
            ));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn slimeboot(general: Value) -> Value {
        json!({"module": [{"name": "lazyload", "kind": "lazyload", "enable": true,
            "general": general,
            "global": {"misc": {"globalSidecarMode": "cluster", "metricSourceType": "accesslog"}}}],
            "image": {"repository": "x"}})
    }

    #[test]
    fn reads_the_seed_documents_configuration() {
        let config = FenceConfig::from_slimeboot(&slimeboot(json!({
            "wormholePort": ["9080", "80"],
            "autoFence": true,
            "defaultFence": true,
            "dispatches": [{"name": "163", "domains": ["www.163.com"],
                "cluster": "outbound|80||egress1.testns.svc.cluster.local"}],
            "domainAliases": [{"pattern": "(?P<service>[^\\.]+)\\.(?P<namespace>[^\\.]+)\\.svc\\.cluster\\.local$",
                "templates": ["$namespace.$service.mailsaas"]}],
            "dependencyTtl": "10m", "idleGrace": "1m", "refreshWindow": "5s",
        })))
        .unwrap()
        .unwrap();
        assert_eq!(config.wormhole_ports, vec![80, 9080]);
        assert!(config.auto_fence && config.default_fence);
        assert_eq!(config.metric_source, MetricSource::AccessLog);
        assert_eq!(config.dependency_ttl_ms, 600_000);
        assert_eq!(config.refresh_window_ms, 5_000);
        assert_eq!(config.istio_namespace, "istio-system");
        assert_eq!(
            config.domain_aliases.aliases("a.b.svc.cluster.local"),
            vec!["b.a.mailsaas"]
        );
    }

    #[test]
    fn prometheus_mode_gets_the_default_query() {
        let spec = json!({"module": [{"kind": "lazyload", "general": {},
            "global": {"misc": {"metricSourceType": "prometheus"}},
            "metric": {"prometheus": {"address": "http://prom:9090", "handlers": {}}}}]});
        let config = FenceConfig::from_slimeboot(&spec).unwrap().unwrap();
        assert_eq!(config.metric_source, MetricSource::Prometheus);
        assert_eq!(
            config.prometheus_handlers[0].query,
            DEFAULT_PROMETHEUS_QUERY
        );
    }

    #[test]
    fn names_the_bad_field() {
        for (general, field) in [
            (
                json!({"wormholePort": ["http"]}),
                "spec.module[0].general.wormholePort[0]",
            ),
            (
                json!({"autoFense": true}),
                "spec.module[0].general.autoFense",
            ),
            (
                json!({"metricSourceType": "statsd"}),
                "spec.module[0].general.metricSourceType",
            ),
            (
                json!({"dependencyTtl": "1m", "refreshWindow": "2m"}),
                "spec.module[0].general.refreshWindow",
            ),
            (
                json!({"dispatches": [{"name": "x", "cluster": "c", "domainRegex": "("}]}),
                "spec.module[0].general.dispatches[0].domainRegex",
            ),
        ] {
            let err = FenceConfig::from_slimeboot(&slimeboot(general.clone())).unwrap_err();
            assert_eq!(err.field.as_deref(), Some(field), "{general}: {err}");
        }
        let object = json!({"spec": slimeboot(json!({"domainAliases": [
            {"pattern": "ok", "templates": ["x"]}, {"pattern": "(", "templates": ["y"]}]}))});
        let err = validate_object(&object).unwrap_err();
        assert_eq!(
            err.field.as_deref(),
            Some("spec.module[0].general.domainAliases[1]")
        );
    }

    #[test]
    fn other_modules_are_not_lazyload_configuration() {
        let spec = json!({"module": [{"name": "limiter", "kind": "limiter", "general": {"x": 1}}]});
        assert_eq!(FenceConfig::from_slimeboot(&spec).unwrap(), None);
    }
}
