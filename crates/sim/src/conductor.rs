//! op-node's conductor client (`--conductor.enabled --conductor.rpc=URL`), as op-node uses it:
//!
//! - [`ConductorClient::leader`]: one `conductor_leader` call bounded by `--conductor.rpc-timeout`;
//!   an error is an error, never "leader".
//! - Every call goes through the node's [`PathFaults`] (`conductor_delay`, `conductor_drop`): the
//!   network between op-node and its conductor.
//! - [`ConductorClient::commit`]: `conductor_commitUnsafePayload`, 2 tries 50 ms apart, each
//!   bounded by the rpc timeout. The caller drops the block when it fails.
//! - `admin_overrideLeader` makes every leader check answer true locally, without asking, until
//!   op-node restarts (the flag lives in the node's state, see [`crate::node`]).

use crate::error::SimError;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use op_sim_api::IsolateMode;
use opc_wire::conductor::{ConductorApiClient, Envelope};
use std::time::Duration;
use tokio::time::Instant;

/// Tries of one commit (op-node's conductor client retries once).
pub const COMMIT_TRIES: usize = 2;
/// Pause between two tries.
pub const COMMIT_RETRY_DELAY: Duration = Duration::from_millis(50);
/// op-node's default `--conductor.rpc-timeout`.
pub const DEFAULT_RPC_TIMEOUT_MS: u64 = 1_000;
/// What a failed commit costs the sequencer: op-node treats it as a temporary engine error and
/// backs off its next sequencing action by a second.
pub const COMMIT_FAILURE_BACKOFF: Duration = Duration::from_secs(1);
/// The largest request the client sends (op-conductor's fork accepts 16 MiB).
const MAX_REQUEST_BYTES: u32 = 64 * 1024 * 1024;
/// What a call refused by a `conductor_drop` fault fails with.
pub const REFUSED: &str = "conductor unreachable: connection refused";

/// Faults on the path from op-node to its conductor (`conductor_delay`, `conductor_drop`), as
/// they stand when a call starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PathFaults {
    /// Added one-way latency before a call reaches the conductor.
    pub delay: Duration,
    /// Calls never reach the conductor: refused at once, or black-holed (never answered).
    pub dropped: Option<IsolateMode>,
}

/// One node's client of its conductor.
#[derive(Debug, Clone)]
pub struct ConductorClient {
    url: String,
    client: HttpClient,
    timeout: Duration,
}

impl ConductorClient {
    /// A client of `url` whose every call is bounded by `timeout`.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, SimError> {
        let client = HttpClientBuilder::default()
            .request_timeout(timeout)
            .max_request_size(MAX_REQUEST_BYTES)
            .build(url)
            .map_err(|err| {
                SimError::BadConfig(format!("conductor_rpc {url:?} is not a usable URL: {err}"))
            })?;
        Ok(Self { url: url.to_owned(), client, timeout })
    }

    /// The conductor's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `conductor_leader`, once, through `path`.
    pub async fn leader(&self, path: PathFaults) -> Result<bool, String> {
        self.call(path, self.client.leader()).await.map_err(|err| format!("conductor_leader: {err}"))
    }

    /// `conductor_commitUnsafePayload`, tried twice 50 ms apart, each try through the path's
    /// faults as they stand when it starts. The instant the accepted try was sent, or why both
    /// failed.
    pub async fn commit(
        &self,
        envelope: &Envelope,
        path: impl Fn() -> PathFaults,
    ) -> Result<Instant, CommitFailure> {
        let mut failure = CommitFailure { error: String::new(), unanswered_sent_at: None };
        for attempt in 0..COMMIT_TRIES {
            if attempt > 0 {
                tokio::time::sleep(COMMIT_RETRY_DELAY).await;
            }
            let sent_at = Instant::now();
            match self.call(path(), self.client.commit_unsafe_payload(envelope.clone())).await {
                Ok(()) => return Ok(sent_at),
                Err(err) => {
                    if matches!(err, CallError::Unanswered(_)) {
                        failure.unanswered_sent_at.get_or_insert(sent_at);
                    }
                    failure.error = err.to_string();
                }
            }
        }
        Err(failure)
    }

    /// One call through `path`, bounded by the rpc timeout (the delay included).
    async fn call<T>(
        &self,
        path: PathFaults,
        call: impl Future<Output = Result<T, jsonrpsee::core::ClientError>>,
    ) -> Result<T, CallError> {
        let deadline = Instant::now() + self.timeout;
        let no_answer = || format!("no answer within {} ms", self.timeout.as_millis());
        // Still on its way when the try gave up: it never arrives.
        if tokio::time::timeout_at(deadline, tokio::time::sleep(path.delay)).await.is_err() {
            return Err(CallError::NotDelivered(no_answer()));
        }
        match path.dropped {
            Some(IsolateMode::Refuse) => Err(CallError::NotDelivered(REFUSED.to_owned())),
            Some(IsolateMode::Blackhole) => {
                tokio::time::sleep_until(deadline).await;
                Err(CallError::NotDelivered(no_answer()))
            }
            None => match tokio::time::timeout_at(deadline, call).await {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(err @ jsonrpsee::core::ClientError::Call(_))) => {
                    Err(CallError::Refused(err.to_string()))
                }
                Ok(Err(err)) => Err(CallError::Unanswered(err.to_string())),
                Err(_) => Err(CallError::Unanswered(no_answer())),
            },
        }
    }
}

/// Why one call to the conductor failed, as far as op-node can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
enum CallError {
    /// The conductor answered with an error: it did not act on the call.
    Refused(String),
    /// The call never reached the conductor (`conductor_drop`, or delayed past the timeout).
    NotDelivered(String),
    /// No answer came back (a timeout, a connection closed mid-call): the conductor may have
    /// acted on it, e.g. committed the payload and lost the answer in a restart.
    Unanswered(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused(error) | Self::NotDelivered(error) | Self::Unanswered(error) => f.write_str(error),
        }
    }
}

/// A commit the conductor did not acknowledge: op-node drops the block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitFailure {
    /// The last try's error.
    pub error: String,
    /// When the first try that got no answer was sent: the conductor may have accepted that one
    /// (committed it and lost the answer), so the block may be among its committed payloads.
    /// None when every try was refused or never reached it.
    pub unanswered_sent_at: Option<Instant>,
}
