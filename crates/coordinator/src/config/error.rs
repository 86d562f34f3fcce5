//! Every problem a load can find, each naming the key to change and where its value came from.

use std::fmt;
use std::path::PathBuf;

use super::render::{at, at_both, did_you_mean, file_label, render_errors};
use super::windows::WindowTooShort;

/// Where a configuration value came from, so an error says what to edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Built-in default.
    Default,
    /// A line of the config file; `path` is `None` when the text was not read from a file.
    File { path: Option<PathBuf>, line: usize },
    /// An `OP_COORDINATOR_*` environment variable.
    Env { var: String },
    /// A command-line override of the dotted key `key`.
    Override { key: String },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::File { path: Some(path), line } => write!(f, "{}:{line}", path.display()),
            Origin::File { path: None, line } => write!(f, "config line {line}"),
            Origin::Env { var } => write!(f, "env {var}"),
            Origin::Override { key } => write!(f, "command-line override {key}"),
        }
    }
}

/// One problem with the configuration. Each names the key (or variable) to change.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid TOML.
    #[error("{}:{line}:{column}: TOML syntax error: {message}", file_label(.file))]
    Syntax { file: Option<PathBuf>, line: usize, column: usize, message: String },
    /// A key that the configuration does not have.
    #[error("{key}: unknown key{} [{origin}]", did_you_mean(.suggestions))]
    UnknownKey { key: String, suggestions: Vec<String>, origin: Origin },
    /// An `OP_COORDINATOR_*` variable that matches no key.
    #[error("{var}: environment variable matches no configuration key{}{}", did_you_mean(.suggestions), .hint)]
    UnknownEnvVar {
        var: String,
        suggestions: Vec<String>,
        /// Extra advice, e.g. that the environment cannot add chains; starts with "; " when set.
        hint: String,
    },
    /// An environment variable that matches several keys (names that differ only by case or
    /// `-`/`_`).
    #[error("{var}: environment variable matches several keys: {}", .keys.join(", "))]
    AmbiguousEnvVar { var: String, keys: Vec<String> },
    /// A command-line override of a key that does not exist.
    #[error("{key}: unknown key{} [command-line override {key}]", did_you_mean(.suggestions))]
    UnknownOverride { key: String, suggestions: Vec<String> },
    /// A value of the wrong type.
    #[error("{key}: expected {expected}, got {got}{}", at(.origin))]
    WrongType { key: String, expected: &'static str, got: String, origin: Option<Origin> },
    /// A required key that was not given; `origin` is the table that lacks it.
    #[error("{key}: missing (required){}", at(.origin))]
    Missing { key: String, origin: Option<Origin> },
    /// A value of the right type that is not acceptable.
    #[error("{key}: {reason}{}", at(.origin))]
    Invalid { key: String, reason: String, origin: Option<Origin> },
    /// No `[chains.NAME]` at all.
    #[error("chains: no chain configured; add [chains.NAME.sequencers.NODE]")]
    NoChains,
    /// A chain without sequencers.
    #[error("chains.{chain}: no sequencer configured; add [chains.{chain}.sequencers.NODE]{}", at(.origin))]
    NoSequencers { chain: String, origin: Option<Origin> },
    /// A chain where no sequencer may be elected.
    #[error("chains.{chain}: no sequencer has candidate = true, so no leader could ever be elected{}", at(.origin))]
    NoCandidate { chain: String, origin: Option<Origin> },
    /// A chain or node name with characters that break metrics labels, URLs or env var names.
    #[error("{key}: invalid name {name:?}: use only letters, digits, '_' and '-' (names appear in metrics labels and URLs){}", at(.origin))]
    InvalidName { key: String, name: String, origin: Option<Origin> },
    /// Two names that are equal ignoring case and `-`/`_`.
    #[error("{key}: name clashes with {other_key}; names must differ ignoring case and '-' vs '_' so environment variables stay unambiguous{}", at(.origin))]
    NameCollision { key: String, other_key: String, origin: Option<Origin> },
    /// Two sequencers pointing at the same node.
    #[error("{key}: {url:?} is already used by {other_key}; every op_node_url and op_geth_url must point at a different process{}", at(.origin))]
    DuplicateUrl { key: String, other_key: String, url: String, origin: Option<Origin> },
    /// An explicit window too short for a chain's configured block time.
    #[error("{problem} (checked against chains.{chain}.block_time_ms){}", at_both(.window_origin, .block_time_origin))]
    WindowTooShort {
        chain: String,
        problem: Box<WindowTooShort>,
        window_origin: Option<Origin>,
        block_time_origin: Option<Origin>,
    },
    /// The JWT secret file is unreadable or malformed.
    #[error("rpc.jwt_secret_file: cannot use {}: {reason}", path.display())]
    JwtSecret { path: PathBuf, reason: String },
}

impl ConfigError {
    /// The dotted key (or, for environment errors, the variable) this error asks to change;
    /// `None` for file-level problems.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::ReadFile { .. } | ConfigError::Syntax { .. } => None,
            ConfigError::UnknownEnvVar { var, .. } | ConfigError::AmbiguousEnvVar { var, .. } => Some(var),
            ConfigError::UnknownKey { key, .. }
            | ConfigError::UnknownOverride { key, .. }
            | ConfigError::WrongType { key, .. }
            | ConfigError::Missing { key, .. }
            | ConfigError::Invalid { key, .. }
            | ConfigError::InvalidName { key, .. }
            | ConfigError::NameCollision { key, .. }
            | ConfigError::DuplicateUrl { key, .. } => Some(key),
            ConfigError::NoChains => Some("chains"),
            ConfigError::NoSequencers { .. } | ConfigError::NoCandidate { .. } => None,
            ConfigError::WindowTooShort { problem, .. } => Some(problem.key),
            ConfigError::JwtSecret { .. } => Some("rpc.jwt_secret_file"),
        }
    }
}

/// Every problem found while loading a configuration.
#[derive(Debug, thiserror::Error)]
#[error("{}", render_errors(.0))]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// The individual problems, in the order they were found.
    pub fn errors(&self) -> &[ConfigError] {
        &self.0
    }
}
