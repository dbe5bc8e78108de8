//! The etcd projection target against a real etcd (one server per test): what lands in etcd is
//! read back with a separate client and compared key by key.

#[path = "support/etcd_server.rs"]
mod etcd_server;

use std::collections::BTreeMap;
use std::time::Duration;

use adapters::etcd::{EtcdTarget, SyncReport, CHECKPOINT_KEY};
use adapters::Error;
use etcd_client::{Client, GetOptions};
use etcd_server::EtcdServer;

const MESH: &str = "/mesh/";
const RESOURCES: &str = "/meshplane/resources/";

fn prefixes() -> Vec<String> {
    vec![MESH.to_string(), RESOURCES.to_string()]
}

/// EaseMesh registry keys (spec and status) for `n` instances, and one resource key per ten;
/// `tag` goes into every value so two generations differ everywhere.
fn registry(n: usize, tag: &str) -> BTreeMap<String, String> {
    let mut keys = BTreeMap::new();
    for i in 0..n {
        let svc = format!("svc-{}", i % 7);
        let id = format!("ins-{i}");
        keys.insert(
            format!("{MESH}service-instances/spec/{svc}/{id}"),
            format!(r#"{{"serviceName":"{svc}","instanceID":"{id}","port":{},"labels":{{"version":"{tag}"}}}}"#, 13000 + i),
        );
        keys.insert(
            format!("{MESH}service-instances/status/{svc}/{id}"),
            format!(r#"{{"serviceName":"{svc}","instanceID":"{id}","tag":"{tag}"}}"#),
        );
        if i % 10 == 0 {
            keys.insert(
                format!("{RESOURCES}ConfigMap/shop/cm-{i}"),
                format!(r#"{{"data":{{"k":"{tag}"}}}}"#),
            );
        }
    }
    keys
}

/// Every key under `prefix`, read in one request.
async fn read_prefix(client: &mut Client, prefix: &str) -> BTreeMap<String, String> {
    let response = client
        .get(prefix, Some(GetOptions::new().with_prefix()))
        .await
        .expect("read back from etcd");
    response
        .kvs()
        .iter()
        .map(|kv| {
            (
                kv.key_str().unwrap().to_string(),
                kv.value_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Everything etcd holds under the owned prefixes.
async fn read_owned(client: &mut Client) -> BTreeMap<String, String> {
    let mut all = read_prefix(client, MESH).await;
    all.extend(read_prefix(client, RESOURCES).await);
    all
}

async fn get(client: &mut Client, key: &str) -> Option<String> {
    let response = client.get(key, None).await.expect("get from etcd");
    response
        .kvs()
        .first()
        .map(|kv| kv.value_str().unwrap().to_string())
}

async fn mod_revision(client: &mut Client, key: &str) -> i64 {
    let response = client.get(key, None).await.expect("get from etcd");
    response.kvs()[0].mod_revision()
}

async fn checkpoint_in_etcd(client: &mut Client) -> Option<u64> {
    let raw = get(client, CHECKPOINT_KEY).await?;
    let value: serde_json::Value = serde_json::from_str(&raw).expect("checkpoint is JSON");
    Some(
        value["position"]
            .as_u64()
            .expect("checkpoint has a position"),
    )
}

/// Retry `sync` as the daemon does (with a pause) until it succeeds.
async fn sync_until_ok(
    target: &mut EtcdTarget,
    desired: &BTreeMap<String, String>,
    position: u64,
) -> SyncReport {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        match target.sync(desired, position).await {
            Ok(report) => return report,
            Err(e) if tokio::time::Instant::now() < deadline => {
                eprintln!("sync failed, retrying: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("sync did not succeed within 90 s: {e}"),
        }
    }
}

#[tokio::test]
async fn layout_reads_back_key_by_key() {
    let server = EtcdServer::start().await;
    let mut client = server.client().await;
    let mut target = EtcdTarget::connect(&server.endpoints(), prefixes())
        .await
        .unwrap();
    assert_eq!(target.checkpoint(), None, "fresh etcd has no checkpoint");

    let desired = registry(3, "v1");
    assert_eq!(desired.len(), 7);
    let report = target.sync(&desired, 7).await.unwrap();
    assert_eq!(
        report,
        SyncReport {
            puts: 7,
            deletes: 0,
            transactions: 1,
            resynced: false
        }
    );

    for (key, value) in &desired {
        assert_eq!(
            get(&mut client, key).await.as_deref(),
            Some(value.as_str()),
            "{key}"
        );
    }
    assert_eq!(
        get(&mut client, "/mesh/service-instances/spec/svc-1/ins-1")
            .await
            .as_deref(),
        Some(
            r#"{"serviceName":"svc-1","instanceID":"ins-1","port":13001,"labels":{"version":"v1"}}"#
        )
    );
    assert_eq!(
        read_owned(&mut client).await,
        desired,
        "nothing else under the prefixes"
    );
    let raw = get(&mut client, CHECKPOINT_KEY).await.unwrap();
    assert!(raw.starts_with(r#"{"position":7,"epoch":"#), "{raw}");
    assert_eq!(target.checkpoint(), Some(7));
}

#[tokio::test]
async fn only_differences_are_written() {
    let server = EtcdServer::start().await;
    let mut client = server.client().await;
    let mut target = EtcdTarget::connect(&server.endpoints(), prefixes())
        .await
        .unwrap();
    let mut desired = registry(5, "v1");
    let report = target.sync(&desired, 1).await.unwrap();
    assert_eq!(
        (report.puts, report.deletes, report.transactions),
        (11, 0, 1)
    );

    let changed = "/mesh/service-instances/spec/svc-2/ins-2".to_string();
    let removed = "/mesh/service-instances/status/svc-3/ins-3".to_string();
    let untouched = "/mesh/service-instances/spec/svc-4/ins-4".to_string();
    let untouched_revision = mod_revision(&mut client, &untouched).await;
    desired.insert(changed.clone(), r#"{"changed":true}"#.to_string());
    desired.remove(&removed);

    let report = target.sync(&desired, 2).await.unwrap();
    assert_eq!(
        report,
        SyncReport {
            puts: 1,
            deletes: 1,
            transactions: 1,
            resynced: false
        },
        "one changed key, one removed key, data and checkpoint in one transaction"
    );
    assert_eq!(
        get(&mut client, &changed).await.as_deref(),
        Some(r#"{"changed":true}"#)
    );
    assert_eq!(get(&mut client, &removed).await, None);
    assert_eq!(
        mod_revision(&mut client, &untouched).await,
        untouched_revision,
        "an unchanged key is not rewritten"
    );
    assert_eq!(read_owned(&mut client).await, desired);
    assert_eq!(checkpoint_in_etcd(&mut client).await, Some(2));

    // Unchanged data at a new position: only the checkpoint moves.
    let report = target.sync(&desired, 3).await.unwrap();
    assert_eq!(
        (report.puts, report.deletes, report.transactions),
        (0, 0, 1)
    );
    assert_eq!(checkpoint_in_etcd(&mut client).await, Some(3));
    // Unchanged data at the same position: nothing is sent at all.
    let report = target.sync(&desired, 3).await.unwrap();
    assert_eq!(report, SyncReport::default());
    assert_eq!(
        mod_revision(&mut client, &untouched).await,
        untouched_revision
    );
    assert_eq!(read_owned(&mut client).await, desired);
}

#[tokio::test]
async fn keys_outside_the_owned_prefixes_are_never_touched() {
    let server = EtcdServer::start().await;
    let mut client = server.client().await;
    let foreign = [
        ("/other/a", "1"),
        // Shares the text "/mesh" but not the prefix "/mesh/".
        ("/meshx/b", "2"),
        ("/meshplane/other/c", "3"),
    ];
    for (k, v) in foreign {
        client.put(k, v, None).await.unwrap();
    }
    let mut target = EtcdTarget::connect(&server.endpoints(), prefixes())
        .await
        .unwrap();
    let desired = registry(4, "v1");
    target.sync(&desired, 1).await.unwrap();
    assert_eq!(read_owned(&mut client).await, desired);

    // Desiring nothing deletes every owned key, and nothing else.
    let report = target.sync(&BTreeMap::new(), 2).await.unwrap();
    assert_eq!(report.deletes, desired.len());
    assert!(read_owned(&mut client).await.is_empty());
    for (k, v) in foreign {
        assert_eq!(get(&mut client, k).await.as_deref(), Some(v), "{k}");
    }

    // A desired key outside the prefixes fails the sync before anything is written.
    let mut bad = registry(2, "v2");
    bad.insert("/other/new".to_string(), "x".to_string());
    let err = target.sync(&bad, 3).await.unwrap_err();
    assert!(
        matches!(&err, Error::EtcdKeyNotOwned { key, .. } if key == "/other/new"),
        "{err}"
    );
    assert!(read_owned(&mut client).await.is_empty(), "nothing written");
    assert_eq!(get(&mut client, "/other/new").await, None);
    assert_eq!(checkpoint_in_etcd(&mut client).await, Some(2));
    assert_eq!(get(&mut client, "/other/a").await.as_deref(), Some("1"));

    // Prefixes that would own the checkpoint (or everything) are refused.
    for bad_prefixes in [vec!["/meshplane/".to_string()], vec![String::new()]] {
        assert!(matches!(
            EtcdTarget::connect(&server.endpoints(), bad_prefixes).await,
            Err(Error::Config(_))
        ));
    }
}

#[tokio::test]
async fn large_sync_spans_many_transactions() {
    let server = EtcdServer::start().await;
    let mut client = server.client().await;
    let mut target = EtcdTarget::connect(&server.endpoints(), prefixes())
        .await
        .unwrap();
    let mut desired = registry(2_500, "v1");
    desired.retain(|k, _| k.starts_with(MESH));
    assert_eq!(desired.len(), 5_000);

    let report = target.sync(&desired, 10).await.unwrap();
    assert_eq!(report.puts, 5_000);
    assert_eq!(
        report.transactions,
        5_000usize.div_ceil(128) + 1,
        "full data transactions, then the checkpoint"
    );
    assert_eq!(read_owned(&mut client).await, desired);
    assert_eq!(checkpoint_in_etcd(&mut client).await, Some(10));

    // Re-reading (a new target) pages through all of it.
    let fresh = EtcdTarget::connect(&server.endpoints(), prefixes())
        .await
        .unwrap();
    assert_eq!(fresh.checkpoint(), Some(10));
}

#[tokio::test]
async fn converges_after_etcd_is_killed_between_syncs() {
    let mut server = EtcdServer::start().await;
    let mut target = EtcdTarget::connect(&server.endpoints(), prefixes())
        .await
        .unwrap();
    let first = registry(300, "v1");
    target.sync(&first, 1).await.unwrap();

    server.kill();
    // The next generation drops a third of the instances and changes every value.
    let mut second = registry(300, "v2");
    second.retain(|k, _| !k.ends_with("0") && !k.ends_with("3") && !k.ends_with("6"));
    let err = target.sync(&second, 2).await.unwrap_err();
    assert!(matches!(err, Error::Etcd(_)), "{err}");
    assert_eq!(target.checkpoint(), Some(1));

    server.restart().await;
    let report = sync_until_ok(&mut target, &second, 2).await;
    assert!(report.resynced, "etcd is re-read after an error");
    assert!(report.deletes > 0 && report.puts > 0, "{report:?}");

    let mut client = server.client().await;
    assert_eq!(
        read_owned(&mut client).await,
        second,
        "no lost, no stale keys"
    );
    assert_eq!(checkpoint_in_etcd(&mut client).await, Some(2));
    assert_eq!(target.checkpoint(), Some(2));
}

#[tokio::test]
async fn converges_after_etcd_is_killed_during_a_large_sync() {
    let mut server = EtcdServer::start().await;
    let mut client = server.client().await;
    let mut target = EtcdTarget::connect(&server.endpoints(), prefixes())
        .await
        .unwrap();
    let first = registry(2_000, "v1");
    target.sync(&first, 1).await.unwrap();

    // Every value changes, some instances go away, many are new.
    let mut second = registry(12_000, "v2");
    second.retain(|k, _| !k.ends_with("7"));
    let spec_prefix = "/mesh/service-instances/spec/";
    let first_specs = first.keys().filter(|k| k.starts_with(spec_prefix)).count() as i64;

    let (result, ()) = tokio::join!(target.sync(&second, 2), async {
        // Kill etcd as soon as some of the new keys are in: the sync is mid-stream.
        for _ in 0..2_000 {
            let response = client
                .get(
                    spec_prefix,
                    Some(GetOptions::new().with_prefix().with_count_only()),
                )
                .await;
            if response.is_ok_and(|r| r.count() > first_specs + 100) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        server.kill();
    });
    let err = result.expect_err("etcd died during the sync");
    assert!(matches!(err, Error::Etcd(_)), "{err}");

    server.restart().await;
    let mut client = server.client().await;
    assert_eq!(
        checkpoint_in_etcd(&mut client).await,
        Some(1),
        "the checkpoint moves only after all data landed"
    );
    let partial = read_owned(&mut client).await;
    assert_ne!(partial, second, "the sync was cut short");

    let report = sync_until_ok(&mut target, &second, 2).await;
    assert!(report.resynced);
    assert_eq!(
        read_owned(&mut client).await,
        second,
        "no lost, no stale keys"
    );
    assert_eq!(checkpoint_in_etcd(&mut client).await, Some(2));
}

#[tokio::test]
async fn a_restarted_target_writes_only_what_etcd_lacks() {
    let server = EtcdServer::start().await;
    let mut client = server.client().await;
    let desired = registry(50, "v1");
    {
        let mut target = EtcdTarget::connect(&server.endpoints(), prefixes())
            .await
            .unwrap();
        target.sync(&desired, 5).await.unwrap();
    }
    let probe = "/mesh/service-instances/spec/svc-1/ins-1";
    let probe_revision = mod_revision(&mut client, probe).await;

    let mut target = EtcdTarget::connect(&server.endpoints(), prefixes())
        .await
        .unwrap();
    assert_eq!(target.checkpoint(), Some(5));
    let report = target.sync(&desired, 5).await.unwrap();
    assert_eq!(report, SyncReport::default(), "nothing to write");
    assert_eq!(mod_revision(&mut client, probe).await, probe_revision);

    let mut fewer = desired.clone();
    let dropped: Vec<String> = fewer
        .keys()
        .filter(|k| k.contains("/svc-2/"))
        .cloned()
        .collect();
    assert!(!dropped.is_empty());
    fewer.retain(|k, _| !dropped.contains(k));
    let report = target.sync(&fewer, 6).await.unwrap();
    assert_eq!((report.puts, report.deletes), (0, dropped.len()));
    assert_eq!(read_owned(&mut client).await, fewer);
    assert_eq!(mod_revision(&mut client, probe).await, probe_revision);
    assert_eq!(checkpoint_in_etcd(&mut client).await, Some(6));
}

#[tokio::test]
async fn another_writer_moving_the_checkpoint_is_detected_and_repaired() {
    let server = EtcdServer::start().await;
    let mut client = server.client().await;
    let mut target = EtcdTarget::connect(&server.endpoints(), prefixes())
        .await
        .unwrap();

    // On an empty etcd the fence is "the checkpoint is absent".
    client
        .put(CHECKPOINT_KEY, r#"{"position":500}"#, None)
        .await
        .unwrap();
    let first = registry(20, "v1");
    let report = target.sync(&first, 1).await.unwrap();
    assert!(
        report.resynced,
        "the absent-checkpoint fence failed and etcd was re-read"
    );
    assert_eq!(read_owned(&mut client).await, first);
    assert_eq!(checkpoint_in_etcd(&mut client).await, Some(1));

    // A second writer moves the checkpoint and leaves a key of its own under our prefix.
    client
        .put(CHECKPOINT_KEY, r#"{"position":999}"#, None)
        .await
        .unwrap();
    client
        .put("/mesh/service-instances/spec/svc-0/intruder", "{}", None)
        .await
        .unwrap();
    let second = registry(20, "v2");
    let report = target.sync(&second, 2).await.unwrap();
    assert!(report.resynced);
    assert_eq!(report.deletes, 1, "the intruder, seen only by re-reading");
    assert_eq!(read_owned(&mut client).await, second);
    assert_eq!(checkpoint_in_etcd(&mut client).await, Some(2));
    assert_eq!(target.checkpoint(), Some(2));
}

#[tokio::test]
async fn a_transaction_in_flight_from_before_a_reconnect_cannot_land() {
    let server = EtcdServer::start().await;
    let mut client = server.client().await;
    let mut target = EtcdTarget::connect(&server.endpoints(), prefixes())
        .await
        .unwrap();
    let desired = registry(3, "v1");
    target.sync(&desired, 1).await.unwrap();
    // A transaction the target sent before losing its connection (fenced on the checkpoint
    // it saw then) that reaches etcd only after the target reconnected.
    let before = get(&mut client, CHECKPOINT_KEY).await.unwrap();
    target.reconnect().await.unwrap();
    let late = etcd_client::Txn::new()
        .when([etcd_client::Compare::value(
            CHECKPOINT_KEY,
            etcd_client::CompareOp::Equal,
            before.clone(),
        )])
        .and_then([etcd_client::TxnOp::put(
            "/mesh/service-instances/spec/svc-0/late",
            "{}",
            None,
        )]);
    let response = client.txn(late).await.unwrap();
    assert!(!response.succeeded(), "the reconnect started a new epoch");
    assert_eq!(read_owned(&mut client).await, desired);
    let after = get(&mut client, CHECKPOINT_KEY).await.unwrap();
    assert_ne!(after, before);
    assert_eq!(target.checkpoint(), Some(1), "the position is kept");
    // The new epoch goes on with the next syncs.
    let report = target.sync(&registry(3, "v2"), 2).await.unwrap();
    assert!(!report.resynced);
    assert_eq!(target.checkpoint(), Some(2));
}
