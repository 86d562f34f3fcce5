//! The redb store: damage detection, snapshots and compaction.

use opc_cluster::{Cluster, ClusterError, ReplicaConfig, STORE_FILE};
use serde_json::json;
use tokio::net::TcpListener;

use crate::harness::{Harness, api_addr, init_tracing, test_config};

async fn single(dir: &std::path::Path) -> anyhow::Result<Result<Cluster, ClusterError>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let me = ReplicaConfig {
        id: 1,
        raft_addr: listener.local_addr()?.to_string(),
        api_addr: api_addr(1),
        conductor_addr: None,
    };
    Ok(Cluster::start(test_config(1, vec![me]), dir, listener).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_file_full_of_garbage_fails_start_with_an_error_naming_the_file() -> anyhow::Result<()> {
    init_tracing();
    let dir = tempfile::tempdir()?;
    let path = dir.path().join(STORE_FILE);
    std::fs::write(&path, b"this is not a redb database ".repeat(500))?;

    let err = single(dir.path()).await?.expect_err("a garbage store must not start");
    let message = err.to_string();
    assert!(matches!(err, ClusterError::CorruptStore { .. }), "{err:?}");
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("move the file aside"), "{message}");
    // Nothing was overwritten: the operator still has the file to inspect.
    assert_eq!(std::fs::read(&path)?, b"this is not a redb database ".repeat(500));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_store_file_fails_start_with_an_error_naming_the_file() -> anyhow::Result<()> {
    init_tracing();
    let dir = tempfile::tempdir()?;
    let cluster = single(dir.path()).await??;
    let mut watch = cluster.status_watch();
    tokio::time::timeout(crate::harness::WAIT, watch.wait_for(|s| s.is_leader())).await??;
    cluster.write("chain", json!({"head": 1})).await?;
    cluster.shutdown().await?;

    let path = dir.path().join(STORE_FILE);
    let bytes = std::fs::read(&path)?;
    std::fs::write(&path, &bytes[..bytes.len() / 2])?;

    // redb asserts on this header; the panic must come back as an error, not crash the caller.
    let err = single(dir.path()).await?.expect_err("a truncated store must not start");
    assert!(matches!(err, ClusterError::CorruptStore { .. }), "{err:?}");
    assert!(err.to_string().contains(&path.display().to_string()), "{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_record_fails_start_naming_the_file_and_the_record() -> anyhow::Result<()> {
    init_tracing();
    let dir = tempfile::tempdir()?;
    let cluster = single(dir.path()).await??;
    let mut watch = cluster.status_watch();
    tokio::time::timeout(crate::harness::WAIT, watch.wait_for(|s| s.is_leader())).await??;
    cluster.write("victim", json!({"ok": true})).await?;
    cluster.shutdown().await?;

    let path = dir.path().join(STORE_FILE);
    {
        let db = redb::Database::create(&path)?;
        let txn = db.begin_write()?;
        {
            let table: redb::TableDefinition<'_, &str, &[u8]> = redb::TableDefinition::new("sm_chains");
            txn.open_table(table)?.insert("victim", b"\xff not json".as_slice())?;
        }
        txn.commit()?;
    }

    let err = single(dir.path()).await?.expect_err("an undecodable record must not start");
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("sm_chains/victim"), "{message}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_compact_the_log_and_bring_a_replica_added_later_up_to_date() -> anyhow::Result<()> {
    let tweak = |c: &mut opc_cluster::ClusterConfig| {
        c.snapshot_every_logs = 20;
        c.max_in_snapshot_log_to_keep = 0;
    };
    let mut h = Harness::start(3, tweak).await?;
    let leader = h.wait_leader(&[1, 2, 3]).await;
    let mut last = 0;
    for n in 0..50 {
        last = h.cluster(leader).write(format!("chain-{}", n % 7), json!({"n": n})).await?;
    }
    h.wait_applied(&[1, 2, 3], last).await;
    h.wait_all("a snapshot and a purged log on every replica", &[1, 2, 3], |s| {
        s.iter().all(|s| s.snapshot_index >= Some(20) && s.purged_index >= Some(20))
    })
    .await;

    let joiner = h.start_joiner(4, tweak).await?;
    h.cluster(leader).add_replica(joiner).await?;
    let statuses = h
        .wait_all("the new replica to install a snapshot and catch up", &[4], |s| {
            s[0].snapshot_index.is_some() && s[0].applied_index >= Some(last)
        })
        .await;
    assert_eq!(statuses[0].membership.voter_ids(), vec![1, 2, 3, 4]);
    assert_eq!(h.cluster(4).snapshot_all(), h.cluster(leader).snapshot_all());
    assert_eq!(h.cluster(4).read("chain-0"), Some(json!({"n": 49})));
    h.shutdown_all().await
}
