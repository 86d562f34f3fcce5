//! Runs one seed: an op-sim chain and the coordinator side (one coordinator, or a Raft cluster
//! of replicas: [`RunOptions::replicas`]) under the seed's schedule, with the invariants checked
//! continuously on the simulator's ground truth.
//!
//! One loop serves both modes. Every 50 ms it:
//! 1. applies the schedule's steps that are due: node faults and p2p partitions here, conductor
//!    episodes through `conducted.rs`, coordinator restarts and replica episodes by the mode
//!    (`single.rs`, `replicas/`);
//! 2. checks safety ([`crate::invariants::safety_violations`]);
//! 3. checks that production resumes ([`ProductionResumes`]), with the mode saying whether the
//!    coordinator side can act;
//! 4. lets the mode check that its coordinators are alive.
//!
//! At the end the mode stops its coordinators and runs its end-of-run checks, conductor mode adds
//! its two ([`no_zombie_blocks`], [`committed_before_seen`]), and the report is filled from the
//! ledger.
//!
//! In conductor mode ([`RunOptions::conductor`]) the runner binds one conductor endpoint per
//! coordinator replica before the chain starts, so each node's op-node knows its conductor's URL
//! (node `i` commits through replica `i % replicas`), and each coordinator serves its endpoint on
//! that address for its whole life.

use crate::{
    conducted::Episodes,
    invariants::{
        committed_before_seen, inspection_bound_ms, no_zombie_blocks,
        production_resumes::{ProductionResumes, has_fault_free_candidate},
        safety_violations,
    },
    replicas::Replicas,
    report::{Record, took},
    schedule::{ConductorEpisode, RunShape, Scheduled, Step},
    single::SingleCoordinator,
    support::{FaultsInForce, stopped_chain},
};
use op_sim::{
    Simulator,
    api::{FaultKind, LedgerEntry, SeenVia},
};
use std::{net::SocketAddr, sync::Arc, time::Duration};
use tokio::time::Instant;

pub use crate::{options::RunOptions, report::SeedReport};

/// How long the run loop may overrun the schedule before the run is cut short (the caller gives
/// a seed a minute): the runner's own steps are bounded, so an overrun means something hung, and
/// stopping here keeps the timeline in the report.
const OVERRUN: Duration = Duration::from_secs(20);
/// The period of the run loop.
const TICK: Duration = Duration::from_millis(50);

/// Runs `seed` and reports what happened.
pub async fn run_seed(seed: u64, options: &RunOptions) -> SeedReport {
    let (shape, schedule) = options.schedule(seed);
    let mut record = Record::new(SeedReport::new(seed, shape, options.replicas));
    let (conductors, conductor_addrs) = match bind_conductors(options) {
        Ok(bound) => bound,
        Err(err) => {
            record.report.violations.push(err);
            return record.report;
        }
    };
    let sim = match start_simulator(seed, &shape, &conductor_addrs).await {
        Ok(sim) => sim,
        Err(err) => {
            record.report.violations.push(err);
            return record.report;
        }
    };
    let Ok(data_dir) = tempfile::tempdir() else {
        record.report.violations.push("cannot create a temp dir".into());
        return record.report;
    };
    let mut coordinator_toml =
        coordinator_config(&shape, &data_dir.path().display().to_string(), &sim.coordinator_config());
    if let Some(addr) = conductor_addrs.first() {
        // Replicas override it with their own.
        coordinator_toml.push_str(&format!("\n[conductor]\nlisten = \"{addr}\"\n"));
    }
    let started = if options.replica_mode() {
        // Each replica binds its address again when it starts.
        drop(conductors);
        let replicas = options.replicas;
        Replicas::start(seed, &shape, replicas, sim.clone(), &coordinator_toml, &conductor_addrs, &mut record)
            .await
            .map(Coordinators::Replicas)
    } else {
        SingleCoordinator::start(&coordinator_toml, conductors.into_iter().next())
            .await
            .map(Coordinators::Single)
    };
    let mut coordinators = match started {
        Ok(coordinators) => coordinators,
        Err(err) => {
            record.report.violations.push(err);
            sim.shutdown();
            return record.report;
        }
    };

    let mut run = Run {
        sim: sim.clone(),
        schedule: &schedule,
        shape,
        faults: FaultsInForce::default(),
        episodes: Episodes::default(),
        liveness: ProductionResumes::new(options.liveness_bound_ms),
    };
    let limit = Duration::from_millis(options.run_ms()) + OVERRUN;
    let driven = Box::pin(run.drive(&mut coordinators, &mut record, options.run_ms()));
    if tokio::time::timeout(limit, driven).await.is_err() {
        let overran =
            format!("the run loop overran its schedule by {} s: a runner step hung", OVERRUN.as_secs());
        record.violation(None, overran);
    }
    coordinators.stop_at_end(&mut record).await;

    let entries = sim.ledger_entries(0);
    coordinators.final_checks(&entries, &mut record);
    if options.conductor {
        conductor_checks(&entries, &mut record);
    }
    let invariants = sim.invariants().remove(0);
    let report = &mut record.report;
    report.blocks = invariants.blocks_sealed;
    report.longest_gap_ms = invariants.longest_gap_ms;
    report.missed_slots = invariants.missed_slots;
    let activations = entries.iter().filter(
        |entry| matches!(entry, LedgerEntry::Activated { cause, .. } if cause == "admin_startSequencer"),
    );
    report.leader_changes = (activations.count() as u64).saturating_sub(1);
    report.injected_overlaps = safety_violations(
        &invariants,
        &entries,
        sim.ledger().now_ms(),
        inspection_bound_ms(shape.block_time_ms),
    )
    .1;
    let report = record.finish(&entries, coordinators.event_lines(), options.ledger_dir.as_deref());
    sim.shutdown();
    report
}

/// Coordinator settings scaled to the block time.
fn coordinator_config(shape: &RunShape, data_dir: &str, nodes_toml: &str) -> String {
    let bt = shape.block_time_ms;
    format!(
        r#"data_dir = {data_dir:?}
[health]
interval_ms = {interval}
probe_timeout_ms = {probe_timeout}
failure_threshold = 2
success_threshold = 2
unsafe_stall_ms = {stall}
max_execution_lag_blocks = 4
max_candidate_lag_blocks = 16
[failover]
rpc_timeout_ms = 500
catch_up_timeout_ms = {catch_up}
chain_liveness_window_ms = {liveness}
convergence_wait_ms = 500
start_retry_interval_ms = 50
[inspection]
interval_ms = {inspection}
{nodes_toml}"#,
        interval = (bt / 5).max(20),
        probe_timeout = bt.max(100),
        stall = 5 * bt + 200,
        // 12 blocks: catching up normally takes one gossip delay, and the catch-up timeout plus
        // the stall detection must fit the 5 s liveness bound at 250 ms blocks (seed 143).
        catch_up = (12 * bt).max(2000),
        liveness = 3 * bt + 200 + 2 * (shape.gossip_latency_ms + shape.gossip_jitter_ms),
        inspection = 2 * bt,
    )
}

/// The conductor endpoints of a run in conductor mode, one per coordinator replica, bound on free
/// loopback ports, and their addresses; none otherwise.
fn bind_conductors(options: &RunOptions) -> Result<(Vec<std::net::TcpListener>, Vec<SocketAddr>), String> {
    let count = if options.conductor { options.replicas.max(1) } else { 0 };
    let mut bound = (Vec::new(), Vec::new());
    for _ in 0..count {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(|err| format!("cannot bind a conductor endpoint: {err}"))?;
        listener.set_nonblocking(true).map_err(|err| format!("conductor endpoint: {err}"))?;
        bound.1.push(listener.local_addr().map_err(|err| format!("conductor endpoint: {err}"))?);
        bound.0.push(listener);
    }
    Ok(bound)
}

/// The simulated chain of a run, every node stopped, with the seed's gossip delays; in conductor
/// mode its op-nodes commit to `conductors` (node `i` to `conductors[i % len]`).
async fn start_simulator(
    seed: u64,
    shape: &RunShape,
    conductors: &[SocketAddr],
) -> Result<Arc<Simulator>, String> {
    let mut sim_config = stopped_chain(seed, shape.nodes, shape.block_time_ms).with_conductors(conductors);
    sim_config.gossip =
        op_sim::GossipConfig { latency_ms: shape.gossip_latency_ms, jitter_ms: shape.gossip_jitter_ms };
    Simulator::start(sim_config).await.map(Arc::new).map_err(|err| format!("simulator did not start: {err}"))
}

/// Conductor mode's end-of-run invariants, and its figures: refused commits, replayed blocks.
fn conductor_checks(entries: &[LedgerEntry], record: &mut Record) {
    for violation in no_zombie_blocks::check(entries).into_iter().chain(committed_before_seen::check(entries))
    {
        record.final_violation(violation);
    }
    let report = &mut record.report;
    report.refused_commits =
        entries.iter().filter(|entry| matches!(entry, LedgerEntry::CommitFailed { .. })).count() as u64;
    report.replayed_blocks = entries
        .iter()
        .filter(|entry| matches!(entry, LedgerEntry::Seen { via: SeenVia::Replay, .. }))
        .count() as u64;
}

/// The coordinator side of a run: the mode parameter of the loop. One value per run, so the
/// size of its variants does not matter.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
enum Coordinators {
    Single(SingleCoordinator),
    Replicas(Replicas),
}

impl Coordinators {
    /// A schedule step that is the mode's (a coordinator restart, a replica episode).
    async fn apply(&mut self, index: usize, step: &Step, record: &mut Record) -> String {
        match (self, step) {
            (Self::Single(single), Step::RestartCoordinator { abrupt, down_ms }) => {
                single.restart_begins(*abrupt, *down_ms, record).await
            }
            (Self::Replicas(replicas), Step::Replica { fault, heal_after_ms }) => {
                replicas.apply(index, fault, *heal_after_ms, record).await
            }
            // Neither schedule holds the other mode's steps (conductor episodes are the runner's).
            (Self::Single(_), Step::Replica { fault, .. }) => {
                format!("skipped {}: a replica fault needs replica mode", fault.name())
            }
            _ => "nothing to do".into(),
        }
    }

    /// The end of a mode step: the coordinator restarted, the replica episode healed.
    async fn heal(&mut self, index: usize, record: &mut Record) -> String {
        match self {
            Self::Single(single) => single.restart_ends(record).await,
            Self::Replicas(replicas) => replicas.heal(index, record).await,
        }
    }

    /// Whether the coordinator side can act, for the liveness check.
    fn can_act(&self) -> bool {
        match self {
            Self::Single(single) => single.can_act(),
            Self::Replicas(replicas) => replicas.can_act(),
        }
    }

    async fn check_alive(&mut self, record: &mut Record, elapsed_ms: u64, now: Instant) {
        match self {
            Self::Single(single) => single.check_alive(record, elapsed_ms).await,
            Self::Replicas(replicas) => replicas.check_alive(record, elapsed_ms, now).await,
        }
    }

    async fn stop_at_end(&mut self, record: &mut Record) {
        match self {
            Self::Single(single) => single.stop_at_end(record).await,
            Self::Replicas(replicas) => replicas.stop_at_end(record).await,
        }
    }

    fn final_checks(&mut self, entries: &[LedgerEntry], record: &mut Record) {
        match self {
            Self::Single(_) => {}
            Self::Replicas(replicas) => replicas.final_checks(entries, record),
        }
    }

    fn event_lines(&self) -> Vec<String> {
        match self {
            Self::Single(single) => single.event_lines(),
            Self::Replicas(replicas) => replicas.event_lines(),
        }
    }
}

/// A timed action derived from the schedule: a step (by index) or the heal of one.
#[derive(Debug, Clone)]
enum Action {
    Apply(usize),
    HealNode(String, FaultKind),
    HealPartition,
    /// The end of the mode's step at that index: a coordinator restart, a replica episode.
    HealMode(usize),
    /// The middle of the conductor episode at that index ("candidates behind": the crash).
    AdvanceEpisode(usize),
    /// The end of the conductor episode at that index.
    HealEpisode(usize),
}

/// The schedule as a time-ordered list of applications and heals.
fn timed_actions(schedule: &[Scheduled]) -> Vec<(u64, Action)> {
    let mut actions = Vec::new();
    for (index, scheduled) in schedule.iter().enumerate() {
        actions.push((scheduled.at_ms, Action::Apply(index)));
        let heal = match &scheduled.step {
            Step::Fault { node, kind, heal_after_ms: Some(hold), .. } => {
                Some((*hold, Action::HealNode(node.clone(), *kind)))
            }
            Step::Fault { heal_after_ms: None, .. } => None,
            Step::Partition { heal_after_ms, .. } => Some((*heal_after_ms, Action::HealPartition)),
            Step::RestartCoordinator { down_ms, .. } => Some((*down_ms, Action::HealMode(index))),
            Step::Replica { heal_after_ms, .. } => Some((*heal_after_ms, Action::HealMode(index))),
            Step::Conductor { episode, heal_after_ms, .. } => {
                if let ConductorEpisode::AheadThenCrash { crash_after_ms } = episode {
                    actions.push((scheduled.at_ms + crash_after_ms, Action::AdvanceEpisode(index)));
                }
                Some((*heal_after_ms, Action::HealEpisode(index)))
            }
        };
        actions.extend(heal.map(|(after_ms, action)| (scheduled.at_ms + after_ms, action)));
    }
    // Stable: a heal due at the same time as a step keeps its schedule order.
    actions.sort_by_key(|(at, _)| *at);
    actions
}

/// The state of one run while it drives the schedule.
struct Run<'a> {
    sim: Arc<Simulator>,
    schedule: &'a [Scheduled],
    shape: RunShape,
    /// Lasting node faults and the partition in force.
    faults: FaultsInForce,
    /// Conductor episodes in force.
    episodes: Episodes,
    liveness: ProductionResumes,
}

impl Run<'_> {
    /// Applies the schedule and checks the invariants every [`TICK`] for `run_ms`.
    async fn drive(&mut self, coordinators: &mut Coordinators, record: &mut Record, run_ms: u64) {
        let actions = timed_actions(self.schedule);
        let started = Instant::now();
        let end = started + Duration::from_millis(run_ms);
        let mut next_action = 0;
        let mut ticker = tokio::time::interval(TICK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while Instant::now() < end {
            ticker.tick().await;
            let now = Instant::now();
            let elapsed_ms = u64::try_from(now.duration_since(started).as_millis()).unwrap_or(u64::MAX);
            while let Some((at_ms, action)) = actions.get(next_action) {
                if *at_ms > elapsed_ms {
                    break;
                }
                next_action += 1;
                let applying = Instant::now();
                let line = self.apply(coordinators, record, action).await;
                record.line(*at_ms, &format!("{line}{}", took(applying)));
            }

            // Safety, on ground truth (the ledger is read only when the cheap report shows trouble).
            let invariants = self.sim.invariants().remove(0);
            if !invariants.is_safe() {
                let entries = self.sim.ledger_entries(0);
                let bound_ms = inspection_bound_ms(self.shape.block_time_ms);
                let (violations, _) =
                    safety_violations(&invariants, &entries, self.sim.ledger().now_ms(), bound_ms);
                for violation in violations {
                    record.violation(Some(elapsed_ms), violation);
                }
            }

            let producible = coordinators.can_act()
                && !self.faults.partitioned
                && has_fault_free_candidate(self.shape.nodes, &self.faults.by_node);
            let ledger_now_ms = self.sim.ledger().now_ms();
            if let Some(violation) =
                self.liveness.check(producible, now, invariants.last_block_ms, ledger_now_ms)
            {
                record.violation_once("liveness", Some(elapsed_ms), violation);
            }

            coordinators.check_alive(record, elapsed_ms, now).await;
        }
    }

    async fn apply(
        &mut self,
        coordinators: &mut Coordinators,
        record: &mut Record,
        action: &Action,
    ) -> String {
        let sim = self.sim.clone();
        match action {
            Action::Apply(index) => {
                let Some(Scheduled { step, .. }) = self.schedule.get(*index) else {
                    return "nothing to do".into();
                };
                match step {
                    Step::Fault { node, kind, params, heal_after_ms } => {
                        match sim.fault(node, *kind, params.clone()) {
                            Ok(()) => {
                                record.count(kind.as_str());
                                if heal_after_ms.is_some() {
                                    self.faults.add(node, *kind);
                                }
                                format!(
                                    "fault {kind} on {node} {}",
                                    serde_json::to_string(params).unwrap_or_default()
                                )
                            }
                            // Behind-the-back starts and stops only apply to nodes in the right state.
                            Err(err) => format!("skipped {kind} on {node}: {err}"),
                        }
                    }
                    Step::Partition { groups, .. } => match sim.partition(groups) {
                        Ok(()) => {
                            record.count("partition");
                            self.faults.partitioned = true;
                            format!("partition {groups:?}")
                        }
                        Err(err) => format!("partition failed: {err}"),
                    },
                    Step::RestartCoordinator { .. } | Step::Replica { .. } => {
                        coordinators.apply(*index, step, record).await
                    }
                    Step::Conductor { target, episode, .. } => {
                        self.episodes.apply(*index, &sim, target, episode, &mut self.faults, record)
                    }
                }
            }
            Action::HealNode(node, kind) => {
                let _ = sim.heal(node, Some(*kind));
                self.faults.remove(node, *kind);
                format!("heal {kind} on {node}")
            }
            Action::HealPartition => {
                let _ = sim.partition(&[]);
                self.faults.partitioned = false;
                "partition healed".into()
            }
            Action::HealMode(index) => coordinators.heal(*index, record).await,
            Action::AdvanceEpisode(index) => self.episodes.advance(*index, &sim, &mut self.faults),
            Action::HealEpisode(index) => self.episodes.heal(*index, &sim, &mut self.faults),
        }
    }
}
