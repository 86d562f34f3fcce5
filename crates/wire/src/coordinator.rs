//! The coordinator's admin API (`coordinator_*`), shared by the server and `ctl`.
//!
//! Method names follow op-coordinator (`getActiveSequencer`, `setActiveSequencer`,
//! `startElection`, `stopElection`, `electionStopped`, `getStoppedHash`) so existing scripts keep
//! working; every method takes an optional chain name as its last parameter, required only when
//! the coordinator serves several chains.

use crate::{BlockId, EventKind, health::Reason};
use alloy_primitives::B256;
use jsonrpsee::{core::RpcResult, proc_macros::rpc};
use serde::{Deserialize, Serialize};

/// `coordinator_events` answers at most this many events a call; page with `before` / `after`.
pub const MAX_EVENTS_LIMIT: u64 = 1000;
/// `coordinator_events`' `limit` when none is given.
pub const DEFAULT_EVENTS_LIMIT: u64 = 100;

/// One node as the coordinator sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// Node name from the config.
    pub name: String,
    /// The verdict after the consecutive-failure and -success thresholds.
    pub healthy: bool,
    /// Reason of the latest probe; on the wire its code (`ok`, `op_node_unreachable`, `stalled`, ...).
    pub reason: Reason,
    /// Human-readable explanation of the reason, with figures.
    pub detail: String,
    /// op-node's unsafe head as last seen.
    pub unsafe_head: Option<BlockId>,
    /// op-node's safe head as last seen.
    pub safe_head: Option<BlockId>,
    /// op-geth's latest block number as last seen.
    pub execution_head: Option<u64>,
    /// `admin_sequencerActive` as last seen (None: never answered).
    pub active: Option<bool>,
    /// Latency of the last op-node probe in milliseconds.
    pub op_node_latency_ms: Option<u64>,
    /// Latency of the last op-geth probe in milliseconds.
    pub op_geth_latency_ms: Option<u64>,
    /// Election priority (higher is preferred).
    pub priority: i64,
    /// False for watched-only nodes.
    pub candidate: bool,
    /// The node must be stopped as soon as it answers (a deposed leader we could not stop).
    pub fenced: bool,
    /// Milliseconds since the node's unsafe head last advanced.
    pub head_age_ms: Option<u64>,
}

/// One chain as the coordinator sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainStatus {
    /// Chain name from the config.
    pub chain: String,
    /// The node the coordinator holds as leader.
    pub leader: Option<String>,
    /// Fail-over phase (`steady`, `stopping`, `catching_up`, `starting`, `leaderless`, ...).
    pub phase: String,
    /// Incremented at every change of leader.
    pub epoch: u64,
    /// Automation paused (`coordinator_stopElection`).
    pub paused: bool,
    /// The hash the last stop returned (the block the next leader must continue from).
    pub stopped_hash: Option<B256>,
    /// The nodes.
    pub nodes: Vec<NodeStatus>,
    /// The block time the windows follow, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_time_ms: Option<u64>,
    /// Where the block time came from (`configured`, `rollup config`, `measured from the unsafe head`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_time_source: Option<String>,
    /// Why the coordinator watches this chain but does not act on it (no fail-over, no inspection
    /// stop, no start); `None` while it acts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<String>,
    /// Why the chain's state cannot be written, while it cannot: fail-overs and operator commands
    /// wait until it can. Absent when writes succeed, and from coordinators that predate it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persist_error: Option<String>,
    /// Set while the stored state names a leader or fenced node the config does not have: the
    /// coordinator then refuses to act on the chain (it probes and reports only), and this says
    /// which name and the command that resolves it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_mismatch: Option<String>,
    /// Set while the coordinator's own timers run late (it is short of CPU): how late, and that
    /// no leader is deposed on a timeout or a stall meanwhile. Absent when it is on time, and from
    /// coordinators that predate it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timing_unreliable: Option<String>,
    /// Conductor mode: the fence. Absent for a chain without a conductor, and from coordinators
    /// that predate it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conductor: Option<ConductorStatus>,
}

/// The fence of a chain in conductor mode, as `coordinator_status` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConductorStatus {
    /// The node that may commit (and answers `conductor_leader` true); None between leaders.
    pub holder: Option<String>,
    /// The last committed block.
    pub committed_head: Option<crate::BlockId>,
    /// The hash the next block must build on: where a fail-over continues from.
    pub base: Option<B256>,
    /// How long ago the last commit was accepted.
    pub last_commit_ms_ago: Option<u64>,
    /// Commits accepted since the coordinator started.
    pub accepted: u64,
    /// Commits refused since the coordinator started.
    pub refused: u64,
    /// Commits accepted over the last 10 s (through this replica): divided by 10, the commit rate.
    #[serde(default)]
    pub commits_last_10s: u64,
    /// What node N of the chain uses as `--conductor.rpc`, with `<node>` standing for N (as
    /// configured: `conductor.listen`).
    #[serde(default)]
    pub endpoint: String,
}

/// A step of a fail-over, hand-over, inspection or election, with its timing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoordinatorEvent {
    /// Position in its chain's timeline (increasing by one per event), the cursor of
    /// `coordinator_events`' `before` / `after`. Absent from coordinators older than paging.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// Unix milliseconds.
    pub at_unix_ms: u64,
    /// Chain name.
    pub chain: String,
    /// What happened; on the wire its snake_case name (`leader_unhealthy`, `stopped`, ...).
    pub kind: EventKind,
    /// The node concerned.
    pub node: Option<String>,
    /// Human-readable detail.
    pub detail: String,
    /// Duration of the step or of the whole fail-over, where it has one.
    pub duration_ms: Option<u64>,
}

/// One coordinator replica of a Raft cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaInfo {
    /// Raft id.
    pub id: u64,
    /// Raft (peer) address.
    pub raft_addr: String,
    /// Admin API address.
    pub api_addr: String,
    /// Votes (false: a learner still catching up).
    pub voter: bool,
    /// Entries behind the leader's log, as the leader last saw it (only in the leader's answer).
    pub lag_entries: Option<u64>,
}

/// The coordinator cluster as the answering replica sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterInfo {
    /// The answering replica (None: not running as a cluster).
    pub replica: Option<u64>,
    /// The answering replica acts on sequencers (a confirmed leader, or a lone coordinator).
    pub acting: bool,
    /// Raft term.
    pub term: u64,
    /// The replica known as leader.
    pub leader: Option<u64>,
    /// Its admin API address, where mutating calls go.
    pub leader_api_addr: Option<String>,
    /// Every member.
    pub replicas: Vec<ReplicaInfo>,
    /// A membership change is in progress (joint consensus).
    pub membership_changing: bool,
    /// Last entry of the answering replica's log.
    pub last_log_index: Option<u64>,
    /// Highest index known committed.
    pub commit_index: Option<u64>,
    /// Highest index applied on the answering replica.
    pub applied_index: Option<u64>,
}

/// The coordinator's admin API.
#[rpc(server, client, namespace = "coordinator")]
pub trait CoordinatorApi {
    /// The node the coordinator holds as active sequencer, or null.
    #[method(name = "getActiveSequencer")]
    async fn get_active_sequencer(&self, chain: Option<String>) -> RpcResult<Option<String>>;

    /// Hands the sequencer role over to `name` gracefully (stop, wait for it to reach the stopped
    /// hash, start it there). Refuses an unhealthy, lagging or non-candidate target. Returns once
    /// the hand-over is complete.
    #[method(name = "setActiveSequencer")]
    async fn set_active_sequencer(&self, name: String, chain: Option<String>) -> RpcResult<()>;

    /// Resumes automatic fail-over and inspection (persisted).
    #[method(name = "startElection")]
    async fn start_election(&self, chain: Option<String>) -> RpcResult<()>;

    /// Pauses automatic fail-over and inspection (persisted); the coordinator keeps observing.
    #[method(name = "stopElection")]
    async fn stop_election(&self, chain: Option<String>) -> RpcResult<()>;

    /// True while automation is paused.
    #[method(name = "electionStopped")]
    async fn election_stopped(&self, chain: Option<String>) -> RpcResult<bool>;

    /// The hash the last `admin_stopSequencer` returned.
    #[method(name = "getStoppedHash")]
    async fn get_stopped_hash(&self, chain: Option<String>) -> RpcResult<Option<B256>>;

    /// Per-chain and per-node status with verdicts and reasons.
    #[method(name = "status")]
    async fn status(&self, chain: Option<String>) -> RpcResult<Vec<ChainStatus>>;

    /// Events, oldest first, at most `limit` (default 100, at most [`MAX_EVENTS_LIMIT`]): the
    /// latest ones; with `before`, the latest whose `seq` is below it (paging back); with `after`,
    /// the oldest whose `seq` is above it (following the timeline). `before` and `after` are
    /// positions in one chain's timeline, so a coordinator of several chains needs `chain` with
    /// them. Older callers that pass only `chain` and `limit` get what they always got.
    #[method(name = "events")]
    async fn events(
        &self,
        chain: Option<String>,
        limit: Option<u64>,
        before: Option<u64>,
        after: Option<u64>,
    ) -> RpcResult<Vec<CoordinatorEvent>>;

    /// The replicas, the leader and the Raft indexes, from any replica.
    #[method(name = "clusterMembership")]
    async fn cluster_membership(&self) -> RpcResult<ClusterInfo>;

    /// Adds a replica (started with `cluster.bootstrap = false`): a learner until it caught up,
    /// then a voter. Answers once the new membership is committed. `conductor_addr` is its
    /// conductor endpoint (`host:port`), needed when a chain runs in conductor mode.
    #[method(name = "addReplica")]
    async fn add_replica(
        &self,
        id: u64,
        raft_addr: String,
        api_addr: String,
        conductor_addr: Option<String>,
    ) -> RpcResult<ClusterInfo>;

    /// Removes a replica from the membership; answers once the change is committed.
    #[method(name = "removeReplica")]
    async fn remove_replica(&self, id: u64) -> RpcResult<ClusterInfo>;

    /// Moves Raft leadership to `id`; answers once `id` is observed leading.
    #[method(name = "transferLeadership")]
    async fn transfer_leadership(&self, id: u64) -> RpcResult<ClusterInfo>;

    /// Forgets the stored leader, fenced and hand-over names that the config does not have (or
    /// has at another op-node URL), after checking that no sequencer outside the config appears
    /// to produce blocks; the chain is then acted on again (it adopts the active sequencer or
    /// elects one). Returns the names forgotten; an error when nothing is stale.
    #[method(name = "forgetStaleNodes")]
    async fn forget_stale_nodes(&self, chain: Option<String>) -> RpcResult<Vec<String>>;
}
