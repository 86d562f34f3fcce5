//! What a chain's block time is, and where that came from.
//!
//! Every window of the fail-over follows the block time ([`crate::config::windows`]), so acting on
//! a wrong one is how a live leader gets a second sequencer beside it. The coordinator therefore
//! asks the chain and checks the operator:
//!
//! - **the rollup config**: `optimism_rollupConfig` on every op-node, at start and on every
//!   reconnection. It states `block_time` in whole seconds, so a sub-second chain (a fork of the
//!   OP Stack) says `1`: an upper bound, safe to act on (longer windows) until measured.
//! - **the head**: the unsafe head's number and timestamp, from the probes. Timestamps are whole
//!   seconds, so over `n` blocks the interval is known to within `1000 / n` ms: enough to confirm or
//!   refine the block time once [`MEASURE_MIN_SECONDS`] of chain time has passed.
//! - **the config** (`chains.<chain>.block_time_ms`, optional): used as stated once the chain does
//!   not contradict it; a value the chain contradicts is an error naming both, and the chain is
//!   watched but not acted on.
//!
//! | configured | rollup config says | block time used                                      |
//! |------------|--------------------|------------------------------------------------------|
//! | none       | `N` s              | `N` s; the measured interval once it is clearly shorter (a sub-second fork) |
//! | none       | nothing usable     | the measured interval; unknown (no action) until then |
//! | `c` ms     | `c` (equal)        | `c`                                                   |
//! | `c` < 1 s  | `1` s              | `c` (a sub-second fork), checked against the head     |
//! | any other  |                    | conflict: no action until the config is fixed         |

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::time::Duration;

use crate::config::settings::{ChainTuning, Tuned};
use crate::engine::{Event, EventKind};
use crate::health::Probe;

/// Chain time the head must have covered before its interval counts as measured: with whole-second
/// timestamps this bounds the error to a tenth of the interval.
pub const MEASURE_MIN_SECONDS: u64 = 10;

/// Why a chain waits at start-up (the first probe asks `optimism_rollupConfig`).
const WAITING_FOR_ROLLUP: &str = "waiting for the first optimism_rollupConfig answer";

/// Head samples kept: enough for [`MEASURE_MIN_SECONDS`] at 25 ms blocks, and a bound on memory.
const MAX_SAMPLES: usize = 512;

/// Where the block time in use came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `chains.<chain>.block_time_ms`, not contradicted by the chain.
    Configured,
    /// `block_time` of `optimism_rollupConfig`.
    RollupConfig,
    /// The unsafe head's timestamps over [`MEASURE_MIN_SECONDS`] or more.
    Measured,
}

impl Source {
    /// Stable text for status and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Configured => "configured",
            Self::RollupConfig => "rollup config",
            Self::Measured => "measured from the unsafe head",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the coordinator may assume about the chain's block time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not known yet: the chain is watched, not acted on.
    Unknown(String),
    /// Known.
    Known {
        /// The block time.
        block_time: Duration,
        /// Where it came from.
        source: Source,
    },
    /// The chain contradicts the configured block time (or its nodes contradict each other): the
    /// chain is watched, not acted on, until the config is fixed.
    Conflict(String),
}

impl Verdict {
    /// The block time, when known.
    pub fn block_time(&self) -> Option<Duration> {
        match self {
            Self::Known { block_time, .. } => Some(*block_time),
            _ => None,
        }
    }
}

/// The interval measured from the head, with its bounds (milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Measured {
    estimate_ms: u64,
    low_ms: u64,
    high_ms: u64,
}

impl Measured {
    /// True when an interval of `value_ms` is consistent with the measurement, with a margin for
    /// a chain that is slightly off its target.
    fn admits(&self, value_ms: u64) -> bool {
        value_ms * 5 >= self.low_ms * 4 && value_ms * 4 <= self.high_ms * 5
    }
}

/// Tracks one chain's block time from its config, its op-nodes and its head.
#[derive(Debug, Clone)]
pub struct BlockTimeTracker {
    chain: String,
    configured: Option<Duration>,
    /// The last usable `block_time` each op-node stated.
    rollup: BTreeMap<String, Duration>,
    /// Why the last `optimism_rollupConfig` failed, while none has been usable.
    rollup_failure: Option<String>,
    /// (number, timestamp) of each new highest unsafe head.
    heads: VecDeque<(u64, u64)>,
    /// The measured interval in use: a new estimate replaces it only when it moved by more than a
    /// fifth, so whole-second rounding does not retune the chain every probe.
    latched_ms: Option<u64>,
}

impl BlockTimeTracker {
    /// A tracker for `chain`, configured with `chains.<chain>.block_time_ms` if set.
    pub fn new(chain: &str, configured: Option<Duration>) -> Self {
        Self {
            chain: chain.to_owned(),
            configured,
            rollup: BTreeMap::new(),
            rollup_failure: None,
            heads: VecDeque::new(),
            latched_ms: None,
        }
    }

    /// One op-node's `optimism_rollupConfig` outcome: `Ok(Some)` a usable block time, `Ok(None)` a
    /// reply without one, `Err` a failed call.
    pub fn observe_rollup(&mut self, node: &str, outcome: Result<Option<Duration>, String>) {
        match outcome {
            Ok(Some(block_time)) => {
                self.rollup.insert(node.to_owned(), block_time);
                self.rollup_failure = None;
            }
            Ok(None) => {
                self.rollup.remove(node);
                self.rollup_failure = Some(format!("{node} states no block_time"));
            }
            Err(err) => self.rollup_failure = Some(format!("{node}: {err}")),
        }
    }

    /// An unsafe head seen on any node: number and timestamp (unix seconds).
    /// Returns true when it is a new highest head (the measurement may have changed).
    pub fn observe_head(&mut self, number: u64, timestamp: u64) -> bool {
        if number == 0 || timestamp == 0 || self.heads.back().is_some_and(|&(last, _)| number <= last) {
            return false;
        }
        self.heads.push_back((number, timestamp));
        if self.heads.len() > MAX_SAMPLES {
            self.heads.pop_front();
        }
        true
    }

    /// The interval over the samples, once they span [`MEASURE_MIN_SECONDS`], latched.
    fn measured(&mut self) -> Option<Measured> {
        let mut measured = self.estimate()?;
        match self.latched_ms {
            Some(latched)
                if measured.admits(latched)
                    && latched * 5 >= measured.estimate_ms * 4
                    && latched * 4 <= measured.estimate_ms * 5 =>
            {
                measured.estimate_ms = latched;
            }
            _ => self.latched_ms = Some(measured.estimate_ms),
        }
        Some(measured)
    }

    fn estimate(&self) -> Option<Measured> {
        self.over_transitions().or_else(|| self.over_span())
    }

    /// From the first and last block seen to start a new second (its parent seen too, one second
    /// earlier): between two such blocks lie exactly as many seconds as their timestamps say, to
    /// within one block. With whole-second blocks every block starts a new second.
    fn over_transitions(&self) -> Option<Measured> {
        let mut starts = self
            .heads
            .iter()
            .zip(self.heads.iter().skip(1))
            .filter(|(parent, child)| child.0 == parent.0 + 1 && child.1 > parent.1)
            .map(|(_, child)| *child);
        let (n0, t0) = starts.next()?;
        let (n1, t1) = starts.next_back()?;
        let seconds = t1.checked_sub(t0).filter(|seconds| *seconds >= MEASURE_MIN_SECONDS)?;
        let blocks = n1 - n0;
        Some(Measured {
            estimate_ms: (seconds * 1000 + blocks / 2) / blocks,
            low_ms: seconds * 1000 / (blocks + 1),
            high_ms: seconds * 1000 / (blocks - 1).max(1),
        })
    }

    /// From the whole span of samples: the timestamps are whole seconds of a chain that may run
    /// faster, so the true span lies within one second either way.
    fn over_span(&self) -> Option<Measured> {
        let (&(n0, t0), &(n1, t1)) = (self.heads.front()?, self.heads.back()?);
        let blocks = n1.checked_sub(n0).filter(|blocks| *blocks > 0)?;
        let seconds = t1.checked_sub(t0).filter(|seconds| *seconds >= MEASURE_MIN_SECONDS)?;
        Some(Measured {
            estimate_ms: seconds * 1000 / blocks,
            low_ms: (seconds - 1) * 1000 / blocks,
            high_ms: (seconds + 1) * 1000 / blocks,
        })
    }

    /// The block time the op-nodes agree on; a conflict when they do not.
    fn rollup_block_time(&self) -> Result<Option<Duration>, String> {
        let mut values = self.rollup.values();
        let Some(first) = values.next() else { return Ok(None) };
        if values.all(|value| value == first) {
            return Ok(Some(*first));
        }
        let stated: Vec<String> =
            self.rollup.iter().map(|(node, value)| format!("{node} {} s", value.as_secs())).collect();
        Err(format!(
            "the op-nodes of chain {} state different block times ({}): is a node of another chain listed under chains.{}?",
            self.chain,
            stated.join(", "),
            self.chain
        ))
    }

    /// What the coordinator may assume now.
    pub fn verdict(&mut self) -> Verdict {
        let rollup = match self.rollup_block_time() {
            Ok(rollup) => rollup,
            Err(conflict) => return Verdict::Conflict(conflict),
        };
        let measured = self.measured();
        match self.configured {
            Some(configured) => self.check_configured(configured, rollup, measured),
            None => self.stated_by_chain(rollup, measured),
        }
    }

    fn check_configured(
        &self,
        configured: Duration,
        rollup: Option<Duration>,
        measured: Option<Measured>,
    ) -> Verdict {
        let configured_ms = millis(configured);
        let key = format!("chains.{}.block_time_ms", self.chain);
        if let Some(rollup) = rollup {
            // A whole-second config must match; a sub-second one needs a config that says 1 s,
            // the most a sub-second fork can state.
            let fits =
                if configured_ms >= 1000 { configured == rollup } else { rollup == Duration::from_secs(1) };
            if !fits {
                return Verdict::Conflict(format!(
                    "{key} = {configured_ms} ms, but the chain's rollup config (optimism_rollupConfig) says {} ms: \
                     set {key} = {} or leave it out",
                    millis(rollup),
                    millis(rollup)
                ));
            }
        }
        if let Some(measured) = measured.filter(|measured| !measured.admits(configured_ms)) {
            return Verdict::Conflict(format!(
                "{key} = {configured_ms} ms, but the unsafe head advanced one block every {} ms (between {} and {} ms) \
                 over the last {} s: set {key} = {} or leave it out",
                measured.estimate_ms,
                measured.low_ms,
                measured.high_ms,
                self.measured_seconds(),
                measured.estimate_ms
            ));
        }
        if rollup.is_none() && self.rollup_failure.is_none() {
            return Verdict::Unknown(WAITING_FOR_ROLLUP.into());
        }
        Verdict::Known { block_time: configured, source: Source::Configured }
    }

    fn stated_by_chain(&self, rollup: Option<Duration>, measured: Option<Measured>) -> Verdict {
        let faster_than_stated =
            |measured: &Measured| rollup.is_none_or(|rollup| measured.high_ms * 4 < millis(rollup) * 3);
        match (rollup, measured) {
            (_, Some(measured)) if faster_than_stated(&measured) => Verdict::Known {
                block_time: Duration::from_millis(measured.estimate_ms.max(1)),
                source: Source::Measured,
            },
            (Some(rollup), _) => Verdict::Known { block_time: rollup, source: Source::RollupConfig },
            (None, _) => Verdict::Unknown(match &self.rollup_failure {
                Some(failure) => format!(
                    "the rollup config states no block time ({failure}) and the unsafe head has not yet advanced for \
                     {MEASURE_MIN_SECONDS} s to measure it; set chains.{}.block_time_ms to act sooner",
                    self.chain
                ),
                None => WAITING_FOR_ROLLUP.into(),
            }),
        }
    }

    fn measured_seconds(&self) -> u64 {
        match (self.heads.front(), self.heads.back()) {
            (Some((_, t0)), Some((_, t1))) => t1.saturating_sub(*t0),
            _ => 0,
        }
    }
}

/// A change of what the actor may do on its chain, with the event that tells the operator.
#[derive(Debug)]
pub enum Change {
    /// The block time is known (or moved): act with these settings.
    Retuned(Box<Tuned>, Event),
    /// Do not act on the chain.
    Held(Event),
}

/// The block time of one chain, the settings that follow from it and whether the actor may act:
/// the actor feeds it every probe and applies the [`Change`]s it returns.
#[derive(Debug)]
pub struct BlockTimeGate {
    tracker: BlockTimeTracker,
    tuning: ChainTuning,
    verdict: Option<Verdict>,
    /// Why the chain is not acted on; `None` while it is.
    held: Option<String>,
    /// A [`Change::Held`] was announced since the chain was last acted on: acting again is a
    /// release, not a first start.
    hold_announced: bool,
}

impl BlockTimeGate {
    /// A gate for `chain`, held until the block time is known.
    pub fn new(chain: &str, configured: Option<Duration>, tuning: ChainTuning) -> Self {
        Self {
            tracker: BlockTimeTracker::new(chain, configured),
            tuning,
            verdict: None,
            held: Some(format!("block time unknown: {WAITING_FOR_ROLLUP}")),
            hold_announced: false,
        }
    }

    /// The settings to build the engine and health tracker with before the block time is known.
    pub fn provisional(&self) -> Tuned {
        self.tuning.provisional()
    }

    /// Why the chain is not acted on; `None` while it is.
    pub fn held(&self) -> Option<&str> {
        self.held.as_deref()
    }

    /// The block time in use and its source, once known.
    pub fn block_time(&self) -> Option<(Duration, Source)> {
        match &self.verdict {
            Some(Verdict::Known { block_time, source }) => Some((*block_time, *source)),
            _ => None,
        }
    }

    /// Feeds one probe; returns what changed, if anything.
    pub fn observe(&mut self, node: &str, probe: &Probe) -> Option<Change> {
        let asked = probe.rollup.as_ref().map(|asked| match &asked.result {
            Ok(config) => Ok(config.block_time()),
            Err(err) => Err(err.to_string()),
        });
        let rollup_answered = asked.is_some();
        if let Some(outcome) = asked {
            self.tracker.observe_rollup(node, outcome);
        }
        let new_head = probe.sync.result.as_ref().is_ok_and(|status| {
            self.tracker.observe_head(status.unsafe_l2.number, status.unsafe_l2.timestamp)
        });
        // Most probes bring neither: the verdict (which walks the head samples) stands.
        if !rollup_answered && !new_head && self.verdict.is_some() {
            return None;
        }
        let verdict = self.tracker.verdict();
        if self.verdict.as_ref() == Some(&verdict) {
            return None;
        }
        self.verdict = Some(verdict.clone());
        let held = match verdict {
            Verdict::Known { block_time, source } => match self.tuning.for_block_time(block_time) {
                Ok(tuned) => {
                    let windows = tuned.windows;
                    let detail = format!(
                        "block time {} ms ({source}): liveness window {} ms, stall after {} ms, catch-up within {} ms, convergence wait {} ms",
                        millis(block_time),
                        millis(windows.chain_liveness_window),
                        millis(windows.unsafe_stall),
                        millis(windows.catch_up_timeout),
                        millis(windows.convergence_wait),
                    );
                    self.held = None;
                    let released = std::mem::take(&mut self.hold_announced);
                    let kind = if released { EventKind::ChainReleased } else { EventKind::BlockTimeKnown };
                    return Some(Change::Retuned(Box::new(tuned), Event::info(kind, None, detail)));
                }
                Err(problems) => {
                    let texts: Vec<String> = problems.iter().map(ToString::to_string).collect();
                    format!("the configured windows do not fit the chain's block time: {}", texts.join("; "))
                }
            },
            Verdict::Unknown(why) => format!("block time unknown: {why}"),
            Verdict::Conflict(why) => why,
        };
        if self.held.as_deref() == Some(held.as_str()) {
            return None;
        }
        self.held = Some(held.clone());
        self.hold_announced = true;
        Some(Change::Held(Event::warn(
            EventKind::ChainHeld,
            None,
            format!("not acting on this chain: {held}"),
        )))
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GENESIS: u64 = 1_700_000_000;

    fn secs(value: u64) -> Duration {
        Duration::from_secs(value)
    }

    fn ms(value: u64) -> Duration {
        Duration::from_millis(value)
    }

    /// Feeds heads 1..=count of a chain of `block_time_ms`, timestamps as op-node floors them.
    fn feed_heads(tracker: &mut BlockTimeTracker, block_time_ms: u64, count: u64) {
        for number in 1..=count {
            tracker.observe_head(number, GENESIS + number * block_time_ms / 1000);
        }
    }

    fn known(block_time: Duration, source: Source) -> Verdict {
        Verdict::Known { block_time, source }
    }

    #[test]
    fn unconfigured_chains_use_the_rollup_config() {
        let mut tracker = BlockTimeTracker::new("main", None);
        assert!(matches!(tracker.verdict(), Verdict::Unknown(_)));
        tracker.observe_rollup("a", Ok(Some(secs(2))));
        assert_eq!(tracker.verdict(), known(secs(2), Source::RollupConfig));
        feed_heads(&mut tracker, 2000, 20);
        assert_eq!(
            tracker.verdict(),
            known(secs(2), Source::RollupConfig),
            "a matching head changes nothing"
        );
    }

    #[test]
    fn a_sub_second_chain_stating_one_second_is_measured_once_ten_seconds_have_passed() {
        let mut tracker = BlockTimeTracker::new("main", None);
        tracker.observe_rollup("a", Ok(Some(secs(1))));
        feed_heads(&mut tracker, 250, 36);
        assert_eq!(tracker.verdict(), known(secs(1), Source::RollupConfig), "9 s of chain time: not yet");
        feed_heads(&mut tracker, 250, 44);
        assert_eq!(tracker.verdict(), known(ms(250), Source::Measured));
    }

    #[test]
    fn without_a_usable_rollup_config_the_chain_waits_for_a_measurement_and_says_how_to_act_sooner() {
        let mut tracker = BlockTimeTracker::new("main", None);
        tracker.observe_rollup("a", Err("method not found".into()));
        let Verdict::Unknown(why) = tracker.verdict() else { panic!("unknown") };
        assert!(why.contains("set chains.main.block_time_ms"), "{why}");
        feed_heads(&mut tracker, 1000, 12);
        assert_eq!(tracker.verdict(), known(secs(1), Source::Measured));
    }

    #[test]
    fn a_configured_block_time_the_rollup_config_contradicts_is_a_conflict_naming_both() {
        let mut tracker = BlockTimeTracker::new("main", Some(secs(1)));
        assert!(matches!(tracker.verdict(), Verdict::Unknown(_)), "waits for the chain's word");
        tracker.observe_rollup("a", Ok(Some(secs(2))));
        let Verdict::Conflict(why) = tracker.verdict() else { panic!("conflict") };
        assert!(why.contains("chains.main.block_time_ms = 1000 ms"), "{why}");
        assert!(why.contains("says 2000 ms"), "{why}");
    }

    #[test]
    fn a_sub_second_configured_block_time_is_used_and_checked_against_the_head() {
        let mut tracker = BlockTimeTracker::new("main", Some(ms(250)));
        tracker.observe_rollup("a", Ok(Some(secs(1))));
        assert_eq!(tracker.verdict(), known(ms(250), Source::Configured));
        feed_heads(&mut tracker, 250, 80);
        assert_eq!(tracker.verdict(), known(ms(250), Source::Configured));

        // The operator wrote 250 ms for a chain that really makes a block a second.
        let mut wrong = BlockTimeTracker::new("main", Some(ms(250)));
        wrong.observe_rollup("a", Ok(Some(secs(1))));
        feed_heads(&mut wrong, 1000, 12);
        let Verdict::Conflict(why) = wrong.verdict() else { panic!("conflict") };
        assert!(why.contains("one block every 1000 ms"), "{why}");
    }

    #[test]
    fn a_configured_block_time_is_used_when_the_rollup_config_cannot_be_read() {
        let mut tracker = BlockTimeTracker::new("main", Some(secs(2)));
        tracker.observe_rollup("a", Err("no answer within 250 ms".into()));
        assert_eq!(tracker.verdict(), known(secs(2), Source::Configured));
    }

    #[test]
    fn op_nodes_that_disagree_are_a_conflict() {
        let mut tracker = BlockTimeTracker::new("main", None);
        tracker.observe_rollup("a", Ok(Some(secs(2))));
        tracker.observe_rollup("b", Ok(Some(secs(1))));
        let Verdict::Conflict(why) = tracker.verdict() else { panic!("conflict") };
        assert!(why.contains("a 2 s, b 1 s"), "{why}");
    }

    #[test]
    fn stalls_and_lower_heads_do_not_bend_the_measurement() {
        let mut tracker = BlockTimeTracker::new("main", None);
        tracker.observe_rollup("a", Ok(Some(secs(1))));
        feed_heads(&mut tracker, 250, 20);
        // A follower behind reports an older head; the leader stalls for a while (same head).
        tracker.observe_head(5, GENESIS + 1);
        tracker.observe_head(20, GENESIS + 5);
        feed_heads(&mut tracker, 250, 60);
        assert_eq!(tracker.verdict(), known(ms(250), Source::Measured));
    }
}
