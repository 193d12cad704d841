//! A simulated fleet against one real Redis: 100 routers (tasks, each with its own connection and stores) hold
//! one budget and one rpm limit exactly; a process killed while holding loses its holds after their TTL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use polyroute::state::{
    Budget, HoldRequest, RateDecision, RateLimiter, ReservationId, Reserved, Scope, ScopeLimit,
    Span, Window,
};
use polyroute_redis::RedisState;
use polyroute_testsupport::{skip_unless_available, RedisServer};
use rust_decimal::Decimal;

const ROUTERS: usize = 100;

fn server() -> Option<RedisServer> {
    if !skip_unless_available("redis fleet test").expect("servers required") {
        return None;
    }
    Some(RedisServer::start().expect("redis-server"))
}

fn usd(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// A deterministic spread of billed costs (no ambient randomness): 50-100 % of the estimate.
fn billed_fraction(i: u64) -> Decimal {
    Decimal::new(
        50 + i64::try_from(i.wrapping_mul(2_654_435_761) % 51).unwrap(),
        2,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_routers_never_exceed_the_budget_and_use_it_up() {
    let Some(r) = server() else { return };
    let limit = usd("25");
    let estimate = usd("0.01");
    let key = Scope::Key("fleet-key".into());
    let mut routers = Vec::new();
    for _ in 0..ROUTERS {
        routers.push(RedisState::connect(&r.url()).await.unwrap().budget());
    }
    let billed_total = Arc::new(std::sync::Mutex::new(Decimal::ZERO));
    let served = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let t = Instant::now();
    let mut tasks = Vec::new();
    for (n, b) in routers.into_iter().enumerate() {
        let (billed_total, served, refused, key) = (
            billed_total.clone(),
            served.clone(),
            refused.clone(),
            key.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut misses = 0;
            let mut i = 0u64;
            // Each router serves until the budget refuses it 3 times in a row (others' holds may still settle
            // below their estimates and free room).
            while misses < 3 {
                i += 1;
                let id = ReservationId(format!("r{n}-{i}"));
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
                        let cost = (estimate * billed_fraction(i * 131 + n as u64)).round_dp(12);
                        let scopes = [Scope::Router, key.clone()];
                        assert!(b.settle(&id, &scopes, Some(cost)).await.unwrap());
                        // A replayed settle (a retry after a lost reply) never bills twice.
                        if i.is_multiple_of(10) {
                            assert!(!b.settle(&id, &scopes, Some(cost)).await.unwrap());
                        }
                        *billed_total.lock().unwrap() += cost;
                        served.fetch_add(1, Ordering::Relaxed);
                    }
                    Reserved::Refused(_) => {
                        misses += 1;
                        refused.fetch_add(1, Ordering::Relaxed);
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
    let check = RedisState::connect(&r.url()).await.unwrap().budget();
    let spent = check.spent(&key).await.unwrap();
    let billed = *billed_total.lock().unwrap();
    let served = served.load(Ordering::Relaxed);
    eprintln!(
        "budget fleet: {ROUTERS} routers, {served} served, {} refusals, spent {spent} of {limit} in {elapsed:?} \
         ({:.0} reserve+settle pairs/s)",
        refused.load(Ordering::Relaxed),
        served as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(
        spent, billed,
        "redis spend differs from what the routers billed"
    );
    assert_eq!(check.spent(&Scope::Router).await.unwrap(), billed);
    assert!(spent <= limit, "spent {spent} over the limit {limit}");
    // Used up: less than one estimate of room is left, i.e. within 0.04 % of the limit here (bar: 1 %).
    assert!(limit - spent < estimate, "spent only {spent} of {limit}");
    assert_eq!(
        check.held(&key).await.unwrap(),
        Decimal::ZERO,
        "holds left behind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_routers_admit_exactly_the_rpm() {
    let Some(r) = server() else { return };
    let rpm = 1_000u64;
    let windows = vec![
        Window {
            name: "key-rpm".into(),
            limit: rpm,
            span: Span::Sliding(Duration::from_secs(60)),
        },
        Window {
            name: "key-per-day".into(),
            limit: 1_000_000,
            span: Span::UtcDay,
        },
    ];
    let mut routers = Vec::new();
    for _ in 0..ROUTERS {
        routers.push(RedisState::connect(&r.url()).await.unwrap().rate());
    }
    let allowed = Arc::new(AtomicU64::new(0));
    let t = Instant::now();
    let mut tasks = Vec::new();
    // 100 routers × 4 concurrent requests × 8 = 3,200 attempts for 1,000 admissions.
    for rl in routers {
        let rl = Arc::new(rl);
        for _ in 0..4 {
            let (rl, allowed, windows) = (rl.clone(), allowed.clone(), windows.clone());
            tasks.push(tokio::spawn(async move {
                for _ in 0..8 {
                    match rl.hit("fleet-key", &windows, 1).await.unwrap() {
                        RateDecision::Allowed => {
                            allowed.fetch_add(1, Ordering::Relaxed);
                        }
                        RateDecision::Limited {
                            window,
                            retry_after,
                        } => {
                            assert_eq!(window, "key-rpm");
                            assert!(
                                retry_after >= Duration::from_secs(1)
                                    && retry_after <= Duration::from_secs(60)
                            );
                        }
                    }
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = t.elapsed();
    let allowed = allowed.load(Ordering::Relaxed);
    eprintln!(
        "rpm fleet: {ROUTERS} routers, 3200 attempts, {allowed} admitted (limit {rpm}) in {elapsed:?} ({:.0} hits/s)",
        3200.0 / elapsed.as_secs_f64()
    );
    assert_eq!(allowed, rpm, "admitted {allowed} for an rpm of {rpm}");
    let check = RedisState::connect(&r.url()).await.unwrap().rate();
    assert_eq!(
        check
            .used("fleet-key", Span::Sliding(Duration::from_secs(60)))
            .await
            .unwrap(),
        rpm
    );
    assert_eq!(check.used("fleet-key", Span::UtcDay).await.unwrap(), rpm);
}

/// Not a test on its own: the child process of `a_killed_process_holds_expire_after_their_ttl` (runs only with
/// its environment variable): holds money, says so, and waits to be killed.
#[tokio::test]
async fn child_holder() {
    let Ok(url) = std::env::var("POLYROUTE_TEST_CHILD_REDIS") else {
        return;
    };
    let b = RedisState::connect(&url).await.unwrap().budget();
    let req = HoldRequest {
        id: ReservationId("child-hold".into()),
        amount: usd("0.75"),
        scopes: vec![ScopeLimit {
            scope: Scope::Key("k".into()),
            limit: Some(usd("1")),
        }],
        ttl: Duration::from_millis(1500),
    };
    assert_eq!(b.reserve(&req).await.unwrap(), Reserved::Held);
    println!("HELD");
    tokio::time::sleep(Duration::from_secs(30)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_process_holds_expire_after_their_ttl() {
    let Some(r) = server() else { return };
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_holder", "--nocapture", "--test-threads=1"])
        .env("POLYROUTE_TEST_CHILD_REDIS", r.url())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let got = tokio::task::spawn_blocking(move || {
        BufReader::new(out)
            .lines()
            .map_while(Result::ok)
            .any(|l| l.contains("HELD"))
    });
    let got = tokio::time::timeout(Duration::from_secs(20), got).await;
    let held_at = Instant::now();
    let _ = child.kill(); // SIGKILL by PID: no destructor, no settle.
    let _ = child.wait();
    assert!(matches!(got, Ok(Ok(true))), "the child never held");

    let b = RedisState::connect(&r.url()).await.unwrap().budget();
    let key = Scope::Key("k".into());
    let req = |id: &str| HoldRequest {
        id: ReservationId(id.into()),
        amount: usd("0.5"),
        scopes: vec![ScopeLimit {
            scope: key.clone(),
            limit: Some(usd("1")),
        }],
        ttl: Duration::from_secs(60),
    };
    // While the dead process's hold lives, it still counts...
    assert_eq!(b.held(&key).await.unwrap(), usd("0.75"));
    assert!(matches!(
        b.reserve(&req("p1")).await.unwrap(),
        Reserved::Refused(_)
    ));
    // ...and once its TTL (1.5 s) has passed, it no longer does.
    let t = Instant::now();
    while b.held(&key).await.unwrap() != Decimal::ZERO {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the hold never expired"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "dead process's hold gone {:?} after it was placed (ttl 1.5 s)",
        held_at.elapsed()
    );
    assert!(held_at.elapsed() >= Duration::from_millis(1000));
    assert_eq!(b.reserve(&req("p2")).await.unwrap(), Reserved::Held);
}

/// Latency of one router's calls on loopback (debug build; figures printed for the notes): each is one Redis
/// round trip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_router_pays_one_round_trip_per_call() {
    use polyroute::state::StickyStore;
    let Some(r) = server() else { return };
    let st = RedisState::connect(&r.url()).await.unwrap();
    let (b, rl, sticky) = (st.budget(), st.rate(), st.sticky());
    let key = Scope::Key("latency".into());
    let w = [Window {
        name: "rpm".into(),
        limit: 1_000_000,
        span: Span::Sliding(Duration::from_secs(60)),
    }];
    let (mut reserve, mut settle, mut hit, mut get) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let time = |t: Instant| t.elapsed().as_secs_f64() * 1e6;
    for i in 0..300 {
        let id = ReservationId(format!("lat-{i}"));
        let req = HoldRequest {
            id: id.clone(),
            amount: usd("0.001"),
            scopes: vec![
                ScopeLimit {
                    scope: Scope::Router,
                    limit: None,
                },
                ScopeLimit {
                    scope: key.clone(),
                    limit: Some(usd("1000")),
                },
            ],
            ttl: Duration::from_secs(60),
        };
        let t = Instant::now();
        assert_eq!(b.reserve(&req).await.unwrap(), Reserved::Held);
        reserve.push(time(t));
        let t = Instant::now();
        assert!(b
            .settle(&id, &[Scope::Router, key.clone()], Some(usd("0.0005")))
            .await
            .unwrap());
        settle.push(time(t));
        let t = Instant::now();
        assert_eq!(
            rl.hit("latency", &w, 1).await.unwrap(),
            RateDecision::Allowed
        );
        hit.push(time(t));
        let t = Instant::now();
        let _ = sticky.get(i).await.unwrap();
        get.push(time(t));
    }
    let pct = |v: &mut Vec<f64>, p: f64| {
        v.sort_by(f64::total_cmp);
        v[((v.len() - 1) as f64 * p).round() as usize]
    };
    for (name, v) in [
        ("reserve", &mut reserve),
        ("settle", &mut settle),
        ("rate hit", &mut hit),
        ("sticky get", &mut get),
    ] {
        let (p50, p99) = (pct(v, 0.5), pct(v, 0.99));
        eprintln!("{name}: p50 {p50:.0} µs, p99 {p99:.0} µs");
        assert!(p50 < 20_000.0, "{name} p50 {p50} µs");
    }
    assert_eq!(b.spent(&key).await.unwrap(), usd("0.15"));
}
