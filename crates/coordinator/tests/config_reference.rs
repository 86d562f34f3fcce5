//! The operator documentation stays true to the code: `docs/configuration.md` is exactly what
//! [`render_markdown`] makes of the real `KEYS` table, every `examples/*.toml` loads, and the
//! README links only to files that exist.
//!
//! `OPC_UPDATE_DOCS=1 cargo test -p op-coordinator --test config_reference` rewrites
//! `docs/configuration.md` instead of comparing it.

use op_coordinator::config::{Config, KEYS};
use op_coordinator::config_reference::render_markdown;
use std::path::{Path, PathBuf};

const UPDATE_HINT: &str =
    "run `OPC_UPDATE_DOCS=1 cargo test -p op-coordinator --test config_reference` to regenerate";

fn repo_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

fn reference_path() -> PathBuf {
    repo_root().join("docs/configuration.md")
}

/// Every `examples/*.toml`, sorted so failures read the same on every run.
fn example_configs() -> Vec<PathBuf> {
    let dir = repo_root().join("examples");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("cannot list {}: {err}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    paths.sort();
    paths
}

/// Loads an example as `op-coordinator run --config examples/NAME.toml` does when started from the
/// repository root: a relative `rpc.jwt_secret_file` is resolved against the root, because the
/// test process runs in the crate directory.
fn load_example(path: &Path) -> Config {
    let text = std::fs::read_to_string(path).expect("read example");
    let parsed = Config::from_toml_str(&text, Vec::<(String, String)>::new(), &[])
        .unwrap_or_else(|errors| panic!("{}:\n{errors}", path.display()));
    let mut overrides = Vec::new();
    if let Some(secret) = parsed.rpc.jwt_secret_file.as_ref().filter(|secret| secret.is_relative()) {
        overrides.push(("rpc.jwt_secret_file".to_owned(), repo_root().join(secret).display().to_string()));
    }
    Config::load(path, Vec::<(String, String)>::new(), &overrides)
        .unwrap_or_else(|errors| panic!("{}:\n{errors}", path.display()))
}

fn example(name: &str) -> Config {
    load_example(&repo_root().join("examples").join(name))
}

#[test]
fn the_configuration_reference_is_generated_from_the_keys_table() {
    let rendered = render_markdown();
    let path = reference_path();
    if std::env::var_os("OPC_UPDATE_DOCS").is_some_and(|value| value == "1") {
        std::fs::write(&path, &rendered)
            .unwrap_or_else(|err| panic!("cannot write {}: {err}", path.display()));
        return;
    }
    let on_disk = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}; {UPDATE_HINT}", path.display()));
    if on_disk != rendered {
        let first_difference = on_disk
            .lines()
            .zip(rendered.lines())
            .enumerate()
            .find(|(_, (disk, fresh))| disk != fresh)
            .map(|(index, (disk, fresh))| {
                format!("line {}:\n  on disk:   {disk}\n  generated: {fresh}", index + 1)
            })
            .unwrap_or_else(|| {
                format!(
                    "one is a prefix of the other ({} lines on disk, {} generated)",
                    on_disk.lines().count(),
                    rendered.lines().count()
                )
            });
        panic!(
            "{} is out of date with config::KEYS; {UPDATE_HINT}\nfirst difference at {first_difference}",
            path.display()
        );
    }
}

#[test]
fn the_configuration_reference_lists_every_key_with_type_default_and_env_var() {
    let rendered = render_markdown();
    for doc in KEYS {
        let row = rendered
            .lines()
            .find(|line| line.starts_with(&format!("| `{}` |", doc.path)))
            .unwrap_or_else(|| panic!("no row for {}", doc.path));
        assert!(row.contains(&format!("`{}`", doc.env_var())), "{row}");
        assert!(row.contains(&doc.kind().to_string()), "{row}");
        match doc.default_value() {
            Some(default) => assert!(row.contains(&format!("`{default}`")), "{row}"),
            None if doc.required() => assert!(row.contains("required"), "{row}"),
            None => assert!(row.contains("unset"), "{row}"),
        }
        if let Some(range) = doc.range().filter(|range| *range.end() != i64::MAX as u64) {
            assert!(row.contains(&format!("{} to {}", range.start(), range.end())), "{row}");
        }
    }
}

#[test]
fn every_example_config_loads() {
    let examples = example_configs();
    assert!(
        examples.len() >= 5,
        "expected coordinator, single-chain, multi-chain, watch-only, jwt: {examples:?}"
    );
    for path in &examples {
        let config = load_example(path);
        assert!(!config.chains.is_empty(), "{}", path.display());
    }
}

#[test]
fn the_single_chain_example_ranks_three_sequencers_by_priority() {
    let config = example("single-chain.toml");
    assert_eq!(config.chains.len(), 1);
    let chain = config.chains.values().next().expect("one chain");
    let mut priorities: Vec<i64> = chain.sequencers.values().map(|node| node.priority).collect();
    priorities.sort_unstable();
    priorities.dedup();
    assert_eq!(chain.sequencers.len(), 3);
    assert_eq!(priorities.len(), 3, "distinct priorities give a deterministic order");
    assert!(chain.sequencers.values().all(|node| node.candidate));
}

#[test]
fn the_multi_chain_example_coordinates_two_chains() {
    let config = example("multi-chain.toml");
    assert_eq!(config.chains.len(), 2);
    assert!(config.chains.values().all(|chain| chain.sequencers.len() >= 2));
}

#[test]
fn the_watch_only_example_has_a_node_that_is_never_elected() {
    let config = example("watch-only.toml");
    let nodes: Vec<_> = config.chains.values().flat_map(|chain| chain.sequencers.values()).collect();
    assert_eq!(nodes.iter().filter(|node| !node.candidate).count(), 1);
    assert!(nodes.iter().any(|node| node.candidate));
}

#[test]
fn the_jwt_example_names_a_readable_32_byte_secret() {
    let config = example("jwt.toml");
    assert!(config.rpc.jwt_secret_file.is_some());
    let secret = config.rpc.read_jwt_secret().expect("secret readable");
    assert!(secret.is_some_and(|bytes| bytes.len() == 32));
}

#[test]
fn the_readme_links_only_to_files_that_exist() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("read README");
    let mut checked = 0;
    for (start, _) in readme.match_indices("](") {
        let rest = &readme[start + 2..];
        let Some(end) = rest.find(')') else { continue };
        let target = rest[..end].split('#').next().unwrap_or_default();
        if target.is_empty() || target.contains("://") {
            continue;
        }
        assert!(repo_root().join(target).exists(), "README links to {target}, which does not exist");
        checked += 1;
    }
    assert!(checked > 0, "the README links to its docs");
}

fn operations_guide() -> String {
    std::fs::read_to_string(repo_root().join("docs/operations.md")).expect("read docs/operations.md")
}

#[test]
fn the_operations_guide_explains_every_metric_and_every_health_reason() {
    let guide = operations_guide();
    for name in op_coordinator::metrics::ALL {
        assert!(guide.contains(&format!("`{name}`")), "docs/operations.md does not describe {name}");
    }
    for reason in op_coordinator::health::Reason::ALL {
        let row = format!("| `{}` |", reason.code());
        assert!(
            guide.contains(&row),
            "docs/operations.md has no row for the health reason {}",
            reason.code()
        );
    }
}

#[test]
fn every_alert_rule_has_a_runbook_entry() {
    let rules = repo_root().join("ops/prometheus/alerts.yml");
    let Ok(text) = std::fs::read_to_string(&rules) else {
        return;
    };
    let guide = operations_guide();
    for line in text.lines() {
        let Some(name) = line.trim().strip_prefix("- alert:").map(str::trim) else { continue };
        assert!(
            guide.lines().any(|heading| heading == format!("### {name}")),
            "{} links its runbook to docs/operations.md#{}, which has no `### {name}` section",
            rules.display(),
            name.to_lowercase()
        );
    }
}
