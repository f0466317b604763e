//! The CloudAPI end-to-end harness: a namespace, the CloudAPI sandbox in one dialect, a
//! ProviderConfig (provider: cloudapi) and the operator.

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use stratus::providers::cloudapi::sim::{self, CloudApiSimConfig, CloudApiSimHandle, Dialect};

use std::time::Duration;

use stratus::providers::cloudapi::api::Release;
use stratus::providers::cloudapi::model::ProjectCreate;

use super::{Operator, TestNamespace, is_ready_of, wait_object};

/// How long the CloudAPI tests wait for a state.
pub const T: Duration = Duration::from_secs(60);

/// The operator flags every CloudAPI test runs with: a short create-settle window and rotation
/// grace, and a quick transitional poll (builds take a fraction of a second here).
pub const OPERATOR_ARGS: &[&str] = &["--create-settle", "5s", "--rotation-grace", "2s"];

/// The dashboard session token the sandbox accepts (and, with `session: true`, the
/// ProviderConfig names).
pub const SESSION_TOKEN: &str = "dash_session_0123456789";

/// A namespace, the CloudAPI sandbox, a ProviderConfig (provider: cloudapi) and the operator.
pub struct Env {
    pub ns: TestNamespace,
    pub sim: CloudApiSimHandle,
    pub dialect: Dialect,
    /// The API key the ProviderConfig's Secret holds.
    pub key: String,
    pub operator: Operator,
}

/// How a test wants its environment.
pub struct Setup {
    pub dialect: Dialect,
    /// Name the session token in spec.cloudapi.sessionTokenSecretRef.
    pub session: bool,
    pub operator_args: &'static [&'static str],
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            dialect: Dialect::Cloudapi,
            session: true,
            operator_args: OPERATOR_ARGS,
        }
    }
}

impl Env {
    pub async fn start(prefix: &str, dialect: Dialect) -> Self {
        Self::start_with(
            prefix,
            Setup {
                dialect,
                ..Default::default()
            },
            |_| {},
        )
        .await
    }

    pub async fn start_with(
        prefix: &str,
        setup: Setup,
        tune: impl FnOnce(&mut CloudApiSimConfig),
    ) -> Self {
        let key = format!("sk_test_{}", uuid::Uuid::new_v4().simple());
        let mut config = CloudApiSimConfig::for_tests(setup.dialect, &[key.as_str()]);
        config.session_tokens.push(SESSION_TOKEN.into());
        tune(&mut config);
        let sim = sim::start(config, "127.0.0.1:0".parse().unwrap())
            .await
            .expect("sandbox");
        let ns = TestNamespace::new(prefix).await;
        let secrets: Api<Secret> = ns.api();
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": "cloudapi-credentials"},
            "stringData": {"apiKey": key, "session": SESSION_TOKEN},
        }))
        .unwrap();
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
        let mut cloudapi = json!({
            "dialect": match setup.dialect { Dialect::Cloudapi => "cloudapi", Dialect::Cloudplatform => "cloudplatform" },
        });
        if setup.dialect == Dialect::Cloudplatform {
            cloudapi["workspace"] = json!("default");
        }
        if setup.session {
            cloudapi["sessionTokenSecretRef"] =
                json!({"namespace": ns.name, "name": "cloudapi-credentials", "key": "session"});
        }
        let pc: stratus::api::ProviderConfig = serde_json::from_value(json!({
            "apiVersion": "stratus.dev/v1alpha1", "kind": "ProviderConfig",
            "metadata": {"name": ns.name},
            "spec": {
                "provider": "cloudapi",
                "endpoint": sim.root_url(),
                "credentials": {"secretRef": {"namespace": ns.name, "name": "cloudapi-credentials", "key": "apiKey"}},
                "cloudapi": cloudapi,
            },
        }))
        .unwrap();
        let configs: Api<stratus::api::ProviderConfig> = Api::all(ns.client.clone());
        configs.create(&PostParams::default(), &pc).await.unwrap();
        let operator = Operator::start(&ns.name, setup.operator_args);
        Env {
            ns,
            sim,
            dialect: setup.dialect,
            key,
            operator,
        }
    }

    /// Creates a namespaced object of kind `K` whose spec is `spec` plus this env's
    /// ProviderConfig, with extra `metadata` (annotations, labels).
    pub async fn apply_with<K>(
        &self,
        name: &str,
        metadata: serde_json::Value,
        spec: serde_json::Value,
    ) where
        K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + serde::Serialize
            + std::fmt::Debug,
    {
        self.ns
            .create_managed::<K>(name, metadata, spec, &self.ns.name)
            .await
    }

    pub async fn apply<K>(&self, name: &str, spec: serde_json::Value)
    where
        K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + serde::Serialize
            + std::fmt::Debug,
    {
        self.apply_with::<K>(name, json!({}), spec).await
    }

    /// Merge-patches the object's spec.
    pub async fn patch<K>(&self, name: &str, spec: serde_json::Value)
    where
        K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        self.ns.patch_spec::<K>(name, spec).await
    }

    /// An API client of the sandbox acting as someone outside Kubernetes (same key).
    pub fn outside(&self) -> stratus::providers::cloudapi::client::CloudApiClient {
        use stratus::api::provider_config::CloudApiDialect;
        let dialect = match self.dialect {
            Dialect::Cloudapi => CloudApiDialect::CloudApi,
            Dialect::Cloudplatform => CloudApiDialect::CloudPlatform,
        };
        stratus::providers::cloudapi::client::CloudApiClient::new(
            dialect,
            &self.sim.root_url(),
            stratus::cloud::ApiKey::new(self.key.clone()),
            stratus::cloud::throttle::Policy::new(Vec::new(), None),
        )
        .unwrap()
    }

    /// Kills the operator and starts a new one with the same flags as [`Env::start`].
    pub fn restart_operator(&mut self) {
        self.operator.kill();
        self.operator = Operator::start(&self.ns.name, OPERATOR_ARGS);
    }

    /// Everything the operator has logged so far.
    pub fn operator_log(&self) -> String {
        std::fs::read_to_string(&self.operator.log).unwrap_or_default()
    }

    pub async fn stop(mut self) {
        self.operator.kill();
        super::strip_all_finalizers(&self.ns).await;
        self.ns.cleanup().await;
        self.sim.shutdown().await;
    }
}

/// The text of `key` in a Secret's data, empty if absent.
pub fn secret_text(s: &Secret, key: &str) -> String {
    s.data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| String::from_utf8(b.0.clone()).unwrap())
        .unwrap_or_default()
}

pub fn at_provider<K: serde::Serialize>(obj: &K) -> serde_json::Value {
    serde_json::to_value(obj).unwrap()["status"]["atProvider"].clone()
}

pub fn id_of<K: serde::Serialize>(obj: &K) -> String {
    at_provider(obj)["id"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

pub fn live_commit(r: &Release) -> String {
    at_provider(r)["current"]["commit"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// A project made in the sandbox directly (outside Kubernetes); an unanswered attempt (an
/// injected fault) is replayed under the same Idempotency-Key.
pub async fn outside_project(env: &Env, name: &str) -> String {
    let region = (env.dialect == Dialect::Cloudapi).then(|| "us-east-1".to_string());
    let body = ProjectCreate {
        name: name.into(),
        region,
    };
    let key = uuid::Uuid::new_v4();
    let client = env.outside();
    let mut tries = 0;
    loop {
        match client.create_project(&body, key).await {
            Ok(p) => return p.id,
            Err(e) if tries < 10 => {
                tries += 1;
                eprintln!("outside create of {name} unanswered ({e}); replaying");
            }
            Err(e) => panic!("{e}"),
        }
    }
}

/// Waits for a Release to be Ready with `commit` live.
pub async fn wait_live(env: &Env, name: &str, commit: &str) -> Release {
    let releases: Api<Release> = env.ns.api();
    wait_object(&releases, name, T, &format!("live at {commit}"), |r| {
        is_ready_of(r) && live_commit(r) == commit
    })
    .await
}
