//! The PostgreSQL budget under a simulated fleet: 100 routers, each with its own connection, never exceed a
//! key's limit, bill exactly, and lose a dead router's holds at their expiry.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use polyroute::state::{Budget, HoldRequest, ReservationId, Reserved, Scope, ScopeLimit};
use polyroute_postgres::{PostgresOptions, PostgresState};
use polyroute_testsupport::{skip_unless_available, PostgresServer};
use rust_decimal::Decimal;

const ROUTERS: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_routers_never_exceed_the_budget_and_use_it_up() {
    if !skip_unless_available("postgres budget fleet").expect("servers required") {
        return;
    }
    let pg = PostgresServer::start().expect("postgres");
    let url = pg.create_database("fleet").unwrap();
    PostgresState::connect(&url).await.unwrap();
    let one = PostgresOptions {
        connections: 1,
        ..PostgresOptions::default()
    };
    let mut routers = Vec::new();
    for _ in 0..ROUTERS {
        routers.push(
            PostgresState::connect_with(&url, one.clone())
                .await
                .unwrap()
                .budget(),
        );
    }
    let limit = Decimal::new(5, 0);
    let estimate = Decimal::new(1, 2);
    let key = Scope::Key("pg-fleet-key".into());
    let billed = Arc::new(Mutex::new(Decimal::ZERO));
    let served = Arc::new(AtomicU64::new(0));
    let t = Instant::now();
    let mut tasks = Vec::new();
    for (n, b) in routers.into_iter().enumerate() {
        let (billed, served, key) = (billed.clone(), served.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            let (mut misses, mut i) = (0, 0u64);
            while misses < 3 {
                i += 1;
                let id = ReservationId(format!("pg{n}-{i}"));
                let req = HoldRequest {
                    id: id.clone(),
                    amount: estimate,
                    scopes: vec![
                        ScopeLimit {
                            scope: Scope::Router,
                            limit: None,
                        },
                        ScopeLimit {
                            scope: key.clone(),
                            limit: Some(limit),
                        },
                    ],
                    ttl: Duration::from_secs(60),
                };
                match b.reserve(&req).await.unwrap() {
                    Reserved::Held => {
                        misses = 0;
                        // 50-100 % of the estimate, deterministic; settled twice now and then (a replay).
                        let frac = 50 + i64::try_from((i * 7 + n as u64) % 51).unwrap();
                        let cost = estimate * Decimal::new(frac, 2);
                        let scopes = [Scope::Router, key.clone()];
                        assert!(b.settle(&id, &scopes, Some(cost)).await.unwrap());
                        if i % 10 == 0 {
                            assert!(!b.settle(&id, &scopes, Some(cost)).await.unwrap());
                        }
                        *billed.lock().unwrap() += cost;
                        served.fetch_add(1, Ordering::Relaxed);
                    }
                    Reserved::Refused(_) => {
                        misses += 1;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = t.elapsed();
    let check = PostgresState::connect(&url).await.unwrap().budget();
    let spent = check.spent(&key).await.unwrap();
    let billed = *billed.lock().unwrap();
    let served = served.load(Ordering::Relaxed);
    eprintln!(
        "postgres budget fleet: {ROUTERS} routers, {served} served, spent {spent} of {limit} in {elapsed:?} \
         ({:.0} reserve+settle pairs/s)",
        served as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(spent, billed);
    assert_eq!(check.spent(&Scope::Router).await.unwrap(), billed);
    assert!(spent <= limit, "spent {spent} over {limit}");
    assert!(limit - spent < estimate, "spent only {spent} of {limit}");
    assert_eq!(check.held(&key).await.unwrap(), Decimal::ZERO);

    // A router that holds and vanishes (its connection dropped, never settling): the hold counts until it expires.
    let gone = PostgresState::connect_with(&url, one.clone())
        .await
        .unwrap()
        .budget();
    let k2 = Scope::Key("pg-dead".into());
    let req = |id: &str, ttl_ms| HoldRequest {
        id: ReservationId(id.into()),
        amount: Decimal::new(8, 1),
        scopes: vec![ScopeLimit {
            scope: k2.clone(),
            limit: Some(Decimal::ONE),
        }],
        ttl: Duration::from_millis(ttl_ms),
    };
    assert_eq!(
        gone.reserve(&req("dead", 800)).await.unwrap(),
        Reserved::Held
    );
    drop(gone);
    assert!(matches!(
        check.reserve(&req("live", 60_000)).await.unwrap(),
        Reserved::Refused(_)
    ));
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(check.held(&k2).await.unwrap(), Decimal::ZERO);
    assert_eq!(
        check.reserve(&req("live", 60_000)).await.unwrap(),
        Reserved::Held
    );
}
