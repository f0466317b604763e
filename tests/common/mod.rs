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

pub mod cloudapi;
pub mod vertra;

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
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/crds/stratus.yaml"))
                .unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let crd: CustomResourceDefinition = serde::Deserialize::deserialize(doc).unwrap();
            let name = crd.metadata.name.clone().unwrap();
            match api.get_opt(&name).await.expect("reading CRDs") {
                None => {
                    api.create(&PostParams::default(), &crd)
                        .await
                        .expect("creating CRD");
                }
                Some(existing) => {
                    let mut crd = crd;
                    crd.metadata.resource_version = existing.metadata.resource_version;
                    api.replace(&name, &PostParams::default(), &crd)
                        .await
                        .expect("replacing CRD");
                }
            }
            let established = wait_for(Duration::from_secs(30), || {
                let api = api.clone();
                let name = name.clone();
                async move {
                    api.get(&name)
                        .await
                        .ok()
                        .and_then(|c| c.status)
                        .is_some_and(|s| {
                            s.conditions
                                .unwrap_or_default()
                                .iter()
                                .any(|c| c.type_ == "Established" && c.status == "True")
                        })
                }
            })
            .await;
            assert!(established, "CRD {name} was not Established within 30 s");
        }
    })
    .await;
}

/// Poll `check` until it is true (`true`) or `timeout` passes (`false`). A wait that timed out
/// is a failed expectation, so the answer must be used: assert on it, saying what was awaited.
#[must_use = "a wait that timed out must fail the test: assert on it, saying what was awaited"]
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
        let name = format!(
            "{prefix}-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let api: Api<Namespace> = Api::all(client.clone());
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        api.create(&PostParams::default(), &ns)
            .await
            .expect("creating namespace");
        Self { name, client }
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }

    /// Creates object `name` of kind `K` with `metadata` (annotations, labels) and `spec`,
    /// whose `providerConfigRef` is set to ProviderConfig `provider_config`.
    pub async fn create_managed<K>(
        &self,
        name: &str,
        metadata: serde_json::Value,
        spec: serde_json::Value,
        provider_config: &str,
    ) where
        K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + serde::Serialize
            + std::fmt::Debug,
    {
        let mut spec = spec;
        spec["providerConfigRef"] = json!({"name": provider_config});
        let mut meta = metadata;
        meta["name"] = json!(name);
        let obj: K = serde_json::from_value(json!({
            "apiVersion": K::api_version(&()), "kind": K::kind(&()),
            "metadata": meta, "spec": spec,
        }))
        .unwrap();
        self.api::<K>()
            .create(&PostParams::default(), &obj)
            .await
            .unwrap();
    }

    /// Merge-patches the spec of object `name` of kind `K`.
    pub async fn patch_spec<K>(&self, name: &str, spec: serde_json::Value)
    where
        K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        self.api::<K>()
            .patch(
                name,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(json!({"spec": spec})),
            )
            .await
            .unwrap();
    }

    /// Delete the namespace and the cluster-scoped ProviderConfig named after it (if any).
    pub async fn cleanup(self) {
        let configs: Api<stratus::api::ProviderConfig> = Api::all(self.client.clone());
        let _ = configs.delete(&self.name, &DeleteParams::default()).await;
        let api: Api<Namespace> = Api::all(self.client.clone());
        let _ = api.delete(&self.name, &DeleteParams::default()).await;
    }
}

/// Create a Secret with an API key and a ProviderConfig named after the namespace that points at
/// `endpoint`; returns the ProviderConfig name.
pub async fn provider_config(
    ns: &TestNamespace,
    endpoint: &str,
    api_key: &str,
    rps: Option<f64>,
) -> String {
    let secrets: Api<Secret> = ns.api();
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "strettch-credentials"},
        "stringData": {"apiKey": api_key},
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .expect("secret");
    create_provider_config(ns, endpoint, rps).await
}

/// Only the ProviderConfig (its Secret may come later).
pub async fn create_provider_config(
    ns: &TestNamespace,
    endpoint: &str,
    rps: Option<f64>,
) -> String {
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
    api.create(&PostParams::default(), &pc)
        .await
        .expect("provider config");
    ns.name.clone()
}

/// The operator as a child process watching one namespace.
pub struct Operator {
    child: Child,
    pub metrics_port: u16,
    pub log: PathBuf,
}

impl Operator {
    pub fn start(namespace: &str, extra: &[&str]) -> Self {
        Self::start_as(&kubeconfig_path(), namespace, extra)
    }

    /// Start with another identity's kubeconfig (the operator's own, for RBAC tests).
    pub fn start_as(kubeconfig: &std::path::Path, namespace: &str, extra: &[&str]) -> Self {
        let port = free_port();
        let log = std::env::temp_dir().join(format!("stratus-operator-{namespace}-{port}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_stratus"))
            .arg("run")
            .args(["--kubeconfig", kubeconfig.to_str().unwrap()])
            .args(["--namespace", namespace])
            .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
            .args(extra)
            .env(
                "RUST_LOG",
                std::env::var("STRATUS_TEST_LOG").unwrap_or_else(|_| "info,stratus=debug".into()),
            )
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out))
            .spawn()
            .expect("starting the operator");
        Self {
            child,
            metrics_port: port,
            log,
        }
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
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

use stratus::providers::strettch::api::Compute;
use stratus::providers::strettch::sim::{self, SimConfig, SimHandle};

/// Everything one operator test needs: a namespace, a sandbox, a ProviderConfig and the
/// operator process watching the namespace.
pub struct Env {
    pub ns: TestNamespace,
    pub sim: SimHandle,
    pub provider_config: String,
    pub operator: Operator,
    pub key: String,
}

impl Env {
    pub async fn start(prefix: &str) -> Self {
        Self::start_with(prefix, SimConfig::for_tests(&["test-key"]), &[]).await
    }

    pub async fn start_with(prefix: &str, mut config: SimConfig, operator_args: &[&str]) -> Self {
        let key = format!("key-{}", uuid::Uuid::new_v4().simple());
        config.api_keys = vec![key.clone()];
        let sim = sim::start(config, "127.0.0.1:0".parse().unwrap())
            .await
            .expect("sandbox");
        let ns = TestNamespace::new(prefix).await;
        let provider_config = provider_config(&ns, &sim.base_url(), &key, None).await;
        let operator = Operator::start(&ns.name, operator_args);
        Self {
            ns,
            sim,
            provider_config,
            operator,
            key,
        }
    }

    pub fn computes(&self) -> Api<Compute> {
        self.ns.api()
    }

    /// Apply a Compute built from `spec_overrides` merged into a valid default spec.
    pub async fn create_compute(
        &self,
        name: &str,
        for_provider: serde_json::Value,
        extra_spec: serde_json::Value,
        annotations: serde_json::Value,
    ) -> Compute {
        let mut fp = json!({
            "hostName": name, "image": "UBUNTU-24.04", "region": "KGL-1",
            "specification": "S-1C-1G", "publicKeys": ["ssh-ed25519 AAAA ops@example"], "withPublicIp": true
        });
        merge(&mut fp, for_provider);
        let mut spec =
            json!({"providerConfigRef": {"name": self.provider_config}, "forProvider": fp});
        merge(&mut spec, extra_spec);
        let obj: Compute = serde_json::from_value(json!({
            "apiVersion": "strettch.stratus.dev/v1alpha1", "kind": "Compute",
            "metadata": {"name": name, "annotations": annotations},
            "spec": spec,
        }))
        .unwrap();
        self.computes()
            .create(&PostParams::default(), &obj)
            .await
            .expect("create Compute")
    }

    pub async fn patch_spec(&self, name: &str, spec: serde_json::Value) {
        self.computes()
            .patch(
                name,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(json!({"spec": spec})),
            )
            .await
            .expect("patch spec");
    }

    pub async fn annotate(&self, name: &str, annotations: serde_json::Value) {
        self.computes()
            .patch(
                name,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(json!({"metadata": {"annotations": annotations}})),
            )
            .await
            .expect("annotate");
    }

    /// Wait until `check` holds for the Compute; panics with its last status otherwise.
    pub async fn wait_compute(
        &self,
        name: &str,
        timeout: Duration,
        what: &str,
        check: impl Fn(&Compute) -> bool,
    ) -> Compute {
        let api = self.computes();
        let deadline = Instant::now() + timeout;
        loop {
            let got = api.get_opt(name).await.expect("get Compute");
            if let Some(c) = &got
                && check(c)
            {
                return c.clone();
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out after {timeout:?} waiting for compute {name} to be {what}; last seen: {}",
                    serde_json::to_string_pretty(&got).unwrap()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    pub async fn wait_gone(&self, name: &str, timeout: Duration) {
        let api = self.computes();
        assert!(
            wait_for(timeout, || {
                let api = api.clone();
                async move { api.get_opt(name).await.unwrap().is_none() }
            })
            .await,
            "compute {name} was not deleted within {timeout:?}"
        );
    }

    pub async fn stop(self) {
        let Env {
            ns,
            sim,
            mut operator,
            ..
        } = self;
        operator.kill();
        // Remove finalizers so the namespace can go without an operator.
        strip_all_finalizers(&ns).await;
        ns.cleanup().await;
        sim.shutdown().await;
    }
}

/// Condition `type_` of a Compute has `status` (and, when given, `reason`).
pub fn condition(c: &Compute, type_: &str) -> Option<stratus::api::common::Condition> {
    c.status.as_ref().and_then(|s| {
        s.managed
            .conditions
            .iter()
            .find(|x| x.type_ == type_)
            .cloned()
    })
}

pub fn has_condition(c: &Compute, type_: &str, status: &str, reason: Option<&str>) -> bool {
    condition(c, type_).is_some_and(|x| x.status == status && reason.is_none_or(|r| x.reason == r))
}

pub fn is_ready(c: &Compute) -> bool {
    has_condition(c, "Ready", "True", None)
        && c.status
            .as_ref()
            .and_then(|s| s.managed.observed_generation)
            == c.metadata.generation
}

pub fn merge(a: &mut serde_json::Value, b: serde_json::Value) {
    match (a, b) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

/// Where the objects of every kind the operator serves (the kind registry) are served.
pub fn managed_resources() -> Vec<kube::core::ApiResource> {
    use kube::core::{ApiResource, GroupVersionKind};
    stratus::providers::kinds()
        .iter()
        .map(|kind| {
            let crd = kind.crd();
            let version = &crd.spec.versions[0].name;
            let gvk = GroupVersionKind::gvk(&crd.spec.group, version, &crd.spec.names.kind);
            ApiResource::from_gvk_with_plural(&gvk, &crd.spec.names.plural)
        })
        .collect()
}

/// Remove the finalizers of every object of every kind the operator serves (the kind registry)
/// in the namespace, so it can go without an operator.
pub async fn strip_all_finalizers(ns: &TestNamespace) {
    use kube::core::DynamicObject;
    for resource in managed_resources() {
        let api: Api<DynamicObject> = Api::namespaced_with(ns.client.clone(), &ns.name, &resource);
        if let Ok(list) = api.list(&Default::default()).await {
            for o in list {
                let _ = api
                    .patch(
                        o.metadata.name.as_deref().unwrap_or_default(),
                        &kube::api::PatchParams::default(),
                        &kube::api::Patch::Merge(json!({"metadata": {"finalizers": null}})),
                    )
                    .await;
            }
        }
    }
}

/// Remove the finalizers of every `K` in the namespace (for kinds outside the registry, such as
/// the engine tests' Widget).
pub async fn strip_finalizers<K>(ns: &TestNamespace)
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = ns.api();
    if let Ok(list) = api.list(&Default::default()).await {
        for o in list {
            let _ = api
                .patch(
                    o.meta().name.as_deref().unwrap_or_default(),
                    &kube::api::PatchParams::default(),
                    &kube::api::Patch::Merge(json!({"metadata": {"finalizers": null}})),
                )
                .await;
        }
    }
}

/// Condition `type_` of any managed object (read from its JSON form).
pub fn condition_of<K: serde::Serialize>(
    obj: &K,
    type_: &str,
) -> Option<stratus::api::common::Condition> {
    let v = serde_json::to_value(obj).ok()?;
    v["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .and_then(|c| serde_json::from_value(c.clone()).ok())
}

/// Any managed object has condition `type_` with `status` (and, when given, `reason`).
pub fn has_condition_of<K: serde::Serialize>(
    obj: &K,
    type_: &str,
    status: &str,
    reason: Option<&str>,
) -> bool {
    condition_of(obj, type_)
        .is_some_and(|x| x.status == status && reason.is_none_or(|r| x.reason == r))
}

/// Any managed object is Ready for its current generation.
pub fn is_ready_of<K: serde::Serialize + kube::Resource>(obj: &K) -> bool {
    let v = serde_json::to_value(obj).unwrap_or_default();
    has_condition_of(obj, "Ready", "True", None)
        && v["status"]["observedGeneration"].as_i64() == obj.meta().generation
}

/// Wait until `check` holds for object `name` of `api`; panics with its last state otherwise.
pub async fn wait_object<K>(
    api: &Api<K>,
    name: &str,
    timeout: Duration,
    what: &str,
    check: impl Fn(&K) -> bool,
) -> K
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    let deadline = Instant::now() + timeout;
    loop {
        let got = api.get_opt(name).await.expect("get object");
        if let Some(o) = &got
            && check(o)
        {
            return o.clone();
        }
        if Instant::now() > deadline {
            panic!(
                "timed out after {timeout:?} waiting for {} {name} to be {what}; last seen: {}",
                K::kind(&()),
                serde_json::to_string_pretty(&got).unwrap()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Wait until object `name` of `api` no longer exists.
pub async fn wait_object_gone<K>(api: &Api<K>, name: &str, timeout: Duration)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    assert!(
        wait_for(timeout, || {
            let api = api.clone();
            async move { api.get_opt(name).await.unwrap().is_none() }
        })
        .await,
        "{name} was not deleted within {timeout:?}"
    );
}
