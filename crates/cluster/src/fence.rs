//! The fence of one chain in conductor mode: who may commit, on which parent, and the last
//! committed payloads. Pure: no I/O, no clock. A standalone coordinator keeps it behind a lock
//! with a durable log; a Raft cluster keeps it in the replicated state machine, where every commit
//! is admitted at apply time, in log order with the chain's state changes (see `store.rs`).
//!
//! Who may commit follows the chain's persisted state, which the coordinator turns into a
//! [`Holding`]:
//!
//! | chain state (as last persisted)       | holder (answers `conductor_leader` true, may commit) |
//! |---------------------------------------|------------------------------------------------------|
//! | steady with leader `L` (paused or not)| `L` (pausing stops automation, not the chain)        |
//! | starting `T`                          | `T` (op-node asks before it starts, then commits)    |
//! | discovering, stopping, catching up, leaderless | nobody: every commit is refused             |
//!
//! A commit from the holder is accepted when its parent is the fence's *base*: the hash of the
//! last accepted payload, or, right after the holder changed, the hash it was started at (the
//! stopped hash). With no base known (a fresh chain adopted at start-up, nothing committed yet)
//! the holder's first payload is accepted on any parent and becomes the base.

use alloy_primitives::B256;
use opc_wire::conductor::{CommitRefusal, Envelope, PayloadHead};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// How many committed payloads, and how many bytes of them, a chain keeps for replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// At most this many payloads (at least 1).
    pub payloads: usize,
    /// At most this many bytes; the newest payload is kept even when it alone is larger.
    pub bytes: usize,
}

impl Default for Retention {
    /// The documented defaults of `conductor.keep_payloads` and `conductor.keep_bytes`.
    fn default() -> Self {
        Self { payloads: 16, bytes: 64 << 20 }
    }
}

/// Who may commit, as the chain's last persisted state says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holding {
    /// The node that may commit, if any.
    pub holder: Option<String>,
    /// The start in progress, while a node is being started.
    pub starting: Option<Starting>,
}

/// A node being started, and the hash it is started at (its first payload builds on it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Starting {
    /// The node.
    pub node: String,
    /// The hash it is started at, when known.
    pub at: Option<B256>,
}

/// The fence and the committed payloads of one chain.
#[derive(Debug, Clone, PartialEq)]
pub struct Fence {
    holding: Holding,
    base: Option<B256>,
    committed: VecDeque<Envelope>,
    committed_bytes: usize,
    retention: Retention,
}

/// The fence's state without its payloads: what the store keeps in one small row per chain.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FenceMeta {
    /// Who may commit.
    pub holding: Holding,
    /// The hash the next payload must build on.
    pub base: Option<B256>,
    /// The hashes of the kept payloads, oldest first.
    pub committed: Vec<B256>,
}

/// The whole fence as a snapshot carries it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FenceData {
    /// Who may commit, and on which base.
    pub meta: FenceMeta,
    /// The kept payloads, oldest first (their hashes are `meta.committed`).
    pub payloads: Vec<Envelope>,
}

impl Fence {
    /// A fence that lets nobody commit until the first holding is applied.
    pub fn new(retention: Retention) -> Self {
        Self {
            holding: Holding::default(),
            base: None,
            committed: VecDeque::new(),
            committed_bytes: 0,
            retention,
        }
    }

    /// A fence rebuilt from its state and its payloads (read back from a store or a snapshot).
    pub fn from_data(data: FenceData, retention: Retention) -> Self {
        let mut fence = Self::new(retention);
        for envelope in data.payloads {
            fence.push(envelope);
        }
        fence.holding = data.meta.holding;
        fence.base = data.meta.base;
        fence
    }

    /// The fence's state and payloads, for a snapshot.
    pub fn to_data(&self) -> FenceData {
        FenceData { meta: self.meta(), payloads: self.committed.iter().cloned().collect() }
    }

    /// The fence's state without its payloads.
    pub fn meta(&self) -> FenceMeta {
        FenceMeta {
            holding: self.holding.clone(),
            base: self.base,
            committed: self.committed.iter().map(|envelope| envelope.head().block_hash).collect(),
        }
    }

    /// Follows a newly persisted chain state: a node being started must build on the hash it is
    /// started at; a leader adopted as it was builds on the committed head.
    pub fn apply_holding(&mut self, holding: &Holding) {
        if let Some(starting) = &holding.starting
            && holding.starting != self.holding.starting
            && let Some(from) = starting.at
        {
            self.restart_from(from);
        }
        self.holding = holding.clone();
    }

    /// Whether `node` may sequence now.
    pub fn is_holder(&self, node: &str) -> bool {
        self.holder() == Some(node)
    }

    /// Who may commit, as last applied.
    pub fn holding(&self) -> &Holding {
        &self.holding
    }

    /// The node that may commit now.
    pub fn holder(&self) -> Option<&str> {
        self.holding.holder.as_deref()
    }

    /// A node is started at `from`: the chain continues there. Committed payloads after it (never
    /// published, or on a branch the network left) are forgotten, so a replay never posts a
    /// block beside the new leader's; if `from` is not among them, none of them leads there.
    fn restart_from(&mut self, from: B256) {
        self.base = Some(from);
        self.truncate_after(from);
    }

    /// Drops the kept payloads after the one with hash `hash` (all of them when it is not kept).
    fn truncate_after(&mut self, hash: B256) {
        let keep = self
            .committed
            .iter()
            .position(|envelope| envelope.head().block_hash == hash)
            .map_or(0, |at| at + 1);
        while self.committed.len() > keep {
            if let Some(dropped) = self.committed.pop_back() {
                self.committed_bytes -= dropped.len_bytes();
            }
        }
    }

    /// Why `node` may not commit a payload with `head`, or Ok when it may. The holder committing
    /// the committed head again is Ok (see [`Self::is_committed_head`]).
    pub fn admit(&self, node: &str, head: &PayloadHead) -> Result<(), CommitRefusal> {
        if !self.is_holder(node) && !planted_bug::admits_any_node() {
            return Err(CommitRefusal::NotLeader {
                node: node.to_owned(),
                leader: self.holding.holder.clone(),
            });
        }
        match self.base {
            Some(expected) if expected != head.parent_hash && expected != head.block_hash => {
                Err(CommitRefusal::WrongParent { expected, parent: head.parent_hash })
            }
            _ => Ok(()),
        }
    }

    /// True when `head` is the last committed payload: op-node retries a commit whose answer it
    /// did not get in time (its client tries twice), and refusing the retry of a payload that is
    /// already durable would make it drop a block the chain holds, then rebuild one at the same
    /// height that no commit can follow. The retry is answered Ok and changes nothing.
    pub fn is_committed_head(&self, head: &PayloadHead) -> bool {
        self.base == Some(head.block_hash)
    }

    /// Admits `envelope` from `node` and records it, or says why not.
    pub fn commit(&mut self, node: &str, envelope: Envelope) -> Result<(), CommitRefusal> {
        self.admit(node, envelope.head())?;
        self.accept(envelope);
        Ok(())
    }

    /// Records an admitted payload (after it was made durable), or one read back from a durable
    /// log at start-up: it is the new base. A payload whose parent is kept continues the chain
    /// there, so the kept payloads always form one chain, even when read back from a log that
    /// still holds blocks a restart left behind.
    pub fn accept(&mut self, envelope: Envelope) {
        if self.is_committed_head(envelope.head()) {
            return;
        }
        let parent = envelope.head().parent_hash;
        if self.committed.iter().any(|kept| kept.head().block_hash == parent) {
            self.truncate_after(parent);
        } else {
            self.truncate_after(B256::ZERO);
        }
        self.base = Some(envelope.head().block_hash);
        self.push(envelope);
    }

    fn push(&mut self, envelope: Envelope) {
        self.committed_bytes += envelope.len_bytes();
        self.committed.push_back(envelope);
        while self.committed.len() > 1
            && (self.committed.len() > self.retention.payloads.max(1)
                || self.committed_bytes > self.retention.bytes)
        {
            if let Some(dropped) = self.committed.pop_front() {
                self.committed_bytes -= dropped.len_bytes();
            }
        }
    }

    /// The last committed payload's head.
    pub fn head(&self) -> Option<PayloadHead> {
        self.committed.back().map(|envelope| *envelope.head())
    }

    /// The hash the next payload must build on, if known.
    pub fn base(&self) -> Option<B256> {
        self.base
    }

    /// The committed payloads after the one with hash `from`, oldest first: what a node whose
    /// head is `from` lacks. None when `from` is not among them (too far behind, or on another
    /// branch): replay cannot help it.
    pub fn after(&self, from: B256) -> Option<Vec<Envelope>> {
        if self.base == Some(from) {
            return Some(Vec::new());
        }
        let at = self.committed.iter().position(|envelope| envelope.head().block_hash == from)?;
        Some(self.committed.iter().skip(at + 1).cloned().collect())
    }

    /// True when `from` is a committed payload whose successors are all kept, so replay from it
    /// reaches the committed head.
    pub fn can_replay_from(&self, from: B256) -> bool {
        self.after(from).is_some()
    }

    /// The committed payloads kept, oldest first.
    pub fn committed(&self) -> impl Iterator<Item = &Envelope> {
        self.committed.iter()
    }

    /// Bytes of the committed payloads kept.
    pub fn committed_bytes(&self) -> usize {
        self.committed_bytes
    }
}

/// THE PLANTED-BUG HOOK of conductor mode, the only place the feature
/// `planted-bug-admit-any-commit` changes the coordinator: with it compiled in and the switch on,
/// [`Fence::admit`] skips its holder check, so a deposed leader's commit on the committed head is
/// accepted and its block published (a zombie block). Only op-chaos enables the feature, to prove
/// its runner catches that (`crates/chaos/tests/conductor_planted_bug.rs`); the switch is off
/// until a test turns it on, and without the feature it does not exist.
pub mod planted_bug {
    #[cfg(feature = "planted-bug-admit-any-commit")]
    static ADMIT_ANY_NODE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

    /// Turns the planted bug on or off, for every fence of this process.
    #[cfg(feature = "planted-bug-admit-any-commit")]
    pub fn set_admit_any_node(on: bool) {
        ADMIT_ANY_NODE.store(on, std::sync::atomic::Ordering::SeqCst);
    }

    /// True while the planted bug is on.
    pub(super) fn admits_any_node() -> bool {
        #[cfg(feature = "planted-bug-admit-any-commit")]
        let on = ADMIT_ANY_NODE.load(std::sync::atomic::Ordering::SeqCst);
        #[cfg(not(feature = "planted-bug-admit-any-commit"))]
        let on = false;
        on
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(number: u64, parent: B256) -> Envelope {
        let hash = B256::with_last_byte(number as u8);
        Envelope::from_json(&format!(
            r#"{{"executionPayload":{{"parentHash":"{parent}","blockHash":"{hash}","blockNumber":"{number:#x}","timestamp":"0x1"}}}}"#
        ))
        .expect("envelope")
    }

    fn hash(number: u64) -> B256 {
        B256::with_last_byte(number as u8)
    }

    fn steady(leader: &str) -> Holding {
        Holding { holder: Some(leader.to_owned()), starting: None }
    }

    fn starting(node: &str, at: B256) -> Holding {
        Holding {
            holder: Some(node.to_owned()),
            starting: Some(Starting { node: node.to_owned(), at: Some(at) }),
        }
    }

    const KEEP: Retention = Retention { payloads: 4, bytes: 1 << 20 };

    #[test]
    fn the_holder_committing_the_committed_head_again_is_answered_ok_and_changes_nothing() {
        let mut fence = Fence::new(KEEP);
        fence.apply_holding(&steady("a"));
        fence.commit("a", envelope(1, hash(0))).expect("first");
        fence.commit("a", envelope(2, hash(1))).expect("second");
        // op-node's retry of block 2, whose first answer it did not get in time.
        fence.commit("a", envelope(2, hash(1))).expect("the retry of the committed head");
        assert_eq!(fence.committed().count(), 2);
        assert_eq!(fence.base(), Some(hash(2)));
        // Only the head, and only from the holder.
        assert!(matches!(fence.commit("a", envelope(1, hash(0))), Err(CommitRefusal::WrongParent { .. })));
        assert!(matches!(fence.commit("b", envelope(2, hash(1))), Err(CommitRefusal::NotLeader { .. })));
        fence.commit("a", envelope(3, hash(2))).expect("the chain goes on");
    }

    #[test]
    fn only_the_holder_commits_and_only_on_the_base() {
        let mut fence = Fence::new(KEEP);
        fence.apply_holding(&steady("a"));
        // Adopted with nothing committed: the first payload sets the base.
        assert_eq!(fence.admit("a", envelope(5, hash(4)).head()), Ok(()));
        fence.accept(envelope(5, hash(4)));
        assert_eq!(fence.admit("a", envelope(6, hash(5)).head()), Ok(()));
        let wrong = fence.admit("a", envelope(6, hash(9)).head());
        assert_eq!(wrong, Err(CommitRefusal::WrongParent { expected: hash(5), parent: hash(9) }));
        let other = fence.admit("b", envelope(6, hash(5)).head());
        assert_eq!(other, Err(CommitRefusal::NotLeader { node: "b".into(), leader: Some("a".into()) }));
    }

    #[test]
    fn a_deposed_leader_is_refused_and_the_next_builds_on_the_stopped_hash() {
        let mut fence = Fence::new(KEEP);
        fence.apply_holding(&steady("a"));
        fence.accept(envelope(5, hash(4)));
        fence.apply_holding(&Holding::default());
        assert_eq!(fence.holder(), None);
        assert!(matches!(
            fence.admit("a", envelope(6, hash(5)).head()),
            Err(CommitRefusal::NotLeader { .. })
        ));
        fence.apply_holding(&starting("b", hash(5)));
        assert!(fence.is_holder("b"));
        assert_eq!(fence.admit("b", envelope(6, hash(5)).head()), Ok(()));
        fence.accept(envelope(6, hash(5)));
        fence.apply_holding(&steady("b"));
        // Steady after the start: the base stays the last commit, not the old stopped hash.
        assert_eq!(fence.admit("b", envelope(7, hash(6)).head()), Ok(()));
    }

    #[test]
    fn a_leader_started_at_another_hash_builds_on_that_hash() {
        let mut fence = Fence::new(KEEP);
        fence.apply_holding(&steady("a"));
        fence.accept(envelope(5, hash(4)));
        // A restart at a head the probes reported (not the committed one, e.g. a converged head).
        fence.apply_holding(&starting("a", hash(9)));
        assert_eq!(fence.base(), Some(hash(9)));
        assert!(fence.admit("a", envelope(6, hash(5)).head()).is_err());
        assert_eq!(fence.committed().count(), 0, "nothing kept leads to 9");
    }

    #[test]
    fn a_start_below_the_committed_head_forgets_the_payloads_above_it() {
        let mut fence = Fence::new(KEEP);
        fence.apply_holding(&steady("a"));
        for number in 1..=4 {
            fence.accept(envelope(number, hash(number - 1)));
        }
        // Block 4 was committed but never published; the network converged on 3.
        fence.apply_holding(&starting("b", hash(3)));
        let kept: Vec<u64> = fence.committed().map(|envelope| envelope.head().number).collect();
        assert_eq!(kept, [1, 2, 3]);
        assert_eq!(fence.after(hash(2)).map(|payloads| payloads.len()), Some(1));
    }

    #[test]
    fn the_kept_payloads_are_bounded_by_count_and_bytes_and_replay_from_any_of_them() {
        let mut fence = Fence::new(KEEP);
        fence.apply_holding(&steady("a"));
        for number in 1..=6 {
            fence.accept(envelope(number, hash(number - 1)));
        }
        let kept: Vec<u64> = fence.committed().map(|envelope| envelope.head().number).collect();
        assert_eq!(kept, [3, 4, 5, 6]);
        let replay: Vec<u64> =
            fence.after(hash(4)).expect("kept").iter().map(|envelope| envelope.head().number).collect();
        assert_eq!(replay, [5, 6]);
        assert_eq!(fence.after(hash(6)).map(|payloads| payloads.len()), Some(0));
        assert!(!fence.can_replay_from(hash(1)), "older than what is kept");
        let one = envelope(7, hash(6)).len_bytes();
        let mut small = Fence::new(Retention { payloads: 16, bytes: one * 2 });
        small.apply_holding(&steady("a"));
        for number in 1..=5 {
            small.accept(envelope(number, hash(number - 1)));
        }
        assert_eq!(small.committed().count(), 2);
        assert!(small.committed_bytes() <= one * 2);
    }

    #[test]
    fn payloads_read_back_from_a_log_with_a_forgotten_block_form_one_chain() {
        let mut fence = Fence::new(KEEP);
        // The log holds 1..4, then the chain restarted at 3 and continued with 4' and 5'.
        for number in 1..=4 {
            fence.accept(envelope(number, hash(number - 1)));
        }
        let other = |number: u64, parent: B256| {
            let hash = B256::with_last_byte(0x80 | number as u8);
            Envelope::from_json(&format!(
                r#"{{"executionPayload":{{"parentHash":"{parent}","blockHash":"{hash}","blockNumber":"{number:#x}","timestamp":"0x1"}}}}"#
            ))
            .expect("envelope")
        };
        let four = other(4, hash(3));
        fence.accept(four.clone());
        fence.accept(other(5, four.head().block_hash));
        let kept: Vec<B256> = fence.committed().map(|envelope| envelope.head().block_hash).collect();
        assert_eq!(kept, [hash(2), hash(3), four.head().block_hash, B256::with_last_byte(0x85)]);
        let replay = fence.after(hash(3)).expect("kept");
        assert_eq!(replay.first(), Some(&four), "the forgotten block 4 is never replayed");
    }

    #[test]
    fn a_fence_survives_its_data_form() {
        let mut fence = Fence::new(KEEP);
        fence.apply_holding(&starting("a", hash(2)));
        fence.accept(envelope(3, hash(2)));
        let json = serde_json::to_string(&fence.to_data()).expect("encode");
        let back = Fence::from_data(serde_json::from_str(&json).expect("decode"), KEEP);
        assert_eq!(back, fence);
    }
}
