//! The Compute adapter: how a `Compute` maps onto Strettch's /computes collection.

use std::sync::Arc;

use kube::ResourceExt;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::cloud::{Offer, StrettchCloud};
use super::model::{self, ComputeCreate, ComputeState, Specification};
use crate::cloud::CloudError;
use crate::cloud::throttle::Priority;
use crate::engine::{Adapter, Blocked, Created, Found, Freshness, Invalid, Plan, Proof, Readiness};
use crate::providers::strettch::api::compute::{
    Compute, ComputeObservation, ComputeParameters, PowerState,
};

/// Tag that marks a compute as created for one Kubernetes object (crash recovery).
pub const OWNER_TAG_PREFIX: &str = "stratus-uid:";

#[derive(Clone)]
pub struct ComputeAdapter;

#[derive(Debug, Clone)]
pub struct DesiredCompute {
    pub params: ComputeParameters,
    pub uid: String,
    pub offer: Option<Arc<Offer>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComputeAction {
    Upsize(String),
    Start,
    Stop,
}

pub fn owner_tag(uid: &str) -> String {
    format!("{OWNER_TAG_PREFIX}{uid}")
}

/// Hostname rule of the API: 1-63 letters, digits and hyphens, not starting or ending with one.
pub fn valid_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 63
        && h.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !h.starts_with('-')
        && !h.ends_with('-')
}

/// Pure spec checks.
pub fn validate_params(p: &ComputeParameters) -> Result<(), Invalid> {
    if !valid_hostname(&p.host_name) {
        return Err(Invalid::new(
            "InvalidSpec",
            format!(
                "spec.forProvider.hostName {:?} is not a valid hostname: use 1-63 letters, digits and hyphens, not starting or ending with a hyphen",
                p.host_name
            ),
        ));
    }
    for (field, v) in [
        ("image", &p.image),
        ("region", &p.region),
        ("specification", &p.specification),
    ] {
        if v.trim().is_empty() {
            return Err(Invalid::new(
                "InvalidSpec",
                format!("spec.forProvider.{field} must not be empty"),
            ));
        }
    }
    if p.public_keys.is_empty() || p.public_keys.iter().any(|k| k.trim().is_empty()) {
        return Err(Invalid::new(
            "InvalidSpec",
            "spec.forProvider.publicKeys needs at least one non-empty SSH public key",
        ));
    }
    if let Some(t) = p.tags.iter().find(|t| t.starts_with(OWNER_TAG_PREFIX)) {
        return Err(Invalid::new(
            "InvalidSpec",
            format!(
                "spec.forProvider.tags: {t:?} uses the reserved prefix {OWNER_TAG_PREFIX:?}; the operator sets that tag itself"
            ),
        ));
    }
    Ok(())
}

/// Check a spec against the offer.
pub fn check_against_offer(p: &ComputeParameters, offer: &Offer) -> Result<(), Invalid> {
    fn unknown(field: &str, value: &str, available: Vec<&str>) -> Invalid {
        Invalid::new(
            "NotOffered",
            format!(
                "spec.forProvider.{field} {value:?} is not offered by Strettch; available: {}",
                available.join(", ")
            ),
        )
    }
    if !offer.regions.iter().any(|r| r.region == p.region) {
        return Err(unknown(
            "region",
            &p.region,
            offer.regions.iter().map(|r| r.region.as_str()).collect(),
        ));
    }
    if !offer.images.iter().any(|i| i.image == p.image) {
        return Err(unknown(
            "image",
            &p.image,
            offer.images.iter().map(|i| i.image.as_str()).collect(),
        ));
    }
    if !offer
        .specifications
        .iter()
        .any(|s| s.specification == p.specification)
    {
        return Err(unknown(
            "specification",
            &p.specification,
            offer
                .specifications
                .iter()
                .map(|s| s.specification.as_str())
                .collect(),
        ));
    }
    Ok(())
}

fn size(specs: &[Specification], slug: &str) -> Option<(u32, u64, u64)> {
    specs
        .iter()
        .find(|s| s.specification == slug)
        .map(|s| (s.vcpus, s.memory_mb, s.storage_gb))
}

fn digest_keys(keys: &[String]) -> String {
    let mut h = Sha256::new();
    for k in keys {
        h.update(k.trim().as_bytes());
        h.update(b"\n");
    }
    h.finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn immutable(field: &str, from: &str, to: &str) -> Invalid {
    Invalid::new(
        "ImmutableFieldChanged",
        format!(
            "spec.forProvider.{field} changed from {from:?} to {to:?}, which the Strettch API cannot change on an existing compute; revert it, or create a new Compute"
        ),
    )
}

/// Pure diff of desired against observed.
pub fn plan(d: &DesiredCompute, o: &model::Compute, digest: Option<&str>) -> Plan<ComputeAction> {
    let p = &d.params;
    if o.image != p.image {
        return Plan::Impossible(immutable("image", &o.image, &p.image));
    }
    if o.region != p.region {
        return Plan::Impossible(immutable("region", &o.region, &p.region));
    }
    if o.host_name != p.host_name {
        return Plan::Impossible(immutable("hostName", &o.host_name, &p.host_name));
    }
    if let Some(recorded) = digest
        && recorded != digest_keys(&p.public_keys)
    {
        return Plan::Impossible(Invalid::new(
            "ImmutableFieldChanged",
            "spec.forProvider.publicKeys changed, which the Strettch API cannot change on an existing compute; revert them, or create a new Compute",
        ));
    }
    let mut observed_tags: Vec<&String> = o
        .tags
        .iter()
        .filter(|t| !t.starts_with(OWNER_TAG_PREFIX))
        .collect();
    let mut desired_tags: Vec<&String> = p.tags.iter().collect();
    observed_tags.sort();
    desired_tags.sort();
    if observed_tags != desired_tags {
        return Plan::Impossible(immutable(
            "tags",
            &format!("{observed_tags:?}"),
            &format!("{desired_tags:?}"),
        ));
    }
    // One step at a time: the API upsizes only a running compute, and every action passes
    // through a transitional state before the next can be made.
    let mut actions = Vec::new();
    let needs_upsize = if o.specification != p.specification {
        let specs = d
            .offer
            .as_ref()
            .map(|o| o.specifications.as_slice())
            .unwrap_or(&[]);
        match (size(specs, &o.specification), size(specs, &p.specification)) {
            (Some(from), Some(to)) if to.0 >= from.0 && to.1 >= from.1 && to.2 >= from.2 => true,
            _ => {
                return Plan::Impossible(Invalid::new(
                    "DownsizeNotSupported",
                    format!(
                        "spec.forProvider.specification {:?} is not larger than the current {:?}; Strettch can only upsize: revert it, or create a new Compute",
                        p.specification, o.specification
                    ),
                ));
            }
        }
    } else {
        false
    };
    match (&o.state, p.power_state, needs_upsize) {
        (ComputeState::Running, _, true) => {
            actions.push(ComputeAction::Upsize(p.specification.clone()))
        }
        (ComputeState::Running, PowerState::Stopped, false) => actions.push(ComputeAction::Stop),
        // Upsizing a stopped compute means starting it first; it is stopped again afterwards.
        (ComputeState::Stopped, PowerState::Running, _) | (ComputeState::Stopped, _, true) => {
            actions.push(ComputeAction::Start)
        }
        _ => {}
    }
    if actions.is_empty() {
        Plan::UpToDate
    } else {
        Plan::Update(actions)
    }
}

pub fn observation(o: &model::Compute) -> ComputeObservation {
    ComputeObservation {
        id: o.id.clone(),
        state: Some(o.state.to_string()),
        ipv4: o.ipv4.clone(),
        private_ipv4: o.private_ipv4.clone(),
        specification: Some(o.specification.clone()),
        created_at: o.created_at.clone(),
        updated_at: o.updated_at.clone(),
    }
}

/// Observe one compute: from the shared listing, or with a GET when that is cheaper or asked for.
pub async fn observe_compute(
    cloud: &StrettchCloud,
    id: &str,
    fresh: Freshness,
) -> Result<Option<model::Compute>, CloudError> {
    cloud
        .computes
        .observe(
            id,
            fresh,
            |p| cloud.client.get_compute(id, p),
            |p| cloud.client.list_all_computes(p),
        )
        .await
}

#[async_trait::async_trait]
impl Adapter for ComputeAdapter {
    type Kind = Compute;
    type Cloud = StrettchCloud;
    type Observed = model::Compute;
    type Desired = DesiredCompute;
    type Action = ComputeAction;
    type CreateRequest = ComputeCreate;

    const PROVIDER: &'static str = super::PROVIDER;
    const CONTROLLER: &'static str = "compute";

    crate::managed_kind_accessors!(observation);

    fn validate(obj: &Compute) -> Result<(), Invalid> {
        validate_params(&obj.spec.for_provider)
    }

    async fn desired(
        &self,
        _kube: &kube::Client,
        obj: &Compute,
    ) -> Result<DesiredCompute, Blocked> {
        Ok(DesiredCompute {
            params: obj.spec.for_provider.clone(),
            uid: obj.uid().unwrap_or_default(),
            offer: None,
        })
    }

    async fn check_offer(
        &self,
        cloud: &StrettchCloud,
        desired: &mut DesiredCompute,
    ) -> Result<Result<(), Blocked>, CloudError> {
        let offer = cloud.offer().await?;
        let verdict = check_against_offer(&desired.params, &offer);
        desired.offer = Some(offer);
        Ok(verdict.map_err(Blocked::Invalid))
    }

    async fn observe(
        &self,
        cloud: &StrettchCloud,
        _obj: &Compute,
        id: &str,
        fresh: Freshness,
    ) -> Result<Option<model::Compute>, CloudError> {
        observe_compute(cloud, id, fresh).await
    }

    fn create_request(_obj: &Compute, d: &DesiredCompute) -> ComputeCreate {
        let p = &d.params;
        let mut tags = p.tags.clone();
        tags.push(owner_tag(&d.uid));
        ComputeCreate {
            host_name: p.host_name.clone(),
            image: p.image.clone(),
            region: p.region.clone(),
            specification: p.specification.clone(),
            public_keys: p.public_keys.clone(),
            with_public_ip: p.with_public_ip,
            tags,
        }
    }

    async fn find_created(
        &self,
        cloud: &StrettchCloud,
        obj: &Compute,
        _request: &ComputeCreate,
    ) -> Result<Option<Found<model::Compute>>, CloudError> {
        let tag = owner_tag(&obj.uid().unwrap_or_default());
        // A listing that started after this call did: it sees what any earlier attempt made.
        cloud
            .computes
            .get("", Duration::ZERO, || {
                cloud.client.list_all_computes(Priority::Urgent)
            })
            .await?;
        Ok(cloud
            .computes
            .find(|c| c.tags.contains(&tag) && c.state != ComputeState::Destroyed)
            .map(|observed| Found {
                observed,
                proof: Proof::OwnershipMarker,
            }))
    }

    async fn create(
        &self,
        cloud: &StrettchCloud,
        _obj: &Compute,
        req: &ComputeCreate,
        key: Uuid,
    ) -> Result<Created<model::Compute>, CloudError> {
        let created = cloud.client.create_compute(req, key).await?;
        cloud.computes.put(created.clone());
        Ok(created.into())
    }

    fn created_at(o: &model::Compute) -> Option<jiff::Timestamp> {
        o.created_at.as_deref().and_then(|t| t.parse().ok())
    }

    fn create_only_digest(d: &DesiredCompute) -> Option<String> {
        Some(digest_keys(&d.params.public_keys))
    }

    fn plan(d: &DesiredCompute, o: &model::Compute, digest: Option<&str>) -> Plan<ComputeAction> {
        plan(d, o, digest)
    }

    async fn act(
        &self,
        cloud: &StrettchCloud,
        o: &model::Compute,
        action: &ComputeAction,
    ) -> Result<model::Compute, CloudError> {
        let next = match action {
            ComputeAction::Upsize(spec) => cloud.client.upsize_compute(&o.id, spec).await?,
            ComputeAction::Start => cloud.client.start_compute(&o.id).await?,
            ComputeAction::Stop => cloud.client.stop_compute(&o.id).await?,
        };
        cloud.computes.put(next.clone());
        Ok(next)
    }

    async fn delete(&self, cloud: &StrettchCloud, o: &model::Compute) -> Result<(), CloudError> {
        cloud.client.delete_compute(&o.id).await?;
        let mut deleting = o.clone();
        deleting.state = ComputeState::Destroying;
        cloud.computes.put(deleting);
        Ok(())
    }

    fn external_id(o: &model::Compute) -> String {
        o.id.clone()
    }

    fn is_deleting(o: &model::Compute) -> bool {
        matches!(o.state, ComputeState::Destroying | ComputeState::Destroyed)
    }

    fn is_transitional(o: &model::Compute) -> bool {
        o.state.is_transitional()
    }

    fn readiness(o: &model::Compute) -> Readiness {
        match &o.state {
            ComputeState::Running | ComputeState::Stopped => {
                Readiness::Available(format!("compute {} is {}", o.id, o.state))
            }
            ComputeState::Creating => {
                Readiness::Creating(format!("compute {} is being created", o.id))
            }
            ComputeState::Destroying | ComputeState::Destroyed => {
                Readiness::Deleting(format!("compute {} is being deleted", o.id))
            }
            other => Readiness::Unavailable(format!("compute {} is {other}", o.id)),
        }
    }
}

use std::time::Duration;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::strettch::model::{Image, Region};

    fn offer() -> Arc<Offer> {
        let spec = |slug: &str, vcpus, mem, disk| Specification {
            id: slug.into(),
            specification: slug.into(),
            vcpus,
            memory_mb: mem,
            storage_gb: disk,
        };
        Arc::new(Offer {
            regions: vec![Region {
                id: 1,
                region: "KGL-1".into(),
                name: "Kigali-1".into(),
                country_code: "RW".into(),
            }],
            images: vec![Image {
                image: "UBUNTU-24.04".into(),
                image_name: "Ubuntu".into(),
                version: "24.04".into(),
                display_name: "Ubuntu 24.04 LTS".into(),
            }],
            specifications: vec![spec("S-1C-1G", 1, 1024, 25), spec("S-2C-4G", 2, 4096, 80)],
        })
    }

    fn params() -> ComputeParameters {
        ComputeParameters {
            host_name: "web-01".into(),
            image: "UBUNTU-24.04".into(),
            region: "KGL-1".into(),
            specification: "S-1C-1G".into(),
            public_keys: vec!["ssh-ed25519 AAAA ops".into()],
            with_public_ip: true,
            tags: vec!["web".into()],
            power_state: PowerState::Running,
        }
    }

    fn desired(p: ComputeParameters) -> DesiredCompute {
        DesiredCompute {
            params: p,
            uid: "u1".into(),
            offer: Some(offer()),
        }
    }

    fn observed() -> model::Compute {
        model::Compute {
            id: "7".into(),
            host_name: "web-01".into(),
            state: ComputeState::Running,
            image: "UBUNTU-24.04".into(),
            specification: "S-1C-1G".into(),
            region: "KGL-1".into(),
            ipv4: Some("195.15.0.7".into()),
            private_ipv4: Some("10.0.0.7".into()),
            tags: vec!["web".into(), owner_tag("u1")],
            created_at: None,
            updated_at: None,
        }
    }

    #[test]
    fn matching_compute_is_up_to_date() {
        let d = desired(params());
        let digest = digest_keys(&d.params.public_keys);
        assert_eq!(plan(&d, &observed(), Some(&digest)), Plan::UpToDate);
    }

    #[test]
    fn power_state_and_upsize_become_actions() {
        let mut p = params();
        p.power_state = PowerState::Stopped;
        p.specification = "S-2C-4G".into();
        assert_eq!(
            plan(&desired(p.clone()), &observed(), None),
            Plan::Update(vec![ComputeAction::Upsize("S-2C-4G".into())])
        );
        // Upsized and running: now stop.
        let mut upsized = observed();
        upsized.specification = "S-2C-4G".into();
        assert_eq!(
            plan(&desired(p.clone()), &upsized, None),
            Plan::Update(vec![ComputeAction::Stop])
        );
        // Stopped with a pending upsize: start first.
        let mut stopped_small = observed();
        stopped_small.state = ComputeState::Stopped;
        assert_eq!(
            plan(&desired(p), &stopped_small, None),
            Plan::Update(vec![ComputeAction::Start])
        );
        let mut stopped = observed();
        stopped.state = ComputeState::Stopped;
        assert_eq!(
            plan(&desired(params()), &stopped, None),
            Plan::Update(vec![ComputeAction::Start])
        );
    }

    #[test]
    fn downsize_and_immutable_changes_are_impossible_without_a_call() {
        let mut big = observed();
        big.specification = "S-2C-4G".into();
        match plan(&desired(params()), &big, None) {
            Plan::Impossible(i) => assert_eq!(i.reason, "DownsizeNotSupported"),
            other => panic!("{other:?}"),
        }
        let mut p = params();
        p.image = "DEBIAN-12".into();
        match plan(&desired(p), &observed(), None) {
            Plan::Impossible(i) => assert!(i.message.contains("image"), "{}", i.message),
            other => panic!("{other:?}"),
        }
        let mut p = params();
        p.public_keys = vec!["ssh-ed25519 BBBB other".into()];
        let recorded = digest_keys(&params().public_keys);
        assert!(matches!(
            plan(&desired(p), &observed(), Some(&recorded)),
            Plan::Impossible(_)
        ));
    }

    #[test]
    fn validation_names_the_field() {
        let mut p = params();
        p.host_name = "-bad".into();
        assert!(
            validate_params(&p)
                .unwrap_err()
                .message
                .contains("hostName")
        );
        let mut p = params();
        p.public_keys.clear();
        assert!(
            validate_params(&p)
                .unwrap_err()
                .message
                .contains("publicKeys")
        );
        let mut p = params();
        p.tags.push("stratus-uid:x".into());
        assert!(validate_params(&p).is_err());
        assert!(validate_params(&params()).is_ok());
    }

    #[test]
    fn offer_check_lists_what_is_available() {
        let mut p = params();
        p.region = "NBO-1".into();
        let err = check_against_offer(&p, &offer()).unwrap_err();
        assert_eq!(err.reason, "NotOffered");
        assert!(err.message.contains("KGL-1"), "{}", err.message);
        assert!(check_against_offer(&params(), &offer()).is_ok());
    }
}
