//! [`KEYS`]: every configuration key with its type, default, range and description. The file walk,
//! the overlays, range validation, the printer and the reference are all driven by it, `[cluster]`
//! included, so a key added here is parsed, overridable, validated, printed and documented at once.

use std::fmt;
use std::ops::RangeInclusive;

use opc_cluster::{ClusterConfig, ReplicaConfig};

use super::slot::Slot;
use super::types::{ChainConfig, Config, SequencerConfig};
use super::{ENV_PREFIX, TOML_INT_MAX};

/// The type of a configuration key, as the operator has to write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// Non-negative integer number of milliseconds.
    Milliseconds,
    /// Non-negative integer count (of probes, of log entries).
    Count,
    /// Non-negative integer number of blocks.
    Blocks,
    /// Signed integer.
    Integer,
    /// Non-negative integer identifier (a Raft replica id).
    Id,
    /// Non-negative integer number of bytes.
    Bytes,
    /// `true` or `false`.
    Bool,
    /// Filesystem path.
    Path,
    /// IP address and port, e.g. `127.0.0.1:9762`.
    SocketAddr,
    /// `http://` or `https://` URL.
    HttpUrl,
    /// Host name or IP address and port, e.g. `10.0.0.1:9770`; the host is resolved when dialling.
    HostPort,
    /// IP addresses without ports, e.g. `["10.0.0.5"]`.
    IpList,
}

impl KeyKind {
    /// What the operator should have written, for "expected X, got Y" messages.
    pub fn expected(self) -> &'static str {
        match self {
            KeyKind::Milliseconds => "an integer number of milliseconds",
            KeyKind::Count => "an integer count",
            KeyKind::Blocks => "an integer number of blocks",
            KeyKind::Integer => "an integer",
            KeyKind::Id => "an unsigned integer id",
            KeyKind::Bytes => "an integer number of bytes",
            KeyKind::Bool => "true or false",
            KeyKind::Path => "a path (string)",
            KeyKind::SocketAddr => "an IP socket address such as \"127.0.0.1:9762\"",
            KeyKind::HttpUrl => "an http:// or https:// URL (string)",
            KeyKind::HostPort => "a host:port address such as \"10.0.0.1:9770\" (string)",
            KeyKind::IpList => "an array of IP addresses such as [\"10.0.0.5\"]",
        }
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyKind::Milliseconds => "integer (milliseconds)",
            KeyKind::Count => "integer (count)",
            KeyKind::Blocks => "integer (blocks)",
            KeyKind::Integer => "integer",
            KeyKind::Id => "integer (id)",
            KeyKind::Bytes => "integer (bytes)",
            KeyKind::Bool => "boolean",
            KeyKind::Path => "string (path)",
            KeyKind::SocketAddr => "string (ip:port)",
            KeyKind::HttpUrl => "string (http(s) URL)",
            KeyKind::HostPort => "string (host:port)",
            KeyKind::IpList => "array of strings (IP addresses)",
        })
    }
}

/// One configuration key: what the reference documentation, error messages and override
/// resolution know about it.
#[derive(Debug)]
pub struct KeyDoc {
    /// Dotted key path; `<chain>` and `<node>` stand for the names the operator chooses, `[<i>]`
    /// for the position of a `[[cluster.replicas]]` table (0 for the first).
    pub path: &'static str,
    /// One line: what the key controls and when to change it.
    pub description: &'static str,
    /// The key has no default: its table is incomplete without it.
    required: bool,
    pub(super) binding: Binding,
}

impl KeyDoc {
    /// The type the value must have.
    pub fn kind(&self) -> KeyKind {
        match &self.binding {
            Binding::Global(slot) => slot.kind(),
            Binding::Chain(slot) => slot.kind(),
            Binding::Sequencer(slot) => slot.kind(),
            Binding::Cluster(slot) => slot.kind(),
            Binding::Replica(slot) => slot.kind(),
        }
    }

    /// The default as a TOML literal; `None` when the key is required or unset by default.
    pub fn default_value(&self) -> Option<String> {
        if self.required {
            return None;
        }
        match &self.binding {
            Binding::Global(slot) => slot.render(&Config::default()),
            Binding::Chain(slot) => slot.render(&ChainConfig::default()),
            Binding::Sequencer(slot) => slot.render(&SequencerConfig::unfilled()),
            Binding::Cluster(slot) => slot.render(&unfilled_cluster()),
            Binding::Replica(slot) => slot.render(&unfilled_replica()),
        }
    }

    /// Whether the key must be given (it has no default).
    pub fn required(&self) -> bool {
        self.required
    }

    /// Accepted values of integer keys with a bound, `None` for other keys.
    pub fn range(&self) -> Option<RangeInclusive<u64>> {
        let (min, max) = match &self.binding {
            Binding::Global(slot) => slot.bounds()?,
            Binding::Chain(slot) => slot.bounds()?,
            Binding::Sequencer(slot) => slot.bounds()?,
            Binding::Cluster(slot) => slot.bounds()?,
            Binding::Replica(slot) => slot.bounds()?,
        };
        Some(min..=max)
    }

    /// The environment variable that overrides this key, with `<CHAIN>` / `<NODE>` / `<I>`
    /// placeholders.
    pub fn env_var(&self) -> String {
        env_var_name(self.path)
    }

    /// The last segment of the path: the key as written inside its table.
    pub(super) fn leaf(&self) -> &'static str {
        self.path.rsplit('.').next().unwrap_or(self.path)
    }
}

/// The environment variable that overrides `key_path`, e.g. `health.interval_ms` →
/// `OP_COORDINATOR_HEALTH__INTERVAL_MS`, `chains.main.sequencers.seq-a.priority` →
/// `OP_COORDINATOR_CHAINS__MAIN__SEQUENCERS__SEQ_A__PRIORITY`, `cluster.replicas[0].raft_addr` →
/// `OP_COORDINATOR_CLUSTER__REPLICAS__0__RAFT_ADDR` (shells allow no brackets in names).
pub fn env_var_name(key_path: &str) -> String {
    let dotted = key_path.replace('[', ".").replace(']', "");
    let segments: Vec<String> = dotted.split('.').map(normalize_segment).collect();
    format!("{ENV_PREFIX}{}", segments.join("__"))
}

/// Upper-case with `-` as `_`: the form names take in environment variables, and the form in
/// which two names must not collide.
pub(super) fn normalize_segment(segment: &str) -> String {
    segment.to_ascii_uppercase().replace('-', "_")
}

/// The `[cluster]` a section starts from before its keys are read: defaults for optional keys, 0
/// for the required id (reported as missing, never returned).
pub(super) fn unfilled_cluster() -> ClusterConfig {
    ClusterConfig::new(0, Vec::new())
}

/// A `[[cluster.replicas]]` table before its keys are read; every key is required.
pub(super) fn unfilled_replica() -> ReplicaConfig {
    ReplicaConfig { id: 0, raft_addr: String::new(), api_addr: String::new(), conductor_addr: None }
}

/// Which struct a key lives in.
#[derive(Debug)]
pub(super) enum Binding {
    Global(Slot<Config>),
    Chain(Slot<ChainConfig>),
    Sequencer(Slot<SequencerConfig>),
    Cluster(Slot<ClusterConfig>),
    Replica(Slot<ReplicaConfig>),
}

/// A table whose keys are all leaves of one struct: a chain, a sequencer, `[cluster]`, one
/// replica. The file walk and the overlays fill it through the slots [`KEYS`] binds to it.
pub(super) trait Section: Sized + 'static {
    /// The slot of `binding` when it belongs to this struct.
    fn slot(binding: &'static Binding) -> Option<&'static Slot<Self>>;
}

impl Section for ChainConfig {
    fn slot(binding: &'static Binding) -> Option<&'static Slot<Self>> {
        if let Binding::Chain(slot) = binding { Some(slot) } else { None }
    }
}

impl Section for SequencerConfig {
    fn slot(binding: &'static Binding) -> Option<&'static Slot<Self>> {
        if let Binding::Sequencer(slot) = binding { Some(slot) } else { None }
    }
}

impl Section for ClusterConfig {
    fn slot(binding: &'static Binding) -> Option<&'static Slot<Self>> {
        if let Binding::Cluster(slot) = binding { Some(slot) } else { None }
    }
}

impl Section for ReplicaConfig {
    fn slot(binding: &'static Binding) -> Option<&'static Slot<Self>> {
        if let Binding::Replica(slot) = binding { Some(slot) } else { None }
    }
}

/// The keys of section `T`, with their slots, in [`KEYS`] order.
pub(super) fn section_keys<T: Section>() -> impl Iterator<Item = (&'static KeyDoc, &'static Slot<T>)> {
    KEYS.iter().filter_map(|doc| T::slot(&doc.binding).map(|slot| (doc, slot)))
}

macro_rules! u64_slot {
    ($kind:ident, $min:expr, $max:expr, $($field:ident).+) => {
        Slot::U64 {
            kind: KeyKind::$kind,
            min: $min,
            max: $max,
            get: |c| c.$($field).+,
            set: |c, v| c.$($field).+ = v,
        }
    };
}

/// Every configuration key, in the order of [`Config::to_toml_string`] and the example file.
pub const KEYS: &[KeyDoc] = &[
    KeyDoc {
        path: "data_dir",
        description: "Directory for state that must survive a restart; one running coordinator per directory (it holds `DATA_DIR/LOCK`), and `check-config` checks it is usable.",
        required: false,
        binding: Binding::Global(Slot::Path { get: |c| c.data_dir.as_path(), set: |c, v| c.data_dir = v }),
    },
    KeyDoc {
        path: "rpc.listen",
        description: "Address of the admin JSON-RPC server.",
        required: false,
        binding: Binding::Global(Slot::SocketAddr { get: |c| c.rpc.listen, set: |c, v| c.rpc.listen = v }),
    },
    KeyDoc {
        path: "rpc.jwt_secret_file",
        description: "File with a 32-byte hex HS256 secret; when set, mutating admin calls need a JWT. Empty = unset.",
        required: false,
        binding: Binding::Global(Slot::OptionalPath {
            get: |c| c.rpc.jwt_secret_file.as_deref(),
            set: |c, v| c.rpc.jwt_secret_file = v,
        }),
    },
    KeyDoc {
        path: "rpc.jwt_on_reads",
        description: "Require the JWT on read methods too (needs rpc.jwt_secret_file); off: reads are open.",
        required: false,
        binding: Binding::Global(Slot::Bool {
            get: |c| c.rpc.jwt_on_reads,
            set: |c, v| c.rpc.jwt_on_reads = v,
        }),
    },
    KeyDoc {
        path: "rpc.max_batch_len",
        description: "Calls in one JSON-RPC batch; a longer batch is refused whole.",
        required: false,
        binding: Binding::Global(u64_slot!(Count, 1, 100_000, rpc.max_batch_len)),
    },
    KeyDoc {
        path: "rpc.max_request_bytes",
        description: "Largest admin request body; a larger one is refused with HTTP 413.",
        required: false,
        binding: Binding::Global(u64_slot!(Bytes, 1024, 1 << 30, rpc.max_request_bytes)),
    },
    KeyDoc {
        path: "rpc.max_reply_bytes",
        description: "Largest admin reply; a reply that would be larger is an error naming this key.",
        required: false,
        binding: Binding::Global(u64_slot!(Bytes, 1024, 1 << 30, rpc.max_reply_bytes)),
    },
    KeyDoc {
        path: "rpc.max_connections",
        description: "Admin connections served at once; more get HTTP 503, then wait to be accepted.",
        required: false,
        binding: Binding::Global(u64_slot!(Count, 1, 100_000, rpc.max_connections)),
    },
    KeyDoc {
        path: "metrics.enabled",
        description: "Serve Prometheus metrics.",
        required: false,
        binding: Binding::Global(Slot::Bool {
            get: |c| c.metrics.enabled,
            set: |c, v| c.metrics.enabled = v,
        }),
    },
    KeyDoc {
        path: "metrics.listen",
        description: "Address of the Prometheus /metrics endpoint.",
        required: false,
        binding: Binding::Global(Slot::SocketAddr {
            get: |c| c.metrics.listen,
            set: |c, v| c.metrics.listen = v,
        }),
    },
    KeyDoc {
        path: "health.interval_ms",
        description: "Period between two probes of the same node.",
        required: false,
        binding: Binding::Global(u64_slot!(Milliseconds, 10, 60_000, health.interval_ms)),
    },
    KeyDoc {
        path: "health.follower_interval_ms",
        description: "Period between two probes of a calm follower: a healthy follower of a healthy leader in a chain in conductor mode, where the commit stream, not follower heads, proves the leader alive. Every other node is probed every `health.interval_ms`, and a chain's followers turn fast again the moment its leader, a follower or the phase looks wrong. A replica of a cluster that does not act (decides nothing) probes every node of a conductor-mode chain at this period, and all fast the moment it acts. At least `health.interval_ms`; equal turns calm probing off.",
        required: false,
        binding: Binding::Global(u64_slot!(Milliseconds, 10, 600_000, health.follower_interval_ms)),
    },
    KeyDoc {
        path: "health.probe_timeout_ms",
        description: "Deadline of each probe RPC. While the coordinator has a backlog (its timers late by more than this in two quarter-seconds of the last 2 s), a probe waits up to `health.follower_interval_ms` instead: decisions on timing are held then, and a call cut off closes its connection.",
        required: false,
        binding: Binding::Global(u64_slot!(Milliseconds, 1, TOML_INT_MAX, health.probe_timeout_ms)),
    },
    KeyDoc {
        path: "health.failure_threshold",
        description: "Consecutive failed probes before a node is unhealthy.",
        required: false,
        binding: Binding::Global(u64_slot!(Count, 1, TOML_INT_MAX, health.failure_threshold)),
    },
    KeyDoc {
        path: "health.success_threshold",
        description: "Consecutive good probes before an unhealthy node is healthy again.",
        required: false,
        binding: Binding::Global(u64_slot!(Count, 1, TOML_INT_MAX, health.success_threshold)),
    },
    KeyDoc {
        path: "health.unsafe_stall_ms",
        description: "The leader is stalled when its unsafe head has not advanced for this long. Default: 2 x block time + max(500 ms, block time / 2); at least block time + max(500 ms, block time / 2).",
        required: false,
        binding: Binding::Global(Slot::OptionalU64 {
            kind: KeyKind::Milliseconds,
            min: 1,
            max: TOML_INT_MAX,
            get: |c| c.health.unsafe_stall_ms,
            set: |c, v| c.health.unsafe_stall_ms = v,
        }),
    },
    KeyDoc {
        path: "health.max_execution_lag_blocks",
        description: "op-geth behind its op-node's unsafe head by more than this is execution lag.",
        required: false,
        binding: Binding::Global(u64_slot!(Blocks, 0, TOML_INT_MAX, health.max_execution_lag_blocks)),
    },
    KeyDoc {
        path: "health.max_candidate_lag_blocks",
        description: "A candidate behind the most advanced node by more than this is lagging.",
        required: false,
        binding: Binding::Global(u64_slot!(Blocks, 0, TOML_INT_MAX, health.max_candidate_lag_blocks)),
    },
    KeyDoc {
        path: "failover.rpc_timeout_ms",
        description: "Deadline of each admin_* call.",
        required: false,
        binding: Binding::Global(u64_slot!(Milliseconds, 1, TOML_INT_MAX, failover.rpc_timeout_ms)),
    },
    KeyDoc {
        path: "failover.catch_up_timeout_ms",
        description: "How long a candidate may take to reach the stopped leader's head. Default: max(3 s, 3 x block time); at least one block time.",
        required: false,
        binding: Binding::Global(Slot::OptionalU64 {
            kind: KeyKind::Milliseconds,
            min: 1,
            max: TOML_INT_MAX,
            get: |c| c.failover.catch_up_timeout_ms,
            set: |c, v| c.failover.catch_up_timeout_ms = v,
        }),
    },
    KeyDoc {
        path: "failover.chain_liveness_window_ms",
        description: "Leader unreachable: the chain is alive if a follower's head advanced within this window. Default: block time + max(500 ms, block time / 2); at least block time + max(2 x health.interval_ms + 50 ms, block time / 4).",
        required: false,
        binding: Binding::Global(Slot::OptionalU64 {
            kind: KeyKind::Milliseconds,
            min: 1,
            max: TOML_INT_MAX,
            get: |c| c.failover.chain_liveness_window_ms,
            set: |c, v| c.failover.chain_liveness_window_ms = v,
        }),
    },
    KeyDoc {
        path: "failover.convergence_wait_ms",
        description: "Start-up without an active sequencer: wait this long for heads to converge before electing. Default: max(2 s, 2 x block time).",
        required: false,
        binding: Binding::Global(Slot::OptionalU64 {
            kind: KeyKind::Milliseconds,
            min: 0,
            max: TOML_INT_MAX,
            get: |c| c.failover.convergence_wait_ms,
            set: |c, v| c.failover.convergence_wait_ms = v,
        }),
    },
    KeyDoc {
        path: "failover.start_retry_interval_ms",
        description: "Retry period for transient start errors such as \"no prestate\".",
        required: false,
        binding: Binding::Global(u64_slot!(Milliseconds, 1, TOML_INT_MAX, failover.start_retry_interval_ms)),
    },
    KeyDoc {
        path: "inspection.enabled",
        description: "Periodically ask every node whether it is sequencing.",
        required: false,
        binding: Binding::Global(Slot::Bool {
            get: |c| c.inspection.enabled,
            set: |c, v| c.inspection.enabled = v,
        }),
    },
    KeyDoc {
        path: "inspection.interval_ms",
        description: "Period of the admin_sequencerActive sweep.",
        required: false,
        binding: Binding::Global(u64_slot!(Milliseconds, 10, 600_000, inspection.interval_ms)),
    },
    KeyDoc {
        path: "conductor.listen",
        description: "Address of the conductor endpoint: node N of chain C runs op-node with --conductor.rpc=http://ADDR/C/N. It takes no credentials (op-node sends none): keep it on loopback or a private network.",
        required: false,
        binding: Binding::Global(Slot::SocketAddr {
            get: |c| c.conductor.listen,
            set: |c, v| c.conductor.listen = v,
        }),
    },
    KeyDoc {
        path: "conductor.max_payload_bytes",
        description: "Largest block payload a node may commit; a larger commit is refused (and the node cannot publish that block).",
        required: false,
        binding: Binding::Global(u64_slot!(Bytes, 1024, 1 << 30, conductor.max_payload_bytes)),
    },
    KeyDoc {
        path: "conductor.keep_payloads",
        description: "Committed payloads kept per chain (durably) to bring a new leader to the committed head by replay.",
        required: false,
        binding: Binding::Global(u64_slot!(Count, 1, 100_000, conductor.keep_payloads)),
    },
    KeyDoc {
        path: "conductor.keep_bytes",
        description: "Bytes of committed payloads kept per chain; the newest is kept even when larger.",
        required: false,
        binding: Binding::Global(u64_slot!(Bytes, 1024, 1 << 40, conductor.keep_bytes)),
    },
    KeyDoc {
        path: "conductor.commit_stall_blocks",
        description: "A conductor-mode leader that answers probes but committed no block for this many block times is stalled and replaced.",
        required: false,
        binding: Binding::Global(u64_slot!(Blocks, 1, 1_000, conductor.commit_stall_blocks)),
    },
    KeyDoc {
        path: "conductor.proxy_timeout_ms",
        description: "Deadline of one call the conductor endpoint proxies to a leader (eth_getBlockByNumber, optimism_*, admin_sequencerActive for op-batcher and op-proposer).",
        required: false,
        binding: Binding::Global(u64_slot!(Milliseconds, 1, 600_000, conductor.proxy_timeout_ms)),
    },
    KeyDoc {
        path: "conductor.proxy_max_reply_bytes",
        description: "Largest reply a proxied call may bring back; a larger one is an error naming this key.",
        required: false,
        binding: Binding::Global(u64_slot!(Bytes, 1024, u32::MAX as u64, conductor.proxy_max_reply_bytes)),
    },
    KeyDoc {
        path: "chains.<chain>.conductor",
        description: "Conductor mode: the chain's op-nodes run with --conductor.enabled and commit every block here before publishing it; fail-overs need no liveness window.",
        required: false,
        binding: Binding::Chain(Slot::Bool { get: |c| c.conductor, set: |c, v| c.conductor = v }),
    },
    KeyDoc {
        path: "chains.<chain>.block_time_ms",
        description: "Block time of the chain (optional): checked against the chain's optimism_rollupConfig and head; the windows derive from it.",
        required: false,
        binding: Binding::Chain(Slot::OptionalU64 {
            kind: KeyKind::Milliseconds,
            min: 1,
            max: TOML_INT_MAX,
            get: |c| c.block_time_ms,
            set: |c, v| c.block_time_ms = v,
        }),
    },
    KeyDoc {
        path: "chains.<chain>.sequencers.<node>.op_node_url",
        description: "op-node RPC URL (required).",
        required: true,
        binding: Binding::Sequencer(Slot::Text {
            kind: KeyKind::HttpUrl,
            get: |s| s.op_node_url.as_str(),
            set: |s, v| s.op_node_url = v,
        }),
    },
    KeyDoc {
        path: "chains.<chain>.sequencers.<node>.op_geth_url",
        description: "op-geth RPC URL (required).",
        required: true,
        binding: Binding::Sequencer(Slot::Text {
            kind: KeyKind::HttpUrl,
            get: |s| s.op_geth_url.as_str(),
            set: |s, v| s.op_geth_url = v,
        }),
    },
    KeyDoc {
        path: "chains.<chain>.sequencers.<node>.priority",
        description: "Election preference; higher wins among equally healthy candidates.",
        required: false,
        binding: Binding::Sequencer(Slot::I64 { get: |s| s.priority, set: |s, v| s.priority = v }),
    },
    KeyDoc {
        path: "chains.<chain>.sequencers.<node>.candidate",
        description: "false = watched but never elected.",
        required: false,
        binding: Binding::Sequencer(Slot::Bool { get: |s| s.candidate, set: |s, v| s.candidate = v }),
    },
    KeyDoc {
        path: "chains.<chain>.sequencers.<node>.conductor_allow",
        description: "Conductor mode: source IP addresses that may call this node's path /<chain>/<node> (its op-node's host, and any host your operator tools run on). Empty = any address; a call from another is refused and counted.",
        required: false,
        binding: Binding::Sequencer(Slot::IpList {
            get: |s| s.conductor_allow.as_slice(),
            set: |s, v| s.conductor_allow = v,
        }),
    },
    KeyDoc {
        path: "cluster.id",
        description: "This replica's Raft id. Differs per replica: set it with `--replica-id` or the environment and keep one file for all.",
        required: true,
        binding: Binding::Cluster(u64_slot!(Id, 0, TOML_INT_MAX, id)),
    },
    KeyDoc {
        path: "cluster.bootstrap",
        description: "`true`: a listed replica with an empty store forms the cluster with exactly `replicas` (safe on every replica at once). `false`: join an existing cluster and wait for `coordinator_addReplica`; also for a replica whose data dir was lost.",
        required: false,
        binding: Binding::Cluster(Slot::Bool { get: |c| c.bootstrap, set: |c, v| c.bootstrap = v }),
    },
    KeyDoc {
        path: "cluster.heartbeat_interval_ms",
        description: "How often the leader replicates and heartbeats; also how often it re-confirms its leadership before acting.",
        required: false,
        binding: Binding::Cluster(u64_slot!(Milliseconds, 1, TOML_INT_MAX, heartbeat_interval_ms)),
    },
    KeyDoc {
        path: "cluster.election_timeout_min_ms",
        description: "Lower bound of the randomized election timeout, and how long one leadership confirmation lets the leader act; must exceed `heartbeat_interval_ms`.",
        required: false,
        binding: Binding::Cluster(u64_slot!(Milliseconds, 0, TOML_INT_MAX, election_timeout_min_ms)),
    },
    KeyDoc {
        path: "cluster.election_timeout_max_ms",
        description: "Upper bound of the election timeout and the followers' leader lease: no new leader is elected within it of the last heartbeat.",
        required: false,
        binding: Binding::Cluster(u64_slot!(Milliseconds, 0, TOML_INT_MAX, election_timeout_max_ms)),
    },
    KeyDoc {
        path: "cluster.rpc_timeout_ms",
        description: "Deadline of one replica-to-replica call.",
        required: false,
        binding: Binding::Cluster(u64_slot!(Milliseconds, 1, TOML_INT_MAX, rpc_timeout_ms)),
    },
    KeyDoc {
        path: "cluster.snapshot_rpc_timeout_ms",
        description: "Deadline of sending a whole snapshot to a replica.",
        required: false,
        binding: Binding::Cluster(u64_slot!(Milliseconds, 1, TOML_INT_MAX, snapshot_rpc_timeout_ms)),
    },
    KeyDoc {
        path: "cluster.unreachable_backoff_ms",
        description: "Pause before retrying a replica that refused the connection.",
        required: false,
        binding: Binding::Cluster(u64_slot!(Milliseconds, 1, TOML_INT_MAX, unreachable_backoff_ms)),
    },
    KeyDoc {
        path: "cluster.snapshot_every_logs",
        description: "Snapshot (then purge the log) after this many entries.",
        required: false,
        binding: Binding::Cluster(u64_slot!(Count, 1, TOML_INT_MAX, snapshot_every_logs)),
    },
    KeyDoc {
        path: "cluster.max_in_snapshot_log_to_keep",
        description: "Entries kept after a snapshot, so a replica slightly behind catches up from the log.",
        required: false,
        binding: Binding::Cluster(u64_slot!(Count, 0, TOML_INT_MAX, max_in_snapshot_log_to_keep)),
    },
    KeyDoc {
        path: "cluster.write_timeout_ms",
        description: "How long a state change may wait for its commit before the dependent sequencer call is abandoned.",
        required: false,
        binding: Binding::Cluster(u64_slot!(Milliseconds, 1, TOML_INT_MAX, write_timeout_ms)),
    },
    KeyDoc {
        path: "cluster.membership_timeout_ms",
        description: "Deadline of adding or removing a replica.",
        required: false,
        binding: Binding::Cluster(u64_slot!(Milliseconds, 1, TOML_INT_MAX, membership_timeout_ms)),
    },
    KeyDoc {
        path: "cluster.transfer_timeout_ms",
        description: "Deadline of `coordinator_transferLeadership`; must exceed `election_timeout_max_ms`.",
        required: false,
        binding: Binding::Cluster(u64_slot!(Milliseconds, 0, TOML_INT_MAX, transfer_timeout_ms)),
    },
    KeyDoc {
        path: "cluster.handover_on_shutdown",
        description: "On SIGTERM/Ctrl-C the acting replica hands its leadership to a peer that reaches the sequencers and exits once that peer acts (bounded by `election_timeout_max_ms + election_timeout_min_ms + rpc_timeout_ms`, at most `transfer_timeout_ms`); false: it just leaves and the others elect one after the election timeout.",
        required: false,
        binding: Binding::Cluster(Slot::Bool {
            get: |c| c.handover_on_shutdown,
            set: |c, v| c.handover_on_shutdown = v,
        }),
    },
    KeyDoc {
        path: "cluster.fault_injection",
        description: "Test only: lets `POST <raft_addr>/fault` drop or delay this replica's messages. Never enable in production.",
        required: false,
        binding: Binding::Cluster(Slot::Bool {
            get: |c| c.fault_injection,
            set: |c, v| c.fault_injection = v,
        }),
    },
    KeyDoc {
        path: "cluster.replicas[<i>].id",
        description: "Raft id of this initial voter; stable for the life of its data dir.",
        required: true,
        binding: Binding::Replica(u64_slot!(Id, 0, TOML_INT_MAX, id)),
    },
    KeyDoc {
        path: "cluster.replicas[<i>].raft_addr",
        description: "Address of its Raft server (peer-to-peer traffic only).",
        required: true,
        binding: Binding::Replica(Slot::Text {
            kind: KeyKind::HostPort,
            get: |r| r.raft_addr.as_str(),
            set: |r, v| r.raft_addr = v,
        }),
    },
    KeyDoc {
        path: "cluster.replicas[<i>].api_addr",
        description: "Address of its admin API; a listed replica listens there, and the others forward mutating calls to it when it leads.",
        required: true,
        binding: Binding::Replica(Slot::Text {
            kind: KeyKind::HostPort,
            get: |r| r.api_addr.as_str(),
            set: |r, v| r.api_addr = v,
        }),
    },
    KeyDoc {
        path: "cluster.replicas[<i>].conductor_addr",
        description: "Address of its conductor endpoint (its conductor.listen as the others reach it); required when a chain runs in conductor mode: a replica that does not lead forwards op-node's conductor calls to the one that does.",
        required: false,
        binding: Binding::Replica(Slot::OptionalText {
            kind: KeyKind::HostPort,
            get: |r| r.conductor_addr.as_deref(),
            set: |r, v| r.conductor_addr = v,
        }),
    },
];
