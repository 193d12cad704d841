//! The usage ledger (SQLite, durable), spend limits and free-tier limits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::*;
use polyroute::{Ledger, Limits, MemoryLedger, Options, RequestContext, SqliteLedger};
use rust_decimal::Decimal;
use serde_json::json;

#[tokio::test]
async fn sqlite_ledger_survives_a_restart_and_bills_once_per_request() {
    let dir = std::env::temp_dir().join(format!("polyroute-ledger-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ledger.sqlite");
    let _ = std::fs::remove_file(&path);
    let m = mocks(2).await;
    let ps = [
        P("alpha", "openai", base(&m[0], "openai")),
        P("beta", "openai", base(&m[1], "openai")),
    ];
    let ids: Vec<String> = {
        let r = builder(&ps).ledger_path(&path).build().unwrap();
        m[0].script(["503", "ok", "429"]).unwrap();
        let mut ids = vec![];
        for _ in 0..3 {
            ids.push(
                r.chat(req(&["alpha", "beta"], "bill me")).await.unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        ids
    };
    let l = SqliteLedger::open(&path).unwrap();
    let t = l.totals().await.unwrap();
    assert_eq!(t.count, 3, "exactly one bill per served request");
    for id in &ids {
        let rec = l.get(id).await.unwrap().unwrap();
        assert_eq!(rec.attempts.last().unwrap().class.code(), "success");
    }
    let first = l.get(&ids[0]).await.unwrap().unwrap();
    assert_eq!(first.provider, "beta");
    assert_eq!(first.attempts.len(), 2);
    // A new router over the same file sees the spend.
    let r2 = builder(&ps).ledger_path(&path).build().unwrap();
    assert_eq!(r2.spent(None).await.unwrap(), t.all);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn spend_limit_refuses_before_any_provider_call() {
    let m = mocks(1).await;
    let mut limits = Limits::default();
    limits.user_usd.insert("user-1".into(), Decimal::new(1, 4)); // $0.0001
    let r = builder(&[P("alpha", "openai", base(&m[0], "openai"))])
        .options(Options {
            timeouts: relaxed_timeouts(),
            read_env: false,
            limits,
            ..Options::default()
        })
        .build()
        .unwrap();
    let ctx = RequestContext {
        user: Some("user-1".into()),
        ..Default::default()
    };
    // worst case: (prompt + 100 max tokens) × $1e-6 ≈ $0.0001 → first fits? use a large max_tokens to exceed
    let mut big = req(&["alpha"], "x");
    big["max_tokens"] = json!(1000);
    let e = r.chat_with(big, &ctx).await.unwrap_err();
    assert_eq!(e.code(), "payment_required");
    assert_eq!(e.http_status(), 402);
    assert_eq!(m[0].calls(), 0);
    let mut small = req(&["alpha"], "x");
    small["max_tokens"] = json!(10);
    r.chat_with(small, &ctx).await.unwrap();
    assert_eq!(m[0].calls(), 1);
    // other users are unaffected
    let mut big = req(&["alpha"], "x");
    big["max_tokens"] = json!(1000);
    r.chat_with(
        big,
        &RequestContext {
            user: Some("user-2".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn router_spend_limit() {
    let m = mocks(1).await;
    let limits = Limits {
        router_usd: Some(Decimal::ZERO),
        ..Limits::default()
    };
    let r = builder(&[P("alpha", "openai", base(&m[0], "openai"))])
        .options(Options {
            timeouts: relaxed_timeouts(),
            read_env: false,
            limits,
            ..Options::default()
        })
        .build()
        .unwrap();
    assert_eq!(
        r.chat(req(&["alpha"], "x")).await.unwrap_err().code(),
        "payment_required"
    );
    assert_eq!(m[0].calls(), 0);
}

#[tokio::test]
async fn free_models_obey_free_tier_limits() {
    let m = mocks(1).await;
    let limits = Limits {
        free_per_minute: 3,
        ..Limits::default()
    };
    let ledger = Arc::new(MemoryLedger::default());
    let r = builder(&[P("alpha", "openai", base(&m[0], "openai"))])
        .options(Options {
            timeouts: relaxed_timeouts(),
            read_env: false,
            limits,
            ..Options::default()
        })
        .ledger(ledger.clone())
        .build()
        .unwrap();
    let body = json!({"model": "test/free:free", "messages": [{"role": "user", "content": "x"}]});
    for _ in 0..3 {
        let v = r.chat(body.clone()).await.unwrap();
        assert_eq!(v["usage"]["cost"], 0.0);
    }
    let e = r.chat(body.clone()).await.unwrap_err();
    assert_eq!(e.code(), "rate_limited");
    assert!(e.retry_after().unwrap() >= 1.0);
    assert_eq!(m[0].calls(), 3);
    assert_eq!(ledger.len(), 3);
    // paid models are not limited
    r.chat(req(&["alpha"], "x")).await.unwrap();
}

#[tokio::test]
async fn user_rpm_counts_every_model_per_user_before_any_provider_call() {
    let m = mocks(1).await;
    let limits = Limits {
        user_rpm: Some(2),
        ..Limits::default()
    };
    let r = builder(&[P("alpha", "openai", base(&m[0], "openai"))])
        .options(Options {
            timeouts: relaxed_timeouts(),
            read_env: false,
            limits,
            ..Options::default()
        })
        .build()
        .unwrap();
    let as_user = |u: &str| RequestContext {
        user: Some(u.into()),
        ..Default::default()
    };
    for _ in 0..2 {
        r.chat_with(req(&["alpha"], "x"), &as_user("u1"))
            .await
            .unwrap();
    }
    let e = r
        .chat_with(req(&["alpha"], "x"), &as_user("u1"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "rate_limited");
    assert_eq!(e.http_status(), 429);
    assert!(e.retry_after().unwrap() >= 1.0);
    assert_eq!(m[0].calls(), 2);
    // Another user has their own window; requests without a user are not counted.
    r.chat_with(req(&["alpha"], "x"), &as_user("u2"))
        .await
        .unwrap();
    for _ in 0..3 {
        r.chat(req(&["alpha"], "x")).await.unwrap();
    }
    assert_eq!(m[0].calls(), 6);
}
