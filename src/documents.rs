//! Reading manifests from files, directories and standard input, and parsing them locally, so
//! malformed YAML or JSON is reported with its file and line before anything is sent.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// Where a document came from, for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The file path, or `<stdin>`.
    pub source: String,
    /// 1-based number of the document in its source (empty documents count too).
    pub document: usize,
    /// 1-based index in a `kind: List` document's items.
    pub item: Option<usize>,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (document {}", self.source, self.document)?;
        if let Some(item) = self.item {
            write!(f, ", item {item}")?;
        }
        write!(f, ")")
    }
}

/// One parsed document: a mapping, by the time it is returned.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    pub origin: Origin,
    pub value: Value,
}

impl Document {
    /// The `kind` field, if it is a string.
    pub fn kind(&self) -> Option<&str> {
        self.value.get("kind").and_then(Value::as_str)
    }

    /// `metadata.name`, if it is a string.
    pub fn name(&self) -> Option<&str> {
        self.value
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
    }

    /// `metadata.namespace`, if it is a string.
    pub fn namespace(&self) -> Option<&str> {
        self.value
            .get("metadata")
            .and_then(|m| m.get("namespace"))
            .and_then(Value::as_str)
    }
}

/// Read and parse every source in order. A directory contributes its `*.yaml`, `*.yml` and
/// `*.json` files (not recursively) in sorted order; `-` is standard input (YAML or JSON).
pub fn read_all(sources: &[PathBuf]) -> Result<Vec<Document>> {
    let mut documents = Vec::new();
    let mut stdin_used = false;
    for source in sources {
        if source.as_os_str() == "-" {
            if stdin_used {
                bail!("`-f -` given twice: standard input can be read only once");
            }
            stdin_used = true;
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read standard input")?;
            documents.extend(parse_yaml("<stdin>", &text)?);
        } else if source.is_dir() {
            let files = manifest_files(source)?;
            if files.is_empty() {
                bail!(
                    "{}: no *.yaml, *.yml or *.json files in this directory",
                    source.display()
                );
            }
            for file in files {
                documents.extend(read_file(&file)?);
            }
        } else {
            documents.extend(read_file(source)?);
        }
    }
    Ok(documents)
}

/// The manifest files directly inside `dir`, sorted by name.
pub fn manifest_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)
        .with_context(|| format!("cannot read directory {}", dir.display()))?
    {
        let path = entry
            .with_context(|| format!("cannot read directory {}", dir.display()))?
            .path();
        let is_manifest = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "yaml" | "yml" | "json"));
        if is_manifest && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn read_file(path: &Path) -> Result<Vec<Document>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let source = path.display().to_string();
    let is_json = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if is_json {
        parse_json(&source, &text)
    } else {
        parse_yaml(&source, &text)
    }
}

/// Parse multi-document YAML (`---`-separated); empty documents are skipped.
pub fn parse_yaml(source: &str, text: &str) -> Result<Vec<Document>> {
    let mut documents = Vec::new();
    for (index, deserializer) in serde_norway::Deserializer::from_str(text).enumerate() {
        let number = index + 1;
        // Strict, as kubectl: a duplicate key or a non-finite number is refused here, before
        // anything is sent (once decoded, the duplicate is gone and `.inf` is null).
        let value = actors::decode::value(deserializer).map_err(|e| {
            let at = e
                .location()
                .map(|l| format!("line {} column {}: ", l.line(), l.column()))
                .unwrap_or_default();
            anyhow::anyhow!("{source}: {at}invalid YAML in document {number}: {e}")
        })?;
        if value.is_null() {
            continue;
        }
        push_document(&mut documents, source, number, value)?;
    }
    Ok(documents)
}

/// Parse a JSON file: one object, or an array of objects.
pub fn parse_json(source: &str, text: &str) -> Result<Vec<Document>> {
    let value: Value = actors::decode::json(text).map_err(|e| {
        anyhow::anyhow!(
            "{source}: line {} column {}: invalid JSON: {e}",
            e.line(),
            e.column()
        )
    })?;
    let mut documents = Vec::new();
    match value {
        Value::Array(items) => {
            for (index, item) in items.into_iter().enumerate() {
                push_document(&mut documents, source, index + 1, item)?;
            }
        }
        value => push_document(&mut documents, source, 1, value)?,
    }
    Ok(documents)
}

/// Check a document is a mapping and expand a `kind: List` into its items.
fn push_document(out: &mut Vec<Document>, source: &str, number: usize, value: Value) -> Result<()> {
    let origin = Origin {
        source: source.to_string(),
        document: number,
        item: None,
    };
    if !value.is_object() {
        bail!(
            "{origin}: expected a mapping with apiVersion, kind and metadata, found {}",
            type_name(&value)
        );
    }
    if value.get("kind").and_then(Value::as_str) == Some("List") {
        let Some(items) = value.get("items").and_then(Value::as_array) else {
            bail!("{origin}: a List needs `items`, a sequence of objects");
        };
        for (index, item) in items.iter().enumerate() {
            let origin = Origin {
                item: Some(index + 1),
                ..origin.clone()
            };
            if !item.is_object() {
                bail!("{origin}: expected a mapping, found {}", type_name(item));
            }
            out.push(Document {
                origin,
                value: item.clone(),
            });
        }
        return Ok(());
    }
    out.push(Document { origin, value });
    Ok(())
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a sequence",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn multi_document_yaml_skips_empty_documents() {
        let text = "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n# only a comment\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n";
        let docs = parse_yaml("m.yaml", text).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].name(), Some("a"));
        assert_eq!(docs[1].kind(), Some("Namespace"));
        assert_eq!(docs[1].origin.to_string(), "m.yaml (document 3)");
    }

    #[test]
    fn malformed_yaml_names_file_and_line() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [oops\ndata: {}\n";
        let err = parse_yaml("bad.yaml", text).unwrap_err().to_string();
        assert!(err.starts_with("bad.yaml: line "), "{err}");
        assert!(err.contains("document 1"), "{err}");
    }

    #[test]
    fn error_in_a_later_document_names_that_document() {
        let text = "kind: A\n---\nkind: B\n  bad: indent\n";
        let err = parse_yaml("two.yaml", text).unwrap_err().to_string();
        assert!(err.contains("two.yaml: line 4"), "{err}");
        assert!(err.contains("document 2"), "{err}");
    }

    #[test]
    fn non_mapping_documents_are_rejected() {
        let err = parse_yaml("s.yaml", "- a\n- b\n").unwrap_err().to_string();
        assert!(
            err.contains("s.yaml (document 1): expected a mapping"),
            "{err}"
        );
    }

    #[test]
    fn lists_expand_into_items() {
        let text = r#"{"apiVersion":"v1","kind":"List","items":[{"kind":"ConfigMap","metadata":{"name":"x"}}]}"#;
        let docs = parse_json("l.json", text).unwrap();
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0].name(), Some("x"));
        assert_eq!(docs[0].origin.item, Some(1));
    }

    #[test]
    fn json_arrays_and_errors() {
        let docs = parse_json("a.json", r#"[{"kind":"A"},{"kind":"B"}]"#).unwrap();
        assert_eq!(
            docs.iter().map(|d| d.value.clone()).collect::<Vec<_>>(),
            vec![json!({"kind":"A"}), json!({"kind":"B"})]
        );
        let err = parse_json("b.json", "{\n  \"kind\": \n}")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("b.json: line 3"), "{err}");
    }

    #[test]
    fn directories_apply_manifest_files_in_sorted_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.yml"), "kind: B\n").unwrap();
        std::fs::write(dir.path().join("a.yaml"), "kind: A\n").unwrap();
        std::fs::write(dir.path().join("c.json"), r#"{"kind":"C"}"#).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "kind: ignored\n").unwrap();
        let docs = read_all(&[dir.path().to_path_buf()]).unwrap();
        let kinds: Vec<_> = docs.iter().map(|d| d.kind().unwrap()).collect();
        assert_eq!(kinds, ["A", "B", "C"]);
        let empty = tempfile::tempdir().unwrap();
        assert!(read_all(&[empty.path().to_path_buf()]).is_err());
    }

    #[test]
    fn duplicate_keys_and_non_finite_numbers_are_refused_before_sending() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  name: b\n";
        let err = parse_yaml("d.yaml", text).unwrap_err().to_string();
        assert!(
            err.contains("duplicate key \"name\" at metadata.name"),
            "{err}"
        );
        assert!(err.starts_with("d.yaml: line "), "{err}");
        let text = "kind: Service\nspec:\n  ports: [{port: .inf}]\n";
        let err = parse_yaml("i.yaml", text).unwrap_err().to_string();
        assert!(err.contains("a number must be finite"), "{err}");
        let err = parse_json("d.json", r#"{"kind": "A", "kind": "B"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("duplicate key \"kind\""), "{err}");
    }
}
