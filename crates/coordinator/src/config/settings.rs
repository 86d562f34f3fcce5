//! The settings each subsystem runs on, derived from the configuration here, beside it.
//!
//! Only these travel downward: the engine, the health tracker, the blind hand-over and the leader
//! lease never see a [`Config`]. A value that is not a plain copy of one key (a sum, a unit
//! conversion, a clamp) is computed and documented in this file, so each derivation has one place.

use std::time::Duration;

use opc_cluster::ClusterConfig;

use super::types::{ChainConfig, Config, FailoverConfig};
use super::windows::{ExplicitWindows, WindowTooShort, Windows};
use crate::api::ApiSettings;
use crate::conductor::{NodeEndpoint, serve::EndpointSettings};
use crate::engine::{ConductorTiming, FailoverSettings};
use crate::handover::HandoverSettings;
use crate::health::HealthSettings;
use crate::replication::LeaseSettings;

/// Slack on top of the steps of an operator's hand-over, see
/// [`FailoverConfig::operator_handover_timeout`].
const HANDOVER_SLACK: Duration = Duration::from_secs(5);

/// How long op-node waits before it sequences again after a commit to its conductor failed.
const COMMIT_RETRY_BACKOFF: Duration = Duration::from_secs(1);

/// The block time [`ChainTuning::provisional`] assumes.
const PLACEHOLDER_BLOCK_TIME: Duration = Duration::from_secs(1);

/// How long a replica may reach no node before it hands its leadership to a peer that does, when
/// `failover.chain_liveness_window_ms` is not set: the liveness window of a 1 s chain. It is about
/// the replica's own blindness, not about any one chain, so it does not follow a block time.
const BLIND_AFTER_DEFAULT: Duration = Duration::from_millis(1500);

/// What a chain actor needs to derive its settings once the chain's block time is known (the
/// windows follow it, see [`Windows`]); everything else is a plain copy of the config.
#[derive(Debug, Clone)]
pub struct ChainTuning {
    explicit: ExplicitWindows,
    probe_interval: Duration,
    probe_timeout: Duration,
    start_retry_interval: Duration,
    health: HealthSettings,
    /// `conductor.commit_stall_blocks` for a chain in conductor mode; None otherwise.
    commit_stall_blocks: Option<u32>,
}

impl From<&Config> for ApiSettings {
    fn from(config: &Config) -> Self {
        // The bounds are ranged in `keys.rs` far below usize::MAX on any platform we build for.
        let size = |value: u64| usize::try_from(value).unwrap_or(usize::MAX);
        Self {
            jwt_on_reads: config.rpc.jwt_on_reads,
            max_batch_len: size(config.rpc.max_batch_len),
            max_request_bytes: size(config.rpc.max_request_bytes),
            max_reply_bytes: size(config.rpc.max_reply_bytes),
            max_connections: size(config.rpc.max_connections),
        }
    }
}

impl EndpointSettings {
    /// The conductor endpoint's settings; `handover_timeout` is the admin API's (see
    /// [`FailoverConfig::operator_handover_timeout`]), so a hand-over asked on either waits as long.
    pub fn new(config: &Config, handover_timeout: Duration) -> Self {
        Self {
            // Ranged in `keys.rs` far below usize::MAX and u32::MAX.
            max_payload_bytes: usize::try_from(config.conductor.max_payload_bytes).unwrap_or(usize::MAX),
            proxy_timeout: config.conductor.proxy_timeout(),
            proxy_max_reply_bytes: u32::try_from(config.conductor.proxy_max_reply_bytes).unwrap_or(u32::MAX),
            handover_timeout,
        }
    }
}

impl NodeEndpoint {
    /// Every node of `chain` as the conductor endpoint serves it, in config order.
    pub fn of_chain(chain: &ChainConfig) -> Vec<Self> {
        chain
            .sequencers
            .iter()
            .map(|(name, node)| Self {
                name: name.clone(),
                op_node_url: node.op_node_url.clone(),
                op_geth_url: node.op_geth_url.clone(),
                candidate: node.candidate,
                allow: node.conductor_allow.clone(),
            })
            .collect()
    }
}

/// A chain's settings for one block time.
#[derive(Debug, Clone)]
pub struct Tuned {
    /// The windows in force.
    pub windows: Windows,
    /// The engine's settings.
    pub failover: FailoverSettings,
    /// The health tracker's settings.
    pub health: HealthSettings,
}

impl ChainTuning {
    /// The tuning of every chain of `config`.
    pub fn new(config: &Config) -> Self {
        let placeholder = Windows::defaults_for(PLACEHOLDER_BLOCK_TIME, config.health.interval());
        Self {
            explicit: ExplicitWindows::from(config),
            probe_interval: config.health.interval(),
            probe_timeout: config.health.probe_timeout(),
            start_retry_interval: config.failover.start_retry_interval(),
            health: HealthSettings {
                // The tracker counts probes in u32; a threshold above 4 billion probes (years at
                // the smallest interval) means "never", which u32::MAX keeps.
                failure_threshold: u32::try_from(config.health.failure_threshold).unwrap_or(u32::MAX),
                success_threshold: u32::try_from(config.health.success_threshold).unwrap_or(u32::MAX),
                unsafe_stall: placeholder.unsafe_stall,
                max_execution_lag_blocks: config.health.max_execution_lag_blocks,
                max_candidate_lag_blocks: config.health.max_candidate_lag_blocks,
            },
            commit_stall_blocks: None,
        }
    }

    /// The tuning of `chain` of `config`: [`ChainTuning::new`], plus conductor mode's timings when
    /// the chain has a conductor.
    pub fn for_chain(config: &Config, chain: &ChainConfig) -> Self {
        let blocks = u32::try_from(config.conductor.commit_stall_blocks).unwrap_or(u32::MAX);
        Self { commit_stall_blocks: chain.conductor.then_some(blocks), ..Self::new(config) }
    }

    /// The settings for a chain of `block_time`; an explicit window too short for it is an error.
    pub fn for_block_time(&self, block_time: Duration) -> Result<Tuned, Vec<WindowTooShort>> {
        let windows = Windows::resolve(&self.explicit, block_time)?;
        Ok(self.with_windows(windows, block_time))
    }

    /// Settings to construct a chain's engine and health tracker with before its block time is
    /// known. No decision is taken on them: the actor feeds the engine nothing until then.
    pub fn provisional(&self) -> Tuned {
        self.with_windows(
            Windows::defaults_for(PLACEHOLDER_BLOCK_TIME, self.probe_interval),
            PLACEHOLDER_BLOCK_TIME,
        )
    }

    fn with_windows(&self, windows: Windows, block_time: Duration) -> Tuned {
        Tuned {
            windows,
            failover: FailoverSettings {
                catch_up_timeout: windows.catch_up_timeout,
                chain_liveness_window: windows.chain_liveness_window,
                convergence_wait: windows.convergence_wait,
                start_retry_interval: self.start_retry_interval,
                max_self_lag: self.max_self_lag(),
                self_lag_span: self.self_lag_span(windows.unsafe_stall),
                conductor: self.conductor_timing(block_time),
            },
            health: HealthSettings { unsafe_stall: windows.unsafe_stall, ..self.health.clone() },
        }
    }
}

impl ChainTuning {
    /// Conductor mode's timings for `block_time`:
    /// - alive window `bt + p + 50 ms`: a leader whose last commit is younger is alive whatever
    ///   the probes say, and one whose last commit is older while the probes fail too is deposed
    ///   at once. The margin covers op-node's second commit try (50 ms) and one probe interval
    ///   of the engine's own granularity; it does not grow with the block time, because a commit
    ///   is due on the block timer, not on a head that gossip spreads. A coordinator that runs
    ///   late does not depose on a missing commit at all (timing evidence), so load needs no
    ///   margin here. A false alarm costs a hand-over, never safety: the fence holds either way;
    /// - silence `max(margin, health.probe_timeout_ms)`: past the alive window, an op-node that
    ///   has not answered for a whole probe deadline (its probe in flight has already failed, in
    ///   effect) is taken as hung without waiting for `failure_threshold` timeouts;
    /// - commit stall `commit_stall_blocks x bt`, but never under `1 s + bt`: op-node backs off a
    ///   second after a failed commit (a coordinator restart, a refused payload), so a live leader
    ///   can be that quiet;
    /// - commit due `bt - 2p` (0 for a chain of two probe intervals or less): until then the
    ///   leader's last commit proves it alive and it is probed calmly; from then on every `p`, one
    ///   interval for the actor to notice and one for the first reading, so that it has answered
    ///   several times within `silence` when the alive window ends.
    fn conductor_timing(&self, block_time: Duration) -> Option<ConductorTiming> {
        let blocks = self.commit_stall_blocks?;
        let margin = self.probe_interval + Duration::from_millis(50);
        let alive_window = block_time + margin;
        let commit_stall = block_time.saturating_mul(blocks).max(COMMIT_RETRY_BACKOFF + block_time);
        let silence = margin.max(self.probe_timeout);
        let commit_due = block_time.saturating_sub(self.probe_interval.saturating_mul(2));
        Some(ConductorTiming { alive_window, commit_stall, silence, commit_due })
    }

    /// How late the coordinator's own timers may run before a timeout or a stall deposes no
    /// leader: half a probe deadline. A reply read that much late turns a node that answers in
    /// half its deadline into a timeout; below it, a timeout still means a slow node.
    fn max_self_lag(&self) -> Duration {
        self.probe_timeout / 2
    }

    /// How far back that lateness counts: the evidence the verdicts in force may rest on. A
    /// stall verdict looks back `unsafe_stall`, a failure verdict `failure_threshold` probe
    /// intervals; the probe that ends either may have been in flight for a probe deadline more.
    fn self_lag_span(&self, unsafe_stall: Duration) -> Duration {
        let failures = self.probe_interval.saturating_mul(self.health.failure_threshold);
        unsafe_stall.max(failures) + self.probe_timeout
    }
}

impl HandoverSettings {
    /// The blind hand-over's settings; `jwt_secret` is the admin API's secret as read at start-up
    /// ([`RpcConfig::read_jwt_secret`](super::RpcConfig::read_jwt_secret)), because every replica
    /// of one config shares it and a peer's `coordinator_status` may require it.
    pub fn new(config: &Config, jwt_secret: Option<[u8; 32]>) -> Self {
        Self {
            // The window after which the coordinator judges a silent chain stopped: a replica that
            // has reached no node for that long can no longer tell a dead chain from its own
            // blindness.
            blind_after: config
                .failover
                .chain_liveness_window_ms
                .map_or(BLIND_AFTER_DEFAULT, Duration::from_millis),
            // The probes change no faster than they are taken.
            check_every: config.health.interval(),
            // Asking a peer is one admin call like any other.
            ask_timeout: config.failover.rpc_timeout(),
            jwt_secret,
            on_shutdown: config.cluster.as_ref().is_some_and(|cluster| cluster.handover_on_shutdown),
            shutdown_within: config.cluster.as_ref().map_or(Duration::ZERO, shutdown_handover_within),
        }
    }
}

/// How long a shutdown may spend handing the leadership over: the followers' leader leases
/// (`election_timeout_max_ms`, renewed by the last heartbeat) lapse, one more campaign round
/// (`election_timeout_min_ms`) and one peer call (`rpc_timeout_ms`). A transfer that needs more
/// has failed (openraft#2088); the replica then leaves as before, and the followers, whose leases
/// have lapsed meanwhile, elect at once. Never more than an operator's `transfer_timeout_ms`.
fn shutdown_handover_within(cluster: &ClusterConfig) -> Duration {
    let ms = cluster.election_timeout_max_ms + cluster.election_timeout_min_ms + cluster.rpc_timeout_ms;
    Duration::from_millis(ms.min(cluster.transfer_timeout_ms))
}

impl From<&ClusterConfig> for LeaseSettings {
    fn from(cluster: &ClusterConfig) -> Self {
        Self {
            // Leadership is re-confirmed with every heartbeat round.
            check_every: Duration::from_millis(cluster.heartbeat_interval_ms),
            // A confirmation is valid for less than the followers' shortest election timeout, so
            // this replica has stopped acting before any other can be elected.
            lease: Duration::from_millis(cluster.election_timeout_min_ms),
        }
    }
}

impl FailoverConfig {
    /// How long `coordinator_setActiveSequencer` waits for the hand-over it asked for before
    /// answering "still in progress" (the hand-over itself goes on).
    ///
    /// The sum of the longest path through the hand-over's steps:
    /// - `catch_up_timeout`: the target may take that long to reach the stopped hash;
    /// - 4 × `rpc_timeout`: each admin call on the path has its own deadline: `admin_stopSequencer`
    ///   on the leader, `optimism_syncStatus` when the stop returned no usable hash,
    ///   `admin_startSequencer` on the target, and `admin_sequencerActive` when the start's outcome
    ///   is unknown;
    /// - 5 s of slack: the command waits behind the chain actor's other work, each step persists
    ///   the state first (with `[cluster]` a Raft commit), and catch-up is seen only through the
    ///   next probe. Without the slack an operator would be told "in progress" for hand-overs that
    ///   are about to complete.
    ///
    /// `catch_up_timeout` is the chain's (it follows the block time, see [`Windows`]).
    pub fn operator_handover_timeout(&self, catch_up_timeout: Duration) -> Duration {
        catch_up_timeout + self.rpc_timeout() * 4 + HANDOVER_SLACK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operator_handover_timeout_covers_catch_up_four_admin_calls_and_slack() {
        let config = Config::default();
        assert_eq!(
            config.failover.operator_handover_timeout(Duration::from_secs(3)),
            Duration::from_millis(3000 + 4 * 1000 + 5000)
        );
    }

    #[test]
    fn a_conducted_leader_is_read_every_interval_from_two_intervals_before_its_commit_is_due() {
        let tuning = ChainTuning { commit_stall_blocks: Some(2), ..ChainTuning::new(&Config::default()) };
        let timing = |ms| tuning.conductor_timing(Duration::from_millis(ms)).expect("conducted");
        let one_second = timing(1000);
        assert_eq!(one_second.commit_due, Duration::from_millis(800));
        assert_eq!(one_second.alive_window, Duration::from_millis(1150));
        assert!(
            one_second.alive_window - one_second.silence > one_second.commit_due,
            "read before it counts"
        );
        assert_eq!(timing(200).commit_due, Duration::ZERO, "a fast chain's leader is read every interval");
        assert_eq!(ChainTuning::new(&Config::default()).conductor_timing(Duration::from_secs(1)), None);
    }

    #[test]
    fn health_thresholds_beyond_u32_mean_never() {
        let mut config = Config::default();
        config.health.failure_threshold = u64::MAX;
        let tuned = ChainTuning::new(&config).provisional();
        assert_eq!(tuned.health.failure_threshold, u32::MAX);
        assert_eq!(tuned.health.success_threshold, 3);
    }

    #[test]
    fn the_lease_is_the_shortest_election_timeout_renewed_every_heartbeat() {
        let cluster = ClusterConfig::new(1, Vec::new());
        let lease = LeaseSettings::from(&cluster);
        assert_eq!(lease.check_every, Duration::from_millis(100));
        assert_eq!(lease.lease, Duration::from_millis(300));
    }
}
