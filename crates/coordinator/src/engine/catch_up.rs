//! Catching up and leaderless: start a candidate once it is at the stopped hash; on the catch-up
//! timeout restart the old leader there, start where the whole network converged, or say the
//! chain is leaderless (decision table rows "catching up" and "leaderless").

use super::{
    Action, Event, EventKind, FailoverEngine, FailoverOutcome, Member, Outcome, View, record::Loudness,
};
use crate::state::Phase;
use alloy_primitives::B256;

impl FailoverEngine {
    pub(super) fn catch_up(
        &mut self,
        view: &View<'_>,
        from: &str,
        target: Option<&str>,
        out: &mut Vec<Action>,
    ) {
        let Some(hash) = view.state.stopped_hash else {
            self.persist(out, view, |state| state.phase = Phase::Leaderless);
            return;
        };
        let deadline = *self.catch_up_deadline.get_or_insert(view.now + self.settings.catch_up_timeout);
        let candidates: Vec<&Member> = match target {
            Some(target) => view.member(target).filter(|m| view.eligible(&m.name)).into_iter().collect(),
            None => view.by_priority().into_iter().filter(|member| member.name != from).collect(),
        };
        if self.conducted_catch_up(view, Some(from), out) {
            return;
        }
        // A fenced node that answers is stopped first (see `fence`): starting another before its
        // stop returns could make two sequencers.
        let fencing = self.fence_blocks_start(view);
        if !fencing && let Some((chosen, own_head)) = planted_bug_skip_catch_up(view, &candidates) {
            self.persist(out, view, |state| {
                state.phase = Phase::Starting { target: chosen.name.clone(), from: Some(from.to_owned()) };
            });
            out.push(Action::Start { node: chosen.name.clone(), hash: own_head });
            return;
        }
        if !fencing
            && let Some(chosen) = candidates.iter().find(|member| view.head_hash(&member.name) == Some(hash))
        {
            let waited = self.since_step(view.now);
            self.persist(out, view, |state| {
                state.phase = Phase::Starting { target: chosen.name.clone(), from: Some(from.to_owned()) };
            });
            let detail = format!("{} is at the stopped hash {hash}; starting it", chosen.name);
            Self::emit(out, Event::info(EventKind::CaughtUp, Some(&chosen.name), detail).took(waited));
            self.step_started_at = Some(view.now);
            self.catch_up_deadline = None;
            out.push(Action::Start { node: chosen.name.clone(), hash });
            return;
        }
        if !fencing
            && (self.reestimate_stopped_hash(view, from, hash, out)
                || self.move_to_higher_stop_answer(view, out))
        {
            return;
        }
        if view.now < deadline {
            return;
        }
        self.catch_up_timed_out(view, from, hash, out);
    }

    /// A stopped hash estimated for a fenced leader (no stop answered) came from a probe that
    /// may be stale: when nobody is at it, move it to the most advanced head. True when it did.
    fn reestimate_stopped_hash(
        &mut self,
        view: &View<'_>,
        from: &str,
        hash: B256,
        out: &mut Vec<Action>,
    ) -> bool {
        let estimate_number = view.number_of(hash).unwrap_or(0);
        let Some((holder, best_head)) = view.network_tip(from) else { return false };
        if !view.state.stopped_hash_estimated || best_head.hash == hash || best_head.number < estimate_number
        {
            return false;
        }
        let best_hash = best_head.hash;
        self.persist(out, view, |state| state.stopped_hash = Some(best_hash));
        let detail = format!(
            "the chain's tip moved past the estimated stopped hash {hash}: {holder} is at {best_hash} \
             ({}); candidates must reach that",
            best_head.number
        );
        Self::emit(out, Event::warn(EventKind::StoppedHashReestimated, Some(holder), detail));
        true
    }

    /// Nobody reached the stopped hash in time: restart the old leader there if it can be, else
    /// start where the whole network converged, else the chain is leaderless.
    fn catch_up_timed_out(&mut self, view: &View<'_>, from: &str, hash: B256, out: &mut Vec<Action>) {
        self.catch_up_deadline = None;
        let fencing = self.fence_blocks_start(view);
        let old_leader_ok = !fencing
            && view.node(from).is_some_and(|node| {
                node.healthy && node.reachable && node.unsafe_head.map(|h| h.hash) == Some(hash)
            })
            && !view.state.fenced.contains(from)
            && view.member(from).is_some();
        let timeout_ms = self.settings.catch_up_timeout.as_millis();
        if old_leader_ok {
            self.persist(out, view, |state| {
                state.phase = Phase::Starting { target: from.to_owned(), from: None };
            });
            let detail = format!(
                "no candidate reached the stopped hash {hash} within {timeout_ms} ms; restarting the old leader there"
            );
            let event =
                Event::warn(EventKind::CatchUpTimeout, Some(from), detail).took(self.since_step(view.now));
            Self::emit(out, event);
            let outcome = FailoverOutcome::RestartedOldLeader;
            Self::outcome(out, Outcome::Failover { outcome, duration: None });
            self.step_started_at = Some(view.now);
            out.push(Action::Start { node: from.to_owned(), hash });
            return;
        }
        if !fencing && self.start_at_converged_head(view, hash, Some(from), out) {
            return;
        }
        let detail = format!(
            "no candidate reached the stopped hash {hash} within {timeout_ms} ms and the old leader {from} cannot be \
             restarted there: NO SEQUENCER IS ACTIVE. Watching; any node reaching {hash} will be started"
        );
        self.become_leaderless(out, view, None, detail, Loudness::Now);
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
        self.persist(out, view, |state| {
            state.stopped_hash = Some(converged);
            state.stopped_hash_estimated = false;
            let from = from.filter(|from| *from != chosen).map(str::to_owned);
            state.phase = Phase::Starting { target: chosen.clone(), from };
        });
        let detail = format!(
            "no node can reach the stopped hash {hash} any more: every node, the old leader included, is at \
             {converged}. Starting {chosen} there (nothing any node holds is re-orged)"
        );
        let event = Event::warn(EventKind::StoppedHashSuperseded, Some(&chosen), detail);
        Self::emit(out, event.took(self.since_step(view.now)));
        self.failover_started_at.get_or_insert(view.now);
        self.step_started_at = Some(view.now);
        out.push(Action::Start { node: chosen, hash: converged });
        true
    }

    pub(super) fn leaderless(&mut self, view: &View<'_>, out: &mut Vec<Action>) {
        if self.conducted_catch_up(view, None, out) {
            return;
        }
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
            if self.move_to_higher_stop_answer(view, out)
                || self.start_at_converged_head(view, hash, None, out)
            {
                return;
            }
            let detail =
                format!("NO SEQUENCER IS ACTIVE: no eligible node is at the stopped hash {hash}; watching");
            self.become_leaderless(out, view, None, detail, Loudness::Announce);
            return;
        };
        self.persist(out, view, |state| state.phase = Phase::Starting { target: chosen.clone(), from: None });
        self.failover_started_at.get_or_insert(view.now);
        self.step_started_at = Some(view.now);
        let detail = format!("{chosen} reached the stopped hash {hash}; starting it");
        Self::emit(out, Event::info(EventKind::CaughtUp, Some(&chosen), detail));
        out.push(Action::Start { node: chosen, hash });
    }
}

/// THE PLANTED-BUG HOOK, the only place the feature `planted-bug-skip-catch-up` changes the
/// engine. The chaos runner's `--features planted-bug` enables it to prove the runner catches a
/// coordinator that breaks the stopped-hash rule: with it, a catch-up starts the first candidate
/// at whatever head it has instead of waiting for the stopped hash (re-orgs follow). In every
/// other build this returns None and the catch-up is the one in the decision table.
fn planted_bug_skip_catch_up<'a>(view: &View<'a>, candidates: &[&'a Member]) -> Option<(&'a Member, B256)> {
    if !cfg!(feature = "planted-bug-skip-catch-up") {
        return None;
    }
    let chosen = candidates.first()?;
    Some((chosen, view.head_hash(&chosen.name)?))
}

#[cfg(test)]
mod tests {
    use crate::engine::fixtures::*;

    #[tokio::test(start_paused = true)]
    async fn catch_up_starts_the_first_candidate_by_priority_then_name_that_is_at_the_stopped_hash() {
        let members = [("a", 9, true), ("b", 5, true), ("c", 3, true), ("d", 3, true), ("e", 1, true)];
        let mut chain = Chain::new(&members, catching_up("a", 20));
        // a, the stopped leader, is at the hash but is only restarted on timeout; b has the highest
        // priority but sits on another block 20; e is more advanced on another branch.
        let other_branch = probe(chain.now, 20, 0x77, 20);
        chain.head("a", 20).probe("b", other_branch).head("d", 20).head("c", 20).head("e", 21);
        assert_eq!(chain.tick(), caught_up(&catching_up("a", 20), "c", Some("a"), 20));
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
            [persist(with_phase(&state, Phase::Leaderless)), chain_event(EventKind::Leaderless)],
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
            [persist(restarting.clone()), event(EventKind::CatchUpTimeout, "a"), start("a", 20)]
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
        assert_eq!(chain.at(3000).tick(), [persist(leaderless.clone()), chain_event(EventKind::Leaderless)]);
        assert_eq!(chain.at(4000).tick(), [], "said loudly once");
        // Leaderless, a node reaching the stopped hash is started there.
        chain.at(5000).head("c", 20);
        assert_eq!(chain.tick(), caught_up(&leaderless, "c", None, 20));
    }

    #[tokio::test(start_paused = true)]
    async fn a_catch_up_timeout_never_restarts_a_fenced_old_leader() {
        let state = ChainState { fenced: fenced(&["a"]), ..catching_up("a", 20) };
        let mut chain = Chain::new(ABC, state.clone());
        chain.head("a", 20).head("b", 19).head("c", 18);
        assert_eq!(chain.tick(), [event(EventKind::FenceStopping, "a"), stop("a", Fence)]);
        assert_eq!(chain.stopped("a", Fence, Err(timeout())), [event(EventKind::FenceStopFailed, "a")]);
        chain.at(2900).fail("a", unreachable());
        assert_eq!(
            chain.at(3000).tick(),
            [persist(with_phase(&state, Phase::Leaderless)), chain_event(EventKind::Leaderless)]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn nobody_is_started_while_a_fenced_node_that_answers_is_not_yet_stopped() {
        let state = ChainState { fenced: fenced(&["c"]), ..catching_up("a", 20) };
        let mut chain = Chain::new(ABC, state.clone());
        chain.fail("a", unreachable()).head("b", 20).head("c", 20);
        fenced_node_stopped_first_then_b_started_at_20(&mut chain, "c", state, 100);
    }

    #[tokio::test(start_paused = true)]
    async fn a_leaderless_chain_starts_the_first_eligible_node_that_reaches_the_stopped_hash() {
        let state =
            ChainState { stopped_hash: Some(hash(20)), phase: Phase::Leaderless, ..Default::default() };
        let mut chain = Chain::new(&[("a", 1, true), ("b", 1, true), ("c", 2, true)], state.clone());
        chain.fail("a", unreachable()).head("b", 19).head("c", 19);
        assert_eq!(chain.tick(), [chain_event(EventKind::Leaderless)]);
        chain.at(500).head("b", 20);
        assert_eq!(chain.tick(), caught_up(&state, "b", None, 20));
    }

    #[tokio::test(start_paused = true)]
    async fn an_estimated_stopped_hash_nobody_reaches_moves_to_the_most_advanced_candidate_head() {
        // The fenced leader's hash was estimated from a probe that was one block stale.
        let state =
            ChainState { fenced: fenced(&["a"]), stopped_hash_estimated: true, ..catching_up("a", 20) };
        let mut chain = Chain::new(ABC, state.clone());
        chain.fail("a", unreachable()).head("b", 21).head("c", 21);
        let moved = ChainState { stopped_hash: Some(hash(21)), ..state.clone() };
        assert_eq!(chain.tick(), [persist(moved.clone()), event(EventKind::StoppedHashReestimated, "b")]);
        assert_eq!(chain.tick(), caught_up(&moved, "b", Some("a"), 21));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stopped_hash_returned_by_a_stop_is_never_replaced_by_an_estimate() {
        let state = catching_up("a", 20);
        let mut chain = Chain::new(ABC, state);
        chain.head("a", 20).head("b", 19).head("c", 21);
        assert_eq!(chain.tick(), [], "only a stop's hash is the truth: wait for a candidate to reach it");
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
        assert!(actions.contains(&chain_event(EventKind::Leaderless)), "{actions:?}");
    }
}
