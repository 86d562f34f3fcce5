//! The simulator: chains of nodes, their RPC servers, faults by name, and the ledger.

use crate::{
    anvil::{self, Anvil, ExecutionBackend},
    block::ChainParams,
    chain::{Chain, GossipConfig, Service},
    error::SimError,
    http::{AdminCallLog, CallerFilter, Endpoint, Router, serve_endpoint, serve_router},
    ledger::Ledger,
    node::NodeOptions,
    rpc::NodeRpc,
};
use op_sim_api::{ChainInvariants, FaultKind, FaultParams, IsolateMode, LedgerEntry, SimNodeInfo};
use serde::{Deserialize, Serialize};
use std::{
    fmt::Write as _,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// One node of a chain to simulate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSpec {
    /// Unique within the chain; appears in URLs and the ledger.
    pub name: String,
    /// Its op-node flags.
    #[serde(default)]
    pub options: NodeOptions,
}

/// One chain to simulate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainSpec {
    /// Unique within the simulator; appears in URLs and the ledger.
    pub name: String,
    /// L2 chain id.
    pub chain_id: u64,
    /// Its nodes.
    pub nodes: Vec<NodeSpec>,
}

/// Where the nodes' RPC servers listen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Routing {
    /// Every server on its own free port of this address (crash = connection refused).
    PortPerServer(IpAddr),
    /// Every server on one listener, by URL path `/CHAIN/NODE/op-node` (crash = connection closed).
    SharedPort(SocketAddr),
}

/// Everything needed to start a simulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    /// The chains.
    pub chains: Vec<ChainSpec>,
    /// Time between blocks of an active sequencer (at least 50 ms).
    pub block_time_ms: u64,
    /// p2p timing.
    pub gossip: GossipConfig,
    /// How long sealing a block takes; `admin_stopSequencer` waits for a seal in progress.
    pub seal_ms: u64,
    /// How far the safe head trails the unsafe head.
    pub safe_lag_blocks: u64,
    /// How far the finalized head trails the unsafe head.
    pub finalized_lag_blocks: u64,
    /// Where the RPC servers listen.
    pub routing: Routing,
    /// Seeds the gossip jitter so runs are reproducible.
    pub seed: u64,
    /// Unix seconds of block 0 (default: now).
    pub genesis_time: Option<u64>,
    /// What executes the blocks: the in-process simulation (default) or one anvil per node.
    pub execution: ExecutionBackend,
    /// About how large a block's payload envelope is when committed to a conductor (0: the
    /// smallest, about 1.5 KB).
    pub payload_bytes: usize,
}

impl SimConfig {
    /// Every node uses the conductor at `addr` (`--conductor.rpc=http://ADDR/CHAIN/NODE`, as the
    /// coordinator's conductor endpoint names its callers) and starts stopped, as op-node with a
    /// conductor runs.
    pub fn with_conductor(self, addr: SocketAddr) -> Self {
        self.with_conductors(&[addr])
    }

    /// [`SimConfig::with_conductor`] with one conductor endpoint per coordinator replica: node `i`
    /// of each chain uses `addrs[i % addrs.len()]` (op-node takes one URL; a replica that does not
    /// lead forwards to the one that does). No addresses: no conductor.
    pub fn with_conductors(mut self, addrs: &[SocketAddr]) -> Self {
        if addrs.is_empty() {
            return self;
        }
        for chain in &mut self.chains {
            for (index, node) in chain.nodes.iter_mut().enumerate() {
                let addr = addrs[index % addrs.len()];
                node.options.conductor_rpc = Some(format!("http://{addr}/{}/{}", chain.name, node.name));
                node.options.start_active = false;
            }
        }
        self
    }

    /// `chains` chains of `nodes` nodes each (`seq-0`, `seq-1`, ...), the first node of each chain
    /// started active and the rest stopped, on free loopback ports.
    pub fn uniform(chains: usize, nodes: usize, block_time_ms: u64) -> Self {
        let chains = (0..chains)
            .map(|chain| ChainSpec {
                name: if chains == 1 { "devnet".to_owned() } else { format!("chain-{chain}") },
                chain_id: 901 + chain as u64,
                nodes: (0..nodes)
                    .map(|node| NodeSpec {
                        name: format!("seq-{node}"),
                        options: NodeOptions { start_active: node == 0, ..NodeOptions::default() },
                    })
                    .collect(),
            })
            .collect();
        Self {
            chains,
            block_time_ms,
            gossip: GossipConfig::default(),
            seal_ms: (block_time_ms / 20).clamp(1, 20),
            safe_lag_blocks: 8,
            finalized_lag_blocks: 32,
            routing: Routing::PortPerServer(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            seed: 1,
            genesis_time: None,
            execution: ExecutionBackend::Simulated,
            payload_bytes: 0,
        }
    }

    fn validate(&self) -> Result<(), SimError> {
        if self.block_time_ms < 50 {
            return Err(SimError::BadConfig(format!(
                "block_time_ms is {}; the simulator seals at most one block per 50 ms",
                self.block_time_ms
            )));
        }
        if self.seal_ms >= self.block_time_ms {
            return Err(SimError::BadConfig("seal_ms must be shorter than block_time_ms".into()));
        }
        if self.execution != ExecutionBackend::Simulated && matches!(self.routing, Routing::SharedPort(_)) {
            return Err(SimError::BadConfig(
                "anvil serves each node's op-geth on its own port; use port-per-server routing".into(),
            ));
        }
        if self.chains.is_empty() {
            return Err(SimError::BadConfig("no chain to simulate".into()));
        }
        let valid = |name: &str| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        };
        let mut chain_names = std::collections::HashSet::new();
        for chain in &self.chains {
            if !valid(&chain.name) || !chain_names.insert(&chain.name) {
                return Err(SimError::BadConfig(format!(
                    "chain name {:?} is empty, duplicated or not [A-Za-z0-9_-]",
                    chain.name
                )));
            }
            if chain.nodes.is_empty() {
                return Err(SimError::BadConfig(format!("chain {} has no node", chain.name)));
            }
            let mut node_names = std::collections::HashSet::new();
            for node in &chain.nodes {
                if !valid(&node.name) || !node_names.insert(&node.name) {
                    return Err(SimError::BadConfig(format!(
                        "node name {:?} of chain {} is empty, duplicated or not [A-Za-z0-9_-]",
                        node.name, chain.name
                    )));
                }
            }
        }
        Ok(())
    }
}

/// The two RPC servers of a node and where they answer.
#[derive(Debug)]
struct NodeServers {
    op_node: Arc<Endpoint>,
    op_geth: Arc<Endpoint>,
    op_node_url: String,
    op_geth_url: String,
}

/// A running simulation. Dropping it stops every node and server.
#[derive(Debug)]
pub struct Simulator {
    chains: Vec<Arc<Chain>>,
    servers: Vec<Vec<NodeServers>>,
    ledger: Ledger,
    /// Coordinator replicas cut off from every node (`sim_isolateCaller`).
    callers: CallerFilter,
    block_time_ms: u64,
    cancel: CancellationToken,
}

impl Simulator {
    /// Starts every chain: binds the RPC servers and runs the sequencers.
    pub async fn start(config: SimConfig) -> Result<Self, SimError> {
        config.validate()?;
        let ledger = Ledger::new();
        let callers = CallerFilter::default();
        let cancel = CancellationToken::new();
        let genesis_time = config.genesis_time.unwrap_or_else(|| {
            SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs())
        });
        let mut router = Router::default();
        let mut chains = Vec::with_capacity(config.chains.len());
        let mut servers = Vec::with_capacity(config.chains.len());
        for (chain_index, spec) in config.chains.iter().enumerate() {
            let node_names: Vec<&str> = spec.nodes.iter().map(|node| node.name.as_str()).collect();
            let execution =
                anvil::start_chain(&config.execution, &spec.name, spec.chain_id, &node_names, genesis_time)
                    .await
                    .map_err(|err| SimError::Anvil(Box::new(err)))?;
            let params = ChainParams {
                chain_id: spec.chain_id,
                genesis_time,
                block_time_ms: config.block_time_ms,
                safe_lag_blocks: config.safe_lag_blocks,
                finalized_lag_blocks: config.finalized_lag_blocks,
                genesis_hash: execution.genesis_hash,
            };
            let chain = Chain::new(
                spec.name.clone(),
                params,
                config.gossip,
                config.seal_ms,
                ledger.clone(),
                spec.nodes.iter().map(|node| (node.name.clone(), node.options.clone())).collect(),
                config.seed.wrapping_add(chain_index as u64),
            )?;
            let chain =
                Arc::new(chain.with_anvils(execution.anvils).with_payload_bytes(config.payload_bytes));
            let mut chain_servers = Vec::with_capacity(spec.nodes.len());
            for (index, node) in spec.nodes.iter().enumerate() {
                let rpc = NodeRpc::new(chain.clone(), index);
                let label = |service: Service| format!("{}/{}/{}", spec.name, node.name, service.as_str());
                let admin_calls = AdminCallLog {
                    ledger: ledger.clone(),
                    chain: spec.name.clone(),
                    node: node.name.clone(),
                };
                let op_node = Endpoint::node(
                    label(Service::OpNode),
                    rpc.op_node_methods(),
                    callers.clone(),
                    Some(admin_calls),
                );
                let op_geth =
                    Endpoint::node(label(Service::OpGeth), rpc.op_geth_methods(), callers.clone(), None);
                let (op_node_url, op_geth_url) = match config.routing {
                    Routing::PortPerServer(ip) => {
                        let op_node_url = spawn_server(op_node.clone(), ip, &cancel).await?;
                        let op_geth_url = match chain.anvil(index) {
                            Some(anvil) => anvil.url().to_owned(),
                            None => spawn_server(op_geth.clone(), ip, &cancel).await?,
                        };
                        (op_node_url, op_geth_url)
                    }
                    Routing::SharedPort(_) => {
                        let path =
                            |service: Service| format!("/{}/{}/{}", spec.name, node.name, service.as_str());
                        router.insert(path(Service::OpNode), op_node.clone())?;
                        router.insert(path(Service::OpGeth), op_geth.clone())?;
                        // The port is known once bound below; fill in after.
                        (path(Service::OpNode), path(Service::OpGeth))
                    }
                };
                chain_servers.push(NodeServers { op_node, op_geth, op_node_url, op_geth_url });
            }
            chains.push(chain);
            servers.push(chain_servers);
        }
        if let Routing::SharedPort(addr) = config.routing {
            let listener = TcpListener::bind(addr).await.map_err(|source| SimError::Bind { addr, source })?;
            let bound = listener.local_addr().map_err(|source| SimError::Bind { addr, source })?;
            for node in servers.iter_mut().flatten() {
                node.op_node_url = format!("http://{bound}{}", node.op_node_url);
                node.op_geth_url = format!("http://{bound}{}", node.op_geth_url);
            }
            tokio::spawn(serve_router(Arc::new(router), listener, cancel.clone()));
        }
        for chain in &chains {
            chain.spawn_sequencers(&cancel);
        }
        Ok(Self { chains, servers, ledger, callers, block_time_ms: config.block_time_ms, cancel })
    }

    /// Stops every node and server, and kills every anvil.
    pub fn shutdown(&self) {
        self.cancel.cancel();
        for chain in &self.chains {
            (0..chain.nodes.len()).filter_map(|index| chain.anvil(index)).for_each(|anvil| anvil.kill());
        }
    }

    /// Resolves once the simulator was shut down.
    pub async fn stopped(&self) {
        self.cancel.cancelled().await;
    }

    /// The ground-truth ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Block time of every chain.
    pub fn block_time(&self) -> Duration {
        Duration::from_millis(self.block_time_ms)
    }

    /// The chains, in configuration order.
    pub fn chains(&self) -> &[Arc<Chain>] {
        &self.chains
    }

    /// Resolves `NODE` (unique across chains) or `CHAIN/NODE` to `(chain, node)` indices.
    pub fn resolve(&self, name: &str) -> Result<(usize, usize), SimError> {
        if let Some((chain_name, node_name)) = name.split_once('/') {
            let chain = self.chains.iter().position(|chain| chain.name == chain_name);
            return chain
                .and_then(|chain| Some((chain, self.chains[chain].index_of(node_name)?)))
                .ok_or_else(|| SimError::UnknownNode(name.to_owned()));
        }
        let mut found = self
            .chains
            .iter()
            .enumerate()
            .filter_map(|(chain_index, chain)| Some((chain_index, chain.index_of(name)?)));
        match (found.next(), found.next()) {
            (Some(hit), None) => Ok(hit),
            (Some(_), Some(_)) => Err(SimError::AmbiguousNode(name.to_owned())),
            (None, _) => Err(SimError::UnknownNode(name.to_owned())),
        }
    }

    /// The anvil executing a node's blocks (`NODE` or `CHAIN/NODE`), when the simulator runs with
    /// [`ExecutionBackend::Anvil`]. Its process is what tests kill or freeze.
    pub fn anvil(&self, node: &str) -> Result<&Arc<Anvil>, SimError> {
        let (chain, index) = self.resolve(node)?;
        self.chains[chain].anvil(index).ok_or_else(|| SimError::NoAnvil(node.to_owned()))
    }

    /// Every node with its endpoints and state.
    pub fn nodes(&self) -> Vec<SimNodeInfo> {
        let mut out = Vec::new();
        for (chain, servers) in self.chains.iter().zip(&self.servers) {
            for (node, server) in chain.nodes.iter().zip(servers) {
                let state = node.lock();
                out.push(SimNodeInfo {
                    chain: chain.name.clone(),
                    name: node.name.clone(),
                    op_node_url: server.op_node_url.clone(),
                    op_geth_url: server.op_geth_url.clone(),
                    active: state.active,
                    op_node_up: state.op_node == crate::node::Process::Up,
                    op_geth_up: state.op_geth == crate::node::Process::Up,
                    unsafe_head: state.head().id(),
                    faults: state.faults.keys().copied().collect(),
                });
            }
        }
        out
    }

    /// Applies a fault to a node by name.
    pub fn fault(&self, node: &str, kind: FaultKind, params: FaultParams) -> Result<(), SimError> {
        let (chain, index) = self.resolve(node)?;
        self.chains[chain].apply_fault(index, kind, params.clone())?;
        self.sync_servers(chain, index);
        tracing::info!(node, %kind, ?params, "fault applied");
        Ok(())
    }

    /// Heals one kind of fault, or all, on a node by name.
    pub fn heal(&self, node: &str, kind: Option<FaultKind>) -> Result<(), SimError> {
        let (chain, index) = self.resolve(node)?;
        self.chains[chain].heal(index, kind);
        self.sync_servers(chain, index);
        self.chains[chain].resync(index);
        tracing::info!(node, kind = kind.map_or("all", FaultKind::as_str), "healed");
        Ok(())
    }

    /// Heals every fault on every node, every partition and every caller isolation.
    pub fn heal_all(&self) {
        for (chain_index, chain) in self.chains.iter().enumerate() {
            for index in 0..chain.nodes.len() {
                chain.heal(index, None);
                self.sync_servers(chain_index, index);
            }
            chain.partition(&[]);
        }
        self.heal_caller(None);
    }

    /// Cuts the requests of coordinator replica `replica` (its `x-opc-replica` header) off from
    /// every node of every chain: refused (connection closed unanswered) or black-holed (held
    /// unanswered, never executed). Other callers still reach the nodes.
    pub fn isolate_caller(&self, replica: u64, mode: IsolateMode) {
        self.callers.isolate(replica, mode);
        self.record_caller_isolation(replica, Some(mode));
        tracing::info!(replica, ?mode, "caller isolated from every node");
    }

    /// Lets the requests of `replica` (None: of every replica) through again.
    pub fn heal_caller(&self, replica: Option<u64>) {
        for healed in self.callers.heal(replica) {
            self.record_caller_isolation(healed, None);
            tracing::info!(replica = healed, "caller isolation healed");
        }
    }

    /// The replicas whose requests are cut off now.
    pub fn isolated_callers(&self) -> std::collections::BTreeMap<u64, IsolateMode> {
        self.callers.current()
    }

    fn record_caller_isolation(&self, replica: u64, mode: Option<IsolateMode>) {
        for chain in &self.chains {
            self.ledger.record(LedgerEntry::CallerIsolation {
                chain: chain.name.clone(),
                replica,
                mode,
                t_ms: self.ledger.now_ms(),
            });
        }
    }

    /// Partitions the p2p network of one chain into groups of named nodes; empty heals every
    /// chain's partition.
    pub fn partition(&self, groups: &[Vec<String>]) -> Result<(), SimError> {
        if groups.iter().all(Vec::is_empty) {
            for chain in &self.chains {
                chain.partition(&[]);
                for index in 0..chain.nodes.len() {
                    chain.resync(index);
                }
            }
            return Ok(());
        }
        let mut chain_index = None;
        let mut seen = std::collections::HashSet::new();
        let mut indices = Vec::with_capacity(groups.len());
        for group in groups {
            let mut group_indices = Vec::with_capacity(group.len());
            for name in group {
                let (chain, index) = self.resolve(name)?;
                if *chain_index.get_or_insert(chain) != chain {
                    return Err(SimError::BadPartition(format!(
                        "{name} is on another chain than the other nodes listed"
                    )));
                }
                if !seen.insert(index) {
                    return Err(SimError::BadPartition(format!("{name} is listed twice")));
                }
                group_indices.push(index);
            }
            indices.push(group_indices);
        }
        if let Some(chain) = chain_index {
            self.chains[chain].partition(&indices);
            for index in 0..self.chains[chain].nodes.len() {
                self.chains[chain].resync(index);
            }
            tracing::info!(?groups, "p2p partitioned");
        }
        Ok(())
    }

    /// The invariant report of every chain.
    pub fn invariants(&self) -> Vec<ChainInvariants> {
        self.chains.iter().map(|chain| self.ledger.check_chain(&chain.name, self.block_time_ms)).collect()
    }

    /// Ledger entries from index `from` on.
    pub fn ledger_entries(&self, from: usize) -> Vec<LedgerEntry> {
        self.ledger.entries_from(from)
    }

    /// The `[chains.*.sequencers.*]` blocks of a coordinator config for these nodes; a chain whose
    /// nodes use a conductor is in conductor mode (`conductor = true`).
    pub fn coordinator_config(&self) -> String {
        let mut out = String::new();
        for (chain, servers) in self.chains.iter().zip(&self.servers) {
            let _ = writeln!(out, "[chains.{}]\nblock_time_ms = {}", chain.name, self.block_time_ms);
            if chain.nodes.iter().any(|node| node.conductor.is_some()) {
                let _ = writeln!(out, "conductor = true");
            }
            let _ = writeln!(out);
            let count = chain.nodes.len();
            for (position, (node, server)) in chain.nodes.iter().zip(servers).enumerate() {
                let _ = writeln!(
                    out,
                    "[chains.{}.sequencers.{}]\nop_node_url = \"{}\"\nop_geth_url = \"{}\"\npriority = {}\n",
                    chain.name,
                    node.name,
                    server.op_node_url,
                    server.op_geth_url,
                    count - position - 1,
                );
            }
        }
        out
    }

    fn sync_servers(&self, chain: usize, index: usize) {
        let servers = &self.servers[chain][index];
        servers.op_node.set_behaviour(self.chains[chain].endpoint_behaviour(index, Service::OpNode));
        servers.op_geth.set_behaviour(self.chains[chain].endpoint_behaviour(index, Service::OpGeth));
    }

    /// Cancelled when the simulator shuts down: everything it serves stops then.
    pub(crate) fn cancel_token(&self) -> &CancellationToken {
        &self.cancel
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.shutdown();
    }
}

async fn spawn_server(
    endpoint: Arc<Endpoint>,
    ip: IpAddr,
    cancel: &CancellationToken,
) -> Result<String, SimError> {
    let addr = SocketAddr::new(ip, 0);
    let listener = TcpListener::bind(addr).await.map_err(|source| SimError::Bind { addr, source })?;
    let bound = listener.local_addr().map_err(|source| SimError::Bind { addr, source })?;
    tokio::spawn(serve_endpoint(endpoint, listener, cancel.clone()));
    Ok(format!("http://{bound}"))
}
