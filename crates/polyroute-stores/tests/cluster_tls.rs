//! `[state]` with a Redis Cluster URL and a PostgreSQL URL over verified TLS, opened by `polyroute-stores` as the
//! gateway and the bindings open it: the state battery passes on the stores it builds (budget, rate, sticky and
//! health on the 3-master cluster; the ledger, behind its spool, on PostgreSQL with `sslmode=verify-full`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use polyroute::state::battery;
use polyroute::StateConfig;
use polyroute_testsupport::{skip_unless_available, PostgresServer, RedisCluster, TestCerts};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_on_a_redis_cluster_and_tls_postgres_passes_the_battery() {
    if !skip_unless_available("stores on a cluster and tls postgres").expect("servers required") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(certs) = TestCerts::make(dir.path(), "IP:127.0.0.1") else {
        eprintln!("skipping: the openssl command cannot make certificates");
        return;
    };
    let pg = PostgresServer::start_tls(&certs.cert, &certs.key).expect("postgres with ssl=on");
    let cluster = RedisCluster::start().expect("a 3-master redis cluster");
    let ca = certs.ca.to_string_lossy().replace('/', "%2F");
    let state = StateConfig {
        redis: Some(cluster.url()),
        postgres: Some(format!(
            "postgres://postgres@127.0.0.1:{}/postgres?sslmode=verify-full&sslrootcert={ca}",
            pg.port()
        )),
        spool: Some(dir.path().join("spool.jsonl")),
        ..StateConfig::default()
    };
    let shared = polyroute_stores::open_with(&state, &polyroute_stores::Local::default())
        .await
        .unwrap()
        .expect("servers named");
    assert!(shared.redis.is_some() && shared.postgres.is_some());
    let t = Instant::now();
    battery::run_all(&shared.stores).await.unwrap();
    eprintln!("battery on a cluster + tls postgres: {:?}", t.elapsed());
    assert!(t.elapsed() < Duration::from_secs(120));
    let ssl: u32 = pg
        .psql("select count(*) from pg_stat_ssl where ssl")
        .unwrap()
        .parse()
        .unwrap();
    assert!(ssl >= 1, "the ledger's connections are not encrypted");
}
