//! `meshplane apply -f FILE|DIR|-`.

use anyhow::{bail, Result};
use serde_json::Value;

use crate::cli::ApplyArgs;
use crate::client::{Client, ServerError};
use crate::commands::{object_ref, print};
use crate::config;
use crate::documents::{self, Document};

pub fn run(args: ApplyArgs) -> Result<()> {
    let documents = documents::read_all(&args.files)?;
    if documents.is_empty() {
        bail!("no objects passed to apply (the manifests hold only empty documents)");
    }
    let client = Client::new(config::resolve(&args.client)?);
    let body = Value::Array(documents.iter().map(|d| d.value.clone()).collect());
    let answer = client
        .post_json("/api/v1/apply", &body)
        .map_err(|e| locate(e, &documents))?;
    let results = answer
        .get("results")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            anyhow::anyhow!("{} answered without `results`: {answer}", client.server())
        })?;
    let mut out = String::new();
    for result in results {
        let text = |key: &str| result.get(key).and_then(Value::as_str).unwrap_or("?");
        out.push_str(&format!(
            "{} {}\n",
            object_ref(text("kind"), text("name")),
            text("outcome")
        ));
    }
    print(&out)
}

/// Prefix a server error about `documents[i]` with the file and document it came from.
pub fn locate(error: anyhow::Error, documents: &[Document]) -> anyhow::Error {
    let Some(server) = error.downcast_ref::<ServerError>() else {
        return error;
    };
    let mentioned = server
        .field
        .as_deref()
        .and_then(document_index)
        .or_else(|| document_index(&server.message));
    match mentioned.and_then(|i| documents.get(i)) {
        Some(document) => anyhow::anyhow!("{}: {server}", document.origin),
        None => error,
    }
}

/// `i` in a path that starts with `documents[i]`.
fn document_index(path: &str) -> Option<usize> {
    path.strip_prefix("documents[")?
        .split_once(']')?
        .0
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::documents::parse_yaml;

    #[test]
    fn server_errors_point_at_the_document() {
        let docs = parse_yaml("m.yaml", "kind: A\n---\nkind: B\n").unwrap();
        let server = ServerError {
            status: 400,
            reason: "Invalid".into(),
            message: "documents[1].metadata.name: missing".into(),
            field: Some("documents[1].metadata.name".into()),
        };
        let located = locate(server.into(), &docs).to_string();
        assert_eq!(
            located,
            "m.yaml (document 2): documents[1].metadata.name: missing (HTTP 400 Invalid)"
        );
        let other = locate(anyhow::anyhow!("unrelated"), &docs).to_string();
        assert_eq!(other, "unrelated");
        assert_eq!(document_index("documents[12].kind"), Some(12));
        assert_eq!(document_index("kind"), None);
    }
}
