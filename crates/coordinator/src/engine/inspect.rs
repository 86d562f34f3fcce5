//! Inspection rounds: every active node other than the one allowed to sequence is stopped; a
//! healthy leader found inactive is restarted at its own head once nobody else is active.

use super::{Action, Event, EventKind, FailoverEngine, Pending, StopPurpose, View};
use crate::state::Phase;
use std::collections::BTreeMap;

impl FailoverEngine {
    pub(super) fn inspect(&mut self, view: &View<'_>, active: &BTreeMap<String, bool>, out: &mut Vec<Action>) {
        // During discovery every active node is a possible leader: adoption decides.
        if view.state.paused || view.state.phase == Phase::Discovering {
            return;
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
    fn restart_inactive_leader(&mut self, view: &View<'_>, active: &BTreeMap<String, bool>, out: &mut Vec<Action>) {
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
        let detail = format!("leader {leader} is healthy but not sequencing; restarting it at its own head {hash}");
        Self::emit(out, Event::warn(EventKind::LeaderInactive, Some(leader), detail));
        out.push(Action::Start { node: leader.to_owned(), hash });
    }
}
