//! The request lifecycle under cancellation: a dropped stream (after its first chunk, after its finish chunk) and
//! a caller's timeout are each recorded once, billed for what the provider produced, and leave nothing held, so
//! the next request is admitted or refused exactly as the limit says.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use futures::StreamExt;
use polyroute::{ChatRequest, Limits, Options, RequestContext, Router, Scope};
use rust_decimal::Decimal;
use serde_json::{json, Value};

const USER: &str = "user-lifecycle";

fn router(m: &polyroute_mock::MockServer, limit: Decimal) -> Router {
    let mut limits = Limits::default();
    limits.user_usd.insert(USER.into(), limit);
    builder(&[P("alpha", "openai", base(m, "openai"))])
        .options(Options {
            timeouts: relaxed_timeouts(),
            read_env: false,
            limits,
            ..Options::default()
        })
        .build()
        .unwrap()
}

fn ctx(id: &str) -> RequestContext {
    RequestContext {
        user: Some(USER.into()),
        generation_id: Some(id.into()),
        ..RequestContext::default()
    }
}

fn body(stream: bool) -> Value {
    let mut b = req(
        &["alpha"],
        "a b c d e f g h i j k l m n o p q r s t u v w x y z",
    );
    b["max_tokens"] = json!(1000);
    b["stream"] = json!(stream);
    b
}

/// The worst case admission holds for `b` (the fixture's price: $1 per million tokens).
fn worst(b: &Value) -> Decimal {
    let r = ChatRequest::from_value(b).unwrap();
    Decimal::from(r.estimate_prompt_tokens() + r.output_limit().unwrap()) / Decimal::from(1_000_000)
}

/// The record of `id` once billing (which runs after the caller left) has written it.
async fn record(r: &Router, id: &str) -> Value {
    for _ in 0..500 {
        if let Some(v) = r.generation(id).await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no record of {id}");
}

async fn held(r: &Router) -> Decimal {
    r.stores()
        .budget
        .held(&Scope::User(USER.into()))
        .await
        .unwrap()
}

fn cost(rec: &Value) -> Decimal {
    rec["cost"].as_str().unwrap().parse().unwrap()
}

async fn count_records(r: &Router) -> u64 {
    r.stores()
        .ledger
        .summary(Some(USER), 0)
        .await
        .unwrap()
        .requests
}

#[tokio::test]
async fn a_stream_dropped_after_its_first_chunk_is_billed_and_counts_against_the_limit() {
    let m = mocks(1).await;
    m[0].script(["chunk-delay=30"]).unwrap();
    // A limit of exactly one worst case: the abandoned stream's cost plus another worst case no longer fits.
    let r = router(&m[0], worst(&body(true)));
    let mut s = r.chat_stream_with(body(true), ctx("gen-drop-first"));
    while let Some(c) = s.next().await {
        if c.unwrap()["choices"][0]["delta"]["content"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
        {
            break;
        }
    }
    drop(s);
    let rec = record(&r, "gen-drop-first").await;
    assert_eq!(rec["cancelled"], json!(true), "{rec}");
    assert!(
        rec["usage"]["completion_tokens"].as_u64().unwrap() >= 1,
        "{rec}"
    );
    let c = cost(&rec);
    assert!(c > Decimal::ZERO, "content was delivered: billed ({rec})");
    assert_eq!(held(&r).await, Decimal::ZERO);
    assert_eq!(r.spent(Some(USER)).await.unwrap(), c, "billed once");
    assert_eq!(count_records(&r).await, 1);
    let e = r
        .chat_with(body(false), &ctx("gen-next"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "payment_required", "{e}");
    assert_eq!(m[0].calls(), 1, "a refused request calls no provider");
}

#[tokio::test]
async fn a_stream_dropped_after_its_finish_chunk_is_billed_once() {
    let m = mocks(1).await;
    let w = worst(&body(true));
    let r = router(&m[0], w * Decimal::from(3));
    let mut s = r.chat_stream_with(body(true), ctx("gen-drop-finish"));
    while let Some(c) = s.next().await {
        if !c.unwrap()["choices"][0]["finish_reason"].is_null() {
            break;
        }
    }
    drop(s);
    let rec = record(&r, "gen-drop-finish").await;
    let c = cost(&rec);
    assert!(c > Decimal::ZERO, "{rec}");
    // The usage chunk may or may not have been read before the drop; either way it is one record, billed once.
    for _ in 0..100 {
        if held(&r).await.is_zero() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(held(&r).await, Decimal::ZERO);
    assert_eq!(r.spent(Some(USER)).await.unwrap(), c);
    assert_eq!(count_records(&r).await, 1);
    // c + w ≤ 3w: admitted.
    let v = r.chat_with(body(false), &ctx("gen-after")).await.unwrap();
    let total = c + Decimal::try_from(v["usage"]["cost"].as_f64().unwrap()).unwrap();
    let spent = r.spent(Some(USER)).await.unwrap();
    assert!(
        (spent - total).abs() < Decimal::new(1, 12),
        "{spent} vs {total}"
    );
}

#[tokio::test]
async fn chat_with_in_a_caller_timeout_is_recorded_and_billed_once() {
    let m = mocks(1).await;
    m[0].script(["slow-first-byte=400"]).unwrap();
    let w = worst(&body(false));
    let r = router(&m[0], w + w / Decimal::from(2));
    let gave_up = tokio::time::timeout(
        Duration::from_millis(50),
        r.chat_with(body(false), &ctx("gen-timeout")),
    )
    .await;
    assert!(gave_up.is_err(), "the caller stopped waiting");
    // The provider answers anyway; the generation is recorded as cancelled and billed.
    let rec = record(&r, "gen-timeout").await;
    assert_eq!(rec["cancelled"], json!(true), "{rec}");
    let c = cost(&rec);
    assert!(c > Decimal::ZERO);
    assert_eq!(held(&r).await, Decimal::ZERO);
    assert_eq!(r.spent(Some(USER)).await.unwrap(), c);
    assert_eq!(m[0].calls(), 1);
    // c + w ≤ 1.5 w exactly when c ≤ w / 2; the limit decides, nothing else.
    let next = r.chat_with(body(false), &ctx("gen-timeout-next")).await;
    assert_eq!(next.is_ok(), c + w <= w + w / Decimal::from(2), "{next:?}");
}

#[tokio::test]
async fn a_failed_request_releases_its_hold() {
    let m = mocks(1).await;
    m[0].set_fault(Some("503")).unwrap();
    let w = worst(&body(false));
    let r = router(&m[0], w);
    for i in 0..3 {
        let e = r
            .chat_with(body(false), &ctx(&format!("gen-fail-{i}")))
            .await
            .unwrap_err();
        assert_ne!(e.code(), "payment_required", "{e}");
        assert_eq!(held(&r).await, Decimal::ZERO);
    }
    assert_eq!(r.spent(Some(USER)).await.unwrap(), Decimal::ZERO);
    assert_eq!(count_records(&r).await, 0);
    m[0].set_fault(None).unwrap();
    r.chat_with(body(false), &ctx("gen-fail-ok")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_sqlite_stores_a_dropped_stream_is_billed_and_a_failed_request_released() {
    // SQLite releases a dropped reservation on a spawned task (no synchronous release): the hold is gone soon.
    let dir = std::env::temp_dir().join(format!("polyroute-lifecycle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("state.sqlite");
    let _ = std::fs::remove_file(&path);
    let m = mocks(1).await;
    let mut limits = Limits::default();
    limits
        .user_usd
        .insert(USER.into(), worst(&body(true)) * Decimal::from(4));
    let r = builder(&[P("alpha", "openai", base(&m[0], "openai"))])
        .options(Options {
            timeouts: relaxed_timeouts(),
            read_env: false,
            limits,
            ..Options::default()
        })
        .ledger_path(&path)
        .build()
        .unwrap();
    m[0].script(["chunk-delay=30"]).unwrap();
    let mut s = r.chat_stream_with(body(true), ctx("gen-sqlite-drop"));
    while let Some(c) = s.next().await {
        if c.unwrap()["choices"][0]["delta"]["content"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
        {
            break;
        }
    }
    drop(s);
    let rec = record(&r, "gen-sqlite-drop").await;
    assert_eq!(rec["cancelled"], json!(true));
    let c = cost(&rec);
    assert!(c > Decimal::ZERO);
    m[0].set_fault(Some("503")).unwrap();
    r.chat_with(body(false), &ctx("gen-sqlite-fail"))
        .await
        .unwrap_err();
    let mut released = false;
    for _ in 0..200 {
        if held(&r).await.is_zero() {
            released = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(released, "the failed request's hold is released");
    assert_eq!(r.spent(Some(USER)).await.unwrap(), c);
    // Another router over the same file sees the same spend (nothing cached in process).
    let again = builder(&[P("alpha", "openai", base(&m[0], "openai"))])
        .ledger_path(&path)
        .build()
        .unwrap();
    assert_eq!(again.spent(Some(USER)).await.unwrap(), c);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn streams_cut_or_stalled_after_content_are_billed_not_waived() {
    let m = mocks(1).await;
    let r = with_fast(
        builder(&[P("alpha", "openai", base(&m[0], "openai"))]),
        "alpha",
    )
    .build()
    .unwrap();
    for (i, fault) in ["cut", "stall-after=3"].into_iter().enumerate() {
        m[0].script([fault]).unwrap();
        let id = format!("gen-after-content-{i}");
        let mut s = r.chat_stream_with(body(true), ctx(&id));
        let mut content = String::new();
        let mut error = None;
        while let Some(c) = s.next().await {
            let c = c.unwrap();
            if let Some(t) = c["choices"][0]["delta"]["content"].as_str() {
                content.push_str(t);
            }
            if c.get("error").is_some() {
                error = Some(c);
            }
        }
        assert!(!content.is_empty(), "{fault}: content reached the caller");
        assert!(error.is_some(), "{fault}: ends with an in-band error");
        let rec = record(&r, &id).await;
        assert_eq!(rec["finish_reason"], "error", "{fault}: {rec}");
        assert!(
            cost(&rec) > Decimal::ZERO,
            "{fault}: content was delivered, so it is billed: {rec}"
        );
        assert_eq!(rec["cancelled"], json!(false));
    }
}
