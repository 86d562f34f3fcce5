//! Fencing: a deposed leader we could not stop is stopped as soon as it answers, in any phase and
//! even while paused, and nobody is started while it may still sequence.

use super::{Action, Event, EventKind, FailoverEngine, StopPurpose, View};
use tokio::time::Instant;

impl FailoverEngine {
    /// Stops every fenced node that answers again, before anything can count it healthy.
    pub(super) fn fence(&mut self, view: &View<'_>, out: &mut Vec<Action>) {
        for name in &view.state.fenced {
            if view.answers(name) && self.may_stop_node(name, view.now) {
                let detail = "fenced node answers again: stopping it";
                Self::emit(out, Event::info(EventKind::FenceStopping, Some(name), detail));
                out.push(Action::Stop { node: name.clone(), purpose: StopPurpose::Fence });
            }
        }
    }

    /// True while a fenced node may still be sequencing where others can see it: it answers, and
    /// either its stop has not been tried (or is in flight), or the chain still advances without
    /// it. A fenced node whose stop keeps failing (its replies are garbage) while the chain stands
    /// still does not hold the chain hostage: like an unreachable leader, it is not producing
    /// anything anyone receives.
    pub(super) fn fence_blocks_start(&self, view: &View<'_>) -> bool {
        view.state.fenced.iter().any(|name| {
            let stop_failed = matches!(self.node_stops.get(name), Some(Some(_)));
            view.answers(name)
                && (!stop_failed || view.chain_alive_without(name, self.settings.chain_liveness_window))
        })
    }

    /// True when no inspection or fence stop of `name` is in flight or backing off.
    pub(super) fn may_stop_node(&self, name: &str, now: Instant) -> bool {
        match self.node_stops.get(name) {
            None => true,
            Some(None) => false,
            Some(Some(retry_at)) => now >= *retry_at,
        }
    }
}
