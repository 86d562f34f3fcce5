//! op-sim: a faithful simulator of OP Stack sequencer nodes (op-node + op-geth pairs).
//!
//! It answers the same JSON-RPC methods with the same semantics, check order and error strings as
//! the real nodes, over real HTTP on loopback, so a coordinator that behaves correctly against it
//! behaves correctly against real nodes. It injects every fault a coordinator must survive and
//! keeps a ground-truth ledger (who sealed which block when) that the invariant checker reads.
//!
//! # Layout
//! - `api/` (the `op-sim-api` crate, re-exported as [`api`]): the control contract: `sim_*`
//!   methods, [`api::FaultKind`] and its parameters, the ledger entries and the invariant report.
//!   Its own crate so that clients (`op-coordinator ctl sim`, the chaos runner) need not link the
//!   simulator.
//! - [`error`]: [`SimError`] and the anvil backend's errors; it names no other module.
//! - `fault_params`: which fault parameters apply to which kind, and their modes.
//! - [`block`]: simulated blocks, keccak hashes, the fake L1 chain.
//! - [`payload`]: a block as the execution payload envelope op-node commits, and back.
//! - [`conductor`]: op-node's conductor client (leader check, commit with its retry).
//! - [`store`]: one node's known blocks and canonical chain; import, re-org, ancestors.
//! - [`ledger`]: the ground truth and the invariant checker.
//! - [`node`]: one node: its state, its options (the op-node flags that matter), its lock.
//! - [`anvil`]: the opt-in real execution client: one anvil process per node whose blocks are
//!   the chain.
//! - [`chain`]: the sequencer loops, p2p gossip with latency/jitter/partitions, ancestor sync,
//!   and fault application.
//! - [`rpc`]: the `admin_*`, `optimism_*` and `eth_*` handlers.
//! - [`http`]: the HTTP servers, where crashes, hangs, slowness and malformed replies happen, callers
//!   are cut off, and admin calls are recorded with the replica and term that sent them.
//! - [`simulator`]: the façade: start chains, address nodes by name, apply faults.
//! - [`control`]: the `sim_*` control API over the façade, and serving it.
//!
//! Imports go one way, in the order above (`error` and `block` at the bottom, `simulator` and
//! `control` at the top); no two modules import each other.
//!
//! # Adding a fault
//! The places to touch, file by file (the compiler points at the exhaustive matches):
//! 1. `crates/sim/api/src/lib.rs`: the [`api::FaultKind`] variant with its doc (what it does,
//!    its parameters, how it heals), its entry in `FaultKind::ALL` and its wire name in
//!    `FaultKind::as_str`; a new parameter goes into [`api::FaultParams`]. The contract's tests
//!    check the three agree.
//! 2. `crates/sim/src/fault_params.rs`: `validate_params` (which parameters the kind takes);
//!    `crates/sim/src/chain.rs`: `Chain::apply_fault` (its effect) and `Chain::heal` (undoing it); a fault of the transport
//!    (refused, held, delayed or broken replies) instead sets a field of `EndpointBehaviour` in
//!    `Chain::endpoint_behaviour`, which `http.rs` executes. A fault that changes what the node
//!    does keeps a flag in `NodeState` (`node.rs`) that the sequencer loop reads.
//! 3. `crates/sim/tests/faults.rs`: its behaviour over real RPC.
//! 4. `crates/chaos/src/schedule.rs`: when the chaos runner injects it and with which
//!    parameters. The runner itself applies, heals and counts any kind.
//! 5. Optionally a shorthand in `op-coordinator ctl sim` (`bin/op-coordinator/src/ctl.rs`,
//!    `SimCommand`); without one it is reachable over `sim_fault` directly.
//!
//! The coordinator's library never depends on this crate: it only ever sees nodes over RPC.

pub mod anvil;
pub mod block;
pub mod chain;
pub mod conductor;
pub mod control;
pub mod error;
mod fault_params;
pub mod http;
pub mod ledger;
pub mod node;
pub mod payload;
pub mod rpc;
pub mod simulator;
pub mod store;

/// The control contract (`sim_*`) this simulator implements: its own crate, so clients need not
/// link the simulator.
pub use op_sim_api as api;

pub use anvil::ExecutionBackend;
pub use chain::GossipConfig;
pub use error::SimError;
pub use ledger::{Ledger, check_invariants};
pub use node::NodeOptions;
pub use simulator::{ChainSpec, NodeSpec, Routing, SimConfig, Simulator};
