//! Whether a chain's state can be written, published for `/readyz`, `coordinator_status` and the
//! metrics.
//!
//! A failed write blocks the action that depends on it (a stop, a start, a fence), and the engine
//! retries every tick, so a data directory that cannot be written stops every fail-over. That must
//! not be visible only as one log line per retry: the failure is kept here until a write succeeds
//! again, logged once when it starts (and when its reason changes) and once when it ends.
//!
//! | event                          | log            | `op_coordinator_state_persist_ok` | status / readyz      |
//! |--------------------------------|----------------|-----------------------------------|----------------------|
//! | a write fails, was fine        | error, once    | 0                                 | `cannot persist: ...` |
//! | a write fails, same reason     | debug          | 0                                 | unchanged            |
//! | a write fails, another reason  | error          | 0                                 | the new reason       |
//! | a write succeeds after failing | info, once     | 1                                 | ready                |
//! | this replica stops acting      | none           | 1                                 | ready (it no longer writes) |

use super::StateError;
use crate::metrics as m;
use tokio::sync::watch;

/// The persist status of one chain, owned by its actor.
#[derive(Debug)]
pub struct PersistHealth {
    chain: String,
    /// The reason of the failing writes, None while they succeed.
    error_tx: watch::Sender<Option<String>>,
}

impl PersistHealth {
    /// A chain whose writes are fine so far, and the receiver the API reads.
    pub fn new(chain: &str) -> (Self, watch::Receiver<Option<String>>) {
        let (error_tx, error_rx) = watch::channel(None);
        (Self { chain: chain.to_owned(), error_tx }, error_rx)
    }

    /// Exports the gauge at 1, so the alert sees the series before anything fails.
    pub fn register(&self) {
        self.set_gauge(true);
    }

    /// The reason writes fail, None while they succeed.
    pub fn error(&self) -> Option<String> {
        self.error_tx.borrow().clone()
    }

    /// A write failed: the dependent action was not taken.
    pub fn failed(&self, err: &StateError) {
        metrics::counter!(m::STATE_PERSIST_FAILURES_TOTAL, "chain" => self.chain.clone()).increment(1);
        let reason = err.to_string();
        let previous = self.error_tx.send_replace(Some(reason.clone()));
        if previous.as_deref() == Some(reason.as_str()) {
            tracing::debug!(chain = %self.chain, %reason, "cannot persist state, still");
            return;
        }
        self.set_gauge(false);
        tracing::error!(
            chain = %self.chain,
            %reason,
            "cannot persist state; the dependent action is NOT taken, and fail-overs and operator commands \
             wait until it can (retried, and logged again once it recovers)"
        );
    }

    /// A write succeeded.
    pub fn succeeded(&self) {
        if let Some(reason) = self.error_tx.send_replace(None) {
            self.set_gauge(true);
            tracing::info!(chain = %self.chain, previous_reason = %reason, "state persisted again; recovered");
        }
    }

    /// This replica stopped acting: it writes nothing any more, so it has nothing to report.
    pub fn not_writing(&self) {
        if self.error_tx.send_replace(None).is_some() {
            self.set_gauge(true);
        }
    }

    fn set_gauge(&self, ok: bool) {
        metrics::gauge!(m::STATE_PERSIST_OK, "chain" => self.chain.clone()).set(f64::from(u8::from(ok)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn io_error(text: &str) -> StateError {
        StateError::Io { path: PathBuf::from("/data/chain-main.json"), error: std::io::Error::other(text) }
    }

    #[test]
    fn a_failure_is_published_until_a_write_succeeds_again() {
        let (health, error_rx) = PersistHealth::new("main");
        assert_eq!(*error_rx.borrow(), None);
        health.failed(&io_error("disk full"));
        health.failed(&io_error("disk full"));
        assert_eq!(error_rx.borrow().as_deref(), Some("state file /data/chain-main.json: disk full"));
        health.succeeded();
        assert_eq!(*error_rx.borrow(), None);
        health.failed(&io_error("read-only file system"));
        health.not_writing();
        assert_eq!(health.error(), None);
    }
}
