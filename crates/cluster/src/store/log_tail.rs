//! The newest Raft log entries, kept decoded in memory beside the store.
//!
//! openraft reads every entry back soon after appending it: the leader's replication streams read
//! it to send it to each follower, and the state machine worker reads it to apply it, on every
//! replica. Read from redb, each of those reads decodes the entry again, and a committed payload
//! of 128 KB costs a JSON pass each time. The tail keeps the entries as appended (a payload is
//! shared, not copied), so those reads cost a clone.
//!
//! The tail is always a contiguous suffix of the log: appends extend it, a truncation cuts it, a
//! purge trims it, and it drops its oldest entries past [`TAIL_MAX_BYTES`] or
//! [`TAIL_MAX_ENTRIES`], but never one the log writer has not yet put on disk: the tail is where
//! an entry is read from between `append` and its flush. A read that starts before the tail (a
//! follower far behind, a restart) goes to redb.

use std::collections::VecDeque;
use std::ops::Bound;

use openraft::EntryPayload;

use crate::types::{Command, Entry};

/// The most payload bytes the tail holds.
pub(super) const TAIL_MAX_BYTES: usize = 64 << 20;
/// The most entries the tail holds.
pub(super) const TAIL_MAX_ENTRIES: usize = 4096;

/// What an entry without a payload counts for against [`TAIL_MAX_BYTES`].
const ENTRY_OVERHEAD: usize = 256;

#[derive(Debug, Default)]
pub(super) struct LogTail {
    entries: VecDeque<Entry>,
    bytes: usize,
    /// The entries up to this index are on disk.
    flushed: Option<u64>,
    /// Counts truncations, so a flush that was queued before one does not vouch for the
    /// entries appended after it.
    generation: u64,
}

fn size_of(entry: &Entry) -> usize {
    match &entry.payload {
        EntryPayload::Normal(Command::Commit { envelope, .. }) => ENTRY_OVERHEAD + envelope.len_bytes(),
        _ => ENTRY_OVERHEAD,
    }
}

impl LogTail {
    fn first_index(&self) -> Option<u64> {
        self.entries.front().map(|e| e.log_id.index)
    }

    /// The id of the newest entry, when the tail holds any (it then ends the log).
    pub(super) fn last_log_id(&self) -> Option<crate::types::LogId> {
        self.entries.back().map(|e| e.log_id)
    }

    fn last_index(&self) -> Option<u64> {
        self.entries.back().map(|e| e.log_id.index)
    }

    /// Adds entries just handed to the store. Entries that do not follow the tail replace the
    /// part of it they overlap (or, with a gap, all of it).
    pub(super) fn append(&mut self, entries: &[Entry]) {
        let Some(first) = entries.first().map(|e| e.log_id.index) else { return };
        match self.last_index() {
            Some(last) if first == last + 1 => {}
            Some(_) if self.first_index().is_some_and(|f| first > f) && self.covers(first - 1) => {
                self.truncate(first)
            }
            _ => self.clear(),
        }
        for entry in entries {
            self.bytes += size_of(entry);
            self.entries.push_back(entry.clone());
        }
        self.trim();
    }

    /// The generation an append made now belongs to (see [`Self::flushed`]).
    pub(super) fn generation(&self) -> u64 {
        self.generation
    }

    /// The entries up to `last`, appended in `generation`, are on disk.
    pub(super) fn flushed(&mut self, last: u64, generation: u64) {
        if generation == self.generation {
            self.flushed = self.flushed.max(Some(last));
            self.trim();
        }
    }

    fn trim(&mut self) {
        while self.bytes > TAIL_MAX_BYTES || self.entries.len() > TAIL_MAX_ENTRIES {
            let on_disk = matches!((self.first_index(), self.flushed), (Some(first), Some(f)) if first <= f);
            if !on_disk {
                break;
            }
            self.pop_front();
        }
    }

    /// Drops the entries from `index` on.
    pub(super) fn truncate(&mut self, index: u64) {
        self.generation += 1;
        self.flushed = self.flushed.min(index.checked_sub(1));
        while self.last_index().is_some_and(|last| last >= index) {
            if let Some(entry) = self.entries.pop_back() {
                self.bytes -= size_of(&entry);
            }
        }
    }

    /// Drops the entries up to and including `index`.
    pub(super) fn purge(&mut self, index: u64) {
        while self.first_index().is_some_and(|first| first <= index) {
            self.pop_front();
        }
    }

    /// The entries in `range`, or `None` when it starts before the tail (read redb then).
    pub(super) fn get(&self, range: (Bound<u64>, Bound<u64>)) -> Option<Vec<Entry>> {
        let first = self.first_index()?;
        let start = match range.0 {
            Bound::Included(i) => i,
            Bound::Excluded(i) => i.checked_add(1)?,
            Bound::Unbounded => 0,
        };
        if start < first {
            return None;
        }
        let skip = usize::try_from(start - first).ok()?;
        let within = |index: u64| match range.1 {
            Bound::Included(end) => index <= end,
            Bound::Excluded(end) => index < end,
            Bound::Unbounded => true,
        };
        Some(self.entries.iter().skip(skip).take_while(|e| within(e.log_id.index)).cloned().collect())
    }

    fn covers(&self, index: u64) -> bool {
        self.first_index().is_some_and(|f| f <= index) && self.last_index().is_some_and(|l| index <= l)
    }

    fn pop_front(&mut self) {
        if let Some(entry) = self.entries.pop_front() {
            self.bytes -= size_of(&entry);
        }
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
        self.generation += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, LogId};

    fn entry(index: u64, term: u64) -> Entry {
        Entry { log_id: LogId::new(CommittedLeaderId::new(term, 1), index), payload: EntryPayload::Blank }
    }

    fn indexes(entries: Option<Vec<Entry>>) -> Option<Vec<(u64, u64)>> {
        entries.map(|e| e.iter().map(|e| (e.log_id.index, e.log_id.leader_id.term)).collect())
    }

    #[test]
    fn serves_only_ranges_that_start_inside_it() {
        let mut tail = LogTail::default();
        assert_eq!(tail.get((Bound::Included(0), Bound::Unbounded)), None);
        tail.append(&[entry(5, 1), entry(6, 1), entry(7, 1)]);
        assert_eq!(indexes(tail.get((Bound::Included(4), Bound::Unbounded))), None);
        assert_eq!(indexes(tail.get((Bound::Included(5), Bound::Excluded(7)))), Some(vec![(5, 1), (6, 1)]));
        assert_eq!(indexes(tail.get((Bound::Included(6), Bound::Included(9)))), Some(vec![(6, 1), (7, 1)]));
        assert_eq!(indexes(tail.get((Bound::Included(8), Bound::Unbounded))), Some(vec![]));
    }

    #[test]
    fn an_overlapping_append_replaces_the_conflicting_suffix() {
        let mut tail = LogTail::default();
        tail.append(&[entry(1, 1), entry(2, 1), entry(3, 1)]);
        tail.append(&[entry(2, 2)]);
        assert_eq!(indexes(tail.get((Bound::Included(1), Bound::Unbounded))), Some(vec![(1, 1), (2, 2)]));
        // A gap (entries the tail never saw) drops the tail: it must stay a suffix of the log.
        tail.append(&[entry(9, 2)]);
        assert_eq!(indexes(tail.get((Bound::Included(1), Bound::Unbounded))), None);
        assert_eq!(indexes(tail.get((Bound::Included(9), Bound::Unbounded))), Some(vec![(9, 2)]));
    }

    #[test]
    fn truncate_and_purge_keep_it_a_suffix() {
        let mut tail = LogTail::default();
        tail.append(&(1..=6).map(|i| entry(i, 1)).collect::<Vec<_>>());
        tail.truncate(5);
        tail.purge(2);
        assert_eq!(indexes(tail.get((Bound::Included(3), Bound::Unbounded))), Some(vec![(3, 1), (4, 1)]));
        assert_eq!(tail.get((Bound::Included(2), Bound::Unbounded)), None);
        tail.append(&[entry(5, 2)]);
        assert_eq!(indexes(tail.get((Bound::Included(4), Bound::Unbounded))), Some(vec![(4, 1), (5, 2)]));
    }

    #[test]
    fn drops_its_oldest_entries_past_the_bound_once_they_are_on_disk() {
        let mut tail = LogTail::default();
        let last = TAIL_MAX_ENTRIES as u64 + 10;
        tail.append(&(1..=last).map(|i| entry(i, 1)).collect::<Vec<_>>());
        // Not on disk yet: the tail is the only place to read them from.
        assert!(tail.get((Bound::Included(1), Bound::Unbounded)).is_some());
        // A flush from before a truncation does not count.
        let generation = tail.generation();
        tail.truncate(last + 1);
        tail.flushed(last, generation);
        assert!(tail.get((Bound::Included(1), Bound::Unbounded)).is_some());
        tail.flushed(5, tail.generation());
        assert_eq!(tail.get((Bound::Included(5), Bound::Unbounded)), None);
        assert!(tail.get((Bound::Included(6), Bound::Unbounded)).is_some());
        tail.flushed(last, tail.generation());
        assert_eq!(tail.get((Bound::Included(10), Bound::Unbounded)), None);
        assert_eq!(
            tail.get((Bound::Included(11), Bound::Unbounded)).map(|e| e.len()),
            Some(TAIL_MAX_ENTRIES)
        );
    }
}
