//! Who called: the caller's address → the services whose Endpoints list it (ready or not:
//! calls made while a pod starts count too, Slime #420). Kept in memory, in step with the log
//! through a delivery observer, so the access-log intake never waits on an actor.

use std::collections::HashMap;
use std::sync::RwLock;

use actors::Meta;

use crate::host::Observer;
use events::schema::ResourceKey;
use events::Event;
use serde_json::Value;

/// `namespace/name` of a service.
pub type ServiceKey = (String, String);

#[derive(Default)]
struct Table {
    /// ip → services listing it.
    by_ip: HashMap<String, Vec<ServiceKey>>,
    /// Endpoints object → the ips it lists (to undo on change).
    listed: HashMap<ServiceKey, Vec<String>>,
}

/// The address → service table.
#[derive(Default)]
pub struct Attribution {
    table: RwLock<Table>,
}

impl Attribution {
    /// Build from every Endpoints of a folded state: applied through meshplane, or observed
    /// in the cluster.
    pub fn from_mesh(mesh: &actors::Mesh) -> Self {
        let me = Attribution::default();
        for (key, r) in mesh.resources.list("Endpoints", None) {
            let body: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
            me.set(key, &body);
        }
        for (key, o) in mesh.cluster.of_kind("Endpoints") {
            let body: Value = serde_json::from_str(&o.body).unwrap_or(Value::Null);
            me.set(key, &body);
        }
        me
    }

    /// Follow one delivered event.
    fn follow(&self, event: &Event) {
        match event {
            Event::ResourceApplied(e) if e.key.kind == "Endpoints" => {
                let body: Value = serde_json::from_str(&e.body).unwrap_or(Value::Null);
                self.set(&e.key, &body);
            }
            Event::ResourceDeleted(e) if e.key.kind == "Endpoints" => self.remove(&e.key),
            Event::ObjectObserved(e) if e.key.kind == "Endpoints" => {
                let body: Value = serde_json::from_str(&e.body).unwrap_or(Value::Null);
                self.set(&e.key, &body);
            }
            Event::ObjectGone(e) if e.key.kind == "Endpoints" => self.remove(&e.key),
            _ => {}
        }
    }

    /// Rebuild from a whole state (a rollback).
    fn rebuild(&self, mesh: &actors::Mesh) {
        let fresh = Attribution::from_mesh(mesh);
        let table = fresh.table.into_inner().expect("attribution lock");
        *self.table.write().expect("attribution lock") = table;
    }

    fn set(&self, key: &ResourceKey, body: &Value) {
        let service = (key.namespace.clone(), key.name.clone());
        let mut ips: Vec<String> = body["subsets"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|s| {
                let ready = s["addresses"].as_array().into_iter().flatten();
                let not_ready = s["notReadyAddresses"].as_array().into_iter().flatten();
                ready.chain(not_ready)
            })
            .filter_map(|a| a["ip"].as_str().map(str::to_string))
            .collect();
        ips.sort();
        ips.dedup();
        let mut table = self.table.write().expect("attribution lock");
        Self::unlist(&mut table, &service);
        for ip in &ips {
            let services = table.by_ip.entry(ip.clone()).or_default();
            services.push(service.clone());
            services.sort();
        }
        table.listed.insert(service, ips);
    }

    fn remove(&self, key: &ResourceKey) {
        let service = (key.namespace.clone(), key.name.clone());
        let mut table = self.table.write().expect("attribution lock");
        Self::unlist(&mut table, &service);
        table.listed.remove(&service);
    }

    fn unlist(table: &mut Table, service: &ServiceKey) {
        let Some(ips) = table.listed.get(service).cloned() else {
            return;
        };
        for ip in ips {
            if let Some(services) = table.by_ip.get_mut(&ip) {
                services.retain(|s| s != service);
                if services.is_empty() {
                    table.by_ip.remove(&ip);
                }
            }
        }
    }

    /// The services an address belongs to, in key order.
    pub fn services_of(&self, ip: &str) -> Vec<ServiceKey> {
        let table = self.table.read().expect("attribution lock");
        table.by_ip.get(ip).cloned().unwrap_or_default()
    }

    /// Whether the service `namespace/name` has Endpoints (completes `name.namespace`).
    pub fn has_service(&self, namespace: &str, name: &str) -> bool {
        let table = self.table.read().expect("attribution lock");
        table
            .listed
            .contains_key(&(namespace.to_string(), name.to_string()))
    }

    /// Run `f` with read access to both lookups at once (one lock for a whole batch).
    pub fn with<R>(&self, f: impl FnOnce(&dyn Lookup) -> R) -> R {
        let table = self.table.read().expect("attribution lock");
        f(&*table)
    }
}

impl Observer for Attribution {
    fn observe(&self, event: &Event, _meta: &Meta) {
        self.follow(event);
    }

    fn reset(&self, mesh: &actors::Mesh) {
        self.rebuild(mesh);
    }
}

/// Read access to the table, for a batch of entries.
pub trait Lookup {
    fn services_of(&self, ip: &str) -> &[ServiceKey];
    fn has_service(&self, namespace: &str, name: &str) -> bool;
}

impl Lookup for Table {
    fn services_of(&self, ip: &str) -> &[ServiceKey] {
        self.by_ip.get(ip).map(Vec::as_slice).unwrap_or(&[])
    }

    fn has_service(&self, namespace: &str, name: &str) -> bool {
        // Endpoints keys are few compared with entries; a temporary key per lookup is cheap.
        self.listed
            .contains_key(&(namespace.to_string(), name.to_string()))
    }
}
