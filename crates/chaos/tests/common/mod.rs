//! What the CI sweeps share: the options of a short run, running fixed seeds at once, and a
//! failure report that says how to reproduce each failing seed.

// Each test binary uses a different subset.
#![allow(dead_code)]

use op_chaos::runner::{RunOptions, SeedReport, run_seed};

/// The CI runs' length: 20 s of faults and a 5 s quiet tail.
pub(crate) const DURATION_S: u64 = 20;

/// A CI run of `replicas` coordinator replicas, in conductor mode or not.
pub(crate) fn options(replicas: usize, conductor: bool) -> RunOptions {
    RunOptions {
        duration_ms: DURATION_S * 1000,
        tail_ms: 5_000,
        nodes: None,
        block_time_ms: None,
        liveness_bound_ms: 5_000,
        ledger_dir: None,
        replicas,
        conductor,
    }
}

/// Runs `seeds` at once; their reports, by seed.
pub(crate) async fn run_seeds(seeds: &[u64], options: &RunOptions) -> Vec<SeedReport> {
    let mut runs = tokio::task::JoinSet::new();
    for seed in seeds.iter().copied() {
        let options = options.clone();
        runs.spawn(async move { run_seed(seed, &options).await });
    }
    let mut reports = Vec::new();
    while let Some(report) = runs.join_next().await {
        reports.push(report.expect("seed task"));
    }
    reports.sort_by_key(|report| report.seed);
    reports
}

/// The command that replays `seed` under `options`.
pub(crate) fn reproduce(seed: u64, options: &RunOptions) -> String {
    let mut command = format!(
        "cargo run --release -p op-chaos -- --reproduce {seed} --duration-s {}",
        options.duration_ms / 1000
    );
    if options.replicas > 1 {
        command.push_str(&format!(" --replicas {}", options.replicas));
    }
    if options.conductor {
        command.push_str(" --conductor");
    }
    command
}

/// Each violating seed with its violations, timeline and reproduction command.
pub(crate) fn failures(reports: &[SeedReport], options: &RunOptions) -> Vec<String> {
    reports
        .iter()
        .filter(|report| !report.violations.is_empty())
        .map(|report| {
            format!(
                "seed {}: {:#?}\ntimeline:\n{}\nreproduce: {}",
                report.seed,
                report.violations,
                report.timeline.join("\n"),
                reproduce(report.seed, options)
            )
        })
        .collect()
}

/// Which of `kinds` the seeds applied at least once, each seed having sealed a block.
pub(crate) fn kinds_applied(reports: &[SeedReport], kinds: &[&str]) -> std::collections::BTreeSet<String> {
    let mut applied = std::collections::BTreeSet::new();
    for report in reports {
        assert!(report.blocks > 0, "seed {} sealed nothing", report.seed);
        applied.extend(report.faults.keys().filter(|kind| kinds.contains(&kind.as_str())).cloned());
    }
    applied
}
