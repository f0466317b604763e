//! What an Application's spec points at, resolved: env values from Secrets, the code to
//! deploy (an archive, a Flux artifact, a snapshot) and the workspace.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};

use super::plan::{Code, OWNER_ENV};
use crate::engine::{Blocked, Invalid};
use crate::providers::vertra::api::application::{
    EnvVar, FluxSourceKind, FluxSourceReference, Source,
};
use crate::providers::vertra::code::sha256_hex;
use crate::providers::vertra::model::EnvWrite;

fn waiting(reason: &str, message: String) -> Blocked {
    Blocked::Waiting(Invalid::new(reason, message))
}

fn invalid(message: String) -> Blocked {
    Blocked::Invalid(Invalid::new("InvalidSpec", message))
}

/// The digest of the env spec and the resourceVersions of the Secrets it reads: it changes when
/// the spec or a Secret does, and says nothing about any value.
pub async fn env_digest(
    kube: &kube::Client,
    namespace: &str,
    env: &[EnvVar],
) -> Result<String, Blocked> {
    let secrets: Api<Secret> = Api::namespaced(kube.clone(), namespace);
    let mut versions = BTreeMap::new();
    for e in env {
        if let Some(from) = &e.value_from {
            let name = &from.secret_key_ref.name;
            if versions.contains_key(name) {
                continue;
            }
            let secret = read_secret(&secrets, name).await?;
            if !secret
                .data
                .as_ref()
                .is_some_and(|d| d.contains_key(&from.secret_key_ref.key))
            {
                return Err(waiting(
                    "WaitingForSecret",
                    format!(
                        "Secret {name} has no key {} (env {})",
                        from.secret_key_ref.key, e.name
                    ),
                ));
            }
            versions.insert(
                name.clone(),
                secret.metadata.resource_version.unwrap_or_default(),
            );
        }
    }
    let spec = serde_json::to_vec(&(env, &versions)).unwrap_or_default();
    Ok(format!("sha256:{}", sha256_hex(&spec)))
}

async fn read_secret(secrets: &Api<Secret>, name: &str) -> Result<Secret, Blocked> {
    match secrets.get_opt(name).await {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(waiting(
            "WaitingForSecret",
            format!("Secret {name} does not exist yet"),
        )),
        Err(kube::Error::Api(s)) if s.code == 403 => Err(Blocked::Invalid(Invalid::new(
            "SecretForbidden",
            format!(
                "the operator may not read Secret {name}: add this namespace to the chart's rbac.secretNamespaces"
            ),
        ))),
        Err(e) => Err(waiting(
            "WaitingForSecret",
            format!("Secret {name} cannot be read: {e}"),
        )),
    }
}

/// The env vars to write, values included, with the owner marker. Read when they are written,
/// never kept.
pub async fn env_values(
    kube: &kube::Client,
    namespace: &str,
    uid: &str,
    env: &[EnvVar],
) -> Result<Vec<EnvWrite>, Blocked> {
    let secrets: Api<Secret> = Api::namespaced(kube.clone(), namespace);
    let mut out = Vec::with_capacity(env.len() + 1);
    for e in env {
        let value = match (&e.value, &e.value_from) {
            (Some(v), _) => v.clone(),
            (None, Some(from)) => {
                let secret = read_secret(&secrets, &from.secret_key_ref.name).await?;
                let bytes = secret
                    .data
                    .as_ref()
                    .and_then(|d| d.get(&from.secret_key_ref.key))
                    .ok_or_else(|| {
                        waiting(
                            "WaitingForSecret",
                            format!(
                                "Secret {} has no key {} (env {})",
                                from.secret_key_ref.name, from.secret_key_ref.key, e.name
                            ),
                        )
                    })?;
                let text = String::from_utf8(bytes.0.clone()).map_err(|_| {
                    invalid(format!(
                        "the value of env {} (Secret {} key {}) is not UTF-8 text",
                        e.name, from.secret_key_ref.name, from.secret_key_ref.key
                    ))
                })?;
                if text.len() > super::plan::MAX_ENV_VALUE {
                    return Err(invalid(format!(
                        "the value of env {} (Secret {} key {}) is {} bytes; Vertra takes at most {}",
                        e.name,
                        from.secret_key_ref.name,
                        from.secret_key_ref.key,
                        text.len(),
                        super::plan::MAX_ENV_VALUE
                    )));
                }
                text
            }
            (None, None) => return Err(invalid(format!("env {} has no value", e.name))),
        };
        out.push(EnvWrite {
            key: e.name.clone(),
            value,
            note: None,
        });
    }
    out.push(EnvWrite {
        key: OWNER_ENV.into(),
        value: uid.to_string(),
        note: Some("set by stratus".into()),
    });
    Ok(out)
}

/// The Flux API of each source kind.
fn flux_resource(kind: FluxSourceKind) -> ApiResource {
    let (version, kind_name) = match kind {
        FluxSourceKind::GitRepository => ("v1", "GitRepository"),
        FluxSourceKind::OCIRepository => ("v1beta2", "OCIRepository"),
        FluxSourceKind::Bucket => ("v1beta2", "Bucket"),
    };
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "source.toolkit.fluxcd.io",
        version,
        kind_name,
    ))
}

/// The code the spec's source names now.
pub async fn code(kube: &kube::Client, namespace: &str, source: &Source) -> Result<Code, Blocked> {
    if let Some(a) = &source.archive {
        return Ok(Code::Archive {
            url: a.url.clone(),
            digest: a.sha256.to_ascii_lowercase(),
        });
    }
    if let Some(id) = &source.snapshot_ref {
        return Ok(Code::Snapshot { id: id.clone() });
    }
    let Some(r) = &source.flux_source_ref else {
        return Err(invalid(
            "spec.forProvider.source needs one of archive, snapshotRef and fluxSourceRef".into(),
        ));
    };
    flux_code(kube, namespace, r).await
}

async fn flux_code(
    kube: &kube::Client,
    namespace: &str,
    r: &FluxSourceReference,
) -> Result<Code, Blocked> {
    // Another namespace's source is another team's code: never deployed from here.
    let ns = r.namespace.as_deref().unwrap_or(namespace);
    if ns != namespace {
        return Err(invalid(format!(
            "spec.forProvider.source.fluxSourceRef names namespace {ns}: an Application deploys only sources of its own namespace ({namespace})"
        )));
    }
    let api: Api<DynamicObject> = Api::namespaced_with(kube.clone(), ns, &flux_resource(r.kind));
    let what = format!("{:?} {ns}/{}", r.kind, r.name);
    let object = match api.get_opt(&r.name).await {
        Ok(Some(o)) => o,
        Ok(None) => {
            return Err(waiting(
                "WaitingForSource",
                format!("{what} does not exist"),
            ));
        }
        Err(kube::Error::Api(s)) if s.code == 404 => {
            return Err(waiting(
                "WaitingForSource",
                format!("{what} cannot be found: is Flux's source-controller installed?"),
            ));
        }
        Err(e) => return Err(waiting("WaitingForSource", format!("{what}: {e}"))),
    };
    let artifact = &object.data["status"]["artifact"];
    let url = artifact["url"].as_str().unwrap_or_default();
    let digest = artifact["digest"].as_str().unwrap_or_default();
    if url.is_empty() || !digest.starts_with("sha256:") {
        return Err(waiting(
            "WaitingForSource",
            format!("{what} has no artifact with a sha256 digest yet"),
        ));
    }
    Ok(Code::Flux {
        url: url.to_string(),
        digest: digest.to_string(),
    })
}
