//! The `optimism_rollupConfig` reply: op-node's rollup configuration, of which the coordinator reads
//! the block time.
//!
//! op-node renders its `rollup.Config` with snake_case keys; `block_time` is a whole number of
//! seconds (`uint64`), so a chain that runs faster than one block a second (a sub-second fork)
//! cannot state its block time here and says `1`. The other keys are kept so the simulator can
//! answer with the full shape; all are optional, and unknown keys (every fork's activation time,
//! added with each upgrade) are ignored.

use crate::refs::BlockId;
use crate::serde_helpers::{lenient_u64, object_or_null};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// `genesis` of the rollup config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RollupGenesis {
    /// The L1 block the chain starts from.
    pub l1: BlockId,
    /// The L2 genesis block.
    pub l2: BlockId,
    /// Timestamp of the L2 genesis block, unix seconds.
    #[serde(deserialize_with = "lenient_u64")]
    pub l2_time: u64,
}

/// The rollup configuration, as far as a coordinator needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RollupConfig {
    /// Genesis blocks.
    #[serde(deserialize_with = "object_or_null")]
    pub genesis: RollupGenesis,
    /// Seconds between two L2 blocks; `None` when the key is missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_time: Option<u64>,
    /// How far (seconds) the sequencer may run ahead of its L1 origin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_sequencer_drift: Option<u64>,
    /// Sequencing window, in L1 blocks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq_window_size: Option<u64>,
    /// Channel timeout, in L1 blocks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_timeout: Option<u64>,
    /// L1 chain id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub l1_chain_id: Option<u64>,
    /// L2 chain id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub l2_chain_id: Option<u64>,
}

impl RollupConfig {
    /// The block time the config states, if it states a usable one (a present, non-zero
    /// `block_time`).
    pub fn block_time(&self) -> Option<Duration> {
        self.block_time.filter(|seconds| *seconds > 0).map(Duration::from_secs)
    }
}
