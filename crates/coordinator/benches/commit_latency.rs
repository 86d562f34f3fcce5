//! Commit latency of the conductor endpoint: from op-node's `conductor_commitUnsafePayload` call
//! to its answer, over real HTTP on loopback, for payloads of several sizes, with
//!
//! - one coordinator (the fence behind a lock, its log fsynced before the answer);
//! - three Raft replicas, called at the leader (a commit is a log entry a majority holds, fsynced
//!   on each, then applied);
//! - three Raft replicas, called at a follower (which forwards the call to the leader: what an
//!   op-node pointed at a replica that does not lead sees).
//!
//! The caller commits one payload at a time, each on the previous one, as op-node does.
//!
//! ```sh
//! cargo bench -p op-coordinator --bench commit_latency
//! cargo bench -p op-coordinator --bench commit_latency -- --commits 500 --sizes 1024,131072
//! ```

use alloy_primitives::B256;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use op_coordinator::{
    actor::ChainHandle,
    conductor::{
        ChainFence, NodeEndpoint, holding_of,
        serve::{ConductorRoutes, EndpointSettings, serve_conductor},
    },
    replication::{LeaseSettings, run_leader_lease},
    state::{ChainState, Phase},
};
use opc_cluster::{Cluster, ClusterConfig, ReplicaConfig, fence::Retention};
use opc_wire::conductor::{ConductorApiClient, Envelope};
use std::{
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::{
    net::TcpListener,
    sync::{mpsc, watch},
};
use tokio_util::sync::CancellationToken;

const CHAIN: &str = "bench";
const NODE: &str = "seq-0";
const MAX_PAYLOAD: usize = 16 << 20;

struct Options {
    commits: usize,
    sizes: Vec<usize>,
}

fn options() -> Options {
    let mut options = Options { commits: 300, sizes: vec![1024, 128 * 1024, 1024 * 1024] };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--commits" => options.commits = args.next().and_then(|v| v.parse().ok()).expect("--commits N"),
            "--sizes" => {
                options.sizes = args
                    .next()
                    .expect("--sizes A,B")
                    .split(',')
                    .map(|size| size.trim().parse().expect("a size in bytes"))
                    .collect();
            }
            // `cargo bench` passes `--bench`.
            _ => {}
        }
    }
    options
}

/// Payload `number` of about `size` bytes, building on `parent`.
fn envelope(number: u64, parent: B256, size: usize) -> Envelope {
    let hash = B256::left_padding_from(&number.to_be_bytes());
    let padding = size.saturating_sub(200) / 2;
    Envelope::from_json(&format!(
        r#"{{"executionPayload":{{"parentHash":"{parent}","blockHash":"{hash}","blockNumber":"{number:#x}","timestamp":"{number:#x}","transactions":["0x{}"]}}}}"#,
        "ab".repeat(padding)
    ))
    .expect("envelope")
}

fn client(url: &str) -> HttpClient {
    HttpClientBuilder::default()
        .max_request_size(u32::try_from(MAX_PAYLOAD * 2).unwrap_or(u32::MAX))
        .request_timeout(Duration::from_secs(10))
        .build(url)
        .expect("client")
}

fn steady() -> ChainState {
    ChainState { leader: Some(NODE.into()), epoch: 1, phase: Phase::Steady, ..ChainState::default() }
}

/// Serves the fence's endpoint (no actor behind it: the commit path needs none; the command
/// channel's receiver is kept open until `cancel`).
async fn serve(fence: Arc<ChainFence>, listener: TcpListener, cancel: &CancellationToken) {
    let (commands_tx, commands_rx) = mpsc::channel(8);
    let handle = ChainHandle {
        name: CHAIN.to_owned(),
        commands_tx,
        ready_rx: watch::channel(true).1,
        persist_error_rx: watch::channel(None).1,
        mismatch_rx: watch::channel(None).1,
        held_rx: watch::channel(None).1,
        fence: Some(fence),
    };
    let mut routes = ConductorRoutes::new(EndpointSettings {
        max_payload_bytes: MAX_PAYLOAD,
        proxy_timeout: Duration::from_secs(1),
        proxy_max_reply_bytes: 1 << 20,
        handover_timeout: Duration::from_secs(5),
    });
    let node = NodeEndpoint {
        name: NODE.to_owned(),
        op_node_url: "http://127.0.0.1:9/op-node".to_owned(),
        op_geth_url: "http://127.0.0.1:9/op-geth".to_owned(),
        candidate: true,
        allow: Vec::new(),
    };
    routes.add_chain(&handle, &[node]).expect("routes");
    tokio::spawn(serve_conductor(routes, listener, cancel.clone()));
    let cancel = cancel.clone();
    tokio::spawn(async move {
        cancel.cancelled().await;
        drop(commands_rx);
    });
}

/// One coordinator: the endpoint URL of the node.
async fn single(dir: &std::path::Path, cancel: &CancellationToken) -> String {
    std::fs::create_dir_all(dir).expect("data dir");
    let fence = Arc::new(ChainFence::open(dir, CHAIN, Retention::default(), MAX_PAYLOAD).expect("fence"));
    fence.persist_state(&steady(), async { Ok(()) }).await.expect("holder");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/{CHAIN}/{NODE}", listener.local_addr().expect("addr"));
    serve(fence, listener, cancel).await;
    url
}

/// Three replicas: the node's URL at the leader and at a follower.
async fn replicas(dir: &std::path::Path, cancel: &CancellationToken) -> (String, String, Vec<Cluster>) {
    let mut bound = Vec::new();
    for id in 1..=3u64 {
        let raft = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let conductor = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        bound.push((id, raft, conductor));
    }
    let members: Vec<ReplicaConfig> = bound
        .iter()
        .map(|(id, raft, conductor)| ReplicaConfig {
            id: *id,
            raft_addr: raft.local_addr().expect("addr").to_string(),
            api_addr: format!("127.0.0.1:{}", 9000 + id),
            conductor_addr: Some(conductor.local_addr().expect("addr").to_string()),
        })
        .collect();
    let mut urls = Vec::new();
    let mut clusters = Vec::new();
    let mut acting = Vec::new();
    for (id, raft, conductor) in bound {
        let config = ClusterConfig::new(id, members.clone());
        let lease = LeaseSettings::from(&config);
        let cluster =
            Cluster::start(config, &dir.join(format!("replica-{id}")), raft).await.expect("replica");
        let (acting_tx, acting_rx) = watch::channel(None);
        tokio::spawn(run_leader_lease(cluster.clone(), lease, acting_tx, cancel.clone()));
        let fence = Arc::new(ChainFence::replicated(cluster.clone(), acting_rx.clone(), CHAIN, MAX_PAYLOAD));
        urls.push(format!("http://{}/{CHAIN}/{NODE}", conductor.local_addr().expect("addr")));
        serve(fence, conductor, cancel).await;
        clusters.push(cluster);
        acting.push(acting_rx);
    }
    // The first leader may lose an election still settling: retry on whoever acts then.
    let deadline = Instant::now() + Duration::from_secs(30);
    let state = steady();
    let value = serde_json::to_value(&state).expect("state");
    let leader = loop {
        if let Some(at) = acting.iter().position(|rx| rx.borrow().is_some())
            && clusters[at].put(CHAIN, value.clone(), Some(holding_of(&state))).await.is_ok()
        {
            break at;
        }
        assert!(Instant::now() < deadline, "no replica took the holder's state after 30 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let follower = (leader + 1) % 3;
    (urls[leader].clone(), urls[follower].clone(), clusters)
}

struct Figures {
    p50: Duration,
    p99: Duration,
    max: Duration,
}

/// Commits `count` payloads of `size` bytes one after another, after `next` (a warm-up first).
async fn measure(url: &str, next: &mut (u64, B256), size: usize, count: usize) -> Figures {
    let client = client(url);
    let mut samples = Vec::with_capacity(count);
    for i in 0..count + 20 {
        let payload = envelope(next.0, next.1, size);
        let started = Instant::now();
        client
            .commit_unsafe_payload(payload.clone())
            .await
            .unwrap_or_else(|err| panic!("commit at {url}: {err}"));
        if i >= 20 {
            samples.push(started.elapsed());
        }
        *next = (next.0 + 1, payload.head().block_hash);
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1];
    Figures { p50: at(0.50), p99: at(0.99), max: at(1.0) }
}

fn ms(duration: Duration) -> String {
    format!("{:.2}", duration.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let options = options();
    let cancel = CancellationToken::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let single_url = single(&dir.path().join("single"), &cancel).await;
    let (leader_url, follower_url, _clusters) = replicas(&dir.path().join("cluster"), &cancel).await;
    // Each setup keeps its own chain of payloads.
    let mut chains = [(1, B256::ZERO), (1, B256::ZERO)];
    println!(
        "commit latency, {} sequential commits per row after 20 warm-up commits (ms)\n",
        options.commits
    );
    println!("| payload | setup | p50 | p99 | max |");
    println!("|---:|---|---:|---:|---:|");
    for size in &options.sizes {
        let rows = [
            ("1 coordinator", &single_url, 0),
            ("3 replicas, at the leader", &leader_url, 1),
            ("3 replicas, at a follower (forwarded)", &follower_url, 1),
        ];
        for (setup, url, chain) in rows {
            let figures = measure(url, &mut chains[chain], *size, options.commits).await;
            println!(
                "| {} KB | {setup} | {} | {} | {} |",
                size / 1024,
                ms(figures.p50),
                ms(figures.p99),
                ms(figures.max)
            );
        }
    }
    let total = 3 * (options.commits + 20) * options.sizes.len();
    println!("\ndisk after the run ({total} commits, the last 16 payloads kept per chain):\n");
    let log = dir.path().join("single").join(format!("conductor-{CHAIN}.log"));
    println!("- 1 coordinator, {}: {}", log.display(), size_of(&log));
    for id in 1..=3 {
        let store = dir.path().join("cluster").join(format!("replica-{id}")).join(opc_cluster::STORE_FILE);
        println!("- replica {id}, {}: {}", store.display(), size_of(&store));
    }
    cancel.cancel();
}

/// The size of `path` in MiB, or why not.
fn size_of(path: &std::path::Path) -> String {
    match std::fs::metadata(path) {
        Ok(meta) => format!("{:.1} MiB", meta.len() as f64 / (1024.0 * 1024.0)),
        Err(err) => format!("unknown ({err})"),
    }
}
