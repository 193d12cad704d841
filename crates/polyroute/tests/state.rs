//! The state battery (`polyroute::state::battery`) against every store this crate ships: memory and SQLite.
//! Store crates run the same battery against theirs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use polyroute::state::{battery, RateDecision, Span, Stores, Window};
use rust_decimal::Decimal;

fn temp_db(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("polyroute-state-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("state.sqlite");
    let _ = std::fs::remove_file(&p);
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stores_pass_the_battery() {
    battery::run_all(&Stores::memory()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_stores_pass_the_battery() {
    let p = temp_db("battery");
    battery::run_all(&Stores::sqlite(&p).unwrap())
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(p.parent().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sqlite_handles_on_one_file_share_state() {
    // Two routers (or processes) opening the same file: holds, spend and windows are shared, not cached.
    let p = temp_db("shared");
    let (a, b) = (Stores::sqlite(&p).unwrap(), Stores::sqlite(&p).unwrap());
    let key = polyroute::Scope::Key(battery::unique("k"));
    let hold = |id: &str| polyroute::state::HoldRequest {
        id: polyroute::state::ReservationId(id.into()),
        amount: Decimal::ONE,
        scopes: vec![polyroute::state::ScopeLimit {
            scope: key.clone(),
            limit: Some(Decimal::ONE),
        }],
        ttl: Duration::from_secs(60),
    };
    assert_eq!(
        a.budget.reserve(&hold("r1")).await.unwrap(),
        polyroute::state::Reserved::Held
    );
    assert!(matches!(
        b.budget.reserve(&hold("r2")).await.unwrap(),
        polyroute::state::Reserved::Refused(_)
    ));
    b.budget
        .settle(
            &polyroute::state::ReservationId("r1".into()),
            std::slice::from_ref(&key),
            Some(Decimal::new(5, 1)),
        )
        .await
        .unwrap();
    assert_eq!(a.budget.spent(&key).await.unwrap(), Decimal::new(5, 1));
    let _ = std::fs::remove_dir_all(p.parent().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_rate_windows_and_spend_survive_a_restart() {
    let p = temp_db("restart");
    let w = [Window {
        name: "per-day".into(),
        limit: 2,
        span: Span::UtcDay,
    }];
    {
        let s = Stores::sqlite(&p).unwrap();
        for _ in 0..2 {
            assert_eq!(s.rate.hit("u", &w, 1).await.unwrap(), RateDecision::Allowed);
        }
        s.budget
            .settle(
                &polyroute::state::ReservationId("x".into()),
                &[polyroute::Scope::Router],
                Some(Decimal::new(3, 0)),
            )
            .await
            .unwrap();
    }
    let s = Stores::sqlite(&p).unwrap();
    assert!(matches!(
        s.rate.hit("u", &w, 1).await.unwrap(),
        RateDecision::Limited { .. }
    ));
    assert_eq!(s.rate.used("u", Span::UtcDay).await.unwrap(), 2);
    assert_eq!(
        s.budget.spent(&polyroute::Scope::Router).await.unwrap(),
        Decimal::new(3, 0)
    );
    let _ = std::fs::remove_dir_all(p.parent().unwrap());
}
