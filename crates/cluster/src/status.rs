//! [`ClusterStatus`]: what one replica knows about the cluster, derived from openraft's metrics.

use std::collections::BTreeMap;

use openraft::ServerState;

use crate::config::ReplicaConfig;
use crate::error::LeaderInfo;
use crate::types::{RaftMetrics, ReplicaNode, StoredMembership};

/// This replica's part in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Not a voter (yet): a replica waiting to be added, or one that was removed.
    Learner,
    /// A voter following a leader (or waiting for one).
    Follower,
    /// A voter running an election.
    Candidate,
    /// The leader.
    Leader,
    /// Shut down.
    Shutdown,
}

/// The members of the cluster with their addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MembershipView {
    /// Members that vote; a majority of them must acknowledge every commit.
    pub voters: Vec<ReplicaConfig>,
    /// Members that receive the log but do not vote (a replica being added).
    pub learners: Vec<ReplicaConfig>,
    /// True while a membership change is half-way (joint consensus).
    pub changing: bool,
    /// Log index of the membership entry this view comes from.
    pub log_index: Option<u64>,
}

impl MembershipView {
    /// Ids of the voters.
    pub fn voter_ids(&self) -> Vec<u64> {
        self.voters.iter().map(|r| r.id).collect()
    }

    /// The member `id` with its addresses, voter or learner.
    pub fn replica(&self, id: u64) -> Option<&ReplicaConfig> {
        self.voters.iter().chain(&self.learners).find(|r| r.id == id)
    }

    pub(crate) fn from_stored(stored: &StoredMembership) -> Self {
        let membership = stored.membership();
        let replica = |id: u64, node: &ReplicaNode| ReplicaConfig {
            id,
            raft_addr: node.raft_addr.clone(),
            api_addr: node.api_addr.clone(),
            conductor_addr: node.conductor_addr.clone(),
        };
        let voter_ids: Vec<u64> = membership.voter_ids().collect();
        let mut voters = Vec::new();
        let mut learners = Vec::new();
        for (id, node) in membership.nodes() {
            if voter_ids.contains(id) {
                voters.push(replica(*id, node));
            } else {
                learners.push(replica(*id, node));
            }
        }
        Self {
            voters,
            learners,
            changing: membership.get_joint_config().len() > 1,
            log_index: stored.log_id().map(|l| l.index),
        }
    }
}

/// A point-in-time view of this replica and the cluster as it sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterStatus {
    /// This replica's id.
    pub id: u64,
    /// This replica's role. A leader cut off from its quorum keeps `Leader` here (openraft 0.9
    /// does not step down on its own); only `Cluster::ensure_linearizable` tells.
    pub role: Role,
    /// The term of the current vote. openraft 0.9 orders leaders by `(term, node id)`, so two
    /// replicas may briefly both report `Leader` with the same term: the lower id cannot commit
    /// and steps down as soon as it hears from the higher one.
    pub term: u64,
    /// The leader this replica knows of, with its API address.
    pub leader: Option<LeaderInfo>,
    /// Index of the last entry in this replica's log.
    pub last_log_index: Option<u64>,
    /// Index of the last entry applied to this replica's state machine (applied implies committed).
    pub applied_index: Option<u64>,
    /// Last index covered by this replica's snapshot.
    pub snapshot_index: Option<u64>,
    /// Last index purged from this replica's log (compaction).
    pub purged_index: Option<u64>,
    /// The effective membership: the latest membership entry in this replica's log, which
    /// takes effect when appended, before it commits.
    pub membership: MembershipView,
    /// Leader only: entries each other member is behind this leader's log
    /// (`last_log_index - matched index`).
    pub replication_lag: BTreeMap<u64, u64>,
    /// Leader only: milliseconds since a quorum last acknowledged this leader.
    pub millis_since_quorum_ack: Option<u64>,
}

impl ClusterStatus {
    /// True if this replica believes it leads. Use `Cluster::ensure_linearizable` before acting on
    /// it: a partitioned leader believes it until it learns otherwise.
    pub fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }

    /// Pure mapping from openraft's metrics.
    pub(crate) fn from_metrics(m: &RaftMetrics) -> Self {
        let membership = MembershipView::from_stored(&m.membership_config);
        let leader = m
            .current_leader
            .map(|id| LeaderInfo { id, api_addr: membership.replica(id).map(|r| r.api_addr.clone()) });
        let last = m.last_log_index.unwrap_or(0);
        let replication_lag = m
            .replication
            .as_ref()
            .map(|peers| {
                peers
                    .iter()
                    .filter(|(id, _)| **id != m.id)
                    .map(|(id, matched)| {
                        let lag = match matched {
                            Some(matched) => last.saturating_sub(matched.index),
                            // Nothing matched yet: the whole log is missing.
                            None => m.last_log_index.map_or(0, |l| l + 1),
                        };
                        (*id, lag)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let role = match m.state {
            ServerState::Learner => Role::Learner,
            ServerState::Follower => Role::Follower,
            ServerState::Candidate => Role::Candidate,
            ServerState::Leader => Role::Leader,
            ServerState::Shutdown => Role::Shutdown,
        };
        Self {
            id: m.id,
            role,
            term: m.current_term,
            leader,
            last_log_index: m.last_log_index,
            applied_index: m.last_applied.map(|l| l.index),
            snapshot_index: m.snapshot.map(|l| l.index),
            purged_index: m.purged.map(|l| l.index),
            membership,
            replication_lag,
            millis_since_quorum_ack: m.millis_since_quorum_ack,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use openraft::{LogId, Membership};

    use super::*;

    fn node(id: u64) -> ReplicaNode {
        ReplicaNode {
            raft_addr: format!("10.0.0.{id}:7000"),
            api_addr: format!("10.0.0.{id}:8545"),
            conductor_addr: None,
        }
    }

    #[test]
    fn a_leader_reports_members_with_addresses_and_each_peers_lag() {
        let membership = Membership::new(
            vec![BTreeSet::from([1, 2, 3])],
            BTreeMap::from([(1, node(1)), (2, node(2)), (3, node(3)), (4, node(4))]),
        );
        let mut m = RaftMetrics::new_initial(1);
        m.state = ServerState::Leader;
        m.current_term = 3;
        m.current_leader = Some(1);
        m.last_log_index = Some(10);
        m.last_applied = Some(LogId::new(openraft::CommittedLeaderId::new(3, 1), 10));
        m.membership_config = Arc::new(StoredMembership::new(
            Some(LogId::new(openraft::CommittedLeaderId::new(1, 1), 2)),
            membership,
        ));
        m.replication = Some(BTreeMap::from([
            (1, Some(LogId::new(openraft::CommittedLeaderId::new(3, 1), 10))),
            (2, Some(LogId::new(openraft::CommittedLeaderId::new(3, 1), 7))),
            (3, None),
            (4, Some(LogId::new(openraft::CommittedLeaderId::new(3, 1), 10))),
        ]));

        let status = ClusterStatus::from_metrics(&m);
        assert!(status.is_leader());
        assert_eq!(status.leader, Some(LeaderInfo { id: 1, api_addr: Some("10.0.0.1:8545".to_owned()) }));
        assert_eq!(status.membership.voter_ids(), vec![1, 2, 3]);
        assert_eq!(status.membership.learners.iter().map(|r| r.id).collect::<Vec<_>>(), vec![4]);
        assert_eq!(status.membership.log_index, Some(2));
        assert!(!status.membership.changing);
        assert_eq!(status.replication_lag, BTreeMap::from([(2, 3), (3, 11), (4, 0)]));
        assert_eq!(status.applied_index, Some(10));
    }

    #[test]
    fn a_follower_reports_no_lag_and_names_the_leader_it_follows() {
        let membership =
            Membership::new(vec![BTreeSet::from([1, 2])], BTreeMap::from([(1, node(1)), (2, node(2))]));
        let mut m = RaftMetrics::new_initial(2);
        m.state = ServerState::Follower;
        m.current_leader = Some(1);
        m.membership_config = Arc::new(StoredMembership::new(None, membership));

        let status = ClusterStatus::from_metrics(&m);
        assert_eq!(status.role, Role::Follower);
        assert_eq!(status.leader.map(|l| l.id), Some(1));
        assert!(status.replication_lag.is_empty());
    }
}
