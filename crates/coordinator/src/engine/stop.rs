//! Outcomes of the leader's stop (fail-over or hand-over) and of the head read that stands in for
//! a stop without a usable hash (decision table rows "stop (fail-over)" and "read head").

use super::{
    Action, Event, EventKind, FailoverEngine, MAX_VERIFY_ATTEMPTS, Outcome, RETRY_BACKOFF, StopPurpose,
    UNSTOPPABLE_FOR, View, record::Loudness,
};
use crate::{client::CallError, state::Phase};
use alloy_primitives::B256;
use opc_wire::op_node_errors::AdminError;

/// How a stopped hash is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known {
    /// The old leader said it (its stop, or its head read after a stop).
    Exact,
    /// The last head probes saw for it: its later blocks may have reached others.
    Estimated,
}
use Known::{Estimated, Exact};

impl FailoverEngine {
    /// `Stop(from)` again: after a restart (the stop may or may not have happened) or to retry a
    /// failed head read ("not running" then reads the head again).
    pub(super) fn stop_again(
        &mut self,
        view: &View<'_>,
        from: String,
        target: Option<String>,
        out: &mut Vec<Action>,
    ) {
        self.step_started_at = Some(view.now);
        let purpose = if target.is_some() { StopPurpose::Handover } else { StopPurpose::Failover };
        out.push(Action::Stop { node: from, purpose });
    }

    pub(super) fn on_leader_stopped(
        &mut self,
        view: &View<'_>,
        node: String,
        result: Result<B256, CallError>,
        out: &mut Vec<Action>,
    ) {
        let err = match result {
            Ok(hash) if hash != B256::ZERO => return self.stopped_at(view, &node, hash, Exact, out),
            Ok(_) => {
                let detail = "stop returned the zero hash; reading optimism_syncStatus";
                Self::emit(out, Event::info(EventKind::ZeroStoppedHash, Some(&node), detail));
                return out.push(Action::ReadHead { node });
            }
            Err(err) => err,
        };
        match err.admin_kind() {
            Some(AdminError::NotRunning) => {
                let detail = "sequencer not running; its current head is the stopped hash";
                Self::emit(out, Event::info(EventKind::AlreadyStopped, Some(&node), detail));
                out.push(Action::ReadHead { node });
            }
            Some(AdminError::NotEnabled) => {
                out.push(Action::MarkNotSequencer { node: node.clone() });
                out.push(Action::ReadHead { node });
            }
            _ => self.stop_failed(view, &node, &err, out),
        }
    }

    /// The leader did not stop: back to steady, where it counts as cut off for a while; an
    /// operator's hand-over is abandoned.
    fn stop_failed(&mut self, view: &View<'_>, node: &str, err: &CallError, out: &mut Vec<Action>) {
        self.unstoppable_until = Some((node.to_owned(), view.now + UNSTOPPABLE_FOR));
        let handing_over = matches!(&view.state.phase, Phase::Stopping { target: Some(_), .. });
        let (kind, back_to) = if handing_over {
            (EventKind::HandoverFailed, "hand-over aborted")
        } else {
            (EventKind::StopFailed, "treating the leader as cut off")
        };
        self.persist(out, view, |state| state.phase = Phase::Steady);
        let detail = format!("admin_stopSequencer failed: {err}; {back_to}");
        Self::emit(out, Event::warn(kind, Some(node), detail.clone()).took(self.since_step(view.now)));
        if handing_over && self.handover.take().is_some() {
            Self::outcome(out, Outcome::HandoverFinished(Err(detail)));
        }
    }

    /// The old leader's chain ends at `hash`: persist catching up with it, or with a higher stop
    /// answer on the chain that every candidate has passed it for (see "The stopped point").
    fn stopped_at(&mut self, view: &View<'_>, node: &str, hash: B256, known: Known, out: &mut Vec<Action>) {
        self.attempts = 0;
        let target = match &view.state.phase {
            Phase::Stopping { target, .. } => target.clone(),
            _ => None,
        };
        let higher = self.higher_stop_answer(view, hash, node);
        let stopped_hash = higher.as_ref().map_or(hash, |answer| answer.hash);
        self.persist(out, view, |state| {
            state.stopped_hash = Some(stopped_hash);
            state.stopped_hash_estimated = known == Estimated && higher.is_none();
            state.leader = None;
            state.phase = Phase::CatchingUp { from: node.to_owned(), target };
        });
        let event = Event::info(EventKind::Stopped, Some(node), format!("stopped at {hash}"));
        Self::emit(out, event.took(self.since_step(view.now)));
        if let Some(answer) = higher {
            Self::emit(out, answer.supersedes(hash));
        }
        self.step_started_at = Some(view.now);
        self.catch_up_deadline = Some(view.now + self.settings.catch_up_timeout);
    }

    pub(super) fn on_head_read(
        &mut self,
        view: &View<'_>,
        node: String,
        result: Result<B256, CallError>,
        out: &mut Vec<Action>,
    ) {
        let failure = match result {
            Ok(hash) if hash != B256::ZERO => return self.stopped_at(view, &node, hash, Exact, out),
            Ok(_) => "the zero hash".to_owned(),
            Err(err) => err.to_string(),
        };
        self.attempts += 1;
        if self.attempts < MAX_VERIFY_ATTEMPTS {
            // evaluate() stops it again after the back-off: "not running" reads the head.
            self.retry_at = Some(view.now + RETRY_BACKOFF);
            let detail = format!("reading the stopped head failed ({failure}); retrying");
            Self::emit(out, Event::warn(EventKind::ReadHeadFailed, Some(&node), detail));
            return;
        }
        self.attempts = 0;
        match view.head_hash(&node).filter(|hash| *hash != B256::ZERO) {
            Some(hash) => {
                let detail = format!("using the last head seen in probes, {hash}, as the stopped hash");
                Self::emit(out, Event::warn(EventKind::StoppedHashFromProbe, Some(&node), detail));
                // A probe may predate the old leader's last blocks (replica seed 27: its head
                // read kept failing while the candidates had its next block): an estimate, which
                // the catch-up moves to a more advanced head any node holds.
                self.stopped_at(view, &node, hash, Estimated, out);
            }
            None => {
                let detail = "stopped hash unknown: leaderless".to_owned();
                self.become_leaderless(out, view, Some(&node), detail, Loudness::Announce);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::fixtures::*;

    #[tokio::test(start_paused = true)]
    async fn a_stopped_hash_is_persisted_as_catching_up_and_a_candidate_at_it_is_started() {
        let mut chain = stopping_a();
        assert_eq!(
            chain.stopped("a", Failover, Ok(hash(20))),
            [persist(a_stopped_at(20)), event(EventKind::Stopped, "a")]
        );
        assert_eq!(chain.tick(), caught_up(&a_stopped_at(20), "b", Some("a"), 20));
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_stopped_hash_is_replaced_by_the_head_read_from_sync_status() {
        let mut chain = stopping_a();
        assert_eq!(
            chain.stopped("a", Failover, Ok(B256::ZERO)),
            [event(EventKind::ZeroStoppedHash, "a"), read_head("a")]
        );
        assert_eq!(chain.tick(), [], "the head read is in flight");
        assert_eq!(
            chain.head_read("a", Ok(hash(20))),
            [persist(a_stopped_at(20)), event(EventKind::Stopped, "a")]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_leader_whose_sequencer_is_not_running_has_its_current_head_read() {
        let mut chain = stopping_a();
        a_already_stopped_is_stopped_at_its_head_20(&mut chain);
    }

    #[tokio::test(start_paused = true)]
    async fn a_leader_that_is_not_sequencer_enabled_is_marked_and_its_head_read() {
        let mut chain = stopping_a();
        assert_eq!(
            chain.stopped("a", Failover, Err(rpc(AdminError::NotEnabled))),
            [mark_not_sequencer("a"), read_head("a")]
        );
        assert!(chain.health.nodes["a"].not_sequencer);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_without_answer_returns_to_steady_then_the_cut_off_rules_decide() {
        let mut chain = stopping_a();
        chain.at(100);
        assert_eq!(
            chain.stopped("a", Failover, Err(timeout())),
            [persist(steady("a")), event(EventKind::StopFailed, "a")]
        );
        // a still answers probes but cannot be stopped: while b and c moved within 1.5 s, it is alive.
        assert_eq!(chain.at(200).tick(), [event(EventKind::LeaderCutOff, "a")]);
        // The chain stopped: fence a, fail over from the most advanced candidate's head.
        let fenced_state = a_fenced_at(20);
        assert_eq!(
            chain.at(1501).tick(),
            [persist(fenced_state.clone()), event(EventKind::LeaderFenced, "a")]
        );
        // a answers, so its fence stop goes first; nobody starts before that stop returns.
        fenced_node_stopped_first_then_b_started_at_20(&mut chain, "a", fenced_state, 1600);
    }

    #[tokio::test(start_paused = true)]
    async fn a_leader_that_could_not_be_stopped_is_tried_again_after_five_seconds_if_the_chain_lives() {
        let mut chain = stopping_a();
        assert_eq!(
            chain.stopped("a", Failover, Err(timeout())),
            [persist(steady("a")), event(EventKind::StopFailed, "a")]
        );
        chain.at(4999).head("b", 21);
        assert_eq!(chain.tick(), [event(EventKind::LeaderCutOff, "a")]);
        chain.at(5000).head("b", 22);
        assert_eq!(chain.tick(), a_stopped_as_unhealthy());
    }

    #[tokio::test(start_paused = true)]
    async fn failed_head_reads_are_retried_by_stopping_again_then_the_last_probed_head_is_the_stopped_hash() {
        let mut chain = stopping_a();
        let not_running = || Err(rpc(AdminError::NotRunning));
        assert_eq!(
            chain.stopped("a", Failover, not_running()),
            [event(EventKind::AlreadyStopped, "a"), read_head("a")]
        );
        assert_eq!(chain.head_read("a", Err(timeout())), [event(EventKind::ReadHeadFailed, "a")]);
        assert_eq!(chain.at(199).tick(), [], "back-off");
        assert_eq!(chain.at(200).tick(), [stop("a", Failover)]);
        assert_eq!(
            chain.stopped("a", Failover, not_running()),
            [event(EventKind::AlreadyStopped, "a"), read_head("a")]
        );
        assert_eq!(chain.head_read("a", Err(unreachable())), [event(EventKind::ReadHeadFailed, "a")]);
        assert_eq!(chain.at(400).tick(), [stop("a", Failover)]);
        assert_eq!(
            chain.stopped("a", Failover, not_running()),
            [event(EventKind::AlreadyStopped, "a"), read_head("a")]
        );
        assert_eq!(
            chain.head_read("a", Ok(B256::ZERO)),
            [
                event(EventKind::StoppedHashFromProbe, "a"),
                persist(ChainState { stopped_hash_estimated: true, ..a_stopped_at(20) }),
                event(EventKind::Stopped, "a")
            ],
            "a zero head counts as a failure; the third falls back to the probed head, an estimate"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_probed_stopped_head_the_candidates_have_passed_moves_to_their_head_at_once() {
        // Replica seed 27: the stop ran but its answer and every head read came back garbled; the
        // last probe of a said 20 while its block 21 had reached b and c. Nobody can reach 20 again:
        // the estimate moves to 21 at once instead of a catch-up timeout and a leaderless wait.
        let mut chain = stopping_a();
        chain.head("b", 21).head("c", 21);
        let not_running = || Err(rpc(AdminError::NotRunning));
        for (retry_at, read) in [(0, Err(malformed())), (200, Err(malformed()))] {
            if retry_at > 0 {
                assert_eq!(chain.at(retry_at).tick(), [stop("a", Failover)]);
            }
            chain.stopped("a", Failover, not_running());
            assert_eq!(chain.head_read("a", read), [event(EventKind::ReadHeadFailed, "a")]);
        }
        assert_eq!(chain.at(400).tick(), [stop("a", Failover)]);
        chain.stopped("a", Failover, not_running());
        let estimated = ChainState { stopped_hash_estimated: true, ..a_stopped_at(20) };
        assert_eq!(
            chain.head_read("a", Err(malformed())),
            [
                event(EventKind::StoppedHashFromProbe, "a"),
                persist(estimated.clone()),
                event(EventKind::Stopped, "a")
            ]
        );
        chain.at(420).head("b", 21).head("c", 21);
        assert_eq!(
            chain.tick(),
            [
                persist(ChainState { stopped_hash: Some(hash(21)), ..estimated }),
                event(EventKind::StoppedHashReestimated, "b")
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn failed_head_reads_without_a_probed_head_leave_the_chain_leaderless() {
        let mut chain = Chain::new(ABC, steady("a"));
        chain.fail("a", malformed()).head("b", 20).head("c", 20);
        chain.active("b", Ok(false)).active("c", Ok(false));
        assert_eq!(chain.tick(), a_stopped_as_unhealthy());
        for retry_at in [200, 400] {
            chain.stopped("a", Failover, Err(rpc(AdminError::NotRunning)));
            assert_eq!(chain.head_read("a", Err(timeout())), [event(EventKind::ReadHeadFailed, "a")]);
            assert_eq!(chain.at(retry_at).tick(), [stop("a", Failover)]);
        }
        chain.stopped("a", Failover, Err(rpc(AdminError::NotRunning)));
        let leaderless = ChainState { leader: None, phase: Phase::Leaderless, ..steady("a") };
        assert_eq!(
            chain.head_read("a", Err(timeout())),
            [persist(leaderless.clone()), event(EventKind::Leaderless, "a")]
        );
        // No stopped hash: as discovery with the wait over. Every node answered
        // admin_sequencerActive, so none can be a hidden sequencer.
        chain.at(600).active("a", Ok(false));
        let electing =
            ChainState { stopped_hash: Some(hash(20)), phase: starting("b", None), ..leaderless.clone() };
        assert_eq!(chain.tick(), [persist(electing), event(EventKind::Electing, "b"), start("b", 20)]);
    }
}
