//! The admin API's bounds over real loopback HTTP against a coordinator of a simulated chain: the
//! read flood of issue 14 (one 840 KB batch of `coordinator_events`, then 40 at once), request
//! and reply sizes, concurrent connections, the JWT on reads, `coordinator_events` paging, and
//! long values echoed in errors. Each test asserts the error a client gets: a JSON-RPC error (or
//! HTTP status) that names the key to change. Memory figures of the flood are measured by the
//! `api_flood` example (docs/benchmarks.md), not asserted here.

use op_coordinator::api::UNAUTHORIZED_CODE;
use op_sim::SimConfig;
use opc_test_support::{BLOCK_TIME_MS, Harness, wait_until};
use opc_wire::coordinator::CoordinatorApiClient;
use serde_json::{Value, json};
use std::{net::SocketAddr, time::Duration};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// Deadline of every wait: generous, because other tests share a 2-core machine.
const WAIT: Duration = Duration::from_secs(30);

fn rpc_addr(harness: &Harness) -> SocketAddr {
    harness.coordinator.as_ref().expect("coordinator running").rpc_addr
}

fn call(id: u64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

/// A batch of `coordinator_events` calls of about `bytes` bytes, as the flood of issue 14 sent.
fn events_batch(bytes: usize) -> String {
    let mut calls = Vec::new();
    let mut length = 2;
    while length < bytes {
        let text = call(calls.len() as u64, "coordinator_events", json!([null, 100])).to_string();
        length += text.len() + 1;
        calls.push(text);
    }
    format!("[{}]", calls.join(","))
}

/// One HTTP/1.1 request on `stream` (kept open): (status code, body).
async fn exchange(stream: &mut TcpStream, headers: &[(&str, String)], body: &str) -> (u16, String) {
    let mut request = format!(
        "POST / HTTP/1.1\r\nHost: coordinator\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    let response = async {
        stream.write_all(request.as_bytes()).await.expect("send request");
        read_response(stream).await
    };
    tokio::time::timeout(WAIT, response).await.expect("an HTTP answer within the deadline")
}

/// Reads one response: the head, then `Content-Length` bytes of body.
async fn read_response(stream: &mut TcpStream) -> (u16, String) {
    let mut received = Vec::new();
    let mut buffer = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = received.windows(4).position(|window| window == b"\r\n\r\n") {
            break at + 4;
        }
        let read = stream.read(&mut buffer).await.expect("read response");
        assert!(
            read > 0,
            "connection closed before a response head: {:?}",
            String::from_utf8_lossy(&received)
        );
        received.extend_from_slice(&buffer[..read]);
    };
    let head = String::from_utf8_lossy(&received[..head_end]).into_owned();
    let code = head.split_whitespace().nth(1).and_then(|code| code.parse().ok()).expect("status code");
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length").then(|| value.trim().parse().ok())?
        })
        .expect("content-length");
    while received.len() < head_end + length {
        let read = stream.read(&mut buffer).await.expect("read body");
        assert!(read > 0, "connection closed mid-body");
        received.extend_from_slice(&buffer[..read]);
    }
    (code, String::from_utf8_lossy(&received[head_end..head_end + length]).into_owned())
}

/// One request on a fresh connection.
async fn post(addr: SocketAddr, headers: &[(&str, String)], body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    exchange(&mut stream, headers, body).await
}

/// The code and message of a JSON-RPC error reply (a single object, not a batch).
fn rpc_error(body: &str) -> (i64, String) {
    let reply: Value =
        serde_json::from_str(body).unwrap_or_else(|err| panic!("not JSON ({err}): {body:.300}"));
    let code = reply["error"]["code"].as_i64().unwrap_or_else(|| panic!("not an error reply: {body:.300}"));
    (code, reply["error"]["message"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_840_kb_event_batches_is_refused_by_the_batch_limit_and_the_coordinator_keeps_answering() {
    let harness = Harness::start("").await;
    harness.wait_for_leader("seq-0", WAIT).await;
    let addr = rpc_addr(&harness);
    let flood = events_batch(840 * 1024);
    let calls = flood.matches("coordinator_events").count();

    let refused = |(code, body): (u16, String)| {
        assert_eq!(code, 200, "{body:.300}");
        assert!(body.len() < 1024, "a refusal, not a reply of {} bytes", body.len());
        let (code, message) = rpc_error(&body);
        assert_eq!(code, -32010, "{message}");
        assert!(message.contains(&format!("batch of {calls} calls")), "{message}");
        assert!(message.contains("rpc.max_batch_len (100)"), "{message}");
    };
    refused(post(addr, &[], &flood).await);
    let parallel: Vec<_> = (0..40).map(|_| tokio::spawn(post_owned(addr, flood.clone()))).collect();
    for task in parallel {
        refused(task.await.expect("flood task"));
    }

    // A batch at the limit is answered whole, and the coordinator still serves.
    let at_limit = format!(
        "[{}]",
        (0..100)
            .map(|id| call(id, "coordinator_events", json!([null, 1])).to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    let (code, body) = post(addr, &[], &at_limit).await;
    assert_eq!(code, 200);
    let replies: Vec<Value> = serde_json::from_str(&body).expect("a batch reply");
    assert_eq!(replies.len(), 100);
    assert!(replies.iter().all(|reply| reply["result"].is_array()), "{body:.300}");
    // Still serving (on a loaded machine the fast test settings may have failed over meanwhile,
    // which is fine as long as it was safe).
    harness.status().await;
    harness.assert_safe();
}

async fn post_owned(addr: SocketAddr, body: String) -> (u16, String) {
    post(addr, &[], &body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_max_request_bytes_is_refused_with_413_before_it_is_read() {
    let harness = Harness::start("").await;
    let addr = rpc_addr(&harness);
    // Only the head is sent: the refusal must come from the declared length alone.
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let head = "POST / HTTP/1.1\r\nHost: coordinator\r\nContent-Type: application/json\r\n\
                Content-Length: 2097152\r\n\r\n";
    stream.write_all(head.as_bytes()).await.expect("send head");
    let (code, body) = tokio::time::timeout(WAIT, read_response(&mut stream)).await.expect("answered");
    assert_eq!(code, 413, "{body}");
    let (code, message) = rpc_error(&body);
    assert_eq!(code, -32007, "{message}");
    assert!(message.contains("rpc.max_request_bytes (1048576 bytes)"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_over_max_reply_bytes_is_an_error_naming_the_key_not_a_cut_off_body() {
    let sim = SimConfig::uniform(1, 3, BLOCK_TIME_MS);
    let harness = Harness::start_tuned(sim, "", &[("rpc.max_reply_bytes", "4096")]).await;
    harness.wait_for_leader("seq-0", WAIT).await;
    let batch: Vec<Value> = (0..20).map(|id| call(id, "coordinator_status", json!([]))).collect();
    let (code, body) = post(rpc_addr(&harness), &[], &Value::Array(batch).to_string()).await;
    assert_eq!(code, 200);
    let (code, message) = rpc_error(&body);
    assert_eq!(code, -32008, "{message}");
    assert!(message.contains("rpc.max_reply_bytes (4096 bytes)"), "{message}");
    // One status fits: the bound is on the reply, not on the method.
    harness.admin.status(None).await.expect("a single status fits");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_max_connections_are_refused_with_503_then_served_once_others_close() {
    let sim = SimConfig::uniform(1, 3, BLOCK_TIME_MS);
    let harness = Harness::start_tuned(sim, "", &[("rpc.max_connections", "4")]).await;
    let addr = rpc_addr(&harness);
    let status = call(1, "coordinator_electionStopped", json!([])).to_string();
    // Each connection stays open after its answer; the harness's own client may hold one more.
    let mut open = Vec::new();
    let refusal = loop {
        assert!(open.len() <= 4, "{} connections served, the limit is 4", open.len());
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let (code, body) = exchange(&mut stream, &[], &status).await;
        if code == 503 {
            break body;
        }
        assert_eq!(code, 200, "{body}");
        open.push(stream);
    };
    assert!(open.len() >= 3, "only {} connections were served before a refusal", open.len());
    let (code, message) = rpc_error(&refusal);
    assert_eq!(code, -32009, "{message}");
    assert!(message.contains("rpc.max_connections (4)"), "{message}");

    drop(open);
    wait_until("a new connection to be served once the others closed", WAIT, || async {
        (post(addr, &[], &status).await.0 == 200).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_jwt_on_reads_every_method_needs_the_token_and_probes_stay_open() {
    let secret = [0x3cu8; 32];
    let dir = tempfile::tempdir().expect("temp dir");
    let secret_file = dir.path().join("jwt.hex");
    let hex: String = secret.iter().map(|byte| format!("{byte:02x}")).collect();
    std::fs::write(&secret_file, hex).expect("write secret");
    let extra =
        format!("[rpc]\njwt_secret_file = {:?}\njwt_on_reads = true\n", secret_file.display().to_string());
    let harness = Harness::start(&extra).await;
    let addr = rpc_addr(&harness);
    let token = || vec![("Authorization", format!("Bearer {}", op_coordinator::jwt::issue(&secret)))];

    for method in ["coordinator_status", "coordinator_events", "coordinator_electionStopped"] {
        let body = call(1, method, json!([])).to_string();
        let (code, reply) = post(addr, &[], &body).await;
        assert_eq!(code, 401, "{method}: {reply}");
        let (code, message) = rpc_error(&reply);
        assert_eq!(code, i64::from(UNAUTHORIZED_CODE));
        assert!(message.contains("unauthorized") && message.contains("rpc.jwt_on_reads"), "{message}");
        let (code, reply) = post(addr, &token(), &body).await;
        assert_eq!(code, 200, "{method}: {reply}");
        assert!(reply.contains("\"result\""), "{method}: {reply}");
    }
    harness.admin.status(None).await.expect_err("the stock client sends no token");

    // Liveness and readiness probes carry no token anywhere: they stay open.
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: coordinator\r\n\r\n").await.expect("send");
    assert_eq!(read_response(&mut stream).await, (200, "ok\n".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_page_by_seq_and_a_caller_of_two_parameters_gets_the_latest_as_before() {
    let harness = Harness::start("").await;
    harness.wait_for_leader("seq-0", WAIT).await;
    for _ in 0..3 {
        harness.admin.stop_election(None).await.expect("pause");
        harness.admin.start_election(None).await.expect("resume");
    }
    let addr = rpc_addr(&harness);
    let events = |params: Value| async move {
        let (code, body) = post(addr, &[], &call(1, "coordinator_events", params).to_string()).await;
        assert_eq!(code, 200);
        let reply: Value = serde_json::from_str(&body).expect("JSON");
        let seqs: Option<Vec<u64>> = reply["result"]
            .as_array()
            .map(|events| events.iter().map(|event| event["seq"].as_u64().expect("a seq")).collect());
        (seqs, reply)
    };
    let (all, _) = events(json!([])).await;
    let all = all.expect("every event");
    assert!(all.len() >= 6 && all.windows(2).all(|pair| pair[1] == pair[0] + 1), "{all:?}");

    // Two parameters, as callers before paging sent them: the latest, oldest first.
    let (latest, _) = events(json!([null, 3])).await;
    assert_eq!(latest.as_deref(), Some(&all[all.len() - 3..]));
    let (older, _) = events(json!([null, 3, all[all.len() - 3]])).await;
    assert_eq!(older.as_deref(), Some(&all[all.len() - 6..all.len() - 3]), "paging back");
    let (newer, _) = events(json!([null, 2, null, all[0]])).await;
    assert_eq!(newer.as_deref(), Some(&all[1..3]), "following");

    let (none, reply) = events(json!([null, 1001])).await;
    assert!(none.is_none());
    assert_eq!(reply["error"]["code"], -32602, "{reply}");
    assert!(reply["error"]["message"].as_str().is_some_and(|m| m.contains("maximum 1000")), "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_900_kb_chain_name_is_echoed_as_a_short_prefix_with_its_length() {
    let harness = Harness::start("").await;
    let name = "n".repeat(900_000);
    for method in ["coordinator_status", "coordinator_stopElection", "coordinator_events"] {
        let (code, body) = post(rpc_addr(&harness), &[], &call(1, method, json!([name])).to_string()).await;
        assert_eq!(code, 200);
        assert!(body.len() < 400, "{method}: a reply of {} bytes: {body:.400}", body.len());
        let (code, message) = rpc_error(&body);
        assert_eq!(code, -32602, "{message}");
        assert!(message.contains("(900000 bytes)") && message.contains("devnet"), "{method}: {message}");
    }
}
