//! Registry load benchmark: the release daemon with 100,000 registered instances heartbeating
//! every 5 s, measured from outside over HTTP.
//!
//! `cargo bench --bench registry_load` (plain `main`, no criterion). Environment:
//! `MESHPLANE_BENCH_INSTANCES` (default 100000), `MESHPLANE_BENCH_SECONDS` (steady-state window,
//! default 30, rounded up to whole 5 s heartbeat periods), `MESHPLANE_BENCH_BIN` (the daemon to
//! run; default this build's).
//!
//! Phases, each printing plain figure lines:
//! 1. catalog: a MeshController (heartbeatInterval 5s), one tenant, 1,000 services;
//! 2. registration of N instances by 32 client threads (a background thread keeps the ones
//!    already registered alive with batched heartbeats, so none goes out of service meanwhile);
//! 3. baselines (the daemon idle; the heartbeat rate sent unbatched as one `PUT` per heartbeat
//!    for 10 s), then the steady state: every instance heartbeats every 5 s through `POST
//!    /api/v1/registry/heartbeats` in batches of 500 spread evenly over the period, after one
//!    warm-up period; CPU (utime+stime from `/proc/<pid>/stat`), RSS, latency, log growth;
//! 4. out-of-service detection: the heartbeats stop; each service is polled
//!    (`?service=S&status=OUT_OF_SERVICE`) from shortly before its instances' deadline until all
//!    of them are out of service; per instance, the time from its last heartbeat to the poll that
//!    first saw it out of service. Then the daemon is stopped and its log exported, and the
//!    transitions' own evidence (last heartbeat, deadline, detection time, all in ms) and record
//!    times give the daemon-side figures, free of polling error.

#![allow(
    clippy::disallowed_methods,
    reason = "a load benchmark measures the real clock"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The daemon under test: this build's, or `MESHPLANE_BENCH_BIN` (e.g. an earlier commit's
/// release binary, to compare two builds on the same machine in the same session).
fn bin() -> String {
    std::env::var("MESHPLANE_BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_meshplane").into())
}
const SERVICES: usize = 1000;
const TENANT: &str = "bench";
const INTERVAL: Duration = Duration::from_secs(5);
/// Heartbeats per batched request.
const BATCH: usize = 500;
const REGISTER_THREADS: usize = 32;
const BATCH_THREADS: usize = 4;
const UNBATCHED_THREADS: usize = 32;
const UNBATCHED_WINDOW: Duration = Duration::from_secs(10);
const IDLE_WINDOW: Duration = Duration::from_secs(3);
const POLL_THREADS: usize = 2;
/// A service is polled from this long before its instances' deadline (2 × interval after the
/// last heartbeat): earlier transitions would show up as "out of service at the first poll".
const POLL_LEAD: Duration = Duration::from_millis(500);
/// 2 × heartbeat interval + 1 s.
const DETECTION_TARGET: Duration = Duration::from_secs(11);

fn env_or(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{name}={v}: {e}")),
        Err(_) => default,
    }
}

// ---------------------------------------------------------------------------------------------
// The daemon

/// The spawned daemon; killed (and its data removed) when dropped, also on panic.
struct Daemon {
    child: Child,
    url: String,
    log: PathBuf,
    data: PathBuf,
    _dir: tempfile::TempDir,
}

impl Daemon {
    fn start() -> Daemon {
        let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        fs::create_dir_all(&tmp).expect("create CARGO_TARGET_TMPDIR");
        let dir = tempfile::Builder::new()
            .prefix("registry-load-")
            .tempdir_in(&tmp)
            .expect("temp dir");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let log = dir.path().join("daemon.log");
        let out = fs::File::create(&log).expect("daemon log");
        let mut command = Command::new(bin());
        for var in [
            "MESHPLANE_TOKEN",
            "MESHPLANE_DATA",
            "MESHPLANE_LISTEN",
            "MESHPLANE_MANIFESTS",
            "RUST_LOG",
        ] {
            command.env_remove(var);
        }
        let data = dir.path().join("data");
        let child = command
            .args(["--log-level", "warn", "run", "--data"])
            .arg(&data)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("daemon log"))
            .stderr(out)
            .spawn()
            .expect("spawn meshplane run");
        let mut daemon = Daemon {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
            data,
            _dir: dir,
        };
        daemon.wait_ready();
        daemon
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(2))
            .build();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!("meshplane run exited with {status} before it was ready");
            }
            if let Ok(r) = agent.get(&format!("{}/readyz", self.url)).call() {
                if r.status() == 200 {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "not ready within 60 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stop gracefully (SIGTERM; SIGKILL after 30 s) and export the log as JSON Lines with
    /// `meshplane log export`; answers the file.
    fn stop_and_export(&mut self) -> PathBuf {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let out = self.data.with_file_name("log.jsonl");
        let status = Command::new(bin())
            .args(["--log-level", "warn", "log", "export", "--data"])
            .arg(&self.data)
            .arg("-o")
            .arg(&out)
            .stderr(Stdio::null())
            .status()
            .expect("meshplane log export");
        assert!(status.success(), "meshplane log export: {status}");
        out
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let text = fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            eprintln!("--- daemon log (last {} lines) ---", tail.len());
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(120))
        .build()
}

/// Status and body of a call; transport errors panic.
fn done(what: &str, result: Result<ureq::Response, ureq::Error>) -> (u16, Vec<u8>) {
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{what}: {e}"),
    };
    let status = response.status();
    let mut body = Vec::new();
    response
        .into_reader()
        .read_to_end(&mut body)
        .unwrap_or_else(|e| panic!("{what}: reading the body: {e}"));
    (status, body)
}

fn expect_status(what: &str, (status, body): (u16, Vec<u8>), want: u16) -> Vec<u8> {
    assert_eq!(
        status,
        want,
        "{what}: HTTP {status}: {}",
        String::from_utf8_lossy(&body[..body.len().min(2000)])
    );
    body
}

fn metrics(agent: &ureq::Agent, url: &str) -> BTreeMap<String, f64> {
    let body = expect_status(
        "GET /metrics",
        done("GET /metrics", agent.get(&format!("{url}/metrics")).call()),
        200,
    );
    String::from_utf8_lossy(&body)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect()
}

fn metric(m: &BTreeMap<String, f64>, name: &str) -> u64 {
    m.get(name).copied().unwrap_or(0.0) as u64
}

fn service(i: usize) -> usize {
    i % SERVICES
}

fn beats_body(ids: impl Iterator<Item = usize>) -> Vec<u8> {
    let beats: Vec<String> = ids
        .map(|i| {
            format!(
                r#"{{"serviceName":"svc-{}","instanceID":"ins-{i}"}}"#,
                service(i)
            )
        })
        .collect();
    format!(r#"{{"heartbeats":[{}]}}"#, beats.join(",")).into_bytes()
}

/// Send one batch; answers the number accepted.
fn send_beats(agent: &ureq::Agent, url: &str, body: &[u8]) -> usize {
    let what = "POST /api/v1/registry/heartbeats";
    let body = expect_status(
        what,
        done(
            what,
            agent
                .post(&format!("{url}/api/v1/registry/heartbeats"))
                .set("Content-Type", "application/json")
                .send_bytes(body),
        ),
        200,
    );
    let v: Value = serde_json::from_slice(&body).expect("heartbeats answer");
    v["accepted"].as_u64().expect("accepted") as usize
}

/// Instances listed by a registry query, as instance numbers.
fn listed(body: &[u8]) -> Vec<usize> {
    let v: Value = serde_json::from_slice(body).expect("instance list");
    v["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| {
            let id = item["instanceID"].as_str().expect("instanceID");
            id.strip_prefix("ins-")
                .and_then(|n| n.parse().ok())
                .expect("ins-N")
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Measurements

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime of a process, in clock ticks (`pid` may be "self").
fn cpu_ticks(pid: &str) -> u64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

/// A `kB` line of `/proc/<pid>/status` (VmRSS, VmHWM).
fn status_kb(pid: &str, key: &str) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn mib(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// Sorted samples; nearest-rank percentiles.
struct Dist(Vec<u64>);

impl Dist {
    fn new(mut v: Vec<u64>) -> Dist {
        v.sort_unstable();
        Dist(v)
    }

    fn pct(&self, q: f64) -> u64 {
        if self.0.is_empty() {
            return 0;
        }
        let rank = ((q / 100.0) * self.0.len() as f64).ceil() as usize;
        self.0[rank.clamp(1, self.0.len()) - 1]
    }

    fn max(&self) -> u64 {
        self.0.last().copied().unwrap_or(0)
    }

    fn min(&self) -> u64 {
        self.0.first().copied().unwrap_or(0)
    }

    /// `p50 a ms, p99 b ms, max c ms` for microsecond samples.
    fn ms(&self) -> String {
        format!(
            "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            self.pct(50.0) as f64 / 1e3,
            self.pct(99.0) as f64 / 1e3,
            self.max() as f64 / 1e3
        )
    }
}

fn micros(d: Duration) -> u64 {
    d.as_micros() as u64
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

/// The daemon (and this process) at one instant.
struct Snap {
    at: Instant,
    daemon_ticks: u64,
    bench_ticks: u64,
    head: u64,
    heartbeats: u64,
    unknown: u64,
    rss_kb: u64,
}

struct Probe {
    pid: String,
    url: String,
    agent: ureq::Agent,
}

impl Probe {
    fn snap(&self) -> Snap {
        let m = metrics(&self.agent, &self.url);
        Snap {
            at: Instant::now(),
            daemon_ticks: cpu_ticks(&self.pid),
            bench_ticks: cpu_ticks("self"),
            head: metric(&m, "meshplane_log_head_position"),
            heartbeats: metric(&m, "meshplane_heartbeats_total"),
            unknown: metric(&m, "meshplane_heartbeats_unknown_total"),
            rss_kb: status_kb(&self.pid, "VmRSS"),
        }
    }

    fn hwm_kb(&self) -> u64 {
        status_kb(&self.pid, "VmHWM")
    }
}

/// Between two snapshots.
struct Span {
    secs: f64,
    daemon_cpu: f64,
    bench_cpu: f64,
    events: u64,
    heartbeats: u64,
    unknown: u64,
}

fn span(a: &Snap, b: &Snap, tck: f64) -> Span {
    let secs = (b.at - a.at).as_secs_f64();
    Span {
        secs,
        daemon_cpu: (b.daemon_ticks - a.daemon_ticks) as f64 / tck / secs,
        bench_cpu: (b.bench_ticks - a.bench_ticks) as f64 / tck / secs,
        events: b.head - a.head,
        heartbeats: b.heartbeats - a.heartbeats,
        unknown: b.unknown - a.unknown,
    }
}

// ---------------------------------------------------------------------------------------------
// Phases

fn apply_catalog(url: &str) -> Duration {
    let mut yaml = format!(
        "apiVersion: mesh.megaease.com/v2alpha1\nkind: MeshController\nmetadata:\n  name: easemesh-controller\n\
         heartbeatInterval: 5s\nregistryType: eureka\n---\n\
         apiVersion: mesh.megaease.com/v2alpha1\nkind: Tenant\nmetadata:\n  name: {TENANT}\n"
    );
    for s in 0..SERVICES {
        yaml.push_str(&format!(
            "---\napiVersion: mesh.megaease.com/v2alpha1\nkind: Service\nmetadata:\n  name: svc-{s}\nspec:\n  registerTenant: {TENANT}\n"
        ));
    }
    let started = Instant::now();
    let what = "POST /api/v1/apply";
    let result = done(
        what,
        agent()
            .post(&format!("{url}/api/v1/apply"))
            .set("Content-Type", "application/yaml")
            .send_string(&yaml),
    );
    assert!(
        (200..300).contains(&result.0),
        "{what}: HTTP {}: {}",
        result.0,
        String::from_utf8_lossy(&result.1)
    );
    started.elapsed()
}

fn registration_body(i: usize) -> String {
    format!(
        r#"{{"serviceName":"svc-{}","instanceID":"ins-{i}","ip":"10.{}.{}.{}","port":13001,"labels":{{"version":"v{}"}}}}"#,
        service(i),
        (i >> 16) & 255,
        (i >> 8) & 255,
        i & 255,
        i % 2 + 1
    )
}

/// Register instances 0..n from 32 threads; latencies in µs. Meanwhile a keep-alive thread
/// heartbeats (in batches) every instance handed out so far, every 3 s.
fn register_all(url: &str, n: usize) -> (Duration, Dist, u64) {
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let (lat, keepalive_beats) = std::thread::scope(|s| {
        let keepalive = s.spawn(|| {
            let agent = agent();
            let mut sent = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let cycle = Instant::now();
                let upto = next.load(Ordering::Relaxed).min(n);
                for start in (0..upto).step_by(BATCH) {
                    let body = beats_body(start..(start + BATCH).min(upto));
                    send_beats(&agent, url, &body);
                    sent += (start + BATCH).min(upto) as u64 - start as u64;
                }
                while cycle.elapsed() < Duration::from_secs(3) && !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            sent
        });
        let workers: Vec<_> = (0..REGISTER_THREADS)
            .map(|_| {
                s.spawn(|| {
                    let agent = agent();
                    let mut lat = Vec::new();
                    let what = "POST /api/v1/registry/instances";
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            return lat;
                        }
                        let body = registration_body(i);
                        let t = Instant::now();
                        let result = done(
                            what,
                            agent
                                .post(&format!("{url}/api/v1/registry/instances"))
                                .set("Content-Type", "application/json")
                                .send_string(&body),
                        );
                        lat.push(micros(t.elapsed()));
                        expect_status(what, result, 201);
                    }
                })
            })
            .collect();
        let lat: Vec<u64> = workers
            .into_iter()
            .flat_map(|w| w.join().expect("registration thread"))
            .collect();
        stop.store(true, Ordering::Relaxed);
        (lat, keepalive.join().expect("keep-alive thread"))
    });
    (started.elapsed(), Dist::new(lat), keepalive_beats)
}

/// One heartbeat batch: its request body and the instances in it.
struct Batch {
    body: Vec<u8>,
    members: Vec<usize>,
}

/// Batches of 500 in service order, so a service's instances share one batch (at 100 per
/// service, five services per batch) and so one last-heartbeat time.
fn make_batches(n: usize) -> Vec<Batch> {
    let order: Vec<usize> = (0..SERVICES.min(n))
        .flat_map(|s| (s..n).step_by(SERVICES))
        .collect();
    order
        .chunks(BATCH)
        .map(|members| Batch {
            body: beats_body(members.iter().copied()),
            members: members.to_vec(),
        })
        .collect()
}

/// Every batch once, as fast as the threads go.
fn heartbeat_round(url: &str, batches: &[Batch]) -> usize {
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..BATCH_THREADS)
            .map(|t| {
                s.spawn(move || {
                    let agent = agent();
                    batches
                        .iter()
                        .skip(t)
                        .step_by(BATCH_THREADS)
                        .map(|b| send_beats(&agent, url, &b.body))
                        .sum::<usize>()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("round")).sum()
    })
}

/// One batched request of the steady state.
struct Sent {
    period: u32,
    batch: usize,
    sent: Instant,
    latency: Duration,
    /// How late after its scheduled instant it was sent.
    late: Duration,
    accepted: usize,
}

/// Batch `j` of period `p` is due at `origin + p × 5 s + j × 5 s / batches`, sent by thread
/// `j mod 4` (immediately when the thread is behind).
fn run_batched(url: &str, batches: &[Batch], origin: Instant, periods: u32) -> Vec<Sent> {
    let slot = INTERVAL / batches.len() as u32;
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..BATCH_THREADS)
            .map(|t| {
                s.spawn(move || {
                    let agent = agent();
                    let mut out = Vec::new();
                    for period in 0..periods {
                        for j in (t..batches.len()).step_by(BATCH_THREADS) {
                            let due = origin + INTERVAL * period + slot * j as u32;
                            sleep_until(due);
                            let sent = Instant::now();
                            let accepted = send_beats(&agent, url, &batches[j].body);
                            out.push(Sent {
                                period,
                                batch: j,
                                sent,
                                latency: sent.elapsed(),
                                late: sent.saturating_duration_since(due),
                                accepted,
                            });
                        }
                    }
                    out
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("heartbeat thread"))
            .collect()
    })
}

struct Unbatched {
    sent: usize,
    scheduled: usize,
    latency: Dist,
    elapsed: Duration,
}

/// One `PUT .../heartbeat` per heartbeat from 32 threads, each cycling through its share of
/// the instances at the batched rate (N per 5 s), sending at once when behind, until `window`
/// has passed.
fn run_unbatched(url: &str, n: usize, origin: Instant, window: Duration) -> Unbatched {
    let end = origin + window;
    let results: Vec<(usize, usize, Vec<u64>)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..UNBATCHED_THREADS)
            .map(|t| {
                s.spawn(move || {
                    let agent = agent();
                    let mine: Vec<usize> = (t..n).step_by(UNBATCHED_THREADS).collect();
                    let slot = INTERVAL / mine.len().max(1) as u32;
                    let scheduled = (window.as_nanos() / slot.as_nanos().max(1)) as usize;
                    let mut lat = Vec::new();
                    let what = "PUT .../heartbeat";
                    for k in 0..scheduled {
                        let due = origin + slot * k as u32;
                        sleep_until(due);
                        if Instant::now() >= end {
                            break;
                        }
                        let i = mine[k % mine.len()];
                        let t = Instant::now();
                        let result = done(
                            what,
                            agent
                                .put(&format!(
                                    "{url}/api/v1/registry/instances/svc-{}/ins-{i}/heartbeat",
                                    service(i)
                                ))
                                .call(),
                        );
                        lat.push(micros(t.elapsed()));
                        expect_status(what, result, 204);
                    }
                    (lat.len(), scheduled, lat)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("unbatched thread"))
            .collect()
    });
    let elapsed = origin.elapsed();
    let sent = results.iter().map(|r| r.0).sum();
    let scheduled = results.iter().map(|r| r.1).sum();
    let latency = Dist::new(results.into_iter().flat_map(|r| r.2).collect());
    Unbatched {
        sent,
        scheduled,
        latency,
        elapsed,
    }
}

/// What the detection polls saw of one instance.
#[derive(Clone, Copy)]
struct Seen {
    /// The response of the first poll that listed it as OUT_OF_SERVICE.
    out_at: Instant,
    /// The request of the last poll that did not list it yet (none: out at the first poll).
    last_up_at: Option<Instant>,
}

struct Detection {
    seen: Vec<Option<Seen>>,
    /// Between consecutive polls of one service while it was watched, µs.
    gaps: Dist,
    polls: usize,
    poll_latency: Dist,
}

/// Poll each service with `?service=S&status=OUT_OF_SERVICE` from `POLL_LEAD` before its
/// deadline until all of its instances are listed (2 threads, services split by number). Polls
/// before the transition answer an empty list, so they are cheap.
fn detect(url: &str, n: usize, last_sent: &[Instant], give_up: Instant) -> Detection {
    struct Watch {
        service: usize,
        opens: Instant,
        pending: Vec<usize>,
        last_poll: Option<Instant>,
    }
    let results: Vec<_> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..POLL_THREADS)
            .map(|t| {
                s.spawn(move || {
                    let agent = agent();
                    let mut watches: Vec<Watch> = (t..SERVICES.min(n))
                        .step_by(POLL_THREADS)
                        .map(|service| {
                            let pending: Vec<usize> = (service..n).step_by(SERVICES).collect();
                            let first = pending.iter().map(|&i| last_sent[i]).min().unwrap();
                            Watch {
                                service,
                                opens: first + 2 * INTERVAL - POLL_LEAD,
                                pending,
                                last_poll: None,
                            }
                        })
                        .collect();
                    watches.sort_by_key(|w| w.opens);
                    let mut seen: Vec<(usize, Seen)> = Vec::new();
                    let (mut gaps, mut polls, mut poll_latency) = (Vec::new(), 0, Vec::new());
                    let what = "GET /api/v1/registry/instances?service=&status=OUT_OF_SERVICE";
                    while !watches.is_empty() && Instant::now() < give_up {
                        let now = Instant::now();
                        let mut polled = false;
                        for w in watches.iter_mut().take_while(|w| w.opens <= now) {
                            let sent = Instant::now();
                            let body = expect_status(
                                what,
                                done(
                                    what,
                                    agent
                                        .get(&format!(
                                            "{url}/api/v1/registry/instances?service=svc-{}&status=OUT_OF_SERVICE",
                                            w.service
                                        ))
                                        .call(),
                                ),
                                200,
                            );
                            let received = Instant::now();
                            poll_latency.push(micros(received - sent));
                            polls += 1;
                            polled = true;
                            let out: BTreeSet<usize> = listed(&body).into_iter().collect();
                            for &i in w.pending.iter().filter(|i| out.contains(i)) {
                                seen.push((
                                    i,
                                    Seen {
                                        out_at: received,
                                        last_up_at: w.last_poll,
                                    },
                                ));
                            }
                            w.pending.retain(|i| !out.contains(i));
                            if let Some(previous) = w.last_poll {
                                gaps.push(micros(sent - previous));
                            }
                            w.last_poll = Some(sent);
                        }
                        watches.retain(|w| !w.pending.is_empty());
                        if !polled {
                            std::thread::sleep(Duration::from_millis(2));
                        }
                    }
                    (seen, gaps, polls, poll_latency)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("poll thread"))
            .collect()
    });
    let mut detection = Detection {
        seen: vec![None; n],
        gaps: Dist(Vec::new()),
        polls: 0,
        poll_latency: Dist(Vec::new()),
    };
    let (mut gaps, mut poll_latency) = (Vec::new(), Vec::new());
    for (seen, g, polls, pl) in results {
        for (i, s) in seen {
            detection.seen[i] = Some(s);
        }
        gaps.extend(g);
        poll_latency.extend(pl);
        detection.polls += polls;
    }
    detection.gaps = Dist::new(gaps);
    detection.poll_latency = Dist::new(poll_latency);
    detection
}

fn commas(v: u64) -> String {
    let digits: Vec<char> = v.to_string().chars().rev().collect();
    let groups: Vec<String> = digits
        .chunks(3)
        .map(|g| g.iter().rev().collect())
        .rev()
        .collect();
    groups.join(",")
}

fn main() {
    let n = env_or("MESHPLANE_BENCH_INSTANCES", 100_000) as usize;
    let window_periods = env_or("MESHPLANE_BENCH_SECONDS", 30).div_ceil(INTERVAL.as_secs()) as u32;
    assert!(n > 0 && window_periods > 0);
    let target_rate = n as f64 / INTERVAL.as_secs_f64();
    let tck = clock_ticks_per_second();
    println!(
        "registry_load: {} instances, {} services, heartbeat interval 5 s (target {} heartbeats/s), steady window {} s",
        commas(n as u64),
        SERVICES,
        commas(target_rate as u64),
        window_periods as u64 * INTERVAL.as_secs()
    );
    println!("binary: {}", bin());

    let mut daemon = Daemon::start();
    let url = daemon.url.clone();
    let probe = Probe {
        pid: daemon.pid().to_string(),
        url: url.clone(),
        agent: agent(),
    };
    println!("daemon: pid {} on {url}, log level warn", probe.pid);
    let rss_start = status_kb(&probe.pid, "VmRSS");

    // 1. Catalog.
    let took = apply_catalog(&url);
    let head_catalog = probe.snap().head;
    println!(
        "[1 catalog] MeshController + tenant + {SERVICES} services applied in {:.3} s, log head {head_catalog}",
        took.as_secs_f64()
    );

    // 2. Registration.
    let before = probe.snap();
    let (reg_took, reg_latency, keepalive_beats) = register_all(&url, n);
    let after_reg = probe.snap();
    let reg = span(&before, &after_reg, tck);
    let reg_rate = n as f64 / reg_took.as_secs_f64();
    println!(
        "[2 register] {} instances in {:.2} s = {} registrations/s ({REGISTER_THREADS} threads); latency {}",
        commas(n as u64),
        reg_took.as_secs_f64(),
        commas(reg_rate as u64),
        reg_latency.ms()
    );
    println!(
        "[2 register] log head {} (+{} events); daemon CPU {:.2} cores, bench CPU {:.2} cores; daemon RSS {:.1} MiB; keep-alive heartbeats sent meanwhile {}",
        after_reg.head,
        reg.events,
        reg.daemon_cpu,
        reg.bench_cpu,
        mib(after_reg.rss_kb),
        commas(keepalive_beats)
    );

    // 3a. Idle baseline (right after one full heartbeat round, so nobody lapses).
    let batches = make_batches(n);
    let accepted = heartbeat_round(&url, &batches);
    assert_eq!(accepted, n, "heartbeat round before idle");
    let idle_a = probe.snap();
    std::thread::sleep(IDLE_WINDOW);
    let idle_b = probe.snap();
    let idle = span(&idle_a, &idle_b, tck);
    println!(
        "[3a idle] {:.1} s with {} instances, no requests: daemon CPU {:.3} cores, RSS {:.1} MiB, {} events",
        idle.secs,
        commas(n as u64),
        idle.daemon_cpu,
        mib(idle_b.rss_kb),
        idle.events
    );

    // 3b. Unbatched baseline.
    let ub_a = probe.snap();
    let unbatched = run_unbatched(&url, n, ub_a.at, UNBATCHED_WINDOW);
    let ub_b = probe.snap();
    let ub = span(&ub_a, &ub_b, tck);
    let ub_rate = unbatched.sent as f64 / unbatched.elapsed.as_secs_f64();
    println!(
        "[3b unbatched] {UNBATCHED_THREADS} threads, one PUT per heartbeat, {:.1} s: {} heartbeats/s client side ({} of {} scheduled, target {}), {} heartbeats/s daemon side; latency {}",
        unbatched.elapsed.as_secs_f64(),
        commas(ub_rate as u64),
        commas(unbatched.sent as u64),
        commas(unbatched.scheduled as u64),
        commas(target_rate as u64),
        commas((ub.heartbeats as f64 / ub.secs) as u64),
        unbatched.latency.ms()
    );
    println!(
        "[3b unbatched] daemon CPU {:.2} cores, bench CPU {:.2} cores, daemon RSS {:.1} MiB, log head {} -> {} (+{} events)",
        ub.daemon_cpu,
        ub.bench_cpu,
        mib(ub_b.rss_kb),
        ub_a.head,
        ub_b.head,
        ub.events
    );

    // 3c. Batched steady state: one warm-up period, then the window. The batched schedule
    // orders instances differently from the unbatched one, so an instance heartbeated early in
    // the last unbatched period could wait almost a period more for its first batched
    // heartbeat and go (rightly) out of service: one quick round of every instance first.
    heartbeat_round(&url, &batches);
    let origin = Instant::now() + Duration::from_millis(100);
    let total_periods = 1 + window_periods;
    let stop_at = origin + INTERVAL * total_periods;
    let (sent, win_a, win_b) = std::thread::scope(|s| {
        let heartbeats = s.spawn(|| run_batched(&url, &batches, origin, total_periods));
        sleep_until(origin + INTERVAL);
        let a = probe.snap();
        let sent = heartbeats.join().expect("heartbeat threads");
        // The window ends with the period (its last batch is due one slot before).
        sleep_until(stop_at);
        let b = probe.snap();
        (sent, a, b)
    });
    let win = span(&win_a, &win_b, tck);
    let hwm_window = probe.hwm_kb();
    let in_window: Vec<&Sent> = sent.iter().filter(|s| s.period >= 1).collect();
    let client_beats: usize = in_window.iter().map(|s| s.accepted).sum();
    let client_rate = client_beats as f64 / win.secs;
    let daemon_rate = win.heartbeats as f64 / win.secs;
    let batch_latency = Dist::new(in_window.iter().map(|s| micros(s.latency)).collect());
    let lateness = Dist::new(in_window.iter().map(|s| micros(s.late)).collect());
    let warm_up_events = win_a.head - ub_b.head;
    println!(
        "[3c batched] {} requests of {BATCH} from {BATCH_THREADS} threads over {:.2} s (after a 5 s warm-up, +{warm_up_events} events in it): {} heartbeats/s client side, {} heartbeats/s daemon side (meshplane_heartbeats_total), target {}; unknown {}",
        commas(in_window.len() as u64),
        win.secs,
        commas(client_rate as u64),
        commas(daemon_rate as u64),
        commas(target_rate as u64),
        win.unknown
    );
    println!(
        "[3c batched] request latency {}; sent late vs schedule: p99 {:.2} ms, max {:.2} ms",
        batch_latency.ms(),
        lateness.pct(99.0) as f64 / 1e3,
        lateness.max() as f64 / 1e3
    );
    println!(
        "[3c batched] daemon CPU {:.3} cores ({:.1}% of one core), bench CPU {:.3} cores; daemon RSS {:.1} MiB at start, {:.1} MiB at end, peak (VmHWM) {:.1} MiB",
        win.daemon_cpu,
        win.daemon_cpu * 100.0,
        win.bench_cpu,
        mib(win_a.rss_kb),
        mib(win_b.rss_kb),
        mib(hwm_window)
    );
    println!(
        "[3c batched] log head {} -> {} (+{} events)",
        win_a.head, win_b.head, win.events
    );

    // 4. Out-of-service detection.
    let mut last_sent = vec![stop_at; n];
    let mut last_acked = vec![stop_at; n];
    for s in sent.iter().filter(|s| s.period == total_periods - 1) {
        for &i in &batches[s.batch].members {
            last_sent[i] = s.sent;
            last_acked[i] = s.sent + s.latency;
        }
    }
    let last_beat = last_sent.iter().max().copied().unwrap_or(stop_at);
    let first_beat = last_sent.iter().min().copied().unwrap_or(stop_at);
    println!(
        "[4 detection] heartbeats stopped with the window: each batch's last heartbeat is its request in the final period, sent over {:.3} s (first..last batch), the last one {:.3} s before the window's end",
        (last_beat - first_beat).as_secs_f64(),
        stop_at.saturating_duration_since(last_beat).as_secs_f64()
    );
    let give_up = last_beat + 2 * INTERVAL + Duration::from_secs(60);
    let detection = detect(&url, n, &last_sent, give_up);
    let detect_b = probe.snap();
    let missing = detection.seen.iter().filter(|s| s.is_none()).count();
    let upper = Dist::new(
        detection
            .seen
            .iter()
            .zip(&last_sent)
            .filter_map(|(s, &l)| Some(micros(s.as_ref()?.out_at - l)))
            .collect(),
    );
    let lower = Dist::new(
        detection
            .seen
            .iter()
            .zip(&last_acked)
            .filter_map(|(s, &l)| {
                Some(micros(s.as_ref()?.last_up_at?.saturating_duration_since(l)))
            })
            .collect(),
    );
    let at_first_poll = detection
        .seen
        .iter()
        .flatten()
        .filter(|s| s.last_up_at.is_none())
        .count();
    let all_out_after = detection
        .seen
        .iter()
        .flatten()
        .map(|s| s.out_at)
        .max()
        .map(|t| t.saturating_duration_since(last_beat));
    println!(
        "[4 detection] {} of {} instances seen OUT_OF_SERVICE{}; the last one {:.3} s after the last heartbeat was sent",
        commas((n - missing) as u64),
        commas(n as u64),
        if missing > 0 {
            format!(" ({missing} never, gave up)")
        } else {
            String::new()
        },
        all_out_after.unwrap_or_default().as_secs_f64()
    );
    println!(
        "[4 detection] last heartbeat (request sent) -> first poll response showing OUT_OF_SERVICE: min {:.3} s, p50 {:.3} s, p99 {:.3} s, max {:.3} s (target max <= {} s)",
        upper.min() as f64 / 1e6,
        upper.pct(50.0) as f64 / 1e6,
        upper.pct(99.0) as f64 / 1e6,
        upper.max() as f64 / 1e6,
        DETECTION_TARGET.as_secs()
    );
    println!(
        "[4 detection] lower bound (last heartbeat answered -> last poll request not yet showing it): p99 {:.3} s, max {:.3} s; {} instances were already out at their service's first poll ({} ms before the deadline)",
        lower.pct(99.0) as f64 / 1e6,
        lower.max() as f64 / 1e6,
        at_first_poll,
        POLL_LEAD.as_millis()
    );
    println!(
        "[4 detection] polling: {} polls ({POLL_THREADS} threads, ?service=svc-N&status=OUT_OF_SERVICE), poll latency {}; gap between polls of one service p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (the measurement's granularity)",
        commas(detection.polls as u64),
        detection.poll_latency.ms(),
        detection.gaps.pct(50.0) as f64 / 1e3,
        detection.gaps.pct(99.0) as f64 / 1e3,
        detection.gaps.max() as f64 / 1e3
    );
    let det = span(&win_b, &detect_b, tck);
    let rss_detected = detect_b.rss_kb;
    println!(
        "[4 detection] log head {} -> {} (+{} events for {} instances); daemon CPU over the phase {:.2} cores",
        win_b.head,
        detect_b.head,
        det.events,
        commas(n as u64),
        det.daemon_cpu
    );
    let full = |status: &str| {
        let t = Instant::now();
        let what = format!("GET /api/v1/registry/instances?status={status}");
        let body = expect_status(
            &what,
            done(
                &what,
                agent()
                    .get(&format!("{url}/api/v1/registry/instances?status={status}"))
                    .call(),
            ),
            200,
        );
        let took = t.elapsed();
        (listed(&body).len(), body.len(), took)
    };
    let (up_count, _, up_took) = full("UP");
    let (out_count, out_bytes, out_took) = full("OUT_OF_SERVICE");
    let rss_listed = status_kb(&probe.pid, "VmRSS");
    // Is that memory held or reused? Wait, then list once more.
    std::thread::sleep(Duration::from_secs(2));
    let rss_settled = status_kb(&probe.pid, "VmRSS");
    let (_, _, again_took) = full("OUT_OF_SERVICE");
    let rss_end = status_kb(&probe.pid, "VmRSS");
    let hwm_end = probe.hwm_kb();
    println!(
        "[4 detection] full listings: status=UP {} items in {:.3} s; status=OUT_OF_SERVICE {} items, {:.1} MB in {:.3} s",
        up_count,
        up_took.as_secs_f64(),
        commas(out_count as u64),
        out_bytes as f64 / 1e6,
        out_took.as_secs_f64()
    );
    println!(
        "[4 detection] daemon RSS {:.1} MiB once all were out of service, {:.1} MiB after the full listings, {:.1} MiB 2 s later, {:.1} MiB after a second OUT_OF_SERVICE listing ({:.3} s) (peak VmHWM {:.1} MiB; {:.1} MiB at start-up)",
        mib(rss_detected),
        mib(rss_listed),
        mib(rss_settled),
        mib(rss_end),
        again_took.as_secs_f64(),
        mib(hwm_end),
        mib(rss_start)
    );
    assert!(daemon.alive(), "the daemon died during the run");

    // 5: storms. Every instance heartbeats at once (all recover together), then all go silent
    // at the same instant (a partition): how long until every transition is an event?
    let head = |agent: &ureq::Agent| metric(&metrics(agent, &url), "meshplane_log_head_position");
    let storm_agent = agent();
    let before = head(&storm_agent);
    let t = Instant::now();
    heartbeat_round(&url, &batches);
    let sent = t.elapsed();
    while head(&storm_agent) < before + n as u64 {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "recovery storm did not finish"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let recovered = t.elapsed();
    println!(
        "[5 recovery storm] {} heartbeats in {:.3} s, all {} instances back UP (events appended) {:.3} s after the first",
        commas(n as u64),
        sent.as_secs_f64(),
        commas(n as u64),
        recovered.as_secs_f64()
    );
    let before = head(&storm_agent);
    let t = Instant::now();
    heartbeat_round(&url, &batches);
    let silent_from = Instant::now();
    let spread = t.elapsed();
    let cpu_before = cpu_ticks(&probe.pid);
    while head(&storm_agent) < before + n as u64 {
        assert!(
            silent_from.elapsed() < Duration::from_secs(60),
            "partition storm did not finish"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let all_out = silent_from.elapsed();
    let cpu = (cpu_ticks(&probe.pid) - cpu_before) as f64
        / clock_ticks_per_second()
        / all_out.as_secs_f64();
    println!(
        "[5 partition storm] all {} instances heartbeat within {:.3} s, then none: the last out_of_service event appended {:.3} s after the last heartbeat (target {} s: {}); daemon CPU {:.2} cores",
        commas(n as u64),
        spread.as_secs_f64(),
        all_out.as_secs_f64(),
        2 * INTERVAL.as_secs() + 1,
        if all_out.as_secs_f64() <= (2 * INTERVAL.as_secs() + 1) as f64 { "met" } else { "MISSED" },
        cpu
    );
    println!(
        "[5 storms] daemon RSS {:.1} MiB",
        mib(status_kb(&probe.pid, "VmRSS"))
    );

    // The daemon's own evidence, from its log.
    let export = daemon.stop_and_export();
    let text = fs::read_to_string(&export).expect("exported log");
    let (mut detect_lag, mut record_lag, mut total, mut total_recorded) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // Phase 4's transitions only (the storms of phase 5 come after them in the log).
    for line in text
        .lines()
        .filter(|l| l.contains("instance.out_of_service"))
        .take(n)
    {
        let v: Value = serde_json::from_str(line).expect("exported line");
        let silence = &v["data"]["silence"];
        let ms = |x: &Value| x.as_i64().expect("ms field");
        let (last, deadline, detected, recorded) = (
            ms(&silence["last_heartbeat_ms"]),
            ms(&silence["deadline_ms"]),
            ms(&silence["detected_at_ms"]),
            ms(&v["recorded_at_ms"]),
        );
        detect_lag.push((detected - deadline) as u64);
        record_lag.push((recorded - detected) as u64);
        total.push((detected - last) as u64);
        total_recorded.push((recorded - last) as u64);
    }
    let events_out = total.len();
    let (detect_lag, record_lag, total, total_recorded) = (
        Dist::new(detect_lag),
        Dist::new(record_lag),
        Dist::new(total),
        Dist::new(total_recorded),
    );
    let msd = |d: &Dist| {
        format!(
            "p50 {} ms, p99 {} ms, max {} ms",
            d.pct(50.0),
            d.pct(99.0),
            d.max()
        )
    };
    println!(
        "[4 daemon side] {} instance.out_of_service events in the log; last heartbeat -> detected (the monitor's decision): {}; -> recorded_at_ms (its batch decided; durable one commit later): {}",
        commas(events_out as u64),
        msd(&total),
        msd(&total_recorded)
    );
    println!(
        "[4 daemon side] deadline -> detected: {} (monitor tick {} ms); detected -> recorded_at_ms: {}",
        msd(&detect_lag),
        <actors::instance::Instances as actors::Concept>::TICK_MS,
        msd(&record_lag)
    );

    let verdict = |met: bool| if met { "met" } else { "MISSED" };
    let detection_met = missing == 0 && Duration::from_micros(upper.max()) <= DETECTION_TARGET;
    println!();
    println!("== summary ({} instances) ==", commas(n as u64));
    println!(
        "registration            {} /s ({:.2} s), log head {} after",
        commas(reg_rate as u64),
        reg_took.as_secs_f64(),
        after_reg.head
    );
    println!(
        "idle                    daemon CPU {:.3} cores, RSS {:.1} MiB",
        idle.daemon_cpu,
        mib(idle_b.rss_kb)
    );
    println!(
        "unbatched PUT           {} /s of {} target ({}), daemon CPU {:.2} cores, bench CPU {:.2}, latency {}",
        commas(ub_rate as u64),
        commas(target_rate as u64),
        verdict(ub_rate >= 0.98 * target_rate),
        ub.daemon_cpu,
        ub.bench_cpu,
        unbatched.latency.ms()
    );
    println!(
        "batched x{BATCH}             {} /s client, {} /s daemon of {} target ({}), daemon CPU {:.3} cores, latency {}",
        commas(client_rate as u64),
        commas(daemon_rate as u64),
        commas(target_rate as u64),
        verdict(daemon_rate >= 0.98 * target_rate),
        win.daemon_cpu,
        batch_latency.ms()
    );
    println!(
        "steady-state events     +{} over {:.1} s ({})",
        win.events,
        win.secs,
        verdict(win.events == 0)
    );
    println!(
        "daemon RSS              {:.1} MiB steady, peak {:.1} MiB",
        mib(win_b.rss_kb),
        mib(hwm_window)
    );
    println!(
        "out-of-service          max {:.3} s, p99 {:.3} s after the last heartbeat, target <= {} s ({}); poll gap p99 {:.1} ms",
        upper.max() as f64 / 1e6,
        upper.pct(99.0) as f64 / 1e6,
        DETECTION_TARGET.as_secs(),
        verdict(detection_met),
        detection.gaps.pct(99.0) as f64 / 1e3
    );
    println!(
        "  daemon side           last heartbeat -> event recorded_at: max {:.3} s, p99 {:.3} s ({})",
        total_recorded.max() as f64 / 1e3,
        total_recorded.pct(99.0) as f64 / 1e3,
        verdict(events_out == n && Duration::from_millis(total_recorded.max()) <= DETECTION_TARGET)
    );
    println!(
        "transition events       +{} for {} instances; RSS {:.1} MiB after detection, {:.1} MiB after full listings",
        det.events,
        commas(n as u64),
        mib(rss_detected),
        mib(rss_end)
    );
}
