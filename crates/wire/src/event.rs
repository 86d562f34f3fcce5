//! The kinds of the coordinator's timeline events (`coordinator_events`, the log's `kind` field).
//!
//! A kind is a type between modules and a string only at the wire and in logs: [`EventKind`]
//! serializes as its snake_case name ([`EventKind::as_str`]), so the JSON of an event is the same
//! as when kinds were strings. Nothing outside this module compares a kind's text.
//!
//! A kind this build does not know (sent by a newer coordinator) deserializes as
//! [`EventKind::Unknown`] with its text kept verbatim, so an older `ctl` still lists a newer
//! coordinator's timeline instead of failing to parse it; this build never emits one.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Declares [`EventKind`] with its wire name per variant, in one list.
macro_rules! event_kinds {
    ($($(#[$doc:meta])* $variant:ident = $text:literal,)*) => {
        /// What a timeline event records.
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventKind {
            $($(#[$doc])* $variant,)*
            /// A kind this build does not know (from a newer coordinator), kept verbatim.
            Unknown(String),
        }

        impl EventKind {
            /// Every kind this build emits.
            pub const ALL: &[EventKind] = &[$(Self::$variant,)*];

            /// The snake_case name, as on the wire and in logs.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)*
                    Self::Unknown(text) => text,
                }
            }

            /// The kind named `text`; [`EventKind::Unknown`] for a name this build does not know.
            pub fn from_name(text: &str) -> Self {
                match text {
                    $($text => Self::$variant,)*
                    other => Self::Unknown(other.to_owned()),
                }
            }
        }
    };
}

event_kinds! {
    /// Start-up found an active sequencer and kept it as leader.
    Adopted = "adopted",
    /// The chain's block time is known (or changed): its windows follow it.
    BlockTimeKnown = "block_time_known",
    /// The chain is watched but not acted on (block time unknown or contradicted, unsafe windows).
    ChainHeld = "chain_held",
    /// A held chain is acted on again.
    ChainReleased = "chain_released",
    /// The leader's stop said "not running": its current head is the stopped hash.
    AlreadyStopped = "already_stopped",
    /// No candidate reached the stopped hash in time: the old leader is restarted there.
    CatchUpTimeout = "catch_up_timeout",
    /// A candidate is at the stopped hash and is started.
    CaughtUp = "caught_up",
    /// A leader that looks unhealthy only by a timeout or a stall is kept: the coordinator's own
    /// timers ran late (short of CPU), so the evidence may be its own slowness.
    DecisionHeld = "decision_held",
    /// No sequencer at start-up: the most advanced candidate is started at its own head.
    Electing = "electing",
    /// The leader does not answer and neither does any other node: the coordinator may be cut
    /// off from the nodes, so it fences nobody.
    NoNodeAnswers = "no_node_answers",
    /// A new leader sequences: the fail-over or hand-over is complete.
    FailoverComplete = "failover_complete",
    /// A fenced node was stopped and may be elected again.
    FenceReleased = "fence_released",
    /// The stop of a fenced node failed; retried when it answers.
    FenceStopFailed = "fence_stop_failed",
    /// A fenced node answers again: it is being stopped.
    FenceStopping = "fence_stopping",
    /// An operator's hand-over was abandoned (the leader could not be stopped).
    HandoverFailed = "handover_failed",
    /// An operator asked for a hand-over (or a start while leaderless).
    HandoverRequested = "handover_requested",
    /// Nobody is elected while a node we cannot ask may be sequencing.
    HiddenSequencer = "hidden_sequencer",
    /// An inspection stop failed; retried after a back-off.
    InspectionStopFailed = "inspection_stop_failed",
    /// A node found sequencing without being the leader was stopped.
    InspectionStopped = "inspection_stopped",
    /// A node found sequencing without being the leader is being stopped.
    InspectionStopping = "inspection_stopping",
    /// The leader does not answer us but the chain advances: no fail-over.
    LeaderCutOff = "leader_cut_off",
    /// An unreachable leader of a stopped chain was fenced: the fail-over starts.
    LeaderFenced = "leader_fenced",
    /// Conductor mode: the leader was deposed; its commits are refused, so it cannot publish.
    LeaderDeposed = "leader_deposed",
    /// Conductor mode: the leader sits behind the committed head and commits nothing (it lost a
    /// block it committed): the committed payloads are replayed to it instead of a fail-over.
    LeaderBehindCommits = "leader_behind_commits",
    /// Conductor mode: committed payloads were posted to a node to bring it to the head.
    PayloadsReplayed = "payloads_replayed",
    /// Conductor mode: posting committed payloads to a node failed; retried.
    ReplayFailed = "replay_failed",
    /// Conductor mode: a commit landed between the decision to depose and its write; the stopped
    /// hash follows the committed head.
    StoppedHashFromCommits = "stopped_hash_from_commits",
    /// A healthy leader found not sequencing is restarted at its own head.
    LeaderInactive = "leader_inactive",
    /// The leader is unhealthy: it is being stopped.
    LeaderUnhealthy = "leader_unhealthy",
    /// No sequencer is active and none can be started safely.
    Leaderless = "leaderless",
    /// The leader is unreachable and the chain stopped, but nobody may take over.
    NoCandidate = "no_candidate",
    /// An operator paused automation.
    Paused = "paused",
    /// Reading a stopped leader's head failed; retried.
    ReadHeadFailed = "read_head_failed",
    /// An operator resumed automation.
    Resumed = "resumed",
    /// A stop or start interrupted by a restart is resumed.
    Resuming = "resuming",
    /// An operator forgot the stored names the config does not have: the chain acts again.
    StaleNodesForgotten = "stale_nodes_forgotten",
    /// A start was refused because the node is not at the stopped hash.
    StartHashMismatch = "start_hash_mismatch",
    /// A start was refused because the node cannot sequence.
    StartRefused = "start_refused",
    /// A start found no prestate; retried.
    StartRetry = "start_retry",
    /// A start's outcome is unknown; it is verified.
    StartUnknown = "start_unknown",
    /// A start could not be verified: the node is fenced.
    StartUnverifiable = "start_unverifiable",
    /// The new leader sequences (the start step).
    Started = "started",
    /// This replica became the confirmed Raft leader and acts.
    StartedActing = "started_acting",
    /// The stored state names a node the config does not have: the chain is not acted on.
    StateConfigMismatch = "state_config_mismatch",
    /// The leader's stop failed: it counts as cut off.
    StopFailed = "stop_failed",
    /// The leader stopped; its answer is the stopped hash.
    Stopped = "stopped",
    /// This replica stopped acting (observing only).
    StoppedActing = "stopped_acting",
    /// A fenced leader's stop answer replaced the estimated stopped hash.
    StoppedHashFromFence = "stopped_hash_from_fence",
    /// A higher stop answer on the chain (an inspection or fence stop) replaced the stopped hash.
    StoppedHashFromInspection = "stopped_hash_from_inspection",
    /// The head last seen in probes stands in for a stopped hash nobody could read.
    StoppedHashFromProbe = "stopped_hash_from_probe",
    /// The chain's tip moved past an estimated stopped hash.
    StoppedHashReestimated = "stopped_hash_reestimated",
    /// Every node converged past a stopped hash nobody can reach: a candidate starts there.
    StoppedHashSuperseded = "stopped_hash_superseded",
    /// A stored leader or fenced node renamed in the config was found again by its op-node URL.
    StoredNodeRenamed = "stored_node_renamed",
    /// The leader's stop returned the zero hash: its head is read instead.
    ZeroStoppedHash = "zero_stopped_hash",
}

impl EventKind {
    /// Kinds a viewer highlights: every kind whose name mentions a failure or a fence (which
    /// includes `failover_complete`, as the viewer always highlighted it). A kind this build does
    /// not know is judged by the same rule on its name.
    pub fn is_highlighted(&self) -> bool {
        match self {
            Self::FailoverComplete
            | Self::FenceReleased
            | Self::FenceStopFailed
            | Self::FenceStopping
            | Self::HandoverFailed
            | Self::InspectionStopFailed
            | Self::LeaderFenced
            | Self::ReadHeadFailed
            | Self::ReplayFailed
            | Self::StopFailed
            | Self::StoppedHashFromFence => true,
            Self::Unknown(text) => text.contains("fail") || text.contains("fence"),
            _ => false,
        }
    }
}

/// The snake_case name; honours width and alignment (`{:<22}`), as tables of events use them.
impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl Serialize for EventKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(Self::from_name(&text))
    }
}

#[cfg(test)]
mod tests {
    use super::EventKind;

    #[test]
    fn every_kind_round_trips_through_its_name_and_json() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::from_name(kind.as_str()), *kind);
            let json = serde_json::to_string(kind).expect("serializes");
            assert_eq!(json, format!("\"{kind}\""));
            assert_eq!(serde_json::from_str::<EventKind>(&json).expect("parses"), *kind);
        }
    }

    #[test]
    fn a_kind_is_padded_like_a_string_in_tables() {
        assert_eq!(format!("[{:<9}]", EventKind::Stopped), "[stopped  ]");
    }

    #[test]
    fn an_unknown_kind_from_a_newer_peer_is_kept_verbatim() {
        let kind: EventKind = serde_json::from_str("\"quorum_lost\"").expect("parses");
        assert_eq!(kind, EventKind::Unknown("quorum_lost".into()));
        assert_eq!(serde_json::to_string(&kind).expect("serializes"), "\"quorum_lost\"");
    }

    #[test]
    fn highlighted_kinds_are_those_whose_names_mention_a_failure_or_a_fence() {
        for kind in EventKind::ALL {
            let by_name = kind.as_str().contains("fail") || kind.as_str().contains("fence");
            assert_eq!(kind.is_highlighted(), by_name, "{kind}");
        }
    }
}
