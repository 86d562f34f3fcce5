//! [`Cluster`]: the facade the coordinator uses. Starts the store, openraft and the Raft server,
//! and turns openraft's results into this crate's errors and status.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use openraft::error::{CheckIsLeaderError, ClientWriteError, InitializeError, RaftError};
use openraft::{ChangeMembers, ServerState};
use tokio::net::TcpListener;
use tokio::sync::{Mutex, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::{ClusterConfig, ReplicaConfig};
use crate::error::{ClusterError, LeaderInfo, WriteError};
use crate::faults::NetFaults;
use crate::fence::{Fence, Holding};
use crate::network::{CampaignRequest, CampaignResponse, HttpNetworkFactory, PATH_CAMPAIGN, PeerClient};
use crate::server::{self, ServerContext, ServerHandle};
use crate::status::{ClusterStatus, MembershipView};
use crate::store::{self, SharedApplied};
use crate::types::{Applied, ChainStates, Command, Raft, RaftMetrics, ReplicaNode};
use opc_wire::conductor::Envelope;

/// How long `shutdown` waits for openraft's workers to let go of the store file.
const STORE_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// A running replica of the coordinator's Raft cluster. Cheap to clone; every clone is the same
/// replica. Call [`Cluster::shutdown`] to stop it: dropping the handles leaves it running.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

struct Inner {
    config: ClusterConfig,
    raft: Raft,
    /// The applied state machine, read without going through openraft.
    applied: SharedApplied,
    faults: NetFaults,
    /// Used for the `campaign` request of a leadership transfer.
    client: PeerClient,
    status_rx: watch::Receiver<ClusterStatus>,
    store_path: PathBuf,
    /// Taken by the first `shutdown`.
    running: Mutex<Option<Running>>,
}

/// What `shutdown` has to stop.
struct Running {
    server: ServerHandle,
    status_task: JoinHandle<()>,
    store_closed: oneshot::Receiver<()>,
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("id", &self.inner.config.id)
            .field("store_path", &self.inner.store_path)
            .field("status", &*self.inner.status_rx.borrow())
            .finish_non_exhaustive()
    }
}

/// Re-enables the leader's heartbeats when a transfer ends, however it ends.
struct HeartbeatPause<'a>(&'a Raft);

impl<'a> HeartbeatPause<'a> {
    fn new(raft: &'a Raft) -> Self {
        raft.runtime_config().heartbeat(false);
        Self(raft)
    }
}

impl Drop for HeartbeatPause<'_> {
    fn drop(&mut self) {
        self.0.runtime_config().heartbeat(true);
    }
}

impl Cluster {
    /// Opens the store in `data_dir`, starts Raft and serves peers on `raft_listener`.
    ///
    /// With an empty store, `bootstrap = true` and this id among `replicas`, it initializes the
    /// cluster with exactly `replicas`; every replica may do so, in any order (see the crate docs).
    /// A damaged store fails here with [`ClusterError::CorruptStore`] naming the file.
    pub async fn start(
        config: ClusterConfig,
        data_dir: &Path,
        raft_listener: TcpListener,
    ) -> Result<Cluster, ClusterError> {
        config.validate()?;
        let raft_config = Arc::new(config.raft_config().map_err(ClusterError::RaftConfig)?);
        let store_path = store::store_path(data_dir);
        let dir = data_dir.to_owned();
        let retention = config.payload_retention;
        let opened = match tokio::task::spawn_blocking(move || store::open(&dir, retention)).await {
            Ok(opened) => opened?,
            // redb asserts on some malformed headers instead of returning an error.
            Err(e) if e.is_panic() => {
                return Err(ClusterError::CorruptStore {
                    path: store_path,
                    problem: format!(
                        "the store library panicked while opening it: {}",
                        panic_message(e.into_panic())
                    ),
                });
            }
            Err(e) => return Err(ClusterError::Task { what: "store open", message: e.to_string() }),
        };

        let faults = NetFaults::default();
        let client = PeerClient::new(faults.clone());
        let network = HttpNetworkFactory {
            self_id: config.id,
            client: client.clone(),
            rpc_timeout: Duration::from_millis(config.rpc_timeout_ms),
            unreachable_backoff: Duration::from_millis(config.unreachable_backoff_ms),
        };
        let raft =
            Box::pin(Raft::new(config.id, raft_config, network, opened.log_store, opened.state_machine))
                .await
                .map_err(|e| ClusterError::Raft { op: "start", message: e.to_string() })?;
        // The core has loaded the store and published its first metrics once it serves a request:
        // from here on `status()` and `membership()` reflect the data dir, not blank defaults.
        if let Err(e) = raft.with_raft_state(|_| ()).await {
            let _ = raft.shutdown().await;
            return Err(ClusterError::Raft { op: "start", message: e.to_string() });
        }

        let server = server::spawn(
            raft_listener,
            ServerContext {
                raft: raft.clone(),
                faults: faults.clone(),
                fault_injection: config.fault_injection,
                campaign_retry: Duration::from_millis(config.election_timeout_min_ms),
            },
        );

        if opened.pristine && config.bootstrap && config.replica(config.id).is_some() {
            let members: BTreeMap<u64, ReplicaNode> =
                config.replicas.iter().map(|r| (r.id, ReplicaNode::from(r))).collect();
            let voters: Vec<u64> = members.keys().copied().collect();
            match raft.initialize(members).await {
                Ok(()) => tracing::info!(?voters, "initialized the cluster from cluster.replicas"),
                // Another member initialized first and already reached us: the goal is met.
                Err(RaftError::APIError(InitializeError::NotAllowed(e))) => {
                    tracing::info!(reason = %e, "cluster already initialized")
                }
                Err(e) => {
                    let _ = raft.shutdown().await;
                    let _ = server.shutdown().await;
                    return Err(ClusterError::Raft { op: "initialize", message: e.to_string() });
                }
            }
        } else {
            tracing::info!(
                id = config.id,
                pristine = opened.pristine,
                bootstrap = config.bootstrap,
                "starting from the stored state (or waiting to be added)"
            );
        }

        let (status_rx, status_task) = spawn_status_task(&raft, opened.unsnapshotted_bytes);
        Ok(Cluster {
            inner: Arc::new(Inner {
                config,
                raft,
                applied: opened.applied,
                faults,
                client,
                status_rx,
                store_path,
                running: Mutex::new(Some(Running { server, status_task, store_closed: opened.closed_rx })),
            }),
        })
    }

    /// This replica's id.
    pub fn id(&self) -> u64 {
        self.inner.config.id
    }

    /// Path of the redb file holding this replica's state.
    pub fn store_path(&self) -> &Path {
        &self.inner.store_path
    }

    /// The fault hook of this replica's outgoing messages.
    pub fn faults(&self) -> &NetFaults {
        &self.inner.faults
    }

    /// Replaces the state of `chain`, through Raft. Returns the log index of the write once it is
    /// committed by a quorum and applied here. Only the leader accepts writes.
    pub async fn write(&self, chain: impl Into<String>, state: serde_json::Value) -> Result<u64, WriteError> {
        self.put(chain, state, None).await
    }

    /// [`Cluster::write`] for a chain in conductor mode: its fence follows `holding` in the same
    /// entry, so no commit is admitted between the state and the fence it implies.
    pub async fn put(
        &self,
        chain: impl Into<String>,
        state: serde_json::Value,
        holding: Option<Holding>,
    ) -> Result<u64, WriteError> {
        let chain = chain.into();
        let op = format!("write to chain {chain:?}");
        self.client_write(op, Command::Put { chain, state, holding }).await.map(|(index, _)| index)
    }

    /// `node` commits `envelope` to the fence of `chain`. Ok once a quorum holds it and it is
    /// applied here: `Applied::Done` when the fence admitted it, `Applied::Refused` with why not.
    pub async fn commit(&self, chain: &str, node: &str, envelope: Envelope) -> Result<Applied, WriteError> {
        let op = format!("commit to chain {chain:?}");
        let command = Command::Commit { chain: chain.to_owned(), node: node.to_owned(), envelope };
        self.client_write(op, command).await.map(|(_, applied)| applied)
    }

    /// The fence of `chain` as applied on this replica (see [`Cluster::read`] about freshness).
    pub fn fence(&self, chain: &str) -> Option<Fence> {
        self.inner.applied.read().unwrap_or_else(PoisonError::into_inner).fences.get(chain).cloned()
    }

    async fn client_write(&self, op: String, command: Command) -> Result<(u64, Applied), WriteError> {
        let after_ms = self.inner.config.write_timeout_ms;
        let write = self.inner.raft.client_write(command);
        match tokio::time::timeout(Duration::from_millis(after_ms), write).await {
            Err(_) => Err(WriteError::Timeout { op, after_ms }),
            Ok(Ok(response)) => Ok((response.log_id.index, response.data)),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                Err(WriteError::NotLeader { leader: self.leader_info(f.leader_id, f.leader_node) })
            }
            Ok(Err(RaftError::APIError(e))) => Err(WriteError::Rejected { message: e.to_string() }),
            Ok(Err(RaftError::Fatal(e))) => Err(WriteError::Stopped { message: e.to_string() }),
        }
    }

    /// Confirms, by a round of heartbeats acknowledged by a quorum, that this replica still leads,
    /// and waits until everything committed before the call is applied here. A leader that was
    /// partitioned away learns here that it must not act.
    pub async fn ensure_linearizable(&self) -> Result<(), WriteError> {
        let after_ms = self.inner.config.write_timeout_ms;
        let check = self.inner.raft.ensure_linearizable();
        match tokio::time::timeout(Duration::from_millis(after_ms), check).await {
            Err(_) => Err(WriteError::Timeout { op: "leadership check".to_owned(), after_ms }),
            Ok(Ok(_read_log_id)) => Ok(()),
            Ok(Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f)))) => {
                Err(WriteError::NotLeader { leader: self.leader_info(f.leader_id, f.leader_node) })
            }
            Ok(Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(e)))) => {
                Err(WriteError::NoQuorum { message: e.to_string() })
            }
            Ok(Err(RaftError::Fatal(e))) => Err(WriteError::Stopped { message: e.to_string() }),
        }
    }

    /// The state of `chain` as applied on this replica (possibly behind the leader's; call
    /// [`Cluster::ensure_linearizable`] first on the leader for an up-to-date read).
    pub fn read(&self, chain: &str) -> Option<serde_json::Value> {
        self.inner.applied.read().unwrap_or_else(PoisonError::into_inner).chains.get(chain).cloned()
    }

    /// Every chain's state as applied on this replica.
    pub fn snapshot_all(&self) -> ChainStates {
        self.inner.applied.read().unwrap_or_else(PoisonError::into_inner).chains.clone()
    }

    /// The current status (role, term, leader, indexes, membership, lag), straight from
    /// openraft's latest metrics.
    pub fn status(&self) -> ClusterStatus {
        ClusterStatus::from_metrics(&self.inner.raft.metrics().borrow())
    }

    /// A watch of [`ClusterStatus`], updated on every change openraft reports: wait on it for a
    /// leadership change instead of polling.
    pub fn status_watch(&self) -> watch::Receiver<ClusterStatus> {
        self.inner.status_rx.clone()
    }

    /// The effective membership, with addresses (see [`ClusterStatus::membership`]).
    pub fn membership(&self) -> MembershipView {
        MembershipView::from_stored(&self.inner.raft.metrics().borrow().membership_config)
    }

    /// Adds `replica` to the cluster as a voter: first as a learner, then, once it has caught up
    /// to the membership entry that added it, as a voter. Returns once the new membership is
    /// committed. Must run on the leader. Adding an existing voter is a no-op.
    pub async fn add_replica(&self, replica: ReplicaConfig) -> Result<(), ClusterError> {
        let op = format!("add_replica({})", replica.id);
        let deadline = Instant::now() + Duration::from_millis(self.inner.config.membership_timeout_ms);
        self.require_leader("add_replica")?;
        if self.membership().voters.iter().any(|r| r.id == replica.id) {
            return Ok(());
        }
        let id = replica.id;
        tracing::info!(id, raft_addr = %replica.raft_addr, "adding replica as learner");
        let node = ReplicaNode::from(&replica);
        let added = self
            .admin_call(&op, deadline, self.inner.raft.add_learner(id, node, false))
            .await?
            .map_err(|e| self.admin_error("add_learner", e))?;
        let added_index = added.log_id.index;

        self.wait_for(&op, deadline, self.inner.config.membership_timeout_ms, |m| {
            matched_index(m, id).is_some_and(|i| i >= added_index)
        })
        .await?;
        tracing::info!(id, "learner caught up; promoting to voter");

        let change = ChangeMembers::AddVoterIds(BTreeSet::from([id]));
        self.admin_call(&op, deadline, self.inner.raft.change_membership(change, false))
            .await?
            .map_err(|e| self.admin_error("change_membership", e))?;
        tracing::info!(id, voters = %self.membership().voter_ids().iter().map(u64::to_string).collect::<Vec<_>>().join(", "), "replica added");
        Ok(())
    }

    /// Removes replica `id` from the cluster (voter or learner). Returns once the new membership
    /// is committed; from then on `id` counts for no quorum. Must run on the leader. Removing a
    /// non-member is a no-op.
    pub async fn remove_replica(&self, id: u64) -> Result<(), ClusterError> {
        let op = format!("remove_replica({id})");
        let deadline = Instant::now() + Duration::from_millis(self.inner.config.membership_timeout_ms);
        self.require_leader("remove_replica")?;
        let membership = self.membership();
        let change = if membership.voters.iter().any(|r| r.id == id) {
            ChangeMembers::RemoveVoters(BTreeSet::from([id]))
        } else if membership.learners.iter().any(|r| r.id == id) {
            ChangeMembers::RemoveNodes(BTreeSet::from([id]))
        } else {
            return Ok(());
        };
        tracing::info!(id, "removing replica");
        self.admin_call(&op, deadline, self.inner.raft.change_membership(change, false))
            .await?
            .map_err(|e| self.admin_error("change_membership", e))?;
        tracing::info!(id, voters = %self.membership().voter_ids().iter().map(u64::to_string).collect::<Vec<_>>().join(", "), "replica removed");
        Ok(())
    }

    /// Hands leadership to voter `to` and returns once this replica sees `to` leading, or fails
    /// after `cluster.transfer_timeout_ms`. Must run on the leader.
    ///
    /// openraft 0.9 has no transfer-leader call, so: wait until `to` has our whole log, pause our
    /// heartbeats (so the other voters' leader leases run out instead of being renewed), and ask
    /// `to` over the Raft transport to campaign until it wins. See the crate docs for why each
    /// step is needed. Heartbeats resume however the transfer ends.
    pub async fn transfer_leadership(&self, to: u64) -> Result<(), ClusterError> {
        self.transfer_leadership_within(to, Duration::from_millis(self.inner.config.transfer_timeout_ms))
            .await
    }

    /// [`Cluster::transfer_leadership`] with its own deadline `within`: a shutdown has less time
    /// than an operator's transfer, and the target must stop campaigning when the caller gives
    /// up (its campaign deadline is derived from this one), not seconds later.
    pub async fn transfer_leadership_within(&self, to: u64, within: Duration) -> Result<(), ClusterError> {
        let op = format!("transfer_leadership({to})");
        let after_ms = u64::try_from(within.as_millis()).unwrap_or(u64::MAX);
        let deadline = Instant::now() + within;
        self.require_leader("transfer_leadership")?;
        if to == self.id() {
            return Ok(());
        }
        let membership = self.membership();
        let Some(target) = membership.voters.iter().find(|r| r.id == to).cloned() else {
            return Err(ClusterError::NotAVoter {
                op: "transfer_leadership",
                id: to,
                voters: membership.voter_ids(),
            });
        };

        // A candidate with a shorter log than a voter's is refused by it (Raft's election rule).
        self.wait_for(&op, deadline, after_ms, |m| {
            m.state != ServerState::Leader || matched_index(m, to) >= m.last_log_index
        })
        .await?;
        self.require_leader("transfer_leadership")?;

        tracing::info!(to, "transferring leadership: pausing heartbeats and asking the target to campaign");
        let _pause = HeartbeatPause::new(&self.inner.raft);
        let rpc_timeout = Duration::from_millis(self.inner.config.rpc_timeout_ms);
        let remaining = deadline.saturating_duration_since(Instant::now());
        let campaign_ms =
            u64::try_from(remaining.saturating_sub(rpc_timeout).as_millis()).unwrap_or(u64::MAX);
        let answer: CampaignResponse = self
            .inner
            .client
            .call(
                to,
                &target.raft_addr,
                PATH_CAMPAIGN,
                &CampaignRequest { deadline_ms: campaign_ms },
                remaining,
            )
            .await
            .map_err(|e| ClusterError::Timeout {
                op: op.clone(),
                after_ms,
                last_observed: format!("campaign request failed: {e}"),
            })?;
        if !answer.leader {
            return Err(ClusterError::Timeout {
                op,
                after_ms,
                last_observed: format!("replica {to} did not win an election (its term: {})", answer.term),
            });
        }
        self.wait_for(&op, deadline, after_ms, |m| {
            m.current_leader == Some(to) && m.state != ServerState::Leader
        })
        .await?;
        tracing::info!(to, "leadership transferred");
        Ok(())
    }

    /// Stops Raft and the Raft server and waits (bounded) until the store file is closed, so the
    /// same data dir can be opened again. Idempotent.
    pub async fn shutdown(&self) -> Result<(), ClusterError> {
        let Some(running) = self.inner.running.lock().await.take() else {
            return Ok(());
        };
        tracing::info!(id = self.id(), "shutting down cluster replica");
        if let Err(e) = self.inner.raft.shutdown().await {
            tracing::warn!(error = %e, "raft core ended with an error");
        }
        if let Err(e) = running.server.shutdown().await {
            tracing::warn!(error = %e, "raft server task ended with an error");
        }
        running.status_task.abort();
        // openraft's state-machine worker and replication tasks drop their store handles right
        // after the core stops; the last one to go closes the file.
        match tokio::time::timeout(STORE_CLOSE_TIMEOUT, running.store_closed).await {
            Ok(_) => Ok(()),
            Err(_) => Err(ClusterError::Shutdown {
                problem: format!(
                    "store {} still open {} s after raft stopped",
                    self.inner.store_path.display(),
                    STORE_CLOSE_TIMEOUT.as_secs()
                ),
            }),
        }
    }

    fn leader_info(&self, id: Option<u64>, node: Option<ReplicaNode>) -> Option<LeaderInfo> {
        let id = id?;
        let api_addr =
            node.map(|n| n.api_addr).or_else(|| self.membership().replica(id).map(|r| r.api_addr.clone()));
        Some(LeaderInfo { id, api_addr })
    }

    fn require_leader(&self, op: &'static str) -> Result<(), ClusterError> {
        let (state, leader) = {
            let m = self.inner.raft.metrics();
            let m = m.borrow();
            (m.state, m.current_leader)
        };
        if state == ServerState::Leader {
            Ok(())
        } else {
            Err(ClusterError::NotLeader { op, leader: self.leader_info(leader, None) })
        }
    }

    /// Runs an openraft admin call with the operation's deadline.
    async fn admin_call<T>(
        &self,
        op: &str,
        deadline: Instant,
        call: impl std::future::Future<Output = T>,
    ) -> Result<T, ClusterError> {
        tokio::time::timeout_at(deadline, call).await.map_err(|_| ClusterError::Timeout {
            op: op.to_owned(),
            after_ms: self.inner.config.membership_timeout_ms,
            last_observed: self.inner.raft.metrics().borrow().to_string(),
        })
    }

    fn admin_error(
        &self,
        op: &'static str,
        e: RaftError<u64, ClientWriteError<u64, ReplicaNode>>,
    ) -> ClusterError {
        match e {
            RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
                ClusterError::NotLeader { op, leader: self.leader_info(f.leader_id, f.leader_node) }
            }
            other => ClusterError::Raft { op, message: other.to_string() },
        }
    }

    /// Waits until openraft's metrics satisfy `done`, or fails at `deadline` with the last metrics.
    async fn wait_for(
        &self,
        op: &str,
        deadline: Instant,
        after_ms: u64,
        mut done: impl FnMut(&RaftMetrics) -> bool,
    ) -> Result<(), ClusterError> {
        let mut metrics = self.inner.raft.metrics();
        loop {
            if done(&metrics.borrow_and_update()) {
                return Ok(());
            }
            match tokio::time::timeout_at(deadline, metrics.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => {
                    return Err(ClusterError::Raft { op: "wait", message: "raft stopped".to_owned() });
                }
                Err(_) => {
                    return Err(ClusterError::Timeout {
                        op: op.to_owned(),
                        after_ms,
                        last_observed: metrics.borrow().to_string(),
                    });
                }
            }
        }
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(message) => *message,
        Err(payload) => {
            payload.downcast_ref::<&str>().map_or_else(|| "unknown panic".to_owned(), |s| (*s).to_owned())
        }
    }
}

/// The log index `peer` is known (by this leader) to hold, if any.
fn matched_index(m: &RaftMetrics, peer: u64) -> Option<u64> {
    m.replication.as_ref()?.get(&peer)?.as_ref().map(|l| l.index)
}

/// Publishes a [`ClusterStatus`] for every metrics change and logs role and leader changes.
/// Payload bytes applied since the last snapshot above which a snapshot is taken (and the log
/// behind it purged), whatever `snapshot_every_logs` says: 1 MB blocks would otherwise leave about
/// 1 GB of log between snapshots.
pub(crate) const SNAPSHOT_EVERY_PAYLOAD_BYTES: u64 = 64 << 20;

fn spawn_status_task(
    raft: &Raft,
    unsnapshotted_bytes: Arc<std::sync::atomic::AtomicU64>,
) -> (watch::Receiver<ClusterStatus>, JoinHandle<()>) {
    let snapshotter = raft.clone();
    let mut metrics = raft.metrics();
    let initial = ClusterStatus::from_metrics(&metrics.borrow_and_update());
    let (status_tx, status_rx) = watch::channel(initial.clone());
    let task = tokio::spawn(async move {
        let mut last = initial;
        while metrics.changed().await.is_ok() {
            let status = ClusterStatus::from_metrics(&metrics.borrow_and_update());
            if status.role != last.role
                || status.leader.as_ref().map(|l| l.id) != last.leader.as_ref().map(|l| l.id)
            {
                tracing::info!(
                    id = status.id,
                    role = ?status.role,
                    term = status.term,
                    leader = %status.leader.as_ref().map_or_else(|| "none".to_owned(), |l| l.id.to_string()),
                    "cluster role changed"
                );
            }
            last = status.clone();
            status_tx.send_replace(status);
            // Every applied entry changes the metrics, so this sees each commit's bytes.
            if unsnapshotted_bytes.load(std::sync::atomic::Ordering::Relaxed) > SNAPSHOT_EVERY_PAYLOAD_BYTES {
                unsnapshotted_bytes.store(0, std::sync::atomic::Ordering::Relaxed);
                let raft = snapshotter.clone();
                tokio::spawn(async move {
                    if let Err(err) = raft.trigger().snapshot().await {
                        tracing::warn!(%err, "could not trigger a snapshot by payload bytes");
                    }
                });
            }
        }
    });
    (status_rx, task)
}
