//! Fault injection on the sending side of the Raft transport, for partition tests.
//!
//! A fault applies to messages *this* replica sends: dropping to peer 2 means our requests to 2
//! fail at once as `Unreachable` (and so we never see 2's answers). A full partition between A
//! and B needs a drop on both sides. In-process tests call [`NetFaults`] directly; tests with
//! replica processes post a [`FaultSpec`] to `/fault` when `cluster.fault_injection` is on.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The faults in force, as posted to `POST /fault` (replacing the previous ones).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// Peers whose messages are dropped.
    #[serde(default)]
    pub drop_to: BTreeSet<u64>,
    /// Peers whose messages are held this many milliseconds before sending.
    #[serde(default)]
    pub delay_ms: BTreeMap<u64, u64>,
}

/// What to do with one outgoing message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FaultAction {
    Send,
    Drop,
    DelayThenSend(Duration),
}

/// Shared, cheaply cloned handle on this replica's outgoing faults.
#[derive(Debug, Clone, Default)]
pub struct NetFaults {
    spec: Arc<Mutex<FaultSpec>>,
}

impl NetFaults {
    /// Drops every message to `peer` until healed.
    pub fn drop_to(&self, peer: u64) {
        self.update(|spec| {
            spec.drop_to.insert(peer);
        });
    }

    /// Delays every message to `peer` by `delay_ms` until healed.
    pub fn delay_to(&self, peer: u64, delay_ms: u64) {
        self.update(|spec| {
            spec.delay_ms.insert(peer, delay_ms);
        });
    }

    /// Removes every fault.
    pub fn heal(&self) {
        self.set(FaultSpec::default());
    }

    /// Replaces the faults in force.
    pub fn set(&self, spec: FaultSpec) {
        self.update(|current| *current = spec);
    }

    /// The faults in force.
    pub fn current(&self) -> FaultSpec {
        self.spec.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub(crate) fn action_for(&self, peer: u64) -> FaultAction {
        let spec = self.spec.lock().unwrap_or_else(PoisonError::into_inner);
        if spec.drop_to.contains(&peer) {
            FaultAction::Drop
        } else if let Some(&ms) = spec.delay_ms.get(&peer) {
            FaultAction::DelayThenSend(Duration::from_millis(ms))
        } else {
            FaultAction::Send
        }
    }

    fn update(&self, f: impl FnOnce(&mut FaultSpec)) {
        let mut spec = self.spec.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut spec);
        tracing::info!(drop_to = ?spec.drop_to, delay_ms = ?spec.delay_ms, "network faults changed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_wins_over_delay_and_heal_clears_both() {
        let faults = NetFaults::default();
        assert_eq!(faults.action_for(2), FaultAction::Send);
        faults.delay_to(2, 30);
        assert_eq!(faults.action_for(2), FaultAction::DelayThenSend(Duration::from_millis(30)));
        faults.drop_to(2);
        assert_eq!(faults.action_for(2), FaultAction::Drop);
        assert_eq!(faults.action_for(3), FaultAction::Send);
        faults.clone().heal();
        assert_eq!(faults.action_for(2), FaultAction::Send);
    }

    #[test]
    fn spec_parses_the_documented_json() {
        let spec: FaultSpec =
            serde_json::from_str(r#"{"drop_to":[2,3],"delay_ms":{"4":50}}"#).expect("documented form parses");
        assert_eq!(spec.drop_to, BTreeSet::from([2, 3]));
        assert_eq!(spec.delay_ms, BTreeMap::from([(4, 50)]));
    }
}
