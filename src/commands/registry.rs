//! The registry's kinds on the command line: `get serviceinstances|tenants|services|
//! meshcontrollers` and their deletes, over the daemon's registry API.

use actors::service::ServicePart;
use anyhow::{bail, Result};
use serde_json::Value;

use crate::cli::{GetArgs, InstanceFilterArgs, OutputFormat};
use crate::client::Client;
use crate::commands::{objects_of, print};
use crate::output::{self, align, human_age, parse_rfc3339_ms, scalar};

/// A registry kind as named on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegistryKind {
    ServiceInstances,
    Tenants,
    /// EaseMesh's mesh services (Kubernetes Services stay `svc`).
    Services,
    MeshControllers,
    /// A part of a service (`LoadBalance`, `Resilience`, ...), named by the service.
    Part(ServicePart),
}

impl RegistryKind {
    /// Look a kind up (case-insensitive), as emctl names them.
    pub fn find(name: &str) -> Option<RegistryKind> {
        match name.to_ascii_lowercase().as_str() {
            "serviceinstances" | "serviceinstance" | "si" | "instances" | "instance" => {
                Some(RegistryKind::ServiceInstances)
            }
            "tenants" | "tenant" => Some(RegistryKind::Tenants),
            "services" | "service" | "meshservices" | "meshservice" => Some(RegistryKind::Services),
            "meshcontrollers" | "meshcontroller" | "mesh-controller" => {
                Some(RegistryKind::MeshControllers)
            }
            _ => None,
        }
    }

    /// The catalog kind of an EaseMesh document's `kind`.
    pub fn of_document_kind(kind: &str) -> Option<RegistryKind> {
        match kind {
            "Tenant" => Some(RegistryKind::Tenants),
            "Service" => Some(RegistryKind::Services),
            "MeshController" => Some(RegistryKind::MeshControllers),
            other => ServicePart::from_kind(other).map(RegistryKind::Part),
        }
    }

    fn collection(self) -> &'static str {
        match self {
            RegistryKind::ServiceInstances => "instances",
            RegistryKind::Tenants => "tenants",
            RegistryKind::Services => "services",
            RegistryKind::MeshControllers => "meshcontrollers",
            RegistryKind::Part(_) => "services",
        }
    }

    fn singular(self) -> &'static str {
        match self {
            RegistryKind::ServiceInstances => "serviceinstance",
            RegistryKind::Tenants => "tenant",
            RegistryKind::Services => "service",
            RegistryKind::MeshControllers => "meshcontroller",
            RegistryKind::Part(_) => "servicepart",
        }
    }
}

/// The answer to `-n`/`-A` with a registry kind: registry objects are mesh-wide, and a
/// Kubernetes Service (which `services` meant before the registry) is `svc`.
pub fn not_namespaced(kind: &str) -> String {
    format!(
        "`{kind}` names the mesh registry, which has no namespaces (drop -n/-A); for Kubernetes Services use `svc`"
    )
}

/// The query of `get serviceinstances`.
fn instance_query(filter: &InstanceFilterArgs) -> Result<Vec<(&'static str, String)>> {
    let mut query = Vec::new();
    if let Some(s) = &filter.service {
        query.push(("service", s.clone()));
    }
    if let Some(t) = &filter.tenant {
        query.push(("tenant", t.clone()));
    }
    for label in &filter.labels {
        if !label.contains('=') {
            bail!("--label {label}: expected KEY=VALUE");
        }
        query.push(("label", label.clone()));
    }
    if let Some(s) = &filter.status {
        query.push(("status", s.to_ascii_uppercase()));
    }
    Ok(query)
}

pub fn get(client: &Client, kind: RegistryKind, args: &GetArgs) -> Result<()> {
    if kind != RegistryKind::ServiceInstances && !args.filter.is_empty() {
        bail!("--service, --tenant, --label and --status filter serviceinstances only");
    }
    let mut path = format!("/api/v1/registry/{}", kind.collection());
    if let Some(name) = &args.name {
        if kind == RegistryKind::ServiceInstances && !name.contains('/') {
            bail!("a service instance is named SERVICE/INSTANCE_ID, got `{name}`");
        }
        path.push('/');
        path.push_str(name);
    }
    let mut query = instance_query(&args.filter)?;
    if let Some(at) = args.at {
        query.push(("at", at.to_string()));
    }
    let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let answer = if kind == RegistryKind::ServiceInstances && args.name.is_none() {
        all_pages(client, &path, &query)?
    } else {
        client.get(&path, &query)?
    };
    if args.output != OutputFormat::Table {
        return print(&output::render_document(&answer, args.output)?);
    }
    let items = objects_of(answer, args.name.is_some());
    if items.is_empty() {
        eprintln!("No resources found.");
        return Ok(());
    }
    let now = adapters::clock::now_ms();
    print(&match kind {
        RegistryKind::ServiceInstances => instance_table(&items),
        RegistryKind::Tenants => tenant_table(&items, now),
        RegistryKind::Services => service_table(&items, now),
        RegistryKind::MeshControllers => controller_table(&items),
        RegistryKind::Part(_) => unreachable!("parts are not listed on their own"),
    })
}

/// Instances per request when listing: each page is one short turn of the daemon's instance
/// actor, however large the registry.
const PAGE: &str = "5000";

/// Fetch every page of a listing and join their items into one list.
fn all_pages(client: &Client, path: &str, query: &[(&str, &str)]) -> Result<Value> {
    let mut first: Option<Value> = None;
    let mut items = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let mut page_query = query.to_vec();
        page_query.push(("limit", PAGE));
        if let Some(token) = &next {
            page_query.push(("continue", token.as_str()));
        }
        let mut page = client.get(path, &page_query)?;
        next = page
            .get("continue")
            .and_then(Value::as_str)
            .map(str::to_string);
        if let Some(Value::Array(page_items)) = page.get_mut("items").map(Value::take) {
            items.extend(page_items);
        }
        first.get_or_insert(page);
        if next.is_none() {
            break;
        }
    }
    let mut list = first.unwrap_or_default();
    if let Value::Object(map) = &mut list {
        map.remove("continue");
        map.insert("items".into(), Value::Array(items));
    }
    Ok(list)
}

/// `meshplane delete KIND NAME` for a registry kind: tenants and services are deleted; a
/// service instance (`SERVICE/ID`) is taken offline, as emctl does.
pub fn delete(client: &Client, kind: RegistryKind, name: &str) -> Result<String> {
    match kind {
        RegistryKind::Tenants | RegistryKind::Services => {
            client.delete(&format!("/apis/v2/mesh/{}/{name}", kind.collection()), &[])?;
            Ok(format!("{}/{name} deleted\n", kind.singular()))
        }
        RegistryKind::ServiceInstances => {
            let Some((service, id)) = name.split_once('/') else {
                bail!("a service instance is named SERVICE/INSTANCE_ID, got `{name}`");
            };
            client.post_json(
                &format!("/api/v1/registry/instances/{service}/{id}/offline"),
                &serde_json::json!({"reason": "meshplane delete"}),
            )?;
            Ok(format!("serviceinstance/{name} taken offline\n"))
        }
        RegistryKind::MeshControllers => {
            bail!("the mesh controller cannot be deleted; apply new settings instead")
        }
        RegistryKind::Part(part) => {
            client.delete(
                &format!("/apis/v2/mesh/services/{name}/{}", part.path()),
                &[],
            )?;
            Ok(format!(
                "{}/{name} deleted\n",
                part.kind().to_ascii_lowercase()
            ))
        }
    }
}

fn text(object: &Value, pointer: &str) -> String {
    object
        .pointer(pointer)
        .map(scalar)
        .unwrap_or_else(|| "<none>".into())
}

fn age(object: &Value, now_ms: i64) -> String {
    object
        .pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str)
        .and_then(parse_rfc3339_ms)
        .map(|created| human_age(now_ms - created))
        .unwrap_or_else(|| "<unknown>".into())
}

fn labels(object: &Value) -> String {
    let pairs: Vec<String> = object
        .get("labels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", scalar(v)))
        .collect();
    if pairs.is_empty() {
        "<none>".into()
    } else {
        pairs.join(",")
    }
}

/// SERVICE, TENANT, INSTANCE, LABELS, IP, PORT, STATUS, LAST HEARTBEAT.
pub fn instance_table(items: &[Value]) -> String {
    let mut rows = vec![[
        "SERVICE",
        "TENANT",
        "INSTANCE",
        "LABELS",
        "IP",
        "PORT",
        "STATUS",
        "LAST HEARTBEAT",
    ]
    .map(String::from)
    .to_vec()];
    for i in items {
        let mut status = text(i, "/status");
        if i.get("offline").is_some() {
            status.push_str(" (offline)");
        }
        rows.push(vec![
            text(i, "/serviceName"),
            text(i, "/tenant"),
            text(i, "/instanceID"),
            labels(i),
            text(i, "/ip"),
            text(i, "/port"),
            status,
            text(i, "/lastHeartbeatTime"),
        ]);
    }
    align(&rows)
}

fn tenant_table(items: &[Value], now_ms: i64) -> String {
    let mut rows = vec![["NAME", "SERVICES", "DESCRIPTION", "POSITION", "AGE"]
        .map(String::from)
        .to_vec()];
    for t in items {
        let services: Vec<String> = t
            .pointer("/spec/services")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(scalar)
            .collect();
        rows.push(vec![
            text(t, "/metadata/name"),
            if services.is_empty() {
                "<none>".into()
            } else {
                services.join(",")
            },
            text(t, "/spec/description"),
            text(t, "/metadata/resourceVersion"),
            age(t, now_ms),
        ]);
    }
    align(&rows)
}

fn service_table(items: &[Value], now_ms: i64) -> String {
    let mut rows = vec![[
        "NAME",
        "TENANT",
        "LOAD BALANCE",
        "SIDECAR",
        "POSITION",
        "AGE",
    ]
    .map(String::from)
    .to_vec()];
    for s in items {
        rows.push(vec![
            text(s, "/metadata/name"),
            text(s, "/spec/registerTenant"),
            s.pointer("/spec/loadBalance/policy")
                .map(scalar)
                .unwrap_or_else(|| "roundRobin".into()),
            format!(
                "{}:{}/{}",
                text(s, "/spec/sidecar/discoveryType"),
                text(s, "/spec/sidecar/ingressPort"),
                text(s, "/spec/sidecar/egressPort")
            ),
            text(s, "/metadata/resourceVersion"),
            age(s, now_ms),
        ]);
    }
    align(&rows)
}

fn controller_table(items: &[Value]) -> String {
    let mut rows = vec![["NAME", "HEARTBEAT", "REGISTRY", "PORTS", "POSITION"]
        .map(String::from)
        .to_vec()];
    for c in items {
        rows.push(vec![
            text(c, "/metadata/name"),
            text(c, "/spec/heartbeatInterval"),
            text(c, "/spec/registryType"),
            format!(
                "{}/API,{}/Ingress",
                text(c, "/spec/apiPort"),
                text(c, "/spec/ingressPort")
            ),
            text(c, "/metadata/resourceVersion"),
        ]);
    }
    align(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kinds_by_name() {
        assert_eq!(
            RegistryKind::find("si"),
            Some(RegistryKind::ServiceInstances)
        );
        assert_eq!(
            RegistryKind::find("ServiceInstances"),
            Some(RegistryKind::ServiceInstances)
        );
        assert_eq!(RegistryKind::find("services"), Some(RegistryKind::Services));
        assert_eq!(
            RegistryKind::find("svc"),
            None,
            "svc stays Kubernetes' Service"
        );
        assert_eq!(RegistryKind::find("cm"), None);
    }

    #[test]
    fn instance_table_has_the_issue_columns() {
        let table = instance_table(&[json!({"serviceName": "order", "tenant": "takeaway",
            "instanceID": "order-1", "labels": {"version": "v1"}, "ip": "10.0.0.7", "port": 13001,
            "status": "OUT_OF_SERVICE", "offline": {"reason": ""}, "lastHeartbeatTime": "2026-11-22T00:00:00Z"})]);
        let lines: Vec<&str> = table.lines().collect();
        assert!(
            lines[0].starts_with(
                "SERVICE   TENANT     INSTANCE   LABELS       IP         PORT    STATUS"
            ),
            "{table}"
        );
        assert!(lines[0].ends_with("LAST HEARTBEAT"));
        assert!(lines[1].contains("order     takeaway   order-1    version=v1   10.0.0.7   13001   OUT_OF_SERVICE (offline)"), "{table}");
    }
}
