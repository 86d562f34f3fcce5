//! Unit tests of `harness.rs`.
use super::*;
use alloy_primitives::B256;

fn block(producer: &str, number: u64, t_ms: u64) -> LedgerEntry {
    LedgerEntry::Block {
        chain: "devnet".into(),
        producer: producer.into(),
        number,
        hash: B256::with_last_byte(number as u8),
        parent: B256::with_last_byte(number.saturating_sub(1) as u8),
        t_ms,
        commit_sent_ms: None,
    }
}

#[test]
fn gap_runs_from_the_old_leaders_last_block_to_the_new_leaders_first() {
    let entries =
        [block("seq-0", 1, 1000), block("seq-0", 2, 2000), block("seq-1", 3, 3650), block("seq-1", 4, 4650)];
    let gap = handover_gap(&entries, "seq-0", 2300).expect("a hand-over");
    assert_eq!(gap, Gap { new_leader: "seq-1".into(), last_old_block_ms: 2000, first_new_block_ms: 3650 });
    assert_eq!(gap.downtime_ms(), 1650);
    assert_eq!(gap.missed_slots(1000), 1);
}

#[test]
fn a_block_the_old_leader_seals_after_the_fault_still_counts() {
    let entries = [block("seq-0", 1, 1000), block("seq-0", 2, 2000), block("seq-2", 3, 2900)];
    let gap = handover_gap(&entries, "seq-0", 1990).expect("a hand-over");
    assert_eq!(gap.last_old_block_ms, 2000);
    assert_eq!(gap.downtime_ms(), 900);
    assert_eq!(gap.missed_slots(1000), 0);
}

#[test]
fn no_gap_until_another_node_seals() {
    let entries = [block("seq-0", 1, 1000), block("seq-0", 2, 2000)];
    assert_eq!(handover_gap(&entries, "seq-0", 1500), None);
}

#[test]
fn missed_slots_round_the_gap_to_whole_slots() {
    let gap = |ms| Gap { new_leader: "b".into(), last_old_block_ms: 0, first_new_block_ms: ms };
    assert_eq!(gap(1000).missed_slots(1000), 0);
    assert_eq!(gap(1499).missed_slots(1000), 0);
    assert_eq!(gap(1500).missed_slots(1000), 1);
    assert_eq!(gap(2600).missed_slots(1000), 2);
    assert_eq!(gap(300).missed_slots(1000), 0);
}

#[test]
fn percentiles_use_the_nearest_rank() {
    let samples: Vec<u64> = (1..=10).collect();
    let p = Percentiles::of(&samples).expect("samples");
    assert_eq!(p, Percentiles { p50: 5, p95: 10, p99: 10, max: 10 });
    let samples: Vec<u64> = (1..=200).rev().collect();
    let p = Percentiles::of(&samples).expect("samples");
    assert_eq!(p, Percentiles { p50: 100, p95: 190, p99: 198, max: 200 });
    assert_eq!(Percentiles::of(&[]), None);
}

#[test]
fn profiles_with_windows_from_the_block_time_are_accepted_at_every_benchmarked_block_time() {
    for profile in [Profile::OpConductor, Profile::Tuned] {
        for block_time_ms in [250, 1000, 2000] {
            let checked = profile.check(block_time_ms, &[]);
            assert!(checked.is_ok(), "{profile:?} at {block_time_ms} ms: {checked:?}");
        }
    }
    for profile in [Profile::Defaults, Profile::OpCoordinator] {
        for block_time_ms in [250, 1000] {
            let checked = profile.check(block_time_ms, &[]);
            assert!(checked.is_ok(), "{profile:?} at {block_time_ms} ms: {checked:?}");
        }
    }
}

#[test]
fn a_fixed_liveness_window_below_the_block_time_is_refused_naming_the_key() {
    assert!(Profile::Defaults.check(2000, &[]).is_ok(), "the defaults follow the block time");
    let extra = [("failover.chain_liveness_window_ms".to_owned(), "1500".to_owned())];
    let refused = Profile::Defaults.check(2000, &extra).expect_err("1500 ms window at 2 s blocks");
    assert!(refused.contains("failover.chain_liveness_window_ms"), "{refused}");
}

#[test]
fn extra_settings_win_over_the_profile() {
    let extra = [("failover.chain_liveness_window_ms".to_owned(), "2600".to_owned())];
    assert!(Profile::Defaults.check(2000, &extra).is_ok());
    let chains = "[chains.devnet]\nblock_time_ms = 2000\n[chains.devnet.sequencers.seq-0]\n\
                  op_node_url = \"http://127.0.0.1:1\"\nop_geth_url = \"http://127.0.0.1:2\"\n";
    let config = Profile::Tuned.config(2000, Path::new("/tmp/x"), chains, &extra).expect("valid");
    assert_eq!(config.failover.chain_liveness_window_ms, Some(2600));
    assert_eq!(config.health.unsafe_stall_ms, Some(3000));
}

#[test]
fn profile_keys_override_the_defaults() {
    let chains = "[chains.devnet]\nblock_time_ms = 1000\n[chains.devnet.sequencers.seq-0]\n\
                  op_node_url = \"http://127.0.0.1:1\"\nop_geth_url = \"http://127.0.0.1:2\"\n";
    let config = Profile::OpConductor.config(1000, Path::new("/tmp/x"), chains, &[]).expect("valid");
    assert_eq!(config.health.interval_ms, 1000);
    assert_eq!(config.health.failure_threshold, 1);
    assert_eq!(config.failover.chain_liveness_window_ms, Some(5000));
    let config = Profile::Tuned.config(1000, Path::new("/tmp/x"), chains, &[]).expect("valid");
    assert_eq!(config.failover.chain_liveness_window_ms, Some(1250));
    assert_eq!(config.health.unsafe_stall_ms, Some(1500));
}
