//! Two gateway replicas sharing `[state]` (a throwaway Redis and PostgreSQL from polyroute-testsupport): one
//! credit limit per key across both, one set of free-tier windows, one ledger, the same `/api/v1/key` answer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod serve_support;

use std::path::Path;
use std::sync::Arc;

use polyroute_cli::serve::{self, Gateway, Running};
use polyroute_testsupport::{skip_unless_available, PostgresServer, RedisServer};
use serde_json::Value;
use serve_support::{chat, Env};

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn get(url: &str, key: &str, path: &str) -> Value {
    client()
        .get(format!("{url}{path}"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A key created in the fleet's PostgreSQL (where replicas read their keys when `[state] postgres` is set).
async fn pg_key(env: &Env, limit: Option<f64>) -> String {
    let url = env.cfg.router.state.postgres.as_deref().unwrap();
    let pg = polyroute_postgres::PostgresState::connect(url)
        .await
        .unwrap();
    serve::keys::KeyStore::postgres_once(pg.keys())
        .create(
            "test",
            limit.map(|l| rust_decimal::Decimal::try_from(l).unwrap()),
        )
        .await
        .unwrap()
        .1
}

/// One replica with its own data directory (as on another machine): all it shares with the others is
/// `[state]`, keys included.
async fn replica(env: &Env, dir: &Path) -> Running {
    let shared = serve::state::connect(&env.cfg.router.state, env.cfg.ledger.as_deref(), dir)
        .await
        .unwrap();
    assert!(shared.is_some() != env.cfg.router.state.is_empty());
    let gw = Arc::new(Gateway::with_state(&env.cfg, dir, shared).unwrap());
    serve::start(gw, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_one_key_limit_one_free_tier_and_one_ledger() {
    if !skip_unless_available("gateway fleet test").expect("servers required") {
        return;
    }
    let redis = RedisServer::start().unwrap();
    let pg = PostgresServer::start().unwrap();
    let mut env = Env::new().await;
    env.cfg.router.state.redis = Some(redis.url());
    env.cfg.router.state.postgres = Some(pg.create_database("gateway").unwrap());
    let limit = 0.0003; // about five worst cases of one request
    let key = pg_key(&env, Some(limit)).await;
    let free_key = pg_key(&env, None).await;
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let (a, b) = (
        replica(&env, dirs[0].path()).await,
        replica(&env, dirs[1].path()).await,
    );
    let urls = [a.url(), b.url()];

    let mut tasks = Vec::new();
    for i in 0..64 {
        let (url, key) = (urls[i % 2].clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            client()
                .post(format!("{url}/api/v1/chat/completions"))
                .bearer_auth(&key)
                .json(&chat("acme/chat", &format!("fleet {i}")))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let ok = statuses.iter().filter(|s| **s == 200).count() as u64;
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 402),
        "{statuses:?}"
    );
    assert!((1..64).contains(&ok), "{ok} of 64 served");
    // One limit for both replicas: what they billed together stays within it, and both report the same.
    // With both servers set, a replica keeps nothing of the state in its data directory.
    for d in &dirs {
        assert!(!d.path().join("ledger.sqlite").exists());
        assert!(!d.path().join("keys.json").exists());
    }
    let (ka, kb) = (
        get(&urls[0], &key, "/api/v1/key").await,
        get(&urls[1], &key, "/api/v1/key").await,
    );
    let usage = ka["data"]["usage"].as_f64().unwrap();
    assert!(
        usage > 0.0 && usage <= limit,
        "spent {usage} of {limit}: {ka}"
    );
    assert_eq!(ka["data"]["usage"], kb["data"]["usage"], "{ka} vs {kb}");
    // One ledger: each replica's activity covers both replicas' generations, and their billed cost is the
    // key's usage, within the limit.
    for url in &urls {
        let act = get(url, &key, "/api/v1/activity").await;
        let rows = act["data"].as_array().unwrap();
        let n: u64 = rows.iter().map(|r| r["requests"].as_u64().unwrap()).sum();
        let cost: f64 = rows.iter().map(|r| r["usage"].as_f64().unwrap()).sum();
        assert_eq!(n, ok, "{act}");
        assert!(
            (cost - usage).abs() < 1e-12 && cost <= limit,
            "billed {cost}, usage {usage}: {act}"
        );
    }
    assert_eq!(env.alpha.calls() + env.beta.calls(), ok);

    // One free tier: 2 `:free` requests per minute per key, counted across both replicas.
    let mut free = Vec::new();
    for i in 0..6 {
        let r = client()
            .post(format!("{}/api/v1/chat/completions", urls[i % 2]))
            .bearer_auth(&free_key)
            .json(&chat("acme/chat:free", "free"))
            .send()
            .await
            .unwrap();
        free.push(r.status().as_u16());
    }
    assert_eq!(free.iter().filter(|s| **s == 200).count(), 2, "{free:?}");
    assert_eq!(free.iter().filter(|s| **s == 429).count(), 4, "{free:?}");
    drop((a, b));
}
