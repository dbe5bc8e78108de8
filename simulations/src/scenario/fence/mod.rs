//! The fence, Bookinfo-like: productpage calls details and reviews, reviews calls ratings; a
//! VirtualService sends reviews to reviews-v2 (and, now and then, to reviews-v3); new
//! dependencies appear (productpage → ratings, reviews → details) and old ones go idle past
//! the TTL. A SlimeBoot sets short `dependencyTtl`/`idleGrace`/`refreshWindow`, so ageing
//! happens within a run. Calls reach the daemon as the global sidecar's access-log entries
//! (caller address, `inbound|9080||`, `details:9080`), attributed and normalised by the real
//! `actors::fence::attribution` against the daemon's address table (from the applied
//! Endpoints), then handed to the fence as `Observe` commands, one per fence per step, as the
//! access-log intake batches them; the daemon's timers sweep what is due.

use std::collections::BTreeMap;

use actors::fence::attribution::{attribute, AccessLogEntry};
use actors::fence::{FenceCommand, Fences, Sighting};
use actors::MeshCommand;
use events::schema::{FenceKey, Via};
use rand::Rng;
use serde_json::{json, Value};

pub mod invariants;

use super::{apply_documents, Scenario};
use crate::world::{Failure, World};

pub const NAMESPACE: &str = "bookinfo";
pub const DEPENDENCY_TTL_MS: i64 = 10_000;
pub const IDLE_GRACE_MS: i64 = 5_000;
/// Chance per step that a dependency starts or stops being called.
const TOGGLE: f64 = 0.01;
/// Chance per step that the VirtualService of reviews is re-pointed.
const REROUTE: f64 = 0.003;
/// Chance per step that an active call is seen in the access log.
const SIGHTING: f64 = 0.3;

/// The address of the pods of fence `i` (listed in its service's Endpoints).
fn caller_ip(i: usize) -> String {
    format!("10.2.0.{}", i + 1)
}

#[derive(Clone, Debug)]
struct Call {
    from: usize,
    /// The called service's short name, as the caller's requests name it.
    to: String,
    active: bool,
}

pub struct FenceScenario {
    fences: Vec<FenceKey>,
    calls: Vec<Call>,
    reviews_version: u32,
}

impl FenceScenario {
    pub fn new() -> FenceScenario {
        let fences = vec![
            FenceKey::new(NAMESPACE, "productpage"),
            FenceKey::new(NAMESPACE, "reviews"),
        ];
        let call = |from, to: &str, active| Call {
            from,
            to: to.to_string(),
            active,
        };
        let calls = vec![
            call(0, "details", true),
            call(0, "reviews", true),
            call(1, "ratings", true),
            // New dependencies, not called yet.
            call(0, "ratings", false),
            call(1, "details", false),
        ];
        FenceScenario {
            fences,
            calls,
            reviews_version: 2,
        }
    }

    fn virtual_service(&self) -> Value {
        json!({"apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
            "metadata": {"name": "reviews", "namespace": NAMESPACE},
            "spec": {"hosts": ["reviews"], "http": [{"route": [
                {"destination": {"host": format!("reviews-v{}", self.reviews_version)}}]}]}})
    }
}

impl Default for FenceScenario {
    fn default() -> Self {
        FenceScenario::new()
    }
}

fn service(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": name}},
        "spec": {"selector": {"app": name}, "ports": [{"port": 9080, "name": "http"}]}})
}

impl Scenario for FenceScenario {
    fn check(&mut self, world: &mut World) -> Result<(), Failure> {
        invariants::check(world)
    }

    fn name(&self) -> &'static str {
        "fence"
    }

    fn setup(&mut self, world: &mut World) -> Result<(), Failure> {
        let mut docs = vec![
            json!({"apiVersion": "config.netease.com/v1alpha1", "kind": "SlimeBoot",
                "metadata": {"name": "lazyload", "namespace": "mesh-operator"},
                "spec": {"module": [{"name": "lazyload", "kind": "lazyload", "enable": true,
                    "general": {"wormholePort": ["9080"], "dependencyTtl": "10s",
                        "idleGrace": "5s", "refreshWindow": "2s"},
                    "global": {"misc": {"metricSourceType": "accesslog"}}}]}}),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}),
        ];
        for name in [
            "productpage",
            "details",
            "reviews",
            "reviews-v2",
            "reviews-v3",
            "ratings",
        ] {
            docs.push(service(name));
        }
        docs.push(self.virtual_service());
        for (i, fence) in self.fences.iter().enumerate() {
            docs.push(json!({"apiVersion": "v1", "kind": "Endpoints",
                "metadata": {"name": fence.name, "namespace": fence.namespace},
                "subsets": [{"addresses": [{"ip": caller_ip(i)}], "ports": [{"port": 9080}]}]}));
        }
        for fence in &self.fences {
            docs.push(json!({"apiVersion": "microservice.slime.io/v1alpha1",
                "kind": "ServiceFence",
                "metadata": {"name": fence.name, "namespace": fence.namespace},
                "spec": {"enable": true}}));
        }
        apply_documents(world, &docs)
    }

    fn act(&mut self, world: &mut World, healing: bool) {
        let now = world.now_ms;
        let mut entries = Vec::new();
        for call in &self.calls {
            if call.active && world.rng.random_bool(SIGHTING) {
                entries.push(AccessLogEntry {
                    downstream_ip: caller_ip(call.from),
                    upstream_cluster: "inbound|9080||".into(),
                    authority: format!("{}:9080", call.to),
                    source: None,
                    start_time_ms: now,
                });
            }
        }
        let mut attributed = Vec::new();
        if let Some(addresses) = world.memory_mut::<Fences>() {
            for entry in &entries {
                // An entry the rules skip is counted by the real intake; here it is dropped.
                let _ = attribute(entry, addresses, &mut attributed);
            }
        }
        let mut seen: BTreeMap<FenceKey, Vec<Sighting>> = BTreeMap::new();
        for a in attributed {
            seen.entry(a.fence).or_default().push(Sighting {
                host: a.host,
                seen_at_ms: now,
                source: a.source,
                raw: a.raw,
            });
        }
        for (fence, sightings) in seen {
            let command = FenceCommand::Observe {
                fence,
                via: Via::AccessLog,
                sightings,
            };
            world.actions += 1;
            let _ = world.execute(MeshCommand::Fence(command));
        }
        if healing {
            return;
        }
        if world.rng.random_bool(TOGGLE) {
            let i = world.rng.random_range(0..self.calls.len());
            self.calls[i].active = !self.calls[i].active;
            let text = format!(
                "{}:{}→{}",
                if self.calls[i].active { "call" } else { "idle" },
                self.fences[self.calls[i].from].name,
                self.calls[i].to
            );
            world.note(&text);
        }
        if world.rng.random_bool(REROUTE) && world.up() {
            self.reviews_version = if self.reviews_version == 2 { 3 } else { 2 };
            let text = format!("reroute:reviews→v{}", self.reviews_version);
            world.note(&text);
            let _ = apply_documents(world, &[self.virtual_service()]);
        }
    }
}
