//! Pure construction of the kstatus-compatible conditions (Ready, Synced, Reconciling, Stalled)
//! from what a reconcile found. No I/O here; unit-tested without a cluster.

use crate::api::common::{Condition, ConnectionSecretStatus};

pub const READY: &str = "Ready";
pub const SYNCED: &str = "Synced";
pub const RECONCILING: &str = "Reconciling";
pub const STALLED: &str = "Stalled";
/// The condition type reporting the connection Secret (for kinds that write one).
pub const CONNECTION_SECRET: &str = "ConnectionSecret";
/// Ready's reason while the cloud resource is available but the connection Secret does not
/// hold the credential's value: what consumes the Secret cannot work yet.
pub const WAITING_FOR_CONNECTION_SECRET: &str = "WaitingForConnectionSecret";

/// Availability of the cloud resource (the `Ready` condition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// The resource exists and is usable.
    Available(String),
    /// Being created (or not created yet).
    Creating(String),
    /// Being deleted.
    Deleting(String),
    /// Not usable: the message says why (the specific reason is on Synced/Stalled/Reconciling).
    Unavailable(String),
    /// Waiting for a dependency (a Domain to be active, a Compute to get an address, a
    /// registrar); the reason names it.
    Waiting { reason: String, message: String },
}

/// How the last reconcile went (the `Synced` condition, plus `Stalled`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sync {
    /// Desired and observed state agree, or the needed changes were made.
    Success,
    /// Reconciliation is paused by annotation.
    Paused,
    /// The cloud resource differs from the spec, and the management policies say not to change
    /// it (observe-only): reported, not retried, nothing in flight.
    Differs(String),
    /// An error that retrying may fix; the operator keeps retrying with backoff.
    Error { reason: String, message: String },
    /// An error that needs a change by a human (spec, credentials, account); retried rarely.
    Stalled { reason: String, message: String },
}

/// What one reconcile concluded; turned into conditions by [`conditions`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub readiness: Readiness,
    pub sync: Sync,
    /// Work is in flight (a create, update, delete or a transitional cloud state).
    pub progressing: Option<String>,
}

fn condition(
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: &str,
) -> Condition {
    Condition {
        type_: type_.into(),
        status: if status { "True" } else { "False" }.into(),
        reason: reason.into(),
        message: message.into(),
        last_transition_time: now.into(),
        observed_generation: generation,
    }
}

/// The full set of conditions for an outcome. Messages are never empty (apiserver 1.20's
/// server-side apply turns an empty required string into null and rejects it). `previous` keeps lastTransitionTime stable when a
/// condition's status did not change.
pub fn conditions(
    outcome: &Outcome,
    generation: Option<i64>,
    previous: &[Condition],
    now: &str,
) -> Vec<Condition> {
    let (ready, ready_reason, ready_msg) = match &outcome.readiness {
        Readiness::Available(m) => (true, "Available", m.as_str()),
        Readiness::Creating(m) => (false, "Creating", m.as_str()),
        Readiness::Deleting(m) => (false, "Deleting", m.as_str()),
        Readiness::Unavailable(m) => (false, "Unavailable", m.as_str()),
        Readiness::Waiting { reason, message } => (false, reason.as_str(), message.as_str()),
    };
    let (synced, sync_reason, sync_msg) = match &outcome.sync {
        Sync::Success => (
            true,
            "ReconcileSuccess",
            "The cloud resource matches the spec",
        ),
        Sync::Paused => (
            false,
            "ReconcilePaused",
            "Reconciliation is paused by the stratus.dev/paused annotation; remove it to resume",
        ),
        Sync::Error { message, .. } | Sync::Stalled { message, .. } | Sync::Differs(message) => {
            (false, "ReconcileError", message.as_str())
        }
    };
    let mut out = vec![
        condition(READY, ready, ready_reason, ready_msg, generation, now),
        condition(SYNCED, synced, sync_reason, sync_msg, generation, now),
    ];
    match &outcome.sync {
        Sync::Stalled { reason, message } => {
            out.push(condition(STALLED, true, reason, message, generation, now))
        }
        _ => out.push(condition(
            STALLED,
            false,
            "NotStalled",
            "Nothing needs a human",
            generation,
            now,
        )),
    }
    let (reconciling, rec_reason, rec_msg) = match (&outcome.progressing, &outcome.sync) {
        (Some(m), _) => (true, "Progressing", m.as_str()),
        (None, Sync::Error { reason, message }) => (true, reason.as_str(), message.as_str()),
        _ => (false, "ReconcileComplete", "Nothing in flight"),
    };
    out.push(condition(
        RECONCILING,
        reconciling,
        rec_reason,
        rec_msg,
        generation,
        now,
    ));

    for c in &mut out {
        if let Some(prev) = previous.iter().find(|p| p.type_ == c.type_)
            && prev.status == c.status
        {
            c.last_transition_time = prev.last_transition_time.clone();
        }
    }
    out
}

/// What the connection Secret `namespace/name` that the spec names holds, as `record` (the
/// engine's record of it, if it is for that name) says: whether it holds the credential's
/// value, a reason and a message saying what happens next or what to do.
pub fn connection_secret(
    namespace: &str,
    name: &str,
    record: Option<&ConnectionSecretStatus>,
) -> (bool, &'static str, String) {
    let record = record.filter(|r| r.name == name);
    match record {
        Some(r) if r.version.is_some() => {
            let v = r.version.as_deref().unwrap_or_default();
            let message = match (&r.previous_version, &r.revoke_others_after) {
                (Some(p), Some(t)) => format!(
                    "Secret {namespace}/{name} holds value {v}; the previous value {p} stays under previous- keys until {t}, then it is revoked"
                ),
                _ => format!("Secret {namespace}/{name} holds value {v}"),
            };
            (true, "Written", message)
        }
        Some(r) if r.lost => (
            false,
            "ValueLost",
            format!(
                "Secret {namespace}/{name} does not hold the credential's value: the cloud showed it only once and it was not written (the operator stopped in between, the Secret was deleted, or the resource was adopted), and this kind cannot issue a new value. Delete this object and create it again to get a new credential"
            ),
        ),
        Some(r) if r.unwritten.is_some() => (
            false,
            "WriteFailed",
            format!(
                "the cloud issued value {} of the credential, and writing it to Secret {namespace}/{name} failed: the operator retries the write with backoff (the Synced condition says why it failed)",
                r.unwritten.as_deref().unwrap_or_default()
            ),
        ),
        _ => (
            false,
            "NotWritten",
            format!(
                "Secret {namespace}/{name} does not hold the credential's value yet (it was not written at create, the Secret was deleted, the reference was added or renamed, or the resource was adopted): the operator issues a new value and writes it, where the kind and managementPolicies allow"
            ),
        ),
    }
}

/// The `ConnectionSecret` condition from [`connection_secret`]; `previous` keeps its transition
/// time while its status does not change.
pub fn connection_condition(
    secret: &(bool, &'static str, String),
    generation: Option<i64>,
    previous: &[Condition],
    now: &str,
) -> Condition {
    let (written, reason, message) = secret;
    let mut c = condition(
        CONNECTION_SECRET,
        *written,
        reason,
        message,
        generation,
        now,
    );
    if let Some(prev) = find(previous, CONNECTION_SECRET)
        && prev.status == c.status
    {
        c.last_transition_time = prev.last_transition_time.clone();
    }
    c
}

/// Readiness with the connection Secret taken into account: a resource whose credential's
/// value is not in the Secret it names is not Ready (what consumes the Secret cannot work),
/// whatever the cloud says.
pub fn with_connection_secret(
    readiness: Readiness,
    secret: Option<&(bool, &'static str, String)>,
) -> Readiness {
    match (readiness, secret) {
        (Readiness::Available(_), Some((false, _, message))) => Readiness::Waiting {
            reason: WAITING_FOR_CONNECTION_SECRET.into(),
            message: message.clone(),
        },
        (readiness, _) => readiness,
    }
}

/// Whether two condition lists say the same thing (ignoring transition times), so unchanged
/// status is not written again.
pub fn same(a: &[Condition], b: &[Condition]) -> bool {
    a.len() == b.len()
        && a.iter().all(|x| {
            b.iter().any(|y| {
                x.type_ == y.type_
                    && x.status == y.status
                    && x.reason == y.reason
                    && x.message == y.message
                    && x.observed_generation == y.observed_generation
            })
        })
}

/// Find a condition by type.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(cs: &'a [Condition], t: &str) -> &'a Condition {
        find(cs, t).unwrap()
    }

    #[test]
    fn available_and_synced_is_ready_and_not_reconciling() {
        let o = Outcome {
            readiness: Readiness::Available("RUNNING".into()),
            sync: Sync::Success,
            progressing: None,
        };
        let cs = conditions(&o, Some(3), &[], "t1");
        assert_eq!(get(&cs, READY).status, "True");
        assert_eq!(get(&cs, SYNCED).reason, "ReconcileSuccess");
        assert_eq!(get(&cs, RECONCILING).status, "False");
        assert_eq!(get(&cs, STALLED).status, "False");
        assert!(cs.iter().all(|c| c.observed_generation == Some(3)));
    }

    #[test]
    fn stalled_carries_reason_and_message() {
        let o = Outcome {
            readiness: Readiness::Available("RUNNING".into()),
            sync: Sync::Stalled {
                reason: "UnsupportedChange".into(),
                message: "cannot downsize".into(),
            },
            progressing: None,
        };
        let cs = conditions(&o, Some(1), &[], "t1");
        let stalled = get(&cs, STALLED);
        assert_eq!(
            (stalled.status.as_str(), stalled.reason.as_str()),
            ("True", "UnsupportedChange")
        );
        assert_eq!(get(&cs, SYNCED).status, "False");
        assert_eq!(get(&cs, RECONCILING).status, "False");
    }

    #[test]
    fn retryable_errors_keep_reconciling_true() {
        let o = Outcome {
            readiness: Readiness::Creating("waiting".into()),
            sync: Sync::Error {
                reason: "CloudUnavailable".into(),
                message: "500".into(),
            },
            progressing: None,
        };
        let cs = conditions(&o, None, &[], "t1");
        assert_eq!(get(&cs, RECONCILING).status, "True");
        assert_eq!(get(&cs, RECONCILING).reason, "CloudUnavailable");
    }

    #[test]
    fn observe_only_drift_is_reported_but_nothing_is_in_flight() {
        let o = Outcome {
            readiness: Readiness::Available("RUNNING".into()),
            sync: Sync::Differs("powerState differs".into()),
            progressing: None,
        };
        let cs = conditions(&o, Some(2), &[], "t1");
        assert_eq!(get(&cs, READY).status, "True");
        assert_eq!(
            (
                get(&cs, SYNCED).status.as_str(),
                get(&cs, SYNCED).reason.as_str()
            ),
            ("False", "ReconcileError")
        );
        assert_eq!(get(&cs, SYNCED).message, "powerState differs");
        assert_eq!(get(&cs, RECONCILING).status, "False");
        assert_eq!(get(&cs, STALLED).status, "False");
    }

    #[test]
    fn ready_reasons_are_the_four_standard_ones_unless_waiting_on_a_dependency() {
        let reason = |readiness: Readiness| {
            let o = Outcome {
                readiness,
                sync: Sync::Success,
                progressing: None,
            };
            get(&conditions(&o, None, &[], "t"), READY).reason.clone()
        };
        assert_eq!(reason(Readiness::Available("up".into())), "Available");
        assert_eq!(reason(Readiness::Creating("c".into())), "Creating");
        assert_eq!(reason(Readiness::Deleting("d".into())), "Deleting");
        assert_eq!(
            reason(Readiness::Unavailable("STOPPING".into())),
            "Unavailable"
        );
        assert_eq!(
            reason(Readiness::Waiting {
                reason: "WaitingForDomain".into(),
                message: "Domain example-com is ACTIVATING".into()
            }),
            "WaitingForDomain"
        );
    }

    fn record(version: Option<&str>) -> ConnectionSecretStatus {
        ConnectionSecretStatus {
            name: "w-conn".into(),
            uid: Some("u".into()),
            version: version.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn a_connection_secret_without_the_value_keeps_an_available_resource_from_ready() {
        let ready = |r: Option<&ConnectionSecretStatus>| {
            let secret = connection_secret("ns", "w-conn", r);
            with_connection_secret(Readiness::Available("READY".into()), Some(&secret))
        };
        assert_eq!(
            ready(Some(&record(Some("v1")))),
            Readiness::Available("READY".into())
        );
        for missing in [
            None,
            Some(record(None)),
            Some(ConnectionSecretStatus {
                lost: true,
                ..record(None)
            }),
            Some(ConnectionSecretStatus {
                unwritten: Some("v2".into()),
                ..record(None)
            }),
            // A record of another Secret says nothing of this one.
            Some(ConnectionSecretStatus {
                name: "old-conn".into(),
                ..record(Some("v1"))
            }),
        ] {
            match ready(missing.as_ref()) {
                Readiness::Waiting { reason, message } => {
                    assert_eq!(reason, WAITING_FOR_CONNECTION_SECRET);
                    assert!(message.contains("ns/w-conn"), "{message}");
                }
                other => panic!("{missing:?}: {other:?}"),
            }
        }
        // Not available anyway: the resource's own reason stays.
        let secret = connection_secret("ns", "w-conn", None);
        assert_eq!(
            with_connection_secret(Readiness::Creating("c".into()), Some(&secret)),
            Readiness::Creating("c".into())
        );
        assert_eq!(
            with_connection_secret(Readiness::Available("up".into()), None),
            Readiness::Available("up".into())
        );
    }

    #[test]
    fn the_connection_secret_condition_names_why_the_value_is_missing() {
        let reason = |r: ConnectionSecretStatus| connection_secret("ns", "w-conn", Some(&r)).1;
        assert_eq!(reason(record(Some("v1"))), "Written");
        assert_eq!(
            reason(ConnectionSecretStatus {
                lost: true,
                ..record(None)
            }),
            "ValueLost"
        );
        assert_eq!(
            reason(ConnectionSecretStatus {
                unwritten: Some("v2".into()),
                ..record(None)
            }),
            "WriteFailed"
        );
        assert_eq!(reason(record(None)), "NotWritten");
        let first = connection_condition(
            &connection_secret("ns", "w-conn", Some(&record(None))),
            Some(1),
            &[],
            "t1",
        );
        let again = connection_condition(
            &connection_secret("ns", "w-conn", None),
            Some(1),
            std::slice::from_ref(&first),
            "t2",
        );
        assert_eq!(again.last_transition_time, "t1");
    }

    #[test]
    fn transition_time_only_moves_when_status_changes() {
        let creating = Outcome {
            readiness: Readiness::Creating("CREATING".into()),
            sync: Sync::Success,
            progressing: Some("creating".into()),
        };
        let first = conditions(&creating, Some(1), &[], "t1");
        let again = conditions(&creating, Some(1), &first, "t2");
        assert_eq!(get(&again, READY).last_transition_time, "t1");
        assert!(same(&first, &again));
        let ready = Outcome {
            readiness: Readiness::Available("RUNNING".into()),
            sync: Sync::Success,
            progressing: None,
        };
        let later = conditions(&ready, Some(1), &again, "t3");
        assert_eq!(get(&later, READY).last_transition_time, "t3");
        assert_eq!(get(&later, SYNCED).last_transition_time, "t1");
        assert!(!same(&again, &later));
    }
}
