//! Calls to one sequencer node (op-node + op-geth), each with its own deadline.
//!
//! The coordinator never waits on a node without a deadline: a node that accepts a connection and
//! never answers must cost one timeout, not a stuck loop. Replies are capped in size, so a node
//! that streams megabytes is a malformed reply, not an out-of-memory.

use alloy_primitives::B256;
use jsonrpsee::{
    core::{ClientError, client::ClientT, traits::ToRpcParams},
    http_client::{HttpClient, HttpClientBuilder},
};
use opc_wire::{
    BlockHeader, BlockNumberOrTag, RollupConfig, SyncStatus,
    api::{EthApiClient, OpAdminApiClient, OptimismApiClient},
    conductor::{Envelope, OpNodeConductorAdminApiClient, ProxyTarget},
    op_node_errors::AdminError,
};
use serde_json::value::RawValue;
use std::{future::Future, time::Duration};
use tokio::time::Instant;

/// Largest reply accepted from a node. Real replies are a few kilobytes.
pub const MAX_REPLY_BYTES: u32 = 1024 * 1024;
/// Largest request sent to a node: a replayed payload of up to `conductor.max_payload_bytes`
/// (at most 1 GiB) and its JSON-RPC wrapping.
const MAX_REQUEST_BYTES: u32 = (1 << 30) + 64 * 1024;

/// Why a call to a node failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// Connection refused, reset or closed: nothing is listening or the process died.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// No answer within the deadline.
    #[error("no answer within {0} ms")]
    Timeout(u64),
    /// An answer that is not a valid reply of the expected shape (or is too large).
    #[error("malformed reply: {0}")]
    Malformed(String),
    /// A JSON-RPC error, classified from op-node's message.
    #[error("{message} (code {code})")]
    Rpc {
        /// What it means.
        kind: AdminError,
        /// JSON-RPC code.
        code: i32,
        /// The node's message.
        message: String,
    },
}

impl CallError {
    /// True when the node did not answer at all (refused, closed, timed out).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Self::Unreachable(_) | Self::Timeout(_))
    }

    /// The admin error kind, if this is one.
    pub fn admin_kind(&self) -> Option<AdminError> {
        match self {
            Self::Rpc { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    fn from_client(err: ClientError, timeout_ms: u64) -> Self {
        match err {
            ClientError::Call(object) => Self::Rpc {
                kind: AdminError::classify(object.code(), object.message()),
                code: object.code(),
                message: object.message().to_owned(),
            },
            ClientError::RequestTimeout => Self::Timeout(timeout_ms),
            ClientError::ParseError(err) => Self::Malformed(err.to_string()),
            ClientError::Transport(err) => classify_transport(&err.to_string()),
            ClientError::InvalidRequestId(err) => Self::Malformed(err.to_string()),
            ClientError::RestartNeeded(err) => Self::Unreachable(err.to_string()),
            other => Self::Malformed(other.to_string()),
        }
    }
}

/// Transport errors arrive as text; tell "nobody there" from "something answered badly".
fn classify_transport(text: &str) -> CallError {
    let lower = text.to_ascii_lowercase();
    let malformed = ["too large", "too big", "invalid", "parse", "status code", "content-type", "utf"];
    if malformed.iter().any(|needle| lower.contains(needle)) {
        CallError::Malformed(text.to_owned())
    } else {
        CallError::Unreachable(text.to_owned())
    }
}

/// A call's outcome and how long it took.
#[derive(Debug, Clone)]
pub struct Timed<T> {
    /// The outcome.
    pub result: Result<T, CallError>,
    /// Time from sending to the outcome.
    pub latency: Duration,
}

impl<T> Timed<T> {
    /// True when the node answered at all (a reply or a JSON-RPC error), so `latency` is its
    /// answer time, not the time to a refused connection or to the deadline.
    pub fn answered(&self) -> bool {
        !matches!(&self.result, Err(err) if err.is_unreachable())
    }
}

/// JSON-RPC clients for one node's op-node and op-geth.
#[derive(Debug, Clone)]
pub struct NodeClient {
    op_node: HttpClient,
    op_geth: HttpClient,
}

impl NodeClient {
    /// Clients for the two URLs. The per-call deadline is passed to each call.
    pub fn new(op_node_url: &str, op_geth_url: &str) -> Result<Self, CallError> {
        Self::with_headers(op_node_url, op_geth_url, &[])
    }

    /// [`NodeClient::new`] with extra HTTP headers on every request.
    pub fn with_headers(
        op_node_url: &str,
        op_geth_url: &str,
        headers: &[(&'static str, String)],
    ) -> Result<Self, CallError> {
        Self::build(op_node_url, op_geth_url, headers, MAX_REPLY_BYTES)
    }

    /// Clients for the conductor endpoint's proxy ([`NodeClient::forward`]), whose replies (a
    /// block with its transactions) may be up to `max_reply_bytes`.
    pub fn for_proxy(op_node_url: &str, op_geth_url: &str, max_reply_bytes: u32) -> Result<Self, CallError> {
        Self::build(op_node_url, op_geth_url, &[], max_reply_bytes)
    }

    fn build(
        op_node_url: &str,
        op_geth_url: &str,
        headers: &[(&'static str, String)],
        max_reply_bytes: u32,
    ) -> Result<Self, CallError> {
        let mut header_map = jsonrpsee::http_client::HeaderMap::new();
        for (name, value) in headers {
            let value = jsonrpsee::http_client::HeaderValue::from_str(value)
                .map_err(|err| CallError::Malformed(format!("bad header {name}: {err}")))?;
            header_map.insert(*name, value);
        }
        let build = |url: &str| {
            HttpClientBuilder::default()
                .set_headers(header_map.clone())
                .max_response_size(max_reply_bytes)
                // Replayed payloads (conductor mode) can be as large as conductor.max_payload_bytes.
                .max_request_size(MAX_REQUEST_BYTES)
                // Our own deadline (below) is what counts; this only bounds leftovers.
                .request_timeout(Duration::from_secs(60))
                .build(url)
                .map_err(|err| CallError::Malformed(format!("bad URL {url}: {err}")))
        };
        Ok(Self { op_node: build(op_node_url)?, op_geth: build(op_geth_url)? })
    }

    /// `optimism_syncStatus`.
    pub async fn sync_status(&self, timeout: Duration) -> Timed<SyncStatus> {
        timed(timeout, self.op_node.sync_status()).await
    }

    /// `optimism_rollupConfig`: the chain's block time, among others.
    pub async fn rollup_config(&self, timeout: Duration) -> Timed<RollupConfig> {
        timed(timeout, self.op_node.rollup_config()).await
    }

    /// `eth_getBlockByNumber("latest", false)`; a `null` block is a malformed reply.
    pub async fn latest_block(&self, timeout: Duration) -> Timed<BlockHeader> {
        let outcome = timed(timeout, self.op_geth.block_by_number(BlockNumberOrTag::Latest, false)).await;
        Timed {
            latency: outcome.latency,
            result: outcome.result.and_then(|block| {
                block.ok_or_else(|| CallError::Malformed("op-geth has no latest block (null)".into()))
            }),
        }
    }

    /// `admin_sequencerActive`.
    pub async fn sequencer_active(&self, timeout: Duration) -> Timed<bool> {
        timed(timeout, self.op_node.admin_sequencer_active()).await
    }

    /// `admin_stopSequencer`: the stopped hash (may be zero on 2023 nodes).
    pub async fn stop_sequencer(&self, timeout: Duration) -> Timed<B256> {
        timed(timeout, self.op_node.admin_stop_sequencer()).await
    }

    /// `admin_startSequencer(hash)`.
    pub async fn start_sequencer(&self, hash: B256, timeout: Duration) -> Timed<()> {
        timed(timeout, self.op_node.admin_start_sequencer(hash)).await
    }

    /// `admin_postUnsafePayload(envelope)` (conductor mode's replay).
    pub async fn post_unsafe_payload(&self, envelope: Envelope, timeout: Duration) -> Timed<()> {
        timed(timeout, self.op_node.post_unsafe_payload(envelope)).await
    }

    /// `method` with the caller's `params` as they came, to `target`; the reply as the node sent
    /// it (the conductor endpoint's proxy).
    pub async fn forward(
        &self,
        target: ProxyTarget,
        method: &str,
        params: Option<Box<RawValue>>,
        timeout: Duration,
    ) -> Timed<Box<RawValue>> {
        let client = match target {
            ProxyTarget::OpNode => &self.op_node,
            ProxyTarget::OpGeth => &self.op_geth,
        };
        timed(timeout, client.request::<Box<RawValue>, _>(method, AsSent(params))).await
    }
}

/// Parameters passed on exactly as a caller sent them.
struct AsSent(Option<Box<RawValue>>);

impl ToRpcParams for AsSent {
    fn to_rpc_params(self) -> Result<Option<Box<RawValue>>, serde_json::Error> {
        Ok(self.0)
    }
}

async fn timed<T>(timeout: Duration, call: impl Future<Output = Result<T, ClientError>>) -> Timed<T> {
    let started = Instant::now();
    let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
    let result = match tokio::time::timeout(timeout, call).await {
        Ok(result) => result.map_err(|err| CallError::from_client(err, timeout_ms)),
        Err(_) => Err(CallError::Timeout(timeout_ms)),
    };
    Timed { result, latency: started.elapsed() }
}
