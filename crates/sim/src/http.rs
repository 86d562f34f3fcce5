//! Real HTTP JSON-RPC servers for simulated nodes, with faults applied at the transport.
//!
//! Each node exposes two servers (op-node and op-geth). In per-port mode every server owns a
//! listener on its own port: a crash drops the listener and every open connection, so clients get
//! "connection refused" exactly as from a dead process, and a restart binds the same port again.
//! In shared-port mode one listener routes `/CHAIN/NODE/op-node` paths to many servers; a crashed
//! server then closes the connection without answering (a refused connection cannot be emulated
//! per path).
//!
//! Two things happen here rather than in the node model because they are about who is calling:
//! - [`CallerFilter`]: requests whose `x-opc-replica` header names an isolated coordinator replica
//!   are refused or held before they reach any node (`sim_isolateCaller`);
//! - [`AdminCallLog`]: every `admin_startSequencer` / `admin_stopSequencer` an op-node receives is
//!   recorded in the ledger with the caller's `x-opc-replica` and `x-opc-term` headers.
//!
//! Method dispatch goes through [`opc_wire::jsonrpc::dispatch`] (jsonrpsee's own encoding of the
//! trait implementations); unknown methods get geth's `-32601` message.

use crate::{chain::EndpointBehaviour, error::SimError, ledger::Ledger};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, Response, StatusCode, body::Incoming, header, service::service_fn};
use hyper_util::rt::TokioIo;
use jsonrpsee::Methods;
use op_sim_api::{IsolateMode, LedgerEntry, MalformedMode};
use serde_json::{Value, json};
use std::{
    collections::{BTreeMap, HashMap},
    net::SocketAddr,
    sync::Arc,
    time::Duration,
};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
};
use tokio_util::sync::CancellationToken;

/// The header naming the coordinator replica that sent a request.
pub const REPLICA_HEADER: &str = "x-opc-replica";
/// The header naming the Raft term a replica acts in.
pub const TERM_HEADER: &str = "x-opc-term";
/// The op-node methods recorded as [`LedgerEntry::AdminCall`].
pub const RECORDED_METHODS: [&str; 2] = ["admin_startSequencer", "admin_stopSequencer"];

/// Largest request body a server reads.
const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// The connection is to be closed without a reply.
#[derive(Debug)]
pub struct Closed;

impl std::fmt::Display for Closed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("server is down")
    }
}

impl std::error::Error for Closed {}

/// Coordinator replicas whose requests are cut off from the nodes, by the replica id their
/// requests carry in `x-opc-replica`. One filter is shared by every node server of a simulator.
#[derive(Debug, Clone)]
pub struct CallerFilter {
    isolated: Arc<watch::Sender<BTreeMap<u64, IsolateMode>>>,
}

impl Default for CallerFilter {
    fn default() -> Self {
        Self { isolated: Arc::new(watch::Sender::new(BTreeMap::new())) }
    }
}

impl CallerFilter {
    /// Cuts `replica` off (replacing the mode of an isolation in force).
    pub fn isolate(&self, replica: u64, mode: IsolateMode) {
        self.isolated.send_modify(|isolated| {
            isolated.insert(replica, mode);
        });
    }

    /// Lets `replica` (None: every replica) through again; returns the replicas that were cut off.
    pub fn heal(&self, replica: Option<u64>) -> Vec<u64> {
        let mut healed = Vec::new();
        self.isolated.send_if_modified(|isolated| {
            match replica {
                Some(replica) => healed.extend(isolated.remove(&replica).map(|_| replica)),
                None => healed.extend(std::mem::take(isolated).into_keys()),
            }
            !healed.is_empty()
        });
        healed
    }

    /// The replicas cut off now, with how.
    pub fn current(&self) -> BTreeMap<u64, IsolateMode> {
        self.isolated.borrow().clone()
    }

    /// Lets a request of `replica` through, or says to close its connection unanswered: at once
    /// when refused, once the isolation ends when black-holed (a dropped packet never arrives,
    /// so a held request is never executed, even after the heal).
    async fn admit(&self, replica: u64) -> Result<(), Closed> {
        let mut isolated_rx = self.isolated.subscribe();
        match isolated_rx.borrow_and_update().get(&replica) {
            None => return Ok(()),
            Some(IsolateMode::Refuse) => return Err(Closed),
            Some(IsolateMode::Blackhole) => {}
        }
        loop {
            if isolated_rx.changed().await.is_err() {
                return Err(Closed);
            }
            if isolated_rx.borrow_and_update().get(&replica) != Some(&IsolateMode::Blackhole) {
                return Err(Closed);
            }
        }
    }
}

/// Where an op-node server records the `admin_startSequencer` / `admin_stopSequencer` calls it
/// receives.
#[derive(Debug, Clone)]
pub struct AdminCallLog {
    /// The ground truth.
    pub ledger: Ledger,
    /// The node's chain.
    pub chain: String,
    /// The node.
    pub node: String,
}

/// The recorded calls of one request: appended to the ledger when the request is answered, or
/// when it is dropped unanswered (the connection closed while the process was hung or down).
struct PendingAdminCalls {
    log: AdminCallLog,
    /// `(JSON-RPC id, method)` of each recorded call in the body.
    calls: Vec<(Value, String)>,
    replica: Option<u64>,
    term: Option<u64>,
    arrived_ms: u64,
    /// The reply, once there is one.
    answered: Option<(String, u64)>,
}

impl PendingAdminCalls {
    fn answer(&mut self, reply: &str) {
        self.answered = Some((reply.to_owned(), self.log.ledger.now_ms()));
    }
}

impl Drop for PendingAdminCalls {
    fn drop(&mut self) {
        let (reply, answered_ms) = match self.answered.take() {
            Some((reply, at)) => (accepted_ids(&reply), Some(at)),
            None => (Vec::new(), None),
        };
        for (id, method) in std::mem::take(&mut self.calls) {
            self.log.ledger.record(LedgerEntry::AdminCall {
                chain: self.log.chain.clone(),
                node: self.log.node.clone(),
                method,
                replica: self.replica,
                term: self.term,
                accepted: reply.contains(&id),
                t_ms: self.arrived_ms,
                answered_ms,
            });
        }
    }
}

/// The ids of the calls a JSON-RPC reply (single or batch) answered with a `result`.
fn accepted_ids(reply: &str) -> Vec<Value> {
    let succeeded = |item: &Value| {
        (item.get("result").is_some() && item.get("error").is_none())
            .then(|| item.get("id").cloned().unwrap_or(Value::Null))
    };
    match serde_json::from_str::<Value>(reply) {
        Ok(Value::Array(items)) => items.iter().filter_map(succeeded).collect(),
        Ok(item) => succeeded(&item).into_iter().collect(),
        Err(_) => Vec::new(),
    }
}

/// `(id, method)` of each recorded call in a JSON-RPC body.
fn recorded_calls(body: &[u8]) -> Vec<(Value, String)> {
    let call = |item: &Value| {
        let method = item.get("method").and_then(Value::as_str)?;
        RECORDED_METHODS
            .contains(&method)
            .then(|| (item.get("id").cloned().unwrap_or(Value::Null), method.to_owned()))
    };
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(items)) => items.iter().filter_map(call).collect(),
        Ok(item) => call(&item).into_iter().collect(),
        Err(_) => Vec::new(),
    }
}

/// A numeric header, if present and a number.
fn number_header(request: &Request<Incoming>, name: &str) -> Option<u64> {
    request.headers().get(name)?.to_str().ok()?.trim().parse().ok()
}

/// One JSON-RPC server (a node's op-node or op-geth, or the control API).
#[derive(Debug)]
pub struct Endpoint {
    /// `CHAIN/NODE/op-node`, for logs.
    pub label: String,
    methods: Methods,
    behaviour: watch::Sender<EndpointBehaviour>,
    /// Which callers are cut off (node servers share the simulator's; the control API has its own,
    /// never used).
    callers: CallerFilter,
    /// op-node servers record admin calls here.
    admin_calls: Option<AdminCallLog>,
}

impl Endpoint {
    /// A healthy server answering `methods`, open to every caller, recording nothing.
    pub fn new(label: String, methods: Methods) -> Arc<Self> {
        Self::node(label, methods, CallerFilter::default(), None)
    }

    /// A node's server: requests pass `callers` first, and with `admin_calls` the
    /// `admin_startSequencer` / `admin_stopSequencer` calls are recorded in the ledger.
    pub fn node(
        label: String,
        methods: Methods,
        callers: CallerFilter,
        admin_calls: Option<AdminCallLog>,
    ) -> Arc<Self> {
        Arc::new(Self {
            label,
            methods,
            behaviour: watch::Sender::new(EndpointBehaviour::default()),
            callers,
            admin_calls,
        })
    }

    /// Applies a new behaviour; hung requests are released when it stops hanging.
    pub fn set_behaviour(&self, behaviour: EndpointBehaviour) {
        self.behaviour.send_if_modified(|current| {
            let changed = *current != behaviour;
            *current = behaviour;
            changed
        });
    }

    /// The behaviour in force.
    pub fn behaviour(&self) -> EndpointBehaviour {
        *self.behaviour.borrow()
    }

    /// Answers one HTTP request, or asks for the connection to be closed.
    ///
    /// Order: the caller filter (a cut-off caller never reaches the node), a crashed process, the
    /// body (a hung process still has the request in its socket buffer, so it arrives and is
    /// recorded now), a hang, latency, dispatch, a malformed reply.
    pub async fn handle(&self, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Closed> {
        let replica = number_header(&request, REPLICA_HEADER);
        if let Some(replica) = replica {
            self.callers.admit(replica).await?;
        }
        let mut behaviour_rx = self.behaviour.subscribe();
        if behaviour_rx.borrow_and_update().down {
            return Err(Closed);
        }
        let is_post = request.method() == Method::POST;
        let mut pending = None;
        let body = if is_post {
            let term = number_header(&request, TERM_HEADER);
            let body = match Limited::new(request.into_body(), MAX_REQUEST_BYTES).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(_) => return Ok(plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n")),
            };
            if let Some(log) = &self.admin_calls {
                let calls = recorded_calls(&body);
                if !calls.is_empty() {
                    pending = Some(PendingAdminCalls {
                        arrived_ms: log.ledger.now_ms(),
                        log: log.clone(),
                        calls,
                        replica,
                        term,
                        answered: None,
                    });
                }
            }
            body
        } else {
            Bytes::new()
        };
        // A hung process accepts the request and sits on it until it resumes (or dies).
        let behaviour = loop {
            let behaviour = *behaviour_rx.borrow_and_update();
            if behaviour.down {
                return Err(Closed);
            }
            if !behaviour.hung {
                break behaviour;
            }
            if behaviour_rx.changed().await.is_err() {
                return Err(Closed);
            }
        };
        if !is_post {
            return Ok(plain(StatusCode::METHOD_NOT_ALLOWED, "JSON-RPC over HTTP POST only\n"));
        }
        if behaviour.latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(behaviour.latency_ms)).await;
        }
        let mut reply = opc_wire::jsonrpc::dispatch(&self.methods, &body).await;
        // What the node did, before a faulty proxy breaks the reply on its way back.
        if let Some(pending) = &mut pending {
            pending.answer(&reply);
        }
        drop(pending);
        if let Some((mode, size_bytes)) = behaviour.malformed {
            reply = malform(&reply, mode, size_bytes);
        }
        Ok(Response::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(reply)))
            .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "response build failed\n")))
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response
}

/// Breaks a reply the way a faulty node or proxy would.
pub fn malform(reply: &str, mode: MalformedMode, size_bytes: u64) -> String {
    match mode {
        MalformedMode::InvalidJson => {
            let cut = reply.len() / 2;
            let prefix = reply.get(..cut).unwrap_or(reply);
            format!("{prefix}<html>502 Bad Gateway</html>")
        }
        MalformedMode::WrongTypes => {
            let Ok(mut value) = serde_json::from_str::<Value>(reply) else { return reply.to_owned() };
            if let Some(result) = value.get_mut("result") {
                *result = wrong_types(result.take());
            }
            value.to_string()
        }
        MalformedMode::HugeBody => {
            let Ok(mut value) = serde_json::from_str::<Value>(reply) else { return reply.to_owned() };
            let padding = "0".repeat(usize::try_from(size_bytes).unwrap_or(usize::MAX).min(512 << 20));
            if let Some(object) = value.as_object_mut() {
                object.insert("padding".into(), Value::String(padding));
            }
            value.to_string()
        }
    }
}

/// Swaps every scalar for one of another type: numbers become strings, strings numbers, bools
/// strings, null a number.
fn wrong_types(value: Value) -> Value {
    match value {
        Value::Null => json!(0),
        Value::Bool(flag) => json!(if flag { "yes" } else { "no" }),
        Value::Number(number) => json!(format!("{number} blocks")),
        Value::String(_) => json!(12345),
        Value::Array(items) => Value::Array(items.into_iter().map(wrong_types).collect()),
        Value::Object(object) => {
            Value::Object(object.into_iter().map(|(k, v)| (k, wrong_types(v))).collect())
        }
    }
}

/// Serves `endpoint` on its own port until `cancel`; the listener closes while the endpoint is
/// down and is bound again on the same address when it comes back.
pub async fn serve_endpoint(endpoint: Arc<Endpoint>, listener: TcpListener, cancel: CancellationToken) {
    let Ok(addr) = listener.local_addr() else { return };
    let mut listener = Some(listener);
    let mut behaviour_rx = endpoint.behaviour.subscribe();
    loop {
        while behaviour_rx.borrow_and_update().down {
            tokio::select! {
                () = cancel.cancelled() => return,
                changed = behaviour_rx.changed() => if changed.is_err() { return },
            }
        }
        let active = match listener.take() {
            Some(listener) => listener,
            None => match rebind(addr, &cancel).await {
                Some(listener) => listener,
                None => return,
            },
        };
        let connections = cancel.child_token();
        loop {
            tokio::select! {
                biased;
                () = cancel.cancelled() => {
                    connections.cancel();
                    return;
                }
                changed = behaviour_rx.changed() => {
                    if changed.is_err() {
                        connections.cancel();
                        return;
                    }
                    if behaviour_rx.borrow().down {
                        break;
                    }
                }
                accepted = active.accept() => {
                    if let Ok((stream, _)) = accepted {
                        let endpoint = endpoint.clone();
                        tokio::spawn(serve_connection(stream, connections.clone(), move |request| {
                            let endpoint = endpoint.clone();
                            async move { endpoint.handle(request).await }
                        }));
                    }
                }
            }
        }
        // Down: refuse new connections and cut the open ones, as a dead process would.
        drop(active);
        connections.cancel();
        tracing::debug!(endpoint = %endpoint.label, %addr, "listener closed");
    }
}

async fn rebind(addr: SocketAddr, cancel: &CancellationToken) -> Option<TcpListener> {
    let mut warned = false;
    loop {
        match TcpListener::bind(addr).await {
            Ok(listener) => return Some(listener),
            Err(err) => {
                if !warned {
                    tracing::warn!(%addr, %err, "cannot bind the port again yet; retrying");
                    warned = true;
                }
            }
        }
        tokio::select! {
            () = cancel.cancelled() => return None,
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    }
}

async fn serve_connection<F, Fut>(stream: TcpStream, cancel: CancellationToken, handler: F)
where
    F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Response<Full<Bytes>>, Closed>> + Send + 'static,
{
    let _ = stream.set_nodelay(true);
    let connection = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service_fn(handler));
    tokio::select! {
        () = cancel.cancelled() => {}
        _ = connection => {}
    }
}

/// Many endpoints behind one listener, routed by URL path.
#[derive(Debug, Default)]
pub struct Router {
    routes: HashMap<String, Arc<Endpoint>>,
}

impl Router {
    /// Routes `path` (e.g. `/devnet/seq-0/op-node`) to `endpoint`.
    pub fn insert(&mut self, path: String, endpoint: Arc<Endpoint>) -> Result<(), SimError> {
        if self.routes.insert(path.clone(), endpoint).is_some() {
            return Err(SimError::BadConfig(format!("two endpoints share the path {path}")));
        }
        Ok(())
    }
}

/// Serves every route of `router` on one listener until `cancel`.
pub async fn serve_router(router: Arc<Router>, listener: TcpListener, cancel: CancellationToken) {
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let router = router.clone();
                tokio::spawn(serve_connection(stream, cancel.clone(), move |request: Request<Incoming>| {
                    let endpoint = router.routes.get(request.uri().path().trim_end_matches('/')).cloned();
                    async move {
                        match endpoint {
                            Some(endpoint) => endpoint.handle(request).await,
                            None => Ok(plain(StatusCode::NOT_FOUND, "no such node endpoint\n")),
                        }
                    }
                }));
            }
        }
    }
}
