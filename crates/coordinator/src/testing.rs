//! Fixtures shared by the crate's unit tests: probes as the probe loop reports them.

use crate::{
    client::{CallError, Timed},
    health::Probe,
};
use alloy_primitives::{B256, U64};
use opc_wire::{BlockHeader, L2BlockRef, SyncStatus};
use std::time::Duration;
use tokio::time::Instant;

/// One probe finished at `at`: op-node's unsafe head is block `head_number` with hash
/// `head_hash`, op-geth's latest block is `geth_number`.
pub(crate) fn probe(at: Instant, head_number: u64, head_hash: B256, geth_number: u64) -> Probe {
    let unsafe_l2 = L2BlockRef { hash: head_hash, number: head_number, ..Default::default() };
    Probe {
        at,
        sync: Timed {
            result: Ok(SyncStatus { unsafe_l2, ..Default::default() }),
            latency: Duration::from_millis(2),
        },
        geth: Some(Timed {
            result: Ok(BlockHeader { number: U64::from(geth_number), ..Default::default() }),
            latency: Duration::from_millis(2),
        }),
        rollup: None,
    }
}

/// A probe finished at `at` whose op-node call failed with `err`.
pub(crate) fn failed_probe(at: Instant, err: CallError) -> Probe {
    Probe {
        at,
        sync: Timed { result: Err(err), latency: Duration::from_millis(250) },
        geth: Some(Timed { result: Ok(BlockHeader::default()), latency: Duration::from_millis(2) }),
        rollup: None,
    }
}
