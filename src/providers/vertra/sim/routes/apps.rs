//! `/v1/apps`: create (multipart), read, status, config, lifecycle, delete, code upload, envs.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use jiff::Timestamp;
use serde_json::Value;

use super::super::Sim;
use super::super::archive::{self, Archive, clean_path, looks_like_zip};
use super::super::cloud::unix_now;
use super::super::limits::RouteBudget;
use super::super::multipart::{self, Part};
use super::super::reply::{ApiError, created, ok, rfc3339, success};
use super::super::state::apps::{ConfigUpdate, MAX_ENVS, NewApp};
use super::super::validate::{self as v, COMMAND_MAX, DESCRIPTION_MAX, NAME_MAX};
use super::super::wire::{AppCreated, Uploaded, codes};
use super::{Answer, Caller, P, Q, app_limited, content_type, deploy_limited, null, unreadable};

/// A multipart form: fields by name (a repeated field is refused).
struct Form(HashMap<String, Part>);

impl Form {
    fn read(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Form, ApiError> {
        let body = body.map_err(unreadable)?;
        let boundary =
            multipart::boundary(content_type(headers)).map_err(|e| ApiError::validation(&[], e))?;
        let parts = multipart::parse(&body, &boundary).map_err(|e| ApiError::validation(&[], e))?;
        let mut form = HashMap::new();
        for p in parts {
            if form.contains_key(&p.name) {
                return Err(ApiError::validation(
                    &[p.name.as_str()],
                    format!("{} is given twice", p.name),
                ));
            }
            form.insert(p.name.clone(), p);
        }
        Ok(Form(form))
    }

    /// A text field; empty counts as absent.
    fn text(&self, name: &str) -> Result<Option<String>, ApiError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(p) => {
                let s = p.text().map_err(|e| ApiError::validation(&[name], e))?;
                Ok((!s.is_empty()).then(|| s.to_string()))
            }
        }
    }

    fn bounded(&self, name: &str, max: usize) -> Result<Option<String>, ApiError> {
        let s = self.text(name)?;
        if let Some(s) = &s
            && s.chars().count() > max
        {
            return Err(ApiError::validation(
                &[name],
                format!("{name} must have at most {max} characters"),
            ));
        }
        Ok(s)
    }
}

/// The create form as a [`NewApp`], in the order the checks run: source, fields, archive.
fn new_app(form: &Form) -> Result<NewApp, ApiError> {
    let file = form.0.get("file");
    let snapshot = form.text("snapshot_id")?;
    match (file, &snapshot) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                codes::SOURCE_CONFLICT,
                "send either file or snapshot_id, not both",
            ));
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                codes::SOURCE_REQUIRED,
                "send the app's code as file (a ZIP) or snapshot_id",
            ));
        }
        _ => {}
    }
    let name = v::required("name", form.bounded("name", NAME_MAX)?)?;
    let subdomain = form
        .text("subdomain")?
        .map(|s| v::subdomain_wish("subdomain", &s))
        .transpose()?;
    let memory = form
        .text("memory")?
        .map(|m| v::integer_text("memory", &m))
        .transpose()?;
    let main = form.bounded("main", 255)?;
    let version = form
        .text("version")?
        .map(|s| v::version("version", &s))
        .transpose()?;
    let start_command = form.bounded("start", COMMAND_MAX)?;
    let build_command = form.bounded("build", COMMAND_MAX)?;
    let description = form.bounded("description", DESCRIPTION_MAX)?;
    let workspace_id = form.text("workspace_id")?;
    let envs = match form.text("envs")? {
        None => Vec::new(),
        Some(text) => {
            let value: Value = serde_json::from_str(&text).map_err(|e| {
                ApiError::validation(&["envs"], format!("envs must be JSON text: {e}"))
            })?;
            let envs = v::envs(&value, "envs")?;
            if envs.len() > MAX_ENVS {
                return Err(ApiError::validation(
                    &["envs"],
                    format!("an app has at most {MAX_ENVS} environment variables"),
                ));
            }
            envs
        }
    };
    if let Some(id) = snapshot {
        return Err(ApiError::not_found(
            codes::SNAPSHOT_NOT_FOUND,
            format!("snapshot {id:?} does not exist (the sandbox keeps no snapshots)"),
        ));
    }
    let ram = v::app_ram(
        "memory",
        v::required("memory", memory)?,
        subdomain.is_some(),
    )?;
    let main_file = v::required("main", main)?;
    let version = v::required("version", version)?;
    let part = file.ok_or_else(|| ApiError::bad_request(codes::NO_FILE_UPLOADED, "no file"))?;
    let archive = archive::read_zip(&part.data, None)?;
    let wanted = clean_path(None, &main_file).unwrap_or_default();
    if !archive.files.contains(&wanted) {
        return Err(ApiError::bad_request(
            codes::MAIN_FILE_NOT_FOUND,
            format!("the archive has no file {main_file:?} (main)"),
        ));
    }
    Ok(NewApp {
        name,
        description,
        ram,
        main_file,
        version,
        start_command,
        build_command,
        workspace_id,
        subdomain,
        envs,
        archive,
    })
}

/// `POST /v1/apps` (multipart): a deploy. `201` with the app installing, or `down` at once when
/// its build fails.
pub async fn create(
    State(sim): State<Arc<Sim>>,
    Caller(fp): Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let cloud = sim.cloud();
    let plan = cloud.plan();
    if !plan.can_create() {
        return Err(ApiError::forbidden(
            codes::FREE_PLAN_SUSPENDED,
            "the Free plan makes no new apps; upgrade the plan",
        ));
    }
    let new = new_app(&Form::read(&headers, body)?)?;
    let removed_directories = new.archive.removed_directories.clone();
    let now = Timestamp::now();
    let mut st = sim.state();
    st.check_new_app(&new, plan)?;
    cloud
        .meter()
        .deploy(&fp, unix_now())
        .map_err(deploy_limited)?;
    let id = st.insert_app(new, plan, now, cloud.install_delay())?;
    let app = st.apps[&id].view(&st.user.id, plan);
    drop(st);
    sim.mutated();
    Ok(created(AppCreated {
        app,
        removed_directories,
    }))
}

pub async fn get(State(sim): State<Arc<Sim>>, P(id): P<String>, q: Q) -> Answer {
    let plan = sim.cloud().plan();
    let mut st = sim.state();
    let owner = st.user.id.clone();
    Ok(ok(st
        .app(&id, q.ws(), Timestamp::now())?
        .view(&owner, plan)))
}

pub async fn status(State(sim): State<Arc<Sim>>, P(id): P<String>, q: Q) -> Answer {
    let now = Timestamp::now();
    Ok(ok(sim.state().app(&id, q.ws(), now)?.usage(now)))
}

pub async fn list_status(State(sim): State<Arc<Sim>>) -> Answer {
    let now = Timestamp::now();
    let mut st = sim.state();
    let usage: Vec<_> = st
        .apps_in_order(now)
        .into_iter()
        .map(|a| a.usage(now))
        .collect();
    Ok(ok(usage))
}

/// `PATCH /v1/apps/:id/config`: the update route's names; the create route's (`memory`,
/// `main`, `start`, `build`) and any other key are dropped. A build command change is a deploy.
pub async fn config(
    State(sim): State<Arc<Sim>>,
    Caller(fp): Caller,
    P(id): P<String>,
    q: Q,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let o = v::json_object(body)?;
    let u = ConfigUpdate {
        name: v::string(&o, "name", 1, NAME_MAX)?,
        description: v::nullable_string(&o, "description", DESCRIPTION_MAX, false)?,
        main_file: v::string(&o, "main_file", 1, 255)?,
        language: v::string(&o, "language", 1, 20)?
            .map(|l| v::language(&l))
            .transpose()?,
        version: v::string(&o, "version", 1, 32)?
            .map(|s| v::version("version", &s))
            .transpose()?,
        start_command: v::nullable_string(&o, "start_command", COMMAND_MAX, true)?,
        build_command: v::nullable_string(&o, "build_command", COMMAND_MAX, true)?,
        ram: v::integer(&o, "ram")?
            .map(|r| v::app_ram("ram", r, false))
            .transpose()?,
    };
    if u == ConfigUpdate::default() {
        return Err(ApiError::validation(
            &[],
            "send at least one of name, description, main_file, language, version, \
             start_command, build_command, ram",
        ));
    }
    let cloud = sim.cloud();
    let now = Timestamp::now();
    let mut st = sim.state();
    let app = st.app(&id, q.ws(), now)?;
    if app.check_config(&u)? {
        cloud
            .meter()
            .deploy(&fp, unix_now())
            .map_err(deploy_limited)?;
    }
    app.update_config(u, now);
    drop(st);
    sim.mutated();
    Ok(ok("success"))
}

/// The frame of start and stop: the app, its lifecycle budget, the change.
fn lifecycle(
    sim: &Sim,
    fp: &str,
    id: &str,
    ws: Option<&str>,
    change: impl FnOnce(&mut super::super::state::AppRec, Timestamp) -> Result<(), ApiError>,
) -> Answer {
    let now = Timestamp::now();
    let mut st = sim.state();
    let app = st.app(id, ws, now)?;
    sim.cloud()
        .meter()
        .route(RouteBudget::Lifecycle, id, fp, unix_now())
        .map_err(app_limited("lifecycle"))?;
    change(app, now)?;
    drop(st);
    sim.mutated();
    Ok(success())
}

pub async fn start(
    State(sim): State<Arc<Sim>>,
    Caller(fp): Caller,
    P(id): P<String>,
    q: Q,
) -> Answer {
    lifecycle(&sim, &fp, &id, q.ws(), |app, now| app.start(now))
}

pub async fn stop(
    State(sim): State<Arc<Sim>>,
    Caller(fp): Caller,
    P(id): P<String>,
    q: Q,
) -> Answer {
    lifecycle(&sim, &fp, &id, q.ws(), |app, now| app.stop(now))
}

/// `POST /v1/apps/:id/restart {reinstall_dependencies?, force_build?}`: with either, a deploy
/// and an install.
pub async fn restart(
    State(sim): State<Arc<Sim>>,
    Caller(fp): Caller,
    P(id): P<String>,
    q: Q,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let o = v::optional_object(body)?;
    let rebuild = v::boolean(&o, "reinstall_dependencies")?.unwrap_or(false)
        | v::boolean(&o, "force_build")?.unwrap_or(false);
    v::string(&o, "cleanup_old_runtime_language", 1, 20)?;
    let cloud = sim.cloud();
    let delay = cloud.install_delay();
    lifecycle(&sim, &fp, &id, q.ws(), |app, now| {
        app.check_restart()?;
        if rebuild {
            cloud
                .meter()
                .deploy(&fp, unix_now())
                .map_err(deploy_limited)?;
        }
        app.restart(rebuild, now, delay);
        Ok(())
    })
}

pub async fn delete(State(sim): State<Arc<Sim>>, P(id): P<String>, q: Q) -> Answer {
    sim.state().delete_app(&id, q.ws(), Timestamp::now())?;
    sim.mutated();
    Ok(null())
}

/// `POST /v1/apps/:id/files/upload?restart=&path=` (multipart `file`): a ZIP merged over the
/// app's files, or one file. A deploy.
pub async fn upload(
    State(sim): State<Arc<Sim>>,
    Caller(fp): Caller,
    P(id): P<String>,
    q: Q,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let restart = match q.get("restart") {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(other) => {
            return Err(ApiError::validation(
                &["restart"],
                format!("restart must be true or false; got {other:?}"),
            ));
        }
    };
    let dir = q.get("path").filter(|p| !p.is_empty());
    let form = Form::read(&headers, body)?;
    let part = form.0.get("file").ok_or_else(|| {
        ApiError::bad_request(
            codes::NO_FILE_UPLOADED,
            "send the code as the multipart field file",
        )
    })?;
    let name = part.filename.clone().unwrap_or_else(|| "upload.zip".into());
    let archive: Archive = if looks_like_zip(&part.data) || name.ends_with(".zip") {
        archive::read_zip(&part.data, dir)?
    } else {
        archive::single_file(&name, part.data.len(), dir)?
    };
    let removed_directories = archive.removed_directories.clone();
    let cloud = sim.cloud();
    let now = Timestamp::now();
    let mut st = sim.state();
    let app = st.app(&id, q.ws(), now)?;
    app.ensure_idle()?;
    cloud
        .meter()
        .deploy(&fp, unix_now())
        .map_err(deploy_limited)?;
    app.upload(archive, restart, now, cloud.install_delay());
    let answer = Uploaded {
        app_id: app.id.clone(),
        updated_at: rfc3339(app.updated_at),
        missing_dependencies: Vec::new(),
        removed_directories,
    };
    drop(st);
    sim.mutated();
    Ok(ok(answer))
}

pub async fn list_envs(State(sim): State<Arc<Sim>>, P(id): P<String>, q: Q) -> Answer {
    Ok(ok(sim.state().app(&id, q.ws(), Timestamp::now())?.envs()))
}

/// `POST /v1/apps/:id/envs`: one env, an array, or `{environments: [...]}`; upsert by key;
/// answers the whole list.
pub async fn set_envs(
    State(sim): State<Arc<Sim>>,
    P(id): P<String>,
    q: Q,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let body = crate::sim::reply::json_body(body).map_err(ApiError::from)?;
    let inputs = v::envs(&body, "envs")?;
    let now = Timestamp::now();
    let mut st = sim.state();
    let app = st.app(&id, q.ws(), now)?;
    app.set_envs(inputs, now)?;
    let envs = app.envs();
    drop(st);
    sim.mutated();
    Ok(ok(envs))
}

pub async fn delete_env(
    State(sim): State<Arc<Sim>>,
    P((id, env_id)): P<(String, String)>,
    q: Q,
) -> Answer {
    let now = Timestamp::now();
    sim.state()
        .app(&id, q.ws(), now)?
        .delete_env(&env_id, now)?;
    sim.mutated();
    Ok(null())
}
