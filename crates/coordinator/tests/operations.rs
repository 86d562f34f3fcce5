//! Operations against a coordinator and a simulated 3-node chain over real loopback HTTP: a second
//! sequencer started behind the coordinator's back, a coordinator killed mid-fail-over, pause and
//! resume, operator hand-over, malformed and huge replies, the admin API surface with JWT, and
//! metrics. Every test ends by checking the simulator's ground truth (no re-org, no double
//! sequencing); the one that injects a second sequencer checks instead that the violation it
//! injected is bounded and never grows.
//!
//! No test sleeps to let things settle: "X does not happen" is asserted after waiting for a
//! positive condition that proves enough time passed (blocks sealed, heads standing still).

use op_coordinator::{
    client::MAX_REPLY_BYTES,
    state::{FileStateStore, Phase, StateStore},
};
use op_sim::SimConfig;
use op_sim::api::{DoubleSequencing, FaultKind, FaultParams, FaultTarget, LedgerEntry};
use opc_test_support::{BLOCK_TIME_MS, Harness, assert_steps_in_order, node, wait_until};
use opc_wire::EventKind;
use opc_wire::coordinator::{ChainStatus, CoordinatorApiClient, CoordinatorEvent};
use opc_wire::health::Reason;
use std::{net::SocketAddr, time::Duration};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    time::Instant,
};

/// Deadline of every wait: generous, because other tests share a 2-core machine.
const WAIT: Duration = Duration::from_secs(20);
/// `inspection.interval_ms` of [`FAST_SETTINGS`].
const INSPECTION_INTERVAL_MS: u64 = 100;
/// `failover.rpc_timeout_ms` of [`FAST_SETTINGS`].
const RPC_TIMEOUT_MS: u64 = 300;

// ------------------------------------------------------------------------------------------------
// Fixtures beyond the shared harness
// ------------------------------------------------------------------------------------------------

fn rpc_addr(harness: &Harness) -> SocketAddr {
    harness.coordinator.as_ref().expect("coordinator running").rpc_addr
}

fn metrics_addr(harness: &Harness) -> SocketAddr {
    harness.coordinator.as_ref().expect("coordinator running").metrics_addr
}

/// Waits until a node other than `old` leads alone (coordinator and ground truth); returns it.
async fn wait_for_new_leader(harness: &Harness, old: &str) -> String {
    let status = harness
        .wait_for(&format!("a leader other than {old}, alone"), WAIT, |status, sim| {
            let active: Vec<String> = sim.nodes().into_iter().filter(|n| n.active).map(|n| n.name).collect();
            status.phase == "steady"
                && status.leader.as_deref().is_some_and(|leader| leader != old)
                && active == status.leader.clone().into_iter().collect::<Vec<_>>()
        })
        .await;
    status.leader.expect("leader")
}

/// Every node probed, healthy and asked whether it sequences.
fn all_healthy(status: &ChainStatus) -> bool {
    status.nodes.iter().all(|node| node.healthy && node.reason == Reason::Ok && node.active.is_some())
}

fn malformed(target: FaultTarget, mode: &str) -> FaultParams {
    let size_bytes = (mode == "huge_body").then_some(u64::from(MAX_REPLY_BYTES) * 2);
    FaultParams { target: Some(target), mode: Some(mode.to_owned()), size_bytes, ..FaultParams::default() }
}

/// One plain HTTP/1.1 exchange: (status code, body).
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &str,
) -> (u16, String) {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        if !body.is_empty() {
            request.push_str("Content-Type: application/json\r\n");
        }
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(body);
        stream.write_all(request.as_bytes()).await.expect("send request");
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.expect("read response");
        String::from_utf8(response).expect("utf-8 response")
    };
    let response = tokio::time::timeout(WAIT, exchange).await.expect("HTTP exchange within the deadline");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((response.as_str(), ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"));
    (code, body.to_owned())
}

/// The code and message of a JSON-RPC error reply; panics on success or a transport failure.
fn call_error<T: std::fmt::Debug>(result: Result<T, jsonrpsee::core::ClientError>) -> (i32, String) {
    match result {
        Err(jsonrpsee::core::ClientError::Call(object)) => (object.code(), object.message().to_owned()),
        other => panic!("expected a JSON-RPC error reply, got {other:?}"),
    }
}

fn rpc_body(method: &str, params: serde_json::Value) -> String {
    serde_json::json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}).to_string()
}

/// Resident memory of this process (coordinator, simulator and test) in MiB, where known.
fn resident_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

// ------------------------------------------------------------------------------------------------
// Two active sequencers
// ------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sequencer_started_behind_the_coordinators_back_is_stopped_by_inspection() {
    let harness = Harness::start("").await;
    harness.wait_for_leader("seq-0", WAIT).await;
    harness.wait_for_blocks(5, WAIT).await;
    let ledger_from = harness.sim.ledger().len();

    harness.sim.fault("seq-1", FaultKind::StartSequencer, FaultParams::default()).expect("start seq-1");
    let stopping = harness.wait_for_event(EventKind::InspectionStopping, Some("seq-1"), WAIT).await;
    let stopped = harness.wait_for_event(EventKind::InspectionStopped, Some("seq-1"), WAIT).await;
    assert!(stopping.at_unix_ms <= stopped.at_unix_ms, "{stopping:?} then {stopped:?}");
    // Ground truth: the leader alone again, and the coordinator never changed its mind.
    harness.wait_for_leader("seq-0", WAIT).await;
    assert_eq!(harness.status().await.epoch, 0, "inspection must not elect anyone");

    // The injected fault is a double-sequencing interval; it must be short. It ends when seq-1 is
    // deactivated: within an inspection round, its stop call and a few block times.
    let entries = harness.sim.ledger_entries(ledger_from);
    let activated_ms = entries
        .iter()
        .find_map(|entry| match entry {
            LedgerEntry::Activated { node, t_ms, .. } if node == "seq-1" => Some(*t_ms),
            _ => None,
        })
        .expect("seq-1 activation in the ledger");
    let deactivated_ms = entries
        .iter()
        .find_map(|entry| match entry {
            LedgerEntry::Deactivated { node, t_ms, cause, .. } if node == "seq-1" => {
                assert_eq!(cause, "admin_stopSequencer", "stopped by the coordinator");
                Some(*t_ms)
            }
            _ => None,
        })
        .expect("seq-1 deactivation in the ledger");
    let bound_ms = INSPECTION_INTERVAL_MS + RPC_TIMEOUT_MS + 10 * BLOCK_TIME_MS;
    assert!(
        deactivated_ms - activated_ms <= bound_ms,
        "seq-1 sequenced for {} ms (bound {bound_ms} ms)",
        deactivated_ms - activated_ms
    );
    let seq1_heights: Vec<u64> = entries
        .iter()
        .filter_map(|entry| match entry {
            LedgerEntry::Block { producer, number, .. } if producer == "seq-1" => Some(*number),
            _ => None,
        })
        .collect();
    let highest_seq1 = seq1_heights.iter().copied().max().unwrap_or(0);

    // Let blocks in flight at the stop land, then every violation must be seq-1's, inside its
    // interval and at heights it sealed at or below.
    harness.wait_for_blocks(3, WAIT).await;
    let report = harness.invariants();
    for conflict in &report.unsafe_reorgs {
        assert!(
            conflict.number <= highest_seq1
                && conflict.blocks.iter().any(|(producer, _)| producer == "seq-1"),
            "a conflict not caused by seq-1: {conflict:?} (seq-1 sealed {seq1_heights:?})"
        );
    }
    let overlaps = seq1_overlaps(&report.double_sequencing);
    for (other, seq1_span) in &overlaps {
        assert!(
            seq1_span.0 >= activated_ms && seq1_span.1 <= deactivated_ms,
            "seq-1 sealed outside its interval while {other} sealed: {seq1_span:?}"
        );
    }

    // No new violation afterwards.
    harness.wait_for_blocks(10, WAIT).await;
    let later = harness.invariants();
    assert_eq!(later.unsafe_reorgs, report.unsafe_reorgs, "a new conflict after seq-1 was stopped");
    // The leader's own span keeps growing; what must not change is who overlapped seq-1, and when.
    assert_eq!(seq1_overlaps(&later.double_sequencing), overlaps, "new double sequencing");
    assert_eq!(harness.active_nodes(), vec!["seq-0".to_owned()]);
}

/// Every double-sequencing overlap as (the other node, seq-1's span); panics on one without seq-1.
fn seq1_overlaps(overlaps: &[DoubleSequencing]) -> Vec<(String, (u64, u64))> {
    overlaps
        .iter()
        .map(|overlap| {
            if overlap.first == "seq-1" {
                (overlap.second.clone(), overlap.first_span_ms)
            } else if overlap.second == "seq-1" {
                (overlap.first.clone(), overlap.second_span_ms)
            } else {
                panic!("double sequencing without seq-1: {overlap:?}")
            }
        })
        .collect()
}

// ------------------------------------------------------------------------------------------------
// Coordinator killed mid-fail-over
// ------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_killed_while_catching_up_resumes_with_the_same_stopped_hash() {
    // A long catch-up timeout keeps the fail-over in catching_up across the kill and restart.
    let mut harness = Harness::start_tuned(
        SimConfig::uniform(1, 3, BLOCK_TIME_MS),
        "",
        &[("failover.catch_up_timeout_ms", "20000")],
    )
    .await;
    harness.wait_for_leader("seq-0", WAIT).await;
    harness.wait_for_blocks(5, WAIT).await;

    // Followers whose op-geth answers garbage are unhealthy: none may take over, so the fail-over
    // stops the leader and then waits. (A p2p partition would not do: the simulator syncs a
    // follower only when a new block is gossiped, and a stopped leader gossips none, so no
    // follower would ever reach the stopped hash after the partition heals.)
    for follower in ["seq-1", "seq-2"] {
        harness
            .sim
            .fault(follower, FaultKind::Malformed, malformed(FaultTarget::OpGeth, "invalid_json"))
            .expect("malform follower");
    }
    harness
        .wait_for("both followers unhealthy", WAIT, |status, _| {
            ["seq-1", "seq-2"].iter().all(|name| {
                let node = node(status, name);
                !node.healthy && node.reason == Reason::OpGethMalformed
            })
        })
        .await;

    harness.sim.fault("seq-0", FaultKind::Stall, FaultParams::default()).expect("stall leader");
    let stuck = harness
        .wait_for("the fail-over to stop the leader and wait in catching_up", WAIT, |status, _| {
            status.phase == "catching_up"
        })
        .await;
    let stopped_hash = stuck.stopped_hash.expect("stopped hash while catching up");
    assert!(harness.active_nodes().is_empty(), "the stalled leader was stopped");

    harness.kill_coordinator().await;
    let store = FileStateStore::open(harness.data_dir.path()).expect("open state dir");
    let saved = store.load("devnet").await.expect("readable state").expect("a saved state");
    assert_eq!(saved.phase, Phase::CatchingUp { from: "seq-0".into(), target: None }, "{saved:?}");
    assert_eq!(saved.stopped_hash, Some(stopped_hash), "{saved:?}");
    assert_eq!(saved.leader, None, "{saved:?}");
    let raw = std::fs::read_to_string(store.path_of("devnet")).expect("state file");
    assert!(raw.contains("catching_up") && raw.contains(&stopped_hash.to_string()), "{raw}");

    // The followers recover while no coordinator runs; nobody starts anything on its own.
    for follower in ["seq-1", "seq-2"] {
        harness.sim.heal(follower, Some(FaultKind::Malformed)).expect("heal follower");
    }
    // The timeline survives the restart: only the events after it tell how it resumed.
    let restarted_at = opc_test_support::unix_ms();
    harness.restart_coordinator().await;
    assert_eq!(
        harness.admin.get_stopped_hash(None).await.expect("getStoppedHash"),
        Some(stopped_hash),
        "the restarted coordinator knows the stopped hash before its first probe"
    );
    let phase = harness.status().await.phase;
    assert!(
        ["catching_up", "starting", "steady"].contains(&phase.as_str()),
        "resumed, not rediscovering: {phase}"
    );

    // Both followers are at the hash; seq-1 is preferred (priority 1 over 0) unless a probe of it
    // fails on a loaded machine, so either may win.
    let leader = wait_for_new_leader(&harness, "seq-0").await;
    assert_eq!(harness.admin.get_stopped_hash(None).await.expect("getStoppedHash"), Some(stopped_hash));
    let started_at = harness
        .sim
        .ledger_entries(0)
        .into_iter()
        .rev()
        .find_map(|entry| match entry {
            LedgerEntry::Activated { node, head, .. } if node == leader => Some(head.hash),
            _ => None,
        })
        .expect("activation of the new leader");
    assert_eq!(started_at, stopped_hash, "{leader} continued from the stopped hash");
    let caught_up = harness.wait_for_event(EventKind::CaughtUp, Some(&leader), WAIT).await;
    assert!(caught_up.detail.contains(&stopped_hash.to_string()), "{caught_up:?}");
    // Resumed, not rediscovered; and no stale inspection round made it "restart" its new leader.
    let unexpected: Vec<CoordinatorEvent> = harness
        .events()
        .await
        .into_iter()
        .filter(|event| {
            event.at_unix_ms >= restarted_at
                && [EventKind::Adopted, EventKind::Electing, EventKind::LeaderInactive].contains(&event.kind)
        })
        .collect();
    assert!(unexpected.is_empty(), "{unexpected:#?}");

    harness.sim.heal("seq-0", None).expect("heal seq-0");
    harness.wait_for_blocks(5, WAIT).await;
    harness.wait_for_leader(&leader, WAIT).await;
    harness.assert_safe();
}

// ------------------------------------------------------------------------------------------------
// Pause
// ------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_coordinator_neither_replaces_a_crashed_leader_nor_stops_an_extra_one_until_resumed() {
    let mut harness = Harness::start("").await;
    harness.wait_for_leader("seq-0", WAIT).await;
    assert!(!harness.admin.election_stopped(None).await.expect("electionStopped"));

    harness.admin.stop_election(None).await.expect("stopElection");
    assert!(harness.admin.election_stopped(None).await.expect("electionStopped"));
    assert!(harness.events().await.iter().any(|event| event.kind == EventKind::Paused));
    // Twice changes nothing, and says so.
    let (code, message) = call_error(harness.admin.stop_election(None).await);
    assert_eq!(code, op_coordinator::api::UNCHANGED_CODE, "{message}");
    assert!(message.starts_with("already paused"), "{message}");

    // Persisted: a restarted coordinator is still paused.
    harness.restart_coordinator().await;
    assert!(harness.admin.election_stopped(None).await.expect("electionStopped after restart"));
    harness.wait_for("every node probed", WAIT, |status, _| all_healthy(status)).await;

    // A crashed leader is not replaced. Proof that time passed: the followers' heads stand still
    // for well over what an active coordinator needs to fail over (liveness window 300 ms).
    harness.sim.fault("seq-0", FaultKind::Crash, FaultParams::default()).expect("crash leader");
    let status = harness
        .wait_for("the chain to stand still for 1.5 s", WAIT, |status, _| {
            !node(status, "seq-0").healthy
                && status
                    .nodes
                    .iter()
                    .filter(|node| node.name != "seq-0")
                    .all(|node| node.head_age_ms.is_some_and(|age| age >= 1500))
        })
        .await;
    assert_eq!(status.leader.as_deref(), Some("seq-0"), "{status:#?}");
    assert_eq!(status.phase, "steady", "{status:#?}");
    assert!(harness.active_nodes().is_empty(), "nobody was started");

    // An extra sequencer is not stopped: it seals block after block, each inspection round
    // (100 ms) leaving it alone. It is the only one sealing, so this is safe.
    harness.sim.fault("seq-1", FaultKind::StartSequencer, FaultParams::default()).expect("start seq-1");
    harness.wait_for_blocks(15, WAIT).await;
    assert_eq!(harness.active_nodes(), vec!["seq-1".to_owned()]);
    let acted: Vec<CoordinatorEvent> = harness
        .events()
        .await
        .into_iter()
        .filter(|event| {
            [
                EventKind::InspectionStopping,
                EventKind::LeaderUnhealthy,
                EventKind::LeaderFenced,
                EventKind::Stopped,
                EventKind::CaughtUp,
                EventKind::Electing,
            ]
            .contains(&event.kind)
        })
        .collect();
    assert!(acted.is_empty(), "a paused coordinator acted: {acted:#?}");

    // Resumed: the extra sequencer is stopped and the dead leader replaced.
    harness.admin.start_election(None).await.expect("startElection");
    assert!(!harness.admin.election_stopped(None).await.expect("electionStopped"));
    let new_leader = wait_for_new_leader(&harness, "seq-0").await;
    let status = harness.status().await;
    assert!(node(&status, "seq-0").fenced, "the unreachable old leader is fenced: {status:#?}");

    harness.sim.heal("seq-0", None).expect("heal seq-0");
    harness
        .wait_for("the fence to be released", WAIT, |status, _| status.nodes.iter().all(|node| !node.fenced))
        .await;
    harness.wait_for_blocks(3, WAIT).await;
    harness.wait_for_leader(&new_leader, WAIT).await;
    harness.assert_safe();
}

// ------------------------------------------------------------------------------------------------
// Hand-over
// ------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_active_sequencer_hands_over_at_the_stopped_hash_and_refuses_bad_targets() {
    let mut harness = Harness::start("").await;
    harness.wait_for_leader("seq-0", WAIT).await;
    harness.wait_for("every node healthy", WAIT, |status, _| all_healthy(status)).await;
    harness.wait_for_blocks(3, WAIT).await;
    let ledger_from = harness.sim.ledger().len();

    harness.admin.set_active_sequencer("seq-2".into(), None).await.expect("hand-over to seq-2");
    // Returned only once seq-2 leads: no waiting needed.
    assert_eq!(
        harness.admin.get_active_sequencer(None).await.expect("getActiveSequencer").as_deref(),
        Some("seq-2")
    );
    assert_eq!(harness.active_nodes(), vec!["seq-2".to_owned()], "ground truth right after the call");
    let status = harness.status().await;
    assert_eq!((status.phase.as_str(), status.epoch), ("steady", 1), "{status:#?}");

    let stopped_hash = harness.admin.get_stopped_hash(None).await.expect("getStoppedHash").expect("a hash");
    let entries = harness.sim.ledger_entries(ledger_from);
    let stopped_at = entries.iter().find_map(|entry| match entry {
        LedgerEntry::Deactivated { node, head, .. } if node == "seq-0" => Some(head.hash),
        _ => None,
    });
    let started_at = entries.iter().find_map(|entry| match entry {
        LedgerEntry::Activated { node, head, .. } if node == "seq-2" => Some(head.hash),
        _ => None,
    });
    assert_eq!(stopped_at, Some(stopped_hash), "seq-0 stopped where getStoppedHash says");
    assert_eq!(started_at, Some(stopped_hash), "seq-2 started there");
    let timeline = harness.events().await;
    for kind in [
        EventKind::HandoverRequested,
        EventKind::Stopped,
        EventKind::CaughtUp,
        EventKind::Started,
        EventKind::FailoverComplete,
    ] {
        assert!(timeline.iter().any(|event| event.kind == kind), "no {kind} in {timeline:#?}");
    }

    // Asking for the current leader is a no-op success.
    harness.admin.set_active_sequencer("seq-2".into(), None).await.expect("no-op hand-over");
    assert_eq!(harness.status().await.epoch, 1, "nothing changed");

    let (_, message) = call_error(harness.admin.set_active_sequencer("seq-9".into(), None).await);
    assert!(message.contains("no sequencer named \"seq-9\""), "{message}");

    harness.sim.fault("seq-1", FaultKind::Crash, FaultParams::default()).expect("crash seq-1");
    harness.wait_for("seq-1 unhealthy", WAIT, |status, _| !node(status, "seq-1").healthy).await;
    let (_, message) = call_error(harness.admin.set_active_sequencer("seq-1".into(), None).await);
    assert!(message.contains("seq-1 cannot take over") && message.contains("unhealthy"), "{message}");
    harness.sim.heal("seq-1", None).expect("heal seq-1");

    // A watched-only node is refused too.
    harness.config_text = harness.config_text.replace(
        "[chains.devnet.sequencers.seq-1]\n",
        "[chains.devnet.sequencers.seq-1]\ncandidate = false\n",
    );
    assert!(harness.config_text.contains("candidate = false"));
    harness.restart_coordinator().await;
    harness
        .wait_for("seq-1 healthy and watched-only", WAIT, |status, _| {
            let seq1 = node(status, "seq-1");
            seq1.healthy && !seq1.candidate
        })
        .await;
    harness.wait_for_leader("seq-2", WAIT).await;
    let (_, message) = call_error(harness.admin.set_active_sequencer("seq-1".into(), None).await);
    assert!(message.contains("not a candidate (candidate = false)"), "{message}");
    assert_eq!(harness.active_nodes(), vec!["seq-2".to_owned()], "refusals changed nothing");

    harness.wait_for_blocks(3, WAIT).await;
    harness.wait_for_leader("seq-2", WAIT).await;
    harness.assert_safe();
}

// ------------------------------------------------------------------------------------------------
// Malformed and huge replies
// ------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_huge_replies_of_a_follower_are_a_verdict_with_a_reason_and_harm_nothing() {
    let harness = Harness::start("").await;
    harness.wait_for_leader("seq-0", WAIT).await;
    harness.wait_for("every node healthy", WAIT, |status, _| all_healthy(status)).await;

    for (target, reason) in
        [(FaultTarget::OpNode, Reason::OpNodeMalformed), (FaultTarget::OpGeth, Reason::OpGethMalformed)]
    {
        for mode in ["invalid_json", "wrong_types", "huge_body"] {
            harness.sim.fault("seq-2", FaultKind::Malformed, malformed(target, mode)).expect("malform seq-2");
            let status = harness
                .wait_for(&format!("seq-2 unhealthy with {reason} ({mode})"), WAIT, |status, _| {
                    let seq2 = node(status, "seq-2");
                    !seq2.healthy && seq2.reason == reason
                })
                .await;
            let seq2 = node(&status, "seq-2");
            assert!(seq2.detail.contains("malformed"), "{mode}: detail explains it: {seq2:?}");
            assert_eq!(status.leader.as_deref(), Some("seq-0"), "{mode}: {status:#?}");
            assert_eq!(status.phase, "steady", "{mode}: {status:#?}");
            // Unharmed: status answers fast while the bad replies keep coming.
            let asked = Instant::now();
            harness.status().await;
            assert!(asked.elapsed() < Duration::from_secs(2), "{mode}: status took {:?}", asked.elapsed());

            harness.sim.heal("seq-2", Some(FaultKind::Malformed)).expect("heal seq-2");
            harness
                .wait_for(&format!("seq-2 healthy again after {mode}"), WAIT, |status, _| {
                    let seq2 = node(status, "seq-2");
                    seq2.healthy && seq2.reason == Reason::Ok
                })
                .await;
        }
    }
    if let Some(mib) = resident_mib() {
        // The simulator builds every huge reply in this process too; the coordinator reads at most
        // MAX_REPLY_BYTES of each.
        assert!(mib < 1024, "resident memory {mib} MiB");
    }
    harness.wait_for_blocks(3, WAIT).await;
    harness.wait_for_leader("seq-0", WAIT).await;
    harness.assert_safe();
}

/// The leader's op-node answers garbage while it keeps sealing. What happens, step by step:
/// the coordinator judges it unhealthy (`op_node_malformed`) but can reach it, so it stops it;
/// the simulator executes the stop and garbles the reply, so the coordinator cannot tell whether
/// the stop happened (`stop_failed`) and treats the leader as cut off. Once no follower has
/// advanced for the liveness window it fences the old leader with the most advanced follower's
/// head as stopped hash. Its fence stop keeps failing on the garbled replies; as long as the chain
/// could still be moving, nobody starts, but a chain that stands still for the whole window is
/// proof the fenced node produces nothing anyone receives, so a candidate takes over instead of
/// leaving the chain hostage to a node that only answers garbage. Once the fault heals the fence
/// stop answers "not running" and the fence is released. Never two sequencers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_answering_garbage_is_fenced_and_replaced_once_the_chain_stands_still() {
    let harness = Harness::start("").await;
    harness.wait_for_leader("seq-0", WAIT).await;
    harness.wait_for("every node healthy", WAIT, |status, _| all_healthy(status)).await;
    harness.wait_for_blocks(3, WAIT).await;

    harness
        .sim
        .fault("seq-0", FaultKind::Malformed, malformed(FaultTarget::OpNode, "invalid_json"))
        .expect("malform leader");
    harness
        .wait_for("the leader's verdict to name the garbage", WAIT, |status, _| {
            let seq0 = node(status, "seq-0");
            !seq0.healthy && seq0.reason == Reason::OpNodeMalformed
        })
        .await;
    harness.wait_for_event(EventKind::LeaderFenced, Some("seq-0"), WAIT).await;
    harness.wait_for_event(EventKind::FenceStopFailed, Some("seq-0"), WAIT).await;
    let status = harness
        .wait_for("a new leader while seq-0 still answers garbage", WAIT, |status, sim| {
            let active: Vec<String> = sim.nodes().into_iter().filter(|n| n.active).map(|n| n.name).collect();
            status.phase == "steady"
                && status.leader.as_deref().is_some_and(|leader| leader != "seq-0")
                && active == status.leader.clone().into_iter().collect::<Vec<_>>()
        })
        .await;
    assert!(node(&status, "seq-0").fenced, "still fenced while its replies are garbage: {status:#?}");
    let leader = status.leader.clone().expect("leader");

    harness.sim.heal("seq-0", None).expect("heal seq-0");
    harness
        .wait_for("the fence released", WAIT, |status, _| status.nodes.iter().all(|node| !node.fenced))
        .await;
    assert_steps_in_order(
        &harness.events().await,
        &[
            (EventKind::LeaderUnhealthy, "seq-0"),
            (EventKind::StopFailed, "seq-0"),
            (EventKind::LeaderFenced, "seq-0"),
            (EventKind::FenceStopFailed, "seq-0"),
            (EventKind::FailoverComplete, &leader),
            (EventKind::FenceReleased, "seq-0"),
        ],
    );
    harness.wait_for_blocks(3, WAIT).await;
    harness.wait_for_leader(&leader, WAIT).await;
    harness.assert_safe();
}

/// The leader's op-geth answers garbage: the leader is unhealthy (`op_geth_malformed`) but its
/// op-node answers properly, so this is an ordinary fail-over with the stopped hash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_op_geth_answers_garbage_is_failed_over_at_the_stopped_hash() {
    let harness = Harness::start("").await;
    harness.wait_for_leader("seq-0", WAIT).await;
    harness.wait_for("every node healthy", WAIT, |status, _| all_healthy(status)).await;

    harness
        .sim
        .fault("seq-0", FaultKind::Malformed, malformed(FaultTarget::OpGeth, "wrong_types"))
        .expect("malform leader's op-geth");
    let leader = wait_for_new_leader(&harness, "seq-0").await;
    let status = harness.status().await;
    assert!(!node(&status, "seq-0").fenced, "a clean stop needs no fence: {status:#?}");
    let stopped_hash = status.stopped_hash.expect("stopped hash");
    let stopped = harness.wait_for_event(EventKind::Stopped, Some("seq-0"), WAIT).await;
    assert!(stopped.detail.contains(&stopped_hash.to_string()), "{stopped:?}");

    harness.sim.heal("seq-0", None).expect("heal seq-0");
    harness.wait_for("seq-0 healthy again", WAIT, |status, _| node(status, "seq-0").healthy).await;
    harness.wait_for_blocks(3, WAIT).await;
    harness.wait_for_leader(&leader, WAIT).await;
    harness.assert_safe();
}

// ------------------------------------------------------------------------------------------------
// API surface
// ------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_reports_leader_status_timeline_and_health_endpoints() {
    let harness = Harness::start("").await;
    let addr = rpc_addr(&harness);
    assert_eq!(http(addr, "GET", "/healthz", &[], "").await.0, 200);
    wait_until("GET /readyz 200 once every node was probed", WAIT, || async {
        (http(addr, "GET", "/readyz", &[], "").await.0 == 200).then_some(())
    })
    .await;
    assert_eq!(http(addr, "GET", "/nowhere", &[], "").await.0, 404);

    harness.wait_for_leader("seq-0", WAIT).await;
    let status = harness.wait_for("every node healthy", WAIT, |status, _| all_healthy(status)).await;
    assert_eq!(
        harness.admin.get_active_sequencer(None).await.expect("getActiveSequencer").as_deref(),
        Some("seq-0")
    );
    assert!(!harness.admin.election_stopped(None).await.expect("electionStopped"));
    assert_eq!(
        harness.admin.get_stopped_hash(None).await.expect("getStoppedHash"),
        None,
        "nothing stopped yet"
    );
    assert_eq!((status.chain.as_str(), status.phase.as_str(), status.epoch), ("devnet", "steady", 0));
    assert_eq!(status.leader.as_deref(), Some("seq-0"));
    assert!(!status.paused);
    for node in &status.nodes {
        let unsafe_head = node.unsafe_head.unwrap_or_else(|| panic!("unsafe head of {node:?}"));
        let safe_head = node.safe_head.unwrap_or_else(|| panic!("safe head of {node:?}"));
        assert!(safe_head.number <= unsafe_head.number, "{node:?}");
        assert!(node.execution_head.is_some(), "{node:?}");
        assert_eq!(node.active, Some(node.name == "seq-0"), "{node:?}");
        assert!(node.op_node_latency_ms.is_some() && node.op_geth_latency_ms.is_some(), "{node:?}");
        assert!(node.head_age_ms.is_some() && node.candidate && !node.fenced, "{node:?}");
        assert!(!node.detail.is_empty(), "{node:?}");
    }

    // A fail-over fills the timeline with timed steps.
    harness.sim.fault("seq-0", FaultKind::Crash, FaultParams::default()).expect("crash leader");
    wait_for_new_leader(&harness, "seq-0").await;
    let status = harness.status().await;
    assert_eq!(status.epoch, 1);
    let stopped_hash = harness.admin.get_stopped_hash(None).await.expect("getStoppedHash");
    assert!(stopped_hash.is_some() && stopped_hash == status.stopped_hash);
    let timeline = harness.events().await;
    let leader = status.leader.clone().expect("leader");
    assert_steps_in_order(
        &timeline,
        &[
            (EventKind::LeaderFenced, "seq-0"),
            (EventKind::CaughtUp, &leader),
            (EventKind::Started, &leader),
            (EventKind::FailoverComplete, &leader),
        ],
    );
    let complete =
        timeline.iter().find(|event| event.kind == EventKind::FailoverComplete).expect("failover_complete");
    assert!(complete.duration_ms.is_some(), "the fail-over is timed: {complete:?}");
    assert!(timeline.iter().all(|event| event.chain == "devnet" && event.at_unix_ms > 0));
    assert!(timeline.windows(2).all(|pair| pair[0].at_unix_ms <= pair[1].at_unix_ms), "oldest first");
    assert_eq!(harness.admin.events(None, Some(2), None, None).await.expect("events").len(), 2);

    // A chain name this coordinator does not serve is a parameter error naming the known ones.
    let unknown = Some("nope".to_owned());
    let errors = [
        harness.admin.get_active_sequencer(unknown.clone()).await.map(|_| ()),
        harness.admin.status(unknown.clone()).await.map(|_| ()),
        harness.admin.events(unknown.clone(), None, None, None).await.map(|_| ()),
        harness.admin.stop_election(unknown.clone()).await,
        harness.admin.set_active_sequencer("seq-1".into(), unknown).await,
    ];
    for result in errors {
        let (code, message) = call_error(result);
        assert_eq!(code, jsonrpsee::types::error::INVALID_PARAMS_CODE, "{message}");
        assert!(message.contains("unknown chain \"nope\"") && message.contains("devnet"), "{message}");
    }
    assert!(!harness.admin.election_stopped(None).await.expect("electionStopped"), "nothing was paused");

    harness.sim.heal("seq-0", None).expect("heal seq-0");
    harness
        .wait_for("the fence to be released", WAIT, |status, _| status.nodes.iter().all(|node| !node.fenced))
        .await;
    harness.wait_for_blocks(3, WAIT).await;
    harness.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_of_two_chains_needs_the_chain_name_on_every_call() {
    let harness = Harness::start_with(SimConfig::uniform(2, 3, BLOCK_TIME_MS), "").await;
    wait_until("both chains to adopt seq-0", WAIT, || async {
        let all = harness.admin.status(None).await.expect("status");
        (all.len() == 2
            && all.iter().all(|chain| chain.leader.as_deref() == Some("seq-0") && chain.phase == "steady"))
        .then_some(())
    })
    .await;
    let (_, message) = call_error(harness.admin.get_active_sequencer(None).await);
    assert!(message.contains("pass the chain name"), "{message}");
    let (_, message) = call_error(harness.admin.stop_election(None).await);
    assert!(message.contains("pass the chain name"), "{message}");
    for chain in ["chain-0", "chain-1"] {
        let leader =
            harness.admin.get_active_sequencer(Some(chain.into())).await.expect("getActiveSequencer");
        assert_eq!(leader.as_deref(), Some("seq-0"), "{chain}");
        let status = harness.admin.status(Some(chain.into())).await.expect("status");
        assert_eq!(status.len(), 1);
        assert_eq!(status[0].chain, chain);
    }
    let (_, message) = call_error(harness.admin.get_active_sequencer(Some("chain-9".into())).await);
    assert!(message.contains("unknown chain \"chain-9\"") && message.contains("chain-1"), "{message}");

    // Pausing one chain leaves the other alone.
    harness.admin.stop_election(Some("chain-1".into())).await.expect("pause chain-1");
    assert!(harness.admin.election_stopped(Some("chain-1".into())).await.expect("electionStopped"));
    assert!(!harness.admin.election_stopped(Some("chain-0".into())).await.expect("electionStopped"));

    harness.wait_for_blocks(3, WAIT).await;
    for report in harness.sim.invariants() {
        assert!(report.is_safe(), "{report:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_jwt_secret_mutating_calls_need_a_token_and_reads_do_not() {
    let secret = [0x5au8; 32];
    let secret_dir = tempfile::tempdir().expect("temp dir");
    let secret_file = secret_dir.path().join("jwt.hex");
    let hex: String = secret.iter().map(|byte| format!("{byte:02x}")).collect();
    std::fs::write(&secret_file, format!("0x{hex}\n")).expect("write secret");
    let harness =
        Harness::start(&format!("[rpc]\njwt_secret_file = {:?}\n", secret_file.display().to_string())).await;
    harness.wait_for_leader("seq-0", WAIT).await;
    let addr = rpc_addr(&harness);
    let bearer = |token: String| vec![("Authorization", format!("Bearer {token}"))];
    let good = || bearer(op_coordinator::jwt::issue(&secret));
    let forged = bearer(op_coordinator::jwt::issue(&[0x11; 32]));

    let mutating = [
        rpc_body("coordinator_stopElection", serde_json::json!([])),
        rpc_body("coordinator_startElection", serde_json::json!([])),
        rpc_body("coordinator_setActiveSequencer", serde_json::json!(["seq-1"])),
        // A batch hiding a mutating call behind a read.
        format!(
            "[{},{}]",
            rpc_body("coordinator_status", serde_json::json!([])),
            rpc_body("coordinator_stopElection", serde_json::json!([]))
        ),
    ];
    for body in &mutating {
        for headers in [Vec::new(), forged.clone(), vec![("Authorization", "Bearer not.a.jwt".to_owned())]] {
            let (code, reply) = http(addr, "POST", "/", &headers, body).await;
            assert_eq!(code, 401, "{body} with {headers:?}: {reply}");
            let reply: serde_json::Value = serde_json::from_str(&reply).expect("JSON error reply");
            assert_eq!(reply["error"]["code"], -32001, "{reply}");
            assert!(
                reply["error"]["message"].as_str().is_some_and(|m| m.contains("unauthorized")),
                "{reply}"
            );
        }
    }
    // The stock client sends no token: refused too.
    harness.admin.stop_election(None).await.expect_err("no token");
    assert!(!harness.admin.election_stopped(None).await.expect("reads need no token"));
    assert_eq!(harness.active_nodes(), vec!["seq-0".to_owned()], "nothing was handed over");

    // Reads need no token.
    for method in ["coordinator_status", "coordinator_electionStopped", "coordinator_getActiveSequencer"] {
        let (code, reply) = http(addr, "POST", "/", &[], &rpc_body(method, serde_json::json!([]))).await;
        assert_eq!(code, 200, "{method}: {reply}");
        assert!(reply.contains("\"result\""), "{method}: {reply}");
    }

    // With a token signed by the secret, mutating calls go through.
    let (code, reply) =
        http(addr, "POST", "/", &good(), &rpc_body("coordinator_stopElection", serde_json::json!([]))).await;
    assert_eq!((code, reply.contains("\"result\":null")), (200, true), "{reply}");
    assert!(harness.admin.election_stopped(None).await.expect("electionStopped"));
    let (code, reply) =
        http(addr, "POST", "/", &good(), &rpc_body("coordinator_startElection", serde_json::json!([]))).await;
    assert_eq!((code, reply.contains("\"result\":null")), (200, true), "{reply}");
    assert!(!harness.admin.election_stopped(None).await.expect("electionStopped"));

    harness.wait_for_blocks(3, WAIT).await;
    harness.assert_safe();
}

// ------------------------------------------------------------------------------------------------
// Metrics
// ------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_expose_every_declared_name_for_the_chain_after_a_fail_over() {
    let harness = Harness::start("").await;
    harness.wait_for_leader("seq-0", WAIT).await;
    harness.sim.fault("seq-0", FaultKind::Crash, FaultParams::default()).expect("crash leader");
    wait_for_new_leader(&harness, "seq-0").await;

    // The recorder is process-global: other tests' chains are also called devnet, so this checks
    // that every series exists with the chain label, not its value.
    let addr = metrics_addr(&harness);
    // Raft metrics describe a replica, not a chain (observability.rs checks them on a cluster).
    let missing = |text: &str| -> Vec<&'static str> {
        op_coordinator::metrics::ALL
            .iter()
            .copied()
            .filter(|name| !name.starts_with("op_coordinator_raft_"))
            // Nor does the lateness of the process's own timers.
            .filter(|name| *name != op_coordinator::metrics::TIMER_LAG_SECONDS)
            // Conductor mode's families exist for chains in conductor mode only (metrics_text.rs
            // and observability.rs check them on one).
            .filter(|name| !name.starts_with("op_coordinator_conductor_"))
            .filter(|name| {
                !text.lines().any(|line| {
                    line.starts_with(name) && !line.starts_with('#') && line.contains("chain=\"devnet\"")
                })
            })
            .collect()
    };
    let mut last = String::new();
    let found = tokio::time::timeout(WAIT, async {
        loop {
            let (code, text) = http(addr, "GET", "/metrics", &[], "").await;
            assert_eq!(code, 200);
            if missing(&text).is_empty() {
                return;
            }
            last = text;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(found.is_ok(), "metrics missing {:?} in:\n{last}", missing(&last));
    assert_eq!(http(addr, "GET", "/other", &[], "").await.0, 404);

    harness.sim.heal("seq-0", None).expect("heal seq-0");
    harness
        .wait_for("the fence to be released", WAIT, |status, _| status.nodes.iter().all(|node| !node.fenced))
        .await;
    harness.assert_safe();
}
