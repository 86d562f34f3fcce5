//! The options of a chaos run, and the coordinator mode they select.

use crate::schedule::{RunShape, Scheduled, generate_for};
use std::path::PathBuf;

/// Options of a chaos run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Length of the fault phase.
    pub duration_ms: u64,
    /// Quiet tail after the last heal, in which the chain must be producing.
    pub tail_ms: u64,
    /// Override of the seed's node count.
    pub nodes: Option<usize>,
    /// Override of the seed's block time.
    pub block_time_ms: Option<u64>,
    /// Longest acceptable gap between blocks once the chain could be producing.
    pub liveness_bound_ms: u64,
    /// Where to write the whole ledger (JSON lines, `seed-N.jsonl`) of a seed that violated.
    pub ledger_dir: Option<PathBuf>,
    /// Coordinator replicas: 1 runs one coordinator alone; more run a Raft cluster of them in
    /// replica mode, with replica faults on top of the node faults.
    pub replicas: usize,
    /// Conductor mode: every op-node commits each block to the coordinator (each replica serves
    /// the conductor endpoint) before publishing it; conductor episodes join the schedule and the
    /// conductor invariants are checked.
    pub conductor: bool,
}

impl RunOptions {
    /// True when the seed runs a Raft cluster of replicas rather than one coordinator.
    pub fn replica_mode(&self) -> bool {
        self.replicas > 1
    }

    /// The whole schedule: the fault phase and the quiet tail.
    pub fn run_ms(&self) -> u64 {
        self.duration_ms + self.tail_ms
    }

    /// The shape and schedule of `seed` under these options.
    pub fn schedule(&self, seed: u64) -> (RunShape, Vec<Scheduled>) {
        generate_for(seed, self.nodes, self.block_time_ms, self.duration_ms, self.replicas, self.conductor)
    }
}
