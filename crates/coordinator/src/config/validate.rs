//! Range and cross-key rules (the table in the module documentation), for loaded configurations
//! (with the origin of every value) and for configurations built in code (without).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::TOML_INT_MAX;
use super::error::{ConfigError, ConfigErrors, Origin};
use super::keys::{Binding, KEYS, normalize_segment};
use super::render::is_valid_name;
use super::types::{ChainConfig, Config};
use super::windows::Windows;
use opc_cluster::ClusterConfig;

impl Config {
    /// Checks the rules of the module documentation, for configurations built in code.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut errors = Vec::new();
        Validator { config: self, origins: None, already_reported: &BTreeSet::new(), errors: &mut errors }
            .run();
        if errors.is_empty() { Ok(()) } else { Err(ConfigErrors(errors)) }
    }
}

pub(super) struct Validator<'a> {
    pub(super) config: &'a Config,
    /// `None` for configs built in code, whose values have no origin to report.
    pub(super) origins: Option<&'a BTreeMap<String, Origin>>,
    pub(super) already_reported: &'a BTreeSet<String>,
    pub(super) errors: &'a mut Vec<ConfigError>,
}

impl Validator<'_> {
    fn origin(&self, path: &str) -> Option<Origin> {
        let origins = self.origins?;
        Some(origins.get(path).cloned().unwrap_or(Origin::Default))
    }

    fn invalid(&mut self, key: &str, reason: String) {
        if self.already_reported.contains(key) {
            return;
        }
        let origin = self.origin(key);
        self.errors.push(ConfigError::Invalid { key: key.to_owned(), reason, origin });
    }

    fn check_range(&mut self, key: &str, bounded: Option<(u64, u64, u64)>) {
        let Some((value, min, max)) = bounded else {
            return;
        };
        if (min..=max).contains(&value) {
            return;
        }
        let reason = if max == TOML_INT_MAX {
            format!("must be at least {min}, got {value}")
        } else {
            format!("must be between {min} and {max}, got {value}")
        };
        self.invalid(key, reason);
    }

    pub(super) fn run(mut self) {
        let config = self.config;
        for doc in KEYS {
            if let Binding::Global(slot) = &doc.binding {
                self.check_range(doc.path, slot.bounded_value(config));
            }
        }
        if config.data_dir.as_os_str().is_empty() {
            self.invalid("data_dir", "must not be empty".to_owned());
        }
        if let Some(cluster) = &config.cluster {
            self.check_cluster(cluster);
        }
        if config.metrics.enabled
            && config.metrics.listen == config.rpc.listen
            && config.metrics.listen.port() != 0
        {
            self.invalid(
                "metrics.listen",
                format!("{} is also rpc.listen; the second server could not bind", config.metrics.listen),
            );
        }
        self.check_conductor();
        if config.health.follower_interval_ms < config.health.interval_ms {
            let reason = format!(
                "({}) must be at least health.interval_ms ({}): a calm follower is probed less often than \
                 the others, never more",
                config.health.follower_interval_ms, config.health.interval_ms
            );
            self.invalid("health.follower_interval_ms", reason);
        }
        if config.rpc.jwt_on_reads && config.rpc.jwt_secret_file.is_none() {
            let reason = "true needs rpc.jwt_secret_file (the secret reads are checked against)";
            self.invalid("rpc.jwt_on_reads", reason.to_owned());
        }
        if config.chains.is_empty() {
            self.errors.push(ConfigError::NoChains);
        }
        self.check_name_collisions(config.chains.keys(), "chains");
        // Keyed by normalized URL: the first sequencer that used it.
        let mut seen_urls: BTreeMap<String, String> = BTreeMap::new();
        for (chain_name, chain) in &config.chains {
            self.check_chain(chain_name, chain, &mut seen_urls);
        }
    }

    /// Conductor mode: one endpoint of its own; in a cluster, every replica says where its
    /// endpoint is, so the others can forward op-node's calls to whichever leads.
    fn check_conductor(&mut self) {
        let config = self.config;
        let Some(first) = config.chains.iter().find(|(_, chain)| chain.conductor).map(|(name, _)| name)
        else {
            return;
        };
        if let Some(cluster) = &config.cluster {
            for (i, replica) in cluster.replicas.iter().enumerate() {
                if replica.conductor_addr.as_deref().is_none_or(|addr| addr.trim().is_empty()) {
                    self.invalid(
                        &format!("cluster.replicas[{i}].conductor_addr"),
                        format!(
                            "is missing: chain {first} runs in conductor mode, and a replica that does not lead \
                             forwards op-node's calls to the one that does; set it to replica {}'s \
                             conductor.listen as the others reach it (host:port)",
                            replica.id
                        ),
                    );
                }
            }
        }
        let listen = config.conductor.listen;
        let taken = [
            ("rpc.listen", Some(config.rpc.listen)),
            ("metrics.listen", config.metrics.enabled.then_some(config.metrics.listen)),
        ];
        for (key, address) in taken {
            if address == Some(listen) && listen.port() != 0 {
                self.invalid(
                    "conductor.listen",
                    format!("{listen} is also {key}; the second server could not bind"),
                );
            }
        }
    }

    fn check_chain(
        &mut self,
        chain_name: &str,
        chain: &ChainConfig,
        seen_urls: &mut BTreeMap<String, String>,
    ) {
        let chain_path = format!("chains.{chain_name}");
        if !is_valid_name(chain_name) {
            self.errors.push(ConfigError::InvalidName {
                key: chain_path.clone(),
                name: chain_name.to_owned(),
                origin: self.origin(&chain_path),
            });
        }
        for doc in KEYS {
            if let Binding::Chain(slot) = &doc.binding {
                let key = format!("{chain_path}.{}", doc.leaf());
                self.check_range(&key, slot.bounded_value(chain));
            }
        }
        let block_time_key = format!("{chain_path}.block_time_ms");
        if let Some(block_time_ms) =
            chain.block_time_ms.filter(|_| !self.already_reported.contains(&block_time_key))
            && let Err(problems) = Windows::resolve(&self.config.into(), Duration::from_millis(block_time_ms))
        {
            for problem in problems {
                if self.already_reported.contains(problem.key) {
                    continue;
                }
                self.errors.push(ConfigError::WindowTooShort {
                    chain: chain_name.to_owned(),
                    window_origin: self.origin(problem.key),
                    block_time_origin: self.origin(&block_time_key),
                    problem: Box::new(problem),
                });
            }
        }
        if chain.sequencers.is_empty() {
            self.errors.push(ConfigError::NoSequencers {
                chain: chain_name.to_owned(),
                origin: self.origin(&chain_path),
            });
        } else if !chain.sequencers.values().any(|s| s.candidate) {
            self.errors.push(ConfigError::NoCandidate {
                chain: chain_name.to_owned(),
                origin: self.origin(&chain_path),
            });
        }
        let sequencers_path = format!("{chain_path}.sequencers");
        self.check_name_collisions(chain.sequencers.keys(), &sequencers_path);
        for (node_name, node) in &chain.sequencers {
            let node_path = format!("{sequencers_path}.{node_name}");
            if !is_valid_name(node_name) {
                self.errors.push(ConfigError::InvalidName {
                    key: node_path.clone(),
                    name: node_name.to_owned(),
                    origin: self.origin(&node_path),
                });
            }
            for (leaf, url) in [("op_node_url", &node.op_node_url), ("op_geth_url", &node.op_geth_url)] {
                let key = format!("{node_path}.{leaf}");
                if self.already_reported.contains(&key) {
                    continue;
                }
                if let Err(reason) = check_http_url(url) {
                    self.invalid(&key, reason);
                    continue;
                }
                // op-node and op-geth URLs share one namespace: an op-node URL reused as some
                // op-geth URL is as wrong as two equal op-node URLs.
                match seen_urls.entry(normalize_url(url)) {
                    std::collections::btree_map::Entry::Occupied(first) => {
                        let origin = self.origin(&key);
                        self.errors.push(ConfigError::DuplicateUrl {
                            key,
                            other_key: first.get().clone(),
                            url: url.clone(),
                            origin,
                        });
                    }
                    std::collections::btree_map::Entry::Vacant(slot) => {
                        slot.insert(key);
                    }
                }
            }
            if !chain.conductor && !node.conductor_allow.is_empty() {
                self.invalid(
                    &format!("{node_path}.conductor_allow"),
                    format!(
                        "is set but {chain_path}.conductor is false: the list guards the conductor endpoint \
                         only; set {chain_path}.conductor = true, or remove the key"
                    ),
                );
            }
        }
    }

    /// Ranges from [`KEYS`], then the cluster crate's rules across keys and replicas.
    fn check_cluster(&mut self, cluster: &ClusterConfig) {
        for doc in KEYS {
            match &doc.binding {
                Binding::Cluster(slot) => self.check_range(doc.path, slot.bounded_value(cluster)),
                Binding::Replica(slot) => {
                    for (index, replica) in cluster.replicas.iter().enumerate() {
                        let key = format!("cluster.replicas[{index}].{}", doc.leaf());
                        self.check_range(&key, slot.bounded_value(replica));
                    }
                }
                _ => {}
            }
        }
        for problem in cluster.problems() {
            self.invalid(&problem.key, problem.reason);
        }
    }

    /// Names equal after normalization would share env variables (and confuse dashboards).
    fn check_name_collisions<'n>(&mut self, names: impl Iterator<Item = &'n String>, parent: &str) {
        let mut seen: BTreeMap<String, &String> = BTreeMap::new();
        for name in names {
            if let Some(first) = seen.insert(normalize_segment(name), name) {
                let key = format!("{parent}.{name}");
                let origin = self.origin(&key);
                self.errors.push(ConfigError::NameCollision {
                    key,
                    other_key: format!("{parent}.{first}"),
                    origin,
                });
            }
        }
    }
}

/// Accepts `http(s)://host[:port][/path]`; the node clients cannot dial anything else.
fn check_http_url(url: &str) -> Result<(), String> {
    let complain = |what: &str| Err(format!("must be an http:// or https:// URL, got {url:?} ({what})"));
    let lower = url.to_ascii_lowercase();
    let Some(rest) = lower.strip_prefix("http://").or_else(|| lower.strip_prefix("https://")) else {
        return complain("unsupported scheme");
    };
    if url.chars().any(char::is_whitespace) {
        return complain("contains whitespace");
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        let Some((host, after)) = bracketed.split_once(']') else {
            return complain("unclosed '[' in IPv6 host");
        };
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return complain("junk after IPv6 host"),
            },
        }
    } else {
        match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return complain("no host");
    }
    if let Some(port) = port
        && port.parse::<u16>().is_err()
    {
        return complain("invalid port");
    }
    Ok(())
}

/// Scheme and host are case-insensitive and a trailing `/` changes nothing, so they must not hide
/// a duplicate.
pub(crate) fn normalize_url(url: &str) -> String {
    let trimmed = url.trim_end_matches('/');
    match trimmed.find("://") {
        Some(scheme_end) => {
            let after_scheme = scheme_end + 3;
            let authority_end =
                trimmed[after_scheme..].find(['/', '?', '#']).map_or(trimmed.len(), |i| after_scheme + i);
            format!("{}{}", trimmed[..authority_end].to_ascii_lowercase(), &trimmed[authority_end..])
        }
        None => trimmed.to_owned(),
    }
}
