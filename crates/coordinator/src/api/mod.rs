//! The admin API: `coordinator_*` JSON-RPC on `[rpc] listen`, plus `GET /healthz` and
//! `GET /readyz`; and `GET /metrics` on `[metrics] listen`.
//!
//! Handlers never touch chain state: they send a command to the chain's actor and await its reply.
//! When a JWT secret is configured, mutating methods require `Authorization: Bearer <HS256 JWT>`,
//! and with `rpc.jwt_on_reads` every method does. Every request is bounded (`limits`).
//!
//! In a cluster every replica answers reads from its own (replicated) view, and forwards a request
//! with a mutating method to the leader replica's API as it came (body and `Authorization`), so a
//! caller may talk to any replica. Without a known leader the call fails with an error saying so;
//! a forwarded request is never forwarded again (`x-opc-forwarded`), so two replicas that
//! disagree about the leader answer an error instead of bouncing it.
//!
//! # Layout
//!
//! - this file: the `coordinator_*` handlers ([`AdminApi`]);
//! - `server`: the HTTP server: routes, the JWT check, dispatch ([`AdminServer`]);
//! - `forward`: sending changes to the leader replica ([`Forwarding`]);
//! - `limits`: batch, body, reply and connection bounds ([`ApiSettings`]);
//! - `events`: `coordinator_events` paging.

mod events;
mod forward;
mod limits;
mod server;

pub use forward::Forwarding;
pub(crate) use forward::{FORWARDED_HEADER, HttpClient, http_client, post_json};
pub use limits::{ApiBody, ApiSettings};
pub use server::{AdminServer, serve_admin, serve_metrics};
pub(crate) use server::{PeerAddr, reply, serve_requests};

use crate::{
    actor::{ChainCommand, ChainHandle},
    engine::{CommandError, HandoverTarget},
    replication::{self, Acting},
};
use alloy_primitives::B256;
use jsonrpsee::{
    Methods,
    core::{RpcResult, async_trait},
    types::ErrorObjectOwned,
};
use opc_cluster::{Cluster, ReplicaConfig};
use opc_wire::coordinator::{ChainStatus, ClusterInfo, CoordinatorApiServer, CoordinatorEvent, ReplicaInfo};
use opc_wire::text::Echo;
use std::{collections::BTreeMap, sync::Arc, time::Duration};
use tokio::sync::{oneshot, watch};

/// Methods that change something; they need the JWT when one is configured, and in a cluster they
/// run on the leader replica.
pub const MUTATING_METHODS: [&str; 7] = [
    "coordinator_setActiveSequencer",
    "coordinator_startElection",
    "coordinator_stopElection",
    "coordinator_addReplica",
    "coordinator_removeReplica",
    "coordinator_transferLeadership",
    "coordinator_forgetStaleNodes",
];
/// JSON-RPC code of a refused token.
pub const UNAUTHORIZED_CODE: i32 = -32001;
/// JSON-RPC code of a mutating call that no leader replica could take.
pub const NO_LEADER_CODE: i32 = -32002;
/// JSON-RPC code of a command that asked for what already holds (a second pause, a resume while
/// running): nothing changed. `ctl` says so and succeeds.
pub const UNCHANGED_CODE: i32 = -32003;

/// The `coordinator_*` handlers.
#[derive(Debug, Clone)]
pub struct AdminApi {
    chains: Arc<BTreeMap<String, ChainHandle>>,
    /// How long `setActiveSequencer` may take before the caller is told to check the events.
    handover_timeout: Duration,
    /// The Raft replica, in a cluster.
    cluster: Option<Cluster>,
    /// Whether this replica acts.
    acting_rx: watch::Receiver<Acting>,
}

fn invalid(message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(jsonrpsee::types::error::INVALID_PARAMS_CODE, message.into(), None::<()>)
}

fn failed(message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(-32000, message.into(), None::<()>)
}

/// An operator command's refusal on the wire: its text, under a code a client can act on.
fn refused(refusal: CommandError) -> ErrorObjectOwned {
    let code = match &refusal {
        _ if refusal.is_unchanged() => UNCHANGED_CODE,
        CommandError::UnknownNode { .. } => jsonrpsee::types::error::INVALID_PARAMS_CODE,
        _ => -32000,
    };
    ErrorObjectOwned::owned(code, refusal.to_string(), None::<()>)
}

/// The configured chains, for "unknown chain" errors.
fn known_chains(chains: &BTreeMap<String, ChainHandle>) -> String {
    chains.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
}

impl AdminApi {
    /// Handlers over the chains' actors (and the Raft replica, in a cluster).
    pub fn new(
        chains: Arc<BTreeMap<String, ChainHandle>>,
        handover_timeout: Duration,
        cluster: Option<Cluster>,
        acting_rx: watch::Receiver<Acting>,
    ) -> Self {
        Self { chains, handover_timeout, cluster, acting_rx }
    }

    fn cluster(&self) -> RpcResult<&Cluster> {
        self.cluster
            .as_ref()
            .ok_or_else(|| failed("this coordinator runs alone (no [cluster] in its config)"))
    }

    fn cluster_info(&self) -> ClusterInfo {
        let acting = self.acting_rx.borrow().is_some();
        let Some(cluster) = &self.cluster else {
            return ClusterInfo {
                replica: None,
                acting,
                term: 0,
                leader: None,
                leader_api_addr: None,
                replicas: Vec::new(),
                membership_changing: false,
                last_log_index: None,
                commit_index: None,
                applied_index: None,
            };
        };
        let status = cluster.status();
        let info = |replica: &ReplicaConfig, voter: bool| ReplicaInfo {
            id: replica.id,
            raft_addr: replica.raft_addr.clone(),
            api_addr: replica.api_addr.clone(),
            voter,
            lag_entries: status
                .is_leader()
                .then(|| status.replication_lag.get(&replica.id).copied().unwrap_or(0)),
        };
        let mut replicas: Vec<ReplicaInfo> =
            status.membership.voters.iter().map(|replica| info(replica, true)).collect();
        replicas.extend(status.membership.learners.iter().map(|replica| info(replica, false)));
        ClusterInfo {
            replica: Some(status.id),
            acting,
            term: status.term,
            leader: status.leader.as_ref().map(|leader| leader.id),
            leader_api_addr: status.leader.as_ref().and_then(|leader| leader.api_addr.clone()),
            replicas,
            membership_changing: status.membership.changing,
            last_log_index: status.last_log_index,
            commit_index: replication::commit_index(&status),
            applied_index: status.applied_index,
        }
    }

    fn chain(&self, chain: Option<&str>) -> RpcResult<&ChainHandle> {
        match chain {
            Some(name) => self.chains.get(name).ok_or_else(|| {
                invalid(format!(
                    "unknown chain {}; configured chains: {}",
                    Echo(name),
                    known_chains(&self.chains)
                ))
            }),
            None if self.chains.len() == 1 => {
                self.chains.values().next().ok_or_else(|| invalid("no chain configured"))
            }
            None => Err(invalid(format!(
                "this coordinator serves several chains ({}); pass the chain name (`op-coordinator ctl --chain`)",
                known_chains(&self.chains)
            ))),
        }
    }

    async fn ask<T>(
        &self,
        chain: &ChainHandle,
        make: impl FnOnce(oneshot::Sender<T>) -> ChainCommand,
    ) -> RpcResult<T> {
        chain.ask(make).await.ok_or_else(|| failed("chain actor stopped"))
    }

    async fn status_of(&self, chain: Option<String>) -> RpcResult<ChainStatus> {
        let handle = self.chain(chain.as_deref())?;
        self.ask(handle, ChainCommand::Status).await
    }

    /// The methods, for a server.
    pub fn methods(self) -> Methods {
        self.into_rpc().into()
    }
}

#[async_trait]
impl CoordinatorApiServer for AdminApi {
    async fn get_active_sequencer(&self, chain: Option<String>) -> RpcResult<Option<String>> {
        Ok(self.status_of(chain).await?.leader)
    }

    async fn set_active_sequencer(&self, name: String, chain: Option<String>) -> RpcResult<()> {
        let handle = self.chain(chain.as_deref())?;
        let outcome = tokio::time::timeout(
            self.handover_timeout,
            self.ask(handle, |reply| ChainCommand::Transfer { to: HandoverTarget::Named(name.clone()), reply }),
        )
        .await
        .map_err(|_| {
            failed(format!(
                "hand-over to {} still in progress after {} s; `op-coordinator ctl events` shows its progress",
                Echo(&name),
                self.handover_timeout.as_secs()
            ))
        })??;
        outcome.map_err(refused)
    }

    async fn start_election(&self, chain: Option<String>) -> RpcResult<()> {
        let handle = self.chain(chain.as_deref())?;
        self.ask(handle, |reply| ChainCommand::SetPaused { paused: false, reply }).await?.map_err(refused)
    }

    async fn stop_election(&self, chain: Option<String>) -> RpcResult<()> {
        let handle = self.chain(chain.as_deref())?;
        self.ask(handle, |reply| ChainCommand::SetPaused { paused: true, reply }).await?.map_err(refused)
    }

    async fn election_stopped(&self, chain: Option<String>) -> RpcResult<bool> {
        Ok(self.status_of(chain).await?.paused)
    }

    async fn get_stopped_hash(&self, chain: Option<String>) -> RpcResult<Option<B256>> {
        Ok(self.status_of(chain).await?.stopped_hash)
    }

    async fn status(&self, chain: Option<String>) -> RpcResult<Vec<ChainStatus>> {
        let handles: Vec<&ChainHandle> = match chain.as_deref() {
            Some(_) => vec![self.chain(chain.as_deref())?],
            None => self.chains.values().collect(),
        };
        // Every chain's actor at once: asked one after another, a coordinator of a thousand busy
        // chains would answer after the sum of their waits.
        futures::future::try_join_all(
            handles.into_iter().map(|handle| self.ask(handle, ChainCommand::Status)),
        )
        .await
    }

    async fn cluster_membership(&self) -> RpcResult<ClusterInfo> {
        Ok(self.cluster_info())
    }

    async fn add_replica(
        &self,
        id: u64,
        raft_addr: String,
        api_addr: String,
        conductor_addr: Option<String>,
    ) -> RpcResult<ClusterInfo> {
        self.cluster()?
            .add_replica(ReplicaConfig { id, raft_addr, api_addr, conductor_addr })
            .await
            .map_err(|err| failed(format!("adding replica {id}: {err}")))?;
        Ok(self.cluster_info())
    }

    async fn remove_replica(&self, id: u64) -> RpcResult<ClusterInfo> {
        self.cluster()?
            .remove_replica(id)
            .await
            .map_err(|err| failed(format!("removing replica {id}: {err}")))?;
        Ok(self.cluster_info())
    }

    async fn transfer_leadership(&self, id: u64) -> RpcResult<ClusterInfo> {
        self.cluster()?
            .transfer_leadership(id)
            .await
            .map_err(|err| failed(format!("moving leadership to replica {id}: {err}")))?;
        Ok(self.cluster_info())
    }

    async fn events(
        &self,
        chain: Option<String>,
        limit: Option<u64>,
        before: Option<u64>,
        after: Option<u64>,
    ) -> RpcResult<Vec<CoordinatorEvent>> {
        let query = events::EventsQuery::new(limit, before, after).map_err(invalid)?;
        let handles: Vec<&ChainHandle> = match chain.as_deref() {
            Some(_) => vec![self.chain(chain.as_deref())?],
            None if query.has_cursor() => vec![self.chain(None).map_err(|_| {
                invalid(format!(
                    "before and after count events of one chain; pass the chain name (one of {})",
                    known_chains(&self.chains)
                ))
            })?],
            None => self.chains.values().collect(),
        };
        let mut timeline = Vec::new();
        for handle in handles {
            // The whole kept timeline (a few hundred events): paging picks from it.
            timeline
                .extend(self.ask(handle, |reply| ChainCommand::Events { limit: usize::MAX, reply }).await?);
        }
        Ok(query.page(timeline))
    }

    async fn forget_stale_nodes(&self, chain: Option<String>) -> RpcResult<Vec<String>> {
        let handle = self.chain(chain.as_deref())?;
        self.ask(handle, |reply| ChainCommand::ForgetStale { reply }).await?.map_err(failed)
    }
}
