//! Listing instances with EaseMesh's filters (service, tenant, labels, status).

use std::ops::Bound;

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
    /// Only instances after this one, in (service, instance id) order: where a page of a
    /// listing continues.
    pub after: Option<InstanceKey>,
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
        // Walk only the part of the map that can match: from the page's continuation or the
        // service's first key, and, with a service given, only while in that service.
        let start = match (&filter.after, &filter.service) {
            (Some(after), Some(service)) if after.service >= *service => {
                Bound::Excluded(after.clone())
            }
            (Some(after), None) => Bound::Excluded(after.clone()),
            (_, Some(service)) => Bound::Included(InstanceKey::new(service.clone(), String::new())),
            (None, None) => Bound::Unbounded,
        };
        self.instances
            .range((start, Bound::Unbounded))
            .take_while(move |(k, _)| filter.service.as_ref().is_none_or(|s| k.service == *s))
            .filter(move |(k, i)| filter.matches(self, k, i))
    }
}
