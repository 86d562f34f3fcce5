//! One `op-coordinator run --replica-id N` process of a Raft cluster, as an operator starts it
//! from a shared config file, and the Raft fault injection of its server.

use crate::{LoggedChild, PROCESS_WAIT, free_addr, hermetic, tail, wait_for};
use jsonrpsee::http_client::HttpClient;
use op_sim::Simulator;
use opc_wire::coordinator::{ChainStatus, ClusterInfo, CoordinatorApiClient as _};
use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    process::{Command, ExitStatus},
    time::Duration,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Request timeout of a replica's admin client: short, so a wait on a cluster that is between
/// leaders polls again instead of hanging on one replica.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(5);

/// One replica process; SIGKILLed on drop.
#[derive(Debug)]
pub struct ReplicaProcess {
    /// The `op-coordinator` binary (`env!("CARGO_BIN_EXE_op-coordinator")` of the caller).
    pub binary: PathBuf,
    /// Its Raft id, and `--replica-id`.
    pub id: u64,
    /// Where it listens for Raft (host:port), as listed in the config.
    pub raft_addr: String,
    /// Where it serves the admin API (host:port), as listed in the config.
    pub api_addr: String,
    /// The config file it starts from; a test may point it at another (a joining replica's).
    pub config: PathBuf,
    /// Flags after `--config` and `--replica-id` (the listen flags of a replica not listed).
    pub extra_args: Vec<String>,
    /// `OP_COORDINATOR_LOG_LEVEL`: tests keep `info` to diagnose, benches only `warn`.
    pub log_level: String,
    /// Every start appends its stderr here.
    pub log: PathBuf,
    /// The running process, if any.
    pub child: Option<LoggedChild>,
    /// Its admin API.
    pub admin: HttpClient,
}

impl ReplicaProcess {
    /// A replica (not started) on two [`free_addr`]s, logging to `dir/replica-ID.log`.
    pub fn new(binary: impl Into<PathBuf>, id: u64, config: PathBuf, dir: &Path) -> Self {
        let (raft_addr, api_addr) = (free_addr(), free_addr());
        let admin = crate::admin_client_with_timeout(&api_addr, ADMIN_TIMEOUT);
        Self {
            binary: binary.into(),
            id,
            raft_addr,
            api_addr,
            config,
            extra_args: Vec::new(),
            log_level: "info,openraft=warn".to_owned(),
            log: dir.join(format!("replica-{id}.log")),
            child: None,
            admin,
        }
    }

    /// `op-coordinator run --config FILE --replica-id ID EXTRA...`, hermetic: no
    /// `OP_COORDINATOR_*` variable of the caller leaks into the replica's config.
    pub fn command(&self) -> Command {
        let mut command = hermetic(&self.binary, &["OP_COORDINATOR_"]);
        command
            .arg("run")
            .arg("--config")
            .arg(&self.config)
            .args(["--replica-id", &self.id.to_string()])
            .args(&self.extra_args)
            .env("OP_COORDINATOR_LOG_LEVEL", &self.log_level);
        command
    }

    /// Starts the process.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "replica {} is already running", self.id);
        self.child = Some(LoggedChild::spawn(&mut self.command(), &self.log));
    }

    /// SIGKILL: no shutdown path runs, as when the host dies.
    pub fn kill(&mut self) {
        self.child = None;
    }

    /// SIGTERM: the graceful stop a restart by an operator or a supervisor sends.
    pub fn terminate(&self) {
        let pid = self.child.as_ref().unwrap_or_else(|| panic!("replica {} is not running", self.id)).id();
        let status = Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("run kill");
        assert!(status.success(), "kill -TERM {pid} (replica {}) failed", self.id);
    }

    /// The exit status, once the process has exited by itself.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().and_then(LoggedChild::exited)
    }

    /// `coordinator_clusterMembership` as this replica answers it.
    pub async fn membership(&self) -> Result<ClusterInfo, String> {
        self.admin.cluster_membership().await.map_err(|err| err.to_string())
    }

    /// This replica's status of the one chain.
    pub async fn status(&self) -> Result<ChainStatus, String> {
        let mut chains = self.admin.status(None).await.map_err(|err| err.to_string())?;
        chains.pop().ok_or_else(|| "no chain in the status".to_owned())
    }

    /// Replaces the Raft faults of this replica's outgoing messages (`POST /fault`; the config
    /// must set `cluster.fault_injection = true`).
    pub async fn drop_messages_to(&self, peers: &[u64]) {
        let body = serde_json::json!({ "drop_to": peers }).to_string();
        post(&self.raft_addr, "/fault", &body).await;
    }

    /// Removes every Raft fault (`POST /fault/heal`).
    pub async fn heal_messages(&self) {
        post(&self.raft_addr, "/fault/heal", "").await;
    }
}

/// Every replica's log tail and the simulator's nodes, for failure messages.
pub fn diagnostics(replicas: &[ReplicaProcess], sim: &Simulator) -> String {
    let mut out = String::new();
    for replica in replicas {
        let _ = writeln!(out, "--- replica {} log tail ---\n{}", replica.id, tail(&replica.log, 25));
    }
    let _ = writeln!(out, "--- simulator nodes ---\n{:#?}", sim.nodes());
    out
}

/// Polls `probe` until it returns a value or [`PROCESS_WAIT`] passes; the failure shows the last
/// thing `probe` observed and the replicas' [`diagnostics`].
pub async fn wait_for_replicas<T>(
    replicas: &[ReplicaProcess],
    sim: &Simulator,
    what: &str,
    probe: impl AsyncFnMut() -> (Option<T>, String),
) -> T {
    wait_for(what).timeout(PROCESS_WAIT).until_or(probe, || diagnostics(replicas, sim)).await
}

/// One HTTP/1.1 POST with `Connection: close`; panics unless the answer is 200.
async fn post(addr: &str, path: &str, body: &str) {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .unwrap_or_else(|_| panic!("POST http://{addr}{path}: no answer within 5 s"))
        .unwrap_or_else(|err| panic!("POST http://{addr}{path}: {err}"));
    assert!(response.starts_with("HTTP/1.1 200"), "POST http://{addr}{path} {body}: {response}");
}
