//! The runner catches a coordinator that accepts a commit from a deposed leader: with the planted
//! bug switched on (`opc_cluster::fence::planted_bug`, compiled in for op-chaos's
//! tests only), the fence admits commits from any node, and a leader deposed while it still
//! sequenced (cut off, then reconnected) or a sequencer started behind the coordinator's back gets
//! its blocks published. The same seed without the bug is clean.
//!
//! The switch is process-wide, so both runs happen in one test, one after the other, in this
//! test binary of their own.

mod common;

use common::{failures, options, run_seeds};
use opc_cluster::fence::planted_bug;

/// Seeds 7, 9 and 10 (4 nodes, 100 and 200 ms blocks): between them, in 20 s, leaders cut off
/// from the coordinator both ways, commit paths failing, and sequencers started behind the
/// coordinator's back; each reported zombie blocks with the bug planted in every trial run.
const SEEDS: [u64; 3] = [7, 9, 10];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fence_that_admits_a_deposed_leaders_commits_is_caught_as_zombie_blocks() {
    let options = options(1, true);
    planted_bug::set_admit_any_node(true);
    let planted = run_seeds(&SEEDS, &options).await;
    planted_bug::set_admit_any_node(false);
    let caught: Vec<(u64, &String)> = planted
        .iter()
        .flat_map(|report| report.violations.iter().map(|violation| (report.seed, violation)))
        .filter(|(_, violation)| violation.starts_with("zombie blocks:"))
        .collect();
    let everything: Vec<(u64, &Vec<String>)> =
        planted.iter().map(|report| (report.seed, &report.violations)).collect();
    assert!(!caught.is_empty(), "the planted bug went unnoticed; violations: {everything:#?}");
    let clean = run_seeds(&SEEDS, &options).await;
    let failures = failures(&clean, &options);
    assert!(failures.is_empty(), "without the planted bug: {}", failures.join("\n\n"));
}
