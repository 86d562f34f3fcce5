//! Durable coordinator state, per chain, behind one small interface.
//!
//! Every transition is written *before* the sequencer RPC that depends on it, so a coordinator that
//! dies at any point restarts knowing what it may have done: that it was about to stop a leader,
//! which hash a stop returned, which node it was starting. [`StateStore`] is the seam where the
//! replicated (Raft) store goes; [`FileStateStore`] keeps one JSON file per chain in `data_dir`,
//! replaced atomically (write temp, fsync, rename, fsync directory). A file that cannot be read
//! back is an error that names it: resetting silently could forget a fenced leader.

use crate::data_dir::{DataDirError, DataDirLock};
use alloy_primitives::B256;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::{
    collections::BTreeSet,
    io::Write as _,
    path::{Path, PathBuf},
    sync::{Arc, Weak},
};

mod persist;
pub use persist::PersistHealth;

/// Where a chain is in the fail-over cycle.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    /// Start-up: no decision yet; adopt the active sequencer or elect one.
    #[default]
    Discovering,
    /// `leader` sequences; the coordinator watches.
    Steady,
    /// About to stop (or stopping) the leader `from`; the outcome is unknown until it answers.
    Stopping {
        /// The node being stopped.
        from: String,
        /// A hand-over target chosen by an operator, if any.
        target: Option<String>,
    },
    /// The old leader stopped at `stopped_hash`; waiting for a candidate to reach it.
    CatchingUp {
        /// The node that was stopped (or fenced).
        from: String,
        /// A hand-over target chosen by an operator: only it is tried.
        target: Option<String>,
    },
    /// `admin_startSequencer(stopped_hash)` was (or is about to be) sent to `target`.
    Starting {
        /// The node being started.
        target: String,
        /// The old leader, restarted if nobody else can take over.
        from: Option<String>,
    },
    /// No leader and none can be started safely right now; watching for one to become possible.
    Leaderless,
}

impl Phase {
    /// The snake_case name, as in the API and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Discovering => "discovering",
            Self::Steady => "steady",
            Self::Stopping { .. } => "stopping",
            Self::CatchingUp { .. } => "catching_up",
            Self::Starting { .. } => "starting",
            Self::Leaderless => "leaderless",
        }
    }

    /// Every phase name, for metrics.
    pub const NAMES: [&'static str; 6] =
        ["discovering", "steady", "stopping", "catching_up", "starting", "leaderless"];
}

/// The durable state of one chain.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainState {
    /// The node the coordinator holds as leader (None while leaderless or discovering).
    pub leader: Option<String>,
    /// Incremented at every change of leader.
    pub epoch: u64,
    /// Where the fail-over cycle is.
    pub phase: Phase,
    /// The block the next leader must continue from (set by a stop, kept until the next one).
    pub stopped_hash: Option<B256>,
    /// True when `stopped_hash` is an estimate (a fenced leader never answered its stop: the most
    /// advanced candidate's head stood in), so a newer head may replace it.
    #[serde(default)]
    pub stopped_hash_estimated: bool,
    /// Automation paused by an operator.
    pub paused: bool,
    /// Deposed leaders we could not stop: stopped as soon as they answer, never elected before.
    pub fenced: BTreeSet<String>,
    /// While catching up: when (Unix ms) the catch-up gives up, so a coordinator that takes over
    /// (a restart, another replica) continues the countdown instead of granting a fresh timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catch_up_deadline_unix_ms: Option<u64>,
    /// The op-node URL of every configured node when this state was written, by name: a stored
    /// leader or fenced node that a later config renames is found again by its URL instead of
    /// being mistaken for a stranger (see [`crate::reconcile`]). Empty in files written before it
    /// existed; they still load.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub node_urls: std::collections::BTreeMap<String, String>,
}

/// Why state could not be loaded or saved.
///
/// The OS error of each variant is a plain field, not a `#[source]`: its text is already in the
/// message, and `{:#}` would otherwise print it twice.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading or writing a state file failed.
    #[error("state file {path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The data directory itself could not be created or synced.
    #[error("data_dir {dir}: cannot {action}: {error}")]
    Dir {
        /// The data directory.
        dir: PathBuf,
        /// What was tried (`create the directory`, `sync the directory`).
        action: &'static str,
        /// Why.
        error: std::io::Error,
    },
    /// The data directory was recreated but could not be locked again.
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    /// A replicated write was not committed (this replica lost Raft leadership, or no quorum).
    #[error("state of chain {chain} not committed through Raft: {detail}")]
    NotCommitted {
        /// The chain.
        chain: String,
        /// Why.
        detail: String,
    },
    /// The file exists but does not hold a valid state.
    #[error(
        "state file {path} is corrupt ({detail}); refusing to start with a blank state, which could \
         forget a fenced leader. Inspect it, then move it away to start from scratch"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The file was written by a newer release, in a format this one cannot read.
    #[error(
        "state file {path} was written by a newer op-coordinator (version {version}, this build reads \
         {supported}): upgrade, or restore the file from a backup"
    )]
    Newer {
        /// The file.
        path: PathBuf,
        /// Its format version.
        version: u32,
        /// The version this build reads.
        supported: u32,
    },
}

impl StateError {
    /// A replicated write that did not commit, for a caller that cannot act without it.
    pub fn is_not_committed(&self) -> bool {
        matches!(self, Self::NotCommitted { .. })
    }
}

/// Durable per-chain state. `save` returns only once the state is durable.
pub trait StateStore: Send + Sync + std::fmt::Debug + 'static {
    /// The last saved state of `chain`, or None if it was never saved.
    fn load<'a>(&'a self, chain: &'a str) -> BoxFuture<'a, Result<Option<ChainState>, StateError>>;
    /// Saves the state of `chain` durably.
    fn save<'a>(&'a self, chain: &'a str, state: &'a ChainState) -> BoxFuture<'a, Result<(), StateError>>;
}

/// One JSON file per chain under `data_dir`, replaced atomically.
#[derive(Debug, Clone)]
pub struct FileStateStore {
    dir: PathBuf,
    /// The data directory's lock, renewed when the directory had to be recreated. Weak: the lock
    /// belongs to `run`, and must be released when `run` ends even while a cancelled task still
    /// holds a clone of the store.
    lock: Option<Weak<DataDirLock>>,
}

/// The on-disk envelope: a version so a future format change is detected, not misread.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    version: u32,
    chain: String,
    state: ChainState,
}

const STATE_FILE_VERSION: u32 = 1;

impl FileStateStore {
    /// A store in `data_dir`, created if missing.
    pub fn open(data_dir: &Path) -> Result<Self, StateError> {
        std::fs::create_dir_all(data_dir).map_err(|error| StateError::Dir {
            dir: data_dir.to_owned(),
            action: "create the directory",
            error,
        })?;
        Ok(Self { dir: data_dir.to_owned(), lock: None })
    }

    /// The store, renewing `lock` whenever it has to recreate the directory.
    pub fn with_lock(mut self, lock: &Arc<DataDirLock>) -> Self {
        self.lock = Some(Arc::downgrade(lock));
        self
    }

    /// Recreates a data directory that vanished (deleted by hand, an unmounted volume), so the
    /// coordinator heals instead of blocking every fail-over until a restart; it says so loudly,
    /// because the state files of the other chains went with it and are rewritten only at their
    /// next change.
    fn recreate_dir(&self) -> Result<(), StateError> {
        std::fs::create_dir_all(&self.dir).map_err(|error| StateError::Dir {
            dir: self.dir.clone(),
            action: "recreate the directory",
            error,
        })?;
        tracing::warn!(
            data_dir = %self.dir.display(),
            "the data directory had vanished; recreated it (each chain's state is written again at its next change)"
        );
        if let Some(lock) = self.lock.as_ref().and_then(Weak::upgrade) {
            lock.renew()?;
        }
        Ok(())
    }

    /// The file of `chain`.
    pub fn path_of(&self, chain: &str) -> PathBuf {
        self.dir.join(format!("chain-{chain}.json"))
    }

    fn load_blocking(&self, chain: &str) -> Result<Option<ChainState>, StateError> {
        let path = self.path_of(chain);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(StateError::Io { path, error }),
        };
        let file: StateFile = serde_json::from_slice(&bytes)
            .map_err(|err| StateError::Corrupt { path: path.clone(), detail: err.to_string() })?;
        if file.version > STATE_FILE_VERSION {
            return Err(StateError::Newer { path, version: file.version, supported: STATE_FILE_VERSION });
        }
        if file.version != STATE_FILE_VERSION {
            return Err(StateError::Corrupt {
                path,
                detail: format!("version {} (this build reads {STATE_FILE_VERSION})", file.version),
            });
        }
        if file.chain != chain {
            return Err(StateError::Corrupt {
                path,
                detail: format!("it belongs to chain {:?}", file.chain),
            });
        }
        Ok(Some(file.state))
    }

    fn save_blocking(&self, chain: &str, state: &ChainState) -> Result<(), StateError> {
        let path = self.path_of(chain);
        let temp = self.dir.join(format!(".chain-{chain}.json.tmp"));
        let io = |error| StateError::Io { path: path.clone(), error };
        let file = StateFile { version: STATE_FILE_VERSION, chain: chain.to_owned(), state: state.clone() };
        let bytes = serde_json::to_vec_pretty(&file).map_err(|err| io(std::io::Error::other(err)))?;
        let mut out = match std::fs::File::create(&temp) {
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                self.recreate_dir()?;
                std::fs::File::create(&temp).map_err(io)?
            }
            created => created.map_err(io)?,
        };
        out.write_all(&bytes).map_err(io)?;
        out.sync_all().map_err(io)?;
        drop(out);
        std::fs::rename(&temp, &path).map_err(io)?;
        // The rename is durable only once the directory entry is.
        std::fs::File::open(&self.dir).and_then(|dir| dir.sync_all()).map_err(|error| StateError::Dir {
            dir: self.dir.clone(),
            action: "sync the directory",
            error,
        })?;
        Ok(())
    }
}

impl StateStore for FileStateStore {
    fn load<'a>(&'a self, chain: &'a str) -> BoxFuture<'a, Result<Option<ChainState>, StateError>> {
        let store = self.clone();
        let chain = chain.to_owned();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || store.load_blocking(&chain))
                .await
                .unwrap_or_else(|join| Err(join_error(join)))
        })
    }

    fn save<'a>(&'a self, chain: &'a str, state: &'a ChainState) -> BoxFuture<'a, Result<(), StateError>> {
        let store = self.clone();
        let chain = chain.to_owned();
        let state = state.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || store.save_blocking(&chain, &state))
                .await
                .unwrap_or_else(|join| Err(join_error(join)))
        })
    }
}

fn join_error(err: tokio::task::JoinError) -> StateError {
    StateError::Io { path: PathBuf::from("<state task>"), error: std::io::Error::other(err.to_string()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ChainState {
        ChainState {
            leader: Some("seq-b".into()),
            epoch: 7,
            phase: Phase::CatchingUp { from: "seq-a".into(), target: None },
            stopped_hash: Some(B256::repeat_byte(0xab)),
            stopped_hash_estimated: false,
            paused: true,
            fenced: BTreeSet::from(["seq-c".to_owned()]),
            catch_up_deadline_unix_ms: Some(1_795_000_000_000),
            node_urls: [("seq-b".to_owned(), "http://10.0.0.2:9545".to_owned())].into(),
        }
    }

    #[tokio::test]
    async fn saved_state_is_loaded_back_identically() {
        let dir = tempdir();
        let store = FileStateStore::open(&dir).expect("open");
        assert_eq!(store.load("main").await.expect("load"), None);
        store.save("main", &sample()).await.expect("save");
        assert_eq!(store.load("main").await.expect("load"), Some(sample()));
        // A reopened store sees the same file.
        let reopened = FileStateStore::open(&dir).expect("reopen");
        assert_eq!(reopened.load("main").await.expect("load"), Some(sample()));
    }

    #[tokio::test]
    async fn a_corrupt_state_file_is_an_error_naming_the_file_not_a_reset() {
        let dir = tempdir();
        let store = FileStateStore::open(&dir).expect("open");
        std::fs::write(store.path_of("main"), b"{\"version\":1,\"chain\":\"main\",\"state\":{")
            .expect("write");
        let err = store.load("main").await.expect_err("corrupt");
        let message = err.to_string();
        assert!(message.contains("chain-main.json") && message.contains("corrupt"), "{message}");
    }

    #[tokio::test]
    async fn a_state_file_of_another_version_or_chain_is_rejected() {
        let dir = tempdir();
        let store = FileStateStore::open(&dir).expect("open");
        store.save("other", &sample()).await.expect("save");
        std::fs::copy(store.path_of("other"), store.path_of("main")).expect("copy");
        assert!(store.load("main").await.expect_err("wrong chain").to_string().contains("\"other\""));
        let text = std::fs::read_to_string(store.path_of("other")).expect("read");
        std::fs::write(store.path_of("other"), text.replace("\"version\": 1", "\"version\": 99")).expect("w");
        let newer = store.load("other").await.expect_err("version").to_string();
        assert!(
            newer.contains("written by a newer op-coordinator (version 99, this build reads 1)"),
            "{newer}"
        );
        assert!(!newer.contains("corrupt"), "a newer file is not called corrupt: {newer}");
    }

    #[tokio::test]
    async fn a_data_dir_that_vanished_is_recreated_by_the_next_save_and_its_lock_renewed() {
        let dir = tempdir();
        let lock = Arc::new(DataDirLock::acquire(&dir).expect("lock"));
        let store = FileStateStore::open(&dir).expect("open").with_lock(&lock);
        std::fs::remove_dir_all(&dir).expect("remove the data dir");
        store.save("main", &sample()).await.expect("save recreates the dir");
        assert_eq!(store.load("main").await.expect("load"), Some(sample()));
        let err = DataDirLock::acquire(&dir).expect_err("the recreated dir is locked again").to_string();
        assert!(err.contains("in use by another op-coordinator"), "{err}");
    }

    #[tokio::test]
    async fn an_io_error_is_printed_once_and_a_directory_is_called_a_directory() {
        let dir = tempdir();
        std::fs::create_dir_all(dir.parent().expect("parent")).expect("parent");
        std::fs::write(&dir, b"a file where the data dir should be").expect("write");
        let err = FileStateStore::open(&dir).expect_err("a file is no data dir");
        let chain = format!("{:#}", anyhow::Error::from(err));
        assert!(chain.starts_with("data_dir ") && !chain.contains("state file"), "{chain}");
        assert_eq!(chain.matches("File exists").count(), 1, "the OS error once: {chain}");
        std::fs::remove_file(&dir).expect("clean up");
    }

    #[tokio::test]
    async fn a_state_file_written_before_node_urls_were_recorded_still_loads() {
        let dir = tempdir();
        let store = FileStateStore::open(&dir).expect("open");
        let old = r#"{"version":1,"chain":"main","state":{"leader":"seq-0","epoch":2,"phase":{"phase":"steady"},
            "stopped_hash":null,"paused":false,"fenced":[]}}"#;
        std::fs::write(store.path_of("main"), old).expect("write");
        let state = store.load("main").await.expect("load").expect("a state");
        assert_eq!(state.leader.as_deref(), Some("seq-0"));
        assert!(state.node_urls.is_empty());
    }

    fn tempdir() -> PathBuf {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "opc-state-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }
}
