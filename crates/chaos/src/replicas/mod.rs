//! Replica mode: a Raft cluster of coordinator replicas under replica faults (crashes, partitions
//! between replicas, the acting replica cut off from the sequencers, lost majorities) on top of
//! the seed's node faults. The runner (`runner.rs`) drives it; this module owns the
//! replicas, their faults and the replica-only invariants, and never names the runner.
//!
//! Each replica runs in its own tokio runtime ([`process`]), started from the same config with its
//! own `cluster.id`, its own Raft and API listeners (the same addresses for its whole life, as the
//! config lists them) and its own directory under one data dir. It restarts from its data dir.
//!
//! # Invariants on top of the single-coordinator ones
//!
//! | invariant                      | file                                                | checked                     |
//! |--------------------------------|-----------------------------------------------------|-----------------------------|
//! | at most one replica acts       | [`crate::invariants::one_acting_replica`]           | at the end ([`Replicas::final_checks`]) |
//! | calls are labelled             | [`crate::invariants::calls_are_labelled`]           | at the end                  |
//! | nobody acts without a majority | [`crate::invariants::no_action_without_majority`]   | at the end                  |
//! | production resumes             | [`crate::invariants::production_resumes`]           | every tick, with [`Replicas::can_act`] for "the coordinator runs" |
//! | no replica panics, hangs or dies | [`crate::invariants::coordinator_alive`]          | every tick, at each stop, panics at the end |

mod process;
mod raft_faults;

use crate::{
    invariants::{
        calls_are_labelled,
        coordinator_alive::STATUS_TIMEOUT,
        no_action_without_majority::{self, MajorityLoss},
        one_acting_replica,
    },
    report::{Record, event_text, took},
    schedule::{RaftTimings, ReplicaFault, ReplicaTarget, RunShape},
    support::unix_ms,
};
use jsonrpsee::http_client::HttpClientBuilder;
use op_coordinator::config::Config;
use op_sim::{
    Simulator,
    api::{IsolateMode, LedgerEntry},
};
use opc_wire::coordinator::CoordinatorApiClient;
use process::ReplicaSlot;
use raft_faults::RaftFaults;
use std::{collections::BTreeMap, net::SocketAddr, sync::Arc, time::Duration};
use tokio::time::Instant;

/// How long stopping every replica at the end may take in all.
const STOP_BUDGET: Duration = Duration::from_secs(30);
/// How long a fault aimed at the leader waits for one to be elected before it is skipped.
const LEADER_WAIT: Duration = Duration::from_millis(1500);

/// What an applied replica episode turned into, for its heal.
#[derive(Debug, Clone)]
enum Resolved {
    Crashed(Vec<u64>),
    Partitioned,
    Isolated(u64),
    Skipped,
}

/// The replicas of a run and what the runner has done to them.
#[derive(Debug)]
pub(crate) struct Replicas {
    seed: u64,
    sim: Arc<Simulator>,
    timings: RaftTimings,
    slots: Vec<ReplicaSlot>,
    raft: RaftFaults,
    /// Replica groups of the partition in force.
    raft_groups: Option<Vec<Vec<u64>>>,
    /// Applied episodes not healed yet, by schedule index.
    episodes: BTreeMap<usize, Resolved>,
    majority_losses: Vec<MajorityLoss>,
    /// Both clocks at the start of the run, to place the replicas' events (unix ms) in ledger time.
    unix_at_start: u64,
    ledger_at_start: u64,
}

impl Replicas {
    /// Starts `count` replicas for `sim`'s chain, every one from `coordinator_toml` plus the
    /// `[cluster]` section, and opens the timeline with the cluster's shape. In conductor mode
    /// replica `i` serves the conductor endpoint on `conductors[i - 1]` (the nodes were told).
    pub(crate) async fn start(
        seed: u64,
        shape: &RunShape,
        count: usize,
        sim: Arc<Simulator>,
        coordinator_toml: &str,
        conductors: &[SocketAddr],
        record: &mut Record,
    ) -> Result<Self, String> {
        process::install_panic_hook();
        let timings = RaftTimings::for_block_time(shape.block_time_ms);
        let mut addresses = Vec::new();
        // Every listener stays open until all addresses are chosen, so the kernel cannot hand one
        // port out twice (replica sweep seed 137: two replicas got the same Raft port).
        let mut held = Vec::new();
        for id in 1..=count as u64 {
            let mut bind = || {
                let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|err| {
                    format!("replicas did not start: cannot bind a port for replica {id}: {err}")
                })?;
                let addr = listener.local_addr().map_err(|err| {
                    format!("replicas did not start: no local address for replica {id}: {err}")
                })?;
                held.push(listener);
                Ok::<_, String>(addr)
            };
            // Only the address is kept: each incarnation binds it again.
            let (raft_addr, api_addr) = (bind()?, bind()?);
            addresses.push((id, raft_addr, api_addr));
        }
        drop(held);
        let text = replica_config_text(coordinator_toml, timings, &addresses, conductors);
        let mut slots = Vec::new();
        for (id, raft_addr, api_addr) in addresses {
            let conductor_addr =
                usize::try_from(id - 1).ok().and_then(|index| conductors.get(index)).copied();
            let mut overrides = vec![("cluster.id".to_owned(), id.to_string())];
            overrides.extend(conductor_addr.map(|addr| ("conductor.listen".to_owned(), addr.to_string())));
            let config = Config::from_toml_str(&text, Vec::<(String, String)>::new(), &overrides).map_err(
                |errors| format!("replicas did not start: replica {id}: invalid config: {errors}"),
            )?;
            let client = HttpClientBuilder::default()
                .request_timeout(STATUS_TIMEOUT)
                .build(format!("http://{api_addr}"))
                .map_err(|err| format!("replicas did not start: {err}"))?;
            slots.push(ReplicaSlot::new(id, seed, (raft_addr, api_addr, conductor_addr), config, client));
        }
        for slot in &mut slots {
            slot.start().await.map_err(|err| format!("replicas did not start: {err}"))?;
        }
        let (unix_at_start, ledger_at_start) = (unix_ms(), sim.ledger().now_ms());
        record.timeline.push(format!(
            "replica mode: {count} replicas, Raft heartbeat {} ms, election timeout {}-{} ms; \
             the run started at ledger {ledger_at_start} ms (unix {unix_at_start} ms)",
            timings.heartbeat_interval_ms, timings.election_timeout_min_ms, timings.election_timeout_max_ms
        ));
        Ok(Self {
            seed,
            sim,
            timings,
            slots,
            raft: RaftFaults::new(),
            raft_groups: None,
            episodes: BTreeMap::new(),
            majority_losses: Vec::new(),
            unix_at_start,
            ledger_at_start,
        })
    }

    fn slot(&mut self, id: u64) -> Option<&mut ReplicaSlot> {
        self.slots.iter_mut().find(|slot| slot.id == id)
    }

    fn ids(&self) -> Vec<u64> {
        self.slots.iter().map(|slot| slot.id).collect()
    }

    /// The acting replica and its term: the one that says it acts (the highest term if, briefly,
    /// two do), else the leader the answering replicas name.
    async fn acting(&self) -> Option<(u64, u64)> {
        let mut acting = Vec::new();
        let mut named: BTreeMap<u64, (usize, u64)> = BTreeMap::new();
        for slot in self.slots.iter().filter(|slot| slot.is_up()) {
            let Ok(Ok(info)) =
                tokio::time::timeout(Duration::from_millis(500), slot.client.cluster_membership()).await
            else {
                continue;
            };
            if info.acting {
                acting.push((info.term, slot.id));
            }
            if let Some(leader) = info.leader {
                let entry = named.entry(leader).or_insert((0, info.term));
                entry.0 += 1;
                entry.1 = entry.1.max(info.term);
            }
        }
        if let Some((term, id)) = acting.into_iter().max() {
            return Some((id, term));
        }
        named
            .into_iter()
            .filter(|(id, _)| self.slots.iter().any(|slot| slot.id == *id && slot.is_up()))
            .max_by_key(|(_, (votes, _))| *votes)
            .map(|(id, (_, term))| (id, term))
    }

    /// [`Replicas::acting`], waiting up to [`LEADER_WAIT`] for an election in progress.
    async fn leader(&self) -> Option<(u64, u64)> {
        let deadline = Instant::now() + LEADER_WAIT;
        loop {
            let leader = self.acting().await;
            if leader.is_some() || Instant::now() >= deadline {
                return leader;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn resolve(&self, target: ReplicaTarget) -> Option<(u64, String)> {
        match target {
            ReplicaTarget::Replica(id) => Some((id, format!("replica {id}"))),
            ReplicaTarget::Leader => {
                self.leader().await.map(|(id, term)| (id, format!("replica {id} (acting, term {term})")))
            }
        }
    }

    /// Cuts Raft traffic between the groups (drops on both sides); replicas that are down get
    /// theirs when they restart.
    async fn partition(&mut self, groups: Vec<Vec<u64>>) -> Vec<String> {
        let mut problems = Vec::new();
        for slot in self.slots.iter().filter(|slot| slot.is_up()) {
            if let Err(err) = self.raft.partition(slot.raft_addr, &groups, slot.id).await {
                problems.push(format!("replica {}: {err}", slot.id));
            }
        }
        self.raft_groups = Some(groups);
        problems
    }

    async fn heal_partition(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        for slot in self.slots.iter().filter(|slot| slot.is_up()) {
            if let Err(err) = self.raft.heal(slot.raft_addr).await {
                problems.push(format!("replica {}: {err}", slot.id));
            }
        }
        self.raft_groups = None;
        problems
    }

    /// Restarts `id`, with the Raft partition in force if there is one.
    async fn restart(&mut self, id: u64) -> Result<(), String> {
        let groups = self.raft_groups.clone();
        let raft = self.raft.clone();
        let Some(slot) = self.slot(id) else { return Err(format!("no replica {id}")) };
        if slot.is_up() {
            return Ok(());
        }
        slot.start().await?;
        if let Some(groups) = groups {
            raft.partition(slot.raft_addr, &groups, id).await?;
        }
        Ok(())
    }

    /// True when a majority of replicas are up, can reach each other and reach the nodes: the
    /// liveness check's "the coordinator side can act".
    pub(crate) fn can_act(&self) -> bool {
        let isolated: BTreeMap<u64, IsolateMode> = self.sim.isolated_callers();
        let majority = self.slots.len() / 2 + 1;
        let groups = self.raft_groups.clone().unwrap_or_else(|| vec![self.ids()]);
        groups.iter().any(|group| {
            group
                .iter()
                .filter(|id| !isolated.contains_key(id))
                .filter(|id| self.slots.iter().any(|slot| slot.id == **id && slot.is_up()))
                .count()
                >= majority
        })
    }

    /// Every live replica must answer (not hang) and must not have died on its own.
    pub(crate) async fn check_alive(&mut self, record: &mut Record, elapsed_ms: u64, now: Instant) {
        let checking = Instant::now();
        let mut violations = Vec::new();
        for slot in &mut self.slots {
            violations.extend(slot.check_alive(now).await);
        }
        for violation in violations {
            record.line(elapsed_ms, &violation);
            record.violation(Some(elapsed_ms), violation);
        }
        let slow = took(checking);
        if !slow.is_empty() {
            record.line(elapsed_ms, &format!("replica checks{slow}"));
        }
    }

    /// Applies the replica episode at schedule `index`, held for `held_ms`.
    pub(crate) async fn apply(
        &mut self,
        index: usize,
        fault: &ReplicaFault,
        held_ms: u64,
        record: &mut Record,
    ) -> String {
        let (resolved, line) = self.apply_fault(fault, held_ms, record).await;
        if !matches!(resolved, Resolved::Skipped) {
            record.count(fault.name());
        }
        self.episodes.insert(index, resolved);
        line
    }

    async fn apply_fault(
        &mut self,
        fault: &ReplicaFault,
        held_ms: u64,
        record: &mut Record,
    ) -> (Resolved, String) {
        let how = |abrupt: bool| if abrupt { "killed" } else { "shut down (not waited for)" };
        match fault {
            ReplicaFault::Crash { target, abrupt } => {
                let Some((id, name)) = self.resolve(*target).await else {
                    return (Resolved::Skipped, "skipped replica crash: no acting replica to target".into());
                };
                let Some(slot) = self.slot(id).filter(|slot| slot.is_up()) else {
                    return (Resolved::Skipped, format!("skipped replica crash: {name} is down"));
                };
                if let Some(violation) = slot.crash(*abrupt).await {
                    record.violation(None, violation);
                }
                (Resolved::Crashed(vec![id]), format!("{name} {} for {held_ms} ms", how(*abrupt)))
            }
            ReplicaFault::Partition { target } => {
                let Some((id, name)) = self.resolve(*target).await else {
                    return (
                        Resolved::Skipped,
                        "skipped replica partition: no acting replica to target".into(),
                    );
                };
                let others: Vec<u64> = self.ids().into_iter().filter(|other| *other != id).collect();
                let problems = self.partition(vec![vec![id], others]).await;
                let line = format!("{name} cut off from the other replicas for {held_ms} ms");
                (Resolved::Partitioned, with_problems(line, &problems))
            }
            ReplicaFault::IsolateFromSequencers { mode } => {
                let Some((id, name)) = self.resolve(ReplicaTarget::Leader).await else {
                    return (
                        Resolved::Skipped,
                        "skipped isolation from the sequencers: no acting replica".into(),
                    );
                };
                self.sim.isolate_caller(id, *mode);
                let mode = serde_json::to_string(mode).unwrap_or_default();
                (
                    Resolved::Isolated(id),
                    format!("{name} cut off from every sequencer ({mode}) for {held_ms} ms"),
                )
            }
            ReplicaFault::CrashAllButLeader { abrupt } => {
                let acting = self.leader().await;
                let up: Vec<u64> =
                    self.slots.iter().filter(|slot| slot.is_up()).map(|slot| slot.id).collect();
                let Some(survivor) = acting.map(|(id, _)| id).or_else(|| up.first().copied()) else {
                    return (Resolved::Skipped, "skipped majority loss: no replica up".into());
                };
                let victims: Vec<u64> = up.into_iter().filter(|id| *id != survivor).collect();
                for id in &victims {
                    if let Some(slot) = self.slot(*id)
                        && let Some(violation) = slot.crash(*abrupt).await
                    {
                        record.violation(None, violation);
                    }
                }
                let role = match acting {
                    Some((id, term)) if id == survivor => format!(" (acting, term {term})"),
                    _ => String::new(),
                };
                let what =
                    format!("replicas {victims:?} {}, replica {survivor}{role} left alone", how(*abrupt));
                self.lose_majority(&what);
                (Resolved::Crashed(victims), format!("majority lost for {held_ms} ms: {what}"))
            }
            ReplicaFault::PartitionAll => {
                let groups: Vec<Vec<u64>> = self.ids().into_iter().map(|id| vec![id]).collect();
                let problems = self.partition(groups).await;
                let what = "every replica cut off from every other";
                self.lose_majority(what);
                (
                    Resolved::Partitioned,
                    with_problems(format!("majority lost for {held_ms} ms: {what}"), &problems),
                )
            }
        }
    }

    fn lose_majority(&mut self, what: &str) {
        let from_ms = self.sim.ledger().now_ms();
        self.majority_losses.push(MajorityLoss { from_ms, to_ms: None, what: what.to_owned() });
    }

    /// Heals the replica episode at schedule `index`: restarts, reconnects, lets it reach the
    /// sequencers again. Any majority loss in force ends here.
    pub(crate) async fn heal(&mut self, index: usize, record: &mut Record) -> String {
        let resolved = self.episodes.remove(&index).unwrap_or(Resolved::Skipped);
        let now_ms = self.sim.ledger().now_ms();
        for loss in self.majority_losses.iter_mut().filter(|loss| loss.to_ms.is_none()) {
            loss.to_ms = Some(now_ms);
        }
        match resolved {
            Resolved::Crashed(ids) => {
                let mut lines = Vec::new();
                for id in ids {
                    match self.restart(id).await {
                        Ok(()) => lines.push(format!("replica {id} restarted from its data dir")),
                        Err(err) => {
                            record.violation(None, format!("replica {id} did not restart: {err}"));
                            lines.push(format!("replica {id} restart failed: {err}"));
                        }
                    }
                }
                lines.join("; ")
            }
            Resolved::Partitioned => {
                let problems = self.heal_partition().await;
                with_problems("replica partition healed".into(), &problems)
            }
            Resolved::Isolated(id) => {
                self.sim.heal_caller(Some(id));
                format!("replica {id} reaches the sequencers again")
            }
            Resolved::Skipped => "nothing to heal".into(),
        }
    }

    /// Stops every replica at the end of the run, within [`STOP_BUDGET`] in all.
    pub(crate) async fn stop_at_end(&mut self, record: &mut Record) {
        let stop_deadline = Instant::now() + STOP_BUDGET;
        for slot in &mut self.slots {
            let stopping = Instant::now();
            match tokio::time::timeout_at(stop_deadline, slot.stop()).await {
                Ok(violations) => {
                    for violation in violations {
                        record.violation(None, violation);
                    }
                }
                // Dropping its incarnation kills it.
                Err(_) => record
                    .violation(None, format!("replica {} did not stop within the run's budget", slot.id)),
            }
            record.timeline.push(format!("   end     replica {} stopped{}", slot.id, took(stopping)));
        }
    }

    /// The replica-only invariants on the whole ledger, once every replica stopped: one acting
    /// replica, labelled calls, nobody acting without a majority, no panic on a replica thread.
    pub(crate) fn final_checks(&mut self, entries: &[LedgerEntry], record: &mut Record) {
        let now_ms = self.sim.ledger().now_ms();
        for loss in &mut self.majority_losses {
            loss.to_ms.get_or_insert(now_ms);
        }
        let (acting, terms) = one_acting_replica::check(entries);
        record.report.acting_terms = terms;
        let grace_ms = self.timings.election_timeout_max_ms;
        let unlabelled = calls_are_labelled::check(entries);
        let losses = no_action_without_majority::check(entries, &self.majority_losses, grace_ms);
        for violation in acting.into_iter().chain(unlabelled).chain(losses) {
            record.final_violation(violation);
        }
        for slot in &self.slots {
            record.report.violations.extend(process::panics_of(self.seed, slot.id));
        }
    }

    /// The replicas' event timelines (every incarnation), placed in ledger time, for a violation
    /// report.
    pub(crate) fn event_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for slot in &self.slots {
            for event in &slot.events {
                let ledger_ms = (event.at_unix_ms + self.ledger_at_start).saturating_sub(self.unix_at_start);
                lines.push(format!(
                    "replica {} {} (~ledger {ledger_ms} ms): {}",
                    slot.id,
                    event.at_unix_ms,
                    event_text(event)
                ));
            }
        }
        lines
    }
}

fn with_problems(line: String, problems: &[String]) -> String {
    if problems.is_empty() { line } else { format!("{line} (problems: {})", problems.join("; ")) }
}

/// The shared config of every replica: the single-coordinator settings plus `[cluster]`.
fn replica_config_text(
    coordinator_toml: &str,
    timings: RaftTimings,
    addresses: &[(u64, SocketAddr, SocketAddr)],
    conductors: &[SocketAddr],
) -> String {
    let mut text = coordinator_toml.to_owned();
    text.push_str(&format!(
        "\n[cluster]\nid = 1\nfault_injection = true\nheartbeat_interval_ms = {}\n\
         election_timeout_min_ms = {}\nelection_timeout_max_ms = {}\n",
        timings.heartbeat_interval_ms, timings.election_timeout_min_ms, timings.election_timeout_max_ms
    ));
    for (id, raft, api) in addresses {
        text.push_str(&format!(
            "\n[[cluster.replicas]]\nid = {id}\nraft_addr = \"{raft}\"\napi_addr = \"{api}\"\n"
        ));
        // In conductor mode each replica names its endpoint, where the others forward op-node's
        // calls.
        let conductor = usize::try_from(id - 1).ok().and_then(|index| conductors.get(index));
        if let Some(conductor) = conductor {
            text.push_str(&format!("conductor_addr = \"{conductor}\"\n"));
        }
    }
    text
}
