//! The Vertra end-to-end harness: a namespace, the Vertra sandbox, a ProviderConfig
//! (provider: vertra) and the operator, plus the code archives apps deploy.

use std::io::Write;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;
use stratus::providers::vertra::sim::{self, VertraSimConfig, VertraSimHandle};

use super::{Operator, TestNamespace};

/// The operator flags every Vertra test runs with: a short create-settle window (how long an
/// unanswered create is looked for before it is sent again) and rotation grace.
pub const OPERATOR_ARGS: &[&str] = &["--create-settle", "5s", "--rotation-grace", "2s"];

/// A namespace, the Vertra sandbox, a ProviderConfig (provider: vertra) and the operator.
pub struct Env {
    pub ns: TestNamespace,
    pub sim: VertraSimHandle,
    /// The API key the ProviderConfig's Secret holds.
    pub key: String,
    pub operator: Operator,
}

impl Env {
    pub async fn start(prefix: &str) -> Self {
        Self::start_with(prefix, |_| {}, OPERATOR_ARGS).await
    }

    /// A plan with deploys to spare on both sides (3,600 per hour): a new operator's first
    /// deploy then waits one second, not the minute the default 60 per hour gives (it cannot
    /// know what was spent before it started).
    pub async fn start_with(
        prefix: &str,
        tune: impl FnOnce(&mut VertraSimConfig),
        operator_args: &[&str],
    ) -> Self {
        let tune = |c: &mut VertraSimConfig| {
            c.deploys_per_hour = Some(3600);
            tune(c);
        };
        Self::start_configured(prefix, tune, json!({"deploysPerHour": 3600}), operator_args).await
    }

    /// As [`Env::start_with`], with `vertra` as the ProviderConfig's `spec.vertra` (null: none).
    pub async fn start_configured(
        prefix: &str,
        tune: impl FnOnce(&mut VertraSimConfig),
        vertra: serde_json::Value,
        operator_args: &[&str],
    ) -> Self {
        let key = format!("vc_live_{}", uuid::Uuid::new_v4().simple());
        let mut config = VertraSimConfig::for_tests(&[key.as_str()]);
        tune(&mut config);
        let sim = sim::start(config, "127.0.0.1:0".parse().unwrap())
            .await
            .expect("sandbox");
        let ns = TestNamespace::new(prefix).await;
        let secrets: Api<Secret> = ns.api();
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": "vertra-credentials"},
            "stringData": {"apiKey": key},
        }))
        .unwrap();
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
        let configs: Api<stratus::api::ProviderConfig> = Api::all(ns.client.clone());
        let mut spec = json!({
            "provider": "vertra",
            "endpoint": sim.root_url(),
            "credentials": {"secretRef": {"namespace": ns.name, "name": "vertra-credentials", "key": "apiKey"}},
        });
        if !vertra.is_null() {
            spec["vertra"] = vertra;
        }
        let pc: stratus::api::ProviderConfig = serde_json::from_value(json!({
            "apiVersion": "stratus.dev/v1alpha1", "kind": "ProviderConfig",
            "metadata": {"name": ns.name}, "spec": spec,
        }))
        .unwrap();
        configs.create(&PostParams::default(), &pc).await.unwrap();
        let operator = Operator::start(&ns.name, operator_args);
        Env {
            ns,
            sim,
            key,
            operator,
        }
    }

    /// Creates a namespaced object of kind `K` whose spec is `spec` plus this env's
    /// ProviderConfig.
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

    /// As [`Env::apply`], with extra `metadata` (annotations, labels).
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

    /// Creates (or replaces the data of) an Opaque Secret in the namespace.
    pub async fn secret(&self, name: &str, data: serde_json::Value) {
        let secrets: Api<Secret> = self.ns.api();
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": name}, "stringData": data,
        }))
        .unwrap();
        secrets
            .patch(
                name,
                &PatchParams::apply("stratus-tests").force(),
                &Patch::Apply(&secret),
            )
            .await
            .unwrap();
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

/// A ZIP with `index.js` (and `extra` in it), at least Vertra's 100 bytes.
pub fn zip(extra: &str) -> Vec<u8> {
    zip_files(&[(
        "index.js",
        &format!("console.log({:?});\n{}", extra, "//".repeat(80)),
    )])
}

/// A ZIP of `files` (name, text).
pub fn zip_files(files: &[(&str, &str)]) -> Vec<u8> {
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    for (name, text) in files {
        out.start_file(*name, options).unwrap();
        out.write_all(text.as_bytes()).unwrap();
    }
    out.finish().unwrap().into_inner()
}

/// Serves `files` (path → bytes) over plain HTTP on loopback; returns the base URL.
pub async fn serve(files: Vec<(&'static str, Vec<u8>)>) -> String {
    let mut app = axum::Router::new();
    for (path, bytes) in files {
        app = app.route(
            path,
            axum::routing::get(move || async move { bytes.clone() }),
        );
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}
