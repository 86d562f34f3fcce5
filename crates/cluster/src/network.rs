//! The replica-to-replica transport: JSON over HTTP/1.1 (the client half; `server.rs` is the
//! other). One `POST` per Raft RPC, each with a deadline, each passing through [`NetFaults`].
//!
//! | failure                                | openraft error                   | openraft then       |
//! |----------------------------------------|----------------------------------|---------------------|
//! | connection refused / dropped by fault  | `Unreachable`                    | backs off           |
//! | no answer within the deadline          | `Timeout`                        | retries next tick   |
//! | answered, but not 200 / not decodable  | `NetworkError`                   | retries next tick   |
//! | the peer's Raft returned an error      | `RemoteError`                    | per error           |

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::CONTENT_TYPE;
use hyper::{Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use openraft::RPCTypes;
use openraft::error::{
    Fatal, NetworkError, RPCError, RaftError, RemoteError, ReplicationClosed, StreamingError, Timeout,
    Unreachable,
};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::faults::{FaultAction, NetFaults};
use crate::types::{ReplicaNode, Snapshot, SnapshotData, SnapshotMeta, TypeConfig, Vote};

pub(crate) const PATH_APPEND: &str = "/raft/append";
pub(crate) const PATH_VOTE: &str = "/raft/vote";
pub(crate) const PATH_SNAPSHOT: &str = "/raft/snapshot";
pub(crate) const PATH_CAMPAIGN: &str = "/raft/campaign";
pub(crate) const PATH_FAULT: &str = "/fault";
pub(crate) const PATH_FAULT_HEAL: &str = "/fault/heal";

/// Body of `POST /raft/snapshot`: the whole snapshot in one request.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SnapshotRequest {
    pub(crate) vote: Vote,
    pub(crate) meta: SnapshotMeta,
    pub(crate) data: SnapshotData,
}

/// Body of `POST /raft/campaign`: "start elections until you lead or `deadline_ms` passes".
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct CampaignRequest {
    pub(crate) deadline_ms: u64,
}

/// Answer to `POST /raft/campaign`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct CampaignResponse {
    /// The target leads at the moment it answers.
    pub(crate) leader: bool,
    /// Its term then.
    pub(crate) term: u64,
}

/// Why one call failed, before mapping to openraft's errors.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallError {
    #[error("message to replica {target} dropped by fault injection")]
    Dropped { target: u64 },
    #[error("replica {target} at {addr} unreachable: {message}")]
    Unreachable { target: u64, addr: String, message: String },
    #[error("replica {target} at {addr} did not answer {path} within {timeout:?}")]
    Timeout { target: u64, addr: String, path: &'static str, timeout: Duration },
    #[error("replica {target} at {addr}: {path}: {message}")]
    Network { target: u64, addr: String, path: &'static str, message: String },
}

/// HTTP client shared by every peer connection; pools keep-alive connections per address.
#[derive(Debug, Clone)]
pub(crate) struct PeerClient {
    http: Client<HttpConnector, Full<Bytes>>,
    faults: NetFaults,
}

impl PeerClient {
    pub(crate) fn new(faults: NetFaults) -> Self {
        let mut connector = HttpConnector::new();
        // Raft messages are small and latency bound.
        connector.set_nodelay(true);
        let http = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Self { http, faults }
    }

    /// POSTs `body` as JSON to `http://{addr}{path}` and decodes the JSON answer, all within
    /// `timeout` (an injected delay counts against it, as a slow link would).
    pub(crate) async fn call<Req, Resp>(
        &self,
        target: u64,
        addr: &str,
        path: &'static str,
        body: &Req,
        timeout: Duration,
    ) -> Result<Resp, CallError>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
    {
        let network = |message: String| CallError::Network { target, addr: addr.to_owned(), path, message };
        let delay = match self.faults.action_for(target) {
            FaultAction::Drop => return Err(CallError::Dropped { target }),
            FaultAction::DelayThenSend(delay) => Some(delay),
            FaultAction::Send => None,
        };
        let bytes = serde_json::to_vec(body).map_err(|e| network(format!("cannot encode request: {e}")))?;
        let request = Request::post(format!("http://{addr}{path}"))
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(bytes)))
            .map_err(|e| network(format!("cannot build request: {e}")))?;

        let exchange = async {
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
            let response = self.http.request(request).await.map_err(|e| {
                if e.is_connect() {
                    CallError::Unreachable { target, addr: addr.to_owned(), message: e.to_string() }
                } else {
                    network(e.to_string())
                }
            })?;
            let status = response.status();
            let body = response.into_body().collect().await.map_err(|e| network(e.to_string()))?.to_bytes();
            if status != StatusCode::OK {
                return Err(network(format!("HTTP {status}: {}", String::from_utf8_lossy(&body))));
            }
            serde_json::from_slice(&body).map_err(|e| network(format!("cannot decode answer: {e}")))
        };
        tokio::time::timeout(timeout, exchange).await.map_err(|_| CallError::Timeout {
            target,
            addr: addr.to_owned(),
            path,
            timeout,
        })?
    }
}

/// Makes one [`HttpPeer`] per replication target; openraft calls it whenever membership changes.
#[derive(Debug, Clone)]
pub(crate) struct HttpNetworkFactory {
    pub(crate) self_id: u64,
    pub(crate) client: PeerClient,
    pub(crate) rpc_timeout: Duration,
    pub(crate) unreachable_backoff: Duration,
}

impl RaftNetworkFactory<TypeConfig> for HttpNetworkFactory {
    type Network = HttpPeer;

    async fn new_client(&mut self, target: u64, node: &ReplicaNode) -> HttpPeer {
        HttpPeer { target, addr: node.raft_addr.clone(), factory: self.clone() }
    }
}

/// The connection to one peer, as openraft sees it.
#[derive(Debug)]
pub(crate) struct HttpPeer {
    target: u64,
    addr: String,
    factory: HttpNetworkFactory,
}

impl HttpPeer {
    fn rpc_error<E: std::error::Error>(
        &self,
        action: RPCTypes,
        timeout: Duration,
        e: CallError,
    ) -> RPCError<u64, ReplicaNode, E> {
        match e {
            CallError::Dropped { .. } | CallError::Unreachable { .. } => Unreachable::new(&e).into(),
            CallError::Timeout { .. } => {
                Timeout { action, id: self.factory.self_id, target: self.target, timeout }.into()
            }
            CallError::Network { .. } => NetworkError::new(&e).into(),
        }
    }

    /// openraft's own deadline for this RPC, never beyond ours.
    fn deadline(&self, option: &RPCOption) -> Duration {
        option.hard_ttl().min(self.factory.rpc_timeout)
    }
}

impl RaftNetwork<TypeConfig> for HttpPeer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, ReplicaNode, RaftError<u64>>> {
        let timeout = self.deadline(&option);
        let answer: Result<AppendEntriesResponse<u64>, RaftError<u64>> = self
            .factory
            .client
            .call(self.target, &self.addr, PATH_APPEND, &rpc, timeout)
            .await
            .map_err(|e| self.rpc_error(RPCTypes::AppendEntries, timeout, e))?;
        answer.map_err(|e| RemoteError::new(self.target, e).into())
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, ReplicaNode, RaftError<u64>>> {
        let timeout = self.deadline(&option);
        let answer: Result<VoteResponse<u64>, RaftError<u64>> = self
            .factory
            .client
            .call(self.target, &self.addr, PATH_VOTE, &rpc, timeout)
            .await
            .map_err(|e| self.rpc_error(RPCTypes::Vote, timeout, e))?;
        answer.map_err(|e| RemoteError::new(self.target, e).into())
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl std::future::Future<Output = ReplicationClosed> + Send + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<u64>, StreamingError<TypeConfig, Fatal<u64>>> {
        // The snapshot deadline is openraft's `install_snapshot_timeout`, i.e. ours.
        let timeout = option.hard_ttl();
        let request = SnapshotRequest { vote, meta: snapshot.meta, data: *snapshot.snapshot };
        tracing::info!(
            target_id = self.target,
            last_log_index = request.meta.last_log_id.map(|l| l.index),
            "sending snapshot"
        );
        let send = self.factory.client.call(self.target, &self.addr, PATH_SNAPSHOT, &request, timeout);
        let answer: Result<SnapshotResponse<u64>, Fatal<u64>> = tokio::select! {
            closed = cancel => return Err(StreamingError::Closed(closed)),
            answer = send => answer.map_err(|e| match e {
                CallError::Dropped { .. } | CallError::Unreachable { .. } => {
                    StreamingError::Unreachable(Unreachable::new(&e))
                }
                CallError::Timeout { .. } => StreamingError::Timeout(Timeout {
                    action: RPCTypes::InstallSnapshot,
                    id: self.factory.self_id,
                    target: self.target,
                    timeout,
                }),
                CallError::Network { .. } => StreamingError::Network(NetworkError::new(&e)),
            })?,
        };
        answer.map_err(|e| StreamingError::RemoteError(RemoteError::new(self.target, e)))
    }

    fn backoff(&self) -> Backoff {
        Backoff::new(std::iter::repeat(self.factory.unreachable_backoff))
    }
}
