//! The daemon without the simulator: built with `--no-default-features` (no `devnet` feature),
//! `op-coordinator` links neither op-sim, nor its control contract, nor the live view's terminal
//! library. This reads the resolved dependency tree (no build), so it stays cheap; `.ci/run` also
//! builds and tests that way.

use opc_test_support::text;
use std::process::Command;

/// Crates only the `devnet` feature may bring into the binary.
const DEVNET_ONLY: [&str; 3] = ["op-sim", "op-sim-api", "crossterm"];

/// The package names in the normal (non-dev, non-build) dependency tree of the binary's package.
fn normal_dependencies(features: &[&str]) -> Vec<String> {
    let output = Command::new(env!("CARGO"))
        .args(["tree", "--offline", "-p", "op-coordinator-cli", "-e", "normal", "--prefix", "none"])
        .args(features)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo tree");
    assert!(output.status.success(), "cargo tree {features:?}: {}", text(&output.stderr));
    text(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn without_the_devnet_feature_the_daemon_links_neither_the_simulator_nor_the_terminal_ui() {
    let lean = normal_dependencies(&["--no-default-features"]);
    assert!(lean.iter().any(|name| name == "op-coordinator"), "the tree lists the library: {lean:?}");
    for name in DEVNET_ONLY {
        assert!(!lean.contains(&name.to_owned()), "{name} is linked without the devnet feature: {lean:?}");
    }
    // The check can fail: with default features both are there.
    let full = normal_dependencies(&[]);
    for name in DEVNET_ONLY {
        assert!(full.contains(&name.to_owned()), "{name} missing from the default build: {full:?}");
    }
}

#[test]
#[cfg(not(feature = "devnet"))]
fn without_the_devnet_feature_devnet_says_which_feature_it_needs() {
    let output = Command::new(env!("CARGO_BIN_EXE_op-coordinator"))
        .args(["devnet", "--nodes", "3"])
        .output()
        .expect("run op-coordinator devnet");
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("without the `devnet` feature"), "{stderr}");
}
