//! The HTTP parity table (`tests/parity/http.json`) through the engine's HTTP surface ([`polyroute::HttpApi`]),
//! against the loopback mock. Writes `http.expected.json` with `POLYROUTE_BLESS=1`; the Python, Node and gateway
//! runs compare with the same file, so the four surfaces answer alike.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/http_table.rs"]
mod http_table;

use polyroute::http_api::{Caller, Request};
use polyroute::{HttpApi, Router, RouterConfig};
use polyroute_mock::MockServer;
use serde_json::Value;

#[tokio::test]
async fn the_engine_answers_the_http_parity_table() {
    let mock = MockServer::start().await.unwrap();
    let t = http_table::table(&mock.url());
    let mut cfg = RouterConfig::from_value(&t["router"]).unwrap();
    cfg.catalog = Some(t["catalog"].clone());
    let api = HttpApi::new(Router::from_config(&cfg).unwrap());
    let mut gens: Vec<Option<String>> = Vec::new();
    let mut got = Vec::new();
    for case in t["requests"].as_array().unwrap() {
        let (method, path, headers, body) = http_table::request(case, &gens);
        let req = Request {
            method,
            target: path,
            headers,
            body: body.into(),
        };
        let r = api.handle(req, &Caller::in_process()).await;
        let status = r.status;
        let ct = r.header_value("content-type").map(str::to_string);
        let gen = r.header_value("x-generation-id").map(str::to_string);
        let bytes = r.bytes().await;
        got.push(http_table::record(
            &t,
            status,
            ct.as_deref(),
            gen.is_some(),
            &bytes,
        ));
        gens.push(gen);
    }
    let got = Value::Array(got);
    http_table::check(&got, std::env::var_os("POLYROUTE_BLESS").is_some());
    // What the table pins: attribution (X-OpenRouter-Title before X-Title), the session and the stream's title
    // reach the ledger; credits count both answers; a stream ends with [DONE].
    assert_eq!(got[1]["body"]["data"]["app_title"], "Parity App");
    assert_eq!(
        got[1]["body"]["data"]["http_referer"],
        "https://parity.example/app"
    );
    assert_eq!(got[1]["body"]["data"]["session_id"], "parity-session-1");
    assert_eq!(got[3]["body"]["data"]["app_title"], "Stream App");
    assert_eq!(got[3]["body"]["data"]["streamed"], true);
    assert_eq!(got[2]["body"].as_array().unwrap().last().unwrap(), "[DONE]");
    let cost = |i: usize| got[i]["body"]["data"]["total_cost"].as_f64().unwrap();
    let usage = got[16]["body"]["data"]["total_usage"].as_f64().unwrap();
    assert!(cost(1) > 0.0 && cost(3) > 0.0);
    assert!((usage - cost(1) - cost(3)).abs() < 1e-12, "{usage}");
}

struct RefuseBig;

impl polyroute::http_api::Admit for RefuseBig {
    fn admit<'a>(
        &'a self,
        request: &'a mut Value,
    ) -> polyroute::state::BoxFut<'a, Result<(), polyroute::http_api::Response>> {
        let big = request["max_tokens"].as_u64().is_some_and(|n| n > 100);
        Box::pin(async move {
            if big {
                Err(polyroute::http_api::Response::error(
                    403,
                    "forbidden",
                    "too big",
                ))
            } else {
                Ok(())
            }
        })
    }
}

/// A gateway-like caller: its admission hook answers first, its generations are its own, and its credits are its
/// key scope's.
#[tokio::test]
async fn a_scoped_caller_sees_its_own_generations_and_credits() {
    let mock = MockServer::start().await.unwrap();
    let t = http_table::table(&mock.url());
    let mut cfg = RouterConfig::from_value(&t["router"]).unwrap();
    cfg.catalog = Some(t["catalog"].clone());
    let api = HttpApi::new(Router::from_config(&cfg).unwrap());
    let caller = Caller {
        context: polyroute::RequestContext {
            user: Some("key-a".into()),
            key_id: Some("key-a".into()),
            key_limit: Some(rust_decimal::Decimal::ONE),
            ..Default::default()
        },
        trusted: false,
        admit: Some(std::sync::Arc::new(RefuseBig)),
    };
    let chat = |max: u64| {
        Request::new("POST", "/v1/chat/completions").body(
            serde_json::json!({"model": "parity/chat", "max_tokens": max,
                               "messages": [{"role": "user", "content": "hi"}]})
            .to_string(),
        )
    };
    let r = api.handle(chat(500), &caller).await;
    assert_eq!(r.status, 403);
    let r = api.handle(chat(10), &caller).await;
    assert_eq!(r.status, 200);
    let gen = r.header_value("x-generation-id").unwrap().to_string();
    let get = |path: String| Request::new("GET", path);
    let mine = api
        .handle(get(format!("/v1/generation?id={gen}")), &caller)
        .await;
    assert_eq!(mine.status, 200);
    let other = Caller {
        context: polyroute::RequestContext {
            user: Some("key-b".into()),
            ..Default::default()
        },
        ..Caller::default()
    };
    let theirs = api
        .handle(get(format!("/v1/generation?id={gen}")), &other)
        .await;
    assert_eq!(theirs.status, 404);
    let credits: Value = serde_json::from_slice(
        &api.handle(get("/v1/credits".into()), &caller)
            .await
            .bytes()
            .await,
    )
    .unwrap();
    assert_eq!(credits["data"]["total_credits"], 1.0);
    assert!(credits["data"]["total_usage"].as_f64().unwrap() > 0.0);
    let none: Value = serde_json::from_slice(
        &api.handle(get("/v1/credits".into()), &other)
            .await
            .bytes()
            .await,
    )
    .unwrap();
    assert_eq!(none["data"]["total_usage"], 0.0);
    // An untrusted caller is not told which providers hold credentials.
    let p: Value = serde_json::from_slice(
        &api.handle(get("/v1/providers".into()), &caller)
            .await
            .bytes()
            .await,
    )
    .unwrap();
    assert_eq!(p["data"][0]["configured"], Value::Null);
}
