//! The operator runs with the identity the chart creates (the control plane's operator token is
//! the ServiceAccount stratus-system/stratus) under the chart's RBAC: it cannot read an API key
//! in a namespace the chart does not list; once listed, everything works; without one rule, the
//! matching failure shows; with the rule back, it recovers.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{Env, Operator, condition, has_condition, is_ready};
use serde_json::json;

const RELEASE: &str = "rbac-test";
const ROLE: &str = "rbac-test-stratus";

fn tool(name: &str) -> String {
    std::env::var(format!("STRATUS_{}", name.to_uppercase())).unwrap_or_else(|_| name.to_string())
}

fn kubectl(args: &[&str], stdin: Option<&str>) -> String {
    use std::io::Write;
    let mut child = Command::new(tool("kubectl"))
        .args(args)
        .env("KUBECONFIG", common::kubeconfig_path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl (scripts/test puts it on PATH via scripts/install-helm)");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The chart's RBAC objects and ServiceAccount, rendered by helm, with `--set` values.
fn chart_rbac(values: &[&str]) -> String {
    let out = Command::new(tool("helm"))
        .args([
            "template",
            RELEASE,
            concat!(env!("CARGO_MANIFEST_DIR"), "/charts/stratus"),
        ])
        .args([
            "--namespace",
            "stratus-system",
            "--set",
            "providerConfig.create=false",
        ])
        .args(["--set", "serviceAccount.name=stratus"])
        .args(values.iter().flat_map(|v| ["--set", v]))
        .output()
        .expect("helm (scripts/test puts it on PATH via scripts/install-helm)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    text.split("\n---")
        .filter(|doc| {
            doc.lines().any(|l| {
                [
                    "kind: ClusterRole",
                    "kind: ClusterRoleBinding",
                    "kind: Role",
                    "kind: RoleBinding",
                    "kind: ServiceAccount",
                ]
                .contains(&l.trim_end())
            })
        })
        .collect::<Vec<_>>()
        .join("\n---")
}

#[tokio::test]
async fn operator_reads_api_keys_only_in_namespaces_the_chart_grants_and_a_missing_rule_shows() {
    let operator_kubeconfig = PathBuf::from(
        std::env::var("STRATUS_TEST_OPERATOR_KUBECONFIG")
            .expect("STRATUS_TEST_OPERATOR_KUBECONFIG: the operator identity's kubeconfig (scripts/test sets it)"),
    );
    let _ = kubectl(
        &[
            "create",
            "namespace",
            "stratus-system",
            "--dry-run=client",
            "-o",
            "yaml",
        ],
        None,
    )
    .pipe(|ns| kubectl(&["apply", "-f", "-"], Some(&ns)));

    let mut env = Env::start("rbac").await;
    env.operator.kill();
    // The API key is in the test's namespace, which the default values do not list.
    kubectl(&["apply", "-f", "-"], Some(&chart_rbac(&[])));
    let lease = [
        "--leader-elect",
        "--leader-election-namespace",
        "stratus-system",
    ];
    let mut op = Operator::start_as(&operator_kubeconfig, &env.ns.name, &lease);

    env.create_compute("ok", json!({}), json!({}), json!({}))
        .await;
    let refused = env
        .wait_compute(
            "ok",
            Duration::from_secs(60),
            "Stalled: the key's Secret is in a namespace the chart does not grant",
            |c| {
                condition(c, "Stalled").is_some_and(|s| {
                    s.status == "True"
                        && s.reason == "SecretForbidden"
                        && s.message.contains("rbac.secretNamespaces")
                })
            },
        )
        .await;
    assert!(
        condition(&refused, "Ready").is_some_and(|r| r.status == "False"),
        "not Ready without the key"
    );

    // List the namespace in rbac.secretNamespaces: the same object goes on without a restart.
    let rbac = chart_rbac(&[&format!("rbac.secretNamespaces={{{}}}", env.ns.name)]);
    kubectl(&["apply", "-f", "-"], Some(&rbac));
    env.wait_compute(
        "ok",
        Duration::from_secs(120),
        "Ready under the chart's RBAC",
        is_ready,
    )
    .await;
    let events: kube::Api<k8s_openapi::api::events::v1::Event> = env.ns.api();
    assert!(
        events
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .iter()
            .any(|e| e.reason.as_deref() == Some("Created")),
        "the operator identity could not publish events"
    );

    // Take away the status rule: the operator can no longer report, and says why.
    let role = kubectl(&["get", "clusterrole", ROLE, "-o", "json"], None);
    let mut role: serde_json::Value = serde_json::from_str(&role).unwrap();
    let rules = role["rules"].as_array_mut().unwrap();
    let before = rules.len();
    rules.retain(|r| {
        !r["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x == "computes/status")
    });
    assert_eq!(
        rules.len(),
        before - 1,
        "the chart has one rule for computes/status"
    );
    role["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    kubectl(&["replace", "-f", "-"], Some(&role.to_string()));

    env.create_compute("denied", json!({}), json!({}), json!({}))
        .await;
    let log = op.log.clone();
    assert!(
        common::wait_for(Duration::from_secs(60), || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            async move { text.contains("forbidden") && text.contains("computes/status") }
        })
        .await,
        "no forbidden error for computes/status in the operator log"
    );
    let denied = env.computes().get("denied").await.unwrap();
    assert!(
        denied.status.is_none(),
        "status was written without the rule"
    );

    // Put it back: the same object recovers without a restart.
    kubectl(&["apply", "-f", "-"], Some(&rbac));
    env.wait_compute(
        "denied",
        Duration::from_secs(90),
        "Ready after the rule is back",
        |c| is_ready(c) && has_condition(c, "Synced", "True", None),
    )
    .await;

    op.kill();
    kubectl(&["delete", "-f", "-", "--ignore-not-found"], Some(&rbac));
    env.stop().await;
}

trait Pipe: Sized {
    fn pipe<T>(self, f: impl FnOnce(Self) -> T) -> T {
        f(self)
    }
}
impl<T> Pipe for T {}
