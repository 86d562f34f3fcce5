//! The conductor endpoint: `POST http://HOST:PORT/<chain>/<node>` answers the JSON-RPC calls op-node
//! makes on its `--conductor.rpc` (`conductor_leader`, `conductor_commitUnsafePayload`),
//! op-conductor's operator methods ([`super::operator`]) and its leader-only proxy; `POST
//! http://HOST:PORT/<chain>` proxies the same reads to whoever leads the chain ([`super::proxy`]).
//!
//! op-node sends no credentials and knows one URL only, so the path names the caller: node `N`
//! of chain `C` is configured with `--conductor.rpc=http://HOST:PORT/C/N`. Anything else gets a 404
//! whose JSON-RPC error says which paths exist. The endpoint listens on loopback by default
//! (`conductor.listen`); a node's path takes calls only from the addresses in its
//! `conductor_allow`, when that is set (a call from another is refused with HTTP 403 and counted).
//! See docs/operations.md for the trust model.
//!
//! | path | from | served |
//! |---|---|---|
//! | `/C/N`, N a node of C in conductor mode | an address in N's `conductor_allow`, or any when it is empty | N's calls, the operator methods, the proxy to N while it leads |
//! | `/C/N` | any other address | 403, `not allowed: ...` naming the address and the key |
//! | `/C`, C a chain in conductor mode | any | the proxy to C's leader |
//! | anything else | any | 404 listing the paths served |
//!
//! The body bound is `conductor.max_payload_bytes` plus room for the JSON-RPC wrapping; a larger
//! request is refused before it is read.
//!
//! In a cluster every replica serves the endpoint, and op-node knows one URL only: a replica that
//! does not hold a confirmed leadership forwards the request, as it came, to the leader's
//! `conductor_addr` (once: a forwarded request is never forwarded again), naming the caller's
//! address in `x-opc-forwarded-for`. The leader takes that address for the allow-list only from a
//! member of the cluster.

use super::{
    ChainFence,
    operator::{NodeEndpoint, NodeOperator},
    proxy::{Proxy, Upstream},
};
use crate::{
    actor::{ActorError, ChainHandle},
    api::{ApiBody, FORWARDED_HEADER, HttpClient, PeerAddr, http_client, post_json, reply, serve_requests},
    client::{Connections, NodeClient},
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
    conductor::{COMMIT_REFUSED_CODE, CommitRefusal, ConductorApiServer, ConductorOpsApiServer, Envelope},
    jsonrpc::{dispatch, error_reply},
};
use std::{
    collections::BTreeMap,
    net::IpAddr,
    sync::Arc,
    time::{Duration, Instant},
};
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

/// What the endpoint runs on beyond its chains, built once from the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointSettings {
    /// `conductor.max_payload_bytes`: the request bound, less the JSON-RPC wrapping.
    pub max_payload_bytes: usize,
    /// `conductor.proxy_timeout_ms`: the deadline of one proxied call.
    pub proxy_timeout: Duration,
    /// `conductor.proxy_max_reply_bytes`: the largest reply a proxied call brings back.
    pub proxy_max_reply_bytes: u32,
    /// How long a hand-over asked here may take (as `coordinator_setActiveSequencer`).
    pub handover_timeout: Duration,
}

/// What a path serves.
#[derive(Debug)]
enum Route {
    /// `/<chain>/<node>`: the node's calls, the operator methods, the proxy to the node.
    Node {
        chain: String,
        node: String,
        /// The node's `conductor_allow`; empty: any address.
        allow: Vec<IpAddr>,
        methods: Methods,
    },
    /// `/<chain>`: the proxy to whoever leads the chain.
    Chain(Methods),
}

/// Why a request is not dispatched.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Turned {
    /// The path names no route.
    UnknownPath,
    /// The caller's address is not in the node's `conductor_allow`.
    NotAllowed { chain: String, node: String, address: String },
}

/// Whether `allow` lets `address` call (an IPv4 address seen through an IPv6 socket counts as
/// itself).
fn admits(allow: &[IpAddr], address: Option<IpAddr>) -> bool {
    allow.is_empty()
        || address.is_some_and(|address| {
            allow.iter().any(|allowed| allowed.to_canonical() == address.to_canonical())
        })
}

/// The header a forwarding replica names the original caller's address in.
const FORWARDED_FOR_HEADER: &str = "x-opc-forwarded-for";
/// How long a forwarded call may take: a commit waits for a quorum, never for a fail-over.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);

/// Every route of the endpoint, by path.
#[derive(Debug)]
pub struct ConductorRoutes {
    routes: BTreeMap<String, Route>,
    /// Each chain's fence, which says whether this replica answers or forwards.
    fences: BTreeMap<String, Arc<ChainFence>>,
    settings: EndpointSettings,
    http: HttpClient,
    /// The proxy's connections to the nodes, shared by every route.
    proxied: Connections,
}

impl ConductorRoutes {
    /// No routes yet.
    pub fn new(settings: EndpointSettings) -> Self {
        let (routes, fences, http) = (BTreeMap::new(), BTreeMap::new(), http_client());
        Self { routes, fences, settings, http, proxied: Connections::default() }
    }

    /// Routes for `nodes` of the chain whose actor is `chain`: one path per node, and the chain's
    /// own path. A chain without a fence (not in conductor mode) gets none.
    pub fn add_chain(&mut self, chain: &ChainHandle, nodes: &[NodeEndpoint]) -> Result<(), ActorError> {
        let Some(fence) = &chain.fence else {
            return Ok(());
        };
        self.fences.insert(chain.name.clone(), fence.clone());
        let mut clients = BTreeMap::new();
        for node in nodes {
            let client = NodeClient::for_proxy(
                &self.proxied,
                &node.op_node_url,
                &node.op_geth_url,
                self.settings.proxy_max_reply_bytes,
            )
            .map_err(|source| ActorError::Client {
                chain: chain.name.clone(),
                node: node.name.clone(),
                source,
            })?;
            clients.insert(node.name.clone(), client);
        }
        let shared: Arc<[NodeEndpoint]> = nodes.into();
        for node in nodes {
            let mut methods: Methods =
                NodeConductor { fence: fence.clone(), node: node.name.clone() }.into_rpc().into();
            let operator = NodeOperator {
                chain: chain.clone(),
                fence: fence.clone(),
                node: node.name.clone(),
                nodes: shared.clone(),
                handover_timeout: self.settings.handover_timeout,
            };
            methods.merge(operator.into_rpc()).expect("the operator methods are not op-node's");
            methods.merge(self.proxy(fence, &clients, Upstream::Node(node.name.clone()))).expect("no clash");
            let route = Route::Node {
                chain: chain.name.clone(),
                node: node.name.clone(),
                allow: node.allow.clone(),
                methods,
            };
            self.routes.insert(format!("/{}/{}", chain.name, node.name), route);
        }
        let following = self.proxy(fence, &clients, Upstream::Leader).into();
        self.routes.insert(format!("/{}", chain.name), Route::Chain(following));
        Ok(())
    }

    fn proxy(
        &self,
        fence: &Arc<ChainFence>,
        clients: &BTreeMap<String, NodeClient>,
        upstream: Upstream,
    ) -> RpcModule<Proxy> {
        let clients = match &upstream {
            Upstream::Node(node) => clients
                .iter()
                .filter(|(name, _)| *name == node)
                .map(|(n, c)| (n.clone(), c.clone()))
                .collect(),
            Upstream::Leader => clients.clone(),
        };
        Proxy { fence: fence.clone(), clients, upstream, timeout: self.settings.proxy_timeout }.into_module()
    }

    /// True when no chain runs in conductor mode.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The paths served, sorted.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.routes.keys().map(String::as_str)
    }

    /// Where a request for `path` from `address` goes: the one routing decision of the endpoint.
    fn route(&self, path: &str, address: Option<IpAddr>) -> Result<&Methods, Turned> {
        match self.routes.get(path) {
            None => Err(Turned::UnknownPath),
            Some(Route::Chain(methods)) => Ok(methods),
            Some(Route::Node { allow, methods, .. }) if admits(allow, address) => Ok(methods),
            Some(Route::Node { chain, node, .. }) => Err(Turned::NotAllowed {
                chain: chain.clone(),
                node: node.clone(),
                address: address.map_or_else(
                    || "an unknown address".to_owned(),
                    |address| address.to_canonical().to_string(),
                ),
            }),
        }
    }

    async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Result<Response<ApiBody>, hyper::Error> {
        let path = request.uri().path().trim_end_matches('/').to_owned();
        let peer = request.extensions().get::<PeerAddr>().map(|peer| peer.0.ip());
        let forwarded_by =
            request.headers().get(FORWARDED_HEADER).map(|value| value.to_str().unwrap_or("?").to_owned());
        let address = self.caller(peer, forwarded_by.is_some(), request.headers());
        let methods = match self.route(&path, address) {
            Ok(methods) => methods,
            Err(turned) => return Ok(self.turn_away(&path, turned)),
        };
        if request.method() != Method::POST {
            return Ok(reply(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "POST JSON-RPC\n"));
        }
        let limit = self.settings.max_payload_bytes + WRAPPING_BYTES;
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok()?.parse::<usize>().ok());
        if let Some(length) = declared.filter(|length| *length > limit) {
            return Ok(too_large(length, limit));
        }
        let body = match Limited::new(request.into_body(), limit).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => return Ok(too_large(limit + 1, limit)),
        };
        let chain = path.trim_start_matches('/').split('/').next().unwrap_or_default();
        if let Some(target) = self.fences.get(chain).and_then(|fence| fence.forward_to()) {
            return Ok(self.forward(target, &path, forwarded_by, address, body).await);
        }
        let text = dispatch(methods, &body).await;
        Ok(reply(StatusCode::OK, "application/json", text))
    }

    /// The caller's address: the peer's, or, for a call another replica forwarded, the one it
    /// names (taken only from a member of the cluster).
    fn caller(&self, peer: Option<IpAddr>, forwarded: bool, headers: &header::HeaderMap) -> Option<IpAddr> {
        let named = headers.get(FORWARDED_FOR_HEADER).and_then(|value| value.to_str().ok()?.parse().ok());
        match (forwarded, named, peer) {
            (true, Some(named), Some(peer))
                if self.fences.values().next().is_some_and(|fence| fence.is_replica_address(peer)) =>
            {
                Some(named)
            }
            _ => peer,
        }
    }

    /// Sends a request this replica may not answer to the leader replica (`target`), once.
    async fn forward(
        &self,
        target: Result<(u64, String), String>,
        path: &str,
        forwarded_by: Option<String>,
        address: Option<IpAddr>,
        body: Bytes,
    ) -> Response<ApiBody> {
        // The request's id is read only for a refusal: a forwarded payload is not parsed here.
        let refuse = |why: String| {
            let id = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|request| request.get("id").cloned())
                .unwrap_or_default();
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
        let me = self
            .fences
            .values()
            .find_map(|fence| fence.replica_id())
            .map_or("?".to_owned(), |id| id.to_string());
        let mut headers = vec![(FORWARDED_HEADER, me)];
        if let Some(address) = address {
            headers.push((FORWARDED_FOR_HEADER, address.to_string()));
        }
        let limit = self.settings.max_payload_bytes + WRAPPING_BYTES;
        match post_json(
            &self.http,
            format!("http://{addr}{path}"),
            &headers,
            body.clone(),
            FORWARD_TIMEOUT,
            limit,
        )
        .await
        {
            Ok((status, bytes)) => reply(status, "application/json", bytes),
            Err(err) => refuse(format!("forwarding to the leader replica {leader} at {addr} failed: {err}")),
        }
    }

    /// The answer to a request that is not dispatched (its body is never read).
    fn turn_away(&self, path: &str, turned: Turned) -> Response<ApiBody> {
        let (status, refusal) = match turned {
            Turned::UnknownPath => {
                let known: Vec<&str> = self.paths().take(8).collect();
                let refusal = CommitRefusal::UnknownCaller(format!(
                    "no node is configured at {path:?}; node N of chain C uses --conductor.rpc=http://HOST:PORT/C/N \
                     (served here: {}{})",
                    known.join(", "),
                    if self.routes.len() > known.len() { ", ..." } else { "" }
                ));
                (StatusCode::NOT_FOUND, refusal)
            }
            Turned::NotAllowed { chain, node, address } => {
                m::conductor_address_refused(&chain, &node);
                tracing::warn!(chain, node, address, "conductor call refused: address not allowed");
                let key = format!("chains.{chain}.sequencers.{node}.conductor_allow");
                (StatusCode::FORBIDDEN, CommitRefusal::AddressNotAllowed { address, key })
            }
        };
        let text = error_reply(&serde_json::Value::Null, COMMIT_REFUSED_CODE, &refusal.to_string());
        reply(status, "application/json", text)
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

/// [`serve_conductor`] on a thread and runtime of its own (`conductor`, with two workers); the
/// returned task ends when it does. op-node waits on every commit before it publishes a block, so
/// a commit must not queue behind the probes and engine steps of every chain on the coordinator's
/// runtime: at 1,000 chains it did, and commits took up to half a second.
pub fn spawn_conductor(
    routes: ConductorRoutes,
    listener: TcpListener,
    cancel: CancellationToken,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    // The listener is registered with the calling runtime's reactor: it moves as a std socket.
    let listener = listener.into_std()?;
    // Two workers: one large payload being decoded does not hold up every other chain's commit.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("conductor-worker")
        .enable_all()
        .build()?;
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new().name("conductor".into()).spawn(move || {
        runtime.block_on(async move {
            match TcpListener::from_std(listener) {
                Ok(listener) => serve_conductor(routes, listener, cancel).await,
                Err(err) => tracing::error!(%err, "conductor endpoint: cannot listen on its own runtime"),
            }
        });
        let _ = done_tx.send(());
    })?;
    Ok(tokio::spawn(async move {
        let _ = done_rx.await;
    }))
}

#[cfg(test)]
mod tests {
    use super::admits;
    use std::net::IpAddr;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn an_empty_allow_list_admits_anyone_and_a_list_only_its_addresses_however_they_arrive() {
        assert!(admits(&[], None));
        assert!(admits(&[], Some(ip("192.0.2.1"))));
        let allow = [ip("10.0.0.5"), ip("fd00::5")];
        assert!(admits(&allow, Some(ip("10.0.0.5"))));
        assert!(admits(&allow, Some(ip("::ffff:10.0.0.5"))), "IPv4 seen through an IPv6 socket");
        assert!(admits(&allow, Some(ip("fd00::5"))));
        assert!(!admits(&allow, Some(ip("10.0.0.6"))));
        assert!(!admits(&allow, None), "an unknown address is not on a list");
    }
}
