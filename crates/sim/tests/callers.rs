//! Who calls the nodes: admin calls recorded with the coordinator replica and Raft term that sent
//! them, and one replica cut off from every node while the others still reach them.

mod common;

use alloy_primitives::B256;
use anyhow::{Context as _, Result, ensure};
use common::{Fixture, config, holds_for, wait_for};
use jsonrpsee::{
    core::ClientError,
    http_client::{HeaderMap, HeaderValue, HttpClient, HttpClientBuilder},
};
use op_sim::api::{FaultKind, FaultParams, FaultTarget, IsolateMode, LedgerEntry};
use opc_wire::api::{EthApiClient, OpAdminApiClient};
use std::time::Duration;

/// How long a black-holed request is watched for an (unwanted) effect after the heal.
const NO_EFFECT_FOR: Duration = Duration::from_millis(300);

/// A client of `url` whose requests carry `x-opc-replica` (and `x-opc-term`) as a coordinator
/// replica's do.
fn replica_client(
    url: &str,
    replica: Option<u64>,
    term: Option<u64>,
    timeout: Duration,
) -> Result<HttpClient> {
    let mut headers = HeaderMap::new();
    if let Some(replica) = replica {
        headers.insert("x-opc-replica", HeaderValue::from_str(&replica.to_string())?);
    }
    if let Some(term) = term {
        headers.insert("x-opc-term", HeaderValue::from_str(&term.to_string())?);
    }
    Ok(HttpClientBuilder::default().set_headers(headers).request_timeout(timeout).build(url)?)
}

/// One recorded admin call.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Call {
    node: String,
    method: String,
    replica: Option<u64>,
    term: Option<u64>,
    accepted: bool,
    t_ms: u64,
    answered_ms: Option<u64>,
}

impl Call {
    /// Who called what where, and whether the node did it.
    fn summary(&self) -> String {
        format!("{} {} {:?}/{:?} {}", self.node, self.method, self.replica, self.term, self.accepted)
    }
}

fn admin_calls(fixture: &Fixture) -> Vec<Call> {
    fixture
        .ledger()
        .into_iter()
        .filter_map(|entry| match entry {
            LedgerEntry::AdminCall { node, method, replica, term, accepted, t_ms, answered_ms, .. } => {
                Some(Call { node, method, replica, term, accepted, t_ms, answered_ms })
            }
            _ => None,
        })
        .collect()
}

fn is_active(fixture: &Fixture, name: &str) -> Result<bool> {
    Ok(fixture.info(name)?.active)
}

#[tokio::test]
async fn start_and_stop_calls_are_recorded_with_the_callers_replica_term_and_outcome() -> Result<()> {
    let fixture = Fixture::start(config(2, 50)).await?;
    fixture.wait_for_height("seq-1", 2).await?;
    let seq_0 = fixture.op_node_url("seq-0")?;
    let seq_1 = fixture.op_node_url("seq-1")?;
    let timeout = Duration::from_secs(10);

    let stopped = replica_client(&seq_0, Some(1), Some(3), timeout)?.admin_stop_sequencer().await?;
    // Refused by op-node: not at its head. Recorded all the same, as not accepted.
    let refused = replica_client(&seq_1, Some(2), Some(4), timeout)?.admin_start_sequencer(B256::ZERO).await;
    ensure!(matches!(refused, Err(ClientError::Call(_))), "{refused:?}");
    fixture.wait_for_head_over_rpc("seq-1", stopped).await?;
    replica_client(&seq_1, Some(2), Some(4), timeout)?.admin_start_sequencer(stopped).await?;
    // A caller that names no replica (a lone coordinator, an operator), and reads, which are not
    // recorded.
    replica_client(&seq_1, None, None, timeout)?.admin_sequencer_active().await?;
    replica_client(&seq_0, Some(1), Some(3), timeout)?.admin_sequencer_active().await?;
    let not_running = fixture.op_node("seq-0")?.admin_stop_sequencer().await;
    ensure!(matches!(not_running, Err(ClientError::Call(_))), "{not_running:?}");

    let calls = admin_calls(&fixture);
    let summary: Vec<String> = calls.iter().map(Call::summary).collect();
    ensure!(
        summary
            == [
                "seq-0 admin_stopSequencer Some(1)/Some(3) true",
                "seq-1 admin_startSequencer Some(2)/Some(4) false",
                "seq-1 admin_startSequencer Some(2)/Some(4) true",
                "seq-0 admin_stopSequencer None/None false",
            ],
        "{summary:#?}"
    );
    for call in &calls {
        ensure!(call.answered_ms.is_some_and(|answered| answered >= call.t_ms), "{calls:?}");
    }
    ensure!(calls.windows(2).all(|pair| pair[0].t_ms <= pair[1].t_ms), "arrival order: {calls:?}");
    Ok(())
}

#[tokio::test]
async fn a_call_queued_in_a_hung_op_node_is_recorded_at_its_arrival_and_answered_after_the_resume()
-> Result<()> {
    let fixture = Fixture::start(config(2, 50)).await?;
    fixture.wait_for_height("seq-1", 2).await?;
    let hang = FaultParams { target: Some(FaultTarget::OpNode), ..FaultParams::default() };
    fixture.sim.fault("seq-0", FaultKind::Hang, hang)?;
    let client = replica_client(&fixture.op_node_url("seq-0")?, Some(1), Some(7), Duration::from_secs(10))?;
    let stop = tokio::spawn(async move { client.admin_stop_sequencer().await });
    let sent_ms = fixture.sim.ledger().now_ms();
    // Held, not executed: the sequencer is still active (frozen) and nothing is recorded yet.
    holds_for("the stop held by the hung op-node", Duration::from_millis(200), async || {
        if admin_calls(&fixture).is_empty() && is_active(&fixture, "seq-0").map_err(|err| err.to_string())? {
            Ok(())
        } else {
            Err(format!("calls {:?}", admin_calls(&fixture)))
        }
    })
    .await?;
    let resumed_ms = fixture.sim.ledger().now_ms();
    fixture.sim.heal("seq-0", Some(FaultKind::Hang))?;
    stop.await.context("stop task")??;
    let calls = admin_calls(&fixture);
    let [call] = calls.as_slice() else {
        anyhow::bail!("expected one call, got {calls:?}");
    };
    ensure!(call.summary() == "seq-0 admin_stopSequencer Some(1)/Some(7) true", "{calls:?}");
    ensure!(
        call.t_ms >= sent_ms && call.t_ms < resumed_ms,
        "arrived at {} ms, sent at {sent_ms} ms, resumed at {resumed_ms} ms",
        call.t_ms
    );
    ensure!(call.answered_ms.is_some_and(|answered| answered >= resumed_ms), "{calls:?}");
    Ok(())
}

#[tokio::test]
async fn a_refused_caller_cannot_reach_any_node_while_other_replicas_still_do() -> Result<()> {
    let fixture = Fixture::start(config(3, 50)).await?;
    fixture.wait_for_height("seq-2", 2).await?;
    let timeout = Duration::from_secs(5);
    fixture.sim.isolate_caller(1, IsolateMode::Refuse);
    for name in ["seq-0", "seq-1", "seq-2"] {
        let op_node = replica_client(&fixture.op_node_url(name)?, Some(1), Some(2), timeout)?;
        let op_geth = replica_client(&fixture.op_geth_url(name)?, Some(1), None, timeout)?;
        let refused = op_node.admin_sequencer_active().await;
        ensure!(matches!(refused, Err(ClientError::Transport(_))), "{name} op-node: {refused:?}");
        let refused = op_geth.block_number().await;
        ensure!(matches!(refused, Err(ClientError::Transport(_))), "{name} op-geth: {refused:?}");
        // Replica 2, and callers that name no replica, are not affected.
        replica_client(&fixture.op_node_url(name)?, Some(2), Some(2), timeout)?
            .admin_sequencer_active()
            .await?;
        fixture.op_geth(name)?.block_number().await?;
    }
    // A refused stop never reached seq-0: it still sequences, and nothing is recorded.
    let stop = replica_client(&fixture.op_node_url("seq-0")?, Some(1), Some(2), timeout)?
        .admin_stop_sequencer()
        .await;
    ensure!(matches!(stop, Err(ClientError::Transport(_))), "{stop:?}");
    ensure!(is_active(&fixture, "seq-0")? && admin_calls(&fixture).is_empty(), "{:?}", admin_calls(&fixture));

    fixture.sim.heal_caller(Some(1));
    ensure!(fixture.sim.isolated_callers().is_empty());
    replica_client(&fixture.op_node_url("seq-0")?, Some(1), Some(2), timeout)?.admin_stop_sequencer().await?;
    ensure!(!is_active(&fixture, "seq-0")?);
    let isolations: Vec<(u64, Option<IsolateMode>)> = fixture
        .ledger()
        .into_iter()
        .filter_map(|entry| match entry {
            LedgerEntry::CallerIsolation { replica, mode, .. } => Some((replica, mode)),
            _ => None,
        })
        .collect();
    ensure!(isolations == [(1, Some(IsolateMode::Refuse)), (1, None)], "{isolations:?}");
    Ok(())
}

#[tokio::test]
async fn a_black_holed_callers_stop_is_held_unanswered_and_never_executed_even_after_the_heal() -> Result<()>
{
    let fixture = Fixture::start(config(2, 50)).await?;
    fixture.wait_for_height("seq-1", 2).await?;
    fixture.sim.isolate_caller(1, IsolateMode::Blackhole);
    let client = replica_client(&fixture.op_node_url("seq-0")?, Some(1), Some(2), Duration::from_secs(10))?;
    let stop = tokio::spawn(async move { client.admin_stop_sequencer().await });
    // Another replica reaches the node meanwhile.
    replica_client(&fixture.op_node_url("seq-0")?, Some(2), Some(2), Duration::from_secs(5))?
        .admin_sequencer_active()
        .await?;
    holds_for("the black-holed stop held", Duration::from_millis(200), async || {
        if stop.is_finished() { Err("answered".to_owned()) } else { Ok(()) }
    })
    .await?;
    fixture.sim.heal_caller(None);
    // The connection is closed unanswered, and the stop never runs.
    let outcome = stop.await.context("stop task")?;
    ensure!(matches!(outcome, Err(ClientError::Transport(_))), "{outcome:?}");
    let sealed = fixture.head("seq-0")?.number;
    holds_for("seq-0 still sequencing", NO_EFFECT_FOR, async || {
        if is_active(&fixture, "seq-0").map_err(|err| err.to_string())? && admin_calls(&fixture).is_empty() {
            Ok(())
        } else {
            Err(format!("calls {:?}", admin_calls(&fixture)))
        }
    })
    .await?;
    wait_for("seq-0 to seal again", async || {
        let head = fixture.head("seq-0").map_err(|err| err.to_string())?;
        if head.number > sealed { Ok(()) } else { Err(format!("head {head}")) }
    })
    .await?;
    Ok(())
}
