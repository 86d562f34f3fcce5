//! End-to-end against a real execution client: a 3-node chain in which every op-geth endpoint the
//! coordinator probes is an anvil process whose blocks are the chain (op-sim's anvil backend: the
//! simulated op-node mines on its anvil when active and re-mines the leader's blocks when not).
//! The leader's anvil is killed (SIGKILL) or frozen (SIGSTOP, then SIGCONT) for real. Every test
//! with the coordinator checks ground truth at the end (no re-org of the unsafe chain, no double
//! sequencing) and that the anvils hold identical blocks. One test without the coordinator makes
//! the re-org the coordinator prevents, to show an anvil follows it (rolled back and re-mined).
//!
//! anvil comes from npm: `npm ci` at the workspace root installs the version `package.json` pins.
//! Without it these tests fail, naming that command; they never skip.

use alloy_primitives::B256;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use op_sim::api::{FaultKind, FaultParams, LedgerEntry};
use op_sim::{ExecutionBackend, SimConfig, Simulator, anvil::coinbase_of};
use opc_test_support::{Harness, active_nodes, node, wait_until};
use opc_wire::health::Reason;
use opc_wire::{
    BlockHeader, BlockId, BlockNumberOrTag,
    api::{EthApiClient, OptimismApiClient},
    coordinator::CoordinatorApiClient,
};
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

/// Where `npm ci` puts the pinned anvil, relative to the workspace root.
const ANVIL_IN_NODE_MODULES: &str = "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil";

/// Real chains use 1-2 s blocks, and real op-geth needs strictly increasing timestamps (whole
/// seconds); 1 s blocks keep every timestamp distinct.
const BLOCK_TIME_MS: u64 = 1000;

/// Deadline of a wait spanning a few 1 s blocks, generous for a loaded machine.
const WAIT: Duration = Duration::from_secs(30);

/// The fast test settings (`opc_test_support::FAST_SETTINGS`) rescaled to 1 s blocks.
const SETTINGS: &[(&str, &str)] = &[
    ("health.interval_ms", "50"),
    ("health.probe_timeout_ms", "250"),
    ("health.unsafe_stall_ms", "2500"),
    ("failover.rpc_timeout_ms", "1000"),
    ("failover.catch_up_timeout_ms", "3000"),
    ("failover.chain_liveness_window_ms", "1500"),
    ("failover.convergence_wait_ms", "1500"),
];

/// The anvil executable `npm ci` installed; panics with the command to run when it is missing.
fn anvil_binary() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest.ancestors().find(|dir| dir.join("package.json").is_file()).unwrap_or_else(|| {
        panic!("no package.json above {}: cannot locate the workspace root", manifest.display())
    });
    let binary = root.join(ANVIL_IN_NODE_MODULES);
    assert!(
        binary.is_file(),
        "anvil not found at {}: run `npm ci` in {} to install the version package.json pins \
         (@foundry-rs/anvil-linux-amd64); these tests need a real anvil and never skip",
        binary.display(),
        root.display()
    );
    binary
}

/// 3 nodes with 1 s blocks (seq-0 active), each with its own anvil.
fn sim_config() -> SimConfig {
    let mut config = SimConfig::uniform(1, 3, BLOCK_TIME_MS);
    config.execution = ExecutionBackend::Anvil { binary: anvil_binary() };
    config
}

/// The chain of [`sim_config`] and the coordinator.
async fn start() -> Harness {
    Harness::start_tuned(sim_config(), "", SETTINGS).await
}

/// `name`'s unsafe head (ground truth).
fn head_of(sim: &Simulator, name: &str) -> BlockId {
    sim.nodes().into_iter().find(|n| n.name == name).expect("node").unsafe_head
}

/// Blocks `producer` sealed (ground truth).
fn sealed_by(sim: &Simulator, producer: &str) -> usize {
    let ledger = sim.ledger_entries(0);
    ledger.iter().filter(|e| matches!(e, LedgerEntry::Block { producer: p, .. } if p == producer)).count()
}

fn client(url: &str) -> HttpClient {
    HttpClientBuilder::default().request_timeout(Duration::from_secs(5)).build(url).expect("client")
}

/// A client of `name`'s anvil (what the coordinator probes as its op-geth).
fn anvil_client(harness: &Harness, name: &str) -> HttpClient {
    let anvil = harness.sim.anvil(name).expect("anvil backend");
    let info = harness.sim.nodes().into_iter().find(|n| n.name == name).expect("node");
    assert_eq!(info.op_geth_url, anvil.url(), "{name}'s op-geth is its anvil");
    client(anvil.url())
}

async fn block_at(anvil: &HttpClient, number: u64) -> Option<BlockHeader> {
    anvil.block_by_number(BlockNumberOrTag::Number(number), false).await.expect("eth_getBlockByNumber")
}

/// Sends `signal` (`STOP`, `CONT`) to a process with the `kill` command.
fn signal(signal: &str, pid: u32) {
    let status = std::process::Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid} failed: {status}");
}

/// Every block the ledger says was sealed, by height (ground truth); panics on a height with two.
fn sealed_blocks(harness: &Harness) -> BTreeMap<u64, (String, B256)> {
    let mut sealed = BTreeMap::new();
    for entry in harness.ledger() {
        if let LedgerEntry::Block { producer, number, hash, .. } = entry
            && let Some((other, known)) = sealed.insert(number, (producer.clone(), hash))
        {
            assert_eq!(known, hash, "two blocks at height {number}: {other}'s and {producer}'s");
        }
    }
    sealed
}

/// Waits until the anvils of `names` reach the ledger's last sealed height, then asserts they hold
/// the identical chain: the same genesis, and at every height the block the ledger recorded
/// (hash from anvil, coinbase of its producer). Returns the height checked.
async fn assert_anvils_hold_the_chain(harness: &Harness, names: &[&str]) -> u64 {
    let sealed = sealed_blocks(harness);
    let height = *sealed.keys().last().expect("blocks were sealed");
    let anvils: Vec<(&str, HttpClient)> =
        names.iter().map(|name| (*name, anvil_client(harness, name))).collect();
    for (name, anvil) in &anvils {
        wait_until(&format!("{name}'s anvil at block {height}"), WAIT, || async {
            block_at(anvil, height).await.map(drop)
        })
        .await;
    }
    let genesis = block_at(&anvils[0].1, 0).await.expect("genesis").hash;
    for (name, anvil) in &anvils {
        assert_eq!(block_at(anvil, 0).await.expect("genesis").hash, genesis, "{name}'s genesis");
        for (number, (producer, hash)) in &sealed {
            let block =
                block_at(anvil, *number).await.unwrap_or_else(|| panic!("{name}'s anvil lacks {number}"));
            assert_eq!(
                block.hash, *hash,
                "{name}'s anvil at {number} differs from the block {producer} sealed"
            );
            assert_eq!(block.miner, coinbase_of(producer), "block {number} carries {producer}'s coinbase");
        }
    }
    height
}

/// Waits for seq-0 to lead with some blocks behind it; returns its anvil's pid.
async fn leader_with_blocks(harness: &Harness) -> u32 {
    harness.wait_for_leader("seq-0", WAIT).await;
    harness.wait_for_blocks(3, WAIT).await;
    harness.sim.anvil("seq-0").expect("anvil").pid()
}

/// Waits for a leader other than seq-0 sequencing alone (ground truth) and returns its name.
async fn wait_for_new_leader(harness: &Harness, seq0_reason: Reason) -> String {
    let status = harness
        .wait_for(&format!("a new leader, seq-0 seen as {seq0_reason}"), WAIT, |status, sim| {
            let leader = status.leader.clone().unwrap_or_default();
            status.phase == "steady"
                && leader != "seq-0"
                && active_nodes(sim) == vec![leader]
                && node(status, "seq-0").reason == seq0_reason
        })
        .await;
    status.leader.expect("leader")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_anvil_holds_the_identical_chain_and_op_node_reports_its_anvils_hashes() {
    let harness = start().await;
    harness.wait_for_leader("seq-0", WAIT).await;
    harness.wait_for_blocks(3, WAIT).await;
    // A hand-over, so blocks of two producers (two coinbases) are on every anvil.
    harness.admin.set_active_sequencer("seq-1".into(), None).await.expect("hand-over to seq-1");
    harness.wait_for_leader("seq-1", WAIT).await;
    harness.wait_for_blocks(2, WAIT).await;

    let height = assert_anvils_hold_the_chain(&harness, &["seq-0", "seq-1", "seq-2"]).await;
    let producers: Vec<String> =
        sealed_blocks(&harness).into_values().map(|(producer, _)| producer).collect();
    assert!(
        producers.contains(&"seq-0".to_owned()) && producers.contains(&"seq-1".to_owned()),
        "{producers:?}"
    );
    for info in harness.sim.nodes() {
        let unsafe_head =
            client(&info.op_node_url).sync_status().await.expect("optimism_syncStatus").unsafe_l2;
        let anvil = anvil_client(&harness, &info.name);
        let executed = block_at(&anvil, unsafe_head.number).await.expect("op-node's head is on its anvil");
        assert_eq!(executed.hash, unsafe_head.hash, "{}'s op-node reports its anvil's hash", info.name);
    }
    eprintln!("anvils agree on {} blocks", height + 1);
    harness.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_anvil_is_killed_is_replaced_and_the_chain_goes_on_on_the_other_anvils() {
    let harness = start().await;
    leader_with_blocks(&harness).await;
    let anvil = harness.sim.anvil("seq-0").expect("anvil").clone();
    let url = anvil.url().to_owned();

    anvil.kill();
    let addr = url.trim_start_matches("http://").to_owned();
    wait_until("seq-0's anvil to refuse connections", WAIT, || async {
        tokio::net::TcpStream::connect(&addr).await.is_err().then_some(())
    })
    .await;
    let new_leader = wait_for_new_leader(&harness, Reason::OpGethUnreachable).await;
    assert!(
        !active_nodes(&harness.sim).contains(&"seq-0".to_owned()),
        "the old leader's op-node was stopped (it answers; only its execution client died)"
    );
    harness.wait_for_blocks(3, WAIT).await;

    let survivors = ["seq-1", "seq-2"];
    assert!(survivors.contains(&new_leader.as_str()), "{new_leader}");
    assert_anvils_hold_the_chain(&harness, &survivors).await;
    harness.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_anvil_freezes_is_replaced_by_timeout_and_follows_again_once_it_resumes() {
    let harness = start().await;
    let pid = leader_with_blocks(&harness).await;

    signal("STOP", pid);
    let new_leader = wait_for_new_leader(&harness, Reason::OpGethTimeout).await;
    let epoch = harness.status().await.epoch;
    harness.wait_for_blocks(2, WAIT).await;
    let frozen_at = harness.sim.nodes().into_iter().find(|n| n.name == "seq-0").expect("seq-0").unsafe_head;

    signal("CONT", pid);
    let status = harness
        .wait_for("seq-0 to follow the new leader again", WAIT, |status, sim| {
            let heads: BTreeMap<String, u64> =
                sim.nodes().into_iter().map(|n| (n.name, n.unsafe_head.number)).collect();
            let seq0 = node(status, "seq-0");
            seq0.healthy
                && !seq0.fenced
                && seq0.active == Some(false)
                && heads["seq-0"] > frozen_at.number + 1
        })
        .await;
    assert_eq!(
        status.leader.as_deref(),
        Some(new_leader.as_str()),
        "the new leader keeps leading: {status:#?}"
    );
    assert_eq!(status.epoch, epoch, "no further change of leader: {status:#?}");
    assert_eq!(active_nodes(&harness.sim), vec![new_leader.clone()], "one sequencer (ground truth)");
    harness.wait_for_blocks(2, WAIT).await;

    assert_anvils_hold_the_chain(&harness, &["seq-0", "seq-1", "seq-2"]).await;
    harness.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_coordinator_a_partition_reorgs_the_losing_nodes_anvil_onto_the_longer_branch() {
    let sim = Simulator::start(sim_config()).await.expect("simulator starts");
    wait_until("seq-0 to seal 2 blocks", WAIT, || async { (sealed_by(&sim, "seq-0") >= 2).then_some(()) })
        .await;

    // Two sequencers on two sides of a partition: two branches, with different coinbases.
    sim.partition(&[vec!["seq-0".into()], vec!["seq-1".into(), "seq-2".into()]]).expect("partition");
    let before = sealed_by(&sim, "seq-0");
    sim.fault("seq-1", FaultKind::StartSequencer, FaultParams::default()).expect("start seq-1");
    wait_until("both sides to seal 2 blocks", WAIT, || async {
        (sealed_by(&sim, "seq-0") >= before + 2 && sealed_by(&sim, "seq-1") >= 2).then_some(())
    })
    .await;
    sim.fault("seq-0", FaultKind::StopSequencer, FaultParams::default()).expect("stop seq-0");
    wait_until("seq-1's branch to outgrow seq-0's", WAIT, || async {
        (head_of(&sim, "seq-1").number > head_of(&sim, "seq-0").number).then_some(())
    })
    .await;

    sim.partition(&[]).expect("heal");
    wait_until("seq-0 to re-org onto seq-1's branch", WAIT, || async {
        let reorged = sim
            .ledger_entries(0)
            .iter()
            .any(|e| matches!(e, LedgerEntry::Reorg { node, .. } if node == "seq-0"));
        (reorged && head_of(&sim, "seq-0") == head_of(&sim, "seq-1")).then_some(())
    })
    .await;
    let invariants = sim.invariants().remove(0);
    assert!(
        !invariants.unsafe_reorgs.is_empty(),
        "the two branches conflict (distinct coinbases): {invariants:#?}"
    );

    // seq-0's anvil was rolled back and re-mined: block for block the leader's chain.
    let head = head_of(&sim, "seq-0");
    let anvils: Vec<HttpClient> =
        ["seq-0", "seq-1", "seq-2"].map(|name| client(sim.anvil(name).expect("anvil").url())).into();
    assert_eq!(block_at(&anvils[0], head.number).await.expect("head on anvil").hash, head.hash);
    for number in 0..=head.number {
        let leader = block_at(&anvils[1], number).await.expect("leader's block").hash;
        for (anvil, name) in anvils.iter().zip(["seq-0", "seq-1", "seq-2"]) {
            let block =
                block_at(anvil, number).await.unwrap_or_else(|| panic!("{name}'s anvil lacks {number}"));
            assert_eq!(block.hash, leader, "{name}'s anvil at {number}");
        }
    }
}
