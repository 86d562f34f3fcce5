//! Running as one replica of a Raft cluster (`[cluster]` in the config).
//!
//! Every replica probes every node, so whichever becomes leader decides on fresh observations;
//! only the replica that holds a *confirmed* Raft leadership acts on sequencers. Two pieces make
//! that hold:
//!
//! - [`RaftStateStore`]: the chains' durable state goes through Raft. `save` returns once a quorum
//!   committed it, so every transition is committed before the sequencer call that depends on it,
//!   and a replica that is no longer leader cannot save, hence cannot take the dependent step.
//! - [`run_leader_lease`]: publishes [`Acting`]. openraft 0.9 does not make a leader cut off from
//!   its quorum step down, so leadership alone is not enough: the replica re-confirms it with a
//!   quorum round (`ensure_linearizable`) every heartbeat, and acts only while the last
//!   confirmation is younger than `election_timeout_min_ms`. A new leader needs the followers'
//!   leases (`election_timeout_max_ms` after the last heartbeat they saw) to lapse first, so the
//!   old one has stopped acting before the new one can be elected.
//!
//! | replica is            | confirmation           | [`Acting`]                    |
//! |-----------------------|------------------------|-------------------------------|
//! | leader                | succeeded < lease ago  | `Some(term)`: actors act      |
//! | leader                | failed or timed out    | `None`: actors only observe   |
//! | follower / candidate  | -                      | `None`                        |
//! | standalone (no Raft)  | -                      | `Some(0)` forever             |
//!
//! A sequencer call already on the wire when leadership is lost cannot be recalled; it was
//! committed first, so the next leader finds it in the state and verifies its effect
//! (`admin_sequencerActive`, `optimism_syncStatus`) before repeating anything.

use crate::{
    metrics as m,
    state::{ChainState, StateError, StateStore},
};
use futures::future::BoxFuture;
use opc_cluster::{Cluster, ClusterStatus, Role, WriteError};
use std::{collections::BTreeSet, path::PathBuf, time::Duration};
use tokio::{sync::watch, time::Instant};
use tokio_util::sync::CancellationToken;

/// `Some(term)` while this replica may act on sequencers (the Raft term of its leadership; 0 when
/// running without Raft), `None` while it may only observe.
pub type Acting = Option<u64>;

/// Chain state replicated through Raft: one opaque JSON document per chain. A chain in conductor
/// mode saves its fence's holding in the same entry (see `crate::conductor`).
#[derive(Debug, Clone)]
pub struct RaftStateStore {
    cluster: Cluster,
    conducted: BTreeSet<String>,
}

impl RaftStateStore {
    /// A store over `cluster`; `conducted` are the chains in conductor mode.
    pub fn new(cluster: Cluster, conducted: BTreeSet<String>) -> Self {
        Self { cluster, conducted }
    }

    fn path(&self) -> PathBuf {
        self.cluster.store_path().to_owned()
    }
}

impl StateStore for RaftStateStore {
    fn load<'a>(&'a self, chain: &'a str) -> BoxFuture<'a, Result<Option<ChainState>, StateError>> {
        Box::pin(async move {
            let Some(value) = self.cluster.read(chain) else { return Ok(None) };
            serde_json::from_value(value).map(Some).map_err(|err| StateError::Corrupt {
                path: self.path(),
                detail: format!("replicated state of chain {chain:?}: {err}"),
            })
        })
    }

    fn save<'a>(&'a self, chain: &'a str, state: &'a ChainState) -> BoxFuture<'a, Result<(), StateError>> {
        Box::pin(async move {
            let value = serde_json::to_value(state).map_err(|err| StateError::Corrupt {
                path: self.path(),
                detail: format!("cannot encode the state of chain {chain:?}: {err}"),
            })?;
            let holding = self.conducted.contains(chain).then(|| crate::conductor::holding_of(state));
            self.cluster.put(chain, value, holding).await.map(|_| ()).map_err(|error| {
                StateError::NotCommitted { chain: chain.to_owned(), detail: describe_write_error(&error) }
            })
        })
    }
}

fn describe_write_error(error: &WriteError) -> String {
    match error {
        WriteError::NotLeader { leader: Some(leader) } => {
            let at = leader.api_addr.as_deref().unwrap_or("an unknown address");
            format!("this replica is not the Raft leader (replica {} at {at} is)", leader.id)
        }
        other => other.to_string(),
    }
}

/// Timings of the lease, from `[cluster]`.
#[derive(Debug, Clone, Copy)]
pub struct LeaseSettings {
    /// How often leadership is re-confirmed (`heartbeat_interval_ms`).
    pub check_every: Duration,
    /// How long one confirmation stays valid (`election_timeout_min_ms`).
    pub lease: Duration,
}

/// Publishes whether this replica may act, until `cancel`; then publishes `None`.
///
/// A confirmation that started at `t` lets the replica act until `t + lease` and not a moment
/// longer: the expiry is a timer of its own, raced against the next confirmation, so a slow
/// quorum round cannot stretch it.
pub async fn run_leader_lease(
    cluster: Cluster,
    settings: LeaseSettings,
    acting_tx: watch::Sender<Acting>,
    cancel: CancellationToken,
) {
    let mut status_rx = cluster.status_watch();
    // The lease in force: until when, and in which term.
    let mut lease: Option<(Instant, u64)> = None;
    loop {
        let status = cluster.status();
        if status.is_leader() {
            let started = Instant::now();
            let confirmation = tokio::time::timeout(settings.lease, cluster.ensure_linearizable());
            tokio::pin!(confirmation);
            let confirmed = loop {
                let expiry = lease.map(|(until, _)| until);
                tokio::select! {
                    biased;
                    () = cancel.cancelled() => {
                        acting_tx.send_replace(None);
                        return;
                    }
                    outcome = &mut confirmation => break matches!(outcome, Ok(Ok(()))),
                    () = sleep_until_or_never(expiry) => {
                        lease = None;
                        publish_acting(&acting_tx, &status, None);
                    }
                }
            };
            // The term may have moved while confirming; only a confirmation in the term we read
            // counts.
            lease = (confirmed && cluster.status().term == status.term)
                .then_some((started + settings.lease, status.term));
        } else {
            lease = None;
        }
        let acting = lease.filter(|(until, _)| Instant::now() < *until).map(|(_, term)| term);
        publish_acting(&acting_tx, &status, acting);
        publish_metrics(&status, acting.is_some());
        // A leader re-confirms every heartbeat; a follower wakes on any change openraft reports.
        let wait = if status.is_leader() { settings.check_every } else { settings.check_every * 5 };
        let expiry = lease.map(|(until, _)| until);
        tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            () = sleep_until_or_never(expiry) => {
                lease = None;
                publish_acting(&acting_tx, &status, None);
            }
            () = role_change(&mut status_rx, &status) => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
    acting_tx.send_replace(None);
}

/// Resolves when the role, the term or the leader differ from `seen`. The status changes far
/// more often than that (every heartbeat acknowledged moves `millis_since_quorum_ack`): waking on
/// each change made the leader confirm again at once, and each confirmation is a heartbeat round
/// that changes the status again, a loop that kept two cores busy for ten chains.
async fn role_change(status_rx: &mut watch::Receiver<ClusterStatus>, seen: &ClusterStatus) {
    let key =
        |status: &ClusterStatus| (status.role, status.term, status.leader.as_ref().map(|leader| leader.id));
    let seen = key(seen);
    while status_rx.changed().await.is_ok() {
        if key(&status_rx.borrow_and_update()) != seen {
            return;
        }
    }
    std::future::pending().await
}

async fn sleep_until_or_never(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

fn publish_acting(acting_tx: &watch::Sender<Acting>, status: &ClusterStatus, acting: Acting) {
    let changed = acting_tx.send_if_modified(|current| {
        let changed = *current != acting;
        *current = acting;
        changed
    });
    if !changed {
        return;
    }
    match acting {
        Some(term) => {
            tracing::info!(replica = status.id, term, "confirmed Raft leader: acting on sequencers")
        }
        None => tracing::info!(
            replica = status.id,
            term = status.term,
            leader = %opc_wire::text::or_none(status.leader.as_ref().map(|leader| leader.id)),
            "not (or no longer) the confirmed Raft leader: observing only"
        ),
    }
}

/// The commit index as the leader computes it: the highest index a majority of voters holds.
/// Elsewhere the applied index (a follower applies only what it knows to be committed).
pub fn commit_index(status: &ClusterStatus) -> Option<u64> {
    if !status.is_leader() {
        return status.applied_index;
    }
    let own = status.last_log_index?;
    let mut matched: Vec<u64> = status
        .membership
        .voter_ids()
        .into_iter()
        .map(|id| {
            if id == status.id {
                own
            } else {
                own.saturating_sub(*status.replication_lag.get(&id).unwrap_or(&own))
            }
        })
        .collect();
    matched.sort_unstable_by(|a, b| b.cmp(a));
    // A peer not matched yet counts as 0 above; what is applied here was committed regardless.
    let quorum = matched.get(matched.len() / 2).copied();
    quorum.max(status.applied_index)
}

fn publish_metrics(status: &ClusterStatus, acting: bool) {
    metrics::gauge!(m::RAFT_TERM).set(status.term as f64);
    metrics::gauge!(m::RAFT_LEADER_ID).set(status.leader.as_ref().map_or(-1.0, |leader| leader.id as f64));
    metrics::gauge!(m::RAFT_ACTING).set(if acting { 1.0 } else { 0.0 });
    metrics::gauge!(m::RAFT_IS_VOTER).set(if status.membership.voter_ids().contains(&status.id) {
        1.0
    } else {
        0.0
    });
    if let Some(index) = status.last_log_index {
        metrics::gauge!(m::RAFT_LAST_LOG_INDEX).set(index as f64);
    }
    if let Some(index) = commit_index(status) {
        metrics::gauge!(m::RAFT_COMMIT_INDEX).set(index as f64);
    }
    if let Some(index) = status.applied_index {
        metrics::gauge!(m::RAFT_APPLIED_INDEX).set(index as f64);
    }
    if status.role == Role::Leader {
        // Every member, the leader itself at 0, so a one-replica cluster exports the series too.
        let mut members = status.membership.voter_ids();
        members.extend(status.membership.learners.iter().map(|learner| learner.id));
        for peer in members {
            let lag =
                if peer == status.id { 0 } else { status.replication_lag.get(&peer).copied().unwrap_or(0) };
            metrics::gauge!(m::RAFT_REPLICATION_LAG_ENTRIES, "peer" => peer.to_string()).set(lag as f64);
        }
    }
}
