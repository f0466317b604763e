//! The Kubernetes side of the benchmark: a control plane (the one named by
//! STRATUS_TEST_KUBECONFIG, or our own from `scripts/control-plane`), the CRDs, one namespace per
//! section and size, Compute objects created in bulk, and a watch that tells when they are Ready.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Event as CoreEvent, Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use serde_json::{Value, json};
use stratus::api::ProviderConfig;
use stratus::api::common::{EXTERNAL_NAME, FINALIZER};
use stratus::engine::reconciler::CREATE_DIGEST;
use stratus::providers::strettch::api::Compute;
use stratus::providers::strettch::sim::{self, SimConfig, SimHandle};

pub struct Cluster {
    pub client: Client,
    pub kubeconfig: PathBuf,
    /// apiserver version, for the report.
    pub version: String,
    /// Where we started our own control plane (stopped on drop).
    own: Option<PathBuf>,
}

fn control_plane_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/control-plane")
}

impl Cluster {
    /// The cluster in STRATUS_TEST_KUBECONFIG, or a fresh local one.
    pub async fn connect() -> Cluster {
        let (kubeconfig, own) = match std::env::var("STRATUS_TEST_KUBECONFIG") {
            Ok(p) if !p.is_empty() => {
                eprintln!("bench: using the cluster in STRATUS_TEST_KUBECONFIG ({p})");
                (PathBuf::from(p), None)
            }
            _ => {
                let dir = std::env::temp_dir().join("stratus-bench-control-plane");
                eprintln!(
                    "bench: STRATUS_TEST_KUBECONFIG is not set; starting etcd + kube-apiserver in {}",
                    dir.display()
                );
                let status = Command::new(control_plane_script())
                    .arg("up")
                    .arg(&dir)
                    .status()
                    .expect("running scripts/control-plane");
                assert!(status.success(), "scripts/control-plane up failed");
                (dir.join("admin.kubeconfig"), Some(dir))
            }
        };
        let kc = kube::config::Kubeconfig::read_from(&kubeconfig)
            .unwrap_or_else(|e| panic!("reading {}: {e}", kubeconfig.display()));
        let mut config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .expect("kubeconfig usable");
        // Listing 10,000 objects takes a while on a small machine.
        config.read_timeout = Some(Duration::from_secs(300));
        let client = Client::try_from(config).expect("client");
        let version = client
            .apiserver_version()
            .await
            .map(|v| v.git_version)
            .unwrap_or_else(|e| format!("unknown ({e})"));
        let cluster = Cluster {
            client,
            kubeconfig,
            version,
            own,
        };
        cluster.install_crds().await;
        cluster
    }

    /// Create or replace the checked-in CRDs (plain create/replace works on every apiserver).
    async fn install_crds(&self) {
        let api: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/crds/stratus.yaml"))
                .expect("crds/stratus.yaml");
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let mut crd: CustomResourceDefinition =
                serde::Deserialize::deserialize(doc).expect("a CRD");
            let name = crd.metadata.name.clone().expect("CRD name");
            match api.get_opt(&name).await.expect("reading CRDs") {
                None => {
                    api.create(&PostParams::default(), &crd)
                        .await
                        .expect("creating CRD");
                }
                Some(existing) => {
                    crd.metadata.resource_version = existing.metadata.resource_version;
                    api.replace(&name, &PostParams::default(), &crd)
                        .await
                        .expect("replacing CRD");
                }
            }
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let established = api
                    .get(&name)
                    .await
                    .ok()
                    .and_then(|c| c.status)
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True");
                if established {
                    break;
                }
                assert!(Instant::now() < deadline, "CRD {name} not established");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }

    pub fn stop(&mut self) {
        if let Some(dir) = self.own.take() {
            eprintln!("bench: stopping the control plane in {}", dir.display());
            let _ = Command::new(control_plane_script())
                .arg("down")
                .arg(&dir)
                .status();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Set annotation `stratus.dev/bench-touch` to `value` on each named object, which the
/// operator's watch predicate treats as a change (a `stratus.dev/` annotation), forcing one
/// reconcile each; `concurrency` patches at once. Returns how long the patches took.
pub async fn touch<K>(
    api: &Api<K>,
    names: impl IntoIterator<Item = String>,
    value: &str,
    concurrency: usize,
) -> Duration
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let started = Instant::now();
    let patch = json!({"metadata": {"annotations": {"stratus.dev/bench-touch": value}}});
    futures::stream::iter(names)
        .map(|name| {
            let patch = &patch;
            async move {
                api.patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                    .await
                    .expect("touching an object");
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<()>>()
        .await;
    started.elapsed()
}

/// One namespace with a Secret and a ProviderConfig named after it.
pub struct BenchNs {
    pub name: String,
    pub client: Client,
}

impl BenchNs {
    pub async fn create(client: &Client, prefix: &str) -> BenchNs {
        let name = format!(
            "bench-{prefix}-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..6]
        );
        let api: Api<Namespace> = Api::all(client.clone());
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        api.create(&PostParams::default(), &ns)
            .await
            .expect("creating namespace");
        BenchNs {
            name,
            client: client.clone(),
        }
    }

    pub fn computes(&self) -> Api<Compute> {
        Api::namespaced(self.client.clone(), &self.name)
    }

    /// The ProviderConfig's name (the namespace's).
    pub fn provider_config(&self) -> &str {
        &self.name
    }

    /// A Secret with `api_key` and a Strettch ProviderConfig pointing at `endpoint`; `rps` None =
    /// the documented default rate.
    pub async fn install_provider(&self, endpoint: &str, api_key: &str, rps: Option<f64>) {
        let extra = match rps {
            Some(r) => json!({"rateLimit": {"requestsPerSecond": r}}),
            None => json!({}),
        };
        self.install("strettch", endpoint, api_key, extra).await;
    }

    /// A Secret `<provider>-credentials` with `api_key`, and the namespace's ProviderConfig for
    /// `provider` at `endpoint` with the fields of `extra` added to its spec.
    pub async fn install(&self, provider: &str, endpoint: &str, api_key: &str, extra: Value) {
        let secret_name = format!("{provider}-credentials");
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &self.name);
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": secret_name},
            "stringData": {"apiKey": api_key},
        }))
        .unwrap();
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .expect("creating the Secret");
        let mut spec = json!({
            "provider": provider,
            "endpoint": endpoint,
            "credentials": {"secretRef": {"namespace": self.name, "name": secret_name, "key": "apiKey"}},
        });
        if let (Some(spec), Value::Object(extra)) = (spec.as_object_mut(), extra) {
            spec.extend(extra);
        }
        let pc: ProviderConfig = serde_json::from_value(json!({
            "apiVersion": "stratus.dev/v1alpha1", "kind": "ProviderConfig",
            "metadata": {"name": self.name}, "spec": spec,
        }))
        .unwrap();
        let api: Api<ProviderConfig> = Api::all(self.client.clone());
        api.create(&PostParams::default(), &pc)
            .await
            .expect("creating the ProviderConfig");
    }

    /// Change the ProviderConfig's request rate (None = the documented default).
    pub async fn set_provider_rate(&self, rps: Option<f64>) {
        let api: Api<ProviderConfig> = Api::all(self.client.clone());
        let rate = rps.map(|r| json!({"requestsPerSecond": r}));
        api.patch(
            &self.name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"rateLimit": rate}})),
        )
        .await
        .expect("patching the ProviderConfig");
    }

    /// Create Compute objects `c-00000`.. with `concurrency` requests in flight. `adopt`: the
    /// sandbox ids of seeded computes to adopt (one per object), else new computes are created.
    /// Returns the time it took.
    pub async fn create_computes(
        &self,
        n: usize,
        adopt: Option<&[String]>,
        concurrency: usize,
    ) -> Duration {
        let names: Vec<String> = (0..n).map(compute_name).collect();
        self.create_named_computes(&names, adopt, concurrency).await
    }

    /// [`create_computes`](Self::create_computes) with these names.
    pub async fn create_named_computes(
        &self,
        names: &[String],
        adopt: Option<&[String]>,
        concurrency: usize,
    ) -> Duration {
        let started = Instant::now();
        let api = self.computes();
        let pc = self.provider_config().to_string();
        futures::stream::iter(0..names.len())
            .map(|i| {
                let api = api.clone();
                let obj = compute_object(&names[i], &pc, adopt.map(|ids| ids[i].as_str()));
                async move {
                    let mut tries = 0;
                    loop {
                        match api.create(&PostParams::default(), &obj).await {
                            Ok(_) => return,
                            Err(kube::Error::Api(s)) if s.code == 409 => return,
                            Err(e) if tries < 5 => {
                                tries += 1;
                                eprintln!("bench: create failed ({e}); retrying");
                                tokio::time::sleep(Duration::from_millis(500)).await;
                            }
                            Err(e) => panic!("creating a Compute: {e}"),
                        }
                    }
                }
            })
            .buffer_unordered(concurrency)
            .collect::<Vec<()>>()
            .await;
        started.elapsed()
    }

    /// Touch (see [`touch`]) the first `n` Computes.
    pub async fn touch_all(&self, n: usize, value: &str, concurrency: usize) -> Duration {
        touch(
            &self.computes(),
            (0..n).map(compute_name),
            value,
            concurrency,
        )
        .await
    }

    /// Delete everything this namespace holds. The operator must be stopped first: finalizers are
    /// stripped (no cloud deletes), then the objects, the ProviderConfig and the namespace go.
    /// (A bare apiserver has no namespace controller, so the namespace's contents are deleted
    /// explicitly rather than left to namespace deletion.)
    pub async fn cleanup(self) {
        let api = self.computes();
        let names: Vec<String> = list_computes(&api)
            .await
            .into_iter()
            .filter(|c| {
                c.metadata
                    .finalizers
                    .as_ref()
                    .is_some_and(|f| !f.is_empty())
            })
            .filter_map(|c| c.metadata.name)
            .collect();
        strip_finalizers(&api, names).await;
        let _ = api
            .delete_collection(&DeleteParams::default(), &ListParams::default())
            .await;
        let events: Api<CoreEvent> = Api::namespaced(self.client.clone(), &self.name);
        let _ = events
            .delete_collection(&DeleteParams::default(), &ListParams::default())
            .await;
        let pcs: Api<ProviderConfig> = Api::all(self.client.clone());
        let _ = pcs.delete(&self.name, &DeleteParams::default()).await;
        let nss: Api<Namespace> = Api::all(self.client.clone());
        let _ = nss.delete(&self.name, &DeleteParams::default()).await;
    }
}

/// Removes the finalizers of objects `names` of `api` (32 patches in flight), so they can be
/// deleted without an operator.
pub async fn strip_finalizers<K>(api: &Api<K>, names: Vec<String>)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    K::DynamicType: Default,
{
    futures::stream::iter(names)
        .map(|name| {
            let api = api.clone();
            async move {
                let _ = api
                    .patch(
                        &name,
                        &PatchParams::default(),
                        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
                    )
                    .await;
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<()>>()
        .await;
}

/// A fresh API key and a Strettch sandbox on loopback that knows it (2 requests/s, 200 ms
/// lifecycles), changed by `configure` first.
pub async fn strettch_sandbox(configure: impl FnOnce(&mut SimConfig)) -> (String, SimHandle) {
    let key = format!("sk-bench-{}", uuid::Uuid::new_v4().simple());
    let mut config = SimConfig::for_tests(&[&key]);
    configure(&mut config);
    let sandbox = sim::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("sandbox");
    (key, sandbox)
}

pub fn compute_name(i: usize) -> String {
    format!("c-{i:05}")
}

/// A valid Compute; with `external_id` it adopts that sandbox compute (seeded computes are
/// `seed-ID`, UBUNTU-24.04, KGL-1, S-1C-1G, no tags), else it asks for a new one.
pub fn compute_object(name: &str, provider_config: &str, external_id: Option<&str>) -> Compute {
    let host = match external_id {
        Some(id) => format!("seed-{id}"),
        None => name.to_string(),
    };
    let mut annotations = serde_json::Map::new();
    if let Some(id) = external_id {
        annotations.insert(EXTERNAL_NAME.into(), id.into());
    }
    serde_json::from_value(json!({
        "apiVersion": "strettch.stratus.dev/v1alpha1", "kind": "Compute",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {
            "providerConfigRef": {"name": provider_config},
            "forProvider": {
                "hostName": host, "image": "UBUNTU-24.04", "region": "KGL-1",
                "specification": "S-1C-1G", "publicKeys": ["ssh-ed25519 AAAA bench@example"],
                "withPublicIp": true
            }
        }
    }))
    .expect("a Compute")
}

/// Every Compute in the namespace, in pages of 500.
pub async fn list_computes(api: &Api<Compute>) -> Vec<Compute> {
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut lp = ListParams::default().limit(500);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = api.list(&lp).await.expect("listing Computes");
        all.extend(page.items);
        match page.metadata.continue_ {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => return all,
        }
    }
}

/// Ready=True for the current generation (what `kubectl wait --for=condition=Ready` sees).
pub fn is_ready(c: &Compute) -> bool {
    c.status.as_ref().is_some_and(|s| {
        s.managed.observed_generation == c.metadata.generation
            && s.managed
                .conditions
                .iter()
                .any(|x| x.type_ == "Ready" && x.status == "True")
    })
}

/// Ready, and the operator's first-pass writes (finalizer, create digest) are done.
pub fn is_settled(c: &Compute) -> bool {
    is_ready(c)
        && c.metadata
            .finalizers
            .as_ref()
            .is_some_and(|f| f.iter().any(|x| x == FINALIZER))
        && c.metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(CREATE_DIGEST))
}

/// A watch of the namespace's Computes, kept in a local store: readiness checks cost the
/// apiserver nothing, and the number of change events counts the writes made to the objects.
pub struct Watch {
    pub store: Store<Compute>,
    pub events: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Watch {
    pub async fn start(api: Api<Compute>) -> Watch {
        let (store, writer) = reflector::store();
        let events = Arc::new(AtomicU64::new(0));
        let counted = events.clone();
        let stream = watcher(api, watcher::Config::default().any_semantic())
            .default_backoff()
            .reflect(writer);
        let task = tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            loop {
                match stream.try_next().await {
                    Ok(Some(watcher::Event::Apply(_) | watcher::Event::Delete(_))) => {
                        counted.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => return,
                    Err(e) => eprintln!("bench: watch error: {e}"),
                }
            }
        });
        store
            .wait_until_ready()
            .await
            .expect("the bench's watch syncs");
        Watch {
            store,
            events,
            task,
        }
    }

    pub fn events(&self) -> u64 {
        self.events.load(Ordering::Relaxed)
    }

    pub fn count(&self, pred: impl Fn(&Compute) -> bool) -> usize {
        self.store.state().iter().filter(|c| pred(c)).count()
    }

    /// Wait until `pred` holds for `n` objects; the time it happened, or None on timeout (with
    /// the count reached).
    pub async fn wait_for(
        &self,
        n: usize,
        pred: impl Fn(&Compute) -> bool,
        timeout: Duration,
        poll: Duration,
    ) -> Result<Instant, usize> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.count(&pred);
            if got >= n {
                return Ok(Instant::now());
            }
            if Instant::now() > deadline {
                return Err(got);
            }
            tokio::time::sleep(poll).await;
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}
