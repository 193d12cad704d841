//! The embeddings API end to end against loopback mocks: fallback over providers and models, dimensions, base64,
//! token arrays, cost in the ledger, limits refused before any call, and models of the wrong kind refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{mocks, relaxed_timeouts, KEY};
use polyroute::{Options, ProviderSettings, RequestContext, Router};
use polyroute_mock::embeddings::{base64_f32, vector};
use polyroute_mock::MockServer;
use rust_decimal::Decimal;
use serde_json::{json, Value};

fn endpoint(slug: &str, price: &str) -> Value {
    json!({"provider": slug, "provider_name": format!("{} Cloud", slug.to_uppercase()), "tag": slug,
           "provider_model_id": format!("{slug}-embed"), "context_length": 8192,
           "pricing": {"prompt": price, "completion": "0"}, "embedding_dimensions": 8})
}

fn model(id: &str, output: &str, endpoints: Vec<Value>) -> Value {
    json!({"id": id, "name": id, "created": 1_700_000_000, "context_length": 8192,
           "architecture": {"input_modalities": ["text"], "output_modalities": [output]},
           "pricing": {"prompt": "0.0000001", "completion": "0"},
           "top_provider": {"context_length": 8192}, "endpoints": endpoints})
}

/// `test/embed` on alpha ($0.10/M), beta ($0.20/M) and gamma (the Gemini API, $0.01/M);
/// `test/embed-b` on beta only; `test/chat` a chat model on alpha.
fn router(m: &[MockServer], limits: polyroute::Limits) -> Router {
    let prov = |slug: &str, dialect: &str, m: &MockServer| {
        let base = if dialect == "openai" {
            format!("{}/v1", m.url())
        } else {
            m.url()
        };
        json!({"slug": slug, "name": format!("{} Cloud", slug.to_uppercase()), "dialect": dialect,
               "base_url": base})
    };
    let cat = json!({"version": 1,
    "providers": [prov("alpha", "openai", &m[0]), prov("beta", "openai", &m[1]), prov("gamma", "gemini", &m[1])],
    "models": [
        model("test/embed", "embeddings", vec![endpoint("alpha", "0.0000001"), endpoint("beta", "0.0000002"),
                                               endpoint("gamma", "0.00000001")]),
        model("test/embed-b", "embeddings", vec![endpoint("beta", "0.0000002")]),
        model("test/chat", "text", vec![endpoint("alpha", "0.000001")]),
    ]});
    let mut b = Router::builder()
        .catalog_json(cat.to_string())
        .options(Options {
            timeouts: relaxed_timeouts(),
            read_env: false,
            limits,
            ..Options::default()
        });
    for slug in ["alpha", "beta", "gamma"] {
        b = b.provider(slug, ProviderSettings::with_key(KEY));
    }
    b.build().unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

#[tokio::test]
async fn fails_over_to_the_next_provider_and_bills_the_server_of_the_answer() {
    let m = mocks(2).await;
    let r = router(&m, polyroute::Limits::default());
    m[0].set_fault(Some("503")).unwrap();
    let out = r
        .embeddings(
            json!({"model": "test/embed", "input": ["the quick brown fox", "jumps"],
            "provider": {"order": ["alpha", "beta"]}}),
        )
        .await
        .unwrap();
    assert_eq!(out["object"], "list");
    assert_eq!(out["model"], "test/embed");
    assert_eq!(out["provider"], "BETA Cloud");
    assert_eq!(out["data"].as_array().unwrap().len(), 2);
    assert_eq!(
        floats(&out["data"][0]["embedding"]),
        vector(b"the quick brown fox", 8)
    );
    assert_eq!(floats(&out["data"][1]["embedding"]), vector(b"jumps", 8));
    // The mock counts words: 4 + 1.
    assert_eq!(out["usage"]["prompt_tokens"], 5);
    // 5 tokens × $0.20/M.
    assert_eq!(out["usage"]["cost"].as_f64().unwrap(), 0.000_001);
    let rec = r.generation(out["id"].as_str().unwrap()).await.unwrap();
    assert_eq!(rec["provider"], "beta");
    assert_eq!(rec["model"], "test/embed");
    assert_eq!(rec["usage"]["prompt_tokens"], 5);
    assert_eq!(rec["cost"], "0.000001");
    assert_eq!(rec["attempts"].as_array().unwrap().len(), 2);
    assert_eq!(rec["api_type"], "embeddings");
    // `/api/v1/generation` says what OpenRouter says of an embedding.
    let typed: polyroute::GenerationRecord = serde_json::from_value(rec.clone()).unwrap();
    assert_eq!(
        polyroute::http_api::generation_json(&typed)["api_type"],
        "embeddings"
    );
    assert_eq!(r.spent(None).await.unwrap(), Decimal::new(1, 6));
    // What beta received: the upstream model id, floats asked for, no routing field.
    let got = m[1].received().pop().unwrap();
    assert_eq!(got.path, "/v1/embeddings");
    assert_eq!(
        got.body,
        json!({"model": "beta-embed", "input": ["the quick brown fox", "jumps"], "encoding_format": "float"})
    );
    assert_eq!(
        got.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
}

#[tokio::test]
async fn models_fallback_and_the_gemini_api() {
    let m = mocks(2).await;
    let r = router(&m, polyroute::Limits::default());
    m[0].set_fault(Some("500")).unwrap();
    m[1].script(["500"]).unwrap();
    // test/embed fails on alpha then on beta; the fallback model serves on beta.
    let out = r
        .embeddings(
            json!({"model": "test/embed", "models": ["test/embed-b"], "input": "x",
            "provider": {"order": ["alpha", "beta"], "ignore": ["gamma"]}}),
        )
        .await
        .unwrap();
    assert_eq!(out["model"], "test/embed-b");
    assert_eq!(out["provider"], "BETA Cloud");
    let rec = r.generation(out["id"].as_str().unwrap()).await.unwrap();
    let tried: Vec<(&str, &str)> = rec["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["model"].as_str().unwrap(),
                a["provider"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        tried,
        [
            ("test/embed", "alpha"),
            ("test/embed", "beta"),
            ("test/embed-b", "beta")
        ]
    );
    // The Gemini API: batchEmbedContents with the key in its header; no usage, so the estimate is billed.
    let out = r
        .embeddings(
            json!({"model": "test/embed", "input": ["abcdefgh", "ij"], "dimensions": 3,
            "provider": {"only": ["gamma"]}}),
        )
        .await
        .unwrap();
    assert_eq!(out["provider"], "GAMMA Cloud");
    assert_eq!(floats(&out["data"][0]["embedding"]), vector(b"abcdefgh", 3));
    assert_eq!(floats(&out["data"][1]["embedding"]), vector(b"ij", 3));
    assert_eq!(out["usage"]["prompt_tokens"], 3);
    let got = m[1].received().pop().unwrap();
    assert_eq!(got.path, "/v1beta/models/gamma-embed:batchEmbedContents");
    assert_eq!(got.header("x-goog-api-key"), Some(KEY));
    assert_eq!(got.body["requests"][1]["outputDimensionality"], 3);
    // Token arrays cannot go to the Gemini API: excluded with the reason.
    let e = r
        .embeddings(
            json!({"model": "test/embed", "input": [1, 2], "provider": {"only": ["gamma"]}}),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("dialect_unsupported"), "{e}");
}

#[tokio::test]
async fn dimensions_base64_and_token_arrays() {
    let m = mocks(2).await;
    let r = router(&m, polyroute::Limits::default());
    let out = r
        .embeddings(
            json!({"model": "test/embed", "input": "hello", "dimensions": 4,
            "encoding_format": "base64", "provider": {"order": ["alpha"]}}),
        )
        .await
        .unwrap();
    assert_eq!(
        out["data"][0]["embedding"],
        json!(base64_f32(&vector(b"hello", 4)))
    );
    let got = m[0].received().pop().unwrap();
    assert_eq!(got.body["dimensions"], 4);
    assert_eq!(got.body["encoding_format"], "float");
    let out = r
        .embeddings(json!({"model": "test/embed", "input": [[1, 2, 3], [4]],
            "provider": {"order": ["alpha"]}}))
        .await
        .unwrap();
    assert_eq!(out["usage"]["prompt_tokens"], 4);
    assert_eq!(
        m[0].received().pop().unwrap().body["input"],
        json!([[1, 2, 3], [4]])
    );
}

#[tokio::test]
async fn limits_refuse_before_any_call_and_kinds_never_cross() {
    let m = mocks(2).await;
    let mut limits = polyroute::Limits::default();
    limits.user_usd.insert("u".into(), Decimal::new(1, 7)); // $0.0000001
    let r = router(&m, limits);
    let ctx = RequestContext {
        user: Some("u".into()),
        ..Default::default()
    };
    // ~2,500 tokens at up to $0.20/M may cost $0.0005: above the limit.
    let big = "word ".repeat(2000);
    let e = r
        .embeddings_with(json!({"model": "test/embed", "input": big}), &ctx)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "payment_required");
    assert_eq!(m[0].calls() + m[1].calls(), 0);
    // A gateway key's limit is held the same way.
    let key_ctx = RequestContext {
        key_id: Some("k1".into()),
        key_limit: Some(Decimal::ZERO),
        ..Default::default()
    };
    let e = r
        .embeddings_with(json!({"model": "test/embed", "input": "a"}), &key_ctx)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "payment_required");
    assert_eq!(m[0].calls() + m[1].calls(), 0);
    let e = r
        .embeddings(json!({"model": "test/chat", "input": "a"}))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "invalid_request");
    assert!(
        e.to_string()
            .contains("test/chat is not an embedding model"),
        "{e}"
    );
    let e = r
        .chat(json!({"model": "test/embed", "messages": [{"role": "user", "content": "hi"}]}))
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("test/embed is an embedding model"),
        "{e}"
    );
    let e = r
        .embeddings(json!({"model": "test/embed", "input": ["a", 3]}))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("input[1]"), "{e}");
    assert_eq!(m[0].calls() + m[1].calls(), 0);
    let listed = r.embedding_models().unwrap();
    let ids: Vec<&str> = listed.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["test/embed", "test/embed-b"]);
}
