//! p2p over real HTTP: followers import the leader's blocks, fetch missing ancestors after an outage,
//! and re-org when a longer competing branch arrives after a partition heals.

mod common;

use anyhow::{Context as _, Result, ensure};
use common::{Fixture, config, wait_for};
use op_sim::api::{FaultKind, FaultParams, FaultTarget, LedgerEntry};
use opc_wire::{
    BlockNumberOrTag,
    api::{EthApiClient, OpAdminApiClient},
};

/// Every block 1..=`number` that `name`'s op-geth serves equals the one `leader` sealed.
async fn same_chain_up_to(fixture: &Fixture, name: &str, leader: &str, number: u64) -> Result<()> {
    let sealed = fixture.sealed_by(leader);
    let op_geth = fixture.op_geth(name)?;
    for height in 1..=number {
        let expected = sealed.iter().find(|block| block.number == height).map(|block| block.hash);
        let served =
            op_geth.block_by_number(BlockNumberOrTag::Number(height), false).await?.map(|block| block.hash);
        ensure!(
            served.is_some() && served == expected,
            "{name} block {height}: {served:?}, {leader} sealed {expected:?}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn followers_import_every_block_of_the_leader_and_converge_on_its_head() -> Result<()> {
    let fixture = Fixture::start(config(3, 50)).await?;
    let target = fixture.wait_for_height("seq-0", 6).await?;
    for name in ["seq-1", "seq-2"] {
        // While the leader keeps producing, each follower serves the leader's block at that height.
        fixture.wait_for_geth_block(name, target.number, target.hash).await?;
    }
    // A fresh block reaches each follower within the gossip latency (20 ms + up to 10 ms jitter),
    // plus slack for a loaded machine.
    let sealed_before = fixture.sealed_by("seq-0").len();
    let fresh = wait_for("seq-0 to seal a fresh block", async || {
        fixture.sealed_by("seq-0").get(sealed_before).copied().ok_or_else(|| "not yet".to_owned())
    })
    .await?;
    for (index, name) in [(1, "seq-1"), (2, "seq-2")] {
        let node = &fixture.sim.chains()[0].nodes[index];
        let arrived_ms = wait_for(&format!("{name} to import {}", fresh.hash), async || {
            let known = node.lock().store.get(&fresh.hash).is_some();
            if known {
                Ok(fixture.sim.ledger().now_ms())
            } else {
                Err(format!("head {}", node.lock().head().id()))
            }
        })
        .await?;
        let took_ms = arrived_ms - fresh.t_ms;
        ensure!(took_ms <= 30 + 200, "{name} imported block {} after {took_ms} ms", fresh.number);
    }

    let head = fixture.op_node("seq-0")?.admin_stop_sequencer().await?;
    for name in ["seq-1", "seq-2"] {
        fixture.wait_for_head_over_rpc(name, head).await?;
        same_chain_up_to(&fixture, name, "seq-0", fixture.head(name)?.number).await?;
        ensure!(fixture.reorgs_of(name).is_empty(), "{name} re-orged following one leader");
    }
    Ok(())
}

#[tokio::test]
async fn a_follower_catches_up_by_fetching_ancestors_after_its_op_node_was_down() -> Result<()> {
    let fixture = Fixture::start(config(3, 50)).await?;
    fixture.wait_for_height("seq-1", 2).await?;
    let crash = FaultParams { target: Some(FaultTarget::OpNode), ..FaultParams::default() };
    fixture.sim.fault("seq-1", FaultKind::Crash, crash)?;
    let missed_from = fixture.head("seq-1")?;
    // More than one ancestor batch (64 blocks) goes by while it is down.
    fixture.wait_for_height("seq-0", missed_from.number + 70).await?;
    ensure!(fixture.head("seq-1")? == missed_from, "a crashed op-node must not import blocks");

    fixture.sim.heal("seq-1", None)?;
    let target = fixture.head("seq-0")?;
    fixture.wait_for_geth_block("seq-1", target.number, target.hash).await?;
    same_chain_up_to(&fixture, "seq-1", "seq-0", target.number).await?;
    ensure!(fixture.reorgs_of("seq-1").is_empty(), "catching up on one chain is not a re-org");
    Ok(())
}

#[tokio::test]
async fn a_follower_catches_up_by_fetching_ancestors_after_its_op_node_hung() -> Result<()> {
    let fixture = Fixture::start(config(2, 50)).await?;
    fixture.wait_for_height("seq-1", 1).await?;
    let hang = FaultParams { target: Some(FaultTarget::OpNode), ..FaultParams::default() };
    fixture.sim.fault("seq-1", FaultKind::Hang, hang)?;
    let frozen_at = fixture.head("seq-1")?;
    fixture.wait_for_height("seq-0", frozen_at.number + 5).await?;
    ensure!(fixture.head("seq-1")? == frozen_at, "a hung op-node must not import blocks");

    fixture.sim.heal("seq-1", Some(FaultKind::Hang))?;
    let target = fixture.head("seq-0")?;
    fixture.wait_for_geth_block("seq-1", target.number, target.hash).await?;
    same_chain_up_to(&fixture, "seq-1", "seq-0", target.number).await?;
    Ok(())
}

#[tokio::test]
async fn after_a_partition_heals_the_shorter_side_reorgs_onto_the_longer_branch() -> Result<()> {
    let fixture = Fixture::start(config(3, 50)).await?;
    fixture.wait_for_height("seq-2", 2).await?;
    fixture.sim.partition(&[vec!["seq-0".into()], vec!["seq-1".into(), "seq-2".into()]])?;
    // A second sequencer on the other side of the split, behind the coordinator's back.
    fixture.sim.fault("seq-1", FaultKind::StartSequencer, FaultParams::default())?;
    wait_for("seq-2 to follow seq-1's branch", async || {
        let sealed = fixture.sealed_by("seq-1");
        let head = fixture.head("seq-2").map_err(|err| err.to_string())?;
        match sealed.get(2) {
            Some(third)
                if sealed.iter().any(|block| block.hash == head.hash) && head.number >= third.number =>
            {
                Ok(())
            }
            _ => Err(format!("seq-1 sealed {}, seq-2 head {head}", sealed.len())),
        }
    })
    .await?;
    // The minority branch stops growing; the majority keeps going and will be longer.
    fixture.sim.fault("seq-1", FaultKind::StopSequencer, FaultParams::default())?;
    let minority_head = fixture.head("seq-1")?;
    fixture.wait_for_height("seq-0", minority_head.number + 2).await?;
    fixture.sim.partition(&[])?;

    let converged = wait_for("every node on seq-0's branch", async || {
        let leader = fixture.head("seq-0").map_err(|err| err.to_string())?;
        let heads: Vec<_> = ["seq-1", "seq-2"].iter().filter_map(|name| fixture.head(name).ok()).collect();
        let on_leader_branch = heads.iter().all(|head| {
            head.number > minority_head.number
                && fixture.sealed_by("seq-0").iter().any(|b| b.hash == head.hash)
        });
        if on_leader_branch { Ok(leader) } else { Err(format!("leader {leader}, followers {heads:?}")) }
    })
    .await?;

    for name in ["seq-1", "seq-2"] {
        let reorgs = fixture.reorgs_of(name);
        // The last one: a node can also re-org inside the minority side while the split lasts.
        let reorg = reorgs.last().with_context(|| format!("no Reorg entry for {name}"))?;
        let LedgerEntry::Reorg { old_head, new_head, depth, .. } = reorg else { unreachable!("filtered") };
        ensure!(*depth >= 1 && new_head.number > old_head.number, "{name}: {reorg:?}");
        let sealed_by_seq_1 = fixture.sealed_by("seq-1");
        ensure!(
            sealed_by_seq_1.iter().any(|b| b.hash == old_head.hash),
            "{name} left another branch: {reorg:?}"
        );
    }
    ensure!(fixture.reorgs_of("seq-0").is_empty(), "the longer side must not re-org");
    ensure!(converged.number > minority_head.number);

    let report = fixture.sim.invariants().into_iter().next().context("no chain")?;
    ensure!(!report.unsafe_reorgs.is_empty(), "the fork is an unsafe re-org: {report:?}");
    ensure!(!report.double_sequencing.is_empty(), "two sides sealed at once: {report:?}");
    ensure!(report.node_reorgs >= 2, "both minority nodes re-orged: {report:?}");
    let conflict = &report.unsafe_reorgs[0];
    let producers: Vec<_> = conflict.blocks.iter().map(|(producer, _)| producer.as_str()).collect();
    ensure!(producers.contains(&"seq-0") && producers.contains(&"seq-1"), "conflict {conflict:?}");
    // seq-1 is no longer a sequencer, and a coordinator would see it agree with the leader.
    ensure!(!fixture.op_node("seq-1")?.admin_sequencer_active().await?);
    Ok(())
}

#[tokio::test]
async fn a_follower_whose_ancestor_fetch_outlasts_a_block_keeps_up_and_holds_the_last_blocks_of_a_dead_leader()
-> Result<()> {
    // Fetching ancestors costs two message delays (120 ms), more than a block plus a delay
    // (110 ms): every gossiped block arrives before the fetch of its parent returns. op-node
    // queues such blocks until their parent is in; a follower that dropped them would stay behind
    // for as long as the leader seals, and lose what a dying leader sealed last.
    let mut config = config(3, 50);
    config.gossip = op_sim::GossipConfig { latency_ms: 60, jitter_ms: 0 };
    let fixture = Fixture::start(config).await?;
    fixture.wait_for_height("seq-2", 2).await?;
    fixture.sim.partition(&[vec!["seq-0".into(), "seq-1".into()], vec!["seq-2".into()]])?;
    let cut_at = fixture.head("seq-0")?;
    fixture.wait_for_height("seq-0", cut_at.number + 5).await?;
    fixture.sim.partition(&[])?;
    let healed_at = fixture.head("seq-0")?;
    fixture.wait_for_height("seq-0", healed_at.number + 10).await?;
    // The leader dies: what it sealed before dying reaches the follower by gossip alone.
    fixture.sim.fault(
        "seq-0",
        FaultKind::Crash,
        FaultParams { target: Some(FaultTarget::Both), ..Default::default() },
    )?;
    let last = fixture.sealed_by("seq-0").last().map(|block| block.hash).context("seq-0 sealed nothing")?;
    wait_for("seq-2 at the dead leader's last block", async || {
        let head = fixture.head("seq-2").map_err(|err| err.to_string())?;
        if head.hash == last { Ok(()) } else { Err(format!("seq-2 at {head}")) }
    })
    .await?;
    Ok(())
}
