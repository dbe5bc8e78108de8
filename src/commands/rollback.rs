//! `meshplane rollback --to POS [--dry-run]`: return every concept to its state at a past log
//! position, or show what that would change.

use anyhow::Result;
use serde_json::{json, Value};

use crate::cli::{OutputFormat, RollbackArgs};
use crate::client::Client;
use crate::commands::print;
use crate::config;
use crate::output::{self, align, scalar};

pub fn run(args: RollbackArgs) -> Result<()> {
    let client = Client::new(config::resolve(&args.client)?);
    let answer = client.post_json(
        "/api/v1/rollback",
        &json!({"to": args.to, "reason": args.reason, "dryRun": args.dry_run, "wipe": args.wipe}),
    )?;
    if args.output != OutputFormat::Table {
        return print(&output::render_document(&answer, args.output)?);
    }
    let changes: Vec<&Value> = answer["changes"].as_array().into_iter().flatten().collect();
    let mut text = if args.dry_run {
        format!(
            "rollback to position {} would change {} object(s) (nothing appended)\n",
            args.to,
            changes.len()
        )
    } else {
        format!(
            "rolled back to position {} (rollback event at position {}); {} object(s) change\n",
            args.to,
            scalar(&answer["position"]),
            changes.len()
        )
    };
    if !changes.is_empty() {
        let mut rows = vec![["ACTION", "TARGET", "OBJECT"].map(String::from).to_vec()];
        for c in changes {
            rows.push(vec![
                scalar(&c["action"]),
                scalar(&c["target"]),
                scalar(&c["object"]),
            ]);
        }
        text.push_str(&align(&rows));
    }
    print(&text)
}
