//! Integration test harness: a real kube-apiserver (from `scripts/control-plane`, or any cluster
//! named by STRATUS_TEST_KUBECONFIG), the checked-in CRDs, a namespace per test, the sandbox as
//! a real HTTP peer, and the operator as a real child process.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use tokio::sync::OnceCell;

pub const HOW_TO_GET_A_CLUSTER: &str = "no Kubernetes API server for the integration tests: run them with `scripts/test` \
(which starts a local etcd + kube-apiserver), or start one with `scripts/control-plane up` and \
`export STRATUS_TEST_KUBECONFIG=/tmp/stratus-control-plane/admin.kubeconfig`, or point \
STRATUS_TEST_KUBECONFIG at an existing cluster's kubeconfig (kind, k3d, ...)";

pub fn kubeconfig_path() -> PathBuf {
    match std::env::var("STRATUS_TEST_KUBECONFIG") {
        Ok(p) if !p.is_empty() => PathBuf::from(p),
        _ => panic!("{HOW_TO_GET_A_CLUSTER}"),
    }
}

pub async fn client() -> Client {
    let path = kubeconfig_path();
    let kc = kube::config::Kubeconfig::read_from(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}\n{HOW_TO_GET_A_CLUSTER}", path.display()));
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("kubeconfig usable");
    Client::try_from(config).expect("client")
}

static CRDS: OnceCell<()> = OnceCell::const_new();

/// Install the checked-in CRDs (create, or replace when present), once per test process.
/// Plain create/replace works on every apiserver version (server-side apply of a CRD with
/// x-kubernetes-validations is refused by old ones).
pub async fn install_crds(client: &Client) {
    CRDS.get_or_init(|| async {
        let api: Api<CustomResourceDefinition> = Api::all(client.clone());
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/crds/stratus.yaml")).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let crd: CustomResourceDefinition = serde::Deserialize::deserialize(doc).unwrap();
            let name = crd.metadata.name.clone().unwrap();
            match api.get_opt(&name).await.expect("reading CRDs") {
                None => {
                    api.create(&PostParams::default(), &crd).await.expect("creating CRD");
                }
                Some(existing) => {
                    let mut crd = crd;
                    crd.metadata.resource_version = existing.metadata.resource_version;
                    api.replace(&name, &PostParams::default(), &crd).await.expect("replacing CRD");
                }
            }
            wait_for(Duration::from_secs(30), || {
                let api = api.clone();
                let name = name.clone();
                async move {
                    api.get(&name).await.ok().and_then(|c| c.status).is_some_and(|s| {
                        s.conditions
                            .unwrap_or_default()
                            .iter()
                            .any(|c| c.type_ == "Established" && c.status == "True")
                    })
                }
            })
            .await;
        }
    })
    .await;
}

/// Poll `check` until it is true or `timeout` passes.
pub async fn wait_for<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A namespace of one test, deleted by `cleanup`.
pub struct TestNamespace {
    pub name: String,
    pub client: Client,
}

impl TestNamespace {
    pub async fn new(prefix: &str) -> Self {
        let client = client().await;
        install_crds(&client).await;
        let name = format!("{prefix}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let api: Api<Namespace> = Api::all(client.clone());
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        api.create(&PostParams::default(), &ns).await.expect("creating namespace");
        Self { name, client }
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }

    pub async fn cleanup(self) {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let _ = api.delete(&self.name, &DeleteParams::default()).await;
    }
}

/// Create a Secret with an API key and a ProviderConfig named after the namespace that points at
/// `endpoint`; returns the ProviderConfig name.
pub async fn provider_config(ns: &TestNamespace, endpoint: &str, api_key: &str, rps: Option<f64>) -> String {
    let secrets: Api<Secret> = ns.api();
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "strettch-credentials"},
        "stringData": {"apiKey": api_key},
    }))
    .unwrap();
    secrets.create(&PostParams::default(), &secret).await.expect("secret");
    create_provider_config(ns, endpoint, rps).await
}

/// Only the ProviderConfig (its Secret may come later).
pub async fn create_provider_config(ns: &TestNamespace, endpoint: &str, rps: Option<f64>) -> String {
    let api: Api<stratus::api::ProviderConfig> = Api::all(ns.client.clone());
    let mut spec = json!({
        "provider": "strettch",
        "endpoint": endpoint,
        "credentials": {"secretRef": {"namespace": ns.name, "name": "strettch-credentials", "key": "apiKey"}},
    });
    if let Some(r) = rps {
        spec["rateLimit"] = json!({"requestsPerSecond": r});
    }
    let pc: stratus::api::ProviderConfig =
        serde_json::from_value(json!({"apiVersion": "stratus.dev/v1alpha1", "kind": "ProviderConfig", "metadata": {"name": ns.name}, "spec": spec}))
            .unwrap();
    api.create(&PostParams::default(), &pc).await.expect("provider config");
    ns.name.clone()
}

/// The operator as a child process watching one namespace.
pub struct Operator {
    child: Child,
    pub metrics_port: u16,
}

impl Operator {
    pub fn start(namespace: &str, extra: &[&str]) -> Self {
        let port = free_port();
        let log = std::env::temp_dir().join(format!("stratus-operator-{namespace}-{port}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_stratus"))
            .arg("run")
            .args(["--kubeconfig", kubeconfig_path().to_str().unwrap()])
            .args(["--namespace", namespace])
            .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
            .args(extra)
            .env("RUST_LOG", std::env::var("STRATUS_TEST_LOG").unwrap_or_else(|_| "info,stratus=debug".into()))
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out))
            .spawn()
            .expect("starting the operator");
        Self { child, metrics_port: port }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(format!("http://127.0.0.1:{}/metrics", self.metrics_port))
            .await
            .and_then(|r| r.error_for_status())
            .map(|r| r.text())
            .expect("metrics")
            .await
            .unwrap_or_default()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
