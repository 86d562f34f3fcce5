//! **Inspection stops a rogue sequencer**: a sequencer started behind the coordinator's back
//! seals at most `inspection_bound_ms / block_time_ms + 2` blocks before it is stopped.
//!
//! A `start_sequencer` fault makes a second sequencer on purpose; the simulator records its start
//! as an `activated` ledger entry whose cause contains [`BEHIND_BACK`]. Its injected span runs
//! from that start to the first of:
//! - its next `deactivated` entry (inspection, or anyone, stopped it);
//! - the first `admin_startSequencer` call on it that arrived at or after its start: from then
//!   on the coordinator has taken it as its leader (a node started behind the back at exactly
//!   the stopped hash is adopted, not stopped), and what it seals is the coordinator's doing;
//! - now, while it still runs.
//!
//! **Check**: the blocks it sealed within its span. Measured in blocks, not time: a node frozen
//! right after its start seals nothing and cannot be reached, so only what it seals counts
//! against inspection.
//!
//! The spans, extended by twice the inspection bound, are the [`InjectedWindow`]s in which
//! [`super::no_reorg`] and [`super::no_double_sequencing`] count a conflict as injected.

use op_sim::api::LedgerEntry;

/// The activation cause the simulator records for a `start_sequencer` fault.
pub const BEHIND_BACK: &str = "behind the coordinator's back";

/// A window of ledger time in which a node ran because of a behind-the-back start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectedWindow {
    /// The node started behind the back.
    pub node: String,
    /// Its start.
    pub from_ms: u64,
    /// The end of its span plus twice the inspection bound.
    pub to_ms: u64,
}

impl InjectedWindow {
    /// True when `t_ms` falls in the window.
    pub fn contains(&self, t_ms: u64) -> bool {
        (self.from_ms..=self.to_ms).contains(&t_ms)
    }
}

/// The injected windows of `entries`, and a violation for each behind-the-back sequencer that
/// sealed too much before it was stopped or adopted.
pub fn check(
    entries: &[LedgerEntry],
    block_time_ms: u64,
    now_ms: u64,
    inspection_bound_ms: u64,
) -> (Vec<InjectedWindow>, Vec<String>) {
    let max_injected_blocks = inspection_bound_ms / block_time_ms.max(1) + 2;
    let mut windows = Vec::new();
    let mut violations = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let LedgerEntry::Activated { node, cause, t_ms, .. } = entry else { continue };
        if !cause.contains(BEHIND_BACK) {
            continue;
        }
        let stopped = entries[i + 1..].iter().find_map(|later| match later {
            LedgerEntry::Deactivated { node: other, t_ms, .. } if other == node => Some(*t_ms),
            _ => None,
        });
        // Admin calls are appended when answered, so they are searched by arrival time.
        let adopted = entries
            .iter()
            .filter_map(|e| match e {
                LedgerEntry::AdminCall { node: other, method, t_ms: at, .. }
                    if other == node && method == "admin_startSequencer" && at >= t_ms =>
                {
                    Some(*at)
                }
                _ => None,
            })
            .min();
        let end = stopped.into_iter().chain(adopted).min().unwrap_or(now_ms);
        let sealed = entries
            .iter()
            .filter(|e| matches!(e, LedgerEntry::Block { producer, t_ms: at, .. } if producer == node && (*t_ms..=end).contains(at)))
            .count() as u64;
        if sealed > max_injected_blocks {
            violations.push(format!(
                "{node}, started behind the coordinator's back at {t_ms} ms, sealed more than \
                 {max_injected_blocks} blocks before inspection stopped it"
            ));
        }
        windows.push(InjectedWindow {
            node: node.clone(),
            from_ms: *t_ms,
            to_ms: end + 2 * inspection_bound_ms,
        });
    }
    (windows, violations)
}

#[cfg(test)]
mod tests {
    use crate::invariants::{
        fixtures::{BOUND_MS, run_of_seq_1, unsafe_report},
        safety_violations,
    };

    #[test]
    fn a_node_started_behind_the_back_and_never_stopped_is_a_violation() {
        let (violations, _) = safety_violations(&unsafe_report(), &run_of_seq_1(None), 20_000, BOUND_MS);
        assert_eq!(violations.len(), 2, "{violations:?}");
        assert!(
            violations[0].contains("seq-1, started behind the coordinator's back at 10000 ms"),
            "{violations:?}"
        );
        assert!(violations[1].contains("unsafe re-org at height 5"), "{violations:?}");
    }

    #[test]
    fn a_node_started_behind_the_back_that_the_coordinator_adopts_is_its_leader_from_then_on() {
        // Seed 60: the leader crashed, a sequencer was started behind the back at its last block,
        // and the coordinator's fail-over started (adopted) that very node 5 ms later.
        let (violations, _) =
            safety_violations(&unsafe_report(), &run_of_seq_1(Some(10_005)), 20_000, BOUND_MS);
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert!(violations[0].contains("unsafe re-org at height 5"), "{violations:?}");
    }
}
