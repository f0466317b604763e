//! Apps on the network: publishing (a subdomain under vertraweb.app), the custom domain and
//! the DNS records it needs. Names are unique across the account's apps.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::super::plan::Plan;
use super::super::reply::ApiError;
use super::super::wire::{DnsRecord, Publication, codes};
use super::apps::{APP_DOMAIN, AppRec};
use super::{State, random_text};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CustomDomain {
    pub domain: String,
    /// The TXT record's value.
    pub token: String,
    /// The records are validated (`/_sim` marks them).
    pub active: bool,
}

/// The subdomain a publish or a create asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubdomainWish {
    Random,
    Named(String),
}

impl AppRec {
    pub fn publication(&self) -> Publication {
        Publication {
            subdomain: self.host(),
            custom_domain: self.custom_domain.as_ref().map(|c| c.domain.clone()),
            kind: self.kind(),
        }
    }

    /// The records the custom domain needs.
    pub fn dns_records(&self) -> Result<Vec<DnsRecord>, ApiError> {
        let c = self.custom_domain.as_ref().ok_or_else(no_custom_domain)?;
        let status = if c.active {
            "active"
        } else {
            "pending_validation"
        };
        Ok(vec![
            DnsRecord {
                kind: "CNAME".into(),
                name: c.domain.clone(),
                value: self.host(),
                status: status.into(),
            },
            DnsRecord {
                kind: "TXT".into(),
                name: format!("_vertra-challenge.{}", c.domain),
                value: Some(format!("vertra-verify={}", c.token)),
                status: status.into(),
            },
        ])
    }
}

pub fn no_custom_domain() -> ApiError {
    ApiError::not_found(codes::NO_CUSTOM_DOMAIN, "the app has no custom domain")
}

fn not_published() -> ApiError {
    ApiError::bad_request(
        codes::APP_HAS_NO_SUBDOMAIN,
        "the app is not published; publish it first (POST …/network/publish)",
    )
}

fn taken(label: &str) -> ApiError {
    ApiError::conflict(
        codes::SUBDOMAIN_TAKEN,
        format!("the subdomain {label}.{APP_DOMAIN} is taken"),
    )
}

impl State {
    fn label_taken(&self, label: &str, except: Option<&str>) -> bool {
        self.apps
            .values()
            .any(|a| a.subdomain.as_deref() == Some(label) && Some(a.id.as_str()) != except)
    }

    /// A free label for a random subdomain.
    fn random_label(&self) -> String {
        loop {
            let label = random_text(10).to_ascii_lowercase();
            if !self.label_taken(&label, None) {
                return label;
            }
        }
    }

    /// The label a wish gets, with the plan's gates: publishing needs Pro, naming needs Scale.
    pub(super) fn grant_label(
        &self,
        wish: &SubdomainWish,
        plan: Plan,
        except: Option<&str>,
    ) -> Result<String, ApiError> {
        if !plan.can_publish() {
            return Err(ApiError::plan(
                "publishing an app needs the Pro plan or above",
            ));
        }
        match wish {
            SubdomainWish::Random => Ok(self.random_label()),
            SubdomainWish::Named(label) => {
                if !plan.can_name_subdomain() {
                    return Err(ApiError::plan(
                        "choosing a subdomain's name needs the Scale plan or above; omit it (or \
                         send \"random\") for a random one",
                    ));
                }
                if self.label_taken(label, except) {
                    return Err(taken(label));
                }
                Ok(label.clone())
            }
        }
    }

    /// Publishes app `id` (owner only: no workspace scope).
    pub fn publish(
        &mut self,
        id: &str,
        wish: SubdomainWish,
        plan: Plan,
        now: Timestamp,
    ) -> Result<Publication, ApiError> {
        let app = self.app(id, None, now)?;
        app.ensure_idle()?;
        if app.subdomain.is_some() {
            return Err(ApiError::bad_request(
                codes::APP_ALREADY_PUBLISHED,
                "the app is already published; change its name with PATCH …/network/subdomain",
            ));
        }
        if app.ram < 512 {
            return Err(ApiError::validation(
                &["ram"],
                format!("a published app needs at least 512 MB; it has {}", app.ram),
            ));
        }
        let label = self.grant_label(&wish, plan, Some(id))?;
        let app = self.app(id, None, now)?;
        app.subdomain = Some(label);
        app.updated_at = now;
        Ok(app.publication())
    }

    /// Unpublishes app `id`: its subdomain and custom domain are released.
    pub fn unpublish(&mut self, id: &str, now: Timestamp) -> Result<Publication, ApiError> {
        let app = self.app(id, None, now)?;
        app.ensure_idle()?;
        if app.subdomain.is_none() {
            return Err(not_published());
        }
        app.subdomain = None;
        app.custom_domain = None;
        app.updated_at = now;
        Ok(app.publication())
    }

    /// Checks a subdomain change could be made (before its budget counts it).
    pub fn check_subdomain(
        &mut self,
        id: &str,
        scope: Option<&str>,
        now: Timestamp,
    ) -> Result<(), ApiError> {
        if self.app(id, scope, now)?.subdomain.is_none() {
            return Err(not_published());
        }
        Ok(())
    }

    pub fn set_subdomain(
        &mut self,
        id: &str,
        scope: Option<&str>,
        label: String,
        plan: Plan,
        now: Timestamp,
    ) -> Result<String, ApiError> {
        self.check_subdomain(id, scope, now)?;
        let label = self.grant_label(&SubdomainWish::Named(label), plan, Some(id))?;
        let app = self.app(id, scope, now)?;
        app.subdomain = Some(label);
        app.updated_at = now;
        Ok(app.host().unwrap_or_default())
    }

    /// Sets (replaces) the custom domain; its records start `pending_validation`.
    pub fn set_custom_domain(
        &mut self,
        id: &str,
        scope: Option<&str>,
        domain: String,
        plan: Plan,
        now: Timestamp,
    ) -> Result<(), ApiError> {
        if !plan.has_custom_domains() {
            return Err(ApiError::plan(
                "custom domains need the Intermediary plan or above",
            ));
        }
        if self.app(id, scope, now)?.subdomain.is_none() {
            return Err(not_published());
        }
        let used = self
            .apps
            .values()
            .any(|a| a.id != id && a.custom_domain.as_ref().is_some_and(|c| c.domain == domain));
        if used {
            return Err(ApiError::bad_request(
                codes::DOMAIN_ALREADY_IN_USE,
                format!("{domain} is another app's custom domain"),
            ));
        }
        let app = self.app(id, scope, now)?;
        if app
            .custom_domain
            .as_ref()
            .is_some_and(|c| c.domain == domain)
        {
            return Ok(());
        }
        app.custom_domain = Some(CustomDomain {
            domain,
            token: random_text(32),
            active: false,
        });
        app.updated_at = now;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::apps::tests::new_app;
    use super::*;

    #[test]
    fn publishing_follows_the_plan_and_names_are_unique() {
        let mut st = State::new(Timestamp::now());
        let t = Timestamp::now();
        let a = st
            .insert_app(new_app(&[], false), Plan::Scale, t, Duration::ZERO)
            .unwrap();
        let b = st
            .insert_app(new_app(&[], false), Plan::Scale, t, Duration::ZERO)
            .unwrap();
        let named = SubdomainWish::Named("shop".into());
        let e = st.publish(&a, named.clone(), Plan::Economy, t).unwrap_err();
        assert_eq!(e.code, codes::PLAN_RESTRICTED_FEATURE);
        let e = st.publish(&a, named.clone(), Plan::Pro, t).unwrap_err();
        assert_eq!(e.code, codes::PLAN_RESTRICTED_FEATURE);
        let p = st.publish(&a, named.clone(), Plan::Scale, t).unwrap();
        assert_eq!(
            (p.subdomain.as_deref(), p.kind),
            (Some("shop.vertraweb.app"), 2)
        );
        assert_eq!(
            st.publish(&a, named.clone(), Plan::Scale, t)
                .unwrap_err()
                .code,
            codes::APP_ALREADY_PUBLISHED
        );
        assert_eq!(
            st.publish(&b, named, Plan::Scale, t).unwrap_err().code,
            codes::SUBDOMAIN_TAKEN
        );
        st.unpublish(&a, t).unwrap();
        assert_eq!(
            st.unpublish(&a, t).unwrap_err().code,
            codes::APP_HAS_NO_SUBDOMAIN
        );
    }
}
