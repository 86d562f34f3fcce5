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
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(())
}

pub(crate) fn run(args: RunArgs) -> anyhow::Result<()> {
    init_logging(args.log_format, &args.log_level)?;
    let config = args.config.load()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let rpc = TcpListener::bind(config.rpc.listen)
            .await
            .with_context(|| format!("cannot listen on rpc.listen {}", config.rpc.listen))?;
        let metrics = if config.metrics.enabled {
            Some(
                TcpListener::bind(config.metrics.listen)
                    .await
                    .with_context(|| format!("cannot listen on metrics.listen {}", config.metrics.listen))?,
            )
        } else {
            None
        };
        tracing::info!(
            chains = config.chains.len(),
            sequencers = config.chains.values().map(|chain| chain.sequencers.len()).sum::<usize>(),
            data_dir = %config.data_dir.display(),
            "starting op-coordinator"
        );
        op_coordinator::run(config, Listeners { rpc, metrics }, shutdown_signal()).await?;
        Ok(())
    })
}

pub(crate) fn check(args: CheckArgs) -> anyhow::Result<()> {
    let config = args.config.load()?;
    print!("{}", config.to_toml_string());
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
