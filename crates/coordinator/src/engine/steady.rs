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
            return false;
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
