//! The real `op-coordinator` binary as an operator runs it: a config with many mistakes is one
//! report naming every key and exit code 2; `check-config` prints the effective TOML and says
//! whether the data_dir is usable; `run` against a simulated chain answers the admin API and exits
//! 0 promptly on SIGTERM, and refuses a data_dir that another instance holds, that cannot be used,
//! or whose state a newer release wrote.

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

/// A config of one chain whose nodes need not exist: what is tested fails before any probe.
fn unreachable_chain(data_dir: &Path) -> String {
    format!(
        "data_dir = {:?}\n[metrics]\nenabled = false\n\n[chains.main.sequencers.a]\n\
         op_node_url = \"http://127.0.0.1:9\"\nop_geth_url = \"http://127.0.0.1:19\"\n",
        data_dir.display().to_string()
    )
}

#[test]
fn check_config_says_what_the_data_dir_is_and_refuses_an_unusable_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let check = |data_dir: &Path| {
        let config = write(dir.path(), "c.toml", &unreachable_chain(data_dir));
        let output = output_of(coordinator().arg("check-config").arg("--config").arg(&config));
        (output.status.code(), text(&output.stderr))
    };
    let (code, stderr) = check(dir.path());
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("a writable directory"), "{stderr}");

    let missing = dir.path().join("new/data");
    let (code, stderr) = check(&missing);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("does not exist yet; run creates it"), "{stderr}");
    assert!(!missing.exists(), "check-config creates nothing");

    let file = write(dir.path(), "a-file", "");
    let (code, stderr) = check(&file);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("is a file, not a directory"), "{stderr}");

    let (code, stderr) = check(Path::new("/proc/1/nope"));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("data_dir /proc/1/nope does not exist and cannot be created in /proc/1"),
        "{stderr}"
    );
}

#[test]
fn run_calls_an_unusable_data_dir_a_directory_and_prints_the_os_error_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = write(dir.path(), "a-file", "");
    let config = write(dir.path(), "c.toml", &unreachable_chain(&file.join("data")));
    let output = output_of(
        coordinator().arg("run").arg("--config").arg(&config).args(["--rpc-listen", "127.0.0.1:0"]),
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let error = stderr.lines().find(|line| line.starts_with("op-coordinator: ")).unwrap_or_default();
    assert!(error.contains("data_dir ") && !error.contains("state file"), "{stderr}");
    assert!(error.contains("is a file, not a directory"), "{stderr}");

    let config = write(dir.path(), "c.toml", &unreachable_chain(Path::new("/proc/1/nope")));
    let output = output_of(
        coordinator().arg("run").arg("--config").arg(&config).args(["--rpc-listen", "127.0.0.1:0"]),
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("data_dir /proc/1/nope does not exist and cannot be created in /proc/1: "),
        "{stderr}"
    );
    assert_eq!(stderr.matches("os error").count(), 1, "the OS error once: {stderr}");
}

#[test]
fn run_refuses_a_state_file_from_a_newer_version_with_its_own_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("data");
    std::fs::create_dir(&data_dir).expect("data dir");
    let state = r#"{"version": 99, "chain": "main", "state": {"leader": null, "epoch": 0,
        "phase": {"phase": "discovering"}, "stopped_hash": null, "paused": false, "fenced": []}}"#;
    write(&data_dir, "chain-main.json", state);
    let config = write(dir.path(), "c.toml", &unreachable_chain(&data_dir));
    let output = output_of(
        coordinator().arg("run").arg("--config").arg(&config).args(["--rpc-listen", "127.0.0.1:0"]),
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "was written by a newer op-coordinator (version 99, this build reads 1): upgrade, or restore"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("corrupt"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_on_one_data_dir_exits_at_once_naming_the_lock_file_and_the_first_ones_pid() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("data");
    let rpc_addr = free_addr();
    let config = write(dir.path(), "c.toml", &unreachable_chain(&data_dir));
    let start = || {
        let mut command = coordinator();
        command.arg("run").arg("--config").arg(&config).args(["--rpc-listen", &rpc_addr]);
        command
    };
    let first_log = dir.path().join("first.log");
    let mut first = LoggedChild::spawn(&mut start(), &first_log);
    let lock = data_dir.join("LOCK");
    let pid = first.id().to_string();
    let deadline = Instant::now() + PROCESS_WAIT;
    while std::fs::read_to_string(&lock).unwrap_or_default().trim() != pid {
        assert!(first.exited().is_none(), "the first exited:\n{}", first.log_text());
        assert!(Instant::now() < deadline, "no PID in {}:\n{}", lock.display(), first.log_text());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Same config, so the same ports too: the data dir is what it must be told about.
    let second = output_of(&mut start());
    let stderr = text(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&lock.display().to_string()), "names the lock file: {stderr}");
    assert!(stderr.contains(&format!("PID {pid}")), "names the holder: {stderr}");
    assert!(first.exited().is_none(), "the first still runs:\n{}", first.log_text());
    let kill = Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
    assert!(kill.success(), "kill -TERM failed");
    assert!(first.exit_within(PROCESS_WAIT).await.is_some_and(|status| status.success()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_raises_its_open_file_limit_to_the_hard_limit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("data");
    let config = write(dir.path(), "c.toml", &unreachable_chain(&data_dir));
    // Started with a soft limit of 64, as from a shell or unit that set one that low.
    let mut command = hermetic("sh", &["OP_COORDINATOR_"]);
    command
        .args(["-c", "ulimit -Sn 64 && exec \"$0\" \"$@\"", BINARY, "run", "--config"])
        .arg(&config)
        .args(["--rpc-listen", &free_addr()]);
    let log = dir.path().join("run.log");
    let mut child = LoggedChild::spawn(&mut command, &log);
    let pid = child.id().to_string();
    let lock = data_dir.join("LOCK");
    let deadline = Instant::now() + PROCESS_WAIT;
    while std::fs::read_to_string(&lock).unwrap_or_default().trim() != pid {
        assert!(child.exited().is_none(), "it exited:\n{}", child.log_text());
        assert!(Instant::now() < deadline, "no PID in {}:\n{}", lock.display(), child.log_text());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("its limits");
    let open_files =
        limits.lines().find(|line| line.starts_with("Max open files")).expect("an open-files line");
    let fields: Vec<&str> = open_files.split_whitespace().collect();
    let (soft, hard) = (fields[3], fields[4]);
    assert_ne!(soft, "64", "the soft limit was raised: {open_files}");
    assert_eq!(soft, hard, "to the hard limit: {open_files}");
    let kill = Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
    assert!(kill.success(), "kill -TERM failed");
    assert!(child.exit_within(PROCESS_WAIT).await.is_some_and(|status| status.success()));
}

// ------------------------------------------------------------------------------------------------
// ctl: errors that say what to do, pause versus transfer
// ------------------------------------------------------------------------------------------------

/// `op-coordinator ctl --rpc http://ADDR ARGS` with no `OP_COORDINATOR_*` from the caller:
/// (exit code, stdout, stderr).
async fn ctl(rpc: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let mut command = tokio::process::Command::new(BINARY);
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("OP_COORDINATOR_")) {
        command.env_remove(name);
    }
    let output = command.arg("ctl").args(["--rpc", rpc]).args(args).output().await.expect("run ctl");
    (output.status.code(), text(&output.stdout), text(&output.stderr))
}

fn rpc_url(harness: &opc_test_support::Harness) -> String {
    format!("http://{}", harness.coordinator.as_ref().expect("coordinator running").rpc_addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_errors_name_the_url_tried_and_what_to_do_never_a_debug_dump() {
    let nobody = format!("http://{}", free_addr());
    let (code, _, stderr) = ctl(&nobody, &["status"]).await;
    assert_eq!(code, Some(3), "{stderr}");
    assert_eq!(
        stderr.trim(),
        format!("cannot reach {nobody}: connection refused (is op-coordinator running? check --rpc)")
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let secret_file = write(dir.path(), "jwt.hex", &"5a".repeat(32));
    let wrong_file = write(dir.path(), "wrong.hex", &"11".repeat(32));
    let harness = opc_test_support::Harness::start(&format!(
        "[rpc]\njwt_secret_file = {:?}\n",
        secret_file.display().to_string()
    ))
    .await;
    harness.wait_for_leader("seq-0", PROCESS_WAIT).await;
    let rpc = rpc_url(&harness);

    let (code, _, stderr) = ctl(&rpc, &["pause"]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        stderr.trim(),
        format!(
            "unauthorized: this coordinator requires a JWT; pass --jwt-secret-file or set \
             OP_COORDINATOR_JWT_SECRET_FILE (at {rpc})"
        )
    );
    let wrong = wrong_file.display().to_string();
    let (code, _, stderr) = ctl(&rpc, &["--jwt-secret-file", &wrong, "pause"]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.starts_with(&format!("unauthorized: {rpc} refused the JWT")), "{stderr}");

    // The server's own message, whole and plain.
    let secret = secret_file.display().to_string();
    let (code, _, stderr) = ctl(&rpc, &["--jwt-secret-file", &secret, "transfer", "--to", "seq-9"]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        stderr.trim(),
        "refused: no sequencer named \"seq-9\" in this chain; its sequencers are seq-0, seq-1, seq-2"
    );
    for debug in ["ErrorObject", "Call(", "Transport(", "Some(", "rejected `"] {
        assert!(!stderr.contains(debug), "{stderr}");
    }
    harness.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_transfer_works_while_paused_and_pause_and_resume_say_when_nothing_changes() {
    let harness = opc_test_support::Harness::start("").await;
    harness.wait_for_leader("seq-0", PROCESS_WAIT).await;
    harness
        .wait_for("every node healthy", PROCESS_WAIT, |status, _| {
            status.nodes.iter().all(|node| node.healthy)
        })
        .await;
    let rpc = rpc_url(&harness);

    let (code, stdout, stderr) = ctl(&rpc, &["pause"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.starts_with("automation paused"), "{stdout}");
    let (code, stdout, stderr) = ctl(&rpc, &["pause"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.trim(), "already paused: automation stays off until `op-coordinator ctl resume`");

    // Pause stops automation, not the operator: the hand-over runs while paused.
    let (code, stdout, stderr) = ctl(&rpc, &["transfer", "--to", "seq-2"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.trim(), "seq-2 is the active sequencer");
    let status = harness.status().await;
    assert_eq!((status.leader.as_deref(), status.paused), (Some("seq-2"), true), "{status:#?}");
    assert_eq!(harness.active_nodes(), ["seq-2"], "ground truth");

    let (code, stdout, stderr) = ctl(&rpc, &["resume"]).await;
    assert_eq!((code, stdout.trim()), (Some(0), "automation resumed"), "{stderr}");
    let (code, stdout, stderr) = ctl(&rpc, &["resume"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.trim(), "not paused: automation is running (`op-coordinator ctl pause` stops it)");
    harness.wait_for_blocks(3, PROCESS_WAIT).await;
    harness.assert_safe();
}
