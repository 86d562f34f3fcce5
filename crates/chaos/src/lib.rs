//! op-chaos: seeded chaos runs of an op-sim chain plus the coordinator, checked on ground truth.
//!
//! # Layout
//! - [`schedule`]: a seed becomes a chain shape and a timeline of overlapping faults.
//! - [`runner`]: runs one seed, applying the timeline and checking the invariants continuously.
//! - [`replicated`]: the same with a Raft cluster of coordinator replicas (`--replicas 3`), replica
//!   faults on top, and the "at most one replica acts" invariant.
//! - [`harness`]: one fail-over trial of the `op-failover-bench` binary and its figures.

pub mod harness;
pub mod replicated;
pub mod runner;
pub mod schedule;
