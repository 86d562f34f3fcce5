//! op-sim-api: the simulator's control contract (`sim_*`): fault injection, partitions and the
//! ground-truth ledger.
//!
//! These names and shapes are a stable contract so outside tools (the chaos runner, `ctl sim`,
//! operators' own rehearsal scripts) can drive a simulated chain. Times are milliseconds since the
//! simulator started (`t_ms`), from one monotonic clock shared by every node.
//!
//! It is its own crate, beside the simulator (`crates/sim/api`), so that a client such as the
//! `op-coordinator` binary speaks the contract without linking the simulator; `op-sim` implements
//! it ([`SimControlApiServer`] in `op_sim::control`) and re-exports it as `op_sim::api`.
//!
//! # Layout
//! - [`SimNodeInfo`]: one node as `sim_nodes` reports it.
//! - [`FaultKind`], [`FaultTarget`], [`MalformedMode`], [`IsolateMode`], [`FaultParams`]: what
//!   `sim_fault` can do and how. Adding a fault starts here (see `op_sim`'s `# Adding a fault`).
//! - [`LedgerEntry`], [`SeenVia`]: one record of the ground-truth ledger.
//! - [`ChainInvariants`], [`ConflictingBlocks`], [`DoubleSequencing`]: the invariant report.
//! - `SimControlApi`: the JSON-RPC trait ([`SimControlApiServer`], [`SimControlApiClient`]).

use alloy_primitives::B256;
use jsonrpsee::{core::RpcResult, proc_macros::rpc};
use opc_wire::{BlockId, text::count};
use serde::{Deserialize, Serialize};

/// One simulated sequencer node as `sim_nodes` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimNodeInfo {
    /// Chain the node belongs to.
    pub chain: String,
    /// Node name, unique within its chain.
    pub name: String,
    /// op-node JSON-RPC endpoint.
    pub op_node_url: String,
    /// op-geth JSON-RPC endpoint.
    pub op_geth_url: String,
    /// True while the node's sequencer is active (ground truth, not what RPC may say under faults).
    pub active: bool,
    /// op-node process is up.
    pub op_node_up: bool,
    /// op-geth process is up.
    pub op_geth_up: bool,
    /// The node's unsafe head.
    pub unsafe_head: BlockId,
    /// Faults currently applied, by kind.
    pub faults: Vec<FaultKind>,
}

/// What `sim_fault` can do to a node. Each fault is undone by `sim_heal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// The process exits: connections refused. Heal restarts it with its chain kept; op-node comes
    /// up stopped or active per its options. Params: `target`.
    Crash,
    /// The process freezes (like SIGSTOP): connections are accepted and never answered, nothing is
    /// sealed or imported. Heal resumes it. Params: `target`, `seal_on_resume`.
    Hang,
    /// Every reply is delayed. Params: `target`, `latency_ms`.
    Slow,
    /// Replies are broken. Params: `target`, `mode`, `size_bytes`.
    Malformed,
    /// The node's RPC is cut off from clients while its p2p keeps working. Params: `mode`.
    Isolate,
    /// The sequencer stays active and answers RPC but seals nothing.
    Stall,
    /// op-geth stops importing blocks while op-node keeps advancing.
    ExecutionLag,
    /// Starts the sequencer on its current head, bypassing every check (behind the coordinator's
    /// back). Not a lasting fault: nothing to heal.
    StartSequencer,
    /// Stops the sequencer behind the coordinator's back. Not a lasting fault.
    StopSequencer,
    /// The node's calls to its conductor (`conductor_leader`, `conductor_commitUnsafePayload`)
    /// arrive `latency_ms` late: a slow commit path. Each try is still bounded by
    /// `--conductor.rpc-timeout`, so a delay past it fails every commit. Only for a node with a
    /// conductor. Params: `latency_ms`.
    ConductorDelay,
    /// The node's calls to its conductor fail: `refuse` (the connection is refused at once) or
    /// `blackhole` (never answered: each try runs into `--conductor.rpc-timeout`). Its blocks
    /// cannot be committed, so it publishes none, and its leader checks fail. Only for a node with
    /// a conductor. Params: `mode`.
    ConductorDrop,
}

impl FaultKind {
    /// Every kind, for help texts and validation messages.
    pub const ALL: [FaultKind; 11] = [
        Self::Crash,
        Self::Hang,
        Self::Slow,
        Self::Malformed,
        Self::Isolate,
        Self::Stall,
        Self::ExecutionLag,
        Self::StartSequencer,
        Self::StopSequencer,
        Self::ConductorDelay,
        Self::ConductorDrop,
    ];

    /// The snake_case name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Crash => "crash",
            Self::Hang => "hang",
            Self::Slow => "slow",
            Self::Malformed => "malformed",
            Self::Isolate => "isolate",
            Self::Stall => "stall",
            Self::ExecutionLag => "execution_lag",
            Self::StartSequencer => "start_sequencer",
            Self::StopSequencer => "stop_sequencer",
            Self::ConductorDelay => "conductor_delay",
            Self::ConductorDrop => "conductor_drop",
        }
    }
}

impl std::fmt::Display for FaultKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for FaultKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text).ok_or_else(|| {
            let names: Vec<_> = Self::ALL.iter().map(|kind| kind.as_str()).collect();
            format!("unknown fault kind {text:?}; expected one of {}", names.join(", "))
        })
    }
}

/// Which process of a node a fault hits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultTarget {
    /// The consensus client.
    OpNode,
    /// The execution client.
    OpGeth,
    /// Both processes.
    #[default]
    Both,
}

impl FaultTarget {
    /// True when the fault applies to op-node.
    pub fn hits_op_node(self) -> bool {
        matches!(self, Self::OpNode | Self::Both)
    }

    /// True when the fault applies to op-geth.
    pub fn hits_op_geth(self) -> bool {
        matches!(self, Self::OpGeth | Self::Both)
    }
}

/// How a `malformed` fault breaks replies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MalformedMode {
    /// A body that is not JSON.
    #[default]
    InvalidJson,
    /// Valid JSON-RPC whose `result` has the wrong types (strings for numbers, numbers for hashes).
    WrongTypes,
    /// A valid-looking reply padded to `size_bytes` (default 8 MiB).
    HugeBody,
}

/// How an `isolate` fault cuts a node's RPC off from its clients.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IsolateMode {
    /// Connections are refused (a firewall that rejects).
    #[default]
    Refuse,
    /// Connections are accepted and never answered (a firewall that drops).
    Blackhole,
}

/// How a block reached a node other than its producer (ledger entry `seen`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeenVia {
    /// Gossip or an ancestor fetch from a peer.
    P2p,
    /// `admin_postUnsafePayload`: a conductor replaying its committed payloads.
    Replay,
}

/// Parameters of `sim_fault`; which ones apply depends on the kind, the rest must be absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultParams {
    /// `crash`, `hang`, `slow`, `malformed`: which process (default both).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<FaultTarget>,
    /// `slow`: added latency per reply. `conductor_delay`: added latency per conductor call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// `malformed`: how replies break. `isolate`, `conductor_drop`: refuse or blackhole.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// `malformed` with `huge_body`: body size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    /// `hang`: on heal, seal at once on the old head (what a real process may do) instead of
    /// waiting one block time (default false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seal_on_resume: Option<bool>,
}

/// One record of the ground-truth ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum LedgerEntry {
    /// A node sealed a block and inserted it into its own chain (and gossiped it).
    ///
    /// ```json
    /// {"event":"block","chain":"devnet","producer":"seq-0","number":42,"hash":"0x..",
    ///  "parent":"0x..","t_ms":12345,"commit_sent_ms":12340}
    /// ```
    ///
    /// With a conductor the block was committed first: `commit_sent_ms` is when the try the
    /// conductor accepted was sent, and `t_ms` when its answer arrived, which is also when the
    /// node published the block (op-node publishes the moment the commit returns). So the
    /// conductor accepted the block within `[commit_sent_ms, t_ms]`. Without a conductor
    /// `commit_sent_ms` is absent (older ledgers lack it too).
    Block {
        /// Chain name.
        chain: String,
        /// Node that sealed it.
        producer: String,
        /// Block number.
        number: u64,
        /// Block hash.
        hash: B256,
        /// Parent hash.
        parent: B256,
        /// When it was sealed (with a conductor: published, once its commit was accepted).
        t_ms: u64,
        /// With a conductor: when the accepted commit was sent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        commit_sent_ms: Option<u64>,
    },
    /// A node's sequencer became active.
    Activated {
        /// Chain name.
        chain: String,
        /// Node name.
        node: String,
        /// The head it started on.
        head: BlockId,
        /// How: `admin_startSequencer`, `start_sequencer` fault, restart, ...
        cause: String,
        /// When.
        t_ms: u64,
    },
    /// A node's sequencer stopped being active.
    Deactivated {
        /// Chain name.
        chain: String,
        /// Node name.
        node: String,
        /// Its head at that moment.
        head: BlockId,
        /// How: `admin_stopSequencer`, crash, ...
        cause: String,
        /// When.
        t_ms: u64,
    },
    /// A node switched its unsafe head to a block that does not descend from its old head.
    Reorg {
        /// Chain name.
        chain: String,
        /// Node name.
        node: String,
        /// Head before.
        old_head: BlockId,
        /// Head after.
        new_head: BlockId,
        /// Blocks dropped from the old chain.
        depth: u64,
        /// When.
        t_ms: u64,
    },
    /// A fault was applied.
    Fault {
        /// Chain name.
        chain: String,
        /// Node name.
        node: String,
        /// What kind.
        kind: FaultKind,
        /// Its parameters.
        params: FaultParams,
        /// When.
        t_ms: u64,
    },
    /// A node's faults were healed (`kind` absent: all of them).
    Heal {
        /// Chain name.
        chain: String,
        /// Node name.
        node: String,
        /// The kind healed, or all.
        #[serde(skip_serializing_if = "Option::is_none")]
        kind: Option<FaultKind>,
        /// When.
        t_ms: u64,
    },
    /// The p2p network of a chain was partitioned (empty groups: healed).
    Partition {
        /// Chain name.
        chain: String,
        /// Groups of nodes that can still talk to each other.
        groups: Vec<Vec<String>>,
        /// When.
        t_ms: u64,
    },
    /// A node's op-node received `admin_startSequencer` or `admin_stopSequencer`, with who sent it:
    /// the ground truth of which coordinator replica acted in which Raft term.
    ///
    /// ```json
    /// {"event":"admin_call","chain":"devnet","node":"seq-1","method":"admin_startSequencer",
    ///  "replica":2,"term":5,"accepted":true,"t_ms":12345,"answered_ms":12346}
    /// ```
    ///
    /// `t_ms` is when the request reached the node's RPC server, before any injected hang or
    /// latency delays its execution: the order of sending, which is what "who acted when" is
    /// about (a stop queued in a hung process and run when it resumes still counts when it was
    /// sent). The entry is appended once the call was answered or dropped, so ledger order is
    /// completion order: sort by `t_ms` for arrival order. A request refused or held by
    /// `sim_isolateCaller` never reached the node and is not recorded.
    AdminCall {
        /// Chain name.
        chain: String,
        /// Node name.
        node: String,
        /// `admin_startSequencer` or `admin_stopSequencer`.
        method: String,
        /// The `x-opc-replica` header: the coordinator replica that sent it (null: none, or not a
        /// number).
        #[serde(default)]
        replica: Option<u64>,
        /// The `x-opc-term` header: the Raft term the replica acted in (null: none).
        #[serde(default)]
        term: Option<u64>,
        /// True when the node executed the call and answered it without an error.
        accepted: bool,
        /// When the request arrived.
        t_ms: u64,
        /// When it was answered; null when the connection went away first (the process crashed,
        /// or stayed hung until the server stopped waiting).
        #[serde(default)]
        answered_ms: Option<u64>,
    },
    /// A node sealed a block but its conductor did not accept the commit, so the block was dropped:
    /// never gossiped, never inserted (op-node logs `failed to commit unsafe payload to conductor:
    /// <error>` and backs off a second).
    ///
    /// ```json
    /// {"event":"commit_failed","chain":"devnet","node":"seq-0","number":42,"hash":"0x..",
    ///  "parent":"0x..","error":"not the leader: ...","t_ms":12345,"unanswered_sent_ms":12300}
    /// ```
    ///
    /// `unanswered_sent_ms`: when the first try that got no answer at all (a timeout, a connection
    /// closed mid-call) was sent. The conductor may have accepted that try and lost its answer
    /// (e.g. in a restart), so the block may be among its committed payloads and replayed to
    /// another node. Absent when every try was refused, or never reached the conductor.
    CommitFailed {
        /// Chain name.
        chain: String,
        /// The node that sealed it.
        node: String,
        /// Block number.
        number: u64,
        /// Block hash.
        hash: B256,
        /// Parent hash.
        parent: B256,
        /// The conductor's error (or the client's, when it got no answer).
        error: String,
        /// When the commit was given up.
        t_ms: u64,
        /// When a try that got no answer was sent (the first one): the conductor may have
        /// accepted it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unanswered_sent_ms: Option<u64>,
    },
    /// A node's conductor accepted a block's commit, but the node did not publish the block: its
    /// op-node or op-geth went down or hung while the commit was in flight, or its head moved on
    /// meanwhile (a stale build). The block exists in the conductor's committed payloads only,
    /// which may replay it to another node (`seen` with `via` = `replay`). Rare: a published
    /// block's commit is on its `block` entry instead.
    ///
    /// ```json
    /// {"event":"unpublished_commit","chain":"devnet","node":"seq-0","number":42,"hash":"0x..",
    ///  "parent":"0x..","commit_sent_ms":12340,"t_ms":12345}
    /// ```
    UnpublishedCommit {
        /// Chain name.
        chain: String,
        /// The node that sealed it.
        node: String,
        /// Block number.
        number: u64,
        /// Block hash.
        hash: B256,
        /// Parent hash.
        parent: B256,
        /// When the accepted commit was sent.
        commit_sent_ms: u64,
        /// When its answer arrived and the block was dropped.
        t_ms: u64,
    },
    /// The first time a node other than a block's producer took the block in: over p2p (gossip,
    /// ancestor fetch) or by `admin_postUnsafePayload` (the conductor's replay), whether it then
    /// extended its chain, waited for the parent, or kept it beside the head. One entry per
    /// block, not per node: "before anyone else saw it" and "never seen by anyone else" need only
    /// the first sighting, and it keeps the ledger at about two entries per block.
    ///
    /// ```json
    /// {"event":"seen","chain":"devnet","node":"seq-2","producer":"seq-0","number":42,
    ///  "hash":"0x..","via":"p2p","t_ms":12350}
    /// ```
    Seen {
        /// Chain name.
        chain: String,
        /// The node that took it in.
        node: String,
        /// The node that sealed it.
        producer: String,
        /// Block number.
        number: u64,
        /// Block hash.
        hash: B256,
        /// How it arrived.
        via: SeenVia,
        /// When.
        t_ms: u64,
    },
    /// Requests of a coordinator replica were cut off from every node of the chain
    /// (`sim_isolateCaller`), or let through again (`mode` null, `sim_healCaller`).
    ///
    /// ```json
    /// {"event":"caller_isolation","chain":"devnet","replica":1,"mode":"blackhole","t_ms":2000}
    /// ```
    CallerIsolation {
        /// Chain name.
        chain: String,
        /// The replica id its requests carry in `x-opc-replica`.
        replica: u64,
        /// How its requests are cut off; null: healed.
        #[serde(default)]
        mode: Option<IsolateMode>,
        /// When.
        t_ms: u64,
    },
}

impl LedgerEntry {
    /// When the entry happened.
    pub fn t_ms(&self) -> u64 {
        match self {
            Self::Block { t_ms, .. }
            | Self::Activated { t_ms, .. }
            | Self::Deactivated { t_ms, .. }
            | Self::Reorg { t_ms, .. }
            | Self::Fault { t_ms, .. }
            | Self::Heal { t_ms, .. }
            | Self::Partition { t_ms, .. }
            | Self::AdminCall { t_ms, .. }
            | Self::CallerIsolation { t_ms, .. }
            | Self::CommitFailed { t_ms, .. }
            | Self::UnpublishedCommit { t_ms, .. }
            | Self::Seen { t_ms, .. } => *t_ms,
        }
    }

    /// The chain the entry belongs to.
    pub fn chain(&self) -> &str {
        match self {
            Self::Block { chain, .. }
            | Self::Activated { chain, .. }
            | Self::Deactivated { chain, .. }
            | Self::Reorg { chain, .. }
            | Self::Fault { chain, .. }
            | Self::Heal { chain, .. }
            | Self::Partition { chain, .. }
            | Self::AdminCall { chain, .. }
            | Self::CallerIsolation { chain, .. }
            | Self::CommitFailed { chain, .. }
            | Self::UnpublishedCommit { chain, .. }
            | Self::Seen { chain, .. } => chain,
        }
    }
}

/// Two distinct blocks sealed at one height: the unsafe chain was re-orged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictingBlocks {
    /// The height.
    pub number: u64,
    /// Every `(producer, hash)` sealed at that height, in sealing order.
    pub blocks: Vec<(String, B256)>,
}

/// Two nodes sealing in overlapping intervals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoubleSequencing {
    /// First node.
    pub first: String,
    /// Its sealing interval `[from, to]`.
    pub first_span_ms: (u64, u64),
    /// Second node.
    pub second: String,
    /// Its sealing interval `[from, to]`.
    pub second_span_ms: (u64, u64),
}

/// The invariant report of one chain.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainInvariants {
    /// Chain name.
    pub chain: String,
    /// Blocks sealed in total.
    pub blocks_sealed: u64,
    /// Heights at which two distinct blocks were sealed (violations).
    pub unsafe_reorgs: Vec<ConflictingBlocks>,
    /// Overlapping sealing intervals of two nodes (violations).
    pub double_sequencing: Vec<DoubleSequencing>,
    /// Head switches seen by individual nodes (informational: a follower that imported a block
    /// from a branch it later dropped also counts).
    pub node_reorgs: u64,
    /// Longest time between two consecutively sealed blocks.
    pub longest_gap_ms: u64,
    /// Number of the block that ended the longest gap.
    pub longest_gap_ended_at: Option<u64>,
    /// Block slots in which no block was sealed.
    pub missed_slots: u64,
    /// Configured block time, the unit of `missed_slots`.
    pub block_time_ms: u64,
    /// When the last block was sealed.
    #[serde(default)]
    pub last_block_ms: Option<u64>,
}

/// One line for people: `devnet: 120 blocks sealed, 0 unsafe re-orgs, ..., 1 missed slot`.
impl std::fmt::Display for ChainInvariants {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} sealed, {}, {}, longest gap {} ms, {}",
            self.chain,
            count(self.blocks_sealed, "block"),
            count(self.unsafe_reorgs.len() as u64, "unsafe re-org"),
            count(self.double_sequencing.len() as u64, "double-sequencing overlap"),
            self.longest_gap_ms,
            count(self.missed_slots, "missed slot")
        )
    }
}

impl ChainInvariants {
    /// True when neither safety invariant is violated.
    pub fn is_safe(&self) -> bool {
        self.unsafe_reorgs.is_empty() && self.double_sequencing.is_empty()
    }
}

/// The simulator's control API (`sim_*`). Nodes are named `NODE` or `CHAIN/NODE`.
#[rpc(server, client, namespace = "sim")]
pub trait SimControlApi {
    /// Every node with its endpoints, active flag and unsafe head.
    #[method(name = "nodes")]
    async fn nodes(&self) -> RpcResult<Vec<SimNodeInfo>>;

    /// Applies a fault to a node.
    #[method(name = "fault")]
    async fn fault(&self, node: String, kind: FaultKind, params: Option<FaultParams>) -> RpcResult<()>;

    /// Heals one kind of fault on a node, or all of them when `kind` is absent.
    #[method(name = "heal")]
    async fn heal(&self, node: String, kind: Option<FaultKind>) -> RpcResult<()>;

    /// Partitions a chain's p2p network into groups (nodes not listed are isolated); an empty list
    /// heals the partition. With several chains, every node must belong to the same chain.
    #[method(name = "partition")]
    async fn partition(&self, groups: Vec<Vec<String>>) -> RpcResult<()>;

    /// Cuts every request carrying `x-opc-replica: REPLICA` off from every node's op-node and
    /// op-geth, as a network partition between that coordinator replica and the sequencers would:
    /// `refuse` (the default) closes the connection without an answer, `blackhole` holds it
    /// unanswered and never executes it. Requests of other callers are unaffected.
    #[method(name = "isolateCaller")]
    async fn isolate_caller(&self, replica: u64, mode: Option<IsolateMode>) -> RpcResult<()>;

    /// Lets the requests of `replica` through again (absent: of every replica).
    #[method(name = "healCaller")]
    async fn heal_caller(&self, replica: Option<u64>) -> RpcResult<()>;

    /// Ledger entries from index `from` (default 0) on.
    #[method(name = "ledger")]
    async fn ledger(&self, from: Option<u64>) -> RpcResult<Vec<LedgerEntry>>;

    /// The invariant report of every chain.
    #[method(name = "invariants")]
    async fn invariants(&self) -> RpcResult<Vec<ChainInvariants>>;
}

#[cfg(test)]
mod tests {
    use super::ChainInvariants;

    #[test]
    fn the_invariant_line_says_one_missed_slot_and_two_missed_slots() {
        let one = ChainInvariants {
            chain: "devnet".into(),
            blocks_sealed: 1,
            missed_slots: 1,
            ..Default::default()
        };
        assert_eq!(
            one.to_string(),
            "devnet: 1 block sealed, 0 unsafe re-orgs, 0 double-sequencing overlaps, longest gap 0 ms, 1 missed slot"
        );
        let two = ChainInvariants { missed_slots: 2, blocks_sealed: 120, ..one };
        assert!(two.to_string().contains("120 blocks sealed") && two.to_string().ends_with("2 missed slots"));
    }
}
