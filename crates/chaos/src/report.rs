//! What one seed did ([`SeedReport`]), and the [`Record`] the runner and the coordinator modes
//! write it through while the seed runs.

use crate::{options::RunOptions, schedule::RunShape};
use op_sim::api::LedgerEntry;
use opc_wire::coordinator::CoordinatorEvent;
use serde::Serialize;
use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
    time::Duration,
};
use tokio::time::Instant;

/// What one seed did.
#[derive(Debug, Clone, Serialize)]
pub struct SeedReport {
    /// The seed.
    pub seed: u64,
    /// Its chain shape.
    pub shape: RunShape,
    /// Faults applied, by kind (`partition` and `coordinator_restart` included).
    pub faults: BTreeMap<String, u64>,
    /// Leader starts seen in the ground truth after the first election.
    pub leader_changes: u64,
    /// Blocks sealed.
    pub blocks: u64,
    /// Longest gap between consecutive blocks.
    pub longest_gap_ms: u64,
    /// Missed block slots.
    pub missed_slots: u64,
    /// Conflicts and overlaps explained by injected behind-the-back starts.
    pub injected_overlaps: u64,
    /// Invariant violations.
    pub violations: Vec<String>,
    /// What happened when, for a violation report.
    pub timeline: Vec<String>,
    /// Coordinator replicas the seed ran with.
    pub replicas: usize,
    /// Raft terms in which a replica called `admin_startSequencer` / `admin_stopSequencer`
    /// (replica mode).
    pub acting_terms: u64,
    /// Commits the conductor refused or that never reached it: blocks dropped before anyone saw
    /// them (conductor mode).
    pub refused_commits: u64,
    /// Blocks a node first got by the coordinator's replay (`admin_postUnsafePayload`) rather than
    /// over p2p (conductor mode).
    pub replayed_blocks: u64,
}

impl SeedReport {
    /// An empty report of `seed` with its shape.
    pub(crate) fn new(seed: u64, shape: RunShape, replicas: usize) -> Self {
        Self {
            seed,
            shape,
            faults: BTreeMap::new(),
            leader_changes: 0,
            blocks: 0,
            longest_gap_ms: 0,
            missed_slots: 0,
            injected_overlaps: 0,
            violations: Vec::new(),
            timeline: Vec::new(),
            replicas,
            acting_terms: 0,
            refused_commits: 0,
            replayed_blocks: 0,
        }
    }

    /// The report of a seed that did not finish within `limit`.
    pub fn hung(seed: u64, options: &RunOptions, limit: Duration) -> Self {
        let (shape, _) = options.schedule(seed);
        let mut report = Self::new(seed, shape, options.replicas);
        report
            .violations
            .push(format!("the run did not finish within {} s: something hung", limit.as_secs()));
        report
    }
}

/// The report of a running seed, its timeline, and the violations already reported.
#[derive(Debug)]
pub(crate) struct Record {
    /// The report being filled in.
    pub(crate) report: SeedReport,
    /// What happened when; it goes into the report only when the seed violated.
    pub(crate) timeline: Vec<String>,
    /// Violations (or keys of checks) reported once: the same observation every tick is one
    /// problem.
    seen: BTreeSet<String>,
}

impl Record {
    pub(crate) fn new(report: SeedReport) -> Self {
        Self { report, timeline: Vec::new(), seen: BTreeSet::new() }
    }

    /// Records a violation once, with the run time it was seen at.
    pub(crate) fn violation(&mut self, at_ms: Option<u64>, violation: String) {
        if self.seen.insert(violation.clone()) {
            self.push_violation(at_ms, violation);
        }
    }

    /// Records the first violation of the check `key` in a run; later ones are dropped.
    pub(crate) fn violation_once(&mut self, key: &str, at_ms: Option<u64>, violation: String) {
        if self.seen.insert(key.to_owned()) {
            self.push_violation(at_ms, violation);
        }
    }

    /// Records a violation found at the end of the run, unless the run already reported it.
    pub(crate) fn final_violation(&mut self, violation: String) {
        if !self.seen.contains(&violation) {
            self.report.violations.push(violation);
        }
    }

    fn push_violation(&mut self, at_ms: Option<u64>, violation: String) {
        self.report.violations.push(match at_ms {
            Some(at_ms) => format!("at {at_ms} ms: {violation}"),
            None => violation,
        });
    }

    /// Counts an applied fault under `name`.
    pub(crate) fn count(&mut self, name: &str) {
        *self.report.faults.entry(name.to_owned()).or_default() += 1;
    }

    /// A timeline line at `at_ms` into the run.
    pub(crate) fn line(&mut self, at_ms: u64, text: &str) {
        self.timeline.push(format!("{at_ms:>6} ms  {text}"));
    }

    /// The report, with the timeline, the ledger and the coordinators' `events` appended when the
    /// seed violated (and the whole ledger written to `ledger_dir` if given).
    pub(crate) fn finish(
        mut self,
        entries: &[LedgerEntry],
        events: Vec<String>,
        ledger_dir: Option<&Path>,
    ) -> SeedReport {
        if self.report.violations.is_empty() {
            return self.report;
        }
        let mut timeline = std::mem::take(&mut self.timeline);
        if let Some(dir) = ledger_dir {
            let lines: Vec<String> =
                entries.iter().filter_map(|entry| serde_json::to_string(entry).ok()).collect();
            let path = dir.join(format!("seed-{}.jsonl", self.report.seed));
            // The directory is created here, when a seed first needs it, not checked at start-up.
            let written =
                std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, lines.join("\n") + "\n"));
            timeline.push(match written {
                Ok(()) => format!("whole ledger written to {}", path.display()),
                Err(error) => format!("could not write the ledger to {}: {error}", path.display()),
            });
        }
        for entry in entries.iter().filter(|entry| !matches!(entry, LedgerEntry::Block { .. })) {
            timeline.push(format!("ledger: {}", serde_json::to_string(entry).unwrap_or_default()));
        }
        timeline.extend(events);
        self.report.timeline = timeline;
        self.report
    }
}

/// An event of a coordinator's timeline as the report shows it: `KIND NODE DETAIL`. The one place
/// the chaos runner reads an event's kind.
pub(crate) fn event_text(event: &CoordinatorEvent) -> String {
    format!("{} {} {}", event.kind, event.node.as_deref().unwrap_or("-"), event.detail)
}

/// " (took N ms)" when a runner step took long enough to shift the schedule, else nothing.
pub(crate) fn took(since: Instant) -> String {
    let elapsed = since.elapsed();
    if elapsed >= Duration::from_millis(500) {
        format!(" (took {} ms)", elapsed.as_millis())
    } else {
        String::new()
    }
}
