//! Listing instances with EaseMesh's filters (service, tenant, labels, status).

use events::schema::InstanceKey;

use super::{Instance, InstanceState, Status};

/// What to list. Every given condition must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InstanceFilter {
    pub service: Option<String>,
    pub tenant: Option<String>,
    /// `key=value` pairs, all of which the instance's labels must contain.
    pub labels: Vec<(String, String)>,
    pub status: Option<Status>,
}

impl InstanceFilter {
    pub fn matches(&self, state: &InstanceState, key: &InstanceKey, instance: &Instance) -> bool {
        self.service.as_ref().is_none_or(|s| *s == key.service)
            && self
                .tenant
                .as_ref()
                .is_none_or(|t| t == state.tenant_of(key))
            && self
                .labels
                .iter()
                .all(|(k, v)| instance.labels.get(k) == Some(v))
            && self.status.is_none_or(|s| s == instance.status())
    }
}

impl InstanceState {
    /// Instances matching `filter`, in (service, instance id) order.
    pub fn query<'a>(
        &'a self,
        filter: &'a InstanceFilter,
    ) -> impl Iterator<Item = (&'a InstanceKey, &'a Instance)> + 'a {
        // With a service given, walk only that service's range of the map.
        let range: Box<dyn Iterator<Item = (&InstanceKey, &Instance)>> = match &filter.service {
            Some(service) => Box::new(
                self.instances
                    .range(InstanceKey::new(service.clone(), String::new())..)
                    .take_while(move |(k, _)| k.service == *service),
            ),
            None => Box::new(self.instances.iter()),
        };
        range.filter(move |(k, i)| filter.matches(self, k, i))
    }
}
