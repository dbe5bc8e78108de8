//! Bearer-token check for mutating calls. A daemon on a loopback address needs none; on any
//! other address the daemon refuses to start without a token, and every mutating call must
//! present it.

use actix_web::http::header::AUTHORIZATION;
use actix_web::HttpRequest;

use super::error::ApiError;

#[derive(Clone, Debug)]
pub struct Auth {
    token: Option<String>,
}

impl Auth {
    /// `token: None` means mutating calls are open (loopback only; enforced at start-up).
    pub fn new(token: Option<String>) -> Self {
        Auth { token }
    }

    pub fn check(&self, req: &HttpRequest) -> Result<(), ApiError> {
        let Some(expected) = &self.token else {
            return Ok(());
        };
        let presented = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer);
        match presented {
            Some(t) if constant_time_eq(t.as_bytes(), expected.as_bytes()) => Ok(()),
            Some(_) => Err(ApiError::unauthorized("the bearer token is not valid")),
            None => Err(ApiError::unauthorized(
                "this call changes state and needs `Authorization: Bearer <token>`",
            )),
        }
    }
}

/// The token of a `Bearer` credential. The scheme is case-insensitive (RFC 7235 §2.1:
/// `bearer`, `BEARER` are the same scheme) and may be followed by more than one space.
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start())
}

/// Compare without an early exit, so response time does not reveal how much of a guess matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_is_case_insensitive() {
        for value in [
            "Bearer s3cret",
            "bearer s3cret",
            "BEARER  s3cret",
            " bEaReR s3cret ",
        ] {
            assert_eq!(bearer(value), Some("s3cret"), "{value:?}");
        }
        assert_eq!(bearer("Basic czNjcmV0"), None);
        assert_eq!(bearer("Bearers3cret"), None);
        let auth = Auth::new(Some("s3cret".into()));
        let req = actix_web::test::TestRequest::default()
            .insert_header((AUTHORIZATION, "bearer s3cret"))
            .to_http_request();
        auth.check(&req).unwrap();
    }
}
