//! `stratus logs release/NAME` against the CloudAPI sandbox and the real apiserver: the log of
//! a failed build without curl, the live deployment's with `--live`, and the live tail.

mod common;

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use common::cloudapi::Env;
use common::{has_condition_of, wait_object};
use kube::Api;
use serde_json::json;
use stratus::providers::cloudapi::api::Release;
use stratus::providers::cloudapi::model::ProjectCreate;
use stratus::providers::cloudapi::sim::Dialect;

const T: Duration = Duration::from_secs(90);

/// Runs `stratus logs` (asynchronously: the sandbox answering it runs on this test's thread).
async fn logs(env: &Env, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_stratus"))
        .arg("logs")
        .args(args)
        .args(["-n", &env.ns.name])
        .args(["--kubeconfig", common::kubeconfig_path().to_str().unwrap()])
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn logs_show_why_a_build_failed_the_live_deployment_s_log_and_follow_new_lines() {
    let env = Env::start("calogs", Dialect::Cloudapi).await;
    let project = env
        .outside()
        .create_project(
            &ProjectCreate {
                name: "shop".into(),
                region: Some("us-east-1".into()),
            },
            uuid::Uuid::new_v4(),
        )
        .await
        .unwrap()
        .id;
    env.apply::<Release>(
        "shop",
        json!({"forProvider": {"projectId": project, "commit": "good-1"}}),
    )
    .await;
    let releases: Api<Release> = env.ns.api();
    wait_object(&releases, "shop", T, "Ready", common::is_ready_of).await;
    env.patch::<Release>("shop", json!({"forProvider": {"commit": "fail-2"}}))
        .await;
    wait_object(&releases, "shop", T, "failed", |r| {
        has_condition_of(r, "Stalled", "True", Some("BuildFailed"))
    })
    .await;

    // The newest deployment: the failed build, with its error line.
    let (ok, out, err) = logs(&env, &["release/shop"]).await;
    assert!(ok, "{err}");
    let error = out
        .lines()
        .find(|l| l.contains("error"))
        .unwrap_or_else(|| panic!("no error line in\n{out}"));
    assert!(error.contains("fail-2"), "{out}");
    assert!(!out.contains(&env.key), "the key is printed");
    // Only errors.
    let (ok, only, err) = logs(&env, &["shop", "--level", "error"]).await;
    assert!(ok, "{err}");
    assert!(
        only.lines().count() >= 1 && only.lines().all(|l| l.contains("error")),
        "{only}"
    );
    // The live deployment is still good-1's.
    let (ok, live, err) = logs(&env, &["release/shop", "--live"]).await;
    assert!(ok, "{err}");
    assert!(
        live.contains("good-1") && !live.contains("fail-2"),
        "{live}"
    );

    // Following: a new commit's build lines arrive while the command runs.
    let mut child = Command::new(env!("CARGO_BIN_EXE_stratus"))
        .args(["logs", "release/shop", "--follow", "-n", &env.ns.name])
        .args(["--kubeconfig", common::kubeconfig_path().to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    tokio::time::sleep(Duration::from_secs(2)).await;
    env.patch::<Release>("shop", json!({"forProvider": {"commit": "good-3"}}))
        .await;
    let mut seen = Vec::new();
    let followed = tokio::time::timeout(T, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("good-3") {
                return true;
            }
            seen.push(line);
        }
        false
    })
    .await
    .unwrap_or(false);
    let _ = child.kill().await;
    assert!(followed, "no line of good-3's build followed; saw {seen:?}");

    // A Release that does not exist is a clear answer.
    let (ok, _, err) = logs(&env, &["release/nope"]).await;
    assert!(!ok && err.contains("not found"), "{err}");
    env.stop().await;
}
