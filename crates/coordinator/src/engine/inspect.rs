//! Inspection rounds: every active node other than the one allowed to sequence is stopped; a
//! healthy leader found inactive is restarted at its own head once nobody else is active.

use super::{Action, Event, EventKind, FailoverEngine, Pending, StopPurpose, View};
use crate::state::Phase;
use std::collections::BTreeMap;

impl FailoverEngine {
    pub(super) fn inspect(
        &mut self,
        view: &View<'_>,
        active: &BTreeMap<String, bool>,
        out: &mut Vec<Action>,
    ) {
        // During discovery every active node is a possible leader: adoption decides.
        if view.state.paused || view.state.phase == Phase::Discovering {
            return;
        }
        // Leaderless with nothing stopped (a start-up that could not tell who sequences, its
        // probes and inspections late on a busy host): an active node is the chain's sequencer,
        // not an intruder. Stopping it would halt a healthy chain; adopt it, as discovery does.
        // Not in conductor mode, where no node sequences without the fence.
        if view.state.phase == Phase::Leaderless && view.state.stopped_hash.is_none() && !self.conducted(view)
        {
            let actives: Vec<&str> = active
                .iter()
                .filter(|(name, is_active)| **is_active && !view.state.fenced.contains(*name))
                .map(|(name, _)| name.as_str())
                .collect();
            if !actives.is_empty() {
                self.adopt_most_advanced(view, &actives, "by inspection while leaderless", out);
                return;
            }
        }
        let allowed: Option<&str> = match &view.state.phase {
            Phase::Steady => view.state.leader.as_deref(),
            Phase::Starting { target, .. } => Some(target),
            Phase::Stopping { from, .. } => Some(from),
            Phase::Discovering | Phase::CatchingUp { .. } | Phase::Leaderless => None,
        };
        for (name, is_active) in active {
            if *is_active && Some(name.as_str()) != allowed && self.may_stop_node(name, view.now) {
                let pending_on_it =
                    matches!(&self.pending, Some(Pending::Stop(n) | Pending::Start(n)) if n == name);
                if pending_on_it {
                    continue;
                }
                let detail = format!(
                    "{name} is active but is not the leader ({}); stopping it",
                    allowed.unwrap_or("none")
                );
                Self::emit(out, Event::warn(EventKind::InspectionStopping, Some(name), detail));
                out.push(Action::Stop { node: name.clone(), purpose: StopPurpose::Inspection });
            }
        }
        self.restart_inactive_leader(view, active, out);
    }

    /// A healthy leader found inactive (stopped behind our back) is restarted at its own head,
    /// but never while another node is active: that one is stopped first, and the leader
    /// restarted by a later round, so two never sequence at once.
    fn restart_inactive_leader(
        &mut self,
        view: &View<'_>,
        active: &BTreeMap<String, bool>,
        out: &mut Vec<Action>,
    ) {
        let other_active = active
            .iter()
            .any(|(name, is_active)| *is_active && Some(name.as_str()) != view.state.leader.as_deref());
        if self.pending.is_some() || other_active || view.state.phase != Phase::Steady {
            return;
        }
        let Some(leader) = view.state.leader.as_deref() else { return };
        if active.get(leader) != Some(&false) || !view.node(leader).is_some_and(|node| node.healthy) {
            return;
        }
        let Some(hash) = view.head_hash(leader) else { return };
        self.persist(out, view, |state| {
            state.stopped_hash = Some(hash);
            state.phase = Phase::Starting { target: leader.to_owned(), from: None };
        });
        self.step_started_at = Some(view.now);
        let detail =
            format!("leader {leader} is healthy but not sequencing; restarting it at its own head {hash}");
        Self::emit(out, Event::warn(EventKind::LeaderInactive, Some(leader), detail));
        out.push(Action::Start { node: leader.to_owned(), hash });
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::fixtures::*;

    #[tokio::test(start_paused = true)]
    async fn inspection_stops_every_active_node_but_the_leader_and_retries_failed_stops_after_a_back_off() {
        let mut chain = a_leading_at_10();
        assert_eq!(chain.inspected(&[("a", true), ("b", true), ("c", true)]), inspection_stops(&["b", "c"]));
        assert_eq!(chain.inspected(&[("a", true), ("b", true), ("c", true)]), [], "the stops are in flight");
        assert_eq!(chain.stopped("b", Inspection, Ok(hash(10))), [event(EventKind::InspectionStopped, "b")]);
        assert_eq!(
            chain.stopped("c", Inspection, Err(timeout())),
            [event(EventKind::InspectionStopFailed, "c")]
        );
        assert_eq!(chain.at(499).inspected(&[("a", true), ("b", false), ("c", true)]), []);
        assert_eq!(
            chain.at(500).inspected(&[("a", true), ("b", false), ("c", true)]),
            [event(EventKind::InspectionStopping, "c"), stop("c", Inspection)]
        );
        assert_eq!(
            chain.stopped("c", Inspection, Err(rpc(AdminError::NotRunning))),
            [event(EventKind::InspectionStopped, "c")]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn leaderless_with_nothing_stopped_an_active_node_is_adopted_not_stopped() {
        // A start-up on a busy host: nobody answered in time, so the chain went leaderless
        // without a stopped hash; then inspection finds a sequencing.
        let leaderless = ChainState { phase: Phase::Leaderless, ..ChainState::default() };
        let mut chain = Chain::new(ABC, leaderless.clone());
        chain.head("a", 10).head("b", 9).head("c", 9);
        let adopted = ChainState { leader: Some("a".into()), phase: Phase::Steady, ..leaderless.clone() };
        assert_eq!(
            chain.inspected(&[("a", true), ("b", false), ("c", false)]),
            [persist(adopted), event(EventKind::Adopted, "a")]
        );
        // After a stop the stopped hash rules: an active node there is stopped, as before.
        let mut stopped = Chain::new(ABC, ChainState { stopped_hash: Some(hash(10)), ..leaderless.clone() });
        stopped.head("a", 10).head("b", 10).head("c", 10);
        assert_eq!(stopped.inspected(&[("a", true), ("b", false), ("c", false)]), inspection_stops(&["a"]));
        // A fenced node (a deposed leader) is never adopted.
        let mut fenced = Chain::new(ABC, ChainState { fenced: ["a".to_owned()].into(), ..leaderless });
        fenced.head("a", 10).head("b", 10).head("c", 10);
        assert_eq!(fenced.inspected(&[("a", true), ("b", false), ("c", false)]), inspection_stops(&["a"]));
    }

    #[tokio::test(start_paused = true)]
    async fn inspection_never_stops_the_node_being_started_or_the_node_being_stopped() {
        let mut chain = starting_b();
        assert_eq!(
            chain.inspected(&[("a", true), ("b", true), ("c", false)]),
            [event(EventKind::InspectionStopping, "a"), stop("a", Inspection)]
        );
        let mut chain = stopping_a();
        assert_eq!(chain.inspected(&[("a", true), ("b", false), ("c", false)]), []);
    }

    #[tokio::test(start_paused = true)]
    async fn inspection_during_catch_up_stops_every_active_node_including_the_old_leader() {
        let mut chain = Chain::new(ABC, catching_up("a", 20));
        chain.head("a", 20).head("b", 19).head("c", 19);
        assert_eq!(chain.inspected(&[("a", true), ("b", false), ("c", true)]), inspection_stops(&["a", "c"]));
    }

    #[tokio::test(start_paused = true)]
    async fn inspection_restarts_a_healthy_leader_found_inactive_at_its_own_head() {
        let (mut chain, restarting) = a_restarted_at_10_after_inspection_found_it_inactive();
        assert_eq!(chain.started("a", Ok(())), became_leader(&restarting, "a"));
    }

    #[tokio::test(start_paused = true)]
    async fn inspection_restarts_an_inactive_leader_only_once_no_other_node_is_active() {
        let mut chain = a_leading_at_10();
        assert_eq!(
            chain.inspected(&[("a", false), ("b", true), ("c", false)]),
            [event(EventKind::InspectionStopping, "b"), stop("b", Inspection)],
            "starting a while b may still sequence would make two"
        );
        assert_eq!(chain.stopped("b", Inspection, Ok(hash(10))), [event(EventKind::InspectionStopped, "b")]);
        let restarting =
            ChainState { stopped_hash: Some(hash(10)), phase: starting("a", None), ..steady("a") };
        assert_eq!(
            chain.at(500).inspected(&[("a", false), ("b", false), ("c", false)]),
            [persist(restarting), event(EventKind::LeaderInactive, "a"), start("a", 10)]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn inspection_does_not_restart_an_unhealthy_inactive_leader() {
        let mut chain = Chain::new(ABC, steady("a"));
        let lagging_geth = probe(chain.now, 10, 10, 2);
        chain.probe("a", lagging_geth).head("b", 10).head("c", 10);
        // Nothing from inspection: the tick rules take over and stop the unhealthy leader.
        assert_eq!(chain.inspected(&[("a", false), ("b", false), ("c", false)]), a_stopped_as_unhealthy());
    }

    #[tokio::test(start_paused = true)]
    async fn inspection_does_nothing_while_paused() {
        let mut chain = Chain::new(ABC, ChainState { paused: true, ..steady("a") });
        chain.head("a", 10).head("b", 10).head("c", 10);
        assert_eq!(chain.inspected(&[("a", false), ("b", true), ("c", true)]), []);
    }
}
