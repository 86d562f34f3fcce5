//! Start-up: adopt the active sequencer, or elect the most advanced node at its own head once
//! heads had time to converge (decision table rows "discovering").

use super::{Action, Event, EventKind, FailoverEngine, View, record::Loudness};
use crate::{health::Reason, state::Phase};

impl FailoverEngine {
    pub(super) fn discover(&mut self, view: &View<'_>, out: &mut Vec<Action>) {
        let observed = view.health.nodes.values().all(|node| node.reason != Reason::Unknown);
        let waited = view.now.saturating_duration_since(self.started_at);
        let actives: Vec<&str> = view
            .members
            .iter()
            .filter(|member| view.node(&member.name).and_then(|node| node.active) == Some(true))
            .map(|member| member.name.as_str())
            .collect();
        let all_inspected = view.health.nodes.values().all(|node| node.active.is_some() || !node.reachable);
        if !actives.is_empty() && (observed && all_inspected || waited >= self.settings.convergence_wait) {
            self.adopt_most_advanced(view, &actives, "at start-up", out);
            return;
        }
        if waited < self.settings.convergence_wait {
            return;
        }
        self.elect_at_own_head(view, out, "no active sequencer at start-up");
    }

    /// Keeps the most advanced of the active sequencers found (`found`: when, for the event;
    /// inspection stops the others).
    pub(super) fn adopt_most_advanced(
        &mut self,
        view: &View<'_>,
        actives: &[&str],
        found: &str,
        out: &mut Vec<Action>,
    ) {
        let Some(keep) = view
            .members
            .iter()
            .filter(|member| actives.contains(&member.name.as_str()))
            .max_by_key(|member| view.advancement(member))
            .map(|member| member.name.clone())
        else {
            return;
        };
        let others: Vec<&str> = actives.iter().copied().filter(|name| *name != keep).collect();
        self.persist(out, view, |state| {
            state.leader = Some(keep.clone());
            state.phase = Phase::Steady;
        });
        self.leader_since = Some(view.now);
        self.stop_answer = None;
        let detail = if others.is_empty() {
            format!("adopted {keep}, the active sequencer found {found}")
        } else {
            format!(
                "adopted {keep}, the most advanced of the active sequencers; inspection stops {}",
                others.join(", ")
            )
        };
        Self::emit(out, Event::info(EventKind::Adopted, Some(&keep), detail));
    }

    /// Starts the most advanced eligible node at its own head. Used only when no stopped hash
    /// exists (nothing was stopped, so no block can be lost).
    pub(super) fn elect_at_own_head(&mut self, view: &View<'_>, out: &mut Vec<Action>, why: &str) {
        if self.elect_at_committed_head(view, why, out) {
            return;
        }
        let Some(best) = view.most_advanced(None) else {
            let detail = format!("{why} and no eligible candidate; watching");
            self.become_leaderless(out, view, None, detail, Loudness::Announce);
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
        // "Heads stood still" is timing evidence: a coordinator short of CPU reads old heads.
        let late = if unseen && !moving { self.timing_unreliable(view) } else { None };
        if unseen && (moving || late.is_some()) {
            let seen = match late {
                Some(late) => format!("heads look still, but {late}"),
                None => {
                    format!("heads advanced within {} ms", self.settings.chain_liveness_window.as_millis())
                }
            };
            let detail = format!(
                "{why}, but {seen}; not every node could be asked whether it sequences: not electing \
                 while one may be active"
            );
            self.announce(out, view.now, EventKind::HiddenSequencer, None, detail);
            return;
        }
        let Some(hash) = view.head_hash(&best.name) else { return };
        self.persist(out, view, |state| {
            state.leader = None;
            state.stopped_hash = Some(hash);
            state.stopped_hash_estimated = false;
            state.phase = Phase::Starting { target: best.name.clone(), from: None };
        });
        self.failover_started_at.get_or_insert(view.now);
        self.step_started_at = Some(view.now);
        let detail = format!("{why}: starting the most advanced candidate at its head {hash}");
        Self::emit(out, Event::info(EventKind::Electing, Some(&best.name), detail));
        out.push(Action::Start { node: best.name.clone(), hash });
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::fixtures::*;

    /// A discovery that elects `b` at its head 12.
    fn electing_b_at_12() -> ChainState {
        ChainState {
            leader: None,
            stopped_hash: Some(hash(12)),
            phase: starting("b", None),
            ..Default::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn discovery_adopts_the_single_active_sequencer_once_every_reachable_node_was_inspected() {
        let mut chain = Chain::new(ABC, ChainState::default());
        chain.head("a", 10).head("b", 10).head("c", 9).active("a", Ok(true)).active("b", Ok(false));
        assert_eq!(chain.tick(), [], "c is reachable but not inspected yet");
        chain.at(100).active("c", Ok(false));
        let adopted = ChainState { leader: Some("a".into()), phase: Phase::Steady, ..Default::default() };
        assert_eq!(chain.tick(), [persist(adopted), event(EventKind::Adopted, "a")]);
    }

    #[tokio::test(start_paused = true)]
    async fn discovery_adopts_an_active_sequencer_after_the_wait_even_if_a_node_was_never_inspected() {
        let mut chain = Chain::new(ABC, ChainState::default());
        chain.head("a", 10).head("b", 10).head("c", 10).active("a", Ok(true)).active("b", Ok(false));
        assert_eq!(chain.at(1999).tick(), []);
        let adopted = ChainState { leader: Some("a".into()), phase: Phase::Steady, ..Default::default() };
        assert_eq!(chain.at(2000).tick(), [persist(adopted), event(EventKind::Adopted, "a")]);
    }

    #[tokio::test(start_paused = true)]
    async fn discovery_keeps_the_most_advanced_of_several_active_sequencers_and_inspection_stops_the_rest() {
        let mut chain = Chain::new(ABC, ChainState::default());
        chain.head("a", 10).head("b", 12).head("c", 12);
        let adopted = ChainState { leader: Some("b".into()), phase: Phase::Steady, ..Default::default() };
        assert_eq!(
            chain.inspected(&[("a", true), ("b", true), ("c", false)]),
            [persist(adopted), event(EventKind::Adopted, "b")],
            "inspection stops nobody while discovering; adoption decides"
        );
        assert_eq!(
            chain.at(500).inspected(&[("a", true), ("b", true), ("c", false)]),
            [event(EventKind::InspectionStopping, "a"), stop("a", Inspection)]
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
            let adopted =
                ChainState { leader: Some(keep.into()), phase: Phase::Steady, ..Default::default() };
            assert_eq!(chain.tick(), [persist(adopted), event(EventKind::Adopted, keep)], "{members:?}");
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
        let electing = electing_b_at_12();
        assert_eq!(
            chain.at(2000).tick(),
            [persist(electing.clone()), event(EventKind::Electing, "b"), start("b", 12)],
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
        assert_eq!(chain.tick(), [chain_event(EventKind::HiddenSequencer)]);
        assert_eq!(chain.at(3000).tick(), [], "said once");
        // The chain stopped moving for the liveness window: nobody sequences, so electing is safe.
        let electing = electing_b_at_12();
        assert_eq!(
            chain.at(3501).tick(),
            [persist(electing), event(EventKind::Electing, "b"), start("b", 12)]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn discovery_does_not_take_still_heads_for_a_stopped_chain_while_the_coordinator_is_late() {
        // a's activity is unknown (its admin_sequencerActive timed out) and no head moved for the
        // window, but the coordinator's own timers ran late: the heads it holds may be old ones.
        let mut chain = Chain::new(ABC, ChainState::default());
        chain.fail("a", timeout()).head("b", 10).head("c", 10);
        chain.active("b", Ok(false)).active("c", Ok(false));
        chain.late(std::time::Duration::from_millis(400));
        assert_eq!(chain.at(3501).tick(), [chain_event(EventKind::HiddenSequencer)]);
        // On time again, still heads are evidence that nobody sequences.
        chain.late(std::time::Duration::ZERO);
        let electing = ChainState { stopped_hash: Some(hash(10)), ..electing_b_at_12() };
        assert_eq!(
            chain.at(3600).tick(),
            [persist(electing), event(EventKind::Electing, "b"), start("b", 10)]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn discovery_with_nobody_eligible_persists_leaderless_and_says_so_every_ten_seconds() {
        let mut chain = discovery_with_nobody_eligible();
        let leaderless = ChainState { phase: Phase::Leaderless, ..Default::default() };
        assert_eq!(chain.at(2000).tick(), [persist(leaderless), chain_event(EventKind::Leaderless)]);
        assert_eq!(chain.at(3000).tick(), []);
        assert_eq!(chain.at(12_000).tick(), [chain_event(EventKind::Leaderless)]);
    }
}
