//! Text rows for the admin API's answers, shared by `ctl` and the devnet live view so that both
//! show a chain, a node and an event the same way (an operator who learnt one reads the other).

use alloy_primitives::B256;
use opc_wire::coordinator::{
    ChainStatus, ClusterInfo, ConductorStatus, CoordinatorEvent, NodeStatus, ReplicaInfo,
};

/// `0x1234ab…cdef01`: enough to tell heads apart at a glance.
pub(crate) fn short_hash(hash: &B256) -> String {
    let text = hash.to_string();
    format!("{}…{}", &text[..8], &text[text.len() - 6..])
}

/// The leader's row when the leader is judged unhealthy.
pub(crate) fn unhealthy_leader(status: &ChainStatus) -> Option<&NodeStatus> {
    let leader = status.leader.as_deref()?;
    status.nodes.iter().find(|node| node.name == leader && !node.healthy)
}

/// The phase as an operator needs it: the engine stays `steady` while it waits out the failure
/// threshold, the liveness window or a pause before it acts on an unhealthy leader, so `steady`
/// alone would hide that the leader is failing: `steady (leader unhealthy: stalled)`.
pub(crate) fn phase_text(status: &ChainStatus) -> String {
    match unhealthy_leader(status) {
        Some(leader) if status.phase == "steady" => format!("steady (leader unhealthy: {})", leader.reason),
        _ => status.phase.clone(),
    }
}

/// `chain NAME  leader NODE  phase PHASE  epoch N  stopped hash H`, then `  cannot persist: WHY`
/// while the chain's state cannot be written (the phase alone would look healthy).
pub(crate) fn chain_line(status: &ChainStatus) -> String {
    let stopped = status.stopped_hash.as_ref().map(short_hash).unwrap_or_else(|| "-".into());
    let persist =
        status.persist_error.as_deref().map(|why| format!("  cannot persist: {why}")).unwrap_or_default();
    format!(
        "chain {}  leader {}  phase {}  epoch {}  {}stopped hash {}{persist}",
        status.chain,
        status.leader.as_deref().unwrap_or("NONE"),
        phase_text(status),
        status.epoch,
        if status.paused { "PAUSED  " } else { "" },
        stopped
    )
}

/// The column titles above [`node_line`].
/// `conductor mode: fence held by seq-0, committed head 1234 (0xabcd..), last commit 120 ms ago,
/// 1200 accepted, 3 refused`.
pub(crate) fn conductor_line(conductor: &ConductorStatus) -> String {
    let holder = conductor.holder.as_deref().map_or("nobody (between leaders)".to_owned(), str::to_owned);
    let head = conductor
        .committed_head
        .map_or("none yet".to_owned(), |head| format!("{} ({})", head.number, short_hash(&head.hash)));
    let last =
        conductor.last_commit_ms_ago.map_or("none since start".to_owned(), |ms| format!("{ms} ms ago"));
    format!(
        "conductor mode: fence held by {holder}, committed head {head}, last commit {last}, {:.1} commits/s, {} accepted, {} refused",
        conductor.commits_last_10s as f64 / 10.0,
        conductor.accepted,
        conductor.refused
    )
}

pub(crate) fn node_header() -> String {
    format!(
        "{:<10} {:<8} {:<24} {:<7} {:<11} {:>9}  {:<16} {:>9}",
        "NODE", "HEALTHY", "REASON", "LEADER", "SEQUENCING", "UNSAFE", "HASH", "LATENCY"
    )
}

/// One node: verdict and reason, leader mark, sequencing, unsafe head, op-node probe latency.
pub(crate) fn node_line(status: &ChainStatus, node: &NodeStatus) -> String {
    let is_leader = status.leader.as_deref() == Some(node.name.as_str());
    let sequencing = match node.active {
        Some(true) => "yes",
        Some(false) => "no",
        None => "?",
    };
    let reason =
        if node.fenced { format!("{} (fenced)", node.reason) } else { node.reason.code().to_owned() };
    format!(
        "{:<10} {:<8} {:<24} {:<7} {:<11} {:>9}  {:<16} {:>9}",
        node.name,
        node.healthy,
        reason,
        if is_leader { "*" } else { "" },
        sequencing,
        node.unsafe_head.map_or("-".into(), |head| head.number.to_string()),
        node.unsafe_head.map_or("-".into(), |head| short_hash(&head.hash)),
        // `-` when the last probe got no answer: a refused connection is no latency.
        node.op_node_latency_ms.map_or("-".into(), |ms| format!("{ms}ms")),
    )
}

/// `  NODE: why` for every unhealthy node, below the table.
pub(crate) fn unhealthy_details(status: &ChainStatus) -> Vec<String> {
    status
        .nodes
        .iter()
        .filter(|node| !node.healthy)
        .map(|node| format!("  {}: {}", node.name, node.detail))
        .collect()
}

/// `HH:MM:SS.mmm` (UTC) of a Unix time in milliseconds.
pub(crate) fn clock(at_unix_ms: u64) -> String {
    let seconds = at_unix_ms / 1000;
    let (h, m, s) = ((seconds / 3600) % 24, (seconds / 60) % 60, seconds % 60);
    format!("{h:02}:{m:02}:{s:02}.{:03}", at_unix_ms % 1000)
}

/// One event as `ctl events` prints it: the timing, where it has one, after the detail.
pub(crate) fn event_line(event: &CoordinatorEvent) -> String {
    let took = event.duration_ms.map(|ms| format!(" ({ms} ms)")).unwrap_or_default();
    format!(
        "{} UTC  {:<10} {:<22} {:<8} {}{}",
        clock(event.at_unix_ms),
        event.chain,
        event.kind,
        event.node.as_deref().unwrap_or("-"),
        event.detail,
        took
    )
}

/// `-` for an unknown index or lag.
fn or_dash(value: Option<u64>) -> String {
    value.map_or_else(|| "-".to_owned(), |value| value.to_string())
}

/// Whether the leader acts, as far as `asked` and the leader's own answer tell: only the leader
/// knows (a follower reports only itself).
fn leader_acting(asked: &ClusterInfo, leader_view: Option<&ClusterInfo>) -> &'static str {
    let leader = asked.leader;
    match leader_view.filter(|view| view.replica == leader) {
        Some(view) if view.acting => "acting",
        Some(_) => "NOT acting",
        None if asked.replica == leader && asked.acting => "acting",
        None if asked.replica == leader => "NOT acting",
        None => "not reached",
    }
}

/// `cluster  term T  leader ID (acting)  commit N  from replica ID: applied N`, from the replica
/// that answered and, when that is not the leader, the leader's own answer (`leader_view`),
/// which alone knows whether it acts, the commit index and every replica's lag.
pub(crate) fn cluster_line(asked: &ClusterInfo, leader_view: Option<&ClusterInfo>) -> String {
    let leader = match asked.leader {
        Some(id) => format!("{id} ({})", leader_acting(asked, leader_view)),
        None => "NONE".to_owned(),
    };
    let commit = leader_view.and_then(|view| view.commit_index).or(asked.commit_index);
    format!(
        "cluster  term {}  leader {leader}  commit {}  from replica {}: {}applied {}{}",
        asked.term,
        or_dash(commit),
        or_dash(asked.replica),
        if asked.acting { "acting, " } else { "" },
        or_dash(asked.applied_index),
        if asked.membership_changing { "  MEMBERSHIP CHANGING" } else { "" },
    )
}

/// The column titles above [`replica_line`].
pub(crate) fn replica_header() -> String {
    format!("{:<8} {:<9} {:<22} {:<22} {:>9}", "REPLICA", "ROLE", "RAFT", "API", "LAG")
}

/// One member: its role, addresses and how many entries it is behind the leader's log (known
/// only from the leader's answer).
pub(crate) fn replica_line(
    asked: &ClusterInfo,
    leader_view: Option<&ClusterInfo>,
    replica: &ReplicaInfo,
) -> String {
    let role = if asked.leader == Some(replica.id) {
        "leader"
    } else if replica.voter {
        "follower"
    } else {
        "learner"
    };
    let lag = leader_view
        .and_then(|view| view.replicas.iter().find(|r| r.id == replica.id))
        .and_then(|r| r.lag_entries)
        .or(replica.lag_entries);
    format!(
        "{:<8} {:<9} {:<22} {:<22} {:>9}",
        replica.id,
        role,
        replica.raft_addr,
        replica.api_addr,
        or_dash(lag)
    )
}

#[cfg(test)]
mod tests {
    use super::{chain_line, conductor_line, node_header, node_line};
    use alloy_primitives::B256;
    use opc_wire::{
        coordinator::{ChainStatus, ConductorStatus, NodeStatus},
        health::Reason,
    };

    fn node(name: &str, reason: Reason, op_node_latency_ms: Option<u64>) -> NodeStatus {
        NodeStatus {
            name: name.into(),
            healthy: reason == Reason::Ok,
            reason,
            detail: String::new(),
            unsafe_head: None,
            safe_head: None,
            execution_head: None,
            active: None,
            op_node_latency_ms,
            op_geth_latency_ms: None,
            priority: 0,
            candidate: true,
            fenced: false,
            head_age_ms: None,
        }
    }

    fn chain(phase: &str, nodes: Vec<NodeStatus>) -> ChainStatus {
        ChainStatus {
            chain: "devnet".into(),
            leader: Some("seq-0".into()),
            phase: phase.into(),
            epoch: 1,
            paused: false,
            stopped_hash: None,
            nodes,
            ..ChainStatus::default()
        }
    }

    #[test]
    fn the_conductor_line_names_the_holder_and_the_committed_head() {
        let mut conductor = ConductorStatus { accepted: 7, refused: 2, ..ConductorStatus::default() };
        let line = conductor_line(&conductor);
        assert!(line.contains("held by nobody") && line.contains("none yet"), "{line}");
        conductor.holder = Some("seq-1".into());
        conductor.committed_head = Some(opc_wire::BlockId { hash: B256::repeat_byte(0xab), number: 42 });
        conductor.last_commit_ms_ago = Some(80);
        conductor.commits_last_10s = 5;
        let line = conductor_line(&conductor);
        assert!(line.contains("held by seq-1, committed head 42 (0xabab"), "{line}");
        assert!(line.contains("last commit 80 ms ago, 0.5 commits/s, 7 accepted, 2 refused"), "{line}");
    }

    #[test]
    fn a_node_that_did_not_answer_shows_no_latency() {
        let status = chain(
            "steady",
            vec![node("seq-0", Reason::Ok, Some(3)), node("seq-1", Reason::OpNodeUnreachable, None)],
        );
        let answered = node_line(&status, &status.nodes[0]);
        let dead = node_line(&status, &status.nodes[1]);
        assert!(answered.ends_with("      3ms"), "{answered}");
        assert!(dead.ends_with(" -") && !dead.contains("ms"), "{dead}");
        assert_eq!(answered.len(), dead.len(), "columns stay aligned:\n{answered}\n{dead}");
        assert_eq!(node_header().len(), answered.len(), "the header spans the row");
    }

    #[test]
    fn a_steady_chain_whose_leader_is_unhealthy_says_so() {
        let healthy = chain("steady", vec![node("seq-0", Reason::Ok, Some(3))]);
        assert!(chain_line(&healthy).contains("phase steady  epoch"), "{}", chain_line(&healthy));
        let failing = chain("steady", vec![node("seq-0", Reason::Stalled, Some(3))]);
        let line = chain_line(&failing);
        assert!(line.contains("phase steady (leader unhealthy: stalled)  epoch 1"), "{line}");
        // Other phases already say what is going on.
        let stopping = chain("stopping", vec![node("seq-0", Reason::Stalled, Some(3))]);
        assert!(chain_line(&stopping).contains("phase stopping  epoch"), "{}", chain_line(&stopping));
    }
}
