//! The chart's Grafana dashboard and PrometheusRule, rendered by `helm template`, are checked
//! offline against the metrics the operator really exports: every PromQL expression (alerts,
//! panels, dashboard variables) parses, names only metrics of the operator's registry (read from
//! its exposition, `stratus::metrics::sample()`, not from a list kept here), filters and groups
//! only by labels those metrics have (or that Prometheus adds to every scraped series), and the
//! legends and alert texts use only labels the expression keeps. Both are off by default.
//!
//! helm comes from `STRATUS_HELM`, else PATH, else `scripts/install-helm`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use promql_parser::label::Matcher;
use promql_parser::parser::{self, Expr, LabelModifier};
use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

const RELEASE: &str = "mon";
const NAMESPACE: &str = "stratus-system";

/// Labels Prometheus (with a prometheus-operator ServiceMonitor) puts on every scraped series.
const TARGET_LABELS: &[&str] = &[
    "job",
    "namespace",
    "instance",
    "pod",
    "service",
    "endpoint",
    "container",
];

/// Series Prometheus itself makes for every target; the operator does not export them.
const PROMETHEUS_SERIES: &[&str] = &["up"];

/// Functions the chart may use; anything else is probably a typo or a non-Prometheus dialect.
const FUNCTIONS: &[&str] = &[
    "rate",
    "increase",
    "irate",
    "histogram_quantile",
    "absent",
    "clamp_min",
    "max_over_time",
    "min_over_time",
];

fn helm() -> String {
    if let Ok(h) = std::env::var("STRATUS_HELM") {
        return h;
    }
    if Command::new("helm").arg("version").output().is_ok() {
        return "helm".into();
    }
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/install-helm"))
        .output()
        .expect("scripts/install-helm");
    assert!(
        out.status.success(),
        "scripts/install-helm: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = String::from_utf8(out.stdout).unwrap();
    Path::new(dir.trim()).join("helm").display().to_string()
}

/// The chart rendered with `--set` values, as YAML documents.
fn render(values: &[&str]) -> Vec<Yaml> {
    let out = Command::new(helm())
        .args([
            "template",
            RELEASE,
            concat!(env!("CARGO_MANIFEST_DIR"), "/charts/stratus"),
        ])
        .args(["--namespace", NAMESPACE])
        .args(values.iter().flat_map(|v| ["--set", v]))
        .output()
        .expect("running helm");
    assert!(
        out.status.success(),
        "helm template {values:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    text.split("\n---")
        .filter_map(|doc| serde_yaml::from_str::<Yaml>(doc).ok())
        .filter(|d| d.get("kind").is_some())
        .collect()
}

fn find<'a>(docs: &'a [Yaml], kind: &str) -> Vec<&'a Yaml> {
    docs.iter()
        .filter(|d| d["kind"].as_str() == Some(kind))
        .collect()
}

fn both_enabled() -> Vec<Yaml> {
    render(&[
        "grafanaDashboard.enabled=true",
        "prometheusRule.enabled=true",
        "prometheusRule.runbookBaseUrl=https://example.com/docs/install.md",
    ])
}

/// Every series name the operator exports, with its label names, from the text exposition of a
/// registry with one series per family. Counters appear with `_total`, histograms as
/// `_bucket` (with `le`), `_sum` and `_count`: the names queries use.
fn exported() -> BTreeMap<String, BTreeSet<String>> {
    let text = stratus::metrics::sample().encode();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (name, rest) = match line.find(['{', ' ']) {
            Some(i) => line.split_at(i),
            None => continue,
        };
        let labels = out.entry(name.to_string()).or_default();
        if let Some(body) = rest.strip_prefix('{').and_then(|r| r.split_once('}')) {
            labels.extend(label_names(body.0));
        }
    }
    assert!(
        out.contains_key("controller_runtime_reconcile_total"),
        "the exposition has no reconcile counter:\n{text}"
    );
    out
}

/// The label names of `a="x",b="y"` (values may hold commas and escaped quotes).
fn label_names(body: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = body;
    while let Some((name, after)) = rest.split_once("=\"") {
        names.push(name.trim_start_matches(',').trim().to_string());
        let mut escaped = false;
        let end = after
            .char_indices()
            .find(|&(_, c)| {
                let end = c == '"' && !escaped;
                escaped = c == '\\' && !escaped;
                end
            })
            .map(|(i, _)| i)
            .expect("a closing quote");
        rest = &after[end + 1..];
    }
    names
}

/// Checks PromQL against the exported metrics, collecting every problem.
struct Checker {
    exported: BTreeMap<String, BTreeSet<String>>,
    problems: Vec<String>,
    used: BTreeSet<String>,
}

impl Checker {
    fn new() -> Self {
        Self {
            exported: exported(),
            problems: Vec::new(),
            used: BTreeSet::new(),
        }
    }

    /// Parse `query` (from `what`) and check it; returns the labels its result series carry.
    fn query(&mut self, what: &str, query: &str) -> BTreeSet<String> {
        match parser::parse(query) {
            Ok(expr) => {
                let mut labels = self.expr(what, &expr);
                labels.remove("__name__");
                labels
            }
            Err(e) => {
                self.problems
                    .push(format!("{what}: does not parse: {e}\n  {query}"));
                BTreeSet::new()
            }
        }
    }

    /// The series name of a selector, checked against the exports; returns its labels.
    fn selector(
        &mut self,
        what: &str,
        name: Option<&str>,
        matchers: &[Matcher],
    ) -> BTreeSet<String> {
        let name = name.map(str::to_string).or_else(|| {
            matchers
                .iter()
                .find(|m| m.name == "__name__")
                .map(|m| m.value.clone())
        });
        let Some(name) = name else {
            self.problems
                .push(format!("{what}: a selector without a metric name"));
            return BTreeSet::new();
        };
        let mut labels: BTreeSet<String> = TARGET_LABELS.iter().map(|l| l.to_string()).collect();
        if PROMETHEUS_SERIES.contains(&name.as_str()) {
            // Only target labels.
        } else if let Some(own) = self.exported.get(&name) {
            labels.extend(own.iter().cloned());
            self.used.insert(name.clone());
        } else {
            self.problems.push(format!(
                "{what}: `{name}` is not a metric the operator exports (exported: {:?})",
                self.exported.keys().collect::<Vec<_>>()
            ));
            return BTreeSet::new();
        }
        for m in matchers.iter().filter(|m| m.name != "__name__") {
            if !labels.contains(&m.name) {
                self.problems.push(format!(
                    "{what}: `{name}` has no label `{}` (it has {labels:?})",
                    m.name
                ));
            }
        }
        labels
    }

    fn grouping(&mut self, what: &str, inner: &BTreeSet<String>, names: &[String]) {
        for l in names {
            if !inner.contains(l) {
                self.problems.push(format!(
                    "{what}: groups by `{l}`, which the series do not have ({inner:?})"
                ));
            }
        }
    }

    fn expr(&mut self, what: &str, expr: &Expr) -> BTreeSet<String> {
        match expr {
            Expr::VectorSelector(vs) => {
                self.selector(what, vs.name.as_deref(), &vs.matchers.matchers)
            }
            Expr::MatrixSelector(ms) => {
                self.selector(what, ms.vs.name.as_deref(), &ms.vs.matchers.matchers)
            }
            Expr::Aggregate(a) => {
                let inner = self.expr(what, &a.expr);
                if let Some(p) = &a.param {
                    self.expr(what, p);
                }
                match &a.modifier {
                    Some(LabelModifier::Include(l)) => {
                        self.grouping(what, &inner, &l.labels);
                        l.labels.iter().cloned().collect()
                    }
                    Some(LabelModifier::Exclude(l)) => {
                        self.grouping(what, &inner, &l.labels);
                        inner
                            .into_iter()
                            .filter(|x| !l.labels.contains(x))
                            .collect()
                    }
                    None => BTreeSet::new(),
                }
            }
            Expr::Call(c) => {
                if !FUNCTIONS.contains(&c.func.name) {
                    self.problems
                        .push(format!("{what}: unexpected function {}()", c.func.name));
                }
                let mut labels = BTreeSet::new();
                for arg in &c.args.args {
                    labels.extend(self.expr(what, arg));
                }
                match c.func.name {
                    "histogram_quantile" => {
                        if !labels.contains("le") {
                            self.problems.push(format!(
                                "{what}: histogram_quantile over series without `le`"
                            ));
                        }
                        labels.remove("le");
                        labels
                    }
                    // absent() has the labels of its selector's equality matchers only.
                    "absent" => BTreeSet::new(),
                    _ => labels,
                }
            }
            Expr::Binary(b) => {
                let lhs = self.expr(what, &b.lhs);
                let rhs = self.expr(what, &b.rhs);
                if let Some(LabelModifier::Include(on)) =
                    b.modifier.as_ref().and_then(|m| m.matching.as_ref())
                {
                    self.grouping(what, &lhs, &on.labels);
                    self.grouping(what, &rhs, &on.labels);
                }
                if lhs.is_empty() { rhs } else { lhs }
            }
            Expr::Paren(p) => self.expr(what, &p.expr),
            Expr::Unary(u) => self.expr(what, &u.expr),
            Expr::Subquery(s) => self.expr(what, &s.expr),
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) => BTreeSet::new(),
            Expr::Extension(_) => {
                self.problems
                    .push(format!("{what}: unexpected extension expression"));
                BTreeSet::new()
            }
        }
    }

    /// `{{ label }}` (Grafana legends) or `{{ $labels.label }}` (alert templates) in `text` name
    /// labels the result has.
    fn templated_labels(
        &mut self,
        what: &str,
        text: &str,
        result: &BTreeSet<String>,
        prefix: &str,
    ) {
        for part in text.split("{{").skip(1) {
            let Some((inner, _)) = part.split_once("}}") else {
                self.problems
                    .push(format!("{what}: unclosed {{{{ in {text:?}"));
                continue;
            };
            let inner = inner.trim();
            let Some(label) = inner.strip_prefix(prefix) else {
                continue;
            };
            let label = label.split_whitespace().next().unwrap_or_default();
            if !result.contains(label) {
                self.problems.push(format!(
                    "{what}: {text:?} uses label `{label}`, which the expression's result does not have ({result:?})"
                ));
            }
        }
    }

    fn assert_clean(&self) {
        assert!(
            self.problems.is_empty(),
            "{} problem(s):\n{}",
            self.problems.len(),
            self.problems.join("\n")
        );
    }
}

fn dashboard(docs: &[Yaml]) -> Json {
    let cms: Vec<_> = find(docs, "ConfigMap")
        .into_iter()
        .filter(|d| d["metadata"]["name"].as_str() == Some(&format!("{RELEASE}-stratus-dashboard")))
        .collect();
    assert_eq!(cms.len(), 1, "one dashboard ConfigMap");
    let json = cms[0]["data"]["stratus.json"]
        .as_str()
        .expect("data.stratus.json");
    serde_json::from_str(json).expect("the dashboard is valid JSON")
}

/// Every panel, rows' nested panels included.
fn panels(dash: &Json) -> Vec<&Json> {
    let mut out = Vec::new();
    for p in dash["panels"].as_array().expect("panels") {
        out.push(p);
        if let Some(nested) = p["panels"].as_array() {
            out.extend(nested);
        }
    }
    out
}

/// Grafana's variables replaced by something PromQL parses: ranges by 5m, label values by `.*`.
fn substitute(expr: &str, variables: &BTreeSet<String>, problems: &mut Vec<String>) -> String {
    let mut out = String::new();
    let mut rest = expr;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, len) = if let Some(braced) = after.strip_prefix('{') {
            let end = braced.find('}').unwrap_or(braced.len());
            (&braced[..end], end + 2)
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        if ["__rate_interval", "__interval", "__range"].contains(&name) {
            out.push_str("5m");
        } else {
            if !variables.contains(name) {
                problems.push(format!(
                    "{expr}: uses ${name}, which the dashboard does not define"
                ));
            }
            out.push_str(".*");
        }
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

#[test]
fn with_default_values_neither_the_dashboard_nor_the_rule_is_rendered() {
    let docs = render(&[]);
    assert!(find(&docs, "PrometheusRule").is_empty());
    assert!(
        !find(&docs, "ConfigMap")
            .iter()
            .any(|d| d["metadata"]["labels"]["grafana_dashboard"]
                .as_str()
                .is_some()),
        "a dashboard ConfigMap is rendered by default"
    );
}

#[test]
fn the_dashboard_is_a_configmap_the_grafana_sidecar_picks_up() {
    let docs = render(&[
        "grafanaDashboard.enabled=true",
        "grafanaDashboard.namespace=monitoring",
        "grafanaDashboard.annotations.grafana_folder=Operators",
    ]);
    let cm = find(&docs, "ConfigMap")
        .into_iter()
        .find(|d| d["metadata"]["name"].as_str() == Some(&format!("{RELEASE}-stratus-dashboard")))
        .expect("the dashboard ConfigMap");
    assert_eq!(cm["metadata"]["namespace"].as_str(), Some("monitoring"));
    assert_eq!(
        cm["metadata"]["labels"]["grafana_dashboard"].as_str(),
        Some("1")
    );
    assert_eq!(
        cm["metadata"]["annotations"]["grafana_folder"].as_str(),
        Some("Operators")
    );
    // The file in the chart, verbatim.
    let file = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/charts/stratus/dashboards/stratus.json"
    ))
    .unwrap();
    assert_eq!(cm["data"]["stratus.json"].as_str(), Some(file.trim_end()));
}

#[test]
fn every_dashboard_query_names_metrics_and_labels_the_operator_exports() {
    let dash = dashboard(&both_enabled());
    let mut checker = Checker::new();

    let vars = dash["templating"]["list"]
        .as_array()
        .expect("templating.list");
    let defined: BTreeSet<String> = vars
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_string())
        .collect();
    for v in vars.iter().filter(|v| v["type"] == "query") {
        let name = v["name"].as_str().unwrap();
        let query = v["query"]["query"]
            .as_str()
            .or(v["query"].as_str())
            .expect("a variable's query");
        let inner = query
            .strip_prefix("label_values(")
            .and_then(|q| q.strip_suffix(')'))
            .unwrap_or_else(|| panic!("variable {name}: only label_values(...) is expected"));
        let (selector, label) = inner
            .rsplit_once(',')
            .expect("label_values(selector, label)");
        let selector = substitute(selector, &defined, &mut checker.problems);
        let labels = checker.query(&format!("variable {name}"), &selector);
        if !labels.contains(label.trim()) {
            checker.problems.push(format!(
                "variable {name}: {selector} has no label {label} ({labels:?})"
            ));
        }
    }

    let all = panels(&dash);
    let mut ids = BTreeSet::new();
    for p in &all {
        let id = p["id"].as_u64().expect("every panel has a numeric id");
        assert!(ids.insert(id), "panel id {id} is used twice");
        let title = p["title"].as_str().unwrap_or_default();
        assert!(!title.is_empty(), "panel {id} has no title");
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(
            p["datasource"]["uid"].as_str(),
            Some("${datasource}"),
            "panel {title:?} does not use the dashboard's data source variable"
        );
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "panel {title:?} has no query");
        for t in targets {
            let raw = t["expr"].as_str().expect("expr");
            let expr = substitute(raw, &defined, &mut checker.problems);
            let what = format!("panel {title:?}");
            let result = checker.query(&what, &expr);
            if let Some(legend) = t["legendFormat"].as_str() {
                checker.templated_labels(&what, legend, &result, "");
            }
        }
    }
    checker.assert_clean();

    // What the issue asks the dashboard to show.
    for metric in [
        "controller_runtime_reconcile_total",
        "controller_runtime_reconcile_errors_total",
        "stratus_cloud_requests_total",
        "stratus_cloud_rate_limited_total",
        "stratus_cloud_throttle_queue_depth",
        "stratus_cloud_throttle_priority_wait_seconds_bucket",
        "stratus_managed_resources_not_ready",
        "stratus_managed_resources_stalled",
        "leader_election_master_status",
    ] {
        assert!(
            checker.used.contains(metric),
            "no panel shows {metric} (used: {:?})",
            checker.used
        );
    }
    let text = serde_json::to_string(&dash).unwrap();
    assert!(
        text.contains(r#"code=\"429\""#),
        "no panel of 429s by route"
    );
}

#[test]
fn every_alert_names_metrics_and_labels_the_operator_exports() {
    let docs = both_enabled();
    let rules = find(&docs, "PrometheusRule");
    assert_eq!(rules.len(), 1, "one PrometheusRule");
    let rule = rules[0];
    assert_eq!(
        rule["apiVersion"].as_str(),
        Some("monitoring.coreos.com/v1")
    );
    assert_eq!(rule["metadata"]["namespace"].as_str(), Some(NAMESPACE));

    let mut checker = Checker::new();
    let mut alerts = BTreeSet::new();
    for group in rule["spec"]["groups"].as_sequence().expect("groups") {
        for r in group["rules"].as_sequence().expect("rules") {
            let name = r["alert"]
                .as_str()
                .expect("only alerting rules")
                .to_string();
            assert!(alerts.insert(name.clone()), "alert {name} twice");
            let what = format!("alert {name}");
            let result = checker.query(&what, r["expr"].as_str().expect("expr"));
            let wait = r["for"].as_str().expect("for");
            assert!(
                parser::parse(&format!("up[{wait}]")).is_ok(),
                "{what}: `for: {wait}` is not a duration"
            );
            assert!(
                ["warning", "critical"].contains(&r["labels"]["severity"].as_str().unwrap_or("")),
                "{what}: severity"
            );
            for key in ["summary", "description"] {
                let text = r["annotations"][key]
                    .as_str()
                    .unwrap_or_else(|| panic!("{what}: no {key}"));
                checker.templated_labels(&format!("{what} {key}"), text, &result, "$labels.");
            }
            assert!(
                r["annotations"]["description"]
                    .as_str()
                    .unwrap()
                    .contains("docs/install.md"),
                "{what}: the description points at the docs"
            );
            let runbook = r["annotations"]["runbook_url"].as_str().unwrap_or_default();
            assert!(
                runbook.starts_with("https://example.com/docs/install.md#stratus"),
                "{what}: runbook_url {runbook:?}"
            );
        }
    }
    checker.assert_clean();
    for wanted in [
        "StratusObjectsStalled",
        "StratusKeyRateLimited",
        "StratusNoLeader",
        "StratusOperatorDown",
        "StratusReconcileErrorsRising",
    ] {
        assert!(alerts.contains(wanted), "no alert {wanted}: {alerts:?}");
    }
}

#[test]
fn without_leader_election_there_is_no_leader_alert_and_thresholds_are_the_values() {
    let docs = render(&[
        "prometheusRule.enabled=true",
        "leaderElection.enabled=false",
        "replicaCount=1",
        "prometheusRule.stalledFor=30m",
        "prometheusRule.reconcileErrorRatio=0.5",
        "prometheusRule.selector=job=\"custom\"",
    ]);
    let rule = find(&docs, "PrometheusRule")[0];
    let rules: Vec<&Yaml> = rule["spec"]["groups"][0]["rules"]
        .as_sequence()
        .unwrap()
        .iter()
        .collect();
    let by_name = |n: &str| {
        rules
            .iter()
            .find(|r| r["alert"].as_str() == Some(n))
            .copied()
    };
    assert!(by_name("StratusNoLeader").is_none());
    assert_eq!(
        by_name("StratusObjectsStalled").unwrap()["for"].as_str(),
        Some("30m")
    );
    let errors = by_name("StratusReconcileErrorsRising").unwrap()["expr"]
        .as_str()
        .unwrap();
    assert!(errors.trim_end().ends_with("> 0.5"), "{errors}");
    assert!(errors.contains(r#"{job="custom"}"#), "{errors}");
    assert!(
        by_name("StratusOperatorDown").unwrap()["expr"].as_str()
            == Some(r#"absent(up{job="custom"} == 1)"#)
    );
}

#[test]
fn the_checker_refuses_a_metric_a_label_or_a_grouping_the_operator_does_not_export() {
    let bad = [
        // A counter without the `_total` the encoder appends.
        "sum(rate(controller_runtime_reconcile[5m]))",
        // A label the metric does not have.
        r#"sum(stratus_cloud_requests_total{route="x"})"#,
        // Grouping by a label the series do not have.
        "sum by (priority) (stratus_managed_resources_stalled)",
        // A histogram quantile over the histogram's _count, which has no `le`.
        "histogram_quantile(0.9, sum by (le) (rate(stratus_cloud_request_duration_seconds_count[5m])))",
        // Does not parse.
        "sum(rate(stratus_cloud_requests_total[5m])",
    ];
    for query in bad {
        let mut checker = Checker::new();
        checker.query("test", query);
        assert!(!checker.problems.is_empty(), "the checker accepted {query}");
    }
    let mut checker = Checker::new();
    let result = checker.query(
        "test",
        "sum by (provider, operation) (rate(stratus_cloud_requests_total{code=\"429\"}[5m]))",
    );
    checker.templated_labels("test", "{{provider}} {{key}}", &result, "");
    assert_eq!(checker.problems.len(), 1, "{:?}", checker.problems);
}
