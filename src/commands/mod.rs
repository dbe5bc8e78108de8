//! One module per subcommand.

pub mod apply;
pub mod crds;
pub mod delete;
pub mod explain;
pub mod get;
pub mod history;
pub mod install;
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

/// Objects as multi-document YAML, after a comment header (each line prefixed with `# `).
pub fn yaml_documents(header: &str, objects: &[serde_json::Value]) -> anyhow::Result<String> {
    let mut out = String::new();
    for line in header.lines() {
        out.push_str("# ");
        out.push_str(line);
        out.push('\n');
    }
    for object in objects {
        out.push_str("---\n");
        out.push_str(&serde_norway::to_string(object)?);
    }
    Ok(out)
}

/// `kind/name` the way kubectl prints it: the kind in lower case.
pub fn object_ref(kind: &str, name: &str) -> String {
    format!("{}/{name}", kind.to_ascii_lowercase())
}

/// A progress bar on standard error with this template when it is a terminal; hidden
/// otherwise (pipes, files and tests see no bar).
pub fn progress_bar(len: u64, template: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(indicatif::ProgressStyle::with_template(template).expect("a valid template"));
    bar
}

/// The objects of an answer: the one object asked for by name, or a list's items.
pub fn objects_of(answer: serde_json::Value, named: bool) -> Vec<serde_json::Value> {
    if named {
        return vec![answer];
    }
    match answer {
        serde_json::Value::Object(mut map) => match map.remove("items") {
            Some(serde_json::Value::Array(items)) => items,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}
