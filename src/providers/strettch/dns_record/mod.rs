//! The DnsRecord adapter: how a `DnsRecord` maps onto the records of a Strettch zone
//! (/domains/{id}/records).
//!
//! Records carry no tags, so a record is recognised by what it is: (name, type, value) is unique
//! in a zone. A create is sent without looking first: an identical record that exists already is
//! refused by the API (409, answered with who holds it), never adopted silently; a record made
//! outside the cluster is adopted only through the `stratus.dev/external-name` annotation. After
//! an ambiguous create, the record is found again by that identity and adopted only if the zone
//! made it after the create started (the engine's natural-key proof).
//!
//! - `rules`: pure checks, identity and planning of records;
//! - `dependencies`: the Domain and Compute a record depends on, and the watches on them.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use kube::{Api, Resource, ResourceExt};
use uuid::Uuid;

use super::cloud::StrettchCloud;
use super::domain::list_all;
use super::model::{self, RecordType, RecordWrite};
use crate::api::common::{CREATE_PENDING, EXTERNAL_NAME};
use crate::cloud::CloudError;
use crate::cloud::throttle::Priority;
use crate::engine::{Adapter, Blocked, Created, Found, Freshness, Invalid, Plan, Proof, Readiness};
use crate::providers::strettch::api::Compute;
use crate::providers::strettch::api::dns_record::{
    ApplicationRecordType, ComputeAddressField, DnsRecord, DnsRecordObservation,
    DnsRecordParameters, DnsRecordType,
};
use crate::providers::strettch::api::domain::Domain;

mod dependencies;
mod rules;

pub use dependencies::*;
pub use rules::*;

pub const TTL_MIN: u32 = 60;
pub const TTL_MAX: u32 = 86_400;
/// What Strettch uses when a record has no TTL.
pub const TTL_DEFAULT: u32 = 60;
pub const TXT_MAX: usize = 2048;
pub const COMMENT_MAX: usize = 255;

/// How old a zone listing may be to confirm that a `domainId` exists.
const ZONE_CHECK_AGE: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct DnsRecordAdapter {
    kube: kube::Client,
    /// Namespaces the operator watches (empty: all), where claims of other objects are looked for.
    namespaces: Arc<Vec<String>>,
}

impl DnsRecordAdapter {
    pub fn new(kube: kube::Client, namespaces: Vec<String>) -> Self {
        Self {
            kube,
            namespaces: Arc::new(namespaces),
        }
    }
}

/// The record to have, with references resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredRecord {
    pub domain_id: String,
    /// The zone id was given literally (spec.forProvider.domainId), not through a Domain.
    pub literal_domain: bool,
    /// The record exists already (an id is recorded): a zone that is not ACTIVE (any more) does
    /// not stop it from being observed, only from being created.
    pub recorded: bool,
    /// TTL always set (the default made explicit), so it compares with what the API reports.
    pub write: RecordWrite,
}

/// What a record create sends: the zone (in the path) and the record.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordCreate {
    pub domain_id: String,
    pub record: RecordWrite,
}

/// A record and the zone it is in.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedRecord {
    pub domain_id: String,
    pub record: model::Record,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RecordAction {
    /// PUT the record: value, ttl, priority, weight, port and comment.
    Replace(RecordWrite),
}

fn same_target(me: &DnsRecord, other: &DnsRecord) -> bool {
    let (a, b) = (&me.spec.for_provider, &other.spec.for_provider);
    let same_ns = me.namespace() == other.namespace();
    let zone = match (&a.domain_id, &b.domain_id, &a.domain_ref, &b.domain_ref) {
        (Some(x), Some(y), _, _) => x == y,
        (None, None, Some(x), Some(y)) => same_ns && x.name == y.name,
        _ => false,
    };
    let t = model_type(a.record_type);
    let value = match (&a.value, &b.value, &a.value_from, &b.value_from) {
        (Some(x), Some(y), _, _) => identity("", t, x) == identity("", t, y),
        (None, None, Some(x), Some(y)) => same_ns && x == y,
        _ => false,
    };
    zone && value && a.record_type == b.record_type && a.name.eq_ignore_ascii_case(&b.name)
}

fn annotation<'a>(obj: &'a DnsRecord, key: &str) -> Option<&'a str> {
    obj.annotations()
        .get(key)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
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

fn zone_missing(domain_id: &str) -> CloudError {
    CloudError::Api {
        status: 404,
        code: "DOMAIN_NOT_FOUND".into(),
        message: format!("zone {domain_id} does not exist in Strettch"),
        request_id: None,
        retry_after: None,
        class: model::codes::classify(404, "DOMAIN_NOT_FOUND"),
    }
}

/// Who, besides `me`, has a claim on record `found`: a DnsRecord recording its id, or one in the
/// middle of creating the same record (it may have made this one and not recorded it yet).
/// `include_pending` is false for crash recovery, where the record is most likely ours.
async fn rival(
    kube: &kube::Client,
    namespaces: &[String],
    me: &DnsRecord,
    found: &model::Record,
    include_pending: bool,
) -> Result<Option<CloudError>, CloudError> {
    let others: Vec<DnsRecord> = list_all(kube, namespaces).await?;
    let what = format!(
        "record {} ({})",
        found.id,
        describe(&found.name, found.record_type, &found.value)
    );
    let mine = |o: &DnsRecord| o.meta().uid.is_some() && o.meta().uid == me.meta().uid;
    let key = |o: &DnsRecord| format!("{}/{}", o.namespace().unwrap_or_default(), o.name_any());
    if let Some(owner) = others
        .iter()
        .find(|o| !mine(o) && annotation(o, EXTERNAL_NAME) == Some(found.id.as_str()))
    {
        return Ok(Some(conflict(format!(
            "{what} is already managed by DnsRecord {}; two objects cannot manage one record: delete one of them, or change its name, type or value",
            key(owner)
        ))));
    }
    if include_pending
        && let Some(other) = others.iter().find(|o| {
            !mine(o)
                && annotation(o, EXTERNAL_NAME).is_none()
                && annotation(o, CREATE_PENDING).is_some()
                && same_target(me, o)
        })
    {
        return Ok(Some(conflict(format!(
            "{what} is being created by DnsRecord {} as well; two objects cannot manage one record: delete one of them",
            key(other)
        ))));
    }
    Ok(None)
}

impl DnsRecordAdapter {
    /// The zone a recorded record is in: from the status, the spec, or the referenced Domain;
    /// `None` when none of them says.
    async fn zone_of(&self, obj: &DnsRecord, id: &str) -> Option<String> {
        if let Some(at) = obj.status.as_ref().and_then(|s| s.at_provider.as_ref())
            && at.id == id
            && !at.domain_id.is_empty()
        {
            return Some(at.domain_id.clone());
        }
        let p = &obj.spec.for_provider;
        if let Some(id) = p.domain_id.as_ref().filter(|i| !i.is_empty()) {
            return Some(id.clone());
        }
        let r = p.domain_ref.as_ref()?;
        let api: Api<Domain> = Api::namespaced(self.kube.clone(), &obj.namespace()?);
        api.get_opt(&r.name)
            .await
            .ok()
            .flatten()
            .and_then(|d| d.status)
            .and_then(|s| s.at_provider)
            .map(|a| a.id)
            .filter(|i| !i.is_empty())
    }

    /// A create refused because the record exists: say who holds it — another DnsRecord, or
    /// nobody in this cluster (made outside it: adopt it deliberately with the annotation).
    async fn explain_conflict(
        &self,
        cloud: &StrettchCloud,
        obj: &DnsRecord,
        request: &RecordCreate,
        refused: CloudError,
    ) -> CloudError {
        if Self::list_zone(cloud, &request.domain_id, Duration::from_secs(2))
            .await
            .is_err()
        {
            return refused;
        }
        let want = write_identity(&request.record);
        let Some(found) = cloud
            .records(&request.domain_id)
            .find(|r| record_identity(r) == want)
        else {
            return refused;
        };
        match rival(&self.kube, &self.namespaces, obj, &found, true).await {
            Ok(Some(err)) => err,
            Ok(None) => conflict(format!(
                "record {} ({}) exists already and no DnsRecord manages it: it was made outside this cluster's objects, so it is not adopted silently; to manage it, set the {EXTERNAL_NAME} annotation to {}",
                found.id,
                describe(&found.name, found.record_type, &found.value),
                found.id
            )),
            Err(_) => refused,
        }
    }

    /// Look for record `id` in every zone (when nothing says which zone it is in).
    async fn search_zones(
        &self,
        cloud: &StrettchCloud,
        id: &str,
    ) -> Result<Option<ObservedRecord>, CloudError> {
        for d in cloud.client.list_domains(Priority::Urgent).await? {
            match cloud.client.get_record(&d.id, id, Priority::Urgent).await {
                Ok(record) => {
                    return Ok(Some(ObservedRecord {
                        domain_id: d.id,
                        record,
                    }));
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// A listing of the zone no older than `max_age`; `Err(zone_missing)` when the zone is gone.
    async fn list_zone(
        cloud: &StrettchCloud,
        domain_id: &str,
        max_age: Duration,
    ) -> Result<(), CloudError> {
        let snap = cloud.records(domain_id);
        match snap
            .get("", max_age, || {
                cloud.client.list_records(domain_id, Priority::Urgent)
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => {
                cloud.forget_zone(domain_id);
                Err(zone_missing(domain_id))
            }
            Err(e) => Err(e),
        }
    }
}

#[async_trait::async_trait]
impl Adapter for DnsRecordAdapter {
    type Kind = DnsRecord;
    type Cloud = StrettchCloud;
    type Observed = ObservedRecord;
    type Desired = DesiredRecord;
    type Action = RecordAction;
    type CreateRequest = RecordCreate;

    const PROVIDER: &'static str = super::PROVIDER;
    const CONTROLLER: &'static str = "dnsrecord";

    crate::managed_kind_accessors!(observation);

    fn validate(obj: &DnsRecord) -> Result<(), Invalid> {
        validate_params(&obj.spec.for_provider)
    }

    async fn desired(
        &self,
        kube: &kube::Client,
        obj: &DnsRecord,
    ) -> Result<DesiredRecord, Blocked> {
        let p = &obj.spec.for_provider;
        let ns = obj.namespace().unwrap_or_default();
        let read_error = |what: String, e: kube::Error| {
            waiting("DependencyUnreadable", format!("cannot read {what}: {e}"))
        };
        let recorded = obj
            .annotations()
            .get(crate::api::common::EXTERNAL_NAME)
            .is_some_and(|id| !id.is_empty());
        let domain_id = match (&p.domain_id, &p.domain_ref) {
            (Some(id), _) => id.clone(),
            (None, Some(r)) => {
                let api: Api<Domain> = Api::namespaced(kube.clone(), &ns);
                let d = api
                    .get_opt(&r.name)
                    .await
                    .map_err(|e| read_error(format!("Domain {}", r.name), e))?;
                domain_gate(&r.name, d.as_ref(), recorded)?
            }
            (None, None) => {
                return Err(Blocked::Invalid(Invalid::new(
                    "InvalidSpec",
                    "spec.forProvider: set exactly one of domainRef and domainId",
                )));
            }
        };
        let value = match (&p.value, &p.value_from) {
            (Some(v), _) => v.clone(),
            (None, Some(src)) => match (&src.compute_ref, &src.application_ref) {
                (Some(r), _) => {
                    let api: Api<Compute> = Api::namespaced(kube.clone(), &ns);
                    let c = api
                        .get_opt(&r.name)
                        .await
                        .map_err(|e| read_error(format!("Compute {}", r.name), e))?;
                    compute_address(&r.name, r.field, c.as_ref())?
                }
                (None, Some(r)) => {
                    let api: Api<kube::api::DynamicObject> =
                        Api::namespaced_with(kube.clone(), &ns, &application_resource());
                    let app = match api.get_opt(&r.name).await {
                        Ok(app) => app,
                        // Vertra's CRDs are not installed: nothing to wait for but the user.
                        Err(kube::Error::Api(e)) if e.code == 404 => None,
                        Err(e) => return Err(read_error(format!("Application {}", r.name), e)),
                    };
                    application_record(&r.name, r.record_type, app.as_ref())?
                }
                (None, None) => {
                    return Err(Blocked::Invalid(Invalid::new(
                        "InvalidSpec",
                        "spec.forProvider.valueFrom: set exactly one of computeRef and applicationRef",
                    )));
                }
            },
            (None, None) => {
                return Err(Blocked::Invalid(Invalid::new(
                    "InvalidSpec",
                    "spec.forProvider: set exactly one of value and valueFrom",
                )));
            }
        };
        Ok(DesiredRecord {
            recorded,
            ..desired_record(p, domain_id, value)
        })
    }

    async fn check_offer(
        &self,
        cloud: &StrettchCloud,
        desired: &mut DesiredRecord,
    ) -> Result<Result<(), Blocked>, CloudError> {
        if !desired.literal_domain || desired.recorded {
            // A referenced Domain was just seen ACTIVE.
            return Ok(Ok(()));
        }
        let id = desired.domain_id.clone();
        let list = || cloud.client.list_domains(Priority::Routine);
        let mut found = cloud.domains.get(&id, ZONE_CHECK_AGE, list).await?;
        if found.is_none() {
            // Confirm an absence with a listing made now.
            found = cloud
                .domains
                .get(&id, Duration::ZERO, || {
                    cloud.client.list_domains(Priority::Urgent)
                })
                .await?;
        }
        Ok(match found {
            Some(zone) => zone_gate(&zone),
            None => Err(Blocked::Invalid(Invalid::new(
                "DomainNotFound",
                format!(
                    "spec.forProvider.domainId {id:?}: no such zone in the Strettch account of this ProviderConfig"
                ),
            ))),
        })
    }

    async fn observe(
        &self,
        cloud: &StrettchCloud,
        obj: &DnsRecord,
        id: &str,
        fresh: Freshness,
    ) -> Result<Option<ObservedRecord>, CloudError> {
        let Some(domain_id) = self.zone_of(obj, id).await else {
            return self.search_zones(cloud, id).await;
        };
        let found = cloud
            .records(&domain_id)
            .observe(
                id,
                fresh,
                |p| cloud.client.get_record(&domain_id, id, p),
                // A 404 for the listing means the zone is gone, and its records with it.
                |p| cloud.client.list_records(&domain_id, p),
            )
            .await?;
        Ok(found.map(|record| ObservedRecord { domain_id, record }))
    }

    fn create_request(_obj: &DnsRecord, d: &DesiredRecord) -> RecordCreate {
        RecordCreate {
            domain_id: d.domain_id.clone(),
            record: d.write.clone(),
        }
    }

    async fn find_created(
        &self,
        cloud: &StrettchCloud,
        obj: &DnsRecord,
        request: &RecordCreate,
    ) -> Result<Option<Found<ObservedRecord>>, CloudError> {
        match Self::list_zone(cloud, &request.domain_id, Duration::ZERO).await {
            Ok(()) => {}
            Err(e) if e.code() == "DOMAIN_NOT_FOUND" => return Ok(None),
            Err(e) => return Err(e),
        }
        // Records carry no owner marker: a record with the name, type and value the attempt
        // sent is ours only if it was made after the attempt started (the engine checks) and
        // no other DnsRecord records it. Where the zone allows identical records, take the
        // newest one nobody else records.
        let want = write_identity(&request.record);
        let mut candidates = cloud
            .records(&request.domain_id)
            .filter(|r| record_identity(r) == want);
        candidates.sort_by(|a, b| b.created_at.cmp(&a.created_at));
        for found in candidates {
            if rival(&self.kube, &self.namespaces, obj, &found, false)
                .await?
                .is_none()
            {
                return Ok(Some(Found {
                    observed: ObservedRecord {
                        domain_id: request.domain_id.clone(),
                        record: found,
                    },
                    proof: Proof::NaturalKey,
                }));
            }
        }
        Ok(None)
    }

    async fn create(
        &self,
        cloud: &StrettchCloud,
        obj: &DnsRecord,
        request: &RecordCreate,
        key: Uuid,
    ) -> Result<Created<ObservedRecord>, CloudError> {
        // No listing first: an identical record that exists already is refused by the API (or,
        // where identical records are allowed, is someone else's), never adopted silently.
        let created = match cloud
            .client
            .create_record(&request.domain_id, &request.record, key)
            .await
        {
            Ok(r) => r,
            Err(e) if e.is_not_found() => {
                cloud.forget_zone(&request.domain_id);
                return Err(zone_missing(&request.domain_id));
            }
            Err(e) if e.code() == model::codes::CONFLICT => {
                return Err(self.explain_conflict(cloud, obj, request, e).await);
            }
            Err(e) => return Err(e),
        };
        cloud.records(&request.domain_id).put(created.clone());
        Ok(Created::from(ObservedRecord {
            domain_id: request.domain_id.clone(),
            record: created,
        }))
    }

    fn created_at(o: &ObservedRecord) -> Option<jiff::Timestamp> {
        o.record.created_at.as_deref().and_then(|t| t.parse().ok())
    }

    fn plan(d: &DesiredRecord, o: &ObservedRecord, _digest: Option<&str>) -> Plan<RecordAction> {
        plan(d, o)
    }

    async fn act(
        &self,
        cloud: &StrettchCloud,
        o: &ObservedRecord,
        action: &RecordAction,
    ) -> Result<ObservedRecord, CloudError> {
        match action {
            RecordAction::Replace(w) => {
                let r = cloud
                    .client
                    .update_record(&o.domain_id, &o.record.id, w)
                    .await?;
                cloud.records(&o.domain_id).put(r.clone());
                Ok(ObservedRecord {
                    domain_id: o.domain_id.clone(),
                    record: r,
                })
            }
        }
    }

    async fn delete(&self, cloud: &StrettchCloud, o: &ObservedRecord) -> Result<(), CloudError> {
        cloud
            .client
            .delete_record(&o.domain_id, &o.record.id)
            .await?;
        cloud.records(&o.domain_id).remove(&o.record.id);
        Ok(())
    }

    fn external_id(o: &ObservedRecord) -> String {
        o.record.id.clone()
    }

    fn is_deleting(_o: &ObservedRecord) -> bool {
        false
    }

    fn is_transitional(_o: &ObservedRecord) -> bool {
        false
    }

    fn readiness(o: &ObservedRecord) -> Readiness {
        readiness(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::strettch::api::compute::{ComputeObservation, ComputeStatus};
    use crate::providers::strettch::api::dns_record::{
        ApplicationRecordReference, ComputeAddressReference, DomainReference, ValueSource,
    };
    use crate::providers::strettch::api::domain::{DomainObservation, DomainStatus};

    fn params(t: DnsRecordType, value: &str) -> DnsRecordParameters {
        DnsRecordParameters {
            domain_ref: Some(DomainReference {
                name: "example-com".into(),
            }),
            domain_id: None,
            name: "www".into(),
            record_type: t,
            value: Some(value.into()),
            value_from: None,
            ttl: None,
            priority: None,
            weight: None,
            port: None,
            comment: None,
        }
    }

    fn reason(p: &DnsRecordParameters) -> String {
        validate_params(p).unwrap_err().message
    }

    #[test]
    fn values_must_fit_their_type() {
        assert!(validate_params(&params(DnsRecordType::A, "192.0.2.1")).is_ok());
        assert!(reason(&params(DnsRecordType::A, "2001:db8::1")).contains("IPv4"));
        assert!(reason(&params(DnsRecordType::A, "web.example.com")).contains("IPv4"));
        assert!(validate_params(&params(DnsRecordType::AAAA, "2001:db8::1")).is_ok());
        assert!(reason(&params(DnsRecordType::AAAA, "192.0.2.1")).contains("IPv6"));
        assert!(validate_params(&params(DnsRecordType::CNAME, "web.example.com.")).is_ok());
        for bad in ["web", "192.0.2.1", "-a.example.com", "a b.example.com"] {
            assert!(
                reason(&params(DnsRecordType::CNAME, bad)).contains("hostname"),
                "{bad}"
            );
        }
        assert!(validate_params(&params(DnsRecordType::TXT, "v=spf1 -all")).is_ok());
        assert!(reason(&params(DnsRecordType::TXT, &"x".repeat(2049))).contains("TXT"));
    }

    #[test]
    fn mx_needs_a_priority_and_srv_weight_and_port() {
        let mut mx = params(DnsRecordType::MX, "mail.example.com");
        assert!(reason(&mx).contains("priority"));
        mx.priority = Some(10);
        assert!(validate_params(&mx).is_ok());
        let mut a = params(DnsRecordType::A, "192.0.2.1");
        a.priority = Some(10);
        assert!(reason(&a).contains("only allowed"));
        let mut srv = params(DnsRecordType::SRV, "sip.example.com");
        srv.priority = Some(10);
        assert!(reason(&srv).contains("weight"));
        srv.weight = Some(5);
        assert!(reason(&srv).contains("port"));
        srv.port = Some(5060);
        assert!(validate_params(&srv).is_ok());
        let mut a = params(DnsRecordType::A, "192.0.2.1");
        a.port = Some(80);
        assert!(reason(&a).contains("port"));
    }

    #[test]
    fn ttl_names_and_exactly_one_of_each_pair() {
        let mut p = params(DnsRecordType::A, "192.0.2.1");
        p.ttl = Some(30);
        assert!(reason(&p).contains("ttl"));
        p.ttl = Some(86_401);
        assert!(reason(&p).contains("ttl"));
        p.ttl = Some(3600);
        assert!(validate_params(&p).is_ok());
        for ok in ["@", "www", "_dmarc", "_sip._tcp", "*", "*.dev"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "www.", "a.*", "-a", "a b"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        let mut both = params(DnsRecordType::A, "192.0.2.1");
        both.domain_id = Some("z".into());
        assert!(reason(&both).contains("domainRef"));
        let mut neither = params(DnsRecordType::A, "192.0.2.1");
        neither.domain_ref = None;
        assert!(reason(&neither).contains("domainRef"));
        let mut from = params(DnsRecordType::A, "192.0.2.1");
        from.value_from = Some(ValueSource {
            compute_ref: Some(ComputeAddressReference {
                name: "web".into(),
                field: ComputeAddressField::Ipv4,
            }),
            application_ref: None,
        });
        assert!(reason(&from).contains("value and valueFrom"));
        from.value = None;
        assert!(validate_params(&from).is_ok());
        from.record_type = DnsRecordType::CNAME;
        assert!(reason(&from).contains("only fits A records"));
        from.value_from = Some(ValueSource {
            compute_ref: None,
            application_ref: Some(ApplicationRecordReference {
                name: "shop".into(),
                record_type: ApplicationRecordType::CNAME,
            }),
        });
        assert!(validate_params(&from).is_ok());
        from.record_type = DnsRecordType::TXT;
        assert!(reason(&from).contains("must match the record's type"));
        from.value_from = Some(ValueSource {
            compute_ref: None,
            application_ref: None,
        });
        assert!(reason(&from).contains("computeRef and applicationRef"));
    }

    fn observed(value: &str, ttl: u32) -> ObservedRecord {
        ObservedRecord {
            domain_id: "z1".into(),
            record: model::Record {
                id: "r1".into(),
                name: "www".into(),
                record_type: RecordType::A,
                value: value.into(),
                ttl,
                priority: None,
                weight: None,
                port: None,
                comment: None,
                created_at: None,
                updated_at: None,
            },
        }
    }

    #[test]
    fn plan_replaces_changed_values_and_refuses_identity_changes() {
        let p = params(DnsRecordType::A, "192.0.2.1");
        let d = desired_record(&p, "z1".into(), "192.0.2.1".into());
        assert_eq!(plan(&d, &observed("192.0.2.1", 60)), Plan::UpToDate);
        // A new address (from a literal or a Compute) or TTL is one PUT.
        let d2 = desired_record(&p, "z1".into(), "192.0.2.9".into());
        assert_eq!(
            plan(&d2, &observed("192.0.2.1", 60)),
            Plan::Update(vec![RecordAction::Replace(d2.write.clone())])
        );
        assert!(matches!(
            plan(&d, &observed("192.0.2.1", 3600)),
            Plan::Update(_)
        ));
        // Name, type and zone cannot change.
        let mut renamed = d.clone();
        renamed.write.name = "api".into();
        match plan(&renamed, &observed("192.0.2.1", 60)) {
            Plan::Impossible(i) => {
                assert_eq!(i.reason, "ImmutableFieldChanged");
                assert!(i.message.contains("name"), "{}", i.message);
            }
            other => panic!("{other:?}"),
        }
        let moved = desired_record(&p, "z2".into(), "192.0.2.1".into());
        assert!(matches!(
            plan(&moved, &observed("192.0.2.1", 60)),
            Plan::Impossible(_)
        ));
        // Case and a trailing dot do not make a hostname different.
        let cname = params(DnsRecordType::CNAME, "Web.Example.com.");
        let d = desired_record(&cname, "z1".into(), "Web.Example.com.".into());
        let mut o = observed("web.example.com", 60);
        o.record.record_type = RecordType::CNAME;
        assert_eq!(plan(&d, &o), Plan::UpToDate);
    }

    fn domain(status: Option<&str>) -> Domain {
        let mut d = Domain::new(
            "example-com",
            serde_json::from_value(serde_json::json!({"forProvider": {"domain": "example.com"}}))
                .unwrap(),
        );
        d.status = status.map(|s| DomainStatus {
            managed: Default::default(),
            at_provider: Some(DomainObservation {
                id: "z1".into(),
                status: Some(s.into()),
                nameservers: vec!["ns1.strettch.com".into(), "ns2.strettch.com".into()],
                ..Default::default()
            }),
        });
        d
    }

    fn blocked_message(b: Blocked) -> (String, String) {
        match b {
            Blocked::Waiting(w) => (w.reason, w.message),
            Blocked::Invalid(i) => panic!("expected Waiting, got {i:?}"),
        }
    }

    #[test]
    fn records_in_a_zone_named_by_id_wait_until_it_is_active() {
        let mut zone = model::Domain {
            id: "z9".into(),
            domain: "example.org".into(),
            status: model::DomainStatus::Activating,
            nameservers: vec!["ns1.strettch.com".into()],
            created_at: None,
            updated_at: None,
        };
        let (reason, message) = blocked_message(zone_gate(&zone).unwrap_err());
        assert_eq!(reason, "WaitingForDomain");
        assert!(
            message.starts_with("zone z9 (example.org) is ACTIVATING")
                && message.contains("ns1.strettch.com"),
            "{message}"
        );
        zone.status = model::DomainStatus::Inactive;
        let (_, message) = blocked_message(zone_gate(&zone).unwrap_err());
        assert!(message.contains("INACTIVE"), "{message}");
        zone.status = model::DomainStatus::Active;
        assert!(zone_gate(&zone).is_ok());
    }

    #[test]
    fn records_wait_for_an_active_domain_and_a_compute_address() {
        assert_eq!(
            domain_gate("example-com", Some(&domain(Some("ACTIVE"))), false).unwrap(),
            "z1"
        );
        let (reason, message) = blocked_message(
            domain_gate("example-com", Some(&domain(Some("ACTIVATING"))), false).unwrap_err(),
        );
        assert_eq!(reason, "WaitingForDomain");
        assert!(
            message.starts_with("Domain example-com is ACTIVATING")
                && message.contains("ns1.strettch.com"),
            "{message}"
        );
        // A record that exists is observed whatever its Domain's state; only creating waits.
        assert_eq!(
            domain_gate("example-com", Some(&domain(Some("INACTIVE"))), true).unwrap(),
            "z1"
        );
        let (_, message) = blocked_message(domain_gate("example-com", None, false).unwrap_err());
        assert!(message.contains("does not exist"), "{message}");
        let (_, message) =
            blocked_message(domain_gate("example-com", Some(&domain(None)), false).unwrap_err());
        assert!(message.contains("no zone"), "{message}");

        let mut c = Compute::new(
            "web",
            serde_json::from_value(serde_json::json!({"forProvider": {
                "hostName": "web", "image": "UBUNTU-24.04", "region": "KGL-1",
                "specification": "S-1C-1G", "publicKeys": ["k"]}}))
            .unwrap(),
        );
        let (reason, message) = blocked_message(
            compute_address("web", ComputeAddressField::Ipv4, Some(&c)).unwrap_err(),
        );
        assert_eq!(reason, "WaitingForCompute");
        assert_eq!(message, "Compute web has no ipv4 yet");
        c.status = Some(ComputeStatus {
            managed: Default::default(),
            at_provider: Some(ComputeObservation {
                id: "7".into(),
                ipv4: Some("195.15.0.7".into()),
                private_ipv4: Some("10.0.0.7".into()),
                ..Default::default()
            }),
        });
        assert_eq!(
            compute_address("web", ComputeAddressField::Ipv4, Some(&c)).unwrap(),
            "195.15.0.7"
        );
        assert_eq!(
            compute_address("web", ComputeAddressField::PrivateIpv4, Some(&c)).unwrap(),
            "10.0.0.7"
        );
        // A resolved value is validated too.
        c.status
            .as_mut()
            .unwrap()
            .at_provider
            .as_mut()
            .unwrap()
            .ipv4 = Some("2001:db8::1".into());
        match compute_address("web", ComputeAddressField::Ipv4, Some(&c)) {
            Err(Blocked::Invalid(i)) => {
                assert_eq!(i.reason, "InvalidValue");
                assert!(
                    i.message.contains("status.atProvider.ipv4"),
                    "{}",
                    i.message
                );
            }
            other => panic!("{other:?}"),
        }
        let (_, message) =
            blocked_message(compute_address("web", ComputeAddressField::Ipv4, None).unwrap_err());
        assert!(message.contains("does not exist"), "{message}");
    }

    #[test]
    fn identity_ignores_case_dots_and_address_spelling() {
        assert_eq!(
            identity("WWW", RecordType::CNAME, "A.Example.com."),
            identity("www", RecordType::CNAME, "a.example.com")
        );
        assert_eq!(
            identity("@", RecordType::AAAA, "2001:0db8::0001"),
            identity("@", RecordType::AAAA, "2001:db8::1")
        );
        assert_ne!(
            identity("@", RecordType::TXT, "Hello"),
            identity("@", RecordType::TXT, "hello")
        );
    }
}
