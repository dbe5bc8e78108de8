//! The pure crates must not depend on an async runtime, the actor framework, a Kubernetes or
//! etcd client, or a storage engine: they are folded by replay and by the simulator, where
//! none of those may run. Checked on the real dependency graph, through `cargo tree`.

use std::process::Command;

const FORBIDDEN: &[&str] = &[
    "tokio",
    "actix",
    "actix-rt",
    "actix-web",
    "kube",
    "kube-client",
    "etcd-client",
    "redb",
    "sled",
];

fn normal_dependencies(package: &str) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "-p",
            package,
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

#[test]
fn pure_crates_do_not_depend_on_io_runtimes_or_storage() {
    for package in ["actors", "projections", "simulations"] {
        let deps = normal_dependencies(package);
        assert!(
            deps.iter().any(|d| d == "events"),
            "{package}: cargo tree output looks wrong: {deps:?}"
        );
        let bad: Vec<&String> = deps
            .iter()
            .filter(|d| FORBIDDEN.contains(&d.as_str()))
            .collect();
        assert!(
            bad.is_empty(),
            "{package} depends on {bad:?}, which the pure crates must not use"
        );
    }
}

#[test]
fn the_check_would_notice_a_forbidden_dependency() {
    // adapters legitimately uses tokio, actix and redb: the same query must see them.
    let deps = normal_dependencies("adapters");
    for expected in ["tokio", "actix", "redb"] {
        assert!(
            deps.iter().any(|d| d == expected),
            "adapters should show {expected}: {deps:?}"
        );
    }
}
