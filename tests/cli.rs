//! End-to-end tests of the `meshplane` binary: a real daemon on a free loopback port, driven
//! by the real CLI.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{eventually, raw_request, Daemon, Sandbox};

const SHOP: &str = r#"# a namespace, a config map and a deployment, with an empty document between
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web
  namespace: shop
  labels:
    app: web
data:
  greeting: hello
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
        - name: web
          image: nginx:1.27
          ports:
            - containerPort: 80
"#;

fn configmap(name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  value: \"{value}\"\n"
    )
}

/// The log position of the last change of an object (its `metadata.resourceVersion`).
fn position_of(sandbox: &Sandbox, url: &str, kind: &str, name: &str, namespace: &str) -> u64 {
    let object = sandbox
        .run(&[
            "get", kind, name, "-n", namespace, "-o", "json", "--server", url,
        ])
        .json();
    object["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn apply_get_delete_through_the_daemon() {
    let sandbox = Sandbox::new();
    let (data, manifests) = (sandbox.path("data"), sandbox.path("manifests"));
    let daemon = Daemon::start(&sandbox, &data, &manifests);
    let url = daemon.url.as_str();
    let file = sandbox.write("shop.yaml", SHOP);
    let file = file.to_str().unwrap();

    let applied = sandbox.run(&["apply", "-f", file, "--server", url]);
    assert_eq!(
        applied.ok(),
        "namespace/shop created\nconfigmap/web created\ndeployment/web created\n"
    );
    let again = sandbox.run(&["apply", "-f", file, "--server", url]);
    assert_eq!(
        again.ok(),
        "namespace/shop unchanged\nconfigmap/web unchanged\ndeployment/web unchanged\n"
    );

    // The server is found through MESHPLANE_SERVER too.
    let listed = sandbox.run_with(
        sandbox
            .command()
            .env("MESHPLANE_SERVER", url)
            .args(["get", "configmaps", "-n", "shop"]),
        None,
    );
    let table = listed.ok();
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "DATA", "GENERATION", "POSITION", "AGE"]);
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(&row[..4], ["web", "1", "1", "2"], "{table}");
    assert!(row[4].ends_with('s'), "{table}");
    assert_eq!(lines.next(), None);

    let all = sandbox.run(&["get", "deploy", "-A", "--server", url]);
    let table = all.ok();
    assert!(table.starts_with("NAMESPACE "), "{table}");
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&row[..4], ["shop", "web", "2", "nginx:1.27"], "{table}");

    let namespaces = sandbox.run(&["get", "ns", "--server", url]);
    assert!(
        namespaces.ok().lines().nth(1).unwrap().starts_with("shop "),
        "{}",
        namespaces.stdout
    );

    let json = sandbox
        .run(&[
            "get", "cm", "web", "-n", "shop", "-o", "json", "--server", url,
        ])
        .json();
    assert_eq!(json["kind"], "ConfigMap");
    assert_eq!(json["data"]["greeting"], "hello");
    assert_eq!(json["metadata"]["labels"]["app"], "web");
    assert_eq!(json["metadata"]["generation"], 1);
    let yaml = sandbox.run(&[
        "get", "cm", "web", "-n", "shop", "-o", "yaml", "--server", url,
    ]);
    let from_yaml: Value = serde_norway::from_str(yaml.ok()).unwrap();
    assert_eq!(from_yaml, json);
    let list = sandbox.run(&[
        "get",
        "deployments",
        "-n",
        "shop",
        "-o",
        "yaml",
        "--server",
        url,
    ]);
    let list: Value = serde_norway::from_str(list.ok()).unwrap();
    assert_eq!(list["kind"], "List");
    assert_eq!(list["items"][0]["spec"]["replicas"], 2);

    // Nothing in the default namespace: a message on stderr, exit 0.
    let empty = sandbox.run(&["get", "cm", "--server", url]);
    assert_eq!(empty.ok(), "");
    assert!(
        empty
            .stderr
            .contains("No resources found in default namespace."),
        "{}",
        empty.stderr
    );
    let missing = sandbox.run(&["get", "cm", "nope", "-n", "shop", "--server", url]);
    assert!(missing.fails().contains("not found"), "{}", missing.stderr);
    assert!(missing.stderr.contains("404"), "{}", missing.stderr);
    let unknown = sandbox.run(&["get", "widgets", "--server", url]);
    assert!(
        unknown.fails().contains("unknown kind `widgets`"),
        "{}",
        unknown.stderr
    );

    // The manifest directory holds one file per desired object.
    let cm_file = manifests.join("shop").join("configmap.web.yaml");
    let deploy_file = manifests.join("shop").join("deployment.web.yaml");
    let ns_file = manifests.join("_cluster").join("namespace.shop.yaml");
    eventually(Duration::from_secs(20), "manifest files", || {
        cm_file.exists() && deploy_file.exists() && ns_file.exists()
    });
    let written: Value =
        serde_norway::from_str(&std::fs::read_to_string(&cm_file).unwrap()).unwrap();
    assert_eq!(written["data"]["greeting"], "hello");

    // Change through standard input.
    let changed = sandbox.run_stdin(
        &["apply", "-f", "-", "--server", url],
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web, namespace: shop, labels: {app: web}}\ndata: {greeting: bonjour}\n",
    );
    assert_eq!(changed.ok(), "configmap/web configured\n");
    let json = sandbox
        .run(&[
            "get", "cm", "web", "-n", "shop", "-o", "json", "--server", url,
        ])
        .json();
    assert_eq!(
        (
            json["data"]["greeting"].as_str(),
            json["metadata"]["generation"].as_u64()
        ),
        (Some("bonjour"), Some(2))
    );
    eventually(
        Duration::from_secs(20),
        "the manifest file to change",
        || std::fs::read_to_string(&cm_file).is_ok_and(|text| text.contains("bonjour")),
    );

    // Delete by name.
    let deleted = sandbox.run(&["delete", "cm", "web", "-n", "shop", "--server", url]);
    assert_eq!(deleted.ok(), "configmap/web deleted\n");
    sandbox
        .run(&["get", "cm", "web", "-n", "shop", "--server", url])
        .fails();
    eventually(Duration::from_secs(20), "the manifest file to go", || {
        !cm_file.exists()
    });
    let twice = sandbox.run(&["delete", "cm", "web", "-n", "shop", "--server", url]);
    assert!(twice.fails().contains("not found"), "{}", twice.stderr);

    // Delete by file: the config map is already gone, the others are deleted, exit 1.
    let by_file = sandbox.run(&["delete", "-f", file, "--server", url]);
    by_file.fails();
    assert!(
        by_file.stdout.contains("deployment/web deleted"),
        "{}",
        by_file.stdout
    );
    assert!(
        by_file.stdout.contains("namespace/shop deleted"),
        "{}",
        by_file.stdout
    );
    assert!(by_file.stderr.contains("document 3"), "{}", by_file.stderr);
    assert!(
        by_file
            .stderr
            .contains("1 of 3 object(s) could not be deleted"),
        "{}",
        by_file.stderr
    );
    eventually(Duration::from_secs(20), "every manifest file to go", || {
        !deploy_file.exists() && !ns_file.exists()
    });
    let none = sandbox
        .run(&["get", "deploy", "-A", "-o", "json", "--server", url])
        .json();
    assert_eq!(none["items"], Value::Array(vec![]));
}

#[test]
fn acknowledged_changes_survive_kill_9_and_replay_is_stable() {
    let sandbox = Sandbox::new();
    let (data, manifests) = (sandbox.path("data"), sandbox.path("manifests"));
    let mut daemon = Daemon::start(&sandbox, &data, &manifests);
    let url = daemon.url.clone();

    // A directory of manifests, applied in sorted order, then more changes one by one.
    sandbox.write("dir/b.yaml", &configmap("b", "1"));
    sandbox.write("dir/a.yml", &configmap("a", "1"));
    sandbox.write(
        "dir/c.json",
        r#"[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"value":"1"}}]"#,
    );
    sandbox.write("dir/ignored.txt", "not a manifest");
    let dir = sandbox.path("dir");
    let applied = sandbox.run(&["apply", "-f", dir.to_str().unwrap(), "--server", &url]);
    assert_eq!(
        applied.ok(),
        "configmap/a created\nconfigmap/b created\nconfigmap/c created\n"
    );
    let shop = sandbox.write("shop.yaml", SHOP);
    sandbox
        .run(&["apply", "-f", shop.to_str().unwrap(), "--server", &url])
        .ok();
    for i in 0..5 {
        let f = sandbox.write(&format!("v{i}.yaml"), &configmap("a", &i.to_string()));
        sandbox
            .run(&["apply", "-f", f.to_str().unwrap(), "--server", &url])
            .ok();
    }
    sandbox
        .run(&["delete", "configmap", "b", "--server", &url])
        .ok();

    // While the daemon holds the log, an offline replay explains why it cannot open it.
    let busy = sandbox.run(&["replay", "--data", data.to_str().unwrap()]);
    assert!(
        busy.fails()
            .contains("open in another process (a running daemon?)"),
        "{}",
        busy.stderr
    );

    let snapshot = |url: &str| -> Vec<Value> {
        ["configmaps", "deployments", "namespaces"]
            .iter()
            .map(|kind| {
                sandbox
                    .run(&["get", kind, "-A", "-o", "json", "--server", url])
                    .json()["items"]
                    .clone()
            })
            .collect()
    };
    let before = snapshot(&url);
    assert_eq!(
        before[0].as_array().unwrap().len(),
        3,
        "a, c and shop/web: {:?}",
        before[0]
    );
    assert_eq!(before[0][0]["data"]["value"], "4");

    daemon.kill();
    let daemon = Daemon::start(&sandbox, &data, &manifests);
    let after = snapshot(&daemon.url);
    assert_eq!(before, after, "state after kill -9 and restart differs");
    // And the restarted daemon still accepts changes, continuing the log.
    let d = sandbox.write("d.yaml", &configmap("d", "1"));
    sandbox
        .run(&["apply", "-f", d.to_str().unwrap(), "--server", &daemon.url])
        .ok();
    assert_eq!(position_of(&sandbox, &daemon.url, "cm", "d", "default"), 13);
    let mut daemon = daemon;
    assert_eq!(
        daemon.terminate(),
        Some(0),
        "graceful shutdown on SIGTERM:\n{}",
        daemon.log_text()
    );

    // replay --data twice: the same report, ending with the digest line.
    let data_arg = data.to_str().unwrap();
    let first = sandbox.run(&["replay", "--data", data_arg]);
    let second = sandbox.run(&["replay", "--data", data_arg]);
    assert_eq!(first.ok(), second.ok());
    let report = first.stdout.clone();
    assert!(report.contains("events folded 13\n"), "{report}");
    assert!(
        report.contains("  ConfigMap 4\n")
            && report.contains("  Deployment 1\n")
            && report.contains("  Namespace 1\n"),
        "{report}"
    );
    let digest = sandbox.run(&["replay", "--data", data_arg, "--digest"]);
    let digest = digest.ok().to_string();
    let digest_lines: Vec<&str> = digest.lines().collect();
    assert_eq!(digest_lines[0], "position 13");
    assert!(digest_lines[1].starts_with("state.resource "), "{digest}");
    let last = *digest_lines.last().unwrap();
    assert!(
        last.starts_with("digest ") && last.len() == "digest ".len() + 64,
        "{digest}"
    );
    assert!(
        report.ends_with(&digest),
        "the full report ends with the digest lines:\n{report}"
    );

    // export → import into a fresh directory → the same digest; replay --log too.
    let exported = sandbox.path("log.jsonl");
    let export = sandbox.run(&[
        "log",
        "export",
        "--data",
        data_arg,
        "-o",
        exported.to_str().unwrap(),
    ]);
    export.ok();
    assert!(
        export.stderr.contains("exported 13 events"),
        "{}",
        export.stderr
    );
    let text = std::fs::read_to_string(&exported).unwrap();
    assert_eq!(text.lines().count(), 13);
    let to_stdout = sandbox.run(&["log", "export", "--data", data_arg]);
    assert_eq!(to_stdout.ok(), text, "export to stdout and to a file agree");

    let fresh = sandbox.path("fresh");
    let import = sandbox.run(&[
        "log",
        "import",
        "--data",
        fresh.to_str().unwrap(),
        exported.to_str().unwrap(),
    ]);
    assert!(
        import.ok().contains("imported 13 events"),
        "{}",
        import.stdout
    );
    let imported = sandbox.run(&["replay", "--data", fresh.to_str().unwrap(), "--digest"]);
    assert_eq!(imported.ok(), digest);
    let from_log = sandbox.run(&["replay", "--log", exported.to_str().unwrap(), "--digest"]);
    assert_eq!(from_log.ok(), digest);
    let from_stdin = sandbox.run_stdin(&["replay", "--log", "-", "--digest"], &text);
    assert_eq!(from_stdin.ok(), digest);

    // Importing into a log that is not empty is refused and changes nothing.
    let again = sandbox.run(&[
        "log",
        "import",
        "--data",
        fresh.to_str().unwrap(),
        exported.to_str().unwrap(),
    ]);
    assert!(
        again.fails().contains("needs an empty data directory"),
        "{}",
        again.stderr
    );
    assert_eq!(
        sandbox
            .run(&["replay", "--data", fresh.to_str().unwrap(), "--digest"])
            .ok(),
        digest
    );

    // A corrupt JSON Lines file is refused with its line number.
    let broken = sandbox.write(
        "broken.jsonl",
        &text.replacen("\"position\":2", "\"position\":7", 1),
    );
    let refused = sandbox.run(&["replay", "--log", broken.to_str().unwrap()]);
    assert!(refused.fails().contains("line 2"), "{}", refused.stderr);

    // The imported directory serves the same state.
    let daemon = Daemon::start(&sandbox, &fresh, &sandbox.path("manifests-fresh"));
    let mut expected = before;
    expected[0] = sandbox
        .run(&[
            "get",
            "configmaps",
            "-A",
            "-o",
            "json",
            "--server",
            &daemon.url,
        ])
        .json()["items"]
        .clone();
    assert_eq!(snapshot(&daemon.url), expected);
    assert_eq!(expected[0].as_array().unwrap().len(), 4);

    // A missing data directory is an error, not a new empty log.
    let nothing = sandbox.run(&[
        "replay",
        "--data",
        sandbox.path("nowhere").to_str().unwrap(),
    ]);
    assert!(
        nothing.fails().contains("no redb event log"),
        "{}",
        nothing.stderr
    );
    assert!(!sandbox.path("nowhere").exists());
}

#[test]
fn bad_input_gets_a_clear_error_and_appends_nothing() {
    let sandbox = Sandbox::new();
    let (data, manifests) = (sandbox.path("data"), sandbox.path("manifests"));
    let mut daemon = Daemon::start(&sandbox, &data, &manifests);
    let url = daemon.url.clone();
    let probe = sandbox.write("probe.yaml", &configmap("probe", "1"));
    sandbox
        .run(&["apply", "-f", probe.to_str().unwrap(), "--server", &url])
        .ok();
    let start = position_of(&sandbox, &url, "cm", "probe", "default");

    let apply = |name: &str, content: &str| {
        let file = sandbox.write(name, content);
        sandbox.run(&["apply", "-f", file.to_str().unwrap(), "--server", &url])
    };

    // Malformed YAML: caught by the client, naming the file and the line.
    let malformed = apply(
        "malformed.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [oops\ndata: {}\n",
    );
    let err = malformed.fails();
    assert!(err.contains("malformed.yaml: line 5"), "{err}");
    // An error in a later document stops the whole apply before anything is sent.
    let second = apply(
        "second.yaml",
        &format!(
            "{}---\nkind: ConfigMap\n  bad: indent\n",
            configmap("first", "1")
        ),
    );
    assert!(
        second.fails().contains("second.yaml: line 9"),
        "{}",
        second.stderr
    );

    // Unknown kind, missing name, wrong types, unknown fields: the server names the field,
    // and the client names the file and document.
    let unknown = apply(
        "widget.yaml",
        "apiVersion: v1\nkind: Widget\nmetadata:\n  name: w\n",
    );
    let err = unknown.fails();
    assert!(
        err.contains("documents[0].kind") && err.contains("unknown kind `Widget`"),
        "{err}"
    );
    assert!(err.contains("widget.yaml (document 1)"), "{err}");
    let nameless = apply(
        "nameless.yaml",
        &format!(
            "{}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels: {{a: b}}\n",
            configmap("fine", "1")
        ),
    );
    let err = nameless.fails();
    assert!(
        err.contains("documents[1].metadata.name") && err.contains("Required value"),
        "{err}"
    );
    assert!(err.contains("nameless.yaml (document 2)"), "{err}");
    let wrong_type = apply(
        "svc.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n    - port: eighty\n",
    );
    let err = wrong_type.fails();
    assert!(err.contains("spec.ports[0].port"), "{err}");
    assert!(err.contains("400"), "{err}");
    let misspelt = apply(
        "typo.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: t\ndat:\n  a: b\n",
    );
    assert!(misspelt.fails().contains("dat"), "{}", misspelt.stderr);
    let sequence = apply("seq.yaml", "- a\n- b\n");
    assert!(
        sequence.fails().contains("expected a mapping"),
        "{}",
        sequence.stderr
    );
    let empty = apply("empty.yaml", "---\n# nothing\n---\n");
    assert!(empty.fails().contains("no objects"), "{}", empty.stderr);

    // A body over the limit (1 MiB by default) gets 413, through raw HTTP and through the CLI.
    let big = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"big"}},"data":{{"blob":"{}"}}}}"#,
        "x".repeat(1024 * 1024 + 10)
    );
    let (status, body) = raw_request(
        daemon.port,
        "POST",
        "/api/v1/apply",
        &[("Content-Type", "application/json")],
        big.clone().into_bytes(),
    );
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("PayloadTooLarge"), "{body}");
    let big_file = sandbox.write("big.json", &big);
    let too_large = sandbox.run(&["apply", "-f", big_file.to_str().unwrap(), "--server", &url]);
    assert!(too_large.fails().contains("413"), "{}", too_large.stderr);

    // Nothing was appended: the next change lands right after the probe.
    let next = sandbox.write("next.yaml", &configmap("next", "1"));
    sandbox
        .run(&["apply", "-f", next.to_str().unwrap(), "--server", &url])
        .ok();
    assert_eq!(
        position_of(&sandbox, &url, "cm", "next", "default"),
        start + 1
    );
    daemon.kill();
    let export = sandbox.run(&["log", "export", "--data", data.to_str().unwrap()]);
    assert_eq!(export.ok().lines().count() as u64, start + 1);
}

#[test]
fn off_loopback_mutations_need_the_token() {
    let sandbox = Sandbox::new();
    let data = sandbox.path("data");

    // No token: refuses to start, with a clear message.
    let port = support::free_port("0.0.0.0");
    let mut refused = Daemon::spawn(&sandbox, &data, &format!("0.0.0.0:{port}"), &[]);
    assert_eq!(refused.wait_exit(Duration::from_secs(30)), Some(1));
    let log = refused.log_text();
    assert!(
        log.contains("error: refusing to start") && log.contains("token"),
        "{log}"
    );

    let daemon = Daemon::start_with(
        &sandbox,
        &data,
        &["--token", "secret", "--log-format", "json"],
        "0.0.0.0",
    );
    let url = daemon.url.as_str();
    let cm = sandbox.write("cm.yaml", &configmap("guarded", "1"));
    let cm = cm.to_str().unwrap();

    let anonymous = sandbox.run(&["apply", "-f", cm, "--server", url]);
    assert!(anonymous.fails().contains("401"), "{}", anonymous.stderr);
    let wrong = sandbox.run(&["apply", "-f", cm, "--server", url, "--token", "guess"]);
    assert!(wrong.fails().contains("401"), "{}", wrong.stderr);
    let (status, body) = raw_request(
        daemon.port,
        "DELETE",
        "/api/v1/resources/cm/guarded",
        &[],
        Vec::new(),
    );
    assert_eq!(status, 401, "{body}");
    // Reads need no token.
    sandbox.run(&["get", "cm", "--server", url]).ok();

    let with_flag = sandbox.run(&["apply", "-f", cm, "--server", url, "--token", "secret"]);
    assert_eq!(with_flag.ok(), "configmap/guarded created\n");
    let with_env = sandbox.run_with(
        sandbox
            .command()
            .env("MESHPLANE_TOKEN", "secret")
            .args(["delete", "cm", "guarded", "--server", url]),
        None,
    );
    assert_eq!(with_env.ok(), "configmap/guarded deleted\n");

    // The config file in $HOME gives both the server and the token.
    sandbox.write(
        "home/.meshplane/config.yaml",
        &format!("server: {url}\ntoken: secret\n"),
    );
    let with_config = sandbox.run(&["apply", "-f", cm]);
    assert_eq!(with_config.ok(), "configmap/guarded created\n");
    // Flags win over the config file.
    let flag_wins = sandbox.run(&["delete", "cm", "guarded", "--token", "guess"]);
    assert!(flag_wins.fails().contains("401"), "{}", flag_wins.stderr);

    // --log-format json: the daemon's log lines are JSON objects.
    let log = daemon.log_text();
    let first = log.lines().next().expect("the daemon logged something");
    let parsed: Value = serde_json::from_str(first)
        .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {first}"));
    assert!(parsed.get("level").is_some(), "{first}");
}

#[test]
fn clients_explain_an_unreachable_daemon() {
    let sandbox = Sandbox::new();
    let port = support::free_port("127.0.0.1");
    let out = sandbox.run(&["get", "cm", "--server", &format!("127.0.0.1:{port}")]);
    let err = out.fails();
    assert!(
        err.contains(&format!(
            "cannot reach the meshplane daemon at http://127.0.0.1:{port}"
        )),
        "{err}"
    );
    let bad_config = sandbox.write("home/.meshplane/config.yaml", "servr: http://x\n");
    let out = sandbox.run(&["get", "cm"]);
    assert!(
        out.fails().contains(bad_config.to_str().unwrap()),
        "{}",
        out.stderr
    );
}

#[test]
fn sled_store_survives_restart_and_exports_to_the_same_digest_as_redb() {
    let sandbox = Sandbox::new();
    let data = sandbox.path("data");
    let manifests = sandbox.path("manifests");
    let extra = [
        "--store",
        "sled",
        "--manifests",
        manifests.to_str().unwrap(),
    ];
    let mut daemon = Daemon::start_with(&sandbox, &data, &extra, "127.0.0.1");
    let shop = sandbox.write("shop.yaml", SHOP);
    sandbox
        .run(&[
            "apply",
            "-f",
            shop.to_str().unwrap(),
            "--server",
            &daemon.url,
        ])
        .ok();
    daemon.kill();
    let mut daemon = Daemon::start_with(&sandbox, &data, &extra, "127.0.0.1");
    let deploy = sandbox
        .run(&[
            "get",
            "deploy",
            "web",
            "-n",
            "shop",
            "-o",
            "json",
            "--server",
            &daemon.url,
        ])
        .json();
    assert_eq!(deploy["spec"]["replicas"], 2);
    assert_eq!(daemon.terminate(), Some(0));

    let data_arg = data.to_str().unwrap();
    assert!(sandbox
        .run(&["replay", "--data", data_arg])
        .fails()
        .contains("no redb event log"));
    let digest = sandbox
        .run(&["replay", "--data", data_arg, "--store", "sled", "--digest"])
        .ok()
        .to_string();
    assert!(digest.starts_with("position 3\n"), "{digest}");
    let exported = sandbox.path("sled.jsonl");
    sandbox
        .run(&[
            "log",
            "export",
            "--data",
            data_arg,
            "--store",
            "sled",
            "-o",
            exported.to_str().unwrap(),
        ])
        .ok();
    let redb = sandbox.path("redb");
    sandbox
        .run(&[
            "log",
            "import",
            "--data",
            redb.to_str().unwrap(),
            exported.to_str().unwrap(),
        ])
        .ok();
    assert_eq!(
        sandbox
            .run(&["replay", "--data", redb.to_str().unwrap(), "--digest"])
            .ok(),
        digest
    );
}
