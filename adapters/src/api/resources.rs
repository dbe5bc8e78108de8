//! Handlers of the declarative-resource API.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use actors::resource::kinds::{self, KindSpec};
use actors::resource::manifest::DEFAULT_NAMESPACE;
use actors::resource::{ResourceCommand, ResourceManifest, StoredResource};
use actors::MeshCommand;
use events::schema::ResourceKey;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::body::{documents, read_limited};
use super::error::ApiError;
use super::respond::respond;
use super::ApiState;
use crate::clock::rfc3339;
use crate::host::Executed;

#[derive(Deserialize)]
pub struct NamespaceQuery {
    namespace: Option<String>,
}

/// One line of an apply or delete answer.
#[derive(Serialize)]
struct ResultLine {
    kind: String,
    namespace: String,
    name: String,
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    position: Option<u64>,
}

impl ResultLine {
    fn new(key: &ResourceKey, executed: &Executed) -> Self {
        ResultLine {
            kind: key.kind.clone(),
            namespace: key.namespace.clone(),
            name: key.name.clone(),
            outcome: executed.outcome.as_str(),
            position: executed.position,
        }
    }
}

fn kind(name: &str) -> Result<&'static KindSpec, ApiError> {
    kinds::find(name).ok_or_else(|| {
        ApiError::not_found(format!(
            "unknown kind `{name}` (known kinds: {})",
            kinds::known_kinds()
        ))
    })
}

/// The key a path names: namespaced kinds default to `default`; cluster-scoped take none.
fn key_of(spec: &KindSpec, name: &str, namespace: Option<String>) -> Result<ResourceKey, ApiError> {
    let namespace = match (spec.namespaced, namespace) {
        (true, ns) => ns.unwrap_or_else(|| DEFAULT_NAMESPACE.to_string()),
        (false, None) => String::new(),
        (false, Some(ns)) if ns.is_empty() => String::new(),
        (false, Some(_)) => {
            return Err(ApiError::invalid(
                "namespace",
                format!("{} is cluster-scoped and takes no namespace", spec.kind),
            ))
        }
    };
    Ok(ResourceKey::new(spec.kind, namespace, name))
}

/// A stored resource as the API shows it: the object plus server-side metadata.
fn render(key: &ResourceKey, r: &StoredResource) -> Value {
    let mut object = r.to_object(key);
    let metadata = &mut object["metadata"];
    metadata["resourceVersion"] = json!(r.updated_position.to_string());
    metadata["generation"] = json!(r.version);
    metadata["creationTimestamp"] = json!(rfc3339(r.created_at_ms));
    object
}

pub async fn kinds() -> HttpResponse {
    let list: Vec<Value> = kinds::KINDS
        .iter()
        .map(|k| json!({"kind": k.kind, "apiVersions": k.api_versions, "namespaced": k.namespaced, "plural": k.plural, "aliases": k.aliases}))
        .collect();
    HttpResponse::Ok().json(list)
}

pub async fn apply(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    state.auth.check(&req)?;
    let body = read_limited(&req, payload, state.max_body_bytes).await?;
    let docs = documents(&req, &body)?;
    // Validate every document before anything is decided: one bad document rejects them all.
    let manifests = docs
        .iter()
        .enumerate()
        .map(|(i, doc)| {
            ResourceManifest::from_value(doc)
                .map_err(|r| ApiError::rejected(r, Some(&format!("documents[{i}]"))))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let keys: Vec<ResourceKey> = manifests.iter().map(|m| m.key.clone()).collect();
    let commands = manifests
        .into_iter()
        .map(|m| MeshCommand::Resource(ResourceCommand::Apply(m)))
        .collect();
    let executed = state
        .dispatcher
        .execute_all(commands)
        .await
        .map_err(|e| ApiError::dispatch(e, true))?;
    let results: Vec<ResultLine> = keys
        .iter()
        .zip(&executed)
        .map(|(k, e)| ResultLine::new(k, e))
        .collect();
    respond(&req, StatusCode::OK, &json!({ "results": results }))
}

pub async fn put(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    query: web::Query<NamespaceQuery>,
    payload: web::Payload,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    state.auth.check(&req)?;
    let (kind_name, name) = path.into_inner();
    let spec = kind(&kind_name)?;
    let key = key_of(spec, &name, query.into_inner().namespace)?;
    let body = read_limited(&req, payload, state.max_body_bytes).await?;
    let mut docs = documents(&req, &body)?;
    if docs.len() != 1 {
        return Err(ApiError::invalid(
            "(body)",
            format!("PUT takes exactly one document, got {}", docs.len()),
        ));
    }
    let manifest =
        ResourceManifest::from_value(&docs.remove(0)).map_err(|r| ApiError::rejected(r, None))?;
    if manifest.key != key {
        return Err(ApiError::invalid(
            "metadata",
            format!(
                "the document names {}, but the path names {key}",
                manifest.key
            ),
        ));
    }
    let executed = state
        .dispatcher
        .execute(MeshCommand::Resource(ResourceCommand::Apply(manifest)))
        .await
        .map_err(|e| ApiError::dispatch(e, false))?;
    respond(&req, StatusCode::OK, &ResultLine::new(&key, &executed))
}

pub async fn get(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    query: web::Query<NamespaceQuery>,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let (kind_name, name) = path.into_inner();
    let key = key_of(kind(&kind_name)?, &name, query.into_inner().namespace)?;
    let lookup = key.clone();
    let found = state
        .dispatcher
        .read_resources(move |s, _| s.get(&lookup).map(|r| render(&lookup, r)))
        .await
        .map_err(|e| ApiError::dispatch(e, false))?;
    match found {
        Some(object) => respond(&req, StatusCode::OK, &object),
        None => Err(ApiError::not_found(format!("{key} not found"))),
    }
}

pub async fn list(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<NamespaceQuery>,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let spec = kind(&path.into_inner())?;
    let namespace = query.into_inner().namespace;
    let kind_name = spec.kind;
    let (items, position) = state
        .dispatcher
        .read_resources(move |s, position| {
            let items: Vec<Value> = s
                .list(kind_name, namespace.as_deref())
                .map(|(k, r)| render(k, r))
                .collect();
            (items, position)
        })
        .await
        .map_err(|e| ApiError::dispatch(e, false))?;
    respond(
        &req,
        StatusCode::OK,
        &json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": position.to_string()}, "items": items}),
    )
}

pub async fn delete(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    query: web::Query<NamespaceQuery>,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    state.auth.check(&req)?;
    let (kind_name, name) = path.into_inner();
    let key = key_of(kind(&kind_name)?, &name, query.into_inner().namespace)?;
    let executed = state
        .dispatcher
        .execute(MeshCommand::Resource(ResourceCommand::Delete(key.clone())))
        .await
        .map_err(|e| ApiError::dispatch(e, false))?;
    respond(&req, StatusCode::OK, &ResultLine::new(&key, &executed))
}
