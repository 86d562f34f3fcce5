//! `op-coordinator ctl`: the operator's client of the admin API and of the simulator's control API.
//!
//! Exit codes scripts can rely on:
//! - 0: done, or nothing to do (`pause` of a paused chain says "already paused", `resume` of a
//!   running one "not paused"); for `status`: every chain steady with a healthy leader;
//! - 1: the server refused the request (JSON-RPC error, e.g. an unhealthy hand-over target; a
//!   missing or wrong JWT; a busy server);
//! - 2: bad usage or a bad local file (clap's own code for usage errors);
//! - 3: the server could not be reached (the message names the URL tried);
//! - 4: `status` and `cluster status` only: a chain has no leader, is mid-fail-over, its leader
//!   is unhealthy, its state cannot be written (`cannot persist`), it is held (its block time
//!   unknown or contradicted), or it is not acted on because its stored state names nodes the
//!   config lacks; or, for a coordinator running as a Raft cluster, no replica is known to lead
//!   or the leader replica does not act.
//!
//! Against a cluster, any replica answers: reads come from the replica asked, changes are
//! forwarded to the leader replica. `status` then also shows the cluster, as the replica asked
//! and (when that is not the leader) the leader itself see it.

use crate::table;
use clap::{Args, Subcommand};
use jsonrpsee::{
    core::ClientError,
    http_client::{HeaderMap, HeaderValue, HttpClient, HttpClientBuilder},
};
use opc_wire::coordinator::{ChainStatus, ClusterInfo, CoordinatorApiClient, CoordinatorEvent};
// `ctl sim` is the simulator's client: only with the `devnet` feature.
#[cfg(feature = "devnet")]
use op_sim_api::{FaultKind, FaultParams, SimControlApiClient};
use std::{path::PathBuf, process::ExitCode, time::Duration};

/// `--rpc` when neither the flag nor `OP_COORDINATOR_RPC` is given (devnet's default).
pub(crate) const DEFAULT_RPC: &str = "http://127.0.0.1:9762";
/// `sim --control` when neither the flag nor `OP_SIM_CONTROL` is given (devnet's default).
#[cfg(feature = "devnet")]
pub(crate) const DEFAULT_SIM_CONTROL: &str = "http://127.0.0.1:7400";

/// `op-coordinator ctl`.
#[derive(Debug, Args)]
pub(crate) struct CtlArgs {
    /// The coordinator's admin API.
    #[arg(long, global = true, env = "OP_COORDINATOR_RPC", default_value = DEFAULT_RPC)]
    rpc: String,
    /// HS256 secret (32-byte hex) for mutating calls, when the coordinator requires one.
    #[arg(long, global = true, env = "OP_COORDINATOR_JWT_SECRET_FILE", value_name = "FILE")]
    jwt_secret_file: Option<PathBuf>,
    /// Chain name (needed only when the coordinator serves several chains).
    #[arg(long, global = true)]
    chain: Option<String>,
    /// Print JSON instead of tables. `status` prints the array of chains, or, against a
    /// coordinator running as a cluster, `{"cluster", "leader_view", "chains"}`.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: CtlCommand,
}

#[derive(Debug, Subcommand)]
enum CtlCommand {
    /// Per node: healthy and why, leader, sequencing, unsafe head; the replicas first when the
    /// coordinator runs as a cluster; exit 4 when degraded.
    Status,
    /// The fail-over timeline with timings.
    Events {
        /// At most this many (latest; the coordinator answers at most 1000 a call).
        #[arg(long, default_value_t = 20)]
        limit: u64,
        /// Only events older than this position (`seq` in `--json`): pages back through the
        /// timeline.
        #[arg(long, value_name = "SEQ")]
        before: Option<u64>,
    },
    /// Hand the sequencer role to NODE (stop, catch up, start at the stopped hash).
    Transfer {
        /// The new leader.
        #[arg(long)]
        to: String,
    },
    /// Pause automatic fail-over and inspection (persisted); `transfer` still hands over.
    Pause,
    /// Resume automatic fail-over and inspection.
    Resume,
    /// Forget the leader, fenced or hand-over nodes the stored state names but the config does
    /// not have (renamed away at another URL, or removed), after the coordinator checked that no
    /// sequencer outside the config produces blocks; the chain is then acted on again.
    ForgetStaleNodes,
    /// The coordinator's Raft replicas: membership, leader, indexes; add, remove, move leadership.
    Cluster(ClusterArgs),
    /// Drive the simulator (devnet / op-sim) through its control API.
    #[cfg(feature = "devnet")]
    Sim(SimArgs),
}

#[derive(Debug, Args)]
struct ClusterArgs {
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// Replicas, leader (acting or not), term, commit and applied index, lag; exit 4 without an
    /// acting leader.
    Status,
    /// Add a replica started with `cluster.bootstrap = false`: a learner until it caught up,
    /// then a voter. Returns once the new membership is committed.
    Add {
        /// Its Raft id (unique, never reused).
        #[arg(long)]
        id: u64,
        /// Its Raft address (host:port), as the other replicas reach it.
        #[arg(long, value_name = "ADDR")]
        raft_addr: String,
        /// Its admin API address (host:port), where other replicas forward changes.
        #[arg(long, value_name = "ADDR")]
        api_addr: String,
        /// Its conductor endpoint (host:port), where the other replicas forward op-node's
        /// conductor calls; needed when a chain runs in conductor mode.
        #[arg(long, value_name = "ADDR")]
        conductor_addr: Option<String>,
    },
    /// Remove a replica from the membership (stop its process afterwards).
    Remove {
        /// Its Raft id.
        #[arg(long)]
        id: u64,
    },
    /// Move Raft leadership (which replica acts) to another voter.
    Transfer {
        /// The replica id to lead.
        #[arg(long)]
        to: u64,
    },
}

#[cfg(feature = "devnet")]
#[derive(Debug, Args)]
struct SimArgs {
    /// The simulator's control endpoint.
    #[arg(long, env = "OP_SIM_CONTROL", default_value = DEFAULT_SIM_CONTROL)]
    control: String,
    #[command(subcommand)]
    command: SimCommand,
}

#[cfg(feature = "devnet")]
#[derive(Debug, Subcommand)]
enum SimCommand {
    /// Every simulated node (ground truth).
    Nodes,
    /// Crash a node's op-node, op-geth or both (connection refused).
    Crash(Target),
    /// Freeze a node: connections accepted, never answered.
    Hang(Target),
    /// Delay every reply of a node.
    Slow {
        #[command(flatten)]
        target: Target,
        /// Added latency per reply.
        #[arg(long, default_value_t = 500)]
        latency_ms: u64,
    },
    /// Break a node's replies.
    Malformed {
        #[command(flatten)]
        target: Target,
        /// invalid_json, wrong_types or huge_body.
        #[arg(long, default_value = "invalid_json")]
        mode: String,
    },
    /// Cut a node's RPC off from clients while its p2p keeps working.
    Isolate {
        /// The node.
        node: String,
        /// refuse or blackhole.
        #[arg(long, default_value = "refuse")]
        mode: String,
    },
    /// Keep a node's sequencer active but sealing nothing.
    Stall {
        /// The node.
        node: String,
    },
    /// Stop a node's op-geth from importing blocks.
    Lag {
        /// The node.
        node: String,
    },
    /// Start a node's sequencer behind the coordinator's back.
    Start {
        /// The node.
        node: String,
    },
    /// Stop a node's sequencer behind the coordinator's back.
    Stop {
        /// The node.
        node: String,
    },
    /// Heal every fault of a node (`*`: of every node, and partitions).
    Heal {
        /// The node, or `*`.
        node: String,
    },
    /// Split the p2p network: each argument is a comma-separated group; none heals.
    Partition {
        /// Groups, e.g. `seq-0 seq-1,seq-2`.
        groups: Vec<String>,
    },
    /// Ground-truth invariants: re-orgs, double sequencing, gaps, missed slots.
    Invariants,
}

#[cfg(feature = "devnet")]
#[derive(Debug, Args)]
struct Target {
    /// The node.
    node: String,
    /// op_node, op_geth or both.
    #[arg(long, default_value = "both")]
    target: String,
}

/// What went wrong, mapped to an exit code.
enum Failure {
    Usage(String),
    /// A call failed; rendered in [`Failure::explain`] with the URL it went to.
    Client(ClientError),
}

impl From<ClientError> for Failure {
    fn from(err: ClientError) -> Self {
        Self::Client(err)
    }
}

/// Where the failed call went and what the operator passed, for messages that say what to do.
struct CallTarget {
    /// The URL tried (`--rpc`, or `--control` for `ctl sim`).
    url: String,
    /// The flag that sets it.
    flag: &'static str,
    /// What should be listening there.
    server: &'static str,
    /// A JWT was sent (`--jwt-secret-file` given).
    token_sent: bool,
}

impl Failure {
    /// The failure with a message naming what to do and the URL tried, and its exit code.
    fn explain(self, target: &CallTarget) -> (String, u8) {
        let url = target.url.trim_end_matches('/');
        match self {
            Failure::Usage(message) => (format!("ctl: {message}"), 2),
            Failure::Client(ClientError::Call(object)) => (format!("refused: {}", object.message()), 1),
            Failure::Client(ClientError::Transport(err)) => transport_failure(err.as_ref(), url, target),
            Failure::Client(ClientError::RequestTimeout) => (
                format!("no answer from {url} in time; `op-coordinator ctl events` shows what it is doing"),
                3,
            ),
            Failure::Client(ClientError::ParseError(err)) => {
                (format!("cannot read the answer of {url}: {err} (is {} listening there?)", target.server), 3)
            }
            Failure::Client(other) => (format!("refused by {url}: {other}"), 1),
        }
    }
}

/// A transport failure: an HTTP status the server answered with, or why it was not reached.
fn transport_failure(
    err: &(dyn std::error::Error + 'static),
    url: &str,
    target: &CallTarget,
) -> (String, u8) {
    let mut source = Some(err);
    while let Some(err) = source {
        if let Some(jsonrpsee::http_client::transport::Error::Rejected { status_code }) = err.downcast_ref() {
            return rejected(*status_code, url, target);
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            let kind = io.kind().to_string();
            let hint = format!("is {} running? check {}", target.server, target.flag);
            return (format!("cannot reach {url}: {kind} ({hint})"), 3);
        }
        source = err.source();
    }
    (format!("cannot reach {url}: {err} (is {} running? check {})", target.server, target.flag), 3)
}

/// The message of an HTTP status the server refused the call with.
fn rejected(status_code: u16, url: &str, target: &CallTarget) -> (String, u8) {
    let message = match status_code {
        401 if target.token_sent => format!(
            "unauthorized: {url} refused the JWT made from --jwt-secret-file; use the coordinator's \
             rpc.jwt_secret_file, and check that this machine's clock is right (tokens are valid 60 s)"
        ),
        401 => format!(
            "unauthorized: this coordinator requires a JWT; pass --jwt-secret-file or set \
             OP_COORDINATOR_JWT_SECRET_FILE (at {url})"
        ),
        413 => format!("refused: the request is larger than the rpc.max_request_bytes of {url}"),
        503 => format!(
            "busy: {url} already serves its rpc.max_connections connections; retry in a moment, or close idle \
             clients"
        ),
        code => format!("refused: {url} answered HTTP {code}"),
    };
    (message, 1)
}

pub(crate) fn ctl(args: CtlArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("ctl: {err}");
            return ExitCode::from(2);
        }
    };
    let target = match &args.command {
        #[cfg(feature = "devnet")]
        CtlCommand::Sim(sim) => CallTarget {
            url: sim.control.clone(),
            flag: "--control",
            server: "op-sim (devnet)",
            token_sent: false,
        },
        _ => CallTarget {
            url: args.rpc.clone(),
            flag: "--rpc",
            server: "op-coordinator",
            token_sent: args.jwt_secret_file.is_some(),
        },
    };
    match runtime.block_on(run(args)) {
        Ok(code) => code,
        Err(failure) => {
            let (message, code) = failure.explain(&target);
            eprintln!("{message}");
            ExitCode::from(code)
        }
    }
}

/// Pause or resume: a request for what already holds is said, not failed.
async fn set_paused(coordinator: &HttpClient, chain: Option<String>, paused: bool) -> Result<(), Failure> {
    let result =
        if paused { coordinator.stop_election(chain).await } else { coordinator.start_election(chain).await };
    match result {
        Ok(()) if paused => {
            println!("automation paused: no fail-over or inspection until `op-coordinator ctl resume`");
            println!("`op-coordinator ctl transfer` still hands over");
        }
        Ok(()) => println!("automation resumed"),
        Err(ClientError::Call(object)) if object.code() == op_coordinator::api::UNCHANGED_CODE => {
            println!("{}", object.message());
        }
        Err(err) => return Err(err.into()),
    }
    Ok(())
}

fn client(url: &str, token: Option<String>, timeout: Duration) -> Result<HttpClient, Failure> {
    let mut headers = HeaderMap::new();
    if let Some(token) = token {
        let value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|err| Failure::Usage(err.to_string()))?;
        headers.insert("authorization", value);
    }
    HttpClientBuilder::default()
        .request_timeout(timeout)
        .set_headers(headers)
        .build(url)
        .map_err(|err| Failure::Usage(format!("bad URL {url}: {err}")))
}

fn token(path: Option<&PathBuf>) -> Result<Option<String>, Failure> {
    let Some(path) = path else { return Ok(None) };
    let text = std::fs::read_to_string(path)
        .map_err(|err| Failure::Usage(format!("cannot read --jwt-secret-file {}: {err}", path.display())))?;
    let secret = op_coordinator::jwt::parse_secret(&text)
        .map_err(|err| Failure::Usage(format!("--jwt-secret-file {}: {err}", path.display())))?;
    Ok(Some(op_coordinator::jwt::issue(&secret)))
}

fn print_json(value: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
}

async fn run(args: CtlArgs) -> Result<ExitCode, Failure> {
    let CtlArgs { rpc, jwt_secret_file, chain, json, command } = args;
    #[cfg(feature = "devnet")]
    if let CtlCommand::Sim(sim) = command {
        return run_sim(sim, json).await;
    }
    // A hand-over waits for the whole fail-over to complete.
    let coordinator = client(&rpc, token(jwt_secret_file.as_ref())?, Duration::from_secs(60))?;
    match command {
        CtlCommand::Status => {
            let chains = coordinator.status(chain).await?;
            // An older coordinator has no clusterMembership, a lone one answers without a
            // replica: either way there is no cluster to show, and the output is as before.
            let cluster = match coordinator.cluster_membership().await {
                Ok(info) if info.replica.is_some() => Some(ClusterView::fetch(info).await),
                _ => None,
            };
            if json {
                match &cluster {
                    Some(view) => print_json(&serde_json::json!({
                        "cluster": view.asked,
                        "leader_view": view.leader_view,
                        "chains": chains,
                    })),
                    None => print_json(&chains),
                }
            } else {
                if let Some(view) = &cluster {
                    view.print();
                    println!();
                }
                print_status(&chains);
            }
            let degraded = chains.iter().any(|status| {
                let leader_healthy = status.leader.as_ref().is_some_and(|leader| {
                    status.nodes.iter().any(|node| &node.name == leader && node.healthy)
                });
                status.phase != "steady"
                    || !leader_healthy
                    || status.persist_error.is_some()
                    || status.config_mismatch.is_some()
                    || status.held.is_some()
                    || status.timing_unreliable.is_some()
            });
            let cluster_degraded = cluster.as_ref().is_some_and(|view| !view.leader_acts());
            return Ok(ExitCode::from(if degraded || cluster_degraded { 4 } else { 0 }));
        }
        CtlCommand::Cluster(ClusterArgs { command }) => {
            return run_cluster(&coordinator, command, json).await;
        }
        CtlCommand::Events { limit, before } => {
            let events = coordinator.events(chain, Some(limit), before, None).await?;
            if json {
                print_json(&events);
            } else {
                print_events(&events);
            }
        }
        CtlCommand::Transfer { to } => {
            coordinator.set_active_sequencer(to.clone(), chain).await?;
            if json {
                print_json(&serde_json::json!({"leader": to}));
            } else {
                println!("{to} is the active sequencer");
            }
        }
        CtlCommand::Pause => set_paused(&coordinator, chain, true).await?,
        CtlCommand::Resume => set_paused(&coordinator, chain, false).await?,
        CtlCommand::ForgetStaleNodes => {
            let names = coordinator.forget_stale_nodes(chain).await?;
            if json {
                print_json(&serde_json::json!({"forgotten": names}));
            } else {
                println!(
                    "forgot {}; the coordinator acts on the chain again (it adopts the active sequencer \
                     or elects one)",
                    names.join(", ")
                );
            }
        }
        #[cfg(feature = "devnet")]
        CtlCommand::Sim(_) => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// The cluster as `ctl` shows it.
#[derive(Debug)]
struct ClusterView {
    /// The answer of the replica `--rpc` points at.
    asked: ClusterInfo,
    /// The leader's own answer when the replica asked is not the leader: only the leader knows
    /// whether it acts and how far each replica lags. None when it could not be reached (its
    /// `api_addr` may not be reachable from here).
    leader_view: Option<ClusterInfo>,
}

impl ClusterView {
    /// How long to wait for the leader's answer: it only adds detail, so keep it short.
    const LEADER_TIMEOUT: Duration = Duration::from_secs(2);

    async fn fetch(asked: ClusterInfo) -> Self {
        let leader_addr =
            asked.leader_api_addr.clone().filter(|_| asked.leader.is_some() && asked.leader != asked.replica);
        let leader_view = match leader_addr {
            Some(addr) => match client(&format!("http://{addr}"), None, Self::LEADER_TIMEOUT) {
                Ok(leader) => {
                    leader.cluster_membership().await.ok().filter(|view| view.replica == asked.leader)
                }
                Err(_) => None,
            },
            None => None,
        };
        Self { asked, leader_view }
    }

    /// True when a replica is known to lead and acts.
    fn leader_acts(&self) -> bool {
        let Some(leader) = self.asked.leader else { return false };
        match &self.leader_view {
            Some(view) => view.acting,
            None if self.asked.replica == Some(leader) => self.asked.acting,
            // Not reached from here: what the replica asked says is all we know.
            None => true,
        }
    }

    fn print(&self) {
        let leader_view = self.leader_view.as_ref();
        println!("{}", table::cluster_line(&self.asked, leader_view));
        println!("{}", table::replica_header());
        for replica in &self.asked.replicas {
            println!("{}", table::replica_line(&self.asked, leader_view, replica));
        }
    }

    fn print_json(&self) {
        print_json(&serde_json::json!({ "cluster": self.asked, "leader_view": self.leader_view }));
    }
}

async fn run_cluster(
    coordinator: &HttpClient,
    command: ClusterCommand,
    json: bool,
) -> Result<ExitCode, Failure> {
    // Each change answers with the cluster as the leader that made it sees it.
    let (done, answer) = match command {
        ClusterCommand::Status => {
            let info = coordinator.cluster_membership().await?;
            if info.replica.is_none() {
                if json {
                    print_json(&serde_json::json!({ "cluster": null }));
                } else {
                    println!("this coordinator runs alone (no [cluster] in its config)");
                }
                return Ok(ExitCode::SUCCESS);
            }
            let view = ClusterView::fetch(info).await;
            if json {
                view.print_json();
            } else {
                view.print();
            }
            return Ok(ExitCode::from(if view.leader_acts() { 0 } else { 4 }));
        }
        ClusterCommand::Add { id, raft_addr, api_addr, conductor_addr } => (
            format!("replica {id} added"),
            coordinator.add_replica(id, raft_addr, api_addr, conductor_addr).await?,
        ),
        ClusterCommand::Remove { id } => {
            (format!("replica {id} removed"), coordinator.remove_replica(id).await?)
        }
        ClusterCommand::Transfer { to } => {
            (format!("replica {to} leads"), coordinator.transfer_leadership(to).await?)
        }
    };
    let view = ClusterView { asked: answer, leader_view: None };
    if json {
        view.print_json();
    } else {
        println!("{done}");
        view.print();
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(feature = "devnet")]
async fn run_sim(args: SimArgs, json: bool) -> Result<ExitCode, Failure> {
    let sim = client(&args.control, None, Duration::from_secs(10))?;
    let target = |target: &str| -> Result<Option<op_sim_api::FaultTarget>, Failure> {
        serde_json::from_value(serde_json::Value::String(target.replace('-', "_")))
            .map(Some)
            .map_err(|_| Failure::Usage(format!("--target {target:?}: expected op_node, op_geth or both")))
    };
    let (node, kind, params) = match args.command {
        SimCommand::Nodes => {
            let nodes = sim.nodes().await?;
            if json {
                print_json(&nodes);
            } else {
                println!(
                    "{:<10} {:<8} {:<7} {:<8} {:<8} {:>8}  FAULTS",
                    "CHAIN", "NODE", "ACTIVE", "OP-NODE", "OP-GETH", "UNSAFE"
                );
                for node in nodes {
                    let faults: Vec<&str> = node.faults.iter().map(|kind| kind.as_str()).collect();
                    println!(
                        "{:<10} {:<8} {:<7} {:<8} {:<8} {:>8}  {}",
                        node.chain,
                        node.name,
                        node.active,
                        if node.op_node_up { "up" } else { "down" },
                        if node.op_geth_up { "up" } else { "down" },
                        node.unsafe_head.number,
                        faults.join(",")
                    );
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        SimCommand::Invariants => {
            let reports = sim.invariants().await?;
            if json {
                print_json(&reports);
            } else {
                for report in &reports {
                    println!("{report}");
                }
            }
            let safe = reports.iter().all(op_sim_api::ChainInvariants::is_safe);
            return Ok(ExitCode::from(if safe { 0 } else { 4 }));
        }
        SimCommand::Heal { node } => {
            sim.heal(node.clone(), None).await?;
            println!("healed {node}");
            return Ok(ExitCode::SUCCESS);
        }
        SimCommand::Partition { groups } => {
            let groups: Vec<Vec<String>> =
                groups.iter().map(|group| group.split(',').map(str::to_owned).collect()).collect();
            sim.partition(groups.clone()).await?;
            println!(
                "{}",
                if groups.is_empty() {
                    "partition healed".to_owned()
                } else {
                    format!("partitioned into {groups:?}")
                }
            );
            return Ok(ExitCode::SUCCESS);
        }
        SimCommand::Crash(t) => {
            (t.node, FaultKind::Crash, FaultParams { target: target(&t.target)?, ..Default::default() })
        }
        SimCommand::Hang(t) => {
            (t.node, FaultKind::Hang, FaultParams { target: target(&t.target)?, ..Default::default() })
        }
        SimCommand::Slow { target: t, latency_ms } => (
            t.node,
            FaultKind::Slow,
            FaultParams { target: target(&t.target)?, latency_ms: Some(latency_ms), ..Default::default() },
        ),
        SimCommand::Malformed { target: t, mode } => (
            t.node,
            FaultKind::Malformed,
            FaultParams { target: target(&t.target)?, mode: Some(mode), ..Default::default() },
        ),
        SimCommand::Isolate { node, mode } => {
            (node, FaultKind::Isolate, FaultParams { mode: Some(mode), ..Default::default() })
        }
        SimCommand::Stall { node } => (node, FaultKind::Stall, FaultParams::default()),
        SimCommand::Lag { node } => (node, FaultKind::ExecutionLag, FaultParams::default()),
        SimCommand::Start { node } => (node, FaultKind::StartSequencer, FaultParams::default()),
        SimCommand::Stop { node } => (node, FaultKind::StopSequencer, FaultParams::default()),
    };
    sim.fault(node.clone(), kind, Some(params)).await?;
    println!("{kind} applied to {node}");
    Ok(ExitCode::SUCCESS)
}

fn print_status(chains: &[ChainStatus]) {
    for status in chains {
        println!("{}", table::chain_line(status));
        match (status.block_time_ms, status.block_time_source.as_deref()) {
            (Some(block_time_ms), Some(source)) => println!("  block time {block_time_ms} ms ({source})"),
            _ => println!("  block time not known yet"),
        }
        for why in [&status.held, &status.config_mismatch].into_iter().flatten() {
            println!("  NOT ACTING: {why}");
        }
        if let Some(why) = &status.timing_unreliable {
            println!("  COORDINATOR LATE: {why}");
        }
        if let Some(conductor) = &status.conductor {
            println!("  {}", table::conductor_line(conductor));
            println!("  op-node --conductor.enabled --conductor.rpc={}", conductor.endpoint);
        }
        println!("{}", table::node_header());
        for node in &status.nodes {
            println!("{}", table::node_line(status, node));
        }
        for line in table::unhealthy_details(status) {
            println!("{line}");
        }
    }
}

fn print_events(events: &[CoordinatorEvent]) {
    for event in events {
        println!("{}", table::event_line(event));
    }
}
