//! Built binaries as child processes: what a test needs to run one as an operator would and to
//! leave nothing behind when it fails.

use std::{
    ffi::OsStr,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::Duration,
};
use tokio::time::Instant;

/// A command for `program` without the caller's environment variables whose names start with one
/// of `prefixes` (`OP_COORDINATOR_`, `OP_SIM_`), so only the flags and files under test
/// configure it.
pub fn hermetic(program: impl AsRef<OsStr>, prefixes: &[&str]) -> Command {
    let mut command = Command::new(program);
    for (name, _) in
        std::env::vars().filter(|(name, _)| prefixes.iter().any(|prefix| name.starts_with(prefix)))
    {
        command.env_remove(name);
    }
    command
}

/// Bytes of a child's output as text, for assertions and failure messages.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The last `lines` lines of a file (empty when it cannot be read), for failure messages.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A child process whose stderr goes to a log file; SIGKILLed (and reaped) on drop, so a failing
/// test leaves no process behind.
#[derive(Debug)]
pub struct LoggedChild {
    /// The process.
    child: Child,
    /// Where its stderr goes, for [`LoggedChild::log_tail`].
    log: PathBuf,
}

impl LoggedChild {
    /// Spawns `command` with no stdin, no stdout, and stderr appended to `log`: a file, not a pipe
    /// nobody reads, since a full pipe would block the child's logging.
    pub fn spawn(command: &mut Command, log: &Path) -> Self {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|err| panic!("open log {}: {err}", log.display()));
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|err| panic!("spawn {:?}: {err}", command.get_program()));
        Self { child, log: log.to_owned() }
    }

    /// Takes charge of a child spawned elsewhere (for example by threads released together),
    /// whose stderr goes to `log`.
    pub fn adopt(child: Child, log: &Path) -> Self {
        Self { child, log: log.to_owned() }
    }

    /// The process id, to signal it.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The exit status, once the process has exited by itself.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    /// Waits up to `timeout` for the process to exit; `None` if it still runs.
    pub async fn exit_within(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(crate::POLL).await;
        }
    }

    /// Its whole log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }
}

impl Drop for LoggedChild {
    fn drop(&mut self) {
        // SIGKILL: no shutdown path runs, as when the host dies. Harmless once it has exited.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
