//! Conductor mode in a cluster: commits are log entries admitted when applied, in log order with
//! the chain's state; the fences and their payloads survive a restart and reach a new replica in
//! a snapshot.

use alloy_primitives::B256;
use opc_cluster::{
    Applied,
    fence::{Holding, Starting},
};
use opc_wire::conductor::{CommitRefusal, Envelope};
use serde_json::json;

use crate::harness::Harness;

fn envelope(number: u64, parent: B256) -> Envelope {
    let hash = B256::with_last_byte(number as u8);
    Envelope::from_json(&format!(
        r#"{{"executionPayload":{{"parentHash":"{parent}","blockHash":"{hash}","blockNumber":"{number:#x}","timestamp":"0x1"}}}}"#
    ))
    .expect("envelope")
}

fn hash(number: u64) -> B256 {
    B256::with_last_byte(number as u8)
}

fn steady(node: &str) -> Option<Holding> {
    Some(Holding { holder: Some(node.to_owned()), starting: None })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_are_admitted_in_log_order_with_the_state_on_every_replica() -> anyhow::Result<()> {
    let mut h = Harness::start(3, |_| {}).await?;
    let leader = h.wait_leader(&[1, 2, 3]).await;
    let cluster = h.cluster(leader).clone();

    // Nobody holds a fence no state has named.
    let refused = cluster.commit("main", "a", envelope(1, hash(0))).await?;
    assert_eq!(refused, Applied::Refused(CommitRefusal::NotLeader { node: "a".into(), leader: None }));

    cluster.put("main", json!({"leader": "a"}), steady("a")).await?;
    for number in 1..=3 {
        assert_eq!(cluster.commit("main", "a", envelope(number, hash(number - 1))).await?, Applied::Done);
    }
    let wrong = cluster.commit("main", "a", envelope(9, hash(7))).await?;
    assert_eq!(wrong, Applied::Refused(CommitRefusal::WrongParent { expected: hash(3), parent: hash(7) }));
    let other = cluster.commit("main", "b", envelope(4, hash(3))).await?;
    assert!(matches!(other, Applied::Refused(CommitRefusal::NotLeader { .. })), "{other:?}");

    // The deposition is an entry: a commit after it is refused, even one already in flight.
    cluster.put("main", json!({"leader": null}), Some(Holding::default())).await?;
    let deposed = cluster.commit("main", "a", envelope(4, hash(3))).await?;
    assert!(matches!(deposed, Applied::Refused(CommitRefusal::NotLeader { .. })), "{deposed:?}");

    // The next leader starts at the committed head and builds on it.
    let start = Holding {
        holder: Some("b".into()),
        starting: Some(Starting { node: "b".into(), at: Some(hash(3)) }),
    };
    cluster.put("main", json!({"starting": "b"}), Some(start)).await?;
    assert_eq!(cluster.commit("main", "b", envelope(4, hash(3))).await?, Applied::Done);
    let index = cluster.put("main", json!({"leader": "b"}), steady("b")).await?;
    h.wait_applied(&[1, 2, 3], index).await;
    for id in [1, 2, 3] {
        let fence = h.cluster(id).fence("main").expect("every replica holds the fence");
        assert_eq!(fence.holder(), Some("b"), "replica {id}");
        assert_eq!(fence.head().map(|head| head.number), Some(4), "replica {id}");
        assert_eq!(fence.committed().count(), 4, "replica {id}");
    }

    // A restarted replica reads its fence back from its store.
    let follower = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap_or_default();
    h.stop(follower).await?;
    h.restart(follower).await?;
    let fence = h.cluster(follower).fence("main").expect("the fence after a restart");
    assert_eq!(fence.after(hash(1)).map(|payloads| payloads.len()), Some(3));
    h.shutdown_all().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_added_after_compaction_receives_the_fences_in_a_snapshot() -> anyhow::Result<()> {
    let mut h = Harness::start(3, |config| {
        config.snapshot_every_logs = 10;
        config.max_in_snapshot_log_to_keep = 0;
        config.payload_retention.payloads = 4;
    })
    .await?;
    let leader = h.wait_leader(&[1, 2, 3]).await;
    let cluster = h.cluster(leader).clone();
    cluster.put("main", json!({"leader": "a"}), steady("a")).await?;
    for number in 1..=30 {
        assert_eq!(cluster.commit("main", "a", envelope(number, hash(number - 1))).await?, Applied::Done);
    }
    let joiner = h
        .start_joiner(4, |config| {
            config.payload_retention.payloads = 4;
        })
        .await?;
    cluster.add_replica(joiner).await?;
    let index = cluster.put("other", json!(1), None).await?;
    h.wait_applied(&[4], index).await;
    let fence = h.cluster(4).fence("main").expect("the fence came with the snapshot");
    let kept: Vec<u64> = fence.committed().map(|envelope| envelope.head().number).collect();
    assert_eq!(kept, [27, 28, 29, 30]);
    assert!(fence.is_holder("a"));
    // It admits exactly as the others do: the next payload builds on 30.
    assert_eq!(cluster.commit("main", "a", envelope(31, hash(30))).await?, Applied::Done);
    h.shutdown_all().await
}
