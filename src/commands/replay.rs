//! `meshplane replay (--data DIR | --log FILE) [--to POS] [--digest | --desired [-o yaml|json]
//! | --diff-against FILE|DIR | --diff-at POS] [--no-snapshots]`: fold a log, or its prefix up to
//! a position, with no adapters; report it, print its desired objects, or compare it with
//! another log or another position.

use std::io::BufReader;
use std::path::Path;

use anyhow::{Context, Result};
use indicatif::ProgressBar;

use crate::cli::{ReplayArgs, ReplayOutput, Store};
use crate::commands::print;
use crate::replay::Replay;
use crate::store;

pub fn run(args: ReplayArgs) -> Result<()> {
    let diffing = args.diff_against.is_some() || args.diff_at.is_some();
    if !diffing {
        return report(&args);
    }
    // Like diff(1): 0 identical, 1 different, 2 trouble. Everything printed went through
    // `print`, which flushes, so exiting here loses nothing.
    match compare(&args) {
        Ok(identical) => {
            if identical {
                Ok(())
            } else {
                std::process::exit(1)
            }
        }
        Err(e) => {
            eprintln!("error: {}", crate::message(&e));
            std::process::exit(2)
        }
    }
}

/// The log to replay: where it is, and how to fold it.
struct Source<'a> {
    data: Option<&'a Path>,
    log: Option<&'a Path>,
    store: Store,
    snapshots: bool,
}

impl Source<'_> {
    fn describe(&self) -> String {
        match (self.log, self.data) {
            (Some(file), _) => file.display().to_string(),
            (None, Some(dir)) => format!(
                "{} ({})",
                dir.display(),
                adapters::storage::StoreKind::from(self.store)
            ),
            (None, None) => String::new(),
        }
    }

    /// Fold the log up to each of `positions` (its end for `None`), in one opening of the log.
    fn replay(&self, positions: &[Option<u64>]) -> Result<Vec<Replay>> {
        match (self.log, self.data) {
            (Some(file), _) => {
                let envelopes = read_jsonl(file)?;
                positions
                    .iter()
                    .map(|&to| {
                        let replay = Replay::from_envelopes(&envelopes, to)
                            .with_context(|| format!("replaying {}", file.display()))?;
                        check_end(&replay, to)?;
                        Ok(replay)
                    })
                    .collect()
            }
            (None, Some(dir)) => {
                let store = store::open_existing(dir, self.store.into())?;
                let snapshots = adapters::snapshot::dir(dir);
                let snapshots = self.snapshots.then_some(snapshots.as_path());
                positions
                    .iter()
                    .map(|&to| {
                        let end = to.unwrap_or(u64::MAX).min(store.head());
                        let bar = progress_bar(end);
                        let replay = Replay::from_store(store.as_ref(), snapshots, to, &mut |p| {
                            bar.set_position(p.min(end))
                        });
                        bar.finish_and_clear();
                        let replay = replay
                            .with_context(|| format!("replaying the log in {}", dir.display()))?;
                        check_end(&replay, to)?;
                        Ok(replay)
                    })
                    .collect()
            }
            (None, None) => anyhow::bail!("replay needs --data DIR or --log FILE"),
        }
    }
}

/// A bar on standard error (positions folded / the target position) when it is a terminal;
/// hidden otherwise.
fn progress_bar(len: u64) -> ProgressBar {
    super::progress_bar(
        len,
        "replay {wide_bar} {human_pos}/{human_len} events, eta {eta}",
    )
}

fn check_end(replay: &Replay, to: Option<u64>) -> Result<()> {
    if let Some(to) = to {
        if replay.mesh.position < to {
            anyhow::bail!(
                "position {to} is past the end of the log, which ends at position {}",
                replay.mesh.position
            );
        }
    }
    Ok(())
}

fn source(args: &ReplayArgs) -> Source<'_> {
    Source {
        data: args.data.as_deref(),
        log: args.log.as_deref(),
        store: args.store,
        snapshots: !args.no_snapshots,
    }
}

fn report(args: &ReplayArgs) -> Result<()> {
    let source = source(args);
    let replay = source
        .replay(&[args.to])?
        .pop()
        .expect("one replay per position");
    let text = if args.digest {
        replay.digest().to_string()
    } else if args.desired {
        desired(&replay, args.output)?
    } else {
        replay.report(&source.describe())
    };
    print(&(text + "\n"))
}

/// The desired objects at the replay's position.
fn desired(replay: &Replay, output: ReplayOutput) -> Result<String> {
    let desired = projections::desired(&replay.mesh);
    let position = replay.mesh.position;
    Ok(match output {
        ReplayOutput::Json => {
            let doc = serde_json::json!({
                "position": position,
                "kubernetes": desired.kube.values().map(|o| o.to_value()).collect::<Vec<_>>(),
                "etcd": desired.etcd,
            });
            serde_json::to_string_pretty(&doc)?
        }
        ReplayOutput::Yaml => {
            let mut out = format!(
                "# desired objects at position {position}: {} Kubernetes objects, {} etcd keys\n",
                desired.kube.len(),
                desired.etcd.len()
            );
            for object in desired.kube.values() {
                out.push_str("---\n");
                out.push_str(&serde_norway::to_string(&object.to_value())?);
            }
            if !desired.etcd.is_empty() {
                out.push_str("---\n# etcd keys (key, then its value):\n");
                for (key, value) in &desired.etcd {
                    out.push_str(&format!("# {key}\n#   {value}\n"));
                }
            }
            out.trim_end().to_string()
        }
    })
}

/// Compare the replay with the other log or position; whether they are identical.
fn compare(args: &ReplayArgs) -> Result<bool> {
    let this = source(args);
    let (first, second, other_name) = match &args.diff_against {
        Some(other) => {
            let first = this.replay(&[args.to])?.pop().expect("one replay");
            let that = if other.is_dir() {
                Source {
                    data: Some(other),
                    log: None,
                    ..source(args)
                }
            } else {
                Source {
                    data: None,
                    log: Some(other),
                    ..source(args)
                }
            };
            let second = that.replay(&[args.diff_at])?.pop().expect("one replay");
            (first, second, that.describe())
        }
        None => {
            let mut both = this.replay(&[args.to, args.diff_at])?;
            let second = both.pop().expect("two replays");
            (both.pop().expect("two replays"), second, this.describe())
        }
    };
    let diff = crate::diff::diff(&first.mesh, &second.mesh);
    let header = format!(
        "comparing {} at position {} with {} at position {}",
        this.describe(),
        first.mesh.position,
        other_name,
        second.mesh.position
    );
    let text = if diff.is_empty() {
        format!("{header}\nidentical: no desired object and no concept's state differs\n")
    } else {
        format!("{header}\n{}\n", diff.render())
    };
    print(&text)?;
    Ok(diff.is_empty())
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
