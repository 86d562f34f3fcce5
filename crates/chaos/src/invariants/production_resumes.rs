//! **Production resumes**: once the chain could produce for `liveness_bound_ms` without a break,
//! it has sealed a block within the last `liveness_bound_ms`.
//!
//! "Could produce" means, at a tick of the runner: at least one node has no lasting fault, the
//! p2p network is not partitioned, and the coordinator side can act. That last part is the mode's:
//! alone, the coordinator is running; in replica mode, a majority of replicas are up, connected
//! to each other and reaching the sequencers.
//!
//! **Check**, every tick while it could produce for the bound: the ledger time since the last
//! sealed block (since the start when none was sealed) is at most the bound. Reported once a run.

use op_sim::api::FaultKind;
use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};
use tokio::time::Instant;

/// The liveness check of one run.
#[derive(Debug, Clone)]
pub struct ProductionResumes {
    /// The bound on the gap between blocks.
    bound_ms: u64,
    /// Since when the chain could produce without a break; None while it cannot.
    producible_since: Option<Instant>,
}

impl ProductionResumes {
    /// A check with `bound_ms` as the longest acceptable gap.
    pub fn new(bound_ms: u64) -> Self {
        Self { bound_ms, producible_since: None }
    }

    /// One tick: whether the chain could produce now, and the ledger's last block and clock.
    /// Returns the violation when the chain could produce for the bound and sealed nothing in it.
    pub fn check(
        &mut self,
        producible: bool,
        now: Instant,
        last_block_ms: Option<u64>,
        ledger_now_ms: u64,
    ) -> Option<String> {
        self.producible_since = if producible { self.producible_since.or(Some(now)) } else { None };
        let since = self.producible_since?;
        if now.duration_since(since) < Duration::from_millis(self.bound_ms) {
            return None;
        }
        let quiet_ms = last_block_ms.map_or(ledger_now_ms, |t| ledger_now_ms.saturating_sub(t));
        (quiet_ms > self.bound_ms).then(|| {
            format!(
                "no block for {quiet_ms} ms although the chain could produce for {} ms (bound {} ms)",
                now.duration_since(since).as_millis(),
                self.bound_ms
            )
        })
    }
}

/// True when one of the `nodes` nodes (`seq-0` ...) has no lasting fault in `faults_active`.
pub fn has_fault_free_candidate(nodes: usize, faults_active: &BTreeMap<String, BTreeSet<FaultKind>>) -> bool {
    (0..nodes).any(|i| faults_active.get(&format!("seq-{i}")).is_none_or(BTreeSet::is_empty))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_that_could_produce_for_less_than_the_bound_is_not_judged() {
        let mut check = ProductionResumes::new(5000);
        let start = Instant::now();
        assert_eq!(check.check(true, start, None, 60_000), None);
        assert_eq!(check.check(true, start + Duration::from_millis(4999), None, 60_000), None);
    }

    #[test]
    fn a_chain_quiet_for_longer_than_the_bound_after_it_could_produce_for_the_bound_is_a_violation() {
        let mut check = ProductionResumes::new(5000);
        let start = Instant::now();
        assert_eq!(check.check(true, start, Some(10_000), 10_100), None);
        // A block 4 s ago: live.
        assert_eq!(check.check(true, start + Duration::from_secs(5), Some(11_000), 15_000), None);
        let violation = check.check(true, start + Duration::from_secs(6), Some(11_000), 16_100);
        assert_eq!(
            violation.as_deref(),
            Some("no block for 5100 ms although the chain could produce for 6000 ms (bound 5000 ms)")
        );
    }

    #[test]
    fn a_break_in_which_the_chain_could_not_produce_restarts_the_clock() {
        let mut check = ProductionResumes::new(5000);
        let start = Instant::now();
        assert_eq!(check.check(true, start, Some(0), 100), None);
        assert_eq!(check.check(false, start + Duration::from_secs(3), Some(0), 3100), None);
        assert_eq!(check.check(true, start + Duration::from_secs(4), Some(0), 4100), None);
        assert_eq!(check.check(true, start + Duration::from_secs(8), Some(0), 8100), None);
    }

    #[test]
    fn a_node_whose_faults_all_healed_is_a_candidate_again() {
        let mut faults = BTreeMap::from([("seq-0".to_owned(), BTreeSet::from([FaultKind::Crash]))]);
        assert!(!has_fault_free_candidate(1, &faults));
        assert!(has_fault_free_candidate(2, &faults));
        faults.insert("seq-0".into(), BTreeSet::new());
        assert!(has_fault_free_candidate(1, &faults));
    }
}
