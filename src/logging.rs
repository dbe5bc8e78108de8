//! Logging through `tracing`, always to standard error (standard output carries command output,
//! e.g. `log export`).

use std::io::IsTerminal;

use anyhow::{Context, Result};
use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

/// Install the global subscriber. The filter is `--log-level` if given, else `RUST_LOG`, else
/// `default_level`.
pub fn init(format: LogFormat, level: Option<&str>, default_level: &str) -> Result<()> {
    let filter = match level {
        Some(level) => EnvFilter::try_new(level)
            .with_context(|| format!("--log-level `{level}` is not a valid filter"))?,
        None => EnvFilter::try_from_default_env().or_else(|_| EnvFilter::try_new(default_level))?,
    };
    // Colours only for a terminal: a log file or journal must not collect escape codes.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    installed.map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))
}
