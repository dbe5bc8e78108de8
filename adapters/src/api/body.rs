//! Reading request bodies under a size limit and a time limit, and parsing them into documents.
//!
//! Every handler that takes a body reads it here. The time limit matters as much as the size:
//! a client that sends its headers and then dribbles the body holds a connection (and a file
//! descriptor) for as long as the server waits; hundreds of them starve `/healthz`.

use std::time::Duration;

use actix_web::{web, HttpRequest};
use futures::StreamExt;
use serde_json::Value;

use super::error::ApiError;

/// Default time allowed to receive a whole request body.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// How much of a body, and for how long, a handler waits for.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimits {
    pub max_bytes: usize,
    pub timeout: Duration,
}

/// Read the whole body, refusing it as soon as it passes `limits.max_bytes` (413), or when it
/// has not fully arrived within `limits.timeout` (408).
pub async fn read_limited(
    req: &HttpRequest,
    payload: web::Payload,
    limits: BodyLimits,
) -> Result<web::Bytes, ApiError> {
    tokio::time::timeout(limits.timeout, read_all(req, payload, limits.max_bytes))
        .await
        .unwrap_or_else(|_| {
            tracing::debug!(path = %req.path(), "request body timed out");
            Err(ApiError::request_timeout(limits.timeout))
        })
}

async fn read_all(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, ApiError> {
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::too_large(limit));
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::invalid("(body)", format!("cannot read the request body: {e}"))
        })?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Parse a body into documents: JSON (an object or a list of objects) or multi-document YAML,
/// by `Content-Type` (never sniffed: a browser may send `text/plain` cross-site without asking,
/// see `guard`). Empty YAML documents are skipped.
pub fn documents(req: &HttpRequest, body: &[u8]) -> Result<Vec<Value>, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| ApiError::invalid("(body)", format!("not UTF-8: {e}")))?;
    let json = match super::guard::media_type(req.headers()).as_deref() {
        Some(t) if t == "application/json" || t.ends_with("+json") => true,
        Some("application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml") => false,
        Some(t) if t.ends_with("+yaml") => false,
        Some(other) => {
            return Err(ApiError::unsupported_media_type(format!(
                "Content-Type: `{other}` is not accepted: send application/json or application/yaml"
            )))
        }
        None => {
            return Err(ApiError::unsupported_media_type(
                "Content-Type: missing; send application/json or application/yaml",
            ))
        }
    };
    let docs = if json {
        json_documents(text)?
    } else {
        yaml_documents(text)?
    };
    if docs.is_empty() {
        return Err(ApiError::invalid(
            "(body)",
            "no documents in the request body",
        ));
    }
    Ok(docs)
}

fn json_documents(text: &str) -> Result<Vec<Value>, ApiError> {
    // Strict: a duplicate key is refused, not silently overwritten.
    let value: Value = actors::decode::json(text)
        .map_err(|e| ApiError::invalid("(body)", format!("malformed JSON: {e}")))?;
    Ok(match value {
        Value::Array(items) => items,
        other => vec![other],
    })
}

fn yaml_documents(text: &str) -> Result<Vec<Value>, ApiError> {
    let mut docs = Vec::new();
    for (i, doc) in serde_norway::Deserializer::from_str(text).enumerate() {
        // Strict: a duplicate key or a non-finite number is refused.
        let value = actors::decode::value(doc).map_err(|e| {
            ApiError::invalid(format!("documents[{i}]"), format!("malformed YAML: {e}"))
        })?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}

/// Parse a JSON body (registry calls take JSON only).
pub(crate) fn json_body(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid("(body)", "the request body is empty"));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid("(body)", format!("malformed JSON: {e}")))
}
