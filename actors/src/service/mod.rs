//! The service concept: EaseMesh's tenants, mesh services and the mesh controller's settings
//! (the registry's catalog), with EaseMesh's tenant rules:
//!
//! - a service's `registerTenant` must exist;
//! - a tenant that still has services cannot be deleted;
//! - a tenant's `services` list is kept by the server (derived from the services), never set
//!   by a client;
//! - the reserved tenant `global` is visible mesh-wide (see [`visibility`]).
//!
//! Everything lives on one stream ([`CATALOG_STREAM`]) so these cross-object rules hold under
//! concurrency: two commands decided against the same catalog version cannot both append.

pub mod manifest;
pub mod part;
pub mod spec;
pub mod visibility;

use std::collections::{BTreeMap, BTreeSet};

use events::schema::{
    MeshControllerApplied, ServiceApplied, ServiceDeleted, TenantApplied, TenantDeleted,
    CATALOG_STREAM,
};
use events::Event;
use serde::{Deserialize, Serialize};

use crate::ctx::Ctx;
use crate::decider::{expect_version, Decider, Decision, Meta, Outcome, Rejection};
pub use manifest::{CatalogItem, CatalogKind, CatalogRef, API_VERSION, GLOBAL_TENANT};
pub use part::ServicePart;
use spec::{DEFAULT_DEAD_RECORD_MS, DEFAULT_HEARTBEAT_INTERVAL_MS};

/// A tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    pub api_version: String,
    pub labels: BTreeMap<String, String>,
    pub description: String,
    /// The services registered to it (derived from the services).
    pub services: BTreeSet<String>,
    pub created_at_ms: i64,
    pub updated_position: u64,
}

/// A mesh service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeshService {
    pub api_version: String,
    pub labels: BTreeMap<String, String>,
    pub tenant: String,
    /// Canonical JSON of the validated spec.
    pub spec: String,
    pub created_at_ms: i64,
    pub updated_position: u64,
}

/// The mesh controller's settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeshController {
    pub name: String,
    pub api_version: String,
    pub labels: BTreeMap<String, String>,
    pub heartbeat_interval_ms: u64,
    pub dead_record_ms: u64,
    pub registry_type: String,
    pub spec: String,
    pub updated_position: u64,
}

/// State of the service concept.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceState {
    /// Version of the catalog stream.
    pub version: u64,
    pub tenants: BTreeMap<String, Tenant>,
    pub services: BTreeMap<String, MeshService>,
    pub controller: Option<MeshController>,
}

impl ServiceState {
    /// The heartbeat interval in force (EaseMesh's 5 s until a mesh controller says otherwise).
    pub fn heartbeat_interval_ms(&self) -> u64 {
        self.controller
            .as_ref()
            .map_or(DEFAULT_HEARTBEAT_INTERVAL_MS, |c| c.heartbeat_interval_ms)
    }

    pub fn dead_record_ms(&self) -> u64 {
        self.controller
            .as_ref()
            .map_or(DEFAULT_DEAD_RECORD_MS, |c| c.dead_record_ms)
    }

    fn exists(&self, r: &CatalogRef) -> bool {
        match r.kind {
            CatalogKind::Tenant => self.tenants.contains_key(&r.name),
            CatalogKind::Service => self.services.contains_key(&r.name),
            CatalogKind::MeshController => {
                self.controller.as_ref().is_some_and(|c| c.name == r.name)
            }
            CatalogKind::Part(part) => self
                .services
                .get(&r.name)
                .is_some_and(|s| part.get(&s.spec).is_some()),
        }
    }
}

/// Commands of the service concept.
#[derive(Clone, Debug, PartialEq)]
pub enum ServiceCommand {
    /// Create or update each item, in order, as one atomic change: a later item sees the
    /// earlier ones (a file may hold a tenant and its services). Identical items change nothing.
    Apply(Vec<CatalogItem>),
    /// Create an item that must not exist yet (EaseMesh's POST: 409 when it does).
    Create(Box<CatalogItem>),
    /// Update an item that must exist (EaseMesh's PUT: 404 when it does not).
    Update(Box<CatalogItem>),
    /// Delete an item.
    Delete(CatalogRef),
}

/// The service decider.
pub struct Services;

impl crate::Concept for Services {
    const NAME: &'static str = "service";
    type Memory = ();

    fn folds(event: &Event) -> bool {
        matches!(
            event,
            Event::TenantApplied(_)
                | Event::TenantDeleted(_)
                | Event::ServiceApplied(_)
                | Event::ServiceDeleted(_)
                | Event::MeshControllerApplied(_)
        )
    }

    fn note_version(state: &mut ServiceState, event: &Event, version: u64) -> bool {
        let own = Self::folds(event);
        if own {
            state.version = version;
        }
        own
    }

    fn recall(_: &crate::Mesh, _: Option<()>, _: i64) {}

    const OBJECT_KINDS: &'static [&'static str] = &["Tenant", "MeshService", "MeshController"];

    /// EaseMesh's objects (`mesh.megaease.com`): tenants, services and their parts, the mesh
    /// controller.
    fn document(document: &serde_json::Value) -> Option<Result<ServiceCommand, Rejection>> {
        CatalogItem::claims(document).then(|| {
            CatalogItem::from_document(document).map(|item| ServiceCommand::Apply(vec![item]))
        })
    }

    /// The catalog's objects: the catalog stream holds all of them; only the events that
    /// concern the object.
    fn history(
        object: &crate::history::ObjectName,
    ) -> Result<Vec<crate::history::HistorySource>, Rejection> {
        let ours = Self::OBJECT_KINDS.contains(&object.kind.as_str());
        Ok(ours
            .then(|| crate::history::HistorySource::filtered(CATALOG_STREAM.to_string(), concerns))
            .into_iter()
            .collect())
    }
}

/// Whether a catalog event concerns the catalog object `object` (the catalog stream holds
/// every tenant's, service's and the controller's events).
pub fn concerns(event: &Event, object: &crate::history::ObjectName) -> bool {
    let name = object.name.as_str();
    match (event, object.kind.as_str()) {
        (Event::TenantApplied(e), "Tenant") => e.name == name,
        (Event::TenantDeleted(e), "Tenant") => e.name == name,
        // A tenant's service list changes with its services.
        (Event::ServiceApplied(e), "Tenant") => e.tenant == name,
        (Event::ServiceApplied(e), "MeshService") => e.name == name,
        (Event::ServiceDeleted(e), "MeshService") => e.name == name,
        (Event::MeshControllerApplied(e), "MeshController") => e.name == name,
        _ => false,
    }
}

impl Decider for Services {
    type State = ServiceState;
    type Command = ServiceCommand;

    fn decide(
        state: &ServiceState,
        command: ServiceCommand,
        _ctx: &mut Ctx,
    ) -> Result<Decision, Rejection> {
        let items = match command {
            ServiceCommand::Apply(items) => items,
            ServiceCommand::Create(item) => {
                let r = item.reference();
                if state.exists(&r) {
                    return Err(Rejection::conflict(format!("{r} already exists")));
                }
                if let (CatalogItem::MeshController(_), Some(c)) = (&*item, &state.controller) {
                    return Err(one_controller(&c.name, &r.name));
                }
                vec![*item]
            }
            ServiceCommand::Update(item) => {
                let r = item.reference();
                if !state.exists(&r) {
                    return Err(Rejection::not_found(format!("{r} not found")));
                }
                vec![*item]
            }
            ServiceCommand::Delete(r) => return delete(state, r),
        };
        apply_all(state, items)
    }

    fn evolve(state: &mut ServiceState, event: Event, meta: &Meta) {
        state.version = meta.stream_version;
        match event {
            Event::TenantApplied(e) => {
                let tenant = state.tenants.entry(e.name).or_insert_with(|| Tenant {
                    api_version: String::new(),
                    labels: BTreeMap::new(),
                    description: String::new(),
                    services: BTreeSet::new(),
                    created_at_ms: meta.recorded_at_ms,
                    updated_position: 0,
                });
                tenant.api_version = e.api_version;
                tenant.labels = e.labels;
                tenant.description = e.description;
                tenant.updated_position = meta.position;
            }
            Event::TenantDeleted(e) => {
                state.tenants.remove(&e.name);
            }
            Event::ServiceApplied(e) => {
                let created_at_ms = match state.services.get(&e.name) {
                    Some(old) => {
                        let (old_tenant, created) = (old.tenant.clone(), old.created_at_ms);
                        if let Some(t) = state.tenants.get_mut(&old_tenant) {
                            t.services.remove(&e.name);
                        }
                        created
                    }
                    None => meta.recorded_at_ms,
                };
                // Evolve is total: a log whose service names a missing tenant still folds.
                if let Some(t) = state.tenants.get_mut(&e.tenant) {
                    t.services.insert(e.name.clone());
                }
                state.services.insert(
                    e.name,
                    MeshService {
                        api_version: e.api_version,
                        labels: e.labels,
                        tenant: e.tenant,
                        spec: e.spec,
                        created_at_ms,
                        updated_position: meta.position,
                    },
                );
            }
            Event::ServiceDeleted(e) => {
                if let Some(old) = state.services.remove(&e.name) {
                    if let Some(t) = state.tenants.get_mut(&old.tenant) {
                        t.services.remove(&e.name);
                    }
                }
            }
            Event::MeshControllerApplied(e) => {
                state.controller = Some(MeshController {
                    name: e.name,
                    api_version: e.api_version,
                    labels: e.labels,
                    heartbeat_interval_ms: e.heartbeat_interval_ms,
                    dead_record_ms: e.dead_record_ms,
                    registry_type: e.registry_type,
                    spec: e.spec,
                    updated_position: meta.position,
                });
            }
            _ => {}
        }
    }
}

fn one_controller(existing: &str, asked: &str) -> Rejection {
    Rejection::conflict(format!(
        "the mesh has one mesh controller, `{existing}`; apply the settings to it instead of creating `{asked}`"
    ))
}

/// Decide items one after another against a scratch copy of the catalog, so later items see
/// earlier ones; all their events go to the catalog stream in one append.
fn apply_all(state: &ServiceState, items: Vec<CatalogItem>) -> Result<Decision, Rejection> {
    let mut scratch: Option<ServiceState> = None;
    let mut events = Vec::new();
    let mut outcomes = Vec::with_capacity(items.len());
    let last = items.len().saturating_sub(1);
    for (i, item) in items.into_iter().enumerate() {
        let current = scratch.as_ref().unwrap_or(state);
        let (event, outcome) = apply_one(current, item).map_err(|r| r.at_item(i))?;
        outcomes.push(outcome);
        if let Some(event) = event {
            if i < last {
                let meta = Meta {
                    position: 0,
                    stream_version: current.version,
                    recorded_at_ms: 0,
                };
                let next = scratch.get_or_insert_with(|| state.clone());
                Services::evolve(next, event.clone(), &meta);
            }
            events.push(event);
        }
    }
    let outcome = summary(&outcomes);
    Ok(Decision {
        stream: CATALOG_STREAM.to_string(),
        expected: expect_version(state.version),
        events,
        outcome,
        item_outcomes: outcomes,
    })
}

/// One outcome for several: the single one, else `configured` when anything changed.
fn summary(outcomes: &[Outcome]) -> Outcome {
    match outcomes {
        [one] => *one,
        many if many.iter().all(|o| *o == Outcome::Unchanged) => Outcome::Unchanged,
        _ => Outcome::Configured,
    }
}

fn apply_one(
    state: &ServiceState,
    item: CatalogItem,
) -> Result<(Option<Event>, Outcome), Rejection> {
    let outcome_of = |exists: bool| {
        if exists {
            Outcome::Configured
        } else {
            Outcome::Created
        }
    };
    match item {
        CatalogItem::Tenant(t) => {
            let existing = state.tenants.get(&t.name);
            if existing.is_some_and(|e| {
                e.api_version == t.api_version
                    && e.labels == t.labels
                    && e.description == t.description
            }) {
                return Ok((None, Outcome::Unchanged));
            }
            let outcome = outcome_of(existing.is_some());
            Ok((
                Some(Event::TenantApplied(TenantApplied {
                    name: t.name,
                    api_version: t.api_version,
                    labels: t.labels,
                    description: t.description,
                })),
                outcome,
            ))
        }
        CatalogItem::Service(s) => {
            if !state.tenants.contains_key(&s.spec.register_tenant) {
                return Err(Rejection::invalid(
                    "spec.registerTenant",
                    format!(
                        "tenant `{}` does not exist; create it first",
                        s.spec.register_tenant
                    ),
                ));
            }
            let spec = serde_json::to_value(&s.spec)
                .expect("service specs serialize")
                .to_string();
            let existing = state.services.get(&s.name);
            if existing.is_some_and(|e| {
                e.api_version == s.api_version && e.labels == s.labels && e.spec == spec
            }) {
                return Ok((None, Outcome::Unchanged));
            }
            let outcome = outcome_of(existing.is_some());
            Ok((
                Some(Event::ServiceApplied(ServiceApplied {
                    name: s.name,
                    api_version: s.api_version,
                    labels: s.labels,
                    tenant: s.spec.register_tenant,
                    spec,
                })),
                outcome,
            ))
        }
        CatalogItem::Part(p) => {
            let Some(service) = state.services.get(&p.service) else {
                return Err(Rejection::invalid(
                    "metadata.name",
                    format!(
                        "service `{}` does not exist; a {} belongs to a service",
                        p.service,
                        p.part.kind()
                    ),
                ));
            };
            let existed = p.part.get(&service.spec).is_some();
            let spec = p.part.set(&service.spec, Some(p.spec))?;
            let event = service_with_spec(&p.service, service, &spec);
            Ok(match event {
                None => (None, Outcome::Unchanged),
                Some(event) => (Some(event), outcome_of(existed)),
            })
        }
        CatalogItem::MeshController(m) => {
            if let Some(c) = state.controller.as_ref().filter(|c| c.name != m.name) {
                return Err(one_controller(&c.name, &m.name));
            }
            let spec = serde_json::to_value(&m.spec)
                .expect("mesh controller specs serialize")
                .to_string();
            let event = MeshControllerApplied {
                name: m.name,
                api_version: m.api_version,
                labels: m.labels,
                heartbeat_interval_ms: m.limits.heartbeat_interval_ms,
                dead_record_ms: m.limits.dead_record_ms,
                registry_type: m.spec.registry_type.clone(),
                spec,
            };
            match &state.controller {
                Some(c)
                    if c.api_version == event.api_version
                        && c.labels == event.labels
                        && c.spec == event.spec =>
                {
                    Ok((None, Outcome::Unchanged))
                }
                existing => Ok((
                    Some(Event::MeshControllerApplied(event)),
                    outcome_of(existing.is_some()),
                )),
            }
        }
    }
}

/// The service with a new spec, as an event; `None` when the spec is what it already was.
fn service_with_spec(name: &str, service: &MeshService, spec: &spec::ServiceSpec) -> Option<Event> {
    let spec = serde_json::to_value(spec)
        .expect("service specs serialize")
        .to_string();
    (spec != service.spec).then(|| {
        Event::ServiceApplied(ServiceApplied {
            name: name.to_string(),
            api_version: service.api_version.clone(),
            labels: service.labels.clone(),
            tenant: service.tenant.clone(),
            spec,
        })
    })
}

fn delete(state: &ServiceState, r: CatalogRef) -> Result<Decision, Rejection> {
    let event = match r.kind {
        CatalogKind::Tenant => {
            let Some(tenant) = state.tenants.get(&r.name) else {
                return Err(Rejection::not_found(format!("{r} not found")));
            };
            if !tenant.services.is_empty() {
                let names: Vec<&str> = tenant.services.iter().map(String::as_str).collect();
                return Err(Rejection::invalid(
                    "name",
                    format!(
                        "tenant `{}` still has services ({}); delete them or move them to another tenant first",
                        r.name,
                        names.join(", ")
                    ),
                ));
            }
            Event::TenantDeleted(TenantDeleted { name: r.name })
        }
        CatalogKind::Service => {
            if !state.services.contains_key(&r.name) {
                return Err(Rejection::not_found(format!("{r} not found")));
            }
            Event::ServiceDeleted(ServiceDeleted { name: r.name })
        }
        CatalogKind::MeshController => {
            return Err(Rejection::invalid(
                "kind",
                "the mesh controller cannot be deleted; apply new settings instead",
            ))
        }
        CatalogKind::Part(part) => {
            let service = state
                .services
                .get(&r.name)
                .filter(|s| part.get(&s.spec).is_some())
                .ok_or_else(|| Rejection::not_found(format!("{r} not found")))?;
            let spec = part.set(&service.spec, None)?;
            service_with_spec(&r.name, service, &spec)
                .expect("removing a present part changes the spec")
        }
    };
    Ok(Decision {
        stream: CATALOG_STREAM.to_string(),
        expected: expect_version(state.version),
        events: vec![event],
        outcome: Outcome::Deleted,
        item_outcomes: vec![Outcome::Deleted],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decider::RejectionKind;
    use events::ExpectedVersion;
    use serde_json::json;

    fn given(history: &[Event]) -> ServiceState {
        let mut state = ServiceState::default();
        for (i, e) in history.iter().enumerate() {
            let meta = Meta {
                position: i as u64 + 1,
                stream_version: i as u64 + 1,
                recorded_at_ms: 1000 * i as i64,
            };
            Services::evolve(&mut state, e.clone(), &meta);
        }
        state
    }

    fn when(state: &ServiceState, command: ServiceCommand) -> Result<Decision, Rejection> {
        Services::decide(state, command, &mut Ctx::new(0, 1))
    }

    fn doc(kind: &str, name: &str, spec: serde_json::Value) -> CatalogItem {
        CatalogItem::from_document(&json!({"apiVersion": API_VERSION, "kind": kind,
            "metadata": {"name": name}, "spec": spec}))
        .unwrap()
    }

    fn tenant(name: &str) -> CatalogItem {
        doc("Tenant", name, json!({"description": "d"}))
    }

    fn service(name: &str, tenant: &str) -> CatalogItem {
        doc("Service", name, json!({"registerTenant": tenant}))
    }

    /// The events of a decision applied on top of `history`.
    fn then(history: &[Event], command: ServiceCommand) -> Vec<Event> {
        let mut all = history.to_vec();
        all.extend(when(&given(history), command).unwrap().events);
        all
    }

    #[test]
    fn a_file_with_a_tenant_and_its_services_applies_in_one_decision() {
        let d = when(
            &given(&[]),
            ServiceCommand::Apply(vec![tenant("takeaway"), service("order", "takeaway")]),
        )
        .unwrap();
        assert_eq!(d.stream, CATALOG_STREAM);
        assert_eq!(d.expected, ExpectedVersion::NoStream);
        assert_eq!(d.item_outcomes, [Outcome::Created, Outcome::Created]);
        let state = given(&d.events);
        assert_eq!(
            state.tenants["takeaway"].services,
            BTreeSet::from(["order".to_string()])
        );
    }

    #[test]
    fn a_service_needs_its_tenant() {
        let err = when(
            &given(&[]),
            ServiceCommand::Apply(vec![service("order", "nope")]),
        )
        .unwrap_err();
        assert_eq!(err.kind, RejectionKind::Invalid);
        assert_eq!(err.field.as_deref(), Some("spec.registerTenant"));
        assert!(err.message.contains("`nope` does not exist"), "{err}");
    }

    #[test]
    fn a_tenant_with_services_cannot_be_deleted() {
        let history = then(
            &[],
            ServiceCommand::Apply(vec![tenant("t"), service("a", "t")]),
        );
        let err = when(
            &given(&history),
            ServiceCommand::Delete(CatalogRef {
                kind: CatalogKind::Tenant,
                name: "t".into(),
            }),
        )
        .unwrap_err();
        assert_eq!(err.kind, RejectionKind::Invalid);
        assert!(err.message.contains("still has services (a)"), "{err}");
        // Once the service is gone, the tenant can go.
        let history = then(
            &history,
            ServiceCommand::Delete(CatalogRef {
                kind: CatalogKind::Service,
                name: "a".into(),
            }),
        );
        let d = when(
            &given(&history),
            ServiceCommand::Delete(CatalogRef {
                kind: CatalogKind::Tenant,
                name: "t".into(),
            }),
        )
        .unwrap();
        assert_eq!(d.expected, ExpectedVersion::Exact(3));
    }

    #[test]
    fn moving_a_service_moves_it_between_tenant_lists() {
        let history = then(
            &[],
            ServiceCommand::Apply(vec![tenant("a"), tenant("b"), service("s", "a")]),
        );
        let history = then(&history, ServiceCommand::Apply(vec![service("s", "b")]));
        let state = given(&history);
        assert!(state.tenants["a"].services.is_empty());
        assert!(state.tenants["b"].services.contains("s"));
        assert_eq!(state.services["s"].created_at_ms, 2000);
    }

    #[test]
    fn create_conflicts_update_needs_existence_and_identical_apply_is_unchanged() {
        let history = then(&[], ServiceCommand::Apply(vec![tenant("t")]));
        let state = given(&history);
        let err = when(&state, ServiceCommand::Create(Box::new(tenant("t")))).unwrap_err();
        assert_eq!(err.kind, RejectionKind::Conflict);
        let err = when(&state, ServiceCommand::Update(Box::new(service("s", "t")))).unwrap_err();
        assert_eq!(err.kind, RejectionKind::NotFound);
        let d = when(&state, ServiceCommand::Apply(vec![tenant("t")])).unwrap();
        assert_eq!((d.outcome, d.events.len()), (Outcome::Unchanged, 0));
    }

    #[test]
    fn service_parts_apply_inside_their_service() {
        let history = then(
            &[],
            ServiceCommand::Apply(vec![tenant("t"), service("s", "t")]),
        );
        let lb = doc("LoadBalance", "s", json!({"policy": "ipHash"}));
        let d = when(&given(&history), ServiceCommand::Apply(vec![lb.clone()])).unwrap();
        assert_eq!(d.outcome, Outcome::Created);
        let history = [history, d.events].concat();
        let state = given(&history);
        assert!(state.services["s"]
            .spec
            .contains(r#""loadBalance":{"policy":"ipHash"}"#));
        let d = when(&state, ServiceCommand::Apply(vec![lb])).unwrap();
        assert_eq!(d.outcome, Outcome::Unchanged);
        let err = when(
            &state,
            ServiceCommand::Apply(vec![doc(
                "LoadBalance",
                "ghost",
                json!({"policy": "random"}),
            )]),
        )
        .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("metadata.name"), "{err}");
        let err = when(
            &state,
            ServiceCommand::Apply(vec![doc("LoadBalance", "s", json!({"policy": "x"}))]),
        )
        .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("spec.policy"), "{err}");
        let part = CatalogRef {
            kind: CatalogKind::Part(ServicePart::LoadBalance),
            name: "s".into(),
        };
        let d = when(&state, ServiceCommand::Delete(part.clone())).unwrap();
        let state = given(&[history, d.events].concat());
        assert!(!state.services["s"].spec.contains("loadBalance"));
        let err = when(&state, ServiceCommand::Delete(part)).unwrap_err();
        assert_eq!(err.kind, RejectionKind::NotFound);
    }

    #[test]
    fn one_mesh_controller_per_mesh() {
        let mc = |name: &str, interval: &str| {
            doc(
                "MeshController",
                name,
                json!({"heartbeatInterval": interval, "registryType": "eureka"}),
            )
        };
        let history = then(
            &[],
            ServiceCommand::Apply(vec![mc("easemesh-controller", "5s")]),
        );
        let state = given(&history);
        assert_eq!(state.heartbeat_interval_ms(), 5000);
        let err = when(&state, ServiceCommand::Apply(vec![mc("other", "5s")])).unwrap_err();
        assert_eq!(err.kind, RejectionKind::Conflict);
        let d = when(
            &state,
            ServiceCommand::Apply(vec![mc("easemesh-controller", "2s")]),
        )
        .unwrap();
        assert_eq!(
            given(&[history, d.events].concat()).heartbeat_interval_ms(),
            2000
        );
    }
}
