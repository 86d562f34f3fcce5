//! The error strings op-node returns from `admin_*`, and their classification.
//!
//! op-node returns every failure as code `-32000` with `message = err.Error()`, so error identity is
//! lost on the wire and clients classify by substring (op-conductor does the same). The simulator
//! produces exactly these strings; the coordinator classifies with [`AdminError::classify`].

use alloy_primitives::B256;

/// JSON-RPC code op-node uses for every application error.
pub const APPLICATION_ERROR_CODE: i32 = -32000;
/// JSON-RPC code for a method that does not exist, e.g. `admin_*` without `--rpc.enable-admin`.
pub const METHOD_NOT_FOUND_CODE: i32 = -32601;

/// `admin_stopSequencer` on a node whose sequencer is not active.
pub const SEQUENCER_NOT_RUNNING: &str = "sequencer not running";
/// Any sequencer call on a node started without `--sequencer.enabled`.
pub const SEQUENCER_NOT_ENABLED: &str = "sequencer is not enabled";
/// `admin_startSequencer` on an active sequencer.
pub const SEQUENCER_ALREADY_RUNNING: &str = "sequencer already running";
/// `admin_startSequencer` with `--conductor.enabled` on a node that is not the conductor leader.
pub const SEQUENCER_NOT_LEADER: &str = "sequencer is not the leader, aborting";
/// Start of the message when `admin_startSequencer`'s leader check could not ask the conductor.
pub const LEADER_CHECK_FAILED_PREFIX: &str = "sequencer leader check failed";
/// Start of the message for a node that has not seen a forkchoice head yet.
pub const NO_PRESTATE_PREFIX: &str = "no prestate";
/// Start of the message when the given hash is not the node's unsafe head.
pub const HASH_MISMATCH_PREFIX: &str = "block hash does not match";

/// The message geth-style servers return for an unknown or disabled method.
pub fn method_not_available(method: &str) -> String {
    format!("the method {method} does not exist/is not available")
}

/// `sequencer leader check failed: <why>`: the conductor could not be asked (an error is never
/// taken as "leader").
pub fn leader_check_failed(error: &str) -> String {
    format!("{LEADER_CHECK_FAILED_PREFIX}: {error}")
}

/// `no prestate, cannot determine if sequencer start at 0xHASH:NUMBER is safe`.
pub fn no_prestate(requested: B256, number: u64) -> String {
    format!("{NO_PRESTATE_PREFIX}, cannot determine if sequencer start at {requested}:{number} is safe")
}

/// `block hash does not match: head 0xHASH:NUMBER, received 0xHASH`.
pub fn hash_mismatch(head: B256, head_number: u64, received: B256) -> String {
    format!("{HASH_MISMATCH_PREFIX}: head {head}:{head_number}, received {received}")
}

/// The node's head `(hash, number)` that a [`hash_mismatch`] message reports, if the message has
/// that shape (`... head 0xHASH:NUMBER, received ...`); `None` for any other wording, which the
/// caller must treat as "head unknown".
pub fn mismatch_head(message: &str) -> Option<(B256, u64)> {
    let rest = message.split_once(HASH_MISMATCH_PREFIX)?.1;
    let reference = rest.split_once("head ")?.1.split([',', ' ']).next()?;
    let (hash, number) = reference.split_once(':')?;
    Some((hash.parse().ok()?, number.parse().ok()?))
}

/// What an `admin_*` error means, classified from its code and message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdminError {
    /// `-32601`: the admin API is disabled (`--rpc.enable-admin` missing).
    AdminDisabled,
    /// The sequencer is already stopped.
    NotRunning,
    /// The node is not a sequencer (`--sequencer.enabled` missing).
    NotEnabled,
    /// The sequencer is already producing.
    AlreadyRunning,
    /// The conductor refused the start (`sequencer is not the leader, aborting`), or could not be
    /// asked (`sequencer leader check failed: ...`).
    NotLeader,
    /// The node has no forkchoice head yet; retrying later can succeed.
    NoPrestate,
    /// The requested hash is not the node's unsafe head.
    HashMismatch,
    /// Anything else.
    Other,
}

impl AdminError {
    /// Classifies a JSON-RPC error by code, then by message substring.
    pub fn classify(code: i32, message: &str) -> Self {
        if code == METHOD_NOT_FOUND_CODE {
            return Self::AdminDisabled;
        }
        // Order matters: "sequencer is not enabled" must not match "sequencer not running".
        let table = [
            (SEQUENCER_NOT_ENABLED, Self::NotEnabled),
            (SEQUENCER_NOT_LEADER, Self::NotLeader),
            (LEADER_CHECK_FAILED_PREFIX, Self::NotLeader),
            (SEQUENCER_ALREADY_RUNNING, Self::AlreadyRunning),
            (SEQUENCER_NOT_RUNNING, Self::NotRunning),
            (NO_PRESTATE_PREFIX, Self::NoPrestate),
            (HASH_MISMATCH_PREFIX, Self::HashMismatch),
        ];
        table.iter().find(|(needle, _)| message.contains(needle)).map_or(Self::Other, |(_, kind)| *kind)
    }
}
