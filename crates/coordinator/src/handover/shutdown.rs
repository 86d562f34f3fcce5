//! A replica that is asked to stop while it acts hands its leadership over first, so a rolling
//! restart costs no election.
//!
//! Left to Raft alone, the followers of a replica that exits wait out its leader lease
//! (`election_timeout_max_ms` after its last heartbeat) and an election timeout before one of
//! them campaigns, then confirm the new leadership: 1.4-1.9 s with no acting replica at the
//! default timings. Instead, on the shutdown signal and while the admin API and the Raft server
//! still run, the acting replica:
//!
//! 1. asks every peer's API what it reaches (`coordinator_status`, as the blind hand-over does)
//!    and ranks them: most chains reached, then least Raft lag, then lowest id. A lagging target
//!    is what turned a transfer into a 2.7 s leaderless cluster in openraft#2088;
//! 2. stops acting (ends its lease task and waits for `Acting` to be `None`) *before* the
//!    transfer. Two reasons: the lease's quorum rounds are heartbeats that would renew the
//!    followers' leases and block the target's election (openraft#1747), and the old leader grants
//!    the target's vote at once (its own lease dates from its election), so the target may act a
//!    few milliseconds later, well within the old replica's lease;
//! 3. transfers the leadership ([`Cluster::transfer_leadership_within`]) to the first ranked peer,
//!    then the next if that one fails while this replica still leads, and waits until a peer's
//!    API says it acts (the target, or one the others elected meanwhile);
//! 4. returns, and the shutdown goes on as before.
//!
//! Everything happens before the one deadline of [`HandoverSettings::shutdown_within`]. A transfer
//! that misses it leaves the replica to shut down as it always did: its heartbeats were paused
//! during the transfer, so the followers' leases have lapsed and one of them elects itself at its
//! next election timeout instead of a whole lease later.

use super::{HandoverSettings, PeerSight, ask_peers, describe_peers, peer_client};
use crate::replication::Acting;
use jsonrpsee::http_client::HttpClient;
use opc_cluster::Cluster;
use opc_wire::coordinator::CoordinatorApiClient;
use std::{cmp::Reverse, collections::BTreeMap, time::Duration};
use tokio::{sync::watch, time::Instant};
use tokio_util::sync::CancellationToken;

/// How often the new leader's API is asked whether it acts yet.
const ACT_POLL: Duration = Duration::from_millis(5);

/// How a shutdown hand-over ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShutdownHandover {
    /// `cluster.handover_on_shutdown = false`: the replica leaves as it is.
    Disabled,
    /// This replica did not act, so nothing had to be handed over.
    NotActing,
    /// Replica `to` acts; `after` since the shutdown signal.
    HandedOver {
        /// The replica that acts now.
        to: u64,
        /// From the start of the hand-over until `to` was seen acting.
        after: Duration,
    },
    /// No peer took over in time; the replica leaves as it did without a hand-over.
    GaveUp {
        /// What went wrong, in words for the log.
        reason: String,
    },
}

/// Hands the leadership over if this replica acts; see the module docs. `stop_acting` ends the
/// lease task that publishes `acting_rx`.
pub async fn hand_over_on_shutdown(
    cluster: &Cluster,
    settings: &HandoverSettings,
    stop_acting: &CancellationToken,
    mut acting_rx: watch::Receiver<Acting>,
) -> ShutdownHandover {
    if !settings.on_shutdown {
        return ShutdownHandover::Disabled;
    }
    if acting_rx.borrow().is_none() {
        return ShutdownHandover::NotActing;
    }
    let started = Instant::now();
    let deadline = started + settings.shutdown_within;
    let peers: Vec<PeerSight> =
        tokio::time::timeout_at(deadline, ask_peers(cluster, settings)).await.unwrap_or_default();
    let ranked = rank_targets(peers, &cluster.status().replication_lag);
    tracing::info!(
        replica = cluster.id(),
        peers = %describe_peers(&ranked),
        within_ms = settings.shutdown_within.as_millis(),
        "shutting down while acting: handing the leadership over first"
    );
    if ranked.is_empty() {
        return ShutdownHandover::GaveUp { reason: "no peer told what it reaches".to_owned() };
    }
    stop_acting.cancel();
    if tokio::time::timeout_at(deadline, acting_rx.wait_for(Option::is_none)).await.is_err() {
        return ShutdownHandover::GaveUp { reason: "this replica did not stop acting in time".to_owned() };
    }
    let mut failures = Vec::new();
    for peer in &ranked {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            break;
        }
        match cluster.transfer_leadership_within(peer.id, remaining).await {
            Ok(()) => break,
            Err(err) => {
                tracing::warn!(replica = cluster.id(), to = peer.id, %err, "handing the leadership over failed");
                failures.push(format!("replica {}: {err}", peer.id));
                // Lost meanwhile (a lease that lapsed under load): another replica leads or is
                // being elected, and transferring from here is no longer possible.
                if !cluster.status().is_leader() {
                    break;
                }
            }
        }
    }
    if cluster.status().is_leader() {
        // Every transfer failed and this replica still leads, so no peer can be elected while it
        // stays: leaving now is what lets the others elect.
        if failures.is_empty() {
            failures.push("no time left to transfer".to_owned());
        }
        return ShutdownHandover::GaveUp { reason: failures.join("; ") };
    }
    // Whichever peer leads now, the target or one elected meanwhile: once it acts, this replica
    // may go. Staying until then keeps its vote and its log available to the new leader.
    match wait_until_one_acts(&ranked, settings, deadline).await {
        Ok(to) => ShutdownHandover::HandedOver { to, after: started.elapsed() },
        Err(last) => {
            failures.push(format!("no peer acts ({last})"));
            ShutdownHandover::GaveUp { reason: failures.join("; ") }
        }
    }
}

/// The peers to try, best first: the most chains reached (the point of acting), then the least
/// Raft lag (a lagging target must catch up first, and its voters may prefer a longer log), then
/// the lowest id, so the choice is stable.
fn rank_targets(mut peers: Vec<PeerSight>, lag: &BTreeMap<u64, u64>) -> Vec<PeerSight> {
    peers
        .sort_by_key(|peer| (Reverse(peer.reached), lag.get(&peer.id).copied().unwrap_or(u64::MAX), peer.id));
    peers
}

/// Polls the peers' APIs until one says it acts, and returns it; `Err` with the last answers at
/// `deadline`.
async fn wait_until_one_acts(
    peers: &[PeerSight],
    settings: &HandoverSettings,
    deadline: Instant,
) -> Result<u64, String> {
    let clients: Vec<(u64, HttpClient)> = peers
        .iter()
        .filter_map(|peer| peer_client(&peer.api_addr, settings).ok().map(|client| (peer.id, client)))
        .collect();
    let mut last = Vec::new();
    loop {
        last.clear();
        for (id, client) in &clients {
            match tokio::time::timeout_at(deadline, client.cluster_membership()).await {
                Ok(Ok(info)) if info.acting => return Ok(*id),
                Ok(Ok(info)) => last.push(format!(
                    "replica {id}: term {}, leader {}",
                    info.term,
                    info.leader.map_or_else(|| "none".to_owned(), |leader| leader.to_string())
                )),
                Ok(Err(err)) => last.push(format!("replica {id}: {err}")),
                Err(_) => last.push(format!("replica {id}: no answer in time")),
            }
        }
        if Instant::now() + ACT_POLL >= deadline {
            return Err(last.join(", "));
        }
        tokio::time::sleep(ACT_POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(id: u64, reached: usize) -> PeerSight {
        PeerSight { id, api_addr: format!("127.0.0.1:{id}"), reached }
    }

    #[test]
    fn targets_are_ranked_by_chains_reached_then_raft_lag_then_id() {
        let peers = vec![peer(2, 1), peer(3, 2), peer(4, 2), peer(5, 2), peer(6, 0)];
        // 4 is caught up, 3 lags, 5 is unknown to the leader (counted as lagging most).
        let lag = BTreeMap::from([(2, 0), (3, 7), (4, 0), (6, 0)]);
        let order: Vec<u64> = rank_targets(peers, &lag).iter().map(|peer| peer.id).collect();
        assert_eq!(order, [4, 3, 5, 2, 6]);
    }

    #[test]
    fn equal_peers_are_tried_lowest_id_first() {
        let order: Vec<u64> =
            rank_targets(vec![peer(3, 1), peer(2, 1)], &BTreeMap::new()).iter().map(|peer| peer.id).collect();
        assert_eq!(order, [2, 3]);
    }
}
