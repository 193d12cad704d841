//! The dashboard's JSON (`/api/v1/ui/*`) and its static page: a key is required, a management key sees every
//! key's usage and an inference key its own, the usage aggregates agree with the generation records they come
//! from, health agrees with the attempts made, and plans follow the key's allowlists.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod serve_support;

use std::collections::BTreeMap;

use polyroute_cli::serve::keys::{new_key, KeyEntry, KeyStore};
use polyroute_cli::serve::ui::CSP;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use serve_support::{chat, Env};

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn get(base: &str, key: Option<&str>, path: &str) -> (u16, Value) {
    let mut r = client().get(format!("{base}{path}"));
    if let Some(k) = key {
        r = r.bearer_auth(k);
    }
    let resp = r.send().await.unwrap();
    let s = resp.status().as_u16();
    (s, resp.json().await.unwrap_or(Value::Null))
}

async fn send(base: &str, key: &str, body: &Value, headers: &[(&str, &str)]) -> String {
    let mut r = client()
        .post(format!("{base}/api/v1/chat/completions"))
        .bearer_auth(key)
        .json(body);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let resp = r.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.headers()["x-generation-id"]
        .to_str()
        .unwrap()
        .to_string()
}

async fn put_key(env: &Env, label: &str, f: impl FnOnce(&mut KeyEntry)) -> (String, String) {
    let k = new_key();
    let mut e = KeyEntry::new(&k, label, None);
    f(&mut e);
    KeyStore::open(env.data()).unwrap().put(&e).await.unwrap();
    (k, e.id)
}

fn dec(v: &Value) -> Decimal {
    v.as_str().unwrap().parse().unwrap()
}

/// Per group name: (requests, cost) from a usage answer's `groups`.
fn groups(v: &Value) -> BTreeMap<String, (u64, Decimal)> {
    v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["name"].as_str().unwrap_or("-").to_string(),
                (g["requests"].as_u64().unwrap(), dec(&g["cost_usd"])),
            )
        })
        .collect()
}

#[tokio::test]
async fn dashboard_data_behind_a_key() {
    let env = Env::new().await;
    let (admin, _) = put_key(&env, "admin", |e| e.management = true).await;
    let (a, a_id) = put_key(&env, "team-a", |_| {}).await;
    let (b, b_id) = put_key(&env, "team-b", |_| {}).await;
    let (beta_only, _) = put_key(&env, "beta-only", |e| e.providers = vec!["beta".into()]).await;
    let (big_only, _) = put_key(&env, "big-only", |e| e.models = vec!["acme/big".into()]).await;
    let srv = env.start().await;
    let base = srv.url();

    // The page and its files need no key; they carry the CSP.
    let r = client().get(format!("{base}/ui")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-security-policy"], CSP);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(r.text().await.unwrap().contains("/ui/dashboard.js"));
    for (p, ct) in [
        ("/ui/dashboard.js", "text/javascript"),
        ("/ui/dashboard.css", "text/css"),
        ("/ui/vendor/uPlot.iife.min.js", "text/javascript"),
    ] {
        let r = client().get(format!("{base}{p}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{p}");
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with(ct));
        assert!(r.bytes().await.unwrap().len() > 1000, "{p}");
    }
    let (s, _) = get(&base, None, "/ui/../Cargo.toml").await;
    assert_eq!(s, 404);
    let r = client()
        .get(format!("{base}/ui/vendor/LICENSE-uPlot"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Leon Sorokin"));
    let (s, _) = get(&base, None, "/ui/vendor/nothing.js").await;
    assert_eq!(s, 404);

    // Every data endpoint refuses no key and a wrong key.
    for p in [
        "/api/v1/ui/session",
        "/api/v1/ui/usage",
        "/api/v1/ui/health",
        "/api/v1/ui/generations",
        "/api/v1/ui/plan?model=acme/chat",
    ] {
        assert_eq!(get(&base, None, p).await.0, 401, "{p} without a key");
        assert_eq!(
            get(&base, Some("sk-pr-v1-not-a-key"), p).await.0,
            401,
            "{p} with a wrong key"
        );
    }

    // Seed: team-a two chats from "App One" and a big one from a referer; team-b a chat whose first attempt
    // fails on alpha and falls back.
    let only_alpha = |t: &str| {
        let mut c = chat("acme/chat", t);
        c["provider"] = json!({"only": ["alpha"]});
        c
    };
    let mut gens = vec![
        send(&base, &a, &only_alpha("one"), &[("X-Title", "App One")]).await,
        send(
            &base,
            &a,
            &only_alpha("two"),
            &[("X-OpenRouter-Title", "App One")],
        )
        .await,
        send(
            &base,
            &a,
            &chat("acme/big", "three"),
            &[("HTTP-Referer", "https://two.example")],
        )
        .await,
    ];
    env.alpha.script(["503"]).unwrap();
    let mut fb = chat("acme/chat", "four");
    fb["provider"] = json!({"order": ["alpha", "beta"]});
    gens.push(send(&base, &b, &fb, &[]).await);

    // The records, read one by one, are what the aggregates must add up to.
    let mut recs = Vec::new();
    for (i, g) in gens.iter().enumerate() {
        let k = if i < 3 { &a } else { &b };
        let (s, v) = get(&base, Some(k), &format!("/api/v1/generation?id={g}")).await;
        assert_eq!(s, 200, "{v}");
        recs.push(v["data"].clone());
    }
    let cost =
        |r: &Value| -> Decimal { Decimal::try_from(r["total_cost"].as_f64().unwrap()).unwrap() };
    let total: Decimal = recs.iter().map(cost).sum();
    let close = |x: Decimal, y: Decimal| (x - y).abs() < Decimal::new(1, 9);

    // Session.
    let (s, v) = get(&base, Some(&admin), "/api/v1/ui/session").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["label"].clone(), v["scope"].clone()),
        (json!("admin"), json!("all"))
    );
    assert!(v["models"]
        .as_array()
        .unwrap()
        .contains(&json!("acme/chat")));
    let (_, v) = get(&base, Some(&a), "/api/v1/ui/session").await;
    assert_eq!(v["scope"], "key");

    // Usage by model, every key (management).
    let (s, v) = get(
        &base,
        Some(&admin),
        "/api/v1/ui/usage?group=model&range=24h",
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["scope"], "all");
    assert_eq!(v["totals"]["requests"], 4);
    assert!(close(dec(&v["totals"]["cost_usd"]), total), "{v}");
    let by_model = groups(&v);
    assert_eq!(
        by_model
            .iter()
            .map(|(k, (n, _))| (k.as_str(), *n))
            .collect::<Vec<_>>(),
        vec![("acme/big", 1), ("acme/chat", 3)]
    );
    assert!(close(by_model["acme/big"].1, cost(&recs[2])));
    let buckets = v["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 24);
    let last = buckets[23].as_i64().unwrap();
    let now = polyroute::state::now_ms();
    assert!(
        last <= now && now < last + 3_600_000,
        "the last bucket holds now"
    );
    let plotted: u64 = v["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            s["requests"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_u64().unwrap())
                .sum::<u64>()
        })
        .sum();
    assert_eq!(plotted, 4, "every request is in a bucket");
    let prompt: u64 = recs
        .iter()
        .map(|r| r["tokens_prompt"].as_u64().unwrap())
        .sum();
    assert_eq!(v["totals"]["prompt_tokens"].as_u64(), Some(prompt));

    // By app: the title, else the referer; none last-but-listed.
    let (_, v) = get(&base, Some(&admin), "/api/v1/ui/usage?group=app&range=1h").await;
    let by_app = groups(&v);
    assert_eq!(
        by_app
            .iter()
            .map(|(k, (n, _))| (k.as_str(), *n))
            .collect::<Vec<_>>(),
        vec![("-", 1), ("App One", 2), ("https://two.example", 1)]
    );
    assert_eq!(v["buckets"].as_array().unwrap().len(), 12);

    // By provider: as the records say they were served.
    let (_, v) = get(
        &base,
        Some(&admin),
        "/api/v1/ui/usage?group=provider&range=7d",
    )
    .await;
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    for r in &recs {
        *want
            .entry(r["provider"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    let got: BTreeMap<String, u64> = groups(&v).into_iter().map(|(k, (n, _))| (k, n)).collect();
    assert_eq!(got, want);

    // By key: labels for the management key; an inference key sees only itself.
    let (_, v) = get(&base, Some(&admin), "/api/v1/ui/usage?group=key&range=30d").await;
    let rows = v["groups"].as_array().unwrap();
    let row = |id: &str| rows.iter().find(|g| g["name"] == id).cloned().unwrap();
    assert_eq!(
        (row(&a_id)["label"].clone(), row(&a_id)["requests"].clone()),
        (json!("team-a"), json!(3))
    );
    assert_eq!(
        (row(&b_id)["label"].clone(), row(&b_id)["requests"].clone()),
        (json!("team-b"), json!(1))
    );
    let (_, v) = get(&base, Some(&a), "/api/v1/ui/usage?group=key").await;
    assert_eq!(v["scope"], "key");
    assert_eq!(v["groups"].as_array().unwrap().len(), 1);
    assert_eq!(v["groups"][0]["name"], json!(a_id));
    assert_eq!(v["totals"]["requests"], 3);
    let (_, v) = get(&base, Some(&b), "/api/v1/ui/usage").await;
    assert_eq!(
        (v["group"].clone(), v["totals"]["requests"].clone()),
        (json!("model"), json!(1))
    );

    assert_eq!(
        get(&base, Some(&a), "/api/v1/ui/usage?group=color").await.0,
        400
    );
    assert_eq!(
        get(&base, Some(&a), "/api/v1/ui/usage?range=2y").await.0,
        400
    );

    // Recent generations: newest first, every attempt, only the key's own for an inference key.
    let (s, v) = get(&base, Some(&admin), "/api/v1/ui/generations").await;
    assert_eq!(s, 200);
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 4);
    assert_eq!(data[0]["id"], json!(gens[3]));
    assert_eq!(data[0]["key_label"], "team-b");
    let attempts = data[0]["provider_responses"].as_array().unwrap();
    assert!(attempts.len() >= 2, "{attempts:?}");
    assert_eq!(
        (
            attempts[0]["provider"].clone(),
            attempts[0]["status"].clone()
        ),
        (json!("alpha"), json!(503))
    );
    let (_, v) = get(&base, Some(&a), "/api/v1/ui/generations?limit=2").await;
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![gens[2].as_str(), gens[1].as_str()]);
    assert_eq!(
        get(&base, Some(&a), "/api/v1/ui/generations?limit=0")
            .await
            .0,
        400
    );

    // Health: per endpoint and provider, from the attempts the records list.
    let (s, v) = get(&base, Some(&a), "/api/v1/ui/health").await;
    assert_eq!(s, 200, "{v}");
    let mut tried: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for r in &recs {
        for at in r["provider_responses"].as_array().unwrap() {
            let t = tried
                .entry(at["provider"].as_str().unwrap().to_string())
                .or_default();
            t.0 += 1;
            t.1 += u64::from(at["status"] == 200);
        }
    }
    let provs = v["providers"].as_array().unwrap();
    assert_eq!(provs.len(), tried.len(), "{v}");
    for p in provs {
        let (n, ok) = tried[p["provider"].as_str().unwrap()];
        assert_eq!(p["samples"].as_u64(), Some(n), "{p}");
        let want = ((ok as f64 / n as f64) * 10_000.0).round() / 100.0;
        assert_eq!(p["uptime"].as_f64(), Some(want), "{p}");
    }
    assert!(v["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["model"] == "acme/chat" && e["endpoint"] == "alpha"));

    // Plans, with the key's allowlists.
    let eps = |v: &Value| -> Vec<String> {
        v["data"]["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["endpoint"].as_str().unwrap().to_string())
            .collect()
    };
    let (s, v) = get(
        &base,
        Some(&a),
        "/api/v1/ui/plan?model=acme/chat&sort=price",
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let mut all = eps(&v);
    all.sort();
    assert_eq!(all, vec!["alpha", "beta"]);
    let (_, v) = get(&base, Some(&beta_only), "/api/v1/ui/plan?model=acme/chat").await;
    assert_eq!(eps(&v), vec!["beta"]);
    assert_eq!(
        get(&base, Some(&big_only), "/api/v1/ui/plan?model=acme/chat")
            .await
            .0,
        403
    );
    assert_eq!(
        get(&base, Some(&big_only), "/api/v1/ui/plan?model=acme/big")
            .await
            .0,
        200
    );
    assert_eq!(get(&base, Some(&a), "/api/v1/ui/plan").await.0, 400);
    assert_eq!(
        get(
            &base,
            Some(&a),
            "/api/v1/ui/plan?model=acme/chat&sort=vibes"
        )
        .await
        .0,
        400
    );
    let (s, v) = get(&base, Some(&a), "/api/v1/ui/plan?model=acme/nothing").await;
    assert!(s == 400 || s == 404, "{s} {v}");

    srv.shutdown().await;
}
