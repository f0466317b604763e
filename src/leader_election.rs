//! Leader election on a `coordination.k8s.io/v1` Lease, so that only one replica reconciles.
//!
//! The protocol is client-go's: the holder writes `renewTime` every `lease_duration / 3`; another
//! candidate may take the lease once the holder's `renewTime + leaseDurationSeconds` has passed.
//! Every write is a PUT carrying the `resourceVersion` that was read, so when two candidates race
//! for a free lease the apiserver accepts exactly one write and answers the other with 409 Conflict.
//!
//! A leader that cannot renew steps down (its receiver turns `false`) once `2/3` of the lease
//! duration has passed since its last successful renewal — before anyone else may take over.
//! Expiry compares the holder's `renewTime` with the local clock, so this assumes clock skew
//! between replicas well below `lease_duration / 3` (as NTP-synchronised nodes have).
//!
//! When `STRATUS_LEASE_OWNER_DEPLOYMENT` names a Deployment in the Lease's namespace, the Lease
//! gets an ownerReference to it, so deleting the Deployment (e.g. `helm uninstall`) garbage-collects
//! the Lease. That needs `get` on that Deployment; without it the Lease simply has no owner.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference};
use kube::api::{Api, PostParams};
use tokio::sync::{Mutex, Notify, OnceCell, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Environment variable naming the Deployment that should own the Lease.
pub const OWNER_DEPLOYMENT_ENV: &str = "STRATUS_LEASE_OWNER_DEPLOYMENT";

/// What a candidate may do, given the Lease it just read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The candidate holds the lease: renew it.
    Renew,
    /// Nobody holds the lease, it was released, or the holder let it expire: take it.
    Acquire,
    /// Someone else holds a valid lease; it expires in `expires_in` unless renewed.
    Follow {
        holder: String,
        expires_in: Duration,
    },
}

/// Decide what `identity` may do with a lease whose spec is `spec`, at `now`.
///
/// The holder's own `leaseDurationSeconds` counts (falling back to `default_duration`), and
/// `renewTime` falls back to `acquireTime`; a held lease with neither time is treated as expired.
pub fn decide(
    spec: &LeaseSpec,
    identity: &str,
    default_duration: Duration,
    now: Timestamp,
) -> Decision {
    let holder = match spec.holder_identity.as_deref() {
        None | Some("") => return Decision::Acquire,
        Some(h) => h,
    };
    if holder == identity {
        return Decision::Renew;
    }
    let Some(renewed) = spec
        .renew_time
        .as_ref()
        .or(spec.acquire_time.as_ref())
        .map(|t| t.0)
    else {
        return Decision::Acquire;
    };
    let duration = spec
        .lease_duration_seconds
        .filter(|s| *s > 0)
        .map(|s| Duration::from_secs(s as u64))
        .unwrap_or(default_duration);
    let expires = renewed
        .checked_add(jiff::SignedDuration::try_from(duration).unwrap_or(jiff::SignedDuration::MAX))
        .unwrap_or(Timestamp::MAX);
    if now >= expires {
        return Decision::Acquire;
    }
    let left = expires.duration_since(now);
    Decision::Follow {
        holder: holder.to_string(),
        expires_in: Duration::try_from(left).unwrap_or(Duration::ZERO),
    }
}

/// The spec after `identity` takes (or renews) the lease at `now`.
pub fn held_by(
    spec: &LeaseSpec,
    identity: &str,
    lease_duration: Duration,
    now: Timestamp,
) -> LeaseSpec {
    let renewing = spec.holder_identity.as_deref() == Some(identity);
    let had_holder = spec
        .holder_identity
        .as_deref()
        .is_some_and(|h| !h.is_empty());
    LeaseSpec {
        holder_identity: Some(identity.to_string()),
        lease_duration_seconds: Some(lease_seconds(lease_duration)),
        acquire_time: if renewing {
            spec.acquire_time.clone().or(Some(MicroTime(now)))
        } else {
            Some(MicroTime(now))
        },
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(
            spec.lease_transitions.unwrap_or(0) + i32::from(!renewing && had_holder),
        ),
        ..spec.clone()
    }
}

/// The spec after its holder gives the lease up at `now`: no holder, so anyone may take it at once.
pub fn released(spec: &LeaseSpec, now: Timestamp) -> LeaseSpec {
    LeaseSpec {
        holder_identity: None,
        lease_duration_seconds: Some(1),
        renew_time: Some(MicroTime(now)),
        ..spec.clone()
    }
}

fn lease_seconds(d: Duration) -> i32 {
    d.as_secs_f64().ceil().clamp(1.0, i32::MAX as f64) as i32
}

/// Result of one acquire-or-renew round.
enum Round {
    Leading,
    Following { expires_in: Duration },
}

struct Inner {
    leases: Api<Lease>,
    deployments: Api<Deployment>,
    lease_name: String,
    identity: String,
    lease_duration: Duration,
    owner_deployment: Option<String>,
    owner: OnceCell<Option<OwnerReference>>,
    tx: watch::Sender<bool>,
    /// Set by [`LeaderElection::release`]; the loop holds the lock for a whole round, so once
    /// `release` has set it, no acquire or renew can happen any more.
    stopped: Mutex<bool>,
    wake: Notify,
}

/// A candidate for leadership of one Lease. Cheap to clone; clones share the same state.
#[derive(Clone)]
pub struct LeaderElection {
    inner: Arc<Inner>,
}

impl LeaderElection {
    /// A candidate `identity` for the Lease `namespace/lease_name`. The owner Deployment is taken
    /// from [`OWNER_DEPLOYMENT_ENV`] when set.
    pub fn new(
        client: kube::Client,
        namespace: &str,
        lease_name: &str,
        identity: &str,
        lease_duration: Duration,
    ) -> Self {
        let owner = std::env::var(OWNER_DEPLOYMENT_ENV)
            .ok()
            .filter(|s| !s.is_empty());
        let (tx, _) = watch::channel(false);
        let lease_duration = lease_duration.max(Duration::from_millis(300));
        LeaderElection {
            inner: Arc::new(Inner {
                leases: Api::namespaced(client.clone(), namespace),
                deployments: Api::namespaced(client, namespace),
                lease_name: lease_name.to_string(),
                identity: identity.to_string(),
                lease_duration,
                owner_deployment: owner,
                owner: OnceCell::new(),
                tx,
                stopped: Mutex::new(false),
                wake: Notify::new(),
            }),
        }
    }

    /// Override (or clear, with `None` or "") the Deployment that owns the Lease; call before
    /// cloning or spawning.
    pub fn with_owner_deployment(self, deployment: Option<&str>) -> Self {
        let mut inner = Arc::try_unwrap(self.inner).unwrap_or_else(|_| {
            panic!("with_owner_deployment must be called before the candidate is cloned")
        });
        inner.owner_deployment = deployment.filter(|d| !d.is_empty()).map(str::to_string);
        LeaderElection {
            inner: Arc::new(inner),
        }
    }

    /// Start campaigning. The receiver is `true` while this replica holds the lease. The task stops
    /// when every receiver is dropped or after [`release`](Self::release); if it stops any other
    /// way (abort, panic) receivers see `false` and the lease simply expires.
    pub fn spawn(self) -> watch::Receiver<bool> {
        self.spawn_with_handle().0
    }

    /// Like [`spawn`](Self::spawn), also returning the task (abort it to stop without releasing).
    pub fn spawn_with_handle(self) -> (watch::Receiver<bool>, JoinHandle<()>) {
        let rx = self.inner.tx.subscribe();
        let handle = tokio::spawn(campaign(self.inner));
        (rx, handle)
    }

    /// Whether this candidate currently leads.
    pub fn is_leader(&self) -> bool {
        *self.inner.tx.borrow()
    }

    /// Give the lease up (graceful shutdown): stop campaigning and, if this replica holds the lease,
    /// clear `holderIdentity` so a successor takes over at once instead of after the lease expires.
    /// Stop acting as leader before calling this.
    pub async fn release(&self) -> Result<(), kube::Error> {
        let inner = &self.inner;
        *inner.stopped.lock().await = true;
        inner.wake.notify_one();
        crate::metrics::global().set_leader(&inner.lease_name, false);
        inner.tx.send_replace(false);
        for _ in 0..5 {
            let Some(lease) = inner.leases.get_opt(&inner.lease_name).await? else {
                return Ok(());
            };
            let spec = lease.spec.clone().unwrap_or_default();
            if spec.holder_identity.as_deref() != Some(inner.identity.as_str()) {
                return Ok(());
            }
            let updated = Lease {
                spec: Some(released(&spec, Timestamp::now())),
                ..lease
            };
            match inner
                .leases
                .replace(&inner.lease_name, &PostParams::default(), &updated)
                .await
            {
                Ok(_) => {
                    tracing::info!(lease = %inner.lease_name, identity = %inner.identity, "released leadership");
                    return Ok(());
                }
                Err(kube::Error::Api(s)) if s.is_conflict() => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Turns the receivers `false` whenever the campaign ends, including by abort or panic.
struct StepDownOnDrop(Arc<Inner>);

impl Drop for StepDownOnDrop {
    fn drop(&mut self) {
        crate::metrics::global().set_leader(&self.0.lease_name, false);
        self.0.tx.send_replace(false);
    }
}

async fn campaign(inner: Arc<Inner>) {
    let _step_down = StepDownOnDrop(inner.clone());
    let retry = inner.lease_duration / 3;
    let renew_deadline = inner.lease_duration * 2 / 3;
    let mut last_renewed: Option<Instant> = None;
    loop {
        let pause = {
            let stopped = inner.stopped.lock().await;
            if *stopped || inner.tx.is_closed() {
                break;
            }
            let started = Instant::now();
            match tokio::time::timeout(retry, inner.round()).await {
                Ok(Ok(Round::Leading)) => {
                    last_renewed = Some(started);
                    inner.set_leader(true);
                    retry
                }
                Ok(Ok(Round::Following { expires_in })) => {
                    last_renewed = None;
                    inner.set_leader(false);
                    // Wake up right when the holder's lease would expire, if that comes first.
                    let jitter = Duration::from_millis(rand::random_range(10..60));
                    retry.min(expires_in + jitter)
                }
                Ok(Err(e)) => {
                    tracing::warn!(lease = %inner.lease_name, error = %e, "leader election round failed");
                    inner.step_down_if_overdue(&mut last_renewed, renew_deadline);
                    retry / 2
                }
                Err(_) => {
                    tracing::warn!(lease = %inner.lease_name, "leader election round timed out");
                    inner.step_down_if_overdue(&mut last_renewed, renew_deadline);
                    retry / 2
                }
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = inner.wake.notified() => {}
            _ = inner.tx.closed() => break,
        }
    }
}

impl Inner {
    fn set_leader(&self, leading: bool) {
        crate::metrics::global().set_leader(&self.lease_name, leading);
        let changed = self
            .tx
            .send_if_modified(|v| std::mem::replace(v, leading) != leading);
        if changed {
            if leading {
                tracing::info!(lease = %self.lease_name, identity = %self.identity, "acquired leadership");
            } else {
                tracing::info!(lease = %self.lease_name, identity = %self.identity, "not the leader");
            }
        }
    }

    fn step_down_if_overdue(&self, last_renewed: &mut Option<Instant>, deadline: Duration) {
        if last_renewed.is_some_and(|t| t.elapsed() >= deadline) {
            tracing::warn!(lease = %self.lease_name, "could not renew the lease in time; stepping down");
            *last_renewed = None;
            self.set_leader(false);
        }
    }

    async fn round(&self) -> Result<Round, kube::Error> {
        let now = Timestamp::now();
        let Some(lease) = self.leases.get_opt(&self.lease_name).await? else {
            return self.create(now).await;
        };
        let spec = lease.spec.clone().unwrap_or_default();
        match decide(&spec, &self.identity, self.lease_duration, now) {
            Decision::Follow { expires_in, .. } => Ok(Round::Following { expires_in }),
            Decision::Renew | Decision::Acquire => {
                let mut metadata = lease.metadata;
                self.add_owner(&mut metadata).await;
                let updated = Lease {
                    metadata,
                    spec: Some(held_by(&spec, &self.identity, self.lease_duration, now)),
                };
                match self
                    .leases
                    .replace(&self.lease_name, &PostParams::default(), &updated)
                    .await
                {
                    Ok(_) => Ok(Round::Leading),
                    // Someone else wrote the lease since we read it: they won this round.
                    Err(kube::Error::Api(s)) if s.is_conflict() => Ok(Round::Following {
                        expires_in: Duration::ZERO,
                    }),
                    Err(e) => Err(e),
                }
            }
        }
    }

    async fn create(&self, now: Timestamp) -> Result<Round, kube::Error> {
        let mut metadata = ObjectMeta {
            name: Some(self.lease_name.clone()),
            ..ObjectMeta::default()
        };
        self.add_owner(&mut metadata).await;
        let lease = Lease {
            metadata,
            spec: Some(held_by(
                &LeaseSpec::default(),
                &self.identity,
                self.lease_duration,
                now,
            )),
        };
        match self.leases.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(Round::Leading),
            Err(kube::Error::Api(s)) if s.is_already_exists() || s.is_conflict() => {
                Ok(Round::Following {
                    expires_in: Duration::ZERO,
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Add the owner Deployment's reference to `metadata` unless it is there already.
    async fn add_owner(&self, metadata: &mut ObjectMeta) {
        let Some(owner) = self.owner_reference().await else {
            return;
        };
        let refs = metadata.owner_references.get_or_insert_with(Vec::new);
        if !refs.iter().any(|r| r.uid == owner.uid) {
            refs.push(owner);
        }
    }

    /// The owner Deployment's reference, looked up once.
    async fn owner_reference(&self) -> Option<OwnerReference> {
        let name = self.owner_deployment.as_deref()?;
        self.owner
            .get_or_init(|| async {
                match self.deployments.get(name).await {
                    Ok(d) => d.metadata.uid.map(|uid| OwnerReference {
                        api_version: "apps/v1".into(),
                        kind: "Deployment".into(),
                        name: name.to_string(),
                        uid,
                        ..OwnerReference::default()
                    }),
                    Err(e) => {
                        tracing::warn!(deployment = name, error = %e, "cannot read the owner Deployment; the lease gets no owner reference");
                        None
                    }
                }
            })
            .await
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Duration = Duration::from_secs(15);

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).unwrap()
    }

    fn held(holder: &str, renewed: i64, seconds: Option<i32>) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            renew_time: Some(MicroTime(t(renewed))),
            acquire_time: Some(MicroTime(t(renewed - 100))),
            lease_duration_seconds: seconds,
            lease_transitions: Some(3),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn a_free_or_released_lease_may_be_taken() {
        assert_eq!(
            decide(&LeaseSpec::default(), "me", D, t(0)),
            Decision::Acquire
        );
        let released = LeaseSpec {
            holder_identity: Some(String::new()),
            ..held("x", 0, Some(15))
        };
        assert_eq!(decide(&released, "me", D, t(0)), Decision::Acquire);
    }

    #[test]
    fn the_holder_renews() {
        assert_eq!(
            decide(&held("me", 0, Some(15)), "me", D, t(5)),
            Decision::Renew
        );
        // Even when it let the lease run out: nobody else took it.
        assert_eq!(
            decide(&held("me", 0, Some(15)), "me", D, t(500)),
            Decision::Renew
        );
    }

    #[test]
    fn a_live_lease_is_followed_until_it_expires() {
        let lease = held("other", 0, Some(15));
        assert_eq!(
            decide(&lease, "me", D, t(10)),
            Decision::Follow {
                holder: "other".into(),
                expires_in: Duration::from_secs(5)
            }
        );
        assert_eq!(
            decide(&lease, "me", D, t(15)),
            Decision::Acquire,
            "expires exactly at renewTime + duration"
        );
        assert_eq!(decide(&lease, "me", D, t(16)), Decision::Acquire);
    }

    #[test]
    fn the_holders_duration_counts_not_ours() {
        let lease = held("other", 0, Some(60));
        assert!(matches!(
            decide(&lease, "me", D, t(30)),
            Decision::Follow { .. }
        ));
        let short = held("other", 0, Some(2));
        assert_eq!(decide(&short, "me", D, t(3)), Decision::Acquire);
        // Without one, ours applies.
        let unset = held("other", 0, None);
        assert!(matches!(
            decide(&unset, "me", D, t(14)),
            Decision::Follow { .. }
        ));
        assert_eq!(decide(&unset, "me", D, t(15)), Decision::Acquire);
    }

    #[test]
    fn missing_renew_time_falls_back_to_acquire_time_then_to_expired() {
        let mut lease = held("other", 0, Some(15));
        lease.renew_time = None; // acquireTime is t(-100)
        assert_eq!(decide(&lease, "me", D, t(0)), Decision::Acquire);
        lease.acquire_time = Some(MicroTime(t(0)));
        assert!(matches!(
            decide(&lease, "me", D, t(1)),
            Decision::Follow { .. }
        ));
        lease.acquire_time = None;
        assert_eq!(decide(&lease, "me", D, t(1)), Decision::Acquire);
    }

    #[test]
    fn a_clock_behind_the_holder_follows() {
        // renewTime in our future (skew): the lease is live for longer, never taken early.
        let lease = held("other", 10, Some(15));
        assert_eq!(
            decide(&lease, "me", D, t(0)),
            Decision::Follow {
                holder: "other".into(),
                expires_in: Duration::from_secs(25)
            }
        );
    }

    #[test]
    fn taking_over_counts_a_transition_renewing_does_not() {
        let taken = held_by(
            &held("other", 0, Some(15)),
            "me",
            Duration::from_secs(2),
            t(20),
        );
        assert_eq!(taken.holder_identity.as_deref(), Some("me"));
        assert_eq!(taken.lease_transitions, Some(4));
        assert_eq!(taken.acquire_time, Some(MicroTime(t(20))));
        assert_eq!(taken.renew_time, Some(MicroTime(t(20))));
        assert_eq!(taken.lease_duration_seconds, Some(2));

        let renewed = held_by(&taken, "me", Duration::from_secs(2), t(21));
        assert_eq!(renewed.lease_transitions, Some(4));
        assert_eq!(renewed.acquire_time, Some(MicroTime(t(20))));
        assert_eq!(renewed.renew_time, Some(MicroTime(t(21))));

        let fresh = held_by(
            &LeaseSpec::default(),
            "me",
            Duration::from_millis(1500),
            t(0),
        );
        assert_eq!(fresh.lease_transitions, Some(0));
        assert_eq!(
            fresh.lease_duration_seconds,
            Some(2),
            "rounded up to whole seconds"
        );
    }

    #[test]
    fn a_released_lease_is_free_at_once() {
        let r = released(&held("me", 0, Some(15)), t(1));
        assert_eq!(r.holder_identity, None);
        assert_eq!(decide(&r, "other", D, t(1)), Decision::Acquire);
        assert_eq!(r.lease_transitions, Some(3));
    }
}
