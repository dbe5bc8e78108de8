//! `meshplane simulate` through the binary: the determinism self-check (the same seed run twice
//! prints the same trace hash), a swarm, and a failing run (a deliberately injected bug) that
//! prints the seed, the step, the invariant and the trail and exits non-zero.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_meshplane");

fn simulate(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .arg("simulate")
        .args(args)
        .output()
        .expect("meshplane runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn trace_of(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("trace "))
        .expect("a trace line")
        .to_string()
}

#[test]
fn the_same_seed_twice_gives_the_same_trace_hash() {
    let args = ["--seed", "4242", "--steps", "600", "--faults", "high"];
    let (ok_a, a, err_a) = simulate(&args);
    let (ok_b, b, _) = simulate(&args);
    assert!(ok_a && ok_b, "{a}{err_a}");
    assert_eq!(trace_of(&a), trace_of(&b));
    assert_eq!(trace_of(&a).len(), 64);
    assert!(a.contains("seed=4242 scenario=all faults=high ok"), "{a}");
    let (_, other, _) = simulate(&["--seed", "4243", "--steps", "600", "--faults", "high"]);
    assert_ne!(trace_of(&a), trace_of(&other));
}

#[test]
fn a_swarm_prints_a_line_per_seed_and_a_total() {
    let (ok, out, err) = simulate(&["--seeds", "10..13", "--steps", "300"]);
    assert!(ok, "{out}{err}");
    for seed in 10..13 {
        assert!(out.contains(&format!("seed={seed} ")), "{out}");
    }
    assert!(out.contains("total: seeds=3 passed=3 failed=0"), "{out}");
}

#[test]
fn a_violation_prints_seed_step_invariant_and_trail_and_fails() {
    let (ok, out, err) = simulate(&[
        "--seed",
        "1",
        "--scenario",
        "registry",
        "--faults",
        "none",
        "--inject-bug",
        "skip-liveness",
    ]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("VIOLATION seed=1 step=")
            && out.contains("invariant=instance_up_has_heartbeat"),
        "{out}"
    );
    assert!(out.contains("trail (last"), "{out}");
    assert!(
        err.contains("seed 1 violated instance_up_has_heartbeat"),
        "{err}"
    );
}
