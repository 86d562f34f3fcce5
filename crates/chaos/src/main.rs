//! `op-chaos`: seeded chaos runs of an op-sim chain plus the coordinator.
//!
//! Every seed gets a chain of 3-5 nodes with a 100-250 ms block time and a schedule of overlapping
//! faults (crashes, hangs, slowness, malformed replies, partitions, a leader cut off from the
//! coordinator, stalls, execution lag, sequencers started and stopped behind the coordinator's
//! back, coordinator restarts). Safety (no unsafe re-org, no double sequencing) and liveness
//! (production resumes within a bound) are checked continuously on the simulator's ground truth.
//! With `--replicas 3` the coordinator runs as a Raft cluster of replicas under replica faults
//! too, and at most one replica may act at any time. With `--conductor` every op-node commits each
//! block to the coordinator before publishing it, conductor episodes join the faults, and no block
//! may be published by a deposed leader or seen before it was committed.

use clap::Parser;
use op_chaos::runner::{RunOptions, SeedReport, run_seed};
use opc_wire::text::count;
use std::{collections::BTreeMap, process::ExitCode, sync::Arc, time::Duration};
use tokio::sync::Semaphore;

#[derive(Debug, Parser)]
#[command(
    name = "op-chaos",
    version,
    about = "Seeded chaos runs: op-sim chain + op-coordinator under overlapping faults"
)]
struct Cli {
    /// How many seeds to run.
    #[arg(long, default_value_t = 10)]
    seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 1)]
    first_seed: u64,
    /// Run only this seed, printing its schedule and timeline (what a violation report tells you to run).
    #[arg(long, value_name = "SEED")]
    reproduce: Option<u64>,
    /// Length of each run's fault phase in seconds.
    #[arg(long, default_value_t = 60)]
    duration_s: u64,
    /// Quiet tail after the fault phase, in seconds, in which the chain must recover.
    #[arg(long, default_value_t = 5)]
    tail_s: u64,
    /// Seeds run at once.
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    /// Override the seed's node count (3-5).
    #[arg(long)]
    nodes: Option<usize>,
    /// Override the seed's block time in ms (100-250).
    #[arg(long)]
    block_time_ms: Option<u64>,
    /// Longest acceptable gap between blocks once the chain could produce, in ms.
    #[arg(long, default_value_t = 5000)]
    liveness_bound_ms: u64,
    /// Write the whole ledger of every violating seed (every block: who sealed it, when) to
    /// DIR/seed-N.jsonl
    #[arg(long, value_name = "DIR")]
    ledger_dir: Option<std::path::PathBuf>,
    /// Print one line per seed as it finishes.
    #[arg(long)]
    verbose: bool,
    /// Coordinator replicas: 1 runs one coordinator alone (the default); 3 or 5 run a Raft
    /// cluster of replicas in one process, with replica crashes, partitions and lost majorities.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=7))]
    replicas: u64,
    /// Conductor mode: the nodes' op-nodes commit every block to the coordinator (each replica
    /// serves the conductor endpoint) before publishing it; adds the conductor episodes (a leader
    /// cut off both ways, slow and failing commit paths, a hung leader that seals on resuming,
    /// candidates behind the committed head) and the conductor invariants.
    #[arg(long)]
    conductor: bool,
}

/// The cargo features a seed must be reproduced with.
fn features() -> &'static str {
    match (cfg!(feature = "planted-bug"), cfg!(feature = "planted-bug-conductor")) {
        (true, true) => " --features planted-bug,planted-bug-conductor",
        (true, false) => " --features planted-bug",
        (false, true) => " --features planted-bug-conductor",
        (false, false) => "",
    }
}

fn repro_command(cli: &Cli, seed: u64) -> String {
    let mut command = format!(
        "cargo run --release -p op-chaos{} -- --reproduce {seed} --duration-s {}",
        features(),
        cli.duration_s
    );
    if let Some(nodes) = cli.nodes {
        command.push_str(&format!(" --nodes {nodes}"));
    }
    if let Some(block_time_ms) = cli.block_time_ms {
        command.push_str(&format!(" --block-time-ms {block_time_ms}"));
    }
    if cli.replicas > 1 {
        command.push_str(&format!(" --replicas {}", cli.replicas));
    }
    if cli.conductor {
        command.push_str(" --conductor");
    }
    command
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Replicas under partitions make openraft log every dropped heartbeat at error level: the
    // faults working as intended, not news.
    let default_filter = if cli.replicas > 1 { "error,openraft=off" } else { "error" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("OP_CHAOS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .init();
    let options = RunOptions {
        duration_ms: cli.duration_s * 1000,
        tail_ms: cli.tail_s * 1000,
        nodes: cli.nodes,
        block_time_ms: cli.block_time_ms,
        liveness_bound_ms: cli.liveness_bound_ms,
        ledger_dir: cli.ledger_dir.clone(),
        replicas: usize::try_from(cli.replicas).unwrap_or(1),
        conductor: cli.conductor,
    };
    let seeds: Vec<u64> = match cli.reproduce {
        Some(seed) => vec![seed],
        None => (cli.first_seed..cli.first_seed + cli.seeds).collect(),
    };
    if let Some(seed) = cli.reproduce {
        let (shape, schedule) = options.schedule(seed);
        println!(
            "seed {seed}: {}, {} ms blocks, gossip {}+{} ms, {}",
            count(shape.nodes as u64, "node"),
            shape.block_time_ms,
            shape.gossip_latency_ms,
            shape.gossip_jitter_ms,
            count(schedule.len() as u64, "step")
        );
        for step in &schedule {
            println!("  {:>6} ms  {}", step.at_ms, serde_json::to_string(&step.step).unwrap_or_default());
        }
    }
    if cfg!(feature = "planted-bug") {
        eprintln!("WARNING: built with the planted bug (catch-up skipped): violations are expected");
    }
    #[cfg(feature = "planted-bug-conductor")]
    {
        opc_cluster::fence::planted_bug::set_admit_any_node(true);
        eprintln!(
            "WARNING: built with the planted conductor bug (the fence admits a deposed leader's commits): \
             violations are expected with --conductor"
        );
    }
    println!(
        "op-chaos: {} seed(s) from {}, {} s each (+{} s tail), {} at a time",
        seeds.len(),
        seeds.first().copied().unwrap_or_default(),
        cli.duration_s,
        cli.tail_s,
        cli.jobs
    );
    if cli.replicas > 1 {
        println!("replica mode: {} coordinator replicas per seed", cli.replicas);
    }
    if cli.conductor {
        println!("conductor mode: every block is committed to the coordinator before it is published");
    }
    let permits = Arc::new(Semaphore::new(cli.jobs.max(1)));
    let options = Arc::new(options);
    let mut tasks = tokio::task::JoinSet::new();
    for seed in seeds {
        let permits = permits.clone();
        let options = options.clone();
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            // A seed that overruns its schedule by a minute means something hung: the coordinator,
            // the simulator or the runner. Report it as such instead of waiting forever.
            let limit =
                Duration::from_millis(options.duration_ms + options.tail_ms) + Duration::from_secs(60);
            match tokio::time::timeout(limit, run_seed(seed, &options)).await {
                Ok(report) => report,
                Err(_) => SeedReport::hung(seed, &options, limit),
            }
        });
    }
    let mut reports: Vec<SeedReport> = Vec::new();
    // Reported as they finish (seeds run in no particular order); the summary is sorted.
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(report) => {
                if cli.verbose || cli.reproduce.is_some() || !report.violations.is_empty() {
                    print_seed_line(&report, cli.conductor);
                }
                reports.push(report);
            }
            Err(err) => eprintln!("a seed's task failed: {err}"),
        }
    }
    reports.sort_by_key(|report| report.seed);
    print_summary(&cli, &reports);
    let failed = reports.iter().any(|report| !report.violations.is_empty());
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

fn print_seed_line(report: &SeedReport, conductor: bool) {
    let faults: u64 = report.faults.values().sum();
    // The single-coordinator line stays as it was: sweeps are compared line by line.
    let mut replicas = if report.replicas > 1 {
        format!(" {:>3} acting terms |", report.acting_terms)
    } else {
        String::new()
    };
    if conductor {
        replicas.push_str(&format!(
            " {:>3} refused commits | {:>3} replayed |",
            report.refused_commits, report.replayed_blocks
        ));
    }
    println!(
        "seed {:>4}: {} nodes {:>3} ms | {:>3} faults | {:>5} blocks | {:>3} leader changes | longest gap {:>5} ms | {:>3} missed slots |{replicas} {}",
        report.seed,
        report.shape.nodes,
        report.shape.block_time_ms,
        faults,
        report.blocks,
        report.leader_changes,
        report.longest_gap_ms,
        report.missed_slots,
        if report.violations.is_empty() {
            "ok".to_owned()
        } else {
            format!("{} VIOLATION(S)", report.violations.len())
        }
    );
}

fn print_summary(cli: &Cli, reports: &[SeedReport]) {
    let mut faults: BTreeMap<String, u64> = BTreeMap::new();
    for report in reports {
        for (kind, count) in &report.faults {
            *faults.entry(kind.clone()).or_default() += count;
        }
    }
    let failed: Vec<&SeedReport> = reports.iter().filter(|report| !report.violations.is_empty()).collect();
    println!();
    println!(
        "| seeds | violations | blocks | leader changes | injected overlaps | worst gap ms | missed slots |"
    );
    println!(
        "|------:|-----------:|-------:|---------------:|------------------:|-------------:|-------------:|"
    );
    println!(
        "| {} | {} | {} | {} | {} | {} | {} |",
        reports.len(),
        failed.len(),
        reports.iter().map(|r| r.blocks).sum::<u64>(),
        reports.iter().map(|r| r.leader_changes).sum::<u64>(),
        reports.iter().map(|r| r.injected_overlaps).sum::<u64>(),
        reports.iter().map(|r| r.longest_gap_ms).max().unwrap_or(0),
        reports.iter().map(|r| r.missed_slots).sum::<u64>(),
    );
    if cli.conductor {
        println!();
        println!(
            "conductor mode: {} refused (blocks dropped unpublished), {} first reached a node by replay",
            count(reports.iter().map(|r| r.refused_commits).sum::<u64>(), "commit"),
            count(reports.iter().map(|r| r.replayed_blocks).sum::<u64>(), "block")
        );
    }
    if cli.replicas > 1 {
        println!();
        println!(
            "replica mode: {}, {} in which a replica acted",
            count(cli.replicas, "replica"),
            count(reports.iter().map(|r| r.acting_terms).sum::<u64>(), "term")
        );
    }
    println!();
    println!(
        "faults injected: {}",
        faults.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
    );
    for report in &failed {
        println!();
        println!(
            "VIOLATION in seed {} ({}, {} ms blocks):",
            report.seed,
            count(report.shape.nodes as u64, "node"),
            report.shape.block_time_ms
        );
        for violation in &report.violations {
            println!("  - {violation}");
        }
        println!("  timeline:");
        for line in &report.timeline {
            println!("    {line}");
        }
        println!("  reproduce: {}", repro_command(cli, report.seed));
    }
    if failed.is_empty() {
        println!("no violations");
    }
}
