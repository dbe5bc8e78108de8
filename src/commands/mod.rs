//! One module per subcommand.

pub mod apply;
pub mod delete;
pub mod explain;
pub mod get;
pub mod history;
pub mod log;
pub mod registry;
pub mod replay;
pub mod rollback;
pub mod run;
pub mod simulate;

use std::io::Write;

/// Write to standard output; a closed pipe (`meshplane get cm | head -1`) is not an error.
pub fn print(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// `kind/name` the way kubectl prints it: the kind in lower case.
pub fn object_ref(kind: &str, name: &str) -> String {
    format!("{}/{name}", kind.to_ascii_lowercase())
}
