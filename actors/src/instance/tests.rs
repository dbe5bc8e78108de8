//! given(events) → when(command) → then(events or rejection), for the instance concept.

use std::collections::BTreeMap;

use events::schema::{InstanceKey, MeshControllerApplied, ServiceApplied, Silence};
use events::{Event, ExpectedVersion};

use super::liveness::{judge, Seen, Verdict};
use super::query::InstanceFilter;
use super::*;
use crate::decider::RejectionKind;

const T0: i64 = 1_795_305_600_000;

fn key(id: &str) -> InstanceKey {
    InstanceKey::new("order", id)
}

fn service(name: &str, tenant: &str) -> Event {
    Event::ServiceApplied(ServiceApplied {
        name: name.into(),
        api_version: "mesh.megaease.com/v2alpha1".into(),
        labels: BTreeMap::new(),
        tenant: tenant.into(),
        spec: "{}".into(),
    })
}

fn controller(interval_ms: u64, dead_ms: u64) -> Event {
    Event::MeshControllerApplied(MeshControllerApplied {
        name: "easemesh-controller".into(),
        api_version: "mesh.megaease.com/v2alpha1".into(),
        labels: BTreeMap::new(),
        heartbeat_interval_ms: interval_ms,
        dead_record_ms: dead_ms,
        registry_type: "eureka".into(),
        spec: "{}".into(),
    })
}

fn registration(id: &str, ip: &str) -> Registration {
    Registration {
        key: key(id),
        ip: ip.into(),
        port: 13001,
        labels: BTreeMap::from([("version".into(), "v1".into())]),
        agent_type: "None".into(),
    }
}

/// Fold `history` (positions 1..; stream versions per stream).
fn given(history: &[Event]) -> InstanceState {
    let mut state = InstanceState::default();
    let mut versions: BTreeMap<String, u64> = BTreeMap::new();
    for (i, e) in history.iter().enumerate() {
        let v = versions.entry(e.stream()).or_default();
        *v += 1;
        let meta = Meta {
            position: i as u64 + 1,
            stream_version: *v,
            recorded_at_ms: T0,
        };
        Instances::evolve(&mut state, e.clone(), &meta);
    }
    state
}

fn when_at(
    history: &[Event],
    now_ms: i64,
    command: InstanceCommand,
) -> Result<Decision, Rejection> {
    Instances::decide(&given(history), command, &mut Ctx::new(now_ms, 7))
}

/// Decide at `now_ms` and return the history with the decision's events appended.
fn then_at(history: &[Event], now_ms: i64, command: InstanceCommand) -> Vec<Event> {
    let decision = when_at(history, now_ms, command).unwrap();
    [history.to_vec(), decision.events].concat()
}

fn registered_at(now_ms: i64) -> Vec<Event> {
    let base = vec![service("order", "takeaway"), controller(5_000, 60_000)];
    then_at(
        &base,
        now_ms,
        InstanceCommand::Register(registration("a", "10.0.0.1")),
    )
}

/// What the monitor would command for instance `a`, given its heartbeats as seen.
fn monitor(history: &[Event], seen: Seen, now_ms: i64) -> Option<InstanceCommand> {
    let state = given(history);
    let silent = state
        .get(&key("a"))
        .and_then(|i| i.silence.as_ref())
        .map(|s| s.last_heartbeat_ms);
    judge(seen, silent, now_ms, state.limits()).map(|v| match v {
        Verdict::OutOfService(silence) => InstanceCommand::MarkOutOfService {
            key: key("a"),
            silence,
        },
        Verdict::Expired(silence) => InstanceCommand::Expire {
            key: key("a"),
            silence,
        },
        Verdict::Recovered { heartbeat_ms } => InstanceCommand::MarkRecovered {
            key: key("a"),
            heartbeat_ms,
        },
    })
}

fn hb(at: i64) -> Seen {
    Seen {
        last_heartbeat_ms: at,
        heartbeat_seen: true,
    }
}

#[test]
fn registering_needs_the_service() {
    let err = when_at(
        &[],
        T0,
        InstanceCommand::Register(registration("a", "10.0.0.1")),
    )
    .unwrap_err();
    assert_eq!(err.kind, RejectionKind::NotFound);
    assert!(err.message.contains("service `order` not found"), "{err}");
}

#[test]
fn registration_sets_the_registry_time_and_is_up() {
    let history = registered_at(T0);
    let state = given(&history);
    let i = state.get(&key("a")).unwrap();
    assert_eq!(
        (i.registry_time_ms, i.last_heartbeat_ms, i.status()),
        (T0, T0, Status::Up)
    );
    assert_eq!(state.tenant_of(&key("a")), "takeaway");
    // The same registration again changes nothing; a new address re-registers.
    let d = when_at(
        &history,
        T0 + 5,
        InstanceCommand::Register(registration("a", "10.0.0.1")),
    )
    .unwrap();
    assert_eq!((d.outcome, d.events.len()), (Outcome::Unchanged, 0));
    let d = when_at(
        &history,
        T0 + 5,
        InstanceCommand::Register(registration("a", "10.0.0.2")),
    )
    .unwrap();
    assert_eq!(
        (d.outcome, d.expected),
        (Outcome::Configured, ExpectedVersion::Exact(1))
    );
}

#[test]
fn silent_for_two_intervals_goes_out_of_service_and_recovers_on_a_heartbeat() {
    let history = registered_at(T0);
    // Heartbeats every 5 s until T0 + 20 s, then silence.
    assert_eq!(monitor(&history, hb(T0 + 20_000), T0 + 29_999), None);
    let command =
        monitor(&history, hb(T0 + 20_000), T0 + 30_000).expect("out of service at 2 x interval");
    let history = then_at(&history, T0 + 30_000, command);
    let i = given(&history).get(&key("a")).cloned().unwrap();
    assert_eq!(i.status(), Status::OutOfService);
    assert_eq!(
        i.last_heartbeat_ms,
        T0 + 20_000,
        "the evidence carries the last heartbeat"
    );
    match history.last() {
        Some(Event::InstanceOutOfService(e)) => assert_eq!(
            e.silence,
            Silence {
                last_heartbeat_ms: T0 + 20_000,
                heartbeat_seen: true,
                deadline_ms: T0 + 30_000,
                detected_at_ms: T0 + 30_000
            }
        ),
        other => panic!("{other:?}"),
    }
    // Still silent: nothing more to decide until expiry.
    assert_eq!(monitor(&history, hb(T0 + 20_000), T0 + 40_000), None);
    // A heartbeat arrives: back up.
    let command = monitor(&history, hb(T0 + 41_000), T0 + 41_100).expect("recovery");
    let history = then_at(&history, T0 + 41_100, command);
    assert_eq!(given(&history).get(&key("a")).unwrap().status(), Status::Up);
}

#[test]
fn silent_for_the_dead_record_time_is_removed() {
    let history = registered_at(T0);
    let command = monitor(&history, hb(T0), T0 + 60_000).expect("expiry");
    assert!(matches!(command, InstanceCommand::Expire { .. }));
    let history = then_at(&history, T0 + 60_000, command);
    let state = given(&history);
    assert!(state.get(&key("a")).is_none());
    // A later re-registration continues the stream.
    let d = when_at(
        &history,
        T0 + 70_000,
        InstanceCommand::Register(registration("a", "10.0.0.1")),
    )
    .unwrap();
    assert_eq!(
        (d.outcome, d.expected),
        (Outcome::Created, ExpectedVersion::Any)
    );
}

#[test]
fn evidence_that_does_not_follow_from_the_rules_is_rejected() {
    let history = registered_at(T0);
    let early = Silence {
        last_heartbeat_ms: T0,
        heartbeat_seen: true,
        deadline_ms: T0 + 5_000, // one interval, not two
        detected_at_ms: T0 + 5_000,
    };
    let err = when_at(
        &history,
        T0 + 5_000,
        InstanceCommand::MarkOutOfService {
            key: key("a"),
            silence: early,
        },
    )
    .unwrap_err();
    assert_eq!(err.field.as_deref(), Some("silence.deadlineMs"), "{err}");
    let stale = Silence {
        last_heartbeat_ms: T0 - 20_000,
        heartbeat_seen: true,
        deadline_ms: T0 - 10_000,
        detected_at_ms: T0,
    };
    let err = when_at(
        &history,
        T0,
        InstanceCommand::MarkOutOfService {
            key: key("a"),
            silence: stale,
        },
    )
    .unwrap_err();
    assert_eq!(
        err.field.as_deref(),
        Some("silence.lastHeartbeatMs"),
        "{err}"
    );
    let premature = Silence {
        last_heartbeat_ms: T0,
        heartbeat_seen: true,
        deadline_ms: T0 + 10_000,
        detected_at_ms: T0 + 9_000,
    };
    let err = when_at(
        &history,
        T0 + 9_000,
        InstanceCommand::MarkOutOfService {
            key: key("a"),
            silence: premature,
        },
    )
    .unwrap_err();
    assert_eq!(err.field.as_deref(), Some("silence.detectedAtMs"), "{err}");
}

#[test]
fn offline_sticks_while_heartbeats_keep_coming_and_online_reverses_it() {
    let history = registered_at(T0);
    let history = then_at(
        &history,
        T0 + 1_000,
        InstanceCommand::TakeOffline {
            key: key("a"),
            reason: "maintenance".into(),
        },
    );
    assert_eq!(
        given(&history).get(&key("a")).unwrap().status(),
        Status::OutOfService
    );
    // Heartbeats keep coming for a long time: the monitor never decides anything (this is
    // EaseMesh's bug: its heartbeat check would flip the instance back to UP).
    for t in (T0 + 5_000..T0 + 55_000).step_by(5_000) {
        assert_eq!(monitor(&history, hb(t), t + 100), None, "at {t}");
    }
    // A re-registration does not undo it either.
    let history = then_at(
        &history,
        T0 + 2_000,
        InstanceCommand::Register(registration("a", "10.0.0.9")),
    );
    assert_eq!(
        given(&history).get(&key("a")).unwrap().status(),
        Status::OutOfService
    );
    // Taking it offline again changes nothing; bringing it back does.
    let d = when_at(
        &history,
        T0,
        InstanceCommand::TakeOffline {
            key: key("a"),
            reason: "again".into(),
        },
    )
    .unwrap();
    assert!(d.events.is_empty());
    let history = then_at(
        &history,
        T0 + 60_000,
        InstanceCommand::BringOnline(key("a")),
    );
    assert_eq!(given(&history).get(&key("a")).unwrap().status(), Status::Up);
}

#[test]
fn offline_and_silent_needs_both_cleared() {
    let history = registered_at(T0);
    let history = then_at(
        &history,
        T0,
        InstanceCommand::TakeOffline {
            key: key("a"),
            reason: String::new(),
        },
    );
    let command = monitor(&history, hb(T0), T0 + 10_000).unwrap();
    let history = then_at(&history, T0 + 10_000, command);
    let history = then_at(
        &history,
        T0 + 11_000,
        InstanceCommand::BringOnline(key("a")),
    );
    assert_eq!(
        given(&history).get(&key("a")).unwrap().status(),
        Status::OutOfService,
        "still silent"
    );
    let command = monitor(&history, hb(T0 + 12_000), T0 + 12_000).unwrap();
    let history = then_at(&history, T0 + 12_000, command);
    assert_eq!(given(&history).get(&key("a")).unwrap().status(), Status::Up);
}

#[test]
fn restart_grace_is_a_full_interval_and_is_marked_in_the_evidence() {
    let history = registered_at(T0);
    // The daemon restarts at T0 + 100 s having seen no heartbeat since.
    let start = T0 + 100_000;
    let grace = Seen {
        last_heartbeat_ms: start,
        heartbeat_seen: false,
    };
    assert_eq!(
        monitor(&history, grace, start + 5_000),
        None,
        "one full interval of grace"
    );
    match monitor(&history, grace, start + 10_000) {
        Some(InstanceCommand::MarkOutOfService { silence, .. }) => assert!(!silence.heartbeat_seen),
        other => panic!("{other:?}"),
    }
}

#[test]
fn filters_combine() {
    let mut history = registered_at(T0);
    history.push(service("pay", "bank"));
    let mut r = registration("b", "10.0.0.2");
    r.labels.insert("version".into(), "v2".into());
    history = then_at(&history, T0, InstanceCommand::Register(r));
    let mut p = registration("p1", "10.0.0.3");
    p.key = InstanceKey::new("pay", "p1");
    history = then_at(&history, T0, InstanceCommand::Register(p));
    history = then_at(
        &history,
        T0,
        InstanceCommand::TakeOffline {
            key: key("a"),
            reason: String::new(),
        },
    );
    let state = given(&history);
    let ids = |f: InstanceFilter| -> Vec<String> {
        state.query(&f).map(|(k, _)| k.to_string()).collect()
    };
    assert_eq!(
        ids(InstanceFilter::default()),
        ["order/a", "order/b", "pay/p1"]
    );
    assert_eq!(
        ids(InstanceFilter {
            service: Some("order".into()),
            ..Default::default()
        }),
        ["order/a", "order/b"]
    );
    assert_eq!(
        ids(InstanceFilter {
            tenant: Some("bank".into()),
            ..Default::default()
        }),
        ["pay/p1"]
    );
    assert_eq!(
        ids(InstanceFilter {
            labels: vec![("version".into(), "v1".into())],
            ..Default::default()
        }),
        ["order/a", "pay/p1"]
    );
    assert_eq!(
        ids(InstanceFilter {
            status: Some(Status::OutOfService),
            ..Default::default()
        }),
        ["order/a"]
    );
    assert_eq!(
        ids(InstanceFilter {
            service: Some("order".into()),
            status: Some(Status::Up),
            ..Default::default()
        }),
        ["order/b"]
    );
    // Paging continues after a key, with or without a service.
    let after = |service: &str, id: &str| Some(InstanceKey::new(service, id));
    assert_eq!(
        ids(InstanceFilter {
            after: after("order", "a"),
            ..Default::default()
        }),
        ["order/b", "pay/p1"]
    );
    assert_eq!(
        ids(InstanceFilter {
            service: Some("order".into()),
            after: after("order", "a"),
            ..Default::default()
        }),
        ["order/b"]
    );
    assert_eq!(
        ids(InstanceFilter {
            service: Some("pay".into()),
            after: after("order", "b"),
            ..Default::default()
        }),
        ["pay/p1"]
    );
    assert!(ids(InstanceFilter {
        service: Some("order".into()),
        after: after("pay", ""),
        ..Default::default()
    })
    .is_empty());
}

#[test]
fn commands_on_missing_instances_are_not_found() {
    let history = registered_at(T0);
    for command in [
        InstanceCommand::Deregister(key("zz")),
        InstanceCommand::TakeOffline {
            key: key("zz"),
            reason: String::new(),
        },
        InstanceCommand::BringOnline(key("zz")),
    ] {
        let err = when_at(&history, T0, command).unwrap_err();
        assert_eq!(err.kind, RejectionKind::NotFound, "{err}");
    }
}
