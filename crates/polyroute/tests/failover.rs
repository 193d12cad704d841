//! Non-streamed execution and failover against loopback mocks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use polyroute::{RequestContext, Router};
use serde_json::json;

#[tokio::test]
async fn success_tells_the_truth_and_bills_once() {
    let m = mocks(1).await;
    let r = builder(&[P("alpha", "openai", base(&m[0], "openai"))])
        .build()
        .unwrap();
    let ctx = RequestContext {
        http_referer: Some("https://app.example".into()),
        title: Some("Test App".into()),
        metadata: true,
        ..Default::default()
    };
    let v = r
        .chat_with(req(&["alpha"], "hello there"), &ctx)
        .await
        .unwrap();
    assert_eq!(v["model"], "test/model");
    assert_eq!(v["provider"], "ALPHA Cloud");
    assert!(v["id"].as_str().unwrap().starts_with("gen-"));
    assert_eq!(v["choices"][0]["message"]["content"], "m0: hello there");
    let usage = &v["usage"];
    let tokens =
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap();
    let cost = usage["cost"].as_f64().unwrap();
    assert!(
        (cost - tokens as f64 * 1e-6).abs() < 1e-12,
        "cost {cost} for {tokens} tokens"
    );
    assert_eq!(
        v["openrouter_metadata"]["attempts"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // upstream got the provider's model id and our key
    let got = &m[0].received()[0];
    assert_eq!(got.body["model"], "alpha-upstream-model");
    assert_eq!(
        got.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert!(got.body.get("provider").is_none());
    let rec = r.generation(v["id"].as_str().unwrap()).await.unwrap();
    assert_eq!(rec["provider"], "alpha");
    assert_eq!(rec["app_referer"], "https://app.example");
    assert_eq!(rec["app_title"], "Test App");
    assert_eq!(m[0].calls(), 1);
}

#[tokio::test]
async fn rate_limited_then_next_provider() {
    let m = mocks(2).await;
    let r = builder(&[
        P("alpha", "openai", base(&m[0], "openai")),
        P("beta", "openai", base(&m[1], "openai")),
    ])
    .build()
    .unwrap();
    m[0].script(["429=7"]).unwrap();
    let ctx = RequestContext {
        metadata: true,
        ..Default::default()
    };
    let v = r
        .chat_with(req(&["alpha", "beta"], "x"), &ctx)
        .await
        .unwrap();
    assert_eq!(v["provider"], "BETA Cloud");
    assert_eq!((m[0].calls(), m[1].calls()), (1, 1));
    let att = v["openrouter_metadata"]["attempts"].as_array().unwrap();
    assert_eq!(att.len(), 2);
    assert_eq!(att[0]["code"], "rate_limited");
    assert_eq!(att[0]["status"], 429);
    assert_eq!(att[0]["retry_after"], 7.0);
    assert_eq!(att[1]["code"], "success");
    // OpenRouter's metadata shape: the served attempt (1-indexed), the endpoints with the selected one.
    let meta = &v["openrouter_metadata"];
    assert_eq!(meta["requested"], "test/model");
    assert_eq!(
        meta["strategy"], "direct",
        "a provider failover within one model"
    );
    assert_eq!(meta["attempt"], 2);
    assert_eq!(meta["is_byok"], false);
    assert!(meta["region"].is_null() && meta["summary"].as_str().is_some_and(|s| !s.is_empty()));
    let eps = meta["endpoints"]["available"].as_array().unwrap();
    assert_eq!(meta["endpoints"]["total"], eps.len());
    let selected: Vec<&str> = eps
        .iter()
        .filter(|e| e["selected"] == true)
        .filter_map(|e| e["provider"].as_str())
        .collect();
    assert_eq!(selected, ["beta"]);
    // usage.cost_details in OpenRouter's shape: numbers that add up to the cost.
    let cd = &v["usage"]["cost_details"];
    let parts = cd["upstream_inference_prompt_cost"].as_f64().unwrap()
        + cd["upstream_inference_completions_cost"].as_f64().unwrap();
    assert!(
        (parts - v["usage"]["cost"].as_f64().unwrap()).abs() < 1e-12,
        "{cd}"
    );
    assert_eq!(cd["upstream_inference_cost"], v["usage"]["cost"]);
    // The record keeps the itemized decimal breakdown.
    let rec = r.generation(v["id"].as_str().unwrap()).await.unwrap();
    assert!(rec["cost_details"]["total"].is_string(), "{rec}");
}

#[tokio::test]
async fn server_errors_fail_over_and_aggregate() {
    let m = mocks(3).await;
    let ps = [
        P("alpha", "openai", base(&m[0], "openai")),
        P("beta", "openai", base(&m[1], "openai")),
        P("gamma", "openai", base(&m[2], "openai")),
    ];
    let r = builder(&ps).build().unwrap();
    m[0].script(["500"]).unwrap();
    m[1].script(["502"]).unwrap();
    m[2].script(["503"]).unwrap();
    let e = r
        .chat(req(&["alpha", "beta", "gamma"], "x"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "temporarily_unavailable");
    let statuses: Vec<u16> = e.attempts().iter().map(|a| a.status).collect();
    assert_eq!(statuses, vec![500, 502, 503]);
    let provs: Vec<&str> = e.attempts().iter().map(|a| a.provider.as_str()).collect();
    assert_eq!(provs, vec!["alpha", "beta", "gamma"]);
    // next request: 503 on alpha only, beta serves
    m[0].script(["503"]).unwrap();
    let v = r.chat(req(&["alpha", "beta", "gamma"], "x")).await.unwrap();
    assert_eq!(v["provider"], "BETA Cloud");
    assert_eq!((m[0].calls(), m[1].calls(), m[2].calls()), (2, 2, 1));
}

#[tokio::test]
async fn all_rate_limited_is_capacity_exhausted_with_smallest_retry_after() {
    let m = mocks(2).await;
    let r = builder(&[
        P("alpha", "openai", base(&m[0], "openai")),
        P("beta", "openai", base(&m[1], "openai")),
    ])
    .build()
    .unwrap();
    m[0].script(["429=9"]).unwrap();
    m[1].script(["429=4"]).unwrap();
    let e = r.chat(req(&["alpha", "beta"], "x")).await.unwrap_err();
    assert_eq!(e.code(), "capacity_exhausted");
    assert_eq!(e.retry_after(), Some(4.0));
    assert_eq!(e.http_status(), 429);
}

#[tokio::test]
async fn connect_refused_fails_over() {
    let m = mocks(1).await;
    let dead = format!("http://127.0.0.1:{}/v1", closed_port());
    let r = builder(&[
        P("alpha", "openai", dead),
        P("beta", "openai", base(&m[0], "openai")),
    ])
    .build()
    .unwrap();
    let ctx = RequestContext {
        metadata: true,
        ..Default::default()
    };
    let v = r
        .chat_with(req(&["alpha", "beta"], "x"), &ctx)
        .await
        .unwrap();
    assert_eq!(v["provider"], "BETA Cloud");
    let att = v["openrouter_metadata"]["attempts"].as_array().unwrap();
    assert_eq!(att[0]["status"], 0);
    // A dead port is named unreachable, not overloaded.
    assert_eq!(att[0]["code"], "unreachable");
}

#[tokio::test]
async fn only_unreachable_providers_say_unreachable_not_overloaded() {
    let dead = |_| format!("http://127.0.0.1:{}/v1", closed_port());
    let r = builder(&[P("alpha", "openai", dead(0)), P("beta", "openai", dead(1))])
        .build()
        .unwrap();
    let e = r.chat(req(&["alpha", "beta"], "x")).await.unwrap_err();
    assert_eq!(e.code(), "temporarily_unavailable");
    let msg = e.to_string();
    assert!(msg.contains("(unreachable)"), "{msg}");
    assert!(!msg.contains("overloaded"), "{msg}");
}

#[tokio::test]
async fn stall_before_first_byte_times_out_then_fails_over() {
    let m = mocks(2).await;
    let r = with_fast(
        builder(&[
            P("alpha", "openai", base(&m[0], "openai")),
            P("beta", "openai", base(&m[1], "openai")),
        ]),
        "alpha",
    )
    .build()
    .unwrap();
    m[0].script(["stall"]).unwrap();
    let t = std::time::Instant::now();
    let ctx = RequestContext {
        metadata: true,
        ..Default::default()
    };
    let v = r
        .chat_with(req(&["alpha", "beta"], "x"), &ctx)
        .await
        .unwrap();
    // alpha's first-token timeout (1 s) fired, far below the relaxed router-wide one (60 s) and the stall.
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
    assert_eq!(v["provider"], "BETA Cloud");
    assert_eq!(v["openrouter_metadata"]["attempts"][0]["code"], "timeout");
}

#[tokio::test]
async fn invalid_json_wrong_content_type_and_cut_body_fail_over() {
    let m = mocks(2).await;
    let r = builder(&[
        P("alpha", "openai", base(&m[0], "openai")),
        P("beta", "openai", base(&m[1], "openai")),
    ])
    .build()
    .unwrap();
    for fault in ["garbage", "wrong-content-type", "cut", "close"] {
        m[0].script([fault]).unwrap();
        let v = r.chat(req(&["alpha", "beta"], "x")).await.unwrap();
        assert_eq!(v["provider"], "BETA Cloud", "fault {fault}");
    }
    assert_eq!((m[0].calls(), m[1].calls()), (4, 4));
}

#[tokio::test]
async fn invalid_request_is_the_providers_error() {
    let m = mocks(1).await;
    let r = builder(&[P("alpha", "openai", base(&m[0], "openai"))])
        .build()
        .unwrap();
    m[0].script(["400"]).unwrap();
    let e = r.chat(req(&["alpha"], "x")).await.unwrap_err();
    assert_eq!(e.code(), "provider_error");
    assert_eq!(e.http_status(), 400);
    assert_eq!(e.attempts().len(), 1);
}

#[tokio::test]
async fn same_endpoint_retry_when_enabled() {
    let m = mocks(2).await;
    let mut b = builder(&[
        P("alpha", "openai", base(&m[0], "openai")),
        P("beta", "openai", base(&m[1], "openai")),
    ]);
    let opts = polyroute::Options {
        timeouts: relaxed_timeouts(),
        read_env: false,
        same_endpoint_retries: 1,
        retry_backoff: Duration::from_millis(5),
        ..Default::default()
    };
    b = b.options(opts);
    let r = b.build().unwrap();
    m[0].script(["503"]).unwrap();
    let v = r.chat(req(&["alpha", "beta"], "x")).await.unwrap();
    assert_eq!(v["provider"], "ALPHA Cloud");
    assert_eq!((m[0].calls(), m[1].calls()), (2, 0));
}

#[tokio::test]
async fn anthropic_and_gemini_dialects() {
    let m = mocks(2).await;
    let r = builder(&[
        P("anth", "anthropic", base(&m[0], "anthropic")),
        P("gem", "gemini", base(&m[1], "gemini")),
    ])
    .build()
    .unwrap();
    let v = r.chat(req(&["anth"], "hola")).await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "m0: hola");
    assert_eq!(m[0].received()[0].header("x-api-key"), Some(KEY));
    assert_eq!(m[0].received()[0].path, "/v1/messages");
    let v = r.chat(req(&["gem"], "ciao")).await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "m1: ciao");
    assert_eq!(m[1].received()[0].header("x-goog-api-key"), Some(KEY));
    assert!(v["usage"]["cost"].as_f64().unwrap() > 0.0);
}

#[tokio::test]
async fn providers_without_credentials_are_excluded() {
    let m = mocks(2).await;
    let cat = catalog(&[
        P("alpha", "openai", base(&m[0], "openai")),
        P("beta", "openai", base(&m[1], "openai")),
    ]);
    let r = Router::builder()
        .catalog_json(cat)
        .options(polyroute::Options {
            read_env: false,
            ..Default::default()
        })
        .provider("beta", polyroute::ProviderSettings::with_key(KEY))
        .build()
        .unwrap();
    let plan = r
        .plan(&json!({"model": "test/model", "messages": [{"role": "user", "content": "x"}]}))
        .unwrap();
    let ex = plan["excluded"].as_array().unwrap();
    assert!(
        ex.iter()
            .any(|e| e["endpoint"] == "alpha" && e["reason"] == "no_credentials"),
        "{plan}"
    );
    let v = r
        .chat(json!({"model": "test/model", "messages": [{"role": "user", "content": "x"}]}))
        .await
        .unwrap();
    assert_eq!(v["provider"], "BETA Cloud");
    assert_eq!(m[0].calls(), 0);
}

#[tokio::test]
async fn keys_never_show() {
    let m = mocks(1).await;
    let r = builder(&[P("alpha", "openai", base(&m[0], "openai"))])
        .build()
        .unwrap();
    let s = polyroute::ProviderSettings::with_key(KEY);
    assert!(!format!("{s:?}").contains(KEY));
    assert!(!format!("{r:?}").contains(KEY));
    assert!(!format!("{}", polyroute::ApiKey::new(KEY)).contains(KEY));
    m[0].script(["401"]).unwrap();
    let e = r.chat(req(&["alpha"], "x")).await.unwrap_err();
    assert!(!format!("{e:?} {e} {}", e.to_envelope()).contains(KEY));
    let plan = r.plan(&req(&["alpha"], "x")).unwrap();
    assert!(!plan.to_string().contains(KEY));
}

#[tokio::test]
async fn sticky_routing_keeps_a_session_on_one_endpoint() {
    let m = mocks(3).await;
    let ps = [
        P("alpha", "openai", base(&m[0], "openai")),
        P("beta", "openai", base(&m[1], "openai")),
        P("gamma", "openai", base(&m[2], "openai")),
    ];
    let r = builder(&ps).build().unwrap();
    let body = json!({"model": "test/model", "session_id": "conv-1", "messages": [{"role": "user", "content": "x"}]});
    let first = r.chat(body.clone()).await.unwrap()["provider"].clone();
    for _ in 0..10 {
        assert_eq!(r.chat(body.clone()).await.unwrap()["provider"], first);
    }
}

/// The body's wait is its own: once the headers arrived, the body has until the idle (or first-token) timeout
/// from then, not what was left of the first-token wait. A body slower than that times out and fails over.
#[tokio::test]
async fn a_slow_body_gets_its_own_wait_and_a_stalled_one_times_out() {
    let m = mocks(2).await;
    let alpha = |idle_ms: u64| {
        builder(&[
            P("alpha", "openai", base(&m[0], "openai")),
            P("beta", "openai", base(&m[1], "openai")),
        ])
        .provider(
            "alpha",
            polyroute::ProviderSettings::with_key(KEY).timeouts(polyroute::Timeouts {
                idle: Duration::from_millis(idle_ms),
                ..fast_timeouts()
            }),
        )
        .build()
        .unwrap()
    };
    let ctx = RequestContext {
        metadata: true,
        ..Default::default()
    };
    // Headers at once, the body 1.5 s later: past the 1 s first-token timeout from the start, within the 3 s idle.
    m[0].script(["slow-body=1500"]).unwrap();
    let v = alpha(3000)
        .chat_with(req(&["alpha", "beta"], "x"), &ctx)
        .await
        .unwrap();
    assert_eq!(v["provider"], "ALPHA Cloud", "{v}");
    // The same body against a 1 s idle timeout: the attempt times out and beta serves.
    m[0].script(["slow-body=2500"]).unwrap();
    let v = alpha(1000)
        .chat_with(req(&["alpha", "beta"], "x"), &ctx)
        .await
        .unwrap();
    assert_eq!(v["provider"], "BETA Cloud", "{v}");
    assert_eq!(v["openrouter_metadata"]["attempts"][0]["code"], "timeout");
}
