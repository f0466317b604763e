//! Each imported manifest must be what the adapter considers in sync with the resource it was
//! read from, except what only the operator's own records can tell (an app's env and code).

use super::*;
use crate::engine::Plan;
use crate::providers::vertra::application::plan::{
    self as app_plan, AppAction, AppView, DesiredApp,
};
use crate::providers::vertra::cloud::{ObservedApp, ObservedDatabase};
use crate::providers::vertra::database::{self, DesiredDatabase};

fn app(status: &str, subdomain: Option<&str>) -> model::App {
    serde_json::from_value(serde_json::json!({
        "id": "app-1", "name": "Shop API", "description": "", "language": "python",
        "ram": 512, "status": status, "subdomain": subdomain,
        "custom_domain": subdomain.map(|_| "shop.example.com"),
        "main_file": "main.py", "version": "3.12", "start_command": "python main.py",
        "build_command": null,
    }))
    .unwrap()
}

fn view(app: model::App, running: bool) -> AppView {
    AppView {
        observed: ObservedApp {
            app,
            running,
            installing: false,
        },
        want_running: running,
        deployed_digest: None,
        env_digest: None,
        env_names: Vec::new(),
        restart_pending: false,
        dns: Vec::new(),
    }
}

fn desired(f: &Found) -> DesiredApp {
    let params: ApplicationParameters = serde_json::from_value(f.for_provider.clone()).unwrap();
    app_plan::validate(&params).unwrap();
    DesiredApp {
        code: crate::providers::vertra::application::plan::Code::Snapshot {
            id: params.source.snapshot_ref.clone().unwrap(),
        },
        params,
        uid: "u".into(),
        namespace: "ns".into(),
        workspace_id: None,
        env_digest: "digest".into(),
    }
}

#[test]
fn an_imported_app_differs_only_in_what_the_operator_alone_records() {
    for (status, subdomain, running) in [
        ("up", Some("shop-api.vertra.app"), true),
        ("down", None, false),
    ] {
        let a = app(status, subdomain);
        let f = application(&a, running, Some("ws-1"), ListOptions::default());
        assert_eq!(f.for_provider["workspaceId"], "ws-1");
        assert_eq!(f.references[0].kind, "Workspace");
        assert!(f.for_provider.get("env").is_none());
        assert_eq!(f.placeholders[0].field, "source.snapshotRef");
        let actions = match app_plan::plan(&desired(&f), &view(a, running)) {
            Plan::Update(actions) => actions,
            other => panic!("{other:?}"),
        };
        // No setting, publishing, code or power change: only the env record (and, for a
        // running app, the restart that applies it), which Observe never sends.
        assert!(matches!(actions[0], AppAction::SyncEnv(_)), "{actions:?}");
        let rest: Vec<_> = actions[1..].iter().collect();
        if running {
            assert_eq!(rest, [&AppAction::Restart]);
        } else {
            assert!(rest.is_empty(), "{actions:?}");
        }
    }
}

#[test]
fn an_imported_app_keeps_a_valid_published_label_and_warns_about_manage() {
    let f = application(
        &app("up", Some("shop-api.vertra.app")),
        true,
        None,
        ListOptions { manage: true },
    );
    assert_eq!(f.for_provider["publish"]["subdomain"], "shop-api");
    assert_eq!(f.for_provider["customDomain"], "shop.example.com");
    assert!(
        f.notes.iter().any(|n| n.contains("restarts it once")),
        "{:?}",
        f.notes
    );
    let quiet = application(&app("up", None), true, None, ListOptions::default());
    assert!(quiet.notes.is_empty(), "{:?}", quiet.notes);
    assert!(quiet.for_provider.get("publish").is_none());
}

#[test]
fn an_unknown_language_is_replaced_by_a_valid_one_with_a_note() {
    let mut a = app("up", None);
    a.language = None;
    let f = application(&a, true, None, ListOptions::default());
    assert_eq!(f.for_provider["language"], DEFAULT_LANGUAGE);
    assert!(f.notes[0].contains("language"), "{:?}", f.notes);
}

#[test]
fn an_imported_database_is_in_sync() {
    for (running, power) in [(true, "Running"), (false, "Stopped")] {
        let db: model::Database = serde_json::from_value(serde_json::json!({
            "id": "db-1", "name": "orders", "type": 1, "ram": 1024, "status": "up",
        }))
        .unwrap();
        let f = database(&db, running, None).unwrap();
        assert_eq!(f.for_provider["powerState"], power);
        assert!(f.for_provider.get("writeConnectionSecretToRef").is_none());
        let params: DatabaseParameters = serde_json::from_value(f.for_provider).unwrap();
        let d = DesiredDatabase {
            params,
            workspace_id: None,
        };
        let o = ObservedDatabase { db, running };
        assert_eq!(database::plan(&d, &o), Plan::UpToDate);
    }
    let unknown: model::Database =
        serde_json::from_value(serde_json::json!({"id": "db-2", "name": "x", "type": 9})).unwrap();
    assert!(database(&unknown, true, None).is_none());
}

#[test]
fn an_imported_workspace_is_in_sync() {
    let w: model::Workspace = serde_json::from_value(serde_json::json!({
        "id": "ws-1", "name": "Team A", "description": "the A team",
    }))
    .unwrap();
    let f = workspace(&w);
    let p: WorkspaceParameters = serde_json::from_value(f.for_provider).unwrap();
    assert_eq!(
        crate::providers::vertra::workspace::plan(&p, &w),
        Plan::UpToDate
    );
}
