//! Errors of the simulator.
//!
//! A leaf module: it names no other module of the crate, so every module can use it without an
//! import loop (the anvil backend's errors live here for that reason).

use alloy_primitives::B256;
use jsonrpsee::core::ClientError;
use opc_wire::BlockId;
use std::{path::PathBuf, time::Duration};

/// Everything that can go wrong driving the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A node name that matches no node.
    #[error("unknown node {}; `sim_nodes` lists them (use CHAIN/NODE with several chains)", opc_wire::text::Echo(.0))]
    UnknownNode(String),
    /// A node name that matches nodes of several chains.
    #[error("node name {} exists in several chains; write it as CHAIN/NODE", opc_wire::text::Echo(.0))]
    AmbiguousNode(String),
    /// A fault request that cannot be applied.
    #[error("bad fault: {0}")]
    BadFault(String),
    /// A partition request that cannot be applied.
    #[error("bad partition: {0}")]
    BadPartition(String),
    /// A configuration that cannot run.
    #[error("bad simulator config: {0}")]
    BadConfig(String),
    /// An anvil could not be started or checked.
    #[error(transparent)]
    Anvil(Box<AnvilError>),
    /// A node has no anvil: the simulator runs with simulated execution.
    #[error("node {0:?} has no anvil: the simulator was started with ExecutionBackend::Simulated")]
    NoAnvil(String),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Everything that can go wrong with an anvil.
#[derive(Debug, thiserror::Error)]
pub enum AnvilError {
    /// The executable could not be started.
    #[error("cannot start anvil {binary}: {source} (install it with `npm ci` at the workspace root)")]
    Spawn {
        /// The executable.
        binary: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The process ended or stayed silent before printing its address.
    #[error("anvil {binary} did not report a listening address within {waited:?}: {output}")]
    NoAddress {
        /// The executable.
        binary: PathBuf,
        /// How long it was given.
        waited: Duration,
        /// What it printed on stderr.
        output: String,
    },
    /// A JSON-RPC call failed or timed out.
    #[error("anvil at {url}: {method} failed: {source}")]
    Call {
        /// The anvil.
        url: String,
        /// The method.
        method: &'static str,
        /// Why.
        source: ClientError,
    },
    /// The anvil lacks a block it must have.
    #[error("anvil at {url} has no block {number}")]
    MissingBlock {
        /// The anvil.
        url: String,
        /// The height asked for.
        number: u64,
    },
    /// The anvil's chain does not contain the block the node builds on, and cannot be rewound to it.
    #[error("anvil at {url} diverged from its node: anvil head {anvil_head:?}, node builds on {expected:?}")]
    Diverged {
        /// The anvil.
        url: String,
        /// The anvil's head.
        anvil_head: BlockId,
        /// The block the node builds on.
        expected: BlockId,
    },
    /// The block the anvil mined is not the block the chain holds.
    #[error(
        "anvil at {url} mined block {number} with hash {mined}, parent {mined_parent}, time {mined_time}; \
         the chain's block has hash {expected:?}, parent {expected_parent}, time {expected_time}"
    )]
    Mismatch {
        /// The anvil.
        url: String,
        /// Height.
        number: u64,
        /// Hash the anvil produced.
        mined: B256,
        /// Its parent.
        mined_parent: B256,
        /// Its timestamp.
        mined_time: u64,
        /// The hash the chain holds (None when sealing: unknown until mined).
        expected: Option<B256>,
        /// The parent the chain holds.
        expected_parent: B256,
        /// The timestamp the chain holds.
        expected_time: u64,
    },
    /// Two anvils of one chain started from different genesis blocks.
    #[error("the anvils of chain {chain} disagree on genesis: {first} and {other}")]
    GenesisMismatch {
        /// The chain.
        chain: String,
        /// The first node's genesis hash.
        first: B256,
        /// Another node's.
        other: B256,
    },
}
