//! End-to-end: slow request bodies cannot starve the daemon (issue 14, item 8). Under a
//! 256-file limit, 300 connections that send their headers and then dribble the body used to
//! hold every descriptor forever: `/healthz` answered 0 of 12. Now each body must arrive within
//! `--body-timeout` (408 after) and the daemon accepts no more connections than its file limit
//! leaves room for, so `/healthz` answers again within the body timeout plus a margin.

#![allow(
    clippy::disallowed_methods,
    reason = "end-to-end tests wait on the real clock"
)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::{Daemon, Sandbox};

const SLOW_CLIENTS: usize = 300;
const BODY_TIMEOUT_SECS: u64 = 2;
/// Beyond the body timeout: the second wave of slow clients (those that waited in the
/// backlog) is let in at the same moment as the probe.
const MARGIN: Duration = Duration::from_secs(4);

/// `GET /healthz` with a short timeout: Some(status) if it was answered.
fn healthz(port: u16) -> Option<u16> {
    let mut stream =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500))
            .ok()?;
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .ok()?;
    stream
        .write_all(
            format!("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .ok()?;
    let mut buf = [0u8; 256];
    let n = stream.read(&mut buf).ok()?;
    String::from_utf8_lossy(&buf[..n])
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Open a connection that announces a 1 KB JSON body and sends one byte of it.
fn slow_client(port: u16) -> Option<TcpStream> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_nodelay(true).ok()?;
    stream
        .write_all(
            format!(
                "POST /api/v1/apply HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
                 Content-Type: application/json\r\nContent-Length: 1024\r\n\r\n["
            )
            .as_bytes(),
        )
        .ok()?;
    Some(stream)
}

#[test]
fn slow_bodies_time_out_and_healthz_recovers() {
    let sandbox = Sandbox::new();
    let daemon = Daemon::start_wrapped(
        &sandbox,
        &sandbox.path("data"),
        &["--body-timeout", &BODY_TIMEOUT_SECS.to_string()],
        &["prlimit", "--nofile=256:256"],
    );
    let port = daemon.port;
    assert_eq!(healthz(port), Some(200));
    let log = daemon.log_text();
    assert!(
        log.contains("max_connections=192"),
        "the connection bound is derived from the 256-file limit: {log}"
    );

    let mut clients: Vec<TcpStream> = (0..SLOW_CLIENTS)
        .filter_map(|_| slow_client(port))
        .collect();
    assert_eq!(clients.len(), SLOW_CLIENTS, "every slow client connected");
    let started = Instant::now();
    // Dribble a space every 200 ms on every connection still open, in the background.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let dribbler = {
        let stop = stop.clone();
        let mut streams: Vec<TcpStream> = clients.iter().map(|c| c.try_clone().unwrap()).collect();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                streams.retain_mut(|s| s.write_all(b" ").is_ok());
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };

    let deadline = Duration::from_secs(BODY_TIMEOUT_SECS) + MARGIN;
    let mut answered = None;
    while started.elapsed() < deadline * 2 {
        if healthz(port) == Some(200) {
            answered = Some(started.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let answered = answered.unwrap_or_else(|| {
        panic!(
            "/healthz did not answer within {:?} of {SLOW_CLIENTS} slow clients:\n{}",
            deadline * 2,
            daemon.log_text()
        )
    });
    eprintln!("/healthz answered {answered:?} after {SLOW_CLIENTS} slow clients connected");
    assert!(
        answered <= deadline,
        "/healthz answered only after {answered:?} (body timeout {BODY_TIMEOUT_SECS} s + {MARGIN:?})"
    );

    // The slow clients were told why: 408, and their connections closed.
    let mut timed_out = 0;
    for client in clients.iter_mut().take(20) {
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut answer = Vec::new();
        let _ = client.read_to_end(&mut answer);
        if String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 408") {
            timed_out += 1;
        }
    }
    assert_eq!(timed_out, 20, "the first slow clients got 408");
    dribbler.join().unwrap();
    assert_eq!(healthz(port), Some(200));
    // The bound kept the daemon under its file limit: it never ran out of descriptors.
    let log = daemon.log_text();
    assert!(!log.contains("Too many open files"), "{log}");
}
