//! The `[cluster]` configuration section: who the replicas are and how fast Raft ticks.
//!
//! Every key has a default except `id` and `replicas`, so the smallest useful config is
//! `id = 1` plus one `[[cluster.replicas]]` entry. [`ClusterConfig::validate`] reports every problem
//! at once, each naming the key to change, because a replica that refuses to start over one typo at
//! a time wastes a deploy per typo.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

/// One member of the cluster as the configuration names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicaConfig {
    /// Raft node id. Stable for the life of the replica's data dir: a replica that comes back
    /// with another id is a different member.
    pub id: u64,
    /// `host:port` of the replica's Raft server (peer-to-peer traffic only).
    pub raft_addr: String,
    /// Address of the replica's client-facing API, handed to callers in `NotLeader` errors so they
    /// can redirect. Opaque to this crate.
    pub api_addr: String,
    /// `host:port` of the replica's conductor endpoint, where the other replicas forward
    /// op-node's conductor calls. Needed when a chain runs in conductor mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conductor_addr: Option<String>,
}

/// Configuration of the embedded Raft cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// This replica's Raft node id; must be one of `replicas` when `bootstrap` is true.
    pub id: u64,
    /// The initial voters. Used once, to initialize an empty store; afterwards the replicated
    /// membership (changed with `add_replica` / `remove_replica`) is the truth and this list may
    /// be stale.
    pub replicas: Vec<ReplicaConfig>,
    /// True: a listed replica that starts with an empty store initializes the cluster with exactly
    /// `replicas`. False: this replica joins an existing cluster and waits for `add_replica`.
    /// A replica whose data dir was wiped must come back with `bootstrap = false`.
    #[serde(default = "default_true")]
    pub bootstrap: bool,
    /// How often the leader sends heartbeats; also openraft's per-AppendEntries deadline.
    #[serde(default = "default_heartbeat_interval_ms")]
    pub heartbeat_interval_ms: u64,
    /// Lower bound of the randomized election timeout; must exceed `heartbeat_interval_ms`.
    #[serde(default = "default_election_timeout_min_ms")]
    pub election_timeout_min_ms: u64,
    /// Upper bound of the randomized election timeout; also the leader lease length.
    #[serde(default = "default_election_timeout_max_ms")]
    pub election_timeout_max_ms: u64,
    /// Deadline of one replica-to-replica HTTP call (append, vote, campaign).
    #[serde(default = "default_rpc_timeout_ms")]
    pub rpc_timeout_ms: u64,
    /// Deadline of sending and installing a whole snapshot on a peer.
    #[serde(default = "default_snapshot_rpc_timeout_ms")]
    pub snapshot_rpc_timeout_ms: u64,
    /// How long to wait before retrying a peer that refused the connection or was dropped.
    #[serde(default = "default_unreachable_backoff_ms")]
    pub unreachable_backoff_ms: u64,
    /// Build a snapshot (and then purge the log) after this many entries since the last one.
    #[serde(default = "default_snapshot_every_logs")]
    pub snapshot_every_logs: u64,
    /// Entries kept behind the snapshot so a briefly lagging follower catches up from the log
    /// instead of receiving a whole snapshot.
    #[serde(default = "default_max_in_snapshot_log_to_keep")]
    pub max_in_snapshot_log_to_keep: u64,
    /// Deadline of `Cluster::write` and `Cluster::ensure_linearizable`: a leader cut off from its
    /// quorum never commits, and the caller must hear about it.
    #[serde(default = "default_write_timeout_ms")]
    pub write_timeout_ms: u64,
    /// Deadline of `add_replica` (catch-up included) and `remove_replica`.
    #[serde(default = "default_membership_timeout_ms")]
    pub membership_timeout_ms: u64,
    /// Deadline of `transfer_leadership`, from the call until the target is seen leading.
    #[serde(default = "default_transfer_timeout_ms")]
    pub transfer_timeout_ms: u64,
    /// On a graceful shutdown, the acting leader first hands its leadership to a peer and waits
    /// (bounded) until that peer acts, so a rolling restart leaves no gap of an election. False
    /// keeps the plain shutdown (the others elect a leader once its lease lapses), for comparison.
    #[serde(default = "default_true")]
    pub handover_on_shutdown: bool,
    /// Serve `POST /fault` and `POST /fault/heal` on the Raft server, for fault-injection tests
    /// with replica processes. Off in production: anyone reaching the port could partition us.
    #[serde(default)]
    pub fault_injection: bool,
    /// What the fence of each chain in conductor mode keeps. Not a key of `[cluster]`: the
    /// coordinator sets it from `[conductor]`, the same on every replica.
    #[serde(skip)]
    pub payload_retention: crate::fence::Retention,
}

fn default_true() -> bool {
    true
}
fn default_heartbeat_interval_ms() -> u64 {
    100
}
fn default_election_timeout_min_ms() -> u64 {
    300
}
fn default_election_timeout_max_ms() -> u64 {
    600
}
fn default_rpc_timeout_ms() -> u64 {
    500
}
fn default_snapshot_rpc_timeout_ms() -> u64 {
    10_000
}
fn default_unreachable_backoff_ms() -> u64 {
    250
}
fn default_snapshot_every_logs() -> u64 {
    1000
}
fn default_max_in_snapshot_log_to_keep() -> u64 {
    100
}
fn default_write_timeout_ms() -> u64 {
    5000
}
fn default_membership_timeout_ms() -> u64 {
    30_000
}
fn default_transfer_timeout_ms() -> u64 {
    5000
}

impl ClusterConfig {
    /// A config with every knob at its default.
    pub fn new(id: u64, replicas: Vec<ReplicaConfig>) -> Self {
        Self {
            id,
            replicas,
            bootstrap: true,
            heartbeat_interval_ms: default_heartbeat_interval_ms(),
            election_timeout_min_ms: default_election_timeout_min_ms(),
            election_timeout_max_ms: default_election_timeout_max_ms(),
            rpc_timeout_ms: default_rpc_timeout_ms(),
            snapshot_rpc_timeout_ms: default_snapshot_rpc_timeout_ms(),
            unreachable_backoff_ms: default_unreachable_backoff_ms(),
            snapshot_every_logs: default_snapshot_every_logs(),
            max_in_snapshot_log_to_keep: default_max_in_snapshot_log_to_keep(),
            write_timeout_ms: default_write_timeout_ms(),
            membership_timeout_ms: default_membership_timeout_ms(),
            transfer_timeout_ms: default_transfer_timeout_ms(),
            handover_on_shutdown: true,
            fault_injection: false,
            payload_retention: crate::fence::Retention::default(),
        }
    }

    /// Checks the whole section and returns every problem found, each naming its key.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let positive = [
            ("cluster.heartbeat_interval_ms", self.heartbeat_interval_ms),
            ("cluster.rpc_timeout_ms", self.rpc_timeout_ms),
            ("cluster.snapshot_rpc_timeout_ms", self.snapshot_rpc_timeout_ms),
            ("cluster.unreachable_backoff_ms", self.unreachable_backoff_ms),
            ("cluster.snapshot_every_logs", self.snapshot_every_logs),
            ("cluster.write_timeout_ms", self.write_timeout_ms),
            ("cluster.membership_timeout_ms", self.membership_timeout_ms),
        ];
        let zero = positive.into_iter().filter(|(_, value)| *value == 0).map(|(key, _)| ConfigProblem {
            key: key.to_owned(),
            reason: "must be greater than 0".to_owned(),
        });
        let problems: Vec<String> = self.problems().into_iter().chain(zero).map(|p| p.to_string()).collect();
        if problems.is_empty() { Ok(()) } else { Err(ConfigErrors { problems }) }
    }

    /// The rules across keys and replicas, each problem with the key to change. A loader that
    /// checks single values itself (ranges, types) uses this instead of [`ClusterConfig::validate`]
    /// so no value is reported twice.
    pub fn problems(&self) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        let mut problem = |key: String, reason: String| problems.push(ConfigProblem { key, reason });

        if self.replicas.is_empty() && self.bootstrap {
            problem(
                "cluster.replicas".to_owned(),
                "is empty: list at least this replica (or set cluster.bootstrap = false to join an \
                 existing cluster)"
                    .to_owned(),
            );
        }
        if self.bootstrap && !self.replicas.is_empty() && !self.replicas.iter().any(|r| r.id == self.id) {
            problem(
                "cluster.id".to_owned(),
                format!(
                    "{} is not in cluster.replicas (ids: {:?}); add it, fix cluster.id, or set \
                     cluster.bootstrap = false to join an existing cluster",
                    self.id,
                    self.replicas.iter().map(|r| r.id).collect::<Vec<_>>()
                ),
            );
        }

        let mut ids = BTreeSet::new();
        let mut raft_addrs = BTreeMap::new();
        let mut api_addrs = BTreeMap::new();
        for (i, replica) in self.replicas.iter().enumerate() {
            let key = |leaf: &str| format!("cluster.replicas[{i}].{leaf}");
            if !ids.insert(replica.id) {
                problem(key("id"), format!("{} is listed twice", replica.id));
            }
            if let Err(why) = check_host_port(&replica.raft_addr) {
                problem(key("raft_addr"), format!("{:?} {why}", replica.raft_addr));
            }
            if let Some(first) = raft_addrs.insert(replica.raft_addr.as_str(), i) {
                problem(
                    key("raft_addr"),
                    format!("{:?} is also used by cluster.replicas[{first}]", replica.raft_addr),
                );
            }
            if replica.api_addr.trim().is_empty() {
                problem(key("api_addr"), "is empty".to_owned());
            } else if let Some(first) = api_addrs.insert(replica.api_addr.as_str(), i) {
                problem(
                    key("api_addr"),
                    format!("{:?} is also used by cluster.replicas[{first}]", replica.api_addr),
                );
            }
        }

        if self.election_timeout_min_ms <= self.heartbeat_interval_ms {
            problem(
                "cluster.election_timeout_min_ms".to_owned(),
                format!(
                    "({}) must be greater than cluster.heartbeat_interval_ms ({}), or followers start \
                     elections between heartbeats",
                    self.election_timeout_min_ms, self.heartbeat_interval_ms
                ),
            );
        }
        if self.election_timeout_min_ms >= self.election_timeout_max_ms {
            problem(
                "cluster.election_timeout_min_ms".to_owned(),
                format!(
                    "({}) must be less than cluster.election_timeout_max_ms ({})",
                    self.election_timeout_min_ms, self.election_timeout_max_ms
                ),
            );
        }
        if self.transfer_timeout_ms <= self.election_timeout_max_ms {
            problem(
                "cluster.transfer_timeout_ms".to_owned(),
                format!(
                    "({}) must be greater than cluster.election_timeout_max_ms ({}): a transfer may have \
                     to wait out one leader lease",
                    self.transfer_timeout_ms, self.election_timeout_max_ms
                ),
            );
        }
        problems
    }

    /// The replica entry for `id`, if the config lists it.
    pub fn replica(&self, id: u64) -> Option<&ReplicaConfig> {
        self.replicas.iter().find(|r| r.id == id)
    }

    /// The openraft engine config these knobs translate to.
    pub(crate) fn raft_config(&self) -> Result<openraft::Config, String> {
        openraft::Config {
            cluster_name: "op-coordinator".to_owned(),
            heartbeat_interval: self.heartbeat_interval_ms,
            election_timeout_min: self.election_timeout_min_ms,
            election_timeout_max: self.election_timeout_max_ms,
            install_snapshot_timeout: self.snapshot_rpc_timeout_ms,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(self.snapshot_every_logs),
            max_in_snapshot_log_to_keep: self.max_in_snapshot_log_to_keep,
            ..Default::default()
        }
        .validate()
        .map_err(|e| e.to_string())
    }
}

/// `host:port` with a numeric port; the host is resolved when connecting.
fn check_host_port(addr: &str) -> Result<(), &'static str> {
    let Some((host, port)) = addr.rsplit_once(':') else {
        return Err("is not host:port");
    };
    if host.is_empty() {
        return Err("has no host (expected host:port)");
    }
    if port.parse::<u16>().is_err() {
        return Err("has no valid port (expected host:port)");
    }
    Ok(())
}

/// One problem with the section: the key to change (`cluster.replicas[1].raft_addr`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The dotted key, with the position of a replica in brackets.
    pub key: String,
    /// What is wrong with it, starting with the offending value where there is one.
    pub reason: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.key, self.reason)
    }
}

/// Every problem [`ClusterConfig::validate`] found, one per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors {
    /// One sentence per problem, each starting with the key to change.
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid cluster config: {}", self.problems.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(id: u64, port: u16) -> ReplicaConfig {
        ReplicaConfig {
            id,
            raft_addr: format!("127.0.0.1:{port}"),
            api_addr: format!("127.0.0.1:{}", port + 1),
            conductor_addr: None,
        }
    }

    #[test]
    fn defaults_fill_every_knob_not_given() {
        let config: ClusterConfig = serde_json::from_value(serde_json::json!({
            "id": 1,
            "replicas": [{"id": 1, "raft_addr": "127.0.0.1:7000", "api_addr": "127.0.0.1:8000"}],
        }))
        .expect("parses");
        assert_eq!(config, ClusterConfig::new(1, vec![replica(1, 7000).with_api("127.0.0.1:8000")]));
        assert!(config.bootstrap);
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = serde_json::from_value::<ClusterConfig>(serde_json::json!({
            "id": 1, "replicas": [], "heartbeat_ms": 5,
        }))
        .expect_err("unknown key");
        assert!(err.to_string().contains("heartbeat_ms"), "{err}");
    }

    #[test]
    fn validation_names_every_offending_key() {
        let mut config = ClusterConfig::new(4, vec![replica(1, 7000), replica(1, 7000), replica(2, 0)]);
        config.replicas[2].raft_addr = "nonsense".to_owned();
        config.heartbeat_interval_ms = 300;
        config.election_timeout_min_ms = 300;
        config.election_timeout_max_ms = 200;
        config.snapshot_every_logs = 0;
        let problems = config.validate().expect_err("invalid").problems;
        let expect = [
            "cluster.id 4 is not in cluster.replicas",
            "cluster.replicas[1].id 1 is listed twice",
            "cluster.replicas[1].raft_addr \"127.0.0.1:7000\" is also used by cluster.replicas[0]",
            "cluster.replicas[1].api_addr \"127.0.0.1:7001\" is also used by cluster.replicas[0]",
            "cluster.replicas[2].raft_addr \"nonsense\" is not host:port",
            "cluster.snapshot_every_logs must be greater than 0",
            "cluster.election_timeout_min_ms (300) must be greater than cluster.heartbeat_interval_ms (300)",
            "cluster.election_timeout_min_ms (300) must be less than cluster.election_timeout_max_ms (200)",
        ];
        for want in expect {
            assert!(problems.iter().any(|p| p.starts_with(want)), "missing {want:?} in {problems:#?}");
        }
        assert_eq!(problems.len(), expect.len(), "{problems:#?}");
    }

    #[test]
    fn a_joining_replica_need_not_be_listed() {
        let mut config = ClusterConfig::new(4, vec![replica(1, 7000)]);
        config.bootstrap = false;
        assert_eq!(config.validate(), Ok(()));
        config.replicas.clear();
        assert_eq!(config.validate(), Ok(()));
    }

    impl ReplicaConfig {
        fn with_api(mut self, api: &str) -> Self {
            api.clone_into(&mut self.api_addr);
            self
        }
    }
}
