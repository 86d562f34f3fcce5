//! Changing who votes, and who leads.

use opc_cluster::WriteError;
use serde_json::json;

use crate::harness::{Harness, agreed_leader};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_then_removing_a_replica_changes_membership_and_the_removed_one_no_longer_counts()
-> anyhow::Result<()> {
    let mut h = Harness::start(3, |_| {}).await?;
    let leader = h.wait_leader(&[1, 2, 3]).await;
    h.cluster(leader).write("before", json!(1)).await?;

    let joiner = h.start_joiner(4, |_| {}).await?;
    h.cluster(leader).add_replica(joiner).await?;
    assert_eq!(h.cluster(leader).membership().voter_ids(), vec![1, 2, 3, 4]);
    let index = h.cluster(leader).write("after-add", json!(2)).await?;
    h.wait_applied(&[1, 2, 3, 4], index).await;
    assert_eq!(h.cluster(4).read("before"), Some(json!(1)));
    assert_eq!(h.cluster(4).membership().voter_ids(), vec![1, 2, 3, 4]);

    h.cluster(leader).remove_replica(4).await?;
    let membership = h.cluster(leader).membership();
    assert_eq!(membership.voter_ids(), vec![1, 2, 3]);
    assert!(membership.learners.is_empty(), "{membership:?}");
    h.wait_all("every voter to see the removal", &[1, 2, 3], |s| {
        s.iter().all(|s| s.membership.voter_ids() == vec![1, 2, 3] && !s.membership.changing)
    })
    .await;

    // With 4 voters, 2 running would be no majority; with 3 voters they are.
    let follower = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap_or_default();
    h.stop(4).await?;
    h.stop(follower).await?;
    h.cluster(leader).write("after-remove", json!(3)).await?;
    h.shutdown_all().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transferring_leadership_makes_the_chosen_follower_lead() -> anyhow::Result<()> {
    let mut h = Harness::start(3, |_| {}).await?;
    let old = h.wait_leader(&[1, 2, 3]).await;
    h.cluster(old).write("chain", json!("under the old leader")).await?;
    let target = [1, 2, 3].into_iter().find(|id| *id != old).unwrap_or_default();

    h.cluster(old).transfer_leadership(target).await?;
    let statuses = h.wait_leader(&[1, 2, 3]).await;
    assert_eq!(statuses, target);
    assert!(h.cluster(target).status().is_leader());

    let index = h.cluster(target).write("chain", json!("under the new leader")).await?;
    h.wait_applied(&[1, 2, 3], index).await;
    match h.cluster(old).write("chain", json!("old leader")).await {
        Err(WriteError::NotLeader { leader: Some(info) }) => assert_eq!(info.id, target),
        other => panic!("the former leader must redirect to the target, got {other:?}"),
    }

    // And back again, so a transfer right after an election (a fresh lease) works too.
    h.cluster(target).transfer_leadership(old).await?;
    let statuses =
        h.wait_all("the original leader leading again", &[1, 2, 3], |s| agreed_leader(s) == Some(old)).await;
    assert_eq!(agreed_leader(&statuses), Some(old));
    h.shutdown_all().await
}
