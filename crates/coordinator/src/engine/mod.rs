//! The fail-over engine: a pure function of (durable state, observations, input, now) to actions.
//!
//! It performs no I/O and reads no clock: the chain actor feeds it inputs (a tick after fresh
//! probes, an inspection round, the outcome of an RPC it asked for, an operator command) and
//! executes the actions it returns, in order. `Persist` always comes before the RPC that depends
//! on it, so a coordinator that dies between the two restarts knowing what it may have done.
//! At most one fail-over call (stop, read head, start, verify) is in flight at a time; inspection
//! and fencing stops run per node.
//!
//! # Decision table
//!
//! Evaluated on every tick while no fail-over call is in flight and automation is not paused (an
//! operator's hand-over runs while paused).
//! "Eligible" means: a candidate, healthy (thresholds applied), not fenced, sequencer-enabled,
//! admin API enabled. Candidates are tried by priority (higher first), then name.
//!
//! | phase        | condition                                                  | actions                                                                    |
//! |--------------|------------------------------------------------------------|----------------------------------------------------------------------------|
//! | any, paused too | a fenced node answers a probe                           | `Stop(node, fence)`                                                        |
//! | discovering  | one or more nodes active, every reachable node inspected (or the wait over) | persist steady with the most advanced active node (inspection stops the rest) |
//! | discovering  | none active, convergence wait not over                     | wait                                                                       |
//! | discovering  | none active, wait over, a node unreachable or not inspected and a head advanced within the liveness window | nothing: someone we cannot see may sequence; say so |
//! | discovering  | none active, wait over, an eligible node                   | persist starting(most advanced) with its head as stopped hash; `Start`      |
//! | discovering  | none active, wait over, nobody eligible                    | persist leaderless; say so                                                 |
//! | steady       | leader healthy                                             | nothing                                                                    |
//! | steady       | leader unhealthy by a timeout or a stall, while the coordinator's own timers ran later than `max_self_lag` within `self_lag_span` (or its lateness monitor is overdue) | nothing: its own slowness may be the cause; say so once per episode (`decision_held`) |
//! | steady       | leader unhealthy, reachable, stoppable                     | persist stopping; `Stop(leader, failover)`                                 |
//! | steady       | leader unreachable (or cannot be stopped), a follower's head advanced within the liveness window | nothing: the leader is alive, only cut off from us; say so |
//! | steady       | leader unreachable, no follower advanced, and no other node answers its latest probe either | nothing: this coordinator may be cut off from the nodes; say so (`no_node_answers`) |
//! | steady       | leader unreachable, chain stopped, an eligible candidate   | persist fenced += leader, stopped hash (estimated) = the most advanced head any node holds, healthy or not; catching up |
//! | steady       | leader unreachable, chain stopped, nobody eligible         | nothing; say so                                                            |
//! | stopping     | (after a restart or a failed head read: nothing in flight) | `Stop(from)` again (hand-over purpose if it has a target); "not running" then reads its head |
//! | catching up, leaderless | a fenced node answers (its fence stop not yet returned) | wait: no start, no restart of the old leader; the timeout still runs |
//! | catching up  | an eligible candidate (the target, for a hand-over) is at the stopped hash | persist starting; `Start(candidate, stopped hash)`        |
//! | catching up  | catch-up timeout, old leader healthy, not fenced, at the stopped hash | persist starting(old leader); `Start(old leader, stopped hash)` |
//! | catching up  | estimated stopped hash, some node now holds a more advanced head | persist that head as the stopped hash                          |
//! | catching up, leaderless | (timeout passed) every configured node answers and all are at one head other than the stopped hash | persist starting(first eligible at it), stopped hash = that head; `Start`: the network moved on (e.g. a sequencer started behind our back re-orged or extended past the stopped block) and nothing any node holds is lost |
//! | catching up  | catch-up timeout, otherwise                                | persist leaderless; say so loudly                                          |
//! | starting     | (after a restart: nothing in flight)                       | `CheckActive(target)` before anything else                                 |
//! | leaderless   | an eligible node (the old leader included) is at the stopped hash | persist starting; `Start(node, stopped hash)`                       |
//! | leaderless   | no stopped hash known                                      | as discovering with the wait over                                          |
//!
//! Outcomes of the calls:
//!
//! | call               | outcome                         | next                                                              |
//! |--------------------|---------------------------------|-------------------------------------------------------------------|
//! | stop (fail-over)   | hash                            | persist catching up with the hash (or a higher stop answer: see "The stopped point") |
//! | stop (fail-over)   | zero hash / "not running" / "not enabled" (also: mark not a sequencer) | `ReadHead(from)`: `optimism_syncStatus().unsafe_l2.hash` |
//! | stop (fail-over)   | no answer / other error         | persist steady; the leader counts as unstoppable for a while (a hand-over is abandoned) |
//! | read head          | hash                            | persist catching up with the hash                                 |
//! | read head          | failure                         | after a back-off, `Stop(from)` again; after three, the last head seen in probes, else persist leaderless |
//! | start              | ok                              | persist steady with the new leader, epoch + 1                     |
//! | start              | "already running"               | `CheckActive(target)`                                             |
//! | start              | "block hash does not match", a start at the node's own head (restart, election) and the answer names a newer head | persist that head as the stopped hash; `Start` there |
//! | start              | "block hash does not match"     | persist catching up                                               |
//! | start              | "no prestate"                   | after `start_retry_interval_ms`, `CheckActive(target)`, then `Start` again |
//! | start              | "not enabled" / admin disabled / "not the leader" | mark not a candidate; persist catching up       |
//! | start              | no answer / other error         | `CheckActive(target)` before anything else                        |
//! | check active       | true                            | as start ok                                                       |
//! | check active       | false                           | `Start(target, stopped hash)` again if it is still at it and no fenced node answers, else persist catching up |
//! | check active       | no answer                       | `CheckActive(target)` again after a back-off; after three, persist fenced += target, catching up |
//! | stop (fence)       | hash / "not running" / "not enabled" | persist fenced -= node; a hash is remembered as a stop answer |
//! | stop (fence)       | other error                     | retry when it answers, at most every 500 ms                       |
//! | stop (inspection)  | any                             | report it; a hash is remembered as a stop answer on the chain     |
//!
//! Inspection (every `inspection.interval_ms`, with fresh `admin_sequencerActive` answers): every
//! active node other than the leader (steady), the target (starting) or the node being stopped
//! (stopping) is stopped; a healthy leader found inactive is restarted at its own head, unless
//! another node was found active in the same round. Nothing while paused or discovering.
//! Leaderless with no stopped hash (nothing was stopped: a start-up that could not tell who
//! sequences), outside conductor mode, the most advanced active node that is not fenced is
//! adopted as leader instead of stopped: it is the chain's sequencer, not an intruder.
//!
//! Operator commands: a hand-over (`transfer`) is refused for an unknown, ineligible or current
//! target, while a call is in flight, and outside steady or leaderless; it persists stopping with
//! the target and stops the leader, and its catch-up tries only the target. Pause does not refuse
//! it: pause stops automation, and the hand-over's own steps run while paused (see `command`).
//!
//! # The stopped point
//!
//! The stopped point is the highest stop answer known on the chain. Inspection and fence stops
//! that answer a hash are remembered with the block number probes saw for it (until a leader is
//! started). When a fail-over's stop or head read ends the old leader's chain at block `n`, and a
//! remembered answer lies above `n` while every eligible candidate that answers has already passed
//! `n`, nobody can reach `n` again: the remembered answer is the stopped hash at once
//! (`stopped_hash_from_inspection`), instead of a catch-up timeout and a leaderless wait. The same
//! holds in the other order: such an answer arriving while catching up moves the stopped hash. A
//! catching-up or leaderless chain checks it on every tick (leaderless, the old leader counts among
//! the candidates), as the candidates that answer change; the stopped hash keeps the block number
//! probes last saw for it, so a stopped block whose branch was replaced is still placed, and a
//! stop answer newer than its node's last probe is placed once a probe sees it (single seed 74).
//!
//! # Clocks and what the engine records
//!
//! The [`View`] carries both clocks the engine needs: monotonic `now` for its timers and `unix_ms`
//! for the catch-up deadline it writes into every persisted catching-up state
//! (`catch_up_deadline_unix_ms`). Its first input restores that countdown from the persisted
//! state, so a coordinator that takes over (a restart, another replica) continues it instead of
//! granting the candidates a fresh timeout. Everything the actor must do beyond calls and
//! persisting (count a fail-over, finish an operator's hand-over, count an inspection stop) comes
//! as an [`Action::Outcome`]: the actor never reads an event to decide anything.
//!
//! # Layout
//!
//! One module per phase or concern, each with its table tests beside it:
//! - [`view`]: the observations a decision reads, and the election order.
//! - `discover`: start-up adoption and the election at a node's own head.
//! - `steady`: watching the leader; fencing an unreachable one of a stopped chain.
//! - `catch_up`: waiting for a candidate at the stopped hash; leaderless; the planted-bug hook.
//! - `stop`: outcomes of fail-over and hand-over stops and of head reads.
//! - `node_stop`: outcomes of inspection and fence stops; the stop answers on the chain.
//! - `start`: outcomes of starts and activity checks; a new leader.
//! - `inspect`: inspection rounds.
//! - `fence`: stopping fenced nodes that answer again.
//! - `timing`: no leader deposed on timing evidence while the coordinator itself is late.
//! - `command`: operator commands (hand-over, pause).
//! - `record`: events, announcements, outcomes, leaderless, and the persisted deadline.
//! - `fixtures` (tests only): the `Chain` that plays the actor in every table
//!   test; probes come from `crate::testing`.
//!
//! Adding a decision: a row in the tables above, the code in its phase's module, a table test
//! beside it; an [`EventKind`] variant (in `opc-wire`) if it says something new, and an
//! [`Outcome`] if the actor must do more than call, persist and log.

mod catch_up;
mod command;
pub mod conductor;
mod discover;
mod fence;
#[cfg(test)]
pub(crate) mod fixtures;
mod inspect;
mod node_stop;
mod record;
mod start;
mod steady;
mod stop;
mod timing;
pub mod view;

pub use command::{CommandError, HandoverTarget};
pub use conductor::ConductorTiming;
pub use opc_wire::EventKind;
pub use view::View;

use crate::{
    client::CallError,
    state::{ChainState, Phase},
};
use alloy_primitives::B256;
use std::{
    collections::{BTreeMap, HashMap},
    time::Duration,
};
use tokio::time::Instant;

/// How many failed head reads or activity checks before falling back.
const MAX_VERIFY_ATTEMPTS: u32 = 3;
/// Back-off between retries of a failed call.
const RETRY_BACKOFF: Duration = Duration::from_millis(200);
/// A condition worth shouting about is repeated at most this often.
const ANNOUNCE_EVERY: Duration = Duration::from_secs(10);
/// After a stop of the leader failed, it counts as unstoppable this long.
const UNSTOPPABLE_FOR: Duration = Duration::from_secs(5);
/// An inspection or fence stop of the same node is retried at most this often.
const PER_NODE_BACKOFF: Duration = Duration::from_millis(500);

/// Timings of the fail-over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailoverSettings {
    /// How long to wait for a candidate to reach the stopped hash.
    pub catch_up_timeout: Duration,
    /// An unreachable leader's chain counts as alive if a follower's head moved within this.
    pub chain_liveness_window: Duration,
    /// Start-up with no active sequencer: how long to let heads converge before electing.
    pub convergence_wait: Duration,
    /// Retry period of `admin_startSequencer` after "no prestate".
    pub start_retry_interval: Duration,
    /// The coordinator's own lateness beyond which a timeout or a stall deposes no leader.
    pub max_self_lag: Duration,
    /// How far back that lateness is looked for: the evidence the verdicts in force may rest on.
    pub self_lag_span: Duration,
    /// Conductor mode (see [`conductor`]): its timings; None for a chain without a conductor.
    pub conductor: Option<ConductorTiming>,
}

/// A configured sequencer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Node name.
    pub name: String,
    /// Higher is preferred.
    pub priority: i64,
    /// False: watched, never elected.
    pub candidate: bool,
}

/// Why a node is being stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StopPurpose {
    /// The leader is unhealthy.
    Failover,
    /// An operator asked for a hand-over.
    Handover,
    /// A non-leader was found active.
    Inspection,
    /// A deposed leader answered again.
    Fence,
}

/// `failover`, `handover`, `inspection`, `fence`: how logs name the purpose of a stop.
impl std::fmt::Display for StopPurpose {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Failover => "failover",
            Self::Handover => "handover",
            Self::Inspection => "inspection",
            Self::Fence => "fence",
        })
    }
}

/// What the engine asks the actor to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Make this state durable before executing the following actions.
    Persist(ChainState),
    /// `admin_stopSequencer`.
    Stop {
        /// The node.
        node: String,
        /// Why.
        purpose: StopPurpose,
    },
    /// `optimism_syncStatus().unsafe_l2.hash`, when a stop gave no usable hash.
    ReadHead {
        /// The node.
        node: String,
    },
    /// `admin_startSequencer(hash)`.
    Start {
        /// The node.
        node: String,
        /// The stopped hash.
        hash: B256,
    },
    /// `admin_sequencerActive`, to verify a start whose outcome is unknown.
    CheckActive {
        /// The node.
        node: String,
    },
    /// Conductor mode: post the committed payloads after `from` to `node`
    /// (`admin_postUnsafePayload`, oldest first), to bring it to the committed head.
    Replay {
        /// The node.
        node: String,
        /// Its head: the payloads after it are posted.
        from: B256,
    },
    /// The node said it is not a sequencer: never a candidate again.
    MarkNotSequencer {
        /// The node.
        node: String,
    },
    /// Something worth a log line and a timeline entry.
    Event(Event),
    /// Something the actor must account for or answer (metrics, an operator waiting).
    Outcome(Outcome),
}

/// How a fail-over ended, as counted by `op_coordinator_failovers_total{outcome}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailoverOutcome {
    /// A new leader sequences after an automatic fail-over (or an election).
    Success,
    /// No candidate caught up in time: the old leader was restarted at the stopped hash.
    RestartedOldLeader,
    /// A leaderless episode began: nobody could be started.
    Leaderless,
    /// A new leader sequences after an operator's hand-over.
    Handover,
}

impl FailoverOutcome {
    /// Every outcome, for registering the metric's series up front.
    pub const ALL: [FailoverOutcome; 4] =
        [Self::Success, Self::RestartedOldLeader, Self::Leaderless, Self::Handover];

    /// The `outcome` label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::RestartedOldLeader => "restarted_old_leader",
            Self::Leaderless => "leaderless",
            Self::Handover => "handover",
        }
    }
}

/// What a decision means for the world outside the engine, beyond calls and state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Count a fail-over; with a duration (a new leader sequences), record how long it took.
    Failover {
        /// How it ended.
        outcome: FailoverOutcome,
        /// From the decision to fail over (or the operator's request) to the new leader sequencing.
        duration: Option<Duration>,
    },
    /// The operator's hand-over is over: answer the operator waiting for it, if any.
    HandoverFinished(Result<(), String>),
    /// Inspection stopped a node found sequencing: count it.
    InspectionStopped {
        /// The node.
        node: String,
    },
    /// A leader was left in place because the only evidence against it was gathered while the
    /// coordinator's own timers ran late (see [`timing`]): count the episode.
    DecisionHeld,
}

/// How loudly an event is logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// A normal step: an info line.
    Info,
    /// Worth a warning.
    Warn,
}

/// A timeline entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// The node concerned.
    pub node: Option<String>,
    /// Human-readable detail.
    pub detail: String,
    /// Duration of the step or of the whole fail-over.
    pub duration: Option<Duration>,
    /// Info or warning.
    pub severity: Severity,
}

impl Event {
    /// A normal step.
    pub fn info(kind: EventKind, node: Option<&str>, detail: impl Into<String>) -> Self {
        Self {
            kind,
            node: node.map(str::to_owned),
            detail: detail.into(),
            duration: None,
            severity: Severity::Info,
        }
    }

    /// A step worth a warning.
    pub fn warn(kind: EventKind, node: Option<&str>, detail: impl Into<String>) -> Self {
        Self { severity: Severity::Warn, ..Self::info(kind, node, detail) }
    }

    /// The same event with the duration of its step.
    pub fn took(self, duration: Option<Duration>) -> Self {
        Self { duration, ..self }
    }
}

/// What the engine reacts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Observations changed (a probe arrived) or a timer fired.
    Tick,
    /// An inspection round finished: `admin_sequencerActive` per node that answered.
    Inspected(BTreeMap<String, bool>),
    /// A stop finished.
    Stopped {
        /// The node.
        node: String,
        /// Why it was stopped.
        purpose: StopPurpose,
        /// The stopped hash or the error.
        result: Result<B256, CallError>,
    },
    /// A head read finished.
    HeadRead {
        /// The node.
        node: String,
        /// Its unsafe head hash (zero when op-node reports zero refs).
        result: Result<B256, CallError>,
    },
    /// A start finished.
    Started {
        /// The node.
        node: String,
        /// The outcome.
        result: Result<(), CallError>,
    },
    /// An activity check finished.
    ActiveChecked {
        /// The node.
        node: String,
        /// The outcome.
        result: Result<bool, CallError>,
    },
    /// A replay finished: how many payloads were posted, or why it failed.
    Replayed {
        /// The node.
        node: String,
        /// Payloads posted, or the error.
        result: Result<usize, String>,
    },
    /// The actions after a `Persist` were dropped because persisting failed.
    PersistFailed,
}

/// The calls of the fail-over in flight (at most one).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pending {
    Stop(String),
    ReadHead(String),
    Start(String),
    CheckActive(String),
}

/// The engine's volatile state: what it is waiting for and its timers. Lost on restart by design;
/// everything that matters across a restart is in [`ChainState`].
#[derive(Debug)]
pub struct FailoverEngine {
    settings: FailoverSettings,
    started_at: Instant,
    pending: Option<Pending>,
    /// Per-node stops (inspection, fence) in flight, and when a node may be tried again.
    node_stops: HashMap<String, Option<Instant>>,
    catch_up_deadline: Option<Instant>,
    /// The persisted catch-up countdown was looked at (on the first input): it is restored once.
    deadline_restored: bool,
    retry_at: Option<Instant>,
    attempts: u32,
    failover_started_at: Option<Instant>,
    step_started_at: Option<Instant>,
    unstoppable_until: Option<(String, Instant)>,
    leader_since: Option<Instant>,
    /// When this engine started the current leader: until a liveness window has passed, a
    /// silent chain only means its first blocks are still on their way.
    started_leader_at: Option<Instant>,
    announced: HashMap<EventKind, Instant>,
    resumed: bool,
    /// The target of the operator's hand-over in progress, answered when it ends.
    handover: Option<String>,
    /// The current leaderless episode was already counted as a fail-over outcome.
    leaderless_counted: bool,
    /// The highest inspection or fence stop answer since a leader was last started.
    stop_answer: Option<node_stop::StopAnswer>,
    /// The block number probes last saw for the stopped hash: a stopped block no node holds any
    /// more (its branch replaced by a sequencer started behind our back) keeps its number.
    stopped_number: Option<(B256, u64)>,
    /// A leader is being kept because the evidence against it came while the coordinator was
    /// late (see [`timing`]): the episode was said and counted.
    holding_on_timing: bool,
    /// Conductor mode: the node a replay is running for.
    replaying: Option<String>,
    /// Conductor mode: a failed replay is retried from then on.
    replay_retry_at: Option<Instant>,
}

impl FailoverEngine {
    /// A fresh engine; `now` starts the convergence wait.
    pub fn new(settings: FailoverSettings, now: Instant) -> Self {
        Self {
            settings,
            started_at: now,
            pending: None,
            node_stops: HashMap::new(),
            catch_up_deadline: None,
            deadline_restored: false,
            retry_at: None,
            attempts: 0,
            failover_started_at: None,
            step_started_at: None,
            unstoppable_until: None,
            leader_since: None,
            started_leader_at: None,
            announced: HashMap::new(),
            resumed: false,
            handover: None,
            leaderless_counted: false,
            stop_answer: None,
            stopped_number: None,
            holding_on_timing: false,
            replaying: None,
            replay_retry_at: None,
        }
    }

    /// A fresh engine for a replica that acts again in the same term (its lease lapsed and was
    /// confirmed again): calls in flight are forgotten and verified, but the catch-up countdown
    /// continues, as nobody else can have acted in between.
    pub fn renewed(&self, now: Instant) -> Self {
        let mut next = Self::new(self.settings.clone(), now);
        next.catch_up_deadline = self.catch_up_deadline;
        next.deadline_restored = self.catch_up_deadline.is_some();
        next
    }

    /// The chain's windows changed (its block time became known, or was measured anew): the
    /// decisions from now on use them; a catch-up deadline already set keeps its end.
    pub fn retune(&mut self, settings: FailoverSettings) {
        self.settings = settings;
    }

    /// The chain's conductor-mode timings, when it is conducted.
    pub fn conductor_timing(&self) -> Option<conductor::ConductorTiming> {
        self.settings.conductor
    }

    /// True while a fail-over call is in flight.
    pub fn is_busy(&self) -> bool {
        self.pending.is_some()
    }

    /// When the current leader was started or adopted (its activity is judged only after).
    pub fn leader_since(&self) -> Option<Instant> {
        self.leader_since
    }

    /// Reacts to one input.
    pub fn handle(&mut self, input: Input, view: &View<'_>) -> Vec<Action> {
        self.restore_catch_up_deadline(view);
        if let Some(stopped) = view.state.stopped_hash
            && let Some(number) = view.number_of(stopped)
        {
            self.stopped_number = Some((stopped, number));
        }
        let mut out = Vec::new();
        if !self.take_pending(&input) {
            return out;
        }
        match input {
            Input::Tick => self.evaluate(view, &mut out),
            Input::Inspected(active) => {
                self.inspect(view, &active, &mut out);
                if out.is_empty() {
                    self.evaluate(view, &mut out);
                }
            }
            Input::Stopped {
                node,
                purpose: purpose @ (StopPurpose::Inspection | StopPurpose::Fence),
                result,
            } => self.on_node_stopped(view, node, purpose, result, &mut out),
            Input::Stopped { node, result, .. } => self.on_leader_stopped(view, node, result, &mut out),
            Input::HeadRead { node, result } => self.on_head_read(view, node, result, &mut out),
            Input::Started { node, result } => self.on_started(view, node, result, &mut out),
            Input::ActiveChecked { node, result } => self.on_active_checked(view, node, result, &mut out),
            Input::Replayed { node, result } => self.on_replayed(view, node, result, &mut out),
            Input::PersistFailed => self.on_persist_failed(view),
        }
        self.finish(view, &mut out);
        out
    }

    /// Nothing after the failed persist ran: forget what we thought was in flight. A hand-over
    /// whose first step did not persist never began (the actor tells the operator).
    fn on_persist_failed(&mut self, view: &View<'_>) {
        self.pending = None;
        self.retry_at = Some(view.now + RETRY_BACKOFF);
        if matches!(view.state.phase, Phase::Steady | Phase::Leaderless) {
            self.handover = None;
        }
    }

    /// Records the calls the actions start and stamps the catch-up deadline on what is persisted.
    fn finish(&mut self, view: &View<'_>, out: &mut [Action]) {
        self.note_calls(out);
        self.stamp_catch_up_deadline(view, out);
    }

    /// Records the calls the actions start, so results can be matched and ticks do not repeat them.
    fn note_calls(&mut self, actions: &[Action]) {
        for action in actions {
            match action {
                Action::Stop { node, purpose: StopPurpose::Inspection | StopPurpose::Fence } => {
                    self.node_stops.insert(node.clone(), None);
                }
                Action::Stop { node, .. } => self.pending = Some(Pending::Stop(node.clone())),
                Action::ReadHead { node } => self.pending = Some(Pending::ReadHead(node.clone())),
                Action::Start { node, .. } => self.pending = Some(Pending::Start(node.clone())),
                Action::CheckActive { node } => self.pending = Some(Pending::CheckActive(node.clone())),
                _ => {}
            }
        }
    }

    /// Clears the call in flight if `input` is its outcome; false for an outcome nobody waits for
    /// (a late answer to a call the engine gave up on), which is then ignored. Inputs that answer
    /// no fail-over call always pass.
    fn take_pending(&mut self, input: &Input) -> bool {
        let answered = match input {
            Input::Stopped { node, purpose: StopPurpose::Failover | StopPurpose::Handover, .. } => {
                Pending::Stop(node.clone())
            }
            Input::HeadRead { node, .. } => Pending::ReadHead(node.clone()),
            Input::Started { node, .. } => Pending::Start(node.clone()),
            Input::ActiveChecked { node, .. } => Pending::CheckActive(node.clone()),
            _ => return true,
        };
        if self.pending.as_ref() != Some(&answered) {
            return false;
        }
        self.pending = None;
        true
    }

    fn evaluate(&mut self, view: &View<'_>, out: &mut Vec<Action>) {
        // Fencing is safety, not automation: it runs even while paused.
        self.fence(view, out);
        if self.held_by_pause(view) {
            return;
        }
        if self.pending.is_some() || self.retry_at.is_some_and(|at| view.now < at) {
            return;
        }
        self.retry_at = None;
        if !self.resumed {
            self.resumed = true;
            Self::say_resuming(&view.state.phase, out);
        }
        match view.state.phase.clone() {
            Phase::Discovering => self.discover(view, out),
            Phase::Steady => self.watch_leader(view, out),
            Phase::Stopping { from, target } => self.stop_again(view, from, target, out),
            Phase::CatchingUp { from, target } => self.catch_up(view, &from, target.as_deref(), out),
            // Only reached after a restart or a failed verification: verify before acting.
            Phase::Starting { target, .. } => out.push(Action::CheckActive { node: target }),
            Phase::Leaderless => self.leaderless(view, out),
        }
    }

    /// The first evaluation of an engine over a call that was interrupted says what it resumes.
    fn say_resuming(phase: &Phase, out: &mut Vec<Action>) {
        let (node, detail) = match phase {
            Phase::Stopping { from, .. } => (from, "resuming an interrupted stop"),
            Phase::Starting { target, .. } => (target, "verifying an interrupted start"),
            _ => return,
        };
        out.push(Action::Event(Event::info(EventKind::Resuming, Some(node), detail)));
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::fixtures::*;

    #[tokio::test(start_paused = true)]
    async fn a_restart_while_stopping_stops_the_old_leader_again() {
        let state = with_phase(&steady("a"), Phase::Stopping { from: "a".into(), target: None });
        let mut chain = Chain::new(ABC, state);
        chain.head("a", 20).head("b", 20).head("c", 20);
        assert_eq!(chain.tick(), [event(EventKind::Resuming, "a"), stop("a", Failover)]);
        a_already_stopped_is_stopped_at_its_head_20(&mut chain);
    }

    #[tokio::test(start_paused = true)]
    async fn a_restart_while_handing_over_stops_the_old_leader_again_for_the_same_target() {
        let state = with_phase(&steady("a"), Phase::Stopping { from: "a".into(), target: Some("c".into()) });
        let mut chain = Chain::new(ABC, state);
        chain.head("a", 20).head("b", 20).head("c", 20);
        assert_eq!(chain.tick(), [event(EventKind::Resuming, "a"), stop("a", Handover)]);
        let stopped = ChainState {
            leader: None,
            stopped_hash: Some(hash(20)),
            phase: Phase::CatchingUp { from: "a".into(), target: Some("c".into()) },
            ..steady("a")
        };
        assert_eq!(
            chain.stopped("a", Handover, Ok(hash(20))),
            [persist(stopped), event(EventKind::Stopped, "a")]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_restart_while_catching_up_resumes_with_the_persisted_stopped_hash() {
        let mut chain = Chain::new(ABC, catching_up("a", 20));
        // c is the most advanced, but only the stopped hash counts.
        chain.fail("a", unreachable()).head("b", 20).head("c", 21);
        assert_eq!(chain.tick(), caught_up(&catching_up("a", 20), "b", Some("a"), 20));
    }

    #[tokio::test(start_paused = true)]
    async fn a_restart_while_starting_verifies_the_start_before_anything_else() {
        let state = with_phase(&catching_up("a", 20), starting("b", Some("a")));
        let mut chain = Chain::new(ABC, state.clone());
        chain.head("a", 20).head("b", 20).head("c", 20);
        assert_eq!(chain.tick(), [event(EventKind::Resuming, "b"), check_active("b")]);
        assert_eq!(chain.active_checked("b", Ok(true)), became_leader(&state, "b"));

        let mut chain = Chain::new(ABC, state);
        chain.head("a", 20).head("b", 20).head("c", 20);
        assert_eq!(chain.tick(), [event(EventKind::Resuming, "b"), check_active("b")]);
        assert_eq!(
            chain.active_checked("b", Ok(false)),
            [start("b", 20)],
            "not started: start it at the hash"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn results_that_do_not_match_the_call_in_flight_are_ignored() {
        let mut chain = stopping_a();
        assert_eq!(chain.stopped("b", Failover, Ok(hash(20))), []);
        assert_eq!(chain.head_read("a", Ok(hash(20))), []);
        assert_eq!(chain.started("a", Ok(())), []);
        assert_eq!(chain.active_checked("a", Ok(true)), []);
        assert_eq!(chain.tick(), [], "the real stop is still awaited");
        assert_eq!(
            chain.stopped("a", Failover, Ok(hash(20))),
            [persist(a_stopped_at(20)), event(EventKind::Stopped, "a")]
        );
        assert_eq!(chain.stopped("a", Failover, Ok(hash(20))), [], "a duplicate is ignored too");

        let mut chain = a_leading_at_10();
        assert_eq!(chain.started("b", Ok(())), []);
        assert_eq!(chain.active_checked("b", Ok(true)), []);
        assert_eq!(chain.stopped("a", Handover, Ok(hash(10))), []);
        assert_eq!(chain.state, steady("a"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_persist_forgets_the_call_and_decides_again_after_a_back_off() {
        let mut chain = stopping_a();
        // The actor could not persist stopping, so it neither stored it nor sent the stop.
        chain.state = steady("a");
        assert_eq!(chain.handle(Input::PersistFailed), []);
        assert_eq!(chain.at(199).tick(), []);
        assert_eq!(chain.at(200).tick(), a_stopped_as_unhealthy());
    }
}
