//! op-coordinator: keeps exactly one OP Stack sequencer producing blocks, and replaces it within a
//! second when it fails, without a re-org and without two sequencers at once.
//!
//! # Layout
//! - [`config`]: the TOML config, env overrides and validation that names every bad key.
//! - [`client`]: calls to one node's op-node and op-geth, each with a deadline.
//! - [`health`]: probe loops and verdicts with reasons and thresholds.
//! - [`engine`]: the pure fail-over engine and its decision table.
//! - [`state`]: durable per-chain state behind [`state::StateStore`]: a file per chain alone.
//! - [`replication`]: with `[cluster]`, the state goes through Raft ([`opc_cluster`]) and only the
//!   replica holding a quorum-confirmed leadership acts.
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
pub mod handover;
pub mod health;
pub mod jwt;
pub mod metrics;
pub mod replication;
pub mod state;
#[cfg(test)]
pub(crate) mod testing;

use actor::{ActorError, ChainActor, ChainHandle, ReplicaRole};
use config::Config;
use opc_cluster::{Cluster, ClusterError};
use replication::{LeaseSettings, RaftStateStore};
use state::{FileStateStore, StateError, StateStore};
use std::{collections::BTreeMap, future::Future, sync::Arc, time::Duration};
use tokio::{net::TcpListener, sync::watch};
use tokio_util::sync::CancellationToken;

/// Already-bound listeners, so callers (and tests) choose the ports.
#[derive(Debug)]
pub struct Listeners {
    /// The admin API.
    pub rpc: TcpListener,
    /// `/metrics`, when enabled.
    pub metrics: Option<TcpListener>,
    /// Raft traffic between replicas; required with `[cluster]`, unused without.
    pub raft: Option<TcpListener>,
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
    /// The Raft replica could not start (its data dir, its config, its listener).
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// `[cluster]` is configured but no Raft listener was given.
    #[error("[cluster] is configured but no Raft listener was bound (this replica's raft_addr)")]
    NoRaftListener,
}

/// Runs the coordinator with `config` on `listeners` until `shutdown` resolves.
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    let Some(cluster_config) = config.cluster.clone() else {
        let store: Arc<dyn StateStore> = Arc::new(FileStateStore::open(&config.data_dir)?);
        return run_with_store(config, listeners, store, shutdown).await;
    };
    let mut listeners = listeners;
    let raft_listener = listeners.raft.take().ok_or(StartError::NoRaftListener)?;
    let data_dir = replica_data_dir(&config);
    let lease = LeaseSettings {
        check_every: Duration::from_millis(cluster_config.heartbeat_interval_ms),
        lease: Duration::from_millis(cluster_config.election_timeout_min_ms),
    };
    let id = cluster_config.id;
    let cluster = Cluster::start(cluster_config, &data_dir, raft_listener).await?;
    tracing::info!(replica = id, data_dir = %data_dir.display(), "Raft replica started");
    // Dropping this future (an aborted task) must not leave a Raft member running headless: it
    // would keep its vote and its leadership while nothing acts.
    let mut shutdown_on_drop = ShutdownOnDrop(Some(cluster.clone()));
    let cancel = CancellationToken::new();
    let _stop_lease_on_drop = cancel.clone().drop_guard();
    let (acting_tx, acting_rx) = watch::channel(None);
    let lease_task =
        tokio::spawn(replication::run_leader_lease(cluster.clone(), lease, acting_tx, cancel.clone()));
    let store: Arc<dyn StateStore> = Arc::new(RaftStateStore::new(cluster.clone()));
    let role = ReplicaRole { id: Some(id), acting_rx, standalone_tx: None };
    let outcome = serve(config, listeners, store, role, Some(cluster.clone()), shutdown).await;
    cancel.cancel();
    let _ = lease_task.await;
    shutdown_on_drop.0 = None;
    if let Err(err) = cluster.shutdown().await {
        tracing::warn!(%err, "Raft replica did not shut down cleanly");
    }
    outcome
}

/// Shuts the Raft replica down when dropped before [`run`] did it itself.
struct ShutdownOnDrop(Option<Cluster>);

impl Drop for ShutdownOnDrop {
    fn drop(&mut self) {
        if let Some(cluster) = self.0.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                let _ = cluster.shutdown().await;
            });
        }
    }
}

/// Where a replica keeps its Raft store: its own directory under `data_dir`, so replicas started
/// from one file on one host do not share it.
pub fn replica_data_dir(config: &Config) -> std::path::PathBuf {
    match &config.cluster {
        Some(cluster) => config.data_dir.join(format!("replica-{}", cluster.id)),
        None => config.data_dir.clone(),
    }
}

/// [`run`] without a cluster, with a chosen state store.
pub async fn run_with_store(
    config: Config,
    listeners: Listeners,
    store: Arc<dyn StateStore>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    serve(config, listeners, store, ReplicaRole::standalone(), None, shutdown).await
}

async fn serve(
    config: Config,
    listeners: Listeners,
    store: Arc<dyn StateStore>,
    role: ReplicaRole,
    cluster: Option<Cluster>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    let cancel = CancellationToken::new();
    // Every task below is spawned, so dropping this future (an aborted task, a panicking caller)
    // would otherwise leave a headless coordinator still acting on the sequencers.
    let _stop_tasks_on_drop = cancel.clone().drop_guard();
    let mut handles = BTreeMap::new();
    let mut actors = Vec::new();
    for (name, chain) in &config.chains {
        let (actor, handle) = ChainActor::new(name, chain, &config, store.clone(), role.clone()).await?;
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
    let methods =
        api::AdminApi::new(chains.clone(), handover_timeout, cluster.clone(), role.acting_rx.clone())
            .methods();
    if let Some(cluster) = &cluster {
        ::metrics::counter!(metrics::RAFT_BLIND_HANDOVERS).absolute(0);
        let settings = handover::HandoverSettings {
            blind_after: config.failover.chain_liveness_window(),
            check_every: config.health.interval(),
            ask_timeout: config.failover.rpc_timeout(),
            jwt_secret,
        };
        tasks.push(tokio::spawn(handover::run_blind_handover(
            cluster.clone(),
            chains.clone(),
            role.acting_rx.clone(),
            settings,
            cancel.clone(),
        )));
    }
    let admin = api::AdminServer {
        methods,
        jwt_secret,
        chains: chains.clone(),
        forward: cluster.map(|cluster| api::Forwarding::new(cluster, role.acting_rx.clone())),
    };
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
