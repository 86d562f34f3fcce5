//! An embedded Raft cluster for coordinator replicas: every replica holds the same
//! `chain -> opaque JSON state` map, changed only through the leader and committed by a majority.
//! Built on openraft 0.9 (storage-v2 traits) with a redb file as the durable store and JSON over
//! HTTP/1.1 between replicas.
//!
//! ```text
//!           Cluster (facade: write / read / status / membership / transfer / shutdown)
//!              |                     ^ status watch (from openraft metrics)
//!              v                     |
//!   openraft::Raft ---- RaftNetwork (network.rs: HTTP client + NetFaults) ---> peers
//!     |         \
//!   LogStore   StateMachineStore            server.rs: hyper server <--- peers
//!     \_________/                                      (append, vote, snapshot, campaign, fault)
//!   store.rs: one redb file, data_dir/cluster.redb
//! ```
//!
//! # Layout
//!
//! | module      | role                                                                        |
//! |-------------|-----------------------------------------------------------------------------|
//! | `config`    | [`ClusterConfig`]: replicas, bootstrap flag, timing knobs; `validate`      |
//! | `types`     | openraft type config: [`Command`] entries, node = raft + api address       |
//! | `store`     | redb-backed `RaftLogStorage` + `RaftStateMachine` + snapshots              |
//! | `network`   | HTTP client side of the Raft transport, error mapping, backoff             |
//! | `server`    | hyper server for peers' RPCs, the transfer `campaign`, the `/fault` routes |
//! | `faults`    | [`NetFaults`]: drop / delay messages to chosen peers (tests)               |
//! | `status`    | [`ClusterStatus`] derived from openraft metrics                            |
//! | `cluster`   | [`Cluster`]: start, write, read, admin, shutdown                           |
//!
//! ## Why redb
//!
//! Pure Rust (no C toolchain, no background compaction threads), ACID transactions with an
//! explicit durability level per commit, one file per replica. The state is small (one document
//! per chain), so a B-tree file beats an LSM engine here on simplicity with no cost that matters.
//!
//! ## Durability
//!
//! openraft may only count what is on disk: the vote before it answers a vote request, log
//! entries before it acknowledges an append. One writer thread commits them with
//! `Durability::Immediate` (fsync), batching whatever is queued into one transaction, before the
//! append callback fires or `save_vote` returns. The state machine commits each applied batch
//! the same way before `apply` returns, so after a crash it is never ahead of the log and never
//! behind what it acknowledged. A format version marker is stored; opening decodes every record, and
//! any failure stops `Cluster::start` with [`ClusterError::CorruptStore`] naming the file and
//! what to do.
//!
//! ## Forming the cluster: initialize on every member
//!
//! There is no special bootstrap node. Each replica listed in `replicas` that finds its store
//! empty (and has `bootstrap = true`) calls `Raft::initialize` with exactly `replicas`. openraft
//! 0.9 documents this as safe ("More than one node performing `initialize()` with the same config
//! is safe, with different config will result in split brain", `Raft::initialize`; and
//! docs/cluster_control/cluster-formation.md): every member writes the identical membership entry
//! at log id `(term 0, node 0, index 0)`, and the vote protocol then elects one leader. A member
//! that already voted or holds a log gets `NotAllowed`, which means the cluster already formed and
//! is treated as success. Hence: the same config for all, start in any order, a leader forms
//! once a majority is up. A replica whose data dir is lost must come back with `bootstrap =
//! false` and be re-added (its initial entry would otherwise be built from a possibly stale list).
//!
//! ## Leadership transfer
//!
//! openraft 0.9 has no transfer-leader API; `Raft::trigger().elect()` is the building block. Two
//! openraft rules shape the procedure (`Engine::handle_vote_req`): a voter refuses any vote
//! request while the leader lease it holds (renewed by every heartbeat, `election_timeout_max_ms`
//! long) has not expired, and refuses a candidate whose log is shorter than its own. So
//! [`Cluster::transfer_leadership`] on the leader:
//!
//! 1. waits until the target has matched the leader's whole log;
//! 2. pauses its own heartbeats (so followers' leases lapse instead of being renewed);
//! 3. sends `POST /raft/campaign` to the target, which calls `trigger().elect()` and repeats
//!    every `election_timeout_min_ms` until it leads or the deadline passes. The old leader
//!    grants the vote once its own lease (counted from its election) has lapsed, or it steps
//!    down on seeing the higher term; the other voters grant once their leases lapse, which is
//!    before their own election timers (lease + timeout) fire, so the target wins the race;
//! 4. returns once the old leader's metrics show the target leading. Heartbeats are re-enabled
//!    however the call ends.
//!
//! With three voters the target usually wins the first round: the old leader's own lease counts
//! from its election (a leader receives no heartbeats), so it grants at once, and its vote plus
//! the target's are a majority. The third voter's lease does not matter then. Callers that must not
//! be renewing the followers' leases meanwhile stop their own `ensure_linearizable` rounds first
//! (they are heartbeats too). [`Cluster::transfer_leadership_within`] takes a deadline of the
//! caller's (a shutdown's), from which the target's campaign deadline is derived, so a target does
//! not keep campaigning after the caller has given up.
//!
//! ## Fault injection
//!
//! [`NetFaults`] sits on the sending side of every RPC. `POST /fault` and `POST /fault/heal` on
//! the Raft server drive it remotely when `cluster.fault_injection = true`; otherwise they answer
//! 403.

mod cluster;
mod config;
mod error;
mod faults;
pub mod fence;
mod network;
mod server;
mod status;
mod store;
mod types;

pub use cluster::Cluster;
pub use config::{ClusterConfig, ConfigErrors, ConfigProblem, ReplicaConfig};
pub use error::{ClusterError, LeaderInfo, WriteError};
pub use faults::{FaultSpec, NetFaults};
pub use status::{ClusterStatus, MembershipView, Role};
pub use store::{FORMAT_VERSION, STORE_FILE};
pub use types::{Applied, ChainStates, Command, SnapshotData};
