//! The Messages and Responses routes of the gateway keep chat's key rules: authentication, model allowlists
//! (`fallbacks` included), credit limits (402 in Anthropic's error shape on /messages), generation ids and records,
//! and count_tokens behind the key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod serve_support;

use polyroute_cli::serve::keys::{new_key, KeyEntry, KeyStore};
use serde_json::{json, Value};
use serve_support::Env;

async fn post(url: &str, key: &str, body: &Value) -> (u16, reqwest::header::HeaderMap, String) {
    let r = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(url)
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    let h = r.headers().clone();
    (s, h, r.text().await.unwrap())
}

fn msg(model: &str) -> Value {
    json!({"model": model, "max_tokens": 50, "messages": [{"role": "user", "content": "hello gateway"}]})
}

#[tokio::test]
async fn surfaces_keep_chat_key_rules() {
    let env = Env::new().await;
    let plain = env.key(None);
    let broke = env.key(Some(0.0));
    let limited = new_key();
    let mut e = KeyEntry::new(&limited, "only-chat", None);
    e.models = vec!["acme/chat".into()];
    KeyStore::open(env.data()).unwrap().put(&e).await.unwrap();
    let srv = env.start().await;
    let base = srv.url();
    let messages = format!("{base}/api/v1/messages");
    let responses = format!("{base}/api/v1/responses");

    let (s, h, body) = post(&messages, &plain, &msg("acme/chat")).await;
    assert_eq!(s, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["type"], "message");
    assert!(v["content"][0]["text"]
        .as_str()
        .unwrap()
        .ends_with("hello gateway"));
    assert_eq!(
        h["x-generation-id"].to_str().unwrap(),
        v["id"].as_str().unwrap()
    );
    let r = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!(
            "{base}/api/v1/generation?id={}",
            v["id"].as_str().unwrap()
        ))
        .bearer_auth(&plain)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "the generation is recorded");

    // No key, a broke key, a model outside the key's list (also through `fallbacks`).
    let (s, _, _) = post(&messages, "sk-or-v1-unknown", &msg("acme/chat")).await;
    assert_eq!(s, 401);
    let (s, _, body) = post(&messages, &broke, &msg("acme/chat")).await;
    assert_eq!(s, 402, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "billing_error");
    let (s, _, body) = post(
        &responses,
        &broke,
        &json!({"model": "acme/chat", "input": "x"}),
    )
    .await;
    assert_eq!(s, 402, "{body}");
    let (s, _, _) = post(&messages, &limited, &msg("acme/big")).await;
    assert_eq!(s, 403);
    let mut fb = msg("acme/chat");
    fb["fallbacks"] = json!([{"model": "acme/big"}]);
    let (s, _, body) = post(&messages, &limited, &fb).await;
    assert_eq!(s, 200, "{body}");
    // The disallowed fallback was dropped from the list, as chat drops it from `models`.
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["model"], "acme/chat");
    let (_, _, body) = post(
        &responses,
        &limited,
        &json!({"model": "acme/big", "input": "x"}),
    )
    .await;
    assert!(body.contains("does not allow"), "{body}");

    // Streams: Anthropic events; Responses events; a bad request is a 400 before any stream.
    let mut sb = msg("acme/chat");
    sb["stream"] = json!(true);
    let (s, h, body) = post(&messages, &plain, &sb).await;
    assert_eq!(s, 200);
    assert_eq!(h["content-type"], "text/event-stream");
    assert!(
        body.starts_with("event: message_start\n") || body.starts_with(": "),
        "{body}"
    );
    assert!(
        body.trim_end()
            .ends_with(r#"data: {"type":"message_stop"}"#),
        "{body}"
    );
    let (s, _, body) = post(
        &responses,
        &plain,
        &json!({"model": "acme/chat", "input": "x", "stream": true}),
    )
    .await;
    assert_eq!(s, 200);
    assert!(body.contains("event: response.completed\n"), "{body}");
    let (s, _, body) = post(
        &responses,
        &plain,
        &json!({"model": "acme/chat", "input": "x", "stream": true, "store": true}),
    )
    .await;
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("stateless"));

    // count_tokens: behind the key, no provider call.
    let calls = env.alpha.calls() + env.beta.calls();
    let (s, _, body) = post(
        &format!("{messages}/count_tokens"),
        &plain,
        &json!({"model": "acme/chat", "messages": [{"role": "user", "content": "count me"}]}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(v["input_tokens"].as_u64().unwrap() >= 3);
    assert_eq!(env.alpha.calls() + env.beta.calls(), calls);
    let (s, _, _) = post(
        &format!("{messages}/count_tokens"),
        "sk-or-v1-unknown",
        &json!({}),
    )
    .await;
    assert_eq!(s, 401);
}
