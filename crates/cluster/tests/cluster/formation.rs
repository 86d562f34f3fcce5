//! Forming a cluster from empty data dirs.

use opc_cluster::{Cluster, ClusterConfig, ReplicaConfig, Role, WriteError};
use serde_json::json;
use tokio::net::TcpListener;

use crate::harness::{Harness, api_addr, init_tracing, test_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_started_at_once_elect_one_leader_that_replicates_and_followers_redirect()
-> anyhow::Result<()> {
    let mut h = Harness::start(3, |_| {}).await?;
    let leader = h.wait_leader(&[1, 2, 3]).await;

    let index = h.cluster(leader).write("op-mainnet", json!({"unsafe_head": 100})).await?;
    h.wait_applied(&[1, 2, 3], index).await;
    for id in [1, 2, 3] {
        assert_eq!(h.cluster(id).read("op-mainnet"), Some(json!({"unsafe_head": 100})), "replica {id}");
    }

    let followers: Vec<u64> = [1, 2, 3].into_iter().filter(|id| *id != leader).collect();
    let follower = followers[0];
    match h.cluster(follower).write("op-mainnet", json!({"unsafe_head": 101})).await {
        Err(WriteError::NotLeader { leader: Some(info) }) => {
            assert_eq!(info.id, leader);
            assert_eq!(info.api_addr, Some(api_addr(leader)));
        }
        other => panic!("a follower's write must be refused naming the leader, got {other:?}"),
    }
    assert_eq!(h.cluster(leader).read("op-mainnet"), Some(json!({"unsafe_head": 100})));

    let status = h.cluster(leader).status();
    assert!(status.is_leader());
    assert_eq!(status.membership.voter_ids(), vec![1, 2, 3]);
    assert_eq!(status.replication_lag.keys().copied().collect::<Vec<_>>(), followers);
    h.shutdown_all().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_replica_elects_itself_and_accepts_writes() -> anyhow::Result<()> {
    init_tracing();
    let dir = tempfile::tempdir()?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let me = ReplicaConfig {
        id: 7,
        raft_addr: listener.local_addr()?.to_string(),
        api_addr: api_addr(7),
        conductor_addr: None,
    };
    let config: ClusterConfig = test_config(7, vec![me]);
    let cluster = Cluster::start(config, dir.path(), listener).await?;

    let mut watch = cluster.status_watch();
    let status = tokio::time::timeout(crate::harness::WAIT, watch.wait_for(|s| s.role == Role::Leader))
        .await??
        .clone();
    assert_eq!(status.leader.map(|l| l.id), Some(7));

    let index = cluster.write("base", json!("state-1")).await?;
    assert!(index > 0);
    // A write returns once applied: the value is readable at once.
    assert_eq!(cluster.read("base"), Some(json!("state-1")));
    cluster.ensure_linearizable().await?;
    cluster.shutdown().await?;
    Ok(())
}
