//! Auto-router cost: classification and ranking of a ~2,000-token conversation.
//!
//! Catalog: the file named by `POLYROUTE_BENCH_CATALOG` if set, else the embedded catalog if it has models, else
//! the small fixture `tests/fixtures/auto-catalog.json`. The [`AutoIndex`] is built once, outside the timed loop,
//! as the engine should hold it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use polyroute_core::auto::{classify, AutoIndex};
use polyroute_core::catalog::Model;
use polyroute_core::{Catalog, ChatRequest};
use serde_json::json;

fn catalog() -> Catalog {
    if let Some(path) = std::env::var_os("POLYROUTE_BENCH_CATALOG") {
        let text = String::from_utf8(std::fs::read(path).unwrap()).unwrap();
        return Catalog::from_json(&text).unwrap();
    }
    if let Ok(c) = Catalog::embedded() {
        if c.models().len() > 50 {
            return c;
        }
    }
    Catalog::from_json(include_str!("../../../tests/fixtures/auto-catalog.json")).unwrap()
}

/// A coding conversation of roughly 2,000 tokens (8,000 characters) over 11 messages.
fn conversation() -> ChatRequest {
    let prose = "The service reads events from the queue, validates each payload against the schema, enriches it with \
                 the customer record and writes the result to the warehouse table; retries use exponential backoff. ";
    let code = "```python\ndef handle(event):\n    payload = json.loads(event.body)\n    validate(payload, SCHEMA)\n    \
                customer = db.fetch(payload['customer_id'])\n    return enrich(payload, customer)\n```\n";
    let mut messages = vec![
        json!({"role": "system", "content": format!("You are a careful senior engineer. {}", prose.repeat(3))}),
    ];
    for turn in 0..5 {
        messages.push(
            json!({"role": "user", "content": format!("Turn {turn}: {} {code}", prose.repeat(3))}),
        );
        messages
            .push(json!({"role": "assistant", "content": format!("{} {code}", prose.repeat(3))}));
    }
    messages.push(json!({"role": "user", "content": format!("{} Why does this raise a KeyError sometimes, and how \
        should I fix the function? {code}", prose.repeat(2))}));
    let req = ChatRequest::from_value(&json!({"model": "openrouter/auto", "messages": messages}))
        .unwrap();
    let tokens = req.estimate_prompt_tokens();
    assert!(
        (1_700..=2_600).contains(&tokens),
        "conversation is {tokens} tokens"
    );
    req
}

fn bench(c: &mut Criterion) {
    let cat = catalog();
    let req = conversation();
    let eligible = |_: &Model| true;
    eprintln!(
        "catalog: {} models; conversation: ~{} tokens; task: {}",
        cat.models().len(),
        req.estimate_prompt_tokens(),
        classify(&req)
    );
    c.bench_function("auto/index_build", |b| {
        b.iter(|| AutoIndex::new(black_box(&cat)))
    });
    let index = AutoIndex::new(&cat);
    c.bench_function("auto/classify_2k", |b| b.iter(|| classify(black_box(&req))));
    c.bench_function("auto/route_auto_2k", |b| {
        b.iter(|| {
            index
                .route("openrouter/auto", black_box(&req), &eligible, 1, None)
                .unwrap()
        })
    });
    c.bench_function("auto/route_pareto_2k", |b| {
        b.iter(|| {
            index
                .route(
                    "openrouter/pareto-code",
                    black_box(&req),
                    &eligible,
                    1,
                    None,
                )
                .unwrap()
        })
    });
    c.bench_function("auto/route_free_2k", |b| {
        b.iter(|| {
            index
                .route("openrouter/free", black_box(&req), &eligible, 1, None)
                .unwrap()
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
