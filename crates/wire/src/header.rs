//! The op-geth block header subset read from `eth_getBlockByNumber` / `eth_getBlockByHash`.
//!
//! Numbers here ARE hex quantities (`"0x1b4"`), unlike op-node's refs.

use crate::serde_helpers::{null_default, parse_u64_text};
use alloy_primitives::{B256, Bytes, U64, U256};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error as _};
use std::{fmt, str::FromStr};

/// An execution-layer block header as returned with `fullTransactions = false`.
///
/// The coordinator reads `hash`, `number`, `parentHash` and `timestamp`; the remaining fields are
/// there so the simulator answers with a realistic shape. All default when missing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct BlockHeader {
    /// Block hash (`null` for the pending block).
    #[serde(deserialize_with = "null_default")]
    pub hash: B256,
    /// Parent block hash.
    pub parent_hash: B256,
    /// Block number (hex quantity).
    pub number: U64,
    /// Unix seconds (hex quantity).
    pub timestamp: U64,
    /// State root after the block.
    pub state_root: B256,
    /// Transactions trie root.
    pub transactions_root: B256,
    /// Receipts trie root.
    pub receipts_root: B256,
    /// Fee recipient (`null` for the pending block).
    #[serde(deserialize_with = "null_default")]
    pub miner: alloy_primitives::Address,
    /// Gas limit (hex quantity).
    pub gas_limit: U64,
    /// Gas used (hex quantity).
    pub gas_used: U64,
    /// EIP-1559 base fee (hex quantity).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_fee_per_gas: Option<U64>,
    /// Always zero after the merge.
    pub difficulty: U256,
    /// Free-form extra data.
    pub extra_data: Bytes,
    /// Transaction hashes (`fullTransactions = false`).
    pub transactions: Vec<B256>,
}

/// The block selector of `eth_getBlockByNumber`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlockNumberOrTag {
    /// The head block.
    Latest,
    /// The latest block derived from L1.
    Safe,
    /// The latest block derived from finalized L1.
    Finalized,
    /// The block being built; op-geth answers it like `latest` on a follower.
    Pending,
    /// Genesis.
    Earliest,
    /// A block by number.
    Number(u64),
}

impl fmt::Display for BlockNumberOrTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Latest => f.write_str("latest"),
            Self::Safe => f.write_str("safe"),
            Self::Finalized => f.write_str("finalized"),
            Self::Pending => f.write_str("pending"),
            Self::Earliest => f.write_str("earliest"),
            Self::Number(number) => write!(f, "{number:#x}"),
        }
    }
}

impl FromStr for BlockNumberOrTag {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(match text {
            "latest" => Self::Latest,
            "safe" => Self::Safe,
            "finalized" => Self::Finalized,
            "pending" => Self::Pending,
            "earliest" => Self::Earliest,
            other if other.starts_with("0x") => Self::Number(parse_u64_text(other)?),
            other => {
                return Err(format!(
                    "invalid block selector {other:?}: expected latest, safe, finalized, pending, \
                     earliest or a 0x hex number"
                ));
            }
        })
    }
}

impl Serialize for BlockNumberOrTag {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for BlockNumberOrTag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(D::Error::custom)
    }
}
