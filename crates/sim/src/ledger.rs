//! Ground truth: every sealed block, activation, re-org, fault and partition, in the order they
//! happened, every admin call with who sent it, and the invariant checker that reads it.
//!
//! The checker never trusts what any coordinator thinks: it looks only at which node sealed which
//! block when. It is incremental: every recorded entry updates a per-chain [`Tally`], so asking
//! for the invariants costs the same after a minute or after a day, and never stalls the
//! sequencers that record blocks under the same lock.

use alloy_primitives::B256;
use op_sim_api::{ChainInvariants, ConflictingBlocks, DoubleSequencing, LedgerEntry};
use std::{
    collections::{BTreeMap, HashMap, HashSet},
    io::Write,
    sync::{Arc, Mutex},
};
use tokio::time::Instant;

/// The running invariant state of one chain.
///
/// - unsafe re-org: two distinct blocks sealed at one height;
/// - double sequencing: two nodes whose sealing spans overlap, where a node's sealing span is the
///   time from its first to its last sealed block within one active interval;
/// - liveness figures: the longest gap between consecutively sealed blocks and the missed slots
///   (each gap counts `round(gap / block_time) - 1` missed slots).
#[derive(Debug, Default, Clone)]
pub struct Tally {
    blocks_sealed: u64,
    /// Every distinct block per height: one entry per height almost always.
    by_height: HashMap<u64, Vec<(String, B256)>>,
    /// Heights where two distinct blocks were sealed.
    conflicts: BTreeMap<u64, ()>,
    /// Per node, the span of its current run of seals (closed by its next (de)activation).
    open_spans: BTreeMap<String, (u64, u64)>,
    /// Finished sealing spans; one per activation that sealed anything, so few.
    closed_spans: Vec<(String, (u64, u64))>,
    /// The previous seal: its time and number.
    last_seal: Option<(u64, u64)>,
    /// Seal times are recorded in order; gaps are measured between consecutive seals.
    gaps: Vec<u64>,
    longest_gap_ms: u64,
    longest_gap_ended_at: Option<u64>,
    node_reorgs: u64,
}

impl Tally {
    /// Updates the tally with one entry of its chain.
    pub fn apply(&mut self, entry: &LedgerEntry) {
        match entry {
            LedgerEntry::Block { producer, number, hash, t_ms, .. } => {
                self.blocks_sealed += 1;
                let at_height = self.by_height.entry(*number).or_default();
                if !at_height.iter().any(|(_, known)| known == hash) {
                    at_height.push((producer.clone(), *hash));
                    if at_height.len() > 1 {
                        self.conflicts.insert(*number, ());
                    }
                }
                if let Some((previous, _)) = self.last_seal {
                    let gap = t_ms.saturating_sub(previous);
                    self.gaps.push(gap);
                    if gap > self.longest_gap_ms {
                        self.longest_gap_ms = gap;
                        self.longest_gap_ended_at = Some(*number);
                    }
                }
                self.last_seal = Some((*t_ms, *number));
                let span = self.open_spans.entry(producer.clone()).or_insert((*t_ms, *t_ms));
                span.1 = *t_ms;
            }
            LedgerEntry::Activated { node, .. } | LedgerEntry::Deactivated { node, .. } => {
                if let Some(span) = self.open_spans.remove(node) {
                    self.closed_spans.push((node.clone(), span));
                }
            }
            LedgerEntry::Reorg { .. } => self.node_reorgs += 1,
            LedgerEntry::Fault { .. }
            | LedgerEntry::Heal { .. }
            | LedgerEntry::Partition { .. }
            | LedgerEntry::AdminCall { .. }
            | LedgerEntry::CallerIsolation { .. }
            | LedgerEntry::CommitFailed { .. }
            | LedgerEntry::UnpublishedCommit { .. }
            | LedgerEntry::Seen { .. } => {}
        }
    }

    /// The invariant report so far.
    pub fn report(&self, chain: &str, block_time_ms: u64) -> ChainInvariants {
        let unsafe_reorgs = self
            .conflicts
            .keys()
            .map(|number| ConflictingBlocks { number: *number, blocks: self.by_height[number].clone() })
            .collect();
        let mut spans: Vec<(&str, (u64, u64))> = self
            .closed_spans
            .iter()
            .map(|(node, span)| (node.as_str(), *span))
            .chain(self.open_spans.iter().map(|(node, span)| (node.as_str(), *span)))
            .collect();
        spans.sort_by_key(|(node, span)| (span.0, *node));
        let mut double_sequencing = Vec::new();
        for (i, (first, first_span)) in spans.iter().enumerate() {
            for (second, second_span) in &spans[i + 1..] {
                if second_span.0 > first_span.1 {
                    break;
                }
                if first != second {
                    double_sequencing.push(DoubleSequencing {
                        first: (*first).to_owned(),
                        first_span_ms: *first_span,
                        second: (*second).to_owned(),
                        second_span_ms: *second_span,
                    });
                }
            }
        }
        let missed_slots = self
            .gaps
            .iter()
            .filter_map(|gap| (gap + block_time_ms / 2).checked_div(block_time_ms))
            .map(|slots| slots.saturating_sub(1))
            .sum();
        ChainInvariants {
            chain: chain.to_owned(),
            blocks_sealed: self.blocks_sealed,
            unsafe_reorgs,
            double_sequencing,
            node_reorgs: self.node_reorgs,
            longest_gap_ms: self.longest_gap_ms,
            longest_gap_ended_at: self.longest_gap_ended_at,
            missed_slots,
            block_time_ms,
            last_block_ms: self.last_seal.map(|(t_ms, _)| t_ms),
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    entries: Vec<LedgerEntry>,
    tallies: HashMap<String, Tally>,
    /// Blocks with a `seen` entry, by chain: only the first sighting is recorded.
    sighted: HashMap<String, HashSet<B256>>,
}

/// The append-only ground-truth record shared by every node of a simulator.
#[derive(Debug, Clone)]
pub struct Ledger {
    inner: Arc<Mutex<Inner>>,
    started_at: Instant,
}

impl Ledger {
    /// An empty ledger whose clock starts now.
    pub fn new() -> Self {
        Self { inner: Arc::default(), started_at: Instant::now() }
    }

    /// Milliseconds since the simulator started.
    pub fn now_ms(&self) -> u64 {
        self.ms_at(Instant::now())
    }

    /// `at` in the ledger's clock: milliseconds since the simulator started.
    pub fn ms_at(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.started_at).as_millis()).unwrap_or(u64::MAX)
    }

    /// Appends an entry and updates its chain's tally.
    pub fn record(&self, entry: LedgerEntry) {
        let mut inner = self.lock();
        inner.tallies.entry(entry.chain().to_owned()).or_default().apply(&entry);
        inner.entries.push(entry);
    }

    /// Appends a `seen` entry unless its block was seen already (by any node but its producer):
    /// the ledger keeps the first sighting of each block only. Other entries are appended as by
    /// [`Ledger::record`].
    pub fn record_first_sighting(&self, entry: LedgerEntry) {
        let mut inner = self.lock();
        if let LedgerEntry::Seen { chain, hash, .. } = &entry
            && !inner.sighted.entry(chain.clone()).or_default().insert(*hash)
        {
            return;
        }
        inner.tallies.entry(entry.chain().to_owned()).or_default().apply(&entry);
        inner.entries.push(entry);
    }

    /// Entries from index `from` on.
    pub fn entries_from(&self, from: usize) -> Vec<LedgerEntry> {
        let inner = self.lock();
        inner.entries.get(from..).map(<[_]>::to_vec).unwrap_or_default()
    }

    /// Number of entries so far.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// True when nothing was recorded yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes entries from index `from` on as JSON lines; returns the next index.
    pub fn write_jsonl(&self, from: usize, out: &mut impl Write) -> std::io::Result<usize> {
        let entries = self.entries_from(from);
        for entry in &entries {
            serde_json::to_writer(&mut *out, entry)?;
            out.write_all(b"\n")?;
        }
        Ok(from + entries.len())
    }

    /// The invariant report of `chain` with its block time.
    pub fn check_chain(&self, chain: &str, block_time_ms: u64) -> ChainInvariants {
        let inner = self.lock();
        match inner.tallies.get(chain) {
            Some(tally) => tally.report(chain, block_time_ms),
            None => Tally::default().report(chain, block_time_ms),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data: recover it.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Default for Ledger {
    fn default() -> Self {
        Self::new()
    }
}

/// Checks the invariants of one chain over ledger entries (which may hold other chains), e.g. a
/// ledger read back from a JSON-lines export. Same rules as the live tally.
pub fn check_invariants(chain: &str, block_time_ms: u64, entries: &[LedgerEntry]) -> ChainInvariants {
    let mut tally = Tally::default();
    for entry in entries.iter().filter(|entry| entry.chain() == chain) {
        tally.apply(entry);
    }
    tally.report(chain, block_time_ms)
}
