//! The fence API: fences with their status and Sidecar, `explain` for a Sidecar's egress
//! hosts, and the JSON-lines access-log intake (for use without Envoy).
//!
//! - `GET /api/v1/fences`: every fence (origin, enabled, domains, egress hosts);
//! - `GET /api/v1/fences/{namespace}/{name}`: the ServiceFence (with status) and its Sidecar;
//! - `GET /api/v1/fences/{namespace}/{name}/explain`: each egress host and its evidence;
//! - `POST /api/v1/accesslog`: JSON lines (see `fence::jsonl`), answered 202 with counts;
//! - `GET /api/v1/accesslog`: the intake's counters.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use actors::fence::{explain, Origin};
use events::schema::FenceKey;
use serde_json::json;

use super::{jsonl, EntrySender, IntakeCounters};
use crate::api::body::read_limited;
use crate::api::error::ApiError;
use crate::api::respond::respond;
use crate::api::ApiState;

/// The fence's I/O the API hands entries to.
pub struct FenceIo {
    pub entries: EntrySender,
    pub counters: Arc<IntakeCounters>,
}

fn origin(o: &Origin) -> serde_json::Value {
    match o {
        Origin::Manual { position } => json!({"kind": "manual", "position": position}),
        Origin::Auto { reason } => json!({"kind": "auto", "reason": reason.describe()}),
    }
}

pub async fn list(req: HttpRequest, state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let (items, position) = state
        .dispatcher
        .read::<actors::fence::Fences, _>(|s, position| {
            let items: Vec<_> = s
                .fences
                .iter()
                .map(|(key, view)| {
                    json!({
                        "namespace": key.namespace,
                        "name": key.name,
                        "origin": origin(&view.origin),
                        "enable": view.spec.enable,
                        "sidecar": view.has_sidecar(),
                        "domains": view.domains.len(),
                        "learned": s.learned.get(key).map_or(0, |l| l.len()),
                        "egressHosts": s.egress_hosts(key).map_or(0, |h| h.len()),
                    })
                })
                .collect();
            (items, position)
        })
        .await
        .map_err(|e| ApiError::dispatch(e, false))?;
    respond(
        &req,
        StatusCode::OK,
        &json!({"position": position, "items": items}),
    )
}

fn key_of(path: (String, String)) -> FenceKey {
    FenceKey::new(path.0, path.1)
}

pub async fn get(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let key = key_of(path.into_inner());
    let wanted = key.clone();
    let answer = state
        .dispatcher
        .read::<actors::fence::Fences, _>(move |fences, position| {
            fences.get(&wanted).map(|view| {
                json!({
                    "position": position,
                    "origin": origin(&view.origin),
                    "serviceFence": projections::fence::service_fence(fences, &wanted),
                    "sidecar": projections::fence::sidecar(fences, &wanted),
                })
            })
        })
        .await
        .map_err(|e| ApiError::dispatch(e, false))?;
    match answer {
        Some(body) => respond(&req, StatusCode::OK, &body),
        None => Err(ApiError::not_found(format!("no fence {key}"))),
    }
}

pub async fn explain(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let key = key_of(path.into_inner());
    let wanted = key.clone();
    let answer = state
        .dispatcher
        .read::<actors::fence::Fences, _>(move |s, position| {
            explain::explain(s, &wanted).map(|hosts| (hosts, position))
        })
        .await
        .map_err(|e| ApiError::dispatch(e, false))?;
    match answer {
        Some((hosts, position)) => respond(
            &req,
            StatusCode::OK,
            &json!({"fence": key.to_string(), "position": position, "egress": hosts}),
        ),
        None => Err(ApiError::not_found(format!("no fence {key}"))),
    }
}

pub async fn post_accesslog(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    state.auth.check(&req)?;
    let Some(fence) = state.io.get::<FenceIo>() else {
        return Err(ApiError::unavailable(
            "the access-log intake is not running",
        ));
    };
    let body = read_limited(&req, payload, state.body_limits()).await?;
    let before = fence.counters.snapshot().malformed;
    let entries = jsonl::parse_lines(&body, &fence.counters);
    let malformed = fence.counters.snapshot().malformed - before;
    let accepted = entries.len();
    if accepted > 0 {
        fence
            .entries
            .send(entries)
            .await
            .map_err(|_| ApiError::unavailable("the access-log intake stopped"))?;
    }
    respond(
        &req,
        StatusCode::ACCEPTED,
        &json!({"accepted": accepted, "malformed": malformed}),
    )
}

pub async fn accesslog_stats(
    req: HttpRequest,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let Some(fence) = state.io.get::<FenceIo>() else {
        return Err(ApiError::unavailable(
            "the access-log intake is not running",
        ));
    };
    respond(&req, StatusCode::OK, &fence.counters.snapshot())
}
