//! The short chaos sweep CI runs on every submission: fixed seeds, 20 s each, run concurrently.
//! The long sweep (200 seeds of 60 s) is `cargo run --release -p op-chaos -- --seeds 200`.

use op_chaos::runner::{RunOptions, run_seed};

/// Seeds covering 3, 4 and 5 nodes, block times 100-250 ms, crashes, hangs, stalls, partitions,
/// behind-the-back starts and coordinator restarts.
const SEEDS: [u64; 4] = [3, 6, 7, 8];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_seeds_survive_overlapping_faults_without_reorg_double_sequencing_or_stalls() {
    let options = RunOptions {
        duration_ms: 20_000,
        tail_ms: 5_000,
        nodes: None,
        block_time_ms: None,
        liveness_bound_ms: 5_000,
        ledger_dir: None,
        replicas: 1,
    };
    let mut runs = tokio::task::JoinSet::new();
    for seed in SEEDS {
        let options = options.clone();
        runs.spawn(async move { run_seed(seed, &options).await });
    }
    let mut failures = Vec::new();
    while let Some(report) = runs.join_next().await {
        let report = report.expect("seed task");
        assert!(report.blocks > 0, "seed {} sealed nothing", report.seed);
        assert!(report.faults.values().sum::<u64>() >= 5, "seed {} injected too few faults", report.seed);
        if !report.violations.is_empty() {
            failures.push(format!(
                "seed {}: {:#?}\ntimeline:\n{}\nreproduce: cargo run --release -p op-chaos -- --reproduce {} --duration-s 20",
                report.seed,
                report.violations,
                report.timeline.join("\n"),
                report.seed
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
