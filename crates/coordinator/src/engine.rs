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
//! Evaluated on every tick while no fail-over call is in flight and automation is not paused.
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
//! | steady       | leader unhealthy, reachable, stoppable                     | persist stopping; `Stop(leader, failover)`                                 |
//! | steady       | leader unreachable (or cannot be stopped), a follower's head advanced within the liveness window | nothing: the leader is alive, only cut off from us; say so |
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
//! | stop (fail-over)   | hash                            | persist catching up with the hash                                 |
//! | stop (fail-over)   | zero hash / "not running" / "not enabled" (also: mark not a sequencer) | `ReadHead(from)`: `optimism_syncStatus().unsafe_l2.hash` |
//! | stop (fail-over)   | no answer / other error         | persist steady; the leader counts as unstoppable for a while (a hand-over is abandoned) |
//! | read head          | hash                            | persist catching up with the hash                                 |
//! | read head          | failure                         | after a back-off, `Stop(from)` again; after three, the last head seen in probes, else persist leaderless |
//! | start              | ok                              | persist steady with the new leader, epoch + 1                     |
//! | start              | "already running"               | `CheckActive(target)`                                             |
//! | start              | "block hash does not match"     | persist catching up                                               |
//! | start              | "no prestate"                   | after `start_retry_interval_ms`, `CheckActive(target)`, then `Start` again |
//! | start              | "not enabled" / admin disabled / "not the leader" | mark not a candidate; persist catching up       |
//! | start              | no answer / other error         | `CheckActive(target)` before anything else                        |
//! | check active       | true                            | as start ok                                                       |
//! | check active       | false                           | `Start(target, stopped hash)` again if it is still at it and no fenced node answers, else persist catching up |
//! | check active       | no answer                       | `CheckActive(target)` again after a back-off; after three, persist fenced += target, catching up |
//! | stop (fence)       | hash / "not running" / "not enabled" | persist fenced -= node                                       |
//! | stop (fence)       | other error                     | retry when it answers, at most every 500 ms                       |
//! | stop (inspection)  | any                             | report it                                                         |
//!
//! Inspection (every `inspection.interval_ms`, with fresh `admin_sequencerActive` answers): every
//! active node other than the leader (steady), the target (starting) or the node being stopped
//! (stopping) is stopped; a healthy leader found inactive is restarted at its own head, unless
//! another node was found active in the same round. Nothing while paused or discovering.
//!
//! Operator commands: a hand-over (`transfer`) is refused for an unknown, ineligible or current
//! target, while a call is in flight, while paused, and outside steady or leaderless; it persists
//! stopping with the target and stops the leader, and its catch-up tries only the target.

use crate::{
    client::CallError,
    health::{ChainHealth, NodeHealth, Reason},
    state::{ChainState, Phase},
};
use alloy_primitives::B256;
use opc_wire::op_node_errors::AdminError;
use std::{
    cmp::Reverse,
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
    /// The node said it is not a sequencer: never a candidate again.
    MarkNotSequencer {
        /// The node.
        node: String,
    },
    /// Something worth a log line and a timeline entry.
    Event(Event),
}

/// A timeline entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Machine-readable kind (`stopped`, `failover_complete`, ...).
    pub kind: &'static str,
    /// The node concerned.
    pub node: Option<String>,
    /// Human-readable detail.
    pub detail: String,
    /// Duration of the step or of the whole fail-over.
    pub duration: Option<Duration>,
    /// Worth a warning rather than an info line.
    pub severe: bool,
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
    /// The actions after a `Persist` were dropped because persisting failed.
    PersistFailed,
}

/// Why an operator command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// No such node.
    #[error("no sequencer named {0:?} in this chain")]
    UnknownNode(String),
    /// The target may not lead.
    #[error("{node} cannot take over: {why}")]
    Ineligible {
        /// The node.
        node: String,
        /// Why.
        why: String,
    },
    /// Something else is going on.
    #[error("busy: {0}; try again when the chain is steady")]
    Busy(String),
    /// Already the case.
    #[error("{0} is already the active sequencer")]
    AlreadyLeader(String),
}

/// The observations and durable state an engine decision reads.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    /// The durable state as last persisted.
    pub state: &'a ChainState,
    /// The configured sequencers.
    pub members: &'a [Member],
    /// What probes say.
    pub health: &'a ChainHealth,
    /// Now.
    pub now: Instant,
}

impl<'a> View<'a> {
    fn node(&self, name: &str) -> Option<&'a NodeHealth> {
        self.health.nodes.get(name)
    }

    fn member(&self, name: &str) -> Option<&'a Member> {
        self.members.iter().find(|member| member.name == name)
    }

    /// Why `name` may not lead, or None when it may.
    fn ineligibility(&self, name: &str) -> Option<String> {
        let Some(member) = self.member(name) else {
            return Some("it is not a configured sequencer of this chain".into());
        };
        let Some(node) = self.node(name) else {
            return Some("it has not been probed yet".into());
        };
        if !member.candidate {
            return Some("it is not a candidate (candidate = false)".into());
        }
        if self.state.fenced.contains(name) {
            return Some("it is fenced (a deposed leader not yet stopped)".into());
        }
        if node.not_sequencer {
            return Some("it is not sequencer-enabled".into());
        }
        if node.admin_disabled {
            return Some("its admin API is disabled".into());
        }
        if !node.healthy {
            return Some(format!("it is unhealthy ({}: {})", node.reason.code(), node.detail));
        }
        if node.unsafe_head.is_none() {
            return Some("its head is unknown".into());
        }
        None
    }

    fn eligible(&self, name: &str) -> bool {
        self.ineligibility(name).is_none()
    }

    fn head_hash(&self, name: &str) -> Option<B256> {
        self.node(name)?.unsafe_head.map(|head| head.hash)
    }

    /// Eligible candidates other than `excluded`, most advanced first (then priority, then name).
    fn most_advanced(&self, excluded: Option<&str>) -> Option<&'a Member> {
        self.members
            .iter()
            .filter(|member| Some(member.name.as_str()) != excluded && self.eligible(&member.name))
            .max_by_key(|member| {
                let number =
                    self.node(&member.name).and_then(|node| node.unsafe_head).map_or(0, |h| h.number);
                (number, member.priority, Reverse(member.name.clone()))
            })
    }

    /// The most advanced unsafe head any node other than `excluded` reports, healthy or not: the
    /// best estimate of the chain's tip when the leader cannot tell us. An unhealthy node (say,
    /// its op-geth answers garbage) may hold blocks the eligible ones have not received yet.
    fn network_tip(&self, excluded: &str) -> Option<(&'a str, opc_wire::L2BlockRef)> {
        self.members
            .iter()
            .filter(|member| member.name != excluded)
            .filter_map(|member| Some((member.name.as_str(), self.node(&member.name)?.unsafe_head?)))
            .max_by_key(|(name, head)| (head.number, Reverse(*name)))
    }

    /// The head every configured node reports, when every one of them answers and they all agree.
    /// Starting there re-orgs nothing any node holds: the old leader included, nobody has a block
    /// beyond it.
    fn converged_head(&self) -> Option<B256> {
        let mut heads = self
            .members
            .iter()
            .map(|member| self.answers(&member.name).then(|| self.head_hash(&member.name)));
        let first = heads.next()???;
        heads.all(|head| head == Some(Some(first))).then_some(first)
    }

    /// Eligible candidates in election order: priority, then name.
    fn by_priority(&self) -> Vec<&'a Member> {
        let mut members: Vec<&Member> =
            self.members.iter().filter(|member| self.eligible(&member.name)).collect();
        members.sort_by(|a, b| b.priority.cmp(&a.priority).then_with(|| a.name.cmp(&b.name)));
        members
    }

    /// True when `name`'s op-node answered its latest probe.
    fn answers(&self, name: &str) -> bool {
        self.node(name).is_some_and(|node| node.reachable && node.last_answer_at.is_some())
    }

    /// True when some node other than `leader` saw the chain move within `window`.
    fn chain_alive_without(&self, leader: &str, window: Duration) -> bool {
        self.health
            .chain_advanced_at(leader)
            .is_some_and(|at| self.now.saturating_duration_since(at) <= window)
    }
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
    retry_at: Option<Instant>,
    attempts: u32,
    failover_started_at: Option<Instant>,
    step_started_at: Option<Instant>,
    unstoppable_until: Option<(String, Instant)>,
    leader_since: Option<Instant>,
    /// When this engine started the current leader: until a liveness window has passed, a
    /// silent chain only means its first blocks are still on their way.
    started_leader_at: Option<Instant>,
    announced: HashMap<&'static str, Instant>,
    resumed: bool,
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
            retry_at: None,
            attempts: 0,
            failover_started_at: None,
            step_started_at: None,
            unstoppable_until: None,
            leader_since: None,
            started_leader_at: None,
            announced: HashMap::new(),
            resumed: false,
        }
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
        let mut out = Vec::new();
        match input {
            Input::Tick => self.evaluate(view, &mut out),
            Input::Inspected(active) => {
                self.inspect(view, &active, &mut out);
                if out.is_empty() {
                    self.evaluate(view, &mut out);
                }
            }
            Input::Stopped { node, purpose, result } => {
                self.on_stopped(view, node, purpose, result, &mut out)
            }
            Input::HeadRead { node, result } => self.on_head_read(view, node, result, &mut out),
            Input::Started { node, result } => self.on_started(view, node, result, &mut out),
            Input::ActiveChecked { node, result } => self.on_active_checked(view, node, result, &mut out),
            Input::PersistFailed => {
                // Nothing after the failed persist ran: forget what we thought was in flight.
                self.pending = None;
                self.retry_at = Some(view.now + RETRY_BACKOFF);
            }
        }
        self.note_calls(&out);
        out
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

    fn event(&mut self, out: &mut Vec<Action>, kind: &'static str, node: Option<&str>, detail: String) {
        out.push(Action::Event(Event {
            kind,
            node: node.map(str::to_owned),
            detail,
            duration: None,
            severe: false,
        }));
    }

    fn timed_event(
        &mut self,
        out: &mut Vec<Action>,
        kind: &'static str,
        node: Option<&str>,
        detail: String,
        duration: Option<Duration>,
        severe: bool,
    ) {
        out.push(Action::Event(Event { kind, node: node.map(str::to_owned), detail, duration, severe }));
    }

    /// A condition that persists is announced once per [`ANNOUNCE_EVERY`].
    fn announce(
        &mut self,
        out: &mut Vec<Action>,
        now: Instant,
        kind: &'static str,
        node: Option<&str>,
        detail: String,
    ) {
        let due =
            self.announced.get(kind).is_none_or(|at| now.saturating_duration_since(*at) >= ANNOUNCE_EVERY);
        if due {
            self.announced.insert(kind, now);
            self.timed_event(out, kind, node, detail, None, true);
        }
    }

    fn since_step(&self, now: Instant) -> Option<Duration> {
        self.step_started_at.map(|at| now.saturating_duration_since(at))
    }

    fn persist(out: &mut Vec<Action>, view: &View<'_>, change: impl FnOnce(&mut ChainState)) -> ChainState {
        let mut next = view.state.clone();
        change(&mut next);
        out.push(Action::Persist(next.clone()));
        next
    }

    fn evaluate(&mut self, view: &View<'_>, out: &mut Vec<Action>) {
        // Fencing is safety, not automation: it runs even while paused.
        self.fence(view, out);
        if view.state.paused {
            return;
        }
        if self.pending.is_some() || self.retry_at.is_some_and(|at| view.now < at) {
            return;
        }
        self.retry_at = None;
        let first_evaluation = !self.resumed;
        self.resumed = true;
        match view.state.phase.clone() {
            Phase::Discovering => self.discover(view, out),
            Phase::Steady => self.watch_leader(view, out),
            Phase::Stopping { from, target } => {
                // Reached after a restart (the stop may or may not have happened) or to retry a
                // failed head read ("not running" then reads the head again).
                if first_evaluation {
                    self.event(out, "resuming", Some(&from), "resuming an interrupted stop".into());
                }
                self.step_started_at = Some(view.now);
                let purpose = if target.is_some() { StopPurpose::Handover } else { StopPurpose::Failover };
                out.push(Action::Stop { node: from, purpose });
            }
            Phase::CatchingUp { from, target } => self.catch_up(view, &from, target.as_deref(), out),
            Phase::Starting { target, .. } => {
                // Only reached after a restart or a failed verification: verify before acting.
                if first_evaluation {
                    self.event(out, "resuming", Some(&target), "verifying an interrupted start".into());
                }
                out.push(Action::CheckActive { node: target });
            }
            Phase::Leaderless => self.leaderless(view, out),
        }
    }

    /// Stops every fenced node that answers again, before anything can count it healthy.
    fn fence(&mut self, view: &View<'_>, out: &mut Vec<Action>) {
        for name in &view.state.fenced {
            if view.answers(name) && self.may_stop_node(name, view.now) {
                self.event(
                    out,
                    "fence_stopping",
                    Some(name),
                    "fenced node answers again: stopping it".into(),
                );
                out.push(Action::Stop { node: name.clone(), purpose: StopPurpose::Fence });
            }
        }
    }

    /// True while a fenced node may still be sequencing where others can see it: it answers, and
    /// either its stop has not been tried (or is in flight), or the chain still advances without
    /// it. A fenced node whose stop keeps failing (its replies are garbage) while the chain stands
    /// still does not hold the chain hostage: like an unreachable leader, it is not producing
    /// anything anyone receives.
    fn fence_blocks_start(&self, view: &View<'_>) -> bool {
        view.state.fenced.iter().any(|name| {
            let stop_failed = matches!(self.node_stops.get(name), Some(Some(_)));
            view.answers(name)
                && (!stop_failed || view.chain_alive_without(name, self.settings.chain_liveness_window))
        })
    }

    /// When the current catch-up gives up, if one is running.
    pub fn catch_up_deadline(&self) -> Option<Instant> {
        self.catch_up_deadline
    }

    /// Continues a catch-up countdown a previous engine of this chain started, so replacing the
    /// engine (a replica that acts again) does not grant the candidates a fresh timeout.
    pub fn carry_over_catch_up_deadline(&mut self, deadline: Option<Instant>) {
        if deadline.is_some() {
            self.catch_up_deadline = deadline;
        }
    }

    /// Clears the call in flight if it is `expected`; false for an outcome nobody waits for (a
    /// late answer to a call the engine gave up on), which is then ignored.
    fn take_pending(&mut self, expected: &Pending) -> bool {
        if self.pending.as_ref() != Some(expected) {
            return false;
        }
        self.pending = None;
        true
    }

    fn may_stop_node(&self, name: &str, now: Instant) -> bool {
        match self.node_stops.get(name) {
            None => true,
            Some(None) => false,
            Some(Some(retry_at)) => now >= *retry_at,
        }
    }

    fn discover(&mut self, view: &View<'_>, out: &mut Vec<Action>) {
        let observed = view.health.nodes.values().all(|node| node.reason != Reason::Unknown);
        let waited = view.now.saturating_duration_since(self.started_at);
        let actives: Vec<&Member> = view
            .members
            .iter()
            .filter(|member| view.node(&member.name).and_then(|node| node.active) == Some(true))
            .collect();
        let all_inspected = view.health.nodes.values().all(|node| node.active.is_some() || !node.reachable);
        if !actives.is_empty() && (observed && all_inspected || waited >= self.settings.convergence_wait) {
            let keep = actives
                .iter()
                .max_by_key(|member| {
                    let number = view.node(&member.name).and_then(|n| n.unsafe_head).map_or(0, |h| h.number);
                    (number, member.priority, Reverse(member.name.clone()))
                })
                .map(|member| member.name.clone());
            if let Some(keep) = keep {
                let others: Vec<&str> =
                    actives.iter().map(|m| m.name.as_str()).filter(|name| *name != keep).collect();
                Self::persist(out, view, |state| {
                    state.leader = Some(keep.clone());
                    state.phase = Phase::Steady;
                });
                self.leader_since = Some(view.now);
                let detail = if others.is_empty() {
                    format!("adopted {keep}, the active sequencer found at start-up")
                } else {
                    format!(
                        "adopted {keep}, the most advanced of the active sequencers; inspection stops {others:?}"
                    )
                };
                self.event(out, "adopted", Some(&keep), detail);
            }
            return;
        }
        if waited < self.settings.convergence_wait {
            return;
        }
        self.elect_at_own_head(view, out, "no active sequencer at start-up");
    }

    /// Starts the most advanced eligible node at its own head. Used only when no stopped hash
    /// exists (nothing was stopped, so no block can be lost).
    fn elect_at_own_head(&mut self, view: &View<'_>, out: &mut Vec<Action>, why: &str) {
        let Some(best) = view.most_advanced(None) else {
            if view.state.phase != Phase::Leaderless {
                Self::persist(out, view, |state| {
                    state.leader = None;
                    state.phase = Phase::Leaderless;
                });
            }
            self.announce(
                out,
                view.now,
                "leaderless",
                None,
                format!("{why} and no eligible candidate; watching"),
            );
            return;
        };
        // A node we cannot ask (unreachable, or its activity unknown) may be an active sequencer
        // cut off from us: while heads still move, someone is sequencing, and starting another
        // would make two.
        let unseen = view.health.nodes.values().any(|node| !node.reachable || node.active.is_none());
        let moving =
            view.health.nodes.values().filter_map(|node| node.head_advanced_at).max().is_some_and(|at| {
                view.now.saturating_duration_since(at) <= self.settings.chain_liveness_window
            });
        if unseen && moving {
            self.announce(
                out,
                view.now,
                "hidden_sequencer",
                None,
                format!(
                    "{why}, but heads advanced within {} ms and not every node could be asked whether \
                     it sequences: not electing while one may be active",
                    self.settings.chain_liveness_window.as_millis()
                ),
            );
            return;
        }
        let Some(hash) = view.head_hash(&best.name) else { return };
        Self::persist(out, view, |state| {
            state.leader = None;
            state.stopped_hash = Some(hash);
            state.stopped_hash_estimated = false;
            state.phase = Phase::Starting { target: best.name.clone(), from: None };
        });
        self.failover_started_at.get_or_insert(view.now);
        self.step_started_at = Some(view.now);
        self.event(
            out,
            "electing",
            Some(&best.name),
            format!("{why}: starting the most advanced candidate at its head {hash}"),
        );
        out.push(Action::Start { node: best.name.clone(), hash });
    }

    fn watch_leader(&mut self, view: &View<'_>, out: &mut Vec<Action>) {
        let Some(leader) = view.state.leader.clone() else {
            Self::persist(out, view, |state| state.phase = Phase::Leaderless);
            return;
        };
        if self.leader_since.is_none() {
            self.leader_since = Some(view.now);
        }
        let Some(node) = view.node(&leader) else { return };
        if node.healthy {
            self.failover_started_at = None;
            return;
        }
        if node.reason == Reason::Ok {
            // Its latest probe passed: it is recovering, and the success threshold will restore
            // its verdict. Failing over now would replace a leader that is producing.
            return;
        }
        // The fail-over clock starts when the leader is first judged unhealthy, so the reported
        // duration includes the wait for the chain to be declared stopped.
        let detected_at = *self.failover_started_at.get_or_insert(view.now);
        let unstoppable =
            self.unstoppable_until.as_ref().is_some_and(|(name, until)| *name == leader && view.now < *until);
        let cut_off = !node.reachable || node.admin_disabled || unstoppable;
        if !cut_off {
            Self::persist(out, view, |state| {
                state.phase = Phase::Stopping { from: leader.clone(), target: None }
            });
            self.step_started_at = Some(view.now);
            self.event(
                out,
                "leader_unhealthy",
                Some(&leader),
                format!("leader unhealthy ({}: {}); stopping it", node.reason.code(), node.detail),
            );
            out.push(Action::Stop { node: leader, purpose: StopPurpose::Failover });
            return;
        }
        // A leader we started less than a window ago: the hand-over itself was a pause in which
        // nobody sealed, so "no follower advanced for a window" says nothing about it yet.
        if self
            .started_leader_at
            .is_some_and(|at| view.now.saturating_duration_since(at) <= self.settings.chain_liveness_window)
        {
            return;
        }
        if view.chain_alive_without(&leader, self.settings.chain_liveness_window) {
            // For a leader that went silent, say "alive" only with evidence: a follower's head
            // moved after its last answer. Until then we are simply waiting out the window.
            let moved_since = view.health.chain_advanced_at(&leader) > node.last_answer_at;
            if !node.reachable && !moved_since {
                return;
            }
            self.announce(
                out,
                view.now,
                "leader_cut_off",
                Some(&leader),
                format!(
                    "leader does not answer us ({}: {}) but the chain still advances: it is alive; not failing over",
                    node.reason.code(),
                    node.detail
                ),
            );
            return;
        }
        let Some(best) = view.most_advanced(Some(&leader)) else {
            self.announce(
                out,
                view.now,
                "no_candidate",
                Some(&leader),
                format!(
                    "leader unreachable ({}) and chain stopped, but no eligible candidate",
                    node.reason.code()
                ),
            );
            return;
        };
        let Some((holder, tip)) = view.network_tip(&leader) else { return };
        let hash = tip.hash;
        Self::persist(out, view, |state| {
            state.fenced.insert(leader.clone());
            state.leader = None;
            state.stopped_hash = Some(hash);
            state.stopped_hash_estimated = true;
            state.phase = Phase::CatchingUp { from: leader.clone(), target: None };
        });
        self.step_started_at = Some(view.now);
        self.catch_up_deadline = Some(view.now + self.settings.catch_up_timeout);
        self.timed_event(
            out,
            "leader_fenced",
            Some(&leader),
            format!(
                "leader unreachable ({}: {}) and no follower advanced for {} ms: chain stopped. Fencing it \
                 (stopped as soon as it answers) and failing over from the most advanced head {hash} \
                 ({holder} at {}; {} is the most advanced candidate)",
                node.reason.code(),
                node.detail,
                self.settings.chain_liveness_window.as_millis(),
                tip.number,
                best.name
            ),
            Some(view.now.saturating_duration_since(detected_at)),
            true,
        );
    }

    fn catch_up(&mut self, view: &View<'_>, from: &str, target: Option<&str>, out: &mut Vec<Action>) {
        let Some(hash) = view.state.stopped_hash else {
            Self::persist(out, view, |state| state.phase = Phase::Leaderless);
            return;
        };
        let deadline = *self.catch_up_deadline.get_or_insert(view.now + self.settings.catch_up_timeout);
        let candidates: Vec<&Member> = match target {
            Some(target) => view.member(target).filter(|m| view.eligible(&m.name)).into_iter().collect(),
            None => view.by_priority().into_iter().filter(|member| member.name != from).collect(),
        };
        // A fenced node that answers is stopped first (see `fence`): starting another before its
        // stop returns could make two sequencers.
        let fencing = self.fence_blocks_start(view);
        #[cfg(feature = "planted-bug-skip-catch-up")]
        if !fencing
            && let Some(chosen) = candidates.first()
            && let Some(own_head) = view.head_hash(&chosen.name)
        {
            // PLANTED BUG (test builds only): start the first candidate at whatever head it has,
            // without waiting for the stopped hash. The chaos runner must catch the re-orgs.
            Self::persist(out, view, |state| {
                state.phase = Phase::Starting { target: chosen.name.clone(), from: Some(from.to_owned()) };
            });
            out.push(Action::Start { node: chosen.name.clone(), hash: own_head });
            return;
        }
        if !fencing
            && let Some(chosen) = candidates.iter().find(|member| view.head_hash(&member.name) == Some(hash))
        {
            let waited = self.since_step(view.now);
            Self::persist(out, view, |state| {
                state.phase = Phase::Starting { target: chosen.name.clone(), from: Some(from.to_owned()) };
            });
            self.timed_event(
                out,
                "caught_up",
                Some(&chosen.name),
                format!("{} is at the stopped hash {hash}; starting it", chosen.name),
                waited,
                false,
            );
            self.step_started_at = Some(view.now);
            self.catch_up_deadline = None;
            out.push(Action::Start { node: chosen.name.clone(), hash });
            return;
        }
        // A stopped hash estimated for a fenced leader (no stop answered) came from a probe that
        // may be stale: when nobody is at it, move it to the most advanced eligible head.
        let estimate_number = view
            .health
            .nodes
            .values()
            .filter_map(|node| node.unsafe_head)
            .find(|head| head.hash == hash)
            .map_or(0, |head| head.number);
        if !fencing
            && view.state.stopped_hash_estimated
            && let Some((holder, best_head)) = view.network_tip(from)
            && best_head.hash != hash
            && best_head.number >= estimate_number
        {
            let best_hash = best_head.hash;
            Self::persist(out, view, |state| state.stopped_hash = Some(best_hash));
            let detail = format!(
                "the chain's tip moved past the estimated stopped hash {hash}: {holder} is at {best_hash} \
                 ({}); candidates must reach that",
                best_head.number
            );
            self.timed_event(out, "stopped_hash_reestimated", Some(holder), detail, None, true);
            return;
        }
        if view.now < deadline {
            return;
        }
        self.catch_up_deadline = None;
        let old_leader_ok = !fencing
            && view.node(from).is_some_and(|node| {
                node.healthy && node.reachable && node.unsafe_head.map(|h| h.hash) == Some(hash)
            })
            && !view.state.fenced.contains(from)
            && view.member(from).is_some();
        if old_leader_ok {
            Self::persist(out, view, |state| {
                state.phase = Phase::Starting { target: from.to_owned(), from: None };
            });
            self.timed_event(
                out,
                "catch_up_timeout",
                Some(from),
                format!(
                    "no candidate reached the stopped hash {hash} within {} ms; restarting the old leader there",
                    self.settings.catch_up_timeout.as_millis()
                ),
                self.since_step(view.now),
                true,
            );
            self.step_started_at = Some(view.now);
            out.push(Action::Start { node: from.to_owned(), hash });
            return;
        }
        if !fencing && self.start_at_converged_head(view, hash, Some(from), out) {
            return;
        }
        Self::persist(out, view, |state| {
            state.leader = None;
            state.phase = Phase::Leaderless;
        });
        self.timed_event(
            out,
            "leaderless",
            None,
            format!(
                "no candidate reached the stopped hash {hash} within {} ms and the old leader {from} cannot be \
                 restarted there: NO SEQUENCER IS ACTIVE. Watching; any node reaching {hash} will be started",
                self.settings.catch_up_timeout.as_millis()
            ),
            self.since_step(view.now),
            true,
        );
        self.announced.insert("leaderless", view.now);
    }

    /// When no node can reach the stopped hash any more because the whole network, every node
    /// answering, has moved to one other head (a sequencer started behind our back re-orged the
    /// stopped block away, or sealed past it), that head is where the chain is: starting the best
    /// candidate there re-orgs nothing any node holds. Returns true when it did.
    fn start_at_converged_head(
        &mut self,
        view: &View<'_>,
        hash: B256,
        from: Option<&str>,
        out: &mut Vec<Action>,
    ) -> bool {
        let Some(converged) = view.converged_head().filter(|converged| *converged != hash) else {
            return false;
        };
        let Some(chosen) =
            view.by_priority().into_iter().find(|member| view.head_hash(&member.name) == Some(converged))
        else {
            return false;
        };
        let chosen = chosen.name.clone();
        Self::persist(out, view, |state| {
            state.stopped_hash = Some(converged);
            state.stopped_hash_estimated = false;
            let from = from.filter(|from| *from != chosen).map(str::to_owned);
            state.phase = Phase::Starting { target: chosen.clone(), from };
        });
        self.timed_event(
            out,
            "stopped_hash_superseded",
            Some(&chosen),
            format!(
                "no node can reach the stopped hash {hash} any more: every node, the old leader included, is at \
                 {converged}. Starting {chosen} there (nothing any node holds is re-orged)"
            ),
            self.since_step(view.now),
            true,
        );
        self.failover_started_at.get_or_insert(view.now);
        self.step_started_at = Some(view.now);
        out.push(Action::Start { node: chosen, hash: converged });
        true
    }

    fn leaderless(&mut self, view: &View<'_>, out: &mut Vec<Action>) {
        if self.fence_blocks_start(view) {
            // Its stop is in flight or retried (see `fence`); nobody starts before it returns.
            return;
        }
        let Some(hash) = view.state.stopped_hash else {
            self.elect_at_own_head(view, out, "leaderless without a stopped hash");
            return;
        };
        let chosen = view
            .by_priority()
            .into_iter()
            .find(|member| view.head_hash(&member.name) == Some(hash))
            .map(|member| member.name.clone());
        let Some(chosen) = chosen else {
            if self.start_at_converged_head(view, hash, None, out) {
                return;
            }
            self.announce(
                out,
                view.now,
                "leaderless",
                None,
                format!("NO SEQUENCER IS ACTIVE: no eligible node is at the stopped hash {hash}; watching"),
            );
            return;
        };
        Self::persist(out, view, |state| {
            state.phase = Phase::Starting { target: chosen.clone(), from: None }
        });
        self.failover_started_at.get_or_insert(view.now);
        self.step_started_at = Some(view.now);
        self.event(
            out,
            "caught_up",
            Some(&chosen),
            format!("{chosen} reached the stopped hash {hash}; starting it"),
        );
        out.push(Action::Start { node: chosen, hash });
    }

    fn inspect(&mut self, view: &View<'_>, active: &BTreeMap<String, bool>, out: &mut Vec<Action>) {
        if view.state.paused {
            return;
        }
        let allowed: Option<&str> = match &view.state.phase {
            Phase::Steady => view.state.leader.as_deref(),
            Phase::Starting { target, .. } => Some(target),
            Phase::Stopping { from, .. } => Some(from),
            Phase::Discovering | Phase::CatchingUp { .. } | Phase::Leaderless => None,
        };
        // During discovery every active node is a possible leader: adoption decides.
        if view.state.phase == Phase::Discovering {
            return;
        }
        for (name, is_active) in active {
            if *is_active && Some(name.as_str()) != allowed && self.may_stop_node(name, view.now) {
                let pending_on_it =
                    matches!(&self.pending, Some(Pending::Stop(n) | Pending::Start(n)) if n == name);
                if pending_on_it {
                    continue;
                }
                self.timed_event(
                    out,
                    "inspection_stopping",
                    Some(name),
                    format!("{name} is active but is not the leader ({allowed:?}); stopping it"),
                    None,
                    true,
                );
                out.push(Action::Stop { node: name.clone(), purpose: StopPurpose::Inspection });
            }
        }
        // A healthy leader found inactive (stopped behind our back) is restarted at its own head,
        // but never while another node is active: that one is stopped first (above), and the
        // leader restarted by a later round, so two never sequence at once.
        let other_active = active
            .iter()
            .any(|(name, is_active)| *is_active && Some(name.as_str()) != view.state.leader.as_deref());
        if self.pending.is_none()
            && !other_active
            && view.state.phase == Phase::Steady
            && let Some(leader) = view.state.leader.as_deref()
            && active.get(leader) == Some(&false)
            && view.node(leader).is_some_and(|node| node.healthy)
            && let Some(hash) = view.head_hash(leader)
        {
            Self::persist(out, view, |state| {
                state.stopped_hash = Some(hash);
                state.phase = Phase::Starting { target: leader.to_owned(), from: None };
            });
            self.step_started_at = Some(view.now);
            self.timed_event(
                out,
                "leader_inactive",
                Some(leader),
                format!(
                    "leader {leader} is healthy but not sequencing; restarting it at its own head {hash}"
                ),
                None,
                true,
            );
            out.push(Action::Start { node: leader.to_owned(), hash });
        }
    }

    fn on_stopped(
        &mut self,
        view: &View<'_>,
        node: String,
        purpose: StopPurpose,
        result: Result<B256, CallError>,
        out: &mut Vec<Action>,
    ) {
        match purpose {
            StopPurpose::Inspection | StopPurpose::Fence => {
                let ok = match &result {
                    Ok(_) => true,
                    Err(err) => {
                        matches!(err.admin_kind(), Some(AdminError::NotRunning | AdminError::NotEnabled))
                    }
                };
                if ok {
                    self.node_stops.remove(&node);
                } else {
                    self.node_stops.insert(node.clone(), Some(view.now + PER_NODE_BACKOFF));
                }
                match (purpose, &result) {
                    (StopPurpose::Fence, _) if ok => {
                        // The deposed leader of the fail-over in progress answered its stop: where
                        // its chain ends is now known, and replaces the estimate.
                        let ends_at = match (&result, &view.state.phase) {
                            (Ok(hash), Phase::CatchingUp { from, .. })
                                if *from == node
                                    && view.state.stopped_hash_estimated
                                    && !hash.is_zero()
                                    && view.state.stopped_hash != Some(*hash) =>
                            {
                                Some(*hash)
                            }
                            _ => None,
                        };
                        Self::persist(out, view, |state| {
                            state.fenced.remove(&node);
                            if let Some(hash) = ends_at {
                                state.stopped_hash = Some(hash);
                                state.stopped_hash_estimated = false;
                            }
                        });
                        let detail = "fenced node stopped; it may follow and be elected again".to_owned();
                        self.event(out, "fence_released", Some(&node), detail);
                        if let Some(hash) = ends_at {
                            self.catch_up_deadline = Some(view.now + self.settings.catch_up_timeout);
                            let estimate =
                                view.state.stopped_hash.map_or_else(|| "none".to_owned(), |h| h.to_string());
                            self.event(
                                out,
                                "stopped_hash_from_fence",
                                Some(&node),
                                format!(
                                    "the deposed leader's stop returned {hash}: its chain ends there, not at the \
                                     estimate {estimate}; candidates must reach it"
                                ),
                            );
                        }
                    }
                    (StopPurpose::Fence, Err(err)) => {
                        self.event(
                            out,
                            "fence_stop_failed",
                            Some(&node),
                            format!("cannot stop it yet: {err}"),
                        );
                    }
                    (_, Ok(hash)) => {
                        self.event(out, "inspection_stopped", Some(&node), format!("stopped at {hash}"))
                    }
                    (_, Err(err)) if ok => {
                        self.event(
                            out,
                            "inspection_stopped",
                            Some(&node),
                            format!("already stopped ({err})"),
                        );
                    }
                    (_, Err(err)) => {
                        self.timed_event(
                            out,
                            "inspection_stop_failed",
                            Some(&node),
                            err.to_string(),
                            None,
                            true,
                        );
                    }
                }
                return;
            }
            StopPurpose::Failover | StopPurpose::Handover => {}
        }
        if !self.take_pending(&Pending::Stop(node.clone())) {
            return;
        }
        let target = match &view.state.phase {
            Phase::Stopping { target, .. } => target.clone(),
            _ => None,
        };
        match result {
            Ok(hash) if hash != B256::ZERO => self.stopped_at(view, &node, target, hash, out),
            Ok(_) => {
                self.event(
                    out,
                    "zero_stopped_hash",
                    Some(&node),
                    "stop returned the zero hash; reading optimism_syncStatus".into(),
                );
                out.push(Action::ReadHead { node });
            }
            Err(err) => match err.admin_kind() {
                Some(AdminError::NotRunning) => {
                    self.event(
                        out,
                        "already_stopped",
                        Some(&node),
                        "sequencer not running; its current head is the stopped hash".into(),
                    );
                    out.push(Action::ReadHead { node });
                }
                Some(AdminError::NotEnabled) => {
                    out.push(Action::MarkNotSequencer { node: node.clone() });
                    out.push(Action::ReadHead { node });
                }
                _ => {
                    self.unstoppable_until = Some((node.clone(), view.now + UNSTOPPABLE_FOR));
                    let back_to =
                        if target.is_some() { "hand-over aborted" } else { "treating the leader as cut off" };
                    Self::persist(out, view, |state| state.phase = Phase::Steady);
                    self.timed_event(
                        out,
                        if target.is_some() { "handover_failed" } else { "stop_failed" },
                        Some(&node),
                        format!("admin_stopSequencer failed: {err}; {back_to}"),
                        self.since_step(view.now),
                        true,
                    );
                }
            },
        }
    }

    fn stopped_at(
        &mut self,
        view: &View<'_>,
        node: &str,
        target: Option<String>,
        hash: B256,
        out: &mut Vec<Action>,
    ) {
        self.attempts = 0;
        Self::persist(out, view, |state| {
            state.stopped_hash = Some(hash);
            state.stopped_hash_estimated = false;
            state.leader = None;
            state.phase = Phase::CatchingUp { from: node.to_owned(), target: target.clone() };
        });
        self.timed_event(
            out,
            "stopped",
            Some(node),
            format!("stopped at {hash}"),
            self.since_step(view.now),
            false,
        );
        self.step_started_at = Some(view.now);
        self.catch_up_deadline = Some(view.now + self.settings.catch_up_timeout);
    }

    fn on_head_read(
        &mut self,
        view: &View<'_>,
        node: String,
        result: Result<B256, CallError>,
        out: &mut Vec<Action>,
    ) {
        if !self.take_pending(&Pending::ReadHead(node.clone())) {
            return;
        }
        let target = match &view.state.phase {
            Phase::Stopping { target, .. } => target.clone(),
            _ => None,
        };
        match result {
            Ok(hash) if hash != B256::ZERO => self.stopped_at(view, &node, target, hash, out),
            other => {
                self.attempts += 1;
                if self.attempts < MAX_VERIFY_ATTEMPTS {
                    // evaluate() stops it again after the back-off: "not running" reads the head.
                    self.retry_at = Some(view.now + RETRY_BACKOFF);
                    let detail = format!("reading the stopped head failed ({other:?}); retrying");
                    self.timed_event(out, "read_head_failed", Some(&node), detail, None, true);
                    return;
                }
                self.attempts = 0;
                match view.head_hash(&node).filter(|hash| *hash != B256::ZERO) {
                    Some(hash) => {
                        self.timed_event(
                            out,
                            "stopped_hash_from_probe",
                            Some(&node),
                            format!("using the last head seen in probes, {hash}, as the stopped hash"),
                            None,
                            true,
                        );
                        self.stopped_at(view, &node, target, hash, out);
                    }
                    None => {
                        Self::persist(out, view, |state| {
                            state.leader = None;
                            state.phase = Phase::Leaderless;
                        });
                        self.announce(
                            out,
                            view.now,
                            "leaderless",
                            Some(&node),
                            "stopped hash unknown: leaderless".into(),
                        );
                    }
                }
            }
        }
    }

    fn starting_of(view: &View<'_>) -> Option<(String, Option<String>)> {
        match &view.state.phase {
            Phase::Starting { target, from } => Some((target.clone(), from.clone())),
            _ => None,
        }
    }

    fn on_started(
        &mut self,
        view: &View<'_>,
        node: String,
        result: Result<(), CallError>,
        out: &mut Vec<Action>,
    ) {
        if !self.take_pending(&Pending::Start(node.clone())) {
            return;
        }
        let Some((_, from)) = Self::starting_of(view) else { return };
        match result {
            Ok(()) => self.became_leader(view, &node, out),
            Err(err) => match err.admin_kind() {
                Some(AdminError::AlreadyRunning) => out.push(Action::CheckActive { node }),
                Some(AdminError::HashMismatch) => {
                    Self::persist(out, view, |state| {
                        state.phase = Phase::CatchingUp {
                            from: from.clone().unwrap_or_else(|| node.clone()),
                            target: None,
                        };
                    });
                    self.event(
                        out,
                        "start_hash_mismatch",
                        Some(&node),
                        format!("{err}; back to catching up"),
                    );
                }
                Some(AdminError::NoPrestate) => {
                    self.retry_at = Some(view.now + self.settings.start_retry_interval);
                    self.event(out, "start_retry", Some(&node), format!("{err}; retrying"));
                    // Re-sent by evaluate via the Starting branch: verify first, then start.
                }
                Some(AdminError::NotEnabled | AdminError::AdminDisabled | AdminError::NotLeader) => {
                    out.push(Action::MarkNotSequencer { node: node.clone() });
                    Self::persist(out, view, |state| {
                        state.phase = Phase::CatchingUp {
                            from: from.clone().unwrap_or_else(|| node.clone()),
                            target: None,
                        };
                    });
                    self.timed_event(
                        out,
                        "start_refused",
                        Some(&node),
                        format!("{err}; it is not a candidate"),
                        None,
                        true,
                    );
                }
                _ => {
                    self.event(
                        out,
                        "start_unknown",
                        Some(&node),
                        format!("{err}; verifying with admin_sequencerActive"),
                    );
                    out.push(Action::CheckActive { node });
                }
            },
        }
    }

    fn on_active_checked(
        &mut self,
        view: &View<'_>,
        node: String,
        result: Result<bool, CallError>,
        out: &mut Vec<Action>,
    ) {
        if !self.take_pending(&Pending::CheckActive(node.clone())) {
            return;
        }
        let Some((target, from)) = Self::starting_of(view) else { return };
        if target != node {
            return;
        }
        match result {
            Ok(true) => self.became_leader(view, &node, out),
            Ok(false) => {
                // Not started: start it (again) if it is still at the stopped hash, else catch up.
                // A fenced node that answers is stopped first, as in a catch-up: this start may be
                // a previous engine's decision (another replica's, taken while it could see none
                // of the nodes), and the fenced node's stop answer may move the stopped hash.
                match view.state.stopped_hash {
                    Some(hash)
                        if view.head_hash(&node) == Some(hash)
                            && self.retry_at.is_none()
                            && !self.fence_blocks_start(view) =>
                    {
                        out.push(Action::Start { node, hash });
                    }
                    _ => {
                        Self::persist(out, view, |state| {
                            state.phase = Phase::CatchingUp {
                                from: from.clone().unwrap_or_else(|| node.clone()),
                                target: None,
                            };
                        });
                    }
                }
            }
            Err(err) => {
                self.attempts += 1;
                if self.attempts < MAX_VERIFY_ATTEMPTS {
                    self.retry_at = Some(view.now + RETRY_BACKOFF);
                    return;
                }
                self.attempts = 0;
                Self::persist(out, view, |state| {
                    state.fenced.insert(node.clone());
                    state.phase = Phase::CatchingUp {
                        from: from.clone().unwrap_or_else(|| node.clone()),
                        target: None,
                    };
                });
                self.timed_event(
                    out,
                    "start_unverifiable",
                    Some(&node),
                    format!(
                        "cannot tell whether {node} started ({err}); fencing it and catching up with another"
                    ),
                    None,
                    true,
                );
            }
        }
    }

    fn became_leader(&mut self, view: &View<'_>, node: &str, out: &mut Vec<Action>) {
        Self::persist(out, view, |state| {
            state.leader = Some(node.to_owned());
            state.epoch += 1;
            state.phase = Phase::Steady;
        });
        self.leader_since = Some(view.now);
        self.started_leader_at = Some(view.now);
        self.unstoppable_until = None;
        self.attempts = 0;
        let step = self.since_step(view.now);
        self.timed_event(out, "started", Some(node), format!("{node} is sequencing"), step, false);
        let total = self.failover_started_at.take().map(|at| view.now.saturating_duration_since(at));
        self.timed_event(
            out,
            "failover_complete",
            Some(node),
            format!("{node} is the leader (epoch {})", view.state.epoch + 1),
            total,
            false,
        );
        self.step_started_at = None;
    }

    /// `coordinator_setActiveSequencer`: validates and begins a graceful hand-over.
    pub fn transfer(&mut self, view: &View<'_>, to: &str) -> Result<Vec<Action>, CommandError> {
        if view.member(to).is_none() {
            return Err(CommandError::UnknownNode(to.to_owned()));
        }
        if self.pending.is_some() {
            return Err(CommandError::Busy(format!("a {} call is in flight", view.state.phase.name())));
        }
        if view.state.paused {
            // The hand-over would stop the leader, and nothing would start the target until resumed.
            return Err(CommandError::Busy(
                "automation is paused (coordinator_startElection resumes it)".into(),
            ));
        }
        if let Some(why) = view.ineligibility(to) {
            return Err(CommandError::Ineligible { node: to.to_owned(), why });
        }
        let mut out = Vec::new();
        match view.state.phase.clone() {
            Phase::Steady => {
                let Some(leader) = view.state.leader.clone() else {
                    return Err(CommandError::Busy("no leader".into()));
                };
                if leader == to {
                    return Err(CommandError::AlreadyLeader(leader));
                }
                Self::persist(&mut out, view, |state| {
                    state.phase = Phase::Stopping { from: leader.clone(), target: Some(to.to_owned()) };
                });
                self.failover_started_at = Some(view.now);
                self.step_started_at = Some(view.now);
                self.event(
                    &mut out,
                    "handover_requested",
                    Some(to),
                    format!("operator hand-over from {leader} to {to}"),
                );
                out.push(Action::Stop { node: leader, purpose: StopPurpose::Handover });
            }
            Phase::Leaderless => {
                let hash = match view.state.stopped_hash {
                    Some(hash) if view.head_hash(to) == Some(hash) => hash,
                    Some(hash) => {
                        return Err(CommandError::Ineligible {
                            node: to.to_owned(),
                            why: format!("it is not at the stopped hash {hash}"),
                        });
                    }
                    None => {
                        let best = view.most_advanced(None).map(|member| member.name.clone());
                        if best.as_deref() != Some(to) {
                            return Err(CommandError::Ineligible {
                                node: to.to_owned(),
                                why: format!("{best:?} is more advanced"),
                            });
                        }
                        view.head_hash(to).unwrap_or_default()
                    }
                };
                Self::persist(&mut out, view, |state| {
                    state.stopped_hash = Some(hash);
                    state.phase = Phase::Starting { target: to.to_owned(), from: None };
                });
                self.failover_started_at = Some(view.now);
                self.step_started_at = Some(view.now);
                self.event(
                    &mut out,
                    "handover_requested",
                    Some(to),
                    format!("operator start of {to} at {hash}"),
                );
                out.push(Action::Start { node: to.to_owned(), hash });
            }
            other => return Err(CommandError::Busy(format!("the chain is {}", other.name()))),
        }
        self.note_calls(&out);
        Ok(out)
    }

    /// `coordinator_stopElection` / `coordinator_startElection`.
    pub fn set_paused(&mut self, view: &View<'_>, paused: bool) -> Vec<Action> {
        let mut out = Vec::new();
        if view.state.paused == paused {
            return out;
        }
        Self::persist(&mut out, view, |state| state.paused = paused);
        let (kind, detail) = if paused {
            ("paused", "automation paused by operator: no fail-over, election or inspection until resumed")
        } else {
            ("resumed", "automation resumed by operator")
        };
        self.timed_event(&mut out, kind, None, detail.into(), None, paused);
        out
    }
}
