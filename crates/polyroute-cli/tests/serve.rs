//! The gateway over real HTTP on 127.0.0.1 with in-process loopback mocks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod serve_support;

use std::time::Duration;

use serde_json::{json, Value};
use serve_support::{chat, sse_events, Env};

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn post(
    url: &str,
    key: Option<&str>,
    body: &Value,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut rb = client()
        .post(format!("{url}/api/v1/chat/completions"))
        .json(body);
    if let Some(k) = key {
        rb = rb.bearer_auth(k);
    }
    let r = rb.send().await.unwrap();
    let s = r.status().as_u16();
    let h = r.headers().clone();
    let text = r.text().await.unwrap();
    (
        s,
        h,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn get(url: &str, key: &str, path: &str) -> (u16, Value) {
    let r = client()
        .get(format!("{url}{path}"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn assert_envelope(v: &Value, code: u16) {
    assert_eq!(v["error"]["code"], json!(code), "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{v}"
    );
}

#[tokio::test]
async fn non_streaming_answer_header_generation_and_attribution() {
    let env = Env::new().await;
    let key = env.key(None);
    let srv = env.start().await;
    let r = client()
        .post(format!("{}/api/v1/chat/completions", srv.url()))
        .bearer_auth(&key)
        .header("HTTP-Referer", "https://example.test/app")
        .header("X-Title", "Example App")
        .json(&chat("acme/chat", "hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let gen = r.headers()["x-generation-id"].to_str().unwrap().to_string();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["id"], json!(gen));
    assert_eq!(v["object"], "chat.completion");
    assert!(v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .contains("hello"));
    assert!(v["usage"]["cost"].as_f64().unwrap() > 0.0);
    let (s, g) = get(&srv.url(), &key, &format!("/api/v1/generation?id={gen}")).await;
    assert_eq!(s, 200, "{g}");
    let d = &g["data"];
    assert_eq!(d["id"], json!(gen));
    assert_eq!(d["http_referer"], "https://example.test/app");
    assert_eq!(d["app_title"], "Example App");
    assert!(d["total_cost"].as_f64().unwrap() > 0.0);
    assert!(d["tokens_prompt"].as_u64().unwrap() > 0);
    assert_eq!(d["provider_responses"].as_array().unwrap().len(), 1);
    // another key cannot see it
    let other = env.key(None);
    srv.gateway.keys.invalidate();
    let (s, _) = get(&srv.url(), &other, &format!("/api/v1/generation?id={gen}")).await;
    assert_eq!(s, 404);
    srv.shutdown().await;
}

#[tokio::test]
async fn streaming_chunks_final_usage_and_done() {
    let env = Env::new().await;
    let key = env.key(None);
    let srv = env.start().await;
    let mut body = chat("acme/chat", "stream me");
    body["stream"] = json!(true);
    let r = client()
        .post(format!("{}/api/v1/chat/completions", srv.url()))
        .bearer_auth(&key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let gen = r.headers()["x-generation-id"].to_str().unwrap().to_string();
    let text = r.text().await.unwrap();
    let ev = sse_events(&text);
    assert_eq!(ev.last().unwrap(), &json!("[DONE]"));
    let usage: Vec<&Value> = ev
        .iter()
        .filter(|e| e.get("usage").is_some_and(|u| !u.is_null()))
        .collect();
    assert_eq!(usage.len(), 1, "exactly one usage chunk: {text}");
    assert_eq!(usage[0]["choices"], json!([]));
    assert!(usage[0]["usage"]["cost"].as_f64().is_some());
    let content: String = ev
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert!(content.contains("stream me"), "{text}");
    assert!(ev
        .iter()
        .filter(|e| e.is_object())
        .all(|e| e["id"] == json!(gen)));
    let (s, g) = get(&srv.url(), &key, &format!("/api/v1/generation?id={gen}")).await;
    assert_eq!((s, &g["data"]["streamed"]), (200, &json!(true)));
    srv.shutdown().await;
}

#[tokio::test]
async fn keepalive_comments_while_waiting_and_mid_stream_error_in_band() {
    let mut env = Env::new().await;
    env.cfg.server.keepalive_ms = Some(40);
    let key = env.key(None);
    let srv = env.start().await;
    env.alpha.script(["slow-first-byte=250"]).unwrap();
    let mut body = chat("acme/chat", "slow");
    body["stream"] = json!(true);
    body["provider"] = json!({"order": ["alpha"], "allow_fallbacks": false});
    let r = client()
        .post(format!("{}/api/v1/chat/completions", srv.url()))
        .bearer_auth(&key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.starts_with(": OPENROUTER PROCESSING\n\n"), "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"));
    // Cut after the first event: content already sent, so the error is in-band with status 200.
    env.alpha.script(["cut"]).unwrap();
    let r = client()
        .post(format!("{}/api/v1/chat/completions", srv.url()))
        .bearer_auth(&key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ev = sse_events(&r.text().await.unwrap());
    let err = ev
        .iter()
        .find(|e| e.get("error").is_some())
        .expect("an in-band error chunk");
    assert_eq!(err["choices"][0]["finish_reason"], "error");
    assert!(err["error"]["code"].as_u64().is_some());
    assert_eq!(ev.last().unwrap(), &json!("[DONE]"));
    srv.shutdown().await;
}

#[tokio::test]
async fn fallback_to_the_next_provider_is_recorded() {
    let env = Env::new().await;
    let key = env.key(None);
    let srv = env.start().await;
    env.alpha.set_fault(Some("503")).unwrap();
    let mut body = chat("acme/chat", "fallback");
    body["provider"] = json!({"order": ["alpha", "beta"]});
    let (s, h, v) = post(&srv.url(), Some(&key), &body).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["provider"], "BETA Cloud");
    let gen = h["x-generation-id"].to_str().unwrap();
    let (_, g) = get(&srv.url(), &key, &format!("/api/v1/generation?id={gen}")).await;
    assert_eq!(
        g["data"]["provider_responses"].as_array().unwrap().len(),
        2,
        "{g}"
    );
    // every provider down: 503 with the availability block and previous errors
    env.beta.set_fault(Some("503")).unwrap();
    let (s, _, v) = post(&srv.url(), Some(&key), &body).await;
    assert_eq!(s, 503, "{v}");
    assert_envelope(&v, 503);
    assert_eq!(
        v["error"]["metadata"]["previous_errors"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // the same before a stream starts: a plain JSON error with the status
    body["stream"] = json!(true);
    let (s, _, v) = post(&srv.url(), Some(&key), &body).await;
    assert_eq!(s, 503, "{v}");
    assert_envelope(&v, 503);
    srv.shutdown().await;
}

#[tokio::test]
async fn auth_bad_bodies_and_limits() {
    let mut env = Env::new().await;
    env.cfg.server.body_limit = Some(2048);
    let key = env.key(None);
    let revoked = env.key(None);
    polyroute_cli::serve::keys::revoke(
        env.data(),
        &polyroute_cli::serve::keys::list(env.data()).unwrap()[1].id,
    )
    .unwrap();
    let srv = env.start().await;
    let url = srv.url();
    let ok = chat("acme/chat", "x");
    let (s, _, v) = post(&url, None, &ok).await;
    assert_eq!(s, 401);
    assert_envelope(&v, 401);
    let (s, _, v) = post(&url, Some("sk-test-fake"), &ok).await;
    assert_eq!(s, 401);
    assert_envelope(&v, 401);
    let (s, _, v) = post(&url, Some(&revoked), &ok).await;
    assert_eq!(s, 401);
    assert!(v["error"]["message"].as_str().unwrap().contains("revoked"));
    // bad JSON
    let r = client()
        .post(format!("{url}/api/v1/chat/completions"))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body("{\"model\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_envelope(&r.json().await.unwrap(), 400);
    // not an object, wrong types, unknown model
    for (body, code) in [
        (json!([1, 2]), 400),
        (json!({"model": "acme/chat", "messages": "hi"}), 400),
        (
            json!({"model": 7, "messages": [{"role": "user", "content": "x"}]}),
            400,
        ),
        (
            json!({"model": "acme/chat", "messages": [{"role": "user", "content": "x"}], "max_tokens": "ten"}),
            400,
        ),
        (chat("nope/missing", "x"), 400),
    ] {
        let (s, _, v) = post(&url, Some(&key), &body).await;
        assert_eq!(s, code, "{body} → {v}");
        assert_envelope(&v, code);
    }
    // oversized
    let big = chat("acme/chat", &"y".repeat(4096));
    let (s, _, v) = post(&url, Some(&key), &big).await;
    assert_eq!(s, 413, "{v}");
    assert_envelope(&v, 413);
    // unknown route
    let (s, v) = get(&url, &key, "/api/v1/nothing").await;
    assert_eq!(s, 404);
    assert_envelope(&v, 404);
    srv.shutdown().await;
}

#[tokio::test]
async fn credit_limit_gives_402() {
    let env = Env::new().await;
    let zero = env.key(Some(0.0));
    let small = env.key(Some(0.0002));
    let srv = env.start().await;
    let (s, _, v) = post(&srv.url(), Some(&zero), &chat("acme/chat", "x")).await;
    assert_eq!(s, 402, "{v}");
    assert_envelope(&v, 402);
    // Admitted while spend + the request's worst case fits the limit, then refused before any provider call;
    // the limit is never exceeded (each request holds its worst case until billed).
    let mut served = 0u64;
    let mut refused = None;
    for _ in 0..50 {
        let (s, _, v) = post(&srv.url(), Some(&small), &chat("acme/chat", "x")).await;
        if s != 200 {
            refused = Some((s, v));
            break;
        }
        served += 1;
    }
    let (s, v) = refused.expect("refused within 50 requests");
    assert!(served >= 1, "the first requests fit");
    assert_eq!(s, 402, "{v}");
    assert_envelope(&v, 402);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("credit limit"),
        "{v}"
    );
    let calls = env.alpha.calls() + env.beta.calls();
    assert_eq!(calls, served, "a refused request calls no provider");
    let (s, k) = get(&srv.url(), &small, "/api/v1/key").await;
    assert_eq!(s, 200);
    let usage = k["data"]["usage"].as_f64().unwrap();
    assert!(usage > 0.0 && usage <= 0.0002, "{k}");
    let remaining = k["data"]["limit_remaining"].as_f64().unwrap();
    assert!((remaining - (0.0002 - usage)).abs() < 1e-12, "{k}");
    // OpenRouter's /credits reports the same money: the key's limit as its credits, its spend as usage.
    let (s, c) = get(&srv.url(), &small, "/api/v1/credits").await;
    assert_eq!(s, 200);
    assert_eq!(c["data"]["total_credits"].as_f64(), Some(0.0002), "{c}");
    assert_eq!(c["data"]["total_usage"].as_f64(), Some(usage), "{c}");
    let (s, _) = get(&srv.url(), "sk-not-a-key", "/api/v1/credits").await;
    assert_eq!(s, 401);
    srv.shutdown().await;
}

#[tokio::test]
async fn free_tier_429_with_rate_limit_headers() {
    let env = Env::new().await;
    let key = env.key(None);
    let srv = env.start().await;
    for _ in 0..2 {
        let (s, h, _) = post(&srv.url(), Some(&key), &chat("acme/chat:free", "x")).await;
        assert_eq!(s, 200);
        assert!(h.get("x-ratelimit-limit").is_none());
    }
    let (s, h, v) = post(&srv.url(), Some(&key), &chat("acme/chat:free", "x")).await;
    assert_eq!(s, 429, "{v}");
    assert_envelope(&v, 429);
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("free-models-per-minute"));
    assert_eq!(h["x-ratelimit-limit"], "2");
    assert_eq!(h["x-ratelimit-remaining"], "0");
    assert!(
        h["x-ratelimit-reset"]
            .to_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
            > 0
    );
    assert!(h["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    // paid models are not limited; other keys have their own budget
    let (s, _, _) = post(&srv.url(), Some(&key), &chat("acme/chat", "x")).await;
    assert_eq!(s, 200);
    let (_, k) = get(&srv.url(), &key, "/api/v1/key").await;
    assert_eq!(k["data"]["free_model_daily_requests"]["used"], json!(2));
    srv.shutdown().await;
}

#[tokio::test]
async fn catalog_endpoints_models_providers() {
    let env = Env::new().await;
    let key = env.key(None);
    let srv = env.start().await;
    let url = srv.url();
    let (s, v) = get(&url, &key, "/api/v1/models").await;
    assert_eq!(s, 200);
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"acme/chat") && !ids.contains(&"acme/image"),
        "{ids:?}"
    );
    assert_eq!(v["total_count"], json!(ids.len()));
    assert!(v["data"][0]["links"]["details"]
        .as_str()
        .unwrap()
        .ends_with("/endpoints"));
    assert!(v["data"][0].get("endpoints").is_none());
    let (_, v) = get(&url, &key, "/api/v1/models?output_modalities=image").await;
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    let (_, v) = get(
        &url,
        &key,
        "/api/v1/models?output_modalities=all&supported_parameters=tools,tool_choice",
    )
    .await;
    assert_eq!(v["total_count"], json!(3));
    let (_, v) = get(&url, &key, "/api/v1/models?sort=pricing-high-to-low").await;
    assert_eq!(v["data"][0]["id"], "acme/big");
    let (_, v) = get(
        &url,
        &key,
        "/api/v1/models?sort=context-high-to-low&limit=1",
    )
    .await;
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    assert!(v["links"]["next"].as_str().is_some());
    let (s, v) = get(&url, &key, "/api/v1/models?sort=bogus").await;
    assert_eq!(s, 400);
    assert_envelope(&v, 400);
    // health feeds the endpoints API
    for _ in 0..3 {
        let mut b = chat("acme/chat", "x");
        b["provider"] = json!({"order": ["alpha"]});
        post(&url, Some(&key), &b).await;
    }
    // the health snapshot is rebuilt at most every 250 ms
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (s, v) = get(&url, &key, "/api/v1/models/acme/chat/endpoints").await;
    assert_eq!(s, 200);
    let eps = v["data"]["endpoints"].as_array().unwrap();
    assert_eq!(eps.len(), 2);
    let a = eps.iter().find(|e| e["tag"] == "alpha").unwrap();
    assert_eq!(a["uptime_last_5m"], json!(100.0));
    assert!(a["latency_last_30m"]["p50"].as_f64().is_some(), "{a}");
    assert_eq!(a["pricing"]["prompt"], "0.000001");
    let (s, _) = get(&url, &key, "/api/v1/models/acme/none/endpoints").await;
    assert_eq!(s, 404);
    let (s, v) = get(&url, &key, "/api/v1/models/acme/chat:free/endpoints").await;
    assert_eq!(
        (s, v["data"]["endpoints"].as_array().map(Vec::len)),
        (200, Some(1))
    );
    let (_, v) = get(&url, &key, "/api/v1/providers").await;
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    let r = client().get(format!("{url}/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    srv.shutdown().await;
}

#[tokio::test]
async fn activity_groups_by_app_model_provider_and_day() {
    let env = Env::new().await;
    let key = env.key(None);
    let srv = env.start().await;
    let url = srv.url();
    for (title, model) in [
        ("App A", "acme/chat"),
        ("App A", "acme/chat"),
        ("App B", "acme/big"),
    ] {
        let r = client()
            .post(format!("{url}/api/v1/chat/completions"))
            .bearer_auth(&key)
            .header("X-OpenRouter-Title", title)
            .json(&chat(model, "x"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let (s, v) = get(&url, &key, "/api/v1/activity").await;
    assert_eq!(s, 200);
    let rows = v["data"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{v}");
    let a = rows.iter().find(|r| r["app"]["title"] == "App A").unwrap();
    assert_eq!(a["requests"], json!(2));
    assert_eq!(a["model"], "acme/chat");
    assert!(a["usage"].as_f64().unwrap() > 0.0);
    let (s, _) = get(&url, &key, "/api/v1/activity?date=yesterday").await;
    assert_eq!(s, 400);
    let (_, v) = get(&url, &key, "/api/v1/activity?date=1999-01-01").await;
    assert_eq!(v["data"], json!([]));
    // Paged: newest first (within a day, "App B" before "App A"), one row per page, `links.next` to the rest.
    assert_eq!(rows[0]["app"]["title"], "App B", "{v}");
    assert_eq!(v["links"]["next"], Value::Null);
    let (s, p1) = get(&url, &key, "/api/v1/activity?limit=1").await;
    assert_eq!(s, 200);
    assert_eq!(p1["data"], json!([rows[0]]));
    let next = p1["links"]["next"].as_str().unwrap().to_string();
    assert_eq!(next, "/api/v1/activity?offset=1&limit=1");
    let (_, p2) = get(&url, &key, &next).await;
    assert_eq!(p2["data"], json!([rows[1]]));
    assert_eq!(p2["links"]["next"], Value::Null);
    let today = rows[0]["date"].as_str().unwrap().to_string();
    let (_, d) = get(
        &url,
        &key,
        &format!("/api/v1/activity?date={today}&limit=1"),
    )
    .await;
    assert_eq!(d["data"], json!([rows[0]]));
    assert_eq!(
        d["links"]["next"],
        json!(format!("/api/v1/activity?offset=1&limit=1&date={today}"))
    );
    for bad in ["limit=0", "limit=1001", "offset=-1", "limit=x"] {
        let (s, _) = get(&url, &key, &format!("/api/v1/activity?{bad}")).await;
        assert_eq!(s, 400, "{bad}");
    }
    srv.shutdown().await;
}

#[tokio::test]
async fn graceful_shutdown_finishes_an_in_flight_stream() {
    let env = Env::new().await;
    let key = env.key(None);
    let srv = env.start().await;
    env.alpha.script(["chunk-delay=60"]).unwrap();
    let mut body = chat("acme/chat", "finish me please");
    body["stream"] = json!(true);
    body["provider"] = json!({"order": ["alpha"]});
    let r = client()
        .post(format!("{}/api/v1/chat/completions", srv.url()))
        .bearer_auth(&key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let stop = tokio::spawn(srv.shutdown());
    tokio::time::sleep(Duration::from_millis(20)).await;
    let text = r.text().await.unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert_eq!(
        sse_events(&text)
            .iter()
            .filter(|e| e.get("usage").is_some_and(|u| !u.is_null()))
            .count(),
        1
    );
    stop.await.unwrap();
}

#[tokio::test]
async fn one_model_and_the_count() {
    let env = Env::new().await;
    let key = env.key(None);
    let srv = env.start().await;
    let url = srv.url();
    let (_, all) = get(&url, &key, "/api/v1/models?output_modalities=all").await;
    let (s, v) = get(&url, &key, "/api/v1/models/count").await;
    assert_eq!(s, 200);
    assert_eq!(v["data"]["count"], all["total_count"]);
    let listed = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "acme/chat")
        .unwrap()
        .clone();
    // The OpenAI SDKs' models.retrieve path and OpenRouter's singular path answer the row `/models` lists.
    for path in ["/api/v1/models/acme/chat", "/api/v1/model/acme/chat"] {
        let (s, v) = get(&url, &key, path).await;
        assert_eq!((s, &v), (200, &listed), "{path}");
    }
    let (s, v) = get(&url, &key, "/api/v1/models/acme/none").await;
    assert_eq!(s, 404);
    assert_envelope(&v, 404);
    srv.shutdown().await;
}
