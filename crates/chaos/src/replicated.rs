//! Replica mode: one seed's chain and a Raft cluster of coordinator replicas under the node faults
//! of the seed plus replica faults (crashes, partitions between replicas, the acting replica cut
//! off from the sequencers, lost majorities), checked on the simulator's ground truth.
//!
//! Each replica runs in its own tokio runtime, started from the same config with its own
//! `cluster.id`, its own Raft and API listeners (the same addresses for its whole life, as the
//! config lists them) and its own directory under one data dir. A killed replica is its runtime
//! dropped: actors, Raft core, Raft server and calls in flight all go at once, as with a killed
//! process (aborting only the `op_coordinator::run` task would leave the Raft replica running, see
//! [`opc_cluster::Cluster`]). It restarts from its data dir.
//!
//! # Invariants on top of the single-coordinator ones
//!
//! | invariant                         | source                            | rule                                                                       |
//! |-----------------------------------|-----------------------------------|----------------------------------------------------------------------------|
//! | at most one replica acts          | ledger `admin_call` entries       | sorted by arrival, the term never decreases and a term has one replica      |
//! | calls are labelled                | ledger `admin_call` entries       | every start/stop carries `x-opc-replica` and `x-opc-term`                  |
//! | nobody acts without a majority    | ledger `admin_call` entries       | no call arrives from `election_timeout_max_ms` after the loss to its heal  |
//! | liveness                          | ledger, the runner's fault state  | as alone, with "a majority of replicas up, connected and reaching the nodes" for "the coordinator runs" |
//! | no replica panics, hangs or dies  | `coordinator_status` and `coordinator_clusterMembership` of each live replica, the task, a panic hook | answers within 2 s, exits only when stopped, shuts down within 10 s |

use crate::{
    runner::{RunOptions, SeedReport, coordinator_config, safety_violations, start_simulator},
    schedule::{RaftTimings, ReplicaFault, ReplicaTarget, Scheduled, Step, generate_replicated},
};
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use op_coordinator::{Listeners, StartError, config::Config};
use op_sim::Simulator;
use op_sim::api::{FaultKind, IsolateMode, LedgerEntry};
use opc_cluster::{ClusterError, FaultSpec};
use opc_wire::coordinator::{CoordinatorApiClient, CoordinatorEvent};
use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    path::Path,
    sync::{Arc, Mutex, Once},
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use tokio::{net::TcpListener, runtime::Runtime, sync::watch, task::JoinHandle, time::Instant};

/// How long a replica may take to answer `coordinator_status`.
const STATUS_TIMEOUT: Duration = Duration::from_secs(2);
/// How often each live replica is asked.
const STATUS_EVERY: Duration = Duration::from_millis(500);
/// Consecutive unanswered checks that make a replica hung.
const STATUS_FAILURES: u32 = 3;
/// How long a replica may take to shut down when asked.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the run loop may overrun the schedule before the run is cut short (the caller gives
/// a seed a minute).
const OVERRUN: Duration = Duration::from_secs(20);
/// How long stopping every replica at the end may take in all.
const STOP_BUDGET: Duration = Duration::from_secs(30);
/// How long a fault aimed at the leader waits for one to be elected before it is skipped.
const LEADER_WAIT: Duration = Duration::from_millis(1500);
/// How long a restart keeps trying to take its store and ports back from the killed incarnation
/// (its last store writes finish on the blocking pool after the runtime is gone).
const RESTART_RETRY: Duration = Duration::from_secs(5);

/// Panics in replica threads, by thread name: tokio catches a task's panic, so the hook is the
/// only place that sees one in an actor or in the Raft core.
static PANICS: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());
static PANIC_HOOK: Once = Once::new();

fn install_panic_hook() {
    PANIC_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(name) = std::thread::current().name()
                && name.starts_with("opc-chaos-")
                && let Ok(mut panics) = PANICS.lock()
            {
                panics.push((name.to_owned(), info.to_string()));
            }
            previous(info);
        }));
    });
}

/// The thread name of every thread of replica `id` of `seed`'s run.
fn thread_name(seed: u64, id: u64) -> String {
    format!("opc-chaos-s{seed}-r{id}")
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
}

/// One life of a replica: its runtime and the task running the coordinator on it. Dropping it
/// kills the replica (a runtime must not be dropped the blocking way inside the runner's).
struct Incarnation {
    number: u64,
    /// Taken by [`Incarnation::kill`].
    runtime: Option<Runtime>,
    task: JoinHandle<Result<(), String>>,
    stop_tx: watch::Sender<bool>,
}

impl Incarnation {
    /// Drops the runtime with everything on it, without waiting.
    fn kill(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }

    /// Waits for the task after it was asked to stop; a violation if it did not stop, failed or
    /// panicked. The runtime is dropped either way.
    async fn reap(mut self, id: u64) -> Option<String> {
        let _ = self.stop_tx.send(true);
        let outcome = tokio::time::timeout(SHUTDOWN_TIMEOUT, &mut self.task).await;
        self.kill();
        match outcome {
            Err(_) => Some(format!("replica {id} did not shut down within {} s", SHUTDOWN_TIMEOUT.as_secs())),
            Ok(Err(join)) if join.is_panic() => Some(format!("replica {id} panicked: {join}")),
            Ok(Ok(Err(err))) => Some(format!("replica {id} failed: {err}")),
            Ok(_) => None,
        }
    }
}

impl Drop for Incarnation {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A coordinator replica that can be killed and started again.
struct ReplicaSlot {
    id: u64,
    seed: u64,
    raft_addr: SocketAddr,
    api_addr: SocketAddr,
    /// Its config: the shared text with `cluster.id` set to `id`.
    config: Config,
    /// Admin API client, with the deadline a status answer must meet.
    client: HttpClient,
    running: Option<Incarnation>,
    /// Shut down without waiting; reaped before the next start.
    stopping: Option<Incarnation>,
    incarnations: u64,
    /// Events of every incarnation, saved before it went away.
    events: Vec<CoordinatorEvent>,
    /// The check in flight, with the incarnation it asks.
    status_check: Option<(u64, JoinHandle<Result<(), String>>)>,
    last_status_check: Option<Instant>,
    status_failures: u32,
    /// A hang was reported for the current incarnation.
    reported_hung: bool,
}

impl ReplicaSlot {
    fn is_up(&self) -> bool {
        self.running.is_some()
    }

    /// Starts a new incarnation on the replica's addresses and data dir.
    async fn start(&mut self) -> Result<(), String> {
        if let Some(previous) = self.stopping.take()
            && let Some(violation) = previous.reap(self.id).await
        {
            return Err(violation);
        }
        let rpc = bind_again(self.api_addr).await?;
        let raft = bind_again(self.raft_addr).await?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(thread_name(self.seed, self.id))
            .enable_all()
            .build()
            .map_err(|err| format!("replica {}: cannot build its runtime: {err}", self.id))?;
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = runtime.spawn(run_replica(self.config.clone(), rpc, raft, stop_rx));
        self.incarnations += 1;
        self.running = Some(Incarnation { number: self.incarnations, runtime: Some(runtime), task, stop_tx });
        self.status_check = None;
        self.status_failures = 0;
        self.reported_hung = false;
        Ok(())
    }

    /// Keeps the current incarnation's events (they live in its memory).
    async fn save_events(&mut self) {
        if self.running.is_some()
            && let Ok(Ok(events)) =
                tokio::time::timeout(STATUS_TIMEOUT, self.client.events(None, Some(1000))).await
        {
            self.events.extend(events);
        }
    }

    /// Kills the replica (`abrupt`: its runtime dropped mid-flight) or asks it to shut down
    /// without waiting. A violation if it had already died on its own.
    async fn crash(&mut self, abrupt: bool) -> Option<String> {
        self.save_events().await;
        let mut incarnation = self.running.take()?;
        if incarnation.task.is_finished() {
            return incarnation
                .reap(self.id)
                .await
                .or(Some(format!("replica {} had exited on its own", self.id)));
        }
        if abrupt {
            incarnation.kill();
        } else {
            let _ = incarnation.stop_tx.send(true);
            self.stopping = Some(incarnation);
        }
        None
    }

    /// Shuts the replica down and waits for it (the end of a run).
    async fn stop(&mut self) -> Vec<String> {
        self.save_events().await;
        let mut violations = Vec::new();
        for incarnation in [self.running.take(), self.stopping.take()].into_iter().flatten() {
            violations.extend(incarnation.reap(self.id).await);
        }
        violations
    }
}

/// Binds `addr` again: the killed incarnation's sockets close when its runtime's worker drops
/// them, a moment after the kill.
async fn bind_again(addr: SocketAddr) -> Result<std::net::TcpListener, String> {
    let deadline = Instant::now() + RESTART_RETRY;
    loop {
        match std::net::TcpListener::bind(addr) {
            Ok(listener) => {
                listener.set_nonblocking(true).map_err(|err| format!("{addr}: {err}"))?;
                return Ok(listener);
            }
            Err(err) if Instant::now() >= deadline => return Err(format!("cannot bind {addr} again: {err}")),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// One incarnation's task, on the replica's own runtime. A store still held by the killed
/// incarnation's last writes is retried for [`RESTART_RETRY`].
async fn run_replica(
    config: Config,
    rpc: std::net::TcpListener,
    raft: std::net::TcpListener,
    stop_rx: watch::Receiver<bool>,
) -> Result<(), String> {
    let deadline = Instant::now() + RESTART_RETRY;
    loop {
        let listeners = Listeners {
            rpc: TcpListener::from_std(rpc.try_clone().map_err(|err| err.to_string())?)
                .map_err(|err| err.to_string())?,
            metrics: None,
            raft: Some(
                TcpListener::from_std(raft.try_clone().map_err(|err| err.to_string())?)
                    .map_err(|err| err.to_string())?,
            ),
        };
        let mut stop_rx = stop_rx.clone();
        let stopped = async move {
            let _ = stop_rx.wait_for(|stop| *stop).await;
        };
        match Box::pin(op_coordinator::run(config.clone(), listeners, stopped)).await {
            Err(StartError::Cluster(ClusterError::StoreInUse { .. })) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            outcome => return outcome.map_err(|err| err.to_string()),
        }
    }
}

/// What an applied replica episode turned into, for its heal.
#[derive(Debug, Clone)]
enum Resolved {
    Crashed(Vec<u64>),
    Partitioned,
    Isolated(u64),
    Skipped,
}

/// A window in which the replicas had no majority (ledger ms; `to` None while it lasts).
#[derive(Debug, Clone)]
struct MajorityLoss {
    from_ms: u64,
    to_ms: Option<u64>,
    what: String,
}

/// A timed action derived from the schedule.
#[derive(Debug, Clone)]
enum Action {
    Apply(usize),
    HealNode(String, FaultKind),
    HealPartition,
    HealReplica(usize),
}

fn timed_actions(schedule: &[Scheduled]) -> Vec<(u64, Action)> {
    let mut actions = Vec::new();
    for (index, scheduled) in schedule.iter().enumerate() {
        actions.push((scheduled.at_ms, Action::Apply(index)));
        match &scheduled.step {
            Step::Fault { node, kind, heal_after_ms: Some(hold), .. } => {
                actions.push((scheduled.at_ms + hold, Action::HealNode(node.clone(), *kind)));
            }
            Step::Partition { heal_after_ms, .. } => {
                actions.push((scheduled.at_ms + heal_after_ms, Action::HealPartition));
            }
            Step::Replica { heal_after_ms, .. } => {
                actions.push((scheduled.at_ms + heal_after_ms, Action::HealReplica(index)));
            }
            Step::Fault { .. } | Step::RestartCoordinator { .. } => {}
        }
    }
    actions.sort_by_key(|(at, _)| *at);
    actions
}

/// The replicas of a run and what the runner has done to them.
struct Replicas {
    slots: Vec<ReplicaSlot>,
    http: Client<HttpConnector, Full<Bytes>>,
    /// Replica groups of the partition in force.
    raft_groups: Option<Vec<Vec<u64>>>,
    /// Applied episodes not healed yet.
    episodes: BTreeMap<usize, Resolved>,
    majority_losses: Vec<MajorityLoss>,
}

impl Replicas {
    fn slot(&mut self, id: u64) -> Option<&mut ReplicaSlot> {
        self.slots.iter_mut().find(|slot| slot.id == id)
    }

    fn ids(&self) -> Vec<u64> {
        self.slots.iter().map(|slot| slot.id).collect()
    }

    /// The acting replica and its term: the one that says it acts (the highest term if, briefly,
    /// two do), else the leader the answering replicas name.
    async fn acting(&self) -> Option<(u64, u64)> {
        let mut acting = Vec::new();
        let mut named: BTreeMap<u64, (usize, u64)> = BTreeMap::new();
        for slot in self.slots.iter().filter(|slot| slot.is_up()) {
            let Ok(Ok(info)) =
                tokio::time::timeout(Duration::from_millis(500), slot.client.cluster_membership()).await
            else {
                continue;
            };
            if info.acting {
                acting.push((info.term, slot.id));
            }
            if let Some(leader) = info.leader {
                let entry = named.entry(leader).or_insert((0, info.term));
                entry.0 += 1;
                entry.1 = entry.1.max(info.term);
            }
        }
        if let Some((term, id)) = acting.into_iter().max() {
            return Some((id, term));
        }
        named
            .into_iter()
            .filter(|(id, _)| self.slots.iter().any(|slot| slot.id == *id && slot.is_up()))
            .max_by_key(|(_, (votes, _))| *votes)
            .map(|(id, (_, term))| (id, term))
    }

    /// [`Replicas::acting`], waiting up to [`LEADER_WAIT`] for an election in progress.
    async fn leader(&self) -> Option<(u64, u64)> {
        let deadline = Instant::now() + LEADER_WAIT;
        loop {
            let leader = self.acting().await;
            if leader.is_some() || Instant::now() >= deadline {
                return leader;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn resolve(&self, target: ReplicaTarget) -> Option<(u64, String)> {
        match target {
            ReplicaTarget::Replica(id) => Some((id, format!("replica {id}"))),
            ReplicaTarget::Leader => {
                self.leader().await.map(|(id, term)| (id, format!("replica {id} (acting, term {term})")))
            }
        }
    }

    /// Cuts Raft traffic between the groups (drops on both sides); replicas that are down get
    /// theirs when they restart.
    async fn partition(&mut self, groups: Vec<Vec<u64>>) -> Vec<String> {
        let mut problems = Vec::new();
        for slot in self.slots.iter().filter(|slot| slot.is_up()) {
            let spec = partition_spec(&groups, slot.id);
            if let Err(err) = post_fault(&self.http, slot.raft_addr, "/fault", Some(&spec)).await {
                problems.push(format!("replica {}: {err}", slot.id));
            }
        }
        self.raft_groups = Some(groups);
        problems
    }

    async fn heal_partition(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        for slot in self.slots.iter().filter(|slot| slot.is_up()) {
            if let Err(err) = post_fault(&self.http, slot.raft_addr, "/fault/heal", None).await {
                problems.push(format!("replica {}: {err}", slot.id));
            }
        }
        self.raft_groups = None;
        problems
    }

    /// Restarts `id`, with the Raft partition in force if there is one.
    async fn restart(&mut self, id: u64) -> Result<(), String> {
        let groups = self.raft_groups.clone();
        let http = self.http.clone();
        let Some(slot) = self.slot(id) else { return Err(format!("no replica {id}")) };
        if slot.is_up() {
            return Ok(());
        }
        slot.start().await?;
        if let Some(groups) = groups {
            let spec = partition_spec(&groups, id);
            post_fault(&http, slot.raft_addr, "/fault", Some(&spec)).await?;
        }
        Ok(())
    }

    /// True when a majority of replicas are up, can reach each other and reach the nodes.
    fn majority_reaches_sequencers(&self, isolated: &BTreeMap<u64, IsolateMode>) -> bool {
        let majority = self.slots.len() / 2 + 1;
        let groups = self.raft_groups.clone().unwrap_or_else(|| vec![self.ids()]);
        groups.iter().any(|group| {
            group
                .iter()
                .filter(|id| !isolated.contains_key(id))
                .filter(|id| self.slots.iter().any(|slot| slot.id == **id && slot.is_up()))
                .count()
                >= majority
        })
    }
}

/// The `/fault` body of replica `id` under `groups`: drop everything to replicas outside its group.
fn partition_spec(groups: &[Vec<u64>], id: u64) -> FaultSpec {
    let own: &[u64] = groups.iter().find(|group| group.contains(&id)).map_or(&[], Vec::as_slice);
    let drop_to =
        groups.iter().flatten().copied().filter(|other| *other != id && !own.contains(other)).collect();
    FaultSpec { drop_to, ..FaultSpec::default() }
}

async fn post_fault(
    http: &Client<HttpConnector, Full<Bytes>>,
    raft_addr: SocketAddr,
    path: &str,
    spec: Option<&FaultSpec>,
) -> Result<(), String> {
    let body = match spec {
        Some(spec) => serde_json::to_vec(spec).map_err(|err| err.to_string())?,
        None => Vec::new(),
    };
    let request = hyper::Request::post(format!("http://{raft_addr}{path}"))
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|err| err.to_string())?;
    match tokio::time::timeout(STATUS_TIMEOUT, http.request(request)).await {
        Ok(Ok(response)) if response.status().is_success() => Ok(()),
        Ok(Ok(response)) => Err(format!("POST {path} answered {}", response.status())),
        Ok(Err(err)) => Err(format!("POST {path}: {err}")),
        Err(_) => Err(format!("POST {path}: no answer within {} s", STATUS_TIMEOUT.as_secs())),
    }
}

/// The shared config of every replica: the single-coordinator settings plus `[cluster]`.
fn replica_config_text(
    shape: &crate::schedule::RunShape,
    data_dir: &Path,
    nodes_toml: &str,
    timings: RaftTimings,
    addresses: &[(u64, SocketAddr, SocketAddr)],
) -> String {
    let mut text = coordinator_config(shape, &data_dir.display().to_string(), nodes_toml);
    text.push_str(&format!(
        "\n[cluster]\nid = 1\nfault_injection = true\nheartbeat_interval_ms = {}\n\
         election_timeout_min_ms = {}\nelection_timeout_max_ms = {}\n",
        timings.heartbeat_interval_ms, timings.election_timeout_min_ms, timings.election_timeout_max_ms
    ));
    for (id, raft, api) in addresses {
        text.push_str(&format!(
            "\n[[cluster.replicas]]\nid = {id}\nraft_addr = \"{raft}\"\napi_addr = \"{api}\"\n"
        ));
    }
    text
}

/// Starts `count` replicas for `sim`'s chain.
async fn start_replicas(
    seed: u64,
    shape: &crate::schedule::RunShape,
    timings: RaftTimings,
    count: usize,
    sim: &Simulator,
    data_dir: &Path,
) -> Result<Replicas, String> {
    let mut addresses = Vec::new();
    for id in 1..=count as u64 {
        let bind = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .map_err(|err| format!("cannot bind a port for replica {id}: {err}"))
        };
        // Only the address is kept: each incarnation binds it again.
        addresses.push((id, bind()?, bind()?));
    }
    let text = replica_config_text(shape, data_dir, &sim.coordinator_config(), timings, &addresses);
    let mut slots = Vec::new();
    for (id, raft_addr, api_addr) in addresses {
        let config = Config::from_toml_str(
            &text,
            Vec::<(String, String)>::new(),
            &[("cluster.id".to_owned(), id.to_string())],
        )
        .map_err(|errors| format!("replica {id}: invalid config: {errors}"))?;
        let client = HttpClientBuilder::default()
            .request_timeout(STATUS_TIMEOUT)
            .build(format!("http://{api_addr}"))
            .map_err(|err| err.to_string())?;
        slots.push(ReplicaSlot {
            id,
            seed,
            raft_addr,
            api_addr,
            config,
            client,
            running: None,
            stopping: None,
            incarnations: 0,
            events: Vec::new(),
            status_check: None,
            last_status_check: None,
            status_failures: 0,
            reported_hung: false,
        });
    }
    for slot in &mut slots {
        slot.start().await?;
    }
    let http = Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    Ok(Replicas { slots, http, raft_groups: None, episodes: BTreeMap::new(), majority_losses: Vec::new() })
}

/// Runs `seed` in replica mode and reports what happened.
pub(crate) async fn run_seed(seed: u64, options: &RunOptions) -> SeedReport {
    install_panic_hook();
    let (shape, schedule) = generate_replicated(
        seed,
        options.nodes,
        options.block_time_ms,
        options.duration_ms,
        options.replicas,
    );
    let mut report = SeedReport::new(seed, shape);
    report.replicas = options.replicas;
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
    let timings = RaftTimings::for_block_time(shape.block_time_ms);
    let mut replicas =
        match start_replicas(seed, &shape, timings, options.replicas, &sim, data_dir.path()).await {
            Ok(replicas) => replicas,
            Err(err) => {
                report.violations.push(format!("replicas did not start: {err}"));
                sim.shutdown();
                return report;
            }
        };
    let mut run = Run {
        sim: sim.clone(),
        schedule: &schedule,
        report: &mut report,
        timeline: Vec::new(),
        faults_active: BTreeMap::new(),
        partitioned: false,
        seen_violations: BTreeSet::new(),
    };
    let started = Instant::now();
    let (unix_at_start, ledger_at_start) = (unix_ms(), sim.ledger().now_ms());
    run.timeline.push(format!(
        "replica mode: {} replicas, Raft heartbeat {} ms, election timeout {}-{} ms; \
         the run started at ledger {ledger_at_start} ms (unix {unix_at_start} ms)",
        options.replicas,
        timings.heartbeat_interval_ms,
        timings.election_timeout_min_ms,
        timings.election_timeout_max_ms
    ));
    // The runner's own steps are bounded, so a run that overruns means something hung; stop it
    // here, within the caller's limit, so the report keeps its timeline.
    let drive_limit = Duration::from_millis(options.duration_ms + options.tail_ms) + OVERRUN;
    if tokio::time::timeout(drive_limit, Box::pin(run.drive(&mut replicas, options, started))).await.is_err()
    {
        run.violation(
            None,
            format!("the run loop overran its schedule by {} s: a runner step hung", OVERRUN.as_secs()),
        );
    }
    let stop_deadline = Instant::now() + STOP_BUDGET;
    for slot in &mut replicas.slots {
        let stopping = Instant::now();
        match tokio::time::timeout_at(stop_deadline, slot.stop()).await {
            Ok(violations) => {
                for violation in violations {
                    run.violation(None, violation);
                }
            }
            // Dropping its incarnation kills it.
            Err(_) => {
                run.violation(None, format!("replica {} did not stop within the run's budget", slot.id))
            }
        }
        run.timeline.push(format!("   end     replica {} stopped{}", slot.id, took(stopping)));
    }
    let now_ms = sim.ledger().now_ms();
    for loss in &mut replicas.majority_losses {
        loss.to_ms.get_or_insert(now_ms);
    }
    let mut timeline = std::mem::take(&mut run.timeline);
    let seen_violations = std::mem::take(&mut run.seen_violations);
    drop(run);
    let entries = sim.ledger_entries(0);
    let (acting, terms) = acting_violations(&entries);
    report.acting_terms = terms;
    let grace_ms = timings.election_timeout_max_ms;
    let losses = majority_loss_violations(&entries, &replicas.majority_losses, grace_ms);
    for violation in acting.into_iter().chain(losses) {
        if !seen_violations.contains(&violation) {
            report.violations.push(violation);
        }
    }
    for slot in &replicas.slots {
        let prefix = thread_name(seed, slot.id);
        if let Ok(panics) = PANICS.lock() {
            for (thread, message) in panics.iter().filter(|(thread, _)| *thread == prefix) {
                report.violations.push(format!("replica {} panicked on thread {thread}: {message}", slot.id));
            }
        }
    }

    let invariants = sim.invariants().remove(0);
    report.blocks = invariants.blocks_sealed;
    report.longest_gap_ms = invariants.longest_gap_ms;
    report.missed_slots = invariants.missed_slots;
    let activations = entries.iter().filter(
        |entry| matches!(entry, LedgerEntry::Activated { cause, .. } if cause == "admin_startSequencer"),
    );
    report.leader_changes = (activations.count() as u64).saturating_sub(1);
    report.injected_overlaps =
        safety_violations(&invariants, &entries, sim.ledger().now_ms(), 6 * shape.block_time_ms + 2000).1;
    if !report.violations.is_empty() {
        if let Some(dir) = &options.ledger_dir {
            let lines: Vec<String> =
                entries.iter().filter_map(|entry| serde_json::to_string(entry).ok()).collect();
            let path = dir.join(format!("seed-{seed}.jsonl"));
            timeline.push(match std::fs::write(&path, lines.join("\n") + "\n") {
                Ok(()) => format!("whole ledger written to {}", path.display()),
                Err(error) => format!("could not write the ledger to {}: {error}", path.display()),
            });
        }
        for entry in entries.iter().filter(|entry| !matches!(entry, LedgerEntry::Block { .. })) {
            timeline.push(format!("ledger: {}", serde_json::to_string(entry).unwrap_or_default()));
        }
        for slot in &replicas.slots {
            for event in &slot.events {
                let ledger_ms = (event.at_unix_ms + ledger_at_start).saturating_sub(unix_at_start);
                timeline.push(format!(
                    "replica {} {} (~ledger {ledger_ms} ms): {} {} {}",
                    slot.id,
                    event.at_unix_ms,
                    event.kind,
                    event.node.as_deref().unwrap_or("-"),
                    event.detail
                ));
            }
        }
        report.timeline = timeline;
    }
    sim.shutdown();
    report
}

/// The state of one run while it drives the schedule.
struct Run<'a> {
    sim: Arc<Simulator>,
    schedule: &'a [Scheduled],
    report: &'a mut SeedReport,
    timeline: Vec<String>,
    faults_active: BTreeMap<String, BTreeSet<FaultKind>>,
    partitioned: bool,
    seen_violations: BTreeSet<String>,
}

impl Run<'_> {
    /// Records a violation once: the same observation repeated every tick is one problem.
    fn violation(&mut self, at_ms: Option<u64>, violation: String) {
        if self.seen_violations.insert(violation.clone()) {
            let line = match at_ms {
                Some(at_ms) => format!("at {at_ms} ms: {violation}"),
                None => violation,
            };
            self.report.violations.push(line);
        }
    }

    fn count(&mut self, name: &str) {
        *self.report.faults.entry(name.to_owned()).or_default() += 1;
    }

    /// Applies the schedule and checks the invariants every 50 ms until the end of the tail.
    async fn drive(&mut self, replicas: &mut Replicas, options: &RunOptions, started: Instant) {
        let actions = timed_actions(self.schedule);
        let end = started + Duration::from_millis(options.duration_ms + options.tail_ms);
        let block_time_ms = self.report.shape.block_time_ms;
        let nodes = self.report.shape.nodes;
        let mut next_action = 0;
        let mut producible_since: Option<Instant> = None;
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
                let applying = Instant::now();
                let line = self.apply(replicas, action).await;
                self.timeline.push(format!("{at_ms:>6} ms  {line}{}", took(applying)));
            }

            // Safety, on ground truth.
            let invariants = self.sim.invariants().remove(0);
            if !invariants.is_safe() {
                let inspection_bound_ms = 6 * block_time_ms + 2000;
                let entries = self.sim.ledger_entries(0);
                let (violations, _) =
                    safety_violations(&invariants, &entries, self.sim.ledger().now_ms(), inspection_bound_ms);
                for violation in violations {
                    self.violation(Some(elapsed_ms), violation);
                }
            }

            // Liveness: a fault-free candidate, a whole p2p network and a majority of replicas up,
            // connected and reaching the nodes, for the bound.
            let healthy_candidates = (0..nodes)
                .filter(|i| self.faults_active.get(&format!("seq-{i}")).is_none_or(BTreeSet::is_empty))
                .count();
            let majority = replicas.majority_reaches_sequencers(&self.sim.isolated_callers());
            let producible = majority && !self.partitioned && healthy_candidates > 0;
            producible_since = if producible { producible_since.or(Some(now)) } else { None };
            if let Some(since) = producible_since
                && now.duration_since(since) >= Duration::from_millis(options.liveness_bound_ms)
            {
                let sim_now_ms = self.sim.ledger().now_ms();
                let quiet_ms = invariants.last_block_ms.map_or(sim_now_ms, |t| sim_now_ms.saturating_sub(t));
                if quiet_ms > options.liveness_bound_ms && !self.seen_violations.contains("liveness") {
                    self.seen_violations.insert("liveness".into());
                    self.report.violations.push(format!(
                        "at {elapsed_ms} ms: no block for {quiet_ms} ms although the chain could produce for {} ms (bound {} ms)",
                        now.duration_since(since).as_millis(),
                        options.liveness_bound_ms
                    ));
                }
            }

            let checking = Instant::now();
            self.check_replicas(replicas, elapsed_ms, now).await;
            let slow = took(checking);
            if !slow.is_empty() {
                self.timeline.push(format!("{elapsed_ms:>6} ms  replica checks{slow}"));
            }
        }
    }

    /// Every live replica must answer (not hang) and must not have died on its own.
    async fn check_replicas(&mut self, replicas: &mut Replicas, elapsed_ms: u64, now: Instant) {
        let mut violations = Vec::new();
        for slot in &mut replicas.slots {
            let Some(incarnation) = &slot.running else { continue };
            if incarnation.task.is_finished() {
                let number = incarnation.number;
                if let Some(incarnation) = slot.running.take() {
                    let outcome = incarnation.reap(slot.id).await;
                    violations.push(outcome.unwrap_or_else(|| {
                        format!("replica {} (incarnation {number}) exited on its own", slot.id)
                    }));
                }
                continue;
            }
            let number = incarnation.number;
            if let Some((asked, check)) = &slot.status_check
                && check.is_finished()
            {
                let asked = *asked;
                let outcome = match slot.status_check.take() {
                    Some((_, check)) => check.await.unwrap_or_else(|err| Err(err.to_string())),
                    None => continue,
                };
                if asked == number {
                    match outcome {
                        Ok(()) => slot.status_failures = 0,
                        Err(err) => {
                            slot.status_failures += 1;
                            if slot.status_failures >= STATUS_FAILURES && !slot.reported_hung {
                                slot.reported_hung = true;
                                violations.push(format!("replica {} does not answer: {err}", slot.id));
                            }
                        }
                    }
                }
            }
            let due = slot.last_status_check.is_none_or(|at| now.duration_since(at) >= STATUS_EVERY);
            if slot.status_check.is_none() && due {
                slot.last_status_check = Some(now);
                let client = slot.client.clone();
                slot.status_check = Some((
                    number,
                    tokio::spawn(async move {
                        client.status(None).await.map_err(|err| format!("coordinator_status: {err}"))?;
                        client
                            .cluster_membership()
                            .await
                            .map_err(|err| format!("coordinator_clusterMembership: {err}"))?;
                        Ok(())
                    }),
                ));
            }
        }
        for violation in violations {
            self.timeline.push(format!("{elapsed_ms:>6} ms  {violation}"));
            self.violation(Some(elapsed_ms), violation);
        }
    }

    async fn apply(&mut self, replicas: &mut Replicas, action: &Action) -> String {
        let sim = self.sim.clone();
        match action {
            Action::Apply(index) => match self.schedule.get(*index).map(|scheduled| &scheduled.step) {
                Some(Step::Fault { node, kind, params, heal_after_ms }) => {
                    match sim.fault(node, *kind, params.clone()) {
                        Ok(()) => {
                            self.count(kind.as_str());
                            if heal_after_ms.is_some() {
                                self.faults_active.entry(node.clone()).or_default().insert(*kind);
                            }
                            format!(
                                "fault {kind} on {node} {}",
                                serde_json::to_string(params).unwrap_or_default()
                            )
                        }
                        Err(err) => format!("skipped {kind} on {node}: {err}"),
                    }
                }
                Some(Step::Partition { groups, .. }) => match sim.partition(groups) {
                    Ok(()) => {
                        self.count("partition");
                        self.partitioned = true;
                        format!("partition {groups:?}")
                    }
                    Err(err) => format!("partition failed: {err}"),
                },
                Some(Step::Replica { fault, heal_after_ms }) => {
                    let (resolved, line) = self.apply_replica_fault(replicas, fault, *heal_after_ms).await;
                    if !matches!(resolved, Resolved::Skipped) {
                        self.count(fault.name());
                    }
                    replicas.episodes.insert(*index, resolved);
                    line
                }
                Some(Step::RestartCoordinator { .. }) | None => "nothing to do".into(),
            },
            Action::HealNode(node, kind) => {
                let _ = sim.heal(node, Some(*kind));
                if let Some(kinds) = self.faults_active.get_mut(node) {
                    kinds.remove(kind);
                }
                format!("heal {kind} on {node}")
            }
            Action::HealPartition => {
                let _ = sim.partition(&[]);
                self.partitioned = false;
                "partition healed".into()
            }
            Action::HealReplica(index) => {
                let resolved = replicas.episodes.remove(index).unwrap_or(Resolved::Skipped);
                let now_ms = sim.ledger().now_ms();
                for loss in replicas.majority_losses.iter_mut().filter(|loss| loss.to_ms.is_none()) {
                    loss.to_ms = Some(now_ms);
                }
                match resolved {
                    Resolved::Crashed(ids) => {
                        let mut lines = Vec::new();
                        for id in ids {
                            match replicas.restart(id).await {
                                Ok(()) => lines.push(format!("replica {id} restarted from its data dir")),
                                Err(err) => {
                                    self.violation(None, format!("replica {id} did not restart: {err}"));
                                    lines.push(format!("replica {id} restart failed: {err}"));
                                }
                            }
                        }
                        lines.join("; ")
                    }
                    Resolved::Partitioned => {
                        let problems = replicas.heal_partition().await;
                        with_problems("replica partition healed".into(), &problems)
                    }
                    Resolved::Isolated(id) => {
                        sim.heal_caller(Some(id));
                        format!("replica {id} reaches the sequencers again")
                    }
                    Resolved::Skipped => "nothing to heal".into(),
                }
            }
        }
    }

    async fn apply_replica_fault(
        &mut self,
        replicas: &mut Replicas,
        fault: &ReplicaFault,
        held_ms: u64,
    ) -> (Resolved, String) {
        let how = |abrupt: bool| if abrupt { "killed" } else { "shut down (not waited for)" };
        match fault {
            ReplicaFault::Crash { target, abrupt } => {
                let Some((id, name)) = replicas.resolve(*target).await else {
                    return (Resolved::Skipped, "skipped replica crash: no acting replica to target".into());
                };
                let Some(slot) = replicas.slot(id).filter(|slot| slot.is_up()) else {
                    return (Resolved::Skipped, format!("skipped replica crash: {name} is down"));
                };
                if let Some(violation) = slot.crash(*abrupt).await {
                    self.violation(None, violation);
                }
                (Resolved::Crashed(vec![id]), format!("{name} {} for {held_ms} ms", how(*abrupt)))
            }
            ReplicaFault::Partition { target } => {
                let Some((id, name)) = replicas.resolve(*target).await else {
                    return (
                        Resolved::Skipped,
                        "skipped replica partition: no acting replica to target".into(),
                    );
                };
                let others: Vec<u64> = replicas.ids().into_iter().filter(|other| *other != id).collect();
                let problems = replicas.partition(vec![vec![id], others]).await;
                let line = format!("{name} cut off from the other replicas for {held_ms} ms");
                (Resolved::Partitioned, with_problems(line, &problems))
            }
            ReplicaFault::IsolateFromSequencers { mode } => {
                let Some((id, name)) = replicas.resolve(ReplicaTarget::Leader).await else {
                    return (
                        Resolved::Skipped,
                        "skipped isolation from the sequencers: no acting replica".into(),
                    );
                };
                self.sim.isolate_caller(id, *mode);
                let mode = serde_json::to_string(mode).unwrap_or_default();
                (
                    Resolved::Isolated(id),
                    format!("{name} cut off from every sequencer ({mode}) for {held_ms} ms"),
                )
            }
            ReplicaFault::CrashAllButLeader { abrupt } => {
                let acting = replicas.leader().await;
                let up: Vec<u64> =
                    replicas.slots.iter().filter(|slot| slot.is_up()).map(|slot| slot.id).collect();
                let Some(survivor) = acting.map(|(id, _)| id).or_else(|| up.first().copied()) else {
                    return (Resolved::Skipped, "skipped majority loss: no replica up".into());
                };
                let victims: Vec<u64> = up.into_iter().filter(|id| *id != survivor).collect();
                for id in &victims {
                    if let Some(slot) = replicas.slot(*id)
                        && let Some(violation) = slot.crash(*abrupt).await
                    {
                        self.violation(None, violation);
                    }
                }
                let role = match acting {
                    Some((id, term)) if id == survivor => format!(" (acting, term {term})"),
                    _ => String::new(),
                };
                let what =
                    format!("replicas {victims:?} {}, replica {survivor}{role} left alone", how(*abrupt));
                replicas.majority_losses.push(MajorityLoss {
                    from_ms: self.sim.ledger().now_ms(),
                    to_ms: None,
                    what: what.clone(),
                });
                (Resolved::Crashed(victims), format!("majority lost for {held_ms} ms: {what}"))
            }
            ReplicaFault::PartitionAll => {
                let groups: Vec<Vec<u64>> = replicas.ids().into_iter().map(|id| vec![id]).collect();
                let problems = replicas.partition(groups).await;
                let what = "every replica cut off from every other".to_owned();
                replicas.majority_losses.push(MajorityLoss {
                    from_ms: self.sim.ledger().now_ms(),
                    to_ms: None,
                    what: what.clone(),
                });
                (
                    Resolved::Partitioned,
                    with_problems(format!("majority lost for {held_ms} ms: {what}"), &problems),
                )
            }
        }
    }
}

/// " (took N ms)" when a runner step took long enough to shift the schedule, else nothing.
fn took(since: Instant) -> String {
    let elapsed = since.elapsed();
    if elapsed >= Duration::from_millis(500) {
        format!(" (took {} ms)", elapsed.as_millis())
    } else {
        String::new()
    }
}

fn with_problems(line: String, problems: &[String]) -> String {
    if problems.is_empty() { line } else { format!("{line} (problems: {})", problems.join("; ")) }
}

/// One `admin_call` entry, as the acting checks read it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Call<'a> {
    t_ms: u64,
    node: &'a str,
    method: &'a str,
    replica: Option<u64>,
    term: Option<u64>,
}

fn calls(entries: &[LedgerEntry]) -> Vec<Call<'_>> {
    let mut calls: Vec<Call<'_>> = entries
        .iter()
        .filter_map(|entry| match entry {
            LedgerEntry::AdminCall { node, method, replica, term, t_ms, .. } => {
                Some(Call { t_ms: *t_ms, node, method, replica: *replica, term: *term })
            }
            _ => None,
        })
        .collect();
    // Stable: calls that arrived in the same millisecond keep their ledger order.
    calls.sort_by_key(|call| call.t_ms);
    calls
}

/// "At most one replica acts at any time", on the calls the nodes received: sorted by arrival,
/// the term never decreases and one term has calls from one replica only; every call names its
/// replica and term. Returns the violations (one per offending replica and term) and the number
/// of terms in which a replica acted.
fn acting_violations(entries: &[LedgerEntry]) -> (Vec<String>, u64) {
    let mut violations = Vec::new();
    let mut seen = BTreeSet::new();
    let mut owners: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    let mut highest: Option<(u64, u64, u64)> = None;
    for call in calls(entries) {
        let Call { t_ms, node, method, .. } = call;
        let (Some(replica), Some(term)) = (call.replica, call.term) else {
            if seen.insert(("unlabelled", call.replica.unwrap_or(0), 0)) {
                violations.push(format!(
                    "{method} on {node} at {t_ms} ms does not name its replica and term \
                     (x-opc-replica {:?}, x-opc-term {:?})",
                    call.replica, call.term
                ));
            }
            continue;
        };
        match owners.get(&term) {
            Some((owner, since_ms)) if *owner != replica => {
                if seen.insert(("shared term", replica, term)) {
                    violations.push(format!(
                        "two replicas acted in term {term}: replica {owner} from {since_ms} ms, and replica \
                         {replica} with {method} on {node} at {t_ms} ms"
                    ));
                }
            }
            Some(_) => {}
            None => {
                owners.insert(term, (replica, t_ms));
            }
        }
        match highest {
            Some((highest_term, by, at_ms)) if term < highest_term => {
                if seen.insert(("stale term", replica, term)) {
                    violations.push(format!(
                        "replica {replica} acted in term {term} ({method} on {node} at {t_ms} ms) after replica \
                         {by} had acted in the later term {highest_term} at {at_ms} ms: two replicas acting at once"
                    ));
                }
            }
            Some((highest_term, ..)) if term == highest_term => {}
            _ => highest = Some((term, replica, t_ms)),
        }
    }
    (violations, owners.len() as u64)
}

/// "Nobody acts without a majority": no call arrives from `grace_ms` after a majority was lost
/// (the lone leader's lease runs out well within it) until it came back.
fn majority_loss_violations(entries: &[LedgerEntry], losses: &[MajorityLoss], grace_ms: u64) -> Vec<String> {
    let mut violations = Vec::new();
    for loss in losses {
        let from_ms = loss.from_ms + grace_ms;
        let to_ms = loss.to_ms.unwrap_or(u64::MAX);
        let during: Vec<String> = calls(entries)
            .into_iter()
            .filter(|call| (from_ms..=to_ms).contains(&call.t_ms))
            .map(|call| {
                format!(
                    "{} on {} at {} ms by replica {:?} (term {:?})",
                    call.method, call.node, call.t_ms, call.replica, call.term
                )
            })
            .collect();
        if !during.is_empty() {
            violations.push(format!(
                "a replica acted without a majority ({} from {} to {} ms): {}",
                loss.what,
                loss.from_ms,
                to_ms,
                during.join(", ")
            ));
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(t_ms: u64, replica: Option<u64>, term: Option<u64>) -> LedgerEntry {
        LedgerEntry::AdminCall {
            chain: "devnet".into(),
            node: "seq-1".into(),
            method: "admin_startSequencer".into(),
            replica,
            term,
            accepted: true,
            t_ms,
            answered_ms: Some(t_ms + 1),
        }
    }

    #[test]
    fn replicas_taking_over_in_later_terms_are_one_acting_replica_at_a_time() {
        let entries = [call(100, Some(1), Some(2)), call(150, Some(1), Some(2)), call(900, Some(2), Some(5))];
        assert_eq!(acting_violations(&entries), (Vec::new(), 2));
    }

    #[test]
    fn a_call_in_an_earlier_term_after_a_later_one_is_two_replicas_acting() {
        // Appended out of order (answered late): sorted by arrival first.
        let entries = [call(900, Some(2), Some(5)), call(100, Some(1), Some(2)), call(950, Some(1), Some(2))];
        let (violations, terms) = acting_violations(&entries);
        assert_eq!(terms, 2);
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert!(
            violations[0].contains("replica 1 acted in term 2") && violations[0].contains("term 5"),
            "{violations:?}"
        );
    }

    #[test]
    fn two_replicas_in_one_term_and_unlabelled_calls_are_violations() {
        let entries = [call(100, Some(1), Some(3)), call(200, Some(2), Some(3)), call(300, None, None)];
        let (violations, _) = acting_violations(&entries);
        assert_eq!(violations.len(), 2, "{violations:?}");
        assert!(violations[0].contains("two replicas acted in term 3"), "{violations:?}");
        assert!(violations[1].contains("does not name its replica"), "{violations:?}");
    }

    #[test]
    fn calls_after_the_grace_of_a_lost_majority_and_before_its_heal_are_violations() {
        let loss = MajorityLoss { from_ms: 1000, to_ms: Some(3000), what: "every replica alone".into() };
        let entries = [call(1200, Some(1), Some(2)), call(3500, Some(2), Some(4))];
        assert!(majority_loss_violations(&entries, std::slice::from_ref(&loss), 500).is_empty());
        let entries = [call(1600, Some(1), Some(2))];
        let violations = majority_loss_violations(&entries, &[loss], 500);
        assert_eq!(violations.len(), 1);
        assert!(violations[0].contains("at 1600 ms by replica Some(1)"), "{violations:?}");
    }

    #[test]
    fn a_partition_drops_traffic_to_every_replica_outside_the_own_group() {
        let groups = vec![vec![1], vec![2, 3]];
        assert_eq!(partition_spec(&groups, 1).drop_to, BTreeSet::from([2, 3]));
        assert_eq!(partition_spec(&groups, 2).drop_to, BTreeSet::from([1]));
        let alone = vec![vec![1], vec![2], vec![3]];
        assert_eq!(partition_spec(&alone, 3).drop_to, BTreeSet::from([1, 2]));
    }
}
