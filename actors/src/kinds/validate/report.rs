//! Rejections worded as the Kubernetes API server words its field errors
//! (`k8s.io/apimachinery/pkg/util/validation/field`): `Invalid value: 65536: must be between 1
//! and 65535, inclusive`, `Required value`, `Duplicate value: "http"`, `Unsupported value: ...`.
//!
//! Every value shown in a message or a path goes through [`shown`] or [`key`]: a client that
//! sends a 900 KB name gets a short error, never its 900 KB back.

use crate::decider::Rejection;

/// Values longer than this many bytes are shortened in messages.
const SHOWN_MAX: usize = 100;
/// How much of a shortened value is kept.
const SHOWN_PREFIX: usize = 48;

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn prefix(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A string value as a message shows it: quoted, and shortened to a prefix and its size when
/// it is long (`"aaaa…" (900000 bytes)`).
pub fn shown(value: &str) -> String {
    if value.len() <= SHOWN_MAX {
        format!("{value:?}")
    } else {
        format!("{:?}… ({} bytes)", prefix(value, SHOWN_PREFIX), value.len())
    }
}

/// A map key as a path shows it (`data[a/b]`), shortened like [`shown`] when it is long.
pub fn key(base: &str, key: &str) -> String {
    if key.len() <= SHOWN_MAX {
        format!("{base}[{key}]")
    } else {
        format!(
            "{base}[{}… ({} bytes)]",
            prefix(key, SHOWN_PREFIX),
            key.len()
        )
    }
}

/// A whole path or message that may embed a long value somewhere (a serde error that quotes
/// its input, a path through a long map key): kept whole up to a generous size, otherwise its
/// beginning and end with the size in between. A safety net under [`shown`] and [`key`].
pub fn clipped(text: String) -> String {
    const MAX: usize = 512;
    if text.len() <= MAX {
        return text;
    }
    let head = prefix(&text, 200);
    let mut start = text.len() - 200;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!(
        "{head}… ({} bytes) …{}",
        text.len() - head.len() - (text.len() - start),
        &text[start..]
    )
}

/// `field: Invalid value: <value>: <detail>`, with the value already [`shown`].
pub fn invalid(field: impl Into<String>, value: impl std::fmt::Display, detail: &str) -> Rejection {
    Rejection::invalid(field, format!("Invalid value: {value}: {detail}"))
}

/// [`invalid`] for a string value.
pub fn invalid_str(field: impl Into<String>, value: &str, detail: &str) -> Rejection {
    invalid(field, shown(value), detail)
}

/// `field: Required value` (with a detail when there is one).
pub fn required(field: impl Into<String>, detail: &str) -> Rejection {
    if detail.is_empty() {
        Rejection::invalid(field, "Required value")
    } else {
        Rejection::invalid(field, format!("Required value: {detail}"))
    }
}

/// `field: Duplicate value: <value>`, with the value already [`shown`].
pub fn duplicate(field: impl Into<String>, value: impl std::fmt::Display) -> Rejection {
    Rejection::invalid(field, format!("Duplicate value: {value}"))
}

/// `field: Unsupported value: "X": supported values: "A", "B"`.
pub fn unsupported(field: impl Into<String>, value: &str, supported: &[&str]) -> Rejection {
    let supported = supported
        .iter()
        .map(|s| format!("{s:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    Rejection::invalid(
        field,
        format!(
            "Unsupported value: {}: supported values: {supported}",
            shown(value)
        ),
    )
}

/// `field: Too long: may not be more than N bytes`.
pub fn too_long(field: impl Into<String>, max: usize) -> Rejection {
    Rejection::invalid(field, format!("Too long: may not be more than {max} bytes"))
}

/// `field: Forbidden: <detail>`.
pub fn forbidden(field: impl Into<String>, detail: &str) -> Rejection {
    Rejection::invalid(field, format!("Forbidden: {detail}"))
}

/// The first of `problems` (what a `names::is_*` check found) as an invalid string value, or
/// nothing when there is none. Several problems with one value are reported together.
pub fn check(
    field: impl Into<String>,
    value: &str,
    problems: Vec<String>,
) -> Result<(), Rejection> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(invalid_str(field, value, &problems.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_shortened_to_a_prefix_and_their_size() {
        assert_eq!(shown("web"), "\"web\"");
        let long = "a".repeat(900_000);
        let s = shown(&long);
        assert!(s.len() < 100, "{s}");
        assert!(s.ends_with("… (900000 bytes)"), "{s}");
        assert_eq!(key("data", "a/b"), "data[a/b]");
        assert!(key("data", &long).len() < 100);
        // Never cut inside a character.
        let wide = "é".repeat(100);
        assert!(shown(&wide).contains("(200 bytes)"));
        let text = clipped(format!("x: {long}: y"));
        assert!(text.len() < 600 && text.starts_with("x: aaa") && text.ends_with("a: y"));
    }

    #[test]
    fn messages_read_like_the_api_servers() {
        let r = invalid(
            "spec.ports[0].port",
            65536,
            "must be between 1 and 65535, inclusive",
        );
        assert_eq!(
            r.to_string(),
            "spec.ports[0].port: Invalid value: 65536: must be between 1 and 65535, inclusive"
        );
        assert_eq!(
            unsupported("p", "tcp", &["TCP", "UDP"]).to_string(),
            "p: Unsupported value: \"tcp\": supported values: \"TCP\", \"UDP\""
        );
    }
}
