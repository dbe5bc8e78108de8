//! Where the daemon is and how to authenticate: `--server`/`--token`, then the environment
//! (`MESHPLANE_SERVER`, `MESHPLANE_TOKEN`, read by clap into the same flags), then the config
//! file `$HOME/.meshplane/config.yaml`, then the default address.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::cli::{ClientArgs, DEFAULT_LISTEN};

/// The resolved endpoint of the daemon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Base URL without a trailing slash, e.g. `http://127.0.0.1:7470`.
    pub server: String,
    pub token: Option<String>,
}

/// `~/.meshplane/config.yaml`.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub server: Option<String>,
    pub token: Option<String>,
}

/// The config file's path under `$HOME`, if HOME is set.
pub fn config_path() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|home| Path::new(&home).join(".meshplane").join("config.yaml"))
}

/// Read the config file; a missing file is an empty config, a malformed one an error.
pub fn load_config(path: &Path) -> Result<ConfigFile> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ConfigFile::default()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    if text.trim().is_empty() {
        return Ok(ConfigFile::default());
    }
    serde_norway::from_str(&text)
        .with_context(|| format!("{} is not a valid meshplane config", path.display()))
}

/// Resolve the endpoint from the flags (and environment) and, for what they leave open, the
/// config file.
pub fn resolve(args: &ClientArgs) -> Result<Endpoint> {
    let nonempty = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
    let mut server = nonempty(&args.server);
    let mut token = crate::token::resolve(args.token.clone(), args.token_file.as_deref())?;
    if server.is_none() || token.is_none() {
        if let Some(path) = config_path() {
            let file = load_config(&path)?;
            server = server.or(nonempty(&file.server));
            token = token.or(nonempty(&file.token));
        }
    }
    let server = server.unwrap_or_else(|| format!("http://{DEFAULT_LISTEN}"));
    Ok(Endpoint {
        server: normalize_server(&server)?,
        token,
    })
}

/// Accept `host:port` as shorthand for `http://host:port`; strip trailing slashes.
pub fn normalize_server(server: &str) -> Result<String> {
    let server = server.trim();
    let rest = if let Some(rest) = server.strip_prefix("http://") {
        rest
    } else if server.starts_with("https://") {
        anyhow::bail!("server `{server}`: https is not supported by this client yet; use http://");
    } else if server.contains("://") {
        anyhow::bail!("server `{server}`: expected an http:// URL");
    } else {
        server
    };
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() {
        anyhow::bail!("server `{server}`: no host");
    }
    Ok(format!("http://{rest}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_server_urls() {
        assert_eq!(normalize_server("http://h:1/").unwrap(), "http://h:1");
        assert_eq!(
            normalize_server("127.0.0.1:7470").unwrap(),
            "http://127.0.0.1:7470"
        );
        assert!(normalize_server("https://h").is_err());
        assert!(normalize_server("ftp://h").is_err());
        assert!(normalize_server("http://").is_err());
    }

    #[test]
    fn config_file_is_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        assert_eq!(load_config(&path).unwrap(), ConfigFile::default());
        std::fs::write(&path, "server: http://10.0.0.1:7470\ntoken: s3cret\n").unwrap();
        let file = load_config(&path).unwrap();
        assert_eq!(file.server.as_deref(), Some("http://10.0.0.1:7470"));
        assert_eq!(file.token.as_deref(), Some("s3cret"));
        std::fs::write(&path, "sever: http://typo\n").unwrap();
        let err = format!("{:#}", load_config(&path).unwrap_err());
        assert!(err.contains("sever"), "{err}");
    }
}
