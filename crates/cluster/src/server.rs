//! The Raft server: receives peers' RPCs (the server half of `network.rs`), the transfer
//! `campaign` request, and, when `cluster.fault_injection` is on, fault commands.
//!
//! | route                 | body                    | answer                                   |
//! |-----------------------|-------------------------|------------------------------------------|
//! | `POST /raft/append`   | `AppendEntriesRequest`  | `Result<AppendEntriesResponse, RaftError>` |
//! | `POST /raft/vote`     | `VoteRequest`           | `Result<VoteResponse, RaftError>`        |
//! | `POST /raft/snapshot` | `{vote, meta, data}`    | `Result<SnapshotResponse, Fatal>`        |
//! | `POST /raft/campaign` | `{deadline_ms}`         | `{leader, term}`                         |
//! | `POST /fault`         | `FaultSpec`             | the faults now in force (403 if off)     |
//! | `POST /fault/heal`    | none                    | the faults now in force (403 if off)     |
//! | `GET /fault`          | none                    | the faults in force (403 if off)         |

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::CONTENT_TYPE;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use openraft::ServerState;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::faults::{FaultSpec, NetFaults};
use crate::network::{
    CampaignRequest, CampaignResponse, PATH_APPEND, PATH_CAMPAIGN, PATH_FAULT, PATH_FAULT_HEAL,
    PATH_SNAPSHOT, PATH_VOTE, SnapshotRequest,
};
use crate::types::{Raft, Snapshot};

/// Largest accepted request body; a snapshot of every chain's state must fit.
const MAX_BODY_BYTES: usize = 256 * 1024 * 1024;

/// What every request handler needs.
#[derive(Clone)]
pub(crate) struct ServerContext {
    pub(crate) raft: Raft,
    pub(crate) faults: NetFaults,
    /// `cluster.fault_injection`: whether `/fault` routes are served.
    pub(crate) fault_injection: bool,
    /// How long a campaign waits for one election before starting the next.
    pub(crate) campaign_retry: Duration,
}

/// Stops the server: no new connections, open ones aborted.
#[derive(Debug)]
pub(crate) struct ServerHandle {
    shutdown_tx: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl ServerHandle {
    pub(crate) async fn shutdown(self) -> Result<(), tokio::task::JoinError> {
        let _ = self.shutdown_tx.send(true);
        self.task.await
    }
}

pub(crate) fn spawn(listener: TcpListener, ctx: ServerContext) -> ServerHandle {
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let task = tokio::spawn(run(listener, ctx, shutdown_rx));
    ServerHandle { shutdown_tx, task }
}

async fn run(listener: TcpListener, ctx: ServerContext, mut shutdown_rx: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            _ = shutdown_rx.changed() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let _ = stream.set_nodelay(true);
                    let ctx = ctx.clone();
                    connections.spawn(async move {
                        let service = service_fn(move |req| {
                            let ctx = ctx.clone();
                            async move { Ok::<_, Infallible>(route(&ctx, req).await) }
                        });
                        // The timer enables hyper's default header-read timeout, so a peer that
                        // connects and goes silent does not hold a task forever.
                        let connection = http1::Builder::new()
                            .timer(TokioTimer::new())
                            .serve_connection(TokioIo::new(stream), service);
                        if let Err(e) = connection.await {
                            tracing::debug!(error = %e, "raft connection ended with an error");
                        }
                    });
                }
                Err(e) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "raft server accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    connections.abort_all();
    while connections.join_next().await.is_some() {}
}

async fn route(ctx: &ServerContext, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    match (method, path.as_str()) {
        (Method::POST, PATH_APPEND) => match read_json(req).await {
            Ok(rpc) => json(StatusCode::OK, &ctx.raft.append_entries(rpc).await),
            Err(bad) => bad,
        },
        (Method::POST, PATH_VOTE) => match read_json(req).await {
            Ok(rpc) => json(StatusCode::OK, &ctx.raft.vote(rpc).await),
            Err(bad) => bad,
        },
        (Method::POST, PATH_SNAPSHOT) => match read_json::<SnapshotRequest>(req).await {
            Ok(SnapshotRequest { vote, meta, data }) => {
                let snapshot = Snapshot { meta, snapshot: Box::new(data) };
                json(StatusCode::OK, &ctx.raft.install_full_snapshot(vote, snapshot).await)
            }
            Err(bad) => bad,
        },
        (Method::POST, PATH_CAMPAIGN) => match read_json::<CampaignRequest>(req).await {
            Ok(campaign_req) => json(StatusCode::OK, &campaign(ctx, campaign_req).await),
            Err(bad) => bad,
        },
        (_, PATH_FAULT | PATH_FAULT_HEAL) if !ctx.fault_injection => text(
            StatusCode::FORBIDDEN,
            "fault injection is disabled on this replica; set cluster.fault_injection = true to enable it",
        ),
        (Method::GET, PATH_FAULT) => json(StatusCode::OK, &ctx.faults.current()),
        (Method::POST, PATH_FAULT) => match read_json::<FaultSpec>(req).await {
            Ok(spec) => {
                ctx.faults.set(spec);
                json(StatusCode::OK, &ctx.faults.current())
            }
            Err(bad) => bad,
        },
        (Method::POST, PATH_FAULT_HEAL) => {
            ctx.faults.heal();
            json(StatusCode::OK, &ctx.faults.current())
        }
        (method, path) => text(StatusCode::NOT_FOUND, &format!("no route for {method} {path}")),
    }
}

/// The transfer target's side of `Cluster::transfer_leadership`: start an election, and start
/// another whenever one did not make us leader within `campaign_retry`, until we lead or the
/// deadline passes. Retrying matters: voters whose leader lease is still running reject the
/// first rounds (openraft `Engine::handle_vote_req`), and the old leader has just stopped its
/// heartbeats so those leases run out.
async fn campaign(ctx: &ServerContext, req: CampaignRequest) -> CampaignResponse {
    let deadline = Instant::now() + Duration::from_millis(req.deadline_ms);
    let mut metrics = ctx.raft.metrics();
    loop {
        let (leading, term) = {
            let m = metrics.borrow_and_update();
            (m.state == ServerState::Leader, m.current_term)
        };
        if leading || Instant::now() >= deadline {
            return CampaignResponse { leader: leading, term };
        }
        tracing::info!(term, "campaigning for leadership on request of the leader");
        if let Err(e) = ctx.raft.trigger().elect().await {
            tracing::warn!(error = %e, "cannot start an election");
            return CampaignResponse { leader: false, term };
        }
        let retry_at = (Instant::now() + ctx.campaign_retry).min(deadline);
        loop {
            tokio::select! {
                changed = metrics.changed() => {
                    if changed.is_err() {
                        return CampaignResponse { leader: false, term };
                    }
                    if metrics.borrow().state == ServerState::Leader {
                        break;
                    }
                }
                _ = tokio::time::sleep_until(retry_at) => break,
            }
        }
    }
}

/// Reads and decodes a JSON body, or returns the 4xx answer to send.
async fn read_json<T: DeserializeOwned>(req: Request<Incoming>) -> Result<T, Response<Full<Bytes>>> {
    let body = Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
        .map_err(|e| text(StatusCode::BAD_REQUEST, &format!("cannot read body: {e}")))?
        .to_bytes();
    serde_json::from_slice(&body)
        .map_err(|e| text(StatusCode::BAD_REQUEST, &format!("invalid JSON body: {e}")))
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Full<Bytes>> {
    match serde_json::to_vec(value) {
        Ok(bytes) => response(status, "application/json", bytes),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, &format!("cannot encode answer: {e}")),
    }
}

fn text(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    response(status, "text/plain; charset=utf-8", message.as_bytes().to_vec())
}

fn response(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, hyper::header::HeaderValue::from_static(content_type));
    response
}
