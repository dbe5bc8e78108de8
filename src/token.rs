//! Where a bearer token comes from: `--token` (warned about), `--token-file PATH`, or
//! `MESHPLANE_TOKEN` (read by clap into the same field as `--token`).
//!
//! A command line is public on a Unix machine: every user sees it in `ps` and
//! `/proc/PID/cmdline`, so a token passed with `--token` is the machine's to read. The
//! environment (`/proc/PID/environ` is private to the user) and a file readable only by its
//! owner are not.

use std::path::Path;

use anyhow::{bail, Context, Result};

/// The token given by `--token`/`MESHPLANE_TOKEN` (`flag`) or `--token-file` (`file`); an
/// explicit `--token` wins, then the file, then the environment. Warns when the token is on the
/// command line.
pub fn resolve(flag: Option<String>, file: Option<&Path>) -> Result<Option<String>> {
    let flag = flag.filter(|t| !t.trim().is_empty());
    if flag.is_some() && on_command_line(std::env::args()) {
        tracing::warn!(
            "--token puts the token on the command line, where every user of this machine can \
             read it (ps, /proc/PID/cmdline); prefer MESHPLANE_TOKEN or --token-file PATH"
        );
        return Ok(flag);
    }
    match file {
        Some(path) => read_file(path).map(Some),
        None => Ok(flag),
    }
}

/// Whether `--token` was given as an argument (rather than through `MESHPLANE_TOKEN`).
fn on_command_line(args: impl Iterator<Item = String>) -> bool {
    args.take_while(|a| a != "--")
        .any(|a| a == "--token" || a.starts_with("--token="))
}

/// The first line of the file, trimmed; refused when empty.
fn read_file(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--token-file {}: cannot read", path.display()))?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token.is_empty() {
        bail!("--token-file {}: the file holds no token", path.display());
    }
    warn_if_shared(path);
    Ok(token)
}

/// Warn when others than the owner may read the token file.
fn warn_if_shared(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{:o}", mode & 0o777),
                "the token file can be read by other users; chmod 600 it"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> impl Iterator<Item = String> {
        list.iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn a_token_on_the_command_line_is_noticed() {
        assert!(on_command_line(args(&["meshplane", "get", "--token", "t"])));
        assert!(on_command_line(args(&["meshplane", "run", "--token=t"])));
        assert!(!on_command_line(args(&[
            "meshplane",
            "run",
            "--token-file",
            "f"
        ])));
        assert!(!on_command_line(args(&[
            "meshplane",
            "apply",
            "--",
            "--token"
        ])));
    }

    #[test]
    fn the_token_file_is_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cret\n").unwrap();
        assert_eq!(
            resolve(None, Some(&path)).unwrap().as_deref(),
            Some("s3cret")
        );
        // The environment's token (the same field) yields to an explicit file.
        assert_eq!(
            resolve(Some("from-env".into()), Some(&path))
                .unwrap()
                .as_deref(),
            Some("s3cret")
        );
        assert_eq!(
            resolve(Some("from-env".into()), None).unwrap().as_deref(),
            Some("from-env")
        );
        std::fs::write(&path, "\n").unwrap();
        let err = format!("{:#}", resolve(None, Some(&path)).unwrap_err());
        assert!(err.contains("holds no token"), "{err}");
        let missing = dir.path().join("missing");
        assert!(resolve(None, Some(&missing)).is_err());
    }
}
