//! The bounds of the admin API: what one request may ask and how many are served at once.
//!
//! An unbounded batch of cheap reads is an unbounded reply: one 840 KB batch of
//! `coordinator_events` used to come back as 22 MB, and 40 of them at once took the process to
//! 1.6 GB. Every bound below answers with an error that names the key to change, never with a
//! cut-off body:
//!
//! | bound                        | key                     | default | answer when exceeded                        |
//! |------------------------------|-------------------------|---------|---------------------------------------------|
//! | request body                 | `rpc.max_request_bytes` | 1 MiB   | HTTP 413, JSON-RPC `-32007`                 |
//! | calls in a batch             | `rpc.max_batch_len`     | 100     | JSON-RPC `-32010`, nothing is run           |
//! | reply (a call or a batch)    | `rpc.max_reply_bytes`   | 10 MiB  | JSON-RPC `-32008` instead of the reply      |
//! | replies being built and sent | 4 × `rpc.max_reply_bytes` | 40 MiB | JSON-RPC `-32009` (busy): retry            |
//! | connections served at once   | `rpc.max_connections`   | 64      | as many again get HTTP 503, then they wait  |
//! | `coordinator_events` `limit` | (fixed)                 | 1000    | invalid params: page with `before` / `after` |
//!
//! The batch is split into its calls without decoding them (borrowed raw JSON), so a batch
//! refused for its length costs one pass over its bytes.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Body, Frame, SizeHint};
use jsonrpsee::{
    Methods,
    types::error::{OVERSIZED_RESPONSE_CODE, SERVER_IS_BUSY_CODE, TOO_BIG_BATCH_REQUEST_CODE},
};
use opc_wire::{jsonrpc::error_reply, op_node_errors};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::{
    borrow::Cow,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The admin API's bounds and read protection, from `[rpc]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiSettings {
    /// Reads need the JWT too (`rpc.jwt_on_reads`).
    pub jwt_on_reads: bool,
    /// `rpc.max_batch_len`.
    pub max_batch_len: usize,
    /// `rpc.max_request_bytes`.
    pub max_request_bytes: usize,
    /// `rpc.max_reply_bytes`.
    pub max_reply_bytes: usize,
    /// `rpc.max_connections`.
    pub max_connections: usize,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            jwt_on_reads: false,
            max_batch_len: 100,
            max_request_bytes: 1024 * 1024,
            max_reply_bytes: 10 * 1024 * 1024,
            max_connections: 64,
        }
    }
}

impl ApiSettings {
    /// Bytes of replies that may be held at once, being built or sent: four replies of the
    /// largest size. Forty clients asking for the largest reply at once then cost at most this,
    /// not forty times `max_reply_bytes`.
    pub fn reply_budget_bytes(&self) -> usize {
        self.max_reply_bytes.saturating_mul(4)
    }
}

/// One call of a request, with its parameters left as raw JSON.
#[derive(Debug)]
pub(super) struct Call<'a> {
    /// The call's JSON text, handed to jsonrpsee as it came.
    raw: &'a RawValue,
    /// Its method, when it names one.
    pub(super) method: Option<Cow<'a, str>>,
    /// Its id, for an error about it.
    pub(super) id: serde_json::Value,
}

/// The fields of a call the server looks at before dispatch; serde skips the rest unread.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(default)]
    id: serde_json::Value,
}

/// A request split into its calls.
#[derive(Debug)]
pub(super) enum Request<'a> {
    /// One call.
    Single(Call<'a>),
    /// A batch of at most `max_batch_len` calls.
    Batch(Vec<Call<'a>>),
}

impl<'a> Request<'a> {
    /// The calls of `body`; `Err` holds the complete error reply (not JSON, an empty or too long
    /// batch).
    pub(super) fn parse(body: &'a [u8], settings: &ApiSettings) -> Result<Self, String> {
        let parse_error =
            || error_reply(&serde_json::Value::Null, -32700, "parse error: the body is not JSON");
        let raw: &RawValue = serde_json::from_slice(body).map_err(|_| parse_error())?;
        if !raw.get().starts_with('[') {
            return Ok(Self::Single(Call::of(raw)));
        }
        let items: Vec<&RawValue> = serde_json::from_str(raw.get()).map_err(|_| parse_error())?;
        if items.is_empty() {
            return Err(error_reply(&serde_json::Value::Null, -32600, "invalid request: empty batch"));
        }
        if items.len() > settings.max_batch_len {
            let message = format!(
                "batch of {} calls is longer than rpc.max_batch_len ({}); send it in smaller batches",
                items.len(),
                settings.max_batch_len
            );
            return Err(error_reply(&serde_json::Value::Null, TOO_BIG_BATCH_REQUEST_CODE, &message));
        }
        Ok(Self::Batch(items.into_iter().map(Call::of).collect()))
    }

    /// Every call, one for a single request.
    pub(super) fn calls(&self) -> &[Call<'a>] {
        match self {
            Self::Single(call) => std::slice::from_ref(call),
            Self::Batch(calls) => calls,
        }
    }
}

impl<'a> Call<'a> {
    fn of(raw: &'a RawValue) -> Self {
        let head: Option<Head<'a>> = serde_json::from_str(raw.get()).ok();
        let (method, id) = head.map_or((None, serde_json::Value::Null), |head| (head.method, head.id));
        Self { raw, method, id }
    }
}

/// The reply of `request`, within `max_reply_bytes` and the shared `budget`; what exceeds either
/// is an error reply instead. The permit returned holds the reply's share of the budget until
/// the reply is sent.
pub(super) async fn dispatch(
    methods: &Methods,
    request: &Request<'_>,
    settings: &ApiSettings,
    budget: &Arc<Semaphore>,
) -> (String, Option<OwnedSemaphorePermit>) {
    let mut replies = Vec::with_capacity(request.calls().len());
    let mut total = 2;
    for call in request.calls() {
        let reply = dispatch_one(methods, call).await;
        total += reply.len() + 1;
        if total > settings.max_reply_bytes {
            let message = format!(
                "the reply would be larger than rpc.max_reply_bytes ({} bytes); ask for less: fewer calls \
                 a batch, or a smaller coordinator_events limit",
                settings.max_reply_bytes
            );
            return (error_reply(&serde_json::Value::Null, OVERSIZED_RESPONSE_CODE, &message), None);
        }
        replies.push(reply);
    }
    let permit = match u32::try_from(total.div_ceil(1024)) {
        Ok(kib) => budget.clone().try_acquire_many_owned(kib).ok(),
        Err(_) => None,
    };
    let Some(permit) = permit else {
        let message = format!(
            "busy: replies being sent already hold {} bytes (4 x rpc.max_reply_bytes); retry in a moment",
            settings.reply_budget_bytes()
        );
        return (error_reply(&serde_json::Value::Null, SERVER_IS_BUSY_CODE, &message), None);
    };
    let text = match request {
        Request::Single(_) => replies.pop().unwrap_or_default(),
        Request::Batch(_) => format!("[{}]", replies.join(",")),
    };
    (text, Some(permit))
}

/// The budget of replies in flight, in KiB permits.
pub(super) fn reply_budget(settings: &ApiSettings) -> Arc<Semaphore> {
    let kib = (settings.reply_budget_bytes() / 1024).min(Semaphore::MAX_PERMITS);
    Arc::new(Semaphore::new(kib))
}

async fn dispatch_one(methods: &Methods, call: &Call<'_>) -> String {
    let Some(method) = call.method.as_deref() else {
        return error_reply(&call.id, -32600, "invalid request: no method");
    };
    if methods.method(method).is_none() {
        // A name of normal length is echoed as geth does; a huge one only as a prefix.
        let shown =
            if method.len() > 64 { opc_wire::text::Echo(method).to_string() } else { method.to_owned() };
        let message = op_node_errors::method_not_available(&shown);
        return error_reply(&call.id, op_node_errors::METHOD_NOT_FOUND_CODE, &message);
    }
    match methods.raw_json_request(call.raw.get(), 1).await {
        Ok((reply, _subscriptions)) => reply.get().to_owned(),
        Err(err) => error_reply(&call.id, -32600, &format!("invalid request: {err}")),
    }
}

/// A response body that holds its share of the reply budget until it has been sent.
#[derive(Debug)]
pub struct ApiBody {
    body: Full<Bytes>,
    _budget: Option<OwnedSemaphorePermit>,
}

impl ApiBody {
    /// `body`, holding `budget` while it is sent.
    pub(super) fn new(body: impl Into<Bytes>, budget: Option<OwnedSemaphorePermit>) -> Self {
        Self { body: Full::new(body.into()), _budget: budget }
    }
}

impl Body for ApiBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Which connections are served: at most `max_connections` at once, as many again answered
/// `503` at once, the rest left in the listen queue until one closes.
#[derive(Debug, Clone)]
pub(super) struct ConnectionGate {
    serving: Arc<Semaphore>,
    refusing: Arc<Semaphore>,
    /// For the refusal's message.
    max_connections: usize,
}

/// What a connection got from the gate.
#[derive(Debug)]
pub(super) enum Admission {
    /// Served; the permit is held for the connection's life.
    Serve(OwnedSemaphorePermit),
    /// Answered `503`; the permit is held until that answer is sent.
    Refuse(OwnedSemaphorePermit),
}

impl ConnectionGate {
    pub(super) fn new(max_connections: usize) -> Self {
        let permits = max_connections.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            serving: Arc::new(Semaphore::new(permits)),
            refusing: Arc::new(Semaphore::new(permits)),
            max_connections: permits,
        }
    }

    /// A place for the next connection: served if one is free, else refused if a refusal slot
    /// is free, else the wait for a served one (connections queue in the kernel meanwhile).
    pub(super) async fn admit(&self) -> Admission {
        if let Ok(permit) = self.serving.clone().try_acquire_owned() {
            return Admission::Serve(permit);
        }
        if let Ok(permit) = self.refusing.clone().try_acquire_owned() {
            return Admission::Refuse(permit);
        }
        match self.serving.clone().acquire_owned().await {
            Ok(permit) => Admission::Serve(permit),
            // The semaphore is never closed; a refusal is still bounded by its own permits.
            Err(_) => std::future::pending().await,
        }
    }

    /// A refusal admitted earlier becomes a served connection if a place freed up since.
    pub(super) fn upgrade(&self, admission: Admission) -> Admission {
        match admission {
            Admission::Refuse(refusal) => match self.serving.clone().try_acquire_owned() {
                Ok(permit) => Admission::Serve(permit),
                Err(_) => Admission::Refuse(refusal),
            },
            served => served,
        }
    }

    /// The message of a refused connection.
    pub(super) fn refusal_message(&self) -> String {
        format!(
            "too many connections: rpc.max_connections ({}) are open; retry in a moment, or close idle \
             clients",
            self.max_connections
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(max_batch_len: usize, max_reply_bytes: usize) -> ApiSettings {
        ApiSettings { max_batch_len, max_reply_bytes, ..ApiSettings::default() }
    }

    fn call(method: &str) -> String {
        serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": []}).to_string()
    }

    fn methods() -> Methods {
        let mut module = jsonrpsee::RpcModule::new(());
        module.register_method("echo_big", |_, _, _| "x".repeat(4096)).expect("registers");
        module.into()
    }

    #[test]
    fn a_batch_longer_than_the_limit_is_refused_whole_naming_the_key() {
        let body = format!("[{}]", vec![call("echo_big"); 3].join(","));
        let err = Request::parse(body.as_bytes(), &settings(2, 1 << 20)).expect_err("too long");
        assert!(
            err.contains("-32010")
                && err.contains("batch of 3 calls")
                && err.contains("rpc.max_batch_len (2)")
        );
        let request = Request::parse(body.as_bytes(), &settings(3, 1 << 20)).expect("fits");
        let methods: Vec<_> = request.calls().iter().map(|call| call.method.as_deref()).collect();
        assert_eq!(methods, [Some("echo_big"); 3]);
    }

    #[test]
    fn a_body_that_is_not_json_or_an_empty_batch_is_an_error_reply() {
        let err = Request::parse(b"{nope", &ApiSettings::default()).expect_err("not JSON");
        assert!(err.contains("-32700"), "{err}");
        let err = Request::parse(b"[]", &ApiSettings::default()).expect_err("empty");
        assert!(err.contains("empty batch"), "{err}");
    }

    #[tokio::test]
    async fn a_reply_over_the_limit_is_an_error_naming_the_key_not_a_cut_off_body() {
        let body = format!("[{}]", vec![call("echo_big"); 3].join(","));
        let limits = settings(10, 10_000);
        let request = Request::parse(body.as_bytes(), &limits).expect("parses");
        let (reply, permit) = dispatch(&methods(), &request, &limits, &reply_budget(&limits)).await;
        let reply: serde_json::Value = serde_json::from_str(&reply).expect("a whole JSON reply");
        assert_eq!(reply["error"]["code"], OVERSIZED_RESPONSE_CODE, "{reply}");
        assert!(reply["error"]["message"].as_str().is_some_and(|m| m.contains("rpc.max_reply_bytes (10000")));
        assert!(permit.is_none());

        let limits = settings(10, 20_000);
        let (reply, permit) = dispatch(&methods(), &request, &limits, &reply_budget(&limits)).await;
        assert_eq!(serde_json::from_str::<Vec<serde_json::Value>>(&reply).expect("a batch reply").len(), 3);
        assert!(permit.is_some(), "the reply holds its share of the budget");
    }

    #[tokio::test]
    async fn replies_beyond_the_shared_budget_are_told_to_retry_and_fit_again_once_sent() {
        let limits = settings(10, 8 * 1024);
        let budget = reply_budget(&limits);
        let body = call("echo_big");
        let request = Request::parse(body.as_bytes(), &limits).expect("parses");
        let mut held = Vec::new();
        loop {
            let (reply, permit) = dispatch(&methods(), &request, &limits, &budget).await;
            match permit {
                Some(permit) => held.push(permit),
                None => {
                    assert!(reply.contains("-32009") && reply.contains("busy"), "{reply}");
                    break;
                }
            }
            assert!(held.len() <= 8, "the budget of 32 KiB holds at most 8 replies of 4 KiB");
        }
        held.clear();
        let (_, permit) = dispatch(&methods(), &request, &limits, &budget).await;
        assert!(permit.is_some(), "sent replies give their share back");
    }

    #[tokio::test]
    async fn an_unknown_method_is_answered_as_geth_does_with_a_long_name_cut_short() {
        let long = "m".repeat(900_000);
        let body = call(&long);
        let request = Request::parse(body.as_bytes(), &ApiSettings::default()).expect("parses");
        let limits = ApiSettings::default();
        let (reply, _) = dispatch(&methods(), &request, &limits, &reply_budget(&limits)).await;
        assert!(reply.len() < 300 && reply.contains("(900000 bytes)"), "{}", &reply[..300.min(reply.len())]);
    }

    #[tokio::test]
    async fn the_gate_serves_refuses_as_many_again_then_makes_the_rest_wait() {
        let gate = ConnectionGate::new(2);
        let served: Vec<Admission> = vec![gate.admit().await, gate.admit().await];
        assert!(served.iter().all(|a| matches!(a, Admission::Serve(_))));
        let refused = vec![gate.admit().await, gate.admit().await];
        assert!(refused.iter().all(|a| matches!(a, Admission::Refuse(_))));
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(50), gate.admit()).await;
        assert!(waiting.is_err(), "a fifth connection waits");
        drop(served);
        let upgraded = refused.into_iter().map(|a| gate.upgrade(a)).collect::<Vec<_>>();
        assert!(upgraded.iter().all(|a| matches!(a, Admission::Serve(_))), "freed places go to refusals");
        assert!(gate.refusal_message().contains("rpc.max_connections (2)"));
    }
}
