//! JSON-RPC traits of the sequencer nodes.
//!
//! `admin_*` comes from `op-alloy-rpc-jsonrpsee` (the published definition); the `optimism_*` and
//! `eth_*` subsets are ours because no light crate publishes them. jsonrpsee generates a
//! `...Server` trait the simulator implements and a `...Client` extension the coordinator calls.

use crate::{BlockHeader, BlockNumberOrTag, RollupConfig, SyncStatus};
use alloy_primitives::{B256, U64};
use jsonrpsee::{core::RpcResult, proc_macros::rpc};

pub use op_alloy_rpc_jsonrpsee::traits::{OpAdminApiClient, OpAdminApiServer};

/// The op-node `optimism_*` subset the coordinator reads.
#[rpc(server, client, namespace = "optimism")]
pub trait OptimismApi {
    /// `optimism_syncStatus`: L1 and L2 heads of the node.
    #[method(name = "syncStatus")]
    async fn sync_status(&self) -> RpcResult<SyncStatus>;

    /// `optimism_rollupConfig`: the chain's rollup configuration (its block time, in seconds).
    #[method(name = "rollupConfig")]
    async fn rollup_config(&self) -> RpcResult<RollupConfig>;
}

/// The op-geth `eth_*` subset the coordinator and the tests read.
#[rpc(server, client, namespace = "eth")]
pub trait EthApi {
    /// `eth_getBlockByNumber(selector, fullTransactions)`; `null` for an unknown block.
    #[method(name = "getBlockByNumber")]
    async fn block_by_number(
        &self,
        block: BlockNumberOrTag,
        full_transactions: bool,
    ) -> RpcResult<Option<BlockHeader>>;

    /// `eth_getBlockByHash(hash, fullTransactions)`; `null` for an unknown block.
    #[method(name = "getBlockByHash")]
    async fn block_by_hash(&self, hash: B256, full_transactions: bool) -> RpcResult<Option<BlockHeader>>;

    /// `eth_blockNumber`: number of the head block.
    #[method(name = "blockNumber")]
    async fn block_number(&self) -> RpcResult<U64>;

    /// `eth_chainId`.
    #[method(name = "chainId")]
    async fn chain_id(&self) -> RpcResult<U64>;
}
