//! The `op-sim run` binary: prints its endpoints, serves the control API, writes the coordinator
//! config, and reports the invariants when stopped with Ctrl-C.

mod common;

use anyhow::{Context as _, Result, bail, ensure};
use common::{DEADLINE, client};
use op_sim::api::SimControlApiClient;
use std::process::Stdio;
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, BufReader},
    process::Command,
};

#[tokio::test]
async fn op_sim_run_prints_endpoints_serves_control_writes_config_and_reports_on_ctrl_c() -> Result<()> {
    let config_path = std::env::temp_dir().join(format!("op-sim-test-{}.toml", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_op-sim"))
        .args(["run", "--nodes", "2", "--block-time-ms", "50", "--control", "127.0.0.1:0"])
        .arg("--write-config")
        .arg(&config_path)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("spawning op-sim")?;
    let pid = child.id().context("op-sim exited at once")?;
    let mut stdout = BufReader::new(child.stdout.take().context("no stdout")?).lines();

    // The endpoint table, then the control line.
    let mut table = Vec::new();
    let control_url = tokio::time::timeout(DEADLINE, async {
        while let Some(line) = stdout.next_line().await? {
            if let Some(rest) = line.strip_prefix("control: ") {
                let url = rest.split_whitespace().next().context("empty control line")?;
                return Ok::<_, anyhow::Error>(url.to_owned());
            }
            table.push(line);
        }
        bail!("op-sim closed stdout before printing the control URL; printed {table:?}")
    })
    .await
    .context("op-sim did not print its control URL in time")??;
    ensure!(table.len() == 3 && table[0].starts_with("CHAIN"), "table {table:?}");
    ensure!(table[1].contains("seq-0") && table[1].contains("true"), "seq-0 row {:?}", table[1]);
    ensure!(table[2].contains("seq-1") && table[2].contains("false"), "seq-1 row {:?}", table[2]);

    let nodes = client(&control_url)?.nodes().await?;
    ensure!(nodes.len() == 2 && nodes[0].active && !nodes[1].active, "{nodes:?}");
    let written = std::fs::read_to_string(&config_path).context("--write-config file")?;
    let _ = std::fs::remove_file(&config_path);
    for node in &nodes {
        ensure!(table.iter().any(|row| row.contains(&node.op_node_url) && row.contains(&node.op_geth_url)));
        ensure!(written.contains(&format!("[chains.devnet.sequencers.{}]", node.name)), "{written}");
        ensure!(written.contains(&format!("op_node_url = \"{}\"", node.op_node_url)), "{written}");
        ensure!(written.contains(&format!("op_geth_url = \"{}\"", node.op_geth_url)), "{written}");
    }
    ensure!(written.contains("[chains.devnet]\nblock_time_ms = 50"), "{written}");

    // Ctrl-C: a clean exit with the invariant summary on stderr.
    let status = Command::new("kill").args(["-INT", &pid.to_string()]).status().await?;
    ensure!(status.success(), "kill -INT {pid} failed");
    let exit = tokio::time::timeout(DEADLINE, child.wait()).await.context("op-sim ignored Ctrl-C")??;
    let mut stderr = String::new();
    child.stderr.take().context("no stderr")?.read_to_string(&mut stderr).await?;
    ensure!(exit.success(), "op-sim exited with {exit}: {stderr}");
    ensure!(stderr.contains("devnet: ") && stderr.contains("0 unsafe re-orgs"), "stderr: {stderr}");
    Ok(())
}
