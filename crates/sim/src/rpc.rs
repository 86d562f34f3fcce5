//! The JSON-RPC methods of a simulated node: op-node's `admin_*`, `optimism_syncStatus` and
//! `optimism_rollupConfig`, op-geth's `eth_*`, with op-node's exact check order and error strings.

use crate::{block::Block, chain::Chain, node::Node, payload};
use alloy_primitives::{Address, B256, Bytes, U64, U256, keccak256};
use jsonrpsee::{
    Methods, RpcModule,
    core::{RpcResult, async_trait},
    types::ErrorObjectOwned,
};
use opc_wire::{
    BlockHeader, BlockNumberOrTag, RollupConfig, SyncStatus,
    api::{EthApiServer, OpAdminApiServer, OptimismApiServer},
    conductor::{Envelope, OpNodeConductorAdminApiServer},
    op_node_errors as errors,
};
use std::{pin::pin, sync::Arc};
use tokio::time::Instant;

/// The RPC handler of one node; cheap to clone.
#[derive(Debug, Clone)]
pub struct NodeRpc {
    chain: Arc<Chain>,
    index: usize,
}

/// An op-node application error: code `-32000`, the message is all a client gets.
fn app_error(message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(errors::APPLICATION_ERROR_CODE, message.into(), None::<()>)
}

impl NodeRpc {
    /// The handler of node `index` of `chain`.
    pub fn new(chain: Arc<Chain>, index: usize) -> Self {
        Self { chain, index }
    }

    fn node(&self) -> &Node {
        &self.chain.nodes[self.index]
    }

    /// Without `--rpc.enable-admin` the namespace does not exist.
    fn require_admin(&self, method: &str) -> RpcResult<()> {
        if self.node().options.admin_enabled {
            Ok(())
        } else {
            Err(ErrorObjectOwned::owned(
                errors::METHOD_NOT_FOUND_CODE,
                errors::method_not_available(method),
                None::<()>,
            ))
        }
    }

    /// The op-node server: `admin_*` and `optimism_*`.
    pub fn op_node_methods(&self) -> Methods {
        let mut module = RpcModule::new(());
        // Every trait comes from one handler; the names cannot clash (distinct method names).
        let merged = module
            .merge(OpAdminApiServer::into_rpc(self.clone()))
            .and_then(|()| module.merge(OpNodeConductorAdminApiServer::into_rpc(self.clone())))
            .and_then(|()| module.merge(OptimismApiServer::into_rpc(self.clone())));
        debug_assert!(merged.is_ok(), "admin_ and optimism_ methods are disjoint");
        module.into()
    }

    /// The op-geth server: `eth_*`.
    pub fn op_geth_methods(&self) -> Methods {
        EthApiServer::into_rpc(self.clone()).into()
    }
}

#[async_trait]
impl OpAdminApiServer for NodeRpc {
    async fn admin_reset_derivation_pipeline(&self) -> RpcResult<()> {
        self.require_admin("admin_resetDerivationPipeline")
    }

    /// Checks in op-node's order: the conductor's leader check (with `--conductor.enabled`), already
    /// running, no prestate, hash mismatch, not enabled.
    async fn admin_start_sequencer(&self, block_hash: B256) -> RpcResult<()> {
        self.require_admin("admin_startSequencer")?;
        let node = self.node();
        match node.leader_check().await {
            Ok(true) => {}
            Ok(false) => return Err(app_error(errors::SEQUENCER_NOT_LEADER)),
            Err(error) => return Err(app_error(errors::leader_check_failed(&error))),
        }
        let mut state = node.lock();
        if state.active {
            return Err(app_error(errors::SEQUENCER_ALREADY_RUNNING));
        }
        if !state.engine_ready(Instant::now()) {
            return Err(app_error(errors::no_prestate(block_hash, 0)));
        }
        let head = state.head().clone();
        if head.hash != block_hash {
            return Err(app_error(errors::hash_mismatch(head.hash, head.number, block_hash)));
        }
        if !node.options.sequencer_enabled {
            return Err(app_error(errors::SEQUENCER_NOT_ENABLED));
        }
        state.active = true;
        if node.options.persist_admin_state {
            state.admin_state = Some(true);
        }
        // The next block is produced right away, on top of that head.
        state.next_seal_at = Instant::now();
        self.chain.record_activated(self.index, &state, "admin_startSequencer");
        drop(state);
        node.notify();
        Ok(())
    }

    /// Waits for the block being sealed, stops, and returns the head: the stopped hash. With a
    /// conductor the wait lasts only while the conductor still says this node leads; otherwise
    /// it stops at once, at its head.
    async fn admin_stop_sequencer(&self) -> RpcResult<B256> {
        self.require_admin("admin_stopSequencer")?;
        let node = self.node();
        if !node.options.sequencer_enabled {
            return Err(app_error(errors::SEQUENCER_NOT_ENABLED));
        }
        loop {
            let mut notified = pin!(node.changed());
            notified.as_mut().enable();
            let sealing = {
                let state = node.lock();
                if !state.active {
                    return Err(app_error(errors::SEQUENCER_NOT_RUNNING));
                }
                state.sealing
            };
            let skip_wait =
                sealing && node.conductor.is_some() && !matches!(node.leader_check().await, Ok(true));
            {
                let mut state = node.lock();
                if !state.active {
                    return Err(app_error(errors::SEQUENCER_NOT_RUNNING));
                }
                if !state.sealing || skip_wait {
                    self.chain.deactivate(self.index, &mut state, "admin_stopSequencer");
                    if node.options.persist_admin_state {
                        state.admin_state = Some(false);
                    }
                    let engine_ready = state.engine_ready(Instant::now());
                    let head = state.head().hash;
                    drop(state);
                    node.notify();
                    let zero = node.options.zero_stopped_hash || !engine_ready;
                    return Ok(if zero { B256::ZERO } else { head });
                }
            }
            notified.await;
        }
    }

    async fn admin_sequencer_active(&self) -> RpcResult<bool> {
        self.require_admin("admin_sequencerActive")?;
        Ok(self.node().lock().active)
    }
}

#[async_trait]
impl OpNodeConductorAdminApiServer for NodeRpc {
    async fn post_unsafe_payload(&self, envelope: Envelope) -> RpcResult<()> {
        self.require_admin("admin_postUnsafePayload")?;
        let block = payload::block_of(&envelope).map_err(app_error)?;
        self.chain.post_payload(self.index, block).await.map_err(app_error)
    }

    async fn override_leader(&self) -> RpcResult<()> {
        self.require_admin("admin_overrideLeader")?;
        self.node().lock().leader_overridden = true;
        Ok(())
    }
}

#[async_trait]
impl OptimismApiServer for NodeRpc {
    async fn sync_status(&self) -> RpcResult<SyncStatus> {
        let node = self.node();
        let shape = node.options.sync_status_shape;
        Ok(node.lock().sync_status(&self.chain.params, shape, Instant::now()))
    }

    async fn rollup_config(&self) -> RpcResult<RollupConfig> {
        Ok(self.chain.params.rollup_config())
    }
}

#[async_trait]
impl EthApiServer for NodeRpc {
    async fn block_by_number(&self, block: BlockNumberOrTag, _full: bool) -> RpcResult<Option<BlockHeader>> {
        let params = &self.chain.params;
        let state = self.node().lock();
        let head = state.geth_head.number;
        let number = match block {
            BlockNumberOrTag::Latest | BlockNumberOrTag::Pending => head,
            BlockNumberOrTag::Safe => head.min(state.head().number.saturating_sub(params.safe_lag_blocks)),
            BlockNumberOrTag::Finalized => {
                head.min(state.head().number.saturating_sub(params.finalized_lag_blocks))
            }
            BlockNumberOrTag::Earliest => 0,
            BlockNumberOrTag::Number(number) => number,
        };
        Ok(state.geth_block_at(number).map(|block| header_of(&block)))
    }

    async fn block_by_hash(&self, hash: B256, _full: bool) -> RpcResult<Option<BlockHeader>> {
        let state = self.node().lock();
        let Some(block) = state.store.get(&hash).cloned() else { return Ok(None) };
        let imported = state.geth_block_at(block.number).is_some_and(|at| at.hash == hash)
            || (block.number <= state.geth_head.number && !state.execution_lag);
        Ok(imported.then(|| header_of(&block)))
    }

    async fn block_number(&self) -> RpcResult<U64> {
        Ok(U64::from(self.node().lock().geth_head.number))
    }

    async fn chain_id(&self) -> RpcResult<U64> {
        Ok(U64::from(self.chain.params.chain_id))
    }
}

/// The op-geth header of a simulated block: the fields the coordinator reads, and plausible
/// values for the rest so the reply has op-geth's shape.
pub fn header_of(block: &Block) -> BlockHeader {
    let derived = |salt: &[u8]| keccak256([block.hash.as_slice(), salt].concat());
    BlockHeader {
        hash: block.hash,
        parent_hash: block.parent_hash,
        number: U64::from(block.number),
        timestamp: U64::from(block.timestamp),
        state_root: derived(b"state"),
        transactions_root: derived(b"transactions"),
        receipts_root: derived(b"receipts"),
        miner: Address::from_word(derived(b"fee-vault")),
        gas_limit: U64::from(30_000_000u64),
        gas_used: U64::from(46_000u64),
        base_fee_per_gas: Some(U64::from(1_000_000u64)),
        difficulty: U256::ZERO,
        extra_data: Bytes::new(),
        transactions: vec![derived(b"l1-info-deposit")],
    }
}
