//! What the chaos runner and the fail-over benchmark share: the chain every run starts from, a
//! coordinator in this process on a loopback port, binding a coordinator's fixed address again,
//! the faults a run has in force, and the unix clock.

use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use op_coordinator::{Listeners, StartError, config::Config};
use op_sim::{SimConfig, api::FaultKind};
use std::{
    collections::{BTreeMap, BTreeSet},
    net::SocketAddr,
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle, time::Instant};

/// Deadline of the runner's and the benchmark's calls to a coordinator's admin API.
pub(crate) const ADMIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Milliseconds since the unix epoch: the clock of the coordinator's event timestamps.
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
}

/// One chain of `nodes` nodes, every node stopped (as operators should run them, with
/// `--sequencer.stopped`), so the coordinator elects the first leader.
pub(crate) fn stopped_chain(seed: u64, nodes: usize, block_time_ms: u64) -> SimConfig {
    let mut sim_config = SimConfig::uniform(1, nodes, block_time_ms);
    sim_config.seed = seed;
    for node in &mut sim_config.chains[0].nodes {
        node.options.start_active = false;
    }
    sim_config
}

/// A coordinator running on the caller's runtime, as [`spawn_coordinator`] started it.
#[derive(Debug)]
pub(crate) struct Spawned {
    /// `op_coordinator::run`; it ends when `shutdown_tx` fires or is dropped.
    pub(crate) task: JoinHandle<Result<(), StartError>>,
    /// Asks it to shut down gracefully.
    pub(crate) shutdown_tx: oneshot::Sender<()>,
    /// Its admin API, with [`ADMIN_TIMEOUT`] per request.
    pub(crate) client: HttpClient,
}

/// Starts a coordinator with `config` on a fresh loopback port (no metrics, no Raft); `conductor`
/// is the conductor endpoint's listener, bound by the caller (its nodes must know its URL first),
/// for a chain in conductor mode.
pub(crate) async fn spawn_coordinator(
    config: Config,
    conductor: Option<TcpListener>,
) -> Result<Spawned, String> {
    let rpc = TcpListener::bind("127.0.0.1:0").await.map_err(|err| format!("bind admin API: {err}"))?;
    let addr = rpc.local_addr().map_err(|err| format!("admin API address: {err}"))?;
    let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
    let task = tokio::spawn(op_coordinator::run(
        config,
        Listeners { rpc, metrics: None, raft: None, conductor },
        async move {
            let _ = shutdown_rx.await;
        },
    ));
    let client = HttpClientBuilder::default()
        .request_timeout(ADMIN_TIMEOUT)
        .build(format!("http://{addr}"))
        .map_err(|err| format!("admin API client: {err}"))?;
    Ok(Spawned { task, shutdown_tx, client })
}

/// How long binding a coordinator's address again keeps trying: the stopped incarnation's sockets
/// close a moment after it is killed.
const REBIND_RETRY: Duration = Duration::from_secs(5);

/// Binds `addr` again (a coordinator restarted on the addresses it had, which its nodes and peers
/// know), retrying for [`REBIND_RETRY`].
pub(crate) async fn bind_again(addr: SocketAddr) -> Result<std::net::TcpListener, String> {
    let deadline = Instant::now() + REBIND_RETRY;
    loop {
        match std::net::TcpListener::bind(addr) {
            Ok(listener) => {
                listener.set_nonblocking(true).map_err(|err| format!("{addr}: {err}"))?;
                return Ok(listener);
            }
            Err(err) if Instant::now() >= deadline => return Err(format!("cannot bind {addr} again: {err}")),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// The lasting node faults and the p2p partition a run has in force: what "could the chain
/// produce" reads, kept by whatever applies and heals them.
#[derive(Debug, Default)]
pub(crate) struct FaultsInForce {
    /// Lasting node faults in force, by node.
    pub(crate) by_node: BTreeMap<String, BTreeSet<FaultKind>>,
    /// A p2p partition is in force.
    pub(crate) partitioned: bool,
}

impl FaultsInForce {
    /// Notes a lasting fault of `node`.
    pub(crate) fn add(&mut self, node: &str, kind: FaultKind) {
        self.by_node.entry(node.to_owned()).or_default().insert(kind);
    }

    /// Notes the heal of `kind` on `node`.
    pub(crate) fn remove(&mut self, node: &str, kind: FaultKind) {
        if let Some(kinds) = self.by_node.get_mut(node) {
            kinds.remove(&kind);
        }
    }

    /// True when `node` has a lasting fault in force.
    pub(crate) fn on(&self, node: &str) -> bool {
        self.by_node.get(node).is_some_and(|kinds| !kinds.is_empty())
    }
}
