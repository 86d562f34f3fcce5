//! The path between op-node and its conductor under faults (`conductor_delay`, `conductor_drop`),
//! applied over the control API, and the ground truth the ledger keeps of commits: when each
//! accepted commit was sent (`block.commit_sent_ms`), a commit accepted for a block the node could
//! no longer publish (`unpublished_commit`), and the first time anyone but its producer took a
//! block in (`seen`).
//!
//! The conductor is the scripted stand-in of `common::conductor`.

mod common;

use anyhow::{Context as _, Result, ensure};
use common::{
    Fixture, client,
    conductor::{Script, commit_failures, start, start_with_timeout},
    config, rpc_error, wait_for,
};
use jsonrpsee::http_client::HttpClient;
use op_sim::api::{FaultKind, FaultParams, LedgerEntry, SeenVia, SimControlApiClient};
use opc_wire::{B256, api::OpAdminApiClient, conductor::OpNodeConductorAdminApiClient, op_node_errors};
use std::{collections::BTreeMap, sync::atomic::Ordering, time::Duration};
use tokio::net::TcpListener;

/// The control API of `fixture`'s simulator on a free port.
async fn control(fixture: &Fixture) -> Result<HttpClient> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    fixture.sim.serve_control(listener);
    client(&url)
}

fn delay(latency_ms: u64) -> Option<FaultParams> {
    Some(FaultParams { latency_ms: Some(latency_ms), ..FaultParams::default() })
}

fn drop_mode(mode: &str) -> Option<FaultParams> {
    Some(FaultParams { mode: Some(mode.to_owned()), ..FaultParams::default() })
}

/// `(number, commit_sent_ms, t_ms)` of every block `producer` published after `after_ms`.
fn published(fixture: &Fixture, producer: &str, after_ms: u64) -> Vec<(u64, Option<u64>, u64)> {
    fixture
        .ledger()
        .into_iter()
        .filter_map(|entry| match entry {
            LedgerEntry::Block { producer: by, number, commit_sent_ms, t_ms, .. }
                if by == producer && t_ms > after_ms =>
            {
                Some((number, commit_sent_ms, t_ms))
            }
            _ => None,
        })
        .collect()
}

/// Starts `seq-0` and waits until `seq-1` holds `height` of its blocks.
async fn leading(fixture: &Fixture, height: u64) -> Result<()> {
    fixture.op_node("seq-0")?.admin_start_sequencer(fixture.head("seq-0")?.hash).await?;
    fixture.wait_for_height("seq-1", height).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_commit_path_delays_every_block_and_a_delay_past_the_rpc_timeout_fails_every_commit()
-> Result<()> {
    // 300 ms rpc timeout.
    let (fixture, _script, _server) = start(100).await?;
    let control = control(&fixture).await?;
    leading(&fixture, 3).await?;
    control.fault("seq-0".into(), FaultKind::ConductorDelay, delay(150)).await?;
    let slowed_at = fixture.sim.ledger().now_ms();
    let slowed = wait_for("three blocks committed through the slow path", async || {
        let blocks = published(&fixture, "seq-0", slowed_at + 150);
        if blocks.len() >= 3 { Ok(blocks) } else { Err(format!("{blocks:?}")) }
    })
    .await?;
    for (number, sent_ms, t_ms) in &slowed {
        let sent_ms = sent_ms.with_context(|| format!("block {number} has no commit time"))?;
        ensure!(t_ms - sent_ms >= 150, "block {number} committed in {} ms: not delayed", t_ms - sent_ms);
    }
    // Past the rpc timeout: both tries of every commit time out and nothing is published.
    control.fault("seq-0".into(), FaultKind::ConductorDelay, delay(400)).await?;
    let failures = wait_for("a commit that timed out", async || {
        let failures = commit_failures(&fixture, "seq-0");
        if failures.is_empty() { Err("none yet".into()) } else { Ok(failures) }
    })
    .await?;
    ensure!(failures[0].1.contains("no answer within 300 ms"), "{failures:?}");
    let failed_at = fixture.sim.ledger().now_ms();
    tokio::time::sleep(Duration::from_millis(300)).await;
    ensure!(published(&fixture, "seq-0", failed_at).is_empty(), "a block was published uncommitted");
    control.heal("seq-0".into(), Some(FaultKind::ConductorDelay)).await?;
    let healed_at = fixture.sim.ledger().now_ms();
    wait_for("blocks again after the heal", async || {
        let blocks = published(&fixture, "seq-0", healed_at);
        if blocks.len() >= 2 { Ok(()) } else { Err(format!("{blocks:?}")) }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_commit_path_fails_every_commit_and_every_leader_check() -> Result<()> {
    let (fixture, script, _server) = start(100).await?;
    let control = control(&fixture).await?;
    leading(&fixture, 3).await?;
    control.fault("seq-0".into(), FaultKind::ConductorDrop, drop_mode("refuse")).await?;
    let refused = wait_for("a refused commit", async || {
        let failures = commit_failures(&fixture, "seq-0");
        if failures.is_empty() { Err("none yet".into()) } else { Ok(failures) }
    })
    .await?;
    ensure!(refused[0].1 == op_sim::conductor::REFUSED, "{refused:?}");
    // The conductor never heard of it, and the node's leader checks fail: never taken as "leader".
    let checks = script.leader_checks.load(Ordering::SeqCst);
    control.fault("seq-1".into(), FaultKind::ConductorDrop, drop_mode("blackhole")).await?;
    let (_, message) =
        rpc_error(fixture.op_node("seq-1")?.admin_start_sequencer(B256::repeat_byte(7)).await)?;
    ensure!(message.starts_with(op_node_errors::LEADER_CHECK_FAILED_PREFIX), "{message}");
    ensure!(message.contains("no answer within 300 ms"), "{message}");
    ensure!(
        script.leader_checks.load(Ordering::SeqCst) == checks,
        "a black-holed check reached the conductor"
    );
    let stalled_at = fixture.head("seq-0")?;
    ensure!(fixture.head("seq-1")?.number <= stalled_at.number, "a follower moved past the leader");
    control.heal("seq-0".into(), None).await?;
    fixture.wait_for_height("seq-1", stalled_at.number + 2).await?;
    Ok(())
}

#[tokio::test]
async fn conductor_faults_need_a_conductor_and_their_parameters() -> Result<()> {
    let plain = Fixture::start(config(2, 100)).await?;
    let control_plain = control(&plain).await?;
    let (_, message) = rpc_error(control_plain.fault("seq-0".into(), FaultKind::ConductorDrop, None).await)?;
    ensure!(message.contains("seq-0 has no conductor"), "{message}");
    let (fixture, _script, _server) = start(100).await?;
    let control = control(&fixture).await?;
    let (_, message) = rpc_error(control.fault("seq-0".into(), FaultKind::ConductorDelay, None).await)?;
    ensure!(message.contains("conductor_delay: latency_ms is required"), "{message}");
    let (_, message) =
        rpc_error(control.fault("seq-0".into(), FaultKind::ConductorDrop, drop_mode("banana")).await)?;
    ensure!(message.contains("conductor_drop: unknown mode \"banana\""), "{message}");
    let (_, message) = rpc_error(control.fault("seq-0".into(), FaultKind::ConductorDrop, delay(5)).await)?;
    ensure!(message.contains("parameter latency_ms does not apply"), "{message}");
    control.fault("seq-0".into(), FaultKind::ConductorDrop, None).await?;
    let node = control.nodes().await?.into_iter().find(|node| node.name == "seq-0").context("seq-0")?;
    ensure!(node.faults == [FaultKind::ConductorDrop], "{node:?}");
    Ok(())
}

/// Every `seen` entry, by block hash.
fn sightings(fixture: &Fixture) -> BTreeMap<B256, (String, String, SeenVia, u64)> {
    let mut seen = BTreeMap::new();
    for entry in fixture.ledger() {
        if let LedgerEntry::Seen { node, producer, hash, via, t_ms, .. } = entry {
            let earlier = seen.insert(hash, (node, producer, via, t_ms));
            assert!(earlier.is_none(), "two sightings of {hash}");
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_keeps_when_each_commit_was_sent_and_the_first_sighting_of_each_block() -> Result<()> {
    let (fixture, script, _server) = start(100).await?;
    // seq-2 is cut off from p2p: it gets the blocks only by replay.
    fixture.sim.partition(&[vec!["seq-0".into(), "seq-1".into()], vec!["seq-2".into()]])?;
    leading(&fixture, 5).await?;
    fixture.op_node("seq-0")?.admin_stop_sequencer().await?;
    let target = fixture.head("seq-0")?;
    fixture.wait_for_height("seq-1", target.number).await?;
    let blocks = published(&fixture, "seq-0", 0);
    let seen = sightings(&fixture);
    for (number, sent_ms, t_ms) in &blocks {
        let sent_ms = sent_ms.with_context(|| format!("block {number} has no commit time"))?;
        ensure!(sent_ms <= *t_ms, "block {number}: commit sent at {sent_ms}, published at {t_ms}");
    }
    // Each block seen once, by seq-1, over p2p, after its commit was sent.
    ensure!(seen.len() == blocks.len(), "{} sightings of {} blocks", seen.len(), blocks.len());
    let sent: BTreeMap<B256, Option<u64>> = fixture
        .ledger()
        .into_iter()
        .filter_map(|entry| match entry {
            LedgerEntry::Block { hash, commit_sent_ms, .. } => Some((hash, commit_sent_ms)),
            _ => None,
        })
        .collect();
    for (hash, (node, producer, via, t_ms)) in &seen {
        ensure!(node == "seq-1" && producer == "seq-0" && *via == SeenVia::P2p, "{hash}: {node} {via:?}");
        let sent_ms = sent.get(hash).copied().flatten().with_context(|| format!("{hash} never committed"))?;
        ensure!(sent_ms <= *t_ms, "{hash} seen at {t_ms} before its commit was sent at {sent_ms}");
    }
    // Replayed to seq-2: seen no second time (seq-1 saw each first).
    let seq_2 = fixture.op_node("seq-2")?;
    let accepted = script.accepted.lock().expect("lock").clone();
    for envelope in accepted {
        seq_2.post_unsafe_payload(envelope).await?;
    }
    fixture.wait_for_head_over_rpc("seq-2", target.hash).await?;
    ensure!(sightings(&fixture).len() == blocks.len(), "a block was recorded as seen twice");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_block_nobody_else_had_is_seen_by_replay() -> Result<()> {
    let (fixture, script, _server) = start(100).await?;
    fixture.sim.partition(&[vec!["seq-0".into()], vec!["seq-1".into()], vec!["seq-2".into()]])?;
    fixture.op_node("seq-0")?.admin_start_sequencer(fixture.head("seq-0")?.hash).await?;
    fixture.wait_for_height("seq-0", 3).await?;
    fixture.op_node("seq-0")?.admin_stop_sequencer().await?;
    ensure!(sightings(&fixture).is_empty(), "nobody else could see a block");
    let seq_1 = fixture.op_node("seq-1")?;
    let accepted = script.accepted.lock().expect("lock").clone();
    for envelope in &accepted {
        seq_1.post_unsafe_payload(envelope.clone()).await?;
    }
    let seen = sightings(&fixture);
    ensure!(seen.len() == accepted.len(), "{seen:?}");
    ensure!(seen.values().all(|(node, _, via, _)| node == "seq-1" && *via == SeenVia::Replay), "{seen:?}");
    Ok(())
}

/// A conductor that answers commits 300 ms late, with a client that waits for it.
async fn slow_conductor() -> Result<(Fixture, std::sync::Arc<Script>, jsonrpsee::server::ServerHandle)> {
    let (fixture, script, server) = start_with_timeout(100, 2_000).await?;
    script.delay_ms.store(300, Ordering::SeqCst);
    Ok((fixture, script, server))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_accepted_after_its_node_hung_is_recorded_as_unpublished() -> Result<()> {
    let (fixture, script, _server) = slow_conductor().await?;
    fixture.op_node("seq-0")?.admin_start_sequencer(fixture.head("seq-0")?.hash).await?;
    // The conductor holds the first commit for 300 ms: hang the node meanwhile.
    wait_for("a commit in flight", async || {
        let received = script.commits_received.load(Ordering::SeqCst);
        if received > 0 { Ok(()) } else { Err("no commit yet".into()) }
    })
    .await?;
    fixture.sim.fault("seq-0", FaultKind::Hang, FaultParams::default())?;
    let (number, hash) = wait_for("the commit answered while hung", async || {
        fixture
            .ledger()
            .into_iter()
            .find_map(|entry| match entry {
                LedgerEntry::UnpublishedCommit { node, number, hash, commit_sent_ms, t_ms, .. }
                    if node == "seq-0" && commit_sent_ms + 300 <= t_ms =>
                {
                    Some((number, hash))
                }
                _ => None,
            })
            .ok_or_else(|| format!("{:?}", fixture.ledger()))
    })
    .await?;
    let accepted =
        script.accepted.lock().expect("lock").iter().any(|envelope| envelope.head().block_hash == hash);
    ensure!(accepted, "the conductor holds block {number}");
    ensure!(
        published(&fixture, "seq-0", 0).iter().all(|(n, ..)| *n != number),
        "block {number} was published"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_answered_after_the_rpc_timeout_failed_but_may_have_been_accepted() -> Result<()> {
    // 300 ms rpc timeout; the conductor accepts each commit, but answers 500 ms later.
    let (fixture, script, _server) = start(100).await?;
    script.delay_ms.store(500, Ordering::SeqCst);
    fixture.op_node("seq-0")?.admin_start_sequencer(fixture.head("seq-0")?.hash).await?;
    let (number, hash, unanswered_sent_ms) = wait_for("a commit that timed out", async || {
        fixture
            .ledger()
            .into_iter()
            .find_map(|entry| match entry {
                LedgerEntry::CommitFailed { number, hash, unanswered_sent_ms, .. } => {
                    Some((number, hash, unanswered_sent_ms))
                }
                _ => None,
            })
            .ok_or_else(|| "none yet".to_owned())
    })
    .await?;
    ensure!(unanswered_sent_ms.is_some(), "block {number}: the timed-out try is not recorded as unanswered");
    wait_for("the conductor to hold the block", async || {
        let held = script.accepted.lock().expect("lock").iter().any(|e| e.head().block_hash == hash);
        if held { Ok(()) } else { Err("not yet".into()) }
    })
    .await?;
    // A refusal is an answer: nothing unanswered.
    script.delay_ms.store(0, Ordering::SeqCst);
    script.refuse.store(true, Ordering::SeqCst);
    let refused_at = fixture.sim.ledger().now_ms();
    let refused = wait_for("a refused commit", async || {
        fixture
            .ledger()
            .into_iter()
            .find_map(|entry| match entry {
                LedgerEntry::CommitFailed { unanswered_sent_ms, t_ms, error, .. }
                    if t_ms > refused_at && error.contains("scripted refusal") =>
                {
                    Some(unanswered_sent_ms)
                }
                _ => None,
            })
            .ok_or_else(|| "none yet".to_owned())
    })
    .await?;
    ensure!(refused.is_none(), "a refused commit recorded as unanswered");
    Ok(())
}
