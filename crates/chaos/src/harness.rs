//! Building blocks of the fail-over benchmark (`op-failover-bench`): one fresh op-sim chain and
//! one coordinator per trial, one fault on the elected leader, and figures taken from the
//! simulator's ground truth rather than from what the coordinator says about itself.
//!
//! # One trial
//!
//! | step | what                                                                     | done when                                                             |
//! |------|--------------------------------------------------------------------------|-----------------------------------------------------------------------|
//! | 1    | a 3-node op-sim chain, every node stopped; a coordinator with the profile | -                                                                     |
//! | 2    | let the coordinator elect                                                | status `steady`, every node healthy, the leader sealed [`WARM_BLOCKS`] |
//! | 3    | wait for the leader's next block, then a random part of a block time     | so the fault lands at a uniformly random point of a slot              |
//! | 4    | inject the fault on the leader (both clocks sampled next to it)          | -                                                                     |
//! | 5    | wait for another node to seal                                            | the ledger has a block by a node other than the old leader            |
//! | 6    | heal the fault (`isolate`: 3 block times after the new leader's block)   | -                                                                     |
//! | 7    | let the chain settle                                                     | only the leader active, nobody fenced, 2 more blocks and block times  |
//! | 8    | read the ledger, the invariants and the coordinator's event timeline     | -                                                                     |
//!
//! Step 7 matters for re-orgs: a hung leader that resumes is still active and seals again one
//! block time later unless the coordinator fences it first, so re-orgs are counted after the heal.
//!
//! `isolate` (the leader's RPC cut off from the coordinator, its p2p working) is the safety
//! counterpart: the leader is alive, so the right outcome is *no* fail-over. A trial waits five
//! block times plus 3 s for one; if the coordinator does replace the leader, the isolation is held
//! three more block times so the ground truth shows the two sequencers.
//!
//! # Figures
//!
//! | figure        | source                         | definition                                                                              |
//! |---------------|--------------------------------|-----------------------------------------------------------------------------------------|
//! | verdict       | `coordinator_status`, 20 ms    | fault → first status in which the leader is unhealthy (informational)                   |
//! | detection     | `coordinator_events`           | fault → first `leader_unhealthy` / `leader_fenced` of the old leader: the decision     |
//! | downtime      | ledger                         | last block of the old leader → first block of another node                              |
//! | missed slots  | ledger                         | `round(downtime / block time) - 1`                                                      |
//! | re-orgs       | `sim_invariants`               | heights with two distinct blocks (`unsafe_reorgs`), plus overlapping sealing spans      |
//!
//! Events carry unix milliseconds and the ledger its own monotonic milliseconds; both clocks are
//! sampled right before the fault and the difference converts one into the other (error ~1 ms).

use crate::support::{Spawned, spawn_coordinator, stopped_chain, unix_ms};
use jsonrpsee::http_client::HttpClient;
use op_coordinator::config::Config;
use op_sim::{
    Simulator,
    api::{FaultKind, FaultParams, FaultTarget, LedgerEntry},
};
use opc_wire::{
    EventKind,
    coordinator::{ChainStatus, CoordinatorApiClient, CoordinatorEvent},
};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::Serialize;
use std::{path::Path, str::FromStr, time::Duration};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle, time::Instant};

/// Nodes per chain: a leader and two candidates, as the incumbents are usually deployed.
pub const NODES: usize = 3;
/// Blocks the elected leader seals before the fault, so followers are synced and healthy.
pub const WARM_BLOCKS: usize = 3;
/// Period of the ground-truth and status polls while waiting for the fail-over.
const POLL: Duration = Duration::from_millis(20);

/// Coordinator settings a trial runs with: always our engine, with different timings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// The coordinator's built-in defaults; only `[chains.X] block_time_ms` is set.
    Defaults,
    /// op-coordinator's timings: 1 s probes, unhealthy after 2 failures (consecutive here: our
    /// engine has no "2 of the last 5" window), healthy after 3 successes.
    OpCoordinator,
    /// op-conductor's timings: 1 s probes, the 5 s unsafe interval as both the stall bound and
    /// the liveness window, acting on the first unhealthy probe as op-conductor does.
    OpConductor,
    /// Defaults with the two windows derived from the block time (see [`Profile::overrides`]).
    Tuned,
    /// Conductor mode with the defaults: the nodes commit every block to the coordinator, which
    /// deposes a leader without a liveness window.
    Conductor,
}

impl Profile {
    /// Every profile, in table order.
    pub const ALL: [Profile; 5] =
        [Self::Defaults, Self::OpCoordinator, Self::OpConductor, Self::Tuned, Self::Conductor];

    /// The name used on the command line and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Defaults => "defaults",
            Self::OpCoordinator => "op-coordinator",
            Self::OpConductor => "op-conductor",
            Self::Tuned => "tuned",
            Self::Conductor => "conductor",
        }
    }

    /// The label of the profile's table: always "our engine", never the incumbent itself.
    pub fn label(self) -> &'static str {
        match self {
            Self::Defaults => "our engine, our defaults",
            Self::OpCoordinator => "our engine with op-coordinator settings",
            Self::OpConductor => "our engine with op-conductor settings",
            Self::Tuned => "our engine, windows derived from the block time",
            Self::Conductor => "our engine in conductor mode, our defaults",
        }
    }

    /// Config keys the profile sets on top of the defaults, for a chain of `block_time_ms`.
    ///
    /// `tuned` derives both windows from the block time instead of fixing them for 1 s chains:
    /// - `chain_liveness_window_ms = bt + max(250, bt / 4)`: an alive leader cut off from us
    ///   still shows a follower advancing at least every block time plus gossip and one probe
    ///   interval (100 ms), so anything longer than that is enough to call the chain stopped;
    /// - `unsafe_stall_ms = bt + max(500, bt / 2)`: a leader more than half a block (at least
    ///   500 ms) late is stalled. A false positive costs a clean hand-over, not safety.
    pub fn overrides(self, block_time_ms: u64) -> Vec<(&'static str, u64)> {
        match self {
            Self::Defaults | Self::Conductor => Vec::new(),
            Self::OpCoordinator => vec![
                ("health.interval_ms", 1000),
                ("health.failure_threshold", 2),
                ("health.success_threshold", 3),
            ],
            Self::OpConductor => vec![
                ("health.interval_ms", 1000),
                ("health.failure_threshold", 1),
                ("health.unsafe_stall_ms", 5000),
                ("failover.chain_liveness_window_ms", 5000),
            ],
            Self::Tuned => vec![
                ("failover.chain_liveness_window_ms", block_time_ms + (block_time_ms / 4).max(250)),
                ("health.unsafe_stall_ms", block_time_ms + (block_time_ms / 2).max(500)),
            ],
        }
    }

    /// The coordinator config of a trial: defaults, the simulator's `[chains.*]` blocks, and the
    /// profile's keys then `extra` (`KEY`, `VALUE`) applied as command-line overrides (the
    /// highest layer), so `extra` wins.
    pub fn config(
        self,
        block_time_ms: u64,
        data_dir: &Path,
        chains_toml: &str,
        extra: &[(String, String)],
    ) -> Result<Config, String> {
        let text = format!("data_dir = {:?}\n{chains_toml}", data_dir.display().to_string());
        let overrides: Vec<(String, String)> = self
            .overrides(block_time_ms)
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value.to_string()))
            .filter(|(key, _)| !extra.iter().any(|(extra_key, _)| extra_key == key))
            .chain(extra.iter().cloned())
            .collect();
        Config::from_toml_str(&text, Vec::<(String, String)>::new(), &overrides)
            .map_err(|errors| format!("profile {} gives an invalid config: {errors}", self.as_str()))
    }

    /// Whether the coordinator accepts the profile for a chain of `block_time_ms`: its config
    /// checks tie some windows to the block time (for example the liveness window must exceed
    /// it), so a fixed setting can be refused at one block time and fine at another.
    pub fn check(self, block_time_ms: u64, extra: &[(String, String)]) -> Result<(), String> {
        let mut chains = format!("[chains.devnet]\nblock_time_ms = {block_time_ms}\n");
        for node in 0..NODES {
            chains.push_str(&format!(
                "[chains.devnet.sequencers.seq-{node}]\nop_node_url = \"http://127.0.0.1:{}\"\n\
                 op_geth_url = \"http://127.0.0.1:{}\"\n",
                10_000 + 2 * node,
                10_001 + 2 * node
            ));
        }
        self.config(block_time_ms, &std::env::temp_dir(), &chains, extra).map(|_| ())
    }
}

impl FromStr for Profile {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|profile| profile.as_str() == text).ok_or_else(|| {
            let names: Vec<_> = Self::ALL.iter().map(|profile| profile.as_str()).collect();
            format!("unknown profile {text:?}; expected one of {}", names.join(", "))
        })
    }
}

/// The fault parameters the benchmark uses: the whole node for crash and hang, and a hung node
/// that waits a block time after resuming (a process that seals the instant it resumes beats
/// any stop call; see `schedule.rs`).
pub fn fault_params(kind: FaultKind) -> FaultParams {
    match kind {
        FaultKind::Crash => FaultParams { target: Some(FaultTarget::Both), ..FaultParams::default() },
        FaultKind::Hang => FaultParams {
            target: Some(FaultTarget::Both),
            seal_on_resume: Some(false),
            ..FaultParams::default()
        },
        _ => FaultParams::default(),
    }
}

/// What one trial is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TrialSpec {
    /// Coordinator settings.
    pub profile: Profile,
    /// Block time of the chain.
    pub block_time_ms: u64,
    /// The fault injected on the leader.
    pub fault: FaultKind,
    /// Seeds the simulator's gossip jitter and the fault's phase within a slot.
    pub seed: u64,
}

/// What one trial measured. Times are milliseconds; `None` where the trial did not get there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrialOutcome {
    /// What was run.
    #[serde(flatten)]
    pub spec: TrialSpec,
    /// The leader the fault hit.
    pub old_leader: Option<String>,
    /// The first other node that sealed after the fault.
    pub new_leader: Option<String>,
    /// Ledger time of the fault.
    pub fault_at_ms: Option<u64>,
    /// How far into its slot the fault landed (ms after the leader's previous block).
    pub fault_phase_ms: Option<u64>,
    /// Fault → first status showing the leader unhealthy.
    pub verdict_ms: Option<u64>,
    /// Fault → the coordinator's decision event.
    pub detection_ms: Option<u64>,
    /// Which decision event (`leader_unhealthy` or `leader_fenced`).
    pub decision: Option<EventKind>,
    /// Last block of the old leader → first block of the new one.
    pub downtime_ms: Option<u64>,
    /// Empty slots in that gap.
    pub missed_slots: Option<u64>,
    /// Heights with two distinct blocks, over the whole trial (heal included).
    pub unsafe_reorgs: u64,
    /// Overlapping sealing spans of two nodes, over the whole trial.
    pub double_sequencing: u64,
    /// Why the trial failed or did not settle, if it did not go to plan.
    pub error: Option<String>,
}

impl TrialOutcome {
    fn new(spec: TrialSpec) -> Self {
        Self {
            spec,
            old_leader: None,
            new_leader: None,
            fault_at_ms: None,
            fault_phase_ms: None,
            verdict_ms: None,
            detection_ms: None,
            decision: None,
            downtime_ms: None,
            missed_slots: None,
            unsafe_reorgs: 0,
            double_sequencing: 0,
            error: None,
        }
    }

    /// The outcome of a trial that did not finish within `limit`.
    pub fn hung(spec: TrialSpec, limit: Duration) -> Self {
        Self { error: Some(format!("trial did not finish within {} s", limit.as_secs())), ..Self::new(spec) }
    }
}

/// The hand-over gap in the ground truth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    /// The first node other than the old leader that sealed after the fault.
    pub new_leader: String,
    /// When the old leader sealed its last block before that.
    pub last_old_block_ms: u64,
    /// When the new leader sealed its first block.
    pub first_new_block_ms: u64,
}

impl Gap {
    /// Last block of the old leader → first block of the new one.
    pub fn downtime_ms(&self) -> u64 {
        self.first_new_block_ms.saturating_sub(self.last_old_block_ms)
    }

    /// Slots without a block in the gap: `round(gap / block time) - 1`.
    pub fn missed_slots(&self, block_time_ms: u64) -> u64 {
        let block_time_ms = block_time_ms.max(1);
        ((self.downtime_ms() + block_time_ms / 2) / block_time_ms).saturating_sub(1)
    }
}

/// Finds the hand-over in `entries`: the first block sealed after `fault_at_ms` by a node other
/// than `old_leader`, and the old leader's last block before it. `None` until both exist.
pub fn handover_gap(entries: &[LedgerEntry], old_leader: &str, fault_at_ms: u64) -> Option<Gap> {
    let (new_leader, first_new_block_ms) = entries.iter().find_map(|entry| match entry {
        LedgerEntry::Block { producer, t_ms, .. } if producer != old_leader && *t_ms >= fault_at_ms => {
            Some((producer.clone(), *t_ms))
        }
        _ => None,
    })?;
    let last_old_block_ms = entries
        .iter()
        .filter_map(|entry| match entry {
            LedgerEntry::Block { producer, t_ms, .. }
                if producer == old_leader && *t_ms <= first_new_block_ms =>
            {
                Some(*t_ms)
            }
            _ => None,
        })
        .max()?;
    Some(Gap { new_leader, last_old_block_ms, first_new_block_ms })
}

/// p50 / p95 / p99 / max of one figure, by nearest rank (with 10 samples p95 and p99 are the max).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: u64,
    /// 95th percentile.
    pub p95: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Largest sample.
    pub max: u64,
}

impl Percentiles {
    /// `None` for no samples.
    pub fn of(samples: &[u64]) -> Option<Self> {
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let rank = |p: usize| sorted.get((p * sorted.len()).div_ceil(100).saturating_sub(1)).copied();
        Some(Self { p50: rank(50)?, p95: rank(95)?, p99: rank(99)?, max: *sorted.last()? })
    }
}

/// One row of the result table: every trial of one (profile, block time, fault).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CellSummary {
    /// Coordinator settings.
    pub profile: Profile,
    /// Block time.
    pub block_time_ms: u64,
    /// Fault kind.
    pub fault: FaultKind,
    /// Trials run.
    pub trials: usize,
    /// Trials whose downtime was measured (a new leader sealed).
    pub failed_over: usize,
    /// Trials that reported an error (including not settling after the heal).
    pub errors: usize,
    /// Fault → status showing the leader unhealthy.
    pub verdict_ms: Option<Percentiles>,
    /// Fault → decision event.
    pub detection_ms: Option<Percentiles>,
    /// Last old block → first new block.
    pub downtime_ms: Option<Percentiles>,
    /// Mean missed slots per fail-over.
    pub missed_slots_mean: Option<f64>,
    /// Most missed slots in one fail-over.
    pub missed_slots_max: Option<u64>,
    /// Unsafe re-orgs over all trials.
    pub unsafe_reorgs: u64,
    /// Double-sequencing overlaps over all trials.
    pub double_sequencing: u64,
    /// Why the coordinator refused the profile's config at this block time (no trial ran).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

impl CellSummary {
    /// Summarises `outcomes`, which must all share `spec`'s profile, block time and fault.
    pub fn of(profile: Profile, block_time_ms: u64, fault: FaultKind, outcomes: &[&TrialOutcome]) -> Self {
        let collect = |figure: fn(&TrialOutcome) -> Option<u64>| -> Vec<u64> {
            outcomes.iter().filter_map(|outcome| figure(outcome)).collect()
        };
        let missed = collect(|outcome| outcome.missed_slots);
        Self {
            profile,
            block_time_ms,
            fault,
            trials: outcomes.len(),
            failed_over: outcomes.iter().filter(|outcome| outcome.downtime_ms.is_some()).count(),
            errors: outcomes.iter().filter(|outcome| outcome.error.is_some()).count(),
            verdict_ms: Percentiles::of(&collect(|outcome| outcome.verdict_ms)),
            detection_ms: Percentiles::of(&collect(|outcome| outcome.detection_ms)),
            downtime_ms: Percentiles::of(&collect(|outcome| outcome.downtime_ms)),
            missed_slots_mean: (!missed.is_empty())
                .then(|| missed.iter().sum::<u64>() as f64 / missed.len() as f64),
            missed_slots_max: missed.iter().max().copied(),
            unsafe_reorgs: outcomes.iter().map(|outcome| outcome.unsafe_reorgs).sum(),
            double_sequencing: outcomes.iter().map(|outcome| outcome.double_sequencing).sum(),
            refused: None,
        }
    }

    /// A cell whose config the coordinator refused, so no trial ran.
    pub fn refused(profile: Profile, block_time_ms: u64, fault: FaultKind, why: String) -> Self {
        Self { refused: Some(why), ..Self::of(profile, block_time_ms, fault, &[]) }
    }
}

/// A coordinator running in this process on a loopback port of its own.
struct RunningCoordinator {
    task: JoinHandle<Result<(), op_coordinator::StartError>>,
    shutdown_tx: oneshot::Sender<()>,
    client: HttpClient,
}

impl RunningCoordinator {
    async fn start(config: Config, conductor: Option<TcpListener>) -> Result<Self, String> {
        let Spawned { task, shutdown_tx, client } = spawn_coordinator(config, conductor).await?;
        Ok(Self { task, shutdown_tx, client })
    }

    /// The only chain's status, or why it could not be had.
    async fn status(&self) -> Result<ChainStatus, String> {
        let mut chains =
            self.client.status(None).await.map_err(|err| format!("coordinator_status: {err}"))?;
        chains.pop().ok_or_else(|| "coordinator_status returned no chain".to_owned())
    }

    /// Stops it gracefully; an error if it had died, panicked or does not stop.
    async fn stop(self) -> Result<(), String> {
        if self.task.is_finished() {
            return Err(format!("coordinator exited on its own: {:?}", self.task.await));
        }
        let _ = self.shutdown_tx.send(());
        match tokio::time::timeout(Duration::from_secs(10), self.task).await {
            Err(_) => Err("coordinator did not shut down within 10 s".into()),
            Ok(Err(join)) => Err(format!("coordinator task failed: {join}")),
            Ok(Ok(Err(err))) => Err(format!("coordinator failed: {err}")),
            Ok(Ok(Ok(()))) => Ok(()),
        }
    }
}

/// Runs one trial end to end, with `extra` config overrides on top of the profile (see
/// [`Profile::config`]); failures end up in [`TrialOutcome::error`].
pub async fn run_trial(spec: TrialSpec, extra: &[(String, String)]) -> TrialOutcome {
    let mut outcome = TrialOutcome::new(spec);
    if let Err(err) = Box::pin(trial(spec, extra, &mut outcome)).await {
        outcome.error = Some(err);
    }
    outcome
}

async fn trial(
    spec: TrialSpec,
    extra: &[(String, String)],
    outcome: &mut TrialOutcome,
) -> Result<(), String> {
    let mut sim_config = stopped_chain(spec.seed, NODES, spec.block_time_ms);
    // Conductor mode: the endpoint is bound first, so the nodes can be given its URL.
    let mut conductor = None;
    let mut extra = extra.to_vec();
    if spec.profile == Profile::Conductor {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|err| format!("bind the conductor endpoint: {err}"))?;
        let addr = listener.local_addr().map_err(|err| format!("conductor endpoint address: {err}"))?;
        sim_config = sim_config.with_conductor(addr);
        extra.push(("conductor.listen".to_owned(), addr.to_string()));
        conductor = Some(listener);
    }
    let sim = Simulator::start(sim_config).await.map_err(|err| format!("simulator did not start: {err}"))?;
    let data_dir = tempfile::tempdir().map_err(|err| format!("temp dir: {err}"))?;
    let config =
        spec.profile.config(spec.block_time_ms, data_dir.path(), &sim.coordinator_config(), &extra)?;
    let coordinator = RunningCoordinator::start(config, conductor).await?;
    let driven = drive(spec, &sim, &coordinator, outcome).await;
    let stopped = coordinator.stop().await;
    let invariants = sim.invariants().remove(0);
    outcome.unsafe_reorgs = invariants.unsafe_reorgs.len() as u64;
    outcome.double_sequencing = invariants.double_sequencing.len() as u64;
    sim.shutdown();
    driven.and(stopped)
}

/// Steps 2-7 of the trial.
async fn drive(
    spec: TrialSpec,
    sim: &Simulator,
    coordinator: &RunningCoordinator,
    outcome: &mut TrialOutcome,
) -> Result<(), String> {
    let block_time_ms = spec.block_time_ms;
    let mut rng = StdRng::seed_from_u64(spec.seed);

    // 2. Elected, every node healthy, the leader a few blocks in.
    let deadline = Instant::now() + Duration::from_secs(30) + Duration::from_millis(10 * block_time_ms);
    let leader = loop {
        let state = match coordinator.status().await {
            Ok(status) => {
                let leader = status.leader.clone();
                let all_healthy = status.nodes.iter().all(|node| node.healthy);
                let sealed = leader.as_deref().map_or(0, |leader| blocks_by(sim, leader));
                match leader {
                    Some(leader) if status.phase == "steady" && all_healthy && sealed >= WARM_BLOCKS => {
                        break leader;
                    }
                    _ => format!(
                        "phase {}, leader {:?}, healthy {:?}, leader's blocks {sealed}",
                        status.phase,
                        status.leader,
                        status.nodes.iter().map(|node| (&node.name, node.healthy)).collect::<Vec<_>>()
                    ),
                }
            }
            Err(err) => err,
        };
        if Instant::now() >= deadline {
            return Err(format!("no steady leader within the deadline; last seen: {state}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let truly_active: Vec<String> =
        sim.nodes().into_iter().filter(|node| node.active).map(|node| node.name).collect();
    if truly_active != [leader.clone()] {
        return Err(format!("coordinator says {leader} leads, but the active nodes are {truly_active:?}"));
    }
    outcome.old_leader = Some(leader.clone());

    // 3. The leader's next block, then a uniformly random point of the slot. The hand-over is
    // searched from here on, so the old leader's last block before the fault is included.
    let slot_from = sim.ledger().len();
    let deadline = Instant::now() + Duration::from_millis(5 * block_time_ms);
    let last_block_ms = loop {
        let sealed = sim.ledger_entries(slot_from).iter().rev().find_map(|entry| match entry {
            LedgerEntry::Block { producer, t_ms, .. } if *producer == leader => Some(*t_ms),
            _ => None,
        });
        if let Some(t_ms) = sealed {
            break t_ms;
        }
        if Instant::now() >= deadline {
            return Err(format!("{leader} sealed nothing for 5 block times before the fault"));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let fault_due_ms = last_block_ms + rng.random_range(0..block_time_ms);
    tokio::time::sleep(Duration::from_millis(fault_due_ms.saturating_sub(sim.ledger().now_ms()))).await;

    // 4. The fault, with both clocks sampled next to it.
    let from = sim.ledger().len();
    let unix_at_fault_ms = unix_ms();
    let sim_at_fault_ms = sim.ledger().now_ms();
    sim.fault(&leader, spec.fault, fault_params(spec.fault))
        .map_err(|err| format!("fault {} on {leader}: {err}", spec.fault))?;
    let fault_at_ms = sim
        .ledger_entries(from)
        .iter()
        .find_map(|entry| match entry {
            LedgerEntry::Fault { node, t_ms, .. } if *node == leader => Some(*t_ms),
            _ => None,
        })
        .unwrap_or(sim_at_fault_ms);
    outcome.fault_at_ms = Some(fault_at_ms);
    outcome.fault_phase_ms = Some(fault_at_ms.saturating_sub(last_block_ms));

    // 5. Another node seals; meanwhile note when the status first calls the leader unhealthy.
    // An isolated leader is alive: the right outcome is no fail-over, so its wait is bounded by
    // a few block times plus any sane liveness window, and running out of it is not an error.
    let expect_failover = spec.fault != FaultKind::Isolate;
    let wait_ms = if expect_failover { 30_000 + 10 * block_time_ms } else { 3000 + 5 * block_time_ms };
    let deadline = Instant::now() + Duration::from_millis(wait_ms);
    let gap = loop {
        if outcome.verdict_ms.is_none()
            && let Ok(status) = coordinator.status().await
            && status.nodes.iter().any(|node| node.name == leader && !node.healthy)
        {
            outcome.verdict_ms = Some(sim.ledger().now_ms().saturating_sub(fault_at_ms));
        }
        if let Some(gap) = handover_gap(&sim.ledger_entries(slot_from), &leader, fault_at_ms) {
            break Some(gap);
        }
        if Instant::now() >= deadline {
            if !expect_failover {
                break None;
            }
            let status = coordinator.status().await.map(|status| status.phase);
            let _ = sim.heal(&leader, Some(spec.fault));
            return Err(format!(
                "no other node sealed within {wait_ms} ms after the fault; phase {status:?}"
            ));
        }
        tokio::time::sleep(POLL).await;
    };
    if let Some(gap) = &gap {
        outcome.downtime_ms = Some(gap.downtime_ms());
        outcome.missed_slots = Some(gap.missed_slots(block_time_ms));
        outcome.new_leader = Some(gap.new_leader.clone());
    }

    // The decision, from the coordinator's own timeline, in ledger time.
    let events = coordinator
        .client
        .events(None, Some(500), None, None)
        .await
        .map_err(|err| format!("coordinator_events: {err}"))?;
    if let Some((event, decision)) = events.iter().find_map(|event| {
        let decision = decision(event)?;
        (event.at_unix_ms >= unix_at_fault_ms && event.node.as_deref() == Some(leader.as_str()))
            .then_some((event, decision))
    }) {
        let event_sim_ms = (event.at_unix_ms + sim_at_fault_ms).saturating_sub(unix_at_fault_ms);
        outcome.detection_ms = Some(event_sim_ms.saturating_sub(fault_at_ms));
        outcome.decision = Some(decision);
    }

    // An isolated leader that was replaced keeps sealing; keep it cut off for a few block times
    // so the ground truth shows what that costs. Every other fault heals at once.
    if let (false, Some(gap)) = (expect_failover, &gap) {
        let hold_until_ms = gap.first_new_block_ms + 3 * block_time_ms;
        tokio::time::sleep(Duration::from_millis(hold_until_ms.saturating_sub(sim.ledger().now_ms()))).await;
    }

    // 6-7. Heal, then let the chain settle so a resumed old leader gets the chance to misbehave:
    // settled means exactly the coordinator's leader is active, nobody is fenced, and the chain
    // went on for two blocks and two block times.
    let heal_from = sim.ledger().len();
    sim.heal(&leader, Some(spec.fault)).map_err(|err| format!("heal {leader}: {err}"))?;
    let heal_at_ms = sim.ledger().now_ms();
    let deadline = Instant::now() + Duration::from_secs(15) + Duration::from_millis(5 * block_time_ms);
    loop {
        let active: Vec<String> =
            sim.nodes().into_iter().filter(|node| node.active).map(|node| node.name).collect();
        let (coordinator_leader, fenced) = match coordinator.status().await {
            Ok(status) => (
                status.leader,
                status.nodes.into_iter().filter(|node| node.fenced).map(|node| node.name).collect(),
            ),
            Err(err) => (None, vec![err]),
        };
        let blocks_after = sim
            .ledger_entries(heal_from)
            .iter()
            .filter(|entry| matches!(entry, LedgerEntry::Block { .. }))
            .count();
        let elapsed_ms = sim.ledger().now_ms().saturating_sub(heal_at_ms);
        let one_leader = coordinator_leader.as_ref().is_some_and(|leader| active == [leader.clone()]);
        if one_leader && fenced.is_empty() && blocks_after >= 2 && elapsed_ms >= 2 * block_time_ms {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "did not settle after the heal: active {active:?}, coordinator's leader {coordinator_leader:?}, \
                 fenced {fenced:?}, {blocks_after} blocks in {elapsed_ms} ms"
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The kind of `event` when it marks the coordinator's decision that the leader has failed
/// (`leader_unhealthy`, `leader_fenced`). The one place the benchmark reads an event's kind.
fn decision(event: &CoordinatorEvent) -> Option<EventKind> {
    [EventKind::LeaderUnhealthy, EventKind::LeaderFenced].contains(&event.kind).then(|| event.kind.clone())
}

/// Blocks `producer` has sealed so far.
fn blocks_by(sim: &Simulator, producer: &str) -> usize {
    sim.ledger_entries(0)
        .iter()
        .filter(|entry| matches!(entry, LedgerEntry::Block { producer: p, .. } if p == producer))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::B256;

    fn block(producer: &str, number: u64, t_ms: u64) -> LedgerEntry {
        LedgerEntry::Block {
            chain: "devnet".into(),
            producer: producer.into(),
            number,
            hash: B256::with_last_byte(number as u8),
            parent: B256::with_last_byte(number.saturating_sub(1) as u8),
            t_ms,
            commit_sent_ms: None,
        }
    }

    #[test]
    fn gap_runs_from_the_old_leaders_last_block_to_the_new_leaders_first() {
        let entries = [
            block("seq-0", 1, 1000),
            block("seq-0", 2, 2000),
            block("seq-1", 3, 3650),
            block("seq-1", 4, 4650),
        ];
        let gap = handover_gap(&entries, "seq-0", 2300).expect("a hand-over");
        assert_eq!(
            gap,
            Gap { new_leader: "seq-1".into(), last_old_block_ms: 2000, first_new_block_ms: 3650 }
        );
        assert_eq!(gap.downtime_ms(), 1650);
        assert_eq!(gap.missed_slots(1000), 1);
    }

    #[test]
    fn a_block_the_old_leader_seals_after_the_fault_still_counts() {
        let entries = [block("seq-0", 1, 1000), block("seq-0", 2, 2000), block("seq-2", 3, 2900)];
        let gap = handover_gap(&entries, "seq-0", 1990).expect("a hand-over");
        assert_eq!(gap.last_old_block_ms, 2000);
        assert_eq!(gap.downtime_ms(), 900);
        assert_eq!(gap.missed_slots(1000), 0);
    }

    #[test]
    fn no_gap_until_another_node_seals() {
        let entries = [block("seq-0", 1, 1000), block("seq-0", 2, 2000)];
        assert_eq!(handover_gap(&entries, "seq-0", 1500), None);
    }

    #[test]
    fn missed_slots_round_the_gap_to_whole_slots() {
        let gap = |ms| Gap { new_leader: "b".into(), last_old_block_ms: 0, first_new_block_ms: ms };
        assert_eq!(gap(1000).missed_slots(1000), 0);
        assert_eq!(gap(1499).missed_slots(1000), 0);
        assert_eq!(gap(1500).missed_slots(1000), 1);
        assert_eq!(gap(2600).missed_slots(1000), 2);
        assert_eq!(gap(300).missed_slots(1000), 0);
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let samples: Vec<u64> = (1..=10).collect();
        let p = Percentiles::of(&samples).expect("samples");
        assert_eq!(p, Percentiles { p50: 5, p95: 10, p99: 10, max: 10 });
        let samples: Vec<u64> = (1..=200).rev().collect();
        let p = Percentiles::of(&samples).expect("samples");
        assert_eq!(p, Percentiles { p50: 100, p95: 190, p99: 198, max: 200 });
        assert_eq!(Percentiles::of(&[]), None);
    }

    #[test]
    fn profiles_with_windows_from_the_block_time_are_accepted_at_every_benchmarked_block_time() {
        for profile in [Profile::OpConductor, Profile::Tuned] {
            for block_time_ms in [250, 1000, 2000] {
                let checked = profile.check(block_time_ms, &[]);
                assert!(checked.is_ok(), "{profile:?} at {block_time_ms} ms: {checked:?}");
            }
        }
        for profile in [Profile::Defaults, Profile::OpCoordinator] {
            for block_time_ms in [250, 1000] {
                let checked = profile.check(block_time_ms, &[]);
                assert!(checked.is_ok(), "{profile:?} at {block_time_ms} ms: {checked:?}");
            }
        }
    }

    #[test]
    fn a_fixed_liveness_window_below_the_block_time_is_refused_naming_the_key() {
        assert!(Profile::Defaults.check(2000, &[]).is_ok(), "the defaults follow the block time");
        let extra = [("failover.chain_liveness_window_ms".to_owned(), "1500".to_owned())];
        let refused = Profile::Defaults.check(2000, &extra).expect_err("1500 ms window at 2 s blocks");
        assert!(refused.contains("failover.chain_liveness_window_ms"), "{refused}");
    }

    #[test]
    fn extra_settings_win_over_the_profile() {
        let extra = [("failover.chain_liveness_window_ms".to_owned(), "2600".to_owned())];
        assert!(Profile::Defaults.check(2000, &extra).is_ok());
        let chains = "[chains.devnet]\nblock_time_ms = 2000\n[chains.devnet.sequencers.seq-0]\n\
                      op_node_url = \"http://127.0.0.1:1\"\nop_geth_url = \"http://127.0.0.1:2\"\n";
        let config = Profile::Tuned.config(2000, Path::new("/tmp/x"), chains, &extra).expect("valid");
        assert_eq!(config.failover.chain_liveness_window_ms, Some(2600));
        assert_eq!(config.health.unsafe_stall_ms, Some(3000));
    }

    #[test]
    fn profile_keys_override_the_defaults() {
        let chains = "[chains.devnet]\nblock_time_ms = 1000\n[chains.devnet.sequencers.seq-0]\n\
                      op_node_url = \"http://127.0.0.1:1\"\nop_geth_url = \"http://127.0.0.1:2\"\n";
        let config = Profile::OpConductor.config(1000, Path::new("/tmp/x"), chains, &[]).expect("valid");
        assert_eq!(config.health.interval_ms, 1000);
        assert_eq!(config.health.failure_threshold, 1);
        assert_eq!(config.failover.chain_liveness_window_ms, Some(5000));
        let config = Profile::Tuned.config(1000, Path::new("/tmp/x"), chains, &[]).expect("valid");
        assert_eq!(config.failover.chain_liveness_window_ms, Some(1250));
        assert_eq!(config.health.unsafe_stall_ms, Some(1500));
    }
}
