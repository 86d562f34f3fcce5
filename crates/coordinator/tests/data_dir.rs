//! The data directory as operators get it wrong (issue 14, items 5, 6 and 9), against a
//! coordinator watching a simulated chain: a second coordinator on one data dir is refused with
//! the lock file and the holder's PID, replicas of one cluster share a data dir through their own
//! subdirectories, a data dir that cannot be written makes the chain loudly not ready (status,
//! `/readyz`, metrics) until it heals, and the event timeline survives a restart.

use op_coordinator::{
    Listeners, StartError,
    config::Config,
    data_dir::{DataDirError, DataDirLock, LOCK_FILE},
    metrics as m, timeline,
};
use op_sim::{
    SimConfig, Simulator,
    api::{FaultKind, FaultParams},
};
use opc_test_support::{
    BLOCK_TIME_MS, FAST_SETTINGS, Harness, WAIT, admin_client, http_get, scrape_metrics, stopped_chain,
    wait_until,
};
use opc_wire::coordinator::CoordinatorApiClient;
use tokio::net::TcpListener;

/// The value of `series` (name and labels exactly as exported) in a `/metrics` body.
fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines().find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

/// Runs a coordinator from `config_text` on fresh listeners until the test ends, or until it fails.
async fn run_another(config_text: &str) -> Result<(), StartError> {
    let config = Config::from_toml_str(config_text, Vec::<(String, String)>::new(), &[])
        .unwrap_or_else(|errors| panic!("invalid test config: {errors}"));
    let rpc = TcpListener::bind("127.0.0.1:0").await.expect("bind rpc");
    let run = op_coordinator::run(
        config,
        Listeners { rpc, metrics: None, raft: None, conductor: None },
        std::future::pending(),
    );
    tokio::time::timeout(WAIT, run).await.expect("the second coordinator gives up at once")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_coordinator_on_one_data_dir_is_refused_naming_the_lock_and_pid_and_the_lock_is_free_after_shutdown()
 {
    let mut harness = Harness::start("").await;
    harness.wait_for_leader("seq-0", WAIT).await;

    let err = run_another(&harness.config_text).await.expect_err("a second coordinator on the same data_dir");
    let lock = harness.data_dir.path().join(LOCK_FILE);
    assert!(matches!(err, StartError::DataDir(DataDirError::Locked { .. })), "{err}");
    let message = err.to_string();
    assert!(message.contains(&lock.display().to_string()), "names the lock file: {message}");
    assert!(message.contains(&format!("PID {}", std::process::id())), "names the holder: {message}");
    harness.wait_for_leader("seq-0", WAIT).await;

    harness.stop_coordinator().await;
    drop(DataDirLock::acquire(harness.data_dir.path()).expect("the lock is free after a clean shutdown"));
    harness.restart_coordinator().await;
    harness.wait_for_leader("seq-0", WAIT).await;
    harness.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_of_one_cluster_share_a_data_dir_and_a_replica_started_twice_is_refused() {
    let sim = Simulator::start(stopped_chain()).await.expect("simulator starts");
    let data_dir = tempfile::tempdir().expect("temp dir");
    let (listeners, entries) = opc_test_support::replica_listeners(2).await;
    let text = format!(
        "data_dir = {:?}\n{}\n{FAST_SETTINGS}\n[cluster]\nid = 1\nheartbeat_interval_ms = 50\n\
         election_timeout_min_ms = 300\nelection_timeout_max_ms = 500\n{entries}",
        data_dir.path().display().to_string(),
        sim.coordinator_config()
    );
    let config_of = |id: u64| {
        Config::from_toml_str(&text, Vec::new(), &[("cluster.id".to_owned(), id.to_string())])
            .unwrap_or_else(|errors| panic!("invalid test config: {errors}"))
    };
    let mut replicas = Vec::new();
    for (id, raft, rpc) in listeners {
        let api = rpc.local_addr().expect("addr");
        let run = op_coordinator::run(
            config_of(id),
            Listeners { rpc, metrics: None, raft: Some(raft), conductor: None },
            std::future::pending(),
        );
        replicas.push((api, tokio::spawn(run)));
    }
    let admin = admin_client(replicas[0].0);
    wait_until("the two replicas to elect a Raft leader", WAIT, || async {
        admin.cluster_membership().await.ok().and_then(|info| info.leader)
    })
    .await;

    // Replica 1 started a second time, as a copy-pasted unit file would.
    let raft = TcpListener::bind("127.0.0.1:0").await.expect("bind raft");
    let rpc = TcpListener::bind("127.0.0.1:0").await.expect("bind rpc");
    let second = op_coordinator::run(
        config_of(1),
        Listeners { rpc, metrics: None, raft: Some(raft), conductor: None },
        async {},
    );
    let err =
        tokio::time::timeout(WAIT, second).await.expect("refused at once").expect_err("replica 1 twice");
    let lock = data_dir.path().join("replica-1").join(LOCK_FILE);
    assert!(err.to_string().contains(&lock.display().to_string()), "{err}");
    for (api, task) in &replicas {
        assert!(!task.is_finished(), "the replica on {api} still runs");
    }
    for (_, task) in replicas {
        task.abort();
    }
    sim.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_dir_that_cannot_be_written_makes_the_chain_loudly_not_ready_and_heals_once_it_can() {
    let mut sim_config = SimConfig::uniform(1, 3, BLOCK_TIME_MS);
    // A chain name of its own: the metrics recorder is shared by the tests of this binary.
    sim_config.chains[0].name = "persist".to_owned();
    let harness = Harness::start_with(sim_config, "").await;
    harness.wait_for_leader("seq-0", WAIT).await;
    let running = harness.coordinator.as_ref().expect("running");
    let (rpc, metrics) = (running.rpc_addr, running.metrics_addr);
    let ok_series = format!("{}{{chain=\"persist\"}}", m::STATE_PERSIST_OK);
    assert_eq!(sample(&scrape_metrics(metrics).await, &ok_series), Some(1.0));

    // A file where the data dir was: every write fails, so the fail-over cannot proceed.
    let dir = harness.data_dir.path().to_owned();
    // The event timeline may add a file while the directory is being removed: try again.
    wait_until("the data dir to be removed", WAIT, || async { std::fs::remove_dir_all(&dir).ok() }).await;
    std::fs::write(&dir, b"not a directory").expect("put a file in its place");
    harness.sim.fault("seq-0", FaultKind::Crash, FaultParams::default()).expect("crash seq-0");
    let status = harness
        .wait_for("status to say the state cannot be persisted", WAIT, |status, _| {
            status.persist_error.is_some()
        })
        .await;
    let reason = status.persist_error.expect("a reason");
    assert!(reason.contains("Not a directory"), "the OS error: {reason}");
    let (code, body) = http_get(rpc, "/readyz").await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("chain persist cannot persist: "), "{body}");
    let body = scrape_metrics(metrics).await;
    assert_eq!(sample(&body, &ok_series), Some(0.0), "{body}");
    assert_eq!(harness.active_nodes(), Vec::<String>::new(), "nothing was started without a durable state");

    // Gone entirely: the next write recreates the directory (and its lock), and the fail-over ends.
    std::fs::remove_file(&dir).expect("remove the file");
    let status = harness
        .wait_for("the fail-over to finish once the state can be written", WAIT, |status, _| {
            status.persist_error.is_none()
                && status.phase == "steady"
                && status.leader.as_deref() != Some("seq-0")
        })
        .await;
    assert_eq!(http_get(rpc, "/readyz").await.0, 200);
    assert_eq!(sample(&scrape_metrics(metrics).await, &ok_series), Some(1.0));
    assert!(dir.join("chain-persist.json").is_file(), "the state is on disk again");
    let err = DataDirLock::acquire(&dir).expect_err("the recreated data dir is locked again");
    assert!(matches!(err, DataDirError::Locked { .. }), "{err}");
    let leader = status.leader.expect("a leader");
    assert_eq!(harness.active_nodes(), vec![leader]);
    harness.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_timeline_survives_a_restart() {
    let mut harness = Harness::start("").await;
    harness.wait_for_leader("seq-0", WAIT).await;
    let before = harness.events().await;
    assert!(!before.is_empty(), "the adoption is an event");
    let file = timeline::path_of(harness.data_dir.path(), "devnet");
    wait_until("the events to reach the timeline file", WAIT, || async {
        (timeline::load(&file).len() >= before.len()).then_some(())
    })
    .await;

    harness.restart_coordinator().await;
    harness.wait_for_leader("seq-0", WAIT).await;
    let after = harness.events().await;
    assert!(after.len() >= before.len(), "{after:#?}");
    assert_eq!(after[..before.len()], before[..], "the events from before the restart come first, unchanged");
    harness.assert_safe();
}
