//! Routing benchmarks: a plan for a model with 12 endpoints and a typical `provider` object, cost, and loading the
//! embedded catalog. Targets (issue 3): plan ≤ 2 µs median, cost ≤ 300 ns, catalog load ≤ 20 ms.
// Test and benchmark code: reading fixtures and failing loudly are what it is for.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::disallowed_methods,
    clippy::disallowed_types
)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use polyroute_core::cost::{cost, CostContext};
use polyroute_core::plan::{plan, HealthSnapshot, PlanContext};
use polyroute_core::{Catalog, ChatRequest, Usage};
use serde_json::json;

const QUANTS: [&str; 4] = ["fp8", "bf16", "fp16", "int4"];

fn bench_catalog() -> Catalog {
    let providers: Vec<_> = (0..12)
        .map(|i| json!({"slug": format!("p{i}"), "name": format!("P{i}"), "dialect": "openai", "base_url": "http://127.0.0.1:9"}))
        .collect();
    let endpoints: Vec<_> = (0..12)
        .map(|i| {
            json!({
                "provider": format!("p{i}"), "provider_name": format!("P{i}"), "tag": format!("p{i}"),
                "context_length": 131072, "max_completion_tokens": 16384,
                "quantization": QUANTS[i % 4],
                "pricing": {"prompt": format!("0.000000{}", 1 + i), "completion": format!("0.00000{}", 1 + i % 9)},
                "supported_parameters": ["max_tokens", "temperature", "tools", "tool_choice", "response_format"],
                "data_policy": {"training": i % 5 == 0, "retains_prompts": i % 3 == 0, "zdr": i % 2 == 0}
            })
        })
        .collect();
    let cat = json!({"version": 1, "providers": providers, "models": [{
        "id": "bench/model-70b", "context_length": 131072,
        "architecture": {"input_modalities": ["text"], "output_modalities": ["text"]},
        "pricing": {"prompt": "0.0000001", "completion": "0.0000003"},
        "supported_parameters": ["max_tokens", "temperature", "tools"],
        "endpoints": endpoints
    }]});
    Catalog::from_value(&cat).expect("bench catalog")
}

fn benches(c: &mut Criterion) {
    let cat = bench_catalog();
    let req = ChatRequest::from_value(&json!({
        "model": "bench/model-70b",
        "messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Summarize the plot of Hamlet in two sentences."}],
        "max_tokens": 512,
        "temperature": 0.7,
        "provider": {"ignore": ["p3"], "quantizations": ["fp8", "bf16", "fp16"], "max_price": {"prompt": 1, "completion": 8}, "data_collection": "allow", "allow_fallbacks": true}
    }))
    .expect("request");
    let health = HealthSnapshot::default();
    let mut seed = 0u64;
    c.bench_function("plan_12_endpoints_typical_provider", |b| {
        b.iter(|| {
            seed = seed.wrapping_add(1);
            let ctx = PlanContext {
                seed,
                health: &health,
                ..PlanContext::default()
            };
            black_box(plan(&cat, black_box(&req), &ctx).expect("plan"))
        });
    });
    let req_sorted = {
        let mut r = req.clone();
        if let Some(p) = r.provider.as_mut() {
            p.sort = serde_json::from_value(json!("price")).ok();
        }
        r
    };
    c.bench_function("plan_12_endpoints_sort_price", |b| {
        b.iter(|| {
            black_box(plan(&cat, black_box(&req_sorted), &PlanContext::default()).expect("plan"))
        });
    });
    let pricing = json!({"prompt": "0.000003", "completion": "0.000015", "input_cache_read": "0.0000003",
        "input_cache_write": "0.00000375", "internal_reasoning": "0.00001",
        "overrides": [{"min_prompt_tokens": 200000, "prompt": "0.000006", "completion": "0.0000225"}]});
    let pricing: polyroute_core::catalog::Pricing =
        serde_json::from_value(pricing).expect("pricing");
    let mut usage = Usage {
        prompt_tokens: 12_000,
        completion_tokens: 800,
        total_tokens: 12_800,
        ..Usage::default()
    };
    usage.prompt_tokens_details.cached_tokens = 9000;
    usage.prompt_tokens_details.cache_write_tokens = 1000;
    usage.completion_tokens_details.reasoning_tokens = 300;
    c.bench_function("cost_with_cache_reasoning_override", |b| {
        b.iter(|| {
            black_box(cost(
                black_box(&pricing),
                black_box(&usage),
                CostContext {
                    utc_minute: Some(600),
                    finish_reason: Some("stop"),
                },
            ))
        });
    });
    // Issue 21's request: the embedded catalog's 17-endpoint model, every host credentialed (as the Python and
    // Node benches configure it).
    let embedded = Catalog::embedded().expect("embedded");
    let creds: std::collections::BTreeSet<String> = embedded
        .providers()
        .iter()
        .map(|p| p.slug.clone())
        .collect();
    let unconfigured = std::collections::BTreeMap::new();
    let wide = ChatRequest::from_value(&json!({
        "model": "meta-llama/llama-3.3-70b-instruct",
        "messages": [{"role": "user", "content": "hello"}]
    }))
    .expect("request");
    let mut seed = 0u64;
    c.bench_function("plan_17_endpoints_embedded_all_hosts", |b| {
        b.iter(|| {
            seed = seed.wrapping_add(1);
            let ctx = PlanContext {
                seed,
                health: &health,
                credentials: Some(&creds),
                unconfigured: Some(&unconfigured),
                ..PlanContext::default()
            };
            black_box(plan(&embedded, black_box(&wide), &ctx).expect("plan"))
        });
    });
    let mut g = c.benchmark_group("catalog");
    g.sample_size(20);
    g.bench_function("load_embedded", |b| {
        b.iter(|| black_box(Catalog::embedded().expect("embedded")))
    });
    g.finish();
}

criterion_group!(routing, benches);
criterion_main!(routing);
