//! A chain of simulated nodes: the sequencer loops, p2p gossip with latency, jitter and partitions,
//! ancestor sync, and fault application.
//!
//! Lock order: a node's state lock, then the ledger's. No code path holds two nodes' locks.

use crate::{
    anvil::{Anvil, Mined},
    block::{Block, ChainParams},
    conductor,
    error::SimError,
    fault_params::{merge_params, parse_isolate, parse_malformed, validate_params},
    ledger::Ledger,
    node::{Imported, Node, NodeOptions, NodeState, Process},
    payload,
    store::ImportOutcome,
};
use op_sim_api::{FaultKind, FaultParams, IsolateMode, LedgerEntry, MalformedMode, SeenVia};
use opc_wire::conductor::commit_failed;
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};
use std::{
    pin::pin,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Blocks fetched per ancestor-sync round trip.
const ANCESTORS_PER_REQUEST: usize = 64;
/// Round trips one ancestor sync may take before giving up until the next gossip.
const MAX_ANCESTOR_ROUNDS: usize = 64;
/// Default size of a `malformed` reply with `huge_body`.
pub const DEFAULT_HUGE_BODY_BYTES: u64 = 8 * 1024 * 1024;

/// p2p gossip timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GossipConfig {
    /// One-way delay of every message.
    pub latency_ms: u64,
    /// Extra delay drawn uniformly from `0..=jitter_ms` per message.
    pub jitter_ms: u64,
}

impl Default for GossipConfig {
    fn default() -> Self {
        Self { latency_ms: 20, jitter_ms: 10 }
    }
}

/// Which RPC server of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// The consensus client's RPC.
    OpNode,
    /// The execution client's RPC.
    OpGeth,
}

impl Service {
    /// The path segment used in shared-port mode and in labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpNode => "op-node",
            Self::OpGeth => "op-geth",
        }
    }
}

/// How an RPC server behaves right now, derived from the node's processes and faults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointBehaviour {
    /// Connections refused (crashed, or isolated with `refuse`).
    pub down: bool,
    /// Connections accepted, never answered (hung, or isolated with `blackhole`).
    pub hung: bool,
    /// Added latency per reply.
    pub latency_ms: u64,
    /// Broken replies.
    pub malformed: Option<(MalformedMode, u64)>,
}

#[derive(Debug)]
struct Network {
    /// Group id per node index; `None` when the network is whole.
    groups: Option<Vec<usize>>,
    rng: StdRng,
}

/// A chain: its nodes, p2p network and ledger.
#[derive(Debug)]
pub struct Chain {
    /// Chain name, unique within a simulator.
    pub name: String,
    /// Consensus parameters.
    pub params: ChainParams,
    /// Gossip timing.
    pub gossip: GossipConfig,
    /// How long sealing one block takes; `admin_stopSequencer` waits for a seal in progress.
    pub seal_ms: u64,
    /// About how large the envelope of a block is, as committed to a conductor.
    pub payload_bytes: usize,
    /// Ground truth, shared with every other chain of the simulator.
    pub ledger: Ledger,
    /// The nodes, by index.
    pub nodes: Vec<Node>,
    network: Mutex<Network>,
    /// One anvil per node when anvil executes the chain (see [`crate::anvil`]); empty otherwise.
    anvils: Vec<Arc<Anvil>>,
}

impl Chain {
    /// A chain whose nodes all sit at genesis.
    pub fn new(
        name: String,
        params: ChainParams,
        gossip: GossipConfig,
        seal_ms: u64,
        ledger: Ledger,
        nodes: Vec<(String, NodeOptions)>,
        seed: u64,
    ) -> Result<Self, SimError> {
        let genesis = Arc::new(params.genesis());
        let now = Instant::now();
        let nodes: Vec<Node> = nodes
            .into_iter()
            .map(|(name, options)| {
                let mut state = NodeState::new(genesis.clone(), &options, now);
                state.next_seal_at = now + Duration::from_millis(params.block_time_ms);
                Node::new(name, options, state)
            })
            .collect::<Result<_, _>>()?;
        for node in &nodes {
            let state = node.lock();
            if state.active {
                ledger.record(LedgerEntry::Activated {
                    chain: name.clone(),
                    node: node.name.clone(),
                    head: state.head().id(),
                    cause: "started active (no --sequencer.stopped)".into(),
                    t_ms: ledger.now_ms(),
                });
            }
        }
        let network = Mutex::new(Network { groups: None, rng: StdRng::seed_from_u64(seed) });
        Ok(Self {
            name,
            params,
            gossip,
            seal_ms,
            payload_bytes: 0,
            ledger,
            nodes,
            network,
            anvils: Vec::new(),
        })
    }

    /// Pads every committed envelope to about `bytes` bytes.
    pub fn with_payload_bytes(mut self, bytes: usize) -> Self {
        self.payload_bytes = bytes;
        self
    }

    /// Lets `anvils` (one per node, in node order) execute the chain's blocks. Their genesis must
    /// be `params.genesis_hash`.
    pub fn with_anvils(mut self, anvils: Vec<Arc<Anvil>>) -> Self {
        self.anvils = anvils;
        self
    }

    /// The anvil executing node `index`'s blocks, when anvil executes the chain.
    pub fn anvil(&self, index: usize) -> Option<&Arc<Anvil>> {
        self.anvils.get(index)
    }

    /// The index of the node called `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|node| node.name == name)
    }

    fn record(&self, entry: LedgerEntry) {
        self.ledger.record(entry);
    }

    fn now_ms(&self) -> u64 {
        self.ledger.now_ms()
    }

    fn block_time(&self) -> Duration {
        Duration::from_millis(self.params.block_time_ms)
    }

    /// Runs every node's sequencer loop until `cancel`.
    pub fn spawn_sequencers(self: &Arc<Self>, cancel: &CancellationToken) {
        for index in 0..self.nodes.len() {
            tokio::spawn(self.clone().run_sequencer(index, cancel.clone()));
        }
    }

    /// The sequencer loop of one node: while active, seal a block every block time on the head.
    async fn run_sequencer(self: Arc<Self>, index: usize, cancel: CancellationToken) {
        let node = &self.nodes[index];
        loop {
            let mut notified = pin!(node.changed());
            notified.as_mut().enable();
            let wake_at = {
                let state = node.lock();
                state.can_seal().then_some(state.next_seal_at)
            };
            match wake_at {
                None => tokio::select! {
                    () = cancel.cancelled() => return,
                    () = notified => continue,
                },
                Some(at) => tokio::select! {
                    () = cancel.cancelled() => return,
                    () = notified => continue,
                    () = tokio::time::sleep_until(at) => {}
                },
            }
            {
                let mut state = node.lock();
                if !state.can_seal() || Instant::now() < state.next_seal_at {
                    continue;
                }
                state.sealing = true;
            }
            if self.seal_ms > 0 {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_millis(self.seal_ms)) => {}
                }
            }
            // With anvil the block is mined there first and keeps anvil's hash.
            let mined = match self.anvil(index) {
                Some(anvil) => Some(anvil.mine_next(&self.params, node).await),
                None => None,
            };
            let sealed = match &node.conductor {
                None => self.publish_sealed(index, mined),
                Some(conductor) => {
                    let Some(block) = self.seal_candidate(index, mined) else {
                        self.finish_seal(index, None);
                        continue;
                    };
                    let envelope = payload::envelope_of(&block, self.payload_bytes);
                    match conductor.commit(&envelope, || node.conductor_path()).await {
                        Ok(sent_at) => self.publish_committed(index, block, self.ledger.ms_at(sent_at)),
                        Err(failure) => {
                            self.commit_failed(index, &block, &failure);
                            continue;
                        }
                    }
                }
            };
            node.notify();
            if let Some(block) = sealed {
                self.gossip(index, block);
            }
        }
    }

    /// Without a conductor: the sealed block becomes the head at once (if the node can still seal).
    fn publish_sealed(&self, index: usize, mined: Option<Mined<'_>>) -> Option<Arc<Block>> {
        let node = &self.nodes[index];
        let mut state = node.lock();
        let block = match mined {
            _ if !state.can_seal() => None,
            None => Some(state.seal(&self.params, &node.name)),
            // The guard keeps imports out until the block is in the store.
            Some(Mined::Block(block, _ops)) => Some(state.adopt_own(block)),
            Some(Mined::Failed) => None,
        };
        self.finish_seal_locked(index, &mut state, block, None)
    }

    /// With a conductor: the block to commit, built on the head, not yet in the store.
    fn seal_candidate(&self, index: usize, mined: Option<Mined<'_>>) -> Option<Arc<Block>> {
        let node = &self.nodes[index];
        let state = node.lock();
        match mined {
            _ if !state.can_seal() => None,
            None => Some(Arc::new(self.params.child_of(state.head(), &node.name))),
            Some(Mined::Block(block, _ops)) => Some(block),
            Some(Mined::Failed) => None,
        }
    }

    /// A committed block is gossiped and inserted, as op-node does once its conductor accepted it,
    /// even if the sequencer was stopped meanwhile; unless the node died or its head moved on (a
    /// stale build, dropped: the commit is recorded all the same, as the conductor holds it).
    fn publish_committed(&self, index: usize, block: Arc<Block>, sent_ms: u64) -> Option<Arc<Block>> {
        let mut state = self.nodes[index].lock();
        if state.can_import() && state.head().hash == block.parent_hash {
            let block = state.adopt_own(block);
            return self.finish_seal_locked(index, &mut state, Some(block), Some(sent_ms));
        }
        self.record(LedgerEntry::UnpublishedCommit {
            chain: self.name.clone(),
            node: self.nodes[index].name.clone(),
            number: block.number,
            hash: block.hash,
            parent: block.parent_hash,
            commit_sent_ms: sent_ms,
            t_ms: self.now_ms(),
        });
        self.finish_seal_locked(index, &mut state, None, None)
    }

    /// op-node drops a block its conductor did not accept, logs why and backs off.
    fn commit_failed(&self, index: usize, block: &Block, failure: &conductor::CommitFailure) {
        let node = &self.nodes[index];
        {
            let mut state = node.lock();
            state.sealing = false;
            state.next_seal_at = Instant::now() + conductor::COMMIT_FAILURE_BACKOFF;
        }
        let error = &failure.error;
        tracing::debug!(chain = %self.name, node = %node.name, number = block.number, "{}", commit_failed(error));
        self.record(LedgerEntry::CommitFailed {
            chain: self.name.clone(),
            node: node.name.clone(),
            number: block.number,
            hash: block.hash,
            parent: block.parent_hash,
            error: error.clone(),
            t_ms: self.now_ms(),
            unanswered_sent_ms: failure.unanswered_sent_at.map(|at| self.ledger.ms_at(at)),
        });
        node.notify();
    }

    fn finish_seal(&self, index: usize, block: Option<Arc<Block>>) {
        let mut state = self.nodes[index].lock();
        self.finish_seal_locked(index, &mut state, block, None);
        drop(state);
        self.nodes[index].notify();
    }

    /// Ends a seal: records the block (if any, with when its accepted commit was sent) and
    /// schedules the next one.
    fn finish_seal_locked(
        &self,
        index: usize,
        state: &mut NodeState,
        block: Option<Arc<Block>>,
        commit_sent_ms: Option<u64>,
    ) -> Option<Arc<Block>> {
        state.sealing = false;
        if let Some(block) = &block {
            self.record(LedgerEntry::Block {
                chain: self.name.clone(),
                producer: self.nodes[index].name.clone(),
                number: block.number,
                hash: block.hash,
                parent: block.parent_hash,
                t_ms: self.now_ms(),
                commit_sent_ms,
            });
        }
        let now = Instant::now();
        state.next_seal_at += self.block_time();
        if state.next_seal_at < now {
            // Fell behind (stall healed, slow machine): resume the cadence from now.
            state.next_seal_at = now;
        }
        block
    }

    /// `admin_postUnsafePayload`: the block goes to node `index` as if it came over p2p (queued
    /// when its parent is missing).
    pub async fn post_payload(&self, index: usize, block: Block) -> Result<(), String> {
        if self.anvil(index).is_none() && !self.params.has_valid_hash(&block) {
            return Err(format!("payload has bad block hash {}", block.hash));
        }
        let block = Arc::new(block);
        let Some(imported) = self.import(index, block.clone(), SeenVia::Replay).await else {
            return Err("failed to insert payload: the execution engine is unavailable".into());
        };
        self.record_reorg(index, &imported.outcome, imported.head);
        if imported.outcome == ImportOutcome::MissingParent {
            self.nodes[index].lock().stash_orphan(block);
        }
        self.attach_orphans(index).await;
        self.nodes[index].notify();
        Ok(())
    }

    /// Sends a sealed block to every peer, each after its own latency.
    fn gossip(self: &Arc<Self>, from: usize, block: Arc<Block>) {
        for to in (0..self.nodes.len()).filter(|to| *to != from) {
            let delay = self.message_delay();
            let chain = self.clone();
            let block = block.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                chain.deliver(from, to, block).await;
            });
        }
    }

    fn message_delay(&self) -> Duration {
        let jitter = if self.gossip.jitter_ms == 0 {
            0
        } else {
            self.lock_network().rng.random_range(0..=self.gossip.jitter_ms)
        };
        Duration::from_millis(self.gossip.latency_ms + jitter)
    }

    fn lock_network(&self) -> MutexGuard<'_, Network> {
        self.network.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// True when `a` and `b` can exchange p2p messages.
    pub fn connected(&self, a: usize, b: usize) -> bool {
        self.lock_network().groups.as_ref().is_none_or(|groups| groups[a] == groups[b])
    }

    async fn deliver(&self, from: usize, to: usize, block: Arc<Block>) {
        if !self.connected(from, to) {
            return;
        }
        let Some(imported) = self.import(to, block.clone(), SeenVia::P2p).await else { return };
        self.record_reorg(to, &imported.outcome, imported.head);
        if imported.outcome == ImportOutcome::MissingParent {
            self.nodes[to].lock().stash_orphan(block.clone());
            self.sync_ancestors(from, to, block).await;
        }
        self.attach_orphans(to).await;
    }

    /// Imports the queued blocks of `to` whose parent has arrived, in arrival order of parents.
    async fn attach_orphans(&self, to: usize) {
        loop {
            let Some(orphan) = self.nodes[to].lock().take_attachable_orphan() else { return };
            // Queued ones were seen when they arrived.
            let Some(imported) = self.import(to, orphan, SeenVia::P2p).await else { return };
            self.record_reorg(to, &imported.outcome, imported.head);
        }
    }

    /// Offers a block to node `to`: into its store, or with anvil through its anvil first. None
    /// when the node cannot import now. The first node other than its producer that takes a block
    /// in is recorded (`seen`).
    async fn import(&self, to: usize, block: Arc<Block>, via: SeenVia) -> Option<Imported> {
        let imported = match self.anvil(to) {
            Some(anvil) => anvil.import(&self.nodes[to], block.clone()).await,
            None => {
                let mut state = self.nodes[to].lock();
                state.can_import().then(|| state.import(block.clone()))
            }
        };
        let node = &self.nodes[to].name;
        if imported.is_some() && *node != block.producer {
            self.ledger.record_first_sighting(LedgerEntry::Seen {
                chain: self.name.clone(),
                node: node.clone(),
                producer: block.producer.clone(),
                number: block.number,
                hash: block.hash,
                via,
                t_ms: self.now_ms(),
            });
        }
        imported
    }

    fn record_reorg(&self, index: usize, outcome: &ImportOutcome, new_head: opc_wire::BlockId) {
        if let ImportOutcome::Reorged { old_head, dropped } = outcome {
            self.record(LedgerEntry::Reorg {
                chain: self.name.clone(),
                node: self.nodes[index].name.clone(),
                old_head: old_head.id(),
                new_head,
                depth: *dropped,
                t_ms: self.now_ms(),
            });
        }
    }

    /// Fetches the ancestors of `tip` that `to` lacks from `from`, one round trip per batch, then
    /// imports them oldest first. Gives up quietly when the peer becomes unreachable: the next
    /// gossiped block retries.
    async fn sync_ancestors(&self, from: usize, to: usize, tip: Arc<Block>) {
        let mut fetched: Vec<Arc<Block>> = vec![tip];
        for _ in 0..MAX_ANCESTOR_ROUNDS {
            tokio::time::sleep(self.message_delay() * 2).await;
            if !self.connected(from, to) {
                return;
            }
            let Some(oldest) = fetched.first().cloned() else { return };
            let batch = {
                let peer = self.nodes[from].lock();
                if !peer.can_serve_peers() {
                    return;
                }
                peer.store.ancestors(oldest.parent_hash, ANCESTORS_PER_REQUEST, |_| false)
            };
            if batch.is_empty() {
                return;
            }
            fetched.splice(0..0, batch);
            let start = {
                let state = self.nodes[to].lock();
                if !state.can_import() {
                    return;
                }
                // Import from the first fetched block whose parent this node knows.
                fetched.iter().position(|block| state.store.get(&block.parent_hash).is_some())
            };
            let Some(start) = start else { continue };
            for block in &fetched[start..] {
                let Some(imported) = self.import(to, block.clone(), SeenVia::P2p).await else { return };
                self.record_reorg(to, &imported.outcome, imported.head);
            }
            return;
        }
    }

    /// What a (re)connection does between op-node peers: they exchange heads, and the one behind
    /// fetches what it misses. Called for every node after a partition heals, and for a node whose
    /// process comes back; without it a follower that missed the last blocks of a quiet chain
    /// would stay behind until the next block is gossiped.
    pub fn resync(self: &Arc<Self>, index: usize) {
        for peer in (0..self.nodes.len()).filter(|peer| *peer != index && self.connected(index, *peer)) {
            let (mine, theirs) =
                (self.nodes[index].lock().head().clone(), self.nodes[peer].lock().head().clone());
            let (from, to, tip) = match mine.number.cmp(&theirs.number) {
                std::cmp::Ordering::Less => (peer, index, theirs),
                std::cmp::Ordering::Greater => (index, peer, mine),
                std::cmp::Ordering::Equal => continue,
            };
            let chain = self.clone();
            tokio::spawn(async move { chain.deliver(from, to, tip).await });
        }
    }

    /// Splits the p2p network into `groups` of node indices; unlisted nodes are alone. Empty heals.
    pub fn partition(&self, groups: &[Vec<usize>]) {
        let named: Vec<Vec<String>> = groups
            .iter()
            .map(|group| group.iter().map(|index| self.nodes[*index].name.clone()).collect())
            .collect();
        {
            let mut network = self.lock_network();
            if groups.is_empty() {
                network.groups = None;
            } else {
                // Unlisted nodes get group ids past the listed ones: each is alone.
                let mut ids: Vec<usize> = (groups.len()..groups.len() + self.nodes.len()).collect();
                for (group_id, group) in groups.iter().enumerate() {
                    for index in group {
                        ids[*index] = group_id;
                    }
                }
                network.groups = Some(ids);
            }
        }
        self.record(LedgerEntry::Partition { chain: self.name.clone(), groups: named, t_ms: self.now_ms() });
    }

    /// Applies a fault to node `index`.
    pub fn apply_fault(&self, index: usize, kind: FaultKind, params: FaultParams) -> Result<(), SimError> {
        validate_params(kind, &params)?;
        let node = &self.nodes[index];
        let target = params.target.unwrap_or_default();
        let now = Instant::now();
        {
            let mut state = node.lock();
            match kind {
                FaultKind::Crash => {
                    if target.hits_op_node() && state.op_node != Process::Down {
                        state.op_node = Process::Down;
                        state.sealing = false;
                        self.deactivate(index, &mut state, "op-node crashed");
                    }
                    if target.hits_op_geth() {
                        state.op_geth = Process::Down;
                    }
                }
                FaultKind::Hang => {
                    if target.hits_op_node() && state.op_node == Process::Up {
                        state.op_node = Process::Frozen;
                    }
                    if target.hits_op_geth() && state.op_geth == Process::Up {
                        state.op_geth = Process::Frozen;
                    }
                }
                FaultKind::ExecutionLag => state.execution_lag = true,
                FaultKind::Stall => state.stalled = true,
                FaultKind::Slow | FaultKind::Malformed | FaultKind::Isolate => {}
                FaultKind::ConductorDelay | FaultKind::ConductorDrop if node.conductor.is_none() => {
                    return Err(SimError::BadFault(format!(
                        "{kind}: {} has no conductor (--conductor.enabled)",
                        node.name
                    )));
                }
                // The conductor client reads them from the faults in force.
                FaultKind::ConductorDelay | FaultKind::ConductorDrop => {}
                FaultKind::StartSequencer => {
                    if !node.options.sequencer_enabled {
                        return Err(SimError::BadFault(format!(
                            "{} is not sequencer-enabled; start_sequencer needs a sequencer",
                            node.name
                        )));
                    }
                    if state.op_node != Process::Up || state.active {
                        return Err(SimError::BadFault(format!(
                            "{} cannot be started: its op-node is {:?} and active = {}",
                            node.name, state.op_node, state.active
                        )));
                    }
                    state.active = true;
                    state.next_seal_at = now;
                    self.record(LedgerEntry::Activated {
                        chain: self.name.clone(),
                        node: node.name.clone(),
                        head: state.head().id(),
                        cause: "started behind the coordinator's back".into(),
                        t_ms: self.now_ms(),
                    });
                }
                FaultKind::StopSequencer => {
                    if !state.active {
                        return Err(SimError::BadFault(format!("{} is not active", node.name)));
                    }
                    self.deactivate(index, &mut state, "stopped behind the coordinator's back");
                }
            }
            if !matches!(kind, FaultKind::StartSequencer | FaultKind::StopSequencer) {
                let merged = merge_params(state.faults.get(&kind), params.clone());
                state.faults.insert(kind, merged);
            }
        }
        node.notify();
        self.record(LedgerEntry::Fault {
            chain: self.name.clone(),
            node: node.name.clone(),
            kind,
            params,
            t_ms: self.now_ms(),
        });
        Ok(())
    }

    /// Heals one kind of fault (or every fault) on node `index`.
    pub fn heal(&self, index: usize, kind: Option<FaultKind>) {
        let node = &self.nodes[index];
        let now = Instant::now();
        {
            let mut state = node.lock();
            let kinds: Vec<FaultKind> = match kind {
                Some(kind) => state.faults.contains_key(&kind).then_some(kind).into_iter().collect(),
                None => state.faults.keys().copied().collect(),
            };
            for kind in kinds {
                let Some(params) = state.faults.remove(&kind) else { continue };
                let target = params.target.unwrap_or_default();
                match kind {
                    FaultKind::Crash => {
                        if target.hits_op_geth() {
                            state.op_geth = Process::Up;
                            state.follow_execution();
                        }
                        if target.hits_op_node() && state.op_node == Process::Down {
                            self.restart_op_node(index, &mut state, now);
                        }
                    }
                    FaultKind::Hang => {
                        if target.hits_op_geth() && state.op_geth == Process::Frozen {
                            state.op_geth = Process::Up;
                        }
                        if target.hits_op_node() && state.op_node == Process::Frozen {
                            state.op_node = Process::Up;
                            let resume_at = now + self.block_time();
                            if !params.seal_on_resume.unwrap_or(false) && state.next_seal_at < resume_at {
                                state.next_seal_at = resume_at;
                            }
                        }
                    }
                    FaultKind::ExecutionLag => {
                        state.execution_lag = false;
                        state.follow_execution();
                    }
                    FaultKind::Stall => state.stalled = false,
                    _ => {}
                }
            }
        }
        node.notify();
        self.record(LedgerEntry::Heal {
            chain: self.name.clone(),
            node: node.name.clone(),
            kind,
            t_ms: self.now_ms(),
        });
    }

    /// op-node comes back with its chain kept, stopped or active per its flags.
    fn restart_op_node(&self, index: usize, state: &mut NodeState, now: Instant) {
        let node = &self.nodes[index];
        state.op_node = Process::Up;
        // The payload queue lived in the crashed process's memory, and so did the override.
        state.orphans.clear();
        state.leader_overridden = false;
        let (active, cause) = match (node.options.persist_admin_state, state.admin_state) {
            (true, Some(active)) => (active, "restarted with persisted admin state (--rpc.admin-state)"),
            _ => (node.options.start_active, "restarted without --sequencer.stopped"),
        };
        state.active = active && node.options.sequencer_enabled;
        let init = Duration::from_millis(node.options.engine_init_ms);
        state.engine_ready_at = Some(now + init);
        state.next_seal_at = now + self.block_time();
        if state.active {
            self.record(LedgerEntry::Activated {
                chain: self.name.clone(),
                node: node.name.clone(),
                head: state.head().id(),
                cause: cause.into(),
                t_ms: self.now_ms(),
            });
        }
    }

    /// Marks node `index` inactive and records why. No-op when it was not active.
    pub fn deactivate(&self, index: usize, state: &mut NodeState, cause: &str) {
        if !state.active {
            return;
        }
        state.active = false;
        self.record(LedgerEntry::Deactivated {
            chain: self.name.clone(),
            node: self.nodes[index].name.clone(),
            head: state.head().id(),
            cause: cause.into(),
            t_ms: self.now_ms(),
        });
    }

    /// Records that node `index` became active through `admin_startSequencer`.
    pub fn record_activated(&self, index: usize, state: &NodeState, cause: &str) {
        self.record(LedgerEntry::Activated {
            chain: self.name.clone(),
            node: self.nodes[index].name.clone(),
            head: state.head().id(),
            cause: cause.into(),
            t_ms: self.now_ms(),
        });
    }

    /// How node `index`'s `service` RPC server should behave now.
    pub fn endpoint_behaviour(&self, index: usize, service: Service) -> EndpointBehaviour {
        let state = self.nodes[index].lock();
        let process = match service {
            Service::OpNode => state.op_node,
            Service::OpGeth => state.op_geth,
        };
        let hits = |params: &FaultParams| {
            let target = params.target.unwrap_or_default();
            match service {
                Service::OpNode => target.hits_op_node(),
                Service::OpGeth => target.hits_op_geth(),
            }
        };
        let isolate = state
            .faults
            .get(&FaultKind::Isolate)
            .map(|params| parse_isolate(FaultKind::Isolate, params.mode.as_deref()).unwrap_or_default());
        let latency_ms = state
            .faults
            .get(&FaultKind::Slow)
            .filter(|params| hits(params))
            .and_then(|params| params.latency_ms)
            .unwrap_or(0);
        let malformed = state.faults.get(&FaultKind::Malformed).filter(|params| hits(params)).map(|params| {
            (
                parse_malformed(params.mode.as_deref()).unwrap_or_default(),
                params.size_bytes.unwrap_or(DEFAULT_HUGE_BODY_BYTES),
            )
        });
        EndpointBehaviour {
            down: process == Process::Down || isolate == Some(IsolateMode::Refuse),
            hung: process == Process::Frozen || isolate == Some(IsolateMode::Blackhole),
            latency_ms,
            malformed,
        }
    }
}
