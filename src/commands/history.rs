//! `meshplane history KIND NAME`: every event that touched one object, from the daemon's log.

use anyhow::Result;
use serde_json::Value;

use crate::cli::{HistoryArgs, OutputFormat};
use crate::client::Client;
use crate::commands::print;
use crate::commands::registry::RegistryKind;
use crate::config;
use crate::output::{self, align, scalar};

/// The kind as the history API names it: registry kinds by their own names, Kubernetes kinds
/// as given (the daemon resolves aliases).
fn api_kind(kind: &str) -> String {
    match RegistryKind::find(kind) {
        Some(RegistryKind::ServiceInstances) => "ServiceInstance".into(),
        Some(RegistryKind::Tenants) => "Tenant".into(),
        Some(RegistryKind::Services) => "MeshService".into(),
        Some(RegistryKind::MeshControllers) => "MeshController".into(),
        Some(RegistryKind::Part(_)) | None => kind.to_string(),
    }
}

pub fn run(args: HistoryArgs) -> Result<()> {
    let client = Client::new(config::resolve(&args.client)?);
    let kind = api_kind(&args.kind);
    let mut query = vec![("kind", kind.as_str()), ("name", args.name.as_str())];
    if let Some(ns) = &args.namespace {
        query.push(("namespace", ns.as_str()));
    }
    let answer = client.get("/api/v1/history", &query)?;
    if args.output != OutputFormat::Table {
        return print(&output::render_document(&answer, args.output)?);
    }
    let mut rows = vec![["POSITION", "TIME", "EVENT", "SUMMARY"]
        .map(String::from)
        .to_vec()];
    for item in answer
        .get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let text = |key: &str| item.get(key).map(scalar).unwrap_or_default();
        rows.push(vec![
            text("position"),
            text("time"),
            text("event"),
            text("summary"),
        ]);
    }
    print(&align(&rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_kinds_get_their_api_names() {
        assert_eq!(api_kind("si"), "ServiceInstance");
        assert_eq!(api_kind("services"), "MeshService");
        assert_eq!(api_kind("svc"), "svc");
        assert_eq!(api_kind("cm"), "cm");
    }
}
