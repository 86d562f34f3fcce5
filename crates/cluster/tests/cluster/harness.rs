//! Fixtures: replicas on loopback port 0 with redb files in a temp dir, and waits on the status
//! watches with deadlines (never fixed sleeps). A failed wait panics with the last statuses seen.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use opc_cluster::{Cluster, ClusterConfig, ClusterStatus, ReplicaConfig, Role};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// Upper bound of any single wait in these tests; generous for a loaded 2-core CI machine.
pub(crate) const WAIT: Duration = Duration::from_secs(15);

pub(crate) fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// The API address a replica advertises; opaque to the crate, checked in redirects.
pub(crate) fn api_addr(id: u64) -> String {
    format!("replica-{id}.api.test:8545")
}

/// Faster timing than the defaults, still far above loopback latency.
pub(crate) fn test_config(id: u64, replicas: Vec<ReplicaConfig>) -> ClusterConfig {
    let mut config = ClusterConfig::new(id, replicas);
    config.heartbeat_interval_ms = 50;
    config.election_timeout_min_ms = 250;
    config.election_timeout_max_ms = 500;
    config.rpc_timeout_ms = 500;
    config.unreachable_backoff_ms = 100;
    config.write_timeout_ms = 3000;
    config.membership_timeout_ms = 10_000;
    config.transfer_timeout_ms = 5000;
    config
}

pub(crate) struct Replica {
    pub(crate) config: ClusterConfig,
    pub(crate) dir: PathBuf,
    pub(crate) raft_addr: SocketAddr,
    pub(crate) cluster: Option<Cluster>,
}

/// A set of replicas sharing one temp dir.
pub(crate) struct Harness {
    pub(crate) tmp: TempDir,
    pub(crate) replicas: BTreeMap<u64, Replica>,
}

impl Harness {
    /// Binds `n` listeners (ids 1..=n), then starts every replica concurrently from empty dirs.
    pub(crate) async fn start(n: u64, tweak: impl Fn(&mut ClusterConfig)) -> anyhow::Result<Harness> {
        init_tracing();
        let tmp = tempfile::tempdir()?;
        let mut listeners = BTreeMap::new();
        for id in 1..=n {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            listeners.insert(id, listener);
        }
        let members: Vec<ReplicaConfig> = listeners
            .iter()
            .map(|(id, l)| {
                Ok(ReplicaConfig {
                    id: *id,
                    raft_addr: l.local_addr()?.to_string(),
                    api_addr: api_addr(*id),
                    conductor_addr: None,
                })
            })
            .collect::<anyhow::Result<_>>()?;

        let mut starts = Vec::new();
        let mut replicas = BTreeMap::new();
        for (id, listener) in listeners {
            let mut config = test_config(id, members.clone());
            tweak(&mut config);
            let dir = tmp.path().join(format!("replica-{id}"));
            let raft_addr = listener.local_addr()?;
            let (start_config, start_dir) = (config.clone(), dir.clone());
            starts.push(async move { Cluster::start(start_config, &start_dir, listener).await });
            replicas.insert(id, Replica { config, dir, raft_addr, cluster: None });
        }
        // All at the same instant: every replica initializes with the same membership.
        let started = futures::future::join_all(starts).await;
        for (replica, cluster) in replicas.values_mut().zip(started) {
            replica.cluster = Some(cluster.context("start replica")?);
        }
        Ok(Harness { tmp, replicas })
    }

    /// Binds a listener for a new replica `id` that will join with `bootstrap = false`, and
    /// starts it. Returns the entry to pass to `add_replica`.
    pub(crate) async fn start_joiner(
        &mut self,
        id: u64,
        tweak: impl Fn(&mut ClusterConfig),
    ) -> anyhow::Result<ReplicaConfig> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let raft_addr = listener.local_addr()?;
        let me = ReplicaConfig {
            id,
            raft_addr: raft_addr.to_string(),
            api_addr: api_addr(id),
            conductor_addr: None,
        };
        let mut config = test_config(id, vec![me.clone()]);
        config.bootstrap = false;
        tweak(&mut config);
        let dir = self.tmp.path().join(format!("replica-{id}"));
        let cluster = Cluster::start(config.clone(), &dir, listener).await?;
        self.replicas.insert(id, Replica { config, dir, raft_addr, cluster: Some(cluster) });
        Ok(me)
    }

    pub(crate) fn cluster(&self, id: u64) -> &Cluster {
        match self.replicas.get(&id).and_then(|r| r.cluster.as_ref()) {
            Some(cluster) => cluster,
            None => panic!("replica {id} is not running"),
        }
    }

    pub(crate) fn running_ids(&self) -> Vec<u64> {
        self.replicas.iter().filter(|(_, r)| r.cluster.is_some()).map(|(id, _)| *id).collect()
    }

    /// Graceful shutdown of one replica; its data dir stays.
    pub(crate) async fn stop(&mut self, id: u64) -> anyhow::Result<()> {
        let replica = self.replicas.get_mut(&id).context("unknown replica")?;
        if let Some(cluster) = replica.cluster.take() {
            cluster.shutdown().await?;
        }
        Ok(())
    }

    /// Starts replica `id` again from its data dir, on the same address.
    pub(crate) async fn restart(&mut self, id: u64) -> anyhow::Result<()> {
        let replica = self.replicas.get_mut(&id).context("unknown replica")?;
        let listener = rebind(replica.raft_addr).await?;
        replica.cluster = Some(Cluster::start(replica.config.clone(), &replica.dir, listener).await?);
        Ok(())
    }

    pub(crate) async fn shutdown_all(&mut self) -> anyhow::Result<()> {
        for id in self.running_ids() {
            self.stop(id).await?;
        }
        Ok(())
    }

    /// Waits until exactly one of `ids` leads and all of `ids` name it; returns its id.
    pub(crate) async fn wait_leader(&self, ids: &[u64]) -> u64 {
        let statuses = self
            .wait_all("one leader that every replica agrees on", ids, |s| agreed_leader(s).is_some())
            .await;
        agreed_leader(&statuses).unwrap_or_default()
    }

    /// Waits until every replica in `ids` has applied `index`.
    pub(crate) async fn wait_applied(&self, ids: &[u64], index: u64) {
        self.wait_all(&format!("index {index} applied"), ids, |s| {
            s.iter().all(|s| s.applied_index.is_some_and(|i| i >= index))
        })
        .await;
    }

    /// Waits until `done` holds over the statuses of `ids`, waking on any status change.
    pub(crate) async fn wait_all(
        &self,
        what: &str,
        ids: &[u64],
        mut done: impl FnMut(&[ClusterStatus]) -> bool,
    ) -> Vec<ClusterStatus> {
        let mut watches: Vec<_> = ids.iter().map(|id| self.cluster(*id).status_watch()).collect();
        let deadline = Instant::now() + WAIT;
        loop {
            let statuses: Vec<ClusterStatus> =
                watches.iter_mut().map(|w| w.borrow_and_update().clone()).collect();
            if done(&statuses) {
                return statuses;
            }
            let any_change = futures::future::select_all(watches.iter_mut().map(|w| Box::pin(w.changed())));
            match tokio::time::timeout_at(deadline, any_change).await {
                Ok((Ok(()), _, _)) => {}
                Ok((Err(_), index, _)) => {
                    panic!("status watch of replica {} closed while waiting for {what}", ids[index])
                }
                Err(_) => panic!("timed out after {WAIT:?} waiting for {what}; last statuses: {statuses:#?}"),
            }
        }
    }
}

/// The leader all `statuses` agree on, if exactly one of them leads.
pub(crate) fn agreed_leader(statuses: &[ClusterStatus]) -> Option<u64> {
    let mut leaders = statuses.iter().filter(|s| s.role == Role::Leader);
    let leader = leaders.next()?.id;
    if leaders.next().is_some() {
        return None;
    }
    statuses.iter().all(|s| s.leader.as_ref().map(|l| l.id) == Some(leader)).then_some(leader)
}

/// Binds `addr` again after its previous owner stopped. Retried briefly: the kernel may have
/// handed the port to an outgoing connection in between.
async fn rebind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match TcpListener::bind(addr).await {
            Ok(listener) => return Ok(listener),
            Err(e) if Instant::now() < deadline => {
                tracing::warn!(%addr, error = %e, "rebind failed; retrying");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e).context(format!("rebind {addr}")),
        }
    }
}

/// A minimal HTTP/1.1 POST over a fresh connection: (status code, body).
pub(crate) async fn http_post(addr: SocketAddr, path: &str, body: &str) -> anyhow::Result<(u16, String)> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        anyhow::Ok(String::from_utf8_lossy(&response).into_owned())
    };
    let response = tokio::time::timeout(WAIT, exchange).await.context("HTTP exchange timed out")??;
    let Some((head, body)) = response.split_once("\r\n\r\n") else {
        bail!("malformed response: {response:?}")
    };
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("no status in {head:?}"))?;
    Ok((status, body.to_owned()))
}
