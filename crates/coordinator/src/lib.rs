//! op-coordinator: keeps exactly one OP Stack sequencer producing blocks, and replaces it within a
//! second when it fails, without a re-org and without two sequencers at once.
//!
//! # Layout
//! - [`config`]: the TOML config, env overrides and validation that names every bad key, and
//!   ([`config::settings`]) the settings every subsystem below is built with.
//! - [`client`]: calls to one node's op-node and op-geth, each with a deadline.
//! - [`health`]: probe loops and verdicts with reasons and thresholds.
//! - [`self_lag`]: how late the coordinator's own timers fire; while it is short of CPU, no
//!   leader is deposed on a timeout or a stall (the engine's `timing` module decides).
//! - [`engine`]: the pure fail-over engine and its decision tables; one module per phase or
//!   concern (`discover`, `steady`, `stop`, `catch_up`, `start`, `inspect`, `node_stop`, `fence`,
//!   `timing`, `command`, `record`), each with its table tests beside it. It reads its clock from the
//!   [`engine::View`], writes its own persisted deadlines, and returns typed
//!   [`engine::Outcome`]s for what the actor must account (metrics, an operator's answer).
//! - [`state`]: durable per-chain state behind [`state::StateStore`]: a file per chain alone.
//! - [`data_dir`]: the data directory's lock (one coordinator per directory) and its check.
//! - [`timeline`]: each chain's event timeline, appended to a bounded file in the data directory.
//! - [`reconcile`]: stored node names against the config on start: a renamed node is found by
//!   its op-node URL; a removed one stops the chain from being acted on until an operator says.
//! - [`conductor`]: conductor mode: the endpoint op-node commits every block to, and the fence that
//!   admits a commit only from the chain's leader, on the committed head, made durable first.
//! - [`replication`]: with `[cluster]`, the state goes through Raft ([`opc_cluster`]) and only the
//!   replica holding a quorum-confirmed leadership acts.
//! - [`actor`]: one actor per chain that wires probes, engine, state and RPCs together; it
//!   executes the engine's actions in order and never inspects one to decide something.
//! - [`api`]: the admin JSON-RPC API, health/readiness endpoints and `/metrics`.
//! - [`metrics`]: every exported metric name, and the one place that publishes them.
//! - [`handover`]: a blind acting replica hands its Raft leadership to one that sees the nodes,
//!   and an acting replica that is shut down hands it over before it exits (rolling restarts).
//! - [`jwt`]: HS256 tokens for mutating admin calls.
//!
//! Where to add a health check, a config key, an admin method or a timeline event, with the
//! places each touches: the README's "Where to add things".
//!
//! The binary only parses flags and calls [`run`] with already-bound listeners and a shutdown
//! future, so tests bind port 0 and run the real thing.
//!
//! Shutdown is bounded: once the shutdown future resolves every task is cancelled and gets
//! [`SHUTDOWN_DEADLINE`] to finish; the ones still running are aborted and named in the log. An
//! acting replica first hands its leadership over ([`handover::hand_over_on_shutdown`], with its
//! own shorter deadline), within that same budget.

pub mod actor;
pub mod api;
pub mod block_time;
pub mod client;
pub mod conductor;
pub mod config;
pub use config::reference as config_reference;

pub mod data_dir;

pub mod engine;
pub mod handover;
pub mod health;
pub mod jwt;
pub mod metrics;
pub mod reconcile;
pub mod replication;
pub mod self_lag;
pub mod state;
#[cfg(test)]
pub(crate) mod testing;
pub mod timeline;

use actor::{ActorError, ChainActor, ChainHandle, ReplicaRole};
use config::Config;
use data_dir::{DataDirError, DataDirLock};
use handover::ShutdownHandover;
use opc_cluster::{Cluster, ClusterError};
use replication::{Acting, LeaseSettings, RaftStateStore};
use self_lag::LagWatch;
use state::{FileStateStore, StateError, StateStore};
use std::{collections::BTreeMap, future::Future, sync::Arc, time::Duration};
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};
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
    /// The conductor endpoint (`conductor.listen`); required when a chain runs in conductor mode,
    /// unused without.
    pub conductor: Option<TcpListener>,
}

/// Why the coordinator could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The durable state could not be opened.
    #[error(transparent)]
    State(#[from] StateError),
    /// The data directory is unusable, or another coordinator holds it.
    #[error(transparent)]
    DataDir(#[from] DataDirError),
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
    /// A chain runs in conductor mode but no conductor listener was given.
    #[error("chain {0} has conductor = true but no conductor listener was bound (conductor.listen)")]
    NoConductorListener(String),
    /// The conductor endpoint's thread could not be started (out of threads or memory).
    #[error("cannot start the conductor endpoint's thread: {0}")]
    ConductorThread(std::io::Error),
}

/// Runs the coordinator with `config` on `listeners` until `shutdown` resolves.
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    // Held until this function returns (or its future is dropped): one coordinator per directory.
    let data_dir = replica_data_dir(&config);
    let lock = Arc::new(DataDirLock::acquire(&data_dir)?);
    let Some(cluster_config) = config.cluster.clone() else {
        let store: Arc<dyn StateStore> = Arc::new(FileStateStore::open(&data_dir)?.with_lock(&lock));
        return run_with_store(config, listeners, store, shutdown).await;
    };
    let mut listeners = listeners;
    let raft_listener = listeners.raft.take().ok_or(StartError::NoRaftListener)?;
    let lease = LeaseSettings::from(&cluster_config);
    let id = cluster_config.id;
    let mut cluster_config = cluster_config;
    cluster_config.payload_retention = config.conductor.retention();
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
    let conducted = config.chains.iter().filter(|(_, chain)| chain.conductor).map(|(name, _)| name.clone());
    let store: Arc<dyn StateStore> = Arc::new(RaftStateStore::new(cluster.clone(), conducted.collect()));
    let role = ReplicaRole { id: Some(id), acting_rx, standalone_tx: None, cluster: Some(cluster.clone()) };
    let replica = Replica { cluster: cluster.clone(), stop_acting: cancel.clone() };
    let outcome = serve(config, listeners, store, role, Some(replica), shutdown).await;
    cancel.cancel();
    stop_tasks(vec![("leader lease".to_owned(), lease_task)], SHUTDOWN_DEADLINE).await;
    shutdown_on_drop.0 = None;
    match tokio::time::timeout(SHUTDOWN_DEADLINE, cluster.shutdown()).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::warn!(%err, "Raft replica did not shut down cleanly"),
        Err(_) => tracing::warn!(
            deadline_ms = SHUTDOWN_DEADLINE.as_millis(),
            "Raft replica did not shut down in time; leaving it to the process exit"
        ),
    }
    outcome
}

/// This process's Raft replica, as [`serve`] needs it.
struct Replica {
    cluster: Cluster,
    /// Ends the leader lease task: the first step of a hand-over on shutdown.
    stop_acting: CancellationToken,
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
    replica: Option<Replica>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    let cluster = replica.as_ref().map(|replica| replica.cluster.clone());
    let cancel = CancellationToken::new();
    // Every task below is spawned, so dropping this future (an aborted task, a panicking caller)
    // would otherwise leave a headless coordinator still acting on the sequencers.
    let _stop_tasks_on_drop = cancel.clone().drop_guard();
    let mut handles = BTreeMap::new();
    let mut actors = Vec::new();
    let lag = LagWatch::new();
    let connections = client::Connections::default();
    for (name, chain) in &config.chains {
        let (actor, handle) =
            ChainActor::new(name, chain, &config, store.clone(), role.clone(), lag.clone(), &connections)
                .await?;
        handles.insert(name.clone(), handle);
        actors.push((name.clone(), actor));
    }
    let jwt_secret = config.rpc.read_jwt_secret().map_err(|err| StartError::Jwt(err.to_string()))?;
    let chains: Arc<BTreeMap<String, ChainHandle>> = Arc::new(handles);
    // The recorder must exist before the actors publish their first values, or those are lost.
    let metrics_handle = metrics::install();
    // Named, so a shutdown that overruns its deadline says which part hung.
    let mut tasks = vec![("timer lag monitor".to_owned(), tokio::spawn(lag.run_monitor(cancel.clone())))];
    for (name, actor) in actors {
        tasks.push((format!("chain {name} actor"), tokio::spawn(actor.run(cancel.clone()))));
    }
    // The catch-up of the slowest chain: explicit, or the default for its configured block time
    // (2 s, OP Mainnet's, where the chain tells it only at run time).
    let catch_up = config.failover.catch_up_timeout_ms.map(Duration::from_millis).unwrap_or_else(|| {
        config
            .chains
            .values()
            .map(|chain| {
                let block_time = chain.block_time().unwrap_or(Duration::from_secs(2));
                config::windows::Windows::defaults_for(block_time, config.health.interval()).catch_up_timeout
            })
            .max()
            .unwrap_or_default()
    });
    let handover_timeout = config.failover.operator_handover_timeout(catch_up);
    let methods =
        api::AdminApi::new(chains.clone(), handover_timeout, cluster.clone(), role.acting_rx.clone())
            .methods();
    let handover_settings = handover::HandoverSettings::new(&config, jwt_secret);
    if let Some(cluster) = &cluster {
        ::metrics::counter!(metrics::RAFT_BLIND_HANDOVERS).absolute(0);
        let task = tokio::spawn(handover::run_blind_handover(
            cluster.clone(),
            chains.clone(),
            role.acting_rx.clone(),
            handover_settings.clone(),
            cancel.clone(),
        ));
        tasks.push(("blind hand-over".to_owned(), task));
    }
    let admin = api::AdminServer {
        methods,
        jwt_secret,
        chains: chains.clone(),
        forward: cluster.clone().map(|cluster| api::Forwarding::new(cluster, role.acting_rx.clone())),
        settings: api::ApiSettings::from(&config),
    };
    if let Ok(addr) = listeners.rpc.local_addr() {
        tracing::info!(%addr, jwt = jwt_secret.is_some(), "admin API listening");
    }
    tasks
        .push(("admin API".to_owned(), tokio::spawn(api::serve_admin(admin, listeners.rpc, cancel.clone()))));
    let mut routes = conductor::serve::ConductorRoutes::new(conductor::serve::EndpointSettings::new(
        &config,
        handover_timeout,
    ));
    for (name, handle) in chains.iter() {
        routes.add_chain(handle, &conductor::NodeEndpoint::of_chain(&config.chains[name]))?;
    }
    if !routes.is_empty() {
        let Some(listener) = listeners.conductor else {
            let chain =
                chains.values().find(|handle| handle.fence.is_some()).map(|handle| handle.name.clone());
            return Err(StartError::NoConductorListener(chain.unwrap_or_default()));
        };
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%addr, paths = routes.paths().count(), "conductor endpoint listening (http://{addr}/<chain>/<node>, http://{addr}/<chain>)");
        }
        let endpoint = conductor::serve::spawn_conductor(routes, listener, cancel.clone())
            .map_err(StartError::ConductorThread)?;
        tasks.push(("conductor endpoint".to_owned(), endpoint));
    }
    if let Some(listener) = listeners.metrics {
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%addr, "metrics listening on /metrics");
        }
        tasks.push((
            "metrics".to_owned(),
            tokio::spawn(api::serve_metrics(metrics_handle, listener, cancel.clone())),
        ));
    }
    shutdown.await;
    tracing::info!("shutting down");
    // The hand-over spends part of the shutdown's budget, not time on top of it.
    let stop_by = tokio::time::Instant::now() + SHUTDOWN_DEADLINE;
    if let Some(replica) = &replica {
        hand_over(replica, &handover_settings, role.acting_rx.clone()).await;
    }
    cancel.cancel();
    stop_tasks_by(tasks, stop_by, SHUTDOWN_DEADLINE).await;
    Ok(())
}

/// Before the tasks stop (the admin API and the Raft server still answer the peers), an acting
/// replica hands its leadership over; see [`handover::hand_over_on_shutdown`].
async fn hand_over(
    replica: &Replica,
    settings: &handover::HandoverSettings,
    acting_rx: watch::Receiver<Acting>,
) {
    let id = replica.cluster.id();
    match handover::hand_over_on_shutdown(&replica.cluster, settings, &replica.stop_acting, acting_rx).await {
        ShutdownHandover::Disabled | ShutdownHandover::NotActing => {}
        ShutdownHandover::HandedOver { to, after } => tracing::info!(
            replica = id,
            to,
            after_ms = after.as_millis(),
            "replica {to} acts now: leaving the cluster without an election"
        ),
        ShutdownHandover::GaveUp { reason } => tracing::warn!(
            replica = id,
            %reason,
            "no peer took the leadership in time: leaving without a hand-over, the others elect a leader"
        ),
    }
}

/// How long the tasks get to stop once shutdown is asked for, before they are aborted.
///
/// Cancellation is checked first in every loop, so a task normally stops at once; what can hold
/// it is a call already under way: an admin call to a node (`failover.rpc_timeout_ms`, 1 s by
/// default) or a state write (with `[cluster]`, a Raft commit bounded by `cluster.write_timeout_ms`,
/// 5 s by default). 10 s covers both with room; a task still running after that is hung, and a
/// process that never exits is worse for the operator (and for the supervisor restarting it) than
/// one that aborts the hung task and says which one it was.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);

/// Waits for every task to finish, all within one `deadline`; aborts the ones still running
/// then, logs their names, and returns them.
async fn stop_tasks<T>(tasks: Vec<(String, JoinHandle<T>)>, deadline: Duration) -> Vec<String> {
    stop_tasks_by(tasks, tokio::time::Instant::now() + deadline, deadline).await
}

/// [`stop_tasks`] with the deadline as an instant (`deadline`, the budget it ends, is for the log).
async fn stop_tasks_by<T>(
    tasks: Vec<(String, JoinHandle<T>)>,
    deadline_at: tokio::time::Instant,
    deadline: Duration,
) -> Vec<String> {
    let mut late = Vec::new();
    for (name, mut task) in tasks {
        match tokio::time::timeout_at(deadline_at, &mut task).await {
            Ok(Ok(_)) => {}
            Ok(Err(err)) if err.is_panic() => tracing::error!(task = %name, "task panicked before shutdown"),
            Ok(Err(_)) => {}
            Err(_) => {
                task.abort();
                late.push(name);
            }
        }
    }
    if !late.is_empty() {
        tracing::warn!(
            tasks = %late.join(", "),
            deadline_ms = deadline.as_millis(),
            "tasks did not stop within the shutdown deadline; aborted them"
        );
    }
    late
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_task_that_ignores_cancellation_is_aborted_at_the_deadline_and_named() {
        let cancel = CancellationToken::new();
        let obedient = {
            let cancel = cancel.clone();
            tokio::spawn(async move { cancel.cancelled().await })
        };
        let stubborn = tokio::spawn(std::future::pending::<()>());
        let stubborn_abort = stubborn.abort_handle();
        cancel.cancel();
        let started = tokio::time::Instant::now();
        let late = stop_tasks(
            vec![("chain devnet actor".to_owned(), obedient), ("admin API".to_owned(), stubborn)],
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(late, ["admin API"]);
        assert_eq!(started.elapsed(), Duration::from_secs(10), "waited exactly the deadline");
        tokio::task::yield_now().await;
        assert!(stubborn_abort.is_finished(), "the stubborn task was aborted");
    }

    #[tokio::test(start_paused = true)]
    async fn tasks_that_stop_in_time_are_not_waited_for_longer() {
        let quick = tokio::spawn(tokio::time::sleep(Duration::from_millis(5)));
        let started = tokio::time::Instant::now();
        let late = stop_tasks(vec![("metrics".to_owned(), quick)], SHUTDOWN_DEADLINE).await;
        assert!(late.is_empty());
        assert_eq!(started.elapsed(), Duration::from_millis(5));
    }
}
