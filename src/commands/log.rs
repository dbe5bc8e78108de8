//! `meshplane log export` and `meshplane log import`: a whole log as JSON Lines.

use std::io::{BufWriter, Write};

use anyhow::{bail, Context, Result};

use crate::cli::{ExportArgs, ImportArgs, LogArgs, LogCommand, SalvageArgs, VerifyArgs};
use crate::commands::replay::read_jsonl;
use crate::store;

pub fn run(args: LogArgs) -> Result<()> {
    match args.command {
        LogCommand::Export(args) => export(args),
        LogCommand::Import(args) => import(args),
        LogCommand::Verify(args) => verify(args),
        LogCommand::Salvage(args) => salvage(args),
    }
}

fn verify(args: VerifyArgs) -> Result<()> {
    let store = store::open_existing(&args.data.dir, args.data.store.into())?;
    let recovery = store.recovery();
    let mut out = std::io::stdout().lock();
    writeln!(out, "{recovery}")?;
    Ok(())
}

/// Copy every intact record out of a log file that may be too damaged to open: the raw bytes
/// are scanned for records that verify (see `events::salvage`), so neither redb's structures
/// nor its commit slots are trusted, and the source is only read.
fn salvage(args: SalvageArgs) -> Result<()> {
    let kind = args.data.store.into();
    if !matches!(kind, adapters::storage::StoreKind::Redb) {
        bail!("salvage reads redb log files only (--store redb)");
    }
    let source = adapters::storage::store_path(&args.data.dir, kind);
    let bytes =
        std::fs::read(&source).with_context(|| format!("cannot read {}", source.display()))?;
    let target = adapters::storage::store_path(&args.to, kind);
    if target.exists() {
        bail!(
            "{} already holds a log: salvage writes into a new data directory",
            args.to.display()
        );
    }
    let found = events::salvage::scan(&bytes);
    let dense: Vec<events::Envelope> = found.dense_prefix().into_iter().cloned().collect();
    let after = found.after_gap();
    let store = store::open(&args.to, kind)?;
    let copied = events::jsonl::import(store.as_ref(), dense)
        .with_context(|| format!("writing the new log in {}", args.to.display()))?;
    drop(store);
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{copied} intact record(s), positions 1 to {copied}, copied into {}",
        target.display()
    )?;
    if !after.is_empty() {
        let path = args.to.join("salvaged-after-gap.jsonl");
        let file = std::fs::File::create(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let mut lines = BufWriter::new(file);
        for envelope in &after {
            let line = events::jsonl::Line::from_envelope(envelope)?;
            serde_json::to_writer(&mut lines, &line)?;
            lines.write_all(b"\n")?;
        }
        lines
            .into_inner()
            .map_err(|e| e.into_error())?
            .sync_all()
            .with_context(|| format!("syncing {}", path.display()))?;
        let gaps: Vec<String> = found
            .gaps()
            .iter()
            .map(|(from, to)| match from == to {
                true => from.to_string(),
                false => format!("{from}-{to}"),
            })
            .collect();
        writeln!(
            out,
            "{} intact record(s) after the missing position(s) {} written to {} (positions kept; \
             they cannot be part of a log without the missing ones)",
            after.len(),
            gaps.join(", "),
            path.display()
        )?;
    }
    if !found.conflicts.is_empty() {
        writeln!(
            out,
            "warning: two different intact records claim position(s) {:?}; the first found was kept",
            found.conflicts
        )?;
    }
    Ok(())
}

fn export(args: ExportArgs) -> Result<()> {
    let store = store::open_existing(&args.data.dir, args.data.store.into())?;
    match args.output.as_deref().filter(|p| p.as_os_str() != "-") {
        None => {
            let stdout = std::io::stdout();
            let mut out = BufWriter::new(stdout.lock());
            events::jsonl::export(store.as_ref(), &mut out)
                .context("exporting the log to standard output")?;
        }
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            let mut out = BufWriter::new(file);
            let count = events::jsonl::export(store.as_ref(), &mut out)
                .with_context(|| format!("exporting the log to {}", path.display()))?;
            let file = out
                .into_inner()
                .map_err(|e| e.into_error())
                .with_context(|| format!("writing {}", path.display()))?;
            file.sync_all()
                .with_context(|| format!("syncing {}", path.display()))?;
            eprintln!("exported {count} events to {}", path.display());
        }
    }
    Ok(())
}

fn import(args: ImportArgs) -> Result<()> {
    // Parse (and so validate) the whole file before touching the target.
    let envelopes = read_jsonl(&args.file)?;
    let store = store::open(&args.data.dir, args.data.store.into())?;
    let head = store.head();
    if head != 0 {
        bail!(
            "{} already holds a log of {head} events: import needs an empty data directory",
            args.data.dir.display()
        );
    }
    let count = events::jsonl::import(store.as_ref(), envelopes)
        .with_context(|| format!("importing {}", args.file.display()))?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "imported {count} events into {}",
        args.data.dir.display()
    )?;
    Ok(())
}
