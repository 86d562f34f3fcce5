//! What people read shows plain values: log lines and events of a real fail-over and restart
//! carry no Rust `Debug` wrappers (`Some("seq-0")`, `None`, `{}`), every name field is written
//! the same way (`chain=devnet`, never `chain="devnet"`), and an error repeats at most a short
//! prefix of a huge name from a request.

use jsonrpsee::core::ClientError;
use op_sim::api::{FaultKind, FaultParams};
use opc_test_support::{Harness, WAIT};
use opc_wire::{EventKind, coordinator::CoordinatorApiClient};
use std::{
    io::Write,
    sync::{Arc, Mutex, OnceLock, PoisonError},
};

/// Everything the coordinator logged in this test process, as the binary's text format writes it.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

/// Installs the capture once for the process, with the binary's formatter (`run.rs`) at debug
/// level for the coordinator's own crates.
fn capture_logs() -> Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED
        .get_or_init(|| {
            let captured = Captured::default();
            let writer = captured.clone();
            tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new("op_coordinator=debug,opc_cluster=info"))
                .with_writer(move || writer.clone())
                .with_ansi(false)
                .init();
            captured
        })
        .clone()
}

/// Text that is Rust `Debug` output, not a value for people.
const DEBUG_MARKS: [&str; 6] = ["Some(", "None", "=[", "={", "[\"", "=\"\""];

/// `key="value"`: a field recorded as a string, quoted unlike the `%` fields beside it.
fn quoted_fields(line: &str) -> Vec<String> {
    line.split_whitespace()
        .filter_map(|word| word.split_once("=\""))
        .filter(|(key, _)| !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .map(|(key, _)| key.to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_and_events_of_a_failover_and_a_restart_show_plain_values_quoted_alike() {
    let logs = capture_logs();
    let mut harness = Harness::start("").await;
    harness.wait_for_leader("seq-0", WAIT).await;
    harness.sim.fault("seq-0", FaultKind::Crash, FaultParams::default()).expect("crash seq-0");
    let done = harness.wait_for_event(EventKind::FailoverComplete, None, WAIT).await;
    let leader = done.node.expect("the fail-over names its new leader");
    harness.wait_for_leader(&leader, WAIT).await;
    // Back, the fenced old leader is stopped (`admin_stopSequencer ... purpose=fence`) and
    // unfenced; a restart then logs the restored state with no fenced node (once `fenced=`).
    harness.sim.heal("seq-0", None).expect("heal seq-0");
    harness.wait_for("seq-0 unfenced", WAIT, |status, _| status.nodes.iter().all(|node| !node.fenced)).await;
    harness.restart_coordinator().await;
    harness.wait_for_leader(&leader, WAIT).await;

    let text = logs.text();
    assert!(text.contains("restored durable state") && text.contains("admin_stopSequencer"), "{text}");
    let mut problems = Vec::new();
    for line in text.lines().filter(|line| line.contains("op_coordinator")) {
        if let Some(mark) = DEBUG_MARKS.iter().find(|mark| line.contains(**mark)) {
            problems.push(format!("Debug output {mark}: {line}"));
        }
        let quoted = quoted_fields(line);
        if !quoted.is_empty() {
            problems.push(format!("quoted fields {}: {line}", quoted.join(", ")));
        }
    }
    assert!(text.contains("fenced=none"), "an empty fenced set reads none:\n{text}");
    for event in harness.events().await {
        if let Some(mark) = DEBUG_MARKS.iter().find(|mark| event.detail.contains(**mark)) {
            problems.push(format!("Debug output {mark} in event {}: {}", event.kind, event.detail));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_huge_chain_or_node_name_is_echoed_as_a_short_prefix_and_its_length() {
    let harness = Harness::start("").await;
    harness.wait_for_leader("seq-0", WAIT).await;
    let huge = "x".repeat(200 * 1024);

    let message = |err: ClientError| match err {
        ClientError::Call(object) => object.message().to_owned(),
        other => panic!("expected a JSON-RPC error, got {other}"),
    };
    let message =
        message(harness.admin.status(Some(huge.clone())).await.expect_err("an unknown chain is refused"));
    assert!(message.contains("unknown chain \"xxxx") && message.contains("(204800 bytes)"), "{message:.300}");
    assert!(message.contains("configured chains: devnet"), "{message:.300}");
    assert!(message.len() < 400, "{} bytes: {message:.300}", message.len());

    let refused =
        harness.admin.set_active_sequencer(huge, None).await.expect_err("an unknown node is refused");
    let message = match refused {
        ClientError::Call(object) => object.message().to_owned(),
        other => panic!("expected a JSON-RPC error, got {other}"),
    };
    assert!(
        message.contains("no sequencer named \"xxxx") && message.contains("(204800 bytes)"),
        "{message:.300}"
    );
    assert!(message.len() < 400, "{} bytes: {message:.300}", message.len());
}
