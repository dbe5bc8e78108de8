//! `POST /api/v1/rollback` `{"to": POS, "reason": "...", "dryRun": bool}`: roll every concept
//! back to its state at a past position (a rollback event is appended; the projections then
//! converge the world), or with `dryRun` only show the plan: the objects it would create,
//! change and delete.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::body::json_body;
use super::body::read_limited;
use super::error::ApiError;
use super::respond::respond;
use super::ApiState;
use crate::host::{state_at, DispatchError};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RollbackRequest {
    to: u64,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    dry_run: bool,
}

pub async fn rollback(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    state.auth.check(&req)?;
    let body = read_limited(&req, payload, state.max_body_bytes).await?;
    let request: RollbackRequest = serde_json::from_value(json_body(&body)?)
        .map_err(|e| ApiError::invalid("(body)", e.to_string()))?;
    let dispatcher = &state.dispatcher;
    let now = dispatcher
        .mesh()
        .await
        .map_err(|e| ApiError::dispatch(e, false))?;
    // Refuse what the rollback itself would refuse before computing anything.
    actors::timeline::decide_rollback(&now.timeline, now.position, request.to, String::new())
        .map_err(|r| {
            ApiError::dispatch(
                DispatchError::Rejected {
                    index: 0,
                    rejection: r,
                },
                false,
            )
        })?;
    let store = dispatcher.store().clone();
    let snapshots = state.snapshots.clone();
    let to = request.to;
    let (changes, then_position) = tokio::task::spawn_blocking(move || {
        let then = state_at(store.as_ref(), snapshots.as_deref(), to)?;
        let changes = projections::rollback::rollback_plan(&now, &then);
        Ok::<_, events::StoreError>((changes, now.position))
    })
    .await
    .map_err(|e| ApiError::internal(format!("rollback plan task failed: {e}")))?
    .map_err(|e| ApiError::internal(format!("reading the log: {e}")))?;
    if request.dry_run {
        return respond(
            &req,
            StatusCode::OK,
            &json!({"dryRun": true, "to": to, "from": then_position, "changes": changes}),
        );
    }
    let executed = dispatcher
        .roll_back(to, request.reason)
        .await
        .map_err(|e| ApiError::dispatch(e, false))?;
    respond(
        &req,
        StatusCode::OK,
        &json!({"dryRun": false, "to": to, "position": executed.position, "changes": changes}),
    )
}
