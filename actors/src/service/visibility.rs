//! Which services a service can see: those of its own tenant and those of the reserved tenant
//! `global` (traffic-target grants will widen this).

use super::{ServiceState, GLOBAL_TENANT};

/// The services `service` can see (itself included), sorted; `None` when it does not exist.
pub fn visible_services<'a>(state: &'a ServiceState, service: &str) -> Option<Vec<&'a str>> {
    let own = &state.services.get(service)?.tenant;
    let mut visible: Vec<&str> = state
        .services
        .iter()
        .filter(|(_, s)| s.tenant == *own || s.tenant == GLOBAL_TENANT)
        .map(|(name, _)| name.as_str())
        .collect();
    visible.sort_unstable();
    Some(visible)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::{CatalogItem, ServiceCommand, Services, API_VERSION};
    use crate::{Ctx, Decider, Meta};
    use serde_json::json;

    #[test]
    fn own_tenant_and_global_are_visible() {
        let doc = |kind: &str, name: &str, spec: serde_json::Value| {
            CatalogItem::from_document(&json!({"apiVersion": API_VERSION, "kind": kind,
                "metadata": {"name": name}, "spec": spec}))
            .unwrap()
        };
        let items = vec![
            doc("Tenant", "a", json!({})),
            doc("Tenant", "b", json!({})),
            doc("Tenant", "global", json!({})),
            doc("Service", "a1", json!({"registerTenant": "a"})),
            doc("Service", "a2", json!({"registerTenant": "a"})),
            doc("Service", "b1", json!({"registerTenant": "b"})),
            doc("Service", "g1", json!({"registerTenant": "global"})),
        ];
        let d = Services::decide(
            &ServiceState::default(),
            ServiceCommand::Apply(items),
            &mut Ctx::new(0, 0),
        )
        .unwrap();
        let mut state = ServiceState::default();
        for (i, e) in d.events.into_iter().enumerate() {
            let meta = Meta {
                position: i as u64 + 1,
                stream_version: i as u64 + 1,
                recorded_at_ms: 0,
            };
            Services::evolve(&mut state, e, &meta);
        }
        assert_eq!(visible_services(&state, "a1").unwrap(), ["a1", "a2", "g1"]);
        assert_eq!(visible_services(&state, "b1").unwrap(), ["b1", "g1"]);
        assert_eq!(visible_services(&state, "g1").unwrap(), ["g1"]);
        assert!(visible_services(&state, "zz").is_none());
    }
}
