//! `op-coordinator ctl` against a chain whose stored state names a node the config lost: `status`
//! shows why nothing is acted on and exits 4; `forget-stale-nodes` resolves it and exits 0.

use op_coordinator::state::{FileStateStore, StateStore};
use opc_test_support::{Harness, hermetic};
use std::{process::Output, time::Duration};

const BINARY: &str = env!("CARGO_BIN_EXE_op-coordinator");
const WAIT: Duration = Duration::from_secs(20);

/// `op-coordinator ctl --rpc <harness> ARGS`, off the runtime's threads.
async fn ctl(harness: &Harness, args: &[&str]) -> Output {
    let rpc = format!("http://{}", harness.coordinator.as_ref().expect("running").rpc_addr);
    let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        hermetic(BINARY, &["OP_COORDINATOR_"]).args(["ctl", "--rpc", &rpc]).args(&args).output()
    })
    .await
    .expect("join")
    .expect("run ctl")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_status_names_a_removed_fenced_node_and_forget_stale_nodes_resolves_it() {
    let mut harness = Harness::start("").await;
    harness.wait_for_leader("seq-0", WAIT).await;
    harness.stop_coordinator().await;
    let store = FileStateStore::open(harness.data_dir.path()).expect("state dir");
    let mut saved = store.load("devnet").await.expect("readable").expect("saved");
    saved.fenced.insert("seq-2".into());
    store.save("devnet", &saved).await.expect("save");
    let header = "[chains.devnet.sequencers.seq-2]";
    let start = harness.config_text.find(header).expect("seq-2 section");
    let end =
        harness.config_text[start + 1..].find("\n[").map_or(harness.config_text.len(), |at| start + at + 2);
    harness.config_text.replace_range(start..end, "");
    harness.restart_coordinator().await;
    harness.wait_for("the chain to be refused", WAIT, |status, _| status.config_mismatch.is_some()).await;

    let status = ctl(&harness, &["status"]).await;
    let stdout = text(&status.stdout);
    assert_eq!(status.status.code(), Some(4), "{stdout}{}", text(&status.stderr));
    assert!(stdout.contains("NOT ACTING: not acting on chain devnet"), "{stdout}");
    assert!(
        stdout.contains("seq-2 (fenced node)") && stdout.contains("forget-stale-nodes --chain devnet"),
        "{stdout}"
    );

    let forget = ctl(&harness, &["forget-stale-nodes"]).await;
    let stdout = text(&forget.stdout);
    assert!(forget.status.success(), "{stdout}{}", text(&forget.stderr));
    assert!(stdout.starts_with("forgot seq-2;"), "{stdout}");
    let again = ctl(&harness, &["forget-stale-nodes"]).await;
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again.stderr).contains("nothing to forget"), "{}", text(&again.stderr));

    harness
        .wait_for("a healthy steady chain", WAIT, |status, _| {
            status.config_mismatch.is_none()
                && status.phase == "steady"
                && status.nodes.iter().all(|node| node.healthy)
        })
        .await;
    let status = ctl(&harness, &["status"]).await;
    assert_eq!(status.status.code(), Some(0), "{}", text(&status.stdout));
    harness.assert_safe();
}
