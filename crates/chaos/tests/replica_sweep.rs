//! The short replica-mode sweep CI runs on every submission: two fixed seeds, 20 s each, with three
//! coordinator replicas. The long sweep is
//! `cargo run --release -p op-chaos -- --replicas 3 --seeds 200 --duration-s 60 --jobs 4`.

mod common;

use common::{failures, kinds_applied, options, run_seeds};

/// Between them, in 20 s: the acting replica killed, cut off from the other replicas and cut off
/// from the sequencers; a follower cut off; the majority lost by crashes and by a partition; on
/// chains of 3 and 4 nodes.
const SEEDS: [u64; 2] = [6, 8];

/// Replica fault kinds, as the report counts them.
const REPLICA_FAULTS: [&str; 5] = [
    "replica_crash",
    "replica_partition",
    "leader_isolated_from_sequencers",
    "majority_lost_crash",
    "majority_lost_partition",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_under_replica_and_node_faults_keep_one_acting_replica_and_a_safe_live_chain() {
    let options = options(3, false);
    let reports = run_seeds(&SEEDS, &options).await;
    let kinds = kinds_applied(&reports, &REPLICA_FAULTS);
    for report in &reports {
        let replica_faults: u64 = REPLICA_FAULTS.iter().filter_map(|kind| report.faults.get(*kind)).sum();
        assert!(replica_faults >= 3, "seed {} applied {replica_faults} replica faults", report.seed);
        assert!(report.acting_terms >= 1, "seed {}: no replica ever acted", report.seed);
    }
    let failures = failures(&reports, &options);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // A fault aimed at the leader is skipped when no replica names one for 1.5 s: allow one kind
    // to be missing rather than fail on an unlucky election.
    assert!(kinds.len() + 1 >= REPLICA_FAULTS.len(), "replica faults applied: {kinds:?}");
}
