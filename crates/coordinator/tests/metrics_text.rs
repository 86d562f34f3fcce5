//! `/metrics` of a running coordinator as Prometheus and an operator read it: every family has
//! `# HELP` and `# TYPE`, the build is named (`op_coordinator_build_info`), the process metrics
//! are there, and the fail-over counter and the fail-over duration histogram disagree only in the
//! documented way.

use op_coordinator::metrics as m;
use op_sim::SimConfig;
use op_sim::api::{FaultKind, FaultParams};
use opc_test_support::exposition::Exposition;
use opc_test_support::{BLOCK_TIME_MS, Harness, ONE_REPLICA, WAIT, scrape_metrics, wait_until};
use opc_wire::EventKind;
use std::collections::BTreeSet;

/// The process metrics an operator graphs next to the coordinator's own.
const PROCESS_METRICS: [&str; 4] = [
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_open_fds",
    "process_start_time_seconds",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_family_has_help_and_type_and_the_build_and_process_are_exported() {
    // As a one-replica cluster, so the Raft families are exported too; a fail-over gives the
    // counters and histograms samples.
    let harness = Harness::start(ONE_REPLICA).await;
    harness.wait_for_leader("seq-0", WAIT).await;
    harness.sim.fault("seq-0", FaultKind::Crash, FaultParams::default()).expect("crash seq-0");
    harness.wait_for_event(EventKind::FailoverComplete, None, WAIT).await;
    // Conductor mode runs without [cluster]: a coordinator of its own, whose commits go to the
    // same recorder (one per process).
    let conducted = Harness::start_conducted(SimConfig::uniform(1, 3, BLOCK_TIME_MS), "").await;
    conducted.wait_for_blocks(3, WAIT).await;
    let addr = harness.coordinator.as_ref().expect("coordinator running").metrics_addr;
    let scrape = wait_until("/metrics to show the fail-over and the commits", WAIT, || async {
        let scrape = Exposition::parse(&scrape_metrics(addr).await).unwrap_or_else(|err| panic!("{err}"));
        let failed_over = scrape.sum(&format!("{}_count", m::FAILOVER_DURATION_SECONDS), &[]) >= 1.0;
        let committed = scrape.sum(m::CONDUCTOR_COMMITS_TOTAL, &[("result", "accepted")]) >= 1.0;
        (failed_over && committed).then_some(scrape)
    })
    .await;

    // A histogram's series (`_bucket`, `_sum`, `_count`) belong to the family its TYPE names.
    let families: BTreeSet<&str> =
        scrape.samples.keys().map(|series| scrape.family(series).unwrap_or(series)).collect();
    let mut problems = Vec::new();
    for family in &families {
        if !scrape.help.contains_key(*family) {
            problems.push(format!("{family}: no # HELP"));
        }
        if !scrape.types.contains_key(*family) {
            problems.push(format!("{family}: no # TYPE"));
        }
    }
    for name in m::ALL.iter().chain([&m::BUILD_INFO]) {
        if !families.contains(*name) {
            problems.push(format!("{name}: not exported"));
        }
    }
    for name in PROCESS_METRICS {
        if !families.contains(name) {
            problems.push(format!("{name}: no process metric"));
        }
    }
    assert!(problems.is_empty(), "{}\n\nexposition:\n{}", problems.join("\n"), scrape.text);

    let help = &scrape.help[m::FAILOVERS_TOTAL];
    assert!(help.contains("success and handover") && help.contains("timed"), "{help}");
    assert_eq!(scrape.types[m::BUILD_INFO], "gauge");
    let build = &scrape.samples[m::BUILD_INFO];
    assert_eq!(build.len(), 1, "{build:?}");
    let (labels, value) = &build[0];
    assert_eq!(*value, 1.0);
    assert_eq!(labels.get("version").map(String::as_str), Some(env!("CARGO_PKG_VERSION")));
    let commit = labels.get("commit").expect("a commit label");
    assert!(
        commit == "unknown" || (commit.len() >= 7 && commit.chars().all(|c| c.is_ascii_hexdigit())),
        "commit {commit:?}: a short git hash, or unknown outside a checkout"
    );
    assert!(scrape.sum("process_resident_memory_bytes", &[]) > 1e6, "{}", scrape.text);
    assert!(scrape.sum("process_start_time_seconds", &[]) > 1.6e9, "{}", scrape.text);
}

/// One fail-over whose catch-up times out counts twice in `failovers_total` (the old leader
/// restarted, then its success) and is timed once: the duration histogram samples exactly the
/// `success` and `handover` endings, as its HELP text and docs/operations.md say.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_failover_duration_count_equals_the_successes_and_hand_overs_of_the_failover_counter() {
    // A chain of its own, so the other test of this process (same recorder) does not count here.
    let mut sim_config = SimConfig::uniform(1, 3, BLOCK_TIME_MS);
    sim_config.chains[0].name = "recount".to_owned();
    let harness = Harness::start_with(sim_config, "").await;
    harness.wait_for_leader("seq-0", WAIT).await;
    harness.wait_for_blocks(3, WAIT).await;
    harness.partition_the_followers_away().await;
    harness.sim.fault("seq-0", FaultKind::Stall, FaultParams::default()).expect("stall");
    harness.wait_for_event(EventKind::Stopped, Some("seq-0"), WAIT).await;
    harness.sim.heal("seq-0", Some(FaultKind::Stall)).expect("heal stall");
    harness.wait_for_event(EventKind::CatchUpTimeout, Some("seq-0"), WAIT).await;
    harness.wait_for_leader("seq-0", WAIT).await;

    let addr = harness.coordinator.as_ref().expect("coordinator running").metrics_addr;
    let chain = [("chain", "recount")];
    let count = |scrape: &Exposition, outcome: &str| {
        scrape.sum(m::FAILOVERS_TOTAL, &[("chain", "recount"), ("outcome", outcome)])
    };
    let scrape = wait_until("the restarted old leader's success to be counted", WAIT, || async {
        let scrape = Exposition::parse(&scrape_metrics(addr).await).unwrap_or_else(|err| panic!("{err}"));
        (count(&scrape, "success") >= 1.0).then_some(scrape)
    })
    .await;
    let timed = scrape.sum(&format!("{}_count", m::FAILOVER_DURATION_SECONDS), &chain);
    let restarted = count(&scrape, "restarted_old_leader");
    let ended_with_a_leader = count(&scrape, "success") + count(&scrape, "handover");
    let total = ended_with_a_leader + restarted + count(&scrape, "leaderless");
    assert!(restarted >= 1.0, "{}", scrape.text);
    assert_eq!(timed, ended_with_a_leader, "{}", scrape.text);
    assert!(total > timed, "failovers_total {total} vs duration count {timed}:\n{}", scrape.text);
}
