//! Conductor mode: op-node commits every block it seals to the coordinator before it publishes
//! it, and asks the coordinator whether it may sequence (see `docs/design/conductor-mode.md`).
//!
//! A chain with `conductor = true` gets a [`ChainFence`]: the [`Fence`] (who may commit, on which
//! parent, the last committed payloads) of the chain. Where the fence lives depends on the
//! coordinator:
//!
//! - **Alone** (no `[cluster]`): behind one lock here, with its durable [`log::CommitLog`].
//! - **A replica of a cluster**: in the replicated state machine (`opc_cluster`). A commit is a
//!   Raft entry, admitted when it is applied, against the fence as the entries before it left it;
//!   a chain state is saved with the holding it implies in the same entry. The log orders both,
//!   so the argument below holds with "the log" for "the lock", and a commit is answered once a
//!   majority of replicas hold it.
//!
//! Alone, two writers take the lock:
//!
//! - the conductor endpoint ([`serve`]), for every `conductor_commitUnsafePayload`: admitted by the
//!   fence, appended and fsynced, then answered;
//! - the chain's actor, for every persisted chain state ([`ChainFence::persist_state`]): the state
//!   is saved and the fence follows it before any commit is looked at again.
//!
//! So a deposition (a persisted state naming another holder, or none) and the commits are totally
//! ordered: a commit answered before the deposition is in the committed head the engine fails over
//! from, and every commit after it is refused. A deposed leader cannot publish: op-node drops a
//! block it could not commit.
//!
//! # Layout
//! - `opc_cluster::fence`: the pure fence and its table tests (shared by both homes).
//! - [`log`]: the durable log of committed payloads (single coordinator; fsync before the answer).
//! - [`serve`]: the HTTP endpoint `http://HOST:PORT/<chain>/<node>` (and `/<chain>`): routes, the
//!   source-address allow-lists, op-node's two calls.
//! - [`operator`]: op-conductor's operator methods on each node's path, and what each means here.
//! - `proxy`: the leader-only proxy (`/<chain>/<node>`) and the leader-following one (`/<chain>`).

pub mod log;
pub mod operator;
mod proxy;
pub mod serve;

pub use operator::NodeEndpoint;

use crate::{
    replication::Acting,
    state::{ChainState, Phase, StateError},
};
use alloy_primitives::B256;
use log::{CommitLog, LogError};
use opc_cluster::{
    Applied, Cluster,
    fence::{Fence, Holding, Retention, Starting},
};
use opc_wire::conductor::{CommitRefusal, Envelope, PayloadHead};
use std::{
    collections::{BTreeMap, VecDeque},
    path::Path,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};
use tokio::{sync::watch, time::Instant};

/// Who may commit under `state`: the steady leader (paused or not), or the node being started,
/// which builds on the hash it is started at; nobody in any other phase.
pub fn holding_of(state: &ChainState) -> Holding {
    match &state.phase {
        Phase::Steady => Holding { holder: state.leader.clone(), starting: None },
        Phase::Starting { target, .. } => Holding {
            holder: Some(target.clone()),
            starting: Some(Starting { node: target.clone(), at: state.stopped_hash }),
        },
        _ => Holding::default(),
    }
}

/// What the engine and the status read of a chain's fence, without waiting for its lock.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FenceView {
    /// The node that may commit now.
    pub holder: Option<String>,
    /// The last committed payload.
    pub head: Option<PayloadHead>,
    /// The hash the next payload must build on: the last committed one, or the hash the holder
    /// was started at. After a deposition, where the chain ends: the next leader starts there.
    pub base: Option<B256>,
    /// When a payload was last accepted (through this replica).
    pub last_commit_at: Option<Instant>,
    /// Hashes of the kept payloads, oldest first: a node at one of them can be replayed to the head.
    pub replayable: Vec<B256>,
    /// Commits accepted since start-up (through this replica).
    pub accepted: u64,
    /// Commits refused since start-up (through this replica).
    pub refused: u64,
    /// Commits this replica is still making durable (or refusing), by the node that sent them.
    pub in_flight: BTreeMap<String, InFlight>,
}

/// A node's commits that arrived and are not answered yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InFlight {
    /// How many.
    pub count: u32,
    /// When the newest arrived: op-node built that block and asked us by then, so it was alive.
    pub newest: Instant,
}

/// Counts a commit in flight from its arrival until it is answered or its caller gives up.
struct Arrival<'a> {
    fence: &'a ChainFence,
    node: &'a str,
}

impl<'a> Arrival<'a> {
    fn new(fence: &'a ChainFence, node: &'a str) -> Self {
        let now = Instant::now();
        fence.with_view(|view| {
            let entry = view.in_flight.entry(node.to_owned()).or_insert(InFlight { count: 0, newest: now });
            entry.count += 1;
            entry.newest = now;
        });
        Self { fence, node }
    }
}

impl Drop for Arrival<'_> {
    fn drop(&mut self) {
        self.fence.with_view(|view| {
            if let Some(entry) = view.in_flight.get_mut(self.node) {
                entry.count -= 1;
                if entry.count == 0 {
                    view.in_flight.remove(self.node);
                }
            }
        });
    }
}

impl FenceView {
    /// True when a node whose head is `hash` can be brought to the committed head by replay.
    pub fn can_replay_from(&self, hash: B256) -> bool {
        self.replayable.contains(&hash)
    }

    /// Takes the fence's part of the view from `fence`, keeping this replica's counters.
    fn follow(&mut self, fence: &Fence) {
        self.holder = fence.holder().map(str::to_owned);
        self.head = fence.head();
        self.base = fence.base();
        self.replayable = fence.committed().map(|envelope| envelope.head().block_hash).collect();
        if let Some(base) = fence.base()
            && !self.replayable.contains(&base)
        {
            self.replayable.push(base);
        }
    }
}

#[derive(Debug)]
struct Locked {
    fence: Fence,
    /// None only while an append runs on the blocking pool, or after one panicked there.
    log: Option<CommitLog>,
}

/// Where the fence lives.
#[derive(Debug)]
enum Home {
    /// A coordinator without `[cluster]`: the fence behind a lock, its log on disk.
    Local(Arc<tokio::sync::Mutex<Locked>>),
    /// A replica of a cluster: the fence in the replicated state machine.
    Replicated { cluster: Cluster, acting_rx: watch::Receiver<Acting> },
}

/// The fence of one chain, shared by its actor and the conductor endpoint.
#[derive(Debug)]
pub struct ChainFence {
    chain: String,
    home: Home,
    /// Alone: the whole view, published under the lock. Replicated: this replica's counters (the
    /// rest is read from the replicated fence).
    view: Mutex<FenceView>,
    /// When the commits of the last [`RATE_WINDOW`] were accepted (at most [`RATE_SAMPLES`]).
    recent: Mutex<VecDeque<Instant>>,
    max_payload_bytes: usize,
}

/// The span [`ChainFence::recent_commits`] counts over.
const RATE_WINDOW: Duration = Duration::from_secs(10);
/// Enough for 50 ms blocks over the window; a faster stream is counted as this many.
const RATE_SAMPLES: usize = 200;

impl ChainFence {
    /// Opens the fence of `chain` with its log in `data_dir`; the committed payloads come back.
    pub fn open(
        data_dir: &Path,
        chain: &str,
        retention: Retention,
        max_payload_bytes: usize,
    ) -> Result<Self, LogError> {
        let (mut log, restored) = CommitLog::open(data_dir, chain, retention)?;
        let mut fence = Fence::new(retention);
        for envelope in restored {
            fence.accept(envelope);
        }
        let kept: Vec<Envelope> = fence.committed().cloned().collect();
        log.compact_if_due(&kept)?;
        let mut view = FenceView::default();
        view.follow(&fence);
        Ok(Self {
            chain: chain.to_owned(),
            home: Home::Local(Arc::new(tokio::sync::Mutex::new(Locked { fence, log: Some(log) }))),
            view: Mutex::new(view),
            recent: Mutex::default(),
            max_payload_bytes,
        })
    }

    /// The fence of `chain` in `cluster`'s replicated state; this replica admits commits only
    /// while `acting_rx` says it holds a confirmed leadership.
    pub fn replicated(
        cluster: Cluster,
        acting_rx: watch::Receiver<Acting>,
        chain: &str,
        max_payload_bytes: usize,
    ) -> Self {
        Self {
            chain: chain.to_owned(),
            home: Home::Replicated { cluster, acting_rx },
            view: Mutex::new(FenceView::default()),
            recent: Mutex::default(),
            max_payload_bytes,
        }
    }

    /// The chain.
    pub fn chain(&self) -> &str {
        &self.chain
    }

    /// Where op-node's calls must go when this replica may not answer them: the replica that
    /// leads (its id and conductor endpoint), or why none can be named. None: answer here.
    pub fn forward_to(&self) -> Option<Result<(u64, String), String>> {
        let Home::Replicated { cluster, acting_rx } = &self.home else { return None };
        if acting_rx.borrow().is_some() {
            return None;
        }
        let status = cluster.status();
        let target = match status.leader.as_ref() {
            None => Err(format!(
                "replica {} does not lead the coordinator cluster and knows no leader right now (term {}); \
                 retry in a second",
                status.id, status.term
            )),
            Some(leader) if leader.id == status.id => Err(format!(
                "replica {} leads the coordinator cluster but has not confirmed it with a quorum; retry in a second",
                status.id
            )),
            Some(leader) => match status.membership.replica(leader.id).and_then(|r| r.conductor_addr.clone())
            {
                Some(addr) => Ok((leader.id, addr)),
                None => Err(format!(
                    "replica {} leads the coordinator cluster but its membership entry has no conductor_addr \
                     (set cluster.replicas[].conductor_addr, or re-add it with --conductor-addr)",
                    leader.id
                )),
            },
        };
        Some(target)
    }

    /// True when `address` is the host of a cluster member's conductor endpoint (a replica that
    /// may forward calls here). Alone: never.
    pub fn is_replica_address(&self, address: std::net::IpAddr) -> bool {
        let Home::Replicated { cluster, .. } = &self.home else { return false };
        let membership = cluster.membership();
        membership.voters.iter().chain(&membership.learners).any(|replica| {
            replica
                .conductor_addr
                .as_deref()
                .and_then(|addr| addr.parse::<std::net::SocketAddr>().ok())
                .is_some_and(|addr| addr.ip().to_canonical() == address.to_canonical())
        })
    }

    /// This replica's Raft id, in a cluster.
    pub fn replica_id(&self) -> Option<u64> {
        match &self.home {
            Home::Local(_) => None,
            Home::Replicated { cluster, .. } => Some(cluster.id()),
        }
    }

    /// What the fence says now.
    pub fn view(&self) -> FenceView {
        let mut view = self.view.lock().unwrap_or_else(PoisonError::into_inner).clone();
        if let Home::Replicated { cluster, .. } = &self.home {
            match cluster.fence(&self.chain) {
                Some(fence) => view.follow(&fence),
                None => view.follow(&Fence::new(Retention::default())),
            }
        }
        view
    }

    /// `conductor_leader` for `node`: false unless `node` holds the fence and, in a cluster, this
    /// replica holds a confirmed leadership.
    pub async fn is_leader(&self, node: &str) -> bool {
        match &self.home {
            Home::Local(locked) => locked.lock().await.fence.is_holder(node),
            Home::Replicated { cluster, acting_rx } => {
                acting_rx.borrow().is_some()
                    && cluster.fence(&self.chain).is_some_and(|fence| fence.is_holder(node))
            }
        }
    }

    /// `conductor_commitUnsafePayload` from `node`: answered once durable, or refused with why.
    pub async fn commit(&self, node: &str, envelope: Envelope) -> Result<(), CommitRefusal> {
        let _arrival = Arrival::new(self, node);
        let result = if envelope.len_bytes() > self.max_payload_bytes {
            Err(CommitRefusal::TooLarge { bytes: envelope.len_bytes(), limit: self.max_payload_bytes })
        } else {
            match &self.home {
                Home::Local(locked) => self.commit_locally(locked, node, envelope).await,
                Home::Replicated { cluster, .. } => self.commit_replicated(cluster, node, envelope).await,
            }
        };
        let now = Instant::now();
        self.with_view(|view| match &result {
            Ok(()) => {
                view.last_commit_at = Some(now);
                view.accepted += 1;
            }
            Err(_) => view.refused += 1,
        });
        if result.is_ok() {
            let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
            if recent.len() == RATE_SAMPLES {
                recent.pop_front();
            }
            recent.push_back(now);
        }
        result
    }

    /// When this replica last accepted a commit (cheaper than [`Self::view`]).
    pub fn last_commit_at(&self) -> Option<Instant> {
        self.view.lock().unwrap_or_else(PoisonError::into_inner).last_commit_at
    }

    /// Commits accepted over the last 10 s (through this replica).
    pub fn recent_commits(&self) -> u64 {
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        while recent.front().is_some_and(|at| now.saturating_duration_since(*at) > RATE_WINDOW) {
            recent.pop_front();
        }
        recent.len() as u64
    }

    async fn commit_locally(
        &self,
        locked: &Arc<tokio::sync::Mutex<Locked>>,
        node: &str,
        envelope: Envelope,
    ) -> Result<(), CommitRefusal> {
        // On a task of its own, so it runs to the end even when op-node gives up on the call and
        // the server drops this future: cut off between taking the log and putting it back, or
        // between the append and the fence update, it would leave the chain unable to commit, or
        // the log and the fence disagreeing.
        let task = tokio::spawn(commit_to_log(Arc::clone(locked), node.to_owned(), envelope));
        let fence = task.await.map_err(|err| CommitRefusal::NotDurable(format!("commit task: {err}")))??;
        self.with_view(|view| view.follow(&fence));
        Ok(())
    }

    async fn commit_replicated(
        &self,
        cluster: &Cluster,
        node: &str,
        envelope: Envelope,
    ) -> Result<(), CommitRefusal> {
        // A refusal the applied fence already implies costs no Raft round (a deposed leader
        // retries every second); only the log's order can admit.
        if let Some(fence) = cluster.fence(&self.chain) {
            fence.admit(node, envelope.head())?;
        } else {
            return Err(CommitRefusal::NotLeader { node: node.to_owned(), leader: None });
        }
        match cluster.commit(&self.chain, node, envelope).await {
            Ok(Applied::Done) => Ok(()),
            Ok(Applied::Refused(refusal)) => Err(refusal),
            Err(error) => Err(CommitRefusal::NotDurable(error.to_string())),
        }
    }

    /// Saves `state` with `save` and makes the fence follow it, with no commit in between.
    /// Replicated, `save` carries the holding in its own log entry (see `RaftStateStore`).
    pub async fn persist_state(
        &self,
        state: &ChainState,
        save: impl Future<Output = Result<(), StateError>>,
    ) -> Result<(), StateError> {
        match &self.home {
            Home::Local(locked) => {
                let mut locked = locked.lock().await;
                save.await?;
                locked.fence.apply_holding(&holding_of(state));
                self.with_view(|view| view.follow(&locked.fence));
                Ok(())
            }
            Home::Replicated { .. } => save.await,
        }
    }

    /// True when the replicated fence does not hold what `state` implies: the chain was switched
    /// to conductor mode while its state was already written (before, its writes carried no
    /// holding). The acting replica then writes the state again. Alone: never.
    pub fn holding_is_stale(&self, state: &ChainState) -> bool {
        match &self.home {
            Home::Local(_) => false,
            Home::Replicated { cluster, .. } => {
                cluster.fence(&self.chain).is_none_or(|fence| *fence.holding() != holding_of(state))
            }
        }
    }

    /// Makes the fence follow `state` as loaded at start-up (already durable). Replicated, the
    /// fence followed it when it was written.
    pub async fn follow_state(&self, state: &ChainState) {
        if let Home::Local(locked) = &self.home {
            let mut locked = locked.lock().await;
            locked.fence.apply_holding(&holding_of(state));
            self.with_view(|view| view.follow(&locked.fence));
        }
    }

    /// The committed payloads after `from`, oldest first; None when `from` is not among them.
    pub async fn payloads_after(&self, from: B256) -> Option<Vec<Envelope>> {
        match &self.home {
            Home::Local(locked) => locked.lock().await.fence.after(from),
            Home::Replicated { cluster, .. } => cluster.fence(&self.chain)?.after(from),
        }
    }

    fn with_view(&self, change: impl FnOnce(&mut FenceView)) {
        change(&mut self.view.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

/// Admits `envelope` from `node`, appends it to the log (on the blocking pool: an fsync) and only
/// then to the fence; answers the fence as it is now.
async fn commit_to_log(
    locked: Arc<tokio::sync::Mutex<Locked>>,
    node: String,
    envelope: Envelope,
) -> Result<Fence, CommitRefusal> {
    let mut locked = locked.lock_owned().await;
    locked.fence.admit(&node, envelope.head())?;
    if locked.fence.is_committed_head(envelope.head()) {
        // A retry of what the log already holds.
        return Ok(locked.fence.clone());
    }
    let Some(mut log) = locked.log.take() else {
        return Err(CommitRefusal::NotDurable("the conductor log was lost after an earlier failure".into()));
    };
    // What the fence keeps once this payload is in, in case the log compacts now.
    let mut after = locked.fence.clone();
    after.accept(envelope.clone());
    let kept: Vec<Envelope> = after.committed().cloned().collect();
    let appended = tokio::task::spawn_blocking(move || {
        let result = log.append(&envelope, &kept);
        (log, result)
    })
    .await;
    let (log, result) = appended.map_err(|err| CommitRefusal::NotDurable(format!("append task: {err}")))?;
    locked.log = Some(log);
    result.map_err(|err| CommitRefusal::NotDurable(err.to_string()))?;
    locked.fence = after;
    Ok(locked.fence.clone())
}
