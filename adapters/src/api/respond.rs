//! Content negotiation for answers: JSON by default, YAML when `Accept` asks for it.

use actix_web::http::header::ACCEPT;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;

use super::error::ApiError;

pub fn wants_yaml(req: &HttpRequest) -> bool {
    req.headers()
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("yaml"))
}

/// Serialize `value` in the format the client asked for.
pub fn respond<T: Serialize>(
    req: &HttpRequest,
    status: StatusCode,
    value: &T,
) -> Result<HttpResponse, ApiError> {
    if wants_yaml(req) {
        let text = serde_norway::to_string(value)
            .map_err(|e| ApiError::internal(format!("cannot render YAML: {e}")))?;
        Ok(HttpResponse::build(status)
            .content_type("application/yaml")
            .body(text))
    } else {
        Ok(HttpResponse::build(status).json(value))
    }
}
