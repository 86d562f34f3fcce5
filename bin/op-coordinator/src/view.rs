//! The live terminal view of `op-coordinator devnet`: `ctl status`, `ctl events` and `ctl sim
//! nodes` in one screen, redrawn four times a second.
//!
//! It reads what an operator would read, through the coordinator's admin API and the simulator's
//! control API over loopback, never the coordinator's memory: what it shows is what `ctl` shows.
//! A poller task keeps the latest answers in a `watch` channel; the drawing loop redraws on every
//! new answer, on a resize, and quits on `q`, Ctrl-C, SIGINT or SIGTERM. [`render`] is a pure
//! function of the answers, the clock and the screen size, so the layout is tested without a
//! terminal.
//!
//! The view owns the terminal while it runs (raw mode, alternate screen, hidden cursor); a guard
//! gives it back on every way out, a panic included, so the shell prompt comes back clean.

use crate::{ctl, table};
use crossterm::{
    cursor::{Hide, MoveTo, Show},
    event::{Event, EventStream, KeyCode, KeyEvent, KeyModifiers},
    execute, queue,
    style::{Attribute, Color, Print, ResetColor, SetAttribute, SetForegroundColor},
    terminal::{
        self, BeginSynchronizedUpdate, Clear, ClearType, EndSynchronizedUpdate, EnterAlternateScreen,
        LeaveAlternateScreen,
    },
};
use futures::StreamExt as _;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use op_sim_api::{SimControlApiClient, SimNodeInfo};
use opc_wire::{
    EventKind,
    coordinator::{ChainStatus, CoordinatorApiClient, CoordinatorEvent},
};
use std::{
    io::{self, Write as _},
    path::PathBuf,
    sync::{
        Once,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use tokio::sync::watch;
use tokio_util::task::AbortOnDropHandle;

/// How often the admin API is polled (and so the screen redrawn).
const REFRESH: Duration = Duration::from_millis(250);
/// Deadline of each poll, so a hung coordinator shows as an error instead of a frozen screen.
const CALL_TIMEOUT: Duration = Duration::from_secs(1);
/// Events fetched per poll: more than any screen shows.
const EVENTS_FETCHED: u64 = 50;
/// Set by the panic hook once it has given the terminal back, so the loop stops drawing.
static PANICKED: AtomicBool = AtomicBool::new(false);

/// What the view says about the devnet besides the APIs' answers.
#[derive(Debug, Clone)]
pub(crate) struct Devnet {
    /// The coordinator's admin API, polled like `ctl status` and `ctl events`.
    pub(crate) rpc_url: String,
    /// The simulator's control API, polled like `ctl sim nodes` for the ground truth.
    pub(crate) control_url: String,
    /// Shown so an operator can point Prometheus at it.
    pub(crate) metrics_url: String,
    /// Simulated sequencers, for the title.
    pub(crate) nodes: usize,
    /// Block time, for the title.
    pub(crate) block_time_ms: u64,
    /// Where the logs go while the view owns the terminal.
    pub(crate) log_path: PathBuf,
}

/// The latest answers of the APIs, or why a call failed.
#[derive(Debug, Clone)]
struct Snapshot {
    /// `coordinator_status`.
    status: Result<Vec<ChainStatus>, String>,
    /// `coordinator_events`, oldest first.
    events: Result<Vec<CoordinatorEvent>, String>,
    /// `sim_nodes`: who really sequences and which faults are applied.
    sim_nodes: Result<Vec<SimNodeInfo>, String>,
}

impl Snapshot {
    fn waiting() -> Self {
        fn waiting<T>() -> Result<T, String> {
            Err("waiting for the first answer".to_owned())
        }
        Self { status: waiting(), events: waiting(), sim_nodes: waiting() }
    }
}

/// How a line is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tone {
    Plain,
    Heading,
    Dim,
    Good,
    Bad,
}

/// One screen row.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    text: String,
    tone: Tone,
}

impl Line {
    fn new(tone: Tone, text: impl Into<String>) -> Self {
        Self { text: text.into(), tone }
    }
}

/// Shows the live view until `q`, Ctrl-C, SIGINT or SIGTERM, then gives the terminal back.
pub(crate) async fn run(devnet: Devnet) -> io::Result<()> {
    let coordinator = client(&devnet.rpc_url)?;
    let sim = client(&devnet.control_url)?;
    let (snapshot_tx, mut snapshot_rx) = watch::channel(Snapshot::waiting());
    let _poller = AbortOnDropHandle::new(tokio::spawn(poll(coordinator, sim, snapshot_tx)));
    let mut screen = Screen::enter()?;
    let mut keys = EventStream::new();
    let mut keys_open = true;
    let quit = quit_signal();
    tokio::pin!(quit);
    loop {
        screen.draw(&devnet, &snapshot_rx.borrow_and_update())?;
        tokio::select! {
            biased;
            () = &mut quit => break,
            key = keys.next(), if keys_open => match key {
                Some(Ok(Event::Key(key))) if quits(&key) => break,
                // A resize or another key: redraw.
                Some(Ok(_)) => {}
                // No keyboard (stdin closed): signals still stop the view.
                Some(Err(_)) | None => keys_open = false,
            },
            changed = snapshot_rx.changed() => {
                if changed.is_err() {
                    break;
                }
            }
        }
    }
    drop(screen);
    Ok(())
}

fn client(url: &str) -> io::Result<HttpClient> {
    HttpClientBuilder::default()
        .request_timeout(CALL_TIMEOUT)
        .build(url)
        .map_err(|err| io::Error::other(format!("bad URL {url}: {err}")))
}

/// Polls both APIs every [`REFRESH`] and publishes the answers.
async fn poll(coordinator: HttpClient, sim: HttpClient, snapshot_tx: watch::Sender<Snapshot>) {
    let mut ticks = tokio::time::interval(REFRESH);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let (status, events, sim_nodes) = tokio::join!(
            coordinator.status(None),
            coordinator.events(None, Some(EVENTS_FETCHED), None, None),
            sim.nodes()
        );
        let snapshot = Snapshot {
            status: status.map_err(|err| err.to_string()),
            events: events.map_err(|err| err.to_string()),
            sim_nodes: sim_nodes.map_err(|err| err.to_string()),
        };
        if snapshot_tx.send(snapshot).is_err() {
            return;
        }
    }
}

/// Ctrl-C when the terminal is not in raw mode (or `kill -INT`), and SIGTERM.
async fn quit_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// In raw mode Ctrl-C arrives as a key, not as SIGINT.
fn quits(key: &KeyEvent) -> bool {
    match key.code {
        KeyCode::Char('c') => key.modifiers.contains(KeyModifiers::CONTROL),
        KeyCode::Char('q') => true,
        _ => false,
    }
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

/// `op-coordinator ctl`, with `--rpc` only when the devnet does not listen on the default.
fn ctl_command(devnet: &Devnet) -> String {
    let mut command = "op-coordinator ctl".to_owned();
    if devnet.rpc_url != ctl::DEFAULT_RPC {
        command.push_str(&format!(" --rpc {}", devnet.rpc_url));
    }
    command
}

/// `op-coordinator ctl sim`, with `--control` only when it is not the default.
fn sim_command(devnet: &Devnet) -> String {
    let mut command = format!("{} sim", ctl_command(devnet));
    if devnet.control_url != ctl::DEFAULT_SIM_CONTROL {
        command.push_str(&format!(" --control {}", devnet.control_url));
    }
    command
}

/// `3 s`, `2 min`: how long ago, coarse enough to stay still between redraws.
fn ago(now_unix_ms: u64, at_unix_ms: u64) -> String {
    let seconds = now_unix_ms.saturating_sub(at_unix_ms) / 1000;
    if seconds < 120 { format!("{seconds} s") } else { format!("{} min", seconds / 60) }
}

/// One event with its timing before the detail, so a narrow screen cuts the detail, not the
/// timing.
fn event_row(event: &CoordinatorEvent) -> String {
    let took = event.duration_ms.map(|ms| format!("{ms} ms")).unwrap_or_default();
    format!(
        "{}  {:<22} {:<8} {:>8}  {}",
        table::clock(event.at_unix_ms),
        event.kind,
        event.node.as_deref().unwrap_or("-"),
        took,
        event.detail
    )
}

/// The whole screen: at most `height` lines of at most `width` characters.
fn render(devnet: &Devnet, snapshot: &Snapshot, now_unix_ms: u64, width: usize, height: usize) -> Vec<Line> {
    let mut lines = vec![
        Line::new(
            Tone::Heading,
            format!(
                "op-coordinator devnet  {} simulated sequencers, {} ms blocks  {} UTC  (q or Ctrl-C quits)",
                devnet.nodes,
                devnet.block_time_ms,
                &table::clock(now_unix_ms)[..8]
            ),
        ),
        Line::new(
            Tone::Dim,
            format!(
                "admin API {}  metrics {}  simulator control {}",
                devnet.rpc_url, devnet.metrics_url, devnet.control_url
            ),
        ),
        Line::new(Tone::Dim, format!("log {}", devnet.log_path.display())),
    ];
    let leader = snapshot
        .status
        .as_ref()
        .ok()
        .and_then(|chains| chains.iter().find_map(|status| status.leader.clone()))
        .unwrap_or_else(|| "seq-0".into());
    lines
        .push(Line::new(Tone::Dim, format!("from another terminal: {} crash {leader}", sim_command(devnet))));
    lines.push(Line::new(
        Tone::Dim,
        format!(
            "                  then: {} status, {} heal {leader}",
            ctl_command(devnet),
            sim_command(devnet)
        ),
    ));
    lines.push(Line::new(Tone::Plain, ""));

    match &snapshot.status {
        Err(err) => lines.push(Line::new(Tone::Bad, format!("admin API: {err}"))),
        Ok(chains) => {
            for status in chains {
                let steady = status.phase == "steady"
                    && status.leader.is_some()
                    && table::unhealthy_leader(status).is_none();
                lines.push(Line::new(
                    if steady { Tone::Heading } else { Tone::Bad },
                    table::chain_line(status),
                ));
                lines.push(Line::new(Tone::Dim, table::node_header()));
                for node in &status.nodes {
                    let is_leader = status.leader.as_deref() == Some(node.name.as_str());
                    let tone = match (node.healthy, is_leader) {
                        (false, _) => Tone::Bad,
                        (true, true) => Tone::Good,
                        (true, false) => Tone::Plain,
                    };
                    lines.push(Line::new(tone, table::node_line(status, node)));
                }
                lines.extend(
                    table::unhealthy_details(status).into_iter().map(|text| Line::new(Tone::Bad, text)),
                );
                if let Some(conductor) = &status.conductor {
                    let tone = if conductor.holder.is_some() { Tone::Dim } else { Tone::Bad };
                    lines.push(Line::new(tone, table::conductor_line(conductor)));
                }
            }
        }
    }

    lines.push(match &snapshot.sim_nodes {
        Err(err) => Line::new(Tone::Dim, format!("simulator: {err}")),
        Ok(nodes) => {
            let active: Vec<&str> =
                nodes.iter().filter(|node| node.active).map(|node| node.name.as_str()).collect();
            let faults: Vec<String> = nodes
                .iter()
                .filter(|node| !node.faults.is_empty())
                .map(|node| {
                    let kinds: Vec<&str> = node.faults.iter().map(|kind| kind.as_str()).collect();
                    format!("{} {}", node.name, kinds.join(","))
                })
                .collect();
            let faults = if faults.is_empty() { "none".to_owned() } else { faults.join("; ") };
            let sequencing = if active.is_empty() { "nobody".to_owned() } else { active.join(", ") };
            let per_chain_max = nodes
                .iter()
                .filter(|node| node.active)
                .map(|node| nodes.iter().filter(|other| other.active && other.chain == node.chain).count())
                .max()
                .unwrap_or(0);
            let tone = if per_chain_max > 1 { Tone::Bad } else { Tone::Plain };
            Line::new(tone, format!("simulator (ground truth): sequencing {sequencing}; faults {faults}"))
        }
    });

    let events: &[CoordinatorEvent] = snapshot.events.as_deref().unwrap_or_default();
    lines.push(match events.iter().rev().find(|event| event.kind == EventKind::FailoverComplete) {
        Some(event) => Line::new(
            Tone::Good,
            format!(
                "last fail-over or hand-over: {}{}, {} ago",
                event.detail,
                event.duration_ms.map(|ms| format!(" in {ms} ms")).unwrap_or_default(),
                ago(now_unix_ms, event.at_unix_ms)
            ),
        ),
        None => Line::new(Tone::Dim, "last fail-over or hand-over: none yet"),
    });
    lines.push(Line::new(Tone::Plain, ""));

    lines.push(Line::new(Tone::Heading, "EVENTS (UTC, latest last; full text: ctl events)"));
    match &snapshot.events {
        Err(err) => lines.push(Line::new(Tone::Bad, format!("admin API: {err}"))),
        Ok(events) => {
            let room = height.saturating_sub(lines.len());
            let shown = &events[events.len().saturating_sub(room)..];
            lines.extend(shown.iter().map(|event| {
                let severe = event.kind.is_highlighted();
                Line::new(if severe { Tone::Bad } else { Tone::Plain }, event_row(event))
            }));
        }
    }

    lines.truncate(height);
    for line in &mut lines {
        if let Some((cut, _)) = line.text.char_indices().nth(width) {
            line.text.truncate(cut);
        }
    }
    lines
}

/// The terminal while the view owns it; dropping it gives the terminal back.
#[derive(Debug)]
struct Screen {
    out: io::Stdout,
}

impl Screen {
    fn enter() -> io::Result<Self> {
        terminal::enable_raw_mode().map_err(|err| {
            io::Error::other(format!("the live view needs a terminal (try --view log): {err}"))
        })?;
        static HOOK: Once = Once::new();
        HOOK.call_once(|| {
            let default_hook = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                PANICKED.store(true, Ordering::SeqCst);
                give_terminal_back();
                default_hook(info);
            }));
        });
        let screen = Self { out: io::stdout() };
        execute!(io::stdout(), EnterAlternateScreen, Hide)?;
        Ok(screen)
    }

    fn draw(&mut self, devnet: &Devnet, snapshot: &Snapshot) -> io::Result<()> {
        if PANICKED.load(Ordering::SeqCst) {
            return Err(io::Error::other("a task panicked (message above); stopping the live view"));
        }
        let (columns, rows) = terminal::size()?;
        // One column spare: clearing to the end of a full row would erase its last character.
        let width = usize::from(columns).saturating_sub(1);
        let lines = render(devnet, snapshot, now_unix_ms(), width, usize::from(rows));
        let out = &mut self.out;
        queue!(out, BeginSynchronizedUpdate)?;
        for (row, line) in (0u16..).zip(&lines) {
            queue!(out, MoveTo(0, row))?;
            match line.tone {
                Tone::Plain => {}
                Tone::Heading => queue!(out, SetAttribute(Attribute::Bold))?,
                Tone::Dim => queue!(out, SetAttribute(Attribute::Dim))?,
                Tone::Good => queue!(out, SetForegroundColor(Color::Green))?,
                Tone::Bad => queue!(out, SetForegroundColor(Color::Red))?,
            }
            queue!(
                out,
                Print(&line.text),
                SetAttribute(Attribute::Reset),
                ResetColor,
                Clear(ClearType::UntilNewLine)
            )?;
        }
        let below = u16::try_from(lines.len()).unwrap_or(u16::MAX);
        if below < rows {
            queue!(out, MoveTo(0, below), Clear(ClearType::FromCursorDown))?;
        }
        queue!(out, EndSynchronizedUpdate)?;
        out.flush()
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        give_terminal_back();
    }
}

/// Cursor shown, main screen back, raw mode off; safe to call twice.
fn give_terminal_back() {
    let _ = execute!(io::stdout(), ResetColor, Show, LeaveAlternateScreen);
    let _ = terminal::disable_raw_mode();
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::B256;
    use op_sim_api::FaultKind;
    use opc_wire::{BlockId, coordinator::NodeStatus, health::Reason};

    fn devnet() -> Devnet {
        Devnet {
            rpc_url: "http://127.0.0.1:19762".into(),
            control_url: ctl::DEFAULT_SIM_CONTROL.into(),
            metrics_url: "http://127.0.0.1:9761/metrics".into(),
            nodes: 3,
            block_time_ms: 1000,
            log_path: "/tmp/devnet.log".into(),
        }
    }

    fn node(name: &str, healthy: bool, active: bool) -> NodeStatus {
        NodeStatus {
            name: name.into(),
            healthy,
            reason: if healthy { Reason::Ok } else { Reason::OpNodeUnreachable },
            detail: if healthy { "" } else { "op-node optimism_syncStatus: unreachable" }.into(),
            unsafe_head: Some(BlockId { hash: B256::repeat_byte(0xab), number: 42 }),
            safe_head: None,
            execution_head: Some(42),
            active: Some(active),
            op_node_latency_ms: Some(3),
            op_geth_latency_ms: Some(2),
            priority: 0,
            candidate: true,
            fenced: false,
            head_age_ms: Some(200),
        }
    }

    fn event(at_unix_ms: u64, kind: EventKind, node: &str, duration_ms: Option<u64>) -> CoordinatorEvent {
        CoordinatorEvent {
            seq: None,
            at_unix_ms,
            chain: "devnet".into(),
            kind,
            node: Some(node.into()),
            detail: format!("{node} is the leader (epoch 1)"),
            duration_ms,
        }
    }

    fn sim_node(name: &str, active: bool, faults: Vec<FaultKind>) -> SimNodeInfo {
        SimNodeInfo {
            chain: "devnet".into(),
            name: name.into(),
            op_node_url: String::new(),
            op_geth_url: String::new(),
            active,
            op_node_up: faults.is_empty(),
            op_geth_up: faults.is_empty(),
            unsafe_head: BlockId { hash: B256::ZERO, number: 42 },
            faults,
        }
    }

    /// seq-0 crashed, seq-1 took over at t = 10 s in 404 ms.
    fn after_failover() -> Snapshot {
        Snapshot {
            status: Ok(vec![ChainStatus {
                chain: "devnet".into(),
                leader: Some("seq-1".into()),
                phase: "steady".into(),
                epoch: 1,
                paused: false,
                stopped_hash: None,
                nodes: vec![
                    node("seq-0", false, false),
                    node("seq-1", true, true),
                    node("seq-2", true, false),
                ],
                block_time_ms: None,
                block_time_source: None,
                held: None,
                persist_error: None,
                config_mismatch: None,
                timing_unreliable: None,
                conductor: None,
            }]),
            events: Ok((0..20)
                .map(|i| event(i * 100, EventKind::CaughtUp, "seq-1", Some(1)))
                .chain([event(10_000, EventKind::FailoverComplete, "seq-1", Some(404))])
                .collect()),
            sim_nodes: Ok(vec![
                sim_node("seq-0", false, vec![FaultKind::Crash]),
                sim_node("seq-1", true, vec![]),
                sim_node("seq-2", false, vec![]),
            ]),
        }
    }

    fn texts(lines: &[Line]) -> Vec<&str> {
        lines.iter().map(|line| line.text.as_str()).collect()
    }

    #[test]
    fn after_a_failover_the_view_shows_the_new_leader_the_fault_and_the_failover_timing() {
        let lines = render(&devnet(), &after_failover(), 13_000, 150, 40);
        let text = texts(&lines).join("\n");
        assert!(text.contains("leader seq-1  phase steady  epoch 1"), "{text}");
        assert!(
            text.contains("last fail-over or hand-over: seq-1 is the leader (epoch 1) in 404 ms, 3 s ago"),
            "{text}"
        );
        assert!(text.contains("sequencing seq-1; faults seq-0 crash"), "{text}");
        assert!(text.contains("  seq-0: op-node optimism_syncStatus: unreachable"), "{text}");
        let failover = lines.iter().find(|line| line.text.contains("failover_complete")).expect("event row");
        assert!(failover.text.contains("404 ms"), "{text}");
        let seq0 = lines.iter().find(|line| line.text.starts_with("seq-0 ")).expect("seq-0 row");
        assert_eq!(seq0.tone, Tone::Bad);
        let seq1 = lines.iter().find(|line| line.text.starts_with("seq-1 ")).expect("seq-1 row");
        assert_eq!(seq1.tone, Tone::Good);
        assert!(text.contains("op-coordinator ctl --rpc http://127.0.0.1:19762 sim crash seq-1"), "{text}");
    }

    #[test]
    fn the_view_fits_the_screen_and_keeps_the_latest_events() {
        let (width, height) = (60, 24);
        let lines = render(&devnet(), &after_failover(), 13_000, width, height);
        assert_eq!(lines.len(), height, "events fill the rest of the screen");
        assert!(lines.iter().all(|line| line.text.chars().count() <= width));
        let last = &lines[height - 1].text;
        assert!(last.contains("failover_complete") && last.contains("404 ms"), "{last}");
    }

    #[test]
    fn an_unreachable_admin_api_is_shown_instead_of_the_table() {
        let snapshot = Snapshot { status: Err("request timed out".into()), ..after_failover() };
        let lines = render(&devnet(), &snapshot, 13_000, 150, 40);
        assert!(
            lines.iter().any(|line| line.tone == Tone::Bad && line.text == "admin API: request timed out"),
            "{:#?}",
            texts(&lines)
        );
    }

    #[test]
    fn two_active_sequencers_in_the_ground_truth_are_shown_as_trouble() {
        let mut snapshot = after_failover();
        snapshot.sim_nodes = Ok(vec![sim_node("seq-0", true, vec![]), sim_node("seq-1", true, vec![])]);
        let lines = render(&devnet(), &snapshot, 13_000, 150, 40);
        let truth = lines.iter().find(|line| line.text.starts_with("simulator")).expect("ground truth");
        assert_eq!(truth.tone, Tone::Bad);
        assert!(truth.text.contains("sequencing seq-0, seq-1"), "{}", truth.text);
    }
}
