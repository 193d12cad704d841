//! Issue 21's in-process plan request in the core alone: `meta-llama/llama-3.3-70b-instruct` of the embedded catalog
//! with a credential for every one of its hosts and the default seed, planned N times (after a warm-up) for
//! `valgrind --tool=callgrind` (instructions per plan without the bindings' conversions). Prints one line per
//! 1000 plans so a run can be checked: the attempt count and the first attempt's endpoint.
//! Usage: `plan_wide [iterations]`.
// Benchmark code: reading its argument and failing loudly are what it is for.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::disallowed_methods,
    clippy::disallowed_types
)]

use std::collections::{BTreeMap, BTreeSet};

use polyroute_core::plan::{plan, HealthSnapshot, PlanContext};
use polyroute_core::{Catalog, ChatRequest};
use serde_json::json;

const MODEL: &str = "meta-llama/llama-3.3-70b-instruct";

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(4000);
    let cat = Catalog::embedded().expect("catalog");
    let creds: BTreeSet<String> = cat
        .model(MODEL)
        .expect("the model")
        .endpoints
        .iter()
        .map(|e| e.provider.clone())
        .collect();
    let unconfigured = BTreeMap::new();
    let health = HealthSnapshot::default();
    let req = ChatRequest::from_value(
        &json!({"model": MODEL, "messages": [{"role": "user", "content": "hello"}]}),
    )
    .expect("request");
    let ctx = PlanContext {
        seed: 0,
        health: &health,
        credentials: Some(&creds),
        unconfigured: Some(&unconfigured),
        sticky: None,
        previous_router_model: None,
        credential_marks: None,
    };
    let mut attempts = 0;
    for i in 0..n + 100 {
        let p = plan(&cat, &req, &ctx).expect("a plan");
        attempts += p.attempts.len();
        if i % 1000 == 0 {
            println!("{} attempts, first {}", p.attempts.len(), p.attempts[0].tag);
        }
    }
    println!("{attempts} attempts in all");
}
