//! The HTTP servers: the admin API (JSON-RPC, `/healthz`, `/readyz`) and `/metrics`.
//!
//! A JSON-RPC request goes through, in order: the body bound (`rpc.max_request_bytes`), the
//! batch bound (`rpc.max_batch_len`), the JWT (mutating methods, or every method with
//! `rpc.jwt_on_reads`), forwarding to the leader replica (mutating methods on a replica that does
//! not act), then dispatch within the reply bounds. Connections are admitted by a
//! [`ConnectionGate`].

use super::{
    ApiSettings, MUTATING_METHODS, UNAUTHORIZED_CODE,
    forward::{FORWARDED_HEADER, Forwarding},
    limits::{self, Admission, ApiBody, ConnectionGate},
};
use crate::{actor::ChainHandle, jwt};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::{Method, Request, Response, StatusCode, body::Incoming, header, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use jsonrpsee::{Methods, types::error::OVERSIZED_REQUEST_CODE};
use metrics_exporter_prometheus::PrometheusHandle;
use opc_wire::jsonrpc::error_reply;
use std::{collections::BTreeMap, sync::Arc, time::Duration};
use tokio::{net::TcpListener, sync::Semaphore};
use tokio_util::sync::CancellationToken;

/// A client that opened a connection has this long to send each request's headers, so an idle
/// or stalled client cannot keep one of the `rpc.max_connections` places forever.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a refused connection may take to receive its `503`.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(5);
/// Scrapers served at once on `/metrics` (a scrape is one short request).
const METRICS_CONNECTIONS: usize = 16;

/// What the admin HTTP server needs.
#[derive(Debug, Clone)]
pub struct AdminServer {
    /// The JSON-RPC methods.
    pub methods: Methods,
    /// Required on mutating calls (on every call with `rpc.jwt_on_reads`) when set.
    pub jwt_secret: Option<[u8; 32]>,
    /// Readiness per chain.
    pub chains: Arc<BTreeMap<String, ChainHandle>>,
    /// In a cluster: where mutating calls go when this replica does not act.
    pub forward: Option<Forwarding>,
    /// Bounds and read protection.
    pub settings: ApiSettings,
}

/// The address a request's connection came from, in the request's extensions (the conductor
/// endpoint's allow-lists read it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PeerAddr(pub(crate) std::net::SocketAddr);

/// The server with the state its requests share.
#[derive(Debug)]
struct Served {
    server: AdminServer,
    /// Bytes of replies being built or sent, shared by every request.
    reply_budget: Arc<Semaphore>,
}

/// A response with a fixed body.
pub(crate) fn reply(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<ApiBody> {
    let mut response = Response::new(ApiBody::new(body, None));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
    response
}

impl Served {
    async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Result<Response<ApiBody>, hyper::Error> {
        Ok(match (request.method(), request.uri().path()) {
            (&Method::GET, "/healthz") => reply(StatusCode::OK, "text/plain", "ok\n"),
            (&Method::GET, "/readyz") => self.readiness(),
            (&Method::POST, _) => self.rpc(request).await,
            _ => reply(StatusCode::NOT_FOUND, "text/plain", "POST JSON-RPC, or GET /healthz or /readyz\n"),
        })
    }

    fn readiness(&self) -> Response<ApiBody> {
        let chains = &self.server.chains;
        let waiting: Vec<&str> = chains
            .iter()
            .filter(|(_, handle)| !*handle.ready_rx.borrow())
            .map(|(name, _)| name.as_str())
            .collect();
        let mut problems = Vec::new();
        if !waiting.is_empty() {
            problems.push(format!("first probe round pending for chains {}", waiting.join(", ")));
        }
        for (name, handle) in chains.iter() {
            // A chain that cannot write its state cannot fail over: not ready, with the reason.
            if let Some(reason) = handle.persist_error_rx.borrow().as_deref() {
                problems.push(format!("chain {name} cannot persist: {reason}"));
            }
            // A chain refused for a stored name the config lacks: nothing fails over.
            if let Some(refusal) = handle.mismatch_rx.borrow().as_deref() {
                problems.push(refusal.to_owned());
            }
            // A chain held for its block time: nothing fails over either.
            if let Some(why) = handle.held_rx.borrow().as_deref() {
                problems.push(format!("chain {name} is not acted on: {why}"));
            }
        }
        if problems.is_empty() {
            reply(StatusCode::OK, "text/plain", "ready\n")
        } else {
            reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("not ready: {}\n", problems.join("; ")),
            )
        }
    }

    async fn rpc(&self, request: Request<Incoming>) -> Response<ApiBody> {
        let settings = &self.server.settings;
        let auth = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let forwarded = request.headers().contains_key(FORWARDED_HEADER);
        // A declared length over the bound is refused before a byte of the body is read.
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|length| length > settings.max_request_bytes as u64) {
            return too_large(settings.max_request_bytes);
        }
        let body = match Limited::new(request.into_body(), settings.max_request_bytes).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => return too_large(settings.max_request_bytes),
        };
        let request = match limits::Request::parse(&body, settings) {
            Ok(request) => request,
            Err(text) => return reply(StatusCode::OK, "application/json", text),
        };
        let first_id = request.calls().first().map(|call| call.id.clone()).unwrap_or_default();
        let mutating = request
            .calls()
            .iter()
            .any(|call| call.method.as_deref().is_some_and(|name| MUTATING_METHODS.contains(&name)));
        if let Some(secret) = &self.server.jwt_secret
            && (mutating || settings.jwt_on_reads)
            && let Err(err) = jwt::verify(auth.as_deref(), secret)
        {
            let why = if mutating {
                "this method changes the coordinator and needs a JWT signed with rpc.jwt_secret_file"
            } else {
                "rpc.jwt_on_reads = true: reads need a JWT signed with rpc.jwt_secret_file too"
            };
            let text = error_reply(&first_id, UNAUTHORIZED_CODE, &format!("unauthorized: {err} ({why})"));
            return reply(StatusCode::UNAUTHORIZED, "application/json", text);
        }
        if let Some(forward) = &self.server.forward
            && !forwarded
            && mutating
            && forward.acting_rx.borrow().is_none()
        {
            return forward.forward(&first_id, body.clone(), auth.as_deref(), settings.max_reply_bytes).await;
        }
        let (text, permit) =
            limits::dispatch(&self.server.methods, &request, settings, &self.reply_budget).await;
        let mut response = Response::new(ApiBody::new(text, permit));
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
        response
    }
}

fn too_large(max_request_bytes: usize) -> Response<ApiBody> {
    let message = format!(
        "request body is larger than rpc.max_request_bytes ({max_request_bytes} bytes); send fewer calls \
         a request"
    );
    let text = error_reply(&serde_json::Value::Null, OVERSIZED_REQUEST_CODE, &message);
    let mut response = reply(StatusCode::PAYLOAD_TOO_LARGE, "application/json", text);
    // The unread rest of the body makes the connection unusable for another request.
    response.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
    response
}

/// Serves the admin API on `listener` until `cancel`.
pub async fn serve_admin(server: AdminServer, listener: TcpListener, cancel: CancellationToken) {
    let gate = ConnectionGate::new(server.settings.max_connections);
    let reply_budget = limits::reply_budget(&server.settings);
    let served = Arc::new(Served { server, reply_budget });
    serve(listener, cancel, gate, move |request| served.clone().handle(request)).await;
}

/// Serves `GET /metrics` on `listener` until `cancel`.
pub async fn serve_metrics(handle: PrometheusHandle, listener: TcpListener, cancel: CancellationToken) {
    let gate = ConnectionGate::new(METRICS_CONNECTIONS);
    serve(listener, cancel, gate, move |request: Request<Incoming>| {
        let handle = handle.clone();
        async move {
            Ok::<_, hyper::Error>(match (request.method(), request.uri().path()) {
                (&Method::GET, "/metrics") => {
                    reply(StatusCode::OK, "text/plain; version=0.0.4", crate::metrics::render(&handle))
                }
                _ => reply(StatusCode::NOT_FOUND, "text/plain", "GET /metrics\n"),
            })
        }
    })
    .await;
}

/// Serves `handler` on `listener` until `cancel`, at most `max_connections` connections at once
/// (the others get a 503), with the header-read timeout of every server of the coordinator.
pub(crate) async fn serve_requests<F, Fut>(
    listener: TcpListener,
    cancel: CancellationToken,
    max_connections: usize,
    handler: F,
) where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Response<ApiBody>, hyper::Error>> + Send + 'static,
{
    serve(listener, cancel, ConnectionGate::new(max_connections), handler).await;
}

async fn serve<F, Fut>(listener: TcpListener, cancel: CancellationToken, gate: ConnectionGate, handler: F)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Response<ApiBody>, hyper::Error>> + Send + 'static,
{
    loop {
        let admission = tokio::select! {
            () = cancel.cancelled() => return,
            admission = gate.admit() => admission,
        };
        let accepted = tokio::select! {
            () = cancel.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, peer)) = accepted else { continue };
        let io = TokioIo::new(stream);
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder.timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
        let cancel = cancel.clone();
        match gate.upgrade(admission) {
            Admission::Serve(permit) => {
                let handler = handler.clone();
                let with_peer = move |mut request: Request<Incoming>| {
                    request.extensions_mut().insert(PeerAddr(peer));
                    handler(request)
                };
                tokio::spawn(async move {
                    let connection = builder.serve_connection(io, service_fn(with_peer));
                    tokio::select! {
                        () = cancel.cancelled() => {}
                        _ = connection => {}
                    }
                    drop(permit);
                });
            }
            Admission::Refuse(permit) => {
                let text = error_reply(
                    &serde_json::Value::Null,
                    jsonrpsee::types::error::SERVER_IS_BUSY_CODE,
                    &gate.refusal_message(),
                );
                tokio::spawn(async move {
                    let refuse = move |_request: Request<Incoming>| {
                        let text = text.clone();
                        async move {
                            Ok::<_, hyper::Error>(reply(
                                StatusCode::SERVICE_UNAVAILABLE,
                                "application/json",
                                text,
                            ))
                        }
                    };
                    builder.keep_alive(false);
                    let connection = builder.serve_connection(io, service_fn(refuse));
                    let _ = tokio::time::timeout(REFUSAL_TIMEOUT, connection).await;
                    drop(permit);
                });
            }
        }
    }
}
