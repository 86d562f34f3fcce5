//! The fail-over engine, row by row: every row of the decision tables in `engine.rs`'s module docs,
//! inspection, hand-over, pause and restart-resume, each asserting the exact list of actions.
//!
//! Observations are built the way the chain actor builds them, through
//! [`ChainHealth::observe_probe`] and [`ChainHealth::observe_active`]; a [`Chain`] plays the
//! actor: it applies every `Persist` to its state (and `MarkNotSequencer` to its health) so the
//! next input sees what the actor would. Events are compared by kind and node only: their detail
//! text is for humans.
//!
//! Heads are named by their number: `head(node, 20)` puts the node at block 20 whose hash is
//! [`hash(20)`], so "at the stopped hash 20" reads as it is written.

use alloy_primitives::{B256, U64};
use op_coordinator::{
    client::{CallError, Timed},
    engine::{Action, CommandError, FailoverEngine, FailoverSettings, Input, Member, StopPurpose, View},
    health::{ChainHealth, HealthSettings, Probe},
    state::{ChainState, Phase},
};
use opc_wire::{
    BlockHeader, L2BlockRef, SyncStatus,
    op_node_errors::{
        APPLICATION_ERROR_CODE, AdminError, METHOD_NOT_FOUND_CODE, SEQUENCER_ALREADY_RUNNING,
        SEQUENCER_NOT_ENABLED, SEQUENCER_NOT_LEADER, SEQUENCER_NOT_RUNNING, hash_mismatch,
        method_not_available, no_prestate,
    },
};
use std::{collections::BTreeSet, time::Duration};
use tokio::time::Instant;

use StopPurpose::{Failover, Fence, Handover, Inspection};

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

/// Timings as configured by default: catch-up 3 s, liveness window 1.5 s, convergence 2 s.
fn failover_settings() -> FailoverSettings {
    FailoverSettings {
        catch_up_timeout: Duration::from_millis(3000),
        chain_liveness_window: Duration::from_millis(1500),
        convergence_wait: Duration::from_millis(2000),
        start_retry_interval: Duration::from_millis(100),
    }
}

/// Thresholds of one probe: every probe sets the verdict, so each test states a node's health
/// with one observation (the thresholds themselves are tested in `health.rs`).
fn health_settings() -> HealthSettings {
    HealthSettings {
        failure_threshold: 1,
        success_threshold: 1,
        unsafe_stall: Duration::from_millis(2500),
        max_execution_lag_blocks: 4,
        max_candidate_lag_blocks: 8,
    }
}

/// The hash of block `number` in these tests.
fn hash(number: u64) -> B256 {
    B256::repeat_byte(u8::try_from(number).expect("test heads are below 256"))
}

/// One probe: op-node's unsafe head `head_number` with hash byte `head_hash_byte`, op-geth at
/// `geth_number`.
fn probe(at: Instant, head_number: u64, head_hash_byte: u8, geth_number: u64) -> Probe {
    let unsafe_l2 =
        L2BlockRef { hash: B256::repeat_byte(head_hash_byte), number: head_number, ..Default::default() };
    Probe {
        at,
        sync: Timed {
            result: Ok(SyncStatus { unsafe_l2, ..Default::default() }),
            latency: Duration::from_millis(2),
        },
        geth: Timed {
            result: Ok(BlockHeader { number: U64::from(geth_number), ..Default::default() }),
            latency: Duration::from_millis(2),
        },
    }
}

/// A probe whose op-node call failed.
fn failed_probe(at: Instant, err: CallError) -> Probe {
    Probe {
        at,
        sync: Timed { result: Err(err), latency: Duration::from_millis(250) },
        geth: Timed { result: Ok(BlockHeader::default()), latency: Duration::from_millis(2) },
    }
}

fn unreachable() -> CallError {
    CallError::Unreachable("connection refused".into())
}

fn timeout() -> CallError {
    CallError::Timeout(250)
}

fn malformed() -> CallError {
    CallError::Malformed("expected an object".into())
}

/// An `admin_*` error exactly as op-node words it.
fn rpc(kind: AdminError) -> CallError {
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
enum Step {
    Persist(ChainState),
    Stop(String, StopPurpose),
    ReadHead(String),
    Start(String, B256),
    CheckActive(String),
    MarkNotSequencer(String),
    Event(&'static str, Option<String>),
}

fn persist(state: ChainState) -> Step {
    Step::Persist(state)
}

fn stop(node: &str, purpose: StopPurpose) -> Step {
    Step::Stop(node.into(), purpose)
}

fn read_head(node: &str) -> Step {
    Step::ReadHead(node.into())
}

fn start(node: &str, head: u64) -> Step {
    Step::Start(node.into(), hash(head))
}

fn check_active(node: &str) -> Step {
    Step::CheckActive(node.into())
}

fn mark_not_sequencer(node: &str) -> Step {
    Step::MarkNotSequencer(node.into())
}

/// An event about `node`.
fn event(kind: &'static str, node: &str) -> Step {
    Step::Event(kind, Some(node.into()))
}

/// An event about the chain as a whole.
fn chain_event(kind: &'static str) -> Step {
    Step::Event(kind, None)
}

fn summarize(actions: Vec<Action>) -> Vec<Step> {
    actions
        .into_iter()
        .map(|action| match action {
            Action::Persist(state) => Step::Persist(state),
            Action::Stop { node, purpose } => Step::Stop(node, purpose),
            Action::ReadHead { node } => Step::ReadHead(node),
            Action::Start { node, hash } => Step::Start(node, hash),
            Action::CheckActive { node } => Step::CheckActive(node),
            Action::MarkNotSequencer { node } => Step::MarkNotSequencer(node),
            Action::Event(event) => Step::Event(event.kind, event.node),
        })
        .collect()
}

fn fenced(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

/// `leader` sequences, epoch 1.
fn steady(leader: &str) -> ChainState {
    ChainState { leader: Some(leader.into()), epoch: 1, phase: Phase::Steady, ..Default::default() }
}

/// `from` was stopped at block `head`; epoch 1.
fn catching_up(from: &str, head: u64) -> ChainState {
    ChainState {
        leader: None,
        epoch: 1,
        phase: Phase::CatchingUp { from: from.into(), target: None },
        stopped_hash: Some(hash(head)),
        ..Default::default()
    }
}

/// `state` with another phase.
fn with_phase(state: &ChainState, phase: Phase) -> ChainState {
    ChainState { phase, ..state.clone() }
}

fn starting(target: &str, from: Option<&str>) -> Phase {
    Phase::Starting { target: target.into(), from: from.map(str::to_owned) }
}

/// Three equal candidates.
const ABC: &[(&str, i64, bool)] = &[("a", 1, true), ("b", 1, true), ("c", 1, true)];

/// One chain as its actor sees it: durable state, members, observations, the engine and a clock
/// that moves only when a test says so.
struct Chain {
    engine: FailoverEngine,
    state: ChainState,
    members: Vec<Member>,
    health: ChainHealth,
    t0: Instant,
    now: Instant,
}

impl Chain {
    /// A coordinator (re)started at `t0` over the persisted `state`.
    fn new(members: &[(&str, i64, bool)], state: ChainState) -> Self {
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
        Self { engine: FailoverEngine::new(failover_settings(), t0), state, members, health, t0, now: t0 }
    }

    /// Moves the clock to `ms` after the start.
    fn at(&mut self, ms: u64) -> &mut Self {
        self.now = self.t0 + Duration::from_millis(ms);
        self
    }

    /// A healthy probe now: head `number` (hash [`hash`]`(number)`), op-geth level with it.
    fn head(&mut self, node: &str, number: u64) -> &mut Self {
        let byte = u8::try_from(number).expect("test heads are below 256");
        self.probe(node, probe(self.now, number, byte, number))
    }

    fn probe(&mut self, node: &str, probe: Probe) -> &mut Self {
        self.health.observe_probe(node, &probe);
        self
    }

    /// A probe now whose op-node call failed.
    fn fail(&mut self, node: &str, err: CallError) -> &mut Self {
        let probe = failed_probe(self.now, err);
        self.probe(node, probe)
    }

    /// An `admin_sequencerActive` answer now.
    fn active(&mut self, node: &str, result: Result<bool, CallError>) -> &mut Self {
        let outcome = Timed { result, latency: Duration::from_millis(1) };
        self.health.observe_active(node, &outcome, self.now);
        self
    }

    fn handle(&mut self, input: Input) -> Vec<Step> {
        self.health.set_leader(self.state.leader.as_deref(), self.now);
        let view = View { state: &self.state, members: &self.members, health: &self.health, now: self.now };
        let actions = self.engine.handle(input, &view);
        self.apply(actions)
    }

    fn apply(&mut self, actions: Vec<Action>) -> Vec<Step> {
        for action in &actions {
            match action {
                Action::Persist(next) => self.state = next.clone(),
                Action::MarkNotSequencer { node } => self.health.mark_not_sequencer(node),
                _ => {}
            }
        }
        summarize(actions)
    }

    fn tick(&mut self) -> Vec<Step> {
        self.handle(Input::Tick)
    }

    /// An inspection round: the answers are recorded, then handed to the engine.
    fn inspected(&mut self, answers: &[(&str, bool)]) -> Vec<Step> {
        for (node, is_active) in answers {
            self.active(node, Ok(*is_active));
        }
        let round = answers.iter().map(|(node, is_active)| ((*node).to_owned(), *is_active)).collect();
        self.handle(Input::Inspected(round))
    }

    fn stopped(&mut self, node: &str, purpose: StopPurpose, result: Result<B256, CallError>) -> Vec<Step> {
        self.handle(Input::Stopped { node: node.into(), purpose, result })
    }

    fn head_read(&mut self, node: &str, result: Result<B256, CallError>) -> Vec<Step> {
        self.handle(Input::HeadRead { node: node.into(), result })
    }

    fn started(&mut self, node: &str, result: Result<(), CallError>) -> Vec<Step> {
        self.handle(Input::Started { node: node.into(), result })
    }

    fn active_checked(&mut self, node: &str, result: Result<bool, CallError>) -> Vec<Step> {
        self.handle(Input::ActiveChecked { node: node.into(), result })
    }

    fn transfer(&mut self, to: &str) -> Result<Vec<Step>, CommandError> {
        self.health.set_leader(self.state.leader.as_deref(), self.now);
        let view = View { state: &self.state, members: &self.members, health: &self.health, now: self.now };
        let actions = self.engine.transfer(&view, to)?;
        Ok(self.apply(actions))
    }

    fn set_paused(&mut self, paused: bool) -> Vec<Step> {
        let view = View { state: &self.state, members: &self.members, health: &self.health, now: self.now };
        let actions = self.engine.set_paused(&view, paused);
        self.apply(actions)
    }
}

/// Leader `a` at block 20 with op-geth 16 blocks behind (unhealthy, but it answers); `b` at 20,
/// `c` at 19; the engine has persisted stopping and sent `Stop(a)`.
fn stopping_a() -> Chain {
    let mut chain = Chain::new(ABC, steady("a"));
    let lagging_geth = probe(chain.now, 20, 20, 4);
    chain.probe("a", lagging_geth).head("b", 20).head("c", 19);
    assert_eq!(
        chain.tick(),
        [
            persist(with_phase(&steady("a"), Phase::Stopping { from: "a".into(), target: None })),
            event("leader_unhealthy", "a"),
            stop("a", Failover),
        ]
    );
    chain
}

/// Old leader `a` stopped at 20; `b` (priority 2) and `c` at 20: the engine has persisted
/// starting `b` and sent `Start(b, 20)`.
fn starting_b() -> Chain {
    let mut chain = Chain::new(&[("a", 1, true), ("b", 2, true), ("c", 1, true)], catching_up("a", 20));
    chain.head("a", 20).head("b", 20).head("c", 20);
    assert_eq!(
        chain.tick(),
        [
            persist(with_phase(&catching_up("a", 20), starting("b", Some("a")))),
            event("caught_up", "b"),
            start("b", 20),
        ]
    );
    chain
}

/// What a successful start of `node` from `state` persists and reports.
fn became_leader(state: &ChainState, node: &str) -> Vec<Step> {
    let next = ChainState {
        leader: Some(node.into()),
        epoch: state.epoch + 1,
        phase: Phase::Steady,
        ..state.clone()
    };
    vec![persist(next), event("started", node), event("failover_complete", node)]
}

// ---------------------------------------------------------------------------------------------
// Any phase: fencing
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_fenced_node_that_answers_again_is_stopped_once_and_released_when_stopped() {
    let state = ChainState { fenced: fenced(&["a"]), ..steady("b") };
    let mut chain = Chain::new(ABC, state);
    chain.head("a", 10).head("b", 10).head("c", 10);
    assert_eq!(chain.tick(), [event("fence_stopping", "a"), stop("a", Fence)]);
    assert_eq!(chain.at(100).tick(), [], "the fence stop is in flight: not sent twice");
    assert_eq!(chain.stopped("a", Fence, Ok(hash(10))), [persist(steady("b")), event("fence_released", "a")]);
    assert_eq!(chain.tick(), []);
}

#[tokio::test(start_paused = true)]
async fn a_fenced_node_is_not_stopped_while_it_does_not_answer() {
    let state = ChainState { fenced: fenced(&["a"]), ..steady("b") };
    let mut chain = Chain::new(ABC, state);
    chain.head("a", 10).at(100).fail("a", unreachable()).head("b", 10).head("c", 10);
    assert_eq!(chain.tick(), []);
}

#[tokio::test(start_paused = true)]
async fn a_failed_fence_stop_is_retried_after_a_back_off_and_not_running_releases_the_node() {
    let state = ChainState { fenced: fenced(&["a"]), ..steady("b") };
    let mut chain = Chain::new(ABC, state);
    chain.head("a", 10).head("b", 10).head("c", 10);
    assert_eq!(chain.tick(), [event("fence_stopping", "a"), stop("a", Fence)]);
    assert_eq!(chain.stopped("a", Fence, Err(timeout())), [event("fence_stop_failed", "a")]);
    assert_eq!(chain.at(499).tick(), []);
    assert_eq!(chain.at(500).tick(), [event("fence_stopping", "a"), stop("a", Fence)]);
    assert_eq!(
        chain.stopped("a", Fence, Err(rpc(AdminError::NotRunning))),
        [persist(steady("b")), event("fence_released", "a")]
    );
}

// ---------------------------------------------------------------------------------------------
// Discovering
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn discovery_adopts_the_single_active_sequencer_once_every_reachable_node_was_inspected() {
    let mut chain = Chain::new(ABC, ChainState::default());
    chain.head("a", 10).head("b", 10).head("c", 9).active("a", Ok(true)).active("b", Ok(false));
    assert_eq!(chain.tick(), [], "c is reachable but not inspected yet");
    chain.at(100).active("c", Ok(false));
    let adopted = ChainState { leader: Some("a".into()), phase: Phase::Steady, ..Default::default() };
    assert_eq!(chain.tick(), [persist(adopted), event("adopted", "a")]);
}

#[tokio::test(start_paused = true)]
async fn discovery_adopts_an_active_sequencer_after_the_wait_even_if_a_node_was_never_inspected() {
    let mut chain = Chain::new(ABC, ChainState::default());
    chain.head("a", 10).head("b", 10).head("c", 10).active("a", Ok(true)).active("b", Ok(false));
    assert_eq!(chain.at(1999).tick(), []);
    let adopted = ChainState { leader: Some("a".into()), phase: Phase::Steady, ..Default::default() };
    assert_eq!(chain.at(2000).tick(), [persist(adopted), event("adopted", "a")]);
}

#[tokio::test(start_paused = true)]
async fn discovery_keeps_the_most_advanced_of_several_active_sequencers_and_inspection_stops_the_rest() {
    let mut chain = Chain::new(ABC, ChainState::default());
    chain.head("a", 10).head("b", 12).head("c", 12);
    let adopted = ChainState { leader: Some("b".into()), phase: Phase::Steady, ..Default::default() };
    assert_eq!(
        chain.inspected(&[("a", true), ("b", true), ("c", false)]),
        [persist(adopted), event("adopted", "b")],
        "inspection stops nobody while discovering; adoption decides"
    );
    assert_eq!(
        chain.at(500).inspected(&[("a", true), ("b", true), ("c", false)]),
        [event("inspection_stopping", "a"), stop("a", Inspection)]
    );
}

#[tokio::test(start_paused = true)]
async fn discovery_breaks_a_tie_between_active_sequencers_by_priority_then_name() {
    for (members, keep) in [
        (&[("a", 1, true), ("b", 2, true), ("c", 2, true)][..], "b"),
        (&[("a", 1, true), ("b", 1, true), ("c", 1, true)][..], "a"),
        (&[("a", 1, true), ("b", 1, true), ("c", 3, false)][..], "c"),
    ] {
        let mut chain = Chain::new(members, ChainState::default());
        chain.head("a", 10).head("b", 10).head("c", 10);
        chain.active("a", Ok(true)).active("b", Ok(true)).active("c", Ok(true));
        let adopted = ChainState { leader: Some(keep.into()), phase: Phase::Steady, ..Default::default() };
        assert_eq!(chain.tick(), [persist(adopted), event("adopted", keep)], "{members:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn discovery_without_an_active_sequencer_waits_for_convergence_then_starts_the_most_advanced_eligible_node_at_its_head()
 {
    let mut chain = Chain::new(&[("a", 1, true), ("b", 1, true), ("c", 5, false)], ChainState::default());
    chain.head("a", 10).head("b", 12).head("c", 14);
    chain.active("a", Ok(false)).active("b", Ok(false)).active("c", Ok(false));
    assert_eq!(chain.tick(), []);
    assert_eq!(chain.at(1999).tick(), [], "heads may still converge");
    let electing = ChainState {
        leader: None,
        stopped_hash: Some(hash(12)),
        phase: starting("b", None),
        ..Default::default()
    };
    assert_eq!(
        chain.at(2000).tick(),
        [persist(electing.clone()), event("electing", "b"), start("b", 12)],
        "c is more advanced but not a candidate"
    );
    assert_eq!(chain.started("b", Ok(())), became_leader(&electing, "b"));
}

#[tokio::test(start_paused = true)]
async fn discovery_does_not_elect_while_a_node_it_cannot_ask_may_be_sequencing() {
    let mut chain = Chain::new(ABC, ChainState::default());
    chain.fail("a", unreachable()).head("b", 10).head("c", 10);
    chain.active("b", Ok(false)).active("c", Ok(false));
    // a answers nothing, yet b and c keep receiving blocks: a is sequencing, cut off from us.
    chain.at(2000).head("b", 12).head("c", 12);
    assert_eq!(chain.tick(), [chain_event("hidden_sequencer")]);
    assert_eq!(chain.at(3000).tick(), [], "said once");
    // The chain stopped moving for the liveness window: nobody sequences, so electing is safe.
    let electing = ChainState {
        leader: None,
        stopped_hash: Some(hash(12)),
        phase: starting("b", None),
        ..Default::default()
    };
    assert_eq!(chain.at(3501).tick(), [persist(electing), event("electing", "b"), start("b", 12)]);
}

#[tokio::test(start_paused = true)]
async fn discovery_with_nobody_eligible_persists_leaderless_and_says_so_every_ten_seconds() {
    let mut chain = Chain::new(&[("a", 1, true), ("b", 1, false), ("c", 1, true)], ChainState::default());
    let lagging_geth = probe(chain.now, 20, 20, 4);
    chain.probe("a", lagging_geth).head("b", 20).fail("c", unreachable());
    chain.active("a", Ok(false)).active("b", Ok(false));
    let leaderless = ChainState { phase: Phase::Leaderless, ..Default::default() };
    assert_eq!(chain.at(2000).tick(), [persist(leaderless), chain_event("leaderless")]);
    assert_eq!(chain.at(3000).tick(), []);
    assert_eq!(chain.at(12_000).tick(), [chain_event("leaderless")]);
}

// ---------------------------------------------------------------------------------------------
// Steady
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_healthy_leader_is_left_alone() {
    let mut chain = Chain::new(ABC, steady("a"));
    chain.head("a", 10).head("b", 10).head("c", 9);
    assert_eq!(chain.tick(), []);
    assert_eq!(chain.inspected(&[("a", true), ("b", false), ("c", false)]), []);
    assert_eq!(chain.at(1000).head("a", 11).tick(), []);
}

#[tokio::test(start_paused = true)]
async fn an_unhealthy_leader_that_answers_is_persisted_as_stopping_before_it_is_stopped() {
    let mut chain = stopping_a();
    assert_eq!(chain.at(100).tick(), [], "the stop is in flight");
}

#[tokio::test(start_paused = true)]
async fn a_stalled_leader_is_stopped() {
    let mut chain = Chain::new(ABC, steady("a"));
    chain.head("a", 10).head("b", 10).head("c", 10);
    assert_eq!(chain.tick(), []);
    chain.at(2600).head("a", 10);
    assert_eq!(
        chain.tick(),
        [
            persist(with_phase(&steady("a"), Phase::Stopping { from: "a".into(), target: None })),
            event("leader_unhealthy", "a"),
            stop("a", Failover),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn an_unreachable_leader_is_not_replaced_while_a_follower_still_advances() {
    let mut chain = Chain::new(ABC, steady("a"));
    chain.head("a", 10).head("b", 10).head("c", 10);
    chain.at(1000).fail("a", unreachable()).head("b", 11);
    assert_eq!(chain.tick(), [event("leader_cut_off", "a")]);
    chain.at(2000).head("b", 12);
    assert_eq!(chain.tick(), [], "said at most every ten seconds");
    chain.at(10_999).head("b", 13);
    assert_eq!(chain.tick(), []);
    chain.at(11_000).head("b", 14);
    assert_eq!(chain.tick(), [event("leader_cut_off", "a")]);
}

#[tokio::test(start_paused = true)]
async fn a_leader_with_a_disabled_admin_api_counts_as_cut_off_not_as_stoppable() {
    let mut chain = Chain::new(ABC, steady("a"));
    chain.head("a", 10).head("b", 10).head("c", 10);
    chain.at(500).active("a", Err(rpc(AdminError::AdminDisabled))).head("a", 11).head("b", 11);
    assert_eq!(chain.tick(), [event("leader_cut_off", "a")]);
}

#[tokio::test(start_paused = true)]
async fn an_unreachable_leader_of_a_stopped_chain_is_fenced_and_the_most_advanced_candidate_takes_over() {
    let mut chain = Chain::new(&[("a", 1, true), ("b", 1, true), ("c", 2, true)], steady("a"));
    chain.head("a", 12).head("b", 12).head("c", 11);
    chain.at(1500).fail("a", unreachable());
    assert_eq!(
        chain.tick(),
        [],
        "followers last moved before the leader went silent: no evidence it lives, waiting out the window"
    );
    let fenced_state = ChainState {
        fenced: fenced(&["a"]),
        leader: None,
        stopped_hash: Some(hash(12)),
        stopped_hash_estimated: true,
        phase: Phase::CatchingUp { from: "a".into(), target: None },
        ..steady("a")
    };
    assert_eq!(chain.at(1501).tick(), [persist(fenced_state.clone()), event("leader_fenced", "a")]);
    // c has the higher priority but is not at the stopped hash: b, the most advanced, is started.
    let starting_state = with_phase(&fenced_state, starting("b", Some("a")));
    assert_eq!(chain.tick(), [persist(starting_state.clone()), event("caught_up", "b"), start("b", 12)]);
    assert_eq!(chain.started("b", Ok(())), became_leader(&starting_state, "b"));
    // The old leader answers again: stopped at once, never counted as a candidate.
    chain.at(4000).head("a", 12);
    assert_eq!(chain.tick(), [event("fence_stopping", "a"), stop("a", Fence)]);
}

#[tokio::test(start_paused = true)]
async fn an_unreachable_leader_of_a_stopped_chain_is_only_reported_when_nobody_can_take_over() {
    let mut chain = Chain::new(&[("a", 1, true), ("b", 1, true), ("c", 1, false)], steady("a"));
    chain.head("a", 12).fail("b", malformed()).head("c", 12);
    chain.at(1600).fail("a", unreachable());
    assert_eq!(chain.tick(), [event("no_candidate", "a")]);
    assert_eq!(chain.at(1700).tick(), []);
}

// ---------------------------------------------------------------------------------------------
// Stop outcomes
// ---------------------------------------------------------------------------------------------

/// `a` stopped at block `head`: the state `stopping_a` leads to.
fn a_stopped_at(head: u64) -> ChainState {
    ChainState { leader: None, ..catching_up("a", head) }
}

#[tokio::test(start_paused = true)]
async fn a_stopped_hash_is_persisted_as_catching_up_and_a_candidate_at_it_is_started() {
    let mut chain = stopping_a();
    assert_eq!(
        chain.stopped("a", Failover, Ok(hash(20))),
        [persist(a_stopped_at(20)), event("stopped", "a")]
    );
    assert_eq!(
        chain.tick(),
        [
            persist(with_phase(&a_stopped_at(20), starting("b", Some("a")))),
            event("caught_up", "b"),
            start("b", 20)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_zero_stopped_hash_is_replaced_by_the_head_read_from_sync_status() {
    let mut chain = stopping_a();
    assert_eq!(
        chain.stopped("a", Failover, Ok(B256::ZERO)),
        [event("zero_stopped_hash", "a"), read_head("a")]
    );
    assert_eq!(chain.tick(), [], "the head read is in flight");
    assert_eq!(chain.head_read("a", Ok(hash(20))), [persist(a_stopped_at(20)), event("stopped", "a")]);
}

#[tokio::test(start_paused = true)]
async fn a_leader_whose_sequencer_is_not_running_has_its_current_head_read() {
    let mut chain = stopping_a();
    assert_eq!(
        chain.stopped("a", Failover, Err(rpc(AdminError::NotRunning))),
        [event("already_stopped", "a"), read_head("a")]
    );
    assert_eq!(chain.head_read("a", Ok(hash(20))), [persist(a_stopped_at(20)), event("stopped", "a")]);
}

#[tokio::test(start_paused = true)]
async fn a_leader_that_is_not_sequencer_enabled_is_marked_and_its_head_read() {
    let mut chain = stopping_a();
    assert_eq!(
        chain.stopped("a", Failover, Err(rpc(AdminError::NotEnabled))),
        [mark_not_sequencer("a"), read_head("a")]
    );
    assert!(chain.health.nodes["a"].not_sequencer);
}

#[tokio::test(start_paused = true)]
async fn a_stop_without_answer_returns_to_steady_then_the_cut_off_rules_decide() {
    let mut chain = stopping_a();
    chain.at(100);
    assert_eq!(
        chain.stopped("a", Failover, Err(timeout())),
        [persist(steady("a")), event("stop_failed", "a")]
    );
    // a still answers probes but cannot be stopped: while b and c moved within 1.5 s, it is alive.
    assert_eq!(chain.at(200).tick(), [event("leader_cut_off", "a")]);
    // The chain stopped: fence a, fail over from the most advanced candidate's head.
    let fenced_state = ChainState {
        fenced: fenced(&["a"]),
        leader: None,
        stopped_hash: Some(hash(20)),
        stopped_hash_estimated: true,
        phase: Phase::CatchingUp { from: "a".into(), target: None },
        ..steady("a")
    };
    assert_eq!(chain.at(1501).tick(), [persist(fenced_state.clone()), event("leader_fenced", "a")]);
    // a answers, so its fence stop goes first; nobody starts before that stop returns.
    assert_eq!(chain.tick(), [event("fence_stopping", "a"), stop("a", Fence)]);
    assert_eq!(chain.at(1600).tick(), []);
    let released = ChainState { fenced: fenced(&[]), ..fenced_state };
    assert_eq!(
        chain.stopped("a", Fence, Ok(hash(20))),
        [persist(released.clone()), event("fence_released", "a")]
    );
    assert_eq!(
        chain.tick(),
        [persist(with_phase(&released, starting("b", Some("a")))), event("caught_up", "b"), start("b", 20)]
    );
}

#[tokio::test(start_paused = true)]
async fn a_leader_that_could_not_be_stopped_is_tried_again_after_five_seconds_if_the_chain_lives() {
    let mut chain = stopping_a();
    assert_eq!(
        chain.stopped("a", Failover, Err(timeout())),
        [persist(steady("a")), event("stop_failed", "a")]
    );
    chain.at(4999).head("b", 21);
    assert_eq!(chain.tick(), [event("leader_cut_off", "a")]);
    chain.at(5000).head("b", 22);
    assert_eq!(
        chain.tick(),
        [
            persist(with_phase(&steady("a"), Phase::Stopping { from: "a".into(), target: None })),
            event("leader_unhealthy", "a"),
            stop("a", Failover),
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Head read outcomes
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn failed_head_reads_are_retried_by_stopping_again_then_the_last_probed_head_is_the_stopped_hash() {
    let mut chain = stopping_a();
    let not_running = || Err(rpc(AdminError::NotRunning));
    assert_eq!(chain.stopped("a", Failover, not_running()), [event("already_stopped", "a"), read_head("a")]);
    assert_eq!(chain.head_read("a", Err(timeout())), [event("read_head_failed", "a")]);
    assert_eq!(chain.at(199).tick(), [], "back-off");
    assert_eq!(chain.at(200).tick(), [stop("a", Failover)]);
    assert_eq!(chain.stopped("a", Failover, not_running()), [event("already_stopped", "a"), read_head("a")]);
    assert_eq!(chain.head_read("a", Err(unreachable())), [event("read_head_failed", "a")]);
    assert_eq!(chain.at(400).tick(), [stop("a", Failover)]);
    assert_eq!(chain.stopped("a", Failover, not_running()), [event("already_stopped", "a"), read_head("a")]);
    assert_eq!(
        chain.head_read("a", Ok(B256::ZERO)),
        [event("stopped_hash_from_probe", "a"), persist(a_stopped_at(20)), event("stopped", "a")],
        "a zero head counts as a failure; the third falls back to the probed head"
    );
}

#[tokio::test(start_paused = true)]
async fn failed_head_reads_without_a_probed_head_leave_the_chain_leaderless() {
    let mut chain = Chain::new(ABC, steady("a"));
    chain.fail("a", malformed()).head("b", 20).head("c", 20);
    chain.active("b", Ok(false)).active("c", Ok(false));
    assert_eq!(
        chain.tick(),
        [
            persist(with_phase(&steady("a"), Phase::Stopping { from: "a".into(), target: None })),
            event("leader_unhealthy", "a"),
            stop("a", Failover),
        ]
    );
    for retry_at in [200, 400] {
        chain.stopped("a", Failover, Err(rpc(AdminError::NotRunning)));
        assert_eq!(chain.head_read("a", Err(timeout())), [event("read_head_failed", "a")]);
        assert_eq!(chain.at(retry_at).tick(), [stop("a", Failover)]);
    }
    chain.stopped("a", Failover, Err(rpc(AdminError::NotRunning)));
    let leaderless = ChainState { leader: None, phase: Phase::Leaderless, ..steady("a") };
    assert_eq!(chain.head_read("a", Err(timeout())), [persist(leaderless.clone()), event("leaderless", "a")]);
    // No stopped hash: as discovery with the wait over. Every node answered
    // admin_sequencerActive, so none can be a hidden sequencer.
    chain.at(600).active("a", Ok(false));
    let electing =
        ChainState { stopped_hash: Some(hash(20)), phase: starting("b", None), ..leaderless.clone() };
    assert_eq!(chain.tick(), [persist(electing), event("electing", "b"), start("b", 20)]);
}

// ---------------------------------------------------------------------------------------------
// Catching up
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn catch_up_starts_the_first_candidate_by_priority_then_name_that_is_at_the_stopped_hash() {
    let members = [("a", 9, true), ("b", 5, true), ("c", 3, true), ("d", 3, true), ("e", 1, true)];
    let mut chain = Chain::new(&members, catching_up("a", 20));
    // a, the stopped leader, is at the hash but is only restarted on timeout; b has the highest
    // priority but sits on another block 20; e is more advanced on another branch.
    let other_branch = probe(chain.now, 20, 0x77, 20);
    chain.head("a", 20).probe("b", other_branch).head("d", 20).head("c", 20).head("e", 21);
    assert_eq!(
        chain.tick(),
        [
            persist(with_phase(&catching_up("a", 20), starting("c", Some("a")))),
            event("caught_up", "c"),
            start("c", 20)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn catch_up_skips_nodes_at_the_stopped_hash_that_may_not_lead() {
    let members = [
        ("a", 1, true),
        ("unhealthy", 5, true),
        ("fenced", 5, true),
        ("watcher", 5, false),
        ("not-sequencer", 5, true),
        ("admin-off", 5, true),
        ("gone", 5, true),
    ];
    let state = ChainState { fenced: fenced(&["fenced"]), ..catching_up("a", 20) };
    let mut chain = Chain::new(&members, state.clone());
    let lagging_geth = probe(chain.now, 20, 20, 4);
    chain.fail("a", unreachable()).probe("unhealthy", lagging_geth).head("watcher", 20);
    chain.health.mark_not_sequencer("not-sequencer");
    chain.head("not-sequencer", 20);
    chain.active("admin-off", Err(rpc(AdminError::AdminDisabled))).head("admin-off", 20);
    chain.head("gone", 20).at(100).fail("gone", timeout());
    // The fenced node does not answer (or it would be fence-stopped first).
    chain.fail("fenced", unreachable());
    assert_eq!(chain.tick(), [], "the catch-up deadline starts now, at 100 ms");
    assert_eq!(chain.at(3099).tick(), []);
    assert_eq!(
        chain.at(3100).tick(),
        [persist(with_phase(&state, Phase::Leaderless)), chain_event("leaderless")],
        "nobody may start and the old leader is gone"
    );
}

#[tokio::test(start_paused = true)]
async fn a_lagging_node_is_not_started_even_at_the_stopped_hash() {
    let mut chain = Chain::new(&[("a", 1, true), ("b", 1, true), ("c", 1, false)], catching_up("a", 20));
    chain.fail("a", unreachable()).head("c", 29).head("b", 20);
    assert_eq!(chain.tick(), []);
}

#[tokio::test(start_paused = true)]
async fn a_catch_up_timeout_restarts_the_healthy_old_leader_at_the_stopped_hash() {
    let mut chain = Chain::new(ABC, catching_up("a", 20));
    chain.head("a", 20).head("b", 19).head("c", 18);
    assert_eq!(chain.tick(), []);
    assert_eq!(chain.at(2999).tick(), []);
    let restarting = with_phase(&catching_up("a", 20), starting("a", None));
    assert_eq!(
        chain.at(3000).tick(),
        [persist(restarting.clone()), event("catch_up_timeout", "a"), start("a", 20)]
    );
    assert_eq!(chain.started("a", Ok(())), became_leader(&restarting, "a"));
}

#[tokio::test(start_paused = true)]
async fn a_catch_up_timeout_leaves_the_chain_leaderless_when_the_old_leader_is_unhealthy() {
    let mut chain = Chain::new(ABC, catching_up("a", 20));
    let lagging_geth = probe(chain.now, 20, 20, 4);
    chain.probe("a", lagging_geth).head("b", 19).head("c", 18);
    let leaderless = with_phase(&catching_up("a", 20), Phase::Leaderless);
    assert_eq!(chain.tick(), []);
    assert_eq!(chain.at(3000).tick(), [persist(leaderless.clone()), chain_event("leaderless")]);
    assert_eq!(chain.at(4000).tick(), [], "said loudly once");
    // Leaderless, a node reaching the stopped hash is started there.
    chain.at(5000).head("c", 20);
    assert_eq!(
        chain.tick(),
        [persist(with_phase(&leaderless, starting("c", None))), event("caught_up", "c"), start("c", 20)]
    );
}

#[tokio::test(start_paused = true)]
async fn a_catch_up_timeout_never_restarts_a_fenced_old_leader() {
    let state = ChainState { fenced: fenced(&["a"]), ..catching_up("a", 20) };
    let mut chain = Chain::new(ABC, state.clone());
    chain.head("a", 20).head("b", 19).head("c", 18);
    assert_eq!(chain.tick(), [event("fence_stopping", "a"), stop("a", Fence)]);
    assert_eq!(chain.stopped("a", Fence, Err(timeout())), [event("fence_stop_failed", "a")]);
    chain.at(2900).fail("a", unreachable());
    assert_eq!(
        chain.at(3000).tick(),
        [persist(with_phase(&state, Phase::Leaderless)), chain_event("leaderless")]
    );
}

#[tokio::test(start_paused = true)]
async fn nobody_is_started_while_a_fenced_node_that_answers_is_not_yet_stopped() {
    let state = ChainState { fenced: fenced(&["c"]), ..catching_up("a", 20) };
    let mut chain = Chain::new(ABC, state.clone());
    chain.fail("a", unreachable()).head("b", 20).head("c", 20);
    assert_eq!(chain.tick(), [event("fence_stopping", "c"), stop("c", Fence)]);
    assert_eq!(chain.at(100).tick(), []);
    let released = ChainState { fenced: fenced(&[]), ..state };
    assert_eq!(
        chain.stopped("c", Fence, Ok(hash(20))),
        [persist(released.clone()), event("fence_released", "c")]
    );
    assert_eq!(
        chain.tick(),
        [persist(with_phase(&released, starting("b", Some("a")))), event("caught_up", "b"), start("b", 20)]
    );
}

#[tokio::test(start_paused = true)]
async fn a_leaderless_chain_starts_the_first_eligible_node_that_reaches_the_stopped_hash() {
    let state = ChainState { stopped_hash: Some(hash(20)), phase: Phase::Leaderless, ..Default::default() };
    let mut chain = Chain::new(&[("a", 1, true), ("b", 1, true), ("c", 2, true)], state.clone());
    chain.fail("a", unreachable()).head("b", 19).head("c", 19);
    assert_eq!(chain.tick(), [chain_event("leaderless")]);
    chain.at(500).head("b", 20);
    assert_eq!(
        chain.tick(),
        [persist(with_phase(&state, starting("b", None))), event("caught_up", "b"), start("b", 20)]
    );
}

// ---------------------------------------------------------------------------------------------
// Start and activity-check outcomes
// ---------------------------------------------------------------------------------------------

/// The state `starting_b` leads to.
fn b_starting() -> ChainState {
    with_phase(&catching_up("a", 20), starting("b", Some("a")))
}

#[tokio::test(start_paused = true)]
async fn a_started_node_is_persisted_as_leader_with_the_next_epoch() {
    let mut chain = starting_b();
    let expected = became_leader(&b_starting(), "b");
    assert_eq!(chain.started("b", Ok(())), expected);
    assert_eq!(chain.state.epoch, 2);
}

#[tokio::test(start_paused = true)]
async fn a_start_answered_already_running_is_verified_before_counting_as_success() {
    let mut chain = starting_b();
    assert_eq!(chain.started("b", Err(rpc(AdminError::AlreadyRunning))), [check_active("b")]);
    assert_eq!(chain.tick(), [], "the check is in flight");
    assert_eq!(chain.active_checked("b", Ok(true)), became_leader(&b_starting(), "b"));
}

#[tokio::test(start_paused = true)]
async fn a_start_refused_for_a_hash_mismatch_goes_back_to_catching_up() {
    let mut chain = starting_b();
    assert_eq!(
        chain.started("b", Err(rpc(AdminError::HashMismatch))),
        [persist(catching_up("a", 20)), event("start_hash_mismatch", "b")]
    );
    chain.at(100).head("b", 21);
    assert_eq!(
        chain.tick(),
        [
            persist(with_phase(&catching_up("a", 20), starting("c", Some("a")))),
            event("caught_up", "c"),
            start("c", 20)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_start_without_prestate_is_retried_after_the_retry_interval() {
    let mut chain = starting_b();
    assert_eq!(chain.started("b", Err(rpc(AdminError::NoPrestate))), [event("start_retry", "b")]);
    assert_eq!(chain.at(99).tick(), []);
    assert_eq!(chain.at(100).tick(), [check_active("b")]);
    assert_eq!(chain.active_checked("b", Ok(false)), [start("b", 20)]);
    assert_eq!(chain.started("b", Ok(())), became_leader(&b_starting(), "b"));
}

#[tokio::test(start_paused = true)]
async fn a_start_refused_because_the_node_cannot_sequence_marks_it_and_catches_up_with_another() {
    for kind in [AdminError::NotEnabled, AdminError::AdminDisabled, AdminError::NotLeader] {
        let mut chain = starting_b();
        assert_eq!(
            chain.started("b", Err(rpc(kind))),
            [mark_not_sequencer("b"), persist(catching_up("a", 20)), event("start_refused", "b")],
            "{kind:?}"
        );
        assert_eq!(
            chain.tick(),
            [
                persist(with_phase(&catching_up("a", 20), starting("c", Some("a")))),
                event("caught_up", "c"),
                start("c", 20),
            ],
            "{kind:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_start_without_answer_is_verified_before_anything_else() {
    for err in [timeout(), unreachable(), malformed(), rpc(AdminError::Other)] {
        let mut chain = starting_b();
        assert_eq!(
            chain.started("b", Err(err.clone())),
            [event("start_unknown", "b"), check_active("b")],
            "{err}"
        );
        assert_eq!(chain.at(100).tick(), [], "{err}: nothing else while verifying");
    }
}

#[tokio::test(start_paused = true)]
async fn a_start_verified_inactive_is_sent_again_at_the_stopped_hash_or_catches_up_if_the_node_moved() {
    let mut chain = starting_b();
    chain.started("b", Err(timeout()));
    assert_eq!(chain.active_checked("b", Ok(false)), [start("b", 20)]);
    chain.started("b", Err(timeout()));
    chain.at(100).head("b", 21);
    assert_eq!(chain.active_checked("b", Ok(false)), [persist(catching_up("a", 20))]);
}

#[tokio::test(start_paused = true)]
async fn a_start_that_cannot_be_verified_three_times_fences_the_node_and_catches_up_with_another() {
    let mut chain = starting_b();
    assert_eq!(chain.started("b", Err(timeout())), [event("start_unknown", "b"), check_active("b")]);
    assert_eq!(chain.active_checked("b", Err(timeout())), []);
    assert_eq!(chain.at(199).tick(), []);
    assert_eq!(chain.at(200).tick(), [check_active("b")]);
    assert_eq!(chain.active_checked("b", Err(unreachable())), []);
    assert_eq!(chain.at(400).tick(), [check_active("b")]);
    let fenced_state = ChainState { fenced: fenced(&["b"]), ..catching_up("a", 20) };
    assert_eq!(
        chain.active_checked("b", Err(malformed())),
        [persist(fenced_state.clone()), event("start_unverifiable", "b")]
    );
    // b still answers probes: it is fence-stopped before c may start.
    assert_eq!(chain.tick(), [event("fence_stopping", "b"), stop("b", Fence)]);
    chain.at(500).fail("b", unreachable());
    chain.stopped("b", Fence, Err(timeout()));
    assert_eq!(
        chain.tick(),
        [
            persist(with_phase(&fenced_state, starting("c", Some("a")))),
            event("caught_up", "c"),
            start("c", 20)
        ],
        "b no longer answers: the documented window, c takes over"
    );
}

// ---------------------------------------------------------------------------------------------
// Inspection
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn inspection_stops_every_active_node_but_the_leader_and_retries_failed_stops_after_a_back_off() {
    let mut chain = Chain::new(ABC, steady("a"));
    chain.head("a", 10).head("b", 10).head("c", 10);
    assert_eq!(
        chain.inspected(&[("a", true), ("b", true), ("c", true)]),
        [
            event("inspection_stopping", "b"),
            stop("b", Inspection),
            event("inspection_stopping", "c"),
            stop("c", Inspection)
        ]
    );
    assert_eq!(chain.inspected(&[("a", true), ("b", true), ("c", true)]), [], "the stops are in flight");
    assert_eq!(chain.stopped("b", Inspection, Ok(hash(10))), [event("inspection_stopped", "b")]);
    assert_eq!(chain.stopped("c", Inspection, Err(timeout())), [event("inspection_stop_failed", "c")]);
    assert_eq!(chain.at(499).inspected(&[("a", true), ("b", false), ("c", true)]), []);
    assert_eq!(
        chain.at(500).inspected(&[("a", true), ("b", false), ("c", true)]),
        [event("inspection_stopping", "c"), stop("c", Inspection)]
    );
    assert_eq!(
        chain.stopped("c", Inspection, Err(rpc(AdminError::NotRunning))),
        [event("inspection_stopped", "c")]
    );
}

#[tokio::test(start_paused = true)]
async fn inspection_never_stops_the_node_being_started_or_the_node_being_stopped() {
    let mut chain = starting_b();
    assert_eq!(
        chain.inspected(&[("a", true), ("b", true), ("c", false)]),
        [event("inspection_stopping", "a"), stop("a", Inspection)]
    );
    let mut chain = stopping_a();
    assert_eq!(chain.inspected(&[("a", true), ("b", false), ("c", false)]), []);
}

#[tokio::test(start_paused = true)]
async fn inspection_during_catch_up_stops_every_active_node_including_the_old_leader() {
    let mut chain = Chain::new(ABC, catching_up("a", 20));
    chain.head("a", 20).head("b", 19).head("c", 19);
    assert_eq!(
        chain.inspected(&[("a", true), ("b", false), ("c", true)]),
        [
            event("inspection_stopping", "a"),
            stop("a", Inspection),
            event("inspection_stopping", "c"),
            stop("c", Inspection)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn inspection_restarts_a_healthy_leader_found_inactive_at_its_own_head() {
    let mut chain = Chain::new(ABC, steady("a"));
    chain.head("a", 10).head("b", 10).head("c", 10);
    let restarting = ChainState { stopped_hash: Some(hash(10)), phase: starting("a", None), ..steady("a") };
    assert_eq!(
        chain.inspected(&[("a", false), ("b", false), ("c", false)]),
        [persist(restarting.clone()), event("leader_inactive", "a"), start("a", 10)]
    );
    assert_eq!(chain.started("a", Ok(())), became_leader(&restarting, "a"));
}

#[tokio::test(start_paused = true)]
async fn inspection_restarts_an_inactive_leader_only_once_no_other_node_is_active() {
    let mut chain = Chain::new(ABC, steady("a"));
    chain.head("a", 10).head("b", 10).head("c", 10);
    assert_eq!(
        chain.inspected(&[("a", false), ("b", true), ("c", false)]),
        [event("inspection_stopping", "b"), stop("b", Inspection)],
        "starting a while b may still sequence would make two"
    );
    assert_eq!(chain.stopped("b", Inspection, Ok(hash(10))), [event("inspection_stopped", "b")]);
    let restarting = ChainState { stopped_hash: Some(hash(10)), phase: starting("a", None), ..steady("a") };
    assert_eq!(
        chain.at(500).inspected(&[("a", false), ("b", false), ("c", false)]),
        [persist(restarting), event("leader_inactive", "a"), start("a", 10)]
    );
}

#[tokio::test(start_paused = true)]
async fn inspection_does_not_restart_an_unhealthy_inactive_leader() {
    let mut chain = Chain::new(ABC, steady("a"));
    let lagging_geth = probe(chain.now, 10, 10, 2);
    chain.probe("a", lagging_geth).head("b", 10).head("c", 10);
    // Nothing from inspection: the tick rules take over and stop the unhealthy leader.
    assert_eq!(
        chain.inspected(&[("a", false), ("b", false), ("c", false)]),
        [
            persist(with_phase(&steady("a"), Phase::Stopping { from: "a".into(), target: None })),
            event("leader_unhealthy", "a"),
            stop("a", Failover),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn inspection_does_nothing_while_paused() {
    let mut chain = Chain::new(ABC, ChainState { paused: true, ..steady("a") });
    chain.head("a", 10).head("b", 10).head("c", 10);
    assert_eq!(chain.inspected(&[("a", false), ("b", true), ("c", true)]), []);
}

// ---------------------------------------------------------------------------------------------
// Hand-over (`coordinator_setActiveSequencer`)
// ---------------------------------------------------------------------------------------------

/// Leader `a`; `b`, `c` and `e` at 20 (`e` fenced but silent); `d` not a candidate; `f` with a
/// lagging op-geth; `g` nine blocks behind.
fn handover_chain() -> Chain {
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

fn refusal(chain: &mut Chain, to: &str) -> CommandError {
    match chain.transfer(to) {
        Ok(actions) => panic!("hand-over to {to} accepted: {actions:?}"),
        Err(err) => err,
    }
}

fn assert_ineligible(err: CommandError, node: &str, why_contains: &str) {
    match &err {
        CommandError::Ineligible { node: refused, why } if refused == node && why.contains(why_contains) => {}
        other => panic!("expected {node} ineligible because {why_contains:?}, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_hand_over_is_refused_to_a_target_that_is_unknown_ineligible_or_already_leading() {
    let mut chain = handover_chain();
    assert_eq!(refusal(&mut chain, "zed"), CommandError::UnknownNode("zed".into()));
    assert_ineligible(refusal(&mut chain, "d"), "d", "not a candidate");
    assert_ineligible(refusal(&mut chain, "e"), "e", "fenced");
    assert_ineligible(refusal(&mut chain, "f"), "f", "execution_lag");
    assert_ineligible(refusal(&mut chain, "g"), "g", "lagging");
    assert_eq!(refusal(&mut chain, "a"), CommandError::AlreadyLeader("a".into()));
    assert_eq!(chain.state, ChainState { fenced: fenced(&["e"]), ..steady("a") }, "nothing persisted");
}

#[tokio::test(start_paused = true)]
async fn a_hand_over_is_refused_while_busy_paused_or_not_steady() {
    let mut chain = handover_chain();
    chain.transfer("c").expect("first hand-over");
    assert!(matches!(refusal(&mut chain, "b"), CommandError::Busy(_)), "a stop is in flight");

    let mut chain = handover_chain();
    chain.set_paused(true);
    assert!(matches!(refusal(&mut chain, "c"), CommandError::Busy(_)), "paused: nothing would start c");

    let mut chain = Chain::new(ABC, catching_up("a", 20));
    chain.head("a", 20).head("b", 19).head("c", 19);
    assert!(matches!(refusal(&mut chain, "b"), CommandError::Busy(_)), "a fail-over is under way");
}

#[tokio::test(start_paused = true)]
async fn a_node_never_observed_cannot_take_over() {
    let members = [
        Member { name: "a".into(), priority: 1, candidate: true },
        Member { name: "z".into(), priority: 1, candidate: true },
    ];
    let mut health = ChainHealth::new(["a".to_owned()], health_settings());
    let now = Instant::now();
    health.observe_probe("a", &probe(now, 10, 10, 10));
    let state = steady("a");
    let view = View { state: &state, members: &members, health: &health, now };
    let mut engine = FailoverEngine::new(failover_settings(), now);
    let err = engine.transfer(&view, "z").expect_err("z has no observations");
    assert_ineligible(err, "z", "not been probed");
}

#[tokio::test(start_paused = true)]
async fn a_hand_over_stops_the_leader_and_its_catch_up_tries_only_the_target() {
    let mut chain = handover_chain();
    let handing_over = with_phase(
        &ChainState { fenced: fenced(&["e"]), ..steady("a") },
        Phase::Stopping { from: "a".into(), target: Some("c".into()) },
    );
    assert_eq!(
        chain.transfer("c").expect("hand-over"),
        [persist(handing_over), event("handover_requested", "c"), stop("a", Handover)]
    );
    let stopped = ChainState {
        leader: None,
        fenced: fenced(&["e"]),
        stopped_hash: Some(hash(20)),
        phase: Phase::CatchingUp { from: "a".into(), target: Some("c".into()) },
        epoch: 1,
        paused: false,
        stopped_hash_estimated: false,
        catch_up_deadline_unix_ms: None,
    };
    assert_eq!(chain.stopped("a", Handover, Ok(hash(20))), [persist(stopped.clone()), event("stopped", "a")]);
    assert_eq!(chain.at(200).tick(), [], "b, of higher priority, is at the hash but is not the target");
    chain.at(300).head("c", 20);
    let starting_state = with_phase(&stopped, starting("c", Some("a")));
    assert_eq!(chain.tick(), [persist(starting_state.clone()), event("caught_up", "c"), start("c", 20)]);
    assert_eq!(chain.started("c", Ok(())), became_leader(&starting_state, "c"));
}

#[tokio::test(start_paused = true)]
async fn a_hand_over_whose_target_never_catches_up_restarts_the_old_leader() {
    let mut chain = handover_chain();
    chain.transfer("c").expect("hand-over");
    chain.stopped("a", Handover, Ok(hash(20)));
    let stopped = chain.state.clone();
    // The fixture's clock is at 100 ms: the catch-up deadline is 3100 ms.
    assert_eq!(chain.at(3099).tick(), []);
    assert_eq!(
        chain.at(3100).tick(),
        [persist(with_phase(&stopped, starting("a", None))), event("catch_up_timeout", "a"), start("a", 20)]
    );
}

#[tokio::test(start_paused = true)]
async fn a_hand_over_whose_stop_fails_is_abandoned() {
    let mut chain = handover_chain();
    let before = chain.state.clone();
    chain.transfer("c").expect("hand-over");
    assert_eq!(
        chain.stopped("a", Handover, Err(timeout())),
        [persist(before), event("handover_failed", "a")]
    );
}

#[tokio::test(start_paused = true)]
async fn a_hand_over_in_a_leaderless_chain_starts_the_target_only_at_the_stopped_hash() {
    let state = ChainState { stopped_hash: Some(hash(20)), phase: Phase::Leaderless, ..Default::default() };
    let mut chain = Chain::new(ABC, state.clone());
    chain.head("a", 20).head("b", 19).head("c", 20);
    assert_ineligible(refusal(&mut chain, "b"), "b", "stopped hash");
    assert_eq!(
        chain.transfer("c").expect("hand-over"),
        [persist(with_phase(&state, starting("c", None))), event("handover_requested", "c"), start("c", 20)]
    );
}

// ---------------------------------------------------------------------------------------------
// Pause and resume
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_paused_engine_acts_on_no_tick_until_resumed() {
    let mut chain = Chain::new(ABC, steady("a"));
    let lagging_geth = probe(chain.now, 20, 20, 4);
    chain.probe("a", lagging_geth).head("b", 20).head("c", 20);
    let paused = ChainState { paused: true, ..steady("a") };
    assert_eq!(chain.set_paused(true), [persist(paused), chain_event("paused")]);
    assert_eq!(chain.set_paused(true), [], "already paused");
    assert_eq!(chain.tick(), []);
    assert_eq!(chain.at(10_000).tick(), []);
    assert_eq!(chain.set_paused(false), [persist(steady("a")), chain_event("resumed")]);
    assert_eq!(
        chain.tick(),
        [
            persist(with_phase(&steady("a"), Phase::Stopping { from: "a".into(), target: None })),
            event("leader_unhealthy", "a"),
            stop("a", Failover),
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Restart: a fresh engine over a persisted phase
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_restart_while_stopping_stops_the_old_leader_again() {
    let state = with_phase(&steady("a"), Phase::Stopping { from: "a".into(), target: None });
    let mut chain = Chain::new(ABC, state);
    chain.head("a", 20).head("b", 20).head("c", 20);
    assert_eq!(chain.tick(), [event("resuming", "a"), stop("a", Failover)]);
    assert_eq!(
        chain.stopped("a", Failover, Err(rpc(AdminError::NotRunning))),
        [event("already_stopped", "a"), read_head("a")]
    );
    assert_eq!(chain.head_read("a", Ok(hash(20))), [persist(a_stopped_at(20)), event("stopped", "a")]);
}

#[tokio::test(start_paused = true)]
async fn a_restart_while_handing_over_stops_the_old_leader_again_for_the_same_target() {
    let state = with_phase(&steady("a"), Phase::Stopping { from: "a".into(), target: Some("c".into()) });
    let mut chain = Chain::new(ABC, state);
    chain.head("a", 20).head("b", 20).head("c", 20);
    assert_eq!(chain.tick(), [event("resuming", "a"), stop("a", Handover)]);
    let stopped = ChainState {
        leader: None,
        stopped_hash: Some(hash(20)),
        phase: Phase::CatchingUp { from: "a".into(), target: Some("c".into()) },
        ..steady("a")
    };
    assert_eq!(chain.stopped("a", Handover, Ok(hash(20))), [persist(stopped), event("stopped", "a")]);
}

#[tokio::test(start_paused = true)]
async fn a_restart_while_catching_up_resumes_with_the_persisted_stopped_hash() {
    let mut chain = Chain::new(ABC, catching_up("a", 20));
    // c is the most advanced, but only the stopped hash counts.
    chain.fail("a", unreachable()).head("b", 20).head("c", 21);
    assert_eq!(
        chain.tick(),
        [
            persist(with_phase(&catching_up("a", 20), starting("b", Some("a")))),
            event("caught_up", "b"),
            start("b", 20)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_restart_while_starting_verifies_the_start_before_anything_else() {
    let state = with_phase(&catching_up("a", 20), starting("b", Some("a")));
    let mut chain = Chain::new(ABC, state.clone());
    chain.head("a", 20).head("b", 20).head("c", 20);
    assert_eq!(chain.tick(), [event("resuming", "b"), check_active("b")]);
    assert_eq!(chain.active_checked("b", Ok(true)), became_leader(&state, "b"));

    let mut chain = Chain::new(ABC, state);
    chain.head("a", 20).head("b", 20).head("c", 20);
    assert_eq!(chain.tick(), [event("resuming", "b"), check_active("b")]);
    assert_eq!(chain.active_checked("b", Ok(false)), [start("b", 20)], "not started: start it at the hash");
}

// ---------------------------------------------------------------------------------------------
// Stale results and failed persists
// ---------------------------------------------------------------------------------------------

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
        [persist(a_stopped_at(20)), event("stopped", "a")]
    );
    assert_eq!(chain.stopped("a", Failover, Ok(hash(20))), [], "a duplicate is ignored too");

    let mut chain = Chain::new(ABC, steady("a"));
    chain.head("a", 10).head("b", 10).head("c", 10);
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
    assert_eq!(
        chain.at(200).tick(),
        [
            persist(with_phase(&steady("a"), Phase::Stopping { from: "a".into(), target: None })),
            event("leader_unhealthy", "a"),
            stop("a", Failover),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_fenced_node_is_stopped_even_while_automation_is_paused() {
    let state = ChainState { paused: true, fenced: fenced(&["a"]), ..steady("b") };
    let mut chain = Chain::new(ABC, state);
    chain.head("a", 10).head("b", 10).head("c", 10);
    assert_eq!(
        chain.tick(),
        [event("fence_stopping", "a"), stop("a", Fence)],
        "fencing is safety, not automation"
    );
}

#[tokio::test(start_paused = true)]
async fn a_leader_recovering_from_a_cut_off_is_not_failed_over_on_its_first_good_probe() {
    let mut chain = Chain::new(ABC, steady("a"));
    // The one test that needs real thresholds: two good probes to be healthy again.
    let settings = HealthSettings { success_threshold: 2, ..health_settings() };
    chain.health = ChainHealth::new(["a", "b", "c"].map(str::to_owned), settings);
    chain.health.set_leader(Some("a"), chain.now);
    chain.head("a", 10).head("b", 10).head("c", 10);
    chain.at(100).fail("a", unreachable()).head("b", 11).head("c", 11);
    chain.at(200).fail("a", unreachable());
    assert_eq!(chain.tick(), [event("leader_cut_off", "a")]);
    assert!(!chain.health.nodes["a"].healthy);
    // The first good probe: the verdict is still unhealthy (success threshold not met), but the
    // reason is ok, so the leader is left alone.
    chain.at(300).head("a", 12).head("b", 12).head("c", 12);
    assert!(!chain.health.nodes["a"].healthy);
    assert_eq!(chain.tick(), []);
}

#[tokio::test(start_paused = true)]
async fn an_estimated_stopped_hash_nobody_reaches_moves_to_the_most_advanced_candidate_head() {
    // The fenced leader's hash was estimated from a probe that was one block stale.
    let state = ChainState { fenced: fenced(&["a"]), stopped_hash_estimated: true, ..catching_up("a", 20) };
    let mut chain = Chain::new(ABC, state.clone());
    chain.fail("a", unreachable()).head("b", 21).head("c", 21);
    let moved = ChainState { stopped_hash: Some(hash(21)), ..state.clone() };
    assert_eq!(chain.tick(), [persist(moved.clone()), event("stopped_hash_reestimated", "b")]);
    assert_eq!(
        chain.tick(),
        [persist(with_phase(&moved, starting("b", Some("a")))), event("caught_up", "b"), start("b", 21)]
    );
}

#[tokio::test(start_paused = true)]
async fn a_stopped_hash_returned_by_a_stop_is_never_replaced_by_an_estimate() {
    let state = catching_up("a", 20);
    let mut chain = Chain::new(ABC, state);
    chain.head("a", 20).head("b", 19).head("c", 21);
    assert_eq!(chain.tick(), [], "only a stop's hash is the truth: wait for a candidate to reach it");
}

#[tokio::test(start_paused = true)]
async fn a_fenced_node_answering_only_garbage_does_not_hold_a_stopped_chain_hostage() {
    let state = ChainState { fenced: fenced(&["a"]), stopped_hash_estimated: true, ..catching_up("a", 20) };
    let mut chain = Chain::new(ABC, state.clone());
    chain.head("b", 20).head("c", 19);
    chain.at(100).fail("a", CallError::Malformed("expected a hash".into()));
    assert_eq!(chain.tick(), [event("fence_stopping", "a"), stop("a", Fence)]);
    assert_eq!(
        chain.stopped("a", Fence, Err(CallError::Malformed("garbage".into()))),
        [event("fence_stop_failed", "a")]
    );
    // While the chain might still move (b moved at 0 ms, window 1.5 s), nobody starts; the fence
    // stop is retried every 500 ms.
    assert_eq!(chain.at(1000).tick(), [event("fence_stopping", "a"), stop("a", Fence)]);
    assert_eq!(
        chain.stopped("a", Fence, Err(CallError::Malformed("garbage".into()))),
        [event("fence_stop_failed", "a")]
    );
    // The chain stood still for the whole window: a is not producing anything anyone receives.
    chain.at(1600).head("b", 20).head("c", 19);
    let started = chain.tick();
    assert!(started.contains(&start("b", 20)), "{started:?}");
}

#[tokio::test(start_paused = true)]
async fn an_unreachable_leader_is_replaced_from_the_most_advanced_head_any_node_holds_not_only_eligible_ones()
{
    let mut chain = Chain::new(ABC, steady("a"));
    // b holds block 13 but is unhealthy (its op-geth answers garbage); c is eligible at 11.
    chain.head("a", 13).head("c", 11);
    chain.probe("b", {
        let mut probe = probe(chain.now, 13, 13, 13);
        probe.geth.result = Err(CallError::Malformed("garbage".into()));
        probe
    });
    chain.at(1600).fail("a", unreachable());
    let actions = chain.tick();
    let fenced_state = ChainState {
        fenced: fenced(&["a"]),
        leader: None,
        stopped_hash: Some(hash(13)),
        stopped_hash_estimated: true,
        phase: Phase::CatchingUp { from: "a".into(), target: None },
        ..steady("a")
    };
    assert_eq!(actions, [persist(fenced_state), event("leader_fenced", "a")]);
    // c is not at 13: nobody starts it at 11 (that would re-org block 13).
    assert_eq!(chain.tick(), []);
    chain.at(1700).head("c", 13);
    assert!(chain.tick().contains(&start("c", 13)));
}

#[tokio::test(start_paused = true)]
async fn when_every_node_converged_past_an_unreachable_stopped_hash_the_best_candidate_starts_there() {
    // a stopped at 20, then a sequencer started behind our back re-orged 20 away: everyone is at 21
    // on the other branch (hash byte 99 stands for it).
    let mut chain = Chain::new(ABC, catching_up("a", 20));
    let other = |chain: &mut Chain, node: &str| {
        let probe = probe(chain.now, 21, 99, 21);
        chain.probe(node, probe);
    };
    for node in ["a", "b", "c"] {
        other(&mut chain, node);
    }
    assert_eq!(chain.tick(), [], "within the catch-up timeout: wait");
    chain.at(3100);
    for node in ["a", "b", "c"] {
        other(&mut chain, node);
    }
    let actions = chain.tick();
    let converged = B256::repeat_byte(99);
    assert!(
        actions.contains(&Step::Start("a".into(), converged)),
        "a (first by priority, then name) starts at the converged head: {actions:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_silent_node_prevents_convergence_so_a_dead_leaders_blocks_are_not_abandoned() {
    let mut chain = Chain::new(ABC, catching_up("a", 20));
    chain.fail("a", unreachable()).head("b", 19).head("c", 19);
    assert_eq!(chain.tick(), [], "within the catch-up timeout: wait");
    chain.at(3100).fail("a", unreachable()).head("b", 19).head("c", 19);
    let actions = chain.tick();
    assert!(!actions.iter().any(|step| matches!(step, Step::Start(..))), "{actions:?}");
    assert!(actions.contains(&chain_event("leaderless")), "{actions:?}");
}

#[tokio::test(start_paused = true)]
async fn a_leader_started_moments_ago_is_not_fenced_for_the_silence_of_its_own_hand_over() {
    let mut chain = stopping_a();
    let _ = chain.at(100).stopped("a", Failover, Ok(hash(20)));
    let steps = chain.tick();
    assert!(steps.iter().any(|step| matches!(step, Step::Start(node, _) if node == "b")), "{steps:?}");
    // The start call is slow: b answers it 1.6 s later, a whole liveness window without blocks.
    let _ = chain.at(1700).started("b", Ok(()));
    // b's first probes after its start time out (a slow node), and nobody has advanced yet.
    chain.at(1750).fail("b", timeout()).fail("b", timeout());
    let steps = chain.tick();
    assert!(
        !steps.contains(&event("leader_fenced", "b")),
        "a leader started 50 ms ago was fenced for the hand-over's own pause: {steps:?}"
    );
    // Once a whole window has passed since its start with the chain still silent, it is.
    chain.at(3300).fail("b", timeout());
    assert!(chain.tick().contains(&event("leader_fenced", "b")));
}

#[tokio::test(start_paused = true)]
async fn a_fenced_leaders_stop_answer_replaces_the_estimated_stopped_hash() {
    let mut chain = Chain::new(&[("a", 1, true), ("b", 1, true), ("c", 2, true)], steady("a"));
    chain.head("a", 12).head("b", 12).head("c", 11);
    chain.at(1500).fail("a", unreachable());
    let _ = chain.tick();
    let fenced_state = ChainState {
        fenced: fenced(&["a"]),
        leader: None,
        stopped_hash: Some(hash(12)),
        stopped_hash_estimated: true,
        phase: Phase::CatchingUp { from: "a".into(), target: None },
        ..steady("a")
    };
    assert_eq!(chain.at(1501).tick(), [persist(fenced_state.clone()), event("leader_fenced", "a")]);
    // a answers before anyone was started: its fence stop goes first, and says it sealed 13.
    chain.head("a", 13);
    assert_eq!(chain.tick(), [event("fence_stopping", "a"), stop("a", Fence)]);
    fence_stop_of_a_at_13_moves_the_stopped_hash_and_starts_nobody(&mut chain, fenced_state);
}

/// `a`, fenced while the stopped hash was estimated at 12, answers its fence stop with 13: the
/// answer becomes the stopped hash, and as nobody is at 13 yet, nobody is started at 12.
fn fence_stop_of_a_at_13_moves_the_stopped_hash_and_starts_nobody(chain: &mut Chain, before: ChainState) {
    let known = ChainState {
        fenced: fenced(&[]),
        stopped_hash: Some(hash(13)),
        stopped_hash_estimated: false,
        ..before
    };
    assert_eq!(
        chain.stopped("a", Fence, Ok(hash(13))),
        [persist(known), event("fence_released", "a"), event("stopped_hash_from_fence", "a")]
    );
    assert!(
        chain.tick().iter().all(|step| !matches!(step, Step::Start(..))),
        "started below the chain's end"
    );
}

#[tokio::test(start_paused = true)]
async fn a_start_resumed_from_another_engine_waits_for_the_stop_of_a_fenced_leader_that_answers() {
    // Replica seed 57: a replica that could reach no node judged the leader `a` dead from stale
    // observations, fenced it, estimated the stopped hash at 12 and persisted the start of `b`
    // there. The replica that acts next sees `a` answer at 13 (it sealed on, partitioned away from
    // the others). It must stop `a` first, not start `b` below `a`'s blocks.
    let resumed = ChainState {
        fenced: fenced(&["a"]),
        leader: None,
        stopped_hash: Some(hash(12)),
        stopped_hash_estimated: true,
        phase: Phase::Starting { target: "b".into(), from: Some("a".into()) },
        ..steady("a")
    };
    let mut chain = Chain::new(&[("a", 1, true), ("b", 1, true), ("c", 2, true)], resumed.clone());
    chain.head("a", 13).head("b", 12).head("c", 12);
    let steps = chain.tick();
    assert!(steps.contains(&check_active("b")), "{steps:?}");
    assert!(steps.contains(&stop("a", Fence)), "{steps:?}");
    let catching_up = ChainState { phase: Phase::CatchingUp { from: "a".into(), target: None }, ..resumed };
    assert_eq!(chain.active_checked("b", Ok(false)), [persist(catching_up.clone())]);
    fence_stop_of_a_at_13_moves_the_stopped_hash_and_starts_nobody(&mut chain, catching_up);
}
