//! The wire contract between OP Stack sequencer nodes, the coordinator, the simulator and the CLI.
//!
//! # Layout
//! - [`refs`]: L1/L2 block references as op-node renders them (plain JSON integers, camelCase keys).
//! - [`sync_status`]: the `optimism_syncStatus` reply, tolerant of every op-node version since 2023.
//! - [`rollup_config`]: the `optimism_rollupConfig` reply, of which the coordinator reads the block
//!   time (whole seconds, as op-node states it).
//! - [`header`]: the subset of an op-geth block header the coordinator reads (hex quantities).
//! - [`health`]: [`health::Reason`], why a node's latest probe passed or failed, typed from the
//!   health tracker to the API client.
//! - [`api`]: the JSON-RPC traits (`optimism_*`, `eth_*`), plus the published `admin_*` trait from
//!   `op-alloy-rpc-jsonrpsee`. Servers (the simulator) and clients (the coordinator) share them.
//! - [`conductor`]: what op-node calls on its conductor (`conductor_leader`,
//!   `conductor_commitUnsafePayload`), the payload [`conductor::Envelope`] kept verbatim, the
//!   op-node admin methods a conductor recovers a node with, and why a commit is refused.
//! - [`event`]: the kinds of the coordinator's timeline events, typed, named only on the wire.
//! - [`op_node_errors`]: the error strings op-node returns and how a client classifies them.
//! - [`text`]: how people read counts, missing values, lists and echoed request strings.
//!
//! Every type here accepts replies from older and newer nodes: missing keys take their default and
//! unknown keys are ignored, because a coordinator that fails to parse a reply cannot tell a healthy
//! node from a broken one.

pub mod api;
pub mod conductor;
pub mod coordinator;
pub mod event;
pub mod header;
pub mod health;
pub mod jsonrpc;
pub mod op_node_errors;
pub mod refs;
pub mod rollup_config;
mod serde_helpers;
pub mod sync_status;
pub mod text;

pub use alloy_primitives::{B256, U64};
pub use event::EventKind;
pub use header::{BlockHeader, BlockNumberOrTag};
pub use refs::{BlockId, L1BlockRef, L2BlockRef};
pub use rollup_config::RollupConfig;
pub use sync_status::{SyncStatus, SyncStatusShape};
