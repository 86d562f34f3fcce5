//! Seeded fault schedules.
//!
//! A seed decides everything: the chain's size (3-5 nodes), its block time (100-250 ms) and a
//! timeline of overlapping faults and heals. The same seed always yields the same schedule; the
//! run itself is in real time, so a reproduction replays the same faults at the same offsets.
//!
//! Some combinations are left out on purpose because they hit windows the design documents
//! rather than closes (see `docs/chaos.md`):
//! - an RPC impairment (`isolate`, `slow`, `malformed`) never overlaps another fault on the same
//!   node or any partition: a leader invisible both to the coordinator and to its peers is
//!   indistinguishable from a dead one, and only a fencing hook inside op-node can stop it;
//! - partitions run alone: a leader lost while partitioned away from every candidate takes its
//!   unpropagated blocks with it, a re-org the design accepts to keep the chain alive;
//! - `hang` resumes without sealing at once (`seal_on_resume = false`): a process that seals the
//!   instant it resumes beats any stop call, the window op-conductor closes with its commit hook;
//! - for the same reason a hang never heals while the coordinator is down or starting again
//!   (within [`RESTART_SETTLE_MS`] of its start): nobody is there to stop the resumed process;
//! - crashes and hangs always leave two nodes whole: a leader whose every follower is down
//!   seals blocks nobody else holds, and if it is then lost too, the chain can only continue
//!   without them (the same accepted re-org as a partitioned leader's).
//!
//! # Replica mode
//!
//! With coordinator replicas ([`generate_replicated`]) the node faults are exactly those of
//! [`generate`] for the same seed, without the coordinator restarts; replica faults come from a
//! second random stream (seeded with `seed ^ `[`REPLICA_STREAM`]) so the node-fault stream stays
//! the one the single-coordinator sweeps use. Replica faults are episodes, one at a time, each
//! healed before the next starts:
//!
//! | episode                    | share | held        | what                                                          |
//! |----------------------------|------:|-------------|---------------------------------------------------------------|
//! | crash                      | 35 %  | 0.3-3 s     | the leader or a fixed replica dies (70 % killed mid-flight), then restarts from its data dir |
//! | partition                  | 25 %  | 0.3-4 s     | the leader or a fixed replica cut off from the other replicas |
//! | isolate from sequencers    | 25 %  | 0.5-6 s     | the acting replica cannot reach any node; the others can      |
//! | majority lost: crashes     |  8 %  | 0.3-1.5 s   | every replica but the acting one dies                         |
//! | majority lost: partition   |  7 %  | 0.3-1.5 s   | every replica alone                                           |
//!
//! Every episode may move the acting role, so for its length plus [`REPLICA_SETTLE_MS`] after a
//! new election could take ([`RaftTimings::election_timeout_max_ms`]) nobody may be there to act:
//! the same windows the single coordinator's restarts avoid are avoided around it (no hang heals,
//! nor any in the [`REPLICA_SETTLE_MS`] before it, and no behind-the-back start within
//! [`INSPECTION_GRACE_MS`] before it).
//!
//! # Conductor mode
//!
//! With `--conductor` ([`generate_for`] with `conductor`) the schedule is the one above (single or
//! replicated) plus conductor episodes from a third stream, aimed at the leader of the moment:
//! see [`conducted`].

pub mod conducted;

pub use conducted::{ConductorEpisode, NodeTarget};
use op_sim::api::{FaultKind, FaultParams, FaultTarget, IsolateMode};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::Serialize;

/// The shape of one chaos run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RunShape {
    /// Nodes in the chain.
    pub nodes: usize,
    /// Block time.
    pub block_time_ms: u64,
    /// Length of the fault phase; a quiet tail follows so the chain must recover.
    pub duration_ms: u64,
    /// One-way p2p latency: real networks span regions, and a follower one block behind at the
    /// moment of a stop is exactly when skipping the catch-up wait would re-org.
    pub gossip_latency_ms: u64,
    /// Extra random p2p delay.
    pub gossip_jitter_ms: u64,
}

/// One thing the schedule does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// `sim_fault`, healed after `heal_after_ms` (instant kinds are never healed).
    Fault {
        /// Node name.
        node: String,
        /// Kind.
        kind: FaultKind,
        /// Parameters.
        params: FaultParams,
        /// When to heal, relative to the fault.
        heal_after_ms: Option<u64>,
    },
    /// `sim_partition`, healed after `heal_after_ms`.
    Partition {
        /// The groups.
        groups: Vec<Vec<String>>,
        /// When to heal.
        heal_after_ms: u64,
    },
    /// Stop the coordinator (abruptly or gracefully) and start it again after `down_ms`.
    RestartCoordinator {
        /// Kill (drop everything mid-flight) rather than shut down.
        abrupt: bool,
        /// How long it stays down.
        down_ms: u64,
    },
    /// A fault of coordinator replicas (replica mode only), healed after `heal_after_ms`.
    Replica {
        /// What.
        fault: ReplicaFault,
        /// When to heal (restart, reconnect), relative to the fault.
        heal_after_ms: u64,
    },
    /// A conductor-mode episode ([`conducted`]) on `target`, resolved when it starts, healed after
    /// `heal_after_ms`.
    Conductor {
        /// Which node.
        target: NodeTarget,
        /// What.
        episode: ConductorEpisode,
        /// When it ends, relative to its start.
        heal_after_ms: u64,
    },
}

/// Which replica a replica fault hits; the leader is resolved when the fault is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplicaTarget {
    /// The replica acting at that moment (the quorum-confirmed Raft leader).
    Leader,
    /// A fixed replica, whatever its role.
    Replica(u64),
}

/// What a replica episode does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReplicaFault {
    /// The replica dies: killed mid-flight (its whole runtime dropped, as a process crash) or
    /// shut down without waiting; the heal restarts it from its data dir.
    Crash {
        /// Which.
        target: ReplicaTarget,
        /// Killed rather than shut down.
        abrupt: bool,
    },
    /// The replica is cut off from the other replicas (Raft messages dropped both ways).
    Partition {
        /// Which.
        target: ReplicaTarget,
    },
    /// The acting replica cannot reach any node (`sim_isolateCaller`); the others still can.
    IsolateFromSequencers {
        /// Refused or black-holed.
        mode: IsolateMode,
    },
    /// The majority is lost: every replica but the acting one dies.
    CrashAllButLeader {
        /// Killed rather than shut down.
        abrupt: bool,
    },
    /// The majority is lost: every replica is cut off from every other.
    PartitionAll,
}

impl ReplicaFault {
    /// The name faults are counted under.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Crash { .. } => "replica_crash",
            Self::Partition { .. } => "replica_partition",
            Self::IsolateFromSequencers { .. } => "leader_isolated_from_sequencers",
            Self::CrashAllButLeader { .. } => "majority_lost_crash",
            Self::PartitionAll => "majority_lost_partition",
        }
    }

    /// True when the episode leaves no majority of replicas.
    pub fn loses_majority(&self) -> bool {
        matches!(self, Self::CrashAllButLeader { .. } | Self::PartitionAll)
    }
}

/// Raft timings of the replicas, scaled to the block time: a heartbeat every third of a block
/// (50-100 ms), elections after 6-10 heartbeats. The leader lease is the minimum election
/// timeout, so a replica cut off from its quorum stops acting within a few blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RaftTimings {
    /// `cluster.heartbeat_interval_ms`.
    pub heartbeat_interval_ms: u64,
    /// `cluster.election_timeout_min_ms`.
    pub election_timeout_min_ms: u64,
    /// `cluster.election_timeout_max_ms`.
    pub election_timeout_max_ms: u64,
}

impl RaftTimings {
    /// The timings for a chain of `block_time_ms`.
    pub fn for_block_time(block_time_ms: u64) -> Self {
        let heartbeat_interval_ms = (block_time_ms / 3).clamp(50, 100);
        Self {
            heartbeat_interval_ms,
            election_timeout_min_ms: 6 * heartbeat_interval_ms,
            election_timeout_max_ms: 10 * heartbeat_interval_ms,
        }
    }
}

/// A step at an offset from the start of the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Scheduled {
    /// Offset.
    pub at_ms: u64,
    /// What.
    pub step: Step,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Impairment,
    Other,
}

/// How long after its start a restarted coordinator counts as still away: long enough for its
/// first probes and the fence stop of a leader it deposed.
pub const RESTART_SETTLE_MS: u64 = 1000;

/// Seeds the replica-fault stream: `seed ^ REPLICA_STREAM` ("replicas" in ASCII).
pub const REPLICA_STREAM: u64 = 0x7265_706c_6963_6173;

/// How long after a replica episode (and after the longest election it may cause) the acting
/// replica counts as still settling: its first probes and the fence stop of a leader it deposed.
pub const REPLICA_SETTLE_MS: u64 = 1000;

/// How long after a behind-the-back start inspection gets to stop the extra sequencer before a
/// replica episode may take the acting replica away.
pub const INSPECTION_GRACE_MS: u64 = 2000;

/// Busy intervals per node, to enforce the exclusions.
struct Occupancy {
    per_node: Vec<Vec<(u64, u64, Class)>>,
    partitions: Vec<(u64, u64)>,
    /// Coordinator absences, each extended by [`RESTART_SETTLE_MS`].
    coordinator: Vec<(u64, u64)>,
    /// Crashes and hangs: (from, to, node).
    outages: Vec<(u64, u64, usize)>,
    /// When each hang heals.
    hang_heals: Vec<u64>,
}

fn overlaps(a: (u64, u64), b: (u64, u64)) -> bool {
    a.0 <= b.1 && b.0 <= a.1
}

impl Occupancy {
    fn node_free_for(&self, node: usize, span: (u64, u64), class: Class) -> bool {
        let node_ok = self.per_node[node].iter().all(|(from, to, other)| {
            !overlaps(span, (*from, *to)) || (class == Class::Other && *other == Class::Other)
        });
        let partition_ok = self.partitions.iter().all(|p| !overlaps(span, *p));
        node_ok && partition_ok
    }

    /// True when `node` going down over `span` still leaves two nodes without a crash or hang.
    fn outage_leaves_two_whole(&self, node: usize, span: (u64, u64), nodes: usize) -> bool {
        let mut down: Vec<usize> =
            self.outages.iter().filter(|(from, to, _)| overlaps(span, (*from, *to))).map(|o| o.2).collect();
        down.push(node);
        down.sort_unstable();
        down.dedup();
        down.len() + 2 <= nodes
    }

    fn coordinator_present_at(&self, at: u64) -> bool {
        self.coordinator.iter().all(|(from, to)| !(*from..=*to).contains(&at))
    }

    fn all_free(&self, span: (u64, u64)) -> bool {
        self.per_node.iter().flatten().all(|(from, to, _)| !overlaps(span, (*from, *to)))
            && self.partitions.iter().all(|p| !overlaps(span, *p))
    }
}

/// The shape and schedule of `seed`, with optional overrides of the shape.
pub fn generate(
    seed: u64,
    nodes: Option<usize>,
    block_time_ms: Option<u64>,
    duration_ms: u64,
) -> (RunShape, Vec<Scheduled>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let shape = RunShape {
        nodes: nodes.unwrap_or_else(|| rng.random_range(3..=5)),
        block_time_ms: block_time_ms.unwrap_or_else(|| [100, 150, 200, 250][rng.random_range(0..4)]),
        duration_ms,
        gossip_latency_ms: rng.random_range(10..=120),
        gossip_jitter_ms: rng.random_range(0..=40),
    };
    let names: Vec<String> = (0..shape.nodes).map(|i| format!("seq-{i}")).collect();
    let mut occupancy = Occupancy {
        per_node: vec![Vec::new(); shape.nodes],
        partitions: Vec::new(),
        coordinator: Vec::new(),
        outages: Vec::new(),
        hang_heals: Vec::new(),
    };
    let mut schedule = Vec::new();
    // Let the coordinator elect a first leader before the first fault.
    let mut t = 1500 + rng.random_range(0..500);
    while t + 500 < duration_ms {
        let hold = rng.random_range(300..=4000).min(duration_ms.saturating_sub(t));
        let span = (t, t + hold);
        let roll = rng.random_range(0..100);
        let node = rng.random_range(0..shape.nodes);
        let step = match roll {
            0..=17 => pick_outage(&mut rng, FaultKind::Crash, node, span, &mut occupancy, shape.nodes),
            18..=27 => pick_outage(&mut rng, FaultKind::Hang, node, span, &mut occupancy, shape.nodes),
            28..=39 => pick_fault(&mut rng, FaultKind::Stall, node, span, &mut occupancy, Class::Other),
            40..=47 => {
                pick_fault(&mut rng, FaultKind::ExecutionLag, node, span, &mut occupancy, Class::Other)
            }
            48..=53 => pick_fault(&mut rng, FaultKind::Slow, node, span, &mut occupancy, Class::Impairment),
            54..=59 => {
                pick_fault(&mut rng, FaultKind::Malformed, node, span, &mut occupancy, Class::Impairment)
            }
            60..=67 => {
                pick_fault(&mut rng, FaultKind::Isolate, node, span, &mut occupancy, Class::Impairment)
            }
            68..=75 => pick_instant(FaultKind::StartSequencer, node, t, &mut occupancy),
            76..=79 => pick_instant(FaultKind::StopSequencer, node, t, &mut occupancy),
            80..=89 => {
                if occupancy.all_free(span) && shape.nodes >= 3 {
                    occupancy.partitions.push(span);
                    let mut shuffled = names.clone();
                    for i in (1..shuffled.len()).rev() {
                        shuffled.swap(i, rng.random_range(0..=i));
                    }
                    let cut = rng.random_range(1..shuffled.len());
                    let groups = vec![shuffled[..cut].to_vec(), shuffled[cut..].to_vec()];
                    Some(Step::Partition { groups, heal_after_ms: hold })
                } else {
                    None
                }
            }
            _ => {
                let down_ms = rng.random_range(200..=2000);
                let down = (t, t + down_ms + RESTART_SETTLE_MS);
                if occupancy.coordinator.iter().all(|c| !overlaps(down, *c))
                    && occupancy.hang_heals.iter().all(|heal| !(down.0..=down.1).contains(heal))
                {
                    occupancy.coordinator.push(down);
                    Some(Step::RestartCoordinator { abrupt: rng.random_bool(0.6), down_ms })
                } else {
                    None
                }
            }
        };
        if let Some(step) = step {
            let step = match step {
                Step::Fault { kind, params, heal_after_ms, .. } => {
                    Step::Fault { node: names[node].clone(), kind, params, heal_after_ms }
                }
                other => other,
            };
            schedule.push(Scheduled { at_ms: t, step });
        }
        t += rng.random_range(200..=2000);
    }
    (shape, schedule)
}

/// The schedule of `replicas` coordinator replicas (see the module docs): the node faults of
/// [`generate`] without its coordinator restarts, plus replica episodes from their own stream.
/// With one replica it is [`generate`]. With `conductor`, plus the conductor episodes of
/// [`conducted`].
pub fn generate_for(
    seed: u64,
    nodes: Option<usize>,
    block_time_ms: Option<u64>,
    duration_ms: u64,
    replicas: usize,
    conductor: bool,
) -> (RunShape, Vec<Scheduled>) {
    let (shape, mut schedule) = if replicas > 1 {
        generate_replicated(seed, nodes, block_time_ms, duration_ms, replicas)
    } else {
        generate(seed, nodes, block_time_ms, duration_ms)
    };
    if conductor {
        conducted::add_episodes(seed, &shape, &mut schedule);
    }
    (shape, schedule)
}

/// The node faults of `seed` plus replica episodes (see the module docs).
pub fn generate_replicated(
    seed: u64,
    nodes: Option<usize>,
    block_time_ms: Option<u64>,
    duration_ms: u64,
    replicas: usize,
) -> (RunShape, Vec<Scheduled>) {
    let (shape, mut schedule) = generate(seed, nodes, block_time_ms, duration_ms);
    schedule.retain(|scheduled| !matches!(scheduled.step, Step::RestartCoordinator { .. }));
    let settle_ms =
        RaftTimings::for_block_time(shape.block_time_ms).election_timeout_max_ms + REPLICA_SETTLE_MS;
    let hang_heals: Vec<u64> = schedule
        .iter()
        .filter_map(|scheduled| match &scheduled.step {
            Step::Fault { kind: FaultKind::Hang, heal_after_ms: Some(hold), .. } => {
                Some(scheduled.at_ms + hold)
            }
            _ => None,
        })
        .collect();
    let behind_back_starts: Vec<u64> = schedule
        .iter()
        .filter(|scheduled| matches!(scheduled.step, Step::Fault { kind: FaultKind::StartSequencer, .. }))
        .map(|scheduled| scheduled.at_ms)
        .collect();
    let mut rng = StdRng::seed_from_u64(seed ^ REPLICA_STREAM);
    let ids = 1..=replicas as u64;
    let target = |rng: &mut StdRng| {
        if rng.random_bool(0.5) {
            ReplicaTarget::Leader
        } else {
            ReplicaTarget::Replica(rng.random_range(ids.clone()))
        }
    };
    // Let the replicas elect and the chain get a leader before the first episode.
    let mut t = 2500 + rng.random_range(0..1000);
    while t + 500 < duration_ms {
        let roll = rng.random_range(0..100);
        let (fault, held) = match roll {
            0..=34 => {
                let fault = ReplicaFault::Crash { target: target(&mut rng), abrupt: rng.random_bool(0.7) };
                (fault, rng.random_range(300..=3000))
            }
            35..=59 => (ReplicaFault::Partition { target: target(&mut rng) }, rng.random_range(300..=4000)),
            60..=84 => {
                let mode = [IsolateMode::Refuse, IsolateMode::Blackhole][rng.random_range(0..2)];
                (ReplicaFault::IsolateFromSequencers { mode }, rng.random_range(500..=6000))
            }
            85..=92 => (
                ReplicaFault::CrashAllButLeader { abrupt: rng.random_bool(0.7) },
                rng.random_range(300..=1500),
            ),
            _ => (ReplicaFault::PartitionAll, rng.random_range(300..=1500)),
        };
        let held = held.min(duration_ms - t);
        let disrupted = (t, t + held + settle_ms);
        // A hang that heals just before the episode is as bad as one that heals in it: the
        // resumed process needs an acting replica to stop it (replica seed 98).
        let heal_free = (t.saturating_sub(REPLICA_SETTLE_MS), disrupted.1);
        let clear = hang_heals.iter().all(|heal| !(heal_free.0..=heal_free.1).contains(heal))
            && behind_back_starts
                .iter()
                .all(|start| !overlaps((*start, start + INSPECTION_GRACE_MS), disrupted));
        if clear {
            schedule.push(Scheduled { at_ms: t, step: Step::Replica { fault, heal_after_ms: held } });
            t += held;
        }
        t += rng.random_range(300..=3000);
    }
    // Stable: at equal offsets the node fault, drawn first, applies first.
    schedule.sort_by_key(|scheduled| scheduled.at_ms);
    (shape, schedule)
}

/// A crash or hang, if it keeps two nodes whole and (a hang) does not heal in a coordinator's
/// absence.
fn pick_outage(
    rng: &mut StdRng,
    kind: FaultKind,
    node: usize,
    span: (u64, u64),
    occupancy: &mut Occupancy,
    nodes: usize,
) -> Option<Step> {
    if !occupancy.outage_leaves_two_whole(node, span, nodes)
        || (kind == FaultKind::Hang && !occupancy.coordinator_present_at(span.1))
    {
        return None;
    }
    let step = pick_fault(rng, kind, node, span, occupancy, Class::Other)?;
    occupancy.outages.push((span.0, span.1, node));
    if kind == FaultKind::Hang {
        occupancy.hang_heals.push(span.1);
    }
    Some(step)
}

fn pick_fault(
    rng: &mut StdRng,
    kind: FaultKind,
    node: usize,
    span: (u64, u64),
    occupancy: &mut Occupancy,
    class: Class,
) -> Option<Step> {
    if !occupancy.node_free_for(node, span, class) {
        return None;
    }
    occupancy.per_node[node].push((span.0, span.1, class));
    let target = |rng: &mut StdRng| {
        Some([FaultTarget::OpNode, FaultTarget::OpGeth, FaultTarget::Both][rng.random_range(0..3)])
    };
    let params = match kind {
        FaultKind::Crash => FaultParams { target: target(rng), ..Default::default() },
        FaultKind::Hang => FaultParams {
            target: Some([FaultTarget::OpNode, FaultTarget::Both][rng.random_range(0..2)]),
            seal_on_resume: Some(false),
            ..Default::default()
        },
        FaultKind::Slow => FaultParams {
            target: target(rng),
            latency_ms: Some(rng.random_range(20..=600)),
            ..Default::default()
        },
        FaultKind::Malformed => {
            let mode = ["invalid_json", "wrong_types", "huge_body"][rng.random_range(0..3)];
            FaultParams {
                target: target(rng),
                mode: Some(mode.into()),
                size_bytes: (mode == "huge_body").then_some(3 * 1024 * 1024),
                ..Default::default()
            }
        }
        FaultKind::Isolate => FaultParams {
            mode: Some(["refuse", "blackhole"][rng.random_range(0..2)].into()),
            ..Default::default()
        },
        _ => FaultParams::default(),
    };
    Some(Step::Fault { node: String::new(), kind, params, heal_after_ms: Some(span.1 - span.0) })
}

/// How long a sequencer started behind the coordinator's back keeps its node off limits to RPC
/// impairments and partitions: inspection must be able to reach it to stop it. A second sequencer
/// the coordinator cannot reach is the documented invisible-leader window, not a coordinator bug
/// (seed 141: started, then black-holed 210 ms later, it sealed for 3 s).
pub const BEHIND_BACK_SETTLE_MS: u64 = 2000;

fn pick_instant(kind: FaultKind, node: usize, at: u64, occupancy: &mut Occupancy) -> Option<Step> {
    // Behind-the-back starts and stops are exclusive with impairments and partitions on that node.
    if !occupancy.node_free_for(node, (at, at + 1), Class::Other) {
        return None;
    }
    if kind == FaultKind::StartSequencer {
        occupancy.per_node[node].push((at, at + BEHIND_BACK_SETTLE_MS, Class::Other));
    }
    Some(Step::Fault { node: String::new(), kind, params: FaultParams::default(), heal_after_ms: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_always_yields_the_same_schedule() {
        assert_eq!(generate(7, None, None, 60_000), generate(7, None, None, 60_000));
        assert_ne!(generate(7, None, None, 60_000).1, generate(8, None, None, 60_000).1);
    }

    #[test]
    fn schedules_are_rich_and_respect_the_exclusions() {
        let (shape, schedule) = generate(42, None, None, 60_000);
        assert!((3..=5).contains(&shape.nodes));
        assert!(schedule.len() >= 20, "{} steps", schedule.len());
        let impairments = [FaultKind::Isolate, FaultKind::Slow, FaultKind::Malformed];
        for (i, a) in schedule.iter().enumerate() {
            let Step::Fault { node, kind, heal_after_ms: Some(hold), .. } = &a.step else { continue };
            if !impairments.contains(kind) {
                continue;
            }
            let span = (a.at_ms, a.at_ms + hold);
            for (j, b) in schedule.iter().enumerate() {
                if i == j {
                    continue;
                }
                match &b.step {
                    Step::Fault { node: other, heal_after_ms, .. } if other == node => {
                        let end = b.at_ms + heal_after_ms.unwrap_or(1);
                        assert!(!overlaps(span, (b.at_ms, end)), "{a:?} overlaps {b:?}");
                    }
                    Step::Partition { heal_after_ms, .. } => {
                        assert!(!overlaps(span, (b.at_ms, b.at_ms + heal_after_ms)), "{a:?} overlaps {b:?}");
                    }
                    _ => {}
                }
            }
        }
    }

    /// FNV-1a over the shapes and schedules of seeds 1-200 (60 s).
    fn default_stream_digest() -> u64 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for seed in 1..=200 {
            let (shape, schedule) = generate(seed, None, None, 60_000);
            let text = serde_json::to_string(&schedule).unwrap_or_default();
            for byte in format!("{shape:?}{text}").bytes() {
                hash ^= u64::from(byte);
                hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        hash
    }

    #[test]
    fn the_single_coordinator_schedules_stay_exactly_what_past_sweeps_ran() {
        // Sweeps are compared seed by seed across versions: a change here must be deliberate.
        // Changed deliberately once: behind-the-back starts keep impairments off their node for
        // BEHIND_BACK_SETTLE_MS (seeds are not comparable with sweeps before that).
        assert_eq!(default_stream_digest(), 0x5f14_b1c0_3cf4_8d1b);
    }

    #[test]
    fn replica_mode_keeps_the_node_faults_of_the_single_coordinator_schedule() {
        for seed in 1..=30 {
            assert_eq!(generate_for(seed, None, None, 60_000, 1, false), generate(seed, None, None, 60_000));
            let (shape, schedule) = generate(seed, None, None, 60_000);
            let (replica_shape, replicated) = generate_replicated(seed, None, None, 60_000, 3);
            assert_eq!(shape, replica_shape);
            let expected: Vec<&Scheduled> =
                schedule.iter().filter(|s| !matches!(s.step, Step::RestartCoordinator { .. })).collect();
            let node_faults: Vec<&Scheduled> =
                replicated.iter().filter(|s| !matches!(s.step, Step::Replica { .. })).collect();
            assert_eq!(node_faults, expected, "seed {seed}");
            assert!(replicated.windows(2).all(|pair| pair[0].at_ms <= pair[1].at_ms));
        }
    }

    #[test]
    fn replica_episodes_come_one_at_a_time_and_keep_clear_of_hang_heals_and_behind_the_back_starts() {
        let mut kinds = std::collections::BTreeSet::new();
        for seed in 1..=100 {
            let (shape, schedule) = generate_replicated(seed, None, None, 60_000, 3);
            let settle =
                RaftTimings::for_block_time(shape.block_time_ms).election_timeout_max_ms + REPLICA_SETTLE_MS;
            let episodes: Vec<(u64, u64, &ReplicaFault)> = schedule
                .iter()
                .filter_map(|s| match &s.step {
                    Step::Replica { fault, heal_after_ms } => Some((s.at_ms, s.at_ms + heal_after_ms, fault)),
                    _ => None,
                })
                .collect();
            assert!(episodes.len() >= 5, "seed {seed}: {} episodes", episodes.len());
            for pair in episodes.windows(2) {
                assert!(pair[0].1 < pair[1].0, "seed {seed}: {:?} overlaps {:?}", pair[0], pair[1]);
            }
            for (from, to, fault) in &episodes {
                kinds.insert(fault.name());
                assert!(*to <= 60_000, "seed {seed}: {fault:?} heals after the fault phase");
                if fault.loses_majority() {
                    assert!(to - from <= 1500, "seed {seed}: majority lost for {} ms", to - from);
                }
                for s in &schedule {
                    match &s.step {
                        Step::Fault { kind: FaultKind::Hang, heal_after_ms: Some(hold), node, .. } => {
                            let heal = s.at_ms + hold;
                            assert!(
                                !(from.saturating_sub(REPLICA_SETTLE_MS)..=to + settle).contains(&heal),
                                "seed {seed}: hang on {node} heals in {fault:?}"
                            );
                        }
                        Step::Fault { kind: FaultKind::StartSequencer, .. } => assert!(
                            !overlaps((s.at_ms, s.at_ms + INSPECTION_GRACE_MS), (*from, to + settle)),
                            "seed {seed}: behind-the-back start at {} ms next to {fault:?}",
                            s.at_ms
                        ),
                        _ => {}
                    }
                }
            }
        }
        let expected = [
            "leader_isolated_from_sequencers",
            "majority_lost_crash",
            "majority_lost_partition",
            "replica_crash",
            "replica_partition",
        ];
        assert_eq!(kinds.into_iter().collect::<Vec<_>>(), expected);
    }

    #[test]
    fn raft_timings_follow_the_block_time_within_bounds() {
        let fast = RaftTimings::for_block_time(100);
        assert_eq!(
            (fast.heartbeat_interval_ms, fast.election_timeout_min_ms, fast.election_timeout_max_ms),
            (50, 300, 500)
        );
        let slow = RaftTimings::for_block_time(250);
        assert_eq!(
            (slow.heartbeat_interval_ms, slow.election_timeout_min_ms, slow.election_timeout_max_ms),
            (83, 498, 830)
        );
        assert_eq!(RaftTimings::for_block_time(2000).heartbeat_interval_ms, 100);
    }

    #[test]
    fn crashes_and_hangs_leave_two_nodes_whole_and_no_hang_heals_in_the_coordinators_absence() {
        for seed in 1..=100 {
            let (shape, schedule) = generate(seed, None, None, 60_000);
            let outages: Vec<(u64, u64, &str, FaultKind)> = schedule
                .iter()
                .filter_map(|s| match &s.step {
                    Step::Fault { node, kind, heal_after_ms: Some(hold), .. }
                        if matches!(kind, FaultKind::Crash | FaultKind::Hang) =>
                    {
                        Some((s.at_ms, s.at_ms + hold, node.as_str(), *kind))
                    }
                    _ => None,
                })
                .collect();
            let absences: Vec<(u64, u64)> = schedule
                .iter()
                .filter_map(|s| match &s.step {
                    Step::RestartCoordinator { down_ms, .. } => {
                        Some((s.at_ms, s.at_ms + down_ms + RESTART_SETTLE_MS))
                    }
                    _ => None,
                })
                .collect();
            for (from, _, _, _) in &outages {
                let mut down: Vec<&str> =
                    outages.iter().filter(|(f, t, _, _)| (*f..=*t).contains(from)).map(|o| o.2).collect();
                down.sort_unstable();
                down.dedup();
                assert!(down.len() + 2 <= shape.nodes, "seed {seed}: {down:?} down at {from} ms");
            }
            for (_, heal, node, kind) in &outages {
                if *kind == FaultKind::Hang {
                    assert!(
                        absences.iter().all(|(f, t)| !(*f..=*t).contains(heal)),
                        "seed {seed}: hang on {node} heals at {heal} ms while the coordinator is away"
                    );
                }
            }
        }
    }
}
