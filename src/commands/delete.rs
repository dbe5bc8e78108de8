//! `meshplane delete KIND NAME` and `meshplane delete -f FILE|DIR|-`.

use anyhow::{bail, Result};
use serde_json::Value;

use crate::cli::DeleteArgs;
use crate::client::{resource_path, Client};
use crate::commands::get::namespace_for;
use crate::commands::registry::{self, RegistryKind};
use crate::commands::{object_ref, print};
use crate::config;
use crate::documents;

pub fn run(args: DeleteArgs) -> Result<()> {
    if !args.files.is_empty() {
        return delete_files(&args);
    }
    let (Some(kind), Some(name)) = (args.kind.as_deref(), args.name.as_deref()) else {
        bail!("delete needs KIND and NAME, or -f FILE");
    };
    let client = Client::new(config::resolve(&args.client)?);
    if let Some(registry_kind) = RegistryKind::find(kind) {
        if args.namespace.is_some() {
            bail!("{}", registry::not_namespaced(kind));
        }
        return print(&registry::delete(&client, registry_kind, name)?);
    }
    let line = delete_one(
        &client,
        kind,
        name,
        namespace_for(kind, args.namespace.as_deref(), false),
    )?;
    print(&line)
}

/// Delete the object every document names; go on past failures and report them at the end.
fn delete_files(args: &DeleteArgs) -> Result<()> {
    let documents = documents::read_all(&args.files)?;
    if documents.is_empty() {
        bail!("no objects passed to delete (the manifests hold only empty documents)");
    }
    // Check every document names an object before deleting anything.
    let mut targets = Vec::new();
    for document in &documents {
        let Some(kind) = document.kind() else {
            bail!("{}: kind: missing", document.origin);
        };
        let Some(name) = document.name() else {
            bail!("{}: metadata.name: missing", document.origin);
        };
        // EaseMesh's documents name catalog objects, whatever their kind's name.
        let catalog = document
            .value
            .get("apiVersion")
            .and_then(Value::as_str)
            .is_some_and(|v| v.starts_with("mesh.megaease.com/"));
        let target = if catalog {
            match RegistryKind::of_document_kind(kind) {
                Some(k) => Target::Registry(k),
                None => bail!(
                    "{}: kind: `{kind}` is not an EaseMesh kind",
                    document.origin
                ),
            }
        } else {
            Target::Resource(namespace_for(kind, document.namespace(), false))
        };
        targets.push((document, kind, name, target));
    }
    let client = Client::new(config::resolve(&args.client)?);
    let mut failed = 0;
    for (document, kind, name, target) in targets {
        let result = match target {
            Target::Registry(k) => registry::delete(&client, k, name),
            Target::Resource(namespace) => delete_one(&client, kind, name, namespace),
        };
        match result {
            Ok(line) => print(&line)?,
            Err(e) => {
                failed += 1;
                eprintln!("error: {}: {}", document.origin, crate::message(&e));
            }
        }
    }
    if failed > 0 {
        bail!(
            "{failed} of {} object(s) could not be deleted",
            documents.len()
        );
    }
    Ok(())
}

/// What a document's delete goes to.
enum Target {
    Registry(RegistryKind),
    Resource(Option<String>),
}

fn delete_one(
    client: &Client,
    kind: &str,
    name: &str,
    namespace: Option<String>,
) -> Result<String> {
    let query: Vec<(&str, &str)> = namespace
        .iter()
        .map(|ns| ("namespace", ns.as_str()))
        .collect();
    let answer = client.delete(&resource_path(kind, Some(name)), &query)?;
    let deleted_kind = answer.get("kind").and_then(Value::as_str).unwrap_or(kind);
    let deleted_name = answer.get("name").and_then(Value::as_str).unwrap_or(name);
    let outcome = answer
        .get("outcome")
        .and_then(Value::as_str)
        .unwrap_or("deleted");
    Ok(format!(
        "{} {outcome}\n",
        object_ref(deleted_kind, deleted_name)
    ))
}
