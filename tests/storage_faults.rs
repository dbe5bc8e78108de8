//! End-to-end: the storage fault model through the binary (issue 14, items 1–4). Inspection
//! tools never change the file; a damaged log is refused by the daemon, `replay` and `log
//! verify` with a report naming the first bad position; `log salvage` copies every intact
//! record into a new data directory that opens clean.

mod support;

use std::path::Path;
use std::time::Duration;

use support::{Daemon, Sandbox};

fn apply(sandbox: &Sandbox, daemon: &Daemon, name: &str, value: &str) {
    let file = sandbox.write(
        &format!("{name}.yaml"),
        &format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  value: \"{value}\"\n"),
    );
    sandbox
        .run(&[
            "apply",
            "-f",
            file.to_str().unwrap(),
            "--server",
            &daemon.url,
        ])
        .ok();
}

/// A log of six ConfigMaps, the third carrying a value that is easy to find in the file.
fn six_changes(sandbox: &Sandbox, data: &Path) {
    let mut daemon = Daemon::start(sandbox, data, &sandbox.path("manifests"));
    for (i, value) in ["one", "two", "SENTINEL-3f7a9c", "four", "five", "six"]
        .iter()
        .enumerate()
    {
        apply(sandbox, &daemon, &format!("cm{i}"), value);
    }
    daemon.terminate();
}

#[test]
fn inspection_is_read_only_and_damage_is_refused_then_salvaged() {
    let sandbox = Sandbox::new();
    let data = sandbox.path("data");
    six_changes(&sandbox, &data);
    let file = data.join("events.redb");
    let d = data.to_str().unwrap();

    // Inspection tools leave the file byte for byte.
    let before = std::fs::read(&file).unwrap();
    sandbox.run(&["replay", "--data", d]).ok();
    sandbox.run(&["log", "export", "--data", d]).ok();
    let verified = sandbox
        .run(&["log", "verify", "--data", d])
        .ok()
        .to_string();
    assert!(
        verified.contains("log is clean up to position"),
        "{verified}"
    );
    assert_eq!(
        std::fs::read(&file).unwrap(),
        before,
        "inspection changed the file"
    );

    // Damage the record holding the sentinel, in a copy.
    let damaged_dir = sandbox.path("damaged");
    std::fs::create_dir_all(&damaged_dir).unwrap();
    let at = before
        .windows(15)
        .position(|w| w == b"SENTINEL-3f7a9c")
        .expect("the sentinel is in the file");
    let mut damaged = before.clone();
    damaged[at + 3] ^= 0x20;
    let copy = damaged_dir.join("events.redb");
    std::fs::write(&copy, &damaged).unwrap();
    std::fs::copy(
        data.join("events.redb.acked"),
        damaged_dir.join("events.redb.acked"),
    )
    .unwrap();
    let dd = damaged_dir.to_str().unwrap();

    for args in [
        vec!["replay", "--data", dd],
        vec!["log", "verify", "--data", dd],
    ] {
        let stderr = sandbox.run(&args).fails().to_string();
        assert!(
            stderr.contains("the event log is damaged at position"),
            "{stderr}"
        );
        assert!(stderr.contains("log salvage"), "{stderr}");
        assert!(!stderr.contains("is the daemon running"), "{stderr}");
    }
    // The daemon refuses to start on it, with the report, and exits cleanly (no panic).
    let mut daemon = Daemon::spawn(&sandbox, &damaged_dir, "127.0.0.1:0", &[]);
    let code = daemon.wait_exit(Duration::from_secs(60));
    assert_eq!(code, Some(1), "{}", daemon.log_text());
    assert!(
        daemon.log_text().contains("damaged at position"),
        "{}",
        daemon.log_text()
    );
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        damaged,
        "a refusal changed the file"
    );

    // Salvage: every record but the damaged one is copied; the new log opens clean.
    let salvaged = sandbox.path("salvaged");
    let out = sandbox
        .run(&[
            "log",
            "salvage",
            "--data",
            dd,
            "--to",
            salvaged.to_str().unwrap(),
        ])
        .ok()
        .to_string();
    assert!(out.contains("copied into"), "{out}");
    let verified = sandbox
        .run(&["log", "verify", "--data", salvaged.to_str().unwrap()])
        .ok()
        .to_string();
    assert!(verified.contains("log is clean"), "{verified}");
    if out.contains("after the missing position") {
        let lines = std::fs::read_to_string(salvaged.join("salvaged-after-gap.jsonl")).unwrap();
        assert!(lines.lines().count() >= 1, "{lines}");
    }
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        damaged,
        "salvage changed the source"
    );
}
