//! Raft faults between replicas: the runner posts a [`FaultSpec`] to a replica's Raft server
//! (`/fault`, served because the replicas run with `cluster.fault_injection = true`), which then
//! drops its Raft traffic to the replicas it names; `/fault/heal` lets it through again.

use crate::invariants::coordinator_alive::STATUS_TIMEOUT;
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use opc_cluster::FaultSpec;
use std::net::SocketAddr;

/// The HTTP client of the replicas' `/fault` endpoints.
#[derive(Debug, Clone)]
pub(crate) struct RaftFaults {
    http: Client<HttpConnector, Full<Bytes>>,
}

impl RaftFaults {
    pub(crate) fn new() -> Self {
        Self { http: Client::builder(hyper_util::rt::TokioExecutor::new()).build_http() }
    }

    /// Makes replica `id` (Raft server at `raft_addr`) drop its traffic to every replica outside
    /// its group of `groups`.
    pub(crate) async fn partition(
        &self,
        raft_addr: SocketAddr,
        groups: &[Vec<u64>],
        id: u64,
    ) -> Result<(), String> {
        self.post(raft_addr, "/fault", Some(&partition_spec(groups, id))).await
    }

    /// Lets the replica at `raft_addr` talk to every replica again.
    pub(crate) async fn heal(&self, raft_addr: SocketAddr) -> Result<(), String> {
        self.post(raft_addr, "/fault/heal", None).await
    }

    async fn post(&self, raft_addr: SocketAddr, path: &str, spec: Option<&FaultSpec>) -> Result<(), String> {
        let body = match spec {
            Some(spec) => serde_json::to_vec(spec).map_err(|err| err.to_string())?,
            None => Vec::new(),
        };
        let request = hyper::Request::post(format!("http://{raft_addr}{path}"))
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|err| err.to_string())?;
        match tokio::time::timeout(STATUS_TIMEOUT, self.http.request(request)).await {
            Ok(Ok(response)) if response.status().is_success() => Ok(()),
            Ok(Ok(response)) => Err(format!("POST {path} answered {}", response.status())),
            Ok(Err(err)) => Err(format!("POST {path}: {err}")),
            Err(_) => Err(format!("POST {path}: no answer within {} s", STATUS_TIMEOUT.as_secs())),
        }
    }
}

/// The `/fault` body of replica `id` under `groups`: drop everything to replicas outside its group.
fn partition_spec(groups: &[Vec<u64>], id: u64) -> FaultSpec {
    let own: &[u64] = groups.iter().find(|group| group.contains(&id)).map_or(&[], Vec::as_slice);
    let drop_to =
        groups.iter().flatten().copied().filter(|other| *other != id && !own.contains(other)).collect();
    FaultSpec { drop_to, ..FaultSpec::default() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn a_partition_drops_traffic_to_every_replica_outside_the_own_group() {
        let groups = vec![vec![1], vec![2, 3]];
        assert_eq!(partition_spec(&groups, 1).drop_to, BTreeSet::from([2, 3]));
        assert_eq!(partition_spec(&groups, 2).drop_to, BTreeSet::from([1]));
        let alone = vec![vec![1], vec![2], vec![3]];
        assert_eq!(partition_spec(&alone, 3).drop_to, BTreeSet::from([1, 2]));
    }
}
