//! `op-coordinator devnet` and `ctl` as a new user runs them, in a real terminal: the devnet's
//! live view runs on a pseudo-terminal (`portable-pty`) whose output a terminal emulator (`vt100`)
//! turns back into the screen the user would see; `ctl` runs as a process from "another terminal".
//! The test reads what the user reads: the rendered screen and `ctl`'s output and exit codes.
//!
//! Nothing outside Cargo is needed (no tmux). The devnet exists only with the `devnet` feature (a
//! default one).
#![cfg(feature = "devnet")]

use opc_test_support::{PROCESS_WAIT, free_addr, text, wait_for};
use opc_wire::coordinator::ChainStatus;
use portable_pty::{CommandBuilder, MasterPty, PtySize};
use std::{
    io::{Read as _, Write as _},
    num::NonZeroU16,
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};
use tokio::time::Instant;

const BINARY: &str = env!("CARGO_BIN_EXE_op-coordinator");
/// How often a wait looks again (the view redraws every 250 ms).
const POLL: Duration = Duration::from_millis(100);
/// The terminal: wide enough for the node table and the event timings.
const COLUMNS: u16 = 160;
const ROWS: u16 = 50;
/// Rows kept above the screen, for output that scrolled off it (what `transcript` reads).
const SCROLLBACK_ROWS: usize = 1_000;
/// The terminal's shell prints this after devnet's exit status and the terminal modes.
const SHELL_DONE: &str = "end-of-shell";
/// Prefixes of the caller's variables a child must not see, so only the flags under test choose
/// endpoints.
const CALLER_VARIABLES: &[&str] = &["OP_COORDINATOR_", "OP_SIM_"];

/// A command without the caller's `OP_COORDINATOR_*` or `OP_SIM_*` variables.
fn hermetic(program: &str) -> Command {
    opc_test_support::hermetic(program, CALLER_VARIABLES)
}

/// Polls `probe` every [`POLL`] until it returns a value or [`PROCESS_WAIT`] passes; the failure
/// shows the last thing `probe` observed.
fn wait_until<T>(what: &str, probe: impl FnMut() -> (Option<T>, String)) -> T {
    wait_for(what).timeout(PROCESS_WAIT).poll(POLL).until_blocking(probe)
}

/// A `COLUMNS`x`ROWS` terminal running one shell command: a pseudo-terminal whose output a thread
/// feeds to a terminal emulator, and whose input is the keyboard. The shell is its session leader,
/// so dropping it hangs up the shell and everything the shell started.
struct Terminal {
    /// What the emulator made of everything written to the terminal so far.
    emulator: Arc<Mutex<vt100::Parser>>,
    /// Bytes written here arrive as typed keys.
    keyboard: Box<dyn std::io::Write + Send>,
    /// The shell, hung up (then killed) on drop.
    shell: Box<dyn portable_pty::Child + Send + Sync>,
    /// The terminal's master side; closing it is the hang-up the shell's children get.
    _master: Box<dyn MasterPty + Send>,
}

impl Terminal {
    /// Starts `shell_command` under `/bin/sh` with `TERM=xterm-256color` and `TMPDIR=dir`.
    fn start(dir: &Path, shell_command: &str) -> Self {
        let size = PtySize { rows: ROWS, cols: COLUMNS, pixel_width: 0, pixel_height: 0 };
        let pty = portable_pty::native_pty_system().openpty(size).expect("open a pseudo-terminal");
        let mut command = CommandBuilder::new("/bin/sh");
        command.args(["-c", shell_command]);
        for (name, _) in std::env::vars()
            .filter(|(name, _)| CALLER_VARIABLES.iter().any(|prefix| name.starts_with(prefix)))
        {
            command.env_remove(name);
        }
        command.env("TERM", "xterm-256color");
        // The devnet's log file lands here, and goes with the test's temp dir.
        command.env("TMPDIR", dir);
        // Where the test runs, as a shell opened there would (portable-pty's default is $HOME).
        command.cwd(std::env::current_dir().expect("the test's working directory"));
        let shell = pty.slave.spawn_command(command).expect("start the shell on the pseudo-terminal");
        // Only the shell holds the slave side now, so reads end when its last process exits.
        drop(pty.slave);
        let (rows, columns) = (NonZeroU16::new(ROWS), NonZeroU16::new(COLUMNS));
        let (rows, columns) = rows.zip(columns).expect("a terminal has rows and columns");
        let emulator = Arc::new(Mutex::new(vt100::Parser::new(rows, columns, SCROLLBACK_ROWS)));
        let mut output = pty.master.try_clone_reader().expect("read the pseudo-terminal");
        let screen = Arc::clone(&emulator);
        // Reads as fast as the programs write, as a terminal does, so they never block on output.
        std::thread::spawn(move || {
            let mut buffer = [0u8; 8192];
            while let Ok(read @ 1..) = output.read(&mut buffer) {
                lock(&screen).process(&buffer[..read]);
            }
        });
        let keyboard = pty.master.take_writer().expect("write to the pseudo-terminal");
        Self { emulator, keyboard, shell, _master: pty.master }
    }

    /// Types `keys`.
    fn type_keys(&mut self, keys: &[u8]) {
        self.keyboard.write_all(keys).and_then(|()| self.keyboard.flush()).expect("type into the terminal");
    }

    /// What the user sees on the terminal right now.
    fn screen(&self) -> String {
        lock(&self.emulator).screen().contents()
    }

    /// The screen and the rows that scrolled off above it, which output after the view may have
    /// scrolled into.
    fn transcript(&self) -> String {
        let mut emulator = lock(&self.emulator);
        let screen = emulator.screen_mut();
        let scrolled_off = screen.scrollback_len();
        let mut rows = Vec::new();
        // At scrollback offset `n` the top row shown is the `n`th row above the screen.
        for offset in (1..=scrolled_off).rev() {
            screen.set_scrollback(offset);
            rows.extend(screen.rows(0, COLUMNS).next());
        }
        screen.set_scrollback(0);
        rows.extend(screen.rows(0, COLUMNS));
        rows.join("\n")
    }

    /// Whether the alternate screen is on and whether the cursor is shown.
    fn modes(&self) -> (bool, bool) {
        let emulator = lock(&self.emulator);
        (emulator.screen().alternate_screen(), !emulator.screen().hide_cursor())
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        // SIGHUP, then SIGKILL if the shell is still there; its session's processes get the hang-up.
        let _ = self.shell.kill();
        let _ = self.shell.wait();
    }
}

/// The emulator, also after a panic of the reader thread (its screen is still worth showing).
fn lock(emulator: &Mutex<vt100::Parser>) -> MutexGuard<'_, vt100::Parser> {
    emulator.lock().unwrap_or_else(PoisonError::into_inner)
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
    let conductor_addr = free_addr();
    let (rpc, control) = (format!("http://{rpc_addr}"), format!("http://{control_addr}"));
    // Once devnet has returned, the shell reports its exit status and the terminal modes, then
    // keeps the terminal open (`cat` reads it) as a shell prompt would.
    let mut terminal = Terminal::start(
        dir.path(),
        &format!(
            "'{BINARY}' devnet --rpc-listen {rpc_addr} --metrics-listen {metrics_addr} --control {control_addr} \
             --conductor-listen {conductor_addr}; \
             echo \"devnet exited with status $?\"; stty -a; echo {SHELL_DONE}; exec cat"
        ),
    );

    let screen = wait_until("the live view to show seq-0 leading a steady chain", || {
        let screen = terminal.screen();
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
            let screen = terminal.screen();
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
    let screen = terminal.screen();
    assert_eq!(leader_in(&screen).as_deref(), Some(view_leader.as_str()), "the view still agrees:\n{screen}");

    let json = ctl(&rpc, &["--json", "status"]);
    assert_eq!(json.status.code(), Some(0), "ctl --json status: {}", text(&json.stderr));
    let chains: Vec<ChainStatus> = serde_json::from_slice(&json.stdout).unwrap_or_else(|err| {
        panic!("ctl --json status is not status JSON ({err}):\n{}", text(&json.stdout))
    });
    assert_eq!(chains.len(), 1, "{chains:?}");
    assert_eq!(chains[0].leader.as_deref(), Some(view_leader.as_str()), "{chains:?}");

    // Ctrl-C as the user types it.
    terminal.type_keys(b"\x03");
    let screen = wait_until("devnet to exit and the shell to print the terminal modes", || {
        let screen = terminal.transcript();
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
    assert_eq!(terminal.modes(), (false, true), "main screen, cursor shown:\n{screen}");

    let logs: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .expect("read temp dir")
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
        .collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    let log = std::fs::read_to_string(&logs[0]).expect("read the devnet log");
    assert!(log.contains("failover_complete"), "the fail-over is logged to the file:\n{log}");
}
