//! etcd projection benchmark: project the registry keys of 100,000 EaseMesh service instances
//! (200,000 keys: spec and status per instance) into a real etcd.
//!
//! `cargo bench -p adapters --bench etcd_projection` (env `MESHPLANE_BENCH_INSTANCES` to change
//! the size). Prints, in one run: (a) the initial `EtcdTarget::sync` into an empty etcd against
//! the target of 10 s; (b) the baseline, the same keys with one put per key from 64 concurrent
//! clients into a fresh etcd, and the ratio; (c) an unchanged re-sync; (d) a fresh target's
//! read-back of everything (what a daemon restart costs) and its first sync.

// Benchmarks measure wall-clock time.
#![allow(clippy::disallowed_methods)]

#[path = "../tests/support/etcd_server.rs"]
mod etcd_server;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actors::instance::{InstanceCommand, Registration};
use actors::{Ctx, Mesh, MeshCommand};
use adapters::etcd::EtcdTarget;
use etcd_client::{Client, GetOptions};
use etcd_server::EtcdServer;
use serde_json::json;

const TARGET_SECONDS: f64 = 10.0;
const BASELINE_CLIENTS: usize = 64;

/// The desired etcd keys of a real registry state: a mesh controller, one tenant, 1,000
/// services and `instances` instances registered through the instance decider, projected by
/// `projections::desired_etcd` (timed: it is what every daemon pass computes).
fn registry(instances: usize) -> BTreeMap<String, String> {
    let mut mesh = Mesh::default();
    let mut ctx = Ctx::new(1_795_305_600_000, 1);
    let mut documents = vec![
        json!({"apiVersion": "mesh.megaease.com/v2alpha1", "kind": "MeshController",
               "metadata": {"name": "easemesh-controller"}, "heartbeatInterval": "5s", "registryType": "eureka"}),
        json!({"apiVersion": "mesh.megaease.com/v2alpha1", "kind": "Tenant", "metadata": {"name": "bench"}}),
    ];
    for s in 0..1000 {
        documents.push(
            json!({"apiVersion": "mesh.megaease.com/v2alpha1", "kind": "Service",
            "metadata": {"name": format!("svc-{s}")}, "spec": {"registerTenant": "bench"}}),
        );
    }
    mesh.apply_documents(&documents, &mut ctx).expect("catalog");
    for i in 0..instances {
        let registration = Registration::from_value(&json!({
            "serviceName": format!("svc-{}", i % 1000), "instanceID": format!("ins-{i}"),
            "ip": format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255),
            "port": 13001, "labels": {"version": if i % 2 == 0 { "v1" } else { "v2" }}}))
        .expect("registration");
        mesh.execute(
            MeshCommand::Instance(InstanceCommand::Register(registration)),
            &mut ctx,
        )
        .expect("register");
    }
    let started = Instant::now();
    let desired = projections::desired_etcd(&mesh);
    println!(
        "desired_etcd: {} keys computed from the folded state in {:.3} s",
        desired.len(),
        secs(started.elapsed())
    );
    desired
}

async fn count_under(endpoint: &str, prefix: &str) -> i64 {
    let mut client = Client::connect([endpoint], None)
        .await
        .expect("etcd client");
    client
        .get(
            prefix,
            Some(GetOptions::new().with_prefix().with_count_only()),
        )
        .await
        .expect("count keys")
        .count()
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

async fn run(instances: usize) {
    let desired = registry(instances);
    let keys = desired.len();
    let value_bytes: usize = desired.values().map(String::len).sum();
    let key_bytes: usize = desired.keys().map(String::len).sum();
    let avg_value = |kind: &str| {
        let (n, bytes) = desired
            .iter()
            .filter(|(k, _)| k.contains(kind))
            .fold((0, 0), |(n, b), (_, v)| (n + 1, b + v.len()));
        bytes / usize::max(n, 1)
    };
    println!(
        "etcd projection benchmark: {instances} instances, {keys} keys, {:.1} MB of keys+values (avg value: spec {} bytes, status {} bytes)",
        (value_bytes + key_bytes) as f64 / 1e6,
        avg_value("/spec/"),
        avg_value("/status/")
    );
    println!(
        "machine: {} cores",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    let prefixes = projections::desired::etcd_owned_prefixes();

    let server = EtcdServer::start().await;
    let endpoints = server.endpoints();

    // (a) Initial sync into an empty etcd.
    let mut target = EtcdTarget::connect(&endpoints, prefixes.clone())
        .await
        .expect("connect");
    let started = Instant::now();
    let report = target.sync(&desired, 1).await.expect("initial sync");
    let initial = started.elapsed();
    let landed = count_under(&server.endpoint(), "/mesh/").await;
    assert_eq!(landed as usize, keys, "every key landed");
    assert_eq!(report.puts, keys);
    println!(
        "(a) initial sync: {keys} keys in {:.2} s = {:.0} keys/s, {} transactions (target {TARGET_SECONDS:.0} s: {})",
        secs(initial),
        keys as f64 / secs(initial),
        report.transactions,
        if secs(initial) <= TARGET_SECONDS { "met" } else { "MISSED" }
    );

    // (c) Unchanged re-sync at a new position: only the checkpoint is written.
    let started = Instant::now();
    let report = target.sync(&desired, 2).await.expect("unchanged sync");
    let unchanged = started.elapsed();
    println!(
        "(c) unchanged re-sync: {:.3} s, puts {} deletes {} transactions {}",
        secs(unchanged),
        report.puts,
        report.deletes,
        report.transactions
    );
    drop(target);

    // (d) A fresh target (a daemon restart): read everything back, then sync (nothing to write).
    let started = Instant::now();
    let mut fresh = EtcdTarget::connect(&endpoints, prefixes.clone())
        .await
        .expect("fresh connect");
    let read_back = started.elapsed();
    let started = Instant::now();
    let report = fresh.sync(&desired, 2).await.expect("fresh sync");
    let fresh_sync = started.elapsed();
    println!(
        "(d) fresh target: read back {keys} keys in {:.2} s = {:.0} keys/s; first sync {:.3} s, puts {} deletes {} transactions {}",
        secs(read_back),
        keys as f64 / secs(read_back),
        secs(fresh_sync),
        report.puts,
        report.deletes,
        report.transactions
    );
    drop(fresh);
    drop(server);

    // (b) Baseline: one put per key, 64 concurrent clients, into a fresh etcd.
    let baseline_server = EtcdServer::start().await;
    let pairs: Arc<Vec<(String, String)>> = Arc::new(desired.into_iter().collect());
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(BASELINE_CLIENTS);
    for worker in 0..BASELINE_CLIENTS {
        let pairs = pairs.clone();
        let endpoint = baseline_server.endpoint();
        tasks.push(tokio::spawn(async move {
            let mut client = Client::connect([endpoint], None)
                .await
                .expect("etcd client");
            for (key, value) in pairs.iter().skip(worker).step_by(BASELINE_CLIENTS) {
                client
                    .put(key.as_str(), value.as_str(), None)
                    .await
                    .expect("put");
            }
        }));
    }
    for task in tasks {
        task.await.expect("put task");
    }
    let baseline = started.elapsed();
    let landed = count_under(&baseline_server.endpoint(), "/mesh/").await;
    assert_eq!(landed as usize, keys, "every baseline key landed");
    println!(
        "(b) baseline, one put per key from {BASELINE_CLIENTS} clients: {keys} keys in {:.2} s = {:.0} keys/s",
        secs(baseline),
        keys as f64 / secs(baseline)
    );
    println!(
        "ratio: the projection's initial sync is {:.1}x faster than one put per key",
        secs(baseline) / secs(initial)
    );
}

fn main() {
    let instances: usize = std::env::var("MESHPLANE_BENCH_INSTANCES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run(instances));
}
