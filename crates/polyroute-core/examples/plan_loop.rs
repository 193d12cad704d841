//! Runs many plans on the embedded catalog in a loop, for `perf stat` (cycles and instructions per plan are not
//! disturbed by other processes the way wall time is). Usage: `plan_loop [iterations]`.
// Test and benchmark code: reading fixtures and failing loudly are what it is for.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::disallowed_methods,
    clippy::disallowed_types
)]

use polyroute_core::plan::{plan, HealthSnapshot, PlanContext};
use polyroute_core::{Catalog, ChatRequest};
use serde_json::json;

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let cat = Catalog::embedded().expect("catalog");
    let model = cat
        .models()
        .iter()
        .max_by_key(|m| m.endpoints.len())
        .map(|m| m.id.clone())
        .expect("a model");
    let req = ChatRequest::from_value(&json!({
        "model": model,
        "messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Summarize Hamlet in two sentences."}],
        "max_tokens": 512, "temperature": 0.7,
        "provider": {"ignore": ["azure"], "quantizations": ["fp8", "bf16", "fp16", "unknown"], "max_price": {"prompt": 5, "completion": 15}, "allow_fallbacks": true}
    }))
    .expect("request");
    let health = HealthSnapshot::default();
    let t = std::time::Instant::now();
    let mut attempts = 0usize;
    for seed in 0..n {
        let ctx = PlanContext {
            seed,
            health: &health,
            ..PlanContext::default()
        };
        attempts += plan(&cat, &req, &ctx)
            .map(|p| p.attempts.len())
            .unwrap_or(0);
    }
    let per = t.elapsed().as_secs_f64() / n as f64 * 1e6;
    println!(
        "{model}: {} endpoints, {} attempts per plan, {per:.2} µs per plan (wall)",
        cat.model(&model).map_or(0, |m| m.endpoints.len()),
        attempts as u64 / n
    );
}
