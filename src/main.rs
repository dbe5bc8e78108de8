//! The `meshplane` binary: command-line parsing and wiring only. The daemon lives in
//! `adapters::daemon`; the client commands talk to its HTTP API (docs/api.md); `replay` and
//! `log` work on a log directly, without a daemon.
#![forbid(unsafe_code)]

mod cli;
mod client;
mod commands;
mod config;
mod diff;
mod documents;
mod logging;
mod output;
mod replay;
mod store;
mod token;

use std::process::ExitCode;

/// Replay and the daemon's fold hand decoded events between threads and are allocation-bound;
/// mimalloc's cheap cross-thread frees make that pay (see BENCHMARKS.md, replay).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;

use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", message(&e));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let default_level = match cli.command {
        Command::Run(_) => "info",
        _ => "warn",
    };
    logging::init(cli.log_format, cli.log_level.as_deref(), default_level)?;
    match cli.command {
        Command::Run(args) => commands::run::run(args),
        Command::Apply(args) => commands::apply::run(args),
        Command::Get(args) => commands::get::run(args),
        Command::Delete(args) => commands::delete::run(args),
        Command::Replay(args) => commands::replay::run(args),
        Command::History(args) => commands::history::run(args),
        Command::Explain(args) => commands::explain::run(args),
        Command::Rollback(args) => commands::rollback::run(args),
        Command::Log(args) => commands::log::run(args),
        Command::Simulate(args) => commands::simulate::run(args),
        Command::Crds => commands::crds::run(),
        Command::Install(args) => commands::install::run(args),
    }
}

/// The error and its causes, `: `-separated, skipping a cause whose text the previous message
/// already ends with (error types that print their source inline would otherwise repeat it).
pub(crate) fn message(error: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if out.ends_with(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Inline(std::io::Error);

    impl std::fmt::Display for Inline {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "store: {}", self.0)
        }
    }

    impl std::error::Error for Inline {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn error_messages_do_not_repeat_inline_sources() {
        let e = anyhow::Error::new(Inline(std::io::Error::other("locked"))).context("cannot open");
        assert_eq!(message(&e), "cannot open: store: locked");
        let plain = anyhow::anyhow!("root").context("outer");
        assert_eq!(message(&plain), "outer: root");
    }
}
