//! The op-node and op-geth RPC surface over real HTTP: reply shapes, check order and the exact error
//! strings of `../shared/reference/op-node-rpc.md`.

mod common;

use alloy_primitives::B256;
use anyhow::{Context as _, Result, ensure};
use common::{
    CHAIN_ID, Fixture, GENESIS_TIME, config, expected_epoch, expected_sequence_number, raw_call, rpc_error,
    set_options, wait_for, wait_until_answering, wait_until_refused,
};
use op_sim::NodeOptions;
use op_sim::api::{FaultKind, FaultParams, FaultTarget, LedgerEntry};
use opc_wire::{
    BlockNumberOrTag, L2BlockRef, SyncStatusShape,
    api::{EthApiClient, OpAdminApiClient, OptimismApiClient},
    op_node_errors::{self, APPLICATION_ERROR_CODE, METHOD_NOT_FOUND_CODE},
};
use serde_json::{Value, json};
use std::collections::BTreeSet;

const L1_KEYS: [&str; 4] = ["hash", "number", "parentHash", "timestamp"];
const L2_KEYS: [&str; 6] = ["hash", "number", "parentHash", "timestamp", "l1origin", "sequenceNumber"];

fn keys(value: &Value) -> BTreeSet<String> {
    value.as_object().map(|object| object.keys().cloned().collect()).unwrap_or_default()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

fn is_hash(value: &Value) -> bool {
    value.as_str().is_some_and(|text| text.len() == 66 && text.starts_with("0x"))
}

fn is_hex_quantity(value: &Value) -> bool {
    value.as_str().is_some_and(|text| text.starts_with("0x") && text.len() > 2)
}

/// Checks one raw ref: key set, hashes as 0x strings, numbers as plain JSON integers.
fn check_raw_ref(name: &str, value: &Value, l2: bool) -> Result<()> {
    let expected = if l2 { set(&L2_KEYS) } else { set(&L1_KEYS) };
    ensure!(keys(value) == expected, "{name} has keys {:?}, expected {expected:?}", keys(value));
    ensure!(is_hash(&value["hash"]) && is_hash(&value["parentHash"]), "{name} hashes: {value}");
    ensure!(
        value["number"].is_u64() && value["timestamp"].is_u64(),
        "{name} numbers must be integers: {value}"
    );
    if l2 {
        ensure!(value["sequenceNumber"].is_u64(), "{name} sequenceNumber must be an integer: {value}");
        let origin = &value["l1origin"];
        ensure!(keys(origin) == set(&["hash", "number"]), "{name}.l1origin keys: {origin}");
        ensure!(is_hash(&origin["hash"]) && origin["number"].is_u64(), "{name}.l1origin: {origin}");
    }
    Ok(())
}

#[tokio::test]
async fn sync_status_answers_with_the_key_set_of_each_op_node_release() -> Result<()> {
    let mut config = config(3, 50);
    let shapes = [SyncStatusShape::V2023, SyncStatusShape::Early2024, SyncStatusShape::Late2024];
    for (index, shape) in shapes.into_iter().enumerate() {
        set_options(
            &mut config,
            index,
            NodeOptions { start_active: index == 0, sync_status_shape: shape, ..NodeOptions::default() },
        );
    }
    let fixture = Fixture::start(config).await?;
    for name in ["seq-1", "seq-2"] {
        fixture.wait_for_height(name, 2).await?;
    }

    let l1 = ["current_l1", "current_l1_finalized", "head_l1", "safe_l1", "finalized_l1"];
    let l2 = ["unsafe_l2", "safe_l2", "finalized_l2"];
    let extra: [&[&str]; 3] = [
        &["queued_unsafe_l2", "engine_sync_target"],
        &["pending_safe_l2"],
        &["pending_safe_l2", "cross_unsafe_l2", "local_safe_l2"],
    ];
    for (index, extra) in extra.into_iter().enumerate() {
        let name = format!("seq-{index}");
        let status =
            raw_call(&fixture.op_node_url(&name)?, "optimism_syncStatus", json!([])).await?.result()?;
        let expected: BTreeSet<String> =
            l1.iter().chain(&l2).chain(extra).map(|key| (*key).to_owned()).collect();
        ensure!(keys(&status) == expected, "{name}: keys {:?}, expected {expected:?}", keys(&status));
        for key in l1 {
            check_raw_ref(&format!("{name}.{key}"), &status[key], false)?;
        }
        for key in l2.iter().chain(extra) {
            check_raw_ref(&format!("{name}.{key}"), &status[*key], true)?;
        }
        ensure!(
            status["unsafe_l2"]["number"].as_u64() >= Some(2),
            "{name}: unsafe_l2 {}",
            status["unsafe_l2"]
        );
    }
    Ok(())
}

#[tokio::test]
async fn sync_status_refs_are_consistent_with_each_other_and_with_op_geth() -> Result<()> {
    let block_time_ms = 50;
    let fixture = Fixture::start(config(2, block_time_ms)).await?;
    fixture.wait_for_height("seq-0", 12).await?;
    // Freeze the chain so every reply below describes the same head.
    let stopped = fixture.op_node("seq-0")?.admin_stop_sequencer().await?;
    fixture.wait_for_head_over_rpc("seq-1", stopped).await?;

    for name in ["seq-0", "seq-1"] {
        let status = fixture.op_node(name)?.sync_status().await?;
        let op_geth = fixture.op_geth(name)?;
        let unsafe_l2 = status.unsafe_l2;
        ensure!(unsafe_l2.hash == stopped, "{name}: unsafe_l2 {unsafe_l2} is not the stopped head {stopped}");
        ensure!(status.safe_l2.number == unsafe_l2.number - 3, "{name}: safe_l2 {}", status.safe_l2);
        ensure!(
            status.finalized_l2.number == unsafe_l2.number - 6,
            "{name}: finalized_l2 {}",
            status.finalized_l2
        );
        ensure!(status.pending_safe_l2 == status.safe_l2 && status.local_safe_l2 == status.safe_l2);
        ensure!(status.cross_unsafe_l2 == unsafe_l2);
        ensure!(
            status.current_l1_finalized == status.finalized_l1,
            "current_l1_finalized must equal finalized_l1"
        );
        ensure!(status.safe_l1.hash == status.head_l1.parent_hash, "safe_l1 must be head_l1's parent");
        ensure!(
            status.head_l1.number > unsafe_l2.l1_origin.number,
            "head_l1 must be past the unsafe l1origin"
        );

        for (label, tag, reference) in [
            ("unsafe_l2", BlockNumberOrTag::Latest, unsafe_l2),
            ("safe_l2", BlockNumberOrTag::Safe, status.safe_l2),
            ("finalized_l2", BlockNumberOrTag::Finalized, status.finalized_l2),
        ] {
            check_ref(name, label, &reference, block_time_ms)?;
            let by_tag =
                op_geth.block_by_number(tag, false).await?.with_context(|| format!("{name}: no {tag}"))?;
            ensure!(
                by_tag.hash == reference.hash,
                "{name}: op-geth {tag} is {}, {label} {reference}",
                by_tag.hash
            );
            let parent = op_geth
                .block_by_hash(reference.parent_hash, false)
                .await?
                .with_context(|| format!("{name}: parent of {label} unknown to op-geth"))?;
            ensure!(parent.number.to::<u64>() + 1 == reference.number, "{name}: {label} parent {parent:?}");
            let at_number =
                op_geth.block_by_number(BlockNumberOrTag::Number(reference.number), false).await?;
            ensure!(at_number.map(|block| block.hash) == Some(reference.hash), "{name}: {label} by number");
        }
    }
    Ok(())
}

/// Number, timestamp, L1 origin and sequence number of one L2 ref follow the chain's rules.
fn check_ref(node: &str, label: &str, reference: &L2BlockRef, block_time_ms: u64) -> Result<()> {
    let number = reference.number;
    ensure!(
        reference.timestamp == GENESIS_TIME + number * block_time_ms / 1000,
        "{node}: {label} timestamp {} for block {number}",
        reference.timestamp
    );
    ensure!(reference.l1_origin.number == expected_epoch(number, block_time_ms), "{node}: {label} l1origin");
    ensure!(reference.l1_origin.hash != B256::ZERO, "{node}: {label} l1origin hash is zero");
    ensure!(
        reference.sequence_number == expected_sequence_number(number, block_time_ms),
        "{node}: {label} sequenceNumber {} for block {number}",
        reference.sequence_number
    );
    Ok(())
}

#[tokio::test]
async fn admin_sequencer_active_reports_the_sequencer_state_and_false_on_a_non_sequencer() -> Result<()> {
    let mut config = config(3, 100);
    set_options(&mut config, 2, NodeOptions { sequencer_enabled: false, ..NodeOptions::default() });
    let fixture = Fixture::start(config).await?;
    ensure!(fixture.op_node("seq-0")?.admin_sequencer_active().await?, "seq-0 starts active");
    ensure!(!fixture.op_node("seq-1")?.admin_sequencer_active().await?, "seq-1 starts stopped");
    let reply = raw_call(&fixture.op_node_url("seq-2")?, "admin_sequencerActive", json!([])).await?;
    ensure!(
        reply.result()? == json!(false),
        "a non-sequencer answers false, not an error: {:?}",
        reply.json()
    );
    Ok(())
}

#[tokio::test]
async fn admin_stop_sequencer_returns_the_head_hash_and_stops_block_production() -> Result<()> {
    let fixture = Fixture::start(config(2, 100)).await?;
    fixture.wait_for_height("seq-0", 3).await?;
    let op_node = fixture.op_node("seq-0")?;
    let stopped = op_node.admin_stop_sequencer().await?;

    ensure!(!op_node.admin_sequencer_active().await?, "seq-0 still reports active after stop");
    let sealed = fixture.sealed_by("seq-0");
    let last = sealed.last().context("seq-0 sealed nothing")?;
    ensure!(last.hash == stopped, "stopped hash {stopped} is not the last sealed block {last:?}");
    ensure!(
        op_node.sync_status().await?.unsafe_l2.hash == stopped,
        "syncStatus head differs from stopped hash"
    );
    let latest = fixture.op_geth("seq-0")?.block_by_number(BlockNumberOrTag::Latest, false).await?;
    ensure!(latest.map(|block| block.hash) == Some(stopped), "op-geth latest differs from stopped hash");

    // Let another node seal three blocks on top: three block times in which seq-0 must stay silent.
    fixture.wait_for_head_over_rpc("seq-1", stopped).await?;
    fixture.op_node("seq-1")?.admin_start_sequencer(stopped).await?;
    wait_for("seq-1 to seal three blocks", async || {
        let count = fixture.sealed_by("seq-1").len();
        if count >= 3 { Ok(()) } else { Err(format!("{count} sealed")) }
    })
    .await?;
    let after = fixture.sealed_by("seq-0");
    ensure!(after.len() == sealed.len(), "seq-0 sealed after it was stopped: {:?}", &after[sealed.len()..]);
    let first_of_seq_1 = fixture.sealed_by("seq-1")[0];
    ensure!(
        first_of_seq_1.parent == stopped,
        "seq-1 did not continue from the stopped hash: {first_of_seq_1:?}"
    );
    Ok(())
}

#[tokio::test]
async fn admin_stop_sequencer_fails_with_sequencer_not_running_on_a_stopped_sequencer() -> Result<()> {
    let fixture = Fixture::start(config(2, 100)).await?;
    let (code, message) = rpc_error(fixture.op_node("seq-1")?.admin_stop_sequencer().await)?;
    ensure!(code == APPLICATION_ERROR_CODE && message == "sequencer not running", "got {code} {message:?}");
    // The raw reply carries exactly that message too.
    let reply = raw_call(&fixture.op_node_url("seq-1")?, "admin_stopSequencer", json!([])).await?;
    ensure!(reply.error()? == (-32000, "sequencer not running".to_owned()), "raw reply {:?}", reply.json());
    Ok(())
}

#[tokio::test]
async fn admin_stop_sequencer_fails_with_sequencer_is_not_enabled_on_a_non_sequencer() -> Result<()> {
    let mut config = config(2, 100);
    set_options(&mut config, 1, NodeOptions { sequencer_enabled: false, ..NodeOptions::default() });
    let fixture = Fixture::start(config).await?;
    let (code, message) = rpc_error(fixture.op_node("seq-1")?.admin_stop_sequencer().await)?;
    ensure!(
        code == APPLICATION_ERROR_CODE && message == "sequencer is not enabled",
        "got {code} {message:?}"
    );
    Ok(())
}

#[tokio::test]
async fn admin_start_sequencer_checks_running_then_hash_then_enabled_with_exact_messages() -> Result<()> {
    let mut config = config(3, 100);
    set_options(&mut config, 2, NodeOptions { sequencer_enabled: false, ..NodeOptions::default() });
    let fixture = Fixture::start(config).await?;
    let wrong = B256::repeat_byte(0xab);

    // 1. An active sequencer refuses before it looks at the hash.
    let (code, message) = rpc_error(fixture.op_node("seq-0")?.admin_start_sequencer(wrong).await)?;
    ensure!(
        code == APPLICATION_ERROR_CODE && message == "sequencer already running",
        "got {code} {message:?}"
    );

    fixture.wait_for_height("seq-0", 2).await?;
    let head = fixture.op_node("seq-0")?.admin_stop_sequencer().await?;
    for name in ["seq-1", "seq-2"] {
        fixture.wait_for_head_over_rpc(name, head).await?;
    }
    let number = fixture.head("seq-1")?.number;

    // 2. A stopped sequencer given another hash reports its head as 0xHASH:NUMBER.
    let (code, message) = rpc_error(fixture.op_node("seq-1")?.admin_start_sequencer(wrong).await)?;
    let expected = format!("block hash does not match: head {head}:{number}, received {wrong}");
    ensure!(
        code == APPLICATION_ERROR_CODE && message == expected,
        "got {code} {message:?}, expected {expected:?}"
    );
    ensure!(message == op_node_errors::hash_mismatch(head, number, wrong));

    // 3. The hash check comes before the enabled check on a non-sequencer...
    let non_sequencer = fixture.op_node("seq-2")?;
    let (_, message) = rpc_error(non_sequencer.admin_start_sequencer(wrong).await)?;
    ensure!(message == expected, "non-sequencer with a wrong hash: {message:?}");
    // ... and with the right hash it is "not enabled".
    let (code, message) = rpc_error(non_sequencer.admin_start_sequencer(head).await)?;
    ensure!(
        code == APPLICATION_ERROR_CODE && message == "sequencer is not enabled",
        "got {code} {message:?}"
    );
    ensure!(!non_sequencer.admin_sequencer_active().await?);
    Ok(())
}

#[tokio::test]
async fn admin_start_sequencer_reports_no_prestate_after_already_running_before_engine_init() -> Result<()> {
    let mut config = config(1, 1000);
    set_options(
        &mut config,
        0,
        NodeOptions { start_active: true, engine_init_ms: 60_000, ..NodeOptions::default() },
    );
    let fixture = Fixture::start(config).await?;
    // Active but sealing nothing, so the engine stays uninitialised (the first seal is 1 s away).
    fixture.sim.fault("seq-0", FaultKind::Stall, FaultParams::default())?;
    let op_node = fixture.op_node("seq-0")?;
    let status = op_node.sync_status().await?;
    ensure!(status.is_uninitialised() && status.safe_l2.is_zero(), "refs must be all-zero: {status:?}");
    let raw = raw_call(&fixture.op_node_url("seq-0")?, "optimism_syncStatus", json!([])).await?.result()?;
    ensure!(raw["unsafe_l2"]["hash"] == json!(B256::ZERO.to_string()), "raw unsafe_l2: {}", raw["unsafe_l2"]);

    let requested = B256::repeat_byte(0x11);
    let (_, message) = rpc_error(op_node.admin_start_sequencer(requested).await)?;
    ensure!(message == "sequencer already running", "already running is checked first: {message:?}");

    // Stopping without an initialised engine answers the zero hash (2023 behaviour).
    let stopped = op_node.admin_stop_sequencer().await?;
    ensure!(stopped == B256::ZERO, "stop before engine init returned {stopped}");

    let (code, message) = rpc_error(op_node.admin_start_sequencer(requested).await)?;
    let expected = format!("no prestate, cannot determine if sequencer start at {requested}:0 is safe");
    ensure!(code == APPLICATION_ERROR_CODE && message == expected, "got {code} {message:?}");
    Ok(())
}

#[tokio::test]
async fn admin_start_sequencer_returns_null_and_seals_the_next_block_on_that_head_at_once() -> Result<()> {
    // Long block time and everyone stopped: the first block can only come from the start call.
    let mut config = config(2, 1000);
    set_options(&mut config, 0, NodeOptions::default());
    let fixture = Fixture::start(config).await?;
    let genesis = fixture.op_node("seq-0")?.sync_status().await?.unsafe_l2;
    ensure!(genesis.number == 0, "no block may exist before the start: {genesis}");

    let reply =
        raw_call(&fixture.op_node_url("seq-0")?, "admin_startSequencer", json!([genesis.hash.to_string()]))
            .await?;
    ensure!(reply.json()? == json!({"jsonrpc": "2.0", "id": 1, "result": null}), "reply {:?}", reply.json());
    let activated_ms = fixture
        .ledger()
        .iter()
        .find_map(|entry| match entry {
            LedgerEntry::Activated { node, head, t_ms, .. } if node == "seq-0" => Some((*head, *t_ms)),
            _ => None,
        })
        .context("no Activated entry")?;
    ensure!(activated_ms.0 == genesis.id(), "activated on {} instead of genesis", activated_ms.0);
    let first = wait_for("seq-0's first block", async || {
        fixture.sealed_by("seq-0").first().copied().ok_or_else(|| "nothing sealed".to_owned())
    })
    .await?;
    ensure!(first.parent == genesis.hash && first.number == 1, "first block {first:?} not on genesis");
    let delay_ms = first.t_ms - activated_ms.1;
    ensure!(delay_ms < 500, "the first block came {delay_ms} ms after the start, not right away");
    ensure!(fixture.op_node("seq-0")?.admin_sequencer_active().await?);
    Ok(())
}

#[tokio::test]
async fn admin_reset_derivation_pipeline_returns_null() -> Result<()> {
    let fixture = Fixture::start(config(1, 100)).await?;
    let reply = raw_call(&fixture.op_node_url("seq-0")?, "admin_resetDerivationPipeline", json!([])).await?;
    ensure!(reply.result()? == Value::Null, "reply {:?}", reply.json());
    fixture.op_node("seq-0")?.admin_reset_derivation_pipeline().await?;
    Ok(())
}

#[tokio::test]
async fn admin_methods_do_not_exist_when_admin_is_disabled() -> Result<()> {
    let mut config = config(1, 100);
    set_options(
        &mut config,
        0,
        NodeOptions { admin_enabled: false, start_active: true, ..NodeOptions::default() },
    );
    let fixture = Fixture::start(config).await?;
    let url = fixture.op_node_url("seq-0")?;
    let hash = json!([B256::ZERO.to_string()]);
    for (method, params) in [
        ("admin_startSequencer", hash),
        ("admin_stopSequencer", json!([])),
        ("admin_sequencerActive", json!([])),
        ("admin_resetDerivationPipeline", json!([])),
    ] {
        let (code, message) = raw_call(&url, method, params).await?.error()?;
        let expected = format!("the method {method} does not exist/is not available");
        ensure!(
            code == i64::from(METHOD_NOT_FOUND_CODE) && message == expected,
            "{method}: {code} {message:?}"
        );
    }
    let (code, message) = rpc_error(fixture.op_node("seq-0")?.admin_start_sequencer(B256::ZERO).await)?;
    ensure!(code == METHOD_NOT_FOUND_CODE, "client view: {code} {message:?}");
    ensure!(message == "the method admin_startSequencer does not exist/is not available");
    // The rest of op-node answers, and the sequencer kept running.
    fixture.wait_for_height("seq-0", 1).await?;
    fixture.op_node("seq-0")?.sync_status().await?;
    Ok(())
}

#[tokio::test]
async fn unknown_methods_fail_with_geths_method_not_found_message_on_both_servers() -> Result<()> {
    let fixture = Fixture::start(config(1, 100)).await?;
    for (url, method) in [
        (fixture.op_node_url("seq-0")?, "optimism_outputAtBlock"),
        (fixture.op_geth_url("seq-0")?, "eth_sendRawTransaction"),
        (fixture.op_geth_url("seq-0")?, "admin_startSequencer"),
    ] {
        let (code, message) = raw_call(&url, method, json!([])).await?.error()?;
        let expected = format!("the method {method} does not exist/is not available");
        ensure!(code == -32601 && message == expected, "{url} {method}: {code} {message:?}");
    }
    Ok(())
}

#[tokio::test]
async fn a_zero_stopped_hash_node_answers_stop_with_the_zero_hash_while_sync_status_has_the_head()
-> Result<()> {
    let mut config = config(1, 50);
    set_options(
        &mut config,
        0,
        NodeOptions { start_active: true, zero_stopped_hash: true, ..NodeOptions::default() },
    );
    let fixture = Fixture::start(config).await?;
    fixture.wait_for_height("seq-0", 2).await?;
    let op_node = fixture.op_node("seq-0")?;
    let stopped = op_node.admin_stop_sequencer().await?;
    ensure!(stopped == B256::ZERO, "stop returned {stopped}");
    let head = op_node.sync_status().await?.unsafe_l2;
    ensure!(head.number >= 2 && head.hash == fixture.head("seq-0")?.hash, "syncStatus head {head}");
    ensure!(!op_node.admin_sequencer_active().await?);
    Ok(())
}

#[tokio::test]
async fn op_geth_serves_blocks_by_tag_number_and_hash_with_hex_quantities() -> Result<()> {
    let fixture = Fixture::start(config(1, 50)).await?;
    fixture.wait_for_height("seq-0", 8).await?;
    let head = fixture.op_node("seq-0")?.admin_stop_sequencer().await?;
    let url = fixture.op_geth_url("seq-0")?;

    let chain_id = raw_call(&url, "eth_chainId", json!([])).await?.result()?;
    ensure!(chain_id == json!(format!("{CHAIN_ID:#x}")), "eth_chainId {chain_id}");
    let block_number = raw_call(&url, "eth_blockNumber", json!([])).await?.result()?;
    ensure!(is_hex_quantity(&block_number), "eth_blockNumber {block_number}");
    let head_number =
        u64::from_str_radix(block_number.as_str().unwrap_or_default().trim_start_matches("0x"), 16)?;

    let block = async |selector: Value| -> Result<Value> {
        raw_call(&url, "eth_getBlockByNumber", json!([selector, false])).await?.result()
    };
    let latest = block(json!("latest")).await?;
    ensure!(latest["hash"] == json!(head.to_string()), "latest {latest}");
    ensure!(latest["number"] == block_number, "latest number {} vs {block_number}", latest["number"]);
    for key in ["number", "timestamp", "gasLimit", "gasUsed"] {
        ensure!(is_hex_quantity(&latest[key]), "latest.{key} is not a hex quantity: {}", latest[key]);
    }
    ensure!(latest["timestamp"] == json!(format!("{:#x}", GENESIS_TIME + head_number * 50 / 1000)));
    for key in ["hash", "parentHash", "stateRoot"] {
        ensure!(is_hash(&latest[key]), "latest.{key}: {}", latest[key]);
    }
    for (tag, lag) in [("safe", 3), ("finalized", 6)] {
        let tagged = block(json!(tag)).await?;
        ensure!(tagged["number"] == json!(format!("{:#x}", head_number - lag)), "{tag}: {tagged}");
    }
    let earliest = block(json!("earliest")).await?;
    ensure!(earliest["number"] == json!("0x0") && earliest["parentHash"] == json!(B256::ZERO.to_string()));
    let second = block(json!("0x2")).await?;
    let first = block(json!("0x1")).await?;
    ensure!(second["number"] == json!("0x2") && second["parentHash"] == first["hash"], "block 2: {second}");
    ensure!(first["parentHash"] == earliest["hash"], "block 1's parent is not genesis");
    let beyond = block(json!(format!("{:#x}", head_number + 100))).await?;
    ensure!(beyond.is_null(), "a block past the head must be null: {beyond}");

    let by_hash = raw_call(&url, "eth_getBlockByHash", json!([second["hash"], false])).await?.result()?;
    ensure!(by_hash == second, "by hash {by_hash} != by number {second}");
    let unknown = raw_call(&url, "eth_getBlockByHash", json!([B256::repeat_byte(7).to_string(), false]))
        .await?
        .result()?;
    ensure!(unknown.is_null(), "an unknown hash must be null: {unknown}");

    // The typed client reads the same.
    let op_geth = fixture.op_geth("seq-0")?;
    ensure!(op_geth.block_number().await?.to::<u64>() == head_number);
    ensure!(op_geth.chain_id().await?.to::<u64>() == CHAIN_ID);
    ensure!(op_geth.block_by_hash(B256::repeat_byte(7), false).await?.is_none());
    Ok(())
}

#[tokio::test]
async fn persisted_admin_state_survives_an_op_node_crash_and_overrides_start_active() -> Result<()> {
    let mut config = config(2, 50);
    let persisted =
        |start_active| NodeOptions { start_active, persist_admin_state: true, ..NodeOptions::default() };
    set_options(&mut config, 0, persisted(true));
    set_options(&mut config, 1, persisted(false));
    let fixture = Fixture::start(config).await?;
    fixture.wait_for_height("seq-0", 2).await?;
    // Hand over by admin calls: seq-0 persists "stopped", seq-1 persists "started".
    let head = fixture.op_node("seq-0")?.admin_stop_sequencer().await?;
    fixture.wait_for_head_over_rpc("seq-1", head).await?;
    fixture.op_node("seq-1")?.admin_start_sequencer(head).await?;

    let crash = FaultParams { target: Some(FaultTarget::OpNode), ..FaultParams::default() };
    for name in ["seq-0", "seq-1"] {
        fixture.sim.fault(name, FaultKind::Crash, crash.clone())?;
        wait_until_refused(&fixture.op_node_url(name)?).await?;
    }
    ensure!(fixture.sim.nodes().iter().all(|node| !node.active), "a crashed op-node cannot be active");
    let crashed_head = fixture.head("seq-1")?;
    for name in ["seq-0", "seq-1"] {
        fixture.sim.heal(name, Some(FaultKind::Crash))?;
        wait_until_answering(&fixture.op_node_url(name)?, "optimism_syncStatus").await?;
    }
    ensure!(!fixture.op_node("seq-0")?.admin_sequencer_active().await?, "seq-0 persisted stopped");
    ensure!(fixture.op_node("seq-1")?.admin_sequencer_active().await?, "seq-1 persisted started");
    let next = fixture.wait_for_height("seq-1", crashed_head.number + 1).await?;
    let resumed =
        fixture.sealed_by("seq-1").into_iter().find(|block| block.number == crashed_head.number + 1);
    ensure!(
        resumed.map(|block| block.parent) == Some(crashed_head.hash),
        "seq-1 resumed off its head: {next}"
    );
    Ok(())
}

#[tokio::test]
async fn a_restarted_op_node_without_persisted_state_comes_up_as_its_start_flags_say() -> Result<()> {
    let fixture = Fixture::start(config(2, 50)).await?;
    fixture.wait_for_height("seq-0", 2).await?;
    let head = fixture.op_node("seq-0")?.admin_stop_sequencer().await?;
    fixture.wait_for_head_over_rpc("seq-1", head).await?;
    fixture.op_node("seq-1")?.admin_start_sequencer(head).await?;

    let crash = FaultParams { target: Some(FaultTarget::OpNode), ..FaultParams::default() };
    for name in ["seq-0", "seq-1"] {
        fixture.sim.fault(name, FaultKind::Crash, crash.clone())?;
    }
    for name in ["seq-0", "seq-1"] {
        fixture.sim.heal(name, None)?;
        wait_until_answering(&fixture.op_node_url(name)?, "optimism_syncStatus").await?;
    }
    // Without --sequencer.stopped seq-0 comes back active although it was stopped by admin: the
    // classic source of two active sequencers. seq-1 comes back stopped.
    ensure!(fixture.op_node("seq-0")?.admin_sequencer_active().await?, "seq-0 must come up active");
    ensure!(!fixture.op_node("seq-1")?.admin_sequencer_active().await?, "seq-1 must come up stopped");
    let restarted = fixture.ledger().into_iter().any(|entry| {
        matches!(entry, LedgerEntry::Activated { node, cause, .. }
            if node == "seq-0" && cause.contains("without --sequencer.stopped"))
    });
    ensure!(restarted, "no Activated entry for seq-0's restart");
    Ok(())
}

#[tokio::test]
async fn admin_stop_sequencer_waits_for_the_block_being_sealed_and_returns_it() -> Result<()> {
    // Sealing takes most of a block time, so there is a wide window to call stop inside a seal.
    let mut config = config(1, 200);
    config.seal_ms = 150;
    let fixture = Fixture::start(config).await?;
    let node = &fixture.sim.chains()[0].nodes[0];
    let head_while_sealing = wait_for("seq-0 to be inside a seal", async || {
        let state = node.lock();
        if state.sealing {
            Ok(state.head().id())
        } else {
            Err(format!("head {}, not sealing", state.head().id()))
        }
    })
    .await?;
    let stopped = fixture.op_node("seq-0")?.admin_stop_sequencer().await?;
    let sealed = fixture.sealed_by("seq-0");
    let last = sealed.last().context("nothing sealed")?;
    ensure!(stopped == last.hash, "stop returned {stopped}, the last sealed block is {last:?}");
    ensure!(last.parent == head_while_sealing.hash, "stop did not wait for the seal on {head_while_sealing}");
    ensure!(
        fixture.op_node("seq-0")?.sync_status().await?.unsafe_l2.hash == stopped,
        "head moved after stop"
    );
    Ok(())
}

#[tokio::test]
async fn rollup_config_states_the_block_time_in_whole_seconds_and_one_for_sub_second_chains() -> Result<()> {
    for (block_time_ms, expected_seconds) in [(2000, 2), (1000, 1), (250, 1)] {
        let fixture = Fixture::start(config(1, block_time_ms)).await?;
        let raw =
            raw_call(&fixture.op_node_url("seq-0")?, "optimism_rollupConfig", json!([])).await?.result()?;
        ensure!(raw["block_time"] == json!(expected_seconds), "{block_time_ms} ms: {raw}");
        ensure!(raw["genesis"]["l2"]["number"] == json!(0), "genesis l2: {raw}");
        ensure!(
            raw["genesis"]["l2_time"] == json!(GENESIS_TIME) && raw["l2_chain_id"] == json!(CHAIN_ID),
            "{raw}"
        );
        let typed = fixture.op_node("seq-0")?.rollup_config().await?;
        let genesis = fixture.op_geth("seq-0")?.block_by_number(BlockNumberOrTag::Earliest, false).await?;
        ensure!(Some(typed.genesis.l2.hash) == genesis.map(|block| block.hash), "genesis hash: {raw}");
    }
    Ok(())
}
