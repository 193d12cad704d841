//! The Redis stores against a real throwaway `redis-server` (polyroute-testsupport): budget holds and settles,
//! rate windows, sticky routing, shared health, authentication, a server restart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use polyroute::state::{
    Budget, HoldRequest, RateDecision, RateLimiter, ReservationId, Reserved, Scope, ScopeLimit,
    Span, StickyStore, Window,
};
use polyroute::{HealthStore, Observation};
use polyroute_redis::{HealthOptions, RedisState};
use polyroute_testsupport::{skip_unless_available, RedisServer};
use rust_decimal::Decimal;

fn server() -> Option<RedisServer> {
    if !skip_unless_available("redis store test").expect("servers required") {
        return None;
    }
    Some(RedisServer::start().expect("redis-server"))
}

fn usd(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn hold(id: &str, amount: &str, scopes: &[(Scope, Option<&str>)], ttl_ms: u64) -> HoldRequest {
    HoldRequest {
        id: ReservationId(id.to_string()),
        amount: usd(amount),
        scopes: scopes
            .iter()
            .map(|(s, l)| ScopeLimit {
                scope: s.clone(),
                limit: l.map(usd),
            })
            .collect(),
        ttl: Duration::from_millis(ttl_ms),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budget_holds_refuses_settles_once_and_expires() {
    let Some(r) = server() else { return };
    let b = RedisState::connect(&r.url()).await.unwrap().budget();
    let user = Scope::User("u1".into());
    let scopes = [(Scope::Router, Some("1.00")), (user.clone(), Some("0.10"))];

    assert_eq!(
        b.reserve(&hold("a", "0.06", &scopes, 60_000))
            .await
            .unwrap(),
        Reserved::Held
    );
    assert_eq!(b.held(&user).await.unwrap(), usd("0.06"));
    assert_eq!(b.held(&Scope::Router).await.unwrap(), usd("0.06"));
    // The user's limit refuses the second hold; nothing is placed on the router either.
    match b
        .reserve(&hold("b", "0.05", &scopes, 60_000))
        .await
        .unwrap()
    {
        Reserved::Refused(r) => {
            assert_eq!(r.scope, user);
            assert_eq!(
                (r.limit, r.spent, r.held, r.amount),
                (usd("0.10"), usd("0"), usd("0.06"), usd("0.05"))
            );
        }
        Reserved::Held => panic!("over the user's limit"),
    }
    assert_eq!(b.held(&Scope::Router).await.unwrap(), usd("0.06"));
    // Reserving an id already held places nothing more.
    assert_eq!(
        b.reserve(&hold("a", "0.06", &scopes, 60_000))
            .await
            .unwrap(),
        Reserved::Held
    );
    assert_eq!(b.held(&user).await.unwrap(), usd("0.06"));

    // Settle bills once: the replay changes nothing.
    let ids = [Scope::Router, user.clone()];
    assert!(b
        .settle(
            &ReservationId("a".into()),
            &ids,
            Some(usd("0.0412345678901"))
        )
        .await
        .unwrap());
    assert!(!b
        .settle(&ReservationId("a".into()), &ids, Some(usd("0.04")))
        .await
        .unwrap());
    assert_eq!(b.spent(&user).await.unwrap(), usd("0.04123456789"));
    assert_eq!(b.spent(&Scope::Router).await.unwrap(), usd("0.04123456789"));
    assert_eq!(b.held(&user).await.unwrap(), Decimal::ZERO);
    // A settled id cannot be held again.
    assert_eq!(
        b.reserve(&hold("a", "0.06", &scopes, 60_000))
            .await
            .unwrap(),
        Reserved::Held
    );
    assert_eq!(b.held(&user).await.unwrap(), Decimal::ZERO);

    // A hold that is never settled stops counting after its TTL.
    assert_eq!(
        b.reserve(&hold("c", "0.05", &scopes, 300)).await.unwrap(),
        Reserved::Held
    );
    assert!(matches!(
        b.reserve(&hold("d", "0.05", &scopes, 60_000))
            .await
            .unwrap(),
        Reserved::Refused(_)
    ));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(b.held(&user).await.unwrap(), Decimal::ZERO);
    assert_eq!(
        b.reserve(&hold("d", "0.05", &scopes, 60_000))
            .await
            .unwrap(),
        Reserved::Held
    );
    // Settling the expired hold still bills (spend is spend), and releases nothing it no longer has.
    assert!(b
        .settle(&ReservationId("c".into()), &ids, Some(usd("0.01")))
        .await
        .unwrap());
    assert_eq!(b.spent(&user).await.unwrap(), usd("0.05123456789"));
    assert_eq!(b.held(&user).await.unwrap(), usd("0.05"));
    // Release without billing.
    assert!(b
        .settle(&ReservationId("d".into()), &ids, None)
        .await
        .unwrap());
    assert_eq!(b.held(&user).await.unwrap(), Decimal::ZERO);
    assert_eq!(b.spent(&user).await.unwrap(), usd("0.05123456789"));
    // Unlimited scopes count but never refuse; a key scope is separate from a user scope of the same name.
    let key = Scope::Key("u1".into());
    assert_eq!(
        b.reserve(&hold("e", "500", &[(key.clone(), None)], 60_000))
            .await
            .unwrap(),
        Reserved::Held
    );
    assert_eq!(b.held(&key).await.unwrap(), usd("500"));
    assert_eq!(b.held(&user).await.unwrap(), Decimal::ZERO);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_windows_slide_exactly_and_count_only_when_all_have_room() {
    let Some(r) = server() else { return };
    let rl = RedisState::connect(&r.url()).await.unwrap().rate();
    let w = |name: &str, limit, span| Window {
        name: name.into(),
        limit,
        span,
    };
    let windows = [
        w(
            "per-half-second",
            3,
            Span::Sliding(Duration::from_millis(500)),
        ),
        w("per-day", 5, Span::UtcDay),
    ];
    for _ in 0..3 {
        assert_eq!(
            rl.hit("k", &windows, 1).await.unwrap(),
            RateDecision::Allowed
        );
    }
    match rl.hit("k", &windows, 1).await.unwrap() {
        RateDecision::Limited {
            window,
            retry_after,
        } => {
            assert_eq!(window, "per-half-second");
            assert_eq!(
                retry_after,
                Duration::from_secs(1),
                "at least a second, rounded up"
            );
        }
        RateDecision::Allowed => panic!("4th hit within 500 ms allowed"),
    }
    // A refused hit counted nowhere.
    assert_eq!(rl.used("k", Span::UtcDay).await.unwrap(), 3);
    assert_eq!(rl.used("other", Span::UtcDay).await.unwrap(), 0);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        rl.used("k", Span::Sliding(Duration::from_millis(500)))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        rl.used("k", Span::Sliding(Duration::from_secs(60)))
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        rl.hit("k", &windows, 2).await.unwrap(),
        RateDecision::Allowed
    );
    // The day window is full now: 5 of 5.
    match rl.hit("k", &windows, 1).await.unwrap() {
        RateDecision::Limited {
            window,
            retry_after,
        } => {
            assert_eq!(window, "per-day");
            assert!(
                retry_after <= Duration::from_secs(86_400) && retry_after >= Duration::from_secs(1)
            );
        }
        RateDecision::Allowed => panic!("6th hit of the day allowed"),
    }
    // Token windows: amounts larger than the room are refused whole.
    let tpm = [w(
        "tokens-per-minute",
        1000,
        Span::Sliding(Duration::from_secs(60)),
    )];
    assert_eq!(rl.hit("t", &tpm, 700).await.unwrap(), RateDecision::Allowed);
    assert!(matches!(
        rl.hit("t", &tpm, 301).await.unwrap(),
        RateDecision::Limited { .. }
    ));
    assert_eq!(rl.hit("t", &tpm, 300).await.unwrap(), RateDecision::Allowed);
    assert_eq!(
        rl.used("t", Span::Sliding(Duration::from_secs(60)))
            .await
            .unwrap(),
        1000
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sticky_entries_are_shared_expire_and_are_forgotten() {
    let Some(r) = server() else { return };
    let a = RedisState::connect(&r.url()).await.unwrap().sticky();
    let b = RedisState::connect(&r.url()).await.unwrap().sticky();
    a.put(42, "openai/default", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(b.get(42).await.unwrap().as_deref(), Some("openai/default"));
    b.put(42, "azure/eu", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(a.get(42).await.unwrap().as_deref(), Some("azure/eu"));
    a.forget(42).await.unwrap();
    assert_eq!(b.get(42).await.unwrap(), None);
    a.forget(42).await.unwrap();
    a.put(u64::MAX, "x", Duration::from_millis(150))
        .await
        .unwrap();
    assert_eq!(b.get(u64::MAX).await.unwrap().as_deref(), Some("x"));
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(b.get(u64::MAX).await.unwrap(), None);
}

fn obs(ok: bool, outage: bool, ttft: f64) -> Observation {
    Observation {
        ok,
        outage,
        ttft_ms: Some(ttft),
        throughput: Some(40.0),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_shared_in_the_background_and_outages_are_local_at_once() {
    let Some(mut r) = server() else { return };
    let opts = HealthOptions {
        refresh: Duration::from_millis(100),
        ..HealthOptions::default()
    };
    let a = RedisState::connect(&r.url()).await.unwrap().health(opts);
    let b = RedisState::connect(&r.url()).await.unwrap().health(opts);
    for i in 0..10 {
        a.record("m@p1", obs(true, false, f64::from(i) * 10.0));
    }
    a.sync().await.unwrap();
    // B sees A's samples after its next background refresh (bounded wait), without any call of its own.
    let t = Instant::now();
    while b.snapshot().endpoints.get("m@p1").map(|e| e.samples) != Some(10) {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "b never saw a's samples"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let e = b.snapshot().endpoints.get("m@p1").cloned().unwrap();
    assert_eq!(
        (e.latency_p50_ms, e.throughput_p50, e.recent_outage),
        (Some(50.0), Some(40.0), false)
    );
    assert_eq!(b.success_rate("m@p1"), Some(1.0));
    assert_eq!(b.success_rate("m@nothing"), None);
    // An outage is in the recording process's snapshot at once, and reaches the other after a refresh.
    a.record("m@p2", obs(false, true, 0.0));
    assert!(a
        .snapshot()
        .endpoints
        .get("m@p2")
        .is_some_and(|e| e.recent_outage));
    a.sync().await.unwrap();
    b.sync().await.unwrap();
    assert!(b
        .snapshot()
        .endpoints
        .get("m@p2")
        .is_some_and(|e| e.recent_outage));
    assert_eq!(b.success_rate("m@p2"), Some(0.0));
    // Newer samples of an endpoint already read are read again (only endpoints with new samples are).
    for _ in 0..5 {
        a.record("m@p1", obs(false, false, 1.0));
    }
    a.sync().await.unwrap();
    b.sync().await.unwrap();
    assert_eq!(
        b.snapshot().endpoints.get("m@p1").map(|e| e.samples),
        Some(15)
    );
    assert_eq!(b.success_rate("m@p1"), Some(10.0 / 15.0));
    // The request path never waits for Redis: with the server gone, record and snapshot stay instant.
    r.stop();
    let t = Instant::now();
    for _ in 0..1000 {
        a.record("m@p1", obs(true, false, 5.0));
        let _ = a.snapshot();
    }
    assert!(
        t.elapsed() < Duration::from_millis(200),
        "record/snapshot took {:?}",
        t.elapsed()
    );
    assert!(a.sync().await.is_err());
    let msg = a.last_error().unwrap();
    assert!(msg.contains(&format!("127.0.0.1:{}", r.port())), "{msg}");
    // The last snapshot is kept.
    assert_eq!(
        a.snapshot().endpoints.get("m@p1").map(|e| e.samples),
        Some(15)
    );
    // What was observed while Redis was down is kept in process and written when it answers again (a fresh
    // server: the 1000 samples kept, trimmed to the newest 200; all successes).
    r.restart().unwrap();
    let t = Instant::now();
    while a.sync().await.is_err() {
        assert!(t.elapsed() < Duration::from_secs(10), "a never reconnected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(a.dropped(), 0);
    let t = Instant::now();
    while b.sync().await.is_err() {
        assert!(t.elapsed() < Duration::from_secs(10), "b never reconnected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        b.snapshot().endpoints.get("m@p1").map(|e| e.samples),
        Some(200)
    );
    assert_eq!(b.success_rate("m@p1"), Some(1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_are_used_and_never_shown() {
    if !skip_unless_available("redis auth test").expect("servers required") {
        return;
    }
    let r = RedisServer::start_with(Some("fake-redis-pass"), &[]).unwrap();
    let st = RedisState::connect(&r.url()).await.unwrap();
    let s = st.sticky();
    s.put(1, "t", Duration::from_secs(5)).await.unwrap();
    assert_eq!(s.get(1).await.unwrap().as_deref(), Some("t"));
    let wrong = format!("redis://:wrong-fake-pass@127.0.0.1:{}/", r.port());
    let e = RedisState::connect(&wrong).await.unwrap_err().to_string();
    assert!(!e.contains("wrong-fake-pass"), "{e}");
    assert!(e.contains(&format!("127.0.0.1:{}", r.port())), "{e}");
    let e = RedisState::connect("redis://:fake-redis-pass@[::1")
        .await
        .unwrap_err()
        .to_string();
    assert!(!e.contains("fake-redis-pass"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_is_reconnected_to_and_errors_name_it() {
    let Some(mut r) = server() else { return };
    let st = RedisState::connect(&r.url()).await.unwrap();
    let rl = st.rate();
    let w = [Window {
        name: "rpm".into(),
        limit: 10,
        span: Span::Sliding(Duration::from_secs(60)),
    }];
    assert_eq!(rl.hit("k", &w, 1).await.unwrap(), RateDecision::Allowed);
    r.stop();
    let t = Instant::now();
    let e = rl.hit("k", &w, 1).await.unwrap_err().to_string();
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "failing took {:?}",
        t.elapsed()
    );
    assert!(e.contains(&format!("redis 127.0.0.1:{}", r.port())), "{e}");
    r.restart().unwrap();
    // The connection manager reconnects on its own; the scripts are loaded again (the new server has none).
    let t = Instant::now();
    loop {
        match rl.hit("k", &w, 1).await {
            Ok(d) => {
                assert_eq!(d, RateDecision::Allowed);
                break;
            }
            Err(e) => assert!(t.elapsed() < Duration::from_secs(10), "no reconnect: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // No persistence in the test server: the restarted one counts from zero.
    assert_eq!(rl.used("k", Span::UtcDay).await.unwrap(), 1);
    let _ = Arc::new(st);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracked_window_sums_always_equal_a_full_recount_of_the_log() {
    let Some(r) = server() else { return };
    let rl = RedisState::connect(&r.url()).await.unwrap().rate();
    let client = redis::Client::open(r.url()).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let spans = [100u64, 300];
    let windows: Vec<Window> = spans
        .iter()
        .map(|ms| Window {
            name: format!("w{ms}"),
            limit: 8,
            span: Span::Sliding(Duration::from_millis(*ms)),
        })
        .collect();
    let (mut allowed, mut limited) = (0, 0);
    for i in 0u64..80 {
        // Uneven amounts and pauses, so events leave the windows one, several or all at a time.
        match rl.hit("inv", &windows, 1 + i % 3).await.unwrap() {
            RateDecision::Allowed => allowed += 1,
            RateDecision::Limited { .. } => limited += 1,
        }
        let log: Vec<(String, i64)> = redis::cmd("ZRANGE")
            .arg("{polyroute:r:inv}:log")
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .query_async(&mut raw)
            .await
            .unwrap();
        for ms in spans {
            let tracked: String = redis::cmd("HGET")
                .arg("{polyroute:r:inv}:m")
                .arg(format!("w:{ms}"))
                .query_async(&mut raw)
                .await
                .unwrap();
            let (cut, sum) = tracked.split_once(':').unwrap();
            let cut: i64 = cut.parse().unwrap();
            let recount: u64 = log
                .iter()
                .filter(|(_, at)| *at > cut)
                .map(|(m, _)| m.rsplit(':').next().unwrap().parse::<u64>().unwrap())
                .sum();
            assert_eq!(
                sum.parse::<u64>().unwrap(),
                recount,
                "span {ms} ms after hit {i}"
            );
            assert!(recount <= 8, "window of {ms} ms holds {recount} > 8");
        }
        tokio::time::sleep(Duration::from_millis(
            [1, 5, 20, 50, 130][usize::try_from(i % 5).unwrap()],
        ))
        .await;
    }
    assert!(
        allowed > 20 && limited > 5,
        "allowed {allowed}, limited {limited}: the test exercised too little"
    );
}
