//! What ApiKey and Token share: the values an object has issued (from its connection record,
//! never a value), the Idempotency-Key of a replacement, and the dashboard session token that
//! creating keys needs.

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Resource, ResourceExt};

use crate::api::ProviderConfig;
use crate::api::common::{CONNECTION, ConnectionSecretStatus};
use crate::cloud::idempotency::idempotency_key;
use crate::cloud::{ApiKey, CloudError, ErrorClass};
use crate::engine::Invalid;

/// The object's connection record: the `stratus.dev/connection` annotation (the source of
/// truth), else `status.connectionSecret`.
pub fn connection_record(
    annotations: &std::collections::BTreeMap<String, String>,
    status: Option<&ConnectionSecretStatus>,
) -> Option<ConnectionSecretStatus> {
    annotations
        .get(CONNECTION)
        .and_then(|a| serde_json::from_str(a).ok())
        .or_else(|| status.cloned())
}

/// Every value the object is known to have issued: the first (its external id), the one in
/// the Secret, the previous one and those retired.
pub fn issued_versions(external_id: &str, record: Option<&ConnectionSecretStatus>) -> Vec<String> {
    let mut all = vec![external_id.to_string()];
    if let Some(r) = record {
        all.extend(r.version.iter().cloned());
        all.extend(r.previous_version.iter().cloned());
        all.extend(r.retired.iter().cloned());
        all.extend(r.unwritten.iter().cloned());
    }
    all.retain(|v| !v.is_empty());
    all.sort();
    all.dedup();
    all
}

/// The Idempotency-Key of a replacement: derived from the object, what it is for, the rotation
/// it answers and the value in the Secret when it was asked for. A replacement repeated after a
/// crash (before the Secret recorded its answer) is answered with the same value, so no value
/// is issued and lost; the next rotation, or a replacement of that value, gets a key of its own.
pub fn replace_key(
    uid: &str,
    purpose: &str,
    rotation: Option<&str>,
    current: Option<&str>,
) -> uuid::Uuid {
    let purpose = serde_json::json!([purpose, rotation, current]).to_string();
    idempotency_key(uid, &purpose, 0)
}

/// Why a key cannot be created: a human must give the operator the session token.
pub fn session_missing(config: &str, why: &str) -> Invalid {
    Invalid::new(
        "SessionTokenMissing",
        format!(
            "creating an API key needs a CloudAPI dashboard session token (the API refuses API keys there), and {why}: store the token in a Secret and name it in ProviderConfig {config}'s spec.cloudapi.sessionTokenSecretRef"
        ),
    )
}

/// The dashboard session token of ProviderConfig `config`, read from the Secret its
/// `spec.cloudapi.sessionTokenSecretRef` names. `Err`: what the user must do.
pub async fn session_token(kube: &kube::Client, config: &str) -> Result<ApiKey, Invalid> {
    let pc = Api::<ProviderConfig>::all(kube.clone())
        .get_opt(config)
        .await
        .map_err(|e| session_missing(config, &format!("the ProviderConfig cannot be read ({e})")))?
        .ok_or_else(|| session_missing(config, "the ProviderConfig does not exist"))?;
    let Some(sel) = pc
        .spec
        .cloudapi
        .as_ref()
        .and_then(|c| c.session_token_secret_ref.clone())
    else {
        return Err(session_missing(
            config,
            "spec.cloudapi.sessionTokenSecretRef is not set",
        ));
    };
    let secret = Api::<Secret>::namespaced(kube.clone(), &sel.namespace)
        .get_opt(&sel.name)
        .await
        .map_err(|e| {
            session_missing(
                config,
                &format!("Secret {}/{} cannot be read ({e})", sel.namespace, sel.name),
            )
        })?
        .ok_or_else(|| {
            session_missing(
                config,
                &format!("Secret {}/{} does not exist", sel.namespace, sel.name),
            )
        })?;
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(&sel.key))
        .map(|b| String::from_utf8_lossy(&b.0).trim().to_string())
        .filter(|v| !v.is_empty())
        .map(ApiKey::new)
        .ok_or_else(|| {
            session_missing(
                config,
                &format!(
                    "Secret {}/{} has no key {:?}",
                    sel.namespace, sel.name, sel.key
                ),
            )
        })
}

/// [`session_token`] as a cloud error, for calls made after the object passed `desired`
/// (a rotation of an existing key): it needs a human.
pub fn needs_session(invalid: Invalid) -> CloudError {
    CloudError::Api {
        status: 403,
        code: invalid.reason,
        message: invalid.message,
        request_id: None,
        retry_after: None,
        class: ErrorClass::NeedsHuman,
    }
}

/// The namespace and name of `obj`, for messages.
pub fn object_name<K: Resource>(obj: &K) -> String {
    format!(
        "{}/{}",
        obj.meta().namespace.as_deref().unwrap_or_default(),
        obj.name_any()
    )
}
