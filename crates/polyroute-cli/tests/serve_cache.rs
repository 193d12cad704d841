//! OpenRouter's response cache in the gateway: opt-in headers, MISS then HIT, a hit billed 0 and recorded,
//! TTL and clear, streams replayed as SSE, and (with `[state] redis`) one cache shared by replicas.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod serve_support;

use std::sync::Arc;
use std::time::Duration;

use polyroute_cli::serve::{self, Gateway};
use polyroute_testsupport::{skip_unless_available, RedisServer};
use serde_json::Value;
use serve_support::{chat, Env};

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

struct Answer {
    status: u16,
    cache: Option<String>,
    source: Option<String>,
    gen: String,
    body: String,
}

async fn ask(url: &str, key: &str, body: &Value, hdrs: &[(&str, &str)]) -> Answer {
    let mut r = client()
        .post(format!("{url}/api/v1/chat/completions"))
        .bearer_auth(key)
        .json(body);
    for (k, v) in hdrs {
        r = r.header(*k, *v);
    }
    let resp = r.send().await.unwrap();
    let h = |n: &str| {
        resp.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (cache, source, gen) = (
        h("x-openrouter-cache-status"),
        h("x-openrouter-cache-source-id"),
        h("x-generation-id").unwrap_or_default(),
    );
    let status = resp.status().as_u16();
    Answer {
        status,
        cache,
        source,
        gen,
        body: resp.text().await.unwrap(),
    }
}

async fn get(url: &str, key: &str, path: &str) -> Value {
    client()
        .get(format!("{url}{path}"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn events(sse: &str) -> Vec<&str> {
    sse.split("\n\n")
        .filter(|e| e.starts_with("data: "))
        .collect()
}

const ON: (&str, &str) = ("x-openrouter-cache", "true");

#[tokio::test]
async fn memory_cache_miss_hit_ttl_clear_and_streams() {
    let env = Env::new().await;
    let key = env.key(None);
    let srv = env.start().await;
    let url = srv.url();
    let calls = || env.alpha.calls() + env.beta.calls();
    let body = chat("acme/chat", "cache me");

    let plain = ask(&url, &key, &body, &[]).await;
    assert_eq!((plain.status, plain.cache.as_deref()), (200, None));
    let bad = ask(&url, &key, &body, &[ON, ("x-openrouter-cache-ttl", "0")]).await;
    assert_eq!(bad.status, 400);

    let c0 = calls();
    let miss = ask(&url, &key, &body, &[ON]).await;
    assert_eq!((miss.status, miss.cache.as_deref()), (200, Some("MISS")));
    let hit = ask(&url, &key, &body, &[ON]).await;
    assert_eq!((hit.status, hit.cache.as_deref()), (200, Some("HIT")));
    assert_eq!(calls() - c0, 1, "a hit calls no provider");
    assert_eq!(hit.body, miss.body);
    assert_eq!(hit.source.as_deref(), Some(miss.gen.as_str()));
    assert_ne!(hit.gen, miss.gen);

    // Billed 0 and marked in the ledger; the key's usage counts only the miss.
    let g = get(&url, &key, &format!("/api/v1/generation?id={}", hit.gen)).await;
    assert_eq!(g["data"]["total_cost"], 0.0, "{g}");
    assert_eq!(g["data"]["cost_details"]["cache_hit"], true);
    let src = get(&url, &key, &format!("/api/v1/generation?id={}", miss.gen)).await;
    let k = get(&url, &key, "/api/v1/key").await;
    let plain_cost = get(&url, &key, &format!("/api/v1/generation?id={}", plain.gen)).await;
    let expect = src["data"]["total_cost"].as_f64().unwrap()
        + plain_cost["data"]["total_cost"].as_f64().unwrap();
    assert!(
        (k["data"]["usage"].as_f64().unwrap() - expect).abs() < 1e-12,
        "{k}"
    );

    // Another body, another key: misses.
    let other = ask(&url, &key, &chat("acme/chat", "something else"), &[ON]).await;
    assert_eq!(other.cache.as_deref(), Some("MISS"));
    let key2 = env.key(None);
    let k2 = ask(&url, &key2, &body, &[ON]).await;
    assert_eq!(k2.cache.as_deref(), Some("MISS"));

    // Clear answers afresh and stores the new answer.
    let c1 = calls();
    let cleared = ask(
        &url,
        &key,
        &body,
        &[ON, ("x-openrouter-cache-clear", "true")],
    )
    .await;
    assert_eq!(cleared.cache.as_deref(), Some("MISS"));
    let again = ask(&url, &key, &body, &[ON]).await;
    assert_eq!(again.source.as_deref(), Some(cleared.gen.as_str()));
    assert_eq!(calls() - c1, 1);

    // TTL: a 1 s answer is gone after it.
    let short = chat("acme/chat", "short-lived");
    let ttl = [ON, ("x-openrouter-cache-ttl", "1")];
    assert_eq!(
        ask(&url, &key, &short, &ttl).await.cache.as_deref(),
        Some("MISS")
    );
    assert_eq!(
        ask(&url, &key, &short, &ttl).await.cache.as_deref(),
        Some("HIT")
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        ask(&url, &key, &short, &ttl).await.cache.as_deref(),
        Some("MISS")
    );

    // Streams: replayed as the same SSE events.
    let mut sbody = chat("acme/chat", "stream me");
    sbody["stream"] = Value::Bool(true);
    let c2 = calls();
    let smiss = ask(&url, &key, &sbody, &[ON]).await;
    assert_eq!(smiss.cache.as_deref(), Some("MISS"));
    let shit = ask(&url, &key, &sbody, &[ON]).await;
    assert_eq!(shit.cache.as_deref(), Some("HIT"));
    assert_eq!(calls() - c2, 1);
    assert!(shit.body.ends_with("data: [DONE]\n\n"));
    assert_eq!(events(&shit.body), events(&smiss.body));
    assert!(events(&shit.body).len() > 2);
    // The stream flag is part of the key: the JSON answer of the same prompt is another entry.
    let mut as_json = sbody.clone();
    as_json["stream"] = Value::Bool(false);
    assert_eq!(
        ask(&url, &key, &as_json, &[ON]).await.cache.as_deref(),
        Some("MISS")
    );
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cache_is_shared_by_replicas() {
    if !skip_unless_available("shared cache test").expect("servers required") {
        return;
    }
    let redis = RedisServer::start().unwrap();
    let mut env = Env::new().await;
    let key = env.key(None);
    env.cfg.router.state.redis = Some(redis.url());
    let mut urls = Vec::new();
    let mut srvs = Vec::new();
    for _ in 0..2 {
        let shared = serve::state::connect(&env.cfg.router.state, None, env.data())
            .await
            .unwrap();
        let gw = Arc::new(Gateway::with_state(&env.cfg, env.data(), shared).unwrap());
        let s = serve::start(gw, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        urls.push(s.url());
        srvs.push(s);
    }
    let body = chat("acme/chat", "shared");
    let miss = ask(&urls[0], &key, &body, &[ON]).await;
    assert_eq!(miss.cache.as_deref(), Some("MISS"));
    let hit = ask(&urls[1], &key, &body, &[ON]).await;
    assert_eq!(hit.cache.as_deref(), Some("HIT"), "{}", hit.body);
    assert_eq!(hit.source.as_deref(), Some(miss.gen.as_str()));
    assert_eq!(hit.body, miss.body);
    for s in srvs {
        s.shutdown().await;
    }
}
