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
pub(crate) const FORWARDED_HEADER: &str = "x-opc-forwarded";

/// How long a forwarded call may take: a hand-over waits for a whole fail-over.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(60);

/// Sends mutating calls that reach a replica that does not act to the leader replica's API.
#[derive(Debug, Clone)]
pub struct Forwarding {
    cluster: Cluster,
    pub(super) acting_rx: watch::Receiver<Acting>,
    http: HttpClient,
}

impl Forwarding {
    /// Forwarding through `cluster`'s view of the leader.
    pub fn new(cluster: Cluster, acting_rx: watch::Receiver<Acting>) -> Self {
        Self { cluster, acting_rx, http: http_client() }
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
        let mut headers = vec![(FORWARDED_HEADER, status.id.to_string())];
        if let Some(auth) = auth {
            headers.push((header::AUTHORIZATION.as_str(), auth.to_owned()));
        }
        let url = format!("http://{addr}/");
        let outcome = post_json(&self.http, url, &headers, body, FORWARD_TIMEOUT, max_reply_bytes).await;
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

/// A client for forwarding between replicas.
pub(crate) type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// A new client for [`post_json`].
pub(crate) fn http_client() -> HttpClient {
    Client::builder(hyper_util::rt::TokioExecutor::new()).build_http()
}

/// POSTs the JSON `body` to `url` with `headers`; the answer's status and body (read up to
/// `max_reply_bytes`) within `timeout`, or why not.
pub(crate) async fn post_json(
    http: &HttpClient,
    url: String,
    headers: &[(&str, String)],
    body: Bytes,
    timeout: Duration,
    max_reply_bytes: usize,
) -> Result<(StatusCode, Bytes), String> {
    let mut request = Request::post(url).header(header::CONTENT_TYPE, "application/json");
    for (name, value) in headers {
        request = request.header(*name, value.as_str());
    }
    let request = request.body(Full::new(body)).map_err(|err| err.to_string())?;
    tokio::time::timeout(timeout, async {
        let response = http.request(request).await.map_err(|err| err.to_string())?;
        let status_code = response.status();
        let bytes = Limited::new(response.into_body(), max_reply_bytes)
            .collect()
            .await
            .map_err(|err| err.to_string())?
            .to_bytes();
        Ok::<_, String>((status_code, bytes))
    })
    .await
    .unwrap_or_else(|_| Err(format!("no answer within {} ms", timeout.as_millis())))
}
