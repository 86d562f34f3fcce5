//! Overload: no leader is deposed on evidence that the coordinator's own lateness may have made
//! (decision table row "steady, leader unhealthy on timing evidence while the coordinator is
//! late").
//!
//! A timeout or a stall says something about the node only if the coordinator was on time. While
//! its own timers run later than `max_self_lag` (half a probe deadline), or ran so within
//! `self_lag_span` (the span the verdicts in force rest on), a leader whose latest probe failed
//! by timeout or stall is left in place. The engine says so once per episode (`decision_held`,
//! and an [`Outcome::DecisionHeld`] the actor counts). Evidence that does not depend on timing
//! is still acted on: a refused connection (a crashed process), a malformed answer, an answer
//! that says "not a sequencer". So a leader that crashes while the coordinator is short of CPU is
//! still replaced.
//!
//! The lateness comes from the monitor of `crate::self_lag`, in the view. A measurement that is
//! overdue counts as lateness too: right after the process was resumed, the actor may handle a
//! probe that timed out before the monitor has recorded the pause.

use super::{Action, Event, EventKind, FailoverEngine, Outcome, View};
use crate::{health::NodeHealth, self_lag::PERIOD};
use std::time::Duration;

impl FailoverEngine {
    /// How late the coordinator's own timers ran within `self_lag_span`, counting a measurement
    /// the monitor owes by now.
    pub fn self_lateness(&self, view: &View<'_>) -> Duration {
        let overdue = view.now.saturating_duration_since(view.self_lag.measured_at + PERIOD);
        view.self_lag.worst.max(overdue)
    }

    /// Why the coordinator's timing evidence cannot be trusted now, or None when it can.
    pub fn timing_unreliable(&self, view: &View<'_>) -> Option<String> {
        let late = self.self_lateness(view);
        (late > self.settings.max_self_lag).then(|| {
            format!(
                "the coordinator's own timers ran up to {} ms late within the last {} ms (limit {} ms): it \
                 is short of CPU, so a timeout or a stall may be its own; no leader is deposed on them",
                late.as_millis(),
                self.settings.self_lag_span.as_millis(),
                self.settings.max_self_lag.as_millis()
            )
        })
    }

    /// True when the unhealthy `leader`'s verdict rests on timing evidence gathered while the
    /// coordinator was late: the decision waits, said once per episode.
    pub(super) fn hold_on_timing(
        &mut self,
        view: &View<'_>,
        leader: &str,
        node: &NodeHealth,
        out: &mut Vec<Action>,
    ) -> bool {
        let unreliable = node.reason.timing_dependent().then(|| self.timing_unreliable(view)).flatten();
        let Some(why) = unreliable else {
            self.holding_on_timing = false;
            return false;
        };
        if !self.holding_on_timing {
            self.holding_on_timing = true;
            let detail = format!(
                "leader looks unhealthy ({}: {}), but {why}; keeping it until the coordinator is on time",
                node.reason.code(),
                node.detail
            );
            Self::emit(out, Event::warn(EventKind::DecisionHeld, Some(leader), detail));
            out.push(Action::Outcome(Outcome::DecisionHeld));
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::fixtures::*;
    use crate::self_lag::PERIOD;
    use std::time::Duration;

    fn ms(value: u64) -> Duration {
        Duration::from_millis(value)
    }

    /// A probe now in which op-node answered (head 10) and op-geth missed its deadline: a leader
    /// that answers, so it is stopped, not waited out as one cut off.
    fn geth_timeout(chain: &Chain) -> Probe {
        let mut probe = testing::probe(chain.now, 10, hash(10), 10);
        probe.geth.as_mut().expect("asked").result = Err(timeout());
        probe
    }

    /// `a` of [`a_leading_at_10`] probed at `ms` with its op-geth timing out.
    fn a_times_out_at(chain: &mut Chain, ms: u64) -> &mut Chain {
        chain.at(ms);
        let probe = geth_timeout(chain);
        chain.probe("a", probe)
    }

    #[tokio::test(start_paused = true)]
    async fn a_leader_timing_out_while_the_coordinator_is_late_is_kept_and_that_is_said_once() {
        let mut chain = a_leading_at_10();
        a_times_out_at(chain.late(ms(400)), 500);
        assert_eq!(chain.tick(), [event(EventKind::DecisionHeld, "a")]);
        assert_eq!(a_times_out_at(&mut chain, 600).tick(), [], "said once per episode");
        assert_eq!(chain.state.leader.as_deref(), Some("a"));
        assert_eq!(chain.outcomes, [Outcome::DecisionHeld], "counted once per episode");
    }

    #[tokio::test(start_paused = true)]
    async fn once_the_coordinator_is_on_time_again_a_leader_still_timing_out_is_stopped() {
        let mut chain = a_leading_at_10();
        a_times_out_at(chain.late(ms(400)), 500);
        assert_eq!(chain.tick(), [event(EventKind::DecisionHeld, "a")]);
        a_times_out_at(chain.late(Duration::ZERO), 700);
        assert_eq!(chain.tick(), a_stopped_as_unhealthy());
    }

    #[tokio::test(start_paused = true)]
    async fn a_crashed_leader_is_replaced_even_while_the_coordinator_is_late() {
        // A refused connection is no timing evidence: the process is gone.
        let mut chain = a_silent_at_1500_with_the_chain_stopped_at_12();
        chain.late(ms(400));
        let actions = chain.at(1501).tick();
        assert!(
            actions.contains(&event(EventKind::LeaderFenced, "a")),
            "a crashed leader is fenced as on time: {actions:#?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_measurement_the_monitor_owes_counts_as_lateness() {
        // The monitor last measured at 0 and the actor runs at 500 before the monitor: the process
        // was not running in between, whatever the history says.
        let mut chain = a_leading_at_10();
        a_times_out_at(chain.measured_at(0), 500);
        assert_eq!(chain.tick(), [event(EventKind::DecisionHeld, "a")]);
        // One period late is on time.
        let mut chain = a_leading_at_10();
        let one_period = u64::try_from(PERIOD.as_millis()).expect("small");
        a_times_out_at(chain.measured_at(500), 500 + one_period);
        assert_eq!(chain.tick(), a_stopped_as_unhealthy());
    }

    #[tokio::test(start_paused = true)]
    async fn lateness_below_the_limit_changes_nothing() {
        let mut chain = a_leading_at_10();
        a_times_out_at(chain.late(ms(100)), 500);
        assert_eq!(chain.tick(), a_stopped_as_unhealthy());
    }
}
