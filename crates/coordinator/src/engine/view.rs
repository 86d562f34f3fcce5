//! The observations and durable state an engine decision reads, and the questions every phase
//! asks of them: who may lead, who is most advanced, where the chain's tip is.

use super::Member;
use crate::{
    conductor::FenceView,
    health::{ChainHealth, NodeHealth},
    self_lag::SelfLag,
    state::ChainState,
};
use alloy_primitives::B256;
use std::{cmp::Reverse, time::Duration};
use tokio::time::Instant;

/// The observations and durable state an engine decision reads.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    /// The durable state as last persisted.
    pub state: &'a ChainState,
    /// The configured sequencers.
    pub members: &'a [Member],
    /// What probes say.
    pub health: &'a ChainHealth,
    /// Now, on the monotonic clock every timer of the engine runs on.
    pub now: Instant,
    /// Now, in Unix milliseconds: only for the deadlines the engine persists, which another
    /// coordinator (a restart, another replica) reads on its own clock.
    pub unix_ms: u64,
    /// How late the coordinator's own timers ran over `self_lag_span`: whether a timeout or a
    /// stall can be believed (see `timing`).
    pub self_lag: SelfLag,
    /// Conductor mode: what the chain's fence says (its holder, base, kept payloads, last commit).
    pub conductor: Option<&'a FenceView>,
}

impl<'a> View<'a> {
    pub(super) fn node(&self, name: &str) -> Option<&'a NodeHealth> {
        self.health.nodes.get(name)
    }

    pub(super) fn member(&self, name: &str) -> Option<&'a Member> {
        self.members.iter().find(|member| member.name == name)
    }

    /// Why `name` may not lead, or None when it may.
    pub(super) fn ineligibility(&self, name: &str) -> Option<String> {
        let Some(member) = self.member(name) else {
            return Some("it is not a configured sequencer of this chain".into());
        };
        let Some(node) = self.node(name) else {
            return Some("it has not been probed yet".into());
        };
        if !member.candidate {
            return Some("it is not a candidate (candidate = false)".into());
        }
        if self.state.fenced.contains(name) {
            return Some("it is fenced (a deposed leader not yet stopped)".into());
        }
        if node.not_sequencer {
            return Some("it is not sequencer-enabled".into());
        }
        if node.admin_disabled {
            return Some("its admin API is disabled".into());
        }
        if !node.healthy {
            return Some(format!("it is unhealthy ({}: {})", node.reason.code(), node.detail));
        }
        if node.unsafe_head.is_none() {
            return Some("its head is unknown".into());
        }
        None
    }

    pub(super) fn eligible(&self, name: &str) -> bool {
        self.ineligibility(name).is_none()
    }

    pub(super) fn head_hash(&self, name: &str) -> Option<B256> {
        self.node(name)?.unsafe_head.map(|head| head.hash)
    }

    /// Eligible candidates other than `excluded`, most advanced first (then priority, then name).
    pub(super) fn most_advanced(&self, excluded: Option<&str>) -> Option<&'a Member> {
        self.members
            .iter()
            .filter(|member| Some(member.name.as_str()) != excluded && self.eligible(&member.name))
            .max_by_key(|member| self.advancement(member))
    }

    /// The order of "most advanced": head number, then priority, then name (first wins).
    pub(super) fn advancement(&self, member: &Member) -> (u64, i64, Reverse<String>) {
        let number = self.node(&member.name).and_then(|node| node.unsafe_head).map_or(0, |h| h.number);
        (number, member.priority, Reverse(member.name.clone()))
    }

    /// The block number probes saw for `hash` (on any node), if any node's head was there.
    pub(super) fn number_of(&self, hash: B256) -> Option<u64> {
        self.health
            .nodes
            .values()
            .filter_map(|node| node.unsafe_head)
            .find(|head| head.hash == hash)
            .map(|head| head.number)
    }

    /// The most advanced unsafe head any node other than `excluded` reports, healthy or not: the
    /// best estimate of the chain's tip when the leader cannot tell us. An unhealthy node (say,
    /// its op-geth answers garbage) may hold blocks the eligible ones have not received yet.
    pub(super) fn network_tip(&self, excluded: &str) -> Option<(&'a str, opc_wire::L2BlockRef)> {
        self.members
            .iter()
            .filter(|member| member.name != excluded)
            .filter_map(|member| Some((member.name.as_str(), self.node(&member.name)?.unsafe_head?)))
            .max_by_key(|(name, head)| (head.number, Reverse(*name)))
    }

    /// The head every configured node reports, when every one of them answers and they all agree.
    /// Starting there re-orgs nothing any node holds: the old leader included, nobody has a block
    /// beyond it.
    pub(super) fn converged_head(&self) -> Option<B256> {
        let mut heads = self
            .members
            .iter()
            .map(|member| self.answers(&member.name).then(|| self.head_hash(&member.name)));
        let first = heads.next()???;
        heads.all(|head| head == Some(Some(first))).then_some(first)
    }

    /// Eligible candidates in election order: priority, then name.
    pub(super) fn by_priority(&self) -> Vec<&'a Member> {
        let mut members: Vec<&Member> =
            self.members.iter().filter(|member| self.eligible(&member.name)).collect();
        members.sort_by(|a, b| b.priority.cmp(&a.priority).then_with(|| a.name.cmp(&b.name)));
        members
    }

    /// True when `name`'s op-node answered its latest probe.
    pub(super) fn answers(&self, name: &str) -> bool {
        self.node(name).is_some_and(|node| node.reachable && node.last_answer_at.is_some())
    }

    /// True when some node other than `leader` saw the chain move within `window`.
    pub(super) fn chain_alive_without(&self, leader: &str, window: Duration) -> bool {
        self.health
            .chain_advanced_at(leader)
            .is_some_and(|at| self.now.saturating_duration_since(at) <= window)
    }
}
