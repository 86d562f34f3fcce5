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
/// 0 while the chain's state cannot be written (fail-overs wait), 1 once a write succeeds again.
pub const STATE_PERSIST_OK: &str = "op_coordinator_state_persist_ok";

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

/// The worst lateness of the coordinator's own timers over the last 10 s (see `self_lag.rs`).
pub const TIMER_LAG_SECONDS: &str = "op_coordinator_timer_lag_seconds";
/// Leaders left in place because the only evidence against them was timing while the
/// coordinator's own timers ran late; one per episode.
pub const DECISIONS_HELD_TOTAL: &str = "op_coordinator_decisions_held_total";

/// Commits received on the conductor endpoint, by `chain` and `result` (`accepted`, or why refused:
/// `not_leader`, `wrong_parent`, `not_durable`, `too_large`, `unknown_caller`).
pub const CONDUCTOR_COMMITS_TOTAL: &str = "op_coordinator_conductor_commits_total";
/// Time from receiving an accepted commit to answering it (admission and fsync), by `chain`.
pub const CONDUCTOR_COMMIT_DURATION_SECONDS: &str = "op_coordinator_conductor_commit_duration_seconds";
/// Number of the last committed block, by `chain`.
pub const CONDUCTOR_COMMITTED_HEAD_NUMBER: &str = "op_coordinator_conductor_committed_head_number";
/// Committed payloads posted to a candidate to bring it to the committed head, by `chain`.
pub const CONDUCTOR_REPLAYED_PAYLOADS_TOTAL: &str = "op_coordinator_conductor_replayed_payloads_total";
/// Calls on a node's conductor path refused for their source address (not in its
/// `conductor_allow`), by `chain` and `node`.
pub const CONDUCTOR_ADDRESS_REFUSALS_TOTAL: &str = "op_coordinator_conductor_address_refusals_total";

/// Every `outcome` label of [`FAILOVERS_TOTAL`].
pub const FAILOVER_OUTCOMES: [&str; 4] = ["success", "restarted_old_leader", "leaderless", "handover"];

/// Every metric name, for the dashboard and alert-rule checks.
pub const ALL: [&str; 32] = [
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
    STATE_PERSIST_OK,
    RAFT_TERM,
    RAFT_LEADER_ID,
    RAFT_ACTING,
    RAFT_IS_VOTER,
    RAFT_LAST_LOG_INDEX,
    RAFT_COMMIT_INDEX,
    RAFT_APPLIED_INDEX,
    RAFT_REPLICATION_LAG_ENTRIES,
    RAFT_BLIND_HANDOVERS,
    TIMER_LAG_SECONDS,
    DECISIONS_HELD_TOTAL,
    CONDUCTOR_COMMITS_TOTAL,
    CONDUCTOR_COMMIT_DURATION_SECONDS,
    CONDUCTOR_COMMITTED_HEAD_NUMBER,
    CONDUCTOR_REPLAYED_PAYLOADS_TOTAL,
    CONDUCTOR_ADDRESS_REFUSALS_TOTAL,
];

/// The build, as a gauge set to 1: `version` from Cargo.toml, `commit` the short git hash the
/// crate was built from (`unknown` outside a git checkout; see `build.rs`).
pub const BUILD_INFO: &str = "op_coordinator_build_info";

/// How a metric is exported (its `# TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// The `# HELP` text of every metric of [`ALL`] and of [`BUILD_INFO`], registered once by
/// [`install`]; a metric without an entry here fails this module's tests.
pub const HELP: [(&str, Kind, &str); 33] = [
    (IS_LEADER, Kind::Gauge, "1 on the node the coordinator holds as leader, 0 on the others."),
    (
        LEADER_COUNT,
        Kind::Gauge,
        "Nodes the last inspection found sequencing (nodes that did not answer are not counted); must be 1.",
    ),
    (NODE_HEALTHY, Kind::Gauge, "1 when the node's health verdict is healthy."),
    (
        NODE_HEALTH_REASON,
        Kind::Gauge,
        "1 for the reason code of the node's latest probe, 0 for the other reasons.",
    ),
    (PROBE_DURATION_SECONDS, Kind::Histogram, "Latency of each probe call, by service (op_node or op_geth)."),
    (
        FAILOVERS_TOTAL,
        Kind::Counter,
        "Fail-overs and hand-overs by how they ended, counted when they end. success and handover end \
         with a new leader sequencing and are the ones timed in op_coordinator_failover_duration_seconds; \
         restarted_old_leader (catch-up timed out) and leaderless (nobody could start) are not timed, and \
         an episode that restarts the old leader counts restarted_old_leader, then success when it \
         sequences again.",
    ),
    (
        FAILOVER_DURATION_SECONDS,
        Kind::Histogram,
        "From the leader judged unhealthy (or the hand-over request) to the new leader sequencing; one \
         sample per success or handover of op_coordinator_failovers_total, except one resumed by a \
         restarted coordinator or a new acting replica, whose start this process did not see.",
    ),
    (INSPECTION_STOPS_TOTAL, Kind::Counter, "Nodes found sequencing without being the leader, and stopped."),
    (UNSAFE_HEAD_NUMBER, Kind::Gauge, "The node's unsafe head block number."),
    (
        UNSAFE_HEAD_AGE_SECONDS,
        Kind::Gauge,
        "Seconds since the node's unsafe head last moved, as of its latest probe.",
    ),
    (PHASE, Kind::Gauge, "1 for the chain's current fail-over phase, 0 for the others."),
    (EPOCH, Kind::Gauge, "Leadership epoch: incremented at every change of leader."),
    (PAUSED, Kind::Gauge, "1 while automation is paused (ctl pause)."),
    (FENCED, Kind::Gauge, "1 while the node is a replaced leader not yet confirmed stopped."),
    (
        STATE_PERSIST_FAILURES_TOTAL,
        Kind::Counter,
        "State writes that failed; the action that depended on each was not taken.",
    ),
    (
        STATE_PERSIST_OK,
        Kind::Gauge,
        "0 while the chain's state cannot be written (fail-overs wait; /readyz is not ready), 1 otherwise.",
    ),
    (RAFT_TERM, Kind::Gauge, "Replicas only: the Raft term this replica knows."),
    (RAFT_LEADER_ID, Kind::Gauge, "Replicas only: the replica this one knows as Raft leader, -1 when none."),
    (
        RAFT_ACTING,
        Kind::Gauge,
        "Replicas only: 1 while this replica holds a quorum-confirmed leadership and acts on sequencers.",
    ),
    (RAFT_IS_VOTER, Kind::Gauge, "Replicas only: 1 while this replica votes in the current membership."),
    (RAFT_LAST_LOG_INDEX, Kind::Gauge, "Replicas only: index of the last entry of this replica's Raft log."),
    (
        RAFT_COMMIT_INDEX,
        Kind::Gauge,
        "Replicas only: highest entry known committed (the leader's quorum index; a follower's applied index).",
    ),
    (RAFT_APPLIED_INDEX, Kind::Gauge, "Replicas only: highest entry applied to this replica's state."),
    (
        RAFT_REPLICATION_LAG_ENTRIES,
        Kind::Gauge,
        "Replicas only, on the leader: entries each peer is behind the leader's log.",
    ),
    (
        RAFT_BLIND_HANDOVERS,
        Kind::Counter,
        "Replicas only: leaderships this replica handed to a peer because it reached no node of a chain.",
    ),
    (
        TIMER_LAG_SECONDS,
        Kind::Gauge,
        "The worst lateness of the coordinator's own timers over the last 10 s: how short of CPU it was. \
         Above half the probe deadline, no leader is deposed on a timeout or a stall.",
    ),
    (
        DECISIONS_HELD_TOTAL,
        Kind::Counter,
        "Leaders left in place because the only evidence against them (a timeout, a stall) was gathered \
         while the coordinator's own timers ran late; one per episode.",
    ),
    (
        CONDUCTOR_COMMITS_TOTAL,
        Kind::Counter,
        "Commits received on the conductor endpoint (conductor mode), by result: accepted, or the reason they were refused (not_leader, wrong_parent, not_durable, too_large, unknown_caller).",
    ),
    (
        CONDUCTOR_COMMIT_DURATION_SECONDS,
        Kind::Histogram,
        "Time from receiving an accepted commit to answering it: admission and making it durable.",
    ),
    (
        CONDUCTOR_COMMITTED_HEAD_NUMBER,
        Kind::Gauge,
        "Number of the last block committed to the conductor endpoint.",
    ),
    (
        CONDUCTOR_REPLAYED_PAYLOADS_TOTAL,
        Kind::Counter,
        "Committed payloads posted to a candidate (admin_postUnsafePayload) to bring it to the committed head.",
    ),
    (
        CONDUCTOR_ADDRESS_REFUSALS_TOTAL,
        Kind::Counter,
        "Calls on a node's conductor path (commits, operator methods, proxied reads) refused because their \
         source address is not in the node's conductor_allow.",
    ),
    (BUILD_INFO, Kind::Gauge, "Always 1; the labels tell the version and the git commit of this build."),
];

/// The crate version and the commit `build.rs` found.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The short git commit of this build, `unknown` outside a git checkout.
pub const COMMIT: &str = env!("OPC_GIT_COMMIT");

/// The process's Prometheus handle and the collector of its `process_*` metrics.
struct Exporter {
    handle: PrometheusHandle,
    process: metrics_process::Collector,
}

static EXPORTER: OnceLock<Exporter> = OnceLock::new();

/// How often unscraped histogram observations are folded into their buckets.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Installs the Prometheus recorder once per process, describes every metric and sets the build
/// info, and returns its handle; later calls (more coordinators in one test process) share it.
pub fn install() -> PrometheusHandle {
    exporter().handle.clone()
}

fn exporter() -> &'static Exporter {
    EXPORTER.get_or_init(|| {
        let buckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
        let builder =
            PrometheusBuilder::new().set_buckets(&buckets).unwrap_or_else(|_| PrometheusBuilder::new());
        let handle = match builder.install_recorder() {
            Ok(handle) => handle,
            // Another recorder is installed (e.g. by an embedding program): keep a private one.
            Err(_) => PrometheusBuilder::new().build_recorder().handle(),
        };
        // Histograms keep every observation until they are drained: by a scrape, or by upkeep.
        // Unscraped (no Prometheus yet, metrics off), 1,000 chains' probe timings would grow
        // the heap without bound; one thread drains them every few seconds instead.
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                upkeep.run_upkeep();
            }
        });
        if let Err(err) = spawned {
            tracing::warn!(%err, "cannot start the metrics upkeep thread: histograms are drained only by scrapes");
        }
        describe();
        metrics::gauge!(BUILD_INFO, "version" => VERSION, "commit" => COMMIT).set(1.0);
        let process = metrics_process::Collector::default();
        process.describe();
        Exporter { handle, process }
    })
}

/// Registers `# HELP` for every metric with the installed recorder; the exporter writes it above
/// the family's `# TYPE` line.
fn describe() {
    for (name, kind, help) in HELP {
        match kind {
            Kind::Counter => metrics::describe_counter!(name, help),
            Kind::Gauge => metrics::describe_gauge!(name, help),
            Kind::Histogram => metrics::describe_histogram!(name, help),
        }
    }
}

/// The exposition for `GET /metrics`: the process metrics (CPU seconds, resident memory, open
/// file descriptors, start time) are read from the OS now, then everything is rendered.
pub fn render(handle: &PrometheusHandle) -> String {
    exporter().process.collect();
    handle.render()
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
    metrics::counter!(DECISIONS_HELD_TOTAL, "chain" => chain.to_owned()).increment(0);
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

/// The engine left a leader in place on timing evidence gathered while the coordinator was late.
pub fn record_decision_held(chain: &str) {
    metrics::counter!(DECISIONS_HELD_TOTAL, "chain" => chain.to_owned()).increment(1);
}

/// Conductor mode: the chain's series exist from start-up (counters at 0, the committed head as
/// restored), so rates and alerts see the first event.
pub fn register_conductor<'a>(
    chain: &str,
    nodes: impl Iterator<Item = &'a str>,
    committed_head: Option<u64>,
) {
    for node in nodes {
        metrics::counter!(CONDUCTOR_ADDRESS_REFUSALS_TOTAL, "chain" => chain.to_owned(), "node" => node.to_owned())
            .increment(0);
    }
    metrics::counter!(CONDUCTOR_COMMITS_TOTAL, "chain" => chain.to_owned(), "result" => "accepted")
        .increment(0);
    metrics::counter!(CONDUCTOR_REPLAYED_PAYLOADS_TOTAL, "chain" => chain.to_owned()).increment(0);
    let _ = metrics::histogram!(CONDUCTOR_COMMIT_DURATION_SECONDS, "chain" => chain.to_owned());
    if let Some(number) = committed_head {
        metrics::gauge!(CONDUCTOR_COMMITTED_HEAD_NUMBER, "chain" => chain.to_owned()).set(number as f64);
    }
}

/// A call on `node`'s conductor path was refused for its source address.
pub fn conductor_address_refused(chain: &str, node: &str) {
    metrics::counter!(CONDUCTOR_ADDRESS_REFUSALS_TOTAL, "chain" => chain.to_owned(), "node" => node.to_owned())
        .increment(1);
}

/// A committed payload was posted to a candidate of `chain` (conductor mode's replay).
pub fn replayed_payload(chain: &str) {
    metrics::counter!(CONDUCTOR_REPLAYED_PAYLOADS_TOTAL, "chain" => chain.to_owned()).increment(1);
}

/// The worst lateness of the coordinator's own timers over the last 10 s.
pub fn timer_lag(worst: Duration) {
    metrics::gauge!(TIMER_LAG_SECONDS).set(seconds(worst));
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

/// One node's probe metrics, registered once (see [`NodeProbeMetrics::publish`]): a coordinator
/// of a thousand chains publishes tens of thousands of probes a second, and looking each series
/// up by its labels every time would cost more than the probe.
#[derive(Debug)]
pub struct NodeProbeMetrics {
    op_node_latency: metrics::Histogram,
    op_geth_latency: metrics::Histogram,
    healthy: metrics::Gauge,
    reasons: Vec<(Reason, metrics::Gauge)>,
    head_number: metrics::Gauge,
    head_age: metrics::Gauge,
    /// The reason last published: the reason gauges are written only when it changes.
    published_reason: Option<Reason>,
}

impl NodeProbeMetrics {
    /// Registers the series of `chain`'s `node` with the installed recorder.
    pub fn new(chain: &str, node: &str) -> Self {
        let (chain, node) = (chain.to_owned(), node.to_owned());
        let labels = [("chain", chain.clone()), ("node", node.clone())];
        let latency = |service: &'static str| metrics::histogram!(PROBE_DURATION_SECONDS, "chain" => chain.clone(), "node" => node.clone(), "service" => service);
        let reasons = Reason::ALL
            .into_iter()
            .map(|reason| {
                let gauge = metrics::gauge!(NODE_HEALTH_REASON, "chain" => chain.clone(), "node" => node.clone(), "reason" => reason.code());
                (reason, gauge)
            })
            .collect();
        Self {
            op_node_latency: latency("op_node"),
            op_geth_latency: latency("op_geth"),
            healthy: metrics::gauge!(NODE_HEALTHY, &labels),
            reasons,
            head_number: metrics::gauge!(UNSAFE_HEAD_NUMBER, &labels),
            head_age: metrics::gauge!(UNSAFE_HEAD_AGE_SECONDS, &labels),
            published_reason: None,
        }
    }

    /// One probe's latencies and the node's verdict, reason and head after it.
    pub fn publish(&mut self, report: &ProbeReport, health: Option<&NodeHealth>) {
        self.op_node_latency.record(seconds(report.probe.sync.latency));
        if let Some(geth) = &report.probe.geth {
            self.op_geth_latency.record(seconds(geth.latency));
        }
        let Some(health) = health else { return };
        self.healthy.set(f64::from(u8::from(health.healthy)));
        if self.published_reason != Some(health.reason) {
            for (reason, gauge) in &self.reasons {
                gauge.set(f64::from(u8::from(health.reason == *reason)));
            }
            self.published_reason = Some(health.reason);
        }
        if let Some(head) = health.unsafe_head {
            self.head_number.set(head.number as f64);
        }
        if let Some(at) = health.head_advanced_at {
            self.head_age.set(seconds(report.probe.at.saturating_duration_since(at)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ALL, BUILD_INFO, FAILOVER_OUTCOMES, HELP};
    use crate::engine::FailoverOutcome;

    #[test]
    fn every_metric_has_exactly_one_help_text() {
        let described: Vec<&str> = HELP.iter().map(|(name, _, _)| *name).collect();
        for name in ALL.iter().chain([&BUILD_INFO]) {
            let entries = described.iter().filter(|described| *described == name).count();
            assert_eq!(entries, 1, "{name}: {entries} HELP entries; add one to metrics::HELP");
        }
        assert_eq!(described.len(), ALL.len() + 1, "HELP describes a metric that is not in metrics::ALL");
    }

    #[test]
    fn the_documented_failover_outcomes_are_the_engines() {
        assert_eq!(FailoverOutcome::ALL.map(FailoverOutcome::label), FAILOVER_OUTCOMES);
    }
}
