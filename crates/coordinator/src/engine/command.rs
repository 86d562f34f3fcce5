//! Operator commands: a hand-over (`coordinator_setActiveSequencer`) and pausing automation
//! (`coordinator_stopElection` / `coordinator_startElection`).

use super::{Action, CommandError, Event, EventKind, FailoverEngine, StopPurpose, View};
use crate::state::Phase;
use alloy_primitives::B256;

impl FailoverEngine {
    /// `coordinator_setActiveSequencer`: validates and begins a graceful hand-over. Its end comes
    /// as [`super::Outcome::HandoverFinished`].
    pub fn transfer(&mut self, view: &View<'_>, to: &str) -> Result<Vec<Action>, CommandError> {
        self.restore_catch_up_deadline(view);
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
            other => return Err(CommandError::Busy(format!("the chain is {}", other.name()))),
        }
        self.finish(view, &mut out);
        Ok(out)
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

    /// `coordinator_stopElection` / `coordinator_startElection`.
    pub fn set_paused(&mut self, view: &View<'_>, paused: bool) -> Vec<Action> {
        self.restore_catch_up_deadline(view);
        let mut out = Vec::new();
        if view.state.paused == paused {
            return out;
        }
        self.persist(&mut out, view, |state| state.paused = paused);
        let event = if paused {
            let detail = "automation paused by operator: no fail-over, election or inspection until resumed";
            Event::warn(EventKind::Paused, None, detail)
        } else {
            Event::info(EventKind::Resumed, None, "automation resumed by operator")
        };
        Self::emit(&mut out, event);
        self.finish(view, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::fixtures::*;

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
        let view = View { state: &state, members: &members, health: &health, now, unix_ms: UNIX_T0_MS };
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
        assert_eq!(chain.set_paused(true), [persist(paused), chain_event(EventKind::Paused)]);
        assert_eq!(chain.set_paused(true), [], "already paused");
        assert_eq!(chain.tick(), []);
        assert_eq!(chain.at(10_000).tick(), []);
        assert_eq!(chain.set_paused(false), [persist(steady("a")), chain_event(EventKind::Resumed)]);
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
