//! Every fault and its heal, observed the way a coordinator observes them: over real HTTP.

mod common;

use anyhow::{Context as _, Result, bail, ensure};
use common::{
    Fixture, config, holds_for, raw_call, refuses_connections, set_options, split_url, wait_for,
    wait_until_answering, wait_until_refused,
};
use op_sim::NodeOptions;
use op_sim::api::{FaultKind, FaultParams, FaultTarget, LedgerEntry};
use opc_wire::{
    BlockNumberOrTag,
    api::{EthApiClient, OpAdminApiClient, OptimismApiClient},
};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::{net::TcpStream, time::Instant};

/// How long a request must stay unanswered to count as held by a hang or a blackhole.
const HELD_FOR: Duration = Duration::from_millis(300);

fn target(target: FaultTarget) -> FaultParams {
    FaultParams { target: Some(target), ..FaultParams::default() }
}

/// The block `name`'s op-geth serves at `number`.
async fn geth_hash_at(fixture: &Fixture, name: &str, number: u64) -> Result<Option<alloy_primitives::B256>> {
    let block = fixture.op_geth(name)?.block_by_number(BlockNumberOrTag::Number(number), false).await?;
    Ok(block.map(|block| block.hash))
}

#[tokio::test]
async fn crashing_op_geth_refuses_only_its_connections_and_heal_brings_it_back_with_the_chain() -> Result<()>
{
    let fixture = Fixture::start(config(2, 50)).await?;
    let before = fixture.wait_for_height("seq-1", 3).await?;
    fixture.sim.fault("seq-1", FaultKind::Crash, target(FaultTarget::OpGeth))?;
    let op_geth_url = fixture.op_geth_url("seq-1")?;
    wait_until_refused(&op_geth_url).await?;
    // op-node still answers, and says it is stopped.
    fixture.op_node("seq-1")?.sync_status().await?;
    ensure!(!fixture.op_node("seq-1")?.admin_sequencer_active().await?);
    let info = fixture.info("seq-1")?;
    ensure!(info.op_node_up && !info.op_geth_up && info.faults == vec![FaultKind::Crash], "{info:?}");

    fixture.sim.heal("seq-1", Some(FaultKind::Crash))?;
    wait_until_answering(&op_geth_url, "eth_chainId").await?;
    ensure!(geth_hash_at(&fixture, "seq-1", before.number).await? == Some(before.hash), "chain not kept");
    // It follows the leader again.
    let target = fixture.wait_for_height("seq-0", fixture.head("seq-0")?.number + 2).await?;
    fixture.wait_for_geth_block("seq-1", target.number, target.hash).await?;
    Ok(())
}

#[tokio::test]
async fn crashing_the_leaders_op_node_stops_it_and_heal_restarts_it_on_its_kept_head() -> Result<()> {
    let fixture = Fixture::start(config(2, 50)).await?;
    fixture.wait_for_height("seq-0", 3).await?;
    // One long-lived client, as a coordinator keeps: it must work again after the restart.
    let op_node = fixture.op_node("seq-0")?;
    ensure!(op_node.admin_sequencer_active().await?);
    fixture.sim.fault("seq-0", FaultKind::Crash, target(FaultTarget::OpNode))?;
    let crashed_at = fixture.head("seq-0")?;
    let op_node_url = fixture.op_node_url("seq-0")?;
    wait_until_refused(&op_node_url).await?;
    ensure!(!refuses_connections(&fixture.op_geth_url("seq-0")?).await?, "op-geth must keep answering");
    let geth_head = fixture.op_geth("seq-0")?.block_number().await?.to::<u64>();
    ensure!(geth_head == crashed_at.number, "op-geth head {geth_head}, op-node head {crashed_at}");
    let deactivated = fixture.ledger().into_iter().any(|entry| {
        matches!(entry, LedgerEntry::Deactivated { node, cause, .. }
            if node == "seq-0" && cause == "op-node crashed")
    });
    ensure!(deactivated, "no Deactivated entry for the crash");

    fixture.sim.heal("seq-0", None)?;
    wait_until_answering(&op_node_url, "optimism_syncStatus").await?;
    // Comes up active again (no --sequencer.stopped), continuing its own kept chain.
    ensure!(op_node.admin_sequencer_active().await?, "seq-0 starts active per its flags");
    fixture.wait_for_height("seq-0", crashed_at.number + 1).await?;
    let next = fixture.sealed_by("seq-0").into_iter().find(|block| block.number == crashed_at.number + 1);
    ensure!(
        next.map(|block| block.parent) == Some(crashed_at.hash),
        "resumed on {next:?}, not on {crashed_at}"
    );
    Ok(())
}

#[tokio::test]
async fn crashing_both_processes_refuses_both_endpoints_until_healed() -> Result<()> {
    let fixture = Fixture::start(config(2, 50)).await?;
    let before = fixture.wait_for_height("seq-1", 2).await?;
    fixture.sim.fault("seq-1", FaultKind::Crash, FaultParams::default())?;
    let urls = [fixture.op_node_url("seq-1")?, fixture.op_geth_url("seq-1")?];
    for url in &urls {
        wait_until_refused(url).await?;
    }
    // A client sees a transport error, not a JSON-RPC error.
    let error = fixture.op_node("seq-1")?.sync_status().await.err().context("a crashed op-node answered")?;
    ensure!(matches!(error, jsonrpsee::core::ClientError::Transport(_)), "{error:?}");
    // The rest of the chain is not affected.
    ensure!(!refuses_connections(&fixture.op_node_url("seq-0")?).await?);

    fixture.sim.heal("seq-1", None)?;
    wait_until_answering(&urls[0], "optimism_syncStatus").await?;
    wait_until_answering(&urls[1], "eth_blockNumber").await?;
    ensure!(geth_hash_at(&fixture, "seq-1", before.number).await? == Some(before.hash), "chain not kept");
    Ok(())
}

#[tokio::test]
async fn a_hung_op_node_holds_requests_until_healed_while_op_geth_answers() -> Result<()> {
    let fixture = Fixture::start(config(2, 50)).await?;
    fixture.wait_for_height("seq-1", 1).await?;
    fixture.sim.fault("seq-1", FaultKind::Hang, target(FaultTarget::OpNode))?;
    let op_node = fixture.op_node("seq-1")?;
    let held = tokio::spawn(async move { op_node.sync_status().await });
    // The connection is accepted (not refused) and the request is not answered.
    ensure!(
        !refuses_connections(&fixture.op_node_url("seq-1")?).await?,
        "a hung process accepts connections"
    );
    let mut held = held;
    if tokio::time::timeout(HELD_FOR, &mut held).await.is_ok() {
        bail!("a hung op-node answered within {HELD_FOR:?}");
    }
    fixture.op_geth("seq-1")?.block_number().await.context("op-geth must answer while op-node hangs")?;

    fixture.sim.heal("seq-1", Some(FaultKind::Hang))?;
    let status =
        tokio::time::timeout(common::DEADLINE, held).await.context("held request still hanging")???;
    ensure!(status.unsafe_l2.number >= 1, "released request answered {status:?}");
    Ok(())
}

#[tokio::test]
async fn a_hung_leader_seals_nothing_and_resumes_after_heal() -> Result<()> {
    let fixture = Fixture::start(config(2, 50)).await?;
    fixture.wait_for_height("seq-0", 2).await?;
    fixture.sim.fault("seq-0", FaultKind::Hang, FaultParams::default())?;
    let frozen = fixture.head("seq-0")?;
    let sealed = fixture.sealed_by("seq-0").len();
    // Four block times without a block, seen from the ground truth.
    holds_for("the hung leader's head stays put", Duration::from_millis(200), async || {
        let head = fixture.head("seq-0").map_err(|err| err.to_string())?;
        if head == frozen { Ok(()) } else { Err(format!("head moved to {head}")) }
    })
    .await?;
    ensure!(fixture.sealed_by("seq-0").len() == sealed);
    fixture.sim.heal("seq-0", None)?;
    fixture.wait_for_height("seq-0", frozen.number + 1).await?;
    Ok(())
}

/// Time from the last heal in the ledger to `producer`'s first block after it.
async fn first_block_after_heal_ms(fixture: &Fixture, producer: &str) -> Result<u64> {
    let healed_ms = fixture
        .ledger()
        .iter()
        .rev()
        .find_map(|entry| matches!(entry, LedgerEntry::Heal { .. }).then(|| entry.t_ms()))
        .context("no Heal entry")?;
    let block = wait_for(&format!("{producer} to seal after the heal"), async || {
        let sealed = fixture.sealed_by(producer);
        sealed
            .into_iter()
            .find(|block| block.t_ms >= healed_ms)
            .ok_or_else(|| "nothing sealed yet".to_owned())
    })
    .await?;
    Ok(block.t_ms - healed_ms)
}

#[tokio::test]
async fn a_hung_sequencer_waits_a_block_time_after_resuming_unless_told_to_seal_on_resume() -> Result<()> {
    let block_time_ms = 400;
    let fixture = Fixture::start(config(1, block_time_ms)).await?;
    let node = &fixture.sim.chains()[0].nodes[0];
    let hang =
        |seal_on_resume| FaultParams { seal_on_resume: Some(seal_on_resume), ..FaultParams::default() };
    let mut delays_ms = Vec::new();
    for seal_on_resume in [true, false] {
        fixture.sim.fault("seq-0", FaultKind::Hang, hang(seal_on_resume))?;
        // Stay hung until a block is overdue: that block is what seal_on_resume is about.
        wait_for("a block to fall due during the hang", async || {
            let due = node.lock().next_seal_at;
            if Instant::now() > due {
                Ok(())
            } else {
                Err(format!("next seal in {:?}", due - Instant::now()))
            }
        })
        .await?;
        fixture.sim.heal("seq-0", Some(FaultKind::Hang))?;
        delays_ms.push(first_block_after_heal_ms(&fixture, "seq-0").await?);
    }
    ensure!(delays_ms[0] < block_time_ms / 2, "seal_on_resume sealed {} ms after the heal", delays_ms[0]);
    ensure!(delays_ms[1] >= block_time_ms - 20, "without seal_on_resume it sealed after {} ms", delays_ms[1]);
    Ok(())
}

#[tokio::test]
async fn a_slow_endpoint_delays_every_reply_by_at_least_latency_ms() -> Result<()> {
    let fixture = Fixture::start(config(1, 100)).await?;
    let slow =
        FaultParams { target: Some(FaultTarget::OpGeth), latency_ms: Some(250), ..FaultParams::default() };
    fixture.sim.fault("seq-0", FaultKind::Slow, slow)?;
    let op_geth = fixture.op_geth("seq-0")?;
    for _ in 0..2 {
        let started = Instant::now();
        op_geth.chain_id().await?;
        let elapsed = started.elapsed();
        ensure!(elapsed >= Duration::from_millis(250), "reply came after {elapsed:?}");
    }
    // op-node is not targeted: it answers without the added latency.
    let started = Instant::now();
    fixture.op_node("seq-0")?.sync_status().await?;
    ensure!(started.elapsed() < Duration::from_millis(250), "op-node was slowed too");

    fixture.sim.heal("seq-0", Some(FaultKind::Slow))?;
    ensure!(fixture.info("seq-0")?.faults.is_empty());
    let started = Instant::now();
    op_geth.chain_id().await?;
    ensure!(started.elapsed() < Duration::from_millis(250), "still slow after heal: {:?}", started.elapsed());
    Ok(())
}

#[tokio::test]
async fn malformed_invalid_json_replies_are_not_json_until_healed() -> Result<()> {
    let fixture = Fixture::start(config(1, 100)).await?;
    let params = FaultParams { mode: Some("invalid_json".into()), ..FaultParams::default() };
    fixture.sim.fault("seq-0", FaultKind::Malformed, params)?;
    for (url, method) in [
        (fixture.op_node_url("seq-0")?, "optimism_syncStatus"),
        (fixture.op_geth_url("seq-0")?, "eth_blockNumber"),
    ] {
        let reply = raw_call(&url, method, json!([])).await?;
        ensure!(reply.status == 200, "status {}", reply.status);
        ensure!(serde_json::from_slice::<Value>(&reply.body).is_err(), "{method} body parsed as JSON");
    }
    let error = fixture.op_node("seq-0")?.sync_status().await.err().context("the client decoded garbage")?;
    ensure!(
        !matches!(error, jsonrpsee::core::ClientError::Call(_)),
        "garbage is not a JSON-RPC error: {error:?}"
    );

    fixture.sim.heal("seq-0", Some(FaultKind::Malformed))?;
    raw_call(&fixture.op_node_url("seq-0")?, "optimism_syncStatus", json!([])).await?.result()?;
    Ok(())
}

#[tokio::test]
async fn malformed_wrong_types_replies_are_json_with_wrongly_typed_results() -> Result<()> {
    let fixture = Fixture::start(config(1, 50)).await?;
    fixture.wait_for_height("seq-0", 1).await?;
    let params = FaultParams {
        target: Some(FaultTarget::OpNode),
        mode: Some("wrong_types".into()),
        ..FaultParams::default()
    };
    fixture.sim.fault("seq-0", FaultKind::Malformed, params)?;
    let status =
        raw_call(&fixture.op_node_url("seq-0")?, "optimism_syncStatus", json!([])).await?.result()?;
    let unsafe_l2 = &status["unsafe_l2"];
    ensure!(unsafe_l2["number"].is_string() && unsafe_l2["hash"].is_number(), "not retyped: {unsafe_l2}");
    let active =
        raw_call(&fixture.op_node_url("seq-0")?, "admin_sequencerActive", json!([])).await?.result()?;
    ensure!(active.is_string(), "sequencerActive should not be a bool: {active}");
    ensure!(fixture.op_node("seq-0")?.sync_status().await.is_err(), "the client accepted wrongly typed refs");
    // op-geth is not targeted.
    let number = raw_call(&fixture.op_geth_url("seq-0")?, "eth_blockNumber", json!([])).await?.result()?;
    ensure!(number.as_str().is_some_and(|text| text.starts_with("0x")), "op-geth reply {number}");
    fixture.sim.heal("seq-0", None)?;
    fixture.op_node("seq-0")?.sync_status().await?;
    Ok(())
}

#[tokio::test]
async fn malformed_huge_body_replies_are_at_least_size_bytes_of_valid_json() -> Result<()> {
    let fixture = Fixture::start(config(1, 100)).await?;
    let size_bytes = 3 * 1024 * 1024;
    let params = FaultParams {
        target: Some(FaultTarget::OpGeth),
        mode: Some("huge_body".into()),
        size_bytes: Some(size_bytes),
        ..FaultParams::default()
    };
    fixture.sim.fault("seq-0", FaultKind::Malformed, params)?;
    let url = fixture.op_geth_url("seq-0")?;
    let reply = raw_call(&url, "eth_chainId", json!([])).await?;
    ensure!(reply.body.len() as u64 >= size_bytes, "body is {} bytes", reply.body.len());
    ensure!(reply.result()? == json!("0x385"), "the padded reply still carries the result");
    fixture.sim.heal("seq-0", None)?;
    let reply = raw_call(&url, "eth_chainId", json!([])).await?;
    ensure!(reply.body.len() < 1024, "still huge after heal: {} bytes", reply.body.len());
    Ok(())
}

#[tokio::test]
async fn an_isolated_leader_refuses_rpc_while_its_blocks_still_reach_followers() -> Result<()> {
    let fixture = Fixture::start(config(3, 50)).await?;
    fixture.wait_for_height("seq-1", 1).await?;
    fixture.sim.fault(
        "seq-0",
        FaultKind::Isolate,
        FaultParams { mode: Some("refuse".into()), ..FaultParams::default() },
    )?;
    let urls = [fixture.op_node_url("seq-0")?, fixture.op_geth_url("seq-0")?];
    for url in &urls {
        wait_until_refused(url).await?;
    }
    let isolated_at = fixture.head("seq-1")?;
    // p2p keeps working: followers keep importing the leader's new blocks.
    let target = fixture.wait_for_height("seq-0", isolated_at.number + 3).await?;
    for name in ["seq-1", "seq-2"] {
        fixture.wait_for_geth_block(name, target.number, target.hash).await?;
    }
    ensure!(fixture.info("seq-0")?.active, "the isolated leader is still active (alive but unreachable)");

    fixture.sim.heal("seq-0", Some(FaultKind::Isolate))?;
    wait_until_answering(&urls[0], "optimism_syncStatus").await?;
    wait_until_answering(&urls[1], "eth_blockNumber").await?;
    Ok(())
}

#[tokio::test]
async fn a_blackholed_leader_accepts_connections_but_never_answers_while_p2p_works() -> Result<()> {
    let fixture = Fixture::start(config(2, 50)).await?;
    fixture.wait_for_height("seq-1", 1).await?;
    let blackhole = FaultParams { mode: Some("blackhole".into()), ..FaultParams::default() };
    fixture.sim.fault("seq-0", FaultKind::Isolate, blackhole)?;
    let (authority, _) = split_url(&fixture.op_node_url("seq-0")?)?;
    TcpStream::connect(&authority).await.context("a blackhole accepts connections")?;
    let op_geth = fixture.op_geth("seq-0")?;
    let mut held = tokio::spawn(async move { op_geth.block_number().await });
    if tokio::time::timeout(HELD_FOR, &mut held).await.is_ok() {
        bail!("a blackholed op-geth answered within {HELD_FOR:?}");
    }
    let isolated_at = fixture.head("seq-1")?;
    let target = fixture.wait_for_height("seq-0", isolated_at.number + 3).await?;
    fixture.wait_for_geth_block("seq-1", target.number, target.hash).await?;

    fixture.sim.heal("seq-0", None)?;
    let number =
        tokio::time::timeout(common::DEADLINE, held).await.context("held request still hanging")???;
    ensure!(number.to::<u64>() >= isolated_at.number, "released request answered {number}");
    Ok(())
}

#[tokio::test]
async fn a_stalled_sequencer_stays_active_and_answers_but_seals_nothing_until_healed() -> Result<()> {
    let fixture = Fixture::start(config(2, 50)).await?;
    fixture.wait_for_height("seq-0", 2).await?;
    fixture.sim.fault("seq-0", FaultKind::Stall, FaultParams::default())?;
    let stalled_at = fixture.head("seq-0")?;
    let op_node = fixture.op_node("seq-0")?;
    holds_for("a stalled head stays put while the node answers", Duration::from_millis(250), async || {
        let status = op_node.sync_status().await.map_err(|err| err.to_string())?;
        let active = op_node.admin_sequencer_active().await.map_err(|err| err.to_string())?;
        if status.unsafe_l2.id() == stalled_at && active {
            Ok(())
        } else {
            Err(format!("head {}, active {active}", status.unsafe_l2))
        }
    })
    .await?;

    fixture.sim.heal("seq-0", Some(FaultKind::Stall))?;
    fixture.wait_for_height("seq-0", stalled_at.number + 2).await?;
    let resumed = fixture.sealed_by("seq-0").into_iter().find(|block| block.number == stalled_at.number + 1);
    ensure!(resumed.map(|block| block.parent) == Some(stalled_at.hash), "resumed on {resumed:?}");
    Ok(())
}

#[tokio::test]
async fn execution_lag_freezes_op_geth_while_op_node_advances_and_heal_catches_up() -> Result<()> {
    let fixture = Fixture::start(config(2, 50)).await?;
    fixture.wait_for_height("seq-1", 2).await?;
    fixture.sim.fault("seq-1", FaultKind::ExecutionLag, FaultParams::default())?;
    let op_geth = fixture.op_geth("seq-1")?;
    let op_node = fixture.op_node("seq-1")?;
    let frozen = op_geth.block_number().await?.to::<u64>();
    // Stops early when op-geth moves, so that shows as its own failure.
    let geth = wait_for("op-node to advance 3 blocks past a frozen op-geth", async || {
        let geth = op_geth.block_number().await.map_err(|err| err.to_string())?.to::<u64>();
        let unsafe_l2 = op_node.sync_status().await.map_err(|err| err.to_string())?.unsafe_l2;
        if geth != frozen || unsafe_l2.number >= frozen + 3 {
            Ok(geth)
        } else {
            Err(format!("unsafe_l2 {unsafe_l2}, op-geth {geth}"))
        }
    })
    .await?;
    ensure!(geth == frozen, "op-geth moved from {frozen} to {geth} during the lag");
    let latest = op_geth.block_by_number(BlockNumberOrTag::Latest, false).await?.context("no latest")?;
    ensure!(latest.number.to::<u64>() == frozen, "latest is {latest:?}");
    let ahead = op_geth.block_by_number(BlockNumberOrTag::Number(frozen + 1), false).await?;
    ensure!(ahead.is_none(), "op-geth serves a block it has not imported: {ahead:?}");

    fixture.sim.heal("seq-1", Some(FaultKind::ExecutionLag))?;
    wait_for("op-geth to catch up with op-node", async || {
        let geth = op_geth.block_number().await.map_err(|err| err.to_string())?.to::<u64>();
        let unsafe_l2 = op_node.sync_status().await.map_err(|err| err.to_string())?.unsafe_l2;
        if geth >= unsafe_l2.number && geth > frozen + 3 {
            Ok(())
        } else {
            Err(format!("op-geth {geth}, unsafe_l2 {unsafe_l2}"))
        }
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn start_and_stop_sequencer_faults_flip_the_sequencer_behind_the_coordinators_back() -> Result<()> {
    let mut config = config(3, 50);
    set_options(&mut config, 2, NodeOptions { sequencer_enabled: false, ..NodeOptions::default() });
    let fixture = Fixture::start(config).await?;
    fixture.wait_for_height("seq-1", 1).await?;
    fixture.sim.fault("seq-0", FaultKind::StopSequencer, FaultParams::default())?;
    ensure!(!fixture.op_node("seq-0")?.admin_sequencer_active().await?, "seq-0 still active");
    let stopped_at = fixture.head("seq-0")?;
    fixture.wait_for_head_over_rpc("seq-1", stopped_at.hash).await?;

    fixture.sim.fault("seq-1", FaultKind::StartSequencer, FaultParams::default())?;
    ensure!(fixture.op_node("seq-1")?.admin_sequencer_active().await?, "seq-1 not active");
    fixture.wait_for_height("seq-1", stopped_at.number + 2).await?;
    let first = fixture.sealed_by("seq-1").first().copied().context("seq-1 sealed nothing")?;
    ensure!(first.parent == stopped_at.hash, "seq-1 started off its head: {first:?}");
    let causes: Vec<String> = fixture
        .ledger()
        .into_iter()
        .filter_map(|entry| match entry {
            LedgerEntry::Activated { node, cause, .. } if node == "seq-1" => Some(cause),
            LedgerEntry::Deactivated { node, cause, .. } if node == "seq-0" => Some(cause),
            _ => None,
        })
        .collect();
    ensure!(causes.iter().all(|cause| cause.contains("behind the coordinator's back")), "causes {causes:?}");
    ensure!(causes.len() == 2, "causes {causes:?}");
    // Neither is a lasting fault.
    ensure!(fixture.info("seq-1")?.faults.is_empty() && fixture.info("seq-0")?.faults.is_empty());

    // Requests that cannot be applied are refused with the reason.
    let again = fixture.sim.fault("seq-1", FaultKind::StartSequencer, FaultParams::default());
    ensure!(again.is_err_and(|err| err.to_string().contains("active = true")), "double start accepted");
    let stop_stopped = fixture.sim.fault("seq-0", FaultKind::StopSequencer, FaultParams::default());
    ensure!(
        stop_stopped.is_err_and(|err| err.to_string().contains("not active")),
        "stop of stopped accepted"
    );
    let not_sequencer = fixture.sim.fault("seq-2", FaultKind::StartSequencer, FaultParams::default());
    ensure!(not_sequencer.is_err_and(|err| err.to_string().contains("not sequencer-enabled")));
    Ok(())
}

#[tokio::test]
async fn bad_fault_parameters_are_rejected_with_an_error_naming_the_parameter() -> Result<()> {
    let fixture = Fixture::start(config(1, 100)).await?;
    let cases = [
        (FaultKind::Crash, FaultParams { latency_ms: Some(5), ..FaultParams::default() }, "latency_ms"),
        (FaultKind::Slow, FaultParams::default(), "latency_ms is required"),
        (
            FaultKind::Malformed,
            FaultParams { mode: Some("bogus".into()), ..FaultParams::default() },
            "mode \"bogus\"",
        ),
        (
            FaultKind::Malformed,
            FaultParams { size_bytes: Some(10), ..FaultParams::default() },
            "size_bytes applies only to mode huge_body",
        ),
        (
            FaultKind::Isolate,
            FaultParams { mode: Some("drop".into()), ..FaultParams::default() },
            "mode \"drop\"",
        ),
        (
            FaultKind::Isolate,
            FaultParams { target: Some(FaultTarget::OpNode), ..FaultParams::default() },
            "target",
        ),
        (
            FaultKind::Stall,
            FaultParams { seal_on_resume: Some(true), ..FaultParams::default() },
            "seal_on_resume",
        ),
        (FaultKind::Hang, FaultParams { size_bytes: Some(1), ..FaultParams::default() }, "size_bytes"),
    ];
    for (kind, params, needle) in cases {
        match fixture.sim.fault("seq-0", kind, params.clone()) {
            Ok(()) => bail!("{kind} with {params:?} was accepted"),
            Err(err) => {
                ensure!(err.to_string().contains(needle), "{kind} {params:?}: {err} lacks {needle:?}")
            }
        }
    }
    ensure!(fixture.info("seq-0")?.faults.is_empty(), "a rejected fault was applied");
    let unknown = fixture.sim.fault("seq-9", FaultKind::Crash, FaultParams::default());
    ensure!(unknown.is_err_and(|err| err.to_string().contains("\"seq-9\"")), "unknown node not named");
    Ok(())
}
