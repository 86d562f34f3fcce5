//! Coordinator replicas as an operator runs them: three `op-coordinator run` processes started
//! from one config file (`--replica-id N`), talking Raft over loopback, watching a simulated chain
//! whose nodes all start with their sequencer stopped, so the coordinator has to elect one.
//!
//! Each test SIGKILLs, partitions (the Raft server's `POST /fault`), restarts, corrupts or adds
//! replicas, then checks what the replicas say (`coordinator_clusterMembership`,
//! `coordinator_status`) and, for safety, the simulator's ground truth: no unsafe re-org and no
//! two sequencers at once, whatever the replicas believe.
//!
//! The simulator runs in the test process; the replicas are child processes killed on drop, each
//! logging to a file whose tail is printed when a wait times out.

use op_sim::Simulator;
use op_sim::api::{ChainInvariants, FaultKind, FaultParams, LedgerEntry};
use opc_test_support::{
    BLOCK_TIME_MS, LoggedChild, NO_METRICS, PROCESS_WAIT, ReplicaProcess, fast_settings, replica,
    stopped_chain, unix_ms,
};
use opc_wire::coordinator::{ClusterInfo, CoordinatorApiClient};
use std::{
    fmt::Write as _,
    path::PathBuf,
    process::{Child, Stdio},
    sync::Arc,
};
use tokio::time::Instant;

const BINARY: &str = env!("CARGO_BIN_EXE_op-coordinator");
const CHAIN: &str = "devnet";
const IDS: [u64; 3] = [1, 2, 3];

/// Raft timings of the test clusters: an election within about a second of losing the leader.
const RAFT_TIMINGS: &str = "heartbeat_interval_ms = 50\nelection_timeout_min_ms = 300\n\
                            election_timeout_max_ms = 500\nfault_injection = true\n";

/// What a test needs of the chain and the coordinator.
#[derive(Debug, Clone, Copy)]
struct Setup {
    /// Sequencers that are watched but never elected (`candidate = false`).
    watch_only: &'static [&'static str],
    /// `failover.catch_up_timeout_ms`.
    catch_up_timeout_ms: u64,
}

impl Default for Setup {
    fn default() -> Self {
        Self { watch_only: &[], catch_up_timeout_ms: 1000 }
    }
}

/// True for the errors of a change sent while the cluster is between leaders (the messages of
/// `crates/coordinator/src/api.rs`, `actor.rs` and `opc_cluster::ClusterError::NotLeader`).
fn transient(error: &str) -> bool {
    ["not the Raft leader", "not the leader", "lost Raft leadership", "forwarding to the leader replica"]
        .iter()
        .any(|marker| error.contains(marker))
}

/// A simulated chain and three replica processes (not started until [`Cluster::start_all`]).
struct Cluster {
    sim: Arc<Simulator>,
    dir: tempfile::TempDir,
    setup: Setup,
    replicas: Vec<ReplicaProcess>,
}

impl Cluster {
    async fn new(setup: Setup) -> Self {
        let sim = Arc::new(Simulator::start(stopped_chain()).await.expect("simulator starts"));
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("coordinator.toml");
        let mut replicas: Vec<ReplicaProcess> =
            IDS.iter().map(|id| ReplicaProcess::new(BINARY, *id, config.clone(), dir.path())).collect();
        let mut cluster = Self { sim, dir, setup, replicas: Vec::new() };
        std::fs::write(&config, cluster.config_text(&replicas, true)).expect("write config");
        cluster.replicas.append(&mut replicas);
        cluster
    }

    /// The one config file of the cluster; `bootstrap = false` for a replica that joins later.
    fn config_text(&self, replicas: &[ReplicaProcess], bootstrap: bool) -> String {
        // No metrics listener: three replicas on one host would fight over its default port.
        let mut text = format!(
            "data_dir = {:?}\n{NO_METRICS}\n{}\n",
            self.data_dir().display().to_string(),
            fast_settings(self.setup.catch_up_timeout_ms)
        );
        let _ = writeln!(text, "[chains.{CHAIN}]\nblock_time_ms = {BLOCK_TIME_MS}\n");
        let nodes = self.sim.nodes();
        for (position, node) in nodes.iter().enumerate() {
            // seq-0 is preferred, then seq-1, ...
            let _ = writeln!(
                text,
                "[chains.{CHAIN}.sequencers.{}]\nop_node_url = \"{}\"\nop_geth_url = \"{}\"\npriority = {}\n\
                 candidate = {}\n",
                node.name,
                node.op_node_url,
                node.op_geth_url,
                nodes.len() - position,
                !self.setup.watch_only.contains(&node.name.as_str()),
            );
        }
        let _ = writeln!(text, "[cluster]\nid = 1\nbootstrap = {bootstrap}\n{RAFT_TIMINGS}");
        for replica in replicas {
            let _ = writeln!(
                text,
                "[[cluster.replicas]]\nid = {}\nraft_addr = \"{}\"\napi_addr = \"{}\"\n",
                replica.id, replica.raft_addr, replica.api_addr
            );
        }
        text
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn start_all(&mut self) {
        for replica in &mut self.replicas {
            replica.spawn();
        }
    }

    fn replica(&self, id: u64) -> &ReplicaProcess {
        self.replicas.iter().find(|replica| replica.id == id).expect("a replica with this id")
    }

    fn replica_mut(&mut self, id: u64) -> &mut ReplicaProcess {
        self.replicas.iter_mut().find(|replica| replica.id == id).expect("a replica with this id")
    }

    fn invariants(&self) -> ChainInvariants {
        self.sim.invariants().remove(0)
    }

    fn active_nodes(&self) -> Vec<String> {
        self.sim.nodes().into_iter().filter(|node| node.active).map(|node| node.name).collect()
    }

    /// The hash of the last block sealed (ground truth).
    fn tip(&self) -> Option<alloy_primitives::B256> {
        self.sim.ledger_entries(0).iter().rev().find_map(|entry| match entry {
            LedgerEntry::Block { hash, .. } => Some(*hash),
            _ => None,
        })
    }

    /// Every activation of a sequencer so far (ground truth): `(node, head it started on)`.
    fn activations(&self) -> Vec<(String, LedgerEntry)> {
        self.activations_since(0)
    }

    /// Every activation since ledger entry `from` (ground truth): `(node, entry)`.
    fn activations_since(&self, from: usize) -> Vec<(String, LedgerEntry)> {
        self.sim
            .ledger_entries(from)
            .into_iter()
            .filter_map(|entry| match &entry {
                LedgerEntry::Activated { node, .. } => Some((node.clone(), entry.clone())),
                _ => None,
            })
            .collect()
    }

    /// The most sequencers active at the same time over the whole run, replaying the ledger.
    fn most_active_at_once(&self) -> usize {
        let mut active = std::collections::BTreeSet::new();
        let mut most = 0;
        for entry in self.sim.ledger_entries(0) {
            match entry {
                LedgerEntry::Activated { node, .. } => {
                    active.insert(node);
                }
                LedgerEntry::Deactivated { node, .. } => {
                    active.remove(&node);
                }
                _ => {}
            }
            most = most.max(active.len());
        }
        most
    }

    /// No unsafe re-org and no double sequencing, per the simulator's ledger.
    fn assert_safe(&self) {
        let report = self.invariants();
        assert!(report.is_safe(), "safety violated: {report:#?}\nactivations: {:#?}", self.activations());
    }

    fn diagnostics(&self) -> String {
        replica::diagnostics(&self.replicas, &self.sim)
    }

    async fn wait_for<T>(&self, what: &str, probe: impl AsyncFnMut() -> (Option<T>, String)) -> T {
        replica::wait_for_replicas(&self.replicas, &self.sim, what, probe).await
    }

    /// The memberships `among` report, or the first error.
    async fn memberships(&self, among: &[u64]) -> Result<Vec<ClusterInfo>, String> {
        let mut infos = Vec::new();
        for id in among {
            infos.push(self.replica(*id).membership().await.map_err(|err| format!("replica {id}: {err}"))?);
        }
        Ok(infos)
    }

    /// The replica that every replica in `among` names as leader, once it is the only one of them
    /// acting and they all agree on the term.
    async fn wait_for_acting_leader(&self, among: &[u64]) -> u64 {
        self.wait_for(&format!("one acting leader among replicas {among:?}"), async || {
            let infos = match self.memberships(among).await {
                Ok(infos) => infos,
                Err(err) => return (None, err),
            };
            let observed = format!("{infos:#?}");
            let acting: Vec<u64> =
                infos.iter().filter(|info| info.acting).filter_map(|info| info.replica).collect();
            let Some(leader) = infos.first().and_then(|info| info.leader) else { return (None, observed) };
            let agreed = infos.iter().all(|info| info.leader == Some(leader) && info.term == infos[0].term);
            ((acting == [leader] && agreed).then_some(leader), observed)
        })
        .await
    }

    /// The sequencer every replica in `among` reports leading a steady chain, once the simulator
    /// agrees it is the only active node and it has sealed a few blocks.
    async fn wait_for_sequencer(&self, among: &[u64]) -> String {
        let sealed_before = self.invariants().blocks_sealed;
        self.wait_for("one sequencer, reported by every replica, producing blocks", async || {
            let mut statuses = Vec::new();
            for id in among {
                match self.replica(*id).status().await {
                    Ok(status) => statuses.push(status),
                    Err(err) => return (None, format!("replica {id}: {err}")),
                }
            }
            let active = self.active_nodes();
            let sealed = self.invariants().blocks_sealed;
            let observed = format!(
                "active (ground truth) {active:?}, sealed {sealed}\n{:#?}",
                statuses.iter().map(|s| (&s.leader, &s.phase, s.epoch, s.paused)).collect::<Vec<_>>()
            );
            let Some(leader) = statuses.first().and_then(|status| status.leader.clone()) else {
                return (None, observed);
            };
            let agreed = statuses
                .iter()
                .all(|status| status.leader.as_ref() == Some(&leader) && status.phase == "steady");
            let producing = active == [leader.clone()] && sealed >= sealed_before + 3;
            ((agreed && producing).then_some(leader), observed)
        })
        .await
    }

    /// A change (a mutating admin call), retried while it fails only because the cluster is
    /// between leaders, as the error asks: on a loaded machine a leader's lease can lapse for a
    /// moment. Any other error fails the test.
    async fn change<T>(&self, what: &str, mut call: impl AsyncFnMut() -> Result<T, String>) -> T {
        self.wait_for(what, async || match call().await {
            Ok(value) => (Some(value), String::new()),
            Err(err) if transient(&err) => (None, err),
            Err(err) => panic!("{what}: {err}"),
        })
        .await
    }

    /// `ctl` with a change, retried like [`Cluster::change`]; the output of the last attempt.
    async fn ctl_change(&self, id: u64, args: &[&str]) -> std::process::Output {
        self.wait_for(&format!("ctl {args:?} through replica {id}"), async || {
            let output = self.ctl(id, args).await;
            let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
            let retry = output.status.code() == Some(1) && transient(&stderr);
            ((!retry).then_some(output), stderr)
        })
        .await
    }

    /// `op-coordinator ctl --rpc <replica id's API> ARGS`.
    async fn ctl(&self, id: u64, args: &[&str]) -> std::process::Output {
        tokio::process::Command::new(BINARY)
            .args(["ctl", "--rpc", &format!("http://{}", self.replica(id).api_addr)])
            .args(args)
            .env_remove("OP_COORDINATOR_RPC")
            .env_remove("OP_COORDINATOR_JWT_SECRET_FILE")
            .output()
            .await
            .expect("run op-coordinator ctl")
    }

    /// Waits until the chain has sealed `blocks` more blocks than now (ground truth).
    async fn wait_for_blocks(&self, blocks: u64) {
        let start = self.invariants().blocks_sealed;
        self.wait_for(&format!("{blocks} more blocks"), async || {
            let report = self.invariants();
            let observed = format!("{report}; active {:?}", self.active_nodes());
            ((report.blocks_sealed >= start + blocks).then_some(()), observed)
        })
        .await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_started_at_the_same_instant_form_one_acting_leader_and_elect_one_sequencer() {
    let mut cluster = Cluster::new(Setup::default()).await;
    // Three threads released together spawn the three processes within microseconds.
    let barrier = Arc::new(std::sync::Barrier::new(IDS.len()));
    let children: Vec<Child> = std::thread::scope(|scope| {
        let spawned: Vec<_> = cluster
            .replicas
            .iter()
            .map(|replica| {
                let (barrier, mut command) = (barrier.clone(), replica.command());
                let log = std::fs::File::create(&replica.log).expect("create log");
                scope.spawn(move || {
                    barrier.wait();
                    command
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(log)
                        .spawn()
                        .expect("spawn replica")
                })
            })
            .collect();
        spawned.into_iter().map(|thread| thread.join().expect("spawner thread")).collect()
    });
    for (replica, child) in cluster.replicas.iter_mut().zip(children) {
        replica.child = Some(LoggedChild::adopt(child, &replica.log));
    }

    let started = Instant::now();
    let leader = cluster.wait_for_acting_leader(&IDS).await;
    let formed = started.elapsed();
    let sequencer = cluster.wait_for_sequencer(&IDS).await;
    eprintln!(
        "replica {leader} acting after {formed:?}, {sequencer} producing after {:?}",
        started.elapsed()
    );
    // One sequencer was elected: never two active at once (a loaded machine may fail over later
    // on slow probes, which is not this test's business).
    assert_eq!(cluster.most_active_at_once(), 1, "{:#?}", cluster.activations());
    let infos = cluster.memberships(&IDS).await.expect("memberships");
    for info in &infos {
        let members: Vec<(u64, bool)> = info.replicas.iter().map(|r| (r.id, r.voter)).collect();
        assert_eq!(members, [(1, true), (2, true), (3, true)], "{infos:#?}");
        assert!(!info.membership_changing, "{info:#?}");
    }

    // `ctl status` against a follower shows the cluster above the chain and leads with the
    // acting replica (it exits 4 while anything is degraded, so wait for 0); `--json` carries
    // both.
    let follower = IDS.into_iter().find(|id| *id != leader).expect("a follower");
    let stdout = cluster
        .wait_for("ctl status to exit 0 with the cluster's acting leader on its first line", async || {
            let leader = cluster.replica(follower).membership().await.ok().and_then(|info| info.leader);
            let output = cluster.ctl(follower, &["status"]).await;
            let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
            let first = stdout.lines().next().unwrap_or_default();
            let shown = leader.is_some_and(|leader| {
                first.starts_with("cluster") && first.contains(&format!("leader {leader} (acting)"))
            });
            let observed = format!("exit {:?}, leader {leader:?}\n{stdout}", output.status.code());
            ((output.status.code() == Some(0) && shown).then_some(stdout), observed)
        })
        .await;
    eprintln!("ctl status against replica {follower}:\n{stdout}");
    assert!(stdout.contains("REPLICA") && stdout.contains(&cluster.replica(follower).raft_addr), "{stdout}");
    let chain_line = stdout.lines().position(|line| line.starts_with("chain ")).expect("a chain line");
    assert!(chain_line > 1, "the chains come after the cluster:\n{stdout}");
    let output = cluster.ctl(follower, &["--json", "status"]).await;
    let json: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("ctl --json status prints JSON");
    assert_eq!(json["cluster"]["replica"], follower, "{json:#}");
    assert!(json["cluster"]["leader"].is_u64(), "{json:#}");
    assert_eq!(json["cluster"]["replicas"].as_array().map(Vec::len), Some(3), "{json:#}");
    assert!(json["chains"][0]["leader"].is_string(), "{json:#}");
    cluster.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_acting_replica_mid_failover_lets_the_next_one_finish_it_at_the_same_stopped_hash() {
    // seq-2 never sequences but holds the chain's tip. The other candidate, the only one left once
    // the sequencer is gone, is cut off from gossip so it cannot reach the stopped hash: the
    // fail-over waits in catching_up as long as the test wants, which is when the acting replica
    // is killed.
    let mut cluster = Cluster::new(Setup { watch_only: &["seq-2"], catch_up_timeout_ms: 15_000 }).await;
    cluster.start_all();
    let first = cluster.wait_for_acting_leader(&IDS).await;
    // seq-0 is preferred, but a loaded machine may have judged it healthy a probe too late.
    let old = cluster.wait_for_sequencer(&IDS).await;
    let next_sequencer = if old == "seq-0" { "seq-1" } else { "seq-0" };

    cluster
        .sim
        .partition(&[vec![old.clone(), "seq-2".to_owned()], vec![next_sequencer.to_owned()]])
        .expect("partition");
    cluster.wait_for_blocks(3).await;
    let crashed_at_entry = cluster.sim.ledger().len();
    cluster.sim.fault(&old, FaultKind::Crash, FaultParams::default()).expect("crash the sequencer");

    // The estimate may first be a head seen before the last gossip arrived; the engine moves it
    // to the most advanced head any node holds, which is the chain's tip (ground truth).
    let stopped_hash = cluster
        .wait_for("the acting replica to commit catching_up at the chain's tip", async || {
            let status = cluster.replica(first).status().await;
            let tip = cluster.tip();
            let seq_2 =
                cluster.sim.nodes().into_iter().find(|node| node.name == "seq-2").map(|n| n.unsafe_head);
            let observed = format!("tip {tip:?}, seq-2 at {seq_2:?}\n{status:#?}");
            let found = status
                .ok()
                .filter(|status| status.phase == "catching_up" && status.stopped_hash == tip)
                .filter(|_| seq_2.map(|head| head.hash) == tip)
                .and_then(|status| status.stopped_hash);
            (found, observed)
        })
        .await;
    // The replica acting now (on a loaded machine not necessarily the first one) is killed.
    let first = cluster.wait_for_acting_leader(&IDS).await;
    assert_eq!(
        cluster.replica(first).admin.get_stopped_hash(None).await.expect("getStoppedHash"),
        Some(stopped_hash)
    );
    let killed_unix_ms = unix_ms();
    cluster.replica_mut(first).kill();
    let killed_at = Instant::now();

    let survivors: Vec<u64> = IDS.into_iter().filter(|id| *id != first).collect();
    let next = cluster.wait_for_acting_leader(&survivors).await;
    let resumed = cluster
        .wait_for("the new acting replica to record started_acting", async || {
            let events = cluster.replica(next).admin.events(None, Some(50), None, None).await;
            let observed = format!("{events:#?}");
            (
                events.ok().and_then(|events| {
                    events.into_iter().find(|event| {
                        event.kind == opc_wire::EventKind::StartedActing && event.at_unix_ms >= killed_unix_ms
                    })
                }),
                observed,
            )
        })
        .await;
    eprintln!(
        "replica {first} killed in catching_up at {stopped_hash}; replica {next} acting {:?} later: {}",
        killed_at.elapsed(),
        resumed.detail
    );
    assert!(resumed.detail.contains("from phase catching_up"), "{resumed:#?}");
    assert_eq!(cluster.active_nodes(), Vec::<String>::new(), "nobody sequenced while no replica acted");

    // Gossip heals: the candidate imports up to the stopped hash and the new acting replica
    // starts it there.
    cluster.sim.partition(&[]).expect("heal the partition");
    assert_eq!(cluster.wait_for_sequencer(&survivors).await, next_sequencer);
    for id in &survivors {
        let after = cluster.replica(*id).admin.get_stopped_hash(None).await.expect("getStoppedHash");
        assert_eq!(after, Some(stopped_hash), "replica {id} keeps the stopped hash");
    }
    let activations = cluster.activations_since(crashed_at_entry);
    let started: Vec<_> = activations.iter().filter(|(node, _)| node == next_sequencer).collect();
    assert!(
        matches!(started.as_slice(), [(_, LedgerEntry::Activated { head, .. })] if head.hash == stopped_hash),
        "{next_sequencer} started once, on the stopped hash {stopped_hash}: {activations:#?}"
    );
    cluster.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_replica_partitioned_from_the_others_stops_acting_the_majority_takes_over_and_it_follows_after_heal()
 {
    let mut cluster = Cluster::new(Setup::default()).await;
    cluster.start_all();
    let old = cluster.wait_for_acting_leader(&IDS).await;
    let sequencer = cluster.wait_for_sequencer(&IDS).await;
    let majority: Vec<u64> = IDS.into_iter().filter(|id| *id != old).collect();

    // Both directions: the old leader drops everything to the others, they drop everything to it.
    cluster.replica(old).drop_messages_to(&majority).await;
    for id in &majority {
        cluster.replica(*id).drop_messages_to(&[old]).await;
    }
    let partitioned_at = Instant::now();
    cluster
        .wait_for("the partitioned leader to stop acting", async || {
            let info = cluster.replica(old).membership().await;
            let observed = format!("{info:#?}");
            (info.ok().filter(|info| !info.acting).map(|_| ()), observed)
        })
        .await;
    let new = cluster.wait_for_acting_leader(&majority).await;
    eprintln!(
        "replica {old} partitioned: stopped acting; replica {new} acting {:?} after the partition",
        partitioned_at.elapsed()
    );
    assert_ne!(new, old);
    let info = cluster.replica(old).membership().await.expect("membership of the old leader");
    assert!(!info.acting, "the partitioned replica still does not act: {info:#?}");

    // The chain goes on with one sequencer (the same one, unless slow probes on a loaded machine
    // made the new acting replica fail over).
    cluster.wait_for_blocks(5).await;
    let now_leading = cluster
        .wait_for("one active sequencer that the new acting replica names", async || {
            let status = cluster.replica(new).status().await;
            let active = cluster.active_nodes();
            let observed = format!("active {active:?}\n{status:?}");
            let leading =
                status.ok().and_then(|status| status.leader).filter(|leader| active == [leader.clone()]);
            (leading, observed)
        })
        .await;
    if now_leading != sequencer {
        eprintln!("the sequencer changed from {sequencer} to {now_leading} during the partition");
    }

    for replica in &cluster.replicas {
        replica.heal_messages().await;
    }
    // The old leader follows: it names the leader, does not act, and has applied its log.
    cluster
        .wait_for("the old leader to follow the acting leader", async || {
            let infos = match cluster.memberships(&IDS).await {
                Ok(infos) => infos,
                Err(err) => return (None, err),
            };
            let observed = format!("{infos:#?}");
            let Some(leader) = infos.iter().find(|info| info.acting).and_then(|info| info.replica) else {
                return (None, observed);
            };
            let acting: Vec<u64> =
                infos.iter().filter(|info| info.acting).filter_map(|info| info.replica).collect();
            let leader_commit =
                infos.iter().find(|info| info.replica == Some(leader)).and_then(|info| info.commit_index);
            let old_info = infos.iter().find(|info| info.replica == Some(old));
            let follows = old_info.is_some_and(|info| {
                leader != old
                    && info.leader == Some(leader)
                    && !info.acting
                    && info.applied_index >= leader_commit
            });
            ((acting == [leader] && follows).then_some(()), observed)
        })
        .await;
    cluster.wait_for_sequencer(&IDS).await;
    cluster.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replica_killed_and_restarted_from_its_data_dir_restores_the_paused_flag_leader_and_epoch() {
    let mut cluster = Cluster::new(Setup::default()).await;
    cluster.start_all();
    let leader = cluster.wait_for_acting_leader(&IDS).await;
    let sequencer = cluster.wait_for_sequencer(&IDS).await;
    let follower = IDS.into_iter().find(|id| *id != leader).expect("a follower");
    cluster
        .change("pause through a follower", async || {
            cluster.replica(follower).admin.stop_election(None).await.map_err(|err| err.to_string())
        })
        .await;
    cluster
        .wait_for("the pause replicated to every replica", async || {
            let mut paused = Vec::new();
            for id in IDS {
                paused.push(cluster.replica(id).admin.election_stopped(None).await.ok());
            }
            let observed = format!("{paused:?}");
            (paused.iter().all(|paused| *paused == Some(true)).then_some(()), observed)
        })
        .await;
    let before = cluster.replica(leader).status().await.expect("status");
    let activations_before = cluster.activations().len();

    for replica in &mut cluster.replicas {
        replica.kill();
    }
    cluster.start_all();
    cluster.wait_for_acting_leader(&IDS).await;
    for id in IDS {
        let after = cluster
            .wait_for("the restarted replica to answer the status", async || {
                let status = cluster.replica(id).status().await;
                let observed = format!("{status:?}");
                (status.ok(), observed)
            })
            .await;
        assert!(after.paused, "replica {id}: the pause survives the restart: {after:#?}");
        assert_eq!(
            (&after.leader, after.epoch, &after.phase),
            (&before.leader, before.epoch, &before.phase),
            "replica {id}"
        );
        assert!(cluster.replica(id).admin.election_stopped(None).await.expect("electionStopped"));
    }
    // Nothing was touched: the same sequencer keeps producing, nobody else was started.
    cluster.wait_for_blocks(3).await;
    assert_eq!(cluster.active_nodes(), [sequencer]);
    assert_eq!(cluster.activations().len(), activations_before, "{:#?}", cluster.activations());
    cluster.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_with_a_corrupt_data_dir_exits_non_zero_naming_the_file_and_rejoins_after_the_documented_repair()
 {
    let mut cluster = Cluster::new(Setup::default()).await;
    cluster.start_all();
    let leader = cluster.wait_for_acting_leader(&IDS).await;
    let sequencer = cluster.wait_for_sequencer(&IDS).await;
    // A follower breaks, so the leader and the other follower keep a quorum while it is repaired.
    let broken = IDS.into_iter().find(|id| *id != leader).expect("a follower");
    let other = IDS.into_iter().find(|id| *id != leader && *id != broken).expect("another follower");

    cluster.replica_mut(broken).kill();
    let store = cluster.data_dir().join(format!("replica-{broken}")).join("cluster.redb");
    let garbage = b"this is not a redb file \x00\x01\x02\xff".repeat(200);
    std::fs::write(&store, &garbage).expect("write garbage");
    cluster.replica_mut(broken).spawn();
    let running = cluster.replica_mut(broken).child.as_mut().expect("the replica was just spawned");
    let status = running.exit_within(PROCESS_WAIT).await;
    let status = status.unwrap_or_else(|| {
        panic!("replica {broken} still runs after {PROCESS_WAIT:?}:\n{}", cluster.diagnostics())
    });
    cluster.replica_mut(broken).child = None;
    let stderr = std::fs::read_to_string(&cluster.replica(broken).log).expect("read the log");
    let last_line = stderr.lines().last().unwrap_or_default();
    eprintln!("replica {broken} exited with {status}: {last_line}");
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        last_line.contains(&store.display().to_string()),
        "the error names {}:\n{stderr}",
        store.display()
    );
    assert_eq!(std::fs::read(&store).expect("read the store"), garbage, "the file is left as it was");

    // The repair of docs/operations.md: move the file aside, remove the replica, start it with
    // bootstrap = false, add it again; it receives the state from the leader.
    std::fs::rename(&store, store.with_extension("redb.bad")).expect("move the file aside");
    let remove = cluster.ctl_change(other, &["cluster", "remove", "--id", &broken.to_string()]).await;
    assert_eq!(remove.status.code(), Some(0), "{remove:?}");
    let joining_config = cluster.dir.path().join("joining.toml");
    std::fs::write(&joining_config, cluster.config_text(&cluster.replicas, false)).expect("write config");
    cluster.replica_mut(broken).config = joining_config;
    cluster.replica_mut(broken).spawn();
    let (raft_addr, api_addr) =
        (cluster.replica(broken).raft_addr.clone(), cluster.replica(broken).api_addr.clone());
    let add = cluster
        .ctl_change(
            other,
            &[
                "cluster",
                "add",
                "--id",
                &broken.to_string(),
                "--raft-addr",
                &raft_addr,
                "--api-addr",
                &api_addr,
            ],
        )
        .await;
    assert_eq!(add.status.code(), Some(0), "{add:?}");
    cluster.wait_for_acting_leader(&IDS).await;
    let restored = cluster
        .wait_for("the repaired replica to hold the chain's state again", async || {
            let status = cluster.replica(broken).status().await;
            let observed = format!("{status:?}");
            (status.ok().filter(|status| status.leader.as_ref() == Some(&sequencer)), observed)
        })
        .await;
    assert_eq!(restored.phase, "steady");
    let info = cluster.replica(broken).membership().await.expect("membership of the repaired replica");
    let members: Vec<(u64, bool)> = info.replicas.iter().map(|replica| (replica.id, replica.voter)).collect();
    assert_eq!(members, [(1, true), (2, true), (3, true)], "{info:#?}");
    // Exit 0: a replica leads and acts (4 while a loaded machine lets its lease lapse).
    cluster
        .wait_for("ctl cluster status on the repaired replica to exit 0", async || {
            let output = cluster.ctl(broken, &["cluster", "status"]).await;
            (output.status.success().then_some(()), format!("{output:?}"))
        })
        .await;
    cluster.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fourth_replica_added_through_a_follower_becomes_a_voter_everywhere_and_its_removal_is_seen_by_all()
{
    let mut cluster = Cluster::new(Setup::default()).await;
    cluster.start_all();
    let leader = cluster.wait_for_acting_leader(&IDS).await;
    cluster.wait_for_sequencer(&IDS).await;

    // Replica 4 is not in the file's list: it needs its own listen flags and bootstrap = false.
    let joining_config = cluster.dir.path().join("joining.toml");
    std::fs::write(&joining_config, cluster.config_text(&cluster.replicas, false)).expect("write config");
    let mut fourth = ReplicaProcess::new(BINARY, 4, joining_config, cluster.dir.path());
    fourth.extra_args = vec![
        "--raft-listen".to_owned(),
        fourth.raft_addr.clone(),
        "--rpc-listen".to_owned(),
        fourth.api_addr.clone(),
    ];
    fourth.spawn();
    let (raft_addr, api_addr) = (fourth.raft_addr.clone(), fourth.api_addr.clone());
    cluster.replicas.push(fourth);
    cluster
        .wait_for("replica 4 to answer, outside the membership", async || {
            let info = cluster.replica(4).membership().await;
            let observed = format!("{info:#?}");
            (info.ok().filter(|info| info.replica == Some(4) && !info.acting), observed)
        })
        .await;

    // Through `ctl cluster add` on a follower, which forwards it to the leader.
    let follower = IDS.into_iter().find(|id| *id != leader).expect("a follower");
    let output = cluster
        .ctl_change(
            follower,
            &["cluster", "add", "--id", "4", "--raft-addr", &raft_addr, "--api-addr", &api_addr],
        )
        .await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        stdout.contains("replica 4 added") && stdout.contains(&raft_addr),
        "the answer lists replica 4:\n{stdout}"
    );

    let all = [1, 2, 3, 4];
    let voters = |infos: &[ClusterInfo], want: &[u64]| {
        infos.iter().all(|info| {
            let ids: Vec<(u64, bool)> = info.replicas.iter().map(|r| (r.id, r.voter)).collect();
            ids == want.iter().map(|id| (*id, true)).collect::<Vec<_>>() && !info.membership_changing
        })
    };
    cluster
        .wait_for("every replica to list 4 voters", async || match cluster.memberships(&all).await {
            Ok(infos) => (voters(&infos, &all).then_some(()), format!("{infos:#?}")),
            Err(err) => (None, err),
        })
        .await;
    cluster.wait_for_acting_leader(&all).await;

    // Removed through the replica being removed (a follower: forwarded to the leader).
    let answer = cluster
        .change("removeReplica(4) through replica 4", async || {
            cluster.replica(4).admin.remove_replica(4).await.map_err(|err| err.to_string())
        })
        .await;
    assert!(answer.replicas.iter().all(|replica| replica.id != 4), "{answer:#?}");
    cluster
        .wait_for("replicas 1-3 to list 3 voters", async || match cluster.memberships(&IDS).await {
            Ok(infos) => (voters(&infos, &IDS).then_some(()), format!("{infos:#?}")),
            Err(err) => (None, err),
        })
        .await;
    // The removed replica may or may not hear of its removal (the leader stops replicating to it
    // once the change commits): what it reports is not asserted, only shown.
    eprintln!("replica 4 after its removal: {:?}", cluster.replica(4).membership().await);
    cluster.replica_mut(4).kill();

    // Leadership moves on request, through any replica.
    let leader = cluster.wait_for_acting_leader(&IDS).await;
    let target = IDS.into_iter().find(|id| *id != leader).expect("a follower");
    let transfer = cluster.ctl_change(leader, &["cluster", "transfer", "--to", &target.to_string()]).await;
    assert_eq!(transfer.status.code(), Some(0), "{transfer:?}");
    assert!(
        String::from_utf8_lossy(&transfer.stdout).contains(&format!("replica {target} leads")),
        "{transfer:?}"
    );
    let leader = cluster.wait_for_acting_leader(&IDS).await;
    assert_eq!(leader, target, "the transfer's target leads");

    // Replica 4 no longer counts: with it and one more replica down, the two left are a majority
    // of three and still commit (they would not be a majority of four).
    let down = IDS.into_iter().find(|id| *id != leader).expect("a follower");
    cluster.replica_mut(down).kill();
    let left: Vec<u64> = IDS.into_iter().filter(|id| *id != down).collect();
    let through = left.iter().copied().find(|id| *id != leader).expect("the other survivor");
    cluster
        .change("a commit with two of three replicas", async || {
            cluster.replica(through).admin.stop_election(None).await.map_err(|err| err.to_string())
        })
        .await;
    cluster.wait_for_acting_leader(&left).await;
    cluster.assert_safe();
}
