//! End-to-end: `meshplane rollback` through the running daemon — the dry-run plan appends
//! nothing, a rollback restores every object and the manifest directory follows, new changes
//! continue from it, a position already undone is refused, and a restart (which replays the
//! log, rollback included) gives the same state as the live daemon had.

mod support;

use std::time::Duration;

use support::{eventually, Daemon, Sandbox};

fn configmap(value: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n  namespace: shop\ndata:\n  value: \"{value}\"\n")
}

const SERVICE: &str = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  ports:\n    - port: 80\n";

fn value(sandbox: &Sandbox, url: &str) -> String {
    let cm = sandbox
        .run(&[
            "get", "cm", "web", "-n", "shop", "-o", "json", "--server", url,
        ])
        .json();
    cm["data"]["value"].as_str().unwrap().to_string()
}

fn apply(sandbox: &Sandbox, url: &str, name: &str, doc: &str) {
    let file = sandbox.write(name, doc);
    sandbox
        .run(&["apply", "-f", file.to_str().unwrap(), "--server", url])
        .ok();
}

#[test]
fn rollback_restores_state_and_survives_a_restart() {
    let sandbox = Sandbox::new();
    let (data, manifests) = (sandbox.path("data"), sandbox.path("manifests"));
    let mut daemon = Daemon::start(&sandbox, &data, &manifests);
    let url = daemon.url.clone();
    apply(&sandbox, &url, "v1.yaml", &configmap("1")); // 1
    apply(&sandbox, &url, "v2.yaml", &configmap("2")); // 2
    apply(&sandbox, &url, "svc.yaml", SERVICE); // 3
    let service_file = manifests.join("shop/service.web.yaml");
    eventually(Duration::from_secs(10), "the Service projected", || {
        service_file.exists()
    });

    let plan = sandbox.run(&["rollback", "--to", "1", "--dry-run", "--server", &url]);
    let text = plan.ok();
    assert_eq!(
        text,
        "rollback to position 1 would change 4 object(s) (nothing appended)\n\
         ACTION   TARGET       OBJECT\n\
         update   kubernetes   ConfigMap/shop/web\n\
         delete   kubernetes   Service/shop/web\n\
         update   etcd         /meshplane/resources/ConfigMap/shop/web\n\
         delete   etcd         /meshplane/resources/Service/shop/web\n"
    );
    assert_eq!(value(&sandbox, &url), "2", "a dry run changes nothing");

    let done = sandbox.run(&[
        "rollback",
        "--to",
        "1",
        "--reason",
        "bad rollout",
        "--server",
        &url,
    ]);
    assert!(
        done.ok()
            .contains("rolled back to position 1 (rollback event at position 4)"),
        "{}",
        done.ok()
    );
    assert_eq!(value(&sandbox, &url), "1");
    eventually(
        Duration::from_secs(10),
        "the Service removed from the manifests",
        || !service_file.exists(),
    );

    // New changes continue from the rollback (at the streams' real versions).
    apply(&sandbox, &url, "v3.yaml", &configmap("3")); // 5
    assert_eq!(value(&sandbox, &url), "3");

    // Position 2 was undone by the rollback at 4: refused, nothing appended.
    let refused = sandbox.run(&["rollback", "--to", "2", "--server", &url]);
    let message = refused.fails();
    assert!(
        message.contains("undone by the rollback at position 4 (to 1)"),
        "{message}"
    );
    let history = sandbox.run(&["history", "cm", "web", "-n", "shop", "--server", &url]);
    assert!(
        !history.ok().contains("rolled back"),
        "the rollback is not on the object's stream"
    );

    // A restart replays the log, rollback included, to the same state.
    assert_eq!(daemon.terminate(), Some(0));
    let replayed = sandbox.run(&["replay", "--data", data.to_str().unwrap()]);
    let report = replayed.ok();
    assert!(report.contains("events folded 5"), "{report}");
    assert!(
        report.contains("  ConfigMap 1") && !report.contains("  Service 1"),
        "{report}"
    );
    let at_two = sandbox.run(&["replay", "--data", data.to_str().unwrap(), "--to", "3"]);
    assert!(
        at_two.ok().contains("  Service 1"),
        "before the rollback the Service existed"
    );
    let daemon = Daemon::start(&sandbox, &data, &manifests);
    assert_eq!(value(&sandbox, &daemon.url), "3");
    let svc = sandbox.run(&["get", "svc", "web", "-n", "shop", "--server", &daemon.url]);
    svc.fails();
}

#[test]
fn get_at_answers_from_a_past_position() {
    let sandbox = Sandbox::new();
    let (data, manifests) = (sandbox.path("data"), sandbox.path("manifests"));
    let daemon = Daemon::start(&sandbox, &data, &manifests);
    let url = daemon.url.as_str();
    apply(&sandbox, url, "v1.yaml", &configmap("1")); // 1
    apply(&sandbox, url, "v2.yaml", &configmap("2")); // 2
    apply(&sandbox, url, "svc.yaml", SERVICE); // 3
    let at = |pos: &str| {
        sandbox
            .run(&[
                "get", "cm", "web", "-n", "shop", "--at", pos, "-o", "json", "--server", url,
            ])
            .json()["data"]["value"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(at("1"), "1");
    assert_eq!(at("2"), "2");
    assert_eq!(value(&sandbox, url), "2", "the present is untouched");
    let listed = sandbox.run(&["get", "svc", "-n", "shop", "--at", "2", "--server", url]);
    listed.ok();
    let svc_then = sandbox.run(&[
        "get", "svc", "web", "-n", "shop", "--at", "2", "--server", url,
    ]);
    assert!(
        svc_then.fails().contains("not found"),
        "the Service came later"
    );
    let svc_now = sandbox.run(&[
        "get", "svc", "web", "-n", "shop", "--at", "3", "--server", url,
    ]);
    svc_now.ok();
    let past_end = sandbox.run(&["get", "cm", "-n", "shop", "--at", "99", "--server", url]);
    assert!(past_end
        .fails()
        .contains("position 99 is not in the log (0..=3)"));
    // The registry's catalog too.
    let tenant = |d: &str| {
        format!("apiVersion: mesh.megaease.com/v1alpha1\nkind: Tenant\nmetadata:\n  name: shop\nspec:\n  description: {d}\n")
    };
    apply(&sandbox, url, "t1.yaml", &tenant("first")); // 4
    apply(&sandbox, url, "t2.yaml", &tenant("second")); // 5
    let then = sandbox
        .run(&[
            "get", "tenants", "shop", "--at", "4", "-o", "json", "--server", url,
        ])
        .json();
    assert_eq!(then["spec"]["description"], "first", "{then}");
    let listed = sandbox.run(&["get", "tenants", "--at", "3", "--server", url]);
    assert!(listed.ok().is_empty(), "no tenant before position 4");

    // Writes act on the present only.
    let (code, body) = support::raw_request(
        daemon.port,
        "DELETE",
        "/api/v1/resources/cm/web?namespace=shop&at=1",
        &[],
        Vec::new(),
    );
    assert_eq!(code, 400, "{body}");
    assert_eq!(value(&sandbox, url), "2");
}
