//! Coordinator settings and simulated chains that tests and benches start from.

use op_sim::SimConfig;

/// Block time of test chains: short, so a test sees dozens of blocks in a few seconds.
pub const BLOCK_TIME_MS: u64 = 100;

/// The catch-up timeout line of [`FAST_SETTINGS`], which [`fast_settings`] replaces.
const CATCH_UP_LINE: &str = "catch_up_timeout_ms = 1000\n";

/// Coordinator settings scaled to [`BLOCK_TIME_MS`] blocks, so every test runs in seconds: probes
/// every 20 ms, a verdict after two probes, a one-second catch-up.
pub const FAST_SETTINGS: &str = r#"
[health]
interval_ms = 20
probe_timeout_ms = 100
failure_threshold = 2
success_threshold = 2
unsafe_stall_ms = 400
max_execution_lag_blocks = 4
max_candidate_lag_blocks = 16

[failover]
rpc_timeout_ms = 300
catch_up_timeout_ms = 1000
chain_liveness_window_ms = 300
convergence_wait_ms = 300
start_retry_interval_ms = 50

[inspection]
interval_ms = 100
"#;

/// [`FAST_SETTINGS`] with another `failover.catch_up_timeout_ms`, for tests that write a config
/// file for a child process (which has no dotted-key overrides of its own).
pub fn fast_settings(catch_up_timeout_ms: u64) -> String {
    FAST_SETTINGS.replacen(CATCH_UP_LINE, &format!("catch_up_timeout_ms = {catch_up_timeout_ms}\n"), 1)
}

/// No metrics listener: several coordinator processes on one host would fight over its default
/// port.
pub const NO_METRICS: &str = "[metrics]\nenabled = false\n";

/// A `[cluster]` of this one replica, for tests of what only replicas export. `RAFT_ADDR` and
/// `API_ADDR` stand for the listeners [`crate::start_coordinator`] binds.
pub const ONE_REPLICA: &str =
    "[cluster]\nid = 1\n[[cluster.replicas]]\nid = 1\nraft_addr = \"RAFT_ADDR\"\napi_addr = \"API_ADDR\"\n";

/// One chain of three nodes with [`BLOCK_TIME_MS`] blocks whose sequencers all start stopped, so
/// the coordinator (or a cluster of replicas) has to elect one.
pub fn stopped_chain() -> SimConfig {
    let mut sim_config = SimConfig::uniform(1, 3, BLOCK_TIME_MS);
    for node in &mut sim_config.chains[0].nodes {
        node.options.start_active = false;
    }
    sim_config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_settings_replaces_only_the_catch_up_timeout() {
        let tuned = fast_settings(15_000);
        assert!(tuned.contains("catch_up_timeout_ms = 15000\n"), "{tuned}");
        assert!(!tuned.contains(CATCH_UP_LINE), "{tuned}");
        assert_eq!(tuned.replace("15000", "1000"), FAST_SETTINGS);
    }
}
