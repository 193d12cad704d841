//! Failure policy under load, against real servers: PostgreSQL stopped for a few seconds mid-load (the ledger
//! spools locally and replays: every acknowledged generation ends up in PostgreSQL once, the spend in Redis
//! equals the ledger's sum exactly); Redis restarted mid-load (budgets fail closed while it is down, nothing
//! acknowledged is lost, spend survives on an append-only Redis).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod serve_support;

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use polyroute::Scope;
use polyroute_cli::serve::{self, Gateway, Running};
use polyroute_testsupport::{skip_unless_available, PostgresServer, RedisServer};
use rust_decimal::Decimal;
use serve_support::{chat, Env};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

async fn replica(env: &Env, dir: &Path) -> Running {
    let shared = serve::state::connect(&env.cfg.router.state, env.cfg.ledger.as_deref(), dir)
        .await
        .unwrap();
    let gw = Arc::new(Gateway::with_state(&env.cfg, dir, shared).unwrap());
    serve::start(gw, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

/// Outcomes of a load run: statuses, and the generation ids of the 200s (acknowledged generations).
#[derive(Default)]
struct Load {
    statuses: Vec<u16>,
    acked: Vec<String>,
}

/// `clients` loops posting to the replicas in turn until `stop`.
fn load(
    urls: Vec<String>,
    key: String,
    clients: usize,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Load> {
    tokio::spawn(async move {
        let out = Arc::new(Mutex::new(Load::default()));
        let mut tasks = Vec::new();
        for c in 0..clients {
            let (urls, key, stop, out) = (urls.clone(), key.clone(), stop.clone(), out.clone());
            tasks.push(tokio::spawn(async move {
                let http = client();
                let mut i = 0usize;
                while !stop.load(Ordering::Relaxed) && i < 5000 {
                    let url = &urls[(c + i) % urls.len()];
                    i += 1;
                    let r = http
                        .post(format!("{url}/api/v1/chat/completions"))
                        .bearer_auth(&key)
                        .json(&chat("acme/chat", &format!("load {c} {i}")))
                        .send()
                        .await
                        .unwrap();
                    let s = r.status().as_u16();
                    let id = r
                        .headers()
                        .get("x-generation-id")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    let _ = r.bytes().await;
                    {
                        let mut o = out.lock().unwrap();
                        o.statuses.push(s);
                        if s == 200 {
                            o.acked.push(id.expect("a 200 carries its generation id"));
                        }
                    }
                    if s != 200 {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        Arc::try_unwrap(out).ok().unwrap().into_inner().unwrap()
    })
}

async fn ledger_rows(url: &str, user: &str) -> (HashSet<String>, Decimal) {
    let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let rows = c
        .query(
            "SELECT id, cost::text FROM polyroute_generations WHERE user_key = $1",
            &[&user],
        )
        .await
        .unwrap();
    let ids = rows.iter().map(|r| r.get::<_, String>(0)).collect();
    let sum = rows
        .iter()
        .map(|r| r.get::<_, String>(1).parse::<Decimal>().unwrap())
        .sum();
    (ids, sum)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_spools_and_replays_and_a_redis_restart_loses_nothing() {
    if !skip_unless_available("gateway fault test").expect("servers required") {
        return;
    }
    // Redis with an fsynced append-only file, as a deployment that keeps budgets across restarts runs it.
    let mut redis =
        RedisServer::start_with(None, &["--appendonly", "yes", "--appendfsync", "always"]).unwrap();
    let mut pg = PostgresServer::start().unwrap();
    let pg_url = pg.create_database("faults").unwrap();
    let mut env = Env::new().await;
    env.cfg.router.state.redis = Some(redis.url());
    env.cfg.router.state.postgres = Some(pg_url.clone());
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let (a, b) = (
        replica(&env, dirs[0].path()).await,
        replica(&env, dirs[1].path()).await,
    );
    let (entry, key) = a
        .gateway
        .keys
        .create("faults", Some(Decimal::new(100, 0)))
        .await
        .unwrap();
    let scope = Scope::Key(entry.id.clone());
    let urls = vec![a.url(), b.url()];

    // Phase 1: PostgreSQL stopped for ~2.5 s mid-load.
    let stop = Arc::new(AtomicBool::new(false));
    let run = load(urls.clone(), key.clone(), 8, stop.clone());
    tokio::time::sleep(Duration::from_millis(600)).await;
    pg.stop();
    let t_down = Instant::now();
    let spools = [
        dirs[0].path().join("ledger-spool.jsonl"),
        dirs[1].path().join("ledger-spool.jsonl"),
    ];
    let mut spooled_max = 0u64;
    while t_down.elapsed() < Duration::from_millis(2500) {
        let n: u64 = spools
            .iter()
            .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
            .sum();
        spooled_max = spooled_max.max(n);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    pg.restart().unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    stop.store(true, Ordering::Relaxed);
    let l1 = run.await.unwrap();
    assert!(
        spooled_max > 0,
        "nothing was spooled while PostgreSQL was down"
    );
    assert!(
        l1.statuses.iter().all(|s| *s == 200),
        "a PostgreSQL outage fails no request: {:?}",
        l1.statuses
            .iter()
            .filter(|s| **s != 200)
            .collect::<Vec<_>>()
    );
    // The spools drain.
    let t = Instant::now();
    while spools
        .iter()
        .any(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0))
    {
        assert!(t.elapsed() < Duration::from_secs(15), "spool not replayed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (ids, sum) = ledger_rows(&pg_url, &entry.id).await;
    let acked: HashSet<String> = l1.acked.iter().cloned().collect();
    assert_eq!(acked.len(), l1.acked.len(), "generation ids are unique");
    assert_eq!(
        ids, acked,
        "every acknowledged generation is in PostgreSQL, once"
    );
    let spent = a.gateway.router.spent_in(&scope).await.unwrap();
    assert_eq!(
        spent, sum,
        "the key's spend in Redis is the ledger's sum exactly"
    );
    assert!(sum > Decimal::ZERO);
    eprintln!(
        "postgres outage: {} requests, all 200; spooled up to {spooled_max} bytes; ledger rows {} sum {sum}",
        l1.statuses.len(),
        ids.len()
    );

    // Phase 2: Redis restarted mid-load.
    let stop = Arc::new(AtomicBool::new(false));
    let run = load(urls.clone(), key.clone(), 8, stop.clone());
    tokio::time::sleep(Duration::from_millis(600)).await;
    redis.stop();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    redis.restart().unwrap();
    let t_up = Instant::now();
    // Served again after the restart.
    loop {
        let r = client()
            .post(format!("{}/api/v1/chat/completions", urls[0]))
            .bearer_auth(&key)
            .json(&chat("acme/chat", "probe"))
            .send()
            .await
            .unwrap();
        let ok = r.status().as_u16() == 200;
        let _ = r.bytes().await;
        if ok {
            break;
        }
        assert!(
            t_up.elapsed() < Duration::from_secs(10),
            "not served after the Redis restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let l2 = run.await.unwrap();
    let refused = l2.statuses.iter().filter(|s| **s != 200).count();
    assert!(
        l2.statuses.iter().all(|s| *s == 200 || *s == 500),
        "{:?}",
        l2.statuses
    );
    assert!(refused > 0, "budgets fail closed while Redis is down");
    assert!(l2.statuses.iter().filter(|s| **s == 200).count() > 0);
    let (ids2, sum2) = ledger_rows(&pg_url, &entry.id).await;
    let acked2: HashSet<String> = l2.acked.iter().cloned().collect();
    assert!(
        acked2.is_subset(&ids2),
        "an acknowledged generation was lost"
    );
    assert!(acked.is_subset(&ids2));
    // Rows beyond the acknowledged ones: generations recorded whose hold could not be committed as Redis went
    // away (the client saw a 500); at most one per refused request.
    let extra = ids2.len() - acked.len() - acked2.len();
    assert!(
        extra <= refused,
        "{extra} unacknowledged rows, {refused} refusals"
    );
    let spent2 = a.gateway.router.spent_in(&scope).await.unwrap();
    assert!(
        spent2 >= spent,
        "spend survived the Redis restart: {spent2} < {spent}"
    );
    assert!(
        spent2 <= sum2,
        "Redis never counts more than the ledger: {spent2} > {sum2}"
    );
    eprintln!(
        "redis restart: {} requests, {refused} refused while down; {extra} rows unacknowledged; spend {spent2} of ledger {sum2}",
        l2.statuses.len()
    );
    drop((a, b));
}
