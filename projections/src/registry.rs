//! The registry (tenants, services, instances) in EaseMesh's etcd layout and JSON shapes, so
//! tooling that reads EaseMesh's keys sees what it expects:
//!
//! | key | value |
//! |---|---|
//! | `/mesh/tenants/{tenant}` | `{name, services, description, createdAt}` |
//! | `/mesh/service-spec/{service}` | the service spec with its `name` |
//! | `/mesh/service-instances/spec/{service}/{id}` | `ServiceInstanceSpec` |
//! | `/mesh/service-instances/status/{service}/{id}` | `{serviceName, instanceID, lastHeartbeatTime}` |
//!
//! `lastHeartbeatTime` is the last heartbeat the log knows of (registration, recovery, or the
//! evidence of a silence), not every heartbeat: heartbeats are tracked in memory, and writing
//! each one would put 20,000 writes a second on etcd at 100,000 instances. The status in the
//! spec key is the authoritative liveness signal.

use std::collections::BTreeMap;

use actors::instance::{Instance, InstanceState, Instances};
use actors::service::{ServiceState, Services};
use events::schema::InstanceKey;
use serde::Serialize;
use serde_json::Value;

use crate::concept::{Projection, Targets};
use crate::time::rfc3339;

pub const TENANT_PREFIX: &str = "/mesh/tenants/";
pub const SERVICE_SPEC_PREFIX: &str = "/mesh/service-spec/";
pub const INSTANCE_SPEC_PREFIX: &str = "/mesh/service-instances/spec/";
pub const INSTANCE_STATUS_PREFIX: &str = "/mesh/service-instances/status/";

/// Every key prefix the registry projection owns.
pub const OWNED_PREFIXES: &[&str] = &[
    TENANT_PREFIX,
    SERVICE_SPEC_PREFIX,
    INSTANCE_SPEC_PREFIX,
    INSTANCE_STATUS_PREFIX,
];

/// EaseMesh's tenant JSON.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantValue<'a> {
    pub name: &'a str,
    pub services: Vec<&'a str>,
    pub description: &'a str,
    pub created_at: String,
}

/// EaseMesh's `ServiceInstanceSpec` JSON.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceSpecValue<'a> {
    pub registry_name: &'a str,
    pub service_name: &'a str,
    #[serde(rename = "instanceID")]
    pub instance_id: &'a str,
    pub ip: &'a str,
    pub port: u16,
    pub registry_time: String,
    pub labels: &'a BTreeMap<String, String>,
    pub status: &'static str,
    pub agent_type: &'a str,
}

/// EaseMesh's `ServiceInstanceStatus` JSON.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceStatusValue<'a> {
    pub service_name: &'a str,
    #[serde(rename = "instanceID")]
    pub instance_id: &'a str,
    pub last_heartbeat_time: String,
}

impl<'a> InstanceSpecValue<'a> {
    pub fn new(state: &'a InstanceState, key: &'a InstanceKey, i: &'a Instance) -> Self {
        InstanceSpecValue {
            registry_name: &state.registry_name,
            service_name: &key.service,
            instance_id: &key.instance_id,
            ip: &i.ip,
            port: i.port,
            registry_time: rfc3339(i.registry_time_ms),
            labels: &i.labels,
            status: i.status().as_str(),
            agent_type: &i.agent_type,
        }
    }
}

impl<'a> InstanceStatusValue<'a> {
    pub fn new(key: &'a InstanceKey, i: &'a Instance) -> Self {
        InstanceStatusValue {
            service_name: &key.service,
            instance_id: &key.instance_id,
            last_heartbeat_time: rfc3339(i.last_heartbeat_ms),
        }
    }
}

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("registry values serialize")
}

/// A tenant as EaseMesh's API and etcd show it.
pub fn tenant_value(services: &ServiceState, name: &str) -> Option<String> {
    let t = services.tenants.get(name)?;
    Some(json(&TenantValue {
        name,
        services: t.services.iter().map(String::as_str).collect(),
        description: &t.description,
        created_at: rfc3339(t.created_at_ms),
    }))
}

/// A service spec as EaseMesh's API and etcd show it: the spec with its name.
pub fn service_value(services: &ServiceState, name: &str) -> Option<Value> {
    let s = services.services.get(name)?;
    let mut spec = match serde_json::from_str::<Value>(&s.spec) {
        Ok(Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    spec.insert("name".into(), Value::String(name.to_string()));
    Some(Value::Object(spec))
}

/// The catalog: tenants and services in EaseMesh's layout.
impl Projection for Services {
    const TARGETS: Targets = Targets {
        kube: false,
        etcd: true,
    };
    type Cursor = ();

    fn etcd_keys(services: &ServiceState, out: &mut BTreeMap<String, String>) {
        for name in services.tenants.keys() {
            if let Some(value) = tenant_value(services, name) {
                out.insert(format!("{TENANT_PREFIX}{name}"), value);
            }
        }
        for name in services.services.keys() {
            if let Some(value) = service_value(services, name) {
                out.insert(format!("{SERVICE_SPEC_PREFIX}{name}"), value.to_string());
            }
        }
    }

    fn etcd_prefixes() -> &'static [&'static str] {
        &[TENANT_PREFIX, SERVICE_SPEC_PREFIX]
    }
}

/// The instances: spec and status keys in EaseMesh's layout.
impl Projection for Instances {
    const TARGETS: Targets = Targets {
        kube: false,
        etcd: true,
    };
    type Cursor = ();

    fn etcd_keys(instances: &InstanceState, out: &mut BTreeMap<String, String>) {
        for (key, instance) in &instances.instances {
            let path = format!("{}/{}", key.service, key.instance_id);
            out.insert(
                format!("{INSTANCE_SPEC_PREFIX}{path}"),
                json(&InstanceSpecValue::new(instances, key, instance)),
            );
            out.insert(
                format!("{INSTANCE_STATUS_PREFIX}{path}"),
                json(&InstanceStatusValue::new(key, instance)),
            );
        }
    }

    fn etcd_prefixes() -> &'static [&'static str] {
        &[INSTANCE_SPEC_PREFIX, INSTANCE_STATUS_PREFIX]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actors::instance::{InstanceCommand, Registration};
    use actors::{Ctx, Mesh, MeshCommand};
    use serde_json::json;

    const T0: i64 = 1_795_305_600_000; // 2026-11-22T00:00:00Z

    #[test]
    fn easemesh_layout_and_shapes() {
        let mut mesh = Mesh::default();
        let mut ctx = Ctx::new(T0, 1);
        mesh.apply_documents(
            &[
                json!({"apiVersion": "mesh.megaease.com/v2alpha1", "kind": "MeshController",
                       "metadata": {"name": "easemesh-controller"},
                       "heartbeatInterval": "5s", "registryType": "eureka"}),
                json!({"apiVersion": "mesh.megaease.com/v2alpha1", "kind": "Tenant",
                       "metadata": {"name": "takeaway"}, "spec": {"description": "demo"}}),
                json!({"apiVersion": "mesh.megaease.com/v2alpha1", "kind": "Service",
                       "metadata": {"name": "order"}, "spec": {"registerTenant": "takeaway",
                       "loadBalance": {"policy": "roundRobin"}}}),
            ],
            &mut ctx,
        )
        .unwrap();
        let registration = Registration::from_value(&json!({"serviceName": "order",
            "instanceID": "order-1", "ip": "10.0.0.7", "port": 13001, "labels": {"version": "v1"}}))
        .unwrap();
        mesh.execute(
            MeshCommand::Instance(InstanceCommand::Register(registration)),
            &mut ctx,
        )
        .unwrap();
        let mut keys = crate::desired_etcd(&mesh);
        keys.retain(|k, _| !k.starts_with(crate::desired::ETCD_RESOURCE_PREFIX));
        let parsed = |k: &str| -> Value { serde_json::from_str(&keys[k]).unwrap() };
        assert_eq!(
            parsed("/mesh/tenants/takeaway"),
            json!({"name": "takeaway", "services": ["order"], "description": "demo",
                   "createdAt": "2026-11-22T00:00:00Z"})
        );
        let spec = parsed("/mesh/service-spec/order");
        assert_eq!(spec["name"], "order");
        assert_eq!(spec["registerTenant"], "takeaway");
        assert_eq!(spec["sidecar"]["ingressPort"], 13001);
        assert_eq!(
            parsed("/mesh/service-instances/spec/order/order-1"),
            json!({"registryName": "easemesh-controller", "serviceName": "order",
                   "instanceID": "order-1", "ip": "10.0.0.7", "port": 13001,
                   "registryTime": "2026-11-22T00:00:00Z", "labels": {"version": "v1"},
                   "status": "UP", "agentType": "None"})
        );
        assert_eq!(
            parsed("/mesh/service-instances/status/order/order-1"),
            json!({"serviceName": "order", "instanceID": "order-1",
                   "lastHeartbeatTime": "2026-11-22T00:00:00Z"})
        );
        assert_eq!(keys.len(), 4);
    }
}
