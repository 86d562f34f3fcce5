//! Reading the file: a spanned TOML tree walked key by key, driven by [`KEYS`], so every unknown
//! key, wrong type and missing value is reported at once with its line.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::error::{ConfigError, ConfigErrors, Origin};
use super::keys::{Binding, KEYS, Section, section_keys, unfilled_cluster, unfilled_replica};
use super::render::closest;
use super::slot::{Input, Problem, Slot, describe_toml};
use super::types::{ChainConfig, Config, SequencerConfig};
use super::validate::Validator;
use opc_cluster::{ClusterConfig, ReplicaConfig};

impl Config {
    /// Reads `path`, applies `env` (normally `std::env::vars()`) and `overrides` (dotted key,
    /// value) from command-line flags, and validates the result.
    ///
    /// Besides [`Config::from_toml_str`], this checks that a configured JWT secret file is
    /// readable and well-formed, so a typo in its path fails at start-up rather than at the first
    /// authenticated call.
    pub fn load(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &[(String, String)],
    ) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigErrors(vec![ConfigError::ReadFile { path: path.to_owned(), source }]))?;
        let (config, mut errors) = load_layers(&text, Some(path), env, overrides);
        if !errors.iter().any(|e| e.key() == Some("rpc.jwt_secret_file"))
            && let Err(error) = config.rpc.read_jwt_secret()
        {
            errors.push(error);
        }
        if errors.is_empty() { Ok(config) } else { Err(ConfigErrors(errors)) }
    }

    /// Parses `text`, applies `env` and `overrides` as [`Config::load`] does, and validates.
    /// Performs no I/O.
    pub fn from_toml_str(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &[(String, String)],
    ) -> Result<Config, ConfigErrors> {
        let (config, errors) = load_layers(text, None, env, overrides);
        if errors.is_empty() { Ok(config) } else { Err(ConfigErrors(errors)) }
    }
}

/// error list is empty.
fn load_layers(
    text: &str,
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
    overrides: &[(String, String)],
) -> (Config, Vec<ConfigError>) {
    let mut loader = Loader {
        text,
        file: file.map(Path::to_path_buf),
        config: Config::default(),
        origins: BTreeMap::new(),
        errors: Vec::new(),
        already_reported: BTreeSet::new(),
    };
    let (root, syntax_errors) = DeTable::parse_recoverable(text);
    if !syntax_errors.is_empty() {
        // The recovered tree is a guess; checking it would report phantom problems. After the
        // first error on a line the parser's recovery mostly reports its own confusion, so only
        // the first error of each line is kept.
        let mut lines_seen = BTreeSet::new();
        let errors = syntax_errors
            .iter()
            .filter_map(|e| {
                let (line, column) = line_column(text, e.span().map_or(0, |s| s.start));
                lines_seen.insert(line).then(|| ConfigError::Syntax {
                    file: loader.file.clone(),
                    line,
                    column,
                    message: e.message().trim().replace('\n', "; "),
                })
            })
            .collect();
        return (loader.config, errors);
    }
    loader.walk_root(root.get_ref());
    // Sorting by line reads like the file; the walk itself visits keys alphabetically.
    loader.errors.sort_by_key(|e| match e {
        ConfigError::UnknownKey { origin: Origin::File { line, .. }, .. }
        | ConfigError::WrongType { origin: Some(Origin::File { line, .. }), .. }
        | ConfigError::Missing { origin: Some(Origin::File { line, .. }), .. }
        | ConfigError::Invalid { origin: Some(Origin::File { line, .. }), .. } => *line,
        _ => usize::MAX,
    });
    loader.apply_env(env);
    loader.apply_overrides(overrides);
    let mut errors = loader.errors;
    Validator {
        config: &loader.config,
        origins: Some(&loader.origins),
        already_reported: &loader.already_reported,
        errors: &mut errors,
    }
    .run();
    (loader.config, errors)
}

/// 1-based line and column of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// A concrete key an override can address.
pub(super) enum Target {
    Global(&'static Slot<Config>),
    Chain(String, &'static Slot<ChainConfig>),
    Sequencer(String, String, &'static Slot<SequencerConfig>),
    Cluster(&'static Slot<ClusterConfig>),
    /// A `[cluster]` key while the configuration has no `[cluster]`: setting it is an error that
    /// says so, rather than "unknown key".
    NoCluster,
    Replica(usize, &'static Slot<ReplicaConfig>),
}

pub(super) struct Loader<'t> {
    text: &'t str,
    file: Option<PathBuf>,
    pub(super) config: Config,
    /// Where the value of each key (and the header of each chain/sequencer table) came from.
    pub(super) origins: BTreeMap<String, Origin>,
    pub(super) errors: Vec<ConfigError>,
    /// Keys that already have an error, so validation does not report them twice.
    pub(super) already_reported: BTreeSet<String>,
}

type DeEntry<'a, 'i> = (&'a Spanned<std::borrow::Cow<'i, str>>, &'a Spanned<DeValue<'i>>);

impl Loader<'_> {
    fn file_origin(&self, span: std::ops::Range<usize>) -> Origin {
        Origin::File { path: self.file.clone(), line: line_column(self.text, span.start).0 }
    }

    pub(super) fn report(&mut self, key: &str, problem: Problem, origin: Origin) {
        self.already_reported.insert(key.to_owned());
        self.errors.push(match problem {
            Problem::WrongType { expected, got } => {
                ConfigError::WrongType { key: key.to_owned(), expected, got, origin: Some(origin) }
            }
            Problem::Invalid(reason) => {
                ConfigError::Invalid { key: key.to_owned(), reason, origin: Some(origin) }
            }
        });
    }

    fn unknown_key(&mut self, key: String, siblings: Vec<String>, origin: Origin) {
        let mut suggestions = closest(&key, siblings.iter().map(String::as_str));
        if suggestions.is_empty() {
            // Right key, wrong section: `interval_ms` at the top level, say.
            let leaf = key.rsplit('.').next().unwrap_or(&key);
            suggestions = KEYS
                .iter()
                .filter(|doc| matches!(doc.binding, Binding::Global(_)) && doc.leaf() == leaf)
                .map(|doc| doc.path.to_owned())
                .collect();
        }
        self.already_reported.insert(key.clone());
        self.errors.push(ConfigError::UnknownKey { key, suggestions, origin });
    }

    /// Expects `value` to be a table; reports and returns `None` otherwise.
    fn expect_table<'a, 'i>(
        &mut self,
        key: &str,
        value: &'a Spanned<DeValue<'i>>,
    ) -> Option<&'a DeTable<'i>> {
        match value.get_ref() {
            DeValue::Table(table) => Some(table),
            other => {
                let origin = self.file_origin(value.span());
                self.report(
                    key,
                    Problem::WrongType { expected: "a table", got: describe_toml(other) },
                    origin,
                );
                None
            }
        }
    }

    fn walk_root(&mut self, root: &DeTable<'_>) {
        for (key, value) in root.iter() {
            let name = key.get_ref().as_ref();
            if name == "chains" {
                self.walk_chains(value);
            } else if name == "cluster" {
                self.walk_cluster((key, value));
            } else {
                self.walk_global(name.to_owned(), (key, value));
            }
        }
    }

    /// Walks the global (non-chain) part of the tree, driven by the paths in [`KEYS`].
    fn walk_global(&mut self, path: String, (key, value): DeEntry<'_, '_>) {
        let globals = || {
            KEYS.iter().filter_map(|doc| match &doc.binding {
                Binding::Global(slot) => Some((doc.path, slot)),
                _ => None,
            })
        };
        if let Some((_, slot)) = globals().find(|(p, _)| *p == path) {
            let origin = self.file_origin(value.span());
            match slot.assign(&mut self.config, Input::Toml(value.get_ref())) {
                Ok(()) => {
                    self.origins.insert(path, origin);
                }
                Err(problem) => self.report(&path, problem, origin),
            }
            return;
        }
        let prefix = format!("{path}.");
        if globals().any(|(p, _)| p.starts_with(&prefix)) {
            let Some(table) = self.expect_table(&path, value) else {
                return;
            };
            for (child_key, child_value) in table.iter() {
                let child = format!("{prefix}{}", child_key.get_ref());
                self.walk_global(child, (child_key, child_value));
            }
            return;
        }
        // Unknown: suggest among the keys that could have been meant at this level.
        let parent = path.rsplit_once('.').map_or("", |(p, _)| p);
        let mut siblings: BTreeSet<String> = globals()
            .filter_map(|(p, _)| {
                let rest = if parent.is_empty() { p } else { p.strip_prefix(parent)?.strip_prefix('.')? };
                let child = rest.split('.').next()?;
                Some(if parent.is_empty() { child.to_owned() } else { format!("{parent}.{child}") })
            })
            .collect();
        if parent.is_empty() {
            siblings.extend(["chains".to_owned(), "cluster".to_owned()]);
        }
        let origin = self.file_origin(key.span());
        self.unknown_key(path, siblings.into_iter().collect(), origin);
    }

    /// Fills `target` from the keys of the table at `path` through the slots of section `T`:
    /// every unknown key and every missing required key is reported. Keys named in `nested` are
    /// sub-tables the caller walks itself; they are returned, not reported.
    fn fill_section<'a, 'i, T: Section>(
        &mut self,
        path: &str,
        (key, value): (&Spanned<std::borrow::Cow<'i, str>>, &'a Spanned<DeValue<'i>>),
        target: &mut T,
        nested: &[&str],
    ) -> Vec<DeEntry<'a, 'i>> {
        let table_origin = self.file_origin(key.span());
        self.origins.insert(path.to_owned(), table_origin.clone());
        let Some(table) = self.expect_table(path, value) else {
            // The whole table is wrong; its fields are not worth a second round of errors.
            for (doc, _) in section_keys::<T>().filter(|(doc, _)| doc.required()) {
                self.already_reported.insert(format!("{path}.{}", doc.leaf()));
            }
            return Vec::new();
        };
        let mut seen = BTreeSet::new();
        let mut sub_tables = Vec::new();
        for (key, value) in table.iter() {
            let leaf = key.get_ref().as_ref();
            let key_path = format!("{path}.{leaf}");
            if nested.contains(&leaf) {
                sub_tables.push((key, value));
            } else if let Some((_, slot)) = section_keys::<T>().find(|(doc, _)| doc.leaf() == leaf) {
                seen.insert(leaf.to_owned());
                let origin = self.file_origin(value.span());
                match slot.assign(target, Input::Toml(value.get_ref())) {
                    Ok(()) => {
                        self.origins.insert(key_path, origin);
                    }
                    Err(problem) => self.report(&key_path, problem, origin),
                }
            } else {
                let siblings = section_keys::<T>()
                    .map(|(doc, _)| doc.leaf())
                    .chain(nested.iter().copied())
                    .map(|l| format!("{path}.{l}"))
                    .collect();
                let origin = self.file_origin(key.span());
                self.unknown_key(key_path, siblings, origin);
            }
        }
        for (doc, _) in section_keys::<T>().filter(|(doc, _)| doc.required()) {
            if !seen.contains(doc.leaf()) {
                let key = format!("{path}.{}", doc.leaf());
                self.already_reported.insert(key.clone());
                self.errors.push(ConfigError::Missing { key, origin: Some(table_origin.clone()) });
            }
        }
        sub_tables
    }

    fn walk_chains(&mut self, value: &Spanned<DeValue<'_>>) {
        let Some(chains) = self.expect_table("chains", value) else {
            return;
        };
        for chain_entry in chains.iter() {
            let chain_name = chain_entry.0.get_ref().to_string();
            let chain_path = format!("chains.{chain_name}");
            let mut chain = ChainConfig::default();
            for (_, sequencers) in self.fill_section(&chain_path, chain_entry, &mut chain, &["sequencers"]) {
                self.walk_sequencers(&chain_path, sequencers, &mut chain);
            }
            self.config.chains.insert(chain_name, chain);
        }
    }

    fn walk_sequencers(&mut self, chain_path: &str, value: &Spanned<DeValue<'_>>, chain: &mut ChainConfig) {
        let sequencers_path = format!("{chain_path}.sequencers");
        let Some(nodes) = self.expect_table(&sequencers_path, value) else {
            return;
        };
        for node_entry in nodes.iter() {
            let node_name = node_entry.0.get_ref().to_string();
            let mut node = SequencerConfig::unfilled();
            self.fill_section(&format!("{sequencers_path}.{node_name}"), node_entry, &mut node, &[]);
            chain.sequencers.insert(node_name, node);
        }
    }

    /// `[cluster]` and its `[[cluster.replicas]]` tables, key by key like every other table.
    fn walk_cluster(&mut self, entry: DeEntry<'_, '_>) {
        let mut cluster = unfilled_cluster();
        for (key, replicas) in self.fill_section("cluster", entry, &mut cluster, &["replicas"]) {
            let origin = self.file_origin(key.span());
            self.origins.insert("cluster.replicas".to_owned(), origin.clone());
            let DeValue::Array(tables) = replicas.get_ref() else {
                let problem = Problem::WrongType {
                    expected: "an array of tables ([[cluster.replicas]])",
                    got: describe_toml(replicas.get_ref()),
                };
                self.report("cluster.replicas", problem, origin);
                continue;
            };
            for (index, table) in tables.iter().enumerate() {
                let mut replica = unfilled_replica();
                // An array element has no key of its own: the element's span stands for it.
                let element_key = Spanned::new(table.span(), std::borrow::Cow::Borrowed(""));
                let path = format!("cluster.replicas[{index}]");
                self.fill_section(&path, (&element_key, table), &mut replica, &[]);
                cluster.replicas.push(replica);
            }
        }
        self.config.cluster = Some(cluster);
    }
}
