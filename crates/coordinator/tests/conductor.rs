//! Conductor mode end to end: op-sim's nodes commit every block to the coordinator's conductor
//! endpoint over real HTTP before publishing it, as op-node does with `--conductor.enabled`.
//! Every test ends on ground truth: no re-org, no double sequencing, and no block sealed by a
//! deposed leader ever published (a zombie block).

use op_sim::SimConfig;
use op_sim::api::{FaultKind, FaultParams, LedgerEntry};
use opc_test_support::{BLOCK_TIME_MS, Harness, WAIT};
use opc_wire::EventKind;

/// When `node` was deposed (the coordinator's own timeline), in the ledger's clock: the first
/// failed commit of `node` after `after_ms` (ground truth: the fence refused it).
fn first_refusal(ledger: &[LedgerEntry], node: &str, after_ms: u64) -> Option<u64> {
    ledger.iter().find_map(|entry| match entry {
        LedgerEntry::CommitFailed { node: by, t_ms, .. } if by == node && *t_ms >= after_ms => Some(*t_ms),
        _ => None,
    })
}

/// Blocks `producer` published after `after_ms` (ground truth).
fn published_after(ledger: &[LedgerEntry], producer: &str, after_ms: u64) -> Vec<u64> {
    ledger
        .iter()
        .filter_map(|entry| match entry {
            LedgerEntry::Block { producer: by, number, t_ms, .. } if by == producer && *t_ms > after_ms => {
                Some(*number)
            }
            _ => None,
        })
        .collect()
}

/// A 3-node chain in conductor mode whose elected leader sealed 5 blocks, and that leader.
async fn leading() -> (Harness, String) {
    let harness = Harness::start_conducted(SimConfig::uniform(1, 3, BLOCK_TIME_MS), "").await;
    let status = harness.wait_for("a leader", WAIT, |status, _| status.leader.is_some()).await;
    harness.wait_for_blocks(5, WAIT).await;
    (harness, status.leader.expect("leader"))
}

/// Another node than `old` leads, and sequences (ground truth).
fn leader_changed_away_from(
    old: &str,
) -> impl Fn(&opc_wire::coordinator::ChainStatus, &op_sim::Simulator) -> bool {
    let old = old.to_owned();
    move |status, sim| {
        status.leader.as_deref().is_some_and(|leader| leader != old)
            && sim.nodes().iter().any(|node| node.active && node.name != old)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_coordinator_elects_a_leader_whose_every_block_is_committed_first() {
    let harness = Harness::start_conducted(SimConfig::uniform(1, 3, BLOCK_TIME_MS), "").await;
    let status = harness.wait_for("a leader", WAIT, |status, _| status.leader.is_some()).await;
    harness.wait_for_blocks(10, WAIT).await;
    let leader = status.leader.expect("leader");
    let ledger = harness.ledger();
    assert!(published_after(&ledger, &leader, 0).len() >= 10);
    assert!(first_refusal(&ledger, &leader, 0).is_none(), "the leader's commits are accepted");
    harness.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_leader_is_deposed_and_replaced_without_a_liveness_window() {
    let (harness, old) = leading().await;
    harness.sim.fault(&old, FaultKind::Crash, FaultParams::default()).expect("crash");
    harness.wait_for("a new leader", WAIT, leader_changed_away_from(&old)).await;
    harness.wait_for_event(EventKind::LeaderDeposed, Some(&old), WAIT).await;
    harness.wait_for_blocks(5, WAIT).await;
    let events = harness.events().await;
    assert!(
        !events.iter().any(|event| event.kind == EventKind::LeaderFenced),
        "deposed by the fence, not fenced after a liveness window: {events:#?}"
    );
    harness.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_leader_that_resumes_cannot_publish_the_block_it_seals() {
    let (harness, old) = leading().await;
    // A hung process that seals on its old head the moment it resumes (what a real one may do).
    let hang = FaultParams { seal_on_resume: Some(true), ..FaultParams::default() };
    harness.sim.fault(&old, FaultKind::Hang, hang).expect("hang");
    harness.wait_for("a new leader", WAIT, leader_changed_away_from(&old)).await;
    harness.wait_for_blocks(5, WAIT).await;
    // Cut off from the coordinator before it resumes: the stops held in its hung server are
    // dropped and no new one reaches it, so it seals on resuming, as a process does whose stop
    // arrives late. Its calls to the conductor still go out.
    let isolate = FaultParams { mode: Some("refuse".to_owned()), ..FaultParams::default() };
    harness.sim.fault(&old, FaultKind::Isolate, isolate).expect("isolate");
    let resumed_at = harness.sim.ledger().now_ms();
    harness.sim.heal(&old, Some(FaultKind::Hang)).expect("resume");
    // Its first seal after resuming ends either refused by the fence or published (a zombie).
    let refused = opc_test_support::wait_until("the resumed leader's first seal", WAIT, || {
        let ledger = harness.ledger();
        let outcome = match first_refusal(&ledger, &old, resumed_at) {
            Some(at) => Some(at),
            None if !published_after(&ledger, &old, resumed_at).is_empty() => Some(u64::MAX),
            None => None,
        };
        async move { outcome }
    })
    .await;
    harness.sim.heal(&old, None).expect("reconnect");
    harness
        .wait_for("the fence to be released", WAIT, |status, _| status.nodes.iter().all(|node| !node.fenced))
        .await;
    harness.wait_for_blocks(5, WAIT).await;
    let ledger = harness.ledger();
    let zombies = published_after(&ledger, &old, resumed_at);
    assert_eq!(zombies, Vec::<u64>::new(), "zombie blocks: the deposed leader published after resuming");
    assert_ne!(refused, u64::MAX);
    harness.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_the_probes_but_committing_is_left_alone() {
    let (harness, leader) = leading().await;
    // Its RPC servers refuse us; its own calls to the conductor still go out.
    let isolate = FaultParams { mode: Some("refuse".to_owned()), ..FaultParams::default() };
    harness.sim.fault(&leader, FaultKind::Isolate, isolate).expect("isolate");
    harness.wait_for_event(EventKind::LeaderCutOff, Some(&leader), WAIT).await;
    harness.wait_for_blocks(20, WAIT).await;
    let status = harness.status().await;
    assert_eq!(status.leader.as_deref(), Some(leader.as_str()), "{status:#?}");
    harness.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_coordinator_keeps_the_committed_head_and_the_leader() {
    let (mut harness, leader) = leading().await;
    harness.stop_coordinator().await;
    // With its conductor gone the leader cannot publish: its commits fail.
    let stopped_at = harness.sim.ledger().now_ms();
    opc_test_support::wait_until("a failed commit while the coordinator is down", WAIT, || {
        let refused = first_refusal(&harness.ledger(), &leader, stopped_at);
        async move { refused }
    })
    .await;
    harness.restart_coordinator().await;
    harness.wait_for_blocks(5, WAIT).await;
    harness.wait_for_leader(&leader, WAIT).await;
    harness.assert_safe();
}
