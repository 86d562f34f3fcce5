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
        // In conductor mode a fenced node cannot commit, so it cannot publish: nothing to wait for.
        if self.conducted(view) {
            return false;
        }
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

#[cfg(test)]
mod tests {
    use crate::engine::fixtures::*;

    /// `a`, fenced while `b` leads, answers at block 10 like everyone else: its fence stop is sent.
    fn a_fenced_under_leader_b_answers_and_is_fence_stopped() -> Chain {
        let state = ChainState { fenced: fenced(&["a"]), ..steady("b") };
        let mut chain = Chain::new(ABC, state);
        chain.head("a", 10).head("b", 10).head("c", 10);
        assert_eq!(chain.tick(), [event(EventKind::FenceStopping, "a"), stop("a", Fence)]);
        chain
    }

    #[tokio::test(start_paused = true)]
    async fn a_fenced_node_that_answers_again_is_stopped_once_and_released_when_stopped() {
        let mut chain = a_fenced_under_leader_b_answers_and_is_fence_stopped();
        assert_eq!(chain.at(100).tick(), [], "the fence stop is in flight: not sent twice");
        assert_eq!(
            chain.stopped("a", Fence, Ok(hash(10))),
            [persist(steady("b")), event(EventKind::FenceReleased, "a")]
        );
        assert_eq!(chain.tick(), []);
    }

    #[tokio::test(start_paused = true)]
    async fn a_fenced_node_is_not_stopped_while_it_does_not_answer() {
        let state = ChainState { fenced: fenced(&["a"]), ..steady("b") };
        let mut chain = Chain::new(ABC, state);
        chain.head("a", 10).at(100).fail("a", unreachable()).head("b", 10).head("c", 10);
        assert_eq!(chain.tick(), []);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_fence_stop_is_retried_after_a_back_off_and_not_running_releases_the_node() {
        let mut chain = a_fenced_under_leader_b_answers_and_is_fence_stopped();
        assert_eq!(chain.stopped("a", Fence, Err(timeout())), [event(EventKind::FenceStopFailed, "a")]);
        assert_eq!(chain.at(499).tick(), []);
        assert_eq!(chain.at(500).tick(), [event(EventKind::FenceStopping, "a"), stop("a", Fence)]);
        assert_eq!(
            chain.stopped("a", Fence, Err(rpc(AdminError::NotRunning))),
            [persist(steady("b")), event(EventKind::FenceReleased, "a")]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_fenced_node_is_stopped_even_while_automation_is_paused() {
        let state = ChainState { paused: true, fenced: fenced(&["a"]), ..steady("b") };
        let mut chain = Chain::new(ABC, state);
        chain.head("a", 10).head("b", 10).head("c", 10);
        assert_eq!(
            chain.tick(),
            [event(EventKind::FenceStopping, "a"), stop("a", Fence)],
            "fencing is safety, not automation"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_fenced_node_answering_only_garbage_does_not_hold_a_stopped_chain_hostage() {
        let state =
            ChainState { fenced: fenced(&["a"]), stopped_hash_estimated: true, ..catching_up("a", 20) };
        let mut chain = Chain::new(ABC, state.clone());
        chain.head("b", 20).head("c", 19);
        chain.at(100).fail("a", CallError::Malformed("expected a hash".into()));
        assert_eq!(chain.tick(), [event(EventKind::FenceStopping, "a"), stop("a", Fence)]);
        assert_eq!(
            chain.stopped("a", Fence, Err(CallError::Malformed("garbage".into()))),
            [event(EventKind::FenceStopFailed, "a")]
        );
        // While the chain might still move (b moved at 0 ms, window 1.5 s), nobody starts; the fence
        // stop is retried every 500 ms.
        assert_eq!(chain.at(1000).tick(), [event(EventKind::FenceStopping, "a"), stop("a", Fence)]);
        assert_eq!(
            chain.stopped("a", Fence, Err(CallError::Malformed("garbage".into()))),
            [event(EventKind::FenceStopFailed, "a")]
        );
        // The chain stood still for the whole window: a is not producing anything anyone receives.
        chain.at(1600).head("b", 20).head("c", 19);
        let started = chain.tick();
        assert!(started.contains(&start("b", 20)), "{started:?}");
    }
}
