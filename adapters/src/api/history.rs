//! `GET /api/v1/history?kind=K&name=N[&namespace=NS]`: every event that touched one object, in
//! log order, with its position, time and a one-line summary (the evidence of each decision
//! included). Read straight from the log, so it shows what the daemon decided, not a cache.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use actors::history;
use events::{Envelope, EventStore};
use projections::history::summarize;
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
    // Every concept names the streams of the object it keeps (see `actors::history`).
    let (object, sources) = history::sources(&q.kind, q.namespace.as_deref(), &q.name)
        .map_err(|r| ApiError::rejected(r, None))?;
    let store = state.dispatcher.store().clone();
    let entries = tokio::task::spawn_blocking(move || -> Result<Vec<Entry>, ApiError> {
        let reading = |e: events::StoreError| ApiError::internal(format!("reading the log: {e}"));
        let mut envelopes = Vec::new();
        for (i, source) in sources.iter().enumerate() {
            let read = read_all(store.as_ref(), &source.stream).map_err(reading)?;
            envelopes.extend(read.into_iter().map(|e| (e, i)));
        }
        envelopes.sort_by_key(|(e, _)| e.position);
        let mut entries = Vec::new();
        for (envelope, source) in envelopes {
            let event = envelope.decode().map_err(reading)?;
            if !sources[source].concerns(&event, &object) {
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
