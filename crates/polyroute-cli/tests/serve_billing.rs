//! Gateway billing under concurrency and client disconnects: key credit limits are budget holds, and an
//! abandoned stream is still a recorded, billed generation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod serve_support;

use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};
use serve_support::{chat, Env};

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
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

/// The generation record, once it is there (bounded wait: billing finishes after the client went away).
async fn generation(url: &str, key: &str, id: &str) -> Value {
    for _ in 0..400 {
        let (s, g) = get(url, key, &format!("/api/v1/generation?id={id}")).await;
        if s == 200 {
            return g["data"].clone();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no record of {id}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_never_spend_more_than_a_key_limit() {
    let env = Env::new().await;
    // About five worst cases of one request (50 output tokens at $1/M).
    let limit = 0.0003;
    let key = env.key(Some(limit));
    let srv = env.start().await;
    let url = srv.url();
    let mut tasks = Vec::new();
    for i in 0..64 {
        let (url, key) = (url.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            let r = client()
                .post(format!("{url}/api/v1/chat/completions"))
                .bearer_auth(&key)
                .json(&chat("acme/chat", &format!("concurrent {i}")))
                .send()
                .await
                .unwrap();
            r.status().as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let ok = statuses.iter().filter(|s| **s == 200).count();
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 402),
        "{statuses:?}"
    );
    assert!((1..64).contains(&ok), "{ok} of 64 served");
    let (_, k) = get(&url, &key, "/api/v1/key").await;
    let usage = k["data"]["usage"].as_f64().unwrap();
    assert!(usage > 0.0, "{k}");
    assert!(usage <= limit, "spent {usage} of a {limit} limit: {k}");
    // What the ledger says agrees with the budget.
    let (_, a) = get(&url, &key, "/api/v1/activity").await;
    let rows = a["data"].as_array().unwrap();
    let requests: u64 = rows.iter().map(|r| r["requests"].as_u64().unwrap()).sum();
    assert_eq!(requests, ok as u64, "{a}");
    assert_eq!(env.alpha.calls() + env.beta.calls(), ok as u64);
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_dropped_after_the_first_chunk_is_recorded_and_billed() {
    let env = Env::new().await;
    let key = env.key(Some(1.0));
    let srv = env.start().await;
    let url = srv.url();
    env.alpha.script(["chunk-delay=40"]).unwrap();
    env.beta.script(["chunk-delay=40"]).unwrap();
    let mut body = chat(
        "acme/chat",
        "a b c d e f g h i j k l m n o p q r s t u v w x y z",
    );
    body["stream"] = json!(true);
    let r = client()
        .post(format!("{url}/api/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let gen = r.headers()["x-generation-id"].to_str().unwrap().to_string();
    let mut s = r.bytes_stream();
    let mut seen = String::new();
    while let Some(b) = s.next().await {
        seen.push_str(&String::from_utf8_lossy(&b.unwrap()));
        if seen.contains("\"content\"") {
            break;
        }
    }
    drop(s);
    let g = generation(&url, &key, &gen).await;
    assert_eq!(g["cancelled"], json!(true), "{g}");
    assert_eq!(g["streamed"], json!(true));
    let cost = g["total_cost"].as_f64().unwrap();
    assert!(cost > 0.0, "content was delivered, so it is billed: {g}");
    assert!(g["tokens_completion"].as_u64().unwrap() >= 1, "{g}");
    // No wait: the record and its settle are one write of the SQLite file, so once the record can be read, so
    // can the spend (before that write, this read raced the settle).
    let (_, k) = get(&url, &key, "/api/v1/key").await;
    assert_eq!(
        k["data"]["usage"].as_f64().unwrap(),
        cost,
        "billed once: {k}"
    );
    // The next request is admitted (nothing left held).
    let (_, a) = get(&url, &key, "/api/v1/activity").await;
    assert_eq!(a["data"][0]["requests"], json!(1), "{a}");
    let r = client()
        .post(format!("{url}/api/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&chat("acme/chat", "next"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    srv.shutdown().await;
}
