//! **At most one replica acts at any time** (replica mode).
//!
//! **Check**, at the end of a run, on the `admin_call` entries of the ledger (every
//! `admin_startSequencer` / `admin_stopSequencer` a node received, with the `x-opc-replica` and
//! `x-opc-term` headers that sent it), sorted by arrival: the term never decreases, and one term
//! has calls from one replica only. One violation per offending replica and term. Calls without a
//! replica or a term are [`super::calls_are_labelled`]'s.
//!
//! It also counts the terms in which a replica acted (the report's `acting_terms`).

use op_sim::api::LedgerEntry;
use std::collections::{BTreeMap, BTreeSet};

/// One `admin_call` entry, as the replica checks read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call<'a> {
    /// When it arrived (ledger ms).
    pub t_ms: u64,
    /// The node called.
    pub node: &'a str,
    /// `admin_startSequencer` or `admin_stopSequencer`.
    pub method: &'a str,
    /// The replica that sent it, if it said.
    pub replica: Option<u64>,
    /// The Raft term it was sent in, if it said.
    pub term: Option<u64>,
}

/// The `admin_call` entries of `entries`, sorted by arrival.
pub fn calls(entries: &[LedgerEntry]) -> Vec<Call<'_>> {
    let mut calls: Vec<Call<'_>> = entries
        .iter()
        .filter_map(|entry| match entry {
            LedgerEntry::AdminCall { node, method, replica, term, t_ms, .. } => {
                Some(Call { t_ms: *t_ms, node, method, replica: *replica, term: *term })
            }
            _ => None,
        })
        .collect();
    // Stable: calls that arrived in the same millisecond keep their ledger order.
    calls.sort_by_key(|call| call.t_ms);
    calls
}

/// The violations, and the number of terms in which a replica acted.
pub fn check(entries: &[LedgerEntry]) -> (Vec<String>, u64) {
    let mut violations = Vec::new();
    let mut seen = BTreeSet::new();
    let mut owners: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    let mut highest: Option<(u64, u64, u64)> = None;
    for call in calls(entries) {
        let Call { t_ms, node, method, .. } = call;
        let (Some(replica), Some(term)) = (call.replica, call.term) else { continue };
        match owners.get(&term) {
            Some((owner, since_ms)) if *owner != replica => {
                if seen.insert(("shared term", replica, term)) {
                    violations.push(format!(
                        "two replicas acted in term {term}: replica {owner} from {since_ms} ms, and replica \
                         {replica} with {method} on {node} at {t_ms} ms"
                    ));
                }
            }
            Some(_) => {}
            None => {
                owners.insert(term, (replica, t_ms));
            }
        }
        match highest {
            Some((highest_term, by, at_ms)) if term < highest_term => {
                if seen.insert(("stale term", replica, term)) {
                    violations.push(format!(
                        "replica {replica} acted in term {term} ({method} on {node} at {t_ms} ms) after replica \
                         {by} had acted in the later term {highest_term} at {at_ms} ms: two replicas acting at once"
                    ));
                }
            }
            Some((highest_term, ..)) if term == highest_term => {}
            _ => highest = Some((term, replica, t_ms)),
        }
    }
    (violations, owners.len() as u64)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn call(t_ms: u64, replica: Option<u64>, term: Option<u64>) -> LedgerEntry {
        LedgerEntry::AdminCall {
            chain: "devnet".into(),
            node: "seq-1".into(),
            method: "admin_startSequencer".into(),
            replica,
            term,
            accepted: true,
            t_ms,
            answered_ms: Some(t_ms + 1),
        }
    }

    /// Both replica-call checks, in the order a run reports them.
    fn acting_violations(entries: &[LedgerEntry]) -> (Vec<String>, u64) {
        let (mut violations, terms) = check(entries);
        violations.extend(super::super::calls_are_labelled::check(entries));
        (violations, terms)
    }

    #[test]
    fn replicas_taking_over_in_later_terms_are_one_acting_replica_at_a_time() {
        let entries = [call(100, Some(1), Some(2)), call(150, Some(1), Some(2)), call(900, Some(2), Some(5))];
        assert_eq!(acting_violations(&entries), (Vec::new(), 2));
    }

    #[test]
    fn a_call_in_an_earlier_term_after_a_later_one_is_two_replicas_acting() {
        // Appended out of order (answered late): sorted by arrival first.
        let entries = [call(900, Some(2), Some(5)), call(100, Some(1), Some(2)), call(950, Some(1), Some(2))];
        let (violations, terms) = acting_violations(&entries);
        assert_eq!(terms, 2);
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert!(
            violations[0].contains("replica 1 acted in term 2") && violations[0].contains("term 5"),
            "{violations:?}"
        );
    }

    #[test]
    fn two_replicas_in_one_term_and_unlabelled_calls_are_violations() {
        let entries = [call(100, Some(1), Some(3)), call(200, Some(2), Some(3)), call(300, None, None)];
        let (violations, _) = acting_violations(&entries);
        assert_eq!(violations.len(), 2, "{violations:?}");
        assert!(violations[0].contains("two replicas acted in term 3"), "{violations:?}");
        assert!(violations[1].contains("does not name its replica"), "{violations:?}");
    }
}
