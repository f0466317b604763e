use serde_json::json;

use super::*;
use crate::providers::vertra::model::App;

fn params(extra: serde_json::Value) -> ApplicationParameters {
    let mut base = json!({
        "name": "web", "memoryMB": 512, "language": "javascript", "mainFile": "index.js",
        "source": {"archive": {"url": "https://example.com/a.zip", "sha256": "a".repeat(64)}}
    });
    if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(base).unwrap()
}

fn desired(p: ApplicationParameters) -> DesiredApp {
    DesiredApp {
        code: Code::Archive {
            url: "https://example.com/a.zip".into(),
            digest: "a".repeat(64),
        },
        params: p,
        uid: "uid-1".into(),
        namespace: "ns".into(),
        workspace_id: None,
        env_digest: "sha256:env".into(),
    }
}

fn app(extra: serde_json::Value) -> App {
    let mut base = json!({
        "id": "a1", "name": "web", "ram": 512, "language": "javascript", "main_file": "index.js",
        "status": "up", "start_command": null, "build_command": null
    });
    if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(base).unwrap()
}

fn view(app: App, running: bool) -> AppView {
    AppView {
        observed: ObservedApp {
            app,
            running,
            installing: false,
        },
        want_running: true,
        deployed_digest: Some(format!("sha256:{}", "a".repeat(64))),
        env_digest: Some("sha256:env".into()),
        env_names: Vec::new(),
        restart_pending: false,
        dns: Vec::new(),
    }
}

#[test]
fn an_app_that_matches_its_spec_needs_nothing() {
    assert_eq!(
        plan(&desired(params(json!({}))), &view(app(json!({})), true)),
        Plan::UpToDate
    );
}

#[test]
fn settings_change_through_the_update_routes_names_then_a_restart_applies_them() {
    let p = params(json!({"memoryMB": 1024, "startCommand": "node server.js"}));
    match plan(&desired(p), &view(app(json!({})), true)) {
        Plan::Update(actions) => {
            let AppAction::Config(c) = &actions[0] else {
                panic!("{actions:?}")
            };
            assert_eq!(c.ram, Some(1024));
            assert_eq!(c.start_command, Some(Some("node server.js".into())));
            let body = serde_json::to_value(c).unwrap();
            assert!(body.get("memory").is_none() && body.get("start").is_none());
            assert_eq!(body["ram"], 1024);
            assert_eq!(actions.last(), Some(&AppAction::Restart));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_new_digest_deploys_and_needs_no_separate_restart() {
    let mut d = desired(params(json!({})));
    d.code = Code::Archive {
        url: "https://example.com/b.zip".into(),
        digest: "b".repeat(64),
    };
    d.env_digest = "sha256:env2".into();
    match plan(&d, &view(app(json!({})), true)) {
        Plan::Update(actions) => {
            assert!(matches!(actions[0], AppAction::SyncEnv(_)), "{actions:?}");
            assert!(matches!(actions[1], AppAction::Deploy(_)), "{actions:?}");
            assert!(!actions.contains(&AppAction::Restart), "{actions:?}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn publishing_a_subdomain_and_a_custom_domain_follow_the_spec() {
    let p = params(
        json!({"publish": {"enabled": true, "subdomain": "shop"}, "customDomain": "shop.example.com"}),
    );
    match plan(&desired(p), &view(app(json!({})), true)) {
        Plan::Update(actions) => assert_eq!(
            actions,
            vec![
                AppAction::Publish {
                    subdomain: Some("shop".into())
                },
                AppAction::SetCustomDomain("shop.example.com".into())
            ]
        ),
        other => panic!("{other:?}"),
    }
    let p = params(json!({}));
    let published = app(json!({"subdomain": "shop.vertraweb.app"}));
    assert_eq!(
        plan(&desired(p), &view(published, true)),
        Plan::Update(vec![AppAction::Unpublish])
    );
}

#[test]
fn a_platform_stop_or_shield_is_reported_and_never_answered_with_a_start() {
    let d = desired(params(json!({})));
    assert_eq!(
        plan(&d, &view(app(json!({"status": "down"})), false)),
        Plan::Update(vec![AppAction::Start])
    );
    let offline = app(json!({"status": "down", "offline_since": "2026-12-01T00:00:00Z"}));
    match plan(&d, &view(offline, false)) {
        Plan::Impossible(i) => assert_eq!(i.reason, "PlatformStopped"),
        other => panic!("{other:?}"),
    }
    let shielded =
        app(json!({"status": "down", "shield_cooldown": {"until": "2026-12-05T00:00:00Z"}}));
    match plan(&d, &view(shielded, false)) {
        Plan::Impossible(i) => assert_eq!(i.reason, "ShieldCooldown"),
        other => panic!("{other:?}"),
    }
    let mut installing = view(app(json!({"status": "down"})), false);
    installing.observed.installing = true;
    assert_eq!(
        plan(&d, &installing),
        Plan::UpToDate,
        "no start while installing"
    );
}

#[test]
fn forbidden_duplicate_or_oversized_env_vars_are_spec_errors_before_any_call() {
    let env = |list: serde_json::Value| params(json!({"env": list}));
    for bad in [
        json!([{"name": "PORT", "value": "1"}]),
        json!([{"name": "VERTRA_X", "value": "1"}]),
        json!([{"name": OWNER_ENV, "value": "1"}]),
        json!([{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]),
        json!([{"name": "A", "value": "x".repeat(MAX_ENV_VALUE + 1)}]),
        json!([{"name": "A"}]),
        json!([{"name": "A", "value": "1", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]),
        json!([{"name": "1A", "value": "1"}]),
    ] {
        assert!(validate(&env(bad.clone())).is_err(), "{bad}");
    }
    let many: Vec<_> = (0..MAX_ENV)
        .map(|i| json!({"name": format!("V{i}"), "value": "1"}))
        .collect();
    assert!(
        validate(&env(json!(many))).is_err(),
        "one slot is the owner marker's"
    );
    assert!(validate(&env(json!([{"name": "API_URL", "value": "https://x"}]))).is_ok());
    assert!(
        validate(&params(json!({"customDomain": "x.example.com"}))).is_err(),
        "a custom domain needs a published app"
    );
    assert!(validate(&params(json!({"language": "cobol"}))).is_err());
}

#[test]
fn env_values_never_show_in_the_debug_output_events_and_conditions_use() {
    let p = params(json!({"env": [{"name": "TOKEN", "value": "hunter2-literal"}]}));
    let mut d = desired(p.clone());
    d.env_digest = "sha256:new".into();
    let plan = plan(&d, &view(app(json!({})), true));
    let shown = format!("{plan:?} {d:?} {p:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("TOKEN"), "{shown}");
}

#[test]
fn a_restart_left_pending_by_a_change_applied_earlier_is_planned_on_its_own() {
    let d = desired(params(json!({})));
    let mut v = view(app(json!({})), true);
    assert_eq!(plan(&d, &v), Plan::UpToDate);
    v.restart_pending = true;
    assert_eq!(plan(&d, &v), Plan::Update(vec![AppAction::Restart]));
    // Not for an app that is to stay stopped (its next start takes the change).
    let stopped_spec = desired(params(json!({"powerState": "Stopped"})));
    let mut stopped = view(app(json!({"status": "down"})), false);
    stopped.restart_pending = true;
    assert_eq!(plan(&stopped_spec, &stopped), Plan::UpToDate);
}
