//! **No double sequencing**: no two nodes seal in overlapping spans of time, unless a sequencer
//! started behind the coordinator's back explains it.
//!
//! **Check**: the simulator's `double_sequencing` (overlapping sealing spans of two nodes, from
//! `sim_invariants`). An overlap is injected, not a violation, when one of its two nodes has an
//! [`InjectedWindow`] in which that node's own span starts.

use super::rogue_sequencers_stopped::InjectedWindow;
use op_sim::api::ChainInvariants;

/// The unexplained overlaps of `report` as violations, and the number of injected ones.
pub fn check(report: &ChainInvariants, windows: &[InjectedWindow]) -> (Vec<String>, u64) {
    let mut violations = Vec::new();
    let mut injected = 0;
    for overlap in &report.double_sequencing {
        let explained = windows.iter().any(|window| {
            let node = &window.node;
            let span = if *node == overlap.first { overlap.first_span_ms } else { overlap.second_span_ms };
            (*node == overlap.first || *node == overlap.second)
                && span.0 >= window.from_ms
                && span.0 <= window.to_ms
        });
        if explained {
            injected += 1;
        } else {
            violations.push(format!(
                "double sequencing: {} sealed during {:?} while {} sealed during {:?}",
                overlap.first, overlap.first_span_ms, overlap.second, overlap.second_span_ms
            ));
        }
    }
    (violations, injected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invariants::fixtures::unsafe_report;
    use op_sim::api::DoubleSequencing;

    fn overlap() -> ChainInvariants {
        let mut report = unsafe_report();
        report.unsafe_reorgs.clear();
        report.double_sequencing = vec![DoubleSequencing {
            first: "seq-0".into(),
            first_span_ms: (1000, 2000),
            second: "seq-1".into(),
            second_span_ms: (1500, 2500),
        }];
        report
    }

    #[test]
    fn an_overlap_with_a_node_started_behind_the_back_in_its_window_is_injected() {
        let windows = [InjectedWindow { node: "seq-1".into(), from_ms: 1400, to_ms: 9000 }];
        assert_eq!(check(&overlap(), &windows), (Vec::new(), 1));
    }

    #[test]
    fn an_overlap_no_window_explains_is_a_violation() {
        // The window is another node's: seq-2 did not take part in the overlap.
        let windows = [InjectedWindow { node: "seq-2".into(), from_ms: 0, to_ms: 9000 }];
        let (violations, injected) = check(&overlap(), &windows);
        assert_eq!(injected, 0);
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert!(violations[0].starts_with("double sequencing: seq-0 sealed during"), "{violations:?}");
    }
}
