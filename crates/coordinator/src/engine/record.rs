//! What the engine records besides its calls: timeline events (some announced at most every
//! [`ANNOUNCE_EVERY`]), outcomes for the actor, the persisted state, the catch-up deadline it
//! carries, and the one way into a leaderless chain.

use super::{ANNOUNCE_EVERY, Action, Event, EventKind, FailoverEngine, FailoverOutcome, Outcome, View};
use crate::state::{ChainState, Phase};
use std::time::Duration;
use tokio::time::Instant;

/// How a leaderless chain is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Loudness {
    /// At most once per [`ANNOUNCE_EVERY`]: a condition that persists.
    Announce,
    /// Now, with the duration of the failed step: a fail-over that just gave up.
    Now,
}

impl FailoverEngine {
    pub(super) fn emit(out: &mut Vec<Action>, event: Event) {
        out.push(Action::Event(event));
    }

    pub(super) fn outcome(out: &mut Vec<Action>, outcome: Outcome) {
        out.push(Action::Outcome(outcome));
    }

    /// A condition that persists is announced once per [`ANNOUNCE_EVERY`]; true when it was.
    pub(super) fn announce(
        &mut self,
        out: &mut Vec<Action>,
        now: Instant,
        kind: EventKind,
        node: Option<&str>,
        detail: String,
    ) -> bool {
        let due =
            self.announced.get(&kind).is_none_or(|at| now.saturating_duration_since(*at) >= ANNOUNCE_EVERY);
        if due {
            self.announced.insert(kind.clone(), now);
            Self::emit(out, Event::warn(kind, node, detail));
        }
        due
    }

    pub(super) fn since_step(&self, now: Instant) -> Option<Duration> {
        self.step_started_at.map(|at| now.saturating_duration_since(at))
    }

    /// Persists the view's state changed by `change`. A state out of leaderless ends the current
    /// leaderless episode (the next one is counted again).
    pub(super) fn persist(
        &mut self,
        out: &mut Vec<Action>,
        view: &View<'_>,
        change: impl FnOnce(&mut ChainState),
    ) -> ChainState {
        let mut next = view.state.clone();
        change(&mut next);
        if next.phase != Phase::Leaderless {
            self.leaderless_counted = false;
        }
        out.push(Action::Persist(next.clone()));
        next
    }

    /// The chain has no leader and none can be started now: persists leaderless (unless it is),
    /// says so as `loudness` asks, counts the episode once and ends an operator's hand-over.
    pub(super) fn become_leaderless(
        &mut self,
        out: &mut Vec<Action>,
        view: &View<'_>,
        node: Option<&str>,
        detail: String,
        loudness: Loudness,
    ) {
        if view.state.phase != Phase::Leaderless {
            self.persist(out, view, |state| {
                state.leader = None;
                state.phase = Phase::Leaderless;
            });
        }
        let said = match loudness {
            Loudness::Announce => self.announce(out, view.now, EventKind::Leaderless, node, detail),
            Loudness::Now => {
                let event = Event::warn(EventKind::Leaderless, node, detail).took(self.since_step(view.now));
                Self::emit(out, event);
                self.announced.insert(EventKind::Leaderless, view.now);
                true
            }
        };
        if !said {
            return;
        }
        if !self.leaderless_counted {
            // Counted once per leaderless episode; the warning repeats every ANNOUNCE_EVERY.
            self.leaderless_counted = true;
            let outcome = Outcome::Failover { outcome: FailoverOutcome::Leaderless, duration: None };
            Self::outcome(out, outcome);
        }
        if self.handover.take().is_some() {
            let why = "no sequencer could be started at the stopped hash; the chain is leaderless";
            Self::outcome(out, Outcome::HandoverFinished(Err(why.to_owned())));
        }
    }

    /// Writes the running catch-up countdown into every catching-up state about to be persisted,
    /// in Unix ms, so whoever acts next continues it (see [`Self::restore_catch_up_deadline`]).
    pub(super) fn stamp_catch_up_deadline(&self, view: &View<'_>, out: &mut [Action]) {
        for action in out {
            let Action::Persist(next) = action else { continue };
            next.catch_up_deadline_unix_ms = match (&next.phase, self.catch_up_deadline) {
                (Phase::CatchingUp { .. }, Some(deadline)) => {
                    let remaining = deadline.saturating_duration_since(view.now);
                    Some(view.unix_ms.saturating_add(u64::try_from(remaining.as_millis()).unwrap_or(0)))
                }
                _ => None,
            };
        }
    }

    /// On the first input, continues the catch-up countdown a previous coordinator of this chain
    /// persisted, as an instant on our clock (replicas' clocks are assumed to roughly agree; a
    /// skew shortens or lengthens one timeout).
    pub(super) fn restore_catch_up_deadline(&mut self, view: &View<'_>) {
        if std::mem::replace(&mut self.deadline_restored, true) {
            return;
        }
        if !matches!(view.state.phase, Phase::CatchingUp { .. }) {
            return;
        }
        if let Some(deadline_unix_ms) = view.state.catch_up_deadline_unix_ms {
            let remaining = Duration::from_millis(deadline_unix_ms.saturating_sub(view.unix_ms));
            self.catch_up_deadline = Some(view.now + remaining);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::fixtures::*;

    #[tokio::test(start_paused = true)]
    async fn a_catching_up_state_is_persisted_with_its_deadline_in_unix_ms_and_no_other_is() {
        let mut chain = stopping_a();
        chain.at(40).stopped("a", Failover, Ok(hash(20)));
        let deadline = chain.persisted.last().and_then(|state| state.catch_up_deadline_unix_ms);
        assert_eq!(deadline, Some(UNIX_T0_MS + 40 + 3000), "stopped at 40 ms, catch-up timeout 3 s");
        chain.at(100).tick();
        assert!(matches!(chain.state.phase, Phase::Starting { .. }), "{:?}", chain.state);
        assert_eq!(chain.persisted.last().map(|state| state.catch_up_deadline_unix_ms), Some(None));
    }

    #[tokio::test(start_paused = true)]
    async fn a_coordinator_that_takes_over_continues_the_persisted_catch_up_countdown() {
        let deadline = UNIX_T0_MS + 1000;
        let state = ChainState { catch_up_deadline_unix_ms: Some(deadline), ..catching_up("a", 20) };
        let mut chain = Chain::new(ABC, state);
        chain.head("a", 20).head("b", 19).head("c", 19);
        assert_eq!(chain.at(999).tick(), []);
        assert_eq!(
            chain.at(1000).tick(),
            catch_up_timed_out(&catching_up("a", 20), "a", 20),
            "1 s left of the countdown, not a fresh 3 s"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_renewed_engine_keeps_its_own_countdown() {
        let mut chain = stopping_a();
        chain.head("a", 20).head("b", 19).head("c", 19);
        chain.stopped("a", Failover, Ok(hash(20)));
        chain.at(2000).tick();
        chain.engine = chain.engine.renewed(chain.now);
        assert_eq!(chain.at(2999).tick(), []);
        assert_eq!(chain.at(3000).tick(), catch_up_timed_out(&a_stopped_at(20), "a", 20));
        let outcome = FailoverOutcome::RestartedOldLeader;
        assert_eq!(chain.outcomes, [Outcome::Failover { outcome, duration: None }]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_leaderless_episode_is_counted_once_however_often_it_is_announced() {
        let mut chain = discovery_with_nobody_eligible();
        chain.at(2000).tick();
        chain.at(12_000).tick();
        chain.at(22_000).tick();
        let outcome = FailoverOutcome::Leaderless;
        assert_eq!(chain.outcomes, [Outcome::Failover { outcome, duration: None }]);
    }
}
