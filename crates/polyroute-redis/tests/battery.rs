//! polyroute's state battery (`polyroute::state::battery`) against the Redis stores on a throwaway
//! `redis-server` (the ledger is the memory one: Redis keeps no ledger).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use polyroute::state::{battery, Stores};
use polyroute::MemoryLedger;
use polyroute_redis::{HealthOptions, RedisState};
use polyroute_testsupport::{skip_unless_available, RedisServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stores_pass_the_battery() {
    if !skip_unless_available("redis battery").expect("servers required") {
        return;
    }
    let r = RedisServer::start().expect("redis-server");
    let st = RedisState::connect(&r.url()).await.unwrap();
    let stores = Stores {
        ledger: Arc::new(MemoryLedger::default()),
        budget: Arc::new(st.budget()),
        rate: Arc::new(st.rate()),
        sticky: Arc::new(st.sticky()),
        health: Arc::new(st.health(HealthOptions::default())),
    };
    let t = Instant::now();
    battery::run_all(&stores).await.unwrap();
    eprintln!("redis battery: {:?}", t.elapsed());
    assert!(t.elapsed() < Duration::from_secs(60));
}
