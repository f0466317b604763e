//! The CloudAPI sandbox over real HTTP, in both dialects: every test starts its own sandbox on a
//! free port and talks to it with reqwest (never a stratus client), as the reference
//! (`reference/cloudapi/README.md`) says a client would.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use stratus::providers::cloudapi::sim::wire::DeploymentStatus;
use stratus::providers::cloudapi::sim::{
    CloudApiSimConfig, CloudApiSimHandle, Dialect, key_fingerprint, parse_workspace_key, start,
};

const KEY: &str = "sk_live_sandboxtestkey0123456789";
const SESSION: &str = "dash_session_0123456789";

struct Sandbox {
    sim: CloudApiSimHandle,
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
    fn data(&self) -> Vec<Value> {
        self.json()["data"]
            .as_array()
            .unwrap_or_else(|| panic!("no data: {}", self.text))
            .clone()
    }
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    }
    /// The status, and the error body of `dialect` with `code` when `code` is not empty.
    #[track_caller]
    fn expect(&self, status: u16, dialect: Dialect, code: &str) -> &Self {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        if !code.is_empty() {
            let v = self.json();
            assert_eq!(v["code"], code, "{}", self.text);
            assert!(v["message"].is_string(), "{}", self.text);
            match dialect {
                Dialect::Cloudapi => {
                    assert_eq!(v["status"], status, "{}", self.text);
                    assert!(
                        v["request_id"].as_str().unwrap().starts_with("req_"),
                        "{}",
                        self.text
                    );
                    assert!(v.get("details").is_none(), "{}", self.text);
                }
                Dialect::Cloudplatform => {
                    assert!(v["details"].is_object(), "{}", self.text);
                    assert!(
                        v.get("status").is_none() && v.get("request_id").is_none(),
                        "{}",
                        self.text
                    );
                }
            }
        }
        self
    }
}

fn config(dialect: Dialect) -> CloudApiSimConfig {
    let mut c = CloudApiSimConfig::for_tests(dialect, &[KEY]);
    c.session_tokens.push(SESSION.into());
    c
}

impl Sandbox {
    async fn new(config: CloudApiSimConfig) -> Self {
        let sim = start(config, "127.0.0.1:0".parse().unwrap()).await.unwrap();
        Self {
            sim,
            http: reqwest::Client::new(),
        }
    }

    async fn of(dialect: Dialect) -> Self {
        Self::new(config(dialect)).await
    }

    fn dialect(&self) -> Dialect {
        self.sim.stats().dialect
    }

    /// A `/_sim` endpoint's JSON.
    async fn control(&self, path: &str) -> Value {
        let url = format!("{}{path}", self.sim.root_url());
        self.http
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        cred: Option<&str>,
        body: Option<Value>,
        idem: Option<&str>,
    ) -> Resp {
        let mut rb = self
            .http
            .request(method, format!("{}{path}", self.sim.root_url()));
        if let Some(k) = cred {
            rb = rb.bearer_auth(k);
        }
        if let Some(i) = idem {
            rb = rb.header("Idempotency-Key", i);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.unwrap();
        Resp {
            status: r.status(),
            headers: r.headers().clone(),
            text: r.text().await.unwrap(),
        }
    }

    async fn get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, Some(KEY), None, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Resp {
        self.send(Method::POST, path, Some(KEY), Some(body), None)
            .await
    }

    async fn create_project(&self, name: &str) -> String {
        let body = match self.dialect() {
            Dialect::Cloudapi => json!({"name": name, "region": "us-east-1"}),
            Dialect::Cloudplatform => json!({"name": name}),
        };
        let r = self.post("/v1/projects", body).await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.json()["id"].as_str().unwrap().to_string()
    }

    async fn deploy(&self, project: &str, commit: &str) -> String {
        let r = self
            .post(
                "/v1/deployments",
                json!({"project_id": project, "commit": commit}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.json()["status"], "queued", "{}", r.text);
        r.json()["id"].as_str().unwrap().to_string()
    }

    /// Waits (up to 5 s) until deployment `id` of `project` has a final status, as the list
    /// shows it.
    async fn settled(&self, project: &str, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let list = self
                .get(&format!("/v1/deployments?project_id={project}"))
                .await;
            let d = list
                .data()
                .into_iter()
                .find(|d| d["id"] == id)
                .unwrap_or_else(|| panic!("{id} not listed: {}", list.text));
            let status = d["status"].as_str().unwrap();
            if status == "succeeded" || status == "failed" {
                return d;
            }
            assert!(Instant::now() < deadline, "{id} never settled: {d}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// A key for `project`, made with the session token.
    async fn issue_key(&self, project: &str) -> (String, String) {
        let r = self
            .send(
                Method::POST,
                "/v1/keys",
                Some(SESSION),
                Some(json!({"project_id": project})),
                None,
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let v = r.json();
        (
            v["id"].as_str().unwrap().to_string(),
            v["key"].as_str().unwrap().to_string(),
        )
    }
}

/// Fixed clock minutes count `cloudapi`'s budget: start a burst well inside one.
async fn inside_one_minute() {
    let s = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let into = s.as_secs_f64() % 60.0;
    if into > 50.0 {
        tokio::time::sleep(Duration::from_secs_f64(60.5 - into)).await;
    }
}

#[tokio::test]
async fn cloudapi_lists_come_in_cursor_pages_that_see_every_project_once() {
    let s = Sandbox::of(Dialect::Cloudapi).await;
    let mut made = Vec::new();
    for i in 0..5 {
        made.push(s.create_project(&format!("p{i}")).await);
    }
    let mut seen = Vec::new();
    let mut path = "/v1/projects?limit=2".to_string();
    let mut pages = 0;
    loop {
        let r = s.get(&path).await;
        r.expect(200, Dialect::Cloudapi, "");
        let v = r.json();
        pages += 1;
        seen.extend(
            r.data()
                .iter()
                .map(|p| p["id"].as_str().unwrap().to_string()),
        );
        if !v["has_more"].as_bool().unwrap() {
            assert!(v["next_cursor"].is_null(), "{v}");
            break;
        }
        path = format!(
            "/v1/projects?limit=2&cursor={}",
            v["next_cursor"].as_str().unwrap()
        );
    }
    assert_eq!((seen, pages), (made, 3));
    s.get("/v1/projects?limit=101")
        .await
        .expect(422, Dialect::Cloudapi, "VALIDATION_ERROR");
    s.get("/v1/projects?cursor=bogus")
        .await
        .expect(422, Dialect::Cloudapi, "VALIDATION_ERROR");
}

#[tokio::test]
async fn a_cloudapi_project_is_the_object_itself_with_its_region_and_status() {
    let s = Sandbox::of(Dialect::Cloudapi).await;
    let r = s
        .post(
            "/v1/projects",
            json!({"name": "acme-prod", "region": "us-east-1"}),
        )
        .await;
    r.expect(201, Dialect::Cloudapi, "");
    let p = r.json();
    assert!(p["id"].as_str().unwrap().starts_with("proj_"), "{p}");
    assert_eq!(
        (&p["name"], &p["region"], &p["status"]),
        (&json!("acme-prod"), &json!("us-east-1"), &json!("active"))
    );
    assert!(p["created_at"].as_str().unwrap().ends_with('Z'), "{p}");
    assert!(p.get("data").is_none());
    let got = s
        .get(&format!("/v1/projects/{}", p["id"].as_str().unwrap()))
        .await;
    assert_eq!(got.json(), p);
    s.post("/v1/projects", json!({"name": "no-region"}))
        .await
        .expect(422, Dialect::Cloudapi, "VALIDATION_ERROR");
}

#[tokio::test]
async fn cloudplatform_lists_are_whole_with_a_request_id_and_projects_have_no_region() {
    let s = Sandbox::of(Dialect::Cloudplatform).await;
    for i in 0..3 {
        s.create_project(&format!("p{i}")).await;
    }
    let r = s.get("/v1/projects?limit=1").await;
    let v = r.json();
    assert_eq!(r.data().len(), 3, "no paging: {v}");
    assert!(
        v["meta"]["requestId"].as_str().unwrap().starts_with("req_"),
        "{v}"
    );
    assert!(
        v.get("next_cursor").is_none() && v.get("has_more").is_none(),
        "{v}"
    );
    let p = &r.data()[0];
    assert!(p["id"].as_str().unwrap().starts_with("prj_"), "{p}");
    assert!(
        p.get("region").is_none() && p.get("status").is_none(),
        "{p}"
    );
    assert!(p["created_at"].is_string());
}

#[tokio::test]
async fn errors_and_missing_keys_have_each_dialects_body() {
    for d in [Dialect::Cloudapi, Dialect::Cloudplatform] {
        let s = Sandbox::of(d).await;
        s.get("/v1/projects/proj_nope")
            .await
            .expect(404, d, "NOT_FOUND");
        s.send(Method::GET, "/v1/projects", None, None, None)
            .await
            .expect(401, d, "UNAUTHORIZED");
        s.send(
            Method::GET,
            "/v1/projects",
            Some("sk_live_unknown"),
            None,
            None,
        )
        .await
        .expect(401, d, "UNAUTHORIZED");
        // No GET by id and no DELETE for deployments.
        s.get("/v1/deployments/dep_1")
            .await
            .expect(404, d, "NOT_FOUND");
        let r = s
            .send(Method::POST, "/v1/projects", Some(KEY), None, None)
            .await;
        r.expect(400, d, "BAD_REQUEST");
    }
}

#[tokio::test]
async fn only_a_session_token_creates_keys_and_a_session_token_is_no_api_key() {
    for d in [Dialect::Cloudapi, Dialect::Cloudplatform] {
        let s = Sandbox::of(d).await;
        let p = s.create_project("keys").await;
        s.post("/v1/keys", json!({"project_id": p}))
            .await
            .expect(403, d, "FORBIDDEN");
        s.send(Method::GET, "/v1/projects", Some(SESSION), None, None)
            .await
            .expect(401, d, "UNAUTHORIZED");
        let r = s
            .send(
                Method::POST,
                "/v1/keys",
                Some(SESSION),
                Some(json!({"project_id": p})),
                None,
            )
            .await;
        r.expect(201, d, "");
        let v = r.json();
        let key = v["key"].as_str().unwrap();
        assert!(
            key.starts_with("sk_live_") && v["id"].as_str().unwrap().starts_with("key_"),
            "{v}"
        );
        assert_eq!(v["project_id"], p.as_str());
        assert!(v["created_at"].is_string());
        // The key is an API key of the sandbox now, and sees the project.
        let listed = s
            .send(Method::GET, "/v1/projects", Some(key), None, None)
            .await;
        assert_eq!(listed.data()[0]["id"], p.as_str(), "{}", listed.text);
        // Nothing shows the value again.
        let control = reqwest::get(format!("{}/_sim/keys", s.sim.root_url()))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            !control.contains(key) && control.contains(&key_fingerprint(key)),
            "{control}"
        );
        assert_eq!(s.sim.keys().len(), 1);
        assert_eq!(s.sim.creates().keys, 1);
    }
}

#[tokio::test]
async fn a_revoked_key_stops_working_at_once_and_stays_revoked() {
    let s = Sandbox::of(Dialect::Cloudapi).await;
    let p = s.create_project("revoke").await;
    let (id, key) = s.issue_key(&p).await;
    assert_eq!(
        s.send(Method::GET, "/v1/usage", Some(&key), None, None)
            .await
            .status,
        200
    );
    let r = s
        .send(
            Method::DELETE,
            &format!("/v1/keys/{id}"),
            Some(KEY),
            None,
            None,
        )
        .await;
    assert_eq!(r.json(), json!({"id": id, "revoked": true}), "{}", r.text);
    s.send(Method::GET, "/v1/usage", Some(&key), None, None)
        .await
        .expect(401, Dialect::Cloudapi, "UNAUTHORIZED");
    assert!(s.sim.keys()[0].revoked);
    s.send(Method::DELETE, "/v1/keys/key_nope", Some(KEY), None, None)
        .await
        .expect(404, Dialect::Cloudapi, "NOT_FOUND");
}

#[tokio::test]
async fn a_cloudapi_project_can_be_renamed_but_its_region_is_fixed() {
    let s = Sandbox::of(Dialect::Cloudapi).await;
    let p = s.create_project("before").await;
    let path = format!("/v1/projects/{p}");
    let r = s
        .send(
            Method::PATCH,
            &path,
            Some(KEY),
            Some(json!({"name": "after"})),
            None,
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), &r.json()["name"]),
        (200, &json!("after"))
    );
    let same = s
        .send(
            Method::PATCH,
            &path,
            Some(KEY),
            Some(json!({"region": "us-east-1"})),
            None,
        )
        .await;
    assert_eq!(same.status, 200, "{}", same.text);
    s.send(
        Method::PATCH,
        &path,
        Some(KEY),
        Some(json!({"region": "eu-west-1"})),
        None,
    )
    .await
    .expect(422, Dialect::Cloudapi, "VALIDATION_ERROR");
    assert_eq!(
        s.sim.project(&p).unwrap().region.as_deref(),
        Some("us-east-1")
    );
    let del = s.send(Method::DELETE, &path, Some(KEY), None, None).await;
    assert_eq!(del.json(), json!({"deleted": true, "id": p}));
    s.get(&path)
        .await
        .expect(404, Dialect::Cloudapi, "NOT_FOUND");
}

#[tokio::test]
async fn deleting_a_cloudplatform_project_revokes_its_keys_and_removes_its_deployments() {
    let s = Sandbox::of(Dialect::Cloudplatform).await;
    let p = s.create_project("gamma").await;
    let keep = s.create_project("kept").await;
    let (_, key) = s.issue_key(&p).await;
    let (_, other) = s.issue_key(&keep).await;
    s.deploy(&p, "a1b2c3d").await;
    let r = s
        .send(
            Method::DELETE,
            &format!("/v1/projects/{p}"),
            Some(KEY),
            None,
            None,
        )
        .await;
    assert_eq!(r.json(), json!({"deleted": true, "id": p}), "{}", r.text);
    s.send(Method::GET, "/v1/projects", Some(&key), None, None)
        .await
        .expect(401, Dialect::Cloudplatform, "UNAUTHORIZED");
    assert_eq!(
        s.send(Method::GET, "/v1/projects", Some(&other), None, None)
            .await
            .status,
        200,
        "another project's key still works"
    );
    assert!(
        s.get(&format!("/v1/deployments?project_id={p}"))
            .await
            .data()
            .is_empty()
    );
    assert!(
        s.get(&format!("/v1/logs?project_id={p}"))
            .await
            .data()
            .is_empty()
    );
    let keys = s.sim.keys();
    assert!(keys.iter().find(|k| k.project_id == p).unwrap().revoked);
    assert!(!keys.iter().find(|k| k.project_id == keep).unwrap().revoked);
}

#[tokio::test]
async fn cloudplatform_keys_see_only_their_workspaces_projects() {
    let mut c = config(Dialect::Cloudplatform);
    c.workspace_keys
        .push(parse_workspace_key("acme=acme-key").unwrap());
    let s = Sandbox::new(c).await;
    let mine = s.create_project("default-ws").await;
    let theirs = s
        .send(
            Method::POST,
            "/v1/projects",
            Some("acme-key"),
            Some(json!({"name": "acme"})),
            None,
        )
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let listed = s.get("/v1/projects").await.data();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], mine.as_str());
    s.get(&format!("/v1/projects/{theirs}"))
        .await
        .expect(404, Dialect::Cloudplatform, "NOT_FOUND");
    assert_eq!(s.sim.project(&theirs).unwrap().workspace, "acme");
}

#[tokio::test]
async fn a_deployment_is_queued_then_builds_and_succeeds_and_becomes_current() {
    for d in [Dialect::Cloudapi, Dialect::Cloudplatform] {
        // Long enough that the list right after the create surely sees the build unfinished.
        let mut c = config(d);
        c.build_time = Duration::from_millis(800);
        let s = Sandbox::new(c).await;
        let p = s.create_project("web").await;
        let id = s.deploy(&p, "a1b2c3d").await;
        let first = s
            .get(&format!("/v1/deployments?project_id={p}"))
            .await
            .data();
        assert_ne!(first[0]["status"], "succeeded", "a build takes time");
        assert_eq!(first[0]["current"], false);
        let done = s.settled(&p, &id).await;
        assert_eq!(
            (&done["status"], &done["current"], &done["commit"]),
            (&json!("succeeded"), &json!(true), &json!("a1b2c3d"))
        );
        assert_eq!(s.sim.current_deployment(&p).unwrap().id, id);
        assert_eq!(s.sim.builds(), 1);
    }
}

#[tokio::test]
async fn a_fail_commit_fails_its_build_with_an_error_line_naming_the_cause() {
    let s = Sandbox::of(Dialect::Cloudapi).await;
    let p = s.create_project("web").await;
    let good = s.deploy(&p, "good1").await;
    s.settled(&p, &good).await;
    let bad = s.deploy(&p, "fail-typo").await;
    let done = s.settled(&p, &bad).await;
    assert_eq!(
        (&done["status"], &done["current"]),
        (&json!("failed"), &json!(false))
    );
    assert_eq!(
        s.sim.current_deployment(&p).unwrap().id,
        good,
        "the live release stays"
    );
    let errors = s
        .get(&format!("/v1/logs?deployment_id={bad}&level=error"))
        .await
        .data();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let msg = errors[0]["message"].as_str().unwrap();
    assert!(msg.contains("fail-typo") && msg.contains("fail-"), "{msg}");
    assert_eq!(errors[0]["level"], "error");
    // A commit the sandbox is told to fail fails too.
    s.sim.fail_commit("abc123");
    let told = s.deploy(&p, "abc123").await;
    let done = s.settled(&p, &told).await;
    assert_eq!(done["status"], "failed");
    let line = &s
        .get(&format!("/v1/logs?deployment_id={told}&level=error"))
        .await
        .data()[0];
    assert!(
        line["message"].as_str().unwrap().contains("told to fail"),
        "{line}"
    );
}

#[tokio::test]
async fn a_rollback_makes_the_previous_release_current_without_a_rebuild() {
    for d in [Dialect::Cloudapi, Dialect::Cloudplatform] {
        let s = Sandbox::of(d).await;
        let p = s.create_project("web").await;
        let v1 = s.deploy(&p, "v1").await;
        s.settled(&p, &v1).await;
        let v2 = s.deploy(&p, "v2").await;
        s.settled(&p, &v2).await;
        assert_eq!(s.sim.builds(), 2);
        let r = s
            .send(
                Method::POST,
                &format!("/v1/deployments/{v2}/rollback"),
                Some(KEY),
                None,
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(
            (&r.json()["id"], &r.json()["current"]),
            (&json!(v1), &json!(true))
        );
        assert_eq!(s.sim.builds(), 2, "no rebuild");
        let list = s
            .get(&format!("/v1/deployments?project_id={p}"))
            .await
            .data();
        assert_eq!(list.len(), 2, "no new deployment");
        let current: Vec<_> = list.iter().filter(|d| d["current"] == true).collect();
        assert_eq!((current.len(), &current[0]["id"]), (1, &json!(v1)));
        s.send(
            Method::POST,
            &format!("/v1/deployments/{v1}/rollback"),
            Some(KEY),
            None,
            None,
        )
        .await
        .expect(409, d, "CONFLICT");
    }
}

#[tokio::test]
async fn deployments_list_newest_first_and_filter_by_project_status_and_creation_time() {
    let s = Sandbox::of(Dialect::Cloudapi).await;
    let a = s.create_project("a").await;
    let b = s.create_project("b").await;
    let a1 = s.deploy(&a, "a1").await;
    let bad = s.deploy(&a, "fail-a2").await;
    s.settled(&a, &a1).await;
    s.settled(&a, &bad).await;
    let cut = jiff::Timestamp::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let b1 = s.deploy(&b, "b1").await;
    let all = s.get("/v1/deployments").await.data();
    let ids: Vec<_> = all.iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [b1.as_str(), bad.as_str(), a1.as_str()],
        "newest first"
    );
    let of_a = s
        .get(&format!("/v1/deployments?project_id={a}"))
        .await
        .data();
    assert_eq!(of_a.len(), 2);
    let failed = s.get("/v1/deployments?status=failed").await.data();
    assert_eq!((failed.len(), &failed[0]["id"]), (1, &json!(bad)));
    let later = s
        .get(&format!("/v1/deployments?created_after={}", cut))
        .await
        .data();
    assert_eq!(
        later.iter().map(|d| d["id"].clone()).collect::<Vec<_>>(),
        [json!(b1)]
    );
    let paged = s.get("/v1/deployments?limit=2").await;
    assert_eq!(
        (paged.data().len(), &paged.json()["has_more"]),
        (2, &json!(true))
    );
    s.get("/v1/deployments?status=done")
        .await
        .expect(422, Dialect::Cloudapi, "VALIDATION_ERROR");
    assert_eq!(
        DeploymentStatus::parse("failed"),
        Some(DeploymentStatus::Failed)
    );
}

#[tokio::test]
async fn logs_are_structured_lines_filtered_by_deployment_level_and_time() {
    let s = Sandbox::of(Dialect::Cloudplatform).await;
    let p = s.create_project("logs").await;
    let id = s.deploy(&p, "c0ffee").await;
    s.settled(&p, &id).await;
    let lines = s.get(&format!("/v1/logs?project_id={p}")).await.data();
    assert!(lines.len() >= 4, "{lines:?}");
    for l in &lines {
        assert!(
            l["id"].is_string() && l["timestamp"].is_string() && l["message"].is_string(),
            "{l}"
        );
        assert_eq!(l["project_id"], p.as_str());
    }
    assert!(
        lines
            .iter()
            .any(|l| l["message"].as_str().unwrap().contains("succeeded"))
    );
    let info = s
        .get(&format!("/v1/logs?deployment_id={id}&level=info"))
        .await
        .data();
    assert!(info.iter().all(|l| l["level"] != "debug") && info.len() < lines.len());
    let none = s
        .get(&format!("/v1/logs?project_id={p}&until=2020-01-01"))
        .await
        .data();
    assert!(none.is_empty());
    let all_since = s
        .get(&format!("/v1/logs?project_id={p}&since=2020-01-01"))
        .await
        .data();
    assert_eq!(all_since.len(), lines.len());
    s.get("/v1/logs?level=loud")
        .await
        .expect(422, Dialect::Cloudplatform, "VALIDATION_ERROR");
}

#[tokio::test]
async fn the_log_stream_sends_build_lines_as_server_sent_events_as_they_happen() {
    let s = Sandbox::of(Dialect::Cloudapi).await;
    let p = s.create_project("tail").await;
    let mut resp = s
        .http
        .get(format!(
            "{}/v1/logs/stream?project_id={p}",
            s.sim.root_url()
        ))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("text/event-stream"), "{ct}");
    let id = s.deploy(&p, "live1").await;
    let mut text = String::new();
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        while !text.contains("is live") {
            let chunk = resp.chunk().await.unwrap().expect("the stream stays open");
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await;
    assert!(read.is_ok(), "no build lines in time: {text}");
    let events: Vec<Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| serde_json::from_str(d.trim()).unwrap())
        .collect();
    assert!(events.len() >= 4, "{text}");
    assert!(
        text.contains("event: log") && text.contains("id: log_"),
        "{text}"
    );
    assert!(
        events.iter().all(|e| e["deployment_id"] == id.as_str()),
        "{text}"
    );
    assert!(
        events[0]["message"].as_str().unwrap().contains("queued"),
        "{text}"
    );
}

#[tokio::test]
async fn a_token_is_shown_once_listed_without_its_value_and_deleted() {
    for d in [Dialect::Cloudapi, Dialect::Cloudplatform] {
        let s = Sandbox::of(d).await;
        let r = s
            .post(
                "/v1/tokens",
                json!({"name": "ci-token", "scopes": ["users:read", "usage:read"]}),
            )
            .await;
        r.expect(201, d, "");
        let t = r.json();
        let (id, value) = (t["id"].as_str().unwrap(), t["token"].as_str().unwrap());
        assert!(id.starts_with("tok_") && value.starts_with("cap_"), "{t}");
        assert_eq!(t["scopes"], json!(["users:read", "usage:read"]));
        let listed = s.get("/v1/tokens").await;
        assert!(!listed.text.contains(value), "{}", listed.text);
        assert_eq!(listed.data()[0]["name"], "ci-token");
        s.post(
            "/v1/tokens",
            json!({"name": "x", "scopes": ["users:read", "root:all"]}),
        )
        .await
        .expect(422, d, "VALIDATION_ERROR");
        let del = s
            .send(
                Method::DELETE,
                &format!("/v1/tokens/{id}"),
                Some(KEY),
                None,
                None,
            )
            .await;
        assert_eq!(del.json(), json!({"id": id, "revoked": true}));
        assert!(s.get("/v1/tokens").await.data().is_empty());
        s.send(
            Method::DELETE,
            &format!("/v1/tokens/{id}"),
            Some(KEY),
            None,
            None,
        )
        .await
        .expect(404, d, "NOT_FOUND");
        assert_eq!(s.sim.creates().tokens, 1);
    }
}

#[tokio::test]
async fn an_idempotent_retry_gets_the_same_answer_and_creates_nothing_more() {
    for d in [Dialect::Cloudapi, Dialect::Cloudplatform] {
        let s = Sandbox::of(d).await;
        let body = match d {
            Dialect::Cloudapi => json!({"name": "once", "region": "us-east-1"}),
            Dialect::Cloudplatform => json!({"name": "once"}),
        };
        let first = s
            .send(
                Method::POST,
                "/v1/projects",
                Some(KEY),
                Some(body.clone()),
                Some("idem-1"),
            )
            .await;
        let again = s
            .send(
                Method::POST,
                "/v1/projects",
                Some(KEY),
                Some(body.clone()),
                Some("idem-1"),
            )
            .await;
        assert_eq!(
            (first.status, again.status),
            (StatusCode::CREATED, StatusCode::CREATED)
        );
        assert_eq!(first.json(), again.json());
        assert_eq!(again.header("idempotent-replayed").as_deref(), Some("true"));
        assert_eq!((s.sim.creates().projects, s.sim.projects().len()), (1, 1));
        s.send(
            Method::POST,
            "/v1/projects",
            Some(KEY),
            Some(json!({"name": "other"})),
            Some("idem-1"),
        )
        .await
        .expect(422, d, "IDEMPOTENCY_KEY_REUSED");
        // Forgotten keys (as after the platform's retention) create again.
        s.sim.forget_idempotency_keys();
        s.send(
            Method::POST,
            "/v1/projects",
            Some(KEY),
            Some(body),
            Some("idem-1"),
        )
        .await;
        assert_eq!(s.sim.creates().projects, 2);
    }
}

#[tokio::test]
async fn cloudapi_limits_each_key_per_minute_with_its_headers_and_a_429() {
    let mut c = config(Dialect::Cloudapi);
    c.per_key_per_minute = Some(3);
    c.api_keys.push("second-key".into());
    let s = Sandbox::new(c).await;
    inside_one_minute().await;
    for left in [2, 1, 0] {
        let r = s.get("/v1/users").await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.header("x-ratelimit-limit").as_deref(), Some("3"));
        assert_eq!(r.header("x-ratelimit-remaining"), Some(left.to_string()));
        let reset: u64 = r.header("x-ratelimit-reset").unwrap().parse().unwrap();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(
            reset > now && reset <= now + 60 && reset.is_multiple_of(60),
            "{reset} vs {now}"
        );
    }
    let r = s.get("/v1/users").await;
    r.expect(429, Dialect::Cloudapi, "RATE_LIMITED");
    assert_eq!(r.header("x-ratelimit-remaining").as_deref(), Some("0"));
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let other = s
        .send(Method::GET, "/v1/users", Some("second-key"), None, None)
        .await;
    assert_eq!(other.status, 200, "the limit is per key");
    assert_eq!(s.sim.max_in_window().per_key_per_minute, 3);
    assert_eq!(s.sim.served_429().per_key, 1);
    let stats = s.sim.stats();
    assert_eq!(stats.keys[&key_fingerprint(KEY)].served_429, 1);
    assert_eq!(stats.max_in_window.per_key_per_minute, 3);
}

#[tokio::test]
async fn cloudplatform_limits_each_key_and_the_workspace_at_once() {
    let mut c = config(Dialect::Cloudplatform);
    c.per_key_per_minute = Some(3);
    c.per_workspace_per_ten_minutes = Some(5);
    c.api_keys.push("same-workspace".into());
    c.workspace_keys
        .push(parse_workspace_key("acme=acme-key").unwrap());
    let s = Sandbox::new(c).await;
    for _ in 0..3 {
        assert_eq!(s.get("/v1/usage").await.status, 200);
    }
    let r = s.get("/v1/usage").await;
    r.expect(429, Dialect::Cloudplatform, "RATE_LIMITED");
    assert!(r.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
    let details = &r.json()["details"];
    assert_eq!(
        (
            &details["scope"],
            &details["limit"],
            &details["window_seconds"]
        ),
        (&json!("key"), &json!(3), &json!(60)),
        "{}",
        r.text
    );
    assert!(
        r.header("x-ratelimit-limit").is_none(),
        "cloudplatform documents no headers"
    );
    for _ in 0..2 {
        let r = s
            .send(Method::GET, "/v1/usage", Some("same-workspace"), None, None)
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let r = s
        .send(Method::GET, "/v1/usage", Some("same-workspace"), None, None)
        .await;
    r.expect(429, Dialect::Cloudplatform, "RATE_LIMITED");
    assert!(
        r.json()["message"].as_str().unwrap().contains("workspace"),
        "{}",
        r.text
    );
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!(retry > 60, "the workspace's window is 10 minutes: {retry}");
    let details = &r.json()["details"];
    assert_eq!(
        (
            &details["scope"],
            &details["limit"],
            &details["window_seconds"]
        ),
        (&json!("workspace"), &json!(5), &json!(600)),
        "{}",
        r.text
    );
    let acme = s
        .send(Method::GET, "/v1/usage", Some("acme-key"), None, None)
        .await;
    assert_eq!(acme.status, 200, "another workspace has its own budget");
    let m = s.sim.max_in_window();
    assert_eq!(
        (m.per_key_per_minute, m.per_workspace_per_ten_minutes),
        (3, 5)
    );
    let served = s.sim.served_429();
    assert_eq!((served.per_key, served.per_workspace), (1, 1));
    assert_eq!(s.sim.workspace_request_times("default").len(), 5);
}

#[tokio::test]
async fn usage_counts_the_requests_served_in_each_dialects_shape() {
    for d in [Dialect::Cloudapi, Dialect::Cloudplatform] {
        let s = Sandbox::of(d).await;
        s.create_project("u").await;
        s.get("/v1/users").await;
        s.send(Method::GET, "/v1/usage", None, None, None).await; // 401: not served
        let u = s.get("/v1/usage").await.json();
        assert_eq!(u["requests"], 3, "{u}");
        match d {
            Dialect::Cloudapi => {
                assert_eq!(u["overage"], 0);
                assert!(u["period_start"].as_str().unwrap().ends_with("-01"), "{u}");
                assert!(u["period_end"].is_string());
            }
            Dialect::Cloudplatform => {
                assert_eq!(u["projects"], 1);
                assert_eq!(u["month"].as_str().unwrap().len(), 7, "{u}");
            }
        }
        assert_eq!(s.sim.usage("default"), 3);
    }
}

#[tokio::test]
async fn users_are_seeded_and_read_only() {
    let s = Sandbox::of(Dialect::Cloudapi).await;
    let r = s.get("/v1/users?limit=2").await;
    let users = r.data();
    assert_eq!(
        users[0],
        json!({"id": "usr_8f2", "email": "admin@cloudapi.invalid", "role": "admin"})
    );
    assert_eq!((users.len(), &r.json()["has_more"]), (2, &json!(true)));
    s.post("/v1/users", json!({"email": "x@y.z"})).await.expect(
        405,
        Dialect::Cloudapi,
        "METHOD_NOT_ALLOWED",
    );
}

#[tokio::test]
async fn the_state_file_keeps_projects_deployments_and_issued_keys_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(Dialect::Cloudapi);
    c.state_file = Some(dir.path().join("cloudapi.json"));
    let s = Sandbox::new(c.clone()).await;
    let p = s.create_project("kept").await;
    let d = s.deploy(&p, "k1").await;
    s.settled(&p, &d).await;
    // Created with an Idempotency-Key: a retry gets the same key, and nothing is created twice.
    let body = json!({"project_id": p});
    let send = || {
        s.send(
            Method::POST,
            "/v1/keys",
            Some(SESSION),
            Some(body.clone()),
            Some("k-1"),
        )
    };
    let (first, again) = (send().await, send().await);
    assert_eq!((first.status.as_u16(), first.json()), (201, again.json()));
    assert_eq!(s.sim.creates().keys, 1);
    let key = first.json()["key"].as_str().unwrap().to_string();
    s.sim.shutdown().await;
    let saved = std::fs::read_to_string(dir.path().join("cloudapi.json")).unwrap();
    assert!(
        !saved.contains(&key),
        "the state keeps no key value, not even a replay's"
    );

    let s = Sandbox::new(c).await;
    let back = s
        .send(
            Method::GET,
            &format!("/v1/projects/{p}"),
            Some(&key),
            None,
            None,
        )
        .await;
    assert_eq!(back.json()["name"], "kept", "{}", back.text);
    assert_eq!(s.sim.current_deployment(&p).unwrap().id, d);
    assert!(
        !s.get(&format!("/v1/logs?project_id={p}"))
            .await
            .data()
            .is_empty()
    );
}

#[tokio::test]
async fn control_endpoints_show_builds_creates_and_settings_and_change_the_build_time() {
    let s = Sandbox::of(Dialect::Cloudplatform).await;
    let root = s.sim.root_url();
    let http = &s.http;
    let r = http
        .post(format!("{root}/_sim/settings"))
        .json(&json!({"buildSeconds": 0.05, "perKeyPerMinute": 0}))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (&v["buildSeconds"], &v["budgets"]["perKeyPerMinute"]),
        (&json!(0.05), &json!(0))
    );
    let p = s.create_project("ctl").await;
    http.post(format!("{root}/_sim/fail-commit"))
        .json(&json!({"commit": "zzz"}))
        .send()
        .await
        .unwrap();
    let d = s.deploy(&p, "zzz").await;
    assert_eq!(s.settled(&p, &d).await["status"], "failed");
    assert_eq!(s.control("/_sim/builds").await["builds"], 1);
    assert_eq!(s.control("/_sim/creates").await["deployments"], 1);
    assert_eq!(s.control("/_sim/projects").await[0]["workspace"], "default");
    let stats = s.control("/_sim/stats").await;
    assert_eq!(
        (&stats["dialect"], &stats["builds"], &stats["projects"]),
        (&json!("cloudplatform"), &json!(1), &json!(1))
    );
    assert!(
        stats["maxInWindow"]["perKeyPerMinute"].as_u64().unwrap() >= 2,
        "{stats}"
    );
    let bad = http
        .post(format!("{root}/_sim/settings"))
        .json(&json!({"buildSeconds": -1}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    let body: Value = bad.json().await.unwrap();
    assert!(body["details"].is_object(), "{body}");
}

#[tokio::test]
async fn an_injected_fault_answers_500_in_the_dialects_body_and_applies_nothing() {
    for d in [Dialect::Cloudapi, Dialect::Cloudplatform] {
        let mut c = config(d);
        c.faults.error_rate = 1.0;
        let s = Sandbox::new(c).await;
        s.post("/v1/projects", json!({"name": "x", "region": "us-east-1"}))
            .await
            .expect(500, d, "INTERNAL_ERROR");
        assert!(s.sim.projects().is_empty());
        assert_eq!(s.sim.creates().projects, 0);
    }
}

#[tokio::test]
async fn a_created_key_counts_in_its_projects_workspace_budget() {
    let mut c = config(Dialect::Cloudplatform);
    c.per_workspace_per_ten_minutes = Some(3);
    c.workspace_keys
        .push(parse_workspace_key("acme=acme-key").unwrap());
    let s = Sandbox::new(c).await;
    let acme = |path: &'static str, body: Option<Value>| {
        let method = if body.is_some() {
            Method::POST
        } else {
            Method::GET
        };
        s.send(method, path, Some("acme-key"), body, None)
    };
    let p = acme("/v1/projects", Some(json!({"name": "acme-app"})))
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, key) = s.issue_key(&p).await;
    // The new key sees acme's project, not the default workspace's.
    let listed = s
        .send(Method::GET, "/v1/projects", Some(&key), None, None)
        .await;
    assert_eq!(listed.data()[0]["id"], p.as_str(), "{}", listed.text);
    // acme has used 2 of its 3 (the session token's request counts in no workspace).
    assert_eq!(acme("/v1/usage", None).await.status, 200);
    let r = s
        .send(Method::GET, "/v1/usage", Some(&key), None, None)
        .await;
    r.expect(429, Dialect::Cloudplatform, "RATE_LIMITED");
    assert_eq!(
        s.get("/v1/usage").await.status,
        200,
        "the default workspace is untouched"
    );
    assert_eq!(s.sim.max_in_window().per_workspace_per_ten_minutes, 3);
}

#[tokio::test]
async fn a_reconnecting_log_stream_resumes_after_its_last_event_id() {
    let s = Sandbox::of(Dialect::Cloudplatform).await;
    let p = s.create_project("resume").await;
    let id = s.deploy(&p, "r1").await;
    s.settled(&p, &id).await;
    let lines = s.get(&format!("/v1/logs?project_id={p}")).await.data();
    let last_seen = lines[1]["id"].as_str().unwrap().to_string();
    let mut resp = s
        .http
        .get(format!(
            "{}/v1/logs/stream?project_id={p}",
            s.sim.root_url()
        ))
        .bearer_auth(KEY)
        .header("Last-Event-ID", &last_seen)
        .send()
        .await
        .unwrap();
    let mut text = String::new();
    let want = format!("id: {}", lines.last().unwrap()["id"].as_str().unwrap());
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        while !text.contains(&want) {
            let chunk = resp.chunk().await.unwrap().expect("the stream stays open");
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await;
    assert!(read.is_ok(), "no resumed lines: {text}");
    let ids: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("id:"))
        .map(str::trim)
        .collect();
    let expected: Vec<&str> = lines[2..]
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, expected, "exactly the lines after the last one seen");
}
