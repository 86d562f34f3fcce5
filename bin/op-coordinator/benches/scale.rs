//! Scale benchmark (issue 16): what one coordinator, and a 3-replica cluster, cost and how they
//! behave with 10 to 1000 chains of 3 nodes at 1 s blocks, against op-sim in its own process.
//!
//! ```text
//! cargo build --release -p op-sim          # the simulator of the observe-mode setup
//! cargo bench -p op-coordinator-cli --bench scale
//! cargo bench -p op-coordinator-cli --bench scale -- --sizes 10,100 --setups single,conductor --seconds 10
//! ```
//!
//! Flags: `--sizes 10,100,300,1000` (chains), `--setups single,conductor,cluster`, `--seconds 20`
//! (the measured window), `--crashes 5` (leader crashes after it), `--warmup-seconds 5`.
//! `OP_SIM_BIN` overrides the simulator binary (default: `op-sim` beside the `op-coordinator`
//! binary cargo built for this bench).
//!
//! # One row
//!
//! | step | what | done when |
//! |---|---|---|
//! | 1 | op-sim, N chains x 3 nodes, 1 s blocks, `--shared-port`, a child process | its control API lists 3N nodes and the coordinator config is written |
//! | 2 | the coordinator(s), default settings, child processes | - |
//! | 3 | start-up | every chain has a steady leader (the acting replica's `coordinator_status`) that is the chain's only active node and sealed a block in the last 2 block times (op-sim's ground truth); at the deadline (60 s + 150 ms a chain) the row goes on with what there is and says which chains were not ready |
//! | 4 | warm-up (`--warmup-seconds`) | - |
//! | 5 | the measured window (`--seconds`) | - |
//! | 6 | K leader crashes, one after another, on K different ready chains while all others run | each: another node sealed, then the healed chain has one leader, steady, nobody fenced (60 s each; a trial that times out is noted under the table) |
//!
//! Setups: `single` (one coordinator, observe mode: op-sim's first node of each chain starts
//! sequencing and the coordinator adopts it), `conductor` (one coordinator in conductor mode: every
//! op-node commits each block to it and the nodes start stopped), `cluster` (three replica
//! processes from one config file, default Raft timings, conductor mode; node i of a chain commits
//! to replica i mod 3, which forwards to the leader). op-sim's binary has no conductor flag, so
//! the conductor setups run the simulator library in a child process of this bench's own
//! executable (`scale sim-child ...`): same code, same runtime, its own process.
//!
//! # Columns
//!
//! | column | from | definition |
//! |---|---|---|
//! | start-up s | bench clock | op-sim spawned -> step 3 done (`> N`: not every chain was ready at the deadline) |
//! | coordinator cores | `/proc/PID/stat` at the window's two ends | CPU seconds / wall seconds; cluster: the acting replica / the sum of the three |
//! | coordinator RSS MiB | `/proc/PID/status` `VmHWM` at the window's end | peak resident memory since start; cluster: the acting replica / the sum |
//! | op-sim cores | `/proc/PID/stat` | as for the coordinator |
//! | probe calls/s | coordinator metrics: `op_coordinator_probe_duration_seconds_count` | its increase between two scrapes around the window / their interval; every probe is one op-node and one op-geth call, each counted; inspection (`admin_sequencerActive`), commits' replays and proxied reads are not counted (op-sim counts no calls); cluster: the sum over replicas |
//! | probe p99 ms | coordinator metrics: the same histogram's buckets | increase between the scrapes, summed over chains, nodes, services (and replicas), p99 interpolated in its bucket as Prometheus' `histogram_quantile` does |
//! | missed slots | `sim_invariants` at the window's ends | increase of `missed_slots` summed over chains |
//! | wrong fail-overs | op-sim's ledger | changes of the producing node (a block by another node than the chain's previous block) on chains where the bench injected no fault; start-up (op-sim start -> window) / after (window and crashes) |
//! | fail-over ms | op-sim's ledger, `op_chaos::harness::handover_gap` | per crash: the crashed leader's last block -> the first block by another node, minus the block time; p50 / p99 by nearest rank (with 5 crashes p99 is the max); (n) crashes measured |
//! | commits/s | coordinator metrics: `op_coordinator_conductor_commits_total{result="accepted"}` | increase between the scrapes / their interval, all chains (cluster: summed; only the leader accepts) |
//! | commit p99 ms | coordinator metrics: `op_coordinator_conductor_commit_duration_seconds`; ledger: `block.t_ms - commit_sent_ms` | the coordinator's time to admit and make a commit durable / op-node's round trip of the accepted try (forwarding included), over the window's blocks |
//! | load 1m | `/proc/loadavg` | the machine's 1-minute load at the window's start |
//!
//! Under the table: each wrong fail-over (the first ten of a row), trials that timed out, and why
//! a start-up was incomplete. Each row's config, data and logs stay in
//! `target/tmp/scale-SETUP-CHAINS/` until the row runs again. The machine is shared: every figure
//! is what it was, nothing is asserted.

use anyhow::{Context as _, bail};
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use op_chaos::harness::{NODES, Percentiles, fault_params, handover_gap};
use op_sim::{
    Routing, SimConfig, Simulator,
    api::{ChainInvariants, FaultKind, LedgerEntry, SimControlApiClient as _},
};
use opc_test_support::{
    LoggedChild, ReplicaProcess, admin_client_with_timeout,
    exposition::Exposition,
    free_addr, hermetic,
    proc_stats::{ProcSample, clock_ticks, cores, load_average, sample_proc},
    scrape_metrics_within, tail, wait_for,
};
use opc_wire::coordinator::{ChainStatus, CoordinatorApiClient as _};
use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    fmt::Write as _,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};
use tokio::time::Instant;

const BINARY: &str = env!("CARGO_BIN_EXE_op-coordinator");
const BLOCK_TIME_MS: u64 = 1000;
/// First argument of this executable re-run as the simulator of a conductor-mode setup.
const SIM_CHILD: &str = "sim-child";
/// The coordinators' log filter: an operator's default, Raft's chatter left out.
const LOG_LEVEL: &str = "info,openraft=warn";
/// Deadline of the admin calls: a status of 1000 chains is a few megabytes.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Deadline of the simulator's control calls: a ledger read can be tens of megabytes.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(120);
/// Start-up deadlines: a base plus a share per chain, generous for a loaded 2-core machine.
const START_BASE: Duration = Duration::from_secs(60);
const START_PER_CHAIN: Duration = Duration::from_millis(150);
/// How often start-up is polled: every poll reads the status of every chain.
const READY_POLL: Duration = Duration::from_secs(1);
/// How often the ledger is read while a crash is handed over: fine, it is what is measured.
const LEDGER_POLL: Duration = Duration::from_millis(20);
/// Deadline of a metrics scrape: a coordinator of 1000 chains exports tens of megabytes.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(120);
/// Wrong fail-overs listed one by one under the table, per row.
const WRONG_LISTED: usize = 10;
/// Deadline of each step of a crash trial.
const TRIAL_STEP: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setup {
    Single,
    Conductor,
    Cluster,
}

impl Setup {
    const ALL: [Setup; 3] = [Self::Single, Self::Conductor, Self::Cluster];

    fn as_str(self) -> &'static str {
        match self {
            Self::Single => "single",
            Self::Conductor => "conductor",
            Self::Cluster => "cluster",
        }
    }

    fn coordinators(self) -> usize {
        if self == Self::Cluster { 3 } else { 1 }
    }
}

#[derive(Debug, Clone)]
struct Options {
    sizes: Vec<usize>,
    setups: Vec<Setup>,
    seconds: u64,
    crashes: usize,
    warmup_seconds: u64,
    op_sim: PathBuf,
}

fn parse_options(mut args: impl Iterator<Item = String>) -> anyhow::Result<Options> {
    let mut options = Options {
        sizes: vec![10, 100, 300, 1000],
        setups: Setup::ALL.to_vec(),
        seconds: 20,
        crashes: 5,
        warmup_seconds: 5,
        op_sim: std::env::var_os("OP_SIM_BIN")
            .map_or_else(|| Path::new(BINARY).with_file_name("op-sim"), PathBuf::from),
    };
    while let Some(flag) = args.next() {
        // `cargo bench` passes `--bench` to harness-less benches.
        if flag == "--bench" {
            continue;
        }
        let value = args.next().with_context(|| format!("{flag} needs a value"))?;
        let number =
            |text: &str| text.trim().parse::<u64>().with_context(|| format!("{flag}: bad number {text:?}"));
        match flag.as_str() {
            "--sizes" => {
                options.sizes = value
                    .split(',')
                    .map(|size| Ok(usize::try_from(number(size)?)?))
                    .collect::<anyhow::Result<_>>()?
            }
            "--setups" => {
                options.setups = value
                    .split(',')
                    .map(|name| {
                        Setup::ALL.into_iter().find(|setup| setup.as_str() == name.trim()).with_context(
                            || format!("--setups: unknown {name:?}; expected single, conductor, cluster"),
                        )
                    })
                    .collect::<anyhow::Result<_>>()?
            }
            "--seconds" => options.seconds = number(&value)?,
            "--crashes" => options.crashes = usize::try_from(number(&value)?)?,
            "--warmup-seconds" => options.warmup_seconds = number(&value)?,
            other => bail!(
                "unknown flag {other:?}; expected --sizes, --setups, --seconds, --crashes, --warmup-seconds"
            ),
        }
    }
    if options.seconds == 0 || options.sizes.contains(&0) {
        bail!("--seconds and every --sizes entry must be positive");
    }
    if options.setups.contains(&Setup::Single) && !options.op_sim.is_file() {
        bail!(
            "{} not found: run `cargo build --release -p op-sim` first (or set OP_SIM_BIN)",
            options.op_sim.display()
        );
    }
    Ok(options)
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some(SIM_CHILD) {
        return sim_child(&args.skip(1).collect::<Vec<_>>());
    }
    let options = parse_options(args)?;
    // One thread (the bench should take little of the machine it measures), rows as local tasks.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(tokio::task::LocalSet::new().run_until(run(options)))
}

/// `scale sim-child CHAINS CONTROL_ADDR CONDUCTOR_ADDRS CONFIG_FILE`: what `op-sim run --chains
/// CHAINS --shared-port 127.0.0.1:0 --control CONTROL_ADDR --write-config CONFIG_FILE` does, with
/// every node committing to a conductor (node i of a chain to the i-th address, modulo).
fn sim_child(args: &[String]) -> anyhow::Result<()> {
    let [chains, control, conductors, config_file] = args else {
        bail!("usage: scale {SIM_CHILD} CHAINS CONTROL_ADDR CONDUCTOR_ADDR[,..] CONFIG_FILE");
    };
    let chains: usize = chains.parse().context("CHAINS")?;
    let control: SocketAddr = control.parse().context("CONTROL_ADDR")?;
    let conductors: Vec<SocketAddr> =
        conductors.split(',').map(str::parse).collect::<Result<_, _>>().context("CONDUCTOR_ADDR")?;
    tracing_subscriber::fmt().with_env_filter("warn").with_writer(std::io::stderr).init();
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(async move {
        let mut config = SimConfig::uniform(chains, NODES, BLOCK_TIME_MS).with_conductors(&conductors);
        config.routing = Routing::SharedPort(SocketAddr::from(([127, 0, 0, 1], 0)));
        let listener = tokio::net::TcpListener::bind(control).await.context("bind the control API")?;
        let sim = Arc::new(Simulator::start(config).await?);
        sim.serve_control(listener);
        std::fs::write(config_file, sim.coordinator_config()).context("write the coordinator config")?;
        // Runs until the bench kills it.
        std::future::pending::<anyhow::Result<()>>().await
    })
}

async fn run(options: Options) -> anyhow::Result<()> {
    let ticks = clock_ticks();
    let load_start = load_average();
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    eprintln!(
        "scale: sizes {:?}, setups {:?}, window {} s, {} crashes, {cpus} CPUs, load average {load_start}",
        options.sizes,
        options.setups.iter().map(|setup| setup.as_str()).collect::<Vec<_>>(),
        options.seconds,
        options.crashes
    );
    let options = Arc::new(options);
    let mut rows = Vec::new();
    for &chains in &options.sizes {
        for &setup in &options.setups {
            eprintln!("{} chains, {} ...", chains, setup.as_str());
            // A failed wait panics with what it last saw; the row's processes die with the task,
            // and the next row runs.
            let row = tokio::task::spawn_local(measure_row(options.clone(), setup, chains, ticks)).await;
            let row = row.unwrap_or_else(|join| Row::failed(setup, chains, panic_text(join)));
            eprintln!("  {}", row.line());
            rows.push(row);
        }
    }
    print_table(&rows);
    println!("\nLoad average (1/5/15 min): {load_start} at start, {} at end; {cpus} CPUs.", load_average());
    Ok(())
}

fn panic_text(join: tokio::task::JoinError) -> String {
    match join.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|text| (*text).to_owned()))
            .unwrap_or_else(|| "panicked".into()),
        Err(join) => join.to_string(),
    }
}

/// One row of the table.
#[derive(Debug, Default)]
struct Row {
    setup: Option<Setup>,
    chains: usize,
    startup_s: f64,
    /// Not every chain was ready at the start-up deadline; the row measured what there was.
    startup_incomplete: bool,
    load_1m: String,
    /// The acting coordinator's cores, and all coordinators' together.
    leader_cores: f64,
    all_cores: f64,
    leader_peak_mib: f64,
    all_peak_mib: f64,
    sim_cores: f64,
    probe_calls_per_s: f64,
    probe_p99_ms: Option<f64>,
    missed_slots: u64,
    wrong_at_startup: usize,
    wrong_after: usize,
    failover_ms: Option<Percentiles>,
    /// Crashes measured, of those asked.
    failovers: usize,
    failovers_asked: usize,
    commits_per_s: Option<f64>,
    commit_p99_ms: Option<f64>,
    commit_round_trip_p99_ms: Option<u64>,
    /// What the table cannot show (wrong fail-overs one by one, a change of acting replica).
    notes: Vec<String>,
    error: Option<String>,
}

impl Row {
    fn failed(setup: Setup, chains: usize, error: String) -> Self {
        Self { setup: Some(setup), chains, error: Some(error), ..Self::default() }
    }

    fn cells(&self) -> Vec<String> {
        let setup = self.setup.map_or("?", Setup::as_str).to_owned();
        if let Some(error) = &self.error {
            let first_line = error.lines().next().unwrap_or_default();
            return vec![setup, self.chains.to_string(), format!("FAILED: {first_line}")];
        }
        let cluster = self.setup == Some(Setup::Cluster);
        let pair = |leader: String, all: String| if cluster { format!("{leader} / {all}") } else { leader };
        let ms = |value: Option<f64>| value.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"));
        vec![
            setup,
            self.chains.to_string(),
            format!("{}{:.0}", if self.startup_incomplete { "> " } else { "" }, self.startup_s),
            pair(format!("{:.2}", self.leader_cores), format!("{:.2}", self.all_cores)),
            pair(format!("{:.0}", self.leader_peak_mib), format!("{:.0}", self.all_peak_mib)),
            format!("{:.2}", self.sim_cores),
            format!("{:.0}", self.probe_calls_per_s),
            ms(self.probe_p99_ms),
            self.missed_slots.to_string(),
            format!("{} / {}", self.wrong_at_startup, self.wrong_after),
            self.failover_ms.map_or_else(
                || format!("- ({})", self.failovers),
                |p| format!("{} / {} ({})", p.p50, p.p99, self.failovers),
            ),
            self.commits_per_s.map_or_else(|| "-".to_owned(), |rate| format!("{rate:.0}")),
            match (self.commit_p99_ms, self.commit_round_trip_p99_ms) {
                (None, None) => "-".to_owned(),
                (coordinator, op_node) => format!(
                    "{} / {}",
                    ms(coordinator),
                    op_node.map_or_else(|| "-".to_owned(), |v| v.to_string())
                ),
            },
            self.load_1m.clone(),
        ]
    }

    fn line(&self) -> String {
        self.cells().join(" | ")
    }
}

fn print_table(rows: &[Row]) {
    println!(
        "\n| setup | chains | start-up s | coordinator cores (cluster: leader / all) | coordinator RSS peak MiB \
         (cluster: leader / all) | op-sim cores | probe calls/s | probe p99 ms | missed slots | wrong fail-overs \
         (start-up / after) | fail-over ms p50 / p99 (n) | commits/s | commit p99 ms (coordinator / op-node) | load 1m |"
    );
    println!("|:---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        println!("| {} |", row.cells().join(" | "));
    }
    for row in rows {
        let setup = row.setup.map_or("?", Setup::as_str);
        // A failed wait's message ends with log tails, already on stderr: the table keeps its
        // head (what was awaited and last observed).
        let error = row.error.as_ref().map(|error| error.lines().take(8).collect::<Vec<_>>().join("\n  "));
        for note in row.notes.iter().chain(&error) {
            println!("\n- {} chains, {setup}: {}", row.chains, note.replace('\n', "\n  "));
        }
    }
}

/// The simulator's child process and its control API.
struct SimProcess {
    child: LoggedChild,
    pid: String,
    control: HttpClient,
}

impl SimProcess {
    /// Starts op-sim (observe mode), or this executable as the simulator whose nodes commit to
    /// `conductors`; returns it once it serves every node and has written `[chains.*]` blocks of a
    /// coordinator config, with that text.
    async fn start(options: &Options, chains: usize, conductors: &[String], dir: &Path) -> (Self, String) {
        let control_addr = free_addr();
        let config_file = dir.join("chains.toml");
        let mut command = if conductors.is_empty() {
            let mut command = hermetic(&options.op_sim, &["OP_SIM_"]);
            command
                .args(["run", "--chains", &chains.to_string(), "--nodes", &NODES.to_string()])
                .args(["--block-time-ms", &BLOCK_TIME_MS.to_string(), "--shared-port", "127.0.0.1:0"])
                .args(["--control", &control_addr, "--quiet", "--write-config"])
                .arg(&config_file)
                .env("RUST_LOG", "warn");
            command
        } else {
            let mut command = std::process::Command::new(std::env::current_exe().expect("this executable"));
            command
                .args([SIM_CHILD, &chains.to_string(), &control_addr, &conductors.join(",")])
                .arg(&config_file);
            command
        };
        let log = dir.join("op-sim.log");
        let child = LoggedChild::spawn(&mut command, &log);
        let pid = child.id().to_string();
        let control = HttpClientBuilder::default()
            .request_timeout(CONTROL_TIMEOUT)
            .max_response_size(u32::MAX)
            .build(format!("http://{control_addr}"))
            .expect("control client");
        let mut sim = Self { child, pid, control };
        let nodes = chains * NODES;
        let text = wait_for("op-sim to list every node and write the coordinator config")
            .timeout(START_BASE + START_PER_CHAIN * chains as u32)
            .poll(Duration::from_millis(200))
            .until_or(
                async || {
                    if let Some(status) = sim.child.exited() {
                        panic!("the simulator exited ({status}):\n{}", sim.child.log_tail(20));
                    }
                    let listed = match sim.control.nodes().await {
                        Ok(listed) => listed.len(),
                        Err(err) => return (None, format!("sim_nodes: {err}")),
                    };
                    let text = std::fs::read_to_string(&config_file).unwrap_or_default();
                    // Each node's block ends with its priority: the file is whole once all are there.
                    let written = text.lines().filter(|line| line.starts_with("priority = ")).count();
                    let done = listed == nodes && written == nodes;
                    (
                        done.then_some(text),
                        format!("{listed} of {nodes} nodes listed, {written} in the config"),
                    )
                },
                || tail(&log, 20),
            )
            .await;
        (sim, text)
    }
}

/// One coordinator process as the bench measures it.
struct Member {
    pid: String,
    admin: HttpClient,
    metrics: SocketAddr,
}

/// The coordinator processes of a row (one, or three replicas); killed on drop.
struct Coordinators {
    members: Vec<Member>,
    _single: Option<LoggedChild>,
    _replicas: Vec<ReplicaProcess>,
}

impl Coordinators {
    /// Writes the config (defaults, op-sim's chains, listeners) and starts the processes.
    fn start(setup: Setup, chains_toml: &str, conductors: &[String], dir: &Path) -> Self {
        let config = dir.join("coordinator.toml");
        let mut text = format!("data_dir = {:?}\n", dir.join("data").display().to_string());
        if setup == Setup::Conductor {
            let _ = writeln!(text, "[conductor]\nlisten = \"{}\"", conductors[0]);
        }
        text.push_str(chains_toml);
        let metrics: Vec<String> = (0..setup.coordinators()).map(|_| free_addr()).collect();
        let parse = |addr: &str| addr.parse::<SocketAddr>().expect("a free_addr is an address");
        if setup != Setup::Cluster {
            std::fs::write(&config, text).expect("write the coordinator config");
            let rpc = free_addr();
            let log = dir.join("coordinator.log");
            let mut command = hermetic(BINARY, &["OP_COORDINATOR_"]);
            command
                .arg("run")
                .arg("--config")
                .arg(&config)
                .args(["--rpc-listen", &rpc, "--metrics-listen", &metrics[0]])
                .env("OP_COORDINATOR_LOG_LEVEL", LOG_LEVEL);
            let child = LoggedChild::spawn(&mut command, &log);
            let member = Member {
                pid: child.id().to_string(),
                admin: admin_client_with_timeout(&rpc, ADMIN_TIMEOUT),
                metrics: parse(&metrics[0]),
            };
            return Self { members: vec![member], _single: Some(child), _replicas: Vec::new() };
        }
        let mut replicas: Vec<ReplicaProcess> =
            (1..=3).map(|id| ReplicaProcess::new(BINARY, id, config.clone(), dir)).collect();
        text.push_str("\n[cluster]\nid = 1\n");
        for (replica, conductor) in replicas.iter().zip(conductors) {
            let _ = writeln!(
                text,
                "[[cluster.replicas]]\nid = {}\nraft_addr = \"{}\"\napi_addr = \"{}\"\nconductor_addr = \"{conductor}\"\n",
                replica.id, replica.raft_addr, replica.api_addr
            );
        }
        std::fs::write(&config, text).expect("write the coordinator config");
        let mut members = Vec::new();
        for ((replica, conductor), metrics) in replicas.iter_mut().zip(conductors).zip(&metrics) {
            replica.log_level = LOG_LEVEL.to_owned();
            replica.extra_args = vec!["--metrics-listen".into(), metrics.clone()];
            // conductor.listen is one key for the whole file: each replica gets its own by env.
            let mut command = replica.command();
            command.env("OP_COORDINATOR_CONDUCTOR__LISTEN", conductor);
            let child = LoggedChild::spawn(&mut command, &replica.log);
            members.push(Member {
                pid: child.id().to_string(),
                admin: admin_client_with_timeout(&replica.api_addr, ADMIN_TIMEOUT),
                metrics: parse(metrics),
            });
            replica.child = Some(child);
        }
        Self { members, _single: None, _replicas: replicas }
    }

    /// The member acting on the sequencers (the confirmed Raft leader; the only one alone), or
    /// what each replica said.
    async fn acting(&self) -> Result<usize, String> {
        if self.members.len() == 1 {
            return Ok(0);
        }
        let mut seen = Vec::new();
        for (index, member) in self.members.iter().enumerate() {
            match member.admin.cluster_membership().await {
                Ok(info) if info.acting => return Ok(index),
                Ok(info) => seen.push(format!("replica {}: leader {:?}", index + 1, info.leader)),
                Err(err) => seen.push(format!("replica {}: {err}", index + 1)),
            }
        }
        Err(format!("no replica acts ({})", seen.join("; ")))
    }

    /// One scrape of every member: when it was sent, and what it said.
    async fn scrape(&self) -> Vec<(Instant, Exposition)> {
        let mut scrapes = Vec::new();
        for member in &self.members {
            let at = Instant::now();
            let text = scrape_metrics_within(member.metrics, SCRAPE_TIMEOUT).await;
            scrapes.push((at, Exposition::parse(&text).expect("a scrape in the Prometheus text format")));
        }
        scrapes
    }

    fn samples(&self) -> Vec<ProcSample> {
        self.members.iter().map(|member| sample_proc(&member.pid).expect("a coordinator's /proc")).collect()
    }
}

/// Where a ledger entry was read: before the window, in it, or during the crashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    StartUp,
    Window,
    Crashes,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Self::StartUp => "start-up",
            Self::Window => "window",
            Self::Crashes => "crashes",
        }
    }
}

/// The ledger read incrementally, folded into what the row reports.
struct LedgerTail {
    control: HttpClient,
    /// Index of the next entry to read.
    next: u64,
    stage: Stage,
    /// Producer of each chain's latest block.
    producers: HashMap<String, String>,
    /// Each change of a chain's producing node.
    changes: Vec<ProducerChange>,
    /// op-node's commit round trips (ms) of the blocks read in the window.
    commit_round_trips_ms: Vec<u64>,
}

impl LedgerTail {
    fn new(control: HttpClient) -> Self {
        Self {
            control,
            next: 0,
            stage: Stage::StartUp,
            producers: HashMap::new(),
            changes: Vec::new(),
            commit_round_trips_ms: Vec::new(),
        }
    }

    /// Reads the entries added since the last read and notes what they show.
    async fn read(&mut self) -> Result<Vec<LedgerEntry>, String> {
        let entries =
            self.control.ledger(Some(self.next)).await.map_err(|err| format!("sim_ledger: {err}"))?;
        self.next += entries.len() as u64;
        for entry in &entries {
            let LedgerEntry::Block { chain, producer, t_ms, commit_sent_ms, .. } = entry else { continue };
            if let Some(from) = self.producers.insert(chain.clone(), producer.clone())
                && from != *producer
            {
                let (chain, to) = (chain.clone(), producer.clone());
                self.changes.push(ProducerChange { stage: self.stage, chain, from, to, t_ms: *t_ms });
            }
            if let (Stage::Window, Some(sent)) = (self.stage, commit_sent_ms) {
                self.commit_round_trips_ms.push(t_ms.saturating_sub(*sent));
            }
        }
        Ok(entries)
    }

    /// Reads the ledger every [`LEDGER_POLL`], keeping the entries of `chain` in `entries`, until
    /// `found` finds what it looks for in them, or [`TRIAL_STEP`] passes (the error says what it
    /// observed last).
    async fn wait_for_chain<T>(
        &mut self,
        what: &str,
        chain: &str,
        entries: &mut Vec<LedgerEntry>,
        mut found: impl FnMut(&[LedgerEntry]) -> (Option<T>, String),
    ) -> Result<T, String> {
        wait_for(what)
            .timeout(TRIAL_STEP)
            .poll(LEDGER_POLL)
            .try_until(async || match self.read().await {
                Ok(read) => {
                    entries.extend(read.into_iter().filter(|entry| entry.chain() == chain));
                    found(entries)
                }
                Err(err) => (None, err),
            })
            .await
    }

    /// Producer changes on chains outside `faulted`.
    fn wrong_failovers(&self, faulted: &BTreeSet<String>) -> Vec<&ProducerChange> {
        self.changes.iter().filter(|change| !faulted.contains(&change.chain)).collect()
    }
}

/// A block by another node than the chain's previous block (ledger ground truth).
#[derive(Debug)]
struct ProducerChange {
    /// When the bench read it.
    stage: Stage,
    chain: String,
    from: String,
    to: String,
    /// The new producer's first block, in the ledger's clock (ms since op-sim started).
    t_ms: u64,
}

fn chain_name(index: usize, chains: usize) -> String {
    if chains == 1 { "devnet".to_owned() } else { format!("chain-{index}") }
}

/// The acting coordinator, and the chains that are not ready, each with why: a chain is ready
/// when the acting coordinator's status shows a steady leader that is its only active node and
/// sealed a block in the last two block times (the newest block of any chain being "now").
async fn not_ready(
    sim: &SimProcess,
    coordinators: &Coordinators,
) -> Result<(usize, Vec<(String, String)>), String> {
    let leader = coordinators.acting().await?;
    let statuses =
        coordinators.members[leader].admin.status(None).await.map_err(|err| format!("status: {err}"))?;
    let nodes = sim.control.nodes().await.map_err(|err| format!("sim_nodes: {err}"))?;
    let invariants = sim.control.invariants().await.map_err(|err| format!("sim_invariants: {err}"))?;
    let mut active: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for node in nodes.iter().filter(|node| node.active) {
        active.entry(node.chain.as_str()).or_default().push(node.name.as_str());
    }
    let newest_ms = invariants.iter().filter_map(|chain| chain.last_block_ms).max().unwrap_or(0);
    let statuses: HashMap<&str, &ChainStatus> =
        statuses.iter().map(|status| (status.chain.as_str(), status)).collect();
    let mut problems = Vec::new();
    for chain in &invariants {
        let name = chain.chain.clone();
        let actives = active.get(name.as_str()).cloned().unwrap_or_default();
        let Some(status) = statuses.get(name.as_str()) else {
            problems.push((name, "not in the coordinator's status".to_owned()));
            continue;
        };
        let idle_ms = chain.last_block_ms.map_or(newest_ms, |last| newest_ms.saturating_sub(last));
        let leader = status.leader.as_deref();
        if status.phase != "steady"
            || leader.is_none()
            || actives != [leader.unwrap_or_default()]
            || idle_ms > 2 * BLOCK_TIME_MS
        {
            let problem = format!(
                "phase {}, leader {}, active {actives:?}, last block {idle_ms} ms before the newest",
                status.phase,
                leader.unwrap_or("none")
            );
            problems.push((name, problem));
        }
    }
    Ok((leader, problems))
}

async fn measure_row(options: Arc<Options>, setup: Setup, chains: usize, ticks: f64) -> Row {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("scale-{}-{chains}", setup.as_str()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the row's directory");
    let mut row = Row { setup: Some(setup), chains, ..Row::default() };
    let started = Instant::now();
    let (mut run, ready) = Run::start(&options, setup, chains, &dir).await;
    row.startup_s = started.elapsed().as_secs_f64();
    eprintln!("  started in {:.1} s (logs in {})", row.startup_s, dir.display());
    if let Err(timed_out) = ready {
        eprintln!("  start-up incomplete, measuring anyway: {timed_out}");
        row.startup_incomplete = true;
        row.notes.push(format!("start-up incomplete (logs in {}): {timed_out}", dir.display()));
    }
    tokio::time::sleep(Duration::from_secs(options.warmup_seconds)).await;
    run.window(&mut row, options.seconds, ticks).await;
    let started = Instant::now();
    row.failovers_asked = options.crashes.min(chains);
    let faulted = run.crashes(&mut row).await;
    eprintln!("  {} crashes in {:.1} s", row.failovers, started.elapsed().as_secs_f64());
    let wrong = run.ledger.wrong_failovers(&faulted);
    row.wrong_at_startup = wrong.iter().filter(|change| change.stage == Stage::StartUp).count();
    row.wrong_after = wrong.len() - row.wrong_at_startup;
    // The first few one by one (ledger time: ms since op-sim started).
    row.notes.extend(wrong.iter().take(WRONG_LISTED).map(|change| {
        let ProducerChange { stage, chain, from, to, t_ms } = change;
        format!("wrong fail-over ({}): {chain} {from} -> {to} at {t_ms} ms", stage.as_str())
    }));
    if wrong.len() > WRONG_LISTED {
        row.notes.push(format!("... and {} more wrong fail-overs", wrong.len() - WRONG_LISTED));
    }
    row
}

/// The processes of a row and the ledger read so far.
struct Run {
    sim: SimProcess,
    coordinators: Coordinators,
    ledger: LedgerTail,
    /// The acting coordinator once every chain was ready (0 alone).
    leader: usize,
}

impl Run {
    /// Starts op-sim and the coordinator(s); returns once every chain is ready (see
    /// [`not_ready`]), or at the deadline with why not: the row then measures what there is.
    async fn start(options: &Options, setup: Setup, chains: usize, dir: &Path) -> (Self, Result<(), String>) {
        let conductors: Vec<String> = match setup {
            Setup::Single => Vec::new(),
            Setup::Conductor | Setup::Cluster => (0..setup.coordinators()).map(|_| free_addr()).collect(),
        };
        let (sim, chains_toml) = SimProcess::start(options, chains, &conductors, dir).await;
        let coordinators = Coordinators::start(setup, &chains_toml, &conductors, dir);
        let mut ledger = LedgerTail::new(sim.control.clone());
        let what = "every chain to have a steady leader that is its only active node and sealed a block in \
                    the last 2 block times";
        let ready = wait_for(what)
            .timeout(START_BASE + START_PER_CHAIN * chains as u32)
            .poll(READY_POLL)
            .try_until(async || {
                // Read as it grows, so the window's start does not read a start-up's worth.
                if let Err(err) = ledger.read().await {
                    return (None, err);
                }
                match not_ready(&sim, &coordinators).await {
                    Ok((leader, problems)) if problems.is_empty() => (Some(leader), String::new()),
                    Ok((_, problems)) => {
                        let some: Vec<String> = problems
                            .iter()
                            .take(5)
                            .map(|(chain, problem)| format!("{chain}: {problem}"))
                            .collect();
                        (
                            None,
                            format!(
                                "{} of {chains} chains not ready, e.g.\n{}",
                                problems.len(),
                                some.join("\n")
                            ),
                        )
                    }
                    Err(err) => (None, err),
                }
            })
            .await;
        let leader = match &ready {
            Ok(leader) => *leader,
            Err(_) => coordinators.acting().await.unwrap_or(0),
        };
        (Self { sim, coordinators, ledger, leader }, ready.map(|_| ()))
    }

    /// The measured window: every process sampled at its two ends, between two scrapes of every
    /// coordinator and two `sim_invariants`.
    async fn window(&mut self, row: &mut Row, seconds: u64, ticks: f64) {
        let (sim, coordinators) = (&self.sim, &self.coordinators);
        self.ledger.read().await.expect("the ledger before the window");
        self.ledger.stage = Stage::Window;
        match coordinators.acting().await {
            Ok(now) if now != self.leader => {
                row.notes.push(format!(
                    "the acting replica changed from {} to {now_id}",
                    self.leader + 1,
                    now_id = now + 1
                ));
                self.leader = now;
            }
            Ok(_) => {}
            Err(err) => row.notes.push(format!(
                "at the window's start {err}: replica {} counts as the leader",
                self.leader + 1
            )),
        }
        let invariants_before = sim.control.invariants().await.expect("sim_invariants");
        let scrapes_before = coordinators.scrape().await;
        row.load_1m = load_average().split_whitespace().next().unwrap_or("?").to_owned();
        let (sim_before, before) = (sample_proc(&sim.pid).expect("op-sim's /proc"), coordinators.samples());
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        let (sim_after, after) = (sample_proc(&sim.pid).expect("op-sim's /proc"), coordinators.samples());
        let scrapes_after = coordinators.scrape().await;
        let invariants_after = sim.control.invariants().await.expect("sim_invariants");
        self.ledger.read().await.expect("the ledger of the window");

        row.sim_cores = cores(&sim_before, &sim_after, ticks);
        let member_cores: Vec<f64> =
            before.iter().zip(&after).map(|(from, to)| cores(from, to, ticks)).collect();
        (row.leader_cores, row.all_cores) = (member_cores[self.leader], member_cores.iter().sum());
        let peaks_mib: Vec<f64> = after.iter().map(|sample| sample.peak_rss_kib as f64 / 1024.0).collect();
        (row.leader_peak_mib, row.all_peak_mib) = (peaks_mib[self.leader], peaks_mib.iter().sum());
        let missed = |report: &[ChainInvariants]| report.iter().map(|chain| chain.missed_slots).sum::<u64>();
        row.missed_slots = missed(&invariants_after).saturating_sub(missed(&invariants_before));
        let window = MetricsWindow { before: &scrapes_before, after: &scrapes_after };
        row.probe_calls_per_s = window.rate("op_coordinator_probe_duration_seconds_count", &[]);
        row.probe_p99_ms = window.p99_ms("op_coordinator_probe_duration_seconds");
        if row.setup != Some(Setup::Single) {
            row.commits_per_s =
                Some(window.rate("op_coordinator_conductor_commits_total", &[("result", "accepted")]));
            row.commit_p99_ms = window.p99_ms("op_coordinator_conductor_commit_duration_seconds");
            row.commit_round_trip_p99_ms = Percentiles::of(&self.ledger.commit_round_trips_ms).map(|p| p.p99);
        }
    }

    /// `failovers_asked` leader crashes, one after another, on ready chains spread over the range (see
    /// [`not_ready`]), each landing at another point of its slot; returns the chains faulted.
    async fn crashes(&mut self, row: &mut Row) -> BTreeSet<String> {
        self.ledger.stage = Stage::Crashes;
        let not_ready: BTreeSet<String> = match not_ready(&self.sim, &self.coordinators).await {
            Ok((_, problems)) => problems.into_iter().map(|(chain, _)| chain).collect(),
            Err(err) => {
                row.notes.push(format!("no crash: which chains are ready is unknown ({err})"));
                return BTreeSet::new();
            }
        };
        let ready: Vec<String> = (0..row.chains)
            .map(|index| chain_name(index, row.chains))
            .filter(|chain| !not_ready.contains(chain))
            .collect();
        let trials = row.failovers_asked.min(ready.len());
        if trials < row.failovers_asked {
            row.notes.push(format!("{} chains ready for a crash, {trials} crashes", ready.len()));
        }
        let mut faulted = BTreeSet::new();
        let mut failover_ms = Vec::new();
        for trial in 0..trials {
            let chain = &ready[trial * ready.len() / trials];
            faulted.insert(chain.clone());
            let phase_ms = BLOCK_TIME_MS * (2 * trial as u64 + 1) / (2 * trials as u64);
            match self.crash_leader(chain, phase_ms).await {
                Ok(ms) => failover_ms.push(ms),
                Err(err) => row.notes.push(format!("crash on {chain}: {err}")),
            }
        }
        row.failovers = failover_ms.len();
        row.failover_ms = Percentiles::of(&failover_ms);
        faulted
    }

    /// Crashes the leader of `chain` `phase_ms` after one of its blocks, waits for another node to
    /// seal, heals it and waits for the chain to settle; returns the fail-over time (the gap in
    /// the ledger minus the block time), or the wait that timed out.
    async fn crash_leader(&mut self, chain: &str, phase_ms: u64) -> Result<u64, String> {
        let Self { sim, coordinators, ledger, leader } = self;
        let admin = &coordinators.members[*leader].admin;
        let mut entries = Vec::new();
        let what = format!("{chain}'s leader to seal a block before the crash");
        let crashed = ledger
            .wait_for_chain(&what, chain, &mut entries, |entries| {
                let sealed = entries.iter().rev().find_map(|entry| match entry {
                    LedgerEntry::Block { producer, .. } => Some(producer.clone()),
                    _ => None,
                });
                (sealed, format!("{} entries of {chain} read", entries.len()))
            })
            .await?;
        tokio::time::sleep(Duration::from_millis(phase_ms)).await;
        let node = format!("{chain}/{crashed}");
        let params = Some(fault_params(FaultKind::Crash, false));
        let crash = sim.control.fault(node.clone(), FaultKind::Crash, params).await;
        crash.map_err(|err| format!("sim_fault crash {node}: {err}"))?;
        let what = format!("another node of {chain} to seal after {crashed} crashed");
        let gap = ledger
            .wait_for_chain(&what, chain, &mut entries, |entries| {
                let fault_at_ms = entries.iter().find_map(|entry| match entry {
                    LedgerEntry::Fault { node, t_ms, .. } if *node == crashed => Some(*t_ms),
                    _ => None,
                });
                let gap = fault_at_ms.and_then(|at| handover_gap(entries, &crashed, at));
                (gap, format!("fault recorded at {fault_at_ms:?} ms"))
            })
            .await;
        // Healed whatever happened, so a failed trial leaves no crashed node behind.
        let heal = sim.control.heal(node.clone(), Some(FaultKind::Crash)).await;
        let gap = gap?;
        heal.map_err(|err| format!("sim_heal {node}: {err}"))?;
        let what = format!(
            "{chain} to settle after the heal: one active node, the coordinator's steady leader, nobody fenced"
        );
        wait_for(&what)
            .timeout(TRIAL_STEP)
            .poll(Duration::from_millis(200))
            .try_until(async || {
                let status = admin.status(Some(chain.to_owned())).await.map_err(|err| err.to_string());
                let nodes = sim.control.nodes().await.map_err(|err| err.to_string());
                let (status, nodes) = match (status, nodes) {
                    (Ok(mut status), Ok(nodes)) if !status.is_empty() => (status.remove(0), nodes),
                    (status, nodes) => {
                        return (None, format!("status {status:?}, sim_nodes {:?}", nodes.map(|n| n.len())));
                    }
                };
                let active: Vec<String> = nodes
                    .into_iter()
                    .filter(|node| node.chain == chain && node.active)
                    .map(|node| node.name)
                    .collect();
                let fenced: Vec<&str> =
                    status.nodes.iter().filter(|node| node.fenced).map(|node| node.name.as_str()).collect();
                let one_leader = status.leader.as_ref().is_some_and(|leader| active == [leader.clone()]);
                let settled = status.phase == "steady" && fenced.is_empty() && one_leader;
                let observed = format!(
                    "phase {}, leader {:?}, active {active:?}, fenced {fenced:?}",
                    status.phase, status.leader
                );
                (settled.then_some(()), observed)
            })
            .await?;
        Ok(gap.downtime_ms().saturating_sub(BLOCK_TIME_MS))
    }
}

/// Two scrapes of every coordinator, around the window.
struct MetricsWindow<'a> {
    before: &'a [(Instant, Exposition)],
    after: &'a [(Instant, Exposition)],
}

impl MetricsWindow<'_> {
    /// The increase of `series` (summed over the samples with `labels`) per second, summed over
    /// the coordinators.
    fn rate(&self, series: &str, labels: &[(&str, &str)]) -> f64 {
        self.before
            .iter()
            .zip(self.after)
            .map(|((from_at, from), (to_at, to))| {
                let seconds = to_at.duration_since(*from_at).as_secs_f64().max(f64::EPSILON);
                (to.sum(series, labels) - from.sum(series, labels)) / seconds
            })
            .sum()
    }

    /// The p99 of histogram `family` (in seconds) over the window, in milliseconds.
    fn p99_ms(&self, family: &str) -> Option<f64> {
        self.histogram(family).quantile(0.99).map(|seconds| seconds * 1000.0)
    }

    /// The increase of histogram `family` over the window, every series and coordinator summed.
    fn histogram(&self, family: &str) -> Buckets {
        let mut buckets = Buckets::default();
        for ((_, from), (_, to)) in self.before.iter().zip(self.after) {
            buckets.add(to, family, 1.0);
            buckets.add(from, family, -1.0);
        }
        buckets
    }
}

/// Cumulative counts by upper bound (`le`) of a histogram.
#[derive(Debug, Default)]
struct Buckets(BTreeMap<String, f64>);

impl Buckets {
    /// Adds `sign` times every `family_bucket` sample of `scrape`.
    fn add(&mut self, scrape: &Exposition, family: &str, sign: f64) {
        for (labels, value) in scrape.samples.get(&format!("{family}_bucket")).into_iter().flatten() {
            if let Some(le) = labels.get("le") {
                *self.0.entry(le.clone()).or_default() += sign * value;
            }
        }
    }

    /// The `q` quantile, interpolated linearly within its bucket as Prometheus'
    /// `histogram_quantile` does (the highest finite bound when it falls in `+Inf`); `None`
    /// without samples.
    fn quantile(&self, q: f64) -> Option<f64> {
        let mut bounds: Vec<(f64, f64)> =
            self.0.iter().filter_map(|(le, count)| Some((le.parse::<f64>().ok()?, *count))).collect();
        bounds.sort_by(|a, b| a.0.total_cmp(&b.0));
        let total = bounds.last()?.1;
        if total <= 0.0 {
            return None;
        }
        let rank = q * total;
        let (mut lower, mut below) = (0.0, 0.0);
        for (upper, count) in bounds {
            if count >= rank {
                if upper.is_infinite() {
                    return Some(lower);
                }
                let share = if count > below { (rank - below) / (count - below) } else { 0.0 };
                return Some(lower + (upper - lower) * share);
            }
            (lower, below) = (upper, count);
        }
        None
    }
}
