//! The conductor endpoint over real HTTP on loopback, as op-node calls it: the path names the
//! caller, only the fence's holder commits and only on the base, a refusal says why, an unknown
//! path lists the paths served, an oversized request is refused before it is read, a node's path
//! takes calls only from its allowed addresses, and what was accepted is on disk when the answer
//! comes. (The operator methods and the proxy, which need a chain's actor and its nodes, are in
//! `conductor_operator.rs`.)

use jsonrpsee::{
    core::{ClientError, client::ClientT},
    http_client::HttpClientBuilder,
    rpc_params,
};
use op_coordinator::{
    actor::{ChainCommand, ChainHandle},
    conductor::{
        ChainFence, NodeEndpoint,
        serve::{ConductorRoutes, EndpointSettings, serve_conductor},
    },
    state::{ChainState, Phase},
};
use opc_cluster::fence::Retention;
use opc_wire::{
    B256,
    conductor::{ConductorApiClient, ConductorOpsApiClient, Envelope},
};
use std::{net::IpAddr, sync::Arc, time::Duration};
use tokio::{
    net::TcpListener,
    sync::{mpsc, watch},
};
use tokio_util::sync::CancellationToken;

const KEEP: Retention = Retention { payloads: 16, bytes: 1 << 20 };
const MAX_PAYLOAD: usize = 64 * 1024;

fn envelope(number: u64, parent: B256, padding: usize) -> Envelope {
    let hash = B256::with_last_byte(number as u8);
    Envelope::from_json(&format!(
        r#"{{"executionPayload":{{"parentHash":"{parent}","blockHash":"{hash}","blockNumber":"{number:#x}","timestamp":"0x1","extraData":"0x{}"}}}}"#,
        "ab".repeat(padding)
    ))
    .expect("envelope")
}

struct Endpoint {
    url: String,
    fence: Arc<ChainFence>,
    dir: tempfile::TempDir,
    cancel: CancellationToken,
    /// What the endpoint asks of the chain's actor (there is none here: nothing answers).
    _commands_rx: mpsc::Receiver<ChainCommand>,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Node `name` of chain `main`, whose nodes nobody runs, callable from `allow`.
fn node(name: &str, allow: &[IpAddr]) -> NodeEndpoint {
    NodeEndpoint {
        name: name.to_owned(),
        op_node_url: format!("http://127.0.0.1:9/{name}/op-node"),
        op_geth_url: format!("http://127.0.0.1:9/{name}/op-geth"),
        candidate: true,
        allow: allow.to_vec(),
    }
}

/// The endpoint for chain `main` (nodes a and b), the fence held by `a` (steady leader).
async fn endpoint() -> Endpoint {
    endpoint_with(&[node("a", &[]), node("b", &[])]).await
}

/// The endpoint for chain `main` with `nodes`, the fence held by `a` (steady leader).
async fn endpoint_with(nodes: &[NodeEndpoint]) -> Endpoint {
    let dir = tempfile::tempdir().expect("temp dir");
    let fence = Arc::new(ChainFence::open(dir.path(), "main", KEEP, MAX_PAYLOAD).expect("open the fence"));
    let steady =
        ChainState { leader: Some("a".into()), epoch: 1, phase: Phase::Steady, ..ChainState::default() };
    fence.persist_state(&steady, async { Ok(()) }).await.expect("apply");
    let (commands_tx, commands_rx) = mpsc::channel(8);
    let handle = ChainHandle {
        name: "main".to_owned(),
        commands_tx,
        ready_rx: watch::channel(true).1,
        persist_error_rx: watch::channel(None).1,
        mismatch_rx: watch::channel(None).1,
        held_rx: watch::channel(None).1,
        fence: Some(fence.clone()),
    };
    let mut routes = ConductorRoutes::new(EndpointSettings {
        max_payload_bytes: MAX_PAYLOAD,
        proxy_timeout: Duration::from_secs(1),
        proxy_max_reply_bytes: 1 << 20,
        handover_timeout: Duration::from_secs(5),
    });
    routes.add_chain(&handle, nodes).expect("routes");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let cancel = CancellationToken::new();
    tokio::spawn(serve_conductor(routes, listener, cancel.clone()));
    Endpoint { url, fence, dir, cancel, _commands_rx: commands_rx }
}

fn client(url: &str) -> jsonrpsee::http_client::HttpClient {
    HttpClientBuilder::default().max_request_size(16 << 20).build(url).expect("client")
}

fn refusal(result: Result<(), ClientError>) -> String {
    match result {
        Err(ClientError::Call(error)) => error.message().to_owned(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn the_holder_commits_on_the_base_and_everyone_else_is_refused_with_why() {
    let endpoint = endpoint().await;
    let a = client(&format!("{}/main/a", endpoint.url));
    let b = client(&format!("{}/main/b", endpoint.url));
    assert!(a.leader().await.expect("leader"));
    assert!(!b.leader().await.expect("leader"));
    a.commit_unsafe_payload(envelope(1, B256::ZERO, 0)).await.expect("first commit");
    a.commit_unsafe_payload(envelope(2, B256::with_last_byte(1), 0)).await.expect("on the base");
    // op-node's retry of a commit whose answer it did not get in time: durable already, so Ok.
    a.commit_unsafe_payload(envelope(2, B256::with_last_byte(1), 0)).await.expect("the retry");
    let wrong = refusal(a.commit_unsafe_payload(envelope(3, B256::with_last_byte(7), 0)).await);
    assert!(wrong.starts_with("wrong parent"), "{wrong}");
    let deposed = refusal(b.commit_unsafe_payload(envelope(3, B256::with_last_byte(2), 0)).await);
    assert!(deposed.starts_with("not the leader: b") && deposed.contains("(a is)"), "{deposed}");
    let view = endpoint.fence.view();
    assert_eq!((view.accepted, view.refused), (3, 2), "the retry counts as accepted");
    assert_eq!(view.head.map(|head| head.number), Some(2));
    // What was answered is on disk: a fence opened anew has it.
    let reopened = ChainFence::open(endpoint.dir.path(), "main", KEEP, MAX_PAYLOAD).expect("reopen");
    assert_eq!(reopened.view().base, Some(B256::with_last_byte(2)));
}

#[tokio::test]
async fn a_commit_whose_caller_gives_up_still_completes_and_the_next_one_goes_through() {
    let endpoint = endpoint().await;
    // op-node's call times out and the server drops the commit mid-way (here: after one poll,
    // while the append is on the blocking pool). It used to lose the log with it, and every
    // later commit of the chain was refused.
    // Polled exactly once, then dropped: a timeout of zero used to let it finish first when the
    // append beat the timer's millisecond (the timer rounds up).
    let mut commit = Box::pin(endpoint.fence.commit("a", envelope(1, B256::ZERO, 0)));
    assert!(futures::poll!(&mut commit).is_pending(), "the commit was cut off before it finished");
    drop(commit);
    let a = client(&format!("{}/main/a", endpoint.url));
    let next = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match a.commit_unsafe_payload(envelope(2, B256::with_last_byte(1), 0)).await {
                Ok(()) => return,
                // The cut-off commit may still be finishing.
                Err(err) if err.to_string().contains("wrong parent") => tokio::task::yield_now().await,
                Err(err) => panic!("the commit after a dropped one was refused: {err}"),
            }
        }
    });
    next.await.expect("block 2 commits on block 1");
    assert_eq!(endpoint.fence.view().head.map(|head| head.number), Some(2));
    // A commit given up on is no longer counted as in flight (the engine reads one as a sign
    // of life of its sender).
    assert!(endpoint.fence.view().in_flight.is_empty(), "{:?}", endpoint.fence.view().in_flight);
}

#[tokio::test]
async fn a_deposition_written_through_the_fence_refuses_the_next_commit() {
    let endpoint = endpoint().await;
    let a = client(&format!("{}/main/a", endpoint.url));
    a.commit_unsafe_payload(envelope(1, B256::ZERO, 0)).await.expect("commit");
    let deposed = ChainState {
        epoch: 1,
        phase: Phase::CatchingUp { from: "a".into(), target: None },
        stopped_hash: Some(B256::with_last_byte(1)),
        ..ChainState::default()
    };
    endpoint.fence.persist_state(&deposed, async { Ok(()) }).await.expect("depose");
    assert!(!a.leader().await.expect("leader"));
    let refused = refusal(a.commit_unsafe_payload(envelope(2, B256::with_last_byte(1), 0)).await);
    assert!(refused.contains("none is right now"), "{refused}");
}

#[tokio::test]
async fn an_unknown_path_lists_the_paths_served_and_an_oversized_commit_is_refused() {
    let endpoint = endpoint().await;
    let stranger = client(&format!("{}/main/zed", endpoint.url));
    let err = stranger.leader().await.expect_err("no such node").to_string();
    assert!(err.contains("404") || err.contains("/main/a"), "{err}");
    let (code, raw) = raw_post(&format!("{}/main/zed", endpoint.url), "conductor_leader").await;
    assert_eq!(code, 404);
    assert!(raw.contains("unknown caller") && raw.contains("/main, /main/a, /main/b"), "{raw}");
    let a = client(&format!("{}/main/a", endpoint.url));
    let big = a.commit_unsafe_payload(envelope(1, B256::ZERO, MAX_PAYLOAD)).await;
    let message = match big {
        Err(ClientError::Call(error)) => error.message().to_owned(),
        Err(other) => other.to_string(),
        Ok(()) => panic!("an oversized payload was accepted"),
    };
    assert!(message.contains("too large") || message.contains("413"), "{message}");
    assert_eq!(endpoint.fence.view().accepted, 0);
}

#[tokio::test]
async fn between_leaders_the_chain_path_says_so_and_no_server_leads() {
    let endpoint = endpoint().await;
    let between = ChainState {
        epoch: 1,
        phase: Phase::CatchingUp { from: "a".into(), target: None },
        ..ChainState::default()
    };
    endpoint.fence.persist_state(&between, async { Ok(()) }).await.expect("depose");
    let chain = client(&format!("{}/main", endpoint.url));
    let message = match chain.request::<serde_json::Value, _>("admin_sequencerActive", rpc_params![]).await {
        Err(ClientError::Call(error)) => error.message().to_owned(),
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert!(message.starts_with("chain main has no leader right now"), "{message}");
    let a = client(&format!("{}/main/a", endpoint.url));
    let refused =
        match a.request::<serde_json::Value, _>("eth_getBlockByNumber", rpc_params!["latest", false]).await {
            Err(ClientError::Call(error)) => error.message().to_owned(),
            other => panic!("expected a refusal, got {other:?}"),
        };
    assert_eq!(refused, "refusing to proxy request to non-leader sequencer");
    let nobody = a.leader_with_id().await.expect("leaderWithID");
    assert_eq!(
        serde_json::to_value(nobody).expect("json"),
        serde_json::json!({"id": "", "addr": "", "suffrage": 0}),
        "op-conductor's answer without a leader"
    );
}

#[tokio::test]
async fn a_node_path_takes_calls_only_from_its_allowed_addresses_and_says_which_key_to_edit() {
    let loopback: IpAddr = "127.0.0.1".parse().expect("ip");
    let elsewhere: IpAddr = "192.0.2.7".parse().expect("ip");
    let endpoint = endpoint_with(&[node("a", &[elsewhere]), node("b", &[elsewhere, loopback])]).await;
    let (code, raw) = raw_post(&format!("{}/main/a", endpoint.url), "conductor_commitUnsafePayload").await;
    assert_eq!(code, 403, "{raw}");
    assert!(
        raw.contains("not allowed: 127.0.0.1 is not in chains.main.sequencers.a.conductor_allow"),
        "names the address and the key: {raw}"
    );
    let a = client(&format!("{}/main/a", endpoint.url));
    let refused = a.commit_unsafe_payload(envelope(1, B256::ZERO, 0)).await.expect_err("refused");
    assert!(refused.to_string().contains("403"), "{refused}");
    assert_eq!(endpoint.fence.view().accepted, 0, "the refused commit never reached the fence");
    // b allows loopback; the chain's own path takes any address.
    let b = client(&format!("{}/main/b", endpoint.url));
    assert!(!b.leader().await.expect("b is allowed"));
    let (code, chain) = raw_post(&format!("{}/main", endpoint.url), "optimism_syncStatus").await;
    assert_eq!(code, 200, "{chain}");
}

/// A raw JSON-RPC POST of `method` without parameters to `url`: the status code and the body of
/// any reply.
async fn raw_post(url: &str, method: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").expect("http");
    let (host, path) = rest.split_once('/').expect("path");
    let body = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{method}","params":[]}}"#);
    opc_test_support::http_post_json(host.parse().expect("host:port"), &format!("/{path}"), &body).await
}
