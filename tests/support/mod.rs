//! Helpers for the end-to-end tests: run the built `meshplane` binary with a clean
//! environment, start daemons on free ports, and kill them when a test ends.

#![allow(dead_code, reason = "each test binary uses a different subset")]
#![allow(
    clippy::disallowed_methods,
    reason = "end-to-end tests wait on the real clock"
)]

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_meshplane");

/// How long any one CLI invocation may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a daemon may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A scratch area for one test: a HOME without a config file, plus any files the test writes.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        Sandbox { dir }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn home(&self) -> PathBuf {
        self.path("home")
    }

    /// Write a file under the sandbox and return its path.
    pub fn write(&self, rel: &str, content: &str) -> PathBuf {
        let path = self.path(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, content).unwrap();
        path
    }

    /// A `meshplane` command with an environment that cannot leak in from the developer's.
    pub fn command(&self) -> Command {
        self.command_of(Path::new(BIN))
    }

    /// The same, running another build's binary (`tests/record_fixture.rs`).
    pub fn command_of(&self, bin: &Path) -> Command {
        let mut command = Command::new(bin);
        for var in [
            "MESHPLANE_SERVER",
            "MESHPLANE_TOKEN",
            "MESHPLANE_DATA",
            "MESHPLANE_LISTEN",
            "MESHPLANE_MANIFESTS",
            "RUST_LOG",
        ] {
            command.env_remove(var);
        }
        command.env("HOME", self.home());
        command
    }

    /// Run `meshplane ARGS` to completion.
    /// Write `yaml` to the file `name` and `meshplane apply -f` it to the daemon at `server`;
    /// asserts success and returns standard output.
    pub fn apply(&self, name: &str, yaml: &str, server: &str) -> String {
        let file = self.write(name, yaml);
        self.run(&["apply", "-f", file.to_str().unwrap(), "--server", server])
            .ok()
            .to_string()
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with(self.command().args(args), None)
    }

    /// Run `meshplane ARGS` with `stdin` as standard input.
    pub fn run_stdin(&self, args: &[&str], stdin: &str) -> Output {
        self.run_with(self.command().args(args), Some(stdin))
    }

    pub fn run_with(&self, command: &mut Command, stdin: Option<&str>) -> Output {
        let described = format!("{command:?}");
        command.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {described}: {e}"));
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().unwrap();
            let input = input.to_string();
            std::thread::spawn(move || {
                let _ = pipe.write_all(input.as_bytes());
            });
        }
        let pid = child.id();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        let output = match rx.recv_timeout(COMMAND_TIMEOUT) {
            Ok(output) => output.expect("wait for meshplane"),
            Err(_) => {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                panic!("{described} did not finish in {COMMAND_TIMEOUT:?}");
            }
        };
        Output {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            described,
        }
    }
}

/// What one CLI run printed.
#[derive(Debug)]
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub described: String,
}

impl Output {
    /// Assert exit code 0 and return standard output.
    pub fn ok(&self) -> &str {
        assert_eq!(
            self.code,
            Some(0),
            "{} failed:\nstdout:\n{}\nstderr:\n{}",
            self.described,
            self.stdout,
            self.stderr
        );
        &self.stdout
    }

    /// Assert exit code 1 with an `error: ` line and return standard error.
    pub fn fails(&self) -> &str {
        assert_eq!(
            self.code,
            Some(1),
            "{} should fail:\nstdout:\n{}\nstderr:\n{}",
            self.described,
            self.stdout,
            self.stderr
        );
        assert!(
            self.stderr.contains("error: "),
            "{} printed no `error: ` line:\n{}",
            self.described,
            self.stderr
        );
        &self.stderr
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.ok())
            .unwrap_or_else(|e| panic!("{}: not JSON ({e}):\n{}", self.described, self.stdout))
    }
}

/// A free TCP port on `ip` (the listener is dropped right away, so the port is free but not
/// reserved; daemons are started immediately after).
pub fn free_port(ip: &str) -> u16 {
    TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `meshplane run`, killed (SIGKILL) when dropped.
pub struct Daemon {
    child: Option<Child>,
    pub url: String,
    pub port: u16,
    pub log: PathBuf,
}

impl Daemon {
    /// Start on a free loopback port with `--data DATA --manifests MANIFESTS` and wait for
    /// `/readyz`.
    pub fn start(sandbox: &Sandbox, data: &Path, manifests: &Path) -> Daemon {
        Daemon::start_with(
            sandbox,
            data,
            &["--manifests", manifests.to_str().unwrap()],
            "127.0.0.1",
        )
    }

    /// Start with extra `run` arguments, listening on `ip` and a free port.
    pub fn start_with(sandbox: &Sandbox, data: &Path, extra: &[&str], ip: &str) -> Daemon {
        let port = free_port(ip);
        let listen = format!("{ip}:{port}");
        let mut daemon = Daemon::spawn(sandbox, data, &listen, extra);
        daemon.port = port;
        daemon.wait_ready();
        daemon
    }

    /// Spawn without waiting; standard output and error go to a log file in the sandbox.
    pub fn spawn(sandbox: &Sandbox, data: &Path, listen: &str, extra: &[&str]) -> Daemon {
        Daemon::spawn_command(sandbox.command(), sandbox, data, listen, extra)
    }

    /// As [`Daemon::start_with`] on loopback, run through a wrapper command, e.g.
    /// `["prlimit", "--nofile=256:256"]`, with the same clean environment.
    pub fn start_wrapped(
        sandbox: &Sandbox,
        data: &Path,
        extra: &[&str],
        wrapper: &[&str],
    ) -> Daemon {
        let port = free_port("127.0.0.1");
        let mut command = sandbox.command_of(Path::new(wrapper[0]));
        command.args(&wrapper[1..]).arg(BIN);
        let mut daemon =
            Daemon::spawn_command(command, sandbox, data, &format!("127.0.0.1:{port}"), extra);
        daemon.wait_ready();
        daemon
    }

    fn spawn_command(
        mut command: Command,
        sandbox: &Sandbox,
        data: &Path,
        listen: &str,
        extra: &[&str],
    ) -> Daemon {
        let log = sandbox.path(&format!("daemon-{}.log", next_id()));
        let out = File::create(&log).unwrap();
        command
            .args(["run", "--data", data.to_str().unwrap(), "--listen", listen])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        let child = command.spawn().expect("spawn meshplane run");
        let port = listen.rsplit(':').next().unwrap().parse().unwrap();
        Daemon {
            child: Some(child),
            url: format!("http://127.0.0.1:{port}"),
            port,
            log,
        }
    }

    /// The daemon's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(2))
            .build();
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "meshplane run exited with {status} before it was ready:\n{}",
                    self.log_text()
                );
            }
            if let Ok(response) = agent.get(&format!("{}/readyz", self.url)).call() {
                if response.status() == 200 {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "meshplane run was not ready within {READY_TIMEOUT:?}:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL and reap: the crash case.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait for a graceful exit; returns the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let mut child = self.child.take().expect("daemon already stopped");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM failed");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "meshplane run did not stop within 30 s of SIGTERM:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Wait for the process to exit by itself (e.g. refusing to start); returns the exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let mut child = self.child.take().expect("daemon already stopped");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("meshplane run kept running:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

fn next_id() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Poll `check` until it holds or `timeout` passes.
pub fn eventually(timeout: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Send one raw HTTP/1.1 request over a TCP connection and return (status, body). The body is
/// written from another thread, so an early answer (e.g. 413) is read even if the server stops
/// reading.
pub fn raw_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let _ = writer
            .write_all(head.as_bytes())
            .and_then(|()| writer.write_all(&body));
    });
    let mut response = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => response.extend_from_slice(&buf[..n]),
            Err(e) if !response.is_empty() => {
                let _ = e;
                break;
            }
            Err(e) => panic!("reading the answer to {method} {path}: {e}"),
        }
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = sender.join();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}
