//! The bodies of the fuzz targets (`fuzz/`, issue 14): every decoder of outside input, driven
//! from raw bytes, with the properties that must hold beyond "does not panic". The cargo-fuzz
//! targets call these functions, and so does the stable corpus test
//! (`adapters/tests/fuzz_corpus.rs`, CI's short run) over the checked-in corpus and seeded
//! mutations of it. Nothing here is used by the daemon.
//!
//! Each body reads its first byte as a selector (which decoder, which content type) and the
//! rest as the input, so one corpus per target covers every variant of its decoder.

use std::sync::OnceLock;

use actix_web::test::TestRequest;
use actors::fence::attribution::{attribute, AccessLogEntry, Attribution, Skip};
use actors::fence::spec::check_host;
use actors::fence::{FenceCommand, Sighting};
use actors::instance::registration::Registration;
use actors::instance::InstanceCommand;
use actors::mesh::document_command;
use actors::service::{CatalogItem, CatalogKind, ServiceCommand, ServicePart};
use actors::{Ctx, Mesh, MeshCommand, Outcome};
use events::envelope::Envelope;
use events::frame;
use events::schema::{FenceKey, Via};
use events::Event;
use prost::Message;
use serde_json::{json, Value};

use crate::concepts::fence::als::{convert_message, proto::StreamAccessLogsMessage};
use crate::concepts::fence::entry::IntakeCounters;

/// The time every fuzzed decision is made at.
const NOW_MS: i64 = 1_796_302_473_000;

/// Content types the API's document decoder is asked with, by the first byte.
pub const CONTENT_TYPES: &[Option<&str>] = &[
    None,
    Some("application/json"),
    Some("application/yaml"),
    Some("text/plain"),
    Some("text/yaml; charset=utf-8"),
    Some("application/x-yaml"),
    Some("application/octet-stream"),
    Some("application/xml"),
];

fn split(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((&selector, rest)) => (selector, rest),
        None => (0, &[]),
    }
}

/// Two JSON values that are equal, numbers compared as `f64` to within an ulp (serde_json's
/// default float parsing is not exactly round-trip, and that is not meshplane's to fix).
pub fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x == y
                || match (x.as_f64(), y.as_f64()) {
                    (Some(x), Some(y)) => {
                        x == y || (x.to_bits() as i64 - y.to_bits() as i64).abs() <= 1
                    }
                    _ => false,
                }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_value(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_value(v, w)))
        }
        _ => a == b,
    }
}

/// The documents of an API body with the given `Content-Type` (`None`: sniffed), as `apply`
/// and `PUT` read them. The error is the API's message.
pub fn documents(content_type: Option<&str>, body: &[u8]) -> Result<Vec<Value>, String> {
    let mut request = TestRequest::default();
    if let Some(content_type) = content_type {
        request = request.insert_header(("content-type", content_type));
    }
    crate::api::body::documents(&request.to_http_request(), body).map_err(|e| e.to_string())
}

/// A mesh with a namespace, a tenant and a service of it, a registered instance, a fenced
/// caller and the Endpoints that attribute its address: the state fuzzed commands are decided
/// against, so they reach past "not found".
pub fn base_mesh() -> &'static Mesh {
    static MESH: OnceLock<Mesh> = OnceLock::new();
    MESH.get_or_init(|| {
        let mut mesh = Mesh::default();
        let docs = [
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}),
            json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "productpage", "namespace": "default"},
                "spec": {"selector": {"app": "productpage"}, "ports": [{"port": 9080, "name": "http"}]}}),
            json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "details", "namespace": "default"},
                "spec": {"selector": {"app": "details"}, "ports": [{"port": 9080, "name": "http"}]}}),
            json!({"apiVersion": "v1", "kind": "Endpoints",
                "metadata": {"name": "productpage", "namespace": "default"},
                "subsets": [{"addresses": [{"ip": "10.1.0.1"}], "ports": [{"port": 9080}]}]}),
            json!({"apiVersion": "microservice.slime.io/v1alpha1", "kind": "ServiceFence",
                "metadata": {"name": "productpage", "namespace": "default"},
                "spec": {"enable": true}}),
            json!({"apiVersion": "mesh.megaease.com/v1alpha1", "kind": "Tenant",
                "metadata": {"name": "takeaway"}, "spec": {"description": "fuzzing"}}),
            json!({"apiVersion": "mesh.megaease.com/v1alpha1", "kind": "Service",
                "metadata": {"name": "order"},
                "spec": {"registerTenant": "takeaway",
                    "sidecar": {"address": "127.0.0.1", "discoveryType": "eureka",
                        "egressPort": 13002, "egressProtocol": "http",
                        "ingressPort": 13001, "ingressProtocol": "http"}}}),
        ];
        mesh.apply_documents(&docs, &mut Ctx::new(NOW_MS, 1))
            .expect("the base documents apply");
        let registration = Registration::from_value(&json!({"serviceName": "order",
            "instanceID": "order-1", "ip": "10.0.0.1", "port": 13001, "labels": {"version": "v1"}}))
        .expect("the base registration is valid");
        mesh.execute(
            MeshCommand::Instance(InstanceCommand::Register(registration)),
            &mut Ctx::new(NOW_MS, 2),
        )
        .expect("the base registration is accepted");
        mesh
    })
}

/// Decide `command` on `mesh` and fold it; when it was accepted, deciding it again must change
/// nothing (re-applying unchanged input appends no event).
fn execute_idempotent(mesh: &mut Mesh, command: MeshCommand, what: &str) -> bool {
    let Ok(_) = mesh.execute(command.clone(), &mut Ctx::new(NOW_MS, 3)) else {
        return false;
    };
    if let Ok(again) = mesh.execute(command, &mut Ctx::new(NOW_MS + 1, 4)) {
        assert!(
            again.events.is_empty() && again.outcome == Outcome::Unchanged,
            "{what}: applying the same input again appended {:?}",
            again.events
        );
    }
    true
}

/// Target `manifest`: the API's documents decoder (by content type), the document's concept and
/// its validation (the kind table, the EaseMesh catalog), the mesh's decide and fold, the
/// projections of the result, and the manifest directory's reading of a file.
///
/// Properties: every decoded document, written out as JSON and as YAML, decodes again to the
/// same value; an accepted document applied twice appends nothing the second time; a stored
/// resource read back (as `GET` shows it) and applied again appends nothing.
pub fn manifest(data: &[u8]) {
    let (selector, body) = split(data);
    let content_type = CONTENT_TYPES[usize::from(selector) % CONTENT_TYPES.len()];
    // The manifest directory's reader sees the same text (a file meshplane may have written).
    if let Ok(text) = std::str::from_utf8(body) {
        let _ = crate::manifests::owned_object(text);
    }
    let Ok(docs) = documents(content_type, body) else {
        return;
    };
    let mut mesh = base_mesh().clone();
    let mut applied = false;
    for doc in docs.iter().take(16) {
        let json = serde_json::to_string(doc).expect("a decoded document serializes");
        let again = documents(Some("application/json"), json.as_bytes())
            .expect("a decoded document written as JSON decodes");
        let again_one = match &again[..] {
            [one] if !doc.is_array() => one,
            _ => &Value::Array(again.clone()),
        };
        assert!(
            same_value(doc, again_one),
            "JSON round trip changed {doc} into {again_one}"
        );
        if doc.is_object() {
            let yaml = serde_norway::to_string(doc).expect("a decoded document serializes");
            let again = documents(Some("application/yaml"), yaml.as_bytes())
                .expect("a decoded document written as YAML decodes");
            assert!(
                again.len() == 1 && same_value(doc, &again[0]),
                "YAML round trip changed {doc} into {again:?} (via {yaml:?})"
            );
        }
        let Ok(command) = document_command(doc) else {
            continue;
        };
        let key = match &command {
            MeshCommand::Resource(actors::resource::ResourceCommand::Apply(m)) => {
                Some(m.key.clone())
            }
            _ => None,
        };
        if !execute_idempotent(&mut mesh, command, "apply") {
            continue;
        }
        applied = true;
        if let Some(key) = key {
            let stored = mesh
                .resources
                .get(&key)
                .expect("an applied resource is stored");
            let object = stored.to_object(&key);
            let command = document_command(&object).unwrap_or_else(|r| {
                panic!("the stored {key} as read back is refused: {r} ({object})")
            });
            let before = mesh.position;
            let decision = mesh
                .execute(command, &mut Ctx::new(NOW_MS + 2, 5))
                .unwrap_or_else(|r| panic!("the stored {key} is refused when applied again: {r}"));
            assert!(
                decision.events.is_empty(),
                "the stored {key} applied again appended {:?} (at {before})",
                decision.events
            );
        }
    }
    if !applied {
        return;
    }
    // The manifest directory recognises every file it writes as its own, under the same name.
    let desired = projections::desired(&mesh);
    for (r, object) in &desired.kube {
        let text = crate::manifests::render(&object.to_value()).expect("a desired object renders");
        assert_eq!(
            crate::manifests::owned_object(&text).as_ref(),
            Some(r),
            "the manifest file of {r} is not recognised as its own:\n{text}"
        );
    }
}

/// Target `easemesh_body`: the EaseMesh API bodies and the registry's, by the first byte: POST/PUT
/// of tenants (0) and services (1), instance registration (2), heartbeat batches and the offline
/// body (3), a Prometheus query answer (4, what the fence's poller reads), POST/PUT of a
/// service's parts (5..). Each accepted body is decided on a mesh that has a tenant, a service
/// and an instance.
///
/// Properties: an item as `GET` shows it, `PUT` back, appends nothing; a registration or a
/// part applied twice appends nothing the second time.
pub fn easemesh_body(data: &[u8]) {
    let (selector, body) = split(data);
    let mut mesh = base_mesh().clone();
    let parts = ServicePart::ALL.len();
    let choice = usize::from(selector) % (5 + parts);
    match choice {
        3 => {
            use crate::concepts::instance::api::{OfflineBody, WireBeats};
            if let Ok(beats) = serde_json::from_slice::<WireBeats>(body) {
                for beat in &beats.heartbeats {
                    let _ = (beat.service_name.len(), beat.instance_id.len());
                }
            }
            if let Ok(value) = crate::api::body::json_body(body) {
                let _ = serde_json::from_value::<OfflineBody>(value);
            }
            return;
        }
        4 => {
            let _ = crate::concepts::fence::prometheus::hosts_from_response(body);
            return;
        }
        _ => {}
    }
    let Ok(value) = crate::api::body::json_body(body) else {
        return;
    };
    match choice {
        0 | 1 => {
            let kind = if choice == 0 {
                CatalogKind::Tenant
            } else {
                CatalogKind::Service
            };
            let path_name = value.get("name").and_then(Value::as_str).map(str::to_owned);
            for path in [None, path_name.as_deref(), Some("order")] {
                let Ok(item) = CatalogItem::from_api_body(kind, &value, path) else {
                    continue;
                };
                let name = item.reference().name;
                let update = matches!(
                    (kind, name.as_str()),
                    (CatalogKind::Service, "order") | (CatalogKind::Tenant, "takeaway")
                );
                let command = if update {
                    ServiceCommand::Update(Box::new(item))
                } else {
                    ServiceCommand::Create(Box::new(item))
                };
                if mesh
                    .execute(MeshCommand::Service(command), &mut Ctx::new(NOW_MS, 3))
                    .is_err()
                {
                    continue;
                }
                // What a GET answers, PUT back, changes nothing.
                let shown: Option<Value> = match kind {
                    CatalogKind::Tenant => {
                        projections::registry::tenant_value(&mesh.services, &name)
                            .map(|t| serde_json::from_str(&t).expect("a tenant value is JSON"))
                    }
                    _ => projections::registry::service_value(&mesh.services, &name),
                };
                let mut shown = shown.expect("an accepted item is shown");
                // A tenant's `services` are the server's (from each service's registerTenant):
                // a client sends them back empty.
                if let Some(services) = shown.get_mut("services") {
                    *services = json!([]);
                }
                let item = CatalogItem::from_api_body(kind, &shown, Some(&name))
                    .unwrap_or_else(|r| panic!("the shown {name} is refused: {r} ({shown})"));
                let decision = mesh
                    .execute(
                        MeshCommand::Service(ServiceCommand::Update(Box::new(item))),
                        &mut Ctx::new(NOW_MS + 1, 4),
                    )
                    .unwrap_or_else(|r| panic!("the shown {name} is refused on PUT: {r}"));
                assert!(
                    decision.events.is_empty(),
                    "PUT of the shown {name} appended {:?}",
                    decision.events
                );
                mesh = base_mesh().clone();
            }
        }
        2 => {
            let Ok(registration) = Registration::from_value(&value) else {
                return;
            };
            execute_idempotent(
                &mut mesh,
                MeshCommand::Instance(InstanceCommand::Register(registration)),
                "register",
            );
        }
        _ => {
            let part = ServicePart::ALL[choice - 5];
            let Ok(item) =
                CatalogItem::from_api_body(CatalogKind::Part(part), &value, Some("order"))
            else {
                return;
            };
            execute_idempotent(
                &mut mesh,
                MeshCommand::Service(ServiceCommand::Apply(vec![item])),
                "part",
            );
        }
    }
    let _ = projections::desired_etcd(&mesh);
}

/// Attribute decoded access-log entries as the intake does, and hand the sightings to the
/// fence's decider. Every learned host passes the fence's host check.
fn learn(entries: &[AccessLogEntry]) {
    let mut mesh = base_mesh().clone();
    let lookup = Attribution::from_mesh(&mesh);
    let mut attributed = Vec::new();
    for entry in entries {
        let before = attributed.len();
        match attribute(entry, &lookup, &mut attributed) {
            Ok(()) => assert!(attributed.len() > before, "attributed to nobody"),
            Err(Skip::NotInbound | Skip::UnknownSource | Skip::UnknownDestination) => {
                assert_eq!(attributed.len(), before, "a skipped entry left sightings");
            }
        }
    }
    let mut by_fence: std::collections::BTreeMap<FenceKey, Vec<Sighting>> = Default::default();
    for a in attributed {
        assert!(
            check_host(&a.host).is_ok(),
            "learned a bad host {:?}",
            a.host
        );
        by_fence.entry(a.fence).or_default().push(Sighting {
            host: a.host,
            seen_at_ms: NOW_MS,
            source: a.source,
            raw: a.raw,
        });
    }
    for (fence, sightings) in by_fence {
        let command = MeshCommand::Fence(FenceCommand::Observe {
            fence,
            via: Via::AccessLog,
            sightings,
        });
        let _ = mesh.execute(command, &mut Ctx::new(NOW_MS, 5));
    }
}

/// Target `access_log_line`: a JSON-lines access-log body (`POST /api/v1/accesslog`), then
/// attribution and learning. Counts: every non-blank line is received, and every one not
/// returned is malformed; every returned entry names an authority.
pub fn access_log_line(data: &[u8]) {
    let counters = IntakeCounters::default();
    let entries = crate::concepts::fence::jsonl::parse_lines(data, &counters);
    let counts = counters.snapshot();
    let lines = data
        .split(|&b| b == b'\n')
        .filter(|l| !l.trim_ascii().is_empty())
        .count() as u64;
    assert_eq!(
        counts.received, lines,
        "received counts every non-blank line"
    );
    assert_eq!(
        counts.malformed,
        lines - entries.len() as u64,
        "malformed counts the lines not returned"
    );
    for entry in &entries {
        assert!(!entry.authority.is_empty(), "an entry without authority");
    }
    // The body reads as its lines one at a time; each start time agrees with an independent
    // RFC 3339 parser.
    let mut one_by_one = Vec::new();
    for line in data.split(|&b| b == b'\n') {
        let line = line.trim_ascii();
        let one = crate::concepts::fence::jsonl::parse_lines(line, &IntakeCounters::default());
        if let [entry] = &one[..] {
            // (Not every accepted line is a `Value`: the fields it ignores are skipped unchecked,
            // a lone surrogate escape in one too.)
            let json: Option<Value> = serde_json::from_slice(line).ok();
            if let Some(text) = json.as_ref().and_then(|j| j.get("start_time")?.as_str()) {
                check_rfc3339(text, entry.start_time_ms);
            }
        }
        one_by_one.extend(one);
    }
    assert_eq!(
        one_by_one, entries,
        "the body and its lines one by one differ"
    );
    learn(&entries);
}

/// `parsed_ms` (meshplane's reading of an accepted RFC 3339 `text`) agrees with jiff's, for
/// the times both read the same way (after 1970, no leap second).
fn check_rfc3339(text: &str, parsed_ms: i64) {
    let Ok(t) = text.parse::<jiff::Timestamp>() else {
        return;
    };
    let leap = text.as_bytes().get(17..19) == Some(b"60");
    if leap || parsed_ms < 0 || t.as_millisecond() < 0 {
        return;
    }
    assert_eq!(
        parsed_ms,
        t.as_millisecond(),
        "start_time {text:?} read as {parsed_ms} ms, jiff reads {t}"
    );
}

/// Target `access_log_grpc`: an Envoy ALS `StreamAccessLogsMessage` as tonic hands it over
/// (prost-decoded), converted to entries, then attributed and learned. A decoded message
/// encodes and decodes again to itself; the counts add up.
pub fn access_log_grpc(data: &[u8]) {
    let Ok(message) = StreamAccessLogsMessage::decode(data) else {
        return;
    };
    let again = StreamAccessLogsMessage::decode(message.encode_to_vec().as_slice())
        .expect("a decoded message encodes and decodes");
    assert_eq!(message, again, "the message changed in a round trip");
    use crate::concepts::fence::als::proto::stream_access_logs_message::LogEntries;
    let (http, tcp) = match &message.log_entries {
        Some(LogEntries::HttpLogs(h)) => (h.log_entry.len() as u64, 0),
        Some(LogEntries::TcpLogs(t)) => (0, t.log_entry.len() as u64),
        None => (0, 0),
    };
    let counters = IntakeCounters::default();
    let entries = convert_message(message, &counters);
    let counts = counters.snapshot();
    assert_eq!(counts.received, http + tcp);
    assert_eq!(counts.not_inbound, tcp);
    assert_eq!(counts.malformed, http - entries.len() as u64);
    learn(&entries);
}

/// Check one decoded envelope: its frame decodes back to it, its payload decodes to an event
/// that encodes and decodes to itself, its JSON line imports back to it, and it folds.
fn check_envelope(envelope: &Envelope, mesh: &mut Mesh) {
    let encoded = frame::encode(envelope).expect("a decoded envelope encodes");
    let again = frame::decode(envelope.position, &encoded).expect("an encoded frame decodes");
    assert_eq!(
        &again, envelope,
        "the frame round trip changed the envelope"
    );
    if let Ok(line) = events::jsonl::Line::from_envelope(envelope) {
        let text = serde_json::to_string(&line).expect("a line serializes");
        let line: events::jsonl::Line = serde_json::from_str(&text).expect("a line parses");
        let imported = line.into_envelope().expect("an exported line imports back");
        // The JSON form is canonical: one more round trip is exact.
        let encoded = events::jsonl::Line::from_envelope(&imported).expect("it exports again");
        assert_eq!(
            serde_json::to_string(&encoded).expect("a line serializes"),
            text,
            "export → import → export changed the line"
        );
    }
    if let Ok(event) = envelope.decode() {
        let payload = event.encode().expect("a decoded event encodes");
        let back = Event::decode(event.event_type(), event.schema_version(), &payload)
            .expect("an encoded event decodes");
        assert_eq!(back, event, "the payload round trip changed the event");
        // Folding is total: any stored event folds, whatever the state.
        let mut position = envelope.clone();
        position.position = mesh.position + 1;
        let _ = mesh.apply(&position);
    }
}

/// Target `frame`: what reads the bytes of a log. By the first byte: a run of frames as a log
/// file holds them (each decoded in turn, as recovery scans); a record body with its header and
/// checksum made valid (so the fuzzer reaches the envelope and payload decoders); or a JSON
/// Lines export being imported. Every decoded record re-encodes, re-imports and folds.
pub fn frame(data: &[u8]) {
    let (selector, rest) = split(data);
    let mut mesh = base_mesh().clone();
    // Salvage reads any bytes (a damaged file): it never panics, and what it finds is only
    // records that decode where it says they are.
    for (position, envelope) in &events::salvage::scan(rest).records {
        assert_eq!(*position, envelope.position);
        let framed = frame::encode(envelope).expect("a salvaged envelope encodes");
        frame::verify(*position, &framed).expect("a salvaged record verifies");
    }
    match selector % 3 {
        0 => {
            let mut at = 0;
            while at < rest.len() {
                let Ok((envelope, used)) = frame::decode_prefix(&rest[at..]) else {
                    break;
                };
                assert!(used >= frame::HEADER_LEN && at + used <= rest.len());
                let exact = frame::decode(envelope.position, &rest[at..at + used])
                    .expect("a frame that decodes as a prefix decodes on its own");
                assert_eq!(exact, envelope);
                // The open's cheap check passes every record the full decode accepts.
                frame::verify(envelope.position, &rest[at..at + used])
                    .expect("a frame that decodes verifies");
                // postcard reads non-minimal varints, so a crafted frame may be longer than
                // its canonical encoding; never shorter.
                let canonical = frame::encode(&envelope).expect("a decoded envelope encodes");
                assert!(canonical.len() <= used, "re-encoding grew the record");
                check_envelope(&envelope, &mut mesh);
                at += used;
            }
        }
        1 => {
            let mut framed = Vec::with_capacity(frame::HEADER_LEN + rest.len());
            framed.extend_from_slice(&(rest.len() as u32).to_le_bytes());
            framed.extend_from_slice(&crc32c::crc32c(rest).to_le_bytes());
            framed.extend_from_slice(rest);
            if let Ok((envelope, used)) = frame::decode_prefix(&framed) {
                assert_eq!(used, framed.len());
                check_envelope(&envelope, &mut mesh);
            }
        }
        _ => {
            let mut reader = rest;
            if let Ok(envelopes) = events::jsonl::parse(&mut reader) {
                for envelope in &envelopes {
                    check_envelope(envelope, &mut mesh);
                }
            }
        }
    }
}
