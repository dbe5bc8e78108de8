//! The HTTP client of the daemon's API (docs/api.md).

use std::io::Read;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::config::Endpoint;

/// An error answer of the API: `{code, reason, message, field}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    pub status: u16,
    pub reason: String,
    pub message: String,
    pub field: Option<String>,
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (HTTP {} {})", self.message, self.status, self.reason)
    }
}

impl std::error::Error for ServerError {}

impl ServerError {
    /// Build from a status and a body; a body that is not the API's JSON error is shown as is.
    fn from_body(status: u16, status_text: &str, body: &str) -> Self {
        let parsed: Option<Value> = serde_json::from_str(body).ok();
        let text = |key: &str| {
            parsed
                .as_ref()
                .and_then(|v| v.get(key))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let message = text("message").unwrap_or_else(|| {
            let body = body.trim();
            if body.is_empty() {
                status_text.to_string()
            } else {
                body.chars().take(500).collect()
            }
        });
        ServerError {
            status,
            reason: text("reason").unwrap_or_else(|| status_text.to_string()),
            message,
            field: text("field"),
        }
    }
}

/// A client bound to one daemon.
pub struct Client {
    agent: ureq::Agent,
    endpoint: Endpoint,
}

impl Client {
    pub fn new(endpoint: Endpoint) -> Self {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(5))
            .timeout_read(Duration::from_secs(120))
            .timeout_write(Duration::from_secs(120))
            .build();
        Client { agent, endpoint }
    }

    pub fn server(&self) -> &str {
        &self.endpoint.server
    }

    fn request(&self, method: &str, path: &str, query: &[(&str, &str)]) -> ureq::Request {
        let mut request = self
            .agent
            .request(method, &format!("{}{path}", self.endpoint.server));
        for (key, value) in query {
            request = request.query(key, value);
        }
        request = request.set("Accept", "application/json");
        if let Some(token) = &self.endpoint.token {
            request = request.set("Authorization", &format!("Bearer {token}"));
        }
        request
    }

    fn answer(&self, result: Result<ureq::Response, ureq::Error>) -> Result<Value> {
        match result {
            Ok(response) => {
                let mut body = String::new();
                response
                    .into_reader()
                    .read_to_string(&mut body)
                    .with_context(|| format!("reading the answer of {}", self.server()))?;
                // EaseMesh's API answers some calls (DELETE of a service or a tenant) with 200 and
                // no body at all: that is success with nothing to show, not a malformed answer.
                if body.trim().is_empty() {
                    return Ok(Value::Null);
                }
                serde_json::from_str(&body).with_context(|| {
                    format!("{} answered something that is not JSON", self.server())
                })
            }
            Err(ureq::Error::Status(status, response)) => {
                let status_text = response.status_text().to_string();
                let body = response.into_string().unwrap_or_default();
                Err(ServerError::from_body(status, &status_text, &body).into())
            }
            Err(ureq::Error::Transport(transport)) => Err(anyhow::anyhow!(
                "cannot reach the meshplane daemon at {}: {transport} (is it running? start it with `meshplane run`)",
                self.server()
            )),
        }
    }

    /// GET a JSON document.
    pub fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value> {
        self.answer(self.request("GET", path, query).call())
    }

    /// POST a JSON body.
    pub fn post_json(&self, path: &str, body: &Value) -> Result<Value> {
        self.answer(self.request("POST", path, &[]).send_json(body))
    }

    /// DELETE a resource.
    pub fn delete(&self, path: &str, query: &[(&str, &str)]) -> Result<Value> {
        self.answer(self.request("DELETE", path, query).call())
    }
}

/// `/api/v1/resources/{kind}[/{name}]`, with each segment percent-encoded.
pub fn resource_path(kind: &str, name: Option<&str>) -> String {
    let mut path = format!("/api/v1/resources/{}", encode_segment(kind));
    if let Some(name) = name {
        path.push('/');
        path.push_str(&encode_segment(name));
    }
    path
}

/// Percent-encode everything but RFC 3986 unreserved characters.
fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_encoded() {
        assert_eq!(resource_path("cm", None), "/api/v1/resources/cm");
        assert_eq!(resource_path("cm", Some("web")), "/api/v1/resources/cm/web");
        assert_eq!(
            resource_path("cm", Some("a/b c")),
            "/api/v1/resources/cm/a%2Fb%20c"
        );
    }

    #[test]
    fn server_errors_keep_the_api_fields() {
        let body = r#"{"code":400,"reason":"Invalid","message":"documents[0].metadata.name: missing","field":"documents[0].metadata.name"}"#;
        let e = ServerError::from_body(400, "Bad Request", body);
        assert_eq!(e.reason, "Invalid");
        assert_eq!(e.field.as_deref(), Some("documents[0].metadata.name"));
        assert_eq!(
            e.to_string(),
            "documents[0].metadata.name: missing (HTTP 400 Invalid)"
        );
        let plain = ServerError::from_body(502, "Bad Gateway", "");
        assert_eq!(plain.to_string(), "Bad Gateway (HTTP 502 Bad Gateway)");
    }

    #[test]
    fn unreachable_daemon_is_explained() {
        // Port 1 on loopback: nothing listens there.
        let client = Client::new(Endpoint {
            server: "http://127.0.0.1:1".into(),
            token: None,
        });
        let err = client.get("/readyz", &[]).unwrap_err().to_string();
        assert!(
            err.contains("cannot reach the meshplane daemon at http://127.0.0.1:1"),
            "{err}"
        );
    }
}
