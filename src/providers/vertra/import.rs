//! Vertra's side of `stratus import`: workspaces (`GET /v1/workspaces`), and the apps and
//! databases of the account (`GET /v1/users/me` with `/v1/apps/status` and
//! `/v1/databases/status`), the bulk listings the operator observes with. An app or database
//! does not say which workspace holds it, so each workspace's contents are read
//! (`GET /v1/workspaces/{id}`, one request per workspace) to link them.

use std::collections::HashMap;

use super::api::application::{ApplicationParameters, Publish, Source};
use super::api::database::{CredentialsParameters, DatabaseParameters, Engine};
use super::api::workspace::WorkspaceParameters;
use super::api::{Application, Database, PowerState, Workspace};
use super::application::plan::LANGUAGES;
use super::cloud::VertraCloud;
use super::model;
use crate::api::provider_config::Provider;
use crate::cloud::throttle::Priority;
use crate::engine::Connect;
use crate::import::{
    Connection, Found, ImportError, ImportKind, Importer, ListOptions, Listing, Placeholder,
    Reference, wants,
};

/// A user waits for the answer: the listings go ahead of the routine refreshes.
const PRIORITY: Priority = Priority::Urgent;

/// What `source.snapshotRef` holds in an imported Application: the API does not say where an
/// app's code came from. A snapshot source is only ever used to create an app, so the operator
/// never deploys this one.
pub const SOURCE_PLACEHOLDER: &str = "REPLACE-ME-code-source";

/// The language written when Vertra reports none (the spec requires one).
const DEFAULT_LANGUAGE: &str = "javascript";

pub struct VertraImporter;

#[async_trait::async_trait]
impl Importer for VertraImporter {
    fn provider(&self) -> Provider {
        Provider::Vertra
    }

    fn kinds(&self) -> Vec<ImportKind> {
        vec![
            ImportKind::of::<Workspace>(false),
            ImportKind::of::<Application>(false),
            ImportKind::of::<Database>(false),
        ]
    }

    async fn list(
        &self,
        connection: Connection,
        want: &[ImportKind],
        options: ListOptions,
    ) -> Result<Listing, ImportError> {
        let cloud =
            VertraCloud::connect(&connection.config_name, &connection.spec, connection.key)?;
        let client = &cloud.client;
        let mut listing = Listing::default();
        let (apps, dbs) = (wants(want, "Application"), wants(want, "Database"));
        // Workspaces are an Enterprise feature: an account without them is not an error
        // unless workspaces are what was asked for.
        let workspaces = match client.list_workspaces(PRIORITY).await {
            Ok(w) => w,
            Err(e) if !wants(want, "Workspace") => {
                listing.warnings.push(format!(
                    "workspaces could not be listed ({e}): apps and databases are written without their workspace"
                ));
                Vec::new()
            }
            Err(e) => return Err(ImportError::cloud("workspaces")(e)),
        };
        let workspaces: Vec<_> = workspaces
            .into_iter()
            .filter(|w| w.deleted_at.is_none())
            .collect();
        if wants(want, "Workspace") {
            listing.found.extend(workspaces.iter().map(workspace));
        }
        if !(apps || dbs) {
            return Ok(listing);
        }
        let mut member: HashMap<String, String> = HashMap::new();
        for w in &workspaces {
            let info = client
                .get_workspace(&w.id, PRIORITY)
                .await
                .map_err(ImportError::cloud(format!(
                    "the contents of workspace {}",
                    w.name
                )))?;
            let ids = info
                .applications
                .iter()
                .map(|a| &a.id)
                .chain(info.databases.iter().map(|d| &d.id));
            for id in ids {
                member.insert(id.clone(), w.id.clone());
            }
        }
        let me = client
            .me(PRIORITY)
            .await
            .map_err(ImportError::cloud("the account's apps and databases"))?;
        if apps {
            let status = client
                .apps_status(PRIORITY)
                .await
                .map_err(ImportError::cloud("the apps' status"))?;
            for app in &me.applications {
                let s = status.iter().find(|s| s.id == app.id);
                let running = s.map_or(app.status.as_deref() == Some("up"), |s| {
                    s.running || s.installing == Some(true)
                });
                let ws = member.get(&app.id).map(String::as_str);
                listing.found.push(application(app, running, ws, options));
            }
        }
        if dbs {
            let status = client
                .databases_status(PRIORITY)
                .await
                .map_err(ImportError::cloud("the databases' status"))?;
            for db in &me.databases {
                let running = status
                    .iter()
                    .find(|s| s.id == db.id)
                    .map_or(db.status.as_deref() == Some("up"), |s| s.running);
                let ws = member.get(&db.id).map(String::as_str);
                match database(db, running, ws) {
                    Some(f) => listing.found.push(f),
                    None => listing.warnings.push(format!(
                        "database {} ({}) is of an engine stratus does not know (type {:?}): not imported",
                        db.name, db.id, db.engine
                    )),
                }
            }
        }
        Ok(listing)
    }
}

pub fn workspace(w: &model::Workspace) -> Found {
    Found::new(
        "Workspace",
        &w.id,
        &w.name,
        WorkspaceParameters {
            name: w.name.clone(),
            description: w.description.clone().filter(|d| !d.is_empty()),
        },
    )
}

fn in_workspace(f: &mut Found, workspace: Option<&str>) {
    if let Some(id) = workspace {
        f.for_provider["workspaceId"] = serde_json::json!(id);
        f.references.push(Reference {
            kind: "Workspace".into(),
            id: id.to_string(),
            ref_field: "workspaceRef",
            id_field: "workspaceId",
        });
    }
}

/// An app's manifest. Its code source and env values cannot be read back: the source is a
/// placeholder snapshot (never deployed), and `env` is left empty (the operator removes only
/// variables it wrote itself, so the app's own stay).
pub fn application(
    app: &model::App,
    running: bool,
    workspace: Option<&str>,
    options: ListOptions,
) -> Found {
    let mut notes = Vec::new();
    let language = match app.language.as_deref() {
        Some(l) if LANGUAGES.contains(&l) => l.to_string(),
        other => {
            notes.push(format!(
                "Vertra reports its language as {other:?}; {DEFAULT_LANGUAGE:?} is written: set spec.forProvider.language to the app's runtime"
            ));
            DEFAULT_LANGUAGE.to_string()
        }
    };
    let main_file = app
        .main_file
        .clone()
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| {
            notes.push(
            "Vertra reports no main file; \"index.js\" is written: set spec.forProvider.mainFile"
                .into(),
        );
            "index.js".into()
        });
    let publish = app.subdomain.as_ref().map(|host| {
        let label = host.split('.').next().unwrap_or_default();
        let valid = (3..=50).contains(&label.len())
            && label
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        Publish {
            enabled: true,
            subdomain: valid.then(|| label.to_string()),
        }
    });
    let params = ApplicationParameters {
        name: app.name.clone(),
        description: app.description.clone().filter(|d| !d.is_empty()),
        memory_mb: app.ram.unwrap_or(512),
        language,
        version: app.version.clone().filter(|v| !v.is_empty()),
        main_file,
        start_command: app.start_command.clone().filter(|c| !c.is_empty()),
        build_command: app.build_command.clone().filter(|c| !c.is_empty()),
        workspace_ref: None,
        workspace_id: None,
        env: Vec::new(),
        custom_domain: publish.as_ref().and(app.custom_domain.clone()),
        publish,
        power_state: if running {
            PowerState::Running
        } else {
            PowerState::Stopped
        },
        source: Source {
            archive: None,
            snapshot_ref: Some(SOURCE_PLACEHOLDER.into()),
            flux_source_ref: None,
        },
    };
    let mut f = Found::new("Application", &app.id, &app.name, params);
    in_workspace(&mut f, workspace);
    f.placeholders.push(Placeholder {
        field: "source.snapshotRef".into(),
        why: format!(
            "Vertra does not report where an app's code came from. A snapshotRef is only used to create an app, so the operator never deploys {SOURCE_PLACEHOLDER:?}; to have it deploy your code, replace source with source.archive or source.fluxSourceRef (it is deployed at the next reconcile)"
        ),
    });
    if options.manage {
        notes.push(
            "with --manage, the operator's first reconcile writes its ownership variable (STRATUS_OWNER_UID) to the app and restarts it once, since it has no record of the env it wrote; the app's own variables are kept. spec.forProvider.env is empty: env values never leave the cloud, add entries with valueFrom to manage them".into(),
        );
    }
    f.notes = notes;
    f
}

/// A database's manifest, or `None` for an engine the CRD does not know. No connection Secret
/// is named: Vertra never returns a password, and issuing one resets it.
pub fn database(db: &model::Database, running: bool, workspace: Option<&str>) -> Option<Found> {
    let engine = Engine::from_type_number(db.engine?)?;
    let params = DatabaseParameters {
        engine,
        name: db.name.clone(),
        description: db.description.clone().filter(|d| !d.is_empty()),
        memory_mb: db.ram.unwrap_or(engine.min_memory_mb()),
        workspace_ref: None,
        workspace_id: None,
        from_snapshot: None,
        power_state: if running {
            PowerState::Running
        } else {
            PowerState::Stopped
        },
        credentials: CredentialsParameters::default(),
    };
    let mut f = Found::new("Database", &db.id, &db.name, params);
    in_workspace(&mut f, workspace);
    Some(f)
}

#[cfg(test)]
mod tests;
