//! The admin API: `coordinator_*` JSON-RPC on `[rpc] listen`, plus `GET /healthz` and
//! `GET /readyz`; and `GET /metrics` on `[metrics] listen`.
//!
//! Handlers never touch chain state: they send a command to the chain's actor and await its reply.
//! When a JWT secret is configured, mutating methods require `Authorization: Bearer <HS256 JWT>`.
//!
//! In a cluster every replica answers reads from its own (replicated) view, and forwards a request
//! with a mutating method to the leader replica's API as it came (body and `Authorization`), so a
//! caller may talk to any replica. Without a known leader the call fails with an error saying so;
//! a forwarded request is never forwarded again (`x-opc-forwarded`), so two replicas that
//! disagree about the leader answer an error instead of bouncing it.

use crate::{
    actor::{ChainCommand, ChainHandle},
    jwt,
    replication::{self, Acting},
};
use alloy_primitives::B256;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, Response, StatusCode, body::Incoming, header, service::service_fn};
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::TokioIo;
use jsonrpsee::{
    Methods,
    core::{RpcResult, async_trait},
    types::ErrorObjectOwned,
};
use metrics_exporter_prometheus::PrometheusHandle;
use opc_cluster::{Cluster, ReplicaConfig};
use opc_wire::coordinator::{ChainStatus, ClusterInfo, CoordinatorApiServer, CoordinatorEvent, ReplicaInfo};
use std::{collections::BTreeMap, sync::Arc, time::Duration};
use tokio::{
    net::TcpListener,
    sync::{oneshot, watch},
};
use tokio_util::sync::CancellationToken;

/// Methods that change something; they need the JWT when one is configured, and in a cluster they
/// run on the leader replica.
pub const MUTATING_METHODS: [&str; 6] = [
    "coordinator_setActiveSequencer",
    "coordinator_startElection",
    "coordinator_stopElection",
    "coordinator_addReplica",
    "coordinator_removeReplica",
    "coordinator_transferLeadership",
];
/// JSON-RPC code of a refused token.
pub const UNAUTHORIZED_CODE: i32 = -32001;
/// JSON-RPC code of a mutating call that no leader replica could take.
pub const NO_LEADER_CODE: i32 = -32002;
/// Header marking a request one replica forwarded to another.
const FORWARDED_HEADER: &str = "x-opc-forwarded";
/// Largest request body accepted.
const MAX_REQUEST_BYTES: usize = 1024 * 1024;

/// The `coordinator_*` handlers.
#[derive(Debug, Clone)]
pub struct AdminApi {
    chains: Arc<BTreeMap<String, ChainHandle>>,
    /// How long `setActiveSequencer` may take before the caller is told to check the events.
    handover_timeout: Duration,
    /// The Raft replica, in a cluster.
    cluster: Option<Cluster>,
    /// Whether this replica acts.
    acting_rx: watch::Receiver<Acting>,
}

fn invalid(message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(jsonrpsee::types::error::INVALID_PARAMS_CODE, message.into(), None::<()>)
}

fn failed(message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(-32000, message.into(), None::<()>)
}

impl AdminApi {
    /// Handlers over the chains' actors (and the Raft replica, in a cluster).
    pub fn new(
        chains: Arc<BTreeMap<String, ChainHandle>>,
        handover_timeout: Duration,
        cluster: Option<Cluster>,
        acting_rx: watch::Receiver<Acting>,
    ) -> Self {
        Self { chains, handover_timeout, cluster, acting_rx }
    }

    fn cluster(&self) -> RpcResult<&Cluster> {
        self.cluster
            .as_ref()
            .ok_or_else(|| failed("this coordinator runs alone (no [cluster] in its config)"))
    }

    fn cluster_info(&self) -> ClusterInfo {
        let acting = self.acting_rx.borrow().is_some();
        let Some(cluster) = &self.cluster else {
            return ClusterInfo {
                replica: None,
                acting,
                term: 0,
                leader: None,
                leader_api_addr: None,
                replicas: Vec::new(),
                membership_changing: false,
                last_log_index: None,
                commit_index: None,
                applied_index: None,
            };
        };
        let status = cluster.status();
        let info = |replica: &ReplicaConfig, voter: bool| ReplicaInfo {
            id: replica.id,
            raft_addr: replica.raft_addr.clone(),
            api_addr: replica.api_addr.clone(),
            voter,
            lag_entries: status
                .is_leader()
                .then(|| status.replication_lag.get(&replica.id).copied().unwrap_or(0)),
        };
        let mut replicas: Vec<ReplicaInfo> =
            status.membership.voters.iter().map(|replica| info(replica, true)).collect();
        replicas.extend(status.membership.learners.iter().map(|replica| info(replica, false)));
        ClusterInfo {
            replica: Some(status.id),
            acting,
            term: status.term,
            leader: status.leader.as_ref().map(|leader| leader.id),
            leader_api_addr: status.leader.as_ref().and_then(|leader| leader.api_addr.clone()),
            replicas,
            membership_changing: status.membership.changing,
            last_log_index: status.last_log_index,
            commit_index: replication::commit_index(&status),
            applied_index: status.applied_index,
        }
    }

    fn chain(&self, chain: Option<&str>) -> RpcResult<&ChainHandle> {
        match chain {
            Some(name) => self.chains.get(name).ok_or_else(|| {
                let known: Vec<&String> = self.chains.keys().collect();
                invalid(format!("unknown chain {name:?}; configured chains: {known:?}"))
            }),
            None if self.chains.len() == 1 => {
                self.chains.values().next().ok_or_else(|| invalid("no chain configured"))
            }
            None => {
                let known: Vec<&String> = self.chains.keys().collect();
                Err(invalid(format!("this coordinator serves several chains {known:?}; pass the chain name")))
            }
        }
    }

    async fn ask<T>(
        &self,
        chain: &ChainHandle,
        make: impl FnOnce(oneshot::Sender<T>) -> ChainCommand,
    ) -> RpcResult<T> {
        chain.ask(make).await.ok_or_else(|| failed("chain actor stopped"))
    }

    async fn status_of(&self, chain: Option<String>) -> RpcResult<ChainStatus> {
        let handle = self.chain(chain.as_deref())?;
        self.ask(handle, ChainCommand::Status).await
    }

    /// The methods, for a server.
    pub fn methods(self) -> Methods {
        self.into_rpc().into()
    }
}

#[async_trait]
impl CoordinatorApiServer for AdminApi {
    async fn get_active_sequencer(&self, chain: Option<String>) -> RpcResult<Option<String>> {
        Ok(self.status_of(chain).await?.leader)
    }

    async fn set_active_sequencer(&self, name: String, chain: Option<String>) -> RpcResult<()> {
        let handle = self.chain(chain.as_deref())?;
        let outcome = tokio::time::timeout(
            self.handover_timeout,
            self.ask(handle, |reply| ChainCommand::Transfer { to: name.clone(), reply }),
        )
        .await
        .map_err(|_| {
            failed(format!(
                "hand-over to {name} still in progress after {} s; watch coordinator_events",
                self.handover_timeout.as_secs()
            ))
        })??;
        outcome.map_err(failed)
    }

    async fn start_election(&self, chain: Option<String>) -> RpcResult<()> {
        let handle = self.chain(chain.as_deref())?;
        self.ask(handle, |reply| ChainCommand::SetPaused { paused: false, reply }).await?.map_err(failed)
    }

    async fn stop_election(&self, chain: Option<String>) -> RpcResult<()> {
        let handle = self.chain(chain.as_deref())?;
        self.ask(handle, |reply| ChainCommand::SetPaused { paused: true, reply }).await?.map_err(failed)
    }

    async fn election_stopped(&self, chain: Option<String>) -> RpcResult<bool> {
        Ok(self.status_of(chain).await?.paused)
    }

    async fn get_stopped_hash(&self, chain: Option<String>) -> RpcResult<Option<B256>> {
        Ok(self.status_of(chain).await?.stopped_hash)
    }

    async fn status(&self, chain: Option<String>) -> RpcResult<Vec<ChainStatus>> {
        let handles: Vec<&ChainHandle> = match chain.as_deref() {
            Some(_) => vec![self.chain(chain.as_deref())?],
            None => self.chains.values().collect(),
        };
        let mut out = Vec::with_capacity(handles.len());
        for handle in handles {
            out.push(self.ask(handle, ChainCommand::Status).await?);
        }
        Ok(out)
    }

    async fn cluster_membership(&self) -> RpcResult<ClusterInfo> {
        Ok(self.cluster_info())
    }

    async fn add_replica(&self, id: u64, raft_addr: String, api_addr: String) -> RpcResult<ClusterInfo> {
        self.cluster()?
            .add_replica(ReplicaConfig { id, raft_addr, api_addr })
            .await
            .map_err(|err| failed(format!("adding replica {id}: {err}")))?;
        Ok(self.cluster_info())
    }

    async fn remove_replica(&self, id: u64) -> RpcResult<ClusterInfo> {
        self.cluster()?
            .remove_replica(id)
            .await
            .map_err(|err| failed(format!("removing replica {id}: {err}")))?;
        Ok(self.cluster_info())
    }

    async fn transfer_leadership(&self, id: u64) -> RpcResult<ClusterInfo> {
        self.cluster()?
            .transfer_leadership(id)
            .await
            .map_err(|err| failed(format!("moving leadership to replica {id}: {err}")))?;
        Ok(self.cluster_info())
    }

    async fn events(&self, chain: Option<String>, limit: Option<u64>) -> RpcResult<Vec<CoordinatorEvent>> {
        let limit = usize::try_from(limit.unwrap_or(100)).unwrap_or(usize::MAX);
        let handles: Vec<&ChainHandle> = match chain.as_deref() {
            Some(_) => vec![self.chain(chain.as_deref())?],
            None => self.chains.values().collect(),
        };
        let mut out = Vec::new();
        for handle in handles {
            out.extend(self.ask(handle, |reply| ChainCommand::Events { limit, reply }).await?);
        }
        out.sort_by_key(|event| event.at_unix_ms);
        let skip = out.len().saturating_sub(limit);
        Ok(out.split_off(skip))
    }
}

/// What the admin HTTP server needs.
#[derive(Debug, Clone)]
pub struct AdminServer {
    /// The JSON-RPC methods.
    pub methods: Methods,
    /// Required on mutating calls when set.
    pub jwt_secret: Option<[u8; 32]>,
    /// Readiness per chain.
    pub chains: Arc<BTreeMap<String, ChainHandle>>,
    /// In a cluster: where mutating calls go when this replica does not act.
    pub forward: Option<Forwarding>,
}

/// Sends mutating calls that reach a replica that does not act to the leader replica's API.
#[derive(Debug, Clone)]
pub struct Forwarding {
    cluster: Cluster,
    acting_rx: watch::Receiver<Acting>,
    http: Client<HttpConnector, Full<Bytes>>,
}

/// How long a forwarded call may take: a hand-over waits for a whole fail-over.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(60);

impl Forwarding {
    /// Forwarding through `cluster`'s view of the leader.
    pub fn new(cluster: Cluster, acting_rx: watch::Receiver<Acting>) -> Self {
        let http = Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
        Self { cluster, acting_rx, http }
    }

    /// The leader's answer to `body`, or a JSON-RPC error naming why it could not be had.
    async fn forward(
        &self,
        id: &serde_json::Value,
        body: Bytes,
        auth: Option<&str>,
    ) -> Response<Full<Bytes>> {
        let status = self.cluster.status();
        let leader = status.leader.as_ref().filter(|leader| leader.id != status.id);
        let Some((leader_id, addr)) = leader.and_then(|leader| Some((leader.id, leader.api_addr.clone()?)))
        else {
            let text = opc_wire::jsonrpc::error_reply(
                id,
                NO_LEADER_CODE,
                &format!(
                    "replica {} is not the Raft leader and knows no other leader right now (term {}); \
                     retry in a second",
                    status.id, status.term
                ),
            );
            return reply(StatusCode::OK, "application/json", text);
        };
        let mut request = Request::post(format!("http://{addr}/"))
            .header(header::CONTENT_TYPE, "application/json")
            .header(FORWARDED_HEADER, status.id.to_string());
        if let Some(auth) = auth {
            request = request.header(header::AUTHORIZATION, auth);
        }
        let outcome = match request.body(Full::new(body)) {
            Ok(request) => tokio::time::timeout(FORWARD_TIMEOUT, async {
                let response = self.http.request(request).await.map_err(|err| err.to_string())?;
                let status_code = response.status();
                let bytes = response.into_body().collect().await.map_err(|err| err.to_string())?.to_bytes();
                Ok::<_, String>((status_code, bytes))
            })
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {} s", FORWARD_TIMEOUT.as_secs()))),
            Err(err) => Err(err.to_string()),
        };
        match outcome {
            Ok((status_code, bytes)) => reply(status_code, "application/json", bytes),
            Err(err) => {
                let text = opc_wire::jsonrpc::error_reply(
                    id,
                    NO_LEADER_CODE,
                    &format!("forwarding to the leader replica {leader_id} at {addr} failed: {err}"),
                );
                reply(StatusCode::OK, "application/json", text)
            }
        }
    }
}

fn reply(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
    response
}

impl AdminServer {
    async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, hyper::Error> {
        match (request.method(), request.uri().path()) {
            (&Method::GET, "/healthz") => return Ok(reply(StatusCode::OK, "text/plain", "ok\n")),
            (&Method::GET, "/readyz") => {
                let waiting: Vec<&String> = self
                    .chains
                    .iter()
                    .filter(|(_, handle)| !*handle.ready_rx.borrow())
                    .map(|(name, _)| name)
                    .collect();
                return Ok(if waiting.is_empty() {
                    reply(StatusCode::OK, "text/plain", "ready\n")
                } else {
                    reply(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "text/plain",
                        format!("not ready: first probe round pending for chains {waiting:?}\n"),
                    )
                });
            }
            (&Method::POST, _) => {}
            _ => {
                return Ok(reply(
                    StatusCode::NOT_FOUND,
                    "text/plain",
                    "POST JSON-RPC, or GET /healthz or /readyz\n",
                ));
            }
        }
        let auth = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let forwarded = request.headers().contains_key(FORWARDED_HEADER);
        let body = match Limited::new(request.into_body(), MAX_REQUEST_BYTES).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => return Ok(reply(StatusCode::PAYLOAD_TOO_LARGE, "text/plain", "request too large\n")),
        };
        if let Some(secret) = &self.jwt_secret {
            let names = opc_wire::jsonrpc::method_names(&body);
            if names.iter().any(|name| MUTATING_METHODS.contains(&name.as_str()))
                && let Err(err) = jwt::verify(auth.as_deref(), secret)
            {
                let id = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|value| value.get("id").cloned())
                    .unwrap_or(serde_json::Value::Null);
                let text =
                    opc_wire::jsonrpc::error_reply(&id, UNAUTHORIZED_CODE, &format!("unauthorized: {err}"));
                return Ok(reply(StatusCode::UNAUTHORIZED, "application/json", text));
            }
        }
        if let Some(forward) = &self.forward
            && !forwarded
            && forward.acting_rx.borrow().is_none()
            && opc_wire::jsonrpc::method_names(&body)
                .iter()
                .any(|name| MUTATING_METHODS.contains(&name.as_str()))
        {
            let id = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|value| value.get("id").cloned())
                .unwrap_or(serde_json::Value::Null);
            return Ok(forward.forward(&id, body, auth.as_deref()).await);
        }
        let text = opc_wire::jsonrpc::dispatch(&self.methods, &body).await;
        Ok(reply(StatusCode::OK, "application/json", text))
    }
}

/// Serves the admin API on `listener` until `cancel`.
pub async fn serve_admin(server: AdminServer, listener: TcpListener, cancel: CancellationToken) {
    let server = Arc::new(server);
    serve(listener, cancel, move |request| server.clone().handle(request)).await;
}

/// Serves `GET /metrics` on `listener` until `cancel`.
pub async fn serve_metrics(handle: PrometheusHandle, listener: TcpListener, cancel: CancellationToken) {
    serve(listener, cancel, move |request: Request<Incoming>| {
        let handle = handle.clone();
        async move {
            Ok::<_, hyper::Error>(match (request.method(), request.uri().path()) {
                (&Method::GET, "/metrics") => {
                    reply(StatusCode::OK, "text/plain; version=0.0.4", handle.render())
                }
                _ => reply(StatusCode::NOT_FOUND, "text/plain", "GET /metrics\n"),
            })
        }
    })
    .await;
}

async fn serve<F, Fut>(listener: TcpListener, cancel: CancellationToken, handler: F)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Response<Full<Bytes>>, hyper::Error>> + Send + 'static,
{
    loop {
        let accepted = tokio::select! {
            () = cancel.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else { continue };
        let handler = handler.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(handler));
            tokio::select! {
                () = cancel.cancelled() => {}
                _ = connection => {}
            }
        });
    }
}
