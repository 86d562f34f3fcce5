//! `op-coordinator devnet` and `ctl` as a new user runs them, in a real terminal: the devnet's
//! live view runs in a tmux pane (a pseudo-terminal with a screen we can read back), `ctl` runs
//! as a process from "another terminal". The test reads what the user reads: the rendered screen
//! and `ctl`'s output and exit codes.
//!
//! tmux must be installed (`apt-get install -y tmux`; `.ci/run` does it). The devnet exists only
//! with the `devnet` feature (a default one).
#![cfg(feature = "devnet")]

use opc_test_support::{PROCESS_WAIT, free_addr, text, wait_for};
use opc_wire::coordinator::ChainStatus;
use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    time::Duration,
};
use tokio::time::Instant;

const BINARY: &str = env!("CARGO_BIN_EXE_op-coordinator");
/// How often a wait looks again (the view redraws every 250 ms).
const POLL: Duration = Duration::from_millis(100);
/// The pane: wide enough for the node table and the event timings.
const COLUMNS: u16 = 160;
const ROWS: u16 = 50;
/// The pane's shell prints this after devnet's exit status and the terminal modes.
const SHELL_DONE: &str = "end-of-pane-shell";

/// A command without the caller's `OP_COORDINATOR_*`, `OP_SIM_*` or `TMUX` variables, so only
/// the flags under test choose endpoints.
fn hermetic(program: &str) -> Command {
    opc_test_support::hermetic(program, &["OP_COORDINATOR_", "OP_SIM_", "TMUX"])
}

/// Polls `probe` every [`POLL`] until it returns a value or [`PROCESS_WAIT`] passes; the failure
/// shows the last thing `probe` observed.
fn wait_until<T>(what: &str, probe: impl FnMut() -> (Option<T>, String)) -> T {
    wait_for(what).timeout(PROCESS_WAIT).poll(POLL).until_blocking(probe)
}

/// A private tmux server (its own socket and config) with one pane; killed on drop.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    /// Starts `shell_command` in a `COLUMNS`x`ROWS` pane that stays readable after it exits.
    fn start(dir: &Path, shell_command: &str) -> Self {
        let version = Command::new("tmux").arg("-V").output();
        assert!(
            version.as_ref().is_ok_and(|output| output.status.success()),
            "this test drives the devnet in tmux; install it (apt-get install -y tmux): {version:?}"
        );
        let config = dir.join("tmux.conf");
        std::fs::write(
            &config,
            "set -g remain-on-exit on\nset -g status off\nset -g default-shell /bin/sh\n",
        )
        .expect("write tmux.conf");
        let tmux = Self { socket: dir.join("tmux.sock") };
        let output = hermetic("tmux")
            .arg("-S")
            .arg(&tmux.socket)
            .arg("-f")
            .arg(&config)
            .args(["new-session", "-d", "-s", "devnet", "-x", &COLUMNS.to_string(), "-y", &ROWS.to_string()])
            .arg(shell_command)
            // The devnet's log file lands here, and goes with the test's temp dir.
            .env("TMPDIR", dir)
            .env("TERM", "xterm-256color")
            .output()
            .expect("run tmux");
        assert!(output.status.success(), "tmux new-session: {}", text(&output.stderr));
        tmux
    }

    fn run(&self, args: &[&str]) -> String {
        let output = Command::new("tmux").arg("-S").arg(&self.socket).args(args).output().expect("run tmux");
        assert!(output.status.success(), "tmux {args:?}: {}", text(&output.stderr));
        text(&output.stdout)
    }

    /// What the user sees in the pane right now.
    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "devnet"])
    }

    /// The pane's screen and its scrollback, which output after the view may have scrolled into.
    fn transcript(&self) -> String {
        self.run(&["capture-pane", "-p", "-S", "-", "-t", "devnet"])
    }

    /// A tmux format about the pane, e.g. `#{pane_dead}`.
    fn format(&self, format: &str) -> String {
        self.run(&["display-message", "-p", "-t", "devnet", format]).trim().to_owned()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").arg("-S").arg(&self.socket).arg("kill-server").output();
    }
}

/// The leader the screen (or `ctl status`) names on its `chain ... leader X ...` line.
fn leader_in(screen: &str) -> Option<String> {
    screen.lines().filter(|line| line.starts_with("chain ")).find_map(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        words.windows(2).find(|pair| pair[0] == "leader").map(|pair| pair[1].to_owned())
    })
}

/// An event row `... failover_complete NODE N ms ...`: the fail-over and how long it took.
fn failover_with_timing(screen: &str) -> Option<String> {
    screen
        .lines()
        .find(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            words.contains(&"failover_complete")
                && words.windows(2).any(|pair| pair[0].parse::<u64>().is_ok() && pair[1] == "ms")
        })
        .map(str::to_owned)
}

fn ctl(rpc: &str, args: &[&str]) -> Output {
    hermetic(BINARY).args(["ctl", "--rpc", rpc]).args(args).output().expect("run op-coordinator ctl")
}

#[test]
fn in_a_terminal_devnet_shows_a_crashed_leader_replaced_ctl_agrees_and_ctrl_c_restores_the_terminal() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (rpc_addr, metrics_addr, control_addr) = (free_addr(), free_addr(), free_addr());
    let (rpc, control) = (format!("http://{rpc_addr}"), format!("http://{control_addr}"));
    // Once devnet has returned, the shell reports its exit status and the terminal modes, then
    // keeps the pane open (`cat` reads the terminal) so tmux still shows the pane's modes.
    let tmux = Tmux::start(
        dir.path(),
        &format!(
            "'{BINARY}' devnet --rpc-listen {rpc_addr} --metrics-listen {metrics_addr} --control {control_addr}; \
             echo \"devnet exited with status $?\"; stty -a; echo {SHELL_DONE}; exec cat"
        ),
    );

    let screen = wait_until("the live view to show seq-0 leading a steady chain", || {
        let screen = tmux.screen();
        let steady = screen.lines().any(|line| line.starts_with("chain ") && line.contains("phase steady"));
        ((steady && leader_in(&screen).as_deref() == Some("seq-0")).then(|| screen.clone()), screen)
    });
    for expected in [&rpc, &control, "NODE", "HEALTHY", "REASON", "SEQUENCING", "UNSAFE", "LATENCY", "EVENTS"]
    {
        assert!(screen.contains(expected), "the view shows {expected:?}:\n{screen}");
    }
    let log_path = dir.path().join("op-coordinator-devnet-");
    assert!(screen.contains(&log_path.display().to_string()), "the view names its log file:\n{screen}");
    assert!(!screen.contains(" INFO "), "no log line on the view:\n{screen}");

    // From "another terminal".
    let crashed_at = Instant::now();
    let crash = ctl(&rpc, &["sim", "--control", &control, "crash", "seq-0"]);
    assert_eq!(crash.status.code(), Some(0), "ctl sim crash: {}", text(&crash.stderr));
    assert!(text(&crash.stdout).contains("crash applied to seq-0"), "{}", text(&crash.stdout));

    let (view_leader, failover_row) =
        wait_until("the view to show a new leader and the fail-over's timing", || {
            let screen = tmux.screen();
            let leader = leader_in(&screen).filter(|leader| leader != "seq-0" && leader != "NONE");
            (leader.zip(failover_with_timing(&screen)), screen)
        });
    eprintln!(
        "the view showed {view_leader} leading {:?} after the crash: {failover_row}",
        crashed_at.elapsed()
    );

    // `ctl status` agrees once the chain is steady again (4 while degraded, then 0).
    let status = wait_until("ctl status to exit 0", || {
        let output = ctl(&rpc, &["status"]);
        let observed =
            format!("exit {:?}\n{}{}", output.status.code(), text(&output.stdout), text(&output.stderr));
        assert!(matches!(output.status.code(), Some(0 | 4)), "ctl status: {observed}");
        ((output.status.code() == Some(0)).then(|| text(&output.stdout)), observed)
    });
    assert_eq!(leader_in(&status).as_deref(), Some(view_leader.as_str()), "ctl status:\n{status}");
    assert!(
        status.contains("seq-0") && status.contains("false"),
        "ctl status shows seq-0 unhealthy:\n{status}"
    );
    let screen = tmux.screen();
    assert_eq!(leader_in(&screen).as_deref(), Some(view_leader.as_str()), "the view still agrees:\n{screen}");

    let json = ctl(&rpc, &["--json", "status"]);
    assert_eq!(json.status.code(), Some(0), "ctl --json status: {}", text(&json.stderr));
    let chains: Vec<ChainStatus> = serde_json::from_slice(&json.stdout).unwrap_or_else(|err| {
        panic!("ctl --json status is not status JSON ({err}):\n{}", text(&json.stdout))
    });
    assert_eq!(chains.len(), 1, "{chains:?}");
    assert_eq!(chains[0].leader.as_deref(), Some(view_leader.as_str()), "{chains:?}");

    // Ctrl-C as the user types it.
    tmux.run(&["send-keys", "-t", "devnet", "C-c"]);
    // The pane may be reported dead before tmux has read its last output: wait for the text.
    let screen = wait_until("devnet to exit and the shell to print the terminal modes", || {
        let screen = tmux.transcript();
        (screen.contains(SHELL_DONE).then(|| screen.clone()), screen)
    });
    assert!(screen.contains("devnet exited with status 0"), "devnet exits 0 on Ctrl-C:\n{screen}");
    assert!(!screen.contains("panicked"), "no panic:\n{screen}");
    assert!(screen.contains("0 unsafe re-orgs, 0 double-sequencing overlaps"), "a safe fail-over:\n{screen}");
    assert!(screen.contains("its log is in"), "the log file is named after exit:\n{screen}");
    let modes: Vec<&str> = screen.split_whitespace().collect();
    for mode in ["icanon", "echo", "isig"] {
        assert!(
            modes.contains(&mode) && !modes.contains(&format!("-{mode}").as_str()),
            "the terminal is back in cooked mode ({mode}):\n{screen}"
        );
    }
    assert_eq!(tmux.format("#{alternate_on} #{cursor_flag}"), "0 1", "main screen, cursor shown:\n{screen}");

    let logs: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .expect("read temp dir")
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
        .collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    let log = std::fs::read_to_string(&logs[0]).expect("read the devnet log");
    assert!(log.contains("failover_complete"), "the fail-over is logged to the file:\n{log}");
}
