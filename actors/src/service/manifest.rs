//! EaseMesh documents turned into validated catalog items.
//!
//! Two input shapes are accepted: emctl's manifests (`apiVersion: mesh.megaease.com/...`,
//! `kind`, `metadata: {name, labels}`, `spec`) and the flat JSON bodies of EaseMesh's control
//! plane API (`/apis/v2/mesh/services` takes `{name, registerTenant, sidecar, ...}`).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::part::ServicePart;
use super::spec::{ControllerLimits, MeshControllerSpec, ServiceSpec};
use crate::decider::Rejection;
use crate::resource::manifest::{
    required_string, string_map, token_shape, type_name, validate_label_key, validate_label_value,
};

/// The API group of EaseMesh's kinds; any version of it is accepted (EaseMesh does not check
/// it either, and its own docs carry the typo `v1alpla1`).
pub const API_GROUP: &str = "mesh.megaease.com";
/// The version objects are shown with.
pub const API_VERSION: &str = "mesh.megaease.com/v2alpha1";
/// The reserved tenant whose services every service can see.
pub const GLOBAL_TENANT: &str = "global";

/// The catalog kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CatalogKind {
    Tenant,
    Service,
    MeshController,
    /// A part of a service, named by the service.
    Part(ServicePart),
}

impl CatalogKind {
    pub fn name(self) -> &'static str {
        match self {
            CatalogKind::Tenant => "Tenant",
            CatalogKind::Service => "Service",
            CatalogKind::MeshController => "MeshController",
            CatalogKind::Part(p) => p.kind(),
        }
    }

    /// Look a kind up by its exact name (documents match kinds case-sensitively, as emctl).
    pub fn from_name(name: &str) -> Option<CatalogKind> {
        match name {
            "Tenant" => Some(CatalogKind::Tenant),
            "Service" => Some(CatalogKind::Service),
            "MeshController" => Some(CatalogKind::MeshController),
            other => ServicePart::from_kind(other).map(CatalogKind::Part),
        }
    }
}

/// Identity of a catalog object.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CatalogRef {
    pub kind: CatalogKind,
    pub name: String,
}

impl std::fmt::Display for CatalogRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.kind.name(), self.name)
    }
}

/// A validated tenant.
#[derive(Clone, Debug, PartialEq)]
pub struct TenantItem {
    pub name: String,
    pub api_version: String,
    pub labels: BTreeMap<String, String>,
    pub description: String,
}

/// A validated service.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceItem {
    pub name: String,
    pub api_version: String,
    pub labels: BTreeMap<String, String>,
    pub spec: ServiceSpec,
}

/// A validated mesh controller.
#[derive(Clone, Debug, PartialEq)]
pub struct MeshControllerItem {
    pub name: String,
    pub api_version: String,
    pub labels: BTreeMap<String, String>,
    pub spec: MeshControllerSpec,
    pub limits: ControllerLimits,
}

/// A part of a service (its spec is checked with the whole service when it is applied).
#[derive(Clone, Debug, PartialEq)]
pub struct PartItem {
    pub service: String,
    pub part: ServicePart,
    pub spec: Value,
}

/// One validated catalog document.
#[derive(Clone, Debug, PartialEq)]
pub enum CatalogItem {
    Tenant(TenantItem),
    Service(ServiceItem),
    MeshController(MeshControllerItem),
    Part(PartItem),
}

impl CatalogItem {
    pub fn reference(&self) -> CatalogRef {
        let (kind, name) = match self {
            CatalogItem::Tenant(t) => (CatalogKind::Tenant, &t.name),
            CatalogItem::Service(s) => (CatalogKind::Service, &s.name),
            CatalogItem::MeshController(m) => (CatalogKind::MeshController, &m.name),
            CatalogItem::Part(p) => (CatalogKind::Part(p.part), &p.service),
        };
        CatalogRef {
            kind,
            name: name.clone(),
        }
    }

    /// Whether a document belongs to the catalog (its apiVersion is in EaseMesh's group).
    pub fn claims(document: &Value) -> bool {
        document
            .get("apiVersion")
            .and_then(Value::as_str)
            .is_some_and(|v| v.split('/').next() == Some(API_GROUP))
    }

    /// Validate an emctl-style document.
    pub fn from_document(document: &Value) -> Result<CatalogItem, Rejection> {
        let object = document.as_object().ok_or_else(|| {
            Rejection::invalid(
                "(document)",
                format!("expected a mapping, found {}", type_name(document)),
            )
        })?;
        let api_version = required_string(object, "apiVersion")?;
        if api_version.split('/').next() != Some(API_GROUP) {
            return Err(Rejection::invalid(
                "apiVersion",
                format!("`{api_version}` is not in the {API_GROUP} group"),
            ));
        }
        let kind_name = required_string(object, "kind")?;
        let kind = CatalogKind::from_name(kind_name).ok_or_else(|| {
            Rejection::invalid(
                "kind",
                format!(
                    "unknown kind `{kind_name}` in {API_GROUP} (known kinds: Tenant, Service, MeshController, LoadBalance, Resilience, Mock, ObservabilityTracings, ObservabilityMetrics, ObservabilityOutputServer; kinds are case-sensitive)"
                ),
            )
        })?;
        let metadata = match object.get("metadata") {
            Some(Value::Object(m)) => m,
            Some(other) => {
                return Err(Rejection::invalid(
                    "metadata",
                    format!("expected a mapping, found {}", type_name(other)),
                ))
            }
            None => return Err(Rejection::invalid("metadata", "missing")),
        };
        for key in metadata.keys() {
            if !["name", "labels"].contains(&key.as_str()) {
                return Err(Rejection::invalid(
                    format!("metadata.{key}"),
                    "unknown field (EaseMesh objects take metadata.name and metadata.labels)",
                ));
            }
        }
        let name = match kind {
            // "The mesh controller has one and only one; the name may be omitted."
            CatalogKind::MeshController if !metadata.contains_key("name") => {
                "easemesh-controller".to_string()
            }
            _ => required_string(metadata, "name")
                .map_err(|r| r.within("metadata"))?
                .to_string(),
        };
        validate_object_name("metadata.name", &name)?;
        let labels = labels_of(metadata)?;
        let api_version = api_version.to_string();
        let rest: Map<String, Value> = object
            .iter()
            .filter(|(k, _)| !["apiVersion", "kind", "metadata", "spec"].contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        match kind {
            CatalogKind::Tenant | CatalogKind::Service => {
                if let Some(field) = rest.keys().next() {
                    return Err(Rejection::invalid(field.clone(), "unknown field"));
                }
                let spec = object
                    .get("spec")
                    .cloned()
                    .unwrap_or(Value::Object(Map::new()));
                if kind == CatalogKind::Tenant {
                    tenant(name, api_version, labels, &spec, "spec")
                } else {
                    let spec = ServiceSpec::parse(&spec)?;
                    Ok(CatalogItem::Service(ServiceItem {
                        name,
                        api_version,
                        labels,
                        spec,
                    }))
                }
            }
            CatalogKind::Part(part) => {
                if let Some(field) = rest.keys().next() {
                    return Err(Rejection::invalid(field.clone(), "unknown field"));
                }
                match object.get("spec") {
                    Some(spec @ Value::Object(_)) => Ok(CatalogItem::Part(PartItem {
                        service: name,
                        part,
                        spec: spec.clone(),
                    })),
                    Some(other) => Err(Rejection::invalid(
                        "spec",
                        format!("expected a mapping, found {}", type_name(other)),
                    )),
                    None => Err(Rejection::invalid("spec", "missing")),
                }
            }
            CatalogKind::MeshController => {
                // The seed's form nests the settings under `spec:`; EaseMesh's later form puts
                // them inline. Either, not both.
                let (fields, prefix) = match object.get("spec") {
                    Some(spec) if rest.is_empty() => (spec.clone(), "spec"),
                    Some(_) => return Err(Rejection::invalid(
                        rest.keys().next().cloned().unwrap_or_default(),
                        "give the mesh controller's settings either under spec or inline, not both",
                    )),
                    None => (Value::Object(rest), ""),
                };
                let (spec, limits) = MeshControllerSpec::parse(&fields, prefix)?;
                Ok(CatalogItem::MeshController(MeshControllerItem {
                    name,
                    api_version,
                    labels,
                    spec,
                    limits,
                }))
            }
        }
    }

    /// Validate a flat EaseMesh API body (`{name, ...spec fields}`) of `kind`. When `path_name`
    /// is given (PUT/POST on a named path), the body's name must match it.
    pub fn from_api_body(
        kind: CatalogKind,
        body: &Value,
        path_name: Option<&str>,
    ) -> Result<CatalogItem, Rejection> {
        if let CatalogKind::Part(part) = kind {
            // The body is the part itself; the service comes from the path.
            let service = path_name.unwrap_or_default().to_string();
            validate_object_name("(path)", &service)?;
            return match body {
                Value::Object(_) => Ok(CatalogItem::Part(PartItem {
                    service,
                    part,
                    spec: body.clone(),
                })),
                other => Err(Rejection::invalid(
                    "(body)",
                    format!("expected a JSON object, found {}", type_name(other)),
                )),
            };
        }
        let object = body.as_object().ok_or_else(|| {
            Rejection::invalid(
                "(body)",
                format!("expected a JSON object, found {}", type_name(body)),
            )
        })?;
        let mut fields = object.clone();
        let name = match fields.remove("name") {
            Some(Value::String(s)) => s,
            Some(other) => {
                return Err(Rejection::invalid(
                    "name",
                    format!("expected a string, found {}", type_name(&other)),
                ))
            }
            None => match path_name {
                Some(n) => n.to_string(),
                None => return Err(Rejection::invalid("name", "missing")),
            },
        };
        if let Some(p) = path_name {
            if p != name {
                return Err(Rejection::invalid(
                    "name",
                    format!("the body names `{name}`, but the path names `{p}`"),
                ));
            }
        }
        validate_object_name("name", &name)?;
        // Server-set fields a client may echo back from a GET.
        fields.remove("createdAt");
        fields.remove("registryName");
        let api_version = API_VERSION.to_string();
        let labels = BTreeMap::new();
        match kind {
            CatalogKind::Tenant => tenant(name, api_version, labels, &Value::Object(fields), ""),
            CatalogKind::Service => Ok(CatalogItem::Service(ServiceItem {
                name,
                api_version,
                labels,
                spec: ServiceSpec::parse(&Value::Object(fields)).map_err(relative_to_body)?,
            })),
            CatalogKind::Part(_) => unreachable!("handled above"),
            CatalogKind::MeshController => {
                let (spec, limits) = MeshControllerSpec::parse(&Value::Object(fields), "")?;
                Ok(CatalogItem::MeshController(MeshControllerItem {
                    name,
                    api_version,
                    labels,
                    spec,
                    limits,
                }))
            }
        }
    }
}

/// API bodies are the spec itself: report `registerTenant`, not `spec.registerTenant`.
pub fn relative_to_body(mut r: Rejection) -> Rejection {
    if let Some(field) = &r.field {
        if let Some(rest) = field.strip_prefix("spec.") {
            r.field = Some(rest.to_string());
        } else if field == "spec" {
            r.field = Some("(body)".into());
        }
    }
    r
}

fn tenant(
    name: String,
    api_version: String,
    labels: BTreeMap<String, String>,
    spec: &Value,
    prefix: &str,
) -> Result<CatalogItem, Rejection> {
    let at = |f: &str| {
        if prefix.is_empty() {
            f.to_string()
        } else {
            format!("{prefix}.{f}")
        }
    };
    let spec = spec.as_object().ok_or_else(|| {
        Rejection::invalid(
            at("").trim_end_matches('.').to_string(),
            format!("expected a mapping, found {}", type_name(spec)),
        )
    })?;
    let mut description = String::new();
    for (key, value) in spec {
        match (key.as_str(), value) {
            ("description", Value::String(s)) => description = s.clone(),
            ("description", Value::Null) => {}
            ("description", other) => {
                return Err(Rejection::invalid(
                    at("description"),
                    format!("expected a string, found {}", type_name(other)),
                ))
            }
            ("services", Value::Null) => {}
            ("services", Value::Array(list)) if list.is_empty() => {}
            ("services", _) => {
                return Err(Rejection::invalid(
                    at("services"),
                    "is kept by the server from each service's registerTenant; clients cannot set it (leave it empty)",
                ))
            }
            (other, _) => return Err(Rejection::invalid(at(other), "unknown field")),
        }
    }
    Ok(CatalogItem::Tenant(TenantItem {
        name,
        api_version,
        labels,
        description,
    }))
}

fn labels_of(metadata: &Map<String, Value>) -> Result<BTreeMap<String, String>, Rejection> {
    let labels = string_map(metadata, "labels")?;
    for (key, value) in &labels {
        validate_label_key(&format!("metadata.labels.{key}"), key)?;
        validate_label_value(&format!("metadata.labels.{key}"), value)?;
    }
    Ok(labels)
}

/// Names of tenants, services and instances: they become etcd key segments, so no `/`, and
/// at most 253 of letters, digits, `-`, `_` and `.`, starting and ending alphanumeric.
pub fn validate_object_name(field: &str, name: &str) -> Result<(), Rejection> {
    token_shape(field, name, 253)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn emctl_documents_parse() {
        let svc = CatalogItem::from_document(&json!({
            "apiVersion": "mesh.megaease.com/v1alpla1", "kind": "Service",
            "metadata": {"name": "order"},
            "spec": {"registerTenant": "takeaway", "loadBalance": {"policy": "random"},
                     "sidecar": {"discoveryType": "eureka", "address": "127.0.0.1", "ingressPort": 13001,
                                 "ingressProtocol": "http", "egressPort": 13002, "egressProtocol": "http"}}}))
        .unwrap();
        assert_eq!(svc.reference().to_string(), "Service/order");
        // The seed's MeshController, with its settings under spec and kind/name repeated.
        let mc = CatalogItem::from_document(&json!({
            "apiVersion": "mesh.megaease.com/v1alpha1", "kind": "MeshController",
            "metadata": {"name": "mesh-controller"},
            "spec": {"heartbeatInterval": "5s", "ingressPort": 19527, "kind": "MeshController",
                     "name": "easemesh-controller", "registryType": "consul"}}))
        .unwrap();
        match mc {
            CatalogItem::MeshController(m) => assert_eq!(m.limits.heartbeat_interval_ms, 5000),
            other => panic!("{other:?}"),
        }
        // EaseMesh's inline form.
        CatalogItem::from_document(&json!({
            "apiVersion": "mesh.megaease.com/v2alpha1", "kind": "MeshController",
            "metadata": {"name": "easemesh-controller"},
            "heartbeatInterval": "5s", "registryType": "eureka", "apiPort": 13009, "ingressPort": 19527}))
        .unwrap();
    }

    #[test]
    fn bad_documents_name_the_field() {
        let cases = [
            (
                json!({"apiVersion": "mesh.megaease.com/v2alpha1", "kind": "service", "metadata": {"name": "a"}}),
                "kind",
            ),
            (
                json!({"apiVersion": "mesh.megaease.com/v2alpha1", "kind": "Tenant", "metadata": {"name": "a/b"}}),
                "metadata.name",
            ),
            (
                json!({"apiVersion": "mesh.megaease.com/v2alpha1", "kind": "Tenant", "metadata": {"name": "a"},
                    "spec": {"services": ["x"]}}),
                "spec.services",
            ),
            (
                json!({"apiVersion": "mesh.megaease.com/v2alpha1", "kind": "Tenant", "metadata": {"name": "a"},
                    "spec": {"description": 3}}),
                "spec.description",
            ),
            (
                json!({"apiVersion": "mesh.megaease.com/v2alpha1", "kind": "Service", "metadata": {"name": "a"},
                    "spec": {"registerTenant": "t", "sidecar": {"egressPort": 70000}}}),
                "spec.sidecar.egressPort",
            ),
            (
                json!({"apiVersion": "mesh.megaease.com/v2alpha1", "kind": "Service", "metadata": {"name": "a"},
                    "spec": {"registerTenant": "t"}, "status": {}}),
                "status",
            ),
        ];
        for (doc, field) in cases {
            let err = CatalogItem::from_document(&doc).unwrap_err();
            assert_eq!(err.field.as_deref(), Some(field), "{doc}: {err}");
        }
    }

    #[test]
    fn api_bodies_parse_and_check_the_path_name() {
        let t = CatalogItem::from_api_body(
            CatalogKind::Tenant,
            &json!({"name": "t", "description": "d", "services": null}),
            None,
        )
        .unwrap();
        assert_eq!(t.reference().to_string(), "Tenant/t");
        let err = CatalogItem::from_api_body(
            CatalogKind::Service,
            &json!({"name": "a", "registerTenant": "t"}),
            Some("b"),
        )
        .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("name"));
        let err = CatalogItem::from_api_body(
            CatalogKind::Service,
            &json!({"name": "a", "registerTenant": 7}),
            None,
        )
        .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("registerTenant"), "{err}");
    }
}
