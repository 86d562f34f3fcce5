//! Behaviour of the configuration loader: defaults, layering, and error reports that name the key
//! to fix.

use std::path::{Path, PathBuf};
use std::time::Duration;

use op_coordinator::config::{
    Config, ConfigError, ConfigErrors, KEYS, KeyKind, Origin, RpcConfig, SequencerConfig, env_var_name,
};

const MINIMAL: &str = r#"
[chains.main.sequencers.a]
op_node_url = "http://127.0.0.1:7545"
op_geth_url = "http://127.0.0.1:8545"
"#;

const TWO_NODES: &str = r#"
[chains.main.sequencers.seq-a]
op_node_url = "http://127.0.0.1:7545"
op_geth_url = "http://127.0.0.1:8545"
priority = 1

[chains.main.sequencers.seq-b]
op_node_url = "http://127.0.0.1:7546"
op_geth_url = "http://127.0.0.1:8546"
"#;

fn no_env() -> Vec<(String, String)> {
    Vec::new()
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn load(text: &str) -> Result<Config, ConfigErrors> {
    Config::from_toml_str(text, no_env(), &[])
}

/// Loads `text` expecting failure and returns the report, failing with the config otherwise.
fn errors_of(result: Result<Config, ConfigErrors>) -> ConfigErrors {
    match result {
        Ok(config) => panic!("expected errors, loaded {config:#?}"),
        Err(errors) => errors,
    }
}

/// Asserts that some error names `key` and its message contains `fragment`.
fn assert_reported(errors: &ConfigErrors, key: &str, fragment: &str) {
    let found = errors.errors().iter().any(|e| {
        let text = e.to_string();
        e.key() == Some(key) && text.contains(key) && text.contains(fragment)
    });
    assert!(found, "no error for {key} containing {fragment:?}; report was:\n{errors}");
}

fn example_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/coordinator.toml")
}

/// A scratch directory unique to one test, removed on drop.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new(test: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("op-coordinator-config-test-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Self(dir)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn minimal_config_gets_every_default() {
    let config = load(MINIMAL).expect("minimal config loads");
    let defaults = Config::default();
    assert_eq!(config.data_dir, PathBuf::from("./op-coordinator-data"));
    assert_eq!(config.rpc, defaults.rpc);
    assert_eq!(config.rpc.listen.to_string(), "127.0.0.1:9762");
    assert_eq!(config.rpc.jwt_secret_file, None);
    assert_eq!(config.metrics, defaults.metrics);
    assert!(config.metrics.enabled);
    assert_eq!(config.metrics.listen.to_string(), "127.0.0.1:9761");
    assert_eq!(config.health, defaults.health);
    assert_eq!(config.health.interval(), Duration::from_millis(100));
    assert_eq!(config.health.probe_timeout(), Duration::from_millis(250));
    assert_eq!(config.health.failure_threshold, 2);
    assert_eq!(config.health.success_threshold, 3);
    assert_eq!(config.health.unsafe_stall_ms, None, "follows the block time");
    assert_eq!(config.health.max_execution_lag_blocks, 8);
    assert_eq!(config.health.max_candidate_lag_blocks, 16);
    assert_eq!(config.failover, defaults.failover);
    assert_eq!(config.failover.rpc_timeout(), Duration::from_millis(1000));
    assert_eq!(config.failover.catch_up_timeout_ms, None, "follows the block time");
    assert_eq!(config.failover.chain_liveness_window_ms, None, "follows the block time");
    assert_eq!(config.failover.convergence_wait_ms, None, "follows the block time");
    assert_eq!(config.failover.start_retry_interval(), Duration::from_millis(100));
    assert_eq!(config.inspection, defaults.inspection);
    assert!(config.inspection.enabled);
    assert_eq!(config.inspection.interval(), Duration::from_millis(500));

    let chain = &config.chains["main"];
    assert_eq!(chain.block_time_ms, None);
    assert_eq!(chain.block_time(), None);
    assert_eq!(
        chain.sequencers["a"],
        SequencerConfig {
            op_node_url: "http://127.0.0.1:7545".to_owned(),
            op_geth_url: "http://127.0.0.1:8545".to_owned(),
            priority: 0,
            candidate: true,
            conductor_allow: Vec::new(),
        }
    );
}

#[test]
fn full_config_round_trips_through_to_toml_string() {
    let text = r#"
data_dir = "/var/lib/op-coordinator"

[rpc]
listen = "0.0.0.0:19762"
jwt_secret_file = "/etc/op-coordinator/jwt.hex"

[metrics]
enabled = false
listen = "[::1]:19761"

[health]
interval_ms = 50
probe_timeout_ms = 200
failure_threshold = 3
success_threshold = 5
unsafe_stall_ms = 4000
max_execution_lag_blocks = 4
max_candidate_lag_blocks = 32

[failover]
rpc_timeout_ms = 800
catch_up_timeout_ms = 6000
chain_liveness_window_ms = 3000
convergence_wait_ms = 0
start_retry_interval_ms = 250

[inspection]
enabled = false
interval_ms = 5000

[chains.op-mainnet]
block_time_ms = 2000

[chains.op-mainnet.sequencers.seq-a]
op_node_url = "https://a.example:7545/rpc"
op_geth_url = "https://a.example:8545"
priority = 10

[chains.op-mainnet.sequencers.replica]
op_node_url = "http://10.0.0.9:7545"
op_geth_url = "http://10.0.0.9:8545"
priority = -1
candidate = false

[chains.devnet.sequencers.only]
op_node_url = "http://[::1]:7545"
op_geth_url = "http://[::1]:8545"
"#;
    let config = load(text).expect("full config loads");
    assert_eq!(config.health.interval_ms, 50);
    assert_eq!(config.failover.convergence_wait_ms, Some(0));
    assert_eq!(config.chains["op-mainnet"].block_time_ms, Some(2000));
    assert_eq!(config.chains["op-mainnet"].sequencers["replica"].priority, -1);
    assert!(!config.chains["op-mainnet"].sequencers["replica"].candidate);

    let printed = config.to_toml_string();
    let reloaded = load(&printed).unwrap_or_else(|e| panic!("printed config does not load:\n{printed}\n{e}"));
    assert_eq!(reloaded, config, "printed:\n{printed}");

    // The serde derives read the same document to the same value.
    let via_serde: Config = toml::from_str(&printed).expect("serde reads printed config");
    assert_eq!(via_serde, config);
}

#[test]
fn env_overrides_a_section_key() {
    let config = Config::from_toml_str(
        MINIMAL,
        env(&[
            ("OP_COORDINATOR_HEALTH__INTERVAL_MS", "50"),
            ("OP_COORDINATOR_METRICS__ENABLED", "false"),
            ("OP_COORDINATOR_RPC__LISTEN", "127.0.0.1:1"),
        ]),
        &[],
    )
    .expect("loads");
    assert_eq!(config.health.interval_ms, 50);
    assert!(!config.metrics.enabled);
    assert_eq!(config.rpc.listen.to_string(), "127.0.0.1:1");
}

#[test]
fn env_overrides_a_top_level_key() {
    let config =
        Config::from_toml_str(MINIMAL, env(&[("OP_COORDINATOR_DATA_DIR", "/x")]), &[]).expect("loads");
    assert_eq!(config.data_dir, PathBuf::from("/x"));
}

#[test]
fn env_overrides_a_sequencer_key_matching_names_ignoring_case_and_dashes() {
    let config = Config::from_toml_str(
        TWO_NODES,
        env(&[
            ("OP_COORDINATOR_CHAINS__MAIN__SEQUENCERS__SEQ_A__PRIORITY", "5"),
            ("OP_COORDINATOR_CHAINS__MAIN__SEQUENCERS__SEQ_B__CANDIDATE", "false"),
            ("OP_COORDINATOR_CHAINS__MAIN__BLOCK_TIME_MS", "1000"),
        ]),
        &[],
    )
    .expect("loads");
    let chain = &config.chains["main"];
    assert_eq!(chain.sequencers["seq-a"].priority, 5);
    assert!(!chain.sequencers["seq-b"].candidate);
    assert_eq!(chain.block_time_ms, Some(1000));
}

#[test]
fn env_var_names_follow_the_key_path() {
    assert_eq!(env_var_name("health.interval_ms"), "OP_COORDINATOR_HEALTH__INTERVAL_MS");
    assert_eq!(env_var_name("data_dir"), "OP_COORDINATOR_DATA_DIR");
    assert_eq!(
        env_var_name("chains.mainnet.sequencers.seq-0.priority"),
        "OP_COORDINATOR_CHAINS__MAINNET__SEQUENCERS__SEQ_0__PRIORITY"
    );
}

#[test]
fn flag_overrides_beat_env_which_beats_file() {
    let text = format!("[health]\ninterval_ms = 20\nprobe_timeout_ms = 30\n{MINIMAL}");
    let config = Config::from_toml_str(
        &text,
        env(&[
            ("OP_COORDINATOR_HEALTH__INTERVAL_MS", "40"),
            ("OP_COORDINATOR_HEALTH__PROBE_TIMEOUT_MS", "50"),
            ("OP_COORDINATOR_RPC__LISTEN", "127.0.0.1:2"),
        ]),
        &[
            ("health.interval_ms".to_owned(), "60".to_owned()),
            ("rpc.listen".to_owned(), "127.0.0.1:0".to_owned()),
        ],
    )
    .expect("loads");
    // flag > env > file
    assert_eq!(config.health.interval_ms, 60);
    assert_eq!(config.rpc.listen.to_string(), "127.0.0.1:0");
    // env > file
    assert_eq!(config.health.probe_timeout_ms, 50);
    // file > default
    let file_only = load(&text).expect("loads");
    assert_eq!(file_only.health.interval_ms, 20);
}

#[test]
fn flag_override_reaches_sequencer_keys() {
    let config = Config::from_toml_str(
        TWO_NODES,
        no_env(),
        &[("chains.main.sequencers.seq-b.op_geth_url".to_owned(), "http://127.0.0.1:9999".to_owned())],
    )
    .expect("loads");
    assert_eq!(config.chains["main"].sequencers["seq-b"].op_geth_url, "http://127.0.0.1:9999");
}

#[test]
fn unknown_env_var_with_the_prefix_is_an_error_naming_the_variable() {
    let errors =
        errors_of(Config::from_toml_str(MINIMAL, env(&[("OP_COORDINATOR_HEALTH__INTERVL_MS", "50")]), &[]));
    assert_eq!(errors.errors().len(), 1, "{errors}");
    assert_reported(
        &errors,
        "OP_COORDINATOR_HEALTH__INTERVL_MS",
        "did you mean OP_COORDINATOR_HEALTH__INTERVAL_MS?",
    );
}

#[test]
fn env_var_for_a_chain_the_file_does_not_define_is_an_error() {
    let errors = errors_of(Config::from_toml_str(
        MINIMAL,
        env(&[("OP_COORDINATOR_CHAINS__OTHER__SEQUENCERS__A__PRIORITY", "1")]),
        &[],
    ));
    assert_reported(
        &errors,
        "OP_COORDINATOR_CHAINS__OTHER__SEQUENCERS__A__PRIORITY",
        "only change chains and sequencers the config file defines",
    );
}

#[test]
fn variables_without_the_prefix_are_ignored() {
    let config = Config::from_toml_str(
        MINIMAL,
        env(&[("PATH", "/usr/bin"), ("OP_NODE_L2_ENGINE_RPC", "http://x"), ("HEALTH__INTERVAL_MS", "x")]),
        &[],
    )
    .expect("unrelated variables do not matter");
    assert_eq!(config.health.interval_ms, 100);
}

#[test]
fn env_value_of_the_wrong_type_names_key_and_variable() {
    let errors = errors_of(Config::from_toml_str(
        MINIMAL,
        env(&[("OP_COORDINATOR_HEALTH__INTERVAL_MS", "fast")]),
        &[],
    ));
    assert_reported(
        &errors,
        "health.interval_ms",
        r#"expected an integer number of milliseconds, got "fast" [env OP_COORDINATOR_HEALTH__INTERVAL_MS]"#,
    );
}

#[test]
fn unknown_override_key_is_an_error_with_a_suggestion() {
    let errors = errors_of(Config::from_toml_str(
        MINIMAL,
        no_env(),
        &[("rpc.lisen".to_owned(), "127.0.0.1:0".to_owned())],
    ));
    assert_reported(&errors, "rpc.lisen", "did you mean rpc.listen?");
    assert_reported(&errors, "rpc.lisen", "command-line override");
}

#[test]
fn invalid_override_value_names_the_override() {
    let errors = errors_of(Config::from_toml_str(
        MINIMAL,
        no_env(),
        &[("health.failure_threshold".to_owned(), "0".to_owned())],
    ));
    assert_reported(
        &errors,
        "health.failure_threshold",
        "must be at least 1, got 0 [command-line override health.failure_threshold]",
    );
}

#[test]
fn malformed_config_reports_every_mistake_with_its_key() {
    let text = r#"
data_dir = ""

[rpc]
listen = "localhost"

[health]
interval_ms = "fast"
intervl_ms = 100
failure_threshold = 0
unsafe_stall_ms = 500

[failover]
rpc_timeout_ms = -5

[inspection]
enabled = "yes"

[chains.main]
block_time_ms = 1000

[chains.main.sequencers.a]
op_geth_url = "ws://127.0.0.1:8546"
priority = 1.5
candidate = false

[chains.main.sequencers."bad name"]
op_node_url = "http://127.0.0.1:7545"
op_geth_url = "http://127.0.0.1:8545"
candidate = false
"#;
    let errors = errors_of(load(text));
    let report = errors.to_string();

    assert_reported(&errors, "data_dir", "must not be empty");
    assert_reported(&errors, "rpc.listen", r#"got "localhost""#);
    assert_reported(
        &errors,
        "health.interval_ms",
        r#"expected an integer number of milliseconds, got "fast""#,
    );
    assert_reported(&errors, "health.intervl_ms", "unknown key (did you mean health.interval_ms?)");
    assert_reported(&errors, "health.failure_threshold", "must be at least 1");
    assert_reported(
        &errors,
        "health.unsafe_stall_ms",
        "health.unsafe_stall_ms = 500 ms is too short for a 1000 ms block time (at least 1500 ms)",
    );
    assert_reported(&errors, "failover.rpc_timeout_ms", "must not be negative");
    assert_reported(&errors, "inspection.enabled", r#"expected true or false, got "yes""#);
    assert_reported(&errors, "chains.main.sequencers.a.op_node_url", "missing (required)");
    assert_reported(&errors, "chains.main.sequencers.a.op_geth_url", "must be an http:// or https:// URL");
    assert_reported(&errors, "chains.main.sequencers.a.priority", "expected an integer, got 1.5");
    assert_reported(&errors, "chains.main.sequencers.bad name", "invalid name");
    assert!(report.contains("chains.main: no sequencer has candidate = true"), "{report}");
    // File errors carry their line.
    assert!(
        report.contains(
            r#"health.interval_ms: expected an integer number of milliseconds, got "fast" [config line 8]"#
        ),
        "{report}"
    );
    assert!(
        report.starts_with(&format!("invalid configuration ({} problems):", errors.errors().len())),
        "{report}"
    );
    assert_eq!(errors.errors().len(), 13, "{report}");
}

#[test]
fn key_in_the_wrong_section_suggests_the_right_one() {
    let errors = errors_of(load(&format!("probe_timeout_ms = 5\n{MINIMAL}")));
    assert_reported(&errors, "probe_timeout_ms", "did you mean health.probe_timeout_ms?");
}

#[test]
fn misspelt_section_is_an_unknown_key() {
    let errors = errors_of(load(&format!("[helth]\ninterval_ms = 5\n{MINIMAL}")));
    assert_reported(&errors, "helth", "unknown key (did you mean health?)");
}

#[test]
fn toml_syntax_error_names_the_line() {
    let text = "[health]\ninterval_ms = 100\nprobe_timeout_ms = = 5\n";
    let errors = errors_of(load(text));
    let first = &errors.errors()[0];
    assert!(matches!(first, ConfigError::Syntax { line: 3, .. }), "{errors}");
    assert!(first.to_string().starts_with("config:3:"), "{errors}");
    assert!(first.to_string().contains("TOML syntax error"), "{errors}");
}

#[test]
fn syntax_error_in_a_file_names_the_file_and_line() {
    let dir = ScratchDir::new("syntax");
    let path = dir.0.join("broken.toml");
    std::fs::write(&path, "data_dir = \"/x\"\n[health\n").expect("write");
    let errors = errors_of(Config::load(&path, no_env(), &[]));
    let text = errors.to_string();
    assert!(text.contains(&format!("{}:2:", path.display())), "{text}");
}

#[test]
fn missing_file_error_names_the_path() {
    let path = Path::new("/nonexistent/op-coordinator/config.toml");
    let errors = errors_of(Config::load(path, no_env(), &[]));
    assert_eq!(errors.errors().len(), 1);
    assert!(matches!(errors.errors()[0], ConfigError::ReadFile { .. }));
    assert!(
        errors.to_string().contains("cannot read config file /nonexistent/op-coordinator/config.toml"),
        "{errors}"
    );
}

#[test]
fn non_http_url_is_rejected() {
    for bad in ["ws://127.0.0.1:7545", "127.0.0.1:7545", "http://", "http://host:notaport", "http://ho st:1"]
    {
        let text = MINIMAL.replace("http://127.0.0.1:7545", bad);
        let errors = errors_of(load(&text));
        assert_reported(
            &errors,
            "chains.main.sequencers.a.op_node_url",
            "must be an http:// or https:// URL",
        );
    }
    for good in ["https://node.example/rpc", "http://[::1]:7545", "HTTP://127.0.0.1"] {
        let text = MINIMAL.replace("http://127.0.0.1:7545", good);
        load(&text).unwrap_or_else(|e| panic!("{good} rejected: {e}"));
    }
}

#[test]
fn wrong_type_for_a_url_is_reported() {
    let text = MINIMAL.replace("\"http://127.0.0.1:7545\"", "7545");
    let errors = errors_of(load(&text));
    assert_reported(
        &errors,
        "chains.main.sequencers.a.op_node_url",
        "expected an http:// or https:// URL (string), got 7545",
    );
}

#[test]
fn duplicate_op_node_url_in_a_chain_is_rejected() {
    let text = TWO_NODES.replace("http://127.0.0.1:7546", "http://127.0.0.1:7545/");
    let errors = errors_of(load(&text));
    assert_reported(
        &errors,
        "chains.main.sequencers.seq-b.op_node_url",
        "is already used by chains.main.sequencers.seq-a.op_node_url",
    );
}

#[test]
fn chain_without_candidate_is_rejected() {
    let text = format!("{MINIMAL}candidate = false\n");
    let errors = errors_of(load(&text));
    assert!(matches!(
        errors.errors(),
        [ConfigError::NoCandidate { chain, .. }] if chain == "main"
    ));
    assert!(errors.to_string().contains("chains.main: no sequencer has candidate = true"), "{errors}");
}

#[test]
fn config_without_chains_is_rejected() {
    let errors = errors_of(load("data_dir = \"/x\"\n"));
    assert!(
        errors.to_string().contains("chains: no chain configured; add [chains.NAME.sequencers.NODE]"),
        "{errors}"
    );
    let errors = errors_of(load("[chains.main]\nblock_time_ms = 1000\n"));
    assert!(errors.to_string().contains("chains.main: no sequencer configured"), "{errors}");
}

#[test]
fn names_outside_letters_digits_underscore_and_dash_are_rejected() {
    let text = r#"
[chains."main net".sequencers."seq.a"]
op_node_url = "http://127.0.0.1:7545"
op_geth_url = "http://127.0.0.1:8545"

[chains."".sequencers.b]
op_node_url = "http://127.0.0.1:7546"
op_geth_url = "http://127.0.0.1:8546"
"#;
    let errors = errors_of(load(text));
    assert_reported(&errors, "chains.main net", r#"invalid name "main net""#);
    assert_reported(&errors, "chains.main net.sequencers.seq.a", r#"invalid name "seq.a""#);
    assert_reported(&errors, "chains.", r#"invalid name """#);
}

#[test]
fn names_equal_ignoring_case_and_dashes_are_rejected() {
    let text = format!(
        "{TWO_NODES}\n[chains.main.sequencers.SEQ_A]\nop_node_url = \"http://127.0.0.1:7549\"\nop_geth_url = \"http://127.0.0.1:8549\"\n"
    );
    let errors = errors_of(load(&text));
    assert!(errors.to_string().contains("name clashes with"), "{errors}");
}

#[test]
fn unsafe_stall_must_exceed_block_time() {
    let text = format!("[chains.main]\nblock_time_ms = 3000\n{MINIMAL}");
    load(&text).expect("left out, the stall bound follows the block time");
    let errors = errors_of(Config::from_toml_str(
        &text,
        env(&[("OP_COORDINATOR_HEALTH__UNSAFE_STALL_MS", "2500")]),
        &[],
    ));
    assert_reported(
        &errors,
        "health.unsafe_stall_ms",
        "health.unsafe_stall_ms = 2500 ms is too short for a 3000 ms block time (at least 4500 ms)",
    );
    let fixed = Config::from_toml_str(
        &text,
        env(&[
            ("OP_COORDINATOR_HEALTH__UNSAFE_STALL_MS", "7000"),
            ("OP_COORDINATOR_FAILOVER__CHAIN_LIVENESS_WINDOW_MS", "4500"),
        ]),
        &[],
    )
    .expect("a longer stall threshold (and liveness window) fixes it");
    assert_eq!(fixed.health.unsafe_stall_ms, Some(7000));
}

#[test]
fn health_interval_outside_its_range_is_rejected() {
    for value in ["5", "60001"] {
        let errors = errors_of(Config::from_toml_str(
            MINIMAL,
            no_env(),
            &[("health.interval_ms".to_owned(), value.to_owned())],
        ));
        assert_reported(&errors, "health.interval_ms", "must be between 10 and 60000");
    }
}

#[test]
fn config_built_in_code_is_validated_without_origins() {
    let mut config = load(MINIMAL).expect("loads");
    assert!(config.validate().is_ok());
    config.health.success_threshold = 0;
    let errors = config.validate().expect_err("threshold 0 is invalid");
    assert_eq!(errors.errors()[0].to_string(), "health.success_threshold: must be at least 1, got 0");
}

#[test]
fn jwt_secret_file_is_read_and_checked_by_load() {
    let dir = ScratchDir::new("jwt");
    let secret_path = dir.0.join("jwt.hex");
    let config_path = dir.0.join("coordinator.toml");
    std::fs::write(
        &config_path,
        format!("[rpc]\njwt_secret_file = {:?}\n{MINIMAL}", secret_path.display().to_string()),
    )
    .expect("write config");

    let errors = errors_of(Config::load(&config_path, no_env(), &[]));
    assert_reported(&errors, "rpc.jwt_secret_file", &secret_path.display().to_string());

    std::fs::write(&secret_path, "0xabcd\n").expect("write secret");
    let errors = errors_of(Config::load(&config_path, no_env(), &[]));
    assert_reported(&errors, "rpc.jwt_secret_file", "expected 64 hex digits");

    std::fs::write(&secret_path, format!("0x{}\n", "0f".repeat(32))).expect("write secret");
    let config = Config::load(&config_path, no_env(), &[]).expect("loads");
    let secret = config.rpc.read_jwt_secret().expect("secret reads");
    assert_eq!(secret, Some([0x0f; 32]));

    let unset = RpcConfig::default();
    assert_eq!(unset.read_jwt_secret().expect("no file"), None);
}

#[test]
fn empty_env_value_unsets_an_optional_path() {
    let text = format!("[rpc]\njwt_secret_file = \"/etc/jwt.hex\"\n{MINIMAL}");
    let config = Config::from_toml_str(&text, env(&[("OP_COORDINATOR_RPC__JWT_SECRET_FILE", "")]), &[])
        .expect("loads");
    assert_eq!(config.rpc.jwt_secret_file, None);
}

#[test]
fn file_errors_name_the_file_and_line() {
    let dir = ScratchDir::new("lines");
    let path = dir.0.join("coordinator.toml");
    std::fs::write(&path, format!("[health]\nfailure_threshold = 0\n{MINIMAL}")).expect("write");
    let errors = errors_of(Config::load(&path, no_env(), &[]));
    let expected = ConfigError::Invalid {
        key: "health.failure_threshold".to_owned(),
        reason: "must be at least 1, got 0".to_owned(),
        origin: Some(Origin::File { path: Some(path.clone()), line: 2 }),
    }
    .to_string();
    assert_eq!(errors.errors()[0].to_string(), expected);
    assert!(expected.ends_with(&format!("[{}:2]", path.display())));
}

#[test]
fn example_config_loads() {
    let config = Config::load(&example_path(), no_env(), &[]).expect("example loads");
    let defaults = Config::default();
    // The example documents the defaults; it must not drift from them.
    assert_eq!(config.data_dir, defaults.data_dir);
    assert_eq!(config.rpc, defaults.rpc);
    assert_eq!(config.metrics, defaults.metrics);
    assert_eq!(config.health, defaults.health);
    assert_eq!(config.failover, defaults.failover);
    assert_eq!(config.inspection, defaults.inspection);

    let chain = &config.chains["devnet"];
    let priorities: Vec<(&str, i64)> =
        chain.sequencers.iter().map(|(name, s)| (name.as_str(), s.priority)).collect();
    assert_eq!(priorities, [("seq-a", 2), ("seq-b", 1), ("seq-c", 0)]);
    assert!(chain.sequencers.values().all(|s| s.candidate));
}

#[test]
fn example_config_mentions_every_key() {
    let text = std::fs::read_to_string(example_path()).expect("read example");
    for doc in KEYS {
        let leaf = doc.path.rsplit('.').next().unwrap_or(doc.path);
        assert!(text.contains(&format!("{leaf} = ")), "example lacks {}", doc.path);
    }
}

#[test]
fn key_reference_describes_every_key() {
    assert!(KEYS.len() >= 24);
    for doc in KEYS {
        assert!(!doc.description.is_empty(), "{} undocumented", doc.path);
        assert!(doc.env_var().starts_with("OP_COORDINATOR_"), "{}", doc.path);
    }
    let find =
        |path: &str| KEYS.iter().find(|doc| doc.path == path).unwrap_or_else(|| panic!("{path} not in KEYS"));
    let interval = find("health.interval_ms");
    assert_eq!(interval.kind(), KeyKind::Milliseconds);
    assert_eq!(interval.default_value().as_deref(), Some("100"));
    assert_eq!(interval.range(), Some(10..=60_000));
    assert_eq!(interval.env_var(), "OP_COORDINATOR_HEALTH__INTERVAL_MS");

    let url = find("chains.<chain>.sequencers.<node>.op_node_url");
    assert!(url.required());
    assert_eq!(url.default_value(), None);
    assert_eq!(url.kind(), KeyKind::HttpUrl);

    assert_eq!(find("rpc.jwt_secret_file").default_value(), None);
    assert!(!find("rpc.jwt_secret_file").required());
    assert_eq!(find("chains.<chain>.sequencers.<node>.candidate").default_value().as_deref(), Some("true"));
    assert_eq!(find("data_dir").default_value().as_deref(), Some(r#""./op-coordinator-data""#));
}

#[test]
fn default_config_prints_every_global_key() {
    let printed = Config::default().to_toml_string();
    for doc in KEYS.iter().filter(|d| !d.path.starts_with("chains.")) {
        let leaf = doc.path.rsplit('.').next().unwrap_or(doc.path);
        assert!(printed.contains(leaf), "{} missing from:\n{printed}", doc.path);
    }
    assert!(printed.starts_with("data_dir = "), "{printed}");
}

#[test]
fn a_liveness_window_inside_one_block_and_its_margin_is_an_error_naming_the_key_and_the_value_to_use() {
    let text = r#"
[chains.slow]
block_time_ms = 2000
[chains.slow.sequencers.a]
op_node_url = "http://127.0.0.1:7545"
op_geth_url = "http://127.0.0.1:8545"
"#;
    Config::from_toml_str(text, Vec::<(String, String)>::new(), &[])
        .expect("left out, every window follows the 2 s block time");
    let too_short = format!("[failover]\nchain_liveness_window_ms = 2001\n{text}");
    let errors = Config::from_toml_str(&too_short, Vec::<(String, String)>::new(), &[])
        .expect_err("2001 ms is above the block time but inside one block and a margin");
    let message = errors.to_string();
    assert!(
        message.contains("failover.chain_liveness_window_ms = 2001 ms is too short for a 2000 ms block time"),
        "{message}"
    );
    assert!(message.contains("use 3000"), "the error proposes the value: {message}");
    assert!(message.contains("chains.slow.block_time_ms"), "{message}");
    let fixed =
        format!("[failover]\nchain_liveness_window_ms = 2600\n[health]\nunsafe_stall_ms = 5000\n{text}");
    Config::from_toml_str(&fixed, Vec::<(String, String)>::new(), &[]).expect("windows above their floor");
}

const CLUSTER: &str = r#"
[cluster]
id = 1
[[cluster.replicas]]
id = 1
raft_addr = "127.0.0.1:9771"
api_addr = "127.0.0.1:9761"
[[cluster.replicas]]
id = 2
raft_addr = "127.0.0.1:9772"
api_addr = "127.0.0.1:9762"
[[cluster.replicas]]
id = 3
raft_addr = "127.0.0.1:9773"
api_addr = "127.0.0.1:9763"
"#;

#[test]
fn one_cluster_file_serves_every_replica_with_the_id_from_env_or_flag() {
    let text = format!("{MINIMAL}{CLUSTER}");
    let config = load(&text).expect("valid");
    let cluster = config.cluster.as_ref().expect("cluster section");
    assert_eq!((cluster.id, cluster.replicas.len()), (1, 3));
    let from_env =
        Config::from_toml_str(&text, env(&[("OP_COORDINATOR_CLUSTER__ID", "2")]), &[]).expect("valid");
    assert_eq!(from_env.cluster.as_ref().map(|c| c.id), Some(2));
    let from_flag = Config::from_toml_str(
        &text,
        env(&[("OP_COORDINATOR_CLUSTER__ID", "2")]),
        &[("cluster.id".to_owned(), "3".to_owned())],
    )
    .expect("valid");
    assert_eq!(from_flag.cluster.as_ref().map(|c| c.id), Some(3), "the flag beats the environment");
    // The printed config loads back equal, cluster included.
    assert_eq!(load(&from_flag.to_toml_string()).expect("round trip"), from_flag);
}

#[test]
fn a_cluster_id_without_a_cluster_section_or_not_a_number_is_reported() {
    let errors = errors_of(Config::from_toml_str(MINIMAL, env(&[("OP_COORDINATOR_CLUSTER__ID", "2")]), &[]));
    assert_reported(&errors, "cluster.id", "no [cluster] section");
    let text = format!("{MINIMAL}{CLUSTER}");
    let errors = errors_of(Config::from_toml_str(&text, env(&[("OP_COORDINATOR_CLUSTER__ID", "two")]), &[]));
    assert_reported(&errors, "cluster.id", "two");
}

#[test]
fn an_invalid_cluster_section_names_the_key_to_fix() {
    let text = format!("{MINIMAL}{CLUSTER}");
    let errors =
        errors_of(Config::from_toml_str(&text, no_env(), &[("cluster.id".to_owned(), "7".to_owned())]));
    assert_reported(&errors, "cluster.id", "7");
    let typo = format!("{MINIMAL}{}", CLUSTER.replace("raft_addr = \"127.0.0.1:9773\"", "raft_adr = \"x\""));
    let errors = errors_of(load(&typo));
    // The typo is reported with its own key and line, beside the key it hides.
    assert_reported(&errors, "cluster.replicas[2].raft_adr", "did you mean cluster.replicas[2].raft_addr?");
}

#[test]
fn a_joining_replica_turns_bootstrap_off_from_the_environment_or_a_flag() {
    let text = format!("{MINIMAL}{CLUSTER}");
    let config = Config::from_toml_str(&text, env(&[("OP_COORDINATOR_CLUSTER__BOOTSTRAP", "false")]), &[])
        .expect("valid");
    assert_eq!(config.cluster.as_ref().map(|c| c.bootstrap), Some(false));
    let config =
        Config::from_toml_str(&text, no_env(), &[("cluster.bootstrap".to_owned(), "false".to_owned())])
            .expect("valid");
    assert_eq!(config.cluster.as_ref().map(|c| c.bootstrap), Some(false));
    let errors =
        errors_of(Config::from_toml_str(&text, env(&[("OP_COORDINATOR_CLUSTER__BOOTSTRAP", "no")]), &[]));
    assert_reported(&errors, "cluster.bootstrap", "no");
}

#[test]
fn bad_cluster_keys_are_reported_with_every_other_problem_each_with_its_file_and_line() {
    let dir = ScratchDir::new("cluster-lines");
    let path = dir.0.join("coordinator.toml");
    let text = format!(
        "[health]\nfailure_threshold = 0\n{MINIMAL}{}",
        CLUSTER
            .replace(
                "[cluster]\nid = 1\n",
                "[cluster]\nid = 1\nheartbeat_interval_ms = \"fast\"\nbootstrap = \"yes\"\n"
            )
            .replace("raft_addr = \"127.0.0.1:9772\"", "raft_addr = 9772")
    );
    std::fs::write(&path, &text).expect("write");
    let errors = errors_of(Config::load(&path, no_env(), &[]));
    let line_of = |needle: &str| {
        text.lines().position(|line| line.starts_with(needle)).map(|index| index + 1).expect("line in text")
    };
    let at = |needle: &str| format!("[{}:{}]", path.display(), line_of(needle));
    assert_reported(&errors, "health.failure_threshold", &at("failure_threshold"));
    assert_reported(&errors, "cluster.heartbeat_interval_ms", "expected an integer number of milliseconds");
    assert_reported(&errors, "cluster.heartbeat_interval_ms", &at("heartbeat_interval_ms"));
    assert_reported(&errors, "cluster.bootstrap", r#"expected true or false, got "yes""#);
    assert_reported(&errors, "cluster.bootstrap", &at("bootstrap"));
    assert_reported(&errors, "cluster.replicas[1].raft_addr", "got 9772");
    assert_reported(&errors, "cluster.replicas[1].raft_addr", &at("raft_addr = 9772"));
    assert_eq!(errors.errors().len(), 4, "{errors}");
}

#[test]
fn every_cluster_key_is_overridable_and_checked_like_any_other() {
    let text = format!("{MINIMAL}{CLUSTER}");
    let config = Config::from_toml_str(
        &text,
        env(&[
            ("OP_COORDINATOR_CLUSTER__HEARTBEAT_INTERVAL_MS", "50"),
            ("OP_COORDINATOR_CLUSTER__REPLICAS__2__API_ADDR", "127.0.0.1:9764"),
        ]),
        &[],
    )
    .expect("valid");
    let cluster = config.cluster.as_ref().expect("cluster section");
    assert_eq!(cluster.heartbeat_interval_ms, 50);
    assert_eq!(cluster.replicas[2].api_addr, "127.0.0.1:9764");

    let errors = errors_of(Config::from_toml_str(
        &text,
        env(&[("OP_COORDINATOR_CLUSTER__REPLICAS__3__ID", "4")]),
        &[("cluster.election_timeout_min_ms".to_owned(), "50".to_owned())],
    ));
    assert_reported(
        &errors,
        "OP_COORDINATOR_CLUSTER__REPLICAS__3__ID",
        "matches no configuration key (did you mean OP_COORDINATOR_CLUSTER__REPLICAS__0__ID",
    );
    assert_reported(
        &errors,
        "cluster.election_timeout_min_ms",
        "(50) must be greater than cluster.heartbeat_interval_ms (100)",
    );
    assert_reported(&errors, "cluster.election_timeout_min_ms", "command-line override");
}

#[test]
fn a_missing_cluster_id_and_replica_address_are_reported_as_missing() {
    let text = format!(
        "{MINIMAL}{}",
        CLUSTER.replace("[cluster]\nid = 1\n", "[cluster]\n").replace("api_addr = \"127.0.0.1:9763\"\n", "")
    );
    let errors = errors_of(load(&text));
    assert_reported(&errors, "cluster.id", "missing (required)");
    assert_reported(&errors, "cluster.replicas[2].api_addr", "missing (required)");
}

#[test]
fn conductor_mode_in_a_cluster_needs_every_replicas_conductor_addr() {
    let conducted = "[chains.main]\nconductor = true\n";
    let text = format!("{conducted}{MINIMAL}{CLUSTER}");
    let errors = errors_of(load(&text));
    for i in 0..3 {
        assert_reported(
            &errors,
            &format!("cluster.replicas[{i}].conductor_addr"),
            "forwards op-node's calls",
        );
    }
    let mut with_addrs = format!("{conducted}{MINIMAL}{CLUSTER}");
    for id in 1..=3 {
        with_addrs = with_addrs.replace(
            &format!("api_addr = \"127.0.0.1:976{id}\""),
            &format!("api_addr = \"127.0.0.1:976{id}\"\nconductor_addr = \"127.0.0.1:854{id}\""),
        );
    }
    let config = load(&with_addrs).expect("valid with every conductor_addr");
    let replicas = &config.cluster.as_ref().expect("cluster").replicas;
    assert_eq!(replicas[2].conductor_addr.as_deref(), Some("127.0.0.1:8543"));
    assert_eq!(load(&config.to_toml_string()).expect("round trip"), config);
}

const CONDUCTED: &str = r#"
[chains.main]
conductor = true

[chains.main.sequencers.a]
op_node_url = "http://127.0.0.1:7545"
op_geth_url = "http://127.0.0.1:8545"
conductor_allow = ["10.0.0.5", "fd00::5"]
"#;

#[test]
fn conductor_allow_lists_addresses_from_the_file_the_environment_and_prints_them_back() {
    let config = load(CONDUCTED).expect("loads");
    let allow: Vec<String> =
        config.chains["main"].sequencers["a"].conductor_allow.iter().map(ToString::to_string).collect();
    assert_eq!(allow, ["10.0.0.5", "fd00::5"]);
    let reloaded = load(&config.to_toml_string()).expect("printed config loads");
    assert_eq!(reloaded, config);
    let variable = "OP_COORDINATOR_CHAINS__MAIN__SEQUENCERS__A__CONDUCTOR_ALLOW";
    let from_env =
        Config::from_toml_str(CONDUCTED, env(&[(variable, "192.0.2.1, 192.0.2.2")]), &[]).expect("loads");
    assert_eq!(from_env.chains["main"].sequencers["a"].conductor_allow.len(), 2);
    let emptied = Config::from_toml_str(CONDUCTED, env(&[(variable, "")]), &[]).expect("loads");
    assert!(emptied.chains["main"].sequencers["a"].conductor_allow.is_empty(), "empty: any address");
    assert!(load(MINIMAL).expect("loads").chains["main"].sequencers["a"].conductor_allow.is_empty());
}

#[test]
fn a_bad_conductor_allow_names_the_key_and_the_fix() {
    let key = "chains.main.sequencers.a.conductor_allow";
    let with_port = CONDUCTED.replace(r#""10.0.0.5""#, r#""10.0.0.5:8547""#);
    assert_reported(&errors_of(load(&with_port)), key, "no port");
    let number = CONDUCTED.replace(r#""10.0.0.5""#, "5");
    assert_reported(&errors_of(load(&number)), key, "an array of IP addresses");
    let not_a_list = CONDUCTED.replace(r#"["10.0.0.5", "fd00::5"]"#, r#""10.0.0.5""#);
    assert_reported(&errors_of(load(&not_a_list)), key, "an array of IP addresses");
    let off = CONDUCTED.replace("conductor = true", "conductor = false");
    assert_reported(&errors_of(load(&off)), key, "set chains.main.conductor = true, or remove the key");
}

#[test]
fn calm_followers_are_never_probed_more_often_than_the_others() {
    let errors =
        errors_of(load(&format!("[health]\ninterval_ms = 200\nfollower_interval_ms = 100\n{MINIMAL}")));
    assert_reported(&errors, "health.follower_interval_ms", "must be at least health.interval_ms (200)");
    let config = load(&format!("[health]\ninterval_ms = 200\nfollower_interval_ms = 200\n{MINIMAL}"))
        .expect("equal turns calm probing off");
    assert_eq!(config.health.follower_interval_ms, 200);
}
