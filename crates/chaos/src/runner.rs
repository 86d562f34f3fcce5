//! Runs one seed: an op-sim chain and the coordinator under the seed's schedule, with the safety
//! and liveness invariants checked continuously on the simulator's ground truth. With
//! [`RunOptions::replicas`] above one the seed runs in replica mode ([`crate::replicated`]).

use crate::schedule::{RunShape, Scheduled, Step, generate, generate_for};
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use op_coordinator::{Listeners, config::Config};
use op_sim::api::{FaultKind, LedgerEntry};
use op_sim::{SimConfig, Simulator};
use opc_wire::coordinator::CoordinatorApiClient;
use serde::Serialize;
use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle, time::Instant};

/// The activation cause the simulator records for `start_sequencer`.
pub(crate) const BEHIND_BACK: &str = "behind the coordinator's back";

/// Options of a chaos run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Length of the fault phase.
    pub duration_ms: u64,
    /// Quiet tail after the last heal, in which the chain must be producing.
    pub tail_ms: u64,
    /// Override of the seed's node count.
    pub nodes: Option<usize>,
    /// Override of the seed's block time.
    pub block_time_ms: Option<u64>,
    /// Longest acceptable gap between blocks once the chain could be producing.
    pub liveness_bound_ms: u64,
    /// Where to write the whole ledger (JSON lines, `seed-N.jsonl`) of a seed that violated.
    pub ledger_dir: Option<std::path::PathBuf>,
    /// Coordinator replicas: 1 runs one coordinator alone; more run a Raft cluster of them in
    /// replica mode, with replica faults on top of the node faults.
    pub replicas: usize,
}

/// What one seed did.
#[derive(Debug, Clone, Serialize)]
pub struct SeedReport {
    /// The seed.
    pub seed: u64,
    /// Its chain shape.
    pub shape: RunShape,
    /// Faults applied, by kind (`partition` and `coordinator_restart` included).
    pub faults: BTreeMap<String, u64>,
    /// Leader starts seen in the ground truth after the first election.
    pub leader_changes: u64,
    /// Blocks sealed.
    pub blocks: u64,
    /// Longest gap between consecutive blocks.
    pub longest_gap_ms: u64,
    /// Missed block slots.
    pub missed_slots: u64,
    /// Conflicts and overlaps explained by injected behind-the-back starts.
    pub injected_overlaps: u64,
    /// Invariant violations.
    pub violations: Vec<String>,
    /// What happened when, for a violation report.
    pub timeline: Vec<String>,
    /// Coordinator replicas the seed ran with.
    pub replicas: usize,
    /// Raft terms in which a replica called `admin_startSequencer` / `admin_stopSequencer`
    /// (replica mode).
    pub acting_terms: u64,
}

impl SeedReport {
    /// An empty report of `seed` with its shape.
    pub(crate) fn new(seed: u64, shape: RunShape) -> Self {
        Self {
            seed,
            shape,
            faults: BTreeMap::new(),
            leader_changes: 0,
            blocks: 0,
            longest_gap_ms: 0,
            missed_slots: 0,
            injected_overlaps: 0,
            violations: Vec::new(),
            timeline: Vec::new(),
            replicas: 1,
            acting_terms: 0,
        }
    }

    /// The report of a seed that did not finish within `limit`.
    pub fn hung(seed: u64, options: &RunOptions, limit: Duration) -> Self {
        let (shape, _) =
            generate_for(seed, options.nodes, options.block_time_ms, options.duration_ms, options.replicas);
        let mut report = Self::new(seed, shape);
        report.replicas = options.replicas;
        report
            .violations
            .push(format!("the run did not finish within {} s: something hung", limit.as_secs()));
        report
    }
}

/// A running coordinator task and the sender that shuts it down gracefully.
type Running = (JoinHandle<Result<(), op_coordinator::StartError>>, oneshot::Sender<()>);

/// A coordinator that can be killed and started again.
struct CoordinatorSlot {
    config_text: String,
    running: Option<Running>,
    client: Option<HttpClient>,
    /// Events of every incarnation so far.
    events: Vec<opc_wire::coordinator::CoordinatorEvent>,
}

impl CoordinatorSlot {
    async fn start(&mut self) -> Result<(), String> {
        let config = Config::from_toml_str(&self.config_text, Vec::<(String, String)>::new(), &[])
            .map_err(|errors| errors.to_string())?;
        let rpc = TcpListener::bind("127.0.0.1:0").await.map_err(|err| err.to_string())?;
        let addr: SocketAddr = rpc.local_addr().map_err(|err| err.to_string())?;
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(op_coordinator::run(
            config,
            Listeners { rpc, metrics: None, raft: None },
            async move {
                let _ = shutdown_rx.await;
            },
        ));
        self.client = HttpClientBuilder::default()
            .request_timeout(Duration::from_secs(2))
            .build(format!("http://{addr}"))
            .ok();
        self.running = Some((task, shutdown_tx));
        Ok(())
    }

    /// Stops it; returns a violation if it had died on its own or panicked. Its event timeline
    /// (in memory, lost with it) is saved first.
    async fn stop(&mut self, abrupt: bool) -> Option<String> {
        if let Some(client) = &self.client
            && let Ok(events) = client.events(None, Some(1000)).await
        {
            self.events.extend(events);
        }
        let (task, shutdown) = self.running.take()?;
        self.client = None;
        if task.is_finished() {
            return Some(format!("coordinator exited on its own: {:?}", task.await));
        }
        if abrupt {
            task.abort();
        } else {
            let _ = shutdown.send(());
        }
        match tokio::time::timeout(Duration::from_secs(10), task).await {
            Err(_) => Some("coordinator did not shut down within 10 s".into()),
            Ok(Err(join)) if join.is_panic() => Some(format!("coordinator panicked: {join}")),
            Ok(Ok(Err(err))) => Some(format!("coordinator failed: {err}")),
            Ok(_) => None,
        }
    }
}

/// A timed action derived from the schedule (faults and their heals).
#[derive(Debug, Clone)]
enum Action {
    Apply(Step),
    HealFault(String, FaultKind),
    HealPartition,
    StartCoordinator,
}

/// Coordinator settings scaled to the block time.
pub(crate) fn coordinator_config(shape: &RunShape, data_dir: &str, nodes_toml: &str) -> String {
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

/// The simulated chain of a run: every node stopped (as operators should run them, with
/// `--sequencer.stopped`), so the coordinator elects the first leader.
pub(crate) async fn start_simulator(seed: u64, shape: &RunShape) -> Result<Arc<Simulator>, String> {
    let mut sim_config = SimConfig::uniform(1, shape.nodes, shape.block_time_ms);
    sim_config.seed = seed;
    sim_config.gossip =
        op_sim::GossipConfig { latency_ms: shape.gossip_latency_ms, jitter_ms: shape.gossip_jitter_ms };
    for node in &mut sim_config.chains[0].nodes {
        node.options.start_active = false;
    }
    Simulator::start(sim_config).await.map(Arc::new).map_err(|err| format!("simulator did not start: {err}"))
}

/// Runs `seed` and reports what happened.
pub async fn run_seed(seed: u64, options: &RunOptions) -> SeedReport {
    if options.replicas > 1 {
        return Box::pin(crate::replicated::run_seed(seed, options)).await;
    }
    let (shape, schedule) = generate(seed, options.nodes, options.block_time_ms, options.duration_ms);
    let mut report = SeedReport::new(seed, shape);
    let sim = match start_simulator(seed, &shape).await {
        Ok(sim) => sim,
        Err(err) => {
            report.violations.push(err);
            return report;
        }
    };
    let Ok(data_dir) = tempfile::tempdir() else {
        report.violations.push("cannot create a temp dir".into());
        return report;
    };
    let config_text =
        coordinator_config(&shape, &data_dir.path().display().to_string(), &sim.coordinator_config());
    let mut slot = CoordinatorSlot { config_text, running: None, client: None, events: Vec::new() };
    if let Err(err) = slot.start().await {
        report.violations.push(format!("coordinator did not start: {err}"));
        return report;
    }

    let actions = timed_actions(&schedule);
    let started = Instant::now();
    let end = started + Duration::from_millis(options.duration_ms + options.tail_ms);
    let timeline = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = |timeline: &Arc<Mutex<Vec<String>>>, line: String| {
        if let Ok(mut lines) = timeline.lock() {
            lines.push(line);
        }
    };
    let mut next_action = 0;
    let mut faults_active: BTreeMap<String, BTreeSet<FaultKind>> = BTreeMap::new();
    let mut partitioned = false;
    let mut coordinator_up = true;
    let mut producible_since: Option<Instant> = None;
    let mut seen_violations = BTreeSet::new();
    let mut status_failures = 0;
    let mut ticker = tokio::time::interval(Duration::from_millis(50));
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
            let line = apply(
                &sim,
                &mut slot,
                action,
                &mut faults_active,
                &mut partitioned,
                &mut coordinator_up,
                &mut report,
            )
            .await;
            log(&timeline, format!("{at_ms:>6} ms  {line}"));
        }

        // Safety, on ground truth (the ledger is read only when the cheap report shows trouble).
        let invariants = sim.invariants().remove(0);
        let inspection_bound_ms = 6 * shape.block_time_ms + 2000;
        let (violations, _) = if invariants.is_safe() {
            (Vec::new(), 0)
        } else {
            safety_violations(&invariants, &sim.ledger_entries(0), sim.ledger().now_ms(), inspection_bound_ms)
        };
        for violation in violations {
            if seen_violations.insert(violation.clone()) {
                report.violations.push(format!("at {elapsed_ms} ms: {violation}"));
            }
        }

        // Liveness: once a fault-free candidate, a whole network and a running coordinator have
        // existed for the bound, the chain must have sealed a block within the bound.
        let healthy_candidates = (0..shape.nodes)
            .filter(|i| faults_active.get(&format!("seq-{i}")).is_none_or(BTreeSet::is_empty))
            .count();
        let producible = coordinator_up && !partitioned && healthy_candidates > 0;
        producible_since = if producible { producible_since.or(Some(now)) } else { None };
        if let Some(since) = producible_since
            && now.duration_since(since) >= Duration::from_millis(options.liveness_bound_ms)
        {
            let last_block_ms = invariants.last_block_ms;
            let sim_now_ms = sim.ledger().now_ms();
            let quiet_ms = last_block_ms.map_or(sim_now_ms, |t| sim_now_ms.saturating_sub(t));
            if quiet_ms > options.liveness_bound_ms {
                let violation = format!(
                    "no block for {quiet_ms} ms although the chain could produce for {} ms (bound {} ms)",
                    now.duration_since(since).as_millis(),
                    options.liveness_bound_ms
                );
                if seen_violations.insert("liveness".into()) {
                    report.violations.push(format!("at {elapsed_ms} ms: {violation}"));
                }
            }
        }

        // The coordinator must answer (not hang) and must not have died.
        if coordinator_up && elapsed_ms % 500 < 50 {
            let finished = slot.running.as_ref().is_some_and(|(task, _)| task.is_finished());
            if finished {
                if let Some(violation) = slot.stop(false).await {
                    report.violations.push(format!("at {elapsed_ms} ms: {violation}"));
                }
                coordinator_up = false;
            } else if let Some(client) = &slot.client {
                match client.status(None).await {
                    Ok(_) => status_failures = 0,
                    Err(err) => {
                        status_failures += 1;
                        if status_failures >= 3 && seen_violations.insert("coordinator-hung".into()) {
                            report
                                .violations
                                .push(format!("at {elapsed_ms} ms: coordinator does not answer: {err}"));
                        }
                    }
                }
            }
        }
    }

    if let Some(violation) = slot.stop(false).await {
        report.violations.push(violation);
    }
    // The coordinator's own timeline (every incarnation) explains its decisions.
    let coordinator_events = std::mem::take(&mut slot.events);
    let invariants = sim.invariants().remove(0);
    report.blocks = invariants.blocks_sealed;
    report.longest_gap_ms = invariants.longest_gap_ms;
    report.missed_slots = invariants.missed_slots;
    let entries = sim.ledger_entries(0);
    let activations = entries.iter().filter(
        |entry| matches!(entry, LedgerEntry::Activated { cause, .. } if cause == "admin_startSequencer"),
    );
    report.leader_changes = (activations.count() as u64).saturating_sub(1);
    report.injected_overlaps =
        safety_violations(&invariants, &entries, sim.ledger().now_ms(), 6 * shape.block_time_ms + 2000).1;
    if !report.violations.is_empty() {
        report.timeline = timeline.lock().map(|lines| lines.clone()).unwrap_or_default();
        if let Some(dir) = &options.ledger_dir {
            let lines: Vec<String> =
                entries.iter().filter_map(|entry| serde_json::to_string(entry).ok()).collect();
            let path = dir.join(format!("seed-{seed}.jsonl"));
            report.timeline.push(match std::fs::write(&path, lines.join("\n") + "\n") {
                Ok(()) => format!("whole ledger written to {}", path.display()),
                Err(error) => format!("could not write the ledger to {}: {error}", path.display()),
            });
        }
        for entry in entries.iter().filter(|entry| !matches!(entry, LedgerEntry::Block { .. })) {
            report.timeline.push(format!("ledger: {}", serde_json::to_string(entry).unwrap_or_default()));
        }
        for event in &coordinator_events {
            report.timeline.push(format!(
                "coordinator {}: {} {} {}",
                event.at_unix_ms,
                event.kind,
                event.node.as_deref().unwrap_or("-"),
                event.detail
            ));
        }
    }
    sim.shutdown();
    report
}

/// The schedule as a time-ordered list of applications and heals.
fn timed_actions(schedule: &[Scheduled]) -> Vec<(u64, Action)> {
    let mut actions = Vec::new();
    for scheduled in schedule {
        actions.push((scheduled.at_ms, Action::Apply(scheduled.step.clone())));
        match &scheduled.step {
            Step::Fault { node, kind, heal_after_ms: Some(hold), .. } => {
                actions.push((scheduled.at_ms + hold, Action::HealFault(node.clone(), *kind)));
            }
            Step::Partition { heal_after_ms, .. } => {
                actions.push((scheduled.at_ms + heal_after_ms, Action::HealPartition));
            }
            Step::RestartCoordinator { down_ms, .. } => {
                actions.push((scheduled.at_ms + down_ms, Action::StartCoordinator));
            }
            // Replica mode has its own runner; single-coordinator schedules hold none.
            Step::Fault { .. } | Step::Replica { .. } => {}
        }
    }
    actions.sort_by_key(|(at, _)| *at);
    actions
}

async fn apply(
    sim: &Simulator,
    slot: &mut CoordinatorSlot,
    action: &Action,
    faults_active: &mut BTreeMap<String, BTreeSet<FaultKind>>,
    partitioned: &mut bool,
    coordinator_up: &mut bool,
    report: &mut SeedReport,
) -> String {
    let mut count = |name: &str| *report.faults.entry(name.to_owned()).or_default() += 1;
    match action {
        Action::Apply(Step::Fault { node, kind, params, heal_after_ms }) => {
            match sim.fault(node, *kind, params.clone()) {
                Ok(()) => {
                    count(kind.as_str());
                    if heal_after_ms.is_some() {
                        faults_active.entry(node.clone()).or_default().insert(*kind);
                    }
                    format!("fault {kind} on {node} {}", serde_json::to_string(params).unwrap_or_default())
                }
                // Behind-the-back starts and stops only apply to nodes in the right state.
                Err(err) => format!("skipped {kind} on {node}: {err}"),
            }
        }
        Action::Apply(Step::Partition { groups, .. }) => match sim.partition(groups) {
            Ok(()) => {
                count("partition");
                *partitioned = true;
                format!("partition {groups:?}")
            }
            Err(err) => format!("partition failed: {err}"),
        },
        Action::Apply(Step::RestartCoordinator { abrupt, down_ms }) => {
            count("coordinator_restart");
            *coordinator_up = false;
            let violation = slot.stop(*abrupt).await;
            if let Some(violation) = &violation {
                report.violations.push(violation.clone());
            }
            format!("coordinator {} for {down_ms} ms", if *abrupt { "killed" } else { "stopped" })
        }
        Action::Apply(Step::Replica { fault, .. }) => {
            format!("skipped {}: a replica fault needs replica mode", fault.name())
        }
        Action::HealFault(node, kind) => {
            let _ = sim.heal(node, Some(*kind));
            if let Some(kinds) = faults_active.get_mut(node) {
                kinds.remove(kind);
            }
            format!("heal {kind} on {node}")
        }
        Action::HealPartition => {
            let _ = sim.partition(&[]);
            *partitioned = false;
            "partition healed".into()
        }
        Action::StartCoordinator => match slot.start().await {
            Ok(()) => {
                *coordinator_up = true;
                "coordinator started".into()
            }
            Err(err) => {
                report.violations.push(format!("coordinator did not restart: {err}"));
                format!("coordinator restart failed: {err}")
            }
        },
    }
}

/// Unsafe re-orgs and double sequencing that injected behind-the-back starts do not explain.
///
/// A `start_sequencer` fault makes a second sequencer on purpose; what it causes (its blocks
/// conflicting with the leader's, the overlap of the two sealing spans) is counted as injected as
/// long as inspection stopped it before it sealed more than `inspection_bound_ms` worth of blocks.
/// Anything else is a violation.
///
/// The injected span of such a node ends when it stops, or when the coordinator calls
/// `admin_startSequencer` on it: from then on the coordinator has taken it as its leader (a node
/// started behind the back at exactly the stopped hash is adopted, not stopped), and what it seals
/// is the coordinator's doing.
pub(crate) fn safety_violations(
    report: &op_sim::api::ChainInvariants,
    entries: &[LedgerEntry],
    now_ms: u64,
    inspection_bound_ms: u64,
) -> (Vec<String>, u64) {
    let max_injected_blocks = inspection_bound_ms / report.block_time_ms.max(1) + 2;
    let mut injected = 0;
    if report.is_safe() {
        return (Vec::new(), injected);
    }
    // Windows in which a node ran because of a behind-the-back start.
    let mut windows: Vec<(String, u64, u64)> = Vec::new();
    let mut violations = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        if let LedgerEntry::Activated { node, cause, t_ms, .. } = entry
            && cause.contains(BEHIND_BACK)
        {
            let stopped = entries[i + 1..].iter().find_map(|later| match later {
                LedgerEntry::Deactivated { node: other, t_ms, .. } if other == node => Some(*t_ms),
                _ => None,
            });
            // Admin calls are appended when answered, so they are searched by arrival time.
            let adopted = entries
                .iter()
                .filter_map(|e| match e {
                    LedgerEntry::AdminCall { node: other, method, t_ms: at, .. }
                        if other == node && method == "admin_startSequencer" && at >= t_ms =>
                    {
                        Some(*at)
                    }
                    _ => None,
                })
                .min();
            let end = stopped.into_iter().chain(adopted).min().unwrap_or(now_ms);
            // Measured in blocks, not time: a node frozen right after its start seals nothing
            // and cannot be reached, so only what it seals counts against inspection.
            let sealed = entries
                .iter()
                .filter(|e| matches!(e, LedgerEntry::Block { producer, t_ms: at, .. } if producer == node && (*t_ms..=end).contains(at)))
                .count() as u64;
            if sealed > max_injected_blocks {
                violations.push(format!(
                    "{node}, started behind the coordinator's back at {t_ms} ms, sealed more than \
                     {max_injected_blocks} blocks before inspection stopped it"
                ));
            }
            windows.push((node.clone(), *t_ms, end + 2 * inspection_bound_ms));
        }
    }
    let in_window = |t: u64| windows.iter().any(|(_, from, to)| (*from..=*to).contains(&t));
    let seal_time = |number: u64, hash: &alloy_primitives::B256| {
        entries.iter().find_map(|entry| match entry {
            LedgerEntry::Block { number: n, hash: h, t_ms, .. } if *n == number && h == hash => Some(*t_ms),
            _ => None,
        })
    };
    for conflict in &report.unsafe_reorgs {
        let explained =
            conflict.blocks.iter().any(|(_, hash)| seal_time(conflict.number, hash).is_some_and(in_window));
        if explained {
            injected += 1;
        } else {
            violations.push(format!("unsafe re-org at height {}: {:?}", conflict.number, conflict.blocks));
        }
    }
    for overlap in &report.double_sequencing {
        let explained = windows.iter().any(|(node, from, to)| {
            let span = if *node == overlap.first { overlap.first_span_ms } else { overlap.second_span_ms };
            (*node == overlap.first || *node == overlap.second) && span.0 >= *from && span.0 <= *to
        });
        if explained {
            injected += 1;
        } else {
            violations.push(format!(
                "double sequencing: {} sealed during {:?} while {} sealed during {:?}",
                overlap.first, overlap.first_span_ms, overlap.second, overlap.second_span_ms
            ));
        }
    }
    (violations, injected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::B256;
    use op_sim::api::{ChainInvariants, ConflictingBlocks};
    use opc_wire::BlockId;

    const BLOCK_MS: u64 = 250;
    const BOUND_MS: u64 = 3500;

    fn hash(n: u64, branch: u8) -> B256 {
        let mut bytes = [branch; 32];
        bytes[..8].copy_from_slice(&n.to_be_bytes());
        B256::from(bytes)
    }

    fn block(producer: &str, number: u64, branch: u8, t_ms: u64) -> LedgerEntry {
        LedgerEntry::Block {
            chain: "devnet".into(),
            producer: producer.into(),
            number,
            hash: hash(number, branch),
            parent: hash(number - 1, branch),
            t_ms,
        }
    }

    fn behind_back_start(node: &str, number: u64, t_ms: u64) -> LedgerEntry {
        LedgerEntry::Activated {
            chain: "devnet".into(),
            node: node.into(),
            head: BlockId { hash: hash(number, 0), number },
            cause: format!("started {BEHIND_BACK}"),
            t_ms,
        }
    }

    fn start_call(node: &str, t_ms: u64) -> LedgerEntry {
        LedgerEntry::AdminCall {
            chain: "devnet".into(),
            node: node.into(),
            method: "admin_startSequencer".into(),
            replica: None,
            term: None,
            // Already running: the coordinator adopts the node instead.
            accepted: false,
            t_ms,
            answered_ms: Some(t_ms),
        }
    }

    /// A report with one conflict at height 5 between branch 0 (seq-0) and branch 1 (seq-2).
    fn unsafe_report() -> ChainInvariants {
        ChainInvariants {
            chain: "devnet".into(),
            blocks_sealed: 40,
            unsafe_reorgs: vec![ConflictingBlocks {
                number: 5,
                blocks: vec![("seq-0".into(), hash(5, 0)), ("seq-2".into(), hash(5, 1))],
            }],
            double_sequencing: Vec::new(),
            node_reorgs: 0,
            longest_gap_ms: 0,
            longest_gap_ended_at: None,
            missed_slots: 0,
            block_time_ms: BLOCK_MS,
            last_block_ms: None,
        }
    }

    /// seq-1 is started behind the back at 10 000 ms and seals 30 blocks; the conflict at height 5
    /// (sealed long before) is unexplained either way.
    fn run_of_seq_1(adopted_at: Option<u64>) -> Vec<LedgerEntry> {
        let mut entries = vec![
            block("seq-0", 5, 0, 1000),
            block("seq-2", 5, 1, 1100),
            behind_back_start("seq-1", 40, 10_000),
        ];
        entries.extend(adopted_at.map(|at| start_call("seq-1", at)));
        entries.extend((41..71).map(|n| block("seq-1", n, 0, 10_000 + (n - 40) * BLOCK_MS)));
        entries
    }

    #[test]
    fn a_node_started_behind_the_back_and_never_stopped_is_a_violation() {
        let (violations, _) = safety_violations(&unsafe_report(), &run_of_seq_1(None), 20_000, BOUND_MS);
        assert_eq!(violations.len(), 2, "{violations:?}");
        assert!(
            violations[0].contains("seq-1, started behind the coordinator's back at 10000 ms"),
            "{violations:?}"
        );
        assert!(violations[1].contains("unsafe re-org at height 5"), "{violations:?}");
    }

    #[test]
    fn a_node_started_behind_the_back_that_the_coordinator_adopts_is_its_leader_from_then_on() {
        // Seed 60: the leader crashed, a sequencer was started behind the back at its last block,
        // and the coordinator's fail-over started (adopted) that very node 5 ms later.
        let (violations, _) =
            safety_violations(&unsafe_report(), &run_of_seq_1(Some(10_005)), 20_000, BOUND_MS);
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert!(violations[0].contains("unsafe re-org at height 5"), "{violations:?}");
    }

    #[test]
    fn a_conflict_with_the_blocks_of_a_node_started_behind_the_back_is_injected() {
        let mut entries = run_of_seq_1(Some(10_005));
        entries.push(block("seq-2", 41, 1, 10_100));
        let mut report = unsafe_report();
        report.unsafe_reorgs[0] = ConflictingBlocks {
            number: 41,
            blocks: vec![("seq-1".into(), hash(41, 0)), ("seq-2".into(), hash(41, 1))],
        };
        assert_eq!(safety_violations(&report, &entries, 20_000, BOUND_MS), (Vec::new(), 1));
    }
}
