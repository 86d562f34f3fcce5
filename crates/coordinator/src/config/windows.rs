//! The windows that depend on a chain's block time, in one place: their defaults, the shortest
//! safe value of each, and the check of explicit values.
//!
//! Each window is a multiple of the block time `bt` plus a margin that covers gossip, the probe
//! interval `p` (`health.interval_ms`: a change is seen only at the next probe) and scheduling
//! noise. A window left out of the config takes its default for the block
//! time the chain runs on (configured, stated by its rollup config, or measured: see
//! [`crate::block_time`]), so one empty `[failover]` / `[health]` runs a 2 s, 1 s, 250 ms or 12 s
//! chain safely. An explicit value is checked against the same block time.
//!
//! | window                              | default                          | at least                       | why the floor |
//! |-------------------------------------|----------------------------------|--------------------------------|---------------|
//! | `failover.chain_liveness_window_ms` | bt + max(500 ms, bt / 2, 3 p)    | bt + max(2 p + 50 ms, bt / 4)  | shorter, a live leader cut off from us looks dead between two blocks, and a second sequencer is started |
//! | `health.unsafe_stall_ms`            | 2 bt + max(500 ms, bt / 2, 3 p)  | bt + max(2 p + 200 ms, bt / 2) | shorter, one block a little late is a "stall" and a fail-over |
//! | `failover.catch_up_timeout_ms`      | max(3 s, 3 bt)                   | bt                             | a candidate one block behind needs one block time to get it |
//! | `failover.convergence_wait_ms`      | max(2 s, 2 bt)                   | (none)                         | 0 is allowed: elect at once |
//!
//! With the default probe interval (100 ms) and 1 s blocks the defaults are those of earlier
//! releases (1500, 2500, 3000, 2000 ms); at 2 s they are 3000, 5000, 6000, 4000 ms.

use std::fmt;
use std::time::Duration;

use super::types::Config;

/// The block-time-dependent windows of one chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    /// `failover.chain_liveness_window_ms`.
    pub chain_liveness_window: Duration,
    /// `health.unsafe_stall_ms`.
    pub unsafe_stall: Duration,
    /// `failover.catch_up_timeout_ms`.
    pub catch_up_timeout: Duration,
    /// `failover.convergence_wait_ms`.
    pub convergence_wait: Duration,
}

/// The windows the config sets explicitly (milliseconds); `None` follows the block time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExplicitWindows {
    /// `health.interval_ms`: every margin covers it.
    probe_interval_ms: u64,
    chain_liveness_window_ms: Option<u64>,
    unsafe_stall_ms: Option<u64>,
    catch_up_timeout_ms: Option<u64>,
    convergence_wait_ms: Option<u64>,
}

impl From<&Config> for ExplicitWindows {
    fn from(config: &Config) -> Self {
        Self {
            probe_interval_ms: config.health.interval_ms,
            chain_liveness_window_ms: config.failover.chain_liveness_window_ms,
            unsafe_stall_ms: config.health.unsafe_stall_ms,
            catch_up_timeout_ms: config.failover.catch_up_timeout_ms,
            convergence_wait_ms: config.failover.convergence_wait_ms,
        }
    }
}

/// One window key: how to read it, its default and its floor for a block time and a probe
/// interval (milliseconds).
struct Rule {
    key: &'static str,
    explicit: fn(&ExplicitWindows) -> Option<u64>,
    default_ms: fn(u64, u64) -> u64,
    minimum_ms: fn(u64, u64) -> u64,
    why: &'static str,
}

const RULES: [Rule; 4] = [
    Rule {
        key: "failover.chain_liveness_window_ms",
        explicit: |w| w.chain_liveness_window_ms,
        default_ms: |bt, p| bt + (bt / 2).max(500).max(3 * p),
        minimum_ms: |bt, p| bt + (bt / 4).max(2 * p + 50),
        why: "a leader that is alive but cut off from the coordinator would look dead between two blocks, and a second sequencer would be started",
    },
    Rule {
        key: "health.unsafe_stall_ms",
        explicit: |w| w.unsafe_stall_ms,
        default_ms: |bt, p| 2 * bt + (bt / 2).max(500).max(3 * p),
        minimum_ms: |bt, p| bt + (bt / 2).max(2 * p + 200),
        why: "one block a little late would count as a stall and cause a needless fail-over",
    },
    Rule {
        key: "failover.catch_up_timeout_ms",
        explicit: |w| w.catch_up_timeout_ms,
        default_ms: |bt, _| (3 * bt).max(3000),
        minimum_ms: |bt, _| bt,
        why: "a candidate one block behind the stopped leader needs about one block time to receive that block",
    },
    Rule {
        key: "failover.convergence_wait_ms",
        explicit: |w| w.convergence_wait_ms,
        default_ms: |bt, _| (2 * bt).max(2000),
        minimum_ms: |_, _| 0,
        why: "",
    },
];

/// An explicit window too short for the chain's block time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowTooShort {
    /// The key, e.g. `failover.chain_liveness_window_ms`.
    pub key: &'static str,
    /// The configured value.
    pub value_ms: u64,
    /// The block time it was checked against.
    pub block_time_ms: u64,
    /// The shortest value accepted at that block time.
    pub minimum_ms: u64,
    /// The value to use: the default for that block time.
    pub proposed_ms: u64,
    /// What goes wrong with a shorter value.
    pub why: &'static str,
}

impl fmt::Display for WindowTooShort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} = {} ms is too short for a {} ms block time (at least {} ms): {}; use {} (or leave it out: \
             that is its default at this block time)",
            self.key, self.value_ms, self.block_time_ms, self.minimum_ms, self.why, self.proposed_ms
        )
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl Windows {
    /// The defaults for a chain of `block_time` probed every `probe_interval`.
    pub fn defaults_for(block_time: Duration, probe_interval: Duration) -> Self {
        let (bt, p) = (millis(block_time), millis(probe_interval));
        let [liveness, stall, catch_up, convergence] =
            RULES.map(|rule| Duration::from_millis((rule.default_ms)(bt, p)));
        Self {
            chain_liveness_window: liveness,
            unsafe_stall: stall,
            catch_up_timeout: catch_up,
            convergence_wait: convergence,
        }
    }

    /// The windows of `config` for a chain of `block_time`: explicit values where given, the
    /// defaults elsewhere; every explicit value too short for the block time is an error.
    pub fn resolve(explicit: &ExplicitWindows, block_time: Duration) -> Result<Self, Vec<WindowTooShort>> {
        let (bt, p) = (millis(block_time), explicit.probe_interval_ms);
        let mut values = [Duration::ZERO; 4];
        let mut problems = Vec::new();
        for (value, rule) in values.iter_mut().zip(&RULES) {
            let proposed_ms = (rule.default_ms)(bt, p);
            let chosen = match (rule.explicit)(explicit) {
                Some(value_ms) => {
                    let minimum_ms = (rule.minimum_ms)(bt, p);
                    if value_ms < minimum_ms {
                        problems.push(WindowTooShort {
                            key: rule.key,
                            value_ms,
                            block_time_ms: bt,
                            minimum_ms,
                            proposed_ms,
                            why: rule.why,
                        });
                    }
                    value_ms
                }
                None => proposed_ms,
            };
            *value = Duration::from_millis(chosen);
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let [liveness, stall, catch_up, convergence] = values;
        Ok(Self {
            chain_liveness_window: liveness,
            unsafe_stall: stall,
            catch_up_timeout: catch_up,
            convergence_wait: convergence,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(value: u64) -> Duration {
        Duration::from_millis(value)
    }

    /// The default probe interval.
    const P: Duration = Duration::from_millis(100);

    #[test]
    fn defaults_scale_with_the_block_time_and_keep_the_1_s_values() {
        let at = |bt| {
            let w = Windows::defaults_for(ms(bt), P);
            [w.chain_liveness_window, w.unsafe_stall, w.catch_up_timeout, w.convergence_wait].map(millis)
        };
        assert_eq!(at(1000), [1500, 2500, 3000, 2000]);
        assert_eq!(at(2000), [3000, 5000, 6000, 4000]);
        assert_eq!(at(250), [750, 1000, 3000, 2000]);
        assert_eq!(at(100), [600, 700, 3000, 2000]);
        assert_eq!(at(12_000), [18_000, 30_000, 36_000, 24_000]);
    }

    #[test]
    fn every_default_passes_its_own_check_at_every_block_time() {
        for bt in [50, 100, 250, 500, 1000, 2000, 5000, 12_000, 60_000] {
            let defaults = Windows::defaults_for(ms(bt), P);
            let mut config = Config::default();
            config.failover.chain_liveness_window_ms = Some(millis(defaults.chain_liveness_window));
            config.health.unsafe_stall_ms = Some(millis(defaults.unsafe_stall));
            config.failover.catch_up_timeout_ms = Some(millis(defaults.catch_up_timeout));
            config.failover.convergence_wait_ms = Some(millis(defaults.convergence_wait));
            assert_eq!(Windows::resolve(&(&config).into(), ms(bt)), Ok(defaults), "{bt} ms");
        }
    }

    #[test]
    fn the_1_s_defaults_are_refused_at_2_s_with_the_value_to_use() {
        let mut config = Config::default();
        config.failover.chain_liveness_window_ms = Some(1500);
        config.health.unsafe_stall_ms = Some(2500);
        let problems = Windows::resolve(&(&config).into(), ms(2000)).expect_err("too short");
        let keys: Vec<_> = problems.iter().map(|p| (p.key, p.minimum_ms, p.proposed_ms)).collect();
        assert_eq!(
            keys,
            [("failover.chain_liveness_window_ms", 2500, 3000), ("health.unsafe_stall_ms", 3000, 5000)]
        );
        let text = problems[0].to_string();
        assert!(text.contains("1500 ms is too short for a 2000 ms block time (at least 2500 ms)"), "{text}");
        assert!(text.contains("use 3000"), "{text}");
    }

    #[test]
    fn slower_probes_widen_defaults_and_floors() {
        let w = Windows::defaults_for(ms(1000), ms(1000));
        assert_eq!(millis(w.chain_liveness_window), 4000, "3 probe intervals past the block");
        let mut config = Config::default();
        config.health.interval_ms = 1000;
        config.failover.chain_liveness_window_ms = Some(3000);
        let problems = Windows::resolve(&(&config).into(), ms(1000)).expect_err("inside two probes");
        assert_eq!(problems[0].minimum_ms, 3050);
        // Fast probes on a fast chain allow short windows (the test settings: 20 ms probes, 100 ms blocks).
        config.health.interval_ms = 20;
        config.failover.chain_liveness_window_ms = Some(300);
        config.health.unsafe_stall_ms = Some(400);
        config.failover.catch_up_timeout_ms = Some(1000);
        config.failover.convergence_wait_ms = Some(300);
        assert!(Windows::resolve(&(&config).into(), ms(100)).is_ok());
    }

    #[test]
    fn a_window_just_above_the_block_time_is_refused() {
        let mut config = Config::default();
        config.failover.chain_liveness_window_ms = Some(2001);
        assert!(Windows::resolve(&(&config).into(), ms(2000)).is_err());
        config.failover.chain_liveness_window_ms = Some(2500);
        assert!(Windows::resolve(&(&config).into(), ms(2000)).is_ok());
    }
}
