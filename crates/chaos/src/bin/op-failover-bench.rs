//! `op-failover-bench`: how long a fail-over takes, measured on the simulator's ground truth.
//!
//! For every block time × fault × coordinator profile it runs K fail-overs, each on a fresh 3-node
//! op-sim chain with its own in-process coordinator (see `op_chaos::harness` for one trial and
//! the definition of every figure), and prints one markdown table per profile. The profiles are
//! all our engine: with our defaults, in conductor mode (the nodes commit every block to the
//! coordinator, which then needs no liveness window), and with the timings op-coordinator and
//! op-conductor recommend, so the tables show what the timings alone cost.
//!
//! ```sh
//! cargo run --release -p op-chaos --bin op-failover-bench                  # the default matrix
//! cargo run --release -p op-chaos --bin op-failover-bench -- --profiles tuned --json tuned.json
//! ```

use clap::Parser;
use op_chaos::harness::{CellSummary, Percentiles, Profile, TrialOutcome, TrialSpec, run_trial};
use op_sim::api::FaultKind;
use opc_wire::EventKind;
use serde::Serialize;
use std::{
    fmt::Write as _,
    process::ExitCode,
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::{sync::Semaphore, time::Instant};

#[derive(Debug, Parser)]
#[command(
    name = "op-failover-bench",
    version,
    about = "Fail-over time of the coordinator per block time, fault and settings, on op-sim ground truth"
)]
struct Cli {
    /// Fail-overs per block time × fault × profile [default: 5 for block times of 2 s and more,
    /// 10 below, which keeps the default run near 11-13 minutes on 2 cores].
    #[arg(long)]
    k: Option<usize>,
    /// Block times to measure, in ms.
    #[arg(long, value_delimiter = ',', default_value = "2000,1000,250")]
    block_times_ms: Vec<u64>,
    /// Faults injected on the leader: crash (both processes), hang (both, no seal on resume),
    /// stall; isolate also works (a correct coordinator must then NOT fail over).
    #[arg(long, value_delimiter = ',', default_value = "crash,hang,stall")]
    faults: Vec<FaultKind>,
    /// A hung leader seals at once when it resumes, as op-node does after SIGCONT (its slot timer
    /// fired while it was frozen). Without it, it waits one block time first, which gives an
    /// observing coordinator the time to stop it.
    #[arg(long)]
    seal_on_resume: bool,
    /// Coordinator settings: defaults, conductor (conductor mode, defaults), op-coordinator,
    /// op-conductor, tuned.
    #[arg(long, value_delimiter = ',', default_value = "defaults,conductor,op-coordinator,op-conductor")]
    profiles: Vec<Profile>,
    /// Chains (trials) run at once.
    #[arg(long, default_value_t = 3)]
    jobs: usize,
    /// First seed; trial i uses seed + i (gossip jitter and the fault's phase within a slot).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Extra coordinator setting on top of every profile, as `KEY=VALUE` with the config key path
    /// (e.g. `failover.chain_liveness_window_ms=2150`); repeatable. For exploring trade-offs.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_setting)]
    settings: Vec<(String, String)>,
    /// Also write every trial and every summary as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<std::path::PathBuf>,
}

impl Cli {
    fn k_for(&self, block_time_ms: u64) -> usize {
        self.k.unwrap_or(if block_time_ms >= 2000 { 5 } else { 10 })
    }
}

/// Everything `--json` writes.
#[derive(Debug, Serialize)]
struct Report {
    command: String,
    cpus: usize,
    load_average_start: String,
    load_average_end: String,
    load_average_1m_max: f64,
    wall_seconds: u64,
    summaries: Vec<CellSummary>,
    trials: Vec<TrialOutcome>,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("OP_FAILOVER_BENCH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    // `cargo run` passes the binary's full path; the bare name is what a reader can rerun.
    let command = std::iter::once("op-failover-bench".to_owned())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let load_average_start = load_average();

    // A profile the coordinator's config check refuses at a block time is reported, not run.
    let mut refused = std::collections::BTreeMap::new();
    let mut specs = Vec::new();
    for profile in &cli.profiles {
        for block_time_ms in &cli.block_times_ms {
            if let Err(why) = profile.check(*block_time_ms, &cli.settings) {
                eprintln!("skipping {} at {block_time_ms} ms: {why}", profile.as_str());
                refused.insert((*profile, *block_time_ms), why);
                continue;
            }
            for fault in &cli.faults {
                for _ in 0..cli.k_for(*block_time_ms) {
                    let seed = cli.seed + specs.len() as u64;
                    specs.push(TrialSpec {
                        profile: *profile,
                        block_time_ms: *block_time_ms,
                        fault: *fault,
                        seed,
                        seal_on_resume: cli.seal_on_resume,
                    });
                }
            }
        }
    }
    // Longest trials first, so the parallel jobs finish close together.
    let mut queue = specs.clone();
    queue.sort_by_key(|spec| std::cmp::Reverse(spec.block_time_ms));
    eprintln!(
        "op-failover-bench: {} trials, {} at a time, {cpus} CPUs, load average {load_average_start}",
        queue.len(),
        cli.jobs.max(1)
    );

    let started = Instant::now();
    let load_max = Arc::new(Mutex::new(first_field(&load_average_start)));
    let sampler = {
        let load_max = load_max.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(10));
            loop {
                every.tick().await;
                let now = first_field(&load_average());
                if let Ok(mut max) = load_max.lock() {
                    *max = max.max(now);
                }
            }
        })
    };
    let extra: Arc<[(String, String)]> = cli.settings.clone().into();
    let permits = Arc::new(Semaphore::new(cli.jobs.max(1)));
    let total = queue.len();
    let done = Arc::new(Mutex::new(0usize));
    let mut tasks = Vec::with_capacity(total);
    for spec in queue {
        let permits = permits.clone();
        let done = done.clone();
        let extra = extra.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = permits.acquire_owned().await;
            // Every wait inside a trial has its own deadline; this catches a trial that hangs
            // anyway (a coordinator call with no deadline would be a finding in itself).
            let limit = Duration::from_secs(120) + Duration::from_millis(40 * spec.block_time_ms);
            let outcome = tokio::time::timeout(limit, run_trial(spec, &extra))
                .await
                .unwrap_or_else(|_| TrialOutcome::hung(spec, limit));
            let finished = done.lock().map(|mut done| {
                *done += 1;
                *done
            });
            eprintln!("[{}/{total}] {}", finished.unwrap_or_default(), progress_line(&outcome));
            outcome
        }));
    }
    let mut outcomes = Vec::with_capacity(total);
    for task in tasks {
        match task.await {
            Ok(outcome) => outcomes.push(outcome),
            Err(err) => eprintln!("a trial's task failed: {err}"),
        }
    }
    sampler.abort();
    let wall_seconds = started.elapsed().as_secs();
    let load_average_end = load_average();
    let load_average_1m_max =
        load_max.lock().map(|max| *max).unwrap_or_default().max(first_field(&load_average_end));

    let mut summaries = Vec::new();
    for profile in &cli.profiles {
        for block_time_ms in &cli.block_times_ms {
            for fault in &cli.faults {
                if let Some(why) = refused.get(&(*profile, *block_time_ms)) {
                    summaries.push(CellSummary::refused(*profile, *block_time_ms, *fault, why.clone()));
                    continue;
                }
                let cell: Vec<&TrialOutcome> = outcomes
                    .iter()
                    .filter(|o| {
                        o.spec.profile == *profile
                            && o.spec.block_time_ms == *block_time_ms
                            && o.spec.fault == *fault
                    })
                    .collect();
                summaries.push(CellSummary::of(*profile, *block_time_ms, *fault, &cell));
            }
        }
    }

    println!("{}", markdown(&cli, &summaries, &outcomes));
    println!(
        "Command: `{command}`  \nMachine: {cpus} CPUs; load average (1/5/15 min) at start {load_average_start}, \
         at end {load_average_end}, highest 1-min sample {load_average_1m_max:.2}; wall time {} min {} s.",
        wall_seconds / 60,
        wall_seconds % 60
    );
    let unsafe_total: u64 = summaries.iter().map(|s| s.unsafe_reorgs + s.double_sequencing).sum();
    if let Some(path) = &cli.json {
        let report = Report {
            command,
            cpus,
            load_average_start,
            load_average_end,
            load_average_1m_max,
            wall_seconds,
            summaries,
            trials: outcomes,
        };
        let written = serde_json::to_string_pretty(&report)
            .map_err(|err| err.to_string())
            .and_then(|json| std::fs::write(path, json).map_err(|err| err.to_string()));
        if let Err(err) = written {
            eprintln!("could not write {}: {err}", path.display());
            return ExitCode::FAILURE;
        }
    }
    if unsafe_total > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

/// One table per profile, then every trial that reported an error.
fn markdown(cli: &Cli, summaries: &[CellSummary], outcomes: &[TrialOutcome]) -> String {
    let mut out = String::new();
    for profile in &cli.profiles {
        let _ = writeln!(out, "\n#### {}\n", profile.label());
        let overrides = profile.overrides(1000);
        if !overrides.is_empty() {
            let keys: Vec<String> = cli
                .block_times_ms
                .iter()
                .map(|bt| {
                    let keys: Vec<String> = profile
                        .overrides(*bt)
                        .iter()
                        .map(|(key, value)| format!("`{key} = {value}`"))
                        .collect();
                    format!("{} ms blocks: {}", bt, keys.join(", "))
                })
                .collect();
            let _ = writeln!(out, "Settings over the defaults: {}.\n", dedup_if_same(&keys));
        }
        if !cli.settings.is_empty() {
            let keys: Vec<String> =
                cli.settings.iter().map(|(key, value)| format!("`{key} = {value}`")).collect();
            let _ = writeln!(out, "Extra settings (`--set`, winning over the above): {}.\n", keys.join(", "));
        }
        let _ = writeln!(
            out,
            "| block time | fault | fail-overs | detection ms p50 / p95 / p99 / max | downtime ms p50 / p95 / p99 / max \
             | missed slots mean / max | unsafe re-orgs | double sequencing | zombie blocks | unhealthy verdict ms p50 / max |"
        );
        let _ = writeln!(out, "|---:|:---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for summary in summaries.iter().filter(|s| s.profile == *profile) {
            if summary.refused.is_some() {
                let _ = writeln!(
                    out,
                    "| {} ms | {} | refused by the coordinator's config check (below) | – | – | – | – | – | – | – |",
                    summary.block_time_ms, summary.fault
                );
                continue;
            }
            let errors =
                if summary.errors > 0 { format!(" ({} err)", summary.errors) } else { String::new() };
            let missed = match (summary.missed_slots_mean, summary.missed_slots_max) {
                (Some(mean), Some(max)) => format!("{mean:.1} / {max}"),
                _ => "–".into(),
            };
            let verdict =
                summary.verdict_ms.map_or_else(|| "–".to_owned(), |p| format!("{} / {}", p.p50, p.max));
            let _ = writeln!(
                out,
                "| {} ms | {} | {}/{}{errors} | {} | {} | {missed} | {} | {} | {} | {verdict} |",
                summary.block_time_ms,
                summary.fault,
                summary.failed_over,
                summary.trials,
                percentiles(summary.detection_ms),
                percentiles(summary.downtime_ms),
                summary.unsafe_reorgs,
                summary.double_sequencing,
                summary.zombie_blocks,
            );
        }
    }
    let mut refused: Vec<String> = summaries
        .iter()
        .filter_map(|s| {
            Some(format!("{} at {} ms: {}", s.profile.as_str(), s.block_time_ms, s.refused.as_ref()?))
        })
        .collect();
    refused.dedup();
    if !refused.is_empty() {
        let _ = writeln!(out, "\nRefused configurations:\n");
        for line in refused {
            let _ = writeln!(out, "- {}", line.replace('\n', " "));
        }
    }
    let failed: Vec<&TrialOutcome> = outcomes.iter().filter(|o| o.error.is_some()).collect();
    if !failed.is_empty() {
        let _ = writeln!(out, "\nTrials with an error:\n");
        for outcome in failed {
            let _ = writeln!(out, "- {}", progress_line(outcome));
        }
    }
    out
}

fn percentiles(p: Option<Percentiles>) -> String {
    p.map_or_else(|| "–".to_owned(), |p| format!("{} / {} / {} / {}", p.p50, p.p95, p.p99, p.max))
}

/// "A ms blocks: x; B ms blocks: x" collapses to "x" when every block time has the same keys.
fn dedup_if_same(per_block_time: &[String]) -> String {
    let bodies: Vec<&str> = per_block_time
        .iter()
        .map(|line| line.split_once(": ").map_or(line.as_str(), |(_, body)| body))
        .collect();
    if bodies.windows(2).all(|pair| pair[0] == pair[1]) {
        bodies.first().copied().unwrap_or_default().to_owned()
    } else {
        per_block_time.join("; ")
    }
}

fn progress_line(outcome: &TrialOutcome) -> String {
    let ms = |value: Option<u64>| value.map_or_else(|| "–".to_owned(), |v| v.to_string());
    format!(
        "{} {} ms {} seed {}: {} → {}, phase {} ms, verdict {} ms, detection {} ms ({}), downtime {} ms, \
         missed {}, re-orgs {}, double {}, zombies {}{}",
        outcome.spec.profile.as_str(),
        outcome.spec.block_time_ms,
        outcome.spec.fault,
        outcome.spec.seed,
        outcome.old_leader.as_deref().unwrap_or("?"),
        outcome.new_leader.as_deref().unwrap_or("?"),
        ms(outcome.fault_phase_ms),
        ms(outcome.verdict_ms),
        ms(outcome.detection_ms),
        outcome.decision.as_ref().map_or("no decision event", EventKind::as_str),
        ms(outcome.downtime_ms),
        ms(outcome.missed_slots),
        outcome.unsafe_reorgs,
        outcome.double_sequencing,
        outcome.zombie_blocks,
        outcome.error.as_deref().map(|err| format!("; ERROR: {err}")).unwrap_or_default(),
    )
}

/// `/proc/loadavg`'s three averages, or "unknown".
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

fn first_field(load: &str) -> f64 {
    load.split_whitespace().next().and_then(|field| field.parse().ok()).unwrap_or_default()
}

/// `KEY=VALUE` of `--set`.
fn parse_setting(text: &str) -> Result<(String, String), String> {
    let (key, value) = text.split_once('=').ok_or_else(|| format!("{text:?} is not KEY=VALUE"))?;
    Ok((key.trim().to_owned(), value.trim().to_owned()))
}
