//! The fences of chains in conductor mode in the store: one small `sm_fences` row per chain (its
//! [`FenceMeta`]) and one `sm_payloads` row per kept payload, so a commit rewrites one small row
//! and adds one small row instead of rewriting every kept payload.
//!
//! A kept payload is not written a second time: its bytes are in the Raft log entry that
//! committed it, and its `sm_payloads` row names that entry ([`PayloadRow`]). The log is purged
//! only behind a snapshot, and every kept payload committed at or before the snapshot's last
//! entry is in the snapshot's fences (it was kept then too), so loading finds each payload in the
//! log or in the current snapshot. Stores of format version 1 hold the payloads themselves in the
//! rows; those still read.

use std::collections::{BTreeMap, BTreeSet};

use alloy_primitives::B256;
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::{DbError, decode, encode};
use crate::fence::{Fence, FenceData, FenceMeta, Retention};
use opc_wire::conductor::Envelope;

/// Where a kept payload's bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PayloadRow {
    /// The log entry that committed it; `None` when it came with a snapshot (it is in the
    /// current snapshot's fences).
    log_index: Option<u64>,
}

/// Where loading looks for the payloads the rows name.
pub(super) struct PayloadSources {
    /// The committed payloads in the log, by entry index.
    pub(super) log: BTreeMap<u64, Envelope>,
    /// The payloads in the current snapshot's fences, by chain and block hash.
    pub(super) snapshot: BTreeMap<(String, B256), Envelope>,
}

impl PayloadSources {
    fn find(&self, chain: &str, hash: &B256, row: PayloadRow) -> Option<Envelope> {
        let in_log = row.log_index.and_then(|index| self.log.get(&index));
        in_log
            .filter(|envelope| envelope.head().block_hash == *hash)
            .or_else(|| self.snapshot.get(&(chain.to_owned(), *hash)))
            .cloned()
    }
}

pub(super) const SM_FENCES: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("sm_fences");
pub(super) const SM_PAYLOADS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("sm_payloads");

/// The fences and their payloads; none in a store written before conductor mode.
pub(super) fn load_fences(
    txn: &redb::ReadTransaction,
    retention: Retention,
    sources: &PayloadSources,
) -> Result<BTreeMap<String, Fence>, DbError> {
    let mut fences = BTreeMap::new();
    let (metas, payloads) = match (txn.open_table(SM_FENCES), txn.open_table(SM_PAYLOADS)) {
        (Ok(metas), Ok(payloads)) => (metas, payloads),
        (Err(redb::TableError::TableDoesNotExist(_)), _)
        | (_, Err(redb::TableError::TableDoesNotExist(_))) => {
            return Ok(fences);
        }
        (Err(e), _) | (_, Err(e)) => return Err(e.into()),
    };
    for row in metas.iter()? {
        let (key, value) = row?;
        let chain = key.value().to_owned();
        let meta: FenceMeta = decode(|| format!("sm_fences/{chain}"), value.value())?;
        let mut kept = Vec::with_capacity(meta.committed.len());
        for hash in &meta.committed {
            let key = payload_key(&chain, hash);
            let Some(bytes) = payloads.get(key.as_str())? else {
                return Err(DbError::Invalid(format!(
                    "sm_fences/{chain} names {key}, which sm_payloads lacks"
                )));
            };
            // A reference (format 2) or, in a format 1 store, the payload itself.
            let envelope = match serde_json::from_slice::<PayloadRow>(bytes.value()) {
                Err(_) => decode::<Envelope>(|| format!("sm_payloads/{key}"), bytes.value())?,
                Ok(row) => sources.find(&chain, hash, row).ok_or_else(|| {
                    DbError::Invalid(format!(
                        "sm_payloads/{key} names {}, which neither the log nor the current \
                         snapshot holds",
                        row.log_index.map_or("the snapshot".to_owned(), |i| format!("log entry {i}"))
                    ))
                })?,
            };
            kept.push(envelope);
        }
        fences.insert(chain, Fence::from_data(FenceData { meta, payloads: kept }, retention));
    }
    Ok(fences)
}

/// The rows that turn the stored fences `before` into `after`, for the chains in `touched`.
pub(super) struct FenceRows {
    metas: Vec<(String, Vec<u8>)>,
    put_payloads: Vec<(String, Vec<u8>)>,
    delete_payloads: Vec<String>,
}

impl FenceRows {
    /// `committed_at` names the log entry of each payload new in `after` (those missing came
    /// with a snapshot).
    pub(super) fn diff(
        before: &BTreeMap<String, Fence>,
        after: &BTreeMap<String, Fence>,
        touched: &BTreeSet<String>,
        committed_at: &BTreeMap<B256, u64>,
    ) -> Result<Self, DbError> {
        let mut rows = Self { metas: Vec::new(), put_payloads: Vec::new(), delete_payloads: Vec::new() };
        for chain in touched {
            let Some(fence) = after.get(chain) else { continue };
            let old: BTreeSet<_> =
                before.get(chain).map(|f| f.meta().committed.into_iter().collect()).unwrap_or_default();
            let meta = fence.meta();
            for envelope in fence.committed() {
                let hash = envelope.head().block_hash;
                if !old.contains(&hash) {
                    let row = PayloadRow { log_index: committed_at.get(&hash).copied() };
                    rows.put_payloads.push((payload_key(chain, &hash), encode("payload row", &row)?));
                }
            }
            let new: BTreeSet<_> = meta.committed.iter().copied().collect();
            rows.delete_payloads.extend(old.difference(&new).map(|hash| payload_key(chain, hash)));
            rows.metas.push((chain.clone(), encode("fence", &meta)?));
        }
        Ok(rows)
    }

    pub(super) fn write(&self, txn: &WriteTransaction) -> Result<(), DbError> {
        let mut metas = txn.open_table(SM_FENCES)?;
        for (chain, meta) in &self.metas {
            metas.insert(chain.as_str(), meta.as_slice())?;
        }
        let mut payloads = txn.open_table(SM_PAYLOADS)?;
        for key in &self.delete_payloads {
            payloads.remove(key.as_str())?;
        }
        for (key, bytes) in &self.put_payloads {
            payloads.insert(key.as_str(), bytes.as_slice())?;
        }
        Ok(())
    }
}

/// The key of a kept payload in `sm_payloads`.
pub(super) fn payload_key(chain: &str, hash: &alloy_primitives::B256) -> String {
    format!("{chain}/{hash}")
}
