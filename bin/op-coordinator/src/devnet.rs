//! `op-coordinator devnet`: a simulated chain and the coordinator in one process.

use crate::view;
use anyhow::Context as _;
use clap::{Args, ValueEnum};
use op_coordinator::{Listeners, config::Config};
use op_sim::{SimConfig, Simulator};
use std::{
    io::IsTerminal as _,
    net::SocketAddr,
    sync::{Arc, Mutex},
};
use tokio::net::TcpListener;

/// `op-coordinator devnet`.
#[derive(Debug, Args)]
pub(crate) struct DevnetArgs {
    /// Sequencer nodes in the simulated chain.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Block time of the simulated chain in milliseconds.
    #[arg(long, default_value_t = 1000)]
    block_time_ms: u64,
    /// Admin JSON-RPC of the coordinator.
    #[arg(long, default_value = "127.0.0.1:9762")]
    rpc_listen: SocketAddr,
    /// Prometheus /metrics of the coordinator.
    #[arg(long, default_value = "127.0.0.1:9761")]
    metrics_listen: SocketAddr,
    /// Conductor mode: every simulated op-node commits each block to the coordinator before it
    /// publishes it (`--conductor.enabled`), so a deposed leader cannot publish and a fail-over
    /// needs no liveness window. `--conductor false` runs the chain without it.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    conductor: bool,
    /// The coordinator's conductor endpoint (op-node's `--conductor.rpc`, per node
    /// `http://ADDR/devnet/NODE`).
    #[arg(long, default_value = "127.0.0.1:8547")]
    conductor_listen: SocketAddr,
    /// The simulator's control endpoint (sim_fault, sim_heal, sim_partition, ...).
    #[arg(long, default_value = "127.0.0.1:7400")]
    control: SocketAddr,
    /// Log filter (tracing EnvFilter syntax).
    #[arg(long, default_value = "info,op_sim=warn")]
    log_level: String,
    /// What to show: `live` redraws per node verdict and reason, unsafe head, sequencing, probe
    /// latency, the leader and the last fail-over events four times a second (q or Ctrl-C quits),
    /// with the log in a file in the temp dir; `log` prints the endpoints, then the log on stderr;
    /// `auto` is `live` when stdout is a terminal and `log` otherwise (pipes, files, CI).
    #[arg(long, value_enum, default_value_t = ViewMode::Auto)]
    view: ViewMode,
}

/// `--view`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ViewMode {
    Auto,
    Live,
    Log,
}

pub(crate) fn devnet(args: DevnetArgs) -> anyhow::Result<()> {
    let live = match args.view {
        ViewMode::Auto => std::io::stdout().is_terminal(),
        ViewMode::Live if std::io::stdout().is_terminal() => true,
        ViewMode::Live => anyhow::bail!("--view live needs stdout to be a terminal; use --view log"),
        ViewMode::Log => false,
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log_level)
        .with_context(|| format!("bad --log-level {:?}", args.log_level))?;
    // The live view owns the terminal: a log line written there would tear it.
    let log_path = std::env::temp_dir().join(format!("op-coordinator-devnet-{}.log", std::process::id()));
    if live {
        let file = std::fs::File::create(&log_path)
            .with_context(|| format!("cannot create the log file {}", log_path.display()))?;
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .with_writer(Mutex::new(file))
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let control = TcpListener::bind(args.control)
            .await
            .with_context(|| format!("cannot listen on --control {}", args.control))?;
        let rpc = TcpListener::bind(args.rpc_listen)
            .await
            .with_context(|| format!("cannot listen on --rpc-listen {}", args.rpc_listen))?;
        let metrics = TcpListener::bind(args.metrics_listen)
            .await
            .with_context(|| format!("cannot listen on --metrics-listen {}", args.metrics_listen))?;
        let mut sim_config = SimConfig::uniform(1, args.nodes, args.block_time_ms);
        let mut overrides = Vec::new();
        let conductor = if args.conductor {
            let listener = TcpListener::bind(args.conductor_listen)
                .await
                .with_context(|| format!("cannot listen on --conductor-listen {}", args.conductor_listen))?;
            let addr = listener.local_addr()?;
            sim_config = sim_config.with_conductor(addr);
            overrides.push(("conductor.listen".to_owned(), addr.to_string()));
            Some(listener)
        } else {
            None
        };
        let conductor_url = conductor.as_ref().and_then(|listener| listener.local_addr().ok()).map(|addr| format!("http://{addr}"));
        let sim = Arc::new(Simulator::start(sim_config).await?);
        let control_addr = control.local_addr()?;
        sim.serve_control(control);
        let data_dir = std::env::temp_dir().join(format!("op-coordinator-devnet-{}", std::process::id()));
        let text = format!("data_dir = {:?}\n{}", data_dir.display().to_string(), sim.coordinator_config());
        let config = Config::from_toml_str(&text, Vec::<(String, String)>::new(), &overrides)
            .map_err(|errors| anyhow::anyhow!("{errors}"))?;
        let (rpc_addr, metrics_addr) = (rpc.local_addr()?, metrics.local_addr()?);
        let listeners = Listeners { rpc, metrics: Some(metrics), raft: None, conductor };
        let result = if live {
            let devnet = view::Devnet {
                rpc_url: format!("http://{rpc_addr}"),
                control_url: format!("http://{control_addr}"),
                metrics_url: format!("http://{metrics_addr}/metrics"),
                nodes: args.nodes,
                block_time_ms: args.block_time_ms,
                log_path: log_path.clone(),
            };
            let mut view_result = Ok(());
            let result = op_coordinator::run(config, listeners, async {
                view_result = view::run(devnet).await;
            })
            .await;
            println!("op-coordinator devnet stopped; its log is in {}", log_path.display());
            result.map_err(anyhow::Error::from).and(view_result.context("live view"))
        } else {
            println!("op-coordinator devnet: {} simulated sequencers, {} ms blocks", args.nodes, args.block_time_ms);
            for node in sim.nodes() {
                println!("  {:<6} op-node {}  op-geth {}", node.name, node.op_node_url, node.op_geth_url);
            }
            println!("  coordinator admin API  http://{rpc_addr}");
            println!("  coordinator metrics    http://{metrics_addr}/metrics");
            println!("  simulator control      http://{control_addr}  (sim_fault, sim_heal, sim_partition, sim_invariants)");
            match &conductor_url {
                Some(url) => println!("  conductor endpoint     {url}/devnet/<node>  (conductor mode: every block is committed here first)"),
                None => println!("  conductor mode off (--conductor false): the coordinator judges liveness from probes alone"),
            }
            println!("Ctrl-C stops everything.");
            let shutdown = async {
                let _ = tokio::signal::ctrl_c().await;
            };
            op_coordinator::run(config, listeners, shutdown).await.map_err(anyhow::Error::from)
        };
        sim.shutdown();
        for report in sim.invariants() {
            println!("{report}");
        }
        let _ = std::fs::remove_dir_all(&data_dir);
        result
    })
}
