//! `POST /api/v1/rollback` `{"to": POS, "reason": "...", "dryRun": bool}`: roll every concept
//! back to its state at a past position (a rollback event is appended; the projections then
//! converge the world), or with `dryRun` only show the plan: the objects it would create,
//! change and delete.
//!
//! Position 0 is the empty state before the first event: rolling back to it deletes every
//! object meshplane manages, so it needs `"wipe": true` as well (a dry run does not). A typo
//! such as `--to 0` for `--to 10` must not empty a mesh.

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
    /// Confirms a rollback to position 0 (the empty state).
    #[serde(default)]
    wipe: bool,
}

pub async fn rollback(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    state.auth.check(&req)?;
    let body = read_limited(&req, payload, state.body_limits()).await?;
    let request: RollbackRequest = serde_json::from_value(json_body(&body)?)
        .map_err(|e| ApiError::invalid("(body)", e.to_string()))?;
    if request.to == 0 && !request.wipe && !request.dry_run {
        return Err(ApiError::invalid(
            "to",
            "rolling back to position 0 returns to the empty state before the first event and \
             deletes every object meshplane manages; confirm with `\"wipe\": true` \
             (`meshplane rollback --to 0 --wipe`), or look first with a dry run",
        ));
    }
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
