//! The PostgreSQL ledger against a real throwaway cluster (polyroute-testsupport): polyroute's state battery,
//! migrations, durability across a server restart, errors that name the server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use polyroute::state::{battery, Ledger, LedgerQuery, Stores};
use polyroute_postgres::{migrate, PostgresLedger, PostgresOptions, PostgresState};
use polyroute_testsupport::{skip_unless_available, PostgresServer};
use rust_decimal::Decimal;

fn server() -> Option<PostgresServer> {
    if !skip_unless_available("postgres ledger test").expect("servers required") {
        return None;
    }
    Some(PostgresServer::start().expect("postgres"))
}

async fn sql(url: &str, q: &str) -> Vec<tokio_postgres::Row> {
    let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    c.query(q, &[]).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_ledger_passes_the_battery_and_migrates_once() {
    let Some(pg) = server() else { return };
    let url = pg.create_database("battery").unwrap();
    // Ten routers starting at once: each migration is applied exactly once.
    let t = Instant::now();
    let starts: Vec<_> = (0..10)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { PostgresLedger::connect(&url).await })
        })
        .collect();
    let mut ledgers = Vec::new();
    for s in starts {
        ledgers.push(s.await.unwrap().unwrap());
    }
    eprintln!("10 concurrent connects + migration: {:?}", t.elapsed());
    let rows = sql(
        &url,
        "SELECT version, name FROM polyroute_migrations ORDER BY version",
    )
    .await;
    let got: Vec<(i32, &str)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        got,
        [
            (1, "generations"),
            (2, "budget"),
            (3, "keys"),
            (4, "settles pending")
        ]
    );
    assert!(
        migrate(&url).await.unwrap().is_empty(),
        "nothing left to migrate"
    );
    let idx: Vec<String> = sql(
        &url,
        "SELECT indexname FROM pg_indexes WHERE tablename = 'polyroute_generations'",
    )
    .await
    .iter()
    .map(|r| r.get(0))
    .collect();
    for want in [
        "polyroute_generations_user_time",
        "polyroute_generations_time",
    ] {
        assert!(
            idx.iter().any(|i| i == want),
            "index {want} missing: {idx:?}"
        );
    }

    drop(ledgers);
    let pgs = PostgresState::connect(&url).await.unwrap();
    let stores = Stores {
        ledger: Arc::new(pgs.ledger()),
        budget: Arc::new(pgs.budget()),
        ..Stores::memory()
    };
    let t = Instant::now();
    battery::run_all(&stores).await.unwrap();
    eprintln!("postgres battery (ledger and budget): {:?}", t.elapsed());
    // The battery's noted-settle check ran in full: this ledger notes.
    assert!(stores
        .ledger
        .insert_noting_settle(
            battery::record("noted-here", None, 1, "1"),
            &polyroute::state::SettleOrder {
                id: polyroute::state::ReservationId("noted-here".into()),
                scopes: vec![polyroute::Scope::Router],
                billed: Decimal::ONE,
            }
        )
        .await
        .unwrap());

    // A database migrated by a newer polyroute is refused, naming the versions.
    sql(
        &url,
        "INSERT INTO polyroute_migrations (version, name) VALUES (99, 'future')",
    )
    .await;
    let e = PostgresLedger::connect(&url).await.unwrap_err().to_string();
    assert!(
        e.contains("schema version 99") && e.contains(&format!("127.0.0.1:{}/battery", pg.port())),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_durable_across_a_server_restart_and_the_ledger_reconnects() {
    let Some(mut pg) = server() else { return };
    let url = pg.create_database("durable").unwrap();
    let opts = PostgresOptions {
        connections: 2,
        connect_timeout: Duration::from_secs(2),
        ..PostgresOptions::default()
    };
    let ledger = PostgresLedger::connect_with(&url, opts).await.unwrap();
    let now = polyroute::state::now_ms();
    for i in 0..50 {
        let mut rec = battery::record(&format!("gen-{i}"), Some("durable-user"), now + i, "0.001");
        rec.cost = Decimal::new(i + 1, 4);
        ledger.insert(rec).await.unwrap();
    }
    // Stop the server: calls fail fast with an error naming it, nothing hangs.
    pg.stop();
    let t = Instant::now();
    let e = ledger.get("gen-1").await.unwrap_err().to_string();
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "failing took {:?}",
        t.elapsed()
    );
    assert!(
        e.contains(&format!("postgres 127.0.0.1:{}/durable", pg.port())),
        "{e}"
    );
    pg.restart().unwrap();
    // Every acknowledged insert is there after the restart, and the same ledger object reconnects by itself.
    let t = Instant::now();
    let sum = loop {
        match ledger.summary(Some("durable-user"), 0).await {
            Ok(s) => break s,
            Err(e) => assert!(t.elapsed() < Duration::from_secs(10), "no reconnect: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(sum.requests, 50);
    assert_eq!(sum.cost, Decimal::new((1..=50).sum::<i64>(), 4));
    let newest = ledger
        .list(LedgerQuery {
            user: Some("durable-user".into()),
            since_ms: Some(now + 45),
            limit: Some(3),
        })
        .await
        .unwrap();
    let ids: Vec<&str> = newest.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["gen-49", "gen-48", "gen-47"]);
    let t = ledger.totals().await.unwrap();
    assert_eq!(
        (t.count, t.by_user.get("durable-user").copied()),
        (50, Some(sum.cost))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_servers_and_bad_urls_are_named_without_passwords() {
    if !skip_unless_available("postgres errors").expect("servers required") {
        return;
    }
    // A port nobody listens on (bound and released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://someone:fake-pg-pass@127.0.0.1:{port}/nowhere");
    let e = PostgresLedger::connect(&url).await.unwrap_err().to_string();
    assert!(
        e.contains(&format!("postgres 127.0.0.1:{port}/nowhere")),
        "{e}"
    );
    assert!(!e.contains("fake-pg-pass"), "{e}");
    let e = PostgresLedger::connect("postgres://u:fake-pg-pass@127.0.0.1:notaport/x")
        .await
        .unwrap_err()
        .to_string();
    assert!(!e.contains("fake-pg-pass"), "{e}");
}
