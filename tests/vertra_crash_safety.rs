//! Kill the operator (SIGKILL) at random moments while it creates Vertra apps and databases,
//! many times over; then count: exactly one app and one database per object, and none left
//! after deletion. Vertra has no idempotency keys: what protects us is the create-pending
//! marker, the settle window, and finding an unanswered create again (an app by its name and
//! the `STRATUS_OWNER_UID` env var it was created with, a database by its name and engine).
//! The sandbox can make it harder: drop the answers of writes it has applied.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::vertra::{Env, OPERATOR_ARGS, serve, zip};
use common::{Operator, is_ready_of, wait_object, wait_object_gone};
use kube::{Api, ResourceExt};
use rand::Rng;
use serde_json::json;
use stratus::providers::vertra::api::{Application, Database};
use stratus::providers::vertra::code::sha256_hex;
use stratus::providers::vertra::sim::VertraSimConfig;

const T: Duration = Duration::from_secs(180);
const EXTERNAL_NAME: &str = "stratus.dev/external-name";

/// How hard the sandbox makes it.
struct Hostility {
    /// Fraction of writes applied and then answered by closing the connection.
    drop_after_write_rate: f64,
    /// Each life of the operator is killed at a random moment within this time of its first
    /// create reaching the sandbox.
    kill_within: Duration,
}

fn creates(env: &Env) -> u64 {
    let stats = env.sim.stats();
    ["POST /apps", "POST /databases"]
        .iter()
        .map(|r| stats.requests_by_route.get(*r).copied().unwrap_or(0))
        .sum()
}

async fn kill_during_creates(
    prefix: &str,
    hostility: Hostility,
    first_objects: usize,
    kills: usize,
) {
    let tune = |c: &mut VertraSimConfig| {
        // Slow answers widen the window between "applied in the cloud" and "recorded in
        // Kubernetes" (half the latency comes after the cloud applied a write).
        c.faults.latency_ms = 800;
        c.faults.drop_after_write_rate = hostility.drop_after_write_rate;
        // A plan with deploys to spare: every life's first deploy waits one interval of the
        // deploy budget (the operator cannot know what its previous life spent).
        c.deploys_per_hour = Some(3600);
    };
    let mut env =
        Env::start_configured(prefix, tune, json!({"deploysPerHour": 3600}), OPERATOR_ARGS).await;
    env.operator.kill();
    let code = zip("crash");
    let base = serve(vec![("/app.zip", code.clone())]).await;
    let apps: Api<Application> = env.ns.api();
    let dbs: Api<Database> = env.ns.api();
    let add = |i: usize| {
        let (env, base, code) = (&env, &base, &code);
        async move {
            env.apply::<Application>(
                &format!("app{i}"),
                json!({"forProvider": {
                    "name": format!("app{i}"), "memoryMB": 256, "language": "javascript",
                    "mainFile": "index.js",
                    "source": {"archive": {"url": format!("{base}/app.zip"), "sha256": sha256_hex(code)}},
                }}),
            )
            .await;
            env.apply::<Database>(
                &format!("db{i}"),
                json!({"forProvider": {"engine": "PostgreSQL", "name": format!("db{i}"), "memoryMB": 1024}}),
            )
            .await;
        }
    };
    let mut objects = 0;
    while objects < first_objects {
        add(objects).await;
        objects += 1;
    }
    let mut rng = rand::rng();
    let mut killed = 0;
    let mut lives = 0;
    while killed < kills {
        lives += 1;
        assert!(
            lives <= 3 * kills,
            "{lives} lives, only {killed} killed during a create"
        );
        // Keep something to create: once every object records its resource, two more.
        let unrecorded = apps
            .list(&Default::default())
            .await
            .unwrap()
            .iter()
            .map(|a| a.annotations().contains_key(EXTERNAL_NAME))
            .chain(
                dbs.list(&Default::default())
                    .await
                    .unwrap()
                    .iter()
                    .map(|d| d.annotations().contains_key(EXTERNAL_NAME)),
            )
            .filter(|recorded| !recorded)
            .count();
        if unrecorded == 0 {
            add(objects).await;
            objects += 1;
        }
        let mut op = Operator::start(&env.ns.name, OPERATOR_ARGS);
        let before = creates(&env);
        let sent = common::wait_for(Duration::from_secs(20), || {
            let now = creates(&env);
            async move { now > before }
        })
        .await;
        if !sent {
            // Every unrecorded object may be waiting out its settle window: a life that
            // creates nothing is not a kill during a create.
            op.kill();
            continue;
        }
        tokio::time::sleep(rng.random_range(Duration::ZERO..hostility.kill_within)).await;
        op.kill();
        killed += 1;
    }
    env.operator = Operator::start(&env.ns.name, OPERATOR_ARGS);
    println!(
        "{killed} kills during creates in {lives} lives; POST /apps + /databases received {} times for {} objects",
        creates(&env),
        2 * objects
    );
    for i in 0..objects {
        wait_object(&apps, &format!("app{i}"), T, "Ready", is_ready_of).await;
        wait_object(&dbs, &format!("db{i}"), T, "Ready", is_ready_of).await;
    }

    // Exactly one app and one database of each name, and it is the one the object records.
    let mut app_names: BTreeMap<String, usize> = BTreeMap::new();
    for a in env.sim.apps() {
        *app_names.entry(a.name.clone()).or_default() += 1;
    }
    let mut db_names: BTreeMap<String, usize> = BTreeMap::new();
    for d in env.sim.databases() {
        *db_names.entry(d.name.clone()).or_default() += 1;
    }
    for i in 0..objects {
        assert_eq!(
            app_names.get(&format!("app{i}")),
            Some(&1),
            "apps per name: {app_names:?}"
        );
        assert_eq!(
            db_names.get(&format!("db{i}")),
            Some(&1),
            "databases per name: {db_names:?}"
        );
    }
    assert_eq!(env.sim.apps().len(), objects, "{app_names:?}");
    assert_eq!(env.sim.databases().len(), objects, "{db_names:?}");
    for a in apps.list(&Default::default()).await.unwrap() {
        let id = a
            .status
            .as_ref()
            .unwrap()
            .at_provider
            .as_ref()
            .unwrap()
            .id
            .clone();
        assert!(
            env.sim
                .apps()
                .iter()
                .any(|x| x.id == id && x.name == a.name_any()),
            "{} records {id}, which is not its app",
            a.name_any()
        );
    }
    for d in dbs.list(&Default::default()).await.unwrap() {
        let id = d
            .status
            .as_ref()
            .unwrap()
            .at_provider
            .as_ref()
            .unwrap()
            .id
            .clone();
        assert!(
            env.sim
                .databases()
                .iter()
                .any(|x| x.id == id && x.name == d.name_any()),
            "{} records {id}, which is not its database",
            d.name_any()
        );
    }

    // Deleting every object leaves nothing behind.
    apps.delete_collection(&Default::default(), &Default::default())
        .await
        .unwrap();
    dbs.delete_collection(&Default::default(), &Default::default())
        .await
        .unwrap();
    for i in 0..objects {
        wait_object_gone(&apps, &format!("app{i}"), T).await;
        wait_object_gone(&dbs, &format!("db{i}"), T).await;
    }
    assert!(env.sim.apps().is_empty(), "left: {:?}", env.sim.apps());
    assert!(
        env.sim.databases().is_empty(),
        "left: {:?}",
        env.sim.databases()
    );
    env.stop().await;
}

#[tokio::test]
async fn random_kills_during_creates_leave_exactly_one_app_and_one_database_each() {
    let calm = Hostility {
        drop_after_write_rate: 0.0,
        kill_within: Duration::from_millis(900),
    };
    kill_during_creates("vcrash", calm, 4, 12).await;
}

#[tokio::test]
async fn creates_never_duplicate_when_applied_writes_lose_their_answers_between_kills() {
    // Nearly a third of the writes applied but never answered: an unanswered create may exist,
    // and a blind re-send would make a second app or database no key can deduplicate.
    let hostile = Hostility {
        drop_after_write_rate: 0.3,
        kill_within: Duration::from_secs(3),
    };
    kill_during_creates("vcrash-drop", hostile, 4, 12).await;
}
