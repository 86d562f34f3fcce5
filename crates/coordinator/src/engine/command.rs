//! Operator commands: a hand-over (`coordinator_setActiveSequencer`) and pausing automation
//! (`coordinator_stopElection` / `coordinator_startElection`).

use super::{Action, CommandError, Event, EventKind, FailoverEngine, StopPurpose, View};
use crate::state::Phase;
use alloy_primitives::B256;

impl FailoverEngine {
    /// `coordinator_setActiveSequencer`: validates and begins a graceful hand-over. Its end comes
    /// as [`super::Outcome::HandoverFinished`].
    pub fn transfer(&mut self, view: &View<'_>, to: &str) -> Result<Vec<Action>, CommandError> {
        self.restore_catch_up_deadline(view);
        if view.member(to).is_none() {
            return Err(CommandError::UnknownNode(to.to_owned()));
        }
        if self.pending.is_some() {
            return Err(CommandError::Busy(format!("a {} call is in flight", view.state.phase.name())));
        }
        if view.state.paused {
            // The hand-over would stop the leader, and nothing would start the target until resumed.
            return Err(CommandError::Busy("automation is paused (coordinator_startElection resumes it)".into()));
        }
        if let Some(why) = view.ineligibility(to) {
            return Err(CommandError::Ineligible { node: to.to_owned(), why });
        }
        let mut out = Vec::new();
        match view.state.phase.clone() {
            Phase::Steady => {
                let Some(leader) = view.state.leader.clone() else {
                    return Err(CommandError::Busy("no leader".into()));
                };
                if leader == to {
                    return Err(CommandError::AlreadyLeader(leader));
                }
                self.persist(&mut out, view, |state| {
                    state.phase = Phase::Stopping { from: leader.clone(), target: Some(to.to_owned()) };
                });
                self.begin_handover(view, to, format!("operator hand-over from {leader} to {to}"), &mut out);
                out.push(Action::Stop { node: leader, purpose: StopPurpose::Handover });
            }
            Phase::Leaderless => {
                let hash = Self::leaderless_start_hash(view, to)?;
                self.persist(&mut out, view, |state| {
                    state.stopped_hash = Some(hash);
                    state.phase = Phase::Starting { target: to.to_owned(), from: None };
                });
                self.begin_handover(view, to, format!("operator start of {to} at {hash}"), &mut out);
                out.push(Action::Start { node: to.to_owned(), hash });
            }
            other => return Err(CommandError::Busy(format!("the chain is {}", other.name()))),
        }
        self.finish(view, &mut out);
        Ok(out)
    }

    fn begin_handover(&mut self, view: &View<'_>, to: &str, detail: String, out: &mut Vec<Action>) {
        self.failover_started_at = Some(view.now);
        self.step_started_at = Some(view.now);
        self.handover = Some(to.to_owned());
        Self::emit(out, Event::info(EventKind::HandoverRequested, Some(to), detail));
    }

    /// Where an operator may start `to` in a leaderless chain: at the stopped hash, or without
    /// one at its own head if it is the most advanced.
    fn leaderless_start_hash(view: &View<'_>, to: &str) -> Result<B256, CommandError> {
        match view.state.stopped_hash {
            Some(hash) if view.head_hash(to) == Some(hash) => Ok(hash),
            Some(hash) => Err(CommandError::Ineligible {
                node: to.to_owned(),
                why: format!("it is not at the stopped hash {hash}"),
            }),
            None => {
                let best = view.most_advanced(None).map(|member| member.name.clone());
                if best.as_deref() != Some(to) {
                    return Err(CommandError::Ineligible {
                        node: to.to_owned(),
                        why: format!("{} is more advanced", best.as_deref().unwrap_or("another node")),
                    });
                }
                Ok(view.head_hash(to).unwrap_or_default())
            }
        }
    }

    /// `coordinator_stopElection` / `coordinator_startElection`.
    pub fn set_paused(&mut self, view: &View<'_>, paused: bool) -> Vec<Action> {
        self.restore_catch_up_deadline(view);
        let mut out = Vec::new();
        if view.state.paused == paused {
            return out;
        }
        self.persist(&mut out, view, |state| state.paused = paused);
        let event = if paused {
            let detail = "automation paused by operator: no fail-over, election or inspection until resumed";
            Event::warn(EventKind::Paused, None, detail)
        } else {
            Event::info(EventKind::Resumed, None, "automation resumed by operator")
        };
        Self::emit(&mut out, event);
        self.finish(view, &mut out);
        out
    }
}
