//! A blind acting replica hands its leadership to a replica that can see the sequencers.
//!
//! Raft elects the replica that reaches a quorum of *replicas*; nothing in that choice says it
//! reaches the *sequencers*. An acting replica whose path to the sequencers breaks (a firewall
//! change, a NIC, a route) would otherwise hold the leadership and do nothing while a leader
//! sequencer dies, although every other replica could act.
//!
//! So the acting replica watches its own probes. When on some chain not one node's op-node has
//! answered for `failover.chain_liveness_window_ms` (the time after which the coordinator judges a
//! silent chain stopped), it asks every peer's API for `coordinator_status` and transfers the
//! leadership to the peer that reaches nodes on the most chains, if that is more chains than it
//! reaches itself. Peers that see no more than it does are left alone: when every replica is
//! blind (the sequencers themselves are down) the leadership stays where it is. After a transfer,
//! or a round that found no better peer, it waits another window before asking again.
//!
//! A node counts as reached when the latest probe of its op-node got an answer, even a bad one
//! (`op_node_malformed`, `stalled`, ...): an answer proves the path, and the path is what the
//! acting replica needs to stop and start sequencers ([`Reason::op_node_answered`](crate::health::Reason::op_node_answered)).

use crate::{
    actor::{ChainCommand, ChainHandle},
    jwt, metrics as m,
    replication::Acting,
};
use jsonrpsee::http_client::{HeaderMap, HeaderValue, HttpClient, HttpClientBuilder};
use opc_cluster::Cluster;
use opc_wire::{
    coordinator::{ChainStatus, CoordinatorApiClient},
    text,
};
use std::{collections::BTreeMap, sync::Arc, time::Duration};
use tokio::{sync::watch, time::Instant};
use tokio_util::sync::CancellationToken;

mod shutdown;
pub use shutdown::{ShutdownHandover, hand_over_on_shutdown};

/// The probes change no faster than this is worth looking at.
const MIN_CHECK_EVERY: Duration = Duration::from_millis(50);

/// When and how the acting replica checks its sight.
#[derive(Debug, Clone)]
pub struct HandoverSettings {
    /// How long a chain may have no reached node before the replica looks for a better one.
    pub blind_after: Duration,
    /// How often the acting replica looks at its own probes.
    pub check_every: Duration,
    /// Deadline of one peer's `coordinator_status`.
    pub ask_timeout: Duration,
    /// The admin API's JWT secret, shared by every replica of one config.
    pub jwt_secret: Option<[u8; 32]>,
    /// Hand the leadership over on a graceful shutdown (`cluster.handover_on_shutdown`).
    pub on_shutdown: bool,
    /// Deadline of that hand-over, after which the replica leaves anyway.
    pub shutdown_within: Duration,
}

/// How many chains of `statuses` have at least one node whose op-node answered its last probe.
pub fn chains_reached(statuses: &[ChainStatus]) -> usize {
    statuses.iter().filter(|chain| chain.nodes.iter().any(|node| node.reason.op_node_answered())).count()
}

/// Runs until `cancel`: while this replica acts, hands the leadership over when it is blind.
pub async fn run_blind_handover(
    cluster: Cluster,
    chains: Arc<BTreeMap<String, ChainHandle>>,
    mut acting_rx: watch::Receiver<Acting>,
    settings: HandoverSettings,
    cancel: CancellationToken,
) {
    // Per chain: since when no node was reached while acting.
    let mut blind_since: BTreeMap<String, Instant> = BTreeMap::new();
    let mut quiet_until: Option<Instant> = None;
    loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            // The lease task is gone: this replica never acts again.
            changed = acting_rx.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(settings.check_every.max(MIN_CHECK_EVERY)) => {}
        }
        if acting_rx.borrow().is_none() {
            blind_since.clear();
            continue;
        }
        let now = Instant::now();
        let own = own_statuses(&chains).await;
        for chain in &own {
            if chains_reached(std::slice::from_ref(chain)) == 0 {
                blind_since.entry(chain.chain.clone()).or_insert(now);
            } else {
                blind_since.remove(&chain.chain);
            }
        }
        let blind: Vec<&String> = blind_since
            .iter()
            .filter(|(_, since)| now.duration_since(**since) >= settings.blind_after)
            .map(|(chain, _)| chain)
            .collect();
        if blind.is_empty() || quiet_until.is_some_and(|until| now < until) {
            continue;
        }
        quiet_until = Some(now + settings.blind_after);
        let reached = chains_reached(&own);
        let peers = ask_peers(&cluster, &settings).await;
        let best = peers
            .iter()
            .filter(|peer| peer.reached > reached)
            .max_by_key(|peer| (peer.reached, std::cmp::Reverse(peer.id)));
        let Some((to, peer_reached)) = best.map(|peer| (peer.id, peer.reached)) else {
            tracing::warn!(
                replica = cluster.id(),
                chains = %text::list(&blind),
                reached,
                peers = %describe_peers(&peers),
                "acting replica reaches no node of these chains, and no peer reaches more: keeping the leadership"
            );
            continue;
        };
        tracing::warn!(
            replica = cluster.id(),
            chains = %text::list(&blind),
            reached,
            to,
            peer_reached,
            "acting replica reaches no node of these chains for {} ms; replica {to} reaches nodes on {}: handing the leadership over",
            settings.blind_after.as_millis(),
            text::count(peer_reached as u64, "chain")
        );
        match cluster.transfer_leadership(to).await {
            Ok(()) => {
                metrics::counter!(m::RAFT_BLIND_HANDOVERS).increment(1);
                tracing::info!(replica = cluster.id(), to, "leadership handed over: observing only");
                blind_since.clear();
            }
            Err(err) => {
                tracing::warn!(replica = cluster.id(), to, %err, "handing the leadership over failed")
            }
        }
    }
}

/// This replica's status of every chain (a chain whose actor does not answer is left out).
async fn own_statuses(chains: &BTreeMap<String, ChainHandle>) -> Vec<ChainStatus> {
    let mut statuses = Vec::new();
    for handle in chains.values() {
        statuses.extend(handle.ask(ChainCommand::Status).await);
    }
    statuses
}

/// What a peer told about its sight of the sequencers.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PeerSight {
    /// Its Raft id.
    id: u64,
    /// Its admin API, asked again to see it act after a shutdown hand-over.
    api_addr: String,
    /// On how many chains one of its op-nodes answered its last probe.
    reached: usize,
}

/// `2 reaches 1 chain, 3 reaches 0 chains` (or `none`), for logs.
fn describe_peers(peers: &[PeerSight]) -> String {
    text::list(
        peers.iter().map(|peer| format!("{} reaches {}", peer.id, text::count(peer.reached as u64, "chain"))),
    )
}

/// Every voter but this one that told in time what it reaches.
async fn ask_peers(cluster: &Cluster, settings: &HandoverSettings) -> Vec<PeerSight> {
    let own = cluster.id();
    let peers: Vec<_> = cluster.membership().voters.into_iter().filter(|replica| replica.id != own).collect();
    let asks = peers.into_iter().map(|replica| async move {
        match peer_client(&replica.api_addr, settings) {
            Ok(client) => match client.status(None).await {
                Ok(statuses) => {
                    return Some(PeerSight {
                        id: replica.id,
                        reached: chains_reached(&statuses),
                        api_addr: replica.api_addr,
                    });
                }
                Err(err) => {
                    tracing::debug!(replica = replica.id, api_addr = %replica.api_addr, %err, "peer did not tell what it reaches")
                }
            },
            Err(err) => {
                tracing::debug!(replica = replica.id, api_addr = %replica.api_addr, %err, "no client for the peer")
            }
        }
        None
    });
    futures::future::join_all(asks).await.into_iter().flatten().collect()
}

/// An admin client of a peer, with the shared JWT when the API requires one.
fn peer_client(api_addr: &str, settings: &HandoverSettings) -> Result<HttpClient, String> {
    let mut headers = HeaderMap::new();
    if let Some(secret) = &settings.jwt_secret {
        let value = HeaderValue::from_str(&format!("Bearer {}", jwt::issue(secret)))
            .map_err(|err| err.to_string())?;
        headers.insert("authorization", value);
    }
    HttpClientBuilder::default()
        .request_timeout(settings.ask_timeout)
        .set_headers(headers)
        .build(format!("http://{api_addr}"))
        .map_err(|err| err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Reason;
    use opc_wire::coordinator::NodeStatus;

    fn chain(name: &str, reasons: &[Reason]) -> ChainStatus {
        let nodes = reasons
            .iter()
            .enumerate()
            .map(|(i, reason)| NodeStatus {
                name: format!("seq-{i}"),
                healthy: *reason == Reason::Ok,
                reason: *reason,
                detail: String::new(),
                unsafe_head: None,
                safe_head: None,
                execution_head: None,
                active: None,
                op_node_latency_ms: None,
                op_geth_latency_ms: None,
                priority: 0,
                candidate: true,
                fenced: false,
                head_age_ms: None,
            })
            .collect();
        ChainStatus {
            chain: name.to_owned(),
            leader: None,
            phase: "steady".to_owned(),
            epoch: 0,
            paused: false,
            stopped_hash: None,
            nodes,
            block_time_ms: None,
            block_time_source: None,
            held: None,
            persist_error: None,
            config_mismatch: None,
            timing_unreliable: None,
            conductor: None,
        }
    }

    #[test]
    fn a_chain_is_reached_when_any_op_node_answered_even_badly() {
        let statuses = [
            chain("blind", &[Reason::OpNodeUnreachable, Reason::OpNodeTimeout, Reason::Unknown]),
            chain("bad_answers", &[Reason::OpNodeUnreachable, Reason::OpNodeMalformed]),
            chain("geth_down", &[Reason::OpGethUnreachable]),
            chain("healthy", &[Reason::Ok, Reason::Stalled]),
        ];
        assert_eq!(chains_reached(&statuses), 3);
        assert_eq!(chains_reached(&statuses[..1]), 0);
        assert_eq!(chains_reached(&[]), 0);
    }
}
