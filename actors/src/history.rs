//! Where an object's history is in the log: which streams hold the events that touched it, and
//! which of a shared stream's events concern it. Each concept says so for the objects it keeps
//! ([`Concept::history`]); `meshplane history` and `/api/v1/history` ask every concept through
//! the registry and merge what they name, in log order.
//!
//! [`Concept::history`]: crate::Concept::history

use events::Event;

use crate::decider::Rejection;
use crate::kinds;
use crate::registry::{for_each_concept, ConceptVisitor, Registered};
use crate::resource::manifest::DEFAULT_NAMESPACE;

/// An object as a history request names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectName {
    /// A Kubernetes kind of the kind table (canonical: `ConfigMap`), or one of a concept's own
    /// object kinds ([`Concept::OBJECT_KINDS`](crate::Concept::OBJECT_KINDS): `Tenant`).
    pub kind: String,
    /// Empty for cluster-scoped kinds and concepts' own objects.
    pub namespace: String,
    pub name: String,
}

/// One stream holding (part of) an object's history.
#[derive(Clone, Debug)]
pub struct HistorySource {
    pub stream: String,
    /// For a stream shared by many objects: whether one of its events concerns the object.
    pub only: Option<fn(&Event, &ObjectName) -> bool>,
}

impl HistorySource {
    /// A stream of the object's own.
    pub fn whole(stream: String) -> Self {
        HistorySource { stream, only: None }
    }

    /// A shared stream, of which only the events `only` accepts concern the object.
    pub fn filtered(stream: String, only: fn(&Event, &ObjectName) -> bool) -> Self {
        HistorySource {
            stream,
            only: Some(only),
        }
    }

    /// Whether `event`, read from this source, belongs to `object`'s history.
    pub fn concerns(&self, event: &Event, object: &ObjectName) -> bool {
        self.only.is_none_or(|only| only(event, object))
    }
}

/// Resolve `kind` (a Kubernetes kind by name, plural or alias, or a concept's own object kind)
/// and find every stream that holds the history of `namespace/name` of it. `namespace` defaults
/// to `default` for namespaced kinds.
pub fn sources(
    kind: &str,
    namespace: Option<&str>,
    name: &str,
) -> Result<(ObjectName, Vec<HistorySource>), Rejection> {
    let object = match kinds::all().find(|k| k.matches(kind)) {
        Some(spec) => ObjectName {
            kind: spec.kind.to_string(),
            namespace: if spec.namespaced {
                namespace.unwrap_or(DEFAULT_NAMESPACE).to_string()
            } else {
                String::new()
            },
            name: name.to_string(),
        },
        None if own_kinds().contains(&kind) => ObjectName {
            kind: kind.to_string(),
            namespace: String::new(),
            name: name.to_string(),
        },
        None => {
            return Err(Rejection::invalid(
                "kind",
                format!(
                    "unknown kind `{kind}` ({}, or one of {})",
                    own_kinds().join(", "),
                    kinds::all().map(|k| k.kind).collect::<Vec<_>>().join(", ")
                ),
            ))
        }
    };
    struct Collect<'a> {
        object: &'a ObjectName,
        sources: Vec<HistorySource>,
        error: Option<Rejection>,
    }
    impl ConceptVisitor for Collect<'_> {
        fn visit<C: Registered>(&mut self) {
            match C::history(self.object) {
                Ok(sources) => self.sources.extend(sources),
                Err(e) => {
                    self.error.get_or_insert(e);
                }
            }
        }
    }
    let mut collect = Collect {
        object: &object,
        sources: Vec::new(),
        error: None,
    };
    for_each_concept(&mut collect);
    if let Some(e) = collect.error {
        return Err(e);
    }
    let sources = collect.sources;
    Ok((object, sources))
}

/// Every concept's own object kinds, in registry order.
pub fn own_kinds() -> Vec<&'static str> {
    struct Own(Vec<&'static str>);
    impl ConceptVisitor for Own {
        fn visit<C: Registered>(&mut self) {
            self.0.extend(C::OBJECT_KINDS);
        }
    }
    let mut own = Own(Vec::new());
    for_each_concept(&mut own);
    own.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn streams(kind: &str, namespace: Option<&str>, name: &str) -> Vec<String> {
        let (_, sources) = sources(kind, namespace, name).unwrap();
        sources.into_iter().map(|s| s.stream).collect()
    }

    #[test]
    fn every_concept_names_the_streams_of_the_objects_it_keeps() {
        // An applied kind, by alias, in the default namespace.
        assert_eq!(
            streams("cm", None, "web"),
            ["resource/ConfigMap/default/web"]
        );
        // Applied and watched: its stream and its observations.
        assert_eq!(
            streams("Service", Some("shop"), "web"),
            ["resource/Service/shop/web", "cluster/Service"]
        );
        // A ServiceFence: applied, what its fence learned, observed.
        assert_eq!(
            streams("svf", Some("shop"), "web"),
            [
                "resource/ServiceFence/shop/web",
                "fence/shop/web",
                "cluster/ServiceFence"
            ]
        );
        // Watched only; a Sidecar's history is its fence's.
        assert_eq!(streams("pods", Some("shop"), "web-1"), ["cluster/Pod"]);
        assert_eq!(streams("Sidecar", Some("shop"), "web"), ["fence/shop/web"]);
        assert_eq!(streams("Tenant", None, "takeaway"), ["service/catalog"]);
        assert_eq!(
            streams("ServiceInstance", None, "order/a"),
            ["instance/order/a"]
        );
    }

    #[test]
    fn shared_streams_keep_only_the_objects_events() {
        let (object, sources) = sources("pod", Some("shop"), "web-1").unwrap();
        let seen = |name: &str| {
            Event::ObjectGone(events::schema::cluster::ObjectGone {
                key: events::schema::ResourceKey::new("Pod", "shop", name),
                uid: String::new(),
            })
        };
        assert!(sources[0].concerns(&seen("web-1"), &object));
        assert!(!sources[0].concerns(&seen("web-2"), &object));
    }

    #[test]
    fn malformed_names_and_unknown_kinds_are_refused_with_the_field() {
        let e = sources("ServiceInstance", None, "no-slash").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("name"));
        let e = sources("Widget", None, "w").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("kind"));
        assert!(e.message.contains("ServiceInstance"), "{}", e.message);
    }
}
