//! **Zero zombie blocks** (conductor mode): no block a node sealed after its deposition is ever
//! inserted into its own chain or seen by another node.
//!
//! **Deposition, on ground truth**: node `X` is deposed from the moment another node is activated
//! by `admin_startSequencer` (an `activated` entry with that cause) until an
//! `admin_startSequencer` call reaches `X` itself (an `admin_call` entry, by arrival): the
//! coordinator makes a node its leader only by starting it. Nothing here asks the coordinator.
//!
//! **Sealed after the deposition**: the commit the conductor accepted for the block was *sent*
//! after the deposition began: `commit_sent_ms` of its `block` entry (the try that published it)
//! or of its `unpublished_commit` entry; for a block with neither, which only a replay can have
//! spread, the earliest `unanswered_sent_ms` of its `commit_failed` entries (a try that got no
//! answer, which the conductor may have accepted). A node seals the same block again when it
//! builds on the same parent, so a failed try of a deposed node followed by the accepted try of
//! the same node, started again, is judged by the accepted one (seeds 70 and 114 of the first
//! 200-seed conductor sweep). The
//! conductor received it later still, after the successor was started, which the coordinator
//! does only once the deposition is written: a correct fence refused it. A commit sent before the
//! deposition and answered after it is not judged: the ledger cannot say on which side of the
//! deposition the conductor accepted it.
//!
//! **Check**, at the end of a run: every block sealed after its producer's deposition that has a
//! `block` entry (its producer inserted it) or a `seen` entry (another node took it in) is a
//! violation, one per producer and deposition.
//!
//! One allowance, adoption: a node the coordinator chooses while it is already active (started
//! behind its back at exactly the stopped hash) holds the fence from that choice on, a moment
//! before the start call that adopts it arrives (it answers "already running"). A block whose
//! commit was sent at most [`ADOPTION_GRACE_MS`] before a start call reached its producer, with
//! the producer active in between, is not a zombie.

use alloy_primitives::B256;
use op_sim::api::LedgerEntry;
use std::collections::{BTreeMap, BTreeSet};

/// How long before its adopting start call a node's commit may have been sent (see the module
/// docs): the coordinator writes its choice, then sends the call at once.
pub const ADOPTION_GRACE_MS: u64 = 250;

/// One committed block, as this check reads it.
#[derive(Debug, Clone, Copy)]
struct Commit<'a> {
    producer: &'a str,
    number: u64,
    sent_ms: u64,
}

/// Where a node stood, by ledger time: deposed from a time, sanctioned again from another.
#[derive(Debug, Default)]
struct Depositions {
    /// Per node, `(from_ms, until_ms)` spans in which it was deposed (`until_ms` None: to the end).
    spans: BTreeMap<String, Vec<(u64, Option<u64>)>>,
}

impl Depositions {
    /// The deposition spans of every node named in `entries`.
    fn of(entries: &[LedgerEntry]) -> Self {
        // (time, order, node, is_start_of_a_successor): a start call on X ends X's deposition; an
        // activation of Y by the coordinator deposes every other node.
        let mut marks: Vec<(u64, u8, &str)> = Vec::new();
        let mut nodes: BTreeSet<&str> = BTreeSet::new();
        for entry in entries {
            match entry {
                LedgerEntry::Activated { node, cause, t_ms, .. } if cause == "admin_startSequencer" => {
                    marks.push((*t_ms, 1, node));
                    nodes.insert(node);
                }
                LedgerEntry::AdminCall { node, method, t_ms, .. } if method == "admin_startSequencer" => {
                    marks.push((*t_ms, 0, node));
                    nodes.insert(node);
                }
                LedgerEntry::Block { producer: node, .. } | LedgerEntry::UnpublishedCommit { node, .. } => {
                    nodes.insert(node);
                }
                _ => {}
            }
        }
        // Stable: at equal times a call (0) counts before an activation (1).
        marks.sort_by_key(|(t_ms, order, _)| (*t_ms, *order));
        let mut depositions = Self::default();
        for (t_ms, order, node) in marks {
            if order == 0 {
                depositions.sanction(node, t_ms);
                continue;
            }
            for other in nodes.iter().filter(|other| **other != node) {
                let spans = depositions.spans.entry((*other).to_owned()).or_default();
                if spans.last().is_none_or(|(_, until)| until.is_some()) {
                    spans.push((t_ms, None));
                }
            }
        }
        depositions
    }

    fn sanction(&mut self, node: &str, t_ms: u64) {
        if let Some(open) = self.spans.get_mut(node).and_then(|spans| spans.last_mut())
            && open.1.is_none()
        {
            open.1 = Some(t_ms);
        }
    }

    /// The deposition in force for `node` at `t_ms` (strictly after it began), if any.
    fn at(&self, node: &str, t_ms: u64) -> Option<(u64, Option<u64>)> {
        self.spans
            .get(node)?
            .iter()
            .copied()
            .find(|(from, until)| *from < t_ms && until.is_none_or(|until| t_ms < until))
    }
}

/// The zombie blocks of `entries`, as violations.
pub fn check<'a>(entries: &'a [LedgerEntry]) -> Vec<String> {
    let depositions = Depositions::of(entries);
    let mut commits: BTreeMap<B256, Commit<'a>> = BTreeMap::new();
    let mut inserted: BTreeSet<B256> = BTreeSet::new();
    let mut seen: BTreeMap<B256, (&str, u64)> = BTreeMap::new();
    // An accepted try (known) wins over tries that may have been accepted (unanswered); among
    // tries of one kind, the earliest.
    let mut unanswered: BTreeMap<B256, Commit<'a>> = BTreeMap::new();
    let earliest = |map: &mut BTreeMap<B256, Commit<'a>>, hash: B256, found: Commit<'a>| {
        let kept = map.entry(hash).or_insert(found);
        kept.sent_ms = kept.sent_ms.min(found.sent_ms);
    };
    for entry in entries {
        match entry {
            LedgerEntry::Block { producer, number, hash, commit_sent_ms: Some(sent_ms), .. } => {
                earliest(&mut commits, *hash, Commit { producer, number: *number, sent_ms: *sent_ms });
                inserted.insert(*hash);
            }
            LedgerEntry::UnpublishedCommit { node, number, hash, commit_sent_ms: sent_ms, .. } => {
                earliest(&mut commits, *hash, Commit { producer: node, number: *number, sent_ms: *sent_ms });
            }
            LedgerEntry::CommitFailed { node, number, hash, unanswered_sent_ms: Some(sent_ms), .. } => {
                earliest(
                    &mut unanswered,
                    *hash,
                    Commit { producer: node, number: *number, sent_ms: *sent_ms },
                );
            }
            LedgerEntry::Seen { node, hash, t_ms, .. } => {
                seen.insert(*hash, (node, *t_ms));
            }
            _ => {}
        }
    }
    for (hash, commit) in unanswered {
        commits.entry(hash).or_insert(commit);
    }
    // Per producer and deposition: the zombies, in order.
    let mut zombies: BTreeMap<(&str, u64), Vec<String>> = BTreeMap::new();
    for (hash, commit) in &commits {
        let Some((deposed_ms, _)) = depositions.at(commit.producer, commit.sent_ms) else { continue };
        if adopted(entries, commit) {
            continue;
        }
        let mut where_ = Vec::new();
        if inserted.contains(hash) {
            where_.push(format!("inserted by {}", commit.producer));
        }
        if let Some((node, t_ms)) = seen.get(hash) {
            where_.push(format!("seen by {node} at {t_ms} ms"));
        }
        if !where_.is_empty() {
            zombies.entry((commit.producer, deposed_ms)).or_default().push(format!(
                "#{} {hash} (commit sent at {} ms; {})",
                commit.number,
                commit.sent_ms,
                where_.join(", ")
            ));
        }
    }
    zombies
        .into_iter()
        .map(|((producer, deposed_ms), blocks)| {
            format!(
                "zombie blocks: {producer}, deposed at {deposed_ms} ms (another node was started), sealed {} \
                 that {} published: {}",
                blocks.len(),
                if blocks.len() == 1 { "was" } else { "were" },
                blocks.join("; ")
            )
        })
        .collect()
}

/// True when a start call reached the commit's producer within [`ADOPTION_GRACE_MS`] after the
/// commit was sent, and the producer stayed active in between (see the module docs).
fn adopted(entries: &[LedgerEntry], commit: &Commit<'_>) -> bool {
    let window = commit.sent_ms..=commit.sent_ms + ADOPTION_GRACE_MS;
    let call = entries.iter().find_map(|entry| match entry {
        LedgerEntry::AdminCall { node, method, t_ms, .. }
            if node == commit.producer && method == "admin_startSequencer" && window.contains(t_ms) =>
        {
            Some(*t_ms)
        }
        _ => None,
    });
    let Some(call_ms) = call else { return false };
    !entries.iter().any(|entry| {
        matches!(entry, LedgerEntry::Deactivated { node, t_ms, .. }
            if node == commit.producer && (commit.sent_ms..=call_ms).contains(t_ms))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invariants::fixtures::{committed, hash, seen, start_call, started};

    /// seq-0 leads from 1000 ms; seq-1 is started at 5000 ms.
    fn fail_over() -> Vec<LedgerEntry> {
        let mut entries = vec![start_call("seq-0", 990), started("seq-0", 0, 1000)];
        entries.extend((1..=10).map(|n| committed("seq-0", n, 0, 1000 + n * 250)));
        entries.extend([start_call("seq-1", 4990), started("seq-1", 10, 5000)]);
        entries.extend((11..=14).map(|n| committed("seq-1", n, 0, 5000 + (n - 10) * 250)));
        entries
    }

    #[test]
    fn a_fail_over_whose_old_leader_published_nothing_after_it_is_clean() {
        assert_eq!(check(&fail_over()), Vec::<String>::new());
    }

    #[test]
    fn a_block_the_deposed_leader_committed_after_its_successor_started_is_a_zombie() {
        let mut entries = fail_over();
        // Its own chain took it, and seq-2 saw it.
        entries.push(committed("seq-0", 11, 1, 5300));
        entries.push(seen("seq-2", "seq-0", 11, 1, 5350));
        let violations = check(&entries);
        assert_eq!(violations.len(), 1, "{violations:?}");
        let expected = format!(
            "zombie blocks: seq-0, deposed at 5000 ms (another node was started), sealed 1 that was published: \
             #11 {} (commit sent at 5290 ms; inserted by seq-0, seen by seq-2 at 5350 ms)",
            hash(11, 1)
        );
        assert_eq!(violations[0], expected);
    }

    #[test]
    fn a_commit_sent_before_the_successor_started_is_not_judged() {
        let mut entries = fail_over();
        // Sent at 4995 ms, answered after seq-1 was started: which side of the deposition the
        // conductor accepted it on is unknown.
        entries.push(committed("seq-0", 11, 1, 5005));
        assert_eq!(check(&entries), Vec::<String>::new());
    }

    #[test]
    fn a_deposed_leader_started_again_publishes_legitimately_from_its_start_call() {
        let mut entries = fail_over();
        entries.extend([start_call("seq-0", 7990), started("seq-0", 14, 8000)]);
        entries.push(committed("seq-0", 15, 0, 8250));
        assert_eq!(check(&entries), Vec::<String>::new());
    }

    #[test]
    fn a_node_adopted_by_the_start_call_that_follows_its_commit_is_not_a_zombie() {
        let mut entries = fail_over();
        // seq-2, started behind the back, commits 20 ms before the coordinator's start call
        // reaches it (it answers "already running": no activation).
        entries.push(committed("seq-2", 15, 0, 6030));
        entries.push(start_call("seq-2", 6040));
        assert_eq!(check(&entries), Vec::<String>::new());
        // The same block a second before the call is a zombie.
        let mut early = fail_over();
        early.push(committed("seq-2", 15, 0, 6030));
        early.push(start_call("seq-2", 7040));
        assert_eq!(check(&early).len(), 1);
    }

    fn unanswered(number: u64, sent_ms: u64) -> LedgerEntry {
        LedgerEntry::CommitFailed {
            chain: "devnet".into(),
            node: "seq-0".into(),
            number,
            hash: hash(number, 1),
            parent: hash(number - 1, 0),
            error: "client error (Connect)".into(),
            t_ms: sent_ms + 50,
            unanswered_sent_ms: Some(sent_ms),
        }
    }

    #[test]
    fn a_block_a_deposed_node_failed_to_commit_and_sealed_again_once_restarted_is_judged_by_its_accepted_commit()
     {
        // Seed 70: deposed seq-0 tries #11 while the coordinator is down (no answer), is started
        // again, and seals the very same block on the same parent: accepted, published.
        let deposed = || {
            let mut entries = vec![start_call("seq-0", 990), started("seq-0", 0, 1000)];
            entries.extend((1..=10).map(|n| committed("seq-0", n, 0, 1000 + n * 250)));
            entries.extend([start_call("seq-1", 4990), started("seq-1", 10, 5000), unanswered(11, 5300)]);
            entries
        };
        let mut entries = deposed();
        entries.extend([start_call("seq-0", 5690), started("seq-0", 10, 5700)]);
        entries.push(committed("seq-0", 11, 1, 5720));
        entries.push(seen("seq-2", "seq-0", 11, 1, 5780));
        assert_eq!(check(&entries), Vec::<String>::new());
        // Without the accepted try, only a replay of the unanswered one can spread it: a zombie.
        let mut replayed = deposed();
        replayed.push(seen("seq-2", "seq-0", 11, 1, 5780));
        assert_eq!(check(&replayed).len(), 1);
    }

    #[test]
    fn an_unpublished_commit_is_a_zombie_only_once_someone_took_it_in() {
        let mut entries = fail_over();
        entries.push(LedgerEntry::UnpublishedCommit {
            chain: "devnet".into(),
            node: "seq-0".into(),
            number: 11,
            hash: hash(11, 1),
            parent: hash(10, 0),
            commit_sent_ms: 5200,
            t_ms: 5210,
        });
        assert_eq!(check(&entries), Vec::<String>::new());
        entries.push(seen("seq-1", "seq-0", 11, 1, 5400));
        let violations = check(&entries);
        assert!(
            violations.len() == 1 && violations[0].contains("seen by seq-1 at 5400 ms"),
            "{violations:?}"
        );
    }
}
