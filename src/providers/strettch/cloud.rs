//! The Strettch side of a ProviderConfig: one client (and so one throttle per key), the shared
//! snapshots of each collection, and the cached offer (regions, images, specifications).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::client::{DEFAULT_ENDPOINT, MAX_PAGE_SIZE, StrettchClient, default_limits};
use super::model::{Compute, Domain, DomainStatus, Image, Record, Region, Specification};
use crate::api::provider_config::{Provider, ProviderConfigSpec};
use crate::cloud::throttle::{KeyThrottle, Priority};
use crate::cloud::{ApiKey, CloudError};
use crate::engine::snapshot::{Item, Snapshot};
use crate::engine::{Connect, ProviderError};

/// What the cloud offers; changes rarely, so it is read at most hourly.
#[derive(Debug, Clone)]
pub struct Offer {
    pub regions: Vec<Region>,
    pub images: Vec<Image>,
    pub specifications: Vec<Specification>,
}

const OFFER_TTL: Duration = Duration::from_secs(3600);

pub struct StrettchCloud {
    pub client: StrettchClient,
    pub computes: Snapshot<Compute>,
    pub domains: Snapshot<Domain>,
    records: Mutex<HashMap<String, Arc<Snapshot<Record>>>>,
    offer: tokio::sync::Mutex<Option<(Instant, Arc<Offer>)>>,
}

impl Connect for StrettchCloud {
    fn connect(
        config_name: &str,
        spec: &ProviderConfigSpec,
        key: ApiKey,
    ) -> Result<Self, ProviderError> {
        if spec.provider != Provider::Strettch {
            return Err(ProviderError::WrongProvider {
                config: config_name.into(),
                provider: spec.provider.as_str().into(),
            });
        }
        // Before any client exists, so a refused endpoint never sees a request (nor the key).
        spec.check_endpoint(DEFAULT_ENDPOINT)
            .map_err(|message| ProviderError::Invalid {
                config: config_name.into(),
                message,
            })?;
        let endpoint = spec.endpoint.as_deref().unwrap_or(DEFAULT_ENDPOINT);
        let policy =
            spec.throttle_policy(&default_limits())
                .map_err(|message| ProviderError::Invalid {
                    config: config_name.into(),
                    message,
                })?;
        let client = StrettchClient::for_provider_config(config_name, endpoint, key, policy)
            .map_err(|e| ProviderError::Invalid {
                config: config_name.into(),
                message: e.to_string(),
            })?;
        Ok(Self::new(client))
    }

    fn throttle(&self) -> Option<&Arc<KeyThrottle>> {
        Some(self.client.throttle())
    }
}

impl StrettchCloud {
    pub fn new(client: StrettchClient) -> Self {
        let budget = client.throttle().clone();
        Self {
            computes: Snapshot::paced(MAX_PAGE_SIZE as usize, budget.clone()),
            domains: Snapshot::paced(MAX_PAGE_SIZE as usize, budget),
            client,
            records: Mutex::new(HashMap::new()),
            offer: tokio::sync::Mutex::new(None),
        }
    }

    /// The shared record snapshot of one domain.
    pub fn records(&self, domain_id: &str) -> Arc<Snapshot<Record>> {
        self.records
            .lock()
            .entry(domain_id.to_string())
            .or_insert_with(|| {
                Arc::new(Snapshot::paced(
                    MAX_PAGE_SIZE as usize,
                    self.client.throttle().clone(),
                ))
            })
            .clone()
    }

    /// Drop the record snapshot of a deleted zone (its records went with it).
    pub fn forget_zone(&self, domain_id: &str) {
        self.records.lock().remove(domain_id);
    }

    /// Regions, images and specifications, read at most once an hour.
    pub async fn offer(&self) -> Result<Arc<Offer>, CloudError> {
        let mut cached = self.offer.lock().await;
        if let Some((at, offer)) = cached.as_ref()
            && at.elapsed() < OFFER_TTL
        {
            return Ok(offer.clone());
        }
        let offer = Arc::new(Offer {
            regions: self.client.list_regions(Priority::Urgent).await?,
            images: self.client.list_images(Priority::Urgent).await?,
            specifications: self.client.list_specifications(Priority::Urgent).await?,
        });
        *cached = Some((Instant::now(), offer.clone()));
        Ok(offer)
    }
}

impl Item for Compute {
    fn id(&self) -> &str {
        &self.id
    }
    fn is_transitional(&self) -> bool {
        self.state.is_transitional()
    }
}

impl Item for Domain {
    fn id(&self) -> &str {
        &self.id
    }
    fn is_transitional(&self) -> bool {
        self.status == DomainStatus::Activating
    }
}

impl Item for Record {
    fn id(&self) -> &str {
        &self.id
    }
    fn is_transitional(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(endpoint: &str, allow_insecure_endpoint: bool) -> ProviderConfigSpec {
        serde_json::from_value(serde_json::json!({
            "provider": "strettch",
            "endpoint": endpoint,
            "allowInsecureEndpoint": allow_insecure_endpoint,
            "credentials": {"secretRef": {"namespace": "ns", "name": "creds", "key": "apiKey"}},
        }))
        .unwrap()
    }

    #[test]
    fn a_plain_http_endpoint_off_loopback_is_an_invalid_provider_config() {
        let refused = StrettchCloud::connect(
            "remote",
            &spec("http://203.0.113.5:8080/api/v1", false),
            ApiKey::new("sk-connect-test-1"),
        );
        match refused {
            Err(e @ ProviderError::Invalid { .. }) => {
                assert_eq!(e.reason(), "InvalidProviderConfig");
                let message = e.to_string();
                assert!(message.contains("\"remote\""), "{message}");
                assert!(
                    message.contains("spec.allowInsecureEndpoint: true"),
                    "{message}"
                );
                assert!(!message.contains("sk-connect-test-1"), "{message}");
            }
            Err(e) => panic!("wrong error: {e}"),
            Ok(_) => panic!("an http:// endpoint on 203.0.113.5 was accepted"),
        }
    }

    #[test]
    fn a_plain_http_endpoint_connects_on_loopback_or_when_allowed() {
        for (endpoint, allow) in [
            ("http://127.0.0.1:8080/api/v1", false),
            ("http://203.0.113.5:8080/api/v1", true),
            ("https://203.0.113.5/api/v1", false),
        ] {
            let connected =
                StrettchCloud::connect("ok", &spec(endpoint, allow), ApiKey::new("sk-connect-2"));
            assert!(connected.is_ok(), "{endpoint} (allow {allow}) refused");
        }
    }
}
