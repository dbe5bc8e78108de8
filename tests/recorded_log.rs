//! Stored history must not change: a log recorded by an earlier build
//! (`tests/fixtures/recorded/`, see its README) replays with this build to exactly the report
//! that build printed — counts, every concept's state digest, the desired objects' digest and
//! the combined digest — also after an import into a fresh data directory.
//!
//! A failure here means this build folds old events differently. Fix the code (or add an
//! upcast); never re-record the fixture to make this pass.

use std::path::Path;
use std::process::Command;

const LOG: &str = "tests/fixtures/recorded/rich-run.jsonl";
const REPORT: &str = "tests/fixtures/recorded/rich-run.replay.txt";

/// Run `meshplane ARGS` from the package root (the report names the log by its relative
/// path); must succeed. Returns standard output.
fn meshplane(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_meshplane"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("MESHPLANE_DATA")
        .args(args)
        .output()
        .expect("run meshplane");
    assert!(
        output.status.success(),
        "meshplane {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

fn recorded() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(REPORT))
        .expect("the recorded report")
}

#[test]
fn the_recorded_log_replays_to_the_recorded_report() {
    let report = meshplane(&["replay", "--log", LOG]);
    let recorded = recorded();
    for (n, (now, then)) in report.lines().zip(recorded.lines()).enumerate() {
        assert_eq!(now, then, "line {} of the replay report differs", n + 1);
    }
    assert_eq!(report, recorded, "the replay report differs");
}

#[test]
fn an_imported_copy_replays_to_the_recorded_digest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    meshplane(&["log", "import", "--data", data, LOG]);
    let digest = meshplane(&["replay", "--data", data, "--digest"]);
    let recorded = recorded();
    let start = recorded.find("\nposition ").expect("a position line") + 1;
    assert_eq!(digest, recorded[start..], "the digest lines differ");
}
