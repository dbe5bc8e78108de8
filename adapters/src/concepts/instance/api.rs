//! meshplane's own registry API, for sidecars and operators (contract: `docs/api.md`):
//! registration, heartbeats (single and batched), deregistration, listing with filters,
//! offline/online, and read views of the catalog shaped like emctl's objects.

use std::borrow::Cow;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use actors::instance::query::InstanceFilter;
use actors::instance::{Instance, InstanceCommand, InstanceState, Registration, Status};
use actors::service::visibility::visible_services;
use actors::service::{ServiceState, API_VERSION};
use actors::{MeshCommand, Outcome};
use events::schema::InstanceKey;
use projections::registry::service_value;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::api::body::{json_body, read_limited};
use crate::api::error::ApiError;
use crate::api::respond::{respond, wants_yaml};
use crate::api::ApiState;
use crate::clock::{self, rfc3339};
use crate::host::Memory;
use actors::instance::heartbeats::{Beat, Heartbeats};
use actors::instance::Instances;

/// The instance concept's memory: the heartbeat table.
type Tracker = Memory<Instances>;

/// An instance as the registry API shows it, borrowed from the state: a listing of 100,000
/// instances is serialized straight into the response body, never built as a JSON tree.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct InstanceView<'a> {
    service_name: &'a str,
    #[serde(rename = "instanceID")]
    instance_id: &'a str,
    tenant: &'a str,
    registry_name: &'a str,
    ip: &'a str,
    port: u16,
    labels: &'a BTreeMap<String, String>,
    agent_type: &'a str,
    status: &'static str,
    registry_time: String,
    last_heartbeat_time: String,
    resource_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    offline: Option<OfflineView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    silence: Option<SilenceView>,
}

#[derive(Serialize)]
struct OfflineView<'a> {
    reason: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SilenceView {
    last_heartbeat_time: String,
    heartbeat_seen: bool,
    deadline: String,
    detected_at: String,
}

impl<'a> InstanceView<'a> {
    pub(super) fn new(
        state: &'a InstanceState,
        tracker: &Tracker,
        key: &'a InstanceKey,
        i: &'a Instance,
    ) -> Self {
        // The freshest heartbeat: the in-memory one when a real heartbeat arrived since start-up.
        // One short lock per instance, so a long listing never holds heartbeats up.
        let last_heartbeat_ms = tracker
            .read(|h| h.last_seen(key))
            .filter(|s| s.heartbeat_seen)
            .map_or(i.last_heartbeat_ms, |s| {
                s.last_heartbeat_ms.max(i.last_heartbeat_ms)
            });
        InstanceView {
            service_name: &key.service,
            instance_id: &key.instance_id,
            tenant: state.tenant_of(key),
            registry_name: &state.registry_name,
            ip: &i.ip,
            port: i.port,
            labels: &i.labels,
            agent_type: &i.agent_type,
            status: i.status().as_str(),
            registry_time: rfc3339(i.registry_time_ms),
            last_heartbeat_time: rfc3339(last_heartbeat_ms),
            resource_version: i.updated_position.to_string(),
            offline: i.offline.as_deref().map(|reason| OfflineView { reason }),
            silence: i.silence.as_ref().map(|s| SilenceView {
                last_heartbeat_time: rfc3339(s.last_heartbeat_ms),
                heartbeat_seen: s.heartbeat_seen,
                deadline: rfc3339(s.deadline_ms),
                detected_at: rfc3339(s.detected_at_ms),
            }),
        }
    }
}

/// One page of matching instances, serialized one by one as a sequence.
struct Page<'a> {
    state: &'a InstanceState,
    tracker: &'a Tracker,
    items: Vec<(&'a InstanceKey, &'a Instance)>,
}

impl Serialize for Page<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(
            self.items
                .iter()
                .map(|(k, i)| InstanceView::new(self.state, self.tracker, k, i)),
        )
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InstanceList<'a> {
    kind: &'static str,
    resource_version: String,
    /// Present when more items follow: pass it as `continue` for the next page.
    #[serde(rename = "continue", skip_serializing_if = "Option::is_none")]
    next: Option<String>,
    items: Page<'a>,
}

/// The largest page a listing may ask for.
const MAX_LIMIT: usize = 100_000;

fn status_code(outcome: Outcome) -> StatusCode {
    if outcome == Outcome::Created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    }
}

async fn read_instance(state: &ApiState, key: InstanceKey) -> Result<Value, ApiError> {
    let tracker = state.dispatcher.memory::<Instances>();
    let lookup = key.clone();
    state
        .dispatcher
        .read::<Instances, _>(move |s, _| {
            s.get(&lookup).map(|i| {
                serde_json::to_value(InstanceView::new(s, &tracker, &lookup, i))
                    .expect("instance views serialize")
            })
        })
        .await
        .map_err(|e| ApiError::dispatch(e, false))?
        .ok_or_else(|| ApiError::not_found(format!("service instance {key} not found")))
}

async fn execute_instance(state: &ApiState, command: InstanceCommand) -> Result<Outcome, ApiError> {
    let executed = state
        .dispatcher
        .execute(MeshCommand::Instance(command))
        .await
        .map_err(|e| ApiError::dispatch(e, false))?;
    Ok(executed.outcome)
}

/// `POST /api/v1/registry/instances`: register (201 when new; 200 when re-registered or
/// unchanged). A registration counts as a heartbeat.
pub async fn register(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    state.auth.check(&req)?;
    let body = read_limited(&req, payload, state.body_limits()).await?;
    let registration =
        Registration::from_value(&json_body(&body)?).map_err(|r| ApiError::rejected(r, None))?;
    let key = registration.key.clone();
    let outcome = execute_instance(&state, InstanceCommand::Register(registration)).await?;
    state
        .dispatcher
        .memory::<Instances>()
        .write(|h| h.heartbeat(&key.service, &key.instance_id, clock::now_ms()));
    let view = read_instance(&state, key).await?;
    respond(&req, status_code(outcome), &view)
}

/// `DELETE /api/v1/registry/instances/{service}/{id}`: deregister.
pub async fn deregister(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    state.auth.check(&req)?;
    let (service, id) = path.into_inner();
    let key = InstanceKey::new(service, id);
    let outcome = execute_instance(&state, InstanceCommand::Deregister(key.clone())).await?;
    respond(
        &req,
        StatusCode::OK,
        &json!({"serviceName": key.service, "instanceID": key.instance_id, "outcome": outcome.as_str()}),
    )
}

/// `GET /api/v1/registry/instances/{service}/{id}`.
pub async fn get_instance(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let (service, id) = path.into_inner();
    let view = read_instance(&state, InstanceKey::new(service, id)).await?;
    respond(&req, StatusCode::OK, &view)
}

/// The filters, page and past position (`at`) of a listing, from a query string that may
/// repeat `label`.
fn filter_of(req: &HttpRequest) -> Result<(InstanceFilter, Option<usize>, Option<u64>), ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(req.query_string())
        .map_err(|e| ApiError::invalid("(query)", e.to_string()))?;
    let mut filter = InstanceFilter::default();
    let mut limit = None;
    let mut at = None;
    for (key, value) in pairs {
        match key.as_str() {
            "at" => {
                at = Some(value.parse::<u64>().map_err(|_| {
                    ApiError::invalid("at", format!("`{value}` is not a log position"))
                })?)
            }
            "limit" => {
                limit = Some(
                    value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=MAX_LIMIT).contains(n))
                        .ok_or_else(|| {
                            ApiError::invalid(
                                "limit",
                                format!("`{value}` is not a number from 1 to {MAX_LIMIT}"),
                            )
                        })?,
                )
            }
            "continue" => {
                let (service, id) = value.split_once('/').ok_or_else(|| {
                    ApiError::invalid(
                        "continue",
                        format!("`{value}` is not a continuation (SERVICE/INSTANCE_ID)"),
                    )
                })?;
                filter.after = Some(InstanceKey::new(service, id));
            }
            "service" => filter.service = Some(value),
            "tenant" => filter.tenant = Some(value),
            "status" => {
                filter.status = Some(Status::parse(&value).ok_or_else(|| {
                    ApiError::invalid(
                        "status",
                        format!("`{value}` is not a status (UP or OUT_OF_SERVICE)"),
                    )
                })?)
            }
            "label" => {
                let (k, v) = value.split_once('=').ok_or_else(|| {
                    ApiError::invalid("label", format!("`{value}` is not key=value"))
                })?;
                filter.labels.push((k.to_string(), v.to_string()));
            }
            other => {
                return Err(ApiError::invalid(
                    other,
                    "unknown query parameter (service, tenant, label, status, limit, continue, at)",
                ))
            }
        }
    }
    Ok((filter, limit, at))
}

/// `GET /api/v1/registry/instances?service=&tenant=&label=k=v&status=&limit=&continue=`.
/// With `limit`, at most that many items and a `continue` token while more follow: pages keep
/// the instance actor's turn short when the registry is large.
pub async fn list_instances(
    req: HttpRequest,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let (filter, limit, at) = filter_of(&req)?;
    let yaml = wants_yaml(&req);
    let render = move |s: &InstanceState, position: u64, tracker: &Tracker| {
        let mut items: Vec<_> = match limit {
            Some(n) => s.query(&filter).take(n + 1).collect(),
            None => s.query(&filter).collect(),
        };
        let next = match limit {
            Some(n) if items.len() > n => {
                items.truncate(n);
                items.last().map(|(k, _)| k.to_string())
            }
            _ => None,
        };
        let list = InstanceList {
            kind: "ServiceInstanceList",
            resource_version: position.to_string(),
            next,
            items: Page {
                state: s,
                tracker,
                items,
            },
        };
        if yaml {
            serde_norway::to_string(&list)
                .map(String::into_bytes)
                .map_err(|e| e.to_string())
        } else {
            serde_json::to_vec(&list).map_err(|e| e.to_string())
        }
    };
    let body = match at {
        None => {
            let tracker = state.dispatcher.memory::<Instances>();
            state
                .dispatcher
                .read::<Instances, _>(move |s, position| render(s, position, &tracker))
                .await
                .map_err(|e| ApiError::dispatch(e, false))?
        }
        Some(at) => {
            // At a past position the heartbeats are what the log recorded.
            let mesh = state.past(at).await?;
            let tracker = Tracker::new(Heartbeats::new(&mesh.instances, 0));
            render(&mesh.instances, mesh.position, &tracker)
        }
    }
    .map_err(|e| ApiError::internal(format!("cannot render the instance list: {e}")))?;
    let content_type = if yaml {
        "application/yaml"
    } else {
        "application/json"
    };
    Ok(HttpResponse::Ok().content_type(content_type).body(body))
}

/// One heartbeat of a batch.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct WireBeat<'a> {
    #[serde(borrow)]
    pub(crate) service_name: Cow<'a, str>,
    #[serde(borrow, rename = "instanceID")]
    pub(crate) instance_id: Cow<'a, str>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WireBeats<'a> {
    #[serde(borrow)]
    pub(crate) heartbeats: Vec<WireBeat<'a>>,
}

/// `PUT|POST /api/v1/registry/instances/{service}/{id}/heartbeat`: 204, or 404 when the
/// instance is not registered (register again).
pub async fn heartbeat(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    state.auth.check(&req)?;
    let (service, id) = path.into_inner();
    let now = clock::now_ms();
    let beat = state
        .dispatcher
        .memory::<Instances>()
        .write(|h| h.heartbeat(&service, &id, now));
    match beat {
        Beat::Known => {
            state
                .metrics
                .heartbeats
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(HttpResponse::NoContent().finish())
        }
        Beat::Unknown => {
            state
                .metrics
                .heartbeats_unknown
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Err(ApiError::not_found(format!(
                "service instance {service}/{id} is not registered; register it again"
            )))
        }
    }
}

/// `POST /api/v1/registry/heartbeats`: `{"heartbeats": [{serviceName, instanceID}, ...]}`.
/// Answers `{accepted, unknown: [{serviceName, instanceID}]}`; the unknown ones should
/// register again. Never appends an event.
pub async fn heartbeats(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    state.auth.check(&req)?;
    let body = read_limited(&req, payload, state.body_limits()).await?;
    let beats: WireBeats = serde_json::from_slice(&body).map_err(|e| {
        ApiError::invalid(
            "heartbeats",
            format!("expected {{\"heartbeats\": [{{\"serviceName\", \"instanceID\"}}]}}: {e}"),
        )
    })?;
    let total = beats.heartbeats.len();
    let now = clock::now_ms();
    let unknown = state.dispatcher.memory::<Instances>().write(|h| {
        h.heartbeats(
            beats
                .heartbeats
                .iter()
                .map(|b| (b.service_name.as_ref(), b.instance_id.as_ref())),
            now,
        )
    });
    let ordering = std::sync::atomic::Ordering::Relaxed;
    state
        .metrics
        .heartbeats
        .fetch_add((total - unknown.len()) as u64, ordering);
    state
        .metrics
        .heartbeats_unknown
        .fetch_add(unknown.len() as u64, ordering);
    let unknown: Vec<Value> = unknown
        .iter()
        .map(|k| json!({"serviceName": k.service, "instanceID": k.instance_id}))
        .collect();
    Ok(HttpResponse::Ok().json(json!({"accepted": total - unknown.len(), "unknown": unknown})))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct OfflineBody {
    #[serde(default)]
    reason: String,
}

/// `POST /api/v1/registry/instances/{service}/{id}/offline` (`{"reason": ...}` optional):
/// out of service until brought back, whatever the heartbeats say.
pub async fn offline(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    state.auth.check(&req)?;
    let body = read_limited(&req, payload, state.body_limits()).await?;
    let OfflineBody { reason } = if body.iter().all(u8::is_ascii_whitespace) {
        OfflineBody::default()
    } else {
        serde_json::from_value(json_body(&body)?)
            .map_err(|e| ApiError::invalid("reason", e.to_string()))?
    };
    let (service, id) = path.into_inner();
    let key = InstanceKey::new(service, id);
    execute_instance(
        &state,
        InstanceCommand::TakeOffline {
            key: key.clone(),
            reason,
        },
    )
    .await?;
    respond(&req, StatusCode::OK, &read_instance(&state, key).await?)
}

/// `POST /api/v1/registry/instances/{service}/{id}/online`: reverse an offline.
pub async fn online(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    state.auth.check(&req)?;
    let (service, id) = path.into_inner();
    let key = InstanceKey::new(service, id);
    execute_instance(&state, InstanceCommand::BringOnline(key.clone())).await?;
    respond(&req, StatusCode::OK, &read_instance(&state, key).await?)
}

/// A tenant as an emctl-style object.
fn tenant_object(s: &ServiceState, name: &str) -> Option<Value> {
    let t = s.tenants.get(name)?;
    Some(json!({
        "apiVersion": t.api_version, "kind": "Tenant",
        "metadata": {"name": name, "labels": t.labels, "creationTimestamp": rfc3339(t.created_at_ms),
                     "resourceVersion": t.updated_position.to_string()},
        "spec": {"description": t.description, "services": t.services},
    }))
}

/// A service as an emctl-style object.
fn service_object(s: &ServiceState, name: &str) -> Option<Value> {
    let svc = s.services.get(name)?;
    let mut spec = service_value(s, name)?;
    if let Value::Object(map) = &mut spec {
        map.remove("name");
    }
    Some(json!({
        "apiVersion": svc.api_version, "kind": "Service",
        "metadata": {"name": name, "labels": svc.labels, "creationTimestamp": rfc3339(svc.created_at_ms),
                     "resourceVersion": svc.updated_position.to_string()},
        "spec": spec,
    }))
}

fn controller_object(s: &ServiceState) -> Option<Value> {
    let c = s.controller.as_ref()?;
    let spec: Value = serde_json::from_str(&c.spec).unwrap_or(Value::Null);
    Some(json!({
        "apiVersion": c.api_version, "kind": "MeshController",
        "metadata": {"name": c.name, "labels": c.labels, "resourceVersion": c.updated_position.to_string()},
        "spec": spec,
    }))
}

/// Which catalog kind a path segment names.
#[derive(Clone, Copy)]
enum CatalogPath {
    Tenants,
    Services,
    MeshControllers,
}

fn catalog_path(segment: &str) -> Result<CatalogPath, ApiError> {
    match segment {
        "tenants" => Ok(CatalogPath::Tenants),
        "services" => Ok(CatalogPath::Services),
        "meshcontrollers" => Ok(CatalogPath::MeshControllers),
        other => Err(ApiError::not_found(format!(
            "unknown registry collection `{other}` (tenants, services, meshcontrollers)"
        ))),
    }
}

/// `GET /api/v1/registry/{tenants|services|meshcontrollers}`: a `List` of emctl-style objects.
pub async fn list_catalog(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<AtQuery>,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let which = catalog_path(&path.into_inner())?;
    let (items, position) = read_services_at(&state, query.at, move |s, position| {
        let items: Vec<Value> = match which {
            CatalogPath::Tenants => s
                .tenants
                .keys()
                .filter_map(|n| tenant_object(s, n))
                .collect(),
            CatalogPath::Services => s
                .services
                .keys()
                .filter_map(|n| service_object(s, n))
                .collect(),
            CatalogPath::MeshControllers => controller_object(s).into_iter().collect(),
        };
        (items, position)
    })
    .await?;
    respond(
        &req,
        StatusCode::OK,
        &json!({"apiVersion": API_VERSION, "kind": "List", "metadata": {"resourceVersion": position.to_string()}, "items": items}),
    )
}

/// `GET /api/v1/registry/{tenants|services|meshcontrollers}/{name}`.
pub async fn get_catalog(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    query: web::Query<AtQuery>,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let (collection, name) = path.into_inner();
    let which = catalog_path(&collection)?;
    let lookup = name.clone();
    let found = read_services_at(&state, query.at, move |s, _| match which {
        CatalogPath::Tenants => tenant_object(s, &lookup),
        CatalogPath::Services => service_object(s, &lookup),
        CatalogPath::MeshControllers => {
            controller_object(s).filter(|o| o["metadata"]["name"] == lookup.as_str())
        }
    })
    .await?;
    match found {
        Some(object) => respond(&req, StatusCode::OK, &object),
        None => Err(ApiError::not_found(format!(
            "{collection}/{name} not found"
        ))),
    }
}

/// `?at=POS`: answer from the state at a past log position.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AtQuery {
    at: Option<u64>,
}

/// Run `query` on the catalog as of `at` (a past position), or on the live state.
async fn read_services_at<R: Send + 'static>(
    state: &ApiState,
    at: Option<u64>,
    query: impl FnOnce(&ServiceState, u64) -> R + Send + 'static,
) -> Result<R, ApiError> {
    match at {
        None => state
            .dispatcher
            .read::<actors::service::Services, _>(query)
            .await
            .map_err(|e| ApiError::dispatch(e, false)),
        Some(at) => {
            let mesh = state.past(at).await?;
            Ok(query(&mesh.services, mesh.position))
        }
    }
}

/// `GET /api/v1/registry/services/{name}/visible`: the services this one can see.
pub async fn visible(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner();
    let lookup = name.clone();
    let visible = state
        .dispatcher
        .read::<actors::service::Services, _>(move |s, _| {
            visible_services(s, &lookup)
                .map(|v| v.into_iter().map(str::to_string).collect::<Vec<_>>())
        })
        .await
        .map_err(|e| ApiError::dispatch(e, false))?
        .ok_or_else(|| ApiError::not_found(format!("service `{name}` not found")))?;
    respond(
        &req,
        StatusCode::OK,
        &json!({"service": name, "visible": visible}),
    )
}
