//! The observability kit against the real thing: the Grafana dashboard
//! (`ops/grafana/op-coordinator.json`) and the Prometheus alert rules (`ops/prometheus/alerts.yml`)
//! may only use metric names and labels that a running coordinator exports.
//!
//! A coordinator watching a simulated chain is driven through an inspection stop and a fail-over,
//! so every counter and histogram has samples, and `/metrics` is scraped over raw HTTP. Every PromQL
//! expression of both files is then parsed by the small PromQL checker below, which follows label
//! sets through selectors, functions, aggregations and vector matching, so it also catches a
//! `by (node)` of a metric without `node`, an `on (chain)` one side lacks, a one-to-one match of
//! different label sets (always empty), a legend `{{node}}` or an annotation `{{ $labels.node }}`
//! of a result that has no `node`, and a matcher value (`outcome="sucess"`) no series has.
//! Finally every name of `op_coordinator::metrics::ALL` must be on the dashboard, and the alerts
//! must cover the conditions operators page on.

use op_coordinator::metrics as m;
use op_sim::SimConfig;
use op_sim::api::{FaultKind, FaultParams};
use opc_test_support::exposition::{Exposition, is_ident_char};
use opc_test_support::{BLOCK_TIME_MS, Harness, ONE_REPLICA, WAIT, scrape_metrics, wait_until};
use opc_wire::EventKind;
use serde::Deserialize;
use serde_json::Value as Json;
use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

const DASHBOARD: &str = "ops/grafana/op-coordinator.json";
const ALERTS: &str = "ops/prometheus/alerts.yml";
const OPS_README: &str = "ops/README.md";
const OPERATIONS_DOC: &str = "docs/operations.md";

/// Labels Prometheus adds to every scraped series (target labels).
const TARGET_LABELS: [&str; 2] = ["job", "instance"];

/// Conditions the alert rules must cover, as the metric family each needs.
const REQUIRED_ALERT_METRICS: [(&str, &str); 9] = [
    ("leader count not 1", m::LEADER_COUNT),
    ("chain stalled", m::UNSAFE_HEAD_AGE_SECONDS),
    ("fail-over happened", m::FAILOVERS_TOTAL),
    ("a node unhealthy for long", m::NODE_HEALTHY),
    ("paused for long", m::PAUSED),
    ("leaderless", m::PHASE),
    ("fenced for long", m::FENCED),
    ("state persist failures", m::STATE_PERSIST_FAILURES_TOTAL),
    ("coordinator down", "up"),
];

// ------------------------------------------------------------------------------------------------
// Tests
// ------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_and_alert_rules_use_only_metrics_and_labels_the_coordinator_exports() {
    let dashboard = load_dashboard();
    let rules = load_rules();

    // As a (one-replica) cluster, so the Raft metrics are exported too.
    let harness = Harness::start(ONE_REPLICA).await;
    harness.wait_for_leader("seq-0", WAIT).await;
    // An inspection stop: a second sequencer started behind the coordinator's back.
    harness.sim.fault("seq-1", FaultKind::StartSequencer, FaultParams::default()).expect("start seq-1");
    harness.wait_for_event(EventKind::InspectionStopped, Some("seq-1"), WAIT).await;
    harness.wait_for_leader("seq-0", WAIT).await;
    // A fail-over: the leader crashes.
    harness.sim.fault("seq-0", FaultKind::Crash, FaultParams::default()).expect("crash seq-0");
    harness.wait_for_event(EventKind::FailoverComplete, None, WAIT).await;
    // Conductor mode (a coordinator of its own: it runs without [cluster]); the recorder is one
    // per process, so its commits show in the same exposition.
    let conducted = Harness::start_conducted(SimConfig::uniform(1, 3, BLOCK_TIME_MS), "").await;
    conducted.wait_for("a conductor-mode leader", WAIT, |status, _| status.leader.is_some()).await;
    conducted.wait_for_blocks(3, WAIT).await;

    let addr = harness.coordinator.as_ref().expect("coordinator running").metrics_addr;
    let exposition = wait_until("/metrics to show the inspection stop and the fail-over", WAIT, || async {
        let body = scrape_metrics(addr).await;
        let exposition = Exposition::parse(&body).unwrap_or_else(|err| panic!("{err} in:\n{body}"));
        let stops = exposition.sum(m::INSPECTION_STOPS_TOTAL, &[("node", "seq-1")]);
        let failovers = exposition.sum(m::FAILOVERS_TOTAL, &[("outcome", "success")]);
        let durations = exposition.sum(&format!("{}_count", m::FAILOVER_DURATION_SECONDS), &[]);
        let commits = exposition.sum(m::CONDUCTOR_COMMITS_TOTAL, &[("result", "accepted")]);
        (stops >= 1.0 && failovers >= 1.0 && durations >= 1.0 && commits >= 1.0).then_some(exposition)
    })
    .await;
    let text = exposition.text.clone();

    // Counters exist at zero from start-up, so `increase()` in the alerts sees the first event.
    for outcome in m::FAILOVER_OUTCOMES {
        assert!(
            exposition.has(m::FAILOVERS_TOTAL, &[("outcome", outcome)]),
            "{} has no outcome={outcome} series: counters must exist at 0 from start-up (is the \
             recorder installed before the chain actors run?) in:\n{text}",
            m::FAILOVERS_TOTAL
        );
    }
    for node in ["seq-0", "seq-1", "seq-2"] {
        assert!(
            exposition.has(m::INSPECTION_STOPS_TOTAL, &[("node", node)]),
            "{} has no node={node} series: counters must exist at 0 from start-up (is the \
             recorder installed before the chain actors run?) in:\n{text}",
            m::INSPECTION_STOPS_TOTAL
        );
    }
    // Every declared metric is exported, histograms as histograms.
    for family in m::ALL {
        let kind = exposition.types.get(family).map(String::as_str);
        let histogram = m::HELP.iter().any(|(name, kind, _)| *name == family && *kind == m::Kind::Histogram);
        if histogram {
            assert_eq!(kind, Some("histogram"), "{family} is a histogram in:\n{text}");
            for suffix in ["_bucket", "_sum", "_count"] {
                let series = format!("{family}{suffix}");
                assert!(exposition.samples.contains_key(&series), "{series} not exported in:\n{text}");
            }
        } else {
            assert!(exposition.samples.contains_key(family), "{family} not exported in:\n{text}");
        }
    }

    let mut problems = Vec::new();
    let dashboard_use = check_dashboard(&dashboard, &exposition, &mut problems);
    let alerts_use = check_rules(&rules, &exposition, &mut problems);
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}\n\nexposition:\n{text}",
        problems.len(),
        problems.join("\n")
    );

    // The dashboard shows every metric; the alerts cover what operators page on.
    let missing: Vec<&str> =
        m::ALL.iter().copied().filter(|family| !dashboard_use.families.contains(*family)).collect();
    assert!(missing.is_empty(), "metrics not on the dashboard: {missing:?}");
    for (condition, family) in REQUIRED_ALERT_METRICS {
        assert!(
            alerts_use.families.contains(family),
            "no alert rule on {family} ({condition}); rules use {:?}",
            alerts_use.families
        );
    }
    // The scrape job the rules assume is the one ops/README.md tells to configure.
    let readme = read_repo_file(OPS_README);
    assert!(!alerts_use.up_jobs.is_empty(), "no rule on up{{job=...}}");
    for job in &alerts_use.up_jobs {
        assert!(
            readme.contains(&format!("job_name: {job}")),
            "{ALERTS} assumes scrape job {job:?}, but {OPS_README} has no `job_name: {job}`"
        );
    }
    // Names mentioned anywhere (descriptions, comments) exist too.
    for (file, content) in [(DASHBOARD, read_repo_file(DASHBOARD)), (ALERTS, read_repo_file(ALERTS))] {
        for name in metric_names_in(&content) {
            assert!(
                exposition.samples.contains_key(&name) || exposition.types.contains_key(&name),
                "{file} mentions {name}, which the coordinator does not export"
            );
        }
    }
}

#[test]
fn the_dashboard_is_importable_and_laid_out() {
    let dashboard = load_dashboard();
    let schema = dashboard["schemaVersion"].as_u64().expect("schemaVersion");
    assert!((36..=41).contains(&schema), "schemaVersion {schema}");
    for key in ["title", "uid"] {
        assert!(dashboard[key].as_str().is_some_and(|s| !s.is_empty()), "dashboard {key}");
    }

    let variables = dashboard["templating"]["list"].as_array().expect("templating.list");
    let variable = |name: &str| {
        variables
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no templating variable {name}"))
    };
    let datasource = variable("datasource");
    assert_eq!(datasource["type"], "datasource");
    assert_eq!(datasource["query"], "prometheus");
    let chain = variable("chain");
    assert_eq!(chain["type"], "query");
    assert_eq!(query_text(&chain["query"]), "label_values(op_coordinator_is_leader, chain)");
    assert_eq!(chain["datasource"]["uid"], "${datasource}");

    let panels = dashboard["panels"].as_array().expect("panels");
    let mut ids = BTreeSet::new();
    let mut boxes: Vec<(String, [u64; 4])> = Vec::new();
    for panel in panels {
        let title = panel["title"].as_str().expect("panel title").to_owned();
        let id = panel["id"].as_u64().unwrap_or_else(|| panic!("panel {title}: id"));
        assert!(ids.insert(id), "panel id {id} twice");
        let pos = &panel["gridPos"];
        let [x, y, w, h] = ["x", "y", "w", "h"]
            .map(|k| pos[k].as_u64().unwrap_or_else(|| panic!("panel {title}: gridPos.{k}")));
        assert!(w > 0 && h > 0 && x + w <= 24, "panel {title}: gridPos {pos}");
        for (other, [ox, oy, ow, oh]) in &boxes {
            let overlap = x < ox + ow && *ox < x + w && y < oy + oh && *oy < y + h;
            assert!(!overlap, "panels {title} and {other} overlap");
        }
        boxes.push((title.clone(), [x, y, w, h]));
        if panel["type"] == "row" {
            continue;
        }
        assert!(panel["description"].as_str().is_some_and(|d| !d.is_empty()), "panel {title}: description");
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "panel {title}: datasource");
        let targets = panel["targets"].as_array().unwrap_or_else(|| panic!("panel {title}: targets"));
        assert!(!targets.is_empty(), "panel {title}: no query");
        let mut refs = BTreeSet::new();
        for target in targets {
            assert_eq!(target["datasource"]["uid"], "${datasource}", "panel {title}: target datasource");
            let reference = target["refId"].as_str().unwrap_or_else(|| panic!("panel {title}: refId"));
            assert!(refs.insert(reference), "panel {title}: refId {reference} twice");
            assert!(target["expr"].as_str().is_some_and(|e| !e.is_empty()), "panel {title}: expr");
        }
    }
}

#[test]
fn every_alert_rule_is_complete_and_has_a_runbook() {
    let rules = load_rules();
    let operations = std::fs::read_to_string(repo_root().join(OPERATIONS_DOC)).ok();
    let anchors: BTreeSet<String> =
        operations.iter().flat_map(|doc| doc.lines()).filter_map(heading_anchor).collect();
    if operations.is_none() {
        eprintln!("{OPERATIONS_DOC} does not exist yet: runbook anchors not checked");
    }
    // Prometheus's own checker, where it is installed (`apt-get install prometheus` has it).
    let path = repo_root().join(ALERTS);
    match std::process::Command::new("promtool").arg("check").arg("rules").arg(&path).output() {
        Ok(output) => assert!(
            output.status.success(),
            "promtool check rules {ALERTS}:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(_) => eprintln!("promtool not installed: {ALERTS} checked by this test's parser only"),
    }
    let mut names = BTreeSet::new();
    assert!(!rules.groups.is_empty(), "no rule group");
    for group in &rules.groups {
        assert!(!group.rules.is_empty(), "group {} has no rule", group.name);
        if let Some(interval) = &group.interval {
            assert!(duration_is_valid(interval), "group {}: interval {interval:?}", group.name);
        }
        for rule in &group.rules {
            let name = &rule.alert;
            assert!(names.insert(name.clone()), "alert {name} twice");
            assert!(
                name.starts_with("OpCoordinator") && name.chars().all(|c| c.is_ascii_alphanumeric()),
                "alert name {name}: OpCoordinator + CamelCase"
            );
            let pending = rule.pending.as_deref().unwrap_or_else(|| panic!("{name}: no `for`"));
            assert!(duration_is_valid(pending), "{name}: for {pending:?}");
            let severity = rule.labels.get("severity").map(String::as_str);
            assert!(
                matches!(severity, Some("critical" | "warning" | "info")),
                "{name}: severity {severity:?}"
            );
            for key in ["summary", "description", "runbook_url"] {
                assert!(
                    rule.annotations.get(key).is_some_and(|v| !v.trim().is_empty()),
                    "{name}: annotation {key}"
                );
            }
            let runbook = &rule.annotations["runbook_url"];
            let expected = format!("{OPERATIONS_DOC}#{}", name.to_lowercase());
            assert_eq!(runbook, &expected, "{name}: runbook_url is the `### {name}` section");
            if operations.is_some() {
                assert!(
                    anchors.contains(&name.to_lowercase()),
                    "{name}: {OPERATIONS_DOC} has no `### {name}` heading (runbook)"
                );
            }
        }
    }
}

/// The checker itself: known-bad expressions are rejected with the right complaint, known-good
/// ones pass (so a green kit test means something).
#[test]
fn the_promql_checker_catches_what_it_claims_to() {
    let mut exposition = Exposition::default();
    for line in [
        "# TYPE op_coordinator_is_leader gauge",
        r#"op_coordinator_is_leader{chain="a",node="n0"} 1"#,
        "# TYPE op_coordinator_leader_count gauge",
        r#"op_coordinator_leader_count{chain="a"} 1"#,
        "# TYPE op_coordinator_failovers_total counter",
        r#"op_coordinator_failovers_total{chain="a",outcome="success"} 0"#,
        "# TYPE op_coordinator_probe_duration_seconds histogram",
        r#"op_coordinator_probe_duration_seconds_bucket{chain="a",node="n0",service="op_node",le="0.1"} 1"#,
        r#"op_coordinator_probe_duration_seconds_bucket{chain="a",node="n0",service="op_node",le="+Inf"} 1"#,
        r#"op_coordinator_probe_duration_seconds_sum{chain="a",node="n0",service="op_node"} 0.01"#,
        r#"op_coordinator_probe_duration_seconds_count{chain="a",node="n0",service="op_node"} 1"#,
    ] {
        exposition.add_line(line).expect("test exposition");
    }
    let check = |expr: &str| {
        let mut problems = Vec::new();
        let result = check_expr(expr, &exposition, "t", &mut problems);
        (result.map(|r| r.labels), problems.join("\n"))
    };
    let good = [
        r#"op_coordinator_is_leader{chain=~"$chain"} == 1"#,
        "sum by (chain, outcome) (increase(op_coordinator_failovers_total[5m])) > 0",
        "histogram_quantile(0.99, sum by (chain, service, le) (rate(op_coordinator_probe_duration_seconds_bucket[$__rate_interval])))",
        "max by (chain) (op_coordinator_is_leader) - on (chain) group_right op_coordinator_is_leader",
        "op_coordinator_is_leader * on (chain) group_left op_coordinator_leader_count",
        r#"up{job="op-coordinator"} == 0 or absent(up{job="op-coordinator"})"#,
        "max_over_time((op_coordinator_leader_count > 1)[10m:])",
    ];
    for expr in good {
        let (result, problems) = check(expr);
        assert!(result.is_ok() && problems.is_empty(), "{expr}: {result:?} {problems}");
    }
    let bad = [
        ("op_coordinator_is_leaders", "not exported"),
        ("op_coordinator_probe_duration_seconds", "not exported"),
        (r#"op_coordinator_leader_count{node="n0"}"#, "no label node"),
        (r#"op_coordinator_failovers_total{outcome="sucess"}"#, "no series"),
        ("sum by (node) (op_coordinator_leader_count)", "by (node)"),
        ("rate(op_coordinator_failovers_total)", "range vector"),
        ("sum(op_coordinator_failovers_total[5m])", "instant vector"),
        ("op_coordinator_is_leader / op_coordinator_leader_count", "one-to-one"),
        ("op_coordinator_is_leader * on (node) op_coordinator_leader_count", "on (node)"),
        (
            "histogram_quantile(0.5, sum by (chain) (rate(op_coordinator_probe_duration_seconds_bucket[5m])))",
            "without le",
        ),
        ("sum by (chain) (op_coordinator_is_leader", "expected"),
        ("op_coordinator_is_leader{chain=$chain}", "variable"),
        ("rated(op_coordinator_failovers_total[5m])", "unknown function"),
    ];
    for (expr, complaint) in bad {
        let (result, problems) = check(expr);
        let said = match result {
            Err(err) => format!("{err}\n{problems}"),
            Ok(_) => problems,
        };
        assert!(said.contains(complaint), "{expr}: expected a complaint with {complaint:?}, got {said:?}");
    }
    let (labels, _) = check("sum by (chain) (op_coordinator_is_leader)");
    assert_eq!(labels.expect("labels"), set(&["chain"]));
    let (labels, _) =
        check("histogram_quantile(0.5, rate(op_coordinator_probe_duration_seconds_bucket[5m]))");
    assert_eq!(labels.expect("labels"), set(&["chain", "node", "service", "job", "instance"]));
    let (labels, _) = check(r#"absent(up{job="x"})"#);
    assert_eq!(labels.expect("labels"), set(&["job"]));
}

// ------------------------------------------------------------------------------------------------
// The files
// ------------------------------------------------------------------------------------------------

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read_repo_file(path: &str) -> String {
    std::fs::read_to_string(repo_root().join(path)).unwrap_or_else(|err| panic!("read {path}: {err}"))
}

fn load_dashboard() -> Json {
    serde_json::from_str(&read_repo_file(DASHBOARD)).unwrap_or_else(|err| panic!("{DASHBOARD}: {err}"))
}

fn load_rules() -> RuleFile {
    serde_norway::from_str(&read_repo_file(ALERTS)).unwrap_or_else(|err| panic!("{ALERTS}: {err}"))
}

/// A Prometheus rule file with alerting rules only.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    groups: Vec<RuleGroup>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleGroup {
    name: String,
    #[serde(default)]
    interval: Option<String>,
    rules: Vec<AlertRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertRule {
    alert: String,
    expr: String,
    #[serde(rename = "for")]
    pending: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// What a file's expressions use.
#[derive(Debug, Default)]
struct Use {
    /// Metric families (histogram series mapped to their family), plus `up`.
    families: BTreeSet<String>,
    /// `job` values of `up{job="..."}` selectors.
    up_jobs: BTreeSet<String>,
}

impl Use {
    fn add(&mut self, checked: &Checked, exposition: &Exposition) {
        for selector in &checked.selectors {
            self.families.insert(exposition.family(&selector.name).unwrap_or(&selector.name).to_owned());
            if selector.name == "up"
                && let Some((_, _, job)) =
                    selector.matchers.iter().find(|(label, op, _)| label == "job" && op == "=")
            {
                self.up_jobs.insert(job.clone());
            }
        }
    }
}

/// Checks every query, legend and variable of the dashboard; returns what it uses.
fn check_dashboard(dashboard: &Json, exposition: &Exposition, problems: &mut Vec<String>) -> Use {
    let mut used = Use::default();
    let mut check = |context: String, expr: &str, templates: &[&str], problems: &mut Vec<String>| {
        let Ok(checked) = check_expr(expr, exposition, &context, problems) else { return };
        // Raft metrics describe the replica, and the timer lag the process, not a chain: they have
        // no `chain` label to filter by.
        for selector in checked.selectors.iter().filter(|s| {
            s.name.starts_with("op_coordinator_")
                && !s.name.starts_with("op_coordinator_raft_")
                && s.name != m::TIMER_LAG_SECONDS
        }) {
            let filtered = selector
                .matchers
                .iter()
                .any(|(label, op, value)| label == "chain" && op == "=~" && value == "$chain");
            if !filtered {
                problems.push(format!("{context}: {} is not filtered by chain=~\"$chain\"", selector.name));
            }
        }
        for template in templates {
            for label in grafana_template_labels(template) {
                if !checked.labels.contains(&label) {
                    problems.push(format!(
                        "{context}: template {template:?} uses {{{{{label}}}}}, but the result only has {:?}",
                        checked.labels
                    ));
                }
            }
        }
        used.add(&checked, exposition);
    };

    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        let title = panel["title"].as_str().unwrap_or("?");
        for target in panel["targets"].as_array().into_iter().flatten() {
            let reference = target["refId"].as_str().unwrap_or("?");
            let expr = target["expr"].as_str().unwrap_or("");
            let legend = target["legendFormat"].as_str().unwrap_or("");
            check(format!("{DASHBOARD}: panel {title:?} query {reference}"), expr, &[legend], problems);
        }
    }
    for annotation in dashboard["annotations"]["list"].as_array().into_iter().flatten() {
        if let Some(expr) = annotation["expr"].as_str() {
            let name = annotation["name"].as_str().unwrap_or("?");
            let templates: Vec<&str> = ["titleFormat", "textFormat", "tagKeys"]
                .iter()
                .filter_map(|k| annotation[*k].as_str())
                .collect();
            check(format!("{DASHBOARD}: annotation {name:?}"), expr, &templates, problems);
        }
    }
    for variable in dashboard["templating"]["list"].as_array().into_iter().flatten() {
        if variable["type"] != "query" {
            continue;
        }
        let name = variable["name"].as_str().unwrap_or("?");
        let query = query_text(&variable["query"]);
        let context = format!("{DASHBOARD}: variable {name}");
        let Some(args) = query.strip_prefix("label_values(").and_then(|rest| rest.strip_suffix(')')) else {
            problems.push(format!("{context}: only label_values(metric, label) is checked: {query}"));
            continue;
        };
        let Some((selector, label)) = args.rsplit_once(',') else {
            problems.push(format!("{context}: {query}"));
            continue;
        };
        let (selector, label) = (selector.trim(), label.trim());
        if let Ok(checked) = check_expr(selector, exposition, &context, problems) {
            if !checked.labels.contains(label) {
                problems.push(format!("{context}: {selector} has no label {label}"));
            }
            used.add(&checked, exposition);
        }
    }
    used
}

/// Checks every alert expression and its label templates; returns what the rules use.
fn check_rules(rules: &RuleFile, exposition: &Exposition, problems: &mut Vec<String>) -> Use {
    let mut used = Use::default();
    for rule in rules.groups.iter().flat_map(|group| &group.rules) {
        let context = format!("{ALERTS}: alert {}", rule.alert);
        let Ok(checked) = check_expr(&rule.expr, exposition, &context, problems) else { continue };
        for (key, text) in rule.labels.iter().chain(&rule.annotations) {
            for label in alert_template_labels(text) {
                if !checked.labels.contains(&label) {
                    problems.push(format!(
                        "{context}: {key} uses $labels.{label}, but the expression only yields {:?}",
                        checked.labels
                    ));
                }
            }
        }
        used.add(&checked, exposition);
    }
    used
}

/// A variable's query: a string, or Grafana 10's `{ "query": ... }` object.
fn query_text(query: &Json) -> String {
    query.as_str().or_else(|| query["query"].as_str()).unwrap_or_default().to_owned()
}

/// `{{label}}` references of a Grafana legend or annotation format.
fn grafana_template_labels(template: &str) -> Vec<String> {
    let mut labels = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        labels.push(after[..end].trim().to_owned());
        rest = &after[end + 2..];
    }
    labels
}

/// `$labels.name` references of an alert label or annotation.
fn alert_template_labels(text: &str) -> Vec<String> {
    text.split("$labels.")
        .skip(1)
        .map(|after| after.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect())
        .collect()
}

/// Every `op_coordinator_[a-z0-9_]+` identifier in `text`.
fn metric_names_in(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("op_coordinator_") {
        let preceded_by_ident = rest[..start].chars().next_back().is_some_and(is_ident_char);
        let name: String = rest[start..].chars().take_while(|c| is_ident_char(*c)).collect();
        rest = &rest[start + name.len()..];
        // `op_coordinator_*` in prose names the namespace, not a metric.
        if !preceded_by_ident && name != "op_coordinator_" {
            names.insert(name);
        }
    }
    names
}

/// The GitHub anchor of a Markdown heading line.
fn heading_anchor(line: &str) -> Option<String> {
    let title = line.trim_start().strip_prefix('#')?.trim_start_matches('#').trim();
    Some(
        title
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .collect(),
    )
}

/// A Prometheus duration: one or more `<digits><unit>`.
fn duration_is_valid(text: &str) -> bool {
    let mut rest = text;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        let Some(unit) = ["ms", "s", "m", "h", "d", "w", "y"].iter().find(|unit| rest.starts_with(**unit))
        else {
            return false;
        };
        rest = &rest[unit.len()..];
    }
    true
}

fn set(labels: &[&str]) -> BTreeSet<String> {
    labels.iter().map(|label| (*label).to_owned()).collect()
}

// ------------------------------------------------------------------------------------------------
// /metrics
// ------------------------------------------------------------------------------------------------

// ------------------------------------------------------------------------------------------------
// A PromQL checker: parses an expression and follows the label set of its result
// ------------------------------------------------------------------------------------------------

/// A selector as written.
#[derive(Debug, Clone)]
struct Selector {
    name: String,
    /// (label, operator, value).
    matchers: Vec<(String, String, String)>,
}

/// The outcome of checking an expression that parsed.
#[derive(Debug)]
struct Checked {
    /// Labels every series of the result carries (for legends and annotations).
    labels: BTreeSet<String>,
    selectors: Vec<Selector>,
}

/// Parses `expr` (Grafana's `$__rate_interval`, `$__interval` and `$__range` read as `5m`;
/// variables may only appear inside strings) and checks it against `exposition`. Semantic
/// problems go to `problems`, prefixed with `context`; a syntax error is returned (and pushed).
fn check_expr(
    expr: &str,
    exposition: &Exposition,
    context: &str,
    problems: &mut Vec<String>,
) -> Result<Checked, String> {
    let mut text = expr.to_owned();
    for macro_name in ["__rate_interval", "__interval", "__range"] {
        text = text.replace(&format!("${{{macro_name}}}"), "5m").replace(&format!("${macro_name}"), "5m");
    }
    let outcome = lex(&text).and_then(|tokens| {
        let mut parser = Parser { tokens, at: 0, exposition, problems: Vec::new(), selectors: Vec::new() };
        let ty = parser.expr(0)?;
        if let Some(token) = parser.tokens.get(parser.at) {
            return Err(format!("unexpected {token:?} after the expression"));
        }
        Ok((ty, parser.problems, parser.selectors))
    });
    match outcome {
        Ok((ty, found, selectors)) => {
            problems.extend(found.into_iter().map(|problem| format!("{context}: {problem} in `{expr}`")));
            let labels = match ty {
                Ty::Vector(labels) => labels,
                other => {
                    problems.push(format!("{context}: `{expr}` is a {other:?}, not an instant vector"));
                    BTreeSet::new()
                }
            };
            Ok(Checked { labels, selectors })
        }
        Err(err) => {
            problems.push(format!("{context}: cannot parse `{expr}`: {err}"));
            Err(err)
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Number(f64),
    Duration(String),
    Str(String),
    Op(String),
    Open(char),
    Close(char),
    Comma,
    Colon,
}

fn lex(text: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        i += 1;
        match c {
            c if c.is_whitespace() => {}
            '(' | '{' | '[' => tokens.push(Tok::Open(c)),
            ')' | '}' | ']' => tokens.push(Tok::Close(c)),
            ',' => tokens.push(Tok::Comma),
            ':' => tokens.push(Tok::Colon),
            '"' | '\'' | '`' => {
                let mut value = String::new();
                loop {
                    let Some(&next) = chars.get(i) else { return Err("unterminated string".into()) };
                    i += 1;
                    match next {
                        '\\' if c != '`' => {
                            value.push(*chars.get(i).ok_or("bad escape")?);
                            i += 1;
                        }
                        next if next == c => break,
                        next => value.push(next),
                    }
                }
                tokens.push(Tok::Str(value));
            }
            '$' => return Err(format!("a variable outside a string at {:?}", &text[start..])),
            c if c.is_ascii_digit() || (c == '.' && chars.get(i).is_some_and(char::is_ascii_digit)) => {
                while i < chars.len()
                    && (chars[i].is_ascii_digit()
                        || chars[i] == '.'
                        || ((chars[i] == 'e' || chars[i] == 'E')
                            && chars
                                .get(i + 1)
                                .is_some_and(|n| n.is_ascii_digit() || *n == '-' || *n == '+'))
                        || ((chars[i] == '-' || chars[i] == '+') && matches!(chars[i - 1], 'e' | 'E')))
                {
                    i += 1;
                }
                if chars.get(i).is_some_and(char::is_ascii_alphabetic) {
                    while chars.get(i).is_some_and(char::is_ascii_alphanumeric) {
                        i += 1;
                    }
                    let duration: String = chars[start..i].iter().collect();
                    if !duration_is_valid(&duration) {
                        return Err(format!("bad duration {duration}"));
                    }
                    tokens.push(Tok::Duration(duration));
                } else {
                    let number: String = chars[start..i].iter().collect();
                    tokens.push(Tok::Number(number.parse().map_err(|_| format!("bad number {number}"))?));
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                while chars.get(i).copied().is_some_and(is_ident_char) {
                    i += 1;
                }
                tokens.push(Tok::Ident(chars[start..i].iter().collect()));
            }
            _ => {
                let two: String = chars[start..(start + 2).min(chars.len())].iter().collect();
                if ["==", "!=", ">=", "<=", "=~", "!~"].contains(&two.as_str()) {
                    i += 1;
                    tokens.push(Tok::Op(two));
                } else if "+-*/%^<>=".contains(c) {
                    tokens.push(Tok::Op(c.to_string()));
                } else {
                    return Err(format!("unexpected character {c:?}"));
                }
            }
        }
    }
    Ok(tokens)
}

/// The type of an expression, with the labels its series carry.
#[derive(Debug, Clone)]
enum Ty {
    Scalar,
    Str(String),
    Vector(BTreeSet<String>),
    Range(BTreeSet<String>),
}

const AGGREGATIONS: [&str; 13] = [
    "sum",
    "avg",
    "min",
    "max",
    "count",
    "group",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "limitk",
    "quantile",
    "count_values",
];
/// Functions of a range vector (and maybe scalars) that return its labels.
const RANGE_FUNCTIONS: [&str; 21] = [
    "rate",
    "irate",
    "increase",
    "delta",
    "idelta",
    "deriv",
    "changes",
    "resets",
    "avg_over_time",
    "min_over_time",
    "max_over_time",
    "sum_over_time",
    "count_over_time",
    "last_over_time",
    "stddev_over_time",
    "stdvar_over_time",
    "present_over_time",
    "quantile_over_time",
    "predict_linear",
    "holt_winters",
    "mad_over_time",
];
/// Functions of an instant vector (and maybe scalars) that return its labels.
const VECTOR_FUNCTIONS: [&str; 16] = [
    "abs",
    "ceil",
    "floor",
    "round",
    "exp",
    "ln",
    "log2",
    "log10",
    "sqrt",
    "sgn",
    "clamp",
    "clamp_min",
    "clamp_max",
    "sort",
    "sort_desc",
    "timestamp",
];

/// Functions with a signature of their own (see `Parser::call`).
const SPECIAL_FUNCTIONS: [&str; 8] = [
    "time",
    "vector",
    "scalar",
    "histogram_quantile",
    "label_replace",
    "absent",
    "absent_over_time",
    "quantile_over_time",
];

struct Parser<'a> {
    tokens: Vec<Tok>,
    at: usize,
    exposition: &'a Exposition,
    problems: Vec<String>,
    selectors: Vec<Selector>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Result<Tok, String> {
        let token = self.tokens.get(self.at).cloned().ok_or("expected more, found the end")?;
        self.at += 1;
        Ok(token)
    }

    fn expect(&mut self, wanted: &Tok) -> Result<(), String> {
        let token = self.next()?;
        if &token == wanted { Ok(()) } else { Err(format!("expected {wanted:?}, found {token:?}")) }
    }

    fn eat_ident(&mut self, word: &str) -> bool {
        let found = matches!(self.peek(), Some(Tok::Ident(ident)) if ident == word);
        if found {
            self.at += 1;
        }
        found
    }

    fn label_list(&mut self) -> Result<Vec<String>, String> {
        self.expect(&Tok::Open('('))?;
        let mut labels = Vec::new();
        loop {
            match self.next()? {
                Tok::Close(')') => return Ok(labels),
                Tok::Comma => {}
                Tok::Ident(label) => labels.push(label),
                other => return Err(format!("expected a label, found {other:?}")),
            }
        }
    }

    fn binary_operator(&self) -> Option<(String, u8)> {
        let op = match self.peek()? {
            Tok::Op(op) => op.clone(),
            Tok::Ident(word) if ["and", "or", "unless", "atan2"].contains(&word.as_str()) => word.clone(),
            _ => return None,
        };
        let precedence = match op.as_str() {
            "or" => 1,
            "and" | "unless" => 2,
            "==" | "!=" | "<=" | "<" | ">=" | ">" => 3,
            "+" | "-" => 4,
            "*" | "/" | "%" | "atan2" => 5,
            "^" => 6,
            _ => return None,
        };
        Some((op, precedence))
    }

    fn expr(&mut self, min_precedence: u8) -> Result<Ty, String> {
        let mut lhs = self.unary()?;
        while let Some((op, precedence)) = self.binary_operator() {
            if precedence < min_precedence {
                break;
            }
            self.at += 1;
            self.eat_ident("bool");
            let mut matching = None;
            for word in ["on", "ignoring"] {
                if self.eat_ident(word) {
                    matching = Some((word, self.label_list()?));
                }
            }
            let mut group = None;
            for word in ["group_left", "group_right"] {
                if self.eat_ident(word) {
                    let extra = if matches!(self.peek(), Some(Tok::Open('('))) {
                        self.label_list()?
                    } else {
                        Vec::new()
                    };
                    group = Some((word, extra));
                }
            }
            let right_associative = op == "^";
            let rhs = self.expr(if right_associative { precedence } else { precedence + 1 })?;
            lhs = self.binary(&op, matching, group, lhs, rhs);
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<Ty, String> {
        if matches!(self.peek(), Some(Tok::Op(op)) if op == "-" || op == "+") {
            self.at += 1;
            return self.unary();
        }
        let ty = self.primary()?;
        if matches!(self.peek(), Some(Tok::Open('['))) {
            // A subquery: `(expr)[range:step]`.
            let labels = match ty {
                Ty::Vector(labels) => labels,
                other => {
                    self.problems.push(format!("a subquery of a {other:?}"));
                    BTreeSet::new()
                }
            };
            self.range_suffix(true)?;
            return Ok(Ty::Range(labels));
        }
        Ok(ty)
    }

    /// `[5m]`, or `[5m:]` / `[5m:1m]` when `subquery`.
    fn range_suffix(&mut self, subquery: bool) -> Result<(), String> {
        self.expect(&Tok::Open('['))?;
        if !matches!(self.next()?, Tok::Duration(_)) {
            return Err("expected a duration in [...]".into());
        }
        if matches!(self.peek(), Some(Tok::Colon)) {
            if !subquery {
                return Err("a subquery step on a plain selector range".into());
            }
            self.at += 1;
            if matches!(self.peek(), Some(Tok::Duration(_))) {
                self.at += 1;
            }
        } else if subquery {
            return Err("a subquery needs [range:step]".into());
        }
        self.expect(&Tok::Close(']'))
    }

    fn primary(&mut self) -> Result<Ty, String> {
        match self.next()? {
            Tok::Number(_) => Ok(Ty::Scalar),
            Tok::Str(value) => Ok(Ty::Str(value)),
            Tok::Open('(') => {
                let ty = self.expr(0)?;
                self.expect(&Tok::Close(')'))?;
                Ok(ty)
            }
            Tok::Ident(name) if AGGREGATIONS.contains(&name.as_str()) => self.aggregation(&name),
            Tok::Ident(name) if matches!(self.peek(), Some(Tok::Open('('))) => {
                self.at += 1;
                let mut args = Vec::new();
                if matches!(self.peek(), Some(Tok::Close(')'))) {
                    self.at += 1;
                } else {
                    loop {
                        args.push(self.expr(0)?);
                        match self.next()? {
                            Tok::Comma => {}
                            Tok::Close(')') => break,
                            other => return Err(format!("expected , or ) in {name}(), found {other:?}")),
                        }
                    }
                }
                Ok(self.call(&name, args))
            }
            Tok::Ident(name) => self.selector(name),
            other => Err(format!("unexpected {other:?}")),
        }
    }

    fn selector(&mut self, name: String) -> Result<Ty, String> {
        let mut matchers = Vec::new();
        if matches!(self.peek(), Some(Tok::Open('{'))) {
            self.at += 1;
            loop {
                match self.next()? {
                    Tok::Close('}') => break,
                    Tok::Comma => {}
                    Tok::Ident(label) => {
                        let op = match self.next()? {
                            Tok::Op(op) if ["=", "!=", "=~", "!~"].contains(&op.as_str()) => op,
                            other => return Err(format!("expected a matcher operator, found {other:?}")),
                        };
                        let Tok::Str(value) = self.next()? else {
                            return Err("expected a quoted value".into());
                        };
                        matchers.push((label, op, value));
                    }
                    other => return Err(format!("expected a label matcher, found {other:?}")),
                }
            }
        }
        let known = if name == "up" {
            Some(set(&[]))
        } else if name.starts_with("op_coordinator_") {
            self.exposition.labels(&name)
        } else {
            None
        };
        let mut labels = known.clone().unwrap_or_default();
        labels.extend(TARGET_LABELS.map(str::to_owned));
        match &known {
            None => self.problems.push(format!("{name} is not exported by the coordinator")),
            Some(_) => {
                for (label, op, value) in &matchers {
                    if !labels.contains(label) {
                        self.problems.push(format!("{name} has no label {label}"));
                    } else if name != "up" && !TARGET_LABELS.contains(&label.as_str()) && !value.contains('$')
                    {
                        self.check_matcher_value(&name, label, op, value);
                    }
                }
            }
        }
        self.selectors.push(Selector { name: name.clone(), matchers });
        if matches!(self.peek(), Some(Tok::Open('['))) {
            self.range_suffix(false)?;
            return Ok(Ty::Range(labels));
        }
        Ok(Ty::Vector(labels))
    }

    /// A literal `=` or `!=` value, or each alternative of a plain `a|b|c` regex, must be a value
    /// some series has.
    fn check_matcher_value(&mut self, name: &str, label: &str, op: &str, value: &str) {
        let exported = self.exposition.values(name, label);
        let alternatives: Vec<&str> = match op {
            "=" | "!=" => vec![value],
            _ if value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '|') => {
                value.split('|').collect()
            }
            _ => Vec::new(),
        };
        for alternative in alternatives {
            if !exported.contains(alternative) {
                self.problems.push(format!(
                    "no series of {name} has {label}=\"{alternative}\" (exported: {exported:?})"
                ));
            }
        }
    }

    fn aggregation(&mut self, op: &str) -> Result<Ty, String> {
        let mut grouping = None;
        for word in ["by", "without"] {
            if self.eat_ident(word) {
                grouping = Some((word, self.label_list()?));
            }
        }
        self.expect(&Tok::Open('('))?;
        let mut parameter = None;
        if ["topk", "bottomk", "limitk", "quantile", "count_values"].contains(&op) {
            parameter = Some(self.expr(0)?);
            self.expect(&Tok::Comma)?;
        }
        let arg = self.expr(0)?;
        self.expect(&Tok::Close(')'))?;
        for word in ["by", "without"] {
            if grouping.is_none() && self.eat_ident(word) {
                grouping = Some((word, self.label_list()?));
            }
        }
        let Ty::Vector(labels) = arg else {
            self.problems.push(format!("{op}() needs an instant vector, got {arg:?}"));
            return Ok(Ty::Vector(BTreeSet::new()));
        };
        let keeps_series = ["topk", "bottomk", "limitk"].contains(&op);
        let mut out = match &grouping {
            Some(("by", by)) => {
                for label in by {
                    if !labels.contains(label) {
                        self.problems
                            .push(format!("{op} by ({label}) of a vector without {label} ({labels:?})"));
                    }
                }
                if keeps_series { labels.clone() } else { by.iter().cloned().collect() }
            }
            Some((_, without)) => labels.iter().filter(|label| !without.contains(label)).cloned().collect(),
            None if keeps_series => labels.clone(),
            None => BTreeSet::new(),
        };
        if op == "count_values"
            && let Some(Ty::Str(label)) = parameter
        {
            out.insert(label);
        }
        Ok(Ty::Vector(out))
    }

    fn call(&mut self, name: &str, args: Vec<Ty>) -> Ty {
        let signature =
            |args: &[Ty]| args.iter().map(|arg| format!("{arg:?}")).collect::<Vec<_>>().join(", ");
        match (name, args.as_slice()) {
            ("time", []) => Ty::Scalar,
            ("vector", [Ty::Scalar]) => Ty::Vector(BTreeSet::new()),
            ("scalar", [Ty::Vector(_)]) => Ty::Scalar,
            ("histogram_quantile", [Ty::Scalar, Ty::Vector(labels)]) => {
                if !labels.contains("le") {
                    self.problems.push(format!("histogram_quantile of a vector without le ({labels:?})"));
                }
                Ty::Vector(labels.iter().filter(|label| *label != "le").cloned().collect())
            }
            (
                "label_replace",
                [Ty::Vector(labels), Ty::Str(target), Ty::Str(_), Ty::Str(source), Ty::Str(_)],
            ) => {
                if !source.is_empty() && !labels.contains(source) {
                    self.problems.push(format!("label_replace from {source}, which the vector lacks"));
                }
                let mut out = labels.clone();
                out.insert(target.clone());
                Ty::Vector(out)
            }
            ("absent", [Ty::Vector(_)]) | ("absent_over_time", [Ty::Range(_)]) => {
                // The result carries the labels of the `=` matchers of the selector inside.
                let selector = self.selectors.last();
                Ty::Vector(
                    selector
                        .into_iter()
                        .flat_map(|s| &s.matchers)
                        .filter(|(_, op, _)| op == "=")
                        .map(|(label, _, _)| label.clone())
                        .collect(),
                )
            }
            ("quantile_over_time", [Ty::Scalar, Ty::Range(labels)]) => Ty::Vector(labels.clone()),
            (name, [Ty::Range(labels), rest @ ..])
                if RANGE_FUNCTIONS.contains(&name) && rest.iter().all(|arg| matches!(arg, Ty::Scalar)) =>
            {
                Ty::Vector(labels.clone())
            }
            (name, [Ty::Vector(labels), rest @ ..])
                if VECTOR_FUNCTIONS.contains(&name) && rest.iter().all(|arg| matches!(arg, Ty::Scalar)) =>
            {
                Ty::Vector(labels.clone())
            }
            (name, args) if RANGE_FUNCTIONS.contains(&name) => {
                self.problems.push(format!("{name}() needs a range vector, got ({})", signature(args)));
                Ty::Vector(BTreeSet::new())
            }
            (name, args) if VECTOR_FUNCTIONS.contains(&name) || SPECIAL_FUNCTIONS.contains(&name) => {
                self.problems
                    .push(format!("{name}() does not take ({}) (an instant vector?)", signature(args)));
                Ty::Vector(BTreeSet::new())
            }
            (name, _) => {
                self.problems.push(format!("unknown function {name}()"));
                Ty::Vector(BTreeSet::new())
            }
        }
    }

    fn binary(
        &mut self,
        op: &str,
        matching: Option<(&str, Vec<String>)>,
        group: Option<(&str, Vec<String>)>,
        lhs: Ty,
        rhs: Ty,
    ) -> Ty {
        let set_operator = ["and", "or", "unless"].contains(&op);
        let (l, r) = match (lhs, rhs) {
            (Ty::Scalar, Ty::Scalar) if !set_operator => return Ty::Scalar,
            (Ty::Vector(labels), Ty::Scalar) | (Ty::Scalar, Ty::Vector(labels)) if !set_operator => {
                return Ty::Vector(labels);
            }
            (Ty::Vector(l), Ty::Vector(r)) => (l, r),
            (lhs, rhs) => {
                self.problems.push(format!("operator {op} between {lhs:?} and {rhs:?}"));
                return Ty::Vector(BTreeSet::new());
            }
        };
        let both =
            |labels: &BTreeSet<String>| -> BTreeSet<String> { labels.intersection(&r).cloned().collect() };
        if let Some((_, on)) = matching.as_ref().filter(|(word, _)| *word == "on") {
            for label in on {
                if !l.contains(label) || !r.contains(label) {
                    self.problems
                        .push(format!("{op} on ({label}): {label} missing on one side ({l:?} {op} {r:?})"));
                }
            }
        }
        if let Some((side, extra)) = &group {
            if set_operator {
                self.problems.push(format!("{side} with {op}"));
            }
            let (many, one) = if *side == "group_left" { (&l, &r) } else { (&r, &l) };
            let mut out = many.clone();
            for label in extra {
                if !one.contains(label) {
                    self.problems.push(format!("{side}({label}): the other side has no {label}"));
                }
                out.insert(label.clone());
            }
            return Ty::Vector(out);
        }
        match (op, &matching) {
            ("or", _) => Ty::Vector(both(&l)),
            (_, None) => {
                if l != r {
                    self.problems.push(format!(
                        "one-to-one {op} of different label sets never matches: {l:?} vs {r:?} (use on/ignoring)"
                    ));
                }
                Ty::Vector(l)
            }
            ("and" | "unless", Some(_)) => Ty::Vector(l),
            (_, Some(("on", on))) => Ty::Vector(on.iter().cloned().collect()),
            (_, Some((_, ignoring))) => {
                let kept = |labels: &BTreeSet<String>| -> BTreeSet<String> {
                    labels.iter().filter(|label| !ignoring.contains(label)).cloned().collect()
                };
                if kept(&l) != kept(&r) {
                    self.problems.push(format!("{op} ignoring(...) still differs: {l:?} vs {r:?}"));
                }
                Ty::Vector(kept(&l))
            }
        }
    }
}
