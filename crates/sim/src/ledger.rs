//! Ground truth: every sealed block, activation, re-org, fault and partition, in the order they
//! happened, and the invariant checker that reads it.
//!
//! The checker never trusts what any coordinator thinks: it looks only at which node sealed which
//! block when.

use opc_wire::sim::{ChainInvariants, ConflictingBlocks, DoubleSequencing, LedgerEntry};
use std::{
    collections::{BTreeMap, HashMap},
    io::Write,
    sync::{Arc, Mutex},
};
use tokio::time::Instant;

/// The append-only ground-truth record shared by every node of a simulator.
#[derive(Debug, Clone)]
pub struct Ledger {
    inner: Arc<Mutex<Vec<LedgerEntry>>>,
    started_at: Instant,
}

impl Ledger {
    /// An empty ledger whose clock starts now.
    pub fn new() -> Self {
        Self { inner: Arc::default(), started_at: Instant::now() }
    }

    /// Milliseconds since the simulator started.
    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.started_at.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Appends an entry.
    pub fn record(&self, entry: LedgerEntry) {
        self.lock().push(entry);
    }

    /// Entries from index `from` on.
    pub fn entries_from(&self, from: usize) -> Vec<LedgerEntry> {
        let entries = self.lock();
        entries.get(from..).map(<[_]>::to_vec).unwrap_or_default()
    }

    /// Number of entries so far.
    pub fn len(&self) -> usize {
        self.lock().len()
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
        check_invariants(chain, block_time_ms, &self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<LedgerEntry>> {
        // A panic while holding the lock leaves a consistent Vec: recover it.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Default for Ledger {
    fn default() -> Self {
        Self::new()
    }
}

/// Checks the safety invariants of one chain over ledger entries (which may hold other chains).
///
/// - unsafe re-org: two distinct blocks sealed at one height;
/// - double sequencing: two nodes whose sealing spans overlap, where a node's sealing span is the
///   time from its first to its last sealed block within one active interval;
/// - liveness figures: the longest gap between consecutively sealed blocks and the missed slots
///   (each gap counts `round(gap / block_time) - 1` missed slots).
pub fn check_invariants(chain: &str, block_time_ms: u64, entries: &[LedgerEntry]) -> ChainInvariants {
    let mut report = ChainInvariants { chain: chain.to_owned(), block_time_ms, ..ChainInvariants::default() };
    let mut by_height: BTreeMap<u64, Vec<(String, alloy_primitives::B256)>> = BTreeMap::new();
    let mut seal_times = Vec::new();
    // Per node: the current open span (first, last seal) and its closed spans.
    let mut open_spans: HashMap<&str, Option<(u64, u64)>> = HashMap::new();
    let mut spans: Vec<(&str, (u64, u64))> = Vec::new();

    for entry in entries.iter().filter(|entry| entry.chain() == chain) {
        match entry {
            LedgerEntry::Block { producer, number, hash, t_ms, .. } => {
                report.blocks_sealed += 1;
                let at_height = by_height.entry(*number).or_default();
                if !at_height.iter().any(|(_, known)| known == hash) {
                    at_height.push((producer.clone(), *hash));
                }
                seal_times.push((*t_ms, *number));
                let span = open_spans.entry(producer.as_str()).or_default();
                *span = Some(span.map_or((*t_ms, *t_ms), |(first, _)| (first, *t_ms)));
            }
            LedgerEntry::Deactivated { node, .. } | LedgerEntry::Activated { node, .. } => {
                if let Some(Some(span)) = open_spans.remove(node.as_str()) {
                    spans.push((node.as_str(), span));
                }
            }
            LedgerEntry::Reorg { .. } => report.node_reorgs += 1,
            LedgerEntry::Fault { .. } | LedgerEntry::Heal { .. } | LedgerEntry::Partition { .. } => {}
        }
    }
    spans.extend(open_spans.into_iter().filter_map(|(node, span)| Some((node, span?))));
    spans.sort_by_key(|(node, span)| (span.0, *node));

    report.unsafe_reorgs = by_height
        .into_iter()
        .filter(|(_, blocks)| blocks.len() > 1)
        .map(|(number, blocks)| ConflictingBlocks { number, blocks })
        .collect();

    for (i, (first, first_span)) in spans.iter().enumerate() {
        for (second, second_span) in &spans[i + 1..] {
            if second_span.0 > first_span.1 {
                break;
            }
            if first != second {
                report.double_sequencing.push(DoubleSequencing {
                    first: (*first).to_owned(),
                    first_span_ms: *first_span,
                    second: (*second).to_owned(),
                    second_span_ms: *second_span,
                });
            }
        }
    }

    seal_times.sort_unstable();
    for pair in seal_times.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        if gap > report.longest_gap_ms {
            report.longest_gap_ms = gap;
            report.longest_gap_ended_at = Some(pair[1].1);
        }
        // No block time configured: no slots to miss.
        if let Some(slots) = (gap + block_time_ms / 2).checked_div(block_time_ms) {
            report.missed_slots += slots.saturating_sub(1);
        }
    }
    report
}
