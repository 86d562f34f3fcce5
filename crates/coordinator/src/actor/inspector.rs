//! The inspection loop: every node asked whether it sequences, in rounds.

use crate::{
    client::{NodeClient, Timed},
    health::{Every, probe_phase},
};
use std::{collections::BTreeMap, time::Duration};
use tokio::{sync::mpsc, time::Instant};
use tokio_util::sync::CancellationToken;

/// One `admin_sequencerActive` sweep of every node.
#[derive(Debug)]
pub(super) struct InspectionRound {
    /// When the first question was sent: answers describe the world from then on.
    pub(super) started_at: Instant,
    /// Per node.
    pub(super) answers: BTreeMap<String, Timed<bool>>,
}

/// Every `interval`, asks every node `admin_sequencerActive` concurrently and sends the round.
pub(super) async fn run_inspector(
    clients: BTreeMap<String, NodeClient>,
    (chain, interval): (String, Option<Duration>),
    timeout: Duration,
    rounds_tx: mpsc::Sender<InspectionRound>,
    cancel: CancellationToken,
) {
    // Even with inspection disabled, discovery needs one round (and then every 10 s to keep the
    // leader-count metric honest). Rounds are spread over the period like probes (see
    // `probe_phase`): a coordinator of many chains never asks every node at one instant.
    let period = interval.unwrap_or(Duration::from_secs(10));
    // The first round within half a second even when rounds are rare: discovery waits for it.
    let spread = period.min(Duration::from_millis(500));
    let mut every = Every::after(probe_phase(&chain, "inspection", spread), period);
    while every.tick(&cancel).await {
        let started_at = Instant::now();
        let calls = clients
            .iter()
            .map(|(name, client)| async move { (name.clone(), client.sequencer_active(timeout).await) });
        let answers = futures::future::join_all(calls).await.into_iter().collect();
        if rounds_tx.send(InspectionRound { started_at, answers }).await.is_err() {
            return;
        }
    }
}
