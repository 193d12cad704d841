//! The admission path for remote stores (`Budget::is_remote`, `StickyStore::is_remote`: Redis, PostgreSQL): the
//! sticky lookup, the rpm window and the hold issued together, the settle after the answer. Run here with the
//! memory stores declared remote, so the path is checked without a server (the Redis tests run it for real).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use polyroute::state::memory::{MemoryBudget, MemorySticky};
use polyroute::state::{BoxFut, HoldRequest, ReservationId, Reserved};
use polyroute::{Budget, Limits, Options, RequestContext, Result, Scope, StickyStore, Stores};
use rust_decimal::Decimal;
use serde_json::{json, Value};

struct Remote<T>(T);

impl<T: Budget> Budget for Remote<T> {
    fn reserve(&self, req: &HoldRequest) -> BoxFut<'_, Result<Reserved>> {
        self.0.reserve(req)
    }
    fn settle(
        &self,
        id: &ReservationId,
        scopes: &[Scope],
        billed: Option<Decimal>,
    ) -> BoxFut<'_, Result<bool>> {
        self.0.settle(id, scopes, billed)
    }
    fn spent(&self, scope: &Scope) -> BoxFut<'_, Result<Decimal>> {
        self.0.spent(scope)
    }
    fn held(&self, scope: &Scope) -> BoxFut<'_, Result<Decimal>> {
        self.0.held(scope)
    }
    fn is_remote(&self) -> bool {
        true
    }
}

impl<T: StickyStore> StickyStore for Remote<T> {
    fn get(&self, key: u64) -> BoxFut<'_, Result<Option<String>>> {
        self.0.get(key)
    }
    fn put(&self, key: u64, tag: &str, ttl: Duration) -> BoxFut<'_, Result<()>> {
        self.0.put(key, tag, ttl)
    }
    fn forget(&self, key: u64) -> BoxFut<'_, Result<()>> {
        self.0.forget(key)
    }
    fn is_remote(&self) -> bool {
        true
    }
}

fn chat(text: &str, max_tokens: u64) -> Value {
    json!({"model": "test/model", "messages": [{"role": "user", "content": text}], "max_tokens": max_tokens})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sticky_rpm_and_hold_in_one_step_settle_after_the_answer() {
    let m = mocks(2).await;
    let mut limits = Limits {
        user_rpm: Some(6),
        ..Limits::default()
    };
    limits.user_usd.insert("tight".into(), Decimal::new(1, 4)); // $0.0001
    let mut stores = Stores::memory();
    stores.budget = Arc::new(Remote(MemoryBudget::default()));
    stores.sticky = Arc::new(Remote(MemorySticky::default()));
    let r = builder(&[
        P("alpha", "openai", base(&m[0], "openai")),
        P("beta", "openai", base(&m[1], "openai")),
    ])
    .options(Options {
        timeouts: relaxed_timeouts(),
        read_env: false,
        limits,
        ..Options::default()
    })
    .stores(stores)
    .build()
    .unwrap();
    let ctx = |user: &str, session: &str| RequestContext {
        user: Some(user.into()),
        session_id: Some(session.into()),
        ..Default::default()
    };

    // A conversation keeps its endpoint; the rpm counts every request of the user.
    let mut seen = Vec::new();
    let mut billed = Decimal::ZERO;
    for turn in 0..6 {
        let v = r
            .chat_with(chat(&format!("turn {turn}"), 10), &ctx("u1", "conv"))
            .await
            .unwrap();
        seen.push(v["provider"].as_str().unwrap().to_string());
        // The sticky write is sent after the answer: `settled` waits for it, as the next turn of a conversation
        // comes after it.
        assert_eq!(r.settled(Duration::from_secs(2)).await, 0);
        billed += v["usage"]["cost"]
            .as_f64()
            .map(|c| Decimal::try_from(c).unwrap())
            .unwrap();
    }
    assert!(seen.iter().all(|p| *p == seen[0]), "{seen:?}");
    let e = r
        .chat_with(chat("one too many", 10), &ctx("u1", "conv"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "rate_limited");
    assert_eq!(m[0].calls() + m[1].calls(), 6);
    // The settles land after the answers: once they have, the spend is what was billed (the memory ledger's
    // costs are exact decimals; the usage JSON's floats round-trip them at this size).
    assert_eq!(r.settled(Duration::from_secs(2)).await, 0);
    assert_eq!(r.spent(Some("u1")).await.unwrap(), billed);

    // The budget refuses before any provider call, and the refused request's rpm slot was counted.
    let e = r
        .chat_with(chat("too big", 1000), &ctx("tight", "t"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "payment_required");
    assert_eq!(m[0].calls() + m[1].calls(), 6);
    r.chat_with(chat("fits", 10), &ctx("tight", "t"))
        .await
        .unwrap();
    assert_eq!(r.settled(Duration::from_secs(2)).await, 0);
    assert!(r.spent(Some("tight")).await.unwrap() > Decimal::ZERO);
}
