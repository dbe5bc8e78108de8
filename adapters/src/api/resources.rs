//! Handlers of the declarative-resource API.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use actors::resource::kinds::{self, KindSpec};
use actors::resource::manifest::DEFAULT_NAMESPACE;
use actors::resource::{ResourceCommand, ResourceManifest, StoredResource};
use actors::service::{CatalogItem, ServiceCommand};
use actors::MeshCommand;
use events::schema::ResourceKey;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::body::{documents, read_limited};
use super::error::ApiError;
use super::respond::respond;
use super::ApiState;
use crate::clock::rfc3339;
use crate::host::{DispatchError, Executed};

#[derive(Deserialize)]
pub struct NamespaceQuery {
    namespace: Option<String>,
    /// Answer from the state at this past log position (reads only).
    at: Option<u64>,
}

impl NamespaceQuery {
    /// Writes act on the present: `at` is refused.
    fn present(self) -> Result<Option<String>, ApiError> {
        match self.at {
            Some(_) => Err(ApiError::invalid(
                "at",
                "only reads can look at a past position",
            )),
            None => Ok(self.namespace),
        }
    }
}

/// Run `query` on the resources as of `at` (a past position), or on the live state.
async fn read_resources_at<R: Send + 'static>(
    state: &ApiState,
    at: Option<u64>,
    query: impl FnOnce(&actors::resource::ResourceState, u64) -> R + Send + 'static,
) -> Result<R, ApiError> {
    match at {
        None => state
            .dispatcher
            .read::<actors::resource::Resources, _>(query)
            .await
            .map_err(|e| ApiError::dispatch(e, false)),
        Some(at) => {
            let mesh = state.past(at).await?;
            Ok(query(&mesh.resources, mesh.position))
        }
    }
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
    let list: Vec<Value> = actors::kinds::applied()
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
    let body = read_limited(&req, payload, state.body_limits()).await?;
    let docs = documents(&req, &body)?;
    let mut batch = ApplyBatch::parse(&docs)?;
    let commands = std::mem::take(&mut batch.commands);
    let executed = state
        .dispatcher
        .execute_all(commands)
        .await
        .map_err(|e| batch.map_error(e))?;
    respond(
        &req,
        StatusCode::OK,
        &json!({ "results": batch.lines.results(&executed) }),
    )
}

/// The documents of one apply request as commands: one per Kubernetes object, and one for all
/// EaseMesh catalog objects together (they share a stream, and a later one may need an earlier
/// one: a tenant and its services in one file).
struct ApplyBatch {
    commands: Vec<MeshCommand>,
    lines: Lines,
    /// Document index of each catalog item, in order.
    catalog_docs: Vec<usize>,
    /// Document index of each command (the catalog command points at its first document).
    command_docs: Vec<usize>,
}

/// Which identity each document's result line shows, and where its outcome comes from.
struct Lines(Vec<(ResourceKey, usize, Option<usize>)>);

impl Lines {
    fn results(&self, executed: &[Executed]) -> Vec<ResultLine> {
        self.0
            .iter()
            .map(|(key, command, item)| {
                let e = &executed[*command];
                let mut line = ResultLine::new(key, e);
                if let Some(outcome) = item.and_then(|i| e.item_outcomes.get(i)) {
                    line.outcome = outcome.as_str();
                }
                line
            })
            .collect()
    }
}

impl ApplyBatch {
    /// Validate every document before anything is decided: one bad document rejects them all.
    fn parse(docs: &[Value]) -> Result<ApplyBatch, ApiError> {
        let mut commands = Vec::new();
        let mut command_docs = Vec::new();
        let mut items = Vec::new();
        let mut catalog_docs = Vec::new();
        let mut lines = Vec::new();
        for (i, doc) in docs.iter().enumerate() {
            let at = |r| ApiError::rejected(r, Some(&format!("documents[{i}]")));
            if CatalogItem::claims(doc) {
                let item = CatalogItem::from_document(doc).map_err(at)?;
                let r = item.reference();
                lines.push((
                    ResourceKey::new(r.kind.name(), "", r.name),
                    usize::MAX,
                    Some(items.len()),
                ));
                catalog_docs.push(i);
                items.push(item);
            } else {
                let manifest = ResourceManifest::from_value(doc).map_err(at)?;
                lines.push((manifest.key.clone(), commands.len(), None));
                command_docs.push(i);
                commands.push(MeshCommand::Resource(ResourceCommand::Apply(manifest)));
            }
        }
        if !items.is_empty() {
            let index = commands.len();
            for line in lines.iter_mut().filter(|l| l.2.is_some()) {
                line.1 = index;
            }
            command_docs.push(catalog_docs[0]);
            commands.push(MeshCommand::Service(ServiceCommand::Apply(items)));
        }
        Ok(ApplyBatch {
            commands,
            lines: Lines(lines),
            catalog_docs,
            command_docs,
        })
    }

    /// Name the document at fault in a rejection.
    fn map_error(&self, e: DispatchError) -> ApiError {
        match e {
            DispatchError::Rejected { index, rejection } => {
                let doc = match rejection.item {
                    Some(item) => self.catalog_docs.get(item).copied(),
                    None => self.command_docs.get(index).copied(),
                }
                .unwrap_or(index);
                ApiError::rejected(rejection, Some(&format!("documents[{doc}]")))
            }
            DispatchError::Duplicate { index, first } => {
                let doc = |i: usize| self.command_docs.get(i).copied().unwrap_or(i);
                ApiError::invalid(
                    format!("documents[{}]", doc(index)),
                    format!("names the same object as documents[{}]", doc(first)),
                )
            }
            other => ApiError::dispatch(other, true),
        }
    }
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
    let key = key_of(spec, &name, query.into_inner().present()?)?;
    let body = read_limited(&req, payload, state.body_limits()).await?;
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
    let query = query.into_inner();
    let key = key_of(kind(&kind_name)?, &name, query.namespace)?;
    let lookup = key.clone();
    let found = read_resources_at(&state, query.at, move |s, _| {
        s.get(&lookup).map(|r| render(&lookup, r))
    })
    .await?;
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
    let query = query.into_inner();
    let namespace = query.namespace;
    let kind_name = spec.kind;
    let (items, position) = read_resources_at(&state, query.at, move |s, position| {
        let items: Vec<Value> = s
            .list(kind_name, namespace.as_deref())
            .map(|(k, r)| render(k, r))
            .collect();
        (items, position)
    })
    .await?;
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
    let key = key_of(kind(&kind_name)?, &name, query.into_inner().present()?)?;
    let executed = state
        .dispatcher
        .execute(MeshCommand::Resource(ResourceCommand::Delete(key.clone())))
        .await
        .map_err(|e| ApiError::dispatch(e, false))?;
    respond(&req, StatusCode::OK, &ResultLine::new(&key, &executed))
}
