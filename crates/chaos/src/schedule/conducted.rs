//! Conductor mode's episodes: what only a chain whose op-nodes commit every block to the
//! coordinator can survive, on top of the node faults (and replica episodes) of the same seed.
//!
//! They come from a third random stream, seeded with `seed ^ `[`CONDUCTOR_STREAM`], so the node
//! faults stay exactly those of the seed without `--conductor` and a conductor-mode failure can be
//! compared with the same seed in observe mode. One episode at a time, 1-3 s apart, from 3-4 s in
//! (a leader is elected by then):
//!
//! | episode                   | share | target             | held      | what                                                   |
//! |---------------------------|------:|--------------------|-----------|--------------------------------------------------------|
//! | leader cut off both ways  | 30 %  | the leader         | 0.5-4 s   | `isolate` and `conductor_drop` (refuse or blackhole): no probe reaches it, none of its commits reaches us; it must be deposed and replaced, and publish nothing after |
//! | slow commit path          | 20 %  | leader 70 %, else any node | 0.5-4 s | `conductor_delay` 20-1500 ms: below the 1 s rpc timeout a slower chain, above it no commit at all |
//! | failing commit path       | 15 %  | leader 70 %, else any node | 0.3-3 s | `conductor_drop` while it answers every probe: deposed for committing nothing |
//! | hung leader that resumes  | 20 %  | the leader         | 0.3-3 s   | `hang` with `seal_on_resume`: it seals on its old head the instant it resumes, which only the fence can stop |
//! | candidates behind         | 15 %  | the leader         | 4-12 blocks, then 0.5-3 s | the leader partitioned from every peer while it commits 4-12 blocks nobody else has, then its op-node crashes and the partition heals: only the conductor's replay (`admin_postUnsafePayload`) brings a candidate to the committed head |
//!
//! The leader is resolved when the episode starts: the one node whose sequencer is active (ground
//! truth); an episode finding none, several, or a leader already under a lasting fault is
//! skipped. The windows the observe-mode schedule leaves out (an invisible leader, a hang that
//! seals on resuming, one that heals while the coordinator is away) are what these episodes are
//! for, so none is excluded here. Only "candidates behind" keeps clear of the node schedule's
//! partitions: the p2p network has one partition at a time.

use super::{RunShape, Scheduled, Step};
use op_sim::api::{FaultKind, FaultParams, FaultTarget, IsolateMode};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::Serialize;

/// Seeds the conductor-episode stream: `seed ^ CONDUCTOR_STREAM` ("conducto" in ASCII).
pub const CONDUCTOR_STREAM: u64 = 0x636f_6e64_7563_746f;

/// The fewest and most blocks the leader commits alone in "candidates behind": at least a few to
/// replay, at most fewer than the coordinator keeps (`conductor.keep_payloads`, 16) and than
/// `max_candidate_lag_blocks` (16), so replay can always reach the committed head.
pub const AHEAD_BLOCKS: std::ops::RangeInclusive<u64> = 4..=12;

/// Which node a conductor episode hits, resolved when it starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeTarget {
    /// The node sequencing at that moment.
    Leader,
    /// A fixed node, whatever its role.
    Node(String),
}

/// What a conductor episode does (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ConductorEpisode {
    /// Cut off from the coordinator both ways: its RPC (`isolate`) and its commits (`conductor_drop`).
    CutOff {
        /// Refused or black-holed, both ways.
        mode: IsolateMode,
    },
    /// Its conductor calls arrive late (`conductor_delay`).
    SlowCommits {
        /// The added latency.
        latency_ms: u64,
    },
    /// Its conductor calls fail (`conductor_drop`) while it answers every probe.
    FailingCommits {
        /// Refused or black-holed.
        mode: IsolateMode,
    },
    /// Hung (`hang`), sealing on its old head the moment it resumes.
    HangThenSeal {
        /// Which of its processes.
        target: FaultTarget,
    },
    /// Partitioned from every peer for `crash_after_ms`, committing on alone; then its op-node
    /// crashes and the partition heals.
    AheadThenCrash {
        /// How long it commits alone before it crashes.
        crash_after_ms: u64,
    },
}

impl ConductorEpisode {
    /// The name it is counted under.
    pub fn name(&self) -> &'static str {
        match self {
            Self::CutOff { .. } => "leader_cut_off_both_ways",
            Self::SlowCommits { .. } => "slow_commit_path",
            Self::FailingCommits { .. } => "failing_commit_path",
            Self::HangThenSeal { .. } => "hang_then_seal",
            Self::AheadThenCrash { .. } => "candidates_behind",
        }
    }

    /// The node faults it applies when it starts (healed when it ends).
    pub fn faults(&self) -> Vec<(FaultKind, FaultParams)> {
        let mode = |mode: &IsolateMode| FaultParams {
            mode: Some(if *mode == IsolateMode::Blackhole { "blackhole" } else { "refuse" }.to_owned()),
            ..FaultParams::default()
        };
        match self {
            Self::CutOff { mode: how } => {
                vec![(FaultKind::Isolate, mode(how)), (FaultKind::ConductorDrop, mode(how))]
            }
            Self::SlowCommits { latency_ms } => vec![(
                FaultKind::ConductorDelay,
                FaultParams { latency_ms: Some(*latency_ms), ..FaultParams::default() },
            )],
            Self::FailingCommits { mode: how } => vec![(FaultKind::ConductorDrop, mode(how))],
            Self::HangThenSeal { target } => vec![(
                FaultKind::Hang,
                FaultParams { target: Some(*target), seal_on_resume: Some(true), ..FaultParams::default() },
            )],
            Self::AheadThenCrash { .. } => Vec::new(),
        }
    }

    /// The fault applied `crash_after_ms` into "candidates behind", as the partition heals.
    pub fn crash() -> (FaultKind, FaultParams) {
        (FaultKind::Crash, FaultParams { target: Some(FaultTarget::OpNode), ..FaultParams::default() })
    }
}

/// Adds the conductor episodes of `seed` to `schedule` (the node faults and replica episodes of
/// the same seed), keeping it sorted by time.
pub fn add_episodes(seed: u64, shape: &RunShape, schedule: &mut Vec<Scheduled>) {
    let partitions: Vec<(u64, u64)> = schedule
        .iter()
        .filter_map(|scheduled| match &scheduled.step {
            Step::Partition { heal_after_ms, .. } => Some((scheduled.at_ms, scheduled.at_ms + heal_after_ms)),
            _ => None,
        })
        .collect();
    let duration_ms = shape.duration_ms;
    let mut rng = StdRng::seed_from_u64(seed ^ CONDUCTOR_STREAM);
    let mode = |rng: &mut StdRng| [IsolateMode::Refuse, IsolateMode::Blackhole][rng.random_range(0..2)];
    let some_node = |rng: &mut StdRng| {
        if rng.random_bool(0.7) {
            NodeTarget::Leader
        } else {
            NodeTarget::Node(format!("seq-{}", rng.random_range(0..shape.nodes)))
        }
    };
    let mut t = 3000 + rng.random_range(0..1000);
    while t + 500 < duration_ms {
        let roll = rng.random_range(0..100);
        let (target, episode, held) = match roll {
            0..=29 => (
                NodeTarget::Leader,
                ConductorEpisode::CutOff { mode: mode(&mut rng) },
                rng.random_range(500..=4000),
            ),
            30..=49 => {
                let latency_ms = rng.random_range(20..=1500);
                (
                    some_node(&mut rng),
                    ConductorEpisode::SlowCommits { latency_ms },
                    rng.random_range(500..=4000),
                )
            }
            50..=64 => {
                let episode = ConductorEpisode::FailingCommits { mode: mode(&mut rng) };
                (some_node(&mut rng), episode, rng.random_range(300..=3000))
            }
            65..=84 => {
                let target = [FaultTarget::OpNode, FaultTarget::Both][rng.random_range(0..2)];
                (NodeTarget::Leader, ConductorEpisode::HangThenSeal { target }, rng.random_range(300..=3000))
            }
            _ => {
                let crash_after_ms = rng.random_range(AHEAD_BLOCKS) * shape.block_time_ms;
                let held = crash_after_ms + rng.random_range(500..=3000);
                (NodeTarget::Leader, ConductorEpisode::AheadThenCrash { crash_after_ms }, held)
            }
        };
        let held = held.min(duration_ms - t);
        let clear = match &episode {
            ConductorEpisode::AheadThenCrash { crash_after_ms } => {
                *crash_after_ms < held
                    && partitions.iter().all(|(from, to)| !(t <= *to && *from <= t + crash_after_ms))
            }
            _ => true,
        };
        if clear {
            schedule
                .push(Scheduled { at_ms: t, step: Step::Conductor { target, episode, heal_after_ms: held } });
            t += held;
        }
        t += rng.random_range(1000..=3000);
    }
    // Stable: at equal offsets the node fault, drawn first, applies first.
    schedule.sort_by_key(|scheduled| scheduled.at_ms);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::generate_for;

    fn episodes(schedule: &[Scheduled]) -> Vec<(u64, u64, &ConductorEpisode)> {
        schedule
            .iter()
            .filter_map(|s| match &s.step {
                Step::Conductor { episode, heal_after_ms, .. } => {
                    Some((s.at_ms, s.at_ms + heal_after_ms, episode))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn conductor_mode_keeps_the_seeds_node_faults_and_adds_every_episode_one_at_a_time() {
        let mut kinds = std::collections::BTreeSet::new();
        for seed in 1..=100 {
            for replicas in [1, 3] {
                let (shape, observed) = generate_for(seed, None, None, 60_000, replicas, false);
                let (conducted_shape, conducted) = generate_for(seed, None, None, 60_000, replicas, true);
                assert_eq!(shape, conducted_shape);
                let others: Vec<&Scheduled> =
                    conducted.iter().filter(|s| !matches!(s.step, Step::Conductor { .. })).collect();
                assert_eq!(others, observed.iter().collect::<Vec<_>>(), "seed {seed}");
                assert!(conducted.windows(2).all(|pair| pair[0].at_ms <= pair[1].at_ms));
                let episodes = episodes(&conducted);
                assert!(episodes.len() >= 8, "seed {seed}: {} episodes", episodes.len());
                for pair in episodes.windows(2) {
                    assert!(pair[0].1 < pair[1].0, "seed {seed}: {:?} overlaps {:?}", pair[0], pair[1]);
                }
                for (from, to, episode) in &episodes {
                    kinds.insert(episode.name());
                    assert!(*to <= 60_000, "seed {seed}: {episode:?} heals after the fault phase");
                    let ConductorEpisode::AheadThenCrash { crash_after_ms } = episode else { continue };
                    let blocks = crash_after_ms / shape.block_time_ms;
                    assert!(AHEAD_BLOCKS.contains(&blocks), "seed {seed}: {blocks} blocks ahead");
                    for s in &conducted {
                        if let Step::Partition { heal_after_ms, .. } = &s.step {
                            let alone = (*from, from + crash_after_ms);
                            assert!(
                                s.at_ms > alone.1 || s.at_ms + heal_after_ms < alone.0,
                                "seed {seed}: a partition at {} ms in {episode:?}",
                                s.at_ms
                            );
                        }
                    }
                }
            }
        }
        let expected = [
            "candidates_behind",
            "failing_commit_path",
            "hang_then_seal",
            "leader_cut_off_both_ways",
            "slow_commit_path",
        ];
        assert_eq!(kinds.into_iter().collect::<Vec<_>>(), expected);
    }

    #[test]
    fn a_cut_off_leader_is_cut_off_both_ways_and_a_hung_one_seals_on_resuming() {
        let cut_off = ConductorEpisode::CutOff { mode: IsolateMode::Blackhole }.faults();
        let kinds: Vec<FaultKind> = cut_off.iter().map(|(kind, _)| *kind).collect();
        assert_eq!(kinds, [FaultKind::Isolate, FaultKind::ConductorDrop]);
        assert!(cut_off.iter().all(|(_, params)| params.mode.as_deref() == Some("blackhole")));
        let hang = ConductorEpisode::HangThenSeal { target: FaultTarget::OpNode }.faults();
        assert_eq!(hang[0].1.seal_on_resume, Some(true));
    }
}
