//! polyroute's state battery against a throwaway 3-master Redis Cluster (`redis+cluster://` URL): every script
//! and pipeline keeps its keys in one hash slot, and the keys land on the cluster's masters.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use polyroute::state::{battery, RateDecision, RateLimiter, Span, Stores, Window};
use polyroute::state::{Budget, HoldRequest, ReservationId, Reserved, Scope, ScopeLimit};
use polyroute::MemoryLedger;
use polyroute_redis::{HealthOptions, RedisOptions, RedisState};
use polyroute_testsupport::{skip_unless_available, RedisCluster, TestCerts};
use rust_decimal::Decimal;

fn dbsize(port: u16) -> u64 {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "DBSIZE"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_stores_pass_the_battery() {
    if !skip_unless_available("redis cluster battery").expect("servers required") {
        return;
    }
    let c = RedisCluster::start().expect("a 3-master redis cluster");
    let url = c.url();
    assert!(url.starts_with("redis+cluster://127.0.0.1:"), "{url}");
    let st = RedisState::connect(&url).await.unwrap();
    let stores = Stores {
        ledger: Arc::new(MemoryLedger::default()),
        budget: Arc::new(st.budget()),
        rate: Arc::new(st.rate()),
        sticky: Arc::new(st.sticky()),
        health: Arc::new(st.health(HealthOptions::default())),
    };
    let t = Instant::now();
    battery::run_all(&stores).await.unwrap();
    eprintln!("redis cluster battery: {:?}", t.elapsed());
    assert!(t.elapsed() < Duration::from_secs(90));

    // Sixteen limited keys, sixteen hash tags: their windows spread over the masters, each hit exact.
    let rate = st.rate();
    let w = [Window {
        name: "rpm".into(),
        limit: 1,
        span: Span::Sliding(Duration::from_secs(60)),
    }];
    for i in 0..16 {
        let key = format!("spread-{i}");
        assert_eq!(rate.hit(&key, &w, 1).await.unwrap(), RateDecision::Allowed);
        assert!(matches!(
            rate.hit(&key, &w, 1).await.unwrap(),
            RateDecision::Limited { .. }
        ));
        assert_eq!(rate.used(&key, w[0].span).await.unwrap(), 1);
    }

    let sizes: Vec<u64> = c.nodes().iter().map(|n| dbsize(n.port())).collect();
    eprintln!("keys per master: {sizes:?}");
    assert!(
        sizes.iter().sum::<u64>() > 0,
        "nothing was written: {sizes:?}"
    );
    assert!(
        sizes.iter().filter(|&&n| n > 0).count() >= 2,
        "every key landed on one master: {sizes:?}"
    );

    // A malformed cluster URL is refused before any connection.
    let err = RedisState::connect("redis+cluster://127.0.0.1:1/3")
        .await
        .expect_err("a database number was accepted on a cluster");
    assert!(err.to_string().contains("cluster"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_cluster_urls_verify_every_node() {
    if !skip_unless_available("redis cluster tls").expect("servers required") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(TestCerts { ca, cert, key }) = TestCerts::make(dir.path(), "IP:127.0.0.1") else {
        eprintln!(
            "skipping the redis cluster tls test: the openssl command cannot make certificates"
        );
        return;
    };
    let c = RedisCluster::start_tls(&cert, &key, &ca).expect("a 3-master redis cluster with TLS");
    let url = c.tls_url().unwrap();
    let st = RedisState::connect_with(
        &url,
        RedisOptions {
            tls_root_cert: Some(std::fs::read(&ca).unwrap()),
            ..RedisOptions::default()
        },
    )
    .await
    .unwrap();
    // Holds on sixteen keys (each hold's scopes in one slot) and rate windows over every master, over TLS.
    let b = st.budget();
    for i in 0..16 {
        let scope = Scope::Key(format!("tls-{i}"));
        let hold = HoldRequest {
            id: ReservationId(format!("tls-{i}")),
            amount: Decimal::new(5, 2),
            scopes: vec![
                ScopeLimit {
                    scope: scope.clone(),
                    limit: Some(Decimal::ONE),
                },
                ScopeLimit {
                    scope: Scope::User(format!("u-{i}")),
                    limit: None,
                },
            ],
            ttl: Duration::from_secs(60),
        };
        assert_eq!(b.reserve(&hold).await.unwrap(), Reserved::Held);
        assert!(b
            .settle(
                &hold.id,
                &[scope.clone(), Scope::User(format!("u-{i}"))],
                Some(Decimal::new(3, 2))
            )
            .await
            .unwrap());
        assert_eq!(b.spent(&scope).await.unwrap(), Decimal::new(3, 2));
        let w = [Window {
            name: "rpm".into(),
            limit: 5,
            span: Span::Sliding(Duration::from_secs(60)),
        }];
        assert_eq!(
            st.rate().hit(&format!("tls-{i}"), &w, 1).await.unwrap(),
            RateDecision::Allowed
        );
    }
    let sizes: Vec<u64> = c.nodes().iter().map(|n| dbsize(n.port())).collect();
    assert!(sizes.iter().filter(|&&n| n > 0).count() >= 2, "{sizes:?}");

    // Without the CA the nodes are not trusted: refused, naming the cluster.
    let err = RedisState::connect(&url)
        .await
        .expect_err("an untrusted cluster was accepted");
    eprintln!("untrusted cluster: {err}");
    assert!(err.to_string().contains("cluster"), "{err}");
}
