//! `meshplane get KIND [NAME]`.

use anyhow::Result;
use serde_json::Value;

use actors::resource::kinds;

use crate::cli::{GetArgs, OutputFormat};
use crate::client::{resource_path, Client};
use crate::commands::registry::{self, RegistryKind};
use crate::commands::{objects_of, print};
use crate::config;
use crate::output;

/// The namespace query for a kind: namespaced (or unknown here, left to the server) kinds get
/// `-n` or `default`; cluster-scoped kinds and `-A` get none.
pub fn namespace_for(kind: &str, namespace: Option<&str>, all_namespaces: bool) -> Option<String> {
    let namespaced = kinds::find(kind).is_none_or(|k| k.namespaced);
    if !namespaced || all_namespaces {
        return None;
    }
    Some(
        namespace
            .unwrap_or(actors::resource::manifest::DEFAULT_NAMESPACE)
            .to_string(),
    )
}

pub fn run(args: GetArgs) -> Result<()> {
    let client = Client::new(config::resolve(&args.client)?);
    if let Some(kind) = RegistryKind::find(&args.kind) {
        if args.at.is_some() && kind == RegistryKind::ServiceInstances && args.name.is_some() {
            anyhow::bail!(
                "--at lists service instances (`get si --at POS`); for one instance's past use `meshplane history si SERVICE/ID`"
            );
        }
        if args.namespace.is_some() || args.all_namespaces {
            anyhow::bail!("{}", registry::not_namespaced(&args.kind));
        }
        return registry::get(&client, kind, &args);
    }
    if !args.filter.is_empty() {
        anyhow::bail!("--service, --tenant, --label and --status filter serviceinstances only");
    }
    let namespace = namespace_for(&args.kind, args.namespace.as_deref(), args.all_namespaces);
    let at = args.at.map(|p| p.to_string());
    let query: Vec<(&str, &str)> = namespace
        .iter()
        .map(|ns| ("namespace", ns.as_str()))
        .chain(at.iter().map(|p| ("at", p.as_str())))
        .collect();
    let answer = client.get(&resource_path(&args.kind, args.name.as_deref()), &query)?;
    if args.output != OutputFormat::Table {
        return print(&output::render_document(&answer, args.output)?);
    }
    let objects = objects_of(answer, args.name.is_some());
    if objects.is_empty() {
        match &namespace {
            Some(ns) => eprintln!("No resources found in {ns} namespace."),
            None => eprintln!("No resources found."),
        }
        return Ok(());
    }
    let kind = kinds::find(&args.kind)
        .map(|k| k.kind.to_string())
        .or_else(|| {
            objects[0]
                .get("kind")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_default();
    let with_namespace = args.all_namespaces && kinds::find(&kind).is_none_or(|k| k.namespaced);
    print(&output::render_table(
        &kind,
        &objects,
        with_namespace,
        adapters::clock::now_ms(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_follow_the_kind_scope() {
        assert_eq!(namespace_for("cm", None, false).as_deref(), Some("default"));
        assert_eq!(
            namespace_for("cm", Some("shop"), false).as_deref(),
            Some("shop")
        );
        assert_eq!(namespace_for("cm", None, true), None);
        assert_eq!(namespace_for("ns", Some("shop"), false), None);
        assert_eq!(
            namespace_for("widgets", None, false).as_deref(),
            Some("default")
        );
    }
}
