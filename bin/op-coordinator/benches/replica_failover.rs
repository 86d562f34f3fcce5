//! Replica fail-over: how long the coordinator is without an acting replica when the acting one
//! dies, and what one replicated transition costs.
//!
//! ```text
//! nice cargo bench -p op-coordinator-cli --bench replica_failover            # 20 trials each
//! nice cargo bench -p op-coordinator-cli --bench replica_failover -- --trials 5
//! REPLICA_FAILOVER_TRIALS=5 nice cargo bench -p op-coordinator-cli --bench replica_failover
//! ```
//!
//! For each Raft timing profile (the `[cluster]` defaults, then tuned ones) it runs three
//! `op-coordinator run` replica processes (release build) over loopback against a simulated
//! 3-node chain with 100 ms blocks, and measures:
//!
//! - `replica`: SIGKILL the acting replica. From the kill to the first poll (every 5 ms) in which
//!   a surviving replica reports `acting`, and to the `started_acting` event's timestamp on the
//!   new one. The sequencer is healthy, so the chain does not notice. The killed replica is then
//!   restarted from its data dir and the next trial waits until it has caught up.
//! - `replica+sequencer`: SIGKILL the acting replica and crash the active sequencer in the same
//!   instant (a host running both dies). Also from the crash to the first block sealed by the new
//!   sequencer (the simulator's ledger: ground truth).
//! - commit latency: `coordinator_stopElection` / `startElection` round trips, each committing
//!   one Raft entry, sent to the leader replica, then to a follower that forwards them.
//! - `rolling restart`: SIGTERM the acting replica, as a supervisor restarting it for an upgrade
//!   does. From the signal to the first poll in which another replica reports `acting`, and to
//!   the process's exit; first with the hand-over on shutdown (the default), then with
//!   `cluster.handover_on_shutdown = false` (the replica just leaves), on the same cluster.
//!
//! `--rolling-only` runs only the rolling restart case (the figures of docs/benchmarks.md's
//! rolling restart table):
//!
//! ```text
//! nice -n 19 cargo bench -p op-coordinator-cli --bench replica_failover -- --trials 5 --rolling-only
//! ```
//!
//! Every figure is printed as n / p50 / p95 / p99 / max / mean in milliseconds.

use op_sim::Simulator;
use op_sim::api::{FaultKind, FaultParams, LedgerEntry};
use opc_test_support::{
    FAST_SETTINGS, LoggedChild, NO_METRICS, ReplicaProcess, admin_client_with_timeout, stopped_chain,
    unix_ms, wait_for,
};
use opc_wire::coordinator::{ClusterInfo, CoordinatorApiClient};
use std::{fmt::Write as _, sync::Arc, time::Duration};
use tokio::time::Instant;

const BINARY: &str = env!("CARGO_BIN_EXE_op-coordinator");
const DEFAULT_TRIALS: usize = 20;
const COMMIT_SAMPLES: usize = 100;
/// Deadline of every wait between trials: a restarted replica catches up under load.
const WAIT: Duration = Duration::from_secs(30);
/// How often a wait between trials looks again.
const SETTLE_POLL: Duration = Duration::from_millis(20);
/// How often a fail-over is polled for: fine, since it is what is measured.
const POLL: Duration = Duration::from_millis(5);
/// Request timeout of the admin clients: commits through a follower are forwarded.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);
const IDS: [u64; 3] = [1, 2, 3];

/// A Raft timing profile: a name for the tables and the `[cluster]` keys it sets.
struct Profile {
    name: &'static str,
    keys: &'static str,
    /// `election_timeout_max_ms`: the leader lease. A leader elected less than this ago refuses
    /// a hand-over's vote, so a rolling trial starts only once the acting replica has led longer,
    /// as the last replica of a real rolling restart has.
    lease_ms: u64,
}

const PROFILES: [Profile; 2] = [
    Profile {
        name: "default timings (heartbeat 100 ms, election timeout 300-600 ms)",
        keys: "",
        lease_ms: 600,
    },
    Profile {
        name: "tuned timings (heartbeat 25 ms, election timeout 100-150 ms)",
        keys: "heartbeat_interval_ms = 25\nelection_timeout_min_ms = 100\nelection_timeout_max_ms = 150\n",
        lease_ms: 150,
    },
];

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// The chain and the three replicas of one timing profile.
struct Bench {
    /// The chain, and its ledger: ground truth for the first block of a new sequencer.
    sim: Arc<Simulator>,
    /// The config file and the replicas' data and logs, removed at the end.
    _dir: tempfile::TempDir,
    replicas: Vec<ReplicaProcess>,
    /// `cluster.handover_on_shutdown` of the replicas started from now on.
    handover_on_shutdown: bool,
}

impl Bench {
    async fn start(profile: &Profile) -> Self {
        let sim = Arc::new(Simulator::start(stopped_chain()).await.expect("simulator starts"));
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("coordinator.toml");
        let replicas: Vec<ReplicaProcess> = IDS
            .iter()
            .map(|id| {
                let mut replica = ReplicaProcess::new(BINARY, *id, config.clone(), dir.path());
                replica.log_level = "warn".to_owned();
                replica.admin = admin_client_with_timeout(&replica.api_addr, ADMIN_TIMEOUT);
                replica
            })
            .collect();
        // No metrics listener: three replicas on one host would fight over its default port.
        let mut text = format!(
            "data_dir = {:?}\n{NO_METRICS}\n{FAST_SETTINGS}\n{}\n[cluster]\nid = 1\n{}",
            dir.path().join("data").display().to_string(),
            sim.coordinator_config(),
            profile.keys
        );
        for replica in &replicas {
            let _ = write!(
                text,
                "\n[[cluster.replicas]]\nid = {}\nraft_addr = \"{}\"\napi_addr = \"{}\"\n",
                replica.id, replica.raft_addr, replica.api_addr
            );
        }
        std::fs::write(&config, text).expect("write config");
        let mut bench = Self { sim, _dir: dir, replicas, handover_on_shutdown: true };
        for id in IDS {
            bench.spawn(id);
        }
        bench
    }

    /// Starts replica `id` with this bench's `cluster.handover_on_shutdown`.
    fn spawn(&mut self, id: u64) {
        let flag = self.handover_on_shutdown.to_string();
        let replica = &mut self.replicas[IDS.iter().position(|known| *known == id).expect("known id")];
        let mut command = replica.command();
        command.env("OP_COORDINATOR_CLUSTER__HANDOVER_ON_SHUTDOWN", flag);
        replica.child = Some(LoggedChild::spawn(&mut command, &replica.log));
    }

    /// Restarts every replica with `handover_on_shutdown` (SIGKILL, then start from its data dir).
    fn restart_all(&mut self, handover_on_shutdown: bool) {
        self.handover_on_shutdown = handover_on_shutdown;
        for id in IDS {
            self.replicas[IDS.iter().position(|known| *known == id).expect("known id")].kill();
            self.spawn(id);
        }
    }

    fn replica(&self, id: u64) -> &ReplicaProcess {
        &self.replicas[IDS.iter().position(|known| *known == id).expect("known id")]
    }

    fn diagnostics(&self) -> String {
        let mut out = String::new();
        for replica in &self.replicas {
            let _ =
                writeln!(out, "--- replica {} ---\n{}", replica.id, opc_test_support::tail(&replica.log, 15));
        }
        out
    }

    async fn wait_for<T>(&self, what: &str, probe: impl AsyncFnMut() -> (Option<T>, String)) -> T {
        wait_for(what).timeout(WAIT).poll(SETTLE_POLL).until_or(probe, || self.diagnostics()).await
    }

    /// Waits until every replica names the same leader, only it acts, and (from the leader's
    /// view) every replica has its whole log; and the chain is steady with a healthy leader and
    /// nothing fenced. The start line of every trial.
    async fn wait_until_settled(&self) -> u64 {
        self.wait_for("a settled cluster and chain", async || {
            let mut infos: Vec<ClusterInfo> = Vec::new();
            for replica in &self.replicas {
                match replica.admin.cluster_membership().await {
                    Ok(info) => infos.push(info),
                    Err(err) => return (None, format!("replica {}: {err}", replica.id)),
                }
            }
            let observed = format!("{infos:#?}");
            let Some(leader) = infos[0].leader else { return (None, observed) };
            let acting: Vec<u64> =
                infos.iter().filter(|info| info.acting).filter_map(|info| info.replica).collect();
            let leader_info = &infos[IDS.iter().position(|id| *id == leader).unwrap_or(0)];
            let caught_up = leader_info.replicas.iter().all(|replica| replica.lag_entries == Some(0));
            if acting != [leader] || !infos.iter().all(|info| info.leader == Some(leader)) || !caught_up {
                return (None, observed);
            }
            let Ok(mut chains) = self.replica(leader).admin.status(None).await else {
                return (None, observed);
            };
            let Some(status) = chains.pop() else { return (None, observed) };
            let settled = status.phase == "steady"
                && !status.paused
                && status.nodes.iter().all(|node| node.healthy && !node.fenced)
                && status.leader.as_ref().is_some_and(|leader| {
                    self.sim.nodes().iter().filter(|node| node.active).map(|node| &node.name).eq([leader])
                });
            (settled.then_some(leader), format!("{status:#?}"))
        })
        .await
    }

    /// Polls the replicas other than `killed` until one reports acting; returns it.
    async fn poll_for_new_acting(&self, killed: u64) -> u64 {
        let deadline = Instant::now() + WAIT;
        loop {
            for replica in self.replicas.iter().filter(|replica| replica.id != killed) {
                if let Ok(info) = replica.admin.cluster_membership().await
                    && info.acting
                {
                    return replica.id;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no replica acts {WAIT:?} after the kill\n{}",
                self.diagnostics()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// When `id` last started acting (its latest `started_acting` event).
    async fn last_started_acting(&self, id: u64) -> u64 {
        self.wait_for("a started_acting event", async || {
            let events = self.replica(id).admin.events(None, Some(100), None, None).await;
            let observed = format!("{events:?}");
            let at = events.ok().and_then(|events| {
                events
                    .iter()
                    .filter(|event| event.kind == opc_wire::EventKind::StartedActing)
                    .map(|event| event.at_unix_ms)
                    .max()
            });
            (at, observed)
        })
        .await
    }

    /// The `started_acting` event of `id` recorded at or after `since_unix_ms`.
    async fn started_acting_at(&self, id: u64, since_unix_ms: u64) -> u64 {
        self.wait_for("the started_acting event", async || {
            let events = self.replica(id).admin.events(None, Some(100), None, None).await;
            let observed = format!("{events:?}");
            let at = events.ok().and_then(|events| {
                events
                    .iter()
                    .find(|event| {
                        event.kind == opc_wire::EventKind::StartedActing && event.at_unix_ms >= since_unix_ms
                    })
                    .map(|event| event.at_unix_ms)
            });
            (at, observed)
        })
        .await
    }

    /// One trial: kill the acting replica (and crash its sequencer with it, if `with_sequencer`).
    async fn trial(&mut self, with_sequencer: bool, samples: &mut Samples) {
        let leader = self.wait_until_settled().await;
        let sequencer = self.sim.nodes().into_iter().find(|node| node.active).expect("an active node").name;
        let ledger_from = self.sim.ledger().len();
        let killed_unix_ms = unix_ms();
        let killed_at = Instant::now();
        self.replicas[IDS.iter().position(|id| *id == leader).expect("known")].kill();
        if with_sequencer {
            self.sim.fault(&sequencer, FaultKind::Crash, FaultParams::default()).expect("crash");
        }
        let next = self.poll_for_new_acting(leader).await;
        samples.acting.push(ms(killed_at.elapsed()));
        let event_at = self.started_acting_at(next, killed_unix_ms).await;
        samples.event.push(event_at.saturating_sub(killed_unix_ms) as f64);
        if with_sequencer {
            let block_ms = self
                .wait_for("a block from the new sequencer", async || {
                    let entries = self.sim.ledger_entries(ledger_from);
                    let crashed_t = entries.iter().find_map(|entry| match entry {
                        LedgerEntry::Fault { node, kind: FaultKind::Crash, t_ms, .. }
                            if *node == sequencer =>
                        {
                            Some(*t_ms)
                        }
                        _ => None,
                    });
                    let first_block = entries.iter().find_map(|entry| match entry {
                        LedgerEntry::Block { producer, t_ms, .. } if *producer != sequencer => Some(*t_ms),
                        _ => None,
                    });
                    let found = crashed_t.zip(first_block).map(|(crash, block)| block.saturating_sub(crash));
                    (found, format!("{} ledger entries since the kill", entries.len()))
                })
                .await;
            samples.block.push(block_ms as f64);
            self.sim.heal(&sequencer, None).expect("heal");
        }
        self.spawn(leader);
        let report = self.sim.invariants().remove(0);
        assert!(report.is_safe(), "safety violated: {report:#?}");
    }

    /// One rolling-restart step: once the acting replica has led for longer than `lease_ms`,
    /// SIGTERM it, time the gap and its exit (polled together), start it again. The sequencer
    /// must not notice: no (de)activation on the ledger.
    async fn rolling_trial(&mut self, lease_ms: u64, samples: &mut RollingSamples) {
        let leader = self.wait_until_settled().await;
        let elected_unix_ms = self.last_started_acting(leader).await;
        while unix_ms() < elected_unix_ms + lease_ms + 50 {
            tokio::time::sleep(SETTLE_POLL).await;
        }
        let ledger_from = self.sim.ledger().len();
        let index = IDS.iter().position(|id| *id == leader).expect("known");
        let signalled = Instant::now();
        self.replica(leader).terminate();
        let (mut acting, mut exit) = (None, None);
        while acting.is_none() || exit.is_none() {
            assert!(
                signalled.elapsed() < WAIT,
                "no new acting replica or no exit {WAIT:?} after SIGTERM\n{}",
                self.diagnostics()
            );
            if acting.is_none() {
                for replica in self.replicas.iter().filter(|replica| replica.id != leader) {
                    if let Ok(info) = replica.admin.cluster_membership().await
                        && info.acting
                    {
                        acting = Some(ms(signalled.elapsed()));
                    }
                }
            }
            if exit.is_none()
                && let Some(status) = self.replicas[index].exited()
            {
                assert!(status.success(), "replica {leader} exited with {status}\n{}", self.diagnostics());
                exit = Some(ms(signalled.elapsed()));
            }
            tokio::time::sleep(POLL).await;
        }
        samples.acting.extend(acting);
        samples.exit.extend(exit);
        let changes: Vec<LedgerEntry> = self
            .sim
            .ledger_entries(ledger_from)
            .into_iter()
            .filter(|entry| matches!(entry, LedgerEntry::Activated { .. } | LedgerEntry::Deactivated { .. }))
            .collect();
        assert!(changes.is_empty(), "a rolling restart moved the sequencer: {changes:?}");
        self.replicas[index].kill();
        self.spawn(leader);
    }

    /// Round trips of stop/startElection pairs through replica `via`.
    async fn commit_latency(&self, via: u64, out: &mut Vec<f64>) {
        let admin = &self.replica(via).admin;
        for _ in 0..COMMIT_SAMPLES / 2 {
            for pause in [true, false] {
                let started = Instant::now();
                let result =
                    if pause { admin.stop_election(None).await } else { admin.start_election(None).await };
                result.unwrap_or_else(|err| panic!("election call through replica {via}: {err}"));
                out.push(ms(started.elapsed()));
            }
        }
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        for replica in &mut self.replicas {
            replica.kill();
        }
        self.sim.shutdown();
    }
}

#[derive(Default)]
struct Samples {
    /// Kill to a surviving replica reporting `acting` (polled).
    acting: Vec<f64>,
    /// Kill to the new replica's `started_acting` event.
    event: Vec<f64>,
    /// Sequencer crash to the first block of the new sequencer.
    block: Vec<f64>,
}

#[derive(Default)]
struct RollingSamples {
    /// SIGTERM to another replica reporting `acting` (polled).
    acting: Vec<f64>,
    /// SIGTERM to the process's exit.
    exit: Vec<f64>,
}

/// `n p50 p95 p99 max mean` of `values` (nearest rank).
fn row(name: &str, values: &[f64]) -> String {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let pick = |q: f64| {
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len().max(1));
        sorted.get(rank - 1).copied().unwrap_or(f64::NAN)
    };
    let mean = sorted.iter().sum::<f64>() / sorted.len().max(1) as f64;
    format!(
        "| {name:<48} | {:>4} | {:>7.1} | {:>7.1} | {:>7.1} | {:>7.1} | {:>7.1} |",
        sorted.len(),
        pick(0.50),
        pick(0.95),
        pick(0.99),
        sorted.last().copied().unwrap_or(f64::NAN),
        mean
    )
}

/// `--rolling-only`: only the rolling restart case.
fn rolling_only_from_args() -> bool {
    std::env::args().skip(1).any(|arg| arg == "--rolling-only")
}

fn trials_from_args() -> usize {
    let mut args = std::env::args().skip(1);
    let mut trials = std::env::var("REPLICA_FAILOVER_TRIALS").ok().and_then(|value| value.parse().ok());
    while let Some(arg) = args.next() {
        // `cargo bench` passes `--bench`; anything else unknown is ignored the same way.
        if arg == "--trials" {
            trials = args.next().and_then(|value| value.parse().ok());
        } else if let Some(value) = arg.strip_prefix("--trials=") {
            trials = value.parse().ok();
        }
    }
    trials.unwrap_or(DEFAULT_TRIALS).max(1)
}

fn main() {
    let trials = trials_from_args();
    let rolling_only = rolling_only_from_args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        for profile in &PROFILES {
            let started = Instant::now();
            let mut bench = Bench::start(profile).await;
            let mut rows = Vec::new();
            if !rolling_only {
                rows.extend(failover_rows(&mut bench, trials).await);
            }
            rows.extend(rolling_rows(&mut bench, profile.lease_ms, trials).await);
            println!("\nReplica fail-over, {}, {trials} trials per scenario (ms)\n", profile.name);
            println!(
                "| {:<48} | {:>4} | {:>7} | {:>7} | {:>7} | {:>7} | {:>7} |",
                "measure", "n", "p50", "p95", "p99", "max", "mean"
            );
            println!("|{:-<50}|{:->6}|{:->9}|{:->9}|{:->9}|{:->9}|{:->9}|", "", "", "", "", "", "", "");
            for line in rows {
                println!("{line}");
            }
            println!("({:.0} s for this profile)", started.elapsed().as_secs_f64());
        }
    });
}

/// Commit latency and the SIGKILL scenarios, as table rows.
async fn failover_rows(bench: &mut Bench, trials: usize) -> Vec<String> {
    let leader = bench.wait_until_settled().await;
    let follower = IDS.into_iter().find(|id| *id != leader).expect("a follower");
    let (mut direct, mut forwarded) = (Vec::new(), Vec::new());
    bench.commit_latency(leader, &mut direct).await;
    bench.commit_latency(follower, &mut forwarded).await;

    let mut replica_only = Samples::default();
    for _ in 0..trials {
        bench.trial(false, &mut replica_only).await;
    }
    let mut with_sequencer = Samples::default();
    for _ in 0..trials {
        bench.trial(true, &mut with_sequencer).await;
    }
    vec![
        row("replica: kill -> new replica acting (polled)", &replica_only.acting),
        row("replica: kill -> started_acting event", &replica_only.event),
        row("replica+seq: kill -> new replica acting", &with_sequencer.acting),
        row("replica+seq: crash -> new sequencer's 1st block", &with_sequencer.block),
        row("stop/startElection on the leader", &direct),
        row("stop/startElection via a follower (forwarded)", &forwarded),
    ]
}

/// Rolling restarts with the hand-over on shutdown, then without it, as table rows.
async fn rolling_rows(bench: &mut Bench, lease_ms: u64, trials: usize) -> Vec<String> {
    let mut rows = Vec::new();
    for (handover, name) in [(true, "hand-over"), (false, "plain shutdown")] {
        if bench.handover_on_shutdown != handover {
            bench.restart_all(handover);
        }
        let mut samples = RollingSamples::default();
        for _ in 0..trials {
            bench.rolling_trial(lease_ms, &mut samples).await;
        }
        rows.push(row(&format!("rolling, {name}: SIGTERM -> new replica acting"), &samples.acting));
        rows.push(row(&format!("rolling, {name}: SIGTERM -> process exit"), &samples.exit));
    }
    bench.restart_all(true);
    rows
}
