//! The configuration as plain data: every section with its defaults.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use opc_cluster::ClusterConfig;
use serde::{Deserialize, Serialize};

use super::ConfigError;

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
    /// `[conductor]`: the endpoint op-node commits blocks to, for chains in conductor mode.
    pub conductor: ConductorConfig,
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
            conductor: ConductorConfig::default(),
            chains: BTreeMap::new(),
            cluster: None,
        }
    }
}

impl Config {
    /// How many sequencers (nodes) the coordinator watches, over every chain.
    pub fn sequencer_count(&self) -> usize {
        self.chains.values().map(|chain| chain.sequencers.len()).sum()
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
    /// Require the JWT on read methods too, where who may watch the coordinator matters (a shared
    /// network); off by default so dashboards and `ctl status` need no secret.
    pub jwt_on_reads: bool,
    /// Calls in one JSON-RPC batch: each is answered in one reply, so an unbounded batch is an
    /// unbounded amount of work and memory for one request.
    pub max_batch_len: u64,
    /// Largest request body; a larger one is refused before it is parsed.
    pub max_request_bytes: u64,
    /// Largest reply: a reply that would be larger is an error naming this key, never a cut-off
    /// body.
    pub max_reply_bytes: u64,
    /// Connections served at once; more are answered `503` at once (up to as many again), then
    /// wait in the listen queue, so a flood of clients cannot exhaust memory or file descriptors.
    pub max_connections: u64,
}

impl Default for RpcConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9762)),
            jwt_secret_file: None,
            jwt_on_reads: false,
            max_batch_len: 100,
            max_request_bytes: 1024 * 1024,
            max_reply_bytes: 10 * 1024 * 1024,
            max_connections: 64,
        }
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
        let secret = crate::jwt::parse_secret(&text).map_err(|e| fail(e.to_string()))?;
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
    /// Period between two probes of a calm follower: a healthy follower of a healthy leader in a
    /// chain in conductor mode (see [`crate::health::pace_of`]). Anything else is probed every
    /// `interval_ms`, and a follower turns fast again at once when its chain looks wrong. A
    /// replica that does not act probes every node of a conductor-mode chain at this period.
    pub follower_interval_ms: u64,
    /// Deadline of each probe RPC, so one hung node cannot delay the verdict on the others.
    pub probe_timeout_ms: u64,
    /// Consecutive failed probes before a node is unhealthy; 2 rides out a single lost packet.
    pub failure_threshold: u64,
    /// Consecutive good probes before an unhealthy node is healthy again.
    pub success_threshold: u64,
    /// The leader counts as stalled when its unsafe head has not advanced for this long, even if
    /// it still answers RPCs: a sequencer that answers but produces nothing is still an outage.
    /// `None`: derived from the chain's block time (see [`super::windows`]).
    pub unsafe_stall_ms: Option<u64>,
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
            follower_interval_ms: 1000,
            probe_timeout_ms: 250,
            failure_threshold: 2,
            success_threshold: 3,
            unsafe_stall_ms: None,
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

    /// Period between two probes of a calm follower.
    pub fn follower_interval(&self) -> Duration {
        Duration::from_millis(self.follower_interval_ms)
    }

    /// Deadline of each probe RPC.
    pub fn probe_timeout(&self) -> Duration {
        Duration::from_millis(self.probe_timeout_ms)
    }
}

/// `[failover]`: deadlines of the hand-over steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FailoverConfig {
    /// Deadline of each `admin_*` call, so a hung node cannot stall a fail-over.
    pub rpc_timeout_ms: u64,
    /// How long to wait for the chosen candidate to reach the hash the old leader stopped at
    /// before giving up on it and trying the next one. `None`: derived from the block time.
    pub catch_up_timeout_ms: Option<u64>,
    /// With the leader unreachable, the chain counts as still alive (leader only partitioned from
    /// us) if a follower's head advanced within this window; then we must not start a second
    /// sequencer. `None`: derived from the block time.
    pub chain_liveness_window_ms: Option<u64>,
    /// At start-up with no active sequencer, wait this long for node heads to converge so the
    /// election does not pick a node that is merely slow to report. `None`: derived from the
    /// block time.
    pub convergence_wait_ms: Option<u64>,
    /// Retry period for transient start errors such as "no prestate".
    pub start_retry_interval_ms: u64,
}

impl Default for FailoverConfig {
    fn default() -> Self {
        Self {
            rpc_timeout_ms: 1000,
            catch_up_timeout_ms: None,
            chain_liveness_window_ms: None,
            convergence_wait_ms: None,
            start_retry_interval_ms: 100,
        }
    }
}

impl FailoverConfig {
    /// Deadline of each `admin_*` call.
    pub fn rpc_timeout(&self) -> Duration {
        Duration::from_millis(self.rpc_timeout_ms)
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

/// `[conductor]`: the endpoint op-node commits every block to (`--conductor.rpc`), used by the
/// chains with `conductor = true` (see `crate::conductor`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConductorConfig {
    /// Loopback by default: op-node's conductor client sends no credentials, and whoever can
    /// reach this endpoint can ask it anything a node could.
    pub listen: SocketAddr,
    /// Largest payload envelope accepted (op-conductor's fork accepts 16 MiB).
    pub max_payload_bytes: u64,
    /// Committed payloads kept per chain, to bring a new leader to the committed head.
    pub keep_payloads: u64,
    /// Bytes of committed payloads kept per chain (the newest is kept even when larger).
    pub keep_bytes: u64,
    /// A leader that answers probes but has committed nothing for this many block times is
    /// stalled.
    pub commit_stall_blocks: u64,
    /// Deadline of one proxied call (op-batcher's and op-proposer's reads of the leader), so a
    /// hung node costs its callers one timeout, not a stuck connection.
    pub proxy_timeout_ms: u64,
    /// Largest reply a proxied call may bring back (a block with its transactions can be
    /// megabytes); a larger one is an error naming this key, never a cut-off body.
    pub proxy_max_reply_bytes: u64,
}

impl Default for ConductorConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8547)),
            max_payload_bytes: 16 * 1024 * 1024,
            keep_payloads: 16,
            keep_bytes: 64 * 1024 * 1024,
            commit_stall_blocks: 2,
            proxy_timeout_ms: 5000,
            proxy_max_reply_bytes: 32 * 1024 * 1024,
        }
    }
}

impl ConductorConfig {
    /// What each chain's fence keeps (`keep_payloads`, `keep_bytes`).
    pub fn retention(&self) -> opc_cluster::fence::Retention {
        let size = |value: u64| usize::try_from(value).unwrap_or(usize::MAX);
        opc_cluster::fence::Retention { payloads: size(self.keep_payloads), bytes: size(self.keep_bytes) }
    }

    /// Deadline of one proxied call.
    pub fn proxy_timeout(&self) -> Duration {
        Duration::from_millis(self.proxy_timeout_ms)
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
    /// Conductor mode: its op-nodes run with `--conductor.enabled` and commit every block to
    /// `[conductor] listen` before publishing it, so a deposed leader cannot publish and a
    /// fail-over needs no liveness window.
    pub conductor: bool,
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
    /// Conductor mode: the source addresses that may call this node's conductor path (op-node
    /// sends no credentials, so its address is all there is to check). Empty: any address.
    #[serde(default)]
    pub conductor_allow: Vec<IpAddr>,
}

fn default_candidate() -> bool {
    true
}

impl SequencerConfig {
    /// The state a sequencer table starts in before its keys are read: defaults for optional
    /// keys, empty required URLs (reported as missing, never returned).
    pub(super) fn unfilled() -> Self {
        Self {
            op_node_url: String::new(),
            op_geth_url: String::new(),
            priority: 0,
            candidate: default_candidate(),
            conductor_allow: Vec::new(),
        }
    }
}
