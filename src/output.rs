//! Rendering objects for people: kubectl-style tables, ages, YAML and JSON.

use anyhow::Result;
use serde_json::Value;

use actors::kinds::Column;

use crate::cli::OutputFormat;

/// Render a value (one object, or a `List`) as YAML or JSON.
pub fn render_document(value: &Value, format: OutputFormat) -> Result<String> {
    Ok(match format {
        OutputFormat::Json => serde_json::to_string_pretty(value)? + "\n",
        OutputFormat::Yaml => serde_norway::to_string(value)?,
        OutputFormat::Table => unreachable!("tables are rendered by render_table"),
    })
}

/// Render objects as a table: NAMESPACE (when `with_namespace`), NAME, the kind's own
/// columns, GENERATION, POSITION and AGE (relative to `now_ms`).
pub fn render_table(kind: &str, objects: &[Value], with_namespace: bool, now_ms: i64) -> String {
    let extra = extra_columns(kind);
    let mut header: Vec<String> = Vec::new();
    if with_namespace {
        header.push("NAMESPACE".into());
    }
    header.push("NAME".into());
    header.extend(extra.iter().map(|column| column.title.to_string()));
    header.extend(["GENERATION", "POSITION", "AGE"].map(String::from));
    let mut rows = vec![header];
    for object in objects {
        let metadata = object.get("metadata").unwrap_or(&Value::Null);
        let text = |key: &str| {
            metadata
                .get(key)
                .map(scalar)
                .unwrap_or_else(|| "<none>".into())
        };
        let mut row = Vec::new();
        if with_namespace {
            row.push(text("namespace"));
        }
        row.push(text("name"));
        row.extend(extra.iter().map(|column| (column.value)(object)));
        row.push(text("generation"));
        row.push(text("resourceVersion"));
        let age = metadata
            .get("creationTimestamp")
            .and_then(Value::as_str)
            .and_then(parse_rfc3339_ms)
            .map(|created| human_age(now_ms - created))
            .unwrap_or_else(|| "<unknown>".into());
        row.push(age);
        rows.push(row);
    }
    align(&rows)
}

/// The kind's own columns, as the kind table declares them.
fn extra_columns(kind: &str) -> &'static [Column] {
    actors::kinds::get(kind).map_or(&[], |k| k.columns)
}

pub(crate) fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "<none>".into(),
        other => other.to_string(),
    }
}

/// Left-align columns, three spaces apart, like kubectl.
pub(crate) fn align(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if c + 1 < row.len() {
                line.push_str(&" ".repeat(widths[c] - cell.chars().count() + 3));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// kubectl-style age: `42s`, `5m`, `3h`, `12d`.
pub fn human_age(ms: i64) -> String {
    let secs = (ms / 1000).max(0);
    if secs < 120 {
        format!("{secs}s")
    } else if secs < 2 * 3600 {
        format!("{}m", secs / 60)
    } else if secs < 48 * 3600 {
        format!("{}h", secs / 3600)
    } else {
        format!("{}d", secs / 86_400)
    }
}

/// Parse RFC 3339 (`2026-11-22T01:02:03Z`, optional fraction, `Z` or `±HH:MM`) to epoch ms.
pub fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    let (date, time) = text.split_once(['T', 't', ' '])?;
    let mut date_parts = date.splitn(3, '-');
    let year: i64 = date_parts.next()?.parse().ok()?;
    let month: u32 = date_parts.next()?.parse().ok()?;
    let day: u32 = date_parts.next()?.parse().ok()?;
    let (clock, offset_secs) = if let Some(clock) = time.strip_suffix(['Z', 'z']) {
        (clock, 0)
    } else {
        let sign_at = time.rfind(['+', '-'])?;
        let (clock, offset) = time.split_at(sign_at);
        let sign = if offset.starts_with('-') { -1 } else { 1 };
        let (h, m) = offset[1..].split_once(':')?;
        (
            clock,
            sign * (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60),
        )
    };
    let (whole, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let mut clock_parts = whole.splitn(3, ':');
    let hour: i64 = clock_parts.next()?.parse().ok()?;
    let minute: i64 = clock_parts.next()?.parse().ok()?;
    let second: i64 = clock_parts.next()?.parse().ok()?;
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let millis: i64 = if fraction.is_empty() {
        0
    } else {
        if !fraction.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        format!("{:0<3}", &fraction[..fraction.len().min(3)])
            .parse()
            .ok()?
    };
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        - offset_secs;
    Some(secs * 1000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_rfc3339() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339_ms("2000-02-29T00:00:00Z"),
            Some(951_782_400_000)
        );
        assert_eq!(
            parse_rfc3339_ms("2026-11-22T01:02:03Z"),
            Some(1_795_309_323_000)
        );
        assert_eq!(
            parse_rfc3339_ms("2026-11-22T02:02:03.5+01:00"),
            Some(1_795_309_323_500)
        );
        assert_eq!(parse_rfc3339_ms("yesterday"), None);
        assert_eq!(parse_rfc3339_ms("2026-13-01T00:00:00Z"), None);
    }

    #[test]
    fn ages_read_like_kubectl() {
        assert_eq!(human_age(5_000), "5s");
        assert_eq!(human_age(119_999), "119s");
        assert_eq!(human_age(600_000), "10m");
        assert_eq!(human_age(5 * 3_600_000), "5h");
        assert_eq!(human_age(3 * 86_400_000), "3d");
        assert_eq!(human_age(-10), "0s");
    }

    #[test]
    fn tables_have_kind_columns_and_align() {
        let svc = json!({"kind": "Service", "metadata": {"name": "web", "namespace": "shop", "generation": 2,
            "resourceVersion": "17", "creationTimestamp": "1970-01-01T00:00:00Z"},
            "spec": {"ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}]}});
        let table = render_table("Service", &[svc], true, 90_000);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "NAMESPACE   NAME   TYPE        PORTS           GENERATION   POSITION   AGE"
        );
        assert_eq!(
            lines[1],
            "shop        web    ClusterIP   80/TCP,53/UDP   2            17         90s"
        );
    }

    #[test]
    fn missing_fields_are_shown_not_hidden() {
        let table = render_table("Namespace", &[json!({"metadata": {"name": "n"}})], false, 0);
        assert_eq!(
            table.lines().nth(1).unwrap(),
            "n      <none>       <none>     <unknown>"
        );
    }
}
