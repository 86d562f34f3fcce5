//! Start-up: adopt the active sequencer, or elect the most advanced node at its own head once
//! heads had time to converge (decision table rows "discovering").

use super::{
    Action, Event, EventKind, FailoverEngine, View,
    record::Loudness,
};
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
            self.adopt_most_advanced(view, &actives, out);
            return;
        }
        if waited < self.settings.convergence_wait {
            return;
        }
        self.elect_at_own_head(view, out, "no active sequencer at start-up");
    }

    /// Keeps the most advanced of the active sequencers found at start-up (inspection stops the
    /// others).
    fn adopt_most_advanced(&mut self, view: &View<'_>, actives: &[&str], out: &mut Vec<Action>) {
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
            format!("adopted {keep}, the active sequencer found at start-up")
        } else {
            format!("adopted {keep}, the most advanced of the active sequencers; inspection stops {}", others.join(", "))
        };
        Self::emit(out, Event::info(EventKind::Adopted, Some(&keep), detail));
    }

    /// Starts the most advanced eligible node at its own head. Used only when no stopped hash
    /// exists (nothing was stopped, so no block can be lost).
    pub(super) fn elect_at_own_head(&mut self, view: &View<'_>, out: &mut Vec<Action>, why: &str) {
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
        if unseen && moving {
            let detail = format!(
                "{why}, but heads advanced within {} ms and not every node could be asked whether \
                 it sequences: not electing while one may be active",
                self.settings.chain_liveness_window.as_millis()
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
