//! Fixtures of the engine's table tests, which sit beside each phase's code.
//!
//! Observations are built the way the chain actor builds them, through
//! [`ChainHealth::observe_probe`] and [`ChainHealth::observe_active`]; a [`Chain`] plays the
//! actor: it applies every `Persist` to its state (and `MarkNotSequencer` to its health) so the
//! next input sees what the actor would. Events are compared by kind and node only: their detail
//! text is for humans.
//!
//! Heads are named by their number: `head(node, 20)` puts the node at block 20 whose hash is
//! [`hash`]`(20)`, so "at the stopped hash 20" reads as it is written.

pub(crate) use super::{
    Action, CommandError, ConductorTiming, EventKind, FailoverEngine, FailoverOutcome, FailoverSettings,
    HandoverTarget, Input, Member, Outcome, StopPurpose,
    StopPurpose::{Failover, Fence, Handover, Inspection},
    View,
};
pub(crate) use crate::{
    client::{CallError, Timed},
    conductor::FenceView,
    health::{ChainHealth, HealthSettings, Probe},
    self_lag::SelfLag,
    state::{ChainState, Phase},
    testing::{self, failed_probe},
};
pub(crate) use alloy_primitives::B256;
pub(crate) use opc_wire::op_node_errors::{
    APPLICATION_ERROR_CODE, AdminError, METHOD_NOT_FOUND_CODE, SEQUENCER_ALREADY_RUNNING,
    SEQUENCER_NOT_ENABLED, SEQUENCER_NOT_LEADER, SEQUENCER_NOT_RUNNING, hash_mismatch, method_not_available,
    no_prestate,
};
pub(crate) use std::{collections::BTreeSet, time::Duration};
pub(crate) use tokio::time::Instant;

/// The Unix time of a test's start, in ms (any value: the engine only adds and subtracts).
pub(crate) const UNIX_T0_MS: u64 = 1_795_000_000_000;

/// Timings as configured by default: catch-up 3 s, liveness window 1.5 s, convergence 2 s.
pub(crate) fn failover_settings() -> FailoverSettings {
    FailoverSettings {
        catch_up_timeout: Duration::from_millis(3000),
        chain_liveness_window: Duration::from_millis(1500),
        convergence_wait: Duration::from_millis(2000),
        start_retry_interval: Duration::from_millis(100),
        max_self_lag: Duration::from_millis(125),
        self_lag_span: Duration::from_millis(2750),
        conductor: None,
    }
}

/// Thresholds of one probe: every probe sets the verdict, so each test states a node's health
/// with one observation (the thresholds themselves are tested in `health.rs`).
pub(crate) fn health_settings() -> HealthSettings {
    HealthSettings {
        failure_threshold: 1,
        success_threshold: 1,
        unsafe_stall: Duration::from_millis(2500),
        max_execution_lag_blocks: 4,
        max_candidate_lag_blocks: 8,
    }
}

/// The hash of block `number` in these tests.
pub(crate) fn hash(number: u64) -> B256 {
    B256::repeat_byte(u8::try_from(number).expect("test heads are below 256"))
}

/// One probe: op-node's unsafe head `head_number` with hash byte `head_hash_byte`, op-geth at
/// `geth_number`.
pub(crate) fn probe(at: Instant, head_number: u64, head_hash_byte: u8, geth_number: u64) -> Probe {
    testing::probe(at, head_number, B256::repeat_byte(head_hash_byte), geth_number)
}

pub(crate) fn unreachable() -> CallError {
    CallError::Unreachable("connection refused".into())
}

pub(crate) fn timeout() -> CallError {
    CallError::Timeout(250)
}

pub(crate) fn malformed() -> CallError {
    CallError::Malformed("expected an object".into())
}

/// An `admin_*` error exactly as op-node words it.
pub(crate) fn rpc(kind: AdminError) -> CallError {
    let (code, message) = match kind {
        AdminError::AdminDisabled => (METHOD_NOT_FOUND_CODE, method_not_available("admin_startSequencer")),
        AdminError::NotRunning => (APPLICATION_ERROR_CODE, SEQUENCER_NOT_RUNNING.to_owned()),
        AdminError::NotEnabled => (APPLICATION_ERROR_CODE, SEQUENCER_NOT_ENABLED.to_owned()),
        AdminError::AlreadyRunning => (APPLICATION_ERROR_CODE, SEQUENCER_ALREADY_RUNNING.to_owned()),
        AdminError::NotLeader => (APPLICATION_ERROR_CODE, SEQUENCER_NOT_LEADER.to_owned()),
        AdminError::NoPrestate => (APPLICATION_ERROR_CODE, no_prestate(hash(20), 20)),
        AdminError::HashMismatch => (APPLICATION_ERROR_CODE, hash_mismatch(hash(21), 21, hash(20))),
        AdminError::Other => (APPLICATION_ERROR_CODE, "engine busy".to_owned()),
    };
    assert_eq!(AdminError::classify(code, &message), kind, "{message}");
    CallError::Rpc { kind, code, message }
}

/// An action with the event's text left out, so lists compare exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    Persist(ChainState),
    Stop(String, StopPurpose),
    ReadHead(String),
    Start(String, B256),
    CheckActive(String),
    MarkNotSequencer(String),
    Replay(String, B256),
    Event(EventKind, Option<String>),
}

pub(crate) fn persist(state: ChainState) -> Step {
    Step::Persist(state)
}

pub(crate) fn stop(node: &str, purpose: StopPurpose) -> Step {
    Step::Stop(node.into(), purpose)
}

pub(crate) fn read_head(node: &str) -> Step {
    Step::ReadHead(node.into())
}

pub(crate) fn start(node: &str, head: u64) -> Step {
    Step::Start(node.into(), hash(head))
}

pub(crate) fn check_active(node: &str) -> Step {
    Step::CheckActive(node.into())
}

/// A replay to `node` of the committed payloads after its head `head`.
pub(crate) fn replay(node: &str, head: u64) -> Step {
    Step::Replay(node.into(), hash(head))
}

pub(crate) fn mark_not_sequencer(node: &str) -> Step {
    Step::MarkNotSequencer(node.into())
}

/// An event about `node`.
pub(crate) fn event(kind: EventKind, node: &str) -> Step {
    Step::Event(kind, Some(node.into()))
}

/// An event about the chain as a whole.
pub(crate) fn chain_event(kind: EventKind) -> Step {
    Step::Event(kind, None)
}

/// The actions as steps: events by kind and node, outcomes left out (tests that check them read
/// [`Chain::outcomes`]), and the persisted catch-up deadline left out (its own tests in `record`
/// check it), so the tables compare what they are about.
pub(crate) fn summarize(actions: Vec<Action>) -> Vec<Step> {
    actions
        .into_iter()
        .filter_map(|action| {
            Some(match action {
                Action::Persist(state) => Step::Persist(without_deadline(state)),
                Action::Stop { node, purpose } => Step::Stop(node, purpose),
                Action::ReadHead { node } => Step::ReadHead(node),
                Action::Start { node, hash } => Step::Start(node, hash),
                Action::CheckActive { node } => Step::CheckActive(node),
                Action::MarkNotSequencer { node } => Step::MarkNotSequencer(node),
                Action::Replay { node, from } => Step::Replay(node, from),
                Action::Event(event) => Step::Event(event.kind, event.node),
                Action::Outcome(_) => return None,
            })
        })
        .collect()
}

/// `state` without the catch-up deadline the engine stamps on it.
pub(crate) fn without_deadline(state: ChainState) -> ChainState {
    ChainState { catch_up_deadline_unix_ms: None, ..state }
}

pub(crate) fn fenced(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

/// `leader` sequences, epoch 1.
pub(crate) fn steady(leader: &str) -> ChainState {
    ChainState { leader: Some(leader.into()), epoch: 1, phase: Phase::Steady, ..Default::default() }
}

/// `from` was stopped at block `head`; epoch 1.
pub(crate) fn catching_up(from: &str, head: u64) -> ChainState {
    ChainState {
        leader: None,
        epoch: 1,
        phase: Phase::CatchingUp { from: from.into(), target: None },
        stopped_hash: Some(hash(head)),
        ..Default::default()
    }
}

/// `state` with another phase.
pub(crate) fn with_phase(state: &ChainState, phase: Phase) -> ChainState {
    ChainState { phase, ..state.clone() }
}

pub(crate) fn starting(target: &str, from: Option<&str>) -> Phase {
    Phase::Starting { target: target.into(), from: from.map(str::to_owned) }
}

/// Three equal candidates.
pub(crate) const ABC: &[(&str, i64, bool)] = &[("a", 1, true), ("b", 1, true), ("c", 1, true)];

/// The view of a [`Chain`], borrowing only the fields the engine reads (so the engine itself can
/// be borrowed mutably beside it), as `view_of!` does for the actor.
macro_rules! chain_view {
    ($chain:expr) => {
        View {
            state: &$chain.state,
            members: &$chain.members,
            health: &$chain.health,
            now: $chain.now,
            unix_ms: $chain.unix_ms(),
            self_lag: $chain.self_lag(),
            conductor: $chain.fence.as_ref(),
        }
    };
}

/// One chain as its actor sees it: durable state, members, observations, the engine and a clock
/// that moves only when a test says so.
pub(crate) struct Chain {
    pub(crate) engine: FailoverEngine,
    pub(crate) state: ChainState,
    pub(crate) members: Vec<Member>,
    pub(crate) health: ChainHealth,
    pub(crate) t0: Instant,
    pub(crate) now: Instant,
    /// Every outcome the engine returned, in order.
    pub(crate) outcomes: Vec<Outcome>,
    /// Every state persisted, as the engine stamped it (with its catch-up deadline).
    pub(crate) persisted: Vec<ChainState>,
    /// The coordinator's own lateness the view reports (none unless a test says).
    pub(crate) late: Duration,
    /// When the lateness monitor last measured; `None`: now.
    pub(crate) measured_at: Option<Instant>,
    /// Conductor mode: what the fence says (see [`Chain::conducted`]); None without a conductor.
    pub(crate) fence: Option<FenceView>,
}

impl Chain {
    /// A coordinator (re)started at `t0` over the persisted `state`.
    pub(crate) fn new(members: &[(&str, i64, bool)], state: ChainState) -> Self {
        let t0 = Instant::now();
        let members: Vec<Member> = members
            .iter()
            .map(|(name, priority, candidate)| Member {
                name: (*name).to_owned(),
                priority: *priority,
                candidate: *candidate,
            })
            .collect();
        let mut health =
            ChainHealth::new(members.iter().map(|member| member.name.clone()), health_settings());
        health.set_leader(state.leader.as_deref(), t0);
        let engine = FailoverEngine::new(failover_settings(), t0);
        Self {
            engine,
            state,
            members,
            health,
            t0,
            now: t0,
            outcomes: Vec::new(),
            persisted: Vec::new(),
            late: Duration::ZERO,
            measured_at: None,
            fence: None,
        }
    }

    /// The chain in conductor mode (1 s blocks, the default probes: alive window 1.25 s, commit
    /// stall 2 s), its fence held by the state's leader, based at block `base` with blocks
    /// `kept` kept for replay.
    pub(crate) fn conducted(mut self, base: u64, kept: &[u64]) -> Self {
        let timing = ConductorTiming {
            alive_window: Duration::from_millis(1250),
            commit_stall: Duration::from_millis(2000),
            silence: Duration::from_millis(250),
            commit_due: Duration::from_millis(800),
        };
        self.engine =
            FailoverEngine::new(FailoverSettings { conductor: Some(timing), ..failover_settings() }, self.t0);
        self.fence = Some(FenceView {
            holder: self.state.leader.clone(),
            base: Some(hash(base)),
            replayable: kept.iter().map(|number| hash(*number)).collect(),
            ..FenceView::default()
        });
        self
    }

    /// The fence took a commit now (its last commit time); `base` is the committed block.
    pub(crate) fn committed(&mut self, base: u64) -> &mut Self {
        let now = self.now;
        let fence = self.fence.as_mut().expect("a conducted chain");
        fence.base = Some(hash(base));
        fence.last_commit_at = Some(now);
        fence.replayable.push(hash(base));
        self
    }

    /// The fence follows the persisted state's holder, as the actor's persist makes it.
    fn follow_fence(&mut self) {
        let holder = crate::conductor::holding_of(&self.state).holder;
        if let Some(fence) = self.fence.as_mut() {
            fence.holder = holder;
        }
    }

    /// Moves the clock to `ms` after the start.
    pub(crate) fn at(&mut self, ms: u64) -> &mut Self {
        self.now = self.t0 + Duration::from_millis(ms);
        self
    }

    /// From now on the view says the coordinator's timers ran up to `late` late.
    pub(crate) fn late(&mut self, late: Duration) -> &mut Self {
        self.late = late;
        self
    }

    /// From now on the view says the lateness monitor last measured at `ms` after the start.
    pub(crate) fn measured_at(&mut self, ms: u64) -> &mut Self {
        self.measured_at = Some(self.t0 + Duration::from_millis(ms));
        self
    }

    /// The lateness the view reports.
    fn self_lag(&self) -> SelfLag {
        SelfLag { worst: self.late, measured_at: self.measured_at.unwrap_or(self.now) }
    }

    /// A healthy probe now: head `number` (hash [`hash`]`(number)`), op-geth level with it.
    pub(crate) fn head(&mut self, node: &str, number: u64) -> &mut Self {
        let byte = u8::try_from(number).expect("test heads are below 256");
        self.probe(node, probe(self.now, number, byte, number))
    }

    pub(crate) fn probe(&mut self, node: &str, probe: Probe) -> &mut Self {
        self.health.observe_probe(node, &probe);
        self
    }

    /// A probe now whose op-node call failed.
    pub(crate) fn fail(&mut self, node: &str, err: CallError) -> &mut Self {
        let probe = failed_probe(self.now, err);
        self.probe(node, probe)
    }

    /// An `admin_sequencerActive` answer now.
    pub(crate) fn active(&mut self, node: &str, result: Result<bool, CallError>) -> &mut Self {
        let outcome = Timed { result, latency: Duration::from_millis(1) };
        self.health.observe_active(node, &outcome, self.now);
        self
    }

    pub(crate) fn handle(&mut self, input: Input) -> Vec<Step> {
        self.health.set_leader(self.state.leader.as_deref(), self.now);
        let view = chain_view!(self);
        let actions = self.engine.handle(input, &view);
        self.apply(actions)
    }

    /// The Unix clock, which runs with the test's clock from [`UNIX_T0_MS`].
    pub(crate) fn unix_ms(&self) -> u64 {
        UNIX_T0_MS + u64::try_from(self.now.saturating_duration_since(self.t0).as_millis()).unwrap_or(0)
    }

    /// Applies the actions as the actor would (persisted states without the stamped deadline,
    /// which `record`'s tests check) and returns them as steps.
    pub(crate) fn apply(&mut self, actions: Vec<Action>) -> Vec<Step> {
        for action in &actions {
            match action {
                Action::Persist(next) => {
                    self.persisted.push(next.clone());
                    self.state = without_deadline(next.clone());
                    self.follow_fence();
                }
                Action::Outcome(outcome) => self.outcomes.push(outcome.clone()),
                Action::MarkNotSequencer { node } => self.health.mark_not_sequencer(node),
                _ => {}
            }
        }
        summarize(actions)
    }

    pub(crate) fn tick(&mut self) -> Vec<Step> {
        self.handle(Input::Tick)
    }

    /// An inspection round: the answers are recorded, then handed to the engine.
    pub(crate) fn inspected(&mut self, answers: &[(&str, bool)]) -> Vec<Step> {
        for (node, is_active) in answers {
            self.active(node, Ok(*is_active));
        }
        let round = answers.iter().map(|(node, is_active)| ((*node).to_owned(), *is_active)).collect();
        self.handle(Input::Inspected(round))
    }

    pub(crate) fn stopped(
        &mut self,
        node: &str,
        purpose: StopPurpose,
        result: Result<B256, CallError>,
    ) -> Vec<Step> {
        self.handle(Input::Stopped { node: node.into(), purpose, result })
    }

    pub(crate) fn head_read(&mut self, node: &str, result: Result<B256, CallError>) -> Vec<Step> {
        self.handle(Input::HeadRead { node: node.into(), result })
    }

    pub(crate) fn started(&mut self, node: &str, result: Result<(), CallError>) -> Vec<Step> {
        self.handle(Input::Started { node: node.into(), result })
    }

    pub(crate) fn active_checked(&mut self, node: &str, result: Result<bool, CallError>) -> Vec<Step> {
        self.handle(Input::ActiveChecked { node: node.into(), result })
    }

    pub(crate) fn transfer(&mut self, to: &str) -> Result<Vec<Step>, CommandError> {
        self.health.set_leader(self.state.leader.as_deref(), self.now);
        let view = chain_view!(self);
        let actions = self.engine.transfer(&view, to)?;
        Ok(self.apply(actions))
    }

    pub(crate) fn transfer_to(
        &mut self,
        target: &HandoverTarget,
    ) -> Result<(String, Vec<Step>), CommandError> {
        self.health.set_leader(self.state.leader.as_deref(), self.now);
        let view = chain_view!(self);
        let (to, actions) = self.engine.transfer_to(&view, target)?;
        Ok((to, self.apply(actions)))
    }

    pub(crate) fn set_paused(&mut self, paused: bool) -> Result<Vec<Step>, CommandError> {
        let view = chain_view!(self);
        let actions = self.engine.set_paused(&view, paused)?;
        Ok(self.apply(actions))
    }
}

/// What leader `a` of `steady("a")`, found unhealthy, leads to: stopping persisted, then
/// `Stop(a)` for a fail-over.
pub(crate) fn a_stopped_as_unhealthy() -> Vec<Step> {
    vec![
        persist(with_phase(&steady("a"), Phase::Stopping { from: "a".into(), target: None })),
        event(EventKind::LeaderUnhealthy, "a"),
        stop("a", Failover),
    ]
}

/// What a candidate `node` reaching the stopped hash (block `head`) of `state` leads to: its
/// start persisted (from the old leader `from`), then `Start(node, head)`.
pub(crate) fn caught_up(state: &ChainState, node: &str, from: Option<&str>, head: u64) -> Vec<Step> {
    vec![
        persist(with_phase(state, starting(node, from))),
        event(EventKind::CaughtUp, node),
        start(node, head),
    ]
}

/// What the catch-up timeout of `state` leads to: the old leader `node` restarted at block `head`.
pub(crate) fn catch_up_timed_out(state: &ChainState, node: &str, head: u64) -> Vec<Step> {
    vec![
        persist(with_phase(state, starting(node, None))),
        event(EventKind::CatchUpTimeout, node),
        start(node, head),
    ]
}

/// Inspection stopping each of `nodes`, in order.
pub(crate) fn inspection_stops(nodes: &[&str]) -> Vec<Step> {
    nodes
        .iter()
        .flat_map(|node| [event(EventKind::InspectionStopping, node), stop(node, Inspection)])
        .collect()
}

/// Leader `a` silent through the liveness window, fenced, with the stopped hash estimated at its
/// last probed head `head`.
pub(crate) fn a_fenced_at(head: u64) -> ChainState {
    ChainState {
        fenced: fenced(&["a"]),
        leader: None,
        stopped_hash: Some(hash(head)),
        stopped_hash_estimated: true,
        phase: Phase::CatchingUp { from: "a".into(), target: None },
        ..steady("a")
    }
}

/// Leader `a`, `b` and `c` all healthy at block 10.
pub(crate) fn a_leading_at_10() -> Chain {
    let mut chain = Chain::new(ABC, steady("a"));
    chain.head("a", 10).head("b", 10).head("c", 10);
    chain
}

/// Leader `a` of [`a_leading_at_10`] found inactive by inspection (nobody else active) and being
/// restarted at its own head 10: the chain and the state that persisted.
pub(crate) fn a_restarted_at_10_after_inspection_found_it_inactive() -> (Chain, ChainState) {
    let mut chain = a_leading_at_10();
    let restarting = ChainState { stopped_hash: Some(hash(10)), phase: starting("a", None), ..steady("a") };
    assert_eq!(
        chain.inspected(&[("a", false), ("b", false), ("c", false)]),
        [persist(restarting.clone()), event(EventKind::LeaderInactive, "a"), start("a", 10)]
    );
    (chain, restarting)
}

/// Leader `a` and `b` at 12, `c` (priority 2) at 11; at 1500 ms `a` stops answering, a whole
/// liveness window after anyone last moved. Nothing is ticked yet.
pub(crate) fn a_silent_at_1500_with_the_chain_stopped_at_12() -> Chain {
    let mut chain = Chain::new(&[("a", 1, true), ("b", 1, true), ("c", 2, true)], steady("a"));
    chain.head("a", 12).head("b", 12).head("c", 11);
    chain.at(1500).fail("a", unreachable());
    chain
}

/// A discovery in which nobody may lead: `a`'s op-geth lags, `b` is no candidate, `c` does not
/// answer; `a` and `b` were inspected inactive. Nothing is ticked yet.
pub(crate) fn discovery_with_nobody_eligible() -> Chain {
    let mut chain = Chain::new(&[("a", 1, true), ("b", 1, false), ("c", 1, true)], ChainState::default());
    let lagging_geth = probe(chain.now, 20, 20, 4);
    chain.probe("a", lagging_geth).head("b", 20).fail("c", unreachable());
    chain.active("a", Ok(false)).active("b", Ok(false));
    chain
}

/// Leader `a` at block 20 with op-geth 16 blocks behind (unhealthy, but it answers); `b` at 20,
/// `c` at 19; the engine has persisted stopping and sent `Stop(a)`.
pub(crate) fn stopping_a() -> Chain {
    let mut chain = Chain::new(ABC, steady("a"));
    let lagging_geth = probe(chain.now, 20, 20, 4);
    chain.probe("a", lagging_geth).head("b", 20).head("c", 19);
    assert_eq!(chain.tick(), a_stopped_as_unhealthy());
    chain
}

/// `a`, being stopped for a fail-over, answers that its sequencer is not running: its current
/// head is read, and the 20 read is persisted as the stopped hash.
pub(crate) fn a_already_stopped_is_stopped_at_its_head_20(chain: &mut Chain) {
    assert_eq!(
        chain.stopped("a", Failover, Err(rpc(AdminError::NotRunning))),
        [event(EventKind::AlreadyStopped, "a"), read_head("a")]
    );
    assert_eq!(
        chain.head_read("a", Ok(hash(20))),
        [persist(a_stopped_at(20)), event(EventKind::Stopped, "a")]
    );
}

/// `node`, fenced in `state` and answering, is fence-stopped before anyone starts; nothing happens
/// while that stop is in flight (a tick at `in_flight_at_ms`); its answer 20 releases the fence,
/// and `b`, at the stopped hash 20, is started.
pub(crate) fn fenced_node_stopped_first_then_b_started_at_20(
    chain: &mut Chain,
    node: &str,
    state: ChainState,
    in_flight_at_ms: u64,
) {
    assert_eq!(chain.tick(), [event(EventKind::FenceStopping, node), stop(node, Fence)]);
    assert_eq!(chain.at(in_flight_at_ms).tick(), []);
    let released = ChainState { fenced: fenced(&[]), ..state };
    assert_eq!(
        chain.stopped(node, Fence, Ok(hash(20))),
        [persist(released.clone()), event(EventKind::FenceReleased, node)]
    );
    assert_eq!(chain.tick(), caught_up(&released, "b", Some("a"), 20));
}

/// Old leader `a` stopped at 20; `b` (priority 2) and `c` at 20: the engine has persisted
/// starting `b` and sent `Start(b, 20)`.
pub(crate) fn starting_b() -> Chain {
    let mut chain = Chain::new(&[("a", 1, true), ("b", 2, true), ("c", 1, true)], catching_up("a", 20));
    chain.head("a", 20).head("b", 20).head("c", 20);
    assert_eq!(chain.tick(), caught_up(&catching_up("a", 20), "b", Some("a"), 20));
    chain
}

/// What a successful start of `node` from `state` persists and reports.
pub(crate) fn became_leader(state: &ChainState, node: &str) -> Vec<Step> {
    let next = ChainState {
        leader: Some(node.into()),
        epoch: state.epoch + 1,
        phase: Phase::Steady,
        ..state.clone()
    };
    vec![persist(next), event(EventKind::Started, node), event(EventKind::FailoverComplete, node)]
}

/// `a` stopped at block `head`: the state `stopping_a` leads to.
pub(crate) fn a_stopped_at(head: u64) -> ChainState {
    ChainState { leader: None, ..catching_up("a", head) }
}

/// The state `starting_b` leads to.
pub(crate) fn b_starting() -> ChainState {
    with_phase(&catching_up("a", 20), starting("b", Some("a")))
}

/// Leader `a`; `b`, `c` and `e` at 20 (`e` fenced but silent); `d` not a candidate; `f` with a
/// lagging op-geth; `g` nine blocks behind.
pub(crate) fn handover_chain() -> Chain {
    let members = [
        ("a", 1, true),
        ("b", 9, true),
        ("c", 1, true),
        ("d", 1, false),
        ("e", 1, true),
        ("f", 1, true),
        ("g", 1, true),
    ];
    let mut chain = Chain::new(&members, ChainState { fenced: fenced(&["e"]), ..steady("a") });
    let lagging_geth = probe(chain.now, 20, 20, 4);
    chain.head("a", 20).head("b", 20).head("c", 19).head("d", 20).head("e", 20).probe("f", lagging_geth);
    chain.head("g", 11);
    chain.at(100).fail("e", unreachable());
    chain
}

pub(crate) fn refusal(chain: &mut Chain, to: &str) -> CommandError {
    match chain.transfer(to) {
        Ok(actions) => panic!("hand-over to {to} accepted: {actions:?}"),
        Err(err) => err,
    }
}

pub(crate) fn assert_ineligible(err: CommandError, node: &str, why_contains: &str) {
    match &err {
        CommandError::Ineligible { node: refused, why } if refused == node && why.contains(why_contains) => {}
        other => panic!("expected {node} ineligible because {why_contains:?}, got {other:?}"),
    }
}

/// `a`, fenced while the stopped hash was estimated at 12, answers its fence stop with 13: the
/// answer becomes the stopped hash, and as nobody is at 13 yet, nobody is started at 12.
pub(crate) fn fence_stop_of_a_at_13_moves_the_stopped_hash_and_starts_nobody(
    chain: &mut Chain,
    before: ChainState,
) {
    let known = ChainState {
        fenced: fenced(&[]),
        stopped_hash: Some(hash(13)),
        stopped_hash_estimated: false,
        ..before
    };
    assert_eq!(
        chain.stopped("a", Fence, Ok(hash(13))),
        [persist(known), event(EventKind::FenceReleased, "a"), event(EventKind::StoppedHashFromFence, "a")]
    );
    assert!(
        chain.tick().iter().all(|step| !matches!(step, Step::Start(..))),
        "started below the chain's end"
    );
}
