//! `op-coordinator run` and `check-config`.

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use op_coordinator::{Listeners, config::Config};
use std::{net::SocketAddr, path::PathBuf};
use tokio::net::TcpListener;

/// Env vars the binary reads itself (`ctl`'s included); they are not config keys.
const OWN_ENV_VARS: [&str; 5] = [
    "OP_COORDINATOR_CONFIG",
    "OP_COORDINATOR_LOG_FORMAT",
    "OP_COORDINATOR_LOG_LEVEL",
    "OP_COORDINATOR_RPC",
    "OP_COORDINATOR_JWT_SECRET_FILE",
];

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Flags shared by `run` and `check-config`.
#[derive(Debug, Args)]
pub(crate) struct ConfigArgs {
    /// The TOML config file. Every key can also be set with OP_COORDINATOR_<SECTION>__<KEY>
    /// (e.g. OP_COORDINATOR_HEALTH__INTERVAL_MS=100); flags beat env, env beats the file.
    #[arg(long, short, env = "OP_COORDINATOR_CONFIG", value_name = "FILE")]
    config: PathBuf,
    /// Admin JSON-RPC address (config key rpc.listen).
    #[arg(long, value_name = "ADDR")]
    rpc_listen: Option<SocketAddr>,
    /// Prometheus /metrics address (config key metrics.listen).
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,
    /// Directory of the durable state (config key data_dir).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// HS256 secret (32-byte hex) required on mutating admin calls (config key rpc.jwt_secret_file).
    #[arg(long, value_name = "FILE")]
    jwt_secret_file: Option<PathBuf>,
    /// This replica's id in [cluster] (config key cluster.id, env OP_COORDINATOR_CLUSTER__ID): the
    /// one setting that differs between replicas started from the same file.
    #[arg(long, value_name = "ID")]
    replica_id: Option<u64>,
    /// Raft address to listen on, for a replica not listed in cluster.replicas (one joining with
    /// bootstrap = false). A listed replica listens on its raft_addr.
    #[arg(long, value_name = "ADDR")]
    raft_listen: Option<SocketAddr>,
    /// Join an existing cluster instead of forming one (config key cluster.bootstrap = false,
    /// env OP_COORDINATOR_CLUSTER__BOOTSTRAP=false): for a replica added with
    /// coordinator_addReplica, or one rebuilt after losing its data dir.
    #[arg(long)]
    join: bool,
}

impl ConfigArgs {
    fn load(&self) -> anyhow::Result<Config> {
        let mut overrides = Vec::new();
        if let Some(addr) = self.rpc_listen {
            overrides.push(("rpc.listen".to_owned(), addr.to_string()));
        }
        if let Some(addr) = self.metrics_listen {
            overrides.push(("metrics.listen".to_owned(), addr.to_string()));
        }
        if let Some(dir) = &self.data_dir {
            overrides.push(("data_dir".to_owned(), dir.display().to_string()));
        }
        if let Some(file) = &self.jwt_secret_file {
            overrides.push(("rpc.jwt_secret_file".to_owned(), file.display().to_string()));
        }
        if let Some(id) = self.replica_id {
            overrides.push(("cluster.id".to_owned(), id.to_string()));
        }
        if self.join {
            overrides.push(("cluster.bootstrap".to_owned(), "false".to_owned()));
        }
        let env = std::env::vars().filter(|(name, _)| !OWN_ENV_VARS.contains(&name.as_str()));
        Config::load(&self.config, env, &overrides).map_err(|errors| anyhow::anyhow!("{errors}"))
    }
}

/// `op-coordinator run`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Log format.
    #[arg(long, value_enum, default_value = "text", env = "OP_COORDINATOR_LOG_FORMAT")]
    log_format: LogFormat,
    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `op_coordinator=debug`.
    #[arg(long, default_value = "info", env = "OP_COORDINATOR_LOG_LEVEL")]
    log_level: String,
}

/// `op-coordinator check-config`.
#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    #[command(flatten)]
    config: ConfigArgs,
}

fn init_logging(format: LogFormat, filter: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .with_context(|| format!("bad --log-level {filter:?}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal: a log file or journald gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(())
}

/// Files a coordinator may hold open per node it watches: a probe's two calls, an inspection, an
/// action, and the node's op-node committing to the conductor endpoint.
const FILES_PER_NODE: usize = 5;
/// Files for everything else: listeners, the data dir, the admin API's and the peers' connections.
const FILES_BESIDE_NODES: usize = 512;

/// Raises the soft limit of open files to the hard one, as Go programs (op-node, op-conductor) do
/// at start: every call in flight to a node is a connection, and a coordinator of hundreds of
/// chains on hosts of their own holds thousands, where the usual soft limit is 1,024. A call that
/// cannot open a socket looks like an unreachable node. Warns when even the hard limit is short.
fn raise_open_file_limit(nodes: usize) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else { return };
    let limit = if soft < hard {
        match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => hard,
            Err(err) => {
                tracing::warn!(soft, hard, %err, "cannot raise the open-file limit to its hard limit");
                soft
            }
        }
    } else {
        soft
    };
    let needed = (nodes * FILES_PER_NODE + FILES_BESIDE_NODES) as u64;
    if limit < needed {
        tracing::warn!(
            limit,
            needed,
            nodes,
            "the open-file limit is below what this many nodes may need: calls that cannot open a \
             connection look like unreachable nodes. Raise it (LimitNOFILE= in the systemd unit, \
             ulimit -n, or the container's nofile ulimit)"
        );
    } else {
        tracing::debug!(limit, needed, "open-file limit");
    }
}

pub(crate) fn run(args: RunArgs) -> anyhow::Result<()> {
    init_logging(args.log_format, &args.log_level)?;
    let config = args.config.load()?;
    raise_open_file_limit(config.sequencer_count());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let raft_listen_flag = args.config.raft_listen;
    let explicit_rpc =
        args.config.rpc_listen.is_some() || std::env::var_os("OP_COORDINATOR_RPC__LISTEN").is_some();
    // Before binding: a second instance from the same config would otherwise only hear that its
    // ports are taken, not that another coordinator owns the data dir.
    op_coordinator::data_dir::ensure_unlocked(&op_coordinator::replica_data_dir(&config))?;
    runtime.block_on(async move {
        // A listed replica serves its API and Raft on the addresses its entry gives, so one file
        // describes the whole cluster; --rpc-listen still wins (e.g. 0.0.0.0 behind a NAT).
        let own = config
            .cluster
            .as_ref()
            .and_then(|cluster| cluster.replicas.iter().find(|replica| replica.id == cluster.id).cloned());
        let rpc_listen = match &own {
            Some(replica) if !explicit_rpc => replica.api_addr.clone(),
            _ => config.rpc.listen.to_string(),
        };
        let rpc = TcpListener::bind(&rpc_listen)
            .await
            .with_context(|| format!("cannot listen for the admin API on {rpc_listen}"))?;
        let raft = match (&config.cluster, &own, raft_listen_flag) {
            (None, _, _) => None,
            (Some(_), _, Some(addr)) => Some(addr.to_string()),
            (Some(_), Some(replica), None) => Some(replica.raft_addr.clone()),
            (Some(cluster), None, None) => anyhow::bail!(
                "replica {} is not in cluster.replicas: pass --raft-listen ADDR (and --rpc-listen) for a \
                 replica that joins an existing cluster",
                cluster.id
            ),
        };
        let raft = match raft {
            Some(addr) => Some(
                TcpListener::bind(&addr)
                    .await
                    .with_context(|| format!("cannot listen for Raft on {addr}"))?,
            ),
            None => None,
        };
        let metrics = if config.metrics.enabled {
            Some(
                TcpListener::bind(config.metrics.listen)
                    .await
                    .with_context(|| format!("cannot listen on metrics.listen {}", config.metrics.listen))?,
            )
        } else {
            None
        };
        let conductor = if config.chains.values().any(|chain| chain.conductor) {
            let addr = config.conductor.listen;
            Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on conductor.listen {addr}"))?,
            )
        } else {
            None
        };
        tracing::info!(
            chains = config.chains.len(),
            sequencers = config.sequencer_count(),
            data_dir = %op_coordinator::replica_data_dir(&config).display(),
            replica = %opc_wire::text::or_none(config.cluster.as_ref().map(|cluster| cluster.id)),
            api = %rpc_listen,
            "starting op-coordinator"
        );
        op_coordinator::run(config, Listeners { rpc, metrics, raft, conductor }, shutdown_signal()).await?;
        Ok(())
    })
}

pub(crate) fn check(args: CheckArgs) -> anyhow::Result<()> {
    let config = args.config.load()?;
    // The directory `run` would lock and write (a replica's own one in a cluster): a config that
    // passes here must not fail at start-up on its data_dir.
    let data_dir = op_coordinator::data_dir::check(&op_coordinator::replica_data_dir(&config))?;
    print!("{}", config.to_toml_string());
    eprintln!("{data_dir}");
    eprintln!("config OK: {} chain(s)", config.chains.len());
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
