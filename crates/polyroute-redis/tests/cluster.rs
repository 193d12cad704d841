//! polyroute's state battery against a throwaway 3-master Redis Cluster (`redis+cluster://` URL): every script
//! and pipeline keeps its keys in one hash slot, and the keys land on the cluster's masters.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use polyroute::state::{battery, RateDecision, RateLimiter, Span, Stores, Window};
use polyroute::MemoryLedger;
use polyroute_redis::{HealthOptions, RedisState};
use polyroute_testsupport::{skip_unless_available, RedisCluster};

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
