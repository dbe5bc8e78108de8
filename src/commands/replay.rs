//! `meshplane replay (--data DIR | --log FILE) [--to POS] [--digest]`: fold a log, or its
//! prefix up to a position, with no adapters.

use std::io::BufReader;
use std::path::Path;

use anyhow::{Context, Result};

use crate::cli::ReplayArgs;
use crate::commands::print;
use crate::replay::Replay;
use crate::store;

pub fn run(args: ReplayArgs) -> Result<()> {
    let (replay, source) = match (&args.data, &args.log) {
        (_, Some(file)) => (replay_file(file, args.to)?, file.display().to_string()),
        (Some(dir), None) => {
            let store = store::open_existing(dir, args.store.into())?;
            let replay = Replay::from_store(store.as_ref(), args.to)
                .with_context(|| format!("replaying the log in {}", dir.display()))?;
            (
                replay,
                format!(
                    "{} ({})",
                    dir.display(),
                    adapters::storage::StoreKind::from(args.store)
                ),
            )
        }
        (None, None) => anyhow::bail!("replay needs --data DIR or --log FILE"),
    };
    if let Some(to) = args.to {
        if replay.mesh.position < to {
            anyhow::bail!(
                "--to {to} is past the end of the log, which ends at position {}",
                replay.mesh.position
            );
        }
    }
    let text = if args.digest {
        replay.digest().to_string()
    } else {
        replay.report(&source)
    };
    print(&(text + "\n"))
}

fn replay_file(file: &Path, to: Option<u64>) -> Result<Replay> {
    let envelopes = read_jsonl(file)?;
    Replay::from_envelopes(&envelopes, to).with_context(|| format!("replaying {}", file.display()))
}

/// Parse a JSON Lines log from a file, or standard input for `-`.
pub fn read_jsonl(file: &Path) -> Result<Vec<events::Envelope>> {
    let parsed = if file.as_os_str() == "-" {
        events::jsonl::parse(&mut std::io::stdin().lock())
    } else {
        let f =
            std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
        events::jsonl::parse(&mut BufReader::new(f))
    };
    parsed.with_context(|| format!("{} is not a valid meshplane JSON Lines log", file.display()))
}
