//! A scripted stand-in for a conductor, served by jsonrpsee on loopback: it answers the leader
//! check from a flag, accepts or refuses commits from another, can delay its answers (an accepted
//! commit is kept even when its answer comes too late), and remembers every envelope it accepted.
//! And a chain whose nodes all use it.

use super::{Fixture, config};
use anyhow::Result;
use jsonrpsee::{
    core::{RpcResult, async_trait},
    server::{Server, ServerHandle},
    types::ErrorObjectOwned,
};
use op_sim::{NodeOptions, SimConfig, api::LedgerEntry};
use opc_wire::conductor::{ConductorApiServer, Envelope};
use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

#[derive(Debug, Default)]
pub(crate) struct Script {
    pub(crate) leader: AtomicBool,
    pub(crate) refuse: AtomicBool,
    pub(crate) delay_ms: AtomicU64,
    pub(crate) accepted: Mutex<Vec<Envelope>>,
    pub(crate) leader_checks: AtomicU64,
    /// Commits that arrived, answered or not yet.
    pub(crate) commits_received: AtomicU64,
}

#[derive(Debug, Clone)]
pub(crate) struct ScriptedConductor(Arc<Script>);

#[async_trait]
impl ConductorApiServer for ScriptedConductor {
    async fn leader(&self) -> RpcResult<bool> {
        self.0.leader_checks.fetch_add(1, Ordering::SeqCst);
        Ok(self.0.leader.load(Ordering::SeqCst))
    }

    async fn commit_unsafe_payload(&self, envelope: Envelope) -> RpcResult<()> {
        self.0.commits_received.fetch_add(1, Ordering::SeqCst);
        // Decided (and made "durable") at once; the answer takes `delay_ms`, and is lost if the
        // client gives up first.
        let refused = self.0.refuse.load(Ordering::SeqCst);
        if !refused {
            self.0.accepted.lock().expect("lock").push(envelope);
        }
        let delay = self.0.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if refused {
            return Err(ErrorObjectOwned::owned(-32000, "not the leader: scripted refusal", None::<()>));
        }
        Ok(())
    }
}

pub(crate) async fn serve(script: Arc<Script>) -> Result<(String, ServerHandle)> {
    let server = Server::builder().build("127.0.0.1:0").await?;
    let url = format!("http://{}", server.local_addr()?);
    Ok((url, server.start(ScriptedConductor(script).into_rpc())))
}

/// A 3-node chain whose nodes all use the scripted conductor; none starts active (op-node with a
/// conductor runs with `--sequencer.stopped`).
pub(crate) fn conducted(url: &str, block_time_ms: u64, timeout_ms: u64) -> SimConfig {
    let mut config = config(3, block_time_ms);
    for node in &mut config.chains[0].nodes {
        node.options = NodeOptions {
            start_active: false,
            conductor_rpc: Some(url.to_owned()),
            conductor_rpc_timeout_ms: timeout_ms,
            ..NodeOptions::default()
        };
    }
    config
}

pub(crate) async fn start(block_time_ms: u64) -> Result<(Fixture, Arc<Script>, ServerHandle)> {
    start_with_timeout(block_time_ms, 300).await
}

/// A chain on a scripted conductor that says "leader" and accepts every commit, until told not to.
pub(crate) async fn start_with_timeout(
    block_time_ms: u64,
    timeout_ms: u64,
) -> Result<(Fixture, Arc<Script>, ServerHandle)> {
    let script = Arc::new(Script::default());
    script.leader.store(true, Ordering::SeqCst);
    let (url, handle) = serve(script.clone()).await?;
    let fixture = Fixture::start(conducted(&url, block_time_ms, timeout_ms)).await?;
    Ok((fixture, script, handle))
}

pub(crate) fn commit_failures(fixture: &Fixture, node: &str) -> Vec<(u64, String)> {
    fixture
        .ledger()
        .into_iter()
        .filter_map(|entry| match entry {
            LedgerEntry::CommitFailed { node: by, number, error, .. } if by == node => Some((number, error)),
            _ => None,
        })
        .collect()
}
