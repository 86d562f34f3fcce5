//! Block references as op-node renders them in `optimism_syncStatus`.
//!
//! `number`, `timestamp` and `sequenceNumber` are plain JSON integers here (unlike op-geth's hex
//! quantities); decoding also accepts hex strings so a proxy that rewrites them does not break us.

use crate::serde_helpers::{lenient_u64, null_default, object_or_null};
use alloy_primitives::B256;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A block identified by hash and number: an L2 block's `l1origin`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct BlockId {
    /// Block hash.
    #[serde(deserialize_with = "null_default")]
    pub hash: B256,
    /// Block number.
    #[serde(deserialize_with = "lenient_u64")]
    pub number: u64,
}

/// An L1 block reference (`current_l1`, `head_l1`, `safe_l1`, `finalized_l1`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct L1BlockRef {
    /// Block hash.
    #[serde(deserialize_with = "null_default")]
    pub hash: B256,
    /// Block number.
    #[serde(deserialize_with = "lenient_u64")]
    pub number: u64,
    /// Parent block hash.
    #[serde(deserialize_with = "null_default")]
    pub parent_hash: B256,
    /// Unix seconds.
    #[serde(deserialize_with = "lenient_u64")]
    pub timestamp: u64,
}

/// An L2 block reference (`unsafe_l2`, `safe_l2`, `finalized_l2`, ...).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct L2BlockRef {
    /// Block hash.
    #[serde(deserialize_with = "null_default")]
    pub hash: B256,
    /// Block number.
    #[serde(deserialize_with = "lenient_u64")]
    pub number: u64,
    /// Parent block hash.
    #[serde(deserialize_with = "null_default")]
    pub parent_hash: B256,
    /// Unix seconds.
    #[serde(deserialize_with = "lenient_u64")]
    pub timestamp: u64,
    /// The L1 block this L2 block derives its epoch from.
    #[serde(rename = "l1origin", deserialize_with = "object_or_null")]
    pub l1_origin: BlockId,
    /// Position of this block within its L1 epoch (0 for the first block of an epoch).
    #[serde(deserialize_with = "lenient_u64")]
    pub sequence_number: u64,
}

impl L2BlockRef {
    /// True for the all-zero ref op-node reports before its engine is initialised.
    pub fn is_zero(&self) -> bool {
        *self == Self::default()
    }

    /// The `(hash, number)` pair.
    pub fn id(&self) -> BlockId {
        BlockId { hash: self.hash, number: self.number }
    }
}

impl L1BlockRef {
    /// True for the all-zero ref.
    pub fn is_zero(&self) -> bool {
        *self == Self::default()
    }
}

/// Renders `0xHASH:NUMBER`, the form op-node uses for refs inside error messages.
impl fmt::Display for L2BlockRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.hash, self.number)
    }
}

impl fmt::Display for BlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.hash, self.number)
    }
}
