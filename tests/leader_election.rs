//! Leader election against a real kube-apiserver.
//!
//! Needs a control plane: `scripts/control-plane up /tmp/stratus-cp` and
//! `export STRATUS_TEST_KUBECONFIG=/tmp/stratus-cp/admin.kubeconfig`.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, DeleteParams, PostParams};
use stratus::leader_election::LeaderElection;
use tokio::sync::watch;
use tokio::time::Instant;

const LEASE: Duration = Duration::from_secs(2);
const NAMESPACE: &str = "default";

async fn client() -> kube::Client {
    let path = std::env::var("STRATUS_TEST_KUBECONFIG").unwrap_or_else(|_| {
        panic!(
            "STRATUS_TEST_KUBECONFIG is not set. Start a control plane and point the tests at it:\n  \
             scripts/control-plane up /tmp/stratus-cp\n  \
             export STRATUS_TEST_KUBECONFIG=/tmp/stratus-cp/admin.kubeconfig"
        )
    });
    let kubeconfig = kube::config::Kubeconfig::read_from(&path)
        .unwrap_or_else(|e| panic!("cannot read kubeconfig {path}: {e}"));
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("kubeconfig");
    kube::Client::try_from(config).expect("client")
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

fn candidate(client: &kube::Client, lease: &str, identity: &str) -> LeaderElection {
    LeaderElection::new(client.clone(), NAMESPACE, lease, identity, LEASE)
        .with_owner_deployment(None)
}

/// Wait until `pred` holds for the receivers, checking that no two lead at once meanwhile.
async fn wait_for(
    rxs: &[&watch::Receiver<bool>],
    timeout: Duration,
    what: &str,
    pred: impl Fn(&[bool]) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        let now: Vec<bool> = rxs.iter().map(|r| *r.borrow()).collect();
        assert!(
            now.iter().filter(|l| **l).count() <= 1,
            "two candidates lead at once: {now:?}"
        );
        if pred(&now) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}; leaders: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sample for `period`, asserting exactly one of the receivers leads all along.
async fn exactly_one_leads(rxs: &[&watch::Receiver<bool>], period: Duration) {
    let start = Instant::now();
    while start.elapsed() < period {
        let now: Vec<bool> = rxs.iter().map(|r| *r.borrow()).collect();
        assert_eq!(
            now.iter().filter(|l| **l).count(),
            1,
            "expected exactly one leader, got {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn delete_lease(client: &kube::Client, name: &str) {
    let _ = Api::<Lease>::namespaced(client.clone(), NAMESPACE)
        .delete(name, &DeleteParams::default())
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_and_a_crashed_leader_is_replaced_after_the_lease_expires() {
    let client = client().await;
    let lease = unique("stratus-le-test");
    let (a, a_task) = candidate(&client, &lease, "replica-a").spawn_with_handle();
    let (b, b_task) = candidate(&client, &lease, "replica-b").spawn_with_handle();

    wait_for(&[&a, &b], Duration::from_secs(5), "a leader", |l| {
        l.contains(&true)
    })
    .await;
    // Several renewals: the leader keeps the lease, the other never takes it.
    exactly_one_leads(&[&a, &b], LEASE * 2).await;

    let a_led = *a.borrow();
    let (leader_task, follower_task, follower) = if a_led {
        (a_task, b_task, &b)
    } else {
        (b_task, a_task, &a)
    };
    let leader = if a_led { &a } else { &b };

    // A crash: the task stops without releasing the lease.
    leader_task.abort();
    let _ = leader_task.await;
    assert!(!*leader.borrow(), "an aborted candidate no longer leads");

    let took = wait_for(
        &[&a, &b],
        LEASE + Duration::from_secs(2),
        "the follower to take over",
        |_| *follower.borrow(),
    )
    .await;
    // It must have waited for the lease to run out (renewed at most one renew period before the abort).
    assert!(
        took >= LEASE - LEASE / 3 - Duration::from_millis(200),
        "took over after {took:?}, before the lease could have expired"
    );

    let held = Api::<Lease>::namespaced(client.clone(), NAMESPACE)
        .get(&lease)
        .await
        .unwrap();
    let spec = held.spec.unwrap();
    let expected = if a_led { "replica-b" } else { "replica-a" };
    assert_eq!(spec.holder_identity.as_deref(), Some(expected));
    assert_eq!(spec.lease_duration_seconds, Some(2));
    assert_eq!(spec.lease_transitions, Some(1));

    follower_task.abort();
    delete_lease(&client, &lease).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_lease_is_taken_over_at_once() {
    let client = client().await;
    let lease = unique("stratus-le-test");
    let first = candidate(&client, &lease, "first");
    let (a, _a_task) = first.clone().spawn_with_handle();
    wait_for(
        &[&a],
        Duration::from_secs(5),
        "the first candidate to lead",
        |l| l[0],
    )
    .await;

    let (b, b_task) = candidate(&client, &lease, "second").spawn_with_handle();
    exactly_one_leads(&[&a, &b], LEASE).await;
    assert!(*a.borrow());

    first.release().await.expect("release");
    assert!(!*a.borrow());
    let took = wait_for(&[&a, &b], LEASE, "the second candidate to lead", |l| l[1]).await;
    assert!(
        took < LEASE,
        "took {took:?}: release should hand over before the lease expires"
    );
    // The released candidate stays out.
    exactly_one_leads(&[&a, &b], LEASE / 2).await;
    assert!(*b.borrow());

    b_task.abort();
    delete_lease(&client, &lease).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lease_is_owned_by_the_deployment() {
    let client = client().await;
    let lease = unique("stratus-le-test");
    let deployments = Api::<Deployment>::namespaced(client.clone(), NAMESPACE);
    let deployment: Deployment = serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": lease },
        "spec": {
            "replicas": 0,
            "selector": { "matchLabels": { "app": lease } },
            "template": {
                "metadata": { "labels": { "app": lease } },
                "spec": { "containers": [{ "name": "stratus", "image": "example.invalid/stratus:test" }] }
            }
        }
    }))
    .unwrap();
    let deployment = deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();

    let le = LeaderElection::new(client.clone(), NAMESPACE, &lease, "owned", LEASE)
        .with_owner_deployment(Some(&lease));
    let (rx, task) = le.spawn_with_handle();
    wait_for(
        &[&rx],
        Duration::from_secs(5),
        "the candidate to lead",
        |l| l[0],
    )
    .await;

    let held = Api::<Lease>::namespaced(client.clone(), NAMESPACE)
        .get(&lease)
        .await
        .unwrap();
    let owners = held.metadata.owner_references.unwrap_or_default();
    assert_eq!(owners.len(), 1, "{owners:?}");
    assert_eq!(owners[0].kind, "Deployment");
    assert_eq!(owners[0].name, lease);
    assert_eq!(Some(&owners[0].uid), deployment.metadata.uid.as_ref());

    task.abort();
    let _ = deployments.delete(&lease, &DeleteParams::default()).await;
    delete_lease(&client, &lease).await;
}
