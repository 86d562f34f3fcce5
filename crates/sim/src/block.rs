//! Simulated L2 blocks and the fake L1 chain they point at.
//!
//! A block's hash is keccak256 of its header fields plus the producer's name, so hashes are unique
//! per (producer, parent, height) and reproducible run to run. Including the producer makes two
//! sequencers that build at the same height produce visibly different blocks, which is what the
//! invariant checker needs to see a re-org. With an anvil behind each node ([`crate::anvil`]) a
//! block carries the hash anvil computed instead.

use alloy_primitives::{B256, keccak256};
use opc_wire::{BlockId, L1BlockRef, L2BlockRef, RollupConfig, rollup_config::RollupGenesis};

/// Seconds between fake L1 blocks.
pub const L1_BLOCK_TIME_SECS: u64 = 12;

/// The L1 chain id the rollup config names (Sepolia's: the simulated L1 is a test network).
pub const L1_CHAIN_ID: u64 = 11_155_111;

/// One sealed L2 block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// Height.
    pub number: u64,
    /// Keccak of the fields below, or the hash anvil gave the block when anvil executes the chain.
    pub hash: B256,
    /// Parent hash (zero for genesis).
    pub parent_hash: B256,
    /// Unix seconds: genesis time plus `number * block_time`, floored to seconds.
    pub timestamp: u64,
    /// The L1 epoch this block belongs to.
    pub l1_origin: BlockId,
    /// Position within the L1 epoch.
    pub sequence_number: u64,
    /// Name of the node that sealed it (`genesis` for block 0).
    pub producer: String,
}

/// Chain-wide parameters a node needs to seal blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainParams {
    /// L2 chain id, served by `eth_chainId` and mixed into every hash.
    pub chain_id: u64,
    /// Unix seconds of block 0.
    pub genesis_time: u64,
    /// Target time between blocks.
    pub block_time_ms: u64,
    /// How far the safe head trails the unsafe head, in blocks.
    pub safe_lag_blocks: u64,
    /// How far the finalized head trails the unsafe head, in blocks.
    pub finalized_lag_blocks: u64,
    /// Block 0's hash when anvil executes the chain; None: keccak, like every simulated block.
    pub genesis_hash: Option<B256>,
}

impl ChainParams {
    /// Block 0, identical on every node of the chain.
    pub fn genesis(&self) -> Block {
        let l1_origin = self.l1_block(0);
        let mut block = Block {
            number: 0,
            hash: B256::ZERO,
            parent_hash: B256::ZERO,
            timestamp: self.genesis_time,
            l1_origin: BlockId { hash: l1_origin.hash, number: 0 },
            sequence_number: 0,
            producer: "genesis".to_owned(),
        };
        block.hash = self.genesis_hash.unwrap_or_else(|| block.compute_hash(self.chain_id));
        block
    }

    /// The block `producer` seals on top of `parent`.
    pub fn child_of(&self, parent: &Block, producer: &str) -> Block {
        let number = parent.number + 1;
        let timestamp = self.genesis_time + number * self.block_time_ms / 1000;
        let epoch = (timestamp - self.genesis_time) / L1_BLOCK_TIME_SECS;
        let l1_origin = BlockId { hash: self.l1_block(epoch).hash, number: epoch };
        let sequence_number =
            if l1_origin.number == parent.l1_origin.number { parent.sequence_number + 1 } else { 0 };
        let mut block = Block {
            number,
            hash: B256::ZERO,
            parent_hash: parent.hash,
            timestamp,
            l1_origin,
            sequence_number,
            producer: producer.to_owned(),
        };
        block.hash = block.compute_hash(self.chain_id);
        block
    }

    /// True when `block`'s hash is the one its fields give (always true on an anvil chain, where
    /// anvil checks the hash itself on import).
    pub fn has_valid_hash(&self, block: &Block) -> bool {
        self.genesis_hash.is_some() || block.compute_hash(self.chain_id) == block.hash
    }

    /// The `optimism_rollupConfig` reply of every node of the chain. Like op-node it states the
    /// block time in whole seconds; a sub-second chain says `1`, as sub-second forks of the OP
    /// Stack do (their config cannot express the interval), so a client has to measure it.
    pub fn rollup_config(&self) -> RollupConfig {
        let genesis = self.genesis();
        RollupConfig {
            genesis: RollupGenesis {
                l1: BlockId { hash: self.l1_block(0).hash, number: 0 },
                l2: BlockId { hash: genesis.hash, number: 0 },
                l2_time: self.genesis_time,
            },
            block_time: Some((self.block_time_ms / 1000).max(1)),
            max_sequencer_drift: Some(600),
            seq_window_size: Some(3600),
            channel_timeout: Some(300),
            l1_chain_id: Some(L1_CHAIN_ID),
            l2_chain_id: Some(self.chain_id),
        }
    }

    /// The fake L1 block `number`: deterministic hash, one block every 12 s from genesis.
    pub fn l1_block(&self, number: u64) -> L1BlockRef {
        let hash_of = |n: u64| {
            let mut preimage = Vec::with_capacity(18);
            preimage.extend_from_slice(b"l1");
            preimage.extend_from_slice(&self.chain_id.to_be_bytes());
            preimage.extend_from_slice(&n.to_be_bytes());
            keccak256(&preimage)
        };
        L1BlockRef {
            hash: hash_of(number),
            number,
            parent_hash: if number == 0 { B256::ZERO } else { hash_of(number - 1) },
            timestamp: self.genesis_time + number * L1_BLOCK_TIME_SECS,
        }
    }
}

impl Block {
    fn compute_hash(&self, chain_id: u64) -> B256 {
        let mut preimage = Vec::with_capacity(128 + self.producer.len());
        preimage.extend_from_slice(&chain_id.to_be_bytes());
        preimage.extend_from_slice(&self.number.to_be_bytes());
        preimage.extend_from_slice(self.parent_hash.as_slice());
        preimage.extend_from_slice(&self.timestamp.to_be_bytes());
        preimage.extend_from_slice(self.l1_origin.hash.as_slice());
        preimage.extend_from_slice(&self.l1_origin.number.to_be_bytes());
        preimage.extend_from_slice(&self.sequence_number.to_be_bytes());
        preimage.extend_from_slice(self.producer.as_bytes());
        keccak256(&preimage)
    }

    /// The op-node view of this block.
    pub fn l2_ref(&self) -> L2BlockRef {
        L2BlockRef {
            hash: self.hash,
            number: self.number,
            parent_hash: self.parent_hash,
            timestamp: self.timestamp,
            l1_origin: self.l1_origin,
            sequence_number: self.sequence_number,
        }
    }

    /// `(hash, number)`.
    pub fn id(&self) -> BlockId {
        BlockId { hash: self.hash, number: self.number }
    }
}
