//! JSON Lines export and import beyond the per-backend round trip of the conformance suite:
//! across backends, and the input checks of `parse` and `import`.

use events::backend::memory::MemoryBackend;
use events::jsonl::{self, Line};
use events::{Envelope, Event, EventStore, ExpectedVersion, NewEvent, StoreError, SyncLog};
use uuid::Uuid;

fn sample_log() -> SyncLog<MemoryBackend> {
    let log = SyncLog::open(MemoryBackend::new()).unwrap();
    let mut n = 0u128;
    for round in 0..3 {
        for sample in Event::samples() {
            n += 1;
            let e =
                NewEvent::encode(&sample, Uuid::from_u128(n), 1_700_000_000_000 + round).unwrap();
            log.append(
                &format!("{}#{round}", sample.stream()),
                ExpectedVersion::Any,
                vec![e],
            )
            .unwrap();
        }
        let e = NewEvent::encode(&Event::samples()[0], Uuid::from_u128(1000 + n), -5).unwrap();
        log.append("shared", ExpectedVersion::Any, vec![e]).unwrap();
    }
    log
}

fn export(store: &dyn EventStore) -> String {
    let mut out = Vec::new();
    jsonl::export(store, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn all(store: &dyn EventStore) -> Vec<Envelope> {
    store.read_from(1, usize::MAX).unwrap()
}

fn parse_error(text: &str) -> (usize, String) {
    match jsonl::parse(&mut text.as_bytes()) {
        Err(StoreError::Jsonl { line, reason }) => (line, reason),
        other => panic!("expected a JSONL error, got {other:?}"),
    }
}

#[test]
fn an_empty_log_exports_nothing() {
    let log = SyncLog::open(MemoryBackend::new()).unwrap();
    assert_eq!(export(&log), "");
    assert!(jsonl::parse(&mut "".as_bytes()).unwrap().is_empty());
}

#[test]
fn lines_carry_every_envelope_field_and_the_payload_as_json() {
    let log = sample_log();
    let text = export(&log);
    let stored = all(&log);
    assert_eq!(text.lines().count(), stored.len());
    for (line, envelope) in text.lines().zip(&stored) {
        let parsed: Line = serde_json::from_str(line).unwrap();
        assert_eq!(parsed.position, envelope.position);
        assert_eq!(parsed.stream, envelope.stream);
        assert_eq!(parsed.event_id, envelope.event_id);
        assert_eq!(parsed.recorded_at_ms, envelope.recorded_at_ms);
        let json = Event::payload_to_json(
            &envelope.event_type,
            envelope.schema_version,
            &envelope.payload,
        )
        .unwrap();
        assert_eq!(parsed.data, json);
        assert_eq!(parsed.into_envelope().unwrap(), *envelope);
    }
}

#[cfg(feature = "redb")]
#[test]
fn memory_to_redb_and_back() {
    use events::backend::redb::RedbBackend;
    let source = sample_log();
    let text = export(&source);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("imported.redb");
    {
        let log = events::Log::open(RedbBackend::open(&path).unwrap()).unwrap();
        let parsed = jsonl::parse(&mut text.as_bytes()).unwrap();
        assert_eq!(jsonl::import(&log, parsed).unwrap(), source.head());
    }
    let log = SyncLog::open(RedbBackend::open(&path).unwrap()).unwrap();
    assert_eq!(all(&log), all(&source));
    assert_eq!(
        export(&log),
        text,
        "the same log exports the same bytes from any backend"
    );
    assert_eq!(log.stream_version("shared").unwrap(), 3);
}

#[test]
fn import_needs_an_empty_log() {
    let source = sample_log();
    let parsed = jsonl::parse(&mut export(&source).as_bytes()).unwrap();
    match jsonl::import(&source, parsed) {
        Err(StoreError::InvalidAppend(msg)) => assert!(msg.contains("empty log"), "{msg}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn parse_rejects_gaps_version_jumps_and_unknown_fields() {
    let text = export(&sample_log());
    let lines: Vec<&str> = text.lines().collect();

    let skipped = format!("{}\n{}\n", lines[0], lines[2]);
    let (line, reason) = parse_error(&skipped);
    assert_eq!(line, 2);
    assert!(reason.contains("position is 3, expected 2"), "{reason}");

    let mut value: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
    value["stream_version"] = 7.into();
    let (line, reason) = parse_error(&format!("{}\n{value}\n", lines[0]));
    assert_eq!(line, 2);
    assert!(reason.contains("version is 7, expected 2"), "{reason}");

    let mut value: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    value["extra"] = true.into();
    assert_eq!(
        parse_error(&value.to_string()).0,
        1,
        "unknown fields are refused"
    );

    let mut value: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    value["event_type"] = "no.such.type".into();
    assert_eq!(
        parse_error(&value.to_string()).0,
        1,
        "unknown event types are refused"
    );

    // Blank lines are ignored, and line numbers still count them.
    let blank = format!("\n{}\n\n{}\n", lines[0], lines[1]);
    assert_eq!(jsonl::parse(&mut blank.as_bytes()).unwrap().len(), 2);
    let (line, _) = parse_error(&format!("\n{}\n\nnot json\n", lines[0]));
    assert_eq!(line, 4);
}
