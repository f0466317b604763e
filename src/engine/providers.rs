//! Resolve a ProviderConfig and its Secret into a connected cloud handle, cached so that every
//! resource using the same configuration shares one client, one throttle and one snapshot.
//!
//! Each (re)resolution reports the ProviderConfig's current limits and budget group to its key's
//! throttle (the handle is rebuilt when endpoint, key, rateLimit, rateLimits or budgetGroup
//! change, and connecting registers them under the ProviderConfig's name, see
//! [`ThrottleRegistry::throttle_for`]). A ProviderConfig found gone is dropped from the cache and
//! from its key's and group's users, so limits follow the ProviderConfigs that use them now.
//!
//! [`ThrottleRegistry::throttle_for`]: crate::cloud::throttle::ThrottleRegistry::throttle_for

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use parking_lot::Mutex;

use crate::api::provider_config::{ProviderConfig, ProviderConfigSpec, Usage};
use crate::cloud::ApiKey;
use crate::cloud::throttle::KeyThrottle;

/// Why a ProviderConfig could not be used. Each says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error(
        "ProviderConfig {0:?} not found: create it or set spec.providerConfigRef.name to an existing one"
    )]
    ProviderConfigNotFound(String),
    #[error(
        "Secret {namespace}/{name} named by ProviderConfig {config:?} not found: create it with the API key under key {key:?}"
    )]
    SecretNotFound {
        config: String,
        namespace: String,
        name: String,
        key: String,
    },
    #[error(
        "Secret {namespace}/{name} has no key {key:?} (named by ProviderConfig {config:?}): add the API key under that key"
    )]
    SecretKeyMissing {
        config: String,
        namespace: String,
        name: String,
        key: String,
    },
    #[error(
        "the operator may not read Secret {namespace}/{name} (named by ProviderConfig {config:?}): it reads API keys only in the namespaces its role grants; with the Helm chart, add {namespace:?} to rbac.secretNamespaces, or move the Secret to the operator's namespace"
    )]
    SecretForbidden {
        config: String,
        namespace: String,
        name: String,
    },
    #[error("ProviderConfig {config:?} is for provider {provider}, which cannot manage this kind")]
    WrongProvider { config: String, provider: String },
    #[error("ProviderConfig {config:?} is invalid: {message}")]
    Invalid { config: String, message: String },
    #[error("reading ProviderConfig {config:?}: {source}")]
    Kube {
        config: String,
        #[source]
        source: kube::Error,
    },
}

impl ProviderError {
    /// PascalCase reason for conditions and events.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::ProviderConfigNotFound(_) => "ProviderConfigNotFound",
            Self::SecretNotFound { .. } => "SecretNotFound",
            Self::SecretKeyMissing { .. } => "SecretKeyMissing",
            Self::SecretForbidden { .. } => "SecretForbidden",
            Self::WrongProvider { .. } => "WrongProvider",
            Self::Invalid { .. } => "InvalidProviderConfig",
            Self::Kube { .. } => "KubernetesError",
        }
    }
}

/// A cloud handle built from a ProviderConfig.
pub trait Connect: Send + Sync + Sized + 'static {
    /// Build the handle of ProviderConfig `config_name`. The handle's key throttle must be
    /// obtained with [`ThrottleRegistry::throttle_for`] under `config_name`, with the limits
    /// of `ProviderConfigSpec::throttle_policy` (the provider passing its documented defaults),
    /// so that the key's limits and budget group follow the configuration.
    ///
    /// [`ThrottleRegistry::throttle_for`]: crate::cloud::throttle::ThrottleRegistry::throttle_for
    fn connect(
        config_name: &str,
        spec: &ProviderConfigSpec,
        key: ApiKey,
    ) -> Result<Self, ProviderError>;

    /// How this handle reads its account's usage, for clouds that report it: the operator
    /// calls it every few minutes at routine priority and writes the answer to the
    /// ProviderConfig's `status.usage` and the `stratus_cloud_usage_*` metrics (see
    /// [`super::usage`]). `None` (the default): the cloud reports no usage.
    fn usage_probe(self: &Arc<Self>) -> Option<UsageProbe> {
        None
    }

    /// The key throttle the handle's requests go through: the engine asks it for a create's
    /// turn ([`KeyThrottle::admit_create`]) before it records the attempt, so creates waiting
    /// for the key do not hold the reconcile workers. `None` (the default): creates go at once.
    fn throttle(&self) -> Option<&Arc<KeyThrottle>> {
        None
    }
}

/// Reads an account's usage through the handle's client (and so through its key's throttle).
pub type UsageProbe = Arc<
    dyn Fn() -> futures::future::BoxFuture<'static, Result<Usage, crate::cloud::CloudError>>
        + Send
        + Sync,
>;

struct Cached {
    /// endpoint, key fingerprint, limits and budget group: a change of any builds a new handle.
    identity: String,
    handle: Arc<dyn Any + Send + Sync>,
    usage: Option<UsageProbe>,
    account: Account,
    checked: Instant,
}

/// Which endpoint and key a ProviderConfig reaches now, as a digest (never the key itself):
/// the engine records a salted fingerprint of it on what it creates, so a resource that
/// disappears after the ProviderConfig was pointed at another account is not re-created there.
#[derive(Clone, PartialEq, Eq)]
pub struct Account([u8; 32]);

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Account(..)")
    }
}

impl Account {
    pub fn new(endpoint: &str, key: &ApiKey) -> Self {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"stratus/account/v1");
        for part in [
            endpoint.trim_end_matches('/').as_bytes(),
            key.expose().as_bytes(),
        ] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
        Self(h.finalize().into())
    }

    /// The fingerprint recorded on one object: salted with its UID, so equal accounts cannot be
    /// correlated across objects and nothing about the key can be guessed from it.
    pub fn fingerprint_for(&self, uid: &str) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"stratus/created-through/v1");
        h.update((uid.len() as u64).to_be_bytes());
        h.update(uid.as_bytes());
        h.update(self.0);
        h.finalize()
            .iter()
            .take(12)
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// ProviderConfig resolution with a short cache.
pub struct Providers {
    kube: kube::Client,
    cache: Mutex<HashMap<(std::any::TypeId, String), Cached>>,
    recheck: Duration,
}

impl Providers {
    pub fn new(kube: kube::Client) -> Self {
        Self {
            kube,
            cache: Mutex::new(HashMap::new()),
            recheck: Duration::from_secs(10),
        }
    }

    /// The cloud handle for ProviderConfig `name`.
    pub async fn resolve<C: Connect>(&self, name: &str) -> Result<Arc<C>, ProviderError> {
        self.resolve_account(name).await.map(|(c, _)| c)
    }

    /// The cloud handle for ProviderConfig `name`, and which account it reaches.
    pub async fn resolve_account<C: Connect>(
        &self,
        name: &str,
    ) -> Result<(Arc<C>, Account), ProviderError> {
        let type_key = (std::any::TypeId::of::<C>(), name.to_string());
        if let Some(c) = self.cache.lock().get(&type_key)
            && c.checked.elapsed() < self.recheck
            && let Ok(h) = c.handle.clone().downcast::<C>()
        {
            return Ok((h, c.account.clone()));
        }
        let (spec, key) = match self.read(name).await {
            Ok(found) => found,
            // The config reaches no key now: its rate must not keep slowing the key it used.
            Err(
                e @ (ProviderError::ProviderConfigNotFound(_)
                | ProviderError::SecretNotFound { .. }
                | ProviderError::SecretKeyMissing { .. }
                | ProviderError::SecretForbidden { .. }),
            ) => {
                self.forget(name);
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        spec.check_sections()
            .map_err(|message| ProviderError::Invalid {
                config: name.into(),
                message,
            })?;
        let identity = format!(
            "{}|{}|{:?}|{:?}|{:?}|{}|{:?}|{:?}",
            spec.endpoint.as_deref().unwrap_or(""),
            key.fingerprint(),
            spec.rate_limit.as_ref().map(|r| r.requests_per_second),
            spec.rate_limits,
            spec.budget_group,
            spec.allow_insecure_endpoint,
            spec.vertra,
            spec.cloudapi,
        );
        let account = Account::new(spec.endpoint.as_deref().unwrap_or(""), &key);
        let mut cache = self.cache.lock();
        if let Some(c) = cache.get_mut(&type_key)
            && c.identity == identity
            && let Ok(h) = c.handle.clone().downcast::<C>()
        {
            c.checked = Instant::now();
            return Ok((h, c.account.clone()));
        }
        let handle = Arc::new(C::connect(name, &spec, key)?);
        cache.insert(
            type_key,
            Cached {
                identity,
                usage: handle.usage_probe(),
                handle: handle.clone(),
                account: account.clone(),
                checked: Instant::now(),
            },
        );
        Ok((handle, account))
    }

    /// Re-read the ProviderConfigs nothing resolved within the recheck interval, and forget
    /// those that are gone or reach no key: one deleted after its last object would otherwise
    /// keep its rate on its key (the operator may only `get` ProviderConfigs, not watch them).
    /// The operator calls it every minute.
    pub async fn sweep(&self) {
        let mut idle: Vec<String> = self
            .cache
            .lock()
            .iter()
            .filter(|(_, c)| c.checked.elapsed() >= self.recheck)
            .map(|((_, name), _)| name.clone())
            .collect();
        idle.sort();
        idle.dedup();
        for name in idle {
            // Still there (a change is picked up at the next resolve), or the API server did
            // not answer: kept.
            if let Err(
                ProviderError::ProviderConfigNotFound(_)
                | ProviderError::SecretNotFound { .. }
                | ProviderError::SecretKeyMissing { .. }
                | ProviderError::SecretForbidden { .. },
            ) = self.read(&name).await
            {
                self.forget(&name);
            }
        }
    }

    /// The usage probe of each ProviderConfig in use whose cloud reports usage, by name.
    pub fn usage_probes(&self) -> Vec<(String, UsageProbe)> {
        let mut probes: Vec<(String, UsageProbe)> = self
            .cache
            .lock()
            .iter()
            .filter_map(|((_, name), c)| Some((name.clone(), c.usage.clone()?)))
            .collect();
        probes.sort_by(|a, b| a.0.cmp(&b.0));
        probes.dedup_by(|a, b| a.0 == b.0);
        probes
    }

    /// ProviderConfig `name` is gone: drop its handles, and its rate from its key's users.
    fn forget(&self, name: &str) {
        let dropped: Vec<_> = {
            let mut cache = self.cache.lock();
            let gone: Vec<_> = cache.keys().filter(|(_, n)| n == name).cloned().collect();
            gone.iter().filter_map(|k| cache.remove(k)).collect()
        };
        if !dropped.is_empty() {
            tracing::debug!(
                provider_config = name,
                "ProviderConfig is gone; its rate no longer counts for its key"
            );
        }
        crate::cloud::throttle::registry().release_user(name);
    }

    async fn read(&self, name: &str) -> Result<(ProviderConfigSpec, ApiKey), ProviderError> {
        read_provider_config(&self.kube, name).await
    }
}

/// ProviderConfig `name` and the API key its Secret holds, read with `kube` (the operator's
/// client, or a user's for `stratus logs`). Each error says what to fix.
pub async fn read_provider_config(
    kube: &kube::Client,
    name: &str,
) -> Result<(ProviderConfigSpec, ApiKey), ProviderError> {
    let configs: Api<ProviderConfig> = Api::all(kube.clone());
    let pc = configs
        .get_opt(name)
        .await
        .map_err(|source| ProviderError::Kube {
            config: name.into(),
            source,
        })?
        .ok_or_else(|| ProviderError::ProviderConfigNotFound(name.into()))?;
    let sel = &pc.spec.credentials.secret_ref;
    let secrets: Api<Secret> = Api::namespaced(kube.clone(), &sel.namespace);
    let secret = secrets
        .get_opt(&sel.name)
        .await
        .map_err(|source| match source {
            kube::Error::Api(s) if s.code == 403 => ProviderError::SecretForbidden {
                config: name.into(),
                namespace: sel.namespace.clone(),
                name: sel.name.clone(),
            },
            source => ProviderError::Kube {
                config: name.into(),
                source,
            },
        })?
        .ok_or_else(|| ProviderError::SecretNotFound {
            config: name.into(),
            namespace: sel.namespace.clone(),
            name: sel.name.clone(),
            key: sel.key.clone(),
        })?;
    let value = secret
        .data
        .as_ref()
        .and_then(|d| d.get(&sel.key))
        .map(|b| String::from_utf8_lossy(&b.0).to_string())
        .or_else(|| {
            secret
                .string_data
                .as_ref()
                .and_then(|d| d.get(&sel.key).cloned())
        })
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| ProviderError::SecretKeyMissing {
            config: name.into(),
            namespace: sel.namespace.clone(),
            name: sel.name.clone(),
            key: sel.key.clone(),
        })?;
    Ok((pc.spec, ApiKey::new(value)))
}
