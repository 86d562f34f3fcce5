//! Every metric the coordinator exports, in one place (namespace `op_coordinator`, units in names).
//!
//! Labels: `chain` and `node` are config names; `reason` is a health reason code; `outcome` is one
//! of `success`, `restarted_old_leader`, `leaderless`, `handover`; `phase` a fail-over phase;
//! `service` is `op_node` or `op_geth`.

use crate::{
    engine::FailoverOutcome,
    health::{NodeHealth, ProbeReport, Reason},
    state::{ChainState, Phase},
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::{sync::OnceLock, time::Duration};

/// 1 on the node the coordinator holds as leader, 0 on the others.
pub const IS_LEADER: &str = "op_coordinator_is_leader";
/// Number of nodes the last inspection found sequencing (alert when not 1).
pub const LEADER_COUNT: &str = "op_coordinator_leader_count";
/// 1 when the node's verdict is healthy.
pub const NODE_HEALTHY: &str = "op_coordinator_node_healthy";
/// 1 for the reason of the node's latest probe, 0 for the other reasons.
pub const NODE_HEALTH_REASON: &str = "op_coordinator_node_health_reason";
/// Latency of each probe call.
pub const PROBE_DURATION_SECONDS: &str = "op_coordinator_probe_duration_seconds";
/// Completed fail-overs and hand-overs, by outcome.
pub const FAILOVERS_TOTAL: &str = "op_coordinator_failovers_total";
/// From the decision to fail over to the new leader sequencing.
pub const FAILOVER_DURATION_SECONDS: &str = "op_coordinator_failover_duration_seconds";
/// Non-leaders found sequencing and stopped by inspection.
pub const INSPECTION_STOPS_TOTAL: &str = "op_coordinator_inspection_stops_total";
/// Unsafe head number per node.
pub const UNSAFE_HEAD_NUMBER: &str = "op_coordinator_unsafe_head_number";
/// Seconds since the node's unsafe head last moved.
pub const UNSAFE_HEAD_AGE_SECONDS: &str = "op_coordinator_unsafe_head_age_seconds";
/// 1 for the chain's current fail-over phase.
pub const PHASE: &str = "op_coordinator_phase";
/// Leadership epoch.
pub const EPOCH: &str = "op_coordinator_epoch";
/// 1 while automation is paused.
pub const PAUSED: &str = "op_coordinator_paused";
/// 1 while the node is fenced.
pub const FENCED: &str = "op_coordinator_fenced";
/// State writes that failed (the action that depended on them was not taken).
pub const STATE_PERSIST_FAILURES_TOTAL: &str = "op_coordinator_state_persist_failures_total";

/// Raft term this replica knows (cluster mode).
pub const RAFT_TERM: &str = "op_coordinator_raft_term";
/// Id of the replica this replica knows as Raft leader, -1 when none.
pub const RAFT_LEADER_ID: &str = "op_coordinator_raft_leader_id";
/// 1 while this replica holds a quorum-confirmed leadership and acts on sequencers.
pub const RAFT_ACTING: &str = "op_coordinator_raft_acting";
/// 1 while this replica is a voter of the current membership.
pub const RAFT_IS_VOTER: &str = "op_coordinator_raft_is_voter";
/// Index of the last entry in this replica's Raft log.
pub const RAFT_LAST_LOG_INDEX: &str = "op_coordinator_raft_last_log_index";
/// Highest log index known committed (the leader's quorum index; a follower's applied index).
pub const RAFT_COMMIT_INDEX: &str = "op_coordinator_raft_commit_index";
/// Highest log index applied to this replica's state.
pub const RAFT_APPLIED_INDEX: &str = "op_coordinator_raft_applied_index";
/// Entries a peer is behind the leader's log (reported by the leader), by `peer` id.
pub const RAFT_REPLICATION_LAG_ENTRIES: &str = "op_coordinator_raft_replication_lag_entries";
/// Leaderships this replica handed over because it reached no node of a chain.
pub const RAFT_BLIND_HANDOVERS: &str = "op_coordinator_raft_blind_handovers_total";

/// Every `outcome` label of [`FAILOVERS_TOTAL`].
pub const FAILOVER_OUTCOMES: [&str; 4] = ["success", "restarted_old_leader", "leaderless", "handover"];

/// Every metric name, for the dashboard and alert-rule checks.
pub const ALL: [&str; 24] = [
    IS_LEADER,
    LEADER_COUNT,
    NODE_HEALTHY,
    NODE_HEALTH_REASON,
    PROBE_DURATION_SECONDS,
    FAILOVERS_TOTAL,
    FAILOVER_DURATION_SECONDS,
    INSPECTION_STOPS_TOTAL,
    UNSAFE_HEAD_NUMBER,
    UNSAFE_HEAD_AGE_SECONDS,
    PHASE,
    EPOCH,
    PAUSED,
    FENCED,
    STATE_PERSIST_FAILURES_TOTAL,
    RAFT_TERM,
    RAFT_LEADER_ID,
    RAFT_ACTING,
    RAFT_IS_VOTER,
    RAFT_LAST_LOG_INDEX,
    RAFT_COMMIT_INDEX,
    RAFT_APPLIED_INDEX,
    RAFT_REPLICATION_LAG_ENTRIES,
    RAFT_BLIND_HANDOVERS,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder once per process and returns its handle; later calls (more
/// coordinators in one test process) share it.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let buckets =
                [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
            let builder =
                PrometheusBuilder::new().set_buckets(&buckets).unwrap_or_else(|_| PrometheusBuilder::new());
            match builder.install_recorder() {
                Ok(handle) => handle,
                // Another recorder is installed (e.g. by an embedding program): keep a private one.
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            }
        })
        .clone()
}

/// Seconds as f64 for histograms.
pub fn seconds(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

/// Registers the chain's counters and histogram at zero, so a dashboard or an alert on
/// `increase()` sees each series before its first event, not only after it.
pub fn register_chain<'a>(chain: &str, nodes: impl Iterator<Item = &'a str>) {
    for outcome in FailoverOutcome::ALL {
        metrics::counter!(FAILOVERS_TOTAL, "chain" => chain.to_owned(), "outcome" => outcome.label())
            .increment(0);
    }
    for node in nodes {
        metrics::counter!(INSPECTION_STOPS_TOTAL, "chain" => chain.to_owned(), "node" => node.to_owned())
            .increment(0);
    }
    metrics::counter!(STATE_PERSIST_FAILURES_TOTAL, "chain" => chain.to_owned()).increment(0);
    let _ = metrics::histogram!(FAILOVER_DURATION_SECONDS, "chain" => chain.to_owned());
}

/// One fail-over ended with `outcome`; `duration` (when a new leader sequences) goes to the
/// duration histogram.
pub fn record_failover(chain: &str, outcome: FailoverOutcome, duration: Option<Duration>) {
    metrics::counter!(FAILOVERS_TOTAL, "chain" => chain.to_owned(), "outcome" => outcome.label())
        .increment(1);
    if let Some(duration) = duration {
        metrics::histogram!(FAILOVER_DURATION_SECONDS, "chain" => chain.to_owned()).record(seconds(duration));
    }
}

/// Inspection stopped `node`.
pub fn record_inspection_stop(chain: &str, node: String) {
    metrics::counter!(INSPECTION_STOPS_TOTAL, "chain" => chain.to_owned(), "node" => node).increment(1);
}

/// The gauges of the durable state: leader, fenced nodes, phase, epoch, paused.
pub fn publish_state<'a>(chain: &str, nodes: impl Iterator<Item = &'a str>, state: &ChainState) {
    let chain = chain.to_owned();
    for node in nodes {
        let is_leader = state.leader.as_deref() == Some(node);
        let labels = [("chain", chain.clone()), ("node", node.to_owned())];
        metrics::gauge!(IS_LEADER, &labels).set(f64::from(u8::from(is_leader)));
        metrics::gauge!(FENCED, &labels).set(f64::from(u8::from(state.fenced.contains(node))));
    }
    for phase in Phase::NAMES {
        let value = f64::from(u8::from(state.phase.name() == phase));
        metrics::gauge!(PHASE, "chain" => chain.clone(), "phase" => phase).set(value);
    }
    metrics::gauge!(EPOCH, "chain" => chain.clone()).set(state.epoch as f64);
    metrics::gauge!(PAUSED, "chain" => chain).set(f64::from(u8::from(state.paused)));
}

/// One probe's latencies and the node's verdict, reason and head after it.
pub fn publish_probe(chain: &str, report: &ProbeReport, health: Option<&NodeHealth>) {
    let chain = chain.to_owned();
    let node = report.node.clone();
    metrics::histogram!(PROBE_DURATION_SECONDS, "chain" => chain.clone(), "node" => node.clone(), "service" => "op_node")
        .record(seconds(report.probe.sync.latency));
    metrics::histogram!(PROBE_DURATION_SECONDS, "chain" => chain.clone(), "node" => node.clone(), "service" => "op_geth")
        .record(seconds(report.probe.geth.latency));
    let Some(health) = health else { return };
    let labels = [("chain", chain.clone()), ("node", node.clone())];
    metrics::gauge!(NODE_HEALTHY, &labels).set(f64::from(u8::from(health.healthy)));
    for reason in Reason::ALL {
        let value = f64::from(u8::from(health.reason == reason));
        metrics::gauge!(NODE_HEALTH_REASON, "chain" => chain.clone(), "node" => node.clone(), "reason" => reason.code())
            .set(value);
    }
    if let Some(head) = health.unsafe_head {
        metrics::gauge!(UNSAFE_HEAD_NUMBER, &labels).set(head.number as f64);
    }
    if let Some(at) = health.head_advanced_at {
        metrics::gauge!(UNSAFE_HEAD_AGE_SECONDS, &labels)
            .set(seconds(report.probe.at.saturating_duration_since(at)));
    }
}

#[cfg(test)]
mod tests {
    use super::FAILOVER_OUTCOMES;
    use crate::engine::FailoverOutcome;

    #[test]
    fn the_documented_failover_outcomes_are_the_engines() {
        assert_eq!(FailoverOutcome::ALL.map(FailoverOutcome::label), FAILOVER_OUTCOMES);
    }
}
