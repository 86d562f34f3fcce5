//! The settings each subsystem runs on, derived from the configuration here, beside it.
//!
//! Only these travel downward: the engine, the health tracker, the blind hand-over and the leader
//! lease never see a [`Config`]. A value that is not a plain copy of one key (a sum, a unit
//! conversion, a clamp) is computed and documented in this file, so each derivation has one place.

use std::time::Duration;

use opc_cluster::ClusterConfig;

use super::types::{Config, FailoverConfig};
use crate::engine::FailoverSettings;
use crate::handover::HandoverSettings;
use crate::health::HealthSettings;
use crate::replication::LeaseSettings;

/// Slack on top of the steps of an operator's hand-over, see
/// [`FailoverConfig::operator_handover_timeout`].
const HANDOVER_SLACK: Duration = Duration::from_secs(5);

impl From<&Config> for FailoverSettings {
    fn from(config: &Config) -> Self {
        Self {
            catch_up_timeout: config.failover.catch_up_timeout(),
            chain_liveness_window: config.failover.chain_liveness_window(),
            convergence_wait: config.failover.convergence_wait(),
            start_retry_interval: config.failover.start_retry_interval(),
        }
    }
}

impl From<&Config> for HealthSettings {
    fn from(config: &Config) -> Self {
        Self {
            // The tracker counts probes in u32; a threshold above 4 billion probes (years at the
            // smallest interval) means "never", which u32::MAX keeps.
            failure_threshold: u32::try_from(config.health.failure_threshold).unwrap_or(u32::MAX),
            success_threshold: u32::try_from(config.health.success_threshold).unwrap_or(u32::MAX),
            unsafe_stall: config.health.unsafe_stall(),
            max_execution_lag_blocks: config.health.max_execution_lag_blocks,
            max_candidate_lag_blocks: config.health.max_candidate_lag_blocks,
        }
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
            blind_after: config.failover.chain_liveness_window(),
            // The probes change no faster than they are taken.
            check_every: config.health.interval(),
            // Asking a peer is one admin call like any other.
            ask_timeout: config.failover.rpc_timeout(),
            jwt_secret,
        }
    }
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
    pub fn operator_handover_timeout(&self) -> Duration {
        self.catch_up_timeout() + self.rpc_timeout() * 4 + HANDOVER_SLACK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operator_handover_timeout_covers_catch_up_four_admin_calls_and_slack() {
        let config = Config::default();
        assert_eq!(
            config.failover.operator_handover_timeout(),
            Duration::from_millis(3000 + 4 * 1000 + 5000)
        );
    }

    #[test]
    fn health_thresholds_beyond_u32_mean_never() {
        let mut config = Config::default();
        config.health.failure_threshold = u64::MAX;
        assert_eq!(HealthSettings::from(&config).failure_threshold, u32::MAX);
        assert_eq!(HealthSettings::from(&config).success_threshold, 3);
    }

    #[test]
    fn the_lease_is_the_shortest_election_timeout_renewed_every_heartbeat() {
        let cluster = ClusterConfig::new(1, Vec::new());
        let lease = LeaseSettings::from(&cluster);
        assert_eq!(lease.check_every, Duration::from_millis(100));
        assert_eq!(lease.lease, Duration::from_millis(300));
    }
}
