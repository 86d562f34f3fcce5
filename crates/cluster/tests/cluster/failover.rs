//! Losing and restarting replicas.

use opc_cluster::Role;
use serde_json::json;

use crate::harness::Harness;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_leader_stops_the_others_elect_a_new_one_that_keeps_every_commit_and_the_old_one_rejoins()
-> anyhow::Result<()> {
    let mut h = Harness::start(3, |_| {}).await?;
    let old = h.wait_leader(&[1, 2, 3]).await;
    let mut last = 0;
    for n in 0..3 {
        last = h.cluster(old).write(format!("chain-{n}"), json!({"n": n})).await?;
    }
    h.wait_applied(&[1, 2, 3], last).await;

    h.stop(old).await?;
    let rest: Vec<u64> = [1, 2, 3].into_iter().filter(|id| *id != old).collect();
    let new = h.wait_leader(&rest).await;
    assert_ne!(new, old);
    for id in &rest {
        for n in 0..3 {
            assert_eq!(h.cluster(*id).read(&format!("chain-{n}")), Some(json!({"n": n})), "replica {id}");
        }
    }
    let after_failover = h.cluster(new).write("chain-after", json!("written without the old leader")).await?;

    h.restart(old).await?;
    let statuses = h
        .wait_all("the old leader following the new one and caught up", &[old], |s| {
            s[0].role == Role::Follower
                && s[0].leader.as_ref().map(|l| l.id) == Some(new)
                && s[0].applied_index >= Some(after_failover)
        })
        .await;
    assert_eq!(statuses[0].membership.voter_ids(), vec![1, 2, 3]);
    assert_eq!(h.cluster(old).read("chain-after"), Some(json!("written without the old leader")));
    assert_eq!(h.cluster(old).read("chain-2"), Some(json!({"n": 2})));
    h.shutdown_all().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_every_replica_restores_values_and_membership_from_disk_and_a_leader_forms_again()
-> anyhow::Result<()> {
    let mut h = Harness::start(3, |_| {}).await?;
    let leader = h.wait_leader(&[1, 2, 3]).await;
    let a = h.cluster(leader).write("a", json!([1, 2, 3])).await?;
    let b = h.cluster(leader).write("b", json!({"nested": {"x": true}})).await?;
    h.wait_applied(&[1, 2, 3], a.max(b)).await;
    let before = h.cluster(leader).snapshot_all();

    h.shutdown_all().await?;
    for id in [1, 2, 3] {
        h.restart(id).await?;
    }
    // Straight from disk, before any leader exists.
    for id in [1, 2, 3] {
        assert_eq!(h.cluster(id).snapshot_all(), before, "replica {id} state after restart");
        assert_eq!(h.cluster(id).membership().voter_ids(), vec![1, 2, 3], "replica {id} membership");
    }

    let leader = h.wait_leader(&[1, 2, 3]).await;
    let c = h.cluster(leader).write("c", json!(null)).await?;
    assert!(c > b, "the log continues after the restored entries ({c} > {b})");
    h.wait_applied(&[1, 2, 3], c).await;
    h.shutdown_all().await
}
