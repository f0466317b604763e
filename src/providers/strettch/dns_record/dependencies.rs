//! What a DnsRecord waits for (its zone, the Compute whose address it carries) and the
//! watches that wake it when they change.

use kube::runtime::controller::Controller;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;

use super::*;

pub(super) fn waiting(reason: &str, message: String) -> Blocked {
    Blocked::Waiting(Invalid::new(reason, message))
}

pub(super) fn ready_message(d: &Domain) -> Option<String> {
    d.status.as_ref().and_then(|s| {
        s.managed
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .map(|c| c.message.clone())
    })
}

/// A zone named by `domainId` takes records once it is ACTIVE, as a referenced Domain does.
pub fn zone_gate(zone: &model::Domain) -> Result<(), Blocked> {
    let nameservers = if zone.nameservers.is_empty() {
        "the nameservers Strettch lists for it".to_string()
    } else {
        zone.nameservers.join(", ")
    };
    let name = &zone.domain;
    let id = &zone.id;
    match zone.status {
        model::DomainStatus::Active => Ok(()),
        model::DomainStatus::Activating => Err(waiting(
            "WaitingForDomain",
            format!(
                "zone {id} ({name}) is ACTIVATING: the record is created once it is ACTIVE; set its nameservers at the registrar to {nameservers}"
            ),
        )),
        model::DomainStatus::Inactive => Err(waiting(
            "WaitingForDomain",
            format!(
                "zone {id} ({name}) is INACTIVE: its nameservers are not set correctly; set them at the registrar to {nameservers}"
            ),
        )),
    }
}

/// The zone id of a referenced Domain, once that Domain is ACTIVE (or at once, for a record
/// that exists already: `recorded`).
pub fn domain_gate(name: &str, d: Option<&Domain>, recorded: bool) -> Result<String, Blocked> {
    let Some(d) = d else {
        return Err(waiting(
            "WaitingForDomain",
            format!(
                "Domain {name} does not exist (yet) in this namespace: create it, or fix spec.forProvider.domainRef"
            ),
        ));
    };
    if d.meta().deletion_timestamp.is_some() {
        return Err(waiting(
            "WaitingForDomain",
            format!("Domain {name} is being deleted"),
        ));
    }
    let at = d.status.as_ref().and_then(|s| s.at_provider.as_ref());
    let nameservers = at
        .map(|a| a.nameservers.join(", "))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "the nameservers the Domain lists".into());
    match at.map(|a| (a.id.as_str(), a.status.as_deref())) {
        Some((id, Some("ACTIVE"))) if !id.is_empty() => Ok(id.to_string()),
        Some((id, _)) if recorded && !id.is_empty() => Ok(id.to_string()),
        Some((_, Some("ACTIVATING"))) => Err(waiting(
            "WaitingForDomain",
            format!(
                "Domain {name} is ACTIVATING: the record is created once it is ACTIVE; set its nameservers at the registrar to {nameservers}"
            ),
        )),
        Some((_, Some("INACTIVE"))) => Err(waiting(
            "WaitingForDomain",
            format!(
                "Domain {name} is INACTIVE: its nameservers are not set correctly; set them at the registrar to {nameservers}"
            ),
        )),
        Some((_, status)) => Err(waiting(
            "WaitingForDomain",
            format!(
                "Domain {name} is {}",
                status.unwrap_or("not reported by Strettch yet")
            ),
        )),
        None => Err(waiting(
            "WaitingForDomain",
            format!(
                "Domain {name} has no zone in Strettch yet{}",
                ready_message(d)
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            ),
        )),
    }
}

/// The address a Compute gives, once it has one.
pub fn compute_address(
    name: &str,
    field: ComputeAddressField,
    c: Option<&Compute>,
) -> Result<String, Blocked> {
    let Some(c) = c else {
        return Err(waiting(
            "WaitingForCompute",
            format!(
                "Compute {name} does not exist (yet) in this namespace: create it, or fix spec.forProvider.valueFrom.computeRef"
            ),
        ));
    };
    let at = c.status.as_ref().and_then(|s| s.at_provider.as_ref());
    let addr = at.and_then(|a| match field {
        ComputeAddressField::Ipv4 => a.ipv4.clone(),
        ComputeAddressField::PrivateIpv4 => a.private_ipv4.clone(),
    });
    match addr.filter(|a| !a.is_empty()) {
        Some(a) => {
            check_value(
                DnsRecordType::A,
                &a,
                &format!("status.atProvider.{} of Compute {name}", field.as_str()),
            )
            .map_err(|m| Blocked::Invalid(Invalid::new("InvalidValue", m)))?;
            Ok(a)
        }
        None => Err(waiting(
            "WaitingForCompute",
            format!("Compute {name} has no {} yet", field.as_str()),
        )),
    }
}

/// Vertra's Application kind, read as a dynamic object: Strettch's records take a value from it
/// without depending on Vertra's types.
pub fn application_resource() -> kube::api::ApiResource {
    kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
        "vertra.stratus.dev",
        "v1alpha1",
        "Application",
    ))
}

/// The value of the `record_type` record an Application's custom domain needs, once its status
/// reports it.
pub fn application_record(
    name: &str,
    record_type: ApplicationRecordType,
    app: Option<&kube::api::DynamicObject>,
) -> Result<String, Blocked> {
    let Some(app) = app else {
        return Err(waiting(
            "WaitingForApplication",
            format!(
                "Application {name} does not exist (yet) in this namespace: create it, or fix spec.forProvider.valueFrom.applicationRef"
            ),
        ));
    };
    let wanted = match record_type {
        ApplicationRecordType::CNAME => "CNAME",
        ApplicationRecordType::TXT => "TXT",
    };
    let records = app.data["status"]["atProvider"]["dnsRecords"].as_array();
    let value = records
        .into_iter()
        .flatten()
        .find(|r| r["type"].as_str() == Some(wanted))
        .and_then(|r| r["value"].as_str())
        .filter(|v| !v.is_empty());
    match value {
        Some(v) => {
            let t = match record_type {
                ApplicationRecordType::CNAME => DnsRecordType::CNAME,
                ApplicationRecordType::TXT => DnsRecordType::TXT,
            };
            check_value(
                t,
                v,
                &format!("the {wanted} record Application {name} reports"),
            )
            .map_err(|m| Blocked::Invalid(Invalid::new("InvalidValue", m)))?;
            Ok(v.to_string())
        }
        None => Err(waiting(
            "WaitingForApplication",
            format!(
                "Application {name} reports no {wanted} record yet (it needs a customDomain, and the app must be published)"
            ),
        )),
    }
}

/// The desired record from the spec and the resolved zone id and value.
pub fn desired_record(p: &DnsRecordParameters, domain_id: String, value: String) -> DesiredRecord {
    DesiredRecord {
        domain_id,
        literal_domain: p.domain_id.is_some(),
        recorded: false,
        write: RecordWrite {
            name: p.name.clone(),
            record_type: model_type(p.record_type),
            value,
            ttl: Some(p.ttl.unwrap_or(TTL_DEFAULT)),
            priority: p.priority,
            weight: p.weight,
            port: p.port,
            comment: p.comment.clone().filter(|c| !c.is_empty()),
        },
    }
}

/// Whether `other` asks for the same record as `me` (same zone, name, type and value source).
/// The DnsRecords that depend on Domain `domain` (in `namespace`), among `records`.
pub fn dependents_of_domain<'a>(
    records: impl IntoIterator<Item = &'a DnsRecord>,
    namespace: Option<&str>,
    domain: &str,
) -> Vec<&'a DnsRecord> {
    records
        .into_iter()
        .filter(|r| {
            r.namespace().as_deref() == namespace
                && r.spec
                    .for_provider
                    .domain_ref
                    .as_ref()
                    .is_some_and(|d| d.name == domain)
        })
        .collect()
}

/// The DnsRecords that take their value from Compute `compute` (in `namespace`), among `records`.
pub fn dependents_of_compute<'a>(
    records: impl IntoIterator<Item = &'a DnsRecord>,
    namespace: Option<&str>,
    compute: &str,
) -> Vec<&'a DnsRecord> {
    records
        .into_iter()
        .filter(|r| {
            r.namespace().as_deref() == namespace
                && r.spec
                    .for_provider
                    .value_from
                    .as_ref()
                    .and_then(|v| v.compute_ref.as_ref())
                    .is_some_and(|c| c.name == compute)
        })
        .collect()
}

/// The DnsRecords that take their value from Application `app` (in `namespace`), among `records`.
pub fn dependents_of_application<'a>(
    records: impl IntoIterator<Item = &'a DnsRecord>,
    namespace: Option<&str>,
    app: &str,
) -> Vec<&'a DnsRecord> {
    records
        .into_iter()
        .filter(|r| {
            r.namespace().as_deref() == namespace
                && r.spec
                    .for_provider
                    .value_from
                    .as_ref()
                    .and_then(|v| v.application_ref.as_ref())
                    .is_some_and(|a| a.name == app)
        })
        .collect()
}

/// A DnsRecord depends on its Domain (created once it is ACTIVE) and on the Compute or Vertra
/// Application its value comes from: reconcile the dependent records when one changes, status
/// included, so a record follows a new address within seconds without polling.
pub fn watch_dependencies(
    controller: Controller<DnsRecord>,
    records: Store<DnsRecord>,
    client: &kube::Client,
    scope: Option<&str>,
) -> Controller<DnsRecord> {
    let (domains, computes): (Api<Domain>, Api<Compute>) = match scope {
        None => (Api::all(client.clone()), Api::all(client.clone())),
        Some(ns) => (
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client.clone(), ns),
        ),
    };
    let applications: Api<kube::api::DynamicObject> = match scope {
        None => Api::all_with(client.clone(), &application_resource()),
        Some(ns) => Api::namespaced_with(client.clone(), ns, &application_resource()),
    };
    let by_domain = records.clone();
    let by_compute = records.clone();
    let by_application = records;
    controller
        .watches(domains, watcher::Config::default(), move |d: Domain| {
            let state = by_domain.state();
            dependents_of_domain(
                state.iter().map(|r| r.as_ref()),
                d.namespace().as_deref(),
                &d.name_any(),
            )
            .into_iter()
            .map(ObjectRef::from_obj)
            .collect::<Vec<_>>()
        })
        .watches(computes, watcher::Config::default(), move |c: Compute| {
            let state = by_compute.state();
            dependents_of_compute(
                state.iter().map(|r| r.as_ref()),
                c.namespace().as_deref(),
                &c.name_any(),
            )
            .into_iter()
            .map(ObjectRef::from_obj)
            .collect::<Vec<_>>()
        })
        .watches_with(
            applications,
            application_resource(),
            watcher::Config::default(),
            move |a: kube::api::DynamicObject| {
                let state = by_application.state();
                dependents_of_application(
                    state.iter().map(|r| r.as_ref()),
                    a.namespace().as_deref(),
                    &a.name_any(),
                )
                .into_iter()
                .map(ObjectRef::from_obj)
                .collect::<Vec<_>>()
            },
        )
}
