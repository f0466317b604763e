//! The Vertra sandbox over real HTTP: every test starts its own sandbox on a free port and talks
//! to it with reqwest (never the stratus Vertra client), as api-current.md says a client would.

use std::io::Write;
use std::time::{Duration, Instant};

use reqwest::multipart::{Form, Part};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use stratus::providers::vertra::sim::wire::{App, AppCreated, Database, Workspace};
use stratus::providers::vertra::sim::{
    Faults, Plan, VertraSimConfig, VertraSimHandle, key_fingerprint, parse_key_scopes, scopes,
    start,
};

const KEY: &str = "vc_live_0123456789abcdef0123456789abcdef0123456789abcdef";

struct Sandbox {
    sim: VertraSimHandle,
    http: reqwest::Client,
}

struct Resp {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
    /// What `{"response": …}` holds.
    fn response(&self) -> Value {
        let v = self.json();
        assert!(v.get("response").is_some(), "no response: {}", self.text);
        v["response"].clone()
    }
    fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_string()
    }
    fn details(&self) -> Value {
        self.json()["details"].clone()
    }
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    }
    #[track_caller]
    fn expect(&self, status: u16, code: &str) -> &Self {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        if !code.is_empty() {
            assert_eq!(self.code(), code, "{}", self.text);
            assert!(self.json().get("response").is_none(), "{}", self.text);
            assert!(self.json()["message"].is_string(), "{}", self.text);
        }
        self
    }
    #[track_caller]
    fn path(&self) -> Value {
        self.details()["path"].clone()
    }
}

/// A ZIP with these files (each with a line of JavaScript).
fn zip(files: &[&str]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    for f in files {
        w.start_file(*f, opts).unwrap();
        w.write_all(b"console.log('hello from a sandbox test');\n")
            .unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn config() -> VertraSimConfig {
    VertraSimConfig::for_tests(&[KEY])
}

impl Sandbox {
    async fn new(config: VertraSimConfig) -> Self {
        let sim = start(config, "127.0.0.1:0".parse().unwrap()).await.unwrap();
        Self {
            sim,
            http: reqwest::Client::new(),
        }
    }

    async fn send(&self, method: Method, path: &str, key: Option<&str>, body: Body) -> Resp {
        let mut rb = self
            .http
            .request(method, format!("{}{path}", self.sim.root_url()));
        if let Some(k) = key {
            rb = rb.bearer_auth(k);
        }
        rb = match body {
            Body::None => rb,
            Body::Json(v) => rb.json(&v),
            Body::Form(f) => rb.multipart(f),
        };
        let r = rb.send().await.unwrap();
        Resp {
            status: r.status(),
            headers: r.headers().clone(),
            text: r.text().await.unwrap(),
        }
    }

    async fn get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, Some(KEY), Body::None).await
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        let body = body.map(Body::Json).unwrap_or(Body::None);
        self.send(method, path, Some(KEY), body).await
    }

    async fn control(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        let body = body.map(Body::Json).unwrap_or(Body::None);
        self.send(method, path, None, body).await
    }

    /// `POST /v1/apps` with `name`, 512 MB, main `index.js`, the archive and `extra` fields.
    async fn create_app(&self, name: &str, archive: Vec<u8>, extra: &[(&str, &str)]) -> Resp {
        let mut form = Form::new()
            .text("name", name.to_string())
            .text("memory", "512")
            .text("main", "index.js")
            .text("version", "recommended");
        for (k, v) in extra {
            form = form.text(k.to_string(), v.to_string());
        }
        let file = Part::bytes(archive)
            .file_name("app.zip")
            .mime_str("application/zip")
            .unwrap();
        self.send(
            Method::POST,
            "/v1/apps",
            Some(KEY),
            Body::Form(form.part("file", file)),
        )
        .await
    }

    /// A new app, created and up.
    async fn running_app(&self, name: &str) -> String {
        let r = self.create_app(name, zip(&["index.js"]), &[]).await;
        r.expect(201, "");
        let id = r.response()["id"].as_str().unwrap().to_string();
        self.wait_running(&id).await;
        id
    }

    async fn upload(&self, id: &str, archive: Vec<u8>, restart: bool) -> Resp {
        let file = Part::bytes(archive).file_name("code.zip");
        let path = format!("/v1/apps/{id}/files/upload?restart={restart}");
        self.send(
            Method::POST,
            &path,
            Some(KEY),
            Body::Form(Form::new().part("file", file)),
        )
        .await
    }

    /// Polls `/status` until the app runs (generous bound).
    async fn wait_running(&self, id: &str) -> Value {
        let t0 = Instant::now();
        loop {
            let s = self.get(&format!("/v1/apps/{id}/status")).await.response();
            if s["running"] == true {
                return s;
            }
            assert!(t0.elapsed() < Duration::from_secs(20), "never up: {s}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn create_database(&self, name: &str, kind: u8, ram: u64) -> Resp {
        let body = json!({"name": name, "type": kind, "ram": ram});
        self.call(Method::POST, "/v1/databases", Some(body)).await
    }
}

enum Body {
    None,
    Json(Value),
    Form(Form),
}

#[tokio::test]
async fn an_app_made_by_multipart_installs_then_runs_and_new_code_installs_again() {
    let s = Sandbox::new(config()).await;
    let r = s
        .create_app(
            "web",
            zip(&["index.js", "node_modules/left-pad/index.js", "lib/util.js"]),
            &[("envs", r#"[{"key":"PORT","value":"8080","note":"http"}]"#)],
        )
        .await;
    r.expect(201, "");
    let created: AppCreated = serde_json::from_value(r.response()).unwrap();
    let app = created.app;
    assert_eq!(created.removed_directories, ["node_modules"]);
    assert_eq!(app.id.len(), 32);
    assert!(app.id.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!((app.name.as_str(), app.ram, app.kind), ("web", 512, 1));
    assert_eq!(
        (app.language.as_str(), app.main_file.as_str()),
        ("javascript", "index.js")
    );
    assert_eq!(
        serde_json::to_value(app.status).unwrap(),
        "down",
        "installing"
    );
    assert_eq!((app.subdomain, app.public_url), (None, None));

    let status = s
        .get(&format!("/v1/apps/{}/status", app.id))
        .await
        .response();
    assert_eq!(
        (status["installing"].clone(), status["running"].clone()),
        (json!(true), json!(false))
    );
    s.call(Method::POST, &format!("/v1/apps/{}/start", app.id), None)
        .await
        .expect(409, "OPERATION_IN_PROGRESS");

    let status = s.wait_running(&app.id).await;
    assert_eq!(status["installing"], false);
    let got = s.get(&format!("/v1/apps/{}", app.id)).await.response();
    assert_eq!(got["status"], "up");
    let envs = s.get(&format!("/v1/apps/{}/envs", app.id)).await.response();
    assert_eq!(envs[0]["key"], "PORT");
    assert_eq!(envs[0]["note"], "http");

    let r = s
        .upload(&app.id, zip(&["index.js", ".git/HEAD"]), true)
        .await;
    r.expect(200, "");
    let up = r.response();
    assert_eq!(up["app_id"], app.id.as_str());
    assert_eq!(up["removed_directories"], json!([".git"]));
    assert_eq!(up["missing_dependencies"], json!([]));
    let status = s
        .get(&format!("/v1/apps/{}/status", app.id))
        .await
        .response();
    assert_eq!(status["installing"], true);
    s.wait_running(&app.id).await;

    for me in ["/v1/users/me", "/v1/users/@me"] {
        let me = s.get(me).await.response();
        assert_eq!(me["applications"][0]["id"], app.id.as_str());
        assert_eq!(me["plan_id"], 5);
        assert_eq!(me["id"].as_str().unwrap().len(), 18);
    }
    let list = s.get("/v1/apps/status").await.response();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(s.sim.creates().apps, 1);
    assert_eq!(s.sim.apps().len(), 1);

    s.call(Method::DELETE, &format!("/v1/apps/{}", app.id), None)
        .await
        .expect(200, "");
    s.get(&format!("/v1/apps/{}", app.id))
        .await
        .expect(404, "APP_NOT_FOUND");
    s.sim.shutdown().await;
}

#[tokio::test]
async fn a_create_that_is_refused_names_its_field_and_makes_nothing() {
    let s = Sandbox::new(config()).await;
    let good = zip(&["index.js"]);
    let form = |fields: &[(&str, &str)], file: Option<Vec<u8>>| {
        let mut f = Form::new();
        for (k, v) in fields {
            f = f.text(k.to_string(), v.to_string());
        }
        if let Some(b) = file {
            f = f.part("file", Part::bytes(b).file_name("app.zip"));
        }
        f
    };
    let base = [
        ("name", "web"),
        ("memory", "512"),
        ("main", "index.js"),
        ("version", "latest"),
    ];
    let with = |k: &'static str, v: &'static str| {
        let mut f: Vec<(&str, &str)> = base.iter().copied().filter(|(n, _)| *n != k).collect();
        if !v.is_empty() {
            f.push((k, v));
        }
        f
    };
    let post = |f: Form| s.send(Method::POST, "/v1/apps", Some(KEY), Body::Form(f));

    let r = post(form(&with("name", ""), Some(good.clone()))).await;
    assert_eq!(r.expect(400, "VALIDATION_ERROR").path(), json!(["name"]));
    let long = Box::leak("n".repeat(51).into_boxed_str());
    let r = post(form(&with("name", long), Some(good.clone()))).await;
    assert_eq!(r.expect(400, "VALIDATION_ERROR").path(), json!(["name"]));
    let r = post(form(&with("memory", "99"), Some(good.clone()))).await;
    assert_eq!(r.expect(400, "VALIDATION_ERROR").path(), json!(["memory"]));
    let mut published = with("memory", "256");
    published.push(("subdomain", "shop"));
    let r = post(form(&published, Some(good.clone()))).await;
    assert_eq!(r.expect(400, "VALIDATION_ERROR").path(), json!(["memory"]));
    let r = post(form(&with("version", ""), Some(good.clone()))).await;
    assert_eq!(r.expect(400, "VALIDATION_ERROR").path(), json!(["version"]));
    let mut bad_envs = base.to_vec();
    bad_envs.push(("envs", "KEY=value"));
    let r = post(form(&bad_envs, Some(good.clone()))).await;
    assert_eq!(r.expect(400, "VALIDATION_ERROR").path(), json!(["envs"]));

    post(form(&base, None)).await.expect(400, "SOURCE_REQUIRED");
    let mut both = base.to_vec();
    both.push(("snapshot_id", "0b8f4a52-7f5c-4c3e-9a55-0d0b4f7a3c11"));
    post(form(&both, Some(good.clone())))
        .await
        .expect(400, "SOURCE_CONFLICT");
    let snapshot: Vec<_> = both.into_iter().filter(|(k, _)| *k != "file").collect();
    post(form(&snapshot, None))
        .await
        .expect(404, "SNAPSHOT_NOT_FOUND");
    post(form(&base, Some(b"PK\x03\x04tiny".to_vec())))
        .await
        .expect(400, "ZIP_TOO_SMALL");
    post(form(&base, Some(vec![b'x'; 4096])))
        .await
        .expect(400, "INVALID_ZIP");
    post(form(&base, Some(zip(&["src/index.js"]))))
        .await
        .expect(400, "MAIN_FILE_NOT_FOUND");
    s.call(Method::POST, "/v1/apps", Some(json!({"name": "web"})))
        .await
        .expect(400, "VALIDATION_ERROR");

    assert_eq!(s.sim.creates().apps, 0);
    assert!(s.sim.apps().is_empty());
    s.sim.shutdown().await;
}

#[tokio::test]
async fn an_archive_of_megabytes_is_accepted_where_json_bodies_stop_at_two() {
    let s = Sandbox::new(config()).await;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    w.start_file("index.js", stored).unwrap();
    w.write_all(b"console.log(1);\n").unwrap();
    w.start_file("assets/blob.bin", stored).unwrap();
    let noise: Vec<u8> = (0..3 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    w.write_all(&noise).unwrap();
    let big = w.finish().unwrap().into_inner();
    assert!(big.len() > 3 * 1024 * 1024);
    s.create_app("big", big, &[]).await.expect(201, "");
    let envs: Vec<Value> = (0..26)
        .map(|i| json!({"key": format!("K{i}"), "value": "v"}))
        .collect();
    let r = s
        .create_app(
            "many-envs",
            zip(&["index.js"]),
            &[("envs", &Value::from(envs).to_string())],
        )
        .await;
    assert_eq!(r.expect(400, "VALIDATION_ERROR").path(), json!(["envs"]));
    s.sim.shutdown().await;
}

#[tokio::test]
async fn a_failing_build_still_creates_the_app_down_and_start_answers_build_failed() {
    let s = Sandbox::new(config()).await;
    let r = s
        .create_app("broken", zip(&["index.js", "FAIL_BUILD"]), &[])
        .await;
    r.expect(201, "");
    let app: App = serde_json::from_value(r.response()).unwrap();
    let status = s
        .get(&format!("/v1/apps/{}/status", app.id))
        .await
        .response();
    assert_eq!(
        (status["running"].clone(), status["installing"].clone()),
        (json!(false), json!(false))
    );
    for (path, body) in [
        ("start", None),
        ("restart", Some(json!({"force_build": true}))),
    ] {
        s.call(Method::POST, &format!("/v1/apps/{}/{path}", app.id), body)
            .await
            .expect(422, "BUILD_FAILED");
    }
    s.upload(&app.id, zip(&["index.js"]), true)
        .await
        .expect(200, "");
    s.wait_running(&app.id).await;
    s.sim.shutdown().await;
}

#[tokio::test]
async fn a_second_lifecycle_operation_while_installing_is_operation_in_progress() {
    let mut c = config();
    c.install_delay = Duration::from_secs(30);
    let s = Sandbox::new(c).await;
    let id = s
        .create_app("slow", zip(&["index.js"]), &[])
        .await
        .response()["id"]
        .as_str()
        .unwrap()
        .to_string();
    for (method, path, body) in [
        (Method::POST, "stop", None),
        (Method::POST, "start", None),
        (
            Method::POST,
            "restart",
            Some(json!({"reinstall_dependencies": true})),
        ),
        (Method::POST, "network/publish", Some(json!({}))),
        (Method::DELETE, "", None),
    ] {
        let path = format!("/v1/apps/{id}/{path}");
        s.call(method, path.trim_end_matches('/'), body)
            .await
            .expect(409, "OPERATION_IN_PROGRESS");
    }
    s.upload(&id, zip(&["index.js"]), false)
        .await
        .expect(409, "OPERATION_IN_PROGRESS");
    // Settings and envs are not lifecycle operations.
    s.call(
        Method::PATCH,
        &format!("/v1/apps/{id}/config"),
        Some(json!({"name": "slower"})),
    )
    .await
    .expect(200, "");
    s.sim.set_install_delay(Duration::ZERO);
    s.sim.shutdown().await;
}

#[tokio::test]
async fn config_updates_take_the_update_routes_names_and_drop_the_create_routes() {
    let s = Sandbox::new(config()).await;
    let id = s.running_app("web").await;
    let path = format!("/v1/apps/{id}/config");
    let r = s
        .call(
            Method::PATCH,
            &path,
            Some(json!({"memory": 2048, "main": "a.js", "start": "x"})),
        )
        .await;
    r.expect(400, "VALIDATION_ERROR");
    let r = s
        .call(
            Method::PATCH,
            &path,
            Some(
                json!({"name": "web2", "ram": 1024, "start_command": "node a.js", "memory": 4096,
                        "language": "typescript", "description": null}),
            ),
        )
        .await;
    assert_eq!(r.expect(200, "").response(), "success");
    let app: App =
        serde_json::from_value(s.get(&format!("/v1/apps/{id}")).await.response()).unwrap();
    assert_eq!((app.name.as_str(), app.ram), ("web2", 1024));
    assert_eq!(app.start_command.as_deref(), Some("node a.js"));
    assert_eq!(
        (app.language.as_str(), app.version.as_str()),
        ("typescript", "recommended")
    );
    let r = s.call(Method::PATCH, &path, Some(json!({"ram": 50}))).await;
    assert_eq!(r.expect(400, "VALIDATION_ERROR").path(), json!(["ram"]));
    let r = s
        .call(Method::PATCH, &path, Some(json!({"language": "cobol"})))
        .await;
    assert_eq!(
        r.expect(400, "VALIDATION_ERROR").path(),
        json!(["language"])
    );
    s.sim.shutdown().await;
}

#[tokio::test]
async fn envs_are_upserted_by_key_listed_and_deleted() {
    let s = Sandbox::new(config()).await;
    let id = s.running_app("web").await;
    let path = format!("/v1/apps/{id}/envs");
    let list = s
        .call(
            Method::POST,
            &path,
            Some(json!([{"key": "A", "value": "1", "note": "first"}, {"key": "B", "value": "2"}])),
        )
        .await
        .response();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(list[0]["id"].as_str().unwrap().starts_with("env-"));
    let list = s
        .call(
            Method::POST,
            &path,
            Some(json!({"key": "A", "value": "9", "note": null})),
        )
        .await
        .response();
    assert_eq!(
        (list[0]["value"].clone(), list[0]["note"].clone()),
        (json!("9"), Value::Null)
    );
    let list = s
        .call(
            Method::POST,
            &path,
            Some(json!({"environments": [{"key": "C", "value": "3"}]})),
        )
        .await
        .response();
    assert_eq!(list.as_array().unwrap().len(), 3);
    s.call(
        Method::POST,
        &path,
        Some(json!([{"key": "D", "value": "1"}, {"key": "D", "value": "2"}])),
    )
    .await
    .expect(400, "VALIDATION_ERROR");
    let b = list[1]["id"].as_str().unwrap().to_string();
    let r = s.call(Method::DELETE, &format!("{path}/{b}"), None).await;
    assert_eq!(r.expect(200, "").response(), Value::Null);
    s.call(Method::DELETE, &format!("{path}/{b}"), None)
        .await
        .expect(404, "ENV_NOT_FOUND");
    assert_eq!(s.get(&path).await.response().as_array().unwrap().len(), 2);
    s.sim.shutdown().await;
}

#[tokio::test]
async fn publishing_gives_a_subdomain_and_a_custom_domain_waits_for_its_dns_records() {
    let s = Sandbox::new(config()).await;
    let id = s.running_app("shop").await;
    let other = s.running_app("other").await;
    let net = |id: &str, what: &str| format!("/v1/apps/{id}/network/{what}");

    let p = s
        .call(
            Method::POST,
            &net(&id, "publish"),
            Some(json!({"subdomain": "shop"})),
        )
        .await
        .response();
    assert_eq!(
        p,
        json!({"subdomain": "shop.vertraweb.app", "custom_domain": null, "type": 2})
    );
    let app = s.get(&format!("/v1/apps/{id}")).await.response();
    assert_eq!(
        (app["type"].clone(), app["public_url"].clone()),
        (json!(2), json!("https://shop.vertraweb.app"))
    );
    s.call(Method::POST, &net(&id, "publish"), None)
        .await
        .expect(400, "APP_ALREADY_PUBLISHED");
    s.call(
        Method::POST,
        &net(&other, "publish"),
        Some(json!({"subdomain": "shop"})),
    )
    .await
    .expect(409, "SUBDOMAIN_TAKEN");
    let r = s
        .call(
            Method::PATCH,
            &net(&id, "subdomain"),
            Some(json!({"subdomain": "store"})),
        )
        .await;
    assert_eq!(r.response(), json!({"subdomain": "store.vertraweb.app"}));

    s.get(&net(&id, "custom"))
        .await
        .expect(404, "NO_CUSTOM_DOMAIN");
    s.call(
        Method::POST,
        &net(&id, "custom"),
        Some(json!({"domain": "@"})),
    )
    .await
    .expect(400, "INVALID_CUSTOM_DOMAIN_FORMAT");
    s.call(
        Method::POST,
        &net(&other, "custom"),
        Some(json!({"domain": "shop.example.com"})),
    )
    .await
    .expect(400, "APP_HAS_NO_SUBDOMAIN");
    let r = s
        .call(
            Method::POST,
            &net(&id, "custom"),
            Some(json!({"domain": "Shop.Example.com"})),
        )
        .await;
    assert_eq!(r.response(), json!({"domain": "shop.example.com"}));
    let dns = s.get(&net(&id, "dns")).await.response();
    assert_eq!(dns[0]["type"], "CNAME");
    assert_eq!(dns[0]["value"], "store.vertraweb.app");
    assert_eq!(dns[1]["type"], "TXT");
    assert!(
        dns.as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "pending_validation")
    );
    assert!(s.sim.mark_dns_active(&id));
    let dns = s.get(&net(&id, "dns")).await.response();
    assert!(
        dns.as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "active")
    );
    let app = s.get(&format!("/v1/apps/{id}")).await.response();
    assert_eq!(app["public_url"], "https://shop.example.com");

    s.call(Method::DELETE, &net(&id, "custom"), None)
        .await
        .expect(200, "");
    s.get(&net(&id, "custom"))
        .await
        .expect(404, "NO_CUSTOM_DOMAIN");
    let p = s
        .call(Method::DELETE, &net(&id, "publish"), None)
        .await
        .response();
    assert_eq!(
        (p["subdomain"].clone(), p["type"].clone()),
        (Value::Null, json!(1))
    );

    s.sim.set_plan(Plan::Pro);
    s.call(
        Method::POST,
        &net(&id, "publish"),
        Some(json!({"subdomain": "mine"})),
    )
    .await
    .expect(403, "PLAN_RESTRICTED_FEATURE");
    let p = s
        .call(Method::POST, &net(&id, "publish"), Some(json!({})))
        .await
        .response();
    assert!(
        p["subdomain"].as_str().unwrap().ends_with(".vertraweb.app"),
        "random: {p}"
    );
    s.call(
        Method::POST,
        &net(&id, "custom"),
        Some(json!({"domain": "a.example.com"})),
    )
    .await
    .expect(403, "PLAN_RESTRICTED_FEATURE");
    s.sim.shutdown().await;
}

#[tokio::test]
async fn a_database_resets_its_password_gives_its_certificate_and_is_deleted_after_a_safety_snapshot()
 {
    let s = Sandbox::new(config()).await;
    let r = s.create_database("orders", 1, 512).await;
    assert_eq!(r.expect(400, "VALIDATION_ERROR").path(), json!(["ram"]));
    let r = s.create_database("orders", 5, 1024).await;
    assert_eq!(r.expect(400, "VALIDATION_ERROR").path(), json!(["type"]));
    s.create_database("cache", 3, 512).await.expect(201, "");
    let r = s.create_database("orders", 1, 1024).await;
    let db: Database = serde_json::from_value(r.expect(201, "").response()).unwrap();
    assert_eq!((db.kind, db.ram, db.name.as_str()), (1, 1024, "orders"));
    assert_eq!(serde_json::to_value(db.status).unwrap(), "up");
    assert_eq!(db.host, format!("{}.db.usa1.vertraweb.app", db.id));
    assert_ne!(db.port, s.sim.databases()[0].port, "ports are unique");
    let path = format!("/v1/databases/{}", db.id);

    let first = s.sim.database_password(&db.id).unwrap();
    let a = s
        .call(Method::POST, &format!("{path}/credentials/reset"), None)
        .await
        .response();
    let b = s
        .call(Method::POST, &format!("{path}/credentials/reset"), None)
        .await
        .response();
    let (a, b) = (
        a["password"].as_str().unwrap(),
        b["password"].as_str().unwrap(),
    );
    assert!(a != first && a != b);
    assert_eq!(s.sim.database_password(&db.id).unwrap(), b);
    let via_control = s
        .control(
            Method::GET,
            &format!("/_sim/databases/{}/password", db.id),
            None,
        )
        .await
        .json();
    assert_eq!(via_control["password"], b);
    let cert = s
        .get(&format!("{path}/credentials/certificate"))
        .await
        .response();
    assert!(
        cert["crt"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    assert!(
        cert["key"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
    assert!(
        cert["pem"]
            .as_str()
            .unwrap()
            .contains(cert["crt"].as_str().unwrap())
    );

    let r = s
        .call(
            Method::PUT,
            &path,
            Some(json!({"name": "orders2", "description": "main"})),
        )
        .await;
    assert_eq!(r.response(), json!({"status": "success"}));
    s.call(Method::PUT, &path, Some(json!({"updates": {"ram": 2048}})))
        .await
        .expect(200, "");
    let got = s.get(&path).await.response();
    assert_eq!(
        (got["name"].clone(), got["ram"].clone()),
        (json!("orders2"), json!(2048))
    );
    assert!(got.get("password").is_none());
    s.call(Method::POST, &format!("{path}/stop"), None)
        .await
        .expect(200, "");
    s.call(Method::POST, &format!("{path}/stop"), None)
        .await
        .expect(200, "");
    assert_eq!(
        s.get(&format!("{path}/status")).await.response()["running"],
        false
    );
    s.call(Method::POST, &format!("{path}/start"), None)
        .await
        .expect(200, "");

    s.sim.fail_next_deletes(1);
    s.call(Method::DELETE, &path, None)
        .await
        .expect(500, "SNAPSHOT_FAILED");
    assert!(s.sim.database(&db.id).is_some(), "nothing was deleted");
    s.control(
        Method::POST,
        "/_sim/snapshot-failures",
        Some(json!({"always": true})),
    )
    .await;
    s.call(Method::DELETE, &path, None)
        .await
        .expect(500, "SNAPSHOT_FAILED");
    s.control(Method::POST, "/_sim/snapshot-failures", Some(json!({})))
        .await;
    let r = s.call(Method::DELETE, &path, None).await;
    assert_eq!(r.expect(200, "").response(), json!(db.id));
    s.get(&path).await.expect(404, "DATABASE_NOT_FOUND");
    s.call(Method::POST, &format!("{path}/credentials/reset"), None)
        .await
        .expect(404, "DATABASE_NOT_FOUND_OR_FORBIDDEN");
    let stats = s.sim.stats();
    assert_eq!(
        (stats.safety_snapshots.taken, stats.safety_snapshots.failed),
        (1, 2)
    );
    assert_eq!(stats.creates.databases, 2);
    s.sim.shutdown().await;
}

#[tokio::test]
async fn workspaces_are_enterprise_only_unique_by_name_scope_their_resources_and_are_soft_deleted()
{
    let s = Sandbox::new(config()).await;
    let r = s
        .call(
            Method::POST,
            "/v1/workspaces",
            Some(json!({"name": "team"})),
        )
        .await;
    let w: Workspace = serde_json::from_value(r.expect(201, "").response()).unwrap();
    assert!(uuid::Uuid::parse_str(&w.id).unwrap().get_version_num() == 4);
    s.call(
        Method::POST,
        "/v1/workspaces",
        Some(json!({"name": "team"})),
    )
    .await
    .expect(409, "WORKSPACE_NAME_ALREADY_EXISTS");
    let r = s
        .create_app("member-app", zip(&["index.js"]), &[("workspace_id", &w.id)])
        .await;
    let app_id = r.expect(201, "").response()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let info = s.get(&format!("/v1/workspaces/{}", w.id)).await.response();
    assert_eq!(info["applications"][0]["id"], app_id.as_str());
    assert_eq!(info["is_owner"], true);
    assert_eq!(info["roles"].as_array().unwrap().len(), 4);

    let other = s
        .call(
            Method::POST,
            "/v1/workspaces",
            Some(json!({"name": "other"})),
        )
        .await
        .response();
    let scoped = |ws: &str| format!("/v1/apps/{app_id}?workspace_id={ws}");
    s.get(&scoped(&w.id)).await.expect(200, "");
    s.get(&scoped(other["id"].as_str().unwrap()))
        .await
        .expect(404, "APP_NOT_FOUND");
    s.get(&scoped("3b241101-e2bb-4255-8caf-4136c566a962"))
        .await
        .expect(404, "WORKSPACE_NOT_FOUND");
    let r = s
        .call(
            Method::PUT,
            &format!("/v1/workspaces/{}", w.id),
            Some(json!({"name": "other"})),
        )
        .await;
    r.expect(409, "WORKSPACE_NAME_ALREADY_EXISTS");

    let r = s
        .call(Method::DELETE, &format!("/v1/workspaces/{}", w.id), None)
        .await;
    assert_eq!(r.expect(200, "").response(), Value::Null);
    let list = s.get("/v1/workspaces").await.response();
    assert_eq!(
        list.as_array().unwrap().len(),
        1,
        "soft deleted: not listed"
    );
    assert!(s.sim.workspaces()[0].deleted_at.is_some(), "but kept");
    s.get(&format!("/v1/workspaces/{}", w.id))
        .await
        .expect(404, "WORKSPACE_NOT_FOUND");
    s.get(&format!("/v1/apps/{app_id}")).await.expect(200, "");
    s.call(
        Method::POST,
        "/v1/workspaces",
        Some(json!({"name": "team"})),
    )
    .await
    .expect(201, "");

    s.sim.set_plan(Plan::Intermediary);
    s.call(
        Method::POST,
        "/v1/workspaces",
        Some(json!({"name": "more"})),
    )
    .await
    .expect(403, "PLAN_RESTRICTED_FEATURE");
    let frozen = s.get("/v1/workspaces").await.response();
    assert_eq!(frozen[0]["frozen"], true, "reads stay open, frozen");
    s.sim.shutdown().await;
}

#[tokio::test]
async fn a_missing_key_an_unknown_key_and_a_missing_scope_each_have_their_code() {
    let mut c = config();
    c.key_scopes
        .push(parse_key_scopes("reader=apps:read").unwrap());
    c.key_scopes
        .push(parse_key_scopes("snapper=snapshots:read").unwrap());
    let s = Sandbox::new(c).await;
    let id = s.running_app("web").await;

    let r = s.send(Method::GET, "/v1/users/me", None, Body::None).await;
    r.expect(401, "AUTH_TOKEN_MISSING");
    assert!(r.header("x-ratelimit-limit").is_none(), "no key, no budget");
    s.send(
        Method::GET,
        "/v1/users/me",
        Some("vc_live_unknown"),
        Body::None,
    )
    .await
    .expect(401, "API_KEY_INVALID");
    s.send(
        Method::GET,
        "/v1/nowhere",
        Some("vc_live_unknown"),
        Body::None,
    )
    .await
    .expect(401, "API_KEY_INVALID");
    s.get("/v1/nowhere").await.expect(404, "ROUTE_NOT_FOUND");

    s.send(
        Method::GET,
        &format!("/v1/apps/{id}"),
        Some("reader"),
        Body::None,
    )
    .await
    .expect(200, "");
    let r = s
        .send(
            Method::POST,
            &format!("/v1/apps/{id}/stop"),
            Some("reader"),
            Body::None,
        )
        .await;
    r.expect(403, "API_KEY_SCOPE_DENIED");
    assert_eq!(r.details()["required"], "apps:write");
    assert!(r.header("x-ratelimit-remaining").is_some());
    assert_eq!(
        s.get(&format!("/v1/apps/{id}/status")).await.response()["running"],
        true,
        "not stopped"
    );

    // Every route the sandbox serves needs its catalog scope.
    for (method, path, scope) in scopes::ROUTES {
        let path = path
            .replace("{id}", "00000000000000000000000000000001")
            .replace("{env_id}", "env-1");
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let r = s
            .send(method.clone(), &path, Some("snapper"), Body::None)
            .await;
        r.expect(403, "API_KEY_SCOPE_DENIED");
        assert_eq!(r.details()["required"], *scope, "{method} {path}");
    }

    assert!(s.sim.set_key_scopes("reader", Some("full")).is_ok());
    s.send(
        Method::POST,
        &format!("/v1/apps/{id}/stop"),
        Some("reader"),
        Body::None,
    )
    .await
    .expect(200, "");
    assert!(s.sim.set_key_scopes("reader", Some("apps:fly")).is_err());
    s.sim.shutdown().await;
}

#[tokio::test]
async fn the_per_minute_limit_answers_429_with_its_details_and_both_budgets_headers() {
    let mut c = config();
    c.per_minute = Some(3);
    let s = Sandbox::new(c).await;
    for remaining in [2, 1, 0] {
        let r = s.get("/v1/users/me").await;
        r.expect(200, "");
        assert_eq!(r.header("x-ratelimit-limit").unwrap(), "3");
        assert_eq!(
            r.header("x-ratelimit-remaining").unwrap(),
            remaining.to_string()
        );
        let reset: u64 = r.header("x-ratelimit-reset").unwrap().parse().unwrap();
        assert!((1..=60).contains(&reset), "{reset} s");
        assert_eq!(r.header("x-quota-limit").unwrap(), "864000");
        assert!(r.header("x-quota-reset").unwrap().parse::<u64>().unwrap() <= 86_400);
    }
    let r = s.get("/v1/users/me").await;
    r.expect(429, "RATE_LIMIT_EXCEEDED");
    let d = r.details();
    assert_eq!(
        (d["scope"].clone(), d["limit"].clone(), d["used"].clone()),
        (json!("minute"), json!(3), json!(3))
    );
    let retry = d["retry_after"].as_u64().unwrap();
    assert!((1..=60).contains(&retry));
    assert_eq!(r.header("retry-after").unwrap(), retry.to_string());
    assert_eq!(r.header("x-ratelimit-remaining").unwrap(), "0");
    assert_eq!(r.header("x-quota-remaining").unwrap(), "863997");

    let stats = s.sim.stats();
    assert_eq!(stats.served_429_by_limit.minute, 1);
    assert_eq!(stats.served_429, 1);
    assert_eq!(stats.max_in_window.per_minute, 3);
    let key = &stats.keys[&key_fingerprint(KEY)];
    assert_eq!((key.requests, key.served_429), (3, 1));
    assert_eq!(s.sim.account_request_times().len(), 3);
    s.sim.set_per_minute(Some(0));
    let r = s.get("/v1/users/me").await;
    assert_eq!(
        r.expect(200, "").header("x-ratelimit-limit").unwrap(),
        "1000000"
    );
    s.sim.shutdown().await;
}

#[tokio::test]
async fn the_daily_quota_answers_429_daily_quota_exceeded_with_its_headers() {
    let mut c = config();
    c.plan = Plan::Free;
    c.per_day = Some(2);
    let s = Sandbox::new(c).await;
    let r = s.get("/v1/users/me").await;
    assert_eq!(
        r.header("x-ratelimit-limit").unwrap(),
        "30",
        "the Free plan's minute"
    );
    assert_eq!(r.header("x-quota-remaining").unwrap(), "1");
    s.get("/v1/apps/status").await.expect(200, "");
    let r = s.get("/v1/users/me").await;
    r.expect(429, "DAILY_QUOTA_EXCEEDED");
    let d = r.details();
    assert_eq!(
        (d["scope"].clone(), d["limit"].clone(), d["used"].clone()),
        (json!("day"), json!(2), json!(2))
    );
    let retry = d["retry_after"].as_u64().unwrap();
    assert!((1..=86_400).contains(&retry));
    assert_eq!(r.header("retry-after").unwrap(), retry.to_string());
    assert_eq!(r.header("x-quota-remaining").unwrap(), "0");
    assert_eq!(r.header("x-ratelimit-remaining").unwrap(), "28");
    assert_eq!(s.sim.stats().served_429_by_limit.day, 1);
    s.sim.shutdown().await;
}

#[tokio::test]
async fn deploys_past_the_hourly_limit_answer_429_with_details_and_no_retry_after() {
    let mut c = config();
    c.deploys_per_hour = Some(2);
    c.install_delay = Duration::ZERO;
    let s = Sandbox::new(c).await;
    let id = s.running_app("web").await;
    s.upload(&id, zip(&["index.js"]), true)
        .await
        .expect(200, "");
    let restart = format!("/v1/apps/{id}/restart");
    let r = s
        .call(Method::POST, &restart, Some(json!({"force_build": true})))
        .await;
    r.expect(429, "DEPLOY_RATE_LIMITED");
    let d = r.details();
    assert_eq!(
        (d["limit"].clone(), d["window_seconds"].clone()),
        (json!(2), json!(3600))
    );
    assert!((1..=3600).contains(&d["retry_after"].as_u64().unwrap()));
    assert!(
        r.header("retry-after").is_none(),
        "no header on a deploy 429"
    );
    s.call(Method::POST, &restart, None).await.expect(200, "");
    s.call(
        Method::POST,
        &restart,
        Some(json!({"reinstall_dependencies": false})),
    )
    .await
    .expect(200, "");
    let config = format!("/v1/apps/{id}/config");
    s.call(
        Method::PATCH,
        &config,
        Some(json!({"build_command": "npm run build"})),
    )
    .await
    .expect(429, "DEPLOY_RATE_LIMITED");
    s.call(
        Method::PATCH,
        &config,
        Some(json!({"start_command": "node index.js"})),
    )
    .await
    .expect(200, "");
    s.create_app("second", zip(&["index.js"]), &[])
        .await
        .expect(429, "DEPLOY_RATE_LIMITED");
    assert_eq!(s.sim.creates().apps, 1);
    let stats = s.sim.stats();
    assert_eq!(
        (
            stats.served_429_by_limit.deploy,
            stats.max_in_window.deploys_per_hour
        ),
        (3, 2)
    );
    assert_eq!(s.sim.deploy_times().len(), 2);
    s.sim.shutdown().await;
}

#[tokio::test]
async fn lifecycle_calls_past_ten_a_minute_on_one_app_answer_429_without_details() {
    let mut c = config();
    c.install_delay = Duration::ZERO;
    let s = Sandbox::new(c).await;
    let id = s.running_app("busy").await;
    let calm = s.running_app("calm").await;
    for i in 0..10 {
        let what = if i % 2 == 0 { "stop" } else { "start" };
        s.call(Method::POST, &format!("/v1/apps/{id}/{what}"), None)
            .await
            .expect(200, "");
    }
    let r = s
        .call(
            Method::POST,
            &format!("/v1/apps/{id}/network/publish"),
            None,
        )
        .await;
    r.expect(429, "RATE_LIMIT_EXCEEDED");
    assert!(r.json().get("details").is_none(), "{}", r.text);
    assert!(r.header("retry-after").is_none());
    assert!(
        r.header("x-ratelimit-limit").is_some(),
        "the account's headers still come"
    );
    s.call(Method::POST, &format!("/v1/apps/{calm}/stop"), None)
        .await
        .expect(200, "");
    let stats = s.sim.stats();
    assert_eq!(stats.served_429_by_limit.lifecycle, 1);
    assert_eq!(stats.max_in_window.lifecycle_per_app_per_minute, 10);
    assert_eq!(s.sim.lifecycle_times(&id).len(), 10);
    s.sim.shutdown().await;
}

#[tokio::test]
async fn platform_stops_and_shield_cooldowns_refuse_a_start_until_lifted() {
    let s = Sandbox::new(config()).await;
    let id = s.running_app("web").await;
    let start = format!("/v1/apps/{id}/start");
    let r = s
        .control(
            Method::POST,
            &format!("/_sim/apps/{id}/offline"),
            Some(json!({"offline": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let app = s.get(&format!("/v1/apps/{id}")).await.response();
    assert_eq!(app["status"], "down");
    assert!(app["offline_since"].is_string());
    s.call(Method::POST, &start, None)
        .await
        .expect(403, "INSUFFICIENT_CREDITS");
    assert!(s.sim.set_app_offline(&id, false));
    s.call(Method::POST, &start, None).await.expect(200, "");
    assert_eq!(
        s.get(&format!("/v1/apps/{id}")).await.response()["status"],
        "up"
    );

    s.control(
        Method::POST,
        &format!("/_sim/apps/{id}/shield-cooldown"),
        Some(json!({"seconds": 600, "reason": "rate_limit"})),
    )
    .await;
    let app = s.get(&format!("/v1/apps/{id}")).await.response();
    assert_eq!(app["shield_cooldown"]["reason"], "rate_limit");
    s.call(Method::POST, &format!("/v1/apps/{id}/stop"), None)
        .await
        .expect(200, "");
    let r = s.call(Method::POST, &start, None).await;
    r.expect(403, "APP_SHIELD_COOLDOWN");
    assert_eq!(r.details()["until"], app["shield_cooldown"]["until"]);
    s.call(Method::DELETE, &format!("/v1/apps/{id}"), None)
        .await
        .expect(403, "APP_SHIELD_COOLDOWN");
    assert!(s.sim.set_shield_cooldown(&id, None));
    s.call(Method::POST, &start, None).await.expect(200, "");

    let db = s.create_database("orders", 1, 1024).await.response()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(s.sim.set_database_offline(&db, true));
    assert_eq!(
        s.get(&format!("/v1/databases/{db}")).await.response()["status"],
        "down"
    );
    s.call(Method::POST, &format!("/v1/databases/{db}/start"), None)
        .await
        .expect(403, "INSUFFICIENT_CREDITS");
    s.sim.shutdown().await;
}

#[tokio::test]
async fn the_plan_and_limits_change_through_sim_while_the_sandbox_runs() {
    let s = Sandbox::new(config()).await;
    let r = s
        .control(
            Method::POST,
            "/_sim/settings",
            Some(json!({"plan": "free", "installSeconds": 0})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["budgets"]["perMinute"], 30);
    let me = s.get("/v1/users/me").await;
    assert_eq!(me.header("x-ratelimit-limit").unwrap(), "30");
    assert_eq!(me.response()["plan"]["name"], "Free");
    s.create_app("web", zip(&["index.js"]), &[])
        .await
        .expect(403, "FREE_PLAN_SUSPENDED");
    s.create_database("db", 1, 1024)
        .await
        .expect(403, "FREE_PLAN_SUSPENDED");
    s.control(
        Method::POST,
        "/_sim/settings",
        Some(json!({"plan": "economy"})),
    )
    .await;
    s.create_database("db", 1, 1024)
        .await
        .expect(403, "PLAN_RESTRICTED_FEATURE");
    let r = s
        .control(
            Method::POST,
            "/_sim/settings",
            Some(json!({"plan": "gold"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = s
        .control(
            Method::POST,
            "/_sim/keys/scopes",
            Some(json!({"key": KEY, "scopes": ["read"]})),
        )
        .await;
    assert_eq!(r.json()["key"], key_fingerprint(KEY));
    s.call(Method::POST, "/v1/workspaces", Some(json!({"name": "w"})))
        .await
        .expect(403, "API_KEY_SCOPE_DENIED");
    assert_eq!(
        s.control(Method::GET, "/_sim/stats", None).await.json()["plan"],
        "economy"
    );
    s.sim.shutdown().await;
}

#[tokio::test]
async fn faults_answer_in_vertras_envelope_with_the_budget_headers_and_apply_nothing() {
    let s = Sandbox::new(config()).await;
    s.sim.set_faults(Faults {
        error_rate: 1.0,
        ..Default::default()
    });
    let r = s.create_database("db", 1, 1024).await;
    r.expect(500, "INTERNAL_SERVER_ERROR");
    assert_eq!(r.header("x-ratelimit-limit").unwrap(), "300");
    assert!(s.sim.databases().is_empty());
    s.sim.set_faults(Faults {
        malformed_rate: 1.0,
        ..Default::default()
    });
    let r = s.get("/v1/users/me").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(serde_json::from_str::<Value>(&r.text).is_err());
    s.sim.shutdown().await;
}

#[tokio::test]
async fn the_state_file_keeps_apps_databases_workspaces_and_passwords_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config();
    c.state_file = Some(dir.path().join("vertra.json"));
    c.install_delay = Duration::ZERO;
    let s = Sandbox::new(c.clone()).await;
    let app = s.running_app("web").await;
    let db = s.create_database("db", 4, 1024).await.response()["id"]
        .as_str()
        .unwrap()
        .to_string();
    s.call(Method::POST, "/v1/workspaces", Some(json!({"name": "w"})))
        .await
        .expect(201, "");
    let password = s.sim.database_password(&db).unwrap();
    let user = s.get("/v1/users/me").await.response()["id"].clone();
    s.sim.shutdown().await;

    let s = Sandbox::new(c).await;
    assert_eq!(
        s.get(&format!("/v1/apps/{app}")).await.response()["status"],
        "up"
    );
    assert_eq!(s.sim.database_password(&db).unwrap(), password);
    assert_eq!(s.sim.workspaces().len(), 1);
    assert_eq!(s.get("/v1/users/me").await.response()["id"], user);
    s.sim.shutdown().await;
}

#[tokio::test]
async fn stratus_sim_cloud_vertra_serves_users_me_to_a_key() {
    use std::io::BufRead;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_stratus"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("STRATUS_SIM_") {
            cmd.env_remove(name);
        }
    }
    cmd.args([
        "sim",
        "--cloud",
        "vertra",
        "--listen",
        "127.0.0.1:0",
        "--api-key",
        KEY,
    ])
    .args(["--plan", "pro", "--key-scopes", "limited=apps:read"])
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("the stratus binary runs");
    let mut line = String::new();
    std::io::BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .strip_prefix("Vertra sandbox listening on ")
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_string);
    let answers = match &base {
        Some(base) => {
            let http = reqwest::Client::new();
            let get = |key: Option<&'static str>| {
                let mut rb = http.get(format!("{base}/users/me"));
                if let Some(k) = key {
                    rb = rb.bearer_auth(k);
                }
                async move {
                    let r = rb.send().await.unwrap();
                    let limit = r.headers().get("x-ratelimit-limit").cloned();
                    (r.status(), limit, r.json::<Value>().await.unwrap())
                }
            };
            Some((
                get(Some(KEY)).await,
                get(None).await,
                get(Some("limited")).await,
            ))
        }
        None => None,
    };
    // Stopped before any assertion, so a failure leaves no sandbox running.
    child.kill().unwrap();
    child.wait().unwrap();
    let ((status, limit, me), (missing, _, no_key), (denied, _, scope)) =
        answers.unwrap_or_else(|| panic!("not the start-up line: {line:?}"));
    assert!(base.unwrap().ends_with("/v1"));
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["response"]["plan_id"], 3);
    assert_eq!(me["response"]["applications"], json!([]));
    assert_eq!(limit.unwrap(), "120", "the Pro plan's minute");
    assert_eq!(
        (missing, no_key["code"].clone()),
        (StatusCode::UNAUTHORIZED, json!("AUTH_TOKEN_MISSING"))
    );
    assert_eq!(
        (denied, scope["details"]["required"].clone()),
        (StatusCode::FORBIDDEN, json!("account:read"))
    );
}
