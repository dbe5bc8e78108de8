//! One-line summaries of events, for `meshplane history`: what happened to an object, in words
//! an operator reads, with the evidence a decision was taken on.

use events::schema::{Ageing, Silence};
use events::Event;

use crate::time::rfc3339;

fn silence(s: &Silence) -> String {
    let last = if s.heartbeat_seen {
        format!("last heartbeat {}", rfc3339(s.last_heartbeat_ms))
    } else {
        format!(
            "no heartbeat since the daemon started watching at {}",
            rfc3339(s.last_heartbeat_ms)
        )
    };
    format!(
        "{last}, deadline {}, noticed {}",
        rfc3339(s.deadline_ms),
        rfc3339(s.detected_at_ms)
    )
}

fn ageing(a: &Ageing) -> String {
    format!(
        "last seen {}, deadline {}, noticed {}",
        rfc3339(a.last_seen_ms),
        rfc3339(a.deadline_ms),
        rfc3339(a.detected_at_ms)
    )
}

/// What the event did, in one line.
pub fn summarize(event: &Event) -> String {
    match event {
        Event::ResourceApplied(e) => format!("applied {} ({})", e.key, e.api_version),
        Event::ResourceDeleted(e) => format!("deleted {}", e.key),
        Event::TenantApplied(e) => format!("tenant {} applied", e.name),
        Event::TenantDeleted(e) => format!("tenant {} deleted", e.name),
        Event::ServiceApplied(e) => format!("service {} applied in tenant {}", e.name, e.tenant),
        Event::ServiceDeleted(e) => format!("service {} deleted", e.name),
        Event::MeshControllerApplied(e) => format!(
            "mesh controller {} applied: heartbeat interval {} ms, dead-record time {} ms, registry {}",
            e.name, e.heartbeat_interval_ms, e.dead_record_ms, e.registry_type
        ),
        Event::InstanceRegistered(e) => {
            let labels: Vec<String> = e.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!(
                "registered at {}:{} (labels {}, agent {}), registry time {}",
                e.ip,
                e.port,
                if labels.is_empty() {
                    "none".to_string()
                } else {
                    labels.join(",")
                },
                e.agent_type,
                rfc3339(e.registry_time_ms)
            )
        }
        Event::InstanceDeregistered(_) => "deregistered".to_string(),
        Event::InstanceOutOfService(e) => format!("out of service: {}", silence(&e.silence)),
        Event::InstanceRecovered(e) => {
            format!("back up: heartbeat at {}", rfc3339(e.heartbeat_ms))
        }
        Event::InstanceExpired(e) => format!("removed: {}", silence(&e.silence)),
        Event::InstanceTakenOffline(e) if e.reason.is_empty() => "taken offline".to_string(),
        Event::InstanceTakenOffline(e) => format!("taken offline: {}", e.reason),
        Event::InstanceBroughtOnline(_) => "brought back online".to_string(),
        Event::DependencyLearned(e) => format!(
            "learned dependency {} (seen as {}) from {} at {}, caller {}",
            e.host,
            e.raw,
            e.via.as_str(),
            rfc3339(e.seen_at_ms),
            e.source
        ),
        Event::DependencySeen(e) => format!(
            "dependency {} seen again ({}) at {}",
            e.host,
            e.via.as_str(),
            rfc3339(e.seen_at_ms)
        ),
        Event::DependencyIdle(e) => format!(
            "dependency {} idle (EXPIREWAIT): {}",
            e.host,
            ageing(&e.ageing)
        ),
        Event::DependencyForgotten(e) => format!(
            "dependency {} forgotten: {}",
            e.host,
            ageing(&e.ageing)
        ),
        Event::RolledBack(e) if e.reason.is_empty() => format!("rolled back to position {}", e.to),
        Event::RolledBack(e) => format!("rolled back to position {}: {}", e.to, e.reason),
        Event::HostDeadlinePassed(e) => format!(
            "static host {} expired: deadline {}, noticed {}",
            e.host,
            rfc3339(e.deadline_ms),
            rfc3339(e.detected_at_ms)
        ),
        Event::ObjectObserved(e) => format!("observed {} in the cluster (uid {})", e.key, e.uid),
        Event::ObjectGone(e) => format!("gone from the cluster: {} (uid {})", e.key, e.uid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_event_has_a_summary_and_silences_show_their_evidence() {
        for event in Event::samples() {
            assert!(!summarize(&event).is_empty(), "{event:?}");
        }
        let out = Event::samples()
            .into_iter()
            .find(|e| matches!(e, Event::InstanceOutOfService(_)))
            .unwrap();
        let text = summarize(&out);
        assert!(
            text.starts_with("out of service: last heartbeat "),
            "{text}"
        );
        assert!(text.contains("deadline "), "{text}");
    }
}
