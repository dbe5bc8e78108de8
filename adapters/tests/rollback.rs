//! Rollbacks in the live host against a replay of the same log: on random histories of
//! resources, registry changes, fence sightings and rollbacks, the state the actors hold after
//! each step equals the fold of the log (so a restart, or `replay`, reproduces the daemon).

use std::sync::Arc;

use actors::fence::{FenceCommand, Sighting};
use actors::instance::{InstanceCommand, Registration};
use actors::mesh::document_command;
use actors::MeshCommand;
use adapters::daemon::start_host;
use adapters::host::{fold, DispatchError};
use adapters::metrics::Metrics;
use events::backend::memory::MemoryBackend;
use events::schema::{FenceKey, Via};
use events::{EventStore, Log};
use rand::{Rng, SeedableRng};
use serde_json::json;

fn documents() -> Vec<serde_json::Value> {
    vec![
        json!({"apiVersion": "mesh.megaease.com/v2alpha1", "kind": "Tenant", "metadata": {"name": "t"}}),
        json!({"apiVersion": "mesh.megaease.com/v2alpha1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"registerTenant": "t"}}),
        json!({"apiVersion": "microservice.slime.io/v1alpha1", "kind": "ServiceFence",
            "metadata": {"name": "pp", "namespace": "default"}, "spec": {"enable": true}}),
    ]
}

#[actix_rt::test]
async fn live_state_after_rollbacks_equals_the_replayed_log() {
    for seed in 0..6u64 {
        let store: Arc<dyn EventStore> = Arc::new(Log::open(MemoryBackend::new()).unwrap());
        let host = start_host(store.clone(), Arc::new(Metrics::default()), None).unwrap();
        let dispatcher = host.dispatcher;
        for d in documents() {
            dispatcher
                .execute(document_command(&d).unwrap())
                .await
                .unwrap();
        }
        let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
        for step in 0..40 {
            let command = match rng.random_range(0..5) {
                0 => MeshCommand::Instance(InstanceCommand::Register(
                    Registration::from_value(&json!({"serviceName": "s",
                        "instanceID": format!("i{}", rng.random_range(0..4)),
                        "ip": "10.0.0.1", "port": 13001}))
                    .unwrap(),
                )),
                1 => document_command(&json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": format!("c{}", rng.random_range(0..3)), "namespace": "x"},
                    "data": {"v": step.to_string()}}))
                .unwrap(),
                2 => MeshCommand::Fence(FenceCommand::Observe {
                    fence: FenceKey::new("default", "pp"),
                    via: Via::AccessLog,
                    sightings: vec![Sighting {
                        host: format!("h{}.example.com", rng.random_range(0..5)),
                        seen_at_ms: 1_795_305_600_000 + step * 120_000,
                        source: "test".into(),
                        raw: "h".into(),
                    }],
                }),
                _ => {
                    let head = store.head();
                    let to = rng.random_range(1..head.max(2));
                    match dispatcher.roll_back(to, format!("step {step}")).await {
                        Ok(_) => {}
                        // Refusals (an undone position) append nothing.
                        Err(DispatchError::Rejected { .. }) => assert_eq!(store.head(), head),
                        Err(e) => panic!("seed {seed} step {step}: {e}"),
                    }
                    continue;
                }
            };
            match dispatcher.execute(command).await {
                Ok(_) | Err(DispatchError::Rejected { .. }) => {}
                Err(e) => panic!("seed {seed} step {step}: {e}"),
            }
            let live = dispatcher.mesh().await.unwrap();
            let replayed = fold(store.as_ref(), None).unwrap();
            assert_eq!(
                live.concept_digests(),
                replayed.concept_digests(),
                "seed {seed} step {step}: live state differs from the replayed log"
            );
            assert_eq!(live.timeline, replayed.timeline, "seed {seed} step {step}");
            assert_eq!(
                projections::desired(&live).digest(),
                projections::desired(&replayed).digest()
            );
        }
    }
}
