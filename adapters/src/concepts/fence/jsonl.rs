//! Access logs as JSON lines, for sources that are not Envoy's gRPC Access Log Service (a log
//! shipper tailing sidecar logs, a test harness, another mesh's proxy).
//!
//! # Format
//!
//! The body is UTF-8 text with one JSON object per line (`\n` or `\r\n`); blank lines are
//! ignored. Each object is one HTTP request as the callee's side saw it:
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `downstream_ip` (alias `source_ip`) | string, optional | the caller's IP, without port |
//! | `upstream_cluster` | string, optional | Envoy's upstream cluster; absent, null or empty means `inbound\|0\|\|` ([`DEFAULT_UPSTREAM_CLUSTER`]): the line is treated as an inbound request of the global sidecar |
//! | `authority` (alias `host`) | string, **required**, not empty | the request's `:authority`/Host, possibly with a port |
//! | `source` | string, optional | the caller named explicitly, `namespace/service`; it wins over the address |
//! | `start_time` | RFC 3339 string or integer Unix milliseconds, optional | when the request started (0 when absent) |
//!
//! ```text
//! {"downstream_ip":"10.0.0.7","authority":"details:9080","start_time":"2026-01-02T03:04:05.678Z"}
//! {"source_ip":"10.0.0.8","host":"reviews","upstream_cluster":"inbound|9080||","start_time":1767323045678}
//! {"authority":"ratings.default.svc.cluster.local","source":"default/productpage"}
//! ```
//!
//! Other fields are ignored. A line that is not a JSON object, lacks `authority` (or has it
//! empty), gives a field the wrong type, names a field and its alias at once, or has a
//! `start_time` that is not RFC 3339 counts as `malformed` and is skipped; the other lines are
//! still read. Every non-blank line counts as `received`.

use serde::Deserialize;

use super::entry::{AccessLogEntry, IntakeCounters};

/// The upstream cluster of a line that names none: "inbound, port unknown", so the intake
/// treats it as the global sidecar's inbound log.
pub const DEFAULT_UPSTREAM_CLUSTER: &str = "inbound|0||";

/// Parse a JSON-lines body (see the module documentation), counting `received` and `malformed`
/// lines in `counters`.
pub fn parse_lines(body: &[u8], counters: &IntakeCounters) -> Vec<AccessLogEntry> {
    let mut entries = Vec::new();
    let mut received = 0u64;
    for line in body.split(|&b| b == b'\n') {
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        received += 1;
        if let Some(entry) = parse_line(line) {
            entries.push(entry);
        }
    }
    IntakeCounters::add(&counters.received, received);
    let malformed = received - entries.len() as u64;
    if malformed > 0 {
        IntakeCounters::add(&counters.malformed, malformed);
    }
    entries
}

/// One line as it arrives.
#[derive(Deserialize)]
struct Line {
    #[serde(default, alias = "source_ip")]
    downstream_ip: Option<String>,
    #[serde(default)]
    upstream_cluster: Option<String>,
    #[serde(default, alias = "host")]
    authority: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    start_time: Option<StartTime>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StartTime {
    Millis(i64),
    Rfc3339(String),
}

fn parse_line(line: &[u8]) -> Option<AccessLogEntry> {
    let line: Line = serde_json::from_slice(line).ok()?;
    let authority = line.authority.filter(|a| !a.is_empty())?;
    let start_time_ms = match line.start_time {
        None => 0,
        Some(StartTime::Millis(ms)) => ms,
        Some(StartTime::Rfc3339(text)) => parse_rfc3339_ms(&text)?,
    };
    Some(AccessLogEntry {
        downstream_ip: line.downstream_ip.unwrap_or_default(),
        upstream_cluster: line
            .upstream_cluster
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| DEFAULT_UPSTREAM_CLUSTER.to_owned()),
        authority,
        source: line.source.filter(|s| !s.is_empty()),
        start_time_ms,
    })
}

/// RFC 3339 (`2026-01-02T03:04:05Z`, optional fraction, `Z` or `±HH:MM`) to Unix milliseconds;
/// fractions beyond milliseconds are truncated.
fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i64> {
        let digits = b.get(from..to)?;
        digits.iter().try_fold(0i64, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + i64::from(d - b'0'))
        })
    };
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !(1..=12).contains(&month)
        || !(1..=days_in_month(year, month)).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &b[19..];
    let mut millis = 0i64;
    if let Some(fraction) = rest.strip_prefix(b".") {
        let digits = fraction.iter().take_while(|d| d.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        for i in 0..3 {
            millis = millis * 10
                + fraction
                    .get(i)
                    .filter(|_| i < digits)
                    .map_or(0, |d| i64::from(d - b'0'));
        }
        rest = &fraction[digits..];
    }
    let offset_secs = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let two = |a: u8, b: u8| -> Option<i64> {
                (a.is_ascii_digit() && b.is_ascii_digit())
                    .then(|| i64::from(a - b'0') * 10 + i64::from(b - b'0'))
            };
            let (h, m) = (two(*h1, *h2)?, two(*m1, *m2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let offset = h * 3600 + m * 60;
            if *sign == b'-' {
                -offset
            } else {
                offset
            }
        }
        _ => return None,
    };
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        - offset_secs;
    Some(secs * 1000 + millis)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(
        ip: &str,
        cluster: &str,
        authority: &str,
        source: Option<&str>,
        ms: i64,
    ) -> AccessLogEntry {
        AccessLogEntry {
            downstream_ip: ip.into(),
            upstream_cluster: cluster.into(),
            authority: authority.into(),
            source: source.map(Into::into),
            start_time_ms: ms,
        }
    }

    #[test]
    fn parses_good_lines_with_aliases_and_defaults() {
        let body = br#"{"downstream_ip":"10.0.0.7","upstream_cluster":"inbound|9080||","authority":"details:9080","source":"default/productpage","start_time":"2026-01-02T03:04:05.678Z"}

{"source_ip":"10.0.0.8","host":"reviews","start_time":1767323045678,"extra":[1,2]}
   {"authority":"ratings"}   
{"authority":"x","upstream_cluster":"","source":"","start_time":null}
"#;
        let counters = IntakeCounters::default();
        let entries = parse_lines(body, &counters);
        assert_eq!(
            entries,
            vec![
                entry(
                    "10.0.0.7",
                    "inbound|9080||",
                    "details:9080",
                    Some("default/productpage"),
                    1_767_323_045_678
                ),
                entry(
                    "10.0.0.8",
                    DEFAULT_UPSTREAM_CLUSTER,
                    "reviews",
                    None,
                    1_767_323_045_678
                ),
                entry("", DEFAULT_UPSTREAM_CLUSTER, "ratings", None, 0),
                entry("", DEFAULT_UPSTREAM_CLUSTER, "x", None, 0),
            ]
        );
        let counts = counters.snapshot();
        assert_eq!((counts.received, counts.malformed), (4, 0));
    }

    #[test]
    fn crlf_and_no_trailing_newline() {
        let counters = IntakeCounters::default();
        let entries = parse_lines(b"{\"host\":\"a\"}\r\n\r\n{\"host\":\"b\"}", &counters);
        let hosts: Vec<_> = entries.iter().map(|e| e.authority.as_str()).collect();
        assert_eq!(hosts, ["a", "b"]);
        assert_eq!(counters.snapshot().received, 2);
    }

    #[test]
    fn mixed_input_keeps_the_good_lines() {
        let body = concat!(
            "{\"authority\":\"a\"}\n",
            "not json\n",
            "{\"downstream_ip\":\"10.0.0.1\"}\n", // no authority
            "{\"authority\":\"\"}\n",             // empty authority
            "{\"authority\":5}\n",                // wrong type
            "{\"authority\":\"b\",\"start_time\":\"yesterday\"}\n",
            "{\"authority\":\"c\",\"host\":\"d\"}\n", // field and alias
            "[\"authority\"]\n",
            "{\"authority\":\"e\"\n", // truncated
            "{\"authority\":\"f\",\"start_time\":\"2026-01-02T04:04:05+01:00\"}\n",
        );
        let counters = IntakeCounters::default();
        let entries = parse_lines(body.as_bytes(), &counters);
        let got: Vec<_> = entries
            .iter()
            .map(|e| (e.authority.as_str(), e.start_time_ms))
            .collect();
        assert_eq!(got, [("a", 0), ("f", 1_767_323_045_000)]);
        let counts = counters.snapshot();
        assert_eq!((counts.received, counts.malformed), (10, 8));
    }

    #[test]
    fn bad_or_empty_bodies() {
        let counters = IntakeCounters::default();
        assert!(parse_lines(b"", &counters).is_empty());
        assert!(parse_lines(b"\n \n\t\r\n", &counters).is_empty());
        assert_eq!(counters.snapshot().received, 0);
        assert!(parse_lines(b"\xff\xfe garbage\n{", &counters).is_empty());
        let counts = counters.snapshot();
        assert_eq!((counts.received, counts.malformed), (2, 2));
    }

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339_ms("1969-12-31T23:59:59.999Z"), Some(-1));
        assert_eq!(
            parse_rfc3339_ms("2000-02-29T00:00:00Z"),
            Some(951_782_400_000)
        );
        assert_eq!(
            parse_rfc3339_ms("2026-11-22T01:02:03z"),
            Some(1_795_309_323_000)
        );
        assert_eq!(
            parse_rfc3339_ms("2026-11-22 02:02:03.5+01:00"),
            Some(1_795_309_323_500)
        );
        assert_eq!(
            parse_rfc3339_ms("2026-11-22T00:02:03.123456789-01:00"),
            Some(1_795_309_323_123)
        );
        for bad in [
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T00:00:00",
            "2026-01-01T00:00:00.Z",
            "2026-01-01T00:00:00+0100",
            "2026-01-01T00:00:00Zjunk",
            "+026-01-01T00:00:00Z",
            "2026-01-01T00:00:00+01:00:00",
        ] {
            assert_eq!(parse_rfc3339_ms(bad), None, "{bad}");
        }
    }
}
