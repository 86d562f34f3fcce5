//! Capacity benchmark: how many simulated nodes one `op-sim` process sustains at a given block time.
//!
//! For each size it starts the release `op-sim` binary as a real child process in shared-port mode,
//! waits until the control endpoint answers and every chain has sealed a block, warms up, then
//! measures the child's CPU time (`/proc/PID/stat`) and memory (`/proc/PID/status`) over two fixed
//! windows: an idle one (only the sequencers run) and a probed one, during which this process
//! polls every node like a coordinator would (op-node `optimism_syncStatus` and op-geth
//! `eth_getBlockByNumber("latest", false)` once per probe interval, over HTTP). It finally reads
//! `sim_invariants` and prints a markdown table.
//!
//! ```text
//! cargo bench -p op-sim --bench capacity
//! cargo bench -p op-sim --bench capacity -- --chains 300 --nodes 3 --seconds 30 --probe-interval-ms 1000
//! ```
//!
//! Cargo builds the `op-sim` binary with the bench profile (release) before running a bench, and
//! passes its path as `CARGO_BIN_EXE_op-sim`; `OP_SIM_BIN` overrides it.
//!
//! Flags (all optional):
//! - `--sizes 30,150,300,600,900`: total node counts to measure (each split into chains of
//!   `--nodes`); ignored when `--chains` is given.
//! - `--chains N`: measure one size, `N` chains.
//! - `--nodes M`: nodes per chain (default 3).
//! - `--seconds S`: probed measurement window (default 20).
//! - `--idle-seconds S`: idle measurement window before probing (default 8; 0 skips it).
//! - `--warmup-seconds S`: warm-up before each window (default 3).
//! - `--probe-interval-ms MS`: probe period per node (default 1000; 0 disables probing).
//! - `--block-time-ms MS`: block time (default 1000).

use anyhow::{Context as _, bail};
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use op_sim::api::{ChainInvariants, SimControlApiClient as _, SimNodeInfo};
use opc_test_support::{
    proc_stats::{clock_ticks, cores, sample_proc},
    wait_for,
};
use opc_wire::{
    BlockNumberOrTag,
    api::{EthApiClient as _, OptimismApiClient as _},
};
use std::{
    path::{Path, PathBuf},
    process::Stdio,
    sync::Arc,
    time::Duration,
};
use tokio::{
    io::{AsyncBufReadExt as _, BufReader},
    process::{Child, Command},
    sync::watch,
    task::JoinHandle,
    time::{Instant, MissedTickBehavior},
};

/// How long the child may take to print its control address.
const START_DEADLINE: Duration = Duration::from_secs(60);
/// How long the control endpoint may take to answer, and every chain to seal its first block.
const READY_DEADLINE: Duration = Duration::from_secs(30);
/// How often readiness is polled: often enough not to delay the run, rarely enough not to load
/// a simulator that is starting hundreds of nodes.
const READY_POLL: Duration = Duration::from_millis(50);
/// Timeout of one probe or control request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the child may take to exit after SIGINT before it is killed.
const EXIT_DEADLINE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
struct Options {
    binary: PathBuf,
    /// `(chains, nodes per chain)` per run.
    sizes: Vec<(usize, usize)>,
    seconds: u64,
    idle_seconds: u64,
    warmup_seconds: u64,
    probe_interval_ms: u64,
    block_time_ms: u64,
}

fn parse_options() -> anyhow::Result<Options> {
    let mut chains: Option<usize> = None;
    let mut nodes = 3usize;
    let mut totals: Vec<usize> = vec![30, 150, 300, 600, 900];
    let mut options = Options {
        binary: std::env::var_os("OP_SIM_BIN")
            .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_op-sim")), PathBuf::from),
        sizes: Vec::new(),
        seconds: 20,
        idle_seconds: 8,
        warmup_seconds: 3,
        probe_interval_ms: 1000,
        block_time_ms: 1000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        // `cargo bench` passes `--bench` to harness-less benches.
        if flag == "--bench" {
            continue;
        }
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        let number =
            |text: String| text.parse::<u64>().with_context(|| format!("{flag}: bad number {text:?}"));
        match flag.as_str() {
            "--chains" => chains = Some(usize::try_from(number(value()?)?)?),
            "--nodes" => nodes = usize::try_from(number(value()?)?)?,
            "--sizes" => {
                totals = value()?
                    .split(',')
                    .map(|total| total.trim().parse::<usize>().with_context(|| format!("--sizes: {total:?}")))
                    .collect::<anyhow::Result<_>>()?;
            }
            "--seconds" => options.seconds = number(value()?)?,
            "--idle-seconds" => options.idle_seconds = number(value()?)?,
            "--warmup-seconds" => options.warmup_seconds = number(value()?)?,
            "--probe-interval-ms" => options.probe_interval_ms = number(value()?)?,
            "--block-time-ms" => options.block_time_ms = number(value()?)?,
            other => bail!(
                "unknown flag {other:?}; expected --chains, --nodes, --sizes, --seconds, --idle-seconds, \
                 --warmup-seconds, --probe-interval-ms, --block-time-ms"
            ),
        }
    }
    if nodes == 0 || options.seconds == 0 || options.block_time_ms == 0 {
        bail!("--nodes, --seconds and --block-time-ms must be positive");
    }
    options.sizes = match chains {
        Some(chains) => vec![(chains.max(1), nodes)],
        None => totals.into_iter().map(|total| ((total / nodes).max(1), nodes)).collect(),
    };
    Ok(options)
}

/// CPU use over a window sampled every second.
#[derive(Debug, Default, Clone, Copy)]
struct CpuWindow {
    avg_cores: f64,
    peak_cores: f64,
    rss_mib: f64,
    /// RSS growth over the window, MiB per minute.
    rss_growth_mib_per_min: f64,
    /// The bench process itself (probe client), average cores.
    bench_cores: f64,
}

/// Samples `pid` (and this process) every second for `seconds`.
async fn measure(pid: &str, seconds: u64, ticks: f64) -> anyhow::Result<CpuWindow> {
    let first = sample_proc(pid)?;
    let bench_first = sample_proc("self")?;
    let mut previous = first;
    let mut peak: f64 = 0.0;
    let mut interval = tokio::time::interval_at(first.at + Duration::from_secs(1), Duration::from_secs(1));
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    for _ in 0..seconds {
        interval.tick().await;
        let sample = sample_proc(pid)?;
        peak = peak.max(cores(&previous, &sample, ticks));
        previous = sample;
    }
    let bench_last = sample_proc("self")?;
    let kib_to_mib = |kib: u64| kib as f64 / 1024.0;
    Ok(CpuWindow {
        avg_cores: cores(&first, &previous, ticks),
        peak_cores: peak,
        rss_mib: kib_to_mib(previous.rss_kib),
        rss_growth_mib_per_min: (kib_to_mib(previous.rss_kib) - kib_to_mib(first.rss_kib))
            / previous.at.duration_since(first.at).as_secs_f64().max(1.0)
            * 60.0,
        bench_cores: cores(&bench_first, &bench_last, ticks),
    })
}

/// One probe result.
#[derive(Debug, Clone, Copy)]
struct Probe {
    at: Instant,
    micros: u64,
    ok: bool,
}

/// Polls one node every `period` until `stop`, starting at `first`; returns every probe.
async fn probe_node(
    node: SimNodeInfo,
    first: Instant,
    period: Duration,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<Vec<Probe>> {
    let op_node = client(&node.op_node_url)?;
    let op_geth = client(&node.op_geth_url)?;
    let mut probes = Vec::new();
    let mut interval = tokio::time::interval_at(first, period);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => return Ok(probes),
            _ = interval.tick() => {}
        }
        let (status, header) = tokio::join!(
            timed(async { op_node.sync_status().await.is_ok_and(|status| status.unsafe_l2.number > 0) }),
            timed(async {
                op_geth
                    .block_by_number(BlockNumberOrTag::Latest, false)
                    .await
                    .is_ok_and(|header| header.is_some())
            }),
        );
        probes.push(status);
        probes.push(header);
    }
}

/// Runs one request and times it; the future says whether the reply was good.
async fn timed(request: impl Future<Output = bool>) -> Probe {
    let at = Instant::now();
    let ok = request.await;
    Probe { at, micros: u64::try_from(at.elapsed().as_micros()).unwrap_or(u64::MAX), ok }
}

fn client(url: &str) -> anyhow::Result<HttpClient> {
    HttpClientBuilder::default()
        .request_timeout(REQUEST_TIMEOUT)
        .build(url)
        .with_context(|| format!("client for {url}"))
}

/// One row of the result table.
#[derive(Debug, Clone, Default)]
struct Row {
    chains: usize,
    nodes: usize,
    startup_s: f64,
    idle: Option<CpuWindow>,
    probed: CpuWindow,
    blocks_sealed: u64,
    blocks_expected: u64,
    missed_slots: u64,
    max_gap_ms: u64,
    slow_chains: usize,
    unsafe_reorgs: usize,
    double_sequencing: usize,
    probes_per_s: f64,
    probe_p50_ms: Option<f64>,
    probe_p99_ms: Option<f64>,
    probe_max_ms: Option<f64>,
    probe_errors: usize,
    invariants_ms: f64,
}

impl Row {
    fn sustained(&self, block_time_ms: u64) -> bool {
        self.missed_slots == 0
            && self.max_gap_ms * 2 <= block_time_ms * 3
            && self.unsafe_reorgs == 0
            && self.double_sequencing == 0
            && self.blocks_sealed * 100 >= self.blocks_expected * 99
            && self.probe_errors == 0
    }
}

/// The running child and what is needed to stop it.
struct Sim {
    child: Child,
    pid: String,
    control: HttpClient,
    drain: JoinHandle<()>,
}

impl Sim {
    async fn start(options: &Options, chains: usize, nodes: usize, log: &Path) -> anyhow::Result<Self> {
        let log_file = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut child = Command::new(&options.binary)
            .args(["run", "--chains", &chains.to_string(), "--nodes", &nodes.to_string()])
            .args(["--block-time-ms", &options.block_time_ms.to_string()])
            .args(["--shared-port", "127.0.0.1:0", "--control", "127.0.0.1:0", "--quiet"])
            .env("RUST_LOG", std::env::var("OP_SIM_LOG").unwrap_or_else(|_| "warn".into()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| {
                format!(
                    "cannot start {} (build it with `cargo build --release -p op-sim`)",
                    options.binary.display()
                )
            })?;
        let pid = child.id().context("child exited at once")?.to_string();
        let stdout = child.stdout.take().context("no stdout pipe")?;
        let mut lines = BufReader::new(stdout).lines();
        // `control: http://127.0.0.1:PORT  (N nodes, ...)` is printed once the simulator runs.
        let control_url = tokio::time::timeout(START_DEADLINE, async {
            while let Some(line) = lines.next_line().await? {
                if let Some(rest) = line.strip_prefix("control: ") {
                    return anyhow::Ok(rest.split_whitespace().next().unwrap_or_default().to_owned());
                }
            }
            bail!("op-sim exited before printing its control address (see {})", log.display())
        })
        .await
        .context("op-sim did not print its control address in time")??;
        let drain = tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let control = client(&control_url)?;
        Ok(Self { child, pid, control, drain })
    }

    /// Polls until the control endpoint lists every node and every chain has sealed a block;
    /// panics (the child is killed on drop) with the last problem seen after [`READY_DEADLINE`].
    async fn wait_ready(&self, expected_nodes: usize) -> Vec<SimNodeInfo> {
        wait_for("op-sim to list every node and seal a block on every chain")
            .timeout(READY_DEADLINE)
            .poll(READY_POLL)
            .until(async || match self.control.nodes().await {
                Ok(nodes) => {
                    assert_eq!(nodes.len(), expected_nodes, "op-sim lists the wrong number of nodes");
                    match self.control.invariants().await {
                        Ok(chains) if chains.iter().all(|chain| chain.blocks_sealed > 0) => {
                            (Some(nodes), String::new())
                        }
                        Ok(chains) => {
                            let waiting = chains.iter().filter(|chain| chain.blocks_sealed == 0).count();
                            (None, format!("{waiting} chains have sealed no block yet"))
                        }
                        Err(err) => (None, format!("sim_invariants: {err}")),
                    }
                }
                Err(err) => (None, format!("sim_nodes: {err}")),
            })
            .await
    }

    /// SIGINT (graceful), then SIGKILL after a deadline; waits for the exit.
    async fn stop(mut self) -> anyhow::Result<()> {
        let interrupted = std::process::Command::new("kill")
            .args(["-INT", &self.pid])
            .status()
            .is_ok_and(|status| status.success());
        if !interrupted || tokio::time::timeout(EXIT_DEADLINE, self.child.wait()).await.is_err() {
            self.child.start_kill().context("killing op-sim")?;
        }
        self.child.wait().await.context("waiting for op-sim")?;
        self.drain.abort();
        Ok(())
    }
}

struct Totals {
    blocks: u64,
    missed_slots: u64,
}

fn totals(chains: &[ChainInvariants]) -> Totals {
    Totals {
        blocks: chains.iter().map(|chain| chain.blocks_sealed).sum(),
        missed_slots: chains.iter().map(|chain| chain.missed_slots).sum(),
    }
}

async fn run_size(options: &Options, chains: usize, nodes: usize, ticks: f64) -> anyhow::Result<Row> {
    let total = chains * nodes;
    let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("op-sim-capacity-{total}.log"));
    let started = Instant::now();
    let sim = Sim::start(options, chains, nodes, &log).await?;
    let result = measure_sim(options, &sim, chains, nodes, ticks, started).await;
    let stopped = sim.stop().await;
    let row = result.with_context(|| format!("{total} nodes (op-sim log: {})", log.display()))?;
    stopped?;
    Ok(row)
}

async fn measure_sim(
    options: &Options,
    sim: &Sim,
    chains: usize,
    nodes: usize,
    ticks: f64,
    started: Instant,
) -> anyhow::Result<Row> {
    let infos = sim.wait_ready(chains * nodes).await;
    let mut row = Row { chains, nodes, startup_s: started.elapsed().as_secs_f64(), ..Row::default() };
    let warmup = Duration::from_secs(options.warmup_seconds);
    tokio::time::sleep(warmup).await;

    let first = sim.control.invariants().await.context("sim_invariants")?;
    let first_at = Instant::now();
    if options.idle_seconds > 0 {
        row.idle = Some(measure(&sim.pid, options.idle_seconds, ticks).await?);
    }

    // Probe load: every node polled once per interval, the nodes' phases spread over the interval.
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut probers = Vec::new();
    if options.probe_interval_ms > 0 {
        let period = Duration::from_millis(options.probe_interval_ms);
        let base = Instant::now();
        let count = infos.len() as u32;
        for (index, node) in infos.into_iter().enumerate() {
            let offset = period * index as u32 / count.max(1);
            probers.push(tokio::spawn(probe_node(node, base + offset, period, stop_rx.clone())));
        }
        tokio::time::sleep(warmup).await;
    }
    let window_start = Instant::now();
    row.probed = measure(&sim.pid, options.seconds, ticks).await?;
    let window_end = Instant::now();
    let _ = stop_tx.send(true);
    let mut latencies = Vec::new();
    for prober in probers {
        for probe in prober.await.context("probe task")?? {
            if probe.at >= window_start && probe.at < window_end {
                if probe.ok {
                    latencies.push(probe.micros);
                } else {
                    row.probe_errors += 1;
                }
            }
        }
    }

    let asked = Instant::now();
    let last = sim.control.invariants().await.context("sim_invariants")?;
    row.invariants_ms = asked.elapsed().as_secs_f64() * 1000.0;
    let last_at = asked;
    let (before, after) = (totals(&first), totals(&last));
    row.blocks_sealed = after.blocks - before.blocks;
    let window_ms = last_at.duration_since(first_at).as_millis() as u64;
    // Every chain has at least this many slots in the window (chains seal in phase, so some
    // windows hold one more).
    row.blocks_expected = chains as u64 * (window_ms / options.block_time_ms);
    row.missed_slots = after.missed_slots;
    row.max_gap_ms = last.iter().map(|chain| chain.longest_gap_ms).max().unwrap_or(0);
    row.slow_chains =
        last.iter().filter(|chain| chain.longest_gap_ms * 2 > options.block_time_ms * 3).count();
    row.unsafe_reorgs = last.iter().map(|chain| chain.unsafe_reorgs.len()).sum();
    row.double_sequencing = last.iter().map(|chain| chain.double_sequencing.len()).sum();

    let window_s = window_end.duration_since(window_start).as_secs_f64();
    row.probes_per_s = (latencies.len() + row.probe_errors) as f64 / window_s;
    latencies.sort_unstable();
    let percentile = |p: f64| {
        (!latencies.is_empty()).then(|| {
            let rank = ((p * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len());
            latencies[rank - 1] as f64 / 1000.0
        })
    };
    row.probe_p50_ms = percentile(0.50);
    row.probe_p99_ms = percentile(0.99);
    row.probe_max_ms = percentile(1.0);
    Ok(row)
}

fn print_table(options: &Options, rows: &[Row]) {
    let ms = |value: Option<f64>| value.map_or_else(|| "-".to_owned(), |value| format!("{value:.1}"));
    println!(
        "| nodes | chains | CPU cores idle (avg) | CPU cores probed (avg / peak 1 s) | RSS MiB (growth MiB/min) | \
         blocks sealed / expected | missed slots | max gap ms | unsafe re-orgs | probes/s | probe p50 / p99 / max ms \
         | probe errors | bench client cores | sustained |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---|");
    for row in rows {
        let idle = row.idle.map_or_else(|| "-".to_owned(), |idle| format!("{:.3}", idle.avg_cores));
        println!(
            "| {} | {} | {} | {:.3} / {:.2} | {:.1} ({:+.1}) | {} / {} | {} | {} | {} | {:.0} | {} / {} / {} | {} | {:.2} | {} |",
            row.chains * row.nodes,
            row.chains,
            idle,
            row.probed.avg_cores,
            row.probed.peak_cores,
            row.probed.rss_mib,
            row.probed.rss_growth_mib_per_min,
            row.blocks_sealed,
            row.blocks_expected,
            row.missed_slots,
            row.max_gap_ms,
            row.unsafe_reorgs + row.double_sequencing,
            row.probes_per_s,
            ms(row.probe_p50_ms),
            ms(row.probe_p99_ms),
            ms(row.probe_max_ms),
            row.probe_errors,
            row.probed.bench_cores,
            if row.sustained(options.block_time_ms) { "yes" } else { "NO" },
        );
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let options = parse_options()?;
    if !options.binary.is_file() {
        bail!(
            "{} not found: run `cargo build --release -p op-sim` first (or set OP_SIM_BIN)",
            options.binary.display()
        );
    }
    let ticks = clock_ticks();
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    eprintln!(
        "op-sim capacity: {} ({} CPUs, CLK_TCK {ticks}), block time {} ms, windows: idle {} s, probed {} s \
         (probe every {} ms), warm-up {} s",
        options.binary.display(),
        cpus,
        options.block_time_ms,
        options.idle_seconds,
        options.seconds,
        options.probe_interval_ms,
        options.warmup_seconds,
    );
    let options = Arc::new(options);
    let mut rows = Vec::new();
    for &(chains, nodes) in &options.sizes {
        eprintln!("measuring {} nodes ({chains} chains of {nodes}) ...", chains * nodes);
        let row = run_size(&options, chains, nodes, ticks).await?;
        eprintln!(
            "  startup {:.1} s, idle {} cores, probed {:.3} cores, RSS {:.1} MiB, blocks {}/{}, missed {}, \
             max gap {} ms (chains over 1.5 block times: {}), probe p50/p99 {:?}/{:?} ms, errors {}, \
             sim_invariants took {:.1} ms",
            row.startup_s,
            row.idle.map_or_else(|| "-".to_owned(), |idle| format!("{:.3}", idle.avg_cores)),
            row.probed.avg_cores,
            row.probed.rss_mib,
            row.blocks_sealed,
            row.blocks_expected,
            row.missed_slots,
            row.max_gap_ms,
            row.slow_chains,
            row.probe_p50_ms,
            row.probe_p99_ms,
            row.probe_errors,
            row.invariants_ms,
        );
        rows.push(row);
    }
    print_table(&options, &rows);
    Ok(())
}
