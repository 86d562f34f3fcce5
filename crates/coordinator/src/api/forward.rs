//! Forwarding a mutating call that reaches a replica that does not act to the leader replica.

use super::{NO_LEADER_CODE, limits::ApiBody, server::reply};
use crate::replication::Acting;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Request, Response, StatusCode, header};
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use opc_cluster::Cluster;
use std::time::Duration;
use tokio::sync::watch;

/// Header marking a request one replica forwarded to another.
pub(super) const FORWARDED_HEADER: &str = "x-opc-forwarded";

/// How long a forwarded call may take: a hand-over waits for a whole fail-over.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(60);

/// Sends mutating calls that reach a replica that does not act to the leader replica's API.
#[derive(Debug, Clone)]
pub struct Forwarding {
    cluster: Cluster,
    pub(super) acting_rx: watch::Receiver<Acting>,
    http: Client<HttpConnector, Full<Bytes>>,
}

impl Forwarding {
    /// Forwarding through `cluster`'s view of the leader.
    pub fn new(cluster: Cluster, acting_rx: watch::Receiver<Acting>) -> Self {
        let http = Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
        Self { cluster, acting_rx, http }
    }

    /// The leader's answer to `body` (read up to `max_reply_bytes`), or a JSON-RPC error naming
    /// why it could not be had.
    pub(super) async fn forward(
        &self,
        id: &serde_json::Value,
        body: Bytes,
        auth: Option<&str>,
        max_reply_bytes: usize,
    ) -> Response<ApiBody> {
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
                let bytes = Limited::new(response.into_body(), max_reply_bytes)
                    .collect()
                    .await
                    .map_err(|err| err.to_string())?
                    .to_bytes();
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
