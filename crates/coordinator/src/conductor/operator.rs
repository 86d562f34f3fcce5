//! op-conductor's operator surface on each node's path `/<chain>/<node>`, so the tools operators
//! use with op-conductor (op-conductor-ops, scripts, dashboards) work against the coordinator.
//!
//! op-conductor runs one sidecar per sequencer, in a Raft cluster whose leader's sequencer leads.
//! Here one coordinator serves every node of a chain, so each method answers with its nearest
//! honest meaning: the "servers" are the chain's configured nodes, the "leader" is the node that
//! holds the chain's fence (who `conductor_leader` answers true for), and whatever changes the
//! chain goes through the chain's actor, exactly as the admin API's commands do.
//!
//! | method | ours |
//! |---|---|
//! | `leaderWithID` | the fence holder as a [`ServerInfo`] (`id` the node name, `addr` its `op_node_url`); `{"id":"","addr":"","suffrage":0}` between leaders, as op-conductor answers without a Raft leader |
//! | `active` | the chain's automation runs: not paused, and the chain is acted on (block time known, stored state matches the config) |
//! | `paused` | the chain is paused (`ctl pause`) |
//! | `stopped` | always false: the endpoint answering means the coordinator runs |
//! | `sequencerHealthy` | this node's health verdict, as the coordinator's probes last judged it |
//! | `pause` / `resume` | pause or resume the whole chain's automation; asking for the state it is in is a success, as with op-conductor |
//! | `stop` | refused: no one node's conductor can be stopped; the error names `candidate = false`, `pause` and the process |
//! | `overrideLeader(true)` | refused: the coordinator never answers "leader" for a node it did not elect; the error names the alternatives |
//! | `overrideLeader(false)` | success: there is no override to clear |
//! | `leaderOverridden` | always false |
//! | `transferLeader` | on the leader's path: a hand-over to the first eligible candidate by priority, then name; elsewhere refused (op-conductor's followers refuse it too) |
//! | `transferLeaderToServer(id, addr)` | a hand-over to node `id`; `addr` must be its `op_node_url` or empty |
//! | `clusterMembership` | the chain's configured nodes; `suffrage` 0 for a candidate, 1 for `candidate = false`; `version` 0 (membership is the config) |
//! | `addServerAsVoter`, `addServerAsNonvoter`, `removeServer` | refused with the config key to edit |
//!
//! Hand-overs answer when they end (as `coordinator_setActiveSequencer`), within the same timeout.

use super::ChainFence;
use crate::{
    actor::{ChainCommand, ChainHandle},
    config::normalize_url,
    engine::{CommandError, HandoverTarget},
};
use jsonrpsee::{
    core::{RpcResult, async_trait},
    types::ErrorObjectOwned,
};
use opc_wire::{
    conductor::{ClusterMembership, ConductorOpsApiServer, OPERATOR_REFUSED_CODE, ServerInfo, Suffrage},
    coordinator::ChainStatus,
    text::Echo,
};
use std::{sync::Arc, time::Duration};
use tokio::sync::oneshot;

/// One node of a chain as the endpoint serves it, built once from the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEndpoint {
    /// The node's name: the last segment of its path, its `id` as a server.
    pub name: String,
    /// Its op-node RPC: its `addr` as a server, and where the proxy sends `optimism_*` and `admin_*`.
    pub op_node_url: String,
    /// Its op-geth RPC: where the proxy sends `eth_*`.
    pub op_geth_url: String,
    /// Whether it may be elected: a voter if so, a nonvoter otherwise.
    pub candidate: bool,
    /// The source addresses that may call its path; empty: any.
    pub allow: Vec<std::net::IpAddr>,
}

impl NodeEndpoint {
    /// The node as op-conductor describes a server.
    pub fn server_info(&self) -> ServerInfo {
        let suffrage = if self.candidate { Suffrage::Voter } else { Suffrage::Nonvoter };
        ServerInfo { id: self.name.clone(), addr: self.op_node_url.clone(), suffrage }
    }
}

/// What `leaderWithID` answers while no node leads: op-conductor's shape with empty fields.
fn no_server() -> ServerInfo {
    ServerInfo { id: String::new(), addr: String::new(), suffrage: Suffrage::Voter }
}

/// The node `transferLeaderToServer(id, addr)` names, or why the pair names none.
fn target_of<'a>(
    chain: &str,
    nodes: &'a [NodeEndpoint],
    id: &str,
    addr: &str,
) -> Result<&'a NodeEndpoint, String> {
    let Some(node) = nodes.iter().find(|node| node.name == id) else {
        let known: Vec<&str> = nodes.iter().map(|node| node.name.as_str()).collect();
        return Err(format!(
            "no node {} in chain {chain}; its servers are {} (conductor_clusterMembership lists them)",
            Echo(id),
            known.join(", ")
        ));
    };
    if !addr.is_empty() && normalize_url(addr) != normalize_url(&node.op_node_url) {
        return Err(format!(
            "addr {} does not match node {id}, whose addr is {} (chains.{chain}.sequencers.{id}.op_node_url); pass \
             that, or an empty addr to name the node by id alone",
            Echo(addr),
            node.op_node_url
        ));
    }
    Ok(node)
}

/// `conductor_active`: automation runs on the chain.
fn automation_runs(status: &ChainStatus) -> bool {
    !status.paused && status.held.is_none() && status.config_mismatch.is_none()
}

/// Why a membership change is not a thing here, for `method` on `chain`.
fn membership_is_config(method: &str, chain: &str) -> String {
    format!(
        "{method} is not available: a chain's servers are its configured sequencer nodes, not a Raft \
         membership. To add one, add a [chains.{chain}.sequencers.<name>] table (op_node_url, op_geth_url; \
         candidate = false for a nonvoter) and restart the coordinator; to remove one, delete its table and \
         restart (then `op-coordinator ctl forget-stale-nodes` if the stored state still names it)"
    )
}

fn refused(message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(OPERATOR_REFUSED_CODE, message.into(), None::<()>)
}

/// op-conductor's operator methods on one node's path.
#[derive(Debug, Clone)]
pub(super) struct NodeOperator {
    /// The chain's actor, the one path to its state and commands (shared with the admin API).
    pub(super) chain: ChainHandle,
    /// The chain's fence: who leads.
    pub(super) fence: Arc<ChainFence>,
    /// The node whose path this is.
    pub(super) node: String,
    /// Every node of the chain, in config order (the servers of `clusterMembership`).
    pub(super) nodes: Arc<[NodeEndpoint]>,
    /// How long a hand-over may take before the caller is told to check the events.
    pub(super) handover_timeout: Duration,
}

impl NodeOperator {
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> ChainCommand) -> RpcResult<T> {
        self.chain
            .ask(make)
            .await
            .ok_or_else(|| refused("the chain's actor stopped (the coordinator is shutting down)"))
    }

    async fn status(&self) -> RpcResult<ChainStatus> {
        self.ask(ChainCommand::Status).await
    }

    async fn set_paused(&self, paused: bool) -> RpcResult<()> {
        match self.ask(|reply| ChainCommand::SetPaused { paused, reply }).await? {
            Err(refusal) if !refusal.is_unchanged() => Err(refused(refusal.to_string())),
            _ => Ok(()),
        }
    }

    /// The answer to a membership change: `method` is not available, the config is.
    fn membership_is_config(&self, method: &str) -> RpcResult<()> {
        Err(refused(membership_is_config(method, self.fence.chain())))
    }

    async fn hand_over(&self, to: HandoverTarget) -> RpcResult<()> {
        let what = match &to {
            HandoverTarget::Named(node) => format!("the hand-over to {node}"),
            HandoverTarget::AwayFrom(node) => format!("the hand-over away from {node}"),
        };
        let outcome = tokio::time::timeout(
            self.handover_timeout,
            self.ask(|reply| ChainCommand::Transfer { to, reply }),
        )
        .await
        .map_err(|_| {
            refused(format!(
                "{what} is still in progress after {} s; `op-coordinator ctl events` shows its progress",
                self.handover_timeout.as_secs()
            ))
        })??;
        outcome.map_err(|refusal: CommandError| refused(refusal.to_string()))
    }
}

#[async_trait]
impl ConductorOpsApiServer for NodeOperator {
    async fn leader_with_id(&self) -> RpcResult<ServerInfo> {
        let holder = self.fence.view().holder;
        let leader = holder.and_then(|holder| self.nodes.iter().find(|node| node.name == holder));
        Ok(leader.map_or_else(no_server, NodeEndpoint::server_info))
    }

    async fn active(&self) -> RpcResult<bool> {
        Ok(automation_runs(&self.status().await?))
    }

    async fn paused(&self) -> RpcResult<bool> {
        Ok(self.status().await?.paused)
    }

    async fn stopped(&self) -> RpcResult<bool> {
        Ok(false)
    }

    async fn sequencer_healthy(&self) -> RpcResult<bool> {
        let status = self.status().await?;
        Ok(status.nodes.iter().any(|node| node.name == self.node && node.healthy))
    }

    async fn pause(&self) -> RpcResult<()> {
        self.set_paused(true).await
    }

    async fn resume(&self) -> RpcResult<()> {
        self.set_paused(false).await
    }

    async fn stop(&self) -> RpcResult<()> {
        let chain = self.fence.chain();
        Err(refused(format!(
            "conductor_stop is not available: one coordinator serves every node, so no node's conductor can be \
             stopped alone. To keep {node} from ever being elected set chains.{chain}.sequencers.{node}.candidate \
             = false; to stop automation use conductor_pause (`op-coordinator ctl pause`); to stop the coordinator, \
             stop its process",
            node = self.node
        )))
    }

    async fn override_leader(&self, enabled: bool) -> RpcResult<()> {
        if !enabled {
            return Ok(());
        }
        Err(refused(
            "conductor_overrideLeader(true) is not available: the coordinator decides who leads and never \
             answers `leader` for a node it did not elect. Move the role with conductor_transferLeaderToServer \
             (`op-coordinator ctl transfer`); if every coordinator is gone, call admin_overrideLeader on the \
             op-node itself (docs/operations.md, \"Moving from op-conductor\")",
        ))
    }

    async fn leader_overridden(&self) -> RpcResult<bool> {
        Ok(false)
    }

    async fn transfer_leader(&self) -> RpcResult<()> {
        self.hand_over(HandoverTarget::AwayFrom(self.node.clone())).await
    }

    async fn transfer_leader_to_server(&self, id: String, addr: String) -> RpcResult<()> {
        let target = target_of(self.fence.chain(), &self.nodes, &id, &addr).map_err(refused)?;
        self.hand_over(HandoverTarget::Named(target.name.clone())).await
    }

    async fn cluster_membership(&self) -> RpcResult<ClusterMembership> {
        Ok(ClusterMembership {
            servers: self.nodes.iter().map(NodeEndpoint::server_info).collect(),
            version: 0,
        })
    }

    async fn add_server_as_voter(
        &self,
        _: Option<String>,
        _: Option<String>,
        _: Option<u64>,
    ) -> RpcResult<()> {
        self.membership_is_config("conductor_addServerAsVoter")
    }

    async fn add_server_as_nonvoter(
        &self,
        _: Option<String>,
        _: Option<String>,
        _: Option<u64>,
    ) -> RpcResult<()> {
        self.membership_is_config("conductor_addServerAsNonvoter")
    }

    async fn remove_server(&self, _: Option<String>, _: Option<u64>) -> RpcResult<()> {
        self.membership_is_config("conductor_removeServer")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes() -> Vec<NodeEndpoint> {
        let node = |name: &str, port: u16, candidate: bool| NodeEndpoint {
            name: name.to_owned(),
            op_node_url: format!("http://10.0.0.1:{port}"),
            op_geth_url: format!("http://10.0.0.1:{}", port + 1000),
            candidate,
            allow: Vec::new(),
        };
        vec![node("a", 7545, true), node("b", 7546, false)]
    }

    #[test]
    fn a_node_is_a_voter_when_it_is_a_candidate_and_its_addr_is_its_op_node_url() {
        let nodes = nodes();
        let a = ServerInfo { id: "a".into(), addr: "http://10.0.0.1:7545".into(), suffrage: Suffrage::Voter };
        assert_eq!(nodes[0].server_info(), a);
        assert_eq!(nodes[1].server_info().suffrage, Suffrage::Nonvoter);
        assert_eq!(
            no_server(),
            ServerInfo { id: String::new(), addr: String::new(), suffrage: Suffrage::Voter }
        );
    }

    #[test]
    fn a_transfer_target_is_named_by_id_and_its_addr_must_match_when_given() {
        let nodes = nodes();
        assert_eq!(target_of("c", &nodes, "b", "").map(|node| node.name.as_str()), Ok("b"));
        assert_eq!(
            target_of("c", &nodes, "b", "HTTP://10.0.0.1:7546/").map(|node| node.name.as_str()),
            Ok("b")
        );
        let wrong = target_of("c", &nodes, "b", "http://10.0.0.1:7545").expect_err("a's addr");
        assert!(
            wrong.contains("chains.c.sequencers.b.op_node_url") && wrong.contains("http://10.0.0.1:7546"),
            "{wrong}"
        );
        let unknown = target_of("c", &nodes, "zed", "").expect_err("no such node");
        assert!(unknown.contains("its servers are a, b"), "{unknown}");
    }

    #[test]
    fn a_membership_change_names_the_config_table_to_edit() {
        let text = membership_is_config("conductor_removeServer", "devnet");
        assert!(text.starts_with("conductor_removeServer is not available"), "{text}");
        assert!(
            text.contains("[chains.devnet.sequencers.<name>]") && text.contains("candidate = false"),
            "{text}"
        );
    }
}
