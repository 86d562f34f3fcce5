//! Operator commands: a hand-over (`coordinator_setActiveSequencer`, `ctl transfer`) and pausing
//! automation (`coordinator_stopElection` / `coordinator_startElection`, `ctl pause` / `ctl resume`).
//!
//! Pause stops automation only (fail-over, election, inspection): an operator's explicit hand-over
//! is accepted while paused, as op-conductor allows, and runs to its end (stop, catch-up, start, or
//! the restart of the old leader when the target never catches up). Fencing runs in any case.
//!
//! | command  | condition                                            | answer                          |
//! |----------|------------------------------------------------------|---------------------------------|
//! | transfer | target not configured                                | `UnknownNode`                   |
//! | transfer | a fail-over call in flight                           | `CallInFlight`                  |
//! | transfer | target not eligible (unhealthy, lagging, fenced, ...) | `Ineligible`                    |
//! | transfer | target already leads (steady)                        | `AlreadyLeader` (a no-op)       |
//! | transfer | steady (paused or not)                               | persist stopping; `Stop(leader)` |
//! | transfer | leaderless (paused or not), target at the stopped hash | persist starting; `Start`      |
//! | transfer | discovering, stopping, catching up, starting         | `NotSteady`                     |
//! | transfer away from `L` | not steady / `L` does not lead / no other eligible candidate | `NotSteady` / `NotLeader` / `NoSuccessor` |
//! | transfer away from `L` | otherwise: the first eligible candidate by priority, then name | as transfer to it          |
//! | pause    | already paused                                       | `AlreadyPaused`                 |
//! | resume   | not paused                                           | `NotPaused`                     |
//! | pause / resume | otherwise                                      | persist; `Paused` / `Resumed`   |
//!
//! Every refusal is a [`CommandError`] whose text names the `op-coordinator ctl` verb that helps,
//! never an RPC name: operators meet these texts through `ctl`.

use super::{Action, Event, EventKind, FailoverEngine, Pending, StopPurpose, View};
use crate::state::Phase;
use alloy_primitives::B256;
use opc_wire::text::Echo;

/// Who an operator's hand-over goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandoverTarget {
    /// This node (`coordinator_setActiveSequencer`, `conductor_transferLeaderToServer`).
    Named(String),
    /// Whoever the election order puts first among the eligible candidates other than this node,
    /// which must lead (`conductor_transferLeader` on the leader's path).
    AwayFrom(String),
}

/// Why an operator command was refused or did not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// No such node.
    #[error(
        "no sequencer named {} in this chain; its sequencers are {}",
        Echo(.node),
        .known.join(", ")
    )]
    UnknownNode {
        /// The name asked for.
        node: String,
        /// The configured names, so the operator sees the right spelling.
        known: Vec<String>,
    },
    /// The target may not lead.
    #[error("{node} cannot take over: {why}; `op-coordinator ctl status` shows every node's health")]
    Ineligible {
        /// The node.
        node: String,
        /// Why.
        why: String,
    },
    /// A step of a fail-over or hand-over awaits a node's answer.
    #[error(
        "{call} is in flight; `op-coordinator ctl events` shows when it ends, then run `op-coordinator ctl transfer` again"
    )]
    CallInFlight {
        /// The call, e.g. `a stop of seq-0`.
        call: String,
    },
    /// A fail-over or the start-up discovery is under way.
    #[error(
        "the chain is {phase}, not steady: `op-coordinator ctl events` shows its progress; run `op-coordinator ctl transfer` again once `op-coordinator ctl status` shows it steady"
    )]
    NotSteady {
        /// The phase's name.
        phase: &'static str,
    },
    /// Steady without a leader: nothing to hand over from (a state written by hand).
    #[error(
        "the chain is steady but holds no leader; `op-coordinator ctl status` shows which node sequences"
    )]
    NoLeader,
    /// Already the case.
    #[error("{0} is already the active sequencer")]
    AlreadyLeader(String),
    /// A hand-over away from a node that does not lead.
    #[error(
        "{node} does not lead this chain ({}), so there is nothing to hand over from it; `op-coordinator ctl transfer` moves the role to a node you name",
        match .leader { Some(leader) => format!("{leader} does"), None => "no node does right now".to_owned() }
    )]
    NotLeader {
        /// The node asked to hand over.
        node: String,
        /// The leader, if any.
        leader: Option<String>,
    },
    /// A hand-over away from the leader with no other candidate able to take over.
    #[error(
        "no other node can take over from {from}: no other candidate is eligible; `op-coordinator ctl status` shows every node's health"
    )]
    NoSuccessor {
        /// The leader.
        from: String,
    },
    /// The actor is already answering another hand-over.
    #[error("a hand-over to {target} is already in progress; `op-coordinator ctl events` shows its progress")]
    HandoverInProgress {
        /// Its target.
        target: String,
    },
    /// The chain is watched but not acted on (its block time unknown or contradicted).
    #[error("chain {chain} is not acted on: {why}; `op-coordinator ctl status` says the same")]
    NotActedOn {
        /// The chain.
        chain: String,
        /// Why.
        why: String,
    },
    /// A second pause.
    #[error("already paused: automation stays off until `op-coordinator ctl resume`")]
    AlreadyPaused,
    /// A resume of a chain that is not paused.
    #[error("not paused: automation is running (`op-coordinator ctl pause` stops it)")]
    NotPaused,
    /// The change could not be made durable, so it was not made.
    #[error(
        "could not persist the change, so nothing was done; the coordinator's log says why (is its data_dir writable?)"
    )]
    NotPersisted,
    /// A replica that does not act got the command (the API forwards changes to the leader first).
    #[error(
        "this replica is not acting: it is not the Raft leader, or a quorum has not confirmed its leadership within the lease (overload, partition); retry, or send the call to the leader replica (`op-coordinator ctl cluster status` names it)"
    )]
    NotActing,
    /// The replica answering the hand-over stopped acting before it ended.
    #[error(
        "this replica lost Raft leadership during the hand-over; `op-coordinator ctl status` on the \
         new leader replica shows whether it completed, then run `op-coordinator ctl transfer` again if not"
    )]
    LostLeadership,
    /// The coordinator stopped before the hand-over ended.
    #[error(
        "the coordinator is shutting down; once it is back, `op-coordinator ctl status` shows whether \
         the hand-over completed"
    )]
    ShuttingDown,
    /// The hand-over began but was abandoned; the engine's reason.
    #[error("{0}")]
    HandoverFailed(String),
}

impl CommandError {
    /// True when the command asked for what already holds (a second pause, a resume while
    /// running): nothing changed, and `ctl` says so without failing.
    pub fn is_unchanged(&self) -> bool {
        matches!(self, Self::AlreadyPaused | Self::NotPaused)
    }
}

impl FailoverEngine {
    /// `coordinator_setActiveSequencer`: validates and begins a graceful hand-over, paused or not.
    /// Its end comes as [`super::Outcome::HandoverFinished`].
    pub fn transfer(&mut self, view: &View<'_>, to: &str) -> Result<Vec<Action>, CommandError> {
        self.restore_catch_up_deadline(view);
        if view.member(to).is_none() {
            let known = view.members.iter().map(|member| member.name.clone()).collect();
            return Err(CommandError::UnknownNode { node: to.to_owned(), known });
        }
        if let Some(pending) = &self.pending {
            return Err(CommandError::CallInFlight { call: pending.describe() });
        }
        if let Some(why) = view.ineligibility(to) {
            return Err(CommandError::Ineligible { node: to.to_owned(), why });
        }
        let mut out = Vec::new();
        match view.state.phase.clone() {
            Phase::Steady => {
                let Some(leader) = view.state.leader.clone() else {
                    return Err(CommandError::NoLeader);
                };
                if leader == to {
                    return Err(CommandError::AlreadyLeader(leader));
                }
                self.persist(&mut out, view, |state| {
                    state.phase = Phase::Stopping { from: leader.clone(), target: Some(to.to_owned()) };
                });
                self.begin_handover(view, to, format!("operator hand-over from {leader} to {to}"), &mut out);
                out.push(Action::Stop { node: leader, purpose: StopPurpose::Handover });
            }
            Phase::Leaderless => {
                let hash = Self::leaderless_start_hash(view, to)?;
                self.persist(&mut out, view, |state| {
                    state.stopped_hash = Some(hash);
                    state.phase = Phase::Starting { target: to.to_owned(), from: None };
                });
                self.begin_handover(view, to, format!("operator start of {to} at {hash}"), &mut out);
                out.push(Action::Start { node: to.to_owned(), hash });
            }
            other => return Err(CommandError::NotSteady { phase: other.name() }),
        }
        self.finish(view, &mut out);
        Ok(out)
    }

    /// [`FailoverEngine::transfer`] to `target`, resolved first: the node the hand-over goes to,
    /// and the actions that begin it.
    pub fn transfer_to(
        &mut self,
        view: &View<'_>,
        target: &HandoverTarget,
    ) -> Result<(String, Vec<Action>), CommandError> {
        let to = match target {
            HandoverTarget::Named(node) => node.clone(),
            HandoverTarget::AwayFrom(leader) => Self::successor(view, leader)?,
        };
        let actions = self.transfer(view, &to)?;
        Ok((to, actions))
    }

    /// The first eligible candidate in election order (priority, then name) other than `leader`,
    /// which must be the steady chain's leader.
    fn successor(view: &View<'_>, leader: &str) -> Result<String, CommandError> {
        if !matches!(view.state.phase, Phase::Steady) {
            return Err(CommandError::NotSteady { phase: view.state.phase.name() });
        }
        if view.state.leader.as_deref() != Some(leader) {
            return Err(CommandError::NotLeader {
                node: leader.to_owned(),
                leader: view.state.leader.clone(),
            });
        }
        view.by_priority()
            .into_iter()
            .find(|member| member.name != leader)
            .map(|member| member.name.clone())
            .ok_or_else(|| CommandError::NoSuccessor { from: leader.to_owned() })
    }

    /// Whether pause holds back this evaluation: it stops automation, not a hand-over the operator
    /// asked for (in this process, or persisted with its target before a restart).
    pub(super) fn held_by_pause(&self, view: &View<'_>) -> bool {
        let operator_move = self.handover.is_some()
            || matches!(
                &view.state.phase,
                Phase::Stopping { target: Some(_), .. } | Phase::CatchingUp { target: Some(_), .. }
            );
        view.state.paused && !operator_move
    }

    fn begin_handover(&mut self, view: &View<'_>, to: &str, detail: String, out: &mut Vec<Action>) {
        self.failover_started_at = Some(view.now);
        self.step_started_at = Some(view.now);
        self.handover = Some(to.to_owned());
        Self::emit(out, Event::info(EventKind::HandoverRequested, Some(to), detail));
    }

    /// Where an operator may start `to` in a leaderless chain: at the stopped hash, or without
    /// one at its own head if it is the most advanced.
    fn leaderless_start_hash(view: &View<'_>, to: &str) -> Result<B256, CommandError> {
        match view.state.stopped_hash {
            Some(hash) if view.head_hash(to) == Some(hash) => Ok(hash),
            Some(hash) => Err(CommandError::Ineligible {
                node: to.to_owned(),
                why: format!("it is not at the stopped hash {hash}"),
            }),
            None => {
                let best = view.most_advanced(None).map(|member| member.name.clone());
                if best.as_deref() != Some(to) {
                    return Err(CommandError::Ineligible {
                        node: to.to_owned(),
                        why: format!("{} is more advanced", best.as_deref().unwrap_or("another node")),
                    });
                }
                Ok(view.head_hash(to).unwrap_or_default())
            }
        }
    }

    /// `coordinator_stopElection` / `coordinator_startElection`; asking for the state the chain
    /// is already in is refused as [`CommandError::is_unchanged`], so the operator hears it.
    pub fn set_paused(&mut self, view: &View<'_>, paused: bool) -> Result<Vec<Action>, CommandError> {
        self.restore_catch_up_deadline(view);
        match (view.state.paused, paused) {
            (true, true) => return Err(CommandError::AlreadyPaused),
            (false, false) => return Err(CommandError::NotPaused),
            _ => {}
        }
        let mut out = Vec::new();
        self.persist(&mut out, view, |state| state.paused = paused);
        let event = if paused {
            let detail = "automation paused by operator: no fail-over, election or inspection until \
                          resumed; `op-coordinator ctl transfer` still hands over";
            Event::warn(EventKind::Paused, None, detail)
        } else {
            Event::info(EventKind::Resumed, None, "automation resumed by operator")
        };
        Self::emit(&mut out, event);
        self.finish(view, &mut out);
        Ok(out)
    }
}

impl Pending {
    /// The call as an operator reads it, e.g. `a stop of seq-0`.
    fn describe(&self) -> String {
        match self {
            Pending::Stop(node) => format!("a stop of {node}"),
            Pending::ReadHead(node) => format!("a head read of {node}"),
            Pending::Start(node) => format!("a start of {node}"),
            Pending::CheckActive(node) => format!("an activity check of {node}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::fixtures::*;

    #[tokio::test(start_paused = true)]
    async fn a_hand_over_is_refused_to_a_target_that_is_unknown_ineligible_or_already_leading() {
        let mut chain = handover_chain();
        let known: Vec<String> = ["a", "b", "c", "d", "e", "f", "g"].map(String::from).to_vec();
        assert_eq!(refusal(&mut chain, "zed"), CommandError::UnknownNode { node: "zed".into(), known });
        assert_ineligible(refusal(&mut chain, "d"), "d", "not a candidate");
        assert_ineligible(refusal(&mut chain, "e"), "e", "fenced");
        assert_ineligible(refusal(&mut chain, "f"), "f", "execution_lag");
        assert_ineligible(refusal(&mut chain, "g"), "g", "lagging");
        assert_eq!(refusal(&mut chain, "a"), CommandError::AlreadyLeader("a".into()));
        assert_eq!(chain.state, ChainState { fenced: fenced(&["e"]), ..steady("a") }, "nothing persisted");
    }

    #[tokio::test(start_paused = true)]
    async fn a_hand_over_is_refused_while_a_call_is_in_flight_or_a_fail_over_is_under_way() {
        let mut chain = handover_chain();
        chain.transfer("c").expect("first hand-over");
        assert_eq!(refusal(&mut chain, "b"), CommandError::CallInFlight { call: "a stop of a".into() });

        let mut chain = Chain::new(ABC, catching_up("a", 20));
        chain.head("a", 20).head("b", 19).head("c", 19);
        assert_eq!(refusal(&mut chain, "b"), CommandError::NotSteady { phase: "catching_up" });
    }

    #[tokio::test(start_paused = true)]
    async fn a_hand_over_away_from_the_leader_goes_to_the_first_eligible_candidate_by_priority() {
        let mut chain = handover_chain();
        // b has the highest priority among the eligible (d is no candidate, e fenced, f and g not ready).
        let (to, _) = chain.transfer_to(&HandoverTarget::AwayFrom("a".into())).expect("away from a");
        assert_eq!(to, "b");
        let mut chain = handover_chain();
        chain.at(200).fail("b", unreachable()).fail("b", unreachable());
        let (to, _) = chain.transfer_to(&HandoverTarget::AwayFrom("a".into())).expect("away from a");
        assert_eq!(to, "c", "b is unhealthy: the next by priority, then name");
    }

    #[tokio::test(start_paused = true)]
    async fn a_hand_over_away_from_a_node_that_does_not_lead_or_to_nobody_is_refused() {
        let mut chain = handover_chain();
        let refused = chain.transfer_to(&HandoverTarget::AwayFrom("b".into())).expect_err("b does not lead");
        assert_eq!(refused, CommandError::NotLeader { node: "b".into(), leader: Some("a".into()) });
        let mut alone = Chain::new(&[("a", 1, true), ("d", 1, false)], steady("a"));
        alone.head("a", 20).head("d", 20);
        let refused = alone.transfer_to(&HandoverTarget::AwayFrom("a".into())).expect_err("nobody else");
        assert_eq!(refused, CommandError::NoSuccessor { from: "a".into() });
        let mut chain = Chain::new(ABC, catching_up("a", 20));
        chain.head("a", 20).head("b", 19).head("c", 19);
        let refused = chain.transfer_to(&HandoverTarget::AwayFrom("a".into())).expect_err("not steady");
        assert_eq!(refused, CommandError::NotSteady { phase: "catching_up" });
    }

    /// Each refusal in the words an operator reads through `ctl`: the verb that helps, no RPC
    /// name, and no "when the chain is steady" while it is.
    #[test]
    fn every_refusal_names_the_ctl_verb_that_helps_and_no_rpc() {
        let cases = [
            (
                CommandError::UnknownNode { node: "zed".into(), known: vec!["a".into()] },
                "its sequencers are a",
            ),
            (CommandError::Ineligible { node: "d".into(), why: "x".into() }, "`op-coordinator ctl status`"),
            (CommandError::CallInFlight { call: "a stop of a".into() }, "`op-coordinator ctl events`"),
            (CommandError::NotSteady { phase: "stopping" }, "`op-coordinator ctl status` shows it steady"),
            (CommandError::NoLeader, "`op-coordinator ctl status`"),
            (CommandError::HandoverInProgress { target: "c".into() }, "`op-coordinator ctl events`"),
            (
                CommandError::AlreadyPaused,
                "already paused: automation stays off until `op-coordinator ctl resume`",
            ),
            (CommandError::NotPaused, "not paused: automation is running (`op-coordinator ctl pause`"),
            (CommandError::NotPersisted, "data_dir"),
            (CommandError::NotActing, "`op-coordinator ctl cluster status`"),
            (CommandError::NotLeader { node: "b".into(), leader: Some("a".into()) }, "(a does)"),
            (CommandError::NoSuccessor { from: "a".into() }, "`op-coordinator ctl status`"),
        ];
        for (refusal, says) in cases {
            let text = refusal.to_string();
            assert!(text.contains(says), "{refusal:?}: {text}");
            assert!(!text.contains("coordinator_") && !text.contains("Election"), "an RPC name in {text}");
            assert!(!text.contains("busy"), "{text}");
        }
        let steady_only = CommandError::NotSteady { phase: "catching_up" }.to_string();
        assert!(steady_only.starts_with("the chain is catching_up, not steady"), "{steady_only}");
        let long = "x".repeat(900_000);
        let echoed = CommandError::UnknownNode { node: long, known: vec!["a".into()] }.to_string();
        assert!(echoed.len() < 200 && echoed.contains("(900000 bytes)"), "{echoed}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_hand_over_while_paused_runs_to_its_end_and_the_chain_stays_paused() {
        let mut chain = handover_chain();
        chain.set_paused(true).expect("pause");
        let paused = ChainState { paused: true, fenced: fenced(&["e"]), ..steady("a") };
        let handing_over =
            with_phase(&paused, Phase::Stopping { from: "a".into(), target: Some("c".into()) });
        assert_eq!(
            chain.transfer("c").expect("an operator's hand-over is accepted while paused"),
            [persist(handing_over), event(EventKind::HandoverRequested, "c"), stop("a", Handover)]
        );
        chain.stopped("a", Handover, Ok(hash(20)));
        chain.at(300).head("c", 20);
        let steps = chain.tick();
        assert!(steps.contains(&start("c", 20)), "the catch-up runs while paused: {steps:?}");
        chain.started("c", Ok(()));
        assert_eq!((chain.state.leader.as_deref(), chain.state.paused), (Some("c"), true));
        assert_eq!(chain.outcomes.last(), Some(&Outcome::HandoverFinished(Ok(()))));

        // Automation stays paused: the new leader, unhealthy, is left alone.
        chain.probe("c", probe(chain.now, 20, 20, 4));
        assert_eq!(chain.at(10_000).tick(), []);
    }

    #[tokio::test(start_paused = true)]
    async fn a_paused_hand_over_interrupted_by_a_restart_is_resumed_but_a_fail_over_is_not() {
        let handing_over = with_phase(
            &ChainState { paused: true, ..steady("a") },
            Phase::Stopping { from: "a".into(), target: Some("c".into()) },
        );
        let mut chain = Chain::new(ABC, handing_over);
        chain.head("a", 20).head("b", 20).head("c", 20);
        assert_eq!(chain.tick(), [event(EventKind::Resuming, "a"), stop("a", Handover)]);

        let failing_over = with_phase(
            &ChainState { paused: true, ..steady("a") },
            Phase::Stopping { from: "a".into(), target: None },
        );
        let mut chain = Chain::new(ABC, failing_over);
        chain.head("a", 20).head("b", 20).head("c", 20);
        assert_eq!(chain.tick(), [], "automation's own fail-over waits for `ctl resume`");
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
        let view = View {
            state: &state,
            members: &members,
            health: &health,
            now,
            unix_ms: UNIX_T0_MS,
            self_lag: SelfLag::on_time(now),
            conductor: None,
        };
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
            [persist(handing_over), event(EventKind::HandoverRequested, "c"), stop("a", Handover)]
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
            node_urls: Default::default(),
        };
        assert_eq!(
            chain.stopped("a", Handover, Ok(hash(20))),
            [persist(stopped.clone()), event(EventKind::Stopped, "a")]
        );
        assert_eq!(chain.at(200).tick(), [], "b, of higher priority, is at the hash but is not the target");
        chain.at(300).head("c", 20);
        let starting_state = with_phase(&stopped, starting("c", Some("a")));
        assert_eq!(
            chain.tick(),
            [persist(starting_state.clone()), event(EventKind::CaughtUp, "c"), start("c", 20)]
        );
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
        assert_eq!(chain.at(3100).tick(), catch_up_timed_out(&stopped, "a", 20));
    }

    #[tokio::test(start_paused = true)]
    async fn a_hand_over_whose_stop_fails_is_abandoned() {
        let mut chain = handover_chain();
        let before = chain.state.clone();
        chain.transfer("c").expect("hand-over");
        assert_eq!(
            chain.stopped("a", Handover, Err(timeout())),
            [persist(before), event(EventKind::HandoverFailed, "a")]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_hand_over_in_a_leaderless_chain_starts_the_target_only_at_the_stopped_hash() {
        let state =
            ChainState { stopped_hash: Some(hash(20)), phase: Phase::Leaderless, ..Default::default() };
        let mut chain = Chain::new(ABC, state.clone());
        chain.head("a", 20).head("b", 19).head("c", 20);
        assert_ineligible(refusal(&mut chain, "b"), "b", "stopped hash");
        assert_eq!(
            chain.transfer("c").expect("hand-over"),
            [
                persist(with_phase(&state, starting("c", None))),
                event(EventKind::HandoverRequested, "c"),
                start("c", 20)
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_paused_engine_acts_on_no_tick_until_resumed() {
        let mut chain = Chain::new(ABC, steady("a"));
        let lagging_geth = probe(chain.now, 20, 20, 4);
        chain.probe("a", lagging_geth).head("b", 20).head("c", 20);
        let paused = ChainState { paused: true, ..steady("a") };
        assert_eq!(chain.set_paused(true), Ok(vec![persist(paused.clone()), chain_event(EventKind::Paused)]));
        assert_eq!(chain.set_paused(true), Err(CommandError::AlreadyPaused));
        assert_eq!(chain.state, paused, "a second pause persists nothing");
        assert_eq!(chain.tick(), []);
        assert_eq!(chain.at(10_000).tick(), []);
        assert_eq!(chain.set_paused(false), Ok(vec![persist(steady("a")), chain_event(EventKind::Resumed)]));
        assert_eq!(chain.set_paused(false), Err(CommandError::NotPaused));
        assert_eq!(chain.tick(), a_stopped_as_unhealthy());
    }

    #[tokio::test(start_paused = true)]
    async fn a_hand_over_that_completes_is_counted_as_one_and_answers_the_operator() {
        let mut chain = handover_chain();
        chain.transfer("c").expect("hand-over");
        chain.at(150).stopped("a", Handover, Ok(hash(20)));
        chain.at(300).head("c", 20).tick();
        chain.started("c", Ok(()));
        let outcome = FailoverOutcome::Handover;
        let took = Some(Duration::from_millis(200));
        assert_eq!(
            chain.outcomes,
            [Outcome::Failover { outcome, duration: took }, Outcome::HandoverFinished(Ok(()))],
            "from the request at 100 ms to the start at 300 ms"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_hand_over_whose_stop_fails_answers_the_operator_with_the_reason() {
        let mut chain = handover_chain();
        chain.transfer("c").expect("hand-over");
        chain.stopped("a", Handover, Err(timeout()));
        assert!(
            matches!(&chain.outcomes[..], [Outcome::HandoverFinished(Err(why))] if why.contains("hand-over aborted")),
            "{:?}",
            chain.outcomes
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_automatic_fail_over_is_counted_as_a_success_with_its_duration() {
        let mut chain = stopping_a();
        chain.at(50).stopped("a", Failover, Ok(hash(20)));
        chain.at(80).head("b", 20).tick();
        chain.at(120).started("b", Ok(()));
        let outcome = FailoverOutcome::Success;
        let took = Some(Duration::from_millis(120));
        assert_eq!(chain.outcomes, [Outcome::Failover { outcome, duration: took }]);
    }
}
