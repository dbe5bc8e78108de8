//! Reading request bodies under a size limit and parsing them into documents.

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{web, HttpRequest};
use futures::StreamExt;
use serde_json::Value;

use super::error::ApiError;

/// Read the whole body, refusing it as soon as it passes `limit` bytes.
pub async fn read_limited(
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
/// by `Content-Type`, or by sniffing when none is given. Empty YAML documents are skipped.
pub fn documents(req: &HttpRequest, body: &[u8]) -> Result<Vec<Value>, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| ApiError::invalid("(body)", format!("not UTF-8: {e}")))?;
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    let json = match content_type.as_deref() {
        Some("application/json") => true,
        Some("application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml") => false,
        None | Some("" | "text/plain" | "application/octet-stream") => {
            text.trim_start().starts_with(['{', '['])
        }
        Some(other) => {
            return Err(ApiError::unsupported_media_type(format!(
                "content type `{other}` is not accepted: send application/json or application/yaml"
            )))
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
