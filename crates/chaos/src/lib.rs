//! op-chaos: seeded chaos runs of an op-sim chain plus the coordinator, checked on ground truth.
//!
//! # Layout
//! - [`schedule`]: a seed becomes a chain shape and a timeline of overlapping faults.
//! - [`runner`]: runs one seed: the one loop that applies the timeline and checks the invariants
//!   continuously, in either coordinator mode ([`RunOptions::replicas`](runner::RunOptions)).
//! - `single.rs`: single mode, one coordinator that the schedule restarts.
//! - `conducted.rs`: conductor mode's episodes (`--conductor`), applied to the leader of the
//!   moment; conductor mode itself is a parameter of either coordinator mode
//!   ([`RunOptions::conductor`](runner::RunOptions)).
//! - `replicas/`: replica mode (`--replicas 3`), a Raft cluster of coordinator replicas, each in
//!   its own runtime (`replicas/process.rs`), under replica faults (`replicas/raft_faults.rs` for
//!   the partitions between them).
//! - [`invariants`]: the invariants, one per file, each with its exact check and its tests.
//! - `report.rs`, `options.rs`: a seed's report and a run's options (re-exported by [`runner`]).
//! - `support.rs`: what the runner and the benchmark share: the stopped chain, an in-process
//!   coordinator, binding a fixed address again, the faults in force, the unix clock.
//! - [`harness`]: one fail-over trial of the `op-failover-bench` binary and its figures.
//!
//! Imports go one way: `runner` -> `single` / `replicas` / `conducted` -> `invariants`, `report`,
//! `support`, `schedule`; nothing names `runner` back.
//!
//! # Where to add things
//! - A fault of the nodes: its `op_sim::api::FaultKind` and its effect in the simulator (see
//!   `op_sim`'s `# Adding a fault`), then here only [`schedule`] (when and with which
//!   parameters it is injected, and whether it is lasting: `heal_after_ms`). The runner applies
//!   and heals any kind and counts it under its wire name.
//! - A replica fault: a `schedule::ReplicaFault` variant and its generation in [`schedule`], its
//!   application and heal in `replicas/mod.rs` (`Replicas::apply_fault`, `Replicas::heal`).
//! - A conductor-mode episode: a `schedule::ConductorEpisode` variant, its draw in
//!   `schedule/conducted.rs`, and its faults (`ConductorEpisode::faults`); `conducted.rs` applies
//!   and heals any of them.
//! - An invariant: a file in [`invariants`] (see its module docs).

mod conducted;
pub mod harness;
pub mod invariants;
mod options;
mod replicas;
mod report;
pub mod runner;
pub mod schedule;
mod single;
mod support;
