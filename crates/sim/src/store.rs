//! One node's view of the chain: every block it knows and its canonical (unsafe) chain.

use crate::block::Block;
use alloy_primitives::B256;
use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
};

/// How many canonical blocks a store keeps below its head; older ones are pruned so a long run
/// with hundreds of nodes keeps a bounded footprint. Re-orgs and ancestor sync never go this deep.
pub const RETAINED_BLOCKS: usize = 4096;

/// What happened when a block was offered to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportOutcome {
    /// The block extended the head.
    Extended,
    /// The head switched to another branch; `dropped` blocks of the old branch left the canonical
    /// chain.
    Reorged {
        /// The head before the switch.
        old_head: Arc<Block>,
        /// How many canonical blocks were replaced.
        dropped: u64,
    },
    /// Already known, or on a branch no longer than the head: kept but not adopted.
    Ignored,
    /// The parent is unknown: ancestors must be fetched first.
    MissingParent,
}

/// Blocks known to a node, indexed by hash, plus its canonical chain by number.
#[derive(Debug)]
pub struct BlockStore {
    by_hash: HashMap<B256, Arc<Block>>,
    /// Canonical chain; `canonical[i]` has number `base + i`.
    canonical: VecDeque<Arc<Block>>,
    base: u64,
}

impl BlockStore {
    /// A store holding only genesis.
    pub fn new(genesis: Arc<Block>) -> Self {
        let mut by_hash = HashMap::new();
        by_hash.insert(genesis.hash, genesis.clone());
        Self { by_hash, canonical: VecDeque::from([genesis.clone()]), base: genesis.number }
    }

    /// The unsafe head.
    pub fn head(&self) -> &Arc<Block> {
        // The canonical chain always holds at least one block.
        &self.canonical[self.canonical.len() - 1]
    }

    /// The canonical block at `number`, if retained.
    pub fn canonical_at(&self, number: u64) -> Option<&Arc<Block>> {
        let index = number.checked_sub(self.base)?;
        self.canonical.get(usize::try_from(index).ok()?)
    }

    /// Any known block by hash.
    pub fn get(&self, hash: &B256) -> Option<&Arc<Block>> {
        self.by_hash.get(hash)
    }

    /// True when the canonical chain holds `hash`.
    pub fn is_canonical(&self, hash: &B256) -> bool {
        self.by_hash
            .get(hash)
            .and_then(|block| self.canonical_at(block.number))
            .is_some_and(|canonical| canonical.hash == *hash)
    }

    /// Appends a block this node sealed on its own head, or forces a competing one as head (an
    /// active sequencer always adopts what it built).
    pub fn insert_own(&mut self, block: Arc<Block>) -> ImportOutcome {
        self.adopt(block)
    }

    /// Offers a block received over p2p. It is adopted when it extends the head or when its branch
    /// is longer than the canonical chain (the latest, longest branch wins, as op-node follows
    /// gossip).
    pub fn import(&mut self, block: Arc<Block>) -> ImportOutcome {
        if self.by_hash.contains_key(&block.hash) {
            return ImportOutcome::Ignored;
        }
        if !self.by_hash.contains_key(&block.parent_hash) {
            return ImportOutcome::MissingParent;
        }
        if block.number <= self.head().number {
            // A branch no longer than ours: remember it in case it grows, but keep our head.
            self.by_hash.insert(block.hash, block);
            return ImportOutcome::Ignored;
        }
        self.adopt(block)
    }

    fn adopt(&mut self, block: Arc<Block>) -> ImportOutcome {
        self.by_hash.insert(block.hash, block.clone());
        if block.parent_hash == self.head().hash {
            self.canonical.push_back(block);
            self.prune();
            return ImportOutcome::Extended;
        }
        // Walk the new branch back to the canonical chain.
        let mut branch = vec![block];
        while let Some(tip) = branch.last() {
            if self.is_canonical(&tip.parent_hash) {
                break;
            }
            match self.by_hash.get(&tip.parent_hash) {
                Some(parent) => branch.push(parent.clone()),
                // Fork point pruned away: rebuild from the branch alone.
                None => break,
            }
        }
        let old_head = self.head().clone();
        let fork_number = branch.last().map_or(0, |oldest| oldest.number);
        let keep = usize::try_from(fork_number.saturating_sub(self.base)).unwrap_or(usize::MAX);
        let dropped = (self.canonical.len().saturating_sub(keep)) as u64;
        self.canonical.truncate(keep);
        if self.canonical.is_empty() {
            self.base = fork_number;
        }
        self.canonical.extend(branch.into_iter().rev());
        self.prune();
        ImportOutcome::Reorged { old_head, dropped }
    }

    /// The chain of known blocks ending at `hash`, oldest first, stopping after `max` blocks or at
    /// a block `known` says the requester already has. Serves a peer's ancestor request.
    pub fn ancestors(&self, hash: B256, max: usize, known: impl Fn(&B256) -> bool) -> Vec<Arc<Block>> {
        let mut out = Vec::new();
        let mut cursor = hash;
        while out.len() < max {
            if known(&cursor) {
                break;
            }
            let Some(block) = self.by_hash.get(&cursor) else { break };
            out.push(block.clone());
            if block.number == 0 {
                break;
            }
            cursor = block.parent_hash;
        }
        out.reverse();
        out
    }

    fn prune(&mut self) {
        while self.canonical.len() > RETAINED_BLOCKS {
            if let Some(old) = self.canonical.pop_front() {
                self.base = old.number + 1;
            }
        }
        // Side branches are pruned with the canonical blocks below the retained window.
        if self.by_hash.len() > RETAINED_BLOCKS * 2 {
            let floor = self.base;
            self.by_hash.retain(|_, block| block.number >= floor);
        }
    }
}
