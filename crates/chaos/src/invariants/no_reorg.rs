//! **No unsafe re-org**: no height holds two distinct sealed blocks, unless a sequencer started
//! behind the coordinator's back explains it.
//!
//! **Check**: the simulator's `unsafe_reorgs` (heights with two distinct blocks, from
//! `sim_invariants`). A conflict is injected, not a violation, when one of its blocks was sealed
//! inside an [`InjectedWindow`] (any node's): the rogue sequencer's blocks, or the leader's
//! blocks that competed with them.

use super::rogue_sequencers_stopped::InjectedWindow;
use alloy_primitives::B256;
use op_sim::api::{ChainInvariants, LedgerEntry};

/// The unexplained re-orgs of `report` as violations, and the number of injected ones.
pub fn check(
    report: &ChainInvariants,
    entries: &[LedgerEntry],
    windows: &[InjectedWindow],
) -> (Vec<String>, u64) {
    let in_window = |t: u64| windows.iter().any(|window| window.contains(t));
    let seal_time = |number: u64, hash: &B256| {
        entries.iter().find_map(|entry| match entry {
            LedgerEntry::Block { number: n, hash: h, t_ms, .. } if *n == number && h == hash => Some(*t_ms),
            _ => None,
        })
    };
    let mut violations = Vec::new();
    let mut injected = 0;
    for conflict in &report.unsafe_reorgs {
        let explained =
            conflict.blocks.iter().any(|(_, hash)| seal_time(conflict.number, hash).is_some_and(in_window));
        if explained {
            injected += 1;
        } else {
            violations.push(format!("unsafe re-org at height {}: {:?}", conflict.number, conflict.blocks));
        }
    }
    (violations, injected)
}

#[cfg(test)]
mod tests {
    use crate::invariants::{
        fixtures::{BOUND_MS, block, hash, run_of_seq_1, unsafe_report},
        safety_violations,
    };
    use op_sim::api::ConflictingBlocks;

    #[test]
    fn a_conflict_with_the_blocks_of_a_node_started_behind_the_back_is_injected() {
        let mut entries = run_of_seq_1(Some(10_005));
        entries.push(block("seq-2", 41, 1, 10_100));
        let mut report = unsafe_report();
        report.unsafe_reorgs[0] = ConflictingBlocks {
            number: 41,
            blocks: vec![("seq-1".into(), hash(41, 0)), ("seq-2".into(), hash(41, 1))],
        };
        assert_eq!(safety_violations(&report, &entries, 20_000, BOUND_MS), (Vec::new(), 1));
    }
}
