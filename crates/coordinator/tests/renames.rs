//! Stored state vs config, against a simulated 3-node chain over real loopback HTTP: an operator
//! renames or removes the leader's (or a fenced) node in the config and restarts the coordinator.
//! Before `crate::reconcile` existed, inspection stopped the real active sequencer (it was not
//! "the leader seq-0"), nothing was elected and only deleting the state file helped.
//!
//! Ground truth comes from the simulator: which node is really active, every stop it received,
//! double sequencing and re-orgs.

use op_coordinator::state::{FileStateStore, StateStore};
use op_sim::api::{FaultKind, FaultParams, LedgerEntry};
use opc_test_support::{Harness, active_nodes, node, wait_for};
use opc_wire::EventKind;
use opc_wire::coordinator::CoordinatorApiClient;
use std::{net::SocketAddr, time::Duration};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Deadline of every wait: generous, because other tests share a 2-core machine.
const WAIT: Duration = Duration::from_secs(20);
/// The chain of the harness.
const CHAIN: &str = "devnet";

/// `config` with node `from` called `to` (same URLs).
fn renamed(config: &str, from: &str, to: &str) -> String {
    let header = format!("[chains.{CHAIN}.sequencers.{from}]");
    assert!(config.contains(&header), "no {header} in\n{config}");
    config.replace(&header, &format!("[chains.{CHAIN}.sequencers.{to}]"))
}

/// `config` without node `name`'s section.
fn without(config: &str, name: &str) -> String {
    let header = format!("[chains.{CHAIN}.sequencers.{name}]");
    let start = config.find(&header).unwrap_or_else(|| panic!("no {header} in\n{config}"));
    let rest = &config[start + header.len()..];
    let end = rest.find("\n[").map_or(config.len(), |at| start + header.len() + at + 1);
    format!("{}{}", &config[..start], &config[end..])
}

/// The op-node URL the simulator serves node `name` on.
fn op_node_url(harness: &Harness, name: &str) -> String {
    harness.sim.nodes().into_iter().find(|node| node.name == name).expect("simulated node").op_node_url
}

/// Nodes stopped (deactivated) from ledger entry `from` on, with why.
fn stops_since(harness: &Harness, from: usize) -> Vec<(String, String)> {
    harness
        .sim
        .ledger_entries(from)
        .into_iter()
        .filter_map(|entry| match entry {
            LedgerEntry::Deactivated { node, cause, .. } => Some((node, cause)),
            _ => None,
        })
        .collect()
}

/// `GET /readyz` of the running coordinator: (status code, body).
async fn readyz(harness: &Harness) -> (u16, String) {
    let addr: SocketAddr = harness.coordinator.as_ref().expect("coordinator running").rpc_addr;
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET /readyz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((response.as_str(), ""));
    let code = head.split_whitespace().nth(1).and_then(|code| code.parse().ok()).expect("status line");
    (code, body.to_owned())
}

/// A chain led by seq-0 (adopted at start), with the coordinator stopped and its ledger position.
async fn seq_0_leading_then_stopped() -> (Harness, usize) {
    let mut harness = Harness::start("").await;
    harness.wait_for_leader("seq-0", WAIT).await;
    harness.stop_coordinator().await;
    let mark = harness.sim.ledger_entries(0).len();
    (harness, mark)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_renamed_in_the_config_is_found_by_its_url_and_keeps_sequencing() {
    let (mut harness, mark) = seq_0_leading_then_stopped().await;
    harness.config_text = renamed(&harness.config_text, "seq-0", "node-0");
    harness.restart_coordinator().await;

    let status = harness
        .wait_for("node-0 to be the leader, seq-0 still the only active node", WAIT, |status, sim| {
            status.leader.as_deref() == Some("node-0")
                && status.phase == "steady"
                && node(status, "node-0").healthy
                && node(status, "node-0").active == Some(true)
                && active_nodes(sim) == ["seq-0"]
        })
        .await;
    assert_eq!(status.config_mismatch, None);
    let renamed = harness.wait_for_event(EventKind::StoredNodeRenamed, Some("node-0"), WAIT).await;
    assert_eq!(
        renamed.detail,
        format!("stored leader seq-0 is now node-0 (same op-node URL {})", op_node_url(&harness, "seq-0"))
    );

    harness.wait_for_blocks(20, WAIT).await;
    assert_eq!(harness.active_nodes(), ["seq-0"], "the same sequencer still produces");
    let stops = stops_since(&harness, mark);
    assert!(stops.is_empty(), "nothing was stopped, yet: {stops:?}");
    assert_eq!(harness.status().await.epoch, status.epoch, "no fail-over");
    harness.assert_safe();
    let store = FileStateStore::open(harness.data_dir.path()).expect("state dir");
    let saved = store.load(CHAIN).await.expect("readable").expect("saved");
    assert_eq!(saved.leader.as_deref(), Some("node-0"), "the rename is persisted: {saved:?}");
    assert_eq!(saved.node_urls.get("node-0"), Some(&op_node_url(&harness, "seq-0")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_leader_refuses_the_chain_never_stops_the_real_sequencer_and_forgetting_it_elects() {
    let (mut harness, mark) = seq_0_leading_then_stopped().await;
    harness.config_text = without(&harness.config_text, "seq-0");
    harness.restart_coordinator().await;

    let status =
        harness.wait_for("the chain to be refused", WAIT, |status, _| status.config_mismatch.is_some()).await;
    let refusal = status.config_mismatch.clone().unwrap_or_default();
    assert!(refusal.contains("seq-0 (leader): not in the config"), "{refusal}");
    assert!(refusal.contains("`op-coordinator ctl forget-stale-nodes --chain devnet`"), "{refusal}");
    assert!(!refusal.contains("Some("), "{refusal}");
    let (code, body) = readyz(&harness).await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("seq-0 (leader)") && body.contains("forget-stale-nodes"), "{body}");
    harness.wait_for_event(EventKind::StateConfigMismatch, None, WAIT).await;

    // Every remaining node probed and inspected, and many inspection rounds later: seq-0 runs on.
    harness
        .wait_for("seq-1 and seq-2 probed", WAIT, |status, _| {
            status.nodes.iter().all(|node| node.healthy && node.active == Some(false))
        })
        .await;
    harness.wait_for_blocks(20, WAIT).await;
    assert_eq!(harness.active_nodes(), ["seq-0"], "the real active sequencer was not stopped");
    let stops = stops_since(&harness, mark);
    assert!(stops.is_empty(), "nothing was stopped, yet: {stops:?}");
    let transfer = harness.admin.set_active_sequencer("seq-1".into(), None).await;
    let refused = format!("{:?}", transfer.expect_err("a hand-over is refused while refused"));
    assert!(refused.contains("forget-stale-nodes"), "{refused}");

    // Forgetting is refused while seq-0, outside the config now, still produces blocks.
    let early = harness.admin.forget_stale_nodes(None).await.expect_err("seq-0 still sequences");
    assert!(early.to_string().contains("seems to produce blocks"), "{early}");

    // The operator decommissions seq-0, then forgets it once the heads stood still.
    harness.sim.fault("seq-0", FaultKind::StopSequencer, FaultParams::default()).expect("stop seq-0");
    let forgotten = wait_for("forget-stale-nodes to be accepted")
        .timeout(WAIT)
        .poll(Duration::from_millis(50))
        .until(async || match harness.admin.forget_stale_nodes(None).await {
            Ok(names) => (Some(names), String::new()),
            Err(err) => (None, err.to_string()),
        })
        .await;
    assert_eq!(forgotten, ["seq-0"]);
    harness.wait_for_event(EventKind::StaleNodesForgotten, None, WAIT).await;

    let status = harness
        .wait_for("a configured node elected and alone", WAIT, |status, sim| {
            let leader = status.leader.clone().unwrap_or_default();
            status.phase == "steady"
                && ["seq-1", "seq-2"].contains(&leader.as_str())
                && active_nodes(sim) == [leader]
        })
        .await;
    assert_eq!(status.config_mismatch, None);
    assert_eq!(readyz(&harness).await.0, 200);
    harness.wait_for_blocks(10, WAIT).await;
    harness.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_fenced_node_refuses_the_chain_until_forgotten_and_the_leader_keeps_sequencing() {
    let (mut harness, mark) = seq_0_leading_then_stopped().await;
    let store = FileStateStore::open(harness.data_dir.path()).expect("state dir");
    let mut saved = store.load(CHAIN).await.expect("readable").expect("saved");
    saved.fenced.insert("seq-2".into());
    store.save(CHAIN, &saved).await.expect("save");
    harness.config_text = without(&harness.config_text, "seq-2");
    harness.restart_coordinator().await;

    let status =
        harness.wait_for("the chain to be refused", WAIT, |status, _| status.config_mismatch.is_some()).await;
    let refusal = status.config_mismatch.clone().unwrap_or_default();
    assert!(refusal.contains("seq-2 (fenced node)"), "{refusal}");
    harness.wait_for_blocks(10, WAIT).await;
    assert_eq!(harness.active_nodes(), ["seq-0"]);

    // seq-0 is configured and sequencing: nothing unseen produces, so forgetting is accepted.
    assert_eq!(harness.admin.forget_stale_nodes(None).await.expect("forgets"), ["seq-2"]);
    let status = harness.status().await;
    assert_eq!((status.leader.as_deref(), status.phase.as_str()), (Some("seq-0"), "steady"));
    assert_eq!(status.config_mismatch, None);
    let stops = stops_since(&harness, mark);
    assert!(stops.is_empty(), "nothing was stopped, yet: {stops:?}");

    // The chain is acted on again: an operator's hand-over goes through.
    harness.admin.set_active_sequencer("seq-1".into(), None).await.expect("hand-over");
    harness.wait_for_leader("seq-1", WAIT).await;
    harness.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_fenced_node_stays_fenced_under_its_new_name() {
    let (mut harness, _) = seq_0_leading_then_stopped().await;
    let store = FileStateStore::open(harness.data_dir.path()).expect("state dir");
    let mut saved = store.load(CHAIN).await.expect("readable").expect("saved");
    saved.fenced.insert("seq-2".into());
    store.save(CHAIN, &saved).await.expect("save");
    harness.config_text = renamed(&harness.config_text, "seq-2", "node-2");
    harness.restart_coordinator().await;

    let renamed = harness.wait_for_event(EventKind::StoredNodeRenamed, Some("node-2"), WAIT).await;
    assert!(renamed.detail.starts_with("stored fenced node seq-2 is now node-2"), "{}", renamed.detail);
    // node-2 answers, so its fence stop runs and releases it ("not running").
    harness.wait_for_event(EventKind::FenceReleased, Some("node-2"), WAIT).await;
    let status = harness.status().await;
    assert_eq!(status.config_mismatch, None);
    assert_eq!(status.leader.as_deref(), Some("seq-0"));
    assert_eq!(harness.active_nodes(), ["seq-0"]);
    harness.assert_safe();
}
