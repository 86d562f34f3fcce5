//! **Nobody acts without a majority** (replica mode): while the replicas have lost their
//! majority, no replica calls a node.
//!
//! The runner records a [`MajorityLoss`] when it applies an episode that leaves no majority
//! (every replica but the acting one crashed, or every replica cut off from every other) and
//! closes it at the episode's heal.
//!
//! **Check**, at the end of a run, on the ledger's `admin_call` entries: none arrived from
//! `grace_ms` (the maximum election timeout: the lone leader's lease runs out well within it)
//! after a loss began until it ended.

use super::one_acting_replica::calls;
use op_sim::api::LedgerEntry;

/// A window in which the replicas had no majority (ledger ms; `to_ms` None while it lasts).
#[derive(Debug, Clone)]
pub struct MajorityLoss {
    /// When it began.
    pub from_ms: u64,
    /// When it was healed.
    pub to_ms: Option<u64>,
    /// What the runner did, for the report.
    pub what: String,
}

/// The violations: one per loss in which calls arrived, listing them.
pub fn check(entries: &[LedgerEntry], losses: &[MajorityLoss], grace_ms: u64) -> Vec<String> {
    let mut violations = Vec::new();
    for loss in losses {
        let from_ms = loss.from_ms + grace_ms;
        let to_ms = loss.to_ms.unwrap_or(u64::MAX);
        let during: Vec<String> = calls(entries)
            .into_iter()
            .filter(|call| (from_ms..=to_ms).contains(&call.t_ms))
            .map(|call| {
                format!(
                    "{} on {} at {} ms by replica {:?} (term {:?})",
                    call.method, call.node, call.t_ms, call.replica, call.term
                )
            })
            .collect();
        if !during.is_empty() {
            violations.push(format!(
                "a replica acted without a majority ({} from {} to {} ms): {}",
                loss.what,
                loss.from_ms,
                to_ms,
                during.join(", ")
            ));
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invariants::one_acting_replica::tests::call;

    #[test]
    fn calls_after_the_grace_of_a_lost_majority_and_before_its_heal_are_violations() {
        let loss = MajorityLoss { from_ms: 1000, to_ms: Some(3000), what: "every replica alone".into() };
        let entries = [call(1200, Some(1), Some(2)), call(3500, Some(2), Some(4))];
        assert!(check(&entries, std::slice::from_ref(&loss), 500).is_empty());
        let entries = [call(1600, Some(1), Some(2))];
        let violations = check(&entries, &[loss], 500);
        assert_eq!(violations.len(), 1);
        assert!(violations[0].contains("at 1600 ms by replica Some(1)"), "{violations:?}");
    }
}
