//! End-to-end: the daemon's API against a hostile web page and hostile values (issue 14, items 6
//! and 9). A cross-site POST (the `text/plain` "simple request" any page can send without a
//! preflight) appends nothing; a DNS-rebinding read (a foreign `Host`) is refused; the CLI and
//! curl-style clients keep working; `bearer` is accepted in any case; error messages stay
//! short whatever the value; position 0 is readable and rolling back to it needs `--wipe`.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use support::{Daemon, Sandbox};

const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n  namespace: shop\ndata:\n  value: \"1\"\n";
const CM_JSON: &str = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"evil","namespace":"shop"},"data":{"pwned":"yes"}}"#;

/// One HTTP/1.1 request with exactly these headers (the test chooses `Host`); (status, body).
fn send(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    // The server may answer (and close) before it reads the body: ignore a failed write.
    let _ = stream.write_all(body.as_bytes());
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
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

/// The log's head position, from `/metrics`.
fn head(daemon: &Daemon) -> u64 {
    let host = format!("127.0.0.1:{}", daemon.port);
    let (status, text) = send(daemon.port, "GET", "/metrics", &[("Host", &host)], "");
    assert_eq!(status, 200, "{text}");
    text.lines()
        .find_map(|l| l.strip_prefix("meshplane_log_head_position "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no head position in {text}"))
}

fn apply(sandbox: &Sandbox, url: &str, doc: &str) {
    let file = sandbox.write("doc.yaml", doc);
    sandbox
        .run(&["apply", "-f", file.to_str().unwrap(), "--server", url])
        .ok();
}

#[test]
fn a_cross_site_post_appends_nothing_and_the_cli_still_works() {
    let sandbox = Sandbox::new();
    let data = sandbox.path("data");
    let daemon = Daemon::start(&sandbox, &data, &sandbox.path("manifests"));
    let url = daemon.url.clone();
    apply(&sandbox, &url, CM);
    let before = head(&daemon);
    assert_eq!(before, 1);
    let host = format!("127.0.0.1:{}", daemon.port);

    // What a page on http://evil.example can send without a preflight: a form or text/plain.
    let rollback = r#"{"to":1,"reason":"pwned"}"#;
    for (path, body, headers, expected) in [
        (
            "/api/v1/apply",
            CM_JSON,
            vec![
                ("Origin", "http://evil.example"),
                ("Content-Type", "text/plain"),
            ],
            403,
        ),
        (
            "/api/v1/rollback",
            rollback,
            vec![
                ("Origin", "http://evil.example"),
                ("Content-Type", "text/plain"),
            ],
            403,
        ),
        // Without Origin (an older browser, a form post through a redirect): still refused.
        (
            "/api/v1/apply",
            CM_JSON,
            vec![("Content-Type", "text/plain")],
            415,
        ),
        (
            "/api/v1/apply",
            CM_JSON,
            vec![("Content-Type", "application/x-www-form-urlencoded")],
            415,
        ),
        ("/api/v1/apply", CM_JSON, vec![], 415),
        // A browser that marks the request cross-site, whatever the type.
        (
            "/api/v1/apply",
            CM_JSON,
            vec![
                ("Sec-Fetch-Site", "cross-site"),
                ("Content-Type", "application/json"),
            ],
            403,
        ),
        (
            "/api/v1/registry/instances",
            r#"{"serviceName":"order","instanceID":"x","ip":"10.0.0.1","port":80}"#,
            vec![
                ("Origin", "http://evil.example"),
                ("Content-Type", "text/plain"),
            ],
            403,
        ),
    ] {
        let mut all = vec![("Host", host.as_str())];
        all.extend(headers.iter().copied());
        let (status, answer) = send(daemon.port, "POST", path, &all, body);
        assert_eq!(status, expected, "{path} {headers:?}: {answer}");
        let named = if status == 403 {
            "Origin"
        } else {
            "Content-Type"
        };
        let named = if headers.iter().any(|(h, _)| *h == "Sec-Fetch-Site") {
            "Sec-Fetch-Site"
        } else {
            named
        };
        assert!(
            answer.contains(named),
            "{path}: the answer names {named}: {answer}"
        );
    }
    assert_eq!(head(&daemon), before, "a refused request appended an event");

    // The daemon's own origin, curl and the CLI work.
    let (status, answer) = send(
        daemon.port,
        "POST",
        "/api/v1/apply",
        &[
            ("Host", &host),
            ("Origin", &format!("http://{host}")),
            ("Content-Type", "application/json"),
        ],
        CM_JSON,
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(head(&daemon), before + 1);
    apply(&sandbox, &url, &CM.replace("name: web", "name: web2"));
    assert_eq!(head(&daemon), before + 2);
    let listed = sandbox.run(&["get", "cm", "-n", "shop", "--server", &url]);
    assert!(listed.ok().contains("web2"), "{}", listed.stdout);
}

#[test]
fn a_rebinding_read_is_refused() {
    let sandbox = Sandbox::new();
    let daemon = Daemon::start_with(
        &sandbox,
        &sandbox.path("data"),
        &["--allowed-host", "meshplane.example.com"],
        "127.0.0.1",
    );
    let port = daemon.port;
    for host in ["evil.example", &format!("evil.example:{port}"), "10.9.9.9"] {
        let (status, body) = send(port, "GET", "/api/v1/resources/cm", &[("Host", host)], "");
        assert_eq!(status, 403, "Host {host}: {body}");
        assert!(body.contains(&format!("Host: `{host}`")), "{body}");
        assert!(body.contains("--allowed-host"), "{body}");
        let (status, _) = send(port, "GET", "/healthz", &[("Host", host)], "");
        assert_eq!(status, 403, "every path is checked");
    }
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "localhost".to_string(),
        format!("[::1]:{port}"),
        "meshplane.example.com".to_string(),
    ] {
        let (status, body) = send(port, "GET", "/api/v1/resources/cm", &[("Host", &host)], "");
        assert_eq!(status, 200, "Host {host}: {body}");
    }
    // A page that is not the daemon's own origin cannot read either.
    let (status, body) = send(
        port,
        "GET",
        "/api/v1/resources/cm",
        &[("Host", "localhost"), ("Origin", "http://evil.example")],
        "",
    );
    assert_eq!(status, 403, "{body}");
}

#[test]
fn tokens_come_from_a_file_or_the_environment_and_bearer_is_case_insensitive() {
    let sandbox = Sandbox::new();
    let token = sandbox.write("token", "s3cret\n");
    std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let daemon = Daemon::start_with(
        &sandbox,
        &sandbox.path("data"),
        &["--token-file", token.to_str().unwrap()],
        "127.0.0.1",
    );
    let host = format!("127.0.0.1:{}", daemon.port);
    let url = daemon.url.clone();
    let cm = sandbox.write("cm.yaml", CM);
    let cm = cm.to_str().unwrap();

    let anonymous = sandbox.run(&["apply", "-f", cm, "--server", &url]);
    assert!(anonymous.fails().contains("401"), "{}", anonymous.stderr);
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let (status, body) = send(
            daemon.port,
            "DELETE",
            "/api/v1/resources/cm/none?namespace=shop",
            &[
                ("Host", &host),
                ("Authorization", &format!("{scheme} s3cret")),
            ],
            "",
        );
        assert_ne!(status, 401, "{scheme}: {body}");
    }
    // --token-file: no warning.
    let from_file = sandbox.run(&[
        "apply",
        "-f",
        cm,
        "--server",
        &url,
        "--token-file",
        token.to_str().unwrap(),
    ]);
    from_file.ok();
    assert!(
        !from_file.stderr.contains("process list"),
        "{}",
        from_file.stderr
    );
    // MESHPLANE_TOKEN: no warning.
    let mut command = sandbox.command();
    command
        .args(["get", "cm", "-n", "shop", "--server", &url])
        .env("MESHPLANE_TOKEN", "s3cret");
    let from_env = sandbox.run_with(&mut command, None);
    assert!(from_env.ok().contains("web"));
    assert!(!from_env.stderr.contains("--token"), "{}", from_env.stderr);
    // --token works and says why it should not be used.
    let flag = sandbox.run(&["apply", "-f", cm, "--server", &url, "--token", "s3cret"]);
    flag.ok();
    assert!(
        flag.stderr
            .contains("--token puts the token on the command line"),
        "{}",
        flag.stderr
    );
}

#[test]
fn error_messages_are_bounded() {
    let sandbox = Sandbox::new();
    let daemon = Daemon::start(&sandbox, &sandbox.path("data"), &sandbox.path("manifests"));
    let host = format!("127.0.0.1:{}", daemon.port);
    let huge = "N".repeat(900 * 1024);
    for doc in [
        format!(
            r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{huge}","namespace":"shop"}}}}"#
        ),
        format!(
            r#"{{"apiVersion":"v1","kind":"{huge}","metadata":{{"name":"a","namespace":"shop"}}}}"#
        ),
    ] {
        let (status, body) = send(
            daemon.port,
            "POST",
            "/api/v1/apply",
            &[("Host", &host), ("Content-Type", "application/json")],
            &doc,
        );
        assert_eq!(status, 400, "{}", &body[..body.len().min(300)]);
        assert!(body.len() < 4096, "a {} byte error", body.len());
        assert!(
            body.contains("bytes)"),
            "the size of the cut value is said: {body}"
        );
    }
    assert_eq!(head(&daemon), 0);
}

#[test]
fn position_zero_is_the_empty_state_and_wiping_needs_confirmation() {
    let sandbox = Sandbox::new();
    let data = sandbox.path("data");
    let daemon = Daemon::start(&sandbox, &data, &sandbox.path("manifests"));
    let url = daemon.url.clone();
    apply(&sandbox, &url, CM);

    let empty = sandbox.run(&[
        "get", "cm", "-A", "--at", "0", "-o", "json", "--server", &url,
    ]);
    assert!(!empty.ok().contains("web"), "{}", empty.stdout);
    let now = sandbox.run(&["get", "cm", "-A", "--at", "1", "--server", &url]);
    assert!(now.ok().contains("web"));

    let refused = sandbox.run(&["rollback", "--to", "0", "--server", &url]);
    let message = refused.fails();
    assert!(message.contains("--wipe"), "{message}");
    assert!(message.contains("deletes every object"), "{message}");
    assert_eq!(head(&daemon), 1, "nothing appended");
    let plan = sandbox.run(&["rollback", "--to", "0", "--dry-run", "--server", &url]);
    assert!(plan.ok().contains("ConfigMap/shop/web"), "{}", plan.stdout);
    assert_eq!(head(&daemon), 1);

    let wiped = sandbox.run(&["rollback", "--to", "0", "--wipe", "--server", &url]);
    assert!(
        wiped.ok().contains("rolled back to position 0"),
        "{}",
        wiped.stdout
    );
    let listed = sandbox.run(&["get", "cm", "-A", "--server", &url]);
    assert!(!listed.ok().contains("web"), "{}", listed.stdout);
}
