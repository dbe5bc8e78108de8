//! Apply failures as Kubernetes Events on the source object (the owner of a generated object,
//! or the object itself), so `kubectl describe` shows why meshplane could not write.

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, PostParams};
use kube::Client;
use serde_json::Value;

/// The object an Event about a failed write is attached to: the controlling owner named in
/// the desired object (a Sidecar's ServiceFence), else the object itself.
pub fn source_of(value: Option<&Value>, object: &projections::ObjectRef) -> ObjectReference {
    let owner = value
        .and_then(|v| v["metadata"]["ownerReferences"].as_array())
        .and_then(|owners| owners.first());
    match owner {
        Some(o) => ObjectReference {
            api_version: o["apiVersion"].as_str().map(str::to_string),
            kind: o["kind"].as_str().map(str::to_string),
            name: o["name"].as_str().map(str::to_string),
            namespace: Some(object.namespace.clone()).filter(|n| !n.is_empty()),
            uid: o["uid"]
                .as_str()
                .filter(|u| !u.is_empty())
                .map(str::to_string),
            ..ObjectReference::default()
        },
        None => ObjectReference {
            api_version: Some(object.api_version.clone()),
            kind: Some(object.kind.clone()),
            name: Some(object.name.clone()),
            namespace: Some(object.namespace.clone()).filter(|n| !n.is_empty()),
            ..ObjectReference::default()
        },
    }
}

/// The Warning Event about `about` (pure, so its shape is validated against the Kubernetes
/// schemas in `tests/schemas.rs`).
pub fn warning_event(
    about: ObjectReference,
    reason: &str,
    message: String,
    now: jiff::Timestamp,
) -> Event {
    let namespace = about
        .namespace
        .clone()
        .unwrap_or_else(|| "default".to_string());
    let now = Time(now);
    Event {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}.", about.name.as_deref().unwrap_or("meshplane"))),
            namespace: Some(namespace),
            ..ObjectMeta::default()
        },
        involved_object: about,
        reason: Some(reason.to_string()),
        message: Some(message),
        type_: Some("Warning".to_string()),
        source: Some(EventSource {
            component: Some(projections::object::MANAGER.to_string()),
            host: None,
        }),
        reporting_component: Some(projections::object::MANAGER.to_string()),
        first_timestamp: Some(now.clone()),
        last_timestamp: Some(now),
        count: Some(1),
        ..Event::default()
    }
}

/// Record a Warning Event. Failing to record it is logged, never retried: the metric and the
/// log already carry the failure.
pub async fn warn(client: &Client, about: ObjectReference, reason: &str, message: String) {
    let event = warning_event(about, reason, message, jiff::Timestamp::now());
    let namespace = event.metadata.namespace.clone().unwrap_or_default();
    let api: Api<Event> = Api::namespaced(client.clone(), &namespace);
    if let Err(e) = api.create(&PostParams::default(), &event).await {
        tracing::warn!(error = %e, %reason, "could not record a Kubernetes Event");
    }
}
