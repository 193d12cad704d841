//! Embeddings on the embedded catalog: plans over embedding models only, the kind guards both ways, endpoint
//! exclusions with reasons, fallback order, listing, and cost.
#![cfg(feature = "embedded-catalog")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use polyroute_core::catalog::{Catalog, ModelFilter};
use polyroute_core::cost::embedding_cost;
use polyroute_core::error::{Error, ExclusionReason};
use polyroute_core::plan::{plan, plan_embeddings, Next, Outcome, OutcomeClass, PlanContext};
use polyroute_core::types::embeddings::EmbeddingRequest;
use polyroute_core::ChatRequest;
use rust_decimal::Decimal;
use serde_json::{json, Value};

fn cat() -> Catalog {
    Catalog::embedded().unwrap()
}

fn emb(v: Value) -> EmbeddingRequest {
    EmbeddingRequest::from_value(&v).unwrap()
}

fn invalid(e: Error) -> (String, String) {
    match e {
        Error::InvalidRequest { field, message } => (field, message),
        other => panic!("expected invalid_request, got {other}"),
    }
}

#[test]
fn embedding_models_route_to_openai_compatible_and_gemini_endpoints() {
    let c = cat();
    let p = plan_embeddings(
        &c,
        &emb(json!({"model": "google/gemini-embedding-2", "input": "hello"})),
        &PlanContext::default(),
    )
    .unwrap();
    let tags: Vec<&str> = p.attempts.iter().map(|a| a.tag.as_str()).collect();
    assert_eq!(tags, ["google-ai-studio"]);
    // Vertex's embeddings API is not translated: excluded with the reason.
    let vertex = p
        .excluded
        .iter()
        .find(|x| x.endpoint == "google-vertex")
        .unwrap();
    assert_eq!(vertex.reason, ExclusionReason::DialectUnsupported);
    assert!(
        vertex.detail.contains("not translated"),
        "{}",
        vertex.detail
    );
    // Token arrays go to OpenAI-compatible endpoints only: the fallback model serves them.
    let p = plan_embeddings(
        &c,
        &emb(json!({"model": "google/gemini-embedding-001", "models": ["openai/text-embedding-3-small"],
            "input": [1, 2, 3]})),
        &PlanContext::default(),
    )
    .unwrap();
    let gem = p
        .excluded
        .iter()
        .find(|x| x.model == "google/gemini-embedding-001")
        .unwrap();
    assert_eq!(gem.reason, ExclusionReason::DialectUnsupported);
    assert!(gem.detail.contains("token-array"), "{}", gem.detail);
    assert!(p
        .attempts
        .iter()
        .all(|a| a.model == "openai/text-embedding-3-small"));
}

#[test]
fn provider_preferences_order_and_fail_over() {
    let c = cat();
    let mut p = plan_embeddings(
        &c,
        &emb(
            json!({"model": "qwen/qwen3-embedding-8b", "input": ["a", "b"],
            "provider": {"order": ["nebius", "novita"], "allow_fallbacks": false}}),
        ),
        &PlanContext::default(),
    )
    .unwrap();
    let tags: Vec<&str> = p.attempts.iter().map(|a| a.tag.as_str()).collect();
    assert_eq!(tags, ["nebius", "novita"]);
    assert!(p
        .excluded
        .iter()
        .any(|x| x.endpoint == "fireworks" && x.reason == ExclusionReason::Order));
    let mut fail = Outcome::success(503);
    fail.class = OutcomeClass::Overloaded;
    match p.next(&fail) {
        Next::Try(a) => assert_eq!(a.tag, "novita"),
        other => panic!("{other:?}"),
    }
    // `only` and `sort` work as for chat.
    let p = plan_embeddings(
        &c,
        &emb(json!({"model": "qwen/qwen3-embedding-8b", "input": "a", "provider": {"sort": "price"}})),
        &PlanContext::default(),
    )
    .unwrap();
    let prices: Vec<Decimal> = p.attempts.iter().map(|a| a.pricing.prompt).collect();
    assert!(prices.windows(2).all(|w| w[0] <= w[1]), "{prices:?}");
}

#[test]
fn each_input_must_fit_the_context_on_its_own() {
    let c = cat();
    // 2,000 inputs of ~1,000 tokens: far beyond 8k together, each fits alone.
    let inputs: Vec<String> = (0..2000).map(|_| "word ".repeat(800)).collect();
    assert!(plan_embeddings(
        &c,
        &emb(json!({"model": "openai/text-embedding-3-small", "input": inputs})),
        &PlanContext::default()
    )
    .is_ok());
    let long = "word ".repeat(10_000);
    let e = plan_embeddings(
        &c,
        &emb(json!({"model": "openai/text-embedding-3-small", "input": ["a", long]})),
        &PlanContext::default(),
    )
    .unwrap_err();
    assert_eq!(e.code(), "constraint_filtered", "{e}");
}

#[test]
fn kinds_never_cross() {
    let c = cat();
    let chat = ChatRequest::from_value(&json!({"model": "openai/text-embedding-3-small",
        "messages": [{"role": "user", "content": "hi"}]}))
    .unwrap();
    let (field, msg) = invalid(plan(&c, &chat, &PlanContext::default()).unwrap_err());
    assert_eq!(field, "model");
    assert!(
        msg.contains("openai/text-embedding-3-small is an embedding model"),
        "{msg}"
    );
    let chat = ChatRequest::from_value(&json!({"model": "openai/gpt-4o-mini",
        "models": ["openai/text-embedding-3-small"], "messages": [{"role": "user", "content": "hi"}]}))
    .unwrap();
    assert_eq!(
        invalid(plan(&c, &chat, &PlanContext::default()).unwrap_err()).0,
        "models"
    );
    let (field, msg) = invalid(
        plan_embeddings(
            &c,
            &emb(json!({"model": "openai/gpt-4o-mini", "input": "x"})),
            &PlanContext::default(),
        )
        .unwrap_err(),
    );
    assert_eq!(field, "model");
    assert!(
        msg.contains("openai/gpt-4o-mini is not an embedding model"),
        "{msg}"
    );
    for router in ["openrouter/auto", "openrouter/free"] {
        let e = plan_embeddings(
            &c,
            &emb(json!({"model": router, "input": "x"})),
            &PlanContext::default(),
        )
        .unwrap_err();
        assert_eq!(invalid(e).0, "model");
    }
    // The free router, asked for chat, never draws an embedding model (two are free).
    for seed in 0..40 {
        let chat = ChatRequest::from_value(&json!({"model": "openrouter/free",
            "messages": [{"role": "user", "content": "hi"}]}))
        .unwrap();
        let ctx = PlanContext {
            seed,
            ..PlanContext::default()
        };
        let p = plan(&c, &chat, &ctx).unwrap();
        for m in &p.models {
            assert!(!c.model(&m.id).unwrap().is_embedding(), "{}", m.id);
        }
    }
}

#[test]
fn listing_shows_embedding_models_only_when_asked() {
    let c = cat();
    let all = c.filter_models(&ModelFilter::default());
    assert!(all.iter().all(|m| !m.is_embedding()));
    let emb = c.filter_models(&ModelFilter {
        output_modality: Some("embeddings".into()),
        ..ModelFilter::default()
    });
    assert!(emb.len() >= 30);
    assert!(emb.iter().all(|m| m.is_embedding()));
    let small = c.model("openai/text-embedding-3-small").unwrap();
    let openai = small
        .endpoints
        .iter()
        .find(|e| e.provider == "openai")
        .unwrap();
    assert_eq!(openai.embedding_dimensions, Some(1536));
}

#[test]
fn cost_is_input_tokens_times_the_embedding_price() {
    let c = cat();
    let small = c.model("openai/text-embedding-3-small").unwrap();
    let openai = small
        .endpoints
        .iter()
        .find(|e| e.provider == "openai")
        .unwrap();
    let b = embedding_cost(&openai.pricing, 1_000_000, None);
    // $0.02 per million input tokens.
    assert_eq!(b.total, Decimal::new(2, 2));
    assert!(!b.insured);
    assert_eq!(
        embedding_cost(&openai.pricing, 0, None).total,
        Decimal::ZERO
    );
}
