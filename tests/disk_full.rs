//! End-to-end: the daemon on a real full disk (issue 14, item 5). The data directory is a small
//! tmpfs mounted in a private mount namespace (`unshare -rm`, no root needed where user
//! namespaces are allowed); a filler file takes the rest of its space. Writes answer 507 with a
//! reason and `/readyz` answers 503; once the filler is removed, writes succeed again within
//! 5 s without a restart, and every acknowledged write is in the log.

// The heal deadline (5 s) is measured on the wall clock.
#![allow(clippy::disallowed_methods)]

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{free_port, raw_request, Sandbox, BIN};

fn configmap(name: &str, size: usize) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"},
        "data": {"blob": "x".repeat(size)}
    }))
    .unwrap()
}

fn apply(port: u16, name: &str) -> (u16, String) {
    raw_request(
        port,
        "POST",
        "/api/v1/apply",
        &[("Content-Type", "application/json")],
        configmap(name, 100_000),
    )
}

fn wait_for(path: &Path, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !path.exists() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_full_disk_answers_507_and_heals_without_a_restart() {
    if !Command::new("unshare")
        .args(["-rm", "true"])
        .status()
        .is_ok_and(|s| s.success())
    {
        panic!(
            "this test mounts a tmpfs in a private mount namespace: `unshare -rm` must work \
             (util-linux, unprivileged user namespaces enabled)"
        );
    }
    let sandbox = Sandbox::new();
    let mount = sandbox.path("mnt");
    let control = sandbox.path("control");
    std::fs::create_dir_all(&mount).unwrap();
    std::fs::create_dir_all(&control).unwrap();
    let port = free_port("127.0.0.1");
    let script = format!(
        r#"set -e
mount -t tmpfs -o size=16m tmpfs "$MNT"
"$BIN" run --data "$MNT/data" --manifests "$MNT/manifests" --listen 127.0.0.1:{port} >"$CTL/daemon.log" 2>&1 &
pid=$!
while [ ! -e "$CTL/fill" ]; do sleep 0.05; done
dd if=/dev/zero of="$MNT/filler" bs=64k >/dev/null 2>&1 || true
touch "$CTL/filled"
while [ ! -e "$CTL/free" ]; do sleep 0.05; done
rm -f "$MNT/filler"
touch "$CTL/freed"
while [ ! -e "$CTL/stop" ]; do sleep 0.05; done
kill $pid; wait $pid || true
"#
    );
    let mut shell = Command::new("unshare")
        .args(["-rm", "sh", "-c", &script])
        .env("MNT", &mount)
        .env("CTL", &control)
        .env("BIN", BIN)
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn unshare");
    let log = || std::fs::read_to_string(control.join("daemon.log")).unwrap_or_default();
    let ready = |port| raw_request(port, "GET", "/readyz", &[], Vec::new()).0;
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() || ready(port) != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "daemon did not start:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let mut acknowledged = Vec::new();
    for i in 0..3 {
        let name = format!("before-{i}");
        let (status, body) = apply(port, &name);
        assert_eq!(status, 200, "{body}");
        acknowledged.push(name);
    }
    std::fs::write(control.join("fill"), b"").unwrap();
    wait_for(&control.join("filled"), "the filler");

    // Writes until one hits the full disk (redb may reuse freed pages for the first ones).
    let mut full = None;
    for i in 0..60 {
        let name = format!("during-{i}");
        match apply(port, &name) {
            (200, _) => acknowledged.push(name),
            (status, body) => {
                full = Some((status, body));
                break;
            }
        }
    }
    let (status, body) = full.expect("no write hit the full disk");
    assert_eq!(status, 507, "{body}");
    assert!(body.contains("No space left"), "{body}");
    let (status, body) = raw_request(port, "GET", "/readyz", &[], Vec::new());
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("no space left"), "{body}");
    // Still full: still refused, never a 500.
    assert_eq!(apply(port, "still-full").0, 507);

    std::fs::write(control.join("free"), b"").unwrap();
    wait_for(&control.join("freed"), "the space to be freed");
    let freed = Instant::now();
    let healed = loop {
        let (status, body) = apply(port, "after");
        if status == 200 {
            break freed.elapsed();
        }
        assert!(
            freed.elapsed() < Duration::from_secs(5),
            "not healed 5 s after the space was freed: {status} {body}\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    acknowledged.push("after".into());
    println!("writes succeeded again {healed:?} after the space was freed");
    assert_eq!(ready(port), 200);

    let (status, listed) = raw_request(port, "GET", "/api/v1/resources/ConfigMap", &[], Vec::new());
    assert_eq!(status, 200, "{listed}");
    for name in &acknowledged {
        assert!(
            listed.contains(&format!("\"{name}\"")),
            "acknowledged {name} lost"
        );
    }
    std::fs::write(control.join("stop"), b"").unwrap();
    let _ = shell.wait();
}
