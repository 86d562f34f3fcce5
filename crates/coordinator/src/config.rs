//! Configuration of `op-coordinator run --config FILE`.
//!
//! # Layout
//!
//! - [`Config`] and its sections are plain data with the defaults an operator of a 1 s block-time
//!   chain can run without tuning. Durations are `u64` fields ending in `_ms`; each has a helper that
//!   returns a [`Duration`] so callers never multiply by hand.
//! - [`KEYS`] is the single table of every key: its path, type, default, range and one-line
//!   description. The file walker, the environment and flag overrides, range validation and
//!   [`Config::to_toml_string`] are all driven by it, so a key added there is parsed, overridable,
//!   validated and printed everywhere at once.
//! - [`ConfigErrors`] carries every problem found in one load, each naming the key to change and
//!   where the bad value came from ([`Origin`]).
//!
//! # Sources and precedence
//!
//! | layer                    | example                                      | wins over          |
//! |--------------------------|----------------------------------------------|--------------------|
//! | built-in default         | `health.interval_ms = 100`                   | -                  |
//! | config file              | `[health] interval_ms = 50`                  | default            |
//! | environment variable     | `OP_COORDINATOR_HEALTH__INTERVAL_MS=50`      | file, default      |
//! | command-line override    | `("health.interval_ms", "50")` from a flag   | everything         |
//!
//! # Environment variables
//!
//! `OP_COORDINATOR_` followed by the key path, upper-cased, with `__` between path segments:
//! `OP_COORDINATOR_DATA_DIR`, `OP_COORDINATOR_RPC__LISTEN`,
//! `OP_COORDINATOR_CHAINS__MAINNET__SEQUENCERS__SEQ_A__PRIORITY`. Chain and node segments match the
//! names in the file ignoring case, with `-` written as `_`, because shells do not allow `-` in
//! variable names. The environment can change chains and sequencers the file defines but cannot add
//! new ones: a new sequencer needs two URLs and a name, which belongs in reviewed config. A variable
//! with the prefix that matches no key is an error, because a silently ignored typo in a fail-over
//! timeout surfaces only during the outage it was meant to handle. The binary must therefore remove
//! the variables it consumes itself (for example one naming the config file) before calling the
//! loader. Variables without the prefix are ignored.
//!
//! # Why the file is walked by hand
//!
//! `#[derive(Deserialize)]` stops at the first problem, and an operator fixing a config one
//! error per restart is slow exactly when it hurts. The loader parses the file into a spanned TOML
//! tree and walks it key by key, so every unknown key, type mismatch, missing field and invalid
//! value is reported at once with its line. The serde derives on the types remain for programs that
//! embed the config in other formats; they do not validate.
//!
//! # Validation rules
//!
//! | rule                                                        | why                                              |
//! |-------------------------------------------------------------|--------------------------------------------------|
//! | integer keys within the range in [`KEYS`]                   | a 0 ms timeout or threshold disables the check   |
//! | at least one chain, each with at least one sequencer        | nothing to coordinate otherwise                  |
//! | each chain has a sequencer with `candidate = true`          | otherwise no leader can ever be elected          |
//! | names use `[A-Za-z0-9_-]`, unique ignoring case and `-`/`_` | names are metrics labels, URL and env segments   |
//! | URLs are `http://` or `https://` with a host                | the node clients speak JSON-RPC over HTTP        |
//! | no two sequencers share an `op_node_url` or `op_geth_url`   | two "nodes" that are one process fail together   |
//! | `health.unsafe_stall_ms` > every chain's `block_time_ms`    | otherwise every normal block gap is a "stall"    |
//! | `failover.chain_liveness_window_ms` > every chain's `block_time_ms` | otherwise a live leader cut off from us looks dead |
//! | metrics and admin RPC do not share a fixed listen address   | the second bind would fail at start-up           |
//!
//! Relative paths (`data_dir`, `rpc.jwt_secret_file`) are relative to the working directory of the
//! process, as for the op-node and op-geth flags they sit next to.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use opc_cluster::{ClusterConfig, ReplicaConfig};
use serde::{Deserialize, Serialize};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// The `[cluster]` keys the environment and flags can set: what differs between replicas that
/// share one file.
pub const CLUSTER_OVERRIDABLE: [&str; 2] = ["cluster.id", "cluster.bootstrap"];

/// Prefix of the environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "OP_COORDINATOR_";

/// Largest value a TOML file can hold; used as the upper bound of unbounded `u64` keys so that every
/// accepted configuration can be printed back as TOML.
const TOML_INT_MAX: u64 = i64::MAX as u64;

/// Effective configuration of one coordinator process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Directory for state that must survive a restart of the coordinator, so a restarted process
    /// does not make decisions from an empty memory.
    pub data_dir: PathBuf,
    /// Admin JSON-RPC server through which operators inspect and steer the coordinator.
    pub rpc: RpcConfig,
    /// Prometheus endpoint; fail-overs must be observable after the fact.
    pub metrics: MetricsConfig,
    /// How nodes are probed and when a node counts as unhealthy.
    pub health: HealthConfig,
    /// Deadlines of the steps that move the sequencer role from one node to another.
    pub failover: FailoverConfig,
    /// Periodic check that exactly one node sequences, catching changes made behind our back.
    pub inspection: InspectionConfig,
    /// The chains to coordinate, by name. A default `Config` has none and does not validate.
    pub chains: BTreeMap<String, ChainConfig>,
    /// `[cluster]`: run as one replica of a Raft cluster instead of alone. Absent: one process
    /// with its state in `data_dir` (devnet, small deployments).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./op-coordinator-data"),
            rpc: RpcConfig::default(),
            metrics: MetricsConfig::default(),
            health: HealthConfig::default(),
            failover: FailoverConfig::default(),
            inspection: InspectionConfig::default(),
            chains: BTreeMap::new(),
            cluster: None,
        }
    }
}

/// `[rpc]`: the admin JSON-RPC server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RpcConfig {
    /// Loopback by default: the admin API can stop sequencing, so exposing it is a deliberate act.
    pub listen: SocketAddr,
    /// File with a 32-byte HS256 secret in hex, as for the engine API. When set, mutating calls
    /// need a JWT signed with it; read-only calls stay open so dashboards need no secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt_secret_file: Option<PathBuf>,
}

impl Default for RpcConfig {
    fn default() -> Self {
        Self { listen: SocketAddr::from(([127, 0, 0, 1], 9762)), jwt_secret_file: None }
    }
}

impl RpcConfig {
    /// Reads and decodes the JWT secret, `None` when no file is configured.
    ///
    /// The file holds 64 hex digits, optionally prefixed with `0x` and surrounded by whitespace,
    /// which is the format op-node and op-geth use for their engine API secret.
    pub fn read_jwt_secret(&self) -> Result<Option<[u8; 32]>, ConfigError> {
        let Some(path) = &self.jwt_secret_file else {
            return Ok(None);
        };
        let fail = |reason: String| ConfigError::JwtSecret { path: path.clone(), reason };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let hex = text.trim();
        let hex = hex.strip_prefix("0x").unwrap_or(hex);
        if hex.len() != 64 {
            return Err(fail(format!("expected 64 hex digits (32 bytes), found {} characters", hex.len())));
        }
        let mut secret = [0u8; 32];
        for (byte, pair) in secret.iter_mut().zip(hex.as_bytes().chunks(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| fail("not hex".to_owned()))?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| fail(format!("{pair:?} is not a hex byte")))?;
        }
        Ok(Some(secret))
    }
}

/// `[metrics]`: the Prometheus endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Off switch for deployments that scrape nothing and want no extra port.
    pub enabled: bool,
    /// Where `/metrics` is served.
    pub listen: SocketAddr,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self { enabled: true, listen: SocketAddr::from(([127, 0, 0, 1], 9761)) }
    }
}

/// `[health]`: probing nodes and judging them.
///
/// The defaults detect a dead leader of a 1 s chain in about `interval * failure_threshold` plus
/// one probe timeout (well under a second), yet need `success_threshold` good probes before
/// trusting a node again, so a flapping node is not elected straight back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    /// Period between two probes of the same node.
    pub interval_ms: u64,
    /// Deadline of each probe RPC, so one hung node cannot delay the verdict on the others.
    pub probe_timeout_ms: u64,
    /// Consecutive failed probes before a node is unhealthy; 2 rides out a single lost packet.
    pub failure_threshold: u64,
    /// Consecutive good probes before an unhealthy node is healthy again.
    pub success_threshold: u64,
    /// The leader counts as stalled when its unsafe head has not advanced for this long, even if
    /// it still answers RPCs: a sequencer that answers but produces nothing is still an outage.
    pub unsafe_stall_ms: u64,
    /// An op-geth more than this many blocks behind its op-node's unsafe head is "execution
    /// lagging": the node accepts blocks it cannot yet execute.
    pub max_execution_lag_blocks: u64,
    /// A candidate more than this many blocks behind the most advanced node is "lagging" and is
    /// elected only if no better candidate exists, because catching up delays the hand-over.
    pub max_candidate_lag_blocks: u64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            interval_ms: 100,
            probe_timeout_ms: 250,
            failure_threshold: 2,
            success_threshold: 3,
            unsafe_stall_ms: 2500,
            max_execution_lag_blocks: 8,
            max_candidate_lag_blocks: 16,
        }
    }
}

impl HealthConfig {
    /// Period between two probes of the same node.
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms)
    }

    /// Deadline of each probe RPC.
    pub fn probe_timeout(&self) -> Duration {
        Duration::from_millis(self.probe_timeout_ms)
    }

    /// How long the leader's unsafe head may stand still before the leader counts as stalled.
    pub fn unsafe_stall(&self) -> Duration {
        Duration::from_millis(self.unsafe_stall_ms)
    }
}

/// `[failover]`: deadlines of the hand-over steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FailoverConfig {
    /// Deadline of each `admin_*` call, so a hung node cannot stall a fail-over.
    pub rpc_timeout_ms: u64,
    /// How long to wait for the chosen candidate to reach the hash the old leader stopped at
    /// before giving up on it and trying the next one.
    pub catch_up_timeout_ms: u64,
    /// With the leader unreachable, the chain counts as still alive (leader only partitioned from
    /// us) if a follower's head advanced within this window; then we must not start a second
    /// sequencer.
    pub chain_liveness_window_ms: u64,
    /// At start-up with no active sequencer, wait this long for node heads to converge so the
    /// election does not pick a node that is merely slow to report.
    pub convergence_wait_ms: u64,
    /// Retry period for transient start errors such as "no prestate".
    pub start_retry_interval_ms: u64,
}

impl Default for FailoverConfig {
    fn default() -> Self {
        Self {
            rpc_timeout_ms: 1000,
            catch_up_timeout_ms: 3000,
            chain_liveness_window_ms: 1500,
            convergence_wait_ms: 2000,
            start_retry_interval_ms: 100,
        }
    }
}

impl FailoverConfig {
    /// Deadline of each `admin_*` call.
    pub fn rpc_timeout(&self) -> Duration {
        Duration::from_millis(self.rpc_timeout_ms)
    }

    /// How long a candidate may take to reach the stopped leader's head.
    pub fn catch_up_timeout(&self) -> Duration {
        Duration::from_millis(self.catch_up_timeout_ms)
    }

    /// Window in which an advancing follower proves the chain alive.
    pub fn chain_liveness_window(&self) -> Duration {
        Duration::from_millis(self.chain_liveness_window_ms)
    }

    /// Start-up wait for heads to converge before the first election.
    pub fn convergence_wait(&self) -> Duration {
        Duration::from_millis(self.convergence_wait_ms)
    }

    /// Retry period for transient start errors.
    pub fn start_retry_interval(&self) -> Duration {
        Duration::from_millis(self.start_retry_interval_ms)
    }
}

/// `[inspection]`: the periodic "who is sequencing" sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InspectionConfig {
    /// Off switch for tests that drive nodes by hand.
    pub enabled: bool,
    /// How often `admin_sequencerActive` is asked of every node, to catch a second active
    /// sequencer started outside the coordinator.
    pub interval_ms: u64,
}

impl Default for InspectionConfig {
    fn default() -> Self {
        Self { enabled: true, interval_ms: 500 }
    }
}

impl InspectionConfig {
    /// Period of the sweep.
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms)
    }
}

/// `[chains.NAME]`: one L2 chain and the sequencers that may produce its blocks.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChainConfig {
    /// Block time of the chain, informational; used to reject a `health.unsafe_stall_ms` that
    /// would call every normal gap between blocks a stall.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_time_ms: Option<u64>,
    /// The sequencer nodes of this chain, by name.
    pub sequencers: BTreeMap<String, SequencerConfig>,
}

impl ChainConfig {
    /// Block time, when configured.
    pub fn block_time(&self) -> Option<Duration> {
        self.block_time_ms.map(Duration::from_millis)
    }
}

/// `[chains.NAME.sequencers.NODE]`: one op-node + op-geth pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SequencerConfig {
    /// op-node RPC: health probes and the `admin_*` sequencer controls.
    pub op_node_url: String,
    /// op-geth RPC: execution head, to tell a node that accepts blocks from one that executes them.
    pub op_geth_url: String,
    /// Higher is preferred in elections, so operators can keep the leader on their best hardware.
    #[serde(default)]
    pub priority: i64,
    /// `false` makes the node watched but never elected, e.g. a replica used only for reads.
    #[serde(default = "default_candidate")]
    pub candidate: bool,
}

fn default_candidate() -> bool {
    true
}

impl SequencerConfig {
    /// The state a sequencer table starts in before its keys are read: defaults for optional
    /// keys, empty required URLs (reported as missing, never returned).
    fn unfilled() -> Self {
        Self {
            op_node_url: String::new(),
            op_geth_url: String::new(),
            priority: 0,
            candidate: default_candidate(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Key reference
// ---------------------------------------------------------------------------------------------

/// The type of a configuration key, as the operator has to write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// Non-negative integer number of milliseconds.
    Milliseconds,
    /// Non-negative integer count (of probes).
    Count,
    /// Non-negative integer number of blocks.
    Blocks,
    /// Signed integer.
    Integer,
    /// `true` or `false`.
    Bool,
    /// Filesystem path.
    Path,
    /// IP address and port, e.g. `127.0.0.1:9762`.
    SocketAddr,
    /// `http://` or `https://` URL.
    HttpUrl,
}

impl KeyKind {
    /// What the operator should have written, for "expected X, got Y" messages.
    pub fn expected(self) -> &'static str {
        match self {
            KeyKind::Milliseconds => "an integer number of milliseconds",
            KeyKind::Count => "an integer count",
            KeyKind::Blocks => "an integer number of blocks",
            KeyKind::Integer => "an integer",
            KeyKind::Bool => "true or false",
            KeyKind::Path => "a path (string)",
            KeyKind::SocketAddr => "an IP socket address such as \"127.0.0.1:9762\"",
            KeyKind::HttpUrl => "an http:// or https:// URL (string)",
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
            KeyKind::Bool => "boolean",
            KeyKind::Path => "string (path)",
            KeyKind::SocketAddr => "string (ip:port)",
            KeyKind::HttpUrl => "string (http(s) URL)",
        })
    }
}

/// One configuration key: what the reference documentation, error messages and override
/// resolution know about it.
#[derive(Debug)]
pub struct KeyDoc {
    /// Dotted key path; `<chain>` and `<node>` stand for the names the operator chooses.
    pub path: &'static str,
    /// One line: what the key controls and when to change it.
    pub description: &'static str,
    binding: Binding,
}

impl KeyDoc {
    /// The type the value must have.
    pub fn kind(&self) -> KeyKind {
        match &self.binding {
            Binding::Global(slot) => slot.kind(),
            Binding::Chain(slot) => slot.kind(),
            Binding::Sequencer(slot) => slot.kind(),
        }
    }

    /// The default as a TOML literal; `None` when the key is required or unset by default.
    pub fn default_value(&self) -> Option<String> {
        match &self.binding {
            Binding::Global(slot) => slot.render(&Config::default()),
            Binding::Chain(slot) => slot.render(&ChainConfig::default()),
            Binding::Sequencer(slot) => match slot {
                Slot::HttpUrl { .. } => None,
                _ => slot.render(&SequencerConfig::unfilled()),
            },
        }
    }

    /// Whether the key must be given (it has no default).
    pub fn required(&self) -> bool {
        matches!(self.binding, Binding::Sequencer(Slot::HttpUrl { .. }))
    }

    /// Accepted values of integer keys with a bound, `None` for other keys.
    pub fn range(&self) -> Option<RangeInclusive<u64>> {
        let (min, max) = match &self.binding {
            Binding::Global(slot) => slot.bounds()?,
            Binding::Chain(slot) => slot.bounds()?,
            Binding::Sequencer(slot) => slot.bounds()?,
        };
        Some(min..=max)
    }

    /// The environment variable that overrides this key, with `<CHAIN>` / `<NODE>` placeholders.
    pub fn env_var(&self) -> String {
        env_var_name(self.path)
    }

    fn leaf(&self) -> &'static str {
        self.path.rsplit('.').next().unwrap_or(self.path)
    }
}

/// The environment variable that overrides `key_path`, e.g. `health.interval_ms` →
/// `OP_COORDINATOR_HEALTH__INTERVAL_MS`, `chains.main.sequencers.seq-a.priority` →
/// `OP_COORDINATOR_CHAINS__MAIN__SEQUENCERS__SEQ_A__PRIORITY`.
pub fn env_var_name(key_path: &str) -> String {
    let segments: Vec<String> = key_path.split('.').map(normalize_segment).collect();
    format!("{ENV_PREFIX}{}", segments.join("__"))
}

/// Upper-case with `-` as `_`: the form names take in environment variables, and the form in
/// which two names must not collide.
fn normalize_segment(segment: &str) -> String {
    segment.to_ascii_uppercase().replace('-', "_")
}

/// Which struct a key lives in.
#[derive(Debug)]
enum Binding {
    Global(Slot<Config>),
    Chain(Slot<ChainConfig>),
    Sequencer(Slot<SequencerConfig>),
}

/// Typed access to one field of `T`, with the parsing and range rules of its key.
#[derive(Debug)]
enum Slot<T> {
    U64 {
        kind: KeyKind,
        min: u64,
        max: u64,
        get: fn(&T) -> u64,
        set: fn(&mut T, u64),
    },
    OptionalU64 {
        kind: KeyKind,
        min: u64,
        max: u64,
        get: fn(&T) -> Option<u64>,
        set: fn(&mut T, Option<u64>),
    },
    I64 {
        get: fn(&T) -> i64,
        set: fn(&mut T, i64),
    },
    Bool {
        get: fn(&T) -> bool,
        set: fn(&mut T, bool),
    },
    Path {
        get: fn(&T) -> &Path,
        set: fn(&mut T, PathBuf),
    },
    OptionalPath {
        get: fn(&T) -> Option<&Path>,
        set: fn(&mut T, Option<PathBuf>),
    },
    SocketAddr {
        get: fn(&T) -> SocketAddr,
        set: fn(&mut T, SocketAddr),
    },
    HttpUrl {
        get: fn(&T) -> &str,
        set: fn(&mut T, String),
    },
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
        description: "Directory for state that must survive a restart.",
        binding: Binding::Global(Slot::Path { get: |c| c.data_dir.as_path(), set: |c, v| c.data_dir = v }),
    },
    KeyDoc {
        path: "rpc.listen",
        description: "Address of the admin JSON-RPC server.",
        binding: Binding::Global(Slot::SocketAddr { get: |c| c.rpc.listen, set: |c, v| c.rpc.listen = v }),
    },
    KeyDoc {
        path: "rpc.jwt_secret_file",
        description: "File with a 32-byte hex HS256 secret; when set, mutating admin calls need a JWT. Empty = unset.",
        binding: Binding::Global(Slot::OptionalPath {
            get: |c| c.rpc.jwt_secret_file.as_deref(),
            set: |c, v| c.rpc.jwt_secret_file = v,
        }),
    },
    KeyDoc {
        path: "metrics.enabled",
        description: "Serve Prometheus metrics.",
        binding: Binding::Global(Slot::Bool {
            get: |c| c.metrics.enabled,
            set: |c, v| c.metrics.enabled = v,
        }),
    },
    KeyDoc {
        path: "metrics.listen",
        description: "Address of the Prometheus /metrics endpoint.",
        binding: Binding::Global(Slot::SocketAddr {
            get: |c| c.metrics.listen,
            set: |c, v| c.metrics.listen = v,
        }),
    },
    KeyDoc {
        path: "health.interval_ms",
        description: "Period between two probes of the same node.",
        binding: Binding::Global(u64_slot!(Milliseconds, 10, 60_000, health.interval_ms)),
    },
    KeyDoc {
        path: "health.probe_timeout_ms",
        description: "Deadline of each probe RPC.",
        binding: Binding::Global(u64_slot!(Milliseconds, 1, TOML_INT_MAX, health.probe_timeout_ms)),
    },
    KeyDoc {
        path: "health.failure_threshold",
        description: "Consecutive failed probes before a node is unhealthy.",
        binding: Binding::Global(u64_slot!(Count, 1, TOML_INT_MAX, health.failure_threshold)),
    },
    KeyDoc {
        path: "health.success_threshold",
        description: "Consecutive good probes before an unhealthy node is healthy again.",
        binding: Binding::Global(u64_slot!(Count, 1, TOML_INT_MAX, health.success_threshold)),
    },
    KeyDoc {
        path: "health.unsafe_stall_ms",
        description: "The leader is stalled when its unsafe head has not advanced for this long.",
        binding: Binding::Global(u64_slot!(Milliseconds, 1, TOML_INT_MAX, health.unsafe_stall_ms)),
    },
    KeyDoc {
        path: "health.max_execution_lag_blocks",
        description: "op-geth behind its op-node's unsafe head by more than this is execution lag.",
        binding: Binding::Global(u64_slot!(Blocks, 0, TOML_INT_MAX, health.max_execution_lag_blocks)),
    },
    KeyDoc {
        path: "health.max_candidate_lag_blocks",
        description: "A candidate behind the most advanced node by more than this is lagging.",
        binding: Binding::Global(u64_slot!(Blocks, 0, TOML_INT_MAX, health.max_candidate_lag_blocks)),
    },
    KeyDoc {
        path: "failover.rpc_timeout_ms",
        description: "Deadline of each admin_* call.",
        binding: Binding::Global(u64_slot!(Milliseconds, 1, TOML_INT_MAX, failover.rpc_timeout_ms)),
    },
    KeyDoc {
        path: "failover.catch_up_timeout_ms",
        description: "How long a candidate may take to reach the stopped leader's head.",
        binding: Binding::Global(u64_slot!(Milliseconds, 1, TOML_INT_MAX, failover.catch_up_timeout_ms)),
    },
    KeyDoc {
        path: "failover.chain_liveness_window_ms",
        description: "Leader unreachable: the chain is alive if a follower's head advanced within this window.",
        binding: Binding::Global(u64_slot!(Milliseconds, 1, TOML_INT_MAX, failover.chain_liveness_window_ms)),
    },
    KeyDoc {
        path: "failover.convergence_wait_ms",
        description: "Start-up without an active sequencer: wait this long for heads to converge before electing.",
        binding: Binding::Global(u64_slot!(Milliseconds, 0, TOML_INT_MAX, failover.convergence_wait_ms)),
    },
    KeyDoc {
        path: "failover.start_retry_interval_ms",
        description: "Retry period for transient start errors such as \"no prestate\".",
        binding: Binding::Global(u64_slot!(Milliseconds, 1, TOML_INT_MAX, failover.start_retry_interval_ms)),
    },
    KeyDoc {
        path: "inspection.enabled",
        description: "Periodically ask every node whether it is sequencing.",
        binding: Binding::Global(Slot::Bool {
            get: |c| c.inspection.enabled,
            set: |c, v| c.inspection.enabled = v,
        }),
    },
    KeyDoc {
        path: "inspection.interval_ms",
        description: "Period of the admin_sequencerActive sweep.",
        binding: Binding::Global(u64_slot!(Milliseconds, 10, 600_000, inspection.interval_ms)),
    },
    KeyDoc {
        path: "chains.<chain>.block_time_ms",
        description: "Block time of the chain (optional); health.unsafe_stall_ms must exceed it.",
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
        binding: Binding::Sequencer(Slot::HttpUrl {
            get: |s| s.op_node_url.as_str(),
            set: |s, v| s.op_node_url = v,
        }),
    },
    KeyDoc {
        path: "chains.<chain>.sequencers.<node>.op_geth_url",
        description: "op-geth RPC URL (required).",
        binding: Binding::Sequencer(Slot::HttpUrl {
            get: |s| s.op_geth_url.as_str(),
            set: |s, v| s.op_geth_url = v,
        }),
    },
    KeyDoc {
        path: "chains.<chain>.sequencers.<node>.priority",
        description: "Election preference; higher wins among equally healthy candidates.",
        binding: Binding::Sequencer(Slot::I64 { get: |s| s.priority, set: |s, v| s.priority = v }),
    },
    KeyDoc {
        path: "chains.<chain>.sequencers.<node>.candidate",
        description: "false = watched but never elected.",
        binding: Binding::Sequencer(Slot::Bool { get: |s| s.candidate, set: |s, v| s.candidate = v }),
    },
];

/// Why a value could not be stored in its slot.
enum Problem {
    WrongType { expected: &'static str, got: String },
    Invalid(String),
}

/// A value as it arrives: typed from the TOML file, or text from the environment or a flag.
#[derive(Clone, Copy)]
enum Input<'a> {
    Toml(&'a DeValue<'a>),
    Text(&'a str),
}

impl<'a> Input<'a> {
    /// The value as the operator wrote it, for "got X" in messages.
    fn describe(self) -> String {
        match self {
            Input::Text(s) => format!("{s:?}"),
            Input::Toml(value) => describe_toml(value),
        }
    }

    fn wrong_type(self, kind: KeyKind) -> Problem {
        Problem::WrongType { expected: kind.expected(), got: self.describe() }
    }

    fn integer(self, kind: KeyKind) -> Result<i64, Problem> {
        match self {
            Input::Toml(DeValue::Integer(int)) => i64::from_str_radix(int.as_str(), int.radix())
                .map_err(|_| Problem::Invalid(format!("{int} does not fit in 64 bits"))),
            Input::Text(text) => text.trim().parse().map_err(|_| self.wrong_type(kind)),
            Input::Toml(_) => Err(self.wrong_type(kind)),
        }
    }

    fn unsigned(self, kind: KeyKind) -> Result<u64, Problem> {
        let value = self.integer(kind)?;
        u64::try_from(value).map_err(|_| Problem::Invalid(format!("must not be negative, got {value}")))
    }

    fn boolean(self) -> Result<bool, Problem> {
        match self {
            Input::Toml(DeValue::Boolean(b)) => Ok(*b),
            Input::Text(text) => match text.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                _ => Err(self.wrong_type(KeyKind::Bool)),
            },
            Input::Toml(_) => Err(self.wrong_type(KeyKind::Bool)),
        }
    }

    fn string(self, kind: KeyKind) -> Result<&'a str, Problem> {
        match self {
            Input::Toml(DeValue::String(s)) => Ok(s.as_ref()),
            Input::Text(text) => Ok(text),
            Input::Toml(_) => Err(self.wrong_type(kind)),
        }
    }
}

fn describe_toml(value: &DeValue<'_>) -> String {
    match value {
        DeValue::String(s) => format!("{:?}", s.as_ref()),
        DeValue::Integer(i) => i.to_string(),
        DeValue::Float(f) => f.to_string(),
        DeValue::Boolean(b) => b.to_string(),
        DeValue::Datetime(d) => d.to_string(),
        DeValue::Array(_) => "an array".to_owned(),
        DeValue::Table(_) => "a table".to_owned(),
    }
}

impl<T> Slot<T> {
    fn kind(&self) -> KeyKind {
        match self {
            Slot::U64 { kind, .. } | Slot::OptionalU64 { kind, .. } => *kind,
            Slot::I64 { .. } => KeyKind::Integer,
            Slot::Bool { .. } => KeyKind::Bool,
            Slot::Path { .. } | Slot::OptionalPath { .. } => KeyKind::Path,
            Slot::SocketAddr { .. } => KeyKind::SocketAddr,
            Slot::HttpUrl { .. } => KeyKind::HttpUrl,
        }
    }

    fn bounds(&self) -> Option<(u64, u64)> {
        match self {
            Slot::U64 { min, max, .. } | Slot::OptionalU64 { min, max, .. } => Some((*min, *max)),
            _ => None,
        }
    }

    /// The current value as a TOML literal, `None` when unset.
    fn render(&self, target: &T) -> Option<String> {
        let string = |s: &str| toml::Value::String(s.to_owned()).to_string();
        Some(match self {
            Slot::U64 { get, .. } => get(target).to_string(),
            Slot::OptionalU64 { get, .. } => get(target)?.to_string(),
            Slot::I64 { get, .. } => get(target).to_string(),
            Slot::Bool { get, .. } => get(target).to_string(),
            Slot::Path { get, .. } => string(&get(target).to_string_lossy()),
            Slot::OptionalPath { get, .. } => string(&get(target)?.to_string_lossy()),
            Slot::SocketAddr { get, .. } => string(&get(target).to_string()),
            Slot::HttpUrl { get, .. } => string(get(target)),
        })
    }

    /// The current value if this is a bounded integer slot, for range validation.
    fn bounded_value(&self, target: &T) -> Option<(u64, u64, u64)> {
        match self {
            Slot::U64 { min, max, get, .. } => Some((get(target), *min, *max)),
            Slot::OptionalU64 { min, max, get, .. } => Some((get(target)?, *min, *max)),
            _ => None,
        }
    }

    /// Parses `input` as this slot's type and stores it. Ranges are checked later by validation,
    /// so values set in code are held to the same rules.
    fn assign(&self, target: &mut T, input: Input<'_>) -> Result<(), Problem> {
        let kind = self.kind();
        match self {
            Slot::U64 { set, .. } => set(target, input.unsigned(kind)?),
            Slot::OptionalU64 { set, .. } => match input {
                Input::Text(text) if text.trim().is_empty() => set(target, None),
                _ => set(target, Some(input.unsigned(kind)?)),
            },
            Slot::I64 { set, .. } => set(target, input.integer(kind)?),
            Slot::Bool { set, .. } => set(target, input.boolean()?),
            Slot::Path { set, .. } => set(target, PathBuf::from(input.string(kind)?)),
            Slot::OptionalPath { set, .. } => {
                let text = input.string(kind)?;
                set(target, (!text.is_empty()).then(|| PathBuf::from(text)));
            }
            Slot::SocketAddr { set, .. } => {
                let text = input.string(kind)?;
                let addr = text.trim().parse().map_err(|_| input.wrong_type(kind))?;
                set(target, addr);
            }
            Slot::HttpUrl { set, .. } => set(target, input.string(kind)?.to_owned()),
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Where a configuration value came from, so an error says what to edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Built-in default.
    Default,
    /// A line of the config file; `path` is `None` when the text was not read from a file.
    File { path: Option<PathBuf>, line: usize },
    /// An `OP_COORDINATOR_*` environment variable.
    Env { var: String },
    /// A command-line override of the dotted key `key`.
    Override { key: String },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::File { path: Some(path), line } => write!(f, "{}:{line}", path.display()),
            Origin::File { path: None, line } => write!(f, "config line {line}"),
            Origin::Env { var } => write!(f, "env {var}"),
            Origin::Override { key } => write!(f, "command-line override {key}"),
        }
    }
}

/// One problem with the configuration. Each names the key (or variable) to change.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid TOML.
    #[error("{}:{line}:{column}: TOML syntax error: {message}", file_label(.file))]
    Syntax { file: Option<PathBuf>, line: usize, column: usize, message: String },
    /// A key that the configuration does not have.
    #[error("{key}: unknown key{} [{origin}]", did_you_mean(.suggestions))]
    UnknownKey { key: String, suggestions: Vec<String>, origin: Origin },
    /// An `OP_COORDINATOR_*` variable that matches no key.
    #[error("{var}: environment variable matches no configuration key{}{}", did_you_mean(.suggestions), .hint)]
    UnknownEnvVar {
        var: String,
        suggestions: Vec<String>,
        /// Extra advice, e.g. that the environment cannot add chains; starts with "; " when set.
        hint: String,
    },
    /// An environment variable that matches several keys (names that differ only by case or
    /// `-`/`_`).
    #[error("{var}: environment variable matches several keys: {}", .keys.join(", "))]
    AmbiguousEnvVar { var: String, keys: Vec<String> },
    /// A command-line override of a key that does not exist.
    #[error("{key}: unknown key{} [command-line override {key}]", did_you_mean(.suggestions))]
    UnknownOverride { key: String, suggestions: Vec<String> },
    /// A value of the wrong type.
    #[error("{key}: expected {expected}, got {got}{}", at(.origin))]
    WrongType { key: String, expected: &'static str, got: String, origin: Option<Origin> },
    /// A required key that was not given; `origin` is the table that lacks it.
    #[error("{key}: missing (required){}", at(.origin))]
    Missing { key: String, origin: Option<Origin> },
    /// A value of the right type that is not acceptable.
    #[error("{key}: {reason}{}", at(.origin))]
    Invalid { key: String, reason: String, origin: Option<Origin> },
    /// No `[chains.NAME]` at all.
    #[error("chains: no chain configured; add [chains.NAME.sequencers.NODE]")]
    NoChains,
    /// A chain without sequencers.
    #[error("chains.{chain}: no sequencer configured; add [chains.{chain}.sequencers.NODE]{}", at(.origin))]
    NoSequencers { chain: String, origin: Option<Origin> },
    /// A chain where no sequencer may be elected.
    #[error("chains.{chain}: no sequencer has candidate = true, so no leader could ever be elected{}", at(.origin))]
    NoCandidate { chain: String, origin: Option<Origin> },
    /// A chain or node name with characters that break metrics labels, URLs or env var names.
    #[error("{key}: invalid name {name:?}: use only letters, digits, '_' and '-' (names appear in metrics labels and URLs){}", at(.origin))]
    InvalidName { key: String, name: String, origin: Option<Origin> },
    /// Two names that are equal ignoring case and `-`/`_`.
    #[error("{key}: name clashes with {other_key}; names must differ ignoring case and '-' vs '_' so environment variables stay unambiguous{}", at(.origin))]
    NameCollision { key: String, other_key: String, origin: Option<Origin> },
    /// Two sequencers pointing at the same node.
    #[error("{key}: {url:?} is already used by {other_key}; every op_node_url and op_geth_url must point at a different process{}", at(.origin))]
    DuplicateUrl { key: String, other_key: String, url: String, origin: Option<Origin> },
    /// A stall threshold that every normal block gap would trip.
    #[error("health.unsafe_stall_ms ({unsafe_stall_ms}) must be greater than chains.{chain}.block_time_ms ({block_time_ms}), or every gap between blocks counts as a stall{}", at_both(.stall_origin, .block_time_origin))]
    StallNotAboveBlockTime {
        unsafe_stall_ms: u64,
        chain: String,
        block_time_ms: u64,
        stall_origin: Option<Origin>,
        block_time_origin: Option<Origin>,
    },
    /// A liveness window that a normal gap between blocks exceeds.
    #[error("failover.chain_liveness_window_ms ({window_ms}) must be greater than chains.{chain}.block_time_ms ({block_time_ms}) (block time + gossip delay + two probe intervals is a good floor), or a leader that is alive but cut off from the coordinator looks dead and a second sequencer is started{}", at_both(.window_origin, .block_time_origin))]
    LivenessWindowNotAboveBlockTime {
        window_ms: u64,
        chain: String,
        block_time_ms: u64,
        window_origin: Option<Origin>,
        block_time_origin: Option<Origin>,
    },
    /// The JWT secret file is unreadable or malformed.
    #[error("rpc.jwt_secret_file: cannot use {}: {reason}", path.display())]
    JwtSecret { path: PathBuf, reason: String },
}

impl ConfigError {
    /// The dotted key (or, for environment errors, the variable) this error asks to change;
    /// `None` for file-level problems.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::ReadFile { .. } | ConfigError::Syntax { .. } => None,
            ConfigError::UnknownEnvVar { var, .. } | ConfigError::AmbiguousEnvVar { var, .. } => Some(var),
            ConfigError::UnknownKey { key, .. }
            | ConfigError::UnknownOverride { key, .. }
            | ConfigError::WrongType { key, .. }
            | ConfigError::Missing { key, .. }
            | ConfigError::Invalid { key, .. }
            | ConfigError::InvalidName { key, .. }
            | ConfigError::NameCollision { key, .. }
            | ConfigError::DuplicateUrl { key, .. } => Some(key),
            ConfigError::NoChains => Some("chains"),
            ConfigError::NoSequencers { .. } | ConfigError::NoCandidate { .. } => None,
            ConfigError::StallNotAboveBlockTime { .. } => Some("health.unsafe_stall_ms"),
            ConfigError::LivenessWindowNotAboveBlockTime { .. } => Some("failover.chain_liveness_window_ms"),
            ConfigError::JwtSecret { .. } => Some("rpc.jwt_secret_file"),
        }
    }
}

fn file_label(file: &Option<PathBuf>) -> String {
    match file {
        Some(path) => path.display().to_string(),
        None => "config".to_owned(),
    }
}

fn at(origin: &Option<Origin>) -> String {
    match origin {
        Some(origin) => format!(" [{origin}]"),
        None => String::new(),
    }
}

fn at_both(first: &Option<Origin>, second: &Option<Origin>) -> String {
    match (first, second) {
        (Some(a), Some(b)) => format!(" [{a}; {b}]"),
        (a, b) => at(&a.clone().or_else(|| b.clone())),
    }
}

fn did_you_mean(suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        String::new()
    } else {
        format!(" (did you mean {}?)", suggestions.join(" or "))
    }
}

/// Every problem found while loading a configuration.
#[derive(Debug, thiserror::Error)]
#[error("{}", render_errors(.0))]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// The individual problems, in the order they were found.
    pub fn errors(&self) -> &[ConfigError] {
        &self.0
    }
}

fn render_errors(errors: &[ConfigError]) -> String {
    let noun = if errors.len() == 1 { "problem" } else { "problems" };
    let mut out = format!("invalid configuration ({} {noun}):", errors.len());
    for error in errors {
        out.push_str("\n  - ");
        out.push_str(&error.to_string());
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

impl Config {
    /// Reads `path`, applies `env` (normally `std::env::vars()`) and `overrides` (dotted key,
    /// value) from command-line flags, and validates the result.
    ///
    /// Besides [`Config::from_toml_str`], this checks that a configured JWT secret file is
    /// readable and well-formed, so a typo in its path fails at start-up rather than at the first
    /// authenticated call.
    pub fn load(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &[(String, String)],
    ) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigErrors(vec![ConfigError::ReadFile { path: path.to_owned(), source }]))?;
        let (config, mut errors) = load_layers(&text, Some(path), env, overrides);
        if !errors.iter().any(|e| e.key() == Some("rpc.jwt_secret_file"))
            && let Err(error) = config.rpc.read_jwt_secret()
        {
            errors.push(error);
        }
        if errors.is_empty() { Ok(config) } else { Err(ConfigErrors(errors)) }
    }

    /// Parses `text`, applies `env` and `overrides` as [`Config::load`] does, and validates.
    /// Performs no I/O.
    pub fn from_toml_str(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &[(String, String)],
    ) -> Result<Config, ConfigErrors> {
        let (config, errors) = load_layers(text, None, env, overrides);
        if errors.is_empty() { Ok(config) } else { Err(ConfigErrors(errors)) }
    }

    /// Checks the rules of the module documentation, for configurations built in code.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut errors = Vec::new();
        Validator { config: self, origins: None, already_reported: &BTreeSet::new(), errors: &mut errors }
            .run();
        if errors.is_empty() { Ok(()) } else { Err(ConfigErrors(errors)) }
    }

    /// The configuration as TOML, every key explicit, in the order of [`KEYS`]. Loading the output
    /// gives back an equal `Config`.
    pub fn to_toml_string(&self) -> String {
        let mut out = String::new();
        let mut section = "";
        for doc in KEYS {
            let Binding::Global(slot) = &doc.binding else {
                continue;
            };
            let this_section = doc.path.rsplit_once('.').map_or("", |(s, _)| s);
            if this_section != section {
                out.push_str(&format!("\n[{this_section}]\n"));
                section = this_section;
            }
            match slot.render(self) {
                Some(value) => out.push_str(&format!("{} = {value}\n", doc.leaf())),
                None => out.push_str(&format!("# {} is not set\n", doc.leaf())),
            }
        }
        for (chain_name, chain) in &self.chains {
            let chain_key = format!("chains.{}", toml_key(chain_name));
            out.push_str(&format!("\n[{chain_key}]\n"));
            for doc in KEYS {
                if let Binding::Chain(slot) = &doc.binding
                    && let Some(value) = slot.render(chain)
                {
                    out.push_str(&format!("{} = {value}\n", doc.leaf()));
                }
            }
            for (node_name, node) in &chain.sequencers {
                out.push_str(&format!("\n[{chain_key}.sequencers.{}]\n", toml_key(node_name)));
                for doc in KEYS {
                    if let Binding::Sequencer(slot) = &doc.binding
                        && let Some(value) = slot.render(node)
                    {
                        out.push_str(&format!("{} = {value}\n", doc.leaf()));
                    }
                }
            }
        }
        if let Some(cluster) = &self.cluster {
            #[derive(Serialize)]
            struct ClusterSection<'a> {
                cluster: &'a ClusterConfig,
            }
            if let Ok(text) = toml::to_string(&ClusterSection { cluster }) {
                out.push('\n');
                out.push_str(&text);
            }
        }
        out.trim_start().to_owned()
    }
}

/// A name as a TOML key: bare when it can be, quoted otherwise (only configs built in code can
/// have such names; they do not validate, but must still print).
fn toml_key(name: &str) -> String {
    if is_valid_name(name) { name.to_owned() } else { toml::Value::String(name.to_owned()).to_string() }
}

fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Runs every layer, collecting all problems; the returned config is meaningful only when the
/// error list is empty.
fn load_layers(
    text: &str,
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
    overrides: &[(String, String)],
) -> (Config, Vec<ConfigError>) {
    let mut loader = Loader {
        text,
        file: file.map(Path::to_path_buf),
        config: Config::default(),
        origins: BTreeMap::new(),
        errors: Vec::new(),
        already_reported: BTreeSet::new(),
    };
    let (root, syntax_errors) = DeTable::parse_recoverable(text);
    if !syntax_errors.is_empty() {
        // The recovered tree is a guess; checking it would report phantom problems. After the
        // first error on a line the parser's recovery mostly reports its own confusion, so only
        // the first error of each line is kept.
        let mut lines_seen = BTreeSet::new();
        let errors = syntax_errors
            .iter()
            .filter_map(|e| {
                let (line, column) = line_column(text, e.span().map_or(0, |s| s.start));
                lines_seen.insert(line).then(|| ConfigError::Syntax {
                    file: loader.file.clone(),
                    line,
                    column,
                    message: e.message().trim().replace('\n', "; "),
                })
            })
            .collect();
        return (loader.config, errors);
    }
    loader.walk_root(root.get_ref());
    // Sorting by line reads like the file; the walk itself visits keys alphabetically.
    loader.errors.sort_by_key(|e| match e {
        ConfigError::UnknownKey { origin: Origin::File { line, .. }, .. }
        | ConfigError::WrongType { origin: Some(Origin::File { line, .. }), .. }
        | ConfigError::Missing { origin: Some(Origin::File { line, .. }), .. }
        | ConfigError::Invalid { origin: Some(Origin::File { line, .. }), .. } => *line,
        _ => usize::MAX,
    });
    loader.apply_env(env);
    loader.apply_overrides(overrides);
    let mut errors = loader.errors;
    Validator {
        config: &loader.config,
        origins: Some(&loader.origins),
        already_reported: &loader.already_reported,
        errors: &mut errors,
    }
    .run();
    (loader.config, errors)
}

/// 1-based line and column of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// A concrete key an override can address.
enum Target {
    Global(&'static Slot<Config>),
    Chain(String, &'static Slot<ChainConfig>),
    Sequencer(String, String, &'static Slot<SequencerConfig>),
}

struct Loader<'t> {
    text: &'t str,
    file: Option<PathBuf>,
    config: Config,
    /// Where the value of each key (and the header of each chain/sequencer table) came from.
    origins: BTreeMap<String, Origin>,
    errors: Vec<ConfigError>,
    /// Keys that already have an error, so validation does not report them twice.
    already_reported: BTreeSet<String>,
}

type DeEntry<'a, 'i> = (&'a Spanned<std::borrow::Cow<'i, str>>, &'a Spanned<DeValue<'i>>);

impl Loader<'_> {
    fn file_origin(&self, span: std::ops::Range<usize>) -> Origin {
        Origin::File { path: self.file.clone(), line: line_column(self.text, span.start).0 }
    }

    fn report(&mut self, key: &str, problem: Problem, origin: Origin) {
        self.already_reported.insert(key.to_owned());
        self.errors.push(match problem {
            Problem::WrongType { expected, got } => {
                ConfigError::WrongType { key: key.to_owned(), expected, got, origin: Some(origin) }
            }
            Problem::Invalid(reason) => {
                ConfigError::Invalid { key: key.to_owned(), reason, origin: Some(origin) }
            }
        });
    }

    fn unknown_key(&mut self, key: String, siblings: Vec<String>, origin: Origin) {
        let mut suggestions = closest(&key, siblings.iter().map(String::as_str));
        if suggestions.is_empty() {
            // Right key, wrong section: `interval_ms` at the top level, say.
            let leaf = key.rsplit('.').next().unwrap_or(&key);
            suggestions = KEYS
                .iter()
                .filter(|doc| matches!(doc.binding, Binding::Global(_)) && doc.leaf() == leaf)
                .map(|doc| doc.path.to_owned())
                .collect();
        }
        self.already_reported.insert(key.clone());
        self.errors.push(ConfigError::UnknownKey { key, suggestions, origin });
    }

    /// Expects `value` to be a table; reports and returns `None` otherwise.
    fn expect_table<'a, 'i>(
        &mut self,
        key: &str,
        value: &'a Spanned<DeValue<'i>>,
    ) -> Option<&'a DeTable<'i>> {
        match value.get_ref() {
            DeValue::Table(table) => Some(table),
            other => {
                let origin = self.file_origin(value.span());
                self.report(
                    key,
                    Problem::WrongType { expected: "a table", got: describe_toml(other) },
                    origin,
                );
                None
            }
        }
    }

    fn walk_root(&mut self, root: &DeTable<'_>) {
        for (key, value) in root.iter() {
            let name = key.get_ref().as_ref();
            if name == "chains" {
                self.walk_chains(value);
            } else if name == "cluster" {
                self.walk_cluster(value.span());
            } else {
                self.walk_global(name.to_owned(), (key, value));
            }
        }
    }

    /// Walks the global (non-chain) part of the tree, driven by the paths in [`KEYS`].
    fn walk_global(&mut self, path: String, (key, value): DeEntry<'_, '_>) {
        let globals = || {
            KEYS.iter().filter_map(|doc| match &doc.binding {
                Binding::Global(slot) => Some((doc.path, slot)),
                _ => None,
            })
        };
        if let Some((_, slot)) = globals().find(|(p, _)| *p == path) {
            let origin = self.file_origin(value.span());
            match slot.assign(&mut self.config, Input::Toml(value.get_ref())) {
                Ok(()) => {
                    self.origins.insert(path, origin);
                }
                Err(problem) => self.report(&path, problem, origin),
            }
            return;
        }
        let prefix = format!("{path}.");
        if globals().any(|(p, _)| p.starts_with(&prefix)) {
            let Some(table) = self.expect_table(&path, value) else {
                return;
            };
            for (child_key, child_value) in table.iter() {
                let child = format!("{prefix}{}", child_key.get_ref());
                self.walk_global(child, (child_key, child_value));
            }
            return;
        }
        // Unknown: suggest among the keys that could have been meant at this level.
        let parent = path.rsplit_once('.').map_or("", |(p, _)| p);
        let mut siblings: BTreeSet<String> = globals()
            .filter_map(|(p, _)| {
                let rest = if parent.is_empty() { p } else { p.strip_prefix(parent)?.strip_prefix('.')? };
                let child = rest.split('.').next()?;
                Some(if parent.is_empty() { child.to_owned() } else { format!("{parent}.{child}") })
            })
            .collect();
        if parent.is_empty() {
            siblings.insert("chains".to_owned());
        }
        let origin = self.file_origin(key.span());
        self.unknown_key(path, siblings.into_iter().collect(), origin);
    }

    /// `[cluster]` is read with its serde derive (its keys are documented in the reference's
    /// cluster section, not in [`KEYS`]): the first problem is reported with its line.
    fn walk_cluster(&mut self, span: std::ops::Range<usize>) {
        #[derive(Deserialize)]
        struct ClusterSection {
            cluster: ClusterConfig,
        }
        match toml::from_str::<ClusterSection>(self.text) {
            Ok(section) => {
                self.config.cluster = Some(section.cluster);
                let origin = self.file_origin(span);
                self.origins.insert("cluster".to_owned(), origin);
            }
            Err(error) => {
                let origin = self.file_origin(error.span().unwrap_or(span));
                let message = error.message().trim().replace('\n', "; ");
                self.report("cluster", Problem::Invalid(message), origin);
            }
        }
    }

    /// `cluster.id` and `cluster.bootstrap` from the environment or a flag: what differs between
    /// replicas started from the same file (a joining replica does not bootstrap).
    fn set_cluster_key(&mut self, key: &str, value: &str, origin: Origin) {
        let Some(cluster) = self.config.cluster.as_mut() else {
            self.report(
                key,
                Problem::Invalid("is set, but the config has no [cluster] section".into()),
                origin,
            );
            return;
        };
        let parsed = if key == "cluster.id" {
            value
                .trim()
                .parse::<u64>()
                .map(|id| cluster.id = id)
                .map_err(|_| "a replica id (unsigned integer)")
        } else {
            match value.trim() {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                _ => Err("a boolean (true or false)"),
            }
            .map(|bootstrap| cluster.bootstrap = bootstrap)
        };
        match parsed {
            Ok(()) => {
                self.origins.insert(key.to_owned(), origin);
            }
            Err(expected) => {
                self.report(key, Problem::WrongType { expected, got: format!("{value:?}") }, origin)
            }
        }
    }

    fn walk_chains(&mut self, value: &Spanned<DeValue<'_>>) {
        let Some(chains) = self.expect_table("chains", value) else {
            return;
        };
        for (chain_key, chain_value) in chains.iter() {
            let chain_name = chain_key.get_ref().to_string();
            let chain_path = format!("chains.{chain_name}");
            let chain_origin = self.file_origin(chain_key.span());
            self.origins.insert(chain_path.clone(), chain_origin);
            let mut chain = ChainConfig::default();
            if let Some(table) = self.expect_table(&chain_path, chain_value) {
                for (key, value) in table.iter() {
                    let leaf = key.get_ref().as_ref();
                    let path = format!("{chain_path}.{leaf}");
                    if leaf == "sequencers" {
                        self.walk_sequencers(&chain_path, value, &mut chain);
                    } else if let Some(slot) = chain_slot(leaf) {
                        let origin = self.file_origin(value.span());
                        match slot.assign(&mut chain, Input::Toml(value.get_ref())) {
                            Ok(()) => {
                                self.origins.insert(path, origin);
                            }
                            Err(problem) => self.report(&path, problem, origin),
                        }
                    } else {
                        let siblings = chain_leaves()
                            .chain(["sequencers"])
                            .map(|l| format!("{chain_path}.{l}"))
                            .collect();
                        let origin = self.file_origin(key.span());
                        self.unknown_key(path, siblings, origin);
                    }
                }
            }
            self.config.chains.insert(chain_name, chain);
        }
    }

    fn walk_sequencers(&mut self, chain_path: &str, value: &Spanned<DeValue<'_>>, chain: &mut ChainConfig) {
        let sequencers_path = format!("{chain_path}.sequencers");
        let Some(nodes) = self.expect_table(&sequencers_path, value) else {
            return;
        };
        for (node_key, node_value) in nodes.iter() {
            let node_name = node_key.get_ref().to_string();
            let node_path = format!("{sequencers_path}.{node_name}");
            let node_origin = self.file_origin(node_key.span());
            self.origins.insert(node_path.clone(), node_origin.clone());
            let mut node = SequencerConfig::unfilled();
            let mut seen = BTreeSet::new();
            if let Some(table) = self.expect_table(&node_path, node_value) {
                for (key, value) in table.iter() {
                    let leaf = key.get_ref().as_ref();
                    let path = format!("{node_path}.{leaf}");
                    if let Some(slot) = sequencer_slot(leaf) {
                        seen.insert(leaf.to_owned());
                        let origin = self.file_origin(value.span());
                        match slot.assign(&mut node, Input::Toml(value.get_ref())) {
                            Ok(()) => {
                                self.origins.insert(path, origin);
                            }
                            Err(problem) => self.report(&path, problem, origin),
                        }
                    } else {
                        let siblings = sequencer_leaves().map(|l| format!("{node_path}.{l}")).collect();
                        let origin = self.file_origin(key.span());
                        self.unknown_key(path, siblings, origin);
                    }
                }
                for doc in KEYS.iter().filter(|d| d.required()) {
                    if !seen.contains(doc.leaf()) {
                        let key = format!("{node_path}.{}", doc.leaf());
                        self.already_reported.insert(key.clone());
                        self.errors.push(ConfigError::Missing { key, origin: Some(node_origin.clone()) });
                    }
                }
            } else {
                // The whole table is wrong; its fields are not worth a second round of errors.
                for doc in KEYS.iter().filter(|d| d.required()) {
                    self.already_reported.insert(format!("{node_path}.{}", doc.leaf()));
                }
            }
            chain.sequencers.insert(node_name, node);
        }
    }

    /// Every key that exists in the configuration as loaded so far, with its concrete path.
    fn concrete_keys(&self) -> Vec<(String, Target)> {
        let mut keys = Vec::new();
        for doc in KEYS {
            match &doc.binding {
                Binding::Global(slot) => keys.push((doc.path.to_owned(), Target::Global(slot))),
                Binding::Chain(slot) => {
                    for name in self.config.chains.keys() {
                        keys.push((
                            format!("chains.{name}.{}", doc.leaf()),
                            Target::Chain(name.clone(), slot),
                        ));
                    }
                }
                Binding::Sequencer(slot) => {
                    for (chain_name, chain) in &self.config.chains {
                        for node_name in chain.sequencers.keys() {
                            keys.push((
                                format!("chains.{chain_name}.sequencers.{node_name}.{}", doc.leaf()),
                                Target::Sequencer(chain_name.clone(), node_name.clone(), slot),
                            ));
                        }
                    }
                }
            }
        }
        keys
    }

    fn assign_target(&mut self, target: &Target, input: Input<'_>) -> Result<(), Problem> {
        match target {
            Target::Global(slot) => slot.assign(&mut self.config, input),
            Target::Chain(chain, slot) => match self.config.chains.get_mut(chain) {
                Some(chain) => slot.assign(chain, input),
                None => Ok(()),
            },
            Target::Sequencer(chain, node, slot) => {
                match self.config.chains.get_mut(chain).and_then(|c| c.sequencers.get_mut(node)) {
                    Some(node) => slot.assign(node, input),
                    None => Ok(()),
                }
            }
        }
    }

    fn apply_one(&mut self, path: String, target: &Target, value: &str, origin: Origin) {
        match self.assign_target(target, Input::Text(value)) {
            Ok(()) => {
                tracing::debug!(key = %path, source = %origin, "configuration value overridden");
                // An error already reported for the file value still stands: the file needs
                // fixing too, or the next start without this override fails.
                self.origins.insert(path, origin);
            }
            Err(problem) => self.report(&path, problem, origin),
        }
    }

    fn apply_env(&mut self, env: impl IntoIterator<Item = (String, String)>) {
        let mut vars: BTreeMap<String, String> =
            env.into_iter().filter(|(name, _)| name.starts_with(ENV_PREFIX)).collect();
        if vars.is_empty() {
            return;
        }
        let mut by_env_name: BTreeMap<String, Vec<(String, Target)>> = BTreeMap::new();
        for (path, target) in self.concrete_keys() {
            by_env_name.entry(env_var_name(&path)).or_default().push((path, target));
        }
        for (var, value) in std::mem::take(&mut vars) {
            let normalized = normalize_segment(&var);
            if let Some(key) = CLUSTER_OVERRIDABLE.iter().find(|key| normalized == env_var_name(key)) {
                self.set_cluster_key(key, &value, Origin::Env { var });
                continue;
            }
            match by_env_name.get_mut(&normalized).map(std::mem::take) {
                Some(mut targets) if targets.len() == 1 => {
                    if let Some((path, target)) = targets.pop() {
                        self.apply_one(path, &target, &value, Origin::Env { var });
                    }
                }
                Some(targets) if !targets.is_empty() => {
                    self.errors.push(ConfigError::AmbiguousEnvVar {
                        var,
                        keys: targets.into_iter().map(|(path, _)| path).collect(),
                    });
                }
                _ => {
                    let suggestions = closest(&normalized, by_env_name.keys().map(String::as_str));
                    // Not a typo of an existing key: most likely a chain or node the file lacks.
                    let hint = if suggestions.is_empty()
                        && normalized.starts_with(&format!("{ENV_PREFIX}CHAINS__"))
                    {
                        "; the environment can only change chains and sequencers the config file defines"
                            .to_owned()
                    } else {
                        String::new()
                    };
                    self.errors.push(ConfigError::UnknownEnvVar { var, suggestions, hint });
                }
            }
        }
    }

    fn apply_overrides(&mut self, overrides: &[(String, String)]) {
        if overrides.is_empty() {
            return;
        }
        let mut keys: BTreeMap<String, Target> = self.concrete_keys().into_iter().collect();
        for (path, value) in overrides {
            let origin = Origin::Override { key: path.clone() };
            if CLUSTER_OVERRIDABLE.contains(&path.as_str()) {
                self.set_cluster_key(path, value, origin);
                continue;
            }
            match keys.remove(path) {
                Some(target) => {
                    self.apply_one(path.clone(), &target, value, origin);
                    keys.insert(path.clone(), target);
                }
                None => {
                    let suggestions = closest(path, keys.keys().map(String::as_str));
                    self.errors.push(ConfigError::UnknownOverride { key: path.clone(), suggestions });
                }
            }
        }
    }
}

fn chain_slot(leaf: &str) -> Option<&'static Slot<ChainConfig>> {
    KEYS.iter().find_map(|doc| match &doc.binding {
        Binding::Chain(slot) if doc.leaf() == leaf => Some(slot),
        _ => None,
    })
}

fn sequencer_slot(leaf: &str) -> Option<&'static Slot<SequencerConfig>> {
    KEYS.iter().find_map(|doc| match &doc.binding {
        Binding::Sequencer(slot) if doc.leaf() == leaf => Some(slot),
        _ => None,
    })
}

fn chain_leaves() -> impl Iterator<Item = &'static str> {
    KEYS.iter().filter(|doc| matches!(doc.binding, Binding::Chain(_))).map(KeyDoc::leaf)
}

fn sequencer_leaves() -> impl Iterator<Item = &'static str> {
    KEYS.iter().filter(|doc| matches!(doc.binding, Binding::Sequencer(_))).map(KeyDoc::leaf)
}

/// The candidates closest to `unknown` by edit distance, if close enough to be a typo.
fn closest<'c>(unknown: &str, candidates: impl Iterator<Item = &'c str>) -> Vec<String> {
    let allowed = (unknown.len() / 3).clamp(1, 3);
    let mut best: Option<(usize, Vec<String>)> = None;
    for candidate in candidates {
        let distance = edit_distance(unknown, candidate);
        if distance == 0 || distance > allowed {
            continue;
        }
        match &mut best {
            Some((d, list)) if *d == distance => list.push(candidate.to_owned()),
            Some((d, _)) if *d < distance => {}
            _ => best = Some((distance, vec![candidate.to_owned()])),
        }
    }
    best.map(|(_, list)| list).unwrap_or_default()
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

struct Validator<'a> {
    config: &'a Config,
    /// `None` for configs built in code, whose values have no origin to report.
    origins: Option<&'a BTreeMap<String, Origin>>,
    already_reported: &'a BTreeSet<String>,
    errors: &'a mut Vec<ConfigError>,
}

impl Validator<'_> {
    fn origin(&self, path: &str) -> Option<Origin> {
        let origins = self.origins?;
        Some(origins.get(path).cloned().unwrap_or(Origin::Default))
    }

    fn invalid(&mut self, key: &str, reason: String) {
        if self.already_reported.contains(key) {
            return;
        }
        let origin = self.origin(key);
        self.errors.push(ConfigError::Invalid { key: key.to_owned(), reason, origin });
    }

    fn check_range(&mut self, key: &str, bounded: Option<(u64, u64, u64)>) {
        let Some((value, min, max)) = bounded else {
            return;
        };
        if (min..=max).contains(&value) {
            return;
        }
        let reason = if max == TOML_INT_MAX {
            format!("must be at least {min}, got {value}")
        } else {
            format!("must be between {min} and {max}, got {value}")
        };
        self.invalid(key, reason);
    }

    fn run(mut self) {
        let config = self.config;
        for doc in KEYS {
            if let Binding::Global(slot) = &doc.binding {
                self.check_range(doc.path, slot.bounded_value(config));
            }
        }
        if config.data_dir.as_os_str().is_empty() {
            self.invalid("data_dir", "must not be empty".to_owned());
        }
        if let Some(cluster) = &config.cluster
            && let Err(errors) = cluster.validate()
        {
            for problem in errors.problems {
                // Each problem starts with the key it is about.
                let (key, reason) = match problem.split_once(' ') {
                    Some((key, reason)) if key.starts_with("cluster") => (key.to_owned(), reason.to_owned()),
                    _ => ("cluster".to_owned(), problem),
                };
                self.invalid(&key, reason);
            }
        }
        if config.metrics.enabled
            && config.metrics.listen == config.rpc.listen
            && config.metrics.listen.port() != 0
        {
            self.invalid(
                "metrics.listen",
                format!("{} is also rpc.listen; the second server could not bind", config.metrics.listen),
            );
        }
        if config.chains.is_empty() {
            self.errors.push(ConfigError::NoChains);
        }
        self.check_name_collisions(config.chains.keys(), "chains");
        // Keyed by normalized URL: the first sequencer that used it.
        let mut seen_urls: BTreeMap<String, String> = BTreeMap::new();
        for (chain_name, chain) in &config.chains {
            self.check_chain(chain_name, chain, &mut seen_urls);
        }
    }

    fn check_chain(
        &mut self,
        chain_name: &str,
        chain: &ChainConfig,
        seen_urls: &mut BTreeMap<String, String>,
    ) {
        let chain_path = format!("chains.{chain_name}");
        if !is_valid_name(chain_name) {
            self.errors.push(ConfigError::InvalidName {
                key: chain_path.clone(),
                name: chain_name.to_owned(),
                origin: self.origin(&chain_path),
            });
        }
        for doc in KEYS {
            if let Binding::Chain(slot) = &doc.binding {
                let key = format!("{chain_path}.{}", doc.leaf());
                self.check_range(&key, slot.bounded_value(chain));
            }
        }
        let block_time_key = format!("{chain_path}.block_time_ms");
        if let Some(block_time_ms) = chain.block_time_ms
            && block_time_ms > 0
            && self.config.health.unsafe_stall_ms <= block_time_ms
            && !self.already_reported.contains("health.unsafe_stall_ms")
            && !self.already_reported.contains(&block_time_key)
        {
            self.errors.push(ConfigError::StallNotAboveBlockTime {
                unsafe_stall_ms: self.config.health.unsafe_stall_ms,
                chain: chain_name.to_owned(),
                block_time_ms,
                stall_origin: self.origin("health.unsafe_stall_ms"),
                block_time_origin: self.origin(&block_time_key),
            });
        }
        if let Some(block_time_ms) = chain.block_time_ms
            && block_time_ms > 0
            && self.config.failover.chain_liveness_window_ms <= block_time_ms
            && !self.already_reported.contains("failover.chain_liveness_window_ms")
            && !self.already_reported.contains(&block_time_key)
        {
            self.errors.push(ConfigError::LivenessWindowNotAboveBlockTime {
                window_ms: self.config.failover.chain_liveness_window_ms,
                chain: chain_name.to_owned(),
                block_time_ms,
                window_origin: self.origin("failover.chain_liveness_window_ms"),
                block_time_origin: self.origin(&block_time_key),
            });
        }
        if chain.sequencers.is_empty() {
            self.errors.push(ConfigError::NoSequencers {
                chain: chain_name.to_owned(),
                origin: self.origin(&chain_path),
            });
        } else if !chain.sequencers.values().any(|s| s.candidate) {
            self.errors.push(ConfigError::NoCandidate {
                chain: chain_name.to_owned(),
                origin: self.origin(&chain_path),
            });
        }
        let sequencers_path = format!("{chain_path}.sequencers");
        self.check_name_collisions(chain.sequencers.keys(), &sequencers_path);
        for (node_name, node) in &chain.sequencers {
            let node_path = format!("{sequencers_path}.{node_name}");
            if !is_valid_name(node_name) {
                self.errors.push(ConfigError::InvalidName {
                    key: node_path.clone(),
                    name: node_name.to_owned(),
                    origin: self.origin(&node_path),
                });
            }
            for (leaf, url) in [("op_node_url", &node.op_node_url), ("op_geth_url", &node.op_geth_url)] {
                let key = format!("{node_path}.{leaf}");
                if self.already_reported.contains(&key) {
                    continue;
                }
                if let Err(reason) = check_http_url(url) {
                    self.invalid(&key, reason);
                    continue;
                }
                // op-node and op-geth URLs share one namespace: an op-node URL reused as some
                // op-geth URL is as wrong as two equal op-node URLs.
                match seen_urls.entry(normalize_url(url)) {
                    std::collections::btree_map::Entry::Occupied(first) => {
                        let origin = self.origin(&key);
                        self.errors.push(ConfigError::DuplicateUrl {
                            key,
                            other_key: first.get().clone(),
                            url: url.clone(),
                            origin,
                        });
                    }
                    std::collections::btree_map::Entry::Vacant(slot) => {
                        slot.insert(key);
                    }
                }
            }
        }
    }

    /// Names equal after normalization would share env variables (and confuse dashboards).
    fn check_name_collisions<'n>(&mut self, names: impl Iterator<Item = &'n String>, parent: &str) {
        let mut seen: BTreeMap<String, &String> = BTreeMap::new();
        for name in names {
            if let Some(first) = seen.insert(normalize_segment(name), name) {
                let key = format!("{parent}.{name}");
                let origin = self.origin(&key);
                self.errors.push(ConfigError::NameCollision {
                    key,
                    other_key: format!("{parent}.{first}"),
                    origin,
                });
            }
        }
    }
}

/// Accepts `http(s)://host[:port][/path]`; the node clients cannot dial anything else.
fn check_http_url(url: &str) -> Result<(), String> {
    let complain = |what: &str| Err(format!("must be an http:// or https:// URL, got {url:?} ({what})"));
    let lower = url.to_ascii_lowercase();
    let Some(rest) = lower.strip_prefix("http://").or_else(|| lower.strip_prefix("https://")) else {
        return complain("unsupported scheme");
    };
    if url.chars().any(char::is_whitespace) {
        return complain("contains whitespace");
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        let Some((host, after)) = bracketed.split_once(']') else {
            return complain("unclosed '[' in IPv6 host");
        };
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return complain("junk after IPv6 host"),
            },
        }
    } else {
        match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return complain("no host");
    }
    if let Some(port) = port
        && port.parse::<u16>().is_err()
    {
        return complain("invalid port");
    }
    Ok(())
}

/// Scheme and host are case-insensitive and a trailing `/` changes nothing, so they must not hide
/// a duplicate.
fn normalize_url(url: &str) -> String {
    let trimmed = url.trim_end_matches('/');
    match trimmed.find("://") {
        Some(scheme_end) => {
            let after_scheme = scheme_end + 3;
            let authority_end =
                trimmed[after_scheme..].find(['/', '?', '#']).map_or(trimmed.len(), |i| after_scheme + i);
            format!("{}{}", trimmed[..authority_end].to_ascii_lowercase(), &trimmed[authority_end..])
        }
        None => trimmed.to_owned(),
    }
}
