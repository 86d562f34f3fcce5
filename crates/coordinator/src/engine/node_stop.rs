//! Outcomes of inspection and fence stops (decision table rows "stop (fence)" and "stop
//! (inspection)"), and the stop answers they leave: where a producer of the chain stopped, which
//! may be the chain's real stopped point (see "The stopped point" in the module docs).

use super::{Action, Event, EventKind, FailoverEngine, Outcome, PER_NODE_BACKOFF, StopPurpose, View};
use crate::{client::CallError, state::Phase};
use alloy_primitives::B256;
use opc_wire::op_node_errors::AdminError;

/// A hash an inspection or fence stop answered, with the block number probes saw for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct StopAnswer {
    /// The node that answered.
    node: String,
    /// Where it stopped.
    pub(super) hash: B256,
    /// The block number of `hash` (at least the node's last probed head when no probe saw it).
    number: u64,
}

impl StopAnswer {
    /// The event saying this answer replaces the stopped hash `old`.
    pub(super) fn supersedes(&self, old: B256) -> Event {
        let detail = format!(
            "{} stopped at {} (block {}), above the stopped hash {old}, which every candidate has already \
             passed: the chain's stopped point is {}; candidates must reach it",
            self.node, self.hash, self.number, self.hash
        );
        Event::warn(EventKind::StoppedHashFromInspection, Some(&self.node), detail)
    }
}

impl FailoverEngine {
    pub(super) fn on_node_stopped(
        &mut self,
        view: &View<'_>,
        node: String,
        purpose: StopPurpose,
        result: Result<B256, CallError>,
        out: &mut Vec<Action>,
    ) {
        let stopped = match &result {
            Ok(_) => true,
            Err(err) => matches!(err.admin_kind(), Some(AdminError::NotRunning | AdminError::NotEnabled)),
        };
        if stopped {
            self.node_stops.remove(&node);
        } else {
            self.node_stops.insert(node.clone(), Some(view.now + PER_NODE_BACKOFF));
        }
        if let Ok(hash) = &result {
            self.remember_stop_answer(view, &node, *hash);
        }
        match (purpose, result) {
            (StopPurpose::Fence, result) if stopped => self.fence_released(view, &node, result.ok(), out),
            (StopPurpose::Fence, Err(err)) => {
                let detail = format!("cannot stop it yet: {err}");
                Self::emit(out, Event::info(EventKind::FenceStopFailed, Some(&node), detail));
            }
            (_, result) if stopped => {
                let detail = match result {
                    Ok(hash) => format!("stopped at {hash}"),
                    Err(err) => format!("already stopped ({err})"),
                };
                Self::emit(out, Event::info(EventKind::InspectionStopped, Some(&node), detail));
                Self::outcome(out, Outcome::InspectionStopped { node: node.clone() });
                let _ = self.move_to_higher_stop_answer(view, out);
            }
            (_, result) => {
                let detail = result.err().map(|err| err.to_string()).unwrap_or_default();
                Self::emit(out, Event::warn(EventKind::InspectionStopFailed, Some(&node), detail));
            }
        }
    }

    /// A fenced node stopped: it is released. If it is the deposed leader of the fail-over in
    /// progress, where its chain ends is now known and replaces the estimate. That holds while a
    /// successor is being started too (a start a previous engine persisted at the estimate, not
    /// verified yet): the start must not go ahead below the deposed leader's blocks, so the chain
    /// goes back to catching up, at the real end.
    fn fence_released(&mut self, view: &View<'_>, node: &str, answer: Option<B256>, out: &mut Vec<Action>) {
        let deposed_here = match &view.state.phase {
            Phase::CatchingUp { from, .. } => from == node,
            Phase::Starting { from, .. } => from.as_deref() == Some(node),
            _ => false,
        };
        let ends_at = answer.filter(|hash| {
            deposed_here
                && view.state.stopped_hash_estimated
                && !hash.is_zero()
                && view.state.stopped_hash != Some(*hash)
        });
        let higher = match (ends_at, view.state.stopped_hash, &view.state.phase) {
            (None, Some(stopped), Phase::CatchingUp { from, .. }) => {
                self.higher_stop_answer(view, stopped, from)
            }
            _ => None,
        };
        self.persist(out, view, |state| {
            state.fenced.remove(node);
            if let Some(hash) = ends_at.or(higher.as_ref().map(|answer| answer.hash)) {
                state.stopped_hash = Some(hash);
                state.stopped_hash_estimated = false;
            }
            if ends_at.is_some() && matches!(state.phase, Phase::Starting { .. }) {
                state.phase = Phase::CatchingUp { from: node.to_owned(), target: None };
            }
        });
        let detail = "fenced node stopped; it may follow and be elected again";
        Self::emit(out, Event::info(EventKind::FenceReleased, Some(node), detail));
        if let (Some(answer), Some(old)) = (higher, view.state.stopped_hash) {
            Self::emit(out, answer.supersedes(old));
        }
        let Some(hash) = ends_at else { return };
        self.catch_up_deadline = Some(view.now + self.settings.catch_up_timeout);
        let estimate = view.state.stopped_hash.map_or_else(|| "none".to_owned(), |h| h.to_string());
        let detail = format!(
            "the deposed leader's stop returned {hash}: its chain ends there, not at the estimate {estimate}; \
             candidates must reach it"
        );
        Self::emit(out, Event::info(EventKind::StoppedHashFromFence, Some(node), detail));
    }

    /// Keeps the highest stop answer since a leader was last started. Its number is the block
    /// probes saw with that hash, or at least the node's last probed head (a stop answers the
    /// node's latest block); a zero hash or a node never probed says nothing.
    fn remember_stop_answer(&mut self, view: &View<'_>, node: &str, hash: B256) {
        if hash.is_zero() {
            return;
        }
        let probed = view.node(node).and_then(|health| health.unsafe_head).map(|head| head.number);
        let Some(number) = view.number_of(hash).or(probed) else { return };
        if self.stop_answer.as_ref().is_some_and(|known| known.number >= number) {
            return;
        }
        self.stop_answer = Some(StopAnswer { node: node.to_owned(), hash, number });
    }

    /// The remembered stop answer, when it lies above `stopped` (a hash probes placed at a known
    /// block) and every eligible candidate other than `from` that answers has already passed
    /// `stopped`: nobody can reach `stopped` again, and the producer stopped at the answer.
    pub(super) fn higher_stop_answer(
        &self,
        view: &View<'_>,
        stopped: B256,
        from: &str,
    ) -> Option<StopAnswer> {
        let mut answer = self.stop_answer.clone().filter(|answer| answer.hash != stopped)?;
        // A stop answers the node's newest block, which its last probe may not have seen yet:
        // remembered then at the probed head's number, it is placed once a probe sees it (single
        // seed 74: remembered at 63, seen at 64 on every candidate, against a stopped hash at 63).
        if let Some(seen) = view.number_of(answer.hash) {
            answer.number = answer.number.max(seen);
        }
        let remembered = self.stopped_number.filter(|(hash, _)| *hash == stopped).map(|(_, number)| number);
        let stopped_number = view.number_of(stopped).or(remembered)?;
        let candidates: Vec<u64> = view
            .by_priority()
            .into_iter()
            .filter(|member| member.name != from && view.answers(&member.name))
            .filter_map(|member| view.node(&member.name)?.unsafe_head.map(|head| head.number))
            .collect();
        let all_passed = !candidates.is_empty() && candidates.iter().all(|number| *number > stopped_number);
        (answer.number > stopped_number && all_passed).then_some(answer)
    }

    /// While catching up or leaderless, a stop answer that supersedes the stopped hash moves it at
    /// once (leaderless, the old leader counts among the candidates that must have passed it).
    /// Returns true when it did. Checked when a stop answers and on every catching-up and
    /// leaderless tick: the candidates that answer change over time (single seed 74 waited 8 s
    /// leaderless while the one candidate behind the stopped hash stopped answering), and so does
    /// what probes know of the answer's block.
    pub(super) fn move_to_higher_stop_answer(&mut self, view: &View<'_>, out: &mut Vec<Action>) -> bool {
        let from = match &view.state.phase {
            Phase::CatchingUp { from, .. } => from.as_str(),
            Phase::Leaderless => "",
            _ => return false,
        };
        let Some(stopped) = view.state.stopped_hash else { return false };
        let Some(answer) = self.higher_stop_answer(view, stopped, from) else { return false };
        self.persist(out, view, |state| {
            state.stopped_hash = Some(answer.hash);
            state.stopped_hash_estimated = false;
        });
        Self::emit(out, answer.supersedes(stopped));
        true
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::fixtures::*;

    #[tokio::test(start_paused = true)]
    async fn a_fenced_leaders_stop_answer_replaces_the_estimated_stopped_hash() {
        let mut chain = a_silent_at_1500_with_the_chain_stopped_at_12();
        let _ = chain.tick();
        let fenced_state = a_fenced_at(12);
        assert_eq!(
            chain.at(1501).tick(),
            [persist(fenced_state.clone()), event(EventKind::LeaderFenced, "a")]
        );
        // a answers before anyone was started: its fence stop goes first, and says it sealed 13.
        chain.head("a", 13);
        assert_eq!(chain.tick(), [event(EventKind::FenceStopping, "a"), stop("a", Fence)]);
        fence_stop_of_a_at_13_moves_the_stopped_hash_and_starts_nobody(&mut chain, fenced_state);
    }

    /// Replica seed 57: a replica that could reach no node judged the leader `a` dead from stale
    /// observations, fenced it, estimated the stopped hash at 12 and persisted the start of `b`
    /// there. The engine that acts next sees `a` answer at 13 and asks both at once: is `b`
    /// active, and `a` stopped. Returns the chain and the catching-up state it must go back to.
    fn a_resumed_start_of_b_at_12_checked_while_fenced_a_is_stopped_at_13() -> (Chain, ChainState) {
        let resumed = ChainState {
            fenced: fenced(&["a"]),
            leader: None,
            stopped_hash: Some(hash(12)),
            stopped_hash_estimated: true,
            phase: Phase::Starting { target: "b".into(), from: Some("a".into()) },
            ..steady("a")
        };
        let mut chain = Chain::new(&[("a", 1, true), ("b", 1, true), ("c", 2, true)], resumed.clone());
        chain.head("a", 13).head("b", 12).head("c", 12);
        let steps = chain.tick();
        assert!(steps.contains(&check_active("b")), "{steps:?}");
        assert!(steps.contains(&stop("a", Fence)), "{steps:?}");
        let catching_up =
            ChainState { phase: Phase::CatchingUp { from: "a".into(), target: None }, ..resumed };
        (chain, catching_up)
    }

    #[tokio::test(start_paused = true)]
    async fn a_start_resumed_from_another_engine_waits_for_the_stop_of_a_fenced_leader_that_answers() {
        // Replica seed 57: a replica that could reach no node judged the leader `a` dead from stale
        // observations, fenced it, estimated the stopped hash at 12 and persisted the start of `b`
        // there. The replica that acts next sees `a` answer at 13 (it sealed on, partitioned away from
        // the others). It must stop `a` first, not start `b` below `a`'s blocks.
        let (mut chain, catching_up) = a_resumed_start_of_b_at_12_checked_while_fenced_a_is_stopped_at_13();
        assert_eq!(chain.active_checked("b", Ok(false)), [persist(catching_up.clone())]);
        fence_stop_of_a_at_13_moves_the_stopped_hash_and_starts_nobody(&mut chain, catching_up);
    }

    #[tokio::test(start_paused = true)]
    async fn a_fence_stop_answer_before_the_check_of_a_resumed_start_means_catching_up_again() {
        // Replica seed 57 again, in the other order (found by the 3-replica sweep after the
        // engine was split): the fenced leader's stop answers before the activity check of the
        // start the previous engine persisted at the estimate. `a` ended at 13; `b`, at 12, must
        // not be started there.
        let (mut chain, catching_up) = a_resumed_start_of_b_at_12_checked_while_fenced_a_is_stopped_at_13();
        fence_stop_of_a_at_13_moves_the_stopped_hash_and_starts_nobody(&mut chain, catching_up);
        assert_eq!(chain.active_checked("b", Ok(false)), [], "the start at 12 is dropped, not repeated");
        assert!(chain.tick().iter().all(|step| !matches!(step, Step::Start(..))), "b is still at 12");
    }

    /// The 3-replica chaos run that stalled its chain 5 s: leader `a` crashed at block 20; `c`,
    /// started behind our back, sealed 21 to 23 on top and `b` followed. Inspection stops `c` at
    /// 23; `a` comes back stopped at its old head 20 and is failed over from.
    fn a_crashed_at_20_while_c_sealed_to_23_and_inspection_stopped_c() -> Chain {
        let mut chain = Chain::new(ABC, steady("a"));
        chain.head("a", 20).head("b", 20).head("c", 20);
        for (ms, number) in [(100, 21), (200, 22), (300, 23)] {
            chain.at(ms).fail("a", unreachable()).head("c", number).head("b", number);
        }
        assert_eq!(
            chain.at(400).inspected(&[("b", false), ("c", true)]),
            [event(EventKind::InspectionStopping, "c"), stop("c", Inspection)]
        );
        assert_eq!(
            chain.at(450).stopped("c", Inspection, Ok(hash(23))),
            [event(EventKind::InspectionStopped, "c")]
        );
        assert_eq!(chain.outcomes, [Outcome::InspectionStopped { node: "c".into() }]);
        chain
    }

    #[tokio::test(start_paused = true)]
    async fn a_stopped_hash_every_candidate_has_passed_is_superseded_at_once_by_the_highest_stop_answer() {
        let mut chain = a_crashed_at_20_while_c_sealed_to_23_and_inspection_stopped_c();
        // `a` answers again, stopped at its old head: stalled, so it is failed over from.
        chain.at(2600).head("a", 20).head("b", 23).head("c", 23);
        assert_eq!(chain.tick(), a_stopped_as_unhealthy());
        assert_eq!(
            chain.at(2610).stopped("a", Failover, Err(rpc(AdminError::NotRunning))),
            [event(EventKind::AlreadyStopped, "a"), read_head("a")]
        );
        // Its head 20 is behind every candidate: the stopped point is c's stop answer, 23.
        assert_eq!(
            chain.at(2640).head_read("a", Ok(hash(20))),
            [
                persist(catching_up("a", 23)),
                event(EventKind::Stopped, "a"),
                event(EventKind::StoppedHashFromInspection, "c"),
            ]
        );
        assert_eq!(
            chain.tick(),
            caught_up(&catching_up("a", 23), "b", Some("a"), 23),
            "no catch-up timeout, no leaderless wait"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_higher_stop_answer_arriving_while_catching_up_moves_the_stopped_hash_at_once() {
        let mut chain = Chain::new(ABC, catching_up("a", 20));
        chain.head("a", 20).head("b", 23).head("c", 23);
        assert_eq!(chain.tick(), [], "nobody is at 20");
        assert_eq!(
            chain.at(100).inspected(&[("a", false), ("b", false), ("c", true)]),
            [event(EventKind::InspectionStopping, "c"), stop("c", Inspection)]
        );
        assert_eq!(
            chain.at(150).stopped("c", Inspection, Ok(hash(23))),
            [
                event(EventKind::InspectionStopped, "c"),
                persist(catching_up("a", 23)),
                event(EventKind::StoppedHashFromInspection, "c"),
            ]
        );
        assert_eq!(chain.tick(), caught_up(&catching_up("a", 23), "b", Some("a"), 23));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_answer_is_not_the_stopped_point_while_a_candidate_can_still_reach_the_stopped_hash() {
        let mut chain = Chain::new(ABC, catching_up("a", 20));
        // b is behind the stopped hash and may still reach it: nothing is superseded.
        chain.head("a", 20).head("b", 19).head("c", 23);
        chain.inspected(&[("a", false), ("b", false), ("c", true)]);
        assert_eq!(
            chain.at(50).stopped("c", Inspection, Ok(hash(23))),
            [event(EventKind::InspectionStopped, "c")]
        );
        assert_eq!(chain.state, catching_up("a", 20));
    }

    #[tokio::test(start_paused = true)]
    async fn a_leaderless_chain_takes_a_higher_stop_answer_once_every_answering_candidate_has_passed_the_stopped_hash()
     {
        // Single seed 74: the old leader a stopped at 20, on a branch a sequencer started behind
        // the coordinator's back then replaced (a re-orgs to it); the one candidate still behind
        // 20 went silent later. a cannot lead again (here: no candidate), so it was leaderless.
        let state =
            ChainState { stopped_hash: Some(hash(20)), phase: Phase::Leaderless, ..Default::default() };
        let mut chain = Chain::new(&[("a", 1, false), ("b", 1, true), ("c", 2, true)], state.clone());
        chain.head("a", 20).head("b", 19).head("c", 23);
        assert_eq!(chain.tick(), [chain_event(EventKind::Leaderless)]);
        assert_eq!(
            chain.at(100).inspected(&[("a", false), ("b", false), ("c", true)]),
            [event(EventKind::InspectionStopping, "c"), stop("c", Inspection)]
        );
        assert_eq!(
            chain.at(150).stopped("c", Inspection, Ok(hash(23))),
            [event(EventKind::InspectionStopped, "c")],
            "b may still reach 20"
        );
        // a re-orgs to the other branch (no node holds 20 any more) and b stops answering: every
        // candidate that answers is past 20, and c stopped at 23.
        chain.at(400).head("a", 23).fail("b", unreachable());
        chain.at(450).fail("b", unreachable());
        let moved = ChainState { stopped_hash: Some(hash(23)), ..state };
        assert_eq!(chain.tick(), [persist(moved.clone()), event(EventKind::StoppedHashFromInspection, "c")]);
        assert_eq!(chain.tick(), caught_up(&moved, "c", None, 23));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_answer_newer_than_its_nodes_last_probe_is_placed_once_a_probe_sees_it() {
        // Single seed 74 again: c, started behind the coordinator's back on a branch of its own,
        // sealed 20' (beside the old leader's 20) and then 21' after its last probe, so its stop
        // answer 21' was remembered at 20, no higher than the stopped hash. Once the probes see
        // 21' on every candidate, nobody can reach 20 and 21' is the stopped point.
        let mut chain = Chain::new(ABC, catching_up("a", 20));
        let (branch_20, branch_21) = (B256::repeat_byte(0xc0), B256::repeat_byte(0xc1));
        let at = |chain: &Chain, number, hash: B256| testing::probe(chain.now, number, hash, number);
        let c_at_20 = at(&chain, 20, branch_20);
        chain.head("a", 20).head("b", 19).probe("c", c_at_20);
        assert_eq!(
            chain.at(100).inspected(&[("a", false), ("b", false), ("c", true)]),
            [event(EventKind::InspectionStopping, "c"), stop("c", Inspection)]
        );
        assert_eq!(
            chain.at(150).stopped("c", Inspection, Ok(branch_21)),
            [event(EventKind::InspectionStopped, "c")]
        );
        assert_eq!(chain.tick(), [], "b may still reach 20, and 21' is not placed yet");
        let (b_at_21, c_at_21) = (at(&chain, 21, branch_21), at(&chain, 21, branch_21));
        chain.at(300).probe("b", b_at_21).probe("c", c_at_21);
        let moved = ChainState { stopped_hash: Some(branch_21), ..catching_up("a", 20) };
        assert_eq!(chain.tick(), [persist(moved), event(EventKind::StoppedHashFromInspection, "c")]);
    }
}
