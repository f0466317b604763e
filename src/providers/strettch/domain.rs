//! The Domain adapter: how a `Domain` maps onto Strettch's /domains collection.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use kube::api::ListParams;
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::cloud::StrettchCloud;
use super::model::{self, DomainCreate, DomainStatus};
use crate::api::common::EXTERNAL_NAME;
use crate::cloud::CloudError;
use crate::cloud::throttle::Priority;
use crate::engine::{Adapter, Blocked, Created, Found, Freshness, Invalid, Plan, Proof, Readiness};
use crate::providers::strettch::api::domain::{Domain, DomainObservation};

/// Shortest and longest pause between two looks at a domain that is ACTIVATING.
pub const ACTIVATION_POLL_MIN: Duration = Duration::from_secs(5);
pub const ACTIVATION_POLL_MAX: Duration = Duration::from_secs(300);

#[derive(Clone)]
pub struct DomainAdapter {
    kube: kube::Client,
    /// Namespaces the operator watches (empty: all), where claims of other objects are looked for.
    namespaces: Arc<Vec<String>>,
}

impl DomainAdapter {
    pub fn new(kube: kube::Client, namespaces: Vec<String>) -> Self {
        Self {
            kube,
            namespaces: Arc::new(namespaces),
        }
    }
}

#[derive(Debug, Clone)]
pub struct DesiredDomain {
    /// Normal form: lower-case, no trailing dot.
    pub domain: String,
}

/// A domain has nothing the API can change: every difference is Impossible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainAction {}

/// A DNS label of a host or zone name: 1-63 letters, digits and hyphens, not starting or ending
/// with a hyphen.
fn is_host_label(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 63
        && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
        && !l.starts_with('-')
        && !l.ends_with('-')
}

/// The normal form of a domain name (trimmed, lower-case, one trailing dot dropped), or why it is
/// not one: at least two labels of letters, digits and hyphens, at most 253 characters, and a
/// top-level label of at least two letters (or an xn-- IDN label).
pub fn normalize_domain(raw: &str) -> Result<String, String> {
    let d = raw.trim().to_ascii_lowercase();
    let d = d.strip_suffix('.').unwrap_or(&d).to_string();
    let bad = |why: &str| format!("{raw:?} is not a domain name such as example.com: {why}");
    if d.is_empty() {
        return Err(bad("it is empty"));
    }
    if d.len() > 253 {
        return Err(bad("it is longer than 253 characters"));
    }
    let labels: Vec<&str> = d.split('.').collect();
    if labels.len() < 2 {
        return Err(bad("it needs at least two labels"));
    }
    if let Some(l) = labels.iter().find(|l| !is_host_label(l)) {
        return Err(bad(&format!(
            "label {l:?} must be 1-63 letters, digits and hyphens, not starting or ending with a hyphen"
        )));
    }
    let tld = labels[labels.len() - 1];
    let tld_ok = tld.len() >= 2
        && (tld.bytes().all(|c| c.is_ascii_alphabetic())
            || (tld.starts_with("xn--") && tld.len() > 4));
    if !tld_ok {
        return Err(bad("the top-level label must be at least two letters"));
    }
    Ok(d)
}

pub fn validate_domain(obj: &Domain) -> Result<(), Invalid> {
    normalize_domain(&obj.spec.for_provider.domain)
        .map(|_| ())
        .map_err(|why| Invalid::new("InvalidSpec", format!("spec.forProvider.domain: {why}")))
}

/// Pure diff: the only thing to compare is the name, which cannot change.
pub fn plan(d: &DesiredDomain, o: &model::Domain) -> Plan<DomainAction> {
    if o.domain.trim_end_matches('.').to_ascii_lowercase() != d.domain {
        return Plan::Impossible(Invalid::new(
            "ImmutableFieldChanged",
            format!(
                "spec.forProvider.domain changed from {:?} to {:?}; a zone cannot be renamed: revert it, or create a new Domain",
                o.domain, d.domain
            ),
        ));
    }
    Plan::UpToDate
}

fn nameservers(o: &model::Domain) -> String {
    if o.nameservers.is_empty() {
        "the nameservers Strettch lists for it".into()
    } else {
        o.nameservers.join(", ")
    }
}

pub fn readiness(o: &model::Domain) -> Readiness {
    match o.status {
        DomainStatus::Active => Readiness::Available(format!(
            "Domain {} is ACTIVE: Strettch serves its records",
            o.domain
        )),
        DomainStatus::Activating => Readiness::Waiting {
            reason: "Activating".into(),
            message: format!(
                "Domain {} is ACTIVATING: set its nameservers at your registrar to {}; it becomes ACTIVE once the delegation is visible (minutes to 24 hours)",
                o.domain,
                nameservers(o)
            ),
        },
        DomainStatus::Inactive => Readiness::Waiting {
            reason: "NameserversNotSet".into(),
            message: format!(
                "Domain {} is INACTIVE: its nameservers are not set correctly; set them at your registrar to {}",
                o.domain,
                nameservers(o)
            ),
        },
    }
}

/// How soon to look again at an ACTIVATING domain: about a tenth of the time it has been
/// activating, from 5 s up to 5 minutes (activation takes minutes to a day).
pub fn activation_poll(o: &model::Domain, now: Timestamp) -> Duration {
    let since = o
        .created_at
        .as_deref()
        .and_then(|t| t.parse::<Timestamp>().ok())
        .and_then(|t| Duration::try_from(now.duration_since(t)).ok())
        .unwrap_or_default();
    (since / 10).clamp(ACTIVATION_POLL_MIN, ACTIVATION_POLL_MAX)
}

pub fn observation(o: &model::Domain) -> DomainObservation {
    DomainObservation {
        id: o.id.clone(),
        domain: Some(o.domain.clone()),
        status: Some(
            match o.status {
                DomainStatus::Activating => "ACTIVATING",
                DomainStatus::Active => "ACTIVE",
                DomainStatus::Inactive => "INACTIVE",
            }
            .into(),
        ),
        nameservers: o.nameservers.clone(),
        created_at: o.created_at.clone(),
        updated_at: o.updated_at.clone(),
    }
}

/// The first object of kind `K`, other than the one with `self_uid`, whose external-name
/// annotation is `id`, as "namespace/name". Looks in `namespaces` (empty: all).
pub async fn claimant<K>(
    kube: &kube::Client,
    namespaces: &[String],
    id: &str,
    self_uid: Option<&str>,
) -> Result<Option<String>, CloudError>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    for obj in list_all::<K>(kube, namespaces).await? {
        if obj.meta().uid.as_deref() != self_uid
            && obj.annotations().get(EXTERNAL_NAME).map(String::as_str) == Some(id)
        {
            return Ok(Some(format!(
                "{}/{}",
                obj.namespace().unwrap_or_default(),
                obj.name_any()
            )));
        }
    }
    Ok(None)
}

/// Every object of kind `K` in `namespaces` (empty: all), read from the API server (not a cache,
/// so a claim recorded a moment ago is seen).
pub async fn list_all<K>(kube: &kube::Client, namespaces: &[String]) -> Result<Vec<K>, CloudError>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let apis: Vec<Api<K>> = if namespaces.is_empty() {
        vec![Api::all(kube.clone())]
    } else {
        namespaces
            .iter()
            .map(|ns| Api::namespaced(kube.clone(), ns))
            .collect()
    };
    let mut out = Vec::new();
    for api in apis {
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|e| CloudError::Transport {
                operation: format!("listing {} objects in Kubernetes", K::kind(&())),
                message: e.to_string(),
            })?;
        out.extend(list.items);
    }
    Ok(out)
}

fn conflict(message: String) -> CloudError {
    CloudError::Api {
        status: 409,
        code: model::codes::CONFLICT.into(),
        message,
        request_id: None,
        retry_after: None,
        class: model::codes::classify(409, model::codes::CONFLICT),
    }
}

async fn list_domains_fresh(cloud: &StrettchCloud) -> Result<(), CloudError> {
    // A listing that started after this call did: it sees anything an earlier process made.
    cloud
        .domains
        .get("", Duration::ZERO, || {
            cloud.client.list_domains(Priority::Urgent)
        })
        .await
        .map(|_| ())
}

#[async_trait::async_trait]
impl Adapter for DomainAdapter {
    type Kind = Domain;
    type Cloud = StrettchCloud;
    type Observed = model::Domain;
    type Desired = DesiredDomain;
    type Action = DomainAction;
    type CreateRequest = DomainCreate;

    const PROVIDER: &'static str = super::PROVIDER;
    const CONTROLLER: &'static str = "domain";

    crate::managed_kind_accessors!(observation);

    fn validate(obj: &Domain) -> Result<(), Invalid> {
        validate_domain(obj)
    }

    async fn desired(&self, _kube: &kube::Client, obj: &Domain) -> Result<DesiredDomain, Blocked> {
        normalize_domain(&obj.spec.for_provider.domain)
            .map(|domain| DesiredDomain { domain })
            .map_err(|why| {
                Blocked::Invalid(Invalid::new(
                    "InvalidSpec",
                    format!("spec.forProvider.domain: {why}"),
                ))
            })
    }

    async fn observe(
        &self,
        cloud: &StrettchCloud,
        _obj: &Domain,
        id: &str,
        fresh: Freshness,
    ) -> Result<Option<model::Domain>, CloudError> {
        let found = cloud
            .domains
            .observe(
                id,
                fresh,
                |p| cloud.client.get_domain(id, p),
                |p| cloud.client.list_domains(p),
            )
            .await?;
        if found.is_none() {
            // Deleted outside the operator: its records went with it.
            cloud.forget_zone(id);
        }
        Ok(found)
    }

    fn create_request(_obj: &Domain, d: &DesiredDomain) -> DomainCreate {
        DomainCreate {
            domain: d.domain.clone(),
        }
    }

    async fn find_created(
        &self,
        cloud: &StrettchCloud,
        _obj: &Domain,
        request: &DomainCreate,
    ) -> Result<Option<Found<model::Domain>>, CloudError> {
        list_domains_fresh(cloud).await?;
        // One zone per name in an account; zones carry no owner marker, so the engine adopts
        // it only if it was made after our create started and nobody else manages it.
        Ok(cloud
            .domains
            .find(|d| d.domain == request.domain)
            .map(|observed| Found {
                observed,
                proof: Proof::NaturalKey,
            }))
    }

    fn created_at(o: &model::Domain) -> Option<jiff::Timestamp> {
        o.created_at.as_deref().and_then(|t| t.parse().ok())
    }

    async fn create(
        &self,
        cloud: &StrettchCloud,
        obj: &Domain,
        req: &DomainCreate,
        key: Uuid,
    ) -> Result<Created<model::Domain>, CloudError> {
        let d = req;
        match cloud.client.create_domain(req, key).await {
            Ok(created) => {
                cloud.domains.put(created.clone());
                Ok(created.into())
            }
            Err(e) if e.code() == model::codes::CONFLICT => {
                // Say who holds the name when it is another object of this cluster.
                if list_domains_fresh(cloud).await.is_ok()
                    && let Some(held) = cloud.domains.find(|x| {
                        x.domain == d.domain
                            || x.domain.ends_with(&format!(".{}", d.domain))
                            || d.domain.ends_with(&format!(".{}", x.domain))
                    })
                    && let Ok(Some(owner)) = claimant::<Domain>(
                        &self.kube,
                        &self.namespaces,
                        &held.id,
                        obj.meta().uid.as_deref(),
                    )
                    .await
                {
                    return Err(conflict(format!(
                        "{} cannot be registered: zone {} ({}) is already managed by Domain {owner}",
                        d.domain, held.domain, held.id
                    )));
                }
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    fn plan(d: &DesiredDomain, o: &model::Domain, _digest: Option<&str>) -> Plan<DomainAction> {
        plan(d, o)
    }

    async fn act(
        &self,
        _cloud: &StrettchCloud,
        _o: &model::Domain,
        action: &DomainAction,
    ) -> Result<model::Domain, CloudError> {
        match *action {}
    }

    async fn delete(&self, cloud: &StrettchCloud, o: &model::Domain) -> Result<(), CloudError> {
        cloud.client.delete_domain(&o.id).await?;
        cloud.domains.remove(&o.id);
        cloud.forget_zone(&o.id);
        Ok(())
    }

    fn external_id(o: &model::Domain) -> String {
        o.id.clone()
    }

    fn is_deleting(_o: &model::Domain) -> bool {
        false
    }

    fn is_transitional(o: &model::Domain) -> bool {
        o.status == DomainStatus::Activating
    }

    fn transitional_poll(o: &model::Domain) -> Option<Duration> {
        Some(activation_poll(o, Timestamp::now()))
    }

    fn readiness(o: &model::Domain) -> Readiness {
        readiness(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domain(status: DomainStatus) -> model::Domain {
        model::Domain {
            id: "d1".into(),
            domain: "example.com".into(),
            status,
            nameservers: vec!["ns1.strettch.com".into(), "ns2.strettch.com".into()],
            created_at: Some("2026-01-15T10:00:00Z".into()),
            updated_at: None,
        }
    }

    #[test]
    fn names_are_normalised_and_checked() {
        assert_eq!(normalize_domain(" Example.COM. ").unwrap(), "example.com");
        assert!(normalize_domain("xn--80ak6aa92e.xn--p1ai").is_ok());
        for bad in [
            "",
            "com",
            "-a.com",
            "a..com",
            "1.2.3.4",
            "a_b.com",
            "example.c",
        ] {
            assert!(normalize_domain(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ready_only_when_active_and_activating_names_the_nameservers() {
        assert!(matches!(
            readiness(&domain(DomainStatus::Active)),
            Readiness::Available(_)
        ));
        match readiness(&domain(DomainStatus::Activating)) {
            Readiness::Waiting { reason, message } => {
                assert_eq!(reason, "Activating");
                assert!(
                    message.contains("ns1.strettch.com, ns2.strettch.com"),
                    "{message}"
                );
                assert!(message.contains("registrar"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        match readiness(&domain(DomainStatus::Inactive)) {
            Readiness::Waiting { reason, message } => {
                assert_eq!(reason, "NameserversNotSet");
                assert!(message.contains("not set correctly"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_renamed_domain_is_impossible_and_case_does_not_matter() {
        let d = DesiredDomain {
            domain: "example.com".into(),
        };
        assert_eq!(plan(&d, &domain(DomainStatus::Active)), Plan::UpToDate);
        let other = DesiredDomain {
            domain: "example.org".into(),
        };
        match plan(&other, &domain(DomainStatus::Active)) {
            Plan::Impossible(i) => assert_eq!(i.reason, "ImmutableFieldChanged"),
            p => panic!("{p:?}"),
        }
    }

    #[test]
    fn activation_is_polled_less_often_the_longer_it_takes() {
        let d = domain(DomainStatus::Activating);
        let created: Timestamp = "2026-01-15T10:00:00Z".parse().unwrap();
        let at = |secs: i64| created + jiff::SignedDuration::from_secs(secs);
        assert_eq!(activation_poll(&d, at(3)), ACTIVATION_POLL_MIN);
        assert_eq!(activation_poll(&d, at(600)), Duration::from_secs(60));
        assert_eq!(activation_poll(&d, at(86_400)), ACTIVATION_POLL_MAX);
        // No creation time: the shortest interval.
        let mut unknown = d.clone();
        unknown.created_at = None;
        assert_eq!(activation_poll(&unknown, at(86_400)), ACTIVATION_POLL_MIN);
    }
}
