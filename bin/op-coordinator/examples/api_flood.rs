//! The read flood of issue 14 against a real `op-coordinator run` process, with its memory.
//!
//! Starts a simulated 3-node chain in this process and the coordinator binary as a child, then
//! sends one ~840 KB batch of `coordinator_events` calls, then 40 of them at once, then 40
//! batches of the largest size the limits let through (`rpc.max_batch_len` calls of
//! `coordinator_events` with the largest `limit`). Prints the child's resident memory (VmRSS)
//! before and after each step, its peak (VmHWM), and the size of the answers.
//!
//! ```sh
//! cargo build -p op-coordinator-cli && cargo run -p op-coordinator-cli --example api_flood
//! cargo run -p op-coordinator-cli --example api_flood -- --binary /path/to/an/older/op-coordinator
//! ```
//!
//! Figures, not assertions: `tests/api_limits.rs` asserts the limits' errors.

use op_sim::{SimConfig, Simulator};
use opc_test_support::free_addr;
use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// Calls' worth of JSON in the issue's batch.
const BATCH_BYTES: usize = 840 * 1024;
/// Batches sent at once.
const PARALLEL: usize = 40;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let binary = binary_path();
    let sim = Simulator::start(SimConfig::uniform(1, 3, 1000)).await?;
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("coordinator.toml");
    std::fs::write(&config, sim.coordinator_config())?;
    let rpc = free_addr();
    let mut child = Command::new(&binary)
        .arg("run")
        .arg("--config")
        .arg(&config)
        .args(["--rpc-listen", &rpc, "--metrics-listen", &free_addr()])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let result = flood(&rpc, &child).await;
    let _ = child.kill();
    let _ = child.wait();
    sim.shutdown();
    println!("binary: {}", binary.display());
    result
}

async fn flood(rpc: &str, child: &Child) -> anyhow::Result<()> {
    wait_until_serving(rpc).await?;
    // Pause and resume until the timeline holds as many events as in the issue's reproduction
    // (its 840 KB batch came back as 22 MB: about 2 KB, 9 events, per call).
    for _ in 0..4 {
        post(rpc, &call(0, "coordinator_stopElection", "[]")).await?;
        post(rpc, &call(0, "coordinator_startElection", "[]")).await?;
    }
    let timeline = post(rpc, &call(0, "coordinator_events", "[null,1000]")).await?;
    println!("events in the timeline: {}", timeline.matches("\"kind\"").count());
    let pid = child.id();
    println!("{:<44} {:>12} {:>10} {:>10}", "step", "answer bytes", "RSS MiB", "peak MiB");
    report(pid, "started", 0);

    let issue_batch = batch(BATCH_BYTES, "[null,100]");
    let answer = post(rpc, &issue_batch).await?;
    let calls = issue_batch.matches("coordinator_events").count();
    report(pid, &format!("one batch of {} KiB ({calls} calls)", issue_batch.len() / 1024), answer.len());
    let total = parallel(rpc, &issue_batch).await?;
    report(pid, &format!("{PARALLEL} such batches at once"), total);

    let largest_legal = batch_of(100, "[null,1000]");
    let total = parallel(rpc, &largest_legal).await?;
    report(pid, &format!("{PARALLEL} batches of 100 events calls (limit 1000)"), total);
    // Memory the allocator keeps after the flood, once the replies are gone.
    tokio::time::sleep(Duration::from_secs(2)).await;
    report(pid, "2 s after", 0);
    Ok(())
}

fn binary_path() -> PathBuf {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--binary"
            && let Some(path) = args.next()
        {
            return PathBuf::from(path);
        }
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/debug/op-coordinator")
}

fn call(id: usize, method: &str, params: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{params}}}"#)
}

/// A batch of `coordinator_events` calls of at least `bytes` bytes.
fn batch(bytes: usize, params: &str) -> String {
    let mut calls = Vec::new();
    let mut length = 2;
    while length < bytes {
        let one = call(calls.len(), "coordinator_events", params);
        length += one.len() + 1;
        calls.push(one);
    }
    format!("[{}]", calls.join(","))
}

fn batch_of(calls: usize, params: &str) -> String {
    let calls: Vec<String> = (0..calls).map(|id| call(id, "coordinator_events", params)).collect();
    format!("[{}]", calls.join(","))
}

/// `body` sent `PARALLEL` times at once; the total size of the answers.
async fn parallel(rpc: &str, body: &str) -> anyhow::Result<usize> {
    let tasks: Vec<_> = (0..PARALLEL)
        .map(|_| {
            let (rpc, body) = (rpc.to_owned(), body.to_owned());
            tokio::spawn(async move { post(&rpc, &body).await.map(|answer| answer.len()) })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await??;
    }
    Ok(total)
}

/// One POST on a fresh connection; the whole response, head included.
async fn post(rpc: &str, body: &str) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect(rpc).await?;
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {rpc}\r\nConnection: close\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

async fn wait_until_serving(rpc: &str) -> anyhow::Result<()> {
    for _ in 0..600 {
        if post(rpc, &call(0, "coordinator_status", "[]"))
            .await
            .is_ok_and(|answer| answer.contains("\"result\""))
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("the coordinator at {rpc} did not answer within 30 s")
}

/// One line of the table: the child's VmRSS and VmHWM now.
fn report(pid: u32, step: &str, answer_bytes: usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |key: &str| -> u64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key)?.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    println!(
        "{step:<44} {answer_bytes:>12} {:>10.1} {:>10.1}",
        kib("VmRSS:") as f64 / 1024.0,
        kib("VmHWM:") as f64 / 1024.0
    );
}
