//! The `optimism_syncStatus` reply.
//!
//! The key set changed over op-node versions: `queued_unsafe_l2` and `engine_sync_target` existed in
//! 2023 and were removed in early 2024, `pending_safe_l2` appeared late 2023, and `cross_unsafe_l2`
//! and `local_safe_l2` in late 2024. Decoding defaults every missing key and ignores unknown ones;
//! [`SyncStatus::to_json`] renders the key set of a chosen version so the simulator can play any of
//! them.

use crate::{
    refs::{L1BlockRef, L2BlockRef},
    serde_helpers::object_or_null,
};
use serde::{Deserialize, Serialize};

/// The sync status of an op-node. All refs are all-zero before the node initialised its engine.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct SyncStatus {
    /// The L1 block the derivation pipeline is currently reading.
    #[serde(deserialize_with = "object_or_null")]
    pub current_l1: L1BlockRef,
    /// Deprecated alias of `finalized_l1`, still sent by every version.
    #[serde(deserialize_with = "object_or_null")]
    pub current_l1_finalized: L1BlockRef,
    /// The L1 head the node knows.
    #[serde(deserialize_with = "object_or_null")]
    pub head_l1: L1BlockRef,
    /// The safe L1 block.
    #[serde(deserialize_with = "object_or_null")]
    pub safe_l1: L1BlockRef,
    /// The finalized L1 block.
    #[serde(deserialize_with = "object_or_null")]
    pub finalized_l1: L1BlockRef,
    /// The tip of the L2 chain: sequenced or gossiped blocks not yet derived from L1.
    #[serde(deserialize_with = "object_or_null")]
    pub unsafe_l2: L2BlockRef,
    /// The L2 head derived from L1.
    #[serde(deserialize_with = "object_or_null")]
    pub safe_l2: L2BlockRef,
    /// The L2 head derived from finalized L1.
    #[serde(deserialize_with = "object_or_null")]
    pub finalized_l2: L2BlockRef,
    /// Since late 2023: the safe head including blocks of a not yet complete span batch.
    #[serde(deserialize_with = "object_or_null")]
    pub pending_safe_l2: L2BlockRef,
    /// Since late 2024 (interop): the unsafe head that is cross-chain verified.
    #[serde(deserialize_with = "object_or_null")]
    pub cross_unsafe_l2: L2BlockRef,
    /// Since late 2024 (interop): the safe head before cross-chain verification.
    #[serde(deserialize_with = "object_or_null")]
    pub local_safe_l2: L2BlockRef,
    /// 2023 only: the first unsafe payload waiting to be inserted.
    #[serde(deserialize_with = "object_or_null")]
    pub queued_unsafe_l2: L2BlockRef,
    /// 2023 only: the target of an ongoing engine (snap) sync.
    #[serde(deserialize_with = "object_or_null")]
    pub engine_sync_target: L2BlockRef,
    /// Which version's key set [`Serialize`] writes; never read from the wire.
    #[serde(skip)]
    pub shape: SyncStatusShape,
}

/// The op-node release whose `optimism_syncStatus` key set a reply follows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SyncStatusShape {
    /// Mid-2023 (Bedrock): `queued_unsafe_l2` and `engine_sync_target`, no `pending_safe_l2`.
    #[serde(rename = "2023")]
    V2023,
    /// Early 2024: `pending_safe_l2`; the 2023-only keys are gone.
    #[serde(rename = "early-2024")]
    Early2024,
    /// Late 2024 onwards: adds `cross_unsafe_l2` and `local_safe_l2`.
    #[default]
    #[serde(rename = "late-2024")]
    Late2024,
}

impl SyncStatus {
    /// True when op-node has not initialised its engine yet and reports all-zero refs.
    pub fn is_uninitialised(&self) -> bool {
        self.unsafe_l2.is_zero()
    }

    /// Renders the reply with exactly the key set of `shape`.
    pub fn to_json(&self, shape: SyncStatusShape) -> serde_json::Value {
        let mut object = serde_json::Map::new();
        let mut put = |key: &str, value: serde_json::Value| {
            object.insert(key.to_owned(), value);
        };
        let l1 = |r: &L1BlockRef| serde_json::to_value(r).unwrap_or_default();
        let l2 = |r: &L2BlockRef| serde_json::to_value(r).unwrap_or_default();
        put("current_l1", l1(&self.current_l1));
        put("current_l1_finalized", l1(&self.current_l1_finalized));
        put("head_l1", l1(&self.head_l1));
        put("safe_l1", l1(&self.safe_l1));
        put("finalized_l1", l1(&self.finalized_l1));
        put("unsafe_l2", l2(&self.unsafe_l2));
        put("safe_l2", l2(&self.safe_l2));
        put("finalized_l2", l2(&self.finalized_l2));
        match shape {
            SyncStatusShape::V2023 => {
                put("queued_unsafe_l2", l2(&self.queued_unsafe_l2));
                put("engine_sync_target", l2(&self.engine_sync_target));
            }
            SyncStatusShape::Early2024 => put("pending_safe_l2", l2(&self.pending_safe_l2)),
            SyncStatusShape::Late2024 => {
                put("pending_safe_l2", l2(&self.pending_safe_l2));
                put("cross_unsafe_l2", l2(&self.cross_unsafe_l2));
                put("local_safe_l2", l2(&self.local_safe_l2));
            }
        }
        serde_json::Value::Object(object)
    }
}

/// Writes the key set of [`SyncStatus::shape`].
impl Serialize for SyncStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json(self.shape).serialize(serializer)
    }
}
