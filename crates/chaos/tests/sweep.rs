//! The short chaos sweep CI runs on every submission: fixed seeds, 20 s each, run concurrently.
//! The long sweep (200 seeds of 60 s) is `cargo run --release -p op-chaos -- --seeds 200`.

mod common;

use common::{failures, options, run_seeds};

/// Seeds covering 3, 4 and 5 nodes, block times 100-250 ms, crashes, hangs, stalls, partitions,
/// behind-the-back starts and coordinator restarts.
const SEEDS: [u64; 4] = [3, 6, 7, 8];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_seeds_survive_overlapping_faults_without_reorg_double_sequencing_or_stalls() {
    let options = options(1, false);
    let reports = run_seeds(&SEEDS, &options).await;
    for report in &reports {
        assert!(report.blocks > 0, "seed {} sealed nothing", report.seed);
        assert!(report.faults.values().sum::<u64>() >= 5, "seed {} injected too few faults", report.seed);
    }
    let failures = failures(&reports, &options);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
