//! Outcomes of the leader's stop (fail-over or hand-over) and of the head read that stands in for
//! a stop without a usable hash (decision table rows "stop (fail-over)" and "read head").

use super::{
    Action, Event, EventKind, FailoverEngine, MAX_VERIFY_ATTEMPTS, Outcome, Pending, RETRY_BACKOFF, StopPurpose,
    UNSTOPPABLE_FOR, View, record::Loudness,
};
use crate::{client::CallError, state::Phase};
use alloy_primitives::B256;
use opc_wire::op_node_errors::AdminError;

impl FailoverEngine {
    /// `Stop(from)` again: after a restart (the stop may or may not have happened) or to retry a
    /// failed head read ("not running" then reads the head again).
    pub(super) fn stop_again(&mut self, view: &View<'_>, from: String, target: Option<String>, out: &mut Vec<Action>) {
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
        if !self.take_pending(&Pending::Stop(node.clone())) {
            return;
        }
        let err = match result {
            Ok(hash) if hash != B256::ZERO => return self.stopped_at(view, &node, hash, out),
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
    fn stopped_at(&mut self, view: &View<'_>, node: &str, hash: B256, out: &mut Vec<Action>) {
        self.attempts = 0;
        let target = match &view.state.phase {
            Phase::Stopping { target, .. } => target.clone(),
            _ => None,
        };
        let higher = self.higher_stop_answer(view, hash, node);
        let stopped_hash = higher.as_ref().map_or(hash, |answer| answer.hash);
        self.persist(out, view, |state| {
            state.stopped_hash = Some(stopped_hash);
            state.stopped_hash_estimated = false;
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
        if !self.take_pending(&Pending::ReadHead(node.clone())) {
            return;
        }
        let failure = match result {
            Ok(hash) if hash != B256::ZERO => return self.stopped_at(view, &node, hash, out),
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
                self.stopped_at(view, &node, hash, out);
            }
            None => {
                let detail = "stopped hash unknown: leaderless".to_owned();
                self.become_leaderless(out, view, Some(&node), detail, Loudness::Announce);
            }
        }
    }
}
