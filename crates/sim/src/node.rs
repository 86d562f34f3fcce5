//! One simulated sequencer node: op-node and op-geth state behind one lock.
//!
//! Every method here is synchronous and runs under the node's lock; the async behaviour (the
//! sequencer loop, gossip, ancestor sync) lives in [`crate::chain`].

use crate::{
    block::{Block, ChainParams},
    conductor::{self, ConductorClient, PathFaults},
    error::SimError,
    fault_params::parse_isolate,
    store::{BlockStore, ImportOutcome},
};
use op_sim_api::{FaultKind, FaultParams};
use opc_wire::{BlockId, SyncStatus, SyncStatusShape};
use serde::{Deserialize, Serialize};
use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};
use tokio::{sync::Notify, time::Instant};

/// How a node was started: the op-node flags that change its behaviour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeOptions {
    /// `--sequencer.enabled`: the node can sequence at all.
    pub sequencer_enabled: bool,
    /// Without `--sequencer.stopped` a sequencer comes up active, also after every restart.
    pub start_active: bool,
    /// `--rpc.enable-admin`: the `admin_*` namespace exists.
    pub admin_enabled: bool,
    /// `--rpc.admin-state`: the last started/stopped state survives restarts and overrides
    /// `start_active`.
    pub persist_admin_state: bool,
    /// The 2023 behaviour: `admin_stopSequencer` returns the zero hash (the coordinator must read
    /// `optimism_syncStatus` instead).
    pub zero_stopped_hash: bool,
    /// Which op-node release's `optimism_syncStatus` key set to answer with.
    pub sync_status_shape: SyncStatusShape,
    /// Time after op-node starts before its engine is initialised; until then it reports all-zero
    /// refs, `admin_stopSequencer` returns the zero hash and `admin_startSequencer` fails with
    /// "no prestate". Also never initialised while op-geth is down.
    pub engine_init_ms: u64,
    /// `--conductor.enabled --conductor.rpc=URL`: every sealed block is committed there before it
    /// is gossiped or inserted, and starts ask it `conductor_leader` first (see
    /// [`crate::conductor`]). None: no conductor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conductor_rpc: Option<String>,
    /// `--conductor.rpc-timeout`, per call.
    pub conductor_rpc_timeout_ms: u64,
}

impl Default for NodeOptions {
    fn default() -> Self {
        Self {
            sequencer_enabled: true,
            start_active: false,
            admin_enabled: true,
            persist_admin_state: false,
            zero_stopped_hash: false,
            sync_status_shape: SyncStatusShape::default(),
            engine_init_ms: 0,
            conductor_rpc: None,
            conductor_rpc_timeout_ms: conductor::DEFAULT_RPC_TIMEOUT_MS,
        }
    }
}

/// Whether a node process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Process {
    /// Running.
    Up,
    /// Crashed: connections refused.
    Down,
    /// Hung: connections accepted, nothing processed.
    Frozen,
}

/// What changed when a block was offered to a node, for the ledger.
#[derive(Debug)]
pub struct Imported {
    /// What the store did.
    pub outcome: ImportOutcome,
    /// The head afterwards.
    pub head: BlockId,
}

/// The mutable state of one node.
#[derive(Debug)]
pub struct NodeState {
    /// op-node's view of the chain.
    pub store: BlockStore,
    /// op-geth's head: equal to op-node's unsafe head unless execution lags.
    pub geth_head: Arc<Block>,
    /// The sequencer is producing blocks.
    pub active: bool,
    /// A block is being sealed right now; `admin_stopSequencer` waits for it.
    pub sealing: bool,
    /// op-node process.
    pub op_node: Process,
    /// op-geth process.
    pub op_geth: Process,
    /// When op-node's engine becomes initialised (None: it is).
    pub engine_ready_at: Option<Instant>,
    /// Active but sealing nothing.
    pub stalled: bool,
    /// op-geth stopped importing.
    pub execution_lag: bool,
    /// The persisted admin state (`--rpc.admin-state`), when enabled and ever set.
    pub admin_state: Option<bool>,
    /// When the sequencer seals next.
    pub next_seal_at: Instant,
    /// Faults in force, with their parameters.
    pub faults: BTreeMap<FaultKind, FaultParams>,
    /// Gossiped blocks that arrived before their parent, imported once it arrives (op-node's
    /// unsafe-payload queue). Without it a follower whose ancestor fetch takes longer than a block
    /// time stays one block behind for as long as the leader seals, and a leader that dies then
    /// takes blocks with it that every follower had received.
    pub orphans: Vec<Arc<Block>>,
    /// `admin_overrideLeader` was called: the conductor client answers "leader" without asking,
    /// until op-node restarts.
    pub leader_overridden: bool,
}

/// How many early blocks a node keeps waiting for their parent.
const MAX_ORPHANS: usize = 64;

impl NodeState {
    /// A node at genesis.
    pub fn new(genesis: Arc<Block>, options: &NodeOptions, now: Instant) -> Self {
        Self {
            store: BlockStore::new(genesis.clone()),
            geth_head: genesis,
            active: options.sequencer_enabled && options.start_active,
            sealing: false,
            op_node: Process::Up,
            op_geth: Process::Up,
            engine_ready_at: (options.engine_init_ms > 0)
                .then(|| now + Duration::from_millis(options.engine_init_ms)),
            stalled: false,
            execution_lag: false,
            admin_state: None,
            next_seal_at: now,
            faults: BTreeMap::new(),
            orphans: Vec::new(),
            leader_overridden: false,
        }
    }

    /// Keeps `block`, whose parent is unknown, until its parent arrives. The queue is bounded:
    /// the oldest block goes first, and the ancestor fetch recovers whatever was dropped.
    pub fn stash_orphan(&mut self, block: Arc<Block>) {
        if self.orphans.iter().any(|orphan| orphan.hash == block.hash) {
            return;
        }
        if self.orphans.len() >= MAX_ORPHANS
            && let Some(oldest) = (0..self.orphans.len()).min_by_key(|index| self.orphans[*index].number)
        {
            self.orphans.swap_remove(oldest);
        }
        self.orphans.push(block);
    }

    /// Takes out a queued block whose parent is now known, if any.
    pub fn take_attachable_orphan(&mut self) -> Option<Arc<Block>> {
        let store = &self.store;
        let index = self.orphans.iter().position(|orphan| store.get(&orphan.parent_hash).is_some())?;
        Some(self.orphans.swap_remove(index))
    }

    /// True once op-node's engine is initialised (it has a forkchoice head).
    pub fn engine_ready(&mut self, now: Instant) -> bool {
        match self.engine_ready_at {
            None => true,
            Some(at) if now >= at && self.op_geth == Process::Up => {
                self.engine_ready_at = None;
                true
            }
            Some(_) => false,
        }
    }

    /// True when the sequencer loop may seal a block now.
    pub fn can_seal(&self) -> bool {
        self.active && !self.stalled && self.op_node == Process::Up && self.op_geth == Process::Up
    }

    /// True when the node processes p2p traffic.
    pub fn can_import(&self) -> bool {
        self.op_node == Process::Up && self.op_geth == Process::Up
    }

    /// True when a peer can serve ancestor requests from this node.
    pub fn can_serve_peers(&self) -> bool {
        self.op_node == Process::Up
    }

    /// The unsafe head.
    pub fn head(&self) -> &Arc<Block> {
        self.store.head()
    }

    /// Seals a block on the head, as `producer`.
    pub fn seal(&mut self, params: &ChainParams, producer: &str) -> Arc<Block> {
        let block = Arc::new(params.child_of(self.head(), producer));
        self.adopt_own(block)
    }

    /// Adopts a block this node built on its head (with anvil, mined there and carrying its hash).
    pub fn adopt_own(&mut self, block: Arc<Block>) -> Arc<Block> {
        self.store.insert_own(block.clone());
        self.engine_ready_at = None;
        self.follow_execution();
        block
    }

    /// Offers a gossiped or fetched block.
    pub fn import(&mut self, block: Arc<Block>) -> Imported {
        let outcome = self.store.import(block);
        if matches!(outcome, ImportOutcome::Extended | ImportOutcome::Reorged { .. }) {
            self.engine_ready_at = None;
            self.follow_execution();
        }
        Imported { outcome, head: self.head().id() }
    }

    /// op-geth imports up to op-node's head unless execution lags.
    pub fn follow_execution(&mut self) {
        if !self.execution_lag {
            self.geth_head = self.head().clone();
        }
    }

    /// `optimism_syncStatus` as op-node would answer it now.
    pub fn sync_status(&mut self, params: &ChainParams, shape: SyncStatusShape, now: Instant) -> SyncStatus {
        if !self.engine_ready(now) {
            return SyncStatus { shape, ..SyncStatus::default() };
        }
        let head = self.head().clone();
        let at_lag = |lag: u64| {
            self.store
                .canonical_at(head.number.saturating_sub(lag))
                .map_or_else(|| head.l2_ref(), |block| block.l2_ref())
        };
        let safe = at_lag(params.safe_lag_blocks);
        let finalized = at_lag(params.finalized_lag_blocks);
        let head_l1 = params.l1_block(head.l1_origin.number + 1);
        let finalized_l1 = params.l1_block(finalized.l1_origin.number);
        SyncStatus {
            current_l1: params.l1_block(safe.l1_origin.number),
            current_l1_finalized: finalized_l1,
            head_l1,
            safe_l1: params.l1_block(head_l1.number.saturating_sub(1)),
            finalized_l1,
            unsafe_l2: head.l2_ref(),
            safe_l2: safe,
            finalized_l2: finalized,
            pending_safe_l2: safe,
            cross_unsafe_l2: head.l2_ref(),
            local_safe_l2: safe,
            queued_unsafe_l2: Default::default(),
            engine_sync_target: head.l2_ref(),
            shape,
        }
    }

    /// op-geth's canonical block at `number`, if it has imported it.
    pub fn geth_block_at(&self, number: u64) -> Option<Arc<Block>> {
        if number > self.geth_head.number {
            return None;
        }
        if self.execution_lag {
            // The canonical chain may have moved past (or away from) what op-geth imported.
            let mut cursor = self.geth_head.clone();
            while cursor.number > number {
                cursor = self.store.get(&cursor.parent_hash)?.clone();
            }
            return Some(cursor);
        }
        self.store.canonical_at(number).cloned()
    }
}

/// One simulated sequencer node.
#[derive(Debug)]
pub struct Node {
    /// Unique within the chain.
    pub name: String,
    /// Its op-node flags.
    pub options: NodeOptions,
    /// Its conductor client, with `--conductor.enabled`.
    pub conductor: Option<ConductorClient>,
    state: Mutex<NodeState>,
    /// Woken on every state change the sequencer loop or a stop waiter cares about.
    changed: Notify,
}

impl Node {
    /// A node named `name` with `options`, starting from `state`; an error when its conductor URL
    /// is not one.
    pub fn new(name: String, options: NodeOptions, state: NodeState) -> Result<Self, SimError> {
        let timeout = Duration::from_millis(options.conductor_rpc_timeout_ms.max(1));
        let conductor = match &options.conductor_rpc {
            Some(url) => Some(ConductorClient::new(url, timeout)?),
            None => None,
        };
        Ok(Self { name, options, conductor, state: Mutex::new(state), changed: Notify::new() })
    }

    /// op-node's leader check: true without a conductor or after `admin_overrideLeader`, else the
    /// conductor's answer (an error stays an error).
    pub async fn leader_check(&self) -> Result<bool, String> {
        match &self.conductor {
            Some(conductor) if !self.lock().leader_overridden => {
                conductor.leader(self.conductor_path()).await
            }
            _ => Ok(true),
        }
    }

    /// The faults on the path to its conductor now (`conductor_delay`, `conductor_drop`).
    pub fn conductor_path(&self) -> PathFaults {
        let state = self.lock();
        let delay_ms = state.faults.get(&FaultKind::ConductorDelay).and_then(|params| params.latency_ms);
        let dropped = state.faults.get(&FaultKind::ConductorDrop).map(|params| {
            parse_isolate(FaultKind::ConductorDrop, params.mode.as_deref()).unwrap_or_default()
        });
        PathFaults { delay: Duration::from_millis(delay_ms.unwrap_or(0)), dropped }
    }

    /// Locks the node's state.
    pub fn lock(&self) -> MutexGuard<'_, NodeState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes the sequencer loop and anyone waiting for a seal to finish.
    pub fn notify(&self) {
        self.changed.notify_waiters();
    }

    /// Resolves at the next [`Node::notify`]; `enable` it before checking state.
    pub fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }
}
