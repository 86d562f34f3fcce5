//! The probe loops: when each node is probed ([`Pace`], chosen by the chain's actor with
//! [`pace_of`]) and the loop that probes it ([`run_prober`]).

use super::{ChainHealth, Probe, Reason};
use crate::{client::NodeClient, self_lag::Backpressure};
use std::time::Duration;
use tokio::{
    sync::{mpsc, watch},
    time::Instant,
};
use tokio_util::sync::CancellationToken;

/// A probe result on its way to the chain's actor.
#[derive(Debug)]
pub struct ProbeReport {
    /// The node.
    pub node: String,
    /// The probe, boxed: a sync status is about 2 KB, and each chain's channel of reports holds
    /// its slots from start-up (at 1,000 chains that alone was 64 MB).
    pub probe: Box<Probe>,
}

/// Where in the probe interval the probes of `chain`'s `node` fall: spread over the interval by a
/// hash of both names, the same at every start. A coordinator of many chains then never probes
/// every node at one instant: such a burst (at start-up, above all) would make its own lateness
/// look like sick nodes.
pub fn probe_phase(chain: &str, node: &str, interval: Duration) -> Duration {
    use std::hash::{Hash as _, Hasher as _};
    // SipHash with fixed keys: the same phases at every start of one build, unlike `RandomState`.
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (chain, node).hash(&mut hasher);
    let nanos = u64::try_from(interval.as_nanos()).unwrap_or(u64::MAX).max(1);
    Duration::from_nanos(hasher.finish() % nanos)
}

/// How much later a node's first probe may come, per node the coordinator watches.
const START_SPREAD_PER_NODE: Duration = Duration::from_millis(1);

/// The window over which a coordinator watching `nodes` nodes spreads its first probes (and each
/// chain's first inspection): one probe interval, or longer when there are so many nodes that a
/// start-up would ask more than a thousand of them a second. At 1,000 chains the first probes and
/// inspections were 12,000 calls in half a second; they queued behind each other until they timed
/// out, and the timeouts (each closing its connection) fed the queue.
pub fn start_window(nodes: usize, interval: Duration) -> Duration {
    interval.max(START_SPREAD_PER_NODE.saturating_mul(u32::try_from(nodes).unwrap_or(u32::MAX)))
}

/// How often a node is probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// Every `health.interval_ms`: the leader, and every node of a chain that looks wrong.
    Fast,
    /// Every `health.follower_interval_ms`, op-node only: a leader in conductor mode that
    /// committed recently (its commits prove it alive and its op-geth building blocks).
    Committing,
    /// Every `health.interval_ms`, op-node only: a leader in conductor mode whose next commit is
    /// due, so that its reading is fresh if the commit does not come.
    CommitDue,
    /// Every `health.follower_interval_ms`: a calm follower (see [`pace_of`]).
    Calm,
}

impl Pace {
    /// True when op-geth is left out of the probe.
    fn op_node_only(self) -> bool {
        matches!(self, Self::Committing | Self::CommitDue)
    }
}

/// Where a conducted leader is in its commit schedule, from its last commit and
/// [`ConductorTiming`](crate::engine::ConductorTiming).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commits {
    /// Committed within `commit_due`.
    Recent,
    /// Committed within the alive window, but its next commit is due.
    Due,
    /// Nothing within the alive window, or the chain is not conducted: no evidence from commits.
    Missing,
}

/// The pace `node` should be probed at. Calm only when nothing about the chain needs fresh
/// follower readings: the chain is in conductor mode (its leader's commits, not follower heads,
/// prove it alive, and a fail-over replays to the committed head instead of trusting follower
/// heads), steady under a leader that is healthy, and `node` is a healthy follower that is not
/// fenced. Observe-mode chains stay fast: their liveness window rests on followers' heads.
///
/// A healthy leader in conductor mode is probed on its op-node only while it commits: calmly
/// right after a commit, every interval once the next one is due. Otherwise it is probed fast.
pub fn pace_of(
    node: &str,
    state: &crate::state::ChainState,
    health: &ChainHealth,
    (conducted, commits): (bool, Commits),
) -> Pace {
    let healthy = |name: &str| health.nodes.get(name).is_some_and(|n| n.healthy && n.reason == Reason::Ok);
    if conducted && state.leader.as_deref() == Some(node) && healthy(node) {
        match commits {
            Commits::Recent => return Pace::Committing,
            Commits::Due => return Pace::CommitDue,
            Commits::Missing => {}
        }
    }
    let calm = conducted
        && state.phase == crate::state::Phase::Steady
        && state.leader.as_deref().is_some_and(|leader| leader != node && healthy(leader))
        && healthy(node)
        && !state.fenced.contains(node);
    if calm { Pace::Calm } else { Pace::Fast }
}

/// A node's probe schedule: the first probe after `phase` (see [`probe_phase`]), then one every
/// `fast` or `calm` as the actor sets the node's [`Pace`].
#[derive(Debug, Clone)]
pub struct ProbeSchedule {
    /// Offset of the first probe.
    pub phase: Duration,
    /// Period at [`Pace::Fast`].
    pub fast: Duration,
    /// Period at [`Pace::Calm`].
    pub calm: Duration,
    /// The pace, set by the chain's actor.
    pub pace: watch::Receiver<Pace>,
    /// Slows every pace to `calm` while the coordinator runs late.
    pub backpressure: Backpressure,
}

impl ProbeSchedule {
    fn period_at(&self, pace: Pace) -> Duration {
        let period = match pace {
            Pace::Fast | Pace::CommitDue => self.fast,
            Pace::Committing | Pace::Calm => self.calm,
        };
        self.backpressure.stretch(period, self.calm)
    }
}

/// A loop's timetable on a pace the chain's actor sets: the first run at a phase, each next one
/// a period after the last began. A run that comes late delays the next instead of bursting; a
/// change of pace moves the next run to the new period after the last began, at once if that is
/// already past.
pub(crate) struct Paced {
    next: Instant,
    last_started: Option<Instant>,
}

impl Paced {
    /// The first run `phase` from now.
    pub(crate) fn after(phase: Duration) -> Self {
        Self { next: Instant::now() + phase, last_started: None }
    }

    /// Waits until the next run is due and marks it begun; false once `cancel` fired or the
    /// pace's sender is gone. `period` is the period under the pace as it is then.
    pub(crate) async fn next_run(
        &mut self,
        pace: &mut watch::Receiver<Pace>,
        period: impl Fn(Pace) -> Duration,
        cancel: &CancellationToken,
    ) -> bool {
        loop {
            tokio::select! {
                biased;
                () = cancel.cancelled() => return false,
                changed = pace.changed() => {
                    if changed.is_err() {
                        return false;
                    }
                    if let Some(last) = self.last_started {
                        self.next = (last + period(*pace.borrow())).max(Instant::now());
                    }
                }
                () = tokio::time::sleep_until(self.next) => {
                    let now = Instant::now();
                    self.last_started = Some(now);
                    self.next = now + period(*pace.borrow());
                    return true;
                }
            }
        }
    }

    /// After a run: the next one a `period` after it began, or at once if that is past.
    pub(crate) fn ran(&mut self, period: Duration) {
        if let Some(last) = self.last_started {
            self.next = (last + period).max(Instant::now());
        }
    }
}

/// Probes one node on `schedule` until `cancel`, sending each result to `reports_tx`. A probe that
/// comes late delays the next one instead of bursting; a node turned fast is probed at once if
/// its last probe is older than the fast period.
pub async fn run_prober(
    node: String,
    client: NodeClient,
    schedule: ProbeSchedule,
    timeout: Duration,
    reports_tx: mpsc::Sender<ProbeReport>,
    cancel: CancellationToken,
) {
    let mut paced = Paced::after(schedule.phase);
    let mut ask_rollup = true;
    let mut pace = schedule.pace.clone();
    while paced.next_run(&mut pace, |now| schedule.period_at(now), &cancel).await {
        let ask_geth = !pace.borrow().op_node_only();
        // On a backlog the probe deadline measures the coordinator's own lateness more than the
        // node (and decisions on timing are held then), while each call it cuts off closes its
        // connection for the next probe to open again: it waits up to the calm period instead.
        let deadline = schedule.backpressure.stretch(timeout, schedule.calm);
        // Boxed: the calls in flight are most of this loop's size, and it sleeps far longer than it
        // probes, so its resting task holds only the schedule.
        let probe = Box::pin(probe_once(&client, deadline, ask_geth, ask_rollup)).await;
        // Ask again after the node was unreachable, and while the question itself went unanswered;
        // a node that answered (even with an error: an old op-node) is not asked every probe.
        ask_rollup = !probe.sync.answered() || probe.rollup.as_ref().is_some_and(|asked| !asked.answered());
        let geth_ok = probe.geth.as_ref().is_none_or(|geth| geth.result.is_ok());
        tracing::debug!(node = %node, ok = probe.sync.result.is_ok() && geth_ok, "probe");
        if reports_tx.send(ProbeReport { node: node.clone(), probe }).await.is_err() {
            return;
        }
        paced.ran(schedule.period_at(*pace.borrow()));
    }
}

/// One probe of a node: its sync status, with its op-geth's latest block and its rollup config
/// when asked, all at once.
async fn probe_once(client: &NodeClient, timeout: Duration, ask_geth: bool, ask_rollup: bool) -> Box<Probe> {
    let rollup = async { if ask_rollup { Some(client.rollup_config(timeout).await) } else { None } };
    let geth = async { if ask_geth { Some(client.latest_block(timeout).await) } else { None } };
    let (sync, geth, rollup) = tokio::join!(client.sync_status(timeout), geth, rollup);
    Box::new(Probe { at: Instant::now(), sync, geth, rollup })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        client::CallError,
        health::tests::{probe_at, settings},
        self_lag::LagWatch,
        testing,
    };

    #[test]
    fn probes_are_spread_over_the_interval_the_same_way_at_every_start() {
        let interval = Duration::from_millis(100);
        let phases: Vec<Duration> =
            (0..300).map(|chain| probe_phase(&format!("chain-{chain}"), "seq-0", interval)).collect();
        assert!(phases.iter().all(|phase| *phase < interval));
        assert_eq!(probe_phase("chain-7", "seq-0", interval), phases[7], "deterministic");
        // 300 chains over ten 10 ms slots: none holds more than twice its share.
        let mut slots = [0usize; 10];
        for phase in &phases {
            slots[usize::try_from(phase.as_millis() / 10).expect("small")] += 1;
        }
        assert!(slots.iter().all(|count| *count <= 60), "{slots:?}");
    }

    #[test]
    fn only_a_healthy_follower_of_a_healthy_steady_conductor_chain_is_calm() {
        use crate::state::{ChainState, Phase};
        let now = Instant::now();
        let mut health = ChainHealth::new(["a".to_owned(), "b".to_owned(), "c".to_owned()], settings());
        for _ in 0..3 {
            for node in ["a", "b", "c"] {
                health.observe_probe(node, &probe_at(now, 5, 5));
            }
        }
        let steady = ChainState { leader: Some("a".into()), phase: Phase::Steady, ..Default::default() };
        assert_eq!(pace_of("a", &steady, &health, (true, Commits::Missing)), Pace::Fast, "the leader");
        assert_eq!(
            pace_of("a", &steady, &health, (true, Commits::Recent)),
            Pace::Committing,
            "just committed"
        );
        assert_eq!(pace_of("a", &steady, &health, (true, Commits::Due)), Pace::CommitDue, "a commit due");
        assert_eq!(pace_of("a", &steady, &health, (false, Commits::Recent)), Pace::Fast);
        // A probe without op-geth keeps the last execution head (for status) and judges no
        // execution lag on it, however far op-node's head moved since.
        let mut op_node_only = probe_at(now, 60, 60);
        op_node_only.geth = None;
        health.observe_probe("a", &op_node_only);
        assert_eq!((health.nodes["a"].reason, health.nodes["a"].execution_head), (Reason::Ok, Some(5)));
        assert_eq!(pace_of("b", &steady, &health, (true, Commits::Missing)), Pace::Calm);
        assert_eq!(
            pace_of("b", &steady, &health, (false, Commits::Missing)),
            Pace::Fast,
            "observe mode needs follower heads"
        );

        let catching_up =
            ChainState { phase: Phase::CatchingUp { from: "a".into(), target: None }, ..steady.clone() };
        assert_eq!(
            pace_of("b", &catching_up, &health, (true, Commits::Missing)),
            Pace::Fast,
            "a fail-over in progress"
        );
        let fenced = ChainState { fenced: ["b".to_owned()].into(), ..steady.clone() };
        assert_eq!(pace_of("b", &fenced, &health, (true, Commits::Missing)), Pace::Fast);

        // The leader's first failed probe turns every follower fast.
        let err = CallError::Unreachable("connection refused".into());
        health.observe_probe("a", &testing::failed_probe(now, err));
        assert_eq!(pace_of("b", &steady, &health, (true, Commits::Missing)), Pace::Fast);
        assert_eq!(pace_of("c", &steady, &health, (true, Commits::Missing)), Pace::Fast);
    }

    /// Every 20 ms fast and every `calm` calm, from `pace`, under `lag` (late past 125 ms).
    fn schedule(pace: watch::Receiver<Pace>, lag: LagWatch, calm: Duration) -> ProbeSchedule {
        let backpressure = Backpressure::new(lag, Duration::from_millis(125));
        ProbeSchedule { phase: Duration::ZERO, fast: Duration::from_millis(20), calm, pace, backpressure }
    }

    /// A prober of a counting node that starts at `pace`, probed every 20 ms fast and every ten
    /// minutes calm, under `lag`.
    struct Prober {
        pace: watch::Sender<Pace>,
        reports: mpsc::Receiver<ProbeReport>,
        calls: std::sync::Arc<std::sync::atomic::AtomicUsize>,
        cancel: CancellationToken,
        task: tokio::task::JoinHandle<()>,
        _server: jsonrpsee::server::ServerHandle,
    }

    impl Prober {
        async fn start(pace: Pace, lag: LagWatch) -> Self {
            let (client, calls, server) = testing::counting_node("optimism_syncStatus").await;
            let (pace_tx, pace) = watch::channel(pace);
            let (reports_tx, reports) = mpsc::channel(64);
            let cancel = CancellationToken::new();
            let schedule = schedule(pace, lag, Duration::from_secs(600));
            let task = tokio::spawn(run_prober(
                "a".into(),
                client,
                schedule,
                Duration::from_secs(5),
                reports_tx,
                cancel.clone(),
            ));
            Self { pace: pace_tx, reports, calls, cancel, task, _server: server }
        }

        async fn next(&mut self) -> ProbeReport {
            tokio::time::timeout(Duration::from_secs(10), self.reports.recv())
                .await
                .expect("a probe in time")
                .expect("the prober runs")
        }

        /// True when no probe comes within 300 ms.
        async fn quiet(&mut self) -> bool {
            tokio::time::timeout(Duration::from_millis(300), self.reports.recv()).await.is_err()
        }

        fn calls(&self) -> usize {
            self.calls.load(std::sync::atomic::Ordering::SeqCst)
        }

        async fn stop(self) {
            self.cancel.cancel();
            self.task.await.expect("the prober ends when cancelled");
        }
    }

    #[tokio::test]
    async fn a_calm_node_waits_its_long_period_and_turning_fast_probes_it_at_once() {
        let mut prober = Prober::start(Pace::Calm, LagWatch::new()).await;
        // The first probe goes out at its phase; the next one is ten minutes away.
        prober.next().await;
        assert!(prober.quiet().await, "a calm node was probed again within 300 ms");
        assert_eq!(prober.calls(), 1);
        // Turned fast, it is probed at once (its last probe is older than the fast period), then
        // every fast period.
        prober.pace.send_replace(Pace::Fast);
        for _ in 0..5 {
            prober.next().await;
        }
        prober.stop().await;
    }

    #[tokio::test]
    async fn a_committing_leader_is_probed_on_op_node_only_calmly_then_fast_once_a_commit_is_due() {
        let mut prober = Prober::start(Pace::Committing, LagWatch::new()).await;
        assert!(prober.next().await.probe.geth.is_none(), "op-node only");
        assert!(prober.quiet().await, "just committed: probed calmly");
        prober.pace.send_replace(Pace::CommitDue);
        for _ in 0..3 {
            assert!(prober.next().await.probe.geth.is_none(), "a commit due: fast, op-node only");
        }
        prober.pace.send_replace(Pace::Fast);
        // A probe already in flight may still be op-node only; the next ones ask op-geth too.
        prober.next().await;
        assert!(prober.next().await.probe.geth.is_some(), "no commits: both");
        prober.stop().await;
    }

    #[tokio::test]
    async fn while_the_coordinator_runs_late_a_fast_node_is_probed_at_the_calm_period() {
        let lag = LagWatch::new();
        let now = Instant::now();
        // Late in two buckets: a backlog (one late bucket is a hiccup, and slows nothing).
        lag.record(now.checked_sub(Duration::from_millis(600)).unwrap_or(now), Duration::from_millis(400));
        lag.record(now, Duration::from_millis(400));
        let mut prober = Prober::start(Pace::Fast, lag).await;
        prober.next().await;
        assert!(prober.quiet().await, "a late coordinator probed a fast node again within 300 ms");
        assert_eq!(prober.calls(), 1);
        prober.stop().await;
    }

    #[tokio::test]
    async fn while_the_coordinator_runs_late_a_probe_waits_up_to_the_calm_period_for_its_answer() {
        // A node that accepts and never answers: the probe's error names the deadline it waited.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                open.push(stream);
            }
        });
        let deadline_of = |lag: LagWatch| {
            let url = url.clone();
            async move {
                let client = NodeClient::new(&url, &url).expect("client");
                let (_pace_tx, pace) = watch::channel(Pace::Fast);
                let (reports_tx, mut reports) = mpsc::channel(4);
                let cancel = CancellationToken::new();
                let schedule = schedule(pace, lag, Duration::from_millis(300));
                let probe_timeout = Duration::from_millis(50);
                let task = tokio::spawn(run_prober(
                    "a".into(),
                    client,
                    schedule,
                    probe_timeout,
                    reports_tx,
                    cancel.clone(),
                ));
                let report = reports.recv().await.expect("a probe");
                cancel.cancel();
                task.await.expect("the prober ends when cancelled");
                report.probe.sync.result
            }
        };
        assert_eq!(
            deadline_of(LagWatch::new()).await,
            Err(CallError::Timeout(50)),
            "on time: the probe deadline"
        );
        let lag = LagWatch::new();
        let now = Instant::now();
        lag.record(now.checked_sub(Duration::from_millis(600)).unwrap_or(now), Duration::from_millis(400));
        lag.record(now, Duration::from_millis(400));
        assert_eq!(deadline_of(lag).await, Err(CallError::Timeout(300)), "late: the calm period");
        held.abort();
    }
}
