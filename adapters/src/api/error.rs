//! Uniform JSON errors: `{code, reason, message, field?}` with `application/json`.
//!
//! Messages are bounded: they often quote the value that was refused, and that value is the
//! caller's (a 900 KB name must not come back as a 900 KB error, nor fill the daemon's log).
//! Every word over [`LONG_WORD`] characters is shortened to its start and its size, and the
//! whole message to [`MAX_MESSAGE`] characters.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use actors::{Rejection, RejectionKind};
use serde::Serialize;

use crate::host::DispatchError;

#[derive(Debug, Clone, Serialize)]
pub struct ApiError {
    #[serde(skip)]
    status: StatusCode,
    code: u16,
    reason: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        reason: &'static str,
        message: impl Into<String>,
        field: Option<String>,
    ) -> Self {
        let message = bounded(&message.into());
        let field = field.map(|f| bounded(&f));
        let message = match &field {
            Some(f) if !message.starts_with(f.as_str()) => format!("{f}: {message}"),
            _ => message,
        };
        ApiError {
            status,
            code: status.as_u16(),
            reason,
            message,
            field,
        }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "Invalid",
            message,
            Some(field.into()),
        )
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NotFound", message, None)
    }

    /// A request this API will not serve, naming the header that decided it.
    pub fn forbidden(header: &str, message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!("{header}: {}", message.into()),
            None,
        )
    }

    /// The request body did not arrive within the body timeout.
    pub fn request_timeout(timeout: std::time::Duration) -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "RequestTimeout",
            format!(
                "the request body did not arrive within {} s (--body-timeout)",
                timeout.as_secs_f64()
            ),
            None,
        )
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Unauthorized", message, None)
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLarge",
            format!("request body exceeds the limit of {limit} bytes"),
            None,
        )
    }

    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            message,
            None,
        )
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Unavailable",
            message,
            None,
        )
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal", message, None)
    }

    /// A rejection, its field prefixed (e.g. `documents[2]`) when the request held several.
    pub fn rejected(rejection: Rejection, prefix: Option<&str>) -> Self {
        let rejection = match prefix {
            Some(p) => rejection.within(p),
            None => rejection,
        };
        let (status, reason) = match rejection.kind {
            RejectionKind::Invalid => (StatusCode::BAD_REQUEST, "Invalid"),
            RejectionKind::NotFound => (StatusCode::NOT_FOUND, "NotFound"),
            RejectionKind::Conflict => (StatusCode::CONFLICT, "Conflict"),
        };
        Self::new(status, reason, rejection.message, rejection.field)
    }

    /// Map a dispatch failure; `documents` says whether the request held a list of documents.
    pub fn dispatch(e: DispatchError, documents: bool) -> Self {
        match e {
            DispatchError::Rejected { index, rejection } => {
                let prefix = documents.then(|| format!("documents[{index}]"));
                Self::rejected(rejection, prefix.as_deref())
            }
            DispatchError::Duplicate { index, first } => {
                let field = if documents {
                    format!("documents[{index}]")
                } else {
                    "(request)".to_string()
                };
                Self::invalid(
                    field,
                    format!("names the same object as documents[{first}]"),
                )
            }
            DispatchError::Contended => {
                Self::new(StatusCode::CONFLICT, "Conflict", e.to_string(), None)
            }
            // The medium, not the request: a full disk is 507 (RFC 4918), a log that cannot write
            // for now is 503; both heal by themselves, and nothing of the request was written.
            DispatchError::Store(events::StoreError::Full(_)) => Self::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "InsufficientStorage",
                e.to_string(),
                None,
            ),
            DispatchError::Store(ref store)
                if store.is_medium_failure() || matches!(store, events::StoreError::Damaged(_)) =>
            {
                Self::unavailable(e.to_string())
            }
            DispatchError::Store(_) | DispatchError::Stopped(_) => {
                tracing::error!(error = %e, "command failed");
                Self::internal(e.to_string())
            }
        }
    }

    pub fn response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if self.status == StatusCode::REQUEST_TIMEOUT {
            // The rest of the body may never come: do not wait for it to reuse the connection.
            response.insert_header((actix_web::http::header::CONNECTION, "close"));
        }
        response.json(self)
    }
}

/// Words longer than this are shortened in messages.
pub const LONG_WORD: usize = 200;
/// What is kept of a shortened word.
const WORD_KEPT: usize = 100;
/// The longest message, in characters.
pub const MAX_MESSAGE: usize = 1000;

/// `text` with each word over [`LONG_WORD`] characters cut to its first [`WORD_KEPT`] and
/// `… (N bytes)`, and the whole cut to [`MAX_MESSAGE`] characters the same way.
pub fn bounded(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_MESSAGE + 32));
    let mut rest = text;
    while !rest.is_empty() {
        // One whitespace run, then one word.
        let space = rest.len() - rest.trim_start().len();
        out.push_str(&rest[..space]);
        rest = &rest[space..];
        let word_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        out.push_str(&shorten(&rest[..word_end], LONG_WORD, WORD_KEPT));
        rest = &rest[word_end..];
        if out.len() > MAX_MESSAGE * 4 {
            break; // the cut below applies; stop copying early
        }
    }
    let total = if rest.is_empty() {
        out
    } else {
        format!("{out}{rest}")
    };
    shorten(&total, MAX_MESSAGE, MAX_MESSAGE - 50)
}

/// `text` if it has at most `max` characters, else its first `kept` and `… (N bytes)`.
fn shorten(text: &str, max: usize, kept: usize) -> String {
    if text.len() <= max || text.chars().nth(max).is_none() {
        return text.to_string();
    }
    let cut = text.char_indices().nth(kept).map_or(text.len(), |(i, _)| i);
    format!("{}… ({} bytes)", &text[..cut], text.len())
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.code, self.reason, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        self.response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_shortened_in_messages_and_fields() {
        let name = "n".repeat(900 * 1024);
        let e = ApiError::invalid(
            format!("metadata.labels.{name}"),
            format!("`{name}` is not a valid name: at most 253 characters"),
        );
        let text = serde_json::to_string(&e).unwrap();
        assert!(text.len() < 2 * MAX_MESSAGE, "{} bytes", text.len());
        assert!(
            text.contains(&format!("… ({} bytes)", name.len() + 2)),
            "{text}"
        );
        assert!(
            text.contains("is not a valid name"),
            "the reason stays: {text}"
        );
        // Short messages are untouched.
        let short = ApiError::invalid("at", "position 9 is not in the log (1..=3)");
        assert_eq!(
            short.to_string(),
            "400 Invalid: at: position 9 is not in the log (1..=3)"
        );
    }

    #[test]
    fn many_short_words_are_bounded_too() {
        let text = "word ".repeat(10_000);
        let out = bounded(&text);
        assert!(out.chars().count() <= MAX_MESSAGE + 20, "{}", out.len());
        assert!(out.ends_with(&format!("… ({} bytes)", text.len())), "{out}");
        // Multi-byte characters are cut on a boundary.
        let wide = "é".repeat(300);
        assert!(bounded(&wide).starts_with(&"é".repeat(100)));
    }
}
