//! A real etcd for tests and benchmarks: one single-member server on 127.0.0.1 with free
//! ports and a temporary data directory. Other test crates and benchmarks include this file
//! with `#[path = "..."] mod etcd_server;`, the path relative to the including file (the etcd
//! benchmark uses `../tests/support/etcd_server.rs`); it needs only `etcd-client`, `tokio`
//! (with `time`) and `tempfile`, and must be awaited on a tokio runtime.
//!
//! etcd is found on PATH or at /usr/bin/etcd; when missing and running as root with apt-get,
//! the Debian package `etcd-server` is installed; otherwise the test panics naming it.

// Not every includer uses every helper; waiting for etcd to start needs the wall clock.
#![allow(dead_code, clippy::disallowed_methods)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

const DEBIAN_PACKAGE: &str = "etcd-server";
const READY_TIMEOUT: Duration = Duration::from_secs(20);

pub struct EtcdServer {
    binary: PathBuf,
    dir: TempDir,
    client_port: u16,
    peer_port: u16,
    child: Option<Child>,
}

impl EtcdServer {
    /// Start a fresh etcd and wait until it serves reads.
    pub async fn start() -> EtcdServer {
        let binary = find_or_install_etcd();
        let dir = tempfile::Builder::new()
            .prefix("meshplane-etcd-")
            .tempdir()
            .expect("temporary directory for etcd");
        let client_port = free_port();
        let mut peer_port = free_port();
        while peer_port == client_port {
            peer_port = free_port();
        }
        let mut server = EtcdServer {
            binary,
            dir,
            client_port,
            peer_port,
            child: None,
        };
        server.spawn_and_wait().await;
        server
    }

    /// The client URL, e.g. `http://127.0.0.1:40123`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    pub fn endpoints(&self) -> Vec<String> {
        vec![self.endpoint()]
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Where etcd's stdout and stderr go (printed when it does not come up).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("etcd.log")
    }

    /// SIGKILL etcd and wait for it to exit. Its data stays for [`EtcdServer::restart`].
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kill (if running) and start again on the same data directory and ports.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn_and_wait().await;
    }

    /// A client for checking what etcd holds ("etcdctl get", in Rust).
    pub async fn client(&self) -> etcd_client::Client {
        etcd_client::Client::connect(self.endpoints(), None)
            .await
            .expect("etcd client")
    }

    async fn spawn_and_wait(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("etcd log file");
        let client_url = self.endpoint();
        let peer_url = format!("http://127.0.0.1:{}", self.peer_port);
        let name = "meshplane-test";
        let child = Command::new(&self.binary)
            .arg("--name")
            .arg(name)
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .arg("--listen-client-urls")
            .arg(&client_url)
            .arg("--advertise-client-urls")
            .arg(&client_url)
            .arg("--listen-peer-urls")
            .arg(&peer_url)
            .arg("--initial-advertise-peer-urls")
            .arg(&peer_url)
            .arg("--initial-cluster")
            .arg(format!("{name}={peer_url}"))
            .arg("--initial-cluster-state")
            .arg("new")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("etcd log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.binary.display()));
        self.child = Some(child);

        let started = Instant::now();
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "etcd exited with {status} while starting; log:\n{}",
                    self.log_tail()
                );
            }
            if self.answers().await {
                return;
            }
            if started.elapsed() > READY_TIMEOUT {
                self.kill();
                panic!(
                    "etcd did not answer within {READY_TIMEOUT:?}; log:\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether a client connects and a `get` works.
    async fn answers(&self) -> bool {
        let probe = async {
            let mut client = etcd_client::Client::connect(self.endpoints(), None).await?;
            client.get("/meshplane-test/probe", None).await
        };
        matches!(
            tokio::time::timeout(Duration::from_secs(1), probe).await,
            Ok(Ok(_))
        )
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port that was free a moment ago: bind port 0, read the port, release it.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}

fn find_etcd() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("etcd"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let fallback = PathBuf::from("/usr/bin/etcd");
        fallback.is_file().then_some(fallback)
    })
}

fn find_or_install_etcd() -> PathBuf {
    if let Some(path) = find_etcd() {
        return path;
    }
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let has_apt = Command::new("apt-get")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if is_root && has_apt {
        eprintln!("etcd not found: installing the Debian package {DEBIAN_PACKAGE}");
        let install = || {
            Command::new("apt-get")
                .args(["install", "-y", "--no-install-recommends", DEBIAN_PACKAGE])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .is_ok_and(|s| s.success())
        };
        // A fresh image may have no package lists yet: update once and try again.
        let installed = install()
            || (Command::new("apt-get")
                .args(["update", "-qq"])
                .status()
                .is_ok_and(|s| s.success())
                && install());
        if let (true, Some(path)) = (installed, find_etcd()) {
            return path;
        }
    }
    panic!(
        "these tests need a real etcd 3.4+: none on PATH or at /usr/bin/etcd; install the \
         Debian package `{DEBIAN_PACKAGE}` (apt-get install {DEBIAN_PACKAGE}) or put `etcd` on PATH"
    );
}
