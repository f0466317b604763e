//! ProviderConfig: which cloud endpoint and credentials a managed resource uses.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::Condition;

/// Where and how to reach a cloud. Managed resources pick one with `spec.providerConfigRef.name`.
// kube's printcolumn(...) repeats `type_ =`, which clippy mistakes for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "stratus.dev",
    version = "v1alpha1",
    kind = "ProviderConfig",
    status = "ProviderConfigStatus",
    shortname = "pc",
    category = "stratus",
    printcolumn(name = "PROVIDER", type_ = "string", json_path = ".spec.provider"),
    printcolumn(name = "ENDPOINT", type_ = "string", json_path = ".spec.endpoint"),
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = kube::core::Rule::new("!has(self.vertra) || self.provider == 'vertra'").message(kube::core::Message::Message("spec.vertra applies only to provider: vertra".into())),
    validation = kube::core::Rule::new("!has(self.cloudapi) || self.provider == 'cloudapi'").message(kube::core::Message::Message("spec.cloudapi applies only to provider: cloudapi".into()))
)]
pub struct ProviderConfigSpec {
    /// The cloud this configuration talks to: strettch, vertra or cloudapi. Settings that only
    /// one cloud has sit in the section named after it (spec.vertra, spec.cloudapi).
    pub provider: Provider,
    /// Base URL of the cloud API. Omitted: the provider's public endpoint
    /// (https://api.strettch.cloud/api/v1 for strettch). Must be https://, except on loopback
    /// (127.0.0.0/8, [::1], localhost) or with allowInsecureEndpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Allow an http:// endpoint on a host other than loopback. Every request carries the API key,
    /// which plain http sends in clear text to anyone on the network path: set it only for a
    /// trusted network, e.g. a test sandbox inside the cluster. Default false: such an endpoint
    /// is refused (Stalled, reason InvalidProviderConfig) and no request is sent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_insecure_endpoint: bool,
    /// Where the API key is kept.
    pub credentials: Credentials,
    /// Override of the documented per-key request rate. Every ProviderConfig using the same key
    /// shares one budget; the lowest configured rate wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// Settings only Vertra Cloud has. Only with provider: vertra.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vertra: Option<VertraSettings>,
    /// Settings only CloudAPI has. Only with provider: cloudapi.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloudapi: Option<CloudApiSettings>,
}

impl ProviderConfigSpec {
    /// A provider's section set on a ProviderConfig for another provider (the CRD refuses it on
    /// API servers with CEL; older ones get this check from the operator).
    pub fn check_sections(&self) -> Result<(), String> {
        match (self.provider, &self.vertra, &self.cloudapi) {
            (p, Some(_), _) if p != Provider::Vertra => Err(format!(
                "spec.vertra applies only to provider: vertra, not {}: remove it",
                p.as_str()
            )),
            (p, _, Some(_)) if p != Provider::CloudApi => Err(format!(
                "spec.cloudapi applies only to provider: cloudapi, not {}: remove it",
                p.as_str()
            )),
            _ => Ok(()),
        }
    }
}

/// Vertra Cloud settings (provider: vertra).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VertraSettings {
    /// The workspace the key acts in (sent as `workspace_id`) when a resource names none.
    /// Omitted: the key owner's own resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
}

/// CloudAPI settings (provider: cloudapi).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CloudApiSettings {
    /// Which of CloudAPI's two wire dialects the endpoint speaks: cloudapi
    /// (api.cloudapi.dev, cursor pagination, 1,000 requests/minute per key) or cloudplatform
    /// (workspace-scoped, 600 requests/10 minutes per workspace and 120/minute per key).
    #[serde(default)]
    pub dialect: CloudApiDialect,
    /// The workspace the key belongs to (cloudplatform). No API tells it, and every key of one
    /// workspace shares the workspace's budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    /// A dashboard session token: a second credential that only creating ApiKeys needs (the API
    /// refuses API keys there). Omitted: ApiKey objects stall saying so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token_secret_ref: Option<SecretKeySelector>,
}

/// CloudAPI's wire dialects.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CloudApiDialect {
    /// api.cloudapi.dev (seeds 001 and 003).
    #[default]
    CloudApi,
    /// Cloud API Platform (seed 002).
    CloudPlatform,
}

impl ProviderConfigSpec {
    /// Refuses an endpoint that would send the API key in clear text to another machine: see
    /// [`check_endpoint`]. `default` is the provider's endpoint, used when none is set.
    pub fn check_endpoint(&self, default: &str) -> Result<(), String> {
        check_endpoint(
            self.endpoint.as_deref().unwrap_or(default),
            self.allow_insecure_endpoint,
        )
    }
}

/// Whether the API key may be sent to `endpoint`: over https:// always; over plain http:// only
/// to a loopback host (127.0.0.0/8, [::1], `localhost`), where it never crosses a network, or
/// when the ProviderConfig explicitly allows it (`allow_insecure`). The host is the one the
/// URL parser (the same WHATWG rules the HTTP client follows) connects to, so
/// `http://127.0.0.1.example.com` or `http://127.0.0.1@example.com` are not loopback. The error
/// says how to fix it; other endpoint problems are left to the provider's client.
pub fn check_endpoint(endpoint: &str, allow_insecure: bool) -> Result<(), String> {
    let url = url::Url::parse(endpoint.trim()).map_err(|e| {
        format!("spec.endpoint {endpoint:?} is not a URL ({e}): use e.g. https://api.example.com")
    })?;
    match url.scheme() {
        "https" => Ok(()),
        "http" if allow_insecure || is_loopback(&url) => Ok(()),
        "http" => Err(format!(
            "spec.endpoint {endpoint:?} would send the API key in clear text (http://) to {}, \
             which is not loopback: use https://, or set spec.allowInsecureEndpoint: true if \
             every network path to it is trusted",
            url.host_str().unwrap_or("?")
        )),
        other => Err(format!(
            "spec.endpoint {endpoint:?} has scheme {other}: use https:// (or http:// on loopback)"
        )),
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Supported clouds.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Strettch Cloud.
    Strettch,
    /// Vertra Cloud.
    Vertra,
    /// CloudAPI (either dialect: spec.cloudapi.dialect).
    #[serde(rename = "cloudapi")]
    CloudApi,
}

impl Provider {
    /// The name used in ProviderConfigs (`provider:`), metrics and controller names.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Strettch => "strettch",
            Provider::Vertra => "vertra",
            Provider::CloudApi => "cloudapi",
        }
    }
}

/// Credentials of a ProviderConfig.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    /// The Secret key holding the API key.
    pub secret_ref: SecretKeySelector,
}

/// A key in a Secret.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct SecretKeySelector {
    /// Namespace of the Secret.
    pub namespace: String,
    /// Name of the Secret.
    pub name: String,
    /// Key within the Secret's data.
    pub key: String,
}

/// Request budget of an API key.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RateLimit {
    /// Requests per second allowed for the key (Strettch documents 2).
    #[schemars(range(min = 0.1, max = 1000))]
    pub requests_per_second: f64,
}

/// Observed state of a ProviderConfig.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderConfigStatus {
    /// Conditions of the configuration.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

#[cfg(test)]
mod tests {
    use super::check_endpoint;

    #[test]
    fn https_endpoints_are_accepted_anywhere() {
        for e in [
            "https://api.strettch.cloud/api/v1",
            "https://203.0.113.5:8443/api/v1",
            "https://[2001:db8::1]/api",
        ] {
            assert_eq!(check_endpoint(e, false), Ok(()), "{e}");
        }
    }

    #[test]
    fn plain_http_is_accepted_on_loopback() {
        for e in [
            "http://127.0.0.1:8080/api/v1",
            "http://127.9.8.7/api/v1",
            "http://[::1]:8080/api/v1",
            "http://localhost:8080/api/v1",
            "http://LOCALHOST/api/v1",
        ] {
            assert_eq!(check_endpoint(e, false), Ok(()), "{e}");
        }
    }

    #[test]
    fn plain_http_to_another_host_is_refused_with_how_to_fix_it() {
        for e in [
            "http://api.strettch.cloud/api/v1",
            "http://10.0.0.5:8080/api/v1",
            "http://[2001:db8::1]/api",
            "http://0.0.0.0:8080",
            "http://[::ffff:10.0.0.5]/",
        ] {
            let err = check_endpoint(e, false).expect_err(e);
            assert!(
                err.contains("clear text") && err.contains("https://"),
                "{err}"
            );
            assert!(err.contains("spec.allowInsecureEndpoint: true"), "{err}");
        }
    }

    #[test]
    fn hosts_that_only_look_like_loopback_are_refused() {
        for e in [
            "http://127.0.0.1.evil.example/api",
            "http://localhost.evil.example/api",
            "http://127.0.0.1@evil.example/api",
            "http://localhost:80@evil.example/api",
            "http://evil.example/http://127.0.0.1/",
            "http://evil.example#@127.0.0.1",
        ] {
            assert!(check_endpoint(e, false).is_err(), "{e} was accepted");
        }
    }

    #[test]
    fn allow_insecure_endpoint_accepts_plain_http_to_any_host() {
        assert_eq!(
            check_endpoint("http://stratus-sim.testing.svc:8080/api/v1", true),
            Ok(())
        );
    }

    #[test]
    fn other_schemes_and_non_urls_are_refused() {
        for e in ["ftp://127.0.0.1/api", "api.strettch.cloud/api/v1", ""] {
            assert!(check_endpoint(e, false).is_err(), "{e:?} was accepted");
            assert!(check_endpoint(e, true).is_err(), "{e:?} was accepted");
        }
    }

    use super::{CloudApiDialect, Provider, ProviderConfigSpec};

    fn spec(v: serde_json::Value) -> ProviderConfigSpec {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn an_existing_strettch_provider_config_reads_unchanged() {
        let s = spec(serde_json::json!({
            "provider": "strettch",
            "credentials": {"secretRef": {"namespace": "ns", "name": "s", "key": "apiKey"}},
            "rateLimit": {"requestsPerSecond": 2}
        }));
        assert_eq!(s.provider, Provider::Strettch);
        assert_eq!(s.check_sections(), Ok(()));
        let back = serde_json::to_value(&s).unwrap();
        assert!(
            back.get("vertra").is_none() && back.get("cloudapi").is_none(),
            "{back}"
        );
    }

    #[test]
    fn a_section_for_another_provider_is_refused_naming_it() {
        let s = spec(serde_json::json!({
            "provider": "strettch",
            "credentials": {"secretRef": {"namespace": "ns", "name": "s", "key": "apiKey"}},
            "cloudapi": {"dialect": "cloudplatform"}
        }));
        let err = s.check_sections().unwrap_err();
        assert!(
            err.contains("spec.cloudapi") && err.contains("strettch"),
            "{err}"
        );
        let ok = spec(serde_json::json!({
            "provider": "cloudapi",
            "credentials": {"secretRef": {"namespace": "ns", "name": "s", "key": "apiKey"}},
            "cloudapi": {"dialect": "cloudplatform", "workspace": "acme"}
        }));
        assert_eq!(ok.check_sections(), Ok(()));
        assert_eq!(ok.cloudapi.unwrap().dialect, CloudApiDialect::CloudPlatform);
    }
}
