//! Health verdicts with reasons; the probe loops that feed them are in `health/probing.rs`.
//!
//! Every node is probed on its own timer (`optimism_syncStatus` on op-node and
//! `eth_getBlockByNumber("latest")` on op-geth, concurrently, each with its own deadline), so a
//! hung node never delays the probes of the others. A probe yields a raw result with a reason;
//! the verdict changes only after `failure_threshold` consecutive failures or `success_threshold`
//! consecutive successes, so one dropped probe neither fails over nor flaps.
//!
//! | raw reason              | when                                                            |
//! |-------------------------|-----------------------------------------------------------------|
//! | `op_node_unreachable`   | op-node refused or closed the connection                        |
//! | `op_node_timeout`       | op-node did not answer within `probe_timeout_ms`               |
//! | `op_node_malformed`     | op-node answered something that is not a sync status            |
//! | `op_geth_unreachable`   | likewise for op-geth                                            |
//! | `op_geth_timeout`       |                                                                 |
//! | `op_geth_malformed`     | includes a `null` latest block                                  |
//! | `engine_not_initialised`| op-node reports all-zero refs                                   |
//! | `admin_disabled`        | `admin_*` answers -32601: the node cannot be controlled         |
//! | `not_sequencer`         | the node said `sequencer is not enabled`                        |
//! | `stalled`               | the leader's unsafe head has not advanced for `unsafe_stall_ms` |
//! | `execution_lag`         | op-geth is more than `max_execution_lag_blocks` behind op-node  |
//! | `lagging`               | a non-leader is more than `max_candidate_lag_blocks` behind     |
//! | `ok`                    | none of the above                                               |

mod probing;

pub(crate) use probing::Paced;
pub use probing::{
    Commits, Pace, ProbeReport, ProbeSchedule, pace_of, probe_phase, run_prober, start_window,
};

use crate::client::{CallError, Timed};
use opc_wire::{BlockHeader, L2BlockRef, RollupConfig, SyncStatus, op_node_errors::AdminError};
use std::{collections::BTreeMap, time::Duration};
use tokio::time::Instant;

/// Thresholds of the verdicts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthSettings {
    /// Consecutive failed probes before a healthy node becomes unhealthy.
    pub failure_threshold: u32,
    /// Consecutive good probes before an unhealthy node becomes healthy again.
    pub success_threshold: u32,
    /// The leader is stalled when its unsafe head has not advanced for this long.
    pub unsafe_stall: Duration,
    /// op-geth may trail op-node by this many blocks.
    pub max_execution_lag_blocks: u64,
    /// A non-leader may trail the most advanced node by this many blocks.
    pub max_candidate_lag_blocks: u64,
}

/// Why a probe passed or failed: the wire type, so the status carries it typed end to end.
pub use opc_wire::health::Reason;

/// One probe of a node: both calls with their outcomes.
#[derive(Debug, Clone)]
pub struct Probe {
    /// When the probe finished.
    pub at: Instant,
    /// `optimism_syncStatus`.
    pub sync: Timed<SyncStatus>,
    /// `eth_getBlockByNumber("latest")`; `None` when not asked: a leader in conductor mode that
    /// commits on schedule proves its op-geth builds blocks, so only its op-node is probed.
    pub geth: Option<Timed<BlockHeader>>,
    /// `optimism_rollupConfig`, asked on the first probe and again after the node was unreachable
    /// (it may have come back as another chain's node); `None` when not asked.
    pub rollup: Option<Timed<RollupConfig>>,
}

/// What the coordinator knows about one node.
#[derive(Debug, Clone)]
pub struct NodeHealth {
    /// The verdict after thresholds.
    pub healthy: bool,
    /// Reason of the latest probe.
    pub reason: Reason,
    /// Human-readable detail of the reason.
    pub detail: String,
    consecutive_failures: u32,
    consecutive_successes: u32,
    /// A verdict was reached before: thresholds apply only to changes of an existing verdict.
    judged: bool,
    /// op-node's unsafe head, last seen.
    pub unsafe_head: Option<L2BlockRef>,
    /// op-node's safe head, last seen.
    pub safe_head: Option<L2BlockRef>,
    /// op-geth's head number, last seen.
    pub execution_head: Option<u64>,
    /// When the unsafe head was last seen to move (or first seen).
    pub head_advanced_at: Option<Instant>,
    /// True when the latest op-node probe got any answer (even an error or a bad reply).
    pub reachable: bool,
    /// When op-node last answered at all.
    pub last_answer_at: Option<Instant>,
    /// `admin_sequencerActive`, last seen.
    pub active: Option<bool>,
    /// The admin API answered -32601.
    pub admin_disabled: bool,
    /// The node said `sequencer is not enabled`.
    pub not_sequencer: bool,
    /// Latency of the last op-node call.
    pub op_node_latency: Option<Duration>,
    /// Latency of the last op-geth call.
    pub op_geth_latency: Option<Duration>,
}

impl Default for NodeHealth {
    fn default() -> Self {
        Self {
            healthy: false,
            reason: Reason::Unknown,
            detail: "not probed yet".into(),
            consecutive_failures: 0,
            consecutive_successes: 0,
            judged: false,
            unsafe_head: None,
            safe_head: None,
            execution_head: None,
            head_advanced_at: None,
            reachable: false,
            last_answer_at: None,
            active: None,
            admin_disabled: false,
            not_sequencer: false,
            op_node_latency: None,
            op_geth_latency: None,
        }
    }
}

/// The health of every node of a chain.
#[derive(Debug, Clone)]
pub struct ChainHealth {
    /// Per node, by name.
    pub nodes: BTreeMap<String, NodeHealth>,
    settings: HealthSettings,
    /// The leader and since when, so a new leader is not judged stalled by its follower past.
    leader: Option<(String, Instant)>,
}

fn call_reason(err: &CallError, unreachable: Reason, timeout: Reason, malformed: Reason) -> Reason {
    match err {
        CallError::Unreachable(_) => unreachable,
        CallError::Timeout(_) => timeout,
        CallError::Malformed(_) => malformed,
        CallError::Rpc { kind: AdminError::AdminDisabled, .. } => malformed,
        CallError::Rpc { .. } => malformed,
    }
}

impl ChainHealth {
    /// Nodes never probed yet.
    pub fn new(names: impl IntoIterator<Item = String>, settings: HealthSettings) -> Self {
        Self {
            nodes: names.into_iter().map(|name| (name, NodeHealth::default())).collect(),
            settings,
            leader: None,
        }
    }

    /// Tells the tracker who leads; the stall clock of a new leader starts now.
    pub fn set_leader(&mut self, leader: Option<&str>, now: Instant) {
        let unchanged = self.leader.as_ref().map(|(name, _)| name.as_str()) == leader;
        if !unchanged {
            self.leader = leader.map(|name| (name.to_owned(), now));
        }
    }

    /// The most advanced unsafe head number any node reported.
    pub fn best_number(&self) -> Option<u64> {
        self.nodes.values().filter_map(|node| node.unsafe_head.map(|head| head.number)).max()
    }

    /// When any node other than `excluded` last saw its unsafe head move: the chain's pulse as
    /// seen through the followers.
    pub fn chain_advanced_at(&self, excluded: &str) -> Option<Instant> {
        self.nodes
            .iter()
            .filter(|(name, _)| name.as_str() != excluded)
            .filter_map(|(_, node)| node.head_advanced_at)
            .max()
    }

    /// Records `admin_sequencerActive`.
    pub fn observe_active(&mut self, name: &str, outcome: &Timed<bool>, at: Instant) {
        let Some(node) = self.nodes.get_mut(name) else { return };
        match &outcome.result {
            Ok(active) => {
                node.active = Some(*active);
                node.admin_disabled = false;
                node.last_answer_at = Some(at);
            }
            Err(CallError::Rpc { kind: AdminError::AdminDisabled, .. }) => {
                node.admin_disabled = true;
                node.last_answer_at = Some(at);
            }
            // A node that does not answer may or may not be sequencing: unknown, not its last word.
            Err(err) if err.is_unreachable() => node.active = None,
            Err(_) => {}
        }
    }

    /// Records that a node said `sequencer is not enabled`.
    pub fn mark_not_sequencer(&mut self, name: &str) {
        if let Some(node) = self.nodes.get_mut(name) {
            node.not_sequencer = true;
            node.active = Some(false);
        }
    }

    /// The stall bound follows the chain's block time, known only once the chain tells it.
    pub fn set_unsafe_stall(&mut self, unsafe_stall: Duration) {
        self.settings.unsafe_stall = unsafe_stall;
    }

    /// Records a probe and updates the verdict.
    pub fn observe_probe(&mut self, name: &str, probe: &Probe) {
        let best = self.best_number();
        let leader_since = self.leader.as_ref().filter(|(leader, _)| leader == name).map(|(_, since)| *since);
        let settings = self.settings.clone();
        let Some(node) = self.nodes.get_mut(name) else { return };
        // A refused connection fails in about 0 ms: that is no latency of the node, so a call
        // that got no answer leaves none (`-` in status), not a misleading `0ms`.
        node.op_node_latency = probe.sync.answered().then_some(probe.sync.latency);
        if let Some(geth) = &probe.geth {
            node.op_geth_latency = geth.answered().then_some(geth.latency);
        }
        let was_reachable = node.reachable;
        node.reachable = !matches!(&probe.sync.result, Err(err) if err.is_unreachable());
        if node.reachable {
            node.last_answer_at = Some(probe.at);
            if !was_reachable && node.judged {
                // Back after being unreachable: possibly restarted with other flags, so what it
                // said about itself ("not a sequencer", admin disabled) is no longer known.
                node.not_sequencer = false;
                node.admin_disabled = false;
            }
        }
        if let Ok(status) = &probe.sync.result
            && !status.is_uninitialised()
        {
            let moved = node
                .unsafe_head
                .is_none_or(|old| status.unsafe_l2.number > old.number || status.unsafe_l2.hash != old.hash);
            if moved {
                node.head_advanced_at = Some(probe.at);
            }
            node.unsafe_head = Some(status.unsafe_l2);
            node.safe_head = Some(status.safe_l2);
        }
        if let Some(Ok(block)) = probe.geth.as_ref().map(|geth| &geth.result) {
            node.execution_head = Some(block.number.to::<u64>());
        }
        let (reason, detail) = evaluate(node, probe, best, leader_since, &settings);
        node.reason = reason;
        node.detail = detail;
        if reason == Reason::Ok {
            node.consecutive_successes += 1;
            node.consecutive_failures = 0;
            // The first verdict has no history to flap about: it is taken at once.
            if !node.judged || node.consecutive_successes >= settings.success_threshold {
                node.healthy = true;
            }
        } else {
            node.consecutive_failures += 1;
            node.consecutive_successes = 0;
            if !node.judged || node.consecutive_failures >= settings.failure_threshold {
                node.healthy = false;
            }
        }
        node.judged = true;
    }
}

fn evaluate(
    node: &NodeHealth,
    probe: &Probe,
    best: Option<u64>,
    leader_since: Option<Instant>,
    settings: &HealthSettings,
) -> (Reason, String) {
    let status = match &probe.sync.result {
        Ok(status) => status,
        Err(err) => {
            let reason =
                call_reason(err, Reason::OpNodeUnreachable, Reason::OpNodeTimeout, Reason::OpNodeMalformed);
            return (reason, format!("op-node optimism_syncStatus: {err}"));
        }
    };
    // Not asked this time (a leader whose commits prove its op-geth builds blocks): no execution
    // lag is judged. Its last answer is older than this op-node head, and comparing the two would
    // call a leader that commits every block lagging.
    let execution = match probe.geth.as_ref().map(|geth| &geth.result) {
        Some(Ok(block)) => Some(block.number.to::<u64>()),
        Some(Err(err)) => {
            let reason =
                call_reason(err, Reason::OpGethUnreachable, Reason::OpGethTimeout, Reason::OpGethMalformed);
            return (reason, format!("op-geth eth_getBlockByNumber(latest): {err}"));
        }
        None => None,
    };
    if status.is_uninitialised() {
        return (
            Reason::EngineNotInitialised,
            "op-node reports all-zero refs (engine not initialised)".into(),
        );
    }
    if node.admin_disabled {
        return (Reason::AdminDisabled, "admin API disabled (start op-node with --rpc.enable-admin)".into());
    }
    if node.not_sequencer {
        return (
            Reason::NotSequencer,
            "sequencer is not enabled (start op-node with --sequencer.enabled)".into(),
        );
    }
    let head = status.unsafe_l2.number;
    if let Some(execution) = execution
        && head > execution + settings.max_execution_lag_blocks
    {
        return (
            Reason::ExecutionLag,
            format!(
                "op-geth at block {execution} is {} behind op-node's unsafe head {head} (max {})",
                opc_wire::text::count(head - execution, "block"),
                settings.max_execution_lag_blocks
            ),
        );
    }
    if let Some(since) = leader_since {
        let advanced = node.head_advanced_at.map_or(since, |at| at.max(since));
        let quiet = probe.at.saturating_duration_since(advanced);
        if quiet > settings.unsafe_stall {
            return (
                Reason::Stalled,
                format!(
                    "leader's unsafe head {head} has not advanced for {} ms (max {} ms)",
                    quiet.as_millis(),
                    settings.unsafe_stall.as_millis()
                ),
            );
        }
    } else if let Some(best) = best
        && best > head + settings.max_candidate_lag_blocks
    {
        return (
            Reason::Lagging,
            format!(
                "unsafe head {head} is {} behind the most advanced node ({best}; max {})",
                opc_wire::text::count(best - head, "block"),
                settings.max_candidate_lag_blocks
            ),
        );
    }
    let execution = execution.map_or_else(|| "-".to_owned(), |number| number.to_string());
    (Reason::Ok, format!("unsafe head {head}, op-geth {execution}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;
    use alloy_primitives::B256;

    /// The thresholds every health test judges with (`probing`'s tests too).
    pub(super) fn settings() -> HealthSettings {
        HealthSettings {
            failure_threshold: 2,
            success_threshold: 3,
            unsafe_stall: Duration::from_millis(1000),
            max_execution_lag_blocks: 4,
            max_candidate_lag_blocks: 8,
        }
    }

    /// A probe at `at`: op-node's unsafe head `head` (hash byte `head`), op-geth at `geth`.
    pub(super) fn probe_at(at: Instant, head: u64, geth: u64) -> Probe {
        let hash = B256::with_last_byte(u8::try_from(head).expect("test heads are below 256"));
        testing::probe(at, head, hash, geth)
    }

    #[tokio::test(start_paused = true)]
    async fn one_dropped_probe_does_not_make_a_node_unhealthy_but_two_do() {
        let mut health = ChainHealth::new(["a".to_owned()], settings());
        let t0 = Instant::now();
        health.observe_probe("a", &probe_at(t0, 10, 10));
        assert!(health.nodes["a"].healthy);
        health.observe_probe("a", &testing::failed_probe(t0, CallError::Timeout(250)));
        assert!(health.nodes["a"].healthy, "one failure is tolerated");
        assert_eq!(health.nodes["a"].reason, Reason::OpNodeTimeout, "but explained");
        health.observe_probe("a", &testing::failed_probe(t0, CallError::Unreachable("refused".into())));
        assert!(!health.nodes["a"].healthy);
        assert_eq!(health.nodes["a"].reason, Reason::OpNodeUnreachable);
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_that_got_no_answer_leaves_no_latency() {
        let mut health = ChainHealth::new(["a".to_owned()], settings());
        let t0 = Instant::now();
        health.observe_probe("a", &probe_at(t0, 10, 10));
        assert_eq!(health.nodes["a"].op_node_latency, Some(Duration::from_millis(2)));
        // A refused connection "takes" 0 ms: not a latency of the node.
        let mut refused = testing::failed_probe(t0, CallError::Unreachable("refused".into()));
        refused.sync.latency = Duration::ZERO;
        health.observe_probe("a", &refused);
        assert_eq!(health.nodes["a"].op_node_latency, None);
        assert_eq!(health.nodes["a"].op_geth_latency, Some(Duration::from_millis(2)), "op-geth answered");
        // An error answer is an answer: its time is the node's latency.
        let rpc_error = CallError::Rpc { kind: AdminError::Other, code: -32000, message: "boom".into() };
        health.observe_probe("a", &testing::failed_probe(t0, rpc_error));
        assert_eq!(health.nodes["a"].op_node_latency, Some(Duration::from_millis(250)));
    }

    #[tokio::test(start_paused = true)]
    async fn an_unhealthy_node_needs_consecutive_successes_to_recover() {
        let mut health = ChainHealth::new(["a".to_owned()], settings());
        let t0 = Instant::now();
        health.observe_probe("a", &probe_at(t0, 10, 10));
        for _ in 0..2 {
            health.observe_probe("a", &testing::failed_probe(t0, CallError::Timeout(250)));
        }
        health.observe_probe("a", &probe_at(t0, 11, 11));
        health.observe_probe("a", &probe_at(t0, 12, 12));
        assert!(!health.nodes["a"].healthy, "two successes are not enough");
        health.observe_probe("a", &testing::failed_probe(t0, CallError::Timeout(250)));
        health.observe_probe("a", &probe_at(t0, 13, 13));
        health.observe_probe("a", &probe_at(t0, 14, 14));
        assert!(!health.nodes["a"].healthy, "a failure resets the count");
        health.observe_probe("a", &probe_at(t0, 15, 15));
        assert!(health.nodes["a"].healthy);
    }

    #[tokio::test(start_paused = true)]
    async fn a_leader_whose_head_does_not_move_is_stalled_but_a_new_leader_gets_a_fresh_clock() {
        let mut health = ChainHealth::new(["a".to_owned(), "b".to_owned()], settings());
        let t0 = Instant::now();
        health.observe_probe("a", &probe_at(t0, 10, 10));
        health.set_leader(Some("a"), t0);
        health.observe_probe("a", &probe_at(t0 + Duration::from_millis(900), 10, 10));
        assert_eq!(health.nodes["a"].reason, Reason::Ok);
        health.observe_probe("a", &probe_at(t0 + Duration::from_millis(1100), 10, 10));
        assert_eq!(health.nodes["a"].reason, Reason::Stalled, "{}", health.nodes["a"].detail);
        // b has not moved for long either, but it just became leader.
        health.observe_probe("b", &probe_at(t0, 10, 10));
        health.set_leader(Some("b"), t0 + Duration::from_millis(1100));
        health.observe_probe("b", &probe_at(t0 + Duration::from_millis(1200), 10, 10));
        assert_eq!(health.nodes["b"].reason, Reason::Ok);
    }

    #[tokio::test(start_paused = true)]
    async fn execution_lag_and_lagging_candidates_are_reasons_with_figures() {
        let mut health = ChainHealth::new(["a".to_owned(), "b".to_owned()], settings());
        let t0 = Instant::now();
        health.observe_probe("a", &probe_at(t0, 100, 100));
        health.observe_probe("b", &probe_at(t0, 100, 90));
        assert_eq!(health.nodes["b"].reason, Reason::ExecutionLag);
        assert!(health.nodes["b"].detail.contains("10 blocks behind"), "{}", health.nodes["b"].detail);
        health.observe_probe("b", &probe_at(t0, 80, 80));
        assert_eq!(health.nodes["b"].reason, Reason::Lagging);
        assert!(health.nodes["b"].detail.contains("20 blocks behind"), "{}", health.nodes["b"].detail);
    }

    #[tokio::test(start_paused = true)]
    async fn a_node_that_comes_back_after_being_unreachable_is_no_longer_assumed_not_a_sequencer() {
        let mut health = ChainHealth::new(["a".to_owned()], settings());
        let t0 = Instant::now();
        health.observe_probe("a", &probe_at(t0, 10, 10));
        health.mark_not_sequencer("a");
        health.observe_probe("a", &probe_at(t0, 11, 11));
        assert!(health.nodes["a"].not_sequencer, "still the same process");
        health.observe_probe("a", &testing::failed_probe(t0, CallError::Unreachable("refused".into())));
        health.observe_probe("a", &probe_at(t0, 12, 12));
        assert!(!health.nodes["a"].not_sequencer, "restarted: maybe with --sequencer.enabled now");
    }

    #[tokio::test(start_paused = true)]
    async fn zero_refs_and_malformed_replies_are_failures_with_their_own_reasons() {
        let mut health = ChainHealth::new(["a".to_owned()], settings());
        let t0 = Instant::now();
        let mut zero = probe_at(t0, 0, 0);
        zero.sync.result = Ok(SyncStatus::default());
        health.observe_probe("a", &zero);
        assert_eq!(health.nodes["a"].reason, Reason::EngineNotInitialised);
        assert!(!health.nodes["a"].healthy);
        health.observe_probe("a", &testing::failed_probe(t0, CallError::Malformed("expected u64".into())));
        assert_eq!(health.nodes["a"].reason, Reason::OpNodeMalformed);
        assert!(health.nodes["a"].reachable, "a malformed reply is still an answer");
    }
}
