//! **Calls are labelled** (replica mode): every `admin_startSequencer` / `admin_stopSequencer` a
//! node received names the replica that sent it and its Raft term, so
//! [`super::one_acting_replica`] can tell who acted when.
//!
//! **Check**, at the end of a run, on the ledger's `admin_call` entries sorted by arrival: each
//! has both `replica` (`x-opc-replica`) and `term` (`x-opc-term`). One violation per replica id
//! that sent unlabelled calls (calls naming no replica count as one).

use super::one_acting_replica::calls;
use op_sim::api::LedgerEntry;
use std::collections::BTreeSet;

/// The violations.
pub fn check(entries: &[LedgerEntry]) -> Vec<String> {
    let mut violations = Vec::new();
    let mut seen = BTreeSet::new();
    for call in calls(entries) {
        if call.replica.is_some() && call.term.is_some() {
            continue;
        }
        if seen.insert(call.replica.unwrap_or(0)) {
            violations.push(format!(
                "{} on {} at {} ms does not name its replica and term (x-opc-replica {}, x-opc-term {})",
                call.method,
                call.node,
                call.t_ms,
                shown(call.replica),
                shown(call.term)
            ));
        }
    }
    violations
}

/// A header's value, or `none`.
fn shown(value: Option<u64>) -> String {
    value.map_or_else(|| "none".to_owned(), |value| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invariants::one_acting_replica::tests::call;

    #[test]
    fn a_call_without_a_term_is_a_violation_named_by_its_values() {
        let entries = [call(100, Some(1), Some(2)), call(300, Some(2), None), call(400, Some(2), None)];
        assert_eq!(
            check(&entries),
            ["admin_startSequencer on seq-1 at 300 ms does not name its replica and term \
              (x-opc-replica 2, x-opc-term none)"]
        );
    }
}
