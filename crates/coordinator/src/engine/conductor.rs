//! Conductor mode: the leader commits every block to the coordinator before publishing it, so
//! the committed state, not a guess from probes, says who may publish (decision table rows
//! "steady, conductor mode" and "catching up / leaderless, conductor mode").
//!
//! | phase | condition | actions |
//! |---|---|---|
//! | steady | leader healthy (or only stalled by probes) and committed within `commit_stall` (or started / adopted since) | nothing: the commit stream, not the probed head, says whether it produces; a commit of the leader's that arrived and is still being made durable counts as one |
//! | steady | leader unreachable by probes, but it committed within `alive_window` | nothing: alive, only cut off from our probes; say so |
//! | steady | it committed since its start, but not within `alive_window`, and op-node has been silent for `silence` (a whole probe deadline) | as unhealthy: its block is overdue and it does not answer (a hang), so the probe thresholds are not waited for |
//! | steady | leader quiet past `alive_window`, its probed head a kept payload behind the committed head | `Replay(leader, from its head)`: it lost a block it committed (op-node gave up on the answer, dropped the block, and builds at that height again, refused as a wrong parent every time); no fail-over, and not held while the coordinator is late (a replay decides nothing) |
//! | steady | leader unhealthy by timing, or unreachable (not by a refused connection) or stalled with no commit within the window, while the coordinator is late | nothing (see `timing`): the missing commit may be its own slowness; a leader whose op-node refuses the connection has crashed and is deposed as on time |
//! | steady | leader unhealthy, or healthy but no commit for `commit_stall`, the fence's base known | persist the deposition: leader none, fenced += leader (stopped when it answers), stopped hash = the base, catching up. From this write on its commits are refused: it cannot publish, so no liveness window is waited |
//! | steady | the same, the base unknown (nothing committed since start-up) | as without a conductor |
//! | catching up, leaderless | the fence is frozen (nobody holds it) at a base other than the stopped hash | persist the base as the stopped hash (a commit landed between the decision and its write) |
//! | catching up, leaderless | nobody eligible is at the stopped hash; the best eligible candidate's head is a kept payload | `Replay(candidate, from its head)`: the committed payloads it lacks, oldest first; then the usual start once probes see it at the stopped hash |
//! | discovering, leaderless without a stopped hash | an election would start a node at its own head while the base is known | persist leaderless with the base as the stopped hash: candidates are replayed there instead |
//!
//! A fenced node that answers does not hold starts back in conductor mode: it cannot commit, so
//! it cannot publish, whether or not its courtesy stop has returned yet.

use super::{Action, Event, EventKind, FailoverEngine, View};
use crate::{health::Reason, state::Phase};
use alloy_primitives::B256;
use std::time::Duration;
use tokio::time::Instant;

/// The conductor-mode timings of a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConductorTiming {
    /// A leader that committed within this is alive, whatever the probes say.
    pub alive_window: Duration,
    /// A leader that answers probes but committed nothing for this long is stalled.
    pub commit_stall: Duration,
    /// A leader past its `alive_window` (counted from a commit since it was started) whose
    /// op-node has not answered for this long is taken as failed at once (a hang), without
    /// waiting for its probes to time out `failure_threshold` times.
    pub silence: Duration,
    /// A leader whose last commit is younger is probed calmly (its commits prove it alive);
    /// older, its next commit is due and it is probed every interval, so that its reading is
    /// fresh when `alive_window` ends.
    pub commit_due: Duration,
}

impl FailoverEngine {
    /// Steady in conductor mode: true when it decided (the caller does nothing more); false when
    /// the chain is not conducted or its base is unknown, so the decision is the usual one.
    pub(super) fn watch_conducted_leader(
        &mut self,
        view: &View<'_>,
        leader: &str,
        out: &mut Vec<Action>,
    ) -> bool {
        let (Some(timing), Some(fence)) = (self.settings.conductor, view.conductor) else { return false };
        let Some(node) = view.node(leader) else { return true };
        let since = |at: Option<Instant>| at.map(|at| view.now.saturating_duration_since(at));
        // The last sign of life: a commit, one still being made durable (its block was built and
        // sent: a coordinator slow to take it does not make the leader quiet), or the start (or
        // adoption) of this leader.
        let arrived = fence.in_flight.get(leader).map(|in_flight| in_flight.newest);
        let quiet_for = [
            since(fence.last_commit_at),
            since(arrived),
            since(self.started_leader_at),
            since(self.leader_since),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or_default();
        let stalled = quiet_for > timing.commit_stall;
        // Its block is overdue and op-node has gone silent: a hang, whatever the probes in flight
        // will say once they time out.
        // Only once it committed since it was started: its first block may wait for a slot.
        let began = [self.started_leader_at, self.leader_since].into_iter().flatten().max();
        let committed_since_start = match (fence.last_commit_at, began) {
            (Some(commit), Some(began)) => commit >= began,
            (commit, None) => commit.is_some(),
            (None, Some(_)) => false,
        };
        let silent_for = since(node.last_answer_at).unwrap_or(quiet_for);
        let gone_quiet =
            committed_since_start && quiet_for > timing.alive_window && silent_for > timing.silence;
        // Whether the leader produces is the commit stream's to say: a head that stood still for
        // `unsafe_stall` (a probe verdict) is judged by `commit_stall` instead, which allows for
        // op-node's back-off after a failed commit.
        let probes_fine =
            !gone_quiet && (node.healthy || matches!(node.reason, Reason::Ok | Reason::Stalled));
        // Its head as op-node reported it after the last commit: a reading from before it would
        // show an older head of a leader that is fine.
        let read_after_commit = match (node.last_answer_at, fence.last_commit_at) {
            (Some(answered), Some(committed)) => answered > committed,
            _ => false,
        };
        if quiet_for > timing.alive_window
            && read_after_commit
            && let Some(head) = node.unsafe_head.filter(|head| Some(head.hash) != fence.base)
            && fence.can_replay_from(head.hash)
        {
            if self.replaying.is_none() && self.replay_retry_at.is_none_or(|at| view.now >= at) {
                self.replaying = Some(leader.to_owned());
                out.push(Action::Replay { node: leader.to_owned(), from: head.hash });
                let detail = format!(
                    "leader is at {} behind the committed head and commits nothing: it lost a block it \
                     committed; replaying the committed payloads to it",
                    head.number
                );
                Self::emit(out, Event::warn(EventKind::LeaderBehindCommits, Some(leader), detail));
                return true;
            }
            if self.replaying.as_deref() == Some(leader) {
                return true;
            }
        }
        if probes_fine && !stalled {
            self.failover_started_at = None;
            self.holding_on_timing = false;
            return true;
        }
        if !node.healthy && !node.reachable && quiet_for <= timing.alive_window {
            let detail = format!(
                "leader does not answer our probes ({}: {}) but committed a block {} ms ago: it is alive; not \
                 failing over",
                node.reason.code(),
                node.detail,
                quiet_for.as_millis()
            );
            self.announce(out, view.now, EventKind::LeaderCutOff, Some(leader), detail);
            return true;
        }
        if !probes_fine && self.hold_on_timing(view, leader, node, out) {
            return true;
        }
        // A commit that did not come within a window is timing evidence too (an unreachable
        // leader's, or a stall's): not believed while the coordinator itself runs late. Unless
        // the leader's op-node refused the connection: its process is gone, it commits nothing
        // whatever our lateness, and a crash is handled while the coordinator is late.
        let crashed = !node.reachable && node.reason == Reason::OpNodeUnreachable;
        if (stalled || !node.reachable || gone_quiet)
            && !crashed
            && let Some(why) = self.timing_unreliable(view)
        {
            let detail = format!("leader committed nothing for {} ms, but {why}", quiet_for.as_millis());
            self.announce(out, view.now, EventKind::DecisionHeld, Some(leader), detail);
            return true;
        }
        let Some(base) = fence.base else { return false };
        let why = if probes_fine {
            format!("committed no block for {} ms (conductor.commit_stall_blocks)", quiet_for.as_millis())
        } else if gone_quiet && node.healthy {
            format!(
                "committed no block for {} ms and op-node has not answered for {} ms",
                quiet_for.as_millis(),
                silent_for.as_millis()
            )
        } else {
            format!("unhealthy ({}: {})", node.reason.code(), node.detail)
        };
        self.depose(view, leader, base, &why, out);
        true
    }

    /// Writes the deposition: from this write on the fence refuses `leader`'s commits.
    fn depose(&mut self, view: &View<'_>, leader: &str, base: B256, why: &str, out: &mut Vec<Action>) {
        let detected_at = *self.failover_started_at.get_or_insert(view.now);
        self.persist(out, view, |state| {
            state.fenced.insert(leader.to_owned());
            state.leader = None;
            state.stopped_hash = Some(base);
            state.stopped_hash_estimated = false;
            state.phase = Phase::CatchingUp { from: leader.to_owned(), target: None };
        });
        self.step_started_at = Some(view.now);
        self.catch_up_deadline = Some(view.now + self.settings.catch_up_timeout);
        let detail = format!(
            "leader {why}: deposed. Its commits are refused from now on, so it cannot publish another block; \
             failing over from the committed head {base} (it is stopped as soon as it answers)"
        );
        let event = Event::warn(EventKind::LeaderDeposed, Some(leader), detail);
        Self::emit(out, event.took(Some(view.now.saturating_duration_since(detected_at))));
    }

    /// True in conductor mode: the fence, not a stop, keeps a deposed node from publishing.
    pub(super) fn conducted(&self, view: &View<'_>) -> bool {
        self.settings.conductor.is_some() && view.conductor.is_some()
    }

    /// Catching up or leaderless in conductor mode: align the stopped hash with the frozen fence,
    /// then replay the committed payloads the best candidate lacks. True when it acted.
    pub(super) fn conducted_catch_up(
        &mut self,
        view: &View<'_>,
        from: Option<&str>,
        out: &mut Vec<Action>,
    ) -> bool {
        let Some(fence) = view.conductor.filter(|_| self.settings.conductor.is_some()) else { return false };
        let Some(hash) = view.state.stopped_hash else { return false };
        if fence.holder.is_none()
            && let Some(base) = fence.base.filter(|base| *base != hash)
        {
            self.persist(out, view, |state| state.stopped_hash = Some(base));
            let detail =
                format!("a commit landed before the deposition was written: the committed head is {base}");
            Self::emit(out, Event::info(EventKind::StoppedHashFromCommits, None, detail));
            return true;
        }
        if self.replaying.is_some() {
            return false;
        }
        let candidates = view.by_priority();
        if candidates.iter().any(|member| view.head_hash(&member.name) == Some(hash)) {
            return false;
        }
        let replayable = candidates
            .iter()
            .filter(|member| Some(member.name.as_str()) != from)
            .filter_map(|member| Some((member, view.node(&member.name)?.unsafe_head?)))
            .filter(|(_, head)| fence.can_replay_from(head.hash))
            .max_by_key(|(member, _)| view.advancement(member));
        let Some((member, head)) = replayable else { return false };
        if self.replay_retry_at.is_some_and(|at| view.now < at) {
            return false;
        }
        self.replaying = Some(member.name.clone());
        out.push(Action::Replay { node: member.name.clone(), from: head.hash });
        true
    }

    /// A replay finished: say how it went; a failure is retried after a back-off.
    pub(super) fn on_replayed(
        &mut self,
        view: &View<'_>,
        node: String,
        result: Result<usize, String>,
        out: &mut Vec<Action>,
    ) {
        self.replaying = None;
        match result {
            Ok(count) => {
                let detail =
                    format!("posted {count} committed payloads; waiting for it to report the committed head");
                Self::emit(out, Event::info(EventKind::PayloadsReplayed, Some(&node), detail));
            }
            Err(why) => {
                self.replay_retry_at = Some(view.now + super::RETRY_BACKOFF);
                let detail = format!("replaying the committed payloads failed: {why}; retrying");
                Self::emit(out, Event::warn(EventKind::ReplayFailed, Some(&node), detail));
            }
        }
    }

    /// An election at a node's own head would fork from a committed block the node lacks: with a
    /// known base, go leaderless at it instead (candidates are replayed there). True when it did.
    pub(super) fn elect_at_committed_head(
        &mut self,
        view: &View<'_>,
        why: &str,
        out: &mut Vec<Action>,
    ) -> bool {
        let Some(base) =
            view.conductor.filter(|_| self.settings.conductor.is_some()).and_then(|fence| fence.base)
        else {
            return false;
        };
        self.persist(out, view, |state| {
            state.leader = None;
            state.stopped_hash = Some(base);
            state.stopped_hash_estimated = false;
            state.phase = Phase::Leaderless;
        });
        let detail = format!(
            "{why}: the chain continues from the committed head {base}; the best candidate is brought there \
             (replay) and started"
        );
        Self::emit(out, Event::info(EventKind::Electing, None, detail));
        true
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::fixtures::*;

    fn refused() -> CallError {
        CallError::Unreachable("connection refused".into())
    }

    /// `from` deposed at the committed block `head`, fenced until it answers a stop.
    fn deposed(from: &str, head: u64) -> ChainState {
        ChainState { fenced: fenced(&[from]), ..catching_up(from, head) }
    }

    /// a leads, committed block 20 at t = 0; everyone at 20.
    fn committing_at_20(conducted: bool) -> Chain {
        let chain = Chain::new(ABC, steady("a"));
        let mut chain = if conducted { chain.conducted(20, &[19, 20]) } else { chain };
        chain.at(0).head("a", 20).head("b", 20).head("c", 20);
        if conducted {
            chain.committed(20);
        }
        assert_eq!(chain.tick(), []);
        chain
    }

    #[test]
    fn a_crashed_leader_that_stopped_committing_is_deposed_without_a_liveness_window() {
        let mut chain = committing_at_20(true);
        chain.at(1300).fail("a", refused()).head("b", 20).head("c", 20);
        assert_eq!(chain.tick(), [persist(deposed("a", 20)), event(EventKind::LeaderDeposed, "a")]);
        assert_eq!(
            chain.tick(),
            [
                persist(ChainState { phase: starting("b", Some("a")), ..deposed("a", 20) }),
                event(EventKind::CaughtUp, "b"),
                start("b", 20),
            ]
        );
        // Without a conductor the same observations wait out the liveness window.
        let mut plain = committing_at_20(false);
        plain.at(1300).fail("a", refused()).head("b", 20).head("c", 20);
        assert!(!plain.tick().iter().any(|step| matches!(step, Step::Persist(_))));
    }

    #[test]
    fn a_crashed_leader_that_stopped_committing_is_deposed_while_the_coordinator_is_late() {
        let mut chain = committing_at_20(true);
        chain.late(std::time::Duration::from_millis(400));
        chain.at(1300).fail("a", refused()).head("b", 20).head("c", 20);
        assert_eq!(chain.tick(), [persist(deposed("a", 20)), event(EventKind::LeaderDeposed, "a")]);
    }

    #[test]
    fn a_leader_whose_commit_arrived_and_is_still_being_made_durable_is_not_quiet() {
        // a sent its next block at 1000; a busy coordinator has not made it durable by 1300, and
        // a's op-node has not answered the probes since (they wait behind the same backlog).
        let mut chain = committing_at_20(true);
        let arrived = chain.t0 + std::time::Duration::from_millis(1000);
        let in_flight = crate::conductor::InFlight { count: 1, newest: arrived };
        chain.fence.as_mut().expect("conducted").in_flight.insert("a".into(), in_flight);
        chain.at(1300).head("b", 20).head("c", 20);
        assert_eq!(chain.tick(), [], "its block is on its way");
        // Answered (or given up on) and nothing committed: quiet since 0 again.
        chain.fence.as_mut().expect("conducted").in_flight.clear();
        chain.at(1310).head("b", 20).head("c", 20);
        assert_eq!(chain.tick(), [persist(deposed("a", 20)), event(EventKind::LeaderDeposed, "a")]);
    }

    #[test]
    fn a_hung_leader_past_its_block_is_deposed_before_its_probes_time_out() {
        let mut chain = committing_at_20(true);
        // a answered at 0 and then froze: no probe has failed yet, but its block is overdue.
        chain.at(1200).head("b", 20).head("c", 20);
        assert_eq!(chain.tick(), [], "within the alive window");
        chain.at(1300).head("b", 20).head("c", 20);
        assert_eq!(chain.tick(), [persist(deposed("a", 20)), event(EventKind::LeaderDeposed, "a")]);
        // One that still answers is judged by the commit stall instead.
        let mut answering = committing_at_20(true);
        answering.at(1300).head("a", 20).head("b", 20).head("c", 20);
        assert_eq!(answering.tick(), []);
        // A leader that has not committed since it was started may wait for its first slot.
        let mut fresh = Chain::new(ABC, steady("a")).conducted(20, &[19, 20]);
        fresh.at(0).head("a", 20).head("b", 20).head("c", 20);
        assert_eq!(fresh.tick(), []);
        fresh.at(1300).head("b", 20).head("c", 20);
        assert_eq!(fresh.tick(), []);
    }

    #[test]
    fn a_leader_our_probes_cannot_reach_but_that_commits_on_schedule_is_left_alone() {
        let mut chain = committing_at_20(true);
        chain.at(1000).fail("a", refused()).committed(21);
        assert_eq!(chain.tick(), [event(EventKind::LeaderCutOff, "a")]);
        chain.at(2000).fail("a", refused());
        assert_eq!(chain.tick(), [], "said once per 10 s");
    }

    #[test]
    fn a_leader_that_answers_but_commits_nothing_is_deposed_as_stalled() {
        let mut chain = committing_at_20(true);
        chain.at(1900).head("a", 20).head("b", 20).head("c", 20);
        assert_eq!(chain.tick(), []);
        chain.at(2100).head("a", 20).head("b", 20).head("c", 20);
        assert_eq!(chain.tick(), [persist(deposed("a", 20)), event(EventKind::LeaderDeposed, "a")]);
    }

    #[test]
    fn a_head_that_stood_still_is_judged_by_the_commit_stream() {
        // Quiet for 1.5 s (op-node backs off a second after a failed commit): probes say
        // "stalled", the commit stall (2 s) has not passed.
        let mut chain = Chain::new(ABC, steady("a")).conducted(20, &[19, 20]);
        let settings = HealthSettings { unsafe_stall: Duration::from_millis(1000), ..health_settings() };
        chain.health = ChainHealth::new(["a", "b", "c"].map(str::to_owned), settings);
        chain.at(0).head("a", 20).head("b", 20).head("c", 20).committed(20);
        assert_eq!(chain.tick(), []);
        chain.at(1500).head("a", 20).head("b", 20).head("c", 20);
        let health = chain.health.nodes.get("a").expect("a");
        assert_eq!(health.reason, crate::health::Reason::Stalled, "{health:?}");
        assert_eq!(chain.tick(), []);
        chain.at(2100).head("a", 20).head("b", 20).head("c", 20);
        assert_eq!(chain.tick(), [persist(deposed("a", 20)), event(EventKind::LeaderDeposed, "a")]);
    }

    #[test]
    fn a_leader_deposed_while_the_coordinator_is_late_is_kept_when_the_evidence_is_timing() {
        let mut chain = committing_at_20(true);
        chain.at(2100).late(Duration::from_millis(400)).head("a", 20).head("b", 20).head("c", 20);
        assert_eq!(chain.tick(), [event(EventKind::DecisionHeld, "a")]);
    }

    #[test]
    fn a_leader_timing_out_whose_commit_is_late_is_kept_while_the_coordinator_is_late() {
        // The missing commit and the timeouts are timing evidence: the coordinator may have read
        // both late itself. (A refused connection is not: see the crash test above.)
        let mut chain = committing_at_20(true);
        chain.at(1300).late(Duration::from_millis(400)).fail("a", timeout()).head("b", 20);
        assert_eq!(chain.tick(), [event(EventKind::DecisionHeld, "a")]);
        chain.late(Duration::ZERO).at(1400).fail("a", timeout()).head("b", 20);
        assert_eq!(chain.tick(), [persist(deposed("a", 20)), event(EventKind::LeaderDeposed, "a")]);
    }

    #[test]
    fn a_leader_that_lost_a_block_it_committed_is_handed_the_committed_payloads_not_deposed() {
        let mut chain = committing_at_20(true);
        // a's commit of 21 was made durable, but its answer came too late: a dropped block 21
        // and sits at 20, every rebuilt 21 refused as a wrong parent.
        chain.at(500).committed(21).head("a", 20).head("b", 21).head("c", 21);
        assert_eq!(chain.tick(), [], "within the alive window");
        chain.at(1800).head("a", 20).head("b", 21).head("c", 21);
        assert_eq!(chain.tick(), [replay("a", 20), event(EventKind::LeaderBehindCommits, "a")]);
        assert_eq!(chain.tick(), [], "one replay at a time, and no deposition meanwhile");
        let replayed = chain.handle(Input::Replayed { node: "a".into(), result: Ok(1) });
        assert_eq!(replayed, [event(EventKind::PayloadsReplayed, "a")]);
        chain.at(1900).committed(22).head("a", 22).head("b", 22).head("c", 22);
        assert_eq!(chain.tick(), []);
        // A head read before the last commit is no evidence.
        let mut stale = committing_at_20(true);
        stale.at(400).head("a", 20).head("b", 20).head("c", 20);
        stale.at(500).committed(21);
        stale.at(1800).fail("a", timeout()).head("b", 21).head("c", 21);
        assert!(!stale.tick().iter().any(|step| matches!(step, Step::Replay(..))));
        // Also while the coordinator runs late: a replay decides nothing.
        let mut late = committing_at_20(true);
        late.at(500).committed(21);
        late.at(1800).late(Duration::from_millis(400)).head("a", 20).head("b", 21).head("c", 21);
        assert_eq!(late.tick(), [replay("a", 20), event(EventKind::LeaderBehindCommits, "a")]);
    }

    #[test]
    fn a_candidate_behind_the_committed_head_is_replayed_to_it_then_started() {
        let mut chain = Chain::new(ABC, deposed("a", 22)).conducted(22, &[20, 21, 22]);
        chain.at(0).fail("a", refused()).head("b", 20).head("c", 18);
        assert_eq!(chain.tick(), [replay("b", 20)]);
        assert_eq!(chain.tick(), [], "one replay at a time");
        let replayed = chain.handle(Input::Replayed { node: "b".into(), result: Ok(2) });
        assert_eq!(replayed, [event(EventKind::PayloadsReplayed, "b")]);
        chain.at(50).head("b", 22);
        assert_eq!(
            chain.tick(),
            [
                persist(ChainState { phase: starting("b", Some("a")), ..deposed("a", 22) }),
                event(EventKind::CaughtUp, "b"),
                start("b", 22),
            ]
        );
    }

    #[test]
    fn a_failed_replay_is_said_and_retried_after_a_back_off() {
        let mut chain = Chain::new(ABC, deposed("a", 22)).conducted(22, &[20, 21, 22]);
        chain.at(0).fail("a", refused()).head("b", 20).head("c", 18);
        assert_eq!(chain.tick(), [replay("b", 20)]);
        let failed = chain.handle(Input::Replayed { node: "b".into(), result: Err("timeout".into()) });
        assert_eq!(failed, [event(EventKind::ReplayFailed, "b")]);
        chain.at(100).head("b", 20);
        assert_eq!(chain.tick(), []);
        chain.at(300).head("b", 20);
        assert_eq!(chain.tick(), [replay("b", 20)]);
    }

    #[test]
    fn a_fenced_node_that_answers_does_not_hold_the_start_back() {
        let mut chain = Chain::new(ABC, deposed("a", 22)).conducted(22, &[22]);
        chain.at(0).head("a", 22).head("b", 22).head("c", 22);
        let steps = chain.tick();
        assert!(steps.contains(&stop("a", Fence)), "{steps:?}");
        assert!(steps.contains(&start("b", 22)), "{steps:?}");
    }

    #[test]
    fn an_election_continues_from_the_committed_head_not_from_a_node_behind_it() {
        let mut chain = Chain::new(ABC, ChainState { phase: Phase::Leaderless, ..ChainState::default() })
            .conducted(22, &[20, 21, 22]);
        chain.at(0).head("a", 20).head("b", 20).head("c", 19);
        let leaderless_at_22 =
            ChainState { phase: Phase::Leaderless, stopped_hash: Some(hash(22)), ..ChainState::default() };
        assert_eq!(
            chain.inspected(&[("a", false), ("b", false), ("c", false)]),
            [persist(leaderless_at_22), chain_event(EventKind::Electing)]
        );
        assert_eq!(chain.tick(), [replay("a", 20)]);
    }

    #[test]
    fn a_commit_that_landed_before_the_deposition_was_written_moves_the_stopped_hash() {
        let mut chain = Chain::new(ABC, deposed("a", 20)).conducted(21, &[20, 21]);
        chain.at(0).fail("a", refused()).head("b", 20).head("c", 20);
        assert_eq!(chain.tick(), [persist(deposed("a", 21)), chain_event(EventKind::StoppedHashFromCommits)]);
        assert_eq!(chain.tick(), [replay("b", 20)]);
    }
}
