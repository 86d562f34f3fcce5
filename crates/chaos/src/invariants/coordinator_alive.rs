//! **No coordinator panics, hangs or dies**: each running coordinator (each replica in replica
//! mode) answers its admin API, ends only when the runner stops it, and stops cleanly when asked.
//!
//! **Checks**:
//! - every [`STATUS_EVERY`] it answers `coordinator_status` (replicas: and
//!   `coordinator_clusterMembership`) within [`STATUS_TIMEOUT`]; [`STATUS_FAILURES`] unanswered
//!   checks in a row make it hung, reported once ([`StatusChecks`]);
//! - its task has not finished while the runner thinks it runs ("exited on its own");
//! - asked to stop, it ends within [`SHUTDOWN_TIMEOUT`], without an error and without a panic
//!   ([`shutdown_violation`]);
//! - replicas: no panic on any of its threads. tokio catches a task's panic, so a panic hook that
//!   records panics by thread name is the only place that sees one in an actor or the Raft core
//!   (`replicas/process.rs`).
//!
//! The processes themselves differ by mode (`single.rs`, `replicas/process.rs`); what counts as
//! alive is here.

use std::{fmt::Display, time::Duration};
use tokio::task::JoinError;

/// How long a coordinator may take to answer a status check.
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(2);
/// How often each running coordinator is asked.
pub const STATUS_EVERY: Duration = Duration::from_millis(500);
/// Consecutive unanswered checks that make a coordinator hung.
pub const STATUS_FAILURES: u32 = 3;
/// How long a coordinator may take to shut down when asked.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// The status checks of one coordinator (one incarnation of a replica).
#[derive(Debug, Clone, Default)]
pub struct StatusChecks {
    /// Unanswered checks in a row.
    failures: u32,
    /// The hang was reported already.
    reported: bool,
}

impl StatusChecks {
    /// Records one check's outcome; returns the last error when this one makes it hung.
    pub fn record(&mut self, outcome: Result<(), String>) -> Option<String> {
        match outcome {
            Ok(()) => {
                self.failures = 0;
                None
            }
            Err(err) => {
                self.failures += 1;
                if self.failures >= STATUS_FAILURES && !self.reported {
                    self.reported = true;
                    return Some(err);
                }
                None
            }
        }
    }
}

/// The violation of a coordinator task `who` that was asked to stop, given what waiting
/// [`SHUTDOWN_TIMEOUT`] for it gave (`None`: it did not end in time). A task cancelled by the
/// runner (killed) is no violation.
pub fn shutdown_violation<E: Display>(
    who: &str,
    outcome: Option<Result<Result<(), E>, JoinError>>,
) -> Option<String> {
    match outcome {
        None => Some(format!("{who} did not shut down within {} s", SHUTDOWN_TIMEOUT.as_secs())),
        Some(Err(join)) if join.is_panic() => Some(format!("{who} panicked: {join}")),
        Some(Ok(Err(err))) => Some(format!("{who} failed: {err}")),
        Some(_) => None,
    }
}

/// How a coordinator task that ended on its own ended, for an "exited on its own" violation.
pub fn exit_text<E: Display>(outcome: Result<Result<(), E>, JoinError>) -> String {
    match outcome {
        Ok(Ok(())) => "it returned without being asked to".to_owned(),
        Ok(Err(err)) => format!("it failed: {err}"),
        Err(join) => format!("its task ended: {join}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_unanswered_checks_in_a_row_make_a_coordinator_hung_once() {
        let mut checks = StatusChecks::default();
        let failed = || Err("timed out".to_owned());
        assert_eq!(checks.record(failed()), None);
        assert_eq!(checks.record(failed()), None);
        assert_eq!(checks.record(failed()).as_deref(), Some("timed out"));
        assert_eq!(checks.record(failed()), None);
    }

    #[test]
    fn an_answer_resets_the_count() {
        let mut checks = StatusChecks::default();
        assert_eq!(checks.record(Err("a".into())), None);
        assert_eq!(checks.record(Err("b".into())), None);
        assert_eq!(checks.record(Ok(())), None);
        assert_eq!(checks.record(Err("c".into())), None);
        assert_eq!(checks.record(Err("d".into())), None);
        assert_eq!(checks.record(Err("e".into())).as_deref(), Some("e"));
    }

    #[test]
    fn a_task_that_does_not_end_or_fails_is_a_violation_and_a_clean_one_is_not() {
        let late = shutdown_violation::<String>("replica 2", None);
        assert_eq!(late.as_deref(), Some("replica 2 did not shut down within 10 s"));
        let failed = shutdown_violation("coordinator", Some(Ok(Err("store locked"))));
        assert_eq!(failed.as_deref(), Some("coordinator failed: store locked"));
        assert_eq!(shutdown_violation::<String>("coordinator", Some(Ok(Ok(())))), None);
    }
}
