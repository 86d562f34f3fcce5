//! Fixtures shared by the simulator's integration tests: a running simulator on loopback, JSON-RPC
//! clients for its endpoints, a raw HTTP client for byte-level checks, and `wait_for`, which polls a
//! condition until a deadline and reports the last observed state instead of sleeping.

// Each test binary uses a different subset of these fixtures.
#![allow(dead_code)]

pub(crate) mod conductor;

use alloy_primitives::B256;
use anyhow::{Context as _, Result, bail};
use jsonrpsee::{
    core::ClientError,
    http_client::{HttpClient, HttpClientBuilder},
};
use op_sim::api::{LedgerEntry, SimNodeInfo};
use op_sim::{NodeOptions, SimConfig, Simulator};
use opc_wire::{
    BlockId,
    api::{EthApiClient, OptimismApiClient},
};
use serde_json::{Value, json};
use std::{fmt::Debug, sync::Arc, time::Duration};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    time::Instant,
};

/// How long any awaited condition may take. Generous: the suite runs on two loaded cores.
pub(crate) const DEADLINE: Duration = Duration::from_secs(10);
/// How often a condition is polled.
pub(crate) const POLL: Duration = Duration::from_millis(5);
/// Fixed genesis time so timestamps and L1 origins are predictable.
pub(crate) const GENESIS_TIME: u64 = 1_700_000_000;
/// Chain id of the single chain `SimConfig::uniform` creates.
pub(crate) const CHAIN_ID: u64 = 901;

/// One chain `devnet` of `nodes` nodes (`seq-0` active, the rest stopped) with short lags so safe and
/// finalized heads move within a test.
pub(crate) fn config(nodes: usize, block_time_ms: u64) -> SimConfig {
    let mut config = SimConfig::uniform(1, nodes, block_time_ms);
    config.genesis_time = Some(GENESIS_TIME);
    config.safe_lag_blocks = 3;
    config.finalized_lag_blocks = 6;
    config
}

/// Changes the options of node `index` of the first chain.
pub(crate) fn set_options(config: &mut SimConfig, index: usize, options: NodeOptions) {
    config.chains[0].nodes[index].options = options;
}

/// A running simulator and convenient access to its nodes.
#[derive(Debug, Clone)]
pub(crate) struct Fixture {
    pub(crate) sim: Arc<Simulator>,
}

impl Fixture {
    /// Starts the simulator on free loopback ports.
    pub(crate) async fn start(config: SimConfig) -> Result<Self> {
        let sim = Simulator::start(config).await.context("starting the simulator")?;
        Ok(Self { sim: Arc::new(sim) })
    }

    /// `sim_nodes` entry of `name` (`NODE` or `CHAIN/NODE`).
    pub(crate) fn info(&self, name: &str) -> Result<SimNodeInfo> {
        self.sim
            .nodes()
            .into_iter()
            .find(|node| node.name == name || format!("{}/{}", node.chain, node.name) == name)
            .with_context(|| format!("no node {name}"))
    }

    /// The op-node URL of `name`.
    pub(crate) fn op_node_url(&self, name: &str) -> Result<String> {
        Ok(self.info(name)?.op_node_url)
    }

    /// The op-geth URL of `name`.
    pub(crate) fn op_geth_url(&self, name: &str) -> Result<String> {
        Ok(self.info(name)?.op_geth_url)
    }

    /// A JSON-RPC client of `name`'s op-node.
    pub(crate) fn op_node(&self, name: &str) -> Result<HttpClient> {
        client(&self.op_node_url(name)?)
    }

    /// A JSON-RPC client of `name`'s op-geth.
    pub(crate) fn op_geth(&self, name: &str) -> Result<HttpClient> {
        client(&self.op_geth_url(name)?)
    }

    /// Ground truth: `name`'s unsafe head.
    pub(crate) fn head(&self, name: &str) -> Result<BlockId> {
        Ok(self.info(name)?.unsafe_head)
    }

    /// Every ledger entry so far.
    pub(crate) fn ledger(&self) -> Vec<LedgerEntry> {
        self.sim.ledger_entries(0)
    }

    /// Blocks sealed by `producer`, in sealing order.
    pub(crate) fn sealed_by(&self, producer: &str) -> Vec<SealedBlock> {
        self.ledger()
            .into_iter()
            .filter_map(|entry| match entry {
                LedgerEntry::Block { producer: by, number, hash, parent, t_ms, .. } if by == producer => {
                    Some(SealedBlock { number, hash, parent, t_ms })
                }
                _ => None,
            })
            .collect()
    }

    /// Re-orgs recorded for `node`.
    pub(crate) fn reorgs_of(&self, node: &str) -> Vec<LedgerEntry> {
        self.ledger()
            .into_iter()
            .filter(|entry| matches!(entry, LedgerEntry::Reorg { node: name, .. } if name == node))
            .collect()
    }

    /// Waits until `name`'s ground-truth head is at least `number`; returns it.
    pub(crate) async fn wait_for_height(&self, name: &str, number: u64) -> Result<BlockId> {
        wait_for(&format!("{name} to reach height {number}"), async || {
            let head = self.head(name).map_err(|err| err.to_string())?;
            if head.number >= number { Ok(head) } else { Err(format!("head {head}")) }
        })
        .await
    }

    /// Waits until `name`'s head, as its op-node reports it over HTTP, is `hash`.
    pub(crate) async fn wait_for_head_over_rpc(&self, name: &str, hash: B256) -> Result<()> {
        let op_node = self.op_node(name)?;
        wait_for(&format!("{name} to report head {hash}"), async || {
            let status = op_node.sync_status().await.map_err(|err| err.to_string())?;
            if status.unsafe_l2.hash == hash {
                Ok(())
            } else {
                Err(format!("unsafe_l2 {}", status.unsafe_l2))
            }
        })
        .await
    }

    /// Waits until `name`'s op-geth serves `hash` at `number`.
    pub(crate) async fn wait_for_geth_block(&self, name: &str, number: u64, hash: B256) -> Result<()> {
        let op_geth = self.op_geth(name)?;
        wait_for(&format!("{name}'s op-geth to serve {hash}:{number}"), async || {
            let block = op_geth
                .block_by_number(opc_wire::BlockNumberOrTag::Number(number), false)
                .await
                .map_err(|err| err.to_string())?;
            match block {
                Some(block) if block.hash == hash => Ok(()),
                Some(block) => Err(format!("block {number} is {}", block.hash)),
                None => Err(format!("no block {number} yet")),
            }
        })
        .await
    }
}

/// One `LedgerEntry::Block`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SealedBlock {
    pub(crate) number: u64,
    pub(crate) hash: B256,
    pub(crate) parent: B256,
    pub(crate) t_ms: u64,
}

/// A JSON-RPC client with a deadline longer than any fault a test holds open.
pub(crate) fn client(url: &str) -> Result<HttpClient> {
    HttpClientBuilder::default()
        .request_timeout(Duration::from_secs(20))
        .build(url)
        .with_context(|| format!("building a client for {url}"))
}

/// Polls `probe` every few milliseconds until it returns `Ok`, or fails after [`DEADLINE`] with
/// the last state the probe observed (its `Err`).
pub(crate) async fn wait_for<T>(what: &str, mut probe: impl AsyncFnMut() -> Result<T, String>) -> Result<T> {
    let started = Instant::now();
    loop {
        match probe().await {
            Ok(value) => return Ok(value),
            Err(state) if started.elapsed() >= DEADLINE => {
                bail!("timed out after {DEADLINE:?} waiting for {what}; last observed: {state}")
            }
            Err(_) => tokio::time::sleep(POLL).await,
        }
    }
}

/// Polls `probe` for `window` and fails as soon as it returns `Err`: for conditions that must
/// *keep* holding (a stalled head that must not move), which can only be observed over time.
pub(crate) async fn holds_for(
    what: &str,
    window: Duration,
    mut probe: impl AsyncFnMut() -> Result<(), String>,
) -> Result<()> {
    let started = Instant::now();
    while started.elapsed() < window {
        if let Err(state) = probe().await {
            bail!("{what} stopped holding after {:?}: {state}", started.elapsed());
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(())
}

/// The code and message of a JSON-RPC error reply; fails on success or a transport error.
pub(crate) fn rpc_error<T: Debug>(result: Result<T, ClientError>) -> Result<(i32, String)> {
    match result {
        Err(ClientError::Call(error)) => Ok((error.code(), error.message().to_owned())),
        other => bail!("expected a JSON-RPC error reply, got {other:?}"),
    }
}

/// A reply read byte for byte.
#[derive(Debug)]
pub(crate) struct RawReply {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
}

impl RawReply {
    /// The body parsed as JSON.
    pub(crate) fn json(&self) -> Result<Value> {
        serde_json::from_slice(&self.body)
            .with_context(|| format!("body is not JSON: {}", String::from_utf8_lossy(&self.body)))
    }

    /// The `result` member of a JSON-RPC reply; fails on an error reply.
    pub(crate) fn result(&self) -> Result<Value> {
        let reply = self.json()?;
        match reply.get("result") {
            Some(result) => Ok(result.clone()),
            None => bail!("no result in {reply}"),
        }
    }

    /// The `error` member of a JSON-RPC reply as `(code, message)`.
    pub(crate) fn error(&self) -> Result<(i64, String)> {
        let reply = self.json()?;
        let error = reply.get("error").with_context(|| format!("no error in {reply}"))?;
        let code =
            error.get("code").and_then(Value::as_i64).with_context(|| format!("no code in {reply}"))?;
        let message =
            error.get("message").and_then(Value::as_str).with_context(|| format!("no message in {reply}"))?;
        Ok((code, message.to_owned()))
    }
}

/// `(host:port, path)` of an `http://` URL.
pub(crate) fn split_url(url: &str) -> Result<(String, String)> {
    let rest = url.strip_prefix("http://").with_context(|| format!("not an http URL: {url}"))?;
    Ok(match rest.split_once('/') {
        Some((authority, path)) => (authority.to_owned(), format!("/{path}")),
        None => (rest.to_owned(), "/".to_owned()),
    })
}

/// Sends one JSON-RPC call over a fresh connection and reads the raw reply.
pub(crate) async fn raw_call(url: &str, method: &str, params: Value) -> Result<RawReply> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
    raw_post(url, &body).await
}

/// POSTs `body` over a fresh connection (`Connection: close`) and reads the reply to the end.
pub(crate) async fn raw_post(url: &str, body: &str) -> Result<RawReply> {
    let (authority, path) = split_url(url)?;
    let mut stream = TcpStream::connect(&authority).await.with_context(|| format!("connecting to {url}"))?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.with_context(|| format!("reading the reply of {url}"))?;
    let split = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .with_context(|| format!("no HTTP header in {:?}", String::from_utf8_lossy(&raw)))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("no status in {head:?}"))?;
    Ok(RawReply { status, body: raw[split + 4..].to_vec() })
}

/// True when a TCP connection to `url`'s port is refused (nothing listens there).
pub(crate) async fn refuses_connections(url: &str) -> Result<bool> {
    let (authority, _) = split_url(url)?;
    match TcpStream::connect(&authority).await {
        Ok(_) => Ok(false),
        Err(err) if err.kind() == std::io::ErrorKind::ConnectionRefused => Ok(true),
        Err(err) => Err(err).with_context(|| format!("connecting to {url}")),
    }
}

/// Waits until `url` refuses connections.
pub(crate) async fn wait_until_refused(url: &str) -> Result<()> {
    wait_for(&format!("{url} to refuse connections"), async || match refuses_connections(url).await {
        Ok(true) => Ok(()),
        Ok(false) => Err("connection accepted".to_owned()),
        Err(err) => Err(format!("{err:#}")),
    })
    .await
}

/// Waits until `url` answers `eth_chainId` or `optimism_syncStatus` (whichever it serves) again.
pub(crate) async fn wait_until_answering(url: &str, method: &str) -> Result<RawReply> {
    wait_for(&format!("{url} to answer {method}"), async || match raw_call(url, method, json!([])).await {
        Ok(reply) if reply.status == 200 => Ok(reply),
        Ok(reply) => Err(format!("status {}", reply.status)),
        Err(err) => Err(format!("{err:#}")),
    })
    .await
}

/// The L1 epoch of L2 block `number`: its timestamp's distance from genesis in 12 s L1 blocks.
pub(crate) fn expected_epoch(number: u64, block_time_ms: u64) -> u64 {
    (number * block_time_ms / 1000) / op_sim::block::L1_BLOCK_TIME_SECS
}

/// The `sequenceNumber` of L2 block `number`: its position within its L1 epoch.
pub(crate) fn expected_sequence_number(number: u64, block_time_ms: u64) -> u64 {
    let epoch = expected_epoch(number, block_time_ms);
    let first = (0..=number).find(|n| expected_epoch(*n, block_time_ms) == epoch).unwrap_or(number);
    number - first
}
