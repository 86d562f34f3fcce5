//! The `sim_*` control API over JSON-RPC, as outside tools script it.

mod common;

use anyhow::{Context as _, Result, ensure};
use common::{
    Fixture, client, config, raw_call, refuses_connections, rpc_error, wait_until_answering,
    wait_until_refused,
};
use jsonrpsee::http_client::HttpClient;
use op_sim::api::{FaultKind, FaultParams, FaultTarget, LedgerEntry, SimControlApiClient};
use serde_json::json;
use tokio::net::TcpListener;

/// A simulator with its control endpoint on a free port, and a client of it.
async fn start(nodes: usize) -> Result<(Fixture, HttpClient, String)> {
    let fixture = Fixture::start(config(nodes, 50)).await?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    fixture.sim.serve_control(listener);
    Ok((fixture, client(&url)?, url))
}

#[tokio::test]
async fn sim_nodes_lists_every_node_with_its_urls_active_flag_and_head() -> Result<()> {
    let (fixture, control, _) = start(3).await?;
    for name in ["seq-1", "seq-2"] {
        fixture.wait_for_height(name, 1).await?;
    }
    let nodes = control.nodes().await?;
    let names: Vec<_> = nodes.iter().map(|node| (node.chain.as_str(), node.name.as_str())).collect();
    ensure!(names == [("devnet", "seq-0"), ("devnet", "seq-1"), ("devnet", "seq-2")], "{names:?}");
    let active: Vec<_> = nodes.iter().map(|node| node.active).collect();
    ensure!(active == [true, false, false], "active flags {active:?}");
    for node in &nodes {
        ensure!(node.op_node_up && node.op_geth_up && node.faults.is_empty(), "{node:?}");
        ensure!(node.unsafe_head.number >= 1, "{node:?}");
        // The URLs it lists are the live endpoints.
        wait_until_answering(&node.op_node_url, "optimism_syncStatus").await?;
        wait_until_answering(&node.op_geth_url, "eth_chainId").await?;
    }
    Ok(())
}

#[tokio::test]
async fn sim_fault_and_sim_heal_apply_and_undo_a_fault() -> Result<()> {
    let (fixture, control, _) = start(2).await?;
    let crash = FaultParams { target: Some(FaultTarget::OpGeth), ..FaultParams::default() };
    control.fault("seq-1".into(), FaultKind::Crash, Some(crash.clone())).await?;
    let op_geth_url = fixture.op_geth_url("seq-1")?;
    wait_until_refused(&op_geth_url).await?;
    let node = control.nodes().await?.into_iter().find(|node| node.name == "seq-1").context("no seq-1")?;
    ensure!(node.op_node_up && !node.op_geth_up && node.faults == [FaultKind::Crash], "{node:?}");
    // `devnet/seq-1` addresses the same node.
    control
        .fault(
            "devnet/seq-1".into(),
            FaultKind::Slow,
            Some(FaultParams { latency_ms: Some(1), ..FaultParams::default() }),
        )
        .await?;
    ensure!(fixture.info("seq-1")?.faults == [FaultKind::Crash, FaultKind::Slow]);

    control.heal("seq-1".into(), Some(FaultKind::Crash)).await?;
    wait_until_answering(&op_geth_url, "eth_chainId").await?;
    ensure!(fixture.info("seq-1")?.faults == [FaultKind::Slow], "only the crash is healed");
    control.heal("seq-1".into(), None).await?;
    ensure!(fixture.info("seq-1")?.faults.is_empty(), "heal without kind heals all");
    let ledger = control.ledger(None).await?;
    let crash_entry = ledger.iter().any(|entry| {
        matches!(entry, LedgerEntry::Fault { node, kind: FaultKind::Crash, params, .. }
            if node == "seq-1" && *params == crash)
    });
    ensure!(crash_entry, "the fault is in the ledger with its params");
    Ok(())
}

#[tokio::test]
async fn sim_heal_star_heals_every_node_and_the_partition() -> Result<()> {
    let (fixture, control, _) = start(3).await?;
    fixture.wait_for_height("seq-2", 1).await?;
    control.fault("seq-1".into(), FaultKind::Crash, None).await?;
    control.fault("seq-2".into(), FaultKind::ExecutionLag, None).await?;
    control.partition(vec![vec!["seq-0".into()], vec!["seq-1".into(), "seq-2".into()]]).await?;
    wait_until_refused(&fixture.op_node_url("seq-1")?).await?;

    control.heal("*".into(), None).await?;
    ensure!(control.nodes().await?.iter().all(|node| node.faults.is_empty()), "faults left after heal *");
    wait_until_answering(&fixture.op_node_url("seq-1")?, "optimism_syncStatus").await?;
    // The partition is gone too: both followers catch up with the leader again.
    let target = fixture.wait_for_height("seq-0", fixture.head("seq-0")?.number + 2).await?;
    for name in ["seq-1", "seq-2"] {
        fixture.wait_for_geth_block(name, target.number, target.hash).await?;
    }
    let healed = control
        .ledger(None)
        .await?
        .iter()
        .any(|entry| matches!(entry, LedgerEntry::Partition { groups, .. } if groups.is_empty()));
    ensure!(healed, "the partition heal is in the ledger");
    Ok(())
}

#[tokio::test]
async fn sim_partition_splits_the_p2p_network_and_an_empty_list_heals_it() -> Result<()> {
    let (fixture, control, _) = start(2).await?;
    fixture.wait_for_height("seq-1", 1).await?;
    control.partition(vec![vec!["seq-0".into()], vec!["seq-1".into()]]).await?;
    let cut_at = fixture.head("seq-1")?;
    fixture.wait_for_height("seq-0", cut_at.number + 4).await?;
    let follower = fixture.head("seq-1")?;
    ensure!(follower.number <= cut_at.number + 1, "seq-1 kept importing across the partition: {follower}");

    control.partition(vec![]).await?;
    let target = fixture.wait_for_height("seq-0", fixture.head("seq-0")?.number + 1).await?;
    fixture.wait_for_geth_block("seq-1", target.number, target.hash).await?;

    let (code, message) = rpc_error(control.partition(vec![vec!["seq-0".into(), "seq-0".into()]]).await)?;
    ensure!(code == -32602 && message.contains("seq-0 is listed twice"), "{code} {message:?}");
    Ok(())
}

#[tokio::test]
async fn sim_ledger_returns_the_entries_from_an_index_on() -> Result<()> {
    let (fixture, control, _) = start(2).await?;
    fixture.wait_for_height("seq-0", 3).await?;
    let all = control.ledger(None).await?;
    ensure!(all.len() >= 4, "{all:?}");
    let tail = control.ledger(Some(2)).await?;
    ensure!(tail.len() >= all.len() - 2 && tail[..all.len() - 2] == all[2..], "ledger(2) is not a suffix");
    ensure!(control.ledger(Some(u64::MAX)).await?.is_empty(), "past the end is empty");
    ensure!(control.ledger(Some(0)).await?[..all.len()] == all[..]);
    Ok(())
}

#[tokio::test]
async fn sim_invariants_reports_every_chain_like_the_library() -> Result<()> {
    let (fixture, control, _) = start(2).await?;
    fixture.wait_for_height("seq-0", 3).await?;
    fixture.sim.fault("seq-0", FaultKind::Stall, FaultParams::default())?;
    let over_rpc = control.invariants().await?;
    ensure!(over_rpc == fixture.sim.invariants(), "the RPC report differs from the library's");
    ensure!(
        over_rpc.len() == 1 && over_rpc[0].chain == "devnet" && over_rpc[0].blocks_sealed >= 3,
        "{over_rpc:?}"
    );
    ensure!(over_rpc[0].is_safe());
    Ok(())
}

#[tokio::test]
async fn unknown_node_names_are_rejected_with_an_error_naming_the_node() -> Result<()> {
    let (_fixture, control, _) = start(1).await?;
    let (code, message) = rpc_error(control.fault("seq-7".into(), FaultKind::Crash, None).await)?;
    ensure!(code == -32602 && message.contains("\"seq-7\""), "{code} {message:?}");
    let (_, message) = rpc_error(control.heal("devnet/ghost".into(), None).await)?;
    ensure!(message.contains("\"devnet/ghost\""), "{message:?}");
    let (_, message) = rpc_error(control.partition(vec![vec!["nobody".into()]]).await)?;
    ensure!(message.contains("\"nobody\""), "{message:?}");
    Ok(())
}

#[tokio::test]
async fn bad_fault_parameters_over_json_rpc_are_rejected_naming_the_parameter() -> Result<()> {
    let (fixture, control, url) = start(1).await?;
    let params = FaultParams { latency_ms: Some(10), ..FaultParams::default() };
    let (code, message) = rpc_error(control.fault("seq-0".into(), FaultKind::Crash, Some(params)).await)?;
    ensure!(code == -32602 && message.contains("latency_ms"), "{code} {message:?}");
    // A misspelt key is refused, not ignored, and the reply names it.
    let reply = raw_call(&url, "sim_fault", json!(["seq-0", "slow", {"latency": 10}])).await?;
    let body = String::from_utf8_lossy(&reply.body).into_owned();
    ensure!(reply.error()?.0 == -32602 && body.contains("unknown field `latency`"), "{body}");
    // So is an unknown kind.
    let reply = raw_call(&url, "sim_fault", json!(["seq-0", "explode", null])).await?;
    let body = String::from_utf8_lossy(&reply.body).into_owned();
    ensure!(reply.error()?.0 == -32602 && body.contains("unknown variant `explode`"), "{body}");
    ensure!(fixture.info("seq-0")?.faults.is_empty(), "a rejected fault was applied");
    ensure!(!refuses_connections(&fixture.op_node_url("seq-0")?).await?);
    Ok(())
}
