//! A small in-process Kubernetes API server for the end-to-end tests of `meshplane run
//! --kubeconfig`: plain HTTP/1.1 on 127.0.0.1, objects kept in memory by path, lists with
//! equality label selectors, watches that stream the changes after a resourceVersion,
//! server-side apply (the applied object replaces the stored one), status subresources,
//! create/replace with resourceVersion checks (Leases), delete. Every request is recorded so a
//! test can assert what the daemon sent.
//!
//! It is not a conformant API server (no field ownership merge, no admission, no schema): just
//! enough of the protocol to drive the real binary through kube-rs from end to end, which the
//! unit tests (tower-test, in `adapters/tests/kube_*.rs`) cannot do.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How long one watch request stays open before the server ends it (the client re-watches).
const WATCH_SPAN: Duration = Duration::from_secs(5);

/// One request the daemon made.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub content_type: Option<String>,
    /// The bearer token, which tells apart daemons given different kubeconfigs.
    pub token: Option<String>,
    pub body: Value,
}

impl Recorded {
    /// A write (anything but GET), Leases excluded: what a follower must never send.
    pub fn is_object_write(&self) -> bool {
        self.method != "GET" && !self.path.contains("/leases")
    }
}

/// Where an object lives: API prefix (`/api/v1`, `/apis/apps/v1`), plural, namespace, name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Slot {
    prefix: String,
    plural: String,
    namespace: String,
    name: String,
}

#[derive(Default)]
struct State {
    objects: BTreeMap<Slot, Value>,
    resource_version: u64,
    /// Every change: (resourceVersion, type, slot, object).
    changes: Vec<(u64, &'static str, Slot, Value)>,
    requests: Vec<Recorded>,
    next_uid: u64,
}

impl State {
    fn bump(&mut self) -> u64 {
        self.resource_version += 1;
        self.resource_version
    }

    fn store(&mut self, slot: Slot, mut object: Value) -> Value {
        let rv = self.bump();
        let existing_uid = self
            .objects
            .get(&slot)
            .and_then(|o| o["metadata"]["uid"].as_str().map(str::to_string));
        let uid = existing_uid.unwrap_or_else(|| {
            self.next_uid += 1;
            format!("00000000-0000-4000-8000-{:012}", self.next_uid)
        });
        let kind = if self.objects.contains_key(&slot) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        let metadata = object["metadata"].as_object_mut().expect("metadata");
        metadata.insert("uid".into(), uid.into());
        metadata.insert("resourceVersion".into(), rv.to_string().into());
        metadata.insert("name".into(), slot.name.clone().into());
        if !slot.namespace.is_empty() {
            metadata.insert("namespace".into(), slot.namespace.clone().into());
        }
        self.objects.insert(slot.clone(), object.clone());
        self.changes.push((rv, kind, slot, object.clone()));
        object
    }
}

/// The server; runs until the process ends.
#[derive(Clone)]
pub struct FakeApiServer {
    state: Arc<(Mutex<State>, Condvar)>,
    pub port: u16,
}

impl FakeApiServer {
    pub fn start() -> FakeApiServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake API server");
        let port = listener.local_addr().unwrap().port();
        let server = FakeApiServer {
            state: Arc::new((Mutex::new(State::default()), Condvar::new())),
            port,
        };
        let accepting = server.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let connection = accepting.clone();
                std::thread::spawn(move || connection.serve(stream));
            }
        });
        server
    }

    /// A kubeconfig for this server (written by the test into its sandbox).
    pub fn kubeconfig(&self, token: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://127.0.0.1:{}\nusers:\n- name: fake\n  user:\n    token: {token}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: default\ncurrent-context: fake\n",
            self.port
        )
    }

    /// Delete an object as another client would.
    pub fn delete(&self, path: &str) {
        let (slot, _) = parse(path).expect("an item path");
        let mut state = self.lock();
        if let Some(object) = state.objects.remove(&slot) {
            let rv = state.bump();
            state.changes.push((rv, "DELETED", slot, object));
        }
        drop(state);
        self.state.1.notify_all();
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    /// The stored object at an item path (`/apis/.../namespaces/ns/sidecars/web`).
    pub fn object(&self, path: &str) -> Option<Value> {
        let (slot, _) = parse(path)?;
        self.lock().objects.get(&slot).cloned()
    }

    /// Create or replace an object as another client would (its watchers see the change).
    pub fn put(&self, path: &str, object: Value) -> Value {
        let (slot, _) = parse(path).expect("an item path");
        let stored = self.lock().store(slot, object);
        self.state.1.notify_all();
        stored
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.0.lock().expect("fake API server lock")
    }

    fn serve(&self, stream: TcpStream) {
        let mut reader = BufReader::new(stream.try_clone().expect("clone the stream"));
        let mut writer = stream;
        loop {
            let Some(request) = read_request(&mut reader) else {
                return;
            };
            if self.answer(request, &mut writer).is_err() {
                return;
            }
        }
    }

    fn answer(&self, request: Recorded, out: &mut TcpStream) -> std::io::Result<()> {
        self.lock().requests.push(request.clone());
        let Some((slot, subresource)) = parse(&request.path) else {
            return respond(out, 404, &status(404, "NotFound", "no such path"));
        };
        let collection = slot.name.is_empty();
        match (request.method.as_str(), collection) {
            ("GET", true) if request.query.get("watch").is_some_and(|w| w == "true") => {
                self.watch(&slot, &request.query, out)
            }
            ("GET", true) => {
                let state = self.lock();
                let selector = request.query.get("labelSelector").cloned();
                let items: Vec<Value> = state
                    .objects
                    .iter()
                    .filter(|(s, o)| in_collection(&slot, s) && selected(selector.as_deref(), o))
                    .map(|(_, o)| o.clone())
                    .collect();
                let list = json!({"apiVersion": "v1", "kind": "List",
                    "metadata": {"resourceVersion": state.resource_version.to_string()},
                    "items": items});
                drop(state);
                respond(out, 200, &list)
            }
            ("GET", false) => match self.lock().objects.get(&slot).cloned() {
                Some(object) => respond(out, 200, &object),
                None => respond(out, 404, &status(404, "NotFound", "not found")),
            },
            ("PATCH", false) => {
                let mut state = self.lock();
                let answer = if subresource.as_deref() == Some("status") {
                    match state.objects.get(&slot).cloned() {
                        Some(mut object) => {
                            object["status"] = request.body["status"].clone();
                            (200, state.store(slot, object))
                        }
                        None => (404, status(404, "NotFound", "not found")),
                    }
                } else {
                    (200, state.store(slot, request.body.clone()))
                };
                drop(state);
                self.state.1.notify_all();
                respond(out, answer.0, &answer.1)
            }
            ("POST", true) => {
                let name = request.body["metadata"]["name"]
                    .as_str()
                    .or(request.body["metadata"]["generateName"].as_str())
                    .unwrap_or("unnamed")
                    .to_string();
                let item = Slot { name, ..slot };
                let mut state = self.lock();
                let answer = if state.objects.contains_key(&item) {
                    (409, status(409, "AlreadyExists", "already exists"))
                } else {
                    (201, state.store(item, request.body.clone()))
                };
                drop(state);
                self.state.1.notify_all();
                respond(out, answer.0, &answer.1)
            }
            ("PUT", false) => {
                let mut state = self.lock();
                let current = state.objects.get(&slot).map(|o| {
                    o["metadata"]["resourceVersion"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string()
                });
                let sent = request.body["metadata"]["resourceVersion"].as_str();
                let answer = match (current, sent) {
                    (None, _) => (404, status(404, "NotFound", "not found")),
                    (Some(current), Some(sent)) if current != sent => {
                        (409, status(409, "Conflict", "the object has been modified"))
                    }
                    _ => (200, state.store(slot, request.body.clone())),
                };
                drop(state);
                self.state.1.notify_all();
                respond(out, answer.0, &answer.1)
            }
            ("DELETE", false) => {
                let mut state = self.lock();
                let answer = match state.objects.remove(&slot) {
                    Some(object) => {
                        let rv = state.bump();
                        state.changes.push((rv, "DELETED", slot, object));
                        (200, status(200, "", "deleted"))
                    }
                    None => (404, status(404, "NotFound", "not found")),
                };
                drop(state);
                self.state.1.notify_all();
                respond(out, answer.0, &answer.1)
            }
            _ => respond(out, 405, &status(405, "MethodNotAllowed", "not supported")),
        }
    }

    /// Stream the changes of a collection after the requested resourceVersion, for a while.
    fn watch(
        &self,
        collection: &Slot,
        query: &BTreeMap<String, String>,
        out: &mut TcpStream,
    ) -> std::io::Result<()> {
        out.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        )?;
        out.flush()?;
        let mut after: u64 = query
            .get("resourceVersion")
            .and_then(|rv| rv.parse().ok())
            .unwrap_or(0);
        let selector = query.get("labelSelector").cloned();
        let end = Instant::now() + WATCH_SPAN;
        let mut state = self.lock();
        loop {
            let lines: Vec<String> = state
                .changes
                .iter()
                .filter(|(rv, _, slot, object)| {
                    *rv > after
                        && in_collection(collection, slot)
                        && selected(selector.as_deref(), object)
                })
                .map(|(_, kind, _, object)| json!({"type": kind, "object": object}).to_string())
                .collect();
            after = state.resource_version;
            drop(state);
            for line in lines {
                let line = format!("{line}\n");
                write!(out, "{:x}\r\n{line}\r\n", line.len())?;
            }
            out.flush()?;
            let now = Instant::now();
            if now >= end {
                break;
            }
            state = self.lock();
            if state.resource_version == after {
                state = self.state.1.wait_timeout(state, end - now).unwrap().0;
            }
        }
        out.write_all(b"0\r\n\r\n")?;
        out.flush()
    }
}

/// Parse `/api/v1/...` or `/apis/GROUP/VERSION/...` into a slot (empty name: a collection)
/// and an optional subresource.
fn parse(path: &str) -> Option<(Slot, Option<String>)> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (prefix, rest) = match *segments.first()? {
        "api" => (format!("/api/{}", segments.get(1)?), &segments[2..]),
        "apis" => (
            format!("/apis/{}/{}", segments.get(1)?, segments.get(2)?),
            &segments[3..],
        ),
        _ => return None,
    };
    let (namespace, rest) = if rest.first() == Some(&"namespaces") && rest.len() >= 3 {
        (rest[1].to_string(), &rest[2..])
    } else {
        (String::new(), rest)
    };
    let plural = rest.first()?.to_string();
    let name = rest.get(1).map(|s| s.to_string()).unwrap_or_default();
    let subresource = rest.get(2).map(|s| s.to_string());
    Some((
        Slot {
            prefix,
            plural,
            namespace,
            name,
        },
        subresource,
    ))
}

/// Whether an item belongs to a collection (all namespaces when the collection names none).
fn in_collection(collection: &Slot, item: &Slot) -> bool {
    collection.prefix == item.prefix
        && collection.plural == item.plural
        && (collection.namespace.is_empty() || collection.namespace == item.namespace)
}

/// Equality label selectors (`a=b,c=d`), the only kind the daemon sends.
fn selected(selector: Option<&str>, object: &Value) -> bool {
    selector.is_none_or(|selector| {
        selector.split(',').filter(|s| !s.is_empty()).all(|term| {
            let (key, value) = term.split_once('=').unwrap_or((term, ""));
            object["metadata"]["labels"][key].as_str() == Some(value)
        })
    })
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Status",
        "status": if code < 300 { "Success" } else { "Failure" },
        "reason": reason, "message": message, "code": code})
}

fn respond(out: &mut TcpStream, code: u16, body: &Value) -> std::io::Result<()> {
    let body = body.to_string();
    write!(
        out,
        "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    out.flush()
}

/// One HTTP/1.1 request (Content-Length bodies; JSON or YAML-as-JSON); `None` at the end of
/// the connection.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Recorded> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut length = 0usize;
    let mut content_type = None;
    let mut token = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 {
            return None;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().ok()?,
                "content-type" => content_type = Some(value.trim().to_string()),
                "authorization" => {
                    token = value.trim().strip_prefix("Bearer ").map(str::to_string);
                }
                _ => {}
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let query = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect();
    Some(Recorded {
        method,
        path: path.to_string(),
        query,
        content_type,
        token,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    })
}

/// Percent-decoding of a query component.
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
