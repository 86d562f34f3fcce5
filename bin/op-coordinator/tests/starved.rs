//! A coordinator starved of CPU replaces no healthy leader, says that it is late, and still
//! replaces a leader that really crashed.
//!
//! The starvation is real and outside the coordinator: its process is stopped (SIGSTOP) for
//! 150 ms out of every 200 ms, as a container throttled by its CPU quota is, or a process on a
//! saturated host that the kernel does not schedule. Its timers then fire 140 ms late, beyond
//! half its 100 ms probe deadline. The simulated chain runs in this test process and is never
//! stopped; its ledger is the ground truth of who sequenced.
//!
//! What this does not show: that the coordinator would have replaced the leader without its
//! lateness rule. A process stopped and resumed reads the replies that arrived meanwhile before
//! it looks at the timers that expired, so this starvation alone makes no probe fail. The rule is
//! shown by the engine's table tests (`engine/timing.rs`), on verdicts that a saturated host does
//! produce (replies queued behind the coordinator's own work, nodes on the same starved host).

use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};
use op_sim::{
    Simulator,
    api::{FaultKind, FaultParams, LedgerEntry},
};
use opc_test_support::{
    BLOCK_TIME_MS, LoggedChild, NO_METRICS, PROCESS_WAIT, admin_client_with_timeout, fast_settings, hermetic,
    stopped_chain, wait_for,
};
use opc_wire::coordinator::{ChainStatus, CoordinatorApiClient as _};
use std::{fmt::Write as _, sync::Arc, time::Duration};
use tokio_util::sync::CancellationToken;

const BINARY: &str = env!("CARGO_BIN_EXE_op-coordinator");
const CHAIN: &str = "devnet";

/// How long the process is stopped, then let run, in each cycle of the starvation.
const STOPPED: Duration = Duration::from_millis(150);
const RUNNING: Duration = Duration::from_millis(50);

/// How long a test keeps the coordinator starved: dozens of cycles, and many times the time it
/// takes to fail over a leader that times out when the coordinator is on time.
const STARVED_FOR: Duration = Duration::from_secs(6);

/// A simulated chain and one `op-coordinator run` process watching it.
struct Setup {
    sim: Arc<Simulator>,
    _dir: tempfile::TempDir,
    rpc_addr: String,
    coordinator: LoggedChild,
}

impl Setup {
    async fn start() -> Self {
        let sim = Arc::new(Simulator::start(stopped_chain()).await.expect("simulator starts"));
        let dir = tempfile::tempdir().expect("temp dir");
        let rpc_addr = opc_test_support::free_addr();
        let mut text = format!(
            "data_dir = {:?}\n{NO_METRICS}\n{}\n[chains.{CHAIN}]\nblock_time_ms = {BLOCK_TIME_MS}\n",
            dir.path().join("data").display().to_string(),
            fast_settings(1000)
        );
        for node in sim.nodes() {
            let _ = writeln!(
                text,
                "[chains.{CHAIN}.sequencers.{}]\nop_node_url = \"{}\"\nop_geth_url = \"{}\"\n",
                node.name, node.op_node_url, node.op_geth_url
            );
        }
        let config = dir.path().join("coordinator.toml");
        std::fs::write(&config, text).expect("write config");
        let mut command = hermetic(BINARY, &["OP_COORDINATOR_"]);
        command.arg("run").arg("--config").arg(&config).args(["--rpc-listen", &rpc_addr]);
        let coordinator = LoggedChild::spawn(&mut command, &dir.path().join("coordinator.log"));
        Self { sim, _dir: dir, rpc_addr, coordinator }
    }

    fn active_nodes(&self) -> Vec<String> {
        self.sim.nodes().into_iter().filter(|node| node.active).map(|node| node.name).collect()
    }

    /// Sequencers activated or deactivated since ledger entry `from`: `(node, activated)`.
    fn changes_since(&self, from: usize) -> Vec<(String, bool)> {
        self.sim
            .ledger_entries(from)
            .into_iter()
            .filter_map(|entry| match entry {
                LedgerEntry::Activated { node, .. } => Some((node, true)),
                LedgerEntry::Deactivated { node, .. } => Some((node, false)),
                _ => None,
            })
            .collect()
    }

    /// The one sequencer, once the coordinator has elected it and it has sealed a few blocks.
    async fn wait_for_a_sequencer(&self) -> String {
        let sealed_before = self.sim.invariants().remove(0).blocks_sealed;
        wait_for("one sequencer producing blocks")
            .timeout(PROCESS_WAIT)
            .until_or(
                async || {
                    let active = self.active_nodes();
                    let sealed = self.sim.invariants().remove(0).blocks_sealed;
                    let one = (active.len() == 1 && sealed >= sealed_before + 5).then(|| active[0].clone());
                    (one, format!("active {active:?}, {sealed} blocks sealed"))
                },
                || self.coordinator.log_tail(40),
            )
            .await
    }

    /// The chain's status; a starved coordinator answers in one of its short runs.
    async fn status(&self) -> ChainStatus {
        let client = admin_client_with_timeout(&self.rpc_addr, PROCESS_WAIT);
        client.status(Some(CHAIN.into())).await.expect("status").remove(0)
    }

    /// Stops and continues the coordinator's process in cycles until the returned token is
    /// cancelled; it is left running then.
    fn starve(&self) -> (CancellationToken, tokio::task::JoinHandle<usize>) {
        let pid = Pid::from_raw(i32::try_from(self.coordinator.id()).expect("a pid fits i32"));
        let cancel = CancellationToken::new();
        let done = cancel.clone();
        let task = tokio::spawn(async move {
            let mut cycles = 0;
            while !done.is_cancelled() {
                kill(pid, Signal::SIGSTOP).expect("SIGSTOP the coordinator");
                tokio::time::sleep(STOPPED).await;
                kill(pid, Signal::SIGCONT).expect("SIGCONT the coordinator");
                tokio::time::sleep(RUNNING).await;
                cycles += 1;
            }
            cycles
        });
        (cancel, task)
    }
}

/// SIGCONT on drop, so a failing test never leaves a stopped process behind.
struct Continue(Pid);

impl Drop for Continue {
    fn drop(&mut self) {
        let _ = kill(self.0, Signal::SIGCONT);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_starved_of_cpu_replaces_no_healthy_leader_and_says_it_is_late() {
    let setup = Setup::start().await;
    let leader = setup.wait_for_a_sequencer().await;
    let from = setup.sim.ledger_entries(0).len();
    let _continue = Continue(Pid::from_raw(i32::try_from(setup.coordinator.id()).expect("pid")));

    let (stop_starving, starver) = setup.starve();
    tokio::time::sleep(STARVED_FOR / 2).await;
    // Answered in one of its short runs: the status says it is late, and why that matters.
    let late = setup.status().await.timing_unreliable;
    tokio::time::sleep(STARVED_FOR / 2).await;
    stop_starving.cancel();
    let cycles = starver.await.expect("starver");

    let changes = setup.changes_since(from);
    assert!(
        changes.is_empty(),
        "a healthy leader was replaced while the coordinator was starved ({cycles} cycles): {changes:?}\n{}",
        setup.coordinator.log_tail(60)
    );
    assert_eq!(setup.active_nodes(), [leader], "ground truth: the same leader still sequences");
    let late = late.unwrap_or_else(|| {
        panic!("status does not say the coordinator is late\n{}", setup.coordinator.log_tail(40))
    });
    assert!(late.contains("ms late") && late.contains("no leader is deposed"), "{late}");
    assert!(
        setup.coordinator.log_text().contains("timer fired late"),
        "the log tells the lateness:\n{}",
        setup.coordinator.log_tail(60)
    );
    // On time again: once its lateness is older than the span it looks back, it says nothing.
    wait_for("the status to stop saying the coordinator is late")
        .timeout(PROCESS_WAIT)
        .until_or(
            async || {
                let late = setup.status().await.timing_unreliable;
                (late.is_none().then_some(()), format!("{late:?}"))
            },
            || setup.coordinator.log_tail(20),
        )
        .await;
    assert!(setup.changes_since(from).is_empty(), "nothing was decided late either");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_crashes_while_the_coordinator_is_starved_is_still_replaced() {
    let setup = Setup::start().await;
    let leader = setup.wait_for_a_sequencer().await;
    let _continue = Continue(Pid::from_raw(i32::try_from(setup.coordinator.id()).expect("pid")));

    let (stop_starving, starver) = setup.starve();
    // Starved long enough that the coordinator knows it is late before the leader goes.
    tokio::time::sleep(Duration::from_secs(1)).await;
    setup.sim.fault(&leader, FaultKind::Crash, FaultParams::default()).expect("crash the leader");
    // A refused connection is no timing evidence: the fail-over goes ahead while starved.
    let successor = wait_for("another sequencer producing blocks while the coordinator is starved")
        .timeout(PROCESS_WAIT)
        .until_or(
            async || {
                let active = setup.active_nodes();
                let next = active.iter().find(|node| **node != leader).cloned();
                (next, format!("active {active:?}"))
            },
            || setup.coordinator.log_tail(60),
        )
        .await;
    stop_starving.cancel();
    starver.await.expect("starver");
    let report = setup.sim.invariants().remove(0);
    assert!(report.is_safe(), "fail-over under starvation was unsafe: {report:#?}");
    assert_ne!(successor, leader);
}
