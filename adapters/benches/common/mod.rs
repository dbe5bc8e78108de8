//! What the replay and time-travel benchmarks share: the event their logs are made of.

use std::collections::BTreeMap;

use events::schema::{ResourceApplied, ResourceKey};
use events::Event;

/// Event `i` of the benchmark log: `objects` ConfigMaps applied over and over (avg payload
/// ~180 B), so the state stays at `objects` resources however long the log.
pub fn configmap_event(i: u64, objects: u64) -> Event {
    let n = i % objects;
    Event::ResourceApplied(ResourceApplied {
        key: ResourceKey::new(
            "ConfigMap",
            format!("team-{}", n % 50),
            format!("config-{n}"),
        ),
        api_version: "v1".into(),
        labels: BTreeMap::from([("app".into(), format!("app-{}", n % 300))]),
        annotations: BTreeMap::new(),
        body: format!(
            r#"{{"data":{{"generation":"{i:012}","payload":"{}"}}}}"#,
            "x".repeat(80)
        ),
    })
}
