//! Stored state vs config: the node names a chain's durable state holds (its leader, its fenced
//! nodes, the nodes of a fail-over in progress) against the sequencers of the config the
//! coordinator runs with now.
//!
//! An operator may rename a node in the config, or remove it, between two runs. Acting on a
//! stored name the config does not have is dangerous: inspection takes the real active
//! sequencer, now under another name, for a second sequencer and stops it, while the stored
//! leader is nowhere to be probed and nothing is elected. So whenever a coordinator starts acting
//! on a chain (start-up, or a replica that becomes the acting leader), each stored name is checked
//! against the config by the op-node URL the state recorded for it ([`ChainState::node_urls`]):
//!
//! | stored name    | recorded op-node URL                              | result                                                    |
//! |----------------|---------------------------------------------------|-----------------------------------------------------------|
//! | configured     | none, or the URL the config gives it               | kept                                                      |
//! | any            | the configured URL of another node                 | renamed to that node (event `stored_node_renamed`)        |
//! | not configured | none (a state written before URLs were recorded)  | stale                                                     |
//! | any            | a URL no configured node has                       | stale (removed, or moved: the old process may still run)  |
//! | any            | renamed onto a node the state names under another name too | stale                                            |
//!
//! Renames are applied and persisted at once. While any name is stale the chain is refused: the
//! coordinator probes it and reports it, but decides nothing, stops nothing and starts nothing
//! (the real active sequencer keeps producing), and says so in its log, its status and
//! `/readyz`, naming the stale names and the command that resolves them:
//! `op-coordinator ctl forget-stale-nodes` ([`forget_stale`]). That drops the stale names after
//! checking that no sequencer outside the config appears to produce blocks:
//!
//! | phase                          | a stale name is                 | becomes                                              |
//! |--------------------------------|---------------------------------|------------------------------------------------------|
//! | any                            | fenced                          | no longer fenced                                     |
//! | steady                         | the leader                      | discovering: adopt the active sequencer, or elect    |
//! | stopping                       | the node being stopped          | discovering                                          |
//! | stopping, catching up          | the hand-over target            | the same phase without a target                      |
//! | catching up                    | the stopped old leader          | leaderless, stopped hash kept: a node must reach it  |
//! | starting                       | the node being started          | discovering                                          |
//! | starting                       | the old leader to fall back to  | starting without one                                 |
//!
//! Everything here is pure: the actor calls it with the state it loaded and the URLs of its
//! config, and persists and reports what comes back.

use crate::{
    config::normalize_url,
    state::{ChainState, Phase},
};
use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    time::Duration,
};

/// Node name to op-node URL.
pub type NodeUrls = BTreeMap<String, String>;

/// What a stored name stands for in the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// The leader.
    Leader,
    /// A deposed leader that must be stopped when it answers.
    Fenced,
    /// The node a fail-over or hand-over is stopping.
    Stopping,
    /// The node an operator's hand-over goes to.
    HandoverTarget,
    /// The node being started.
    Starting,
    /// The stopped old leader, restarted if no candidate takes over.
    OldLeader,
}

impl Role {
    fn text(self) -> &'static str {
        match self {
            Self::Leader => "leader",
            Self::Fenced => "fenced node",
            Self::Stopping => "node being stopped",
            Self::HandoverTarget => "hand-over target",
            Self::Starting => "node being started",
            Self::OldLeader => "old leader of the fail-over in progress",
        }
    }
}

/// `leader and fenced node`.
struct Roles<'a>(&'a [Role]);

impl fmt::Display for Roles<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let texts: Vec<&str> = self.0.iter().map(|role| role.text()).collect();
        f.write_str(&texts.join(" and "))
    }
}

/// A stored name found again under another name by its op-node URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rename {
    /// The stored name.
    pub from: String,
    /// The configured name with the same op-node URL.
    pub to: String,
    /// What `from` stands for in the state.
    pub roles: Vec<Role>,
    /// The op-node URL both share.
    pub url: String,
}

impl fmt::Display for Rename {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stored {} {} is now {} (same op-node URL {})",
            Roles(&self.roles),
            self.from,
            self.to,
            self.url
        )
    }
}

/// Why a stored name cannot be matched to the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Staleness {
    /// Not configured, and the state recorded no URL to find it by.
    NoUrlRecorded,
    /// Its recorded op-node URL belongs to no configured node.
    UrlNotConfigured {
        /// The recorded URL.
        url: String,
    },
    /// Configured under the same name at another URL: the process at the old URL may still run.
    Moved {
        /// The recorded URL.
        stored_url: String,
        /// The URL the config gives it now.
        configured_url: String,
    },
    /// Its URL is now `with`'s, which the state also names under that name.
    Collides {
        /// The configured node both would become.
        with: String,
    },
}

/// A stored name that matches nothing in the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stale {
    /// The stored name.
    pub name: String,
    /// What it stands for in the state.
    pub roles: Vec<Role>,
    /// Why it matches nothing.
    pub why: Staleness,
}

impl fmt::Display for Stale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): ", self.name, Roles(&self.roles))?;
        match &self.why {
            Staleness::NoUrlRecorded => {
                f.write_str("not in the config, and the state recorded no op-node URL to find it by")
            }
            Staleness::UrlNotConfigured { url } => {
                write!(f, "not in the config at its op-node URL {url}, and no configured sequencer has it")
            }
            Staleness::Moved { stored_url, configured_url } => write!(
                f,
                "recorded at op-node URL {stored_url}, configured now at {configured_url}; the process at \
                 the old URL may still run"
            ),
            Staleness::Collides { with } => {
                write!(f, "its op-node URL is now {with}'s, which the state also names as {with}")
            }
        }
    }
}

/// How the stored names map onto the config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Names found again under another name.
    pub renames: Vec<Rename>,
    /// Names that match nothing.
    pub stale: Vec<Stale>,
}

/// Matches every name `state` holds against `configured` (see the module's first table).
pub fn plan(state: &ChainState, configured: &NodeUrls) -> Plan {
    let mut renames = Vec::new();
    let mut stale = Vec::new();
    // Names that stay as they are, to catch a rename onto one of them.
    let mut kept = BTreeSet::new();
    for (name, roles) in referenced(state) {
        let stored_url = state.node_urls.get(&name);
        let configured_url = configured.get(&name);
        let why = match (stored_url, configured_url) {
            (None, Some(_)) => None,
            (None, None) => Some(Staleness::NoUrlRecorded),
            (Some(stored), configured_url) => match owner_of(configured, stored) {
                Some(owner) if owner == name => None,
                Some(owner) => {
                    renames.push(Rename { from: name, to: owner.to_owned(), roles, url: stored.clone() });
                    continue;
                }
                None => Some(match configured_url {
                    Some(now) => Staleness::Moved { stored_url: stored.clone(), configured_url: now.clone() },
                    None => Staleness::UrlNotConfigured { url: stored.clone() },
                }),
            },
        };
        match why {
            None => {
                kept.insert(name);
            }
            Some(why) => stale.push(Stale { name, roles, why }),
        }
    }
    // Two stored names becoming one node would merge, say, a leader with a fenced node.
    let mut targets: BTreeMap<String, usize> = BTreeMap::new();
    for rename in &renames {
        *targets.entry(rename.to.clone()).or_default() += 1;
    }
    let (clashing, renames): (Vec<Rename>, Vec<Rename>) =
        renames.into_iter().partition(|rename| kept.contains(&rename.to) || targets[&rename.to] > 1);
    stale.extend(clashing.into_iter().map(|rename| Stale {
        name: rename.from,
        roles: rename.roles,
        why: Staleness::Collides { with: rename.to },
    }));
    Plan { renames, stale }
}

/// `state` with `plan`'s renames applied and the URLs of `configured` recorded: what to persist
/// when nothing is stale.
pub fn renamed(state: &ChainState, plan: &Plan, configured: &NodeUrls) -> ChainState {
    let map: BTreeMap<&str, &str> =
        plan.renames.iter().map(|rename| (rename.from.as_str(), rename.to.as_str())).collect();
    let rename = |name: &String| map.get(name.as_str()).map_or_else(|| name.clone(), |to| (*to).to_owned());
    let mut next = state.clone();
    next.leader = state.leader.as_ref().map(rename);
    next.fenced = state.fenced.iter().map(rename).collect();
    next.phase = match &state.phase {
        Phase::Stopping { from, target } => {
            Phase::Stopping { from: rename(from), target: target.as_ref().map(rename) }
        }
        Phase::CatchingUp { from, target } => {
            Phase::CatchingUp { from: rename(from), target: target.as_ref().map(rename) }
        }
        Phase::Starting { target, from } => {
            Phase::Starting { target: rename(target), from: from.as_ref().map(rename) }
        }
        other => other.clone(),
    };
    next.node_urls = configured.clone();
    next
}

/// Why the stale names were not forgotten.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForgetError {
    /// Every stored name matches the config.
    #[error("nothing to forget: every node the stored state names is in the config")]
    NothingStale,
    /// Heads advance while no configured node sequences.
    #[error(
        "not forgetting {names}: a sequencer the config does not name seems to produce blocks (no \
         configured node is sequencing, but a head advanced {head_age_ms} ms ago). Stop it, or put it \
         back in the config, then run forget-stale-nodes again"
    )]
    UnseenSequencer {
        /// The stale names.
        names: String,
        /// How long ago a configured node's head last advanced.
        head_age_ms: u64,
    },
}

/// What [`forget_stale`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forgotten {
    /// The state to persist.
    pub state: ChainState,
    /// The names dropped.
    pub names: Vec<String>,
    /// Renames applied along with it.
    pub renames: Vec<Rename>,
}

/// Drops the stale names from `state` (see the module's second table), applies its renames and
/// records the URLs of `configured`. `unseen_head_age` is how long ago a configured node's head
/// advanced, given only when none of them sequences and it is within the liveness window: then
/// someone outside the config may be the real leader, and forgetting would elect a second one.
pub fn forget_stale(
    state: &ChainState,
    configured: &NodeUrls,
    unseen_head_age: Option<Duration>,
) -> Result<Forgotten, ForgetError> {
    let plan = plan(state, configured);
    if plan.stale.is_empty() {
        return Err(ForgetError::NothingStale);
    }
    let names: Vec<String> = plan.stale.iter().map(|stale| stale.name.clone()).collect();
    if let Some(age) = unseen_head_age {
        return Err(ForgetError::UnseenSequencer {
            names: names.join(", "),
            head_age_ms: u64::try_from(age.as_millis()).unwrap_or(u64::MAX),
        });
    }
    let gone: BTreeSet<&str> = names.iter().map(String::as_str).collect();
    let state = renamed(&without(state, &gone), &plan, configured);
    Ok(Forgotten { state, names, renames: plan.renames })
}

/// `state` without the names in `gone`.
fn without(state: &ChainState, gone: &BTreeSet<&str>) -> ChainState {
    let is_gone = |name: &String| gone.contains(name.as_str());
    let keep = |name: &Option<String>| name.clone().filter(|name| !is_gone(name));
    let mut next = state.clone();
    next.fenced.retain(|name| !is_gone(name));
    let leader_gone = state.leader.as_ref().is_some_and(is_gone);
    next.phase = match &state.phase {
        Phase::Steady if leader_gone => Phase::Discovering,
        Phase::Stopping { from, .. } if is_gone(from) => Phase::Discovering,
        Phase::Stopping { from, target } => Phase::Stopping { from: from.clone(), target: keep(target) },
        // The old leader stopped at the stopped hash: a node must still reach it.
        Phase::CatchingUp { from, .. } if is_gone(from) => Phase::Leaderless,
        Phase::CatchingUp { from, target } => Phase::CatchingUp { from: from.clone(), target: keep(target) },
        Phase::Starting { target, .. } if is_gone(target) => Phase::Discovering,
        Phase::Starting { target, from } => Phase::Starting { target: target.clone(), from: keep(from) },
        other => other.clone(),
    };
    if leader_gone || matches!(next.phase, Phase::Discovering | Phase::Leaderless) {
        next.leader = None;
    }
    if !matches!(next.phase, Phase::CatchingUp { .. }) {
        next.catch_up_deadline_unix_ms = None;
    }
    next
}

/// Every name `state` holds, with what it stands for.
fn referenced(state: &ChainState) -> BTreeMap<String, Vec<Role>> {
    let mut names: BTreeMap<String, Vec<Role>> = BTreeMap::new();
    let mut add = |name: &String, role: Role| {
        let roles = names.entry(name.clone()).or_default();
        if !roles.contains(&role) {
            roles.push(role);
        }
    };
    if let Some(leader) = &state.leader {
        add(leader, Role::Leader);
    }
    for name in &state.fenced {
        add(name, Role::Fenced);
    }
    match &state.phase {
        Phase::Stopping { from, target } | Phase::CatchingUp { from, target } => {
            let role =
                if matches!(state.phase, Phase::Stopping { .. }) { Role::Stopping } else { Role::OldLeader };
            add(from, role);
            if let Some(target) = target {
                add(target, Role::HandoverTarget);
            }
        }
        Phase::Starting { target, from } => {
            add(target, Role::Starting);
            if let Some(from) = from {
                add(from, Role::OldLeader);
            }
        }
        Phase::Discovering | Phase::Steady | Phase::Leaderless => {}
    }
    names
}

/// The configured node whose op-node URL is `url`.
fn owner_of<'a>(configured: &'a NodeUrls, url: &str) -> Option<&'a str> {
    let wanted = normalize_url(url);
    configured.iter().find(|(_, candidate)| normalize_url(candidate) == wanted).map(|(name, _)| name.as_str())
}

/// The refusal of a chain whose stored state names nodes the config does not have, as the log,
/// the status and `/readyz` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal<'a> {
    /// The chain.
    pub chain: &'a str,
    /// The names that match nothing.
    pub stale: &'a [Stale],
}

impl fmt::Display for Refusal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let chain = self.chain;
        let each: Vec<String> = self.stale.iter().map(Stale::to_string).collect();
        write!(
            f,
            "not acting on chain {chain} (probing only): the stored state names {}. If that node is \
             decommissioned and not sequencing, run `op-coordinator ctl forget-stale-nodes --chain {chain}`; \
             otherwise put it back in [chains.{chain}.sequencers] at its op-node URL and restart",
            each.join("; ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "http://10.0.0.1:9545";
    const B: &str = "http://10.0.0.2:9545";
    const C: &str = "http://10.0.0.3:9545";

    fn urls(pairs: &[(&str, &str)]) -> NodeUrls {
        pairs.iter().map(|(name, url)| ((*name).to_owned(), (*url).to_owned())).collect()
    }

    fn steady(leader: &str, fenced: &[&str], recorded: &[(&str, &str)]) -> ChainState {
        ChainState {
            leader: Some(leader.to_owned()),
            phase: Phase::Steady,
            epoch: 3,
            fenced: fenced.iter().map(|name| (*name).to_owned()).collect(),
            node_urls: urls(recorded),
            ..ChainState::default()
        }
    }

    fn rename(from: &str, to: &str, roles: &[Role], url: &str) -> Rename {
        Rename { from: from.into(), to: to.into(), roles: roles.to_vec(), url: url.into() }
    }

    #[test]
    fn names_the_config_has_at_their_recorded_urls_are_kept_and_the_urls_recorded() {
        let state = steady("seq-0", &["seq-1"], &[("seq-0", A), ("seq-1", B)]);
        let configured = urls(&[("seq-0", A), ("seq-1", B), ("seq-2", C)]);
        let plan = plan(&state, &configured);
        assert_eq!(plan, Plan::default());
        let next = renamed(&state, &plan, &configured);
        assert_eq!(next, ChainState { node_urls: configured, ..state });
    }

    #[test]
    fn a_state_written_before_urls_were_recorded_keeps_the_names_the_config_has() {
        let state = steady("seq-0", &[], &[]);
        assert_eq!(plan(&state, &urls(&[("seq-0", A), ("seq-1", B)])), Plan::default());
    }

    #[test]
    fn a_renamed_leader_is_found_by_its_op_node_url() {
        let state = steady("seq-0", &[], &[("seq-0", A), ("seq-1", B)]);
        let configured = urls(&[("node-0", "HTTP://10.0.0.1:9545/"), ("seq-1", B)]);
        let plan = plan(&state, &configured);
        assert_eq!(plan.renames, [rename("seq-0", "node-0", &[Role::Leader], A)]);
        assert!(plan.stale.is_empty());
        assert_eq!(
            plan.renames[0].to_string(),
            "stored leader seq-0 is now node-0 (same op-node URL http://10.0.0.1:9545)"
        );
        let next = renamed(&state, &plan, &configured);
        assert_eq!(next.leader.as_deref(), Some("node-0"));
        assert_eq!(next.node_urls, configured);
    }

    #[test]
    fn renames_reach_fenced_nodes_and_every_node_of_a_fail_over_in_progress() {
        let state = ChainState {
            leader: Some("seq-0".into()),
            phase: Phase::Stopping { from: "seq-0".into(), target: Some("seq-1".into()) },
            fenced: ["seq-2".to_owned()].into(),
            node_urls: urls(&[("seq-0", A), ("seq-1", B), ("seq-2", C)]),
            ..ChainState::default()
        };
        let configured = urls(&[("n0", A), ("n1", B), ("n2", C)]);
        let plan = plan(&state, &configured);
        assert!(plan.stale.is_empty(), "{plan:?}");
        assert_eq!(
            plan.renames,
            [
                rename("seq-0", "n0", &[Role::Leader, Role::Stopping], A),
                rename("seq-1", "n1", &[Role::HandoverTarget], B),
                rename("seq-2", "n2", &[Role::Fenced], C),
            ]
        );
        let next = renamed(&state, &plan, &configured);
        assert_eq!(next.leader.as_deref(), Some("n0"));
        assert_eq!(next.phase, Phase::Stopping { from: "n0".into(), target: Some("n1".into()) });
        assert_eq!(next.fenced, ["n2".to_owned()].into());

        let starting = ChainState {
            phase: Phase::Starting { target: "seq-1".into(), from: Some("seq-0".into()) },
            leader: None,
            fenced: Default::default(),
            ..state
        };
        let next = renamed(&starting, &super::plan(&starting, &configured), &configured);
        assert_eq!(next.phase, Phase::Starting { target: "n1".into(), from: Some("n0".into()) });
    }

    #[test]
    fn two_configured_names_that_swapped_urls_swap_in_the_state_too() {
        let state = steady("seq-0", &["seq-1"], &[("seq-0", A), ("seq-1", B)]);
        let configured = urls(&[("seq-0", B), ("seq-1", A)]);
        let plan = plan(&state, &configured);
        assert!(plan.stale.is_empty(), "{plan:?}");
        let next = renamed(&state, &plan, &configured);
        assert_eq!(next.leader.as_deref(), Some("seq-1"));
        assert_eq!(next.fenced, ["seq-0".to_owned()].into());
    }

    #[test]
    fn a_removed_leader_is_stale_and_the_refusal_names_it_and_the_command() {
        let state = steady("seq-0", &[], &[("seq-0", A), ("seq-1", B)]);
        let plan = plan(&state, &urls(&[("seq-1", B), ("seq-2", C)]));
        assert!(plan.renames.is_empty());
        assert_eq!(
            plan.stale,
            [Stale {
                name: "seq-0".into(),
                roles: vec![Role::Leader],
                why: Staleness::UrlNotConfigured { url: A.into() }
            }]
        );
        let text = Refusal { chain: "main", stale: &plan.stale }.to_string();
        assert!(
            text.contains("seq-0 (leader): not in the config at its op-node URL http://10.0.0.1:9545"),
            "{text}"
        );
        assert!(text.contains("`op-coordinator ctl forget-stale-nodes --chain main`"), "{text}");
        assert!(!text.contains("Some("), "{text}");
    }

    #[test]
    fn a_missing_name_without_a_recorded_url_or_a_moved_one_is_stale() {
        let state = steady("seq-0", &["seq-1"], &[("seq-1", B)]);
        let plan = plan(&state, &urls(&[("seq-1", C), ("seq-2", A)]));
        assert_eq!(
            plan.stale,
            [
                Stale { name: "seq-0".into(), roles: vec![Role::Leader], why: Staleness::NoUrlRecorded },
                Stale {
                    name: "seq-1".into(),
                    roles: vec![Role::Fenced],
                    why: Staleness::Moved { stored_url: B.into(), configured_url: C.into() }
                },
            ]
        );
    }

    #[test]
    fn a_rename_onto_a_node_the_state_names_already_is_stale() {
        // seq-0 was recorded at A; the config gives A to seq-1, which the state also names.
        let state = steady("seq-0", &["seq-1"], &[("seq-0", A)]);
        let plan = plan(&state, &urls(&[("seq-1", A)]));
        assert!(plan.renames.is_empty());
        assert_eq!(
            plan.stale,
            [Stale {
                name: "seq-0".into(),
                roles: vec![Role::Leader],
                why: Staleness::Collides { with: "seq-1".into() }
            }]
        );
    }

    #[test]
    fn forgetting_a_removed_leader_of_a_steady_chain_rediscovers() {
        let state = steady("seq-0", &[], &[("seq-0", A), ("seq-1", B)]);
        let configured = urls(&[("seq-1", B), ("seq-2", C)]);
        let forgotten = forget_stale(&state, &configured, None).expect("forgets");
        assert_eq!(forgotten.names, ["seq-0"]);
        assert_eq!(
            forgotten.state,
            ChainState { leader: None, phase: Phase::Discovering, node_urls: configured, ..state }
        );
    }

    #[test]
    fn forgetting_is_refused_while_heads_advance_without_a_configured_sequencer() {
        let state = steady("seq-0", &[], &[("seq-0", A)]);
        let configured = urls(&[("seq-1", B)]);
        let err = forget_stale(&state, &configured, Some(Duration::from_millis(120))).expect_err("refused");
        assert_eq!(err, ForgetError::UnseenSequencer { names: "seq-0".into(), head_age_ms: 120 });
        assert!(err.to_string().contains("Stop it, or put it back in the config"), "{err}");
        let state = steady("seq-1", &[], &[("seq-1", B)]);
        assert_eq!(forget_stale(&state, &configured, None), Err(ForgetError::NothingStale));
    }

    #[test]
    fn forgetting_a_removed_fenced_node_keeps_the_leader_and_applies_renames_too() {
        let state = steady("seq-0", &["seq-2"], &[("seq-0", A), ("seq-2", C)]);
        let configured = urls(&[("node-0", A), ("seq-1", B)]);
        let forgotten = forget_stale(&state, &configured, None).expect("forgets");
        assert_eq!(forgotten.names, ["seq-2"]);
        assert_eq!(forgotten.renames, [rename("seq-0", "node-0", &[Role::Leader], A)]);
        assert_eq!(
            forgotten.state,
            ChainState {
                leader: Some("node-0".into()),
                fenced: Default::default(),
                node_urls: configured,
                ..state
            }
        );
    }

    #[test]
    fn forgetting_the_nodes_of_a_fail_over_in_progress_leaves_a_safe_phase() {
        let configured = urls(&[("seq-1", B)]);
        let recorded = [("seq-0", A), ("seq-2", C)];
        let base = ChainState { node_urls: urls(&recorded), ..ChainState::default() };
        let case = |leader: Option<&str>, phase: Phase| ChainState {
            leader: leader.map(str::to_owned),
            phase,
            catch_up_deadline_unix_ms: Some(5),
            ..base.clone()
        };
        let forget = |state: ChainState| forget_stale(&state, &configured, None).expect("forgets").state;
        let stopping = forget(case(Some("seq-0"), Phase::Stopping { from: "seq-0".into(), target: None }));
        assert_eq!((stopping.leader, stopping.phase), (None, Phase::Discovering));
        let catching_up = forget(case(None, Phase::CatchingUp { from: "seq-0".into(), target: None }));
        assert_eq!((catching_up.phase, catching_up.catch_up_deadline_unix_ms), (Phase::Leaderless, None));
        let to_removed_target =
            forget(case(None, Phase::CatchingUp { from: "seq-1".into(), target: Some("seq-2".into()) }));
        assert_eq!(to_removed_target.phase, Phase::CatchingUp { from: "seq-1".into(), target: None });
        assert_eq!(to_removed_target.catch_up_deadline_unix_ms, Some(5), "the countdown runs on");
        let starting_removed = forget(case(None, Phase::Starting { target: "seq-0".into(), from: None }));
        assert_eq!(starting_removed.phase, Phase::Discovering);
        let starting_from_removed =
            forget(case(None, Phase::Starting { target: "seq-1".into(), from: Some("seq-0".into()) }));
        assert_eq!(starting_from_removed.phase, Phase::Starting { target: "seq-1".into(), from: None });
    }
}
