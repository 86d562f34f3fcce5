//! Catching up and leaderless: start a candidate once it is at the stopped hash; on the catch-up
//! timeout restart the old leader there, start where the whole network converged, or say the
//! chain is leaderless (decision table rows "catching up" and "leaderless").

use super::{Action, Event, EventKind, FailoverEngine, FailoverOutcome, Member, Outcome, View, record::Loudness};
use crate::state::Phase;
use alloy_primitives::B256;

impl FailoverEngine {
    pub(super) fn catch_up(&mut self, view: &View<'_>, from: &str, target: Option<&str>, out: &mut Vec<Action>) {
        let Some(hash) = view.state.stopped_hash else {
            self.persist(out, view, |state| state.phase = Phase::Leaderless);
            return;
        };
        let deadline = *self.catch_up_deadline.get_or_insert(view.now + self.settings.catch_up_timeout);
        let candidates: Vec<&Member> = match target {
            Some(target) => view.member(target).filter(|m| view.eligible(&m.name)).into_iter().collect(),
            None => view.by_priority().into_iter().filter(|member| member.name != from).collect(),
        };
        // A fenced node that answers is stopped first (see `fence`): starting another before its
        // stop returns could make two sequencers.
        let fencing = self.fence_blocks_start(view);
        if !fencing && let Some((chosen, own_head)) = planted_bug_skip_catch_up(view, &candidates) {
            self.persist(out, view, |state| {
                state.phase = Phase::Starting { target: chosen.name.clone(), from: Some(from.to_owned()) };
            });
            out.push(Action::Start { node: chosen.name.clone(), hash: own_head });
            return;
        }
        if !fencing
            && let Some(chosen) = candidates.iter().find(|member| view.head_hash(&member.name) == Some(hash))
        {
            let waited = self.since_step(view.now);
            self.persist(out, view, |state| {
                state.phase = Phase::Starting { target: chosen.name.clone(), from: Some(from.to_owned()) };
            });
            let detail = format!("{} is at the stopped hash {hash}; starting it", chosen.name);
            Self::emit(out, Event::info(EventKind::CaughtUp, Some(&chosen.name), detail).took(waited));
            self.step_started_at = Some(view.now);
            self.catch_up_deadline = None;
            out.push(Action::Start { node: chosen.name.clone(), hash });
            return;
        }
        if !fencing && self.reestimate_stopped_hash(view, from, hash, out) {
            return;
        }
        if view.now < deadline {
            return;
        }
        self.catch_up_timed_out(view, from, hash, out);
    }

    /// A stopped hash estimated for a fenced leader (no stop answered) came from a probe that
    /// may be stale: when nobody is at it, move it to the most advanced head. True when it did.
    fn reestimate_stopped_hash(&mut self, view: &View<'_>, from: &str, hash: B256, out: &mut Vec<Action>) -> bool {
        let estimate_number = view.number_of(hash).unwrap_or(0);
        let Some((holder, best_head)) = view.network_tip(from) else { return false };
        if !view.state.stopped_hash_estimated || best_head.hash == hash || best_head.number < estimate_number {
            return false;
        }
        let best_hash = best_head.hash;
        self.persist(out, view, |state| state.stopped_hash = Some(best_hash));
        let detail = format!(
            "the chain's tip moved past the estimated stopped hash {hash}: {holder} is at {best_hash} \
             ({}); candidates must reach that",
            best_head.number
        );
        Self::emit(out, Event::warn(EventKind::StoppedHashReestimated, Some(holder), detail));
        true
    }

    /// Nobody reached the stopped hash in time: restart the old leader there if it can be, else
    /// start where the whole network converged, else the chain is leaderless.
    fn catch_up_timed_out(&mut self, view: &View<'_>, from: &str, hash: B256, out: &mut Vec<Action>) {
        self.catch_up_deadline = None;
        let fencing = self.fence_blocks_start(view);
        let old_leader_ok = !fencing
            && view.node(from).is_some_and(|node| {
                node.healthy && node.reachable && node.unsafe_head.map(|h| h.hash) == Some(hash)
            })
            && !view.state.fenced.contains(from)
            && view.member(from).is_some();
        let timeout_ms = self.settings.catch_up_timeout.as_millis();
        if old_leader_ok {
            self.persist(out, view, |state| {
                state.phase = Phase::Starting { target: from.to_owned(), from: None };
            });
            let detail = format!(
                "no candidate reached the stopped hash {hash} within {timeout_ms} ms; restarting the old leader there"
            );
            let event = Event::warn(EventKind::CatchUpTimeout, Some(from), detail).took(self.since_step(view.now));
            Self::emit(out, event);
            let outcome = FailoverOutcome::RestartedOldLeader;
            Self::outcome(out, Outcome::Failover { outcome, duration: None });
            self.step_started_at = Some(view.now);
            out.push(Action::Start { node: from.to_owned(), hash });
            return;
        }
        if !fencing && self.start_at_converged_head(view, hash, Some(from), out) {
            return;
        }
        let detail = format!(
            "no candidate reached the stopped hash {hash} within {timeout_ms} ms and the old leader {from} cannot be \
             restarted there: NO SEQUENCER IS ACTIVE. Watching; any node reaching {hash} will be started"
        );
        self.become_leaderless(out, view, None, detail, Loudness::Now);
    }

    /// When no node can reach the stopped hash any more because the whole network, every node
    /// answering, has moved to one other head (a sequencer started behind our back re-orged the
    /// stopped block away, or sealed past it), that head is where the chain is: starting the best
    /// candidate there re-orgs nothing any node holds. Returns true when it did.
    fn start_at_converged_head(
        &mut self,
        view: &View<'_>,
        hash: B256,
        from: Option<&str>,
        out: &mut Vec<Action>,
    ) -> bool {
        let Some(converged) = view.converged_head().filter(|converged| *converged != hash) else {
            return false;
        };
        let Some(chosen) =
            view.by_priority().into_iter().find(|member| view.head_hash(&member.name) == Some(converged))
        else {
            return false;
        };
        let chosen = chosen.name.clone();
        self.persist(out, view, |state| {
            state.stopped_hash = Some(converged);
            state.stopped_hash_estimated = false;
            let from = from.filter(|from| *from != chosen).map(str::to_owned);
            state.phase = Phase::Starting { target: chosen.clone(), from };
        });
        let detail = format!(
            "no node can reach the stopped hash {hash} any more: every node, the old leader included, is at \
             {converged}. Starting {chosen} there (nothing any node holds is re-orged)"
        );
        let event = Event::warn(EventKind::StoppedHashSuperseded, Some(&chosen), detail);
        Self::emit(out, event.took(self.since_step(view.now)));
        self.failover_started_at.get_or_insert(view.now);
        self.step_started_at = Some(view.now);
        out.push(Action::Start { node: chosen, hash: converged });
        true
    }

    pub(super) fn leaderless(&mut self, view: &View<'_>, out: &mut Vec<Action>) {
        if self.fence_blocks_start(view) {
            // Its stop is in flight or retried (see `fence`); nobody starts before it returns.
            return;
        }
        let Some(hash) = view.state.stopped_hash else {
            self.elect_at_own_head(view, out, "leaderless without a stopped hash");
            return;
        };
        let chosen = view
            .by_priority()
            .into_iter()
            .find(|member| view.head_hash(&member.name) == Some(hash))
            .map(|member| member.name.clone());
        let Some(chosen) = chosen else {
            if self.start_at_converged_head(view, hash, None, out) {
                return;
            }
            let detail = format!("NO SEQUENCER IS ACTIVE: no eligible node is at the stopped hash {hash}; watching");
            self.become_leaderless(out, view, None, detail, Loudness::Announce);
            return;
        };
        self.persist(out, view, |state| {
            state.phase = Phase::Starting { target: chosen.clone(), from: None }
        });
        self.failover_started_at.get_or_insert(view.now);
        self.step_started_at = Some(view.now);
        let detail = format!("{chosen} reached the stopped hash {hash}; starting it");
        Self::emit(out, Event::info(EventKind::CaughtUp, Some(&chosen), detail));
        out.push(Action::Start { node: chosen, hash });
    }
}

/// THE PLANTED-BUG HOOK, the only place the feature `planted-bug-skip-catch-up` changes the
/// engine. The chaos runner's `--features planted-bug` enables it to prove the runner catches a
/// coordinator that breaks the stopped-hash rule: with it, a catch-up starts the first candidate
/// at whatever head it has instead of waiting for the stopped hash (re-orgs follow). In every
/// other build this returns None and the catch-up is the one in the decision table.
fn planted_bug_skip_catch_up<'a>(view: &View<'a>, candidates: &[&'a Member]) -> Option<(&'a Member, B256)> {
    if !cfg!(feature = "planted-bug-skip-catch-up") {
        return None;
    }
    let chosen = candidates.first()?;
    Some((chosen, view.head_hash(&chosen.name)?))
}
