//! The conductor endpoint: `POST http://HOST:PORT/<chain>/<node>` answers the JSON-RPC calls op-node
//! makes on its `--conductor.rpc` (`conductor_leader`, `conductor_commitUnsafePayload`).
//!
//! op-node sends no credentials and knows one URL only, so the path names the caller: node `N`
//! of chain `C` is configured with `--conductor.rpc=http://HOST:PORT/C/N`. Anything else gets a 404
//! whose JSON-RPC error says which paths exist. The endpoint listens on loopback by default
//! (`conductor.listen`); see docs/operations.md for the trust model.
//!
//! The body bound is `conductor.max_payload_bytes` plus room for the JSON-RPC wrapping; a larger
//! request is refused before it is read.
//!
//! In a cluster every replica serves the endpoint, and op-node knows one URL only: a replica that
//! does not hold a confirmed leadership forwards the request, as it came, to the leader's
//! `conductor_addr` (once: a forwarded request is never forwarded again).

use super::ChainFence;
use crate::{
    api::{ApiBody, FORWARDED_HEADER, HttpClient, http_client, post_json, reply, serve_requests},
    metrics as m,
};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::{Method, Request, Response, StatusCode, body::Incoming, header};
use jsonrpsee::{
    Methods, RpcModule,
    core::{RpcResult, async_trait},
    types::ErrorObjectOwned,
};
use opc_wire::{
    conductor::{COMMIT_REFUSED_CODE, CommitRefusal, ConductorApiServer, Envelope},
    jsonrpc::{dispatch, error_reply},
};
use std::{collections::BTreeMap, sync::Arc, time::Duration, time::Instant};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Room for the JSON-RPC wrapping around the largest payload.
const WRAPPING_BYTES: usize = 64 * 1024;
/// Connections served at once (each op-node keeps one or two open).
const MAX_CONNECTIONS: usize = 4096;

/// The conductor methods of one node: its calls, judged by its chain's fence.
#[derive(Debug, Clone)]
struct NodeConductor {
    fence: Arc<ChainFence>,
    node: String,
}

#[async_trait]
impl ConductorApiServer for NodeConductor {
    async fn leader(&self) -> RpcResult<bool> {
        Ok(self.fence.is_leader(&self.node).await)
    }

    async fn commit_unsafe_payload(&self, envelope: Envelope) -> RpcResult<()> {
        let started = Instant::now();
        let head = *envelope.head();
        let chain = self.fence.chain().to_owned();
        let result = self.fence.commit(&self.node, envelope).await;
        let label = match &result {
            Ok(()) => "accepted",
            Err(refusal) => refusal.as_str(),
        };
        metrics::counter!(m::CONDUCTOR_COMMITS_TOTAL, "chain" => chain.clone(), "result" => label)
            .increment(1);
        match result {
            Ok(()) => {
                metrics::histogram!(m::CONDUCTOR_COMMIT_DURATION_SECONDS, "chain" => chain.clone())
                    .record(started.elapsed().as_secs_f64());
                metrics::gauge!(m::CONDUCTOR_COMMITTED_HEAD_NUMBER, "chain" => chain).set(head.number as f64);
                Ok(())
            }
            Err(refusal) => {
                log_refusal(&chain, &self.node, head.number, &refusal);
                Err(ErrorObjectOwned::owned(COMMIT_REFUSED_CODE, refusal.to_string(), None::<()>))
            }
        }
    }
}

/// A deposed leader retrying every second is expected (debug); anything else is worth a warning.
fn log_refusal(chain: &str, node: &str, number: u64, refusal: &CommitRefusal) {
    match refusal {
        CommitRefusal::NotLeader { .. } => {
            tracing::debug!(chain, node, number, %refusal, "commit refused")
        }
        _ => tracing::warn!(chain, node, number, %refusal, "commit refused"),
    }
}

/// How long a forwarded call may take: a commit waits for a quorum, never for a fail-over.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);

/// Every node's methods, by path `/<chain>/<node>`.
#[derive(Debug, Clone)]
pub struct ConductorRoutes {
    routes: BTreeMap<String, Methods>,
    /// Each chain's fence, which says whether this replica answers or forwards.
    fences: BTreeMap<String, Arc<ChainFence>>,
    max_payload_bytes: usize,
    http: HttpClient,
}

impl Default for ConductorRoutes {
    fn default() -> Self {
        Self { routes: BTreeMap::new(), fences: BTreeMap::new(), max_payload_bytes: 0, http: http_client() }
    }
}

impl ConductorRoutes {
    /// Routes for `nodes` of the chain `fence` guards; requests bounded by `max_payload_bytes`.
    pub fn add_chain(&mut self, fence: &Arc<ChainFence>, nodes: &[String], max_payload_bytes: usize) {
        self.max_payload_bytes = self.max_payload_bytes.max(max_payload_bytes);
        self.fences.insert(fence.chain().to_owned(), fence.clone());
        for node in nodes {
            let conductor = NodeConductor { fence: fence.clone(), node: node.clone() };
            let module: RpcModule<NodeConductor> = conductor.into_rpc();
            self.routes.insert(format!("/{}/{node}", fence.chain()), module.into());
        }
    }

    /// True when no chain runs in conductor mode.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The paths served, sorted.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.routes.keys().map(String::as_str)
    }

    async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Result<Response<ApiBody>, hyper::Error> {
        let path = request.uri().path().trim_end_matches('/').to_owned();
        let Some(methods) = self.routes.get(&path) else {
            let known: Vec<&str> = self.paths().take(8).collect();
            let refusal = CommitRefusal::UnknownCaller(format!(
                "no node is configured at {path:?}; node N of chain C uses --conductor.rpc=http://HOST:PORT/C/N \
                 (served here: {}{})",
                known.join(", "),
                if self.routes.len() > known.len() { ", ..." } else { "" }
            ));
            let text = error_reply(&serde_json::Value::Null, COMMIT_REFUSED_CODE, &refusal.to_string());
            return Ok(reply(StatusCode::NOT_FOUND, "application/json", text));
        };
        if request.method() != Method::POST {
            return Ok(reply(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "POST JSON-RPC\n"));
        }
        let limit = self.max_payload_bytes + WRAPPING_BYTES;
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok()?.parse::<usize>().ok());
        if let Some(length) = declared.filter(|length| *length > limit) {
            return Ok(too_large(length, limit));
        }
        let forwarded_by =
            request.headers().get(FORWARDED_HEADER).map(|value| value.to_str().unwrap_or("?").to_owned());
        let body = match Limited::new(request.into_body(), limit).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => return Ok(too_large(limit + 1, limit)),
        };
        let chain = path.trim_start_matches('/').split('/').next().unwrap_or_default();
        if let Some(target) = self.fences.get(chain).and_then(|fence| fence.forward_to()) {
            return Ok(self.forward(target, &path, forwarded_by, body).await);
        }
        let text = dispatch(methods, &body).await;
        Ok(reply(StatusCode::OK, "application/json", text))
    }

    /// Sends a request this replica may not answer to the leader replica (`target`), once.
    async fn forward(
        &self,
        target: Result<(u64, String), String>,
        path: &str,
        forwarded_by: Option<String>,
        body: Bytes,
    ) -> Response<ApiBody> {
        let id = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|request| request.get("id").cloned())
            .unwrap_or_default();
        let refuse = |why: String| {
            let refusal = CommitRefusal::NotDurable(why);
            reply(
                StatusCode::OK,
                "application/json",
                error_reply(&id, COMMIT_REFUSED_CODE, &refusal.to_string()),
            )
        };
        let (leader, addr) = match (target, forwarded_by) {
            (Err(why), _) => return refuse(why),
            (Ok((leader, _)), Some(from)) => {
                return refuse(format!(
                    "replica {from} forwarded this call here, but this replica does not lead either (replica \
                     {leader} does, as far as it knows); retry in a second"
                ));
            }
            (Ok(target), None) => target,
        };
        let headers = [(FORWARDED_HEADER, self.replica_label())];
        let limit = self.max_payload_bytes + WRAPPING_BYTES;
        match post_json(&self.http, format!("http://{addr}{path}"), &headers, body, FORWARD_TIMEOUT, limit)
            .await
        {
            Ok((status, bytes)) => reply(status, "application/json", bytes),
            Err(err) => refuse(format!("forwarding to the leader replica {leader} at {addr} failed: {err}")),
        }
    }

    /// This replica, as a forwarded request names it.
    fn replica_label(&self) -> String {
        self.fences
            .values()
            .find_map(|fence| fence.replica_id())
            .map_or_else(|| "?".to_owned(), |id| id.to_string())
    }
}

/// `bytes`: the declared length, or `limit + 1` when the body ran past the limit undeclared.
fn too_large(bytes: usize, limit: usize) -> Response<ApiBody> {
    let refusal = CommitRefusal::TooLarge { bytes, limit: limit - WRAPPING_BYTES };
    let text = error_reply(&serde_json::Value::Null, COMMIT_REFUSED_CODE, &refusal.to_string());
    let mut response = reply(StatusCode::PAYLOAD_TOO_LARGE, "application/json", text);
    response.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
    response
}

/// Serves the conductor endpoint on `listener` until `cancel`.
pub async fn serve_conductor(routes: ConductorRoutes, listener: TcpListener, cancel: CancellationToken) {
    let routes = Arc::new(routes);
    serve_requests(listener, cancel, MAX_CONNECTIONS, move |request| routes.clone().handle(request)).await;
}
