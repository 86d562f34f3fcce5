//! The Raft log and the vote: openraft's log storage over the store's writer thread and its
//! decoded tail.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, PoisonError};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, LogState, RaftLogReader};
use redb::{ReadableTable, WriteTransaction};

use super::log_tail::LogTail;
use super::log_writer::LogWriter;
use super::{DbError, KEY_LAST_PURGED, KEY_VOTE, LOG, META, StoreDb, decode, encode, storage_error};
use crate::types::{Entry, LogId, StorageError, TypeConfig, Vote};

/// The Raft log and vote. Cheap to clone: the clones are the log readers of replication tasks.
#[derive(Debug, Clone)]
pub(crate) struct LogStore {
    pub(super) db: Arc<StoreDb>,
    /// The newest entries, decoded (see [`log_tail`]). Updated before the disk, so a reader never
    /// finds the tail behind the file: an entry is readable from the moment `append` is called.
    pub(super) tail: Arc<std::sync::Mutex<LogTail>>,
    /// Writes the log and the vote, in order, off the Raft core's task.
    pub(super) writer: LogWriter,
}

impl LogStore {
    fn tail(&self) -> std::sync::MutexGuard<'_, LogTail> {
        self.tail.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn read_range(&self, range: (Bound<u64>, Bound<u64>)) -> Result<Vec<Entry>, DbError> {
        if let Some(entries) = self.tail().get(range) {
            return Ok(entries);
        }
        let txn = self.db.db.begin_read()?;
        let table = txn.open_table(LOG)?;
        let mut entries = Vec::new();
        for row in table.range::<u64>(range)? {
            let (key, value) = row?;
            entries.push(decode(|| format!("raft_log/{}", key.value()), value.value())?);
        }
        Ok(entries)
    }

    fn log_state(&self) -> Result<LogState<TypeConfig>, DbError> {
        let last_purged_log_id: Option<LogId> = self.db.read_meta(KEY_LAST_PURGED)?;
        let txn = self.db.db.begin_read()?;
        let table = txn.open_table(LOG)?;
        let last = match table.last()? {
            Some((key, value)) => {
                Some(decode::<Entry>(|| format!("raft_log/{}", key.value()), value.value())?.log_id)
            }
            None => None,
        };
        // Entries still on their way to disk are in the log already.
        let last = self.tail().last_log_id().or(last);
        Ok(LogState { last_purged_log_id, last_log_id: last.or(last_purged_log_id) })
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let bounds = (range.start_bound().cloned(), range.end_bound().cloned());
        self.read_range(bounds).map_err(|e| storage_error(ErrorSubject::Logs, ErrorVerb::Read, &e))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        self.log_state().map_err(|e| storage_error(ErrorSubject::Logs, ErrorVerb::Read, &e))
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let to_err = |e: DbError| storage_error(ErrorSubject::Vote, ErrorVerb::Write, &e);
        let bytes = encode("vote", vote).map_err(to_err)?;
        self.writer
            .write(Box::new(move |txn| {
                txn.open_table(META)?.insert(KEY_VOTE, bytes.as_slice())?;
                Ok(())
            }))
            .await
            .map_err(to_err)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.db.read_meta(KEY_VOTE).map_err(|e| storage_error(ErrorSubject::Vote, ErrorVerb::Read, &e))
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let to_err = |e: DbError| storage_error(ErrorSubject::Logs, ErrorVerb::Write, &e);
        let entries: Vec<Entry> = entries.into_iter().collect();
        let rows = entries
            .iter()
            .map(|entry| Ok((entry.log_id.index, encode("log entry", entry)?)))
            .collect::<Result<Vec<_>, DbError>>()
            .map_err(to_err)?;
        let Some(last) = entries.last().map(|e| e.log_id.index) else {
            callback.log_io_completed(Ok(()));
            return Ok(());
        };
        let generation = {
            let mut tail = self.tail();
            tail.append(&entries);
            tail.generation()
        };
        let write = Box::new(move |txn: &WriteTransaction| {
            let mut table = txn.open_table(LOG)?;
            for (index, bytes) in &rows {
                table.insert(*index, bytes.as_slice())?;
            }
            Ok(())
        });
        // Readable from the tail at once; on disk when the writer calls `callback`.
        self.writer.append(write, callback, last, generation).map_err(to_err)
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        tracing::debug!(from_index = log_id.index, "truncating conflicting log entries");
        self.tail().truncate(log_id.index);
        self.writer
            .write(Box::new(move |txn| {
                txn.open_table(LOG)?.retain_in(log_id.index.., |_, _| false)?;
                Ok(())
            }))
            .await
            .map_err(|e| storage_error(ErrorSubject::Logs, ErrorVerb::Delete, &e))
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        tracing::debug!(upto_index = log_id.index, "purging log entries covered by the snapshot");
        let to_err = |e: DbError| storage_error(ErrorSubject::Logs, ErrorVerb::Delete, &e);
        let bytes = encode("log id", &log_id).map_err(to_err)?;
        self.tail().purge(log_id.index);
        self.writer
            .write(Box::new(move |txn| {
                // Record the purge point first, in the same transaction, so the log never looks
                // like it has a hole at its start.
                txn.open_table(META)?.insert(KEY_LAST_PURGED, bytes.as_slice())?;
                txn.open_table(LOG)?.retain_in(..=log_id.index, |_, _| false)?;
                Ok(())
            }))
            .await
            .map_err(to_err)
    }
}
