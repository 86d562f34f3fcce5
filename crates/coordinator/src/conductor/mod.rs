//! Conductor mode: op-node commits every block it seals to the coordinator before it publishes
//! it, and asks the coordinator whether it may sequence (see `docs/design/conductor-mode.md`).
//!
//! A chain with `conductor = true` gets a [`ChainFence`]: the [`fence::Fence`] (who may commit, on
//! which parent, the last committed payloads) behind one lock, with its durable
//! [`log::CommitLog`]. Two writers take that lock:
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
//! - [`fence`]: the pure fence and its table tests.
//! - [`log`]: the durable log of committed payloads (single coordinator; fsync before the answer).
//! - [`serve`]: the HTTP endpoint `http://HOST:PORT/<chain>/<node>` (and `/<chain>`): routes, the
//!   source-address allow-lists, op-node's two calls.
//! - [`operator`]: op-conductor's operator methods on each node's path, and what each means here.
//! - `proxy`: the leader-only proxy (`/<chain>/<node>`) and the leader-following one (`/<chain>`).

pub mod fence;
pub mod log;
pub mod operator;
mod proxy;
pub mod serve;

pub use operator::NodeEndpoint;

use crate::state::{ChainState, StateError};
use alloy_primitives::B256;
use fence::{Fence, Retention};
use log::{CommitLog, LogError};
use opc_wire::conductor::{CommitRefusal, Envelope, PayloadHead};
use std::{
    path::Path,
    sync::{Arc, Mutex, PoisonError},
};
use tokio::time::Instant;

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
    /// When a payload was last accepted.
    pub last_commit_at: Option<Instant>,
    /// Hashes of the kept payloads, oldest first: a node at one of them can be replayed to the head.
    pub replayable: Vec<B256>,
    /// Commits accepted since start-up.
    pub accepted: u64,
    /// Commits refused since start-up.
    pub refused: u64,
}

impl FenceView {
    /// True when a node whose head is `hash` can be brought to the committed head by replay.
    pub fn can_replay_from(&self, hash: B256) -> bool {
        self.replayable.contains(&hash)
    }
}

#[derive(Debug)]
struct Locked {
    fence: Fence,
    /// None only while an append runs on the blocking pool, or after one panicked there.
    log: Option<CommitLog>,
}

/// The fence of one chain, shared by its actor and the conductor endpoint.
#[derive(Debug)]
pub struct ChainFence {
    chain: String,
    locked: tokio::sync::Mutex<Locked>,
    view: Mutex<FenceView>,
    max_payload_bytes: usize,
}

impl ChainFence {
    /// Opens the fence of `chain` with its log in `data_dir`; the committed payloads come back.
    pub fn open(
        data_dir: &Path,
        chain: &str,
        retention: Retention,
        max_payload_bytes: usize,
    ) -> Result<Arc<Self>, LogError> {
        let (log, restored) = CommitLog::open(data_dir, chain, retention)?;
        let mut fence = Fence::new(retention);
        for envelope in restored {
            fence.accept(envelope);
        }
        let view = Mutex::new(FenceView::default());
        let chain_fence = Self {
            chain: chain.to_owned(),
            locked: tokio::sync::Mutex::new(Locked { fence, log: Some(log) }),
            view,
            max_payload_bytes,
        };
        {
            let locked = chain_fence.locked.try_lock().expect("not shared yet");
            chain_fence.publish(&locked.fence, |_| {});
        }
        Ok(Arc::new(chain_fence))
    }

    /// The chain.
    pub fn chain(&self) -> &str {
        &self.chain
    }

    /// What the fence says now.
    pub fn view(&self) -> FenceView {
        self.view.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// `conductor_leader` for `node`.
    pub async fn is_leader(&self, node: &str) -> bool {
        self.locked.lock().await.fence.is_holder(node)
    }

    /// `conductor_commitUnsafePayload` from `node`: answered once durable, or refused with why.
    pub async fn commit(&self, node: &str, envelope: Envelope) -> Result<(), CommitRefusal> {
        let result = self.try_commit(node, envelope).await;
        if result.is_err() {
            self.with_view(|view| view.refused += 1);
        }
        result
    }

    async fn try_commit(&self, node: &str, envelope: Envelope) -> Result<(), CommitRefusal> {
        if envelope.len_bytes() > self.max_payload_bytes {
            return Err(CommitRefusal::TooLarge {
                bytes: envelope.len_bytes(),
                limit: self.max_payload_bytes,
            });
        }
        let mut locked = self.locked.lock().await;
        locked.fence.admit(node, envelope.head())?;
        let Some(mut log) = locked.log.take() else {
            return Err(CommitRefusal::NotDurable(
                "the conductor log was lost after an earlier failure".into(),
            ));
        };
        // What the fence keeps once this payload is in, in case the log compacts now.
        let mut after = locked.fence.clone();
        after.accept(envelope.clone());
        let kept: Vec<Envelope> = after.committed().cloned().collect();
        let record = envelope.clone();
        let appended = tokio::task::spawn_blocking(move || {
            let result = log.append(&record, &kept);
            (log, result)
        })
        .await;
        let (log, result) =
            appended.map_err(|err| CommitRefusal::NotDurable(format!("append task: {err}")))?;
        locked.log = Some(log);
        result.map_err(|err| CommitRefusal::NotDurable(err.to_string()))?;
        locked.fence.accept(envelope);
        self.publish(&locked.fence, |view| {
            view.last_commit_at = Some(Instant::now());
            view.accepted += 1;
        });
        Ok(())
    }

    /// Saves `state` with `save` and makes the fence follow it, with no commit in between.
    pub async fn persist_state(
        &self,
        state: &ChainState,
        save: impl Future<Output = Result<(), StateError>>,
    ) -> Result<(), StateError> {
        let mut locked = self.locked.lock().await;
        save.await?;
        locked.fence.apply_state(state);
        self.publish(&locked.fence, |_| {});
        Ok(())
    }

    /// Makes the fence follow `state` as loaded at start-up (already durable).
    pub async fn follow_state(&self, state: &ChainState) {
        let mut locked = self.locked.lock().await;
        locked.fence.apply_state(state);
        self.publish(&locked.fence, |_| {});
    }

    /// The committed payloads after `from`, oldest first; None when `from` is not among them.
    pub async fn payloads_after(&self, from: B256) -> Option<Vec<Envelope>> {
        self.locked.lock().await.fence.after(from)
    }

    fn with_view(&self, change: impl FnOnce(&mut FenceView)) {
        change(&mut self.view.lock().unwrap_or_else(PoisonError::into_inner));
    }

    fn publish(&self, fence: &Fence, change: impl FnOnce(&mut FenceView)) {
        self.with_view(|view| {
            view.holder = fence.holder().map(str::to_owned);
            view.head = fence.head();
            view.base = fence.base();
            view.replayable = fence.committed().map(|envelope| envelope.head().block_hash).collect();
            if let Some(base) = fence.base()
                && !view.replayable.contains(&base)
            {
                view.replayable.push(base);
            }
            change(view);
        });
    }
}
