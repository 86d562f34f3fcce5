//! The two error enums: [`ClusterError`] for starting, stopping and administering the cluster,
//! [`WriteError`] for the write path and leadership checks.

use std::path::PathBuf;

use crate::config::ConfigErrors;

/// What a damaged store's error message tells the operator to do.
const CORRUPT_STORE_HINT: &str = "The replica was not started, to avoid starting from a blank state. \
     Stop it, move the file aside, then either restore it from a backup or start the replica with \
     cluster.bootstrap = false and re-add it from the leader with add_replica (it then receives a \
     snapshot)";

/// The current leader as a replica knows it, for redirecting clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderInfo {
    /// Raft node id of the leader.
    pub id: u64,
    /// The leader's client API address, if the membership knows it.
    pub api_addr: Option<String>,
}

/// `replica 2 at 127.0.0.1:8560`, or `replica 2` when its address is not known.
impl std::fmt::Display for LeaderInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.api_addr {
            Some(addr) => write!(f, "replica {} at {addr}", self.id),
            None => write!(f, "replica {}", self.id),
        }
    }
}

/// The leader for an error message: plain words, `none` when there is none.
fn leader_text(leader: &Option<LeaderInfo>) -> String {
    leader.as_ref().map_or_else(|| "none".to_owned(), ToString::to_string)
}

/// `1, 2, 3`, or `none`.
fn ids_text(ids: &[u64]) -> String {
    if ids.is_empty() {
        "none".to_owned()
    } else {
        ids.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
    }
}

/// Failures of [`Cluster`](crate::Cluster) lifecycle and administration calls.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The `[cluster]` config section is invalid; every problem names its key.
    #[error(transparent)]
    Config(#[from] ConfigErrors),

    /// openraft refused the engine config derived from ours (should be caught by `validate`).
    #[error("openraft rejects the cluster timing config: {0}")]
    RaftConfig(String),

    /// The data dir could not be created.
    #[error("cannot create cluster data dir {path}: {source}")]
    DataDir {
        /// The `data_dir` given to `Cluster::start`.
        path: PathBuf,
        /// The file system error.
        source: std::io::Error,
    },

    /// The store file exists but cannot be read back.
    #[error("cluster store {path} is unreadable: {problem}. {CORRUPT_STORE_HINT}", path = path.display())]
    CorruptStore {
        /// The redb file.
        path: PathBuf,
        /// What failed: open, a table, or the record that does not decode.
        problem: String,
    },

    /// The store file could not be opened for a reason other than its content.
    #[error("cannot open cluster store {path}: {source}", path = path.display())]
    StoreIo {
        /// The redb file.
        path: PathBuf,
        /// The file system error.
        source: std::io::Error,
    },

    /// Another `Cluster` (in this or another process) holds the store file open.
    #[error(
        "cluster store {path} is already open by another replica; give every replica its own data dir",
        path = path.display()
    )]
    StoreInUse {
        /// The redb file.
        path: PathBuf,
    },

    /// A background task of the store or server died.
    #[error("cluster {what} task failed: {message}")]
    Task {
        /// Which task.
        what: &'static str,
        /// The join error.
        message: String,
    },

    /// openraft stopped or failed while serving the call.
    #[error("raft {op} failed: {message}")]
    Raft {
        /// The operation, e.g. `start`, `initialize`, `change_membership`.
        op: &'static str,
        /// openraft's error.
        message: String,
    },

    /// The call must be made on the leader.
    #[error("{op} must run on the leader; this replica is not the leader (leader: {})", leader_text(.leader))]
    NotLeader {
        /// The operation.
        op: &'static str,
        /// The leader this replica knows of, if any.
        leader: Option<LeaderInfo>,
    },

    /// The replica id is not a member.
    #[error("{op}: replica {id} is not a voter of the cluster (voters: {})", ids_text(.voters))]
    NotAVoter {
        /// The operation.
        op: &'static str,
        /// The id asked for.
        id: u64,
        /// The current voters.
        voters: Vec<u64>,
    },

    /// The operation did not finish in time.
    #[error("{op} did not finish within {after_ms} ms; last observed: {last_observed}")]
    Timeout {
        /// The operation, with its argument.
        op: String,
        /// The deadline from config.
        after_ms: u64,
        /// The last state seen while waiting, to tell why.
        last_observed: String,
    },

    /// Shutdown could not release everything in time.
    #[error("cluster shutdown incomplete: {problem}")]
    Shutdown {
        /// What is still held.
        problem: String,
    },
}

/// Failures of [`Cluster::write`](crate::Cluster::write) and
/// [`Cluster::ensure_linearizable`](crate::Cluster::ensure_linearizable).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// This replica is not the leader; retry on `leader` if known.
    #[error("this replica is not the leader (leader: {})", leader_text(.leader))]
    NotLeader {
        /// The leader this replica knows of, if any.
        leader: Option<LeaderInfo>,
    },

    /// The leader could not reach a quorum to confirm it still leads.
    #[error("leadership not confirmed by a quorum: {message}")]
    NoQuorum {
        /// openraft's account of which voters answered.
        message: String,
    },

    /// Not committed in time. The entry may still commit later: the outcome is unknown.
    #[error("{op} not confirmed within {after_ms} ms; the outcome is unknown")]
    Timeout {
        /// What timed out, e.g. `write to chain "x"`.
        op: String,
        /// `cluster.write_timeout_ms`.
        after_ms: u64,
    },

    /// Raft stopped (shutdown, or a fatal storage error).
    #[error("raft stopped: {message}")]
    Stopped {
        /// openraft's reason.
        message: String,
    },

    /// Any other refusal from openraft.
    #[error("raft rejected the request: {message}")]
    Rejected {
        /// openraft's error.
        message: String,
    },
}
