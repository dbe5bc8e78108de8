//! `GET /api/v1/history?kind=K&name=N[&namespace=NS]`: every event that touched one object, in
//! log order, with its position, time and a one-line summary (the evidence of each decision
//! included). Read straight from the log, so it shows what the daemon decided, not a cache.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use actors::fence::SERVICE_FENCE_KIND;
use actors::resource::kinds;
use actors::resource::manifest::DEFAULT_NAMESPACE;
use events::schema::{cluster, Event, FenceKey, InstanceKey, ResourceKey, CATALOG_STREAM};
use events::{Envelope, EventStore};
use projections::history::{concerns, summarize};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::respond::respond;
use super::ApiState;
use crate::clock::rfc3339;

/// Events read per request to the store.
const PAGE: usize = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    kind: String,
    name: String,
    namespace: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    position: u64,
    stream_version: u64,
    time: String,
    event: String,
    summary: String,
}

/// Where an object's history is: its streams (a ServiceFence's resource stream and what it
/// learned), and for catalog objects which of the catalog's events concern it.
enum Source {
    Streams(Vec<String>),
    Catalog {
        kind: &'static str,
    },
    /// A Kubernetes object: its own streams (applied through meshplane, what its fence
    /// learned) and its observations, which share one stream per kind.
    Object {
        streams: Vec<String>,
        key: ResourceKey,
    },
}

fn source_of(q: &HistoryQuery) -> Result<Source, ApiError> {
    match q.kind.as_str() {
        "ServiceInstance" => {
            let (service, id) = q.name.split_once('/').ok_or_else(|| {
                ApiError::invalid("name", "a service instance is named SERVICE/INSTANCE_ID")
            })?;
            Ok(Source::Streams(
                vec![InstanceKey::new(service, id).stream()],
            ))
        }
        "Tenant" => Ok(Source::Catalog { kind: "Tenant" }),
        "MeshService" => Ok(Source::Catalog { kind: "Service" }),
        "MeshController" => Ok(Source::Catalog {
            kind: "MeshController",
        }),
        other => {
            // A kind meshplane applies, or one it only watches (Pods, Nodes, EndpointSlices).
            let (kind, namespaced, applied) = match kinds::find(other) {
                Some(spec) => (spec.kind, spec.namespaced, true),
                None => {
                    let watched = actors::kinds::watched()
                        .find(|k| k.kind.eq_ignore_ascii_case(other) || k.plural == other)
                        .ok_or_else(|| {
                            ApiError::invalid(
                                "kind",
                                format!(
                                    "unknown kind `{other}` (ServiceInstance, Tenant, MeshService, MeshController, or one of {})",
                                    kinds::known_kinds()
                                ),
                            )
                        })?;
                    (watched.kind, watched.namespaced, false)
                }
            };
            let namespace = if namespaced {
                q.namespace
                    .clone()
                    .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string())
            } else {
                String::new()
            };
            let key = ResourceKey::new(kind, &namespace, q.name.clone());
            let mut streams = Vec::new();
            if applied {
                streams.push(key.stream());
            }
            if kind == SERVICE_FENCE_KIND {
                // Auto-created fences have no resource stream; both have what they learned.
                streams.push(FenceKey::new(namespace, q.name.clone()).stream());
            }
            Ok(Source::Object { streams, key })
        }
    }
}

fn read_all(store: &dyn EventStore, stream: &str) -> Result<Vec<Envelope>, events::StoreError> {
    let mut out = Vec::new();
    loop {
        let page = store.read_stream(stream, out.len() as u64 + 1, PAGE)?;
        let done = page.len() < PAGE;
        out.extend(page);
        if done {
            return Ok(out);
        }
    }
}

pub async fn history(
    req: HttpRequest,
    query: web::Query<HistoryQuery>,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let source = source_of(&q)?;
    let store = state.dispatcher.store().clone();
    let name = q.name.clone();
    let entries = tokio::task::spawn_blocking(move || -> Result<Vec<Entry>, ApiError> {
        let (streams, filter, observed) = match &source {
            Source::Streams(streams) => (streams.clone(), None, None),
            Source::Catalog { kind } => (vec![CATALOG_STREAM.to_string()], Some(*kind), None),
            Source::Object { streams, key } => (streams.clone(), None, Some(key)),
        };
        let reading = |e: events::StoreError| ApiError::internal(format!("reading the log: {e}"));
        // The kind's observation stream holds every object of the kind: only this one's count.
        let observed_stream = observed.map(|key| cluster::stream_of(&key.kind));
        let mut envelopes = Vec::new();
        for stream in streams.iter().chain(&observed_stream) {
            envelopes.extend(read_all(store.as_ref(), stream).map_err(reading)?);
        }
        envelopes.sort_by_key(|e| e.position);
        let mut entries = Vec::new();
        for envelope in envelopes {
            let event = envelope.decode().map_err(reading)?;
            let concerned = match (filter, observed) {
                (Some(kind), _) => concerns(&event, kind, &name),
                (None, Some(key)) if Some(&envelope.stream) == observed_stream.as_ref() => {
                    matches!(&event, Event::ObjectObserved(e) if &e.key == key)
                        || matches!(&event, Event::ObjectGone(e) if &e.key == key)
                }
                _ => true,
            };
            if !concerned {
                continue;
            }
            entries.push(Entry {
                position: envelope.position,
                stream_version: envelope.stream_version,
                time: rfc3339(envelope.recorded_at_ms),
                event: envelope.event_type.clone(),
                summary: summarize(&event),
            });
        }
        Ok(entries)
    })
    .await
    .map_err(|e| ApiError::internal(format!("history task failed: {e}")))??;
    if entries.is_empty() {
        return Err(ApiError::not_found(format!(
            "no history for {} {}",
            q.kind, q.name
        )));
    }
    respond(
        &req,
        StatusCode::OK,
        &serde_json::json!({"kind": q.kind, "name": q.name, "items": entries}),
    )
}
