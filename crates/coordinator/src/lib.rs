//! op-coordinator: keeps exactly one OP Stack sequencer producing blocks, and replaces it within a
//! second when it fails, without a re-org and without two sequencers at once.
//!
//! # Layout
//! - [`config`]: the TOML config, env overrides and validation that names every bad key.
//! - [`client`]: calls to one node's op-node and op-geth, each with a deadline.
//! - [`health`]: probe loops and verdicts with reasons and thresholds.
//! - [`engine`]: the pure fail-over engine and its decision table.
//! - [`state`]: durable per-chain state behind [`state::StateStore`] (a file today).
//! - [`actor`]: one actor per chain that wires probes, engine, state and RPCs together.
//! - [`api`]: the admin JSON-RPC API, health/readiness endpoints and `/metrics`.
//! - [`metrics`]: every exported metric name.
//! - [`jwt`]: HS256 tokens for mutating admin calls.
//!
//! The binary only parses flags and calls [`run`] with already-bound listeners and a shutdown
//! future, so tests bind port 0 and run the real thing.

pub mod actor;
pub mod api;
pub mod client;
pub mod config;
pub mod config_reference;
pub mod engine;
pub mod health;
pub mod jwt;
pub mod metrics;
pub mod state;

use actor::{ActorError, ChainActor, ChainHandle};
use config::Config;
use state::{FileStateStore, StateError, StateStore};
use std::{collections::BTreeMap, future::Future, sync::Arc, time::Duration};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Already-bound listeners, so callers (and tests) choose the ports.
#[derive(Debug)]
pub struct Listeners {
    /// The admin API.
    pub rpc: TcpListener,
    /// `/metrics`, when enabled.
    pub metrics: Option<TcpListener>,
}

/// Why the coordinator could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The durable state could not be opened.
    #[error(transparent)]
    State(#[from] StateError),
    /// A chain could not be prepared.
    #[error(transparent)]
    Chain(#[from] ActorError),
    /// The JWT secret could not be read.
    #[error("{0}")]
    Jwt(String),
}

/// Runs the coordinator with `config` on `listeners` until `shutdown` resolves.
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    let store: Arc<dyn StateStore> = Arc::new(FileStateStore::open(&config.data_dir)?);
    run_with_store(config, listeners, store, shutdown).await
}

/// [`run`] with a chosen state store.
pub async fn run_with_store(
    config: Config,
    listeners: Listeners,
    store: Arc<dyn StateStore>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    let cancel = CancellationToken::new();
    // Every task below is spawned, so dropping this future (an aborted task, a panicking caller)
    // would otherwise leave a headless coordinator still acting on the sequencers.
    let _stop_tasks_on_drop = cancel.clone().drop_guard();
    let mut handles = BTreeMap::new();
    let mut actors = Vec::new();
    for (name, chain) in &config.chains {
        let (actor, handle) = ChainActor::new(name, chain, &config, store.clone()).await?;
        handles.insert(name.clone(), handle);
        actors.push(actor);
    }
    let jwt_secret = config.rpc.read_jwt_secret().map_err(|err| StartError::Jwt(err.to_string()))?;
    let chains: Arc<BTreeMap<String, ChainHandle>> = Arc::new(handles);
    // The recorder must exist before the actors publish their first values, or those are lost.
    let metrics_handle = metrics::install();
    let mut tasks = Vec::new();
    for actor in actors {
        tasks.push(tokio::spawn(actor.run(cancel.clone())));
    }
    let handover_timeout =
        config.failover.catch_up_timeout() + config.failover.rpc_timeout() * 4 + Duration::from_secs(5);
    let methods = api::AdminApi::new(chains.clone(), handover_timeout).methods();
    let admin = api::AdminServer { methods, jwt_secret, chains: chains.clone() };
    if let Ok(addr) = listeners.rpc.local_addr() {
        tracing::info!(%addr, jwt = jwt_secret.is_some(), "admin API listening");
    }
    tasks.push(tokio::spawn(api::serve_admin(admin, listeners.rpc, cancel.clone())));
    if let Some(listener) = listeners.metrics {
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%addr, "metrics listening on /metrics");
        }
        tasks.push(tokio::spawn(api::serve_metrics(metrics_handle, listener, cancel.clone())));
    }
    shutdown.await;
    tracing::info!("shutting down");
    cancel.cancel();
    for task in tasks {
        let _ = task.await;
    }
    Ok(())
}
