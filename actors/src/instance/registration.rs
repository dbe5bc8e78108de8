//! A registration request, validated: what a sidecar sends when its instance comes up.

use std::collections::BTreeMap;

use events::schema::InstanceKey;
use serde::Deserialize;
use serde_json::Value;

use crate::decider::Rejection;
use crate::resource::manifest::{validate_label_key, validate_label_value};
use crate::service::manifest::validate_object_name;
use crate::service::spec::typed;

pub const AGENT_TYPES: &[&str] = &["EaseAgent", "GoSDK", "None"];

/// A validated registration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    pub key: InstanceKey,
    pub ip: String,
    pub port: u16,
    pub labels: BTreeMap<String, String>,
    pub agent_type: String,
}

/// The wire shape, EaseMesh's `ServiceInstanceSpec` field names.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Wire {
    service_name: String,
    #[serde(rename = "instanceID")]
    instance_id: String,
    ip: String,
    port: u32,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    agent_type: Option<String>,
    /// Accepted for EaseMesh compatibility and ignored: the server sets the registry time.
    #[serde(default)]
    #[allow(dead_code)]
    registry_time: Option<Value>,
    /// Accepted and ignored: the status is the server's.
    #[serde(default)]
    #[allow(dead_code)]
    status: Option<Value>,
    #[serde(default)]
    #[allow(dead_code)]
    registry_name: Option<Value>,
}

impl Registration {
    /// Validate a registration body; errors name the field (`port`, `labels.version`, ...).
    pub fn from_value(body: &Value) -> Result<Registration, Rejection> {
        let wire: Wire = typed(body, "")?;
        validate_object_name("serviceName", &wire.service_name)?;
        validate_object_name("instanceID", &wire.instance_id)?;
        if wire.ip.parse::<std::net::IpAddr>().is_err() {
            return Err(Rejection::invalid(
                "ip",
                format!("`{}` is not an IP address", wire.ip),
            ));
        }
        let port = u16::try_from(wire.port)
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| {
                Rejection::invalid("port", format!("{} is not between 1 and 65535", wire.port))
            })?;
        for (key, value) in &wire.labels {
            validate_label_key(&format!("labels.{key}"), key)?;
            validate_label_value(&format!("labels.{key}"), value)?;
        }
        let agent_type = wire.agent_type.unwrap_or_else(|| "None".into());
        if !AGENT_TYPES.contains(&agent_type.as_str()) {
            return Err(Rejection::invalid(
                "agentType",
                format!("`{agent_type}` is not one of {}", AGENT_TYPES.join(", ")),
            ));
        }
        Ok(Registration {
            key: InstanceKey::new(wire.service_name, wire.instance_id),
            ip: wire.ip,
            port,
            labels: wire.labels,
            agent_type,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn valid_and_invalid_registrations() {
        let r = Registration::from_value(&json!({"serviceName": "order", "instanceID": "order-1",
            "ip": "10.0.0.1", "port": 13001, "labels": {"version": "v2"}}))
        .unwrap();
        assert_eq!(r.key.stream(), "instance/order/order-1");
        assert_eq!(r.agent_type, "None");
        let cases = [
            (
                json!({"serviceName": "order", "instanceID": "i", "ip": "10.0.0.1", "port": "80"}),
                "port",
            ),
            (
                json!({"serviceName": "order", "instanceID": "i", "ip": "10.0.0.1", "port": 70000}),
                "port",
            ),
            (
                json!({"serviceName": "order", "instanceID": "i", "ip": "ten", "port": 80}),
                "ip",
            ),
            (
                json!({"serviceName": "order", "instanceID": "a/b", "ip": "10.0.0.1", "port": 80}),
                "instanceID",
            ),
            (
                json!({"serviceName": "order", "ip": "10.0.0.1", "port": 80}),
                "(object)",
            ),
            (
                json!({"serviceName": "order", "instanceID": "i", "ip": "10.0.0.1", "port": 80, "lables": {}}),
                "lables",
            ),
            (
                json!({"serviceName": "order", "instanceID": "i", "ip": "10.0.0.1", "port": 80,
                    "labels": {"v": "a b"}}),
                "labels.v",
            ),
        ];
        for (body, field) in cases {
            let err = Registration::from_value(&body).unwrap_err();
            assert_eq!(err.field.as_deref(), Some(field), "{body}: {err}");
        }
    }
}
