//! The environment and command-line layers: each value names a concrete key of the configuration
//! loaded so far and is parsed by that key's slot, exactly as a file value is.

use std::collections::BTreeMap;

use super::ENV_PREFIX;
use super::error::{ConfigError, Origin};
use super::keys::{Binding, KEYS, env_var_name, normalize_segment};
use super::load::{Loader, Target};
use super::render::closest;
use super::slot::{Input, Problem};

impl Loader<'_> {
    /// Every key that exists in the configuration as loaded so far, with its concrete path.
    fn concrete_keys(&self) -> Vec<(String, Target)> {
        let mut keys = Vec::new();
        for doc in KEYS {
            match &doc.binding {
                Binding::Global(slot) => keys.push((doc.path.to_owned(), Target::Global(slot))),
                Binding::Chain(slot) => {
                    for name in self.config.chains.keys() {
                        keys.push((
                            format!("chains.{name}.{}", doc.leaf()),
                            Target::Chain(name.clone(), slot),
                        ));
                    }
                }
                Binding::Sequencer(slot) => {
                    for (chain_name, chain) in &self.config.chains {
                        for node_name in chain.sequencers.keys() {
                            keys.push((
                                format!("chains.{chain_name}.sequencers.{node_name}.{}", doc.leaf()),
                                Target::Sequencer(chain_name.clone(), node_name.clone(), slot),
                            ));
                        }
                    }
                }
                Binding::Cluster(slot) => {
                    let target =
                        if self.config.cluster.is_some() { Target::Cluster(slot) } else { Target::NoCluster };
                    keys.push((doc.path.to_owned(), target));
                }
                Binding::Replica(slot) => {
                    let replicas = self.config.cluster.as_ref().map_or(0, |cluster| cluster.replicas.len());
                    for index in 0..replicas {
                        keys.push((
                            format!("cluster.replicas[{index}].{}", doc.leaf()),
                            Target::Replica(index, slot),
                        ));
                    }
                }
            }
        }
        keys
    }

    fn assign_target(&mut self, target: &Target, input: Input<'_>) -> Result<(), Problem> {
        match target {
            Target::Global(slot) => slot.assign(&mut self.config, input),
            Target::Chain(chain, slot) => match self.config.chains.get_mut(chain) {
                Some(chain) => slot.assign(chain, input),
                None => Ok(()),
            },
            Target::Sequencer(chain, node, slot) => {
                match self.config.chains.get_mut(chain).and_then(|c| c.sequencers.get_mut(node)) {
                    Some(node) => slot.assign(node, input),
                    None => Ok(()),
                }
            }
            Target::Cluster(slot) => match self.config.cluster.as_mut() {
                Some(cluster) => slot.assign(cluster, input),
                None => Ok(()),
            },
            Target::NoCluster => {
                Err(Problem::Invalid("is set, but the config has no [cluster] section".to_owned()))
            }
            Target::Replica(index, slot) => {
                match self.config.cluster.as_mut().and_then(|cluster| cluster.replicas.get_mut(*index)) {
                    Some(replica) => slot.assign(replica, input),
                    None => Ok(()),
                }
            }
        }
    }

    fn apply_one(&mut self, path: String, target: &Target, value: &str, origin: Origin) {
        match self.assign_target(target, Input::Text(value)) {
            Ok(()) => {
                tracing::debug!(key = %path, source = %origin, "configuration value overridden");
                // An error already reported for the file value still stands: the file needs
                // fixing too, or the next start without this override fails.
                self.origins.insert(path, origin);
            }
            Err(problem) => self.report(&path, problem, origin),
        }
    }

    pub(super) fn apply_env(&mut self, env: impl IntoIterator<Item = (String, String)>) {
        let mut vars: BTreeMap<String, String> =
            env.into_iter().filter(|(name, _)| name.starts_with(ENV_PREFIX)).collect();
        if vars.is_empty() {
            return;
        }
        let mut by_env_name: BTreeMap<String, Vec<(String, Target)>> = BTreeMap::new();
        for (path, target) in self.concrete_keys() {
            by_env_name.entry(env_var_name(&path)).or_default().push((path, target));
        }
        for (var, value) in std::mem::take(&mut vars) {
            let normalized = normalize_segment(&var);
            match by_env_name.get_mut(&normalized).map(std::mem::take) {
                Some(mut targets) if targets.len() == 1 => {
                    if let Some((path, target)) = targets.pop() {
                        self.apply_one(path, &target, &value, Origin::Env { var });
                    }
                }
                Some(targets) if !targets.is_empty() => {
                    self.errors.push(ConfigError::AmbiguousEnvVar {
                        var,
                        keys: targets.into_iter().map(|(path, _)| path).collect(),
                    });
                }
                _ => {
                    let suggestions = closest(&normalized, by_env_name.keys().map(String::as_str));
                    // Not a typo of an existing key: most likely a chain, node or replica the file
                    // lacks.
                    let hint = if !suggestions.is_empty() {
                        String::new()
                    } else if normalized.starts_with(&format!("{ENV_PREFIX}CHAINS__")) {
                        "; the environment can only change chains and sequencers the config file defines"
                            .to_owned()
                    } else if normalized.starts_with(&format!("{ENV_PREFIX}CLUSTER__REPLICAS__")) {
                        "; the environment can only change replicas the config file lists".to_owned()
                    } else {
                        String::new()
                    };
                    self.errors.push(ConfigError::UnknownEnvVar { var, suggestions, hint });
                }
            }
        }
    }

    pub(super) fn apply_overrides(&mut self, overrides: &[(String, String)]) {
        if overrides.is_empty() {
            return;
        }
        let mut keys: BTreeMap<String, Target> = self.concrete_keys().into_iter().collect();
        for (path, value) in overrides {
            let origin = Origin::Override { key: path.clone() };
            match keys.remove(path) {
                Some(target) => {
                    self.apply_one(path.clone(), &target, value, origin);
                    keys.insert(path.clone(), target);
                }
                None => {
                    let suggestions = closest(path, keys.keys().map(String::as_str));
                    self.errors.push(ConfigError::UnknownOverride { key: path.clone(), suggestions });
                }
            }
        }
    }
}
