//! Failure policy under load, against real servers: PostgreSQL stopped for a few seconds mid-load (the ledger
//! spools locally and replays: every acknowledged generation ends up in PostgreSQL once, the spend in Redis
//! equals the ledger's sum exactly); Redis restarted mid-load (budgets fail closed while it is down, nothing
//! acknowledged is lost, a recorded generation is never answered with an error, and the settles that met the
//! outage are retried until the spend in Redis is the ledger's sum exactly).
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
    let probe = loop {
        let r = client()
            .post(format!("{}/api/v1/chat/completions", urls[0]))
            .bearer_auth(&key)
            .json(&chat("acme/chat", "probe"))
            .send()
            .await
            .unwrap();
        let ok = r.status().as_u16() == 200;
        let id = r
            .headers()
            .get("x-generation-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let _ = r.bytes().await;
        if ok {
            break id;
        }
        assert!(
            t_up.elapsed() < Duration::from_secs(10),
            "not served after the Redis restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
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
    let mut acked2: HashSet<String> = l2.acked.iter().cloned().collect();
    acked2.insert(probe.expect("the probe's 200 carries its generation id"));
    assert!(
        acked2.is_subset(&ids2),
        "an acknowledged generation was lost"
    );
    assert!(acked.is_subset(&ids2));
    // No row beyond the acknowledged ones: once a generation is recorded, a settle that meets the outage is
    // retried in the background instead of failing the request.
    let extra = ids2.len() - acked.len() - acked2.len();
    assert_eq!(
        extra, 0,
        "{extra} recorded generations were answered with an error"
    );
    for r in [&a, &b] {
        assert_eq!(
            r.gateway.router.settled(Duration::from_secs(15)).await,
            0,
            "settles still pending 15 s after Redis returned"
        );
    }
    let spent2 = a.gateway.router.spent_in(&scope).await.unwrap();
    assert!(
        spent2 >= spent,
        "spend survived the Redis restart: {spent2} < {spent}"
    );
    assert_eq!(
        spent2, sum2,
        "after the retried settles, the key's spend in Redis is the ledger's sum exactly"
    );
    eprintln!(
        "redis restart: {} requests, {refused} refused while down; {extra} rows unacknowledged; spend {spent2} of ledger {sum2}",
        l2.statuses.len()
    );
    drop((a, b));
}

/// Redis goes away after the hold and before the settle (the upstream answers slowly; Redis is stopped while it
/// thinks): the generation is recorded, so the request is answered 200, and its settle is retried until Redis
/// is back; then the key's spend is that generation's cost exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_lost_between_the_ledger_write_and_the_settle_fails_no_request() {
    if !skip_unless_available("gateway settle fault test").expect("servers required") {
        return;
    }
    let mut redis =
        RedisServer::start_with(None, &["--appendonly", "yes", "--appendfsync", "always"]).unwrap();
    let pg = PostgresServer::start().unwrap();
    let pg_url = pg.create_database("settle").unwrap();
    let mut env = Env::new().await;
    env.cfg.router.state.redis = Some(redis.url());
    env.cfg.router.state.postgres = Some(pg_url.clone());
    let dir = tempfile::tempdir().unwrap();
    let a = replica(&env, dir.path()).await;
    let (entry, key) = a
        .gateway
        .keys
        .create("settle", Some(Decimal::new(100, 0)))
        .await
        .unwrap();
    let scope = Scope::Key(entry.id.clone());
    env.alpha.set_fault(Some("slow-first-byte=900")).unwrap();
    env.beta.set_fault(Some("slow-first-byte=900")).unwrap();
    let url = a.url();
    let req = tokio::spawn(async move {
        let r = client()
            .post(format!("{url}/api/v1/chat/completions"))
            .bearer_auth(&key)
            .json(&chat("acme/chat", "settle while redis is away"))
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        let body = r.text().await.unwrap();
        (s, body)
    });
    // The hold is placed within a few ms; the upstream answers after 900 ms.
    tokio::time::sleep(Duration::from_millis(300)).await;
    redis.stop();
    let (status, body) = req.await.unwrap();
    assert_eq!(status, 200, "{body}");
    let (ids, sum) = ledger_rows(&pg_url, &entry.id).await;
    assert_eq!(ids.len(), 1, "the generation is recorded");
    assert!(sum > Decimal::ZERO);
    assert!(
        a.gateway.router.settled(Duration::from_millis(300)).await > 0,
        "the settle waits for Redis"
    );
    redis.restart().unwrap();
    assert_eq!(
        a.gateway.router.settled(Duration::from_secs(15)).await,
        0,
        "the settle never landed after Redis returned"
    );
    assert_eq!(a.gateway.router.spent_in(&scope).await.unwrap(), sum);
    drop(a);
}
