//! Given observed events, when a watcher reports, then only real changes are events.

use super::*;

fn pod(name: &str, ip: &str) -> Observation {
    Observation {
        key: ResourceKey::new("Pod", "shop", name),
        api_version: "v1".into(),
        uid: format!("uid-{name}"),
        labels: BTreeMap::from([("app".into(), "web".into())]),
        annotations: BTreeMap::new(),
        owners: Vec::new(),
        body: format!(r#"{{"status":{{"podIP":"{ip}"}}}}"#),
    }
}

fn given(history: &[Event]) -> ClusterState {
    let mut state = ClusterState::default();
    for (i, e) in history.iter().enumerate() {
        let meta = Meta {
            position: i as u64 + 1,
            stream_version: i as u64 + 1,
            recorded_at_ms: 0,
        };
        Cluster::evolve(&mut state, e.clone(), &meta);
    }
    state
}

fn when(state: &ClusterState, command: ClusterCommand) -> Result<Decision, Rejection> {
    Cluster::decide(state, command, &mut Ctx::new(0, 1))
}

fn observed(o: &Observation) -> Event {
    Event::ObjectObserved(ObjectObserved {
        key: o.key.clone(),
        api_version: o.api_version.clone(),
        uid: o.uid.clone(),
        labels: o.labels.clone(),
        annotations: o.annotations.clone(),
        owners: o.owners.clone(),
        body: o.body.clone(),
    })
}

fn observe(objects: Vec<Observation>) -> ClusterCommand {
    ClusterCommand::Observe {
        kind: "Pod".into(),
        objects,
    }
}

#[test]
fn a_new_object_is_observed_and_an_unchanged_one_appends_nothing() {
    let a = pod("a", "10.0.0.1");
    let d = when(&given(&[]), observe(vec![a.clone()])).unwrap();
    assert_eq!(d.events, vec![observed(&a)]);
    assert_eq!(d.stream, "cluster/Pod");
    assert_eq!(d.expected, events::ExpectedVersion::NoStream);

    let state = given(&[observed(&a)]);
    let d = when(&state, observe(vec![a.clone()])).unwrap();
    assert!(d.events.is_empty());
    assert_eq!(d.outcome, Outcome::Unchanged);
    assert_eq!(d.expected, events::ExpectedVersion::Exact(1));
}

#[test]
fn a_changed_field_or_a_new_incarnation_is_an_event() {
    let a = pod("a", "10.0.0.1");
    let state = given(&[observed(&a)]);
    let moved = pod("a", "10.0.0.2");
    assert_eq!(
        when(&state, observe(vec![moved.clone()])).unwrap().events,
        vec![observed(&moved)]
    );
    let mut recreated = a.clone();
    recreated.uid = "uid-a-2".into();
    assert_eq!(
        when(&state, observe(vec![recreated.clone()]))
            .unwrap()
            .events,
        vec![observed(&recreated)]
    );
}

#[test]
fn within_one_batch_the_last_observation_of_an_object_counts() {
    let first = pod("a", "10.0.0.1");
    let last = pod("a", "10.0.0.9");
    let d = when(&given(&[]), observe(vec![first, last.clone()])).unwrap();
    assert_eq!(d.events, vec![observed(&last)]);
}

#[test]
fn a_complete_relist_removes_exactly_the_objects_it_no_longer_holds() {
    let (a, b) = (pod("a", "10.0.0.1"), pod("b", "10.0.0.2"));
    let mut svc = pod("web", "");
    svc.key.kind = "Service".into();
    let state = given(&[observed(&a), observed(&b), observed(&svc)]);
    let d = when(
        &state,
        ClusterCommand::Relisted {
            kind: "Pod".into(),
            present: BTreeSet::from([a.key.clone()]),
        },
    )
    .unwrap();
    assert_eq!(
        d.events,
        vec![Event::ObjectGone(ObjectGone {
            key: b.key.clone(),
            uid: "uid-b".into()
        })]
    );
    // A relist holding everything appends nothing.
    let d = when(
        &state,
        ClusterCommand::Relisted {
            kind: "Pod".into(),
            present: BTreeSet::from([a.key.clone(), b.key.clone()]),
        },
    )
    .unwrap();
    assert!(d.events.is_empty());
}

#[test]
fn a_delete_of_an_unknown_object_appends_nothing() {
    let a = pod("a", "10.0.0.1");
    let state = given(&[observed(&a)]);
    let gone = |keys| ClusterCommand::Gone {
        kind: "Pod".into(),
        keys,
    };
    let d = when(&state, gone(vec![ResourceKey::new("Pod", "shop", "zzz")])).unwrap();
    assert!(d.events.is_empty());
    let d = when(&state, gone(vec![a.key.clone(), a.key.clone()])).unwrap();
    assert_eq!(d.events.len(), 1);
    let state = given(&[
        observed(&a),
        Event::ObjectGone(ObjectGone {
            key: a.key.clone(),
            uid: a.uid.clone(),
        }),
    ]);
    assert!(state.objects.is_empty());
    assert_eq!(state.versions["Pod"], 2);
}

#[test]
fn a_batch_naming_another_kind_is_refused_with_the_field() {
    let mut a = pod("a", "10.0.0.1");
    a.key.kind = "Service".into();
    let err = when(&given(&[]), observe(vec![pod("b", "1"), a])).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("objects[1].key.kind"));
}

#[test]
fn of_kind_lists_only_that_kind_in_key_order() {
    let mut svc = pod("web", "");
    svc.key.kind = "Service".into();
    let state = given(&[
        observed(&pod("b", "1")),
        observed(&svc),
        observed(&pod("a", "2")),
    ]);
    let names: Vec<&str> = state.of_kind("Pod").map(|(k, _)| k.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    let object = state.get(&svc.key).unwrap().to_object(&svc.key);
    assert_eq!(object["metadata"]["uid"], "uid-web");
    assert_eq!(object["kind"], "Service");
}
