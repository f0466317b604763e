//! ProviderConfig: which cloud endpoint and credentials a managed resource uses.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::Condition;
use crate::cloud::throttle::{LimitSpec, MAX_LIMITS, MIN_PER, Policy, Scope, Window};

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
    /// Override of the documented per-key request rate: one Key limit of requestsPerSecond per
    /// 1s (fixed windows, burst 1), in addition to spec.rateLimits. Every ProviderConfig using
    /// the same key shares one budget; the lowest configured rate wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// Name of a budget shared with other ProviderConfigs (e.g. a workspace or account whose API
    /// keys the cloud limits together). Every ProviderConfig naming the same group sends the
    /// requests of all its keys through the group's BudgetGroup limits (the union of those the
    /// group's ProviderConfigs list). Required by any rateLimits entry with scope BudgetGroup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub budget_group: Option<String>,
    /// Request limits the operator keeps to, all at once: every request takes every Key limit
    /// of its API key and every BudgetGroup limit of its budgetGroup, and no window of length
    /// `per` ever holds more than `requests` requests (rolling or fixed). The provider's
    /// documented limits (strettch: 2 per 1s per key, fixed windows) apply too, except one
    /// restated here or in rateLimit with the same scope and per. At most 8.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub rate_limits: Vec<RateLimitRule>,
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
    /// How many deploys (app creates, code uploads, rebuilds) per hour the account's plan
    /// allows. Vertra sends no header for it: the operator starts at this figure and lowers it
    /// when a DEPLOY_RATE_LIMITED answer says less. Omitted: 60, the largest published plan's.
    /// After a restart the first deploy waits one interval (3600 s / this figure), since the
    /// operator cannot know what was spent before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 36000))]
    pub deploys_per_hour: Option<u32>,
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

/// One request limit: at most `requests` per `per`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitRule {
    /// Requests allowed per window (at least 1).
    #[schemars(range(min = 1))]
    pub requests: u32,
    /// Window length: a duration such as 1s, 1m, 10m or 1h (from 1s to 24h).
    #[schemars(length(min = 2, max = 16))]
    pub per: String,
    /// Whose budget: Key (this API key) or BudgetGroup (every key of the ProviderConfigs with
    /// the same spec.budgetGroup).
    pub scope: LimitScope,
    /// How the cloud counts the window: Rolling (any interval of length per; the default) or
    /// Fixed (windows aligned on the cloud's clock). The operator paces both so that no interval
    /// of length per holds more than requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<LimitWindow>,
    /// Requests that may go out back to back after the budget was idle (default 1, at most half
    /// of requests). A larger burst makes the steady pace slower: requests are spaced
    /// per / (requests - burst + 1), so a burst of all the requests would leave one request
    /// per window once spent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub burst: Option<u32>,
}

/// Whose budget a limit counts.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum LimitScope {
    /// This ProviderConfig's API key.
    Key,
    /// Every API key of the ProviderConfigs naming the same spec.budgetGroup.
    BudgetGroup,
}

/// How the cloud counts a limit's window.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum LimitWindow {
    /// Windows of `per` aligned on the cloud's clock.
    Fixed,
    /// Any interval of length `per`.
    Rolling,
}

impl ProviderConfigSpec {
    /// The limits and budget group this ProviderConfig asks of its key, checked. `defaults` are
    /// the provider's documented limits: each applies unless the spec gives a limit of the same
    /// scope and window length (`rateLimit` is a Key limit per 1s). The error says what to fix.
    pub fn throttle_policy(&self, defaults: &[LimitSpec]) -> Result<Policy, String> {
        let group = match &self.budget_group {
            Some(g) if g.trim().is_empty() || g.trim() != g => {
                return Err(format!(
                    "spec.budgetGroup {g:?} must be a non-empty name without surrounding spaces"
                ));
            }
            g => g.clone(),
        };
        if self.rate_limits.len() > MAX_LIMITS {
            return Err(format!(
                "spec.rateLimits lists {} limits; at most {MAX_LIMITS} are allowed: merge or drop some",
                self.rate_limits.len()
            ));
        }
        let mut limits = Vec::new();
        for (i, rule) in self.rate_limits.iter().enumerate() {
            let at = format!("spec.rateLimits[{i}]");
            let per = crate::engine::annotations::parse_duration(&rule.per)
                .map_err(|e| format!("{at}.per: {e}; use e.g. 1s, 1m, 10m, 1h"))?;
            let spec = LimitSpec {
                requests: rule.requests,
                per,
                burst: rule.burst.unwrap_or(1),
                scope: match rule.scope {
                    LimitScope::Key => Scope::Key,
                    LimitScope::BudgetGroup => Scope::BudgetGroup,
                },
                window: match rule.window {
                    Some(LimitWindow::Fixed) => Window::Fixed,
                    Some(LimitWindow::Rolling) | None => Window::Rolling,
                },
            };
            spec.validate().map_err(|e| format!("{at}: {e}"))?;
            if spec.scope == Scope::BudgetGroup && group.is_none() {
                return Err(format!(
                    "{at} has scope BudgetGroup but spec.budgetGroup is not set: set \
                     spec.budgetGroup to the name the ProviderConfigs sharing this budget use, \
                     or use scope Key"
                ));
            }
            limits.push(spec);
        }
        if let Some(r) = &self.rate_limit {
            let rps = r.requests_per_second;
            if !(rps.is_finite() && (0.1..=1000.0).contains(&rps)) {
                return Err(format!(
                    "spec.rateLimit.requestsPerSecond is {rps}; use a rate from 0.1 to 1000"
                ));
            }
            limits.push(LimitSpec::per_second(rps));
        }
        // A documented limit the spec does not restate (same scope, same window length) still
        // holds at the cloud: keep it.
        // rateLimit is the per-second Key limit, whatever form a fractional rate takes.
        let per_second_restated = self.rate_limit.is_some();
        for d in defaults {
            let restated = limits.iter().any(|l| l.scope == d.scope && l.per == d.per)
                || (per_second_restated && d.scope == Scope::Key && d.per == MIN_PER);
            if !restated {
                limits.push(*d);
            }
        }
        Ok(Policy::new(limits, group))
    }
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
    /// What the account has used, as the cloud reports it (only clouds that report usage,
    /// such as CloudAPI). Refreshed every few minutes while some object uses this
    /// configuration; also exported as the `stratus_cloud_usage_*` metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

/// An account's use of its cloud in the current billing period. Which fields are set depends on
/// what the cloud reports: CloudAPI's `cloudapi` dialect gives the period and an overage,
/// `cloudplatform` the month and its project count.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    /// The billing period as the cloud names it: `2026-12` (a month), or
    /// `2026-12-01T00:00:00Z/2026-12-31T23:59:59Z` (start/end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
    /// Requests counted in the period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<u64>,
    /// Requests over the plan's allowance in the period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overage: Option<u64>,
    /// Projects the account holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projects: Option<u64>,
    /// When the operator read these figures (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_at: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn spec(yaml: &str) -> ProviderConfigSpec {
        serde_yaml::from_str(&format!(
            "provider: strettch\ncredentials: {{secretRef: {{namespace: n, name: s, key: k}}}}\n{yaml}"
        ))
        .unwrap()
    }

    fn defaults() -> Vec<LimitSpec> {
        vec![LimitSpec::per_second(2.0)]
    }

    #[test]
    fn the_documented_shape_parses_into_limits_and_a_group() {
        let s = spec(
            "budgetGroup: acme-workspace
rateLimits:
  - {requests: 600, per: 10m, scope: BudgetGroup, window: Rolling}
  - {requests: 120, per: 1m, scope: Key, window: Rolling, burst: 10}
rateLimit: {requestsPerSecond: 2}",
        );
        let p = s.throttle_policy(&defaults()).unwrap();
        assert_eq!(p.budget_group.as_deref(), Some("acme-workspace"));
        let m = Duration::from_secs(60);
        assert_eq!(
            p.limits,
            [
                LimitSpec::group(600, 10 * m),
                LimitSpec::key(120, m).with_burst(10),
                LimitSpec::per_second(2.0),
            ]
        );
        assert_eq!(p.key_limits().len(), 2);
        assert_eq!(p.group_limits(), [LimitSpec::group(600, 10 * m)]);
        // Round trip: what was written is what is read.
        let back: ProviderConfigSpec =
            serde_yaml::from_str(&serde_yaml::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn without_limits_the_providers_defaults_apply_as_before() {
        let p = spec("").throttle_policy(&defaults()).unwrap();
        assert_eq!(p, Policy::from(2.0));
        let p = spec("rateLimit: {requestsPerSecond: 0.5}")
            .throttle_policy(&defaults())
            .unwrap();
        assert_eq!(p, Policy::from(0.5));
        // A group limit, or a Key limit over another window, keeps the documented per-key limit.
        let p = spec("budgetGroup: g\nrateLimits: [{requests: 100, per: 1h, scope: BudgetGroup}]")
            .throttle_policy(&defaults())
            .unwrap();
        assert_eq!(p.key_limits(), defaults());
        assert_eq!(p.group_limits()[0].window, Window::Rolling);
        assert_eq!(p.group_limits()[0].burst, 1);
        let p = spec("rateLimits: [{requests: 30, per: 1m, scope: Key, burst: 5}]")
            .throttle_policy(&defaults())
            .unwrap();
        assert_eq!(p.key_limits().len(), 2);
        // Restating the per-second limit replaces it.
        let p = spec("rateLimits: [{requests: 5, per: 1s, scope: Key}]")
            .throttle_policy(&defaults())
            .unwrap();
        assert_eq!(p.key_limits(), [LimitSpec::key(5, Duration::from_secs(1))]);
    }

    #[test]
    fn invalid_limits_are_refused_with_how_to_fix_them() {
        for (yaml, expected) in [
            (
                "rateLimits: [{requests: 5, per: 1m, scope: BudgetGroup}]",
                "spec.budgetGroup is not set",
            ),
            (
                "rateLimits: [{requests: 0, per: 1m, scope: Key}]",
                "at least 1",
            ),
            (
                "rateLimits: [{requests: 5, per: 500ms, scope: Key}]",
                "1s to 24h",
            ),
            (
                "rateLimits: [{requests: 5, per: 2d, scope: Key}]",
                "e.g. 1s, 1m",
            ),
            (
                "rateLimits: [{requests: 5, per: 25h, scope: Key}]",
                "1s to 24h",
            ),
            (
                "rateLimits: [{requests: 5, per: 1m, scope: Key, burst: 6}]",
                "half of requests",
            ),
            (
                "rateLimits: [{requests: 10, per: 1m, scope: Key, burst: 10}]",
                "from 1 to 5 (half of requests 10)",
            ),
            (
                "rateLimits: [{requests: 5, per: 1m, scope: Key, burst: 0}]",
                "from 1 to 2",
            ),
            ("budgetGroup: ''", "non-empty"),
            ("rateLimit: {requestsPerSecond: 0}", "from 0.1 to 1000"),
        ] {
            let e = spec(yaml).throttle_policy(&defaults()).expect_err(yaml);
            assert!(e.contains(expected), "{yaml}: {e}");
        }
        let many = (0..9)
            .map(|i| format!("{{requests: {}, per: 1m, scope: Key}}", i + 1))
            .collect::<Vec<_>>()
            .join(", ");
        let e = spec(&format!("rateLimits: [{many}]"))
            .throttle_policy(&defaults())
            .unwrap_err();
        assert!(e.contains("at most 8"), "{e}");
        let e = spec(
            "rateLimits: [{requests: 5, per: 1m, scope: Key}, {requests: 5, per: 0s, scope: Key}]",
        )
        .throttle_policy(&defaults())
        .unwrap_err();
        assert!(e.starts_with("spec.rateLimits[1]"), "{e}");
    }

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

    fn spec_of(v: serde_json::Value) -> ProviderConfigSpec {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn an_existing_strettch_provider_config_reads_unchanged() {
        let s = spec_of(serde_json::json!({
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
        let s = spec_of(serde_json::json!({
            "provider": "strettch",
            "credentials": {"secretRef": {"namespace": "ns", "name": "s", "key": "apiKey"}},
            "cloudapi": {"dialect": "cloudplatform"}
        }));
        let err = s.check_sections().unwrap_err();
        assert!(
            err.contains("spec.cloudapi") && err.contains("strettch"),
            "{err}"
        );
        let ok = spec_of(serde_json::json!({
            "provider": "cloudapi",
            "credentials": {"secretRef": {"namespace": "ns", "name": "s", "key": "apiKey"}},
            "cloudapi": {"dialect": "cloudplatform", "workspace": "acme"}
        }));
        assert_eq!(ok.check_sections(), Ok(()));
        assert_eq!(ok.cloudapi.unwrap().dialect, CloudApiDialect::CloudPlatform);
    }
}
