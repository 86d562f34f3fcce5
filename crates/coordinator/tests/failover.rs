//! Fail-over scenarios against a simulated 3-node chain over real loopback HTTP. Every test ends
//! by checking ground truth: no re-org of the unsafe chain, no double sequencing.

mod common;

use common::Harness;
use opc_wire::sim::{FaultKind, FaultParams};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

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
