//! The gateway's cache of authenticated tokens (`serve::auth`): a key that is in the cache stops working as
//! soon as it is disabled, deleted or given new limits through `/api/v1/keys` (the same request after), and
//! within the key file's re-check (200 ms) when `polyroute keys revoke` runs in another process; unknown tokens
//! take no place in it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod serve_support;

use std::process::Command;
use std::time::{Duration, Instant};

use polyroute_cli::serve::keys::{new_key, KeyEntry, KeyStore};
use serde_json::{json, Value};
use serve_support::{chat, Env};

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn post(c: &reqwest::Client, url: &str, key: &str) -> u16 {
    c.post(format!("{url}/api/v1/chat/completions"))
        .bearer_auth(key)
        .json(&chat("acme/chat", "hello"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn manage(c: &reqwest::Client, method: &str, url: &str, admin: &str, body: Value) -> u16 {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    c.request(m, url)
        .bearer_auth(admin)
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn cached_keys_follow_the_keys_api_at_once() {
    let env = Env::new().await;
    let admin = new_key();
    let mut e = KeyEntry::new(&admin, "admin", None);
    e.management = true;
    KeyStore::open(env.data()).unwrap().put(&e).await.unwrap();
    let srv = env.start().await;
    let base = srv.url();
    let c = client();
    let (s, v) = {
        let r = c
            .post(format!("{base}/api/v1/keys"))
            .bearer_auth(&admin)
            .json(&json!({"name": "cached"}))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(s, 201, "{v}");
    let key = v["key"].as_str().unwrap().to_string();
    let one = format!("{base}/api/v1/keys/{}", v["data"]["hash"].as_str().unwrap());
    for _ in 0..5 {
        assert_eq!(post(&c, &base, &key).await, 200);
    }
    let cached = srv.gateway.keys.cached_tokens();
    assert!(cached >= 1, "the key is cached ({cached})");

    // Disabled: refused by the very next request; enabled again: accepted.
    assert_eq!(
        manage(&c, "PATCH", &one, &admin, json!({"disabled": true})).await,
        200
    );
    assert_eq!(post(&c, &base, &key).await, 401);
    assert_eq!(
        manage(&c, "PATCH", &one, &admin, json!({"disabled": false})).await,
        200
    );
    assert_eq!(post(&c, &base, &key).await, 200);
    // New limits apply to the next request: one request a minute, and the next is refused.
    assert_eq!(
        manage(&c, "PATCH", &one, &admin, json!({"rpm": 1})).await,
        200
    );
    assert_eq!(post(&c, &base, &key).await, 200);
    assert_eq!(post(&c, &base, &key).await, 429);
    // Deleted: refused.
    assert_eq!(manage(&c, "DELETE", &one, &admin, json!({})).await, 200);
    assert_eq!(post(&c, &base, &key).await, 401);

    // Invented tokens are refused and take no place in the cache.
    let before = srv.gateway.keys.cached_tokens();
    for i in 0..40 {
        assert_eq!(post(&c, &base, &format!("sk-test-fake-{i}")).await, 401);
    }
    assert_eq!(srv.gateway.keys.cached_tokens(), before);
    srv.shutdown().await;
}

#[tokio::test]
async fn a_revocation_by_another_process_is_refused_within_the_recheck() {
    let env = Env::new().await;
    let key = env.key(None);
    let srv = env.start().await;
    let base = srv.url();
    let c = client();
    for _ in 0..20 {
        assert_eq!(post(&c, &base, &key).await, 200);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_polyroute"))
        .args(["keys", "revoke", "test", "--data-dir"])
        .arg(env.data())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t0 = Instant::now();
    let mut refused = None;
    for _ in 0..100 {
        if post(&c, &base, &key).await == 401 {
            refused = Some(t0.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = refused.expect("the revoked key still works after 1 s");
    // The key file is re-checked every 200 ms; the margin is for a loaded test machine.
    assert!(took < Duration::from_millis(450), "refused after {took:?}");
    srv.shutdown().await;
}
