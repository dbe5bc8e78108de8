//! Uniform JSON errors: `{code, reason, message, field?}` with `application/json`.

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
        let message = message.into();
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
            DispatchError::Store(_) | DispatchError::Stopped(_) => {
                tracing::error!(error = %e, "command failed");
                Self::internal(e.to_string())
            }
        }
    }

    pub fn response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(self)
    }
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
