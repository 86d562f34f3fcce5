//! Single mode: one coordinator alone, on the runner's runtime, stopped (killed or shut down) and
//! started again by the schedule's `restart_coordinator` steps. The runner (`runner.rs`) drives
//! it; this file knows only the coordinator process. In conductor mode every incarnation serves
//! the conductor endpoint on the one address the nodes know.

use crate::{
    invariants::coordinator_alive::{SHUTDOWN_TIMEOUT, StatusChecks, exit_text, shutdown_violation},
    report::{Record, event_text},
    support::{Spawned, bind_again, spawn_coordinator},
};
use op_coordinator::config::Config;
use opc_wire::coordinator::{CoordinatorApiClient, CoordinatorEvent};
use std::net::SocketAddr;
use tokio::net::TcpListener;

/// The coordinator of a single-mode run: it can be killed and started again.
#[derive(Debug)]
pub(crate) struct SingleCoordinator {
    /// Every incarnation starts from it.
    config: Config,
    /// The conductor endpoint's address, in conductor mode, and its listener until the first
    /// incarnation takes it (later ones bind the address again).
    conductor: Option<(SocketAddr, Option<std::net::TcpListener>)>,
    /// The incarnation running, if any.
    running: Option<Spawned>,
    /// Events of every incarnation so far (they live in its memory and go with it).
    events: Vec<CoordinatorEvent>,
    /// False from a scheduled stop until the restart: it is not expected to run meanwhile.
    up: bool,
    /// The status checks of the whole run (the hang is reported once a run).
    status: StatusChecks,
}

impl SingleCoordinator {
    /// Starts the coordinator from `config_text`, serving the conductor endpoint on `conductor`
    /// when given.
    pub(crate) async fn start(
        config_text: &str,
        conductor: Option<std::net::TcpListener>,
    ) -> Result<Self, String> {
        let config = Config::from_toml_str(config_text, Vec::<(String, String)>::new(), &[])
            .map_err(|errors| format!("coordinator did not start: {errors}"))?;
        let conductor = match conductor {
            Some(listener) => {
                let addr = listener.local_addr().map_err(|err| format!("conductor endpoint: {err}"))?;
                Some((addr, Some(listener)))
            }
            None => None,
        };
        let mut coordinator = Self {
            config,
            conductor,
            running: None,
            events: Vec::new(),
            up: true,
            status: StatusChecks::default(),
        };
        coordinator.launch().await.map_err(|err| format!("coordinator did not start: {err}"))?;
        Ok(coordinator)
    }

    async fn launch(&mut self) -> Result<(), String> {
        let conductor = match &mut self.conductor {
            Some((addr, held)) => {
                let listener = match held.take() {
                    Some(listener) => listener,
                    None => bind_again(*addr).await?,
                };
                Some(TcpListener::from_std(listener).map_err(|err| format!("conductor endpoint: {err}"))?)
            }
            None => None,
        };
        self.running = Some(spawn_coordinator(self.config.clone(), conductor).await?);
        Ok(())
    }

    /// Stops it (`abrupt`: its task aborted mid-flight); a violation if it had died on its own or
    /// does not stop cleanly. Its event timeline is saved first.
    async fn stop(&mut self, abrupt: bool) -> Option<String> {
        if let Some(running) = &self.running
            && let Ok(events) = running.client.events(None, Some(1000), None, None).await
        {
            self.events.extend(events);
        }
        let Spawned { task, shutdown_tx, .. } = self.running.take()?;
        if task.is_finished() {
            return Some(format!("coordinator exited on its own: {}", exit_text(task.await)));
        }
        if abrupt {
            task.abort();
        } else {
            let _ = shutdown_tx.send(());
        }
        shutdown_violation("coordinator", tokio::time::timeout(SHUTDOWN_TIMEOUT, task).await.ok())
    }

    /// True while the coordinator is meant to run (the liveness check's "coordinator side").
    pub(crate) fn can_act(&self) -> bool {
        self.up
    }

    /// A scheduled stop: the coordinator killed or shut down for `down_ms`.
    pub(crate) async fn restart_begins(&mut self, abrupt: bool, down_ms: u64, record: &mut Record) -> String {
        record.count("coordinator_restart");
        self.up = false;
        if let Some(violation) = self.stop(abrupt).await {
            record.violation(None, violation);
        }
        format!("coordinator {} for {down_ms} ms", if abrupt { "killed" } else { "stopped" })
    }

    /// The end of a scheduled stop: the coordinator starts again from its data dir.
    pub(crate) async fn restart_ends(&mut self, record: &mut Record) -> String {
        match self.launch().await {
            Ok(()) => {
                self.up = true;
                "coordinator started".into()
            }
            Err(err) => {
                record.violation(None, format!("coordinator did not restart: {err}"));
                format!("coordinator restart failed: {err}")
            }
        }
    }

    /// The coordinator must answer (not hang) and must not have died: checked in the first tick
    /// of every 500 ms.
    pub(crate) async fn check_alive(&mut self, record: &mut Record, elapsed_ms: u64) {
        if !self.up || elapsed_ms % 500 >= 50 {
            return;
        }
        let Some(running) = &self.running else { return };
        if running.task.is_finished() {
            if let Some(violation) = self.stop(false).await {
                record.violation(Some(elapsed_ms), violation);
            }
            self.up = false;
            return;
        }
        let outcome = running.client.status(None).await.map(drop).map_err(|err| err.to_string());
        if let Some(err) = self.status.record(outcome) {
            record.violation(Some(elapsed_ms), format!("coordinator does not answer: {err}"));
        }
    }

    /// Shuts it down at the end of the run.
    pub(crate) async fn stop_at_end(&mut self, record: &mut Record) {
        if let Some(violation) = self.stop(false).await {
            record.violation(None, violation);
        }
    }

    /// Its event timeline (every incarnation), for a violation report.
    pub(crate) fn event_lines(&self) -> Vec<String> {
        self.events
            .iter()
            .map(|event| format!("coordinator {}: {}", event.at_unix_ms, event_text(event)))
            .collect()
    }
}
