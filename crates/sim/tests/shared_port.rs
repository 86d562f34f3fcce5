//! Shared-port routing: many nodes of several chains behind one listener, addressed by URL path.

mod common;

use anyhow::{Context as _, Result, ensure};
use common::{client, raw_call, raw_post, split_url, wait_for};
use op_sim::api::{FaultKind, FaultParams};
use op_sim::{Routing, SimConfig, Simulator};
use opc_wire::api::{EthApiClient, OpAdminApiClient, OptimismApiClient};
use serde_json::json;
use std::sync::Arc;

async fn start() -> Result<Arc<Simulator>> {
    let mut config = SimConfig::uniform(2, 2, 50);
    config.routing = Routing::SharedPort("127.0.0.1:0".parse()?);
    Ok(Arc::new(Simulator::start(config).await?))
}

#[tokio::test]
async fn shared_port_mode_serves_every_node_of_two_chains_by_url_path() -> Result<()> {
    let sim = start().await?;
    let nodes = sim.nodes();
    ensure!(nodes.len() == 4, "{nodes:?}");
    let (authority, _) = split_url(&nodes[0].op_node_url)?;
    for node in &nodes {
        let (node_authority, path) = split_url(&node.op_node_url)?;
        ensure!(node_authority == authority, "every endpoint shares one port: {node:?}");
        ensure!(path == format!("/{}/{}/op-node", node.chain, node.name), "op-node path {path}");
        ensure!(split_url(&node.op_geth_url)?.1 == format!("/{}/{}/op-geth", node.chain, node.name));
    }
    for (node, chain_id) in nodes.iter().zip([901u64, 901, 902, 902]) {
        let op_geth = client(&node.op_geth_url)?;
        ensure!(op_geth.chain_id().await?.to::<u64>() == chain_id, "{} chain id", node.op_geth_url);
        let op_node = client(&node.op_node_url)?;
        ensure!(op_node.admin_sequencer_active().await? == (node.name == "seq-0"), "{}", node.op_node_url);
    }
    // Each chain's follower follows its own leader.
    for chain in ["chain-0", "chain-1"] {
        let follower = client(&format!("http://{authority}/{chain}/seq-1/op-node"))?;
        let leader = client(&format!("http://{authority}/{chain}/seq-0/op-node"))?;
        wait_for(&format!("{chain}/seq-1 to follow its leader"), async || {
            let ours = follower.sync_status().await.map_err(|err| err.to_string())?.unsafe_l2;
            let theirs = leader.sync_status().await.map_err(|err| err.to_string())?.unsafe_l2;
            if ours.number >= 2 && ours.number + 1 >= theirs.number {
                Ok(())
            } else {
                Err(format!("{ours} vs {theirs}"))
            }
        })
        .await?;
    }
    // The two chains are different chains.
    let heads: Vec<_> = ["chain-0/seq-0", "chain-1/seq-0"]
        .iter()
        .map(|name| sim.nodes().into_iter().find(|node| format!("{}/{}", node.chain, node.name) == *name))
        .collect::<Option<_>>()
        .context("missing leader")?;
    ensure!(heads[0].unsafe_head.hash != heads[1].unsafe_head.hash);
    Ok(())
}

#[tokio::test]
async fn shared_port_mode_answers_404_for_an_unknown_path() -> Result<()> {
    let sim = start().await?;
    let (authority, _) = split_url(&sim.nodes()[0].op_node_url)?;
    for path in ["/", "/chain-0/seq-9/op-node", "/chain-0/seq-0/op-beacon", "/nochain/seq-0/op-node"] {
        let reply = raw_call(&format!("http://{authority}{path}"), "eth_chainId", json!([])).await?;
        ensure!(reply.status == 404, "{path}: status {}", reply.status);
    }
    // A trailing slash still routes.
    let reply = raw_post(
        &format!("http://{authority}/chain-1/seq-1/op-geth/"),
        &json!({"jsonrpc": "2.0", "id": 7, "method": "eth_chainId", "params": []}).to_string(),
    )
    .await?;
    ensure!(reply.status == 200 && reply.result()? == json!("0x386"), "{:?}", reply.json());
    Ok(())
}

#[tokio::test]
async fn shared_port_mode_closes_connections_to_a_crashed_node_and_heals_it() -> Result<()> {
    let sim = start().await?;
    let node = sim
        .nodes()
        .into_iter()
        .find(|node| node.chain == "chain-1" && node.name == "seq-1")
        .context("node")?;
    sim.fault("chain-1/seq-1", FaultKind::Crash, FaultParams::default())?;
    // The same port still serves the other nodes; the crashed one closes without a reply.
    let crashed = raw_call(&node.op_node_url, "optimism_syncStatus", json!([])).await;
    ensure!(crashed.is_err(), "a crashed node answered: {crashed:?}");
    let other =
        raw_call(&node.op_node_url.replace("chain-1", "chain-0"), "optimism_syncStatus", json!([])).await?;
    ensure!(other.status == 200, "chain-0/seq-1 status {}", other.status);
    // A bare name shared by two chains is ambiguous.
    let ambiguous = sim.fault("seq-1", FaultKind::Stall, FaultParams::default());
    ensure!(ambiguous.is_err_and(|err| err.to_string().contains("CHAIN/NODE")), "bare name accepted");

    sim.heal("chain-1/seq-1", None)?;
    client(&node.op_node_url)?.sync_status().await?;
    Ok(())
}
