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

/// A loopback op-node + op-geth that answers `method` with an error (every other call with
/// "method not found"), counting the calls of `method`.
pub(crate) async fn counting_node(
    method: &'static str,
) -> (
    crate::client::NodeClient,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
    jsonrpsee::server::ServerHandle,
) {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };
    let calls = Arc::new(AtomicUsize::new(0));
    let mut module = jsonrpsee::RpcModule::new(Arc::clone(&calls));
    module
        .register_method(method, |_, calls, _| {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(jsonrpsee::types::ErrorObjectOwned::owned(-32000, "test", None::<()>))
        })
        .expect("register");
    let server = jsonrpsee::server::Server::builder().build("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", server.local_addr().expect("addr"));
    let handle = server.start(module);
    (crate::client::NodeClient::new(&url, &url).expect("client"), calls, handle)
}
