//! Fail-over scenarios against a simulated 3-node chain over real loopback HTTP. Every test ends
//! by checking ground truth: no re-org of the unsafe chain, no double sequencing.

use op_sim::SimConfig;
use op_sim::api::{FaultKind, FaultParams, FaultTarget, LedgerEntry};
use opc_test_support::{
    BLOCK_TIME_MS, Harness, WAIT, active_nodes, assert_steps_in_order, node, unix_ms, wait_until,
};
use opc_wire::BlockId;
use opc_wire::EventKind;
use opc_wire::health::Reason;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_leader_is_replaced_and_fenced_when_it_returns() {
    let harness = Harness::start("").await;
    harness.wait_for_leader("seq-0", WAIT).await;
    harness.wait_for_blocks(5, WAIT).await;

    harness.sim.fault("seq-0", FaultKind::Crash, FaultParams::default()).expect("crash");
    let status = harness
        .wait_for("a new leader", WAIT, |status, sim| {
            status.leader.as_deref().is_some_and(|leader| leader != "seq-0")
                && sim.nodes().iter().any(|node| node.active && node.name != "seq-0")
        })
        .await;
    let new_leader = status.leader.clone().expect("leader");
    assert!(
        status.nodes.iter().any(|node| node.name == "seq-0" && node.fenced),
        "old leader fenced: {status:#?}"
    );
    harness.wait_for_blocks(5, WAIT).await;

    harness.sim.heal("seq-0", None).expect("heal");
    harness
        .wait_for("the fence to be released", WAIT, |status, _| status.nodes.iter().all(|node| !node.fenced))
        .await;
    harness.wait_for_leader(&new_leader, WAIT).await;
    harness.wait_for_blocks(3, WAIT).await;
    harness.assert_safe();
}

/// The head a node was stopped at by `admin_stopSequencer`, the last time (ground truth).
fn stopped_head(ledger: &[LedgerEntry], name: &str) -> Option<BlockId> {
    ledger.iter().rev().find_map(|entry| match entry {
        LedgerEntry::Deactivated { node, head, cause, .. }
            if node == name && cause == "admin_stopSequencer" =>
        {
            Some(*head)
        }
        _ => None,
    })
}

/// The head a node was last started at by `admin_startSequencer` (ground truth).
fn started_head(ledger: &[LedgerEntry], name: &str) -> Option<BlockId> {
    ledger.iter().rev().find_map(|entry| match entry {
        LedgerEntry::Activated { node, head, cause, .. }
            if node == name && cause == "admin_startSequencer" =>
        {
            Some(*head)
        }
        _ => None,
    })
}

fn ever_activated(ledger: &[LedgerEntry], name: &str) -> bool {
    ledger.iter().any(|entry| matches!(entry, LedgerEntry::Activated { node, .. } if node == name))
}

/// Waits until the coordinator names a leader other than seq-0 that alone sequences; its name.
async fn wait_for_new_leader(harness: &Harness) -> String {
    let status = harness
        .wait_for("a new leader sequencing alone", WAIT, |status, sim| {
            status.phase == "steady"
                && status.leader.as_deref().is_some_and(|leader| leader != "seq-0")
                && active_nodes(sim) == status.leader.iter().cloned().collect::<Vec<_>>()
        })
        .await;
    status.leader.clone().expect("leader")
}

/// Asserts the hand-over kept the chain: seq-0 was stopped at the hash the coordinator holds as
/// stopped hash, and `new_leader` was started at exactly that block.
async fn assert_started_at_the_stopped_hash(harness: &Harness, from: &str, new_leader: &str) {
    let ledger = harness.ledger();
    let stopped = stopped_head(&ledger, from).expect("the old leader was stopped");
    let started = started_head(&ledger, new_leader).expect("the new leader was started");
    assert_eq!(started, stopped, "started exactly at the stopped head");
    let status = harness.status().await;
    assert_eq!(status.stopped_hash, Some(stopped.hash), "{status:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_leader_that_still_answers_is_stopped_and_replaced_at_its_stopped_hash() {
    let harness = Harness::start("").await;
    harness.wait_for_leader("seq-0", WAIT).await;
    harness.wait_for_blocks(5, WAIT).await;

    harness.sim.fault("seq-0", FaultKind::Stall, FaultParams::default()).expect("stall");
    let new_leader = wait_for_new_leader(&harness).await;
    assert_eq!(new_leader, "seq-1", "both followers hold the stopped hash: the higher priority wins");
    assert_steps_in_order(
        &harness.events().await,
        &[
            (EventKind::LeaderUnhealthy, "seq-0"),
            (EventKind::Stopped, "seq-0"),
            (EventKind::CaughtUp, "seq-1"),
            (EventKind::Started, "seq-1"),
        ],
    );
    assert_started_at_the_stopped_hash(&harness, "seq-0", &new_leader).await;
    let status = harness.status().await;
    assert!(status.nodes.iter().all(|node| !node.fenced), "a graceful stop needs no fence: {status:#?}");

    harness.wait_for_blocks(5, WAIT).await;
    harness.sim.heal("seq-0", None).expect("heal");
    harness.wait_for_blocks(3, WAIT).await;
    harness.wait_for_leader(&new_leader, WAIT).await;
    harness.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_that_returns_the_zero_hash_fails_over_at_the_head_read_from_sync_status() {
    let mut config = SimConfig::uniform(1, 3, BLOCK_TIME_MS);
    for node in &mut config.chains[0].nodes {
        node.options.zero_stopped_hash = true;
    }
    let harness = Harness::start_with(config, "").await;
    harness.wait_for_leader("seq-0", WAIT).await;
    harness.wait_for_blocks(5, WAIT).await;

    harness.sim.fault("seq-0", FaultKind::Stall, FaultParams::default()).expect("stall");
    let new_leader = wait_for_new_leader(&harness).await;
    assert_steps_in_order(
        &harness.events().await,
        &[
            (EventKind::LeaderUnhealthy, "seq-0"),
            (EventKind::ZeroStoppedHash, "seq-0"),
            (EventKind::Stopped, "seq-0"),
            (EventKind::CaughtUp, new_leader.as_str()),
            (EventKind::Started, new_leader.as_str()),
        ],
    );
    assert_started_at_the_stopped_hash(&harness, "seq-0", &new_leader).await;

    harness.wait_for_blocks(5, WAIT).await;
    harness.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_candidate_cut_off_from_gossip_is_passed_over_for_the_caught_up_one_despite_its_higher_priority() {
    let harness = Harness::start("").await;
    harness.wait_for_leader("seq-0", WAIT).await;
    harness.wait_for_blocks(3, WAIT).await;
    let status = harness.status().await;
    assert!(node(&status, "seq-1").priority > node(&status, "seq-2").priority, "{status:#?}");

    harness.sim.partition(&[vec!["seq-0".into(), "seq-2".into()], vec!["seq-1".into()]]).expect("partition");
    harness
        .wait_for("seq-1 to fall behind", WAIT, |_, sim| {
            let heads: Vec<u64> = sim.nodes().iter().map(|node| node.unsafe_head.number).collect();
            heads[1] + 3 <= heads[0]
        })
        .await;
    harness.sim.fault("seq-0", FaultKind::Stall, FaultParams::default()).expect("stall");
    let new_leader = wait_for_new_leader(&harness).await;
    assert_eq!(new_leader, "seq-2", "only seq-2 holds the stopped hash");
    assert_started_at_the_stopped_hash(&harness, "seq-0", "seq-2").await;
    assert!(!ever_activated(&harness.ledger(), "seq-1"), "the lagging candidate was never started");

    harness.sim.partition(&[]).expect("heal partition");
    harness
        .wait_for("seq-1 to catch up", WAIT, |status, _| {
            let seq1 = node(status, "seq-1");
            seq1.healthy
                && seq1.unsafe_head.map(|h| h.number)
                    >= node(status, "seq-2").unsafe_head.map(|h| h.number - 1)
        })
        .await;
    harness.wait_for_leader("seq-2", WAIT).await;
    harness.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_candidate_whose_op_geth_lags_is_passed_over_for_a_healthy_one_despite_its_higher_priority() {
    let harness = Harness::start("").await;
    harness.wait_for_leader("seq-0", WAIT).await;
    harness.wait_for_blocks(3, WAIT).await;

    harness.sim.fault("seq-1", FaultKind::ExecutionLag, FaultParams::default()).expect("lag");
    harness
        .wait_for("seq-1 judged execution-lagging", WAIT, |status, _| {
            let seq1 = node(status, "seq-1");
            !seq1.healthy && seq1.reason == Reason::ExecutionLag
        })
        .await;
    harness.sim.fault("seq-0", FaultKind::Stall, FaultParams::default()).expect("stall");
    let new_leader = wait_for_new_leader(&harness).await;
    assert_eq!(new_leader, "seq-2", "seq-1's op-node holds the stopped hash, but its op-geth lags");
    assert_started_at_the_stopped_hash(&harness, "seq-0", "seq-2").await;
    assert!(!ever_activated(&harness.ledger(), "seq-1"));

    harness.sim.heal("seq-1", None).expect("heal");
    harness.wait_for("seq-1 healthy again", WAIT, |status, _| node(status, "seq-1").healthy).await;
    harness.wait_for_leader("seq-2", WAIT).await;
    harness.wait_for_blocks(3, WAIT).await;
    harness.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_no_candidate_reaches_the_stopped_hash_the_old_leader_is_restarted_there() {
    let harness = Harness::start("").await;
    harness.wait_for_leader("seq-0", WAIT).await;
    harness.wait_for_blocks(3, WAIT).await;
    harness.partition_the_followers_away().await;

    harness.sim.fault("seq-0", FaultKind::Stall, FaultParams::default()).expect("stall");
    harness.wait_for_event(EventKind::Stopped, Some("seq-0"), WAIT).await;
    // Stopped, it seals nothing anyway; healed, it can lead again once restarted. (Should the
    // catch-up time out before this heal, it is restarted stalled, stopped again, and the next
    // time-out restarts it healed: the waits below cover both.)
    harness.sim.heal("seq-0", Some(FaultKind::Stall)).expect("heal stall");
    let timeout = harness.wait_for_event(EventKind::CatchUpTimeout, Some("seq-0"), WAIT).await;
    assert!(timeout.detail.contains("restarting the old leader"), "{timeout:#?}");
    harness.wait_for_leader("seq-0", WAIT).await;
    let ledger = harness.ledger();
    assert_eq!(
        started_head(&ledger, "seq-0"),
        stopped_head(&ledger, "seq-0"),
        "restarted at its stopped head"
    );
    assert!(!ever_activated(&ledger, "seq-1") && !ever_activated(&ledger, "seq-2"));
    harness.wait_for_blocks(3, WAIT).await;

    harness.sim.partition(&[]).expect("heal partition");
    harness
        .wait_for("the followers to catch up", WAIT, |status, _| {
            status.nodes.iter().all(|node| node.healthy && node.reason == Reason::Ok)
        })
        .await;
    harness.wait_for_leader("seq-0", WAIT).await;
    harness.assert_safe();
}

/// Crashes seq-0's op-geth: the leader cannot seal, its op-node still answers (so it is stopped
/// gracefully), and it stays unhealthy so the catch-up time-out cannot restart it. Returns the
/// stopped hash once the chain is leaderless.
async fn crash_the_leaders_op_geth_until_leaderless(harness: &Harness) -> BlockId {
    let crash = FaultParams { target: Some(FaultTarget::OpGeth), ..FaultParams::default() };
    harness.sim.fault("seq-0", FaultKind::Crash, crash).expect("crash op-geth");
    let event = harness.wait_for_event(EventKind::Leaderless, None, WAIT).await;
    assert!(event.detail.contains("NO SEQUENCER IS ACTIVE"), "said loudly: {event:#?}");
    let status = harness.status().await;
    assert_eq!((status.phase.as_str(), status.leader.as_deref()), ("leaderless", None), "{status:#?}");
    assert!(active_nodes(&harness.sim).is_empty(), "{:#?}", harness.sim.nodes());
    let stopped = stopped_head(&harness.ledger(), "seq-0").expect("seq-0 was stopped");
    assert_eq!(status.stopped_hash, Some(stopped.hash), "{status:#?}");
    // Leaderless is stable while nothing changes: nobody is started at another hash. Wait until
    // every head has been still for three catch-up time-outs' worth of probes.
    harness
        .wait_for("the leaderless chain to stay still", WAIT, |status, sim| {
            assert_eq!(status.phase, "leaderless", "{status:#?}");
            assert!(active_nodes(sim).is_empty(), "nobody starts at another hash: {:#?}", sim.nodes());
            status.nodes.iter().all(|node| node.head_age_ms.is_some_and(|age| age >= 3000))
        })
        .await;
    stopped
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_at_the_stopped_hash_and_the_old_leader_down_means_leaderless_until_it_recovers() {
    let harness = Harness::start("").await;
    harness.wait_for_leader("seq-0", WAIT).await;
    harness.wait_for_blocks(3, WAIT).await;
    harness.partition_the_followers_away().await;
    let stopped = crash_the_leaders_op_geth_until_leaderless(&harness).await;

    // Healing the partition alone brings no follower to the stopped hash: the simulator syncs a
    // follower only when a new block is gossiped, and nobody seals. The old leader holds it and
    // can be started there once its op-geth is back.
    harness.sim.partition(&[]).expect("heal partition");
    harness.sim.heal("seq-0", None).expect("heal");
    let status = harness
        .wait_for("a node started at the stopped hash", WAIT, |status, sim| {
            status.phase == "steady" && status.leader.is_some() && active_nodes(sim).len() == 1
        })
        .await;
    let leader = status.leader.clone().expect("leader");
    assert_eq!(started_head(&harness.ledger(), &leader), Some(stopped), "started at the stopped head");
    harness.wait_for_leader(&leader, WAIT).await;
    harness.wait_for_blocks(5, WAIT).await;
    harness.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaderless_chain_starts_the_first_candidate_that_becomes_eligible_at_the_stopped_hash() {
    let harness = Harness::start("").await;
    harness.wait_for_leader("seq-0", WAIT).await;
    harness.wait_for_blocks(3, WAIT).await;
    // Both followers import every block (their op-node heads reach any stopped hash) but their
    // op-geth lags: not eligible.
    for follower in ["seq-1", "seq-2"] {
        harness.sim.fault(follower, FaultKind::ExecutionLag, FaultParams::default()).expect("lag");
    }
    harness
        .wait_for("both followers judged execution-lagging", WAIT, |status, _| {
            ["seq-1", "seq-2"]
                .iter()
                .all(|name| node(status, name).reason == Reason::ExecutionLag && !node(status, name).healthy)
        })
        .await;
    let stopped = crash_the_leaders_op_geth_until_leaderless(&harness).await;
    let status = harness.status().await;
    assert!(
        ["seq-1", "seq-2"].iter().all(|name| node(&status, name).unsafe_head == Some(stopped)),
        "the followers' op-nodes hold the stopped hash: {status:#?}"
    );

    // The lower-priority follower recovers first: it is the one started.
    harness.sim.heal("seq-2", Some(FaultKind::ExecutionLag)).expect("heal seq-2");
    harness.wait_for_leader("seq-2", WAIT).await;
    assert_eq!(started_head(&harness.ledger(), "seq-2"), Some(stopped));
    assert_steps_in_order(
        &harness.events().await,
        &[(EventKind::Leaderless, ""), (EventKind::CaughtUp, "seq-2"), (EventKind::Started, "seq-2")],
    );
    harness.wait_for_blocks(5, WAIT).await;
    harness.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_restarted_during_a_catch_up_continues_its_countdown_instead_of_starting_a_new_one() {
    let mut harness = Harness::start_tuned(
        SimConfig::uniform(1, 3, BLOCK_TIME_MS),
        "",
        &[("failover.catch_up_timeout_ms", "3000")],
    )
    .await;
    harness.wait_for_leader("seq-0", WAIT).await;
    harness.wait_for_blocks(3, WAIT).await;
    harness.partition_the_followers_away().await;
    harness.sim.fault("seq-0", FaultKind::Stall, FaultParams::default()).expect("stall");
    let stopped = harness.wait_for_event(EventKind::Stopped, Some("seq-0"), WAIT).await;
    harness.sim.heal("seq-0", Some(FaultKind::Stall)).expect("heal stall");
    // Half-way through the countdown, the coordinator restarts (another replica taking over is
    // the same: it reads the countdown from the state).
    wait_until("half the catch-up timeout", WAIT, || async {
        (unix_ms() >= stopped.at_unix_ms + 1500).then_some(())
    })
    .await;
    harness.restart_coordinator().await;
    let timeout = harness.wait_for_event(EventKind::CatchUpTimeout, Some("seq-0"), WAIT).await;
    // A fresh countdown would end 3 s after the restart (1.5 s + 3 s after the stop).
    assert!(
        timeout.at_unix_ms < stopped.at_unix_ms + 4000,
        "catch-up gave up {} ms after the stop: the restart granted a fresh timeout",
        timeout.at_unix_ms - stopped.at_unix_ms
    );
    harness.wait_for_leader("seq-0", WAIT).await;
    harness.sim.partition(&[]).expect("heal partition");
    harness.assert_safe();
}
