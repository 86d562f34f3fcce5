//! op-node's conductor client (`--conductor.enabled --conductor.rpc=URL`), as op-node uses it:
//!
//! - [`ConductorClient::leader`]: one `conductor_leader` call bounded by `--conductor.rpc-timeout`;
//!   an error is an error, never "leader".
//! - [`ConductorClient::commit`]: `conductor_commitUnsafePayload`, 2 tries 50 ms apart, each
//!   bounded by the rpc timeout. The caller drops the block when it fails.
//! - `admin_overrideLeader` makes every leader check answer true locally, without asking, until
//!   op-node restarts (the flag lives in the node's state, see [`crate::node`]).

use crate::error::SimError;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use opc_wire::conductor::{ConductorApiClient, Envelope};
use std::time::Duration;

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

    /// `conductor_leader`, once.
    pub async fn leader(&self) -> Result<bool, String> {
        match tokio::time::timeout(self.timeout, self.client.leader()).await {
            Ok(Ok(leader)) => Ok(leader),
            Ok(Err(err)) => Err(err.to_string()),
            Err(_) => Err(format!("conductor_leader: no answer within {} ms", self.timeout.as_millis())),
        }
    }

    /// `conductor_commitUnsafePayload`, tried twice 50 ms apart; the last error when both fail.
    pub async fn commit(&self, envelope: &Envelope) -> Result<(), String> {
        let mut last = String::new();
        for attempt in 0..COMMIT_TRIES {
            if attempt > 0 {
                tokio::time::sleep(COMMIT_RETRY_DELAY).await;
            }
            match tokio::time::timeout(self.timeout, self.client.commit_unsafe_payload(envelope.clone()))
                .await
            {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(err)) => last = err.to_string(),
                Err(_) => last = format!("no answer within {} ms", self.timeout.as_millis()),
            }
        }
        Err(last)
    }
}
