//! Why a node's latest probe passed or failed, as the coordinator reports it in
//! `coordinator_status` and in its logs and metrics.
//!
//! One enum from the health tracker to the API client: on the wire it is the snake_case
//! [`Reason::code`] (`"op_node_unreachable"`), and nothing outside this module compares those
//! strings. What a reason implies is answered here ([`Reason::op_node_answered`]), beside the
//! enum, so a new reason is classified where it is added.

use serde::{Deserialize, Serialize};

/// Why a probe passed or failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// All checks passed.
    Ok,
    /// op-node refused or closed the connection.
    OpNodeUnreachable,
    /// op-node did not answer in time.
    OpNodeTimeout,
    /// op-node's reply was not a sync status.
    OpNodeMalformed,
    /// op-geth refused or closed the connection.
    OpGethUnreachable,
    /// op-geth did not answer in time.
    OpGethTimeout,
    /// op-geth's reply was not a block.
    OpGethMalformed,
    /// op-node has not initialised its engine (all-zero refs).
    EngineNotInitialised,
    /// The admin API is disabled.
    AdminDisabled,
    /// The node is not sequencer-enabled.
    NotSequencer,
    /// The leader's head stopped advancing.
    Stalled,
    /// op-geth trails op-node.
    ExecutionLag,
    /// The node trails the chain.
    Lagging,
    /// Never probed yet; last because serde reads every code it does not know as this one: a status from
    /// a newer coordinator still parses, and claims nothing about the node.
    #[serde(other)]
    Unknown,
}

impl Reason {
    /// The snake_case code used in the API, logs and metrics.
    pub fn code(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Ok => "ok",
            Self::OpNodeUnreachable => "op_node_unreachable",
            Self::OpNodeTimeout => "op_node_timeout",
            Self::OpNodeMalformed => "op_node_malformed",
            Self::OpGethUnreachable => "op_geth_unreachable",
            Self::OpGethTimeout => "op_geth_timeout",
            Self::OpGethMalformed => "op_geth_malformed",
            Self::EngineNotInitialised => "engine_not_initialised",
            Self::AdminDisabled => "admin_disabled",
            Self::NotSequencer => "not_sequencer",
            Self::Stalled => "stalled",
            Self::ExecutionLag => "execution_lag",
            Self::Lagging => "lagging",
        }
    }

    /// Every reason, for metrics.
    pub const ALL: [Reason; 14] = [
        Self::Unknown,
        Self::Ok,
        Self::OpNodeUnreachable,
        Self::OpNodeTimeout,
        Self::OpNodeMalformed,
        Self::OpGethUnreachable,
        Self::OpGethTimeout,
        Self::OpGethMalformed,
        Self::EngineNotInitialised,
        Self::AdminDisabled,
        Self::NotSequencer,
        Self::Stalled,
        Self::ExecutionLag,
        Self::Lagging,
    ];

    /// Whether the op-node gave any answer to the probe, even a bad one: an answer proves the
    /// path to the node, which is what a replica needs to stop and start it. Reasons found after
    /// the op-node answered (op-geth problems, stalls, lag) count as answered.
    pub fn op_node_answered(self) -> bool {
        !matches!(self, Self::Unknown | Self::OpNodeUnreachable | Self::OpNodeTimeout)
    }

    /// Whether the reason rests on timing: a deadline missed or a head that did not move for a
    /// while. A coordinator that is itself late (short of CPU) can see these on a healthy node;
    /// the other reasons come from what a node answered, or from a refused connection.
    pub fn timing_dependent(self) -> bool {
        matches!(self, Self::OpNodeTimeout | Self::OpGethTimeout | Self::Stalled)
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_travels_as_its_code_and_comes_back() {
        for reason in Reason::ALL {
            let json = serde_json::to_string(&reason).expect("serializes");
            assert_eq!(json, format!("\"{}\"", reason.code()));
            assert_eq!(serde_json::from_str::<Reason>(&json).expect("deserializes"), reason);
            assert_eq!(reason.to_string(), reason.code());
        }
    }

    #[test]
    fn a_reason_from_a_newer_coordinator_reads_as_unknown() {
        assert_eq!(serde_json::from_str::<Reason>("\"op_node_on_fire\"").expect("parses"), Reason::Unknown);
    }

    #[test]
    fn only_silence_from_the_op_node_counts_as_no_answer() {
        let silent: Vec<Reason> = Reason::ALL.into_iter().filter(|r| !r.op_node_answered()).collect();
        assert_eq!(silent, [Reason::Unknown, Reason::OpNodeUnreachable, Reason::OpNodeTimeout]);
    }

    #[test]
    fn only_missed_deadlines_and_stalls_rest_on_timing() {
        let timing: Vec<Reason> = Reason::ALL.into_iter().filter(|r| r.timing_dependent()).collect();
        assert_eq!(timing, [Reason::OpNodeTimeout, Reason::OpGethTimeout, Reason::Stalled]);
    }
}
