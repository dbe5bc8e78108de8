//! The leader Lease against a scripted API server (tower-test), on real time with short
//! durations (lease 2 s, renewal every 500 ms, retries every 200 ms): creation of an absent
//! Lease, renewal with the resourceVersion read, a 409 read again, another holder that keeps
//! renewing (never taken, whatever its renewTime says against our clock) or stops (taken over
//! after its leaseDurationSeconds of our own clock), a free Lease taken at once, the
//! leadership deadline (a stalled or failing renewal ends leadership on time, and
//! `is_leader` honours the deadline even before the election task runs), abort, release,
//! validation, and the manual and always-on leaderships.

// The timing assertions read the monotonic clock.
#![allow(clippy::disallowed_methods)]

#[path = "support/kube_mock.rs"]
mod kube_mock;

use std::time::{Duration, Instant};

use adapters::kube::lease::{self, Leadership, LeaseConfig};
use http::{Method, StatusCode};
use kube_mock::{ApiServer, Exchange};
use serde_json::{json, Value};

const NS: &str = "meshplane";
const NAME: &str = "meshplane-leader";
const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/meshplane/leases";
const LEASE: &str = "/apis/coordination.k8s.io/v1/namespaces/meshplane/leases/meshplane-leader";
const ME: &str = "daemon-a";
const OTHER: &str = "daemon-b";
const LEASE_DURATION: Duration = Duration::from_secs(2);
const RENEW_EVERY: Duration = Duration::from_millis(500);
/// How long after a write was sent we lead: lease duration - renewal period.
const LEADING_FOR: Duration = Duration::from_millis(1500);
const ACQUIRED: &str = "2026-01-01T00:00:00.000000Z";

fn config() -> LeaseConfig {
    let mut config = LeaseConfig::new(NS.into(), NAME.into(), ME.into());
    config.lease_duration = LEASE_DURATION;
    config.renew_every = RENEW_EVERY;
    config.retry_every = Duration::from_millis(200);
    // Generous: a slow test must not make the elector give up on a request.
    config.request_timeout = Duration::from_secs(5);
    config
}

/// A Lease as the API server returns it.
fn lease_json(
    holder: Option<&str>,
    resource_version: &str,
    renew_time: &str,
    duration_seconds: i32,
    transitions: i32,
) -> Value {
    let mut spec = json!({
        "leaseDurationSeconds": duration_seconds,
        "acquireTime": ACQUIRED,
        "renewTime": renew_time,
        "leaseTransitions": transitions,
    });
    if let Some(holder) = holder {
        spec["holderIdentity"] = json!(holder);
    }
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": NAME, "namespace": NS, "resourceVersion": resource_version,
            "uid": "9b0c1e2d-0000-4000-8000-00000000a001",
        },
        "spec": spec,
    })
}

/// What the server stores after a write: the body with a new resourceVersion.
fn stored(body: &Value, resource_version: &str) -> Value {
    let mut object = body.clone();
    object["metadata"]["resourceVersion"] = json!(resource_version);
    object["metadata"]["uid"] = json!("9b0c1e2d-0000-4000-8000-00000000a001");
    object
}

/// A MicroTime field: RFC 3339 in UTC with exactly six fractional digits.
fn micro(value: &Value) -> jiff::Timestamp {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a time: {value}"));
    assert!(
        text.len() == 27 && text.as_bytes()[19] == b'.' && text.ends_with('Z'),
        "not a MicroTime: {text}"
    );
    text.parse().expect("RFC 3339")
}

/// A write of our Lease record: the field manager, the object's identity, us as holder with
/// our duration, the resourceVersion it is guarded by (none on create) and the transitions.
fn assert_our_record(exchange: &Exchange, resource_version: Option<&str>, transitions: i64) {
    exchange.assert_query("fieldManager", "meshplane");
    let body = &exchange.body;
    assert_eq!(body["apiVersion"], "coordination.k8s.io/v1", "{body}");
    assert_eq!(body["kind"], "Lease", "{body}");
    assert_eq!(body["metadata"]["name"], NAME, "{body}");
    assert_eq!(body["metadata"]["namespace"], NS, "{body}");
    assert_eq!(
        body["metadata"]["resourceVersion"].as_str(),
        resource_version,
        "{body}"
    );
    assert_eq!(body["spec"]["holderIdentity"], ME, "{body}");
    assert_eq!(body["spec"]["leaseDurationSeconds"], 2, "{body}");
    assert_eq!(body["spec"]["leaseTransitions"], transitions, "{body}");
    micro(&body["spec"]["acquireTime"]);
    micro(&body["spec"]["renewTime"]);
}

/// Wait until the leadership flag reads `want`.
async fn flag_becomes(leadership: &Leadership, want: bool) {
    let mut changes = leadership.changes();
    tokio::time::timeout(Duration::from_secs(2), changes.wait_for(|l| *l == want))
        .await
        .unwrap_or_else(|_| panic!("leadership did not become {want}"))
        .expect("the election ended");
}

/// GET → 404, POST → created: we lead. Returns when the POST was answered.
async fn become_leader_by_creating(server: &mut ApiServer, leadership: &Leadership) -> Instant {
    server.expect(Method::GET, LEASE).await.fail(
        404,
        "NotFound",
        "leases.coordination.k8s.io \"meshplane-leader\" not found",
    );
    let create = server.expect(Method::POST, LEASES).await;
    assert_our_record(&create, None, 0);
    assert!(!leadership.is_leader());
    let body = stored(&create.body, "1");
    let answered = Instant::now();
    create.respond(StatusCode::CREATED, &body);
    flag_becomes(leadership, true).await;
    answered
}

#[tokio::test]
async fn an_absent_lease_is_created_holding_it_and_then_renewed() {
    let (client, mut server) = kube_mock::pair();
    let (leadership, task) = lease::spawn(client, config());
    assert!(!leadership.is_leader());

    server
        .expect(Method::GET, LEASE)
        .await
        .fail(404, "NotFound", "not found");
    let create = server.expect(Method::POST, LEASES).await;
    assert_our_record(&create, None, 0);
    let spec = &create.body["spec"];
    assert_eq!(spec["acquireTime"], spec["renewTime"]);
    let created_at = micro(&spec["renewTime"]);
    assert!(
        !leadership.is_leader(),
        "leading before the create succeeded"
    );
    let body = stored(&create.body, "1");
    create.respond(StatusCode::CREATED, &body);
    flag_becomes(&leadership, true).await;
    assert!(leadership.is_leader());

    // The renewal is sent from what the create returned (no read in between).
    let started = Instant::now();
    let renew = server.expect(Method::PUT, LEASE).await;
    assert!(started.elapsed() >= RENEW_EVERY - Duration::from_millis(100));
    assert_our_record(&renew, Some("1"), 0);
    assert_eq!(
        renew.body["spec"]["acquireTime"],
        body["spec"]["acquireTime"]
    );
    assert!(micro(&renew.body["spec"]["renewTime"]) > created_at);
    let body = stored(&renew.body, "2");
    renew.ok(&body);
    assert!(leadership.is_leader());
    task.abort();
}

#[tokio::test]
async fn a_lease_we_hold_is_renewed_with_the_resource_version_read() {
    let (client, mut server) = kube_mock::pair();
    let (leadership, task) = lease::spawn(client, config());
    let old_renewal = "2026-01-01T00:00:05.000000Z";
    server
        .expect(Method::GET, LEASE)
        .await
        .ok(&lease_json(Some(ME), "7", old_renewal, 2, 3));

    let renew = server.expect(Method::PUT, LEASE).await;
    assert_our_record(&renew, Some("7"), 3);
    assert_eq!(
        renew.body["spec"]["acquireTime"], ACQUIRED,
        "not a new acquisition"
    );
    let first = micro(&renew.body["spec"]["renewTime"]);
    assert!(first > micro(&json!(old_renewal)));
    let body = stored(&renew.body, "8");
    renew.ok(&body);
    flag_becomes(&leadership, true).await;

    let answered = Instant::now();
    let renew = server.expect(Method::PUT, LEASE).await;
    assert!(answered.elapsed() >= RENEW_EVERY - Duration::from_millis(100));
    assert_our_record(&renew, Some("8"), 3);
    assert!(micro(&renew.body["spec"]["renewTime"]) > first);
    let body = stored(&renew.body, "9");
    renew.ok(&body);
    assert!(leadership.is_leader());
    task.abort();
}

#[tokio::test]
async fn a_conflicting_renewal_is_read_again_and_not_leading_until_renewed() {
    let (client, mut server) = kube_mock::pair();
    let (leadership, task) = lease::spawn(client, config());
    become_leader_by_creating(&mut server, &leadership).await;

    let renew = server.expect(Method::PUT, LEASE).await;
    assert_our_record(&renew, Some("1"), 0);
    renew.fail(
        409,
        "Conflict",
        "Operation cannot be fulfilled on leases.coordination.k8s.io \"meshplane-leader\": the object has been modified",
    );

    // Read again at once, and no longer leading meanwhile.
    let reread = server.expect(Method::GET, LEASE).await;
    assert!(!leadership.is_leader());
    assert!(!*leadership.changes().borrow());
    // Someone changed the Lease (still ours): renew from the new resourceVersion.
    reread.ok(&lease_json(
        Some(ME),
        "5",
        "2026-01-01T00:00:09.000000Z",
        2,
        0,
    ));
    let renew = server.expect(Method::PUT, LEASE).await;
    assert_our_record(&renew, Some("5"), 0);
    assert!(
        !leadership.is_leader(),
        "leading before the renewal succeeded"
    );
    let body = stored(&renew.body, "6");
    renew.ok(&body);
    flag_becomes(&leadership, true).await;
    task.abort();
}

#[tokio::test]
async fn a_lease_created_by_another_daemon_first_is_read_again() {
    let (client, mut server) = kube_mock::pair();
    let (leadership, task) = lease::spawn(client, config());
    server
        .expect(Method::GET, LEASE)
        .await
        .fail(404, "NotFound", "not found");
    server.expect(Method::POST, LEASES).await.fail(
        409,
        "AlreadyExists",
        "leases.coordination.k8s.io \"meshplane-leader\" already exists",
    );
    server.expect(Method::GET, LEASE).await.ok(&lease_json(
        Some(OTHER),
        "1",
        "2026-01-01T00:00:00.000000Z",
        2,
        0,
    ));
    // Held by the other daemon: only looked at again, not written.
    server.expect(Method::GET, LEASE).await.ok(&lease_json(
        Some(OTHER),
        "2",
        "2026-01-01T00:00:01.000000Z",
        2,
        0,
    ));
    assert!(!leadership.is_leader());
    task.abort();
}

#[tokio::test]
async fn a_lease_another_daemon_keeps_renewing_is_never_taken() {
    let (client, mut server) = kube_mock::pair();
    let (leadership, task) = lease::spawn(client, config());
    let mut changes = leadership.changes();
    let started = Instant::now();
    let mut looks = 0;
    // Its renewTime is far in our past: a judge by wall clock would take it at once.
    let mut renewed = jiff::Timestamp::from_second(946_684_800).unwrap();
    while started.elapsed() < LEASE_DURATION + Duration::from_secs(1) {
        let look = server.expect(Method::GET, LEASE).await;
        looks += 1;
        renewed = renewed
            .checked_add(jiff::SignedDuration::from_millis(200))
            .unwrap();
        let renew_time = renewed.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
        look.ok(&lease_json(
            Some(OTHER),
            &(100 + looks).to_string(),
            &renew_time,
            2,
            1,
        ));
        assert!(!leadership.is_leader());
    }
    assert!(looks >= 8, "looked only {looks} times");
    assert!(
        !changes.has_changed().unwrap(),
        "leadership flag was raised"
    );
    assert!(!*changes.borrow_and_update());
    task.abort();
}

#[tokio::test]
async fn a_lease_left_unchanged_for_its_duration_is_taken_over() {
    let (client, mut server) = kube_mock::pair();
    let (leadership, task) = lease::spawn(client, config());
    // The holder's own duration (3 s) counts, not ours; its renewTime lies in our future, so a
    // judge by wall clock would never take it.
    let record = lease_json(Some(OTHER), "5", "2099-01-01T00:00:00.000000Z", 3, 4);
    let mut first_answer: Option<Instant> = None;
    let mut looks = 0;
    let take = loop {
        let exchange = server.next().await;
        if exchange.method == Method::PUT {
            break exchange;
        }
        assert_eq!(
            (&exchange.method, exchange.path.as_str()),
            (&Method::GET, LEASE)
        );
        looks += 1;
        exchange.ok(&record);
        first_answer.get_or_insert_with(Instant::now);
        assert!(!leadership.is_leader());
    };
    let waited = first_answer.expect("read before writing").elapsed();
    assert_eq!(take.path, LEASE);
    assert!(
        waited >= Duration::from_secs(3),
        "taken over after {waited:?}, before the holder's 3 s had passed unchanged"
    );
    assert!(
        waited < Duration::from_secs(6),
        "taken over only after {waited:?}"
    );
    assert!(looks >= 5, "looked only {looks} times");
    // Guarded by the resourceVersion read; one more transition; acquired now.
    assert_our_record(&take, Some("5"), 5);
    let spec = &take.body["spec"];
    assert_ne!(spec["acquireTime"], ACQUIRED);
    assert_eq!(spec["acquireTime"], spec["renewTime"]);
    assert!(
        !leadership.is_leader(),
        "leading before the takeover succeeded"
    );
    let body = stored(&take.body, "6");
    take.ok(&body);
    flag_becomes(&leadership, true).await;
    task.abort();
}

#[tokio::test]
async fn a_changed_record_restarts_the_wait() {
    let (client, mut server) = kube_mock::pair();
    let (leadership, task) = lease::spawn(client, config());
    let started = Instant::now();
    // Unchanged for 1.5 s, then renewed once, then unchanged: the wait starts again.
    let mut renewed_at: Option<Instant> = None;
    let take = loop {
        let exchange = server.next().await;
        if exchange.method == Method::PUT {
            break exchange;
        }
        let record = if started.elapsed() < Duration::from_millis(1500) {
            lease_json(Some(OTHER), "5", "2026-01-01T00:00:00.000000Z", 2, 0)
        } else {
            renewed_at.get_or_insert_with(Instant::now);
            lease_json(Some(OTHER), "6", "2026-01-01T00:00:01.000000Z", 2, 0)
        };
        exchange.ok(&record);
    };
    let since_renewal = renewed_at.expect("the renewal was seen").elapsed();
    assert!(
        since_renewal >= LEASE_DURATION,
        "taken over {since_renewal:?} after the holder's renewal"
    );
    assert_our_record(&take, Some("6"), 1);
    take.fail(409, "Conflict", "the object has been modified");
    // Lost the race: read again, not leading.
    server.expect(Method::GET, LEASE).await.ok(&lease_json(
        Some(OTHER),
        "7",
        "2026-01-01T00:00:05.000000Z",
        2,
        1,
    ));
    assert!(!leadership.is_leader());
    task.abort();
}

#[tokio::test]
async fn a_free_lease_is_taken_at_once() {
    let (client, mut server) = kube_mock::pair();
    // Retries slow enough that "at once" cannot be a retry.
    let mut slow = config();
    slow.retry_every = Duration::from_secs(1);
    let (leadership, task) = lease::spawn(client, slow);
    // Released by its last holder: no holderIdentity.
    server.expect(Method::GET, LEASE).await.ok(&lease_json(
        None,
        "3",
        "2026-01-01T00:00:00.000000Z",
        1,
        2,
    ));
    let answered = Instant::now();
    let take = server.expect(Method::PUT, LEASE).await;
    assert!(
        answered.elapsed() < Duration::from_millis(700),
        "waited {:?}",
        answered.elapsed()
    );
    assert_our_record(&take, Some("3"), 3);
    let body = stored(&take.body, "4");
    take.ok(&body);
    flag_becomes(&leadership, true).await;

    // An empty holderIdentity is free as well.
    let (client, mut server) = kube_mock::pair();
    let (leadership, task2) = lease::spawn(client, config());
    let mut record = lease_json(None, "8", "2026-01-01T00:00:00.000000Z", 1, 0);
    record["spec"]["holderIdentity"] = json!("");
    server.expect(Method::GET, LEASE).await.ok(&record);
    let take = server.expect(Method::PUT, LEASE).await;
    assert_our_record(&take, Some("8"), 1);
    let body = stored(&take.body, "9");
    take.ok(&body);
    flag_becomes(&leadership, true).await;
    task.abort();
    task2.abort();
}

#[tokio::test]
async fn a_stalled_renewal_ends_leadership_at_the_deadline() {
    let (client, mut server) = kube_mock::pair();
    let (leadership, task) = lease::spawn(client, config());
    let answered = become_leader_by_creating(&mut server, &leadership).await;

    // The renewal hangs: the server never answers it.
    let stalled = server.expect(Method::PUT, LEASE).await;
    assert!(leadership.is_leader());
    // Block this (single) runtime thread past the deadline: the election task cannot run, so
    // the flag is still up, yet is_leader() already says no.
    let past_deadline = answered + LEADING_FOR + Duration::from_millis(100);
    std::thread::sleep(past_deadline.saturating_duration_since(Instant::now()));
    assert!(*leadership.changes().borrow(), "the task ran meanwhile");
    assert!(!leadership.is_leader(), "leading past the deadline");
    // Once the task runs, the flag follows at once, with the renewal still unanswered.
    tokio::time::timeout(
        Duration::from_millis(200),
        leadership.changes().wait_for(|l| !*l),
    )
    .await
    .expect("the flag stayed up past the deadline")
    .unwrap();
    stalled.fail(500, "InternalError", "too late");
    task.abort();
}

#[tokio::test]
async fn server_errors_past_the_deadline_end_leadership_and_a_renewal_restores_it() {
    let (client, mut server) = kube_mock::pair();
    let (leadership, task) = lease::spawn(client, config());
    let answered = become_leader_by_creating(&mut server, &leadership).await;

    let mut lost = leadership.changes();
    let lost = tokio::spawn(async move {
        lost.wait_for(|l| !*l).await.unwrap();
        Instant::now()
    });
    // Every request fails; leadership holds until its deadline, not one moment longer.
    let renew = server.expect(Method::PUT, LEASE).await;
    renew.fail(500, "InternalError", "etcdserver: request timed out");
    tokio::task::yield_now().await;
    assert!(
        leadership.is_leader(),
        "one failed renewal within the deadline"
    );
    let mut failures = 1;
    while !lost.is_finished() {
        let exchange = server.next().await;
        // After a failure the Lease is read again before any write.
        assert_eq!(
            (&exchange.method, exchange.path.as_str()),
            (&Method::GET, LEASE)
        );
        exchange.fail(500, "InternalError", "etcdserver: request timed out");
        failures += 1;
    }
    let lost_after = lost.await.unwrap() - answered;
    assert!(
        lost_after >= LEADING_FOR - Duration::from_millis(150)
            && lost_after <= LEADING_FOR + Duration::from_millis(300),
        "lost {lost_after:?} after the create, expected about {LEADING_FOR:?}"
    );
    assert!(!leadership.is_leader());
    assert!(failures >= 4, "only {failures} requests");

    // The API recovers: the Lease is still ours, a renewal makes us leader again.
    let read = server.expect(Method::GET, LEASE).await;
    assert!(!leadership.is_leader());
    read.ok(&lease_json(
        Some(ME),
        "1",
        "2026-01-01T00:00:00.000000Z",
        2,
        0,
    ));
    let renew = server.expect(Method::PUT, LEASE).await;
    assert_our_record(&renew, Some("1"), 0);
    let body = stored(&renew.body, "2");
    renew.ok(&body);
    flag_becomes(&leadership, true).await;
    task.abort();
}

#[tokio::test]
async fn aborting_the_election_ends_leadership_at_once() {
    let (client, mut server) = kube_mock::pair();
    let (leadership, task) = lease::spawn(client, config());
    become_leader_by_creating(&mut server, &leadership).await;
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert!(!leadership.is_leader());
    assert!(!*leadership.changes().borrow());
}

#[tokio::test]
async fn release_clears_the_holder_only_when_we_hold_it() {
    let config = config();

    // Ours: holderIdentity cleared, guarded by the resourceVersion read.
    let (client, mut server) = kube_mock::pair();
    let releasing = {
        let config = config.clone();
        tokio::spawn(async move { lease::release(&client, &config).await })
    };
    server.expect(Method::GET, LEASE).await.ok(&lease_json(
        Some(ME),
        "4",
        "2026-01-01T00:00:03.000000Z",
        2,
        1,
    ));
    let put = server.expect(Method::PUT, LEASE).await;
    put.assert_query("fieldManager", "meshplane");
    let body = put.body.clone();
    assert_eq!(body["metadata"]["resourceVersion"], "4", "{body}");
    assert!(body["spec"].get("holderIdentity").is_none(), "{body}");
    assert_eq!(body["spec"]["leaseDurationSeconds"], 1, "{body}");
    assert_eq!(body["spec"]["leaseTransitions"], 1, "{body}");
    micro(&body["spec"]["renewTime"]);
    put.ok(&stored(&body, "5"));
    releasing.await.unwrap().expect("released");

    // Another holder's: left alone.
    let (client, mut server) = kube_mock::pair();
    let releasing = {
        let config = config.clone();
        tokio::spawn(async move { lease::release(&client, &config).await })
    };
    server.expect(Method::GET, LEASE).await.ok(&lease_json(
        Some(OTHER),
        "4",
        "2026-01-01T00:00:03.000000Z",
        2,
        1,
    ));
    releasing.await.unwrap().expect("nothing to release");
    server.expect_silence(Duration::from_millis(100)).await;

    // Ours, but renewed meanwhile (409): read again; now another's, so left alone.
    let (client, mut server) = kube_mock::pair();
    let releasing = {
        let config = config.clone();
        tokio::spawn(async move { lease::release(&client, &config).await })
    };
    server.expect(Method::GET, LEASE).await.ok(&lease_json(
        Some(ME),
        "4",
        "2026-01-01T00:00:03.000000Z",
        2,
        1,
    ));
    server
        .expect(Method::PUT, LEASE)
        .await
        .fail(409, "Conflict", "the object has been modified");
    server.expect(Method::GET, LEASE).await.ok(&lease_json(
        Some(OTHER),
        "6",
        "2026-01-01T00:00:04.000000Z",
        2,
        2,
    ));
    releasing.await.unwrap().expect("nothing left to release");

    // Absent: nothing to do. A server error is reported.
    let (client, mut server) = kube_mock::pair();
    let releasing = {
        let config = config.clone();
        tokio::spawn(async move { lease::release(&client, &config).await })
    };
    server
        .expect(Method::GET, LEASE)
        .await
        .fail(404, "NotFound", "not found");
    releasing.await.unwrap().expect("absent");
    let (client, mut server) = kube_mock::pair();
    let releasing = tokio::spawn(async move { lease::release(&client, &config).await });
    server
        .expect(Method::GET, LEASE)
        .await
        .fail(500, "InternalError", "boom");
    let error = releasing.await.unwrap().unwrap_err().to_string();
    assert!(error.contains("500"), "{error}");
}

#[test]
fn validate_names_the_field_at_fault() {
    let valid = LeaseConfig::new(
        "meshplane".into(),
        "meshplane-leader".into(),
        "pod-1".into(),
    );
    valid.validate().expect("the defaults are valid");
    assert_eq!(valid.lease_duration, lease::DEFAULT_LEASE_DURATION);
    assert_eq!(valid.renew_every, lease::DEFAULT_RENEW_EVERY);
    assert_eq!(valid.retry_every, lease::DEFAULT_RETRY_EVERY);
    assert_eq!(
        (
            lease::DEFAULT_LEASE_DURATION,
            lease::DEFAULT_RENEW_EVERY,
            lease::DEFAULT_RETRY_EVERY
        ),
        (
            Duration::from_secs(15),
            Duration::from_secs(5),
            Duration::from_secs(2)
        )
    );
    LeaseConfig::new("a".into(), "leader.meshplane.io".into(), "x".into())
        .validate()
        .expect("a dotted name is a valid subdomain");

    type Change = fn(&mut LeaseConfig);
    let cases: [(&str, Change); 11] = [
        ("namespace", |c| c.namespace = String::new()),
        ("namespace", |c| c.namespace = "Mesh_Plane".into()),
        ("namespace", |c| c.namespace = "a.b".into()),
        ("name", |c| c.name = String::new()),
        ("name", |c| c.name = "-leader".into()),
        ("name", |c| c.name = "x".repeat(254)),
        ("identity", |c| c.identity = " ".into()),
        ("renew_every", |c| c.renew_every = c.lease_duration),
        ("renew_every", |c| c.renew_every = Duration::ZERO),
        ("retry_every", |c| c.retry_every = Duration::ZERO),
        ("lease_duration", |c| {
            c.lease_duration = Duration::from_millis(500);
            c.renew_every = Duration::from_millis(100);
        }),
    ];
    for (field, change) in cases {
        let mut config = valid.clone();
        change(&mut config);
        let error = config
            .validate()
            .expect_err(&format!("{field}: {config:?}"))
            .to_string();
        assert!(
            error.contains(&format!("lease: {field} ")),
            "{field}: {error}"
        );
    }
}

#[tokio::test]
async fn manual_and_always_leaderships() {
    let always = Leadership::always();
    assert!(always.is_leader());
    let mut changes = always.changes();
    assert!(*changes.borrow_and_update());
    // The channel stays open: the projector must not read "leadership ended".
    assert!(
        tokio::time::timeout(Duration::from_millis(50), changes.changed())
            .await
            .is_err()
    );
    assert!(always.clone().is_leader());

    let (manual, flag) = Leadership::manual(false);
    assert!(!manual.is_leader());
    let mut changes = manual.changes();
    flag.send(true).unwrap();
    changes.changed().await.unwrap();
    assert!(manual.is_leader());
    flag.send(false).unwrap();
    assert!(!manual.is_leader());
    drop(flag);
    changes.borrow_and_update();
    assert!(
        changes.changed().await.is_err(),
        "dropping the sender ends it"
    );
}
