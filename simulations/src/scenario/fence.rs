//! The fence, Bookinfo-like: productpage calls details and reviews, reviews calls ratings; a
//! VirtualService sends reviews to reviews-v2 (and, now and then, to reviews-v3); new
//! dependencies appear (productpage → ratings, reviews → details) and old ones go idle past
//! the TTL. A SlimeBoot sets short `dependencyTtl`/`idleGrace`/`refreshWindow`, so ageing
//! happens within a run. Sightings go to the fence as `Observe` commands, one per fence per
//! step, as the access-log intake batches them; the daemon's monitor sweeps what
//! `FenceState::due` says is due.

use std::collections::BTreeMap;

use actors::fence::{FenceCommand, Sighting};
use actors::MeshCommand;
use events::schema::{FenceKey, Via};
use rand::Rng;
use serde_json::{json, Value};

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

fn host(service: &str) -> String {
    format!("{service}.{NAMESPACE}.svc.cluster.local")
}

#[derive(Clone, Debug)]
struct Call {
    from: usize,
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
            to: host(to),
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
        let mut seen: BTreeMap<usize, Vec<Sighting>> = BTreeMap::new();
        for call in &self.calls {
            if call.active && world.rng.random_bool(SIGHTING) {
                let from = &self.fences[call.from];
                seen.entry(call.from).or_default().push(Sighting {
                    host: call.to.clone(),
                    seen_at_ms: now,
                    source: format!(
                        "10.2.0.{} → {}/{}",
                        call.from + 1,
                        from.namespace,
                        from.name
                    ),
                    raw: format!("{}:9080", call.to),
                });
            }
        }
        for (fence, sightings) in seen {
            let command = FenceCommand::Observe {
                fence: self.fences[fence].clone(),
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
