//! Configuration of `op-coordinator run --config FILE`.
//!
//! # Layout
//!
//! One concern per file:
//!
//! | file          | holds                                                                         |
//! |---------------|-------------------------------------------------------------------------------|
//! | `types.rs`    | [`Config`] and its sections: plain data with the defaults an operator of a 1 s block-time chain can run without tuning. Durations are `u64` fields ending in `_ms`, each with a helper returning a [`Duration`](std::time::Duration) |
//! | `keys.rs`     | [`KEYS`], the single table of every key (path, type, default, range, one-line description), [`KeyDoc`], [`KeyKind`] and the environment variable names |
//! | `slot.rs`     | typed access to one field of a section: parsing a value (TOML or text) into it, and printing it back |
//! | `load.rs`     | the spanned-TOML walk of the file, driven by [`KEYS`], collecting every problem with its line |
//! | `overlay.rs`  | the environment and command-line layers on top of the file                    |
//! | `validate.rs` | range and cross-key rules (the table below)                                   |
//! | `render.rs`   | [`Config::to_toml_string`], "did you mean" suggestions, the error report      |
//! | `error.rs`    | [`ConfigError`] / [`ConfigErrors`]: every problem names the key to change and where the bad value came from ([`Origin`]) |
//! | `windows.rs`  | the windows that follow a chain's block time: defaults, floors, the check of explicit values |
//! | `settings.rs` | the settings each subsystem runs on, derived from the config (only settings travel downward) |
//! | `reference.rs`| `docs/configuration.md`, rendered from [`KEYS`]                               |
//!
//! To add a key: a field (and its default) in `types.rs`, one [`KEYS`] entry in `keys.rs`, a line
//! in `examples/coordinator.toml`; then `OPC_UPDATE_DOCS=1 cargo test -p op-coordinator --test
//! config_reference` regenerates the reference. A rule across keys goes into `validate.rs`; a
//! value a subsystem needs goes into `settings.rs`.
//!
//! # Sources and precedence
//!
//! | layer                    | example                                      | wins over          |
//! |--------------------------|----------------------------------------------|--------------------|
//! | built-in default         | `health.interval_ms = 100`                   | -                  |
//! | config file              | `[health] interval_ms = 50`                  | default            |
//! | environment variable     | `OP_COORDINATOR_HEALTH__INTERVAL_MS=50`      | file, default      |
//! | command-line override    | `("health.interval_ms", "50")` from a flag   | everything         |
//!
//! # Environment variables
//!
//! `OP_COORDINATOR_` followed by the key path, upper-cased, with `__` between path segments:
//! `OP_COORDINATOR_DATA_DIR`, `OP_COORDINATOR_RPC__LISTEN`,
//! `OP_COORDINATOR_CHAINS__MAINNET__SEQUENCERS__SEQ_A__PRIORITY`. Chain and node segments match the
//! names in the file ignoring case, with `-` written as `_`, because shells do not allow `-` in
//! variable names. A replica of `[[cluster.replicas]]` is addressed by its position:
//! `OP_COORDINATOR_CLUSTER__REPLICAS__0__API_ADDR`. The environment can change chains, sequencers
//! and replicas the file defines but cannot add new ones: a new sequencer needs two URLs and a
//! name, which belongs in reviewed config. A `[cluster]` key set while the file has no `[cluster]`
//! is an error saying so. A variable
//! with the prefix that matches no key is an error, because a silently ignored typo in a fail-over
//! timeout surfaces only during the outage it was meant to handle. The binary must therefore remove
//! the variables it consumes itself (for example one naming the config file) before calling the
//! loader. Variables without the prefix are ignored.
//!
//! # Why the file is walked by hand
//!
//! `#[derive(Deserialize)]` stops at the first problem, and an operator fixing a config one
//! error per restart is slow exactly when it hurts. The loader parses the file into a spanned TOML
//! tree and walks it key by key, so every unknown key, type mismatch, missing field and invalid
//! value is reported at once with its line. The serde derives on the types remain for programs that
//! embed the config in other formats; they do not validate.
//!
//! # Validation rules
//!
//! | rule                                                        | why                                              |
//! |-------------------------------------------------------------|--------------------------------------------------|
//! | integer keys within the range in [`KEYS`]                   | a 0 ms timeout or threshold disables the check   |
//! | at least one chain, each with at least one sequencer        | nothing to coordinate otherwise                  |
//! | each chain has a sequencer with `candidate = true`          | otherwise no leader can ever be elected          |
//! | names use `[A-Za-z0-9_-]`, unique ignoring case and `-`/`_` | names are metrics labels, URL and env segments   |
//! | URLs are `http://` or `https://` with a host                | the node clients speak JSON-RPC over HTTP        |
//! | no two sequencers share an `op_node_url` or `op_geth_url`   | two "nodes" that are one process fail together   |
//! | explicit windows at least their floor for every configured `block_time_ms` ([`windows`]) | otherwise a live leader cut off from us looks dead, or a late block is a "stall"; checked again at run time against the block time the chain states |
//! | metrics and admin RPC do not share a fixed listen address   | the second bind would fail at start-up           |
//! | `conductor_allow` only on a node of a chain with `conductor = true` | the list guards the conductor endpoint only; elsewhere it would guard nothing |
//! | `[cluster]`: election timeouts above the heartbeat, ordered, below `transfer_timeout_ms`; replicas with unique ids and addresses, listing `cluster.id` when bootstrapping | [`ClusterConfig::problems`], shared with the cluster crate |
//!
//! Relative paths (`data_dir`, `rpc.jwt_secret_file`) are relative to the working directory of the
//! process, as for the op-node and op-geth flags they sit next to.

mod error;
mod keys;
mod load;
mod overlay;
pub mod reference;
mod render;
pub mod settings;
mod slot;
mod types;
mod validate;
pub mod windows;

pub use error::{ConfigError, ConfigErrors, Origin};
pub use keys::{KEYS, KeyDoc, KeyKind, env_var_name};
pub use opc_cluster::{ClusterConfig, ReplicaConfig};
pub use types::{
    ChainConfig, ConductorConfig, Config, FailoverConfig, HealthConfig, InspectionConfig, MetricsConfig,
    RpcConfig, SequencerConfig,
};
pub(crate) use validate::normalize_url;

/// Prefix of the environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "OP_COORDINATOR_";

/// Largest value a TOML file can hold; used as the upper bound of unbounded `u64` keys so that every
/// accepted configuration can be printed back as TOML.
pub(crate) const TOML_INT_MAX: u64 = i64::MAX as u64;
