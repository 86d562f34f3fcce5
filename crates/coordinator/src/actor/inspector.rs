//! The inspection loop: every node asked whether it sequences, in rounds.

use crate::{
    client::{NodeClient, Timed},
    health::{Pace, Paced, probe_phase},
    self_lag::Backpressure,
};
use std::{collections::BTreeMap, time::Duration};
use tokio::{
    sync::{mpsc, watch},
    time::Instant,
};
use tokio_util::sync::CancellationToken;

/// One `admin_sequencerActive` sweep of every node.
#[derive(Debug)]
pub(super) struct InspectionRound {
    /// When the first question was sent: answers describe the world from then on.
    pub(super) started_at: Instant,
    /// Per node.
    pub(super) answers: BTreeMap<String, Timed<bool>>,
}

/// How often the inspector asks: `fast`, or `calm` while its chain's pace is [`Pace::Calm`].
pub(super) struct InspectionSchedule {
    /// `inspection.interval_ms`; None when inspection is off (a round every 10 s, for
    /// discovery and the leader-count metric).
    pub(super) fast: Option<Duration>,
    /// The period of a calm chain: never shorter than `fast`.
    pub(super) calm: Duration,
    /// Set by the chain's actor.
    pub(super) pace: watch::Receiver<Pace>,
    /// Slows a fast chain to `calm` while the coordinator runs late.
    pub(super) backpressure: Backpressure,
    /// The first round comes within this, or within half a second if that is longer.
    pub(super) start_window: Duration,
}

impl InspectionSchedule {
    fn period_at(&self, pace: Pace) -> Duration {
        let fast = self.fast.unwrap_or(Duration::from_secs(10));
        if pace == Pace::Calm { self.calm.max(fast) } else { self.backpressure.stretch(fast, self.calm) }
    }
}

/// Asks every node `admin_sequencerActive` concurrently, once per period of `schedule`, and sends
/// each round. A chain that turns fast is asked at once if its last round is older than the fast
/// period.
pub(super) async fn run_inspector(
    clients: BTreeMap<String, NodeClient>,
    (chain, schedule): (String, InspectionSchedule),
    timeout: Duration,
    rounds_tx: mpsc::Sender<InspectionRound>,
    cancel: CancellationToken,
) {
    // Rounds are spread over the period like probes (see `probe_phase`): a coordinator of many
    // chains never asks every node at one instant. The first within half a second even when
    // rounds are rare: discovery waits for it. Later when the coordinator watches so many nodes
    // that their first probes spread further (`start_window`).
    let spread = schedule.fast.unwrap_or(Duration::from_secs(10)).min(Duration::from_millis(500));
    let spread = spread.max(schedule.start_window);
    let mut paced = Paced::after(probe_phase(&chain, "inspection", spread));
    let mut pace = schedule.pace.clone();
    while paced.next_run(&mut pace, |now| schedule.period_at(now), &cancel).await {
        let started_at = Instant::now();
        let calls = clients
            .iter()
            .map(|(name, client)| async move { (name.clone(), client.sequencer_active(timeout).await) });
        let answers = futures::future::join_all(calls).await.into_iter().collect();
        if rounds_tx.send(InspectionRound { started_at, answers }).await.is_err() {
            return;
        }
        paced.ran(schedule.period_at(*pace.borrow()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;
    use std::sync::atomic::Ordering;

    #[tokio::test]
    async fn a_calm_chain_is_inspected_at_the_calm_period_and_at_once_when_it_turns_fast() {
        let (client, calls, _server) = testing::counting_node("admin_sequencerActive").await;
        let (pace_tx, pace) = watch::channel(Pace::Calm);
        let (rounds_tx, mut rounds_rx) = mpsc::channel(16);
        let cancel = CancellationToken::new();
        let schedule = InspectionSchedule {
            fast: Some(Duration::from_millis(20)),
            calm: Duration::from_secs(600),
            pace,
            backpressure: Backpressure::new(crate::self_lag::LagWatch::new(), Duration::from_millis(125)),
            start_window: Duration::ZERO,
        };
        let clients = BTreeMap::from([("a".to_owned(), client)]);
        let inspector = tokio::spawn(run_inspector(
            clients,
            ("chain".into(), schedule),
            Duration::from_secs(5),
            rounds_tx,
            cancel.clone(),
        ));
        let next = async |rx: &mut mpsc::Receiver<InspectionRound>| {
            tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("a round").expect("running")
        };
        // The first round comes within half a second, whatever the period.
        next(&mut rounds_rx).await;
        let quiet = tokio::time::timeout(Duration::from_millis(300), rounds_rx.recv()).await;
        assert!(quiet.is_err(), "a calm chain was inspected again within 300 ms");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        pace_tx.send_replace(Pace::Fast);
        for _ in 0..3 {
            next(&mut rounds_rx).await;
        }
        cancel.cancel();
        inspector.await.expect("the inspector ends when cancelled");
    }
}
