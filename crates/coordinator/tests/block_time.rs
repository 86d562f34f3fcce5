//! The chain tells its block time (`optimism_rollupConfig`, or its head), and every window follows
//! it: a 2 s chain runs on an empty `[failover]` and `[health]`, and a configured block time the
//! chain contradicts holds the chain instead of acting on wrong windows. Against a simulated chain
//! over loopback HTTP; safety is checked on the simulator's ledger.

use std::time::Duration;

use op_sim::SimConfig;
use op_sim::api::{FaultKind, FaultParams};
use opc_test_support::{Harness, NO_METRICS, active_nodes, http_get, node};
use opc_wire::EventKind;
use opc_wire::coordinator::CoordinatorApiClient;

/// Long enough for several 2 s blocks on a busy machine.
const SLOW_WAIT: Duration = Duration::from_secs(40);

/// A coordinator config with the built-in defaults: only the data dir, no metrics listener, and
/// the simulator's chains with `block_time_ms` replaced by `block_time` (or left out).
fn defaults_config(block_time: Option<&str>) -> impl FnOnce(&str, &str) -> String {
    let block_time = block_time.map(str::to_owned);
    move |data_dir, chains| {
        let chains: String = chains
            .lines()
            .filter_map(|line| {
                if line.starts_with("block_time_ms") {
                    block_time.as_ref().map(|value| format!("block_time_ms = {value}"))
                } else {
                    Some(line.to_owned())
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        format!("data_dir = {data_dir}\n{NO_METRICS}\n{chains}\n")
    }
}

/// A 3-node chain of `block_time_ms` blocks, seq-0 sequencing.
fn chain(block_time_ms: u64) -> SimConfig {
    SimConfig::uniform(1, 3, block_time_ms)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2s_chain_without_a_configured_block_time_leaves_a_leader_cut_off_from_the_coordinator_alone() {
    // Issue 14, problem 1: with the block time left out, the 1 s defaults started a second
    // sequencer beside a live 2 s leader that only the coordinator could not reach.
    let harness = Harness::start_config(chain(2000), defaults_config(None)).await;
    let status = harness
        .wait_for("the block time from the rollup config", SLOW_WAIT, |status, _| {
            status.block_time_ms.is_some()
        })
        .await;
    assert_eq!(status.block_time_ms, Some(2000), "{status:#?}");
    assert_eq!(status.block_time_source.as_deref(), Some("rollup config"), "{status:#?}");
    assert_eq!(status.held, None, "{status:#?}");
    let known = harness.wait_for_event(EventKind::BlockTimeKnown, None, SLOW_WAIT).await;
    assert!(known.detail.contains("liveness window 3000 ms"), "{known:#?}");
    harness.wait_for_leader("seq-0", SLOW_WAIT).await;

    let isolate = FaultParams { mode: Some("refuse".to_owned()), ..FaultParams::default() };
    harness.sim.fault("seq-0", FaultKind::Isolate, isolate).expect("isolate");
    harness.wait_for_event(EventKind::LeaderCutOff, Some("seq-0"), SLOW_WAIT).await;
    let start = harness.invariants().blocks_sealed;
    // Four blocks (8 s): more than two liveness windows of the old 1 s defaults.
    harness
        .wait_for("4 blocks sealed by the cut-off leader alone", SLOW_WAIT, |status, sim| {
            assert_eq!(status.leader.as_deref(), Some("seq-0"), "no fail-over: {status:#?}");
            assert_eq!(active_nodes(sim), ["seq-0"], "ground truth: seq-0 alone sequences");
            sim.invariants()[0].blocks_sealed >= start + 4
        })
        .await;
    harness.assert_safe();
    assert!(harness.invariants().double_sequencing.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_leader_of_a_2s_chain_on_the_default_windows_fails_over_with_no_reorg_and_at_most_one_missed_slot()
 {
    // The "Done when" of issue 14: examples/single-chain.toml's shape, no [failover] section.
    let harness = Harness::start_config(chain(2000), defaults_config(Some("2000"))).await;
    harness.wait_for_leader("seq-0", SLOW_WAIT).await;
    harness.wait_for_blocks(2, SLOW_WAIT).await;
    let before = harness.invariants();

    harness.sim.fault("seq-0", FaultKind::Crash, FaultParams::default()).expect("crash");
    harness
        .wait_for("a new leader sequencing", SLOW_WAIT, |status, sim| {
            status.phase == "steady"
                && status.leader.as_deref().is_some_and(|leader| leader != "seq-0")
                && active_nodes(sim).iter().any(|name| Some(name.as_str()) == status.leader.as_deref())
        })
        .await;
    harness.wait_for_blocks(2, SLOW_WAIT).await;
    harness.assert_safe();
    let after = harness.invariants();
    assert!(after.unsafe_reorgs.is_empty(), "{after:#?}");
    let missed = after.missed_slots - before.missed_slots;
    assert!(missed <= 1, "{missed} slots missed across the fail-over: {after:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_block_time_the_chain_contradicts_holds_the_chain_and_names_both_values() {
    let harness = Harness::start_config(chain(1000), defaults_config(Some("2000"))).await;
    let held = harness.wait_for_event(EventKind::ChainHeld, None, SLOW_WAIT).await;
    assert!(held.detail.contains("chains.devnet.block_time_ms = 2000 ms"), "{held:#?}");
    assert!(held.detail.contains("says 1000 ms"), "{held:#?}");
    let status = harness.status().await;
    assert!(status.held.as_deref().is_some_and(|why| why.contains("set chains.devnet.block_time_ms = 1000")));
    assert_eq!(status.block_time_ms, None, "{status:#?}");
    let rpc = harness.coordinator.as_ref().expect("running").rpc_addr;
    let (code, body) = http_get(rpc, "/readyz").await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("chain devnet is not acted on: chains.devnet.block_time_ms = 2000 ms"), "{body}");

    // Watched, not acted on: the sequencing leader is neither adopted nor touched, and an
    // operator's transfer is refused with the reason.
    let transfer = harness.admin.set_active_sequencer("seq-1".to_owned(), None).await;
    let refused = transfer.expect_err("held chains refuse transfers").to_string();
    assert!(refused.contains("is not acted on") && refused.contains("block_time_ms"), "{refused}");
    harness.wait_for_blocks(3, SLOW_WAIT).await;
    assert_eq!(harness.active_nodes(), ["seq-0"]);
    assert_eq!(harness.status().await.leader, None, "nothing adopted");
    harness.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sub_second_chain_whose_rollup_config_says_one_second_is_measured_from_its_head() {
    let harness = Harness::start_config(chain(250), defaults_config(None)).await;
    let first =
        harness.wait_for("a first block time", SLOW_WAIT, |status, _| status.block_time_ms.is_some()).await;
    assert_eq!(
        (first.block_time_ms, first.block_time_source.as_deref()),
        (Some(1000), Some("rollup config")),
        "the rollup config's 1 s is an upper bound: safe to act on until measured"
    );
    let measured = harness
        .wait_for("the measured block time", SLOW_WAIT, |status, _| {
            status.block_time_source.as_deref() == Some("measured from the unsafe head")
        })
        .await;
    let block_time_ms = measured.block_time_ms.expect("known");
    assert!((240..=260).contains(&block_time_ms), "{measured:#?}");
    assert!(node(&measured, "seq-0").healthy, "{measured:#?}");
    harness.assert_safe();
}
