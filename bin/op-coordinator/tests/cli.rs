//! The real `op-coordinator` binary as an operator runs it: a config with many mistakes is one
//! report naming every key and exit code 2; `check-config` prints the effective TOML; `run`
//! against a simulated chain answers the admin API and exits 0 promptly on SIGTERM.

use op_coordinator::config::Config;
use op_sim::{SimConfig, Simulator};
use opc_test_support::{LoggedChild, PROCESS_WAIT, admin_client_with_timeout, free_addr, hermetic, text};
use opc_wire::coordinator::CoordinatorApiClient;
use std::{
    path::Path,
    process::{Command, Output},
    time::Duration,
};
use tokio::time::Instant;

const BINARY: &str = env!("CARGO_BIN_EXE_op-coordinator");

/// The binary with a hermetic environment: no `OP_COORDINATOR_*` variable from the caller leaks
/// into the config under test.
fn coordinator() -> Command {
    hermetic(BINARY, &["OP_COORDINATOR_"])
}

fn output_of(command: &mut Command) -> Output {
    command.output().expect("run op-coordinator")
}

fn write(dir: &Path, name: &str, contents: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write file");
    path
}

const MISTAKES: &str = r#"
data_dir = 5
unknown_top = 1

[rpc]
listen = "not-an-address"

[health]
interval_ms = 0
probe_timout_ms = 100
failure_threshold = -1

[failover]
catch_up_timeout_ms = "3s"

[inspection]
enabled = "yes"

[chains.main.sequencers.a]
op_node_url = "ftp://127.0.0.1:7545"
priority = "high"
"#;

/// Every key [`MISTAKES`] gets wrong, plus the misspelt environment variable the tests set.
const BAD_KEYS: [&str; 12] = [
    "data_dir",
    "unknown_top",
    "rpc.listen",
    "health.interval_ms",
    "health.probe_timout_ms",
    "health.failure_threshold",
    "failover.catch_up_timeout_ms",
    "inspection.enabled",
    "chains.main.sequencers.a.op_node_url",
    "chains.main.sequencers.a.op_geth_url",
    "chains.main.sequencers.a.priority",
    "OP_COORDINATOR_HEALTH__INTERVAL",
];

#[test]
fn a_config_with_many_mistakes_exits_2_and_names_every_bad_key_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write(dir.path(), "bad.toml", MISTAKES);
    for subcommand in ["run", "check-config"] {
        let output = output_of(
            coordinator()
                .arg(subcommand)
                .arg("--config")
                .arg(&config)
                .env("OP_COORDINATOR_HEALTH__INTERVAL", "50"),
        );
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{subcommand}: {stderr}");
        for key in BAD_KEYS {
            assert!(stderr.contains(key), "{subcommand}: {key} not named in:\n{stderr}");
        }
        assert!(stderr.contains("did you mean health.probe_timeout_ms"), "{subcommand}: {stderr}");
        assert!(stderr.contains(&config.display().to_string()), "{subcommand}: lines point at the file");
        assert!(text(&output.stdout).is_empty(), "{subcommand}: nothing on stdout");
    }
}

#[test]
fn a_missing_config_file_exits_2_naming_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("nope.toml");
    let output = output_of(coordinator().arg("check-config").arg("--config").arg(&missing));
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&missing.display().to_string()), "{stderr}");
}

#[test]
fn check_config_prints_the_effective_toml_with_env_and_flag_overrides() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write(
        dir.path(),
        "good.toml",
        r#"
[health]
interval_ms = 50

[chains.main.sequencers.a]
op_node_url = "http://127.0.0.1:7545"
op_geth_url = "http://127.0.0.1:8545"
priority = 3
"#,
    );
    let output = output_of(
        coordinator()
            .arg("check-config")
            .arg("--config")
            .arg(&config)
            .args(["--rpc-listen", "127.0.0.1:19762"])
            .env("OP_COORDINATOR_FAILOVER__RPC_TIMEOUT_MS", "700"),
    );
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));

    // Every key explicit, each layer applied: file, environment, flag, defaults.
    for line in [
        "interval_ms = 50",
        "rpc_timeout_ms = 700",
        "listen = \"127.0.0.1:19762\"",
        "probe_timeout_ms = 250",
        "candidate = true",
        "priority = 3",
    ] {
        assert!(stdout.contains(line), "{line:?} missing from:\n{stdout}");
    }
    // The output is a config that loads back to the same effective configuration.
    let printed = Config::from_toml_str(&stdout, Vec::<(String, String)>::new(), &[])
        .unwrap_or_else(|errors| panic!("printed config does not load: {errors}\n{stdout}"));
    let expected = Config::load(
        &config,
        vec![("OP_COORDINATOR_FAILOVER__RPC_TIMEOUT_MS".to_owned(), "700".to_owned())],
        &[("rpc.listen".to_owned(), "127.0.0.1:19762".to_owned())],
    )
    .expect("config loads");
    assert_eq!(printed, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_serves_the_admin_api_for_a_simulated_chain_and_exits_0_on_sigterm() {
    let sim = Simulator::start(SimConfig::uniform(1, 3, 100)).await.expect("simulator starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("data");
    let config = write(
        dir.path(),
        "coordinator.toml",
        &format!(
            "[health]\ninterval_ms = 20\nprobe_timeout_ms = 200\nunsafe_stall_ms = 600\n\n\
             [failover]\nconvergence_wait_ms = 300\n\n{}",
            sim.coordinator_config()
        ),
    );
    let stderr_path = dir.path().join("stderr.log");
    let (rpc_addr, metrics_addr) = (free_addr(), free_addr());
    let mut child = LoggedChild::spawn(
        coordinator()
            .arg("run")
            .arg("--config")
            .arg(&config)
            .args(["--rpc-listen", &rpc_addr])
            .args(["--metrics-listen", &metrics_addr])
            .arg("--data-dir")
            .arg(&data_dir),
        &stderr_path,
    );
    let logs = || std::fs::read_to_string(&stderr_path).unwrap_or_default();

    let admin = admin_client_with_timeout(&rpc_addr, Duration::from_secs(5));
    let deadline = Instant::now() + PROCESS_WAIT;
    loop {
        if let Ok(Some(leader)) = admin.get_active_sequencer(None).await {
            assert_eq!(leader, "seq-0", "the active sequencer is adopted");
            break;
        }
        if let Some(status) = child.exited() {
            panic!("op-coordinator exited early with {status}:\n{}", logs());
        }
        assert!(Instant::now() < deadline, "no leader reported within {PROCESS_WAIT:?}; logs:\n{}", logs());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sim.nodes().into_iter().filter(|node| node.active).count(), 1, "still one sequencer");

    let signalled = Instant::now();
    let kill = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(kill.success(), "kill -TERM failed");
    let status = child.exit_within(PROCESS_WAIT).await;
    let status =
        status.unwrap_or_else(|| panic!("still running {PROCESS_WAIT:?} after SIGTERM; logs:\n{}", logs()));
    assert!(status.success(), "exit status {status}; logs:\n{}", logs());
    assert!(signalled.elapsed() < Duration::from_secs(5), "took {:?} to exit", signalled.elapsed());
    assert!(data_dir.join("chain-devnet.json").is_file(), "the adoption was persisted in --data-dir");
    let logs = logs();
    assert!(logs.contains("shutting down"), "{logs}");
    for report in sim.invariants() {
        assert!(report.is_safe(), "{report:#?}");
    }
}
