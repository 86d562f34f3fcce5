//! The fences of chains in conductor mode in the store: one small `sm_fences` row per chain (its
//! [`FenceMeta`]) and one `sm_payloads` row per kept payload, so a commit rewrites one small row
//! and adds one payload instead of rewriting every kept payload.

use std::collections::{BTreeMap, BTreeSet};

use redb::{ReadableTable, TableDefinition, WriteTransaction};

use super::{DbError, decode, encode};
use crate::fence::{Fence, FenceData, FenceMeta, Retention};
use opc_wire::conductor::Envelope;

pub(super) const SM_FENCES: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("sm_fences");
pub(super) const SM_PAYLOADS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("sm_payloads");

/// The fences and their payloads; none in a store written before conductor mode.
pub(super) fn load_fences(
    txn: &redb::ReadTransaction,
    retention: Retention,
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
            kept.push(decode::<Envelope>(|| format!("sm_payloads/{key}"), bytes.value())?);
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
    pub(super) fn diff(
        before: &BTreeMap<String, Fence>,
        after: &BTreeMap<String, Fence>,
        touched: &BTreeSet<String>,
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
                    rows.put_payloads.push((payload_key(chain, &hash), envelope.json().as_bytes().to_vec()));
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
