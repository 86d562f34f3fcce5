//! The on-disk store: one redb file holding the Raft log, the vote, the state machine and the
//! current snapshot.
//!
//! | table       | key                                   | value (JSON)                        |
//! |-------------|---------------------------------------|-------------------------------------|
//! | `raft_meta` | `format_version`                      | `u64`, [`FORMAT_VERSION`]           |
//! | `raft_meta` | `vote`, `last_purged_log_id`          | `Vote`, `LogId`                     |
//! | `raft_log`  | log index (`u64`)                     | `Entry`                             |
//! | `sm_meta`   | `last_applied`, `last_membership`     | `LogId`, `StoredMembership`         |
//! | `sm_chains` | chain name                            | the chain's opaque state            |
//! | `sm_fences` | chain name                            | its fence without payloads, `FenceMeta` |
//! | `sm_payloads` | `<chain>/<block hash>`              | where a kept payload is: `{log_index}` |
//! | `snapshot`  | `current`                             | `{meta, data}` of the last snapshot |
//!
//! The log and the vote are written by one thread ([`log_writer`]) in the order openraft asks:
//! every write waiting when it wakes goes into one redb transaction committed with
//! [`Durability::Immediate`] (one fsync), and only then is openraft told (the append callback,
//! `save_vote`'s return). `append` itself only queues, so the Raft core goes on while the entries
//! are written: a leader sends them to its followers meanwhile. Until they are on disk they are
//! read from the log tail ([`log_tail`]), which also spares openraft's readers (replication,
//! apply) a decode of each entry they read back.
//!
//! `apply` commits each batch the same way (`Durability::Immediate`) before it returns, so after a
//! crash the state machine is never behind what it acknowledged, and a replica restarted from its
//! data dir answers with the state it had (openraft documents `save_committed` as optional then;
//! the committed index is not persisted). The batch is small: a kept payload's row names the log
//! entry that holds it (see `fence_rows`).
//!
//! A commit changes one small `sm_fences` row and adds one `sm_payloads` row (and drops the
//! rows the fence no longer keeps), so its cost does not grow with the payloads kept. Stores
//! written before conductor mode have neither table; they read as no fences.
//!
//! Opening decodes everything once (every log entry, every chain, the snapshot), so a damaged
//! file stops the replica at start with a message naming the file, instead of a blank start or
//! a fatal error minutes later.

use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use openraft::storage::RaftStateMachine;
use openraft::{AnyError, EntryPayload, ErrorSubject, ErrorVerb, RaftSnapshotBuilder, StorageIOError};
use redb::{Database, Durability, ReadableTable, TableDefinition, WriteTransaction};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, oneshot};

use crate::error::ClusterError;
use crate::fence::{Fence, FenceData, Retention};
use crate::types::{
    Applied, ChainStates, Command, Entry, LogId, Snapshot, SnapshotData, SnapshotMeta, StorageError,
    StoredMembership, TypeConfig, Vote,
};
use opc_wire::conductor::CommitRefusal;
use std::collections::{BTreeMap, BTreeSet};

mod fence_rows;
mod log_store;
mod log_tail;
mod log_writer;
use fence_rows::{FenceRows, PayloadSources, load_fences};
pub(crate) use log_store::LogStore;
use log_tail::LogTail;
use log_writer::LogWriter;

/// File name of the store inside the data dir.
pub const STORE_FILE: &str = "cluster.redb";

/// Layout version of the tables above. Bump it (and teach `open` to migrate) on any change a
/// previous build could misread. Version 2: `sm_payloads` rows name the log entry of a payload
/// instead of holding it; version 1 stores read as they are and are marked version 2 on opening.
pub const FORMAT_VERSION: u64 = 2;

/// The oldest layout this build reads.
const OLDEST_READABLE_VERSION: u64 = 1;

const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("raft_meta");
const LOG: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("raft_log");
const SM_META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("sm_meta");
const SM_CHAINS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("sm_chains");
const SNAPSHOT: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("snapshot");
use fence_rows::{SM_FENCES, SM_PAYLOADS};

const KEY_FORMAT_VERSION: &str = "format_version";
const KEY_VOTE: &str = "vote";
const KEY_LAST_PURGED: &str = "last_purged_log_id";
const KEY_LAST_APPLIED: &str = "last_applied";
const KEY_LAST_MEMBERSHIP: &str = "last_membership";
const KEY_CURRENT_SNAPSHOT: &str = "current";

/// A failure inside the store, before it is mapped to openraft's or our own error type.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DbError {
    /// Boxed: redb's error is large and this travels through every `Result` here.
    #[error(transparent)]
    Redb(Box<redb::Error>),
    #[error("cannot decode {what}: {source}")]
    Decode { what: String, source: serde_json::Error },
    #[error("cannot encode {what}: {source}")]
    Encode { what: &'static str, source: serde_json::Error },
    #[error("{0}")]
    Invalid(String),
    #[error("store task did not finish: {0}")]
    Task(String),
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for DbError {
            fn from(e: $t) -> Self {
                DbError::Redb(Box::new(e.into()))
            }
        }
    )*};
}
from_redb!(redb::Error, redb::TransactionError, redb::TableError, redb::StorageError, redb::CommitError);

fn encode<T: Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>, DbError> {
    serde_json::to_vec(value).map_err(|source| DbError::Encode { what, source })
}

fn decode<T: DeserializeOwned>(what: impl FnOnce() -> String, bytes: &[u8]) -> Result<T, DbError> {
    serde_json::from_slice(bytes).map_err(|source| DbError::Decode { what: what(), source })
}

fn storage_error(subject: ErrorSubject<u64>, verb: ErrorVerb, e: &DbError) -> StorageError {
    StorageIOError::new(subject, verb, AnyError::new(e)).into()
}

/// The open database. Dropping the last handle closes the file and then fires `closed_tx`, which
/// `Cluster::shutdown` awaits so the same data dir can be reopened at once.
#[derive(Debug)]
pub(crate) struct StoreDb {
    // Field order matters: `db` is dropped (file closed, lock released) before `_closed_tx`.
    db: Database,
    _closed_tx: oneshot::Sender<()>,
}

impl StoreDb {
    /// Runs `f` in one write transaction committed with `Durability::Immediate`, on the blocking
    /// pool so an fsync never stalls a runtime worker.
    async fn write<T, F>(self: &Arc<Self>, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTransaction) -> Result<T, DbError> + Send + 'static,
    {
        let store = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let mut txn = store.db.begin_write()?;
            txn.set_durability(Durability::Immediate);
            let out = f(&txn)?;
            txn.commit()?;
            Ok(out)
        })
        .await
        .map_err(|e| DbError::Task(e.to_string()))?
    }

    fn read_meta<T: DeserializeOwned>(&self, key: &'static str) -> Result<Option<T>, DbError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(META)?;
        let value = table.get(key)?;
        value.map(|v| decode(|| format!("raft_meta/{key}"), v.value())).transpose()
    }
}

/// The state machine as applied so far, shared between the Raft state machine (writer) and the
/// `Cluster` facade (readers). Guarded by a std lock that is never held across an await.
#[derive(Debug, Default, Clone)]
pub(crate) struct AppliedState {
    pub(crate) chains: ChainStates,
    /// The fences of chains in conductor mode.
    pub(crate) fences: BTreeMap<String, Fence>,
    pub(crate) last_applied: Option<LogId>,
    pub(crate) last_membership: StoredMembership,
}

pub(crate) type SharedApplied = Arc<RwLock<AppliedState>>;

/// A snapshot as stored in the `snapshot` table and kept in memory for sending.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    data: ChainStates,
    #[serde(default)]
    fences: BTreeMap<String, FenceData>,
}

impl StoredSnapshot {
    fn new(meta: SnapshotMeta, data: SnapshotData) -> Self {
        Self { meta, data: data.chains, fences: data.fences }
    }

    fn data(&self) -> SnapshotData {
        SnapshotData { chains: self.data.clone(), fences: self.fences.clone() }
    }
}

/// Everything `open` hands to `Cluster::start`.
#[derive(Debug)]
pub(crate) struct OpenedStore {
    pub(crate) log_store: LogStore,
    pub(crate) state_machine: StateMachineStore,
    pub(crate) applied: SharedApplied,
    /// No vote, no log, nothing applied: the only state in which `initialize` may be called.
    pub(crate) pristine: bool,
    /// Resolves (with an error) once the database file is closed.
    pub(crate) closed_rx: oneshot::Receiver<()>,
    /// Bytes of committed payloads applied since the last snapshot (see `Cluster::start`).
    pub(crate) unsnapshotted_bytes: Arc<AtomicU64>,
}

/// Opens (or creates) the store in `data_dir` and loads it, checking every record decodes.
/// Blocking: call it from `spawn_blocking`.
pub(crate) fn open(data_dir: &Path, retention: Retention) -> Result<OpenedStore, ClusterError> {
    let path = data_dir.join(STORE_FILE);
    std::fs::create_dir_all(data_dir)
        .map_err(|source| ClusterError::DataDir { path: data_dir.to_owned(), source })?;

    let db = match Database::create(&path) {
        Ok(db) => db,
        Err(redb::DatabaseError::DatabaseAlreadyOpen) => return Err(ClusterError::StoreInUse { path }),
        // Not damage: permissions, a missing mount, a full disk. Say so instead of "corrupt".
        Err(redb::DatabaseError::Storage(redb::StorageError::Io(source)))
            if !matches!(
                source.kind(),
                std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof
            ) =>
        {
            return Err(ClusterError::StoreIo { path, source });
        }
        Err(e) => {
            return Err(ClusterError::CorruptStore {
                path,
                problem: format!("not a readable redb database ({e})"),
            });
        }
    };
    let corrupt = |problem: String| ClusterError::CorruptStore { path: path.clone(), problem };

    let fresh = {
        let txn = db.begin_read().map_err(|e| corrupt(e.to_string()))?;
        let tables = txn.list_tables().map_err(|e| corrupt(e.to_string()))?.count();
        match txn.open_table(META) {
            Ok(_) => false,
            Err(redb::TableError::TableDoesNotExist(_)) if tables == 0 => true,
            Err(redb::TableError::TableDoesNotExist(_)) => {
                return Err(corrupt(format!(
                    "{tables} table(s) but no raft_meta table with a format version"
                )));
            }
            Err(e) => return Err(corrupt(format!("table raft_meta: {e}"))),
        }
    };
    if fresh {
        create_tables(&db).map_err(|e| corrupt(format!("cannot initialize an empty store: {e}")))?;
    }

    let loaded = load(&db, retention).map_err(|e| corrupt(e.to_string()))?;
    // Every older layout this build reads is also one it writes into (see FORMAT_VERSION).
    mark_format_version(&db).map_err(|e| corrupt(format!("cannot record the format version: {e}")))?;
    let pristine = loaded.vote.is_none()
        && loaded.last_log_id.is_none()
        && loaded.last_purged.is_none()
        && loaded.applied.last_applied.is_none();
    tracing::info!(
        path = %path.display(),
        fresh,
        pristine,
        last_log_index = loaded.last_log_id.map(|l| l.index),
        last_applied_index = loaded.applied.last_applied.map(|l| l.index),
        chains = loaded.applied.chains.len(),
        "opened cluster store"
    );

    let (closed_tx, closed_rx) = oneshot::channel();
    let db = Arc::new(StoreDb { db, _closed_tx: closed_tx });
    let applied = Arc::new(RwLock::new(loaded.applied));
    let state_machine = StateMachineStore {
        db: Arc::clone(&db),
        applied: Arc::clone(&applied),
        snapshot: Arc::new(Mutex::new(loaded.snapshot)),
        snapshot_seq: Arc::new(AtomicU64::new(0)),
        retention,
        unsnapshotted_bytes: Arc::new(AtomicU64::new(0)),
    };
    let unsnapshotted_bytes = Arc::clone(&state_machine.unsnapshotted_bytes);
    let tail: Arc<std::sync::Mutex<LogTail>> = Arc::default();
    let flushed_tail = Arc::clone(&tail);
    let on_flushed = Box::new(move |last, generation| {
        flushed_tail.lock().unwrap_or_else(PoisonError::into_inner).flushed(last, generation);
    });
    let writer = LogWriter::spawn(Arc::clone(&db), on_flushed)
        .map_err(|source| ClusterError::StoreIo { path: path.clone(), source })?;
    Ok(OpenedStore {
        log_store: LogStore { db, tail, writer },
        state_machine,
        applied,
        pristine,
        closed_rx,
        unsnapshotted_bytes,
    })
}

fn mark_format_version(db: &Database) -> Result<(), DbError> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate);
    {
        let mut meta = txn.open_table(META)?;
        let current = meta.get(KEY_FORMAT_VERSION)?.map(|v| v.value().to_vec());
        let wanted = encode("format version", &FORMAT_VERSION)?;
        if current.as_deref() != Some(wanted.as_slice()) {
            meta.insert(KEY_FORMAT_VERSION, wanted.as_slice())?;
        }
    }
    txn.commit()?;
    Ok(())
}

fn create_tables(db: &Database) -> Result<(), DbError> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate);
    {
        let mut meta = txn.open_table(META)?;
        meta.insert(KEY_FORMAT_VERSION, encode("format version", &FORMAT_VERSION)?.as_slice())?;
        txn.open_table(LOG)?;
        txn.open_table(SM_META)?;
        txn.open_table(SM_CHAINS)?;
        txn.open_table(SNAPSHOT)?;
    }
    txn.commit()?;
    Ok(())
}

struct Loaded {
    vote: Option<Vote>,
    last_purged: Option<LogId>,
    last_log_id: Option<LogId>,
    applied: AppliedState,
    snapshot: Option<StoredSnapshot>,
}

fn load(db: &Database, retention: Retention) -> Result<Loaded, DbError> {
    let txn = db.begin_read()?;

    let meta = txn.open_table(META)?;
    let version: u64 = match meta.get(KEY_FORMAT_VERSION)? {
        Some(v) => decode(|| "raft_meta/format_version".to_owned(), v.value())?,
        None => return Err(DbError::Invalid("raft_meta has no format_version".to_owned())),
    };
    if !(OLDEST_READABLE_VERSION..=FORMAT_VERSION).contains(&version) {
        return Err(DbError::Invalid(format!(
            "written in format version {version}, this build reads versions \
             {OLDEST_READABLE_VERSION} to {FORMAT_VERSION}"
        )));
    }
    let vote: Option<Vote> =
        meta.get(KEY_VOTE)?.map(|v| decode(|| "raft_meta/vote".to_owned(), v.value())).transpose()?;
    let last_purged: Option<LogId> = meta
        .get(KEY_LAST_PURGED)?
        .map(|v| decode(|| "raft_meta/last_purged_log_id".to_owned(), v.value()))
        .transpose()?;

    let log = txn.open_table(LOG)?;
    let mut last_log_id = last_purged;
    let mut log_payloads = BTreeMap::new();
    for row in log.iter()? {
        let (key, value) = row?;
        let index = key.value();
        let entry: Entry = decode(|| format!("raft_log/{index}"), value.value())?;
        if entry.log_id.index != index {
            return Err(DbError::Invalid(format!(
                "raft_log/{index} holds the entry for index {}",
                entry.log_id.index
            )));
        }
        let expected = last_log_id.map_or(index, |l| l.index + 1);
        if index != expected {
            return Err(DbError::Invalid(format!(
                "raft_log has a hole: index {index} follows {:?}",
                last_log_id.map(|l| l.index)
            )));
        }
        last_log_id = Some(entry.log_id);
        if let EntryPayload::Normal(Command::Commit { envelope, .. }) = entry.payload {
            log_payloads.insert(index, envelope);
        }
    }

    let sm_meta = txn.open_table(SM_META)?;
    let last_applied: Option<LogId> = sm_meta
        .get(KEY_LAST_APPLIED)?
        .map(|v| decode(|| "sm_meta/last_applied".to_owned(), v.value()))
        .transpose()?;
    let last_membership: StoredMembership = sm_meta
        .get(KEY_LAST_MEMBERSHIP)?
        .map(|v| decode(|| "sm_meta/last_membership".to_owned(), v.value()))
        .transpose()?
        .unwrap_or_default();

    let mut chains = ChainStates::new();
    for row in txn.open_table(SM_CHAINS)?.iter()? {
        let (key, value) = row?;
        let chain = key.value().to_owned();
        let state = decode(|| format!("sm_chains/{chain}"), value.value())?;
        chains.insert(chain, state);
    }

    let snapshot: Option<StoredSnapshot> = txn
        .open_table(SNAPSHOT)?
        .get(KEY_CURRENT_SNAPSHOT)?
        .map(|v| decode(|| "snapshot/current".to_owned(), v.value()))
        .transpose()?;

    let snapshot_payloads = snapshot
        .iter()
        .flat_map(|s| &s.fences)
        .flat_map(|(chain, fence)| {
            fence.payloads.iter().map(|p| ((chain.clone(), p.head().block_hash), p.clone()))
        })
        .collect();
    let sources = PayloadSources { log: log_payloads, snapshot: snapshot_payloads };
    let fences = load_fences(&txn, retention, &sources)?;

    Ok(Loaded {
        vote,
        last_purged,
        last_log_id,
        applied: AppliedState { chains, fences, last_applied, last_membership },
        snapshot,
    })
}

/// The state machine and its snapshot. Clones share everything; a clone is the snapshot builder.
#[derive(Debug, Clone)]
pub(crate) struct StateMachineStore {
    db: Arc<StoreDb>,
    applied: SharedApplied,
    /// The current snapshot. The async mutex is held across the disk write so an older snapshot
    /// being built can never overwrite a newer one being installed.
    snapshot: Arc<Mutex<Option<StoredSnapshot>>>,
    /// Makes snapshot ids unique within this process.
    snapshot_seq: Arc<AtomicU64>,
    /// What each fence keeps.
    retention: Retention,
    /// Bytes of committed payloads applied since the last snapshot: large payloads make the log
    /// grow faster than its entry count says, so the cluster also snapshots by bytes.
    unsnapshotted_bytes: Arc<AtomicU64>,
}

impl StateMachineStore {
    fn applied(&self) -> std::sync::RwLockReadGuard<'_, AppliedState> {
        self.applied.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Persists `new` as the current snapshot, plus (when installing) the state machine it holds.
    async fn save_snapshot(&self, new: StoredSnapshot, install: bool) -> Result<(), DbError> {
        let mut current = self.snapshot.lock().await;
        if !install && current.as_ref().is_some_and(|c| c.meta.last_log_id > new.meta.last_log_id) {
            return Ok(());
        }
        let bytes = encode("snapshot", &new)?;
        let fences: BTreeMap<String, Fence> = new
            .fences
            .iter()
            .map(|(chain, data)| (chain.clone(), Fence::from_data(data.clone(), self.retention)))
            .collect();
        let sm_rows = if install {
            let mut rows = Vec::with_capacity(new.data.len());
            for (chain, state) in &new.data {
                rows.push((chain.clone(), encode("chain state", state)?));
            }
            let touched = fences.keys().cloned().collect();
            Some((
                rows,
                encode("log id", &new.meta.last_log_id)?,
                encode("membership", &new.meta.last_membership)?,
                FenceRows::diff(&BTreeMap::new(), &fences, &touched, &BTreeMap::new())?,
            ))
        } else {
            None
        };
        self.db
            .write(move |txn| {
                if let Some((rows, last_applied, membership, fence_rows)) = &sm_rows {
                    txn.delete_table(SM_CHAINS)?;
                    txn.delete_table(SM_FENCES)?;
                    txn.delete_table(SM_PAYLOADS)?;
                    let mut chains = txn.open_table(SM_CHAINS)?;
                    for (chain, state) in rows {
                        chains.insert(chain.as_str(), state.as_slice())?;
                    }
                    fence_rows.write(txn)?;
                    let mut sm_meta = txn.open_table(SM_META)?;
                    sm_meta.insert(KEY_LAST_APPLIED, last_applied.as_slice())?;
                    sm_meta.insert(KEY_LAST_MEMBERSHIP, membership.as_slice())?;
                }
                txn.open_table(SNAPSHOT)?.insert(KEY_CURRENT_SNAPSHOT, bytes.as_slice())?;
                Ok(())
            })
            .await?;
        if install {
            let mut applied = self.applied.write().unwrap_or_else(PoisonError::into_inner);
            *applied = AppliedState {
                chains: new.data.clone(),
                fences,
                last_applied: new.meta.last_log_id,
                last_membership: new.meta.last_membership.clone(),
            };
        }
        *current = Some(new);
        Ok(())
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineStore {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        self.unsnapshotted_bytes.store(0, Ordering::Relaxed);
        let (data, last_applied, last_membership) = {
            let applied = self.applied();
            let fences =
                applied.fences.iter().map(|(chain, fence)| (chain.clone(), fence.to_data())).collect();
            (
                SnapshotData { chains: applied.chains.clone(), fences },
                applied.last_applied,
                applied.last_membership.clone(),
            )
        };
        let seq = self.snapshot_seq.fetch_add(1, Ordering::Relaxed);
        let snapshot_id = match last_applied {
            Some(l) => format!("{}-{}-{}-{seq}", l.leader_id.term, l.leader_id.node_id, l.index),
            None => format!("empty-{seq}"),
        };
        let meta = SnapshotMeta { last_log_id: last_applied, last_membership, snapshot_id };
        let stored = StoredSnapshot::new(meta.clone(), data.clone());
        self.save_snapshot(stored, false)
            .await
            .map_err(|e| storage_error(ErrorSubject::Snapshot(None), ErrorVerb::Write, &e))?;
        tracing::info!(
            last_applied_index = last_applied.map(|l| l.index),
            chains = data.chains.len(),
            fences = data.fences.len(),
            "built snapshot"
        );
        Ok(Snapshot { meta, snapshot: Box::new(data) })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = StateMachineStore;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let applied = self.applied();
        Ok((applied.last_applied, applied.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Applied>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut puts: Vec<(String, serde_json::Value)> = Vec::new();
        let mut last_applied = None;
        let mut membership = None;
        let mut responses = Vec::new();
        // The fences this batch changes, starting from what is applied: cheap clones (the
        // payloads are shared), published only once the batch is durable.
        let mut fences: BTreeMap<String, Fence> = BTreeMap::new();
        // The touched fences as they were before the batch, to write only what changed.
        let mut before: BTreeMap<String, Fence> = BTreeMap::new();
        // The log entry of each payload this batch commits: its row names it (see `fence_rows`).
        let mut committed_at = BTreeMap::new();
        let retention = self.retention;
        let mut fence_of = |chain: &str, fences: &mut BTreeMap<String, Fence>| -> Option<Fence> {
            if let Some(fence) = fences.remove(chain) {
                return Some(fence);
            }
            let applied = self.applied().fences.get(chain).cloned()?;
            before.insert(chain.to_owned(), applied.clone());
            Some(applied)
        };
        for entry in entries {
            last_applied = Some(entry.log_id);
            let mut response = Applied::Done;
            match entry.payload {
                EntryPayload::Blank => {}
                EntryPayload::Normal(Command::Put { chain, state, holding }) => {
                    if let Some(holding) = holding {
                        let mut fence =
                            fence_of(&chain, &mut fences).unwrap_or_else(|| Fence::new(retention));
                        fence.apply_holding(&holding);
                        fences.insert(chain.clone(), fence);
                    }
                    puts.push((chain, state));
                }
                EntryPayload::Normal(Command::Commit { chain, node, envelope }) => {
                    self.unsnapshotted_bytes.fetch_add(envelope.len_bytes() as u64, Ordering::Relaxed);
                    match fence_of(&chain, &mut fences) {
                        Some(mut fence) => {
                            let hash = envelope.head().block_hash;
                            match fence.commit(&node, envelope) {
                                Ok(()) => {
                                    committed_at.insert(hash, entry.log_id.index);
                                }
                                Err(refusal) => response = Applied::Refused(refusal),
                            }
                            fences.insert(chain, fence);
                        }
                        // No state has named a holder for this chain yet.
                        None => response = Applied::Refused(CommitRefusal::NotLeader { node, leader: None }),
                    }
                }
                EntryPayload::Membership(m) => {
                    membership = Some(StoredMembership::new(Some(entry.log_id), m))
                }
            }
            responses.push(response);
        }
        let Some(last_applied) = last_applied else { return Ok(responses) };

        let to_err = |e: DbError| storage_error(ErrorSubject::Apply(last_applied), ErrorVerb::Write, &e);
        let touched: BTreeSet<String> = fences.keys().cloned().collect();
        let encoded = (|| {
            let mut rows = Vec::with_capacity(puts.len());
            for (chain, state) in &puts {
                rows.push((chain.clone(), encode("chain state", state)?));
            }
            let membership = membership.as_ref().map(|m| encode("membership", m)).transpose()?;
            let fence_rows = FenceRows::diff(&before, &fences, &touched, &committed_at)?;
            Ok::<_, DbError>((rows, encode("log id", &Some(last_applied))?, membership, fence_rows))
        })()
        .map_err(to_err)?;
        self.db
            .write(move |txn| {
                let (rows, last_applied, membership, fence_rows) = &encoded;
                let mut chains = txn.open_table(SM_CHAINS)?;
                for (chain, state) in rows {
                    chains.insert(chain.as_str(), state.as_slice())?;
                }
                fence_rows.write(txn)?;
                let mut sm_meta = txn.open_table(SM_META)?;
                sm_meta.insert(KEY_LAST_APPLIED, last_applied.as_slice())?;
                if let Some(membership) = membership {
                    sm_meta.insert(KEY_LAST_MEMBERSHIP, membership.as_slice())?;
                }
                Ok(())
            })
            .await
            .map_err(to_err)?;

        // Readers see a write only once it is on disk.
        let mut applied = self.applied.write().unwrap_or_else(PoisonError::into_inner);
        for (chain, state) in puts {
            applied.chains.insert(chain, state);
        }
        applied.fences.extend(fences);
        applied.last_applied = Some(last_applied);
        if let Some(membership) = membership {
            applied.last_membership = membership;
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<SnapshotData>, StorageError> {
        // Snapshots arrive whole through `Raft::install_full_snapshot`; this is only a container.
        Ok(Box::default())
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<SnapshotData>,
    ) -> Result<(), StorageError> {
        tracing::info!(
            last_log_index = meta.last_log_id.map(|l| l.index),
            chains = snapshot.chains.len(),
            fences = snapshot.fences.len(),
            "installing snapshot from the leader"
        );
        let stored = StoredSnapshot::new(meta.clone(), *snapshot);
        self.save_snapshot(stored, true)
            .await
            .map_err(|e| storage_error(ErrorSubject::Snapshot(None), ErrorVerb::Write, &e))
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        let current = self.snapshot.lock().await;
        Ok(current.as_ref().map(|s| Snapshot { meta: s.meta.clone(), snapshot: Box::new(s.data()) }))
    }
}

/// Path of the store file inside `data_dir`, for error messages and tests.
pub(crate) fn store_path(data_dir: &Path) -> PathBuf {
    data_dir.join(STORE_FILE)
}

#[cfg(test)]
mod tests;
