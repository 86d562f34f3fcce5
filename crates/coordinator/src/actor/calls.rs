//! The calls an actor starts on a node for its engine (stop, head read, start, activity check,
//! replay), each a task bounded by `failover.rpc_timeout_ms` whose outcome comes back as an
//! [`Input`]; and the conductor-mode fence a chain opens at start.

use super::{ActorError, ChainActor, ReplicaRole};
use crate::{
    client::{CallError, Connections, NodeClient},
    conductor::ChainFence,
    config::{ChainConfig, Config},
    engine::{Input, StopPurpose},
    metrics as m,
    replication::Acting,
};
use alloy_primitives::B256;
use std::{collections::BTreeMap, sync::Arc};

/// The op-node and op-geth URLs of the chain's nodes, and the connections their clients share: how
/// the actor builds the clients that act, again at every term.
#[derive(Debug)]
pub(super) struct NodeAddresses {
    pub(super) urls: BTreeMap<String, (String, String)>,
    connections: Connections,
}

impl NodeAddresses {
    pub(super) fn new(urls: BTreeMap<String, (String, String)>, connections: &Connections) -> Self {
        Self { urls, connections: connections.clone() }
    }

    /// Clients for calls that act, labelled with the replica and its term when in a cluster.
    pub(super) fn action_clients(
        &self,
        replica: Option<u64>,
        acting: Acting,
    ) -> Result<BTreeMap<String, NodeClient>, (String, CallError)> {
        let labels: Vec<(&'static str, String)> = match (replica, acting) {
            (Some(id), Some(term)) => {
                vec![("x-opc-replica", id.to_string()), ("x-opc-term", term.to_string())]
            }
            _ => Vec::new(),
        };
        self.urls
            .iter()
            .map(|(node, (op_node, op_geth))| {
                NodeClient::with_headers(&self.connections, op_node, op_geth, &labels)
                    .map(|client| (node.clone(), client))
                    .map_err(|err| (node.clone(), err))
            })
            .collect()
    }
}

impl ChainActor {
    /// The client for a call that acts, or None when this replica must not act (checked on the
    /// live watch, not the cached value: leadership can lapse between two steps).
    pub(super) fn client(&self, node: &str) -> Option<NodeClient> {
        if self.acting.is_none() || self.role.acting_rx.borrow().is_none() {
            tracing::info!(chain = %self.name, node = %node, "not acting any more: call not sent");
            return None;
        }
        self.action_clients.get(node).cloned()
    }

    pub(super) fn spawn_stop(&self, node: String, purpose: StopPurpose) {
        let Some(client) = self.client(&node) else { return };
        let (results_tx, timeout, chain) =
            (self.results_tx.clone(), self.timings.rpc_timeout, self.name.clone());
        tracing::info!(chain = %chain, node = %node, purpose = %purpose, "admin_stopSequencer");
        tokio::spawn(async move {
            let outcome = client.stop_sequencer(timeout).await;
            let _ = results_tx.send(Input::Stopped { node, purpose, result: outcome.result }).await;
        });
    }

    pub(super) fn spawn_read_head(&self, node: String) {
        let Some(client) = self.client(&node) else { return };
        let (results_tx, timeout) = (self.results_tx.clone(), self.timings.rpc_timeout);
        tracing::info!(chain = %self.name, node = %node, "reading the stopped hash from optimism_syncStatus");
        tokio::spawn(async move {
            let outcome = client.sync_status(timeout).await;
            let result = outcome.result.map(|status| status.unsafe_l2.hash);
            let _ = results_tx.send(Input::HeadRead { node, result }).await;
        });
    }

    pub(super) fn spawn_start(&self, node: String, hash: B256) {
        let Some(client) = self.client(&node) else { return };
        let (results_tx, timeout) = (self.results_tx.clone(), self.timings.rpc_timeout);
        tracing::info!(chain = %self.name, node = %node, %hash, "admin_startSequencer");
        tokio::spawn(async move {
            let outcome = client.start_sequencer(hash, timeout).await;
            let _ = results_tx.send(Input::Started { node, result: outcome.result }).await;
        });
    }

    /// Posts the committed payloads after `from` to `node`, oldest first, each within the rpc
    /// timeout; stops at the first failure.
    pub(super) fn spawn_replay(&self, node: String, from: B256) {
        let (Some(client), Some(fence)) = (self.client(&node), self.fence.clone()) else { return };
        let (results_tx, timeout, chain) =
            (self.results_tx.clone(), self.timings.rpc_timeout, self.name.clone());
        tokio::spawn(async move {
            let result = match fence.payloads_after(from).await {
                None => Err(format!("its head {from} is not among the committed payloads kept")),
                Some(payloads) => {
                    tracing::info!(chain = %chain, node = %node, %from, payloads = payloads.len(), "replaying committed payloads (admin_postUnsafePayload)");
                    let mut posted = Ok(0);
                    for envelope in payloads {
                        let number = envelope.head().number;
                        if let Err(err) = client.post_unsafe_payload(envelope, timeout).await.result {
                            posted = Err(format!("block {number}: {err}"));
                            break;
                        }
                        m::replayed_payload(&chain);
                        posted = posted.map(|count| count + 1);
                    }
                    posted
                }
            };
            let _ = results_tx.send(Input::Replayed { node, result }).await;
        });
    }

    pub(super) fn spawn_check_active(&self, node: String) {
        let Some(client) = self.client(&node) else { return };
        let (results_tx, timeout) = (self.results_tx.clone(), self.timings.rpc_timeout);
        tokio::spawn(async move {
            let outcome = client.sequencer_active(timeout).await;
            let _ = results_tx.send(Input::ActiveChecked { node, result: outcome.result }).await;
        });
    }
}

/// Opens the fence of `chain` when it runs in conductor mode: in the replicated state of the
/// cluster this replica belongs to, or with its own log in the data dir.
pub(super) async fn open_fence(
    name: &str,
    chain: &ChainConfig,
    config: &Config,
    role: &ReplicaRole,
) -> Result<Option<Arc<ChainFence>>, ActorError> {
    if !chain.conductor {
        return Ok(None);
    }
    let max_payload = usize::try_from(config.conductor.max_payload_bytes).unwrap_or(usize::MAX);
    if let Some(cluster) = &role.cluster {
        return Ok(Some(Arc::new(ChainFence::replicated(
            cluster.clone(),
            role.acting_rx.clone(),
            name,
            max_payload,
        ))));
    }
    let retention = config.conductor.retention();
    let dir = crate::replica_data_dir(config);
    let fence = tokio::task::spawn_blocking({
        let name = name.to_owned();
        move || ChainFence::open(&dir, &name, retention, max_payload)
    })
    .await
    .map_err(|err| ActorError::Conductor {
        chain: name.to_owned(),
        error: crate::conductor::log::LogError::Io {
            path: crate::replica_data_dir(config),
            error: std::io::Error::other(err.to_string()),
        },
    })?
    .map_err(|error| ActorError::Conductor { chain: name.to_owned(), error })?;
    Ok(Some(Arc::new(fence)))
}
