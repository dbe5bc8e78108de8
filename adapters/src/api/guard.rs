//! The API's defence against browsers: every request passes here before any handler runs.
//!
//! A daemon on loopback takes writes without a token, so the browser of anyone on the machine
//! is a way in: a web page can POST to `127.0.0.1` (a "simple" cross-site request needs no CORS
//! preflight when its content type is `text/plain` or a form type), and a page whose name is
//! rebound to `127.0.0.1` (DNS rebinding) reads the API as its own origin. Three rules close
//! both, without any cost to the CLI, curl or EaseMesh clients:
//!
//! 1. **Host** (every request): the `Host` header must name this daemon — a loopback address,
//!    `localhost`, the bound address (any address when bound to `0.0.0.0`/`::`), or a name the
//!    operator allowed (`--allowed-host`). A rebinding page always sends its own, attacker-made
//!    name, so it is refused (403) before it reads anything. An IP literal cannot be rebound.
//! 2. **Origin** (every request) and **`Sec-Fetch-Site`** (mutating calls): a browser request
//!    from another origin is refused (403). Requests without these headers (CLI, curl, Envoy,
//!    emctl) pass.
//! 3. **Content type** (mutating calls with a body): only JSON and YAML types (415 otherwise).
//!    Any such type makes a cross-site browser request non-simple, so the browser must ask
//!    first with a preflight, which this API never grants (it sends no CORS headers).

use std::collections::BTreeSet;
use std::net::IpAddr;

use actix_web::dev::ServiceRequest;
use actix_web::http::header::{HeaderMap, CONTENT_LENGTH, CONTENT_TYPE, HOST, ORIGIN};
use actix_web::http::Method;

use super::error::ApiError;

/// The `Host` values this daemon answers to.
#[derive(Clone, Debug, Default)]
pub struct AllowedHosts {
    /// The address the API is bound to; unspecified (`0.0.0.0`, `::`) allows every IP literal.
    listen: Option<IpAddr>,
    /// Extra names the operator allowed (lower case, without a port).
    names: BTreeSet<String>,
    /// `--allowed-host '*'`: no Host check at all (e.g. behind a proxy that checks it).
    any: bool,
}

impl AllowedHosts {
    /// Loopback addresses, `localhost`, `listen` and `names` (`*` turns the check off).
    pub fn new(listen: Option<IpAddr>, names: &[String]) -> Result<Self, String> {
        let mut allowed = AllowedHosts {
            listen,
            ..Default::default()
        };
        for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
            if name == "*" {
                allowed.any = true;
                continue;
            }
            let (host, port) = split_port(name);
            let host = normalize(host);
            let bad_port = port.is_some_and(|p| p.parse::<u16>().is_err());
            if host.is_empty() || bad_port || name.contains(['/', '@', ' ', '*']) {
                return Err(format!(
                    "--allowed-host `{name}`: expected a host name such as meshplane.example.com, or `*`"
                ));
            }
            allowed.names.insert(host);
        }
        Ok(allowed)
    }

    /// Whether a `Host` header value (with or without a port) names this daemon.
    pub fn allows(&self, host_header: &str) -> bool {
        if self.any {
            return true;
        }
        let (host, _) = split_port(host_header.trim());
        let host = normalize(host);
        if let Ok(ip) = host.parse::<IpAddr>() {
            return ip.is_loopback()
                || self
                    .listen
                    .is_some_and(|listen| listen.is_unspecified() || listen == ip);
        }
        host == "localhost" || self.names.contains(&host)
    }

    /// What is allowed, for error messages.
    fn describe(&self) -> String {
        let mut parts = vec!["127.0.0.1".to_string(), "[::1]".into(), "localhost".into()];
        match self.listen {
            Some(ip) if ip.is_unspecified() => parts.push("any IP address".into()),
            Some(ip) if !ip.is_loopback() => parts.push(ip.to_string()),
            _ => {}
        }
        parts.extend(self.names.iter().cloned());
        format!(
            "{} (with any port; allow more names with --allowed-host)",
            parts.join(", ")
        )
    }
}

/// `host:port`, `[v6]:port`, `[v6]`, `v6` or `host` → (host, port).
fn split_port(value: &str) -> (&str, Option<&str>) {
    if let Some(rest) = value.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((ip, tail)) => (ip, tail.strip_prefix(':')),
            None => (value, None),
        };
    }
    match value.rsplit_once(':') {
        // A bare IPv6 address has several colons and no port.
        Some((host, port)) if !host.contains(':') => (host, Some(port)),
        _ => (value, None),
    }
}

/// Lower case, without the root's trailing dot (`LocalHost.` is `localhost`).
fn normalize(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// Whether a method changes state.
fn mutating(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// The media types a mutating call may carry: JSON, YAML (the documents endpoints), JSON lines
/// (the access-log intake), and any `+json`/`+yaml` structured-syntax suffix.
pub fn accepted_media_type(media_type: &str) -> bool {
    matches!(
        media_type,
        "application/json"
            | "application/yaml"
            | "application/x-yaml"
            | "text/yaml"
            | "text/x-yaml"
            | "application/x-ndjson"
            | "application/jsonl"
    ) || media_type.ends_with("+json")
        || media_type.ends_with("+yaml")
}

/// The media type of `Content-Type`, lower case and without parameters.
pub fn media_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
}

/// Check a request against the three rules (see the module's documentation).
pub fn check(allowed: &AllowedHosts, req: &ServiceRequest) -> Result<(), ApiError> {
    check_parts(allowed, req.method(), req.headers())
}

fn check_parts(
    allowed: &AllowedHosts,
    method: &Method,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    // HTTP/1.0 clients may send no Host; a browser always sends one.
    let host = headers.get(HOST).map(|v| v.to_str().unwrap_or("\u{fffd}"));
    if let Some(host) = host {
        if !allowed.allows(host) {
            return Err(ApiError::forbidden(
                "Host",
                format!(
                    "`{host}` is not a name of this daemon (a page whose name was rebound to \
                     this address sends its own name); allowed: {}",
                    allowed.describe()
                ),
            ));
        }
    }
    if let Some(origin) = headers.get(ORIGIN) {
        let origin = origin.to_str().unwrap_or("\u{fffd}");
        if !same_origin(origin, host) {
            return Err(ApiError::forbidden(
                "Origin",
                format!(
                    "a browser page from `{origin}` may not call this API: only pages served by \
                     the daemon itself (`http://{}`) may",
                    host.unwrap_or("its address")
                ),
            ));
        }
    }
    if !mutating(method) {
        return Ok(());
    }
    let site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase);
    if let Some(site @ ("cross-site" | "same-site")) = site.as_deref() {
        return Err(ApiError::forbidden(
            "Sec-Fetch-Site",
            format!("a {site} browser request may not change state"),
        ));
    }
    if has_body(headers) {
        match media_type(headers) {
            Some(media) if accepted_media_type(&media) => {}
            Some(media) => {
                return Err(ApiError::unsupported_media_type(format!(
                    "Content-Type: `{media}` is not accepted for a call that changes state: send \
                     application/json or application/yaml (or a +json/+yaml type)"
                )))
            }
            None => {
                return Err(ApiError::unsupported_media_type(
                    "Content-Type: missing; a call that changes state must declare its body as \
                     application/json or application/yaml",
                ))
            }
        }
    }
    Ok(())
}

/// Whether `origin` is the daemon's own origin: `http(s)://` + the request's `Host`.
fn same_origin(origin: &str, host: Option<&str>) -> bool {
    let Some(host) = host else {
        return false;
    };
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    authority.is_some_and(|a| a.trim_end_matches('/').eq_ignore_ascii_case(host.trim()))
}

/// A body is coming when `Content-Length` is above zero or the body is chunked.
fn has_body(headers: &HeaderMap) -> bool {
    let length = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().parse::<u64>().map_or(true, |n| n > 0));
    length.unwrap_or_else(|| headers.contains_key("transfer-encoding"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};
    use actix_web::http::StatusCode;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    fn loopback() -> AllowedHosts {
        AllowedHosts::new(Some("127.0.0.1".parse().unwrap()), &[]).unwrap()
    }

    #[test]
    fn hosts_of_the_listener_are_allowed_with_or_without_port() {
        let a = loopback();
        for ok in [
            "127.0.0.1",
            "127.0.0.1:7470",
            "[::1]",
            "[::1]:7470",
            "::1",
            "localhost",
            "LocalHost.:1",
        ] {
            assert!(a.allows(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:7470",
            "10.0.0.5",
            "127.0.0.1.evil.example",
        ] {
            assert!(!a.allows(bad), "{bad}");
        }
    }

    #[test]
    fn bound_and_configured_names_are_allowed() {
        let a = AllowedHosts::new(
            Some("10.0.0.5".parse().unwrap()),
            &["Meshplane.Example.com:443".into()],
        )
        .unwrap();
        assert!(a.allows("10.0.0.5:7470"));
        assert!(a.allows("meshplane.example.com"));
        assert!(!a.allows("10.0.0.6"));
        let any_ip = AllowedHosts::new(Some("0.0.0.0".parse().unwrap()), &[]).unwrap();
        assert!(any_ip.allows("10.0.0.6:7470"));
        assert!(!any_ip.allows("meshplane.meshplane.svc"));
        let all = AllowedHosts::new(None, &["*".into()]).unwrap();
        assert!(all.allows("anything.example"));
        assert!(AllowedHosts::new(None, &["http://x/".into()]).is_err());
    }

    #[test]
    fn a_rebinding_read_is_refused_naming_the_header() {
        let e = check_parts(
            &loopback(),
            &Method::GET,
            &headers(&[("host", "evil.example")]),
        )
        .unwrap_err();
        assert_eq!(e.status(), StatusCode::FORBIDDEN);
        assert!(e.to_string().contains("Host: `evil.example`"), "{e}");
        assert!(e.to_string().contains("--allowed-host"), "{e}");
    }

    #[test]
    fn cross_site_writes_are_refused() {
        let a = loopback();
        let evil = check_parts(
            &a,
            &Method::POST,
            &headers(&[
                ("host", "127.0.0.1:7470"),
                ("origin", "http://evil.example"),
                ("content-type", "application/json"),
                ("content-length", "2"),
            ]),
        )
        .unwrap_err();
        assert_eq!(evil.status(), StatusCode::FORBIDDEN);
        assert!(evil.to_string().contains("Origin"), "{evil}");
        let fetch = check_parts(
            &a,
            &Method::DELETE,
            &headers(&[("host", "localhost"), ("sec-fetch-site", "cross-site")]),
        )
        .unwrap_err();
        assert!(fetch.to_string().contains("Sec-Fetch-Site"), "{fetch}");
        // The daemon's own origin, and no origin at all, pass.
        for own in [
            vec![
                ("host", "127.0.0.1:7470"),
                ("origin", "http://127.0.0.1:7470"),
            ],
            vec![
                ("host", "127.0.0.1:7470"),
                ("sec-fetch-site", "same-origin"),
            ],
            vec![("host", "127.0.0.1:7470")],
        ] {
            check_parts(&a, &Method::POST, &headers(&own)).unwrap();
        }
        let null = check_parts(
            &a,
            &Method::GET,
            &headers(&[("host", "127.0.0.1"), ("origin", "null")]),
        );
        assert!(
            null.is_err(),
            "a sandboxed page's `null` origin is not ours"
        );
    }

    #[test]
    fn bodies_of_writes_must_be_json_or_yaml() {
        let a = loopback();
        let body = |ct: Option<&str>| {
            let mut h = vec![("content-length", "10")];
            if let Some(ct) = ct {
                h.push(("content-type", ct));
            }
            check_parts(&a, &Method::POST, &headers(&h))
        };
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/YAML",
            "application/x-yaml",
            "text/yaml",
            "application/merge-patch+json",
            "application/vnd.example+yaml",
            "application/x-ndjson",
        ] {
            body(Some(ok)).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            None,
        ] {
            let e = body(bad).unwrap_err();
            assert_eq!(e.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "{bad:?}");
            assert!(e.to_string().contains("Content-Type"), "{e}");
        }
        // An empty body needs no type; reads are not checked.
        check_parts(&a, &Method::DELETE, &headers(&[("content-length", "0")])).unwrap();
        check_parts(
            &a,
            &Method::GET,
            &headers(&[("content-type", "text/plain")]),
        )
        .unwrap();
        let chunked = check_parts(
            &a,
            &Method::PUT,
            &headers(&[("transfer-encoding", "chunked")]),
        );
        assert!(chunked.is_err());
    }
}
