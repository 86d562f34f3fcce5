//! A simulated chain on loopback and a coordinator in this process on port-0 listeners: the
//! fixture of the library's integration tests, which drive the real thing without processes.

use crate::{BLOCK_TIME_MS, FAST_SETTINGS, WAIT, wait_until};
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use op_coordinator::{Listeners, config::Config};
use op_sim::api::{ChainInvariants, LedgerEntry};
use op_sim::{SimConfig, Simulator};
use opc_wire::{
    EventKind,
    coordinator::{ChainStatus, CoordinatorApiClient, CoordinatorEvent, NodeStatus},
};
use std::{fmt::Display, net::SocketAddr, sync::Arc, time::Duration};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

/// Request timeout of the in-process coordinator's admin client: a hand-over answers only once
/// the whole fail-over is done.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

/// A running coordinator (in this process).
#[derive(Debug)]
pub struct RunningCoordinator {
    /// Its admin API, for clients.
    pub rpc_addr: SocketAddr,
    /// Its `/metrics`, for scrapes.
    pub metrics_addr: SocketAddr,
    /// Fires the shutdown future given to [`op_coordinator::run`]: a graceful stop.
    shutdown: Option<oneshot::Sender<()>>,
    /// The coordinator itself; aborted for an abrupt stop.
    task: JoinHandle<Result<(), op_coordinator::StartError>>,
}

/// A simulated chain and a coordinator watching it.
#[derive(Debug)]
pub struct Harness {
    /// The chain, and its ground truth (ledger, invariants) to check the coordinator against.
    pub sim: Arc<Simulator>,
    /// The coordinator's config, kept for restarts.
    pub config_text: String,
    /// Dotted-key overrides applied on top of `config_text`, as command-line flags would be.
    pub overrides: Vec<(String, String)>,
    /// The coordinator's durable state, kept across restarts, removed at the end.
    pub data_dir: tempfile::TempDir,
    /// The coordinator, while it runs.
    pub coordinator: Option<RunningCoordinator>,
    /// A client of its admin API (replaced on restart: new port).
    pub admin: HttpClient,
}

impl Harness {
    /// A 3-node chain (seq-0 active) and a coordinator with [`FAST_SETTINGS`] plus `extra` TOML.
    pub async fn start(extra: &str) -> Self {
        Self::start_with(SimConfig::uniform(1, 3, BLOCK_TIME_MS), extra).await
    }

    /// A chain from `sim_config` and a coordinator with [`FAST_SETTINGS`] plus `extra` TOML.
    pub async fn start_with(sim_config: SimConfig, extra: &str) -> Self {
        Self::start_tuned(sim_config, extra, &[]).await
    }

    /// Like [`Harness::start_with`], with dotted-key overrides of [`FAST_SETTINGS`] (for example
    /// `("failover.catch_up_timeout_ms", "2000")`), kept for restarts.
    pub async fn start_tuned(sim_config: SimConfig, extra: &str, overrides: &[(&str, &str)]) -> Self {
        let overrides: Vec<(String, String)> =
            overrides.iter().map(|(key, value)| ((*key).to_owned(), (*value).to_owned())).collect();
        let sim = Arc::new(Simulator::start(sim_config).await.expect("simulator starts"));
        let data_dir = tempfile::tempdir().expect("temp dir");
        let config_text = format!(
            "data_dir = {:?}\n{FAST_SETTINGS}\n{extra}\n{}",
            data_dir.path().display().to_string(),
            sim.coordinator_config()
        );
        let coordinator = start_coordinator_with(&config_text, &overrides).await;
        let admin = admin_client(coordinator.rpc_addr);
        Self { sim, config_text, overrides, data_dir, coordinator: Some(coordinator), admin }
    }

    /// A chain from `sim_config` in conductor mode: its op-nodes commit every block to the
    /// coordinator's conductor endpoint (bound here first, on a free port, so the nodes know its
    /// URL), start stopped, and the coordinator elects a leader. [`FAST_SETTINGS`] plus `extra`.
    pub async fn start_conducted(sim_config: SimConfig, extra: &str) -> Self {
        Self::start_conducted_tuned(sim_config, extra, &[]).await
    }

    /// [`Harness::start_conducted`] with dotted-key overrides (for example a node's
    /// `conductor_allow`), kept for restarts.
    pub async fn start_conducted_tuned(
        sim_config: SimConfig,
        extra: &str,
        overrides_given: &[(&str, &str)],
    ) -> Self {
        let conductor = TcpListener::bind("127.0.0.1:0").await.expect("bind the conductor endpoint");
        let addr = conductor.local_addr().expect("addr");
        let sim =
            Arc::new(Simulator::start(sim_config.with_conductor(addr)).await.expect("simulator starts"));
        let data_dir = tempfile::tempdir().expect("temp dir");
        let config_text = format!(
            "data_dir = {:?}\n{FAST_SETTINGS}\n{extra}\n{}",
            data_dir.path().display().to_string(),
            sim.coordinator_config()
        );
        let mut overrides = vec![("conductor.listen".to_owned(), addr.to_string())];
        overrides.extend(overrides_given.iter().map(|(key, value)| ((*key).to_owned(), (*value).to_owned())));
        let coordinator = start_coordinator_on(&config_text, &overrides, Some(conductor)).await;
        let admin = admin_client(coordinator.rpc_addr);
        Self { sim, config_text, overrides, data_dir, coordinator: Some(coordinator), admin }
    }

    /// A chain from `sim_config` and a coordinator whose whole config `config_of(data_dir,
    /// chains)` writes, from the data dir and the simulator's `[chains.*]` blocks (no
    /// [`FAST_SETTINGS`]: for tests of the built-in defaults).
    pub async fn start_config(sim_config: SimConfig, config_of: impl FnOnce(&str, &str) -> String) -> Self {
        let sim = Arc::new(Simulator::start(sim_config).await.expect("simulator starts"));
        let data_dir = tempfile::tempdir().expect("temp dir");
        let config_text =
            config_of(&format!("{:?}", data_dir.path().display().to_string()), &sim.coordinator_config());
        let coordinator = start_coordinator_with(&config_text, &[]).await;
        let admin = admin_client(coordinator.rpc_addr);
        Self { sim, config_text, overrides: Vec::new(), data_dir, coordinator: Some(coordinator), admin }
    }

    /// `http://<conductor.listen>` of a coordinator started in conductor mode: node `N` of chain
    /// `C` calls `<it>/C/N`.
    pub fn conductor_url(&self) -> String {
        let addr = self
            .overrides
            .iter()
            .find(|(key, _)| key == "conductor.listen")
            .map(|(_, addr)| addr.clone())
            .expect("a coordinator started in conductor mode");
        format!("http://{addr}")
    }

    /// Stops the coordinator gracefully.
    pub async fn stop_coordinator(&mut self) {
        if let Some(mut running) = self.coordinator.take() {
            if let Some(shutdown) = running.shutdown.take() {
                let _ = shutdown.send(());
            }
            let _ = running.task.await;
        }
    }

    /// Kills the coordinator abruptly: its tasks are dropped wherever they are.
    pub async fn kill_coordinator(&mut self) {
        if let Some(running) = self.coordinator.take() {
            running.task.abort();
            let _ = running.task.await;
        }
    }

    /// Starts the coordinator again with the same config and data directory.
    pub async fn restart_coordinator(&mut self) {
        self.stop_coordinator().await;
        let coordinator = start_coordinator_with(&self.config_text, &self.overrides).await;
        self.admin = admin_client(coordinator.rpc_addr);
        self.coordinator = Some(coordinator);
    }

    /// The coordinator's view of the chain.
    pub async fn status(&self) -> ChainStatus {
        let mut all = self.admin.status(None).await.expect("coordinator_status");
        all.remove(0)
    }

    /// Waits until the coordinator names `leader` and the simulator agrees it is the only active
    /// node (ground truth).
    pub async fn wait_for_leader(&self, leader: &str, timeout: Duration) {
        let leader = leader.to_owned();
        self.wait_for(&format!("{leader} to lead alone"), timeout, |status, sim| {
            let active: Vec<String> = sim.nodes().into_iter().filter(|n| n.active).map(|n| n.name).collect();
            status.leader.as_deref() == Some(leader.as_str())
                && status.phase == "steady"
                && active == vec![leader.clone()]
        })
        .await;
    }

    /// Waits until `done(status, sim)` holds, polling; panics with the last status on timeout.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        mut done: impl FnMut(&ChainStatus, &Simulator) -> bool,
    ) -> ChainStatus {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let status = self.status().await;
            if done(&status, &self.sim) {
                return status;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {what}\nlast coordinator status: {status:#?}\n\
                     simulator nodes: {:#?}\nevents: {:#?}",
                    self.sim.nodes(),
                    self.admin.events(None, Some(30), None, None).await.ok()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until the chain has sealed `blocks` more blocks than now (ground truth).
    pub async fn wait_for_blocks(&self, blocks: u64, timeout: Duration) {
        let start = self.invariants().blocks_sealed;
        wait_until(&format!("{blocks} more blocks"), timeout, || async {
            (self.invariants().blocks_sealed >= start + blocks).then_some(())
        })
        .await;
    }

    /// Partitions the followers seq-1 and seq-2 away from seq-0 and waits until they trail it by
    /// three blocks.
    pub async fn partition_the_followers_away(&self) {
        self.sim.partition(&[vec!["seq-0".into()], vec!["seq-1".into(), "seq-2".into()]]).expect("partition");
        self.wait_for("the followers to fall behind", WAIT, |_, sim| {
            let heads: Vec<u64> = sim.nodes().iter().map(|node| node.unsafe_head.number).collect();
            heads[1].max(heads[2]) + 3 <= heads[0]
        })
        .await;
    }

    /// The ground-truth invariant report of the chain.
    pub fn invariants(&self) -> ChainInvariants {
        self.sim.invariants().remove(0)
    }

    /// Asserts no unsafe re-org and no double sequencing happened (ground truth).
    pub fn assert_safe(&self) {
        let report = self.invariants();
        assert!(
            report.is_safe(),
            "safety violated: {report:#?}\nledger tail: {:#?}",
            self.sim.ledger_entries(self.sim.ledger().len().saturating_sub(40))
        );
    }

    /// Names of the nodes the simulator says are active (ground truth).
    pub fn active_nodes(&self) -> Vec<String> {
        active_nodes(&self.sim)
    }

    /// The coordinator's timeline, oldest first (all it keeps).
    pub async fn events(&self) -> Vec<CoordinatorEvent> {
        self.admin
            .events(None, Some(opc_wire::coordinator::MAX_EVENTS_LIMIT), None, None)
            .await
            .expect("coordinator_events")
    }

    /// Waits until the timeline holds an event of `kind` (about `node`, when given); returns the
    /// first one. Panics with the last status and timeline on timeout.
    pub async fn wait_for_event(
        &self,
        kind: EventKind,
        node: Option<&str>,
        timeout: Duration,
    ) -> CoordinatorEvent {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let events = self.events().await;
            let found = events
                .iter()
                .find(|event| event.kind == kind && (node.is_none() || event.node.as_deref() == node));
            if let Some(event) = found {
                return event.clone();
            }
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "timed out after {timeout:?} waiting for event {kind} ({node:?})\nlast coordinator \
                     status: {:#?}\nsimulator nodes: {:#?}\nevents: {events:#?}",
                    self.status().await,
                    self.sim.nodes(),
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The whole ground-truth ledger of the simulator.
    pub fn ledger(&self) -> Vec<LedgerEntry> {
        self.sim.ledger_entries(0)
    }
}

/// Names of the nodes `sim` says are active (ground truth).
pub fn active_nodes(sim: &Simulator) -> Vec<String> {
    sim.nodes().into_iter().filter(|node| node.active).map(|node| node.name).collect()
}

/// The coordinator's status of node `name`.
pub fn node<'a>(status: &'a ChainStatus, name: &str) -> &'a NodeStatus {
    status
        .nodes
        .iter()
        .find(|node| node.name == name)
        .unwrap_or_else(|| panic!("no node {name} in {status:#?}"))
}

/// The kinds of `events` in order, for asserting a sequence of steps.
pub fn kinds(events: &[CoordinatorEvent]) -> Vec<(EventKind, Option<String>)> {
    events.iter().map(|event| (event.kind.clone(), event.node.clone())).collect()
}

/// Panics unless `expected` (kind, node) steps appear in `events` in this order (others may be
/// interleaved); an empty node matches any.
pub fn assert_steps_in_order(events: &[CoordinatorEvent], expected: &[(EventKind, &str)]) {
    let mut remaining = expected.iter().peekable();
    for event in events {
        if let Some((kind, node)) = remaining.peek()
            && event.kind == *kind
            && (node.is_empty() || event.node.as_deref() == Some(*node))
        {
            remaining.next();
        }
    }
    let missing: Vec<_> = remaining.collect();
    assert!(missing.is_empty(), "steps {missing:?} missing or out of order in {:#?}", kinds(events));
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(running) = self.coordinator.take() {
            running.task.abort();
        }
        self.sim.shutdown();
    }
}

/// Starts a coordinator from config text on fresh port-0 listeners.
pub async fn start_coordinator(config_text: &str) -> RunningCoordinator {
    start_coordinator_with(config_text, &[]).await
}

/// Starts a coordinator from config text and dotted-key overrides on fresh port-0 listeners (the
/// conductor endpoint, when a chain is in conductor mode, on `conductor.listen`).
pub async fn start_coordinator_with(config_text: &str, overrides: &[(String, String)]) -> RunningCoordinator {
    start_coordinator_on(config_text, overrides, None).await
}

/// [`start_coordinator_with`] with the conductor endpoint's listener already bound.
pub async fn start_coordinator_on(
    config_text: &str,
    overrides: &[(String, String)],
    conductor: Option<TcpListener>,
) -> RunningCoordinator {
    let rpc = TcpListener::bind("127.0.0.1:0").await.expect("bind rpc");
    let metrics = TcpListener::bind("127.0.0.1:0").await.expect("bind metrics");
    let raft = TcpListener::bind("127.0.0.1:0").await.expect("bind raft");
    let rpc_addr = rpc.local_addr().expect("addr");
    let metrics_addr = metrics.local_addr().expect("addr");
    // A config may run as a one-replica cluster: RAFT_ADDR and API_ADDR stand for the listeners.
    let config_text = config_text
        .replace("RAFT_ADDR", &raft.local_addr().expect("addr").to_string())
        .replace("API_ADDR", &rpc_addr.to_string());
    let config = Config::from_toml_str(&config_text, Vec::<(String, String)>::new(), overrides)
        .unwrap_or_else(|errors| panic!("invalid test config: {errors}"));
    let raft = config.cluster.is_some().then_some(raft);
    let conductor = match conductor {
        Some(listener) => Some(listener),
        None if config.chains.values().any(|chain| chain.conductor) => {
            Some(TcpListener::bind(config.conductor.listen).await.expect("bind the conductor endpoint again"))
        }
        None => None,
    };
    let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
    let task = tokio::spawn(op_coordinator::run(
        config,
        Listeners { rpc, metrics: Some(metrics), raft, conductor },
        async move {
            let _ = shutdown_rx.await;
        },
    ));
    RunningCoordinator { rpc_addr, metrics_addr, shutdown: Some(shutdown_tx), task }
}

/// Port-0 listeners for replicas `1..=count` of an in-process cluster, and the
/// `[[cluster.replicas]]` entries that name them: (id, Raft listener, API listener) each.
pub async fn replica_listeners(count: u64) -> (Vec<(u64, TcpListener, TcpListener)>, String) {
    let mut listeners = Vec::new();
    let mut entries = String::new();
    for id in 1..=count {
        let raft = TcpListener::bind("127.0.0.1:0").await.expect("bind raft");
        let rpc = TcpListener::bind("127.0.0.1:0").await.expect("bind rpc");
        entries.push_str(&format!(
            "\n[[cluster.replicas]]\nid = {id}\nraft_addr = \"{}\"\napi_addr = \"{}\"\n",
            raft.local_addr().expect("addr"),
            rpc.local_addr().expect("addr")
        ));
        listeners.push((id, raft, rpc));
    }
    (listeners, entries)
}

/// A JSON-RPC client of an admin API at `addr` (host:port), with a timeout long enough for a
/// hand-over.
pub fn admin_client(addr: impl Display) -> HttpClient {
    admin_client_with_timeout(addr, ADMIN_TIMEOUT)
}

/// A JSON-RPC client of an admin API at `addr` (host:port) whose requests give up after
/// `request_timeout`.
pub fn admin_client_with_timeout(addr: impl Display, request_timeout: Duration) -> HttpClient {
    HttpClientBuilder::default()
        .request_timeout(request_timeout)
        .build(format!("http://{addr}"))
        .expect("admin client")
}
