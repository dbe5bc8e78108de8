//! End-to-end tests of the replay tools: `replay --desired`, `--diff-at`, `--diff-against`, and
//! `--to` from snapshots (`run --snapshot-every N --snapshot-keep K`).

mod support;

use std::path::Path;
use std::time::Duration;

use support::{eventually, Daemon, Sandbox};

fn configmap(name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  value: \"{value}\"\n"
    )
}

fn apply(sandbox: &Sandbox, daemon: &Daemon, name: &str, value: &str) {
    sandbox.apply(
        &format!("{name}-{value}.yaml"),
        &configmap(name, value),
        &daemon.url,
    );
}

/// A log of five changes, the daemon stopped:
/// 1 a=1, 2 b=1, 3 a=2, 4 delete b, 5 c=1.
fn five_changes(sandbox: &Sandbox, data: &Path) {
    let mut daemon = Daemon::start(sandbox, data, &sandbox.path("manifests"));
    apply(sandbox, &daemon, "a", "1");
    apply(sandbox, &daemon, "b", "1");
    apply(sandbox, &daemon, "a", "2");
    sandbox
        .run(&["delete", "configmap", "b", "--server", &daemon.url])
        .ok();
    apply(sandbox, &daemon, "c", "1");
    daemon.terminate();
}

#[test]
fn desired_objects_at_a_position_and_diffs_of_positions_and_logs() {
    let sandbox = Sandbox::new();
    let data = sandbox.path("data");
    five_changes(&sandbox, &data);
    let d = data.to_str().unwrap();

    // --desired: YAML documents of the Kubernetes objects, then the etcd keys as comments.
    let yaml = sandbox
        .run(&["replay", "--data", d, "--to", "3", "--desired"])
        .ok()
        .to_string();
    assert!(
        yaml.starts_with("# desired objects at position 3: 2 Kubernetes objects, 2 etcd keys\n"),
        "{yaml}"
    );
    let documents: Vec<serde_json::Value> = yaml
        .split("---\n")
        .filter_map(|doc| serde_norway::from_str::<serde_json::Value>(doc).ok())
        .filter(|v| !v.is_null())
        .collect();
    assert_eq!(documents.len(), 2, "{yaml}");
    assert_eq!(documents[0]["metadata"]["name"], "a");
    assert_eq!(documents[0]["data"]["value"], "2");
    assert_eq!(
        documents[0]["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "meshplane"
    );
    assert_eq!(documents[1]["metadata"]["name"], "b");
    assert!(
        yaml.contains("# /meshplane/resources/ConfigMap/default/a\n#   {"),
        "{yaml}"
    );
    // -o json: one document.
    let json = sandbox
        .run(&[
            "replay",
            "--data",
            d,
            "--to",
            "1",
            "--desired",
            "-o",
            "json",
        ])
        .json();
    assert_eq!(json["position"], 1);
    assert_eq!(json["kubernetes"].as_array().unwrap().len(), 1);
    assert_eq!(json["kubernetes"][0]["data"]["value"], "1");
    assert!(json["etcd"]["/meshplane/resources/ConfigMap/default/a"]
        .as_str()
        .unwrap()
        .contains(r#""value":"1""#));

    // --diff-at: position 2 against position 5 differs (exit 1): b deleted, c created, a changed.
    let diff = sandbox.run(&["replay", "--data", d, "--to", "2", "--diff-at", "5"]);
    assert_eq!(diff.code, Some(1), "{diff:?}");
    let expected = r#"kubernetes:
  created ConfigMap/default/c
  deleted ConfigMap/default/b
  changed ConfigMap/default/a
    data.value: "1" → "2"
etcd:
  created /meshplane/resources/ConfigMap/default/c
  deleted /meshplane/resources/ConfigMap/default/b
  changed /meshplane/resources/ConfigMap/default/a
    data.value: "1" → "2"
concepts:
  changed resource: state "#;
    assert!(diff.stdout.contains(expected), "{}", diff.stdout);
    assert!(
        diff.stdout
            .trim_end()
            .ends_with("2 created, 2 deleted, 2 changed; concepts differing: resource"),
        "{}",
        diff.stdout
    );
    assert!(
        diff.stdout.starts_with(&format!(
            "comparing {d} (redb) at position 2 with {d} (redb) at position 5\n"
        )),
        "{}",
        diff.stdout
    );
    // The same position: identical (exit 0, and it says so).
    let same = sandbox.run(&["replay", "--data", d, "--diff-at", "5"]);
    assert!(same.ok().contains("\nidentical: "), "{}", same.stdout);
    // A position past the end: trouble, exit 2.
    let bad = sandbox.run(&["replay", "--data", d, "--diff-at", "99"]);
    assert_eq!(bad.code, Some(2), "{bad:?}");
    assert!(bad.stderr.contains("past the end of the log"), "{bad:?}");

    // --diff-against: the exported log is identical to its data directory ...
    let exported = sandbox.path("log.jsonl");
    sandbox
        .run(&[
            "log",
            "export",
            "--data",
            d,
            "-o",
            exported.to_str().unwrap(),
        ])
        .ok();
    let e = exported.to_str().unwrap();
    let identical = sandbox.run(&["replay", "--data", d, "--diff-against", e]);
    assert!(identical.ok().contains("\nidentical: "), "{identical:?}");
    let identical = sandbox.run(&["replay", "--log", e, "--diff-against", d]);
    assert!(identical.ok().contains("\nidentical: "), "{identical:?}");
    // ... and a shorter log (its prefix up to 4) differs by c only.
    let lines: Vec<&str> = std::fs::read_to_string(&exported)
        .unwrap()
        .leak()
        .lines()
        .collect();
    let prefix = sandbox.write("prefix.jsonl", &(lines[..4].join("\n") + "\n"));
    let shorter = sandbox.run(&[
        "replay",
        "--data",
        d,
        "--diff-against",
        prefix.to_str().unwrap(),
    ]);
    assert_eq!(shorter.code, Some(1), "{shorter:?}");
    assert!(
        shorter
            .stdout
            .contains("kubernetes:\n  deleted ConfigMap/default/c\netcd:\n"),
        "{}",
        shorter.stdout
    );
    // --diff-at applies to the other log: the full log at 4 is the prefix.
    let at_four = sandbox.run(&[
        "replay",
        "--log",
        prefix.to_str().unwrap(),
        "--diff-against",
        d,
        "--diff-at",
        "4",
    ]);
    assert!(at_four.ok().contains("\nidentical: "), "{at_four:?}");
}

/// Snapshot positions in DATA/snapshots, oldest first.
fn snapshot_positions(data: &Path) -> Vec<u64> {
    let mut positions: Vec<u64> = std::fs::read_dir(data.join("snapshots"))
        .map(|dir| {
            dir.filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                name.strip_prefix("snapshot-")?
                    .strip_suffix(".bin")?
                    .parse()
                    .ok()
            })
            .collect()
        })
        .unwrap_or_default();
    positions.sort();
    positions
}

#[test]
fn replay_to_from_snapshots_gives_the_digest_of_the_full_fold() {
    let sandbox = Sandbox::new();
    let data = sandbox.path("data");
    let mut daemon = Daemon::start_with(
        &sandbox,
        &data,
        &[
            "--manifests",
            sandbox.path("manifests").to_str().unwrap(),
            "--snapshot-every",
            "3",
            "--snapshot-keep",
            "0",
        ],
        "127.0.0.1",
    );
    for i in 0..16 {
        apply(&sandbox, &daemon, &format!("c{}", i % 5), &i.to_string());
        if i % 3 == 2 {
            // Let the snapshotter catch up, so that several snapshots are written.
            let want = (i / 3 + 1) as usize;
            eventually(Duration::from_secs(20), "a snapshot", || {
                snapshot_positions(&data).len() >= want
            });
        }
    }
    daemon.terminate();
    let positions = snapshot_positions(&data);
    // --snapshot-keep 0 keeps every snapshot (the default would keep 2).
    assert!(positions.len() >= 5, "{positions:?}");
    let d = data.to_str().unwrap();
    let digest = |extra: &[&str]| {
        let mut args = vec!["replay", "--data", d, "--digest"];
        args.extend_from_slice(extra);
        sandbox.run(&args).ok().to_string()
    };
    let oldest = positions[0];
    let between = positions[1] + 1;
    assert!(between < positions[2], "{positions:?}");
    for to in [
        1,
        oldest - 1,
        oldest,
        between,
        positions[positions.len() - 1],
        16,
    ] {
        if to == 0 {
            continue;
        }
        let t = to.to_string();
        assert_eq!(
            digest(&["--to", &t]),
            digest(&["--to", &t, "--no-snapshots"]),
            "--to {to} with snapshots at {positions:?}"
        );
    }
    assert_eq!(digest(&[]), digest(&["--no-snapshots"]));
    // The report says which snapshot the fold started from.
    let report = sandbox
        .run(&["replay", "--data", d, "--to", &between.to_string()])
        .ok()
        .to_string();
    assert!(
        report.contains(&format!(
            "started from the snapshot at position {}\n",
            positions[1]
        )),
        "{report}"
    );
    let before = sandbox
        .run(&[
            "replay",
            "--data",
            d,
            "--to",
            &(oldest - 1).max(1).to_string(),
        ])
        .ok()
        .to_string();
    assert!(!before.contains("started from the snapshot"), "{before}");
    let full = sandbox
        .run(&["replay", "--data", d, "--no-snapshots"])
        .ok()
        .to_string();
    assert!(!full.contains("started from the snapshot"), "{full}");
}
