//! The one thread that writes the Raft log and vote, in the order openraft asked.
//!
//! `append` only queues its entries and returns: openraft goes on (a leader sends the entries to
//! its followers while its own copy is being written) and learns that they are on disk from the
//! flush callback. Every queued write that is waiting when the thread wakes goes into one redb
//! transaction, committed with `Durability::Immediate` (one fsync for all of them), and only then
//! is each caller told. A vote, a truncation or a purge waits for its own answer, and is ordered
//! after the appends queued before it.

use std::sync::{Arc, mpsc};

use openraft::storage::LogFlushed;
use redb::{Durability, WriteTransaction};
use tokio::sync::oneshot;

use super::{DbError, StoreDb};
use crate::types::TypeConfig;

type WriteFn = Box<dyn FnOnce(&WriteTransaction) -> Result<(), DbError> + Send>;

/// What the thread does once a batch holding this op is on disk.
enum Done {
    /// Entries up to `last` are durable: tell openraft and the log tail (`generation` says
    /// whether a truncation came in between).
    Flushed { callback: LogFlushed<TypeConfig>, last: u64, generation: u64 },
    /// A caller awaits the outcome.
    Answer(oneshot::Sender<Result<(), String>>),
}

struct Op {
    write: WriteFn,
    done: Done,
}

/// Told which entries are durable, to keep the tail from dropping any that are not.
pub(super) type OnFlushed = Box<dyn Fn(u64, u64) + Send>;

/// The queue in front of the writer thread. Cheap to clone; the thread ends when every clone is
/// dropped, and with it its handle on the database.
#[derive(Clone)]
pub(super) struct LogWriter {
    tx: mpsc::Sender<Op>,
}

impl std::fmt::Debug for LogWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogWriter")
    }
}

impl LogWriter {
    pub(super) fn spawn(db: Arc<StoreDb>, on_flushed: OnFlushed) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Op>();
        std::thread::Builder::new().name("opc-raft-log".into()).spawn(move || run(&db, &rx, &on_flushed))?;
        Ok(Self { tx })
    }

    /// Queues an append; `callback` fires once it is on disk (or failed).
    pub(super) fn append(
        &self,
        write: WriteFn,
        callback: LogFlushed<TypeConfig>,
        last: u64,
        generation: u64,
    ) -> Result<(), DbError> {
        self.tx
            .send(Op { write, done: Done::Flushed { callback, last, generation } })
            .map_err(|_| DbError::Task("the log writer has stopped".into()))
    }

    /// Queues `write` after everything queued before it and waits until it is on disk.
    pub(super) async fn write(&self, write: WriteFn) -> Result<(), DbError> {
        let (answer_tx, answer_rx) = oneshot::channel();
        self.tx
            .send(Op { write, done: Done::Answer(answer_tx) })
            .map_err(|_| DbError::Task("the log writer has stopped".into()))?;
        match answer_rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(DbError::Invalid(message)),
            Err(_) => Err(DbError::Task("the log writer stopped before answering".into())),
        }
    }
}

fn run(db: &StoreDb, rx: &mpsc::Receiver<Op>, on_flushed: &OnFlushed) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        batch.extend(rx.try_iter());
        let (writes, dones): (Vec<WriteFn>, Vec<Done>) =
            batch.into_iter().map(|op| (op.write, op.done)).unzip();
        let result = commit(db, writes).map_err(|e| e.to_string());
        for done in dones {
            match done {
                Done::Flushed { callback, last, generation } => match &result {
                    Ok(()) => {
                        on_flushed(last, generation);
                        callback.log_io_completed(Ok(()));
                    }
                    Err(e) => callback.log_io_completed(Err(std::io::Error::other(e.clone()))),
                },
                Done::Answer(tx) => {
                    let _ = tx.send(result.clone());
                }
            }
        }
    }
}

fn commit(db: &StoreDb, writes: Vec<WriteFn>) -> Result<(), DbError> {
    let mut txn = db.db.begin_write()?;
    txn.set_durability(Durability::Immediate);
    for write in writes {
        write(&txn)?;
    }
    txn.commit()?;
    Ok(())
}
