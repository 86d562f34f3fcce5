//! Coordinator replicas in one process: three Raft replicas from one config watching a simulated
//! chain. Only the confirmed Raft leader acts; any replica answers reads and forwards changes.

use jsonrpsee::http_client::HttpClient;
use op_coordinator::{Listeners, config::Config};
use op_sim::Simulator;
use op_sim::api::{FaultKind, FaultParams, IsolateMode, LedgerEntry};
use opc_test_support::{FAST_SETTINGS, WAIT, admin_client, stopped_chain, wait_until};
use opc_wire::{
    conductor::ConductorApiClient,
    coordinator::{ClusterInfo, CoordinatorApiClient},
};
use std::{net::SocketAddr, sync::Arc};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

struct Replica {
    id: u64,
    api: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), op_coordinator::StartError>>,
}

struct Cluster {
    sim: Arc<Simulator>,
    /// Each replica's conductor endpoint, in conductor mode.
    conductors: Vec<SocketAddr>,
    _data_dir: tempfile::TempDir,
    replicas: Vec<Replica>,
}

const CLUSTER_TIMINGS: &str =
    "heartbeat_interval_ms = 50\nelection_timeout_min_ms = 300\nelection_timeout_max_ms = 500\n";

impl Cluster {
    async fn start(size: u64) -> Self {
        Self::start_with(size, false).await
    }

    /// `size` replicas; `conducted`: the chain in conductor mode, node `i` committing to replica
    /// `i mod size`'s endpoint (so most commits reach a replica that must forward them).
    async fn start_with(size: u64, conducted: bool) -> Self {
        let mut sim_config = stopped_chain();
        let mut conductors = Vec::new();
        let (listeners, mut entries) = opc_test_support::replica_listeners(size).await;
        if conducted {
            entries.clear();
            for (id, raft, rpc) in &listeners {
                let conductor = TcpListener::bind("127.0.0.1:0").await.expect("bind conductor");
                let addr = conductor.local_addr().expect("addr");
                entries.push_str(&format!(
                    "\n[[cluster.replicas]]\nid = {id}\nraft_addr = \"{}\"\napi_addr = \"{}\"\nconductor_addr = \"{addr}\"\n",
                    raft.local_addr().expect("addr"),
                    rpc.local_addr().expect("addr"),
                ));
                conductors.push((addr, conductor));
            }
            let chain = &mut sim_config.chains[0];
            for (i, node) in chain.nodes.iter_mut().enumerate() {
                let (addr, _) = &conductors[i % conductors.len()];
                node.options.conductor_rpc = Some(format!("http://{addr}/{}/{}", chain.name, node.name));
            }
        }
        let conductor_addrs = conductors.iter().map(|(addr, _)| *addr).collect();
        let mut conductors = conductors.into_iter().map(|(_, listener)| Some(listener)).collect::<Vec<_>>();
        let sim = Arc::new(Simulator::start(sim_config).await.expect("simulator starts"));
        let data_dir = tempfile::tempdir().expect("temp dir");
        let text = format!(
            "data_dir = {:?}\n{}\n{FAST_SETTINGS}\n[cluster]\nid = 1\n{CLUSTER_TIMINGS}{entries}",
            data_dir.path().display().to_string(),
            sim.coordinator_config()
        );
        let mut replicas = Vec::new();
        for (i, (id, raft, rpc)) in listeners.into_iter().enumerate() {
            let conductor = conductors.get_mut(i).and_then(Option::take);
            let config =
                Config::from_toml_str(&text, Vec::new(), &[("cluster.id".to_owned(), id.to_string())])
                    .unwrap_or_else(|errors| panic!("invalid test config: {errors}\n{text}"));
            let api = rpc.local_addr().expect("addr");
            let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
            let task = tokio::spawn(op_coordinator::run(
                config,
                Listeners { rpc, metrics: None, raft: Some(raft), conductor },
                async move {
                    let _ = shutdown_rx.await;
                },
            ));
            replicas.push(Replica { id, api, shutdown: Some(shutdown_tx), task });
        }
        Self { sim, conductors: conductor_addrs, _data_dir: data_dir, replicas }
    }

    fn admin(&self, id: u64) -> HttpClient {
        let replica = self.replicas.iter().find(|replica| replica.id == id).expect("replica");
        admin_client(replica.api)
    }

    /// The replica every live replica agrees is acting, once there is one.
    async fn wait_for_acting_leader(&self, among: &[u64]) -> u64 {
        wait_until("one acting leader replica that every replica names", WAIT, || async {
            let mut infos: Vec<ClusterInfo> = Vec::new();
            for id in among {
                infos.push(self.admin(*id).cluster_membership().await.ok()?);
            }
            let acting: Vec<u64> =
                infos.iter().filter(|info| info.acting).filter_map(|info| info.replica).collect();
            let leader = infos.first()?.leader?;
            (acting == [leader] && infos.iter().all(|info| info.leader == Some(leader))).then_some(leader)
        })
        .await
    }

    async fn stop(&mut self, id: u64) {
        let replica = self.replicas.iter_mut().find(|replica| replica.id == id).expect("replica");
        if let Some(shutdown) = replica.shutdown.take() {
            let _ = shutdown.send(());
        }
        let _ = (&mut replica.task).await;
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for replica in &mut self.replicas {
            replica.task.abort();
        }
        self.sim.shutdown();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_elect_one_acting_leader_that_runs_the_chain_and_any_replica_takes_changes() {
    let mut cluster = Cluster::start(3).await;
    let leader = cluster.wait_for_acting_leader(&[1, 2, 3]).await;
    // The acting replica elects a sequencer; every replica reports it.
    let sequencer = wait_until("a sequencer elected", WAIT, || async {
        let statuses = [1, 2, 3].map(|id| cluster.admin(id));
        let mut leaders = Vec::new();
        for admin in &statuses {
            leaders.push(admin.get_active_sequencer(None).await.ok()??);
        }
        leaders.windows(2).all(|pair| pair[0] == pair[1]).then(|| leaders[0].clone())
    })
    .await;
    wait_until("the sequencer produces", WAIT, || async {
        (cluster.sim.invariants()[0].blocks_sealed >= 5).then_some(())
    })
    .await;
    assert_eq!(opc_test_support::active_nodes(&cluster.sim), vec![sequencer.clone()]);

    // A change sent to a follower is forwarded to the leader and visible everywhere.
    let follower = [1, 2, 3].into_iter().find(|id| *id != leader).expect("a follower");
    cluster.admin(follower).stop_election(None).await.expect("pause through a follower");
    for id in [1, 2, 3] {
        wait_until("pause replicated", WAIT, || async {
            cluster.admin(id).election_stopped(None).await.ok()?.then_some(())
        })
        .await;
    }
    cluster.admin(follower).start_election(None).await.expect("resume through a follower");

    // The acting replica goes away: another takes over, and the chain keeps its sequencer.
    cluster.stop(leader).await;
    let survivors: Vec<u64> = [1, 2, 3].into_iter().filter(|id| *id != leader).collect();
    let next = cluster.wait_for_acting_leader(&survivors).await;
    assert_ne!(next, leader);
    let sealed = cluster.sim.invariants()[0].blocks_sealed;
    wait_until("blocks after the replica change", WAIT, || async {
        (cluster.sim.invariants()[0].blocks_sealed >= sealed + 5).then_some(())
    })
    .await;
    let report = cluster.sim.invariants().remove(0);
    assert!(report.is_safe(), "{report:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_acting_replica_that_reaches_no_sequencer_hands_its_leadership_to_one_that_does() {
    let cluster = Cluster::start(3).await;
    let blind = cluster.wait_for_acting_leader(&[1, 2, 3]).await;
    let sequencer = wait_until("a sequencer elected", WAIT, || async {
        cluster.admin(blind).get_active_sequencer(None).await.ok()?
    })
    .await;
    wait_until("the sequencer produces", WAIT, || async {
        (cluster.sim.invariants()[0].blocks_sealed >= 5).then_some(())
    })
    .await;

    // The acting replica loses its path to every node, then the leader sequencer dies: only a
    // replica that still reaches the nodes can fail over.
    cluster.sim.isolate_caller(blind, IsolateMode::Refuse);
    cluster.sim.fault(&sequencer, FaultKind::Crash, FaultParams::default()).expect("crash the leader");
    let crashed_at = cluster.sim.ledger().now_ms();
    let next = wait_until("another replica acting", WAIT, || async {
        let others: Vec<u64> = [1, 2, 3].into_iter().filter(|id| *id != blind).collect();
        let next = cluster.wait_for_acting_leader(&others).await;
        (next != blind).then_some(next)
    })
    .await;
    // Ground truth: a block sealed after the crash by another node.
    let (producer, _) = wait_until("a new sequencer producing", WAIT, || async {
        cluster.sim.ledger_entries(0).into_iter().find_map(|entry| match entry {
            LedgerEntry::Block { producer, t_ms, number, .. }
                if t_ms > crashed_at && producer != sequencer =>
            {
                Some((producer, number))
            }
            _ => None,
        })
    })
    .await;
    let report = cluster.sim.invariants().remove(0);
    assert!(report.is_safe(), "{report:#?}");
    // Only the replica that took over started it.
    let starts: Vec<(Option<u64>, String)> = cluster
        .sim
        .ledger_entries(0)
        .into_iter()
        .filter_map(|entry| match entry {
            LedgerEntry::AdminCall { node, method, replica, accepted: true, t_ms, .. }
                if method == "admin_startSequencer" && t_ms > crashed_at =>
            {
                Some((replica, node))
            }
            _ => None,
        })
        .collect();
    assert_eq!(starts.first(), Some(&(Some(next), producer)), "starts after the crash: {starts:?}");
    cluster.sim.heal_caller(None);
}

/// Conductor mode in a cluster: every block is a Raft entry before op-sim publishes it; nodes
/// commit to different replicas (followers forward to the leader); when the acting replica goes
/// away, the next one holds the same fence and the chain keeps its sequencer. Ground truth: no
/// re-org, no double sequencing, and every block the sequencer published was accepted (the
/// simulator drops a block whose commit failed).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_conductor_mode_commits_go_through_raft_and_survive_the_acting_replica() {
    let mut cluster = Cluster::start_with(3, true).await;
    let leader = cluster.wait_for_acting_leader(&[1, 2, 3]).await;
    let sequencer = wait_until("a sequencer elected and producing", WAIT, || async {
        let active = cluster.admin(leader).get_active_sequencer(None).await.ok()??;
        (cluster.sim.invariants()[0].blocks_sealed >= 5).then_some(active)
    })
    .await;
    let status = cluster.admin(leader).status(None).await.expect("status").remove(0);
    let fence = status.conductor.expect("the chain runs in conductor mode");
    assert_eq!(fence.holder.as_deref(), Some(sequencer.as_str()));
    // Every replica's endpoint answers for the chain: the followers forward to the leader.
    for addr in &cluster.conductors {
        let url = format!("http://{addr}/devnet/{sequencer}");
        let client = jsonrpsee::http_client::HttpClientBuilder::default().build(&url).expect("client");
        assert!(client.leader().await.expect("conductor_leader"), "{url} names the sequencer");
        let other = format!("http://{addr}/devnet/{}", if sequencer == "seq-0" { "seq-1" } else { "seq-0" });
        let client = jsonrpsee::http_client::HttpClientBuilder::default().build(&other).expect("client");
        assert!(!client.leader().await.expect("conductor_leader"), "{other} is not the sequencer");
    }

    cluster.stop(leader).await;
    let survivors: Vec<u64> = [1, 2, 3].into_iter().filter(|id| *id != leader).collect();
    let next = cluster.wait_for_acting_leader(&survivors).await;
    let sealed = cluster.sim.invariants()[0].blocks_sealed;
    wait_until("blocks committed through the next acting replica", WAIT, || async {
        (cluster.sim.invariants()[0].blocks_sealed >= sealed + 5).then_some(())
    })
    .await;
    let status = cluster.admin(next).status(None).await.expect("status").remove(0);
    let fence = status.conductor.expect("conductor status");
    assert!(fence.committed_head.is_some_and(|head| head.number >= sealed), "{fence:?}");
    let ledger = cluster.sim.ledger_entries(0);
    let (mut published, mut dropped) = (0, 0);
    for entry in &ledger {
        match entry {
            LedgerEntry::Block { producer, .. } if *producer == sequencer => published += 1,
            LedgerEntry::CommitFailed { node, .. } if *node == sequencer => dropped += 1,
            _ => {}
        }
    }
    assert!(published >= 10, "{published} blocks published");
    // While no replica acts (the lease lapsing, an election), commits fail and op-node retries:
    // a few dropped blocks, never a published one without a commit.
    assert!(dropped < published, "{dropped} dropped, {published} published");
    let report = cluster.sim.invariants().remove(0);
    assert!(report.is_safe(), "{report:#?}");
}
