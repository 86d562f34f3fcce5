//! The configuration reference (`docs/configuration.md`), rendered from [`KEYS`].
//!
//! The reference is generated rather than written so it cannot drift from the loader: a key added
//! to [`KEYS`] appears here with its real type, default, range and environment variable, and the
//! `config_reference` test fails until the checked-in file is regenerated.

use super::{KEYS, KeyDoc};
use std::fmt::Write as _;

/// Upper bound the loader uses for integer keys without a real maximum (the largest TOML integer).
const UNBOUNDED: u64 = i64::MAX as u64;

/// The whole of `docs/configuration.md`.
pub fn render_markdown() -> String {
    let mut out = String::new();
    out.push_str(INTRO);
    let mut section: Option<&str> = None;
    for doc in KEYS {
        let this_section = section_of(doc.path);
        if section != Some(this_section) {
            section = Some(this_section);
            let _ = write!(out, "\n## {}\n\n", section_title(this_section));
            if let Some(note) = section_note(this_section) {
                out.push_str(note);
                out.push_str("\n\n");
            }
            out.push_str("| key | type | default | environment variable | description |\n");
            out.push_str("|-----|------|---------|----------------------|-------------|\n");
        }
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | `{}` | {} |",
            doc.path,
            type_cell(doc),
            default_cell(doc),
            doc.env_var(),
            escape(doc.description)
        );
    }
    out.push_str(OUTRO);
    out
}

/// What the admin API's bounds answer when exceeded, before the `[rpc]` keys.
const RPC_NOTE: &str = concat!(
    "The `max_*` keys bound what one client can make the coordinator do. Exceeding one is an error\n",
    "naming the key, never a cut-off reply: a body over `max_request_bytes` gets HTTP 413 (JSON-RPC\n",
    "`-32007`); a batch over `max_batch_len` calls is refused whole (`-32010`); a reply over\n",
    "`max_reply_bytes` is replaced by an error (`-32008`); replies being built or sent share a budget\n",
    "of 4 x `max_reply_bytes`, beyond which a call is told to retry (`-32009`). Beyond\n",
    "`max_connections` connections, as many again are answered HTTP 503 (`-32009`) and the rest wait\n",
    "to be accepted. `coordinator_events` answers at most 1000 events a call (page with `before` /\n",
    "`after`).",
);

/// What the `[cluster]` section as a whole is for, before its keys.
const CLUSTER_NOTE: &str = concat!(
    "Without `[cluster]` the coordinator runs alone and keeps its state in `data_dir`. With it, the\n",
    "process is one replica of a Raft cluster (3 or 5 replicas, one config file for all): the state of\n",
    "every chain is committed by a majority before the sequencer call that depends on it, and only the\n",
    "replica whose leadership a quorum confirmed within `election_timeout_min_ms` acts; the others\n",
    "probe every node (so a new leader decides on fresh observations), answer reads, and forward\n",
    "mutating calls to the leader.\n",
    "\n",
    "```toml\n",
    "[cluster]\n",
    "id = 1   # per replica: --replica-id N\n",
    "[[cluster.replicas]]\n",
    "id = 1\n",
    "raft_addr = \"10.0.0.1:9770\"\n",
    "api_addr = \"10.0.0.1:9762\"\n",
    "[[cluster.replicas]]\n",
    "id = 2\n",
    "raft_addr = \"10.0.0.2:9770\"\n",
    "api_addr = \"10.0.0.2:9762\"\n",
    "[[cluster.replicas]]\n",
    "id = 3\n",
    "raft_addr = \"10.0.0.3:9770\"\n",
    "api_addr = \"10.0.0.3:9762\"\n",
    "```\n",
    "\n",
    "Its keys are read, checked and overridden like every other key. What differs between replicas\n",
    "that share one file is `cluster.id` (flag `--replica-id`) and `cluster.bootstrap` (flag `--join`\n",
    "for `false`). A listed replica serves its admin API on its `api_addr` and Raft on its `raft_addr`;\n",
    "a joining replica passes `--join`, `--rpc-listen` and `--raft-listen`. Each replica keeps its Raft\n",
    "log, vote and snapshot in `data_dir/replica-<id>/cluster.redb`.\n",
    "\n",
    "Across keys: `election_timeout_min_ms` > `heartbeat_interval_ms`, `election_timeout_min_ms` <\n",
    "`election_timeout_max_ms` < `transfer_timeout_ms`; with `bootstrap = true`, `replicas` is not\n",
    "empty and lists `id`.",
);

/// The table a key lives in: its path without the last segment (`""` for top-level keys).
fn section_of(path: &'static str) -> &'static str {
    path.rsplit_once('.').map_or("", |(section, _)| section)
}

fn section_title(section: &str) -> String {
    match section {
        "" => "Top level".to_owned(),
        "cluster" => "Replicas: `[cluster]`".to_owned(),
        "cluster.replicas[<i>]" => "`[[cluster.replicas]]`".to_owned(),
        _ => format!("`[{section}]`"),
    }
}

/// Context that belongs to a whole table rather than to one key.
fn section_note(section: &str) -> Option<&'static str> {
    match section {
        "chains.<chain>" => Some(
            "One table per chain; `<chain>` is a name you choose (letters, digits, `_`, `-`). It is the\n\
             `chain` label of the metrics, the value of `ctl --chain`, and the optional last parameter of\n\
             the admin calls.",
        ),
        "chains.<chain>.sequencers.<node>" => Some(
            "One table per sequencer node (an op-node + op-geth pair); `<node>` is a name you choose,\n\
             with the same rules as chain names. Every chain needs at least one node with\n\
             `candidate = true`. The state records each node's `op_node_url`: a node renamed here keeps\n\
             its role (leader, fenced) through its URL; a removed or moved one that the state still names\n\
             stops the chain from being acted on until `ctl forget-stale-nodes` (docs/operations.md).",
        ),
        "rpc" => Some(RPC_NOTE),
        "cluster" => Some(CLUSTER_NOTE),
        "cluster.replicas[<i>]" => Some(
            "One table per initial voter, in any order; `<i>` is its position (0 for the first), as in\n\
             error messages and environment variables. Read once, to form the cluster from empty stores;\n\
             afterwards the replicated membership (`coordinator_addReplica`, `coordinator_removeReplica`)\n\
             is the truth. Ids, `raft_addr`s and `api_addr`s are unique; `raft_addr` is `host:port`.",
        ),
        _ => None,
    }
}

fn type_cell(doc: &KeyDoc) -> String {
    let kind = doc.kind().to_string();
    match doc.range() {
        Some(range) if *range.end() == UNBOUNDED && *range.start() == 0 => kind,
        Some(range) if *range.end() == UNBOUNDED => format!("{kind}, at least {}", range.start()),
        Some(range) => format!("{kind}, {} to {}", range.start(), range.end()),
        None => kind,
    }
}

fn default_cell(doc: &KeyDoc) -> String {
    match doc.default_value() {
        Some(value) => format!("`{value}`"),
        None if doc.required() => "**required**".to_owned(),
        None => "unset".to_owned(),
    }
}

/// Keeps a description from breaking the table or being read as markup.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '|' | '*' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

const INTRO: &str = concat!(
    "# Configuration reference\n",
    "\n",
    "<!-- Generated from `op_coordinator::config::KEYS` by `op_coordinator::config_reference`. Do not edit:\n",
    "     run `OPC_UPDATE_DOCS=1 cargo test -p op-coordinator --test config_reference` instead. -->\n",
    "\n",
    "`op-coordinator run --config FILE` reads one TOML file. Every key below except the two node URLs\n",
    "(and, in `[cluster]`, the replica ids and addresses) has a default, so the smallest valid file\n",
    "names one chain with one sequencer:\n",
    "\n",
    "```toml\n",
    "[chains.mainnet.sequencers.seq-a]\n",
    "op_node_url = \"http://10.0.1.11:9545\"\n",
    "op_geth_url = \"http://10.0.1.11:8545\"\n",
    "```\n",
    "\n",
    "`op-coordinator check-config --config FILE` validates a file (with the environment applied) and\n",
    "prints the effective configuration with every key spelled out. A bad file is reported all at once:\n",
    "every problem names the key to change and where its value came from (file and line, environment\n",
    "variable or flag).\n",
    "\n",
    "## Where values come from\n",
    "\n",
    "Later layers win:\n",
    "\n",
    "1. the built-in default (the **default** column below);\n",
    "2. the config file;\n",
    "3. an environment variable (the **environment variable** column);\n",
    "4. a command-line flag of `run` / `check-config`: `--data-dir` (`data_dir`), `--rpc-listen`\n",
    "   (`rpc.listen`), `--metrics-listen` (`metrics.listen`), `--jwt-secret-file` (`rpc.jwt_secret_file`).\n",
    "\n",
    "Environment variables are the prefix `OP_COORDINATOR_` followed by the key path in upper case,\n",
    "with `__` between path segments. In chain and node names `-` is written `_` and case is ignored, so\n",
    "`chains.main.sequencers.seq-a.priority` is `OP_COORDINATOR_CHAINS__MAIN__SEQUENCERS__SEQ_A__PRIORITY`.\n",
    "The environment can change chains, sequencers and replicas that the file defines, not add new ones. A variable\n",
    "with the prefix that matches no key stops the coordinator with an error rather than being ignored,\n",
    "because a misspelt fail-over timeout would otherwise go unnoticed until the outage it was meant for.\n",
    "An empty value unsets an optional key (for example `OP_COORDINATOR_RPC__JWT_SECRET_FILE=`).\n",
    "\n",
    "Relative paths (`data_dir`, `rpc.jwt_secret_file`) are relative to the working directory of the\n",
    "process.\n",
    "\n",
    "`data_dir` is created at start-up if missing and locked for as long as the coordinator runs (a\n",
    "replica locks its own `data_dir/replica-<id>`); a second coordinator on it exits naming the holder's\n",
    "PID. `check-config` reports whether it exists (or can be created), is a directory and is writable.\n",
    "What it holds: [operations.md](operations.md#the-data-directory).\n",
    "\n",
    "## Rules checked across keys\n",
    "\n",
    "- At least one chain, each with at least one sequencer and at least one `candidate = true`.\n",
    "- Chain and node names use only letters, digits, `_` and `-`, and differ from each other even when\n",
    "  case and `-`/`_` are ignored (they become environment variable names and metrics labels).\n",
    "- Node URLs are `http://` or `https://` with a host, and no two sequencers (in any chain) share an\n",
    "  `op_node_url` or `op_geth_url`.\n",
    "- `health.unsafe_stall_ms` is greater than every chain's `block_time_ms`.\n",
    "- `failover.chain_liveness_window_ms` is greater than every chain's `block_time_ms` (block time + gossip delay + two probe intervals is a good floor), or a live leader cut off from the coordinator looks dead.\n",
    "- `metrics.listen` and `rpc.listen` are not the same fixed address.\n",
    "- A configured `rpc.jwt_secret_file` is readable and holds 64 hex digits (optionally `0x`-prefixed),\n",
    "  checked at start-up rather than at the first authenticated call.\n",
    "- `rpc.jwt_on_reads = true` needs `rpc.jwt_secret_file`.\n",
);

const OUTRO: &str = concat!(
    "\n",
    "## Types\n",
    "\n",
    "- Integers are plain TOML integers; durations are whole milliseconds (keys ending in `_ms`).\n",
    "- Addresses (`string (ip:port)`) are an IP address and a port, such as `\"127.0.0.1:9762\"`; a host\n",
    "  name is not accepted. Port `0` picks a free port.\n",
    "- From the environment, booleans are `true`/`false` (or `1`/`0`) and strings are given without quotes.\n",
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ENV_PREFIX;

    #[test]
    fn every_key_gets_one_row_with_its_env_var() {
        let rendered = render_markdown();
        for doc in KEYS {
            let rows =
                rendered.lines().filter(|line| line.starts_with(&format!("| `{}` |", doc.path))).count();
            assert_eq!(rows, 1, "{} should have exactly one row", doc.path);
            assert!(rendered.contains(&doc.env_var()), "{} env var missing", doc.path);
        }
        assert!(INTRO.contains(ENV_PREFIX));
    }

    #[test]
    fn descriptions_cannot_break_the_table() {
        assert_eq!(escape("a | b * c <d>"), r"a \| b \* c \<d\>");
    }
}
