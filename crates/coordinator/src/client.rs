//! Calls to one sequencer node (op-node + op-geth), each with its own deadline.
//!
//! The coordinator never waits on a node without a deadline: a node that accepts a connection and
//! never answers must cost one timeout, not a stuck loop. Replies are capped in size, so a node
//! that streams megabytes is a malformed reply, not an out-of-memory.

use alloy_primitives::B256;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::{TokioExecutor, TokioTimer},
};
use jsonrpsee::{
    core::{ClientError, client::ClientT, traits::ToRpcParams},
    http_client::{HttpBackend, HttpBody, HttpClient, HttpClientBuilder, RpcService, RpcServiceBuilder},
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

/// An idle connection is closed after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// The HTTP connections of one coordinator's node clients: a single pool for all of them, keyed by
/// host and port, instead of one pool per client. A connection costs about 30 KB (hyper's buffers
/// and request queue); with a pool per client, each node's op-node and op-geth held one to four
/// open connections (a probe, its rollup-config question, an inspection that overlapped it), and
/// 1,000 chains held about 10,000. Shared, a host is held as many connections as it had calls in
/// flight at once, and nodes behind one host and port (op-sim's shared port, an ingress routing by
/// path) reuse each other's. A coordinator's calls in flight are bounded by its nodes: a probe, an
/// inspection and an action each.
///
/// Plain HTTP only: a client of an `https` URL keeps a pool of its own (TLS is set up per client).
#[derive(Debug, Clone)]
pub struct Connections {
    http: Client<HttpConnector, HttpBody>,
}

impl Default for Connections {
    fn default() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(IDLE_TIMEOUT)
            .pool_timer(TokioTimer::new())
            .build(connector);
        Self { http }
    }
}

/// Used as the node clients' HTTP layer: the backend jsonrpsee built for the client (a pool of its
/// own) is replaced by the shared one.
impl tower::Layer<HttpBackend> for Connections {
    type Service = HttpBackend;

    fn layer(&self, own: HttpBackend) -> HttpBackend {
        match own {
            HttpBackend::Http(_) => HttpBackend::Http(self.http.clone()),
            tls => tls,
        }
    }
}

/// A JSON-RPC client of one URL, without jsonrpsee's default request logger (it serialises every
/// request and reply again for a `trace` line, whatever the log level).
type RpcClient = HttpClient<RpcService<HttpBackend>>;

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
    op_node: RpcClient,
    op_geth: RpcClient,
}

impl NodeClient {
    /// Clients for the two URLs, on connections of their own. The per-call deadline is passed to
    /// each call.
    pub fn new(op_node_url: &str, op_geth_url: &str) -> Result<Self, CallError> {
        Self::with_headers(&Connections::default(), op_node_url, op_geth_url, &[])
    }

    /// Clients on `connections`, with extra HTTP headers on every request.
    pub fn with_headers(
        connections: &Connections,
        op_node_url: &str,
        op_geth_url: &str,
        headers: &[(&'static str, String)],
    ) -> Result<Self, CallError> {
        Self::build(connections, op_node_url, op_geth_url, headers, MAX_REPLY_BYTES)
    }

    /// Clients for the conductor endpoint's proxy ([`NodeClient::forward`]), whose replies (a
    /// block with its transactions) may be up to `max_reply_bytes`.
    pub fn for_proxy(
        connections: &Connections,
        op_node_url: &str,
        op_geth_url: &str,
        max_reply_bytes: u32,
    ) -> Result<Self, CallError> {
        Self::build(connections, op_node_url, op_geth_url, &[], max_reply_bytes)
    }

    fn build(
        connections: &Connections,
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
                .set_http_middleware(tower::ServiceBuilder::new().layer(connections.clone()))
                .set_rpc_middleware(RpcServiceBuilder::new())
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

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt as _, Full};
    use hyper::{Request, Response, body::Incoming, server::conn::http1, service::service_fn};
    use hyper_util::rt::TokioIo;
    use std::sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    };

    /// An HTTP server that answers `true` to any JSON-RPC call (never, on a path with `hung` in
    /// it) and counts the connections it accepted and the paths it was asked on.
    struct CountingServer {
        url: String,
        connections: Arc<AtomicUsize>,
        paths: Arc<Mutex<Vec<String>>>,
    }

    async fn counting_server() -> CountingServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let (connections, paths) = (Arc::new(AtomicUsize::new(0)), Arc::new(Mutex::new(Vec::new())));
        let (accepted, seen) = (connections.clone(), paths.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                accepted.fetch_add(1, Ordering::SeqCst);
                let seen = seen.clone();
                let answer = service_fn(move |request: Request<Incoming>| {
                    let seen = seen.clone();
                    async move {
                        let path = request.uri().path().to_owned();
                        seen.lock().expect("paths").push(path.clone());
                        if path.contains("hung") {
                            std::future::pending::<()>().await;
                        }
                        let body = request.into_body().collect().await?.to_bytes();
                        let call: serde_json::Value = serde_json::from_slice(&body).expect("a JSON-RPC call");
                        let reply = serde_json::json!({"jsonrpc": "2.0", "id": call["id"], "result": true});
                        Ok::<_, hyper::Error>(Response::new(Full::new(bytes::Bytes::from(reply.to_string()))))
                    }
                });
                tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), answer));
            }
        });
        CountingServer { url, connections, paths }
    }

    #[tokio::test]
    async fn node_clients_on_one_host_share_its_connections() {
        let server = counting_server().await;
        let connections = Connections::default();
        let clients: Vec<NodeClient> = (0..10)
            .map(|node| {
                let url = format!("{}/chain/seq-{node}/op-node", server.url);
                NodeClient::with_headers(&connections, &url, &url, &[]).expect("client")
            })
            .collect();
        for client in &clients {
            let answer = client.sequencer_active(Duration::from_secs(5)).await;
            assert_eq!(answer.result, Ok(true));
        }
        assert_eq!(server.connections.load(Ordering::SeqCst), 1, "ten nodes behind one host, one connection");
        let paths = server.paths.lock().expect("paths").clone();
        let expected: Vec<String> = (0..10).map(|node| format!("/chain/seq-{node}/op-node")).collect();
        assert_eq!(paths, expected, "each call still goes to its own node's path");

        // Clients made on their own (`NodeClient::new`) each open a connection.
        let apart = counting_server().await;
        for node in 0..3 {
            let url = format!("{}/chain/seq-{node}/op-node", apart.url);
            let client = NodeClient::new(&url, &url).expect("client");
            assert_eq!(client.sequencer_active(Duration::from_secs(5)).await.result, Ok(true));
        }
        assert_eq!(apart.connections.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_node_that_never_answers_costs_its_own_calls_only_on_the_shared_pool() {
        let server = counting_server().await;
        let connections = Connections::default();
        let client = |node: &str| {
            let url = format!("{}/chain/{node}/op-node", server.url);
            NodeClient::with_headers(&connections, &url, &url, &[]).expect("client")
        };
        let (hung, healthy) = (client("hung"), client("seq-1"));
        for _ in 0..3 {
            let cut_off = hung.sequencer_active(Duration::from_millis(50)).await;
            assert_eq!(cut_off.result, Err(CallError::Timeout(50)));
            let answered = healthy.sequencer_active(Duration::from_secs(5)).await;
            assert_eq!(answered.result, Ok(true), "the hung node's calls hold no connection it needs");
        }
        // Each cut-off call's connection is closed with it (hyper cannot reuse a connection whose
        // reply never came); the healthy node's calls reuse one.
        let opened = server.connections.load(Ordering::SeqCst);
        assert!((3..=4).contains(&opened), "{opened} connections for 3 cut-off calls and 3 answered");
    }
}
