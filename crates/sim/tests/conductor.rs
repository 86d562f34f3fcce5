//! op-node with a conductor, over real RPC: every sealed block is committed before anyone sees it,
//! a refused commit drops the block, starts ask the conductor first, a stop waits for a block in
//! flight only while the conductor still says "leader", and `admin_postUnsafePayload` /
//! `admin_overrideLeader` behave as op-node's.
//!
//! The conductor here is a scripted stand-in (`common::conductor`).

mod common;

use anyhow::Result;
use common::{
    conductor::{commit_failures, start, start_with_timeout},
    holds_for, rpc_error, wait_for,
};
use opc_wire::{
    B256,
    api::OpAdminApiClient,
    conductor::{Envelope, OpNodeConductorAdminApiClient},
    op_node_errors,
};
use std::{sync::atomic::Ordering, time::Duration};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_block_is_committed_before_it_is_published() -> Result<()> {
    let (fixture, script, _server) = start(100).await?;
    let genesis = fixture.head("seq-0")?;
    fixture.op_node("seq-0")?.admin_start_sequencer(genesis.hash).await?;
    fixture.wait_for_height("seq-1", 5).await?;
    let sealed = fixture.sealed_by("seq-0");
    let accepted: Vec<(u64, B256)> = script
        .accepted
        .lock()
        .expect("lock")
        .iter()
        .map(|envelope| (envelope.head().number, envelope.head().block_hash))
        .collect();
    // The ledger records a block once it is published, after the conductor accepted it.
    for block in &sealed {
        assert!(
            accepted.contains(&(block.number, block.hash)),
            "{block:?} published uncommitted: {accepted:?}"
        );
    }
    assert!(commit_failures(&fixture, "seq-0").is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_commit_drops_the_block_everywhere_and_the_leader_backs_off() -> Result<()> {
    let (fixture, script, _server) = start(100).await?;
    let genesis = fixture.head("seq-0")?;
    fixture.op_node("seq-0")?.admin_start_sequencer(genesis.hash).await?;
    fixture.wait_for_height("seq-1", 3).await?;
    script.refuse.store(true, Ordering::SeqCst);
    wait_for("a refused commit", async || {
        if commit_failures(&fixture, "seq-0").is_empty() { Err("none yet".into()) } else { Ok(()) }
    })
    .await?;
    let fenced_at = fixture.head("seq-0")?;
    // Nothing moves: not the leader's own chain, not the followers'.
    holds_for("no block after the refusal", Duration::from_millis(600), async || {
        for node in ["seq-0", "seq-1", "seq-2"] {
            let head = fixture.head(node).map_err(|err| err.to_string())?;
            if head.number > fenced_at.number {
                return Err(format!("{node} reached {head} past {fenced_at}"));
            }
        }
        Ok(())
    })
    .await?;
    let failures = commit_failures(&fixture, "seq-0");
    assert!(failures[0].1.contains("scripted refusal"), "{failures:?}");
    // Backing off a second per failure: at most one attempt in the 600 ms, give or take one.
    assert!(failures.len() <= 2, "the leader retried every block time: {failures:?}");
    // Accepted again: production resumes after the back-off.
    script.refuse.store(false, Ordering::SeqCst);
    fixture.wait_for_height("seq-1", fenced_at.number + 2).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_asks_the_conductor_first_and_an_override_skips_it() -> Result<()> {
    let (fixture, script, server) = start(100).await?;
    let op_node = fixture.op_node("seq-1")?;
    // Not the leader: refused before any other check (the hash is wrong too).
    script.leader.store(false, Ordering::SeqCst);
    let (_, message) = rpc_error(op_node.admin_start_sequencer(B256::repeat_byte(7)).await)?;
    assert_eq!(message, op_node_errors::SEQUENCER_NOT_LEADER);
    // The conductor unreachable: the check fails, never taken as "leader".
    server.stop()?;
    server.stopped().await;
    let (_, message) = rpc_error(op_node.admin_start_sequencer(B256::repeat_byte(7)).await)?;
    assert!(message.starts_with(op_node_errors::LEADER_CHECK_FAILED_PREFIX), "{message}");
    // admin_overrideLeader: the node answers its own leader check from now on.
    op_node.override_leader().await?;
    let head = fixture.head("seq-1")?;
    op_node.admin_start_sequencer(head.hash).await?;
    assert!(op_node.admin_sequencer_active().await?);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_waits_for_a_block_in_flight_only_while_the_conductor_says_leader() -> Result<()> {
    // The client's timeout outlasts the test: a commit in flight stays in flight.
    let (fixture, script, _server) = start_with_timeout(200, 30_000).await?;
    let op_node = fixture.op_node("seq-0")?;
    op_node.admin_start_sequencer(fixture.head("seq-0")?.hash).await?;
    fixture.wait_for_height("seq-0", 2).await?;
    // Every commit now hangs for 10 s and the conductor has deposed the node: the stop must not
    // wait for the block in flight.
    script.delay_ms.store(10_000, Ordering::SeqCst);
    script.leader.store(false, Ordering::SeqCst);
    let checks_before = script.leader_checks.load(Ordering::SeqCst);
    wait_for("a seal in flight", async || {
        let sealing = fixture.sim.chains()[0].nodes[0].lock().sealing;
        if sealing { Ok(()) } else { Err("not sealing".into()) }
    })
    .await?;
    let head = fixture.head("seq-0")?;
    let stopped = op_node.admin_stop_sequencer().await?;
    assert!(fixture.sim.chains()[0].nodes[0].lock().sealing, "the stop waited for the commit to end");
    assert_eq!(stopped, head.hash);
    assert!(script.leader_checks.load(Ordering::SeqCst) > checks_before, "the stop asked the conductor");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posted_payloads_bring_a_node_to_the_committed_head() -> Result<()> {
    let (fixture, script, _server) = start(100).await?;
    // seq-2 is cut off from p2p; the others produce 6 blocks without it.
    fixture.sim.partition(&[vec!["seq-0".into(), "seq-1".into()], vec!["seq-2".into()]])?;
    fixture.op_node("seq-0")?.admin_start_sequencer(fixture.head("seq-0")?.hash).await?;
    fixture.wait_for_height("seq-1", 6).await?;
    fixture.op_node("seq-0")?.admin_stop_sequencer().await?;
    assert_eq!(fixture.head("seq-2")?.number, 0);
    let envelopes = script.accepted.lock().expect("lock").clone();
    let target = fixture.head("seq-0")?;
    let seq_2 = fixture.op_node("seq-2")?;
    // Newest first: queued until their parents arrive, as op-node queues gossip.
    for envelope in envelopes.iter().rev() {
        seq_2.post_unsafe_payload(envelope.clone()).await?;
    }
    fixture.wait_for_head_over_rpc("seq-2", target.hash).await?;
    // A payload whose hash is not its contents' is refused.
    let real = envelopes[0].head().block_hash.to_string();
    let forged = envelopes[0].json().replace(&real, &format!("0x{}", "ab".repeat(32)));
    let forged = Envelope::from_json(&forged)?;
    let (_, message) = rpc_error(seq_2.post_unsafe_payload(forged).await)?;
    assert!(message.contains("bad block hash"), "{message}");
    Ok(())
}
