//! The Strettch sandbox over real HTTP: every test starts its own `stratus sim` on a free port
//! and talks to it with reqwest.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use stratus::providers::strettch::sim::key_fingerprint as fingerprint;
use stratus::providers::strettch::sim::wire::{
    Compute, ComputeState, Domain, DomainStatus, Record,
};
use stratus::providers::strettch::sim::{Faults, SimConfig, SimHandle, SimStats, start};

const KEY: &str = "sk-test-alpha";
const KEY2: &str = "sk-test-beta";

struct Sandbox {
    sim: SimHandle,
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
    fn data(&self) -> Value {
        self.json()["data"].clone()
    }
    fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_string()
    }
    fn message(&self) -> String {
        self.json()["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    }
    fn compute(&self) -> Compute {
        serde_json::from_value(self.data()).expect("a compute")
    }
    #[track_caller]
    fn expect(&self, status: u16, code: &str) -> &Self {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        if !code.is_empty() {
            assert_eq!(self.code(), code, "{}", self.text);
            assert_eq!(self.json()["success"], false);
        }
        self
    }
}

fn unlimited() -> SimConfig {
    let mut c = SimConfig::for_tests(&[KEY, KEY2]);
    c.rate_limit = 0;
    c
}

fn new_key() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn compute_body(host: &str) -> Value {
    json!({
        "hostName": host,
        "image": "UBUNTU-24.04",
        "region": "KGL-1",
        "specification": "S-1C-1G",
        "publicKeys": ["ssh-ed25519 AAAAC3Nza test@host"],
        "withPublicIp": true,
        "tags": ["stratus", "team=a"]
    })
}

impl Sandbox {
    async fn new(config: SimConfig) -> Self {
        let sim = start(config, "127.0.0.1:0".parse().unwrap()).await.unwrap();
        Self {
            sim,
            http: reqwest::Client::new(),
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        idem: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Resp, reqwest::Error> {
        let url = if path.starts_with("/_sim") {
            format!("http://{}{path}", self.sim.addr())
        } else {
            format!("{}{path}", self.sim.base_url())
        };
        let mut rb = self.http.request(method, url);
        if let Some(k) = key {
            rb = rb.bearer_auth(k);
        }
        if let Some(i) = idem {
            rb = rb.header("Idempotency-Key", i);
        }
        if let Some(b) = body {
            rb = rb.json(b);
        }
        let r = rb.send().await?;
        let status = r.status();
        let headers = r.headers().clone();
        let text = r.text().await?;
        Ok(Resp {
            status,
            headers,
            text,
        })
    }

    async fn get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, Some(KEY), None, None)
            .await
            .unwrap()
    }

    async fn create(&self, path: &str, idem: &str, body: Value) -> Resp {
        self.send(Method::POST, path, Some(KEY), Some(idem), Some(&body))
            .await
            .unwrap()
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        self.send(method, path, Some(KEY), None, body.as_ref())
            .await
            .unwrap()
    }

    async fn control(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        self.send(method, path, None, None, body.as_ref())
            .await
            .unwrap()
    }

    async fn create_compute(&self, host: &str) -> Compute {
        let r = self
            .create("/computes", &new_key(), compute_body(host))
            .await;
        r.expect(202, "");
        r.compute()
    }

    /// Polls until the compute is in `state` (or gone, for `Destroyed`).
    async fn wait_state(&self, id: &str, state: ComputeState) -> Option<Compute> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let r = self.get(&format!("/computes/{id}")).await;
            if state == ComputeState::Destroyed && r.status == StatusCode::NOT_FOUND {
                return None;
            }
            if r.status == StatusCode::OK && r.compute().state == state {
                return Some(r.compute());
            }
            assert!(
                Instant::now() < deadline,
                "compute {id} never became {state}: {}",
                r.text
            );
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    }
}

fn is_uuid(v: &Value) -> bool {
    v.as_str()
        .and_then(|s| uuid::Uuid::parse_str(s).ok())
        .is_some()
}

fn is_rfc3339(v: &Value) -> bool {
    v.as_str()
        .and_then(|s| s.parse::<jiff::Timestamp>().ok())
        .is_some()
}

// ---- auth, envelope, routing ------------------------------------------------------------------

#[tokio::test]
async fn auth_envelope_and_routing() {
    let s = Sandbox::new(unlimited()).await;

    let health = s
        .send(Method::GET, "/health", None, None, None)
        .await
        .unwrap();
    assert_eq!(health.status, 200);
    let h = health.json();
    assert_eq!(h["success"], true);
    assert_eq!(h["data"]["status"], "ok");
    assert!(is_uuid(&h["requestId"]) && is_rfc3339(&h["timestamp"]));

    for key in [None, Some("wrong-key")] {
        let r = s
            .send(Method::GET, "/computes", key, None, None)
            .await
            .unwrap();
        r.expect(401, "UNAUTHORIZED");
        let e = r.json();
        assert!(is_uuid(&e["requestId"]) && is_rfc3339(&e["timestamp"]));
        assert!(!e["message"].as_str().unwrap().is_empty());
    }
    let r = s
        .http
        .get(format!("{}/computes", s.sim.base_url()))
        .header("Authorization", format!("Basic {KEY}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let r = s.get("/computes").await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["success"], true);
    assert!(v["message"].is_string());
    assert_eq!(v["data"], json!([]));
    assert_eq!(v["meta"], json!({"total": 0, "page": 1, "limit": 20}));
    assert!(is_uuid(&v["requestId"]) && is_rfc3339(&v["timestamp"]));
    let other = s.get("/computes").await.json();
    assert_ne!(
        v["requestId"], other["requestId"],
        "a fresh requestId per request"
    );
    // The second key sees the same team.
    let r2 = s
        .send(Method::GET, "/computes", Some(KEY2), None, None)
        .await
        .unwrap();
    assert_eq!(r2.status, 200);

    s.get("/nope").await.expect(404, "RESOURCE_NOT_FOUND");
    s.call(Method::PUT, "/computes", Some(json!({})))
        .await
        .expect(404, "RESOURCE_NOT_FOUND");
    s.control(Method::GET, "/_sim/nope", None)
        .await
        .expect(404, "RESOURCE_NOT_FOUND");

    let specs = s.get("/computes/specifications").await;
    let specs_v = specs.json();
    let slugs: Vec<&str> = specs_v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["specification"].as_str().unwrap())
        .collect();
    assert_eq!(
        slugs,
        ["S-1C-1G", "S-1C-2G", "S-2C-4G", "S-4C-8G", "S-8C-16G"]
    );
    assert_eq!(specs_v["meta"]["total"], 5);
    assert!(is_uuid(&specs_v["data"][0]["id"]));
    assert!(specs_v["data"][0]["memoryMb"].is_u64());
    let images = s.get("/images").await.data();
    assert!(
        images
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["image"] == "UBUNTU-24.04")
    );
    let regions = s.get("/regions").await.data();
    assert!(
        regions
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["region"] == "KGL-1" && r["name"] == "Kigali-1" && r["countryCode"] == "RW")
    );
    s.get("/computes/12345")
        .await
        .expect(404, "COMPUTE_NOT_FOUND");
    s.get("/computes/not-a-number")
        .await
        .expect(404, "COMPUTE_NOT_FOUND");
    s.sim.shutdown().await;
}

#[tokio::test]
async fn pagination_walks_every_compute_once() {
    let s = Sandbox::new(unlimited()).await;
    let ids = s.sim.seed_computes(200, vec!["seeded".into()]);
    assert_eq!(ids.len(), 200);
    let r = s
        .control(
            Method::POST,
            "/_sim/seed",
            Some(json!({"computes": 50, "tags": ["b"]})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json()["ids"].as_array().unwrap().len(), 50);

    let mut seen = Vec::new();
    for page in 1..=3 {
        let r = s.get(&format!("/computes?page={page}&limit=100")).await;
        let v = r.json();
        assert_eq!(v["meta"], json!({"total": 250, "page": page, "limit": 100}));
        for c in v["data"].as_array().unwrap() {
            assert_eq!(c["state"], "RUNNING");
            seen.push(c["id"].as_str().unwrap().parse::<u64>().unwrap());
        }
    }
    assert_eq!(seen.len(), 250);
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "stable order by numeric id"
    );
    let r = s.get("/computes?page=4&limit=100").await;
    assert_eq!(r.data(), json!([]));
    assert_eq!(r.json()["meta"]["total"], 250);
    assert_eq!(
        s.get("/computes").await.data().as_array().unwrap().len(),
        20
    );

    for bad in ["limit=101", "limit=0", "page=0", "page=abc", "limit=-5"] {
        let r = s.get(&format!("/computes?{bad}")).await;
        r.expect(400, "VALIDATION_ERROR");
        let field = bad.split('=').next().unwrap();
        assert!(r.message().contains(field), "{bad}: {}", r.message());
    }
    let all = s.control(Method::GET, "/_sim/computes", None).await.json();
    assert_eq!(all.as_array().unwrap().len(), 250);
    assert_eq!(s.sim.computes().len(), 250);
    assert_eq!(s.sim.computes()[0].tags, vec!["seeded"]);
}

// ---- computes ---------------------------------------------------------------------------------

#[tokio::test]
async fn create_runs_with_addresses_and_tags() {
    let s = Sandbox::new(unlimited()).await;
    let c = s.create_compute("web-01").await;
    assert_eq!(c.state, ComputeState::Creating);
    assert_eq!(c.id, "1");
    assert!(
        c.ipv4.is_none() && c.private_ipv4.is_none(),
        "no addresses while CREATING"
    );
    assert_eq!(c.tags, vec!["stratus", "team=a"]);
    assert_eq!(c.specification, "S-1C-1G");

    let c = s.wait_state("1", ComputeState::Running).await.unwrap();
    assert!(c.ipv4.as_deref().unwrap().starts_with("195.15."), "{c:?}");
    assert!(
        c.private_ipv4.as_deref().unwrap().starts_with("10."),
        "{c:?}"
    );
    assert_eq!(c.host_name, "web-01");
    assert!(c.updated_at >= c.created_at);

    let mut private_only = compute_body("db");
    private_only["withPublicIp"] = json!(false);
    let r = s.create("/computes", &new_key(), private_only).await;
    assert_eq!(r.compute().id, "2");
    let c = s.wait_state("2", ComputeState::Running).await.unwrap();
    assert!(c.ipv4.is_none() && c.private_ipv4.is_some());

    // The control endpoint moves an address; updatedAt moves too.
    let before = c.updated_at.clone();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let r = s
        .control(
            Method::POST,
            "/_sim/computes/2/address",
            Some(json!({"ipv4": "203.0.113.9"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let c = s.get("/computes/2").await.compute();
    assert_eq!(c.ipv4.as_deref(), Some("203.0.113.9"));
    assert!(c.updated_at > before);
    assert!(
        s.sim
            .set_compute_address("2", None, Some("10.9.9.9".into()))
    );
    assert_eq!(
        s.get("/computes/2").await.compute().private_ipv4.as_deref(),
        Some("10.9.9.9")
    );
    assert!(
        !s.sim
            .set_compute_address("2", Some("not-an-ip".into()), None)
    );
    assert!(
        !s.sim
            .set_compute_address("99", Some("1.2.3.4".into()), None)
    );
    s.control(
        Method::POST,
        "/_sim/computes/2/address",
        Some(json!({"ipv4": "x"})),
    )
    .await
    .expect(400, "VALIDATION_ERROR");
    s.control(
        Method::POST,
        "/_sim/computes/99/address",
        Some(json!({"ipv4": "1.2.3.4"})),
    )
    .await
    .expect(404, "COMPUTE_NOT_FOUND");
}

#[tokio::test]
async fn create_validation_names_the_field() {
    let s = Sandbox::new(unlimited()).await;
    let cases: Vec<(&str, Value, &str)> = vec![
        ("hostName", json!("-bad-"), "hostName"),
        ("hostName", json!("x".repeat(64)), "hostName"),
        ("hostName", json!("has_underscore"), "hostName"),
        ("hostName", json!(42), "hostName"),
        ("image", json!("WINDOWS-11"), "UBUNTU-24.04"),
        ("region", json!("MARS-1"), "KGL-1"),
        ("specification", json!("S-99C"), "S-1C-1G"),
        ("publicKeys", json!([]), "publicKeys"),
        ("publicKeys", json!([""]), "publicKeys"),
        ("publicKeys", json!("ssh-rsa AAA"), "publicKeys"),
        ("tags", json!([1, 2]), "tags"),
        ("withPublicIp", json!("yes"), "withPublicIp"),
    ];
    for (field, value, mention) in cases {
        let mut body = compute_body("ok");
        body[field] = value.clone();
        let r = s.create("/computes", &new_key(), body).await;
        r.expect(400, "VALIDATION_ERROR");
        assert!(
            r.message().contains(field),
            "{field}={value}: {}",
            r.message()
        );
        assert!(
            r.message().contains(mention),
            "{field}={value}: {}",
            r.message()
        );
    }
    for field in ["hostName", "image", "region", "specification", "publicKeys"] {
        let mut body = compute_body("ok");
        body.as_object_mut().unwrap().remove(field);
        let r = s.create("/computes", &new_key(), body).await;
        r.expect(400, "VALIDATION_ERROR");
        assert!(r.message().contains(field), "{}", r.message());
    }
    let mut body = compute_body("ok");
    body.as_object_mut().unwrap().remove("specification");
    body["specificationId"] = json!("5f0e7a52-3c1d-4b8e-9a61-2d7c4e8b1f01");
    let r = s.create("/computes", &new_key(), body).await;
    assert!(r.message().contains("specification"), "{}", r.message());

    // Bodies that are not JSON objects.
    let raw = |body: &'static str| {
        s.http
            .post(format!("{}/computes", s.sim.base_url()))
            .bearer_auth(KEY)
            .header("Idempotency-Key", new_key())
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };
    for (body, code) in [
        ("{\"hostName\": ", "MALFORMED_JSON"),
        ("", "MALFORMED_JSON"),
        ("not json", "MALFORMED_JSON"),
        ("[1,2]", "VALIDATION_ERROR"),
        ("null", "VALIDATION_ERROR"),
    ] {
        let r = raw(body).await.unwrap();
        assert_eq!(r.status(), 400, "{body}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["code"], code, "{body}: {v}");
    }
    assert!(s.sim.computes().is_empty());
}

#[tokio::test]
async fn idempotency_keys() {
    let s = Sandbox::new(unlimited()).await;
    let body = compute_body("idem");

    let r = s
        .send(Method::POST, "/computes", Some(KEY), None, Some(&body))
        .await
        .unwrap();
    r.expect(400, "INVALID_IDEMPOTENCY_KEY");
    for bad in [
        "not-a-uuid",
        "c232ab00-9414-11ec-b3c8-9f6bdeced846", // v1
        "550e8400-e29b-31d4-a716-446655440000", // v3
        "550e8400-e29b-41d4-c716-446655440000", // v4 nibble, Microsoft variant
    ] {
        s.create("/computes", bad, body.clone())
            .await
            .expect(400, "INVALID_IDEMPOTENCY_KEY");
    }
    assert!(s.sim.computes().is_empty());

    let key = new_key();
    let first = s.create("/computes", &key, body.clone()).await;
    first.expect(202, "");
    let replay = s.create("/computes", &key, body.clone()).await;
    replay.expect(202, "");
    assert_eq!(replay.compute().id, first.compute().id);
    assert_eq!(replay.data(), first.data(), "the original answer");
    assert_eq!(
        replay.header("idempotent-replayed").as_deref(),
        Some("true")
    );
    // The same body with keys in another order is the same request; the other key sees it too.
    let reordered: Value = serde_json::from_str(
        r#"{"tags":["stratus","team=a"],"withPublicIp":true,"publicKeys":["ssh-ed25519 AAAAC3Nza test@host"],
            "specification":"S-1C-1G","region":"KGL-1","image":"UBUNTU-24.04","hostName":"idem"}"#,
    )
    .unwrap();
    let r = s
        .send(
            Method::POST,
            "/computes",
            Some(KEY2),
            Some(&key.to_uppercase()),
            Some(&reordered),
        )
        .await
        .unwrap();
    r.expect(202, "");
    assert_eq!(r.compute().id, first.compute().id);
    assert_eq!(s.sim.computes().len(), 1);

    let r = s.create("/computes", &key, compute_body("another")).await;
    r.expect(422, "UNPROCESSABLE_ENTITY");
    assert!(r.message().contains("Idempotency-Key"), "{}", r.message());
    assert_eq!(s.sim.computes().len(), 1);

    // A failed create is not remembered: fix the body, keep the key.
    let key = new_key();
    let mut bad = compute_body("fixme");
    bad["image"] = json!("NOPE");
    s.create("/computes", &key, bad)
        .await
        .expect(400, "VALIDATION_ERROR");
    let r = s.create("/computes", &key, compute_body("fixme")).await;
    r.expect(202, "");
    assert_eq!(s.sim.computes().len(), 2);

    // Concurrent creates with one key create one compute.
    let key = new_key();
    let body = compute_body("race");
    let answers = futures::future::join_all((0..12).map(|_| {
        s.send(
            Method::POST,
            "/computes",
            Some(KEY),
            Some(&key),
            Some(&body),
        )
    }))
    .await;
    let mut ids: Vec<String> = answers
        .into_iter()
        .map(|r| {
            let r = r.unwrap();
            r.expect(202, "");
            r.compute().id
        })
        .collect();
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(s.sim.computes().len(), 3);
}

#[tokio::test]
async fn power_actions_follow_the_state_machine() {
    let s = Sandbox::new(unlimited()).await;
    let id = s.sim.seed_computes(1, vec![]).remove(0);
    let p = |a: &str| format!("/computes/{id}/{a}");

    let r = s.call(Method::POST, &p("start"), None).await;
    r.expect(409, "CONFLICT");
    assert!(r.message().contains("RUNNING"), "{}", r.message());

    let r = s.call(Method::POST, &p("stop"), None).await;
    r.expect(202, "");
    assert_eq!(r.compute().state, ComputeState::Stopping);
    let r = s.call(Method::POST, &p("stop"), None).await;
    r.expect(409, "CONFLICT");
    assert!(r.message().contains("STOPPING"), "{}", r.message());
    s.wait_state(&id, ComputeState::Stopped).await;
    s.call(Method::POST, &p("reboot"), None)
        .await
        .expect(409, "CONFLICT");

    let r = s.call(Method::POST, &p("start"), None).await;
    r.expect(202, "");
    assert_eq!(r.compute().state, ComputeState::Starting);
    s.wait_state(&id, ComputeState::Running).await;

    let r = s.call(Method::POST, &p("reboot"), None).await;
    r.expect(202, "");
    assert_eq!(r.compute().state, ComputeState::Rebooting);
    s.wait_state(&id, ComputeState::Running).await;

    // Nothing fits while CREATING.
    let c = s.create_compute("fresh").await;
    for a in ["start", "stop", "reboot"] {
        let r = s
            .call(Method::POST, &format!("/computes/{}/{a}", c.id), None)
            .await;
        r.expect(409, "CONFLICT");
        assert!(r.message().contains("CREATING"), "{}", r.message());
    }
    s.call(Method::POST, "/computes/999/reboot", None)
        .await
        .expect(404, "COMPUTE_NOT_FOUND");
}

#[tokio::test]
async fn upsize_only_grows() {
    let s = Sandbox::new(unlimited()).await;
    let id = s.sim.seed_computes(1, vec![]).remove(0);
    let path = format!("/computes/{id}/upsize");

    let r = s
        .call(
            Method::PATCH,
            &path,
            Some(json!({"newSpecification": "S-1C-1G"})),
        )
        .await;
    r.expect(422, "UNPROCESSABLE_ENTITY");
    assert!(r.message().contains("larger"), "{}", r.message());
    let r = s
        .call(
            Method::PATCH,
            &path,
            Some(json!({"newSpecification": "S-64C"})),
        )
        .await;
    r.expect(400, "VALIDATION_ERROR");
    assert!(r.message().contains("newSpecification"), "{}", r.message());
    s.call(Method::PATCH, &path, Some(json!({})))
        .await
        .expect(400, "VALIDATION_ERROR");
    s.call(
        Method::PATCH,
        "/computes/77/upsize",
        Some(json!({"newSpecification": "S-2C-4G"})),
    )
    .await
    .expect(404, "COMPUTE_NOT_FOUND");

    let r = s
        .call(
            Method::PATCH,
            &path,
            Some(json!({"newSpecification": "S-2C-4G"})),
        )
        .await;
    r.expect(202, "");
    assert_eq!(r.compute().state, ComputeState::Rebooting);
    let c = s.wait_state(&id, ComputeState::Running).await.unwrap();
    assert_eq!(c.specification, "S-2C-4G");

    let r = s
        .call(
            Method::PATCH,
            &path,
            Some(json!({"newSpecification": "S-1C-2G"})),
        )
        .await;
    r.expect(422, "UNPROCESSABLE_ENTITY");
    assert!(r.message().contains("S-2C-4G"), "{}", r.message());
}

#[tokio::test]
async fn delete_destroys_then_forgets() {
    let s = Sandbox::new(unlimited()).await;
    let id = s.sim.seed_computes(1, vec![]).remove(0);
    let r = s
        .call(Method::DELETE, &format!("/computes/{id}"), None)
        .await;
    r.expect(202, "");
    assert_eq!(r.compute().state, ComputeState::Destroying);
    let r = s
        .call(Method::DELETE, &format!("/computes/{id}"), None)
        .await;
    r.expect(202, "");
    assert_eq!(r.compute().state, ComputeState::Destroying);
    s.call(Method::POST, &format!("/computes/{id}/reboot"), None)
        .await
        .expect(409, "CONFLICT");
    assert!(s.wait_state(&id, ComputeState::Destroyed).await.is_none());
    s.call(Method::DELETE, &format!("/computes/{id}"), None)
        .await
        .expect(404, "COMPUTE_NOT_FOUND");
    assert_eq!(s.get("/computes").await.json()["meta"]["total"], 0);
    assert!(s.sim.computes().is_empty());
}

// ---- rate limit and stats ---------------------------------------------------------------------

/// Sleeps until just after the start of the next unix second.
async fn align_to_second() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let into = now.subsec_millis() as u64;
    tokio::time::sleep(Duration::from_millis(1000 - into + 20)).await;
}

#[tokio::test]
async fn rate_limit_per_key_per_second() {
    let s = Sandbox::new(SimConfig::for_tests(&[KEY, KEY2])).await;
    let mut answers = Vec::new();
    let mut attempt = 0;
    // A burst of 6 must fit in one second; retry if the machine is too slow for that.
    loop {
        attempt += 1;
        align_to_second().await;
        s.sim.reset_stats();
        let t0 = Instant::now();
        answers.clear();
        for _ in 0..6 {
            answers.push(s.get("/computes").await);
        }
        if t0.elapsed() < Duration::from_millis(800) || attempt == 3 {
            break;
        }
    }
    let ok: Vec<&Resp> = answers.iter().filter(|r| r.status == 200).collect();
    let limited: Vec<&Resp> = answers.iter().filter(|r| r.status == 429).collect();
    assert_eq!(
        ok.len(),
        2,
        "{:?}",
        answers.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(limited.len(), 4);
    assert_eq!(ok[0].header("x-ratelimit-remaining").as_deref(), Some("1"));
    assert_eq!(ok[1].header("x-ratelimit-remaining").as_deref(), Some("0"));
    let unix_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for r in &answers {
        assert_eq!(r.header("x-ratelimit-limit").as_deref(), Some("2"));
        let reset: u64 = r.header("x-ratelimit-reset").unwrap().parse().unwrap();
        assert!(
            reset >= unix_now && reset <= unix_now + 2,
            "{reset} vs {unix_now}"
        );
    }
    for r in &limited {
        r.expect(429, "TOO_MANY_REQUESTS");
        let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
        assert!(retry >= 1);
        assert_eq!(r.header("x-ratelimit-remaining").as_deref(), Some("0"));
    }

    // Errors carry the headers too; the health check is neither authenticated nor limited.
    let other = s
        .send(Method::GET, "/computes/404", Some(KEY2), None, None)
        .await
        .unwrap();
    other.expect(404, "COMPUTE_NOT_FOUND");
    assert!(other.header("x-ratelimit-remaining").is_some());
    for _ in 0..5 {
        let h = s
            .send(Method::GET, "/health", None, None, None)
            .await
            .unwrap();
        assert_eq!(h.status, 200);
    }

    let stats: SimStats = s.sim.stats();
    let k = &stats.keys[&fingerprint(KEY)];
    assert_eq!(k.requests, 2);
    assert_eq!(k.served_429, 4);
    assert_eq!(k.max_per_second, 2);
    assert_eq!(k.per_second.values().sum::<u64>(), 2);
    assert!(k.per_second.values().all(|n| *n <= 2));
    assert_eq!(stats.served_429, 4);
    assert_eq!(stats.keys[&fingerprint(KEY2)].requests, 1);
    assert!(
        !stats.keys.contains_key(KEY),
        "keys are named by fingerprint"
    );
    assert_eq!(stats.requests_by_route.get("GET /computes"), Some(&2));
    assert_eq!(stats.requests_by_route.get("GET /computes/{id}"), Some(&1));
    assert_eq!(stats.requests_by_route.get("GET /health"), Some(&5));

    // The same numbers over the control endpoint, then a reset.
    let v = s.control(Method::GET, "/_sim/stats", None).await.json();
    assert_eq!(v["served429"], 4);
    assert_eq!(v["keys"][fingerprint(KEY)]["served429"], 4);
    assert_eq!(v["keys"][fingerprint(KEY)]["maxPerSecond"], 2);
    let v = s
        .control(Method::POST, "/_sim/stats/reset", None)
        .await
        .json();
    assert_eq!(v["served429"], 0);
    assert_eq!(s.sim.stats().keys[&fingerprint(KEY)].requests, 0);
}

#[tokio::test]
async fn rate_limit_zero_is_unlimited() {
    let s = Sandbox::new(unlimited()).await;
    for _ in 0..20 {
        let r = s.get("/regions").await;
        assert_eq!(r.status, 200);
        assert!(
            r.header("x-ratelimit-limit")
                .unwrap()
                .parse::<u64>()
                .unwrap()
                >= 1000
        );
    }
    assert_eq!(s.sim.stats().served_429, 0);
}

// ---- faults -----------------------------------------------------------------------------------

#[tokio::test]
async fn error_rate_answers_500_and_applies_nothing() {
    let s = Sandbox::new(unlimited()).await;
    s.sim.set_faults(Faults {
        error_rate: 1.0,
        ..Default::default()
    });
    let key = new_key();
    let r = s.create("/computes", &key, compute_body("boom")).await;
    r.expect(500, "INTERNAL_SERVER_ERROR");
    s.get("/computes")
        .await
        .expect(500, "INTERNAL_SERVER_ERROR");
    assert!(s.sim.computes().is_empty());
    // Control endpoints are never faulty; the health check neither.
    assert_eq!(
        s.send(Method::GET, "/health", None, None, None)
            .await
            .unwrap()
            .status,
        200
    );
    let r = s
        .control(Method::POST, "/_sim/faults", Some(json!({})))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(s.sim.faults(), Faults::default());
    // The failed create was not remembered: the same key creates now.
    s.create("/computes", &key, compute_body("boom"))
        .await
        .expect(202, "");
    assert_eq!(s.sim.computes().len(), 1);
    s.control(Method::POST, "/_sim/faults", Some(json!({"errorRate": 7})))
        .await
        .expect(400, "VALIDATION_ERROR");
}

#[tokio::test]
async fn dropped_connection_after_the_write_is_applied() {
    let s = Sandbox::new(unlimited()).await;
    let r = s
        .control(
            Method::POST,
            "/_sim/faults",
            Some(json!({"dropAfterWriteRate": 1.0})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let key = new_key();
    let err = s
        .send(
            Method::POST,
            "/computes",
            Some(KEY),
            Some(&key),
            Some(&compute_body("dropped")),
        )
        .await
        .err()
        .expect("the client must see a connection error, not an answer");
    // hyper reports IncompleteMessage: the connection closed before any answer.
    assert!(err.is_request(), "{err:?}");
    assert!(format!("{err:?}").contains("IncompleteMessage"), "{err:?}");
    assert_eq!(s.sim.computes().len(), 1, "the create was applied");
    // Reads are answered.
    assert_eq!(s.get("/computes").await.status, 200);
    // A retry with the same key gets the original compute back.
    s.sim.set_faults(Faults::default());
    let r = s.create("/computes", &key, compute_body("dropped")).await;
    r.expect(202, "");
    assert_eq!(r.compute().id, s.sim.computes()[0].id);
    assert_eq!(s.sim.computes().len(), 1);
}

#[tokio::test]
async fn malformed_bodies_and_latency() {
    let s = Sandbox::new(unlimited()).await;
    s.sim.set_faults(Faults {
        malformed_rate: 1.0,
        ..Default::default()
    });
    let r = s.get("/computes").await;
    assert_eq!(r.status, 200);
    assert!(
        serde_json::from_str::<Value>(&r.text).is_err(),
        "{}",
        r.text
    );
    // Writes are not garbled.
    s.create("/computes", &new_key(), compute_body("fine"))
        .await
        .expect(202, "");

    s.sim.set_faults(Faults {
        latency_ms: 300,
        ..Default::default()
    });
    let t0 = Instant::now();
    assert_eq!(s.get("/regions").await.status, 200);
    assert!(t0.elapsed() >= Duration::from_millis(300));
}

// ---- DNS --------------------------------------------------------------------------------------

async fn create_domain(s: &Sandbox, name: &str) -> Resp {
    s.create("/domains", &new_key(), json!({"domain": name}))
        .await
}

#[tokio::test]
async fn domains_activate_and_conflict() {
    let s = Sandbox::new(unlimited()).await;
    let r = create_domain(&s, "Example.COM").await;
    r.expect(202, "");
    let d: Domain = serde_json::from_value(r.data()).unwrap();
    assert_eq!(d.domain, "example.com");
    assert_eq!(d.status, DomainStatus::Activating);
    assert_eq!(d.nameservers, vec!["ns1.strettch.com", "ns2.strettch.com"]);

    for (name, code, status) in [
        ("example.com", "CONFLICT", 409),
        ("a.example.com", "CONFLICT", 409),
        ("deep.a.example.com", "CONFLICT", 409),
        ("not a domain", "VALIDATION_ERROR", 400),
        ("localhost", "VALIDATION_ERROR", 400),
        ("-x.org", "VALIDATION_ERROR", 400),
        ("192.0.2.1", "VALIDATION_ERROR", 400),
    ] {
        let r = create_domain(&s, name).await;
        r.expect(status, code);
        assert!(r.message().contains("domain"), "{}", r.message());
    }
    create_domain(&s, "shop.example.org").await.expect(202, "");
    create_domain(&s, "example.org")
        .await
        .expect(409, "CONFLICT");
    create_domain(&s, "example.net").await.expect(202, "");
    s.create("/domains", &new_key(), json!({}))
        .await
        .expect(400, "VALIDATION_ERROR");

    let list = s.get("/domains?limit=2").await.json();
    assert_eq!(list["meta"], json!({"total": 3, "page": 1, "limit": 2}));
    assert_eq!(list["data"][0]["domain"], "example.com");
    assert_eq!(
        s.get("/domains?page=2&limit=2")
            .await
            .data()
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let d: Domain =
            serde_json::from_value(s.get(&format!("/domains/{}", d.id)).await.data()).unwrap();
        if d.status == DomainStatus::Active {
            break;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    assert!(s.sim.set_domain_status(&d.id, Some(DomainStatus::Inactive)));
    assert_eq!(
        s.get(&format!("/domains/{}", d.id)).await.data()["status"],
        "INACTIVE"
    );

    s.get("/domains/00000000-0000-4000-8000-000000000000")
        .await
        .expect(404, "RESOURCE_NOT_FOUND");
    let r = s
        .call(Method::DELETE, &format!("/domains/{}", d.id), None)
        .await;
    r.expect(202, "");
    s.get(&format!("/domains/{}", d.id))
        .await
        .expect(404, "RESOURCE_NOT_FOUND");
    s.call(Method::DELETE, &format!("/domains/{}", d.id), None)
        .await
        .expect(404, "RESOURCE_NOT_FOUND");
    // The name is free again.
    create_domain(&s, "a.example.com").await.expect(202, "");
    assert_eq!(s.sim.domains().len(), 3);
}

#[tokio::test]
async fn records_validate_per_type_and_crud() {
    let mut config = unlimited();
    config.activate_delay = Duration::from_secs(60);
    let s = Sandbox::new(config).await;
    let d: Domain = serde_json::from_value(create_domain(&s, "example.com").await.data()).unwrap();
    assert_eq!(d.status, DomainStatus::Activating);
    let recs = format!("/domains/{}/records", d.id);

    // Records are accepted while the domain is ACTIVATING.
    let r = s
        .create(
            &recs,
            &new_key(),
            json!({"name": "@", "type": "A", "value": "192.0.2.1"}),
        )
        .await;
    r.expect(201, "");
    let a: Record = serde_json::from_value(r.data()).unwrap();
    assert_eq!((a.ttl, a.name.as_str()), (60, "@"));
    assert!(!a.created_at.is_empty());

    let invalid: Vec<(Value, &str)> = vec![
        (
            json!({"name": "@", "type": "A", "value": "192.0.2"}),
            "IPv4",
        ),
        (
            json!({"name": "@", "type": "A", "value": "2001:db8::1"}),
            "IPv4",
        ),
        (
            json!({"name": "@", "type": "AAAA", "value": "192.0.2.1"}),
            "IPv6",
        ),
        (
            json!({"name": "www", "type": "CNAME", "value": "192.0.2.1"}),
            "hostname",
        ),
        (
            json!({"name": "www", "type": "CNAME", "value": "bad_host!"}),
            "hostname",
        ),
        (
            json!({"name": "@", "type": "NS", "value": "ns1"}),
            "hostname",
        ),
        (
            json!({"name": "@", "type": "MX", "value": "mail.example.com"}),
            "priority",
        ),
        (
            json!({"name": "_sip._tcp", "type": "SRV", "value": "sip.example.com", "priority": 10, "weight": 5}),
            "port",
        ),
        (
            json!({"name": "_sip._tcp", "type": "SRV", "value": "sip.example.com", "priority": 10, "port": 5060}),
            "weight",
        ),
        (json!({"name": "@", "type": "TXT", "value": ""}), "TXT"),
        (
            json!({"name": "@", "type": "TXT", "value": "x".repeat(2049)}),
            "TXT",
        ),
        (
            json!({"name": "@", "type": "A", "value": "192.0.2.9", "ttl": 59}),
            "ttl",
        ),
        (
            json!({"name": "@", "type": "A", "value": "192.0.2.9", "ttl": 86401}),
            "ttl",
        ),
        (
            json!({"name": "bad name", "type": "A", "value": "192.0.2.9"}),
            "name",
        ),
        (
            json!({"name": "", "type": "A", "value": "192.0.2.9"}),
            "name",
        ),
        (
            json!({"name": "@", "type": "SPF", "value": "v=spf1"}),
            "type",
        ),
        (
            json!({"name": "@", "type": "A", "value": "192.0.2.9", "priority": 1}),
            "priority",
        ),
        (
            json!({"name": "@", "type": "MX", "value": "mail.example.com", "priority": 70000}),
            "priority",
        ),
        (json!({"type": "A", "value": "192.0.2.9"}), "name"),
        (json!({"name": "@", "value": "192.0.2.9"}), "type"),
        (json!({"name": "@", "type": "A"}), "value"),
    ];
    for (body, mention) in invalid {
        let r = s.create(&recs, &new_key(), body.clone()).await;
        r.expect(400, "VALIDATION_ERROR");
        assert!(r.message().contains(mention), "{body}: {}", r.message());
    }

    let valid = vec![
        json!({"name": "@", "type": "AAAA", "value": "2001:db8::1", "ttl": 3600}),
        json!({"name": "www", "type": "CNAME", "value": "web.example.com.", "comment": "site"}),
        json!({"name": "@", "type": "MX", "value": "mail.example.com", "priority": 10}),
        json!({"name": "_dmarc", "type": "TXT", "value": "v=DMARC1; p=none"}),
        json!({"name": "_sip._tcp", "type": "SRV", "value": "sip.example.com", "priority": 10, "weight": 60, "port": 5060}),
        json!({"name": "sub", "type": "NS", "value": "ns1.strettch.com", "ttl": 86400}),
        json!({"name": "*.dev", "type": "A", "value": "192.0.2.2"}),
    ];
    for body in valid {
        s.create(&recs, &new_key(), body).await.expect(201, "");
    }
    assert_eq!(s.sim.records(&d.id).len(), 8);

    // Duplicates in (name, type, value) conflict; a different value does not.
    let r = s
        .create(
            &recs,
            &new_key(),
            json!({"name": "@", "type": "A", "value": "192.0.2.1", "ttl": 300}),
        )
        .await;
    r.expect(409, "CONFLICT");
    s.create(
        &recs,
        &new_key(),
        json!({"name": "@", "type": "A", "value": "192.0.2.3"}),
    )
    .await
    .expect(201, "");

    // Idempotent replay of a record create.
    let key = new_key();
    let body = json!({"name": "api", "type": "A", "value": "192.0.2.50"});
    let first = s.create(&recs, &key, body.clone()).await;
    first.expect(201, "");
    let again = s.create(&recs, &key, body).await;
    again.expect(202, "");
    assert_eq!(again.data()["id"], first.data()["id"]);
    s.create(
        &recs,
        &new_key(),
        json!({"name": "x", "type": "A", "value": "192.0.2.1"}),
    )
    .await
    .expect(201, "");

    // Read, update, list, delete.
    let one = s.get(&format!("{recs}/{}", a.id)).await;
    assert_eq!(one.data()["value"], "192.0.2.1");
    let r = s
        .call(
            Method::PUT,
            &format!("{recs}/{}", a.id),
            Some(json!({"name": "@", "type": "A", "value": "192.0.2.77", "ttl": 120})),
        )
        .await;
    r.expect(200, "");
    let updated: Record = serde_json::from_value(r.data()).unwrap();
    assert_eq!(
        (updated.value.as_str(), updated.ttl, updated.id.as_str()),
        ("192.0.2.77", 120, a.id.as_str())
    );
    s.call(
        Method::PUT,
        &format!("{recs}/{}", a.id),
        Some(json!({"name": "@", "type": "A", "value": "192.0.2.3"})),
    )
    .await
    .expect(409, "CONFLICT");
    s.call(
        Method::PUT,
        &format!("{recs}/{}", a.id),
        Some(json!({"name": "@", "type": "A", "value": "nope"})),
    )
    .await
    .expect(400, "VALIDATION_ERROR");
    s.call(
        Method::PUT,
        &format!("{recs}/nope"),
        Some(json!({"name": "@", "type": "A", "value": "192.0.2.8"})),
    )
    .await
    .expect(404, "RESOURCE_NOT_FOUND");

    let page = s.get(&format!("{recs}?limit=5")).await.json();
    assert_eq!(page["meta"]["total"], 11);
    assert_eq!(page["data"].as_array().unwrap().len(), 5);

    s.call(Method::DELETE, &format!("{recs}/{}", a.id), None)
        .await
        .expect(200, "");
    s.get(&format!("{recs}/{}", a.id))
        .await
        .expect(404, "RESOURCE_NOT_FOUND");
    assert_eq!(s.sim.records(&d.id).len(), 10);
    s.get("/domains/nope/records")
        .await
        .expect(404, "RESOURCE_NOT_FOUND");
    s.create(
        "/domains/nope/records",
        &new_key(),
        json!({"name": "@", "type": "A", "value": "192.0.2.1"}),
    )
    .await
    .expect(404, "RESOURCE_NOT_FOUND");

    // Deleting the domain takes its records along.
    s.call(Method::DELETE, &format!("/domains/{}", d.id), None)
        .await
        .expect(202, "");
    assert!(s.sim.records(&d.id).is_empty());
    assert_eq!(s.sim.stats().records, 0);
}

/// Creates `body` in the zone `recs` with a fresh idempotency key.
async fn create_record(s: &Sandbox, recs: &str, body: Value) -> Resp {
    s.create(recs, &new_key(), body).await
}

/// The `/_sim/records` groups of one zone: ((name, type, value), count).
async fn groups_over_http(s: &Sandbox, domain_id: &str) -> Vec<((String, String, String), u64)> {
    let r = s.control(Method::GET, "/_sim/records", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json()
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["domainId"] == domain_id)
        .map(|g| {
            let s = |k: &str| g[k].as_str().unwrap().to_string();
            (
                (s("name"), s("type"), s("value")),
                g["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn identical_records_are_refused_by_default_and_counted_once() {
    let s = Sandbox::new(unlimited()).await;
    let d: Domain = serde_json::from_value(create_domain(&s, "example.com").await.data()).unwrap();
    let recs = format!("/domains/{}/records", d.id);
    create_record(
        &s,
        &recs,
        json!({"name": "www", "type": "A", "value": "192.0.2.1"}),
    )
    .await
    .expect(201, "");
    // Same identity, spelled differently: still the same record.
    create_record(
        &s,
        &recs,
        json!({"name": "WWW", "type": "A", "value": "192.0.2.1", "ttl": 300}),
    )
    .await
    .expect(409, "CONFLICT");
    assert_eq!(s.sim.records(&d.id).len(), 1);
    let groups = s.sim.record_groups();
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(
        (
            groups[0].name.as_str(),
            groups[0].record_type.as_str(),
            groups[0].value.as_str()
        ),
        ("www", "A", "192.0.2.1")
    );
    assert_eq!((groups[0].count, groups[0].ids.len()), (1, 1));
    assert_eq!(
        groups_over_http(&s, &d.id).await,
        vec![(("www".into(), "A".into(), "192.0.2.1".into()), 1)]
    );
}

#[tokio::test]
async fn identical_records_are_accepted_and_listed_separately_when_duplicates_are_allowed() {
    let mut config = unlimited();
    config.allow_duplicate_records = true;
    let s = Sandbox::new(config).await;
    let d: Domain = serde_json::from_value(create_domain(&s, "example.com").await.data()).unwrap();
    let recs = format!("/domains/{}/records", d.id);
    let first = create_record(
        &s,
        &recs,
        json!({"name": "www", "type": "A", "value": "192.0.2.1"}),
    )
    .await;
    first.expect(201, "");
    let second = create_record(
        &s,
        &recs,
        json!({"name": "WWW", "type": "A", "value": "192.0.2.1"}),
    )
    .await;
    second.expect(201, "");
    let (a, b): (Record, Record) = (
        serde_json::from_value(first.data()).unwrap(),
        serde_json::from_value(second.data()).unwrap(),
    );
    assert_ne!(a.id, b.id);

    // Both are real records: listed, readable, counted.
    let listed = s.get(&recs).await;
    assert_eq!(listed.json()["meta"]["total"], 2, "{}", listed.text);
    s.get(&format!("{recs}/{}", b.id)).await.expect(200, "");
    let groups = s.sim.record_groups();
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(groups[0].count, 2);
    assert_eq!(groups[0].ids, vec![a.id.clone(), b.id.clone()]);
    assert_eq!(
        groups_over_http(&s, &d.id).await,
        vec![(("www".into(), "A".into(), "192.0.2.1".into()), 2)]
    );

    // An update may make a record identical to another, too.
    let other = create_record(
        &s,
        &recs,
        json!({"name": "api", "type": "A", "value": "192.0.2.9"}),
    )
    .await;
    other.expect(201, "");
    let other: Record = serde_json::from_value(other.data()).unwrap();
    s.call(
        Method::PUT,
        &format!("{recs}/{}", other.id),
        Some(json!({"name": "www", "type": "A", "value": "192.0.2.1"})),
    )
    .await
    .expect(200, "");
    assert_eq!(
        groups_over_http(&s, &d.id).await,
        vec![(("www".into(), "A".into(), "192.0.2.1".into()), 3)]
    );

    // Deleting one leaves the others.
    s.call(Method::DELETE, &format!("{recs}/{}", a.id), None)
        .await
        .expect(200, "");
    assert_eq!(s.sim.record_groups()[0].ids, vec![b.id, other.id]);
}

// ---- persistence ------------------------------------------------------------------------------

#[tokio::test]
async fn state_file_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sim-state.json");
    let mut config = unlimited();
    config.state_file = Some(path.clone());

    let s = Sandbox::new(config.clone()).await;
    let key = new_key();
    let c = s
        .create("/computes", &key, compute_body("keeper"))
        .await
        .compute();
    let d: Domain =
        serde_json::from_value(create_domain(&s, "persist.example").await.data()).unwrap();
    let rec = s
        .create(
            &format!("/domains/{}/records", d.id),
            &new_key(),
            json!({"name": "@", "type": "TXT", "value": "hello"}),
        )
        .await;
    rec.expect(201, "");
    s.sim.seed_computes(3, vec!["bulk".into()]);
    // The debounced save lands without a shutdown, too.
    let deadline = Instant::now() + Duration::from_secs(3);
    while !path.exists() {
        assert!(Instant::now() < deadline, "state file never written");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.sim.shutdown().await;

    let s = Sandbox::new(config).await;
    assert_eq!(s.sim.computes().len(), 4);
    let back = s.get(&format!("/computes/{}", c.id)).await.compute();
    assert_eq!((back.host_name.as_str(), back.tags.len()), ("keeper", 2));
    assert_eq!(s.sim.domains().len(), 1);
    assert_eq!(s.sim.records(&d.id).len(), 1);
    // The idempotency key is remembered across the restart.
    let r = s.create("/computes", &key, compute_body("keeper")).await;
    r.expect(202, "");
    assert_eq!(r.compute().id, c.id);
    // Ids keep counting.
    assert_eq!(s.create_compute("next").await.id, "5");
    s.sim.shutdown().await;

    std::fs::write(&path, "{ not json").unwrap();
    let mut config = unlimited();
    config.state_file = Some(path);
    assert!(
        start(config, "127.0.0.1:0".parse().unwrap()).await.is_err(),
        "a corrupt state file is an error"
    );
}

#[tokio::test]
async fn ten_thousand_computes_are_cheap() {
    let s = Sandbox::new(unlimited()).await;
    let t0 = Instant::now();
    s.sim.seed_computes(10_000, vec!["load".into()]);
    let r = s.get("/computes?page=100&limit=100").await;
    assert_eq!(r.json()["meta"]["total"], 10_000);
    assert_eq!(r.data().as_array().unwrap().len(), 100);
    assert_eq!(r.data()[99]["id"], "10000");
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
}

/// `stratus sim` as the binary, with no `STRATUS_SIM_*` variable from the caller's shell.
fn stratus_sim(args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_stratus"));
    cmd.arg("sim").args(args);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("STRATUS_SIM_") {
            cmd.env_remove(name);
        }
    }
    cmd.output().expect("the stratus binary runs")
}

#[test]
fn stratus_sim_cloud_cloudapi_serves_its_dialect() {
    use std::io::BufRead;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_stratus"));
    cmd.args([
        "sim",
        "--cloud",
        "cloudapi",
        "--dialect",
        "cloudplatform",
        "--api-key",
        "k",
        "--listen",
        "127.0.0.1:0",
    ]);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("STRATUS_SIM_") {
            cmd.env_remove(name);
        }
    }
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the stratus binary runs");
    let mut line = String::new();
    std::io::BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        line.starts_with("CloudAPI sandbox listening on http://127.0.0.1:") && line.contains("/v1"),
        "{line}"
    );
}

#[test]
fn a_dialect_without_cloud_cloudapi_is_a_usage_error() {
    let out = stratus_sim(&["--dialect", "cloudplatform", "--api-key", "k"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("only for --cloud cloudapi"), "{stderr}");
}

#[tokio::test]
async fn stratus_sim_without_cloud_serves_strettch_configured_by_its_env_variables() {
    use std::io::BufRead;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_stratus"));
    cmd.arg("sim")
        .env("STRATUS_SIM_LISTEN", "127.0.0.1:0")
        .env("STRATUS_SIM_API_KEYS", format!("{KEY},"))
        .env("STRATUS_SIM_RATE_LIMIT", "0")
        .env_remove("STRATUS_SIM_CLOUD")
        .env_remove("STRATUS_SIM_DIALECT")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("the stratus binary runs");
    let mut line = String::new();
    std::io::BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .strip_prefix("Strettch sandbox listening on ")
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_string);
    let answer = match &base {
        Some(base) => Some(
            reqwest::Client::new()
                .get(format!("{base}/regions"))
                .bearer_auth(KEY)
                .send()
                .await
                .map(|r| (r.status(), r.headers().get("x-ratelimit-limit").cloned())),
        ),
        None => None,
    };
    // Stopped before any assertion, so a failure leaves no sandbox running.
    child.kill().unwrap();
    child.wait().unwrap();
    let (status, limit) = answer
        .unwrap_or_else(|| panic!("not the start-up line: {line:?}"))
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        limit.unwrap(),
        "1000000",
        "STRATUS_SIM_RATE_LIMIT=0 is unlimited"
    );
}
