//! One coordinator replica as a process: its own tokio runtime, listeners and data dir, killed by
//! dropping the runtime and started again from its data dir, and the status checks that watch it.
//!
//! A killed replica is its runtime dropped: actors, Raft core, Raft server and calls in flight all
//! go at once, as with a killed process (aborting only the `op_coordinator::run` task would leave
//! the Raft replica running, see [`opc_cluster::Cluster`]).

use crate::{
    invariants::coordinator_alive::{
        SHUTDOWN_TIMEOUT, STATUS_EVERY, STATUS_TIMEOUT, StatusChecks, shutdown_violation,
    },
    support::bind_again,
};
use jsonrpsee::http_client::HttpClient;
use op_coordinator::{Listeners, StartError, config::Config};
use opc_cluster::ClusterError;
use opc_wire::coordinator::{CoordinatorApiClient, CoordinatorEvent};
use std::{
    net::SocketAddr,
    sync::{Mutex, Once},
    time::Duration,
};
use tokio::{net::TcpListener, runtime::Runtime, sync::watch, task::JoinHandle, time::Instant};

/// How long a restart keeps trying to take its store and ports back from the killed incarnation
/// (its last store writes finish on the blocking pool after the runtime is gone).
const RESTART_RETRY: Duration = Duration::from_secs(5);

/// Panics in replica threads, by thread name: tokio catches a task's panic, so the hook is the
/// only place that sees one in an actor or in the Raft core.
static PANICS: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());
static PANIC_HOOK: Once = Once::new();

/// Installs the hook that records panics on replica threads (once a process).
pub(crate) fn install_panic_hook() {
    PANIC_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(name) = std::thread::current().name()
                && name.starts_with("opc-chaos-")
                && let Ok(mut panics) = PANICS.lock()
            {
                panics.push((name.to_owned(), info.to_string()));
            }
            previous(info);
        }));
    });
}

/// The thread name of every thread of replica `id` of `seed`'s run.
fn thread_name(seed: u64, id: u64) -> String {
    format!("opc-chaos-s{seed}-r{id}")
}

/// The panics recorded on the threads of replica `id` of `seed`'s run, as violations.
pub(crate) fn panics_of(seed: u64, id: u64) -> Vec<String> {
    let prefix = thread_name(seed, id);
    let Ok(panics) = PANICS.lock() else { return Vec::new() };
    panics
        .iter()
        .filter(|(thread, _)| *thread == prefix)
        .map(|(thread, message)| format!("replica {id} panicked on thread {thread}: {message}"))
        .collect()
}

/// One life of a replica: its runtime and the task running the coordinator on it. Dropping it
/// kills the replica (a runtime must not be dropped the blocking way inside the runner's).
#[derive(Debug)]
pub(crate) struct Incarnation {
    /// Counts the replica's lives, so a status answer is matched to the life it asked.
    number: u64,
    /// Taken by [`Incarnation::kill`].
    runtime: Option<Runtime>,
    task: JoinHandle<Result<(), String>>,
    stop_tx: watch::Sender<bool>,
}

impl Incarnation {
    /// Drops the runtime with everything on it, without waiting.
    fn kill(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }

    /// Waits for the task after it was asked to stop; a violation if it did not stop, failed or
    /// panicked. The runtime is dropped either way.
    async fn reap(mut self, id: u64) -> Option<String> {
        let _ = self.stop_tx.send(true);
        let outcome = tokio::time::timeout(SHUTDOWN_TIMEOUT, &mut self.task).await.ok();
        self.kill();
        shutdown_violation(&format!("replica {id}"), outcome)
    }
}

impl Drop for Incarnation {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A coordinator replica that can be killed and started again.
#[derive(Debug)]
pub(crate) struct ReplicaSlot {
    pub(crate) id: u64,
    seed: u64,
    /// Its Raft address, where the runner also posts its Raft faults (`/fault`).
    pub(crate) raft_addr: SocketAddr,
    api_addr: SocketAddr,
    /// Its conductor endpoint, in conductor mode: the nodes that commit through this replica know
    /// this address.
    conductor_addr: Option<SocketAddr>,
    /// Its config: the shared text with `cluster.id` (and `conductor.listen`) set to its own.
    config: Config,
    /// Admin API client, with the deadline a status answer must meet.
    pub(crate) client: HttpClient,
    running: Option<Incarnation>,
    /// Shut down without waiting; reaped before the next start.
    stopping: Option<Incarnation>,
    incarnations: u64,
    /// Events of every incarnation, saved before it went away.
    pub(crate) events: Vec<CoordinatorEvent>,
    /// The check in flight, with the incarnation it asks.
    status_check: Option<(u64, JoinHandle<Result<(), String>>)>,
    last_status_check: Option<Instant>,
    /// The checks of the current incarnation.
    status: StatusChecks,
}

impl ReplicaSlot {
    /// A replica that is not started yet.
    pub(crate) fn new(
        id: u64,
        seed: u64,
        (raft_addr, api_addr, conductor_addr): (SocketAddr, SocketAddr, Option<SocketAddr>),
        config: Config,
        client: HttpClient,
    ) -> Self {
        Self {
            id,
            seed,
            raft_addr,
            api_addr,
            conductor_addr,
            config,
            client,
            running: None,
            stopping: None,
            incarnations: 0,
            events: Vec::new(),
            status_check: None,
            last_status_check: None,
            status: StatusChecks::default(),
        }
    }

    pub(crate) fn is_up(&self) -> bool {
        self.running.is_some()
    }

    /// Starts a new incarnation on the replica's addresses and data dir.
    pub(crate) async fn start(&mut self) -> Result<(), String> {
        if let Some(previous) = self.stopping.take()
            && let Some(violation) = previous.reap(self.id).await
        {
            return Err(violation);
        }
        let rpc = bind_again(self.api_addr).await?;
        let raft = bind_again(self.raft_addr).await?;
        let conductor = match self.conductor_addr {
            Some(addr) => Some(bind_again(addr).await?),
            None => None,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(thread_name(self.seed, self.id))
            .enable_all()
            .build()
            .map_err(|err| format!("replica {}: cannot build its runtime: {err}", self.id))?;
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = runtime.spawn(run_replica(self.config.clone(), Bound { rpc, raft, conductor }, stop_rx));
        self.incarnations += 1;
        self.running = Some(Incarnation { number: self.incarnations, runtime: Some(runtime), task, stop_tx });
        self.status_check = None;
        self.status = StatusChecks::default();
        Ok(())
    }

    /// Keeps the current incarnation's events (they live in its memory).
    async fn save_events(&mut self) {
        if self.running.is_some()
            && let Ok(Ok(events)) =
                tokio::time::timeout(STATUS_TIMEOUT, self.client.events(None, Some(1000), None, None)).await
        {
            self.events.extend(events);
        }
    }

    /// Kills the replica (`abrupt`: its runtime dropped mid-flight) or asks it to shut down
    /// without waiting. A violation if it had already died on its own.
    pub(crate) async fn crash(&mut self, abrupt: bool) -> Option<String> {
        self.save_events().await;
        let mut incarnation = self.running.take()?;
        if incarnation.task.is_finished() {
            return incarnation
                .reap(self.id)
                .await
                .or(Some(format!("replica {} had exited on its own", self.id)));
        }
        if abrupt {
            incarnation.kill();
        } else {
            let _ = incarnation.stop_tx.send(true);
            self.stopping = Some(incarnation);
        }
        None
    }

    /// Shuts the replica down and waits for it (the end of a run).
    pub(crate) async fn stop(&mut self) -> Vec<String> {
        self.save_events().await;
        let mut violations = Vec::new();
        for incarnation in [self.running.take(), self.stopping.take()].into_iter().flatten() {
            violations.extend(incarnation.reap(self.id).await);
        }
        violations
    }

    /// The replica must answer (not hang) and must not have died on its own. Status checks run
    /// in the background, one at a time every [`STATUS_EVERY`], so a hung replica does not hold
    /// up the runner's tick; an answer counts only for the incarnation it asked.
    pub(crate) async fn check_alive(&mut self, now: Instant) -> Option<String> {
        let incarnation = self.running.as_ref()?;
        let number = incarnation.number;
        if incarnation.task.is_finished() {
            let incarnation = self.running.take()?;
            let outcome = incarnation.reap(self.id).await;
            return Some(
                outcome.unwrap_or_else(|| {
                    format!("replica {} (incarnation {number}) exited on its own", self.id)
                }),
            );
        }
        let mut violation = None;
        if let Some((asked, check)) = &self.status_check
            && check.is_finished()
        {
            let asked = *asked;
            if let Some((_, check)) = self.status_check.take() {
                let outcome = check.await.unwrap_or_else(|err| Err(err.to_string()));
                if asked == number
                    && let Some(err) = self.status.record(outcome)
                {
                    violation = Some(format!("replica {} does not answer: {err}", self.id));
                }
            }
        }
        let due = self.last_status_check.is_none_or(|at| now.duration_since(at) >= STATUS_EVERY);
        if self.status_check.is_none() && due {
            self.last_status_check = Some(now);
            let client = self.client.clone();
            self.status_check = Some((
                number,
                tokio::spawn(async move {
                    client.status(None).await.map_err(|err| format!("coordinator_status: {err}"))?;
                    client
                        .cluster_membership()
                        .await
                        .map_err(|err| format!("coordinator_clusterMembership: {err}"))?;
                    Ok(())
                }),
            ));
        }
        violation
    }
}

/// The listeners of one incarnation, bound on the replica's fixed addresses.
#[derive(Debug)]
struct Bound {
    rpc: std::net::TcpListener,
    raft: std::net::TcpListener,
    conductor: Option<std::net::TcpListener>,
}

/// A tokio listener on a copy of `listener` (each try of [`run_replica`] takes its own).
fn listener_from(listener: &std::net::TcpListener) -> Result<TcpListener, String> {
    TcpListener::from_std(listener.try_clone().map_err(|err| err.to_string())?).map_err(|err| err.to_string())
}

/// One incarnation's task, on the replica's own runtime. A store still held by the killed
/// incarnation's last writes is retried for [`RESTART_RETRY`].
async fn run_replica(config: Config, bound: Bound, stop_rx: watch::Receiver<bool>) -> Result<(), String> {
    let deadline = Instant::now() + RESTART_RETRY;
    loop {
        let listeners = Listeners {
            rpc: listener_from(&bound.rpc)?,
            metrics: None,
            raft: Some(listener_from(&bound.raft)?),
            conductor: bound.conductor.as_ref().map(listener_from).transpose()?,
        };
        let mut stop_rx = stop_rx.clone();
        let stopped = async move {
            let _ = stop_rx.wait_for(|stop| *stop).await;
        };
        match Box::pin(op_coordinator::run(config.clone(), listeners, stopped)).await {
            Err(StartError::Cluster(ClusterError::StoreInUse { .. })) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            outcome => return outcome.map_err(|err| err.to_string()),
        }
    }
}
