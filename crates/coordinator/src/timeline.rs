//! A chain's event timeline (`coordinator_events`), kept across restarts.
//!
//! The actor keeps the last [`EVENT_HISTORY`] events in memory and hands each new one to a
//! [`TimelineFile`], which appends it as one JSON line to `events-<chain>.jsonl` in the data
//! directory (a replica's own directory in a cluster: each replica keeps the events it saw). At
//! start-up the actor reads the file back, so an operator who restarts the coordinator after an
//! incident still sees what happened before.
//!
//! The file is bounded: once it holds twice [`EVENT_HISTORY`] lines it is rewritten atomically
//! (temp file, rename) with the last [`EVENT_HISTORY`]. Appends are not fsynced: the timeline
//! explains decisions, it does not make them, so losing the last lines in a power cut is fine; a
//! line torn by a crash is skipped (and counted in a warning) when the file is read back.
//!
//! Writes run on a task of their own (through `spawn_blocking`), so a slow disk never holds up the
//! actor; a failing write is logged once when it starts failing and once when it recovers.

use opc_wire::coordinator::CoordinatorEvent;
use std::{
    collections::VecDeque,
    io::Write as _,
    path::{Path, PathBuf},
};
use tokio::sync::mpsc;

/// Events kept per chain, in memory and in the file after a trim.
pub const EVENT_HISTORY: usize = 512;
/// Events waiting for the writer; beyond it new ones reach the memory timeline only.
const QUEUE_CAPACITY: usize = 1024;

/// The file of `chain`'s timeline in `dir`.
pub fn path_of(dir: &Path, chain: &str) -> PathBuf {
    dir.join(format!("events-{chain}.jsonl"))
}

/// Reads the last [`EVENT_HISTORY`] events of a timeline file; a missing file is an empty
/// timeline, and an unreadable one is logged and treated as empty (the timeline is not state).
pub fn load(path: &Path) -> VecDeque<CoordinatorEvent> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return VecDeque::new(),
        Err(err) => {
            tracing::warn!(file = %path.display(), %err, "cannot read the event timeline; starting an empty one");
            return VecDeque::new();
        }
    };
    let mut events = VecDeque::new();
    let mut skipped = 0_usize;
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        match serde_json::from_str::<CoordinatorEvent>(line) {
            Ok(event) => events.push_back(event),
            Err(_) => skipped += 1,
        }
    }
    if skipped > 0 {
        tracing::warn!(
            file = %path.display(),
            skipped,
            "skipped event timeline lines that do not parse (a line torn by a crash, or a newer format)"
        );
    }
    while events.len() > EVENT_HISTORY {
        events.pop_front();
    }
    events
}

/// The writing end of a timeline file; the writer task ends when this is dropped, after writing
/// what was queued.
#[derive(Debug)]
pub struct TimelineFile {
    events_tx: mpsc::Sender<CoordinatorEvent>,
}

impl TimelineFile {
    /// Starts the writer of `path`, whose last events [`load`] read back as `loaded`.
    pub fn spawn(path: PathBuf, loaded: &VecDeque<CoordinatorEvent>) -> Self {
        let (events_tx, events_rx) = mpsc::channel(QUEUE_CAPACITY);
        let writer = Writer {
            path,
            recent: loaded.iter().filter_map(|event| serde_json::to_string(event).ok()).collect(),
            lines_in_file: None,
            failing: false,
        };
        tokio::spawn(writer.run(events_rx));
        Self { events_tx }
    }

    /// Queues `event` for the file.
    pub fn append(&self, event: &CoordinatorEvent) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.events_tx.try_send(event.clone()) {
            tracing::debug!("event timeline writer is behind; this event is kept in memory only");
        }
    }
}

/// The writer task's state.
#[derive(Debug)]
struct Writer {
    path: PathBuf,
    /// The last [`EVENT_HISTORY`] lines, what a trim writes.
    recent: VecDeque<String>,
    /// Lines in the file, None until the first write (a file from before the restart may hold
    /// more than what was loaded: it is trimmed at the first write).
    lines_in_file: Option<usize>,
    /// Writes fail: logged once, and once more when they work again.
    failing: bool,
}

impl Writer {
    async fn run(mut self, mut events_rx: mpsc::Receiver<CoordinatorEvent>) {
        let mut batch = Vec::new();
        while events_rx.recv_many(&mut batch, QUEUE_CAPACITY).await > 0 {
            let lines: Vec<String> =
                batch.drain(..).filter_map(|event| serde_json::to_string(&event).ok()).collect();
            let writer = self;
            self = match tokio::task::spawn_blocking(move || writer.write(lines)).await {
                Ok(writer) => writer,
                // Only a panic ends up here; the timeline is not worth taking the actor down for.
                Err(_) => return,
            };
        }
    }

    /// Appends `lines`, or rewrites the file with the recent lines when it is due a trim.
    fn write(mut self, lines: Vec<String>) -> Self {
        let appended = lines.len();
        self.recent.extend(lines.iter().cloned());
        while self.recent.len() > EVENT_HISTORY {
            self.recent.pop_front();
        }
        let due_trim = self.lines_in_file.is_none_or(|count| count + appended > 2 * EVENT_HISTORY);
        let result = if due_trim { self.rewrite() } else { self.append(&lines) };
        match result {
            Ok(count) => {
                self.lines_in_file = Some(count);
                if std::mem::take(&mut self.failing) {
                    tracing::info!(file = %self.path.display(), "event timeline written again");
                }
            }
            Err(err) => {
                // Unknown: the next write trims, which makes the count known again.
                self.lines_in_file = None;
                if !std::mem::replace(&mut self.failing, true) {
                    tracing::warn!(
                        file = %self.path.display(),
                        %err,
                        "cannot write the event timeline; events are kept in memory only until it can"
                    );
                }
            }
        }
        self
    }

    fn append(&self, lines: &[String]) -> std::io::Result<usize> {
        let mut file = std::fs::OpenOptions::new().append(true).create(true).open(&self.path)?;
        file.write_all(joined(lines.iter()).as_bytes())?;
        Ok(self.lines_in_file.unwrap_or(0) + lines.len())
    }

    fn rewrite(&self) -> std::io::Result<usize> {
        let temp = self.path.with_extension("jsonl.tmp");
        std::fs::write(&temp, joined(self.recent.iter()))?;
        std::fs::rename(&temp, &self.path)?;
        Ok(self.recent.len())
    }
}

fn joined<'a>(lines: impl Iterator<Item = &'a String>) -> String {
    lines.fold(String::new(), |mut out, line| {
        out.push_str(line);
        out.push('\n');
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use opc_wire::EventKind;

    fn event(n: u64) -> CoordinatorEvent {
        CoordinatorEvent {
            seq: Some(n),
            at_unix_ms: n,
            chain: "main".into(),
            kind: EventKind::FailoverComplete,
            node: Some("seq-1".into()),
            detail: format!("event {n}"),
            duration_ms: None,
        }
    }

    async fn write_all(path: &Path, loaded: &VecDeque<CoordinatorEvent>, range: std::ops::Range<u64>) {
        let file = TimelineFile::spawn(path.to_owned(), loaded);
        let last = loaded_last(loaded, &range);
        for n in range {
            file.append(&event(n));
        }
        drop(file);
        // The writer ends once it has written everything queued: wait for it on the file.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while tokio::time::Instant::now() < deadline {
            if load(path).back().map(|e| e.at_unix_ms) == Some(last) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        panic!("the timeline file never showed the last event; it holds {:?}", load(path).back());
    }

    fn loaded_last(loaded: &VecDeque<CoordinatorEvent>, range: &std::ops::Range<u64>) -> u64 {
        range.clone().last().or_else(|| loaded.back().map(|e| e.at_unix_ms)).unwrap_or(0)
    }

    #[tokio::test]
    async fn events_written_before_a_restart_are_read_back_in_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = path_of(dir.path(), "main");
        assert!(load(&path).is_empty());
        write_all(&path, &VecDeque::new(), 0..10).await;
        let loaded = load(&path);
        assert_eq!(loaded.iter().map(|e| e.at_unix_ms).collect::<Vec<_>>(), (0..10).collect::<Vec<_>>());
        write_all(&path, &loaded, 10..12).await;
        assert_eq!(load(&path).len(), 12, "the second run appends to what the first wrote");
    }

    #[tokio::test]
    async fn the_file_stays_bounded_and_keeps_the_latest_events() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = path_of(dir.path(), "main");
        // Ten runs of 256 events (one run's burst stays within the writer's queue).
        let total = 10 * 256;
        for start in (0..total).step_by(256) {
            write_all(&path, &load(&path), start..start + 256).await;
            let lines = std::fs::read_to_string(&path).expect("read").lines().count();
            assert!(lines <= 2 * EVENT_HISTORY, "{lines} lines");
        }
        let loaded = load(&path);
        assert_eq!(loaded.len(), EVENT_HISTORY);
        assert_eq!(loaded.back().map(|e| e.at_unix_ms), Some(total - 1));
    }

    #[test]
    fn a_torn_last_line_is_skipped_not_fatal() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = path_of(dir.path(), "main");
        let good = serde_json::to_string(&event(1)).expect("json");
        std::fs::write(&path, format!("{good}\n{{\"at_unix_ms\":2,\"cha")).expect("write");
        assert_eq!(load(&path), VecDeque::from([event(1)]));
    }
}
