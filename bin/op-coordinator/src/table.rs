//! Text rows for the admin API's answers, shared by `ctl` and the devnet live view so that both
//! show a chain, a node and an event the same way (an operator who learnt one reads the other).

use alloy_primitives::B256;
use opc_wire::coordinator::{ChainStatus, ClusterInfo, CoordinatorEvent, NodeStatus, ReplicaInfo};

/// `0x1234ab…cdef01`: enough to tell heads apart at a glance.
pub(crate) fn short_hash(hash: &B256) -> String {
    let text = hash.to_string();
    format!("{}…{}", &text[..8], &text[text.len() - 6..])
}

/// `chain NAME  leader NODE  phase PHASE  epoch N  stopped hash H`.
pub(crate) fn chain_line(status: &ChainStatus) -> String {
    let stopped = status.stopped_hash.as_ref().map(short_hash).unwrap_or_else(|| "-".into());
    format!(
        "chain {}  leader {}  phase {}  epoch {}  {}stopped hash {}",
        status.chain,
        status.leader.as_deref().unwrap_or("NONE"),
        status.phase,
        status.epoch,
        if status.paused { "PAUSED  " } else { "" },
        stopped
    )
}

/// The column titles above [`node_line`].
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
        "{:<10} {:<8} {:<24} {:<7} {:<11} {:>9}  {:<16} {:>7}ms",
        node.name,
        node.healthy,
        reason,
        if is_leader { "*" } else { "" },
        sequencing,
        node.unsafe_head.map_or("-".into(), |head| head.number.to_string()),
        node.unsafe_head.map_or("-".into(), |head| short_hash(&head.hash)),
        node.op_node_latency_ms.map_or("-".into(), |ms| ms.to_string()),
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
