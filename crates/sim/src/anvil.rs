//! A real execution client behind the simulated op-node: one anvil process per node.
//!
//! With [`ExecutionBackend::Anvil`] every node's op-geth is an anvil child process on a free
//! loopback port, and its blocks are the chain: the simulated op-node side drives it, and the
//! coordinator probes the anvil URL as the node's op-geth.
//!
//! - Every anvil of a chain starts from the same genesis (`--timestamp`, `--chain-id`,
//!   `--no-mining`), so block 0 is identical everywhere. The base fee is pinned to zero
//!   (`--base-fee 0`, which empty blocks keep): anvil does not restore its base fee on
//!   `anvil_rollback`, so a block mined again after a rollback would otherwise differ.
//! - Sealing a block is `anvil_setCoinbase(producer)` + `evm_mine({timestamp})` on the sealing
//!   node's anvil; the block keeps anvil's hash.
//! - Importing a gossiped or fetched block is mining the same empty block (same coinbase, same
//!   timestamp) on the importing node's anvil: the hash must come out identical. If it does not,
//!   the import fails loudly and the block stays out of the node's store.
//! - The coinbase is derived from the producer's name so two sequencers building at one height
//!   make visibly different blocks, as the keccak hashes of the pure simulation do; without it
//!   every empty block would be a function of its height alone and no re-org could ever show.
//!
//! The anvil's chain mirrors the node's canonical chain. Before each operation the anvil is
//! rewound to the block the operation builds on (`anvil_rollback`), which repairs a block mined
//! on the anvil but never adopted by the store (the seal timed out, the node crashed meanwhile,
//! or a request queued in a frozen anvil ran after it resumed). One lock per anvil serialises
//! every operation that moves its head or the node's canonical chain, so the two cannot drift
//! apart between the check and the change.
//!
//! | node operation                   | on its anvil                                  | on failure         |
//! |----------------------------------|-----------------------------------------------|--------------------|
//! | seal on head H                   | rewind to H; coinbase(self); mine at its time | nothing sealed     |
//! | import that extends or re-orgs   | rewind to the fork; mine each block, compare  | block not imported |
//! | import of a known or side block  | nothing                                       | -                  |
//!
//! Every failure is logged at error level with the anvil's answer.
//!
//! Faults: kill or freeze the process itself ([`Anvil::kill`], `kill -STOP` on [`Anvil::pid`]);
//! the simulator's `crash`/`hang` faults of op-geth only change the simulated op-geth, which no one
//! probes in this mode. anvil accepts a block with its parent's timestamp, so block times under a
//! second work here (real op-geth would refuse them).

use crate::{
    block::{Block, ChainParams},
    error::AnvilError,
    node::{Imported, Node},
};
use alloy_primitives::{Address, B256, keccak256};
use jsonrpsee::{
    core::client::ClientT,
    http_client::{HttpClient, HttpClientBuilder},
    rpc_params,
};
use opc_wire::{BlockHeader, BlockId, BlockNumberOrTag, api::EthApiClient};
use serde_json::{Value, json};
use std::{
    path::{Path, PathBuf},
    process::Stdio,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader},
    process::{Child, Command},
    sync::MutexGuard,
};

/// Deadline of one call to an anvil. Loopback anvil answers in a millisecond; a call this slow
/// means the process is frozen or dead. Kept well under a block time because a seal in progress
/// holds `admin_stopSequencer` until it ends.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(500);

/// How long an anvil may take to start and print its address.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Which execution client backs the nodes' op-geth.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ExecutionBackend {
    /// op-geth is simulated in process: keccak block hashes, every fault available. Fast.
    #[default]
    Simulated,
    /// Every node drives its own anvil process, whose blocks are the chain.
    Anvil {
        /// Path of the `anvil` executable.
        binary: PathBuf,
    },
}

/// One node's anvil process and the client that drives it. Dropping it kills the process.
#[derive(Debug)]
pub struct Anvil {
    /// `CHAIN/NODE`, for logs.
    label: String,
    /// `http://127.0.0.1:PORT`: what the coordinator probes as op-geth.
    url: String,
    /// OS process id, for tests that freeze the process (`kill -STOP`).
    pid: u32,
    /// The child; killed on drop (`kill_on_drop`) or by [`Anvil::kill`].
    child: Mutex<Child>,
    client: HttpClient,
    /// Held by every operation that moves the anvil's head or the node's canonical chain.
    ops: tokio::sync::Mutex<()>,
}

/// The outcome of mining the next block of an active sequencer.
#[derive(Debug)]
pub enum Mined<'a> {
    /// The block, with anvil's hash. The guard keeps the node's imports out until it is stored.
    Block(Arc<Block>, MutexGuard<'a, ()>),
    /// Nothing was mined (logged).
    Failed,
}

/// The execution clients of one chain: empty when op-geth is simulated.
#[derive(Debug, Default)]
pub struct ChainExecution {
    /// One anvil per node, in node order.
    pub anvils: Vec<Arc<Anvil>>,
    /// Block 0's hash as the anvils computed it: the chain's `ChainParams::genesis_hash`.
    pub genesis_hash: Option<B256>,
}

/// Starts one anvil per node (`node_names`) of the chain `chain` when `backend` asks for it, and
/// checks they share a genesis. Nothing for the simulated backend.
pub async fn start_chain(
    backend: &ExecutionBackend,
    chain: &str,
    chain_id: u64,
    node_names: &[&str],
    genesis_time: u64,
) -> Result<ChainExecution, AnvilError> {
    let ExecutionBackend::Anvil { binary } = backend else { return Ok(ChainExecution::default()) };
    let anvils = futures::future::try_join_all(
        node_names.iter().map(|node| Anvil::spawn(binary, format!("{chain}/{node}"), chain_id, genesis_time)),
    )
    .await?;
    let mut genesis = None;
    for anvil in &anvils {
        let hash = anvil.block(0).await?.hash;
        match genesis {
            None => genesis = Some(hash),
            Some(first) if first != hash => {
                return Err(AnvilError::GenesisMismatch { chain: chain.to_owned(), first, other: hash });
            }
            Some(_) => {}
        }
    }
    Ok(ChainExecution { anvils: anvils.into_iter().map(Arc::new).collect(), genesis_hash: genesis })
}

/// The coinbase a producer's blocks carry, so two producers' blocks at one height differ.
pub fn coinbase_of(producer: &str) -> Address {
    Address::from_word(keccak256(format!("op-sim producer {producer}")))
}

impl Anvil {
    /// Starts `binary` on a free loopback port with the chain's genesis, and waits for its address.
    pub async fn spawn(
        binary: &Path,
        label: String,
        chain_id: u64,
        genesis_time: u64,
    ) -> Result<Self, AnvilError> {
        let mut child = Command::new(binary)
            .args(["--host", "127.0.0.1", "--port", "0", "--no-mining", "--base-fee", "0"])
            .args(["--chain-id", &chain_id.to_string(), "--timestamp", &genesis_time.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| AnvilError::Spawn { binary: binary.to_owned(), source })?;
        let pid = child.id().unwrap_or_default();
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        let (Some(stdout), Some(stderr)) = (stdout, stderr) else {
            let _ = child.start_kill();
            return Err(AnvilError::NoAddress {
                waited: START_TIMEOUT,
                binary: binary.to_owned(),
                output: "no output pipes".into(),
            });
        };
        let mut stdout = BufReader::new(stdout).lines();
        let address = tokio::time::timeout(START_TIMEOUT, async {
            while let Ok(Some(line)) = stdout.next_line().await {
                if let Some(address) = line.trim().strip_prefix("Listening on ") {
                    return Some(address.trim().to_owned());
                }
            }
            None
        })
        .await
        .ok()
        .flatten();
        let Some(address) = address else {
            let _ = child.start_kill();
            return Err(AnvilError::NoAddress {
                binary: binary.to_owned(),
                waited: START_TIMEOUT,
                output: read_some(stderr).await,
            });
        };
        // anvil logs every call; an undrained pipe would block it once full.
        tokio::spawn(drain(stdout.into_inner(), label.clone()));
        tokio::spawn(drain(stderr, label.clone()));
        let url = format!("http://{address}");
        let client = HttpClientBuilder::default()
            .request_timeout(CALL_TIMEOUT)
            .build(&url)
            .map_err(|source| AnvilError::Call { url: url.clone(), method: "connect", source })?;
        tracing::info!(anvil = %label, %url, pid, "anvil started");
        Ok(Self { label, url, pid, child: Mutex::new(child), client, ops: tokio::sync::Mutex::new(()) })
    }

    /// Its JSON-RPC URL: the node's op-geth.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Its OS process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Kills the process (SIGKILL). Idempotent.
    pub fn kill(&self) {
        let mut child = self.child.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(err) = child.start_kill() {
            tracing::debug!(anvil = %self.label, %err, "anvil already gone");
        }
    }

    /// Mines the next block of node `node`, an active sequencer, on its head.
    pub async fn mine_next<'a>(&'a self, params: &ChainParams, node: &Node) -> Mined<'a> {
        let ops = self.ops.lock().await;
        let parent = node.lock().head().clone();
        let mut block = params.child_of(&parent, &node.name);
        match self.execute(&parent, &block, None).await {
            Ok(hash) => {
                block.hash = hash;
                Mined::Block(Arc::new(block), ops)
            }
            Err(err) => {
                tracing::error!(
                    anvil = %self.label, number = block.number, %err,
                    "anvil did not mine the block; nothing sealed"
                );
                Mined::Failed
            }
        }
    }

    /// Offers a gossiped or fetched block to `node`: a block that would become canonical is
    /// executed on this anvil first and imported only when the anvil made the identical block.
    /// None when the node cannot import now or the execution failed.
    pub async fn import(&self, node: &Node, block: Arc<Block>) -> Option<Imported> {
        let _ops = self.ops.lock().await;
        let (fork, branch) = {
            let mut state = node.lock();
            if !state.can_import() {
                return None;
            }
            let store = &state.store;
            let head = store.head().number;
            let extends_or_reorgs = store.get(&block.hash).is_none()
                && store.get(&block.parent_hash).is_some()
                && block.number > head;
            if !extends_or_reorgs {
                return Some(state.import(block));
            }
            // The new branch back to the canonical chain, newest first.
            let mut branch = vec![block.clone()];
            let fork = loop {
                let Some(parent) = branch.last().and_then(|tip| store.get(&tip.parent_hash)) else {
                    tracing::error!(
                        anvil = %self.label, number = block.number,
                        "import failed: the branch reaches below the retained blocks"
                    );
                    return None;
                };
                if store.is_canonical(&parent.hash) {
                    break parent.clone();
                }
                branch.push(parent.clone());
            };
            branch.reverse();
            (fork, branch)
        };
        let mut parent = fork;
        for next in &branch {
            if let Err(err) = self.execute(&parent, next, Some(next.hash)).await {
                tracing::error!(
                    anvil = %self.label, number = next.number, %err,
                    "import failed: anvil did not make the identical block"
                );
                return None;
            }
            parent = next.clone();
        }
        let mut state = node.lock();
        // Not importable any more (crashed meanwhile): the anvil is ahead and gets rewound next time.
        state.can_import().then(|| state.import(block))
    }

    /// Rewinds the anvil to `parent`, mines `block`'s coinbase and timestamp on it, and returns the
    /// mined hash after checking parent, timestamp and, when given, the hash. A block that does
    /// not fit is rolled back.
    async fn execute(
        &self,
        parent: &Block,
        block: &Block,
        expected: Option<B256>,
    ) -> Result<B256, AnvilError> {
        self.rewind_to(parent).await?;
        let coinbase = coinbase_of(&block.producer);
        self.call("anvil_setCoinbase", rpc_params![coinbase]).await?;
        self.call("evm_mine", rpc_params![json!({ "timestamp": block.timestamp })]).await?;
        let mined = self.block(block.number).await?;
        let fits = mined.parent_hash == parent.hash && mined.timestamp.to::<u64>() == block.timestamp;
        if !fits || expected.is_some_and(|hash| hash != mined.hash) {
            self.call("anvil_rollback", rpc_params![1u64]).await?;
            return Err(AnvilError::Mismatch {
                url: self.url.clone(),
                number: block.number,
                mined: mined.hash,
                mined_parent: mined.parent_hash,
                mined_time: mined.timestamp.to(),
                expected,
                expected_parent: parent.hash,
                expected_time: block.timestamp,
            });
        }
        Ok(mined.hash)
    }

    /// Makes `target` the anvil's head: drops any block above it (re-orged away, or mined but never
    /// adopted by the node).
    async fn rewind_to(&self, target: &Block) -> Result<(), AnvilError> {
        let head = self.latest().await?;
        if head.hash == target.hash {
            return Ok(());
        }
        let head_number = head.number.to::<u64>();
        let diverged = || AnvilError::Diverged {
            url: self.url.clone(),
            anvil_head: BlockId { hash: head.hash, number: head_number },
            expected: target.id(),
        };
        if head_number <= target.number || self.block(target.number).await?.hash != target.hash {
            return Err(diverged());
        }
        let depth = head_number - target.number;
        tracing::warn!(
            anvil = %self.label, depth, to = target.number,
            "rolling anvil back to the block its node builds on (a re-org, or blocks never adopted)"
        );
        self.call("anvil_rollback", rpc_params![depth]).await?;
        Ok(())
    }

    async fn latest(&self) -> Result<BlockHeader, AnvilError> {
        self.block_by(BlockNumberOrTag::Latest, 0).await
    }

    /// Block `number` of the anvil's chain.
    pub async fn block(&self, number: u64) -> Result<BlockHeader, AnvilError> {
        self.block_by(BlockNumberOrTag::Number(number), number).await
    }

    async fn block_by(&self, selector: BlockNumberOrTag, number: u64) -> Result<BlockHeader, AnvilError> {
        self.client
            .block_by_number(selector, false)
            .await
            .map_err(|source| AnvilError::Call {
                url: self.url.clone(),
                method: "eth_getBlockByNumber",
                source,
            })?
            .ok_or_else(|| AnvilError::MissingBlock { url: self.url.clone(), number })
    }

    async fn call(
        &self,
        method: &'static str,
        params: jsonrpsee::core::params::ArrayParams,
    ) -> Result<(), AnvilError> {
        self.client.request::<Value, _>(method, params).await.map(drop).map_err(|source| AnvilError::Call {
            url: self.url.clone(),
            method,
            source,
        })
    }
}

/// Reads what a failed anvil printed, bounded in size and time.
async fn read_some(stream: impl AsyncRead + Unpin) -> String {
    let mut text = String::new();
    let mut bounded = stream.take(16 * 1024);
    let _ = tokio::time::timeout(Duration::from_secs(2), bounded.read_to_string(&mut text)).await;
    text.trim().to_owned()
}

/// Consumes an anvil's output until it exits.
async fn drain(stream: impl AsyncRead + Unpin, label: String) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::trace!(anvil = %label, "{line}");
    }
}
