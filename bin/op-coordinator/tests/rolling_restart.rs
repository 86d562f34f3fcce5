//! Rolling restarts of a replica cluster: SIGTERM on the acting replica, as a supervisor restarting
//! it for an upgrade sends, hands the acting role to another replica before the process exits,
//! instead of leaving the cluster without an acting replica until the others elect one.
//!
//! Three `op-coordinator run` replica processes from one config file watch a simulated chain; the
//! simulator's ledger is the ground truth that no fail-over of the sequencer happened meanwhile.

use op_sim::Simulator;
use op_sim::api::LedgerEntry;
use opc_test_support::{BLOCK_TIME_MS, NO_METRICS, PROCESS_WAIT, ReplicaProcess, replica, stopped_chain};
use std::{fmt::Write as _, sync::Arc, time::Duration};
use tokio::time::Instant;

const BINARY: &str = env!("CARGO_BIN_EXE_op-coordinator");
const CHAIN: &str = "devnet";
const IDS: [u64; 3] = [1, 2, 3];
/// How often the test looks at the replicas while one shuts down: finer than the hand-over.
const POLL: Duration = Duration::from_millis(5);

/// Raft timings slower than `tests/replicas.rs`, so that a loaded 2-core machine still confirms a
/// new leader within the hand-over's deadline. Without a hand-over, the others elect a leader
/// `election_timeout_max_ms + election_timeout_min_ms` (1.7 s) after the last heartbeat at best.
/// The operator's transfer deadline is long on purpose: a shutdown must not wait for it.
const RAFT_TIMINGS: &str = "heartbeat_interval_ms = 150\nelection_timeout_min_ms = 700\n\
                            election_timeout_max_ms = 1000\nrpc_timeout_ms = 1000\n\
                            transfer_timeout_ms = 8000\nfault_injection = true\n";

/// The hand-over's own deadline at [`RAFT_TIMINGS`]: `1000 + 700 + 1000` ms.
const HANDOVER_WITHIN: Duration = Duration::from_millis(2700);

/// Health and fail-over settings patient enough that a loaded machine's slow probes neither fail
/// the sequencer over nor make the acting replica hand over as blind before the test begins.
const SETTINGS: &str = "[health]\ninterval_ms = 50\nprobe_timeout_ms = 500\nfailure_threshold = 3\n\
                        unsafe_stall_ms = 3000\n\n[failover]\nrpc_timeout_ms = 1000\n\
                        catch_up_timeout_ms = 3000\nchain_liveness_window_ms = 3000\n";

struct Cluster {
    sim: Arc<Simulator>,
    _dir: tempfile::TempDir,
    replicas: Vec<ReplicaProcess>,
}

impl Cluster {
    async fn start() -> Self {
        let sim = Arc::new(Simulator::start(stopped_chain()).await.expect("simulator starts"));
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("coordinator.toml");
        let mut replicas: Vec<ReplicaProcess> =
            IDS.iter().map(|id| ReplicaProcess::new(BINARY, *id, config.clone(), dir.path())).collect();
        // No metrics listener: three replicas on one host would fight over its default port.
        let mut text = format!(
            "data_dir = {:?}\n{NO_METRICS}\n{SETTINGS}\n[chains.{CHAIN}]\nblock_time_ms = {BLOCK_TIME_MS}\n",
            dir.path().join("data").display().to_string(),
        );
        for node in sim.nodes() {
            let _ = writeln!(
                text,
                "[chains.{CHAIN}.sequencers.{}]\nop_node_url = \"{}\"\nop_geth_url = \"{}\"\n",
                node.name, node.op_node_url, node.op_geth_url
            );
        }
        let _ = writeln!(text, "[cluster]\nid = 1\n{RAFT_TIMINGS}");
        for replica in &replicas {
            let _ = writeln!(
                text,
                "[[cluster.replicas]]\nid = {}\nraft_addr = \"{}\"\napi_addr = \"{}\"\n",
                replica.id, replica.raft_addr, replica.api_addr
            );
        }
        std::fs::write(&config, text).expect("write config");
        for replica in &mut replicas {
            replica.spawn();
        }
        Self { sim, _dir: dir, replicas }
    }

    fn replica(&self, id: u64) -> &ReplicaProcess {
        self.replicas.iter().find(|replica| replica.id == id).expect("a replica with this id")
    }

    fn replica_mut(&mut self, id: u64) -> &mut ReplicaProcess {
        self.replicas.iter_mut().find(|replica| replica.id == id).expect("a replica with this id")
    }

    fn active_nodes(&self) -> Vec<String> {
        self.sim.nodes().into_iter().filter(|node| node.active).map(|node| node.name).collect()
    }

    fn diagnostics(&self) -> String {
        replica::diagnostics(&self.replicas, &self.sim)
    }

    async fn wait_for<T>(&self, what: &str, probe: impl AsyncFnMut() -> (Option<T>, String)) -> T {
        replica::wait_for_replicas(&self.replicas, &self.sim, what, probe).await
    }

    /// The acting replica and the sequencer, once every replica in `among` names the same leader
    /// replica acting alone and the same leader sequencer of a steady chain, and the simulator
    /// agrees that sequencer is the only active node.
    async fn wait_until_settled(&self, among: &[u64]) -> (u64, String) {
        self.wait_for("one acting replica and one sequencer that every replica names", async || {
            let mut infos = Vec::new();
            let mut statuses = Vec::new();
            for id in among {
                let replica = self.replica(*id);
                match (replica.membership().await, replica.status().await) {
                    (Ok(info), Ok(status)) => {
                        infos.push(info);
                        statuses.push(status);
                    }
                    (Err(err), _) | (_, Err(err)) => return (None, format!("replica {id}: {err}")),
                }
            }
            let active = self.active_nodes();
            let observed = format!(
                "{:?}\nactive (ground truth) {active:?}",
                infos
                    .iter()
                    .map(|info| (info.replica, info.acting, info.leader, info.term))
                    .collect::<Vec<_>>()
            );
            let acting: Vec<u64> =
                infos.iter().filter(|info| info.acting).filter_map(|info| info.replica).collect();
            let leader = infos[0].leader;
            let agreed = acting.len() == 1
                && leader == acting.first().copied()
                && infos.iter().all(|info| info.leader == leader);
            let sequencer = statuses[0].leader.clone();
            let steady = statuses.iter().all(|status| status.leader == sequencer && status.phase == "steady");
            let found = match (agreed && steady, sequencer) {
                (true, Some(sequencer)) if active == [sequencer.clone()] => Some((acting[0], sequencer)),
                _ => None,
            };
            (found, observed)
        })
        .await
    }

    /// The replica among `among` that reports acting, if any.
    async fn acting_among(&self, among: &[u64]) -> Option<u64> {
        for id in among {
            if let Ok(info) = self.replica(*id).membership().await
                && info.acting
            {
                return Some(*id);
            }
        }
        None
    }

    /// Every activation or deactivation of a sequencer since ledger entry `from` (ground truth).
    fn sequencer_changes_since(&self, from: usize) -> Vec<LedgerEntry> {
        self.sim
            .ledger_entries(from)
            .into_iter()
            .filter(|entry| matches!(entry, LedgerEntry::Activated { .. } | LedgerEntry::Deactivated { .. }))
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for replica in &mut self.replicas {
            replica.kill();
        }
        self.sim.shutdown();
    }
}

/// What the test saw while the acting replica shut down.
struct Shutdown {
    /// The replica seen acting next, and when (from the signal).
    acting: Option<(u64, Duration)>,
    /// When the signalled process had exited (from the signal), and whether it exited with 0.
    exited: Option<(Duration, bool)>,
}

/// SIGTERMs `leader` and watches, every [`POLL`], until it has exited and another replica acts.
async fn terminate_and_watch(cluster: &mut Cluster, leader: u64) -> Shutdown {
    let others: Vec<u64> = IDS.into_iter().filter(|id| *id != leader).collect();
    let signalled = Instant::now();
    cluster.replica(leader).terminate();
    let mut seen = Shutdown { acting: None, exited: None };
    while signalled.elapsed() < PROCESS_WAIT && (seen.acting.is_none() || seen.exited.is_none()) {
        if seen.acting.is_none()
            && let Some(id) = cluster.acting_among(&others).await
        {
            seen.acting = Some((id, signalled.elapsed()));
        }
        if seen.exited.is_none()
            && let Some(status) = cluster.replica_mut(leader).exited()
        {
            seen.exited = Some((signalled.elapsed(), status.success()));
            // A peer that began acting between the look above and the exit acted first.
            if seen.acting.is_none()
                && let Some(id) = cluster.acting_among(&others).await
            {
                seen.acting = Some((id, signalled.elapsed()));
            }
        }
        tokio::time::sleep(POLL).await;
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_on_the_acting_replica_hands_the_acting_role_to_a_peer_that_acts_before_it_exits_without_a_sequencer_failover()
 {
    let mut cluster = Cluster::start().await;
    let (leader, sequencer) = cluster.wait_until_settled(&IDS).await;
    let epoch = cluster.replica(leader).status().await.expect("status").epoch;
    let ledger_from = cluster.sim.ledger().len();

    let seen = terminate_and_watch(&mut cluster, leader).await;
    let diagnostics = cluster.diagnostics();
    let (exited_after, success) = seen.exited.unwrap_or_else(|| {
        panic!("replica {leader} still runs {PROCESS_WAIT:?} after SIGTERM\n{diagnostics}")
    });
    assert!(success, "replica {leader} exited with an error\n{diagnostics}");
    let (next, acting_after) = seen
        .acting
        .unwrap_or_else(|| panic!("no other replica acts {PROCESS_WAIT:?} after SIGTERM\n{diagnostics}"));
    println!(
        "SIGTERM -> replica {next} acting: {acting_after:?}; -> replica {leader} exited: {exited_after:?}"
    );
    assert!(
        acting_after <= exited_after,
        "replica {next} acted only {acting_after:?} after the signal, after replica {leader} had exited \
         ({exited_after:?}): the cluster had no acting replica in between\n{diagnostics}"
    );
    let log = std::fs::read_to_string(&cluster.replica(leader).log).unwrap_or_default();
    assert!(
        log.contains(&format!("replica {next} acts now: leaving the cluster without an election")),
        "{log}"
    );

    // The sequencer never noticed: same leader, same epoch, no (de)activation (ground truth).
    let status = cluster.replica(next).status().await.expect("status of the new acting replica");
    assert_eq!(status.leader.as_deref(), Some(sequencer.as_str()), "{status:#?}");
    assert_eq!(status.epoch, epoch, "no fail-over: {status:#?}");
    assert_eq!(cluster.active_nodes(), std::slice::from_ref(&sequencer));
    assert_eq!(cluster.sequencer_changes_since(ledger_from), [], "no sequencer was stopped or started");
    let report = cluster.sim.invariants().remove(0);
    assert!(report.is_safe(), "safety violated: {report:#?}");

    // The restarted replica rejoins as a follower; the acting role stays where it went.
    cluster.replica_mut(leader).kill();
    cluster.replica_mut(leader).spawn();
    let (acting, still) = cluster.wait_until_settled(&IDS).await;
    assert_eq!((acting, still), (next, sequencer));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_over_no_peer_can_win_ends_at_its_deadline_then_the_replica_exits_and_the_others_elect_after_heal()
 {
    let mut cluster = Cluster::start().await;
    let (leader, sequencer) = cluster.wait_until_settled(&IDS).await;
    let others: Vec<u64> = IDS.into_iter().filter(|id| *id != leader).collect();
    let ledger_from = cluster.sim.ledger().len();
    // The followers still take the leader's appends, but their own messages (votes) are lost:
    // a transfer target campaigns and never wins, as in openraft#2088.
    for id in &others {
        cluster.replica(*id).drop_messages_to(&IDS).await;
    }

    let seen = terminate_and_watch_exit(&mut cluster, leader).await;
    let diagnostics = cluster.diagnostics();
    let (exited_after, success) = seen.unwrap_or_else(|| {
        panic!("replica {leader} still runs {PROCESS_WAIT:?} after SIGTERM\n{diagnostics}")
    });
    assert!(success, "replica {leader} exited with an error\n{diagnostics}");
    // Bounded by the hand-over's own deadline, not by transfer_timeout_ms (8 s here).
    assert!(
        exited_after < HANDOVER_WITHIN + Duration::from_secs(3),
        "replica {leader} took {exited_after:?} to exit\n{diagnostics}"
    );
    let log = std::fs::read_to_string(&cluster.replica(leader).log).unwrap_or_default();
    assert!(log.contains("no peer took the leadership in time"), "{log}");

    for id in &others {
        cluster.replica(*id).heal_messages().await;
    }
    let (next, still) = cluster.wait_until_settled(&others).await;
    assert!(others.contains(&next));
    assert_eq!(still, sequencer, "the sequencer is unchanged");
    assert_eq!(cluster.sequencer_changes_since(ledger_from), [], "no sequencer was stopped or started");
    let report = cluster.sim.invariants().remove(0);
    assert!(report.is_safe(), "safety violated: {report:#?}");
}

/// SIGTERMs `leader` and waits until it exits: how long that took and whether with 0.
async fn terminate_and_watch_exit(cluster: &mut Cluster, leader: u64) -> Option<(Duration, bool)> {
    let signalled = Instant::now();
    cluster.replica(leader).terminate();
    let child = cluster.replica_mut(leader).child.as_mut().expect("running");
    let status = child.exit_within(PROCESS_WAIT).await?;
    Some((signalled.elapsed(), status.success()))
}
