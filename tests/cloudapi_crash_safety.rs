//! Kill the operator (SIGKILL) at random moments while it creates CloudAPI projects and
//! releases, and while a release deploys, many times over; then count: exactly one project and
//! one deployment per object, no (commit, nonce) built twice, nothing refused for a limit, and
//! nothing left after deletion. What protects us: the create-pending marker and the request
//! recorded before it is sent, replayed under the same Idempotency-Key (both dialects honour
//! it), and deploys keyed by what they deploy. The sandbox makes it harder: slow answers, and
//! a fifth (or more) of applied writes never answered.

mod common;

use std::time::Duration;

use common::cloudapi::{Env, Setup, at_provider, id_of, live_commit, outside_project, wait_live};
use common::{is_ready_of, wait_object, wait_object_gone};
use kube::Api;
use serde_json::json;
use stratus::providers::cloudapi::api::{Project, Release};
use stratus::providers::cloudapi::sim::Dialect;

/// `POST /projects` and `POST /deployments` the sandbox received (answered or not).
fn creates_sent(env: &Env) -> u64 {
    let stats = env.sim.stats();
    ["POST /projects", "POST /deployments"]
        .iter()
        .map(|r| stats.requests_by_route.get(*r).copied().unwrap_or(0))
        .sum()
}

#[tokio::test]
async fn killing_the_operator_at_random_moments_during_creates_leaves_exactly_one_project_and_one_deployment_per_object()
 {
    kill_during_creates("cakill", Dialect::Cloudapi).await;
}

#[tokio::test]
async fn killing_the_operator_during_cloudplatform_creates_leaves_one_of_each_and_is_never_refused_for_a_limit()
 {
    kill_during_creates("cakillp", Dialect::Cloudplatform).await;
}

/// Kills the operator (SIGKILL) at least 12 times at random moments while Projects and
/// Releases are created; then exactly one project and one deployment per object, no 429, and
/// nothing left after deletion.
async fn kill_during_creates(prefix: &str, dialect: Dialect) {
    use common::{Operator, wait_for};
    use kube::ResourceExt;
    use rand::Rng;
    use std::collections::BTreeMap;

    const KILLS: usize = 12;
    const LONG: Duration = Duration::from_secs(180);
    let setup = Setup {
        dialect,
        ..Default::default()
    };
    let mut env = Env::start_with(prefix, setup, |c| {
        // Slow answers widen the window between "applied in the cloud" and "recorded in
        // Kubernetes"; a fifth of applied writes are never answered.
        c.faults.latency_ms = 600;
        c.faults.drop_after_write_rate = 0.2;
    })
    .await;
    env.operator.kill();
    let projects: Api<Project> = env.ns.api();
    let releases: Api<Release> = env.ns.api();
    let add = |i: usize| {
        let env = &env;
        async move {
            let mut params = json!({"name": format!("p{i}")});
            if dialect == Dialect::Cloudapi {
                params["region"] = json!("us-east-1");
            }
            env.apply::<Project>(&format!("proj{i}"), json!({"forProvider": params}))
                .await;
            env.apply::<Release>(
                &format!("rel{i}"),
                json!({"forProvider": {"projectRef": {"name": format!("proj{i}")}, "commit": format!("c{i}")}}),
            )
            .await;
        }
    };
    let mut objects = 0;
    while objects < 3 {
        add(objects).await;
        objects += 1;
    }
    let mut rng = rand::rng();
    let (mut killed, mut lives) = (0, 0);
    while killed < KILLS {
        lives += 1;
        assert!(
            lives <= 3 * KILLS,
            "{lives} lives, only {killed} killed during a create"
        );
        let unrecorded = projects
            .list(&Default::default())
            .await
            .unwrap()
            .iter()
            .map(|p| p.annotations().contains_key("stratus.dev/external-name"))
            .chain(
                releases
                    .list(&Default::default())
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| r.annotations().contains_key("stratus.dev/external-name")),
            )
            .filter(|recorded| !recorded)
            .count();
        if unrecorded == 0 {
            add(objects).await;
            objects += 1;
        }
        let mut op = Operator::start(&env.ns.name, common::cloudapi::OPERATOR_ARGS);
        let before = creates_sent(&env);
        let sent = wait_for(Duration::from_secs(20), || {
            let now = creates_sent(&env);
            async move { now > before }
        })
        .await;
        if !sent {
            op.kill();
            continue;
        }
        tokio::time::sleep(rng.random_range(Duration::ZERO..Duration::from_millis(1500))).await;
        op.kill();
        killed += 1;
    }
    env.operator = Operator::start(&env.ns.name, common::cloudapi::OPERATOR_ARGS);
    println!(
        "{killed} kills during creates in {lives} lives; POST /projects + /deployments received {} times for {} objects",
        creates_sent(&env),
        2 * objects
    );
    for i in 0..objects {
        wait_object(&projects, &format!("proj{i}"), LONG, "Ready", is_ready_of).await;
        wait_live(&env, &format!("rel{i}"), &format!("c{i}")).await;
    }
    let mut per_name: BTreeMap<String, usize> = BTreeMap::new();
    for p in env.sim.projects() {
        *per_name.entry(p.name.clone()).or_default() += 1;
    }
    assert_eq!(env.sim.projects().len(), objects, "{per_name:?}");
    for i in 0..objects {
        assert_eq!(per_name.get(&format!("p{i}")), Some(&1), "{per_name:?}");
        let p = projects.get(&format!("proj{i}")).await.unwrap();
        let id = id_of(&p);
        assert_eq!(env.sim.project(&id).unwrap().name, format!("p{i}"));
        let deployments = env.sim.deployments(&id);
        assert_eq!(deployments.len(), 1, "project p{i}: {deployments:?}");
        assert_eq!(deployments[0].commit, format!("c{i}"));
        let r = releases.get(&format!("rel{i}")).await.unwrap();
        assert_eq!(id_of(&r), id);
    }
    assert_eq!(env.sim.creates().deployments as usize, objects);
    // Every life paced itself as if its predecessor had spent what it could: nothing was
    // refused for a limit.
    println!(
        "max in window {:?}, budgets {:?}",
        env.sim.max_in_window(),
        env.sim.budgets()
    );
    assert_eq!(
        env.sim.served_429().total(),
        0,
        "{:?}",
        env.sim.served_429()
    );

    // Deleting everything leaves no project behind (a Release leaves its deployments, which
    // go with their project).
    for i in 0..objects {
        releases
            .delete(&format!("rel{i}"), &Default::default())
            .await
            .unwrap();
        projects
            .delete(&format!("proj{i}"), &Default::default())
            .await
            .unwrap();
    }
    for i in 0..objects {
        wait_object_gone(&releases, &format!("rel{i}"), LONG).await;
        wait_object_gone(&projects, &format!("proj{i}"), LONG).await;
    }
    assert!(env.sim.projects().is_empty());
    env.stop().await;
}

#[tokio::test]
async fn killing_the_operator_while_it_deploys_new_commits_and_nonces_never_builds_one_twice() {
    use common::{Operator, wait_for};
    use rand::Rng;
    use std::collections::BTreeMap;

    let mut env = Env::start_with("cakilldep", Setup::default(), |c| {
        c.faults.latency_ms = 600;
        c.faults.drop_after_write_rate = 0.3;
    })
    .await;
    let project = outside_project(&env, "app").await;
    env.apply::<Release>(
        "app",
        json!({"forProvider": {"projectId": project, "commit": "k0"}}),
    )
    .await;
    wait_live(&env, "app", "k0").await;
    env.operator.kill();
    let deploys = |env: &Env| {
        env.sim
            .stats()
            .requests_by_route
            .get("POST /deployments")
            .copied()
            .unwrap_or(0)
    };
    let mut rng = rand::rng();
    let mut wanted = Vec::new();
    let mut killed = 0;
    for step in 1..=12 {
        // Odd steps deploy a new commit, even steps rebuild it with a new nonce.
        let spec = if step % 2 == 1 {
            wanted.push(format!("k{step}"));
            json!({"forProvider": {"commit": format!("k{step}")}})
        } else {
            json!({"forProvider": {"redeployNonce": format!("n{step}")}})
        };
        env.patch::<Release>("app", spec).await;
        let mut op = Operator::start(&env.ns.name, common::cloudapi::OPERATOR_ARGS);
        let before = deploys(&env);
        let sent = wait_for(Duration::from_secs(20), || {
            let now = deploys(&env);
            async move { now > before }
        })
        .await;
        if sent {
            tokio::time::sleep(rng.random_range(Duration::ZERO..Duration::from_millis(1200))).await;
            killed += 1;
        }
        op.kill();
    }
    assert!(killed >= 10, "only {killed} kills during a deploy");
    env.operator = Operator::start(&env.ns.name, common::cloudapi::OPERATOR_ARGS);
    let releases: Api<Release> = env.ns.api();
    wait_object(&releases, "app", Duration::from_secs(120), "settled", |r| {
        is_ready_of(r) && live_commit(r) == "k11" && at_provider(r)["redeployNonce"] == "n12"
    })
    .await;
    // Each (commit, nonce) the operator acted on was built once: a commit at most twice (its
    // deploy and its nonce's rebuild), never more.
    let mut per_commit: BTreeMap<String, usize> = BTreeMap::new();
    for d in env.sim.deployments(&project) {
        *per_commit.entry(d.commit).or_default() += 1;
    }
    println!(
        "{killed} kills; POST /deployments received {} times; builds per commit {per_commit:?}",
        deploys(&env)
    );
    assert_eq!(per_commit.get("k0"), Some(&1));
    for (commit, n) in &per_commit {
        assert!(*n <= 2, "{commit} was built {n} times: {per_commit:?}");
    }
    assert!(per_commit.contains_key("k11"));
    env.stop().await;
}
