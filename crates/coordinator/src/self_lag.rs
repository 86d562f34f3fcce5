//! How late the coordinator's own timers fire: whether its observations can be trusted when the
//! machine, or the coordinator itself, is short of CPU.
//!
//! A probe that times out says "the node did not answer within the deadline" only if the
//! coordinator was on time itself. A coordinator starved of CPU (a busy host, a container
//! throttled by its CPU quota, a backlog of its own work) reads replies late: healthy nodes look
//! slow, and a moving head looks stalled. So one task per process sleeps for [`PERIOD`] again and
//! again and records how much later than asked each sleep ended. The worst lateness of each
//! [`BUCKET`] is kept for [`MEMORY`].
//!
//! The engine reads that through [`SelfLag`] in its view. It deposes no leader on evidence that
//! depends on timing (a timeout, a stall) while its own timers ran later than its limit
//! (`engine/timing.rs`; the limit and how far back it looks are derived in
//! `config/settings.rs`).
//!
//! A runtime that is blocked or descheduled delays this task like every other one, so its
//! lateness is the delay every probe reply saw on top of the node's own latency. The gauge
//! `op_coordinator_timer_lag_seconds` publishes the worst lateness of the last [`MEMORY`].

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How often the monitor measures: short next to a probe deadline, and cheap (one timer per
/// process, whatever the number of chains).
pub const PERIOD: Duration = Duration::from_millis(20);

/// The resolution of the history: the worst lateness of each bucket is kept.
pub const BUCKET: Duration = Duration::from_millis(250);

/// How far back the history reaches. A read over a longer span sees only this much.
pub const MEMORY: Duration = Duration::from_secs(10);

/// The coordinator's own lateness, as a decision reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelfLag {
    /// The worst lateness of the coordinator's timers over the span asked about.
    pub worst: Duration,
    /// When the monitor last measured. An observation that arrived after it (a probe reply
    /// handled right after the process was resumed) is not covered by any measurement yet.
    pub measured_at: Instant,
}

impl SelfLag {
    /// A coordinator on time, measured at `at`: for views built outside a running coordinator
    /// (the engine's tests, a decision taken on a command).
    pub fn on_time(at: Instant) -> Self {
        Self { worst: Duration::ZERO, measured_at: at }
    }
}

/// The worst lateness of each [`BUCKET`] over the last [`MEMORY`]: bounded, whatever the run time.
#[derive(Debug, Clone)]
pub struct LagHistory {
    /// `(bucket start, worst lateness in it)`, oldest first.
    buckets: VecDeque<(Instant, Duration)>,
    measured_at: Instant,
}

impl LagHistory {
    /// An empty history, as if measured at `at` with no lateness.
    pub fn new(at: Instant) -> Self {
        Self { buckets: VecDeque::new(), measured_at: at }
    }

    /// Records a measurement taken at `at` that found the timer `lateness` late.
    pub fn record(&mut self, at: Instant, lateness: Duration) {
        self.measured_at = self.measured_at.max(at);
        match self.buckets.back_mut() {
            Some((start, worst)) if at.saturating_duration_since(*start) < BUCKET => {
                *worst = (*worst).max(lateness);
            }
            _ => self.buckets.push_back((at, lateness)),
        }
        while let Some((start, _)) = self.buckets.front()
            && at.saturating_duration_since(*start) > MEMORY + BUCKET
        {
            self.buckets.pop_front();
        }
    }

    /// The worst lateness of the buckets that overlap the last `span` before `now`, and when the
    /// history was last written. A bucket is taken whole: the answer may reach up to one
    /// [`BUCKET`] further back than asked, never less far.
    pub fn read(&self, now: Instant, span: Duration) -> SelfLag {
        let from = now.checked_sub(span);
        let worst = self
            .buckets
            .iter()
            .rev()
            .take_while(|(start, _)| from.is_none_or(|from| *start + BUCKET > from))
            .map(|(_, worst)| *worst)
            .max()
            .unwrap_or_default();
        SelfLag { worst, measured_at: self.measured_at }
    }

    /// How many buckets overlapping the last `span` before `now` saw lateness above `limit`.
    fn buckets_over(&self, now: Instant, span: Duration, limit: Duration) -> usize {
        let from = now.checked_sub(span);
        self.buckets
            .iter()
            .rev()
            .take_while(|(start, _)| from.is_none_or(|from| *start + BUCKET > from))
            .filter(|(_, worst)| *worst > limit)
            .count()
    }
}

/// The shared history one monitor task writes and every chain actor reads.
#[derive(Debug, Clone)]
pub struct LagWatch(Arc<Mutex<LagHistory>>);

impl LagWatch {
    /// A history nothing writes yet.
    pub fn new() -> Self {
        Self(Arc::new(Mutex::new(LagHistory::new(Instant::now()))))
    }

    /// The coordinator's lateness over the last `span` (see [`LagHistory::read`]).
    pub fn read(&self, now: Instant, span: Duration) -> SelfLag {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).read(now, span)
    }

    /// True when the coordinator ran later than `limit` in at least [`SUSTAINED`] of the
    /// [`BUCKET`]s of the last `span`: a backlog, not a hiccup.
    fn sustained(&self, now: Instant, span: Duration, limit: Duration) -> bool {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).buckets_over(now, span, limit) >= SUSTAINED
    }

    pub(crate) fn record(&self, at: Instant, lateness: Duration) -> Duration {
        let mut history = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        history.record(at, lateness);
        history.read(at, MEMORY).worst
    }

    /// Measures until `cancel`: sleeps [`PERIOD`] and records how late each sleep ended.
    pub async fn run_monitor(self, cancel: CancellationToken) {
        loop {
            let deadline = Instant::now() + PERIOD;
            tokio::select! {
                biased;
                () = cancel.cancelled() => return,
                () = tokio::time::sleep_until(deadline) => {}
            }
            let now = Instant::now();
            let lateness = now.saturating_duration_since(deadline);
            let worst = self.record(now, lateness);
            crate::metrics::timer_lag(worst);
            if lateness >= LOG_LATENESS {
                tracing::warn!(
                    late_ms = lateness.as_millis() as u64,
                    "the coordinator's own timer fired late: it was short of CPU (or blocked)"
                );
            }
        }
    }
}

impl Default for LagWatch {
    fn default() -> Self {
        Self::new()
    }
}

/// How the coordinator sheds its own load while it runs late again and again (a backlog, not a
/// hiccup): every node is probed, and every chain inspected, at no more than the calm rate.
/// Decisions that rest on timing are held while it is late anyway (`engine/timing.rs`), so fast
/// probes would only deepen the backlog that makes it late: a start-up of a thousand chains that
/// probes every node fast never catches up. Evidence that does not depend on timing (a refused
/// connection) still arrives, at the calm rate.
#[derive(Debug, Clone)]
pub struct Backpressure {
    lag: LagWatch,
    /// Lateness above this, sustained, slows probing.
    limit: Duration,
}

/// How far back the lateness that slows probing looks: a few calm periods' gaps, so that the
/// coordinator does not turn fast again the moment its backlog clears for an instant.
pub const BACKPRESSURE_SPAN: Duration = Duration::from_secs(2);

/// How many late [`BUCKET`]s within [`BACKPRESSURE_SPAN`] make a backlog: one is a hiccup (a
/// start-up, a burst of work), which holds decisions but need not slow the probes.
pub const SUSTAINED: usize = 2;

impl Backpressure {
    /// Slows probing while `lag` says the coordinator ran later than `limit`.
    pub fn new(lag: LagWatch, limit: Duration) -> Self {
        Self { lag, limit }
    }

    /// `period`, or `calm` if that is longer and the coordinator ran late in a sustained way
    /// within [`BACKPRESSURE_SPAN`].
    pub fn stretch(&self, period: Duration, calm: Duration) -> Duration {
        if calm > period && self.lag.sustained(Instant::now(), BACKPRESSURE_SPAN, self.limit) {
            calm
        } else {
            period
        }
    }
}

/// Lateness worth a log line of its own: a tenth of a second, far beyond scheduling noise.
const LOG_LATENESS: Duration = Duration::from_millis(100);

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(value: u64) -> Duration {
        Duration::from_millis(value)
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_sees_the_worst_lateness_of_its_span_and_forgets_older_ones() {
        let t0 = Instant::now();
        let mut history = LagHistory::new(t0);
        history.record(t0 + ms(20), ms(1));
        history.record(t0 + ms(40), ms(300));
        history.record(t0 + ms(300), ms(2));
        history.record(t0 + ms(2000), ms(3));
        assert_eq!(history.read(t0 + ms(2000), ms(5000)).worst, ms(300));
        assert_eq!(history.read(t0 + ms(2000), ms(500)).worst, ms(3), "the 300 ms spike is older");
        assert_eq!(history.read(t0 + ms(2000), ms(500)).measured_at, t0 + ms(2000));
        // A bucket is taken whole: a span that ends inside it still sees its worst.
        assert_eq!(history.read(t0 + ms(100), ms(50)).worst, ms(300));
    }

    #[tokio::test(start_paused = true)]
    async fn one_late_bucket_is_a_hiccup_and_two_are_a_backlog_that_slows_probing() {
        let watch = LagWatch::new();
        let t0 = Instant::now();
        let backpressure = Backpressure::new(watch.clone(), ms(100));
        watch.record(t0, ms(300));
        assert_eq!(backpressure.stretch(ms(20), ms(1000)), ms(20), "a hiccup");
        tokio::time::advance(BUCKET).await;
        watch.record(Instant::now(), ms(300));
        assert_eq!(backpressure.stretch(ms(20), ms(1000)), ms(1000), "a backlog");
        tokio::time::advance(BACKPRESSURE_SPAN + BUCKET).await;
        assert_eq!(backpressure.stretch(ms(20), ms(1000)), ms(20), "on time again");
    }

    #[tokio::test(start_paused = true)]
    async fn the_history_stays_bounded_over_a_long_run() {
        let t0 = Instant::now();
        let mut history = LagHistory::new(t0);
        for step in 1..=100_000u64 {
            history.record(t0 + PERIOD * u32::try_from(step).expect("small"), ms(step % 7));
        }
        let most = usize::try_from((MEMORY + BUCKET * 2).as_millis() / BUCKET.as_millis()).expect("small");
        assert!(history.buckets.len() <= most, "{} buckets", history.buckets.len());
    }

    #[tokio::test(start_paused = true)]
    async fn a_paused_clock_measures_no_lateness_and_a_blocked_runtime_does() {
        let watch = LagWatch::new();
        let cancel = CancellationToken::new();
        let monitor = tokio::spawn(watch.clone().run_monitor(cancel.clone()));
        tokio::time::sleep(ms(500)).await;
        assert_eq!(watch.read(Instant::now(), ms(500)).worst, Duration::ZERO);
        cancel.cancel();
        monitor.await.expect("monitor");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_runtime_blocked_for_a_while_shows_as_lateness() {
        let watch = LagWatch::new();
        let cancel = CancellationToken::new();
        let monitor = tokio::spawn(watch.clone().run_monitor(cancel.clone()));
        tokio::time::sleep(ms(50)).await;
        // Blocks the only worker thread, as a starved process is: the monitor's timer fires late.
        std::thread::sleep(ms(200));
        let deadline = Instant::now() + Duration::from_secs(10);
        while watch.read(Instant::now(), MEMORY).worst < ms(150) {
            assert!(
                Instant::now() < deadline,
                "lateness not measured: {:?}",
                watch.read(Instant::now(), MEMORY)
            );
            tokio::time::sleep(ms(5)).await;
        }
        cancel.cancel();
        monitor.await.expect("monitor");
    }
}
