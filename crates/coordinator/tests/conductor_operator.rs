//! op-conductor's operator surface and proxy on a running coordinator, over real HTTP on loopback,
//! against op-sim nodes that commit every block to it: each method in op-conductor's JSON shape
//! with the coordinator's meaning, hand-overs asked the op-conductor way, the leader-only proxy
//! (`/C/N`) and the leader-following one (`/C`), a hung node costing one timeout, and a call from
//! an address a node's allow-list lacks refused, named and counted.

use jsonrpsee::{
    core::{
        ClientError,
        client::ClientT,
        params::{ArrayParams, BatchRequestBuilder},
    },
    http_client::{HttpClient, HttpClientBuilder},
    rpc_params,
};
use op_coordinator::{config::Config, metrics as m};
use op_sim::SimConfig;
use op_sim::api::{FaultKind, FaultParams, FaultTarget};
use opc_test_support::{BLOCK_TIME_MS, Harness, WAIT, exposition::Exposition, scrape_metrics, wait_until};
use opc_wire::{
    conductor::{NOT_LEADER_PROXY_ERROR, PROXIED_METHODS},
    coordinator::CoordinatorApiClient,
};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const CHAIN: &str = "devnet";

/// A 3-node conductor-mode chain (priorities seq-0 2, seq-1 1, seq-2 0) whose leader sealed 3
/// blocks; its config as the coordinator loaded it; the leader.
async fn leading(extra: &str, overrides: &[(&str, &str)]) -> (Harness, Config, String) {
    let harness =
        Harness::start_conducted_tuned(SimConfig::uniform(1, 3, BLOCK_TIME_MS), extra, overrides).await;
    let status = harness.wait_for("a leader", WAIT, |status, _| status.leader.is_some()).await;
    harness.wait_for_blocks(3, WAIT).await;
    let config =
        Config::from_toml_str(&harness.config_text, Vec::<(String, String)>::new(), &harness.overrides)
            .expect("the harness's config");
    (harness, config, status.leader.expect("leader"))
}

/// A JSON-RPC client of `path` (`/C/N` or `/C`) on the conductor endpoint.
fn client(harness: &Harness, path: &str) -> HttpClient {
    HttpClientBuilder::default()
        .request_timeout(Duration::from_secs(30))
        .build(format!("{}{path}", harness.conductor_url()))
        .expect("client")
}

fn node_path(node: &str) -> String {
    format!("/{CHAIN}/{node}")
}

/// `method` on `path`: the result as JSON, or the error's code and message.
async fn call(
    harness: &Harness,
    path: &str,
    method: &str,
    params: ArrayParams,
) -> Result<Value, (i32, String)> {
    match client(harness, path).request::<Value, _>(method, params).await {
        Ok(value) => Ok(value),
        Err(ClientError::Call(error)) => Err((error.code(), error.message().to_owned())),
        Err(other) => panic!("{method} on {path}: not a JSON-RPC answer: {other}"),
    }
}

async fn ok(harness: &Harness, path: &str, method: &str, params: ArrayParams) -> Value {
    call(harness, path, method, params).await.unwrap_or_else(|error| panic!("{method} on {path}: {error:?}"))
}

async fn refusal(harness: &Harness, path: &str, method: &str, params: ArrayParams) -> String {
    match call(harness, path, method, params).await {
        Ok(value) => panic!("{method} on {path} answered {value}, expected a refusal"),
        Err((_, message)) => message,
    }
}

fn op_node_url(config: &Config, node: &str) -> String {
    config.chains[CHAIN].sequencers[node].op_node_url.clone()
}

fn op_geth_url(config: &Config, node: &str) -> String {
    config.chains[CHAIN].sequencers[node].op_geth_url.clone()
}

/// The other nodes than `leader`, highest priority first (the election order).
fn others(config: &Config, leader: &str) -> Vec<String> {
    let mut nodes: Vec<(&String, i64)> = config.chains[CHAIN]
        .sequencers
        .iter()
        .filter(|(name, _)| *name != leader)
        .map(|(name, node)| (name, node.priority))
        .collect();
    nodes.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    nodes.into_iter().map(|(name, _)| name.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_operator_method_answers_in_op_conductors_shape_with_the_coordinators_meaning() {
    let (harness, config, leader) = leading("", &[]).await;
    let follower = others(&config, &leader).remove(0);
    let (on_leader, on_follower) = (node_path(&leader), node_path(&follower));

    // Who leads: the fence holder, as op-conductor's ServerInfo (id, addr, suffrage as a number).
    assert_eq!(ok(&harness, &on_leader, "conductor_leader", rpc_params![]).await, json!(true));
    assert_eq!(ok(&harness, &on_follower, "conductor_leader", rpc_params![]).await, json!(false));
    let expected = json!({"id": leader, "addr": op_node_url(&config, &leader), "suffrage": 0});
    assert_eq!(ok(&harness, &on_follower, "conductor_leaderWithID", rpc_params![]).await, expected);
    let servers: Vec<Value> = ["seq-0", "seq-1", "seq-2"]
        .iter()
        .map(|node| json!({"id": node, "addr": op_node_url(&config, node), "suffrage": 0}))
        .collect();
    let membership = ok(&harness, &on_follower, "conductor_clusterMembership", rpc_params![]).await;
    assert_eq!(membership, json!({"servers": servers, "version": 0}));

    // State: running, healthy, never stopped or overridden.
    harness
        .wait_for("every node healthy", WAIT, |status, _| status.nodes.iter().all(|node| node.healthy))
        .await;
    for (method, answer) in [
        ("conductor_active", true),
        ("conductor_paused", false),
        ("conductor_stopped", false),
        ("conductor_leaderOverridden", false),
        ("conductor_sequencerHealthy", true),
    ] {
        assert_eq!(ok(&harness, &on_follower, method, rpc_params![]).await, json!(answer), "{method}");
    }

    // What has no meaning here is refused with what to do instead.
    assert_eq!(ok(&harness, &on_follower, "conductor_overrideLeader", rpc_params![false]).await, Value::Null);
    let overridden = refusal(&harness, &on_follower, "conductor_overrideLeader", rpc_params![true]).await;
    assert!(
        overridden.contains("admin_overrideLeader") && overridden.contains("transferLeaderToServer"),
        "{overridden}"
    );
    let stop = refusal(&harness, &on_follower, "conductor_stop", rpc_params![]).await;
    assert!(stop.contains(&format!("chains.{CHAIN}.sequencers.{follower}.candidate")), "{stop}");
    for (method, params) in [
        ("conductor_addServerAsVoter", rpc_params!["seq-9", "http://192.0.2.9:9545", 0]),
        ("conductor_addServerAsNonvoter", rpc_params!["seq-9", "http://192.0.2.9:9545", 0]),
        ("conductor_removeServer", rpc_params![&follower, 0]),
        ("conductor_removeServer", rpc_params![]),
    ] {
        let message = refusal(&harness, &on_follower, method, params).await;
        assert!(message.starts_with(&format!("{method} is not available")), "{message}");
        assert!(message.contains(&format!("[chains.{CHAIN}.sequencers.<name>]")), "{message}");
    }

    // Pause and resume, asked on any node's path, are the chain's: every path and the admin API see it.
    assert_eq!(ok(&harness, &on_follower, "conductor_pause", rpc_params![]).await, Value::Null);
    assert_eq!(ok(&harness, &on_leader, "conductor_paused", rpc_params![]).await, json!(true));
    assert_eq!(ok(&harness, &on_leader, "conductor_active", rpc_params![]).await, json!(false));
    assert!(harness.admin.election_stopped(None).await.expect("coordinator_electionStopped"));
    assert_eq!(
        ok(&harness, &on_leader, "conductor_pause", rpc_params![]).await,
        Value::Null,
        "a second pause"
    );
    assert_eq!(ok(&harness, &on_leader, "conductor_resume", rpc_params![]).await, Value::Null);
    assert_eq!(ok(&harness, &on_follower, "conductor_paused", rpc_params![]).await, json!(false));
    assert!(!harness.admin.election_stopped(None).await.expect("coordinator_electionStopped"));

    // sequencerHealthy is the coordinator's verdict on that node.
    harness.sim.fault(&follower, FaultKind::Crash, FaultParams::default()).expect("crash");
    wait_until("the crashed follower judged unhealthy on its path", WAIT, || async {
        let healthy = ok(&harness, &on_follower, "conductor_sequencerHealthy", rpc_params![]).await;
        (healthy == json!(false)).then_some(())
    })
    .await;
    assert_eq!(ok(&harness, &on_leader, "conductor_sequencerHealthy", rpc_params![]).await, json!(true));
    harness.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_asked_the_op_conductor_way_moves_the_role_and_the_chain_path_follows_it() {
    let (harness, config, leader) = leading("", &[]).await;
    let [successor, last]: [String; 2] = others(&config, &leader).try_into().expect("two others");
    // The best candidate is the one by priority only while every node is eligible.
    harness
        .wait_for("every node healthy", WAIT, |status, _| status.nodes.iter().all(|node| node.healthy))
        .await;
    let active_via_chain =
        || async { ok(&harness, &format!("/{CHAIN}"), "admin_sequencerActive", rpc_params![]).await };
    assert_eq!(active_via_chain().await, json!(true));

    // Only the leader hands over; it hands over to the first eligible candidate by priority.
    let not_leading =
        refusal(&harness, &node_path(&successor), "conductor_transferLeader", rpc_params![]).await;
    assert!(
        not_leading.contains(&format!("{successor} does not lead this chain ({leader} does)")),
        "{not_leading}"
    );
    assert_eq!(
        ok(&harness, &node_path(&leader), "conductor_transferLeader", rpc_params![]).await,
        Value::Null
    );
    harness.wait_for_leader(&successor, WAIT).await;
    assert_eq!(active_via_chain().await, json!(true), "/{CHAIN} follows the leader");
    let stale = refusal(&harness, &node_path(&leader), "admin_sequencerActive", rpc_params![]).await;
    assert_eq!(stale, NOT_LEADER_PROXY_ERROR, "the old leader's path no longer proxies");

    // To a named server: its addr must be its op-node URL (or empty).
    let wrong = op_node_url(&config, &leader);
    let mismatched = refusal(
        &harness,
        &node_path(&successor),
        "conductor_transferLeaderToServer",
        rpc_params![&last, &wrong],
    )
    .await;
    assert!(mismatched.contains(&format!("chains.{CHAIN}.sequencers.{last}.op_node_url")), "{mismatched}");
    harness
        .wait_for("every node healthy", WAIT, |status, _| status.nodes.iter().all(|node| node.healthy))
        .await;
    let addr = op_node_url(&config, &last);
    let moved =
        ok(&harness, &node_path(&leader), "conductor_transferLeaderToServer", rpc_params![&last, &addr])
            .await;
    assert_eq!(moved, Value::Null);
    harness.wait_for_leader(&last, WAIT).await;
    let info = ok(&harness, &node_path(&leader), "conductor_leaderWithID", rpc_params![]).await;
    assert_eq!(info["id"], json!(last));
    assert_eq!(active_via_chain().await, json!(true), "/{CHAIN} follows the leader");
    harness.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_forwards_to_a_node_only_while_it_leads_as_the_node_answers() {
    let (harness, config, leader) = leading("", &[]).await;
    let follower = others(&config, &leader).remove(0);
    for (method, _) in PROXIED_METHODS {
        let refused = refusal(&harness, &node_path(&follower), method, rpc_params![]).await;
        assert_eq!(refused, NOT_LEADER_PROXY_ERROR, "{method} on a follower's path");
    }
    let direct_geth =
        HttpClientBuilder::default().build(op_geth_url(&config, &leader)).expect("op-geth client");
    let direct_node =
        HttpClientBuilder::default().build(op_node_url(&config, &leader)).expect("op-node client");
    // Parameters go through as sent; replies come back as the node sent them.
    let block: Value =
        direct_geth.request("eth_getBlockByNumber", rpc_params!["0x1", false]).await.expect("direct");
    for path in [node_path(&leader), format!("/{CHAIN}")] {
        let proxied = ok(&harness, &path, "eth_getBlockByNumber", rpc_params!["0x1", false]).await;
        assert_eq!(proxied, block, "{path}");
    }
    let rollup: Value = direct_node.request("optimism_rollupConfig", rpc_params![]).await.expect("direct");
    assert_eq!(ok(&harness, &node_path(&leader), "optimism_rollupConfig", rpc_params![]).await, rollup);
    let sync = ok(&harness, &node_path(&leader), "optimism_syncStatus", rpc_params![]).await;
    assert!(sync["unsafe_l2"]["number"].as_u64().is_some_and(|number| number >= 3), "{sync}");
    assert_eq!(ok(&harness, &node_path(&leader), "admin_sequencerActive", rpc_params![]).await, json!(true));
    // The node's own error passes through (op-sim has no optimism_outputAtBlock).
    let absent = call(&harness, &node_path(&leader), "optimism_outputAtBlock", rpc_params!["0x1"]).await;
    assert_eq!(
        absent,
        Err((-32601, "the method optimism_outputAtBlock does not exist/is not available".to_owned()))
    );
    // A batch is answered call by call.
    let mut batch = BatchRequestBuilder::new();
    batch.insert("admin_sequencerActive", rpc_params![]).expect("batch");
    batch.insert("conductor_leader", rpc_params![]).expect("batch");
    let answers = client(&harness, &node_path(&leader)).batch_request::<bool>(batch).await.expect("batch");
    assert_eq!(answers.into_ok().expect("both answered").collect::<Vec<_>>(), [true, true]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_node_costs_a_proxied_call_one_timeout() {
    let (harness, _, leader) = leading("[conductor]\nproxy_timeout_ms = 300\n", &[]).await;
    // Paused, so the slow leader is not replaced while the call runs: the timeout is what answers.
    assert_eq!(ok(&harness, &node_path(&leader), "conductor_pause", rpc_params![]).await, Value::Null);
    let slow =
        FaultParams { target: Some(FaultTarget::OpGeth), latency_ms: Some(5_000), ..FaultParams::default() };
    harness.sim.fault(&leader, FaultKind::Slow, slow).expect("slow op-geth");
    let started = Instant::now();
    let late =
        refusal(&harness, &node_path(&leader), "eth_getBlockByNumber", rpc_params!["latest", false]).await;
    let took = started.elapsed();
    assert!(
        late.contains(&format!(
            "{leader}'s op-geth did not answer eth_getBlockByNumber within 300 ms (conductor.proxy_timeout_ms)"
        )),
        "{late}"
    );
    assert!(took < Duration::from_secs(3), "one timeout, not the node's 5 s: {took:?}");
    harness.sim.heal(&leader, Some(FaultKind::Slow)).expect("heal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_from_an_address_a_node_does_not_allow_is_refused_named_and_counted() {
    let allow = [
        ("chains.devnet.sequencers.seq-1.conductor_allow", "127.0.0.1"),
        ("chains.devnet.sequencers.seq-2.conductor_allow", "192.0.2.7,192.0.2.8"),
    ];
    let (harness, _, _) = leading("", &allow).await;
    let metrics = harness.coordinator.as_ref().expect("running").metrics_addr;
    let refused_so_far = || async {
        let exposition = Exposition::parse(&scrape_metrics(metrics).await).expect("exposition");
        exposition.sum(m::CONDUCTOR_ADDRESS_REFUSALS_TOTAL, &[("chain", CHAIN), ("node", "seq-2")])
    };
    let before = refused_so_far().await;
    let conductor: std::net::SocketAddr =
        harness.conductor_url().trim_start_matches("http://").parse().expect("conductor address");
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"conductor_leader","params":[]}"#;
    let (code, text) = opc_test_support::http_post_json(conductor, "/devnet/seq-2", body).await;
    assert_eq!(code, 403, "{text}");
    assert!(
        text.contains("not allowed: 127.0.0.1 is not in chains.devnet.sequencers.seq-2.conductor_allow"),
        "names the address and the key: {text}"
    );
    let again =
        client(&harness, "/devnet/seq-2").request::<Value, _>("conductor_leaderWithID", rpc_params![]).await;
    assert!(again.as_ref().is_err_and(|err| err.to_string().contains("403")), "{again:?}");
    wait_until("both refusals counted", WAIT, || async {
        (refused_so_far().await >= before + 2.0).then_some(())
    })
    .await;
    // seq-1 allows loopback, the others allow any address: the chain goes on.
    assert!(ok(&harness, "/devnet/seq-1", "conductor_leader", rpc_params![]).await.is_boolean());
    harness.wait_for_blocks(3, WAIT).await;
    harness.assert_safe();
}
