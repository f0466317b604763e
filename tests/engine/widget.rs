//! `Widget`: a managed resource kind that exists only in these tests, shaped like every real
//! kind (providerConfigRef, deletionPolicy, managementPolicies, status with the managed fields
//! and atProvider), so the engine can be driven without any real provider.

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::PostParams;
use kube::{Api, Client, CustomResource, CustomResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use stratus::api::common::{
    ConnectionSecretSpec, DeletionPolicy, ManagedStatus, ManagementPolicy, ProviderConfigReference,
    default_management_policies,
};
use tokio::sync::OnceCell;

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "fake.stratus.dev",
    version = "v1alpha1",
    kind = "Widget",
    namespaced,
    status = "WidgetStatus"
)]
#[serde(rename_all = "camelCase")]
pub struct WidgetSpec {
    #[serde(default)]
    pub provider_config_ref: ProviderConfigReference,
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    #[serde(default = "default_management_policies")]
    pub management_policies: Vec<ManagementPolicy>,
    pub for_provider: WidgetParameters,
    /// `writeConnectionSecretToRef` and `connectionSecretRotation`: a widget comes with a
    /// credential the fake cloud shows once.
    #[serde(flatten)]
    pub connection: ConnectionSecretSpec,
}

/// The desired widget: a name the cloud cannot change once made, and a size it can.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WidgetParameters {
    pub name: String,
    pub size: i64,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WidgetStatus {
    #[serde(flatten)]
    pub managed: ManagedStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_provider: Option<WidgetObservation>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WidgetObservation {
    pub id: String,
    pub name: String,
    pub size: i64,
    pub state: String,
}

static INSTALLED: OnceCell<()> = OnceCell::const_new();

/// Install the Widget CRD (create, or replace a version left by an earlier run) and wait until
/// it is Established; once per test process.
pub async fn install(client: &Client) {
    INSTALLED
        .get_or_init(|| async {
            let api: Api<CustomResourceDefinition> = Api::all(client.clone());
            let mut crd = Widget::crd();
            let name = crd.metadata.name.clone().unwrap();
            match api.get_opt(&name).await.expect("reading the Widget CRD") {
                None => {
                    api.create(&PostParams::default(), &crd)
                        .await
                        .expect("creating the Widget CRD");
                }
                Some(existing) => {
                    crd.metadata.resource_version = existing.metadata.resource_version;
                    api.replace(&name, &PostParams::default(), &crd)
                        .await
                        .expect("replacing the Widget CRD");
                }
            }
            let established = crate::common::wait_for(Duration::from_secs(30), || {
                let api = api.clone();
                let name = name.clone();
                async move {
                    api.get(&name)
                        .await
                        .ok()
                        .and_then(|c| c.status)
                        .and_then(|s| s.conditions)
                        .unwrap_or_default()
                        .iter()
                        .any(|c| c.type_ == "Established" && c.status == "True")
                }
            })
            .await;
            assert!(
                established,
                "the Widget CRD was not Established within 30 s"
            );
        })
        .await;
}
