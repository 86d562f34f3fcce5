//! Waits on conditions with deadlines: tests never sleep a fixed time to let things settle, they
//! poll a condition and, when the deadline passes, fail showing what they last observed.

use std::{future::Future, time::Duration};
use tokio::time::Instant;

/// Deadline of a wait, in-process, for something that takes a few block times: generous, so a
/// loaded machine running other tests in parallel does not fail a correct coordinator.
pub const WAIT: Duration = Duration::from_secs(10);

/// Deadline of a wait that involves child processes (start-up, elections between processes):
/// longer than [`WAIT`], because other tests' builds and processes share a 2-core machine.
pub const PROCESS_WAIT: Duration = Duration::from_secs(20);

/// How often a wait looks again: a tenth of a block time, fine enough to time fail-overs.
pub const POLL: Duration = Duration::from_millis(10);

/// A wait for `what`: polls a probe until it yields a value or the deadline passes, then panics
/// with the last state the probe observed and any context the caller adds (log tails).
#[derive(Debug, Clone, Copy)]
pub struct Wait<'a> {
    /// What is awaited, as the failure message names it.
    what: &'a str,
    /// How long before giving up.
    timeout: Duration,
    /// How long between two probes.
    poll: Duration,
}

/// A wait for `what` with [`WAIT`] and [`POLL`]; see [`Wait`].
pub fn wait_for(what: &str) -> Wait<'_> {
    Wait { what, timeout: WAIT, poll: POLL }
}

impl Wait<'_> {
    /// Gives up after `timeout` instead of [`WAIT`].
    pub fn timeout(self, timeout: Duration) -> Self {
        Self { timeout, ..self }
    }

    /// Probes every `poll` instead of every [`POLL`].
    pub fn poll(self, poll: Duration) -> Self {
        Self { poll, ..self }
    }

    /// Polls `probe` (the value once found, and what it observed) until it finds a value.
    pub async fn until<T>(self, probe: impl AsyncFnMut() -> (Option<T>, String)) -> T {
        self.until_or(probe, String::new).await
    }

    /// Like [`Wait::until`]; a timeout also shows `context()` (log tails, ground truth).
    pub async fn until_or<T>(
        self,
        probe: impl AsyncFnMut() -> (Option<T>, String),
        context: impl FnOnce() -> String,
    ) -> T {
        match self.try_until(probe).await {
            Ok(value) => value,
            Err(timed_out) => panic!("{timed_out}\n{}", context()),
        }
    }

    /// Like [`Wait::until`], but a timeout is returned (what the panic would say) instead of
    /// panicking: for a bench that goes on with what it has.
    pub async fn try_until<T>(
        self,
        mut probe: impl AsyncFnMut() -> (Option<T>, String),
    ) -> Result<T, String> {
        let deadline = Instant::now() + self.timeout;
        loop {
            let (found, observed) = probe().await;
            if let Some(value) = found {
                return Ok(value);
            }
            if Instant::now() >= deadline {
                return Err(self.timed_out(&observed));
            }
            tokio::time::sleep(self.poll).await;
        }
    }

    /// [`Wait::until`] for a test without a runtime: the thread sleeps between probes.
    pub fn until_blocking<T>(self, mut probe: impl FnMut() -> (Option<T>, String)) -> T {
        let deadline = Instant::now() + self.timeout;
        loop {
            let (found, observed) = probe();
            if let Some(value) = found {
                return value;
            }
            if Instant::now() >= deadline {
                panic!("{}\n", self.timed_out(&observed));
            }
            std::thread::sleep(self.poll);
        }
    }

    /// What a wait that timed out says.
    fn timed_out(&self, observed: &str) -> String {
        format!("timed out after {:?} waiting for {}; last observed:\n{observed}", self.timeout, self.what)
    }
}

/// Polls `check` until it returns a value, or panics after `timeout`: for conditions whose
/// failure the caller's own assertions explain.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    wait_for(what).timeout(timeout).until(async || (check().await, String::new())).await
}

/// Now, in Unix milliseconds: the clock of `coordinator_events` (`at_unix_ms`), to compare an
/// event's time with a moment of the test.
pub fn unix_ms() -> u64 {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_wait_returns_the_first_value_the_probe_finds() {
        let mut probes = 0;
        let found = wait_for("three probes")
            .until(async || {
                probes += 1;
                ((probes == 3).then_some(probes), format!("probe {probes}"))
            })
            .await;
        assert_eq!(found, 3);
    }

    #[tokio::test(start_paused = true)]
    #[should_panic(expected = "last observed:\nprobe 3")]
    async fn a_wait_that_times_out_shows_the_last_observed_state() {
        let mut probes = 0;
        wait_for("never")
            .timeout(Duration::from_millis(15))
            .until(async || -> (Option<()>, String) {
                probes += 1;
                (None, format!("probe {probes}"))
            })
            .await;
    }
}
