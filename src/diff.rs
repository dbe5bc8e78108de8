//! Differences between two mesh states: the desired objects (Kubernetes and etcd) that one has
//! and the other does not, or has otherwise, down to the changed fields, and the concepts whose
//! state differs. Used by `replay --diff-against` and `replay --diff-at`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use actors::Mesh;
use serde_json::Value;

/// Longest rendering of one value in a field change; longer ones are cut with `…`.
const VALUE_WIDTH: usize = 120;

/// One changed field: its path (`data.value`, `spec.ports[0].port`), before and after (`None`:
/// absent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldChange {
    pub path: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// How the objects of one target differ, each list in key order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectDiff {
    /// In the second state only.
    pub created: Vec<String>,
    /// In the first state only.
    pub deleted: Vec<String>,
    /// In both, with different content.
    pub changed: Vec<(String, Vec<FieldChange>)>,
}

impl ObjectDiff {
    pub fn is_empty(&self) -> bool {
        self.created.is_empty() && self.deleted.is_empty() && self.changed.is_empty()
    }

    fn from_maps<K: Ord + Clone + std::fmt::Display>(
        first: &BTreeMap<K, Value>,
        second: &BTreeMap<K, Value>,
    ) -> Self {
        // The plan that turns the first state's objects into the second's.
        let plan = projections::plan(second, first);
        ObjectDiff {
            created: plan.creates.iter().map(|(k, _)| k.to_string()).collect(),
            deleted: plan.deletes.iter().map(ToString::to_string).collect(),
            changed: plan
                .updates
                .iter()
                .map(|(k, after)| (k.to_string(), field_changes(&first[k], after)))
                .collect(),
        }
    }
}

/// Everything that differs between two states.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateDiff {
    pub kubernetes: ObjectDiff,
    pub etcd: ObjectDiff,
    /// Concepts whose state digests differ: name, first digest, second digest.
    pub concepts: Vec<(&'static str, String, String)>,
}

impl StateDiff {
    pub fn is_empty(&self) -> bool {
        self.kubernetes.is_empty() && self.etcd.is_empty() && self.concepts.is_empty()
    }

    /// The text `replay` prints: one section per target and the concepts, then a summary line.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (title, diff) in [("kubernetes", &self.kubernetes), ("etcd", &self.etcd)] {
            if diff.is_empty() {
                continue;
            }
            let _ = writeln!(out, "{title}:");
            for k in &diff.created {
                let _ = writeln!(out, "  created {k}");
            }
            for k in &diff.deleted {
                let _ = writeln!(out, "  deleted {k}");
            }
            for (k, fields) in &diff.changed {
                let _ = writeln!(out, "  changed {k}");
                for f in fields {
                    let _ = writeln!(
                        out,
                        "    {}: {} → {}",
                        f.path,
                        f.before.as_deref().unwrap_or("(absent)"),
                        f.after.as_deref().unwrap_or("(absent)")
                    );
                }
            }
        }
        if !self.concepts.is_empty() {
            let _ = writeln!(out, "concepts:");
            for (name, a, b) in &self.concepts {
                let _ = writeln!(out, "  changed {name}: state {} → {}", short(a), short(b));
            }
        }
        let count = |f: fn(&ObjectDiff) -> usize| f(&self.kubernetes) + f(&self.etcd);
        let _ = write!(
            out,
            "{} created, {} deleted, {} changed; concepts differing: {}",
            count(|d| d.created.len()),
            count(|d| d.deleted.len()),
            count(|d| d.changed.len()),
            if self.concepts.is_empty() {
                "none".to_string()
            } else {
                self.concepts
                    .iter()
                    .map(|(n, _, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        );
        out
    }
}

fn short(digest: &str) -> &str {
    &digest[..digest.len().min(12)]
}

/// Compare two states: what turns `first` into `second`.
pub fn diff(first: &Mesh, second: &Mesh) -> StateDiff {
    let (a, b) = (projections::desired(first), projections::desired(second));
    let kubernetes = ObjectDiff::from_maps(&a.kube_values(), &b.kube_values());
    let etcd_values = |m: &BTreeMap<String, String>| -> BTreeMap<String, Value> {
        m.iter()
            .map(|(k, v)| {
                let value =
                    serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_string()));
                (k.clone(), value)
            })
            .collect()
    };
    let etcd = ObjectDiff::from_maps(&etcd_values(&a.etcd), &etcd_values(&b.etcd));
    let concepts = first
        .concept_digests()
        .into_iter()
        .zip(second.concept_digests())
        .filter(|((_, x), (_, y))| x != y)
        .map(|((name, x), (_, y))| (name, x, y))
        .collect();
    StateDiff {
        kubernetes,
        etcd,
        concepts,
    }
}

/// The fields that differ between two JSON values, in path order. Objects are compared key by
/// key; arrays of equal length element by element; anything else as a whole.
pub fn field_changes(before: &Value, after: &Value) -> Vec<FieldChange> {
    let mut out = Vec::new();
    walk(String::new(), Some(before), Some(after), &mut out);
    out
}

fn walk(path: String, before: Option<&Value>, after: Option<&Value>, out: &mut Vec<FieldChange>) {
    match (before, after) {
        (Some(a), Some(b)) if a == b => {}
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                walk(join(&path, k), a.get(k), b.get(k), out);
            }
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                walk(format!("{path}[{i}]"), Some(x), Some(y), out);
            }
        }
        (a, b) => out.push(FieldChange {
            path: if path.is_empty() { ".".into() } else { path },
            before: a.map(render),
            after: b.map(render),
        }),
    }
}

fn join(path: &str, key: &str) -> String {
    let simple = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let key = if simple {
        key.to_string()
    } else {
        format!("[{}]", Value::String(key.to_string()))
    };
    match (path.is_empty(), simple) {
        (true, true) => key,
        (false, true) => format!("{path}.{key}"),
        (_, false) => format!("{path}{key}"),
    }
}

fn render(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= VALUE_WIDTH {
        return text;
    }
    let cut: String = text.chars().take(VALUE_WIDTH - 1).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn field_changes_name_paths_and_both_sides() {
        let a = json!({"data": {"value": "2", "gone": "x"}, "metadata": {"labels": {"app.kubernetes.io/name": "a"}},
            "ports": [{"port": 80}]});
        let b = json!({"data": {"value": "3", "new": 1}, "metadata": {"labels": {"app.kubernetes.io/name": "b"}},
            "ports": [{"port": 81}]});
        let changes: Vec<String> = field_changes(&a, &b)
            .iter()
            .map(|f| {
                format!(
                    "{}: {} → {}",
                    f.path,
                    f.before.as_deref().unwrap_or("-"),
                    f.after.as_deref().unwrap_or("-")
                )
            })
            .collect();
        assert_eq!(
            changes,
            vec![
                r#"data.gone: "x" → -"#,
                r#"data.new: - → 1"#,
                r#"data.value: "2" → "3""#,
                r#"metadata.labels["app.kubernetes.io/name"]: "a" → "b""#,
                r#"ports[0].port: 80 → 81"#,
            ]
        );
        assert!(field_changes(&a, &a).is_empty());
        assert_eq!(field_changes(&json!(1), &json!("1"))[0].path, ".");
    }

    #[test]
    fn long_values_are_cut() {
        let long = "x".repeat(500);
        let f = &field_changes(&json!({"a": long}), &json!({"a": 1}))[0];
        assert!(f.before.as_ref().unwrap().ends_with('…'));
        assert_eq!(f.before.as_ref().unwrap().chars().count(), VALUE_WIDTH);
    }

    #[test]
    fn identical_states_have_an_empty_diff() {
        let d = diff(&Mesh::default(), &Mesh::default());
        assert!(d.is_empty());
        assert!(d.render().ends_with("concepts differing: none"));
    }
}
