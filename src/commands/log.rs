//! `meshplane log export` and `meshplane log import`: a whole log as JSON Lines.

use std::io::{BufWriter, Write};

use anyhow::{bail, Context, Result};

use crate::cli::{ExportArgs, ImportArgs, LogArgs, LogCommand};
use crate::commands::replay::read_jsonl;
use crate::store;

pub fn run(args: LogArgs) -> Result<()> {
    match args.command {
        LogCommand::Export(args) => export(args),
        LogCommand::Import(args) => import(args),
    }
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
