//! Config validation at start and the remote fault endpoint.

use opc_cluster::{Cluster, ClusterError, FaultSpec, ReplicaConfig};
use tokio::net::TcpListener;

use crate::harness::{api_addr, http_post, init_tracing, test_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_config_fails_start_naming_every_bad_key() -> anyhow::Result<()> {
    init_tracing();
    let dir = tempfile::tempdir()?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let me = ReplicaConfig {
        id: 1,
        raft_addr: listener.local_addr()?.to_string(),
        api_addr: api_addr(1),
        conductor_addr: None,
    };
    let mut config = test_config(9, vec![me]);
    config.election_timeout_min_ms = config.heartbeat_interval_ms;

    let err = Cluster::start(config, dir.path(), listener).await.expect_err("invalid config");
    let message = err.to_string();
    assert!(matches!(err, ClusterError::Config(_)), "{err:?}");
    assert!(message.contains("cluster.id 9 is not in cluster.replicas"), "{message}");
    assert!(message.contains("cluster.election_timeout_min_ms (50) must be greater than"), "{message}");
    assert!(!dir.path().join(opc_cluster::STORE_FILE).exists(), "no store is created for a bad config");
    Ok(())
}

async fn single(fault_injection: bool) -> anyhow::Result<(Cluster, std::net::SocketAddr, tempfile::TempDir)> {
    init_tracing();
    let dir = tempfile::tempdir()?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let me =
        ReplicaConfig { id: 1, raft_addr: addr.to_string(), api_addr: api_addr(1), conductor_addr: None };
    let mut config = test_config(1, vec![me]);
    config.fault_injection = fault_injection;
    Ok((Cluster::start(config, dir.path(), listener).await?, addr, dir))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fault_endpoint_answers_403_when_fault_injection_is_off() -> anyhow::Result<()> {
    let (cluster, addr, _dir) = single(false).await?;
    let (status, body) = http_post(addr, "/fault", r#"{"drop_to":[2]}"#).await?;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("cluster.fault_injection"), "{body}");
    let (status, _) = http_post(addr, "/fault/heal", "").await?;
    assert_eq!(status, 403);
    assert_eq!(cluster.faults().current(), FaultSpec::default());
    cluster.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fault_endpoint_sets_and_heals_faults_when_enabled() -> anyhow::Result<()> {
    let (cluster, addr, _dir) = single(true).await?;
    let (status, body) = http_post(addr, "/fault", r#"{"drop_to":[2,3],"delay_ms":{"4":25}}"#).await?;
    assert_eq!(status, 200, "{body}");
    let spec = cluster.faults().current();
    assert_eq!(spec.drop_to.into_iter().collect::<Vec<_>>(), vec![2, 3]);
    assert_eq!(spec.delay_ms.get(&4), Some(&25));

    let (status, body) = http_post(addr, "/fault", r#"{"drop_too":[2]}"#).await?;
    assert_eq!(status, 400, "a typo in the spec is refused: {body}");

    let (status, _) = http_post(addr, "/fault/heal", "").await?;
    assert_eq!(status, 200);
    assert_eq!(cluster.faults().current(), FaultSpec::default());
    cluster.shutdown().await?;
    Ok(())
}
