//! One chain's actor: it owns the engine, the health of the chain's nodes and the durable state,
//! and is the only code that acts on the chain's sequencers.
//!
//! Inputs arrive on channels (probe reports, inspection rounds, RPC outcomes, operator commands)
//! and are handled one at a time in a `biased` select that checks cancellation first, then
//! commands, then results and observations, then the timer. The actor feeds each input to the
//! [`FailoverEngine`] and executes the returned actions in order: a `Persist` is awaited before
//! the next action runs; RPCs run as tasks whose outcomes come back as inputs, each bounded by
//! `rpc_timeout_ms`.
//!
//! Two filters keep the engine from deciding on a partial or outdated picture: it gets no tick or
//! inspection before every node has a first verdict (at most one probe timeout after start-up,
//! so a restarted coordinator prefers candidates by priority, not by who answered first), and an
//! inspection round that began before the last state change is dropped (it may predate our own
//! start or stop; the next round follows within `inspection.interval_ms`).

use crate::{
    block_time::{BlockTimeGate, Change},
    client::{CallError, Connections, NodeClient},
    conductor::{ChainFence, FenceView},
    config::{ChainConfig, Config, settings::ChainTuning},
    engine::{
        Action, CommandError, Event, EventKind, FailoverEngine, FailoverSettings, HandoverTarget, Input,
        Member, Outcome, Severity, View,
    },
    health::{
        ChainHealth, Commits, Pace, ProbeReport, ProbeSchedule, Reason, pace_of, probe_phase, run_prober,
        start_window,
    },
    metrics as m,
    reconcile::NodeUrls,
    replication::Acting,
    self_lag::{Backpressure, LagWatch},
    state::{ChainState, PersistHealth, StateStore},
    timeline::{self, EVENT_HISTORY, TimelineFile},
};
use opc_wire::{
    coordinator::{ChainStatus, CoordinatorEvent},
    text,
};
use std::{
    collections::{BTreeMap, VecDeque},
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use tokio::{
    sync::{mpsc, oneshot, watch},
    time::Instant,
};
use tokio_util::sync::CancellationToken;

/// The engine's view of an actor, borrowing only the fields it reads so the engine itself can be
/// borrowed mutably alongside. `view_of!(self)` first reads the fence anew (conductor mode);
/// `view_of!(@as_last_read self)` reuses what was read last, for a caller holding `&self`.
macro_rules! view_of {
    ($actor:expr) => {{
        $actor.fence_view = $actor.fence.as_ref().map(|fence| fence.view());
        view_of!(@as_last_read $actor)
    }};
    (@as_last_read $actor:expr) => {{
        let now = Instant::now();
        View {
            state: &$actor.state,
            members: &$actor.members,
            health: &$actor.health,
            now,
            unix_ms: $crate::actor::unix_ms(),
            self_lag: $actor.lag.read(now, $actor.settings.self_lag_span),
            conductor: $actor.fence_view.as_ref(),
        }
    }};
}

// After the macro, so the actor's child modules can use it.
mod calls;
use calls::NodeAddresses;
mod commands;
mod inspector;
mod stored_names;
use inspector::{InspectionRound, InspectionSchedule, run_inspector};

/// Bound of every internal channel; probes beyond it wait (they are periodic anyway).
const CHANNEL_CAPACITY: usize = 1024;

/// What the API asks of a chain's actor.
#[derive(Debug)]
pub enum ChainCommand {
    /// The chain's status.
    Status(oneshot::Sender<ChainStatus>),
    /// The latest events.
    Events {
        /// At most this many.
        limit: usize,
        /// Where to answer.
        reply: oneshot::Sender<Vec<CoordinatorEvent>>,
    },
    /// Graceful hand-over; answered when it completes or fails.
    Transfer {
        /// Target node, or the leader to hand over from.
        to: HandoverTarget,
        /// Where to answer.
        reply: oneshot::Sender<Result<(), CommandError>>,
    },
    /// Forget the stored names the config does not have (`coordinator_forgetStaleNodes`).
    ForgetStale {
        /// Where to answer: the names forgotten.
        reply: oneshot::Sender<Result<Vec<String>, String>>,
    },
    /// Pause or resume automation.
    SetPaused {
        /// Paused or not.
        paused: bool,
        /// Where to answer (after the change is durable).
        reply: oneshot::Sender<Result<(), CommandError>>,
    },
}

/// A cheap handle to talk to a chain's actor.
#[derive(Debug, Clone)]
pub struct ChainHandle {
    /// Chain name.
    pub name: String,
    /// Where commands go.
    pub commands_tx: mpsc::Sender<ChainCommand>,
    /// True once every node was probed at least once.
    pub ready_rx: watch::Receiver<bool>,
    /// Why the chain's state cannot be written, while it cannot (`/readyz` is then not ready).
    pub persist_error_rx: watch::Receiver<Option<String>>,
    /// Why the chain is not acted on because its stored state names nodes the config does not
    /// have (see [`crate::reconcile`]); None when it matches.
    pub mismatch_rx: watch::Receiver<Option<String>>,
    /// Why the chain is held (its block time unknown or contradicted, see
    /// [`crate::block_time`]); None while it is acted on.
    pub held_rx: watch::Receiver<Option<String>>,
    /// Conductor mode: the chain's fence, served on the conductor endpoint.
    pub fence: Option<Arc<ChainFence>>,
}

impl ChainHandle {
    /// Sends the command `make` builds around a reply channel and waits for the answer; `None`
    /// when the actor has stopped.
    pub async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> ChainCommand) -> Option<T> {
        let (reply_tx, reply_rx) = oneshot::channel();
        self.commands_tx.send(make(reply_tx)).await.ok()?;
        reply_rx.await.ok()
    }
}

/// Timings the actor uses beyond the engine's.
#[derive(Debug, Clone)]
struct Timings {
    probe_interval: Duration,
    follower_probe_interval: Duration,
    probe_timeout: Duration,
    rpc_timeout: Duration,
    inspection: Option<Duration>,
    /// Over which the first probes and inspections spread ([`start_window`]).
    start_window: Duration,
}

/// Who this actor runs as: alone, or as one replica of a Raft cluster.
#[derive(Debug, Clone)]
pub struct ReplicaRole {
    /// The Raft replica id (None without a cluster). Sent to nodes on every mutating call
    /// (`x-opc-replica`, with `x-opc-term`) so a node's operator, and the chaos runner, can tell
    /// which replica acted in which term.
    pub id: Option<u64>,
    /// Whether this replica may act now (see [`crate::replication`]).
    pub acting_rx: watch::Receiver<Acting>,
    /// Without a cluster, the sender of the constant "acting" (a dropped sender ends a watch).
    pub standalone_tx: Option<Arc<watch::Sender<Acting>>>,
    /// The Raft replica this coordinator is, if any (conductor mode keeps its fences there).
    pub cluster: Option<opc_cluster::Cluster>,
}

impl ReplicaRole {
    /// A coordinator without a cluster: always acting.
    pub fn standalone() -> Self {
        let (acting_tx, acting_rx) = watch::channel(Some(0));
        Self { id: None, acting_rx, standalone_tx: Some(Arc::new(acting_tx)), cluster: None }
    }
}

/// The actor of one chain.
#[derive(Debug)]
pub struct ChainActor {
    name: String,
    members: Vec<Member>,
    /// Probing and inspection clients (read-only calls).
    clients: BTreeMap<String, NodeClient>,
    /// Clients for calls that act (stop, start and their reads), labelled with this replica and
    /// the term it acts in; rebuilt whenever it starts acting.
    action_clients: BTreeMap<String, NodeClient>,
    /// The node URLs and connections, to rebuild `action_clients`.
    urls: NodeAddresses,
    /// The op-node URL of every configured node: what the state records, and how a stored name
    /// the config renamed is found again.
    op_node_urls: NodeUrls,
    /// The refusal to act while the stored state names nodes the config does not have.
    mismatch_tx: watch::Sender<Option<String>>,
    /// What [`BlockTimeGate::held`] says, for `/readyz`.
    held_tx: watch::Sender<Option<String>>,
    role: ReplicaRole,
    /// The term this actor acts in (None: observing only).
    acting: Acting,
    /// The last term it acted in: acting again in the same term (a lease that lapsed under load
    /// and was confirmed again) renews the engine instead of replacing it (see
    /// [`FailoverEngine::renewed`]).
    last_acting_term: Option<u64>,
    settings: FailoverSettings,
    engine: FailoverEngine,
    /// How late the coordinator's own timers run (one monitor per process): the view carries it,
    /// so the engine can tell its own slowness from a node's.
    lag: LagWatch,
    /// The chain's block time, the windows that follow it, and whether the actor may act.
    block_time: BlockTimeGate,
    health: ChainHealth,
    state: ChainState,
    store: Arc<dyn StateStore>,
    timings: Timings,
    events: VecDeque<CoordinatorEvent>,
    /// Where `events` also go, so they survive a restart.
    timeline_file: TimelineFile,
    /// Whether the state can be written; shown in status, `/readyz` and the metrics.
    persist_health: PersistHealth,
    /// The operator waiting for a hand-over to finish.
    handover_reply: Option<(String, oneshot::Sender<Result<(), CommandError>>)>,
    results_tx: mpsc::Sender<Input>,
    results_rx: mpsc::Receiver<Input>,
    commands_rx: mpsc::Receiver<ChainCommand>,
    ready_tx: watch::Sender<bool>,
    /// Nodes found sequencing by the last inspection.
    last_active: BTreeMap<String, bool>,
    /// When the durable state last changed. An inspection round that began before it may describe
    /// the world before our own last action (a leader just started, a node just stopped) and is
    /// not shown to the engine, which would otherwise "restart" a leader it has just started.
    state_changed_at: Option<Instant>,
    /// Conductor mode: the chain's fence, which every persisted state goes through.
    fence: Option<Arc<ChainFence>>,
    /// What the fence said when the last view was built.
    fence_view: Option<FenceView>,
    /// `http://<conductor.listen>/<chain>/<node>`, in conductor mode: what ctl shows operators.
    conductor_endpoint: String,
    /// Each node's probe pace, read by its prober.
    paces: BTreeMap<String, watch::Sender<Pace>>,
    /// The inspector's pace: calm while every node is probed calmly or committing.
    inspection_pace: watch::Sender<Pace>,
    /// Each node's probe metrics, registered when the probes start.
    probe_metrics: BTreeMap<String, m::NodeProbeMetrics>,
}

/// Why a chain could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ActorError {
    /// Its durable state could not be loaded.
    #[error("chain {chain}: {error}")]
    State {
        /// The chain.
        chain: String,
        /// Why (not a `#[source]`: its text is already in this message, once).
        error: crate::state::StateError,
    },
    /// The conductor log could not be opened.
    #[error("chain {chain}: {error}")]
    Conductor {
        /// The chain.
        chain: String,
        /// Why (its text names the file).
        error: crate::conductor::log::LogError,
    },
    /// A node URL could not be used.
    #[error("chain {chain}, sequencer {node}: {source}")]
    Client {
        /// The chain.
        chain: String,
        /// The node.
        node: String,
        /// Why.
        source: CallError,
    },
}

impl ChainActor {
    /// Loads the chain's durable state and prepares its actor.
    pub async fn new(
        name: &str,
        chain: &ChainConfig,
        config: &Config,
        store: Arc<dyn StateStore>,
        role: ReplicaRole,
        lag: LagWatch,
        connections: &Connections,
    ) -> Result<(Self, ChainHandle), ActorError> {
        let state = store
            .load(name)
            .await
            .map_err(|error| ActorError::State { chain: name.to_owned(), error })?
            .unwrap_or_default();
        let mut members = Vec::new();
        let mut clients = BTreeMap::new();
        let mut urls = BTreeMap::new();
        for (node, sequencer) in &chain.sequencers {
            urls.insert(node.clone(), (sequencer.op_node_url.clone(), sequencer.op_geth_url.clone()));
            // Every call names the replica it comes from (`x-opc-replica`); calls that act also
            // name the term (see `build_action_clients`).
            let labels: Vec<(&'static str, String)> =
                role.id.map(|id| ("x-opc-replica", id.to_string())).into_iter().collect();
            let client = NodeClient::with_headers(
                connections,
                &sequencer.op_node_url,
                &sequencer.op_geth_url,
                &labels,
            )
            .map_err(|source| ActorError::Client {
                chain: name.to_owned(),
                node: node.clone(),
                source,
            })?;
            clients.insert(node.clone(), client);
            members.push(Member {
                name: node.clone(),
                priority: sequencer.priority,
                candidate: sequencer.candidate,
            });
        }
        let block_time = BlockTimeGate::new(name, chain.block_time(), ChainTuning::for_chain(config, chain));
        let tuned = block_time.provisional();
        let (results_tx, results_rx) = mpsc::channel(CHANNEL_CAPACITY);
        let (commands_tx, commands_rx) = mpsc::channel(CHANNEL_CAPACITY);
        let (ready_tx, ready_rx) = watch::channel(false);
        let (persist_health, persist_error_rx) = PersistHealth::new(name);
        let timeline_path = timeline::path_of(&crate::replica_data_dir(config), name);
        let events = timeline::load(&timeline_path);
        let timeline_file = TimelineFile::spawn(timeline_path, &events);
        let (mismatch_tx, mismatch_rx) = watch::channel(None);
        let (held_tx, held_rx) = watch::channel(block_time.held().map(str::to_owned));
        if state != ChainState::default() {
            tracing::info!(
                chain = %name,
                leader = %text::or_none(state.leader.as_deref()),
                phase = %state.phase.name(),
                epoch = state.epoch,
                paused = state.paused,
                fenced = %text::list(&state.fenced),
                "restored durable state"
            );
        }
        let acting = *role.acting_rx.borrow();
        let urls = NodeAddresses::new(urls, connections);
        let action_clients = urls
            .action_clients(role.id, acting)
            .map_err(|(node, source)| ActorError::Client { chain: name.to_owned(), node, source })?;
        let op_node_urls =
            urls.urls.iter().map(|(node, (op_node, _))| (node.clone(), op_node.clone())).collect();
        let fence = calls::open_fence(name, chain, config, &role).await?;
        if let Some(fence) = &fence {
            fence.follow_state(&state).await;
        }
        let mut actor = Self {
            name: name.to_owned(),
            members,
            clients,
            action_clients,
            urls,
            op_node_urls,
            mismatch_tx,
            held_tx,
            role,
            acting,
            last_acting_term: acting,
            settings: tuned.failover.clone(),
            engine: FailoverEngine::new(tuned.failover, Instant::now()),
            lag,
            block_time,
            health: ChainHealth::new(chain.sequencers.keys().cloned(), tuned.health),
            state,
            store,
            timings: Timings {
                probe_interval: config.health.interval(),
                follower_probe_interval: config.health.follower_interval(),
                probe_timeout: config.health.probe_timeout(),
                rpc_timeout: config.failover.rpc_timeout(),
                inspection: config.inspection.enabled.then(|| config.inspection.interval()),
                start_window: start_window(config.sequencer_count(), config.health.interval()),
            },
            events,
            timeline_file,
            persist_health,
            handover_reply: None,
            results_tx,
            results_rx,
            commands_rx,
            ready_tx,
            last_active: BTreeMap::new(),
            state_changed_at: None,
            fence: fence.clone(),
            fence_view: None,
            conductor_endpoint: format!("http://{}/{name}/<node>", config.conductor.listen),
            paces: BTreeMap::new(),
            inspection_pace: watch::Sender::new(Pace::Fast),
            probe_metrics: BTreeMap::new(),
        };
        if acting.is_some() {
            actor.adopt_config().await;
        } else {
            actor.refresh_mismatch();
        }
        let handle = ChainHandle {
            name: name.to_owned(),
            commands_tx,
            ready_rx,
            persist_error_rx,
            mismatch_rx,
            held_rx,
            fence,
        };
        Ok((actor, handle))
    }

    /// Runs until `cancel`.
    pub async fn run(mut self, cancel: CancellationToken) {
        let (probes_tx, mut probes_rx) = mpsc::channel::<ProbeReport>(CHANNEL_CAPACITY);
        for (node, client) in &self.clients {
            let fast = self.timings.probe_interval;
            let (pace_tx, pace) = watch::channel(Pace::Fast);
            self.paces.insert(node.clone(), pace_tx);
            self.probe_metrics.insert(node.clone(), m::NodeProbeMetrics::new(&self.name, node));
            let schedule = ProbeSchedule {
                phase: probe_phase(&self.name, node, self.timings.start_window),
                fast,
                calm: self.timings.follower_probe_interval,
                pace,
                backpressure: self.backpressure(),
            };
            tokio::spawn(run_prober(
                node.clone(),
                client.clone(),
                schedule,
                self.timings.probe_timeout,
                probes_tx.clone(),
                cancel.clone(),
            ));
        }
        drop(probes_tx);
        let (inspections_tx, mut inspections_rx) = mpsc::channel::<InspectionRound>(16);
        tokio::spawn(run_inspector(
            self.clients.clone(),
            (
                self.name.clone(),
                InspectionSchedule {
                    fast: self.timings.inspection,
                    calm: self.timings.follower_probe_interval,
                    pace: self.inspection_pace.subscribe(),
                    backpressure: self.backpressure(),
                    start_window: self.timings.start_window,
                },
            ),
            self.timings.rpc_timeout,
            inspections_tx,
            cancel.clone(),
        ));
        self.publish_state_metrics();
        self.register_counters();
        let mut ticker = tokio::time::interval(self.timings.probe_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tracing::info!(chain = %self.name, nodes = self.members.len(), "chain actor started");
        loop {
            tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                Ok(()) = self.role.acting_rx.changed() => self.on_acting_changed().await,
                Some(command) = self.commands_rx.recv() => self.on_command(command).await,
                Some(input) = self.results_rx.recv() => self.step(input).await,
                Some(report) = probes_rx.recv() => {
                    self.health.observe_probe(&report.node, &report.probe);
                    self.observe_block_time(&report);
                    self.publish_probe_metrics(&report);
                    if !*self.ready_tx.borrow() && self.health.nodes.values().all(|n| n.reason != Reason::Unknown) {
                        self.ready_tx.send_replace(true);
                    }
                    self.step(Input::Tick).await;
                }
                Some(round) = inspections_rx.recv() => self.on_inspection(round).await,
                _ = ticker.tick() => self.step(Input::Tick).await,
            }
            self.update_paces();
        }
        if let Some((_, reply)) = self.handover_reply.take() {
            let _ = reply.send(Err(CommandError::ShuttingDown));
        }
        tracing::info!(chain = %self.name, "chain actor stopped");
    }

    /// Starts or stops acting. A replica that starts acting takes the replicated state as it is
    /// now (another replica may have moved it) and a fresh engine: a half-done fail-over resumes
    /// from its committed phase, and the engine verifies on the nodes before repeating a step.
    async fn on_acting_changed(&mut self) {
        let acting = *self.role.acting_rx.borrow_and_update();
        if acting == self.acting {
            return;
        }
        self.acting = acting;
        let Some(term) = acting else {
            self.fail_handover(CommandError::LostLeadership);
            self.persist_health.not_writing();
            let detail = "this replica is not the confirmed Raft leader any more: observing only";
            self.record_event(Event::info(EventKind::StoppedActing, None, detail));
            return;
        };
        let same_term = self.last_acting_term == Some(term);
        self.last_acting_term = Some(term);
        match self.store.load(&self.name).await {
            Ok(state) => {
                self.state = state.unwrap_or_default();
                if let Some(fence) = &self.fence
                    && fence.holding_is_stale(&self.state)
                    && let Err(err) = self.store.save(&self.name, &self.state).await
                {
                    tracing::warn!(chain = %self.name, %err, "cannot write the conductor fence's holder; commits stay refused until the next state change");
                }
            }
            Err(err) => {
                // Acting on a state we cannot read could repeat or undo a step: stay an observer.
                tracing::error!(chain = %self.name, %err, "cannot read the replicated state; not acting");
                self.acting = None;
                return;
            }
        }
        match self.urls.action_clients(self.role.id, acting) {
            Ok(clients) => self.action_clients = clients,
            Err((node, err)) => {
                tracing::error!(chain = %self.name, node = %node, %err, "cannot label the node clients")
            }
        }
        // A fresh engine: calls it had in flight may have been answered while this replica did not
        // act, so it verifies before repeating anything. It continues the persisted catch-up
        // countdown itself; in the same term, its own.
        self.engine = if same_term {
            self.engine.renewed(Instant::now())
        } else {
            FailoverEngine::new(self.settings.clone(), Instant::now())
        };
        self.state_changed_at = Some(Instant::now());
        self.adopt_config().await;
        self.publish_state_metrics();
        let detail = format!(
            "this replica is the Raft leader (term {term}): acting, from phase {} (leader {}, epoch {})",
            self.state.phase.name(),
            self.state.leader.as_deref().unwrap_or("none"),
            self.state.epoch
        );
        let leader = self.state.leader.clone();
        self.record_event(Event::info(EventKind::StartedActing, leader.as_deref(), detail));
    }

    /// Feeds a probe to the block-time gate and applies what changed: new windows, or a hold.
    fn observe_block_time(&mut self, report: &ProbeReport) {
        match self.block_time.observe(&report.node, &report.probe) {
            None => {}
            Some(Change::Retuned(tuned, event)) => {
                self.settings = tuned.failover.clone();
                self.engine.retune(tuned.failover);
                self.health.set_unsafe_stall(tuned.windows.unsafe_stall);
                self.record_event(event);
            }
            Some(Change::Held(event)) => self.record_event(event),
        }
        self.held_tx.send_if_modified(|held| {
            let now = self.block_time.held().map(str::to_owned);
            let changed = *held != now;
            *held = now;
            changed
        });
    }

    /// Records an inspection round and, unless it is stale, shows it to the engine.
    async fn on_inspection(&mut self, round: InspectionRound) {
        let now = Instant::now();
        let mut active = BTreeMap::new();
        for (node, outcome) in &round.answers {
            if let Ok(is_active) = outcome.result {
                active.insert(node.clone(), is_active);
            }
        }
        let count = active.values().filter(|is_active| **is_active).count();
        metrics::gauge!(m::LEADER_COUNT, "chain" => self.name.clone()).set(count as f64);
        if self.state_changed_at.is_some_and(|changed| round.started_at < changed) {
            tracing::debug!(chain = %self.name, "inspection round began before the last state change; ignored");
            return;
        }
        for (node, outcome) in &round.answers {
            self.health.observe_active(node, outcome, now);
        }
        self.last_active = active.clone();
        // With `inspection.enabled = false` the sweep still runs (start-up discovery and the
        // leader-count metric need it) but nothing is stopped or restarted because of it.
        let input = if self.timings.inspection.is_some() { Input::Inspected(active) } else { Input::Tick };
        self.step(input).await;
    }

    /// What slows this chain's probes while the coordinator runs late: by a whole probe
    /// deadline, twice the lateness that holds decisions, in a sustained way. A hiccup (a
    /// start-up, a short burst) only holds decisions; a backlog also sheds the load.
    fn backpressure(&self) -> Backpressure {
        Backpressure::new(self.lag.clone(), self.timings.probe_timeout)
    }

    /// Sets each node's probe pace from the chain as it stands (see [`pace_of`]).
    fn update_paces(&self) {
        let conducted = self.fence.is_some();
        let commits =
            match (self.fence.as_ref().and_then(|f| f.last_commit_at()), self.engine.conductor_timing()) {
                (Some(at), Some(timing)) => match Instant::now().saturating_duration_since(at) {
                    quiet if quiet <= timing.commit_due => Commits::Recent,
                    quiet if quiet <= timing.alive_window => Commits::Due,
                    _ => Commits::Missing,
                },
                _ => Commits::Missing,
            };
        let mut all_calm = true;
        for (node, pace_tx) in &self.paces {
            // A replica that does not act decides nothing on its picture: in conductor mode every
            // node is calm until it acts (then each is probed at once). Not in observe mode: a
            // replica that takes over there may judge the liveness window on the heads it read
            // while observing, and a calm reading is too old for a fast chain's window.
            let pace = if self.acting.is_none() && conducted {
                Pace::Calm
            } else {
                pace_of(node, &self.state, &self.health, (conducted, commits))
            };
            pace_tx.send_if_modified(|current| std::mem::replace(current, pace) != pace);
            all_calm &= pace != Pace::Fast;
        }
        // Nothing looks wrong and every block is committed: a second sequencer could not publish
        // (the fence refuses it), so it is looked for at the calm period.
        let inspection = if all_calm && conducted { Pace::Calm } else { Pace::Fast };
        self.inspection_pace.send_if_modified(|current| std::mem::replace(current, inspection) != inspection);
    }

    /// Feeds one input to the engine and executes what it returns; a transition that persisted
    /// something is followed by one more evaluation, so a chain of decisions does not wait for
    /// the next probe.
    async fn step(&mut self, input: Input) {
        // Until every node has a first verdict the engine would decide on part of the picture, e.g.
        // start the first-probed candidate after a restart instead of the preferred one. Every probe
        // ends within its deadline, so this waits at most one probe timeout.
        if matches!(input, Input::Tick | Input::Inspected(_)) && !*self.ready_tx.borrow() {
            return;
        }
        // An observer keeps its health picture fresh but decides nothing; the outcome of a call it
        // made while it still acted is for the next leader to verify. A chain not acted on is
        // watched the same way.
        if self.acting.is_none() || self.not_acted_on().is_some() {
            return;
        }
        let mut next = Some(input);
        let mut rounds = 0;
        while let Some(input) = next.take() {
            self.health.set_leader(self.state.leader.as_deref(), Instant::now());
            let actions = {
                let view = view_of!(self);
                self.engine.handle(input, &view)
            };
            let executed = self.execute(actions).await;
            rounds += 1;
            if executed.persisted && !self.engine.is_busy() && rounds < 4 {
                next = Some(Input::Tick);
            }
        }
    }

    /// Executes actions in order, up to a persist that fails (what depends on it is not done).
    async fn execute(&mut self, actions: Vec<Action>) -> Executed {
        let mut persisted = false;
        for action in actions {
            match action {
                Action::Persist(next) => {
                    let started = Instant::now();
                    let saved = match &self.fence {
                        Some(fence) => fence.persist_state(&next, self.store.save(&self.name, &next)).await,
                        None => self.store.save(&self.name, &next).await,
                    };
                    if let Err(err) = saved {
                        self.persist_health.failed(&err);
                        let view = view_of!(self);
                        let _ = self.engine.handle(Input::PersistFailed, &view);
                        return Executed { persisted, persist_failed: true };
                    }
                    tracing::debug!(chain = %self.name, phase = %next.phase.name(), took_ms = started.elapsed().as_millis() as u64, "state persisted");
                    self.persist_health.succeeded();
                    self.state = next;
                    self.state_changed_at = Some(Instant::now());
                    persisted = true;
                    self.publish_state_metrics();
                }
                Action::Stop { node, purpose } => self.spawn_stop(node, purpose),
                Action::ReadHead { node } => self.spawn_read_head(node),
                Action::Start { node, hash } => self.spawn_start(node, hash),
                Action::CheckActive { node } => self.spawn_check_active(node),
                Action::Replay { node, from } => self.spawn_replay(node, from),
                Action::MarkNotSequencer { node } => self.health.mark_not_sequencer(&node),
                Action::Event(event) => self.record_event(event),
                Action::Outcome(outcome) => self.account(outcome),
            }
        }
        Executed { persisted, persist_failed: false }
    }

    fn record_event(&mut self, event: Event) {
        let duration_ms = event.duration.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let node = event.node.as_deref().unwrap_or("-");
        match event.severity {
            Severity::Warn => {
                tracing::warn!(chain = %self.name, kind = %event.kind, node = %node, duration_ms, "{}", event.detail)
            }
            Severity::Info => {
                tracing::info!(chain = %self.name, kind = %event.kind, node = %node, duration_ms, "{}", event.detail)
            }
        }
        // Numbered from the timeline kept, so the numbers continue across whatever restores it.
        let seq = self.events.back().and_then(|last| last.seq).map_or(0, |last| last + 1);
        let event = CoordinatorEvent {
            seq: Some(seq),
            at_unix_ms: unix_ms(),
            chain: self.name.clone(),
            kind: event.kind,
            node: event.node,
            detail: event.detail,
            duration_ms,
        };
        self.timeline_file.append(&event);
        self.events.push_back(event);
        while self.events.len() > EVENT_HISTORY {
            self.events.pop_front();
        }
    }

    /// Carries out what the engine decided beyond calls and state: metrics and the operator's
    /// answer.
    fn account(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Failover { outcome, duration } => m::record_failover(&self.name, outcome, duration),
            Outcome::HandoverFinished(result) => {
                if let Some((_, reply)) = self.handover_reply.take() {
                    let _ = reply.send(result.map_err(CommandError::HandoverFailed));
                }
            }
            Outcome::InspectionStopped { node } => m::record_inspection_stop(&self.name, node),
            Outcome::DecisionHeld => m::record_decision_held(&self.name),
        }
    }

    fn fail_handover(&mut self, why: CommandError) {
        if let Some((_, reply)) = self.handover_reply.take() {
            let _ = reply.send(Err(why));
        }
    }

    /// Counters exist from start-up at zero, so a dashboard or an alert on `increase()` sees the
    /// series before the first fail-over, inspection stop or persist failure, not only after it.
    fn register_counters(&self) {
        m::register_chain(&self.name, self.members.iter().map(|member| member.name.as_str()));
        self.persist_health.register();
        if let Some(fence) = &self.fence {
            let nodes = self.members.iter().map(|member| member.name.as_str());
            m::register_conductor(&self.name, nodes, fence.view().head.map(|head| head.number));
        }
    }

    fn publish_state_metrics(&self) {
        m::publish_state(&self.name, self.members.iter().map(|member| member.name.as_str()), &self.state);
    }

    fn publish_probe_metrics(&mut self, report: &ProbeReport) {
        let node = self.health.nodes.get(&report.node);
        if let Some(metrics) = self.probe_metrics.get_mut(&report.node) {
            metrics.publish(report, node);
        }
    }
}

/// What executing a decision's actions did to the durable state.
#[derive(Debug, Clone, Copy)]
struct Executed {
    /// A state change was made durable.
    persisted: bool,
    /// A persist failed: the actions after it were not taken.
    persist_failed: bool,
}

/// Wall-clock unix milliseconds, for the engine's view and the timeline.
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
