//! Steady: watch the leader; stop an unhealthy one that answers, and fence an unreachable one
//! whose chain stopped (decision table rows "steady").

use super::{Action, Event, EventKind, FailoverEngine, StopPurpose, View};
use crate::{
    health::{NodeHealth, Reason},
    state::Phase,
};
use tokio::time::Instant;

impl FailoverEngine {
    pub(super) fn watch_leader(&mut self, view: &View<'_>, out: &mut Vec<Action>) {
        let Some(leader) = view.state.leader.clone() else {
            self.persist(out, view, |state| state.phase = Phase::Leaderless);
            return;
        };
        if self.leader_since.is_none() {
            self.leader_since = Some(view.now);
        }
        if self.watch_conducted_leader(view, &leader, out) {
            return;
        }
        let Some(node) = view.node(&leader) else { return };
        if node.healthy {
            self.failover_started_at = None;
            self.holding_on_timing = false;
            return;
        }
        if node.reason == Reason::Ok {
            // Its latest probe passed: it is recovering, and the success threshold will restore
            // its verdict. Failing over now would replace a leader that is producing.
            return;
        }
        if self.hold_on_timing(view, &leader, node, out) {
            return;
        }
        // The fail-over clock starts when the leader is first judged unhealthy, so the reported
        // duration includes the wait for the chain to be declared stopped.
        let detected_at = *self.failover_started_at.get_or_insert(view.now);
        let unstoppable =
            self.unstoppable_until.as_ref().is_some_and(|(name, until)| *name == leader && view.now < *until);
        let cut_off = !node.reachable || node.admin_disabled || unstoppable;
        if !cut_off {
            self.persist(out, view, |state| {
                state.phase = Phase::Stopping { from: leader.clone(), target: None }
            });
            self.step_started_at = Some(view.now);
            let detail = format!("leader unhealthy ({}: {}); stopping it", node.reason.code(), node.detail);
            Self::emit(out, Event::info(EventKind::LeaderUnhealthy, Some(&leader), detail));
            out.push(Action::Stop { node: leader, purpose: StopPurpose::Failover });
            return;
        }
        if self.chain_lives_without(view, &leader, node, out) {
            return;
        }
        self.fence_leader(view, &leader, node, detected_at, out);
    }

    /// True when an unreachable (or unstoppable) leader must not be replaced: it was started
    /// moments ago, or the chain still advances without it (then said, at most every 10 s).
    fn chain_lives_without(
        &mut self,
        view: &View<'_>,
        leader: &str,
        node: &NodeHealth,
        out: &mut Vec<Action>,
    ) -> bool {
        // A leader we started less than a window ago: the hand-over itself was a pause in which
        // nobody sealed, so "no follower advanced for a window" says nothing about it yet.
        let window = self.settings.chain_liveness_window;
        if self.started_leader_at.is_some_and(|at| view.now.saturating_duration_since(at) <= window) {
            return true;
        }
        if !view.chain_alive_without(leader, window) {
            return !self.chain_seen_stopped(view, leader, node, out);
        }
        // For a leader that went silent, say "alive" only with evidence: a follower's head
        // moved after its last answer. Until then we are simply waiting out the window.
        let moved_since = view.health.chain_advanced_at(leader) > node.last_answer_at;
        if !node.reachable && !moved_since {
            return true;
        }
        let detail = format!(
            "leader does not answer us ({}: {}) but the chain still advances: it is alive; not failing over",
            node.reason.code(),
            node.detail
        );
        self.announce(out, view.now, EventKind::LeaderCutOff, Some(leader), detail);
        true
    }

    /// "No follower advanced" is evidence that the chain stopped only if some follower answers:
    /// a coordinator that reaches no node at all (its own network is cut, replica seed 85) sees
    /// every head stand still while the leader may be sealing. True when a follower answered its
    /// latest probe; otherwise says so (at most every 10 s) and the leader is left alone.
    fn chain_seen_stopped(
        &mut self,
        view: &View<'_>,
        leader: &str,
        node: &NodeHealth,
        out: &mut Vec<Action>,
    ) -> bool {
        let witness = view.members.iter().any(|member| member.name != leader && view.answers(&member.name));
        if !witness {
            let detail = format!(
                "leader does not answer us ({}: {}), and no other node answers either: this coordinator may be \
                 cut off from the nodes, so their heads standing still says nothing; not failing over",
                node.reason.code(),
                node.detail
            );
            self.announce(out, view.now, EventKind::NoNodeAnswers, Some(leader), detail);
        }
        witness
    }

    /// The leader is cut off and its chain stopped: fence it and fail over from the most advanced
    /// head any node holds (an estimate: the leader never answered a stop).
    fn fence_leader(
        &mut self,
        view: &View<'_>,
        leader: &str,
        node: &NodeHealth,
        detected_at: Instant,
        out: &mut Vec<Action>,
    ) {
        let Some(best) = view.most_advanced(Some(leader)) else {
            let detail = format!(
                "leader unreachable ({}) and chain stopped, but no eligible candidate",
                node.reason.code()
            );
            self.announce(out, view.now, EventKind::NoCandidate, Some(leader), detail);
            return;
        };
        let Some((holder, tip)) = view.network_tip(leader) else { return };
        let hash = tip.hash;
        self.persist(out, view, |state| {
            state.fenced.insert(leader.to_owned());
            state.leader = None;
            state.stopped_hash = Some(hash);
            state.stopped_hash_estimated = true;
            state.phase = Phase::CatchingUp { from: leader.to_owned(), target: None };
        });
        self.step_started_at = Some(view.now);
        self.catch_up_deadline = Some(view.now + self.settings.catch_up_timeout);
        let detail = format!(
            "leader unreachable ({}: {}) and no follower advanced for {} ms: chain stopped. Fencing it \
             (stopped as soon as it answers) and failing over from the most advanced head {hash} \
             ({holder} at {}; {} is the most advanced candidate)",
            node.reason.code(),
            node.detail,
            self.settings.chain_liveness_window.as_millis(),
            tip.number,
            best.name
        );
        let event = Event::warn(EventKind::LeaderFenced, Some(leader), detail);
        Self::emit(out, event.took(Some(view.now.saturating_duration_since(detected_at))));
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::fixtures::*;

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
        let mut chain = a_leading_at_10();
        assert_eq!(chain.tick(), []);
        chain.at(2600).head("a", 10);
        assert_eq!(chain.tick(), a_stopped_as_unhealthy());
    }

    #[tokio::test(start_paused = true)]
    async fn an_unreachable_leader_is_not_replaced_while_a_follower_still_advances() {
        let mut chain = a_leading_at_10();
        chain.at(1000).fail("a", unreachable()).head("b", 11);
        assert_eq!(chain.tick(), [event(EventKind::LeaderCutOff, "a")]);
        chain.at(2000).head("b", 12);
        assert_eq!(chain.tick(), [], "said at most every ten seconds");
        chain.at(10_999).head("b", 13);
        assert_eq!(chain.tick(), []);
        chain.at(11_000).head("b", 14);
        assert_eq!(chain.tick(), [event(EventKind::LeaderCutOff, "a")]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_coordinator_that_reaches_no_node_fences_nobody() {
        // Replica seed 85: the acting replica was cut off from every node just as the leader
        // resumed after a stall. Every head stood still in its view, so "no follower advanced"
        // looked like a stopped chain, and it fenced a leader that was sealing.
        let mut chain = a_leading_at_10();
        chain.at(100).fail("a", timeout()).fail("b", timeout()).fail("c", timeout());
        chain.at(1600).fail("a", timeout()).fail("b", timeout()).fail("c", timeout());
        assert_eq!(chain.tick(), [event(EventKind::NoNodeAnswers, "a")]);
        assert_eq!(chain.at(1700).tick(), [], "said at most every ten seconds");
        // Once a follower answers and its head stands still, the chain has stopped.
        chain.at(1800).head("b", 10);
        assert_eq!(chain.tick(), [persist(a_fenced_at(10)), event(EventKind::LeaderFenced, "a")]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_leader_with_a_disabled_admin_api_counts_as_cut_off_not_as_stoppable() {
        let mut chain = a_leading_at_10();
        chain.at(500).active("a", Err(rpc(AdminError::AdminDisabled))).head("a", 11).head("b", 11);
        assert_eq!(chain.tick(), [event(EventKind::LeaderCutOff, "a")]);
    }

    #[tokio::test(start_paused = true)]
    async fn an_unreachable_leader_of_a_stopped_chain_is_fenced_and_the_most_advanced_candidate_takes_over() {
        let mut chain = a_silent_at_1500_with_the_chain_stopped_at_12();
        assert_eq!(
            chain.tick(),
            [],
            "followers last moved before the leader went silent: no evidence it lives, waiting out the window"
        );
        let fenced_state = a_fenced_at(12);
        assert_eq!(
            chain.at(1501).tick(),
            [persist(fenced_state.clone()), event(EventKind::LeaderFenced, "a")]
        );
        // c has the higher priority but is not at the stopped hash: b, the most advanced, is started.
        let starting_state = with_phase(&fenced_state, starting("b", Some("a")));
        assert_eq!(
            chain.tick(),
            [persist(starting_state.clone()), event(EventKind::CaughtUp, "b"), start("b", 12)]
        );
        assert_eq!(chain.started("b", Ok(())), became_leader(&starting_state, "b"));
        // The old leader answers again: stopped at once, never counted as a candidate.
        chain.at(4000).head("a", 12);
        assert_eq!(chain.tick(), [event(EventKind::FenceStopping, "a"), stop("a", Fence)]);
    }

    #[tokio::test(start_paused = true)]
    async fn an_unreachable_leader_of_a_stopped_chain_is_only_reported_when_nobody_can_take_over() {
        let mut chain = Chain::new(&[("a", 1, true), ("b", 1, true), ("c", 1, false)], steady("a"));
        chain.head("a", 12).fail("b", malformed()).head("c", 12);
        chain.at(1600).fail("a", unreachable());
        assert_eq!(chain.tick(), [event(EventKind::NoCandidate, "a")]);
        assert_eq!(chain.at(1700).tick(), []);
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
        assert_eq!(chain.tick(), [event(EventKind::LeaderCutOff, "a")]);
        assert!(!chain.health.nodes["a"].healthy);
        // The first good probe: the verdict is still unhealthy (success threshold not met), but the
        // reason is ok, so the leader is left alone.
        chain.at(300).head("a", 12).head("b", 12).head("c", 12);
        assert!(!chain.health.nodes["a"].healthy);
        assert_eq!(chain.tick(), []);
    }

    #[tokio::test(start_paused = true)]
    async fn an_unreachable_leader_is_replaced_from_the_most_advanced_head_any_node_holds_not_only_eligible_ones()
     {
        let mut chain = Chain::new(ABC, steady("a"));
        // b holds block 13 but is unhealthy (its op-geth answers garbage); c is eligible at 11.
        chain.head("a", 13).head("c", 11);
        chain.probe("b", {
            let mut probe = probe(chain.now, 13, 13, 13);
            probe.geth.as_mut().expect("asked").result = Err(CallError::Malformed("garbage".into()));
            probe
        });
        chain.at(1600).fail("a", unreachable());
        let actions = chain.tick();
        assert_eq!(actions, [persist(a_fenced_at(13)), event(EventKind::LeaderFenced, "a")]);
        // c is not at 13: nobody starts it at 11 (that would re-org block 13).
        assert_eq!(chain.tick(), []);
        chain.at(1700).head("c", 13);
        assert!(chain.tick().contains(&start("c", 13)));
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
            !steps.contains(&event(EventKind::LeaderFenced, "b")),
            "a leader started 50 ms ago was fenced for the hand-over's own pause: {steps:?}"
        );
        // Once a whole window has passed since its start with the chain still silent, it is.
        chain.at(3300).fail("b", timeout());
        assert!(chain.tick().contains(&event(EventKind::LeaderFenced, "b")));
    }
}
