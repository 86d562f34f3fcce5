//! The actor's answers to the admin API: status, timeline, hand-over and pause, and why a chain
//! is not acted on.

use super::{ChainActor, ChainCommand};
use crate::engine::{CommandError, View};
use opc_wire::{
    BlockId,
    coordinator::{ChainStatus, NodeStatus},
};
use std::time::Duration;
use tokio::time::Instant;

impl ChainActor {
    /// Why the chain is watched but not acted on (no fail-over, inspection stop, start or
    /// hand-over), if it is: its block time is unknown or contradicted, or its stored state names
    /// a node the config lacks (deciding on it could stop the real leader).
    pub(super) fn not_acted_on(&self) -> Option<String> {
        self.block_time.held().map(str::to_owned).or_else(|| self.mismatch_tx.borrow().clone())
    }

    pub(super) async fn on_command(&mut self, command: ChainCommand) {
        if self.acting.is_none() {
            return self.on_command_observing(command).await;
        }
        match command {
            ChainCommand::Status(reply) => {
                let _ = reply.send(self.status());
            }
            ChainCommand::Events { limit, reply } => {
                let skip = self.events.len().saturating_sub(limit);
                let _ = reply.send(self.events.iter().skip(skip).cloned().collect());
            }
            ChainCommand::Transfer { reply, .. } if let Some(why) = self.not_acted_on() => {
                let _ = reply.send(Err(CommandError::NotActedOn { chain: self.name.clone(), why }));
            }
            ChainCommand::ForgetStale { reply } => {
                let _ = reply.send(self.forget_stale().await);
            }
            ChainCommand::Transfer { to, reply } => {
                if let Some((target, _)) = &self.handover_reply {
                    let _ = reply.send(Err(CommandError::HandoverInProgress { target: target.clone() }));
                    return;
                }
                let result = {
                    let view = view_of!(self);
                    self.engine.transfer_to(&view, &to)
                };
                match result {
                    Ok((to, actions)) => {
                        self.handover_reply = Some((to, reply));
                        if self.execute(actions).await.persist_failed {
                            self.fail_handover(CommandError::NotPersisted);
                        }
                    }
                    Err(err @ CommandError::AlreadyLeader(_)) => {
                        // Asking for the current leader is a no-op success, as op-coordinator does.
                        tracing::info!(chain = %self.name, "{err}");
                        let _ = reply.send(Ok(()));
                    }
                    Err(err) => {
                        let _ = reply.send(Err(err));
                    }
                }
            }
            ChainCommand::SetPaused { paused, reply } => {
                let decided = {
                    let view = view_of!(self);
                    self.engine.set_paused(&view, paused)
                };
                let result = match decided {
                    Ok(actions) => {
                        if self.execute(actions).await.persist_failed {
                            Err(CommandError::NotPersisted)
                        } else {
                            Ok(())
                        }
                    }
                    Err(refusal) => Err(refusal),
                };
                let _ = reply.send(result);
            }
        }
    }

    /// Commands on a replica that does not act: reads answer from the replicated state, changes
    /// are refused (the API forwards them to the leader before they get here).
    async fn on_command_observing(&mut self, command: ChainCommand) {
        match command {
            ChainCommand::Status(reply) => {
                if let Ok(Some(state)) = self.store.load(&self.name).await {
                    self.state = state;
                    self.refresh_mismatch();
                }
                let _ = reply.send(self.status());
            }
            ChainCommand::Events { limit, reply } => {
                let skip = self.events.len().saturating_sub(limit);
                let _ = reply.send(self.events.iter().skip(skip).cloned().collect());
            }
            ChainCommand::Transfer { reply, .. } | ChainCommand::SetPaused { reply, .. } => {
                let _ = reply.send(Err(CommandError::NotActing));
            }
            ChainCommand::ForgetStale { reply } => {
                let _ = reply.send(Err(CommandError::NotActing.to_string()));
            }
        }
    }

    pub(super) fn status(&self) -> ChainStatus {
        let now = Instant::now();
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let nodes = self
            .members
            .iter()
            .map(|member| {
                let health = self.health.nodes.get(&member.name).cloned().unwrap_or_default();
                let id = |head: Option<opc_wire::L2BlockRef>| {
                    head.map(|h| BlockId { hash: h.hash, number: h.number })
                };
                NodeStatus {
                    name: member.name.clone(),
                    healthy: health.healthy,
                    reason: health.reason,
                    detail: health.detail.clone(),
                    unsafe_head: id(health.unsafe_head),
                    safe_head: id(health.safe_head),
                    execution_head: health.execution_head,
                    active: health.active,
                    op_node_latency_ms: health.op_node_latency.map(millis),
                    op_geth_latency_ms: health.op_geth_latency.map(millis),
                    priority: member.priority,
                    candidate: member.candidate,
                    fenced: self.state.fenced.contains(&member.name),
                    head_age_ms: health.head_advanced_at.map(|at| millis(now.saturating_duration_since(at))),
                }
            })
            .collect();
        ChainStatus {
            chain: self.name.clone(),
            leader: self.state.leader.clone(),
            phase: self.state.phase.name().to_owned(),
            epoch: self.state.epoch,
            paused: self.state.paused,
            stopped_hash: self.state.stopped_hash,
            nodes,
            block_time_ms: self.block_time.block_time().map(|(block_time, _)| millis(block_time)),
            block_time_source: self.block_time.block_time().map(|(_, source)| source.as_str().to_owned()),
            held: self.block_time.held().map(str::to_owned),
            persist_error: self.persist_health.error(),
            config_mismatch: self.mismatch_tx.borrow().clone(),
            timing_unreliable: {
                let view = view_of!(@as_last_read self);
                self.engine.timing_unreliable(&view)
            },
            conductor: self.fence.as_ref().map(|fence| {
                let view = fence.view();
                opc_wire::coordinator::ConductorStatus {
                    holder: view.holder,
                    committed_head: view
                        .head
                        .map(|head| opc_wire::BlockId { hash: head.block_hash, number: head.number }),
                    base: view.base,
                    last_commit_ms_ago: view
                        .last_commit_at
                        .map(|at| millis(Instant::now().saturating_duration_since(at))),
                    accepted: view.accepted,
                    refused: view.refused,
                    commits_last_10s: fence.recent_commits(),
                    endpoint: self.conductor_endpoint.clone(),
                }
            }),
        }
    }
}
