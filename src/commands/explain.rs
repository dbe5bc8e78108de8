//! `meshplane explain sidecar NS/NAME`: every egress host of a fence's Sidecar, and the
//! evidence that put it there (the fence's spec, a selector match, a VirtualService route, or
//! the access-log sightings with their positions and times).

use actors::fence::kinds as fence;
use anyhow::{bail, Result};
use serde_json::Value;

use crate::cli::{ExplainArgs, OutputFormat};
use crate::client::Client;
use crate::commands::print;
use crate::config;
use crate::output::{self, align};

pub fn run(args: ExplainArgs) -> Result<()> {
    // A fence's Sidecar, named by the Sidecar or by its ServiceFence (any of their names).
    let explained = [&fence::SIDECAR, &fence::SERVICE_FENCE];
    if !explained.iter().any(|k| k.matches(&args.kind)) {
        bail!(
            "cannot explain `{}`: only `sidecar NAMESPACE/NAME` is explained",
            args.kind.to_ascii_lowercase()
        );
    }
    let (namespace, name) = match (args.name.split_once('/'), &args.namespace) {
        (Some(_), Some(_)) => {
            bail!("give the namespace either in NAME (NS/NAME) or with -n, not both")
        }
        (Some((ns, name)), None) => (ns.to_string(), name.to_string()),
        (None, ns) => (
            ns.clone().unwrap_or_else(|| "default".into()),
            args.name.clone(),
        ),
    };
    let client = Client::new(config::resolve(&args.client)?);
    let answer = client.get(&format!("/api/v1/fences/{namespace}/{name}/explain"), &[])?;
    if args.output != OutputFormat::Table {
        return print(&output::render_document(&answer, args.output)?);
    }
    let mut rows = vec![["EGRESS HOST", "BECAUSE"].map(String::from).to_vec()];
    for host in answer["egress"].as_array().into_iter().flatten() {
        let reasons: Vec<String> = host["reasons"]
            .as_array()
            .into_iter()
            .flatten()
            .map(describe)
            .collect();
        let name = host["host"].as_str().unwrap_or_default().to_string();
        let mut first = true;
        for reason in if reasons.is_empty() {
            vec![String::new()]
        } else {
            reasons
        } {
            rows.push(vec![
                if first { name.clone() } else { String::new() },
                reason,
            ]);
            first = false;
        }
    }
    print(&align(&rows))
}

/// One reason in words, with its evidence.
fn describe(reason: &Value) -> String {
    let s = |k: &str| reason[k].as_str().unwrap_or_default().to_string();
    let n = |k: &str| reason[k].as_i64().unwrap_or_default();
    let time = |k: &str| projections::time::rfc3339(n(k));
    match reason["kind"].as_str().unwrap_or_default() {
        "mesh_namespace" => format!("mesh namespace {} (always)", s("namespace")),
        "stable_host" => "stableHost in the lazyload configuration".into(),
        "global_sidecar" => "the global sidecar (namespace mode)".into(),
        "static" if n("position") == 0 => {
            format!("spec.host {} of the auto-created fence", s("host"))
        }
        "static" => format!(
            "spec.host {} (ServiceFence at position {})",
            s("host"),
            n("position")
        ),
        "selector" => format!(
            "labelSelector[{}] matches service {} (changed at position {})",
            n("index"),
            s("service"),
            n("position")
        ),
        "learned" => {
            let mut text = format!(
                "learned from {} ({}, caller {}) at position {} ({}); last seen at position {} ({}), {} refreshes",
                s("via"),
                s("raw"),
                s("source"),
                n("learned_position"),
                time("first_seen_ms"),
                n("last_position"),
                time("last_seen_ms"),
                n("refreshes")
            );
            if let Some(p) = reason["idle_position"].as_i64() {
                text.push_str(&format!("; idle (EXPIREWAIT) since position {p}"));
            }
            text
        }
        "alias" => format!("domainAliases of {}", s("of")),
        "virtual_service" => format!(
            "VirtualService {} routes {} here (changed at position {})",
            s("virtual_service"),
            s("host"),
            n("position")
        ),
        other => other.to_string(),
    }
}
