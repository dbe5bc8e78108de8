//! The parts of a service that EaseMesh also manages as kinds of their own (`LoadBalance`,
//! `Resilience`, `Mock`, `ObservabilityTracings`, `ObservabilityMetrics`,
//! `ObservabilityOutputServer`, each with `metadata.name` = the service), and under
//! `/mesh/services/{service}/{part}`. A part is stored inside its service's spec, so the
//! service as a whole stays the one thing sidecars read.

use serde_json::{Map, Value};

use super::spec::ServiceSpec;
use crate::decider::Rejection;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ServicePart {
    LoadBalance,
    Resilience,
    Mock,
    ObservabilityTracings,
    ObservabilityMetrics,
    ObservabilityOutputServer,
}

impl ServicePart {
    pub const ALL: &'static [ServicePart] = &[
        ServicePart::LoadBalance,
        ServicePart::Resilience,
        ServicePart::Mock,
        ServicePart::ObservabilityTracings,
        ServicePart::ObservabilityMetrics,
        ServicePart::ObservabilityOutputServer,
    ];

    /// The emctl kind.
    pub fn kind(self) -> &'static str {
        match self {
            ServicePart::LoadBalance => "LoadBalance",
            ServicePart::Resilience => "Resilience",
            ServicePart::Mock => "Mock",
            ServicePart::ObservabilityTracings => "ObservabilityTracings",
            ServicePart::ObservabilityMetrics => "ObservabilityMetrics",
            ServicePart::ObservabilityOutputServer => "ObservabilityOutputServer",
        }
    }

    /// The segment of EaseMesh's API path `/mesh/services/{service}/{segment}`.
    pub fn path(self) -> &'static str {
        match self {
            ServicePart::LoadBalance => "loadbalance",
            ServicePart::Resilience => "resilience",
            ServicePart::Mock => "mock",
            ServicePart::ObservabilityTracings => "tracings",
            ServicePart::ObservabilityMetrics => "metrics",
            ServicePart::ObservabilityOutputServer => "outputserver",
        }
    }

    pub fn from_kind(kind: &str) -> Option<ServicePart> {
        ServicePart::ALL.iter().copied().find(|p| p.kind() == kind)
    }

    pub fn from_path(segment: &str) -> Option<ServicePart> {
        ServicePart::ALL
            .iter()
            .copied()
            .find(|p| p.path() == segment)
    }

    /// Where the part sits in the service spec: a field, and a field inside it.
    fn location(self) -> (&'static str, Option<&'static str>) {
        match self {
            ServicePart::LoadBalance => ("loadBalance", None),
            ServicePart::Resilience => ("resilience", None),
            ServicePart::Mock => ("mock", None),
            ServicePart::ObservabilityTracings => ("observability", Some("tracings")),
            ServicePart::ObservabilityMetrics => ("observability", Some("metrics")),
            ServicePart::ObservabilityOutputServer => ("observability", Some("outputServer")),
        }
    }

    /// The part in a service's spec (canonical JSON), if set.
    pub fn get(self, spec: &str) -> Option<Value> {
        let spec: Value = serde_json::from_str(spec).ok()?;
        let (outer, inner) = self.location();
        let value = spec.get(outer)?;
        match inner {
            Some(inner) => value.get(inner).cloned(),
            None => Some(value.clone()),
        }
    }

    /// The service spec with this part set to `value` (or removed with `None`), validated as
    /// a whole. Errors name the field inside the part (`spec.policy` for a LoadBalance).
    pub fn set(self, spec: &str, value: Option<Value>) -> Result<ServiceSpec, Rejection> {
        let mut spec = match serde_json::from_str::<Value>(spec) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        };
        let (outer, inner) = self.location();
        match (inner, value) {
            (None, Some(value)) => {
                spec.insert(outer.to_string(), value);
            }
            (None, None) => {
                spec.remove(outer);
            }
            (Some(inner), value) => {
                let mut group = match spec.remove(outer) {
                    Some(Value::Object(map)) => map,
                    _ => Map::new(),
                };
                match value {
                    Some(value) => {
                        group.insert(inner.to_string(), value);
                    }
                    None => {
                        group.remove(inner);
                    }
                }
                if !group.is_empty() {
                    spec.insert(outer.to_string(), Value::Object(group));
                }
            }
        }
        ServiceSpec::parse(&Value::Object(spec)).map_err(|r| self.relative(r))
    }

    /// `spec.loadBalance.policy` → `spec.policy`: the part's document is the part itself.
    fn relative(self, mut r: Rejection) -> Rejection {
        let (outer, inner) = self.location();
        let prefix = match inner {
            Some(inner) => format!("spec.{outer}.{inner}"),
            None => format!("spec.{outer}"),
        };
        if let Some(field) = &r.field {
            if let Some(rest) = field.strip_prefix(&prefix) {
                r.field = Some(format!("spec{rest}"));
            }
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parts_land_in_their_place_and_errors_are_relative() {
        let base = json!({"registerTenant": "t"}).to_string();
        let spec = ServicePart::LoadBalance
            .set(&base, Some(json!({"policy": "random"})))
            .unwrap();
        assert_eq!(spec.load_balance.unwrap().policy, "random");
        let spec = ServicePart::ObservabilityTracings
            .set(&base, Some(json!({"enabled": true})))
            .unwrap();
        let text = serde_json::to_string(&spec).unwrap();
        assert_eq!(
            ServicePart::ObservabilityTracings.get(&text),
            Some(json!({"enabled": true}))
        );
        let err = ServicePart::LoadBalance
            .set(&base, Some(json!({"policy": "fastest"})))
            .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("spec.policy"), "{err}");
        let err = ServicePart::Resilience
            .set(&base, Some(json!({"retryer": {}})))
            .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("spec.retryer"), "{err}");
        // Removing the last observability part removes the group.
        let removed = ServicePart::ObservabilityTracings.set(&text, None).unwrap();
        assert!(removed.observability.is_none());
    }
}
