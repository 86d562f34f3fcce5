//! Text rows for the admin API's answers, shared by `ctl` and the devnet live view so that both
//! show a chain, a node and an event the same way (an operator who learnt one reads the other).

use alloy_primitives::B256;
use opc_wire::coordinator::{ChainStatus, CoordinatorEvent, NodeStatus};

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
    let reason = if node.fenced { format!("{} (fenced)", node.reason) } else { node.reason.clone() };
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
