//! **Committed before seen** (conductor mode): every block a node holds was committed (its
//! conductor accepted it) before any node but its producer saw it, and its producer inserted
//! nothing uncommitted.
//!
//! **Ground truth**: a block's commit is on its `block` entry (`commit_sent_ms`: the accepted try
//! was sent then, and answered by the entry's `t_ms`) or, for a block its producer could no longer
//! publish, an `unpublished_commit` entry. A commit that got no answer (`commit_failed` with
//! `unanswered_sent_ms`) may have been accepted too (the coordinator made it durable, then lost
//! the answer in a restart): op-node dropped the block, but the conductor may replay it, so it
//! counts as committed at the earliest when that try was sent. The first time another node took a
//! block in is its `seen` entry. The conductor accepted the block somewhere in `[commit_sent_ms, answer]`, and another
//! node may legitimately have it right after the acceptance (the coordinator's replay of its
//! committed payloads can beat the answer back to the producer), so the bound checked is the
//! sending.
//!
//! **Check**, at the end of a run:
//! - every `block` entry carries a commit: its producer inserted nothing its conductor did not
//!   accept;
//! - every `seen` block was committed, and its commit was sent no later than the sighting.
//!
//! This covers every block any node holds, canonical or since re-orged out, which is stricter
//! than "every canonical block".

use alloy_primitives::B256;
use op_sim::api::{LedgerEntry, SeenVia};
use std::collections::BTreeMap;

/// The violations of `entries`.
pub fn check(entries: &[LedgerEntry]) -> Vec<String> {
    let mut sent: BTreeMap<B256, u64> = BTreeMap::new();
    let mut violations = Vec::new();
    for entry in entries {
        match entry {
            LedgerEntry::Block { producer, number, hash, commit_sent_ms, t_ms, .. } => match commit_sent_ms {
                Some(sent_ms) => {
                    let earliest = sent.entry(*hash).or_insert(*sent_ms);
                    *earliest = (*earliest).min(*sent_ms);
                }
                None => violations.push(format!(
                    "uncommitted block: {producer} inserted #{number} {hash} at {t_ms} ms without its \
                     conductor accepting it"
                )),
            },
            LedgerEntry::UnpublishedCommit { hash, commit_sent_ms: sent_ms, .. }
            | LedgerEntry::CommitFailed { hash, unanswered_sent_ms: Some(sent_ms), .. } => {
                let earliest = sent.entry(*hash).or_insert(*sent_ms);
                *earliest = (*earliest).min(*sent_ms);
            }
            _ => {}
        }
    }
    for entry in entries {
        let LedgerEntry::Seen { node, producer, number, hash, via, t_ms, .. } = entry else { continue };
        let how = match via {
            SeenVia::P2p => "over p2p",
            SeenVia::Replay => "by replay",
        };
        match sent.get(hash) {
            None => violations.push(format!(
                "seen before committed: {node} took in #{number} {hash} of {producer} {how} at {t_ms} ms, and \
                 no conductor ever accepted it"
            )),
            Some(sent_ms) if sent_ms > t_ms => violations.push(format!(
                "seen before committed: {node} took in #{number} {hash} of {producer} {how} at {t_ms} ms, \
                 before its commit was sent at {sent_ms} ms"
            )),
            Some(_) => {}
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invariants::fixtures::{block, committed, hash, seen};

    #[test]
    fn blocks_committed_then_seen_are_clean() {
        let entries = [
            committed("seq-0", 1, 0, 1000),
            seen("seq-1", "seq-0", 1, 0, 1040),
            committed("seq-0", 2, 0, 1250),
            // The coordinator's replay beat the answer back to the producer.
            seen("seq-2", "seq-0", 2, 0, 1245),
        ];
        assert_eq!(check(&entries), Vec::<String>::new());
    }

    #[test]
    fn a_block_inserted_without_a_commit_is_a_violation() {
        let violations = check(&[block("seq-0", 1, 0, 1000)]);
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert!(violations[0].starts_with("uncommitted block: seq-0 inserted #1"), "{violations:?}");
    }

    #[test]
    fn a_block_seen_that_nobody_committed_or_seen_before_its_commit_was_sent_is_a_violation() {
        let violations = check(&[seen("seq-1", "seq-0", 1, 0, 1000)]);
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert!(violations[0].contains("no conductor ever accepted it"), "{violations:?}");
        // Committed (sent at 1990 ms), but seq-1 had it at 1500 ms.
        let violations = check(&[seen("seq-1", "seq-0", 1, 0, 1500), committed("seq-0", 1, 0, 2000)]);
        let expected = format!(
            "seen before committed: seq-1 took in #1 {} of seq-0 over p2p at 1500 ms, before its commit was \
             sent at 1990 ms",
            hash(1, 0)
        );
        assert_eq!(violations, [expected]);
    }

    #[test]
    fn an_unpublished_commit_replayed_to_another_node_was_committed() {
        let entries = [
            LedgerEntry::UnpublishedCommit {
                chain: "devnet".into(),
                node: "seq-0".into(),
                number: 1,
                hash: hash(1, 0),
                parent: hash(0, 0),
                commit_sent_ms: 1000,
                t_ms: 1300,
            },
            seen("seq-1", "seq-0", 1, 0, 1500),
        ];
        assert_eq!(check(&entries), Vec::<String>::new());
    }

    fn commit_failed(number: u64, unanswered_sent_ms: Option<u64>) -> LedgerEntry {
        LedgerEntry::CommitFailed {
            chain: "devnet".into(),
            node: "seq-0".into(),
            number,
            hash: hash(number, 0),
            parent: hash(number - 1, 0),
            error: "no answer within 1000 ms".into(),
            t_ms: 2100,
            unanswered_sent_ms,
        }
    }

    #[test]
    fn a_commit_that_got_no_answer_may_have_been_accepted_and_replayed_but_a_refused_one_not() {
        // The coordinator made it durable and lost the answer in a restart, then replayed it.
        let replayed = [commit_failed(1, Some(1000)), seen("seq-1", "seq-0", 1, 0, 3000)];
        assert_eq!(check(&replayed), Vec::<String>::new());
        let refused = [commit_failed(1, None), seen("seq-1", "seq-0", 1, 0, 3000)];
        let violations = check(&refused);
        assert!(
            violations.len() == 1 && violations[0].contains("no conductor ever accepted it"),
            "{violations:?}"
        );
    }
}
