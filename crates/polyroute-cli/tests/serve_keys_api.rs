//! OpenRouter key semantics in the gateway: the management API (`/api/v1/keys`, authorized by a management
//! key), `limit_reset`, `expires_at`, per-key rpm and tpm, model and provider allowlists, and `/api/v1/key`
//! reporting them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod serve_support;

use polyroute::Scope;
use polyroute_cli::serve::account::{utc_date, utc_iso};
use polyroute_cli::serve::keys::{new_key, now_ms, KeyEntry, KeyStore};
use serde_json::{json, Value};
use serve_support::{chat, Env};

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn call(
    method: &str,
    url: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut r = client().request(m, url).bearer_auth(key);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    let s = resp.status().as_u16();
    let h = resp.headers().clone();
    let v = resp.json().await.unwrap_or(Value::Null);
    (s, h, v)
}

#[tokio::test]
async fn management_api_and_key_limits() {
    let env = Env::new().await;
    let admin = new_key();
    let mut e = KeyEntry::new(&admin, "admin", None);
    e.management = true;
    KeyStore::open(env.data()).unwrap().put(&e).await.unwrap();
    let plain = env.key(None);
    let srv = env.start().await;
    let base = srv.url();
    let keys = format!("{base}/api/v1/keys");
    let chat_url = format!("{base}/api/v1/chat/completions");

    // Authorization: only a management key manages keys; it cannot be used for inference.
    let (s, _, _) = call("GET", &keys, &plain, None).await;
    assert_eq!(s, 403);
    let (s, _, _) = call("POST", &chat_url, &admin, Some(chat("acme/chat", "x"))).await;
    assert_eq!(s, 401);
    let (s, _, v) = call("POST", &keys, &admin, Some(json!({"limit": 1}))).await;
    assert_eq!(s, 400, "{v}");
    let (s, _, v) = call(
        "POST",
        &keys,
        &admin,
        Some(json!({"name": "x", "limit_reset": "hourly"})),
    )
    .await;
    assert_eq!(s, 400, "{v}");

    // Create with OpenRouter's fields and polyroute's.
    let expires = utc_iso(now_ms() + 3_600_000);
    let (s, _, v) = call(
        "POST",
        &keys,
        &admin,
        Some(
            json!({"name": "team", "limit": 0.001, "limit_reset": "daily", "expires_at": expires,
                    "rpm": 4, "models": ["acme/chat"], "providers": ["beta"]}),
        ),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let key = v["key"].as_str().unwrap().to_string();
    let hash = v["data"]["hash"].as_str().unwrap().to_string();
    assert_eq!(v["data"]["name"], "team");
    assert_eq!(v["data"]["limit_reset"], "daily");
    assert_eq!(v["data"]["expires_at"], expires.as_str());

    // Allowlists: another model is refused; the allowed one is served by the allowed provider only.
    let (s, _, v) = call("POST", &chat_url, &key, Some(chat("acme/big", "x"))).await;
    assert_eq!(s, 403, "{v}");
    // Fallbacks are filtered, a provider list is intersected; what is left empty is refused (before the rpm).
    let mut only_models = chat("acme/chat", "x");
    only_models.as_object_mut().unwrap().remove("model");
    only_models["models"] = json!(["acme/big", "other/x"]);
    let (s, _, v) = call("POST", &chat_url, &key, Some(only_models)).await;
    assert_eq!(s, 403, "{v}");
    assert!(
        v.to_string().contains("none of the requested models"),
        "{v}"
    );
    let mut alpha_only = chat("acme/chat", "x");
    alpha_only["provider"] = json!({"only": ["alpha"]});
    let (s, _, v) = call("POST", &chat_url, &key, Some(alpha_only)).await;
    assert_eq!(s, 403, "{v}");
    assert!(v.to_string().contains("none of the providers"), "{v}");
    // A body that is not a valid request meets the key's rules first, as before it is validated.
    let mut invalid = chat("acme/big", "x");
    invalid["messages"] = json!([]);
    let (s, _, v) = call("POST", &chat_url, &key, Some(invalid)).await;
    assert_eq!(s, 403, "{v}");
    let (a0, b0) = (env.alpha.calls(), env.beta.calls());
    for i in 0..2 {
        let (s, _, v) = call(
            "POST",
            &chat_url,
            &key,
            Some(chat("acme/chat", &format!("x{i}"))),
        )
        .await;
        assert_eq!(s, 200, "{v}");
    }
    assert_eq!((env.alpha.calls() - a0, env.beta.calls() - b0), (0, 2));

    // The daily limit counts against today's scope; /api/v1/key reports it.
    let id = {
        let (_, _, v) = call("GET", &format!("{base}/api/v1/key"), &key, None).await;
        let d = &v["data"];
        assert_eq!(d["limit"], 0.001);
        assert_eq!(d["limit_reset"], "daily");
        assert_eq!(d["expires_at"], expires.as_str());
        assert_eq!(d["rpm"], 4);
        assert_eq!(d["rate_limit"]["requests"], 4);
        assert_eq!(d["models"], json!(["acme/chat"]));
        let usage = d["usage"].as_f64().unwrap();
        assert!(usage > 0.0);
        assert!(
            (d["limit_remaining"].as_f64().unwrap() - (0.001 - usage)).abs() < 1e-12,
            "{d}"
        );
        assert_eq!(d["usage_daily"], d["usage"]);
        d["id"].as_str().unwrap().to_string()
    };
    let today = srv
        .gateway
        .router
        .spent_in(&Scope::Key(format!("{id}@{}", utc_date(now_ms()))))
        .await
        .unwrap();
    assert!(today > rust_decimal::Decimal::ZERO);

    // rpm 4: two used above, two more, then 429 with the window's headers.
    for i in 0..2 {
        let (s, _, _) = call(
            "POST",
            &chat_url,
            &key,
            Some(chat("acme/chat", &format!("y{i}"))),
        )
        .await;
        assert_eq!(s, 200);
    }
    let (s, h, v) = call("POST", &chat_url, &key, Some(chat("acme/chat", "z"))).await;
    assert_eq!(s, 429, "{v}");
    assert_eq!(h["x-ratelimit-limit"], "4");
    assert!(h.contains_key("retry-after"));

    // Update: disable, enable, expire.
    let one = format!("{keys}/{hash}");
    let (s, _, v) = call("PATCH", &one, &admin, Some(json!({"disabled": true}))).await;
    assert_eq!((s, &v["data"]["disabled"]), (200, &json!(true)), "{v}");
    let (s, _, v) = call("POST", &chat_url, &key, Some(chat("acme/chat", "d"))).await;
    assert_eq!(s, 401, "{v}");
    let (_, _, v) = call("GET", &keys, &admin, None).await;
    assert!(v["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|k| k["hash"] != hash.as_str()));
    let (_, _, v) = call(
        "GET",
        &format!("{keys}?include_disabled=true"),
        &admin,
        None,
    )
    .await;
    assert!(v["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k["hash"] == hash.as_str()));
    assert!(v["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|k| k["is_management_key"] == false));
    let (s, _, _) = call(
        "PATCH",
        &one,
        &admin,
        Some(json!({"disabled": false, "expires_at": utc_iso(now_ms() - 1000)})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _, v) = call("POST", &chat_url, &key, Some(chat("acme/chat", "e"))).await;
    assert_eq!(s, 401);
    assert!(v.to_string().contains("expired"), "{v}");

    // Delete: gone for the API and for inference.
    let (s, _, v) = call("DELETE", &one, &admin, None).await;
    assert_eq!((s, v), (200, json!({"deleted": true})));
    let (s, _, _) = call("GET", &one, &admin, None).await;
    assert_eq!(s, 404);
    let (s, _, _) = call("POST", &chat_url, &key, Some(chat("acme/chat", "f"))).await;
    assert_eq!(s, 401);

    // tpm: one generation's tokens fill a 1-token minute.
    let (_, _, v) = call(
        "POST",
        &keys,
        &admin,
        Some(json!({"name": "tpm", "tpm": 1})),
    )
    .await;
    let tk = v["key"].as_str().unwrap().to_string();
    let (s, _, _) = call("POST", &chat_url, &tk, Some(chat("acme/chat", "t1"))).await;
    assert_eq!(s, 200);
    let (s, _, v) = call("POST", &chat_url, &tk, Some(chat("acme/chat", "t2"))).await;
    assert_eq!(s, 429, "{v}");
    srv.shutdown().await;
}
