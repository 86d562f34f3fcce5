//! Outcomes of starts and of the activity checks that verify them (decision table rows "start"
//! and "check active"), and what a new leader means.

use super::{
    Action, Event, EventKind, FailoverEngine, FailoverOutcome, MAX_VERIFY_ATTEMPTS, Outcome, RETRY_BACKOFF,
    View,
};
use crate::{client::CallError, state::Phase};
use opc_wire::op_node_errors::{self, AdminError};

impl FailoverEngine {
    /// The node being started and the old leader it replaces, while starting.
    fn starting_of(view: &View<'_>) -> Option<(String, Option<String>)> {
        match &view.state.phase {
            Phase::Starting { target, from } => Some((target.clone(), from.clone())),
            _ => None,
        }
    }

    /// Back to catching up from `from` (or from `node` when the start had no old leader).
    fn back_to_catching_up(
        &mut self,
        view: &View<'_>,
        from: Option<String>,
        node: &str,
        out: &mut Vec<Action>,
    ) {
        self.persist(out, view, |state| {
            state.phase = Phase::CatchingUp { from: from.unwrap_or_else(|| node.to_owned()), target: None };
        });
    }

    /// A start at the node's own head (a leader restarted after it stopped behind our back, or
    /// the election at start-up) was refused because its head is not the probed one: it sealed or
    /// received blocks after its last probe. When op-node's answer names a head beyond the hash we
    /// sent, that head is where the chain is (the node's own blocks, possibly gossiped already):
    /// start it there, and never anyone at the older hash (replica seed 38 re-orged the leader's
    /// last block that way). True when it did; otherwise the caller goes back to catching up.
    fn restart_at_reported_head(
        &mut self,
        view: &View<'_>,
        node: &str,
        err: &CallError,
        out: &mut Vec<Action>,
    ) -> bool {
        let CallError::Rpc { message, .. } = err else { return false };
        let Some((head, number)) = op_node_errors::mismatch_head(message) else { return false };
        let sent = view.state.stopped_hash.and_then(|sent| view.number_of(sent));
        if sent.is_none_or(|sent| number <= sent) {
            return false;
        }
        self.persist(out, view, |state| {
            state.stopped_hash = Some(head);
            state.stopped_hash_estimated = false;
        });
        let detail =
            format!("{err}; its head {head} ({number}) is newer than the probed one: starting it there");
        Self::emit(out, Event::info(EventKind::StartHashMismatch, Some(node), detail));
        out.push(Action::Start { node: node.to_owned(), hash: head });
        true
    }

    pub(super) fn on_started(
        &mut self,
        view: &View<'_>,
        node: String,
        result: Result<(), CallError>,
        out: &mut Vec<Action>,
    ) {
        let Some((_, from)) = Self::starting_of(view) else { return };
        let err = match result {
            Ok(()) => return self.became_leader(view, &node, out),
            Err(err) => err,
        };
        match err.admin_kind() {
            Some(AdminError::AlreadyRunning) => out.push(Action::CheckActive { node }),
            Some(AdminError::HashMismatch) => {
                if from.is_none() && self.restart_at_reported_head(view, &node, &err, out) {
                    return;
                }
                self.back_to_catching_up(view, from, &node, out);
                let detail = format!("{err}; back to catching up");
                Self::emit(out, Event::info(EventKind::StartHashMismatch, Some(&node), detail));
            }
            Some(AdminError::NoPrestate) => {
                self.retry_at = Some(view.now + self.settings.start_retry_interval);
                Self::emit(out, Event::info(EventKind::StartRetry, Some(&node), format!("{err}; retrying")));
                // Re-sent by evaluate via the Starting branch: verify first, then start.
            }
            Some(AdminError::NotEnabled | AdminError::AdminDisabled | AdminError::NotLeader) => {
                out.push(Action::MarkNotSequencer { node: node.clone() });
                self.back_to_catching_up(view, from, &node, out);
                let detail = format!("{err}; it is not a candidate");
                Self::emit(out, Event::warn(EventKind::StartRefused, Some(&node), detail));
            }
            _ => {
                let detail = format!("{err}; verifying with admin_sequencerActive");
                Self::emit(out, Event::info(EventKind::StartUnknown, Some(&node), detail));
                out.push(Action::CheckActive { node });
            }
        }
    }

    pub(super) fn on_active_checked(
        &mut self,
        view: &View<'_>,
        node: String,
        result: Result<bool, CallError>,
        out: &mut Vec<Action>,
    ) {
        let Some((target, from)) = Self::starting_of(view) else { return };
        if target != node {
            return;
        }
        match result {
            Ok(true) => self.became_leader(view, &node, out),
            // Not started: start it (again) if it is still at the stopped hash, else catch up.
            // A fenced node that answers is stopped first, as in a catch-up: this start may be a
            // previous engine's decision (another replica's, taken while it could see none of the
            // nodes), and the fenced node's stop answer may move the stopped hash.
            Ok(false) => match view.state.stopped_hash {
                Some(hash)
                    if view.head_hash(&node) == Some(hash)
                        && self.retry_at.is_none()
                        && !self.fence_blocks_start(view) =>
                {
                    out.push(Action::Start { node, hash });
                }
                _ => self.back_to_catching_up(view, from, &node, out),
            },
            Err(err) => {
                self.attempts += 1;
                if self.attempts < MAX_VERIFY_ATTEMPTS {
                    self.retry_at = Some(view.now + RETRY_BACKOFF);
                    return;
                }
                self.attempts = 0;
                self.persist(out, view, |state| {
                    state.fenced.insert(node.clone());
                    state.phase =
                        Phase::CatchingUp { from: from.unwrap_or_else(|| node.clone()), target: None };
                });
                let detail = format!(
                    "cannot tell whether {node} started ({err}); fencing it and catching up with another"
                );
                Self::emit(out, Event::warn(EventKind::StartUnverifiable, Some(&node), detail));
            }
        }
    }

    /// `node` sequences: persist it as leader of the next epoch, report the step and the whole
    /// fail-over, count it and answer the operator's hand-over.
    fn became_leader(&mut self, view: &View<'_>, node: &str, out: &mut Vec<Action>) {
        self.persist(out, view, |state| {
            state.leader = Some(node.to_owned());
            state.epoch += 1;
            state.phase = Phase::Steady;
        });
        self.leader_since = Some(view.now);
        self.started_leader_at = Some(view.now);
        self.unstoppable_until = None;
        self.attempts = 0;
        self.stop_answer = None;
        let step = self.since_step(view.now);
        Self::emit(
            out,
            Event::info(EventKind::Started, Some(node), format!("{node} is sequencing")).took(step),
        );
        let total = self.failover_started_at.take().map(|at| view.now.saturating_duration_since(at));
        let detail = format!("{node} is the leader (epoch {})", view.state.epoch + 1);
        Self::emit(out, Event::info(EventKind::FailoverComplete, Some(node), detail).took(total));
        let outcome =
            if self.handover.is_some() { FailoverOutcome::Handover } else { FailoverOutcome::Success };
        Self::outcome(out, Outcome::Failover { outcome, duration: total });
        if let Some(target) = self.handover.take() {
            let answer = if target == node {
                Ok(())
            } else {
                Err(format!("hand-over to {target} did not complete: {node} leads instead"))
            };
            Self::outcome(out, Outcome::HandoverFinished(answer));
        }
        self.step_started_at = None;
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::fixtures::*;

    #[tokio::test(start_paused = true)]
    async fn a_started_node_is_persisted_as_leader_with_the_next_epoch() {
        let mut chain = starting_b();
        let expected = became_leader(&b_starting(), "b");
        assert_eq!(chain.started("b", Ok(())), expected);
        assert_eq!(chain.state.epoch, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_start_answered_already_running_is_verified_before_counting_as_success() {
        let mut chain = starting_b();
        assert_eq!(chain.started("b", Err(rpc(AdminError::AlreadyRunning))), [check_active("b")]);
        assert_eq!(chain.tick(), [], "the check is in flight");
        assert_eq!(chain.active_checked("b", Ok(true)), became_leader(&b_starting(), "b"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_start_refused_for_a_hash_mismatch_goes_back_to_catching_up() {
        let mut chain = starting_b();
        assert_eq!(
            chain.started("b", Err(rpc(AdminError::HashMismatch))),
            [persist(catching_up("a", 20)), event(EventKind::StartHashMismatch, "b")]
        );
        chain.at(100).head("b", 21);
        assert_eq!(chain.tick(), caught_up(&catching_up("a", 20), "c", Some("a"), 20));
    }

    #[tokio::test(start_paused = true)]
    async fn a_leader_restarted_at_a_stale_probed_head_is_restarted_at_the_head_its_refusal_names() {
        // Replica seed 38: the leader stopped behind our back at 11, one block after its last
        // probe. Restarted at 10, op-node refuses and names its head 11. Catching up from 10 would
        // start b or c there and re-org 11, which the leader may have gossiped already.
        let (mut chain, restarting) = a_restarted_at_10_after_inspection_found_it_inactive();
        let refusal = CallError::Rpc {
            kind: AdminError::HashMismatch,
            code: APPLICATION_ERROR_CODE,
            message: hash_mismatch(hash(11), 11, hash(10)),
        };
        let at_11 = ChainState { stopped_hash: Some(hash(11)), ..restarting.clone() };
        assert_eq!(
            chain.started("a", Err(refusal)),
            [persist(at_11.clone()), event(EventKind::StartHashMismatch, "a"), start("a", 11)]
        );
        assert_eq!(chain.started("a", Ok(())), became_leader(&at_11, "a"));
        // A refusal naming an older head, or none, goes back to catching up as before.
        let (mut chain, _) = a_restarted_at_10_after_inspection_found_it_inactive();
        let older = CallError::Rpc {
            kind: AdminError::HashMismatch,
            code: APPLICATION_ERROR_CODE,
            message: hash_mismatch(hash(9), 9, hash(10)),
        };
        let back = ChainState { phase: Phase::CatchingUp { from: "a".into(), target: None }, ..restarting };
        assert_eq!(chain.started("a", Err(older)), [persist(back), event(EventKind::StartHashMismatch, "a")]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_start_without_prestate_is_retried_after_the_retry_interval() {
        let mut chain = starting_b();
        assert_eq!(chain.started("b", Err(rpc(AdminError::NoPrestate))), [event(EventKind::StartRetry, "b")]);
        assert_eq!(chain.at(99).tick(), []);
        assert_eq!(chain.at(100).tick(), [check_active("b")]);
        assert_eq!(chain.active_checked("b", Ok(false)), [start("b", 20)]);
        assert_eq!(chain.started("b", Ok(())), became_leader(&b_starting(), "b"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_start_refused_because_the_node_cannot_sequence_marks_it_and_catches_up_with_another() {
        for kind in [AdminError::NotEnabled, AdminError::AdminDisabled, AdminError::NotLeader] {
            let mut chain = starting_b();
            assert_eq!(
                chain.started("b", Err(rpc(kind))),
                [mark_not_sequencer("b"), persist(catching_up("a", 20)), event(EventKind::StartRefused, "b")],
                "{kind:?}"
            );
            assert_eq!(chain.tick(), caught_up(&catching_up("a", 20), "c", Some("a"), 20), "{kind:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_start_without_answer_is_verified_before_anything_else() {
        for err in [timeout(), unreachable(), malformed(), rpc(AdminError::Other)] {
            let mut chain = starting_b();
            assert_eq!(
                chain.started("b", Err(err.clone())),
                [event(EventKind::StartUnknown, "b"), check_active("b")],
                "{err}"
            );
            assert_eq!(chain.at(100).tick(), [], "{err}: nothing else while verifying");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_start_verified_inactive_is_sent_again_at_the_stopped_hash_or_catches_up_if_the_node_moved() {
        let mut chain = starting_b();
        chain.started("b", Err(timeout()));
        assert_eq!(chain.active_checked("b", Ok(false)), [start("b", 20)]);
        chain.started("b", Err(timeout()));
        chain.at(100).head("b", 21);
        assert_eq!(chain.active_checked("b", Ok(false)), [persist(catching_up("a", 20))]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_start_that_cannot_be_verified_three_times_fences_the_node_and_catches_up_with_another() {
        let mut chain = starting_b();
        assert_eq!(
            chain.started("b", Err(timeout())),
            [event(EventKind::StartUnknown, "b"), check_active("b")]
        );
        assert_eq!(chain.active_checked("b", Err(timeout())), []);
        assert_eq!(chain.at(199).tick(), []);
        assert_eq!(chain.at(200).tick(), [check_active("b")]);
        assert_eq!(chain.active_checked("b", Err(unreachable())), []);
        assert_eq!(chain.at(400).tick(), [check_active("b")]);
        let fenced_state = ChainState { fenced: fenced(&["b"]), ..catching_up("a", 20) };
        assert_eq!(
            chain.active_checked("b", Err(malformed())),
            [persist(fenced_state.clone()), event(EventKind::StartUnverifiable, "b")]
        );
        // b still answers probes: it is fence-stopped before c may start.
        assert_eq!(chain.tick(), [event(EventKind::FenceStopping, "b"), stop("b", Fence)]);
        chain.at(500).fail("b", unreachable());
        chain.stopped("b", Fence, Err(timeout()));
        assert_eq!(
            chain.tick(),
            caught_up(&fenced_state, "c", Some("a"), 20),
            "b no longer answers: the documented window, c takes over"
        );
    }
}
