//! Conductor mode's episodes as the runner applies them ([`crate::schedule::conducted`] draws
//! them): the target resolved to the node sequencing at that moment (ground truth: the one active
//! node), its faults applied and healed through the simulator, and the run's [`FaultsInForce`]
//! kept in step so the liveness check knows what the chain could do.

use crate::{
    report::Record,
    schedule::{ConductorEpisode, NodeTarget},
    support::FaultsInForce,
};
use op_sim::{Simulator, api::FaultKind};
use std::collections::BTreeMap;

/// What an applied episode did, for its next step and its heal.
#[derive(Debug, Clone)]
struct Applied {
    node: String,
    /// Lasting faults it applied, healed at its end.
    kinds: Vec<FaultKind>,
    /// It partitioned the node from its peers ("candidates behind", until its crash).
    partitioned: bool,
}

/// The conductor episodes of a run that are in force, by schedule index.
#[derive(Debug, Default)]
pub(crate) struct Episodes {
    applied: BTreeMap<usize, Applied>,
}

impl Episodes {
    /// Starts the episode at schedule `index`; the timeline line.
    pub(crate) fn apply(
        &mut self,
        index: usize,
        sim: &Simulator,
        target: &NodeTarget,
        episode: &ConductorEpisode,
        faults: &mut FaultsInForce,
        record: &mut Record,
    ) -> String {
        let name = episode.name();
        let node = match resolve(sim, target, faults) {
            Ok(node) => node,
            Err(why) => return format!("skipped {name}: {why}"),
        };
        let mut applied = Applied { node: node.clone(), kinds: Vec::new(), partitioned: false };
        for (kind, params) in episode.faults() {
            if let Err(err) = sim.fault(&node, kind, params) {
                self.applied.insert(index, applied);
                let undone = self.heal(index, sim, faults);
                return format!("skipped {name} on {node}: {kind}: {err} ({undone})");
            }
            faults.add(&node, kind);
            applied.kinds.push(kind);
        }
        if let ConductorEpisode::AheadThenCrash { .. } = episode {
            let peers: Vec<String> =
                sim.nodes().into_iter().map(|info| info.name).filter(|name| *name != node).collect();
            if let Err(err) = sim.partition(&[vec![node.clone()], peers]) {
                return format!("skipped {name} on {node}: partition: {err}");
            }
            faults.partitioned = true;
            applied.partitioned = true;
        }
        record.count(name);
        self.applied.insert(index, applied);
        format!("{name} on {node}: {}", serde_json::to_string(episode).unwrap_or_default())
    }

    /// The middle of "candidates behind": its node crashes, then its partition heals.
    pub(crate) fn advance(&mut self, index: usize, sim: &Simulator, faults: &mut FaultsInForce) -> String {
        let Some(applied) = self.applied.get_mut(&index).filter(|applied| applied.partitioned) else {
            return "nothing to do".into();
        };
        let (kind, params) = ConductorEpisode::crash();
        let crashed = match sim.fault(&applied.node, kind, params) {
            Ok(()) => {
                faults.add(&applied.node, kind);
                applied.kinds.push(kind);
                format!("{} crashed (op-node)", applied.node)
            }
            Err(err) => format!("{} did not crash: {err}", applied.node),
        };
        let _ = sim.partition(&[]);
        faults.partitioned = false;
        applied.partitioned = false;
        format!("{crashed}, then its partition healed: its last blocks are only in the conductor")
    }

    /// Ends the episode at schedule `index`: every fault it applied is healed.
    pub(crate) fn heal(&mut self, index: usize, sim: &Simulator, faults: &mut FaultsInForce) -> String {
        let Some(applied) = self.applied.remove(&index) else { return "nothing to heal".into() };
        if applied.partitioned {
            let _ = sim.partition(&[]);
            faults.partitioned = false;
        }
        for kind in &applied.kinds {
            let _ = sim.heal(&applied.node, Some(*kind));
            faults.remove(&applied.node, *kind);
        }
        let kinds: Vec<&str> = applied.kinds.iter().map(|kind| kind.as_str()).collect();
        format!("heal {} on {}", kinds.join(" + "), applied.node)
    }
}

/// The node `target` names now: a fixed node, or the one whose sequencer is active when it is
/// the only one and free of lasting faults.
fn resolve(sim: &Simulator, target: &NodeTarget, faults: &FaultsInForce) -> Result<String, String> {
    match target {
        NodeTarget::Node(node) => Ok(node.clone()),
        NodeTarget::Leader => {
            let active: Vec<String> =
                sim.nodes().into_iter().filter(|node| node.active).map(|node| node.name).collect();
            match active.as_slice() {
                [leader] if faults.on(leader) => Err(format!("the leader {leader} is already under a fault")),
                [leader] => Ok(leader.clone()),
                [] => Err("no node sequences".into()),
                several => Err(format!("{} nodes sequence", several.len())),
            }
        }
    }
}
