//! opc-test-support: the fixtures every test and bench of the workspace shares, so a fast setting,
//! a port rule or a wait is written once. A dev-dependency only: nothing here ships.
//!
//! # Layout
//! - [`settings`]: coordinator settings scaled to 100 ms blocks, and the simulated chains tests
//!   start from.
//! - [`net`]: loopback addresses that are free and stay free until a child process binds them.
//! - [`wait`]: deadlines, the poll interval, and waits that print the last observed state.
//! - [`process`]: built binaries as child processes: hermetic environment, stderr in a log file,
//!   killed on drop.
//! - [`proc_stats`]: a process's CPU time and memory from `/proc`, and the load average, for
//!   benches.
//! - [`replica`]: one `op-coordinator run --replica-id N` process of a cluster, and Raft faults.
//! - [`harness`]: a simulated chain and an in-process coordinator on port-0 listeners.
//!
//! Binaries are passed in by path (`env!("CARGO_BIN_EXE_...")` of the caller), because only the
//! package that builds a binary knows where cargo put it.

pub mod exposition;
pub mod harness;
pub mod net;
pub mod proc_stats;
pub mod process;
pub mod replica;
pub mod settings;
pub mod wait;

pub use harness::{
    Harness, RunningCoordinator, active_nodes, admin_client, admin_client_with_timeout,
    assert_steps_in_order, kinds, node, replica_listeners, start_coordinator, start_coordinator_with,
};
pub use net::{free_addr, http_get, http_post_json, scrape_metrics, scrape_metrics_within};
pub use process::{LoggedChild, hermetic, tail, text};
pub use replica::ReplicaProcess;
pub use settings::{BLOCK_TIME_MS, FAST_SETTINGS, NO_METRICS, ONE_REPLICA, fast_settings, stopped_chain};
pub use wait::{POLL, PROCESS_WAIT, WAIT, Wait, unix_ms, wait_for, wait_until};
