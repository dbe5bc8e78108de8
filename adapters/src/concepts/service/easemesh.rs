//! EaseMesh's control-plane API paths (`/apis/v2/mesh/...`, also under `/apis/v1`), so emctl
//! and scripts written for EaseMesh work unchanged: tenants, services and service instances,
//! with EaseMesh's status codes (POST 201 with `Location`, 409 on a duplicate, 404, 400 with a
//! message; PUT and DELETE 200 with an empty body) and its JSON shapes. Errors are
//! `{"code": N, "message": "..."}` (plus meshplane's `reason` and `field`). Empty lists are
//! `[]` (EaseMesh answers `null` for some; that inconsistency is not copied).

use actix_web::http::header::LOCATION;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use actors::instance::{InstanceCommand, InstanceState};
use actors::service::manifest::relative_to_body;
use actors::service::{CatalogItem, CatalogKind, CatalogRef, ServiceCommand, ServicePart};
use actors::MeshCommand;
use events::schema::InstanceKey;
use projections::registry::{service_value, tenant_value, InstanceSpecValue};
use serde_json::Value;

use crate::api::body::{json_body, read_limited};
use crate::api::error::ApiError;
use crate::api::ApiState;
use crate::host::DispatchError;

/// The reason recorded when an instance is taken offline through EaseMesh's DELETE.
pub const OFFLINE_REASON: &str = "taken offline through the EaseMesh API";

fn kind_of(collection: &str) -> Result<CatalogKind, ApiError> {
    match collection {
        "tenants" => Ok(CatalogKind::Tenant),
        "services" => Ok(CatalogKind::Service),
        other => Err(ApiError::not_found(format!(
            "no EaseMesh collection `{other}`"
        ))),
    }
}

fn json_text(text: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(text)
}

/// `GET /apis/v2/mesh/{tenants|services}`.
pub async fn list(
    path: web::Path<(String, String)>,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let (_, collection) = path.into_inner();
    let kind = kind_of(&collection)?;
    let items = state
        .dispatcher
        .read::<actors::service::Services, _>(move |s, _| -> Vec<Value> {
            match kind {
                CatalogKind::Tenant => s
                    .tenants
                    .keys()
                    .filter_map(|n| tenant_value(s, n))
                    .filter_map(|t| serde_json::from_str(&t).ok())
                    .collect(),
                _ => s
                    .services
                    .keys()
                    .filter_map(|n| service_value(s, n))
                    .collect(),
            }
        })
        .await
        .map_err(|e| ApiError::dispatch(e, false))?;
    Ok(HttpResponse::Ok().json(items))
}

/// `GET /apis/v2/mesh/{tenants|services}/{name}`.
pub async fn get(
    path: web::Path<(String, String, String)>,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let (_, collection, name) = path.into_inner();
    let kind = kind_of(&collection)?;
    let lookup = name.clone();
    let found = state
        .dispatcher
        .read::<actors::service::Services, _>(move |s, _| match kind {
            CatalogKind::Tenant => tenant_value(s, &lookup),
            _ => service_value(s, &lookup).map(|v| v.to_string()),
        })
        .await
        .map_err(|e| ApiError::dispatch(e, false))?;
    match found {
        Some(text) => Ok(json_text(text)),
        None => Err(ApiError::not_found(format!(
            "{} {name} not found",
            kind.name()
        ))),
    }
}

async fn execute(state: &ApiState, command: ServiceCommand) -> Result<(), ApiError> {
    match state
        .dispatcher
        .execute(MeshCommand::Service(command))
        .await
    {
        Ok(_) => Ok(()),
        // EaseMesh's bodies are the spec itself: name `registerTenant`, not
        // `spec.registerTenant`.
        Err(DispatchError::Rejected { rejection, .. }) => {
            Err(ApiError::rejected(relative_to_body(rejection), None))
        }
        Err(e) => Err(ApiError::dispatch(e, false)),
    }
}

async fn item_of(
    req: &HttpRequest,
    payload: web::Payload,
    state: &ApiState,
    kind: CatalogKind,
    path_name: Option<&str>,
) -> Result<CatalogItem, ApiError> {
    let body = read_limited(req, payload, state.body_limits()).await?;
    CatalogItem::from_api_body(kind, &json_body(&body)?, path_name)
        .map_err(|r| ApiError::rejected(r, None))
}

/// `POST /apis/v2/mesh/{tenants|services}`: 201 with `Location`, 409 when it exists.
pub async fn create(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    state.auth.check(&req)?;
    let (version, collection) = path.into_inner();
    let kind = kind_of(&collection)?;
    let item = item_of(&req, payload, &state, kind, None).await?;
    let name = item.reference().name;
    execute(&state, ServiceCommand::Create(Box::new(item))).await?;
    Ok(created(format!("/apis/{version}/mesh/{collection}/{name}")))
}

/// EaseMesh's answer to a create: 201, empty, with the new object's path.
fn created(location: String) -> HttpResponse {
    HttpResponse::Created()
        .insert_header((LOCATION, location))
        .finish()
}

/// `PUT /apis/v2/mesh/{tenants|services}/{name}`: 200, 404 when it does not exist.
pub async fn update(
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    payload: web::Payload,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    state.auth.check(&req)?;
    let (_, collection, name) = path.into_inner();
    let kind = kind_of(&collection)?;
    let mut item = item_of(&req, payload, &state, kind, Some(&name)).await?;
    keep_metadata(&state, &mut item).await?;
    execute(&state, ServiceCommand::Update(Box::new(item))).await?;
    Ok(HttpResponse::Ok().finish())
}

/// EaseMesh's bodies carry no metadata: an update through them keeps the labels and the
/// apiVersion the object was applied with (from an emctl manifest, say).
async fn keep_metadata(state: &ApiState, item: &mut CatalogItem) -> Result<(), ApiError> {
    let r = item.reference();
    let existing = state
        .dispatcher
        .read::<actors::service::Services, _>(move |s, _| match r.kind {
            CatalogKind::Tenant => s
                .tenants
                .get(&r.name)
                .map(|t| (t.labels.clone(), t.api_version.clone())),
            CatalogKind::Service => s
                .services
                .get(&r.name)
                .map(|t| (t.labels.clone(), t.api_version.clone())),
            _ => None,
        })
        .await
        .map_err(|e| ApiError::dispatch(e, false))?;
    if let Some((labels, api_version)) = existing {
        match item {
            CatalogItem::Tenant(t) => (t.labels, t.api_version) = (labels, api_version),
            CatalogItem::Service(s) => (s.labels, s.api_version) = (labels, api_version),
            _ => {}
        }
    }
    Ok(())
}

/// `DELETE /apis/v2/mesh/{tenants|services}/{name}`.
pub async fn delete(
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    state.auth.check(&req)?;
    let (_, collection, name) = path.into_inner();
    let kind = kind_of(&collection)?;
    execute(&state, ServiceCommand::Delete(CatalogRef { kind, name })).await?;
    Ok(HttpResponse::Ok().finish())
}

fn spec_json(state: &InstanceState, key: &InstanceKey) -> Option<String> {
    let i = state.get(key)?;
    serde_json::to_string(&InstanceSpecValue::new(state, key, i)).ok()
}

/// `GET /apis/v2/mesh/serviceinstances`: every instance's `ServiceInstanceSpec`.
pub async fn list_instances(state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let text = state
        .dispatcher
        .read::<actors::instance::Instances, _>(|s, _| {
            let items: Vec<InstanceSpecValue> = s
                .instances
                .iter()
                .map(|(k, i)| InstanceSpecValue::new(s, k, i))
                .collect();
            serde_json::to_string(&items).unwrap_or_else(|_| "[]".into())
        })
        .await
        .map_err(|e| ApiError::dispatch(e, false))?;
    Ok(json_text(text))
}

/// `GET /apis/v2/mesh/serviceinstances/{service}/{id}`.
pub async fn get_instance(
    path: web::Path<(String, String, String)>,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let (_, service, id) = path.into_inner();
    let key = InstanceKey::new(service, id);
    let lookup = key.clone();
    let found = state
        .dispatcher
        .read::<actors::instance::Instances, _>(move |s, _| spec_json(s, &lookup))
        .await
        .map_err(|e| ApiError::dispatch(e, false))?;
    match found {
        Some(text) => Ok(json_text(text)),
        None => Err(ApiError::not_found(format!(
            "service instance {key} not found"
        ))),
    }
}

/// `DELETE /apis/v2/mesh/serviceinstances/{service}/{id}`: as in EaseMesh, this takes the
/// instance offline (it does not remove it); unlike EaseMesh, the offline sticks.
pub async fn offline_instance(
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    state.auth.check(&req)?;
    let (_, service, id) = path.into_inner();
    let command = InstanceCommand::TakeOffline {
        key: InstanceKey::new(service, id),
        reason: OFFLINE_REASON.into(),
    };
    state
        .dispatcher
        .execute(MeshCommand::Instance(command))
        .await
        .map_err(|e| ApiError::dispatch(e, false))?;
    Ok(HttpResponse::build(StatusCode::OK).finish())
}

fn part_of(segment: &str) -> Result<ServicePart, ApiError> {
    ServicePart::from_path(segment)
        .ok_or_else(|| ApiError::not_found(format!("no service part `{segment}`")))
}

/// `GET /apis/v2/mesh/services/{name}/{part}`: the part (`loadbalance`, `resilience`, `mock`,
/// `tracings`, `metrics`, `outputserver`).
pub async fn get_part(
    path: web::Path<(String, String, String)>,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let (_, name, segment) = path.into_inner();
    let part = part_of(&segment)?;
    let lookup = name.clone();
    let found = state
        .dispatcher
        .read::<actors::service::Services, _>(move |s, _| {
            s.services.get(&lookup).map(|svc| part.get(&svc.spec))
        })
        .await
        .map_err(|e| ApiError::dispatch(e, false))?;
    match found {
        Some(Some(value)) => Ok(HttpResponse::Ok().json(value)),
        Some(None) => Err(ApiError::not_found(format!(
            "{} of service {name} not found",
            part.kind()
        ))),
        None => Err(ApiError::not_found(format!("Service {name} not found"))),
    }
}

/// `POST /apis/v2/mesh/services/{name}/{part}`: 201, 409 when the part is set.
pub async fn create_part(
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    payload: web::Payload,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    state.auth.check(&req)?;
    let (version, name, segment) = path.into_inner();
    let part = part_of(&segment)?;
    let item = item_of(&req, payload, &state, CatalogKind::Part(part), Some(&name)).await?;
    execute(&state, ServiceCommand::Create(Box::new(item))).await?;
    Ok(created(format!(
        "/apis/{version}/mesh/services/{name}/{segment}"
    )))
}

/// `PUT /apis/v2/mesh/services/{name}/{part}`: 200, 404 when the part is not set.
pub async fn update_part(
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    payload: web::Payload,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    state.auth.check(&req)?;
    let (_, name, segment) = path.into_inner();
    let part = part_of(&segment)?;
    let item = item_of(&req, payload, &state, CatalogKind::Part(part), Some(&name)).await?;
    execute(&state, ServiceCommand::Update(Box::new(item))).await?;
    Ok(HttpResponse::Ok().finish())
}

/// `DELETE /apis/v2/mesh/services/{name}/{part}`.
pub async fn delete_part(
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    state.auth.check(&req)?;
    let (_, name, segment) = path.into_inner();
    let kind = CatalogKind::Part(part_of(&segment)?);
    execute(&state, ServiceCommand::Delete(CatalogRef { kind, name })).await?;
    Ok(HttpResponse::Ok().finish())
}
