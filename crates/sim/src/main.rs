//! `op-sim`: run simulated OP Stack sequencer nodes on loopback.
//!
//! The binary only parses flags, starts the library's [`Simulator`] and waits for Ctrl-C.

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use op_sim::{GossipConfig, NodeOptions, Routing, SimConfig, Simulator};
use opc_wire::SyncStatusShape;
use std::{
    io::Write as _,
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    sync::Arc,
    time::Duration,
};
use tokio::net::TcpListener;

#[derive(Debug, Parser)]
#[command(
    name = "op-sim",
    version,
    about = "Simulated OP Stack sequencer nodes (op-node + op-geth) with fault injection"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start chains of simulated nodes and serve their RPC until Ctrl-C.
    ///
    /// Every node gets an op-node and an op-geth JSON-RPC endpoint. The first node of each chain
    /// starts active (producing blocks); the others follow over simulated p2p. Faults are injected
    /// through the control endpoint (`sim_fault`, `sim_heal`, `sim_partition`; see the README).
    Run(RunArgs),
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Nodes per chain.
    #[arg(long, default_value_t = 3, env = "OP_SIM_NODES")]
    nodes: usize,
    /// Number of chains (named `devnet` when 1, else `chain-0`, `chain-1`, ...).
    #[arg(long, default_value_t = 1, env = "OP_SIM_CHAINS")]
    chains: usize,
    /// Time between blocks of the active sequencer, in milliseconds (at least 50).
    #[arg(long, default_value_t = 1000, env = "OP_SIM_BLOCK_TIME_MS")]
    block_time_ms: u64,
    /// Address of the control JSON-RPC endpoint (`sim_*` methods).
    #[arg(long, default_value = "127.0.0.1:7400", env = "OP_SIM_CONTROL")]
    control: SocketAddr,
    /// Address every node endpoint listens on, each on its own free port.
    #[arg(long, default_value = "127.0.0.1", env = "OP_SIM_HOST")]
    host: IpAddr,
    /// Serve every node on this one address by URL path (`/CHAIN/NODE/op-node`) instead of a port
    /// per endpoint: lets one process simulate hundreds of nodes. A crash then closes
    /// connections instead of refusing them.
    #[arg(long, env = "OP_SIM_SHARED_PORT")]
    shared_port: Option<SocketAddr>,
    /// One-way p2p gossip delay in milliseconds.
    #[arg(long, default_value_t = 20)]
    gossip_latency_ms: u64,
    /// Random extra p2p delay, uniform in 0..=N milliseconds.
    #[arg(long, default_value_t = 10)]
    gossip_jitter_ms: u64,
    /// How long sealing one block takes in milliseconds (default: block time / 20, at most 20).
    #[arg(long)]
    seal_ms: Option<u64>,
    /// Seed of the gossip jitter.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Start every node stopped (no active sequencer), as with `--sequencer.stopped` everywhere.
    #[arg(long)]
    no_active: bool,
    /// Nodes persist their admin state across restarts (`--rpc.admin-state`).
    #[arg(long)]
    admin_state: bool,
    /// Nodes answer `admin_stopSequencer` with the zero hash (2023 op-node behaviour).
    #[arg(long)]
    zero_stopped_hash: bool,
    /// Key set of `optimism_syncStatus` replies: 2023, early-2024 or late-2024.
    #[arg(long, default_value = "late-2024", value_parser = parse_shape)]
    sync_status_shape: SyncStatusShape,
    /// Every op-node commits its blocks to a conductor first, as op-node started with
    /// `--conductor.enabled --conductor.rpc=http://ADDR/CHAIN/NODE` does: ADDR is the coordinator's
    /// `conductor.listen`. With one address per coordinator replica (comma-separated), node i of
    /// each chain uses address i mod n. Nodes then start stopped (the coordinator starts one), and
    /// `--write-config` marks the chains `conductor = true`.
    #[arg(long, value_name = "ADDR", value_delimiter = ',', env = "OP_SIM_CONDUCTOR")]
    conductor: Vec<std::net::SocketAddr>,
    /// About how large a block's payload envelope is, in bytes, when committed to a conductor
    /// (0: the smallest, about 1.5 KB).
    #[arg(long, default_value_t = 0)]
    payload_bytes: usize,
    /// Write the `[chains.*]` blocks of a coordinator config for these nodes to FILE.
    #[arg(long, value_name = "FILE")]
    write_config: Option<PathBuf>,
    /// Append every ledger entry to FILE as JSON lines while running.
    #[arg(long, value_name = "FILE")]
    ledger: Option<PathBuf>,
    /// Do not print the endpoint table (useful with hundreds of nodes).
    #[arg(long)]
    quiet: bool,
}

fn parse_shape(text: &str) -> Result<SyncStatusShape, String> {
    serde_json::from_value(serde_json::Value::String(text.to_owned()))
        .map_err(|_| format!("unknown shape {text:?}; expected 2023, early-2024 or late-2024"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Run(args) => run(args).await,
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let mut config = SimConfig::uniform(args.chains, args.nodes, args.block_time_ms);
    config.gossip = GossipConfig { latency_ms: args.gossip_latency_ms, jitter_ms: args.gossip_jitter_ms };
    if let Some(seal_ms) = args.seal_ms {
        config.seal_ms = seal_ms;
    }
    config.seed = args.seed;
    config.routing = match args.shared_port {
        Some(addr) => Routing::SharedPort(addr),
        None => Routing::PortPerServer(args.host),
    };
    for chain in &mut config.chains {
        for node in &mut chain.nodes {
            node.options = NodeOptions {
                start_active: node.options.start_active && !args.no_active,
                persist_admin_state: args.admin_state,
                zero_stopped_hash: args.zero_stopped_hash,
                sync_status_shape: args.sync_status_shape,
                ..NodeOptions::default()
            };
        }
    }
    config.payload_bytes = args.payload_bytes;
    let config = config.with_conductors(&args.conductor);
    let control = TcpListener::bind(args.control)
        .await
        .with_context(|| format!("cannot listen on --control {}", args.control))?;
    let control_addr = control.local_addr()?;
    let sim = Arc::new(Simulator::start(config).await?);
    sim.serve_control(control);

    if let Some(path) = &args.write_config {
        std::fs::write(path, sim.coordinator_config())
            .with_context(|| format!("cannot write --write-config {}", path.display()))?;
        eprintln!("wrote coordinator config for {} nodes to {}", sim.nodes().len(), path.display());
    }
    let nodes = sim.nodes();
    if !args.quiet {
        println!("{:<10} {:<8} {:<7} {:<40} {:<40}", "CHAIN", "NODE", "ACTIVE", "OP-NODE", "OP-GETH");
        for node in &nodes {
            println!(
                "{:<10} {:<8} {:<7} {:<40} {:<40}",
                node.chain, node.name, node.active, node.op_node_url, node.op_geth_url
            );
        }
    }
    println!(
        "control: http://{control_addr}  ({} nodes, {} ms blocks; Ctrl-C stops)",
        nodes.len(),
        args.block_time_ms
    );

    let ledger_task = args.ledger.clone().map(|path| tokio::spawn(write_ledger(sim.clone(), path)));
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    sim.shutdown();
    if let Some(task) = ledger_task {
        task.await??;
    }
    for report in sim.invariants() {
        eprintln!("{report}");
    }
    Ok(())
}

/// Appends new ledger entries to `path` every 200 ms, and once more at shutdown.
async fn write_ledger(sim: Arc<Simulator>, path: PathBuf) -> anyhow::Result<()> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("cannot open --ledger {}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let mut next = 0;
    loop {
        let stopping = tokio::select! {
            () = sim.stopped() => true,
            () = tokio::time::sleep(Duration::from_millis(200)) => false,
        };
        next = sim.ledger().write_jsonl(next, &mut out)?;
        out.flush()?;
        if stopping {
            return Ok(());
        }
    }
}
