//! A leader cut off from the majority.

use opc_cluster::{Role, WriteError};
use serde_json::json;

use crate::harness::{Harness, agreed_leader};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_leader_cannot_commit_while_the_majority_elects_another_and_it_follows_after_healing()
-> anyhow::Result<()> {
    let mut h = Harness::start(3, |c| c.write_timeout_ms = 1000).await?;
    let old = h.wait_leader(&[1, 2, 3]).await;
    let committed = h.cluster(old).write("chain", json!("before the partition")).await?;
    h.wait_applied(&[1, 2, 3], committed).await;

    let majority: Vec<u64> = [1, 2, 3].into_iter().filter(|id| *id != old).collect();
    for id in &majority {
        h.cluster(old).faults().drop_to(*id);
        h.cluster(*id).faults().drop_to(old);
    }
    let statuses = h
        .wait_all("the majority agreeing on a new leader", &majority, |s| {
            agreed_leader(s).is_some_and(|leader| leader != old)
        })
        .await;
    let new = agreed_leader(&statuses).unwrap_or_default();

    match h.cluster(old).ensure_linearizable().await {
        Err(WriteError::NoQuorum { .. } | WriteError::NotLeader { .. } | WriteError::Timeout { .. }) => {}
        other => panic!("the stale leader must not confirm its leadership, got {other:?}"),
    }
    match h.cluster(old).write("chain", json!("written by the stale leader")).await {
        Err(WriteError::Timeout { .. } | WriteError::NotLeader { .. }) => {}
        other => panic!("the stale leader must not commit, got {other:?}"),
    }
    let majority_write = h.cluster(new).write("chain", json!("written by the new leader")).await?;

    for id in [1, 2, 3] {
        h.cluster(id).faults().heal();
    }
    let statuses = h
        .wait_all("the old leader following the new one and caught up", &[old], |s| {
            s[0].role == Role::Follower
                && s[0].leader.as_ref().map(|l| l.id) == Some(new)
                && s[0].applied_index >= Some(majority_write)
        })
        .await;
    assert!(statuses[0].term > 0);
    for id in [1, 2, 3] {
        assert_eq!(h.cluster(id).read("chain"), Some(json!("written by the new leader")), "replica {id}");
    }
    h.shutdown_all().await
}
