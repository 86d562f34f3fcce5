//! The openraft type configuration: what a log entry carries and what a node is.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The replicated state: one opaque JSON document per chain, keyed by chain name.
pub type ChainStates = BTreeMap<String, serde_json::Value>;

/// A state-machine command, the payload of a normal log entry.
///
/// Persisted in the log as JSON: never rename a variant or field; add new variants instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// Replace the state of `chain` with `state`.
    Put {
        /// Chain name, the key in [`ChainStates`].
        chain: String,
        /// The new opaque state.
        state: serde_json::Value,
    },
}

/// What openraft stores about a member: where to reach it. Carried in membership log entries, so
/// every replica learns the addresses of members added after it was configured.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ReplicaNode {
    /// `host:port` of the member's Raft server.
    pub(crate) raft_addr: String,
    /// The member's client API address, for `NotLeader` redirects.
    pub(crate) api_addr: String,
}

openraft::declare_raft_types!(
    /// Type configuration of the coordinator's Raft group.
    pub(crate) TypeConfig:
        D = Command,
        R = (),
        NodeId = u64,
        Node = ReplicaNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = ChainStates,
        AsyncRuntime = openraft::TokioRuntime,
);

pub(crate) type Raft = openraft::Raft<TypeConfig>;
pub(crate) type LogId = openraft::LogId<u64>;
pub(crate) type Vote = openraft::Vote<u64>;
pub(crate) type Entry = openraft::Entry<TypeConfig>;
pub(crate) type StoredMembership = openraft::StoredMembership<u64, ReplicaNode>;
pub(crate) type SnapshotMeta = openraft::SnapshotMeta<u64, ReplicaNode>;
pub(crate) type Snapshot = openraft::Snapshot<TypeConfig>;
pub(crate) type StorageError = openraft::StorageError<u64>;
pub(crate) type RaftMetrics = openraft::RaftMetrics<u64, ReplicaNode>;
