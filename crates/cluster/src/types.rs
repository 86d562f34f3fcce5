//! The openraft type configuration: what a log entry carries and what a node is.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::fence::{FenceData, Holding};
use opc_wire::conductor::{CommitRefusal, Envelope};

/// The replicated state: one opaque JSON document per chain, keyed by chain name.
pub type ChainStates = BTreeMap<String, serde_json::Value>;

/// The replicated state as a snapshot carries it: the chains' documents and, for chains in
/// conductor mode, their fences with the last committed payloads.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SnapshotData {
    /// Every chain's document.
    pub chains: ChainStates,
    /// The fences of chains in conductor mode.
    #[serde(default)]
    pub fences: BTreeMap<String, FenceData>,
}

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
        /// For a chain in conductor mode: who may commit under this state. Its fence follows it
        /// in the same log entry, so commits and state changes are totally ordered.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        holding: Option<Holding>,
    },
    /// `node` commits `envelope` to the fence of `chain`: admitted (or refused) when applied, on
    /// every replica alike, against the fence as the entries before it left it.
    Commit {
        /// Chain name.
        chain: String,
        /// The caller, a node of the chain.
        node: String,
        /// The payload, byte for byte as op-node sent it.
        envelope: Envelope,
    },
}

/// What applying an entry answers the writer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Applied {
    /// A state replaced, a payload committed, or an entry without an answer.
    Done,
    /// The fence refused a commit (it was not the holder's, or not on the base).
    Refused(CommitRefusal),
}

/// What openraft stores about a member: where to reach it. Carried in membership log entries, so
/// every replica learns the addresses of members added after it was configured.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ReplicaNode {
    /// `host:port` of the member's Raft server.
    pub(crate) raft_addr: String,
    /// The member's client API address, for `NotLeader` redirects.
    pub(crate) api_addr: String,
    /// The member's conductor endpoint, where the others forward op-node's calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) conductor_addr: Option<String>,
}

impl From<&crate::ReplicaConfig> for ReplicaNode {
    fn from(replica: &crate::ReplicaConfig) -> Self {
        Self {
            raft_addr: replica.raft_addr.clone(),
            api_addr: replica.api_addr.clone(),
            conductor_addr: replica.conductor_addr.clone(),
        }
    }
}

openraft::declare_raft_types!(
    /// Type configuration of the coordinator's Raft group.
    pub(crate) TypeConfig:
        D = Command,
        R = Applied,
        NodeId = u64,
        Node = ReplicaNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = SnapshotData,
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
