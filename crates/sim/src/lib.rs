//! op-sim: a faithful simulator of OP Stack sequencer nodes (op-node + op-geth pairs).
//!
//! It answers the same JSON-RPC methods with the same semantics, check order and error strings as
//! the real nodes, over real HTTP on loopback, so a coordinator that behaves correctly against it
//! behaves correctly against real nodes. It injects every fault a coordinator must survive and
//! keeps a ground-truth ledger (who sealed which block when) that the invariant checker reads.
//!
//! # Layout
//! - [`block`]: simulated blocks, keccak hashes, the fake L1 chain.
//! - [`store`]: one node's known blocks and canonical chain; import, re-org, ancestors.
//! - [`node`]: one node's state and options (the op-node flags that matter).
//! - [`chain`]: the sequencer loops, p2p gossip with latency/jitter/partitions, ancestor sync,
//!   and fault application.
//! - [`rpc`]: the `admin_*`, `optimism_*` and `eth_*` handlers.
//! - [`http`]: the HTTP servers, where crashes, hangs, slowness and malformed replies happen, callers
//!   are cut off, and admin calls are recorded with the replica and term that sent them.
//! - [`ledger`]: the ground truth and the invariant checker.
//! - [`anvil`]: the opt-in real execution client: one anvil process per node whose blocks are
//!   the chain.
//! - [`simulator`]: the façade: start chains, address nodes by name, apply faults.
//! - [`control`]: the `sim_*` control API.
//!
//! The coordinator's library never depends on this crate: it only ever sees nodes over RPC.

pub mod anvil;
pub mod block;
pub mod chain;
pub mod control;
pub mod error;
pub mod http;
pub mod ledger;
pub mod node;
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
